// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSwiftVFIOTypes
import VFIO

// The driver API for C (vfio_main.c's exports): a C bus driver's ops table becomes a
// `VFIODeviceOps` whose closures call the C function pointers with the device's handle.

/// A C driver's device: its copied ops table and its handle.
final class CDriverDevice: @unchecked Sendable {
    let ops: vfio_device_ops
    /// The device's token, issued by the init trampoline (the first moment the device exists).
    var token: UInt = 0
    let drvdata: UnsafeMutableRawPointer?

    init(ops: vfio_device_ops, drvdata: UnsafeMutableRawPointer?) {
        self.ops = ops
        self.drvdata = drvdata
    }

    var handle: UnsafeMutablePointer<vfio_device>? { token.handle() }
}

/// The device whose dev_set-locked callback (open_device, close_device, the iommufd ops) runs on
/// this thread, so swiftvfio_device_kvm() reads `device->kvm` without taking the lock it holds.
enum CallbackDevice {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    static func with<R, E: Error>(_ device: VFIODevice, _ body: () throws(E) -> R) throws(E) -> R {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(device).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return try body()
    }

    static func isCurrent(_ device: VFIODevice) -> Bool {
        pthread_getspecific(key) == Unmanaged.passUnretained(device).toOpaque()
    }
}

/// A C op's `int` result as the model's: negative is -errno (below -4095, not an errno: EINVAL).
/// `reason` names the op and takes the value it returned ("the C driver's ioctl op returned {i}").
@inline(__always) func check(_ r: Int, _ reason: StaticString) throws(Errno) -> Int {
    if r >= 0 { return r }
    let e = r < -4095 ? Errno.EINVAL : Errno(rawValue: Int32(-r))
    throw e.because(reason, r)
}

