// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOTypes
import VFIO

// The file kAPI group.c exports (docs/ERRORS.md#kapi), with the kernel's C signatures, and the counted file
// references a KVM-side consumer takes with swiftvfio_fget/swiftvfio_fput.

// MARK: - resolving handles

extension HandleTable {
    /// `body` on the file behind a `struct file *` (the fast path, under the table's lock; see
    /// `withLive`), or nil when `p` is not a live file handle (then `file(_:_:_:)` says why).
    @inline(__always)
    func withFile<R>(_ p: UnsafeMutablePointer<file>?, _ body: (VFIOFile) -> R) -> R? {
        withLive(tokenOf(p), .file, as: VFIOFile.self, type: fileType, alive: { $0.refCount > 0 }, body)
    }

    /// `body` on the VFIO device behind a `struct vfio_device *` (fast path), or nil.
    @inline(__always)
    func withVFIODevice<R>(_ p: UnsafeMutablePointer<vfio_device>?, _ body: (VFIODevice) -> R) -> R? {
        withLive(tokenOf(p), .vfioDevice, as: VFIODevice.self, type: vfioDeviceType, alive: { $0.refCount > 0 }, body)
    }

    /// The file behind a `struct file *` C holds a reference through.
    func file(_ p: UnsafeMutablePointer<file>?, _ sub: VFIOSubsystem, _ fn: StaticString) throws(CallError) -> VFIOFile {
        try resolve(tokenOf(p), .file, as: VFIOFile.self, sub: sub, fn: fn, errno: .EBADF) { $0.refCount > 0 }
    }

    /// The VFIO device behind a `struct vfio_device *`: alive (or running its release op).
    func vfioDevice(_ p: UnsafeMutablePointer<vfio_device>?, _ sub: VFIOSubsystem, _ fn: StaticString) throws(CallError) -> VFIODevice {
        try resolve(tokenOf(p), .vfioDevice, as: VFIODevice.self, sub: sub, fn: fn) { $0.refCount > 0 }
    }

    /// The token for `device`: a borrowed handle (valid while the device lives) unless the device
    /// already has one.
    func token(for device: VFIODevice) throws(CallError) -> UInt {
        try issue(device, kind: .vfioDevice, borrowed: true, name: device.busDevice.name)
    }

    /// The IOMMU group behind a `struct iommu_group *` C holds a reference through.
    func iommuGroup(_ p: UnsafeMutablePointer<iommu_group>?, _ sub: VFIOSubsystem, _ fn: StaticString) throws(CallError) -> IOMMUGroup {
        try resolve(tokenOf(p), .iommuGroup, as: IOMMUGroup.self, sub: sub, fn: fn) { $0.refCount > 0 }
    }

    /// The bus device behind a `struct device *`: still in the model.
    func busDevice(_ p: UnsafeMutablePointer<device>?, _ sub: VFIOSubsystem, _ fn: StaticString) throws(CallError) -> BusDevice {
        try resolve(tokenOf(p), .device, as: BusDevice.self, sub: sub, fn: fn) { sub.iommu.device(named: $0.name) === $0 }
    }

    /// The iommufd context behind a `struct iommufd_ctx *`.
    func iommufdContext(_ p: UnsafeMutablePointer<iommufd_ctx>?, _ sub: VFIOSubsystem, _ fn: StaticString) throws(CallError) -> IOMMUFDContext {
        try resolve(tokenOf(p), .iommufdCtx, as: IOMMUFDContext.self, sub: sub, fn: fn)
    }
}

// MARK: - the kernel's file kAPI

// handleFastPath: the three queries a KVM consumer makes on every ioctl of its VFIO device
// (vfio_file_is_group, vfio_file_has_dev, vfio_file_enforced_coherent) answer a live handle
// under the handle table's lock alone, outside the call bracket (DefaultSubsystem.with): the
// slot holds the file (and device) while the lock is held, a live file handle is a reference C
// holds, which makes a model replacement refuse (EBUSY), and a replacement retires handles under
// that same lock. So no model can go from under the answer. Anything else (NULL, stale, forged)
// takes the bracketed path, which WARNs in the model's log and says why.

