// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO

/// The topology fuzzer's body: bytes as JSON through `TopologySpec.parse`, then, when it parses,
/// `VFIOSubsystem.load`.
///
/// What must hold: parsing either succeeds or throws a `TopologyError` with a message and a JSON
/// path; a parsed spec survives `jsonText()` and parsing again unchanged; a load either fails (with
/// a message naming a path) or gives a subsystem whose every node opens, answers GET_STATUS and
/// closes, and whose shutdown leaves nothing alive.
public enum FuzzTopology {
    /// Loads stop here: the fuzzer is after the parser and loader logic, not after how long a
    /// million devices take to register.
    public static let maxDevices = 64

    public static func run(_ data: UnsafeRawBufferPointer) -> FuzzOpsResult {
        var result = FuzzOpsResult()
        func finding(_ s: String) { if result.findings.count < 20 { result.findings.append(s) } }
        let spec: TopologySpec
        do throws(TopologyError) {
            spec = try TopologySpec.parse(json: Array(data), source: "fuzz.json")
        } catch {
            if error.message.isEmpty { finding("a parse error without a message: \(error)") }
            if !error.path.hasPrefix("$") { finding("a parse error whose path is not a JSON path: \(error)") }
            return result
        }
        result.ops += 1
        // The spec's own JSON text parses back to the same spec.
        let text = spec.jsonText()
        do throws(TopologyError) {
            let again = try TopologySpec.parse(json: Array(text.utf8), source: "again.json")
            if again != spec { finding("jsonText() does not round-trip:\n\(text)") }
        } catch {
            finding("jsonText() does not parse: \(error)\n\(text)")
        }
        let devices = spec.iommuGroups.reduce(0) { $0 + $1.devices.count } + spec.noIOMMUDevices.count + spec.emulatedDevices.count
        guard devices <= maxDevices else { return result }
        let sub: VFIOSubsystem
        do throws(TopologyError) {
            sub = try VFIOSubsystem.load(spec, source: "fuzz.json",
                                         base: VFIOConfig(unregisterRequestInterval: .milliseconds(1)), rawIO: .granted)
        } catch {
            if error.message.isEmpty || !error.path.hasPrefix("$") { finding("a load error without a message or path: \(error)") }
            return result
        }
        result.ops += 1
        for g in sub.allGroups {
            do throws(Errno) {
                let fd = try sub.open(g.path)
                var status = VFIOGroupStatus()
                _ = try withUnsafeMutablePointer(to: &status) { (p) throws(Errno) -> Int in
                    try sub.ioctl(fd, UInt(VFIOIoctl.groupGetStatus), UInt(bitPattern: p))
                }
                try sub.close(fd)
            } catch {
                if !knownLinuxErrnos.contains(error.rawValue) { finding("\(g.path): errno \(error.rawValue)") }
                if error != .EPERM { finding("\(g.path) of a loaded topology: \(error)") }   // EPERM: no-IOMMU without CAP_SYS_RAWIO only
            }
        }
        sub.shutdown()
        let c = sub.census.counts
        if !c.isEmpty { finding("a loaded topology leaked after shutdown: \(c.leaks)") }
        if sub.liveGroupCount != 0 { finding("group minors held after shutdown") }
        for g in sub.iommu.groups where g.isFake || g.refCount != 1 + g.devices.count {
            finding("iommu_group \(g.id) after shutdown: fake \(g.isFake), \(g.refCount) references, \(g.devices.count) members")
        }
        if sub.log.warnCount > 0 { finding("WARN: \(sub.log.warnMessages)") }
        return result
    }

    public static func run(_ bytes: [UInt8]) -> FuzzOpsResult { bytes.withUnsafeBytes { run($0) } }
}
