// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VFIO

/// The stress test (issue 7): threads doing random legal and illegal operations on shared groups,
/// containers, iommufds and devices of one small topology while a driver thread registers and
/// unregisters a device under them, a checker thread watches the invariants, and a watchdog turns
/// a deadlock into a failure with every thread's stack instead of a hung test run.
///
/// Reproducible per thread: each worker draws from its own SplitMix64 seeded from one base seed
/// (printed; set `SWIFTVFIO_STRESS_SEED` to replay it). Interleavings still differ run to run.
/// `SWIFTVFIO_STRESS_SECONDS` sets the duration (default 2 s).
@Suite struct StressTests {
    static let workers = 6

    @Test func randomOperationsOnSharedObjects() throws {
        let seconds = getenv("SWIFTVFIO_STRESS_SECONDS").flatMap { Double(String(cString: $0)) } ?? 2
        let baseSeed = getenv("SWIFTVFIO_STRESS_SEED").flatMap { UInt64(String(cString: $0), radix: 16) }
            ?? UInt64(truncatingIfNeeded: DispatchFreeClock.nanoseconds())
        let world = try StressWorld()
        let seeds = (0..<Self.workers).map { i in
            var g = SplitMix64(seed: baseSeed &+ UInt64(i))
            return g.next()
        }
        print("stress: base seed \(String(baseSeed, radix: 16)) (SWIFTVFIO_STRESS_SEED), thread seeds "
              + seeds.map { String($0, radix: 16) }.joined(separator: " "))

        // The watchdog: the run's own bound plus 30 s, then stacks and abort (a deadlocked test
        // cannot fail any other way: its threads never return to be joined).
        let finished = Completion()
        let limit = seconds + 30
        let watchdog = TestThread {
            if !finished.wait(timeout: .milliseconds(Int64(limit * 1000))) {
                print("stress: not finished after \(limit) s: deadlock or livelock. Every thread's stack:")
                dumpAllThreadStacks()
                print("stress: state: \(world.describe())")
                fflush(nil)
                abort()
            }
        }

        let start = DispatchFreeClock.nanoseconds()
        let deadline = start + UInt64(seconds * 1e9)
        let results = Locked<[WorkerResult]>([])
        let threads = seeds.enumerated().map { i, seed in
            TestThread {
                let w = StressWorker(world: world, rng: SplitMix64(seed: seed), id: i)
                w.run(until: deadline)
                results.withLock { $0.append(w.result) }
            }
        }
        let driver = TestThread { world.driverLoop() }
        let checker = TestThread { world.checkerLoop() }
        threads.forEach { $0.join() }
        let elapsed = Double(DispatchFreeClock.nanoseconds() - start) / 1e9
        world.stop.store(true, ordering: .releasing)
        // Whatever a blocked unregister still waits for goes now.
        world.closeEverything()
        driver.join()
        checker.join()

        // Final invariants.
        let merged = results.withLock { WorkerResult.merge($0) }
        let violations = world.violations.withLock { $0 }
        #expect(violations.isEmpty, "invariant violations: \(violations.prefix(10))")
        #expect(merged.unknownErrnos.isEmpty, "errnos that are not Linux errnos: \(merged.unknownErrnos)")
        let sub = world.sub
        for g in sub.allGroups {
            let s = SweepSnapshot.state(g)
            #expect(!s.open && !s.container && !s.iommufd && s.containerUsers == 0, "\(g.name) after the run: \(s)")
        }
        for d in world.stableDevices { #expect(d.openCount == 0, "\(d) open count \(d.openCount)") }
        for vm in world.vms {
            #expect(vm.gets.load(ordering: .relaxed) == vm.puts.load(ordering: .relaxed),
                    "a KVM get without its put: \(vm.gets.load(ordering: .relaxed)) gets, \(vm.puts.load(ordering: .relaxed)) puts")
        }
        #expect(sub.census.counts.kvmReferences == 0)
        #expect(merged.ops > 0 && world.cycles.load(ordering: .relaxed) > 0)

        let rate = Int(Double(merged.ops) / elapsed)
        let centis = Int(elapsed * 100)
        let cycles = world.cycles.load(ordering: .relaxed)
        let checks = world.checks.load(ordering: .relaxed)
        var kvmGets = 0
        for vm in world.vms { kvmGets += vm.gets.load(ordering: .relaxed) }
        let figures = "\(Self.workers) threads, \(centis / 100).\(centis % 100 < 10 ? "0" : "")\(centis % 100) s, "
            + "\(merged.ops) operations (\(rate) ops/s), \(cycles) register/unregister cycles, "
            + "\(checks) invariant checks, \(kvmGets) KVM references taken and dropped"
        print("stress: " + figures)
        print("stress: outcomes: " + merged.summary())
        teardown(sub)
        finished.complete()
        watchdog.join()
        withExtendedLifetime(world) {}
    }
}

