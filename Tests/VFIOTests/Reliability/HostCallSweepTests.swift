// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// The host-call sweep: the fault sweep's twin for the host system calls the model makes for its
/// own resources (`HostCall`, through the subsystem's `HostSystem` seam): every operation below,
/// with every host call it makes failed in turn, at every hit.
///
/// Like the fault sweep, the table lists operations, not failures: a discovery run counts the
/// calls each makes; then for each (call, k) a fresh rig is snapshotted, the k-th call fails, and:
/// - a call that can fail the operation (memfd, mmap, dup, the eventfd check) makes it fail with
///   the errno the host gave (the eventfd check: EBADF, as `eventfd_ctx_fdget` answers) and leaves
///   everything as it was: the VFIO and hardware snapshot, the device's interrupt state, and what the
///   model holds from the host (descriptors, mappings);
/// - a failed `close`/`munmap` still releases (the model ignores their results): the operation
///   succeeds as without the failure;
/// - a failed eventfd signal loses the interrupt: `raise` answers false, nothing else changes;
/// then the teardown finds nothing leaked, the model holds no descriptor and no mapping from the host.
@Suite struct HostCallSweepTests {
    /// A vfio-pci function `0000:06:0d.0` in group 26 (two BARs, MSI-X), a type1 container and the
    /// device fd open: what each operation starts from.
    final class Rig {
        static let identity = PCIDeviceIdentity(bars: [16384, 0, 8192], msiVectors: 2, msixVectors: 4)
        let sub: VFIOSubsystem
        var group: Int32 = -1, container: Int32 = -1, device: Int32 = -1
        let a = svfio_eventfd(0, 1), b = svfio_eventfd(0, 1)

        init(probe: Bool = true) throws {
            sub = makeSubsystem()
            guard probe else { return }
            try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci", identity: Self.identity)
            group = try sub.open("/dev/vfio/26")
            container = try sub.containerWith(group)
            device = try sub.deviceFD(group, "0000:06:0d.0")
        }
        deinit { close(a); close(b) }

        var model: PCIDeviceModel? {
            sub.registeredDevices.first.flatMap { ModelPCIDriver.model(of: $0) }
        }

        /// VFIO_DEVICE_SET_IRQS with eventfds.
        func setIRQs(index: UInt32, count: UInt32, fds: [Int32]) throws(Errno) {
            var words: [UInt32] = [UInt32(20 + 4 * fds.count), 4 | 32, index, 0, count] + fds.map { UInt32(bitPattern: $0) }
            _ = try words.withUnsafeMutableBytes { (p) -> Result<Int, Errno> in
                Result { () throws(Errno) -> Int in
                    try sub.ioctl(device, UInt(VFIOIoctl.deviceSetIRQs), UInt(bitPattern: p.baseAddress))
                }
            }.get()
        }

        /// Everything an operation that failed must leave as it found it.
        struct State: Equatable {
            var snapshot: SweepSnapshot
            var heldFDs: Int, heldMappings: Int
            var interrupts: String
        }
        var state: State {
            let live = sub.host.live
            let m = model
            return State(snapshot: SweepSnapshot(sub), heldFDs: live.fds, heldMappings: live.mappings,
                         interrupts: m.map { "\($0.interruptMode)/\($0.armedVectors)/\($0.interruptsSignalled)" } ?? "-")
        }
    }

    struct Operation: CustomTestStringConvertible, Sendable {
        let name: String
        /// Whether the rig probes the device first (the probe itself is an operation).
        var probed = true
        /// Runs after the rig is made, before the sweep's snapshot.
        var prepare: @Sendable (Rig) throws -> Void = { _ in }
        /// Whether a failed run leaves the interrupt state exactly as it was. Not so for a block of
        /// vectors replacing armed ones: the kernel's vfio_msi_set_block() unwinds every vector from
        /// `start` up to the one that failed to "no trigger" (the ones after it keep theirs), so the
        /// check there is that each armed vector holds exactly one descriptor and nothing leaked.
        var keepsInterrupts = true
        /// The operation: its outcome as text (compared with the unfailed run's).
        let run: @Sendable (Rig) throws(Errno) -> String
        var testDescription: String { name }
    }

