// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO

/// What one input did.
public struct FuzzOpsResult: Sendable {
    /// Operations decoded and run.
    public var ops = 0
    /// Everything that must not happen: an errno Linux does not have, a broken invariant, a leak
    /// after the input, a WARN. Empty for a clean run.
    public var findings: [String] = []
    /// The decoded operations with their outcomes (when asked for), for reading a crash.
    public var trace: [String] = []
}

/// The operations fuzzer's decoder: bytes into a sequence of model system calls on a small
/// topology, then a full cleanup and the census.
///
/// Layout: byte 0 picks the configuration (bit 0 CONFIG_IOMMUFD, bit 1 CONFIG_VFIO_NOIOMMU, bit 2
/// `enable_unsafe_noiommu_mode`, bit 3 no CAP_SYS_RAWIO, bit 4 CONFIG_SPAPR_TCE_IOMMU, bit 5 no
/// CONFIG_HAVE_KVM); then each operation is an opcode byte and its operands (`Op`). An fd operand is a slot
/// in the fds this input opened, one past the end meaning a descriptor that is not the model's.
/// Pointer arguments are NULL, a small invalid address, or a buffer in this process's own memory
/// holding input bytes (pointer-like words defused, see `harmless`); never a raw pointer from the
/// input.
public enum FuzzOps {
    /// At most this many operations per input, so one input stays fast.
    public static let maxOps = 200

    enum Op: UInt8, CaseIterable {
        case open, close, dup, rawIoctl, setContainer, unsetContainer, setIOMMU, getDeviceFD, setKVM
        case probe, remove, fileKAPI, dma, deviceIO, armFault, knob
    }

    /// Runs one input.
    public static func run(_ data: UnsafeRawBufferPointer, trace: Bool = false) -> FuzzOpsResult {
        let run = FuzzRun(data, trace: trace)
        run.execute()
        return run.result
    }

    /// Runs one input held in an array.
    public static func run(_ bytes: [UInt8], trace: Bool = false) -> FuzzOpsResult {
        bytes.withUnsafeBytes { run($0, trace: trace) }
    }
}

/// One input's world: a fresh subsystem, the fds it opened, the devices it registered.
final class FuzzRun: @unchecked Sendable {
    var reader: FuzzReader
    let sub: VFIOSubsystem
    let mem = FuzzMemory()
    let vms = [FuzzVM(dying: false), FuzzVM(dying: false), FuzzVM(dying: true)]
    var result = FuzzOpsResult()
    let tracing: Bool
    /// Every model fd this input holds.
    var fds: [Int32] = []
    /// Every VFIO device registered (the topology's and the input's).
    var devices: [VFIODevice] = []
    var probes = 0
    /// `request` calls seen by the device being removed: past a bound, something holds it open.
    var requests = 0

    static let groupIDs = [26, 27, 28]
    static let deviceNames = ["0000:06:0d.0", "0000:06:0e.0", "0000:07:00.0", "0000:07:00.1", "0000:09:00.0", "mdev-0",
                              "0000:06:0d.0 vf_token=1b7c4e9a-0000-0000-0000-000000000000", "0000:06:0d", "", "nope"]

    init(_ data: UnsafeRawBufferPointer, trace: Bool) {
        reader = FuzzReader(data)
        tracing = trace
        let c = reader.u8()
        let config = VFIOConfig(vfioNoIOMMU: c & 2 == 0, enableUnsafeNoIOMMUMode: c & 4 != 0, iommufd: c & 1 == 0,
                                spaprTCEIOMMU: c & 16 != 0, haveKVM: c & 32 == 0, unregisterRequestInterval: .milliseconds(1))
        sub = VFIOSubsystem(config: config, rawIO: c & 8 != 0 ? .denied : .granted)
        sub.setKVMSymbolLookup { FuzzVM.ops }
    }

    func finding(_ text: String) {
        if result.findings.count < 20 { result.findings.append(text) }
    }

    func note(_ text: @autoclosure () -> String) {
        if tracing { result.trace.append(text()) }
    }

