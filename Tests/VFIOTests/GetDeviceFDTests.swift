// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VFIO

/// VFIO_GROUP_GET_DEVICE_FD (docs/ERRORS.md#pci-match, docs/ERRORS.md#get-device-fd, docs/DECISIONS.md#q3, docs/DECISIONS.md#q10).
@Suite struct GetDeviceFDTests {
    @Test func nameCopyErrors() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetDeviceFD), 0) }
        // No NUL within PAGE_SIZE: EINVAL. 4095 bytes + NUL is a valid (unknown) name: ENODEV.
        var buf = [UInt8](repeating: UInt8(ascii: "a"), count: 4097)
        buf.withUnsafeMutableBufferPointer { p in
            p[4096] = 0
            #expect(throws: Errno.EINVAL) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetDeviceFD), UInt(bitPattern: p.baseAddress)) }
            p[4095] = 0
            #expect(throws: Errno.ENODEV) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetDeviceFD), UInt(bitPattern: p.baseAddress)) }
        }
        // A name running into a page that faults (a PROT_NONE guard page this test owns, never a
        // munmap'ed hole a parallel test's mmap could refill): EFAULT.
        let m = Mapping.withGuardPage()
        memset(UnsafeMutableRawPointer(bitPattern: m.guardAddress - 6)!, 0x61, 6)
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetDeviceFD), m.guardAddress - 6) }
        // ENOMEM from the copy's allocation.
        sub.faults.arm(.nameCopy, errno: .ENOMEM)
        #expect(throws: Errno.ENOMEM) { try sub.deviceFD(g, "0000:06:0d.0") }
        teardown(sub)
    }

    @Test func lookupComesBeforeTheContainerCheck() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:99:00.0") }   // unknown name
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, "0000:06:0d.0") }   // known, no container
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:07:00.0") }   // another group's device
        let dev = try #require(sub.group(named: "26")?.devices.first)
        #expect(dev.registrationCount == 1)   // the failed open gave its reference back
        teardown(sub)
    }

    @Test func vfioPCIMatchOptionsAndVFTokens() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci")
        let token = "4a7b9e2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c"
        try sub.probePCIDevice(name: "0000:06:10.0", iommuGroupID: 30, driver: "vfio-pci", vfToken: token)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g, type: 100)
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, "0000:06:0d.0 bogus=1") }
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, "0000:06:0d.0 vf_token=xyz") }
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, "0000:06:0d.0 vf_token=\(token)") }  // none applies
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:06:0d.0x") }                   // no match
        let d = try sub.deviceFD(g, "0000:06:0d.0   ")
        try sub.close(d)
        let vf = try sub.open("/dev/vfio/30")
        try sub.containerWith(vf, type: 100)
        #expect(throws: Errno.EACCES) { try sub.deviceFD(vf, "0000:06:10.0") }
        #expect(throws: Errno.EACCES) { try sub.deviceFD(vf, "0000:06:10.0 vf_token=00000000-0000-0000-0000-000000000000") }
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(vf, "0000:06:10.0 vf_token=\(token) vf_token=\(token)") }
        let ok = try sub.deviceFD(vf, "0000:06:10.0 vf_token=\(token.uppercased())")
        try sub.close(ok)
        teardown(sub)
    }

    @Test func fdReservationFailureDropsTheRegistrationReference() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g, type: 100)
        let dev = try #require(sub.group(named: "26")?.devices.first)
        sub.faults.arm(.fdReserve, errno: .EMFILE)
        #expect(throws: Errno.EMFILE) { try sub.deviceFD(g, "0000:06:0d.0") }
        #expect(dev.registrationCount == 1)
        #expect(dev.openCount == 0)
        sub.faults.arm(.anonInodeFile, errno: .ENFILE)
        #expect(throws: Errno.ENFILE) { try sub.deviceFD(g, "0000:06:0d.0") }
        // The open was undone: open_device and close_device each ran once, counters back.
        let state = try #require(ModelPCIDriver.state(of: dev))
        #expect(state.openDeviceCalls == 1 && state.closeDeviceCalls == 1)
        #expect(dev.openCount == 0 && dev.registrationCount == 1)
        #expect(sub.group(named: "26")!.containerUserCount == 1)
        teardown(sub)
    }

    @Test func containerWithoutSetIOMMUIsEINVAL() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g, c)
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, "0000:06:0d.0") }
        teardown(sub)
    }

    @Test func unloadingDriverFailsOnlyTheFirstOpen() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g, type: 100)
        sub.pciDriver.module.unloading = true
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:06:0d.0") }
        sub.pciDriver.module.unloading = false
        let d1 = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(sub.pciDriver.module.refCount == 1)
        sub.pciDriver.module.unloading = true
        let d2 = try sub.deviceFD(g, "0000:06:0d.0")   // not a first open
        sub.pciDriver.module.unloading = false
        try sub.close(d1); try sub.close(d2)
        #expect(sub.pciDriver.module.refCount == 0)
        teardown(sub)
    }

    @Test func manyFDsPerDeviceOnlyFirstAndLastReachTheDriver() throws {
        let sub = makeSubsystem()
        let backend = TestBackend(withRegistration: true)
        try sub.registerIOMMUDriver(backend)
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g, type: 100)
        let dev = try #require(sub.group(named: "26")?.devices.first)
        let fds = try (0..<5).map { _ in try sub.deviceFD(g, "0000:06:0d.0") }
        #expect(Set(fds).count == 5)
        #expect(dev.openCount == 5)
        #expect(dev.registrationCount == 6)
        #expect(backend.registered.count == 1)                      // register_device once
        #expect(sub.group(named: "26")!.containerUserCount == 2)    // one user per open device
        let state = try #require(ModelPCIDriver.state(of: dev))
        for fd in fds { try sub.close(fd) }
        #expect(state.openDeviceCalls == 1 && state.closeDeviceCalls == 1)
        #expect(backend.registered.isEmpty)
        #expect(dev.openCount == 0 && dev.registrationCount == 1)
        teardown(sub)
    }

    @Test func lookupWithMatchOpsSeesTheNewestFirst() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        let group = try sub.iommu.addGroup(id: 40)
        let seen = Locked<[String]>([])
        var ops = VFIODeviceOps(name: "greedy")
        ops.match = { dev, name in seen.withLock { $0.append(dev.busDevice.name) }; return name == "any" ? 1 : 0 }
        var made: [VFIODevice] = []
        for n in ["a", "b", "c"] {
            let bus = try sub.iommu.addDevice(name: n)
            try sub.iommu.addDevice(bus, to: group)
            let d = try sub.allocDevice(bus, ops: ops)
            try sub.registerGroupDevice(d)
            made.append(d)
        }
        let g = try sub.open("/dev/vfio/40")
        try sub.containerWith(g, type: 100)
        let fd = try sub.deviceFD(g, "any")
        #expect(try sub.withFile(fd) { $0.device } === made[2])   // c registered last
        #expect(seen.withLock { $0 } == ["c"])
        seen.withLock { $0.removeAll() }
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "a") }    // match ops decide, not names
        #expect(seen.withLock { $0 } == ["c", "b", "a"])
        try sub.close(fd)
        for d in made { sub.unregisterGroupDevice(d); d.put() }
        teardown(sub)
    }

    /// vfio-pci's match answers 0 to every name without options but the device's own, so a group of
    /// vfio-pci devices finds such a name by its index; a name with options, or a group holding a
    /// device with any other match op, is still walked newest first (the order those can tell).
    @Test func vfioPCINamesAreIndexedUnlessAnotherMatchOpCanTell() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        let names = (0..<12).map { "0000:50:0\(String($0, radix: 16)).0" }
        for n in names { try sub.probePCIDevice(name: n, iommuGroupID: 50, driver: "vfio-pci") }
        let g = try sub.open("/dev/vfio/50")
        try sub.containerWith(g, type: 100)
        for n in [names[0], names[11], names[5]] {
            let fd = try sub.deviceFD(g, n)
            #expect(try sub.withFile(fd) { $0.device?.busDevice.name } == n)
            try sub.close(fd)
        }
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, names[0] + "0") }        // a longer name
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:50:0") }           // a prefix
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, names[3] + " vf_token=4a7b9e2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c") }
        let spaced = try sub.deviceFD(g, names[3] + "  ")                             // options path
        #expect(try sub.withFile(spaced) { $0.device?.busDevice.name } == names[3])
        try sub.close(spaced)
        // A newer device whose match op claims names[0]: the kernel's newest-first walk reaches it
        // before the vfio-pci device called names[0], and so must the model.
        var ops = VFIODeviceOps(name: "claims-all")
        ops.match = { _, name in name == names[0] ? 1 : 0 }
        let bus = try sub.iommu.addDevice(name: "claimer")
        try sub.iommu.addDevice(bus, to: try #require(sub.iommu.group(id: 50)))
        let claimer = try sub.allocDevice(bus, ops: ops)
        try sub.registerGroupDevice(claimer)
        let fd = try sub.deviceFD(g, names[0])
        #expect(try sub.withFile(fd) { $0.device } === claimer)
        try sub.close(fd)
        sub.unregisterGroupDevice(claimer); claimer.put()
        // Gone again: the index answers once more.
        let again = try sub.deviceFD(g, names[0])
        #expect(try sub.withFile(again) { $0.device?.busDevice.name } == names[0])
        try sub.close(again)
        try sub.close(g)
        teardown(sub)
    }

    @Test func matchOpErrorStopsTheWalk() throws {
        let sub = makeSubsystem()
        let group = try sub.iommu.addGroup(id: 41)
        var ops = VFIODeviceOps(name: "picky")
        ops.match = { _, _ in -Errno.EACCES.rawValue }
        let bus = try sub.iommu.addDevice(name: "p")
        try sub.iommu.addDevice(bus, to: group)
        let d = try sub.allocDevice(bus, ops: ops)
        try sub.registerGroupDevice(d)
        let g = try sub.open("/dev/vfio/41")
        #expect(throws: Errno.EACCES) { try sub.deviceFD(g, "p") }
        try sub.close(g)
        sub.unregisterGroupDevice(d); d.put()
        teardown(sub)
    }

    @Test func openDeviceErrorUnwindsTheFirstOpen() throws {
        let sub = makeSubsystem()
        let backend = TestBackend(withRegistration: true)
        try sub.registerIOMMUDriver(backend)
        let group = try sub.iommu.addGroup(id: 42)
        var ops = VFIODeviceOps(name: "failing", module: DriverModule(name: "failing"))
        ops.openDevice = { _ throws(Errno) in throw .EIO }
        let bus = try sub.iommu.addDevice(name: "f")
        try sub.iommu.addDevice(bus, to: group)
        let d = try sub.allocDevice(bus, ops: ops)
        try sub.registerGroupDevice(d)
        let g = try sub.open("/dev/vfio/42")
        try sub.containerWith(g, type: 100)
        #expect(throws: Errno.EIO) { try sub.deviceFD(g, "f") }
        #expect(d.openCount == 0)
        #expect(backend.registered.isEmpty)
        #expect(ops.module!.refCount == 0)
        #expect(sub.group(named: "42")!.containerUserCount == 1)
        try sub.close(g)
        sub.unregisterGroupDevice(d); d.put()
        teardown(sub)
    }
}
