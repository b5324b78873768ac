// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOTypes
import VFIO

// The model's hardware, for C programs that bring their own devices: bus devices (the PCI core's
// discovery), driver binding (the driver core), IOMMU groups (the IOMMU core). What a topology
// file describes, done by hand.

/// Adds a device called `name` to the model's bus (hot-plug), in no IOMMU group and unbound.
/// `flags`: SWIFTVFIO_DEV_NO_CACHE_COHERENCY, SWIFTVFIO_DEV_NO_ENFORCE_CACHE_COHERENCY (its IOMMU
/// capabilities; both present when 0). Stores the device in `*result`: valid while the device is in
/// the model (no reference count: remove it with swiftvfio_device_remove()). Returns 0 or -errno:
/// -EEXIST (the name is taken), -EINVAL (empty name, unknown flags), -EFAULT (unreadable `name`,
/// NULL `result`).
@c public func swiftvfio_device_add(_ name: UnsafePointer<CChar>?, _ flags: CUnsignedInt,
                                   _ result: UnsafeMutablePointer<UnsafeMutablePointer<device>?>?) -> CInt {
    kernelCall("swiftvfio_device_add") { sub throws(CallError) in
        guard result != nil else { throw CallError(.EFAULT, "result is NULL") }
        let n = try cString(name, "name", limit: 256)
        let known = CUnsignedInt(SWIFTVFIO_DEV_NO_CACHE_COHERENCY | SWIFTVFIO_DEV_NO_ENFORCE_CACHE_COHERENCY)
        guard flags & ~known == 0 else { throw CallError(.EINVAL, "unknown flags 0x\(String(flags, radix: 16))") }
        let bus = try model("adding device \(n)") { () throws(Errno) in
            try sub.iommu.addDevice(name: n,
                                    cacheCoherency: flags & CUnsignedInt(SWIFTVFIO_DEV_NO_CACHE_COHERENCY) == 0,
                                    enforceCacheCoherency: flags & CUnsignedInt(SWIFTVFIO_DEV_NO_ENFORCE_CACHE_COHERENCY) == 0)
        }
        do throws(CallError) {
            let t = try DefaultSubsystem.shared.handles.issue(bus, kind: .device)
            try writeOut(t, to: UnsafeMutableRawPointer(result), "result")
        } catch {
            DefaultSubsystem.shared.handles.retire(bus)
            try? sub.iommu.removeDevice(bus)
            throw error
        }
        return 0
    }
}

/// Finds the bus device called `name` (from the topology or swiftvfio_device_add()). Returns it,
/// valid while it is in the model, or NULL with errno ENOENT (EFAULT for an unreadable name).
@c public func swiftvfio_device_find(_ name: UnsafePointer<CChar>?) -> UnsafeMutablePointer<device>? {
    quietCall("swiftvfio_device_find", nil, setErrno: true) { sub throws(CallError) in
        let n = try cString(name, "name", limit: 256)
        guard let bus = sub.iommu.device(named: n) else { throw CallError(.ENOENT, "no device \(n)") }
        return try DefaultSubsystem.shared.handles.issue(bus, kind: .device).handle()
    }
}

/// Removes a bus device from the model (hot-unplug); its handle becomes stale. Returns 0 or
/// -errno: -EBUSY while a driver is bound or it is in an IOMMU group, -EINVAL (with a WARN) for a
/// bad handle.
@c public func swiftvfio_device_remove(_ dev: UnsafeMutablePointer<device>?) -> CInt {
    kernelCall("swiftvfio_device_remove") { sub throws(CallError) in
        let bus = try DefaultSubsystem.shared.handles.busDevice(dev, sub, "swiftvfio_device_remove")
        try model("removing \(bus.name) (unbind it and remove it from its IOMMU group first)") { () throws(Errno) in
            try sub.iommu.removeDevice(bus)
        }
        DefaultSubsystem.shared.handles.retire(bus)
        return 0
    }
}

/// Binds driver `driver` to bus device `dev` (the driver core's probe, before a VFIO driver's
/// registration). `driver_managed_dma`: true for VFIO bus drivers and drivers that do no DMA
/// (the group stays viable); false for a kernel driver that owns DMA, which makes the device's
/// IOMMU group not viable. Returns 0 or -errno: -EBUSY (a driver is already bound, or a DMA-owning
/// driver while the group is claimed by a user), -EFAULT (unreadable name), -EINVAL (bad handle).
@c public func swiftvfio_device_bind_driver(_ dev: UnsafeMutablePointer<device>?, _ driver: UnsafePointer<CChar>?,
                                           _ driver_managed_dma: Bool) -> CInt {
    kernelCall("swiftvfio_device_bind_driver") { sub throws(CallError) in
        let bus = try DefaultSubsystem.shared.handles.busDevice(dev, sub, "swiftvfio_device_bind_driver")
        let name = try cString(driver, "driver", limit: 256)
        try model("binding \(name) to \(bus.name)") { () throws(Errno) in
            try sub.iommu.bindDriver(name, to: bus, managesDMA: driver_managed_dma)
        }
        return 0
    }
}

