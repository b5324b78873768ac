// SPDX-License-Identifier: Apache-2.0
// Read-only accessors for observers (`vfioctl state` through libswiftvfio's control socket):
// what a file, group, container or iommufd context is attached to. Each takes only the lock
// that guards the field it reads, briefly, and changes nothing.

extension VFIOFile {
    /// The container behind a `/dev/vfio/vfio` file, or nil.
    public var inspectedContainer: Container? { operations as? Container }
    /// The iommufd context behind a `/dev/iommu` file, or nil.
    public var inspectedIOMMUFD: IOMMUFDContext? { operations as? IOMMUFDContext }
    /// The group behind a group file, or nil.
    public var inspectedGroup: VFIOGroup? { group }
    /// The device behind a device file, and the iommufd context it was opened through (nil: the
    /// container path).
    public var inspectedDevice: (device: VFIODevice, iommufd: IOMMUFDContext?)? {
        guard let d = operations as? DeviceFile else { return nil }
        return (d.device, d.iommufd)
    }
}

extension VFIOGroup {
    /// The container the group is attached to (`group->container`), or nil.
    public var inspectedContainer: Container? { groupLock.withLock { container } }
    /// The iommufd context the group is bound to (`group->iommufd`), or nil.
    public var inspectedIOMMUFD: IOMMUFDContext? { groupLock.withLock { iommufd } }
}

extension IOMMUFDContext {
    /// The ids of the IOAS objects alive in the context, ascending, and the compat IOAS's id.
    public var inspectedIOAS: (ids: [UInt32], compat: UInt32?) {
        lock.withLock { (objects.keys.sorted(), compatIOAS?.id) }
    }
}