// MARK: - the shared world

/// What an open model fd in the shared pool is.
struct PoolEntry {
    enum Kind { case group, container, iommufd, device }
    var kind: Kind
    /// For device fds: the device name it was opened with.
    var device: String?
    /// For group fds: the node path.
    var path: String?
}

/// The topology, the shared fd pool and the flags the threads share.
final class StressWorld: @unchecked Sendable {
    let sub: VFIOSubsystem
    /// Open model fds any thread may use; a thread closing one takes it out first, so a number is
    /// closed once (a number reused by the kernel afterwards is a new entry).
    let pool = Locked<[(fd: Int32, entry: PoolEntry)]>([])
    /// Set by the churn device's `request` op while an unregister waits: workers close its fds.
    let releaseRequested = Atomic<Bool>(false)
    let stop = Atomic<Bool>(false)
    let cycles = Atomic<Int>(0)
    let checks = Atomic<Int>(0)
    let violations = Locked<[String]>([])
    /// A live VM, a second live VM, and a dying one (its user count already 0: no reference).
    let vms = [FakeVM(), FakeVM(), FakeVM()]
    let paths: [String]
    let names: [String]
    /// The device names of each group node.
    let members: [String: [String]]
    /// Devices registered for the whole run (the checker may read them at any time).
    let stableDevices: [VFIODevice]
    static let churn = "0000:30:00.0"
    /// The churn device while registered (driver thread only).
    private var churnDevice: VFIODevice?

    init() throws {
        sub = makeSubsystem(VFIOConfig(enableUnsafeNoIOMMUMode: true, unregisterRequestInterval: .milliseconds(2)))
        sub.setKVMSymbolLookup { FakeVM.ops }
        vms[2].users.store(0, ordering: .relaxed)
        var stable = Array(try populate(sub).values)
        let n = try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci")!
        let m = try sub.probeEmulatedDevice(name: "mdev-0")
        stable += [n, m]
        stableDevices = stable
        _ = try sub.iommu.addGroup(id: 30)
        paths = ["/dev/vfio/26", "/dev/vfio/27", "/dev/vfio/28", n.vfioGroup!.path, m.vfioGroup!.path, "/dev/vfio/30",
                 "/dev/vfio/vfio", "/dev/vfio/vfio", "/dev/iommu", "/dev/iommu", "/dev/vfio/99"]
        members = ["/dev/vfio/26": ["0000:06:0d.0"], "/dev/vfio/27": ["0000:06:0e.0"], "/dev/vfio/28": ["0000:07:00.0", "0000:07:00.1"],
                   n.vfioGroup!.path: ["0000:09:00.0"], m.vfioGroup!.path: ["mdev-0"], "/dev/vfio/30": [Self.churn]]
        names = ["0000:06:0d.0", "0000:06:0e.0", "0000:07:00.0", "0000:07:00.1", "0000:09:00.0", "mdev-0", Self.churn, "nope"]
    }

    // MARK: pool

    func add(_ fd: Int32, _ entry: PoolEntry) { pool.withLock { $0.append((fd, entry)) } }

    var poolCount: Int { pool.withLock { $0.count } }

    /// A random pool fd (still in the pool: it may be closed under the caller, which is legal).
    func pick<G: RandomNumberGenerator>(_ rng: inout G, _ kind: PoolEntry.Kind? = nil) -> (fd: Int32, entry: PoolEntry)? {
        pool.withLock { p in
            let candidates = kind.map { k in p.filter { $0.entry.kind == k } } ?? p
            return candidates.randomElement(using: &rng)
        }
    }

    /// Takes a random fd out of the pool, for the caller to close.
    func take<G: RandomNumberGenerator>(_ rng: inout G) -> (fd: Int32, entry: PoolEntry)? {
        pool.withLock { p in
            guard !p.isEmpty else { return nil }
            return p.remove(at: Int.random(in: 0..<p.count, using: &rng))
        }
    }

