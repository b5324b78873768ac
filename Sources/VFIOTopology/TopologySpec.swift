// SPDX-License-Identifier: Apache-2.0
// The topology description: the "hardware" a subsystem discovers (IOMMU groups and their devices,
// devices without an IOMMU, emulated devices) and the configuration it runs with. One value type,
// produced from JSON (`parse(json:source:)`), from a sysfs-shaped directory or a JSON file
// (`load(path:)`), or built in code; every way in is validated the same, with errors that name the
// source, the JSON path (or filesystem path) and what was expected.

/// A topology: the devices the model "discovers" and the configuration it runs with.
///
/// JSON form (every section and key optional, except a group's `id` and `devices` and a device's
/// `name`):
/// ```json
/// { "config": { "noiommu": false, "spapr_tce_iommu": false, "iommufd": true },
///   "iommu_groups": [ { "id": 26, "devices": [ { "name": "0000:06:0d.0", "driver": "vfio-pci",
///                       "cache_coherency": true, "enforce_cache_coherency": true } ] } ],
///   "noiommu_devices": [ { "name": "0000:09:00.0", "driver": "vfio-pci" } ],
///   "emulated_devices": [ { "name": "mdev-0" } ] }
/// ```
/// Rules checked on every way in: group ids are integers in 0...2147483647 and unique; device names
/// are unique across all three sections, non-empty, at most 255 bytes, not "." or "..", and contain
/// no '/', NUL, whitespace or control characters; a driver, when present, follows the same rules.
/// In JSON, `"driver": null` means unbound (as does leaving it out); unknown keys, wrong types and
/// duplicate keys are errors. A group may have an empty `devices` array.
public struct TopologySpec: Equatable, Sendable {
    /// The configuration section (`"config"`): Kconfig options and module parameters.
    public struct Config: Equatable, Sendable {
        /// `"noiommu"`: CONFIG_VFIO_NOIOMMU with `enable_unsafe_noiommu_mode` on (default false).
        public var noiommu = false
        /// `"spapr_tce_iommu"`: CONFIG_SPAPR_TCE_IOMMU (default false).
        public var spaprTCEIOMMU = false
        /// `"iommufd"`: CONFIG_IOMMUFD, `/dev/iommu` exists (default true).
        public var iommufd = true

        /// A configuration; the defaults are the x86 model's.
        public init(noiommu: Bool = false, spaprTCEIOMMU: Bool = false, iommufd: Bool = true) {
            self.noiommu = noiommu
            self.spaprTCEIOMMU = spaprTCEIOMMU
            self.iommufd = iommufd
        }
    }

    /// A physical device (`"iommu_groups[].devices[]"` or `"noiommu_devices[]"`).
    public struct Device: Equatable, Sendable {
        /// `"name"`: the device name, e.g. a PCI address "0000:06:0d.0".
        public var name: String
        /// `"driver"`: the bound driver ("vfio-pci", "e1000e", ...), or nil when unbound.
        /// A name beginning with "vfio" is a VFIO bus driver; "pci-stub" and "pcieport" leave the
        /// group viable; any other driver owns DMA and makes the IOMMU group not viable.
        public var driver: String?
        /// `"cache_coherency"`: IOMMU_CAP_CACHE_COHERENCY (default true). A VFIO device without
        /// it fails registration with EINVAL.
        public var cacheCoherency = true
        /// `"enforce_cache_coherency"`: the IOMMU domain can enforce coherency (default true).
        public var enforceCacheCoherency = true
        /// What the PCI function is, for the device model vfio-pci puts behind it: `"vendor_id"`,
        /// `"device_id"`, `"class_code"`, `"bars"`, `"rom_size"`, `"msi"`, `"msix"`, `"msix_bar"`,
        /// `"pcie"`, `"intx"`, `"reset"`, `"personality"`, `"mac"`, `"link_up"` (see
        /// `PCIDeviceIdentity`; defaults when absent).
        public var pci = PCIDeviceIdentity()
        /// `"iommu_group"` (no-IOMMU devices only): the number the kernel gave the device's
        /// "vfio-noiommu" group, as a real sysfs tree's `iommu_group` link shows it, so
        /// `/dev/vfio/noiommu-<N>` is where the tree says. Nil (the default), or a number another
        /// group holds: the smallest free number, as `iommu_group_alloc()` picks it.
        public var noIOMMUGroupID: Int?