    // MARK: the topology

    /// Driver ops with a `request` that, unlike a real driver, can tell when an unregister waits
    /// forever: after 500 requests (half a second) every fd goes, after 3000 the run stops.
    func ops(_ base: VFIODeviceOps) -> VFIODeviceOps {
        var ops = base
        let inner = base.request
        ops.request = { [weak self] device, n in
            inner?(device, n)
            guard let self else { return }
            self.requests += 1
            if self.requests == 500 {
                self.finding("unregister of \(device.busDevice.name) still blocked after closing its fds")
                self.closeAll()
            }
            if self.requests >= 3000 {
                fatalError("unregister of \(device.busDevice.name) never completes: a registration reference leaked")
            }
        }
        return ops
    }

    /// A PCI function in IOMMU group `group` (nil: none) bound to vfio-pci with `ops`, or to
    /// kernel driver `driver`.
    @discardableResult
    func pci(_ name: String, group: Int?, driver: String? = nil, coherent: Bool = true) throws(Errno) -> VFIODevice? {
        let bus = try sub.iommu.addDevice(name: name, cacheCoherency: coherent)
        if let group {
            // (Not `??`: its autoclosure rethrows an untyped error.)
            let g: IOMMUGroup
            if let existing = sub.iommu.group(id: group) { g = existing } else { g = try sub.iommu.addGroup(id: group) }
            try sub.iommu.addDevice(bus, to: g)
        }
        if let driver {
            try sub.iommu.bindDriver(driver, to: bus, managesDMA: IOMMUCore.driverManagesDMA(driver))
            return nil
        }
        try sub.iommu.bindDriver("vfio-pci", to: bus, managesDMA: true)
        let d: VFIODevice
        do throws(Errno) {
            d = try sub.allocDevice(bus, ops: ops(sub.pciDriver.ops))
        } catch {
            sub.iommu.unbindDriver(from: bus)
            throw error
        }
        do throws(Errno) {
            try sub.registerGroupDevice(d)
        } catch {
            d.put()
            sub.iommu.unbindDriver(from: bus)
            throw error
        }
        devices.append(d)
        return d
    }

    func emulated(_ name: String) throws(Errno) {
        let bus = try sub.iommu.addDevice(name: name)
        try sub.iommu.bindDriver("mdev-model", to: bus, managesDMA: true)
        let d: VFIODevice
        do throws(Errno) {
            d = try sub.allocDevice(bus, ops: ops(sub.mdevDriver.ops))
            do throws(Errno) { try sub.registerEmulatedIOMMUDevice(d) } catch { d.put(); throw error }
        } catch {
            sub.iommu.unbindDriver(from: bus)
            try? sub.iommu.removeDevice(bus)
            throw error
        }
        devices.append(d)
    }

    /// The vfio.rst layout and neighbours: group 26 {0000:06:0d.0}, group 27 {0000:06:0e.0,
    /// 0000:06:0e.1 e1000e}, group 28 {0000:07:00.0, 0000:07:00.1}, a no-IOMMU function (a node only
    /// with the no-IOMMU mode on), an emulated device.
    func buildTopology() {
        do throws(Errno) {
            try pci("0000:06:0d.0", group: 26)
            try pci("0000:06:0e.0", group: 27)
            try pci("0000:06:0e.1", group: 27, driver: "e1000e")
            try pci("0000:07:00.0", group: 28)
            try pci("0000:07:00.1", group: 28)
            try emulated("mdev-0")
        } catch {
            finding("building the topology failed: \(error)")
        }
        do throws(Errno) { try pci("0000:09:00.0", group: nil) } catch {
            if error != .EINVAL { finding("no-IOMMU device: \(error)") }   // EINVAL: the mode is off
        }
    }

    var paths: [String] {
        ["/dev/vfio/vfio", "/dev/iommu", "/dev/vfio/99", "/dev/vfio/noiommu-0", "/dev/vfio/"] + sub.allGroups.map(\.path)
    }

    // MARK: operands

