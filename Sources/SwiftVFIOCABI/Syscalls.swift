// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSwiftVFIOTypes
import VFIO

// The user-space entry points (docs/ERRORS.md#c-api, include/swiftvfio.h): the model's
// system calls on the default model, syscall-style (-1 with errno), plus what the LD_PRELOAD
// interposer needs to route libc calls on model fds.

/// Replaces the default model with the topology at `path` (a JSON file or a sysfs-shaped
/// directory; NULL: the built-in default topology). Returns 0, or -errno with the reason in
/// swiftvfio_last_error(): -EBUSY while the current model is in use (model fds or files open, C
/// holding file or IOMMU-group references, C drivers' devices allocated, or calls in progress
/// on other threads), -ENOENT/-EACCES when `path` cannot be read, -EINVAL when it is not a valid
/// topology (the message names the file, the JSON path and what was expected), -EFAULT for an
/// unreadable `path`. A load that fails leaves the current model exactly as it was. Handles to
/// the old model's devices (struct device *, borrowed struct vfio_device *) become stale.
@c public func swiftvfio_topology_load(_ path: UnsafePointer<CChar>?) -> CInt {
    do throws(CallError) {
        let p: String? = path == nil ? nil : try cString(path, "path")
        try DefaultSubsystem.shared.replace { () throws(CallError) -> VFIOSubsystem in
            try ProcessEnvironment.load(topology: p)
        }
        return 0
    } catch {
        LastError.set("swiftvfio_topology_load: \(error.errno.name): \(error.message)")
        return -error.errno.rawValue
    }
}

/// Returns this thread's last error message (set by every failing call of this library, e.g.
/// "swiftvfio_open: ENOENT: /dev/vfio/99: no such model node"), or NULL if none failed yet. The
/// string belongs to the thread and stays valid until its next failing call.
@c public func swiftvfio_last_error() -> UnsafePointer<CChar>? {
    LastError.cString
}

/// open(2) of a model node: /dev/vfio/vfio (a new container), /dev/vfio/<N> or
/// /dev/vfio/noiommu-<N> (a VFIO group; one open at a time), /dev/iommu (an iommufd).
/// `flags` as open(2) (O_RDWR, O_CLOEXEC). Returns a new model fd, backed by a real descriptor so
/// its number is unique in the process; close it with swiftvfio_close(). On error -1 with errno:
/// ENOENT (no such model node), EBUSY (group already open), EPERM (no-IOMMU group without
/// CAP_SYS_RAWIO), ENODEV (group being removed), EFAULT (unreadable path), EMFILE/ENFILE.
@c public func swiftvfio_open(_ path: UnsafePointer<CChar>?, _ flags: CInt) -> CInt {
    syscallCall("swiftvfio_open") { sub throws(CallError) in
        let p = try cString(path, "path")
        return try model(p) { () throws(Errno) in try sub.open(p, flags: flags) }
    }
}

/// ioctl(2) on a model fd: the group, container, iommufd and device ioctls of <linux/vfio.h>,
/// with `arg` an integer or a pointer into this process as the ioctl defines. Returns the
/// ioctl's result (>= 0), or -1 with errno: the kernel's codes (docs/ERRORS.md), EBADF for a number
/// that is not a model fd, EFAULT for an unreadable or unwritable argument (never a crash),
/// ENOTTY for an unknown request.
@c public func swiftvfio_ioctl(_ fd: CInt, _ request: CUnsignedLong, _ arg: CUnsignedLong) -> CInt {
    syscallCall("swiftvfio_ioctl") { sub throws(CallError) in
        do throws(Errno) {
            return cInt(try sub.ioctl(fd, UInt(request), UInt(arg)))
        } catch {
            // "VFIO_IOMMU_MAP_DMA: argsz 8 < minsz 32 (fd 3)": built only on failure.
            var text = sub.ioctlName(fd: fd, request: UInt(request))
            if let why = error.reasonText { text += ": " + why }
            throw CallError(error, text + " (fd \(fd))", withReason: false)
        }
    }
}

/// close(2) of a model fd: frees the number and drops the fd's file reference (the file's
/// release runs when its last reference goes: a group file held by swiftvfio_fget() stays open).
/// Returns 0, or -1 with errno EBADF for a number that is not a model fd.
@c public func swiftvfio_close(_ fd: CInt) -> CInt {
    syscallCall("swiftvfio_close") { sub throws(CallError) in
        try model("fd \(fd) is not a model fd") { () throws(Errno) in try sub.close(fd) }
        return Int32(0)
    }
}

