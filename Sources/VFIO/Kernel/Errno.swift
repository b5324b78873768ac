/// A Linux error number, thrown by every model function that returns `-E...` in the kernel.
///
/// The values are the Linux/x86 numbers (docs/ERRORS.md), independent of the host C library, so the
/// model answers the same codes wherever it runs. Kernel functions become `throws(Errno)`.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive Linux error number.
    public let rawValue: Int32

    /// Wraps a positive Linux error number.
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Operation not permitted.
    public static let EPERM = Errno(rawValue: 1)
    /// No such file or directory.
    public static let ENOENT = Errno(rawValue: 2)
    /// Interrupted system call.
    public static let EINTR = Errno(rawValue: 4)
    /// I/O error.
    public static let EIO = Errno(rawValue: 5)
    /// No such device or address.
    public static let ENXIO = Errno(rawValue: 6)
    /// Argument list too long.
    public static let E2BIG = Errno(rawValue: 7)
    /// Bad file descriptor.
    public static let EBADF = Errno(rawValue: 9)
    /// Try again.
    public static let EAGAIN = Errno(rawValue: 11)
    /// Out of memory.
    public static let ENOMEM = Errno(rawValue: 12)
    /// Permission denied.
    public static let EACCES = Errno(rawValue: 13)
    /// Bad address.
    public static let EFAULT = Errno(rawValue: 14)
    /// Device or resource busy.
    public static let EBUSY = Errno(rawValue: 16)
    /// File exists.
    public static let EEXIST = Errno(rawValue: 17)
    /// No such device.
    public static let ENODEV = Errno(rawValue: 19)
    /// Invalid argument.
    public static let EINVAL = Errno(rawValue: 22)
    /// File table overflow.
    public static let ENFILE = Errno(rawValue: 23)
    /// Too many open files.
    public static let EMFILE = Errno(rawValue: 24)
    /// Not a typewriter: unknown ioctl.
    public static let ENOTTY = Errno(rawValue: 25)
    /// No space left on device (IDA exhausted).
    public static let ENOSPC = Errno(rawValue: 28)
    /// File descriptor in bad state.
    public static let EBADFD = Errno(rawValue: 77)
    /// Operation not supported.
    public static let EOPNOTSUPP = Errno(rawValue: 95)

    /// The symbolic name, for messages and test output.
    public var name: String {
        switch rawValue {
        case 1: "EPERM"; case 2: "ENOENT"; case 4: "EINTR"; case 5: "EIO"; case 6: "ENXIO"
        case 7: "E2BIG"; case 9: "EBADF"; case 11: "EAGAIN"; case 12: "ENOMEM"; case 13: "EACCES"
        case 14: "EFAULT"; case 16: "EBUSY"; case 17: "EEXIST"; case 19: "ENODEV"; case 22: "EINVAL"
        case 23: "ENFILE"; case 24: "EMFILE"; case 25: "ENOTTY"; case 28: "ENOSPC"; case 77: "EBADFD"
        case 95: "EOPNOTSUPP"
        default: "errno \(rawValue)"
        }
    }

    public var description: String { name }
}
