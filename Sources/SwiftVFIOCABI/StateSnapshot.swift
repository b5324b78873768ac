// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO

// What `vfioctl state PID` shows: a snapshot of the default model, taken on the control thread
// (Control.swift) and rendered as text or JSON after every lock is released.
//
// Taking it changes nothing the process can observe: each value is read under the lock that
// guards it, one lock at a time, briefly. The one reference it takes (fget of each model fd, so
// the file cannot be freed while it is read) is the kind /proc/PID/fdinfo takes in the kernel: if
// the process closes that fd meanwhile, the release runs when the snapshot drops it, as it would
// have on the process's own close.

/// A small JSON value, rendered with two-space indentation.
indirect enum JSONValue {
    case string(String), int(Int), bool(Bool), null
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// The value as JSON text.
    func render(_ indent: String = "") -> String {
        switch self {
        case .string(let s): return JSONValue.quote(s)
        case .int(let n): return String(n)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let items):
            if items.isEmpty { return "[]" }
            let inner = indent + "  "
            return "[\n" + items.map { inner + $0.render(inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            let inner = indent + "  "
            return "{\n" + members.map { inner + JSONValue.quote($0.0) + ": " + $0.1.render(inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\t": r += "\\t"
            case "\r": r += "\\r"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    r += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    r.unicodeScalars.append(u)
                }
            }
        }
        return r + "\""
    }
}

/// The model of one process at one moment.
struct StateSnapshot {
    struct File { var fd: Int32; var kind: String; var name: String; var refs: Int; var detail: String }
    struct Group {
        var path: String; var iommuGroup: Int; var type: String; var open: Bool; var removed: Bool
        var container: String?; var containerUsers: Int; var iommufd: String?; var kvm: String?; var devices: [String]
    }
    struct Mapping { var iova: UInt64; var size: UInt64; var vaddr: UInt64; var read: Bool; var write: Bool }
    struct ContainerInfo { var id: String; var backend: String?; var groups: [String]; var mappings: [Mapping]? }
    struct IOMMUFDInfo { var id: String; var ioas: [UInt32]; var compat: UInt32? }
    struct Device {
        var name: String; var vfio: String; var driver: String; var group: String?
        var openCount: Int; var registrations: Int; var kvm: String?
    }

    var pid: Int32
    var comm: String
    var files: [File] = []
    var groups: [Group] = []
    var containers: [ContainerInfo] = []
    var iommufds: [IOMMUFDInfo] = []
    var devices: [Device] = []
    var census: Census.Counts
    var warnings: Int
    var log: [KernelMessage]
    /// How long the snapshot held the model (the process's calls went on meanwhile).
    var tookNanoseconds: Int

    /// Takes the snapshot of `sub` (inside a model call: the subsystem cannot be replaced).
    init(_ sub: VFIOSubsystem) {
        var t0 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        pid = getpid()
        var buf = [UInt8](repeating: 0, count: 64)
        let fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC)
        var n = 0
        if fd >= 0 { n = max(0, read(fd, &buf, 63)); close(fd) }
        comm = String(decoding: buf[0..<n], as: UTF8.self).trimmingNewline

        // Stable names for objects that have none of their own, in order of discovery.
        var containerIDs: [ObjectIdentifier: String] = [:]
        var containerObjects: [Container] = []
        var ctxIDs: [ObjectIdentifier: String] = [:]
        var ctxObjects: [IOMMUFDContext] = []
        func name(_ c: Container) -> String {
            if let s = containerIDs[ObjectIdentifier(c)] { return s }
            let s = "container\(containerIDs.count)"
            containerIDs[ObjectIdentifier(c)] = s
            containerObjects.append(c)
            return s
        }
        func name(_ c: IOMMUFDContext) -> String {
            if let s = ctxIDs[ObjectIdentifier(c)] { return s }
            let s = "iommufd\(ctxIDs.count)"
            ctxIDs[ObjectIdentifier(c)] = s
            ctxObjects.append(c)
            return s
        }
        func pointer(_ p: UnsafeMutableRawPointer?) -> String? { p.map { "0x" + String(UInt(bitPattern: $0), radix: 16) } }

        for fd in sub.openFDs {
            guard let file = try? sub.fget(fd) else { continue }   // closed meanwhile
            var detail = ""
            switch file.kind {
            case .container: if let c = file.inspectedContainer { detail = name(c) }
            case .iommufd: if let c = file.inspectedIOMMUFD { detail = name(c) }
            case .group: detail = file.inspectedGroup.map { "group \($0.name)" } ?? "released group"
            case .device:
                if let (d, ctx) = file.inspectedDevice {
                    detail = "\(d.busDevice.name) (\(d.name)) via " + (ctx.map { name($0) } ?? "container")
                }
            case .other: detail = "other"
            }
            files.append(File(fd: fd, kind: "\(file.kind)", name: file.name, refs: file.refCount - 2, detail: detail))   // not the fd table's, not ours
            sub.fput(file)
        }
        for g in sub.allGroups.sorted(by: { $0.iommuGroupID < $1.iommuGroupID }) {
            let type: String
            switch g.type {
            case .iommu: type = "iommu"
            case .emulatedIOMMU: type = "emulated"
            case .noIOMMU: type = "noiommu"
            }
            groups.append(Group(path: g.path, iommuGroup: g.iommuGroupID, type: type, open: g.isOpen, removed: g.isRemoved,
                                container: g.inspectedContainer.map { name($0) }, containerUsers: g.containerUserCount,
                                iommufd: g.inspectedIOMMUFD.map { name($0) }, kvm: pointer(g.kvmPointer),
                                devices: g.devices.map(\.busDevice.name)))
            for d in g.devices {
                devices.append(Device(name: d.busDevice.name, vfio: d.name,
                                      driver: sub.iommu.driver(of: d.busDevice) ?? d.ops.name, group: g.path,
                                      openCount: d.openCount, registrations: d.registrationCount, kvm: pointer(d.kvmPointer)))
            }
        }
        for c in containerObjects {
            let mappings = (c.backendState as? Type1IOMMU)?.mappings.map {
                Mapping(iova: $0.iova, size: $0.size, vaddr: $0.vaddr, read: $0.read, write: $0.write)
            }
            containers.append(ContainerInfo(id: name(c), backend: c.backendName, groups: c.attachedGroups.map(\.path), mappings: mappings))
        }
        for c in ctxObjects {
            let (ids, compat) = c.inspectedIOAS
            iommufds.append(IOMMUFDInfo(id: name(c), ioas: ids, compat: compat))
        }
        census = sub.census.counts
        warnings = sub.log.warnCount
        log = sub.log.messages.filter { $0.level != .info }.suffix(200).map { $0 }
        var t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t1)
        tookNanoseconds = (t1.tv_sec - t0.tv_sec) * 1_000_000_000 + (t1.tv_nsec - t0.tv_nsec)
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// The snapshot as JSON.
    var json: String {
        func opt(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        let c = census
        let value = JSONValue.object([
            ("pid", .int(Int(pid))), ("comm", .string(comm)),
            ("files", .array(files.map { .object([("fd", .int(Int($0.fd))), ("kind", .string($0.kind)), ("name", .string($0.name)),
                                                   ("other_references", .int($0.refs)), ("object", .string($0.detail))]) })),
            ("groups", .array(groups.map { .object([
                ("node", .string($0.path)), ("iommu_group", .int($0.iommuGroup)), ("type", .string($0.type)),
                ("open", .bool($0.open)), ("removed", .bool($0.removed)), ("container", opt($0.container)),
                ("container_users", .int($0.containerUsers)), ("iommufd", opt($0.iommufd)), ("kvm", opt($0.kvm)),
                ("devices", .array($0.devices.map { .string($0) }))]) })),
            ("containers", .array(containers.map { .object([
                ("id", .string($0.id)), ("backend", opt($0.backend)), ("groups", .array($0.groups.map { .string($0) })),
                ("dma_mappings", $0.mappings.map { .array($0.map { .object([
                    ("iova", .string(Self.hex($0.iova))), ("size", .string(Self.hex($0.size))), ("vaddr", .string(Self.hex($0.vaddr))),
                    ("read", .bool($0.read)), ("write", .bool($0.write))]) }) } ?? .null)]) })),
            ("iommufd_contexts", .array(iommufds.map { .object([
                ("id", .string($0.id)), ("ioas", .array($0.ioas.map { .int(Int($0)) })),
                ("compat_ioas", $0.compat.map { .int(Int($0)) } ?? .null)]) })),
            ("devices", .array(devices.map { .object([
                ("name", .string($0.name)), ("vfio_device", .string($0.vfio)), ("driver", .string($0.driver)),
                ("group", opt($0.group)), ("open_count", .int($0.openCount)), ("registrations", .int($0.registrations)),
                ("kvm", opt($0.kvm))]) })),
            ("census", .object([("files", .int(c.files)), ("fds", .int(c.fds)), ("groups", .int(c.groups)),
                                ("containers", .int(c.containers)), ("iommufd_contexts", .int(c.iommufdContexts)),
                                ("devices", .int(c.devices)), ("registered_devices", .int(c.registeredDevices)),
                                ("device_sets", .int(c.deviceSets)), ("kvm_references", .int(c.kvmReferences)),
                                ("warnings", .int(warnings))])),
            ("log", .array(log.map { .object([("level", .string("\($0.level)")), ("text", .string($0.text))]) })),
            ("snapshot_ns", .int(tookNanoseconds)),
        ])
        return value.render() + "\n"
    }

    /// The snapshot as text.
    var text: String {
        var t = "process \(pid) (\(comm))\n"
        t += "files:\n"
        if files.isEmpty { t += "  (no model fds)\n" }
        for f in files {
            t += "  fd \(f.fd): \(f.name) [\(f.kind)]" + (f.detail.isEmpty ? "" : " -> \(f.detail)") + (f.refs > 0 ? ", \(f.refs) other references" : "") + "\n"
        }
        t += "groups:\n"
        for g in groups {
            var s = "  \(g.path) (IOMMU group \(g.iommuGroup), \(g.type)): \(g.open ? "open" : "closed")"
            if g.removed { s += ", removed" }
            if let c = g.container { s += ", \(c) (container users \(g.containerUsers))" }
            if let i = g.iommufd { s += ", \(i)" }
            if g.container == nil && g.iommufd == nil { s += ", no container" }
            if let k = g.kvm { s += ", kvm \(k)" }
            t += s + "; devices " + g.devices.joined(separator: " ") + "\n"
        }
        t += "containers:\n"
        if containers.isEmpty { t += "  (none)\n" }
        for c in containers {
            t += "  \(c.id): backend \(c.backend ?? "(none)"), groups \(c.groups.isEmpty ? "(none)" : c.groups.joined(separator: " "))\n"
            for m in c.mappings ?? [] {
                t += "    DMA iova \(Self.hex(m.iova)) size \(Self.hex(m.size)) vaddr \(Self.hex(m.vaddr)) \(m.read ? "r" : "-")\(m.write ? "w" : "-")\n"
            }
        }
        if !iommufds.isEmpty {
            t += "iommufd contexts:\n"
            for c in iommufds {
                t += "  \(c.id): IOAS \(c.ioas.map(String.init).joined(separator: " "))" + (c.compat.map { ", compat IOAS \($0)" } ?? "") + "\n"
            }
        }
        t += "devices:\n"
        for d in devices {
            t += "  \(d.name) (\(d.vfio), \(d.driver)): open count \(d.openCount), kvm \(d.kvm ?? "none")\n"
        }
        t += "census: \(census), warnings \(warnings)\n"
        t += "log (WARN and warnings):\n"
        if log.isEmpty { t += "  (empty)\n" }
        for m in log { t += "  \(m.level): \(m.text)\n" }
        t += "snapshot took \(tookNanoseconds / 1000) us\n"
        return t
    }
}

extension String {
    /// Without one trailing newline.
    var trimmingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
