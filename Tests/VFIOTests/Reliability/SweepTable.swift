// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// The fault sweep's operations: every public operation of the core, in the states where it does
/// its work, plus illegal calls whose error paths must unwind as well.
///
/// The world every operation starts from (`world`): the vfio.rst layout of `populate` (groups 26,
/// 27 not viable, 28 with two devices), a no-IOMMU device (`noiommu-0`), an emulated device (its
/// fake group `/dev/vfio/1`), KVM's symbols, and a FakeVM. Keys: `g` a group fd, `c` a container,
/// `i` an iommufd, `d` a device fd.
enum SweepTable {
    static let config = VFIOConfig(enableUnsafeNoIOMMUMode: true, unregisterRequestInterval: .milliseconds(20))

    static let d26 = "0000:06:0d.0"
    static let d28a = "0000:07:00.0"
    static let d28b = "0000:07:00.1"

    static func world(_ sub: VFIOSubsystem, _ env: SweepEnv) throws {
        sub.setKVMSymbolLookup { FakeVM.ops }
        for (k, v) in try populate(sub) { env.devices[k] = v }
        let n = try #require(try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci"))
        env.devices["noiommu"] = n
        env.paths["noiommu"] = n.vfioGroup!.path
        let m = try sub.probeEmulatedDevice(name: "mdev-0")
        env.devices["mdev"] = m
        env.paths["mdev"] = m.vfioGroup!.path
        env.vm = FakeVM()
    }

    /// `world`, then group 26 open as `g`.
    static func group(_ sub: VFIOSubsystem, _ env: SweepEnv) throws {
        try world(sub, env)
        try env.open(sub, "g", "/dev/vfio/26")
    }

    /// Group 26 in container `c` with type1v2 set and the VM set on the group.
    static func containerMode(_ sub: VFIOSubsystem, _ env: SweepEnv) throws {
        try group(sub, env)
        env.fds["c"] = try sub.containerWith(env[fd: "g"])
        try setKVM(sub, env, "g")
    }

    /// Group 26 attached to iommufd `i`, the VM set on the group.
    static func iommufdMode(_ sub: VFIOSubsystem, _ env: SweepEnv) throws {
        try group(sub, env)
        try env.open(sub, "i", "/dev/iommu")
        try sub.setContainer(env[fd: "g"], env[fd: "i"])
        try setKVM(sub, env, "g")
    }

    static func setKVM(_ sub: VFIOSubsystem, _ env: SweepEnv, _ key: String) throws {
        let vm = env.vm!
        try sub.withFile(env[fd: key]) { $0.setKVM(vm.pointer) }
    }

    /// A bus device `name` discovered in IOMMU group `id` (nil: none), vfio-pci bound, not probed.
    static func discovered(_ sub: VFIOSubsystem, _ env: SweepEnv, _ name: String, group id: Int?, bind: Bool) throws {
        let bus = try sub.iommu.addDevice(name: name)
        if let id {
            let g = try sub.iommu.group(id: id) ?? sub.iommu.addGroup(id: id)
            try sub.iommu.addDevice(bus, to: g)
        }
        if bind { try sub.iommu.bindDriver("vfio-pci", to: bus, managesDMA: true) }
        env.buses[name] = bus
    }

    /// An allocated (unregistered) vfio-pci device on a discovered, bound bus device.
    static func allocated(_ sub: VFIOSubsystem, _ env: SweepEnv, _ name: String, group id: Int?,
                          ops: VFIODeviceOps? = nil) throws {
        try discovered(sub, env, name, group: id, bind: true)
        let d = try sub.allocDevice(env.buses[name]!, ops: ops ?? sub.pciDriver.ops)
        env.devices[name] = d
        env.extraDevices.append(d)
    }

    static func op(_ name: String, outcome: SweepOutcome = .success, config: VFIOConfig = config,
                   prepare: @escaping @Sendable (VFIOSubsystem, SweepEnv) throws -> Void,
                   finish: (@Sendable (VFIOSubsystem, SweepEnv) -> Void)? = nil,
                   call: @escaping @Sendable (VFIOSubsystem, SweepEnv) throws(Errno) -> Void) -> SweepOp {
        SweepOp(name: name, config: config, outcome: outcome, prepare: prepare, call: call, finish: finish)
    }

