// SPDX-License-Identifier: Apache-2.0
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

// This file is the core (vfio_pci_core.c: state, enable/disable, mmap, the info ioctls and reset);
// the config space is in PCIConfigSpace.swift (vfio_pci_config.c), region reads and writes in
// PCIReadWrite.swift (vfio_pci_rdwr.c), interrupts in PCIInterrupts.swift (vfio_pci_intrs.c).

import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One modelled PCI function's state: the virtual config space (`vdev->vconfig`), BAR memory, the
/// ROM, and the interrupt contexts (`vdev->ctx`, `err_trigger`, `req_trigger`), all under `igate`.
public final class PCIDeviceModel: @unchecked Sendable {
    /// What the function is.
    public let identity: PCIDeviceIdentity
    /// Config space size: 4096 for PCIe, 256 for conventional PCI (`pdev->cfg_size`).
    public let configSize: Int

    /// `vdev->igate` plus the config lock: every member below is guarded by it. The state is
    /// internal rather than private so the config, read/write and interrupt files (extensions)
    /// reach it; only this class's extensions touch it.
    let lock = KernelMutex("vdev->igate")
    /// The virtual config space and its write masks: empty until first needed (`ensureConfig()`).
    var config: [UInt8] = []
    var writable: [UInt8] = []
    /// The last values written to the BAR and ROM registers; reads apply the size masks
    /// (the kernel's vfio_bar_fixup).
    var barRaw: [UInt32] = []   // set with the config space (initConfig)
    var romRaw: UInt32 = 0
    /// Each BAR slot's initial register value (a 64-bit BAR's upper half in the slot above it).
    let barAddress: [UInt32]
    /// The device behind the registers (PCIPersonality.swift); guarded by `lock`.
    let personality: PCIPersonality
    let romAddress: UInt32

    /// A memory BAR's backing store: a memfd, and the model's own shared mapping of it (nil until
    /// the BAR's first mmap, read or write).
    struct BARMemory {
        let fd: Int32
        let base: UnsafeMutableRawPointer
        let length: Int
    }
    var barMemory: [BARMemory?] = PCIDeviceModel.noBARMemory
    /// Six empty slots, shared until a BAR's first use writes its own copy (no array made per
    /// function at probe). Immutable; the pointers it could hold are never shared across threads.
    nonisolated(unsafe) private static let noBARMemory: [BARMemory?] = Array(repeating: nil, count: 6)
    let rom: [UInt8]

    enum IRQType: Equatable { case none, intx, msi, msix }
    var irqType: IRQType = .none
    /// Per-vector triggers (dup'ed eventfds the model owns); `count` is `num_ctx`.
    var triggers: [Int32?] = []
    var intxMasked = false
    var intxPending = false
    var intxUnmaskFD: Int32?
    var errTrigger: Int32?
    var reqTrigger: Int32?
    private var resetCount = 0
    var interruptCount = 0

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// The host calls for the BARs' memory and the eventfds (the subsystem's seam).
    let host: HostSystem
    /// The function's bus name, which names its BAR memfds.
    private let name: String

    /// A function with `identity` (which must be valid, see `PCIDeviceIdentity.problem()`); `name`
    /// names the memfds ("vfio-bar0:0000:06:0d.0" in /proc/self/maps). Takes nothing from the host:
    /// a BAR's memory is made at its first use (`barMemoryLocked`), so a topology of 10,000
    /// functions loads without 10,000 memfds and mappings (issue 14: start-up, EMFILE at scale).
    init(identity: PCIDeviceIdentity, name: String, host: HostSystem) {
        self.host = host
        self.name = name
        self.identity = identity
        configSize = identity.pcie ? 4096 : 256
        // Fake host addresses: non-zero (the kernel treats a zero start as unimplemented) and
        // naturally aligned; I/O ports from 0xc000, 32-bit memory from 3 GiB, 64-bit memory above
        // 4 GiB (as firmware places them).
        var cursor: UInt64 = 0xc000_0000, cursor64: UInt64 = 0x8_0000_0000, ioCursor: UInt64 = 0xc000
        var addresses = [UInt32](repeating: 0, count: 6)
        func place(_ at: inout UInt64, _ size: UInt64) -> UInt64 {
            at = (at + size - 1) & ~(size - 1)
            defer { at += size }
            return at
        }
        for i in 0..<6 {
            let size = identity.barSize(i)
            guard size > 0 else { continue }
            switch identity.barType(i) {
            case .io: addresses[i] = UInt32(truncatingIfNeeded: place(&ioCursor, size))
            case .memory32: addresses[i] = UInt32(truncatingIfNeeded: place(&cursor, size))
            case .memory64:
                let address = place(&cursor64, size)
                addresses[i] = UInt32(truncatingIfNeeded: address)
                if i < 5 { addresses[i + 1] = UInt32(truncatingIfNeeded: address >> 32) }
            }
        }
        barAddress = addresses
        personality = makePersonality(identity)
        romAddress = identity.romSize > 0
            ? UInt32(truncatingIfNeeded: (cursor + identity.romSize - 1) & ~(identity.romSize - 1)) : 0
        rom = Self.makeROM(identity)
        // The config space (8 KiB with its masks for a PCIe function) is built at its first use,
        // not here: every open rebuilds it anyway (enable), and a topology of 10,000 functions
        // that are never opened should not fault in 80 MB at start-up (issue 14).
    }

