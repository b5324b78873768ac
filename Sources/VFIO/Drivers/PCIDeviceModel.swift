// The built-in PCI function behind the model's vfio-pci devices: a type-0 config space, memfd-backed
// memory BARs, an optional option ROM, and INTx/MSI/MSI-X/ERR/REQ interrupt triggers on eventfds,
// answered as v6.3 drivers/vfio/pci (vfio_pci_core.c, vfio_pci_config.c, vfio_pci_intrs.c,
// vfio_pci_rdwr.c) answers for a simple device.
//
// What QEMU 7.2 (Debian 1:7.2+dfsg-7, hw/vfio/pci.c + common.c) does when it realizes
// `-device vfio-pci,sysfsdev=<tree>/bus/pci/devices/<name>`, and what this model answers:
//
//  1. stat(sysfsdev); readlink(<sysfsdev>/iommu_group) -> group number; realpath(<sysfsdev>/subsystem)
//     (only compared with "/sys/bus/mdev").
//  2. vfio_get_group: open("/dev/vfio/<N>", O_RDWR|O_CLOEXEC); VFIO_GROUP_GET_STATUS (must be VIABLE);
//     vfio_connect_container: VFIO_GROUP_SET_CONTAINER on each existing container first, else
//     open("/dev/vfio/vfio"), VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION(TYPE1v2, TYPE1, SPAPR_TCE_v2,
//     SPAPR_TCE), VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU(TYPE1v2), VFIO_IOMMU_GET_INFO (argsz 24,
//     again with the argsz it returns when caps do not fit), then the memory listener: one
//     VFIO_IOMMU_MAP_DMA (R|W, or R for read-only RAM) per RAM section, and for the device's own BAR
//     mmaps once the guest enables memory decoding (peer-to-peer; a failure there is only reported).
//     Without KVM (TCG/qtest) no KVM device ioctls.
//  3. vfio_get_device: VFIO_GROUP_GET_DEVICE_FD(name); VFIO_DEVICE_GET_INFO argsz 20 -> must have
//     FLAGS_PCI, num_regions >= 8, num_irqs >= 3; RESET flag -> reset_works.
//  4. vfio_populate_device: GET_REGION_INFO for BAR0..BAR5 (argsz 32, retried with the larger argsz
//     the kernel returns when a cap chain does not fit: the MSI-X BAR carries MSIX_MAPPABLE); a BAR
//     with MMAP and no SPARSE_MMAP cap is mapped whole; GET_REGION_INFO(config): size 256 clears
//     QEMU's express flag, 4096 keeps it; GET_IRQ_INFO(ERR): an error (non-PCIe) is silent, count 1
//     enables AER, count 0 warns. VGA only with x-vga=on.
//  5. pread(config, MIN(4096 or 256, config size), 7 << 40): a short read fails realize.
//  6. ROM sizing: pread 4 @0x30, pwrite 0xfffff800 @0x30, pread 4 @0x30, pwrite orig @0x30; size 0
//     (no ROM) returns silently. With a ROM the guest's first ROM access does GET_REGION_INFO(ROM)
//     and preads the whole ROM (size 0 there prints "Cannot read device rom").
//  7. vfio_bars_prepare: pread 4 @0x10+4*n for each BAR whose region size is non-zero (I/O vs
//     memory, 64-bit) -> sizes must be powers of two (pci_register_bar asserts it).
//  8. vfio_msix_early_setup (MSI-X cap present): pread 2 @cap+2, 4 @cap+4, 4 @cap+8; the PBA
//     must lie inside its BAR; GET_REGION_INFO of the table BAR again (MSIX_MAPPABLE cap -> keep the
//     whole-BAR mmap).
//  9. vfio_bars_register: mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED, devfd, n << 40) per BAR
//     (failure only warns "Performance may be slow"); QEMU munmaps them at finalize.
// 10. vfio_add_capabilities: walks the standard list from its copy; MSI: pread 2 @cap+2 (64-bit,
//     per-vector mask, multiple message capable); MSI-X: msix_init (table/PBA must fit the BAR and
//     not overlap); PCIe endpoint: kept as-is on a conventional bus, turned into an RC integrated
//     endpoint on a root express bus; extended caps only if dword 0x100 is non-zero.
// 11. pread 1 @0x3d (interrupt pin); pin != 0 -> vfio_intx_enable: SET_IRQS(INTx, TRIGGER,
//     DATA_EVENTFD, start 0, count 1, eventfd). With KVM also MASK, irqfd, UNMASK with a resample
//     eventfd, UNMASK.
// 12. Migration (x-enable-migration is off in 7.2): only a blocker, no ioctl.
// 13. vfio_register_err_notifier (AER): SET_IRQS(ERR, TRIGGER, eventfd); vfio_register_req_notifier:
//     GET_IRQ_INFO(REQ) count >= 1 -> SET_IRQS(REQ, TRIGGER, eventfd).
// 14. Machine reset (vfio_pci_reset, also at start-up): INTx disable = SET_IRQS(INTx, DATA_NONE|
//     TRIGGER, count 0); pread 2 @0x04 + pwrite 2 @0x04 (IO, MEM, MASTER, INTX_DISABLE cleared);
//     VFIO_DEVICE_RESET (reset_works and FLR, or no PM reset); INTx enable again; pwrite 4 of 0 to
//     each BAR register @0x10..0x24.
// 15. Guest time: config reads/writes of 1, 2 or 4 bytes anywhere (written through; the kernel
//     filters read-only bits); MSI enable -> SET_IRQS(MSI, TRIGGER, EVENTFD, 0, n, fds); MSI-X enable
//     -> SET_IRQS(MSIX, ..., count 1) then count 0 / DATA_NONE to disable and re-enable with more
//     vectors, single vectors with fd -1 to release; INTx EOI on BAR access -> SET_IRQS(INTx,
//     DATA_NONE|UNMASK, 0, 1); BAR access through the mmap, or pread/pwrite @n << 40 (EIO while the
//     command register's memory bit is clear).
// 16. Exit (finalize): SET_IRQS(REQ/ERR, TRIGGER, fd -1), interrupts disabled, munmap of the BARs,
//     close(device), VFIO_GROUP_UNSET_CONTAINER, close(container), close(group). A plain `quit`
//     does not finalize devices: the process exit closes the fds (under the interposer, its
//     atexit hook: swiftvfio_exit_files(), docs/PRELOAD.md "At exit"). Scripts/test-qemu.sh runs
//     this list end to end.
//
// The model: a PCI Express endpoint by default (4 KiB config space, a v2 PCIe capability with
// FLR, so GET_IRQ_INFO(ERR) answers count 1 as for any PCIe function and the vfio.rst sample's loop
// over all IRQ indexes succeeds); "pcie": false gives a conventional function with 256 bytes of
// config space, no PCIe capability and ERR answering EINVAL, as the kernel does.

