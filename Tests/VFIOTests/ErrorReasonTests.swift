// SPDX-License-Identifier: Apache-2.0
// Errors that say why (issue 18 item 3): each EINVAL/EFAULT/EBUSY/EPERM/ENODEV row of
// docs/ERRORS.md the model reaches carries the check that failed, with its values, in
// `Errno.reasonText`; the trace line and the C `swiftvfio_last_error()` show that text (the C side
// is asserted in Tests/CABI/test_hooks.c).
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

    /// One row of docs/ERRORS.md on a type1 container: how to reach it, the code, the reason.
    struct Type1Row: CustomStringConvertible, Sendable {
        var id: String
        var code: Errno
        var reason: String
        var run: @Sendable (T1Container) -> Errno?
        var description: String { id }
    }

    static let type1Rows: [Type1Row] = [
        Type1Row(id: "t1-map-efault", code: .EFAULT, reason: "cannot read 32 bytes at 0x10") {
            $0.ioctlErrno(Type1UAPI.mapDMA, kBogus)
        },
        Type1Row(id: "t1-map-einval-argsz", code: .EINVAL, reason: "argsz 8 < minsz 32") {
            $0.map(iova: 0, size: kP, argsz: 8)
        },
        Type1Row(id: "t1-map-einval-argsz (flags)", code: .EINVAL, reason: "unknown flags 0x8 (known 0x7)") {
            $0.map(iova: 0, size: kP, flags: kRW | 8)
        },
        Type1Row(id: "t1-map-einval-prot", code: .EINVAL, reason: "flags 0x0: neither READ nor WRITE") {
            $0.map(iova: 0, size: kP, flags: 0)
        },
        Type1Row(id: "t1-map-einval-prot (vaddr)", code: .EINVAL, reason: "flags 0x5: VADDR with READ/WRITE") {
            $0.map(iova: 0, size: kP, flags: kR | kVADDR)
        },
        Type1Row(id: "t1-map-einval-align (size 0)", code: .EINVAL, reason: "size 0") {
            $0.map(iova: 0, size: 0)
        },
        Type1Row(id: "t1-map-einval-align (iova)", code: .EINVAL, reason: "iova 0x1001 not aligned to page size 0x1000") {
            $0.map(iova: 0x1001, size: kP)
        },
        Type1Row(id: "t1-map-einval-align (vaddr)", code: .EINVAL, reason: "vaddr 0x1001 not aligned to page size 0x1000") {
            $0.map(iova: 0, size: kP, vaddr: 0x1001)
        },
        Type1Row(id: "t1-map-einval-wrap", code: .EINVAL, reason: "iova 0xfffffffffffff000 + size 0x2000 wraps") {
            $0.map(iova: 0xFFFF_FFFF_FFFF_F000, size: 0x2000)
        },
        Type1Row(id: "t1-unmap-efault", code: .EFAULT, reason: "cannot read 24 bytes at 0x10") {
            $0.ioctlErrno(Type1UAPI.unmapDMA, kBogus)
        },
        Type1Row(id: "t1-unmap-einval-argsz", code: .EINVAL, reason: "argsz 16 < minsz 24") {
            if case .failure(let e) = $0.unmap(iova: 0, size: kP, argsz: 16) { return e }
            return nil
        },
        Type1Row(id: "t1-unmap-einval-align", code: .EINVAL, reason: "iova 0x800 not aligned to page size 0x1000") {
            if case .failure(let e) = $0.unmap(iova: 0x800, size: kP) { return e }
            return nil
        },
        Type1Row(id: "t1-unmap-einval-size", code: .EINVAL, reason: "size 0x0 zero or not aligned to page size 0x1000") {
            if case .failure(let e) = $0.unmap(iova: 0, size: 0) { return e }
            return nil
        },
        Type1Row(id: "t1-unmap-einval-split", code: .EINVAL, reason: "iova 0x1000 splits the mapping at iova 0x0 (v2)") { c in
            guard c.map(iova: 0, size: 0x2000) == nil else { return nil }
            if case .failure(let e) = c.unmap(iova: 0x1000, size: kP) { return e }
            return nil
        },
        Type1Row(id: "t1-dirty-einval-argsz", code: .EINVAL, reason: "argsz 4 < minsz 8") {
            $0.dirty(Type1UAPI.dirtyFlagStart, argsz: 4)
        },
        Type1Row(id: "t1-dirty-einval-flags", code: .EINVAL, reason: "flags 0x3: exactly one of START, STOP, GET_BITMAP") {
            $0.dirty(Type1UAPI.dirtyFlagStart | Type1UAPI.dirtyFlagStop)
        },
    ]

    @Test(arguments: type1Rows) func type1RowSaysWhy(_ row: Type1Row) {
        let c = T1Container()
        let e = row.run(c)
        #expect(e == row.code, "docs/ERRORS.md#\(row.id)")
        #expect(e?.reasonText == row.reason, "docs/ERRORS.md#\(row.id)")
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

