// SPDX-License-Identifier: Apache-2.0
// VFIO_IOMMU_MAP_DMA: every check-order step with its exact errno, pinning, VADDR updates.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - MAP_DMA

@Suite("type1: MAP_DMA")
struct Type1MapTests {
    @Test func steps1to4() {
        let c = T1Container()
        #expect(c.ioctlErrno(Type1UAPI.mapDMA, kBogus) == .EFAULT)                       // 1
        #expect(c.map(iova: 0, size: kP, argsz: 31) == .EINVAL)                          // 2
        #expect(c.map(iova: 0, size: kP, argsz: 0) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: kRW | 8) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: 0x8000_0000) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: 0) == .EINVAL)                           // 4
        #expect(c.map(iova: 0, size: kP, flags: kVADDR | kR) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: kVADDR | kW) == .EINVAL)
        // Step 2 and 4 precede the alignment checks of step 5.
        #expect(c.map(iova: 1, size: 0, flags: 0) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, argsz: 64) == nil)                              // larger argsz fine
        #expect(c.avail == 65534)
    }

    @Test func step5Alignment() {
        let c = T1Container()
        #expect(c.map(iova: 0, size: 0) == .EINVAL)
        #expect(c.map(iova: 0, size: 0x800) == .EINVAL)
        #expect(c.map(iova: 0x800, size: kP) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, vaddr: c.vaddr + 0x800) == .EINVAL)
        #expect(c.map(iova: 0, size: 0x1800) == .EINVAL)
        // READ-only and WRITE-only are both legal.
        #expect(c.map(iova: 0, size: kP, flags: kR) == nil)
        #expect(c.map(iova: kP, size: kP, flags: kW) == nil)
        #expect(c.iommu.mappings.map { [$0.read, $0.write] } == [[true, false], [false, true]])
    }

    @Test func step6Wrap() {
        let c = T1Container(limit: 1)
        #expect(c.map(iova: 0, size: kP) == nil)     // exhaust dma_avail
        // Wrapping IOVA or vaddr: EINVAL even though dma_avail is 0 (step 6 precedes step 9).
        #expect(c.map(iova: 0 &- kP, size: 2 * kP) == .EINVAL)
        #expect(c.map(iova: 0x10_0000, size: 2 * kP, vaddr: 0 &- kP) == .EINVAL)
        // Ending exactly at 2^64 passes step 6: the next failing check is step 9.
        #expect(c.map(iova: 0 &- kP, size: kP) == .ENOSPC)
        #expect(c.map(iova: 0x10_0000, size: kP, vaddr: 0 &- kP) == .ENOSPC)
    }

    @Test func step8Overlap() {
        let c = T1Container()
        #expect(c.map(iova: 0x10000, size: 0x10000) == nil)
        for (iova, size) in [(0x10000, 0x10000), (0x10000, 0x1000), (0xF000, 0x2000), (0x1F000, 0x2000),
                             (0x8000, 0x20000), (0x18000, 0x1000)] as [(UInt64, UInt64)] {
            #expect(c.map(iova: iova, size: size) == .EEXIST, "[\(iova), +\(size))")
        }
        // Adjacent on both sides is fine.
        #expect(c.map(iova: 0xF000, size: 0x1000) == nil)
        #expect(c.map(iova: 0x20000, size: 0x1000) == nil)
        #expect(c.spans == [[0xF000, 0x1000], [0x10000, 0x10000], [0x20000, 0x1000]])
        // Never merged: three entries, three slots.
        #expect(c.avail == 65532)
    }

    @Test func step9ENOSPC() {
        let c = T1Container(limit: 2)
        #expect(c.map(iova: 0, size: kP) == nil)
        #expect(c.map(iova: kP, size: kP) == nil)
        #expect(c.map(iova: 2 * kP, size: kP) == .ENOSPC)
        // EEXIST (step 8) comes first; ENOSPC precedes the IOVA range check and pinning.
        #expect(c.map(iova: 0, size: kP) == .EEXIST)
        #expect(c.map(iova: 0xFEE0_0000, size: kP) == .ENOSPC)
        #expect(c.map(iova: 2 * kP, size: kP, vaddr: 0x1000) == .ENOSPC)
        // Unmapping gives the slot back.
        #expect(c.unmap(iova: 0, size: kP) == .success(kP))
        #expect(c.map(iova: 2 * kP, size: kP) == nil)
        #expect(c.avail == 0)
    }

