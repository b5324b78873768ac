// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import VFIO

/// Every named fault point: the call fails with the injected errno, and registry, refcounts,
/// minors, fds and ownership are exactly as before; without the fault the same call succeeds.
@Suite struct FaultPointTests {
    /// Everything a failed call must leave as it found it.
    struct Snapshot: Equatable {
        var census: Census.Counts
        var minors: Int
        var fds: Int
        var groups: [String]
        var owners: [Int: Int]
        var containerUsers: [String: Int]
        var openCounts: [String: Int]
        var registrations: [String: Int]
        var moduleRefs: Int
        var warns: Int

        init(_ sub: VFIOSubsystem) {
            census = sub.census.counts
            minors = sub.liveGroupCount
            fds = sub.openFDCount
            groups = sub.allGroups.map(\.name).sorted()
            owners = Dictionary(uniqueKeysWithValues: sub.iommu.groups.map { ($0.id, $0.dmaOwnerCount) })
            containerUsers = Dictionary(uniqueKeysWithValues: sub.allGroups.map { ($0.name, $0.containerUserCount) })
            let devs = sub.registeredDevices
            openCounts = Dictionary(uniqueKeysWithValues: devs.map { ($0.busDevice.name, $0.openCount) })
            registrations = Dictionary(uniqueKeysWithValues: devs.map { ($0.busDevice.name, $0.registrationCount) })
            moduleRefs = sub.pciDriver.module.refCount + sub.mdevDriver.module.refCount
            warns = sub.log.warnCount
        }
    }

    /// A scenario: `prepare` sets the stage (not under fault), `operation` is the call under test,
    /// `cleanup` undoes a successful operation.
    struct Case: CustomTestStringConvertible, Sendable {
        let point: FaultPoint
        let name: String
        let config: VFIOConfig
        let prepare: @Sendable (VFIOSubsystem) throws -> [String: Int32]
        let operation: @Sendable (VFIOSubsystem, [String: Int32]) throws(Errno) -> Void
        var testDescription: String { "\(point.rawValue): \(name)" }
    }

    static let base = VFIOConfig(enableUnsafeNoIOMMUMode: true, unregisterRequestInterval: .milliseconds(20))

    static func groupAndContainer(_ sub: VFIOSubsystem) throws -> [String: Int32] {
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        return ["g": g, "c": c]
    }

