// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The model's fd table: real placeholder descriptors mapped to model files.
///
/// Every model fd is a real descriptor (a memfd) so its number never collides with the process's
/// own files and `fcntl(F_GETFD)` tells the truth about close-on-exec. Each entry holds one file
/// reference, as an fd table slot does. A `dup` is a new slot on the same file.
///
/// Indexed by fd number, in lock stripes: fd `n` lives in stripe `n % stripeCount`, slot
/// `n / stripeCount`, under that stripe's own mutex. A lookup is an index, not a hash, and two
/// threads working on different fds take different locks on different cache lines, so they do not
/// contend (the kernel's fd table reaches the same with RCU). Each stripe's slot array grows under
/// its own lock. The rule the single lock gave still holds per number: a slot is removed before its
/// descriptor is closed, both under the number's stripe lock, so a number the kernel hands out
/// again can never find a stale entry.
///
/// The fd table is the one owner of fd identity: every number it gains or loses is announced to
/// the process's fd observer (`FDObserver`, set by the LD_PRELOAD interposer) under the number's
/// lock, before the placeholder is closed, so a mirror of the table never says "model fd" for a
/// number the kernel may already have handed to someone else.
final class FDTable: @unchecked Sendable {
    struct Entry {
        let file: VFIOFile
        let dev: UInt64
        let ino: UInt64
        /// `file`'s address, read by `fgetLent` without copying the entry (a copy retains).
        let fileBits: UnsafeRawPointer

        init(file: VFIOFile, dev: UInt64, ino: UInt64) {
            self.file = file
            self.dev = dev
            self.ino = ino
            fileBits = UnsafeRawPointer(Unmanaged.passUnretained(file).toOpaque())
        }
    }

    /// One lock stripe (64 bytes, one cache line): its mutex first, then its slots.
    struct Stripe {
        var mutex = pthread_mutex_t()
        var slots: UnsafeMutablePointer<Entry?>?
        var capacity = 0
        var count = 0
    }

    static let stripeCount = 64
    private let stripes: UnsafeMutablePointer<Stripe>
    private let faults: FaultInjector
    private let census: Census

