// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import VFIO

/// Device registration and group creation (docs/ERRORS.md#registration, docs/ERRORS.md#registration).
@Suite struct RegistrationTests {
    @Test func bindWithoutUnbindOrAttachIsRefused() throws {
        let sub = makeSubsystem()
        let g = try sub.iommu.addGroup(id: 70)
        let bus = try sub.iommu.addDevice(name: "x")
        try sub.iommu.addDevice(bus, to: g)
        var ops = VFIODeviceOps(name: "broken")
        ops.bindIOMMUFD = VFIOIOMMUFDOps.physicalBind
        let d = try sub.allocDevice(bus, ops: ops)
        #expect(throws: Errno.EINVAL) { try sub.registerGroupDevice(d) }
        ops.unbindIOMMUFD = VFIOIOMMUFDOps.physicalUnbind
        let d2 = try sub.allocDevice(bus, ops: ops)
        #expect(throws: Errno.EINVAL) { try sub.registerGroupDevice(d2) }   // still no attach_ioas
        #expect(sub.allGroups.isEmpty)
        d.put(); d2.put()
        teardown(sub, expectWarnings: 2)
    }

    @Test func doubleRegistrationWarnsAndIsEINVAL() throws {
        let sub = makeSubsystem()
        let dev = try #require(try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci"))
        #expect(throws: Errno.EINVAL) { try sub.registerGroupDevice(dev) }
        // A second vfio_device for the same bus device: the group already lists it.
        let other = try sub.allocDevice(dev.busDevice, ops: sub.pciDriver.ops)
        #expect(throws: Errno.EINVAL) { try sub.registerGroupDevice(other) }
        other.put()
        #expect(sub.group(named: "26")!.driverCount == 1)
        teardown(sub, expectWarnings: 2)
    }

