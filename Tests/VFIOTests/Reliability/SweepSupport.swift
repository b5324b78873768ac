// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// Everything an operation that failed must leave exactly as it found it, read from one quiescent
/// subsystem (no other thread running).
///
/// Two layers: the VFIO layer (census, minors, fds with their file refcounts, the group registry
/// and every group's locks-guarded state, devices with their open/registration/object refcounts and
/// device sets, containers, iommufd contexts, module references, KVM references, WARNs) and the
/// hardware under it (IOMMU groups with references and DMA owners, bus devices and their drivers).
/// A failed topology load discards its subsystem, so only the VFIO layer is compared there: the
/// hardware it had discovered goes with it.
struct SweepSnapshot: Equatable, CustomStringConvertible {
    struct Group: Equatable {
        var type: Int, minor: Int, open: Bool, container: Bool, iommufd: Bool
        var containerUsers: Int, drivers: Int, deviceRefs: Int, removed: Bool, kvm: UInt, devices: [String]
    }
    struct Device: Equatable {
        var registered: Bool, group: String?, open: Int, registration: Int, refs: Int, kvm: UInt
        var setMembers: Int, setOpen: Int, iommufdBound: Bool, ioas: UInt32?
    }
    struct FD: Equatable { var kind: String, refs: Int, detail: String }
    struct HWGroup: Equatable { var fake: Bool, refs: Int, owners: Int, userOwned: Bool, members: [String] }

    // The VFIO layer.
    var census: Census.Counts
    var minors: Int
    var fds: [Int32: FD]
    var groups: [String: Group]
    var devices: [String: Device]
    var modules: [String: Int]
    var kvmUsers: Int
    var warns: Int
    // The hardware.
    var iommuGroupCount: Int
    var iommuGroups: [Int: HWGroup]
    var busDevices: [String: String]

    /// `extra`: devices the test holds that may not be registered (allocated, or unregistered).
    init(_ sub: VFIOSubsystem, extra: [VFIODevice] = [], vm: FakeVM? = nil) {
        census = sub.census.counts
        minors = sub.liveGroupCount
        var fds: [Int32: FD] = [:]
        for fd in sub.fdTable.fds {
            guard let f = sub.fdTable.lookup(fd) else { continue }
            fds[fd] = FD(kind: "\(f.kind)", refs: f.refCount, detail: Self.detail(f))
        }
        self.fds = fds
        var groups: [String: Group] = [:]
        for g in sub.allGroups { groups[g.name] = Self.state(g) }
        self.groups = groups
        var devices: [String: Device] = [:]
        for d in sub.registeredDevices + extra { devices["\(d.busDevice.name)#\(d.index)"] = Self.state(d) }
        self.devices = devices
        var modules = ["vfio_pci": sub.pciDriver.module.refCount, "mdev_model": sub.mdevDriver.module.refCount]
        for d in sub.registeredDevices + extra { if let m = d.ops.module { modules[m.name] = m.refCount } }
        for b in sub.iommuDriversSnapshot() { modules["backend " + b.backend.name] = b.moduleRefCount }
        self.modules = modules
        kvmUsers = vm?.users.load(ordering: .relaxed) ?? 0
        warns = sub.log.warnCount
        iommuGroupCount = sub.census.iommuGroupCount
        var hw: [Int: HWGroup] = [:]
        for g in sub.iommu.groups {
            let (owners, owned) = g.mutex.withLock { (g.ownerCount, g.owner != nil) }
            hw[g.id] = HWGroup(fake: g.isFake, refs: g.refCount, owners: owners, userOwned: owned,
                               members: g.devices.map(\.name))
        }
        iommuGroups = hw
        var bus: [String: String] = [:]
        for d in sub.iommu.devices { bus[d.name] = sub.iommu.driver(of: d) ?? "-" }
        busDevices = bus
    }

    /// The VFIO layer only (a failed load: its hardware is discarded with it).
    var vfioLayer: SweepSnapshot {
        var s = self
        s.iommuGroupCount = 0; s.iommuGroups = [:]; s.busDevices = [:]
        return s
    }

    static func state(_ g: VFIOGroup) -> Group {
        g.groupLock.withLock {
            Group(type: g.type.rawValue, minor: g.minor, open: g.openedFile != nil, container: g.container != nil,
                  iommufd: g.iommufd != nil, containerUsers: g.containerUsers, drivers: g.driverCount,
                  deviceRefs: g.deviceRefs.load(ordering: .relaxed), removed: g.iommuGroup == nil,
                  kvm: UInt(bitPattern: g.kvmPointer), devices: g.devices.map(\.busDevice.name))
        }
    }

