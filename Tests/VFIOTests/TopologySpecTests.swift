// SPDX-License-Identifier: Apache-2.0
import Glibc
import Testing
@testable import VFIO
@testable import VFIOTopology

// MARK: - Helpers

private func parse(_ text: String, source: String = "t.json") throws(TopologyError) -> TopologySpec {
    try TopologySpec.parse(json: Array(text.utf8), source: source)
}

/// The error parsing `bytes` gives, or nil when it parses.
private func failure(_ bytes: [UInt8], source: String = "t.json") -> TopologyError? {
    do {
        _ = try TopologySpec.parse(json: bytes, source: source)
        return nil
    } catch {
        return error
    }
}

private func failure(_ text: String) -> TopologyError? { failure(Array(text.utf8)) }

/// A temporary directory tree, removed when the value goes away.
private final class TempTree {
    let root: String

    init() {
        var template = Array("/tmp/swiftvfio-topology-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }
        }
        precondition(made != nil, "mkdtemp failed")
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { TempTree.remove(root) }

    private static func remove(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            if case .success(let names) = TopologyFileSystem.listDirectory(path) {
                for name in names { remove(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Creates a directory (and its parents) under the root.
    func dir(_ relative: String) {
        var path = root
        for component in relative.split(separator: "/") {
            path += "/" + component
            mkdir(path, 0o755)
        }
    }

    /// Writes a file under the root, creating parent directories.
    func file(_ relative: String, _ contents: String) {
        if let slash = relative.lastIndex(of: "/") { dir(String(relative[..<slash])) }
        let fd = open(root + "/" + relative, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0)
        let bytes = Array(contents.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Makes a symbolic link under the root, creating parent directories.
    func link(_ relative: String, to target: String) {
        if let slash = relative.lastIndex(of: "/") { dir(String(relative[..<slash])) }
        precondition(symlink(target, root + "/" + relative) == 0)
    }

    /// A PCI device the way sysfs shows it: group entry, device directory, links.
    func pciDevice(_ name: String, group: Int?, driver: String?) {
        dir("devices/pci0000:00/\(name)")
        link("bus/pci/devices/\(name)", to: "../../../devices/pci0000:00/\(name)")
        if let group {
            dir("kernel/iommu_groups/\(group)/devices")
            link("kernel/iommu_groups/\(group)/devices/\(name)", to: "../../../../devices/pci0000:00/\(name)")
            link("devices/pci0000:00/\(name)/iommu_group", to: "../../../kernel/iommu_groups/\(group)")
        }
        if let driver {
            dir("bus/pci/drivers/\(driver)")
            link("devices/pci0000:00/\(name)/driver", to: "../../../bus/pci/drivers/\(driver)")
        }
    }
}

private let example = """
    {
      "config": { "noiommu": false, "spapr_tce_iommu": false, "iommufd": true },
      "iommu_groups": [
        { "id": 26, "devices": [
          { "name": "0000:06:0d.0", "driver": "vfio-pci",
            "cache_coherency": true, "enforce_cache_coherency": true } ] }
      ],
      "noiommu_devices": [ { "name": "0000:09:00.0", "driver": "vfio-pci" } ],
      "emulated_devices": [ { "name": "mdev-0" } ]
    }
    """

// MARK: - Parsing valid topologies

@Suite("Topology JSON")
struct TopologyJSONTests {
    @Test func parsesTheDesignExample() throws {
        let spec = try parse(example)
        #expect(spec == TopologySpec(
            config: .init(noiommu: false, spaprTCEIOMMU: false, iommufd: true),
            iommuGroups: [.init(id: 26, devices: [.init(name: "0000:06:0d.0", driver: "vfio-pci")])],
            noIOMMUDevices: [.init(name: "0000:09:00.0", driver: "vfio-pci")],
            emulatedDevices: [.init(name: "mdev-0")]))
    }

    @Test func everythingIsOptionalAtTheTop() throws {
        #expect(try parse("{}") == TopologySpec())
        #expect(try parse(#"{"config": {}}"#).config == .init(noiommu: false, spaprTCEIOMMU: false, iommufd: true))
        let spec = try parse(#"{"config": {"noiommu": true, "spapr_tce_iommu": true, "iommufd": false}}"#)
        #expect(spec.config == .init(noiommu: true, spaprTCEIOMMU: true, iommufd: false))
    }

    @Test func deviceDefaultsNullDriverAndEmptyGroups() throws {
        let spec = try parse(#"""
            {"iommu_groups": [{"devices": [{"name": "a", "driver": null, "cache_coherency": false}], "id": 0},
                              {"id": 2147483647, "devices": []}]}
            """#)
        #expect(spec.iommuGroups == [
            .init(id: 0, devices: [.init(name: "a", driver: nil, cacheCoherency: false, enforceCacheCoherency: true)]),
            .init(id: 2147483647, devices: []),
        ])
    }

    @Test func unicodeEscapesAndRawUTF8() throws {
        let spec = try parse(#"""
            {"emulated_devices": [{"name": "caf\u00e9"}, {"name": "\uD83D\uDE00-x"}, {"name": "\u0041B"},
                                  {"name": "日本"}, {"name": "q\"\\"}, {"name": "😀"}]}
            """#)
        #expect(spec.emulatedDevices.map(\.name) == ["café", "😀-x", "AB", "日本", "q\"\\", "😀"])
        // Every simple escape, straight from the parser.
        let node = try JSONParser.parse(Array(#"["\"\\\/\b\f\n\r\t\u0000\u007f\uffff"]"#.utf8))
        guard case .array(let elements) = node.value, case .string(let text) = elements.first?.value else {
            Issue.record("not an array of one string")
            return
        }
        #expect(Array(text.unicodeScalars.map(\.value)) == [0x22, 0x5C, 0x2F, 8, 12, 10, 13, 9, 0, 0x7F, 0xFFFF])
    }

    @Test func byteOrderMarkIsIgnored() throws {
        #expect(try TopologySpec.parse(json: [0xEF, 0xBB, 0xBF] + Array("{}".utf8), source: "b") == TopologySpec())
        let error = failure([0xEF, 0xBB, 0xBF] + Array("{x".utf8))
        #expect(error?.line == 1 && error?.column == 2)
    }
}

// MARK: - Syntax errors

@Suite("Topology JSON syntax errors")
struct TopologySyntaxErrorTests {
    @Test func emptyInput() {
        #expect(failure("") == TopologyError(source: "t.json", path: "$",
                                             message: "unexpected end of input, expected a value", line: 1, column: 1))
        #expect(failure("  \n ")?.line == 2)
    }

    @Test func lineAndColumnPointAtTheProblem() {
        let text = "{\n  \"config\": {\n    \"noiommu\": tru\n  }\n}"
        #expect(failure(text) == TopologyError(source: "t.json", path: "$.config.noiommu",
                                               message: "invalid literal, expected true, false or null",
                                               line: 3, column: 16))
        // Columns count characters, not bytes.
        let wide = failure("{\"é\": 1 2}")
        #expect(wide?.column == 9)
        #expect(wide?.message == "expected ',' or '}' after an object member, found '2'")
    }

    @Test(arguments: [
        ("{\"a\": 1,}", "$", "trailing comma before '}'", 9),
        ("{\"config\": [1,]}", "$.config", "trailing comma before ']'", 15),
        ("{\"a\" 1}", "$.a", "expected ':' after the key, found '1'", 6),
        ("{\"a\": 1 \"b\": 2}", "$", "expected ',' or '}' after an object member, found '\"'", 9),
        ("[1 2]", "$", "expected ',' or ']' after an array element, found '2'", 4),
        ("{a: 1}", "$", "expected a string key, found 'a'", 2),
        ("{\"a\": 'x'}", "$.a", "unexpected \"'\", expected a value", 7),
        ("{\"a\": \"abc", "$.a", "unterminated string", 7),
        ("{\"a\": \"a\tb\"}", "$.a", "control character U+0009 must be escaped in a string", 9),
        ("{\"a\": \"\\x\"}", "$.a", "invalid escape sequence '\\' followed by 'x'", 8),
        ("{\"a\": \"\\u12G4\"}", "$.a", "invalid \\u escape: expected four hexadecimal digits", 8),
        ("{\"a\": \"\\u12\"}", "$.a", "invalid \\u escape: expected four hexadecimal digits", 8),
        ("{\"a\": NaN}", "$.a", "unexpected 'N', expected a value", 7),
        ("{\"a\": nul}", "$.a", "invalid literal, expected true, false or null", 7),
        ("[", "$[0]", "unexpected end of input, expected a value", 2),
        ("{", "$", "expected a string key, found end of input", 2),
        ("{\"a\": [1", "$.a", "unexpected end of input, expected ',' or ']' after an array element", 9),
        ("{} x", "$", "unexpected 'x' after the top-level value", 4),
        ("{}{}", "$", "unexpected '{' after the top-level value", 3),
        ("{\"a\": \u{1}}", "$.a", "unexpected control character U+0001, expected a value", 7),
    ] as [(String, String, String, Int)])
    func syntaxError(text: String, path: String, message: String, column: Int) {
        #expect(failure(text) == TopologyError(source: "t.json", path: path, message: message, line: 1, column: column))
    }

    @Test(arguments: [
        ("[01]", "invalid number: leading zeros are not allowed", 2),
        ("[-]", "invalid number: expected a digit after '-'", 3),
        ("[-a]", "invalid number: expected a digit after '-'", 3),
        ("[1.]", "invalid number: expected a digit after '.'", 4),
        ("[1e]", "invalid number: expected a digit in the exponent", 4),
        ("[1e+]", "invalid number: expected a digit in the exponent", 5),
        ("[+1]", "unexpected '+', expected a value", 2),
        ("[.5]", "unexpected '.', expected a value", 2),
    ] as [(String, String, Int)])
    func malformedNumbers(text: String, message: String, column: Int) {
        let error = failure(text)
        #expect(error?.message == message)
        #expect(error?.column == column)
        #expect(error?.path == "$[0]")
    }

    @Test func duplicateKeysAreErrors() {
        #expect(failure(#"{"config": {"noiommu": true, "noiommu": false}}"#) == TopologyError(
            source: "t.json", path: "$.config.noiommu",
            message: #"duplicate key "noiommu" (first at line 1, column 13)"#, line: 1, column: 30))
        // Equal keys are found by their bytes, whatever the key and wherever the object is.
        let deep = failure("{\"iommu_groups\": [{\"id\": 1, \"devices\": [],\n \"id\": 2}]}")
        #expect(deep?.path == "$.iommu_groups[0].id")
        #expect(deep?.line == 2 && deep?.column == 2)
        #expect(failure(#"[{"a b": 1, "a b": 2}]"#)?.path == #"$[0]["a b"]"#)
        // A large object indexes its keys (past 16 members): found all the same, with the first's place.
        let keys = (0..<20).map { "\"k\($0)\": \($0)" }.joined(separator: ", ")
        let large = failure("[{" + keys + ", \"k3\": 0}]")
        #expect(large?.path == "$[0].k3")
        #expect(large?.message == #"duplicate key "k3" (first at line 1, column 30)"#)
        let late = failure("[{" + keys + ", \"k19\": 0}]")
        #expect(late?.message.hasPrefix(#"duplicate key "k19" (first at line 1, column "#) == true)
    }

    @Test func loneSurrogatesAreErrors() {
        let high = failure(#"{"a": "x\uD800"}"#)
        #expect(high?.message == "unpaired high surrogate \\uD800 (it must be followed by a low surrogate \\uDC00-\\uDFFF)")
        #expect(high?.column == 9)
        #expect(failure(#"{"a": "\uD800\u0041"}"#)?.message.hasPrefix("unpaired high surrogate") == true)
        #expect(failure(#"{"a": "\uD800\uD800"}"#)?.message.hasPrefix("unpaired high surrogate") == true)
        #expect(failure(#"{"a": "\uDC00"}"#)?.message == "unpaired low surrogate \\uDC00")
        #expect(failure(#"{"a": "\uDBFF"#)?.message.hasPrefix("unpaired high surrogate") == true)
    }

    @Test(arguments: [
        [0xFF] as [UInt8],                       // never valid
        [0xC0, 0x80],                            // overlong NUL
        [0xE0, 0x80, 0x80],                      // overlong
        [0xED, 0xA0, 0x80],                      // encoded surrogate
        [0xF4, 0x90, 0x80, 0x80],                // above U+10FFFF
        [0xC3],                                  // truncated at the end of the input
        [0xE6, 0x97],                            // truncated
        [0x80],                                  // lone continuation byte
    ])
    func invalidUTF8IsAnError(bad: [UInt8]) {
        let inString = failure(Array(#"{"a": "x"#.utf8) + bad + Array(#""}"#.utf8))
        #expect(inString?.message.hasPrefix("invalid UTF-8 in string") == true)
        #expect(inString?.column == 9)
        let outside = failure(Array(#"{"a": "#.utf8) + bad + Array("}".utf8))
        #expect(outside?.message.hasPrefix("unexpected invalid UTF-8 byte") == true)
        #expect(failure(bad) != nil)
    }

    @Test func nestingIsBounded() throws {
        // 64 levels parse (the parser itself accepts them); 65 do not.
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try JSONParser.parse(Array(ok.utf8))
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(failure(tooDeep)?.message == "nesting deeper than 64 levels")
        #expect(failure(tooDeep)?.column == 65)
        let hostile = failure(String(repeating: "[", count: 10000))
        #expect(hostile?.message == "nesting deeper than 64 levels")
        #expect(hostile?.path.hasPrefix("$[0][0]") == true)
        let objects = failure(String(repeating: "{\"a\":", count: 10000))
        #expect(objects?.message == "nesting deeper than 64 levels")
    }

    @Test func hostileInputsNeverCrash() {
        var inputs: [[UInt8]] = [
            [], [0], [0x22], [0x5C], Array("\"\\u".utf8), Array("[\"\\uD83D\\".utf8), Array("-".utf8),
            Array(String(repeating: "9", count: 100_000).utf8), Array("[1e999999999]".utf8),
            Array("{\"iommu_groups\":[{\"id\":1e99999,\"devices\":[]}]}".utf8),
            Array(String(repeating: "[1,", count: 5000).utf8), Array(String(repeating: "{\"a\":[", count: 5000).utf8),
        ]
        // Every prefix of a valid topology.
        let valid = Array(TopologySpec.builtInDefaultJSON.utf8)
        for end in stride(from: 0, to: valid.count, by: 7) { inputs.append(Array(valid[0..<end])) }
        // A simple pseudo-random byte soup built from JSON's own characters.
        var state: UInt32 = 12345
        let alphabet = Array("{}[]\":,0123456789-.eE \\utrfalsn\u{7}".utf8) + [0xC3, 0xA9, 0xFF]
        for _ in 0..<200 {
            var bytes: [UInt8] = []
            for _ in 0..<40 {
                state = state &* 1_103_515_245 &+ 12345
                bytes.append(alphabet[Int(state >> 16) % alphabet.count])
            }
            inputs.append(bytes)
        }
        for input in inputs {
            do {
                _ = try TopologySpec.parse(json: input, source: "fuzz")
            } catch {
                #expect(!error.message.isEmpty)
                #expect(error.source == "fuzz")
            }
        }
    }
}

// MARK: - Validation errors

@Suite("Topology validation errors")
struct TopologyValidationTests {
    @Test(arguments: [
        ("[]", "$", "expected an object, found an array"),
        ("null", "$", "expected an object, found null"),
        ("42", "$", "expected an object, found a number"),
        ("\"x\"", "$", "expected an object, found a string"),
        (#"{"config": []}"#, "$.config", "expected an object, found an array"),
        (#"{"config": {"noiommu": "yes"}}"#, "$.config.noiommu", "expected a boolean, found a string"),
        (#"{"config": {"spapr_tce_iommu": 1}}"#, "$.config.spapr_tce_iommu", "expected a boolean, found a number"),
        (#"{"config": {"iommufd": null}}"#, "$.config.iommufd", "expected a boolean, found null"),
        (#"{"iommu_groups": {}}"#, "$.iommu_groups", "expected an array, found an object"),
        (#"{"iommu_groups": [26]}"#, "$.iommu_groups[0]", "expected an object, found a number"),
        (#"{"iommu_groups": [{"id": 1, "devices": "a"}]}"#, "$.iommu_groups[0].devices", "expected an array, found a string"),
        (#"{"iommu_groups": [{"id": 1, "devices": [[]]}]}"#, "$.iommu_groups[0].devices[0]", "expected an object, found an array"),
        (#"{"iommu_groups": [{"id": 1, "devices": [{"name": "a", "cache_coherency": 1}]}]}"#,
         "$.iommu_groups[0].devices[0].cache_coherency", "expected a boolean, found a number"),
        (#"{"iommu_groups": [{"id": 1, "devices": [{"name": "a"}, {"name": "b", "enforce_cache_coherency": "true"}]}]}"#,
         "$.iommu_groups[0].devices[1].enforce_cache_coherency", "expected a boolean, found a string"),
        (#"{"noiommu_devices": [{"name": 5}]}"#, "$.noiommu_devices[0].name", "expected a string, found a number"),
        (#"{"noiommu_devices": [{"name": "a", "driver": true}]}"#, "$.noiommu_devices[0].driver", "expected a string or null, found a boolean"),
        (#"{"noiommu_devices": "a"}"#, "$.noiommu_devices", "expected an array, found a string"),
        (#"{"emulated_devices": [null]}"#, "$.emulated_devices[0]", "expected an object, found null"),
        (#"{"emulated_devices": [{"name": null}]}"#, "$.emulated_devices[0].name", "expected a string, found null"),
    ] as [(String, String, String)])
    func wrongTypes(text: String, path: String, message: String) {
        let error = failure(text)
        #expect(error?.path == path)
        #expect(error?.message == message)
    }

    @Test(arguments: [
        (#"{"configs": {}}"#, "$.configs",
         #"unknown key "configs" (expected one of: config, iommu_groups, noiommu_devices, emulated_devices)"#),
        (#"{"config": {"noiommu_mode": true}}"#, "$.config.noiommu_mode",
         #"unknown key "noiommu_mode" (expected one of: noiommu, spapr_tce_iommu, iommufd)"#),
        (#"{"iommu_groups": [{"id": 1, "devices": [], "name": "g"}]}"#, "$.iommu_groups[0].name",
         #"unknown key "name" (expected one of: id, devices)"#),
        (#"{"noiommu_devices": [{"name": "a", "drvier": "x"}]}"#, "$.noiommu_devices[0].drvier",
         #"unknown key "drvier" (expected one of: name, driver, cache_coherency, enforce_cache_coherency, "#
         + #"vendor_id, device_id, class_code, bars, rom_size, msi, msix, msix_bar, pcie, intx, reset, "#
         + #"personality, mac, link_up, iommu_group)"#),
        (#"{"emulated_devices": [{"name": "m", "driver": "mdev"}]}"#, "$.emulated_devices[0].driver",
         #"unknown key "driver" (expected one of: name)"#),
        (#"{"a.b": 1}"#, #"$["a.b"]"#,
         #"unknown key "a.b" (expected one of: config, iommu_groups, noiommu_devices, emulated_devices)"#),
    ] as [(String, String, String)])
    func unknownKeys(text: String, path: String, message: String) {
        let error = failure(text)
        #expect(error?.path == path)
        #expect(error?.message == message)
    }

    @Test(arguments: ["-1", "26.5", "26.0", "1e2", "2147483648", "99999999999999999999999", "\"26\"", "true", "null", "-0.0"])
    func groupIDMustBeANonNegativeInt32(id: String) {
        let error = failure(#"{"iommu_groups": [{"id": \#(id), "devices": []}]}"#)
        #expect(error?.path == "$.iommu_groups[0].id")
        let found: String
        switch id {
        case "\"26\"": found = "a string"
        case "true": found = "a boolean"
        case "null": found = "null"
        default: found = id
        }
        #expect(error?.message == "expected an integer from 0 to 2147483647, found \(found)")
        #expect(error?.line == 1 && error?.column == 26)
    }

    @Test func hugeNumbersAreShortenedInMessages() {
        let digits = String(repeating: "7", count: 5000)
        let error = failure(#"{"iommu_groups": [{"id": \#(digits), "devices": []}]}"#)
        #expect(error?.message == "expected an integer from 0 to 2147483647, found " + String(repeating: "7", count: 40) + "...")
    }

    @Test func missingRequiredKeys() {
        #expect(failure(#"{"iommu_groups": [{"devices": []}]}"#) == TopologyError(
            source: "t.json", path: "$.iommu_groups[0]", message: #"missing required key "id""#, line: 1, column: 19))
        #expect(failure(#"{"iommu_groups": [{"id": 3}]}"#)?.message == #"missing required key "devices""#)
        let device = failure(#"{"iommu_groups": [{"id": 3, "devices": [{"driver": "vfio-pci"}]}]}"#)
        #expect(device?.path == "$.iommu_groups[0].devices[0]")
        #expect(device?.message == #"missing required key "name""#)
        #expect(failure(#"{"noiommu_devices": [{}]}"#)?.path == "$.noiommu_devices[0]")
        #expect(failure(#"{"emulated_devices": [{}]}"#)?.message == #"missing required key "name""#)
    }

    @Test func duplicateGroupIDs() {
        let error = failure(#"{"iommu_groups": [{"id": 7, "devices": []}, {"id": 8, "devices": []}, {"id": 7, "devices": []}]}"#)
        #expect(error?.path == "$.iommu_groups[2].id")
        #expect(error?.message == "duplicate IOMMU group id 7 (first at $.iommu_groups[0].id)")
    }

    @Test(arguments: [
        (#"{"iommu_groups": [{"id": 1, "devices": [{"name": "a"}, {"name": "a"}]}]}"#,
         "$.iommu_groups[0].devices[1].name", "$.iommu_groups[0].devices[0].name"),
        (#"{"iommu_groups": [{"id": 1, "devices": [{"name": "a"}]}, {"id": 2, "devices": [{"name": "a"}]}]}"#,
         "$.iommu_groups[1].devices[0].name", "$.iommu_groups[0].devices[0].name"),
        (#"{"iommu_groups": [{"id": 1, "devices": [{"name": "a"}]}], "noiommu_devices": [{"name": "a"}]}"#,
         "$.noiommu_devices[0].name", "$.iommu_groups[0].devices[0].name"),
        (#"{"noiommu_devices": [{"name": "a"}], "emulated_devices": [{"name": "a"}]}"#,
         "$.emulated_devices[0].name", "$.noiommu_devices[0].name"),
        // Document order decides which one is the duplicate.
        (#"{"emulated_devices": [{"name": "a"}], "iommu_groups": [{"id": 1, "devices": [{"name": "a"}]}]}"#,
         "$.iommu_groups[0].devices[0].name", "$.emulated_devices[0].name"),
    ] as [(String, String, String)])
    func duplicateDeviceNamesAcrossSections(text: String, path: String, first: String) {
        let error = failure(text)
        #expect(error?.path == path)
        #expect(error?.message == #"duplicate device name "a" (first at \#(first))"#)
    }

    @Test func namesAreComparedByBytes() throws {
        // "é" precomposed and decomposed are canonically equal Strings but different device names.
        let spec = try parse(#"{"emulated_devices": [{"name": "\u00e9"}, {"name": "e\u0301"}]}"#)
        #expect(spec.emulatedDevices.count == 2)
    }

    @Test(arguments: [
        (#""""#, "device name must not be empty"),
        (#"".""#, #"device name must not be "." or "..""#),
        (#""..""#, #"device name must not be "." or "..""#),
        (#""0000:06:0d.0/x""#, "device name must not contain '/'"),
        (#""a\u0000b""#, "device name must not contain NUL"),
        (#""a b""#, "device name must not contain whitespace"),
        (#""a\tb""#, "device name must not contain whitespace"),
        (#""a\u00a0b""#, "device name must not contain whitespace"),
        (#""a\u2028""#, "device name must not contain whitespace"),
        (#""a\u0001""#, "device name must not contain control characters"),
        (#""a\u007f""#, "device name must not contain control characters"),
        ("\"" + String(repeating: "x", count: 256) + "\"", "device name is 256 bytes long (at most 255 allowed)"),
        ("\"" + String(repeating: "é", count: 128) + "\"", "device name is 256 bytes long (at most 255 allowed)"),
    ] as [(String, String)])
    func badDeviceNames(name: String, message: String) {
        for (text, path) in [
            (#"{"iommu_groups": [{"id": 1, "devices": [{"name": \#(name)}]}]}"#, "$.iommu_groups[0].devices[0].name"),
            (#"{"noiommu_devices": [{"name": \#(name)}]}"#, "$.noiommu_devices[0].name"),
            (#"{"emulated_devices": [{"name": \#(name)}]}"#, "$.emulated_devices[0].name"),
        ] {
            let error = failure(text)
            #expect(error?.path == path)
            #expect(error?.message == message)
        }
    }

    @Test func longestNameIsAccepted() throws {
        let name = String(repeating: "x", count: 255)
        #expect(try parse(#"{"emulated_devices": [{"name": "\#(name)"}]}"#).emulatedDevices.first?.name == name)
    }

    @Test func badDriverNames() {
        let empty = failure(#"{"noiommu_devices": [{"name": "a", "driver": ""}]}"#)
        #expect(empty?.path == "$.noiommu_devices[0].driver")
        #expect(empty?.message == "driver name must not be empty")
        #expect(failure(#"{"noiommu_devices": [{"name": "a", "driver": "vfio pci"}]}"#)?.message
                == "driver name must not contain whitespace")
        #expect(failure(#"{"noiommu_devices": [{"name": "a", "driver": "../x"}]}"#)?.message
                == "driver name must not contain '/'")
    }

    @Test func validationErrorsCarryThePositionOfTheValue() {
        let text = """
            {
              "iommu_groups": [
                { "id": 1, "devices": [ { "name": "a", "cache_coherency": "no" } ] }
              ]
            }
            """
        #expect(failure(text) == TopologyError(
            source: "t.json", path: "$.iommu_groups[0].devices[0].cache_coherency",
            message: "expected a boolean, found a string", line: 3, column: 63))
    }

    @Test func descriptionFormat() {
        let withPosition = TopologyError(source: "topo.json", path: "$.config.noiommu",
                                         message: "expected a boolean, found a string", line: 3, column: 16)
        #expect(withPosition.description
                == "topo.json: $.config.noiommu: expected a boolean, found a string (line 3, column 16)")
        let withoutPosition = TopologyError(source: "/sys", path: "/sys/kernel/iommu_groups/x", message: "bad")
        #expect(withoutPosition.description == "/sys: /sys/kernel/iommu_groups/x: bad")
        let wholeFile = TopologyError(source: "t.json", path: "", message: "cannot read topology: Permission denied")
        #expect(wholeFile.description == "t.json: cannot read topology: Permission denied")
        #expect(failure(#"{"x": 1}"#).map { "\($0)" }
                == #"t.json: $.x: unknown key "x" (expected one of: config, iommu_groups, noiommu_devices, emulated_devices) (line 1, column 2)"#)
    }

    @Test func validateChecksSpecsBuiltInCode() throws {
        try TopologySpec.builtInDefault.validate()
        var spec = TopologySpec(iommuGroups: [.init(id: 1, devices: [.init(name: "a")]), .init(id: 1, devices: [])])
        #expect(throws: TopologyError(source: "<topology>", path: "$.iommu_groups[1].id",
                                      message: "duplicate IOMMU group id 1 (first at $.iommu_groups[0].id)")) {
            try spec.validate()
        }
        spec = TopologySpec(iommuGroups: [.init(id: -3, devices: [])])
        #expect(throws: TopologyError(source: "s", path: "$.iommu_groups[0].id",
                                      message: "expected an integer from 0 to 2147483647, found -3")) {
            try spec.validate(source: "s")
        }
        spec = TopologySpec(iommuGroups: [.init(id: 1, devices: [.init(name: "a")])], emulatedDevices: [.init(name: "a")])
        #expect(throws: TopologyError(source: "<topology>", path: "$.emulated_devices[0].name",
                                      message: #"duplicate device name "a" (first at $.iommu_groups[0].devices[0].name)"#)) {
            try spec.validate()
        }
        spec = TopologySpec(noIOMMUDevices: [.init(name: "a", driver: "")])
        #expect(throws: TopologyError(source: "<topology>", path: "$.noiommu_devices[0].driver",
                                      message: "driver name must not be empty")) {
            try spec.validate()
        }
    }
}

// MARK: - Built-in default and serialisation

@Suite("Topology built-in default")
struct TopologyDefaultTests {
    @Test func builtInDefaultJSONParsesToBuiltInDefault() throws {
        #expect(try parse(TopologySpec.builtInDefaultJSON, source: "<built-in>") == TopologySpec.builtInDefault)
    }

    @Test func builtInDefaultIsTheVfioRstTopology() {
        let spec = TopologySpec.builtInDefault
        #expect(spec.config == .init(noiommu: false, spaprTCEIOMMU: false, iommufd: true))
        #expect(spec.iommuGroups.map(\.id) == [26, 27, 28])
        #expect(spec.iommuGroups[0].devices == [.init(name: "0000:06:0d.0", driver: "vfio-pci")])
        #expect(spec.iommuGroups[1].devices.map(\.driver) == ["vfio-pci", "e1000e"])
        #expect(spec.iommuGroups[2].devices == [.init(name: "0000:07:00.0", driver: "vfio-pci")])
        #expect(spec.noIOMMUDevices.isEmpty)
        #expect(spec.emulatedDevices == [.init(name: "mdev-0")])
    }

    @Test func jsonTextRoundTrips() throws {
        #expect(TopologySpec.builtInDefault.jsonText() == TopologySpec.builtInDefaultJSON)
        let spec = TopologySpec(
            config: .init(noiommu: true, spaprTCEIOMMU: true, iommufd: false),
            iommuGroups: [.init(id: 0, devices: []),
                          .init(id: 5, devices: [.init(name: "q\"\\é😀", driver: "x", cacheCoherency: false),
                                                 .init(name: "b", enforceCacheCoherency: false)])],
            noIOMMUDevices: [.init(name: "n", driver: "vfio-pci")],
            emulatedDevices: [.init(name: "m\u{1F600}")])
        try spec.validate()
        #expect(try parse(spec.jsonText()) == spec)
        #expect(try parse(TopologySpec().jsonText()) == TopologySpec())
    }
}

// MARK: - Loading files

@Suite("Topology files")
struct TopologyFileTests {
    @Test func loadsAJSONFile() throws {
        let tree = TempTree()
        tree.file("topo.json", example)
        let spec = try TopologySpec.load(path: tree.root + "/topo.json")
        #expect(spec == (try parse(example)))
        tree.file("bad.json", "{\n\"config\": 1}")
        #expect(throws: TopologyError(source: tree.root + "/bad.json", path: "$.config",
                                      message: "expected an object, found a number", line: 2, column: 11)) {
            try TopologySpec.load(path: tree.root + "/bad.json")
        }
    }

    @Test func unreadableFilesSayWhy() {
        let tree = TempTree()
        let missing = tree.root + "/nope.json"
        #expect(throws: TopologyError(source: missing, path: "",
                                      message: "cannot read topology: No such file or directory")) {
            try TopologySpec.load(path: missing)
        }
        tree.file("plain", "{}")
        #expect(throws: TopologyError(source: tree.root + "/plain/x", path: "",
                                      message: "cannot read topology: Not a directory")) {
            try TopologySpec.load(path: tree.root + "/plain/x")
        }
        tree.file("empty.json", "")
        #expect(throws: TopologyError(source: tree.root + "/empty.json", path: "$",
                                      message: "unexpected end of input, expected a value", line: 1, column: 1)) {
            try TopologySpec.load(path: tree.root + "/empty.json")
        }
    }

