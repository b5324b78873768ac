// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VFIO

/// Object lifetimes (docs/ERRORS.md#state-group, docs/ERRORS.md#state-attachment, docs/ERRORS.md#device-open): pins, removal, re-registration, blocking unregister.
@Suite struct LifetimeTests {
    @Test func deviceFDsPinTheGroupFileInContainerMode() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        let group = try #require(sub.group(named: "26"))
        try sub.close(g)
        // The group file lives on: still open (EBUSY), container still attached.
        #expect(group.isOpen)
        #expect(group.hasContainer && group.containerUserCount == 2)
        #expect(throws: Errno.EBUSY) { try sub.open("/dev/vfio/26") }
        try sub.close(d)
        // The device's last close dropped the last group-file reference: released after the call.
        #expect(!group.isOpen)
        #expect(!group.hasContainer)
        #expect(sub.iommu.group(id: 26)!.dmaOwnerCount == 0)
        let again = try sub.open("/dev/vfio/26")
        try sub.close(again)
        teardown(sub)
    }

    @Test func groupReleaseIsDeferredOutOfTheDeviceClose() throws {
        // A device close holding group_lock drops the last group-file reference: the release must
        // not run inside (it takes group_lock; inline would self-deadlock). Reaching the end of this
        // test without hanging is the assertion, with the state checks below.
        let sub = makeSubsystem()
        try populate(sub)
        let gfd = try sub.open("/dev/vfio/26")
        let c = try sub.containerWith(gfd)
        let d = try sub.deviceFD(gfd, "0000:06:0d.0")
        try sub.close(gfd)
        try sub.close(c)
        #expect(sub.census.counts.containers == 1)
        try sub.close(d)
        #expect(sub.census.counts.containers == 0)
        teardown(sub)
    }

    @Test func removedGroupAnswersPerStateTable() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let group = try #require(sub.group(named: "26"))
        sub.removeVFIODevice(devs["0000:06:0d.0"]!)
        #expect(sub.group(named: "26") == nil)
        #expect(group.isRemoved && group.isOpen)
        #expect(throws: Errno.ENODEV) { try sub.status(g) }
        #expect(throws: Errno.ENODEV) { try sub.setContainer(g, try sub.open("/dev/vfio/vfio")) }
        #expect(throws: Errno.EINVAL) { try sub.unsetContainer(g) }
        #expect(throws: Errno.ENODEV) { try sub.deviceFD(g, "0000:06:0d.0") }
        #expect(sub.liveGroupCount == 3)        // the removed group keeps its minor while open
        try sub.close(g)
        #expect(sub.liveGroupCount == 2)
        teardown(sub)
    }

    @Test func registrationAfterRemovalMakesANewGroup() throws {
        let sub = makeSubsystem()
        let dev = try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci")!
        let old = try sub.openFile("/dev/vfio/26")
        let oldGroup = try #require(old.group)
        let oldMinor = oldGroup.minor
        // Unbind vfio-pci and bind it again while the old group's file is still open.
        let bus = dev.busDevice
        sub.unregisterGroupDevice(dev); dev.put(); sub.iommu.unbindDriver(from: bus)
        let dev2 = try sub.bindVFIOPCI(bus)
        let newGroup = try #require(dev2.vfioGroup)
        #expect(newGroup !== oldGroup)
        #expect(newGroup.minor != oldMinor)     // the lingering group still holds its minor
        #expect(oldGroup.isRemoved && !newGroup.isRemoved)
        let g = try sub.open("/dev/vfio/26")    // the new node opens although the old file is open
        try sub.close(g)
        sub.fput(old)
        // After the old group is freed its minor can be reused.
        sub.unregisterGroupDevice(dev2); dev2.put(); sub.iommu.unbindDriver(from: bus)
        let dev3 = try sub.bindVFIOPCI(bus)
        #expect(dev3.vfioGroup!.minor == oldMinor)
        teardown(sub)
    }

    @Test func twoDevicesOfOneIOMMUGroupShareOneVFIOGroup() throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let a = devs["0000:07:00.0"]!, b = devs["0000:07:00.1"]!
        #expect(a.vfioGroup === b.vfioGroup)
        let group = try #require(a.vfioGroup)
        #expect(group.driverCount == 2)
        #expect(group.devices.map(\.busDevice.name) == ["0000:07:00.1", "0000:07:00.0"])  // newest first
        sub.removeVFIODevice(a)
        #expect(!group.isRemoved && group.driverCount == 1)
        #expect(sub.group(named: "28") === group)
        sub.removeVFIODevice(b)
        #expect(group.isRemoved)
        #expect(sub.group(named: "28") == nil)
        teardown(sub)
    }

    @Test func unregisterBlocksUntilTheLastDeviceFDClosesCallingRequest() async throws {
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let dev = devs["0000:06:0d.0"]!
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let d1 = try sub.deviceFD(g, "0000:06:0d.0")
        let d2 = try sub.dup(d1)
        let done = Atomic<Bool>(false)
        let thread = TestThread { sub.unregisterGroupDevice(dev); done.store(true, ordering: .sequentiallyConsistent) }
        let state = try #require(ModelPCIDriver.state(of: dev))
        while state.requests.count < 3 { usleep(5_000) }
        let notYet = !done.load(ordering: .sequentiallyConsistent)
        #expect(notYet)
        // While unregister waits, lookup still succeeds and new fds can be had.
        let d3 = try sub.deviceFD(g, "0000:06:0d.0")
        try sub.close(d1); try sub.close(d3)
        usleep(50_000)
        let stillWaiting = !done.load(ordering: .sequentiallyConsistent)
        #expect(stillWaiting)   // the dup still holds the file
        try sub.close(d2)
        thread.join()
        let finished = done.load(ordering: .sequentiallyConsistent)
        #expect(finished)
        let reqs = state.requests
        #expect(Array(reqs.prefix(3)) == [0, 1, 2])               // n = 0, 1, 2, ... between waits
        #expect(sub.group(named: "26") == nil)
        dev.put()
        teardown(sub)
    }

    @Test func fileReferenceRules() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        let f = try sub.fget(g)
        #expect(f.refCount == 2)
        try sub.close(g)
        #expect(f.refCount == 1)
        #expect(f.group!.isOpen)             // our reference keeps the group file open
        sub.fput(f)
        #expect(f.refCount == 0)
        #expect(sub.group(named: "26")!.isOpen == false)
        // A put too many and a get after release are WARNs, not crashes or corruption.
        sub.fput(f)
        #expect(!f.get())
        #expect(f.refCount == 0)
        teardown(sub, expectWarnings: 2)
    }
}

/// A joinable pthread running a closure (tests need real threads, not tasks, to block).
final class TestThread: @unchecked Sendable {
    private var tid = pthread_t()
    private let body: () -> Void
    init(_ body: @escaping () -> Void) {
        self.body = body
        let ctx = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&tid, nil, { p in
            let t = Unmanaged<TestThread>.fromOpaque(p!).takeRetainedValue()
            t.body()
            return nil
        }, ctx)
    }
    func join() { pthread_join(tid, nil) }
}