extension CDriverDevice {
    /// The model's ops table, calling this driver's C ops.
    func swiftOps(name: String) -> VFIODeviceOps {
        var s = VFIODeviceOps(name: name)
        let c = ops
        let box = self
        // init always runs: it is where the device first exists, so where its handle is issued.
        s.initDevice = { device throws(Errno) in
            do throws(CallError) {
                box.token = try DefaultSubsystem.shared.handles.issue(device, kind: .vfioDevice, strong: true, name: device.busDevice.name)
            } catch {
                throw error.errno
            }
            device.driverData = box.drvdata
            if let f = box.ops.`init` { _ = try check(Int(f(box.handle)), "the C driver's init op returned {i}") }
        }
        // release always runs too: the handle retires after the driver's release returns.
        s.release = { device in
            DefaultSubsystem.shared.handles.setReleasing(device, true)
            box.ops.release?(box.handle)
            DefaultSubsystem.shared.handles.retire(device)
            DefaultSubsystem.shared.cDevices.subtract(1, ordering: .relaxed)
        }
        if let f = c.bind_iommufd {
            s.bindIOMMUFD = { device, ctx throws(Errno) in
                let t: UInt
                do throws(CallError) { t = try DefaultSubsystem.shared.handles.issue(ctx, kind: .iommufdCtx, strong: false) } catch { throw error.errno }
                var id: UInt32 = 0
                _ = try CallbackDevice.with(device) { () throws(Errno) in try check(Int(f(box.handle, t.handle(), &id)), "the C driver's bind_iommufd op returned {i}") }
                return id
            }
        }
        if let f = c.unbind_iommufd {
            s.unbindIOMMUFD = { device in
                CallbackDevice.with(device) { f(box.handle) }
            }
        }
        if let f = c.attach_ioas {
            s.attachIOAS = { device, id throws(Errno) in
                var pt = id
                _ = try CallbackDevice.with(device) { () throws(Errno) in try check(Int(f(box.handle, &pt)), "the C driver's attach_ioas op returned {i}") }
            }
        }
        if let f = c.open_device {
            s.openDevice = { device throws(Errno) in
                _ = try CallbackDevice.with(device) { () throws(Errno) in try check(Int(f(box.handle)), "the C driver's open_device op returned {i}") }
            }
        }
        if let f = c.close_device {
            s.closeDevice = { device in CallbackDevice.with(device) { f(box.handle) } }
        }
        if let f = c.read {
            s.read = { _, buf, count, pos throws(Errno) in
                var p = pos
                let n = try check(f(box.handle, UnsafeMutablePointer(bitPattern: buf), count, &p), "the C driver's read op returned {i}")
                pos = p
                return n
            }
        }
        if let f = c.write {
            s.write = { _, buf, count, pos throws(Errno) in
                var p = pos
                let n = try check(f(box.handle, UnsafePointer(bitPattern: buf), count, &p), "the C driver's write op returned {i}")
                pos = p
                return n
            }
        }
        if let f = c.ioctl {
            s.ioctl = { _, cmd, arg throws(Errno) in try check(f(box.handle, cmd, CUnsignedLong(arg)), "the C driver's ioctl op returned {i}") }
        }
        if let f = c.mmap {
            s.mmap = { device, offset, length, prot, placement throws(Errno) in
                // The driver hands out memory it owns (vm_start): the model cannot put it where
                // MAP_FIXED asks without taking it from the driver. A hint it may ignore.
                guard !placement.isFixed else {
                    throw .EINVAL.because("MAP_FIXED: a C driver's mmap op hands out memory it owns, which is not moved")
                }
                let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
                var flags: UInt = placement.isShared ? 0x8 : 0   // VM_SHARED
                if prot & PROT_READ != 0 { flags |= 0x1 }
                if prot & PROT_WRITE != 0 { flags |= 0x2 }
                var vma = vm_area_struct(vm_start: 0, vm_end: UInt(length), vm_pgoff: UInt(offset / page),
                                         vm_flags: flags, vm_page_prot: UInt(UInt32(bitPattern: prot)), vm_private_data: nil)
                _ = try check(Int(f(box.handle, &vma)), "the C driver's mmap op returned {i}")
                if vma.vm_start == 0 {
                    DefaultSubsystem.shared.currentSubsystem?.log.warnOn(true, "\(name): mmap returned 0 without setting vm_start")
                    throw .EINVAL.because("the C driver's mmap op returned 0 without setting vm_start")
                }
                return vma.vm_start
            }
        }
        if let f = c.request {
            s.request = { _, count in f(box.handle, count) }
        }
        if let f = c.match {
            s.match = { _, name in
                guard let copy = strdup(name) else { return -Errno.ENOMEM.rawValue }
                defer { free(copy) }
                return f(box.handle, copy)
            }
        }
        if let f = c.device_feature {
            s.deviceFeature = { _, flags, arg, argsz throws(Errno) in
                try check(Int(f(box.handle, flags, UnsafeMutableRawPointer(bitPattern: arg), argsz)), "the C driver's device_feature op returned {i}")
            }
        }
        return s
    }
}

// MARK: - allocation and registration

