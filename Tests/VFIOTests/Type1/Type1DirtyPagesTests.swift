// SPDX-License-Identifier: Apache-2.0
// VFIO_IOMMU_DIRTY_PAGES: START/STOP/GET_BITMAP check order and bitmap contents.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - DIRTY_PAGES

@Suite("type1: DIRTY_PAGES")
struct Type1DirtyPagesTests {
    @Test func v1IsEACCESBeforeAnything() {
        let c = T1Container(type: 1)
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, kBogus) == .EACCES)
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, 0) == .EACCES)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == .EACCES)
        #expect(c.dirty(0, argsz: 0) == .EACCES)
    }

    @Test func headerChecks() {
        let c = T1Container()
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, kBogus) == .EFAULT)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart, argsz: 7) == .EINVAL)
        #expect(c.dirty(8) == .EINVAL)
        #expect(c.dirty(1 | 8) == .EINVAL)
        #expect(c.dirty(0) == .EINVAL)
        #expect(c.dirty(1 | 2) == .EINVAL)
        #expect(c.dirty(1 | 4) == .EINVAL)
        #expect(c.dirty(2 | 4) == .EINVAL)
        #expect(!c.iommu.isDirtyTracking)
    }

    @Test func startStopIdempotent() {
        let c = T1Container()
        #expect(c.dirty(Type1UAPI.dirtyFlagStop) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        #expect(c.iommu.isDirtyTracking)
        #expect(c.dirty(Type1UAPI.dirtyFlagStop) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStop) == nil)
        #expect(!c.iommu.isDirtyTracking)
    }

    @Test func getBitmapCheckOrder() {
        let c = T1Container()
        c.mapAB()
        let w = T1Words(4)
        // 1: argsz < 48 before the range is read.
        var h = Type1DirtyBitmapArg(argsz: 47, flags: 4)
        #expect(t1WithArg(&h) { c.ioctlErrno(Type1UAPI.dirtyPages, $0) } == .EINVAL)
        // 3: wrap (ending at 2^64 counts).
        #expect(c.getBitmap(iova: 0 &- kP, size: kP, bitmap: w.bitmap()) == .EINVAL)
        // 4: access_ok.
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x7FFF_FFFF_FFF8)) == .EINVAL)
        // 5: verify_bitmap_size.
        #expect(c.getBitmap(iova: 0x10000, size: 0x800, bitmap: w.bitmap()) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 0, data: w.address)) == .EINVAL)
        #expect(c.getBitmap(iova: 0, size: 0x10_0000, bitmap: Type1Bitmap(pgsize: kP, size: 16, data: w.address)) == .EINVAL)
        #expect(c.getBitmap(iova: 0, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 0x1000_0008, data: w.address)) == .EINVAL)
        // 10: tracking off — even with a bitmap that would fault on write (EINVAL beats EFAULT).
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x100)) == .EINVAL)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        // 7-9: pgsize, iova and size alignment under the lock.
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: w.bitmap(pgsize: 0x2000)) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10800, size: 0x10000, bitmap: w.bitmap()) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10000, size: 0x1800, bitmap: w.bitmap()) == .EINVAL)
        // 11: splitting a mapping at either end.
        #expect(c.getBitmap(iova: 0x18000, size: 0x8000, bitmap: w.bitmap()) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10000, size: 0x18000, bitmap: w.bitmap()) == .EINVAL)
        // 12: write fault.
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x100)) == .EFAULT)
        // A range with no mapping writes nothing and succeeds.
        #expect(c.getBitmap(iova: 0x10_0000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x100)) == nil)
    }

    @Test func getBitmapContents() {
        let c = T1Container()
        #expect(c.map(iova: 0x10000, size: 0x2000) == nil)
        #expect(c.map(iova: 0x14000, size: 0x1000) == nil)
        #expect(c.map(iova: 0x10_0000, size: 0x1000) == nil)     // outside the query
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let w = T1Words(1)
        #expect(c.getBitmap(iova: 0x10000, size: 0x8000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0b1_0011)
        // Mappings stay and are reported again (vfio-pci groups dirty everything).
        w[0] = 0
        #expect(c.getBitmap(iova: 0x10000, size: 0x8000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0b1_0011)
        #expect(c.spans.count == 3)

        // copy_offset: a mapping starting 64 pages in lands in word 1, word 0 untouched.
        let c2 = T1Container()
        #expect(c2.map(iova: 64 * kP, size: 100 * kP) == nil)
        #expect(c2.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let w3 = T1Words(3, fill: 0x5555)
        #expect(c2.getBitmap(iova: 0, size: 192 * kP, bitmap: w3.bitmap()) == nil)
        #expect(w3[0] == 0x5555 && w3[1] == .max && w3[2] == (1 << 36) - 1)
    }

    @Test func step13AndStartLimitINTMAX() {
        // Emulated-only: no pinning, so huge mappings are cheap to make.
        let c = T1Container(groups: [.emulatedIOMMU])
        #expect(c.map(iova: 0, size: 1 << 43, vaddr: 0) == nil)               // 2^31 pages
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == .EINVAL)
        #expect(!c.iommu.isDirtyTracking)
        #expect(c.unmap(iova: 0, size: 1 << 43) == .success(1 << 43))
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        #expect(c.map(iova: 0, size: (1 << 43) + kP, vaddr: 0) == .EINVAL)     // step 13, removed again
        #expect(c.avail == 65535 && c.spans.isEmpty)
        #expect(c.map(iova: 0, size: (1 << 43) - kP, vaddr: 0) == nil)         // INT_MAX pages
        // No IOMMU-backed group: nothing pinned through a domain ⇒ nothing reported dirty.
        // The kernel still writes whole words, so a stale word is overwritten with zeros.
        let w = T1Words(1, fill: 0xFF)
        #expect(c.map(iova: 1 << 44, size: 2 * kP, vaddr: 0) == nil)
        #expect(c.getBitmap(iova: 1 << 44, size: 64 * kP, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0)
    }

    @Test func groupLeavingDuringTrackingMarksBitmapsFull() {
        let c = T1Container(groups: [.iommu, .emulatedIOMMU])
        #expect(c.map(iova: 0x10000, size: 0x2000) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        c.detach(0)                                   // the IOMMU-backed group leaves
        let w = T1Words(1)
        #expect(c.getBitmap(iova: 0x10000, size: 0x2000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0b11)                         // reported once…
        w[0] = 0
        #expect(c.getBitmap(iova: 0x10000, size: 0x2000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0)                            // …then cleared
    }
}
