// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A legacy VFIO container (`struct vfio_container`, docs/ERRORS.md#state-container, docs/ERRORS.md#container): what `/dev/vfio/vfio` opens.
///
/// Groups attach to it; once one is attached SET_IOMMU picks a backend that all groups share.
/// Lifetime: its file holds one reference and each attached group another; the last one frees it.
public final class Container: @unchecked Sendable {
    unowned let subsystem: VFIOSubsystem
    /// `container->group_lock`: the group list and the backend selection.
    let groupLock = KernelRWSem("container->group_lock")
    // Guarded by groupLock.
    var groups: [VFIOGroup] = []
    var backend: BackendRegistration?
    var backendData: AnyObject?
    /// The noiommu-ness of the attached groups. Sticky after the last group leaves (docs/DECISIONS.md#q5).
    var noiommu = false
    private let kref = Atomic<Int>(1)

    init(subsystem: VFIOSubsystem) {
        self.subsystem = subsystem
        subsystem.census.containerCreated()
    }

    /// The attached groups.
    public var attachedGroups: [VFIOGroup] { groupLock.withShared { groups } }
    /// The selected backend's name, or nil before SET_IOMMU.
    public var backendName: String? { groupLock.withShared { backend?.backend.name } }
    /// The backend's per-container state (for tests of a backend).
    public var backendState: AnyObject? { groupLock.withShared { backendData } }

    func get() { kref.add(1, ordering: .relaxed) }

    /// Kernel: vfio_container_put() → vfio_container_release() on the last reference.
    func put() {
        let old = kref.subtract(1, ordering: .acquiringAndReleasing).oldValue
        if old == 1 {
            subsystem.log.warnOn(groupLock.withShared { !groups.isEmpty || backend != nil },
                                 "container freed with groups or a backend")
            subsystem.census.containerFreed()
        }
    }

    private var context: BackendContext { subsystem.backendContext }

    /// Whether `driver` may serve this container: a no-IOMMU container only the no-IOMMU backend,
    /// and vice versa (only with CONFIG_VFIO_NOIOMMU).
    private func allowed(_ driver: BackendRegistration) -> Bool {
        guard subsystem.config.vfioNoIOMMU else { return true }
        return noiommu == driver.backend.isNoIOMMU
    }

    /// Kernel: vfio_fops_unl_ioctl().
    func ioctl(cmd: UInt32, arg: UInt) throws(Errno) -> Int {
        switch cmd {
        case VFIOIoctl.getAPIVersion: return vfioAPIVersion
        case VFIOIoctl.checkExtension: return try checkExtension(arg)
        case VFIOIoctl.setIOMMU: try setIOMMU(arg); return 0
        default:
            // Passthrough: the kernel reads the driver without a lock; the model holds the read
            // side so a concurrent detach cannot release the state under a running ioctl.
            return try groupLock.withShared { () throws(Errno) -> Int in
                guard let backend else { throw .EINVAL.because("container has no IOMMU backend (VFIO_SET_IOMMU not done)") }
                return try backend.backend.ioctl(backendData, cmd: cmd, arg: arg, context: context)
            }
        }
    }

    /// Kernel: vfio_container_ioctl_check_extension().
    func checkExtension(_ arg: UInt) throws(Errno) -> Int {
        try groupLock.withShared { () throws(Errno) -> Int in
            if let backend {
                return try backend.backend.ioctl(backendData, cmd: VFIOIoctl.checkExtension, arg: arg, context: context)
            }
            // No IOMMU driver selected: is any registered driver willing to support the extension?
            var ret = 0
            for driver in subsystem.iommuDriversSnapshot() {
                if !groups.isEmpty && !allowed(driver) { continue }
                guard driver.tryModuleGet() else { continue }
                ret = (try? driver.backend.ioctl(nil, cmd: VFIOIoctl.checkExtension, arg: arg, context: context)) ?? 0
                driver.modulePut()
                if ret > 0 { break }
            }
            return ret
        }
    }

    /// Kernel: vfio_ioctl_set_iommu(): the first allowed backend that claims `arg`, opens and
    /// attaches every group wins; otherwise the last error (initially ENODEV).
    func setIOMMU(_ arg: UInt) throws(Errno) {
        groupLock.lockExclusive()
        defer { groupLock.unlock() }
        // The container is designed to be an unprivileged interface: an IOMMU driver is set only
        // once a group is attached, so it always has a group to provide privilege.
        guard !groups.isEmpty else { throw .EINVAL.because("container has no group attached") }
        guard backend == nil else { throw .EINVAL.because("container already has an IOMMU backend") }
        try subsystem.iommuDriversLock.withLock { () throws(Errno) in
            var lastError = Errno.ENODEV.because("no IOMMU backend accepts type {}", arg)
            for driver in subsystem.iommuDriversLocked() {
                if !allowed(driver) { continue }
                guard driver.tryModuleGet() else { continue }
                // Skip drivers that do not positively answer CHECK_EXTENSION(arg).
                let answer = (try? driver.backend.ioctl(nil, cmd: VFIOIoctl.checkExtension, arg: arg, context: context)) ?? 0
                if answer <= 0 { driver.modulePut(); continue }
                let data: AnyObject?
                do throws(Errno) {
                    try subsystem.faults.check(.backendOpen)
                    data = try driver.backend.open(arg: arg, context: context)
                } catch {
                    lastError = error
                    driver.modulePut()
                    continue
                }
                do throws(Errno) {
                    try attachGroups(driver, data)
                } catch {
                    driver.backend.release(data)
                    driver.modulePut()
                    lastError = error
                    continue
                }
                backend = driver   // the module reference is kept until deprivileged
                backendData = data
                return
            }
            throw lastError
        }
    }

