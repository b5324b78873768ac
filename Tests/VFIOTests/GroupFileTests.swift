// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// The group file: open (ENODEV, EPERM, EBUSY in that order), release, GET_STATUS (docs/ERRORS.md#get-status).
@Suite struct GroupFileTests {
    @Test func openUnknownNodeIsENOENT() throws {
        let sub = makeSubsystem()
        try populate(sub)
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/vfio/99") }
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/vfio/noiommu-26") }
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/nonsense") }
        teardown(sub)
    }

    @Test func secondOpenIsEBUSYUntilLastDupCloses() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        #expect(throws: Errno.EBUSY) { try sub.open("/dev/vfio/26") }
        let d = try sub.dup(g)
        try sub.close(g)
        #expect(throws: Errno.EBUSY) { try sub.open("/dev/vfio/26") }   // the dup keeps the file open
        try sub.close(d)
        let again = try sub.open("/dev/vfio/26")
        try sub.close(again)
        teardown(sub)
    }

    @Test func noIOMMUOpenNeedsRawIOThenBusy() throws {
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true), rawIO: .denied)
        try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci")
        let group = try #require(sub.allGroups.first)
        #expect(group.name.hasPrefix("noiommu-"))
        #expect(sub.log.taintedUser)
        #expect(throws: Errno.EPERM) { try sub.open(group.path) }
        sub.rawIOPolicy = .granted
        let fd = try sub.open(group.path)
        // EPERM is checked before EBUSY.
        sub.rawIOPolicy = .denied
        #expect(throws: Errno.EPERM) { try sub.open(group.path) }
        sub.rawIOPolicy = .granted
        #expect(throws: Errno.EBUSY) { try sub.open(group.path) }
        try sub.close(fd)
        teardown(sub)
    }

    @Test func openOfRemovedGroupIsENODEVBeforeEBUSY() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let file = try sub.openFile("/dev/vfio/26")
        let group = try #require(file.group)
        sub.removeVFIODevice(devs["0000:06:0d.0"]!)
        #expect(group.isRemoved)
        // The node is gone: by path ENOENT; through the open inode ENODEV (drivers == 0), even
        // though the file is still open (which would otherwise be EBUSY).
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/vfio/26") }
        #expect(throws: Errno.ENODEV) { try sub.reopen(file) }
        #expect(throws: Errno.ENODEV) { try sub.openGroupFile(minor: group.minor) }
        let minor = group.minor
        sub.fput(file)
        // Freed: the minor's char device no longer exists.
        #expect(throws: Errno.ENXIO) { try sub.openGroupFile(minor: minor) }
        teardown(sub)
    }

    @Test func getStatusViability() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g26 = try sub.open("/dev/vfio/26")
        let g27 = try sub.open("/dev/vfio/27")
        #expect(try sub.status(g26) == VFIOGroupFlags.viable)
        #expect(try sub.status(g27) == 0)     // e1000e owns DMA on a member
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g26, c)
        // CONTAINER_SET|VIABLE once attached, regardless of SET_IOMMU.
        #expect(try sub.status(g26) == VFIOGroupFlags.viable | VFIOGroupFlags.containerSet)
        teardown(sub)
    }

    @Test func getStatusErrorsInOrder() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), 0) }
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), 0x10) }
        var s = VFIOGroupStatus(argsz: 7, flags: 0xdead)
        #expect(throws: Errno.EINVAL) {
            try withUnsafeMutablePointer(to: &s) { (p) throws(Errno) in _ = try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), UInt(bitPattern: p)) }
        }
        // argsz larger than the struct is fine, and echoed unchanged.
        s = VFIOGroupStatus(argsz: 64, flags: 0xdead)
        try withUnsafeMutablePointer(to: &s) { (p) throws(Errno) in _ = try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), UInt(bitPattern: p)) }
        #expect(s == VFIOGroupStatus(argsz: 64, flags: VFIOGroupFlags.viable))
        // Copy-out to a read-only page: EFAULT after the work.
        let ro = Mapping(size: 4096)
        ro.base.storeBytes(of: VFIOGroupStatus(argsz: 8, flags: 0), as: VFIOGroupStatus.self)
        mprotect(ro.base, 4096, PROT_READ)
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), ro.address) }
        // A removed group: ENODEV (argsz checked first).
        sub.removeVFIODevice(devs["0000:06:0d.0"]!)
        #expect(throws: Errno.ENODEV) { try sub.status(g) }
        s = VFIOGroupStatus(argsz: 4, flags: 0)
        #expect(throws: Errno.EINVAL) {
            try withUnsafeMutablePointer(to: &s) { (p) throws(Errno) in _ = try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), UInt(bitPattern: p)) }
        }
        teardown(sub)
    }

    @Test func unknownGroupIoctlIsENOTTY() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        for cmd in [UInt(VFIOIoctl.getAPIVersion), UInt(VFIOIoctl.checkExtension), UInt(VFIOIoctl.setIOMMU),
                    UInt(VFIOIoctl.deviceGetInfo), UInt(VFIOIoctl.iommuMapDMA), 0, 0xdeadbeef] {
            #expect(throws: Errno.ENOTTY) { try sub.ioctl(g, cmd, 0) }
        }
        teardown(sub)
    }

    @Test func closeOfNonModelFDIsEBADF() throws {
        let sub = makeSubsystem()
        #expect(throws: Errno.EBADF) { try sub.close(0) }
        #expect(throws: Errno.EBADF) { try sub.ioctl(-1, 0) }
        teardown(sub)
    }

    @Test func modelFDsAreRealDescriptorsWithHonestCloexec() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let gc = try sub.open("/dev/vfio/vfio", flags: 0o2 | VFIOSubsystem.O_CLOEXEC)
        #expect(fcntl(g, F_GETFD) == 0)
        #expect(fcntl(gc, F_GETFD) == FD_CLOEXEC)
        try sub.setContainer(g, gc)
        try sub.setIOMMU(gc, VFIOExtension.type1IOMMU)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(fcntl(d, F_GETFD) == FD_CLOEXEC)     // device fds are O_CLOEXEC, as in the kernel
        let dupd = try sub.dup(d)
        #expect(try sub.withFile(dupd) { a in try sub.withFile(d) { b in a === b } })  // a dup is the same file
        teardown(sub, expectWarnings: 0)
    }
}
