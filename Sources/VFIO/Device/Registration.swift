// SPDX-License-Identifier: Apache-2.0
/// Device allocation, registration and the blocking unregister (vfio_main.c, docs/ERRORS.md#registration, docs/DECISIONS.md#unregister).
extension VFIOSubsystem {
    /// Kernel: vfio_alloc_device() / vfio_init_device(): a device object for `bus` driven by
    /// `ops`, with one reference. Calls `ops.init`; its error (or ENOMEM, ENOSPC) fails the call.
    public func allocDevice(_ bus: BusDevice, ops: VFIODeviceOps) throws(Errno) -> VFIODevice {
        try faults.check(.deviceAlloc)
        try faults.check(.deviceIndex)
        let index = try deviceIDALock.withLock { () throws(Errno) -> Int in try deviceIDA.alloc() }
        let device = VFIODevice(subsystem: self, busDevice: bus, ops: ops, index: index)
        if let initDevice = ops.initDevice {
            do throws(Errno) {
                try initDevice(device)
            } catch {
                // vfio_init_device's error path frees the index without calling release.
                device.deviceRefs.store(0, ordering: .relaxed)
                deviceReleased(device)
                throw error.reason == nil ? error.because("the driver's init failed") : error
            }
        }
        return device
    }

    /// The last device reference is gone: the index returns to the IDA.
    func deviceReleased(_ device: VFIODevice) {
        releaseDeviceSet(device)
        deviceIDALock.withLock { _ = deviceIDA.free(device.index) }
        census.deviceFreed()
    }

    /// Kernel: vfio_assign_device_set(): puts `device` in the set keyed by `setID` (devices of one
    /// slot or bus reset domain), before registration. EINVAL once registered.
    public func assignDeviceSet(_ device: VFIODevice, setID: AnyObject) throws(Errno) {
        guard !device.registered else { throw .EINVAL.because("device already registered") }
        guard device.devSet == nil else { throw .EINVAL.because("device already has a device set") }
        try faults.check(.deviceSetAlloc)
        let key = ObjectIdentifier(setID)
        devSetsLock.withLock {
            // A device's own singleton set (keyed by the device, the default) is found through
            // the device rather than the table: most devices have one, and at 100,000 devices a
            // table probe per registration is a cache miss. Lookups by key see it all the same.
            let singleton = setID === device
            let set: DeviceSet
            if let s = deviceSets[key] {
                set = s
            } else if let d = setID as? VFIODevice, let s = d.devSet, s.key == key {
                set = s
                deviceSets[key] = s   // shared from now on: in the table, as any shared set
            } else {
                set = DeviceSet(key: key)
                if !singleton { deviceSets[key] = set }
                census.deviceSetCreated()
            }
            set.lock.withLock { set.members.append(device) }
            device.devSet = set
        }
    }

    /// Kernel: vfio_release_device_set(): leaves the set; the last member frees it.
    func releaseDeviceSet(_ device: VFIODevice) {
        guard let set = device.devSet else { return }
        devSetsLock.withLock {
            let empty = set.lock.withLock { () -> Bool in
                set.members.removeAll { $0 === device }
                return set.members.isEmpty
            }
            if empty {
                if deviceSets[set.key] === set { deviceSets[set.key] = nil }
                census.deviceSetFreed()
            }
        }
        device.devSet = nil
    }

    /// Kernel: vfio_register_group_dev(): registers a physical device behind an IOMMU.
    public func registerGroupDevice(_ device: VFIODevice) throws(Errno) {
        try register(device, type: .iommu)
    }

    /// Kernel: vfio_register_emulated_iommu_dev(): registers an mdev-style device; it always gets
    /// a fresh fake IOMMU group.
    public func registerEmulatedIOMMUDevice(_ device: VFIODevice) throws(Errno) {
        try register(device, type: .emulatedIOMMU)
    }

    /// Kernel: __vfio_register_dev(). Errors unwind in reverse.
    func register(_ device: VFIODevice, type: VFIOGroupType) throws(Errno) {
        let ops = device.ops
        if log.warnOn(ops.bindIOMMUFD != nil && (ops.unbindIOMMUFD == nil || ops.attachIOAS == nil),
                      "\(ops.name): bind_iommufd without unbind_iommufd or attach_ioas") {
            throw .EINVAL.because("ops: bind_iommufd without unbind_iommufd or attach_ioas")
        }
        guard device.deviceRefs.load(ordering: .relaxed) > 0 else {
            log.warnOn(true, "registering a released device")
            throw .EINVAL.because("the device was released")
        }
        if log.warnOn(device.registered, "\(device) registered twice") { throw .EINVAL.because("device registered twice") }
        // If the driver doesn't specify a set then the device is added to a singleton set.
        var assignedSingleton = false
        if device.devSet == nil {
            try assignDeviceSet(device, setID: device)
            assignedSingleton = true
        }
        let group: VFIOGroup
        do throws(Errno) {
            group = try deviceSetGroup(device, type: type)
        } catch {
            if assignedSingleton { releaseDeviceSet(device) }
            throw error
        }
        do throws(Errno) {
            try faults.check(.deviceAdd)
        } catch {
            groups.removeGroup(of: device, group)
            device.group = nil
            if assignedSingleton { releaseDeviceSet(device) }
            throw error
        }
        device.registrationRefs.store(1, ordering: .releasing)
        device.registered = true
        device.get()   // the registration keeps the object alive (the kernel's device_add)
        group.registerDevice(device)
        census.deviceRegistered()
    }

    /// Kernel: vfio_unregister_group_dev(): drops the registration, then blocks until every device
    /// file is closed, calling the driver's `request(device, n)` with n = 0, 1, 2, ... before each
    /// wait, then removes the device and, with the last device, the group. Never times out.
    public func unregisterGroupDevice(_ device: VFIODevice) {
        guard device.registered, let group = device.group else {
            log.warnOn(true, "unregistering \(device), which is not registered")
            return
        }
        device.completion = Completion()
        device.putRegistration()
        var i: UInt32 = 0
        while true {
            if device.registrationRefs.load(ordering: .acquiring) == 0 { break }
            if let request = device.ops.request {
                request(device, i)
                i &+= 1
            }
            if device.completion!.wait(timeout: config.unregisterRequestInterval) { break }
            if i == 1 || device.ops.request == nil {
                log.info("\(device.busDevice.name): Device is currently in use, task blocked until device is released")
            }
        }
        group.unregisterDevice(device)
        census.deviceUnregistered()
        groups.removeGroup(of: device, group)
        device.registered = false
        device.put()
    }
}
