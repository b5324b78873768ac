// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim

/// The model's system calls: open, ioctl, close, dup, fget/fput, over model paths and fds.
///
/// Each runs inside `TaskWork.syscall`, so a release that a last `fput` queues runs when the
/// outermost call returns, with no locks held.
extension VFIOSubsystem {
    static let O_CLOEXEC: Int32 = 0o2000000

    /// `open(2)` of a model path: `/dev/vfio/vfio`, `/dev/vfio/<N>`, `/dev/vfio/noiommu-<N>`,
    /// `/dev/iommu`. Returns a new model fd. ENOENT for a path the model does not have.
    public func open(_ path: String, flags: Int32 = 0o2) throws(Errno) -> Int32 {
        try TaskWork.syscall { () throws(Errno) -> Int32 in try tracer.call({ () throws(Errno) -> Int32 in
            let fd = try fdTable.reserve(cloexec: flags & Self.O_CLOEXEC != 0, name: path)
            do throws(Errno) {
                let file = try openPath(path, flags: flags)
                fdTable.install(fd, file)
                return fd
            } catch {
                fdTable.unreserve(fd)
                throw error
            }
        }) { "open(\(TraceFormat.quoted(path)), \(TraceFormat.openFlags(flags)))" + TraceFormat.result($0) } }
    }

    /// Opens a model path as a file object (no fd): one reference, the caller's to `put()`.
    public func openFile(_ path: String, flags: Int32 = 0o2) throws(Errno) -> VFIOFile {
        try TaskWork.syscall { () throws(Errno) -> VFIOFile in try openPath(path, flags: flags) }
    }

    /// The VFS part of `open(2)`: the node `path` names, opened by its own `open` operation.
    /// (The caller is inside `TaskWork.syscall`; no lock is held.)
    private func openPath(_ path: String, flags: Int32) throws(Errno) -> VFIOFile {
        if path == "/dev/vfio/vfio" { return try containerFileOpen(path, flags: flags) }
        if path == "/dev/iommu" { return try iommufdFileOpen(path, flags: flags) }
        let prefix = "/dev/vfio/"
        guard path.hasPrefix(prefix), let group = groups.group(named: String(path.dropFirst(prefix.count))) else {
            throw .ENOENT.because("no such model node")
        }
        return try groupFileOpen(group, path: path, flags: flags)
    }

    /// `ioctl(2)` on a model fd. EBADF for a number that is not a model fd.
    public func ioctl(_ fd: Int32, _ cmd: UInt, _ arg: UInt = 0) throws(Errno) -> Int {
        try TaskWork.syscall { () throws(Errno) -> Int in
            guard tracer.isEnabled else {
                guard let lent = fdTable.fgetLent(fd) else { throw .EBADF.because("not a model fd") }
                return try lent.with { (file) throws(Errno) -> Int in
                    defer { file.put() }
                    return try dispatchIoctl(file, UInt32(truncatingIfNeeded: cmd), arg)
                }
            }
            return try traceIoctl("\(fd)", traceTarget(fd), UInt32(truncatingIfNeeded: cmd), arg) { () throws(Errno) -> Int in
                guard let file = fdTable.fget(fd) else { throw .EBADF.because("not a model fd") }
                defer { file.put() }
                return try dispatchIoctl(file, UInt32(truncatingIfNeeded: cmd), arg)
            }
        }
    }

    /// `ioctl` on a file object (a kernel caller, or a C caller holding a `struct file *`).
    public func ioctl(file: VFIOFile, _ cmd: UInt, _ arg: UInt = 0) throws(Errno) -> Int {
        try TaskWork.syscall { () throws(Errno) -> Int in
            guard tracer.isEnabled else { return try dispatchIoctl(file, UInt32(truncatingIfNeeded: cmd), arg) }
            return try traceIoctl("<\(file.name)>", traceTarget(file), UInt32(truncatingIfNeeded: cmd), arg) { () throws(Errno) -> Int in
                try dispatchIoctl(file, UInt32(truncatingIfNeeded: cmd), arg)
            }
        }
    }

    /// The file's own `unlocked_ioctl` (ioctl numbers collide across kinds of files: each kind
    /// decodes its own).
    @inline(__always)
    private func dispatchIoctl(_ file: VFIOFile, _ cmd: UInt32, _ arg: UInt) throws(Errno) -> Int {
        try file.operations.ioctl(file, cmd: cmd, arg: arg)
    }

