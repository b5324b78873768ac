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
    private struct Armed { var remaining: Int; var errno: Errno }
    private let active = Atomic<Bool>(false)
    private let state = Locked<(armed: [FaultPoint: Armed], hits: [FaultPoint: Int], counting: Bool)>(([:], [:], false))

    init() {}

    /// Makes the `nth` (1-based) next hit of `point` throw `errno`; earlier hits pass.
    public func arm(_ point: FaultPoint, nth: Int = 1, errno: Errno) {
        precondition(nth >= 1)
        state.withLock { $0.armed[point] = Armed(remaining: nth, errno: errno) }
        active.store(true, ordering: .sequentiallyConsistent)
    }

    /// Disarms every point and stops counting.
    public func reset() {
        state.withLock { $0.armed.removeAll(); $0.hits.removeAll(); $0.counting = false }
        active.store(false, ordering: .sequentiallyConsistent)
    }

    /// Starts counting hits of every point (the sweep's discovery run).
    public func startCounting() {
        state.withLock { $0.hits.removeAll(); $0.counting = true }
        active.store(true, ordering: .sequentiallyConsistent)
    }

    /// Hits per point since `startCounting()`.
    public var hits: [FaultPoint: Int] { state.withLock { $0.hits } }

    /// Whether an armed fault is still waiting to fire.
    public var pending: Bool { state.withLock { !$0.armed.isEmpty } }

    /// A step that can fail: throws the armed errno when this is the chosen hit.
    @inline(__always)
    func check(_ point: FaultPoint) throws(Errno) {
        guard active.load(ordering: .relaxed) else { return }
        try slowCheck(point)
    }

    private func slowCheck(_ point: FaultPoint) throws(Errno) {
        let fail: Errno? = state.withLock { s in
            if s.counting { s.hits[point, default: 0] += 1 }
            guard var a = s.armed[point] else { return nil }
            a.remaining -= 1
            if a.remaining == 0 { s.armed[point] = nil; return a.errno }
            s.armed[point] = a
            return nil
        }
        if let fail { throw fail }
    }
}
