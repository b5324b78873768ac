// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A VFIO group (`struct vfio_group`, docs/ERRORS.md#state-group): the user-visible face of one IOMMU group.
///
/// Created by the first VFIO registration of a device of an IOMMU group, it owns the node
/// `/dev/vfio/<name>`, allows one open file at a time, and is attached to at most one container or
/// iommufd context. Its state is guarded by its own locks, so unrelated groups never contend:
/// `groupLock` (the group's main mutex), `deviceLock` (the device list), and `kvmRefLock`, a leaf
/// lock that `vfio_file_set_kvm` takes alone (the v6.3 deadlock fix, commit 2b48f52f2bff).
public final class VFIOGroup: @unchecked Sendable, CustomStringConvertible {
    unowned let subsystem: VFIOSubsystem
    /// The group type, fixed at creation.
    public let type: VFIOGroupType
    /// The char-dev minor, from the group IDA (2^20 minors).
    public let minor: Int
    /// The node name under /dev/vfio: "<id>" or "noiommu-<id>".
    public let name: String
    /// The IOMMU group id at creation (kept for messages after removal clears `iommuGroup`).
    public let iommuGroupID: Int

    /// `group->group_lock`: the container/iommufd attachment, `opened_file`, `iommu_group`.
    let groupLock = KernelMutex("group->group_lock")
    /// `group->device_lock`: the device list.
    let deviceLock = KernelMutex("group->device_lock")
    /// `group->kvm_ref_lock`: the raw KVM pointer. A leaf: nothing is taken inside it but the
    /// KVM get-safe call, and `vfio_file_set_kvm` takes nothing else.
    let kvmRefLock = KernelMutex("group->kvm_ref_lock")

    /// `group->drivers`: registered VFIO devices using this group; 0 means it is being removed.
    /// Transitions to 0 under the registry lock; once 0 it stays 0.
    let drivers = Atomic<Int>(1)
    /// The embedded `struct device`'s references: one for the registration, one per open file.
    /// The last put frees the minor (`vfio_group_release`).
    let deviceRefs = Atomic<Int>(1)

    // Every member below is guarded by one of the group's locks, which is what keeps accesses
    // apart; `@exclusivity(unchecked)` drops the dynamic exclusivity check that would otherwise
    // run on each access (several per GROUP_GET_STATUS).

    /// The IOMMU group the group was made for. Fixed for the object's life: removal revokes it
    /// (`iommuGroupRevoked`) instead of dropping the object, so a reader under group_lock uses it
    /// as a `let` (no reference-count traffic on GET_STATUS).
    let boundIOMMUGroup: IOMMUGroup

    // Guarded by groupLock.
    /// Set by removal: the kernel's `group->iommu_group = NULL` ("blocks all new users").
    @exclusivity(unchecked) var iommuGroupRevoked = false
    /// `group->iommu_group`: nil once the group was removed.
    var iommuGroup: IOMMUGroup? { iommuGroupRevoked ? nil : boundIOMMUGroup }
    /// The attached legacy container.
    @exclusivity(unchecked) var container: Container?
    /// 0 iff `container == nil`; else 1 + devices of this group open through the container.
    @exclusivity(unchecked) var containerUsers = 0
    /// The attached iommufd context; the group holds a reference on its file.
    @exclusivity(unchecked) var iommufd: IOMMUFDContext?
    /// The single open group file.
    @exclusivity(unchecked) var openedFile: VFIOFile?

