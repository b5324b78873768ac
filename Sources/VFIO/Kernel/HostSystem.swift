// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A host system call the model makes for resources of its own (not the user's fds): a BAR's
/// memfd and mappings, the duplicates of the user's eventfds it keeps, the signals it sends.
///
/// The host-call sweep enumerates `allCases`, so a new call is swept without anyone adding a test.
public enum HostCall: String, CaseIterable, Sendable {
    /// `memfd_create` + `ftruncate` of a BAR's backing store.
    case memfd
    /// `mmap(MAP_SHARED)` of a BAR's memfd (the model's own mapping, or the user's `mmap`).
    case mmapShared
    /// `munmap` of the model's own mapping.
    case munmap
    /// `close` of a descriptor the model owns.
    case close
    /// `fcntl(F_DUPFD_CLOEXEC)`: the model's own reference to a user's eventfd.
    case dup
    /// Whether a user's fd is an eventfd (`eventfd_ctx_fdget`'s check).
    case eventfdCheck
    /// `write(eventfd, 1)`: an interrupt signalled.
    case eventfdSignal
}

extension HostCall {
    /// The reason an injected host failure carries (read only when one fires).
    var injectedReason: StaticString {
        switch self {
        case .memfd: "host failure injected: memfd_create"
        case .mmapShared: "host failure injected: mmap"
        case .munmap: "host failure injected: munmap"
        case .close: "host failure injected: close"
        case .dup: "host failure injected: dup"
        case .eventfdCheck: "host failure injected: the eventfd check"
        case .eventfdSignal: "host failure injected: eventfd write"
        }
    }
}

/// The one seam between the model and the host's system calls for its own resources (swift-system
/// style: every such call goes through here, nowhere else), so tests can make any of them fail on
/// purpose (`arm`) and can check that nothing the model took from the host is left over (`live`).
///
/// Not through here, on purpose: the fd table's placeholders (`FDTable`), which are the user's
/// descriptors, the model's `get_unused_fd_flags()`/`fd_install()`, whose failures the kernel fault
/// point `fdReserve` already injects; and the trace file, which is diagnostics, not model state.
///
/// The fast path, nothing armed, is one relaxed atomic load before the real call. A failed `close`
/// or `munmap` still releases (as Linux's close(2) always frees the number): the model ignores
/// their results, so injecting a failure there checks it does.
public final class HostSystem: Sendable {
    private let failures = ArmedFailures<HostCall>()
    /// Descriptors and mappings the model holds now (memfds, eventfd duplicates, its BAR mappings).
    private let held = Locked<(fds: Set<Int32>, mappings: Int)>(([], 0))

    /// A seam calling the host directly.
    public init() {}

    // MARK: failure injection (tests)

    /// Makes the `nth` (1-based) next `call` fail with `errno`; earlier ones pass.
    public func arm(_ call: HostCall, nth: Int = 1, errno: Errno) { failures.arm(call, nth: nth, errno: errno) }

    /// Disarms every call and stops counting.
    public func reset() { failures.reset() }

    /// Starts counting calls (the sweep's discovery run).
    public func startCounting() { failures.startCounting() }

    /// Calls per kind since `startCounting()`.
    public var hits: [HostCall: Int] { failures.hits }

    /// Whether an armed failure is still waiting to fire.
    public var pending: Bool { failures.pending }

    /// What the model holds from the host now: open descriptors and its own mappings.
    public var live: (fds: Int, mappings: Int) { held.withLock { ($0.fds.count, $0.mappings) } }

    @inline(__always) private func injected(_ call: HostCall) -> Errno? {
        guard let e = failures.fire(call) else { return nil }
        return e.reason == nil ? e.because(call.injectedReason) : e
    }

    // MARK: the calls

    /// A memfd of `size` bytes named `name` (shown in /proc/self/maps), owned by the model.
    func memfd(name: String, size: Int) throws(Errno) -> Int32 {
        if let e = injected(.memfd) { throw e }
        let fd = name.withCString { svfio_memfd($0, UInt64(size)) }
        if fd < 0 { throw Errno(rawValue: -fd).because("the host's memfd_create of {} bytes failed", size) }
        held.withLock { _ = $0.fds.insert(fd) }
        return fd
    }

    /// `mmap(addr, length, prot, MAP_SHARED | placement, fd, offset)`: anywhere by default; where
    /// `placement` asks for a user's mapping (its hint, or MAP_FIXED[_NOREPLACE] at its address).
    /// `owned`: the model's own mapping (undone with `munmap`), not one handed to the user.
    func mmapShared(_ fd: Int32, length: Int, prot: Int32, offset: UInt64, owned: Bool,
                    placement: MmapPlacement = .shared) throws(Errno) -> UnsafeMutableRawPointer {
        if let e = injected(.mmapShared) { throw e }
        var err: Int32 = 0
        let hint = UnsafeMutableRawPointer(bitPattern: placement.address)
        guard let p = svfio_mmap_shared(fd, length, prot, offset, hint, placement.hostPlacementFlags, &err) else {
            throw Errno(rawValue: err).because("the host's mmap of {x} bytes at offset {x} failed", length, offset)
        }
        if owned { held.withLock { $0.mappings += 1 } }
        return p
    }

    /// `munmap` of a mapping `mmapShared(owned: true)` made.
    func munmap(_ base: UnsafeMutableRawPointer, length: Int) {
        _ = injected(.munmap)
        _ = svfio_munmap(base, length)
        held.withLock { $0.mappings -= 1 }
    }

    /// `munmap` of a user's range, as the kernel's mmap_region() leaves it when a MAP_FIXED mapping
    /// fails in the driver: the old mapping was removed before the driver was asked.
    func unmapUserRange(_ address: UInt, length: Int) {
        _ = injected(.munmap)
        if let base = UnsafeMutableRawPointer(bitPattern: address) { _ = svfio_munmap(base, length) }
    }

    /// `close` of a descriptor the model owns (from `memfd` or `dup`).
    func close(_ fd: Int32) {
        _ = injected(.close)
        _ = svfio_close_fd(fd)
        held.withLock { _ = $0.fds.remove(fd) }
    }

    /// The model's own duplicate of `fd` (close-on-exec).
    func dup(_ fd: Int32) throws(Errno) -> Int32 {
        if let e = injected(.dup) { throw e }
        let d = svfio_dup_fd(fd, 0, 1)
        if d < 0 { throw Errno(rawValue: -d).because("the host's dup of fd {i} failed", fd) }
        held.withLock { _ = $0.fds.insert(d) }
        return d
    }

    /// Whether `fd` is an open eventfd: true, false (open, something else), or EBADF (not open).
    func isEventfd(_ fd: Int32) throws(Errno) -> Bool {
        if let e = injected(.eventfdCheck) { throw e }
        let r = svfio_fd_is_eventfd(fd)
        if r < 0 { throw Errno(rawValue: -r).because("fd {i} is not open", fd) }
        return r == 1
    }

    /// Adds 1 to an eventfd's counter; false when the host refused (the interrupt is lost, as a
    /// failed `eventfd_signal` loses it).
    @discardableResult
    func eventfdSignal(_ fd: Int32) -> Bool {
        if injected(.eventfdSignal) != nil { return false }
        return svfio_eventfd_signal(fd) == 0
    }
}
