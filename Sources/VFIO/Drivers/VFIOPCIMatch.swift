// SPDX-License-Identifier: Apache-2.0
/// vfio-pci's GET_DEVICE_FD name match (v6.3 `vfio_pci_core_match` and
/// `vfio_pci_validate_vf_token`, docs/ERRORS.md#pci-match).
///
/// The PCI name as a prefix, then end of string (match), a non-space (no match), or spaces and
/// options: only `vf_token=<uuid>`, once. EINVAL for an unknown or duplicate option, a value
/// shorter than a UUID or not a UUID (uuid_parse), or a token where none applies; EACCES for a VF
/// (of a PF bound to vfio-pci) or a PF with VF users whose token is missing or wrong. A PF without
/// VF users takes a given token as its new one.
enum VFIOPCIMatch {
    /// 0 no match, 1 match, or a negative errno. `expectedToken` non-nil: a VF whose PF (bound to
    /// vfio-pci) holds that token.
    static func match(pciName: String, request: String, expectedToken: String?) -> Int32 {
        match(pciName: pciName, request: request,
              role: expectedToken.map { .virtualFunction(pf: VFToken(uuid: $0)) } ?? .none)
    }

    /// 0 no match, 1 match, or a negative errno, for a function in SR-IOV role `role`.
    static func match(pciName: String, request: String, role: SRIOVRole) -> Int32 {
        switch evaluate(pciName: pciName, request: request, role: role) {
        case .success(let matched): matched ? 1 : 0
        case .failure(let e): -e.rawValue
        }
    }

    /// The same answer with the failed check as the errno's reason (what the kernel prints with
    /// pci_info_ratelimited, and the option parser's refusal), for GET_DEVICE_FD's error text.
    static func evaluate(pciName: String, request: String, role: SRIOVRole) -> Result<Bool, Errno> {
        let name = Array(pciName.utf8), buf = Array(request.utf8)
        // strncmp(pci_name, buf, strlen(pci_name)): a C string ends at the first NUL.
        let end = buf.firstIndex(of: 0) ?? buf.count
        guard end >= name.count, Array(buf[0..<name.count]) == name else { return .success(false) }
        var token: String?
        if end > name.count {
            var i = name.count
            guard buf[i] == UInt8(ascii: " ") else { return .success(false) }   // non-whitespace after the name
            let key = Array("vf_token=".utf8)
            while i < end {
                if buf[i] == UInt8(ascii: " ") { i += 1; continue }
                guard token == nil else {
                    return .failure(.EINVAL.because("option at byte {} of the name: vf_token given twice", i))
                }
                guard end - i >= key.count, Array(buf[i..<i + key.count]) == key else {
                    return .failure(.EINVAL.because("option at byte {} of the name: unknown (only vf_token=<uuid>)", i))
                }
                i += key.count
                guard end - i >= 36 else {   // UUID_STRING_LEN
                    return .failure(.EINVAL.because("vf_token value of {} bytes < 36 (a UUID)", end - i))
                }
                let uuid = Array(buf[i..<i + 36])
                guard isUUID(uuid) else {   // uuid_parse()
                    return .failure(.EINVAL.because("vf_token at byte {} of the name is not a UUID", i))
                }
                token = String(decoding: uuid, as: UTF8.self).lowercased()
                i += 36
            }
        }
        return validate(role: role, token: token)
    }


    /// Kernel: vfio_pci_validate_vf_token(): true when access is granted, else the errno with
    /// the kernel's message as its reason.
    static func validate(role: SRIOVRole, token: String?) -> Result<Bool, Errno> {
        switch role {
        case .none:
            // "VF token incorrectly provided, not a PF or VF"
            return token == nil ? .success(true) : .failure(.EINVAL.because("vf_token given, but not a PF or VF"))
        case .virtualFunction(pf: nil):
            // "VF token incorrectly provided, PF not bound to vfio-pci"
            return token == nil ? .success(true) : .failure(.EINVAL.because("vf_token given, but the PF is not bound to vfio-pci"))
        case .virtualFunction(pf: let pf?):
            guard let token else { return .failure(.EACCES.because("VF token required to access the VF")) }
            return pf.uuid == token ? .success(true) : .failure(.EACCES.because("incorrect VF token for the VF"))
        case .physicalFunction(let pf):
            if pf.users > 0 {
                guard let token else {
                    return .failure(.EACCES.because("VF token required: the PF has {} VF user(s)", pf.users))
                }
                return pf.uuid == token ? .success(true)
                    : .failure(.EACCES.because("incorrect VF token for the PF ({} VF user(s))", pf.users))
            }
            // No VF in use: a token given sets the PF's token.
            if let token { pf.uuid = token }
            return .success(true)
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
