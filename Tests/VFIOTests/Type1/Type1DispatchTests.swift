// SPDX-License-Identifier: Apache-2.0
// Type1 container open modes, ioctl dispatch and VFIO_CHECK_EXTENSION.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - open / dispatch / CHECK_EXTENSION

@Suite("type1: open, dispatch, CHECK_EXTENSION")
struct Type1DispatchTests {
    @Test func openModes() throws {
        let b = Type1Backend()
        #expect(b.name == "vfio-iommu-type1")
        #expect(!b.isNoIOMMU && !b.hasDeviceRegistration)
        let v1 = try #require(try b.open(arg: 1, context: t1Context()) as? Type1IOMMU)
        #expect(!v1.isV2 && !v1.isNesting)
        let v2 = try #require(try b.open(arg: 3, context: t1Context()) as? Type1IOMMU)
        #expect(v2.isV2 && !v2.isNesting)
        let nest = try #require(try b.open(arg: 6, context: t1Context()) as? Type1IOMMU)
        #expect(nest.isV2 && nest.isNesting)
        for bad: UInt in [0, 2, 4, 5, 7, 8, 9, 10, 11, 0x3B65, .max] {
            #expect(t1Errno { () throws(Errno) in _ = try b.open(arg: bad, context: t1Context()) } == .EINVAL, "open(\(bad))")
        }
        #expect(v2.availableDMAEntries == 65535)
        let small = try #require(try b.open(arg: 3, context: t1Context(limit: 7)) as? Type1IOMMU)
        #expect(small.availableDMAEntries == 7)
    }

    @Test func checkExtensionS0S1() {
        // No backend state: the container's polling question (docs/ERRORS.md#extension-ids, S0/S1 column).
        let b = Type1Backend()
        let expected: [UInt: Int] = [0: 0, 1: 1, 2: 0, 3: 1, 4: 0, 5: 0, 6: 1, 7: 0, 8: 0, 9: 1, 10: 0, 11: 0, 12: 0, 1000: 0]
        for (id, want) in expected {
            let got = try? b.ioctl(nil, cmd: Type1UAPI.checkExtension, arg: id, context: t1Context())
            #expect(got == want, "CHECK_EXTENSION(\(id))")
        }
    }

    @Test func checkExtensionS2() {
        for type: UInt in [1, 3] {
            let c = T1Container(type: type)
            let expected: [UInt: Int] = [0: 0, 1: 1, 2: 0, 3: 1, 4: 1, 5: 0, 6: 1, 7: 0, 8: 0, 9: 1, 10: 1, 11: 0]
            for (id, want) in expected { #expect(c.checkExtension(id) == want, "v\(type) CHECK_EXTENSION(\(id))") }
            // An emulated group turns UPDATE_VADDR off; DMA_CC still follows the domain.
            #expect(c.attach(.emulatedIOMMU) == nil)
            #expect(c.checkExtension(10) == 0)
            #expect(c.checkExtension(4) == 1)
        }
        // Emulated only: no domain, DMA_CC vacuously 1, UPDATE_VADDR 0.
        let e = T1Container(groups: [.emulatedIOMMU])
        #expect(e.checkExtension(4) == 1)
        #expect(e.checkExtension(10) == 0)
        // A domain without coherency enforcement.
        var cfg = Type1DomainConfig.intelDefault
        cfg.enforceCacheCoherency = false
        let nc = T1Container(backend: Type1Backend(domainConfig: cfg))
        #expect(nc.checkExtension(4) == 0)
        #expect(nc.checkExtension(10) == 1)
    }

    @Test func unknownIoctlsAreENOTTY() {
        let c = T1Container()
        for cmd: UInt32 in [0x3B64, 0x3B66, 0x3B67, 0x3B73, 0x3B74, 0x3B76, 0x3B77, 0, 0xFFFF_FFFF, 0x8000_3B70] {
            #expect(c.ioctlErrno(cmd, 0) == .ENOTTY, "cmd \(cmd)")
        }
    }

    @Test func noDataIsEINVAL() {
        let b = Type1Backend()
        for cmd: UInt32 in [0x3B70, 0x3B71, 0x3B72, 0x3B75, 0x3B73] {
            #expect(t1Errno { () throws(Errno) in _ = try b.ioctl(nil, cmd: cmd, arg: 0, context: t1Context()) } == .EINVAL)
        }
    }
}