    static func load(_ name: String, _ make: @escaping @Sendable (SweepEnv) throws(TopologyError) -> TopologySpec) -> SweepOp {
        SweepOp(name: name, isLoad: true, prepare: { _, _ in }, call: { _, env throws(Errno) in
            do throws(TopologyError) {
                let spec = try make(env)
                env.loaded = try VFIOSubsystem.load(spec, source: name, base: config, rawIO: .granted,
                                                    willApply: env.willApply ?? { _ in })
            } catch {
                // The failure names a JSON path and carries the model's errno.
                guard error.path.hasPrefix("$."), let e = errnoOfTopologyError(error) else { throw .sweepMismatch }
                throw e
            }
        })
    }

    static let mixedJSON = """
        { "config": { "noiommu": true, "iommufd": true },
          "iommu_groups": [
            { "id": 3, "devices": [ { "name": "0000:01:00.0", "driver": "vfio-pci" },
                                     { "name": "0000:01:00.1", "driver": "vfio-pci" },
                                     { "name": "0000:01:00.2", "driver": "e1000e" } ] },
            { "id": 4, "devices": [ { "name": "0000:02:00.0", "driver": "vfio-pci", "cache_coherency": false },
                                     { "name": "0000:02:00.1", "driver": "pci-stub" } ] } ],
          "noiommu_devices": [ { "name": "0000:09:00.0", "driver": "vfio-pci" } ],
          "emulated_devices": [ { "name": "mdev-0" }, { "name": "mdev-1" } ] }
        """

    static let kBogus: UInt = 0x10