/// Allocates a VFIO device for bus device `dev` driven by the C ops table `ops` (the kernel's
/// vfio_alloc_device(): a C struct cannot embed the incomplete struct vfio_device, so the
/// driver's own state is `drvdata`, read back with swiftvfio_device_drvdata()). The table is
/// copied; `ops->init` runs before this returns (its error fails the call and no release runs).
/// On success stores in `*result` a device holding one reference, owned by the caller and dropped
/// with vfio_put_device() (the last put calls `ops->release`); on error `*result` is NULL (when
/// `result` is writable: an unwritable one fails first, before `ops->init`). Returns 0, or -errno: -EFAULT
/// (`ops` or `result` NULL or unreadable), -EINVAL (bad `dev` handle, with a WARN), -ENOMEM,
/// -ENOSPC (no device index), or init's error.
/// Kernel: vfio_alloc_device() / _vfio_alloc_device()
@c public func swiftvfio_alloc_device(_ dev: UnsafeMutablePointer<device>?, _ ops: UnsafePointer<vfio_device_ops>?,
                                     _ drvdata: UnsafeMutableRawPointer?, _ result: UnsafeMutablePointer<UnsafeMutablePointer<vfio_device>?>?) -> CInt {
    kernelCall("swiftvfio_alloc_device") { sub throws(CallError) in
        guard let result else { throw CallError(.EFAULT, "result is NULL") }
        guard let ops else { throw CallError(.EFAULT, "ops is NULL") }
        // An unwritable result fails before anything exists (no init, no release).
        try writeOut(UInt(0), to: UnsafeMutableRawPointer(result), "result")
        let bus = try DefaultSubsystem.shared.handles.busDevice(dev, sub, "swiftvfio_alloc_device")
        let table = try model("ops is not readable") { () throws(Errno) in
            try UserMemory.read(vfio_device_ops.self, from: UInt(bitPattern: ops))
        }
        let name = table.name == nil ? "c-driver" : try cString(table.name, "ops->name", limit: 256)
        let box = CDriverDevice(ops: table, drvdata: drvdata)
        DefaultSubsystem.shared.cDevices.add(1, ordering: .relaxed)
        let device: VFIODevice
        do throws(Errno) {
            device = try sub.allocDevice(bus, ops: box.swiftOps(name: name))
        } catch {
            // A failed init frees the device without release: the handle (if issued) goes too.
            if box.token != 0 { DefaultSubsystem.shared.handles.retire(token: box.token) }
            DefaultSubsystem.shared.cDevices.subtract(1, ordering: .relaxed)
            throw CallError(error, "allocating a device for \(bus.name)")
        }
        // The caller owns the allocation's reference.
        _ = try DefaultSubsystem.shared.handles.issue(device, kind: .vfioDevice, addRef: true)
        do throws(CallError) {
            try writeOut(box.token, to: UnsafeMutableRawPointer(result), "result")
        } catch {
            _ = try? DefaultSubsystem.shared.handles.put(box.token, .vfioDevice, as: VFIODevice.self, sub: sub, fn: "swiftvfio_alloc_device", retireAtZero: false)
            device.put()
            throw error
        }
        return 0
    }
}

/// Drops a reference to a device allocated with swiftvfio_alloc_device(); the last one (after
/// vfio_unregister_group_dev(), whose registration holds one) calls the driver's release op, and
/// the handle becomes stale. NULL, a forged pointer, a device the caller holds no reference to
/// (e.g. from swiftvfio_file_device()), a put too many or a put after release WARNs and does
/// nothing.
/// Kernel: vfio_put_device()
@c public func vfio_put_device(_ device: UnsafeMutablePointer<vfio_device>?) {
    quietCall("vfio_put_device", ()) { sub throws(CallError) in
        let d = try DefaultSubsystem.shared.handles.put(tokenOf(device), .vfioDevice, as: VFIODevice.self, sub: sub,
                                             fn: "vfio_put_device", retireAtZero: false)
        d.put()
    }
}

/// Registers a physical device behind an IOMMU: its bus device must be in an IOMMU group
/// (iommu_group_add_device()); the VFIO group /dev/vfio/<id> appears with the first device of
/// that IOMMU group. The registration holds a device reference until unregistration. Returns 0,
/// or -errno: -EINVAL (bind_iommufd without unbind_iommufd/attach_ioas, which also WARNs; no
/// cache coherency; registered twice; a bad handle, with a WARN), -ENODEV/-EINVAL (no IOMMU group;
/// no-IOMMU mode off), -ENOMEM/-ENOSPC.
/// Kernel: vfio_register_group_dev()
@c public func vfio_register_group_dev(_ device: UnsafeMutablePointer<vfio_device>?) -> CInt {
    kernelCall("vfio_register_group_dev") { sub throws(CallError) in
        let d = try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "vfio_register_group_dev")
        try model("registering \(d)") { () throws(Errno) in try sub.registerGroupDevice(d) }
        return 0
    }
}

