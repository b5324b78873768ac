// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim

/// Opening and closing a device through its group: the group.c side of a device file (group.c
/// docs/ERRORS.md#device-open, 5.24-5.25). The device side (`vfio_device_open/close`, first open, KVM reference)
/// is vfio_main.c's, in Device/DeviceOpen.swift.
///
/// Lock order: `group->group_lock` → `dev_set->lock` → `group->kvm_ref_lock`.
extension VFIODevice {
    /// Kernel: vfio_device_open_file(): opens the device and wraps it in an anon-inode file
    /// "[vfio-device]" (O_RDWR, pread/pwrite capable). The caller's registration reference moves to
    /// the file.
    func openFile() throws(Errno) -> VFIOFile {
        let opened = try groupOpen()
        let file: VFIOFile
        do throws(Errno) {
            try subsystem.faults.check(.anonInodeFile)
            file = VFIOFile(subsystem: subsystem, kind: .device, flags: 0o2 /* O_RDWR */,
                            name: "[vfio-device]", positional: true,
                            operations: DeviceFile(device: self, iommufd: opened))
        } catch {
            groupClose()
            throw error
        }
        if group?.type == .noIOMMU {
            subsystem.log.warning("\(busDevice.name): vfio-noiommu device opened by user (\(currentTaskName()))")
        }
        return file
    }

    /// Kernel: vfio_device_group_open(). Returns the iommufd context the device was opened through
    /// (nil: the container), which the file records (docs/DECISIONS.md#q1).
    func groupOpen() throws(Errno) -> IOMMUFDContext? {
        guard let group else { throw .ENODEV.because("device has no group") }
        group.groupLock.lock()
        defer { group.groupLock.unlock() }
        guard group.hasIOMMU() else { throw .EINVAL.because("group {} has no container or iommufd set", group.iommuGroupID) }
        let devSet = self.devSet!
        devSet.lock.lock()
        defer { devSet.lock.unlock() }
        // Before the first device open, get the KVM pointer currently associated with the group
        // (if there is one) and obtain a reference now that will be held until the open_count
        // reaches 0 again. Preserves the v6.3 "latch at first open" rule.
        if openCountStorage == 0 { groupGetKVMSafe(group) }
        let ctx = group.iommufd
        do throws(Errno) {
            try open(iommufd: ctx)
        } catch {
            if openCountStorage == 0 { putKVM() }
            throw error
        }
        return ctx
    }

    /// Kernel: vfio_device_group_close(). The last close undoes what the first open recorded (docs/DECISIONS.md#q1).
    func groupClose() {
        guard let group else { return }
        group.groupLock.lock()
        let devSet = self.devSet!
        devSet.lock.lock()
        close()
        if openCountStorage == 0 { putKVM() }
        devSet.lock.unlock()
        group.groupLock.unlock()
    }

    /// Kernel: vfio_device_group_use_iommu(): the first open in container mode takes a container
    /// user and registers the device with the container. group_lock held.
    func groupUseIOMMU() throws(Errno) {
        guard let group else { throw .EINVAL.because("device has no group") }
        group.groupLock.assertHeld()
        guard let container = group.container else {
            subsystem.log.warnOn(true, "\(self): use_iommu with no container")
            throw .EINVAL.because("group {} has no container", group.iommuGroupID)
        }
        try group.useContainer()
        container.registerDevice(self)
    }

    /// Kernel: vfio_device_group_unuse_iommu(): undoes `groupUseIOMMU()`. group_lock held.
    func groupUnuseIOMMU() {
        guard let group else { return }
        group.groupLock.assertHeld()
        guard let container = group.container else {
            subsystem.log.warnOn(true, "\(self): unuse_iommu with no container")
            return
        }
        container.unregisterDevice(self)
        group.unuseContainer()
    }

    /// Kernel: vfio_device_has_container(): whether the device's group is attached to a legacy
    /// container. The kernel reads the pointer without a lock; the model takes group_lock for the
    /// read (a Swift reference cannot be read racily), which no caller can tell apart.
    var hasContainer: Bool {
        guard let group else { return false }
        return group.groupLock.withLock { group.container != nil }
    }

    /// Kernel: vfio_device_group_get_kvm_safe(): latch the group's KVM pointer with a reference.
    func groupGetKVMSafe(_ group: VFIOGroup) {
        group.kvmRefLock.withLock {
            if let kvm = group.kvm { getKVMSafe(kvm) }
        }
    }
}

/// "comm:pid" of the calling thread, for the no-IOMMU open warning.
func currentTaskName() -> String {
    var buf = [CChar](repeating: 0, count: 32)
    let n = svfio_comm(&buf, 32)
    let name = n > 0 ? String(decoding: buf[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    return "\(name):\(svfio_getpid())"
}
