// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO

// What the LD_PRELOAD interposer (libswiftvfio-preload.so) needs beyond the system calls: the
// answers stat(2) gives for the model's device nodes and fds. The interposer fills the C structs
// (struct stat, stat64, statx) itself; the model only says what kind of inode a node or fd is
// and which device number it carries, so the numbers live in one place.
//
// Device numbers, chosen to look like what a v6.3 kernel hands out:
// - /dev/vfio/vfio: misc major 10, minor VFIO_MINOR 196 (fixed in the kernel), mode 0666.
// - /dev/iommu: misc major 10, minor 123 (the kernel gives iommufd a dynamic misc minor, counted
//   down from 127 as misc drivers load; 123 is a typical value, fixed here so runs agree), 0660.
// - /dev/vfio/<N>, /dev/vfio/noiommu-<N>: the "vfio" char region's dynamic major, 243 here (the
//   kernel allocates dynamic majors downward from 254; 243 is a typical value), minor = the
//   group's minor from the model's IDA, mode 0600 (the kernel sets no devnode mode).
// - /dev/vfio: a directory, 0755.
// - device fds: the anonymous inode "[vfio-device]", mode 0600 with no file-type bits.

/// Major device number of the model's VFIO group char devices (the kernel's dynamic major).
let preloadGroupMajor: UInt32 = 243
/// Misc char devices' major (MISC_MAJOR).
let preloadMiscMajor: UInt32 = 10
/// /dev/vfio/vfio's misc minor (VFIO_MINOR).
let preloadVFIOMinor: UInt32 = 196
/// /dev/iommu's misc minor (dynamic in the kernel; fixed for the model).
let preloadIOMMUMinor: UInt32 = 123

private let S_IFCHR: UInt32 = 0o020000
private let S_IFDIR: UInt32 = 0o040000
private let S_IFREG: UInt32 = 0o100000

// The module files a VFIO client checks before it opens /dev/vfio (DPDK's rte_eal_check_module()
// stats /sys/module/vfio and /sys/module/vfio_pci; its IOVA choice reads the no-IOMMU parameter),
// as sysfs shows them for the modules the model stands for. vfio and vfio_pci are always there
// (the model is vfio with vfio-pci built in); vfio_iommu_type1 while the type1 backend is
// registered and not unloading; `parameters/enable_unsafe_noiommu_mode` (mode 0644, "Y\n" or
// "N\n", param_get_bool's format) with CONFIG_VFIO_NOIOMMU, the only build that has the parameter.
private let moduleRoot = "/sys/module/"
private let noIOMMUParameter = "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"

/// The mode of the module file `path` in `sub`, or nil when the model has no such file.
private func moduleFileMode(_ path: String, _ sub: VFIOSubsystem) -> UInt32? {
    switch path {
    case "/sys/module/vfio", "/sys/module/vfio_pci":
        return S_IFDIR | 0o755
    case "/sys/module/vfio_iommu_type1":
        guard let type1 = sub.iommuDriver(named: "vfio-iommu-type1"), !type1.unloading else { return nil }
        return S_IFDIR | 0o755
    case "/sys/module/vfio/parameters":
        return sub.config.vfioNoIOMMU ? S_IFDIR | 0o755 : nil
    case noIOMMUParameter:
        return sub.config.vfioNoIOMMU ? S_IFREG | 0o644 : nil
    default:
        return nil
    }
}

/// Writes a node's mode and device number through the three out-pointers.
private func writeNode(_ mode: UInt32, _ major: UInt32, _ minor: UInt32,
                       _ pm: UnsafeMutablePointer<UInt32>?, _ pj: UnsafeMutablePointer<UInt32>?,
                       _ pn: UnsafeMutablePointer<UInt32>?) throws(CallError) {
    try writeOut(mode, to: pm, "mode")
    try writeOut(major, to: pj, "rdev_major")
    try writeOut(minor, to: pn, "rdev_minor")
}

