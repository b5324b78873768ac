// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// The built-in "vfio-pci" the topology loader binds: a VFIO bus driver for a plain PCI function.
///
/// Registered through the driver API like any driver (`allocDevice` + `registerGroupDevice` with
/// these ops). Behind each device sits a `PCIDeviceModel` built from the function's
/// `PCIDeviceIdentity` (topology JSON or sysfs files; defaults otherwise): the device ioctls,
/// config/BAR/ROM reads and writes at `index << 40`, BAR mmaps, interrupts on eventfds and reset,
/// as v6.3 vfio-pci answers them. The driver counts `open_device`/`close_device`/`request` calls
/// and records the KVM pointer `open_device` saw.
public final class ModelPCIDriver: @unchecked Sendable {
    /// The driver's module.
    public let module = DriverModule(name: "vfio_pci")

    /// Per-device state (`struct vfio_pci_core_device` beyond the core device).
    public final class State: @unchecked Sendable {
        let counters = Locked<(opens: Int, closes: Int, requests: [UInt32], kvm: UInt)>((0, 0, [], 0))
        private let guarded: Locked<(model: PCIDeviceModel, sriov: SRIOVRole)>

        /// `open_device` calls.
        public var openDeviceCalls: Int { counters.withLock { $0.opens } }
        /// `close_device` calls.
        public var closeDeviceCalls: Int { counters.withLock { $0.closes } }
        /// The `request` counts received, in order.
        public var requests: [UInt32] { counters.withLock { $0.requests } }
        /// The KVM pointer the last `open_device` saw.
        public var kvmSeenAtOpen: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: counters.withLock { $0.kvm }) }

        /// The function's device model (config space, BARs, interrupts).
        public var model: PCIDeviceModel { guarded.withLock { $0.model } }

        /// The function's SR-IOV role, which decides what `vf_token=` GET_DEVICE_FD accepts.
        public var sriov: SRIOVRole {
            get { guarded.withLock { $0.sriov } }
            set { guarded.withLock { $0.sriov = newValue } }
        }

        /// A VF token this function demands, or nil. Setting a token makes the function a VF whose
        /// PF is bound to vfio-pci with that token (`sriov = .virtualFunction(pf: VFToken(uuid:))`);
        /// nil makes it a plain function. Reading gives the token a VF's PF holds, or a PF's token
        /// while it has VF users.
        public var vfToken: String? {
            get {
                switch sriov {
                case .none: return nil
                case .virtualFunction(let pf): return pf?.uuid
                case .physicalFunction(let token): return token.users > 0 ? token.uuid : nil
                }
            }
            set { sriov = newValue.map { .virtualFunction(pf: VFToken(uuid: $0)) } ?? .none }
        }

        /// The function `identity` (BAR memory is made at first use, so nothing here can fail).
        init(name: String, identity: PCIDeviceIdentity = PCIDeviceIdentity(), host: HostSystem) {
            guarded = Locked((PCIDeviceModel(identity: identity, name: name, host: host), .none))
        }
    }

    /// The driver.
    public init() {}

    /// The state the driver keeps for `device`.
    public static func state(of device: VFIODevice) -> State? { device.driverObject as? State }

    /// The device model behind `device`, when it is one of this driver's.
    public static func model(of device: VFIODevice) -> PCIDeviceModel? { state(of: device)?.model }

    /// The ops table (`vfio_pci_ops`), for the default function.
    public var ops: VFIODeviceOps { ops(identity: PCIDeviceIdentity()) }

    /// The ops table whose `init` builds the device model of `identity`: the probe hands the
    /// function's identity in here, so each device's model is built once (not a default one first,
    /// then replaced).
    public func ops(identity: PCIDeviceIdentity) -> VFIODeviceOps {
        var ops = VFIODeviceOps(name: "vfio-pci", module: module)
        VFIOIOMMUFDOps.physical(&ops)
        Self.fill(&ops)
        ops.initDevice = { device throws(Errno) in
            device.driverObject = State(name: device.busDevice.name, identity: identity, host: device.subsystem.host)
        }
        ops.match = { device, name in
            // Kernel: vfio_pci_core_match()
            guard let s = Self.state(of: device) else { return 0 }
            return VFIOPCIMatch.match(pciName: device.busDevice.name, request: name, role: s.sriov)
        }
        ops.matchIsPCICoreMatch = true
        return ops
    }

    /// Why `match` refused `name` for `device` (its errno with the failed check), or nil when it
    /// does not refuse it now: asked only after a refusal, so the success path formats nothing.
    static func matchFailure(_ device: VFIODevice, _ name: String) -> Errno? {
        guard let s = state(of: device),
              case .failure(let e) = VFIOPCIMatch.evaluate(pciName: device.busDevice.name, request: name, role: s.sriov)
        else { return nil }
        return e
    }

    /// The members vfio-pci and the mdev model share.
    static func fill(_ ops: inout VFIODeviceOps) {
        ops.initDevice = { device throws(Errno) in
            device.driverObject = State(name: device.busDevice.name, host: device.subsystem.host)
        }
        ops.openDevice = { device throws(Errno) in
            // Kernel: vfio_pci_open_device() → vfio_pci_core_enable()
            guard let s = Self.state(of: device) else { return }
            s.model.enable()
            s.counters.withLock { $0.opens += 1; $0.kvm = UInt(bitPattern: device.kvmPointerInCallback) }
        }
        ops.closeDevice = { device in
            // Kernel: vfio_pci_core_close_device() → vfio_pci_core_disable()
            guard let s = Self.state(of: device) else { return }
            s.model.disable()
            s.counters.withLock { $0.closes += 1 }
        }
        ops.request = { device, count in
            // Kernel: vfio_pci_core_request()
            guard let s = Self.state(of: device) else { return }
            s.counters.withLock { $0.requests.append(count) }
            if !s.model.request() && count == 0 {
                device.subsystem.log.warning("\(device.busDevice.name): No device request channel registered, "
                                             + "blocked until released by user")
            }
        }
        ops.ioctl = { device, cmd, arg throws(Errno) in
            guard let m = Self.model(of: device) else { throw .ENOTTY.because("no vfio-pci model behind this device") }
            return try Self.ioctl(m, cmd, arg)
        }
        ops.read = { device, buffer, count, offset throws(Errno) in
            guard let m = Self.model(of: device) else { throw .EINVAL.because("no vfio-pci model behind this device") }
            return try m.rw(buffer: buffer, count: count, offset: &offset, write: false)
        }
        ops.write = { device, buffer, count, offset throws(Errno) in
            guard let m = Self.model(of: device) else { throw .EINVAL.because("no vfio-pci model behind this device") }
            return try m.rw(buffer: buffer, count: count, offset: &offset, write: true)
        }
        ops.mmap = { device, offset, length, prot, placement throws(Errno) in
            guard let m = Self.model(of: device) else { throw .EINVAL.because("no vfio-pci model behind this device") }
            return try m.mmap(offset: offset, length: length, prot: prot, placement: placement)
        }
    }

    /// Kernel: vfio_pci_core_ioctl(). Hot reset and ioeventfds are not modelled: ENOTTY.
    static func ioctl(_ model: PCIDeviceModel, _ cmd: UInt32, _ arg: UInt) throws(Errno) -> Int {
        switch cmd {
        case VFIOIoctl.deviceGetInfo: return try model.getInfo(arg)
        case VFIOIoctl.deviceGetRegionInfo: return try model.getRegionInfo(arg)
        case VFIOIoctl.deviceGetIRQInfo: return try model.getIRQInfo(arg)
        case VFIOIoctl.deviceSetIRQs: return try model.setIRQs(arg)
        case VFIOIoctl.deviceReset: return try model.reset()
        default: throw .ENOTTY.because("request not handled by vfio-pci")
        }
    }
}

