// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSwiftVFIOShim
import Synchronization
import VFIO

/// The process's default model: one `VFIOSubsystem` the C ABI (and the interposer, through it)
/// works on, plus the handle table, the per-thread last error and the KVM symbol lookup.
///
/// Replacing the model (`swiftvfio_topology_load`) must never pull a subsystem from under a call
/// that is using it. Every entry point runs inside `DefaultSubsystem.with`, which counts itself in its
/// thread's in-flight slot; a load raises `loading` and only proceeds when no thread has a call
/// in flight (a Dekker handshake on sequentially consistent atomics: either the entering call sees
/// `loading` and waits, or the load sees the call and answers EBUSY). The common path costs one
/// atomic add on a cache line only its own thread writes, and a plain store: threads working on
/// unrelated groups share no counter.
final class DefaultSubsystem: @unchecked Sendable {
    static let shared = DefaultSubsystem()

    /// Handles issued to C (a global: reaching it takes no retain on the C calls' fast path).
    var handles: HandleTable { HandleTable.shared }
    /// C drivers' devices alive (allocated, not yet released): a load refuses to drop them.
    let cDevices = Atomic<Int>(0)

    /// One thread's calls in flight. Written only by its thread; read by a load. Padded so two
    /// threads' counters never share a cache line, nor the pair of lines the prefetcher fetches.
    final class InFlight {
        let count = Atomic<Int>(0)
        private var padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                              UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Every thread's slot (a thread that exits returns its slot to `freeInFlight` for the next).
    private let inFlightLock = KernelMutex("swiftvfio.in_flight")
    private var inFlightSlots: [InFlight] = []
    private var freeInFlight: [InFlight] = []
    private static let inFlightKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            svfio_tls_set_in_flight(nil)
            guard let p else { return }
            let slot = Unmanaged<InFlight>.fromOpaque(p).takeUnretainedValue()
            DefaultSubsystem.shared.inFlightLock.withLock { DefaultSubsystem.shared.freeInFlight.append(slot) }
        }
        return k
    }()

    private let loading = Atomic<Bool>(false)
    /// Set (non-NULL) on the thread running `replace`.
    private static let loaderKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
    /// Creation of the first subsystem and replacement are serialised by this lock.
    private let lock = KernelMutex("swiftvfio.default_model")
    /// The current subsystem, retained, as a bit pattern (0 before first use). Read without the
    /// lock by calls in flight; written only while no call is in flight.
    private let current = Atomic<UInt>(0)

    private init() {}

    /// Runs `body` on the current subsystem as one call in flight.
    @inline(__always)
    func with<R>(_ body: (VFIOSubsystem) throws(CallError) -> R) throws(CallError) -> R {
        let slot = inFlightSlot()
        enter(slot)
        defer {
            // Only this thread writes its count: a plain (release) store, no locked instruction.
            slot.with { $0.count.store($0.count.load(ordering: .relaxed) - 1, ordering: .releasing) }
        }
        // The subsystem is lent to `body` without a retain: `current` holds it, and a replacement
        // waits until no call is in flight. (A retain would write the shared object's reference
        // count on every call, a cache line that threads working on unrelated groups would share.)
        guard let sub = Unretained<VFIOSubsystem>(bits: current.load(ordering: .acquiring)) else {
            return try body(subsystem())
        }
        return try sub.with(body)
    }

    @inline(__always) private func enter(_ slot: Unretained<InFlight>) {
        slot.with { s in
            while true {
                s.count.wrappingAdd(1, ordering: .sequentiallyConsistent)   // lock xadd (add checks overflow: a CAS loop)
                if !loading.load(ordering: .sequentiallyConsistent) { return }
                // The loading thread's own nested calls (a plug-in driver's ops while the load
                // unbinds or binds its devices) go on: the load waits for nobody but others.
                if pthread_getspecific(Self.loaderKey) != nil { return }
                s.count.subtract(1, ordering: .sequentiallyConsistent)
                while loading.load(ordering: .sequentiallyConsistent) { sched_yield() }
            }
        }
    }

    /// The calling thread's in-flight slot (held by the registry; the thread's TLS slot, one load,
    /// holds it unretained; the pthread key is there for the thread-exit destructor).
    @inline(__always) private func inFlightSlot() -> Unretained<InFlight> {
        if let p = svfio_tls_in_flight() { return Unretained<InFlight>(p) }
        return newInFlightSlot()
    }

    @inline(never)
    private func newInFlightSlot() -> Unretained<InFlight> {
        let slot = inFlightLock.withLock { () -> InFlight in
            if let s = freeInFlight.popLast() { return s }
            let s = InFlight()
            inFlightSlots.append(s)
            return s
        }
        let p = Unmanaged.passUnretained(slot).toOpaque()
        pthread_setspecific(Self.inFlightKey, p)
        svfio_tls_set_in_flight(p)
        return Unretained<InFlight>(p)
    }

    /// Whether any thread has a call in flight (after `loading` is raised).
    private func anyInFlight() -> Bool {
        inFlightLock.withLock { inFlightSlots.contains { $0.count.load(ordering: .sequentiallyConsistent) != 0 } }
    }

    @inline(__always) private func subsystem() -> VFIOSubsystem {
        let bits = current.load(ordering: .acquiring)
        if bits != 0 { return Unmanaged<VFIOSubsystem>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue() }
        return lock.withLock {
            let bits = current.load(ordering: .acquiring)
            if bits != 0 { return Unmanaged<VFIOSubsystem>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue() }
            let sub = Self.initialSubsystem()
            current.store(UInt(bitPattern: Unmanaged.passRetained(sub).toOpaque()), ordering: .releasing)
            // Plug-in drivers bind now: their ops call back into the library, on this model.
            Plugins.bind(sub)
            Control.startIfRequested()
            return sub
        }
    }

    /// The first model: `SWIFTVFIO_TOPOLOGY` if set, else the built-in default. A topology that
    /// fails to load leaves an empty model (every path ENOENT) and says why on stderr and in the
    /// first caller's `swiftvfio_last_error()`; `swiftvfio_topology_load()` can then replace it.
    private static func initialSubsystem() -> VFIOSubsystem {
        var sub: VFIOSubsystem
        if let e = Plugins.loadOnce() {
            LastError.set("\(e.message); the model is empty")
            let line = "swiftvfio: \(e.message); the model is empty\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
            sub = ProcessEnvironment.emptySubsystem()
        } else if let path = ProcessEnvironment.current.topologyPath {
            do throws(CallError) {
                sub = try ProcessEnvironment.load(topology: path)
            } catch {
                let text = "SWIFTVFIO_TOPOLOGY: \(error.message); the model is empty"
                LastError.set(text)
                let line = "swiftvfio: \(text)\n"
                _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
                sub = ProcessEnvironment.emptySubsystem()
            }
        } else {
            // The built-in topology is valid by construction; an empty model is the safe fallback.
            sub = (try? ProcessEnvironment.load(topology: nil)) ?? ProcessEnvironment.emptySubsystem()
        }
        installKVMLookup(sub)
        return sub
    }

    /// `symbol_get(kvm_get_kvm_safe)` / `symbol_get(kvm_put_kvm)`: looked up in the process
    /// (`dlsym(RTLD_DEFAULT, ...)`) at every first open that needs them, so a consumer that
    /// defines and exports them (link with -rdynamic) is found whenever it was loaded.
    static func installKVMLookup(_ sub: VFIOSubsystem) {
        sub.setKVMSymbolLookup {
            typealias GetSafe = @convention(c) (UnsafeMutableRawPointer?) -> Bool
            typealias Put = @convention(c) (UnsafeMutableRawPointer?) -> Void
            // RTLD_DEFAULT is ((void *)0) in glibc.
            guard let g = dlsym(nil, "kvm_get_kvm_safe"), let p = dlsym(nil, "kvm_put_kvm") else {
                reportMissingKVMSymbolsOnce()
                return nil
            }
            let getSafe = unsafeBitCast(g, to: GetSafe.self)
            let put = unsafeBitCast(p, to: Put.self)
            return KVMOps(getSafe: { getSafe($0) }, put: { put($0) })
        }
    }

    private static let kvmSymbolsReported = Atomic<Bool>(false)

    /// Nothing silent: a consumer that sets a VM but does not export the KVM symbols is told once
    /// per process, on standard error, what to change (the WARN in the log repeats per open).
    static func reportMissingKVMSymbolsOnce() {
        guard !kvmSymbolsReported.exchange(true, ordering: .relaxed) else { return }
        Tracer.reportToStandardError(
            "swiftvfio: kvm_get_kvm_safe/kvm_put_kvm not found in the process, so devices opened with a VM set "
                + "(vfio_file_set_kvm) take no VM reference: define both and export them (link the program with "
                + "-rdynamic, or -Wl,--export-dynamic-symbol=kvm_get_kvm_safe,--export-dynamic-symbol=kvm_put_kvm)")
    }

    /// The current subsystem without entering (for callbacks, which run inside a call in flight).
    var currentSubsystem: VFIOSubsystem? {
        let bits = current.load(ordering: .acquiring)
        return bits == 0 ? nil : Unmanaged<VFIOSubsystem>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue()
    }

    /// Replaces the model with `make()`'s, unless the current one is busy. A `make` that fails
    /// leaves the current model exactly as it was.
    func replace(_ make: () throws(CallError) -> VFIOSubsystem) throws(CallError) {
        guard loading.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else {
            throw CallError(.EBUSY, "another topology load is in progress")
        }
        defer { loading.store(false, ordering: .sequentiallyConsistent) }
        if let e = Plugins.loadOnce() { throw e }
        if anyInFlight() {
            throw CallError(.EBUSY, "model calls are in progress (a blocked unregister, or a call from a driver callback)")
        }
        try lock.withLock { () throws(CallError) in
            let bits = current.load(ordering: .acquiring)
            let old = bits == 0 ? nil : Unmanaged<VFIOSubsystem>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!)
            if let old {
                let sub = old.takeUnretainedValue()
                let c = sub.census.counts
                if sub.openFDCount > 0 || c.files > 0 {
                    throw CallError(.EBUSY, "model files are open (\(sub.openFDCount) fds, \(c.files) files)")
                }
                // Plug-in devices go with their model; devices a C program made must be gone.
                let others = cDevices.load(ordering: .relaxed) - Plugins.deviceCount(sub)
                if others > 0 {
                    throw CallError(.EBUSY, "C drivers' devices exist (\(others))")
                }
                if let held = handles.heldReferences() {
                    throw CallError(.EBUSY, "C holds references: \(held)")
                }
            }
            let new = try make()
            if let old {
                // The old model's plug-in devices are unregistered and released (nothing is open).
                pthread_setspecific(Self.loaderKey, UnsafeRawPointer(bitPattern: 1))
                Plugins.unbindAll(old.takeUnretainedValue())
                pthread_setspecific(Self.loaderKey, nil)
            }
            Self.installKVMLookup(new)
            handles.retireAll()
            current.store(UInt(bitPattern: Unmanaged.passRetained(new).toOpaque()), ordering: .releasing)
            pthread_setspecific(Self.loaderKey, UnsafeRawPointer(bitPattern: 1))
            Plugins.bind(new)
            pthread_setspecific(Self.loaderKey, nil)
            Control.startIfRequested()
            if let old {
                old.takeUnretainedValue().shutdown()
                old.release()
            }
        }
    }
}

