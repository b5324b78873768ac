// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VFIO

/// The KVM link (docs/ERRORS.md#dopen-kvm, docs/ERRORS.md#dopen-kvm, docs/ERRORS.md#dopen-kvm, docs/DECISIONS.md#q7): latched at first open, dropped at last close.
@Suite struct KVMTests {
    func setup() throws -> (VFIOSubsystem, Int32, VFIOFile, VFIODevice) {
        let sub = makeSubsystem()
        sub.setKVMSymbolLookup { FakeVM.ops }
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let f = try sub.fget(g)
        return (sub, g, f, devs["0000:06:0d.0"]!)
    }

    @Test func setBeforeFirstOpenIsSeenByOpenDevice() throws {
        let (sub, g, f, dev) = try setup()
        let vm = FakeVM()
        f.setKVM(vm.pointer)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        let state = try #require(ModelPCIDriver.state(of: dev))
        #expect(state.kvmSeenAtOpen == vm.pointer)
        #expect(dev.kvmPointer == vm.pointer)
        #expect(vm.gets.load(ordering: .relaxed) == 1)
        let d2 = try sub.deviceFD(g, "0000:06:0d.0")     // not a first open: no new reference
        #expect(vm.gets.load(ordering: .relaxed) == 1)
        try sub.close(d)
        #expect(vm.puts.load(ordering: .relaxed) == 0)
        try sub.close(d2)                                  // last close drops it
        #expect(vm.puts.load(ordering: .relaxed) == 1)
        #expect(dev.kvmPointer == nil)
        sub.fput(f)
        f.setKVM(nil)
        teardown(sub)
    }

    @Test func setAfterOpenIsNotSeenUntilReopen() throws {
        let (sub, g, f, dev) = try setup()
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        let vm = FakeVM()
        f.setKVM(vm.pointer)
        #expect(dev.kvmPointer == nil)
        #expect(vm.gets.load(ordering: .relaxed) == 0)
        try sub.close(d)
        let d2 = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(dev.kvmPointer == vm.pointer)
        #expect(ModelPCIDriver.state(of: dev)!.kvmSeenAtOpen == vm.pointer)
        try sub.close(d2)
        #expect(vm.gets.load(ordering: .relaxed) == vm.puts.load(ordering: .relaxed))
        sub.fput(f)
        teardown(sub)
    }

    @Test func setKVMNullDoesNotRevokeAnOpenDevicesReference() throws {
        let (sub, g, f, dev) = try setup()
        let vm = FakeVM()
        f.setKVM(vm.pointer)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        f.setKVM(nil)
        #expect(dev.kvmPointer == vm.pointer)
        #expect(vm.puts.load(ordering: .relaxed) == 0)
        try sub.close(d)
        #expect(vm.puts.load(ordering: .relaxed) == 1)
        let d2 = try sub.deviceFD(g, "0000:06:0d.0")     // none after set_kvm(NULL)
        #expect(dev.kvmPointer == nil)
        #expect(vm.gets.load(ordering: .relaxed) == 1)
        try sub.close(d2)
        sub.fput(f)
        teardown(sub)
    }

    @Test func dyingVMGivesNoReferenceAndTheOpenSucceeds() throws {
        let (sub, g, f, dev) = try setup()
        let vm = FakeVM()
        vm.users.store(0, ordering: .relaxed)
        f.setKVM(vm.pointer)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(dev.kvmPointer == nil)
        #expect(ModelPCIDriver.state(of: dev)!.kvmSeenAtOpen == nil)
        try sub.close(d)
        #expect(vm.puts.load(ordering: .relaxed) == 0)
        sub.fput(f)
        teardown(sub)
    }

