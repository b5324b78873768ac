// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VFIO

/// A subsystem for one test: capable of everything unless told otherwise, no real waiting.
func makeSubsystem(_ config: VFIOConfig = VFIOConfig(unregisterRequestInterval: .milliseconds(20)),
                   rawIO: RawIOPolicy = .granted) -> VFIOSubsystem {
    VFIOSubsystem(config: config, rawIO: rawIO)
}

/// The vfio.rst layout plus neighbours: group 26 {0000:06:0d.0 vfio-pci}, group 27
/// {0000:06:0e.0 vfio-pci, 0000:06:0e.1 e1000e} (not viable), group 28 {0000:07:00.0 vfio-pci,
/// 0000:07:00.1 vfio-pci}.
@discardableResult
func populate(_ sub: VFIOSubsystem) throws -> [String: VFIODevice] {
    var out: [String: VFIODevice] = [:]
    out["0000:06:0d.0"] = try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci")
    out["0000:06:0e.0"] = try sub.probePCIDevice(name: "0000:06:0e.0", iommuGroupID: 27, driver: "vfio-pci")
    try sub.probePCIDevice(name: "0000:06:0e.1", iommuGroupID: 27, driver: "e1000e")
    out["0000:07:00.0"] = try sub.probePCIDevice(name: "0000:07:00.0", iommuGroupID: 28, driver: "vfio-pci")
    out["0000:07:00.1"] = try sub.probePCIDevice(name: "0000:07:00.1", iommuGroupID: 28, driver: "vfio-pci")
    return out
}

/// Closes every model fd, removes every VFIO device, and checks nothing is left alive or WARNed.
///
/// A leak is named, not just counted: the non-zero census counts, then what is still around (groups,
/// devices, module references), and any IOMMU group holding more than the topology's own references.
/// IOMMU groups are hardware and stay: each must be a discovered one (fake groups go with their
/// device) holding exactly the discovery reference plus one per member, with DMA owner counts only
/// from kernel drivers that do not manage DMA.
func teardown(_ sub: VFIOSubsystem, expectWarnings: Int = 0, sourceLocation: SourceLocation = #_sourceLocation) {
    for fd in sub.fdTable.fds { try? sub.close(fd) }
    for d in sub.registeredDevices { sub.removeVFIODevice(d) }
    let c = sub.census.counts
    #expect(c == Census.Counts(), "leaked: \(c.leaks); \(leftovers(sub))", sourceLocation: sourceLocation)
    #expect(sub.liveGroupCount == 0, "\(sub.liveGroupCount) group minors still held", sourceLocation: sourceLocation)
    let owned = sub.iommu.groups
    #expect(sub.census.iommuGroupCount == owned.count,
            "\(sub.census.iommuGroupCount) live IOMMU groups, the topology owns \(owned.count)", sourceLocation: sourceLocation)
    for g in owned {
        #expect(!g.isFake, "fake IOMMU group \(g.id) outlived its device", sourceLocation: sourceLocation)
        let members = g.devices
        #expect(g.refCount == 1 + members.count,
                "iommu_group \(g.id): \(g.refCount) references, expected 1 + \(members.count) members (a leaked iommu_group_get)",
                sourceLocation: sourceLocation)
        let kernelOwners = members.filter { $0.driverStorage != nil && !$0.driverManagesDMA }.count
        #expect(g.dmaOwnerCount == kernelOwners,
                "iommu_group \(g.id): DMA owner count \(g.dmaOwnerCount), kernel drivers hold \(kernelOwners)",
                sourceLocation: sourceLocation)
    }
    #expect(sub.log.warnCount == expectWarnings, "WARNs: \(sub.log.warnMessages)", sourceLocation: sourceLocation)
}

/// What is still alive in `sub` beyond the census counts, for leak messages.
func leftovers(_ sub: VFIOSubsystem) -> String {
    var parts: [String] = []
    let fds = sub.fdTable.fds
    if !fds.isEmpty { parts.append("fds \(fds.sorted())") }
    let groups = sub.allGroups
    if !groups.isEmpty {
        parts.append("groups " + groups.map { "\($0.name)(open \($0.isOpen), container users \($0.containerUserCount))" }
            .joined(separator: " "))
    }
    let devs = sub.registeredDevices
    if !devs.isEmpty {
        parts.append("devices " + devs.map { "\($0.busDevice.name)(open \($0.openCount), registration \($0.registrationCount), refs \($0.refCount))" }
            .joined(separator: " "))
    }
    let moduleRefs = sub.pciDriver.module.refCount + sub.mdevDriver.module.refCount
    if moduleRefs != 0 { parts.append("driver module references \(moduleRefs)") }
    return parts.isEmpty ? "no fd, group or device left (a reference held outside the fd table)" : parts.joined(separator: "; ")
}

