// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

// I/O BARs, 64-bit and prefetchable memory BARs: the topology keys and sysfs flags that describe
// them, BAR sizing through config space as a driver (QEMU's vfio_bars_prepare, Linux's
// __pci_read_base) does it, the region flags vfio-pci gives them, and I/O BAR access through
// pread/pwrite.

/// QEMU's transitional virtio-net layout with a plain personality: I/O BAR0 of 32 bytes, a 4 KiB
/// MSI-X BAR1, a prefetchable 64-bit BAR4 of 16 KiB.
private func qemuLayout(personality: PCIPersonalityKind? = .plain) -> PCIDeviceIdentity {
    var id = PCIDeviceIdentity(vendorID: 0x1af4, deviceID: 0x1000, classCode: 0x020000,
                               bars: [32, 4096, 0, 0, 16384, 0], msiVectors: 0, msixVectors: 3, msixBAR: 1)
    id.barTypes = [.io, .memory32, .memory32, .memory32, .memory64, .memory32]
    id.barPrefetchable = [false, false, false, false, true, false]
    id.personality = personality
    return id
}

private func parseJSON(_ text: String) throws(TopologyError) -> TopologySpec {
    try TopologySpec.parse(json: Array(text.utf8), source: "t.json")
}

private func device(_ members: String) -> String {
    "{ \"iommu_groups\": [ { \"id\": 5, \"devices\": [ { \"name\": \"0000:00:05.0\", \"driver\": \"vfio-pci\"\(members) } ] } ] }"
}

@Suite struct PCIBARKindTests {
    // MARK: Topology JSON

    @Test func integerBarsStayThirtyTwoBitMemory() throws {
        let spec = try parseJSON(device(", \"bars\": [4096, 0, \"0x4000\"]"))
        let pci = try #require(spec.iommuGroups.first?.devices.first?.pci)
        #expect(pci.bars == [4096, 0, 16384, 0, 0, 0])
        #expect(pci.barTypes == Array(repeating: .memory32, count: 6))
        #expect(pci.barPrefetchable == Array(repeating: false, count: 6))
    }

    @Test func barObjectsGiveTypeAndPrefetch() throws {
        let spec = try parseJSON(device("""
            , "bars": [ {"size": 32, "type": "io"}, 4096, 0, 0,
                        {"size": "0x4000", "type": "mem64", "prefetchable": true} ], "msi": 0, "msix": 3, "msix_bar": 1
            """))
        let pci = try #require(spec.iommuGroups.first?.devices.first?.pci)
        #expect(pci.bars == [32, 4096, 0, 0, 16384, 0])
        #expect(pci.barTypes == [.io, .memory32, .memory32, .memory32, .memory64, .memory32])
        #expect(pci.barPrefetchable == [false, false, false, false, true, false])
        // What jsonText() writes reads back the same.
        #expect(try TopologySpec.parse(json: Array(spec.jsonText().utf8), source: "again") == spec)
    }

    @Test(arguments: [
        (", \"bars\": [{\"size\": 512, \"type\": \"io\"}]", "$.iommu_groups[0].devices[0].bars",
         "BAR0 I/O size 512: expected a power of two from 4 to 256"),
        (", \"bars\": [{\"size\": 16, \"type\": \"io\", \"prefetchable\": true}]", "$.iommu_groups[0].devices[0].bars",
         "BAR0 is an I/O BAR and cannot be prefetchable"),
        (", \"bars\": [{\"size\": 4096, \"type\": \"mem64\"}, 4096]", "$.iommu_groups[0].devices[0].bars",
         "BAR0 is a 64-bit BAR: slot 1 holds its upper half and must be 0"),
        (", \"bars\": [0, 0, 0, 0, 0, {\"size\": 4096, \"type\": \"mem64\"}]", "$.iommu_groups[0].devices[0].bars",
         "BAR5 cannot be a 64-bit BAR (it takes two slots)"),
        (", \"bars\": [{\"size\": 4096, \"type\": \"mem48\"}]", "$.iommu_groups[0].devices[0].bars[0].type",
         "expected \"mem32\", \"mem64\" or \"io\", found \"mem48\""),
        (", \"bars\": [{\"type\": \"io\"}]", "$.iommu_groups[0].devices[0].bars[0]", "missing required key \"size\""),
        (", \"bars\": [{\"size\": 16, \"kind\": \"io\"}]", "$.iommu_groups[0].devices[0].bars[0].kind",
         "unknown key \"kind\" (expected one of: size, type, prefetchable)"),
        (", \"bars\": [{\"size\": 16, \"type\": \"io\"}], \"msix\": 1", "$.iommu_groups[0].devices[0].msix_bar",
         "BAR0 holds the MSI-X table but is an I/O BAR"),
    ])
    func badBarObjectsNameTheKey(members: String, path: String, message: String) {
        do {
            _ = try parseJSON(device(members))
            Issue.record("parsed")
        } catch {
            #expect(error.path == path)
            #expect(error.message == message)
        }
    }