    @Test func missingKVMSymbolsWarnAndTakeNoReference() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let vm = FakeVM()
        try sub.withFile(g) { $0.setKVM(vm.pointer) }
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(sub.group(named: "26")!.devices[0].kvmPointer == nil)
        #expect(sub.log.warnMessages.contains { $0.contains("kvm_get_kvm_safe") })
        try sub.close(d)
        teardown(sub, expectWarnings: 1)
    }

    @Test func withoutHaveKVMNothingIsLatched() throws {
        let sub = makeSubsystem(VFIOConfig(haveKVM: false))
        sub.setKVMSymbolLookup { FakeVM.ops }
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let vm = FakeVM()
        try sub.withFile(g) { $0.setKVM(vm.pointer) }
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        #expect(vm.gets.load(ordering: .relaxed) == 0)
        try sub.close(d)
        teardown(sub)
    }

    @Test func groupKVMSurvivesRemovalAndRelease() throws {
        // docs/DECISIONS.md#q7: only the KVM side clears group->kvm.
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let f = try sub.openFile("/dev/vfio/26")
        let group = try #require(f.group)
        let vm = FakeVM()
        f.setKVM(vm.pointer)
        sub.removeVFIODevice(devs["0000:06:0d.0"]!)
        #expect(group.kvmPointer == vm.pointer)
        sub.fput(f)
        #expect(group.kvmPointer == vm.pointer)
        teardown(sub)
    }

    @Test func setKVMNeverWaitsOnTheGroupLock() throws {
        // open_device takes the "VM lock" while group_lock is held; KVM calls set_kvm holding the
        // VM lock. If set_kvm took group_lock this would deadlock (commit 2b48f52f2bff).
        let sub = makeSubsystem()
        try sub.registerIOMMUDriver(TestBackend())
        let vmLock = KernelMutex("kvm->lock")
        let inOpen = Atomic<Bool>(false)
        let group = try sub.iommu.addGroup(id: 50)
        var ops = VFIODeviceOps(name: "vm-locker")
        ops.openDevice = { _ throws(Errno) in
            inOpen.store(true, ordering: .sequentiallyConsistent)
            vmLock.lock(); vmLock.unlock()
        }
        let bus = try sub.iommu.addDevice(name: "v")
        try sub.iommu.addDevice(bus, to: group)
        let dev = try sub.allocDevice(bus, ops: ops)
        try sub.registerGroupDevice(dev)
        let g = try sub.open("/dev/vfio/50")
        try sub.containerWith(g, type: 100)
        let f = try sub.fget(g)
        let vm = FakeVM()
        vmLock.lock()
        let opener = TestThread { _ = try? sub.deviceFD(g, "v").description }
        while !inOpen.load(ordering: .sequentiallyConsistent) { usleep(1000) }
        f.setKVM(vm.pointer)          // with the VM lock held, while open_device waits for it
        vmLock.unlock()
        opener.join()
        #expect(f.group!.kvmPointer == vm.pointer)
        sub.fput(f)
        for fd in sub.fdTable.fds { try? sub.close(fd) }
        sub.unregisterGroupDevice(dev); dev.put()
        teardown(sub)
    }

    @Test func finalVMPutFromDeviceCloseDoesNotDeadlock() throws {
        // 51cdc8bc120e: the last kvm_put_kvm can run from a device close; the consumer's release
        // then calls set_kvm(NULL). Model it: put() calls back into set_kvm on the group file.
        let sub = makeSubsystem()
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let f = try sub.fget(g)
        let called = Atomic<Int>(0)
        sub.setKVMSymbolLookup {
            KVMOps(getSafe: { FakeVM.from($0).getSafe() },
                   put: { p in FakeVM.from(p).put(); f.setKVM(nil); called.add(1, ordering: .relaxed) })
        }
        let vm = FakeVM()
        f.setKVM(vm.pointer)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        try sub.close(d)
        #expect(called.load(ordering: .relaxed) == 1)
        #expect(devs["0000:06:0d.0"]!.vfioGroup!.kvmPointer == nil)
        sub.fput(f)
        teardown(sub)
    }
}
