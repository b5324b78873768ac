// SPDX-License-Identifier: Apache-2.0
// VFIO_DMA_CC_IOMMU on a type1 container follows what the attached groups' IOMMU domains can
// enforce (issue 17: Linux 6.1 on QEMU's VT-d without snoop control answers 0 where the model
// answered a fixed 1). One test per combination of the device's and its group neighbour's
// `enforce_cache_coherency`, v1 and v2, then groups of both kinds sharing a container.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

@Suite("Type1 cache coherency (VFIO_DMA_CC_IOMMU)")
struct Type1CoherencyTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var device: Bool          // the vfio-pci device's enforce_cache_coherency
        var neighbour: Bool?      // an unbound second member of the IOMMU group (nil: none)
        var type: UInt            // VFIO_TYPE1_IOMMU or VFIO_TYPE1v2_IOMMU
        var expected: Int
        var testDescription: String {
            "device \(device), neighbour \(neighbour.map(String.init) ?? "none"), type \(type) -> \(expected)"
        }
    }

    static let cases: [Case] = [UInt(1), 3].flatMap { type in [
        Case(device: true, neighbour: nil, type: type, expected: 1),
        Case(device: false, neighbour: nil, type: type, expected: 0),
        Case(device: true, neighbour: true, type: type, expected: 1),
        // The whole IOMMU group is attached to the domain: a member VFIO does not even drive counts.
        Case(device: true, neighbour: false, type: type, expected: 0),
        Case(device: false, neighbour: true, type: type, expected: 0),
    ] }

    @Test(arguments: cases)
    func answerFollowsTheGroupsDomain(_ c: Case) throws {
        let sub = makeSubsystem()
        try sub.probePCIDevice(name: "0000:40:00.0", iommuGroupID: 40, driver: "vfio-pci", enforceCacheCoherency: c.device)
        if let n = c.neighbour {
            try sub.probePCIDevice(name: "0000:40:00.1", iommuGroupID: 40, driver: nil, enforceCacheCoherency: n)
        }
        let g = try sub.open("/dev/vfio/40")
        let container = try sub.open("/dev/vfio/vfio")
        // No backend yet: the container asks each backend with no state, and type1 says 0.
        #expect(try sub.checkExtension(container, VFIOExtension.dmaCCIOMMU) == 0)
        try sub.setContainer(g, container)
        try sub.setIOMMU(container, c.type)
        #expect(try sub.checkExtension(container, VFIOExtension.dmaCCIOMMU) == c.expected)
        // The other extensions do not depend on it.
        #expect(try sub.checkExtension(container, c.type) == 1)
        try sub.unsetContainer(g)
        teardown(sub)
    }

    @Test func everyDomainMustEnforce() throws {
        let sub = makeSubsystem()
        try sub.probePCIDevice(name: "0000:41:00.0", iommuGroupID: 41, driver: "vfio-pci")
        try sub.probePCIDevice(name: "0000:42:00.0", iommuGroupID: 42, driver: "vfio-pci", enforceCacheCoherency: false)
        let coherent = try sub.open("/dev/vfio/41")
        let nonCoherent = try sub.open("/dev/vfio/42")
        let c = try sub.containerWith(coherent)
        let cc = VFIOExtension.dmaCCIOMMU
        #expect(try sub.checkExtension(c, cc) == 1)
        try sub.setContainer(nonCoherent, c)              // a second domain, not enforcing
        #expect(try sub.checkExtension(c, cc) == 0)
        try sub.unsetContainer(nonCoherent)               // its domain goes with it
        #expect(try sub.checkExtension(c, cc) == 1)
        try sub.setContainer(nonCoherent, c)
        try sub.unsetContainer(coherent)                  // only the non-enforcing domain is left
        #expect(try sub.checkExtension(c, cc) == 0)
        try sub.setContainer(coherent, c)
        #expect(try sub.checkExtension(c, cc) == 0)
        try sub.unsetContainer(nonCoherent)
        #expect(try sub.checkExtension(c, cc) == 1)
        try sub.unsetContainer(coherent)                  // no group: the backend is gone
        #expect(try sub.checkExtension(c, cc) == 0)
        teardown(sub)
    }

    @Test func nonCoherentGroupFirstThenCoherent() throws {
        // The order of attachment does not matter: the answer is over all domains.
        let sub = makeSubsystem()
        try sub.probePCIDevice(name: "0000:43:00.0", iommuGroupID: 43, driver: "vfio-pci", enforceCacheCoherency: false)
        try sub.probePCIDevice(name: "0000:44:00.0", iommuGroupID: 44, driver: "vfio-pci")
        let g43 = try sub.open("/dev/vfio/43")
        let g44 = try sub.open("/dev/vfio/44")
        let c = try sub.containerWith(g43, type: VFIOExtension.type1IOMMU)
        #expect(try sub.checkExtension(c, VFIOExtension.dmaCCIOMMU) == 0)
        try sub.setContainer(g44, c)
        #expect(try sub.checkExtension(c, VFIOExtension.dmaCCIOMMU) == 0)
        try sub.unsetContainer(g43)
        #expect(try sub.checkExtension(c, VFIOExtension.dmaCCIOMMU) == 1)
        try sub.unsetContainer(g44)
        teardown(sub)
    }

    @Test func topologyKeyReachesTheContainer() throws {
        // The JSON key a capture writes is what the container answers from.
        for enforce in [true, false] {
            let spec = try TopologySpec.parse(json: Array("""
                { "iommu_groups": [ { "id": 7, "devices": [
                    { "name": "0000:00:03.0", "driver": "vfio-pci", "enforce_cache_coherency": \(enforce) } ] } ] }
                """.utf8), source: "test")
            let sub = try VFIOSubsystem.load(spec, rawIO: .granted)
            let g = try sub.open("/dev/vfio/7")
            let c = try sub.containerWith(g)
            #expect(try sub.checkExtension(c, VFIOExtension.dmaCCIOMMU) == (enforce ? 1 : 0))
            try sub.unsetContainer(g)
            teardown(sub)
        }
    }
}
