// SPDX-License-Identifier: Apache-2.0
// Reads a topology from a sysfs-shaped directory: the layout QEMU's `sysfsdev=` and DPDK's
// `SYSFS_PCI_DEVICES` read, so a tree made with mkdir/ln (or the real /sys) describes the model's
// hardware. File I/O is plain Glibc (no Foundation in the core).

import Glibc

/// Reads a `TopologySpec` from a sysfs-shaped directory.
///
/// What it reads, relative to the root (anything absent takes its default):
/// - `kernel/iommu_groups/<N>/devices/<name>`: IOMMU group N (a decimal number without leading
///   zeros, at most 2147483647) has device `<name>`. The entries may be symbolic links, files or
///   directories (even dangling links): only the name matters. Groups come out in numeric order,
///   their devices in byte order of the names. A group directory must have `devices`.
/// - `kernel/iommu_groups/<N>/name` reading `vfio-noiommu`: a group VFIO itself made (the kernel's
///   `vfio_noiommu_group_alloc`, for no-IOMMU and emulated devices). It is not listed as a group:
///   its devices that appear under `bus/mdev/devices` are emulated devices, the others no-IOMMU
///   devices whose group keeps the number N (`/dev/vfio/noiommu-N`, as DPDK finds it from the
///   device's `iommu_group` link).
/// - `bus/pci/devices/<name>/iommu_group`: a symbolic link whose last component is the group
///   number. The group must exist and list the device. A device under `bus/pci/devices` without
///   this link is a no-IOMMU device; a device listed by a group must have it.
/// - `<device>/driver`: a symbolic link whose last component is the bound driver (absent:
///   unbound). `<device>` is `bus/pci/devices/<name>` when that directory exists, else the group's
///   `devices/<name>` entry when it is a directory (so non-PCI devices of a real /sys work).
/// - `<device>/cache_coherency`, `<device>/enforce_cache_coherency` (model extension): "1" or "0".
///   Absent: cache coherency is 1; enforce_cache_coherency is what the device's IOMMU can do: with
///   an Intel VT-d unit (`<device>/iommu` links to a directory with `intel-iommu/ecap`, as the
///   kernel makes it) the ecap's snoop-control bit (SC, bit 7), which `enforce_cache_coherency()`
///   of an Intel domain needs; with any other IOMMU, 1.
/// - `<device>/vendor`, `<device>/device`, `<device>/class`: the PCI ids as real sysfs writes them
///   ("0x1af4\n", class "0x020000\n"; decimal is accepted too).
/// - `<device>/resource`: real sysfs format, one line per resource of three hexadecimal numbers
///   "start end flags"; lines 0-5 are BAR0-5, line 6 the expansion ROM. A resource's size is
///   end - start + 1 (all zero: absent). The flags give the BAR's kind as the kernel's
///   IORESOURCE_* bits do: 0x100 I/O, 0x200 memory, 0x100000 64-bit memory (the next line, the
///   upper half, is all zero), 0x2000 prefetchable. On a device not bound to a VFIO driver (which
///   the model only describes) anything the PCI model could not serve (an odd BAR or ROM size) is
///   left out, so a real machine's tree always reads.
/// - `<device>/personality` ("plain" or "virtio-net"), `<device>/mac` ("52:54:00:12:34:56"),
///   `<device>/link_up` ("1" or "0") (model extensions): see `PCIDeviceIdentity`.
/// - `<device>/config`: its size tells the config space (real sysfs: 256 for conventional PCI,
///   4096 for PCI Express); it sets `pcie` unless the `pcie` file says otherwise. Its presence also
///   marks a real kernel's device directory, where `reset` (vfio-pci's `reset_works`) comes from
///   `reset_method`: a method other than a bus reset, or a bus reset with no other function on the
///   bus; absent or empty means none. The `reset` file (model extension) overrides.
/// - `<device>/msi`, `<device>/msix`, `<device>/msix_bar` (model extensions): decimal vector counts
///   and the MSI-X table's BAR; `<device>/pcie`, `<device>/intx` (model extensions): "1" or "0".
///   Absent: the `PCIDeviceIdentity` defaults.
/// - `module/vfio/parameters/enable_unsafe_noiommu_mode`: "Y", "N", "1" or "0" (also "y", "n")
///   sets `config.noiommu`.
/// - `module/iommufd/parameters/disabled` (model extension): "Y"/"1" turns `config.iommufd` off;
///   absent means iommufd is on, unless the tree has `class/misc` (a real machine's): then iommufd
///   is on exactly when `class/misc/iommu` (the `/dev/iommu` misc device) exists.
///   `config.spaprTCEIOMMU` is always false.
/// - `bus/mdev/devices/<name>`: emulated devices, in byte order of the names.
///
/// A trailing newline in the small files is ignored. The root must hold at least one of
/// `kernel/iommu_groups`, `bus/pci/devices` and `bus/mdev/devices`, so a mistyped directory is an
/// error rather than an empty topology. No-IOMMU devices come out in byte order of their names.
/// Errors name the root as source and the offending filesystem path.
public struct SysfsTopologyReader: Sendable {
    /// The directory read.
    public let root: String

