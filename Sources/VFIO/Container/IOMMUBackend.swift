// SPDX-License-Identifier: Apache-2.0
/// `enum vfio_group_type` (docs/TOPOLOGY.md#json).
public enum VFIOGroupType: Int, Sendable {
    /// A physical device behind a real IOMMU; the IOMMU group is shared by its devices.
    case iommu = 0
    /// An mdev-style device that cannot DMA by itself; a fresh fake IOMMU group per device.
    case emulatedIOMMU = 1
    /// A physical device with no IOMMU (unsafe mode); a fresh fake IOMMU group per device.
    case noIOMMU = 2
}

/// What a backend may ask of the subsystem during a call.
public struct BackendContext: Sendable {
    /// `capable(CAP_SYS_RAWIO)`, asked at the moment of the check.
    public let capableSysRawIO: @Sendable () -> Bool
    /// The current value of the `enable_unsafe_noiommu_mode` module parameter.
    public let unsafeNoIOMMUMode: Bool
    /// type1's `dma_entry_limit` module parameter.
    public let dmaEntryLimit: UInt32

    /// A context with explicit answers (tests, and the subsystem's own calls).
    public init(capableSysRawIO: @escaping @Sendable () -> Bool, unsafeNoIOMMUMode: Bool, dmaEntryLimit: UInt32 = 65535) {
        self.capableSysRawIO = capableSysRawIO
        self.unsafeNoIOMMUMode = unsafeNoIOMMUMode
        self.dmaEntryLimit = dmaEntryLimit
    }
}

/// An IOMMU backend of the legacy container (`struct vfio_iommu_driver_ops`, docs/ERRORS.md#state-container).
///
/// `data` is the backend's per-container state (`iommu_data`), nil before `open` and for backends
/// that keep none. CHECK_EXTENSION is an `ioctl` like any other; with `data == nil` it is the
/// container's polling question "would you support this?" (docs/ERRORS.md#container).
public protocol IOMMUBackend: AnyObject, Sendable {
    /// The backend's name ("vfio-iommu-type1", "vfio-noiommu").
    var name: String { get }
    /// Whether this is the built-in no-IOMMU backend (the container's "allowed" rule).
    var isNoIOMMU: Bool { get }
    /// `open(arg)`: creates the per-container state for IOMMU type `arg`.
    func open(arg: UInt, context: BackendContext) throws(Errno) -> AnyObject?
    /// `release(data)`: the last group left the container.
    func release(_ data: AnyObject?)
    /// `ioctl(data, cmd, arg)`: CHECK_EXTENSION and every passthrough ioctl; `arg` is the raw value
    /// (an extension id or a user pointer). Unknown commands: ENOTTY.
    func ioctl(_ data: AnyObject?, cmd: UInt32, arg: UInt, context: BackendContext) throws(Errno) -> Int
    /// `attach_group(data, group, type)`; `group` is an identity token.
    func attachGroup(_ data: AnyObject?, group: AnyObject, type: VFIOGroupType) throws(Errno)
    /// `detach_group(data, group)`.
    func detachGroup(_ data: AnyObject?, group: AnyObject)
    /// Whether the backend provides `register_device`/`unregister_device` (both or neither).
    var hasDeviceRegistration: Bool { get }
    /// `register_device(data, device)` at a device's first open.
    func registerDevice(_ data: AnyObject?, device: AnyObject)
    /// `unregister_device(data, device)` at a device's last close.
    func unregisterDevice(_ data: AnyObject?, device: AnyObject)
}

extension IOMMUBackend {
    public var isNoIOMMU: Bool { false }
    public var hasDeviceRegistration: Bool { false }
    public func registerDevice(_ data: AnyObject?, device: AnyObject) {}
    public func unregisterDevice(_ data: AnyObject?, device: AnyObject) {}
}
