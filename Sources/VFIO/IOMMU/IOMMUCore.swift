// SPDX-License-Identifier: Apache-2.0
/// The fake IOMMU core (docs/TOPOLOGY.md#drivers): IOMMU groups, bus devices, driver binding, DMA ownership.
///
/// It plays the part of drivers/iommu/iommu.c and the driver core for one subsystem. Group ids are
/// explicit (hardware discovery) or, for VFIO's fake groups, the smallest id no group holds.
public final class IOMMUCore: @unchecked Sendable {
    let log: KernelLog
    let faults: FaultInjector
    /// Counts live IOMMU groups (`Census.iommuGroupCount`).
    let census: Census
    /// Guards the tables below (the kernel's iommu_group_kset and bus device lists).
    private let lock = KernelMutex("iommu_core.lock")
    private var groupsByID: [Int: IOMMUGroup] = [:]
    private var devicesByName: [String: BusDevice] = [:]
    private var groupIDs = IDA(limit: Int(Int32.max))

    init(log: KernelLog, faults: FaultInjector, census: Census) {
        self.log = log
        self.faults = faults
        self.census = census
    }

    /// The hardware goes with its subsystem: break the device <-> group links (each holds the
    /// other, as `dev->iommu_group` and the group's device list do) so both are freed.
    deinit {
        for g in groupsByID.values { g.members.removeAll(); g.owner = nil; g.vfioGroupStorage = nil }
        for d in devicesByName.values { d.iommuGroupStorage = nil }
    }

    /// Creates IOMMU group `id` (hardware discovery). EEXIST if the id is taken, EINVAL if negative.
    public func addGroup(id: Int) throws(Errno) -> IOMMUGroup {
        try lock.withLock { () throws(Errno) -> IOMMUGroup in
            guard id >= 0 else { throw .EINVAL.because("IOMMU group id {i} is negative", id) }
            guard groupIDs.take(id) else { throw .EEXIST.because("IOMMU group {} already exists", id) }
            let g = IOMMUGroup(core: self, id: id, name: nil, isFake: false)
            groupsByID[id] = g
            census.iommuGroupCreated()
            return g
        }
    }

    /// `iommu_group_alloc()` + name "vfio-noiommu": a fake group with the smallest free id, or
    /// `preferred` when it is free (a topology replaying the number the kernel once gave).
    func allocFakeGroup(preferred: Int? = nil) throws(Errno) -> IOMMUGroup {
        try faults.check(.fakeIOMMUGroupAlloc)
        return try lock.withLock { () throws(Errno) -> IOMMUGroup in
            let id: Int
            if let preferred, groupIDs.take(preferred) { id = preferred } else { id = try groupIDs.alloc() }
            let g = IOMMUGroup(core: self, id: id, name: "vfio-noiommu", isFake: true)
            groupsByID[id] = g
            census.iommuGroupCreated()
            return g
        }
    }

    /// Called by the last `iommu_group_put`: the id becomes free.
    func groupReleased(_ group: IOMMUGroup) {
        lock.withLock {
            if groupsByID[group.id] === group {
                groupsByID[group.id] = nil
                groupIDs.free(group.id)
                census.iommuGroupFreed()
            }
        }
    }

    /// Drops the discovery reference of a group (hot-unplug of the whole group). Members must be gone.
    public func removeGroup(_ group: IOMMUGroup) throws(Errno) {
        guard group.devices.isEmpty else { throw .EBUSY.because("IOMMU group {} still has {} device(s)", group.id, group.devices.count) }
        group.put()
    }

    /// The IOMMU group with `id`, if it exists.
    public func group(id: Int) -> IOMMUGroup? { lock.withLock { groupsByID[id] } }

    /// Every live IOMMU group, by id.
    public var groups: [IOMMUGroup] { lock.withLock { groupsByID.values.sorted { $0.id < $1.id } } }

    /// Adds a bus device (hardware discovery). EEXIST for a duplicate name, EINVAL for an empty one.
    public func addDevice(name: String, cacheCoherency: Bool = true,
                          enforceCacheCoherency: Bool = true) throws(Errno) -> BusDevice {
        try lock.withLock { () throws(Errno) -> BusDevice in
            guard !name.isEmpty else { throw .EINVAL.because("empty device name") }
            guard devicesByName[name] == nil else { throw .EEXIST.because("a device of that name already exists") }
            let d = BusDevice(name: name, cacheCoherency: cacheCoherency, enforceCacheCoherency: enforceCacheCoherency)
            devicesByName[name] = d
            return d
        }
    }