        /// A device; unbound, fully coherent and a default PCI function unless told otherwise.
        public init(name: String, driver: String? = nil, cacheCoherency: Bool = true,
                    enforceCacheCoherency: Bool = true, pci: PCIDeviceIdentity = PCIDeviceIdentity()) {
            self.name = name
            self.driver = driver
            self.cacheCoherency = cacheCoherency
            self.enforceCacheCoherency = enforceCacheCoherency
            self.pci = pci
        }
    }

    /// An IOMMU group (`"iommu_groups[]"`) and its member devices.
    public struct IOMMUGroup: Equatable, Sendable {
        /// `"id"`: the group number (`/dev/vfio/<id>`), 0...2147483647.
        public var id: Int
        /// `"devices"`: the member devices, in the order given.
        public var devices: [Device]

        /// A group with its devices.
        public init(id: Int, devices: [Device]) {
            self.id = id
            self.devices = devices
        }
    }

    /// An emulated (mdev-style) device (`"emulated_devices[]"`), registered with
    /// `vfio_register_emulated_iommu_dev` and given a fake IOMMU group of its own.
    public struct EmulatedDevice: Equatable, Sendable {
        /// `"name"`: the device name.
        public var name: String

        /// An emulated device.
        public init(name: String) { self.name = name }
    }

    /// `"config"`: the configuration.
    public var config = Config()
    /// `"iommu_groups"`: IOMMU groups, in the order given.
    public var iommuGroups: [IOMMUGroup] = []
    /// `"noiommu_devices"`: devices with no IOMMU group (NO_IOMMU groups when `config.noiommu`).
    public var noIOMMUDevices: [Device] = []
    /// `"emulated_devices"`: emulated devices.
    public var emulatedDevices: [EmulatedDevice] = []

    /// A topology built in code; check it with `validate(source:)`.
    public init(config: Config = Config(), iommuGroups: [IOMMUGroup] = [], noIOMMUDevices: [Device] = [],
                emulatedDevices: [EmulatedDevice] = []) {
        self.config = config
        self.iommuGroups = iommuGroups
        self.noIOMMUDevices = noIOMMUDevices
        self.emulatedDevices = emulatedDevices
    }

    /// The largest topology file `load(path:)` and `parse(json:source:)` accept: 16 MiB.
    public static let maximumFileSize = 16 * 1024 * 1024

    /// Parses and validates a JSON topology.
    ///
    /// - Parameters:
    ///   - json: the UTF-8 text (a leading byte-order mark is ignored).
    ///   - source: what errors name as the source, usually the file path.
    /// - Throws: a `TopologyError` for a syntax error (with line and column), or for the first
    ///   validation error in document order (with the JSON path, and the line and column of the
    ///   offending value).
    public static func parse(json: [UInt8], source: String) throws(TopologyError) -> TopologySpec {
        if json.count > maximumFileSize {
            throw TopologyError(source: source, path: "",
                                message: "input is larger than 16 MiB (\(json.count) bytes)")
        }
        let root: JSONNode
        do {
            root = try JSONParser.parse(json)
        } catch {
            let (line, column) = jsonLineAndColumn(in: json, offset: error.offset)
            throw TopologyError(source: source, path: error.path, message: error.message, line: line, column: column)
        }
        var decoder = TopologyDecoder(source: source, text: json)
        return try decoder.decode(root)
    }