    static let operations: [Operation] = [
        // The function is on the bus (discovered hardware stays whatever its driver's probe does).
        Operation(name: "vfio-pci probe (BAR memfds and mappings)", probed: false, prepare: { r in
            try r.sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: nil)
        }) { r throws(Errno) in
            try r.sub.bindVFIOPCI(r.sub.iommu.device(named: "0000:06:0d.0")!, identity: Rig.identity)
            return "bound"
        },
        Operation(name: "mmap of BAR2") { r throws(Errno) in
            let p = try r.sub.mmap(r.device, offset: 2 << 40, length: 8192, prot: PROT_READ | PROT_WRITE)
            munmap(UnsafeMutableRawPointer(bitPattern: p), 8192)
            return "mapped"
        },
        Operation(name: "SET_IRQS MSI, two eventfds") { r throws(Errno) in
            try r.setIRQs(index: 1, count: 2, fds: [r.a, r.b])
            return "armed \(r.model!.armedVectors)"
        },
        Operation(name: "SET_IRQS MSI-X over MSI-X (replaces vectors)", prepare: { r in
            try r.setIRQs(index: 2, count: 2, fds: [r.a, r.b])
        }, keepsInterrupts: false) { r throws(Errno) in
            try r.setIRQs(index: 2, count: 2, fds: [r.b, r.a])
            return "armed \(r.model!.armedVectors)"
        },
        Operation(name: "SET_IRQS ERR trigger") { r throws(Errno) in
            try r.setIRQs(index: 3, count: 1, fds: [r.a])
            return "err armed \(r.model!.errArmed)"
        },
        Operation(name: "raise an MSI vector", prepare: { r in
            try r.setIRQs(index: 1, count: 2, fds: [r.a, r.b])
        }) { r throws(Errno) in
            "raised \(r.model!.raise(index: 1, vector: 1))"
        },
        Operation(name: "close the device fd (disable: triggers released)", prepare: { r in
            try r.setIRQs(index: 1, count: 2, fds: [r.a, r.b])
            try r.setIRQs(index: 4, count: 1, fds: [r.a])
        }) { r throws(Errno) in
            try r.sub.close(r.device)
            return "closed"
        },
        Operation(name: "remove the device (BAR memory released)", prepare: { r in
            try r.sub.close(r.device)
            try r.sub.close(r.group)
            try r.sub.close(r.container)
        }) { r throws(Errno) in
            for d in r.sub.registeredDevices { r.sub.removeVFIODevice(d) }
            return "removed \(r.sub.registeredDevices.count)"
        },
    ]

    /// The errno injected at each call: what the host would answer.
    static func injected(_ call: HostCall) -> Errno {
        switch call {
        case .memfd, .mmapShared: .ENOMEM
        case .dup: .EMFILE
        case .eventfdCheck: .EBADF
        case .munmap, .close, .eventfdSignal: .EIO
        }
    }

    /// The rig after an operation: torn down, nothing left, nothing held from the host.
    static func finish(_ r: Rig, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        teardown(r.sub, sourceLocation: sourceLocation)
        let live = r.sub.host.live
        #expect(live.fds == 0 && live.mappings == 0,
                "\(comment): the model still holds \(live.fds) fds and \(live.mappings) mappings", sourceLocation: sourceLocation)
    }

    @Test(arguments: operations)
    func everyHostCallFailedInTurn(_ op: Operation) throws {
        // Discovery: the unfailed run, counting host calls.
        let clean = try Rig(probe: op.probed)
        try op.prepare(clean)
        clean.sub.host.startCounting()
        let normal = try op.run(clean)
        let hits = clean.sub.host.hits
        clean.sub.host.reset()
        Self.finish(clean, "\(op.name), unfailed")
        #expect(!hits.isEmpty, "\(op.name) makes no host call: nothing to sweep")

        var cases = 0
        defer { print("host-call sweep: \(op.name): \(hits.count) kinds of call, \(cases) failure cases") }
        for call in HostCall.allCases {
            for k in 0..<(hits[call] ?? 0) {
                cases += 1
                let what = "\(op.name), \(call.rawValue) #\(k + 1) fails"
                let r = try Rig(probe: op.probed)
                try op.prepare(r)
                let before = r.state
                r.sub.host.arm(call, nth: k + 1, errno: Self.injected(call))
                var outcome: Result<String, Errno>
                do throws(Errno) { outcome = .success(try op.run(r)) } catch { outcome = .failure(error) }
                #expect(!r.sub.host.pending, "\(what): the armed failure never fired")
                r.sub.host.reset()
                switch call {
                case .memfd, .mmapShared, .dup, .eventfdCheck:
                    #expect(outcome == .failure(Self.injected(call)), "\(what)")
                    var after = r.state
                    if !op.keepsInterrupts {
                        let armed = r.model?.armedVectors ?? 0
                        #expect(after.heldFDs == before.heldFDs - (2 - armed) && armed < 2,
                                "\(what): \(armed) vectors armed, the model holds \(after.heldFDs) fds")
                        after.heldFDs = before.heldFDs
                        after.interrupts = before.interrupts
                    }
                    let change = "changed \(after.snapshot.difference(from: before.snapshot)); held "
                        + "\(before.heldFDs)/\(before.heldMappings) -> \(after.heldFDs)/\(after.heldMappings); "
                        + "interrupts \(before.interrupts) -> \(after.interrupts)"
                    #expect(after == before, "\(what): \(change)")
                case .close, .munmap:
                    #expect(outcome == .success(normal), "\(what)")
                case .eventfdSignal:
                    #expect(outcome == .success("raised false"), "\(what): the interrupt is lost, and said so")
                    #expect(r.state == before, "\(what)")
                }
                Self.finish(r, what)
            }
        }
    }

    /// Every host call is reached by some operation above, so none escapes the sweep.
    @Test func everyHostCallIsSwept() throws {
        var reached = Set<HostCall>()
        for op in Self.operations {
            let r = try Rig(probe: op.probed)
            try op.prepare(r)
            r.sub.host.startCounting()
            _ = try op.run(r)
            reached.formUnion(r.sub.host.hits.keys)
            r.sub.host.reset()
            Self.finish(r, "\(op.name)")
        }
        #expect(reached == Set(HostCall.allCases), "not swept: \(Set(HostCall.allCases).subtracting(reached))")
    }
}
