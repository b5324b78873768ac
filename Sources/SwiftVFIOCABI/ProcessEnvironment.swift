// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO

/// The process's configuration, read at the edge: the environment variables (SWIFTVFIO_TOPOLOGY,
/// SWIFTVFIO_TRACE, SWIFTVFIO_TRACE_TIME, SWIFTVFIO_LOG, SWIFTVFIO_DRIVERS, SWIFTVFIO_CONTROL;
/// swiftvfio(7), README.md and docs/TRACE.md describe them; this file is the only reader) are read once, when
/// the library first needs them, into a `VFIOEnvironment` that is passed into every subsystem the
/// C ABI makes. The model never reads the environment itself.
enum ProcessEnvironment {
    /// `SWIFTVFIO_TOPOLOGY`, `SWIFTVFIO_TRACE` and `SWIFTVFIO_LOG` as they were at first use.
    static let current = VFIOEnvironment { name in getenv(name).map { String(cString: $0) } }

    /// `SWIFTVFIO_DRIVERS`: the device plug-ins to load before the topology binds devices (a
    /// colon-separated list of shared objects), as it was at first use.
    static let driverPlugins: [String] = (getenv("SWIFTVFIO_DRIVERS").map { String(cString: $0) } ?? "")
        .split(separator: ":").map(String.init).filter { !$0.isEmpty }

    /// `SWIFTVFIO_CONTROL=1`: answer `vfioctl state PID` on a private unix socket.
    static let controlRequested: Bool = getenv("SWIFTVFIO_CONTROL").map { String(cString: $0) == "1" } ?? false

    /// A new subsystem from the topology at `path` (nil: the built-in default), with the
    /// process's diagnostics. The loader's message says what is wrong; the errno says whether the
    /// file was there to read at all: ENOENT/EACCES (as access(2) answers) when it was not,
    /// EINVAL when it is not a valid topology.
    static func load(topology path: String?) throws(CallError) -> VFIOSubsystem {
        let diagnostics = current.diagnostics
        guard let path else {
            do throws(TopologyError) {
                return try VFIOSubsystem.load(TopologySpec.builtInDefault, source: "<built-in>", rawIO: .process,
                                              diagnostics: diagnostics)
            } catch {
                throw CallError(.EINVAL, error.description)
            }
        }
        do throws(TopologyError) {
            let sub = try VFIOSubsystem.load(path: path, rawIO: .process, diagnostics: diagnostics)
            // Nothing silent: a topology that yields no VFIO group says why (in the log, which
            // SWIFTVFIO_LOG echoes and swiftvfio_log() returns, and in swiftvfio_state()).
            if let why = sub.whyNoVFIOGroups { sub.log.warning("\(path): no VFIO groups: \(why)") }
            return sub
        } catch {
            let e: Errno = access(path, R_OK) != 0 ? Errno(rawValue: Glibc.errno) : .EINVAL
            throw CallError(e, error.description)
        }
    }

    /// An empty subsystem (no hardware) with the process's diagnostics: what is left when the
    /// topology the environment names does not load.
    static func emptySubsystem() -> VFIOSubsystem {
        VFIOSubsystem(rawIO: .process, diagnostics: current.diagnostics)
    }
}