/// A PF's VF token (`vdev->vf_token`): a UUID shared with its VFs, and how many VFs are in use.
public final class VFToken: @unchecked Sendable {
    private let state: Locked<(uuid: String, users: Int)>
    /// A token (compared case-insensitively, as `uuid_parse` + `uuid_equal`).
    public init(uuid: String, users: Int = 0) { state = Locked((uuid.lowercased(), users)) }
    /// The current UUID, lower case.
    public var uuid: String {
        get { state.withLock { $0.uuid } }
        set { state.withLock { $0.uuid = newValue.lowercased() } }
    }
    /// VFs of this PF in use by a user (`vf_token->users`).
    public var users: Int {
        get { state.withLock { $0.users } }
        set { state.withLock { $0.users = newValue } }
    }
}

/// Where a function stands in SR-IOV, as `vfio_pci_validate_vf_token` sees it.
public enum SRIOVRole: Sendable {
    /// Neither a PF nor a VF (`!is_virtfn && !vf_token`).
    case none
    /// A PF bound to vfio-pci: it has a VF token.
    case physicalFunction(VFToken)
    /// A VF; `pf` is its PF's token when the PF is bound to vfio-pci, nil otherwise.
    case virtualFunction(pf: VFToken?)
}

/// The built-in mdev-style driver for `emulated_devices`: emulated iommufd helpers, no DMA, and
/// the same device model behind it as vfio-pci (a plain PCI function).
public final class ModelMdevDriver: @unchecked Sendable {
    /// The driver's module.
    public let module = DriverModule(name: "mdev_model")
    /// The driver.
    public init() {}
    /// The ops table.
    public var ops: VFIODeviceOps {
        var ops = VFIODeviceOps(name: "mdev-model", module: module)
        VFIOIOMMUFDOps.emulated(&ops)
        ModelPCIDriver.fill(&ops)
        return ops
    }
}
