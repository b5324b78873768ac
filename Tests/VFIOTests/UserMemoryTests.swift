// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The guarded user-memory copies (usermem.c): what a copy leaves behind when the user range faults
/// part-way, and that faults anywhere in the range (a guard page, a non-canonical address) are
/// EFAULT. On x86-64 the two fixed-size copies are a `rep movsb` resumed by the fault handler.
@Suite struct UserMemoryTests {
    @Test func copiesEveryLengthExactly() {
        let m = Mapping.withGuardPage(usablePages: 2)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        for length in [1, 7, 8, 13, 64, page + 3] {
            for i in 0..<length { (m.base + i).storeBytes(of: UInt8(truncatingIfNeeded: i &* 7 &+ 1), as: UInt8.self) }
            var inBuffer = [UInt8](repeating: 0, count: length)
            #expect(inBuffer.withUnsafeMutableBytes { svfio_copy_from_user($0.baseAddress, m.address, length) } == 0)
            #expect(inBuffer == (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
            let out = [UInt8](repeating: 0x5a, count: length)
            #expect(out.withUnsafeBytes { svfio_copy_to_user(m.address + 1, $0.baseAddress, length) } == 0)
            #expect((0..<length).allSatisfy { m.base.load(fromByteOffset: 1 + $0, as: UInt8.self) == 0x5a })
        }
    }

    @Test func aFaultingCopyInLeavesNothingBehind() {
        // 8 readable bytes, then the guard page: EFAULT, and none of the 8 (nor the old contents)
        // is left in the destination, as the kernel's copy_from_user zeroes what it did not copy.
        let m = Mapping.withGuardPage()
        let start = m.guardAddress - 8
        UnsafeMutableRawPointer(bitPattern: start)!.storeBytes(of: UInt64.max, as: UInt64.self)
        var buffer = [UInt8](repeating: 0xaa, count: 16)
        #expect(buffer.withUnsafeMutableBytes { svfio_copy_from_user($0.baseAddress, start, 16) } == -EFAULT)
        #expect(buffer == [UInt8](repeating: 0, count: 16))
    }

    @Test func aFaultingCopyOutMayLeaveAPrefix() {
        let m = Mapping.withGuardPage()
        let start = m.guardAddress - 8
        let source = [UInt8](repeating: 0x77, count: 16)
        #expect(source.withUnsafeBytes { svfio_copy_to_user(start, $0.baseAddress, 16) } == -EFAULT)
        // The bytes before the guard page were written (as in the kernel), the process lives on.
        #expect(UnsafeRawPointer(bitPattern: start)!.load(as: UInt64.self) == 0x7777_7777_7777_7777)
    }

    @Test func unmappedAndNonCanonicalAddressesAreEFAULT() {
        let m = Mapping.withGuardPage()
        var buffer = [UInt8](repeating: 0, count: 8)
        // 1 << 50: below the user limit; non-canonical with 4-level paging (a #GP, reported with
        // no address), unmapped with 5-level paging (a page fault).
        for address in [m.guardAddress, UInt(1) << 50, UInt(1)] {
            #expect(buffer.withUnsafeMutableBytes { svfio_copy_from_user($0.baseAddress, address, 8) } == -EFAULT)
            #expect(buffer.withUnsafeBytes { svfio_copy_to_user(address, $0.baseAddress, 8) } == -EFAULT)
        }
        // Beyond the largest user address, or wrapping: refused before any access (access_ok).
        #expect(buffer.withUnsafeMutableBytes { svfio_copy_from_user($0.baseAddress, UInt.max - 3, 8) } == -EFAULT)
        #expect(buffer.withUnsafeBytes { svfio_copy_to_user(0xffff_8000_0000_0000, $0.baseAddress, 8) } == -EFAULT)
    }
}
