// SPDX-License-Identifier: Apache-2.0
// Nothing silent (issue 18 item 4): the model says why when an empty result would otherwise leave
// the user guessing.

extension VFIOSubsystem {
    /// Why the model has no VFIO group, or nil when it has one: no IOMMU group at all (on a real
    /// machine's /sys: the IOMMU is off, e.g. no intel_iommu=on / amd_iommu, and no-IOMMU mode is
    /// off), or IOMMU groups whose devices are none of them bound to vfio-pci.
    public var whyNoVFIOGroups: String? {
        guard allGroups.isEmpty else { return nil }
        let iommuGroups = iommu.groups
        let devices = iommu.devices
        if iommuGroups.isEmpty {
            return "no IOMMU groups (\(devices.count) device(s), none in an IOMMU group: the IOMMU is off "
                + "on the machine the topology describes, and no-IOMMU mode is off)"
        }
        let drivers = Set(devices.compactMap { iommu.driver(of: $0) }).sorted()
        let bound = drivers.isEmpty ? "no driver bound" : "drivers bound: " + drivers.joined(separator: ", ")
        return "\(iommuGroups.count) IOMMU group(s) but no device bound to vfio-pci (\(bound))"
    }
}
