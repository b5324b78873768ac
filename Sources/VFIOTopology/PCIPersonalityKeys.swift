// SPDX-License-Identifier: Apache-2.0
// The identity keys issue 13 added to a modelled PCI function: the kind of each BAR (I/O, 32-bit
// or 64-bit memory, prefetchable), the device personality behind the function, and a virtio-net
// function's MAC address and link state.

/// What a BAR decodes, as the low bits of its config-space register say (`PCI_BASE_ADDRESS_*`).
public enum PCIBARType: String, Sendable, CaseIterable {
    /// A 32-bit memory BAR (the default; what a bare integer in `bars` means).
    case memory32 = "mem32"
    /// A 64-bit memory BAR: it takes its slot and the next one (which must be 0 in `bars`).
    case memory64 = "mem64"
    /// An I/O port BAR: no mmap, reached through pread/pwrite of its region (vfio-pci's ioport
    /// path), 4 to 256 bytes.
    case io = "io"

    /// Whether the BAR decodes memory (and so can be mmap'ed).
    public var isMemory: Bool { self != .io }
}

/// Which device sits behind the modelled function's registers.
public enum PCIPersonalityKind: String, Sendable, CaseIterable {
    /// Config space, BARs of plain memory and IRQ info only.
    case plain = "plain"
    /// A virtio-net function (virtio 1.x PCI transport, and the legacy I/O BAR of a transitional
    /// device): feature negotiation, status, queue registers, MAC and link status. No data path.
    case virtioNet = "virtio-net"
}

extension PCIDeviceIdentity {
    /// The personality the ids select when the topology names none: 1af4:1000 (transitional) and
    /// 1af4:1041 (modern) are virtio-net, everything else is plain.
    public var effectivePersonality: PCIPersonalityKind {
        if let personality { return personality }
        return vendorID == 0x1af4 && (deviceID == 0x1000 || deviceID == 0x1041) ? .virtioNet : .plain
    }

    /// Whether a virtio function is transitional (device ids 0x1000-0x103f: a legacy I/O BAR0 and
    /// the subsystem id naming the virtio device type) rather than modern only (0x1040 + type).
    public var isTransitionalVirtio: Bool { deviceID >= 0x1000 && deviceID <= 0x103f }

    /// The type of BAR `index` (`.memory32` when beyond the array).
    public func barType(_ index: Int) -> PCIBARType {
        index >= 0 && index < barTypes.count ? barTypes[index] : .memory32
    }

    /// Whether BAR `index` is prefetchable memory.
    public func isPrefetchable(_ index: Int) -> Bool {
        index >= 0 && index < barPrefetchable.count ? barPrefetchable[index] : false
    }

    /// Whether slot `index` is the upper half of the 64-bit BAR in the slot below.
    public func isUpperHalf(_ index: Int) -> Bool { index > 0 && index < 6 && barType(index - 1) == .memory64 && barSize(index - 1) > 0 }

    /// The virtio-net structures' BAR: the first memory BAR of at least 16 KiB that does not hold
    /// the MSI-X table (QEMU puts them in a 64-bit BAR4), or nil.
    public var virtioStructureBAR: Int? {
        (0..<6).first { i in
            barType(i).isMemory && barSize(i) >= 0x4000 && !(msixVectors > 0 && msixBAR == i)
        }
    }

    /// A MAC address "52:54:00:12:34:56" (two hex digits per byte, ':' or '-' between them), or nil.
    public static func parseMAC(_ text: String) -> [UInt8]? {
        var t = Substring(text)
        while let c = t.last, c == "\n" || c == " " || c == "\r" { t.removeLast() }
        let parts = t.split(separator: ":", omittingEmptySubsequences: false)
        let fields = parts.count == 6 ? parts : t.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for f in fields {
            guard f.count == 2, let b = UInt8(f, radix: 16) else { return nil }
            bytes.append(b)
        }
        return bytes
    }

    /// The MAC as "52:54:00:12:34:56".
    public var macString: String {
        mac.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: ":")
    }

    /// The first rule the BAR kinds or the personality break, as (JSON key, message), or nil.
    func personalityProblem() -> (key: String, message: String)? {
        if barTypes.count != 6 || barPrefetchable.count != 6 { return ("bars", "expected 6 BAR types") }
        if mac.count != 6 { return ("mac", "expected 6 bytes of MAC address, found \(mac.count)") }
        for i in 0..<6 where bars[i] != 0 {
            switch barType(i) {
            case .io:
                if bars[i] < 4 || bars[i] > 256 || bars[i] & (bars[i] - 1) != 0 {
                    return ("bars", "BAR\(i) I/O size \(bars[i]): expected a power of two from 4 to 256")
                }
                if isPrefetchable(i) { return ("bars", "BAR\(i) is an I/O BAR and cannot be prefetchable") }
            case .memory64:
                if bars[i] < 16 || bars[i] > 1 << 36 || bars[i] & (bars[i] - 1) != 0 {
                    return ("bars", "BAR\(i) 64-bit size \(bars[i]): expected a power of two from 16 to 68719476736")
                }
                if i == 5 { return ("bars", "BAR5 cannot be a 64-bit BAR (it takes two slots)") }
                if bars[i + 1] != 0 {
                    return ("bars", "BAR\(i) is a 64-bit BAR: slot \(i + 1) holds its upper half and must be 0")
                }
            case .memory32:
                break
            }
        }
        if msixVectors > 0, !barType(msixBAR).isMemory {
            return ("msix_bar", "BAR\(msixBAR) holds the MSI-X table but is an I/O BAR")
        }
        if effectivePersonality == .virtioNet {
            if vendorID != 0x1af4 || !(0x1000...0x103f).contains(deviceID) && deviceID != 0x1041 {
                return ("personality", "virtio-net needs vendor 0x1af4 and device 0x1000 (transitional) or 0x1041 (modern), "
                                       + "found \(hex4(vendorID)):\(hex4(deviceID))")
            }
            if virtioStructureBAR == nil {
                return ("bars", "virtio-net needs a memory BAR of at least 16384 bytes (not the MSI-X BAR) for its "
                                + "common, ISR, device and notify structures (QEMU: a 64-bit BAR4 of 16384 bytes)")
            }
            if isTransitionalVirtio && (barType(0) != .io || barSize(0) < 32) {
                return ("bars", "a transitional virtio-net (0x1000) needs BAR0 to be an I/O BAR of at least 32 bytes "
                                + "(the legacy registers)")
            }
        }
        return nil
    }

    private func hex4(_ v: UInt16) -> String {
        let d = String(v, radix: 16)
        return String(repeating: "0", count: 4 - d.count) + d
    }
}