/// Registers an mdev-style device with no IOMMU of its own: it gets a fresh fake IOMMU group and
/// node /dev/vfio/<N> (the smallest free IOMMU group id). Returns 0 or -errno as
/// vfio_register_group_dev().
/// Kernel: vfio_register_emulated_iommu_dev()
@c public func vfio_register_emulated_iommu_dev(_ device: UnsafeMutablePointer<vfio_device>?) -> CInt {
    kernelCall("vfio_register_emulated_iommu_dev") { sub throws(CallError) in
        let d = try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "vfio_register_emulated_iommu_dev")
        try model("registering \(d)") { () throws(Errno) in try sub.registerEmulatedIOMMUDevice(d) }
        return 0
    }
}

/// Unregisters a device: new opens fail at once; then blocks until every fd of the device is
/// closed, calling the driver's request op with count 0, 1, 2, ... before each wait (one wait is
/// 10 seconds, the kernel's interval; it never times out), then removes the device and, with the
/// last device, its VFIO group, and drops the registration's reference. Must not be called from
/// the device's own callbacks. A device that is not registered, NULL or a bad handle WARNs and
/// does nothing.
/// Kernel: vfio_unregister_group_dev()
@c public func vfio_unregister_group_dev(_ device: UnsafeMutablePointer<vfio_device>?) {
    quietCall("vfio_unregister_group_dev", ()) { sub throws(CallError) in
        sub.unregisterGroupDevice(try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "vfio_unregister_group_dev"))
    }
}

// MARK: - what ops may ask about their device

/// Returns the driver data given to swiftvfio_alloc_device() (or set since), for the driver's
/// ops to reach their own state (the kernel's container_of()). NULL, with a WARN, for a bad
/// handle; valid inside the release op too.
@c public func swiftvfio_device_drvdata(_ device: UnsafeMutablePointer<vfio_device>?) -> UnsafeMutableRawPointer? {
    quietCall("swiftvfio_device_drvdata", nil) { sub throws(CallError) in
        try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "swiftvfio_device_drvdata").driverData
    }
}

/// Replaces the driver data of `device`. A bad handle WARNs and does nothing.
@c public func swiftvfio_device_set_drvdata(_ device: UnsafeMutablePointer<vfio_device>?, _ drvdata: UnsafeMutableRawPointer?) {
    quietCall("swiftvfio_device_set_drvdata", ()) { sub throws(CallError) in
        try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "swiftvfio_device_set_drvdata").driverData = drvdata
    }
}

/// Returns the `struct kvm *` the device was opened with (the kernel's `vdev->kvm`): the pointer
/// the group held (vfio_file_set_kvm()) at the device's first open, if the VM's
/// kvm_get_kvm_safe() granted a reference; NULL otherwise, and after the last close. Reading it
/// in open_device/close_device is what drivers that need KVM do. NULL with a WARN for a bad
/// handle. No reference is transferred.
@c public func swiftvfio_device_kvm(_ device: UnsafeMutablePointer<vfio_device>?) -> UnsafeMutablePointer<kvm>? {
    quietCall("swiftvfio_device_kvm", nil) { sub throws(CallError) in
        let d = try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "swiftvfio_device_kvm")
        let p = CallbackDevice.isCurrent(d) ? d.kvmPointerInCallback : d.kvmPointer
        return p?.assumingMemoryBound(to: kvm.self)
    }
}

/// Returns the name of the device's bus device (the kernel's dev_name(vdev->dev), e.g.
/// "0000:06:0d.0"), the default VFIO_GROUP_GET_DEVICE_FD key. The string stays valid while the
/// handle does. NULL with a WARN for a bad handle.
@c public func swiftvfio_device_name(_ device: UnsafeMutablePointer<vfio_device>?) -> UnsafePointer<CChar>? {
    quietCall("swiftvfio_device_name", nil) { sub throws(CallError) in
        _ = try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "swiftvfio_device_name")
        return DefaultSubsystem.shared.handles.name(tokenOf(device))
    }
}

