// SPDX-License-Identifier: Apache-2.0
// Errors that say why (issue 18 item 3): the reason's lazy formatting, and the same reasons seen
// through the subsystem's trace lines. Every row of docs/ERRORS.md, with its exact code and
// reason, is asserted by row id in ErrorRows/ (and Tests/CABI/test_error_reasons.c for C).
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// The errno `body` threw (with its reason), or nil on success.
private func failure(_ body: () throws(Errno) -> Void) -> Errno? {
    do { try body(); return nil } catch { return error }
}

@Suite struct ErrorReasonTests {
    @Test func reasonFormatsLazilyAndTakesNoPartInEquality() {
        let e = Errno.EINVAL.because("argsz {} < minsz {}", UInt32(8), 32)
        #expect(e == .EINVAL)
        #expect(e.hashValue == Errno.EINVAL.hashValue)
        #expect(e.reasonText == "argsz 8 < minsz 32")
        #expect(Errno.EINVAL.reasonText == nil)
        #expect(Errno.EFAULT.because("{x} {i} {}", 0x1001, -3, 7).reasonText == "0x1001 -3 7")
        // A brace that is not a hole is kept as written.
        #expect(Errno.EINVAL.because("{y} {too long}").reasonText == "{y} {too long}")
        #expect(Errno.EINVAL.because("{} {} {} {}", 1, 2, 3).reasonText == "1 2 3 0")
    }

    // MARK: group file rows, through the subsystem (and its trace line)

    @Test func groupRowsSayWhyInTheErrorAndTheTrace() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let trace = Locked<[String]>([])
        sub.tracer.setHandler { line in trace.withLock { $0.append(line) } }

        let g = try sub.open("/dev/vfio/26")
        // open-group-ebusy
        var e = failure { () throws(Errno) in _ = try sub.open("/dev/vfio/26") }
        #expect(e == .EBUSY)
        #expect(e?.reasonText == "group 26 is already open (one open file per group)")
        // gs-einval-argsz
        var s = VFIOGroupStatus(argsz: 4, flags: 0)
        e = failure { () throws(Errno) in
            _ = try withUnsafeMutablePointer(to: &s) { (p) throws(Errno) -> Int in
                try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), UInt(bitPattern: p))
            }
        }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "argsz 4 < minsz 8")
        // gs-efault-in
        e = failure { () throws(Errno) in _ = try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), 0x10) }
        #expect(e == .EFAULT)
        #expect(e?.reasonText == "cannot read 8 bytes at 0x10")
        // uc-einval
        e = failure { () throws(Errno) in try sub.unsetContainer(g) }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "group 26 has no container or iommufd set")
        // dopen-einval: a device open without a container
        e = failure { () throws(Errno) in _ = try sub.deviceFD(g, "0000:06:0d.0") }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "group 26 has no container or iommufd set")
        // gdf-enodev
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g, c)
        try sub.setIOMMU(c, Type1UAPI.extType1v2)
        e = failure { () throws(Errno) in _ = try sub.deviceFD(g, "0000:99:00.0") }
        #expect(e == .ENODEV)
        #expect(e?.reasonText == "no device of that name in group 26")
        // sc-einval-set
        let c2 = try sub.open("/dev/vfio/vfio")
        e = failure { () throws(Errno) in try sub.setContainer(g, c2) }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "group 26 already has a container or iommufd set")
        // uc-ebusy
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        e = failure { () throws(Errno) in try sub.unsetContainer(g) }
        #expect(e == .EBUSY)
        #expect(e?.reasonText == "group 26: 1 device file(s) still open (container_users 2)")
        try sub.close(d)
        try sub.unsetContainer(g)
        // gs-enodev, sc-enodev: the group's last device goes while the fd stays open
        sub.removeVFIODevice(devs["0000:06:0d.0"]!)
        e = failure { () throws(Errno) in _ = try sub.status(g) }
        #expect(e == .ENODEV)
        #expect(e?.reasonText == "group 26 was removed (its last device unregistered)")
        e = failure { () throws(Errno) in try sub.setContainer(g, c2) }
        #expect(e == .ENODEV)
        #expect(e?.reasonText == "group 26 was removed (its last device unregistered)")

        sub.tracer.disable()
        let lines = trace.withLock { $0 }
        // The trace line carries the same reason, after the errno name.
        #expect(lines.contains("ioctl(\(g), VFIO_GROUP_GET_STATUS, {argsz=4}) = -1 EINVAL (argsz 4 < minsz 8)"))
        #expect(lines.contains("open(\"/dev/vfio/26\", O_RDWR) = -1 EBUSY (group 26 is already open (one open file per group))"))
        #expect(lines.contains("ioctl(\(g), VFIO_GROUP_UNSET_CONTAINER) = -1 EBUSY (group 26: 1 device file(s) still open (container_users 2))"))
        teardown(sub)
    }

    @Test func containerRowsSayWhy() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let c = try sub.open("/dev/vfio/vfio")
        // ctr-setiommu-einval: no group attached yet
        var e = failure { () throws(Errno) in try sub.setIOMMU(c, Type1UAPI.extType1v2) }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "container has no group attached")
        // ctr-passthrough-einval: MAP_DMA before SET_IOMMU
        let g = try sub.open("/dev/vfio/26")
        try sub.setContainer(g, c)
        e = failure { () throws(Errno) in _ = try sub.ioctl(c, UInt(VFIOIoctl.iommuMapDMA), 0x10) }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "container has no IOMMU backend (VFIO_SET_IOMMU not done)")
        // ctr-setiommu-enodev: no backend accepts the type
        e = failure { () throws(Errno) in try sub.setIOMMU(c, 99) }
        #expect(e == .ENODEV)
        #expect(e?.reasonText == "no IOMMU backend accepts type 99")
        // ctr-setiommu-einval: a second SET_IOMMU
        try sub.setIOMMU(c, Type1UAPI.extType1v2)
        e = failure { () throws(Errno) in try sub.setIOMMU(c, Type1UAPI.extType1v2) }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "container already has an IOMMU backend")
        // devfd-rw-einval's sibling: read(2) of a group file
        var byte: UInt8 = 0
        e = failure { () throws(Errno) in
            _ = try withUnsafeMutablePointer(to: &byte) { (p) throws(Errno) -> Int in
                var at: Int64 = 0
                return try sub.read(g, buffer: UInt(bitPattern: p), count: 1, offset: &at)
            }
        }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "this file has no read")
        teardown(sub)
    }

    @Test func noIOMMUOpenSaysWhy() throws {
        // open-group-eperm
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true), rawIO: .denied)
        try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci")
        let group = try #require(sub.allGroups.first)
        let e = failure { () throws(Errno) in _ = try sub.open(group.path) }
        #expect(e == .EPERM)
        #expect(e?.reasonText?.hasSuffix("needs CAP_SYS_RAWIO") == true)
        teardown(sub)
    }

    @Test func registrationSaysWhy() throws {
        // reg: a device with no IOMMU group and no-IOMMU mode off; a non-coherent device
        let sub = makeSubsystem()
        var e = failure { () throws(Errno) in _ = try sub.probePCIDevice(name: "0000:0a:00.0", iommuGroupID: nil, driver: "vfio-pci") }
        #expect(e == .EINVAL)
        #expect(e?.reasonText == "device has no IOMMU group (and no-IOMMU mode is off)")
        e = nil
        teardown(sub)
    }
}

