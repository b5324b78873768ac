// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

// `vfioctl state PID`: asks a running process's model for its state. The process must have been
// started with SWIFTVFIO_CONTROL=1 and have used the model; its libswiftvfio then listens on
// /tmp/swiftvfio-<uid>/<pid>.sock (Sources/SwiftVFIOCABI/Control.swift), for this user only.

extension Command {
    /// `vfioctl state`.
    static let state = Command(
        words: ["state"],
        synopsis: "PID [--format text|json]",
        summary: "Show the live model of a running process that opted in with SWIFTVFIO_CONTROL=1.",
        help: """
            options:
              --format text   readable text (the default)
              --format json   JSON, for scripts
              -h, --help      this text

            Shows the process's model fds and the files behind them, the VFIO groups with
            their container or iommufd, the containers with their IOMMU backend and DMA
            mappings, the devices with their open counts and KVM links, the census of live
            objects and the WARN log. Reading the state changes nothing in the process.

            The process must run with SWIFTVFIO_CONTROL=1 (e.g. `SWIFTVFIO_CONTROL=1 vfioctl
            run PROGRAM`) and have used the model once: its socket is
            /tmp/swiftvfio-<uid>/<pid>.sock, reachable by the same user only, removed when the
            process exits. Exits 1 when the process is not there or does not answer.
            """,
        main: stateMain)
}

private func stateMain(_ args: [String]) -> Int32 {
    let cmd = Command.state
    let parsed: ParsedArguments
    do throws(UsageError) {
        parsed = try parseArguments(args, options: [OptionSpec(name: "--format", value: "FORMAT")])
    } catch {
        return usageError(cmd, error.message)
    }
    if parsed.help { out(cmd.helpText); return Exit.success }
    let format = parsed.values["format"] ?? "text"
    guard format == "text" || format == "json" else { return usageError(cmd, "unknown --format '\(format)' (text or json)") }
    guard parsed.positionals.count == 1 else {
        return usageError(cmd, parsed.positionals.isEmpty ? "no PID given" : "unexpected argument '\(parsed.positionals[1])'")
    }
    guard let pid = Int32(parsed.positionals[0]), pid > 0 else { return usageError(cmd, "PID '\(parsed.positionals[0])' is not a process id") }

    let path = "/tmp/swiftvfio-\(geteuid())/\(pid).sock"
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return failure(cmd, "socket: \(errnoText(errno))") }
    defer { close(fd) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if r != 0 {
        let e = errno
        if kill(pid, 0) != 0 && errno == ESRCH { return failure(cmd, "no process \(pid)") }
        if e == ENOENT || e == ECONNREFUSED {
            return failure(cmd, "process \(pid) does not answer (\(path): \(errnoText(e))): start it with SWIFTVFIO_CONTROL=1; the socket appears when it first uses the model")
        }
        return failure(cmd, "\(path): \(errnoText(e))")
    }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let request = "state \(format)\n"
    guard request.withCString({ send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) == request.utf8.count else {
        return failure(cmd, "process \(pid): \(errnoText(errno))")
    }
    var reply: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n < 0 {
            if errno == EINTR { continue }
            return failure(cmd, "process \(pid): reading the state: \(errnoText(errno))")
        }
        if n == 0 { break }
        reply += buf[0..<n]
    }
    let text = String(decoding: reply, as: UTF8.self)
    if text.isEmpty { return failure(cmd, "process \(pid) closed the connection without an answer") }
    if text.hasPrefix("error: ") { return failure(cmd, "process \(pid): " + String(text.dropFirst(7)).trimmingCharacters()) }
    out(text)
    return Exit.success
}

extension String {
    /// Without trailing newlines.
    func trimmingCharacters() -> String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