    init(faults: FaultInjector, census: Census) {
        self.faults = faults
        self.census = census
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Self.stripeCount * MemoryLayout<Stripe>.stride, alignment: 64)
        stripes = raw.bindMemory(to: Stripe.self, capacity: Self.stripeCount)
        for i in 0..<Self.stripeCount {
            (stripes + i).initialize(to: Stripe())
            pthread_mutex_init(Self.mutex(stripes + i), nil)
        }
    }

    deinit {
        for i in 0..<Self.stripeCount {
            let s = stripes + i
            if let slots = s.pointee.slots {
                slots.deinitialize(count: s.pointee.capacity)
                slots.deallocate()
            }
            pthread_mutex_destroy(Self.mutex(s))
            s.deinitialize(count: 1)
        }
        UnsafeMutableRawPointer(stripes).deallocate()
    }

    // MARK: stripes

    @inline(__always) private static func mutex(_ s: UnsafeMutablePointer<Stripe>) -> UnsafeMutablePointer<pthread_mutex_t> {
        // The mutex is the first member.
        UnsafeMutableRawPointer(s).assumingMemoryBound(to: pthread_mutex_t.self)
    }

    /// Runs `body` on the stripe of `fd` with its lock held; `body` gets the stripe and the slot.
    @inline(__always)
    private func withStripe<R, E: Error>(_ fd: Int32, _ body: (UnsafeMutablePointer<Stripe>, Int) throws(E) -> R) throws(E) -> R {
        let n = Int(UInt32(bitPattern: fd))
        let s = stripes + (n & (Self.stripeCount - 1))
        pthread_mutex_lock(Self.mutex(s))
        defer { pthread_mutex_unlock(Self.mutex(s)) }
        return try body(s, n / Self.stripeCount)
    }

    /// The entry at `slot`; stripe lock held.
    @inline(__always) private static func entry(_ s: UnsafeMutablePointer<Stripe>, _ slot: Int) -> Entry? {
        slot < s.pointee.capacity ? s.pointee.slots![slot] : nil
    }

    /// Sets the entry of `fd` at `slot` (nil removes it) and returns the one it replaces; stripe
    /// lock held. Every change of the table passes here, so this is where the observer hears of it.
    private static func exchange(_ s: UnsafeMutablePointer<Stripe>, _ slot: Int, _ new: Entry?, fd: Int32) -> Entry? {
        if slot >= s.pointee.capacity {
            guard new != nil else { return nil }
            let capacity = max(16, s.pointee.capacity * 2, slot + 1)
            let slots = UnsafeMutablePointer<Entry?>.allocate(capacity: capacity)
            if let old = s.pointee.slots {
                slots.moveInitialize(from: old, count: s.pointee.capacity)
                old.deallocate()
            }
            (slots + s.pointee.capacity).initialize(repeating: nil, count: capacity - s.pointee.capacity)
            s.pointee.slots = slots
            s.pointee.capacity = capacity
        }
        let p = s.pointee.slots! + slot
        let old = p.pointee
        p.pointee = new
        s.pointee.count += (new != nil ? 1 : 0) - (old != nil ? 1 : 0)
        if new != nil || old != nil { FDObserver.notify(fd, isModelFD: new != nil) }
        return old
    }

    // MARK: the table

    /// `get_unused_fd_flags()`: a fresh placeholder descriptor, not yet bound to a file.
    func reserve(cloexec: Bool, name: String) throws(Errno) -> Int32 {
        try faults.check(.fdReserve)
        let fd = svfio_placeholder_fd(name, cloexec ? 1 : 0)
        if fd < 0 { throw Errno(rawValue: -fd).because("the host refused a placeholder descriptor") }
        return fd
    }

    /// `put_unused_fd()`: gives back a reserved number.
    func unreserve(_ fd: Int32) { _ = svfio_close_fd(fd) }

    /// `fd_install()`: binds a reserved number to `file`, consuming the caller's reference.
    /// A stale entry at the same number (its descriptor was closed behind the model's back and
    /// the kernel handed the number out again) loses its slot: its file reference is put.
    func install(_ fd: Int32, _ file: VFIOFile) {
        var dev: UInt64 = 0, ino: UInt64 = 0
        _ = svfio_fd_identity(fd, &dev, &ino)
        let stale = withStripe(fd) { s, i in Self.exchange(s, i, Entry(file: file, dev: dev, ino: ino), fd: fd) }
        census.fdInstalled()
        if let stale { census.fdClosed(); stale.file.put() }
    }

    /// `fget(fd)`: the file with a new reference, or nil (EBADF) for a number that is not a model fd.
    @inline(__always)
    func fget(_ fd: Int32) -> VFIOFile? {
        guard fd >= 0 else { return nil }
        return withStripe(fd) { (s, i) -> VFIOFile? in
            guard i < s.pointee.capacity, let file = s.pointee.slots![i]?.file else { return nil }
            file.getHeld()
            return file
        }
    }

    /// `fget(fd)` lent: the file with a new reference, and no Swift retain (a file pins itself
    /// while it has references: `VFIOFile.pin`), so the caller's `put()` is all it must do. For the
    /// routed system calls, which use the file for the duration of one call.
    @inline(__always)
    func fgetLent(_ fd: Int32) -> Unretained<VFIOFile>? {
        guard fd >= 0 else { return nil }
        return withStripe(fd) { (s, i) -> Unretained<VFIOFile>? in
            guard i < s.pointee.capacity, let bits = s.pointee.slots![i]?.fileBits else { return nil }
            let file = Unretained<VFIOFile>(bits)
            file.with { $0.getHeld() }
            return file
        }
    }

    /// `fget(fd)` for a number the model is *given* as an argument (SET_CONTAINER's fd, KVM's):
    /// the file with a new reference only when the descriptor is still the placeholder the model
    /// made. A number whose placeholder was closed behind the model's back (and maybe reused) is
    /// forgotten first, its reference put, and answers nil, as the kernel's fdget() of that number
    /// would find the new file (or none). One identity check (an fstat), under the number's lock;
    /// the calls routed on the fd itself do not pay it (the interposer retires stale numbers when
    /// they are reused: docs/PRELOAD.md).
    func fgetValidated(_ fd: Int32) -> VFIOFile? {
        guard fd >= 0 else { return nil }
        let (file, stale) = withStripe(fd) { (s, i) -> (VFIOFile?, Entry?) in
            guard let e = Self.entry(s, i) else { return (nil, nil) }
            var dev: UInt64 = 0, ino: UInt64 = 0
            guard svfio_fd_identity(fd, &dev, &ino) == 0, dev == e.dev, ino == e.ino else {
                return (nil, Self.exchange(s, i, nil, fd: fd))
            }
            e.file.getHeld()
            return (e.file, nil)
        }
        if let stale { census.fdClosed(); stale.file.put() }
        return file
    }

    /// Tells the observer about every open number (a mirror set up after fds were opened), each
    /// under its stripe lock so no concurrent change is reported out of order.
    func announceAll() {
        for k in 0..<Self.stripeCount {
            withStripe(Int32(k)) { s, _ in
                for i in 0..<s.pointee.capacity where s.pointee.slots![i] != nil {
                    FDObserver.notify(Int32(i * Self.stripeCount + k), isModelFD: true)
                }
            }
        }
    }

    /// The file without a new reference, for the duration of a call that holds the fd busy.
    /// (The kernel's `fdget` borrows the slot's reference when the table is not shared.)
    func lookup(_ fd: Int32) -> VFIOFile? {
        guard fd >= 0 else { return nil }
        return withStripe(fd) { s, i in Self.entry(s, i)?.file }
    }

    /// The placeholder identity recorded for `fd`.
    func identity(_ fd: Int32) -> (dev: UInt64, ino: UInt64)? {
        guard fd >= 0 else { return nil }
        return withStripe(fd) { s, i in Self.entry(s, i).map { ($0.dev, $0.ino) } }
    }

    /// `close(fd)`: removes the slot, closes the placeholder and puts the file. EBADF if not ours.
    func close(_ fd: Int32) throws(Errno) {
        guard fd >= 0 else { throw .EBADF.because("negative fd") }
        let file = try withStripe(fd) { (s, i) throws(Errno) -> VFIOFile in
            guard let e = Self.exchange(s, i, nil, fd: fd) else { throw .EBADF.because("not a model fd") }
            _ = svfio_close_fd(fd)
            return e.file
        }
        census.fdClosed()
        file.put()
    }

    /// `dup`/`fcntl(F_DUPFD[_CLOEXEC])`: a new number >= `minimum` for the same file.
    ///
    /// The real dup runs under the old number's stripe lock (so the old number cannot be closed
    /// and reused under it); the new number is installed under its own stripe lock afterwards,
    /// never with both held (two stripes taken in either order could deadlock).
    func dup(_ fd: Int32, minimum: Int32 = 0, cloexec: Bool = false) throws(Errno) -> Int32 {
        guard fd >= 0 else { throw .EBADF.because("negative fd") }
        let (nfd, e) = try withStripe(fd) { (s, i) throws(Errno) -> (Int32, Entry) in
            guard let e = Self.entry(s, i) else { throw .EBADF.because("not a model fd") }
            let nfd = svfio_dup_fd(fd, minimum, cloexec ? 1 : 0)
            if nfd < 0 { throw Errno(rawValue: -nfd).because("the host's dup failed") }
            guard e.file.get() else { _ = svfio_close_fd(nfd); throw .EBADF.because("its file is being released") }
            return (nfd, e)
        }
        let stale = withStripe(nfd) { s, i in Self.exchange(s, i, Entry(file: e.file, dev: e.dev, ino: e.ino), fd: nfd) }
        if let stale { census.fdClosed(); stale.file.put() }
        return nfd
    }

    /// Whether `fd` is a model fd whose descriptor is still the placeholder it was given (same
    /// st_dev/st_ino). A number whose placeholder was closed behind the model's back and reused
    /// for another file is forgotten (its file reference put) and answers false. The check and the
    /// forget happen under the number's lock, so a concurrent install at the same number is never
    /// mistaken for a stale one.
    func validate(_ fd: Int32) -> Bool {
        guard fd >= 0 else { return false }
        let (ok, stale) = withStripe(fd) { (s, i) -> (Bool, Entry?) in
            guard let e = Self.entry(s, i) else { return (false, nil) }
            var dev: UInt64 = 0, ino: UInt64 = 0
            if svfio_fd_identity(fd, &dev, &ino) == 0, dev == e.dev, ino == e.ino { return (true, nil) }
            return (false, Self.exchange(s, i, nil, fd: fd))
        }
        if let stale { census.fdClosed(); stale.file.put() }
        return ok
    }

    /// Records that `newfd` (already a duplicate made by the real `dup`/`dup2`/`dup3` of a model fd)
    /// now refers to the same file as `oldfd`; an existing model entry at `newfd` is closed first.
    func adoptDuplicate(of oldfd: Int32, as newfd: Int32) throws(Errno) {
        guard oldfd >= 0, newfd >= 0 else { throw .EBADF.because("fd {i} or {i} is negative", oldfd, newfd) }
        let e = try withStripe(oldfd) { (s, i) throws(Errno) -> Entry in
            guard let e = Self.entry(s, i) else { throw .EBADF.because("not a model fd") }
            guard e.file.get() else { throw .EBADF.because("its file is being released") }
            return e
        }
        let replaced = withStripe(newfd) { s, i in Self.exchange(s, i, Entry(file: e.file, dev: e.dev, ino: e.ino), fd: newfd) }
        census.fdInstalled()
        if let replaced { census.fdClosed(); replaced.file.put() }
    }

    /// Forgets `fd` without closing the descriptor (it was closed behind the model's back).
    func forget(_ fd: Int32) -> Bool {
        guard fd >= 0, let e = withStripe(fd, { s, i in Self.exchange(s, i, nil, fd: fd) }) else { return false }
        census.fdClosed()
        e.file.put()
        return true
    }

    /// How many model fds are open.
    var count: Int {
        var n = 0
        for k in 0..<Self.stripeCount { n += withStripe(Int32(k)) { s, _ in s.pointee.count } }
        return n
    }

    /// Every open model fd (for the census and teardown).
    var fds: [Int32] {
        var all: [Int32] = []
        for k in 0..<Self.stripeCount {
            withStripe(Int32(k)) { s, _ in
                for i in 0..<s.pointee.capacity where s.pointee.slots![i] != nil {
                    all.append(Int32(i * Self.stripeCount + k))
                }
            }
        }
        return all
    }
}