    /// Honours a `request`: closes every fd of the churn device.
    func releaseChurnFDs() {
        let mine = pool.withLock { p -> [Int32] in
            let fds = p.filter { $0.entry.device == Self.churn }.map(\.fd)
            p.removeAll { $0.entry.device == Self.churn }
            return fds
        }
        for fd in mine { try? sub.close(fd) }
    }

    func closeEverything() {
        let all = pool.withLock { p -> [Int32] in defer { p.removeAll() }; return p.map(\.fd) }
        for fd in all { try? sub.close(fd) }
    }

    func violation(_ text: String) {
        violations.withLock { if $0.count < 100 { $0.append(text) } }
    }

    func describe() -> String {
        "pool \(poolCount) fds, release requested \(releaseRequested.load(ordering: .relaxed)), census \(sub.census.counts)"
    }

    // MARK: the driver thread

    /// Registers the churn device, lets the workers at it, unregisters it (its `request` asks the
    /// workers to close its fds), removes the hardware, and again.
    func driverLoop() {
        var rng = SplitMix64(seed: 0x5eed)
        while !stop.load(ordering: .acquiring) {
            do throws(Errno) {
                let bus: BusDevice
                if let b = sub.iommu.device(named: Self.churn) { bus = b } else { bus = try sub.iommu.addDevice(name: Self.churn) }
                if sub.iommu.iommuGroup(of: bus) == nil { try sub.iommu.addDevice(bus, to: sub.iommu.group(id: 30)!) }
                try sub.iommu.bindDriver("vfio-pci", to: bus, managesDMA: true)
                var ops = sub.pciDriver.ops
                ops.request = { [weak self] _, _ in self?.releaseRequested.store(true, ordering: .releasing) }
                let d = try sub.allocDevice(bus, ops: ops)
                do throws(Errno) { try sub.registerGroupDevice(d) } catch { d.put(); throw error }
                churnDevice = d
            } catch {
                violation("registering the churn device failed: \(error)")
                return
            }
            usleep(UInt32.random(in: 200...3000, using: &rng))
            sub.removeVFIODevice(churnDevice!)          // blocks until the workers closed its fds
            churnDevice = nil
            releaseRequested.store(false, ordering: .releasing)
            cycles.add(1, ordering: .relaxed)
            usleep(UInt32.random(in: 0...1000, using: &rng))
        }
    }

    // MARK: the checker thread

    func checkerLoop() {
        while !stop.load(ordering: .acquiring) {
            check()
            checks.add(1, ordering: .relaxed)
            usleep(200)
        }
    }

    /// The invariants that hold at every instant, each read under the lock that guards it.
    func check() {
        for g in sub.allGroups {
            let s = SweepSnapshot.state(g)
            // container_users is 0 exactly when no container is attached; 1 + devices open otherwise.
            if s.container != (s.containerUsers != 0) || s.containerUsers < 0 {
                violation("\(g.name): container \(s.container) with container_users \(s.containerUsers)")
            }
            if s.container && s.iommufd { violation("\(g.name): container and iommufd at once") }
            // The registration holds the group struct until removal clears iommu_group (both under
            // group_lock); after that only open files do, and the last one frees it.
            if s.deviceRefs < 0 || (!s.removed && s.deviceRefs < 1) {
                violation("\(g.name): group device refs \(s.deviceRefs), removed \(s.removed)")
            }
        }
        for d in stableDevices {
            let open = d.openCount
            if open < 0 { violation("\(d): open count \(open)") }
            if d.registrationCount < 1 { violation("\(d): registration count \(d.registrationCount)") }
            if d.refCount < 1 { violation("\(d): refcount \(d.refCount)") }
        }
        let c = sub.census.counts
        for (name, v) in [("files", c.files), ("fds", c.fds), ("groups", c.groups), ("containers", c.containers),
                          ("iommufd", c.iommufdContexts), ("devices", c.devices), ("device sets", c.deviceSets),
                          ("kvm references", c.kvmReferences)] where v < 0 {
            violation("census \(name) \(v)")
        }
        for g in sub.iommu.groups where g.dmaOwnerCount < 0 { violation("iommu_group \(g.id): owner count \(g.dmaOwnerCount)") }
        for (i, vm) in vms.enumerated() where i < 2 && vm.users.load(ordering: .relaxed) < 1 {
            violation("VM \(i): user count \(vm.users.load(ordering: .relaxed))")
        }
        if sub.log.warnCount > 0 { violation("WARN: \(sub.log.warnMessages.first ?? "")") }
    }
}

