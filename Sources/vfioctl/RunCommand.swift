// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO
import VFIOTopology

// `vfioctl run`: runs a program under the LD_PRELOAD interposer, as faketime and fakeroot wrap
// theirs. The interposer is found beside the library it loads: next to this executable in a
// build directory (.build/debug holds vfioctl, libswiftvfio.so and libswiftvfio-preload.so), or
// in ../lib for an installed vfioctl (PREFIX/bin/vfioctl, PREFIX/lib/libswiftvfio*.so), or in the
// multiarch libdir ../lib/<triplet> (`make install libdir=PREFIX/lib/x86_64-linux-gnu`), or in its
// private directory under it, where the Debian package puts it (debian/rules).

extension Command {
    /// `vfioctl run`.
    static let run = Command(
        words: ["run"],
        synopsis: "[--topology PATH] [--trace PATH|-] [--preload SO] [--] PROGRAM [ARGS...]",
        summary: "Run PROGRAM (an unmodified VFIO client) against the model through the LD_PRELOAD interposer.",
        help: """
            options:
              --topology PATH   the machine the model plays: a JSON topology or a sysfs-shaped
                                directory (sets SWIFTVFIO_TOPOLOGY; checked before PROGRAM starts).
                                Default: SWIFTVFIO_TOPOLOGY if set, else the built-in topology.
              --trace PATH|-    write the decoded system-call trace to PATH (appended) or, with
                                -, to standard error (sets SWIFTVFIO_TRACE)
              --preload SO      the interposer to use instead of the libswiftvfio-preload.so
                                found beside vfioctl (same directory, ../lib, or the
                                multiarch ../lib/<triplet>)
              -h, --help        this text

            An LD_PRELOAD already set is kept (the interposer goes first). SWIFTVFIO_DRIVERS
            (device plug-ins) and SWIFTVFIO_CONTROL (vfioctl state) pass through to PROGRAM.
            PROGRAM replaces vfioctl (same process id): the exit status is PROGRAM's own. If
            PROGRAM cannot be started, or the topology does not load, vfioctl exits 1.
            """,
        main: runMain)
}

/// The interposer candidates for this executable, in the order they are tried.
func preloadCandidates() -> [String] {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buf, Int(PATH_MAX))
    guard n > 0 else { return [] }
    let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let dir = exe.lastIndex(of: "/").map { String(exe[..<$0]) } ?? "."
    var candidates = ["\(dir)/libswiftvfio-preload.so", "\(dir)/../lib/libswiftvfio-preload.so"]
    if let triplet = multiarchTriplet {
        candidates += ["\(dir)/../lib/\(triplet)/libswiftvfio-preload.so",
                       "\(dir)/../lib/\(triplet)/libswiftvfio/libswiftvfio-preload.so"]
    }
    return candidates
}

/// Debian's multiarch directory name for this build's architecture (what `dpkg-architecture -q
/// DEB_HOST_MULTIARCH` prints), or nil where the package has no multiarch layout.
private var multiarchTriplet: String? {
    #if arch(x86_64)
    return "x86_64-linux-gnu"
    #elseif arch(arm64)
    return "aarch64-linux-gnu"
    #else
    return nil
    #endif
}

/// An absolute, symlink-free path for `path`, or nil (with errno) if it does not exist.
func absolutePath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

private func runMain(_ args: [String]) -> Int32 {
    let cmd = Command.run
    let parsed: ParsedArguments
    do throws(UsageError) {
        parsed = try parseArguments(args, options: [
            OptionSpec(name: "--topology", value: "PATH"),
            OptionSpec(name: "--trace", value: "PATH"),
            OptionSpec(name: "--preload", value: "SO"),
        ], stopAtPositional: true)
    } catch {
        return usageError(cmd, error.message)
    }
    if parsed.help { out(cmd.helpText); return Exit.success }
    guard let program = parsed.positionals.first else { return usageError(cmd, "no PROGRAM given") }

    // The interposer.
    let preload: String
    if let given = parsed.values["preload"] {
        guard let abs = absolutePath(given) else { return failure(cmd, "--preload \(given): \(errnoText(errno))") }
        preload = abs
    } else {
        let candidates = preloadCandidates()
        guard let found = candidates.lazy.compactMap({ access($0, R_OK) == 0 ? absolutePath($0) : nil }).first else {
            return failure(cmd, "libswiftvfio-preload.so not found (looked in \(candidates.joined(separator: ", "))); give --preload SO")
        }
        preload = found
    }

    // The topology: loaded here exactly as the model will, so a bad one is reported before
    // PROGRAM runs (PROGRAM would otherwise see a machine without VFIO).
    if let topology = parsed.values["topology"] {
        do throws(TopologyError) {
            let sub = try VFIOSubsystem.load(path: topology)
            sub.shutdown()
        } catch {
            return failure(cmd, "--topology: \(error.description)")
        }
        guard let abs = absolutePath(topology) else { return failure(cmd, "--topology \(topology): \(errnoText(errno))") }
        setenv("SWIFTVFIO_TOPOLOGY", abs, 1)
    }
    if let trace = parsed.values["trace"] {
        guard !trace.isEmpty else { return usageError(cmd, "--trace needs a PATH or -") }
        if trace == "-" {
            setenv("SWIFTVFIO_TRACE", "-", 1)
        } else {
            // Created now (0644, appended), so an unwritable path fails here, not silently later.
            let fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return failure(cmd, "--trace \(trace): \(errnoText(errno))") }
            close(fd)
            setenv("SWIFTVFIO_TRACE", absolutePath(trace) ?? trace, 1)
        }
    }

    // LD_PRELOAD: the interposer first, then whatever was set (without a second copy of ours).
    var entries = [preload]
    if let old = getenv("LD_PRELOAD").map({ String(cString: $0) }) {
        entries += old.split(whereSeparator: { $0 == ":" || $0 == " " }).map(String.init).filter { $0 != preload }
    }
    setenv("LD_PRELOAD", entries.joined(separator: ":"), 1)

    var argv: [UnsafeMutablePointer<CChar>?] = parsed.positionals.map { strdup($0) }
    argv.append(nil)
    execvp(program, argv)
    let e = errno
    return failure(cmd, "cannot run '\(program)': \(errnoText(e))")
}
