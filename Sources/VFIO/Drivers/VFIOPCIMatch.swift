/// vfio-pci's GET_DEVICE_FD name match (`vfio_pci_core_match`, SPEC §5.1).
///
/// The PCI name as a prefix, then end of string, or a space and options: only `vf_token=<uuid>`,
/// once. EINVAL for a malformed, unknown or duplicate option or a token where none applies;
/// EACCES for a VF (or a PF with VF users) whose token is missing or wrong.
enum VFIOPCIMatch {
    /// 0 no match, 1 match, or a negative errno.
    static func match(pciName: String, request: String, expectedToken: String?) -> Int32 {
        let name = Array(pciName.utf8), buf = Array(request.utf8)
        guard buf.count >= name.count, Array(buf[0..<name.count]) == name else { return 0 }
        var token: String?
        if buf.count > name.count {
            var i = name.count
            guard buf[i] == UInt8(ascii: " ") else { return 0 }   // non-whitespace after the name
            let key = Array("vf_token=".utf8)
            while i < buf.count {
                if buf[i] == UInt8(ascii: " ") { i += 1; continue }
                guard token == nil, buf.count - i >= key.count, Array(buf[i..<i + key.count]) == key else {
                    return -Errno.EINVAL.rawValue   // unknown or duplicate option
                }
                i += key.count
                guard buf.count - i >= 36 else { return -Errno.EINVAL.rawValue }
                let uuid = Array(buf[i..<i + 36])
                guard isUUID(uuid) else { return -Errno.EINVAL.rawValue }
                token = String(decoding: uuid, as: UTF8.self).lowercased()
                i += 36
            }
        }
        // vfio_pci_validate_vf_token()
        switch (expectedToken, token) {
        case (nil, nil): return 1
        case (nil, .some): return -Errno.EINVAL.rawValue        // "not a PF or VF"
        case (.some, nil): return -Errno.EACCES.rawValue        // VF token required
        case let (.some(want), .some(got)): return want.lowercased() == got ? 1 : -Errno.EACCES.rawValue
        }
    }

    private static func isUUID(_ b: [UInt8]) -> Bool {
        for (i, c) in b.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if c != UInt8(ascii: "-") { return false }
            } else if !(c >= 48 && c <= 57) && !(c >= 97 && c <= 102) && !(c >= 65 && c <= 70) {
                return false
            }
        }
        return true
    }
}