// MARK: - a worker

struct WorkerResult {
    var ops = 0
    /// Outcomes per operation: "ok" or the errno name.
    var outcomes: [String: [String: Int]] = [:]
    var unknownErrnos: [String] = []

    static func merge(_ all: [WorkerResult]) -> WorkerResult {
        var m = WorkerResult()
        for r in all {
            m.ops += r.ops
            m.unknownErrnos += r.unknownErrnos
            for (op, o) in r.outcomes { m.outcomes[op, default: [:]].merge(o, uniquingKeysWith: +) }
        }
        return m
    }

    func summary() -> String {
        outcomes.sorted { $0.key < $1.key }.map { op, o in
            "\(op) {" + o.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "}"
        }.joined(separator: "; ")
    }
}

/// The Linux errnos the model may answer (anything else is a bug).
let knownErrnoValues: Set<Int32> = [1, 2, 4, 5, 6, 7, 9, 11, 12, 13, 14, 16, 17, 19, 22, 23, 24, 25, 28, 77, 95]

final class StressWorker {
    let world: StressWorld
    var rng: SplitMix64
    let id: Int
    var result = WorkerResult()
    /// Anonymous memory this thread maps DMA from, and ioctl argument space (4 KiB: the model may
    /// write up to what argsz allows, never past a page).
    let mem = Mapping(size: 0x10000)
    let arg = Mapping(size: 0x1000)

    init(world: StressWorld, rng: SplitMix64, id: Int) {
        self.world = world
        self.rng = rng
        self.id = id
    }

    var sub: VFIOSubsystem { world.sub }

    func record(_ op: String, _ body: () throws(Errno) -> Void) {
        result.ops += 1
        do throws(Errno) {
            try body()
            result.outcomes[op, default: [:]]["ok", default: 0] += 1
        } catch {
            if !knownErrnoValues.contains(error.rawValue) { result.unknownErrnos.append("\(op): \(error.rawValue)") }
            result.outcomes[op, default: [:]][error.name, default: 0] += 1
        }
    }

    func run(until deadline: UInt64) {
        while DispatchFreeClock.nanoseconds() < deadline {
            if world.releaseRequested.load(ordering: .acquiring) { world.releaseChurnFDs() }
            step()
        }
    }

    /// A random fd: usually from the pool, sometimes a number that is not the model's.
    func anyFD(_ kind: PoolEntry.Kind? = nil) -> Int32 {
        if rng.next() % 16 == 0 { return [-1, 0, 1, 9999][Int(rng.next() % 4)] }
        return world.pick(&rng, kind)?.fd ?? -1
    }

