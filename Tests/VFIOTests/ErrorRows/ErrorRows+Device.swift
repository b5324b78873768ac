// SPDX-License-Identifier: Apache-2.0
// docs/ERRORS.md rows of the device fd (vfio_device_fops, VFIO_DEVICE_FEATURE) and of the built-in
// vfio-pci device (its ioctls, read/write, mmap and name match).
#if canImport(Glibc)
import Glibc
#endif
import CSwiftVFIOShim
import Testing
@testable import VFIO
import VFIOTopology

extension VFIOSubsystem {
    /// An open device fd of 0000:06:0d.0 (group 26 in a type1 container).
    func openDevice(_ name: String = "0000:06:0d.0", group: String = "26") throws -> Int32 {
        let g = try open("/dev/vfio/" + group)
        try containerWith(g)
        return try deviceFD(g, name)
    }

    /// A device of a driver with no ops but a name, registered in IOMMU group 92, opened.
    func openOpslessDevice() throws -> Int32 {
        let ig = try iommu.addGroup(id: 92)
        let bus = try iommu.addDevice(name: "opsless")
        try iommu.addDevice(bus, to: ig)
        let d = try allocDevice(bus, ops: VFIODeviceOps(name: "opsless"))   // teardown's removeVFIODevice puts it
        try registerGroupDevice(d)
        return try openDevice("opsless", group: "92")
    }

    /// VFIO_DEVICE_SET_IRQS with a header and `fds` as the eventfd data.
    func setIRQs(_ d: Int32, argsz: UInt32? = nil, flags: UInt32, index: UInt32, start: UInt32 = 0, count: UInt32,
                 fds: [Int32] = []) throws(Errno) -> Int {
        var bytes = [UInt8](repeating: 0, count: 20 + 4 * fds.count)
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: argsz ?? UInt32(20 + 4 * fds.count), toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: flags, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: index, toByteOffset: 8, as: UInt32.self)
            b.storeBytes(of: start, toByteOffset: 12, as: UInt32.self)
            b.storeBytes(of: count, toByteOffset: 16, as: UInt32.self)
            for (i, fd) in fds.enumerated() { b.storeBytes(of: fd, toByteOffset: 20 + 4 * i, as: Int32.self) }
        }
        let r = bytes.withUnsafeMutableBytes { b in
            Result { () throws(Errno) -> Int in try ioctl(d, UInt(VFIOIoctl.deviceSetIRQs), UInt(bitPattern: b.baseAddress)) }
        }
        return try r.get()
    }

    /// pread of `count` bytes at `offset` into a scratch buffer (or at `buffer`).
    func readAt(_ d: Int32, _ offset: Int64, count: Int = 4, buffer: UInt? = nil) throws(Errno) -> Int {
        var scratch = [UInt8](repeating: 0, count: max(count, 1))
        var at = offset
        let r = scratch.withUnsafeMutableBytes { b in
            Result { () throws(Errno) -> Int in try read(d, buffer: buffer ?? UInt(bitPattern: b.baseAddress), count: count, offset: &at) }
        }
        return try r.get()
    }
}

/// SET_IRQS flags.
let kDataNone: UInt32 = 1, kDataBool: UInt32 = 2, kDataEventfd: UInt32 = 4
let kActionMask: UInt32 = 8, kActionUnmask: UInt32 = 16, kActionTrigger: UInt32 = 32

/// A region's offset in the device fd (`index << 40`).
func region(_ index: Int64) -> Int64 { index << 40 }

/// An eventfd the test owns for the length of a row (the model keeps its own duplicate).
final class RowEventfd: @unchecked Sendable {
    let fd = svfio_eventfd(0, 1)
    deinit { close(fd) }
}

