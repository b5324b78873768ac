// SPDX-License-Identifier: Apache-2.0
// docs/ERRORS.md rows of open(2), the group fd ioctls, GET_DEVICE_FD, device open and close.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// The no-IOMMU configuration (the module parameter on).
let noIOMMUConfig = VFIOConfig(enableUnsafeNoIOMMUMode: true, unregisterRequestInterval: .milliseconds(20))

extension VFIOSubsystem {
    /// `ioctl(fd, cmd, &value)`: a copy of `value` is the argument.
    func ioctl<T>(_ fd: Int32, _ cmd: UInt32, with value: T) throws(Errno) -> Int {
        var v = value
        return try withUnsafeMutableBytes(of: &v) { (b) throws(Errno) -> Int in
            try ioctl(fd, UInt(cmd), UInt(bitPattern: b.baseAddress))
        }
    }

    /// A no-IOMMU device "0000:09:00.0" (needs the no-IOMMU configuration) and its group's fd.
    func noIOMMUGroup() throws -> (VFIODevice, Int32) {
        let dev = try #require(try probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci"))
        return (dev, try open(dev.vfioGroup!.path))
    }

    /// The model's iommufd context behind `fd`.
    func iommufdContext(_ fd: Int32) throws -> IOMMUFDContext {
        try #require(try withFile(fd) { $0.iommufdContext })
    }
}

/// IOMMU_VFIO_IOAS's argument.
struct VFIOIOASArg { var size: UInt32 = 12; var id: UInt32 = 0; var op: UInt16 = 0; var reserved: UInt16 = 0 }

