// SPDX-License-Identifier: Apache-2.0
/// The built-in "vfio-noiommu" backend (docs/ERRORS.md#noiommu-open-einval): no translation; only CHECK_EXTENSION works.
///
/// Registered at init only with CONFIG_VFIO_NOIOMMU, whatever the module parameter says; the
/// parameter is read at every CHECK_EXTENSION.
public final class NoIOMMUBackend: IOMMUBackend {
    public let name = "vfio-noiommu"
    public var isNoIOMMU: Bool { true }

    /// The backend (one per subsystem).
    public init() {}

    /// Kernel: vfio_noiommu_open(): only VFIO_NOIOMMU_IOMMU, only with CAP_SYS_RAWIO.
    public func open(arg: UInt, context: BackendContext) throws(Errno) -> AnyObject? {
        guard arg == VFIOExtension.noIOMMU else { throw .EINVAL.because("IOMMU type {} on a no-IOMMU container (want 8)", arg) }
        guard context.capableSysRawIO() else { throw .EPERM.because("no-IOMMU backend needs CAP_SYS_RAWIO") }
        return nil
    }

    /// Kernel: vfio_noiommu_release(): nothing to free.
    public func release(_ data: AnyObject?) {}

    /// Kernel: vfio_noiommu_ioctl(): CHECK_EXTENSION answers 1 for VFIO_NOIOMMU_IOMMU while the
    /// module parameter is on; everything else ENOTTY.
    public func ioctl(_ data: AnyObject?, cmd: UInt32, arg: UInt, context: BackendContext) throws(Errno) -> Int {
        if cmd == VFIOIoctl.checkExtension {
            return context.unsafeNoIOMMUMode && arg == VFIOExtension.noIOMMU ? 1 : 0
        }
        throw .ENOTTY.because("the no-IOMMU backend serves only VFIO_CHECK_EXTENSION")
    }

    /// Kernel: vfio_noiommu_attach_group(): a no-op.
    public func attachGroup(_ data: AnyObject?, group: AnyObject, type: VFIOGroupType) throws(Errno) {}
    /// Kernel: vfio_noiommu_detach_group(): a no-op.
    public func detachGroup(_ data: AnyObject?, group: AnyObject) {}
}