    // Guarded by deviceLock.
    /// Registered devices, oldest first (the kernel's head insertion, read backwards).
    @exclusivity(unchecked) var deviceList: [VFIODevice] = []
    /// Name index for O(1) lookup when no device has a `match` op, kept once the group has held
    /// more than `nameIndexThreshold` devices (`nameIndexed`); below that a walk of the list is as
    /// fast, and most groups (one device) then carry no dictionary storage at all.
    @exclusivity(unchecked) var devicesByName: [String: VFIODevice] = [:]
    @exclusivity(unchecked) var nameIndexed = false
    static let nameIndexThreshold = 8
    /// How many registered devices have a `match` op, and how many of those are not vfio-pci's
    /// (`matchIsPCICoreMatch`): with any of the latter, lookup must walk, newest first.
    @exclusivity(unchecked) var matchOpDevices = 0
    @exclusivity(unchecked) var customMatchOpDevices = 0
    /// How many devices are listed, and how many of them lack IOMMU_CAP_ENFORCE_CACHE_COHERENCY:
    /// written under deviceLock with the list, read without it, so `vfio_file_enforced_coherent`
    /// answers without walking the list or taking the lock (a snapshot either sees a concurrent
    /// registration or not, as the kernel's walk under the lock would).
    let listedDevices = Atomic<Int>(0)
    let nonCoherentDevices = Atomic<Int>(0)

    // Guarded by kvmRefLock.
    /// The raw KVM pointer set by the KVM side; no reference held (docs/DECISIONS.md#q7: only the KVM side clears it).
    @exclusivity(unchecked) var kvm: UnsafeMutableRawPointer?

    init(subsystem: VFIOSubsystem, iommuGroup: IOMMUGroup, type: VFIOGroupType, minor: Int) {
        self.subsystem = subsystem
        self.type = type
        self.minor = minor
        self.boundIOMMUGroup = iommuGroup
        self.iommuGroupID = iommuGroup.id
        self.name = type == .noIOMMU ? "noiommu-\(iommuGroup.id)" : "\(iommuGroup.id)"
        subsystem.census.groupCreated()
    }

    public var description: String { "vfio group \(name)" }

    /// The device path, `/dev/vfio/<name>`.
    public var path: String { "/dev/vfio/\(name)" }

    // MARK: observation (tests, C ABI, census)

    /// `group->container_users`.
    public var containerUserCount: Int { groupLock.withLock { containerUsers } }
    /// Whether a container is attached.
    public var hasContainer: Bool { groupLock.withLock { container != nil } }
    /// Whether an iommufd context is attached.
    public var hasIOMMUFD: Bool { groupLock.withLock { iommufd != nil } }
    /// Whether the group file is open.
    public var isOpen: Bool { groupLock.withLock { openedFile != nil } }
    /// Whether the group was removed (its last device unregistered).
    public var isRemoved: Bool { groupLock.withLock { iommuGroup == nil } }
    /// The `drivers` count.
    public var driverCount: Int { drivers.load(ordering: .relaxed) }
    /// The registered devices, newest first (lookup order).
    public var devices: [VFIODevice] { deviceLock.withLock { deviceList.reversed() } }
    /// The KVM pointer last set by `vfio_file_set_kvm`.
    public var kvmPointer: UnsafeMutableRawPointer? { kvmRefLock.withLock { kvm } }

    // MARK: group.c helpers

    /// Kernel: vfio_group_has_iommu(). Caller holds groupLock.
    @inline(__always)
    func hasIOMMU() -> Bool {
        groupLock.assertHeld()
        // `subsystem` (unowned: a reference-count update on the shared subsystem object) only
        // when there is something to say.
        if (container == nil) != (containerUsers == 0) {
            subsystem.log.warnOn(true, "\(self): container \(container == nil ? "unset" : "set") with container_users \(containerUsers)")
        }
        return container != nil || iommufd != nil
    }

    /// `get_device(&group->dev)`: an open file pins the struct.
    func deviceGet() { deviceRefs.add(1, ordering: .relaxed) }

    /// `put_device(&group->dev)`: the last put runs `vfio_group_release`.
    func devicePut() {
        let old = deviceRefs.subtract(1, ordering: .acquiringAndReleasing).oldValue
        if old == 1 { subsystem.groups.release(self) }
        else { subsystem.log.warnOn(old <= 0, "put_device on a freed \(self)") }
    }