extension ErrorRows {
    static let group: [ErrorRow] = [
        // MARK: open
        .sub("open-emfile", .EMFILE, "fault injected: get_unused_fd_flags") { sub in
            sub.faults.arm(.fdReserve, errno: .EMFILE)
            return Int(try sub.open("/dev/vfio/26"))
        },
        .sub("open-enoent", .ENOENT, "no such model node") { sub in Int(try sub.open("/dev/vfio/99")) },
        .sub("open-enoent (iommufd off)", .ENOENT, "config.iommufd is off",
             config: VFIOConfig(iommufd: false)) { sub in Int(try sub.open("/dev/iommu")) },
        .sub("open-enxio", .ENXIO, "no group holds minor 0") { sub in
            sub.removeVFIODevice(try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" }))
            let f = try sub.openGroupFile(minor: 0)
            f.put()
            return 0
        },
        .sub("open-container-enomem", .ENOMEM, "fault injected: kzalloc of the container") { sub in
            sub.faults.arm(.containerAlloc, errno: .ENOMEM)
            return Int(try sub.open("/dev/vfio/vfio"))
        },
        .sub("open-group-enodev", .ENODEV, "group 26 is being removed") { sub in
            let g = try sub.open("/dev/vfio/26")
            let file = try sub.fget(g)
            defer { sub.fput(file) }
            sub.removeVFIODevice(try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" }))
            let again = try sub.reopen(file)
            again.put()
            return 0
        },
        .sub("open-group-eperm", .EPERM, "needs CAP_SYS_RAWIO", config: noIOMMUConfig, rawIO: .denied, populated: false) { sub in
            _ = try sub.noIOMMUGroup()
            return 0
        },
        .sub("open-group-ebusy", .EBUSY, "group 26 is already open (one open file per group)") { sub in
            _ = try sub.open("/dev/vfio/26")
            return Int(try sub.open("/dev/vfio/26"))
        },
        // MARK: group ioctls
        .sub("group-ioctl-enotty", .ENOTTY, "not a group request") { sub in
            try sub.ioctl(try sub.open("/dev/vfio/26"), 0x3B99, 7)
        },
        .sub("gs-efault-in", .EFAULT, "cannot read 8 bytes at 0x10") { sub in
            try sub.ioctl(try sub.open("/dev/vfio/26"), UInt(VFIOIoctl.groupGetStatus), 0x10)
        },
        .sub("gs-einval-argsz", .EINVAL, "argsz 4 < minsz 8") { sub in
            try sub.ioctl(try sub.open("/dev/vfio/26"), VFIOIoctl.groupGetStatus, with: VFIOGroupStatus(argsz: 4, flags: 0))
        },
        .sub("gs-enodev", .ENODEV, "group 26 was removed (its last device unregistered)") { sub in
            let g = try sub.open("/dev/vfio/26")
            sub.removeVFIODevice(try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" }))
            return Int(try sub.status(g))
        },
        .sub("gs-efault-out", .EFAULT, "cannot write 8 bytes at 0x") { sub in
            let g = try sub.open("/dev/vfio/26")
            let page = T1Mem(Int(kP))
            UnsafeMutableRawPointer(bitPattern: UInt(page.base))!.storeBytes(of: VFIOGroupStatus(argsz: 8, flags: 0), as: VFIOGroupStatus.self)
            page.protect(offset: 0, length: Int(kP), prot: PROT_READ)
            return try withExtendedLifetime(page) { () throws -> Int in try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), UInt(page.base)) }
        },
        .sub("sc-efault", .EFAULT, "cannot read 4 bytes at 0x20") { sub in
            try sub.ioctl(try sub.open("/dev/vfio/26"), UInt(VFIOIoctl.groupSetContainer), 0x20)
        },
        .sub("sc-ebadf", .EBADF, "not an open fd") { sub in
            try sub.setContainer(try sub.open("/dev/vfio/26"), 9999)
            return 0
        },
        .sub("sc-einval-set", .EINVAL, "group 26 already has a container or iommufd set") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.setContainer(g, try sub.open("/dev/vfio/vfio"))
            try sub.setContainer(g, try sub.open("/dev/vfio/vfio"))
            return 0
        },
        .sub("sc-enodev", .ENODEV, "group 26 was removed (its last device unregistered)") { sub in
            let g = try sub.open("/dev/vfio/26")
            sub.removeVFIODevice(try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" }))
            try sub.setContainer(g, try sub.open("/dev/vfio/vfio"))
            return 0
        },
        .sub("sc-ebadfd", .EBADFD, "is neither a container nor an iommufd") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.setContainer(g, g)
            return 0
        },
        .sub("sc-attach-eperm-rawio", .EPERM, "no-IOMMU group", config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            let c = try sub.open("/dev/vfio/vfio")
            sub.rawIOPolicy = .denied
            try sub.setContainer(g, c)
            return 0
        },
        .sub("sc-attach-eperm-mix", .EPERM, "container holds IOMMU groups; group", config: noIOMMUConfig) { sub in
            let c = try sub.open("/dev/vfio/vfio")
            try sub.setContainer(try sub.open("/dev/vfio/26"), c)
            let (_, g) = try sub.noIOMMUGroup()
            try sub.setContainer(g, c)
            return 0
        },
        .sub("sc-attach-eperm-owned", .EPERM, "IOMMU group 27: DMA already owned") { sub in
            try sub.setContainer(try sub.open("/dev/vfio/27"), try sub.open("/dev/vfio/vfio"))
            return 0
        },
        .sub("sc-attach-ebusy-domain", .EBUSY, "IOMMU group 26: DMA domain conflict") { sub in
            let ig = try #require(sub.iommu.group(id: 26))
            ig.setDomainConflict(true)
            defer { ig.setDomainConflict(false) }
            try sub.setContainer(try sub.open("/dev/vfio/26"), try sub.open("/dev/vfio/vfio"))
            return 0
        },
        .sub("sc-attach-enomem", .ENOMEM, "fault injected: the DMA ownership claim") { sub in
            let g = try sub.open("/dev/vfio/26"), c = try sub.open("/dev/vfio/vfio")
            sub.faults.arm(.ownershipClaim, errno: .ENOMEM)
            try sub.setContainer(g, c)
            return 0
        },
        .sub("sc-ifd-einval-noiommu", .EINVAL, "iommufd already has a compat IOAS: cannot switch to no-IOMMU",
             config: noIOMMUConfig) { sub in
            let ictx = try sub.open("/dev/iommu")
            try sub.setContainer(try sub.open("/dev/vfio/26"), ictx)   // makes the compat IOAS
            let (_, g) = try sub.noIOMMUGroup()
            try sub.setContainer(g, ictx)
            return 0
        },
        .sub("sc-ifd-enomem", .ENOMEM, "fault injected: the compat IOAS allocation") { sub in
            let g = try sub.open("/dev/vfio/26"), ictx = try sub.open("/dev/iommu")
            sub.faults.arm(.compatIOASAlloc, errno: .ENOMEM)
            try sub.setContainer(g, ictx)
            return 0
        },
        .sub("sc-ifd-einval-mix", .EINVAL, "iommufd is in no-IOMMU mode: cannot create a compat IOAS", config: noIOMMUConfig) { sub in
            let ictx = try sub.open("/dev/iommu")
            let (_, g) = try sub.noIOMMUGroup()
            try sub.setContainer(g, ictx)
            try sub.setContainer(try sub.open("/dev/vfio/26"), ictx)
            return 0
        },
        .sub("uc-einval", .EINVAL, "group 26 has no container or iommufd set") { sub in
            try sub.unsetContainer(try sub.open("/dev/vfio/26"))
            return 0
        },
        .sub("uc-ebusy", .EBUSY, "group 26: 1 device file(s) still open (container_users 2)") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            _ = try sub.deviceFD(g, "0000:06:0d.0")
            try sub.unsetContainer(g)
            return 0
        },
        // MARK: GET_DEVICE_FD
        .sub("gdf-enomem-name", .ENOMEM, "fault injected: strndup_user of the device name") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            sub.faults.arm(.nameCopy, errno: .ENOMEM)
            return Int(try sub.deviceFD(g, "0000:06:0d.0"))
        },
        .sub("gdf-efault", .EFAULT, "string at 0x0 not readable") { sub in
            try sub.ioctl(try sub.open("/dev/vfio/26"), UInt(VFIOIoctl.groupGetDeviceFD), 0)
        },
        .sub("gdf-einval-nul", .EINVAL, "no NUL within 4096 bytes") { sub in
            let g = try sub.open("/dev/vfio/26")
            let name = [UInt8](repeating: UInt8(ascii: "a"), count: 4096)
            return try name.withUnsafeBytes { (b) throws(Errno) -> Int in
                try sub.ioctl(g, UInt(VFIOIoctl.groupGetDeviceFD), UInt(bitPattern: b.baseAddress))
            }
        },
        .sub("gdf-enodev", .ENODEV, "no device of that name in group 26") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            return Int(try sub.deviceFD(g, "0000:07:00.0"))   // another group's device
        },
        .sub("gdf-emfile", .EMFILE, "fault injected: get_unused_fd_flags") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            sub.faults.arm(.fdReserve, errno: .EMFILE)
            return Int(try sub.deviceFD(g, "0000:06:0d.0"))
        },
        .sub("gdf-enfile", .ENFILE, "fault injected: anon_inode_getfile") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            sub.faults.arm(.anonInodeFile, errno: .ENFILE)
            return Int(try sub.deviceFD(g, "0000:06:0d.0"))
        },
        // MARK: device open
        .sub("dopen-einval", .EINVAL, "group 26 has no container or iommufd set") { sub in
            Int(try sub.deviceFD(try sub.open("/dev/vfio/26"), "0000:06:0d.0"))
        },
        .sub("dopen-enodev-module", .ENODEV, "try_module_get() failed (fault injected)") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            sub.faults.arm(.driverModuleGet, errno: .ENODEV)
            return Int(try sub.deviceFD(g, "0000:06:0d.0"))
        },
        .sub("dopen-einval-no-setiommu", .EINVAL, "container has no IOMMU backend (VFIO_SET_IOMMU not done)") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.setContainer(g, try sub.open("/dev/vfio/vfio"))
            return Int(try sub.deviceFD(g, "0000:06:0d.0"))
        },
        .sub("dopen-eperm-rawio", .EPERM, "needs CAP_SYS_RAWIO", config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            try sub.containerWith(g, type: VFIOExtension.noIOMMU)
            sub.rawIOPolicy = .denied
            return Int(try sub.deviceFD(g, "0000:09:00.0"))
        },
        .sub("dopen-ifd-eperm-rawio", .EPERM, "no-IOMMU device needs CAP_SYS_RAWIO", config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            try sub.setContainer(g, try sub.open("/dev/iommu"))
            sub.rawIOPolicy = .denied
            return Int(try sub.deviceFD(g, "0000:09:00.0"))
        },
        .sub("dopen-ifd-eperm-compat", .EPERM, "no-IOMMU device on an iommufd with a compat IOAS",
             config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            let ictx = try sub.open("/dev/iommu")
            try sub.setContainer(g, ictx)
            var alloc: (UInt32, UInt32, UInt32) = (12, 0, 0)   // IOMMU_IOAS_ALLOC, then make it the compat IOAS
            _ = try withUnsafeMutablePointer(to: &alloc) { (p) throws(Errno) -> Int in
                try sub.ioctl(ictx, UInt(VFIOIoctl.iommuIOASAlloc), UInt(bitPattern: p))
            }
            _ = try sub.ioctl(ictx, VFIOIoctl.iommuVFIOIOAS, with: VFIOIOASArg(id: alloc.2, op: 1))
            return Int(try sub.deviceFD(g, "0000:09:00.0"))
        },
        .sub("dopen-ifd-einval-coherency", .EINVAL, "device is not cache coherent", populated: false) { sub in
            // Registration refuses a non-coherent physical device; an emulated registration with
            // the physical bind (a driver's choice) reaches the bind's own check.
            let bus = try sub.iommu.addDevice(name: "nc", cacheCoherency: false)
            var ops = VFIODeviceOps(name: "physical-bind")
            VFIOIOMMUFDOps.physical(&ops)
            let d = try sub.allocDevice(bus, ops: ops)   // teardown's removeVFIODevice puts it
            try sub.registerEmulatedIOMMUDevice(d)
            let g = try sub.open(d.vfioGroup!.path)
            try sub.setContainer(g, try sub.open("/dev/iommu"))
            defer { try? sub.iommu.removeDevice(bus) }
            return Int(try sub.deviceFD(g, "nc"))
        },
        .sub("dopen-ifd-enodev-group", .ENODEV, "device has no IOMMU group") { sub in
            // The bus device leaves its IOMMU group behind VFIO's back (hot removal racing the open).
            let dev = try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:07:00.1" })
            let g = try sub.open("/dev/vfio/28")
            try sub.setContainer(g, try sub.open("/dev/iommu"))
            let ig = try #require(sub.iommu.group(id: 28))
            sub.iommu.removeDevice(dev.busDevice, from: ig)
            defer { try? sub.iommu.addDevice(dev.busDevice, to: ig) }
            return Int(try sub.deviceFD(g, "0000:07:00.1"))
        },
        .sub("dopen-ifd-eperm-owner", .EPERM, "IOMMU group 28: DMA owned by another owner") { sub in
            let g = try sub.open("/dev/vfio/28")
            let ctx1 = try sub.open("/dev/iommu"), ctx2 = try sub.open("/dev/iommu")
            try sub.setContainer(g, ctx1)
            _ = try sub.deviceFD(g, "0000:07:00.0")
            try sub.unsetContainer(g)
            try sub.setContainer(g, ctx2)
            return Int(try sub.deviceFD(g, "0000:07:00.1"))
        },
        .sub("dopen-ifd-ebusy-domain", .EBUSY, "IOMMU group 26: DMA domain conflict") { sub in
            let g = try sub.open("/dev/vfio/26")
            try sub.setContainer(g, try sub.open("/dev/iommu"))
            let ig = try #require(sub.iommu.group(id: 26))
            ig.setDomainConflict(true)
            defer { ig.setDomainConflict(false) }
            return Int(try sub.deviceFD(g, "0000:06:0d.0"))
        },
        .sub("dopen-ifd-enodev-ioas", .ENODEV, "iommufd has no compat IOAS") { sub in
            let g = try sub.open("/dev/vfio/26"), ictx = try sub.open("/dev/iommu")
            try sub.setContainer(g, ictx)
            try sub.iommufdContext(ictx).clearCompatIOAS()
            return Int(try sub.deviceFD(g, "0000:06:0d.0"))
        },
        .sub("dopen-ifd-enoent-ioas", .ENOENT, "no IOAS with id 9999", populated: false) { sub in
            // A driver whose own attach_ioas names an IOAS that does not exist.
            let ig = try sub.iommu.addGroup(id: 90)
            let bus = try sub.iommu.addDevice(name: "own-attach")
            try sub.iommu.addDevice(bus, to: ig)
            var ops = VFIODeviceOps(name: "own-attach")
            VFIOIOMMUFDOps.physical(&ops)
            ops.attachIOAS = { device, _ throws(Errno) in try VFIOIOMMUFDOps.physicalAttachIOAS(device, 9999) }
            let d = try sub.allocDevice(bus, ops: ops)   // teardown's removeVFIODevice puts it
            try sub.registerGroupDevice(d)
            let g = try sub.open("/dev/vfio/90")
            try sub.setContainer(g, try sub.open("/dev/iommu"))
            return Int(try sub.deviceFD(g, "own-attach"))
        },
        .sub("dopen-open-device", .EIO, "the driver's open_device failed", populated: false) { sub in
            let ig = try sub.iommu.addGroup(id: 91)
            let bus = try sub.iommu.addDevice(name: "open-fails")
            try sub.iommu.addDevice(bus, to: ig)
            var ops = VFIODeviceOps(name: "open-fails")
            ops.openDevice = { _ throws(Errno) in throw .EIO }
            let d = try sub.allocDevice(bus, ops: ops)   // teardown's removeVFIODevice puts it
            try sub.registerGroupDevice(d)
            let g = try sub.open("/dev/vfio/91")
            try sub.containerWith(g)
            return Int(try sub.deviceFD(g, "open-fails"))
        },
        .succeeds("dopen-kvm", value: 1) { sub in
            // The group's KVM pointer, set before the first open, is what open_device sees.
            sub.setKVMSymbolLookup { FakeVM.ops }
            let g = try sub.open("/dev/vfio/26")
            try sub.containerWith(g)
            let f = try sub.fget(g)
            defer { f.setKVM(nil); sub.fput(f) }
            let vm = FakeVM()
            f.setKVM(vm.pointer)
            let d = try sub.deviceFD(g, "0000:06:0d.0")
            let dev = try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" })
            let seen = ModelPCIDriver.state(of: dev)?.kvmSeenAtOpen == vm.pointer
            try sub.close(d)
            return seen && vm.gets.load(ordering: .relaxed) == 1 && vm.puts.load(ordering: .relaxed) == 1 ? 1 : 0
        },
        // MARK: close
        .sub("close-ebadf", .EBADF, "not a model fd") { sub in
            try sub.close(12345)
            return 0
        },
    ]
}