/// Unbinds the driver of bus device `dev` (nothing if none). Unregister its VFIO device first.
/// A bad handle WARNs and does nothing.
@c public func swiftvfio_device_unbind_driver(_ dev: UnsafeMutablePointer<device>?) {
    quietCall("swiftvfio_device_unbind_driver", ()) { sub throws(CallError) in
        sub.iommu.unbindDriver(from: try DefaultSubsystem.shared.handles.busDevice(dev, sub, "swiftvfio_device_unbind_driver"))
    }
}

/// Creates IOMMU group `id` (hardware discovery) and stores it in `*result` with one reference,
/// owned by the caller: the group exists while it or a member device holds a reference
/// (iommu_group_add_device() takes one per device), so put it with iommu_group_put() once the
/// devices are added. Returns 0 or -errno: -EEXIST (id taken), -EINVAL (negative id), -EFAULT.
/// Kernel: iommu_group_alloc()
@c public func swiftvfio_iommu_group_alloc(_ id: CInt, _ result: UnsafeMutablePointer<UnsafeMutablePointer<iommu_group>?>?) -> CInt {
    kernelCall("swiftvfio_iommu_group_alloc") { sub throws(CallError) in
        guard result != nil else { throw CallError(.EFAULT, "result is NULL") }
        let g = try model("IOMMU group \(id)") { () throws(Errno) in try sub.iommu.addGroup(id: Int(id)) }
        do throws(CallError) {
            let t = try DefaultSubsystem.shared.handles.issue(g, kind: .iommuGroup, addRef: true)
            do throws(CallError) {
                try writeOut(t, to: UnsafeMutableRawPointer(result), "result")
            } catch {
                _ = try? DefaultSubsystem.shared.handles.put(t, .iommuGroup, as: IOMMUGroup.self, sub: sub, fn: "swiftvfio_iommu_group_alloc", retireAtZero: true)
                throw error
            }
        } catch {
            g.put()
            throw error
        }
        return 0
    }
}

/// Puts bus device `dev` in IOMMU group `group` (taking a group reference for the membership).
/// Returns 0 or -errno: -EBUSY (already in a group), -EINVAL (bad handle, with a WARN).
/// Kernel: iommu_group_add_device()
@c public func iommu_group_add_device(_ group: UnsafeMutablePointer<iommu_group>?, _ dev: UnsafeMutablePointer<device>?) -> CInt {
    kernelCall("iommu_group_add_device") { sub throws(CallError) in
        let g = try DefaultSubsystem.shared.handles.iommuGroup(group, sub, "iommu_group_add_device")
        let bus = try DefaultSubsystem.shared.handles.busDevice(dev, sub, "iommu_group_add_device")
        try model("adding \(bus.name) to IOMMU group \(g.id)") { () throws(Errno) in try sub.iommu.addDevice(bus, to: g) }
        return 0
    }
}

/// Takes bus device `dev` out of its IOMMU group (dropping the membership's group reference).
/// Unregister its VFIO device first. A device in no group, or a bad handle, WARNs.
/// Kernel: iommu_group_remove_device()
@c public func iommu_group_remove_device(_ dev: UnsafeMutablePointer<device>?) {
    quietCall("iommu_group_remove_device", ()) { sub throws(CallError) in
        let bus = try DefaultSubsystem.shared.handles.busDevice(dev, sub, "iommu_group_remove_device")
        guard let g = sub.iommu.iommuGroup(of: bus) else {
            sub.log.warnOn(true, "iommu_group_remove_device: \(bus.name) is in no IOMMU group")
            throw CallError(.EINVAL, "\(bus.name) is in no IOMMU group")
        }
        sub.iommu.removeDevice(bus, from: g)
    }
}

/// Returns the IOMMU group of bus device `dev` with a new reference (put it with
/// iommu_group_put()), or NULL if it is in none (errno ENODEV) or the handle is bad (WARN,
/// errno EINVAL).
/// Kernel: iommu_group_get()
@c public func iommu_group_get(_ dev: UnsafeMutablePointer<device>?) -> UnsafeMutablePointer<iommu_group>? {
    quietCall("iommu_group_get", nil, setErrno: true) { sub throws(CallError) in
        let bus = try DefaultSubsystem.shared.handles.busDevice(dev, sub, "iommu_group_get")
        guard let g = sub.iommu.iommuGroupGet(bus) else { throw CallError(.ENODEV, "\(bus.name) is in no IOMMU group") }
        do throws(CallError) {
            return try DefaultSubsystem.shared.handles.issue(g, kind: .iommuGroup, addRef: true).handle()
        } catch {
            g.put()
            throw error
        }
    }
}
