extension VFIOGroup {
    /// `vfio_file_enforced_coherent()` for a file of this group: false if any registered device
    /// lacks IOMMU_CAP_ENFORCE_CACHE_COHERENCY, or the group is fake (no IOMMU driver enforces
    /// anything) and not empty. The kernel's list walk, answered from counts kept at registration
    /// (a device's capability is fixed, and nothing can tell the difference). Takes no lock.
    public var enforcedCoherent: Bool {
        type == .iommu ? nonCoherentDevices.load(ordering: .acquiring) == 0 : listedDevices.load(ordering: .acquiring) == 0
    }
}

/// The file kAPI group.c exports to KVM and vfio-pci (SPEC §5.27), on a `VFIOFile`.
extension VFIOFile {
    /// The group behind a group file (`vfio_group_from_file`), or nil.
    var groupFromFile: VFIOGroup? {
        kind == .group ? privateData as? VFIOGroup : nil
    }

    /// `body` on the group behind a group file, lent without a retain; nil for a file that is not
    /// an open group file. Only while the caller holds a reference on the file: `privateData` of
    /// a group file is its group from open to release (nothing else is ever stored there), and
    /// the release, which clears it, waits for the last reference.
    @inline(__always)
    func withGroup<R, E: Error>(_ body: (VFIOGroup) throws(E) -> R) throws(E) -> R? {
        guard kind == .group else { return nil }
        assert(privateData == nil || privateData is VFIOGroup)
        let bits = unsafeBitCast(privateData, to: UInt.self)
        guard bits != 0 else { return nil }
        let r = Unmanaged<VFIOGroup>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!)._withUnsafeGuaranteedRef {
            (group) -> Result<R, E> in
            do throws(E) { return .success(try body(group)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    /// Kernel: vfio_file_is_group(): an identity test on the operations table.
    public var isGroup: Bool { kind == .group }

    /// Kernel: vfio_file_iommu_group(): NULL unless CONFIG_SPAPR_TCE_IOMMU; then the IOMMU group
    /// with a new reference (the caller's to put), or nil once the group was unregistered.
    /// "Deprecated, only SPAPR KVM path."
    public func iommuGroup() -> IOMMUGroup? {
        guard subsystem.config.spaprTCEIOMMU, let group = groupFromFile else { return nil }
        return group.groupLock.withLock {
            guard let g = group.iommuGroup else { return nil }
            g.get()
            return g
        }
    }

    /// Kernel: vfio_file_enforced_coherent(): true for a non-group file (Q8); for a group, false if
    /// any registered device lacks IOMMU_CAP_ENFORCE_CACHE_COHERENCY. Devices of fake groups have no
    /// IOMMU driver to enforce anything, so a non-empty fake group answers false.
    public var enforcedCoherent: Bool {
        guard let group = groupFromFile else { return true }
        return group.enforcedCoherent
    }

    /// Kernel: vfio_file_set_kvm(): stores the pointer under the KVM leaf lock only (never the group
    /// mutex: a driver's open_device may take the VM lock while group_lock is held, and KVM calls
    /// this with the VM lock held). No reference is taken. Ignored for a non-group file.
    public func setKVM(_ kvm: UnsafeMutableRawPointer?) {
        guard let group = groupFromFile else { return }
        group.kvmRefLock.withLock { group.kvm = kvm }
    }

    /// Kernel: vfio_file_has_dev(): whether `device` belongs to this group file's group (proof of
    /// ownership for a PCI hot reset). False for a non-group file.
    public func hasDevice(_ device: VFIODevice) -> Bool {
        guard let group = groupFromFile else { return false }
        return device.group === group
    }

    /// The device behind a device file, or nil.
    public var device: VFIODevice? {
        kind == .device ? (privateData as? DeviceFile)?.device : nil
    }

    /// The group behind a group file, or nil.
    public var group: VFIOGroup? { groupFromFile }
}