    @Test func step10IOVARanges() {
        let c = T1Container()
        #expect(c.map(iova: 0xFEE0_0000, size: kP) == .EINVAL)
        #expect(c.map(iova: 0xFEEF_F000, size: kP) == .EINVAL)
        #expect(c.map(iova: 0xFEDF_F000, size: 2 * kP) == .EINVAL)       // runs into the MSI window
        #expect(c.map(iova: 0xFEEF_F000, size: 2 * kP) == .EINVAL)       // runs out of it
        #expect(c.map(iova: 0xFEDF_F000, size: 0x10_2000) == .EINVAL)   // spans the hole: two ranges
        #expect(c.map(iova: 0x1_0000_0000_0000, size: kP) == .EINVAL)    // beyond 48 bits
        #expect(c.map(iova: 0xFFFF_FFFF_F000, size: 2 * kP) == .EINVAL)
        #expect(c.map(iova: 0 &- kP, size: kP) == .EINVAL)                // ends at 2^64
        // Step 10 precedes pinning: a bad vaddr still gets EINVAL.
        #expect(c.map(iova: 0xFEE0_0000, size: kP, vaddr: 0x1000) == .EINVAL)
        // The edges of both ranges are valid.
        #expect(c.map(iova: 0xFEDF_F000, size: kP) == nil)
        #expect(c.map(iova: 0xFEF0_0000, size: kP) == nil)
        #expect(c.map(iova: 0xFFFF_FFFF_F000, size: kP) == nil)
        #expect(c.avail == 65532)
    }