/// Returns the IOMMU group of a VFIO group file, with a new reference the caller drops with
/// iommu_group_put(); NULL for any other file, and NULL unless the model is configured with
/// CONFIG_SPAPR_TCE_IOMMU (topology `"spapr_tce_iommu": true`): the kernel keeps this only for the
/// SPAPR KVM path. NULL too once the group's last device was unregistered.
/// A NULL, stale or forged `file` WARNs and returns NULL (message in swiftvfio_last_error()).
/// Kernel: vfio_file_iommu_group()
@c public func vfio_file_iommu_group(_ file: UnsafeMutablePointer<file>?) -> UnsafeMutablePointer<iommu_group>? {
    quietCall("vfio_file_iommu_group", nil) { sub throws(CallError) in
        let f = try DefaultSubsystem.shared.handles.file(file, sub, "vfio_file_iommu_group")
        guard let group = f.iommuGroup() else { return nil }
        do throws(CallError) {
            return try DefaultSubsystem.shared.handles.issue(group, kind: .iommuGroup, addRef: true).handle()
        } catch {
            group.put()
            throw error
        }
    }
}

/// Returns true if `file` is a VFIO group file (/dev/vfio/N), false for container, iommufd and
/// device files. A NULL, stale or forged `file` WARNs and returns false.
/// Kernel: vfio_file_is_group()
@c public func vfio_file_is_group(_ file: UnsafeMutablePointer<file>?) -> Bool {
    if let r = HandleTable.shared.withFile(file, { $0.isGroup }) { return r }   // see `handleFastPath`
    return fileQuerySlowPath(file, "vfio_file_is_group", \.isGroup)
}

/// The bracketed path of a file query whose fast path found no live handle: WARNs and says why
/// (out of line, so the fast path keeps a small frame).
@inline(never)
private func fileQuerySlowPath(_ file: UnsafeMutablePointer<file>?, _ fn: StaticString,
                               _ answer: (VFIOFile) -> Bool) -> Bool {
    quietCall(fn, false) { sub throws(CallError) in answer(try HandleTable.shared.file(file, sub, fn)) }
}

/// Returns whether DMA through the group `file` is cache coherent whatever the device asks:
/// false if any device registered in the group lacks IOMMU_CAP_ENFORCE_CACHE_COHERENCY (every
/// device of an emulated or no-IOMMU group lacks it), true for an empty group, and true for any
/// file that is not a group file (the kernel's answer). A NULL, stale or forged `file` WARNs and
/// returns false, the safe answer for a KVM consumer (assume non-coherent DMA).
/// Kernel: vfio_file_enforced_coherent()
@c public func vfio_file_enforced_coherent(_ file: UnsafeMutablePointer<file>?) -> Bool {
    // Takes no lock of the group's: may run under the table's lock. See `handleFastPath`.
    if let r = HandleTable.shared.withFile(file, { $0.enforcedCoherent }) { return r }
    return fileQuerySlowPath(file, "vfio_file_enforced_coherent", \.enforcedCoherent)
}

/// Stores `kvm` in the group of a VFIO group file (NULL clears it); ignored for other files. No
/// reference is taken on the VM: a device takes one (through the process's kvm_get_kvm_safe())
/// at its first open and drops it (kvm_put_kvm()) at its last close, so the pointer must be set
/// before VFIO_GROUP_GET_DEVICE_FD to reach a driver's open_device. Takes only the group's KVM
/// leaf lock, so it may be called with the consumer's own locks held.
/// A NULL, stale or forged `file` WARNs and does nothing.
/// Kernel: vfio_file_set_kvm()
@c public func vfio_file_set_kvm(_ file: UnsafeMutablePointer<file>?, _ kvm: UnsafeMutablePointer<kvm>?) {
    quietCall("vfio_file_set_kvm", ()) { sub throws(CallError) in
        let f = try DefaultSubsystem.shared.handles.file(file, sub, "vfio_file_set_kvm")
        f.setKVM(UnsafeMutableRawPointer(kvm))
        traceSetKVM(sub, f, UnsafeMutableRawPointer(kvm))
    }
}

/// Returns true if `device` belongs to the group of the VFIO group file `file` (proof of
/// ownership for a PCI hot reset); false for other files. A NULL, stale or forged handle WARNs
/// and returns false.
/// Kernel: vfio_file_has_dev()
@c public func vfio_file_has_dev(_ file: UnsafeMutablePointer<file>?, _ device: UnsafeMutablePointer<vfio_device>?) -> Bool {
    // See `handleFastPath`.
    let handles = HandleTable.shared
    if let r = handles.withLivePair(tokenOf(file), .file, as: VFIOFile.self, type: handles.fileType, alive: { $0.refCount > 0 },
                                    tokenOf(device), .vfioDevice, as: VFIODevice.self, type: handles.vfioDeviceType,
                                    alive: { $0.refCount > 0 }, { f, d in f.hasDevice(d) }) { return r }
    return hasDevSlowPath(file, device)
}

