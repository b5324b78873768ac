// SPDX-License-Identifier: Apache-2.0
import VFIO
import VFIOTopology

// `vfioctl topology check PATH`: loads a topology exactly as the model does (the same parser
// and loader libswiftvfio runs on SWIFTVFIO_TOPOLOGY) and prints a summary, or the loader's error.

extension Command {
    /// `vfioctl topology check`.
    static let topologyCheck = Command(
        words: ["topology", "check"],
        synopsis: "PATH | --builtin",
        summary: "Load a topology (JSON file or sysfs-shaped directory) as the model does; summarize it or say what is wrong.",
        help: """
            options:
              --builtin   check the built-in default topology instead of PATH
              -h, --help  this text

            Prints the config, each IOMMU group with its members, their drivers, whether the
            group is viable and its /dev/vfio node, the devices without a group, and the nodes a
            client would see. Exits 1 with the loader's message (file, JSON path, line and
            column, what was expected) when the topology does not load.

            A driver name not beginning with "vfio" (other than pci-stub and pcieport) is a
            kernel driver that owns DMA; a SWIFTVFIO_DRIVERS plug-in's driver is bound only by
            libswiftvfio in the client process, so this command shows it as such a driver.
            """,
        main: topologyCheckMain)
}

/// The summary `check` prints.
func checkSummary(_ m: MachineView) -> String {
    var t = "topology \(m.source): OK\n"
    t += "config: noiommu \(m.config.noiommu.onOff), spapr_tce_iommu \(m.config.spaprTCEIOMMU.onOff), iommufd \(m.config.iommufd.onOff)\n"
    for g in m.groups {
        var line = "IOMMU group \(g.id)"
        if g.kind == "emulated" || g.kind == "noiommu" { line += " (\(g.kind), fake)" }
        line += ": " + (g.node ?? "no VFIO node")
        line += ", " + (g.viable ? "viable" : "NOT viable")
        if !g.viable {
            let owners = g.devices.filter(\.ownsDMA).map { "\($0.name) (\($0.driver ?? "?"))" }
            line += ": DMA owned by \(owners.joined(separator: ", "))"
        }
        t += line + "\n"
        for d in g.devices { t += "  " + deviceLine(d) + "\n" }
    }
    for d in m.ungrouped {
        t += "no IOMMU group: " + deviceLine(d) + (d.vfioDevice == nil ? " (no node: no-IOMMU mode off, or its probe failed)" : "") + "\n"
    }
    t += "nodes: " + m.nodes.joined(separator: " ") + "\n"
    let vfioGroups = m.groups.filter { $0.node != nil }.count
    t += "\(m.groups.count) IOMMU groups, \(m.deviceCount) devices, \(vfioGroups) VFIO groups (\(m.groups.filter { $0.node != nil && $0.viable }.count) viable)\n"
    return t
}

/// "0000:06:0d.0  vfio-pci  vfio0".
func deviceLine(_ d: DeviceView) -> String {
    var s = d.name + "  driver " + (d.driver ?? "(none)")
    if let v = d.vfioDevice { s += ", VFIO device \(v)" }
    if d.ownsDMA { s += ", owns DMA" }
    return s
}

private func topologyCheckMain(_ args: [String]) -> Int32 {
    let cmd = Command.topologyCheck
    let parsed: ParsedArguments
    do throws(UsageError) {
        parsed = try parseArguments(args, options: [OptionSpec(name: "--builtin", value: nil)])
    } catch {
        return usageError(cmd, error.message)
    }
    if parsed.help { out(cmd.helpText); return Exit.success }
    let path: String?
    switch topologyArgument(parsed, cmd) {
    case .success(let p): path = p
    case .failure(let e): return usageError(cmd, e.message)
    }
    switch loadMachine(path: path) {
    case .success(let m):
        out(checkSummary(m))
        return Exit.success
    case .failure(let e):
        return failure(cmd, e.description)
    }
}