/// An error of one C call: the errno to report and a message for `swiftvfio_last_error()`.
struct CallError: Error {
    var errno: Errno
    var message: String
    /// `message` says which call and object; the model's reason (`Errno.reasonText`), when the
    /// failing check gave one, is appended after ": " unless `withReason` is false (the caller
    /// placed it itself).
    init(_ errno: Errno, _ message: String, withReason: Bool = true) {
        self.errno = errno
        if withReason, let why = errno.reasonText {
            self.message = message.isEmpty ? why : message + ": " + why
        } else {
            self.message = message
        }
    }
}

/// This thread's last error message (`swiftvfio_last_error`): a C string owned by the thread,
/// replaced by the next error.
enum LastError {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in free(p) }
        return k
    }()

    static func set(_ text: String) {
        let old = pthread_getspecific(key)
        pthread_setspecific(key, strdup(text))
        free(old)
    }

    static var cString: UnsafePointer<CChar>? {
        pthread_getspecific(key).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
    }
}

// MARK: - Shapes of the C calls

/// Runs a kernel-style call: its result, or `-errno` (negative) on error.
@inline(__always)
func kernelCall(_ fn: StaticString, _ body: (VFIOSubsystem) throws(CallError) -> Int32) -> Int32 {
    do throws(CallError) {
        return try DefaultSubsystem.shared.with(body)
    } catch {
        LastError.set("\(fn): \(error.errno.name): \(error.message)")
        return -error.errno.rawValue
    }
}

