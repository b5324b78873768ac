// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

/// The topologies shipped in `examples/topologies/`: every entry of the folder loads through the
/// public loaders (`TopologySpec.load(path:)`, `VFIOSubsystem.load(path:)`) and shows the property
/// the folder's README promises for it. An entry without a check here, a check without its
/// entry, or an entry the README does not describe fails the suite, so examples cannot rot.
@Suite struct ExampleTopologyTests {
    /// `<repository>/examples/topologies`, found from this file's path
    /// (`<repository>/Tests/VFIOTests/ExampleTopologyTests.swift`).
    static let folder: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/examples/topologies"
    }()

    /// A loaded example: the parsed topology and a model built from the same path.
    struct Loaded {
        let spec: TopologySpec
        let sub: VFIOSubsystem
    }

    /// The entries that have a check in `check(_:_:)`.
    static let checked: Set<String> = [
        "builtin-default.json", "minimal-vfio-rst.json", "nic-with-msix.json", "shared-group-with-bridge.json",
        "noiommu.json", "not-coherent.json", "sysfs-vfio-rst",
    ]

    /// The property entry `entry` shows once loaded.
    static func check(_ entry: String, _ e: Loaded) throws {
        switch entry {
        case "builtin-default.json":
            #expect(e.spec == TopologySpec.builtInDefault)
            #expect(try e.sub.status(try e.sub.open("/dev/vfio/26")) == VFIOGroupFlags.viable)
            #expect(try e.sub.status(try e.sub.open("/dev/vfio/27")) == 0)
            #expect(e.sub.group(named: "0")?.type == .emulatedIOMMU)   // mdev-0's private group
        case "minimal-vfio-rst.json":
            // Documentation/driver-api/vfio.rst, steps 1-9.
            let sub = e.sub
            let c = try sub.open("/dev/vfio/vfio")
            #expect(try sub.ioctl(c, UInt(VFIOIoctl.getAPIVersion)) == 0)
            #expect(try sub.checkExtension(c, VFIOExtension.type1IOMMU) == 1)
            let g = try sub.open("/dev/vfio/26")
            #expect(try sub.status(g) == VFIOGroupFlags.viable)
            try sub.setContainer(g, c)
            try sub.setIOMMU(c, VFIOExtension.type1IOMMU)
            #expect(try sub.deviceFD(g, "0000:06:0d.0") >= 0)
        case "nic-with-msix.json":
            let device = try #require(e.sub.group(named: "5")?.devices.first)
            let identity = try #require(ModelPCIDriver.model(of: device)).identity
            #expect(identity.vendorID == 0x8086 && identity.deviceID == 0x10d3 && identity.classCode == 0x020000)
            #expect(identity.barSize(3) == 16384)
            // What a client sees: VFIO_DEVICE_GET_IRQ_INFO for the MSI-X index (2) reports 5 vectors.
            let g = try e.sub.open("/dev/vfio/5")
            try e.sub.containerWith(g)
            let d = try e.sub.deviceFD(g, "0000:00:01.0")
            var info: (argsz: UInt32, flags: UInt32, index: UInt32, count: UInt32) = (16, 0, 2, 0)
            _ = try withUnsafeMutablePointer(to: &info) { (p) throws(Errno) -> Int in
                try e.sub.ioctl(d, UInt(VFIOIoctl.deviceGetIRQInfo), UInt(bitPattern: p))
            }
            #expect(info.count == 5)
        case "shared-group-with-bridge.json":
            let sub = e.sub
            #expect(try sub.status(try sub.open("/dev/vfio/12")) == VFIOGroupFlags.viable)
            #expect(sub.group(named: "12")?.enforcedCoherent == false)
            #expect(sub.group(named: "12")?.devices.count == 2)   // the vfio-pci functions only
            let g13 = try sub.open("/dev/vfio/13")
            #expect(try sub.status(g13) == 0)
            let c = try sub.open("/dev/vfio/vfio")
            #expect(throws: Errno.EPERM) { try sub.setContainer(g13, c) }
        case "noiommu.json":
            #expect(e.spec.config == TopologySpec.Config(noiommu: true, spaprTCEIOMMU: false, iommufd: false))
            #expect(e.sub.group(named: "noiommu-0")?.type == .noIOMMU)
            #expect(e.sub.group(named: "1")?.type == .emulatedIOMMU)
            #expect(e.sub.allGroups.count == 2)   // the igb-bound function has no node
            #expect(try e.sub.open("/dev/vfio/noiommu-0") >= 0)   // CAP_SYS_RAWIO granted
            #expect(throws: Errno.ENOENT) { try e.sub.open("/dev/iommu") }
        case "not-coherent.json":
            #expect(throws: Errno.ENOENT) { try e.sub.open("/dev/vfio/40") }
            #expect(e.sub.iommu.device(named: "0000:0a:00.0") != nil)   // still discovered, unbound
            #expect(try e.sub.open("/dev/vfio/41") >= 0)
        case "sysfs-vfio-rst":
            let expected = TopologySpec.Device(
                name: "0000:06:0d.0", driver: "vfio-pci",
                pci: PCIDeviceIdentity(vendorID: 0x1af4, deviceID: 0x1041, classCode: 0x020000, bars: [16384]))
            #expect(e.spec == TopologySpec(iommuGroups: [.init(id: 26, devices: [expected])]))
            #expect(expected.pci.effectivePersonality == .virtioNet)   // by its ids
            #expect(try e.sub.status(try e.sub.open("/dev/vfio/26")) == VFIOGroupFlags.viable)
        default:
            Issue.record("no check for examples/topologies/\(entry)")
        }
    }

    /// The folder's entries (files and directories), README.md excepted.
    static func entries() throws -> [String] {
        let all = try TopologyFileSystem.listDirectory(folder).get()
        return all.filter { $0 != "README.md" }
    }

    @Test func everyEntryHasACheckAndADescription() throws {
        let entries = try Self.entries()
        #expect(Set(entries) == Self.checked, "examples/topologies and ExampleTopologyTests.checked disagree")
        let readme = try TopologyFileSystem.readFile(Self.folder + "/README.md", limit: 1 << 20, source: "README.md",
                                                     tooLarge: "too large")
        let text = String(decoding: readme, as: UTF8.self)
        for entry in entries {
            let shown = entry.hasSuffix(".json") ? entry : entry + "/"
            #expect(text.contains("`\(shown)`"), "examples/topologies/README.md does not describe \(shown)")
        }
    }

    @Test(arguments: try ExampleTopologyTests.entries())
    func loadsAndShowsItsProperty(_ entry: String) throws {
        let path = Self.folder + "/" + entry
        let spec = try TopologySpec.load(path: path)
        // The topology written back as JSON parses to the same value.
        #expect(try TopologySpec.parse(json: Array(spec.jsonText().utf8), source: "round-trip") == spec)
        let sub = try VFIOSubsystem.load(path: path, rawIO: .granted)
        defer {
            sub.shutdown()
            #expect(sub.census.counts == Census.Counts())
        }
        try Self.check(entry, Loaded(spec: spec, sub: sub))
    }
}
