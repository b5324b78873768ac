// SPDX-License-Identifier: Apache-2.0
// JSON to TopologySpec: the schema of the JSON form (TopologySpec.swift documents it), checked in
// document order, every error naming the JSON path, line and column.

/// Turns a parsed JSON tree into a `TopologySpec`, checking the schema in document order.
///
/// JSON paths are rendered only for an error: every function takes its value's path as a closure
/// (non-escaping, so nothing is allocated), and where a message must say where something was first
/// seen (a duplicate name or group id) the decoder keeps that value's byte offset and finds its
/// path in the tree when it needs it. Building each member's path string up front was most of the
/// decoding of a 10,000-device topology.
struct TopologyDecoder {
    /// A JSON path, rendered on demand.
    typealias Path = () -> String

    let source: String
    let text: [UInt8]
    private var root = JSONNode(value: .null, offset: 0)
    /// Device names seen, with the offset of the first one's value.
    private var names = DeviceNameRegistry<Int>()
    /// Group ids seen, with the offset of the first one's value.
    private var groupIDs: [Int: Int] = [:]

    init(source: String, text: [UInt8]) {
        self.source = source
        self.text = text
    }

    /// The JSON path of the value that starts at byte `offset` (a value first seen there).
    private func pathOfValue(at offset: Int) -> String {
        var components: [JSONPathComponent] = []
        func find(_ node: JSONNode) -> Bool {
            if node.offset == offset { return true }
            switch node.value {
            case .object(let members):
                for m in members {
                    components.append(.key(m.key))
                    if find(m.value) { return true }
                    components.removeLast()
                }
            case .array(let elements):
                for (i, e) in elements.enumerated() {
                    components.append(.index(i))
                    if find(e) { return true }
                    components.removeLast()
                }
            default: break
            }
            return false
        }
        return find(root) ? JSONPath.render(components) : JSONPath.root
    }

    private func fail(_ path: String, _ message: String, at offset: Int) -> TopologyError {
        let (line, column) = jsonLineAndColumn(in: text, offset: offset)
        return TopologyError(source: source, path: path, message: message, line: line, column: column)
    }

    private func object(_ node: JSONNode, _ path: Path) throws(TopologyError) -> [JSONMember] {
        guard case .object(let members) = node.value else {
            throw fail(path(), "expected an object, found \(node.value.kindDescription)", at: node.offset)
        }
        return members
    }

    private func array(_ node: JSONNode, _ path: Path) throws(TopologyError) -> [JSONNode] {
        guard case .array(let elements) = node.value else {
            throw fail(path(), "expected an array, found \(node.value.kindDescription)", at: node.offset)
        }
        return elements
    }

    private func bool(_ node: JSONNode, _ path: Path) throws(TopologyError) -> Bool {
        guard case .bool(let value) = node.value else {
            throw fail(path(), "expected a boolean, found \(node.value.kindDescription)", at: node.offset)
        }
        return value
    }

    /// A non-negative integer up to `max`: a JSON integer, or a string holding one in decimal or
    /// hexadecimal with "0x" ("0x1af4", as sysfs writes ids).
    private func integer(_ node: JSONNode, _ path: Path, max: UInt64) throws(TopologyError) -> UInt64 {
        let expected = "expected an integer from 0 to \(max) (a number, or a string such as \"0x\(String(max, radix: 16))\")"
        let value: UInt64?
        switch node.value {
        case .number(let number): value = number.int64Value.flatMap { $0 >= 0 ? UInt64($0) : nil }
        case .string(let text): value = PCIDeviceIdentity.parseInteger(text)
        default: throw fail(path(), "\(expected), found \(node.value.kindDescription)", at: node.offset)
        }
        guard let value, value <= max else {
            var shown: String
            switch node.value {
            case .number(let n): shown = n.text
            case .string(let t): shown = JSONPath.quoted(t)
            default: shown = ""
            }
            if shown.utf8.count > 40 { shown = String(shown.prefix(40)) + "..." }
            throw fail(path(), "\(expected), found \(shown)", at: node.offset)
        }
        return value
    }