    /// A reader for the tree at `root`.
    public init(root: String) { self.root = root }

    private static let smallFileLimit = 4096

    /// Reads and validates the tree.
    public func read() throws(TopologyError) -> TopologySpec {
        let groupsDir = join("kernel/iommu_groups")
        let pciDir = join("bus/pci/devices")
        let mdevDir = join("bus/mdev/devices")

        let groupsExist = try exists(groupsDir)
        let pciExists = try exists(pciDir)
        let mdevExists = try exists(mdevDir)
        guard groupsExist || pciExists || mdevExists else {
            throw fail(root, "not a sysfs-shaped directory: none of kernel/iommu_groups, bus/pci/devices, "
                             + "bus/mdev/devices exists")
        }

        var spec = TopologySpec()
        if let noiommu = try flag(join("module/vfio/parameters/enable_unsafe_noiommu_mode")) {
            spec.config.noiommu = noiommu
        }
        if let disabled = try flag(join("module/iommufd/parameters/disabled")) {
            spec.config.iommufd = !disabled
        } else if try exists(join("class/misc")) {
            // A real machine's tree: /dev/iommu exists exactly when iommufd registered its misc device.
            // (The entry is a link; a copied tree may leave it dangling, which still says so.)
            let misc = join("class/misc/iommu")
            let registered = try exists(misc)
            let linked = try link(misc) != nil
            spec.config.iommufd = registered || linked
        }

        // Emulated devices.
        let mdevNames = mdevExists ? try listDirectory(mdevDir) : []
        var mdevSet = Set<[UInt8]>()
        for name in mdevNames {
            try checkName(name, at: mdevDir + "/" + name)
            mdevSet.insert(Array(name.utf8))
        }

        // IOMMU groups.
        struct GroupEntry {
            var id: Int
            var path: String
            var members: [String]
            var isVFIONoIOMMU: Bool
        }
        var groups: [GroupEntry] = []
        var memberOf: [[UInt8]: Int] = [:]  // device name -> index into groups
        if groupsExist {
            for entry in try listDirectory(groupsDir) {
                let groupPath = groupsDir + "/" + entry
                guard let id = SysfsTopologyReader.groupNumber(entry) else {
                    throw fail(groupPath, "expected an IOMMU group number (0 to 2147483647) as the directory name")
                }
                let devicesPath = groupPath + "/devices"
                let members = try listDirectory(devicesPath)
                let groupName = try smallFile(groupPath + "/name")
                groups.append(GroupEntry(id: id, path: groupPath, members: members,
                                         isVFIONoIOMMU: groupName.map(SysfsTopologyReader.trimmed) == "vfio-noiommu"))
            }
            groups.sort { $0.id < $1.id }
            for (index, group) in groups.enumerated() {
                for name in group.members {
                    let entryPath = group.path + "/devices/" + name
                    try checkName(name, at: entryPath)
                    if let first = memberOf[Array(name.utf8)] {
                        throw fail(entryPath, TopologyNames.duplicateMessage(
                            name, firstAt: groups[first].path + "/devices/" + name))
                    }
                    memberOf[Array(name.utf8)] = index
                }
            }
        }

        // PCI devices: group links and no-IOMMU devices.
        var noIOMMUNames: [(name: String, groupPath: String?)] = []
        if pciExists {
            for name in try listDirectory(pciDir) {
                let devicePath = pciDir + "/" + name
                try checkName(name, at: devicePath)
                let linkPath = devicePath + "/iommu_group"
                if let target = try link(linkPath) {
                    guard let id = SysfsTopologyReader.groupNumber(target) else {
                        throw fail(linkPath, "expected a link to an IOMMU group, found one to \(JSONPath.quoted(target))")
                    }
                    guard let index = groups.firstIndex(where: { $0.id == id }) else {
                        throw fail(linkPath, "links to IOMMU group \(id), which does not exist in \(groupsDir)")
                    }
                    guard memberOf[Array(name.utf8)] == index else {
                        throw fail(linkPath, "links to IOMMU group \(id), whose devices directory "
                                             + "does not list \(JSONPath.quoted(name))")
                    }
                } else if let index = memberOf[Array(name.utf8)] {
                    throw fail(devicePath, "has no iommu_group link, but IOMMU group \(groups[index].id) "
                                           + "lists it (\(groups[index].path)/devices/\(name))")
                } else {
                    noIOMMUNames.append((name, nil))
                }
            }
        }

        // Assemble, checking names are unique across groups, no-IOMMU and emulated devices.
        var seen = DeviceNameRegistry<String>()
        for group in groups {
            var devices: [TopologySpec.Device] = []
            for name in group.members {
                let entryPath = group.path + "/devices/" + name
                if group.isVFIONoIOMMU {
                    if mdevSet.contains(Array(name.utf8)) { continue }  // listed below, as emulated
                    noIOMMUNames.append((name, group.path))
                    continue
                }
                if let first = seen.register(name, at: entryPath) {
                    throw fail(entryPath, TopologyNames.duplicateMessage(name, firstAt: first))
                }
                devices.append(try device(name, groupPath: group.path))
            }
            if !group.isVFIONoIOMMU {
                spec.iommuGroups.append(TopologySpec.IOMMUGroup(id: group.id, devices: devices))
            }
        }
        noIOMMUNames.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for entry in noIOMMUNames {
            let entryPath = entry.groupPath.map { $0 + "/devices/" + entry.name } ?? pciDir + "/" + entry.name
            if let first = seen.register(entry.name, at: entryPath) {
                throw fail(entryPath, TopologyNames.duplicateMessage(entry.name, firstAt: first))
            }
            var noIOMMUDevice = try device(entry.name, groupPath: entry.groupPath)
            // The number of the "vfio-noiommu" group the kernel made, so the node is noiommu-<N>.
            noIOMMUDevice.noIOMMUGroupID = entry.groupPath.flatMap {
                SysfsTopologyReader.groupNumber(SysfsTopologyReader.lastComponent($0))
            }
            spec.noIOMMUDevices.append(noIOMMUDevice)
        }
        for name in mdevNames {
            let entryPath = mdevDir + "/" + name
            if let first = seen.register(name, at: entryPath) {
                throw fail(entryPath, TopologyNames.duplicateMessage(name, firstAt: first))
            }
            spec.emulatedDevices.append(TopologySpec.EmulatedDevice(name: name))
        }
        return spec
    }