    /// Loads a topology: a JSON file, or a sysfs-shaped directory (see `SysfsTopologyReader`).
    ///
    /// - Throws: a `TopologyError` whose source is `path`: the file cannot be read (with the
    ///   system's reason), is larger than 16 MiB, or is not a valid topology.
    public static func load(path: String) throws(TopologyError) -> TopologySpec {
        switch TopologyFileSystem.kind(of: path) {
        case .failed(let errno):
            throw TopologyError(source: path, path: "",
                                message: "cannot read topology: \(TopologyFileSystem.reason(errno))")
        case .directory:
            return try SysfsTopologyReader(root: path).read()
        case .regular, .other:
            let bytes = try TopologyFileSystem.readFile(path, limit: maximumFileSize, source: path,
                                                        tooLarge: "file is larger than 16 MiB")
            return try parse(json: bytes, source: path)
        }
    }

    /// Checks the rules every topology obeys (group ids, unique and well-formed device and driver
    /// names); for topologies built in code. Errors name JSON-style paths such as
    /// `$.iommu_groups[1].devices[0].name`.
    public func validate(source: String = "<topology>") throws(TopologyError) {
        var names = DeviceNameRegistry()
        var groupIDs: [Int: String] = [:]
        func fail(_ path: String, _ message: String) -> TopologyError {
            TopologyError(source: source, path: path, message: message)
        }
        func checkDevice(_ device: Device, _ path: String) throws(TopologyError) {
            let namePath = JSONPath.appending(path, key: "name")
            if let problem = TopologyNames.problem(with: device.name, what: "device name") {
                throw fail(namePath, problem)
            }
            if let first = names.register(device.name, at: namePath) {
                throw fail(namePath, TopologyNames.duplicateMessage(device.name, firstAt: first))
            }
            if let driver = device.driver, let problem = TopologyNames.problem(with: driver, what: "driver name") {
                throw fail(JSONPath.appending(path, key: "driver"), problem)
            }
            if let problem = device.pci.problem() {
                throw fail(JSONPath.appending(path, key: problem.key), problem.message)
            }
        }
        for (g, group) in iommuGroups.enumerated() {
            let path = JSONPath.appending(JSONPath.appending("$.iommu_groups", index: g), key: "id")
            guard group.id >= 0, group.id <= Int(Int32.max) else {
                throw fail(path, "expected an integer from 0 to 2147483647, found \(group.id)")
            }
            if let first = groupIDs[group.id] {
                throw fail(path, "duplicate IOMMU group id \(group.id) (first at \(first))")
            }
            groupIDs[group.id] = path
            for (d, device) in group.devices.enumerated() {
                try checkDevice(device, "$.iommu_groups[\(g)].devices[\(d)]")
            }
        }
        for (d, device) in noIOMMUDevices.enumerated() {
            try checkDevice(device, "$.noiommu_devices[\(d)]")
        }
        for (d, device) in emulatedDevices.enumerated() {
            try checkDevice(Device(name: device.name), "$.emulated_devices[\(d)]")
        }
    }

    /// The topology as JSON text that `parse(json:source:)` reads back to an equal value: two-space
    /// indentation, every `config` key, and device keys only where they differ from the defaults.
    public func jsonText() -> String {
        func device(_ device: Device) -> String {
            var text = "{ \"name\": " + JSONPath.quoted(device.name, limit: Int.max)
            if let driver = device.driver { text += ", \"driver\": " + JSONPath.quoted(driver, limit: Int.max) }
            if !device.cacheCoherency { text += ", \"cache_coherency\": false" }
            if !device.enforceCacheCoherency { text += ", \"enforce_cache_coherency\": false" }
            text += device.pci.jsonMembers()
            if let id = device.noIOMMUGroupID { text += ", \"iommu_group\": \(id)" }
            return text + " }"
        }
        func list(_ items: [String], indent: String) -> String {
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { indent + "  " + $0 }.joined(separator: ",\n") + "\n" + indent + "]"
        }
        let groups = iommuGroups.map { group in
            "{ \"id\": \(group.id), \"devices\": " + list(group.devices.map(device), indent: "    ") + " }"
        }
        let emulated = emulatedDevices.map { "{ \"name\": " + JSONPath.quoted($0.name, limit: Int.max) + " }" }
        var text = "{\n"
        text += "  \"config\": { \"noiommu\": \(config.noiommu), \"spapr_tce_iommu\": \(config.spaprTCEIOMMU), "
        text += "\"iommufd\": \(config.iommufd) },\n"
        text += "  \"iommu_groups\": " + list(groups, indent: "  ") + ",\n"
        text += "  \"noiommu_devices\": " + list(noIOMMUDevices.map(device), indent: "  ") + ",\n"
        text += "  \"emulated_devices\": " + list(emulated, indent: "  ") + "\n"
        return text + "}\n"
    }
}

