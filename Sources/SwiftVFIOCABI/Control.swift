// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSwiftVFIOShim
import Synchronization
import VFIO

// SWIFTVFIO_CONTROL=1: the model answers `vfioctl state PID` on a unix socket private to the
// process's user and to the process.
//
// The socket is /tmp/swiftvfio-<uid>/<pid>.sock: the directory is created 0700 and used only if
// it is a real directory owned by the user with no group or other access (a directory someone
// else made, or a symlink, disables the socket with a message on stderr); the socket is 0600, and
// a connection from any other uid (SO_PEERCRED) is closed unanswered. It is created on the
// model's first use (the model exists from then on) and removed at exit (an atexit handler of the
// process that created it; a forked child leaves it alone).
//
// One thread, with every signal blocked, answers one request at a time: a line "state text" or
// "state json", answered with the snapshot (StateSnapshot.swift) and the connection closed. The
// snapshot is taken as one model call, so it never waits for the process and the process waits
// for it only on a lock it holds for a moment; a client that stops reading is cut off by a
// 2-second send timeout, which stalls nobody but this thread.

/// `struct ucred` (SO_PEERCRED), which Glibc's module hides behind _GNU_SOURCE.
private struct PeerCredentials {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}

enum Control {
    private static let started = Atomic<Bool>(false)
    /// The socket path, for the exit handler (set once, before the handler is registered).
    nonisolated(unsafe) private static var path: [CChar] = []
    nonisolated(unsafe) private static var ownerPID: pid_t = 0
    nonisolated(unsafe) private static var listenFD: Int32 = -1

    /// The socket's directory for the calling user.
    static func directory(uid: uid_t = geteuid()) -> String { "/tmp/swiftvfio-\(uid)" }

    /// Starts the control thread once per process, if SWIFTVFIO_CONTROL=1.
    static func startIfRequested() {
        guard ProcessEnvironment.controlRequested else { return }
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        if let problem = listen() {
            let line = "swiftvfio: SWIFTVFIO_CONTROL: \(problem); vfioctl state will not reach this process\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            return
        }
        var thread = pthread_t()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        // The thread takes no signal: a handler the program installed runs on its own threads.
        var all = sigset_t(), old = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &old)
        let r = pthread_create(&thread, &attr, { _ in Control.serve(); return nil }, nil)
        pthread_sigmask(SIG_SETMASK, &old, nil)
        pthread_attr_destroy(&attr)
        if r != 0 {
            unlink(path)
            let line = "swiftvfio: SWIFTVFIO_CONTROL: cannot start the control thread: \(String(cString: strerror(r)))\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }

    /// Creates, binds and listens on the socket; nil, or what went wrong.
    private static func listen() -> String? {
        let uid = geteuid()
        let dir = directory(uid: uid)
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return "\(dir): \(String(cString: strerror(errno)))" }
        var st = stat()
        guard lstat(dir, &st) == 0 else { return "\(dir): \(String(cString: strerror(errno)))" }
        guard st.st_mode & S_IFMT == S_IFDIR, st.st_uid == uid, st.st_mode & 0o077 == 0 else {
            return "\(dir) is not a directory private to uid \(uid)"
        }
        let sockPath = "\(dir)/\(getpid()).sock"
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(sockPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return "\(sockPath): path too long" }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        // Out of the way of the numbers a client expects (as the BAR memfds): 1024 and up.
        let high = fcntl(s, F_DUPFD_CLOEXEC, 1024)
        let fd: Int32
        if high >= 0 { svfio_close_fd(s); fd = high } else { fd = s }
        unlink(sockPath)   // a stale socket of an earlier process with this pid
        let old = umask(0o177)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard r == 0 else { let e = errno; svfio_close_fd(fd); return "bind \(sockPath): \(String(cString: strerror(e)))" }
        guard Glibc.listen(fd, 4) == 0 else { let e = errno; svfio_close_fd(fd); unlink(sockPath); return "listen: \(String(cString: strerror(e)))" }
        path = Array(sockPath.utf8CString)
        ownerPID = getpid()
        listenFD = fd
        atexit { Control.removeSocket() }
        return nil
    }

    /// The exit handler: removes the socket (only in the process that made it).
    static func removeSocket() {
        guard !path.isEmpty, getpid() == ownerPID else { return }
        unlink(path)
    }

    /// Accepts and answers requests until the process exits.
    private static func serve() {
        while true {
            let c = accept(listenFD, nil, nil)
            if c >= 0 { _ = fcntl(c, F_SETFD, FD_CLOEXEC) }
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            answer(c)
            svfio_close_fd(c)
        }
    }

    private static func answer(_ c: Int32) {
        var cred = PeerCredentials()
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, cred.uid == geteuid() else { return }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // The request: one line.
        var request: [UInt8] = []
        var byte: UInt8 = 0
        while request.count < 64 {
            let n = recv(c, &byte, 1, 0)
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            request.append(byte)
        }
        let reply: String
        switch String(decoding: request, as: UTF8.self) {
        case "state text": reply = snapshot { $0.text }
        case "state json": reply = snapshot { $0.json }
        default: reply = "error: unknown request (expected \"state text\" or \"state json\")\n"
        }
        var r = reply
        r.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = send(c, buf.baseAddress! + off, buf.count - off, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                off += n
            }
        }
    }

    /// The snapshot, rendered once the model call is over.
    private static func snapshot(_ render: (StateSnapshot) -> String) -> String {
        let snap: StateSnapshot
        do throws(CallError) {
            snap = try DefaultSubsystem.shared.with { sub throws(CallError) in StateSnapshot(sub) }
        } catch {
            return "error: \(error.message)\n"
        }
        return render(snap)
    }
}
