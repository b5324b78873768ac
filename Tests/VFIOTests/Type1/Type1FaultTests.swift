// SPDX-License-Identifier: Apache-2.0
// Type1 ioctls on faulting user memory (guard pages): EFAULT at every copy, nothing half-done.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

@Suite("type1: faulting user memory")
struct Type1FaultTests {
    @Test func getInfoChainCopyOutFaults() {
        // Step 6: header readable, the chain at +24 lands on the PROT_NONE page.
        let c = T1Container()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1InfoArg(argsz: 116))
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg) == .EFAULT)
        #expect(b.load(Type1InfoArg.self, at: arg) == Type1InfoArg(argsz: 116))   // header not written
        // The same buffer with argsz 24: no chain, header fits: success.
        let arg2 = b.place(Type1InfoArg(argsz: 24))
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg2) == nil)
        #expect(b.load(Type1InfoArg.self, at: arg2).argsz == 116)
        // A struct cut off inside its first 16 bytes: step 1.
        #expect(c.ioctlErrno(Type1UAPI.getInfo, b.edge - 12) == .EFAULT)
        // Only 16 bytes are read: a header ending at the edge after 16 bytes is fine for A < 20.
        let arg3 = b.edge - 16
        UnsafeMutableRawPointer(bitPattern: arg3)!.storeBytes(of: UInt32(16), as: UInt32.self)
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg3) == nil)
        #expect(b.load(UInt32.self, at: arg3) == 116)
    }

    @Test func getInfoHeaderCopyBackFaults() {
        // Step 7: a read-only buffer reads fine and cannot be written back.
        let c = T1Container()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1InfoArg(argsz: 24), endingBefore: 64)
        b.mem.protect(offset: 0, length: Int(kP), prot: PROT_READ)
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg) == .EFAULT)
    }

    @Test func mapStructCutOff() {
        let c = T1Container()
        let b = T1EdgeBuffer()
        #expect(c.ioctlErrno(Type1UAPI.mapDMA, b.edge - 16) == .EFAULT)
        // The vaddr in a PROT_NONE page: EFAULT at pin time.
        #expect(c.map(iova: 0, size: kP, vaddr: UInt64(b.edge)) == .EFAULT)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: b.mem.base) == .EFAULT)
        #expect(c.map(iova: 0, size: kP, vaddr: b.mem.base) == nil)
    }

    @Test func unmapBitmapDescriptorUnreadable() {
        // Step 4b precedes the lock, so tracking being off (step 8) does not matter.
        let c = T1Container()
        c.mapAB()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1DMAUnmapArg(argsz: 48, flags: 1, iova: 0x10000, size: 0x10000))
        #expect(c.ioctlErrno(Type1UAPI.unmapDMA, arg) == .EFAULT)
        // Without GET_DIRTY_BITMAP nothing beyond 24 bytes is read.
        let arg2 = b.place(Type1DMAUnmapArg(argsz: 48, flags: 0, iova: 0x10000, size: 0x10000))
        #expect(c.ioctlErrno(Type1UAPI.unmapDMA, arg2) == nil)
        #expect(b.load(Type1DMAUnmapArg.self, at: arg2).size == 0x10000)
        #expect(c.spans == [[0x20000, 0x10000]])
    }

    @Test func unmapCopyBackFaultAfterUnmapping() {
        // Step 11: the unmap has happened when the write-back faults.
        let c = T1Container()
        c.mapAB()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1DMAUnmapArg(iova: 0x10000, size: 0x10000), endingBefore: 64)
        b.mem.protect(offset: 0, length: Int(kP), prot: PROT_READ)
        #expect(c.ioctlErrno(Type1UAPI.unmapDMA, arg) == .EFAULT)
        #expect(c.spans == [[0x20000, 0x10000]])
        #expect(c.avail == 65534)
    }

    @Test func unmapBitmapFaultMidWalk() {
        // Word 0 writable, word 1 on the PROT_NONE page: the first mapping is removed, the second
        // faults and stays.
        let c = T1Container()
        #expect(c.map(iova: 0x10_0000, size: kP) == nil)
        #expect(c.map(iova: 0x10_0000 + 64 * kP, size: kP) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let b = T1EdgeBuffer()
        let data = b.edge - 8
        #expect(c.unmapBitmap(iova: 0x10_0000, size: 128 * kP, bitmap: Type1Bitmap(pgsize: kP, size: 16, data: UInt64(data)))
                == .failure(.EFAULT))
        #expect(b.load(UInt64.self, at: data) == 1)
        #expect(c.spans == [[0x10_0000 + 64 * kP, kP]])
        #expect(c.avail == 65534)
    }

    @Test func dirtyGetBitmapRangeUnreadable() {
        let c = T1Container()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1DirtyBitmapArg(argsz: 48, flags: Type1UAPI.dirtyFlagGetBitmap))
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, arg) == .EFAULT)
        // argsz < 48 answers before the read.
        let arg2 = b.place(Type1DirtyBitmapArg(argsz: 47, flags: Type1UAPI.dirtyFlagGetBitmap))
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, arg2) == .EINVAL)
        // START/STOP read only the 8-byte header.
        let arg3 = b.place(Type1DirtyBitmapArg(argsz: 48, flags: Type1UAPI.dirtyFlagStart))
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, arg3) == nil)
    }

    @Test func dirtyLeftoverReadFaults() {
        // A mapping off a word boundary reads the user's word first: unreadable ⇒ EFAULT.
        let c = T1Container()
        #expect(c.map(iova: 0x10_0000 + 4 * kP, size: kP) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let b = T1EdgeBuffer()
        #expect(c.getBitmap(iova: 0x10_0000, size: 64 * kP, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: UInt64(b.edge)))
                == .EFAULT)
    }
}