/// A topology that could not be read or is not valid: where, and what was expected.
public struct TopologyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file or directory path the topology came from (or "<built-in>").
    public var source: String
    /// Where in it: a JSON path like `$.iommu_groups[0].devices[1].cache_coherency`, a filesystem
    /// path for sysfs-shaped directories, or "" when the error concerns the whole source (the
    /// file cannot be read, is too large).
    public var path: String
    /// What was expected or wrong, e.g. "expected a boolean, found a string".
    public var message: String
    /// The 1-based line of the offending text (JSON only).
    public var line: Int?
    /// The 1-based column (in Unicode scalars) of the offending text (JSON only).
    public var column: Int?

    /// An error; `line` and `column` when the position in JSON text is known.
    public init(source: String, path: String, message: String, line: Int? = nil, column: Int? = nil) {
        self.source = source
        self.path = path
        self.message = message
        self.line = line
        self.column = column
    }

    /// "<source>: <path>: <message>", plus " (line L, column C)" when known; the path part is left
    /// out when `path` is empty.
    public var description: String {
        var text = source + ": "
        if !path.isEmpty { text += path + ": " }
        text += message
        if let line, let column { text += " (line \(line), column \(column))" }
        return text
    }
}

// MARK: - Name rules shared by every way in

/// The rules for device and driver names.
enum TopologyNames {
    /// The longest name accepted, in UTF-8 bytes (NAME_MAX).
    static let maximumLength = 255

    /// Why `name` is not acceptable, or nil. `what` starts the message ("device name", ...).
    static func problem(with name: String, what: String) -> String? {
        let length = name.utf8.count
        if length == 0 { return "\(what) must not be empty" }
        if length > maximumLength { return "\(what) is \(length) bytes long (at most \(maximumLength) allowed)" }
        if name == "." || name == ".." { return "\(what) must not be \".\" or \"..\"" }
        for scalar in name.unicodeScalars {
            if scalar == "/" { return "\(what) must not contain '/'" }
            if scalar.value == 0 { return "\(what) must not contain NUL" }
            if scalar.properties.isWhitespace { return "\(what) must not contain whitespace" }
            if scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value <= 0x9F) {
                return "\(what) must not contain control characters"
            }
        }
        return nil
    }

    /// The message for a device name seen twice.
    static func duplicateMessage(_ name: String, firstAt first: String) -> String {
        "duplicate device name \(JSONPath.quoted(name)) (first at \(first))"
    }
}

/// Device names seen so far, compared byte for byte (not by Unicode canonical equivalence, as the
/// kernel compares names), with where each was first seen.
struct DeviceNameRegistry {
    private var firstSeen: [[UInt8]: String] = [:]

    /// Records `name` at `location`; returns where it was first seen when it is a duplicate.
    mutating func register(_ name: String, at location: String) -> String? {
        let key = Array(name.utf8)
        if let first = firstSeen[key] { return first }
        firstSeen[key] = location
        return nil
    }
}

// MARK: - JSON to TopologySpec

/// Turns a parsed JSON tree into a `TopologySpec`, checking the schema in document order.
struct TopologyDecoder {
    let source: String
    let text: [UInt8]
    private var names = DeviceNameRegistry()
    private var groupIDs: [Int: String] = [:]

    init(source: String, text: [UInt8]) {
        self.source = source
        self.text = text
    }

    private func fail(_ path: String, _ message: String, at offset: Int) -> TopologyError {
        let (line, column) = jsonLineAndColumn(in: text, offset: offset)
        return TopologyError(source: source, path: path, message: message, line: line, column: column)
    }

