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
    /// `file->private_data`. Set at open, cleared by the group release; owned by the file.
    // (Read on every ioctl; set at open and cleared at release, which no ioctl can overlap: no
    // dynamic exclusivity check.)
    @exclusivity(unchecked) nonisolated(unsafe) var privateData: AnyObject?
    private let refs = Atomic<Int>(1)
    /// Serial number, so C handles can detect reuse.
    let serial: UInt64
    /// `file->f_pos`, the position read(2)/write(2) use and advance (pread/pwrite pass their own);
    /// guarded by `positionLock` (`f_pos_lock`).
    nonisolated(unsafe) var position: Int64 = 0
    let positionLock = KernelMutex("file->f_pos_lock")

    init(subsystem: VFIOSubsystem, kind: FileKind, flags: Int32, name: String, positional: Bool = false,
         privateData: AnyObject?) {
        self.subsystem = subsystem
        self.kind = kind
        self.flags = flags
        self.name = name
        self.positional = positional
        self.privateData = privateData
        self.serial = subsystem.nextFileSerial()
        subsystem.census.fileCreated()
    }

    public var description: String { name }

    /// The current reference count (for tests and the census).
    public var refCount: Int { refs.load(ordering: .relaxed) }

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
            TaskWork.add { [self] in self.release() }
        } else if old <= 0 {
            refs.add(1, ordering: .relaxed)   // undone: a put too many changes nothing
            subsystem.log.warnOn(true, "fput on released file \(name)")
        }
    }

    private func release() {
        subsystem.releaseFile(self)
        subsystem.census.fileReleased()
    }
}
