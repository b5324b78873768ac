import CSwiftVFIOShim

/// Opening and closing a device through its group (group.c §5.5-5.8, 5.24-5.25; vfio_main.c §7.3).
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
                            privateData: DeviceFile(device: self, iommufd: opened))
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
    /// (nil: the container), which the file records (Q1).
    func groupOpen() throws(Errno) -> IOMMUFDContext? {
        guard let group else { throw .ENODEV }
        group.groupLock.lock()
        defer { group.groupLock.unlock() }
        guard group.hasIOMMU() else { throw .EINVAL }
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

    /// Kernel: vfio_device_group_close(). `opened` is what the file recorded at open (Q1 fix).
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

    /// Kernel: vfio_device_open(): open_count++, and on 0→1 the first-open work. dev_set->lock held.
    func open(iommufd ctx: IOMMUFDContext?) throws(Errno) {
        devSet!.lock.assertHeld()
        openCountStorage += 1
        if openCountStorage == 1 {
            do throws(Errno) {
                try firstOpen(iommufd: ctx)
            } catch {
                openCountStorage -= 1
                throw error
            }
        }
    }

    /// Kernel: vfio_device_first_open(): module ref, IOMMU attach (iommufd bind or container use),
    /// then `open_device`. Unwinds in reverse.
    private func firstOpen(iommufd ctx: IOMMUFDContext?) throws(Errno) {
        let module = ops.module
        do throws(Errno) { try subsystem.faults.check(.driverModuleGet) } catch { throw .ENODEV }
        if let module, !module.tryGet() { throw .ENODEV }
        do throws(Errno) {
            if let ctx {
                try iommufdBind(ctx)
            } else {
                try groupUseIOMMU()
            }
        } catch {
            module?.put()
            throw error
        }
        if let openDevice = ops.openDevice {
            do throws(Errno) {
                try openDevice(self)
            } catch {
                if let ctx { iommufdUnbind(ctx) } else { groupUnuseIOMMU() }
                module?.put()
                throw error
            }
        }
        openedThroughIOMMUFD = ctx
    }

    /// Kernel: vfio_device_close() with the 6.17 guard (Q9): a close at open_count 0 WARNs once
    /// and changes nothing. The last close undoes what the first open did (Q1: as recorded then).
    func close() {
        devSet!.lock.assertHeld()
        if subsystem.log.warnOnOnce(openCountStorage == 0, "\(self): close with open_count 0") { return }
        if openCountStorage == 1 {
            ops.closeDevice?(self)
            if let ctx = openedThroughIOMMUFD { iommufdUnbind(ctx) } else { groupUnuseIOMMU() }
            openedThroughIOMMUFD = nil
            ops.module?.put()
        }
        openCountStorage -= 1
    }

    /// Kernel: vfio_device_group_use_iommu(). group_lock held.
    private func groupUseIOMMU() throws(Errno) {
        guard let group else { throw .EINVAL }
        group.groupLock.assertHeld()
        guard let container = group.container else {
            subsystem.log.warnOn(true, "\(self): use_iommu with no container")
            throw .EINVAL
        }
        try group.useContainer()
        container.registerDevice(self)
    }

    /// Kernel: vfio_device_group_unuse_iommu(). group_lock held.
    private func groupUnuseIOMMU() {
        guard let group else { return }
        group.groupLock.assertHeld()
        guard let container = group.container else {
            subsystem.log.warnOn(true, "\(self): unuse_iommu with no container")
            return
        }
        container.unregisterDevice(self)
        group.unuseContainer()
    }

    /// Kernel: vfio_device_group_get_kvm_safe(): latch the group's KVM pointer with a reference.
    private func groupGetKVMSafe(_ group: VFIOGroup) {
        group.kvmRefLock.withLock {
            if let kvm = group.kvm { getKVMSafe(kvm) }
        }
    }

    /// Kernel: _vfio_device_get_kvm_safe(): resolve the KVM module's symbols (symbol_get), take a
    /// reference unless the VM is dying. Missing symbols: WARN, no reference (as the kernel).
    private func getKVMSafe(_ kvm: UnsafeMutableRawPointer) {
        guard subsystem.config.haveKVM else { return }
        guard let syms = subsystem.kvmSymbols() else {
            subsystem.log.warnOn(true, "kvm_put_kvm/kvm_get_kvm_safe not found")
            return
        }
        guard syms.getSafe(kvm) else { return }   // a dying VM: silently no reference
        self.kvm = kvm
        self.kvmPut = syms
        subsystem.census.kvmReferenceTaken()
    }

    /// Kernel: vfio_device_put_kvm().
    private func putKVM() {
        guard let kvm, let syms = kvmPut else { return }
        self.kvm = nil
        self.kvmPut = nil
        syms.put(kvm)
        subsystem.census.kvmReferenceDropped()
    }
}

/// The private data of a device file: the device and how it was opened (6.6's per-file record).
final class DeviceFile: @unchecked Sendable {
    let device: VFIODevice
    /// The iommufd context this file's open went through, or nil for the container.
    let iommufd: IOMMUFDContext?

    init(device: VFIODevice, iommufd: IOMMUFDContext?) {
        self.device = device
        self.iommufd = iommufd
    }
}

func currentTaskName() -> String {
    var buf = [CChar](repeating: 0, count: 32)
    let n = svfio_comm(&buf, 32)
    let name = n > 0 ? String(decoding: buf[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    return "\(name):\(svfio_getpid())"
}