import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The identity and resources of a modelled PCI function: what `lspci -n` and the BAR sizes say.
///
/// Topology JSON keys (all optional; integers may also be written as strings "0x1af4" or "4096"):
/// `vendor_id`, `device_id` (16-bit), `class_code` (24-bit class/subclass/prog-if), `bars` (up to 6
/// sizes; 0 = absent, else a power of two from 16 bytes to 2 GiB: 32-bit memory BARs),
/// `rom_size` (0, or a power of two from 2 KiB to 16 MiB), `msi` (vectors: 0 = no MSI capability, or
/// 1, 2, 4, 8, 16, 32), `msix` (0 = no MSI-X capability, or 1...2048 vectors), `msix_bar` (the BAR
/// holding the MSI-X table at offset 0 and the PBA at half the BAR; both must fit their half),
/// `pcie` (a PCI Express endpoint with 4 KiB of config space; default true), `intx` (interrupt pin
/// A; default true), `reset` (the function has a reset method, so vfio-pci's `reset_works`: the
/// RESET flag of DEVICE_GET_INFO and a working DEVICE_RESET; default true).
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
    public var bars: [UInt64] = [4096, 0, 0, 0, 0, 0] {
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
        for (i, size) in bars.enumerated() where size != 0 {
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

/// vfio-pci's uapi numbers for the PCI device (`include/uapi/linux/vfio.h`).
enum VFIOPCI {
    static let bar0Region = 0, romRegion = 6, configRegion = 7, vgaRegion = 8, numRegions = 9
    static let intxIRQ: UInt32 = 0, msiIRQ: UInt32 = 1, msixIRQ: UInt32 = 2, errIRQ: UInt32 = 3, reqIRQ: UInt32 = 4
    static let numIRQs: UInt32 = 5
    /// VFIO_PCI_OFFSET_SHIFT: region index << 40 is its offset in the device fd.
    static let offsetShift: Int64 = 40
    static let offsetMask: Int64 = (1 << 40) - 1

    static let deviceFlagsReset: UInt32 = 1 << 0, deviceFlagsPCI: UInt32 = 1 << 1
    static let regionRead: UInt32 = 1, regionWrite: UInt32 = 2, regionMmap: UInt32 = 4, regionCaps: UInt32 = 8
    static let capMSIXMappable: UInt16 = 3
    static let irqEventfd: UInt32 = 1, irqMaskable: UInt32 = 2, irqAutomasked: UInt32 = 4, irqNoresize: UInt32 = 8

    static let setDataNone: UInt32 = 1, setDataBool: UInt32 = 2, setDataEventfd: UInt32 = 4
    static let setActionMask: UInt32 = 8, setActionUnmask: UInt32 = 16, setActionTrigger: UInt32 = 32
    static let setDataTypeMask: UInt32 = 7, setActionTypeMask: UInt32 = 0x38

    /// The region index an offset in the device fd selects.
    static func index(of offset: Int64) -> Int { Int(offset >> offsetShift) }
}

/// PCI config-space register offsets and bits (`include/uapi/linux/pci_regs.h`).
enum PCIReg {
    static let vendorID = 0x00, deviceID = 0x02, command = 0x04, status = 0x06, revision = 0x08
    static let classProg = 0x09, cacheLineSize = 0x0c, latencyTimer = 0x0d, headerType = 0x0e
    static let bar0 = 0x10, subsystemVendorID = 0x2c, subsystemID = 0x2e, romAddress = 0x30
    static let capabilityList = 0x34, interruptLine = 0x3c, interruptPin = 0x3d
    static let commandIO: UInt16 = 0x1, commandMemory: UInt16 = 0x2, commandMaster: UInt16 = 0x4
    static let commandParity: UInt16 = 0x40, commandSERR: UInt16 = 0x100, commandIntxDisable: UInt16 = 0x400
    static let statusInterrupt: UInt16 = 0x8, statusCapList: UInt16 = 0x10
    static let capIDPCIe: UInt8 = 0x10, capIDMSI: UInt8 = 0x05, capIDMSIX: UInt8 = 0x11
    /// Where the model puts its capabilities.
    static let pcieCapOffset = 0x40, msiCapOffset = 0x80, msixCapOffset = 0xa0
    static let pcieCapSize = 0x3c, msiCapSize = 24, msixCapSize = 12
}

/// One modelled PCI function's state: the virtual config space (`vdev->vconfig`), BAR memory, the
/// ROM, and the interrupt contexts (`vdev->ctx`, `err_trigger`, `req_trigger`), all under `igate`.
public final class PCIDeviceModel: @unchecked Sendable {
    /// What the function is.
    public let identity: PCIDeviceIdentity
    /// Config space size: 4096 for PCIe, 256 for conventional PCI (`pdev->cfg_size`).
    public let configSize: Int

    /// `vdev->igate` plus the config lock: every member below is guarded by it.
    let lock = KernelMutex("vdev->igate")
    private var config: [UInt8]
    private var writable: [UInt8]
    /// The last values written to the BAR and ROM registers; reads apply the size masks
    /// (the kernel's vfio_bar_fixup).
    private var barRaw = [UInt32](repeating: 0, count: 6)
    private var romRaw: UInt32 = 0
    private let barAddress: [UInt32]
    private let romAddress: UInt32

    /// A memory BAR's backing store: a memfd, and the model's own shared mapping of it.
    private struct BARMemory {
        let fd: Int32
        let base: UnsafeMutableRawPointer
        let length: Int
    }
    private var barMemory: [BARMemory?] = Array(repeating: nil, count: 6)
    private let rom: [UInt8]

    enum IRQType: Equatable { case none, intx, msi, msix }
    private(set) var irqType: IRQType = .none
    /// Per-vector triggers (dup'ed eventfds the model owns); `count` is `num_ctx`.
    private var triggers: [Int32?] = []
    private var intxMasked = false
    private var intxPending = false
    private var intxUnmaskFD: Int32?
    private var errTrigger: Int32?
    private var reqTrigger: Int32?
    private var resetCount = 0
    private var interruptCount = 0

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// A function with `identity` (which must be valid, see `PCIDeviceIdentity.problem()`); `name`
    /// names the memfds ("vfio-bar0:0000:06:0d.0" in /proc/self/maps).
    init(identity: PCIDeviceIdentity, name: String) {
        self.identity = identity
        configSize = identity.pcie ? 4096 : 256
        config = [UInt8](repeating: 0, count: configSize)
        writable = [UInt8](repeating: 0, count: configSize)
        // Fake host physical addresses: non-zero (the kernel treats a zero start as unimplemented)
        // and naturally aligned.
        var cursor: UInt64 = 0xc000_0000
        var addresses = [UInt32](repeating: 0, count: 6)
        for i in 0..<6 {
            let size = identity.barSize(i)
            guard size > 0 else { continue }
            cursor = (cursor + size - 1) & ~(size - 1)
            addresses[i] = UInt32(truncatingIfNeeded: cursor)
            cursor += size
        }
        barAddress = addresses
        romAddress = identity.romSize > 0
            ? UInt32(truncatingIfNeeded: (cursor + identity.romSize - 1) & ~(identity.romSize - 1)) : 0
        rom = Self.makeROM(identity)
        for i in 0..<6 where identity.barSize(i) > 0 {
            let length = Self.pageAlign(Int(identity.barSize(i)))
            let fd = "vfio-bar\(i):\(name)".withCString { svfio_memfd($0, UInt64(length)) }
            guard fd >= 0 else { continue }
            var err: Int32 = 0
            guard let base = svfio_mmap_shared(fd, length, PROT_READ | PROT_WRITE, 0, &err) else {
                _ = svfio_close_fd(fd)
                continue
            }
            barMemory[i] = BARMemory(fd: fd, base: base, length: length)
        }
        initConfig()
    }

    deinit {
        for m in barMemory.compactMap({ $0 }) {
            _ = svfio_munmap(m.base, m.length)
            _ = svfio_close_fd(m.fd)
        }
        for fd in triggers.compactMap({ $0 }) { _ = svfio_close_fd(fd) }
        for fd in [errTrigger, reqTrigger, intxUnmaskFD].compactMap({ $0 }) { _ = svfio_close_fd(fd) }
    }

    static func pageAlign(_ n: Int) -> Int { (n + pageSize - 1) / pageSize * pageSize }

    // MARK: Config space layout

    /// Kernel: vfio_config_init(): the virtual config space as the function presents it after
    /// pci_enable_device() (memory decoding on), with the write masks of the permission tables.
    private func initConfig() {
        let id = identity
        config = [UInt8](repeating: 0, count: configSize)
        writable = [UInt8](repeating: 0, count: configSize)
        put16(PCIReg.vendorID, id.vendorID)
        put16(PCIReg.deviceID, id.deviceID)
        let hasMemory = id.bars.contains { $0 > 0 } || id.romSize > 0
        put16(PCIReg.command, hasMemory ? PCIReg.commandMemory : 0)
        mask16(PCIReg.command, PCIReg.commandIO | PCIReg.commandMemory | PCIReg.commandMaster
               | PCIReg.commandParity | PCIReg.commandSERR | PCIReg.commandIntxDisable)
        config[PCIReg.revision] = 0
        config[PCIReg.classProg] = UInt8(id.classCode & 0xff)
        config[PCIReg.classProg + 1] = UInt8((id.classCode >> 8) & 0xff)
        config[PCIReg.classProg + 2] = UInt8((id.classCode >> 16) & 0xff)
        writable[PCIReg.cacheLineSize] = 0xff
        writable[PCIReg.latencyTimer] = 0xff
        config[PCIReg.headerType] = 0   // type 0, single function
        put16(PCIReg.subsystemVendorID, id.vendorID)
        put16(PCIReg.subsystemID, id.deviceID)
        writable[PCIReg.interruptLine] = 0xff
        config[PCIReg.interruptLine] = 0xff
        config[PCIReg.interruptPin] = id.intx ? 1 : 0
        barRaw = barAddress
        romRaw = romAddress

        // Capabilities, chained in address order.
        var caps: [(offset: Int, id: UInt8)] = []
        if id.pcie { caps.append((PCIReg.pcieCapOffset, PCIReg.capIDPCIe)) }
        if id.msiVectors > 0 { caps.append((PCIReg.msiCapOffset, PCIReg.capIDMSI)) }
        if id.msixVectors > 0 { caps.append((PCIReg.msixCapOffset, PCIReg.capIDMSIX)) }
        if let first = caps.first {
            config[PCIReg.capabilityList] = UInt8(first.offset)
            put16(PCIReg.status, PCIReg.statusCapList)
        }
        for (i, cap) in caps.enumerated() {
            config[cap.offset] = cap.id
            config[cap.offset + 1] = i + 1 < caps.count ? UInt8(caps[i + 1].offset) : 0
        }
        if id.pcie {
            let p = PCIReg.pcieCapOffset
            put16(p + 2, 0x0002)                   // version 2, type 0: PCI Express endpoint
            put32(p + 4, 0x1000_8000)              // DevCap: FLR, role-based error reporting
            mask16(p + 8, 0x7fff)                  // DevCtl (bit 15 initiates FLR: not stored)
            put32(p + 12, 0x0000_0011)             // LnkCap: x1, 2.5 GT/s
            mask16(p + 16, 0x0fff)                 // LnkCtl
            put16(p + 18, 0x0011)                  // LnkSta: x1, 2.5 GT/s
            mask16(p + 40, 0xffff)                 // DevCtl2
            put32(p + 44, 0x0000_0002)             // LnkCap2: 2.5 GT/s
            put16(p + 48, 0x0001)                  // LnkCtl2: target 2.5 GT/s
            mask16(p + 48, 0xffff)
        }
        if id.msiVectors > 0 {
            let p = PCIReg.msiCapOffset
            let mmc = UInt16(id.msiVectors.trailingZeroBitCount) << 1
            put16(p + 2, 0x0180 | mmc)             // per-vector masking, 64-bit, MMC
            mask16(p + 2, 0x0071)                  // enable, multiple message enable
            mask32(p + 4, 0xffff_fffc)             // address low
            mask32(p + 8, 0xffff_ffff)             // address high
            mask16(p + 12, 0xffff)                 // data
            mask32(p + 16, 0xffff_ffff)            // mask bits
        }
        if id.msixVectors > 0 {
            let p = PCIReg.msixCapOffset
            put16(p + 2, UInt16(id.msixVectors - 1))
            mask16(p + 2, 0xc000)                  // enable, function mask
            put32(p + 4, UInt32(id.msixBAR))       // table at offset 0 of the BAR
            put32(p + 8, UInt32(id.barSize(id.msixBAR) / 2) | UInt32(id.msixBAR))
        }
    }

    private func put16(_ at: Int, _ v: UInt16) { config[at] = UInt8(v & 0xff); config[at + 1] = UInt8(v >> 8) }
    private func put32(_ at: Int, _ v: UInt32) { put16(at, UInt16(v & 0xffff)); put16(at + 2, UInt16(v >> 16)) }
    private func mask16(_ at: Int, _ v: UInt16) { writable[at] = UInt8(v & 0xff); writable[at + 1] = UInt8(v >> 8) }
    private func mask32(_ at: Int, _ v: UInt32) { mask16(at, UInt16(v & 0xffff)); mask16(at + 2, UInt16(v >> 16)) }
    private func get16(_ at: Int) -> UInt16 { UInt16(config[at]) | UInt16(config[at + 1]) << 8 }

    /// Where the MSI-X table lives: (BAR, offset, size in bytes), or nil without MSI-X
    /// (`vdev->msix_bar`, `msix_offset`, `msix_size`).
    private var msixTable: (bar: Int, offset: Int, size: Int)? {
        identity.msixVectors > 0 ? (identity.msixBAR, 0, identity.msixVectors * 16) : nil
    }

    /// The value a config byte reads as: BAR and ROM registers through the size masks.
    private func configByte(_ at: Int) -> UInt8 {
        if at >= PCIReg.bar0 && at < PCIReg.bar0 + 24 {
            let bar = (at - PCIReg.bar0) / 4
            let size = identity.barSize(bar)
            // 32-bit non-prefetchable memory BAR: type bits 0.
            let value = size == 0 ? 0 : barRaw[bar] & ~UInt32(truncatingIfNeeded: size - 1) & 0xffff_fff0
            return UInt8(truncatingIfNeeded: value >> (8 * UInt32((at - PCIReg.bar0) % 4)))
        }
        if at >= PCIReg.romAddress && at < PCIReg.romAddress + 4 {
            let size = identity.romSize
            let value = size == 0 ? 0 : romRaw & (~UInt32(truncatingIfNeeded: size - 1) | 1) & 0xffff_f801
            return UInt8(truncatingIfNeeded: value >> (8 * UInt32(at - PCIReg.romAddress)))
        }
        return config[at]
    }

    private func writeConfigByte(_ at: Int, _ value: UInt8) {
        if at >= PCIReg.bar0 && at < PCIReg.bar0 + 24 {
            let bar = (at - PCIReg.bar0) / 4, shift = 8 * UInt32((at - PCIReg.bar0) % 4)
            barRaw[bar] = barRaw[bar] & ~(0xff << shift) | UInt32(value) << shift
            return
        }
        if at >= PCIReg.romAddress && at < PCIReg.romAddress + 4 {
            let shift = 8 * UInt32(at - PCIReg.romAddress)
            romRaw = romRaw & ~(0xff << shift) | UInt32(value) << shift
            return
        }
        config[at] = config[at] & ~writable[at] | value & writable[at]
    }

    /// An option ROM image: a 0x55AA header, a PCI data structure naming the function, 0xff after.
    private static func makeROM(_ id: PCIDeviceIdentity) -> [UInt8] {
        guard id.romSize > 0 else { return [] }
        var r = [UInt8](repeating: 0xff, count: Int(id.romSize))
        for i in 0..<0x40 { r[i] = 0 }
        r[0] = 0x55; r[1] = 0xaa
        r[2] = UInt8(min(Int(id.romSize) / 512, 255))
        r[0x18] = 0x1c; r[0x19] = 0                    // offset of the PCI data structure
        let p = 0x1c
        r[p] = 0x50; r[p + 1] = 0x43; r[p + 2] = 0x49; r[p + 3] = 0x52   // "PCIR"
        r[p + 4] = UInt8(id.vendorID & 0xff); r[p + 5] = UInt8(id.vendorID >> 8)
        r[p + 6] = UInt8(id.deviceID & 0xff); r[p + 7] = UInt8(id.deviceID >> 8)
        r[p + 10] = 0x18                               // structure length
        r[p + 12] = UInt8(id.classCode & 0xff)
        r[p + 13] = UInt8((id.classCode >> 8) & 0xff)
        r[p + 14] = UInt8((id.classCode >> 16) & 0xff)
        r[p + 16] = r[2]                               // image length in 512-byte units
        r[p + 21] = 0x80                               // last image
        return r
    }

    // MARK: Device open / close

    /// Kernel: vfio_pci_core_enable(): a fresh virtual config space and no interrupts.
    func enable() {
        lock.withLock { initConfig() }
    }

    /// Kernel: vfio_pci_core_disable(): interrupts off, every trigger released, the function reset.
    func disable() {
        lock.withLock {
            disableIRQsLocked()
            for fd in [errTrigger, reqTrigger].compactMap({ $0 }) { _ = svfio_close_fd(fd) }
            errTrigger = nil
            reqTrigger = nil
        }
    }

    private func disableIRQsLocked() {
        for fd in triggers.compactMap({ $0 }) { _ = svfio_close_fd(fd) }
        triggers = []
        if let fd = intxUnmaskFD { _ = svfio_close_fd(fd) }
        intxUnmaskFD = nil
        intxMasked = false
        intxPending = false
        irqType = .none
        setInterruptStatus(false)
    }

    private func setInterruptStatus(_ on: Bool) {
        let s = get16(PCIReg.status)
        put16(PCIReg.status, on ? s | PCIReg.statusInterrupt : s & ~PCIReg.statusInterrupt)
    }

    // MARK: read / write / mmap

    /// Kernel: vfio_pci_rw(): the region `offset >> 40` selects, at `offset & (1 << 40) - 1`.
    func rw(buffer: UInt, count: Int, offset: inout Int64, write: Bool) throws(Errno) -> Int {
        let index = VFIOPCI.index(of: offset)
        let pos = Int(offset & VFIOPCI.offsetMask)
        let done: Int
        switch index {
        case VFIOPCI.configRegion:
            done = try configRW(buffer: buffer, count: count, pos: pos, write: write)
        case VFIOPCI.romRegion:
            if write { throw .EINVAL }
            done = try barRW(bar: index, buffer: buffer, count: count, pos: pos, write: false)
        case 0..<6:
            done = try barRW(bar: index, buffer: buffer, count: count, pos: pos, write: write)
        default:
            throw .EINVAL   // VGA without VGA, and indexes past the last region
        }
        offset += Int64(done)
        return done
    }

    /// Kernel: vfio_pci_config_rw() / vfio_config_do_rw(): EFAULT outside the config space.
    private func configRW(buffer: UInt, count: Int, pos: Int, write: Bool) throws(Errno) -> Int {
        if count == 0 { return 0 }
        guard pos < configSize, count <= configSize - pos else { throw .EFAULT }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { (tmp) throws(Errno) -> Int in
            let p = tmp.baseAddress!
            if write {
                try UserMemory.copyIn(p, from: buffer, count: count)
                lock.withLock {
                    for i in 0..<count { writeConfigByte(pos + i, p[i]) }
                }
            } else {
                lock.withLock {
                    for i in 0..<count { p[i] = configByte(pos + i) }
                }
                try UserMemory.copyOut(p, to: buffer, count: count)
            }
            return count
        }
    }

    /// Kernel: vfio_pci_bar_rw() / vfio_pci_core_do_io_rw(): EINVAL for an absent BAR or a start
    /// past its end, the count clipped to the BAR, EIO while memory decoding is off, the MSI-X table
    /// excluded (reads as 0xff, writes dropped).
    private func barRW(bar: Int, buffer: UInt, count: Int, pos: Int, write: Bool) throws(Errno) -> Int {
        let end = bar == VFIOPCI.romRegion ? Int(identity.romSize) : Int(identity.barSize(bar))
        guard end > 0 else { throw .EINVAL }
        guard pos < end else { throw .EINVAL }
        let n = min(count, end - pos)
        if n == 0 { return 0 }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n) { (tmp) throws(Errno) -> Int in
            let p = tmp.baseAddress!
            if write { try UserMemory.copyIn(p, from: buffer, count: n) }
            try lock.withLock { () throws(Errno) in
                guard get16(PCIReg.command) & PCIReg.commandMemory != 0 else { throw .EIO }
                let excluded: Range<Int> = {
                    guard let t = msixTable, t.bar == bar else { return 0..<0 }
                    return t.offset..<(t.offset + t.size)
                }()
                if bar == VFIOPCI.romRegion {
                    for i in 0..<n { p[i] = rom[pos + i] }
                    return
                }
                guard let mem = barMemory[bar] else { throw .ENOMEM }
                let base = mem.base.assumingMemoryBound(to: UInt8.self)
                for i in 0..<n where !excluded.contains(pos + i) {
                    if write { base[pos + i] = p[i] } else { p[i] = base[pos + i] }
                }
                if !write { for i in 0..<n where excluded.contains(pos + i) { p[i] = 0xff } }
            }
            if !write { try UserMemory.copyOut(p, to: buffer, count: n) }
            return n
        }
    }

    /// Kernel: vfio_pci_core_mmap(): BARs only, whole pages inside the (page-rounded) BAR; the
    /// memfd is mapped shared, so every mapping and the model see the same bytes. The mapping is
    /// the caller's (munmap it as after a real mmap); it outlives the device fd.
    func mmap(offset: Int64, length: Int, prot: Int32) throws(Errno) -> UInt {
        let index = VFIOPCI.index(of: offset)
        guard index < VFIOPCI.numRegions, index < VFIOPCI.romRegion, length > 0 else { throw .EINVAL }
        let size = identity.barSize(index)
        guard size > 0, let mem = lock.withLock({ barMemory[index] }) else { throw .EINVAL }
        let start = Int(offset & VFIOPCI.offsetMask)
        let request = Self.pageAlign(length)
        guard start <= mem.length, request <= mem.length - start else { throw .EINVAL }
        var err: Int32 = 0
        guard let p = svfio_mmap_shared(mem.fd, request, prot, UInt64(start), &err) else {
            throw Errno(rawValue: err == EACCES ? Errno.EACCES.rawValue : Errno.ENOMEM.rawValue)
        }
        return UInt(bitPattern: p)
    }

    // MARK: Info ioctls

    // struct vfio_device_info { argsz, flags, num_regions, num_irqs, cap_offset, pad }
    struct DeviceInfo: BitwiseCopyable { var argsz: UInt32; var flags: UInt32; var numRegions: UInt32; var numIRQs: UInt32; var capOffset: UInt32 }
    // struct vfio_region_info { argsz, flags, index, cap_offset, size, offset }
    struct RegionInfo: BitwiseCopyable { var argsz: UInt32; var flags: UInt32; var index: UInt32; var capOffset: UInt32; var size: UInt64; var offset: UInt64 }
    // struct vfio_irq_info { argsz, flags, index, count }
    struct IRQInfo: BitwiseCopyable { var argsz: UInt32; var flags: UInt32; var index: UInt32; var count: UInt32 }
    // struct vfio_irq_set { argsz, flags, index, start, count, data[] }
    struct IRQSet: BitwiseCopyable { var argsz: UInt32; var flags: UInt32; var index: UInt32; var start: UInt32; var count: UInt32 }

    /// Kernel: vfio_pci_ioctl_get_info() as in v6.3: 16 bytes read, 20 written back (cap_offset
    /// zeroed) when argsz covers them (the old `offsetofend(vfio_iommu_type1_info, cap_offset)`
    /// rule), else 16; no device capabilities on x86.
    func getInfo(_ arg: UInt) throws(Errno) -> Int {
        var info = DeviceInfo(argsz: 0, flags: 0, numRegions: 0, numIRQs: 0, capOffset: 0)
        try withUnsafeMutableBytes(of: &info) { (b) throws(Errno) in try UserMemory.copyIn(b.baseAddress!, from: arg, count: 16) }
        guard info.argsz >= 16 else { throw .EINVAL }
        let minsz = info.argsz >= 20 ? 20 : 16
        info.capOffset = 0
        info.flags = VFIOPCI.deviceFlagsPCI | (identity.reset ? VFIOPCI.deviceFlagsReset : 0)
        info.numRegions = UInt32(VFIOPCI.numRegions)
        info.numIRQs = VFIOPCI.numIRQs
        try withUnsafeBytes(of: &info) { (b) throws(Errno) in try UserMemory.copyOut(b.baseAddress!, to: arg, count: minsz) }
        return 0
    }

    /// Kernel: vfio_pci_ioctl_get_region_info(): BARs (MMAP when present; the MSI-X BAR carries a
    /// MSIX_MAPPABLE capability, so its argsz must cover 40 bytes), ROM (READ when present), config,
    /// VGA (EINVAL: no VGA), nothing past index 8 (EINVAL).
    func getRegionInfo(_ arg: UInt) throws(Errno) -> Int {
        var info = try UserMemory.read(RegionInfo.self, from: arg)
        guard info.argsz >= 32 else { throw .EINVAL }
        var caps: [UInt8] = []
        let index = Int(info.index)
        switch index {
        case VFIOPCI.configRegion:
            info.offset = UInt64(index) << 40
            info.size = UInt64(configSize)
            info.flags = VFIOPCI.regionRead | VFIOPCI.regionWrite
        case 0..<6:
            info.offset = UInt64(index) << 40
            info.size = identity.barSize(index)
            if info.size == 0 {
                info.flags = 0
                break
            }
            info.flags = VFIOPCI.regionRead | VFIOPCI.regionWrite | VFIOPCI.regionMmap
            if let t = msixTable, t.bar == index {
                // struct vfio_info_cap_header { u16 id; u16 version; u32 next; }
                caps = [UInt8(VFIOPCI.capMSIXMappable), 0, 1, 0, 0, 0, 0, 0]
            }
        case VFIOPCI.romRegion:
            info.offset = UInt64(index) << 40
            info.size = identity.romSize
            info.flags = identity.romSize > 0 ? VFIOPCI.regionRead : 0
        case VFIOPCI.vgaRegion:
            throw .EINVAL
        default:
            throw .EINVAL
        }
        if !caps.isEmpty {
            info.flags |= VFIOPCI.regionCaps
            if Int(info.argsz) < 32 + caps.count {
                info.argsz = UInt32(32 + caps.count)
                info.capOffset = 0
            } else {
                try Self.copyOut(caps, to: arg + 32)
                info.capOffset = 32
            }
        }
        try UserMemory.write(info, to: arg)
        return 0
    }

    /// Kernel: vfio_pci_get_irq_count().
    func irqCount(_ index: UInt32) -> UInt32 {
        switch index {
        case VFIOPCI.intxIRQ: return identity.intx ? 1 : 0
        case VFIOPCI.msiIRQ: return UInt32(identity.msiVectors)
        case VFIOPCI.msixIRQ: return UInt32(identity.msixVectors)
        case VFIOPCI.errIRQ: return identity.pcie ? 1 : 0
        case VFIOPCI.reqIRQ: return 1
        default: return 0
        }
    }

    /// Kernel: vfio_pci_ioctl_get_irq_info(): ERR only for PCIe functions (else EINVAL).
    func getIRQInfo(_ arg: UInt) throws(Errno) -> Int {
        var info = try UserMemory.read(IRQInfo.self, from: arg)
        guard info.argsz >= 16, info.index < VFIOPCI.numIRQs else { throw .EINVAL }
        if info.index == VFIOPCI.errIRQ && !identity.pcie { throw .EINVAL }
        info.flags = VFIOPCI.irqEventfd
        info.count = irqCount(info.index)
        info.flags |= info.index == VFIOPCI.intxIRQ ? VFIOPCI.irqMaskable | VFIOPCI.irqAutomasked : VFIOPCI.irqNoresize
        try UserMemory.write(info, to: arg)
        return 0
    }

    /// Kernel: vfio_pci_ioctl_reset(): EINVAL unless `reset_works`; then it succeeds, and
    /// interrupts and triggers are the user's and stay (the kernel only zaps mappings around it).
    func reset() throws(Errno) -> Int {
        guard identity.reset else { throw .EINVAL }
        lock.withLock { resetCount += 1 }
        return 0
    }

    // MARK: SET_IRQS

    /// Kernel: vfio_pci_ioctl_set_irqs() → vfio_set_irqs_validate_and_prepare() →
    /// vfio_pci_set_irqs_ioctl().
    func setIRQs(_ arg: UInt) throws(Errno) -> Int {
        let hdr = try UserMemory.read(IRQSet.self, from: arg)
        let max = irqCount(hdr.index)
        // vfio_set_irqs_validate_and_prepare()
        guard hdr.argsz >= 20, hdr.index < VFIOPCI.numIRQs, hdr.count < UInt32.max - hdr.start,
              hdr.flags & ~(VFIOPCI.setDataTypeMask | VFIOPCI.setActionTypeMask) == 0 else { throw .EINVAL }
        guard hdr.start < max, hdr.start + hdr.count <= max else { throw .EINVAL }
        let elementSize: Int
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone: elementSize = 0
        case VFIOPCI.setDataBool: elementSize = 1
        case VFIOPCI.setDataEventfd: elementSize = 4
        default: throw .EINVAL
        }
        var data: [UInt8] = []
        if elementSize > 0 {
            let size = Int(hdr.count) * elementSize
            guard Int(hdr.argsz) - 20 >= size else { throw .EINVAL }
            data = [UInt8](repeating: 0, count: size)
            if size > 0 { data = try Self.copyIn(from: arg + 20, count: size) }
        }
        let action = hdr.flags & VFIOPCI.setActionTypeMask
        return try lock.withLock { () throws(Errno) -> Int in
            switch (hdr.index, action) {
            case (VFIOPCI.intxIRQ, VFIOPCI.setActionMask):
                try intxMask(hdr, data)
            case (VFIOPCI.intxIRQ, VFIOPCI.setActionUnmask):
                try intxUnmask(hdr, data)
            case (VFIOPCI.intxIRQ, VFIOPCI.setActionTrigger):
                try intxTrigger(hdr, data)
            case (VFIOPCI.msiIRQ, VFIOPCI.setActionMask), (VFIOPCI.msiIRQ, VFIOPCI.setActionUnmask),
                 (VFIOPCI.msixIRQ, VFIOPCI.setActionMask), (VFIOPCI.msixIRQ, VFIOPCI.setActionUnmask):
                break   // "XXX Need masking support exported": accepted, nothing done
            case (VFIOPCI.msiIRQ, VFIOPCI.setActionTrigger), (VFIOPCI.msixIRQ, VFIOPCI.setActionTrigger):
                try msiTrigger(hdr, data, type: hdr.index == VFIOPCI.msiIRQ ? .msi : .msix)
            case (VFIOPCI.errIRQ, VFIOPCI.setActionTrigger) where identity.pcie:
                try singleTrigger(&errTrigger, hdr, data)
            case (VFIOPCI.reqIRQ, VFIOPCI.setActionTrigger):
                try singleTrigger(&reqTrigger, hdr, data)
            default:
                throw .ENOTTY
            }
            return 0
        }
    }

    /// `copy_to_user` of a byte array.
    static func copyOut(_ bytes: [UInt8], to address: UInt) throws(Errno) {
        let failure: Errno? = bytes.withUnsafeBytes { b in
            do throws(Errno) { try UserMemory.copyOut(b.baseAddress!, to: address, count: b.count); return nil } catch { return error }
        }
        if let failure { throw failure }
    }

    /// `memdup_user` of `count` bytes.
    static func copyIn(from address: UInt, count: Int) throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let failure: Errno? = bytes.withUnsafeMutableBytes { b in
            do throws(Errno) { try UserMemory.copyIn(b.baseAddress!, from: address, count: b.count); return nil } catch { return error }
        }
        if let failure { throw failure }
        return bytes
    }

    private func bool(_ data: [UInt8], _ i: Int) -> Bool { data[i] != 0 }
    private func fd(_ data: [UInt8], _ i: Int) -> Int32 {
        Int32(bitPattern: UInt32(data[4 * i]) | UInt32(data[4 * i + 1]) << 8 | UInt32(data[4 * i + 2]) << 16 | UInt32(data[4 * i + 3]) << 24)
    }

    /// Kernel: eventfd_ctx_fdget(): EBADF for a closed fd, EINVAL for one that is not an eventfd.
    /// The model keeps its own duplicate, as the kernel keeps a reference on the eventfd context.
    private func acquireEventfd(_ fd: Int32) throws(Errno) -> Int32 {
        let r = svfio_fd_is_eventfd(fd)
        if r < 0 { throw .EBADF }
        if r == 0 { throw .EINVAL }
        let d = svfio_dup_fd(fd, 0, 1)
        if d < 0 { throw Errno(rawValue: -d) }
        return d
    }

    /// Kernel: vfio_pci_set_intx_mask().
    private func intxMask(_ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        guard irqType == .intx, hdr.start == 0, hdr.count == 1 else { throw .EINVAL }
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone: intxMasked = true
        case VFIOPCI.setDataBool: if bool(data, 0) { intxMasked = true }
        default: throw .ENOTTY   // "XXX implement me"
        }
    }

    /// Kernel: vfio_pci_set_intx_unmask(): unmasking with an interrupt still pending re-sends it
    /// (and stays masked, as the automasking handler would); DATA_EVENTFD arms an unmask eventfd
    /// (kept; the model does not watch it).
    private func intxUnmask(_ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        guard irqType == .intx, hdr.start == 0, hdr.count == 1 else { throw .EINVAL }
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone: intxUnmaskLocked()
        case VFIOPCI.setDataBool: if bool(data, 0) { intxUnmaskLocked() }
        default:
            let f = fd(data, 0)
            if let old = intxUnmaskFD { _ = svfio_close_fd(old); intxUnmaskFD = nil }
            if f >= 0 { intxUnmaskFD = try acquireEventfd(f) }
        }
    }

    private func intxUnmaskLocked() {
        guard intxMasked else { return }
        if intxPending {
            intxPending = false
            signal(triggers.first ?? nil)
        } else {
            intxMasked = false
            setInterruptStatus(false)
        }
    }

    /// Kernel: vfio_pci_set_intx_trigger().
    private func intxTrigger(_ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        let dataType = hdr.flags & VFIOPCI.setDataTypeMask
        if irqType == .intx && hdr.count == 0 && dataType == VFIOPCI.setDataNone {
            disableIRQsLocked()
            return
        }
        guard irqType == .intx || irqType == .none, hdr.start == 0, hdr.count == 1 else { throw .EINVAL }
        if dataType == VFIOPCI.setDataEventfd {
            let f = fd(data, 0)
            let enabling = irqType == .none
            if enabling {
                irqType = .intx
                triggers = [nil]
                intxMasked = false
            }
            // vfio_intx_set_signal(): the old trigger goes first; fd < 0 only disables.
            if let old = triggers[0] { _ = svfio_close_fd(old); triggers[0] = nil }
            if f < 0 { return }
            do throws(Errno) {
                triggers[0] = try acquireEventfd(f)
            } catch {
                if enabling { disableIRQsLocked() }
                throw error
            }
            return
        }
        guard irqType == .intx else { throw .EINVAL }
        if dataType == VFIOPCI.setDataNone || bool(data, 0) { signal(triggers[0]) }
    }

    /// Kernel: vfio_pci_set_msi_trigger() with vfio_msi_enable() / vfio_msi_set_block().
    private func msiTrigger(_ hdr: IRQSet, _ data: [UInt8], type: IRQType) throws(Errno) {
        let dataType = hdr.flags & VFIOPCI.setDataTypeMask
        if irqType == type && hdr.count == 0 && dataType == VFIOPCI.setDataNone {
            disableIRQsLocked()
            return
        }
        guard irqType == type || irqType == .none else { throw .EINVAL }
        let start = Int(hdr.start), count = Int(hdr.count)
        if dataType == VFIOPCI.setDataEventfd {
            let enabling = irqType == .none
            if enabling {
                guard count > 0 || start > 0 else { throw .EINVAL }   // pci_alloc_irq_vectors(1, 0)
                irqType = type
                triggers = Array(repeating: nil, count: start + count)
            }
            guard start < triggers.count, start + count <= triggers.count else {
                if enabling { disableIRQsLocked() }
                throw .EINVAL
            }
            var j = start
            do throws(Errno) {
                while j < start + count {
                    if let old = triggers[j] { _ = svfio_close_fd(old); triggers[j] = nil }
                    let f = fd(data, j - start)
                    if f >= 0 { triggers[j] = try acquireEventfd(f) }
                    j += 1
                }
            } catch {
                // Unwind the vectors set by this call, then (on enable) the whole block.
                for k in start..<j { if let t = triggers[k] { _ = svfio_close_fd(t); triggers[k] = nil } }
                if enabling { disableIRQsLocked() }
                throw error
            }
            return
        }
        guard irqType == type, start + count <= triggers.count else { throw .EINVAL }
        for i in start..<(start + count) {
            guard let t = triggers[i] else { continue }
            if dataType == VFIOPCI.setDataNone || bool(data, i - start) { signal(t) }
        }
    }

    /// Kernel: vfio_pci_set_ctx_trigger_single() for ERR and REQ.
    private func singleTrigger(_ slot: inout Int32?, _ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        guard hdr.start == 0, hdr.count <= 1 else { throw .EINVAL }
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone:
            if let t = slot {
                if hdr.count > 0 { signal(t) } else { _ = svfio_close_fd(t); slot = nil }
            }
        case VFIOPCI.setDataBool:
            guard hdr.count > 0 else { throw .EINVAL }
            if bool(data, 0), let t = slot { signal(t) }
        default:
            guard hdr.count > 0 else { throw .EINVAL }
            let f = fd(data, 0)
            if f == -1 {
                if let t = slot { _ = svfio_close_fd(t) }
                slot = nil
            } else if f >= 0 {
                let n = try acquireEventfd(f)
                if let t = slot { _ = svfio_close_fd(t) }
                slot = n
            }
        }
    }

    private func signal(_ fd: Int32?) {
        guard let fd else { return }
        _ = svfio_eventfd_signal(fd)
        interruptCount += 1
    }

    // MARK: The device's side

    /// The device raises interrupt `vector` of IRQ index `index` (0 INTx, 1 MSI, 2 MSI-X, 3 ERR,
    /// 4 REQ), as its interrupt handler would relay it: INTx is automasked (a second one while
    /// masked stays pending until UNMASK), MSI/MSI-X vectors signal their eventfd. Returns whether an
    /// eventfd was signalled.
    @discardableResult
    public func raise(index: UInt32, vector: Int = 0) -> Bool {
        lock.withLock {
            switch index {
            case VFIOPCI.intxIRQ:
                guard irqType == .intx else { return false }
                // vfio_intx_handler(): with INTx disabled in the command register the line stays
                // quiet; an interrupt arriving while masked is held by the device.
                if intxMasked || get16(PCIReg.command) & PCIReg.commandIntxDisable != 0 {
                    intxPending = true
                    return false
                }
                intxMasked = true
                setInterruptStatus(true)
                guard let t = triggers.first ?? nil else { return false }
                signal(t)
                return true
            case VFIOPCI.msiIRQ, VFIOPCI.msixIRQ:
                guard irqType == (index == VFIOPCI.msiIRQ ? .msi : .msix), vector >= 0, vector < triggers.count,
                      let t = triggers[vector] else { return false }
                signal(t)
                return true
            case VFIOPCI.errIRQ:
                guard let t = errTrigger else { return false }
                signal(t)
                return true
            case VFIOPCI.reqIRQ:
                guard let t = reqTrigger else { return false }
                signal(t)
                return true
            default:
                return false
            }
        }
    }

    /// Kernel: vfio_pci_core_request(): relays the release request on the REQ eventfd; false when
    /// no channel is registered.
    func request() -> Bool { raise(index: VFIOPCI.reqIRQ) }

    // MARK: Test-visible state

    /// The BAR's memory as the model sees it (the same bytes every mmap of it shows), or nil.
    public func barMemory(_ index: Int) -> UnsafeMutableRawBufferPointer? {
        lock.withLock {
            guard index >= 0, index < 6, let m = barMemory[index] else { return nil }
            return UnsafeMutableRawBufferPointer(start: m.base, count: Int(identity.barSize(index)))
        }
    }

    /// The virtual config space as a read returns it.
    public var configSpace: [UInt8] { lock.withLock { (0..<configSize).map { configByte($0) } } }

    /// The active interrupt type: "none", "intx", "msi" or "msix".
    public var interruptMode: String {
        lock.withLock {
            switch irqType {
            case .none: "none"
            case .intx: "intx"
            case .msi: "msi"
            case .msix: "msix"
            }
        }
    }

    /// How many vectors have a trigger eventfd (INTx, MSI or MSI-X, whichever is active).
    public var armedVectors: Int { lock.withLock { triggers.compactMap { $0 }.count } }
    /// The model's own eventfd duplicates (vector triggers, ERR, REQ), for leak checks.
    var triggerFDs: [Int32] { lock.withLock { triggers.compactMap { $0 } + [errTrigger, reqTrigger].compactMap { $0 } } }
    /// Whether ERR has a trigger eventfd.
    public var errArmed: Bool { lock.withLock { errTrigger != nil } }
    /// Whether REQ has a trigger eventfd.
    public var reqArmed: Bool { lock.withLock { reqTrigger != nil } }
    /// Whether INTx is masked (automasked after an interrupt, or masked by the user).
    public var intxIsMasked: Bool { lock.withLock { intxMasked } }
    /// VFIO_DEVICE_RESET calls.
    public var resets: Int { lock.withLock { resetCount } }
    /// Eventfd signals sent (interrupts, loopback triggers, requests).
    public var interruptsSignalled: Int { lock.withLock { interruptCount } }
}
