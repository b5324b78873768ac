// SPDX-License-Identifier: Apache-2.0
// The sysfs-shaped reader on a real kernel's tree (issue 17): the shapes Linux 6.1 and 6.12 write
// for QEMU's q35 machine (the harness's guest), where devices the model does not serve carry I/O
// BARs, bridge windows and config spaces of either size, and the Intel IOMMU's ecap says whether
// a domain can enforce cache coherency. Devices the model does not serve are described, never
// fatal; what it cannot serve on a vfio-pci device is an error naming the device.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

/// A scratch directory shaped like /sys, removed at deinit.
private final class KernelTree {
    let root: String
    init() {
        var template = Array("/tmp/swiftvfio-capture-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { $0.baseAddress.flatMap { mkdtemp($0) } }
        precondition(made != nil)
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    deinit { _ = system("rm -rf '\(root)'") }

    func dir(_ rel: String) { _ = system("mkdir -p '\(root)/\(rel)'") }
    func file(_ rel: String, _ text: String) {
        if let slash = rel.lastIndex(of: "/") { dir(String(rel[..<slash])) }
        let fd = open(root + "/" + rel, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
    func sized(_ rel: String, _ size: Int) {
        file(rel, "")
        precondition(truncate(root + "/" + rel, off_t(size)) == 0)
    }
    func link(_ rel: String, _ target: String) {
        if let slash = rel.lastIndex(of: "/") { dir(String(rel[..<slash])) }
        precondition(symlink(target, root + "/" + rel) == 0)
    }

    /// The Intel VT-d unit, as /sys/class/iommu/dmar0 links it.
    func dmar(ecap: String) {
        link("class/iommu/dmar0", "../../devices/virtual/iommu/dmar0")
        file("devices/virtual/iommu/dmar0/intel-iommu/ecap", ecap + "\n")
    }

    /// A PCI function under pci0000:00 (or `parent`), with the links and files Linux makes.
    func device(_ name: String, parent: String = "", group: Int, driver: String?, ids: (String, String, String),
                resource: [String], config: Int) {
        let dev = "devices/pci0000:00/" + (parent.isEmpty ? "" : parent + "/") + name
        let up = String(repeating: "../", count: parent.isEmpty ? 3 : 4)
        dir(dev)
        link("bus/pci/devices/\(name)", "../../../" + dev)
        link("kernel/iommu_groups/\(group)/devices/\(name)", "../../../../" + dev)
        link(dev + "/iommu_group", up + "kernel/iommu_groups/\(group)")
        link(dev + "/iommu", String(repeating: "../", count: parent.isEmpty ? 2 : 3) + "virtual/iommu/dmar0")
        if let driver { link(dev + "/driver", up + "bus/pci/drivers/\(driver)") }
        file(dev + "/vendor", ids.0 + "\n")
        file(dev + "/device", ids.1 + "\n")
        file(dev + "/class", ids.2 + "\n")
        let zero = "0x0000000000000000 0x0000000000000000 0x0000000000000000"
        file(dev + "/resource", (resource + Array(repeating: zero, count: max(0, 13 - resource.count)))
            .joined(separator: "\n") + "\n")
        sized(dev + "/config", config)
    }
}

private let edu = ("0x1234", "0x11e8", "0x00ff00")
private let eduBAR0 = "0x00000000fe200000 0x00000000fe2fffff 0x0000000000040200"

/// The guest of Scripts/test-kernel.sh, cut down: edu on vfio-pci, a PCIe-to-PCI bridge with two
/// edu behind it, and ICH9's SATA and SMBus functions (I/O BARs) on their kernel drivers.
private func q35Tree(ecap: String) -> KernelTree {
    let t = KernelTree()
    t.dmar(ecap: ecap)
    t.dir("class/misc/cpu_dma_latency")
    t.device("0000:00:03.0", group: 1, driver: "vfio-pci", ids: edu, resource: [eduBAR0], config: 256)
    t.device("0000:00:04.0", group: 2, driver: nil, ids: ("0x1b36", "0x000e", "0x060400"), resource: [
        "0x00000000fe700000 0x00000000fe7000ff 0x0000000000140204",
    ] + Array(repeating: "0x0000000000000000 0x0000000000000000 0x0000000000000000", count: 12) + [
        "0x000000000000c000 0x000000000000cfff 0x0000000000000100",          // bridge windows: ignored
        "0x00000000fe000000 0x00000000fe1fffff 0x0000000000000200",
    ], config: 4096)
    t.device("0000:01:01.0", parent: "0000:00:04.0", group: 2, driver: "vfio-pci", ids: edu, resource: [eduBAR0], config: 256)
    t.device("0000:00:1f.2", group: 6, driver: "ahci", ids: ("0x8086", "0x2922", "0x010601"), resource: [
        "0x000000000000d0e0 0x000000000000d0e7 0x0000000000040101",
        "0x000000000000d0f0 0x000000000000d0f3 0x0000000000040101",
        "0x000000000000d0e8 0x000000000000d0ef 0x0000000000040101",
        "0x000000000000d0f4 0x000000000000d0f7 0x0000000000040101",
        "0x000000000000d0c0 0x000000000000d0df 0x0000000000040101",
        "0x00000000fea1a000 0x00000000fea1afff 0x0000000000040200",
    ], config: 256)
    t.device("0000:00:1f.3", group: 6, driver: nil, ids: ("0x8086", "0x2930", "0x0c0500"), resource: [
        "0x0000000000000000 0x0000000000000000 0x0000000000000000",
        "0x0000000000000000 0x0000000000000000 0x0000000000000000",
        "0x0000000000000000 0x0000000000000000 0x0000000000000000",
        "0x0000000000000000 0x0000000000000000 0x0000000000000000",
        "0x0000000000000700 0x000000000000073f 0x0000000000040101",
    ], config: 256)
    return t
}

@Suite("Topology capture of a real kernel's sysfs")
struct SysfsCaptureTests {
    @Test func q35GuestReadsWithEveryDeviceDescribed() throws {
        let t = q35Tree(ecap: "f00f4a")            // QEMU's VT-d without snoop control
        let spec = try SysfsTopologyReader(root: t.root).read()
        #expect(spec.iommuGroups.map(\.id) == [1, 2, 6])
        let devices = Dictionary(uniqueKeysWithValues: spec.iommuGroups.flatMap(\.devices).map { ($0.name, $0) })
        let edu = try #require(devices["0000:00:03.0"])
        #expect(edu.driver == "vfio-pci")
        #expect(edu.pci.vendorID == 0x1234 && edu.pci.deviceID == 0x11e8 && edu.pci.classCode == 0x00ff00)
        #expect(edu.pci.bars == [1 << 20, 0, 0, 0, 0, 0])
        #expect(!edu.pci.pcie)                      // a 256-byte config space: conventional PCI
        #expect(!edu.enforceCacheCoherency && edu.cacheCoherency)
        // The bridge: its 64-bit BAR0 read, its windows (lines 14-17) ignored, PCIe by its config.
        let bridge = try #require(devices["0000:00:04.0"])
        #expect(bridge.driver == nil && bridge.pci.bars == [256, 0, 0, 0, 0, 0] && bridge.pci.pcie)
        // ahci's I/O BARs and its memory BAR5 are read; the group keeps its kernel driver.
        let sata = try #require(devices["0000:00:1f.2"])
        #expect(sata.driver == "ahci" && sata.pci.bars == [8, 4, 8, 4, 32, 4096])
        #expect(sata.pci.barTypes == [.io, .io, .io, .io, .io, .memory32])
        #expect(devices["0000:00:1f.3"]?.pci.bars == [0, 0, 0, 0, 64, 0])
        #expect(devices["0000:00:1f.3"]?.pci.barTypes[4] == .io)
        #expect(devices["0000:01:01.0"]?.driver == "vfio-pci")
        // Not a hand-made tree: class/misc exists and has no "iommu", so no /dev/iommu.
        #expect(!spec.config.iommufd && !spec.config.noiommu)
        // The JSON a capture prints reads back to the same topology.
        #expect(try TopologySpec.parse(json: Array(spec.jsonText().utf8), source: "capture") == spec)
    }

    @Test func snoopControlBitGivesEnforcedCoherency() throws {
        for (ecap, enforced) in [("f00f4a", false), ("f00fca", true), ("80", true), ("7f", false)] {
            let t = q35Tree(ecap: ecap)
            let spec = try SysfsTopologyReader(root: t.root).read()
            #expect(spec.iommuGroups.flatMap(\.devices).allSatisfy { $0.enforceCacheCoherency == enforced },
                    "ecap \(ecap)")
        }
        // The model-extension file still wins, and a device with no IOMMU link defaults to true.
        let t = q35Tree(ecap: "f00f4a")
        t.file("devices/pci0000:00/0000:00:03.0/enforce_cache_coherency", "1\n")
        _ = system("rm '\(t.root)/devices/pci0000:00/0000:00:1f.3/iommu'")
        let spec = try SysfsTopologyReader(root: t.root).read()
        let devices = Dictionary(uniqueKeysWithValues: spec.iommuGroups.flatMap(\.devices).map { ($0.name, $0) })
        #expect(devices["0000:00:03.0"]?.enforceCacheCoherency == true)
        #expect(devices["0000:00:1f.3"]?.enforceCacheCoherency == true)
        #expect(devices["0000:00:1f.2"]?.enforceCacheCoherency == false)
    }

    @Test func resetMethodGivesResetWorks() throws {
        let t = q35Tree(ecap: "f00f4a")
        t.file("devices/pci0000:00/0000:00:04.0/reset_method", "pm\n")
        t.file("devices/pci0000:00/0000:00:1f.2/reset_method", "\n")
        t.file("devices/pci0000:00/0000:00:1f.3/reset", "1\n")            // model extension wins
        let spec = try SysfsTopologyReader(root: t.root).read()
        let reset = Dictionary(uniqueKeysWithValues: spec.iommuGroups.flatMap(\.devices).map { ($0.name, $0.pci.reset) })
        #expect(reset == ["0000:00:03.0": false, "0000:00:04.0": true, "0000:01:01.0": false,
                          "0000:00:1f.2": false, "0000:00:1f.3": true])
        // A bus reset works only for the function alone on its bus (the list predates its siblings).
        t.file("devices/pci0000:00/0000:00:04.0/0000:01:01.0/reset_method", "bus\n")
        #expect(try SysfsTopologyReader(root: t.root).read().iommuGroups[1].devices[1].pci.reset)
        t.device("0000:01:02.0", parent: "0000:00:04.0", group: 2, driver: "vfio-pci", ids: edu, resource: [eduBAR0], config: 256)
        let two = try SysfsTopologyReader(root: t.root).read().iommuGroups[1].devices
        #expect(two.map(\.name) == ["0000:00:04.0", "0000:01:01.0", "0000:01:02.0"])
        #expect(two.map(\.pci.reset) == [true, false, false])
        t.file("devices/pci0000:00/0000:00:04.0/0000:01:01.0/reset_method", "flr bus\n")
        #expect(try SysfsTopologyReader(root: t.root).read().iommuGroups[1].devices[1].pci.reset)
        // A hand-made tree (no `config` files) keeps the default.
        let h = KernelTree()
        h.dir("kernel/iommu_groups/1/devices/0000:00:03.0")
        h.link("bus/pci/devices/0000:00:03.0", "../../../devices/pci0000:00/0000:00:03.0")
        h.dir("devices/pci0000:00/0000:00:03.0")
        h.link("devices/pci0000:00/0000:00:03.0/iommu_group", "../../../kernel/iommu_groups/1")
        #expect(try SysfsTopologyReader(root: h.root).read().iommuGroups[0].devices[0].pci.reset)
    }

    @Test func iommufdFollowsTheMiscDevice() throws {
        let t = q35Tree(ecap: "f00fca")
        t.link("class/misc/iommu", "../../devices/virtual/misc/iommu")
        #expect(try SysfsTopologyReader(root: t.root).read().config.iommufd)
        // The model extension, when present, decides.
        t.file("module/iommufd/parameters/disabled", "Y\n")
        #expect(try !SysfsTopologyReader(root: t.root).read().config.iommufd)
    }

    @Test func ioBAROnAVFIODeviceIsServed() throws {
        // Issue 13: the model serves I/O BARs (pread/pwrite, no mmap), so a vfio-pci SMBus
        // function with its I/O BAR4 reads, and an I/O BAR too big for one is an error naming it.
        let t = q35Tree(ecap: "f00f4a")
        t.link("devices/pci0000:00/0000:00:1f.3/driver", "../../../bus/pci/drivers/vfio-pci")
        let smbus = try #require(try SysfsTopologyReader(root: t.root).read().iommuGroups.flatMap(\.devices)
            .first { $0.name == "0000:00:1f.3" })
        #expect(smbus.pci.bars[4] == 64 && smbus.pci.barTypes[4] == .io)
        t.file("devices/pci0000:00/0000:00:1f.3/resource", "0x0 0x0 0x0\n0x0 0x0 0x0\n0x0 0x0 0x0\n0x0 0x0 0x0\n"
                                                           + "0x0000000000000400 0x00000000000007ff 0x0000000000040101\n")
        do {
            _ = try SysfsTopologyReader(root: t.root).read()
            Issue.record("a 1 KiB I/O BAR on a vfio-pci device was accepted")
        } catch {
            #expect(error.path == t.root + "/bus/pci/devices/0000:00:1f.3/resource")
            #expect(error.message == "device 0000:00:1f.3: BAR4 I/O size 1024: expected a power of two from 4 to 256")
        }
    }

