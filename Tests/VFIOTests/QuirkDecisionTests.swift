// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import VFIO

/// docs/DECISIONS.md: each quirk decision, and the state-table cells not covered elsewhere.
@Suite struct QuirkDecisionTests {
    @Test func q9CloseAtOpenCountZeroWarnsOnceAndChangesNothing() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let dev = devs["0000:06:0d.0"]!
        let state = try #require(ModelPCIDriver.state(of: dev))
        for _ in 0..<3 { dev.devSet!.lock.withLock { dev.close() } }
        #expect(dev.openCount == 0)                      // no unsigned wrap
        #expect(state.closeDeviceCalls == 0)
        // A later open is a real first open (the spurious close granted nothing).
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(state.openDeviceCalls == 1 && dev.openCount == 1)
        try sub.close(d)
        teardown(sub, expectWarnings: 1)
    }

    @Test func q5ContainerNoIOMMUIsStickyButOnlyMattersWithGroups() throws {
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true))
        try populate(sub)
        let n = try #require(try sub.probePCIDevice(name: "n", iommuGroupID: nil, driver: "vfio-pci"))
        let gn = try sub.open(n.vfioGroup!.path)
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(gn, c)
        try sub.unsetContainer(gn)
        let container = try #require(try sub.withFile(c) { $0.container })
        #expect(container.groupLock.withShared { container.noiommu })   // sticky
        // Empty: polls every backend; a real group may join.
        #expect(try sub.checkExtension(c, VFIOExtension.type1IOMMU) == 1)
        let g26 = try sub.open("/dev/vfio/26")
        try sub.setContainer(g26, c)
        #expect(try sub.checkExtension(c, VFIOExtension.noIOMMU) == 0)
        teardown(sub)
    }

    @Test func iommufdAttachmentSurvivesRemoval() throws {
        // docs/ERRORS.md#state-attachment last row: "stays IOMMUFD+REMOVED"; group->iommufd is not cleared by removal.
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let i = try sub.open("/dev/iommu")
        try sub.setContainer(g, i)
        let group = try #require(sub.group(named: "26"))
        sub.removeVFIODevice(devs["0000:06:0d.0"]!)
        #expect(group.isRemoved && group.hasIOMMUFD)
        #expect(throws: Errno.ENODEV) { try sub.status(g) }
        #expect(throws: Errno.EINVAL) { try sub.setContainer(g, i) }   // already set beats removed
        try sub.unsetContainer(g)                                       // still allowed
        #expect(!group.hasIOMMUFD)
        teardown(sub)
    }

    @Test func q6CreateGroupFailureLeaksNothing() throws {
        let sub = makeSubsystem()
        let ig = try sub.iommu.addGroup(id: 7)
        let bus = try sub.iommu.addDevice(name: "q6")
        try sub.iommu.addDevice(bus, to: ig)
        let refs = ig.refs.load(ordering: .relaxed)
        sub.faults.arm(.groupCdevAdd, errno: .ENOMEM)
        #expect(throws: Errno.ENOMEM) { try sub.bindVFIOPCI(bus) }
        #expect(ig.refs.load(ordering: .relaxed) == refs)   // the kernel leaks one here; we don't
        #expect(sub.liveGroupCount == 0)
        teardown(sub)
    }

    @Test func q10AndContainerUsersTrackOpenDevicesNotFDs() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/28")
        try sub.containerWith(g)
        let a1 = try sub.deviceFD(g, "0000:07:00.0"), a2 = try sub.deviceFD(g, "0000:07:00.0")
        let b = try sub.deviceFD(g, "0000:07:00.1")
        #expect(sub.group(named: "28")!.containerUserCount == 3)   // 1 + two open devices
        try sub.close(a1)
        #expect(sub.group(named: "28")!.containerUserCount == 3)
        try sub.close(a2); try sub.close(b)
        #expect(sub.group(named: "28")!.containerUserCount == 1)
        teardown(sub)
    }
}
