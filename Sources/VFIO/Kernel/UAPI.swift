/// The userspace ABI numbers of `include/uapi/linux/vfio.h` (SPEC §2) the model dispatches on.
///
/// Every VFIO ioctl is `_IO(';', 100 + n)`: no size or direction bits, `argsz` plays that role.
/// A test checks each value against the system header through CSwiftVFIOShim.
public enum VFIOIoctl {
    /// `VFIO_GET_API_VERSION` (container).
    public static let getAPIVersion: UInt32 = 0x3B64
    /// `VFIO_CHECK_EXTENSION` (container; arg by value).
    public static let checkExtension: UInt32 = 0x3B65
    /// `VFIO_SET_IOMMU` (container; arg by value).
    public static let setIOMMU: UInt32 = 0x3B66
    /// `VFIO_GROUP_GET_STATUS` (group).
    public static let groupGetStatus: UInt32 = 0x3B67
    /// `VFIO_GROUP_SET_CONTAINER` (group; pointer to an int fd).
    public static let groupSetContainer: UInt32 = 0x3B68
    /// `VFIO_GROUP_UNSET_CONTAINER` (group).
    public static let groupUnsetContainer: UInt32 = 0x3B69
    /// `VFIO_GROUP_GET_DEVICE_FD` (group; pointer to a NUL-terminated name).
    public static let groupGetDeviceFD: UInt32 = 0x3B6A
    /// `VFIO_DEVICE_GET_INFO` (device).
    public static let deviceGetInfo: UInt32 = 0x3B6B
    /// `VFIO_DEVICE_GET_REGION_INFO` (device).
    public static let deviceGetRegionInfo: UInt32 = 0x3B6C
    /// `VFIO_DEVICE_GET_IRQ_INFO` (device).
    public static let deviceGetIRQInfo: UInt32 = 0x3B6D
    /// `VFIO_DEVICE_SET_IRQS` (device).
    public static let deviceSetIRQs: UInt32 = 0x3B6E
    /// `VFIO_DEVICE_RESET` (device).
    public static let deviceReset: UInt32 = 0x3B6F
    /// `VFIO_IOMMU_GET_INFO` (container, type1).
    public static let iommuGetInfo: UInt32 = 0x3B70
    /// `VFIO_IOMMU_MAP_DMA` (container, type1).
    public static let iommuMapDMA: UInt32 = 0x3B71
    /// `VFIO_IOMMU_UNMAP_DMA` (container, type1).
    public static let iommuUnmapDMA: UInt32 = 0x3B72
    /// `VFIO_IOMMU_DIRTY_PAGES` (container, type1) and `VFIO_DEVICE_FEATURE` (device): same number.
    public static let iommuDirtyPages: UInt32 = 0x3B75
    /// `VFIO_DEVICE_FEATURE` (device).
    public static let deviceFeature: UInt32 = 0x3B75
    /// `IOMMU_VFIO_IOAS` on an iommufd (`_IO(';', 0x80 + 8)`).
    public static let iommuVFIOIOAS: UInt32 = 0x3B88
    /// `IOMMU_DESTROY` on an iommufd (`_IO(';', 0x80)`).
    public static let iommuDestroy: UInt32 = 0x3B80
}

/// Extension and IOMMU type ids shared by CHECK_EXTENSION and SET_IOMMU (SPEC §2.3).
public enum VFIOExtension {
    public static let type1IOMMU: UInt = 1
    public static let spaprTCEIOMMU: UInt = 2
    public static let type1v2IOMMU: UInt = 3
    public static let dmaCCIOMMU: UInt = 4
    public static let eeh: UInt = 5
    public static let type1NestingIOMMU: UInt = 6
    public static let spaprTCEv2IOMMU: UInt = 7
    public static let noIOMMU: UInt = 8
    public static let unmapAll: UInt = 9
    public static let updateVaddr: UInt = 10
}

/// `struct vfio_group_status` flags.
public enum VFIOGroupFlags {
    /// `VFIO_GROUP_FLAGS_VIABLE`.
    public static let viable: UInt32 = 1
    /// `VFIO_GROUP_FLAGS_CONTAINER_SET`.
    public static let containerSet: UInt32 = 2
}

/// `struct vfio_group_status`: the only argument struct group.c copies itself.
public struct VFIOGroupStatus: BitwiseCopyable, Equatable, Sendable {
    public var argsz: UInt32
    public var flags: UInt32
    public init(argsz: UInt32 = 8, flags: UInt32 = 0) { self.argsz = argsz; self.flags = flags }
}

/// `VFIO_API_VERSION`.
public let vfioAPIVersion = 0
