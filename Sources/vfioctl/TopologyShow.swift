// SPDX-License-Identifier: Apache-2.0
import VFIO
import VFIOTopology

// `vfioctl topology show PATH [--format text|json|dot]`: the machine as a table, as normalized
// JSON (what the model reads back to the same topology), or as Graphviz DOT.

extension Command {
    /// `vfioctl topology show`.
    static let topologyShow = Command(
        words: ["topology", "show"],
        synopsis: "PATH | --builtin [--format text|json|dot]",
        summary: "Show the machine a topology describes: a table, normalized JSON, or Graphviz DOT.",
        help: """
            options:
              --format text   a table: IOMMU group, VFIO node, viability, device, driver,
                              VFIO device (the default)
              --format json   the topology as normalized JSON (every config key, device keys
                              only where they differ from the defaults); a sysfs-shaped
                              directory comes out as the equivalent JSON file
              --format dot    Graphviz DOT: IOMMU groups as clusters (viable green, not viable
                              red, no-IOMMU dashed), devices with their drivers; render with
                              `dot -Tsvg`
              --builtin       show the built-in default topology instead of PATH
              -h, --help      this text

            Exits 1 with the loader's message when the topology does not load.
            """,
        main: topologyShowMain)
}

/// The table of `--format text`.
func showText(_ m: MachineView) -> String {
    var rows: [[String]] = [["GROUP", "KIND", "NODE", "VIABLE", "DEVICE", "DRIVER", "VFIO"]]
    for g in m.groups {
        for (i, d) in g.devices.enumerated() {
            rows.append(i == 0
                ? [String(g.id), g.kind, g.node ?? "-", g.viable ? "yes" : "no", d.name, d.driver ?? "-", d.vfioDevice ?? "-"]
                : ["", "", "", "", d.name, d.driver ?? "-", d.vfioDevice ?? "-"])
        }
    }
    for d in m.ungrouped {
        rows.append(["-", "none", "-", "-", d.name, d.driver ?? "-", d.vfioDevice ?? "-"])
    }
    var widths = [Int](repeating: 0, count: rows[0].count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    var t = "# \(m.source): noiommu \(m.config.noiommu.onOff), spapr_tce_iommu \(m.config.spaprTCEIOMMU.onOff), iommufd \(m.config.iommufd.onOff)\n"
    for r in rows {
        var line = ""
        for (i, c) in r.enumerated() {
            line += i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 2)
        }
        t += line + "\n"
    }
    return t
}

/// A DOT double-quoted string.
func dotQuoted(_ s: String) -> String {
    var r = "\""
    for ch in s {
        switch ch {
        case "\"": r += "\\\""
        case "\\": r += "\\\\"
        case "\n": r += "\\n"
        default: r.append(ch)
        }
    }
    return r + "\""
}

/// The graph of `--format dot`: one cluster per IOMMU group, one box per device.
func showDOT(_ m: MachineView) -> String {
    var t = "digraph topology {\n"
    t += "  graph [label=\(dotQuoted("\(m.source)\nnoiommu \(m.config.noiommu.onOff), iommufd \(m.config.iommufd.onOff)")), labelloc=t, fontname=\"Helvetica\"];\n"
    t += "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];\n"
    func node(_ d: DeviceView, indent: String) -> String {
        var label = d.name + "\n" + (d.driver ?? "unbound")
        if let v = d.vfioDevice { label += "\n" + v }
        if d.ownsDMA { label += "\n(owns DMA)" }
        let fill = d.vfioDevice != nil ? "lightblue" : (d.ownsDMA ? "mistyrose" : "white")
        return "\(indent)\(dotQuoted("dev:" + d.name)) [label=\(dotQuoted(label)), fillcolor=\(fill)];\n"
    }
    for g in m.groups {
        t += "  subgraph \(dotQuoted("cluster_group_\(g.id)")) {\n"
        var label = "IOMMU group \(g.id)"
        if g.kind != "iommu" && g.kind != "none" { label += " (\(g.kind))" }
        label += "\n" + (g.node ?? "no VFIO node") + "\n" + (g.viable ? "viable" : "NOT viable")
        t += "    label=\(dotQuoted(label));\n"
        t += "    color=\(g.viable ? "darkgreen" : "red");\n"
        t += "    style=\(g.kind == "noiommu" ? "dashed" : "solid");\n"
        for d in g.devices { t += node(d, indent: "    ") }
        t += "  }\n"
    }
    if !m.ungrouped.isEmpty {
        t += "  subgraph \"cluster_ungrouped\" {\n    label=\"no IOMMU group\";\n    color=gray;\n    style=dashed;\n"
        for d in m.ungrouped { t += node(d, indent: "    ") }
        t += "  }\n"
    }
    return t + "}\n"
}

private func topologyShowMain(_ args: [String]) -> Int32 {
    let cmd = Command.topologyShow
    let parsed: ParsedArguments
    do throws(UsageError) {
        parsed = try parseArguments(args, options: [OptionSpec(name: "--format", value: "FORMAT"),
                                                    OptionSpec(name: "--builtin", value: nil)])
    } catch {
        return usageError(cmd, error.message)
    }
    if parsed.help { out(cmd.helpText); return Exit.success }
    let format = parsed.values["format"] ?? "text"
    guard ["text", "json", "dot"].contains(format) else {
        return usageError(cmd, "unknown --format '\(format)' (text, json or dot)")
    }
    let path: String?
    switch topologyArgument(parsed, cmd) {
    case .success(let p): path = p
    case .failure(let e): return usageError(cmd, e.message)
    }
    if format == "json" {
        // The normalized form of what was read (validated by loading it, as the model would).
        do throws(TopologyError) {
            let spec = try path.map { p throws(TopologyError) in try TopologySpec.load(path: p) } ?? TopologySpec.builtInDefault
            let sub = try VFIOSubsystem.load(spec, source: path ?? "<built-in>")
            sub.shutdown()
            out(spec.jsonText())
            return Exit.success
        } catch {
            return failure(cmd, error.description)
        }
    }
    switch loadMachine(path: path) {
    case .success(let m):
        out(format == "dot" ? showDOT(m) : showText(m))
        return Exit.success
    case .failure(let e):
        return failure(cmd, e.description)
    }
}