/// Describes the model's device node at `path` as stat(2) on a kernel with these devices would:
/// `*mode` gets the st_mode bits (S_IFCHR or S_IFDIR plus permissions), `*rdev_major` and
/// `*rdev_minor` the device number (0:0 for the /dev/vfio directory). `path` must be absolute and
/// normalised (no "//", "." or ".."): "/dev/vfio", "/dev/vfio/vfio", "/dev/vfio/<N>",
/// "/dev/vfio/noiommu-<N>", "/dev/iommu". Numbers: /dev/vfio/vfio 10:196 mode 0666, /dev/iommu
/// 10:123 mode 0660 (only when the topology enables iommufd), groups 243:<group minor> mode 0600,
/// /dev/vfio a directory 0755. Also the sysfs files of the modules the model stands for (device
/// number 0:0): the directories "/sys/module/vfio", "/sys/module/vfio_pci",
/// "/sys/module/vfio_iommu_type1" (while the type1 backend is registered) and
/// "/sys/module/vfio/parameters", and the regular file (mode 0644)
/// "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode" (both only with CONFIG_VFIO_NOIOMMU;
/// read it with swiftvfio_sysfs_read()). For the LD_PRELOAD interposer. Returns 0, or -ENOENT
/// when the model has no such node or file, -EFAULT for an unreadable path or out-pointer.
@c public func swiftvfio_path_stat(_ path: UnsafePointer<CChar>?, _ mode: UnsafeMutablePointer<UInt32>?,
                                   _ rdev_major: UnsafeMutablePointer<UInt32>?,
                                   _ rdev_minor: UnsafeMutablePointer<UInt32>?) -> Int32 {
    kernelCall("swiftvfio_path_stat") { sub throws(CallError) in
        let p = try cString(path, "path")
        switch p {
        case "/dev/vfio":
            try writeNode(S_IFDIR | 0o755, 0, 0, mode, rdev_major, rdev_minor)
        case "/dev/vfio/vfio":
            try writeNode(S_IFCHR | 0o666, preloadMiscMajor, preloadVFIOMinor, mode, rdev_major, rdev_minor)
        case "/dev/iommu":
            guard sub.config.iommufd else { throw CallError(.ENOENT, "\(p): iommufd is not configured") }
            try writeNode(S_IFCHR | 0o660, preloadMiscMajor, preloadIOMMUMinor, mode, rdev_major, rdev_minor)
        case _ where p.hasPrefix(moduleRoot):
            guard let m = moduleFileMode(p, sub) else { throw CallError(.ENOENT, "\(p): no such module file in the model") }
            try writeNode(m, 0, 0, mode, rdev_major, rdev_minor)
        default:
            let prefix = "/dev/vfio/"
            guard p.hasPrefix(prefix), let group = sub.group(named: String(p.dropFirst(prefix.count))) else {
                throw CallError(.ENOENT, "\(p): no such model node")
            }
            try writeNode(S_IFCHR | 0o600, preloadGroupMajor, UInt32(group.minor), mode, rdev_major, rdev_minor)
        }
        return 0
    }
}

/// Reads the model's sysfs file at `path` from its start, as read(2) of a fresh descriptor would:
/// up to `size` bytes of its text into `buf` (not NUL-terminated). The one such file is
/// "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode": "Y\n" or "N\n", the parameter's
/// current value (see swiftvfio_path_stat()). For the LD_PRELOAD interposer, which answers open()
/// and read() of it while a model is loaded. Returns the number of bytes written, or -ENOENT when
/// the model has no such file, -EISDIR for one of its module directories, -EFAULT for an unreadable
/// path or an unwritable `buf`.
@c public func swiftvfio_sysfs_read(_ path: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?,
                                    _ size: size_t) -> Int32 {
    kernelCall("swiftvfio_sysfs_read") { sub throws(CallError) in
        let p = try cString(path, "path")
        guard let m = moduleFileMode(p, sub) else { throw CallError(.ENOENT, "\(p): no such sysfs file in the model") }
        guard m & S_IFREG == S_IFREG else { throw CallError(.EISDIR, "\(p) is a directory") }
        let text = Array((sub.enableUnsafeNoIOMMUMode ? "Y\n" : "N\n").utf8)
        let n = min(text.count, size)
        if n == 0 { return 0 }
        guard let buf else { throw CallError(.EFAULT, "buf is NULL") }
        let failed: Errno? = text.withUnsafeBytes { raw in
            do throws(Errno) {
                try UserMemory.copyOut(raw.baseAddress!, to: UInt(bitPattern: buf), count: n)
                return nil
            } catch {
                return error
            }
        }
        if let failed { throw CallError(failed, "buf is not writable", withReason: false) }
        return Int32(n)
    }
}

/// Describes the file behind model fd `fd` as fstat(2) would: a container, iommufd or group fd
/// answers as its device node (see swiftvfio_path_stat(); a group fd keeps its node's number even
/// after the group was removed), a device fd as the anonymous inode "[vfio-device]": `*mode` 0600
/// with no file-type bits and device number 0:0. Does not check the descriptor's identity (call
/// swiftvfio_is_model_fd() first). For the LD_PRELOAD interposer. Returns 0, or -EBADF when `fd`
/// is not a model fd, -EFAULT for an unwritable out-pointer.
@c public func swiftvfio_fd_stat(_ fd: Int32, _ mode: UnsafeMutablePointer<UInt32>?,
                                 _ rdev_major: UnsafeMutablePointer<UInt32>?,
                                 _ rdev_minor: UnsafeMutablePointer<UInt32>?) -> Int32 {
    kernelCall("swiftvfio_fd_stat") { sub throws(CallError) in
        let file = try model("fd \(fd) is not a model fd") { () throws(Errno) in try sub.fget(fd) }
        defer { sub.fput(file) }
        switch file.kind {
        case .container:
            try writeNode(S_IFCHR | 0o666, preloadMiscMajor, preloadVFIOMinor, mode, rdev_major, rdev_minor)
        case .iommufd:
            try writeNode(S_IFCHR | 0o660, preloadMiscMajor, preloadIOMMUMinor, mode, rdev_major, rdev_minor)
        case .group:
            guard let group = file.group else { throw CallError(.EBADF, "fd \(fd): group file already released") }
            try writeNode(S_IFCHR | 0o600, preloadGroupMajor, UInt32(group.minor), mode, rdev_major, rdev_minor)
        case .device, .other:
            try writeNode(0o600, 0, 0, mode, rdev_major, rdev_minor)
        }
        return 0
    }
}

