// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSwiftVFIOShim

/// Per-thread "return to user space": the model's `task_work` for deferred `fput`.
///
/// The kernel never runs a file's `release` inside the `fput` that dropped the last reference: it
/// queues it as task work, run when the task returns to user space, with no locks held. Device close
/// may drop the last group-file reference while holding `group_lock`, and the group file's release
/// takes `group_lock`: running it inline would self-deadlock. Every model entry point runs inside
/// `TaskWork.syscall`, and a last put inside one queues the release for the outermost return.
/// A put outside any entry point (a Swift test calling `put()` directly) runs the release at once.
enum TaskWork {
    final class Context {
        // Per-thread, never shared: no dynamic exclusivity check on every system call.
        @exclusivity(unchecked) var depth = 0
        @exclusivity(unchecked) var queue: [() -> Void] = []
    }

    /// Only for the destructor that releases a thread's context when it exits; the context is
    /// read through the shim's TLS slot (one load, no call).
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            svfio_tls_set_task_work(nil)
            if let p { Unmanaged<Context>.fromOpaque(p).release() }
        }
        return k
    }()

    @inline(__always) static var current: Context { currentUnmanaged.takeUnretainedValue() }

    /// The thread's context, held by its thread-specific slot (created on first use).
    @inline(__always) static var currentUnmanaged: Unmanaged<Context> {
        if let p = svfio_tls_task_work() { return Unmanaged<Context>.fromOpaque(p) }
        return makeCurrent()
    }

    @inline(never)
    private static func makeCurrent() -> Unmanaged<Context> {
        let c = Unmanaged.passRetained(Context())
        pthread_setspecific(key, c.toOpaque())
        svfio_tls_set_task_work(c.toOpaque())
        return c
    }

    /// Runs `body` as a system call: releases queued inside run when the outermost call returns.
    @inline(__always)
    static func syscall<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        // The thread's context is held by its thread-specific slot: used without a retain.
        let c = Unretained<Context>(currentUnmanaged.toOpaque())
        c.with { $0.depth += 1 }
        defer {
            let drainNow = c.with { (ctx) -> Bool in
                ctx.depth -= 1
                return ctx.depth == 0 && !ctx.queue.isEmpty
            }
            if drainNow { drain(current) }
        }
        return try body()
    }

    /// Queues `work` for the return to user space, or runs it now outside any system call.
    static func add(_ work: @escaping () -> Void) {
        let c = current
        if c.depth > 0 { c.queue.append(work) } else { work() }
    }

    /// Whether the calling thread is inside a model system call.
    static var inSyscall: Bool { current.depth > 0 }

    private static func drain(_ c: Context) {
        // A release may itself put files (a device file's release puts the group file): keep going
        // until the queue is empty, running each with depth 1 so nested puts queue behind it.
        c.depth = 1
        while !c.queue.isEmpty {
            let work = c.queue.removeFirst()
            work()
        }
        c.depth = 0
    }
}
