// SPDX-License-Identifier: Apache-2.0
/// What a process's environment configures, read once at the edge (the C ABI reads the variables
/// when the default subsystem is first needed) and passed in: the model itself never calls
/// `getenv`, so a test's subsystems do not pick up the variables of the process running them.
public struct VFIOEnvironment: Sendable, Equatable {
    /// `SWIFTVFIO_TOPOLOGY`: the topology the default subsystem loads (a JSON file or a
    /// sysfs-shaped directory); nil (unset or empty) for the built-in default.
    public var topologyPath: String?
    /// What each subsystem made with this environment reports.
    public var diagnostics: VFIODiagnostics

    /// An environment with nothing set: the built-in topology, no trace, no log echo.
    public static let none = VFIOEnvironment(topologyPath: nil, diagnostics: .none)

    /// An environment from its parts.
    public init(topologyPath: String?, diagnostics: VFIODiagnostics) {
        self.topologyPath = topologyPath
        self.diagnostics = diagnostics
    }

    /// The environment that `variable` (a lookup such as `getenv`) describes. Unset and empty mean
    /// the same for every variable; `SWIFTVFIO_LOG` echoes unless it is `0`.
    public init(variable: (String) -> String?) {
        func value(_ name: String) -> String? {
            guard let v = variable(name), !v.isEmpty else { return nil }
            return v
        }
        self.init(topologyPath: value("SWIFTVFIO_TOPOLOGY"),
                  diagnostics: VFIODiagnostics(trace: value("SWIFTVFIO_TRACE"),
                                               echoLog: value("SWIFTVFIO_LOG").map { $0 != "0" } ?? false,
                                               traceTime: value("SWIFTVFIO_TRACE_TIME").map { $0 != "0" } ?? false))
    }
}

/// Where a subsystem's diagnostics go: its system-call trace and its kernel log's echo.
public struct VFIODiagnostics: Sendable, Equatable {
    /// `SWIFTVFIO_TRACE`: a file the decoded system-call trace is appended to, `-` for standard
    /// error, nil for no trace. A file that cannot be opened leaves the trace off.
    public var trace: String?
    /// `SWIFTVFIO_LOG`: echo every kernel-log message (WARN, warning, info) to standard error.
    public var echoLog: Bool
    /// `SWIFTVFIO_TRACE_TIME`: each trace line written to the file or standard error carries the
    /// wall-clock time (HH:MM:SS.microseconds, local time) after its pid and thread id.
    public var traceTime: Bool

    /// No trace, no echo: what tests and embedders get unless they ask.
    public static let none = VFIODiagnostics(trace: nil, echoLog: false)

    /// Diagnostics from their parts.
    public init(trace: String? = nil, echoLog: Bool = false, traceTime: Bool = false) {
        self.trace = trace
        self.echoLog = echoLog
        self.traceTime = traceTime
    }
}