    @Test func oddSizesOnDescribedDevicesAreLeftOut() throws {
        let t = q35Tree(ecap: "f00f4a")
        // A 3-byte BAR and a 1000-byte ROM on the unbound SMBus function: described without them.
        t.file("devices/pci0000:00/0000:00:1f.3/resource", """
            0x0000000000001000 0x0000000000001002 0x0000000000040200
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000002000 0x00000000000023e7 0x0000000000046200

            """)
        let spec = try SysfsTopologyReader(root: t.root).read()
        let smbus = try #require(spec.iommuGroups.flatMap(\.devices).first { $0.name == "0000:00:1f.3" })
        #expect(smbus.pci.bars == [0, 0, 0, 0, 0, 0] && smbus.pci.romSize == 0)
        // On a vfio-pci device the same is an error naming the device.
        t.file("devices/pci0000:00/0000:00:03.0/resource", "0x0000000000001000 0x0000000000001002 0x0000000000040200\n")
        do {
            _ = try SysfsTopologyReader(root: t.root).read()
            Issue.record("a 3-byte BAR on a vfio-pci device was accepted")
        } catch {
            #expect(error.path == t.root + "/bus/pci/devices/0000:00:03.0/resource")
            #expect(error.message.hasPrefix("device 0000:00:03.0: BAR0 size 3"))
        }
    }
}
