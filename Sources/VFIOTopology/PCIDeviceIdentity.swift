// SPDX-License-Identifier: Apache-2.0
// The identity a topology gives a modelled PCI function (IDs, class, BAR/ROM sizes, interrupt
// capabilities) and its validation.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The identity and resources of a modelled PCI function: what `lspci -n` and the BAR sizes say.
///
/// Topology JSON keys (all optional; integers may also be written as strings "0x1af4" or "4096"):
/// `vendor_id`, `device_id` (16-bit), `class_code` (24-bit class/subclass/prog-if), `bars` (up to 6
/// entries: a size (0 = absent, else a power of two from 16 bytes to 2 GiB: a 32-bit memory BAR), or
/// an object `{"size": n, "type": "mem32" | "mem64" | "io", "prefetchable": bool}`; a 64-bit BAR
/// takes the next slot too, which must be 0),
/// `rom_size` (0, or a power of two from 2 KiB to 16 MiB), `msi` (vectors: 0 = no MSI capability, or
/// 1, 2, 4, 8, 16, 32), `msix` (0 = no MSI-X capability, or 1...2048 vectors), `msix_bar` (the BAR
/// holding the MSI-X table at offset 0 and the PBA at half the BAR; both must fit their half),
/// `pcie` (a PCI Express endpoint with 4 KiB of config space; default true), `intx` (interrupt pin
/// A; default true), `reset` (the function has a reset method, so vfio-pci's `reset_works`: the
/// RESET flag of DEVICE_GET_INFO and a working DEVICE_RESET; default true), `personality` ("plain"
/// or "virtio-net"; default chosen by the ids, see `effectivePersonality`), `mac`
/// ("52:54:00:12:34:56") and `link_up` (default true) for virtio-net.
public struct PCIDeviceIdentity: Equatable, Sendable {
    /// PCI vendor id (default 0x1b36, Red Hat's QEMU range).
    public var vendorID: UInt16 = 0x1b36
    /// PCI device id (default 0x0005, the QEMU PCI test device: no guest driver binds to it).
    public var deviceID: UInt16 = 0x0005
    /// Class code: base class << 16 | subclass << 8 | programming interface (default 0xff0000,
    /// "unassigned class").
    public var classCode: UInt32 = 0xff0000
    /// Sizes of BAR0...BAR5 in bytes; 0 = not implemented. Default: BAR0 of 4 KiB. Fewer than six
    /// sizes are padded with zeros.
    public var bars: [UInt64] = Defaults.bars {
        didSet { if bars.count < 6 { bars += Array(repeating: 0, count: 6 - bars.count) } }
    }
    /// Size of the expansion ROM BAR; 0 = none (the default).
    public var romSize: UInt64 = 0
    /// MSI vectors (0 = no MSI capability). Default 1.
    public var msiVectors: Int = 1
    /// MSI-X vectors (0 = no MSI-X capability). Default 0.
    public var msixVectors: Int = 0
    /// The BAR holding the MSI-X table (offset 0) and PBA (offset size / 2).
    public var msixBAR: Int = 0
    /// A PCI Express endpoint (PCIe capability, 4 KiB config space, an ERR IRQ). Default true.
    public var pcie: Bool = true
    /// Interrupt pin A (INTx). Default true.
    public var intx: Bool = true
    /// The function can be reset (vfio-pci's `reset_works`: some reset method, such as FLR or PM,
    /// exists). Default true. QEMU's `edu` has none.
    public var reset: Bool = true
    /// What each BAR decodes (default: 32-bit memory). Padded to six like `bars`.
    public var barTypes: [PCIBARType] = Defaults.barTypes {
        didSet { if barTypes.count < 6 { barTypes += Array(repeating: .memory32, count: 6 - barTypes.count) } }
    }
    /// Which memory BARs are prefetchable (default none). Padded to six like `bars`.
    public var barPrefetchable: [Bool] = Defaults.barPrefetchable {
        didSet { if barPrefetchable.count < 6 { barPrefetchable += Array(repeating: false, count: 6 - barPrefetchable.count) } }
    }
    /// The personality the topology names; nil lets the ids choose (`effectivePersonality`).
    public var personality: PCIPersonalityKind?
    /// A virtio-net function's MAC address (default 52:54:00:12:34:56, QEMU's first).
    public var mac: [UInt8] = Defaults.mac
    /// A virtio-net function's link status (VIRTIO_NET_S_LINK_UP). Default true.
    public var linkUp: Bool = true

