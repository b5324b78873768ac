// SPDX-License-Identifier: Apache-2.0
// Region reads and writes of the PCI device model (v6.3 drivers/vfio/pci/vfio_pci_rdwr.c):
// config space, BARs (memory decoding checked) and the ROM at `index << 40`.

import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension PCIDeviceModel {
    // MARK: read / write / mmap

    /// Kernel: vfio_pci_rw(): the region `offset >> 40` selects, at `offset & (1 << 40) - 1`.
    func rw(buffer: UInt, count: Int, offset: inout Int64, write: Bool) throws(Errno) -> Int {
        let index = VFIOPCI.index(of: offset)
        let pos = Int(offset & VFIOPCI.offsetMask)
        let done: Int
        switch index {
        case VFIOPCI.configRegion:
            done = try configRW(buffer: buffer, count: count, pos: pos, write: write)
        case VFIOPCI.romRegion:
            if write { throw .EINVAL.because("the ROM region is read-only") }
            done = try barRW(bar: index, buffer: buffer, count: count, pos: pos, write: false)
        case 0..<6:
            done = try barRW(bar: index, buffer: buffer, count: count, pos: pos, write: write)
        default:
            // VGA without VGA, and indexes past the last region
            throw .EINVAL.because("region index {} has nothing to read or write", index)
        }
        offset += Int64(done)
        return done
    }

    /// Kernel: vfio_pci_config_rw() / vfio_config_do_rw(): EFAULT outside the config space.
    private func configRW(buffer: UInt, count: Int, pos: Int, write: Bool) throws(Errno) -> Int {
        if count == 0 { return 0 }
        guard pos < configSize, count <= configSize - pos else {
            throw .EFAULT.because("config offset {x} count {} past the config space size {x}", pos, count, configSize)
        }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { (tmp) throws(Errno) -> Int in
            let p = tmp.baseAddress!
            if write {
                try UserMemory.copyIn(p, from: buffer, count: count)
                lock.withLock {
                    for i in 0..<count { writeConfigByte(pos + i, p[i]) }
                }
            } else {
                lock.withLock {
                    for i in 0..<count { p[i] = configByte(pos + i) }
                }
                try UserMemory.copyOut(p, to: buffer, count: count)
            }
            return count
        }
    }

    /// Kernel: vfio_pci_bar_rw() / vfio_pci_core_do_io_rw(): EINVAL for an absent BAR or a start
    /// past its end, the count clipped to the BAR, EIO while memory decoding is off (memory BARs
    /// and the ROM; an I/O BAR is not gated, as the kernel's test_mem is false for it), the MSI-X
    /// table excluded (reads as 0xff, writes dropped), a trapped BAR's accesses handed to the
    /// personality.
    private func barRW(bar: Int, buffer: UInt, count: Int, pos: Int, write: Bool) throws(Errno) -> Int {
        let end = bar == VFIOPCI.romRegion ? Int(identity.romSize) : Int(identity.barSize(bar))
        guard end > 0 else { throw .EINVAL.because("region index {} is an absent BAR or ROM", bar) }
        guard pos < end else { throw .EINVAL.because("offset {x} at or past the region's end {x}", pos, end) }
        let n = min(count, end - pos)
        if n == 0 { return 0 }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n) { (tmp) throws(Errno) -> Int in
            let p = tmp.baseAddress!
            if write { try UserMemory.copyIn(p, from: buffer, count: n) }
            try lock.withLock { () throws(Errno) in
                let isMemory = bar == VFIOPCI.romRegion || identity.barType(bar).isMemory
                if isMemory {
                    guard get16(PCIReg.command) & PCIReg.commandMemory != 0 else {
                        throw .EIO.because("memory decoding is off (command register {x})", get16(PCIReg.command))
                    }
                }
                if bar != VFIOPCI.romRegion && personality.traps(bar: bar) {
                    trappedRW(bar: bar, p, count: n, pos: pos, write: write)
                    return
                }
                let excluded: Range<Int> = {
                    guard let t = msixTable, t.bar == bar else { return 0..<0 }
                    return t.offset..<(t.offset + t.size)
                }()
                if bar == VFIOPCI.romRegion {
                    for i in 0..<n { p[i] = rom[pos + i] }
                    return
                }
                let mem = try barMemoryLocked(bar)
                let base = mem.base.assumingMemoryBound(to: UInt8.self)
                for i in 0..<n where !excluded.contains(pos + i) {
                    if write { base[pos + i] = p[i] } else { p[i] = base[pos + i] }
                }
                if !write { for i in 0..<n where excluded.contains(pos + i) { p[i] = 0xff } }
            }
            if !write { try UserMemory.copyOut(p, to: buffer, count: n) }
            return n
        }
    }

    /// A trapped BAR's bytes as register accesses, split the way vfio_pci_core_do_io_rw() splits
    /// a user's buffer: 4 bytes where 4-aligned and at least 4 remain, else 2 where 2-aligned,
    /// else 1. Called with the lock held.
    private func trappedRW(bar: Int, _ p: UnsafeMutablePointer<UInt8>, count: Int, pos: Int, write: Bool) {
        let msix = msixEnabled
        var done = 0
        while done < count {
            let at = pos + done, left = count - done
            let width = left >= 4 && at % 4 == 0 ? 4 : left >= 2 && at % 2 == 0 ? 2 : 1
            if write {
                var value: UInt32 = 0
                for i in 0..<width { value |= UInt32(p[done + i]) << (8 * UInt32(i)) }
                personality.write(bar: bar, offset: at, width: width, value: value, msixEnabled: msix)
            } else {
                let value = personality.read(bar: bar, offset: at, width: width, msixEnabled: msix)
                for i in 0..<width { p[done + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
            }
            done += width
        }
    }
}