    @Test func cacheCoherencyIsRequired() throws {
        let sub = makeSubsystem()
        #expect(throws: Errno.EINVAL) {
            try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci", cacheCoherency: false)
        }
        #expect(sub.group(named: "26") == nil)
        #expect(sub.iommu.driver(of: sub.iommu.device(named: "0000:06:0d.0")!) == nil)  // probe failed: unbound
        teardown(sub)
    }

    @Test func noIOMMUParamAffectsOnlyLaterRegistrations() throws {
        let sub = makeSubsystem()
        #expect(throws: Errno.EINVAL) { try sub.probePCIDevice(name: "a", iommuGroupID: nil, driver: "vfio-pci") }
        #expect(!sub.log.taintedUser)
        sub.enableUnsafeNoIOMMUMode = true
        let b = try #require(try sub.probePCIDevice(name: "b", iommuGroupID: nil, driver: "vfio-pci"))
        #expect(b.vfioGroup!.type == .noIOMMU)
        #expect(sub.log.taintedUser)
        #expect(sub.log.messages.contains { $0.text.contains("Adding kernel taint for vfio-noiommu group") })
        sub.enableUnsafeNoIOMMUMode = false
        #expect(b.vfioGroup!.type == .noIOMMU)          // existing groups are not converted
        #expect(sub.group(named: b.vfioGroup!.name) === b.vfioGroup)
        teardown(sub)
    }

    @Test func fakeGroupsTakeTheSmallestFreeIOMMUGroupID() throws {
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true))
        try sub.probePCIDevice(name: "r", iommuGroupID: 0, driver: "vfio-pci")
        try sub.probePCIDevice(name: "s", iommuGroupID: 2, driver: "vfio-pci")
        let n = try #require(try sub.probePCIDevice(name: "n", iommuGroupID: nil, driver: "vfio-pci"))
        let m = try sub.probeEmulatedDevice(name: "m")
        #expect(n.vfioGroup!.name == "noiommu-1")
        #expect(m.vfioGroup!.name == "3")
        #expect(sub.iommu.group(id: 1)!.name == "vfio-noiommu")
        sub.removeVFIODevice(n)
        #expect(sub.iommu.group(id: 1) == nil)          // the fake group went with its device
        let n2 = try #require(try sub.probePCIDevice(name: "n2", iommuGroupID: nil, driver: "vfio-pci"))
        #expect(n2.vfioGroup!.name == "noiommu-1")
        teardown(sub)
    }

    @Test func minorsAreTheSmallestFreeAndExhaustionIsENOSPC() throws {
        let sub = makeSubsystem()
        let a = try #require(try sub.probePCIDevice(name: "a", iommuGroupID: 10, driver: "vfio-pci"))
        let b = try #require(try sub.probePCIDevice(name: "b", iommuGroupID: 11, driver: "vfio-pci"))
        #expect(a.vfioGroup!.minor == 0 && b.vfioGroup!.minor == 1)
        sub.removeVFIODevice(a)
        let c = try #require(try sub.probePCIDevice(name: "c", iommuGroupID: 12, driver: "vfio-pci"))
        #expect(c.vfioGroup!.minor == 0)
        var ida = IDA(limit: 2)
        #expect(try ida.alloc() == 0)
        #expect(try ida.alloc() == 1)
        #expect(throws: Errno.ENOSPC) { try ida.alloc() }
        sub.faults.arm(.groupMinor, errno: .ENOSPC)
        #expect(throws: Errno.ENOSPC) { try sub.probePCIDevice(name: "d", iommuGroupID: 13, driver: "vfio-pci") }
        teardown(sub)
    }

    @Test func deviceSetsSerialiseAndSumOpenCounts() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        let slot = DriverModule(name: "slot-key")
        let g = try sub.iommu.addGroup(id: 80)
        var made: [VFIODevice] = []
        for n in ["f0", "f1"] {
            let bus = try sub.iommu.addDevice(name: n)
            try sub.iommu.addDevice(bus, to: g)
            let d = try sub.allocDevice(bus, ops: VFIODeviceOps(name: "multi-function"))
            try sub.assignDeviceSet(d, setID: slot)
            try sub.registerGroupDevice(d)
            made.append(d)
        }
        #expect(made[0].deviceSet === made[1].deviceSet)
        #expect(sub.census.counts.deviceSets == 1)
        #expect(throws: Errno.EINVAL) { try sub.assignDeviceSet(made[0], setID: slot) }
        let gfd = try sub.open("/dev/vfio/80")
        try sub.containerWith(gfd, type: 100)
        let a = try sub.deviceFD(gfd, "f0"), b = try sub.deviceFD(gfd, "f1"), c = try sub.deviceFD(gfd, "f1")
        #expect(made[0].deviceSet!.totalOpenCount == 3)
        for fd in [a, b, c, gfd] { try sub.close(fd) }
        for d in made { sub.unregisterGroupDevice(d); d.put() }
        #expect(sub.census.counts.deviceSets == 0)
        teardown(sub)
    }

    @Test func driverInitErrorFailsAllocationAndFreesTheIndex() throws {
        let sub = makeSubsystem()
        let bus = try sub.iommu.addDevice(name: "i")
        var ops = VFIODeviceOps(name: "init-fails")
        let released = Mutex0()
        ops.initDevice = { _ throws(Errno) in throw .ENOMEM }
        ops.release = { _ in released.hit() }
        #expect(throws: Errno.ENOMEM) { try sub.allocDevice(bus, ops: ops) }
        #expect(released.count == 0)                    // init failed: release is not called
        ops.initDevice = nil
        let d = try sub.allocDevice(bus, ops: ops)
        #expect(d.index == 0)                           // the failed allocation's index was freed
        d.put()
        #expect(released.count == 1)
        d.put()                                         // a put too many: WARN, no crash
        teardown(sub, expectWarnings: 1)
    }

    @Test func unregisterOfAnUnregisteredDeviceWarns() throws {
        let sub = makeSubsystem()
        let bus = try sub.iommu.addDevice(name: "u")
        let d = try sub.allocDevice(bus, ops: VFIODeviceOps(name: "x"))
        sub.unregisterGroupDevice(d)
        d.put()
        teardown(sub, expectWarnings: 1)
    }
}

import Synchronization
final class Mutex0: Sendable {
    private let n = Atomic<Int>(0)
    func hit() { n.add(1, ordering: .relaxed) }
    var count: Int { n.load(ordering: .relaxed) }
}