    /// The default arrays, made once and shared (copy-on-write) by every identity: a topology
    /// decodes two default identities per device, and four fresh arrays each were a tenth of the
    /// start-up of a 10,000-device topology.
    private enum Defaults {
        static let bars: [UInt64] = [4096, 0, 0, 0, 0, 0]
        static let barTypes: [PCIBARType] = Array(repeating: .memory32, count: 6)
        static let barPrefetchable: [Bool] = Array(repeating: false, count: 6)
        static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    }

    /// The defaults: a PCIe endpoint 1b36:0005 with a 4 KiB BAR0, INTx and one MSI vector.
    public init() {}

    /// The defaults, with the identity fields replaced.
    public init(vendorID: UInt16 = 0x1b36, deviceID: UInt16 = 0x0005, classCode: UInt32 = 0xff0000,
                bars: [UInt64] = [4096, 0, 0, 0, 0, 0], romSize: UInt64 = 0, msiVectors: Int = 1,
                msixVectors: Int = 0, msixBAR: Int = 0, pcie: Bool = true, intx: Bool = true) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.bars = bars + Array(repeating: 0, count: max(0, 6 - bars.count))
        self.romSize = romSize
        self.msiVectors = msiVectors
        self.msixVectors = msixVectors
        self.msixBAR = msixBAR
        self.pcie = pcie
        self.intx = intx
    }

    /// The size of BAR `index` (0 when absent or beyond the array).
    public func barSize(_ index: Int) -> UInt64 { index >= 0 && index < bars.count ? bars[index] : 0 }

    /// The first rule this identity breaks, as (JSON key, message), or nil when it is valid.
    public func problem() -> (key: String, message: String)? {
        if classCode > 0xffffff { return ("class_code", "expected a 24-bit class code, found 0x\(String(classCode, radix: 16))") }
        if bars.count > 6 { return ("bars", "expected at most 6 BAR sizes, found \(bars.count)") }
        for (i, size) in bars.enumerated() where size != 0 && barType(i) == .memory32 {
            if size < 16 || size > 1 << 31 || size & (size - 1) != 0 {
                return ("bars", "BAR\(i) size \(size): expected 0 or a power of two from 16 to 2147483648")
            }
        }
        if romSize != 0 && (romSize < 2048 || romSize > 1 << 24 || romSize & (romSize - 1) != 0) {
            return ("rom_size", "expected 0 or a power of two from 2048 to 16777216, found \(romSize)")
        }
        if ![0, 1, 2, 4, 8, 16, 32].contains(msiVectors) {
            return ("msi", "expected 0, 1, 2, 4, 8, 16 or 32 vectors, found \(msiVectors)")
        }
        if msixVectors < 0 || msixVectors > 2048 {
            return ("msix", "expected 0 to 2048 vectors, found \(msixVectors)")
        }
        if msixBAR < 0 || msixBAR > 5 { return ("msix_bar", "expected a BAR index from 0 to 5, found \(msixBAR)") }
        if let problem = personalityProblem() { return problem }
        if msixVectors > 0 {
            let size = barSize(msixBAR)
            let table = UInt64(msixVectors) * 16, pba = UInt64((msixVectors + 63) / 64) * 8
            if size == 0 { return ("msix_bar", "BAR\(msixBAR) holds the MSI-X table but is absent") }
            if table > size / 2 || pba > size / 2 {
                return ("msix", "\(msixVectors) MSI-X vectors need BAR\(msixBAR) of at least "
                            + "\(2 * max(table, pba)) bytes (table at 0, PBA at half), it has \(size)")
            }
        }
        return nil
    }
}