/// Returns how many times the device is open (`device->open_count`: 1 while any fd of it is
/// open through a group), or -EINVAL with a WARN for a bad handle.
@c public func swiftvfio_device_open_count(_ device: UnsafeMutablePointer<vfio_device>?) -> CInt {
    kernelCall("swiftvfio_device_open_count") { sub throws(CallError) in
        let d = try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "swiftvfio_device_open_count")
        // open_count is guarded by the device set's lock, which the device's own open/close
        // callbacks run under: asking from there would deadlock.
        if CallbackDevice.isCurrent(d) { throw CallError(Errno(rawValue: 35), "called from the device's own open/close callback (EDEADLK)") }
        return cInt(d.openCount)
    }
}

// MARK: - iommufd helpers drivers point their ops at

/// The emulated-device bind_iommufd helper (mdev drivers set `.bind_iommufd` to it): binds to
/// `ictx` without claiming DMA ownership, holding a context reference, and stores the device
/// id in `*out_device_id`. Returns 0 or -errno (-EINVAL, with a WARN, for a bad handle; -EFAULT
/// for an unwritable `out_device_id`).
/// Kernel: vfio_iommufd_emulated_bind()
@c public func vfio_iommufd_emulated_bind(_ vdev: UnsafeMutablePointer<vfio_device>?, _ ictx: UnsafeMutablePointer<iommufd_ctx>?,
                                         _ out_device_id: UnsafeMutablePointer<UInt32>?) -> CInt {
    iommufdBind("vfio_iommufd_emulated_bind", vdev, ictx, out_device_id, VFIOIOMMUFDOps.emulatedBind)
}

/// The emulated-device unbind_iommufd helper: detaches and drops the context reference. A bad
/// handle WARNs and does nothing.
/// Kernel: vfio_iommufd_emulated_unbind()
@c public func vfio_iommufd_emulated_unbind(_ vdev: UnsafeMutablePointer<vfio_device>?) {
    quietCall("vfio_iommufd_emulated_unbind", ()) { sub throws(CallError) in
        VFIOIOMMUFDOps.emulatedUnbind(try DefaultSubsystem.shared.handles.vfioDevice(vdev, sub, "vfio_iommufd_emulated_unbind"))
    }
}

/// The emulated-device attach_ioas helper: an access on IOAS `*pt_id`. Returns 0 or -errno
/// (-ENOENT no such IOAS, -EINVAL not bound or a bad handle, -EFAULT unreadable `pt_id`).
/// Kernel: vfio_iommufd_emulated_attach_ioas()
@c public func vfio_iommufd_emulated_attach_ioas(_ vdev: UnsafeMutablePointer<vfio_device>?, _ pt_id: UnsafeMutablePointer<UInt32>?) -> CInt {
    iommufdAttach("vfio_iommufd_emulated_attach_ioas", vdev, pt_id, VFIOIOMMUFDOps.emulatedAttachIOAS)
}

/// The physical-device bind_iommufd helper (vfio-pci's): claims DMA ownership of the device for
/// `ictx` (-EPERM if a kernel driver or another owner holds the IOMMU group, -EBUSY on a domain
/// conflict, -EINVAL without cache coherency, -ENODEV without an IOMMU group) and stores the
/// device id in `*out_device_id`. Returns 0 or -errno.
/// Kernel: vfio_iommufd_physical_bind()
@c public func vfio_iommufd_physical_bind(_ vdev: UnsafeMutablePointer<vfio_device>?, _ ictx: UnsafeMutablePointer<iommufd_ctx>?,
                                         _ out_device_id: UnsafeMutablePointer<UInt32>?) -> CInt {
    iommufdBind("vfio_iommufd_physical_bind", vdev, ictx, out_device_id, VFIOIOMMUFDOps.physicalBind)
}

/// The physical-device unbind_iommufd helper: detaches, releases DMA ownership, drops the
/// context reference. A bad handle WARNs and does nothing.
/// Kernel: vfio_iommufd_physical_unbind()
@c public func vfio_iommufd_physical_unbind(_ vdev: UnsafeMutablePointer<vfio_device>?) {
    quietCall("vfio_iommufd_physical_unbind", ()) { sub throws(CallError) in
        VFIOIOMMUFDOps.physicalUnbind(try DefaultSubsystem.shared.handles.vfioDevice(vdev, sub, "vfio_iommufd_physical_unbind"))
    }
}