    private func object(_ node: JSONNode, _ path: String) throws(TopologyError) -> [JSONMember] {
        guard case .object(let members) = node.value else {
            throw fail(path, "expected an object, found \(node.value.kindDescription)", at: node.offset)
        }
        return members
    }

    private func array(_ node: JSONNode, _ path: String) throws(TopologyError) -> [JSONNode] {
        guard case .array(let elements) = node.value else {
            throw fail(path, "expected an array, found \(node.value.kindDescription)", at: node.offset)
        }
        return elements
    }

    private func bool(_ node: JSONNode, _ path: String) throws(TopologyError) -> Bool {
        guard case .bool(let value) = node.value else {
            throw fail(path, "expected a boolean, found \(node.value.kindDescription)", at: node.offset)
        }
        return value
    }

    /// A non-negative integer up to `max`: a JSON integer, or a string holding one in decimal or
    /// hexadecimal with "0x" ("0x1af4", as sysfs writes ids).
    private func integer(_ node: JSONNode, _ path: String, max: UInt64) throws(TopologyError) -> UInt64 {
        let expected = "expected an integer from 0 to \(max) (a number, or a string such as \"0x\(String(max, radix: 16))\")"
        let value: UInt64?
        switch node.value {
        case .number(let number): value = number.int64Value.flatMap { $0 >= 0 ? UInt64($0) : nil }
        case .string(let text): value = PCIDeviceIdentity.parseInteger(text)
        default: throw fail(path, "\(expected), found \(node.value.kindDescription)", at: node.offset)
        }
        guard let value, value <= max else {
            var shown: String
            switch node.value {
            case .number(let n): shown = n.text
            case .string(let t): shown = JSONPath.quoted(t)
            default: shown = ""
            }
            if shown.utf8.count > 40 { shown = String(shown.prefix(40)) + "..." }
            throw fail(path, "\(expected), found \(shown)", at: node.offset)
        }
        return value
    }

    private func string(_ node: JSONNode, _ path: String) throws(TopologyError) -> String {
        guard case .string(let text) = node.value else {
            throw fail(path, "expected a string, found \(node.value.kindDescription)", at: node.offset)
        }
        return text
    }

    /// A `bars` element written as an object: `{"size": n, "type": "mem32"|"mem64"|"io",
    /// "prefetchable": bool}` (type defaults to mem32, prefetchable to false).
    private func bar(_ node: JSONNode, _ path: String) throws(TopologyError) -> (UInt64, PCIBARType, Bool) {
        var size: UInt64?
        var type = PCIBARType.memory32
        var prefetchable = false
        for member in try object(node, path) {
            let memberPath = JSONPath.appending(path, key: member.key)
            switch member.key {
            case "size": size = try integer(member.value, memberPath, max: 1 << 36)
            case "type":
                let text = try string(member.value, memberPath)
                guard let t = PCIBARType(rawValue: text) else {
                    throw fail(memberPath, "expected \"mem32\", \"mem64\" or \"io\", found \(JSONPath.quoted(text))",
                               at: member.value.offset)
                }
                type = t
            case "prefetchable": prefetchable = try bool(member.value, memberPath)
            default: throw unknownKey(member, path, expected: "size, type, prefetchable")
            }
        }
        guard let size else { throw missingKey("size", node, path) }
        return (size, type, prefetchable)
    }

    private func unknownKey(_ member: JSONMember, _ path: String, expected: String) -> TopologyError {
        fail(JSONPath.appending(path, key: member.key),
             "unknown key \(JSONPath.quoted(member.key)) (expected one of: \(expected))", at: member.keyOffset)
    }

    private func missingKey(_ key: String, _ node: JSONNode, _ path: String) -> TopologyError {
        fail(path, "missing required key \"\(key)\"", at: node.offset)
    }