    static func state(_ d: VFIODevice) -> Device {
        let set = d.devSet
        let (open, kvm, bound, ioas) = set?.lock.withLock {
            (d.openCountStorage, UInt(bitPattern: d.kvm), d.iommufdBound != nil, d.iommufdAttachedIOAS)
        } ?? (d.openCountStorage, UInt(bitPattern: d.kvm), d.iommufdBound != nil, d.iommufdAttachedIOAS)
        return Device(registered: d.registered, group: d.group?.name, open: open, registration: d.registrationCount,
                      refs: d.refCount, kvm: kvm, setMembers: set?.count ?? 0, setOpen: set?.totalOpenCount ?? 0,
                      iommufdBound: bound, ioas: ioas)
    }

    static func detail(_ f: VFIOFile) -> String {
        if f.isReleased { return "released" }
        switch f.kind {
        case .group:
            guard let g = f.group else { return "released" }
            return "\(g.name) \(state(g))"
        case .container:
            guard let c = f.container else { return "released" }
            return c.groupLock.withShared {
                var s = "groups \(c.groups.map(\.name)) backend \(c.backend?.backend.name ?? "-") noiommu \(c.noiommu)"
                if let t = c.backendData as? Type1IOMMU {
                    s += " maps \(t.mappings.count) avail \(t.availableDMAEntries) groups \(t.iommuGroupCount)+\(t.emulatedGroupCount)"
                }
                return s
            }
        case .iommufd:
            guard let ctx = f.iommufdContext else { return "released" }
            return ctx.lock.withLock {
                let objs = ctx.objects.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.attachedDevices)/\($0.value.accesses)" }
                // Not `nextID`: the model numbers objects monotonically and never reuses a device
                // object's id, where the kernel's xa_alloc reuses the lowest free one, so a bind
                // undone by a later failure moves it (as a successful open and close does).
                return "objects \(objs) compat \(ctx.compatIOAS?.id ?? 0) noiommu \(ctx.noIOMMUMode)"
            }
        case .device:
            guard let df = f.operations as? DeviceFile else { return "released" }
            return "\(df.device.busDevice.name) via \(df.iommufd == nil ? "container" : "iommufd")"
        case .other:
            return "other"
        }
    }

    /// The fields that differ, for a failure message.
    func difference(from other: SweepSnapshot) -> String {
        var out: [String] = []
        func cmp<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { out.append("\(name): \(b) -> \(a)") } }
        cmp("census", census, other.census); cmp("minors", minors, other.minors); cmp("fds", fds, other.fds)
        cmp("groups", groups, other.groups); cmp("devices", devices, other.devices); cmp("modules", modules, other.modules)
        cmp("kvm users", kvmUsers, other.kvmUsers); cmp("warns", warns, other.warns)
        cmp("iommu group count", iommuGroupCount, other.iommuGroupCount); cmp("iommu groups", iommuGroups, other.iommuGroups)
        cmp("bus devices", busDevices, other.busDevices)
        return out.isEmpty ? "no difference" : out.joined(separator: "\n")
    }

    var description: String { "census \(census), minors \(minors), \(fds.count) fds, groups \(groups.keys.sorted())" }
}

extension VFIOSubsystem {
    /// An ioctl whose argument is a pointer to `arg` (copied in and out by the model).
    @discardableResult
    func ioctl<T>(_ fd: Int32, _ cmd: UInt32, pointerTo arg: inout T) throws(Errno) -> Int {
        try withUnsafeMutablePointer(to: &arg) { (p) throws(Errno) -> Int in
            try ioctl(fd, UInt(cmd), UInt(bitPattern: p))
        }
    }
}

/// The errno a topology load failed with, read back from its message ("the model refused it: ENOMEM").
func errnoOfTopologyError(_ e: TopologyError) -> Errno? {
    let known: [Errno] = [.EPERM, .ENOENT, .EINTR, .EIO, .ENXIO, .E2BIG, .EBADF, .EAGAIN, .ENOMEM, .EACCES, .EFAULT,
                          .EBUSY, .EEXIST, .ENODEV, .EINVAL, .ENFILE, .EMFILE, .ENOTTY, .ENOSPC, .EBADFD, .EOPNOTSUPP]
    return known.first { e.message.hasSuffix(": \($0.name)") }
}

extension Errno {
    /// A test's own "the call succeeded but answered wrongly" (EPROTO's number, never a model answer).
    static let sweepMismatch = Errno(rawValue: 71)
}
