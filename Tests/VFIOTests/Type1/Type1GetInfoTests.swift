// SPDX-License-Identifier: Apache-2.0
// VFIO_IOMMU_GET_INFO: check order, the argsz growth protocol and the worked example byte for byte.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - GET_INFO

@Suite("type1: GET_INFO")
struct Type1GetInfoTests {
    @Test func checkOrder() {
        let c = T1Container()
        #expect(c.ioctlErrno(Type1UAPI.getInfo, kBogus) == .EFAULT)
        for argsz: UInt32 in [0, 8, 15] {
            let (e, buf) = c.info(argsz: argsz)
            #expect(e == .EINVAL)
            #expect(t1U64(buf, 8) == 0xAAAA_AAAA_AAAA_AAAA && t1U32(buf, 0) == argsz)   // nothing written
        }
    }

    @Test func argszGrowthProtocol() {
        let c = T1Container()
        // 16 <= A < 20: bytes 0-15 only.
        var (e, buf) = c.info(argsz: 16, flagsIn: 0xFFFF)
        #expect(e == nil)
        #expect(t1U32(buf, 0) == 116 && t1U32(buf, 4) == 3 && t1U64(buf, 8) == 0x4020_1000)
        #expect(t1U32(buf, 16) == 0xAAAA_AAAA)
        (e, buf) = c.info(argsz: 19)
        #expect(e == nil && t1U32(buf, 0) == 116 && t1U32(buf, 16) == 0xAAAA_AAAA)
        // 20 <= A < 24 + C: bytes 0-19, cap_offset 0, padding untouched, no chain.
        for a: UInt32 in [20, 24, 115] {
            (e, buf) = c.info(argsz: a)
            #expect(e == nil)
            #expect(t1U32(buf, 0) == 116 && t1U32(buf, 4) == 3 && t1U64(buf, 8) == 0x4020_1000 && t1U32(buf, 16) == 0)
            #expect(t1U32(buf, 20) == 0xAAAA_AAAA)
            #expect(t1U32(buf, 24) == 0xAAAA_AAAA)
        }
        // A >= 24 + C: argsz unchanged, chain written, nothing beyond it.
        (e, buf) = c.info(argsz: 200)
        #expect(e == nil && t1U32(buf, 0) == 200 && t1U32(buf, 16) == 24 && t1U32(buf, 20) == 0xAAAA_AAAA)
        #expect(buf[116..<200].allSatisfy { $0 == 0xAA })
    }

    @Test func workedExample() {
        let c = T1Container()
        // First call with argsz 24 as QEMU starts.
        var (e, buf) = c.info(argsz: 24)
        #expect(e == nil)
        #expect(t1U32(buf, 0) == 116 && t1U32(buf, 4) == 3 && t1U64(buf, 8) == 0x4020_1000 && t1U32(buf, 16) == 0)
        #expect(c.map(iova: 0, size: 0x10_0000) == nil)
        #expect(c.map(iova: 0x10_0000, size: 0x1000) == nil)
        (e, buf) = c.info(argsz: 116)
        #expect(e == nil)
        var want = [UInt8](repeating: 0, count: 116)
        func put<T: FixedWidthInteger>(_ v: T, _ off: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (k, b) in $0.enumerated() { want[off + k] = b } }
        }
        put(UInt32(116), 0); put(UInt32(3), 4); put(UInt64(0x4020_1000), 8); put(UInt32(24), 16)
        for k in 20..<24 { want[k] = 0xAA }                      // header padding never written
        put(UInt16(2), 24); put(UInt16(1), 26); put(UInt32(56), 28)      // MIGRATION
        put(UInt32(0), 32); put(UInt32(0), 36); put(UInt64(0x1000), 40); put(UInt64(0x1000_0000), 48)
        put(UInt16(3), 56); put(UInt16(1), 58); put(UInt32(68), 60)      // DMA_AVAIL
        put(UInt32(65533), 64)
        put(UInt16(1), 68); put(UInt16(1), 70); put(UInt32(0), 72)       // IOVA_RANGE
        put(UInt32(2), 76); put(UInt32(0), 80)
        put(UInt64(0), 84); put(UInt64(0xFEDF_FFFF), 92)
        put(UInt64(0xFEF0_0000), 100); put(UInt64(0xFFFF_FFFF_FFFF), 108)
        #expect(Array(buf[0..<116]) == want)
        #expect(buf[116] == 0xAA)
    }

    @Test func v1HasMigrationCapToo() {
        let c = T1Container(type: 1)
        let (e, buf) = c.info(argsz: 116)
        #expect(e == nil && t1U16(buf, 24) == 2 && t1U32(buf, 28) == 56 && t1U64(buf, 40) == 0x1000)
    }

    @Test func emulatedOnlyContainer() {
        let c = T1Container(groups: [.emulatedIOMMU])
        var (e, buf) = c.info(argsz: 24)
        #expect(e == nil && t1U32(buf, 0) == 68 && t1U64(buf, 8) == 0xFFFF_FFFF_FFFF_F000)
        (e, buf) = c.info(argsz: 68)
        #expect(e == nil && t1U32(buf, 16) == 24)
        #expect(t1U16(buf, 24) == 2 && t1U32(buf, 28) == 56 && t1U64(buf, 40) == 0x1000)
        #expect(t1U16(buf, 56) == 3 && t1U32(buf, 60) == 0 && t1U32(buf, 64) == 65535)
        #expect(buf[68] == 0xAA)
    }
}
