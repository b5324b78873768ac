// SPDX-License-Identifier: Apache-2.0
/// The private data of a device file: the device and how it was opened (6.6's per-file record).
/// Its methods are the file's operations (`vfio_device_fops`, docs/ERRORS.md#device-fd), each handing the call to
/// the device.
final class DeviceFile: FileOperations, @unchecked Sendable {
    let device: VFIODevice
    /// The iommufd context this file's open went through, or nil for the container.
    let iommufd: IOMMUFDContext?

    init(device: VFIODevice, iommufd: IOMMUFDContext?) {
        self.device = device
        self.iommufd = iommufd
    }

    func ioctl(_ file: VFIOFile, cmd: UInt32, arg: UInt) throws(Errno) -> Int {
        try device.fopsIoctl(cmd: cmd, arg: arg)
    }

    func read(_ file: VFIOFile, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int {
        try device.fopsRead(buffer: buffer, count: count, offset: &offset)
    }

    func write(_ file: VFIOFile, buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int {
        try device.fopsWrite(buffer: buffer, count: count, offset: &offset)
    }

    func mmap(_ file: VFIOFile, offset: Int64, length: Int, prot: Int32, placement: MmapPlacement) throws(Errno) -> UInt {
        try device.fopsMmap(offset: offset, length: length, prot: prot, placement: placement)
    }

    func release(_ file: VFIOFile) { device.fopsRelease(self) }
}

/// The device side of `vfio_device_fops`.
extension VFIODevice {
    /// Kernel: vfio_device_fops_release(): close through the group, then drop the registration
    /// reference the file held (which may let a blocked unregister finish).
    func fopsRelease(_ file: DeviceFile) {
        groupClose()
        putRegistration()
    }

    /// Kernel: vfio_device_fops_unl_ioctl(): VFIO_DEVICE_FEATURE is the core's; the rest go to the
    /// driver's `ioctl`, EINVAL without one.
    func fopsIoctl(cmd: UInt32, arg: UInt) throws(Errno) -> Int {
        if cmd == VFIOIoctl.deviceFeature { return try ioctlDeviceFeature(arg: arg) }
        guard let ioctl = ops.ioctl else { throw .EINVAL.because("the driver has no ioctl op") }
        return try ioctl(self, cmd, arg)
    }

    /// Kernel: vfio_ioctl_device_feature(). The migration and dirty-logging features need
    /// `mig_ops`/`log_ops`, which no modelled driver has: ENOTTY, as the kernel answers then.
    func ioctlDeviceFeature(arg: UInt) throws(Errno) -> Int {
        struct Header: BitwiseCopyable { var argsz: UInt32; var flags: UInt32 }
        let mask: UInt32 = 0xffff, get: UInt32 = 1 << 16, set: UInt32 = 1 << 17, probe: UInt32 = 1 << 18
        let h = try UserMemory.read(Header.self, from: arg)
        guard h.argsz >= 8 else { throw .EINVAL.because("argsz {} < minsz {}", h.argsz, 8) }
        guard h.flags & ~(mask | get | set | probe) == 0 else {
            throw .EINVAL.because("unknown flags {x}", h.flags & ~(mask | get | set | probe))
        }
        // GET and SET are mutually exclusive except with PROBE.
        if h.flags & probe == 0 && h.flags & set != 0 && h.flags & get != 0 {
            throw .EINVAL.because("flags {x}: GET and SET without PROBE", h.flags)
        }
        switch h.flags & mask {
        case 1, 2, 6, 7, 8:   // MIGRATION, MIG_DEVICE_STATE, DMA_LOGGING_START/STOP/REPORT
            throw .ENOTTY.because("feature {}: migration and dirty logging are not modelled", h.flags & mask)
        default:
            guard let feature = ops.deviceFeature else { throw .EINVAL.because("feature {}: the driver has no device_feature op", h.flags & mask) }
            return try feature(self, h.flags, arg + 8, Int(h.argsz) - 8)
        }
    }

    /// Kernel: vfio_device_fops_read(): the driver's `read`, EINVAL without one.
    func fopsRead(buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int {
        guard let read = ops.read else { throw .EINVAL.because("the driver has no read op") }
        return try read(self, buffer, count, &offset)
    }

    /// Kernel: vfio_device_fops_write(): the driver's `write`, EINVAL without one.
    func fopsWrite(buffer: UInt, count: Int, offset: inout Int64) throws(Errno) -> Int {
        guard let write = ops.write else { throw .EINVAL.because("the driver has no write op") }
        return try write(self, buffer, count, &offset)
    }

    /// Kernel: vfio_device_fops_mmap(): the driver's `mmap`, EINVAL without one.
    func fopsMmap(offset: Int64, length: Int, prot: Int32, placement: MmapPlacement) throws(Errno) -> UInt {
        guard let mmap = ops.mmap else { throw .EINVAL.because("the driver has no mmap op") }
        return try mmap(self, offset, length, prot, placement)
    }
}
