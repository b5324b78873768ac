// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A VFIO device (`struct vfio_device`, docs/ERRORS.md#state-device) registered by a bus driver.
///
/// Two reference counts, as in the kernel: `deviceRefs` keeps the object (alloc → put; the last
/// put calls the driver's `release`), and the registration refcount (`refcount`), 1 at register,
/// +1 per name lookup and device file, which unregister drains to 0 before removing the device.
public final class VFIODevice: @unchecked Sendable, CustomStringConvertible {
    unowned let subsystem: VFIOSubsystem
    /// The bus device (`device->dev`): its name is the default GET_DEVICE_FD key.
    public let busDevice: BusDevice
    /// The driver's callbacks.
    public let ops: VFIODeviceOps
    /// The index from the device IDA ("vfio%d").
    public let index: Int
    /// The driver's own state, for C drivers (`container_of` has no Swift counterpart).
    nonisolated(unsafe) public var driverData: UnsafeMutableRawPointer?
    /// The driver's own state, for Swift drivers.
    nonisolated(unsafe) public var driverObject: AnyObject?

    /// Object references: `vfio_alloc_device` gives 1; `vfio_put_device` drops one.
    let deviceRefs = Atomic<Int>(1)
    /// Registration references (`device->refcount`); 0 before registration and after unregister.
    let registrationRefs = Atomic<Int>(0)
    /// Fires when the registration count reaches 0 (`device->comp`). Made by unregister before it
    /// drops the registration's own reference (the only way the count can reach 0), so a device
    /// that is never unregistered carries none; that drop orders it before any `complete()`.
    var completion: Completion?

    // Set by registration, then immutable until unregistration (guarded by registration ordering).
    nonisolated(unsafe) var group: VFIOGroup?
    nonisolated(unsafe) var devSet: DeviceSet?
    nonisolated(unsafe) var registered = false

    // Guarded by devSet.lock.
    /// `device->open_count`.
    var openCountStorage = 0
    /// docs/DECISIONS.md#q1 decision: how the device was first opened (the ctx for iommufd, nil for the container),
    /// so its last close undoes exactly that, whatever the group's attachment is by then.
    var openedThroughIOMMUFD: IOMMUFDContext?
    /// The KVM reference latched at first open, and how to drop it.
    var kvm: UnsafeMutableRawPointer?
    var kvmPut: KVMOps?
    /// iommufd bookkeeping: the context a physical/emulated bind holds, and the attached IOAS.
    var iommufdBound: IOMMUFDContext?
    var iommufdAttachedIOAS: UInt32?

    init(subsystem: VFIOSubsystem, busDevice: BusDevice, ops: VFIODeviceOps, index: Int) {
        self.subsystem = subsystem
        self.busDevice = busDevice
        self.ops = ops
        self.index = index
        subsystem.census.deviceCreated()
    }

    public var description: String { "vfio\(index) (\(busDevice.name))" }

    /// The `device->dev` name of the VFIO device itself: "vfio<index>".
    public var name: String { "vfio\(index)" }

    /// The VFIO group while registered.
    public var vfioGroup: VFIOGroup? { group }

    /// The device set while registered.
    public var deviceSet: DeviceSet? { devSet }

    /// `device->open_count`.
    public var openCount: Int { devSet?.lock.withLock { openCountStorage } ?? 0 }

    /// The `struct kvm *` this device was opened with (what `open_device` may read), or nil.
    public var kvmPointer: UnsafeMutableRawPointer? { devSet?.lock.withLock { kvm } ?? kvm }

    /// The KVM pointer, for a driver's `open_device`/`close_device` (dev_set lock already held).
    public var kvmPointerInCallback: UnsafeMutableRawPointer? { kvm }

    /// The registration refcount.
    public var registrationCount: Int { registrationRefs.load(ordering: .relaxed) }

    /// The object refcount.
    public var refCount: Int { deviceRefs.load(ordering: .relaxed) }

    /// Kernel: vfio_device_try_get_registration(): increment if not zero.
    func tryGetRegistration() -> Bool {
        var old = registrationRefs.load(ordering: .relaxed)
        while old > 0 {
            let (ok, cur) = registrationRefs.weakCompareExchange(expected: old, desired: old + 1, ordering: .acquiring)
            if ok { return true }
            old = cur
        }
        return false
    }

    /// Kernel: vfio_device_put_registration(): the last put completes unregister's wait.
    func putRegistration() {
        let old = registrationRefs.subtract(1, ordering: .acquiringAndReleasing).oldValue
        if old == 1 {
            if let completion { completion.complete() }
            else { subsystem.log.warnOn(true, "registration of \(self) dropped to 0 outside unregister") }
        }
        else { subsystem.log.warnOn(old <= 0, "registration put on \(self) with count \(old)") }
    }

    /// `get_device(&device->device)`.
    @discardableResult
    public func get() -> Bool {
        var old = deviceRefs.load(ordering: .relaxed)
        while old > 0 {
            let (ok, cur) = deviceRefs.weakCompareExchange(expected: old, desired: old + 1, ordering: .relaxed)
            if ok { return true }
            old = cur
        }
        subsystem.log.warnOn(true, "get on released \(self)")
        return false
    }

    /// Kernel: vfio_put_device(): the last put calls the driver's `release` and frees the index.
    public func put() {
        var old = deviceRefs.load(ordering: .relaxed)
        while true {
            if old <= 0 { subsystem.log.warnOn(true, "vfio_put_device on released \(self)"); return }
            let (ok, cur) = deviceRefs.weakCompareExchange(expected: old, desired: old - 1, ordering: .acquiringAndReleasing)
            if ok { break }
            old = cur
        }
        guard old == 1 else { return }
        subsystem.log.warnOn(registered, "\(self) released while registered")
        ops.release?(self)
        subsystem.deviceReleased(self)
    }
}