/// dup(2)/fcntl(F_DUPFD, F_DUPFD_CLOEXEC) of a model fd: a new model fd >= `minfd` for the same
/// file (one more file reference). `flags` may hold O_CLOEXEC. Returns the new fd, or -1 with
/// errno EBADF (not a model fd), EINVAL (negative `minfd`, unknown flags), EMFILE.
@c public func swiftvfio_dup(_ oldfd: CInt, _ minfd: CInt, _ flags: CInt) -> CInt {
    syscallCall("swiftvfio_dup") { sub throws(CallError) in
        guard minfd >= 0 else { throw CallError(.EINVAL, "minfd \(minfd) is negative") }
        guard flags & ~O_CLOEXEC == 0 else { throw CallError(.EINVAL, "flags 0x\(String(flags, radix: 16)): only O_CLOEXEC") }
        return try model("fd \(oldfd)") { () throws(Errno) in
            try sub.dup(oldfd, minimum: minfd, cloexec: flags & O_CLOEXEC != 0)
        }
    }
}

/// Records that descriptor `newfd`, already made by the real dup2()/dup3() of model fd `oldfd`,
/// is a model fd for the same file (one more file reference); a model fd previously numbered
/// `newfd` is closed in the model (dup2 closed its descriptor). For the interposer. Returns 0, or
/// -1 with errno EBADF (`oldfd` is not a model fd).
@c public func swiftvfio_adopt_dup(_ oldfd: CInt, _ newfd: CInt) -> CInt {
    syscallCall("swiftvfio_adopt_dup") { sub throws(CallError) in
        guard newfd >= 0 else { throw CallError(.EBADF, "newfd \(newfd) is negative") }
        try model("fd \(oldfd) is not a model fd") { () throws(Errno) in try sub.adoptDuplicate(of: oldfd, as: newfd) }
        return Int32(0)
    }
}

/// Forgets model fd `fd` without closing its descriptor, which was closed behind the model's
/// back (fclose() of an fdopen()ed stream); drops the fd's file reference. For the interposer.
/// Returns 1 if `fd` was a model fd, 0 if not.
@c public func swiftvfio_forget_fd(_ fd: CInt) -> CInt {
    quietCall("swiftvfio_forget_fd", Int32(0)) { sub in sub.forgetFD(fd) ? 1 : 0 }
}

/// Returns 1 if `fd` is a model fd, else 0. Checks that the descriptor is still the one the
/// model opened (its st_dev/st_ino): a number closed behind the model's back and reused by the
/// process is forgotten (as swiftvfio_forget_fd()) and answers 0, so the interposer never routes
/// another file to the model.
@c public func swiftvfio_is_model_fd(_ fd: CInt) -> CInt {
    quietCall("swiftvfio_is_model_fd", Int32(0)) { sub in
        sub.validateModelFD(fd) ? 1 : 0
    }
}

/// read(2) of a model fd at the file position (advanced by the bytes read): a device file
/// routes to its driver's read op. Returns the bytes read, or -1 with errno: EBADF (not a model
/// fd), EINVAL (not a device file, or a driver without read), the driver's error.
@c public func swiftvfio_read(_ fd: CInt, _ buf: UnsafeMutableRawPointer?, _ count: size_t) -> ssize_t {
    syscallCall("swiftvfio_read") { sub throws(CallError) in
        guard count >= 0 else { throw CallError(.EINVAL, "count \(count)") }
        return try model("fd \(fd)") { () throws(Errno) in try sub.read(fd, buffer: UInt(bitPattern: buf), count: count) }
    }
}

/// pread(2) of a model fd at `offset` (the file position is unchanged); as swiftvfio_read(),
/// plus EINVAL for a negative offset. A device file's offset selects the region (vfio-pci:
/// region index << 40).
@c public func swiftvfio_pread(_ fd: CInt, _ buf: UnsafeMutableRawPointer?, _ count: size_t, _ offset: off_t) -> ssize_t {
    syscallCall("swiftvfio_pread") { sub throws(CallError) in
        guard count >= 0, offset >= 0 else { throw CallError(.EINVAL, "count \(count), offset \(offset)") }
        var pos = Int64(offset)
        return try model("fd \(fd)") { () throws(Errno) in try sub.read(fd, buffer: UInt(bitPattern: buf), count: count, offset: &pos) }
    }
}

