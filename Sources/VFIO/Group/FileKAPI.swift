// SPDX-License-Identifier: Apache-2.0
/// The group side of the file kAPI: what a group answers for its file.
extension VFIOGroup {
    /// Kernel: vfio_group_enforced_coherent(): false if any registered device lacks
    /// IOMMU_CAP_ENFORCE_CACHE_COHERENCY, or the group is fake (no IOMMU driver enforces
    /// anything) and not empty. The kernel's list walk, answered from counts kept at registration
    /// (a device's capability is fixed, and nothing can tell the difference). Takes no lock.
    public var enforcedCoherent: Bool {
        type == .iommu ? nonCoherentDevices.load(ordering: .acquiring) == 0 : listedDevices.load(ordering: .acquiring) == 0
    }

    /// Kernel: vfio_group_set_kvm(): stores the pointer under the KVM leaf lock only (never the
    /// group mutex: a driver's open_device may take the VM lock while group_lock is held, and KVM
    /// calls this with the VM lock held). No reference is taken.
    func setKVM(_ kvm: UnsafeMutableRawPointer?) {
        kvmRefLock.withLock { self.kvm = kvm }
    }

    /// Kernel: vfio_group_has_dev(): whether `device` belongs to this group.
    func hasDev(_ device: VFIODevice) -> Bool { device.group === self }
}

/// The file kAPI group.c exports to KVM and vfio-pci (docs/ERRORS.md#kapi), on a `VFIOFile`, and the
/// `*_from_file()` lookups: the private data of a file of that kind, nil for any other file.
extension VFIOFile {
    /// Kernel: vfio_group_from_file(): the group behind a group file, or nil.
    public var group: VFIOGroup? { operations as? VFIOGroup }

    /// Kernel: vfio_container_from_file(): the container behind a container file, or nil.
    var container: Container? { operations as? Container }

    /// The iommufd context behind an iommufd file (the lookup `iommufd_ctx_from_file()` makes
    /// before it takes a reference), or nil.
    var iommufdContext: IOMMUFDContext? { operations as? IOMMUFDContext }

    /// The device behind a device file, or nil.
    public var device: VFIODevice? { (operations as? DeviceFile)?.device }

    /// Kernel: vfio_file_is_group(): an identity test on the operations table.
    public var isGroup: Bool { kind == .group }

    /// Kernel: vfio_file_iommu_group(): NULL unless CONFIG_SPAPR_TCE_IOMMU; then the IOMMU group
    /// with a new reference (the caller's to put), or nil once the group was unregistered.
    /// "Deprecated, only SPAPR KVM path."
    public func iommuGroup() -> IOMMUGroup? {
        guard subsystem.config.spaprTCEIOMMU, let group else { return nil }
        return group.groupLock.withLock {
            guard let g = group.iommuGroup else { return nil }
            g.get()
            return g
        }
    }

    /// Kernel: vfio_file_enforced_coherent(): true for a non-group file (docs/DECISIONS.md#q8); for a group, false if
    /// any registered device lacks IOMMU_CAP_ENFORCE_CACHE_COHERENCY. Devices of fake groups have no
    /// IOMMU driver to enforce anything, so a non-empty fake group answers false.
    public var enforcedCoherent: Bool {
        guard let group else { return true }
        return group.enforcedCoherent
    }

    /// Kernel: vfio_file_set_kvm(): `vfio_group_set_kvm()` for a group file; ignored for any
    /// other file.
    public func setKVM(_ kvm: UnsafeMutableRawPointer?) {
        group?.setKVM(kvm)
    }

    /// Kernel: vfio_file_has_dev(): whether `device` belongs to this group file's group (proof of
    /// ownership for a PCI hot reset). False for a non-group file.
    public func hasDevice(_ device: VFIODevice) -> Bool {
        guard let group else { return false }
        return group.hasDev(device)
    }
}