    mutating func decode(_ root: JSONNode) throws(TopologyError) -> TopologySpec {
        var spec = TopologySpec()
        for member in try object(root, JSONPath.root) {
            let path = JSONPath.appending(JSONPath.root, key: member.key)
            switch member.key {
            case "config":
                spec.config = try decodeConfig(member.value, path)
            case "iommu_groups":
                for (index, element) in try array(member.value, path).enumerated() {
                    spec.iommuGroups.append(try decodeGroup(element, JSONPath.appending(path, index: index)))
                }
            case "noiommu_devices":
                for (index, element) in try array(member.value, path).enumerated() {
                    spec.noIOMMUDevices.append(try decodeDevice(element, JSONPath.appending(path, index: index),
                                                                noIOMMU: true))
                }
            case "emulated_devices":
                for (index, element) in try array(member.value, path).enumerated() {
                    spec.emulatedDevices.append(try decodeEmulated(element, JSONPath.appending(path, index: index)))
                }
            default:
                throw unknownKey(member, JSONPath.root,
                                 expected: "config, iommu_groups, noiommu_devices, emulated_devices")
            }
        }
        return spec
    }

    private func decodeConfig(_ node: JSONNode, _ path: String) throws(TopologyError) -> TopologySpec.Config {
        var config = TopologySpec.Config()
        for member in try object(node, path) {
            let memberPath = JSONPath.appending(path, key: member.key)
            switch member.key {
            case "noiommu": config.noiommu = try bool(member.value, memberPath)
            case "spapr_tce_iommu": config.spaprTCEIOMMU = try bool(member.value, memberPath)
            case "iommufd": config.iommufd = try bool(member.value, memberPath)
            default: throw unknownKey(member, path, expected: "noiommu, spapr_tce_iommu, iommufd")
            }
        }
        return config
    }

    private mutating func decodeGroup(_ node: JSONNode, _ path: String) throws(TopologyError) -> TopologySpec.IOMMUGroup {
        var id: Int?
        var devices: [TopologySpec.Device]?
        for member in try object(node, path) {
            let memberPath = JSONPath.appending(path, key: member.key)
            switch member.key {
            case "id":
                let value = try groupID(member.value, memberPath)
                if let first = groupIDs[value] {
                    throw fail(memberPath, "duplicate IOMMU group id \(value) (first at \(first))", at: member.value.offset)
                }
                groupIDs[value] = memberPath
                id = value
            case "devices":
                var list: [TopologySpec.Device] = []
                for (index, element) in try array(member.value, memberPath).enumerated() {
                    list.append(try decodeDevice(element, JSONPath.appending(memberPath, index: index)))
                }
                devices = list
            default:
                throw unknownKey(member, path, expected: "id, devices")
            }
        }
        guard let id else { throw missingKey("id", node, path) }
        guard let devices else { throw missingKey("devices", node, path) }
        return TopologySpec.IOMMUGroup(id: id, devices: devices)
    }

    private func groupID(_ node: JSONNode, _ path: String) throws(TopologyError) -> Int {
        let expected = "expected an integer from 0 to 2147483647"
        guard case .number(let number) = node.value else {
            throw fail(path, "\(expected), found \(node.value.kindDescription)", at: node.offset)
        }
        guard let value = number.int64Value, value >= 0, value <= Int64(Int32.max) else {
            var shown = number.text
            if shown.utf8.count > 40 { shown = String(shown.prefix(40)) + "..." }
            throw fail(path, "\(expected), found \(shown)", at: node.offset)
        }
        return Int(value)
    }

    private mutating func name(_ node: JSONNode, _ path: String, isDeviceName: Bool) throws(TopologyError) -> String {
        let what = isDeviceName ? "device name" : "driver name"
        guard case .string(let text) = node.value else {
            let expected = isDeviceName ? "a string" : "a string or null"
            throw fail(path, "expected \(expected), found \(node.value.kindDescription)", at: node.offset)
        }
        if let problem = TopologyNames.problem(with: text, what: what) {
            throw fail(path, problem, at: node.offset)
        }
        if isDeviceName, let first = names.register(text, at: path) {
            throw fail(path, TopologyNames.duplicateMessage(text, firstAt: first), at: node.offset)
        }
        return text
    }