    func step() {
        let crowded = world.poolCount > 40
        let r = crowded ? Int(rng.next() % 30) + 12 : Int(rng.next() % 100)
        let s = sub
        switch r {
        case 0..<12:
            let path = world.paths.randomElement(using: &rng)!
            record("open") { () throws(Errno) in
                let fd = try s.open(path)
                let kind: PoolEntry.Kind = path == "/dev/vfio/vfio" ? .container : path == "/dev/iommu" ? .iommufd : .group
                world.add(fd, PoolEntry(kind: kind, path: kind == .group ? path : nil))
            }
        case 12..<26:
            guard let e = world.take(&rng) else { return }
            record("close") { () throws(Errno) in try s.close(e.fd) }
        case 26..<30:
            guard let e = world.pick(&rng) else { return }
            let cloexec = rng.next() % 2 == 0
            record("dup") { () throws(Errno) in world.add(try s.dup(e.fd, cloexec: cloexec), e.entry) }
        case 30..<40:
            let g = anyFD(.group)
            let c = rng.next() % 5 == 0 ? anyFD() : anyFD(rng.next() % 2 == 0 ? .container : .iommufd)
            record("SET_CONTAINER") { () throws(Errno) in try s.setContainer(g, c) }
        case 40..<46:
            let g = anyFD(rng.next() % 4 == 0 ? nil : .group)
            record("UNSET_CONTAINER") { () throws(Errno) in try s.unsetContainer(g) }
        case 46..<52:
            let c = anyFD(rng.next() % 2 == 0 ? .container : .iommufd)
            let type = [VFIOExtension.type1IOMMU, VFIOExtension.type1v2IOMMU, VFIOExtension.noIOMMU, 2, 99][Int(rng.next() % 5)]
            record("SET_IOMMU") { () throws(Errno) in try s.setIOMMU(c, type) }
        case 52..<64:
            // Mostly a device of the group the fd is (legal), sometimes any name (ENODEV).
            let picked = world.pick(&rng, .group)
            let g = picked?.fd ?? -1
            let members = picked?.entry.path.flatMap { world.members[$0] } ?? []
            let name = (rng.next() % 4 != 0 ? members.randomElement(using: &rng) : nil) ?? world.names.randomElement(using: &rng)!
            // A driver's request is honoured: no new fds of a device being unregistered.
            if name == StressWorld.churn && world.releaseRequested.load(ordering: .acquiring) { return }
            record("GET_DEVICE_FD") { () throws(Errno) in
                world.add(try s.deviceFD(g, name), PoolEntry(kind: .device, device: name))
            }
        case 64..<68:
            let g = anyFD()
            record("GET_STATUS") { () throws(Errno) in _ = try s.status(g) }
        case 68..<73:
            let g = anyFD(.group)
            let vm = rng.next() % 4 == 0 ? nil : world.vms.randomElement(using: &rng)!.pointer
            record("set_kvm") { () throws(Errno) in
                let f = try s.fget(g)
                f.setKVM(vm)   // a no-op on a file that is not a group
                s.fput(f)
            }
        case 73..<76:
            let c = anyFD()
            let ext = UInt(rng.next() % 12)
            record("CHECK_EXTENSION") { () throws(Errno) in _ = try s.checkExtension(c, ext) }
        case 76..<82:
            let c = anyFD(.container)
            let page = UInt64(rng.next() % 16) * 0x1000
            let size = UInt64(rng.next() % 4 + 1) * 0x1000
            if rng.next() % 2 == 0 {
                var m = Type1DMAMapArg(flags: Type1UAPI.mapFlagRead | Type1UAPI.mapFlagWrite,
                                       vaddr: UInt64(mem.address) + page % 0xC000, iova: 0x100_0000 + page, size: size)
                record("MAP_DMA") { () throws(Errno) in try s.ioctl(c, Type1UAPI.mapDMA, pointerTo: &m) }
            } else {
                var u = Type1DMAUnmapArg(iova: 0x100_0000 + page, size: size)
                record("UNMAP_DMA") { () throws(Errno) in try s.ioctl(c, Type1UAPI.unmapDMA, pointerTo: &u) }
            }
        case 82..<92:
            randomIoctl()
        case 92..<96:
            let d = anyFD(.device)
            let cmd = [VFIOIoctl.deviceGetInfo, VFIOIoctl.deviceGetRegionInfo, VFIOIoctl.deviceGetIRQInfo, VFIOIoctl.deviceReset][Int(rng.next() % 4)]
            let p = arg.base
            p.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
            p.storeBytes(of: UInt32(32), as: UInt32.self)
            p.storeBytes(of: UInt32(rng.next() % 10), toByteOffset: 8, as: UInt32.self)
            let a = arg.address
            record("device ioctl") { () throws(Errno) in _ = try s.ioctl(d, UInt(cmd), a) }
        default:
            kapi()
        }
    }