/// Creates the process's default model now, from the topology SWIFTVFIO_TOPOLOGY names, unless
/// the process already has a model or the variable is unset or empty (the built-in default is then
/// created on first use, as by every entry point). For the LD_PRELOAD interposer, before its first
/// use of the model: where the lazy creation of the other entry points falls back to an empty
/// model after printing why, a topology that does not load fails here and creates nothing, so the
/// interposer can answer ENOENT for every model path. Returns 0, or -errno with
/// "SWIFTVFIO_TOPOLOGY: <why>" in swiftvfio_last_error() (the file, the JSON path and what was
/// expected): -ENOENT or -EACCES when the path cannot be read, -EINVAL when it is not a valid
/// topology.
@c public func swiftvfio_load_environment_topology() -> Int32 {
    guard let path = ProcessEnvironment.current.topologyPath else { return 0 }
    if DefaultSubsystem.shared.currentSubsystem != nil { return 0 }
    do throws(CallError) {
        try DefaultSubsystem.shared.replace { () throws(CallError) -> VFIOSubsystem in
            try ProcessEnvironment.load(topology: path)
        }
        return 0
    } catch {
        // Another thread created the model first and is using it: that model stands.
        if error.errno == .EBUSY { return 0 }
        LastError.set(error.message.hasPrefix("SWIFTVFIO_DRIVERS") ? error.message : "SWIFTVFIO_TOPOLOGY: \(error.message)")
        return -error.errno.rawValue
    }
}

/// Closes every model fd of the process's default model, lowest number first, as the kernel's
/// exit_files() closes the descriptors of a process that exits: each close and each file release
/// runs (and is traced) as with swiftvfio_close(), so the releases a VFIO client leaves to its
/// exit (QEMU's `quit` finalizes no device) happen, in the order the fd numbers give (a device
/// fd pins its group file, so the group's release comes with the device's). A number whose
/// placeholder was already closed behind the model's back is forgotten instead (its real
/// descriptor, maybe reused, is not touched). Then, when the trace is on (SWIFTVFIO_TRACE),
/// writes one line with what is left: "exit_files() = <fds closed> => {files=<model files still
/// open>, fds=<model fds still open>}"; files stay open only where C holds references
/// (swiftvfio_fget()). For the LD_PRELOAD interposer, which calls it from an atexit() handler of
/// the process that loaded the model (not from a forked child, whose files the kernel would share
/// with its parent). Creates no model: without one it returns 0. Call it only when no other
/// thread uses model fds any more. Returns the number of fds closed (>= 0).
@c public func swiftvfio_exit_files() -> Int32 {
    guard DefaultSubsystem.shared.currentSubsystem != nil else { return 0 }
    return kernelCall("swiftvfio_exit_files") { sub throws(CallError) in
        var closed: Int32 = 0
        for fd in sub.openFDs where sub.validateModelFD(fd) {
            if (try? sub.close(fd)) != nil { closed += 1 }
        }
        if sub.tracer.isEnabled {
            let c = sub.census.counts
            sub.tracer.emit("exit_files() = \(closed) => {files=\(c.files), fds=\(c.fds)}")
        }
        return closed
    }
}

/// Sets the process's fd observer: `observer(fd, 1)` is called for every number that becomes a
/// model fd (swiftvfio_open(), swiftvfio_dup(), swiftvfio_adopt_dup(), a device fd from
/// VFIO_GROUP_GET_DEVICE_FD, ...) and `observer(fd, 0)` for every number that stops being one
/// (a close, a forget, a stale entry replaced), each under the model's lock for that number and
/// before the model closes the placeholder, so the calls for one number arrive in order and a
/// mirror of the fd table never names a number the kernel may already have reused. The model fds
/// open at the time of the call are reported at once. NULL removes the observer. The observer runs
/// inside model calls: it must return quickly and must not call into libswiftvfio. For the
/// LD_PRELOAD interposer, which routes a number to the model exactly when the observer said so.
/// Creates no model.
@c public func swiftvfio_set_fd_observer(_ observer: (@convention(c) (Int32, Int32) -> Void)?) {
    FDObserver.set(observer)
    if observer != nil { DefaultSubsystem.shared.currentSubsystem?.announceOpenFDs() }
}
