// SPDX-License-Identifier: Apache-2.0
/// A device's open count and its first-open / last-close work (vfio_main.c; docs/ERRORS.md#state-device). The group side
/// that calls them (vfio_device_group_open/close) is in Group/DeviceGroupOpen.swift.
extension VFIODevice {
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
        do throws(Errno) { try subsystem.faults.check(.driverModuleGet) } catch {
            throw .ENODEV.because("try_module_get() failed (fault injected)")
        }
        if let module, !module.tryGet() { throw .ENODEV.because("the driver module is unloading") }
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
                // The driver's code; a Swift driver that gave no reason gets the step named.
                throw error.reason == nil ? error.because("the driver's open_device failed") : error
            }
        }
        openedThroughIOMMUFD = ctx
    }

    /// Kernel: vfio_device_close() with the 6.17 guard (docs/DECISIONS.md#q9): a close at open_count 0 WARNs once
    /// and changes nothing. The last close undoes what the first open did (docs/DECISIONS.md#q1: as recorded then).
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

    /// Kernel: _vfio_device_get_kvm_safe(): resolve the KVM module's symbols (symbol_get), take a
    /// reference unless the VM is dying. Missing symbols: WARN, no reference (as the kernel).
    func getKVMSafe(_ kvm: UnsafeMutableRawPointer) {
        guard subsystem.config.haveKVM else { return }
        guard let syms = subsystem.kvmSymbols() else {
            subsystem.log.warnOn(true, "kvm_put_kvm/kvm_get_kvm_safe not found: \(busDevice.name) gets no VM reference "
                                 + "(define and export them in the program: link it with -rdynamic)")
            return
        }
        guard syms.getSafe(kvm) else { return }   // a dying VM: silently no reference
        self.kvm = kvm
        self.kvmPut = syms
        subsystem.census.kvmReferenceTaken()
    }

    /// Kernel: vfio_device_put_kvm().
    func putKVM() {
        guard let kvm, let syms = kvmPut else { return }
        self.kvm = nil
        self.kvmPut = nil
        syms.put(kvm)
        subsystem.census.kvmReferenceDropped()
    }
}