    // MARK: Pieces

    private func fail(_ path: String, _ message: String) -> TopologyError {
        TopologyError(source: root, path: path, message: message)
    }

    private func join(_ relative: String) -> String {
        var base = root
        while base.utf8.count > 1, base.hasSuffix("/") { base.removeLast() }
        return base == "/" ? "/" + relative : base + "/" + relative
    }

    /// The device's attributes: driver link and the coherency files.
    private func device(_ name: String, groupPath: String?) throws(TopologyError) -> TopologySpec.Device {
        var device = TopologySpec.Device(name: name)
        var directory: String?
        let pciPath = join("bus/pci/devices") + "/" + name
        if TopologyFileSystem.kind(of: pciPath) == .directory {
            directory = pciPath
        } else if let groupPath, TopologyFileSystem.kind(of: groupPath + "/devices/" + name) == .directory {
            directory = groupPath + "/devices/" + name
        }
        guard let directory else { return device }
        let driverPath = directory + "/driver"
        if let target = try link(driverPath) {
            let driver = SysfsTopologyReader.lastComponent(target)
            if let problem = TopologyNames.problem(with: driver, what: "driver name") {
                throw fail(driverPath, problem)
            }
            device.driver = driver
        }
        device.cacheCoherency = try bit(directory + "/cache_coherency") ?? true
        device.enforceCacheCoherency = try bit(directory + "/enforce_cache_coherency")
            ?? iommuEnforcesCoherency(directory)
        // Only a VFIO driver makes the model serve the function; others are just described.
        let served = device.driver?.hasPrefix("vfio") ?? false
        device.pci = try pciIdentity(directory, device: name, served: served)
        return device
    }