/// The physical-device attach_ioas helper: attaches to IOAS `*pt_id`. Returns 0 or -errno as
/// vfio_iommufd_emulated_attach_ioas().
/// Kernel: vfio_iommufd_physical_attach_ioas()
@c public func vfio_iommufd_physical_attach_ioas(_ vdev: UnsafeMutablePointer<vfio_device>?, _ pt_id: UnsafeMutablePointer<UInt32>?) -> CInt {
    iommufdAttach("vfio_iommufd_physical_attach_ioas", vdev, pt_id, VFIOIOMMUFDOps.physicalAttachIOAS)
}

private func iommufdBind(_ fn: StaticString, _ vdev: UnsafeMutablePointer<vfio_device>?, _ ictx: UnsafeMutablePointer<iommufd_ctx>?,
                         _ out: UnsafeMutablePointer<UInt32>?,
                         _ bind: @Sendable (VFIODevice, IOMMUFDContext) throws(Errno) -> UInt32) -> Int32 {
    kernelCall(fn) { sub throws(CallError) in
        guard out != nil else { throw CallError(.EFAULT, "out_device_id is NULL") }
        let d = try DefaultSubsystem.shared.handles.vfioDevice(vdev, sub, fn)
        let ctx = try DefaultSubsystem.shared.handles.iommufdContext(ictx, sub, fn)
        let id = try model("binding \(d)") { () throws(Errno) in try bind(d, ctx) }
        try writeOut(id, to: UnsafeMutableRawPointer(out), "out_device_id")
        return 0
    }
}

private func iommufdAttach(_ fn: StaticString, _ vdev: UnsafeMutablePointer<vfio_device>?, _ ptID: UnsafeMutablePointer<UInt32>?,
                           _ attach: @Sendable (VFIODevice, UInt32) throws(Errno) -> Void) -> Int32 {
    kernelCall(fn) { sub throws(CallError) in
        guard let ptID else { throw CallError(.EFAULT, "pt_id is NULL") }
        let d = try DefaultSubsystem.shared.handles.vfioDevice(vdev, sub, fn)
        let id = try model("pt_id is not readable") { () throws(Errno) in try UserMemory.read(UInt32.self, from: UInt(bitPattern: ptID)) }
        try model("attaching \(d) to IOAS \(id)") { () throws(Errno) in try attach(d, id) }
        return 0
    }
}

// MARK: - user memory for drivers

/// Copies `n` bytes from the driver's buffer `from` to the client's buffer `to` (a read op's
/// `buf`), guarded: a bad client pointer is reported, never a crash. Returns the number of
/// bytes NOT copied (0 on success, `n` on a fault), as the kernel's copy_to_user().
@c public func swiftvfio_copy_to_user(_ to: UnsafeMutableRawPointer?, _ from: UnsafeRawPointer?, _ n: CUnsignedLong) -> CUnsignedLong {
    guard n > 0 else { return 0 }
    guard let from, Int(exactly: n) != nil else { return n }
    do throws(Errno) {
        try UserMemory.copyOut(from, to: UInt(bitPattern: to), count: Int(n))
        return 0
    } catch {
        return n
    }
}

/// Copies `n` bytes from the client's buffer `from` (a write op's `buf`, an ioctl's argument) to
/// the driver's buffer `to`, guarded. Returns the number of bytes NOT copied (0 on success, `n` on
/// a fault), as the kernel's copy_from_user().
@c public func swiftvfio_copy_from_user(_ to: UnsafeMutableRawPointer?, _ from: UnsafeRawPointer?, _ n: CUnsignedLong) -> CUnsignedLong {
    guard n > 0 else { return 0 }
    guard let to, Int(exactly: n) != nil else { return n }
    do throws(Errno) {
        try UserMemory.copyIn(to, from: UInt(bitPattern: from), count: Int(n))
        return 0
    } catch {
        return n
    }
}
