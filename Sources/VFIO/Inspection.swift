// Read-only accessors for observers (`vfioctl state` through libswiftvfio's control socket):
// what a file, group, container or iommufd context is attached to. Each takes only the lock
// that guards the field it reads, briefly, and changes nothing.

extension VFIOFile {
    /// The container behind a `/dev/vfio/vfio` file, or nil.
    public var inspectedContainer: Container? { kind == .container ? privateData as? Container : nil }
    /// The iommufd context behind a `/dev/iommu` file, or nil.
    public var inspectedIOMMUFD: IOMMUFDContext? { kind == .iommufd ? privateData as? IOMMUFDContext : nil }
    /// The group behind an open group file, or nil (after its release).
    public var inspectedGroup: VFIOGroup? { groupFromFile }
    /// The device behind a device file, and the iommufd context it was opened through (nil: the
    /// container path).
    public var inspectedDevice: (device: VFIODevice, iommufd: IOMMUFDContext?)? {
        guard kind == .device, let d = privateData as? DeviceFile else { return nil }
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
