// SPDX-License-Identifier: Apache-2.0
/// The group file's `unlocked_ioctl` and the four group ioctls (group.c).
extension VFIOGroup {
    /// Kernel: vfio_group_fops_unl_ioctl(): the group ioctl dispatcher. Unknown: ENOTTY (docs/DECISIONS.md#q4).
    func ioctl(_ file: VFIOFile, cmd: UInt32, arg: UInt) throws(Errno) -> Int {
        switch cmd {
        case VFIOIoctl.groupGetDeviceFD: return Int(try ioctlGetDeviceFD(arg: arg))
        case VFIOIoctl.groupGetStatus: try ioctlGetStatus(arg: arg); return 0
        case VFIOIoctl.groupSetContainer: try ioctlSetContainer(arg: arg); return 0
        case VFIOIoctl.groupUnsetContainer: try ioctlUnsetContainer(); return 0
        default: throw .ENOTTY.because("not a group request")
        }
    }

    /// Kernel: vfio_group_ioctl_get_status().
    func ioctlGetStatus(arg: UInt) throws(Errno) {
        var status = try UserMemory.read(VFIOGroupStatus.self, from: arg)
        guard status.argsz >= UInt32(MemoryLayout<VFIOGroupStatus>.size) else {
            throw .EINVAL.because("argsz {} < minsz {}", status.argsz, MemoryLayout<VFIOGroupStatus>.size)
        }
        // The flags are computed under group_lock and the error thrown after it: the common path
        // (every client's first call, and QEMU's on each group) is then straight-line code with
        // no throwing closure.
        groupLock.lock()
        let flags: UInt32? = iommuGroupRevoked ? nil
            : hasIOMMU() ? VFIOGroupFlags.containerSet | VFIOGroupFlags.viable
            : boundIOMMUGroup.dmaOwnerClaimed ? 0 : VFIOGroupFlags.viable
        groupLock.unlock()
        guard let flags else { throw .ENODEV.because("group {} was removed (its last device unregistered)", iommuGroupID) }
        status.flags = flags
        try UserMemory.write(status, to: arg)
    }

    /// Kernel: vfio_group_ioctl_set_container(). Precedence (docs/DECISIONS.md#q2): EFAULT, EBADF, EINVAL (already
    /// set, even when removed), ENODEV (removed), attach/compat errors, EBADFD.
    func ioctlSetContainer(arg: UInt) throws(Errno) {
        let fd = try UserMemory.read(Int32.self, from: arg)
        let target = try subsystem.fileForFD(fd)   // a temporary reference; EBADF
        defer { target?.put() }
        try groupLock.withLock { () throws(Errno) in
            if hasIOMMU() { throw .EINVAL.because("group {} already has a container or iommufd set", iommuGroupID) }
            guard iommuGroup != nil else { throw .ENODEV.because("group {} was removed (its last device unregistered)", iommuGroupID) }
            if let container = target?.container {
                try container.attachGroup(self)
                return
            }
            if let target, let ctx = subsystem.iommufdContext(from: target) {   // takes a ctx reference
                do throws(Errno) {
                    if subsystem.config.vfioNoIOMMU && type == .noIOMMU {
                        try ctx.compatSetNoIOMMU()
                    } else {
                        try ctx.compatIOASCreate()
                    }
                } catch {
                    ctx.put()
                    throw error
                }
                iommufd = ctx
                return
            }
            // The file is neither a container nor an iommufd.
            throw .EBADFD.because("fd {i} is neither a container nor an iommufd", fd)
        }
    }

    /// Kernel: vfio_group_ioctl_unset_container(). In iommufd mode there is no open-device check
    /// (v6.3; the device files remember their context, docs/DECISIONS.md#q1).
    func ioctlUnsetContainer() throws(Errno) {
        try groupLock.withLock { () throws(Errno) in
            guard hasIOMMU() else { throw .EINVAL.because("group {} has no container or iommufd set", iommuGroupID) }
            if container != nil {
                guard containerUsers == 1 else {
                    throw .EBUSY.because("group {}: {} device file(s) still open (container_users {})", iommuGroupID, containerUsers - 1, containerUsers)
                }
                detachContainer()
            }
            if let ctx = iommufd {
                ctx.put()
                iommufd = nil
            }
        }
    }

    /// Kernel: vfio_group_ioctl_get_device_fd(). Precedence (docs/DECISIONS.md#q3): name copy (EFAULT, EINVAL, ENOMEM),
    /// lookup (ENODEV or the match op's error), fd reservation (EMFILE), open (EINVAL no container,
    /// first-open errors), anon file (ENFILE/ENOMEM).
    func ioctlGetDeviceFD(arg: UInt) throws(Errno) -> Int32 {
        try subsystem.faults.check(.nameCopy)
        let name = try UserMemory.string(at: arg, limit: 4096)
        let device = try deviceFromName(name)          // holds a registration reference
        let fd: Int32
        do throws(Errno) {
            fd = try subsystem.fdTable.reserve(cloexec: true, name: "[vfio-device]")
        } catch {
            device.putRegistration()
            throw error
        }
        let file: VFIOFile
        do throws(Errno) {
            file = try device.openFile()               // the registration reference moves to the file
        } catch {
            subsystem.fdTable.unreserve(fd)
            device.putRegistration()
            throw error
        }
        subsystem.fdTable.install(fd, file)
        return fd
    }
}
