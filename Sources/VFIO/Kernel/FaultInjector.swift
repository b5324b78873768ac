// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A step that can fail in the kernel, named so a test can make its Nth hit fail.
///
/// The fault sweep enumerates `allCases`, so a new point is swept without anyone adding a test.
public enum FaultPoint: String, CaseIterable, Sendable {
    /// `kzalloc` of a `struct vfio_group` (ENOMEM).
    case groupAlloc
    /// `ida_alloc_max` of a group minor (ENOSPC).
    case groupMinor
    /// `cdev_device_add` of the group's char device.
    case groupCdevAdd
    /// `iommu_group_alloc` of a fake IOMMU group for NO_IOMMU / EMULATED devices.
    case fakeIOMMUGroupAlloc
    /// `iommu_group_add_device` into a fake IOMMU group.
    case fakeIOMMUGroupAddDevice
    /// `ida_alloc` of a device index ("vfio%d") at registration (ENOSPC).
    case deviceIndex
    /// `device_add` of the registered device.
    case deviceAdd
    /// `kzalloc` of a device set (ENOMEM).
    case deviceSetAlloc
    /// `vfio_alloc_device`'s allocation (ENOMEM).
    case deviceAlloc
    /// `strndup_user` of the device name in GET_DEVICE_FD (ENOMEM).
    case nameCopy
    /// `get_unused_fd_flags` (EMFILE).
    case fdReserve
    /// `anon_inode_getfile` of a device file (ENFILE / ENOMEM).
    case anonInodeFile
    /// `try_module_get` of the device driver at first open (ENODEV).
    case driverModuleGet
    /// `kzalloc` of a container at `open("/dev/vfio/vfio")` (ENOMEM).
    case containerAlloc
    /// `iommufd_fops_open`'s context allocation (ENOMEM).
    case iommufdAlloc
    /// An IOMMU backend's `open` at SET_IOMMU.
    case backendOpen
    /// An IOMMU backend's `attach_group`.
    case backendAttach
    /// `iommu_group_claim_dma_owner` / `iommu_device_claim_dma_owner`.
    case ownershipClaim
    /// `iommufd_vfio_compat_ioas_create`'s IOAS allocation (ENOMEM).
    case compatIOASAlloc
    /// The group-file open's placeholder descriptor / file allocation (ENOMEM/EMFILE).
    case fileAlloc
}

/// Makes the Nth hit of a fault point fail with a chosen errno; counts hits for the sweep.
///
/// The fast path, nothing armed and no counting, is one relaxed atomic load.
public final class FaultInjector: Sendable {
    private let failures = ArmedFailures<FaultPoint>()

    init() {}

    /// Makes the `nth` (1-based) next hit of `point` throw `errno`; earlier hits pass.
    public func arm(_ point: FaultPoint, nth: Int = 1, errno: Errno) { failures.arm(point, nth: nth, errno: errno) }

    /// Disarms every point and stops counting.
    public func reset() { failures.reset() }

    /// Starts counting hits of every point (the sweep's discovery run).
    public func startCounting() { failures.startCounting() }

    /// Hits per point since `startCounting()`.
    public var hits: [FaultPoint: Int] { failures.hits }

    /// Whether an armed fault is still waiting to fire.
    public var pending: Bool { failures.pending }

    /// A step that can fail: throws the armed errno when this is the chosen hit.
    @inline(__always)
    func check(_ point: FaultPoint) throws(Errno) {
        if let e = failures.fire(point) { throw e.reason == nil ? e.because(point.injectedReason) : e }
    }
}

extension FaultPoint {
    /// The reason an injected failure carries: the kernel step that failed (one static text per
    /// point, as reasons are static templates; read only when a fault fires).
    var injectedReason: StaticString {
        switch self {
        case .groupAlloc: "fault injected: kzalloc of the vfio_group"
        case .groupMinor: "fault injected: ida_alloc_max of the group minor"
        case .groupCdevAdd: "fault injected: cdev_device_add of the group node"
        case .fakeIOMMUGroupAlloc: "fault injected: iommu_group_alloc of a private IOMMU group"
        case .fakeIOMMUGroupAddDevice: "fault injected: iommu_group_add_device into a private IOMMU group"
        case .deviceIndex: "fault injected: ida_alloc of the device index"
        case .deviceAdd: "fault injected: device_add"
        case .deviceSetAlloc: "fault injected: kzalloc of the device set"
        case .deviceAlloc: "fault injected: vfio_alloc_device's allocation"
        case .nameCopy: "fault injected: strndup_user of the device name"
        case .fdReserve: "fault injected: get_unused_fd_flags"
        case .anonInodeFile: "fault injected: anon_inode_getfile"
        case .driverModuleGet: "fault injected: try_module_get of the driver"
        case .containerAlloc: "fault injected: kzalloc of the container"
        case .iommufdAlloc: "fault injected: kzalloc of the iommufd context"
        case .backendOpen: "fault injected: the IOMMU backend's open"
        case .backendAttach: "fault injected: the IOMMU backend's attach_group"
        case .ownershipClaim: "fault injected: the DMA ownership claim"
        case .compatIOASAlloc: "fault injected: the compat IOAS allocation"
        case .fileAlloc: "fault injected: the file allocation"
        }
    }
}