/// write(2) of a model fd at the file position (advanced by the bytes written): a device file
/// routes to its driver's write op. Returns the bytes written, or -1 with errno as
/// swiftvfio_read().
@c public func swiftvfio_write(_ fd: CInt, _ buf: UnsafeRawPointer?, _ count: size_t) -> ssize_t {
    syscallCall("swiftvfio_write") { sub throws(CallError) in
        guard count >= 0 else { throw CallError(.EINVAL, "count \(count)") }
        return try model("fd \(fd)") { () throws(Errno) in try sub.write(fd, buffer: UInt(bitPattern: buf), count: count) }
    }
}

/// pwrite(2) of a model fd at `offset` (the file position is unchanged); as swiftvfio_write(),
/// plus EINVAL for a negative offset.
@c public func swiftvfio_pwrite(_ fd: CInt, _ buf: UnsafeRawPointer?, _ count: size_t, _ offset: off_t) -> ssize_t {
    syscallCall("swiftvfio_pwrite") { sub throws(CallError) in
        guard count >= 0, offset >= 0 else { throw CallError(.EINVAL, "count \(count), offset \(offset)") }
        var pos = Int64(offset)
        return try model("fd \(fd)") { () throws(Errno) in try sub.write(fd, buffer: UInt(bitPattern: buf), count: count, offset: &pos) }
    }
}

/// mmap(2) of a model device fd: the driver's mmap op provides the memory (see struct
/// vm_area_struct). The built-in vfio-pci places the mapping as mmap(2) would: at `addr` when it is
/// a free hint, exactly at `addr` with MAP_FIXED (replacing what is there, e.g. the caller's own
/// PROT_NONE reservation) or MAP_FIXED_NOREPLACE (EEXIST when something is there); it hands out a
/// fresh shared mapping of the BAR that the caller owns and unmaps, and any number of mappings,
/// unmapped and made again, show the same BAR bytes. A C driver's mmap op hands out memory it owns
/// (vm_start), which the caller must not unmap and the model cannot move: `addr` is only a hint
/// there and MAP_FIXED is EINVAL. As in the kernel, a MAP_FIXED mapping the device refuses leaves
/// the range unmapped. Returns its address, or MAP_FAILED ((void *)-1) with errno: EBADF (not a
/// model fd), EINVAL (zero length, offset not page aligned, neither MAP_SHARED nor MAP_PRIVATE,
/// MAP_FIXED at an address not page aligned), EPERM (MAP_FIXED at NULL, below mmap_min_addr),
/// ENODEV (not a device file), then the driver's:
/// vfio-pci says EINVAL for a region it cannot map (config space, ROM, an I/O or trapped BAR, no
/// such region), a range past the region's end and a private (MAP_PRIVATE) mapping, EEXIST for
/// MAP_FIXED_NOREPLACE over a mapping, ENOMEM when the host refuses (a fixed placement: the host
/// kernel's errno); a C driver EINVAL for MAP_FIXED or without an mmap op, else its own error.
@c public func swiftvfio_mmap(_ addr: UnsafeMutableRawPointer?, _ length: size_t, _ prot: CInt, _ flags: CInt,
                              _ fd: CInt, _ offset: off_t) -> UnsafeMutableRawPointer? {
    let failed = UnsafeMutableRawPointer(bitPattern: -1)
    return quietCall("swiftvfio_mmap", failed, setErrno: true) { sub throws(CallError) in
        let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
        guard length > 0, offset >= 0, Int64(offset) % page == 0 else {
            throw CallError(.EINVAL, "length \(length), offset \(offset)")
        }
        // do_mmap(): the mapping type first (before the file's mmap is even looked at), then a
        // fixed address must be page aligned (get_unmapped_area()).
        let type = flags & 0x0f
        guard type == MAP_SHARED || type == MAP_PRIVATE || type == MAP_SHARED_VALIDATE else {
            throw CallError(.EINVAL, "flags \(String(flags, radix: 16)): neither MAP_SHARED nor MAP_PRIVATE")
        }
        let placement = MmapPlacement(address: UInt(bitPattern: addr), flags: flags)
        guard !placement.isFixed || placement.address % UInt(page) == 0 else {
            throw CallError(.EINVAL, "MAP_FIXED at \(addr.map { "\($0)" } ?? "nil"), not page aligned")
        }
        // The first page is below mmap_min_addr: the kernel's answer for a caller without
        // CAP_SYS_RAWIO (and a mapping at NULL could not be told from MAP_FAILED's NULL here).
        guard !placement.isFixed || placement.address != 0 else { throw CallError(.EPERM, "MAP_FIXED at NULL") }
        let address = try model("fd \(fd)") { () throws(Errno) in
            try sub.mmap(fd, offset: Int64(offset), length: length, prot: prot, placement: placement)
        }
        return UnsafeMutableRawPointer(bitPattern: address) ?? failed
    }
}
