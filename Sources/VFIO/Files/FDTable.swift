import CSwiftVFIOShim

/// The model's fd table: real placeholder descriptors mapped to model files.
///
/// Every model fd is a real descriptor (a memfd) so its number never collides with the process's
/// own files and `fcntl(F_GETFD)` tells the truth about close-on-exec. Each entry holds one file
/// reference, as an fd table slot does. A `dup` is a new slot on the same file.
final class FDTable: @unchecked Sendable {
    struct Entry {
        let file: VFIOFile
        let dev: UInt64
        let ino: UInt64
    }

    /// Guards `entries`; a slot is removed before its descriptor is closed, both under the lock,
    /// so a number the kernel hands out again can never find a stale entry.
    private let lock = KernelMutex("fdtable.lock")
    private var entries: [Int32: Entry] = [:]
    private unowned let subsystem: VFIOSubsystem

    init(subsystem: VFIOSubsystem) { self.subsystem = subsystem }

    /// `get_unused_fd_flags()`: a fresh placeholder descriptor, not yet bound to a file.
    func reserve(cloexec: Bool, name: String) throws(Errno) -> Int32 {
        try subsystem.faults.check(.fdReserve)
        let fd = svfio_placeholder_fd(name, cloexec ? 1 : 0)
        if fd < 0 { throw Errno(rawValue: -fd) }
        return fd
    }

    /// `put_unused_fd()`: gives back a reserved number.
    func unreserve(_ fd: Int32) { _ = svfio_close_fd(fd) }

    /// `fd_install()`: binds a reserved number to `file`, consuming the caller's reference.
    /// A stale entry at the same number (its descriptor was closed behind the model's back and
    /// the kernel handed the number out again) loses its slot: its file reference is put.
    func install(_ fd: Int32, _ file: VFIOFile) {
        var dev: UInt64 = 0, ino: UInt64 = 0
        _ = svfio_fd_identity(fd, &dev, &ino)
        let stale = lock.withLock { entries.updateValue(Entry(file: file, dev: dev, ino: ino), forKey: fd) }
        subsystem.census.fdInstalled()
        if let stale { subsystem.census.fdClosed(); stale.file.put() }
    }

    /// `fget(fd)`: the file with a new reference, or nil (EBADF) for a number that is not a model fd.
    func fget(_ fd: Int32) -> VFIOFile? {
        lock.withLock {
            guard let e = entries[fd] else { return nil }
            return e.file.get() ? e.file : nil
        }
    }

    /// The file without a new reference, for the duration of a call that holds the fd busy.
    /// (The kernel's `fdget` borrows the slot's reference when the table is not shared.)
    func lookup(_ fd: Int32) -> VFIOFile? { lock.withLock { entries[fd]?.file } }

    /// The placeholder identity recorded for `fd`.
    func identity(_ fd: Int32) -> (dev: UInt64, ino: UInt64)? {
        lock.withLock { entries[fd].map { ($0.dev, $0.ino) } }
    }

    /// `close(fd)`: removes the slot, closes the placeholder and puts the file. EBADF if not ours.
    func close(_ fd: Int32) throws(Errno) {
        let file = try lock.withLock { () throws(Errno) -> VFIOFile in
            guard let e = entries.removeValue(forKey: fd) else { throw .EBADF }
            _ = svfio_close_fd(fd)
            return e.file
        }
        subsystem.census.fdClosed()
        file.put()
    }

    /// `dup`/`fcntl(F_DUPFD[_CLOEXEC])`: a new number >= `minimum` for the same file.
    func dup(_ fd: Int32, minimum: Int32 = 0, cloexec: Bool = false) throws(Errno) -> Int32 {
        let (nfd, stale) = try lock.withLock { () throws(Errno) -> (Int32, Entry?) in
            guard let e = entries[fd] else { throw .EBADF }
            let nfd = svfio_dup_fd(fd, minimum, cloexec ? 1 : 0)
            if nfd < 0 { throw Errno(rawValue: -nfd) }
            guard e.file.get() else { _ = svfio_close_fd(nfd); throw .EBADF }
            return (nfd, entries.updateValue(Entry(file: e.file, dev: e.dev, ino: e.ino), forKey: nfd))
        }
        if let stale { subsystem.census.fdClosed(); stale.file.put() }
        return nfd
    }

    /// Whether `fd` is a model fd whose descriptor is still the placeholder it was given (same
    /// st_dev/st_ino). A number whose placeholder was closed behind the model's back and reused
    /// for another file is forgotten (its file reference put) and answers false. The check and the
    /// forget happen under the table lock, so a concurrent install at the same number is never
    /// mistaken for a stale one.
    func validate(_ fd: Int32) -> Bool {
        let (ok, stale) = lock.withLock { () -> (Bool, Entry?) in
            guard let e = entries[fd] else { return (false, nil) }
            var dev: UInt64 = 0, ino: UInt64 = 0
            if svfio_fd_identity(fd, &dev, &ino) == 0, dev == e.dev, ino == e.ino { return (true, nil) }
            entries[fd] = nil
            return (false, e)
        }
        if let stale { subsystem.census.fdClosed(); stale.file.put() }
        return ok
    }

    /// Records that `newfd` (already a duplicate made by the real `dup`/`dup2`/`dup3` of a model fd)
    /// now refers to the same file as `oldfd`; an existing model entry at `newfd` is closed first.
    func adoptDuplicate(of oldfd: Int32, as newfd: Int32) throws(Errno) {
        let replaced = try lock.withLock { () throws(Errno) -> VFIOFile? in
            guard let e = entries[oldfd] else { throw .EBADF }
            guard e.file.get() else { throw .EBADF }
            let old = entries.updateValue(Entry(file: e.file, dev: e.dev, ino: e.ino), forKey: newfd)
            return old?.file
        }
        subsystem.census.fdInstalled()
        if let replaced { subsystem.census.fdClosed(); replaced.put() }
    }

    /// Forgets `fd` without closing the descriptor (it was closed behind the model's back).
    func forget(_ fd: Int32) -> Bool {
        guard let e = lock.withLock({ entries.removeValue(forKey: fd) }) else { return false }
        subsystem.census.fdClosed()
        e.file.put()
        return true
    }

    /// How many model fds are open.
    var count: Int { lock.withLock { entries.count } }

    /// Every open model fd (for the census and teardown).
    var fds: [Int32] { lock.withLock { Array(entries.keys) } }
}
