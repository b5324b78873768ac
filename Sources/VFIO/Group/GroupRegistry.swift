// SPDX-License-Identifier: Apache-2.0
/// The groups a subsystem knows: the kernel's global `vfio.group_list`, `vfio.group_lock`,
/// `vfio.group_ida` and the char-dev nodes.
///
/// Lookups are O(1) (by IOMMU group, by node name, by minor) where the kernel walks a list: a
/// model holding 100,000 groups must not slow down as it grows. Nothing can observe the order.
final class GroupRegistry: @unchecked Sendable {
    unowned let subsystem: VFIOSubsystem
    /// `vfio.group_lock`: the group list and nodes. Outermost lock of the group layer.
    let lock = KernelMutex("vfio.group_lock")
    // The group of each IOMMU group lives on the IOMMU group (`vfioGroupStorage`), under `lock`.
    private var byNode: [String: VFIOGroup] = [:]
    /// Groups holding a minor (registered, or removed but still open), indexed by minor (minors
    /// are small and dense: the IDA hands out the lowest free one).
    private var byMinor: [VFIOGroup?] = []
    /// `vfio.group_ida`: guarded by `idaLock` (the IDA's own lock: the release path frees a minor
    /// without the registry lock).
    private let idaLock = KernelMutex("vfio.group_ida")
    private var minors = IDA(limit: 1 << 20)

    init(subsystem: VFIOSubsystem) { self.subsystem = subsystem }

    /// Kernel: vfio_group_find_from_iommu(). Caller holds `lock`.
    func find(_ iommuGroup: IOMMUGroup) -> VFIOGroup? {
        lock.assertHeld()
        return iommuGroup.vfioGroupStorage
    }

    /// The group whose node is `/dev/vfio/<name>`.
    func group(named name: String) -> VFIOGroup? { lock.withLock { byNode[name] } }

    /// The group holding `minor` (the char-dev lookup of a node's devt).
    func group(minor: Int) -> VFIOGroup? {
        lock.withLock { minor >= 0 && minor < byMinor.count ? byMinor[minor] : nil }
    }

    /// Every registered group (with a node), sorted by name.
    var all: [VFIOGroup] { lock.withLock { byNode.values.sorted { $0.minor < $1.minor } } }

    /// How many groups hold a minor (registered or lingering).
    var liveCount: Int { idaLock.withLock { minors.count } }

    /// Kernel: vfio_group_alloc() + vfio_create_group(). Caller holds `lock`.
    /// Errors unwind fully (docs/DECISIONS.md#q6 decision: no leaked IOMMU-group reference, no leaked minor).
    func create(_ iommuGroup: IOMMUGroup, type: VFIOGroupType) throws(Errno) -> VFIOGroup {
        lock.assertHeld()
        let faults = subsystem.faults
        try faults.check(.groupAlloc)
        try faults.check(.groupMinor)
        let minor = try idaLock.withLock { () throws(Errno) -> Int in try minors.alloc() }
        do throws(Errno) {
            try faults.check(.groupCdevAdd)
        } catch {
            idaLock.withLock { _ = minors.free(minor) }
            throw error
        }
        // The group's reference on the IOMMU group ("put in release", in fact put by removal).
        iommuGroup.get()
        let group = VFIOGroup(subsystem: subsystem, iommuGroup: iommuGroup, type: type, minor: minor)
        iommuGroup.vfioGroupStorage = group
        byNode[group.name] = group
        while minor >= byMinor.count { byMinor.append(nil) }   // amortised growth, no temporary array
        byMinor[minor] = group
        return group
    }

    /// Kernel: vfio_group_release(): the last reference to the group struct is gone.
    func release(_ group: VFIOGroup) {
        subsystem.log.warnOn(group.groupLock.withLock { group.iommuGroup != nil },
                             "\(group) released while still registered")
        lock.withLock {
            if group.minor < byMinor.count, byMinor[group.minor] === group { byMinor[group.minor] = nil }
        }
        idaLock.withLock { _ = minors.free(group.minor) }
        subsystem.census.groupFreed()
    }

