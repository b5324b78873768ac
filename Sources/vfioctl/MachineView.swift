// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO
import VFIOTopology

// What a topology becomes once the model has loaded it: the machine a client sees. `topology
// check` and `topology show` print this view; it is read from a loaded subsystem (not from the
// topology text), so it says what the model does with the file, e.g. that a vfio-pci device
// without cache coherency got no node.

/// A device of the machine.
struct DeviceView {
    /// The bus name (`0000:06:0d.0`, `mdev-0`).
    var name: String
    /// The bound driver, or nil when unbound.
    var driver: String?
    /// The VFIO device (`vfio0`) when a VFIO driver registered it.
    var vfioDevice: String?
    /// Whether the bound driver owns DMA (a kernel driver other than pci-stub/pcieport).
    var ownsDMA: Bool
}

/// An IOMMU group (real, or the fake one of an emulated or no-IOMMU device).
struct GroupView {
    var id: Int
    /// What kind of VFIO group it has: "iommu", "emulated", "noiommu", or "none" (no VFIO device).
    var kind: String
    /// Whether a client can use it: no member's driver owns DMA.
    var viable: Bool
    /// The /dev/vfio node, or nil when no VFIO device registered in it.
    var node: String?
    var devices: [DeviceView]
}

/// The loaded machine.
struct MachineView {
    var source: String
    var config: TopologySpec.Config
    var groups: [GroupView]
    /// Devices with no IOMMU group and no VFIO group (a no-IOMMU device while no-IOMMU mode is
    /// off, or whose probe failed).
    var ungrouped: [DeviceView]
    /// Every node a client would find: /dev/vfio/vfio, /dev/iommu (iommufd on), the groups'.
    var nodes: [String]

    init(_ sub: VFIOSubsystem, spec: TopologySpec, source: String) {
        self.source = source
        config = spec.config
        var vfioByBus: [String: VFIODevice] = [:]
        for d in sub.registeredDevices { vfioByBus[d.busDevice.name] = d }
        func view(_ bus: BusDevice) -> DeviceView {
            let driver = sub.iommu.driver(of: bus)
            return DeviceView(name: bus.name, driver: driver, vfioDevice: vfioByBus[bus.name]?.name,
                              ownsDMA: vfioByBus[bus.name] == nil && (driver.map { !IOMMUCore.driverManagesDMA($0) } ?? false))
        }
        var grouped = Set<String>()
        groups = sub.iommu.groups.map { g in
            let vfio = sub.group(iommuGroupID: g.id)
            let members = g.devices.map(view).sorted { $0.name < $1.name }
            grouped.formUnion(members.map(\.name))
            let kind: String
            switch vfio?.type {
            case .iommu?: kind = "iommu"
            case .emulatedIOMMU?: kind = "emulated"
            case .noIOMMU?: kind = "noiommu"
            case nil: kind = "none"
            }
            return GroupView(id: g.id, kind: kind, viable: !g.dmaOwnerClaimed, node: vfio?.path, devices: members)
        }
        ungrouped = sub.iommu.devices.filter { !grouped.contains($0.name) }.map(view).sorted { $0.name < $1.name }
        nodes = ["/dev/vfio/vfio"] + (config.iommufd ? ["/dev/iommu"] : []) + groups.compactMap(\.node)
    }

    var deviceCount: Int { groups.reduce(0) { $0 + $1.devices.count } + ungrouped.count }
}

/// Loads PATH (or the built-in topology) as the model does. On failure, the loader's message
/// (file, JSON path, line and column).
func loadMachine(path: String?) -> Result<MachineView, TopologyError> {
    let spec: TopologySpec
    let source = path ?? "<built-in>"
    do throws(TopologyError) {
        spec = try path.map { p throws(TopologyError) in try TopologySpec.load(path: p) } ?? TopologySpec.builtInDefault
        let sub = try VFIOSubsystem.load(spec, source: source)
        defer { sub.shutdown() }
        return .success(MachineView(sub, spec: spec, source: source))
    } catch {
        return .failure(error)
    }
}

/// The topology argument of `check` and `show`: PATH, or `--builtin` for the built-in topology.
func topologyArgument(_ parsed: ParsedArguments, _ cmd: Command) -> Result<String?, UsageError> {
    let builtin = parsed.flags.contains("builtin")
    switch (parsed.positionals.count, builtin) {
    case (0, true): return .success(nil)
    case (1, false): return .success(parsed.positionals[0])
    case (0, false): return .failure(UsageError(message: "no topology PATH given (or --builtin)"))
    case (_, true): return .failure(UsageError(message: "give a PATH or --builtin, not both"))
    default: return .failure(UsageError(message: "unexpected argument '\(parsed.positionals[1])'"))
    }
}

extension Bool {
    /// "on" / "off".
    var onOff: String { self ? "on" : "off" }
}