    @Test func filesOver16MiBAreRefused() {
        let tree = TempTree()
        let path = tree.root + "/big.json"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(ftruncate(fd, off_t(TopologySpec.maximumFileSize + 1)) == 0)  // sparse: costs no disk
        close(fd)
        #expect(throws: TopologyError(source: path, path: "", message: "file is larger than 16 MiB (16777217 bytes)")) {
            try TopologySpec.load(path: path)
        }
        let big = [UInt8](repeating: 0x20, count: TopologySpec.maximumFileSize + 1)
        #expect(failure(big)?.message == "input is larger than 16 MiB (16777217 bytes)")
    }
}

// MARK: - Sysfs-shaped directories

@Suite("Topology sysfs")
struct TopologySysfsTests {
    /// The tree equivalent to `sysfsEquivalentJSON`.
    private func makeTree() -> TempTree {
        let tree = TempTree()
        tree.pciDevice("0000:06:0d.0", group: 26, driver: "vfio-pci")
        tree.pciDevice("0000:06:0e.1", group: 27, driver: "e1000e")
        tree.pciDevice("0000:06:0e.0", group: 27, driver: "vfio-pci")
        tree.pciDevice("0000:07:00.0", group: 100, driver: nil)
        tree.file("devices/pci0000:00/0000:07:00.0/cache_coherency", "0\n")
        tree.file("devices/pci0000:00/0000:07:00.0/enforce_cache_coherency", "1\n")
        tree.pciDevice("0000:09:00.0", group: nil, driver: "vfio-pci")
        tree.pciDevice("0000:08:00.0", group: nil, driver: nil)
        tree.file("devices/pci0000:00/0000:08:00.0/enforce_cache_coherency", "0")
        tree.dir("kernel/iommu_groups/3/devices")
        tree.file("kernel/iommu_groups/3/devices/platform-dev", "")  // a plain file: only the name matters
        tree.dir("bus/mdev/devices/mdev-1")
        tree.link("bus/mdev/devices/mdev-0", to: "../../../devices/virtual/mdev-0")  // dangling is fine
        tree.file("module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n")
        tree.file("module/iommufd/parameters/disabled", "N\n")
        tree.dir("class/iommu")
        return tree
    }