    /// An fd operand: a slot in `fds`, or (one past the end) a number that is not a model fd.
    func fd() -> Int32 {
        let b = Int(reader.u8())
        if fds.isEmpty || b % (fds.count + 1) == fds.count {
            return [-1, 0, 2, 1 << 20][b % 4]
        }
        return fds[b % (fds.count + 1)]
    }

    func track(_ fd: Int32) {
        if !fds.contains(fd) { fds.append(fd) }
    }

    /// A pointer argument: NULL, a small invalid address, a defused by-value number, or a buffer of
    /// input bytes (at the start of a page, or ending at an inaccessible one).
    func pointerArgument() -> UInt {
        let kind = reader.u8()
        switch kind % 5 {
        case 0: return 0
        case 1: return UInt(0x10 + Int(reader.u16()) % 0xff0)
        case 2: return UInt(harmless(reader.u64()))
        case 3: return mem.buffer(reader.take(Int(reader.u8())))
        default: return mem.bufferAtEdge(reader.take(Int(reader.u8())))
        }
    }

    /// Runs `body` as one operation: its errno must be a Linux errno.
    func call(_ name: String, _ body: () throws(Errno) -> Void) {
        result.ops += 1
        do throws(Errno) {
            try body()
            note("\(name): ok")
        } catch {
            note("\(name): \(error.name)")
            if !knownLinuxErrnos.contains(error.rawValue) { finding("\(name) answered errno \(error.rawValue), not a Linux errno") }
        }
    }

    // MARK: the run

    func execute() {
        buildTopology()
        while !reader.atEnd && result.ops < FuzzOps.maxOps {
            step()
            checkInvariants()
        }
        cleanup()
    }