    /// Whether the device's IOMMU can make a domain enforce cache coherency: the snoop-control bit
    /// of an Intel VT-d unit's extended capabilities; true for any other (or no) IOMMU.
    ///
    /// Kernel: intel_iommu_enforce_cache_coherency() -> domain_support_force_snooping() (ecap_sc_support)
    private func iommuEnforcesCoherency(_ directory: String) -> Bool {
        let ecapPath = directory + "/iommu/intel-iommu/ecap"
        guard let text = try? smallFile(ecapPath),
              let ecap = UInt64(SysfsTopologyReader.trimmed(text), radix: 16) else { return true }
        return ecap & (1 << 7) != 0
    }

    /// The PCI identity from the ids, `resource`, `config` and the model-extension files. A device
    /// the model does not `served` (no VFIO driver) never fails for what the PCI model cannot do.
    private func pciIdentity(_ directory: String, device: String, served: Bool) throws(TopologyError) -> PCIDeviceIdentity {
        var id = PCIDeviceIdentity()
        func number(_ file: String, max: UInt64) throws(TopologyError) -> UInt64? {
            let path = directory + "/" + file
            guard let text = try smallFile(path) else { return nil }
            guard let value = PCIDeviceIdentity.parseInteger(text), value <= max else {
                throw fail(path, "expected an integer from 0 to \(max) (such as \"0x\(String(max, radix: 16))\"), "
                                 + "found \(JSONPath.quoted(SysfsTopologyReader.trimmed(text)))")
            }
            return value
        }
        if let v = try number("vendor", max: 0xffff) { id.vendorID = UInt16(v) }
        if let v = try number("device", max: 0xffff) { id.deviceID = UInt16(v) }
        if let v = try number("class", max: 0xffffff) { id.classCode = UInt32(v) }
        if let v = try number("msi", max: 32) { id.msiVectors = Int(v) }
        if let v = try number("msix", max: 2048) { id.msixVectors = Int(v) }
        if let v = try number("msix_bar", max: 5) { id.msixBAR = Int(v) }
        if let v = try bit(directory + "/pcie") {
            id.pcie = v
        } else if case .regular = TopologyFileSystem.kind(of: directory + "/config"),
                  let size = TopologyFileSystem.size(of: directory + "/config") {
            id.pcie = size > 256
        }
        if let v = try bit(directory + "/intx") { id.intx = v }
        if let v = try bit(directory + "/reset") {
            id.reset = v
        } else if case .regular = TopologyFileSystem.kind(of: directory + "/config") {
            id.reset = try resetWorks(directory, device: device)
        }
        if let v = try bit(directory + "/link_up") { id.linkUp = v }
        let personalityPath = directory + "/personality"
        if let text = try smallFile(personalityPath) {
            guard let kind = PCIPersonalityKind(rawValue: SysfsTopologyReader.trimmed(text)) else {
                throw fail(personalityPath, "expected \"plain\" or \"virtio-net\", found \(JSONPath.quoted(SysfsTopologyReader.trimmed(text)))")
            }
            id.personality = kind
        }
        let macPath = directory + "/mac"
        if let text = try smallFile(macPath) {
            guard let mac = PCIDeviceIdentity.parseMAC(text) else {
                throw fail(macPath, "expected a MAC address such as \"52:54:00:12:34:56\", found \(JSONPath.quoted(SysfsTopologyReader.trimmed(text)))")
            }
            id.mac = mac
        }
        let resourcePath = directory + "/resource"
        if let text = try smallFile(resourcePath) {
            var bars = [UInt64](repeating: 0, count: 6)
            var types = [PCIBARType](repeating: .memory32, count: 6)
            var prefetchable = [Bool](repeating: false, count: 6)
            var rom: UInt64 = 0
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() where i <= 6 {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                let values = fields.compactMap { PCIDeviceIdentity.parseInteger(String($0)) }
                guard fields.count == 3, values.count == 3 else {
                    throw fail(resourcePath, "line \(i + 1): expected \"start end flags\" in hexadecimal, "
                                             + "found \(JSONPath.quoted(String(line)))")
                }
                let (start, end, flags) = (values[0], values[1], values[2])
                if start == 0 && end == 0 { continue }
                guard end >= start else { throw fail(resourcePath, "line \(i + 1): end is below start") }
                let size = end - start + 1
                guard i < 6 else { rom = size; continue }
                // The kernel's IORESOURCE_* bits (include/linux/ioport.h) as sysfs prints them.
                let ioFlag: UInt64 = 0x100, memFlag: UInt64 = 0x200, prefetchFlag: UInt64 = 0x2000, mem64Flag: UInt64 = 0x10_0000
                if flags & ioFlag != 0 {
                    guard flags & memFlag == 0 else {
                        throw fail(resourcePath, "line \(i + 1): flags 0x\(String(flags, radix: 16)) say both I/O and memory")
                    }
                    types[i] = .io
                } else {
                    types[i] = flags & mem64Flag != 0 ? .memory64 : .memory32
                    prefetchable[i] = flags & prefetchFlag != 0
                }
                bars[i] = size
            }
            id.bars = bars
            id.barTypes = types
            id.barPrefetchable = prefetchable
            id.romSize = rom
        }
        if !served { SysfsTopologyReader.dropUnservable(&id) }
        if let problem = id.problem() {
            let file: String
            switch problem.key {
            case "bars", "rom_size": file = "resource"
            case "class_code": file = "class"
            default: file = problem.key
            }
            throw fail(directory + "/" + file, "device \(device): " + problem.message)
        }
        return id
    }

