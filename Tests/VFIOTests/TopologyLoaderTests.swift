// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import VFIO

/// Loading a topology into a subsystem: discovery, probing, viability (docs/TOPOLOGY.md#drivers).
@Suite struct TopologyLoaderTests {
    @Test func builtInDefaultTopology() throws {
        let sub = try VFIOSubsystem.load(.builtInDefault, rawIO: .granted)
        let names = sub.allGroups.map(\.name)
        #expect(names.contains("26") && names.contains("27") && names.contains("28"))
        let g26 = try sub.open("/dev/vfio/26")
        #expect(try sub.status(g26) == VFIOGroupFlags.viable)
        let g27 = try sub.open("/dev/vfio/27")
        #expect(try sub.status(g27) == 0)
        // The vfio.rst sequence up to GET_DEVICE_FD.
        let c = try sub.open("/dev/vfio/vfio")
        #expect(try sub.ioctl(c, UInt(VFIOIoctl.getAPIVersion)) == 0)
        #expect(try sub.checkExtension(c, VFIOExtension.type1IOMMU) == 1)
        try sub.setContainer(g26, c)
        try sub.setIOMMU(c, VFIOExtension.type1IOMMU)
        let d = try sub.deviceFD(g26, "0000:06:0d.0")
        #expect(d >= 0)
        sub.shutdown()
        #expect(sub.census.counts == Census.Counts())
    }

    @Test func viabilityRulesAndFailedProbes() throws {
        let json = """
        { "config": { "noiommu": false },
          "iommu_groups": [
            { "id": 1, "devices": [ { "name": "a", "driver": "vfio-pci" }, { "name": "a.1", "driver": "pci-stub" },
                                     { "name": "a.2", "driver": "pcieport" }, { "name": "a.3" } ] },
            { "id": 2, "devices": [ { "name": "b", "driver": "vfio-pci", "cache_coherency": false } ] } ],
          "noiommu_devices": [ { "name": "n", "driver": "vfio-pci" } ],
          "emulated_devices": [ { "name": "m" } ] }
        """
        let spec = try TopologySpec.parse(json: Array(json.utf8), source: "t.json")
        let sub = try VFIOSubsystem.load(spec, source: "t.json", rawIO: .granted)
        let g1 = try sub.open("/dev/vfio/1")
        #expect(try sub.status(g1) == VFIOGroupFlags.viable)   // stub, pcieport, unbound: still viable
        #expect(sub.group(named: "2") == nil)                   // no cache coherency: no node
        #expect(!sub.allGroups.contains { $0.type == .noIOMMU }) // noiommu off: no node
        #expect(sub.allGroups.contains { $0.type == .emulatedIOMMU && $0.name == "0" })
        sub.shutdown()
        #expect(sub.census.counts == Census.Counts())
    }

    @Test func modelRefusalIsAnErrorNamingThePath() throws {
        // A hand-built spec that skipped validation's duplicate check reaches the model.
        var spec = TopologySpec()
        spec.iommuGroups = [.init(id: 5, devices: [.init(name: "x", driver: "vfio-pci")])]
        spec.emulatedDevices = [.init(name: "x")]
        #expect(throws: TopologyError.self) { try VFIOSubsystem.load(spec) }
    }
}