    func step() {
        let op = FuzzOps.Op(rawValue: reader.u8() % UInt8(FuzzOps.Op.allCases.count))!
        switch op {
        case .open:
            let p = paths
            let path = p[Int(reader.u8()) % p.count]
            let flags: Int32 = reader.u8() & 1 == 0 ? 0o2 : 0o2000002
            // One open file per group (vfio_group_fops_open's EBUSY).
            let node = path.hasPrefix("/dev/vfio/") ? sub.group(named: String(path.dropFirst(10))) : nil
            let wasOpen = node?.isOpen ?? false
            call("open \(path)") { () throws(Errno) in
                track(try sub.open(path, flags: flags))
                if wasOpen { finding("\(path) opened a second time") }
            }
        case .close:
            let f = fd()
            call("close \(f)") { () throws(Errno) in
                try sub.close(f)
                fds.removeAll { $0 == f }
            }
        case .dup:
            let f = fd()
            let b = reader.u8()
            call("dup \(f)") { () throws(Errno) in track(try sub.dup(f, minimum: Int32(b & 0x3f), cloexec: b & 0x40 != 0)) }
        case .rawIoctl:
            rawIoctl()
        case .setContainer:
            let g = fd(), c = fd()
            call("SET_CONTAINER \(g) \(c)") { () throws(Errno) in
                var target = c
                _ = try withUnsafeMutablePointer(to: &target) { (p) throws(Errno) -> Int in
                    try sub.ioctl(g, UInt(VFIOIoctl.groupSetContainer), UInt(bitPattern: p))
                }
            }
        case .unsetContainer:
            let g = fd()
            call("UNSET_CONTAINER \(g)") { () throws(Errno) in _ = try sub.ioctl(g, UInt(VFIOIoctl.groupUnsetContainer)) }
        case .setIOMMU:
            let c = fd()
            let type = UInt(reader.u8() % 12)
            call("SET_IOMMU \(c) \(type)") { () throws(Errno) in _ = try sub.ioctl(c, UInt(VFIOIoctl.setIOMMU), type) }
        case .getDeviceFD:
            let g = fd()
            let name = Self.deviceNames[Int(reader.u8()) % Self.deviceNames.count]
            call("GET_DEVICE_FD \(g) \(name)") { () throws(Errno) in
                let r: Result<Int, Errno> = name.withCString { p in
                    Result { () throws(Errno) -> Int in try sub.ioctl(g, UInt(VFIOIoctl.groupGetDeviceFD), UInt(bitPattern: p)) }
                }
                let fd = Int32(try r.get())
                track(fd)
                // A device fd exists only for an open device of a group with a container or an iommufd.
                if let file = try? sub.fget(fd) {
                    if let d = file.device {
                        if d.openCount < 1 { finding("GET_DEVICE_FD gave \(d) with open count \(d.openCount)") }
                        if let g = d.vfioGroup, !g.hasContainer && !g.hasIOMMUFD, !g.isRemoved {
                            finding("GET_DEVICE_FD on \(g.name) with neither a container nor an iommufd")
                        }
                    } else {
                        finding("GET_DEVICE_FD gave fd \(fd), which is not a device file")
                    }
                    sub.fput(file)
                }
            }
        case .setKVM:
            let f = fd()
            let b = reader.u8()
            let vm = b % 4 == 3 ? nil : vms[Int(b % 4)].pointer
            call("set_kvm \(f)") { () throws(Errno) in
                let file = try sub.fget(f)
                file.setKVM(vm)
                sub.fput(file)
            }
        case .probe:
            probe()
        case .remove:
            remove()
        case .fileKAPI:
            let f = fd()
            let b = reader.u8()
            call("file kAPI \(f)") { () throws(Errno) in
                let file = try sub.fget(f)
                defer { sub.fput(file) }
                _ = file.isGroup
                _ = file.enforcedCoherent
                _ = file.device
                if !devices.isEmpty { _ = file.hasDevice(devices[Int(b) % devices.count]) }
                if let g = file.iommuGroup() { _ = g.id; g.put() }
                if b & 0x80 != 0 { sub.fput(try sub.reopen(file)) }
            }
        case .dma:
            dma()
        case .deviceIO:
            let f = fd()
            let b = reader.u8()
            let count = Int(reader.u8())
            var offset = Int64(reader.u32())
            let buf = mem.buffer(UnsafeRawBufferPointer(start: nil, count: 0))
            call("device io \(f) \(b % 3)") { () throws(Errno) in
                switch b % 3 {
                case 0: _ = try sub.read(f, buffer: buf, count: count, offset: &offset)
                case 1: _ = try sub.write(f, buffer: buf, count: count, offset: &offset)
                default: _ = try sub.mmap(f, offset: offset, length: count * 4096, prot: 3)
                }
            }
        case .armFault:
            let points = FaultPoint.allCases
            let point = points[Int(reader.u8()) % points.count]
            let b = reader.u8()
            let errnos: [Errno] = [.ENOMEM, .ENOSPC, .EIO, .EBUSY, .EMFILE, .ENFILE, .EPERM, .EINVAL]
            note("arm \(point.rawValue)")
            sub.faults.arm(point, nth: 1 + Int(b % 3), errno: errnos[Int(b >> 2) % errnos.count])
        case .knob:
            knob()
        }
    }

    func rawIoctl() {
        let f = fd()
        let sel = reader.u8()
        let cmd: UInt
        if sel < 0xC0 {
            cmd = UInt(0x3B64 + Int(sel) % 0x28)                 // the VFIO and iommufd numbers
        } else {
            cmd = UInt(reader.u32()) | (sel & 1 == 0 ? 0 : 0xffff_ffff_0000_0000)   // anything at all
        }
        let arg = pointerArgument()
        call("ioctl \(f) 0x\(String(cmd, radix: 16))") { () throws(Errno) in
            let r = try sub.ioctl(f, cmd, arg)
            // GET_DEVICE_FD through the raw path makes an fd too (the command is truncated to 32 bits).
            if UInt32(truncatingIfNeeded: cmd) == VFIOIoctl.groupGetDeviceFD, r >= 0, sub.isModelFD(Int32(r)) {
                track(Int32(r))
            }
        }
    }