    /// Whether vfio-pci's `reset_works` would be true for a real kernel's device: `reset_method`
    /// lists the methods found when the device was probed, and a bus reset ("bus") only works while
    /// the function is alone on its bus, which the list does not know (it is made before the
    /// function's siblings are enumerated).
    ///
    /// Kernel: vfio_pci_core_enable() -> pci_try_reset_function() -> pci_parent_bus_reset()
    private func resetWorks(_ directory: String, device: String) throws(TopologyError) -> Bool {
        let methods = try smallFile(directory + "/reset_method").map(SysfsTopologyReader.trimmed) ?? ""
        let words = methods.split(separator: " ").map(String.init)
        if words.contains(where: { $0 != "bus" && $0 != "cxl_bus" }) { return true }
        guard !words.isEmpty else { return false }
        // "domain:bus:" is the name up to the last ':'.
        guard let colon = device.lastIndex(of: ":") else { return false }
        let bus = device[...colon]
        let siblings = try listDirectory(join("bus/pci/devices")).filter { $0 != device && $0.hasPrefix(bus) }
        return siblings.isEmpty
    }

    /// Leaves out of a described (not served) device what the PCI model could not serve, so that
    /// `problem()` has nothing to say: odd BAR and ROM sizes, and an MSI-X layout that does not fit,
    /// a virtio-net layout the personality cannot serve (then the function is plain).
    static func dropUnservable(_ id: inout PCIDeviceIdentity) {
        for i in id.bars.indices where id.bars[i] != 0 {
            let size = id.bars[i], type = id.barType(i)
            let limits: (UInt64, UInt64) = switch type {
            case .io: (4, 256)
            case .memory32: (16, 1 << 31)
            case .memory64: (16, 1 << 36)
            }
            let upperTaken = type == .memory64 && (i == 5 || id.bars[i + 1] != 0)
            if size < limits.0 || size > limits.1 || size & (size - 1) != 0 || upperTaken { id.bars[i] = 0 }
        }
        let rom = id.romSize
        if rom != 0 && (rom < 2048 || rom > 1 << 24 || rom & (rom - 1) != 0) { id.romSize = 0 }
        if id.problem() != nil { id.msixVectors = 0; id.msixBAR = 0 }
        if id.problem() != nil { id.msiVectors = 1 }
        if id.problem() != nil { id.personality = .plain }   // a virtio id whose layout the model cannot serve
    }