    @Test func step12PinEFAULT() {
        let c = T1Container()
        #expect(c.map(iova: 0, size: kP, vaddr: 0x1000) == .EFAULT)              // no VMA
        let none = T1Mem(2 * Int(kP), prot: PROT_NONE)
        #expect(c.map(iova: 0, size: kP, vaddr: none.base, flags: kR) == .EFAULT)  // PROT_NONE
        let ro = T1Mem(2 * Int(kP), prot: PROT_READ)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: ro.base, flags: kRW) == .EFAULT)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: ro.base, flags: kW) == .EFAULT)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: ro.base, flags: kR) == nil)
        // A failed pin costs nothing.
        #expect(c.avail == 65534)
        #expect(c.spans == [[0, 2 * kP]])
        // The whole 2 MiB buffer in one request.
        #expect(c.map(iova: 0x40_0000, size: 0x20_0000, vaddr: c.vaddr) == nil)
    }

    @Test func step12AdjacentVMAs() {
        let c = T1Container()
        let m = T1Mem(4 * Int(kP))
        m.protect(offset: 2 * Int(kP), length: 2 * Int(kP), prot: PROT_READ)   // [rw rw][r r]
        #expect(c.map(iova: 0, size: 4 * kP, vaddr: m.base, flags: kR) == nil)
        #expect(c.map(iova: 0x10_0000, size: 4 * kP, vaddr: m.base, flags: kRW) == .EFAULT)
        #expect(c.map(iova: 0x10_0000, size: 3 * kP, vaddr: m.base, flags: kRW) == .EFAULT)
        #expect(c.map(iova: 0x10_0000, size: 2 * kP, vaddr: m.base, flags: kRW) == nil)
        m.protect(offset: Int(kP), length: Int(kP), prot: PROT_NONE)           // [rw -][r r]
        #expect(c.map(iova: 0x20_0000, size: 4 * kP, vaddr: m.base, flags: kR) == .EFAULT)
        #expect(c.map(iova: 0x20_0000, size: 2 * kP, vaddr: m.base + 2 * kP, flags: kR) == nil)
    }

    @Test func writeOnlyVMAFollowsGUP() {
        // check_vma_flags(): FOLL_WRITE needs VM_WRITE only; a plain read needs VM_READ.
        let c = T1Container()
        let wo = T1Mem(Int(kP), prot: PROT_WRITE)
        #expect(c.map(iova: 0, size: kP, vaddr: wo.base, flags: kR) == .EFAULT)
        #expect(c.map(iova: 0, size: kP, vaddr: wo.base, flags: kW) == nil)
    }

    @Test func kernelQueryAgreesWithMapsText() {
        // The pin check asks PROCMAP_QUERY (Linux 6.11) where the kernel has it, the maps text
        // elsewhere: both must give the same answer for live memory ([rw -][r r], and a hole).
        let m = T1Mem(4 * Int(kP))
        m.protect(offset: 2 * Int(kP), length: 2 * Int(kP), prot: PROT_READ)
        m.protect(offset: Int(kP), length: Int(kP), prot: PROT_NONE)
        let cases: [(UInt64, UInt64, Bool)] = [
            (m.base, kP, true), (m.base, 2 * kP, false), (m.base + 2 * kP, 2 * kP, false),
            (m.base + 2 * kP, 2 * kP, true), (m.base + 3 * kP, kP, false), (0x1000, kP, false),
        ]
        guard let maps = Type1ProcSelfMaps.readMaps() else { return }
        for (v, s, w) in cases {
            let byText = t1Errno { () throws(Errno) in try Type1ProcSelfMaps.check(maps: maps, vaddr: v, size: s, write: w) } == nil
            if let byQuery = Type1ProcSelfMaps.queryCovers(vaddr: v, size: s, write: w) {
                #expect(byQuery == byText, "vaddr \(v) size \(s) write \(w)")
            }
        }
    }

    @Test func procMapsCoverageRule() {
        let text = """
        00400000-00401000 r-xp 00000000 08:01 1234 /bin/x
        10000000-10002000 rw-p 00000000 00:00 0
        10002000-10003000 r--p 00000000 00:00 0
        10004000-10005000 rw-p 00000000 00:00 0
        20000000-20001000 -w-p 00000000 00:00 0
        30000000-30001000 rw-s 00000000 00:01 77 /secretmem (deleted)
        7ffd0000-7ffd1000 ---p 00000000 00:00 0
        ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
        """
        let maps = Array(text.utf8)
        func check(_ v: UInt64, _ s: UInt64, _ w: Bool) -> Errno? {
            t1Errno { () throws(Errno) in try Type1ProcSelfMaps.check(maps: maps, vaddr: v, size: s, write: w) }
        }
        #expect(check(0x1000_0000, 0x3000, false) == nil)
        #expect(check(0x1000_0000, 0x3000, true) == .EFAULT)
        #expect(check(0x1000_0000, 0x2000, true) == nil)
        #expect(check(0x1000_1000, 0x2000, false) == nil)
        #expect(check(0x1000_2000, 0x3000, false) == .EFAULT)     // hole at 0x10003000
        #expect(check(0x1000_3000, 0x1000, false) == .EFAULT)
        #expect(check(0x0FFF_F000, 0x2000, false) == .EFAULT)     // hole before
        #expect(check(0x1000_4000, 0x1000, true) == nil)
        #expect(check(0x1000_4000, 0x2000, true) == .EFAULT)      // runs past the last byte
        #expect(check(0x2000_0000, 0x1000, true) == nil)
        #expect(check(0x2000_0000, 0x1000, false) == .EFAULT)
        #expect(check(0x3000_0000, 0x1000, false) == .EFAULT)     // secretmem
        #expect(check(0x7FFD_0000, 0x1000, false) == .EFAULT)
        #expect(check(0x0040_0000, 0x1000, false) == nil)
        #expect(check(0xFFFF_FFFF_FF60_0000, 0x1000, false) == .EFAULT)
        #expect(check(0xFFFF_FFFF_FFFF_F000, 0x1000, false) == .EFAULT)
    }

    @Test func v1MapsTheSame() {
        let c = T1Container(type: 1)
        #expect(c.map(iova: 0x10000, size: 0x10000) == nil)
        #expect(c.map(iova: 0x18000, size: 0x10000) == .EEXIST)
        #expect(c.map(iova: 0xFEE0_0000, size: kP) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, vaddr: 0x1000) == .EFAULT)
    }

    @Test func vaddrUpdate() {
        let c = T1Container()
        #expect(c.map(iova: 0x10000, size: 0x10000) == nil)
        #expect(c.map(iova: 0x40000, size: 0x10000, vaddr: c.vaddr + 0x10000) == nil)
        // Nothing there: ENOENT.
        #expect(c.map(iova: 0x80000, size: 0x1000, flags: kVADDR) == .ENOENT)
        // Found but not invalidated: EINVAL.
        #expect(c.map(iova: 0x10000, size: 0x10000, flags: kVADDR) == .EINVAL)
        // Invalidate A.
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: Type1UAPI.unmapFlagVaddr) == .success(0x10000))
        #expect(c.iommu.mappings[0].vaddrInvalid)
        // Inexact requests: EINVAL.
        #expect(c.map(iova: 0x10000, size: 0x8000, flags: kVADDR) == .EINVAL)
        #expect(c.map(iova: 0x18000, size: 0x8000, flags: kVADDR) == .EINVAL)
        #expect(c.map(iova: 0x10000, size: 0x40000, flags: kVADDR) == .EINVAL)
        // Alignment and wrap still apply first.
        #expect(c.map(iova: 0x10000, size: 0x10000, vaddr: 0x800, flags: kVADDR) == .EINVAL)
        // While A is invalid, a new group cannot attach.
        #expect(c.attach(.iommu) == .EBUSY)
        // Exact: success. The new vaddr is neither pinned nor checked; avail and prot unchanged.
        let before = c.avail
        #expect(c.map(iova: 0x10000, size: 0x10000, vaddr: 0x1000_0000, flags: kVADDR) == nil)
        #expect(c.avail == before)
        let a = c.iommu.mappings[0]
        #expect(a.vaddr == 0x1000_0000 && !a.vaddrInvalid && a.read && a.write)
        #expect(c.attach(.iommu) == nil)
        // Valid again: a second update is EINVAL.
        #expect(c.map(iova: 0x10000, size: 0x10000, vaddr: c.vaddr, flags: kVADDR) == .EINVAL)
    }
}
