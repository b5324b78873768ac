// SPDX-License-Identifier: Apache-2.0
// Type1 groups: attach/detach/release (the backend's attach_group/detach_group/release ops).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - groups

@Suite("type1: groups attach/detach/release")
struct Type1GroupTests {
    @Test func duplicateAndEBUSYOrder() {
        let c = T1Container()
        let g = c.groups[0]
        #expect(t1Errno { () throws(Errno) in try c.backend.attachGroup(c.iommu, group: g, type: .iommu) } == .EINVAL)
        #expect(t1Errno { () throws(Errno) in try c.backend.attachGroup(c.iommu, group: g, type: .emulatedIOMMU) } == .EINVAL)
        c.mapAB()
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: 4) == .success(0x10000))
        // EBUSY precedes the duplicate check, and applies to emulated groups too.
        #expect(t1Errno { () throws(Errno) in try c.backend.attachGroup(c.iommu, group: g, type: .iommu) } == .EBUSY)
        #expect(c.attach(.emulatedIOMMU) == .EBUSY)
        #expect(c.attach(.iommu) == .EBUSY)
    }

    @Test func nestingAndNoIOMMU() {
        let c = T1Container(type: 6, groups: [])
        #expect(c.attach(.iommu) == .EINVAL)
        #expect(c.attach(.emulatedIOMMU) == nil)
        let d = T1Container(groups: [])
        #expect(d.attach(.noIOMMU) == .EIO)
        #expect(d.attach(.iommu) == nil)
    }

    @Test func lastIOMMUGroupLeavingDropsMappings() {
        let c = T1Container(groups: [.iommu, .iommu])
        c.mapAB()
        #expect(c.avail == 65533)
        c.detach(1)
        #expect(c.spans.count == 2)                  // another IOMMU-backed group remains
        #expect(c.iommu.iovaRanges == Type1DomainConfig.intelDefault.iovaRanges)
        c.detach(0)
        #expect(c.spans.isEmpty)
        #expect(c.avail == 65535)
    }

    @Test func emulatedEdgeCase() {
        let c = T1Container(groups: [.iommu, .emulatedIOMMU])
        c.mapAB()
        c.detach(0)
        // Kept but unpinned; IOVA list opens up, pgsize back to PAGE_MASK.
        #expect(c.spans.count == 2)
        #expect(c.iommu.mappings.allSatisfy { !$0.iommuMapped })
        #expect(c.iommu.iovaRanges == [Type1IOVARange(start: 0, end: .max)])
        #expect(c.iommu.pageSizeBitmap == 0xFFFF_FFFF_FFFF_F000)
        let (e, buf) = c.info(argsz: 200)
        #expect(e == nil && t1U16(buf, 68) == 1 && t1U32(buf, 76) == 1 && t1U64(buf, 84) == 0 && t1U64(buf, 92) == .max)
        #expect(t1U64(buf, 8) == 0xFFFF_FFFF_FFFF_F000)
        // A new IOMMU-backed group replays them.
        #expect(c.attach(.iommu) == nil)
        #expect(c.iommu.mappings.allSatisfy { $0.iommuMapped })
        #expect(c.iommu.iovaRanges == Type1DomainConfig.intelDefault.iovaRanges)
        // Last emulated group leaving with a domain: nothing removed.
        c.detach(0)
        #expect(c.spans.count == 2)
    }

    @Test func emulatedOnlyContainer() {
        let c = T1Container(groups: [.emulatedIOMMU])
        #expect(c.map(iova: 0x10000, size: kP) == nil)
        // No pinning: any aligned vaddr, any IOVA.
        #expect(c.map(iova: 0xFEE0_0000, size: kP, vaddr: 0) == nil)
        #expect(c.map(iova: 1 << 60, size: kP, vaddr: 0x1000) == nil)
        #expect(c.map(iova: 0x20000, size: kP, vaddr: 0x1000) == nil)
        // The first IOMMU-backed group: the MSI window overlaps a mapping (check 7).
        #expect(c.attach(.iommu) == .EINVAL)
        #expect(c.unmap(iova: 0xFEE0_0000, size: kP) == .success(kP))
        // Replay pinning: vaddr 0x1000 is not mapped (EFAULT); state unchanged.
        #expect(c.attach(.iommu) == .EFAULT)
        #expect(c.iommu.iommuGroupCount == 0 && c.iommu.pageSizeBitmap == 0xFFFF_FFFF_FFFF_F000)
        #expect(c.iommu.mappings.allSatisfy { !$0.iommuMapped })
        #expect(c.unmap(iova: 0x20000, size: kP) == .success(kP))
        #expect(c.map(iova: 0x20000, size: kP, vaddr: c.vaddr) == nil)
        // Replay: beyond the 48-bit aperture Intel's map op refuses (EFAULT).
        #expect(c.attach(.iommu) == .EFAULT)
        #expect(c.unmap(iova: 1 << 60, size: kP) == .success(kP))
        #expect(c.attach(.iommu) == nil)
        #expect(c.iommu.pageSizeBitmap == 0x4020_1000)
        #expect(c.iommu.mappings.allSatisfy { $0.iommuMapped })
    }

    @Test func lastEmulatedGroupLeavingDomainlessContainer() {
        let c = T1Container(groups: [.emulatedIOMMU, .emulatedIOMMU])
        #expect(c.map(iova: 0, size: kP, vaddr: 0) == nil)
        c.detach(1)
        #expect(c.spans.count == 1)
        c.detach(0)
        #expect(c.spans.isEmpty && c.avail == 65535)
    }

    @Test func emulatedOnlyMappingEndingAt2to64() {
        // Reachable only without a domain (empty iova_list). The kernel's wrapped end hides such a
        // mapping from every lookup that starts at it.
        let c = T1Container(groups: [.emulatedIOMMU])
        #expect(c.map(iova: 0 &- kP, size: kP, vaddr: 0) == nil)
        #expect(c.unmap(iova: 0 &- kP, size: kP) == .success(0))
        #expect(c.unmap(iova: 0, size: 0, flags: 2) == .success(0))   // first node: none
        #expect(c.map(iova: 0, size: kP, vaddr: 0) == nil)
        #expect(c.unmap(iova: 0, size: 0, flags: 2) == .success(2 * kP)) // reached by the walk
        #expect(c.spans.isEmpty)
    }

    @Test func releaseFreesEverything() {
        let c = T1Container()
        c.mapAB()
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        c.backend.release(c.iommu)
        #expect(c.spans.isEmpty && c.avail == 65535 && !c.iommu.isDirtyTracking)
        #expect(c.iommu.iommuGroupCount == 0 && c.iommu.iovaRanges.isEmpty)
    }

    @Test func concurrentMapsAreSerialised() async {
        let c = T1Container(limit: 1000)
        let backend = c.backend, iommu = c.iommu, vaddr = c.vaddr, ctx = c.ctx
        await withTaskGroup(of: Int.self) { group in
            for t in 0..<4 {
                group.addTask {
                    var ok = 0
                    for k in 0..<64 {
                        // Every task also tries the others' IOVAs: exactly one MAP per IOVA wins.
                        let iova = UInt64((k * 4 + (t + k) % 4)) * 0x1000
                        var m = Type1DMAMapArg(flags: kRW, vaddr: vaddr, iova: iova, size: 0x1000)
                        let r = withUnsafeMutableBytes(of: &m) { p -> Bool in
                            (try? backend.ioctl(iommu, cmd: Type1UAPI.mapDMA, arg: UInt(bitPattern: p.baseAddress), context: ctx)) != nil
                        }
                        if r { ok += 1 }
                        var m2 = Type1DMAMapArg(flags: kRW, vaddr: vaddr, iova: UInt64(k * 4 + t) * 0x1000, size: 0x1000)
                        if withUnsafeMutableBytes(of: &m2, { p in
                            (try? backend.ioctl(iommu, cmd: Type1UAPI.mapDMA, arg: UInt(bitPattern: p.baseAddress), context: ctx)) != nil
                        }) { ok += 1 }
                    }
                    return ok
                }
            }
            var total = 0
            for await n in group { total += n }
            #expect(total == 256)
        }
        #expect(c.iommu.mappings.count == 256)
        #expect(c.avail == 1000 - 256)
        let m = c.iommu.mappings
        #expect(zip(m, m.dropFirst()).allSatisfy { $0.iova + $0.size <= $1.iova })
    }
}