    /// Removes an unbound device that belongs to no IOMMU group (hot-unplug). EBUSY otherwise.
    public func removeDevice(_ dev: BusDevice) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard dev.driverStorage == nil else { throw .EBUSY.because("device still has a driver bound") }
            guard dev.iommuGroupStorage == nil else { throw .EBUSY.because("device still in IOMMU group {}", dev.iommuGroupStorage!.id) }
            devicesByName[dev.name] = nil
        }
    }

    /// The bus device called `name`.
    public func device(named name: String) -> BusDevice? { lock.withLock { devicesByName[name] } }

    /// Every bus device.
    public var devices: [BusDevice] { lock.withLock { Array(devicesByName.values) } }

    /// `iommu_group_add_device()`. EBUSY if the device is already in a group.
    public func addDevice(_ dev: BusDevice, to group: IOMMUGroup) throws(Errno) {
        if group.isFake { try faults.check(.fakeIOMMUGroupAddDevice) }
        try lock.withLock { () throws(Errno) in
            guard dev.iommuGroupStorage == nil else { throw .EBUSY.because("device already in IOMMU group {}", dev.iommuGroupStorage!.id) }
            dev.iommuGroupStorage = group
        }
        group.mutex.withLock { group.members.append(dev) }
        group.get()
    }

    /// `iommu_group_remove_device()`.
    public func removeDevice(_ dev: BusDevice, from group: IOMMUGroup) {
        let was = lock.withLock { () -> Bool in
            guard dev.iommuGroupStorage === group else { return false }
            dev.iommuGroupStorage = nil
            return true
        }
        guard was else { log.warnOn(true, "\(dev.name) is not in \(group)"); return }
        group.mutex.withLock { group.members.removeAll { $0 === dev } }
        group.put()
    }

    /// `iommu_group_get(dev)`: the device's group with a new reference, or nil.
    public func iommuGroupGet(_ dev: BusDevice) -> IOMMUGroup? {
        let g = lock.withLock { dev.iommuGroupStorage }
        g?.get()
        return g
    }

    /// The device's IOMMU group without a reference (for display).
    public func iommuGroup(of dev: BusDevice) -> IOMMUGroup? { lock.withLock { dev.iommuGroupStorage } }

    /// The bound driver's name, or nil.
    public func driver(of dev: BusDevice) -> String? { lock.withLock { dev.driverStorage } }

    /// Driver core probe: binds `driver` to `dev`. A driver that does not manage DMA itself takes an
    /// owner count on the IOMMU group (`iommu_device_use_default_domain`), which fails EBUSY while
    /// the group is user-owned; EBUSY too if a driver is already bound.
    public func bindDriver(_ driver: String, to dev: BusDevice, managesDMA: Bool) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard dev.driverStorage == nil else { throw .EBUSY.because("device already has a driver bound") }
            if !managesDMA, let g = dev.iommuGroupStorage {
                try g.mutex.withLock { () throws(Errno) in
                    if g.owner != nil { throw .EBUSY.because("IOMMU group {} is owned by user space (DMA owner)", g.id) }
                    g.ownerCount += 1
                }
            }
            dev.driverStorage = driver
            dev.driverManagesDMA = managesDMA
        }
    }

    /// Driver core remove: unbinds the driver, dropping its owner count.
    public func unbindDriver(from dev: BusDevice) {
        lock.withLock {
            guard dev.driverStorage != nil else { return }
            if !dev.driverManagesDMA, let g = dev.iommuGroupStorage {
                g.mutex.withLock { g.ownerCount -= 1 }
            }
            dev.driverStorage = nil
            dev.driverManagesDMA = true
        }
    }

    /// Whether a driver of this name manages DMA itself (docs/TOPOLOGY.md#drivers): VFIO bus
    /// drivers, pci-stub and pcieport do; every other kernel driver does not.
    public static func driverManagesDMA(_ driver: String) -> Bool {
        driver.hasPrefix("vfio") || driver == "pci-stub" || driver == "pcieport"
    }
}