    /// Kernel: __vfio_container_attach_groups(): the first failure unwinds earlier attaches.
    private func attachGroups(_ driver: BackendRegistration, _ data: AnyObject?) throws(Errno) {
        for (i, group) in groups.enumerated() {
            do throws(Errno) {
                try subsystem.faults.check(.backendAttach)
                try driver.backend.attachGroup(data, group: group, type: group.type)
            } catch {
                for earlier in groups[..<i].reversed() { driver.backend.detachGroup(data, group: earlier) }
                throw error
            }
        }
    }

    /// Kernel: vfio_container_attach_group(). The group's group_lock is held.
    func attachGroup(_ group: VFIOGroup) throws(Errno) {
        group.groupLock.assertHeld()
        if group.type == .noIOMMU && !subsystem.capableSysRawIO() {
            throw .EPERM.because("no-IOMMU group {} needs CAP_SYS_RAWIO", group.iommuGroupID)
        }
        groupLock.lockExclusive()
        defer { groupLock.unlock() }
        // Real groups and fake groups cannot mix.
        if !groups.isEmpty && noiommu != (group.type == .noIOMMU) {
            throw noiommu ? .EPERM.because("container holds no-IOMMU groups; group {} has an IOMMU", group.iommuGroupID)
                          : .EPERM.because("container holds IOMMU groups; group {} is no-IOMMU", group.iommuGroupID)
        }
        if group.type == .iommu {
            try group.iommuGroup!.claimDMAOwner(group)
        }
        if let backend {
            do throws(Errno) {
                try subsystem.faults.check(.backendAttach)
                try backend.backend.attachGroup(backendData, group: group, type: group.type)
            } catch {
                if group.type == .iommu { group.iommuGroup!.releaseDMAOwner() }
                throw error
            }
        }
        group.container = self
        group.containerUsers = 1
        noiommu = group.type == .noIOMMU
        groups.append(group)
        get()
    }

    /// Kernel: vfio_device_container_register().
    func registerDevice(_ device: VFIODevice) {
        groupLock.withShared {
            if let backend, backend.backend.hasDeviceRegistration {
                backend.backend.registerDevice(backendData, device: device)
            }
        }
    }

    /// Kernel: vfio_device_container_unregister().
    func unregisterDevice(_ device: VFIODevice) {
        groupLock.withShared {
            if let backend, backend.backend.hasDeviceRegistration {
                backend.backend.unregisterDevice(backendData, device: device)
            }
        }
    }
}

extension VFIOGroup {
    /// Kernel: vfio_group_detach_container(). group_lock held.
    func detachContainer() {
        groupLock.assertHeld()
        guard let container else { return }
        subsystem.log.warnOn(containerUsers != 1, "\(self): detach with container_users \(containerUsers)")
        container.groupLock.lockExclusive()
        if let backend = container.backend {
            backend.backend.detachGroup(container.backendData, group: self)
        }
        if type == .iommu { iommuGroup?.releaseDMAOwner() }
        container.groups.removeAll { $0 === self }
        self.container = nil
        containerUsers = 0
        // Detaching the last group deprivileges a container: remove the backend.
        if let backend = container.backend, container.groups.isEmpty {
            backend.backend.release(container.backendData)
            backend.modulePut()
            container.backend = nil
            container.backendData = nil
        }
        container.groupLock.unlock()
        container.put()
    }

    /// Kernel: vfio_group_use_container(). group_lock held. Pins the group file.
    func useContainer() throws(Errno) {
        groupLock.assertHeld()
        guard let container else { throw .EINVAL.because("group {} has no container", iommuGroupID) }
        // The container fd has been assigned with VFIO_GROUP_SET_CONTAINER but VFIO_SET_IOMMU
        // hasn't been called yet.
        guard container.groupLock.withShared({ container.backend != nil }) else {
            throw .EINVAL.because("group {}: container has no IOMMU backend (VFIO_SET_IOMMU not done)", iommuGroupID)
        }
        if type == .noIOMMU && !subsystem.capableSysRawIO() {
            throw .EPERM.because("no-IOMMU group {} needs CAP_SYS_RAWIO", iommuGroupID)
        }
        guard let file = openedFile, file.get() else {
            subsystem.log.warnOn(true, "\(self): use_container with no open group file")
            throw .EINVAL.because("group {} has no open file", iommuGroupID)
        }
        containerUsers += 1
    }

    /// Kernel: vfio_group_unuse_container(). group_lock held. The fput is deferred (task work).
    func unuseContainer() {
        groupLock.assertHeld()
        subsystem.log.warnOn(containerUsers <= 1, "\(self): unuse with container_users \(containerUsers)")
        containerUsers -= 1
        openedFile?.put()
    }
}

/// The container char device's file operations (`vfio_fops`): the container is the file's private
/// data.
extension Container: FileOperations {
    /// Kernel: vfio_fops_unl_ioctl().
    func ioctl(_ file: VFIOFile, cmd: UInt32, arg: UInt) throws(Errno) -> Int {
        try ioctl(cmd: cmd, arg: arg)
    }

    /// Kernel: vfio_fops_release(): the file's reference on the container goes.
    func release(_ file: VFIOFile) { put() }
}

extension VFIOSubsystem {
    /// Kernel: vfio_fops_open(): `/dev/vfio/vfio` opens a new, empty container.
    func containerFileOpen(_ path: String, flags: Int32) throws(Errno) -> VFIOFile {
        try faults.check(.fileAlloc)
        try faults.check(.containerAlloc)
        return VFIOFile(subsystem: self, kind: .container, flags: flags, name: path,
                        operations: Container(subsystem: self))
    }
}
