// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import VFIO
@testable import VFIOTopology

// A no-IOMMU device's "vfio-noiommu" group keeps the number the topology records (the kernel's
// iommu_group_alloc() gave it once; a real sysfs tree's iommu_group link shows it), so the node is
// /dev/vfio/noiommu-<N> where a client that read the tree (DPDK) looks for it.

private func spec(_ devices: String, hardwareGroup: Int? = nil) throws(TopologyError) -> TopologySpec {
    let groups = hardwareGroup.map { "\"iommu_groups\": [ { \"id\": \($0), \"devices\": [] } ], " } ?? ""
    let text = "{ \"config\": { \"noiommu\": true }, \(groups)\"noiommu_devices\": [ \(devices) ] }"
    return try TopologySpec.parse(json: Array(text.utf8), source: "t.json")
}

@Suite struct NoIOMMUGroupNumberTests {
    @Test func theRecordedNumberNamesTheNode() throws {
        let s = try spec("""
            { "name": "0000:00:05.0", "driver": "vfio-pci", "iommu_group": 5 },
            { "name": "0000:00:06.0", "driver": "vfio-pci" }
            """)
        #expect(s.noIOMMUDevices.map(\.noIOMMUGroupID) == [5, nil])
        #expect(try TopologySpec.parse(json: Array(s.jsonText().utf8), source: "again") == s)
        let sub = try VFIOSubsystem.load(s, rawIO: .granted)
        #expect(sub.group(named: "noiommu-5")?.type == .noIOMMU)
        #expect(sub.group(named: "noiommu-0")?.type == .noIOMMU)   // no number: the smallest free
        let fd = try sub.open("/dev/vfio/noiommu-5")
        _ = try sub.containerWith(fd, type: VFIOExtension.noIOMMU)
        #expect(try sub.deviceFD(fd, "0000:00:05.0") >= 0)
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/vfio/5") }
        teardown(sub)
    }

    @Test func aTakenNumberFallsBackToTheSmallestFree() throws {
        let s = try spec("{ \"name\": \"0000:00:05.0\", \"driver\": \"vfio-pci\", \"iommu_group\": 7 }", hardwareGroup: 7)
        let sub = try VFIOSubsystem.load(s, rawIO: .granted)
        #expect(sub.group(named: "noiommu-0")?.type == .noIOMMU)
        #expect(sub.group(named: "noiommu-7") == nil)
        teardown(sub)
    }

    @Test func theKeyBelongsToNoIOMMUDevicesOnly() {
        let text = """
            { "iommu_groups": [ { "id": 5, "devices": [ { "name": "a", "iommu_group": 5 } ] } ] }
            """
        do {
            _ = try TopologySpec.parse(json: Array(text.utf8), source: "t.json")
            Issue.record("parsed")
        } catch {
            #expect(error.path == "$.iommu_groups[0].devices[0].iommu_group")
            #expect(error.message.hasPrefix("unknown key \"iommu_group\""))
        }
        do {
            _ = try spec("{ \"name\": \"a\", \"iommu_group\": -1 }")
            Issue.record("parsed")
        } catch {
            #expect(error.path == "$.noiommu_devices[0].iommu_group")
        }
    }
}