    private let sysfsEquivalentJSON = """
        { "config": { "noiommu": true, "iommufd": true, "spapr_tce_iommu": false },
          "iommu_groups": [
            { "id": 3, "devices": [ { "name": "platform-dev" } ] },
            { "id": 26, "devices": [ { "name": "0000:06:0d.0", "driver": "vfio-pci" } ] },
            { "id": 27, "devices": [ { "name": "0000:06:0e.0", "driver": "vfio-pci" },
                                     { "name": "0000:06:0e.1", "driver": "e1000e" } ] },
            { "id": 100, "devices": [ { "name": "0000:07:00.0", "cache_coherency": false } ] } ],
          "noiommu_devices": [ { "name": "0000:08:00.0", "enforce_cache_coherency": false },
                               { "name": "0000:09:00.0", "driver": "vfio-pci" } ],
          "emulated_devices": [ { "name": "mdev-0" }, { "name": "mdev-1" } ] }
        """

    @Test func sysfsTreeMatchesTheEquivalentJSON() throws {
        let tree = makeTree()
        let fromTree = try TopologySpec.load(path: tree.root)
        #expect(fromTree == (try parse(sysfsEquivalentJSON)))
        #expect(try TopologySpec.load(path: tree.root + "/") == fromTree)
        try fromTree.validate()
    }

