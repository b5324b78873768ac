import Synchronization

/// The built-in "vfio-pci" the topology loader binds: a VFIO bus driver for a plain PCI function.
///
/// Enough of vfio-pci for the group layer and the vfio.rst sample: the vfio-pci name match with VF
/// tokens, the physical iommufd helpers, and DEVICE_GET_INFO / GET_REGION_INFO / GET_IRQ_INFO /
/// RESET answers for a function with a 4 KiB BAR0 and a 256-byte config space. It counts
/// `open_device`/`close_device`/`request` calls and records the KVM pointer `open_device` saw.
public final class ModelPCIDriver: @unchecked Sendable {
    /// The driver's module.
    public let module = DriverModule(name: "vfio_pci")
    /// Per-device state.
    public final class State: @unchecked Sendable {
        /// A VF token this function demands (a VF of a PF with a token), or nil.
        public var vfToken: String?
        let counters = Locked<(opens: Int, closes: Int, requests: [UInt32], kvm: UInt)>((0, 0, [], 0))
        /// `open_device` calls.
        public var openDeviceCalls: Int { counters.withLock { $0.opens } }
        /// `close_device` calls.
        public var closeDeviceCalls: Int { counters.withLock { $0.closes } }
        /// The `request` counts received, in order.
        public var requests: [UInt32] { counters.withLock { $0.requests } }
        /// The KVM pointer the last `open_device` saw.
        public var kvmSeenAtOpen: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: counters.withLock { $0.kvm }) }
        init() {}
    }

    /// The driver.
    public init() {}

    /// The state the driver keeps for `device`.
    public static func state(of device: VFIODevice) -> State? { device.driverObject as? State }

    /// The ops table (`vfio_pci_ops`).
    public var ops: VFIODeviceOps {
        var ops = VFIODeviceOps(name: "vfio-pci", module: module)
        VFIOIOMMUFDOps.physical(&ops)
        ops.initDevice = { device throws(Errno) in device.driverObject = State() }
        ops.openDevice = { device throws(Errno) in
            guard let s = Self.state(of: device) else { return }
            s.counters.withLock { $0.opens += 1; $0.kvm = UInt(bitPattern: device.kvmPointerInCallback) }
        }
        ops.closeDevice = { device in Self.state(of: device)?.counters.withLock { $0.closes += 1 } }
        ops.request = { device, count in Self.state(of: device)?.counters.withLock { $0.requests.append(count) } }
        ops.match = { device, name in
            VFIOPCIMatch.match(pciName: device.busDevice.name, request: name,
                               expectedToken: Self.state(of: device)?.vfToken)
        }
        ops.ioctl = { device, cmd, arg throws(Errno) in try Self.ioctl(device, cmd, arg) }
        return ops
    }

    // struct vfio_device_info { argsz, flags, num_regions, num_irqs, cap_offset, pad }
    struct DeviceInfo: BitwiseCopyable { var argsz: UInt32; var flags: UInt32; var numRegions: UInt32; var numIRQs: UInt32 }
    // struct vfio_region_info { argsz, flags, index, cap_offset, u64 size, u64 offset }
    struct RegionInfo: BitwiseCopyable { var argsz: UInt32; var flags: UInt32; var index: UInt32; var capOffset: UInt32; var size: UInt64; var offset: UInt64 }
    // struct vfio_irq_info { argsz, flags, index, count }
    struct IRQInfo: BitwiseCopyable { var argsz: UInt32; var flags: UInt32; var index: UInt32; var count: UInt32 }

    static let numRegions: UInt32 = 9   // BAR0-5, ROM, config, VGA
    static let numIRQs: UInt32 = 5      // INTx, MSI, MSI-X, ERR, REQ
    static let configRegion: UInt32 = 7

    /// Kernel: vfio_pci_core_ioctl() for the info ioctls the vfio.rst sample issues.
    static func ioctl(_ device: VFIODevice, _ cmd: UInt32, _ arg: UInt) throws(Errno) -> Int {
        switch cmd {
        case VFIOIoctl.deviceGetInfo:
            var info = try UserMemory.read(DeviceInfo.self, from: arg)
            guard info.argsz >= 16 else { throw .EINVAL }
            info.flags = (1 << 1) | (1 << 0)   // VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET
            info.numRegions = numRegions
            info.numIRQs = numIRQs
            try UserMemory.write(info, to: arg)
            return 0
        case VFIOIoctl.deviceGetRegionInfo:
            var info = try UserMemory.read(RegionInfo.self, from: arg)
            guard info.argsz >= 32 else { throw .EINVAL }
            guard info.index < numRegions else { throw .EINVAL }
            info.offset = UInt64(info.index) << 40   // VFIO_PCI_INDEX_TO_OFFSET
            info.capOffset = 0
            switch info.index {
            case 0: info.size = 4096; info.flags = 0x7              // READ | WRITE | MMAP
            case configRegion: info.size = 256; info.flags = 0x3    // READ | WRITE
            default: info.size = 0; info.flags = 0
            }
            try UserMemory.write(info, to: arg)
            return 0
        case VFIOIoctl.deviceGetIRQInfo:
            var info = try UserMemory.read(IRQInfo.self, from: arg)
            guard info.argsz >= 16, info.index < numIRQs else { throw .EINVAL }
            switch info.index {
            case 0: info.flags = 0x7; info.count = 1                 // EVENTFD | MASKABLE | AUTOMASKED
            case 1: info.flags = 0x9; info.count = 1                 // EVENTFD | NORESIZE
            case 2: info.flags = 0x1; info.count = 1
            default: info.flags = 0x9; info.count = 1
            }
            try UserMemory.write(info, to: arg)
            return 0
        case VFIOIoctl.deviceReset:
            return 0
        case VFIOIoctl.deviceSetIRQs:
            return 0
        default:
            throw .ENOTTY
        }
    }
}

/// The built-in mdev-style driver for `emulated_devices`: emulated iommufd helpers, no DMA.
public final class ModelMdevDriver: @unchecked Sendable {
    /// The driver's module.
    public let module = DriverModule(name: "mdev_model")
    /// The driver.
    public init() {}
    /// The ops table.
    public var ops: VFIODeviceOps {
        var ops = VFIODeviceOps(name: "mdev-model", module: module)
        VFIOIOMMUFDOps.emulated(&ops)
        ops.initDevice = { device throws(Errno) in device.driverObject = ModelPCIDriver.State() }
        ops.openDevice = { device throws(Errno) in
            ModelPCIDriver.state(of: device)?.counters.withLock { $0.opens += 1; $0.kvm = UInt(bitPattern: device.kvmPointerInCallback) }
        }
        ops.closeDevice = { device in ModelPCIDriver.state(of: device)?.counters.withLock { $0.closes += 1 } }
        ops.request = { device, count in ModelPCIDriver.state(of: device)?.counters.withLock { $0.requests.append(count) } }
        ops.ioctl = { device, cmd, arg throws(Errno) in try ModelPCIDriver.ioctl(device, cmd, arg) }
        return ops
    }
}
