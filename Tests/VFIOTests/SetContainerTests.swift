// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// VFIO_GROUP_SET_CONTAINER / UNSET_CONTAINER (docs/ERRORS.md#unset-container, docs/ERRORS.md#set-container, docs/DECISIONS.md#q2) and the container's attach rules.
@Suite struct SetContainerTests {
    @Test func precedenceEFAULTThenEBADFThenEINVALThenENODEVThenEBADFD() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        // 1. EFAULT: the fd argument cannot be read.
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupSetContainer), 0) }
        // 2. EBADF: not an open descriptor (before any lock, before "already set").
        let closed: Int32 = 999_999   // above any open descriptor (tests run in parallel: no reuse race)
        #expect(throws: Errno.EBADF) { try sub.setContainer(g, closed) }
        #expect(throws: Errno.EBADF) { try sub.setContainer(g, -1) }
        // An O_PATH descriptor counts as not open.
        let opath = Glibc.open("/", 0o10000000)
        defer { Glibc.close(opath) }
        #expect(throws: Errno.EBADF) { try sub.setContainer(g, opath) }
        // 7. EBADFD: an open descriptor that is neither a container nor an iommufd.
        let devnull = Glibc.open("/dev/null", O_RDWR)
        defer { Glibc.close(devnull) }
        #expect(throws: Errno.EBADFD) { try sub.setContainer(g, devnull) }
        #expect(throws: Errno.EBADFD) { try sub.setContainer(g, g) }   // a group fd is not a container
        try sub.setContainer(g, c)
        // 3. EINVAL: already set, even for a bad target.
        #expect(throws: Errno.EINVAL) { try sub.setContainer(g, c) }
        #expect(throws: Errno.EINVAL) { try sub.setContainer(g, devnull) }
        #expect(throws: Errno.EBADF) { try sub.setContainer(g, closed) }
        // 4. ENODEV: removed (checked after "already set").
        try sub.unsetContainer(g)
        sub.removeVFIODevice(devs["0000:06:0d.0"]!)
        #expect(throws: Errno.ENODEV) { try sub.setContainer(g, c) }
        #expect(throws: Errno.ENODEV) { try sub.setContainer(g, devnull) }
        teardown(sub)
    }

    /// The model checks the fd it is given itself: a container placeholder replaced behind the
    /// model's back (here dup2 of /dev/null onto its number, one atomic step, so no test running in
    /// parallel can take the number in between) is another file now: EBADFD, and the stale entry is
    /// dropped with its reference, releasing the container.
    @Test func containerFDReplacedBehindTheModelsBackIsEBADFDAndReleased() throws {
        let sub = makeSubsystem()
        _ = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        let before = sub.census.counts
        let devnull = Glibc.open("/dev/null", O_RDWR)
        defer { Glibc.close(devnull) }
        #expect(Glibc.dup2(devnull, c) == c)
        #expect(throws: Errno.EBADFD) { try sub.setContainer(g, c) }
        let after = sub.census.counts
        #expect(after.fds == before.fds - 1)
        #expect(after.containers == before.containers - 1)
        #expect(throws: Errno.EBADF) { try sub.close(c) }   // not a model fd any more
        Glibc.close(c)
        try sub.close(g)
        teardown(sub)
    }

    @Test func removedGroupWithContainerIsEINVALNotENODEV() throws {
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/28")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g, c)
        let group = try #require(sub.group(named: "28"))
        sub.removeVFIODevice(devs["0000:07:00.0"]!)
        sub.removeVFIODevice(devs["0000:07:00.1"]!)
        // Removal force-detached the container.
        #expect(!group.hasContainer)
        #expect(throws: Errno.ENODEV) { try sub.setContainer(g, c) }
        #expect(throws: Errno.EINVAL) { try sub.unsetContainer(g) }
        teardown(sub)
    }

    @Test func unsetErrors() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        #expect(throws: Errno.EINVAL) { try sub.unsetContainer(g) }
        try sub.registerIOMMUDriver(TestBackend())
        let c = try sub.containerWith(g, type: 100)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(sub.group(named: "26")!.containerUserCount == 2)
        #expect(throws: Errno.EBUSY) { try sub.unsetContainer(g) }
        try sub.close(d)
        try sub.unsetContainer(g)
        #expect(try sub.status(g) == VFIOGroupFlags.viable)
        _ = c
        teardown(sub)
    }

    @Test func attachOfNonViableGroupIsEPERMAndClaimReleasedOnUnset() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g27 = try sub.open("/dev/vfio/27")
        let g26 = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        #expect(throws: Errno.EPERM) { try sub.setContainer(g27, c) }
        try sub.setContainer(g26, c)
        let iommuGroup = try #require(sub.iommu.group(id: 26))
        #expect(iommuGroup.dmaOwnerCount == 1)
        // While user-owned, a kernel driver probe on a member fails EBUSY.
        let extra = try sub.iommu.addDevice(name: "0000:06:0d.1")
        try sub.iommu.addDevice(extra, to: iommuGroup)
        #expect(throws: Errno.EBUSY) { try sub.iommu.bindDriver("e1000e", to: extra, managesDMA: false) }
        try sub.unsetContainer(g26)
        #expect(iommuGroup.dmaOwnerCount == 0)
        // Domain conflict: EBUSY from the claim.
        iommuGroup.setDomainConflict(true)
        #expect(throws: Errno.EBUSY) { try sub.setContainer(g26, c) }
        iommuGroup.setDomainConflict(false)
        sub.iommu.removeDevice(extra, from: iommuGroup)
        try sub.iommu.removeDevice(extra)
        teardown(sub)
    }

    @Test func noIOMMUAndRealGroupsCannotMix() throws {
        let sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true))
        try populate(sub)
        try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci")
        let noiommu = try #require(sub.allGroups.first { $0.type == .noIOMMU })
        let gn = try sub.open(noiommu.path)
        let g26 = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g26, c)
        #expect(throws: Errno.EPERM) { try sub.setContainer(gn, c) }
        try sub.unsetContainer(g26)
        try sub.setContainer(gn, c)
        #expect(throws: Errno.EPERM) { try sub.setContainer(g26, c) }
        // No-IOMMU attach needs CAP_SYS_RAWIO (checked first).
        try sub.unsetContainer(gn)
        sub.rawIOPolicy = .denied
        #expect(throws: Errno.EPERM) { try sub.setContainer(gn, c) }
        sub.rawIOPolicy = .granted
        teardown(sub)
    }

    @Test func emulatedGroupCountsAsRealAndClaimsNothing() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let mdev = try sub.probeEmulatedDevice(name: "mdev-0")
        let group = try #require(mdev.vfioGroup)
        #expect(group.type == .emulatedIOMMU)
        #expect(!group.name.hasPrefix("noiommu"))
        let ge = try sub.open(group.path)
        let g26 = try sub.open("/dev/vfio/26")
        let c = try sub.open("/dev/vfio/vfio")
        try sub.setContainer(g26, c)
        try sub.setContainer(ge, c)     // EMULATED mixes with real groups (docs/DECISIONS.md#q11)
        #expect(try sub.status(ge) == VFIOGroupFlags.viable | VFIOGroupFlags.containerSet)
        teardown(sub)
    }
}

