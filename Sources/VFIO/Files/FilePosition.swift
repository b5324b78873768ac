// SPDX-License-Identifier: Apache-2.0
/// read(2)/write(2) of a model fd at the file's own position (`file->f_pos`), for the C ABI and the
/// interposer; `read(_:buffer:count:offset:)` is pread(2).
extension VFIOSubsystem {
    /// `read(2)`: reads at the file position and advances it by the bytes read (ksys_read holds
    /// f_pos_lock across the call, so concurrent readers of one file see distinct positions).
    public func read(_ fd: Int32, buffer: UInt, count: Int) throws(Errno) -> Int {
        guard let file = fdTable.fget(fd) else { throw .EBADF.because("not a model fd") }
        defer { fput(file) }
        return try file.positionLock.withLock { () throws(Errno) -> Int in
            var pos = file.position
            let n = try read(fd, buffer: buffer, count: count, offset: &pos)
            file.position = pos
            return n
        }
    }

    /// `write(2)`: writes at the file position and advances it by the bytes written.
    public func write(_ fd: Int32, buffer: UInt, count: Int) throws(Errno) -> Int {
        guard let file = fdTable.fget(fd) else { throw .EBADF.because("not a model fd") }
        defer { fput(file) }
        return try file.positionLock.withLock { () throws(Errno) -> Int in
            var pos = file.position
            let n = try write(fd, buffer: buffer, count: count, offset: &pos)
            file.position = pos
            return n
        }
    }
}