    private mutating func decodeDevice(_ node: JSONNode, _ path: String,
                                       noIOMMU: Bool = false) throws(TopologyError) -> TopologySpec.Device {
        var device = TopologySpec.Device(name: "")
        var hasName = false
        for member in try object(node, path) {
            let memberPath = JSONPath.appending(path, key: member.key)
            switch member.key {
            case "name":
                device.name = try name(member.value, memberPath, isDeviceName: true)
                hasName = true
            case "driver":
                if case .null = member.value.value {
                    device.driver = nil
                } else {
                    device.driver = try name(member.value, memberPath, isDeviceName: false)
                }
            case "cache_coherency": device.cacheCoherency = try bool(member.value, memberPath)
            case "enforce_cache_coherency": device.enforceCacheCoherency = try bool(member.value, memberPath)
            case "vendor_id": device.pci.vendorID = UInt16(try integer(member.value, memberPath, max: 0xffff))
            case "device_id": device.pci.deviceID = UInt16(try integer(member.value, memberPath, max: 0xffff))
            case "class_code": device.pci.classCode = UInt32(try integer(member.value, memberPath, max: 0xffffff))
            case "bars":
                let elements = try array(member.value, memberPath)
                guard elements.count <= 6 else {
                    throw fail(memberPath, "expected at most 6 BAR sizes, found \(elements.count)", at: member.value.offset)
                }
                var bars = [UInt64](repeating: 0, count: 6)
                var types = [PCIBARType](repeating: .memory32, count: 6)
                var prefetchable = [Bool](repeating: false, count: 6)
                for (i, e) in elements.enumerated() {
                    let elementPath = JSONPath.appending(memberPath, index: i)
                    if case .object = e.value {
                        (bars[i], types[i], prefetchable[i]) = try bar(e, elementPath)
                    } else {
                        bars[i] = try integer(e, elementPath, max: 1 << 31)
                    }
                }
                device.pci.bars = bars
                device.pci.barTypes = types
                device.pci.barPrefetchable = prefetchable
            case "rom_size": device.pci.romSize = try integer(member.value, memberPath, max: 1 << 24)
            case "msi": device.pci.msiVectors = Int(try integer(member.value, memberPath, max: 32))
            case "msix": device.pci.msixVectors = Int(try integer(member.value, memberPath, max: 2048))
            case "msix_bar": device.pci.msixBAR = Int(try integer(member.value, memberPath, max: 5))
            case "pcie": device.pci.pcie = try bool(member.value, memberPath)
            case "intx": device.pci.intx = try bool(member.value, memberPath)
            case "reset": device.pci.reset = try bool(member.value, memberPath)
            case "personality":
                let text = try string(member.value, memberPath)
                guard let kind = PCIPersonalityKind(rawValue: text) else {
                    throw fail(memberPath, "expected \"plain\" or \"virtio-net\", found \(JSONPath.quoted(text))",
                               at: member.value.offset)
                }
                device.pci.personality = kind
            case "mac":
                let text = try string(member.value, memberPath)
                guard let mac = PCIDeviceIdentity.parseMAC(text) else {
                    throw fail(memberPath, "expected a MAC address such as \"52:54:00:12:34:56\", found \(JSONPath.quoted(text))",
                               at: member.value.offset)
                }
                device.pci.mac = mac
            case "link_up": device.pci.linkUp = try bool(member.value, memberPath)
            case "iommu_group" where noIOMMU:
                device.noIOMMUGroupID = Int(try integer(member.value, memberPath, max: UInt64(Int32.max)))
            default:
                throw unknownKey(member, path, expected: "name, driver, cache_coherency, enforce_cache_coherency, "
                                 + "vendor_id, device_id, class_code, bars, rom_size, msi, msix, msix_bar, pcie, intx, reset, "
                                 + "personality, mac, link_up" + (noIOMMU ? ", iommu_group" : ""))
            }
        }
        guard hasName else { throw missingKey("name", node, path) }
        if let problem = device.pci.problem() {
            let member = (try? object(node, path))?.first { $0.key == problem.key }
            throw fail(JSONPath.appending(path, key: problem.key), problem.message, at: member?.value.offset ?? node.offset)
        }
        return device
    }