    /// Kernel: vfio_group_find_or_alloc(): the VFIO group for a VFIO_IOMMU registration of `bus`.
    func findOrAlloc(for bus: BusDevice) throws(Errno) -> VFIOGroup {
        let core = subsystem.iommu
        guard let iommuGroup = core.iommuGroupGet(bus) else {
            // No IOMMU group: the unsafe no-IOMMU mode makes a fake one (docs/ERRORS.md#reg-noiommu-alloc step 1).
            if subsystem.noIOMMUModeEnabled {
                let group = try noIOMMUGroupAlloc(for: bus, type: .noIOMMU)
                subsystem.log.addTaintUser()
                subsystem.log.warning("\(bus.name): Adding kernel taint for vfio-noiommu group on device")
                return group
            }
            throw .EINVAL.because("device has no IOMMU group (and no-IOMMU mode is off)")
        }
        defer { iommuGroup.put() }
        // v6.3 checks cache coherency here (6.6 moved it to __vfio_register_dev, same errno).
        guard bus.cacheCoherency else { throw .EINVAL.because("device is not cache coherent (IOMMU_CAP_CACHE_COHERENCY)") }
        return try lock.withLock { () throws(Errno) -> VFIOGroup in
            if let group = find(iommuGroup) {
                if subsystem.log.warnOn(group.hasDevice(bus), "\(bus.name) already registered in \(group)") {
                    throw .EINVAL.because("device already registered in group {}", group.iommuGroupID)
                }
                group.drivers.add(1, ordering: .relaxed)
                return group
            }
            return try create(iommuGroup, type: .iommu)
        }
    }

    /// Kernel: vfio_noiommu_group_alloc(): a fresh fake IOMMU group named "vfio-noiommu" holding
    /// just `bus`, and its VFIO group (NO_IOMMU or EMULATED). Errors unwind in reverse.
    func noIOMMUGroupAlloc(for bus: BusDevice, type: VFIOGroupType) throws(Errno) -> VFIOGroup {
        let core = subsystem.iommu
        let iommuGroup = try core.allocFakeGroup(preferred: bus.preferredNoIOMMUGroupID)
        defer { iommuGroup.put() }   // the local reference; the VFIO group keeps its own
        try core.addDevice(bus, to: iommuGroup)
        do throws(Errno) {
            return try lock.withLock { () throws(Errno) -> VFIOGroup in try create(iommuGroup, type: type) }
        } catch {
            core.removeDevice(bus, from: iommuGroup)
            throw error
        }
    }

    /// Kernel: vfio_device_remove_group(): a device's registration goes; the last one removes the
    /// group: node gone, forced container detach, `iommu_group` cleared. The struct lives on
    /// while its file is open. `iommufd` and `kvm` are not cleared (docs/ERRORS.md#state-group).
    func removeGroup(of device: VFIODevice, _ group: VFIOGroup) {
        guard let iommuGroup = group.groupLock.withLock({ group.iommuGroup }) else {
            subsystem.log.warnOn(true, "\(group) removed twice")
            return
        }
        if group.type == .noIOMMU || group.type == .emulatedIOMMU {
            subsystem.iommu.removeDevice(device.busDevice, from: iommuGroup)
        }
        // refcount_dec_and_mutex_lock(&group->drivers, &vfio.group_lock)
        lock.lock()
        let old = group.drivers.subtract(1, ordering: .acquiringAndReleasing).oldValue
        guard old == 1 else {
            lock.unlock()
            return
        }
        if iommuGroup.vfioGroupStorage === group { iommuGroup.vfioGroupStorage = nil }
        if byNode[group.name] === group { byNode[group.name] = nil }   // cdev_device_del
        group.groupLock.lock()
        subsystem.log.warnOn(group.deviceLock.withLock { !group.deviceList.isEmpty },
                             "\(group) removed with devices still listed")
        // A group file still open with a container attached: the container must not keep a
        // group whose IOMMU group is gone, so detach it by force.
        if group.container != nil {
            group.detachContainer()
        }
        group.iommuGroupRevoked = true
        group.groupLock.unlock()
        lock.unlock()
        iommuGroup.put()
        group.devicePut()
    }
}

extension VFIOSubsystem {
    /// Kernel: vfio_device_set_group(): the VFIO group a registration of `device` joins (found or
    /// made for its IOMMU group, or a fresh fake one for the no-IOMMU and emulated types), stored
    /// in `device.group` with the registration's `drivers` count on it.
    func deviceSetGroup(_ device: VFIODevice, type: VFIOGroupType) throws(Errno) -> VFIOGroup {
        let group: VFIOGroup
        switch type {
        case .iommu: group = try groups.findOrAlloc(for: device.busDevice)
        case .emulatedIOMMU, .noIOMMU: group = try groups.noIOMMUGroupAlloc(for: device.busDevice, type: type)
        }
        // The registration's count on the group moves to the device.
        device.group = group
        return group
    }
}