    // MARK: Sysfs resource flags

    @Test func sysfsResourceFlagsGiveTheBarKinds() throws {
        let root = makeTempDir()
        defer { _ = system("rm -rf '\(root)'") }
        let dev = root + "/bus/pci/devices/0000:00:05.0"
        _ = system("mkdir -p '\(root)/kernel/iommu_groups/5/devices/0000:00:05.0' '\(dev)'")
        symlink("../../../../kernel/iommu_groups/5", dev + "/iommu_group")
        symlink("../../../../bus/pci/drivers/vfio-pci", dev + "/driver")
        writeText(dev + "/vendor", "0x177d\n")
        writeText(dev + "/device", "0x0001\n")
        // What QEMU's transitional virtio-net shows in a guest's sysfs: I/O BAR0 (0x40101),
        // memory BAR1 (0x40200), 64-bit prefetchable BAR4 (0x14220c), its upper half all zero.
        writeText(dev + "/resource", """
            0x000000000000c040 0x000000000000c05f 0x0000000000040101
            0x00000000febd1000 0x00000000febd1fff 0x0000000000040200
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x00000000fe000000 0x00000000fe003fff 0x000000000014220c
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000

            """)
        let pci = try #require(try TopologySpec.load(path: root).iommuGroups.first?.devices.first?.pci)
        #expect(pci.bars == [32, 4096, 0, 0, 16384, 0])
        #expect(pci.barTypes == [.io, .memory32, .memory32, .memory32, .memory64, .memory32])
        #expect(pci.barPrefetchable == [false, false, false, false, true, false])
        // Both I/O and memory at once is no BAR.
        writeText(dev + "/resource", "0x000000000000c040 0x000000000000c05f 0x0000000000000301\n")
        do {
            _ = try TopologySpec.load(path: root)
            Issue.record("loaded")
        } catch {
            #expect(error.path == dev + "/resource")
            #expect(error.message == "line 1: flags 0x301 say both I/O and memory")
        }
        // A 64-bit BAR whose upper slot is in use.
        writeText(dev + "/resource", """
            0x00000000fe000000 0x00000000fe003fff 0x0000000000140204
            0x00000000febd1000 0x00000000febd1fff 0x0000000000040200

            """)
        do {
            _ = try TopologySpec.load(path: root)
            Issue.record("loaded")
        } catch {
            #expect(error.path == dev + "/resource")
            #expect(error.message == "device 0000:00:05.0: BAR0 is a 64-bit BAR: slot 1 holds its upper half and must be 0")
        }
    }

    // MARK: BAR sizing in config space

