// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// A sleeping lock named for what it guards, the model's `struct mutex`.
///
/// Built on `pthread_mutex_t` rather than `Synchronization.Mutex`: ThreadSanitizer understands
/// pthread mutexes natively, while `Mutex`'s PI-futex hand-over is invisible to it and shows as a
/// false race under contention (seen in this project's own TSan runs). Kernel code locks and unlocks in
/// separate statements with error unwinding in between; `lock()`/`unlock()` keep that shape and
/// `withLock` covers the simple cases. Debug builds record the owner so `assertHeld()` can play
/// `lockdep_assert_held()`.
public final class KernelMutex: @unchecked Sendable {
    /// What the lock guards, e.g. "vfio.group_lock" or "group->group_lock".
    public let name: StaticString
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    #if DEBUG
    @usableFromInline let owner = Atomic<UInt>(0)
    #endif

    /// A new, unlocked mutex.
    public init(_ name: StaticString) {
        self.name = name
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Takes the lock, sleeping while another thread holds it.
    // Inlinable (here and below): the C ABI module takes these locks on every call, and an opaque
    // generic `withLock` across modules costs a closure context and an unspecialised call.
    @inlinable @inline(__always) public func lock() {
        pthread_mutex_lock(mutex)
        #if DEBUG
        owner.store(UInt(pthread_self()), ordering: .relaxed)
        #endif
    }

    /// Releases the lock; the caller must hold it.
    @inlinable @inline(__always) public func unlock() {
        #if DEBUG
        assertHeld()
        owner.store(0, ordering: .relaxed)
        #endif
        pthread_mutex_unlock(mutex)
    }

    /// Takes the lock if it is free; true on success (`mutex_trylock`).
    public func tryLock() -> Bool {
        guard pthread_mutex_trylock(mutex) == 0 else { return false }
        #if DEBUG
        owner.store(UInt(pthread_self()), ordering: .relaxed)
        #endif
        return true
    }

    /// Runs `body` with the lock held.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// `lockdep_assert_held()`: traps in debug builds when the calling thread does not hold the lock.
    @inlinable @inline(__always) public func assertHeld(file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        precondition(owner.load(ordering: .relaxed) == UInt(pthread_self()),
                     "lockdep: \(name) not held", file: file, line: line)
        #endif
    }
}

/// A reader-writer semaphore named for what it guards, the model's `struct rw_semaphore`.
public final class KernelRWSem: @unchecked Sendable {
    /// What the lock guards.
    public let name: StaticString
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>

    /// A new, unlocked semaphore.
    public init(_ name: StaticString) {
        self.name = name
        rw = .allocate(capacity: 1)
        rw.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rw, nil)
    }

    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
    }

    /// `down_read`.
    public func lockShared() { pthread_rwlock_rdlock(rw) }
    /// `down_write`.
    public func lockExclusive() { pthread_rwlock_wrlock(rw) }
    /// `up_read` / `up_write`.
    public func unlock() { pthread_rwlock_unlock(rw) }

    /// Runs `body` under the read lock.
    public func withShared<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lockShared()
        defer { unlock() }
        return try body()
    }

    /// Runs `body` under the write lock.
    public func withExclusive<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lockExclusive()
        defer { unlock() }
        return try body()
    }
}

/// The kernel's `struct completion`: one waiter sleeps until another thread signals.
final class Completion: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var done = false

    init() {
        mutex.initialize(to: pthread_mutex_t()); pthread_mutex_init(mutex, nil)
        cond.initialize(to: pthread_cond_t())
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond); cond.deallocate()
        pthread_mutex_destroy(mutex); mutex.deallocate()
    }

    /// `complete()`.
    func complete() {
        pthread_mutex_lock(mutex)
        done = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// `wait_for_completion_timeout()`: true when completed, false when `timeout` passed first.
    func wait(timeout: Duration) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (secs, atto) = timeout.components
        var nsec = Int(now.tv_nsec) + Int(atto / 1_000_000_000)
        var sec = Int(now.tv_sec) + Int(secs) + nsec / 1_000_000_000
        nsec %= 1_000_000_000
        if sec < 0 { sec = Int.max }
        var deadline = timespec(tv_sec: sec, tv_nsec: nsec)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !done {
            if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT { return done }
        }
        return true
    }
}

/// A value guarded by its own pthread mutex: `Synchronization.Mutex` with a lock TSan can see.
public final class Locked<Value>: @unchecked Sendable {
    private let mutex: KernelMutex
    private var value: Value

    /// Wraps `value`; `name` says what it is, for lock assertions.
    public init(_ value: Value, name: StaticString = "locked value") {
        self.value = value
        mutex = KernelMutex(name)
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&value)
    }
}
