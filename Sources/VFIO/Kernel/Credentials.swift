// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
import Synchronization

/// How a subsystem answers `capable(CAP_SYS_RAWIO)`.
///
/// By default it asks the calling thread's effective capability set with capget(2) at the moment the
/// kernel would ask (docs/DECISIONS.md, "privileges"), so a client run under `setpriv --inh-caps=-sys_rawio`
/// is refused. Tests override it per subsystem.
public enum RawIOPolicy: UInt8, Sendable {
    /// Ask the process (capget) at every check.
    case process = 0
    /// Always capable.
    case granted = 1
    /// Never capable.
    case denied = 2
}

final class Credentials: Sendable {
    private let policy = Atomic<UInt8>(RawIOPolicy.process.rawValue)

    var rawIOPolicy: RawIOPolicy {
        get { RawIOPolicy(rawValue: policy.load(ordering: .relaxed)) ?? .process }
        set { policy.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// `capable(CAP_SYS_RAWIO)`.
    func capableSysRawIO() -> Bool {
        switch rawIOPolicy {
        case .granted: true
        case .denied: false
        case .process: svfio_capable_sys_rawio() != 0
        }
    }
}