/// Runs a syscall-style call: its result, or -1 with `errno` set.
@inline(__always)
func syscallCall<R: BinaryInteger>(_ fn: StaticString, _ body: (VFIOSubsystem) throws(CallError) -> R) -> R {
    do throws(CallError) {
        return try DefaultSubsystem.shared.with(body)
    } catch {
        LastError.set("\(fn): \(error.errno.name): \(error.message)")
        Glibc.errno = error.errno.rawValue
        return -1
    }
}

/// Runs a call whose C result cannot carry an error (bool, void, a pointer): `fallback` on error,
/// with the message in `swiftvfio_last_error()` and, for pointer results, `errno` set.
@inline(__always)
func quietCall<R>(_ fn: StaticString, _ fallback: R, setErrno: Bool = false,
                  _ body: (VFIOSubsystem) throws(CallError) -> R) -> R {
    do throws(CallError) {
        return try DefaultSubsystem.shared.with(body)
    } catch {
        LastError.set("\(fn): \(error.errno.name): \(error.message)")
        if setErrno { Glibc.errno = error.errno.rawValue }
        return fallback
    }
}

/// Runs a model function, turning its `Errno` into a `CallError` saying what failed.
@inline(__always)
func model<R>(_ what: @autoclosure () -> String, _ body: () throws(Errno) -> R) throws(CallError) -> R {
    do throws(Errno) {
        return try body()
    } catch {
        throw CallError(error, what())
    }
}