    func dma() {
        let c = fd()
        let kind = reader.u8()
        let iova = UInt64(reader.u16()) << 12 | UInt64(reader.u8() & 0x7)
        let size = UInt64(reader.u8() % 20) << 12 | (kind & 0x80 != 0 ? 1 : 0)
        let page = UInt64(reader.u8() % 16) << 12
        let flags = UInt32(reader.u8())
        let argsz = kind & 0x40 != 0 ? UInt32(reader.u8()) : 0
        let vaddr = UInt64(UInt(bitPattern: mem.dma)) + page
        call("dma \(c) \(kind % 4)") { () throws(Errno) in
            switch kind % 4 {
            case 0:
                var m = Type1DMAMapArg(argsz: argsz == 0 ? 32 : argsz, flags: flags & 7, vaddr: vaddr, iova: iova, size: size)
                _ = try withUnsafeMutablePointer(to: &m) { (p) throws(Errno) -> Int in try sub.ioctl(c, UInt(Type1UAPI.mapDMA), UInt(bitPattern: p)) }
            case 1:
                var u = Type1DMAUnmapArg(argsz: argsz == 0 ? 24 : argsz, flags: flags & 6, iova: iova, size: size)
                _ = try withUnsafeMutablePointer(to: &u) { (p) throws(Errno) -> Int in try sub.ioctl(c, UInt(Type1UAPI.unmapDMA), UInt(bitPattern: p)) }
            case 2:
                var d: (UInt32, UInt32) = (argsz == 0 ? 8 : argsz, flags & 3)   // DIRTY_PAGES start/stop
                _ = try withUnsafeMutablePointer(to: &d) { (p) throws(Errno) -> Int in try sub.ioctl(c, UInt(Type1UAPI.dirtyPages), UInt(bitPattern: p)) }
            default:
                let buf = mem.buffer(UnsafeRawBufferPointer(start: nil, count: 0))
                UnsafeMutableRawPointer(bitPattern: buf)!.storeBytes(of: argsz == 0 ? 24 : argsz, as: UInt32.self)
                _ = try sub.ioctl(c, UInt(Type1UAPI.getInfo), buf)
            }
        }
    }

    func probe() {
        let kind = reader.u8()
        let b = reader.u8()
        guard probes < 8 else { return }
        probes += 1
        let name = "fz\(probes)"
        // The core's own probe paths (DriverProbe.swift), with its built-in drivers.
        call("probe \(name) kind \(kind % 6)") { () throws(Errno) in
            var d: VFIODevice?
            switch kind % 6 {
            case 0: d = try sub.probePCIDevice(name: name, iommuGroupID: 40 + Int(b % 4), driver: "vfio-pci")
            case 1: d = try sub.probePCIDevice(name: name, iommuGroupID: Self.groupIDs[Int(b) % 3], driver: "vfio-pci")
            case 2: d = try sub.probePCIDevice(name: name, iommuGroupID: nil, driver: "vfio-pci")
            case 3: d = try sub.probeEmulatedDevice(name: name)
            case 4: d = try sub.probePCIDevice(name: name, iommuGroupID: Self.groupIDs[Int(b) % 3],
                                               driver: ["e1000e", "pci-stub", "pcieport"][Int(b >> 2) % 3])
            default: d = try sub.probePCIDevice(name: name, iommuGroupID: 40 + Int(b % 4), driver: "vfio-pci", cacheCoherency: false)
            }
            if let d { devices.append(d) }
        }
    }

    /// Driver remove of a registered device: its fds are closed first, as a driver's user would on
    /// `request`, then it is unregistered and its hardware unplugged.
    func remove() {
        let b = Int(reader.u8())
        guard !devices.isEmpty else { return }
        let d = devices.remove(at: b % devices.count)
        closeFDs(of: d)
        note("remove \(d.busDevice.name)")
        result.ops += 1
        requests = 0
        sub.removeVFIODevice(d)
    }

