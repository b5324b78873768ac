// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// The container file (docs/ERRORS.md#state-container, docs/ERRORS.md#container): API version, CHECK_EXTENSION, SET_IOMMU, passthrough.
@Suite struct ContainerTests {
    @Test func apiVersionAndEmptyContainer() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let c = try sub.open("/dev/vfio/vfio")
        #expect(try sub.ioctl(c, UInt(VFIOIoctl.getAPIVersion)) == 0)
        // EMPTY: SET_IOMMU EINVAL, passthrough EINVAL (not ENOTTY, docs/DECISIONS.md#q4).
        #expect(throws: Errno.EINVAL) { try sub.setIOMMU(c, VFIOExtension.type1IOMMU) }
        #expect(throws: Errno.EINVAL) { try sub.ioctl(c, UInt(VFIOIoctl.iommuGetInfo), 0) }
        #expect(throws: Errno.EINVAL) { try sub.ioctl(c, 0xdead, 0) }
        teardown(sub)
    }

    @Test func checkExtensionPollsBackendsAndNoIOMMUParamIsLive() throws {
        let sub = makeSubsystem()
        let c = try sub.open("/dev/vfio/vfio")
        #expect(try sub.checkExtension(c, VFIOExtension.noIOMMU) == 0)
        sub.enableUnsafeNoIOMMUMode = true    // a module parameter, writable at run time
        #expect(try sub.checkExtension(c, VFIOExtension.noIOMMU) == 1)
        sub.enableUnsafeNoIOMMUMode = false
        #expect(try sub.checkExtension(c, VFIOExtension.noIOMMU) == 0)
        #expect(try sub.checkExtension(c, 9999) == 0)
        teardown(sub)
    }

    @Test func withoutNoIOMMUConfigThereIsNoBackendAndNoParam() throws {
        let sub = makeSubsystem(VFIOConfig(vfioNoIOMMU: false, enableUnsafeNoIOMMUMode: true))
        #expect(!sub.enableUnsafeNoIOMMUMode)
        let c = try sub.open("/dev/vfio/vfio")
        #expect(try sub.checkExtension(c, VFIOExtension.noIOMMU) == 0)
        // A device without an IOMMU group cannot register: EINVAL, no node.
        #expect(throws: Errno.EINVAL) { try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci") }
        #expect(sub.allGroups.isEmpty)
        teardown(sub)
    }

    @Test func setIOMMUSelectsBackendAndIsOneShot() throws {
        let sub = makeSubsystem()
        let backend = TestBackend()
        let reg = try sub.registerIOMMUDriver(backend)
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g, c)
        #expect(try sub.checkExtension(c, 100) == 1)
        #expect(throws: Errno.ENODEV) { try sub.setIOMMU(c, 50) }      // nobody claims it
        try sub.setIOMMU(c, 100)
        #expect(backend.attached.count == 1)
        #expect(reg.moduleRefCount == 1)
        #expect(throws: Errno.EINVAL) { try sub.setIOMMU(c, 100) }     // already set
        #expect(try sub.ioctl(c, 0x3BFF) == 42)                        // passthrough
        #expect(throws: Errno.ENOTTY) { try sub.ioctl(c, 0x3BFE) }
        // The last group leaving deprivileges the container.
        try sub.unsetContainer(g)
        #expect(backend.released == 1)
        #expect(reg.moduleRefCount == 0)
        #expect(throws: Errno.EINVAL) { try sub.ioctl(c, 0x3BFF) }
        teardown(sub)
    }

    @Test func setIOMMUOpenFailureIsRememberedAndAttachFailureUnwinds() throws {
        let sub = makeSubsystem()
        let backend = TestBackend()
        let reg = try sub.registerIOMMUDriver(backend)
        try populate(sub)
        let g26 = try sub.open("/dev/vfio/26")
        let g28 = try sub.open("/dev/vfio/28")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g26, c)
        try sub.setContainer(g28, c)
        backend.failOpen = .ENOMEM
        #expect(throws: Errno.ENOMEM) { try sub.setIOMMU(c, 100) }
        backend.failOpen = nil
        backend.failAttachAfter = 1
        #expect(throws: Errno.EIO) { try sub.setIOMMU(c, 100) }
        #expect(backend.attached.isEmpty)          // the first group's attach was undone
        #expect(backend.released == 1)
        #expect(reg.moduleRefCount == 0)
        backend.failAttachAfter = nil
        try sub.setIOMMU(c, 100)
        #expect(backend.attached.count == 2)
        // A group joining a container with a backend: attach failure releases the DMA claim.
        try sub.unsetContainer(g28)
        backend.failAttachAfter = 1
        #expect(throws: Errno.EIO) { try sub.setContainer(g28, c) }
        #expect(sub.iommu.group(id: 28)!.dmaOwnerCount == 0)
        teardown(sub)
    }

    @Test func unloadingBackendIsSkipped() throws {
        let sub = makeSubsystem()
        let backend = TestBackend()
        let reg = try sub.registerIOMMUDriver(backend)
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g, c)
        reg.unloading = true
        #expect(try sub.checkExtension(c, 100) == 0)
        #expect(throws: Errno.ENODEV) { try sub.setIOMMU(c, 100) }
        reg.unloading = false
        #expect(throws: Errno.EINVAL) { try sub.registerIOMMUDriver(backend) }  // duplicate ops
        teardown(sub)
    }

    @Test func noIOMMUContainer() throws {
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true))
        try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci")
        let group = try #require(sub.allGroups.first)
        let g = try sub.open(group.path)
        let c = try sub.open("/dev/vfio/vfio")
        #expect(try sub.checkExtension(c, VFIOExtension.type1IOMMU) == 1)
        try sub.setContainer(g, c)
        // With a no-IOMMU group attached, only the no-IOMMU backend is polled.
        #expect(try sub.checkExtension(c, VFIOExtension.type1IOMMU) == 0)
        #expect(try sub.checkExtension(c, VFIOExtension.noIOMMU) == 1)
        #expect(throws: Errno.ENODEV) { try sub.setIOMMU(c, VFIOExtension.type1IOMMU) }
        sub.rawIOPolicy = .denied
        #expect(throws: Errno.EPERM) { try sub.setIOMMU(c, VFIOExtension.noIOMMU) }   // backend open
        sub.rawIOPolicy = .granted
        try sub.setIOMMU(c, VFIOExtension.noIOMMU)
        // The backend has no other ioctls.
        #expect(throws: Errno.ENOTTY) { try sub.ioctl(c, UInt(VFIOIoctl.iommuMapDMA), 0) }
        // Device open: EPERM without RAWIO (container use), then success.
        sub.rawIOPolicy = .denied
        #expect(throws: Errno.EPERM) { try sub.deviceFD(g, "0000:09:00.0") }
        sub.rawIOPolicy = .granted
        let d = try sub.deviceFD(g, "0000:09:00.0")
        #expect(sub.log.messages.contains { $0.text.contains("vfio-noiommu device opened by user") })
        try sub.close(d)
        teardown(sub)
    }

    @Test func noIOMMUBackendOpenRejectsOtherTypes() throws {
        let b = NoIOMMUBackend()
        let ctx = BackendContext(capableSysRawIO: { true }, unsafeNoIOMMUMode: true)
        #expect(throws: Errno.EINVAL) { try b.open(arg: VFIOExtension.type1IOMMU, context: ctx) }
        #expect(try b.ioctl(nil, cmd: VFIOIoctl.checkExtension, arg: VFIOExtension.noIOMMU, context: ctx) == 1)
        #expect(try b.ioctl(nil, cmd: VFIOIoctl.checkExtension, arg: VFIOExtension.type1IOMMU, context: ctx) == 0)
    }

    @Test func containerLivesWhileAGroupHoldsIt() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g, c)
        try sub.setIOMMU(c, 100)
        try sub.close(c)
        #expect(sub.census.counts.containers == 1)
        let group = try #require(sub.group(named: "26"))
        #expect(group.hasContainer)
        try sub.unsetContainer(g)
        #expect(sub.census.counts.containers == 0)
        teardown(sub)
    }
}
