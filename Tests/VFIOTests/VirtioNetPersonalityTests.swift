// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

// The virtio-net personality: what Linux's virtio_pci (modern and legacy) and DPDK's net_virtio
// read and write during probe, in the order they do it (see VirtioNetPersonality.swift).

/// QEMU's virtio-net layout: MSI-X (3 vectors) in BAR1, the structures in a prefetchable 64-bit
/// BAR4 of 16 KiB, and for the transitional id the legacy I/O BAR0 of 32 bytes.
private func virtioNet(transitional: Bool, mac: [UInt8]? = nil, linkUp: Bool = true) -> PCIDeviceIdentity {
    var id = PCIDeviceIdentity(vendorID: 0x1af4, deviceID: transitional ? 0x1000 : 0x1041, classCode: 0x020000,
                               bars: [transitional ? 32 : 0, 4096, 0, 0, 16384, 0], msiVectors: 0,
                               msixVectors: 3, msixBAR: 1)
    id.barTypes = [transitional ? .io : .memory32, .memory32, .memory32, .memory32, .memory64, .memory32]
    id.barPrefetchable = [false, false, false, false, true, false]
    if let mac { id.mac = mac }
    id.linkUp = linkUp
    return id
}

// Modern register offsets in BAR4 (common configuration at 0, ISR 0x1000, device 0x2000, notify 0x3000).
private let bar = 4
private let dfSelect = 0x00, dFeature = 0x04, gfSelect = 0x08, gFeature = 0x0c, msixConfig = 0x10
private let numQueues = 0x12, status = 0x14, generation = 0x15, qSelect = 0x16, qSize = 0x18
private let qVector = 0x1a, qEnable = 0x1c, qNotifyOff = 0x1e, qDesc = 0x20, qDriver = 0x28, qDevice = 0x30
private let isrBase = 0x1000, deviceBase = 0x2000, notifyBase = 0x3000

private let ack: UInt64 = 1, driver: UInt64 = 2, driverOK: UInt64 = 4, featuresOK: UInt64 = 8
private let fMAC: UInt64 = 1 << 5, fStatus: UInt64 = 1 << 16, fVersion1: UInt64 = 1 << 32

private extension ModelRig {
    var virtio: VirtioNetPersonality { model.personality as! VirtioNetPersonality }

    /// The device's 64 feature bits through the two 32-bit windows.
    func deviceFeatures() throws(Errno) -> UInt64 {
        try setReg(bar, dfSelect, 4, 0)
        let low = try reg(bar, dFeature, 4)
        try setReg(bar, dfSelect, 4, 1)
        return try reg(bar, dFeature, 4) << 32 | low
    }

    func setDriverFeatures(_ f: UInt64) throws(Errno) {
        try setReg(bar, gfSelect, 4, 0)
        try setReg(bar, gFeature, 4, f & 0xffff_ffff)
        try setReg(bar, gfSelect, 4, 1)
        try setReg(bar, gFeature, 4, f >> 32)
    }

    /// The vendor capabilities (id 0x09) on the standard list: (cfg_type, bar, offset, length, extra).
    func virtioCaps() throws(Errno) -> [(type: UInt64, bar: UInt64, offset: UInt64, length: UInt64, at: Int)] {
        var caps: [(UInt64, UInt64, UInt64, UInt64, Int)] = []
        var at = Int(try config(0x34, 1))
        var hops = 0
        while at != 0 && hops < 48 {
            if try config(at, 1) == 0x09 {
                caps.append((try config(at + 3, 1), try config(at + 4, 1), try config(at + 8, 4), try config(at + 12, 4), at))
                #expect(try config(at + 2, 1) >= 16)   // cap_len
            }
            at = Int(try config(at + 1, 1))
            hops += 1
        }
        return caps
    }
}

@Suite struct VirtioNetPersonalityTests {
    // MARK: Identity and capabilities