    func knob() {
        let b = reader.u8()
        note("knob \(b % 6)")
        switch b % 6 {
        case 0: sub.enableUnsafeNoIOMMUMode.toggle()
        case 1: sub.rawIOPolicy = sub.rawIOPolicy == .denied ? .granted : .denied
        case 2: sub.pciDriver.module.unloading.toggle()
        case 3: sub.iommuDriver(named: "vfio-iommu-type1").map { $0.unloading.toggle() }
        case 4:
            // Unbind or rebind the kernel driver of group 27's second function.
            guard let bus = sub.iommu.device(named: "0000:06:0e.1") else { return }
            if sub.iommu.driver(of: bus) == nil {
                call("bind e1000e") { () throws(Errno) in try sub.iommu.bindDriver("e1000e", to: bus, managesDMA: false) }
            } else {
                sub.iommu.unbindDriver(from: bus)
            }
        default:
            if let g = sub.iommu.group(id: Self.groupIDs[Int(b >> 3) % 3]) { g.setDomainConflict(b & 0x80 != 0) }
        }
    }

    func closeFDs(of device: VFIODevice) {
        for f in fds {
            guard let file = try? sub.fget(f) else { continue }
            let mine = file.device === device
            sub.fput(file)
            if mine {
                try? sub.close(f)
                fds.removeAll { $0 == f }
            }
        }
    }

    func closeAll() {
        for f in fds { try? sub.close(f) }
        fds.removeAll()
    }

    // MARK: checks

    /// What holds after every operation (one thread: the reads are consistent).
    func checkInvariants() {
        for g in sub.allGroups {
            let users = g.containerUserCount
            if g.hasContainer != (users != 0) || users < 0 {
                finding("\(g.name): container \(g.hasContainer) with container_users \(users)")
            }
            if g.hasContainer && g.hasIOMMUFD { finding("\(g.name): a container and an iommufd at once") }
        }
        for d in devices where d.openCount < 0 { finding("\(d): open count \(d.openCount)") }
        if sub.log.warnCount > 0 { finding("WARN: \(sub.log.warnMessages.first ?? "")") }
    }

    /// Every fd closed, every device removed: nothing may be left.
    func cleanup() {
        sub.faults.reset()
        sub.pciDriver.module.unloading = false
        closeAll()
        if sub.openFDCount != 0 { finding("\(sub.openFDCount) model fds the decoder did not know of") }
        for d in devices { requests = 0; sub.removeVFIODevice(d) }
        devices.removeAll()
        sub.shutdown()
        let c = sub.census.counts
        if !c.isEmpty { finding("leaked: \(c.leaks)") }
        if sub.liveGroupCount != 0 { finding("\(sub.liveGroupCount) group minors still held") }
        let groups = sub.iommu.groups
        if sub.census.iommuGroupCount != groups.count {
            finding("\(sub.census.iommuGroupCount) live IOMMU groups, \(groups.count) in the IOMMU core")
        }
        for g in groups {
            let members = g.devices
            if g.isFake { finding("fake IOMMU group \(g.id) outlived its device") }
            if g.refCount != 1 + members.count { finding("iommu_group \(g.id): \(g.refCount) references, \(members.count) members") }
            let kernel = members.filter { sub.iommu.driver(of: $0).map { !IOMMUCore.driverManagesDMA($0) } ?? false }.count
            if g.dmaOwnerCount != kernel { finding("iommu_group \(g.id): DMA owner count \(g.dmaOwnerCount), kernel drivers \(kernel)") }
        }
        // A failed probe leaves its device unbound; only kernel drivers may still be bound.
        for bus in sub.iommu.devices {
            if let driver = sub.iommu.driver(of: bus), driver.hasPrefix("vfio") || driver == "mdev-model" {
                finding("\(bus.name) still bound to \(driver) with no VFIO device")
            }
        }
        if sub.pciDriver.module.refCount != 0 || sub.mdevDriver.module.refCount != 0 { finding("driver module references leaked") }
        for vm in vms where vm.gets != vm.puts { finding("KVM: \(vm.gets) gets, \(vm.puts) puts") }
        if sub.log.warnCount > 0 { finding("WARN: \(sub.log.warnMessages)") }
    }
}
