// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// The iommufd compat path (docs/ERRORS.md#iommufd, docs/DECISIONS.md#q1 decision): SET_CONTAINER with /dev/iommu, binds, no-IOMMU.
@Suite struct IOMMUFDTests {
    @Test func setContainerWithIOMMUFDBindsAtFirstOpen() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let ictx = try sub.open("/dev/iommu")
        try sub.setContainer(g, ictx)
        #expect(try sub.status(g) == VFIOGroupFlags.viable | VFIOGroupFlags.containerSet)
        let ig = try #require(sub.iommu.group(id: 26))
        #expect(ig.dmaOwnerCount == 0)                     // iommufd claims at bind, not attach
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(ig.dmaOwnerCount == 1)
        #expect(devs["0000:06:0d.0"]!.iommufdContext != nil)
        #expect(throws: Errno.EINVAL) { try sub.setContainer(g, ictx) }
        try sub.close(d)
        #expect(ig.dmaOwnerCount == 0)
        #expect(devs["0000:06:0d.0"]!.iommufdContext == nil)
        try sub.unsetContainer(g)
        teardown(sub)
    }

    @Test func unsetWithOpenDevicesSucceedsAndLastCloseUsesTheRecordedContext() throws {
        // docs/DECISIONS.md#q1 decision: the device remembers the context it was opened through.
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let ictx = try sub.open("/dev/iommu")
        try sub.setContainer(g, ictx)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        try sub.unsetContainer(g)                          // v6.3: 0 even with devices open
        #expect(try sub.status(g) == 0)                    // still iommufd-bound: not viable
        // A legacy container now: EPERM, the device still holds DMA ownership for the ctx.
        let c = try sub.open("/dev/vfio/vfio")
        #expect(throws: Errno.EPERM) { try sub.setContainer(g, c) }
        try sub.close(ictx)
        try sub.close(d)                                   // unbinds: no WARN, nothing leaks
        #expect(try sub.status(g) == VFIOGroupFlags.viable)
        #expect(devs["0000:06:0d.0"]!.iommufdContext == nil)
        try sub.setContainer(g, c)
        teardown(sub)
    }

    @Test func groupReleaseInIOMMUFDModeWithOpenDevice() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let ictx = try sub.open("/dev/iommu")
        try sub.setContainer(g, ictx)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        try sub.close(g)                                   // nothing pins the group file in iommufd mode
        #expect(!sub.group(named: "26")!.isOpen)
        try sub.close(d)
        #expect(sub.iommu.group(id: 26)!.dmaOwnerCount == 0)
        teardown(sub)
    }

    @Test func anotherContextsBindIsEPERMTheSameContextShares() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/28")
        let ctx1 = try sub.open("/dev/iommu")
        let ctx2 = try sub.open("/dev/iommu")
        try sub.setContainer(g, ctx1)
        let a = try sub.deviceFD(g, "0000:07:00.0")
        let b = try sub.deviceFD(g, "0000:07:00.1")       // same ctx: shared ownership
        #expect(sub.iommu.group(id: 28)!.dmaOwnerCount == 2)
        try sub.close(b)
        try sub.unsetContainer(g)
        try sub.setContainer(g, ctx2)                      // succeeds even while a device is bound
        #expect(throws: Errno.EPERM) { try sub.deviceFD(g, "0000:07:00.1") }
        try sub.close(a)
        let b2 = try sub.deviceFD(g, "0000:07:00.1")
        try sub.close(b2)
        teardown(sub)
    }

    @Test func clearedCompatIOASGivesENODEVAtOpen() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let ictx = try sub.open("/dev/iommu")
        try sub.setContainer(g, ictx)
        let ctx = try #require(try sub.withFile(ictx) { $0.iommufdContext })
        ctx.clearCompatIOAS()
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:06:0d.0") }
        #expect(sub.iommu.group(id: 26)!.dmaOwnerCount == 0)   // the bind was undone
        teardown(sub)
    }

    @Test func compatIoctlsOnTheIOMMUFD() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let ictx = try sub.open("/dev/iommu")
        #expect(try sub.ioctl(ictx, UInt(VFIOIoctl.getAPIVersion)) == 0)
        #expect(try sub.checkExtension(ictx, VFIOExtension.type1v2IOMMU) == 1)
        #expect(try sub.checkExtension(ictx, VFIOExtension.unmapAll) == 1)
        #expect(try sub.checkExtension(ictx, VFIOExtension.spaprTCEIOMMU) == 0)
        #expect(throws: Errno.ENODEV) { try sub.checkExtension(ictx, VFIOExtension.dmaCCIOMMU) }
        #expect(throws: Errno.ENODEV) { try sub.setIOMMU(ictx, VFIOExtension.type1v2IOMMU) }
        #expect(throws: Errno.EINVAL) { try sub.setIOMMU(ictx, VFIOExtension.spaprTCEIOMMU) }
        let g = try sub.open("/dev/vfio/26")
        try sub.setContainer(g, ictx)
        #expect(try sub.checkExtension(ictx, VFIOExtension.dmaCCIOMMU) == 1)
        try sub.setIOMMU(ictx, VFIOExtension.type1v2IOMMU)
        try sub.setIOMMU(ictx, VFIOExtension.type1IOMMU)   // not one-shot
        #expect(throws: Errno.ENOTTY) { try sub.ioctl(ictx, UInt(VFIOIoctl.iommuDirtyPages)) }
        // IOMMU_VFIO_IOAS: GET, CLEAR, GET → ENODEV, SET of an unknown id → ENOENT.
        struct VFIOIOAS { var size: UInt32 = 12; var id: UInt32 = 0; var op: UInt16 = 0; var reserved: UInt16 = 0 }
        var cmd = VFIOIOAS()
        _ = try withUnsafeMutablePointer(to: &cmd) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuVFIOIOAS), UInt(bitPattern: p)) }
        #expect(cmd.id != 0)
        var clear = VFIOIOAS(op: 2)
        _ = try withUnsafeMutablePointer(to: &clear) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuVFIOIOAS), UInt(bitPattern: p)) }
        var get = VFIOIOAS()
        #expect(throws: Errno.ENODEV) { try withUnsafeMutablePointer(to: &get) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuVFIOIOAS), UInt(bitPattern: p)) } }
        var set = VFIOIOAS(id: 999, op: 1)
        #expect(throws: Errno.ENOENT) { try withUnsafeMutablePointer(to: &set) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuVFIOIOAS), UInt(bitPattern: p)) } }
        set = VFIOIOAS(id: cmd.id, op: 1)
        _ = try withUnsafeMutablePointer(to: &set) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuVFIOIOAS), UInt(bitPattern: p)) }
        // IOMMU_DESTROY of the compat IOAS with a device attached: EBUSY.
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        var destroy: (UInt32, UInt32) = (8, cmd.id)
        #expect(throws: Errno.EBUSY) { try withUnsafeMutablePointer(to: &destroy) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuDestroy), UInt(bitPattern: p)) } }
        try sub.close(d)
        _ = try withUnsafeMutablePointer(to: &destroy) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuDestroy), UInt(bitPattern: p)) }
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:06:0d.0") }
        teardown(sub)
    }

    @Test func noIOMMUGroupWithIOMMUFDCallsOpenDeviceAndBalances() throws {
        // docs/DECISIONS.md / 6.17's b25e271b3779: v6.3 is correct, the first open proceeds to open_device.
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true, unregisterRequestInterval: .milliseconds(20)))
        let dev = try #require(try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci"))
        let group = try #require(dev.vfioGroup)
        let g = try sub.open(group.path)
        let ictx = try sub.open("/dev/iommu")
        try sub.setContainer(g, ictx)
        let ctx = try #require(try sub.withFile(ictx) { $0.iommufdContext })
        #expect(ctx.isNoIOMMUMode && !ctx.hasCompatIOAS)
        sub.rawIOPolicy = .denied
        #expect(throws: Errno.EPERM) { try sub.deviceFD(g, "0000:09:00.0") }
        sub.rawIOPolicy = .granted
        let d = try sub.deviceFD(g, "0000:09:00.0")
        let state = try #require(ModelPCIDriver.state(of: dev))
        #expect(state.openDeviceCalls == 1 && dev.openCount == 1)
        try sub.close(d)
        #expect(state.closeDeviceCalls == 1 && dev.openCount == 0)
        // A compat IOAS on the context (the user asked for translation): EPERM.
        try sub.unsetContainer(g)
        let ictx2 = try sub.open("/dev/iommu")
        let g26 = try sub.probePCIDevice(name: "0000:0a:00.0", iommuGroupID: 60, driver: "vfio-pci")!.vfioGroup!
        let gr = try sub.open(g26.path)
        try sub.setContainer(gr, ictx2)                   // creates the compat IOAS
        #expect(throws: Errno.EINVAL) { try sub.setContainer(g, ictx2) }  // no-iommu/iommu mix
        try sub.unsetContainer(gr)
        let ctx2 = try #require(try sub.withFile(ictx2) { $0.iommufdContext })
        #expect(ctx2.hasCompatIOAS)
        // And the other order: a no-IOMMU context refuses a real group.
        try sub.setContainer(g, ictx)
        #expect(throws: Errno.EINVAL) { try sub.setContainer(gr, ictx) }
        teardown(sub)
    }

    @Test func noIOMMUBindRefusedWhenContextHasCompatIOAS() throws {
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true))
        let dev = try #require(try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci"))
        let g = try sub.open(dev.vfioGroup!.path)
        let ictx = try sub.open("/dev/iommu")
        try sub.setContainer(g, ictx)
        // Give the no-IOMMU context a compat IOAS behind its back (IOAS_ALLOC + SET_COMPAT).
        var alloc: (UInt32, UInt32, UInt32) = (12, 0, 0)
        _ = try withUnsafeMutablePointer(to: &alloc) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, 0x3B81, UInt(bitPattern: p)) }
        struct VFIOIOAS { var size: UInt32 = 12; var id: UInt32 = 0; var op: UInt16 = 1; var reserved: UInt16 = 0 }
        var set = VFIOIOAS(id: alloc.2)
        _ = try withUnsafeMutablePointer(to: &set) { (p) throws(Errno) -> Int in try sub.ioctl(ictx, UInt(VFIOIoctl.iommuVFIOIOAS), UInt(bitPattern: p)) }
        #expect(throws: Errno.EPERM) { try sub.deviceFD(g, "0000:09:00.0") }
        teardown(sub)
    }

    @Test func withoutIOMMUFDConfigThereIsNoNode() throws {
        let sub = makeSubsystem(VFIOConfig(iommufd: false))
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/iommu") }
        teardown(sub)
    }

    @Test func emulatedDeviceThroughIOMMUFDTakesAnAccess() throws {
        let sub = makeSubsystem()
        let mdev = try sub.probeEmulatedDevice(name: "mdev-0")
        let g = try sub.open(mdev.vfioGroup!.path)
        let ictx = try sub.open("/dev/iommu")
        try sub.setContainer(g, ictx)
        let d = try sub.deviceFD(g, "mdev-0")
        #expect(mdev.iommufdContext != nil)
        try sub.unsetContainer(g)
        try sub.close(ictx)
        #expect(sub.census.counts.iommufdContexts == 1)   // the bind holds the context
        try sub.close(d)
        #expect(sub.census.counts.iommufdContexts == 0)
        teardown(sub)
    }
}
