// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// What a file's operations table is, the identity `vfio_file_is_group()` tests.
public enum FileKind: Sendable, Equatable {
    /// `vfio_group_fops`: `/dev/vfio/<N>`.
    case group
    /// `vfio_fops`: `/dev/vfio/vfio`.
    case container
    /// `iommufd_fops`: `/dev/iommu`.
    case iommufd
    /// `vfio_device_fops`: an anon-inode "[vfio-device]" file from GET_DEVICE_FD.
    case device
    /// Any other file (for tests of the "not ours" paths: a pipe, /dev/null).
    case other
}

/// `struct file_operations`: what a model file does when a system call reaches it.
///
/// Each kind of model file has one conforming type, whose instance is also the file's
/// `private_data` (the group, the container, the iommufd context, the device file record), so a
/// call goes from the fd straight to its handler: `file.operations.ioctl(file, ...)`, no switch
/// on the kind and no cast. An operation a kind does not provide answers as the kernel does for a
/// missing entry in the table: ENOTTY for ioctl, EINVAL for read and write, ENODEV for mmap.
protocol FileOperations: AnyObject, Sendable {
    /// `unlocked_ioctl`.
    func ioctl(_ file: VFIOFile, cmd: UInt32, arg: UInt) throws(Errno) -> Int
    /// `read` (read(2) passes the file position, pread(2) its own offset).
    func read(_ file: VFIOFile, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int
    /// `write` (write(2) passes the file position, pwrite(2) its own offset).
    func write(_ file: VFIOFile, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int
    /// `mmap`: the address of the new mapping, placed as `placement` asks.
    func mmap(_ file: VFIOFile, offset: Int64, length: Int, prot: Int32, placement: MmapPlacement) throws(Errno) -> UInt
    /// `release`: the last reference to the file is gone.
    func release(_ file: VFIOFile)
}

extension FileOperations {
    func ioctl(_ file: VFIOFile, cmd: UInt32, arg: UInt) throws(Errno) -> Int { throw .ENOTTY.because("this file has no ioctl") }
    func read(_ file: VFIOFile, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int { throw .EINVAL.because("this file has no read") }
    func write(_ file: VFIOFile, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int { throw .EINVAL.because("this file has no write") }
    func mmap(_ file: VFIOFile, offset: Int64, length: Int, prot: Int32, placement: MmapPlacement) throws(Errno) -> UInt { throw .ENODEV.because("this file has no mmap") }
    func release(_ file: VFIOFile) {}
}

/// The operations of a file that is none of the model's own kinds (tests of the "not ours" paths).
final class ForeignFileOperations: FileOperations {}

/// A `struct file`: an open file object with a reference count, distinct from fd numbers.
///
/// `dup()`, KVM's GROUP_ADD and a device's first open in container mode each hold a reference; the
/// kind's release runs on the last `put()`, deferred to the return to user space (`TaskWork`) when
/// the put happens inside a model system call, as the kernel's `fput` defers it.
public final class VFIOFile: @unchecked Sendable, CustomStringConvertible {
    /// The operations table.
    public let kind: FileKind
    /// `f_flags` as given to open (O_RDWR, O_CLOEXEC, ...).
    public let flags: Int32
    /// FMODE_PREAD | FMODE_PWRITE: set on device files.
    public let positional: Bool
    /// Name for messages, e.g. "/dev/vfio/26" or "[vfio-device]".
    public let name: String
    unowned let subsystem: VFIOSubsystem
    /// `file->f_op` and `file->private_data` in one: the object that serves the file. Fixed for
    /// the file's life (a `let`, so a call through it borrows it: no reference-count traffic on
    /// the system-call path).
    let operations: any FileOperations
    /// The reference count (`f_count`); read inline by the C ABI's handle checks (`refCount`).
    @usableFromInline let refs = Atomic<Int>(1)
    /// Serial number, so C handles can detect reuse.
    let serial: UInt64
    /// `file->f_pos`, the position read(2)/write(2) use and advance (pread/pwrite pass their own);
    /// guarded by `positionLock` (`f_pos_lock`).
    nonisolated(unsafe) var position: Int64 = 0
    let positionLock = KernelMutex("file->f_pos_lock")

    init(subsystem: VFIOSubsystem, kind: FileKind, flags: Int32, name: String, positional: Bool = false,
         operations: any FileOperations) {
        self.subsystem = subsystem
        self.kind = kind
        self.flags = flags
        self.name = name
        self.positional = positional
        self.operations = operations
        self.serial = subsystem.nextFileSerial()
        subsystem.census.fileCreated()
        pin()
    }

    // A file pins itself (one Swift retain of its own) while it has references, as a kernel file
    // lives until its last fput: a system call can then use the file it took a reference on
    // without also retaining the object (`FDTable.fgetLent`), which on the routed path was a
    // second atomic on the same cache line. The pin goes when the last reference does
    // (`put()`), or with `abandonUnopened()` for a file whose open failed.
    private func pin() { _ = Unmanaged.passUnretained(self).retain() }
    private func unpin() { Unmanaged.passUnretained(self).release() }

    /// A file whose open failed: freed without a release (the kernel's fput of an unopened file).
    func abandonUnopened() {
        guard refs.exchange(0, ordering: .acquiringAndReleasing) > 0 else { return }
        unpin()
    }

    public var description: String { name }

    /// The current reference count (for tests and the census).
    @inlinable public var refCount: Int { refs.load(ordering: .relaxed) }

    /// `get_file()`: a new reference. A get on a released file is a use-after-free: WARN, refused.
    @discardableResult
    public func get() -> Bool {
        var old = refs.load(ordering: .relaxed)
        while true {
            if old <= 0 {
                subsystem.log.warnOn(true, "get_file on released file \(name)")
                return false
            }
            let (exchanged, original) = refs.weakCompareExchange(expected: old, desired: old + 1,
                                                                 ordering: .relaxed)
            if exchanged { return true }
            old = original
        }
    }

    /// `get_file()` for a file an fd table slot holds (the caller holds the slot's lock): the
    /// slot's own reference keeps the count above zero, so one atomic add does (no
    /// compare-and-swap loop on every system call).
    @inline(__always)
    func getHeld() {
        let old = refs.wrappingAdd(1, ordering: .relaxed).oldValue
        assert(old > 0, "getHeld on a file without references")
    }

    /// `fput()`: drops a reference; the last one runs the release (deferred inside a system call).
    /// A put too many WARNs and changes nothing.
    public func put() {
        let old = refs.subtract(1, ordering: .acquiringAndReleasing).oldValue
        if old == 1 {
            TaskWork.add { [self] in self.release() }   // the work holds the file until it has run
            unpin()
        } else if old <= 0 {
            refs.add(1, ordering: .relaxed)   // undone: a put too many changes nothing
            subsystem.log.warnOn(true, "fput on released file \(name)")
        }
    }

    /// Whether the file's release has run (its last reference is gone).
    public var isReleased: Bool { refs.load(ordering: .acquiring) <= 0 }

    private func release() {
        subsystem.traceRelease(self)
        operations.release(self)
        subsystem.census.fileReleased()
    }
}
