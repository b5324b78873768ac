// SPDX-License-Identifier: Apache-2.0
extension VFIOSubsystem {
    /// Loads the type1 module: registered after the no-IOMMU backend, so it is polled first
    /// (the backend list is newest first; vfio's soft dependency loads vfio_iommu_type1).
    func registerType1Backend() {
        _ = try? registerIOMMUDriver(Type1Backend())
    }
}
