// SPDX-License-Identifier: Apache-2.0
/// A Linux error number, thrown by every model function that returns `-E...` in the kernel.
///
/// The values are the Linux/x86 numbers (docs/ERRORS.md), independent of the host C library, so the
/// model answers the same codes wherever it runs. Kernel functions become `throws(Errno)`.
///
/// An `Errno` may carry the reason the model gave it (`ErrnoReason`: the check that failed, with
/// its values), attached at the throw site with `because(...)` and formatted only when someone
/// reads it. The reason takes no part in `==` or hashing: `.EINVAL.because(...) == .EINVAL`.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive Linux error number.
    public let rawValue: Int32
    /// Why the model returned this code, when the throw site said (nil for a bare code).
    public let reason: ErrnoReason?

    /// Wraps a positive Linux error number.
    @inlinable public init(rawValue: Int32) {
        self.rawValue = rawValue
        self.reason = nil
    }

    @inlinable init(rawValue: Int32, reason: ErrnoReason?) {
        self.rawValue = rawValue
        self.reason = reason
    }

    /// This code with the check that failed: `template` is static text in which each `{}` is
    /// replaced by the next value in decimal, `{x}` in hex (`0x1001`) and `{i}` as a signed
    /// number, e.g. `.EINVAL.because("argsz {} < minsz {}", argsz, 32)`. Nothing is formatted
    /// here (the values are stored), so a throw costs a few stores.
    @inline(__always)
    public func because(_ template: StaticString, _ a: some BinaryInteger, _ b: some BinaryInteger,
                        _ c: some BinaryInteger) -> Errno {
        Errno(rawValue: rawValue, reason: ErrnoReason(template, UInt64(truncatingIfNeeded: a),
                                                      UInt64(truncatingIfNeeded: b), UInt64(truncatingIfNeeded: c)))
    }

    /// As `because(_:_:_:_:)` with two values.
    @inline(__always)
    public func because(_ template: StaticString, _ a: some BinaryInteger, _ b: some BinaryInteger) -> Errno {
        because(template, a, b, 0)
    }

    /// As `because(_:_:_:_:)` with one value.
    @inline(__always)
    public func because(_ template: StaticString, _ a: some BinaryInteger) -> Errno {
        because(template, a, 0, 0)
    }

    /// As `because(_:_:_:_:)` with no value.
    @inline(__always)
    public func because(_ template: StaticString) -> Errno {
        because(template, 0, 0, 0)
    }

    /// The reason's text ("argsz 8 < minsz 32"), or nil when the throw site gave none.
    public var reasonText: String? { reason?.text }

    public static func == (a: Errno, b: Errno) -> Bool { a.rawValue == b.rawValue }
    public func hash(into h: inout Hasher) { h.combine(rawValue) }

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
    /// Is a directory.
    public static let EISDIR = Errno(rawValue: 21)
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
        case 14: "EFAULT"; case 16: "EBUSY"; case 17: "EEXIST"; case 19: "ENODEV"; case 21: "EISDIR"; case 22: "EINVAL"
        case 23: "ENFILE"; case 24: "EMFILE"; case 25: "ENOTTY"; case 28: "ENOSPC"; case 77: "EBADFD"
        case 95: "EOPNOTSUPP"
        default: "errno \(rawValue)"
        }
    }

    public var description: String { name }
}

/// The check that failed, as the throw site recorded it: a static template and up to three
/// values, formatted into text only when read (`text`), so failing costs no allocation and
/// succeeding costs nothing.
public struct ErrnoReason: Sendable {
    /// The template: static text with `{}` (decimal), `{x}` (hex) and `{i}` (signed) holes.
    public let template: StaticString
    /// The values for the holes, in order.
    public let values: (UInt64, UInt64, UInt64)

    @inlinable init(_ template: StaticString, _ a: UInt64, _ b: UInt64, _ c: UInt64) {
        self.template = template
        self.values = (a, b, c)
    }

    /// The reason with its values filled in: "vaddr 0x1001 not page-aligned".
    public var text: String {
        let vals = [values.0, values.1, values.2]
        var out = "", next = 0
        var bytes = template.withUTF8Buffer { Array($0) }[...]
        func take() -> UInt64 {
            defer { next += 1 }
            return next < vals.count ? vals[next] : 0
        }
        while let c = bytes.first {
            if c == UInt8(ascii: "{"), let close = bytes.firstIndex(of: UInt8(ascii: "}")),
               close - bytes.startIndex <= 2 {
                let spec = bytes[(bytes.startIndex + 1)..<close]
                if spec.isEmpty {
                    out += String(take())
                } else if spec.first == UInt8(ascii: "x") {
                    out += "0x" + String(take(), radix: 16)
                } else if spec.first == UInt8(ascii: "i") {
                    out += String(Int64(bitPattern: take()))
                } else {
                    out += String(decoding: bytes[bytes.startIndex...close], as: UTF8.self)
                }
                bytes = bytes[(close + 1)...]
            } else {
                out.unicodeScalars.append(Unicode.Scalar(c))
                bytes = bytes.dropFirst()
            }
        }
        return out
    }
}