extension ErrorRows {
    static let device: [ErrorRow] = [
        .sub("devfd-ebadf", .EBADF, "not a model fd") { sub in
            var at: Int64 = 0
            return try sub.read(4321, buffer: 0, count: 0, offset: &at)
        },
        .sub("devfd-rw-einval", .EINVAL, "the driver has no read op") { sub in
            try sub.readAt(try sub.openOpslessDevice(), 0)
        },
        .sub("devfd-rw-einval (write)", .EINVAL, "the driver has no write op") { sub in
            var at: Int64 = 0, byte: UInt8 = 0
            let d = try sub.openOpslessDevice()
            return try withUnsafeMutablePointer(to: &byte) { (p) throws(Errno) -> Int in
                try sub.write(d, buffer: UInt(bitPattern: p), count: 1, offset: &at)
            }
        },
        .sub("devfd-rw-einval (not a device)", .EINVAL, "this file has no read") { sub in
            try sub.readAt(try sub.open("/dev/vfio/26"), 0)
        },
        .sub("devfd-mmap-enodev", .ENODEV, "this file has no mmap") { sub in
            Int(try sub.mmap(try sub.open("/dev/vfio/26"), offset: 0, length: 4096, prot: PROT_READ))
        },
        .sub("devfd-mmap-einval", .EINVAL, "the driver has no mmap op") { sub in
            Int(try sub.mmap(try sub.openOpslessDevice(), offset: 0, length: 4096, prot: PROT_READ))
        },
        .sub("devfd-ioctl-einval", .EINVAL, "the driver has no ioctl op") { sub in
            try sub.ioctl(try sub.openOpslessDevice(), UInt(VFIOIoctl.deviceGetInfo), 0)
        },
        .sub("feat-efault", .EFAULT, "cannot read 8 bytes at 0x0") { sub in
            try sub.ioctl(try sub.openDevice(), UInt(VFIOIoctl.deviceFeature), 0)
        },
        .sub("feat-einval-argsz", .EINVAL, "argsz 4 < minsz 8") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceFeature, with: (UInt32(4), UInt32(0)))
        },
        .sub("feat-einval-flags", .EINVAL, "unknown flags 0x100000") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceFeature, with: (UInt32(8), UInt32(1 << 20)))
        },
        .sub("feat-einval-getset", .EINVAL, "flags 0x30001: GET and SET without PROBE") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceFeature, with: (UInt32(8), UInt32(1 << 16 | 1 << 17 | 1)))
        },
        .sub("feat-enotty-mig", .ENOTTY, "feature 1: migration and dirty logging are not modelled") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceFeature, with: (UInt32(8), UInt32(1 << 16 | 1)))
        },
        .sub("feat-einval-none", .EINVAL, "feature 3: the driver has no device_feature op") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceFeature, with: (UInt32(8), UInt32(1 << 16 | 3)))
        },
    ]

    static let pci: [ErrorRow] = [
        .sub("pci-enotty", .ENOTTY, "request not handled by vfio-pci") { sub in
            try sub.ioctl(try sub.openDevice(), 0x3B72)   // VFIO_DEVICE_GET_PCI_HOT_RESET_INFO
        },
        .sub("pci-info-efault", .EFAULT, "cannot read 16 bytes at 0x10") { sub in
            try sub.ioctl(try sub.openDevice(), UInt(VFIOIoctl.deviceGetInfo), 0x10)
        },
        .sub("pci-info-einval", .EINVAL, "argsz 12 < minsz 16") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceGetInfo, with: (UInt32(12), UInt32(0), UInt32(0), UInt32(0)))
        },
        .sub("pci-region-efault", .EFAULT, "cannot read 32 bytes at 0x10") { sub in
            try sub.ioctl(try sub.openDevice(), UInt(VFIOIoctl.deviceGetRegionInfo), 0x10)
        },
        .sub("pci-region-einval-argsz", .EINVAL, "argsz 16 < minsz 32") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceGetRegionInfo,
                          with: PCIDeviceModel.RegionInfo(argsz: 16, flags: 0, index: 0, capOffset: 0, size: 0, offset: 0))
        },
        .sub("pci-region-einval-index", .EINVAL, "region index 8 (VGA): not a VGA device") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceGetRegionInfo,
                          with: PCIDeviceModel.RegionInfo(argsz: 32, flags: 0, index: 8, capOffset: 0, size: 0, offset: 0))
        },
        .sub("pci-region-einval-index (beyond)", .EINVAL, "region index 9 >= num_regions 9") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceGetRegionInfo,
                          with: PCIDeviceModel.RegionInfo(argsz: 32, flags: 0, index: 9, capOffset: 0, size: 0, offset: 0))
        },
        .sub("pci-irq-efault", .EFAULT, "cannot read 16 bytes at 0x10") { sub in
            try sub.ioctl(try sub.openDevice(), UInt(VFIOIoctl.deviceGetIRQInfo), 0x10)
        },
        .sub("pci-irq-einval", .EINVAL, "argsz 8 < minsz 16") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceGetIRQInfo,
                          with: PCIDeviceModel.IRQInfo(argsz: 8, flags: 0, index: 0, count: 0))
        },
        .sub("pci-irq-einval (index)", .EINVAL, "IRQ index 5 >= num_irqs 5") { sub in
            try sub.ioctl(try sub.openDevice(), VFIOIoctl.deviceGetIRQInfo,
                          with: PCIDeviceModel.IRQInfo(argsz: 16, flags: 0, index: 5, count: 0))
        },
        .sub("pci-irq-einval (ERR, conventional)", .EINVAL, "IRQ index 3 (ERR) on a conventional PCI function") { sub in
            var identity = PCIDeviceIdentity()
            identity.pcie = false
            try sub.probePCIDevice(name: "0000:0b:00.0", iommuGroupID: 40, driver: "vfio-pci", identity: identity)
            return try sub.ioctl(try sub.openDevice("0000:0b:00.0", group: "40"), VFIOIoctl.deviceGetIRQInfo,
                                 with: PCIDeviceModel.IRQInfo(argsz: 16, flags: 0, index: 3, count: 0))
        },
        .sub("pci-setirqs-efault", .EFAULT, "cannot read 20 bytes at 0x10") { sub in
            try sub.ioctl(try sub.openDevice(), UInt(VFIOIoctl.deviceSetIRQs), 0x10)
        },
        .sub("pci-setirqs-einval-hdr", .EINVAL, "argsz 16 < minsz 20") { sub in
            try sub.setIRQs(try sub.openDevice(), argsz: 16, flags: kDataNone | kActionTrigger, index: 0, count: 1)
        },
        .sub("pci-setirqs-einval-hdr (index)", .EINVAL, "IRQ index 5 >= num_irqs 5") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: kDataNone | kActionTrigger, index: 5, count: 1)
        },
        .sub("pci-setirqs-einval-hdr (overflow)", .EINVAL, "start 1 + count 4294967295 overflows") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: kDataNone | kActionTrigger, index: 0, start: 1, count: .max)
        },
        .sub("pci-setirqs-einval-hdr (flags)", .EINVAL, "unknown flags 0x421 (known 0x3f)") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: 1 << 10 | kDataNone | kActionTrigger, index: 0, count: 1)
        },
        .sub("pci-setirqs-einval-range", .EINVAL, "start 1 count 1 outside the 1 vector(s) of this IRQ index") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: kDataNone | kActionTrigger, index: 0, start: 1, count: 1)
        },
        .sub("pci-setirqs-einval-type", .EINVAL, "flags 0x23: data type not exactly one of NONE, BOOL, EVENTFD") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: kDataNone | kDataBool | kActionTrigger, index: 0, count: 1)
        },
        .sub("pci-setirqs-einval-type (argsz)", .EINVAL, "argsz 20 < 24 for 1 element(s)") { sub in
            try sub.setIRQs(try sub.openDevice(), argsz: 20, flags: kDataEventfd | kActionTrigger, index: 0, count: 1)
        },
        .sub("pci-setirqs-enotty", .ENOTTY, "IRQ index 3 action 0x8: not handled by vfio-pci") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: kDataNone | kActionMask, index: 3, count: 1)
        },
        .sub("pci-setirqs-enotty (INTx MASK eventfd)", .ENOTTY, "INTx MASK with EVENTFD data") { sub in
            let d = try sub.openDevice(), e = RowEventfd()
            return try withExtendedLifetime(e) { () throws -> Int in
                _ = try sub.setIRQs(d, flags: kDataEventfd | kActionTrigger, index: 0, count: 1, fds: [e.fd])
                return try sub.setIRQs(d, flags: kDataEventfd | kActionMask, index: 0, count: 1, fds: [e.fd])
            }
        },
        .sub("pci-setirqs-einval-state", .EINVAL, "IRQ index 0 UNMASK: no interrupt mode is enabled") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: kDataNone | kActionUnmask, index: 0, count: 1)
        },
        .sub("pci-setirqs-einval-state (MSI while INTx)", .EINVAL, "IRQ index 1 TRIGGER: INTx is enabled") { sub in
            let d = try sub.openDevice(), e = RowEventfd()
            return try withExtendedLifetime(e) { () throws -> Int in
                _ = try sub.setIRQs(d, flags: kDataEventfd | kActionTrigger, index: 0, count: 1, fds: [e.fd])
                return try sub.setIRQs(d, flags: kDataEventfd | kActionTrigger, index: 1, count: 1, fds: [e.fd])
            }
        },
        .sub("pci-setirqs-einval-state (REQ count)", .EINVAL, "ERR/REQ: count 0 with BOOL or EVENTFD data") { sub in
            try sub.setIRQs(try sub.openDevice(), argsz: 20, flags: kDataEventfd | kActionTrigger, index: 4, count: 0)
        },
        .sub("pci-setirqs-ebadf", .EBADF, "fd 9999 is not open") { sub in
            try sub.setIRQs(try sub.openDevice(), flags: kDataEventfd | kActionTrigger, index: 0, count: 1, fds: [9999])
        },
        .sub("pci-setirqs-einval-eventfd", .EINVAL, "is not an eventfd") { sub in
            let null = open("/dev/null", O_RDONLY)
            defer { close(null) }
            return try sub.setIRQs(try sub.openDevice(), flags: kDataEventfd | kActionTrigger, index: 0, count: 1, fds: [null])
        },
        .sub("pci-rw-einval", .EINVAL, "region index 8 has nothing to read or write") { sub in
            try sub.readAt(try sub.openDevice(), region(8))
        },
        .sub("pci-rw-einval (past the BAR)", .EINVAL, "offset 0x1000 at or past the region's end 0x1000") { sub in
            try sub.readAt(try sub.openDevice(), region(0) + 0x1000)
        },
        .sub("pci-rw-einval (absent BAR)", .EINVAL, "region index 1 is an absent BAR or ROM") { sub in
            try sub.readAt(try sub.openDevice(), region(1))
        },
        .sub("pci-rw-einval (ROM write)", .EINVAL, "the ROM region is read-only") { sub in
            var at = region(6), byte: UInt8 = 0
            let d = try sub.openDevice()
            return try withUnsafeMutablePointer(to: &byte) { (p) throws(Errno) -> Int in
                try sub.write(d, buffer: UInt(bitPattern: p), count: 1, offset: &at)
            }
        },
        .sub("pci-rw-efault-config", .EFAULT, "config offset 0xff0 count 32 past the config space size 0x1000") { sub in
            try sub.readAt(try sub.openDevice(), region(7) + 0xff0, count: 32)
        },
        .sub("pci-rw-eio", .EIO, "memory decoding is off (command register 0x0)") { sub in
            let d = try sub.openDevice()
            var command: UInt16 = 0, at = region(7) + 4
            _ = try withUnsafeMutablePointer(to: &command) { (p) throws(Errno) -> Int in
                try sub.write(d, buffer: UInt(bitPattern: p), count: 2, offset: &at)
            }
            return try sub.readAt(d, region(0))
        },
        .sub("pci-rw-efault", .EFAULT, "cannot write 4 bytes at 0x10") { sub in
            try sub.readAt(try sub.openDevice(), region(7), count: 4, buffer: 0x10)
        },
        .sub("pci-mmap-einval", .EINVAL, "region 7 is not a BAR: only 0-5 can be mapped") { sub in
            Int(try sub.mmap(try sub.openDevice(), offset: region(7), length: 4096, prot: PROT_READ))
        },
        .sub("pci-mmap-einval (range)", .EINVAL, "offset 0x0 length 0x2000 outside the page-rounded BAR size 0x1000") { sub in
            Int(try sub.mmap(try sub.openDevice(), offset: region(0), length: 0x2000, prot: PROT_READ))
        },
        .sub("pci-mmap-einval (private)", .EINVAL, "vfio-pci maps only MAP_SHARED (VM_SHARED unset)") { sub in
            Int(try sub.mmap(try sub.openDevice(), offset: region(0), length: 4096, prot: PROT_READ,
                             placement: MmapPlacement(flags: MAP_PRIVATE)))
        },
        .sub("pci-mmap-eexist", .EEXIST, "the host's mmap of 0x1000 bytes at offset 0x0 failed") { sub in
            // MAP_FIXED_NOREPLACE over a mapping: the host's answer for the placement.
            let taken = mmap(nil, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            defer { munmap(taken, 4096) }
            return Int(try sub.mmap(try sub.openDevice(), offset: region(0), length: 4096, prot: PROT_READ,
                                    placement: MmapPlacement(address: UInt(bitPattern: taken), flags: MAP_SHARED | MAP_FIXED_NOREPLACE)))
        },
        .sub("pci-match-einval", .EINVAL, "unknown (only vf_token=<uuid>)") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            return Int(try sub.deviceFD(g, "0000:06:0d.0 foo=1"))
        },
        .sub("pci-match-einval (token, plain function)", .EINVAL, "vf_token given, but not a PF or VF") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            return Int(try sub.deviceFD(g, "0000:06:0d.0 vf_token=00000000-0000-0000-0000-000000000001"))
        },
        .sub("pci-match-eacces", .EACCES, "VF token required to access the VF") { sub in
            try sub.probePCIDevice(name: "0000:0c:00.1", iommuGroupID: 41, driver: "vfio-pci",
                                   vfToken: "11111111-2222-3333-4444-555555555555")
            return Int(try sub.openDevice("0000:0c:00.1", group: "41"))
        },
        .sub("pci-match-eacces (wrong token)", .EACCES, "incorrect VF token for the VF") { sub in
            try sub.probePCIDevice(name: "0000:0c:00.1", iommuGroupID: 41, driver: "vfio-pci",
                                   vfToken: "11111111-2222-3333-4444-555555555555")
            return Int(try sub.openDevice("0000:0c:00.1 vf_token=11111111-2222-3333-4444-000000000000", group: "41"))
        },
    ]
}