    /// Kernel: vfio_group_has_device(). Takes deviceLock. (Bus device names are unique, so the
    /// name index answers for a big group without the kernel's walk.)
    func hasDevice(_ bus: BusDevice) -> Bool {
        deviceLock.withLock {
            if nameIndexed { return devicesByName[bus.name]?.busDevice === bus }
            return deviceList.contains { $0.busDevice === bus }
        }
    }

    /// The newest listed device called `name`, without a reference; deviceLock held.
    private func listedDevice(named name: String) -> VFIODevice? {
        if nameIndexed { return devicesByName[name] }
        return deviceList.last { $0.busDevice.name == name }
    }

    /// Kernel: vfio_device_group_register(): visible to GET_DEVICE_FD from now on.
    func registerDevice(_ device: VFIODevice) {
        deviceLock.withLock {
            deviceList.append(device)
            if nameIndexed {
                devicesByName[device.busDevice.name] = device
            } else if deviceList.count > Self.nameIndexThreshold {
                for d in deviceList { devicesByName[d.busDevice.name] = d }   // oldest first: newest wins
                nameIndexed = true
            }
            if device.ops.match != nil { matchOpDevices += 1 }
            if device.ops.match != nil && !device.ops.matchIsPCICoreMatch { customMatchOpDevices += 1 }
            listedDevices.add(1, ordering: .releasing)
            if !device.busDevice.enforceCacheCoherency { nonCoherentDevices.add(1, ordering: .releasing) }
        }
    }

    /// Kernel: vfio_device_group_unregister().
    func unregisterDevice(_ device: VFIODevice) {
        deviceLock.withLock {
            if let i = deviceList.lastIndex(where: { $0 === device }) {
                deviceList.remove(at: i)
                listedDevices.subtract(1, ordering: .releasing)
                if !device.busDevice.enforceCacheCoherency { nonCoherentDevices.subtract(1, ordering: .releasing) }
            }
            if nameIndexed, devicesByName[device.busDevice.name] === device { devicesByName[device.busDevice.name] = nil }
            if device.ops.match != nil { matchOpDevices -= 1 }
            if device.ops.match != nil && !device.ops.matchIsPCICoreMatch { customMatchOpDevices -= 1 }
        }
    }

    /// Kernel: vfio_device_get_from_name(): the device answering to `name`, newest registration
    /// first, with a registration reference. A `match` op's negative answer is returned as the error.
    func deviceFromName(_ name: String) throws(Errno) -> VFIODevice {
        try deviceLock.withLock { () throws(Errno) -> VFIODevice in
            if customMatchOpDevices == 0 && (matchOpDevices == 0 || !name.utf8.contains(UInt8(ascii: " "))) {
                // Only the device called `name` can answer (devices without a match op compare
                // names; vfio-pci's match answers 0 to any other name without options), so the
                // order of the walk cannot be told apart: O(1) by name.
                guard let d = listedDevice(named: name) else {
                    throw .ENODEV.because("no device of that name in group {}", iommuGroupID)
                }
                if try !matches(d, name) { throw .ENODEV.because("the driver's match op refused the name (group {})", iommuGroupID) }
                if d.tryGetRegistration() { return d }
                throw .ENODEV.because("the device is being unregistered (group {})", iommuGroupID)
            }
            for d in deviceList.reversed() {
                if try matches(d, name) && d.tryGetRegistration() { return d }
            }
            throw .ENODEV.because("no device in group {} answers to that name", iommuGroupID)
        }
    }

    /// One step of the kernel's walk: the device's `match` op (a negative answer is the error), or
    /// its name when it has none.
    @inline(__always)
    private func matches(_ d: VFIODevice, _ name: String) throws(Errno) -> Bool {
        guard let match = d.ops.match else { return d.busDevice.name == name }
        let r = match(d, name)
        if r < 0 {
            // vfio-pci's own refusal names the option or token check; any other driver's the code.
            if let e = ModelPCIDriver.matchFailure(d, name), e.rawValue == -r { throw e }
            throw Errno(rawValue: -r).because("the driver's match op answered {i}", r)
        }
        return r > 0
    }
}
