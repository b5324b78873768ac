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
        // Paths are rendered only for a message: a 10,000-device topology is checked at every
        // load, and building each device's path string up front was most of the work.
        var names = DeviceNameRegistry<DevicePlace>()
        var groupIndex: [Int: Int] = [:]   // group id -> index of the group that has it first
        func fail(_ path: String, _ message: String) -> TopologyError {
            TopologyError(source: source, path: path, message: message)
        }
        func checkDevice(_ device: Device, _ place: DevicePlace) throws(TopologyError) {
            if let problem = TopologyNames.problem(with: device.name, what: "device name") {
                throw fail(place.path(key: "name"), problem)
            }
            if let first = names.register(device.name, at: place) {
                throw fail(place.path(key: "name"), TopologyNames.duplicateMessage(device.name, firstAt: first.path(key: "name")))
            }
            if let driver = device.driver, let problem = TopologyNames.problem(with: driver, what: "driver name") {
                throw fail(place.path(key: "driver"), problem)
            }
            if let problem = device.pci.problem() {
                throw fail(place.path(key: problem.key), problem.message)
            }
        }
        func idPath(_ g: Int) -> String { JSONPath.appending(JSONPath.appending("$.iommu_groups", index: g), key: "id") }
        for (g, group) in iommuGroups.enumerated() {
            guard group.id >= 0, group.id <= Int(Int32.max) else {
                throw fail(idPath(g), "expected an integer from 0 to 2147483647, found \(group.id)")
            }
            if let first = groupIndex[group.id] {
                throw fail(idPath(g), "duplicate IOMMU group id \(group.id) (first at \(idPath(first)))")
            }
            groupIndex[group.id] = g
            for d in group.devices.indices {
                try checkDevice(group.devices[d], .group(g, d))
            }
        }
        for (d, device) in noIOMMUDevices.enumerated() {
            try checkDevice(device, .noIOMMU(d))
        }
        for (d, device) in emulatedDevices.enumerated() {
            try checkDevice(Device(name: device.name), .emulated(d))
        }
    }

    /// Where `validate` found a device, rendered as a JSON path only for a message.
    private enum DevicePlace {
        case group(Int, Int)
        case noIOMMU(Int)
        case emulated(Int)

        /// `$.iommu_groups[g].devices[d].<key>` and the like.
        func path(key: String) -> String {
            let device: String
            switch self {
            case .group(let g, let d): device = "$.iommu_groups[\(g)].devices[\(d)]"
            case .noIOMMU(let d): device = "$.noiommu_devices[\(d)]"
            case .emulated(let d): device = "$.emulated_devices[\(d)]"
            }
            return JSONPath.appending(device, key: key)
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
        // ASCII (every name a topology really has): the same checks in the same order on bytes,
        // without a Unicode property lookup per character (a 10,000-device topology checks each
        // name twice). A name with a non-ASCII byte takes the scalar loop from its start.
        asciiOnly: do {
            for byte in name.utf8 {
                if byte >= 0x80 { break asciiOnly }
                if byte == UInt8(ascii: "/") { return "\(what) must not contain '/'" }
                if byte == 0 { return "\(what) must not contain NUL" }
                if byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) { return "\(what) must not contain whitespace" }
                if byte < 0x20 || byte == 0x7F { return "\(what) must not contain control characters" }
            }
            return nil
        }
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
/// kernel compares names), with where each was first seen (a rendered path, or anything that renders
/// one when a message needs it).
struct DeviceNameRegistry<Location> {
    private var firstSeen: [UTF8Key: Location] = [:]

    /// Records `name` at `location`; returns where it was first seen when it is a duplicate.
    mutating func register(_ name: String, at location: Location) -> Location? {
        let key = UTF8Key(name)
        if let first = firstSeen[key] { return first }
        firstSeen[key] = location
        return nil
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