/// vfio_file_has_dev's bracketed path (out of line, as `fileQuerySlowPath`).
@inline(never)
private func hasDevSlowPath(_ file: UnsafeMutablePointer<file>?, _ device: UnsafeMutablePointer<vfio_device>?) -> Bool {
    quietCall("vfio_file_has_dev", false) { sub throws(CallError) in
        let f = try DefaultSubsystem.shared.handles.file(file, sub, "vfio_file_has_dev")
        let d = try DefaultSubsystem.shared.handles.vfioDevice(device, sub, "vfio_file_has_dev")
        return f.hasDevice(d)
    }
}

// MARK: - counted file references

/// Takes a counted reference to the file behind model fd `fd` (the kernel's fget()): the same
/// `struct file *` for every fd of one file (dup()ed fds included) while C holds a reference.
/// The caller owns the reference and drops it with swiftvfio_fput(); the file stays open (its
/// release waits) while it is held, even after close(fd).
/// Returns NULL with errno EBADF when `fd` is not a model fd (no WARN: a bad number is not a bad
/// handle), ENOMEM when the handle table is full.
@c public func swiftvfio_fget(_ fd: CInt) -> UnsafeMutablePointer<file>? {
    quietCall("swiftvfio_fget", nil, setErrno: true) { sub throws(CallError) in
        let f = try model("fd \(fd) is not a model fd") { () throws(Errno) in try sub.fget(fd) }
        do throws(CallError) {
            return try DefaultSubsystem.shared.handles.issue(f, kind: .file, addRef: true).handle()
        } catch {
            sub.fput(f)
            throw error
        }
    }
}

/// Drops one reference taken with swiftvfio_fget() (the kernel's fput()); the last reference of
/// a file runs its release (a group file's release detaches its container) before this returns.
/// The kernel defers that release to the return to user space; here it runs inside this call, so
/// do not drop what may be a file's last reference while holding a lock that a driver's
/// open_device/close_device takes (the release may wait for the group's lock held around them).
/// NULL, a forged pointer, a put too many or a put after the last put WARNs and does nothing.
@c public func swiftvfio_fput(_ file: UnsafeMutablePointer<file>?) {
    quietCall("swiftvfio_fput", ()) { sub throws(CallError) in
        let f = try DefaultSubsystem.shared.handles.put(tokenOf(file), .file, as: VFIOFile.self, sub: sub, fn: "swiftvfio_fput",
                                             retireAtZero: true)
        sub.fput(f)
    }
}

/// Returns the VFIO device behind a device file (from VFIO_GROUP_GET_DEVICE_FD), or NULL for any
/// other file. The pointer is borrowed: it stays valid while the caller holds its reference on
/// `file` (the device file keeps the device registered); no put. Useful with vfio_file_has_dev().
/// A NULL, stale or forged `file` WARNs and returns NULL (errno EBADF).
@c public func swiftvfio_file_device(_ file: UnsafeMutablePointer<file>?) -> UnsafeMutablePointer<vfio_device>? {
    quietCall("swiftvfio_file_device", nil, setErrno: true) { sub throws(CallError) in
        let f = try DefaultSubsystem.shared.handles.file(file, sub, "swiftvfio_file_device")
        guard let d = f.device else { return nil }
        return try DefaultSubsystem.shared.handles.token(for: d).handle()
    }
}

// MARK: - IOMMU groups

/// Returns the id of an IOMMU group (/sys/kernel/iommu_groups/<id>), or -EINVAL (with a WARN)
/// for a NULL, stale or forged `group`.
/// Kernel: iommu_group_id()
@c public func iommu_group_id(_ group: UnsafeMutablePointer<iommu_group>?) -> CInt {
    kernelCall("iommu_group_id") { sub throws(CallError) in
        cInt(try DefaultSubsystem.shared.handles.iommuGroup(group, sub, "iommu_group_id").id)
    }
}

/// Drops a reference to an IOMMU group (from vfio_file_iommu_group(), iommu_group_get() or
/// swiftvfio_iommu_group_alloc()); the last one frees the group's id. NULL is ignored, as in the
/// kernel. A forged pointer, a put too many or a put after the last put WARNs and does nothing.
/// Kernel: iommu_group_put()
@c public func iommu_group_put(_ group: UnsafeMutablePointer<iommu_group>?) {
    guard group != nil else { return }
    quietCall("iommu_group_put", ()) { sub throws(CallError) in
        let g = try DefaultSubsystem.shared.handles.put(tokenOf(group), .iommuGroup, as: IOMMUGroup.self, sub: sub,
                                             fn: "iommu_group_put", retireAtZero: true)
        g.put()
    }
}