    static let operations: [SweepOp] = [
        // MARK: open of each node kind
        op("open /dev/vfio/vfio", prepare: world) { sub, env throws(Errno) in env.fds["new"] = try sub.open("/dev/vfio/vfio") },
        op("open /dev/iommu", prepare: world) { sub, env throws(Errno) in env.fds["new"] = try sub.open("/dev/iommu") },
        op("open /dev/vfio/26", prepare: world) { sub, env throws(Errno) in env.fds["new"] = try sub.open("/dev/vfio/26") },
        op("open /dev/vfio/27 (not viable)", prepare: world) { sub, env throws(Errno) in env.fds["new"] = try sub.open("/dev/vfio/27") },
        op("open a no-IOMMU group node", prepare: world) { sub, env throws(Errno) in env.fds["new"] = try sub.open(env.paths["noiommu"]!) },
        op("open an emulated group node", prepare: world) { sub, env throws(Errno) in env.fds["new"] = try sub.open(env.paths["mdev"]!) },
        op("open a group that is open (EBUSY)", outcome: .failure(.EBUSY), prepare: group) { sub, env throws(Errno) in
            env.fds["new"] = try sub.open("/dev/vfio/26")
        },
        op("open a path the model lacks (ENOENT)", outcome: .failure(.ENOENT), prepare: world) { sub, env throws(Errno) in
            env.fds["new"] = try sub.open("/dev/vfio/99")
        },
        op("open a no-IOMMU group without CAP_SYS_RAWIO (EPERM)", outcome: .failure(.EPERM),
           prepare: { sub, env in try world(sub, env); sub.rawIOPolicy = .denied }) { sub, env throws(Errno) in
            env.fds["new"] = try sub.open(env.paths["noiommu"]!)
        },
        op("openFile /dev/vfio/vfio (no fd)", prepare: world) { sub, env throws(Errno) in env.heldFiles.append(try sub.openFile("/dev/vfio/vfio")) },
        op("openFile /dev/iommu (no fd)", prepare: world) { sub, env throws(Errno) in env.heldFiles.append(try sub.openFile("/dev/iommu")) },
        op("open a group by minor", prepare: world) { sub, env throws(Errno) in
            env.heldFiles.append(try sub.openGroupFile(minor: sub.group(named: "28")!.minor))
        },
        op("reopen an open group file (EBUSY)", outcome: .failure(.EBUSY), prepare: group) { sub, env throws(Errno) in
            let f = try sub.fget(env[fd: "g"])
            defer { sub.fput(f) }
            env.heldFiles.append(try sub.reopen(f))
        },

        // MARK: group ioctls
        op("GET_STATUS", prepare: group) { sub, env throws(Errno) in _ = try sub.status(env[fd: "g"]) },
        op("GET_STATUS with a container", prepare: containerMode) { sub, env throws(Errno) in _ = try sub.status(env[fd: "g"]) },
        op("GET_STATUS with a NULL pointer (EFAULT)", outcome: .failure(.EFAULT), prepare: group) { sub, env throws(Errno) in
            _ = try sub.ioctl(env[fd: "g"], UInt(VFIOIoctl.groupGetStatus), 0)
        },
        op("SET_CONTAINER(container)", prepare: { sub, env in try group(sub, env); try env.open(sub, "c", "/dev/vfio/vfio") }) { sub, env throws(Errno) in
            try sub.setContainer(env[fd: "g"], env[fd: "c"])
        },
        op("SET_CONTAINER(container with an IOMMU set)", prepare: { sub, env in
            try containerMode(sub, env); try env.open(sub, "g28", "/dev/vfio/28")
        }) { sub, env throws(Errno) in try sub.setContainer(env[fd: "g28"], env[fd: "c"]) },
        op("SET_CONTAINER(container) of a non-viable group (EPERM)", outcome: .failure(.EPERM), prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", "/dev/vfio/27"); try env.open(sub, "c", "/dev/vfio/vfio")
        }) { sub, env throws(Errno) in try sub.setContainer(env[fd: "g"], env[fd: "c"]) },
        op("SET_CONTAINER(container) of a no-IOMMU group", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["noiommu"]!); try env.open(sub, "c", "/dev/vfio/vfio")
        }) { sub, env throws(Errno) in try sub.setContainer(env[fd: "g"], env[fd: "c"]) },
        op("SET_CONTAINER(container) of an emulated group", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["mdev"]!); try env.open(sub, "c", "/dev/vfio/vfio")
        }) { sub, env throws(Errno) in try sub.setContainer(env[fd: "g"], env[fd: "c"]) },
        op("SET_CONTAINER(iommufd)", prepare: { sub, env in try group(sub, env); try env.open(sub, "i", "/dev/iommu") }) { sub, env throws(Errno) in
            try sub.setContainer(env[fd: "g"], env[fd: "i"])
        },
        op("SET_CONTAINER(iommufd) of a second group", prepare: { sub, env in
            try iommufdMode(sub, env); try env.open(sub, "g28", "/dev/vfio/28")
        }) { sub, env throws(Errno) in try sub.setContainer(env[fd: "g28"], env[fd: "i"]) },
        op("SET_CONTAINER(iommufd) of a no-IOMMU group", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["noiommu"]!); try env.open(sub, "i", "/dev/iommu")
        }) { sub, env throws(Errno) in try sub.setContainer(env[fd: "g"], env[fd: "i"]) },
        op("SET_CONTAINER twice (EINVAL)", outcome: .failure(.EINVAL), prepare: { sub, env in
            try containerMode(sub, env); try env.open(sub, "c2", "/dev/vfio/vfio")
        }) { sub, env throws(Errno) in try sub.setContainer(env[fd: "g"], env[fd: "c2"]) },
        op("SET_CONTAINER with a closed fd (EBADF)", outcome: .failure(.EBADF), prepare: group) { sub, env throws(Errno) in
            try sub.setContainer(env[fd: "g"], -1)
        },
        op("UNSET_CONTAINER (the last group: backend released)", prepare: containerMode) { sub, env throws(Errno) in
            try sub.unsetContainer(env[fd: "g"])
        },
        op("UNSET_CONTAINER (one of two groups)", prepare: { sub, env in
            try containerMode(sub, env); try env.open(sub, "g28", "/dev/vfio/28"); try sub.setContainer(env[fd: "g28"], env[fd: "c"])
        }) { sub, env throws(Errno) in try sub.unsetContainer(env[fd: "g"]) },
        op("UNSET_CONTAINER (iommufd)", prepare: iommufdMode) { sub, env throws(Errno) in try sub.unsetContainer(env[fd: "g"]) },
        op("UNSET_CONTAINER with an open device (EBUSY)", outcome: .failure(.EBUSY), prepare: { sub, env in
            try containerMode(sub, env); env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
        }) { sub, env throws(Errno) in try sub.unsetContainer(env[fd: "g"]) },
        op("GET_DEVICE_FD (container, KVM set)", prepare: containerMode) { sub, env throws(Errno) in
            env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
        },
        op("GET_DEVICE_FD (a second fd of an open device)", prepare: { sub, env in
            try containerMode(sub, env); env.fds["d1"] = try sub.deviceFD(env[fd: "g"], d26)
        }) { sub, env throws(Errno) in env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26) },
        op("GET_DEVICE_FD (iommufd, KVM set)", prepare: iommufdMode) { sub, env throws(Errno) in
            env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
        },
        op("GET_DEVICE_FD (group 28, its second device)", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", "/dev/vfio/28"); env.fds["c"] = try sub.containerWith(env[fd: "g"])
            env.fds["d1"] = try sub.deviceFD(env[fd: "g"], d28a)
        }) { sub, env throws(Errno) in env.fds["d"] = try sub.deviceFD(env[fd: "g"], d28b) },
        op("GET_DEVICE_FD (emulated, iommufd)", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["mdev"]!); try env.open(sub, "i", "/dev/iommu")
            try sub.setContainer(env[fd: "g"], env[fd: "i"]); try setKVM(sub, env, "g")
        }) { sub, env throws(Errno) in env.fds["d"] = try sub.deviceFD(env[fd: "g"], "mdev-0") },
        op("GET_DEVICE_FD (emulated, container)", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["mdev"]!); env.fds["c"] = try sub.containerWith(env[fd: "g"])
        }) { sub, env throws(Errno) in env.fds["d"] = try sub.deviceFD(env[fd: "g"], "mdev-0") },
        op("GET_DEVICE_FD (no-IOMMU, container)", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["noiommu"]!)
            env.fds["c"] = try sub.containerWith(env[fd: "g"], type: VFIOExtension.noIOMMU)
        }) { sub, env throws(Errno) in env.fds["d"] = try sub.deviceFD(env[fd: "g"], "0000:09:00.0") },
        op("GET_DEVICE_FD (no-IOMMU, iommufd)", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["noiommu"]!); try env.open(sub, "i", "/dev/iommu")
            try sub.setContainer(env[fd: "g"], env[fd: "i"])
        }) { sub, env throws(Errno) in env.fds["d"] = try sub.deviceFD(env[fd: "g"], "0000:09:00.0") },
        op("GET_DEVICE_FD without a container (EINVAL)", outcome: .failure(.EINVAL), prepare: group) { sub, env throws(Errno) in
            env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
        },
        op("GET_DEVICE_FD of an unknown name (ENODEV)", outcome: .failure(.ENODEV), prepare: containerMode) { sub, env throws(Errno) in
            env.fds["d"] = try sub.deviceFD(env[fd: "g"], "0000:ff:00.0")
        },
        op("GET_DEVICE_FD while the driver unloads (ENODEV)", outcome: .failure(.ENODEV), prepare: { sub, env in
            try containerMode(sub, env); sub.pciDriver.module.unloading = true
        }) { sub, env throws(Errno) in env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26) },
        op("GET_DEVICE_FD with a NULL name (EFAULT)", outcome: .failure(.EFAULT), prepare: containerMode) { sub, env throws(Errno) in
            _ = try sub.ioctl(env[fd: "g"], UInt(VFIOIoctl.groupGetDeviceFD), 0)
        },
        op("an unknown group ioctl (ENOTTY)", outcome: .failure(.ENOTTY), prepare: group) { sub, env throws(Errno) in
            _ = try sub.ioctl(env[fd: "g"], 0x3B7F, 0)
        },

        // MARK: container ioctls
        op("GET_API_VERSION", prepare: { sub, env in try world(sub, env); try env.open(sub, "c", "/dev/vfio/vfio") }) { sub, env throws(Errno) in
            _ = try sub.ioctl(env[fd: "c"], UInt(VFIOIoctl.getAPIVersion))
        },
        op("CHECK_EXTENSION (no backend)", prepare: { sub, env in try world(sub, env); try env.open(sub, "c", "/dev/vfio/vfio") }) { sub, env throws(Errno) in
            guard try sub.checkExtension(env[fd: "c"], VFIOExtension.type1v2IOMMU) == 1 else { throw .sweepMismatch }
        },
        op("CHECK_EXTENSION (type1 set)", prepare: containerMode) { sub, env throws(Errno) in
            guard try sub.checkExtension(env[fd: "c"], VFIOExtension.unmapAll) == 1 else { throw .sweepMismatch }
        },
        op("SET_IOMMU type1v2 (one group)", prepare: { sub, env in
            try group(sub, env); try env.open(sub, "c", "/dev/vfio/vfio"); try sub.setContainer(env[fd: "g"], env[fd: "c"])
        }) { sub, env throws(Errno) in try sub.setIOMMU(env[fd: "c"], VFIOExtension.type1v2IOMMU) },
        op("SET_IOMMU type1 (two groups and an emulated one)", prepare: { sub, env in
            try group(sub, env); try env.open(sub, "c", "/dev/vfio/vfio"); try sub.setContainer(env[fd: "g"], env[fd: "c"])
            try env.open(sub, "g28", "/dev/vfio/28"); try sub.setContainer(env[fd: "g28"], env[fd: "c"])
            try env.open(sub, "gm", env.paths["mdev"]!); try sub.setContainer(env[fd: "gm"], env[fd: "c"])
        }) { sub, env throws(Errno) in try sub.setIOMMU(env[fd: "c"], VFIOExtension.type1IOMMU) },
        op("SET_IOMMU no-IOMMU", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "g", env.paths["noiommu"]!); try env.open(sub, "c", "/dev/vfio/vfio")
            try sub.setContainer(env[fd: "g"], env[fd: "c"])
        }) { sub, env throws(Errno) in try sub.setIOMMU(env[fd: "c"], VFIOExtension.noIOMMU) },
        op("SET_IOMMU with no group (EINVAL)", outcome: .failure(.EINVAL), prepare: { sub, env in
            try world(sub, env); try env.open(sub, "c", "/dev/vfio/vfio")
        }) { sub, env throws(Errno) in try sub.setIOMMU(env[fd: "c"], VFIOExtension.type1v2IOMMU) },
        op("SET_IOMMU of an unsupported type (ENODEV)", outcome: .failure(.ENODEV), prepare: { sub, env in
            try group(sub, env); try env.open(sub, "c", "/dev/vfio/vfio"); try sub.setContainer(env[fd: "g"], env[fd: "c"])
        }) { sub, env throws(Errno) in try sub.setIOMMU(env[fd: "c"], VFIOExtension.spaprTCEIOMMU) },
        op("type1 GET_INFO", prepare: containerMode) { sub, env throws(Errno) in
            var info = Type1InfoArg(argsz: 16)
            try sub.ioctl(env[fd: "c"], Type1UAPI.getInfo, pointerTo: &info)
        },
        op("type1 MAP_DMA", prepare: { sub, env in try containerMode(sub, env); env.mem = Mapping(size: 0x4000) }) { sub, env throws(Errno) in
            var m = Type1DMAMapArg(flags: Type1UAPI.mapFlagRead | Type1UAPI.mapFlagWrite, vaddr: UInt64(env.mem!.address),
                                   iova: 0x10_0000, size: 0x4000)
            try sub.ioctl(env[fd: "c"], Type1UAPI.mapDMA, pointerTo: &m)
        },
        op("type1 UNMAP_DMA", prepare: { sub, env in
            try containerMode(sub, env); env.mem = Mapping(size: 0x4000)
            var m = Type1DMAMapArg(flags: Type1UAPI.mapFlagRead, vaddr: UInt64(env.mem!.address), iova: 0x10_0000, size: 0x4000)
            try sub.ioctl(env[fd: "c"], Type1UAPI.mapDMA, pointerTo: &m)
        }) { sub, env throws(Errno) in
            var u = Type1DMAUnmapArg(iova: 0x10_0000, size: 0x4000)
            try sub.ioctl(env[fd: "c"], Type1UAPI.unmapDMA, pointerTo: &u)
            guard u.size == 0x4000 else { throw .sweepMismatch }
        },
        op("type1 MAP_DMA with a NULL pointer (EFAULT)", outcome: .failure(.EFAULT), prepare: containerMode) { sub, env throws(Errno) in
            _ = try sub.ioctl(env[fd: "c"], UInt(Type1UAPI.mapDMA), 0)
        },
        op("type1 UNMAP_DMA with a small invalid pointer (EFAULT)", outcome: .failure(.EFAULT), prepare: containerMode) { sub, env throws(Errno) in
            _ = try sub.ioctl(env[fd: "c"], UInt(Type1UAPI.unmapDMA), kBogus)
        },
        op("a container ioctl before SET_IOMMU (EINVAL)", outcome: .failure(.EINVAL), prepare: { sub, env in
            try world(sub, env); try env.open(sub, "c", "/dev/vfio/vfio")
        }) { sub, env throws(Errno) in _ = try sub.ioctl(env[fd: "c"], UInt(Type1UAPI.getInfo), 0) },

        // MARK: iommufd ioctls
        op("IOMMU_IOAS_ALLOC", prepare: { sub, env in try world(sub, env); try env.open(sub, "i", "/dev/iommu") }) { sub, env throws(Errno) in
            var a: (UInt32, UInt32, UInt32) = (12, 0, 0)
            try sub.ioctl(env[fd: "i"], 0x3B81, pointerTo: &a)
        },
        op("IOMMU_VFIO_IOAS GET", prepare: iommufdMode) { sub, env throws(Errno) in
            var a: (UInt32, UInt32, UInt16, UInt16) = (12, 0, 0, 0)
            try sub.ioctl(env[fd: "i"], VFIOIoctl.iommuVFIOIOAS, pointerTo: &a)
        },
        op("IOMMU_VFIO_IOAS SET", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "i", "/dev/iommu")
            var a: (UInt32, UInt32, UInt32) = (12, 0, 0)
            try sub.ioctl(env[fd: "i"], 0x3B81, pointerTo: &a)
        }) { sub, env throws(Errno) in
            var a: (UInt32, UInt32, UInt16, UInt16) = (12, 1, 1, 0)
            try sub.ioctl(env[fd: "i"], VFIOIoctl.iommuVFIOIOAS, pointerTo: &a)
        },
        op("IOMMU_DESTROY", prepare: { sub, env in
            try world(sub, env); try env.open(sub, "i", "/dev/iommu")
            var a: (UInt32, UInt32, UInt32) = (12, 0, 0)
            try sub.ioctl(env[fd: "i"], 0x3B81, pointerTo: &a)
        }) { sub, env throws(Errno) in
            var a: (UInt32, UInt32) = (8, 1)
            try sub.ioctl(env[fd: "i"], VFIOIoctl.iommuDestroy, pointerTo: &a)
        },
        op("iommufd CHECK_EXTENSION", prepare: iommufdMode) { sub, env throws(Errno) in
            guard try sub.checkExtension(env[fd: "i"], VFIOExtension.dmaCCIOMMU) == 1 else { throw .sweepMismatch }
        },
        op("iommufd SET_IOMMU", prepare: iommufdMode) { sub, env throws(Errno) in
            try sub.setIOMMU(env[fd: "i"], VFIOExtension.type1v2IOMMU)
        },

        // MARK: close of each fd kind, dup
        op("close a group fd", prepare: group) { sub, env throws(Errno) in try sub.close(env[fd: "g"]) },
        op("close a group fd with a container (detach)", prepare: containerMode) { sub, env throws(Errno) in try sub.close(env[fd: "g"]) },
        op("close a container fd with a group attached", prepare: containerMode) { sub, env throws(Errno) in try sub.close(env[fd: "c"]) },
        op("close an iommufd fd with a group attached", prepare: iommufdMode) { sub, env throws(Errno) in try sub.close(env[fd: "i"]) },
        op("close a device fd (last close)", prepare: { sub, env in
            try containerMode(sub, env); env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
        }) { sub, env throws(Errno) in try sub.close(env[fd: "d"]) },
        op("close a device fd that releases the group", prepare: { sub, env in
            try containerMode(sub, env); env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
            try sub.close(env[fd: "g"]); try sub.close(env[fd: "c"])
        }) { sub, env throws(Errno) in try sub.close(env[fd: "d"]) },
        op("close an iommufd-mode device fd after its group and context", prepare: { sub, env in
            try iommufdMode(sub, env); env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
            try sub.close(env[fd: "g"]); try sub.close(env[fd: "i"])
        }) { sub, env throws(Errno) in try sub.close(env[fd: "d"]) },
        op("close a dup of a group fd", prepare: { sub, env in try group(sub, env); env.fds["g2"] = try sub.dup(env[fd: "g"]) }) { sub, env throws(Errno) in
            try sub.close(env[fd: "g2"])
        },
        op("close a fd that is not the model's (EBADF)", outcome: .failure(.EBADF), prepare: world) { sub, _ throws(Errno) in
            try sub.close(-1)
        },
        op("dup a group fd", prepare: group) { sub, env throws(Errno) in env.fds["g2"] = try sub.dup(env[fd: "g"]) },
        op("dup a device fd (close-on-exec)", prepare: { sub, env in
            try containerMode(sub, env); env.fds["d"] = try sub.deviceFD(env[fd: "g"], d26)
        }) { sub, env throws(Errno) in env.fds["d2"] = try sub.dup(env[fd: "d"], minimum: 100, cloexec: true) },

        // MARK: registration
        op("vfio_alloc_device", prepare: { sub, env in
            try world(sub, env); try discovered(sub, env, "0000:30:00.0", group: 30, bind: true)
        }) { sub, env throws(Errno) in
            env.extraDevices.append(try sub.allocDevice(env.buses["0000:30:00.0"]!, ops: sub.pciDriver.ops))
        },
        op("register a VFIO_IOMMU device (new group)", prepare: { sub, env in
            try world(sub, env); try allocated(sub, env, "0000:30:00.0", group: 30)
        }) { sub, env throws(Errno) in try sub.registerGroupDevice(env.devices["0000:30:00.0"]!) },
        op("register a VFIO_IOMMU device (existing group)", prepare: { sub, env in
            try world(sub, env); try allocated(sub, env, "0000:07:00.2", group: 28)
        }) { sub, env throws(Errno) in try sub.registerGroupDevice(env.devices["0000:07:00.2"]!) },
        op("register an emulated device", prepare: { sub, env in
            try world(sub, env); try allocated(sub, env, "mdev-7", group: nil, ops: sub.mdevDriver.ops)
        }) { sub, env throws(Errno) in try sub.registerEmulatedIOMMUDevice(env.devices["mdev-7"]!) },
        op("register a no-IOMMU device", prepare: { sub, env in
            try world(sub, env); try allocated(sub, env, "0000:09:01.0", group: nil)
        }) { sub, env throws(Errno) in try sub.registerGroupDevice(env.devices["0000:09:01.0"]!) },
        op("register without an IOMMU group, no-IOMMU mode off (EINVAL)", outcome: .failure(.EINVAL), prepare: { sub, env in
            try world(sub, env); sub.enableUnsafeNoIOMMUMode = false; try allocated(sub, env, "0000:09:01.0", group: nil)
        }) { sub, env throws(Errno) in try sub.registerGroupDevice(env.devices["0000:09:01.0"]!) },
        op("register a device into its own device set", prepare: { sub, env in
            try world(sub, env); try allocated(sub, env, "0000:30:00.0", group: 30)
            try sub.assignDeviceSet(env.devices["0000:30:00.0"]!, setID: env)
        }) { sub, env throws(Errno) in try sub.registerGroupDevice(env.devices["0000:30:00.0"]!) },
        op("unregister an idle device", prepare: { sub, env in
            try world(sub, env); try allocated(sub, env, "0000:30:00.0", group: 30)
            try sub.registerGroupDevice(env.devices["0000:30:00.0"]!)
        }) { sub, env throws(Errno) in sub.unregisterGroupDevice(env.devices["0000:30:00.0"]!) },
        op("unregister, request answered by closing the device fd", prepare: { sub, env in
            try world(sub, env)
            var ops = sub.pciDriver.ops
            ops.request = { [weak env] device, _ in
                guard let env, let fd = env.fds.removeValue(forKey: "d") else { return }
                try? device.subsystem.close(fd)
            }
            try allocated(sub, env, "0000:30:00.0", group: 30, ops: ops)
            try sub.registerGroupDevice(env.devices["0000:30:00.0"]!)
            try env.open(sub, "g", "/dev/vfio/30")
            env.fds["c"] = try sub.containerWith(env[fd: "g"])
            env.fds["d"] = try sub.deviceFD(env[fd: "g"], "0000:30:00.0")
        }) { sub, env throws(Errno) in sub.unregisterGroupDevice(env.devices["0000:30:00.0"]!) },

        // MARK: probe / remove
        op("probe vfio-pci on a discovered device", prepare: { sub, env in
            try world(sub, env); try discovered(sub, env, "0000:40:00.0", group: 40, bind: false)
        }) { sub, env throws(Errno) in try sub.bindVFIOPCI(env.buses["0000:40:00.0"]!) },
        op("probe vfio-pci into a shared IOMMU group", prepare: { sub, env in
            try world(sub, env); try discovered(sub, env, "0000:07:00.3", group: 28, bind: false)
        }) { sub, env throws(Errno) in try sub.bindVFIOPCI(env.buses["0000:07:00.3"]!) },
        op("probe vfio-pci on a device without an IOMMU (no-IOMMU mode)", prepare: { sub, env in
            try world(sub, env); try discovered(sub, env, "0000:09:02.0", group: nil, bind: false)
        }) { sub, env throws(Errno) in try sub.bindVFIOPCI(env.buses["0000:09:02.0"]!) },
        op("probe an emulated device", prepare: world) { sub, _ throws(Errno) in try sub.probeEmulatedDevice(name: "mdev-9") },
        op("probe a kernel driver into a new group", prepare: world) { sub, _ throws(Errno) in
            try sub.probePCIDevice(name: "0000:50:00.0", iommuGroupID: 50, driver: "e1000e")
        },
        op("remove an idle device (driver remove)", prepare: world) { sub, env throws(Errno) in
            sub.removeVFIODevice(env.devices[d26]!)
        },
        op("remove the last device of an open group with a container", prepare: containerMode) { sub, env throws(Errno) in
            sub.removeVFIODevice(env.devices[d26]!)
        },
        op("remove an emulated device", prepare: world) { sub, env throws(Errno) in sub.removeVFIODevice(env.devices["mdev"]!) },

        // MARK: loads
        load("load the built-in default topology (spec)") { _ throws(TopologyError) in .builtInDefault },
        load("load the built-in default topology (JSON text)") { _ throws(TopologyError) in
            try TopologySpec.parse(json: Array(TopologySpec.builtInDefaultJSON.utf8), source: "default.json")
        },
        load("load a mixed topology (JSON text)") { _ throws(TopologyError) in
            try TopologySpec.parse(json: Array(mixedJSON.utf8), source: "mixed.json")
        },
    ]
}
