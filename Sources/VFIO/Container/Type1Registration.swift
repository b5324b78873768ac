extension VFIOSubsystem {
    /// Loads the type1 module (registered after the no-IOMMU backend, so polled first).
    func registerType1Backend() {
        // TYPE1-PENDING
    }
}