    /// `read(2)`/`pread(2)`: the file's `read` (a device file's goes to the driver's; EINVAL
    /// without one).
    public func read(_ fd: Int32, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int {
        try TaskWork.syscall { () throws(Errno) -> Int in try traceRW(fd, write: false, buffer: buffer, count: count, offset: offset) { () throws(Errno) -> Int in
            guard let file = fdTable.fget(fd) else { throw .EBADF.because("not a model fd") }
            defer { file.put() }
            return try file.operations.read(file, buffer: buffer, count: count, offset: &offset)
        } }
    }

    /// `write(2)`/`pwrite(2)`: the file's `write` (a device file's goes to the driver's; EINVAL
    /// without one).
    public func write(_ fd: Int32, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int {
        try TaskWork.syscall { () throws(Errno) -> Int in try traceRW(fd, write: true, buffer: buffer, count: count, offset: offset) { () throws(Errno) -> Int in
            guard let file = fdTable.fget(fd) else { throw .EBADF.because("not a model fd") }
            defer { file.put() }
            return try file.operations.write(file, buffer: buffer, count: count, offset: &offset)
        } }
    }

    /// `mmap(2)`: the file's `mmap` (a device file's goes to the driver's, EINVAL without one;
    /// ENODEV for other model files, which have no mmap), placed as `placement` asks. Kernel:
    /// mmap_region() removes what MAP_FIXED replaces before it asks the file, so when a device
    /// file's mmap then fails the range is left unmapped; so it is here.
    public func mmap(_ fd: Int32, offset: Int64, length: Int, prot: Int32,
                     placement: MmapPlacement = .shared) throws(Errno) -> UInt {
        try TaskWork.syscall { () throws(Errno) -> UInt in try tracer.call({ () throws(Errno) -> UInt in
            guard let file = fdTable.fget(fd) else { throw .EBADF.because("not a model fd") }
            defer { file.put() }
            do throws(Errno) {
                return try file.operations.mmap(file, offset: offset, length: length, prot: prot, placement: placement)
            } catch {
                if file.kind == .device && placement.replaces && length > 0 {
                    host.unmapUserRange(placement.address, length: length)
                }
                throw error
            }
        }) { r in
            let t = traceTarget(fd)
            let off = t.kind == .device ? TraceFormat.deviceOffset(offset, pciLayout: t.pciLayout) : TraceFormat.hex(offset)
            return "mmap(\(fd), \(off), \(length), \(TraceFormat.prot(prot))\(TraceFormat.placement(placement)))"
                + TraceFormat.result(r) { TraceFormat.hex($0) }
        } }
    }

    /// `close(2)` of a model fd. EBADF for a number that is not one.
    public func close(_ fd: Int32) throws(Errno) {
        try TaskWork.syscall { () throws(Errno) in
            try tracer.call({ () throws(Errno) in try fdTable.close(fd) }) { "close(\(fd))" + TraceFormat.result($0) { "0" } }
        }
    }

    /// `dup(2)` / `fcntl(F_DUPFD[_CLOEXEC])`: a new fd for the same file.
    public func dup(_ fd: Int32, minimum: Int32 = 0, cloexec: Bool = false) throws(Errno) -> Int32 {
        try TaskWork.syscall { () throws(Errno) -> Int32 in try tracer.call({ () throws(Errno) -> Int32 in
            let n = try fdTable.dup(fd, minimum: minimum, cloexec: cloexec)
            census.fdInstalled()
            return n
        }) { r in
            (minimum == 0 && !cloexec ? "dup(\(fd))" : "fcntl(\(fd), \(cloexec ? "F_DUPFD_CLOEXEC" : "F_DUPFD"), \(minimum))")
                + TraceFormat.result(r)
        } }
    }

    /// Records that the real descriptor `newfd` (made by `dup2`/`dup3` of model fd `oldfd`) is the
    /// same file; a model file previously at `newfd` loses that slot.
    public func adoptDuplicate(of oldfd: Int32, as newfd: Int32) throws(Errno) {
        try TaskWork.syscall { () throws(Errno) in
            try tracer.call({ () throws(Errno) in try fdTable.adoptDuplicate(of: oldfd, as: newfd) }) {
                "dup2(\(oldfd), \(newfd))" + TraceFormat.result($0) { "\(newfd)" }
            }
        }
    }

    /// Forgets a model fd whose descriptor was closed behind the model's back; true if it was one.
    public func forgetFD(_ fd: Int32) -> Bool {
        TaskWork.syscall { fdTable.forget(fd) }
    }

    /// Whether `fd` is a model fd.
    public func isModelFD(_ fd: Int32) -> Bool { fdTable.lookup(fd) != nil }

    /// Whether `fd` is a model fd still backed by its own placeholder; a stale number (closed
    /// behind the model's back, reused by another file) is forgotten and answers false.
    public func validateModelFD(_ fd: Int32) -> Bool {
        TaskWork.syscall { fdTable.validate(fd) }
    }

    /// The placeholder identity (st_dev, st_ino) recorded for a model fd.
    public func identity(of fd: Int32) -> (dev: UInt64, ino: UInt64)? { fdTable.identity(fd) }

    /// How many model fds are open.
    public var openFDCount: Int { fdTable.count }

    /// The open model fds, lowest number first.
    public var openFDs: [Int32] { fdTable.fds.sorted() }

    /// `fget(fd)`: the file behind a model fd with a new reference; EBADF if none.
    public func fget(_ fd: Int32) throws(Errno) -> VFIOFile {
        guard let f = fdTable.fget(fd) else { throw .EBADF.because("not a model fd") }
        return f
    }

    /// `fput(file)` as a system call: a release it causes runs before it returns.
    public func fput(_ file: VFIOFile) {
        TaskWork.syscall { file.put() }
    }

    /// The file behind `fd` for SET_CONTAINER and KVM: a referenced model file, nil for an open
    /// descriptor that is not the model's (EBADFD later), EBADF for a closed or O_PATH one. The
    /// model checks the number it is given itself (a placeholder closed and reused behind its back
    /// is not its file any more): callers need no sweep first.
    func fileForFD(_ fd: Int32) throws(Errno) -> VFIOFile? {
        if let f = fdTable.fgetValidated(fd) { return f }
        guard fd >= 0, svfio_fd_state(fd) == 1 else { throw .EBADF.because("not an open fd") }
        return nil
    }

    /// Kernel: iommufd_ctx_from_file(): the context with a reference, or nil when `file` is not an
    /// iommufd (or CONFIG_IOMMUFD is off and the stub refuses everything).
    func iommufdContext(from file: VFIOFile) -> IOMMUFDContext? {
        guard config.iommufd, let ctx = file.iommufdContext else { return nil }
        return ctx.get() ? ctx : nil
    }

    /// A file that is none of the model's own kinds (tests of the "not ours" paths).
    public func makeForeignFile(name: String = "foreign") -> VFIOFile {
        VFIOFile(subsystem: self, kind: .other, flags: 0o2, name: name, operations: ForeignFileOperations())
    }
}
