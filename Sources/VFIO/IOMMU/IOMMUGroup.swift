// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// An IOMMU group (`struct iommu_group`): the unit of DMA isolation, with its DMA-ownership state.
///
/// docs/TOPOLOGY.md#drivers. `ownerCount` is the kernel's `owner_cnt`: kernel drivers without `driver_managed_dma`
/// bound to members each hold one (owner nil); a user claim (a container attach, group-wide, or
/// iommufd device binds, per device and shareable by one owner) sets `owner`. All state is guarded
/// by the group's own `mutex` (the kernel's `group->mutex`).
public final class IOMMUGroup: @unchecked Sendable, CustomStringConvertible {
    /// The group id, `/sys/kernel/iommu_groups/<id>` and the VFIO node name.
    public let id: Int
    /// The IOMMU-core name attribute ("vfio-noiommu" for VFIO's fake groups), or nil.
    public let name: String?
    /// Whether VFIO created this group for a NO_IOMMU or EMULATED device (`iommu_group_alloc`).
    public let isFake: Bool
    let mutex = KernelMutex("iommu_group->mutex")
    unowned let core: IOMMUCore

    // Guarded by `mutex`.
    var members: [BusDevice] = []
    var ownerCount = 0
    var owner: AnyObject?
    /// Test hook: the group sits on a non-default domain, so a claim fails EBUSY.
    var domainConflict = false

    /// References: the topology/core holds one while the group exists; `iommu_group_get` adds one.
    let refs = Atomic<Int>(1)

    /// The VFIO layer's group for this IOMMU group while one is registered (the registry's
    /// `vfio_group_find_from_iommu` answer), guarded by the VFIO registry's lock. Kept here rather
    /// than in a dictionary keyed by the group: a registration then costs no hash-table probe,
    /// which at 100,000 groups is a cache miss. The IOMMU core never reads it.
    var vfioGroupStorage: VFIOGroup?

    init(core: IOMMUCore, id: Int, name: String?, isFake: Bool) {
        self.core = core
        self.id = id
        self.name = name
        self.isFake = isFake
    }

    public var description: String { "iommu_group \(id)" }

    /// The member devices, in order of addition.
    public var devices: [BusDevice] { mutex.withLock { members } }

    /// `iommu_group_dma_owner_claimed()`: owner_cnt > 0.
    public var dmaOwnerClaimed: Bool { mutex.withLock { ownerCount > 0 } }

    /// The current owner count (kernel drivers plus user claims).
    public var dmaOwnerCount: Int { mutex.withLock { ownerCount } }

    /// The reference count (discovery, members, and `iommu_group_get` holders), for tests and the C ABI.
    public var refCount: Int { refs.load(ordering: .relaxed) }

    /// Makes the next ownership claim fail EBUSY (the group sits on a non-default domain).
    public func setDomainConflict(_ on: Bool) { mutex.withLock { domainConflict = on } }

    /// `iommu_group_get()`: a new reference.
    public func get() { refs.add(1, ordering: .relaxed) }

    /// `iommu_group_put()`: drops a reference; the last frees the id of a fake group.
    public func put() {
        let old = refs.subtract(1, ordering: .acquiringAndReleasing).oldValue
        if old == 1 { core.groupReleased(self) }
        else if old <= 0 { core.log.warnOn(true, "iommu_group_put on a released group \(id)") }
    }

    // MARK: DMA ownership (drivers/iommu/iommu.c)

    /// `iommu_group_claim_dma_owner(group, owner)`: group-wide user ownership.
    /// EPERM if anyone owns it (a kernel driver included), EBUSY on a domain conflict.
    func claimDMAOwner(_ newOwner: AnyObject) throws(Errno) {
        try core.faults.check(.ownershipClaim)
        try mutex.withLock { () throws(Errno) in
            if ownerCount > 0 { throw .EPERM.because("IOMMU group {}: DMA already owned ({} owner(s), e.g. a kernel driver)", id, ownerCount) }
            if domainConflict { throw .EBUSY.because("IOMMU group {}: DMA domain conflict", id) }
            owner = newOwner
            ownerCount = 1
        }
    }

    /// `iommu_group_release_dma_owner(group)`.
    func releaseDMAOwner() {
        mutex.withLock {
            core.log.warnOn(ownerCount != 1 || owner == nil, "releasing DMA ownership of \(id) not group-owned")
            ownerCount = 0
            owner = nil
        }
    }

    /// `iommu_device_claim_dma_owner(dev, owner)`: per device, shared by the same owner.
    func deviceClaimDMAOwner(_ newOwner: AnyObject) throws(Errno) {
        try core.faults.check(.ownershipClaim)
        try mutex.withLock { () throws(Errno) in
            if ownerCount > 0 {
                if owner !== newOwner { throw .EPERM.because("IOMMU group {}: DMA owned by another owner", id) }
            } else {
                if domainConflict { throw .EBUSY.because("IOMMU group {}: DMA domain conflict", id) }
                owner = newOwner
            }
            ownerCount += 1
        }
    }

    /// `iommu_device_release_dma_owner(dev)`: the last release restores the default domain.
    func deviceReleaseDMAOwner() {
        mutex.withLock {
            if core.log.warnOn(ownerCount == 0, "device DMA owner release with no owner on \(id)") { return }
            ownerCount -= 1
            if ownerCount == 0 { owner = nil }
        }
    }
}
