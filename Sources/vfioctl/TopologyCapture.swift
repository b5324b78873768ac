// SPDX-License-Identifier: Apache-2.0
// `vfioctl topology capture [--root DIR]`: the machine's own IOMMU groups and PCI devices as the
// model's JSON topology, so a client can run against a model of the machine it runs on.
import Glibc
import VFIO
import VFIOTopology

/// `vfioctl topology capture`: reads `/sys/kernel/iommu_groups` and `/sys/bus/pci/devices` (or the
/// same under `--root DIR`, symbolic links as the kernel makes them) with the sysfs-shaped
/// topology reader and writes the topology as JSON to stdout.
///
/// What comes out: every IOMMU group with its members, each member's bound driver, PCI ids, class,
/// memory BARs and ROM from `resource`, PCI Express from the size of `config`, and
/// `enforce_cache_coherency` from the Intel IOMMU's snoop-control bit; devices VFIO made a
/// no-IOMMU group for (group `name` "vfio-noiommu") as `noiommu_devices`; `config.noiommu` from
/// vfio's `enable_unsafe_noiommu_mode` and `config.iommufd` from whether `/dev/iommu` is
/// registered (`class/misc/iommu`). Devices the model does not serve (no VFIO driver) are
/// described, never fatal.
enum TopologyCapture {
    /// Runs the subcommand with the arguments after `topology capture`; returns the exit status.
    static func run(_ arguments: [String]) -> Int32 {
        var root = "/"
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--root":
                guard let dir = rest.popFirst() else { return usage("--root needs a directory") }
                root = dir
            case "-h", "--help":
                print("usage: vfioctl topology capture [--root DIR]")
                return 0
            default:
                return usage("unexpected argument \(argument)")
            }
        }
        // A real machine's tree is DIR/sys; a sysfs-shaped directory is DIR itself.
        let sysfs = root == "/" ? "/sys" : root
        do {
            let spec = try SysfsTopologyReader(root: sysfs).read()
            write(1, spec.jsonText())
            return 0
        } catch {
            write(2, "vfioctl topology capture: \(error)\n")
            return 1
        }
    }

    private static func usage(_ message: String) -> Int32 {
        write(2, "vfioctl topology capture: \(message)\nusage: vfioctl topology capture [--root DIR]\n")
        return 2
    }

    /// Writes all of `text` to file descriptor `fd` (stdio's globals are not concurrency-safe).
    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }
}