    /// The memory of BAR `index` (which must have a size), made at its first use: the BAR's memfd
    /// and the model's shared mapping of it. Called with `lock` held, so two first uses make one.
    /// Fails with the host's errno (memfd_create, ftruncate or mmap refused) and leaves nothing:
    /// the memfd made before a refused mapping is closed, and the next use tries again.
    func barMemoryLocked(_ index: Int) throws(Errno) -> BARMemory {
        if let m = barMemory[index] { return m }
        let length = Self.pageAlign(Int(identity.barSize(index)))
        let fd = try host.memfd(name: "vfio-bar\(index):\(name)", size: length)
        do throws(Errno) {
            let base = try host.mmapShared(fd, length: length, prot: PROT_READ | PROT_WRITE, offset: 0, owned: true)
            let m = BARMemory(fd: fd, base: base, length: length)
            barMemory[index] = m
            return m
        } catch {
            host.close(fd)
            throw error
        }
    }

    private static func release(_ bars: [BARMemory?], host: HostSystem) {
        for m in bars.compactMap({ $0 }) {
            host.munmap(m.base, length: m.length)
            host.close(m.fd)
        }
    }

    deinit {
        Self.release(barMemory, host: host)
        for fd in triggers.compactMap({ $0 }) { host.close(fd) }
        for fd in [errTrigger, reqTrigger, intxUnmaskFD].compactMap({ $0 }) { host.close(fd) }
    }

    static func pageAlign(_ n: Int) -> Int { (n + pageSize - 1) / pageSize * pageSize }

    // MARK: Device open / close

    /// Kernel: vfio_pci_core_enable(): a fresh virtual config space and no interrupts.
    func enable() {
        lock.withLock {
            initConfig()
            personality.reset()
        }
    }

    /// Kernel: vfio_pci_core_disable(): interrupts off, every trigger released, the function reset.
    func disable() {
        lock.withLock {
            disableIRQsLocked()
            for fd in [errTrigger, reqTrigger].compactMap({ $0 }) { host.close(fd) }
            errTrigger = nil
            reqTrigger = nil
        }
    }