    @Test(arguments: [false, true])
    func capabilitiesPointAtTheStructuresInATrappedBar(transitional: Bool) throws {
        let r = try ModelRig(virtioNet(transitional: transitional))
        #expect(r.model.identity.effectivePersonality == .virtioNet)
        // Subsystem 1af4:0001 (virtio type 1 = network, how Linux types a transitional device);
        // revision 1 for a modern-only device (virtio 1.2 §4.1.2.1), 0 for a transitional one.
        #expect(try r.config(0x2c, 4) == 0x0001_1af4)
        #expect(try r.config(0x08, 1) == (transitional ? 0 : 1))
        let caps = try r.virtioCaps()
        #expect(caps.map(\.type) == [1, 2, 3, 4])   // common, notify, ISR, device
        #expect(caps.allSatisfy { $0.bar == 4 && $0.length == 0x1000 })
        #expect(caps.map(\.offset) == [0, 0x3000, 0x1000, 0x2000])
        #expect(try r.config(caps[1].at + 16, 4) == 4)   // notify_off_multiplier
        // Each structure lies inside BAR4 (the check both Linux and DPDK make).
        let bar4 = try r.region(4)
        #expect(caps.allSatisfy { $0.offset + $0.length <= bar4.size })
        // Registers with side effects are trapped: BAR4 (and the legacy I/O BAR0) have no MMAP
        // flag and refuse mmap; the MSI-X BAR stays mappable.
        #expect(bar4.flags == VFIOPCI.regionRead | VFIOPCI.regionWrite)
        #expect(throws: Errno.EINVAL) { _ = try r.mmap(4 << 40, 4096) }
        #expect(try r.region(1).flags & VFIOPCI.regionMmap != 0)
        if transitional { #expect(try r.region(0).flags == VFIOPCI.regionRead | VFIOPCI.regionWrite) }
        r.finish()
    }

    @Test func theIdsChooseThePersonalityAndTheKeyOverridesIt() throws {
        #expect(PCIDeviceIdentity(vendorID: 0x1af4, deviceID: 0x1041).effectivePersonality == .virtioNet)
        #expect(PCIDeviceIdentity(vendorID: 0x1af4, deviceID: 0x1000).effectivePersonality == .virtioNet)
        #expect(PCIDeviceIdentity(vendorID: 0x177d, deviceID: 0x0001).effectivePersonality == .plain)
        #expect(PCIDeviceIdentity(vendorID: 0x1af4, deviceID: 0x1042).effectivePersonality == .plain)
        // "plain" on virtio ids: no vendor capabilities, BAR4 plain mappable memory.
        var id = virtioNet(transitional: false)
        id.personality = .plain
        let r = try ModelRig(id)
        #expect(try r.virtioCaps().isEmpty)
        #expect(try r.config(0x2c, 4) == 0x1041_1af4)
        #expect(try r.region(4).flags & VFIOPCI.regionMmap != 0)
        r.finish()
    }

    @Test(arguments: [
        (", \"vendor_id\": \"0x1af4\", \"device_id\": \"0x1041\"", "$.iommu_groups[0].devices[0].bars",
         "virtio-net needs a memory BAR of at least 16384 bytes (not the MSI-X BAR) for its common, ISR, device and "
            + "notify structures (QEMU: a 64-bit BAR4 of 16384 bytes)"),
        (", \"vendor_id\": \"0x1af4\", \"device_id\": \"0x1000\", \"bars\": [0, 0, 0, 0, 16384]",
         "$.iommu_groups[0].devices[0].bars",
         "a transitional virtio-net (0x1000) needs BAR0 to be an I/O BAR of at least 32 bytes (the legacy registers)"),
        (", \"personality\": \"virtio-net\", \"bars\": [16384]", "$.iommu_groups[0].devices[0].personality",
         "virtio-net needs vendor 0x1af4 and device 0x1000 (transitional) or 0x1041 (modern), found 1b36:0005"),
        (", \"personality\": \"e1000\"", "$.iommu_groups[0].devices[0].personality",
         "expected \"plain\" or \"virtio-net\", found \"e1000\""),
        (", \"mac\": \"52:54:00:12:34\"", "$.iommu_groups[0].devices[0].mac",
         "expected a MAC address such as \"52:54:00:12:34:56\", found \"52:54:00:12:34\""),
        (", \"link_up\": 1", "$.iommu_groups[0].devices[0].link_up", "expected a boolean, found a number"),
    ])
    func personalityKeysAreChecked(members: String, path: String, message: String) {
        let text = "{ \"iommu_groups\": [ { \"id\": 5, \"devices\": [ { \"name\": \"0000:00:05.0\"\(members) } ] } ] }"
        do {
            _ = try TopologySpec.parse(json: Array(text.utf8), source: "t.json")
            Issue.record("parsed")
        } catch {
            #expect(error.path == path)
            #expect(error.message == message)
        }
    }

    @Test func personalityKeysRoundTripAndComeFromSysfs() throws {
        let text = """
            { "iommu_groups": [ { "id": 5, "devices": [ { "name": "0000:00:05.0", "driver": "vfio-pci",
              "vendor_id": "0x1af4", "device_id": "0x1000", "msi": 0, "msix": 3, "msix_bar": 1,
              "bars": [ {"size": 32, "type": "io"}, 4096, 0, 0, {"size": 16384, "type": "mem64", "prefetchable": true} ],
              "personality": "virtio-net", "mac": "02-00-00-aa-bb-cc", "link_up": false } ] } ] }
            """
        let spec = try TopologySpec.parse(json: Array(text.utf8), source: "t.json")
        let pci = try #require(spec.iommuGroups.first?.devices.first?.pci)
        #expect(pci.mac == [2, 0, 0, 0xaa, 0xbb, 0xcc] && pci.macString == "02:00:00:aa:bb:cc")
        #expect(!pci.linkUp && pci.personality == .virtioNet)
        #expect(try TopologySpec.parse(json: Array(spec.jsonText().utf8), source: "again") == spec)

        var template = Array("/tmp/swiftvfio-virtio-XXXXXX".utf8CString)
        _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { _ = system("rm -rf '\(root)'") }
        let dev = root + "/bus/pci/devices/0000:00:05.0"
        _ = system("mkdir -p '\(root)/kernel/iommu_groups/5/devices/0000:00:05.0' '\(dev)'")
        symlink("../../../../kernel/iommu_groups/5", dev + "/iommu_group")
        writeText(dev + "/vendor", "0x1af4\n")
        writeText(dev + "/device", "0x1041\n")
        writeText(dev + "/msi", "0\n")
        writeText(dev + "/resource", "0x0 0x0 0x0\n0x0 0x0 0x0\n0x0 0x0 0x0\n0x0 0x0 0x0\n"
                                     + "0x00000000fe000000 0x00000000fe003fff 0x000000000014220c\n")
        writeText(dev + "/mac", "02:00:00:aa:bb:cc\n")
        writeText(dev + "/link_up", "0\n")
        let fromTree = try #require(try TopologySpec.load(path: root).iommuGroups.first?.devices.first?.pci)
        #expect(fromTree.effectivePersonality == .virtioNet && fromTree.mac == pci.mac && !fromTree.linkUp)
        writeText(dev + "/personality", "plain\n")
        #expect(try TopologySpec.load(path: root).iommuGroups.first?.devices.first?.pci.effectivePersonality == .plain)
        writeText(dev + "/mac", "02:00:00:aa:bb:zz\n")
        do {
            _ = try TopologySpec.load(path: root)
            Issue.record("loaded")
        } catch {
            #expect(error.path == dev + "/mac")
        }
    }

    // MARK: Modern interface

    @Test func statusResetsAndReadsBack() throws {
        let r = try ModelRig(virtioNet(transitional: false))
        try r.setReg(bar, status, 1, 0)
        #expect(try r.reg(bar, status, 1) == 0)             // the driver polls for 0 after a reset
        try r.setReg(bar, status, 1, ack)
        try r.setReg(bar, status, 1, ack | driver)
        #expect(try r.reg(bar, status, 1) == ack | driver)
        try r.setReg(bar, qSelect, 2, 1)
        try r.setReg(bar, msixConfig, 2, 2)
        try r.setReg(bar, status, 1, 0)                      // reset: every register back
        #expect(try r.reg(bar, status, 1) == 0 && r.reg(bar, qSelect, 2) == 0 && r.reg(bar, msixConfig, 2) == 0xffff)
        r.finish()
    }

    @Test func featureNegotiationNeedsVersion1() throws {
        let r = try ModelRig(virtioNet(transitional: false))
        #expect(try r.deviceFeatures() == fMAC | fStatus | fVersion1)
        try r.setReg(bar, dfSelect, 4, 2)
        #expect(try r.reg(bar, dFeature, 4) == 0)           // no bits past 63
        // Without VERSION_1 the device refuses FEATURES_OK: it reads back clear.
        try r.setReg(bar, status, 1, ack | driver)
        try r.setDriverFeatures(fMAC | fStatus)
        try r.setReg(bar, status, 1, ack | driver | featuresOK)
        #expect(try r.reg(bar, status, 1) == ack | driver)
        // A feature the device does not offer is refused too.
        try r.setReg(bar, status, 1, 0)
        try r.setReg(bar, status, 1, ack | driver)
        try r.setDriverFeatures(fVersion1 | fMAC | 1 << 17)
        try r.setReg(bar, status, 1, ack | driver | featuresOK)
        #expect(try r.reg(bar, status, 1) & featuresOK == 0)
        // The accepted set sticks, reads back through the driver window, and is fixed afterwards.
        try r.setReg(bar, status, 1, 0)
        try r.setReg(bar, status, 1, ack | driver)
        try r.setDriverFeatures(fVersion1 | fMAC | fStatus)
        try r.setReg(bar, status, 1, ack | driver | featuresOK)
        #expect(try r.reg(bar, status, 1) == ack | driver | featuresOK)
        try r.setReg(bar, gfSelect, 4, 1)
        #expect(try r.reg(bar, gFeature, 4) == 1)
        try r.setReg(bar, gFeature, 4, 0)
        #expect(try r.reg(bar, gFeature, 4) == 1)
        try r.setReg(bar, status, 1, ack | driver | featuresOK | driverOK)
        #expect(r.model.lock.withLock { r.virtio.negotiatedFeatures } == fVersion1 | fMAC | fStatus)
        r.finish()
    }

    @Test func queueRegistersFollowTheSelector() throws {
        let r = try ModelRig(virtioNet(transitional: false))
        #expect(try r.reg(bar, numQueues, 2) == 2)            // receive and transmit
        for q in 0..<2 {
            try r.setReg(bar, qSelect, 2, UInt64(q))
            #expect(try r.reg(bar, qSize, 2) == 256)
            #expect(try r.reg(bar, qEnable, 2) == 0)          // Linux: -ENOENT if already enabled
            #expect(try r.reg(bar, qNotifyOff, 2) == UInt64(q))
        }
        try r.setReg(bar, qSelect, 2, 0)
        try r.setReg(bar, qSize, 2, 128)
        #expect(try r.reg(bar, qSize, 2) == 128)
        try r.setReg(bar, qSize, 2, 100)                       // not a power of two: ignored
        try r.setReg(bar, qSize, 2, 512)                       // above the maximum: ignored
        #expect(try r.reg(bar, qSize, 2) == 128)
        // MSI-X vectors: the function has 3; an absent one reads back NO_VECTOR.
        try r.setReg(bar, qVector, 2, 1)
        #expect(try r.reg(bar, qVector, 2) == 1)
        try r.setReg(bar, msixConfig, 2, 3)
        #expect(try r.reg(bar, msixConfig, 2) == 0xffff)
        // Ring addresses as two 32-bit halves (how Linux's vp_iowrite64_twopart writes them) and
        // read back in one 8-byte pread (split into 4-byte accesses as vfio-pci splits it).
        try r.setReg(bar, qDesc, 4, 0x1234_5000)
        try r.setReg(bar, qDesc + 4, 4, 0x1)
        try r.setReg(bar, qDriver, 8, 0x2_0000_6000)
        try r.setReg(bar, qDevice, 4, 0x7000)
        #expect(try r.reg(bar, qDesc, 8) == 0x1_1234_5000)
        #expect(try r.reg(bar, qDriver, 8) == 0x2_0000_6000 && r.reg(bar, qDevice, 8) == 0x7000)
        try r.setReg(bar, qEnable, 2, 1)
        #expect(try r.reg(bar, qEnable, 2) == 1)
        try r.setReg(bar, qDesc, 4, 0)                         // fixed once enabled
        #expect(try r.reg(bar, qDesc, 8) == 0x1_1234_5000)
        // A queue past the last reads size 0 (absent) and takes no writes.
        try r.setReg(bar, qSelect, 2, 2)
        #expect(try r.reg(bar, qSize, 2) == 0)
        try r.setReg(bar, qEnable, 2, 1)
        #expect(try r.reg(bar, qEnable, 2) == 0)
        // Notifications at notify base + notify_off * multiplier are counted per queue.
        try r.setReg(bar, notifyBase + 4, 2, 1)
        try r.setReg(bar, notifyBase + 4, 2, 1)
        try r.setReg(bar, notifyBase, 2, 0)
        #expect(try r.reg(bar, notifyBase, 2) == 0)
        #expect(r.model.lock.withLock { r.virtio.notifications } == [1, 2])
        // Reset brings the queues back to their initial state.
        try r.setReg(bar, status, 1, 0)
        try r.setReg(bar, qSelect, 2, 0)
        #expect(try r.reg(bar, qSize, 2) == 256 && r.reg(bar, qEnable, 2) == 0 && r.reg(bar, qDesc, 8) == 0)
        r.finish()
    }

    @Test func deviceConfigHoldsTheTopologysMacAndLink() throws {
        let up = try ModelRig(virtioNet(transitional: false, mac: [0x02, 0x11, 0x22, 0x33, 0x44, 0x55]))
        #expect(try up.read(bar, deviceBase, 6) == [0x02, 0x11, 0x22, 0x33, 0x44, 0x55])
        #expect(try up.reg(bar, deviceBase + 6, 2) == 1)      // VIRTIO_NET_S_LINK_UP
        #expect(try up.reg(bar, deviceBase + 8, 2) == 1)      // max_virtqueue_pairs
        #expect(try up.reg(bar, generation, 1) == 0)
        try up.write(bar, deviceBase, [0, 0, 0, 0, 0, 0])      // read-only through the modern interface
        #expect(try up.read(bar, deviceBase, 6) == [0x02, 0x11, 0x22, 0x33, 0x44, 0x55])
        up.finish()
        let down = try ModelRig(virtioNet(transitional: false, linkUp: false))
        #expect(try down.read(bar, deviceBase, 6) == [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        #expect(try down.reg(bar, deviceBase + 6, 2) == 0)
        down.finish()
    }

    @Test func isrReadsClear() throws {
        let r = try ModelRig(virtioNet(transitional: true))
        r.model.lock.withLock { r.virtio.isr = 1 }
        #expect(try r.reg(bar, isrBase, 1) == 1)
        #expect(try r.reg(bar, isrBase, 1) == 0)
        r.model.lock.withLock { r.virtio.isr = 3 }
        #expect(try r.reg(0, 0x13, 1) == 3)                   // the legacy ISR register
        #expect(try r.reg(0, 0x13, 1) == 0)
        r.finish()
    }

    @Test func aFunctionResetAndAReopenResetTheDevice() throws {
        let r = try ModelRig(virtioNet(transitional: false))
        try r.setReg(bar, status, 1, ack | driver)
        var none: UInt8 = 0
        _ = try withUnsafeMutablePointer(to: &none) { (p) throws(Errno) -> Int in
            try r.sub.ioctl(r.device, UInt(VFIOIoctl.deviceReset), UInt(bitPattern: p))
        }
        #expect(try r.reg(bar, status, 1) == 0)
        try r.setReg(bar, status, 1, ack)
        try r.sub.close(r.device)
        let again = try r.sub.deviceFD(r.group, "0000:00:05.0")
        var pos = Int64(bar) << 40 | Int64(status)
        var byte: UInt8 = 0xff
        _ = try withUnsafeMutablePointer(to: &byte) { (p) throws(Errno) -> Int in
            try r.sub.read(again, buffer: UInt(bitPattern: p), count: 1, offset: &pos)
        }
        #expect(byte == 0)
        try r.sub.close(again)
        teardown(r.sub)
    }

    // MARK: Legacy I/O BAR (transitional)

    @Test func legacyRegistersAsDPDKUsesThem() throws {
        let r = try ModelRig(virtioNet(transitional: true, mac: [0x02, 0, 0, 0, 0, 0x01]))
        try r.setReg(0, 0x12, 1, 0)                            // reset
        #expect(try r.reg(0, 0x12, 1) == 0)
        try r.setReg(0, 0x12, 1, ack | driver)
        #expect(try r.reg(0, 0x00, 4) == fMAC | fStatus)      // 32 host feature bits: no VERSION_1
        try r.setReg(0, 0x04, 4, fMAC | fStatus)
        #expect(try r.reg(0, 0x04, 4) == fMAC | fStatus)
        // MSI-X disabled: the device config starts at 20.
        #expect(try r.read(0, 20, 6) == [0x02, 0, 0, 0, 0, 0x01])
        #expect(try r.reg(0, 26, 2) == 1)
        // Queues: num is a power of two; PFN set and read back; a third queue does not exist.
        for q in 0..<2 {
            try r.setReg(0, 0x0e, 2, UInt64(q))
            #expect(try r.reg(0, 0x0c, 2) == 256)
            try r.setReg(0, 0x08, 4, 0x12345 + UInt64(q))
            #expect(try r.reg(0, 0x08, 4) == 0x12345 + UInt64(q))
        }
        try r.setReg(0, 0x0e, 2, 2)
        #expect(try r.reg(0, 0x0c, 2) == 0)
        try r.setReg(0, 0x10, 2, 1)                            // notify queue 1
        #expect(r.model.lock.withLock { r.virtio.notifications } == [0, 1])
        // A legacy driver may write the MAC.
        try r.write(0, 20, [0x02, 0, 0, 0, 0, 0x02])
        #expect(try r.read(0, 20, 6) == [0x02, 0, 0, 0, 0, 0x02])
        try r.setReg(0, 0x12, 1, ack | driver | driverOK)
        #expect(try r.reg(0, 0x12, 1) == ack | driver | driverOK)
        // The modern view shares the state: same status.
        #expect(try r.reg(bar, status, 1) == ack | driver | driverOK)
        // Reset brings the topology's MAC back and takes the queues down.
        try r.setReg(0, 0x12, 1, 0)
        try r.setReg(0, 0x0e, 2, 0)
        #expect(try r.reg(0, 0x08, 4) == 0 && r.read(0, 20, 6) == [0x02, 0, 0, 0, 0, 0x01])
        r.finish()
    }

    @Test func legacyLayoutMovesWithMSIXEnable() throws {
        let r = try ModelRig(virtioNet(transitional: true))
        // The virtualized enable bit alone does not reach the function: still the INTx layout.
        let msixCap = 0xa0
        #expect(try r.config(msixCap, 1) == 0x11)
        let control = try r.config(msixCap + 2, 2)
        try r.setConfig(msixCap + 2, 2, control | 0x8000)
        #expect(try r.read(0, 20, 6) == [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        try r.setConfig(msixCap + 2, 2, control)
        // MSI-X enabled through SET_IRQS (as the host kernel enables it): the config moves to 24.
        let efd = svfio_eventfd(0, 1)
        defer { close(efd) }
        try r.setIRQs(index: VFIOPCI.msixIRQ, flags: VFIOPCI.setDataEventfd | VFIOPCI.setActionTrigger, fds: [efd])
        #expect(try r.read(0, 24, 6) == [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        try r.setReg(0, 0x14, 2, 0)                            // config vector 0
        try r.setReg(0, 0x0e, 2, 1)
        try r.setReg(0, 0x16, 2, 2)                            // queue 1 -> vector 2
        try r.setReg(0, 0x0e, 2, 0)
        try r.setReg(0, 0x16, 2, 9)                            // no vector 9: NO_VECTOR
        #expect(try r.reg(0, 0x14, 2) == 0 && r.reg(0, 0x16, 2) == 0xffff)
        try r.setReg(0, 0x0e, 2, 1)
        #expect(try r.reg(0, 0x16, 2) == 2)
        try r.write(0, 24, [0x02, 0, 0, 0, 0, 0x09])           // the MAC moved with the layout
        #expect(try r.read(0, 24, 6) == [0x02, 0, 0, 0, 0, 0x09])
        try r.setIRQs(index: VFIOPCI.msixIRQ, flags: VFIOPCI.setDataNone | VFIOPCI.setActionTrigger, fds: [], count: 0)
        #expect(try r.read(0, 20, 6) == [0x02, 0, 0, 0, 0, 0x09])
        r.finish()
    }
}
