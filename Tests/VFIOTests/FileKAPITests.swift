// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
import Testing
@testable import VFIO

/// The exported file kAPI (docs/ERRORS.md#kapi, docs/DECISIONS.md#q8, 13a) and the uapi numbers.
@Suite struct FileKAPITests {
    @Test func isGroupOnlyForGroupFiles() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.containerWith(g)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        let i = try sub.open("/dev/iommu")
        #expect(try sub.withFile(g) { $0.isGroup })
        #expect(try !sub.withFile(c) { $0.isGroup })
        #expect(try !sub.withFile(d) { $0.isGroup })
        #expect(try !sub.withFile(i) { $0.isGroup })
        #expect(try sub.withFile(d) { $0.device?.busDevice.name } == "0000:06:0d.0")
        #expect(try sub.withFile(g) { $0.device } == nil)
        teardown(sub)
    }

    @Test func enforcedCoherent() throws {
        let sub = makeSubsystem()
        try populate(sub)
        try sub.probePCIDevice(name: "0000:08:00.0", iommuGroupID: 31, driver: "vfio-pci", enforceCacheCoherency: false)
        let mdev = try sub.probeEmulatedDevice(name: "mdev-0")
        let c = try sub.open("/dev/vfio/vfio")
        #expect(try sub.withFile(c) { $0.enforcedCoherent })          // non-group file: true (docs/DECISIONS.md#q8)
        let foreign = sub.makeForeignFile()
        #expect(foreign.enforcedCoherent)
        foreign.put()
        let g26 = try sub.openFile("/dev/vfio/26")
        let g31 = try sub.openFile("/dev/vfio/31")
        let gm = try sub.openFile(mdev.vfioGroup!.path)
        #expect(g26.enforcedCoherent)
        #expect(!g31.enforcedCoherent)
        #expect(!gm.enforcedCoherent)                                 // fake groups cannot enforce
        // An emptied group (removed while open) answers true.
        sub.removeVFIODevice(sub.group(named: "31")!.devices[0])
        #expect(g31.enforcedCoherent)
        for f in [g26, g31, gm] { sub.fput(f) }
        teardown(sub)
    }

    @Test func hasDevAcrossGroups() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g26 = try sub.openFile("/dev/vfio/26")
        let g28 = try sub.openFile("/dev/vfio/28")
        #expect(g26.hasDevice(devs["0000:06:0d.0"]!))
        #expect(!g26.hasDevice(devs["0000:07:00.0"]!))
        #expect(g28.hasDevice(devs["0000:07:00.0"]!) && g28.hasDevice(devs["0000:07:00.1"]!))
        let c = try sub.openFile("/dev/vfio/vfio")
        #expect(!c.hasDevice(devs["0000:06:0d.0"]!))
        for f in [g26, g28, c] { sub.fput(f) }
        teardown(sub)
    }

    @Test func setKVMOnANonGroupFileIsIgnored() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let c = try sub.openFile("/dev/vfio/vfio")
        let vm = FakeVM()
        c.setKVM(vm.pointer)
        #expect(sub.allGroups.allSatisfy { $0.kvmPointer == nil })
        sub.fput(c)
        teardown(sub)
    }

    @Test func iommuGroupIsNullUnlessSPAPR() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.openFile("/dev/vfio/26")
        #expect(g.iommuGroup() == nil)
        sub.fput(g)
        teardown(sub)

        let spapr = makeSubsystem(VFIOConfig(spaprTCEIOMMU: true))
        let devs = try populate(spapr)
        let f = try spapr.openFile("/dev/vfio/26")
        let ig = try #require(f.iommuGroup())
        #expect(ig.id == 26)
        let before = ig.refs.load(ordering: .relaxed)
        ig.put()
        #expect(ig.refs.load(ordering: .relaxed) == before - 1)
        spapr.removeVFIODevice(devs["0000:06:0d.0"]!)
        #expect(f.iommuGroup() == nil)                  // unregistered: NULL
        let c = try spapr.openFile("/dev/vfio/vfio")
        #expect(c.iommuGroup() == nil)
        spapr.fput(c); spapr.fput(f)
        teardown(spapr)
    }

    /// vfio_device_has_container(): true exactly while the device's group is attached to a legacy
    /// container (not an iommufd).
    @Test func deviceHasContainerFollowsTheGroupsAttachment() throws {
        let sub = makeSubsystem()
        let devices = try populate(sub)
        let dev = try #require(devices["0000:06:0d.0"])
        let g = try sub.open("/dev/vfio/26")
        #expect(!dev.hasContainer)
        let c = try sub.containerWith(g)
        #expect(dev.hasContainer)
        _ = try sub.ioctl(g, UInt(VFIOIoctl.groupUnsetContainer))
        #expect(!dev.hasContainer)
        var ictx = try sub.open("/dev/iommu")
        _ = try withUnsafePointer(to: &ictx) { (p) throws(Errno) -> Int in
            try sub.ioctl(g, UInt(VFIOIoctl.groupSetContainer), UInt(bitPattern: p))
        }
        #expect(!dev.hasContainer)
        try sub.close(g); try sub.close(c); try sub.close(ictx)
        teardown(sub)
    }

    /// The ioctl numbers come from the system header through the shim (one source): each is a VFIO
    /// `_IO(';', base + n)` (no size or direction bits) at the offset the uAPI gives it, and the
    /// one table names each for the files it is issued on.
    @Test func uapiNumbersFollowTheKernelEncoding() {
        let base = VFIOIoctl.getAPIVersion
        #expect(base == 0x3B64)                                   // _IO(';', 100)
        let offsets: [(UInt32, UInt32, FileKind, String)] = [
            (VFIOIoctl.checkExtension, 1, .container, "VFIO_CHECK_EXTENSION"),
            (VFIOIoctl.setIOMMU, 2, .container, "VFIO_SET_IOMMU"),
            (VFIOIoctl.groupGetStatus, 3, .group, "VFIO_GROUP_GET_STATUS"),
            (VFIOIoctl.groupSetContainer, 4, .group, "VFIO_GROUP_SET_CONTAINER"),
            (VFIOIoctl.groupUnsetContainer, 5, .group, "VFIO_GROUP_UNSET_CONTAINER"),
            (VFIOIoctl.groupGetDeviceFD, 6, .group, "VFIO_GROUP_GET_DEVICE_FD"),
            (VFIOIoctl.deviceGetInfo, 7, .device, "VFIO_DEVICE_GET_INFO"),
            (VFIOIoctl.deviceGetRegionInfo, 8, .device, "VFIO_DEVICE_GET_REGION_INFO"),
            (VFIOIoctl.deviceGetIRQInfo, 9, .device, "VFIO_DEVICE_GET_IRQ_INFO"),
            (VFIOIoctl.deviceSetIRQs, 10, .device, "VFIO_DEVICE_SET_IRQS"),
            (VFIOIoctl.deviceReset, 11, .device, "VFIO_DEVICE_RESET"),
            (VFIOIoctl.iommuGetInfo, 12, .container, "VFIO_IOMMU_GET_INFO"),
            (VFIOIoctl.iommuMapDMA, 13, .container, "VFIO_IOMMU_MAP_DMA"),
            (VFIOIoctl.iommuUnmapDMA, 14, .container, "VFIO_IOMMU_UNMAP_DMA"),
            (VFIOIoctl.iommuDirtyPages, 17, .container, "VFIO_IOMMU_DIRTY_PAGES"),
            (VFIOIoctl.deviceFeature, 17, .device, "VFIO_DEVICE_FEATURE"),
            (VFIOIoctl.iommuDestroy, 0x80 - 100, .iommufd, "IOMMU_DESTROY"),
            (VFIOIoctl.iommuIOASAlloc, 0x81 - 100, .iommufd, "IOMMU_IOAS_ALLOC"),
            (VFIOIoctl.iommuVFIOIOAS, 0x88 - 100, .iommufd, "IOMMU_VFIO_IOAS"),
        ]
        for (number, offset, kind, name) in offsets {
            #expect(number == base + offset, "\(name)")
            #expect(IoctlDecoder.name(kind, number) == name)
        }
        // One row per (file kind, number): a second would never be reached.
        for kind in [FileKind.group, .container, .iommufd, .device] {
            let numbers = IoctlTable.rows.filter { $0.files?.contains(kind) ?? true }.map(\.number)
            #expect(Set(numbers).count == numbers.count, "\(kind)")
        }
        for row in IoctlTable.rows {
            #expect(row.number >> 8 == 0x3B && row.number >> 16 == 0, "\(row.name) is not _IO(';', n)")
        }
        #expect(vfioAPIVersion == 0)
        #expect(VFIOGroupFlags.viable == 1 && VFIOGroupFlags.containerSet == 2)
        #expect(VFIOExtension.type1v2IOMMU == 3 && VFIOExtension.noIOMMU == 8)
        #expect(MemoryLayout<VFIOGroupStatus>.size == 8)
    }

    @Test func deviceFileOps() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        // DEVICE_GET_INFO through the driver's ioctl.
        var info: (UInt32, UInt32, UInt32, UInt32) = (16, 0, 0, 0)
        _ = try withUnsafeMutablePointer(to: &info) { (p) throws(Errno) -> Int in try sub.ioctl(d, UInt(VFIOIoctl.deviceGetInfo), UInt(bitPattern: p)) }
        #expect(info.2 == 9 && info.3 == 5)
        // VFIO_DEVICE_FEATURE: EFAULT, EINVAL (argsz, flags, GET|SET), ENOTTY (migration), EINVAL (no op).
        #expect(throws: Errno.EFAULT) { try sub.ioctl(d, UInt(VFIOIoctl.deviceFeature), 0) }
        for (argsz, flags, want) in [(UInt32(4), UInt32(0), Errno.EINVAL), (8, 1 << 20, .EINVAL),
                                     (8, (1 << 16) | (1 << 17) | 1, .EINVAL), (8, (1 << 16) | 1, .ENOTTY),
                                     (8, (1 << 16) | 3, .EINVAL)] {
            var f: (UInt32, UInt32) = (argsz, flags)
            #expect(throws: want) { try withUnsafeMutablePointer(to: &f) { (p) throws(Errno) -> Int in try sub.ioctl(d, UInt(VFIOIoctl.deviceFeature), UInt(bitPattern: p)) } }
        }
        // read/write/mmap reach the driver's ops: vfio-pci refuses the VGA region (none) and an
        // mmap of config space with EINVAL. (No op at all is EINVAL too: DeviceFileOps.)
        var off: Int64 = 8 << 40
        #expect(throws: Errno.EINVAL) { try sub.read(d, buffer: 0, count: 0, offset: &off) }
        #expect(throws: Errno.EINVAL) { try sub.write(d, buffer: 0, count: 0, offset: &off) }
        #expect(throws: Errno.EINVAL) { try sub.mmap(d, offset: 7 << 40, length: 4096, prot: 0) }
        #expect(throws: Errno.ENODEV) { try sub.mmap(g, offset: 0, length: 4096, prot: 0) }
        #expect(throws: Errno.ENOTTY) { try sub.ioctl(d, 0x3BFF) }   // the driver's own ENOTTY
        teardown(sub)
    }
}
