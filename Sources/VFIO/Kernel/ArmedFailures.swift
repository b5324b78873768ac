// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// The arm-and-count machinery both failure seams share (`FaultInjector` for the kernel's fallible
/// steps, `HostSystem` for host calls): make the Nth next hit of a key fail with a chosen errno, and
/// count hits per key for a sweep's discovery run.
///
/// The fast path, nothing armed and no counting, is one relaxed atomic load (`fire`).
final class ArmedFailures<Key: Hashable & Sendable>: Sendable {
    private struct Armed { var remaining: Int; var errno: Errno }
    private let active = Atomic<Bool>(false)
    private let state = Locked<(armed: [Key: Armed], hits: [Key: Int], counting: Bool)>(([:], [:], false))

    init() {}

    /// Makes the `nth` (1-based) next hit of `key` fail with `errno`; earlier hits pass.
    func arm(_ key: Key, nth: Int, errno: Errno) {
        precondition(nth >= 1)
        state.withLock { $0.armed[key] = Armed(remaining: nth, errno: errno) }
        active.store(true, ordering: .sequentiallyConsistent)
    }

    /// Disarms every key and stops counting.
    func reset() {
        state.withLock { $0.armed.removeAll(); $0.hits.removeAll(); $0.counting = false }
        active.store(false, ordering: .sequentiallyConsistent)
    }

    /// Starts counting hits of every key.
    func startCounting() {
        state.withLock { $0.hits.removeAll(); $0.counting = true }
        active.store(true, ordering: .sequentiallyConsistent)
    }

    /// Hits per key since `startCounting()`.
    var hits: [Key: Int] { state.withLock { $0.hits } }

    /// Whether an armed failure is still waiting to fire.
    var pending: Bool { state.withLock { !$0.armed.isEmpty } }

    /// The armed errno when this hit of `key` is the chosen one, else nil (the hit is counted).
    @inline(__always)
    func fire(_ key: Key) -> Errno? {
        guard active.load(ordering: .relaxed) else { return nil }
        return slowFire(key)
    }

    private func slowFire(_ key: Key) -> Errno? {
        state.withLock { s in
            if s.counting { s.hits[key, default: 0] += 1 }
            guard var a = s.armed[key] else { return nil }
            a.remaining -= 1
            if a.remaining == 0 { s.armed[key] = nil; return a.errno }
            s.armed[key] = a
            return nil
        }
    }
}
