// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VFIO

/// The model used from many threads at once; every counter checked after (TSan runs these too).
@Suite struct ConcurrencyTests {
    static func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let threads = (0..<n).map { i in TestThread { body(i) } }
        threads.forEach { $0.join() }
    }

    @Test func distinctGroupsOpenCloseSetUnsetInParallel() throws {
        let sub = makeSubsystem()
        for i in 0..<8 { try sub.probePCIDevice(name: "0000:10:0\(i).0", iommuGroupID: 100 + i, driver: "vfio-pci") }
        let failures = Atomic<Int>(0)
        Self.runThreads(8) { i in
            for _ in 0..<200 {
                do throws(Errno) {
                    let g = try sub.open("/dev/vfio/\(100 + i)")
                    let c = try sub.open("/dev/vfio/vfio")
                    try sub.setContainer(g, c)
                    try sub.setIOMMU(c, VFIOExtension.type1v2IOMMU)
                    let d = try sub.deviceFD(g, "0000:10:0\(i).0")
                    guard try sub.status(g) == VFIOGroupFlags.viable | VFIOGroupFlags.containerSet else { throw .EIO }
                    try sub.close(d)
                    try sub.unsetContainer(g)
                    try sub.close(c)
                    try sub.close(g)
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        for g in sub.allGroups {
            #expect(!g.isOpen && !g.hasContainer && g.containerUserCount == 0)
            #expect(g.devices.allSatisfy { $0.openCount == 0 && $0.registrationCount == 1 })
        }
        teardown(sub)
    }

    @Test func sharedGroupSingleOpenAndAttachmentRaces() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let wins = Atomic<Int>(0), busy = Atomic<Int>(0), other = Atomic<Int>(0)
        let c = try sub.open("/dev/vfio/vfio")
        Self.runThreads(6) { _ in
            for _ in 0..<300 {
                do throws(Errno) {
                    let g = try sub.open("/dev/vfio/28")
                    wins.add(1, ordering: .relaxed)
                    // Only the holder can be here; attach and detach under contention with status readers.
                    try sub.setContainer(g, c)
                    _ = try sub.status(g)
                    try sub.unsetContainer(g)
                    try sub.close(g)
                } catch .EBUSY {
                    busy.add(1, ordering: .relaxed)
                } catch {
                    other.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(other.load(ordering: .relaxed) == 0)
        #expect(wins.load(ordering: .relaxed) + busy.load(ordering: .relaxed) == 1800)
        #expect(wins.load(ordering: .relaxed) > 0)
        let g = try #require(sub.group(named: "28"))
        #expect(!g.isOpen && !g.hasContainer)
        #expect(sub.iommu.group(id: 28)!.dmaOwnerCount == 0)
        teardown(sub)
    }

    @Test func manyDeviceFDsOfOneDeviceFromManyThreads() throws {
        let sub = makeSubsystem()
        sub.setKVMSymbolLookup { FakeVM.ops }
        let devs = try populate(sub)
        let g = try sub.open("/dev/vfio/28")
        try sub.containerWith(g)
        let vm = FakeVM()
        try sub.withFile(g) { $0.setKVM(vm.pointer) }
        Self.runThreads(8) { i in
            for _ in 0..<200 {
                let name = i % 2 == 0 ? "0000:07:00.0" : "0000:07:00.1"
                if let d = try? sub.deviceFD(g, name) {
                    if i % 3 == 0, let f = try? sub.fget(d) { sub.fput(f) }
                    try? sub.close(d)
                }
                if i == 7 { try? sub.withFile(g) { $0.setKVM(vm.pointer) } }
            }
        }
        let group = try #require(sub.group(named: "28"))
        #expect(group.containerUserCount == 1)
        #expect(devs["0000:07:00.0"]!.openCount == 0 && devs["0000:07:00.1"]!.openCount == 0)
        #expect(vm.gets.load(ordering: .relaxed) == vm.puts.load(ordering: .relaxed))
        #expect(vm.gets.load(ordering: .relaxed) > 0)
        #expect(sub.census.counts.kvmReferences == 0)
        teardown(sub)
    }

    @Test func unregisterRacingGetDeviceFD() throws {
        for _ in 0..<20 {
            let sub = makeSubsystem(VFIOConfig(unregisterRequestInterval: .milliseconds(1)))
            let devs = try populate(sub)
            let dev = devs["0000:06:0d.0"]!
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            let stop = Atomic<Bool>(false)
            let opened = Atomic<Int>(0), gone = Atomic<Int>(0)
            let opener = TestThread {
                while !stop.load(ordering: .relaxed) {
                    do throws(Errno) {
                        let d = try sub.deviceFD(g, "0000:06:0d.0")
                        opened.add(1, ordering: .relaxed)
                        try sub.close(d)
                    } catch {
                        // After removal: ENODEV (name gone or group removed).
                        if error == .ENODEV { gone.add(1, ordering: .relaxed) }
                    }
                }
            }
            usleep(500)
            sub.removeVFIODevice(dev)       // blocks while the opener holds fds, then completes
            stop.store(true, ordering: .relaxed)
            opener.join()
            #expect(sub.group(named: "26") == nil)
            let after = try? sub.deviceFD(g, "0000:06:0d.0")
            #expect(after == nil)
            teardown(sub)
        }
    }

    @Test func registrationsAndRemovalsOfManyGroupsInParallel() throws {
        let sub = makeSubsystem()
        Self.runThreads(4) { t in
            for i in 0..<50 {
                let name = "0000:\(20 + t):\(i).0"
                guard let d = try? sub.probePCIDevice(name: name, iommuGroupID: 1000 + t * 100 + i, driver: "vfio-pci") else { continue }
                if let g = try? sub.open(d.vfioGroup!.path) { try? sub.close(g) }
                sub.removeVFIODevice(d)
            }
        }
        #expect(sub.allGroups.isEmpty)
        teardown(sub)
    }
}