/// The process's fd observer: a C function told, for every number the model's fd tables gain
/// (`isModelFD` 1) or lose (0), under that number's lock and before a placeholder is closed. The
/// LD_PRELOAD interposer keeps its routing table with it (swiftvfio_set_fd_observer()), so it
/// needs no knowledge of which calls make or drop fds. Process-wide, as fd numbers are.
public enum FDObserver {
    public typealias Callback = @convention(c) (Int32, Int32) -> Void

    /// The callback's address (0: none). Written once by the interposer, read on every change.
    private static let callback = Atomic<UInt>(0)

    /// Sets (or, with nil, clears) the observer.
    public static func set(_ f: Callback?) {
        callback.store(f.map { UInt(bitPattern: unsafeBitCast($0, to: UnsafeRawPointer.self)) } ?? 0, ordering: .releasing)
    }

    /// Reports a change of `fd`; a no-op without an observer.
    @inline(__always) static func notify(_ fd: Int32, isModelFD: Bool) {
        let bits = callback.load(ordering: .acquiring)
        guard bits != 0 else { return }
        // The only unsafe step: the stored address back to the C function it was made from.
        let f = unsafeBitCast(UnsafeRawPointer(bitPattern: bits)!, to: Callback.self)
        f(fd, isModelFD ? 1 : 0)
    }
}

extension VFIOSubsystem {
    /// Reports every open model fd of this subsystem to the fd observer (FDObserver).
    public func announceOpenFDs() { fdTable.announceAll() }
}
