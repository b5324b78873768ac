// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOTypes
import VFIO

// Observation of the default model for tests and examples: the census (what is alive, how many
// WARNs) and a description in words.

/// Fills `*result` with the default model's live-object counts and WARN count (struct
/// swiftvfio_census). Returns 0, or -EFAULT for a NULL or unwritable `result`.
@c public func swiftvfio_census(_ result: UnsafeMutablePointer<swiftvfio_census>?) -> CInt {
    kernelCall("swiftvfio_census") { sub throws(CallError) in
        let c = sub.census.counts
        let value = CSwiftVFIOTypes.swiftvfio_census(
            files: cInt(c.files), fds: cInt(c.fds), groups: cInt(c.groups), containers: cInt(c.containers),
            iommufd_contexts: cInt(c.iommufdContexts), devices: cInt(c.devices),
            registered_devices: cInt(c.registeredDevices), device_sets: cInt(c.deviceSets),
            kvm_references: cInt(c.kvmReferences), warnings: cInt(sub.log.warnCount))
        try writeOut(value, to: UnsafeMutableRawPointer(result), "result")
        return 0
    }
}

/// Writes a description of the default model into `buf` (at most `size` bytes, NUL-terminated,
/// truncated if needed): each VFIO group with its node, whether it is open, its container or
/// iommufd attachment and KVM pointer; each device with its driver, open count and the VM it
/// holds a reference to; the census. Returns the length of the whole description (so a call with
/// `size` 0 sizes the buffer), or -EFAULT for an unwritable `buf`.
@c public func swiftvfio_state(_ buf: UnsafeMutablePointer<CChar>?, _ size: size_t) -> CInt {
    kernelCall("swiftvfio_state") { sub throws(CallError) in
        let text = describe(sub)
        let bytes = Array(text.utf8)
        if size > 0 {
            let n = min(bytes.count, size - 1)
            var out = Array(bytes[0..<n])
            out.append(0)
            let r: Errno? = out.withUnsafeBytes { raw in
                do throws(Errno) {
                    try UserMemory.copyOut(raw.baseAddress!, to: UInt(bitPattern: buf), count: raw.count)
                    return nil
                } catch {
                    return error
                }
            }
            if let r { throw CallError(r, "buf is not writable") }
        }
        return cInt(bytes.count)
    }
}

private func hexPointer(_ p: UnsafeMutableRawPointer?) -> String {
    guard let p else { return "none" }
    return "0x" + String(UInt(bitPattern: p), radix: 16)
}

/// The model in words: one line per group and device, then the census.
func describe(_ sub: VFIOSubsystem) -> String {
    var lines: [String] = []
    let groups = sub.allGroups.sorted { $0.iommuGroupID < $1.iommuGroupID }
    if groups.isEmpty { lines.append("no VFIO groups: " + (sub.whyNoVFIOGroups ?? "none registered")) }
    for g in groups {
        var parts = ["\(g.path) (IOMMU group \(g.iommuGroupID), \(g.type))"]
        parts.append(g.isOpen ? "open" : "closed")
        if g.hasContainer {
            parts.append("in a container (container users \(g.containerUserCount))")
        } else if g.hasIOMMUFD {
            parts.append("attached to an iommufd")
        } else {
            parts.append("no container")
        }
        parts.append("kvm \(hexPointer(g.kvmPointer))")
        lines.append(parts.joined(separator: ", "))
        for d in g.devices {
            let driver = sub.iommu.driver(of: d.busDevice) ?? d.ops.name
            lines.append("  \(d.busDevice.name) (\(d.name), \(driver)): open count \(d.openCount), holds kvm \(hexPointer(d.kvmPointer))")
        }
    }
    let c = sub.census.counts
    lines.append("census: \(c), warnings \(sub.log.warnCount)")
    return lines.joined(separator: "\n") + "\n"
}