    @Test func configDefaultsAndFlags() throws {
        let tree = TempTree()
        tree.dir("kernel/iommu_groups")
        #expect(try TopologySpec.load(path: tree.root) == TopologySpec())
        tree.file("module/vfio/parameters/enable_unsafe_noiommu_mode", "0")
        tree.file("module/iommufd/parameters/disabled", "Y")
        #expect(try TopologySpec.load(path: tree.root).config == .init(noiommu: false, spaprTCEIOMMU: false, iommufd: false))
        tree.file("module/vfio/parameters/enable_unsafe_noiommu_mode", "maybe\n")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/module/vfio/parameters/enable_unsafe_noiommu_mode",
                                      message: #"expected Y, N, 1 or 0, found "maybe""#)) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func badCoherencyFile() {
        let tree = TempTree()
        tree.pciDevice("0000:01:00.0", group: 1, driver: nil)
        tree.file("devices/pci0000:00/0000:01:00.0/cache_coherency", "yes")
        #expect(throws: TopologyError(source: tree.root,
                                      path: tree.root + "/bus/pci/devices/0000:01:00.0/cache_coherency",
                                      message: #"expected 1 or 0, found "yes""#)) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func emptyDirectoryIsNotATopology() {
        let tree = TempTree()
        #expect(throws: TopologyError(source: tree.root, path: tree.root,
                                      message: "not a sysfs-shaped directory: none of kernel/iommu_groups, "
                                               + "bus/pci/devices, bus/mdev/devices exists")) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test(arguments: ["x", "026", "-1", "2147483648", "1.0"])
    func groupDirectoriesMustBeNumbers(name: String) {
        let tree = TempTree()
        tree.dir("kernel/iommu_groups/\(name)/devices")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/kernel/iommu_groups/\(name)",
                                      message: "expected an IOMMU group number (0 to 2147483647) as the directory name")) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func groupWithoutDevicesDirectory() {
        let tree = TempTree()
        tree.dir("kernel/iommu_groups/4")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/kernel/iommu_groups/4/devices",
                                      message: "cannot read directory: No such file or directory")) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func groupLinkToAMissingGroup() {
        let tree = TempTree()
        tree.pciDevice("0000:01:00.0", group: nil, driver: nil)
        tree.dir("kernel/iommu_groups")
        tree.link("devices/pci0000:00/0000:01:00.0/iommu_group", to: "../../../kernel/iommu_groups/9")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/bus/pci/devices/0000:01:00.0/iommu_group",
                                      message: "links to IOMMU group 9, which does not exist in \(tree.root)/kernel/iommu_groups")) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func groupLinkToAGroupThatDoesNotListTheDevice() {
        let tree = TempTree()
        tree.pciDevice("0000:01:00.0", group: 1, driver: nil)
        tree.pciDevice("0000:02:00.0", group: 2, driver: nil)
        // Point 02:00.0 at group 1, which lists only 01:00.0.
        let link = tree.root + "/devices/pci0000:00/0000:02:00.0/iommu_group"
        unlink(link)
        tree.link("devices/pci0000:00/0000:02:00.0/iommu_group", to: "../../../kernel/iommu_groups/1")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/bus/pci/devices/0000:02:00.0/iommu_group",
                                      message: #"links to IOMMU group 1, whose devices directory does not list "0000:02:00.0""#)) {
            try TopologySpec.load(path: tree.root)
        }
        unlink(link)
        tree.link("devices/pci0000:00/0000:02:00.0/iommu_group", to: "../../../kernel/iommu_groups/foo")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/bus/pci/devices/0000:02:00.0/iommu_group",
                                      message: #"expected a link to an IOMMU group, found one to "../../../kernel/iommu_groups/foo""#)) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func groupMemberWithoutGroupLink() {
        let tree = TempTree()
        tree.pciDevice("0000:01:00.0", group: 1, driver: nil)
        unlink(tree.root + "/devices/pci0000:00/0000:01:00.0/iommu_group")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/bus/pci/devices/0000:01:00.0",
                                      message: "has no iommu_group link, but IOMMU group 1 lists it "
                                               + "(\(tree.root)/kernel/iommu_groups/1/devices/0000:01:00.0)")) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func driverMustBeALink() {
        let tree = TempTree()
        tree.pciDevice("0000:01:00.0", group: 1, driver: nil)
        tree.file("devices/pci0000:00/0000:01:00.0/driver", "vfio-pci")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/bus/pci/devices/0000:01:00.0/driver",
                                      message: "expected a symbolic link")) {
            try TopologySpec.load(path: tree.root)
        }
    }

    @Test func duplicateNamesInATree() {
        let tree = TempTree()
        tree.dir("kernel/iommu_groups/1/devices/dev-a")
        tree.dir("kernel/iommu_groups/2/devices/dev-a")
        #expect(throws: TopologyError(source: tree.root, path: tree.root + "/kernel/iommu_groups/2/devices/dev-a",
                                      message: #"duplicate device name "dev-a" (first at \#(tree.root)/kernel/iommu_groups/1/devices/dev-a)"#)) {
            try TopologySpec.load(path: tree.root)
        }
        let other = TempTree()
        other.pciDevice("mdev-x", group: nil, driver: nil)
        other.dir("bus/mdev/devices/mdev-x")
        #expect(throws: TopologyError(source: other.root, path: other.root + "/bus/mdev/devices/mdev-x",
                                      message: #"duplicate device name "mdev-x" (first at \#(other.root)/bus/pci/devices/mdev-x)"#)) {
            try TopologySpec.load(path: other.root)
        }
        let spaced = TempTree()
        spaced.dir("kernel/iommu_groups/1/devices/a b")
        #expect(throws: TopologyError(source: spaced.root, path: spaced.root + "/kernel/iommu_groups/1/devices/a b",
                                      message: "device name must not contain whitespace")) {
            try TopologySpec.load(path: spaced.root)
        }
    }

    @Test func vfioMadeGroupsListNoIOMMUAndEmulatedDevices() throws {
        // What a real /sys shows once vfio made groups for a no-IOMMU device (group 0) and an mdev (group 1).
        let tree = TempTree()
        tree.pciDevice("0000:09:00.0", group: 0, driver: "vfio-pci")
        tree.file("kernel/iommu_groups/0/name", "vfio-noiommu\n")
        tree.dir("kernel/iommu_groups/1/devices/mdev-0")
        tree.file("kernel/iommu_groups/1/name", "vfio-noiommu\n")
        tree.dir("bus/mdev/devices/mdev-0")
        tree.pciDevice("0000:06:0d.0", group: 26, driver: "vfio-pci")
        tree.file("kernel/iommu_groups/26/name", "some-other-name\n")
        #expect(try TopologySpec.load(path: tree.root) == TopologySpec(
            iommuGroups: [.init(id: 26, devices: [.init(name: "0000:06:0d.0", driver: "vfio-pci")])],
            noIOMMUDevices: [{
                var d = TopologySpec.Device(name: "0000:09:00.0", driver: "vfio-pci")
                d.noIOMMUGroupID = 0   // the vfio-noiommu group's number, kept
                return d
            }()],
            emulatedDevices: [.init(name: "mdev-0")]))
    }

    @Test func theRealSysNeverCrashes() {
        // Whatever this machine's /sys holds, loading it gives a topology or a TopologyError.
        do {
            let spec = try TopologySpec.load(path: "/sys")
            #expect((try? spec.validate()) != nil)
        } catch {
            #expect(error.source == "/sys")
        }
    }
}