    @Test func barRegistersReadTheirTypeBitsAndSizeAsDriversProbeThem() throws {
        let r = try ModelRig(qemuLayout())
        // Initial values: I/O at 0xc000 with bit 0 set; BAR1 32-bit memory; BAR4 64-bit
        // prefetchable (type 0b10 << 1 | prefetch), its address above 4 GiB in BAR5.
        let bar0 = try r.config(0x10, 4), bar1 = try r.config(0x14, 4)
        let bar4 = try r.config(0x20, 4), bar5 = try r.config(0x24, 4)
        #expect(bar0 & 0x3 == 0x1 && bar0 & ~0x3 == 0xc000)
        #expect(bar1 & 0xf == 0 && bar1 != 0)
        #expect(bar4 & 0xf == 0xc)
        #expect(bar5 != 0)                              // above 4 GiB
        #expect((bar5 << 32 | bar4 & ~0xf) % 16384 == 0) // naturally aligned
        #expect(try r.config(0x18, 4) == 0 && r.config(0x1c, 4) == 0)

        // Sizing: write all ones, read back, restore (Linux's __pci_read_base order).
        func size(_ offset: Int) throws(Errno) -> UInt64 {
            let saved = try r.config(offset, 4)
            try r.setConfig(offset, 4, 0xffff_ffff)
            let sized = try r.config(offset, 4)
            try r.setConfig(offset, 4, saved)
            #expect(try r.config(offset, 4) == saved)
            return sized
        }
        #expect(try size(0x10) == 0xffff_ffe1)          // 32 bytes of I/O: ~31 | IO bit
        #expect(try size(0x14) == 0xffff_f000)          // 4 KiB memory
        #expect(try size(0x20) == 0xffff_c00c)          // low half: 16 KiB, 64-bit, prefetchable
        #expect(try size(0x24) == 0xffff_ffff)          // upper half: all ones (size < 4 GiB)
        #expect(try size(0x18) == 0)                    // absent BARs stay 0
        // The command register decodes I/O as well as memory.
        #expect(try r.config(0x04, 2) & 0x3 == 0x3)
        r.finish()
    }

    @Test func aBarAboveFourGiBSizesAcrossBothHalves() throws {
        var id = PCIDeviceIdentity(bars: [1 << 33, 0, 0, 0, 0, 0])
        id.barTypes = [.memory64, .memory32, .memory32, .memory32, .memory32, .memory32]
        id.msiVectors = 0
        let r = try ModelRig(id)
        try r.setConfig(0x10, 4, 0xffff_ffff)
        try r.setConfig(0x14, 4, 0xffff_ffff)
        #expect(try r.config(0x10, 4) == 0x0000_0004)   // low half: no size bits below 8 GiB
        #expect(try r.config(0x14, 4) == 0xffff_fffe)   // upper half: 8 GiB = bit 33
        #expect(try r.region(0).size == 1 << 33)
        #expect(try r.region(1).size == 0 && r.region(1).flags == 0)   // the upper slot is no region
        r.finish()
    }

    // MARK: Regions

    @Test func ioBarsAreReadWriteRegionsWithoutMmap() throws {
        let r = try ModelRig(qemuLayout())
        let io = try r.region(0)
        #expect(io.flags == VFIOPCI.regionRead | VFIOPCI.regionWrite)   // no MMAP flag
        #expect(io.size == 32 && io.offset == 0)
        #expect(try r.region(4).flags & VFIOPCI.regionMmap != 0)
        #expect(try r.region(4).size == 16384 && r.region(5).size == 0)
        // vfio_pci_core_mmap: EINVAL for a BAR without bar_mmap_supported.
        #expect(throws: Errno.EINVAL) { _ = try r.mmap(0, 4096) }

        // pread/pwrite reach the I/O BAR, in every access width, and clip at its end.
        try r.setReg(0, 0, 4, 0x1234_5678)
        try r.setReg(0, 6, 2, 0xabcd)
        try r.setReg(0, 31, 1, 0x5a)
        #expect(try r.reg(0, 0, 4) == 0x1234_5678 && r.reg(0, 6, 2) == 0xabcd && r.reg(0, 31, 1) == 0x5a)
        #expect(try r.read(0, 24, 64).count == 8)
        #expect(throws: Errno.EINVAL) { _ = try r.read(0, 32, 1) }

        // Memory decoding off: memory BARs answer EIO, the I/O BAR does not (only I/O decoding
        // gates it on hardware, and vfio-pci does not check that).
        let command = try r.config(0x04, 2)
        try r.setConfig(0x04, 2, command & ~0x2)
        #expect(throws: Errno.EIO) { _ = try r.read(4, 0, 4) }
        #expect(try r.reg(0, 0, 4) == 0x1234_5678)
        try r.setConfig(0x04, 2, command)
        #expect(try r.read(4, 0, 4).count == 4)
        r.finish()
    }
}

private func makeTempDir() -> String {
    var template = Array("/tmp/swiftvfio-bars-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { $0.baseAddress.flatMap { mkdtemp($0) } }
    precondition(made != nil)
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func writeText(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}