/// A C string argument, copied through the guarded user-memory path: EFAULT for NULL or an
/// unreadable pointer, EINVAL when no NUL lies within `limit` bytes.
func cString(_ p: UnsafePointer<CChar>?, _ what: String, limit: Int = 4096) throws(CallError) -> String {
    guard let p else { throw CallError(.EFAULT, "\(what) is NULL") }
    do throws(Errno) {
        return try UserMemory.string(at: UInt(bitPattern: p), limit: limit)
    } catch {
        throw CallError(error, error == .EFAULT ? "\(what) is not a readable string" : "\(what) is longer than \(limit - 1) bytes", withReason: false)
    }
}

/// Writes `value` through a C out-pointer with the guarded copy (EFAULT for NULL or unwritable).
func writeOut<T: BitwiseCopyable>(_ value: T, to p: UnsafeMutableRawPointer?, _ what: String) throws(CallError) {
    guard let p else { throw CallError(.EFAULT, "\(what) is NULL") }
    do throws(Errno) {
        try UserMemory.write(value, to: UInt(bitPattern: p))
    } catch {
        throw CallError(error, "\(what) is not writable", withReason: false)
    }
}

/// A C `int` from a model count, clamped rather than trapping.
@inline(__always) func cInt(_ n: Int) -> Int32 { Int32(clamping: n) }