extension VFIOSubsystem {
    /// VFIO_GROUP_GET_STATUS: the flags.
    func status(_ fd: Int32) throws(Errno) -> UInt32 {
        var s = VFIOGroupStatus()
        _ = try withUnsafeMutablePointer(to: &s) { (p) throws(Errno) -> Int in
            try ioctl(fd, UInt(VFIOIoctl.groupGetStatus), UInt(bitPattern: p))
        }
        return s.flags
    }

    /// VFIO_GROUP_SET_CONTAINER.
    func setContainer(_ group: Int32, _ container: Int32) throws(Errno) {
        var c = container
        _ = try withUnsafeMutablePointer(to: &c) { (p) throws(Errno) -> Int in
            try ioctl(group, UInt(VFIOIoctl.groupSetContainer), UInt(bitPattern: p))
        }
    }

    /// VFIO_GROUP_UNSET_CONTAINER.
    func unsetContainer(_ group: Int32) throws(Errno) {
        _ = try ioctl(group, UInt(VFIOIoctl.groupUnsetContainer))
    }

    /// VFIO_GROUP_GET_DEVICE_FD.
    func deviceFD(_ group: Int32, _ name: String) throws(Errno) -> Int32 {
        let r: Result<Int32, Errno> = name.withCString { p in
            Result { () throws(Errno) -> Int32 in
                Int32(try ioctl(group, UInt(VFIOIoctl.groupGetDeviceFD), UInt(bitPattern: p)))
            }
        }
        return try r.get()
    }

    /// The file behind a model fd, borrowed for `body` (fget + fput).
    func withFile<R>(_ fd: Int32, _ body: (VFIOFile) throws -> R) throws -> R {
        let f = try fget(fd)
        defer { fput(f) }
        return try body(f)
    }

    /// VFIO_SET_IOMMU.
    func setIOMMU(_ container: Int32, _ type: UInt) throws(Errno) {
        _ = try ioctl(container, UInt(VFIOIoctl.setIOMMU), type)
    }

    /// VFIO_CHECK_EXTENSION.
    func checkExtension(_ container: Int32, _ ext: UInt) throws(Errno) -> Int {
        try ioctl(container, UInt(VFIOIoctl.checkExtension), ext)
    }

    /// Opens a container, attaches `groupFD`, selects `type`.
    @discardableResult
    func containerWith(_ groupFD: Int32, type: UInt = VFIOExtension.type1v2IOMMU) throws(Errno) -> Int32 {
        let c = try open("/dev/vfio/vfio")
        try setContainer(groupFD, c)
        try setIOMMU(c, type)
        return c
    }
}

/// A refcounted fake VM for KVM tests: `users` is the VM's user count.
final class FakeVM: @unchecked Sendable {
    let users = Atomic<Int>(1)
    let gets = Atomic<Int>(0)
    let puts = Atomic<Int>(0)
    var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ p: UnsafeMutableRawPointer) -> FakeVM { Unmanaged<FakeVM>.fromOpaque(p).takeUnretainedValue() }

    /// kvm_get_kvm_safe: fails once the user count hit zero (a dying VM).
    func getSafe() -> Bool {
        var old = users.load(ordering: .relaxed)
        while old > 0 {
            let (ok, cur) = users.weakCompareExchange(expected: old, desired: old + 1, ordering: .relaxed)
            if ok { gets.add(1, ordering: .relaxed); return true }
            old = cur
        }
        return false
    }

    func put() {
        users.subtract(1, ordering: .relaxed)
        puts.add(1, ordering: .relaxed)
    }

    static let ops = KVMOps(getSafe: { FakeVM.from($0).getSafe() }, put: { FakeVM.from($0).put() })
}

/// An anonymous mapping with the given protection, unmapped at deinit.
final class Mapping {
    let base: UnsafeMutableRawPointer
    let size: Int
    init(size: Int, prot: Int32 = PROT_READ | PROT_WRITE) {
        self.size = size
        base = mmap(nil, size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
    }
    var address: UInt { UInt(bitPattern: base) }
    deinit { munmap(base, size) }

    /// `usablePages` read/write pages followed by one PROT_NONE guard page, all reserved by one
    /// mmap and unmapped only at deinit. Tests that need an address which faults use the guard
    /// page, never a page they munmap: tests run in parallel, and another thread's mmap (the
    /// model's own memfd mappings, ASan's shadow bookkeeping) can land in a freshly unmapped hole,
    /// turning the expected EFAULT into a successful read of someone else's memory.
    static func withGuardPage(usablePages: Int = 1) -> Mapping {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let m = Mapping(size: (usablePages + 1) * page)
        precondition(mprotect(m.base + usablePages * page, page, PROT_NONE) == 0)
        return m
    }

    /// The first byte of the guard page of a mapping made by `withGuardPage`.
    var guardAddress: UInt { address + UInt(size) - UInt(sysconf(Int32(_SC_PAGESIZE))) }
}