    private mutating func decodeEmulated(_ node: JSONNode, _ path: String) throws(TopologyError) -> TopologySpec.EmulatedDevice {
        var deviceName: String?
        for member in try object(node, path) {
            switch member.key {
            case "name": deviceName = try name(member.value, JSONPath.appending(path, key: "name"), isDeviceName: true)
            default: throw unknownKey(member, path, expected: "name")
            }
        }
        guard let deviceName else { throw missingKey("name", node, path) }
        return TopologySpec.EmulatedDevice(name: deviceName)
    }
}

// MARK: - PCI identity in topologies

extension PCIDeviceIdentity {
    /// A non-negative integer written as decimal or as hexadecimal with "0x"/"0X" (sysfs writes
    /// "0x1af4"); surrounding whitespace and a trailing newline are ignored. Nil when it is not one.
    public static func parseInteger(_ text: String) -> UInt64? {
        var t = Substring(text)
        while let c = t.first, c == " " || c == "\t" { t.removeFirst() }
        while let c = t.last, c == " " || c == "\t" || c == "\n" || c == "\r" { t.removeLast() }
        if t.hasPrefix("0x") || t.hasPrefix("0X") {
            let digits = t.dropFirst(2)
            guard !digits.isEmpty, digits.count <= 16 else { return nil }
            return UInt64(digits, radix: 16)
        }
        guard !t.isEmpty, t.count <= 20, t.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(t, radix: 10)
    }

    /// The JSON members (", \"vendor_id\": \"0x1af4\"", ...) for the fields that differ from the
    /// defaults, in the order `jsonText()` writes them.
    func jsonMembers() -> String {
        let d = PCIDeviceIdentity()
        func hex(_ v: UInt64, _ width: Int) -> String {
            let digits = String(v, radix: 16)
            return "\"0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits + "\""
        }
        var text = ""
        if vendorID != d.vendorID { text += ", \"vendor_id\": " + hex(UInt64(vendorID), 4) }
        if deviceID != d.deviceID { text += ", \"device_id\": " + hex(UInt64(deviceID), 4) }
        if classCode != d.classCode { text += ", \"class_code\": " + hex(UInt64(classCode), 6) }
        var sixBars = bars + Array(repeating: 0, count: max(0, 6 - bars.count))
        sixBars = Array(sixBars.prefix(6))
        if sixBars != d.bars || barTypes != d.barTypes || barPrefetchable != d.barPrefetchable {
            var count = 6
            while count > 1, sixBars[count - 1] == 0 { count -= 1 }
            let shown = (0..<count).map { i -> String in
                if barType(i) == .memory32 && !isPrefetchable(i) { return String(sixBars[i]) }
                return "{\"size\": \(sixBars[i]), \"type\": \"\(barType(i).rawValue)\", \"prefetchable\": \(isPrefetchable(i))}"
            }
            text += ", \"bars\": [" + shown.joined(separator: ", ") + "]"
        }
        if romSize != d.romSize { text += ", \"rom_size\": \(romSize)" }
        if msiVectors != d.msiVectors { text += ", \"msi\": \(msiVectors)" }
        if msixVectors != d.msixVectors { text += ", \"msix\": \(msixVectors)" }
        if msixBAR != d.msixBAR { text += ", \"msix_bar\": \(msixBAR)" }
        if pcie != d.pcie { text += ", \"pcie\": \(pcie)" }
        if intx != d.intx { text += ", \"intx\": \(intx)" }
        if reset != d.reset { text += ", \"reset\": \(reset)" }
        if let personality { text += ", \"personality\": \"\(personality.rawValue)\"" }
        if mac != d.mac { text += ", \"mac\": \"\(macString)\"" }
        if linkUp != d.linkUp { text += ", \"link_up\": \(linkUp)" }
        return text
    }
}