    /// Kernel: vfio_pci_core_mmap(): BARs only, whole pages inside the (page-rounded) BAR; the
    /// memfd is mapped shared, so every mapping and the model see the same bytes. The mapping is
    /// the caller's (munmap it as after a real mmap); it outlives the device fd. It goes where
    /// `placement` asks (a hint, or MAP_FIXED over the caller's own reservation, as DPDK maps BARs),
    /// since the mapping is made here for the caller, as the kernel's mm layer places the vma.
    func mmap(offset: Int64, length: Int, prot: Int32, placement: MmapPlacement) throws(Errno) -> UInt {
        let index = VFIOPCI.index(of: offset)
        guard index < VFIOPCI.romRegion else { throw .EINVAL.because("region {} is not a BAR: only 0-5 can be mapped", index) }
        guard length > 0 else { throw .EINVAL.because("length 0") }
        // A private mapping of device memory would copy on write: vfio-pci requires VM_SHARED.
        guard placement.isShared else { throw .EINVAL.because("vfio-pci maps only MAP_SHARED (VM_SHARED unset)") }
        // bar_mmap_supported: memory BARs only, and not those whose registers are trapped.
        guard barIsMappable(index) else {
            throw .EINVAL.because("BAR {} is not mappable: absent, I/O, or trapped by the device", index)
        }
        let size = identity.barSize(index)
        let start = Int(offset & VFIOPCI.offsetMask)
        let request = Self.pageAlign(length)
        let barLength = Self.pageAlign(Int(size))
        guard start <= barLength, request <= barLength - start else {
            throw .EINVAL.because("offset {x} length {x} outside the page-rounded BAR size {x}", start, request, barLength)
        }
        // Under the lock, so a BAR memory made by this call and then refused to the user is
        // released before anyone else can have seen it: a failed mmap leaves the model as it was.
        return try lock.withLock { () throws(Errno) -> UInt in
            let fresh = barMemory[index] == nil
            let mem = try barMemoryLocked(index)
            do throws(Errno) {
                let p = try host.mmapShared(mem.fd, length: request, prot: prot, offset: UInt64(start), owned: false,
                                            placement: placement)
                return UInt(bitPattern: p)
            } catch {
                if fresh {
                    barMemory[index] = nil
                    Self.release([mem], host: host)
                }
                // A placement the host refused is refused as the host kernel says (EEXIST:
                // MAP_FIXED_NOREPLACE over a mapping; ENOMEM past the address space); any other
                // failure is the kernel's ENOMEM.
                if placement.isFixed { throw error }
                throw error == .EACCES ? .EACCES.because("host mmap of BAR {} refused prot {x}", index, prot)
                    : .ENOMEM.because("host mmap of BAR {} failed", index)
            }
        }
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
        guard info.argsz >= 16 else { throw .EINVAL.because("argsz {} < minsz {}", info.argsz, 16) }
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
        guard info.argsz >= 32 else { throw .EINVAL.because("argsz {} < minsz {}", info.argsz, 32) }
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
            info.flags = VFIOPCI.regionRead | VFIOPCI.regionWrite
            if barIsMappable(index) { info.flags |= VFIOPCI.regionMmap }
            if let t = msixTable, t.bar == index {
                // struct vfio_info_cap_header { u16 id; u16 version; u32 next; }
                caps = [UInt8(VFIOPCI.capMSIXMappable), 0, 1, 0, 0, 0, 0, 0]
            }
        case VFIOPCI.romRegion:
            info.offset = UInt64(index) << 40
            info.size = identity.romSize
            info.flags = identity.romSize > 0 ? VFIOPCI.regionRead : 0
        case VFIOPCI.vgaRegion:
            throw .EINVAL.because("region index {} (VGA): not a VGA device", index)
        default:
            throw .EINVAL.because("region index {} >= num_regions {}", info.index, VFIOPCI.numRegions)
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
        guard info.argsz >= 16 else { throw .EINVAL.because("argsz {} < minsz {}", info.argsz, 16) }
        guard info.index < VFIOPCI.numIRQs else {
            throw .EINVAL.because("IRQ index {} >= num_irqs {}", info.index, VFIOPCI.numIRQs)
        }
        if info.index == VFIOPCI.errIRQ && !identity.pcie {
            throw .EINVAL.because("IRQ index {} (ERR) on a conventional PCI function", info.index)
        }
        info.flags = VFIOPCI.irqEventfd
        info.count = irqCount(info.index)
        info.flags |= info.index == VFIOPCI.intxIRQ ? VFIOPCI.irqMaskable | VFIOPCI.irqAutomasked : VFIOPCI.irqNoresize
        try UserMemory.write(info, to: arg)
        return 0
    }

    /// Kernel: vfio_pci_ioctl_reset(): EINVAL unless `reset_works`; then it succeeds (the
    /// personality's device is reset, as an FLR resets it), and interrupts and triggers are the
    /// user's and stay (the kernel only zaps mappings around it).
    func reset() throws(Errno) -> Int {
        guard identity.reset else { throw .EINVAL.because("the function cannot reset (no FLR)") }
        lock.withLock {
            resetCount += 1
            personality.reset()
        }
        return 0
    }

    /// Whether BAR `index` carries the MMAP flag (the kernel's `bar_mmap_supported`): a present
    /// memory BAR whose registers the personality does not trap. I/O BARs never do.
    func barIsMappable(_ index: Int) -> Bool {
        index >= 0 && index < 6 && identity.barSize(index) > 0 && identity.barType(index).isMemory
            && !personality.traps(bar: index)
    }

    // MARK: Test-visible state

    /// The BAR's memory as the model sees it (the same bytes every mmap of it shows), or nil (no
    /// such BAR, or its memory cannot be had). Makes the memory if no use has yet.
    public func barMemory(_ index: Int) -> UnsafeMutableRawBufferPointer? {
        lock.withLock {
            guard index >= 0, index < 6, identity.barSize(index) > 0,
                  let m = try? barMemoryLocked(index) else { return nil }
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