    /// Any command on any fd; the argument is NULL, a small invalid pointer, a by-value number or a
    /// local buffer of random bytes in which nothing looks like a usable pointer.
    func randomIoctl() {
        let fd = anyFD()
        let known: [UInt32] = [0x3B64, 0x3B65, 0x3B66, 0x3B67, 0x3B68, 0x3B69, 0x3B6A, 0x3B6B, 0x3B6C, 0x3B6D, 0x3B6E,
                               0x3B6F, 0x3B70, 0x3B71, 0x3B72, 0x3B75, 0x3B80, 0x3B81, 0x3B88]
        let cmd: UInt = rng.next() % 4 == 0 ? UInt(0x3B00 + rng.next() % 0x100) : UInt(known.randomElement(using: &rng)!)
        let a: UInt
        switch rng.next() % 6 {
        case 0: a = 0
        case 1: a = 0x10
        case 2: a = UInt(rng.next() % 16)
        default:
            fillHarmless(arg.base, count: 128, rng: &rng)
            a = arg.address
        }
        // GET_DEVICE_FD of a random name would make an fd the pool does not know: keep it.
        record("random ioctl") { () throws(Errno) in
            let r = try sub.ioctl(fd, cmd, a)
            if cmd == UInt(VFIOIoctl.groupGetDeviceFD), r >= 0, sub.isModelFD(Int32(r)) {
                world.add(Int32(r), PoolEntry(kind: .device, device: String(cString: UnsafeRawPointer(bitPattern: a)!.assumingMemoryBound(to: CChar.self))))
            }
        }
    }

    /// The file kAPI on a random fd's file.
    func kapi() {
        let fd = anyFD()
        let dev = world.stableDevices.randomElement(using: &rng)!
        record("file kAPI") { () throws(Errno) in
            let f = try sub.fget(fd)
            defer { sub.fput(f) }
            _ = f.isGroup
            _ = f.enforcedCoherent
            _ = f.hasDevice(dev)
            if let g = f.iommuGroup() { g.put() }
            if f.isGroup { sub.fput(try sub.reopen(f)) }
        }
    }
}

/// Random bytes with every aligned 64-bit word that could be a user pointer made non-canonical
/// (bit 47 set), so a model that follows a pointer field gets EFAULT, never this process's memory.
/// The buffer stays NUL-terminated so a name read from it ends inside it.
func fillHarmless<G: RandomNumberGenerator>(_ p: UnsafeMutableRawPointer, count: Int, rng: inout G) {
    for i in stride(from: 0, to: count, by: 8) {
        var v = rng.next()
        if rng.next() % 3 == 0 { v &= 0xffff_ffff }   // small numbers: sizes, flags, argsz
        if v >= 0x1_0000 && v < 0x8000_0000_0000 { v |= 0x8000_0000_0000 }
        p.storeBytes(of: v, toByteOffset: i, as: UInt64.self)
    }
    p.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)
}

/// SplitMix64: a small deterministic generator (one per thread, so no shared state).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
enum DispatchFreeClock {
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

// MARK: - stacks of a hung process

/// Prints every thread's stack: `gdb -p <pid> -batch -ex 'thread apply all bt'` when gdb is
/// installed (after allowing any process to ptrace this one, for Yama's ptrace_scope 1), else what
/// /proc says of each thread (name, state, wait channel, the syscall it sits in).
func dumpAllThreadStacks() {
    fflush(nil)
    let candidates: [String] = ["/usr/bin/gdb", "/usr/local/bin/gdb", "/bin/gdb"]
    if let gdb = candidates.first(where: { access($0, X_OK) == 0 }) {
        // prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY): prctl is variadic, so reach it through dlsym.
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        if let sym = dlsym(nil, "prctl") {   // RTLD_DEFAULT
            _ = unsafeBitCast(sym, to: Prctl.self)(0x5961_6d61, UInt.max, 0, 0, 0)
        }
        let args: [String] = [gdb, "-q", "-nx", "-batch", "-iex", "set complaints 0", "-p", "\(getpid())",
                              "-ex", "thread apply all bt"]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // gdb's own noise (DWARF warnings) goes to /dev/null; the stacks go to our stdout.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        if posix_spawn(&pid, gdb, &actions, nil, &argv, environ) == 0 {
            var status: Int32 = 0
            for _ in 0..<1200 {                          // at most 60 s
                if waitpid(pid, &status, WNOHANG) == pid { return }
                usleep(50_000)
            }
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            return
        }
    }
    guard let dir = opendir("/proc/self/task") else { return }
    defer { closedir(dir) }
    func read(_ path: String) -> String {
        guard let f = fopen(path, "r") else { return "?" }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = fread(&buf, 1, buf.count - 1, f)
        var text = Substring(String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
    while let e = readdir(dir) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name.first?.isNumber == true else { continue }
        let base = "/proc/self/task/\(name)"
        print("thread \(name) \(read(base + "/comm")): stat \(read(base + "/stat")) wchan \(read(base + "/wchan")) syscall \(read(base + "/syscall"))")
        print(read(base + "/stack"))
    }
}
