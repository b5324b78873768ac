// SPDX-License-Identifier: Apache-2.0
// Interrupts of the PCI device model (v6.3 drivers/vfio/pci/vfio_pci_intrs.c): VFIO_DEVICE_SET_IRQS
// for INTx (mask/unmask/trigger), MSI/MSI-X, ERR and REQ on eventfds, and the device raising them.

import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension PCIDeviceModel {
    func disableIRQsLocked() {
        for fd in triggers.compactMap({ $0 }) { host.close(fd) }
        triggers = []
        if let fd = intxUnmaskFD { host.close(fd) }
        intxUnmaskFD = nil
        intxMasked = false
        intxPending = false
        irqType = .none
        setInterruptStatus(false)
    }

    private func setInterruptStatus(_ on: Bool) {
        let s = get16(PCIReg.status)
        put16(PCIReg.status, on ? s | PCIReg.statusInterrupt : s & ~PCIReg.statusInterrupt)
    }

    // MARK: SET_IRQS

    /// Kernel: vfio_pci_ioctl_set_irqs() → vfio_set_irqs_validate_and_prepare() →
    /// vfio_pci_set_irqs_ioctl().
    func setIRQs(_ arg: UInt) throws(Errno) -> Int {
        let hdr = try UserMemory.read(IRQSet.self, from: arg)
        let max = irqCount(hdr.index)
        // vfio_set_irqs_validate_and_prepare()
        // One check in the kernel; split here only so the reason names the part that failed.
        guard hdr.argsz >= 20 else { throw .EINVAL.because("argsz {} < minsz {}", hdr.argsz, 20) }
        guard hdr.index < VFIOPCI.numIRQs else {
            throw .EINVAL.because("IRQ index {} >= num_irqs {}", hdr.index, VFIOPCI.numIRQs)
        }
        guard hdr.count < UInt32.max - hdr.start else {
            throw .EINVAL.because("start {} + count {} overflows", hdr.start, hdr.count)
        }
        let known = VFIOPCI.setDataTypeMask | VFIOPCI.setActionTypeMask
        guard hdr.flags & ~known == 0 else { throw .EINVAL.because("unknown flags {x} (known {x})", hdr.flags, known) }
        guard hdr.start < max, hdr.start + hdr.count <= max else {
            throw .EINVAL.because("start {} count {} outside the {} vector(s) of this IRQ index", hdr.start, hdr.count, max)
        }
        let elementSize: Int
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone: elementSize = 0
        case VFIOPCI.setDataBool: elementSize = 1
        case VFIOPCI.setDataEventfd: elementSize = 4
        default:
            throw .EINVAL.because("flags {x}: data type not exactly one of NONE, BOOL, EVENTFD", hdr.flags)
        }
        var data: [UInt8] = []
        if elementSize > 0 {
            let size = Int(hdr.count) * elementSize
            guard Int(hdr.argsz) - 20 >= size else {
                throw .EINVAL.because("argsz {} < {} for {} element(s)", hdr.argsz, 20 + size, hdr.count)
            }
            data = [UInt8](repeating: 0, count: size)
            if size > 0 { data = try Self.copyIn(from: arg + 20, count: size) }
        }
        let action = hdr.flags & VFIOPCI.setActionTypeMask
        return try lock.withLock { () throws(Errno) -> Int in
            switch (hdr.index, action) {
            case (VFIOPCI.intxIRQ, VFIOPCI.setActionMask):
                try intxMask(hdr, data)
            case (VFIOPCI.intxIRQ, VFIOPCI.setActionUnmask):
                try intxUnmask(hdr, data)
            case (VFIOPCI.intxIRQ, VFIOPCI.setActionTrigger):
                try intxTrigger(hdr, data)
            case (VFIOPCI.msiIRQ, VFIOPCI.setActionMask), (VFIOPCI.msiIRQ, VFIOPCI.setActionUnmask),
                 (VFIOPCI.msixIRQ, VFIOPCI.setActionMask), (VFIOPCI.msixIRQ, VFIOPCI.setActionUnmask):
                break   // "XXX Need masking support exported": accepted, nothing done
            case (VFIOPCI.msiIRQ, VFIOPCI.setActionTrigger), (VFIOPCI.msixIRQ, VFIOPCI.setActionTrigger):
                try msiTrigger(hdr, data, type: hdr.index == VFIOPCI.msiIRQ ? .msi : .msix)
            case (VFIOPCI.errIRQ, VFIOPCI.setActionTrigger) where identity.pcie:
                try singleTrigger(&errTrigger, hdr, data)
            case (VFIOPCI.reqIRQ, VFIOPCI.setActionTrigger):
                try singleTrigger(&reqTrigger, hdr, data)
            default:
                throw .ENOTTY.because("IRQ index {} action {x}: not handled by vfio-pci", hdr.index, action)
            }
            return 0
        }
    }

    /// `copy_to_user` of a byte array.
    static func copyOut(_ bytes: [UInt8], to address: UInt) throws(Errno) {
        let failure: Errno? = bytes.withUnsafeBytes { b in
            do throws(Errno) { try UserMemory.copyOut(b.baseAddress!, to: address, count: b.count); return nil } catch { return error }
        }
        if let failure { throw failure }
    }

    /// `memdup_user` of `count` bytes.
    static func copyIn(from address: UInt, count: Int) throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let failure: Errno? = bytes.withUnsafeMutableBytes { b in
            do throws(Errno) { try UserMemory.copyIn(b.baseAddress!, from: address, count: b.count); return nil } catch { return error }
        }
        if let failure { throw failure }
        return bytes
    }

    private func bool(_ data: [UInt8], _ i: Int) -> Bool { data[i] != 0 }
    func fd(_ data: [UInt8], _ i: Int) -> Int32 {
        Int32(bitPattern: UInt32(data[4 * i]) | UInt32(data[4 * i + 1]) << 8 | UInt32(data[4 * i + 2]) << 16 | UInt32(data[4 * i + 3]) << 24)
    }

    /// Kernel: eventfd_ctx_fdget(): EBADF for a closed fd, EINVAL for one that is not an eventfd.
    /// The model keeps its own duplicate, as the kernel keeps a reference on the eventfd context.
    private func acquireEventfd(_ fd: Int32) throws(Errno) -> Int32 {
        let isEventfd: Bool
        do throws(Errno) { isEventfd = try host.isEventfd(fd) } catch { throw .EBADF.because("fd {i} is not open", fd) }
        if !isEventfd { throw .EINVAL.because("fd {i} is not an eventfd", fd) }
        return try host.dup(fd)
    }

    /// Kernel: vfio_pci_set_intx_mask().
    private func intxMask(_ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        try requireINTxSingle(hdr)
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone: intxMasked = true
        case VFIOPCI.setDataBool: if bool(data, 0) { intxMasked = true }
        default: throw .ENOTTY.because("INTx MASK with EVENTFD data")   // "XXX implement me"
        }
    }

    /// Kernel: vfio_pci_set_intx_unmask(): unmasking with an interrupt still pending re-sends it
    /// (and stays masked, as the automasking handler would); DATA_EVENTFD arms an unmask eventfd
    /// (kept; the model does not watch it).
    private func intxUnmask(_ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        try requireINTxSingle(hdr)
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone: intxUnmaskLocked()
        case VFIOPCI.setDataBool: if bool(data, 0) { intxUnmaskLocked() }
        default:
            let f = fd(data, 0)
            if let old = intxUnmaskFD { host.close(old); intxUnmaskFD = nil }
            if f >= 0 { intxUnmaskFD = try acquireEventfd(f) }
        }
    }

    /// Kernel: the `!is_intx(vdev) || start != 0 || count != 1` check of the INTx mask and unmask
    /// handlers; the reason names the mode or the range that failed.
    private func requireINTxSingle(_ hdr: IRQSet) throws(Errno) {
        guard irqType == .intx else { throw modeMismatch(hdr) }
        guard hdr.start == 0, hdr.count == 1 else {
            throw .EINVAL.because("INTx: start {} count {} (must be 0 and 1)", hdr.start, hdr.count)
        }
    }

    /// EINVAL for an action that does not fit the interrupt mode the device is in; the reason
    /// names the action and the mode (the templates are static, hence one per pair).
    private func modeMismatch(_ hdr: IRQSet) -> Errno {
        let action = hdr.flags & VFIOPCI.setActionTypeMask
        switch (action, irqType) {
        case (VFIOPCI.setActionMask, .none): return .EINVAL.because("IRQ index {} MASK: no interrupt mode is enabled", hdr.index)
        case (VFIOPCI.setActionMask, .msi): return .EINVAL.because("IRQ index {} MASK: MSI is enabled", hdr.index)
        case (VFIOPCI.setActionMask, .msix): return .EINVAL.because("IRQ index {} MASK: MSI-X is enabled", hdr.index)
        case (VFIOPCI.setActionUnmask, .none): return .EINVAL.because("IRQ index {} UNMASK: no interrupt mode is enabled", hdr.index)
        case (VFIOPCI.setActionUnmask, .msi): return .EINVAL.because("IRQ index {} UNMASK: MSI is enabled", hdr.index)
        case (VFIOPCI.setActionUnmask, .msix): return .EINVAL.because("IRQ index {} UNMASK: MSI-X is enabled", hdr.index)
        case (_, .none): return .EINVAL.because("IRQ index {} TRIGGER: no interrupt mode is enabled", hdr.index)
        case (_, .intx): return .EINVAL.because("IRQ index {} TRIGGER: INTx is enabled", hdr.index)
        case (_, .msi): return .EINVAL.because("IRQ index {} TRIGGER: MSI is enabled", hdr.index)
        case (_, .msix): return .EINVAL.because("IRQ index {} TRIGGER: MSI-X is enabled", hdr.index)
        }
    }

    private func intxUnmaskLocked() {
        guard intxMasked else { return }
        if intxPending {
            intxPending = false
            signal(triggers.first ?? nil)
        } else {
            intxMasked = false
            setInterruptStatus(false)
        }
    }

    /// Kernel: vfio_pci_set_intx_trigger().
    private func intxTrigger(_ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        let dataType = hdr.flags & VFIOPCI.setDataTypeMask
        if irqType == .intx && hdr.count == 0 && dataType == VFIOPCI.setDataNone {
            disableIRQsLocked()
            return
        }
        guard irqType == .intx || irqType == .none else {
            throw modeMismatch(hdr)
        }
        guard hdr.start == 0, hdr.count == 1 else {
            throw .EINVAL.because("INTx: start {} count {} (must be 0 and 1)", hdr.start, hdr.count)
        }
        if dataType == VFIOPCI.setDataEventfd {
            let f = fd(data, 0)
            let enabling = irqType == .none
            if enabling {
                irqType = .intx
                triggers = [nil]
                intxMasked = false
            }
            // vfio_intx_set_signal(): the old trigger goes first; fd < 0 only disables.
            if let old = triggers[0] { host.close(old); triggers[0] = nil }
            if f < 0 { return }
            do throws(Errno) {
                triggers[0] = try acquireEventfd(f)
            } catch {
                if enabling { disableIRQsLocked() }
                throw error
            }
            return
        }
        guard irqType == .intx else { throw modeMismatch(hdr) }
        if dataType == VFIOPCI.setDataNone || bool(data, 0) { signal(triggers[0]) }
    }

    /// Kernel: vfio_pci_set_msi_trigger() with vfio_msi_enable() / vfio_msi_set_block().
    private func msiTrigger(_ hdr: IRQSet, _ data: [UInt8], type: IRQType) throws(Errno) {
        let dataType = hdr.flags & VFIOPCI.setDataTypeMask
        if irqType == type && hdr.count == 0 && dataType == VFIOPCI.setDataNone {
            disableIRQsLocked()
            return
        }
        guard irqType == type || irqType == .none else {
            throw modeMismatch(hdr)
        }
        let start = Int(hdr.start), count = Int(hdr.count)
        if dataType == VFIOPCI.setDataEventfd {
            let enabling = irqType == .none
            if enabling {
                guard count > 0 || start > 0 else {   // pci_alloc_irq_vectors(1, 0)
                    throw .EINVAL.because("enabling IRQ index {} with 0 vectors", hdr.index)
                }
                irqType = type
                triggers = Array(repeating: nil, count: start + count)
            }
            guard start < triggers.count, start + count <= triggers.count else {
                let enabled = triggers.count
                if enabling { disableIRQsLocked() }
                throw .EINVAL.because("start {} count {} outside the {} enabled vector(s)", start, count, enabled)
            }
            var j = start
            do throws(Errno) {
                while j < start + count {
                    if let old = triggers[j] { host.close(old); triggers[j] = nil }
                    let f = fd(data, j - start)
                    if f >= 0 { triggers[j] = try acquireEventfd(f) }
                    j += 1
                }
            } catch {
                // Unwind the vectors set by this call, then (on enable) the whole block.
                for k in start..<j { if let t = triggers[k] { host.close(t); triggers[k] = nil } }
                if enabling { disableIRQsLocked() }
                throw error
            }
            return
        }
        guard irqType == type else {
            throw modeMismatch(hdr)
        }
        guard start + count <= triggers.count else {
            throw .EINVAL.because("start {} count {} outside the {} enabled vector(s)", start, count, triggers.count)
        }
        for i in start..<(start + count) {
            guard let t = triggers[i] else { continue }
            if dataType == VFIOPCI.setDataNone || bool(data, i - start) { signal(t) }
        }
    }

    /// Kernel: vfio_pci_set_ctx_trigger_single() for ERR and REQ.
    private func singleTrigger(_ slot: inout Int32?, _ hdr: IRQSet, _ data: [UInt8]) throws(Errno) {
        guard hdr.start == 0, hdr.count <= 1 else {
            throw .EINVAL.because("ERR/REQ: start {} count {} (must be 0 and at most 1)", hdr.start, hdr.count)
        }
        switch hdr.flags & VFIOPCI.setDataTypeMask {
        case VFIOPCI.setDataNone:
            if let t = slot {
                if hdr.count > 0 { signal(t) } else { host.close(t); slot = nil }
            }
        case VFIOPCI.setDataBool:
            guard hdr.count > 0 else { throw .EINVAL.because("ERR/REQ: count 0 with BOOL or EVENTFD data") }
            if bool(data, 0), let t = slot { signal(t) }
        default:
            guard hdr.count > 0 else { throw .EINVAL.because("ERR/REQ: count 0 with BOOL or EVENTFD data") }
            let f = fd(data, 0)
            if f == -1 {
                if let t = slot { host.close(t) }
                slot = nil
            } else if f >= 0 {
                let n = try acquireEventfd(f)
                if let t = slot { host.close(t) }
                slot = n
            }
        }
    }

    /// Signals `fd`; false when there is none or the host refused (the interrupt is lost).
    @discardableResult
    private func signal(_ fd: Int32?) -> Bool {
        guard let fd, host.eventfdSignal(fd) else { return false }
        interruptCount += 1
        return true
    }

    // MARK: The device's side

    /// The device raises interrupt `vector` of IRQ index `index` (0 INTx, 1 MSI, 2 MSI-X, 3 ERR,
    /// 4 REQ), as its interrupt handler would relay it: INTx is automasked (a second one while
    /// masked stays pending until UNMASK), MSI/MSI-X vectors signal their eventfd. Returns whether an
    /// eventfd was signalled.
    @discardableResult
    public func raise(index: UInt32, vector: Int = 0) -> Bool {
        lock.withLock {
            switch index {
            case VFIOPCI.intxIRQ:
                guard irqType == .intx else { return false }
                // vfio_intx_handler(): with INTx disabled in the command register the line stays
                // quiet; an interrupt arriving while masked is held by the device.
                if intxMasked || get16(PCIReg.command) & PCIReg.commandIntxDisable != 0 {
                    intxPending = true
                    return false
                }
                intxMasked = true
                setInterruptStatus(true)
                guard let t = triggers.first ?? nil else { return false }
                return signal(t)
            case VFIOPCI.msiIRQ, VFIOPCI.msixIRQ:
                guard irqType == (index == VFIOPCI.msiIRQ ? .msi : .msix), vector >= 0, vector < triggers.count,
                      let t = triggers[vector] else { return false }
                return signal(t)
            case VFIOPCI.errIRQ:
                guard let t = errTrigger else { return false }
                return signal(t)
            case VFIOPCI.reqIRQ:
                guard let t = reqTrigger else { return false }
                return signal(t)
            default:
                return false
            }
        }
    }

    /// Kernel: vfio_pci_core_request(): relays the release request on the REQ eventfd; false when
    /// no channel is registered.
    func request() -> Bool { raise(index: VFIOPCI.reqIRQ) }
}
