// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A device on a bus, the model's `struct device` as the IOMMU core and driver core see it.
///
/// Hardware discovery (the topology loader, or a C program) creates bus devices; the IOMMU core
/// puts them in IOMMU groups; a driver binds to them. A VFIO bus driver then registers a
/// `VFIODevice` on top of one.
public final class BusDevice: @unchecked Sendable, CustomStringConvertible {
    /// The device name, e.g. "0000:06:0d.0" (`dev_name()`), the default GET_DEVICE_FD match key.
    public let name: String
    /// IOMMU_CAP_CACHE_COHERENCY: required for VFIO_IOMMU registration (else EINVAL).
    public let cacheCoherency: Bool
    /// IOMMU_CAP_ENFORCE_CACHE_COHERENCY: what `vfio_file_enforced_coherent` asks.
    public let enforceCacheCoherency: Bool
    /// PCI vendor and device ids, shown by device models and QEMU.
    public var vendorID: UInt16 = 0x1af4
    /// PCI device id.
    public var deviceID: UInt16 = 0x1041

    /// The IOMMU group (`dev->iommu_group`); guarded by the IOMMU core's lock.
    var iommuGroupStorage: IOMMUGroup?
    /// The bound driver's name, or nil when unbound (`dev->driver`); guarded by the IOMMU core lock.
    var driverStorage: String?
    /// Whether the bound driver manages DMA itself (`driver_managed_dma`: VFIO drivers, pci-stub,
    /// pcieport); a driver that does not holds an owner count on the IOMMU group.
    var driverManagesDMA = true
    /// The number a "vfio-noiommu" group for this device takes when free (the topology's record
    /// of what the kernel gave it); nil: the smallest free number.
    public var preferredNoIOMMUGroupID: Int?

    /// A device that is not yet in any IOMMU group and not bound.
    public init(name: String, cacheCoherency: Bool = true, enforceCacheCoherency: Bool = true) {
        self.name = name
        self.cacheCoherency = cacheCoherency
        self.enforceCacheCoherency = enforceCacheCoherency
    }

    public var description: String { name }
}
