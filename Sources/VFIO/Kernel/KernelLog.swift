// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One message the model logged: a WARN, a `pr_warn`/`dev_warn`, or an info line.
public struct KernelMessage: Sendable, Equatable {
    /// How loud the kernel would have been.
    public enum Level: Sendable, Equatable { case warn, warning, info }
    /// WARN_ON (a kernel bug or misuse) vs. an ordinary warning line.
    public let level: Level
    /// The message text.
    public let text: String
}

/// Per-subsystem kernel log: WARN counts, messages and the taint flags.
///
/// The kernel's WARN_ON prints a backtrace and goes on; the model counts and records it, never
/// crashes. Tests assert the WARNs the kernel would raise and that normal flows raise none.
/// With `echo` (`SWIFTVFIO_LOG=1`, read by the C ABI: `VFIODiagnostics.echoLog`) every message
/// also goes to stderr.
public final class KernelLog: Sendable {
    private let state = Locked<(messages: [KernelMessage], onceSites: Set<String>)>(([], []))
    private let warnings = Atomic<Int>(0)
    private let taintUser = Atomic<Bool>(false)
    private let echo: Bool

    init(echo: Bool = false) {
        self.echo = echo
    }

    /// How many WARN_ONs fired.
    public var warnCount: Int { warnings.load(ordering: .relaxed) }
    /// TAINT_USER: set when a NO_IOMMU group is created (kernel: add_taint(TAINT_USER)).
    public var taintedUser: Bool { taintUser.load(ordering: .relaxed) }
    /// A copy of every message so far.
    public var messages: [KernelMessage] { state.withLock { $0.messages } }
    /// The WARN messages so far.
    public var warnMessages: [String] { messages.filter { $0.level == .warn }.map(\.text) }

    /// `WARN_ON(cond)` / `WARN(cond, fmt)`: records and returns `condition`, like the kernel macro.
    @discardableResult
    public func warnOn(_ condition: Bool, _ text: @autoclosure () -> String,
                       file: StaticString = #fileID, line: UInt = #line) -> Bool {
        if condition { record(.warn, "WARNING: \(file):\(line): \(text())") }
        return condition
    }

    /// `WARN_ON_ONCE(cond)`: fires at most once per call site and subsystem.
    @discardableResult
    public func warnOnOnce(_ condition: Bool, _ text: @autoclosure () -> String,
                           file: StaticString = #fileID, line: UInt = #line) -> Bool {
        guard condition else { return false }
        let site = "\(file):\(line)"
        let first = state.withLock { $0.onceSites.insert(site).inserted }
        if first { record(.warn, "WARNING: \(site): \(text())") }
        return true
    }

    /// `pr_warn` / `dev_warn`.
    public func warning(_ text: String) { record(.warning, text) }
    /// `pr_info` / `dev_info`.
    public func info(_ text: String) { record(.info, text) }

    /// `add_taint(TAINT_USER, ...)`.
    func addTaintUser() { taintUser.store(true, ordering: .relaxed) }

    /// Forgets the messages and the WARN count (tests between phases).
    public func reset() {
        state.withLock { $0.messages.removeAll(); $0.onceSites.removeAll() }
        warnings.store(0, ordering: .relaxed)
    }

    private func record(_ level: KernelMessage.Level, _ text: String) {
        if level == .warn { warnings.add(1, ordering: .relaxed) }
        state.withLock { $0.messages.append(KernelMessage(level: level, text: text)) }
        if echo { let line = "swiftvfio: \(text)\n"; _ = line.withCString { write(2, $0, strlen($0)) } }
    }
}
