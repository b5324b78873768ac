// SPDX-License-Identifier: Apache-2.0
/// The group char device's file operations (`vfio_group_fops`): open and release here, ioctl in
/// GroupIoctls.swift, and the opens of `/dev/vfio/<N>` that reach them.
extension VFIOGroup: FileOperations {
    /// Kernel: vfio_group_fops_open(). Checks in the kernel's order: ENODEV (removal race),
    /// EPERM (no-IOMMU without CAP_SYS_RAWIO), EBUSY (single open). `file` is the new file.
    func fopsOpen(_ file: VFIOFile) throws(Errno) {
        groupLock.lock()
        defer { groupLock.unlock() }
        // drivers == 0 is stable under group_lock once reached (docs/ERRORS.md#state-group).
        guard drivers.load(ordering: .acquiring) != 0 else { throw .ENODEV.because("group {} is being removed", iommuGroupID) }
        if type == .noIOMMU && !subsystem.capableSysRawIO() { throw .EPERM.because("no-IOMMU group {} needs CAP_SYS_RAWIO", iommuGroupID) }
        // Do we need multiple instances of the group open? Seems not (kernel comment).
        guard openedFile == nil else { throw .EBUSY.because("group {} is already open (one open file per group)", iommuGroupID) }
        openedFile = file
        deviceGet()   // the open cdev pins the group struct
    }

    /// Kernel: vfio_group_fops_release(): the last reference to the group file is gone.
    func release(_ file: VFIOFile) {
        groupLock.lock()
        // Device fds pin the group file in container mode, so with a container attached only
        // the group's own user remains.
        if container != nil {
            subsystem.log.warnOn(containerUsers != 1, "\(self) released with container_users \(containerUsers)")
            detachContainer()
        }
        if let ctx = iommufd {
            ctx.put()
            iommufd = nil   // d649c34cb916: without the reset a stale pointer was reused
        }
        openedFile = nil
        groupLock.unlock()
        devicePut()
    }
}

extension VFIOSubsystem {
    /// Opens the group char device with `minor` directly (a node opened by device number):
    /// ENXIO when no group holds the minor, ENODEV when its group is being removed.
    public func openGroupFile(minor: Int, flags: Int32 = 0o2) throws(Errno) -> VFIOFile {
        try TaskWork.syscall { () throws(Errno) -> VFIOFile in
            guard let group = groups.group(minor: minor) else { throw .ENXIO.because("no group holds minor {}", minor) }
            return try groupFileOpen(group, path: group.path, flags: flags)
        }
    }

    /// Opens the group behind an open group file again, as `open("/proc/self/fd/N")` does: the
    /// inode is the same even after removal, so a removed group answers ENODEV.
    public func reopen(_ file: VFIOFile, flags: Int32 = 0o2) throws(Errno) -> VFIOFile {
        try TaskWork.syscall { () throws(Errno) -> VFIOFile in
            guard let group = file.group, !file.isReleased else { throw .ENXIO.because("not an open group file") }
            return try groupFileOpen(group, path: file.name, flags: flags)
        }
    }

    /// The open of a `/dev/vfio/<N>` node: a new file whose operations are `group`'s, opened by
    /// `vfio_group_fops_open()`.
    func groupFileOpen(_ group: VFIOGroup, path: String, flags: Int32) throws(Errno) -> VFIOFile {
        try faults.check(.fileAlloc)
        let file = VFIOFile(subsystem: self, kind: .group, flags: flags, name: path, operations: group)
        do throws(Errno) {
            try group.fopsOpen(file)
        } catch {
            // A file whose open failed is freed without a release (fput of an unopened file).
            file.abandonUnopened()
            census.fileReleased()
            throw error
        }
        return file
    }
}