    static let cases: [Case] = [
        Case(point: .groupAlloc, name: "register a device of a new IOMMU group", config: base,
             prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probePCIDeviceForFault(name: "new", group: 90) }),
        Case(point: .groupMinor, name: "register: minor", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probePCIDeviceForFault(name: "new", group: 90) }),
        Case(point: .groupCdevAdd, name: "register: cdev", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probePCIDeviceForFault(name: "new", group: 90) }),
        Case(point: .deviceAdd, name: "register: device_add", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probePCIDeviceForFault(name: "new", group: 90) }),
        Case(point: .deviceSetAlloc, name: "register: singleton device set", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probePCIDeviceForFault(name: "new", group: 90) }),
        Case(point: .deviceAlloc, name: "vfio_alloc_device", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probePCIDeviceForFault(name: "new", group: 90) }),
        Case(point: .deviceIndex, name: "vfio_alloc_device: index", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probePCIDeviceForFault(name: "new", group: 90) }),
        Case(point: .fakeIOMMUGroupAlloc, name: "register an emulated device", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probeEmulatedForFault(name: "m") }),
        Case(point: .fakeIOMMUGroupAddDevice, name: "register an emulated device: add to fake group", config: base,
             prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.probeEmulatedForFault(name: "m") }),
        Case(point: .fileAlloc, name: "open a group", config: base, prepare: { sub in try populate(sub); return [:] },
             operation: { sub, _ throws(Errno) in try sub.close(try sub.open("/dev/vfio/26")) }),
        Case(point: .containerAlloc, name: "open /dev/vfio/vfio", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.close(try sub.open("/dev/vfio/vfio")) }),
        Case(point: .iommufdAlloc, name: "open /dev/iommu", config: base, prepare: { _ in [:] },
             operation: { sub, _ throws(Errno) in try sub.close(try sub.open("/dev/iommu")) }),
        Case(point: .ownershipClaim, name: "SET_CONTAINER(container)", config: base, prepare: groupAndContainer,
             operation: { sub, fd throws(Errno) in try sub.setContainer(fd["g"]!, fd["c"]!) }),
        Case(point: .backendOpen, name: "SET_IOMMU", config: base,
             prepare: { sub in var f = try groupAndContainer(sub); try sub.setContainer(f["g"]!, f["c"]!); f["x"] = 0; return f },
             operation: { sub, fd throws(Errno) in try sub.setIOMMU(fd["c"]!, VFIOExtension.type1v2IOMMU) }),
        Case(point: .backendAttach, name: "SET_IOMMU: attach", config: base,
             prepare: { sub in let f = try groupAndContainer(sub); try sub.setContainer(f["g"]!, f["c"]!); return f },
             operation: { sub, fd throws(Errno) in try sub.setIOMMU(fd["c"]!, VFIOExtension.type1v2IOMMU) }),
        Case(point: .compatIOASAlloc, name: "SET_CONTAINER(iommufd)", config: base,
             prepare: { sub in var f = try groupAndContainer(sub); f["i"] = try sub.open("/dev/iommu"); return f },
             operation: { sub, fd throws(Errno) in try sub.setContainer(fd["g"]!, fd["i"]!) }),
        Case(point: .nameCopy, name: "GET_DEVICE_FD: name", config: base,
             prepare: { sub in let f = try groupAndContainer(sub); try sub.setContainer(f["g"]!, f["c"]!); try sub.setIOMMU(f["c"]!, 3); return f },
             operation: { sub, fd throws(Errno) in try sub.close(try sub.deviceFD(fd["g"]!, "0000:06:0d.0")) }),
        Case(point: .fdReserve, name: "GET_DEVICE_FD: fd", config: base,
             prepare: { sub in let f = try groupAndContainer(sub); try sub.setContainer(f["g"]!, f["c"]!); try sub.setIOMMU(f["c"]!, 3); return f },
             operation: { sub, fd throws(Errno) in try sub.close(try sub.deviceFD(fd["g"]!, "0000:06:0d.0")) }),
        Case(point: .anonInodeFile, name: "GET_DEVICE_FD: anon file", config: base,
             prepare: { sub in let f = try groupAndContainer(sub); try sub.setContainer(f["g"]!, f["c"]!); try sub.setIOMMU(f["c"]!, 3); return f },
             operation: { sub, fd throws(Errno) in try sub.close(try sub.deviceFD(fd["g"]!, "0000:06:0d.0")) }),
        Case(point: .driverModuleGet, name: "GET_DEVICE_FD: module", config: base,
             prepare: { sub in let f = try groupAndContainer(sub); try sub.setContainer(f["g"]!, f["c"]!); try sub.setIOMMU(f["c"]!, 3); return f },
             operation: { sub, fd throws(Errno) in try sub.close(try sub.deviceFD(fd["g"]!, "0000:06:0d.0")) }),
    ]

    @Test func everyFaultPointHasACase() {
        let covered = Set(Self.cases.map(\.point))
        #expect(covered == Set(FaultPoint.allCases), "uncovered: \(Set(FaultPoint.allCases).subtracting(covered))")
    }

    @Test(arguments: cases)
    func injectedFailureLeavesNoTrace(_ c: Case) throws {
        for injected in [Errno.ENOMEM, .ENOSPC, .EIO] {
            let sub = makeSubsystem(c.config)
            let fds = try c.prepare(sub)
            let before = Snapshot(sub)
            sub.faults.arm(c.point, errno: injected)
            let expected = c.point == .driverModuleGet ? Errno.ENODEV : injected   // try_module_get is a bool
            #expect(throws: expected) { try c.operation(sub, fds) }
            #expect(!sub.faults.pending, "the fault point was not reached")
            #expect(Snapshot(sub) == before)
            try c.operation(sub, fds)          // the same call succeeds with no fault
            teardown(sub)
        }
    }

    @Test func nthHitFails() throws {
        let sub = makeSubsystem()
        sub.faults.arm(.containerAlloc, nth: 3, errno: .ENOMEM)
        try sub.close(try sub.open("/dev/vfio/vfio"))
        try sub.close(try sub.open("/dev/vfio/vfio"))
        #expect(throws: Errno.ENOMEM) { try sub.open("/dev/vfio/vfio") }
        try sub.close(try sub.open("/dev/vfio/vfio"))
        teardown(sub)
    }
}

extension VFIOSubsystem {
    /// Discovers a device in a new IOMMU group and binds vfio-pci; on failure removes the bus device
    /// again so the only state left is what the VFIO layer kept.
    func probePCIDeviceForFault(name: String, group: Int) throws(Errno) {
        let g: IOMMUGroup
        if let existing = iommu.group(id: group) { g = existing } else { g = try iommu.addGroup(id: group) }
        let bus: BusDevice
        if let b = iommu.device(named: name) { bus = b } else {
            bus = try iommu.addDevice(name: name)
            try iommu.addDevice(bus, to: g)
        }
        do throws(Errno) {
            try bindVFIOPCI(bus)
        } catch {
            iommu.removeDevice(bus, from: g)
            try? iommu.removeDevice(bus)
            try? iommu.removeGroup(g)
            throw error
        }
    }

    func probeEmulatedForFault(name: String) throws(Errno) {
        try probeEmulatedDevice(name: name)
    }
}
