// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim

/// A user-space address as an ioctl receives it: never dereferenced directly.
///
/// Every access goes through `UserMemory`, the model's `copy_from_user`/`copy_to_user`: a bad
/// pointer (NULL, unmapped, read-only for a write) gives EFAULT, never a crash.
public enum UserMemory {
    /// `copy_from_user` into a value of trivial type `T`.
    @inline(__always)
    public static func read<T: BitwiseCopyable>(_ type: T.Type = T.self, from address: UInt) throws(Errno) -> T {
        var value: T = unsafe_zeroed()
        let r = withUnsafeMutableBytes(of: &value) { svfio_copy_from_user($0.baseAddress, UInt(address), MemoryLayout<T>.size) }
        if r != 0 { throw Errno(rawValue: -r).because("cannot read {} bytes at {x}", MemoryLayout<T>.size, address) }
        return value
    }

    /// `copy_to_user` of a value of trivial type `T`.
    @inline(__always)
    public static func write<T: BitwiseCopyable>(_ value: T, to address: UInt) throws(Errno) {
        var v = value
        let r = withUnsafeBytes(of: &v) { svfio_copy_to_user(UInt(address), $0.baseAddress, MemoryLayout<T>.size) }
        if r != 0 { throw Errno(rawValue: -r).because("cannot write {} bytes at {x}", MemoryLayout<T>.size, address) }
    }

    /// `copy_from_user` of `count` bytes into `buffer`.
    public static func copyIn(_ buffer: UnsafeMutableRawPointer, from address: UInt, count: Int) throws(Errno) {
        let r = svfio_copy_from_user(buffer, UInt(address), count)
        if r != 0 { throw Errno(rawValue: -r).because("cannot read {} bytes at {x}", count, address) }
    }

    /// `copy_to_user` of `count` bytes from `buffer`.
    public static func copyOut(_ buffer: UnsafeRawPointer, to address: UInt, count: Int) throws(Errno) {
        let r = svfio_copy_to_user(UInt(address), buffer, count)
        if r != 0 { throw Errno(rawValue: -r).because("cannot write {} bytes at {x}", count, address) }
    }

    /// `strndup_user(address, limit)`: EFAULT for an unreadable string, EINVAL when no NUL lies
    /// within `limit` bytes (the kernel's PAGE_SIZE bound for device names).
    public static func string(at address: UInt, limit: Int = 4096) throws(Errno) -> String {
        try withUnsafeTemporaryAllocation(of: CChar.self, capacity: limit) { (buf) throws(Errno) -> String in
            let n = svfio_strncpy_from_user(buf.baseAddress, UInt(address), limit)
            if n < 0 { throw Errno(rawValue: Int32(-n)).because("string at {x} not readable", address) }
            if n >= limit { throw .EINVAL.because("string at {x}: no NUL within {} bytes", address, limit) }
            return String(decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: n).bindMemory(to: UInt8.self), as: UTF8.self)
        }
    }
}

@inline(__always) func unsafe_zeroed<T: BitwiseCopyable>() -> T {
    withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { p in
        UnsafeMutableRawPointer(p.baseAddress!).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        return p.baseAddress!.pointee
    }
}