    private func string(_ node: JSONNode, _ path: Path) throws(TopologyError) -> String {
        guard case .string(let text) = node.value else {
            throw fail(path(), "expected a string, found \(node.value.kindDescription)", at: node.offset)
        }
        return text
    }

    /// A `bars` element written as an object: `{"size": n, "type": "mem32"|"mem64"|"io",
    /// "prefetchable": bool}` (type defaults to mem32, prefetchable to false).
    private func bar(_ node: JSONNode, _ path: Path) throws(TopologyError) -> (UInt64, PCIBARType, Bool) {
        var size: UInt64?
        var type = PCIBARType.memory32
        var prefetchable = false
        for member in try object(node, path) {
            let key = member.key   // captured alone: capturing `member` copied the whole member per use
            func memberPath() -> String { JSONPath.appending(path(), key: key) }
            switch member.key {
            case "size": size = try integer(member.value, memberPath, max: 1 << 36)
            case "type":
                let text = try string(member.value, memberPath)
                guard let t = PCIBARType(rawValue: text) else {
                    throw fail(memberPath(), "expected \"mem32\", \"mem64\" or \"io\", found \(JSONPath.quoted(text))",
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

    private func unknownKey(_ member: JSONMember, _ path: Path, expected: String) -> TopologyError {
        fail(JSONPath.appending(path(), key: member.key),
             "unknown key \(JSONPath.quoted(member.key)) (expected one of: \(expected))", at: member.keyOffset)
    }

    private func missingKey(_ key: String, _ node: JSONNode, _ path: Path) -> TopologyError {
        fail(path(), "missing required key \"\(key)\"", at: node.offset)
    }

    mutating func decode(_ root: JSONNode) throws(TopologyError) -> TopologySpec {
        self.root = root
        var spec = TopologySpec()
        for member in try object(root, { JSONPath.root }) {
            let key = member.key
            func path() -> String { JSONPath.appending(JSONPath.root, key: key) }
            switch member.key {
            case "config":
                spec.config = try decodeConfig(member.value, path)
            case "iommu_groups":
                for (index, element) in try array(member.value, path).enumerated() {
                    spec.iommuGroups.append(try decodeGroup(element, { JSONPath.appending(path(), index: index) }))
                }
            case "noiommu_devices":
                for (index, element) in try array(member.value, path).enumerated() {
                    spec.noIOMMUDevices.append(try decodeDevice(element, { JSONPath.appending(path(), index: index) },
                                                                noIOMMU: true))
                }
            case "emulated_devices":
                for (index, element) in try array(member.value, path).enumerated() {
                    spec.emulatedDevices.append(try decodeEmulated(element, { JSONPath.appending(path(), index: index) }))
                }
            default:
                throw unknownKey(member, { JSONPath.root },
                                 expected: "config, iommu_groups, noiommu_devices, emulated_devices")
            }
        }
        return spec
    }

    private func decodeConfig(_ node: JSONNode, _ path: Path) throws(TopologyError) -> TopologySpec.Config {
        var config = TopologySpec.Config()
        for member in try object(node, path) {
            let key = member.key   // captured alone: capturing `member` copied the whole member per use
            func memberPath() -> String { JSONPath.appending(path(), key: key) }
            switch member.key {
            case "noiommu": config.noiommu = try bool(member.value, memberPath)
            case "spapr_tce_iommu": config.spaprTCEIOMMU = try bool(member.value, memberPath)
            case "iommufd": config.iommufd = try bool(member.value, memberPath)
            default: throw unknownKey(member, path, expected: "noiommu, spapr_tce_iommu, iommufd")
            }
        }
        return config
    }

    private mutating func decodeGroup(_ node: JSONNode, _ path: Path) throws(TopologyError) -> TopologySpec.IOMMUGroup {
        var id: Int?
        var devices: [TopologySpec.Device]?
        for member in try object(node, path) {
            let key = member.key   // captured alone: capturing `member` copied the whole member per use
            func memberPath() -> String { JSONPath.appending(path(), key: key) }
            switch member.key {
            case "id":
                let value = try groupID(member.value, memberPath)
                if let first = groupIDs[value] {
                    throw fail(memberPath(), "duplicate IOMMU group id \(value) (first at \(pathOfValue(at: first)))",
                               at: member.value.offset)
                }
                groupIDs[value] = member.value.offset
                id = value
            case "devices":
                var list: [TopologySpec.Device] = []
                for (index, element) in try array(member.value, memberPath).enumerated() {
                    list.append(try decodeDevice(element, { JSONPath.appending(memberPath(), index: index) }))
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

    private func groupID(_ node: JSONNode, _ path: Path) throws(TopologyError) -> Int {
        let expected = "expected an integer from 0 to 2147483647"
        guard case .number(let number) = node.value else {
            throw fail(path(), "\(expected), found \(node.value.kindDescription)", at: node.offset)
        }
        guard let value = number.int64Value, value >= 0, value <= Int64(Int32.max) else {
            var shown = number.text
            if shown.utf8.count > 40 { shown = String(shown.prefix(40)) + "..." }
            throw fail(path(), "\(expected), found \(shown)", at: node.offset)
        }
        return Int(value)
    }

    private mutating func name(_ node: JSONNode, _ path: Path, isDeviceName: Bool) throws(TopologyError) -> String {
        let what = isDeviceName ? "device name" : "driver name"
        guard case .string(let text) = node.value else {
            let expected = isDeviceName ? "a string" : "a string or null"
            throw fail(path(), "expected \(expected), found \(node.value.kindDescription)", at: node.offset)
        }
        if let problem = TopologyNames.problem(with: text, what: what) {
            throw fail(path(), problem, at: node.offset)
        }
        if isDeviceName, let first = names.register(text, at: node.offset) {
            throw fail(path(), TopologyNames.duplicateMessage(text, firstAt: pathOfValue(at: first)), at: node.offset)
        }
        return text
    }

    private mutating func decodeDevice(_ node: JSONNode, _ path: Path,
                                       noIOMMU: Bool = false) throws(TopologyError) -> TopologySpec.Device {
        var device = TopologySpec.Device(name: "")
        var hasName = false
        for member in try object(node, path) {
            let key = member.key   // captured alone: capturing `member` copied the whole member per use
            func memberPath() -> String { JSONPath.appending(path(), key: key) }
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
                    throw fail(memberPath(), "expected at most 6 BAR sizes, found \(elements.count)", at: member.value.offset)
                }
                var bars = [UInt64](repeating: 0, count: 6)
                var types = [PCIBARType](repeating: .memory32, count: 6)
                var prefetchable = [Bool](repeating: false, count: 6)
                for (i, e) in elements.enumerated() {
                    func elementPath() -> String { JSONPath.appending(memberPath(), index: i) }
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
                    throw fail(memberPath(), "expected \"plain\" or \"virtio-net\", found \(JSONPath.quoted(text))",
                               at: member.value.offset)
                }
                device.pci.personality = kind
            case "mac":
                let text = try string(member.value, memberPath)
                guard let mac = PCIDeviceIdentity.parseMAC(text) else {
                    throw fail(memberPath(), "expected a MAC address such as \"52:54:00:12:34:56\", found \(JSONPath.quoted(text))",
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
            throw fail(JSONPath.appending(path(), key: problem.key), problem.message, at: member?.value.offset ?? node.offset)
        }
        return device
    }

    private mutating func decodeEmulated(_ node: JSONNode, _ path: Path) throws(TopologyError) -> TopologySpec.EmulatedDevice {
        var deviceName: String?
        for member in try object(node, path) {
            switch member.key {
            case "name": deviceName = try name(member.value, { JSONPath.appending(path(), key: "name") }, isDeviceName: true)
            default: throw unknownKey(member, path, expected: "name")
            }
        }
        guard let deviceName else { throw missingKey("name", node, path) }
        return TopologySpec.EmulatedDevice(name: deviceName)
    }
}