/// A backend for container tests: claims extension 100+, fails on demand.
final class TestBackend: IOMMUBackend, @unchecked Sendable {
    let name: String
    var failOpen: Errno?
    var failAttachAfter: Int?
    var attached: [ObjectIdentifier] = []
    var released = 0
    var registered: [ObjectIdentifier] = []
    let withRegistration: Bool
    var hasDeviceRegistration: Bool { withRegistration }

    init(name: String = "test-backend", withRegistration: Bool = false) {
        self.name = name
        self.withRegistration = withRegistration
    }

    final class State {}

    func open(arg: UInt, context: BackendContext) throws(Errno) -> AnyObject? {
        if let failOpen { throw failOpen }
        return State()
    }
    func release(_ data: AnyObject?) { released += 1 }
    func ioctl(_ data: AnyObject?, cmd: UInt32, arg: UInt, context: BackendContext) throws(Errno) -> Int {
        if cmd == VFIOIoctl.checkExtension { return arg >= 100 ? 1 : 0 }
        if cmd == 0x3BFF { return 42 }
        throw .ENOTTY
    }
    func attachGroup(_ data: AnyObject?, group: AnyObject, type: VFIOGroupType) throws(Errno) {
        if let n = failAttachAfter, attached.count >= n { throw .EIO }
        attached.append(ObjectIdentifier(group))
    }
    func detachGroup(_ data: AnyObject?, group: AnyObject) { attached.removeAll { $0 == ObjectIdentifier(group) } }
    func registerDevice(_ data: AnyObject?, device: AnyObject) { registered.append(ObjectIdentifier(device)) }
    func unregisterDevice(_ data: AnyObject?, device: AnyObject) { registered.removeAll { $0 == ObjectIdentifier(device) } }
}
