// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A registered IOMMU backend with its module state (`struct vfio_iommu_driver`).
///
/// `try_module_get` on the backend's module fails while it unloads; the container keeps a module
/// reference from SET_IOMMU until it is deprivileged (docs/ERRORS.md#container).
public final class BackendRegistration: Sendable {
    /// The backend.
    public let backend: any IOMMUBackend
    private let unloadingFlag = Atomic<Bool>(false)
    private let refs = Atomic<Int>(0)

    init(_ backend: any IOMMUBackend) { self.backend = backend }

    /// Marks the module unloading: it is skipped by CHECK_EXTENSION and SET_IOMMU.
    public var unloading: Bool {
        get { unloadingFlag.load(ordering: .relaxed) }
        set { unloadingFlag.store(newValue, ordering: .relaxed) }
    }

    /// Module references held (by containers using it, and transiently by polls).
    public var moduleRefCount: Int { refs.load(ordering: .relaxed) }

    func tryModuleGet() -> Bool {
        if unloading { return false }
        refs.add(1, ordering: .relaxed)
        return true
    }

    func modulePut() { refs.subtract(1, ordering: .relaxed) }
}

extension VFIOSubsystem {
    /// Kernel: vfio_register_iommu_driver(): newest first. EINVAL (with a WARN) when exactly one
    /// of register/unregister_device is provided, EINVAL for a duplicate.
    @discardableResult
    public func registerIOMMUDriver(_ backend: any IOMMUBackend) throws(Errno) -> BackendRegistration {
        // hasDeviceRegistration models "both or neither"; nothing to check for a Swift backend
        // beyond identity. Duplicate ops: EINVAL.
        try iommuDriversLock.withLock { () throws(Errno) -> BackendRegistration in
            if iommuDrivers.contains(where: { $0.backend === backend }) { throw .EINVAL.because("backend already registered") }
            let reg = BackendRegistration(backend)
            iommuDrivers.insert(reg, at: 0)
            return reg
        }
    }

    /// Kernel: vfio_unregister_iommu_driver(): removes by identity.
    public func unregisterIOMMUDriver(_ backend: any IOMMUBackend) {
        iommuDriversLock.withLock { iommuDrivers.removeAll { $0.backend === backend } }
    }

    /// The backend list, newest first, taking `vfio.iommu_drivers_lock`.
    func iommuDriversSnapshot() -> [BackendRegistration] { iommuDriversLock.withLock { iommuDrivers } }

    /// The backend list; the caller holds `vfio.iommu_drivers_lock`.
    func iommuDriversLocked() -> [BackendRegistration] {
        iommuDriversLock.assertHeld()
        return iommuDrivers
    }

    /// The registration of a backend called `name`.
    public func iommuDriver(named name: String) -> BackendRegistration? {
        iommuDriversLock.withLock { iommuDrivers.first { $0.backend.name == name } }
    }
}
