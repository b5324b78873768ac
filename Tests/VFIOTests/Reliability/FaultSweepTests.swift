// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VFIO

/// The fault sweep (issue 7): every public operation of the core, failed at every fault point it
/// reaches, at every hit of that point.
///
/// The table below lists operations, not faults. For each one the sweep learns by itself which
/// fault points it reaches and how often (a discovery run with `startCounting()`), then for every
/// (point, k) builds a fresh prepared subsystem, snapshots it (`SweepSnapshot`), makes the k-th hit
/// fail and checks: the call fails with the errno the kernel would return at that step, the
/// snapshot is unchanged, the armed fault was consumed; then the same call without a fault gives
/// its normal outcome, and the teardown finds nothing leaked. A new fault point, or a new path to
/// an old one, is swept without anyone writing a test for it.
@Suite struct FaultSweepTests {
    /// The errno injected at each point: what the kernel step it stands for returns.
    ///
    /// | point | kernel step | injected | the call fails with |
    /// |---|---|---|---|
    /// | groupAlloc | `kzalloc(struct vfio_group)` | ENOMEM | ENOMEM |
    /// | groupMinor | `ida_alloc_max(&vfio.group_ida)` | ENOSPC | ENOSPC |
    /// | groupCdevAdd | `cdev_device_add` | EBUSY | EBUSY |
    /// | fakeIOMMUGroupAlloc | `iommu_group_alloc` | ENOMEM | ENOMEM |
    /// | fakeIOMMUGroupAddDevice | `iommu_group_add_device` | ENOMEM | ENOMEM |
    /// | deviceIndex | `ida_alloc(&vfio.device_ida)` | ENOSPC | ENOSPC |
    /// | deviceAdd | `device_add` | ENOMEM | ENOMEM |
    /// | deviceSetAlloc | `kzalloc(struct vfio_device_set)` | ENOMEM | ENOMEM |
    /// | deviceAlloc | `kvzalloc` in `vfio_alloc_device` | ENOMEM | ENOMEM |
    /// | nameCopy | `strndup_user` | ENOMEM | ENOMEM |
    /// | fdReserve | `get_unused_fd_flags` | EMFILE | EMFILE |
    /// | anonInodeFile | `anon_inode_getfile` | ENFILE | ENFILE |
    /// | driverModuleGet | `try_module_get` (a bool) | EIO | **ENODEV** (`vfio_device_first_open`'s answer whatever the cause) |
    /// | containerAlloc | `kzalloc(struct vfio_container)` | ENOMEM | ENOMEM |
    /// | iommufdAlloc | `iommufd_fops_open`'s allocation | ENOMEM | ENOMEM |
    /// | backendOpen | the backend's `open` (type1: kzalloc) | ENOMEM | ENOMEM (SET_IOMMU: last error of the backends tried) |
    /// | backendAttach | the backend's `attach_group` | EIO | EIO |
    /// | ownershipClaim | `iommu_group_claim_dma_owner` / `iommu_device_claim_dma_owner` | EBUSY | EBUSY |
    /// | compatIOASAlloc | `iommufd_vfio_compat_ioas_create` | ENOMEM | ENOMEM |
    /// | fileAlloc | `alloc_empty_file` | ENFILE | ENFILE |
    ///
    /// A topology load reports the errno inside a `TopologyError` naming the JSON path. EINVAL is
    /// never injected: a load keeps going past a vfio-pci probe that fails EINVAL (the kernel's
    /// "no cache coherency" / "no IOMMU group" refusals), so it would not tell a fault from a rule.
    static func injected(_ p: FaultPoint) -> Errno {
        switch p {
        case .groupAlloc, .fakeIOMMUGroupAlloc, .fakeIOMMUGroupAddDevice, .deviceAdd, .deviceSetAlloc, .deviceAlloc,
             .nameCopy, .containerAlloc, .iommufdAlloc, .backendOpen, .compatIOASAlloc: .ENOMEM
        case .groupMinor, .deviceIndex: .ENOSPC
        case .groupCdevAdd, .ownershipClaim: .EBUSY
        case .fdReserve: .EMFILE
        case .anonInodeFile, .fileAlloc: .ENFILE
        case .driverModuleGet, .backendAttach: .EIO
        }
    }

    /// The errno the call fails with when `p` fails with `injected(p)`.
    static func expected(_ p: FaultPoint) -> Errno {
        p == .driverModuleGet ? .ENODEV : injected(p)
    }

    /// SWIFTVFIO_SWEEP_VERBOSE=1 prints each operation's fault points and hit counts.
    static var verbose: Bool { getenv("SWIFTVFIO_SWEEP_VERBOSE").map { String(cString: $0) == "1" } ?? false }

