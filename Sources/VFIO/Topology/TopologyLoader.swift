// SPDX-License-Identifier: Apache-2.0
// The topology readers are their own module (VFIOTopology: JSON, schema, sysfs, built-in default);
// re-exported so `import VFIO` keeps giving `TopologySpec` and `PCIDeviceIdentity` to the C ABI,
// the fuzzers and embedders.
@_exported import VFIOTopology

/// Builds a subsystem from a topology: plays hardware discovery and driver probing.
///
/// Listed IOMMU groups and their devices come first, so the fake IOMMU groups of no-IOMMU and
/// emulated devices get the smallest ids no listed group holds (the IOMMU core's IDA). A VFIO
/// device whose registration fails as the kernel's would (no cache coherency; no IOMMU group with
/// no-IOMMU mode off) is left unbound with no node, as a failed probe leaves it; any other failure
/// is an error naming the topology path, and nothing is half-loaded: the caller gets no subsystem.
extension VFIOSubsystem {
    /// A new subsystem holding `spec`'s hardware. `base` supplies what a topology does not say
    /// (KVM, the unregister interval, the privilege policy's config); `diagnostics` where its trace
    /// and log echo go.
    public static func load(_ spec: TopologySpec, source: String = "<topology>",
                            base: VFIOConfig = VFIOConfig(), rawIO: RawIOPolicy = .process,
                            diagnostics: VFIODiagnostics = .none) throws(TopologyError) -> VFIOSubsystem {
        try load(spec, source: source, base: base, rawIO: rawIO, diagnostics: diagnostics, willApply: { _ in })
    }

    /// `load`, with `willApply` run on the new subsystem before any hardware enters it: the fault
    /// sweep arms fault points there and keeps the subsystem to check what a failed load left.
    static func load(_ spec: TopologySpec, source: String, base: VFIOConfig, rawIO: RawIOPolicy,
                     diagnostics: VFIODiagnostics = .none,
                     willApply: (VFIOSubsystem) -> Void) throws(TopologyError) -> VFIOSubsystem {
        try spec.validate(source: source)
        var config = base
        config.vfioNoIOMMU = true
        config.enableUnsafeNoIOMMUMode = spec.config.noiommu
        config.spaprTCEIOMMU = spec.config.spaprTCEIOMMU
        config.iommufd = spec.config.iommufd
        let sub = VFIOSubsystem(config: config, rawIO: rawIO, diagnostics: diagnostics)
        willApply(sub)
        do throws(TopologyError) {
            try sub.apply(spec, source: source)
        } catch {
            sub.shutdown()
            throw error
        }
        return sub
    }

    /// Loads `path` (a JSON file or a sysfs-shaped directory) into a new subsystem.
    public static func load(path: String, base: VFIOConfig = VFIOConfig(), rawIO: RawIOPolicy = .process,
                            diagnostics: VFIODiagnostics = .none) throws(TopologyError) -> VFIOSubsystem {
        let spec = try TopologySpec.load(path: path)
        return try load(spec, source: path, base: base, rawIO: rawIO, diagnostics: diagnostics)
    }

    private func apply(_ spec: TopologySpec, source: String) throws(TopologyError) {
        func fail(_ path: String, _ e: Errno) -> TopologyError {
            TopologyError(source: source, path: path, message: "the model refused it: \(e.name)")
        }
        for (gi, group) in spec.iommuGroups.enumerated() {
            do throws(Errno) { _ = try iommu.addGroup(id: group.id) } catch { throw fail("$.iommu_groups[\(gi)].id", error) }
        }
        for (gi, group) in spec.iommuGroups.enumerated() {
            for (di, d) in group.devices.enumerated() {
                try probe(d, iommuGroupID: group.id, path: { "$.iommu_groups[\(gi)].devices[\(di)]" }, fail)
            }
        }
        for (di, d) in spec.noIOMMUDevices.enumerated() {
            try probe(d, iommuGroupID: nil, path: { "$.noiommu_devices[\(di)]" }, fail)
        }
        for (di, d) in spec.emulatedDevices.enumerated() {
            do throws(Errno) { try probeEmulatedDevice(name: d.name) } catch { throw fail("$.emulated_devices[\(di)]", error) }
        }
    }

    /// `path` renders the device's place for a message only (not for every device of a large topology).
    private func probe(_ d: TopologySpec.Device, iommuGroupID: Int?, path: () -> String,
                       _ fail: (String, Errno) -> TopologyError) throws(TopologyError) {
        let isVFIO = d.driver?.hasPrefix("vfio") ?? false
        do throws(Errno) {
            try probePCIDevice(name: d.name, iommuGroupID: iommuGroupID, driver: isVFIO ? nil : d.driver,
                               cacheCoherency: d.cacheCoherency, enforceCacheCoherency: d.enforceCacheCoherency,
                               identity: d.pci)
        } catch {
            throw fail(path(), error)
        }
        guard isVFIO, let bus = iommu.device(named: d.name) else { return }
        bus.preferredNoIOMMUGroupID = d.noIOMMUGroupID
        do throws(Errno) {
            try bindVFIOPCI(bus, driver: d.driver!, identity: d.pci)
        } catch let e where e == .EINVAL {
            // The kernel's probe failed the same way (no cache coherency; no IOMMU group with
            // no-IOMMU mode off): the device stays unbound, with no node.
            log.info("\(d.name): vfio-pci probe failed: EINVAL" + (e.reasonText.map { " (\($0))" } ?? ""))
        } catch {
            // Anything else (ENOMEM, ENOSPC, ...) is the model refusing: the load fails rather
            // than silently leaving a device out.
            throw fail(path(), error)
        }
    }

    /// Removes every VFIO device (blocking until their fds close) and the hardware: the model's
    /// module unload. Open model fds are closed first.
    public func shutdown() {
        for fd in fdTable.fds { try? close(fd) }
        for d in registeredDevices { removeVFIODevice(d) }
    }
}