    private func checkName(_ name: String, at path: String) throws(TopologyError) {
        if let problem = TopologyNames.problem(with: name, what: "device name") { throw fail(path, problem) }
    }

    /// Whether `path` exists (following links); errors other than "absent" are reported.
    private func exists(_ path: String) throws(TopologyError) -> Bool {
        switch TopologyFileSystem.kind(of: path) {
        case .failed(let errno) where errno == ENOENT || errno == ENOTDIR: return false
        case .failed(let errno): throw fail(path, "cannot read: \(TopologyFileSystem.reason(errno))")
        default: return true
        }
    }

    /// The sorted entry names of a directory (without "." and "..").
    private func listDirectory(_ path: String) throws(TopologyError) -> [String] {
        switch TopologyFileSystem.listDirectory(path) {
        case .success(let names): return names
        case .failure(.system(let errno)):
            throw fail(path, "cannot read directory: \(TopologyFileSystem.reason(errno))")
        case .failure(.invalidName(let bytes)):
            throw fail(path, "directory has an entry whose name is not valid UTF-8 "
                             + "(\(bytes.map { String($0, radix: 16) }.joined(separator: " ")))")
        }
    }

    /// The target of a symbolic link, nil when absent.
    private func link(_ path: String) throws(TopologyError) -> String? {
        switch TopologyFileSystem.readLink(path) {
        case .success(let target): return target
        case .failure(.system(let errno)) where errno == ENOENT || errno == ENOTDIR: return nil
        case .failure(.system(let errno)) where errno == EINVAL: throw fail(path, "expected a symbolic link")
        case .failure(.system(let errno)): throw fail(path, "cannot read link: \(TopologyFileSystem.reason(errno))")
        case .failure(.invalidName): throw fail(path, "link target is not valid UTF-8")
        }
    }