    @Test func sweep() throws {
        let verbose = Self.verbose
        let ops = SweepTable.operations
        #expect(Set(ops.map(\.name)).count == ops.count, "operation names must be unique")
        var reached: Set<FaultPoint> = []
        var cases = 0
        for op in ops {
            let hits = try discover(op)
            if verbose {
                print("  \(op.name): " + hits.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)×\($0.value)" }.joined(separator: " "))
            }
            for (point, n) in hits.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                reached.insert(point)
                for k in 1...n {
                    try failAt(op, point, k)
                    cases += 1
                }
            }
        }
        print("fault sweep: \(ops.count) operations, \(cases) (operation, point, hit) cases, \(reached.count) of \(FaultPoint.allCases.count) fault points reached")
        let missed = Set(FaultPoint.allCases).subtracting(reached)
        #expect(missed.isEmpty, "fault points no operation reaches: \(missed.map(\.rawValue).sorted())")
    }

    /// The discovery run: the call's normal outcome, and the hits of each point on the way.
    func discover(_ op: SweepOp) throws -> [FaultPoint: Int] {
        let sub = makeSubsystem(op.config)
        let env = SweepEnv()
        try op.prepare(sub, env)
        var target = sub
        if op.isLoad {
            env.willApply = { [unowned env] inner in env.inner = inner; inner.faults.startCounting() }
        } else {
            sub.faults.startCounting()
        }
        let outcome = SweepOutcome { () throws(Errno) in try op.call(sub, env) }
        if op.isLoad { target = env.inner ?? sub }
        #expect(outcome == op.outcome, "\(op.name): the unfaulted call gave \(outcome), expected \(op.outcome)")
        let hits = target.faults.hits
        target.faults.reset()
        finish(op, sub, env)
        return hits
    }

    /// One case: the k-th hit of `point` fails.
    func failAt(_ op: SweepOp, _ point: FaultPoint, _ k: Int) throws {
        let label = "\(op.name) @ \(point.rawValue)#\(k)"
        let sub = makeSubsystem(op.config)
        let env = SweepEnv()
        try op.prepare(sub, env)
        var before: SweepSnapshot?
        if op.isLoad {
            env.willApply = { [unowned env] inner in
                env.inner = inner
                env.innerBefore = SweepSnapshot(inner)
                inner.faults.arm(point, nth: k, errno: Self.injected(point))
            }
        } else {
            before = SweepSnapshot(sub, extra: env.extraDevices, vm: env.vm)
            sub.faults.arm(point, nth: k, errno: Self.injected(point))
        }
        let outcome = SweepOutcome { () throws(Errno) in try op.call(sub, env) }
        #expect(outcome == .failure(Self.expected(point)), "\(label): \(outcome), expected \(Self.expected(point))")
        if op.isLoad {
            let inner = try #require(env.inner, "\(label): the load made no subsystem")
            #expect(!inner.faults.pending, "\(label): the fault point was not reached")
            let after = SweepSnapshot(inner).vfioLayer
            let was = env.innerBefore!.vfioLayer
            #expect(after == was, "\(label): a failed load left state behind:\n\(after.difference(from: was))")
            // The discarded hardware: no fake IOMMU group, no reference but discovery and members.
            for g in inner.iommu.groups {
                #expect(!g.isFake && g.refCount == 1 + g.devices.count,
                        "\(label): iommu_group \(g.id) fake \(g.isFake) refs \(g.refCount) members \(g.devices.count)")
            }
            #expect(inner.census.iommuGroupCount == inner.iommu.groups.count, "\(label): IOMMU groups leaked")
            env.inner = nil
            env.willApply = nil
        } else {
            #expect(!sub.faults.pending, "\(label): the fault point was not reached")
            let after = SweepSnapshot(sub, extra: env.extraDevices, vm: env.vm)
            #expect(after == before!, "\(label): the failed call changed state:\n\(after.difference(from: before!))")
        }
        // The same call without a fault.
        let again = SweepOutcome { () throws(Errno) in try op.call(sub, env) }
        #expect(again == op.outcome, "\(label): after the fault the call gave \(again), expected \(op.outcome)")
        finish(op, sub, env)
    }

    func finish(_ op: SweepOp, _ sub: VFIOSubsystem, _ env: SweepEnv) {
        op.finish?(sub, env)
        for f in env.heldFiles { sub.fput(f) }
        env.heldFiles.removeAll()
        // Devices the test allocated and nobody registered: the allocation's reference.
        for d in env.extraDevices where !d.registered && d.refCount > 0 { d.put() }
        env.extraDevices.removeAll()
        if let loaded = env.loaded { teardown(loaded) }
        env.loaded = nil
        env.willApply = nil
        env.inner = nil
        teardown(sub)
    }

    // MARK: regression tests for bugs the sweep found

    /// A vfio-pci probe failing with anything but the kernel's EINVAL refusals used to be logged and
    /// skipped, so a load under memory pressure "succeeded" with devices silently missing. Now the
    /// load fails, naming the device's path, and nothing is half-loaded.
    @Test func loadFailsWhenAProbeFailsForAnotherReason() throws {
        var inner: VFIOSubsystem?
        let error = #expect(throws: TopologyError.self) {
            _ = try VFIOSubsystem.load(.builtInDefault, source: "default", base: VFIOConfig(), rawIO: .granted) { sub in
                inner = sub
                sub.faults.arm(.groupAlloc, nth: 2, errno: .ENOMEM)   // the second VFIO group: 27
            }
        }
        #expect(error?.path == "$.iommu_groups[1].devices[0]")
        #expect(error.flatMap(errnoOfTopologyError) == .ENOMEM)
        let sub = try #require(inner)
        #expect(sub.census.counts == Census.Counts())
        #expect(sub.allGroups.isEmpty && sub.liveGroupCount == 0)
    }

    /// An emulated device whose allocation failed used to stay bound to its driver, so its bus
    /// device could not be removed: the name stayed taken and the next probe failed EEXIST.
    @Test func emulatedProbeUnbindsWhenAllocationFails() throws {
        for point in [FaultPoint.deviceAlloc, .deviceIndex] {
            let sub = makeSubsystem()
            sub.faults.arm(point, errno: .ENOMEM)
            #expect(throws: Errno.ENOMEM) { try sub.probeEmulatedDevice(name: "mdev-9") }
            #expect(sub.iommu.device(named: "mdev-9") == nil)
            try sub.probeEmulatedDevice(name: "mdev-9")
            teardown(sub)
        }
    }

    /// The kernel's own refusals still leave just that device out.
    @Test func loadSkipsADeviceTheKernelWouldRefuse() throws {
        let spec = TopologySpec(iommuGroups: [
            .init(id: 1, devices: [.init(name: "a", driver: "vfio-pci")]),
            .init(id: 2, devices: [.init(name: "b", driver: "vfio-pci", cacheCoherency: false)]),
        ], noIOMMUDevices: [.init(name: "n", driver: "vfio-pci")])
        let sub = try VFIOSubsystem.load(spec, rawIO: .granted)
        #expect(sub.allGroups.map(\.name) == ["1"])
        teardown(sub)
    }
}

