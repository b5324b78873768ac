// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// The kernel configuration a subsystem models: `IS_ENABLED(CONFIG_...)` and module parameters.
///
/// Build-time options are fixed for a subsystem's life; `enable_unsafe_noiommu_mode` is a module
/// parameter writable at run time (`VFIOSubsystem.enableUnsafeNoIOMMUMode`), as in the kernel.
public struct VFIOConfig: Sendable, Equatable {
    /// CONFIG_VFIO_NOIOMMU: the no-IOMMU backend and NO_IOMMU groups exist at all.
    public var vfioNoIOMMU: Bool
    /// The initial value of `vfio.enable_unsafe_noiommu_mode` (only meaningful with `vfioNoIOMMU`).
    public var enableUnsafeNoIOMMUMode: Bool
    /// CONFIG_IOMMUFD: `/dev/iommu` exists and SET_CONTAINER accepts an iommufd.
    public var iommufd: Bool
    /// CONFIG_SPAPR_TCE_IOMMU: `vfio_file_iommu_group` returns a counted IOMMU-group reference.
    public var spaprTCEIOMMU: Bool
    /// CONFIG_HAVE_KVM: devices latch the group's KVM pointer at first open.
    public var haveKVM: Bool
    /// How long `vfio_unregister_group_dev` waits between `request` calls (kernel: 10 s).
    public var unregisterRequestInterval: Duration
    /// type1's `dma_entry_limit` module parameter.
    public var dmaEntryLimit: UInt32

    /// The v6.3 x86 model of docs/DECISIONS.md#basis: container and iommufd on, no-IOMMU off, no SPAPR, KVM on.
    public init(vfioNoIOMMU: Bool = true, enableUnsafeNoIOMMUMode: Bool = false, iommufd: Bool = true,
                spaprTCEIOMMU: Bool = false, haveKVM: Bool = true,
                unregisterRequestInterval: Duration = .seconds(10), dmaEntryLimit: UInt32 = 65535) {
        self.vfioNoIOMMU = vfioNoIOMMU
        self.enableUnsafeNoIOMMUMode = enableUnsafeNoIOMMUMode
        self.iommufd = iommufd
        self.spaprTCEIOMMU = spaprTCEIOMMU
        self.haveKVM = haveKVM
        self.unregisterRequestInterval = unregisterRequestInterval
        self.dmaEntryLimit = dmaEntryLimit
    }
}