    /// A small text file's contents, nil when absent.
    private func smallFile(_ path: String) throws(TopologyError) -> String? {
        switch TopologyFileSystem.kind(of: path) {
        case .failed(let errno) where errno == ENOENT || errno == ENOTDIR: return nil
        default: break
        }
        let bytes = try TopologyFileSystem.readFile(path, limit: SysfsTopologyReader.smallFileLimit, source: root,
                                                    errorPath: path, tooLarge: "file is larger than 4096 bytes")
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw fail(path, "file is not valid UTF-8 text")
        }
        return text
    }

    /// A module-parameter boolean: Y/y/1 or N/n/0; nil when the file is absent.
    private func flag(_ path: String) throws(TopologyError) -> Bool? {
        guard let text = try smallFile(path) else { return nil }
        switch SysfsTopologyReader.trimmed(text) {
        case "Y", "y", "1": return true
        case "N", "n", "0": return false
        case let other: throw fail(path, "expected Y, N, 1 or 0, found \(JSONPath.quoted(other))")
        }
    }

    /// A 0/1 attribute; nil when the file is absent.
    private func bit(_ path: String) throws(TopologyError) -> Bool? {
        guard let text = try smallFile(path) else { return nil }
        switch SysfsTopologyReader.trimmed(text) {
        case "1": return true
        case "0": return false
        case let other: throw fail(path, "expected 1 or 0, found \(JSONPath.quoted(other))")
        }
    }

    /// `text` without trailing newlines, spaces and tabs.
    static func trimmed(_ text: String) -> String {
        var result = Substring(text)
        while let last = result.unicodeScalars.last, last == "\n" || last == " " || last == "\t" || last == "\r" {
            result.unicodeScalars.removeLast()
        }
        return String(result)
    }

    /// The last component of a link target ("../../../kernel/iommu_groups/26" -> "26").
    static func lastComponent(_ target: String) -> String {
        var components = target.split(separator: "/", omittingEmptySubsequences: true)
        guard let last = components.popLast() else { return "" }
        return String(last)
    }

    /// A group number: the last component of `text` as canonical decimal in 0...Int32.max.
    static func groupNumber(_ text: String) -> Int? {
        let digits = lastComponent(text)
        let bytes = Array(digits.utf8)
        guard !bytes.isEmpty, bytes.count <= 10, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if bytes.count > 1 && bytes[0] == 0x30 { return nil }
        guard let value = Int(digits), value <= Int(Int32.max) else { return nil }
        return value
    }
}

// MARK: - Glibc file access

/// The few file-system calls the topology loaders make, as results rather than errno.
enum TopologyFileSystem {
    /// What a path names (after following links), or why `stat` failed.
    enum Kind: Sendable, Equatable { case directory, regular, other, failed(Int32) }

    /// Why a directory or link could not be read.
    enum Failure: Error { case system(Int32), invalidName([UInt8]) }

    /// The system's text for an errno value ("No such file or directory"), thread-safely.
    static func reason(_ errno: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard strerror_r(errno, &buffer, buffer.count) == 0 else { return "error \(errno)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What `path` names, following links; the errno when `stat` fails.
    static func kind(of path: String) -> Kind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failed(errno) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .regular
        default: return .other
        }
    }

    /// The size `stat` gives for `path` (sysfs `config`: the device's config space), nil on failure.
    static func size(of path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    /// A whole file, refusing more than `limit` bytes.
    ///
    /// Errors name `source` and `errorPath` ("" for a topology file, the file for sysfs parts).
    static func readFile(_ path: String, limit: Int, source: String, errorPath: String = "",
                         tooLarge: String) throws(TopologyError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TopologyError(source: source, path: errorPath, message: "cannot open: \(reason(errno))")
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) > limit {
            throw TopologyError(source: source, path: errorPath, message: "\(tooLarge) (\(info.st_size) bytes)")
        }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw TopologyError(source: source, path: errorPath, message: "cannot read: \(reason(errno))")
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
            if result.count > limit {
                throw TopologyError(source: source, path: errorPath, message: tooLarge)
            }
        }
        return result
    }

    /// The entry names of a directory, without "." and "..", sorted by bytes.
    static func listDirectory(_ path: String) -> Result<[String], Failure> {
        guard let dir = opendir(path) else { return .failure(.system(errno)) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { return .failure(.system(errno)) }
                break
            }
            let bytes: [UInt8] = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: UInt8.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) {
                    Array(UnsafeBufferPointer(start: $0, count: strlen(UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))))
                }
            }
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            guard let name = String(validating: bytes, as: UTF8.self) else { return .failure(.invalidName(bytes)) }
            names.append(name)
        }
        names.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return .success(names)
    }

    /// The target of the symbolic link at `path`.
    static func readLink(_ path: String) -> Result<String, Failure> {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return .failure(.system(errno)) }
        let bytes = buffer[0..<count].map { UInt8(bitPattern: $0) }
        guard let target = String(validating: bytes, as: UTF8.self) else { return .failure(.invalidName(bytes)) }
        return .success(target)
    }
}