/// What a call did: returned, or threw this errno.
enum SweepOutcome: Equatable, CustomStringConvertible {
    case success
    case failure(Errno)

    init(_ body: () throws(Errno) -> Void) {
        do { try body(); self = .success } catch { self = .failure(error) }
    }

    var description: String {
        switch self {
        case .success: "success"
        case .failure(let e): e.name
        }
    }
}

/// What `prepare` made, for `call` and `finish` to use.
final class SweepEnv: @unchecked Sendable {
    var fds: [String: Int32] = [:]
    var devices: [String: VFIODevice] = [:]
    var buses: [String: BusDevice] = [:]
    /// Devices the test allocated itself (snapshotted and put at the end).
    var extraDevices: [VFIODevice] = []
    /// File references the test holds (put at the end).
    var heldFiles: [VFIOFile] = []
    var paths: [String: String] = [:]
    var vm: FakeVM?
    var mem: Mapping?
    var spec: TopologySpec?
    var json: String?
    /// For loads: run on the new subsystem before any hardware enters it.
    var willApply: ((VFIOSubsystem) -> Void)?
    var inner: VFIOSubsystem?
    var innerBefore: SweepSnapshot?
    var loaded: VFIOSubsystem?

    subscript(fd key: String) -> Int32 { fds[key]! }

    func open(_ sub: VFIOSubsystem, _ key: String, _ path: String) throws {
        fds[key] = try sub.open(path)
    }
}

/// One operation of the sweep: `prepare` (never under fault) then `call`.
struct SweepOp: Sendable {
    var name: String
    var config: VFIOConfig = SweepTable.config
    /// The normal outcome of `call` (some operations are illegal on purpose: their error paths
    /// must unwind too).
    var outcome: SweepOutcome = .success
    /// Whether `call` loads a topology into a new subsystem (faults are armed in that one).
    var isLoad = false
    var prepare: @Sendable (VFIOSubsystem, SweepEnv) throws -> Void
    var call: @Sendable (VFIOSubsystem, SweepEnv) throws(Errno) -> Void
    /// Undoes what a successful `call` made that teardown does not (held files, allocated devices).
    var finish: (@Sendable (VFIOSubsystem, SweepEnv) -> Void)?
}
