// SPDX-License-Identifier: Apache-2.0
// A small strict JSON parser (RFC 8259) for topology files. No Foundation: the core library must
// not import it. Objects keep their key order and reject duplicate keys; strings are checked for
// valid UTF-8 and well-formed escapes (surrogate pairs included); numbers keep their text, so the
// schema decides what it accepts (topologies want integers). Nesting is bounded, so the recursive
// descent can never exhaust the stack, and no input makes it trap.

/// Byte-for-byte equality of two strings (JSON keys and device names are compared as bytes, not
/// by Unicode canonical equivalence, as the kernel compares names).
@inline(__always)
func utf8Equal(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    var a = a, b = b
    return a.withUTF8 { x in b.withUTF8 { y in x.elementsEqual(y) } }
}

/// A string as a hash key by its UTF-8 bytes: equal when the bytes are. The bytes are hashed once,
/// when the key is made; a probe that meets another key compares the two hashes first, so the bytes
/// are compared only for a real match (an `Array(s.utf8)` key cost an allocation and a hash call
/// per byte, and comparing bytes at every probe was most of a lookup).
struct UTF8Key: Hashable {
    let text: String
    private let bytesHash: Int
    init(_ text: String) {
        var hasher = Hasher()
        var copy = text
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        self.text = text
        bytesHash = hasher.finalize()
    }
    static func == (a: UTF8Key, b: UTF8Key) -> Bool { a.bytesHash == b.bytesHash && utf8Equal(a.text, b.text) }
    func hash(into hasher: inout Hasher) { hasher.combine(bytesHash) }
}

/// A parsed JSON value with the byte offset where it starts (for error positions).
struct JSONNode: Sendable {
    /// The value.
    var value: JSONValue
    /// Byte offset of the value's first character in the parsed text.
    var offset: Int
}

/// One member of a JSON object, in document order.
struct JSONMember: Sendable {
    /// The key, unescaped.
    var key: String
    /// Byte offset of the key's opening quote.
    var keyOffset: Int
    /// The member's value.
    var value: JSONNode
}

/// A JSON number, kept as its source text.
struct JSONNumber: Sendable, Equatable {
    /// The number exactly as written (it matched the JSON number grammar).
    var text: String
    /// True when the number has neither a fraction nor an exponent.
    var isInteger: Bool

    /// The value when it is an integer that fits `Int64`; nil otherwise.
    var int64Value: Int64? { isInteger ? Int64(text) : nil }
}

/// A JSON value.
enum JSONValue: Sendable {
    case object([JSONMember])
    case array([JSONNode])
    case string(String)
    case number(JSONNumber)
    case bool(Bool)
    case null

    /// "an object", "a string", ...: what error messages call a value of this kind.
    var kindDescription: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// One step of a JSON path: an object key or an array index.
enum JSONPathComponent: Sendable, Equatable {
    case key(String)
    case index(Int)
}

/// Renders JSON paths the way errors show them: `$.iommu_groups[0].devices[1].name`.
///
/// Keys that are identifiers (`[A-Za-z_][A-Za-z0-9_]*`) are written `.key`; any other key is written
/// `["key"]` with JSON escapes, shortened when it is very long.
enum JSONPath {
    /// The path of the top-level value.
    static let root = "$"

    /// `path` followed by the key `key`.
    static func appending(_ path: String, key: String) -> String {
        if isIdentifier(key) { return path + "." + key }
        return path + "[" + quoted(key) + "]"
    }

    /// `path` followed by the array index `index`.
    static func appending(_ path: String, index: Int) -> String {
        path + "[" + String(index) + "]"
    }

    /// The rendered path of a list of components, starting at `$`.
    static func render(_ components: [JSONPathComponent]) -> String {
        var path = root
        for component in components {
            switch component {
            case .key(let key): path = appending(path, key: key)
            case .index(let index): path = appending(path, index: index)
            }
        }
        return path
    }

    /// True for keys written with a dot: `[A-Za-z_][A-Za-z0-9_]*`.
    static func isIdentifier(_ key: String) -> Bool {
        var first = true
        for byte in key.utf8 {
            let isLetter = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
            let isDigit = byte >= 0x30 && byte <= 0x39
            if !(isLetter || (!first && isDigit)) { return false }
            first = false
        }
        return !first
    }

    /// `text` as a JSON string literal with escapes, cut after `limit` characters ("..." marks a cut).
    static func quoted(_ text: String, limit: Int = 64) -> String {
        var out = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit { out += "..."; break }
            count += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value <= 0x9F) {
                    out += "\\u" + hex4(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Four upper-case hexadecimal digits.
    static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// A JSON syntax error: what was wrong, where (byte offset), and the path being parsed.
struct JSONSyntaxError: Error, Sendable, Equatable {
    /// What was expected or wrong.
    var message: String
    /// Byte offset of the offending character (the input's length for an early end).
    var offset: Int
    /// The JSON path of the value being parsed when the error was found.
    var path: String
}

/// A 1-based line and column for a byte offset.
///
/// Lines are separated by LF; columns count Unicode scalars (UTF-8 continuation bytes do not count),
/// and a leading byte-order mark is not counted.
func jsonLineAndColumn(in bytes: [UInt8], offset: Int) -> (line: Int, column: Int) {
    let end = min(max(offset, 0), bytes.count)
    var line = 1
    var column = 1
    var index = 0
    if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF, end >= 3 { index = 3 }
    while index < end {
        let byte = bytes[index]
        if byte == 0x0A {
            line += 1
            column = 1
        } else if byte & 0xC0 != 0x80 {
            column += 1
        }
        index += 1
    }
    return (line, column)
}

/// The strict recursive-descent parser. Depth is bounded by `maximumDepth`.
struct JSONParser {
    /// Arrays and objects may nest this deep (the top-level value is depth 1).
    static let maximumDepth = 64

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0
    private var path: [JSONPathComponent] = []

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses one JSON text: a single value with optional surrounding whitespace.
    ///
    /// A leading UTF-8 byte-order mark is skipped (RFC 8259 §8.1 allows ignoring it).
    static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONNode {
        var parser = JSONParser(bytes: bytes)
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { parser.index = 3 }
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.index < bytes.count {
            throw parser.error("unexpected \(parser.describeCurrent()) after the top-level value")
        }
        return value
    }

    // MARK: Errors

    private func error(_ message: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(message: message, offset: offset ?? index, path: JSONPath.render(path))
    }

    /// What is at `index`, for messages: "end of input", "'x'", "control character U+0001", ...
    private func describeCurrent() -> String {
        guard index < bytes.count else { return "end of input" }
        let byte = bytes[index]
        if byte == UInt8(ascii: "'") { return "\"'\"" }
        if byte >= 0x20 && byte < 0x7F { return "'" + String(UnicodeScalar(byte)) + "'" }
        if byte < 0x80 { return "control character U+" + JSONPath.hex4(UInt32(byte)) }
        let length = utf8SequenceLength(at: index)
        if length > 0 {
            let text = String(decoding: bytes[index..<(index + length)], as: UTF8.self)
            if let scalar = text.unicodeScalars.first {
                return "'" + text + "' (U+" + JSONPath.hex4(scalar.value) + ")"
            }
        }
        return "invalid UTF-8 byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    // MARK: Values

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(JSONSyntaxError) -> JSONNode {
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of input, expected a value") }
        let start = index
        switch bytes[index] {
        case UInt8(ascii: "{"): return JSONNode(value: try parseObject(), offset: start)
        case UInt8(ascii: "["): return JSONNode(value: try parseArray(), offset: start)
        case UInt8(ascii: "\""): return JSONNode(value: .string(try parseString()), offset: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return JSONNode(value: .number(try parseNumber()), offset: start)
        case UInt8(ascii: "t"): try parseLiteral("true"); return JSONNode(value: .bool(true), offset: start)
        case UInt8(ascii: "f"): try parseLiteral("false"); return JSONNode(value: .bool(false), offset: start)
        case UInt8(ascii: "n"): try parseLiteral("null"); return JSONNode(value: .null, offset: start)
        default: throw error("unexpected \(describeCurrent()), expected a value")
        }
    }

    private mutating func enterContainer() throws(JSONSyntaxError) {
        depth += 1
        if depth > JSONParser.maximumDepth {
            throw error("nesting deeper than \(JSONParser.maximumDepth) levels")
        }
    }

    private mutating func parseObject() throws(JSONSyntaxError) -> JSONValue {
        try enterContainer()
        index += 1  // '{'
        var members: [JSONMember] = []
        // Duplicate keys: a scan of the members so far while the object is small (a hash table per
        // object was most of the parse of a large topology), an index by bytes past that.
        var keyOffsets: [UTF8Key: Int] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                if !members.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    throw error("trailing comma before '}'")
                }
                throw error("expected a string key, found \(describeCurrent())")
            }
            let keyOffset = index
            let key = try parseString()
            if let first = Self.firstOffset(of: key, at: keyOffset, in: members, index: &keyOffsets) {
                path.append(.key(key))
                let (line, column) = jsonLineAndColumn(in: bytes, offset: first)
                throw error("duplicate key \(JSONPath.quoted(key)) (first at line \(line), column \(column))",
                            at: keyOffset)
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                path.append(.key(key))
                throw error("expected ':' after the key, found \(describeCurrent())")
            }
            index += 1
            path.append(.key(key))
            let value = try parseValue()
            path.removeLast()
            members.append(JSONMember(key: key, keyOffset: keyOffset, value: value))
            skipWhitespace()
            guard index < bytes.count else {
                throw error("unexpected end of input, expected ',' or '}' after an object member")
            }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; break }
            throw error("expected ',' or '}' after an object member, found \(describeCurrent())")
        }
        depth -= 1
        return .object(members)
    }

    /// Objects with more members than this index their keys in a hash table.
    private static let linearKeyScanLimit = 16

    /// Where `key` (at `offset`) first appeared among `members` (compared byte for byte), or nil.
    /// Builds `index` once the object is large, and records `key` in it.
    private static func firstOffset(of key: String, at offset: Int, in members: [JSONMember],
                                    index: inout [UTF8Key: Int]) -> Int? {
        if members.count < linearKeyScanLimit {
            return members.first { utf8Equal($0.key, key) }?.keyOffset
        }
        if index.isEmpty {
            for m in members where index[UTF8Key(m.key)] == nil { index[UTF8Key(m.key)] = m.keyOffset }
        }
        if let first = index[UTF8Key(key)] { return first }
        index[UTF8Key(key)] = offset
        return nil
    }

    private mutating func parseArray() throws(JSONSyntaxError) -> JSONValue {
        try enterContainer()
        index += 1  // '['
        var elements: [JSONNode] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            if !elements.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                throw error("trailing comma before ']'")
            }
            path.append(.index(elements.count))
            let element = try parseValue()
            path.removeLast()
            elements.append(element)
            skipWhitespace()
            guard index < bytes.count else {
                throw error("unexpected end of input, expected ',' or ']' after an array element")
            }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; break }
            throw error("expected ',' or ']' after an array element, found \(describeCurrent())")
        }
        depth -= 1
        return .array(elements)
    }

    private mutating func parseLiteral(_ word: StaticString) throws(JSONSyntaxError) {
        let start = index
        var matched = true
        word.withUTF8Buffer { literal in
            for (offset, byte) in literal.enumerated() {
                if start + offset >= bytes.count || bytes[start + offset] != byte { matched = false; return }
            }
        }
        guard matched else { throw error("invalid literal, expected true, false or null", at: start) }
        index += word.utf8CodeUnitCount
    }

    // MARK: Numbers

    private func isDigit(at position: Int) -> Bool {
        position < bytes.count && bytes[position] >= UInt8(ascii: "0") && bytes[position] <= UInt8(ascii: "9")
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONNumber {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") {
            index += 1
            guard isDigit(at: index) else { throw error("invalid number: expected a digit after '-'") }
        }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(at: index) { throw error("invalid number: leading zeros are not allowed", at: start) }
        } else {
            while isDigit(at: index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(at: index) else { throw error("invalid number: expected a digit after '.'") }
            while isDigit(at: index) { index += 1 }
            isInteger = false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard isDigit(at: index) else { throw error("invalid number: expected a digit in the exponent") }
            while isDigit(at: index) { index += 1 }
            isInteger = false
        }
        return JSONNumber(text: String(decoding: bytes[start..<index], as: UTF8.self), isInteger: isInteger)
    }

    // MARK: Strings

    /// The length of the well-formed UTF-8 sequence at `position` (Unicode Table 3-7), or 0.
    private func utf8SequenceLength(at position: Int) -> Int {
        func byte(_ k: Int) -> UInt8? { position + k < bytes.count ? bytes[position + k] : nil }
        func inRange(_ k: Int, _ low: UInt8, _ high: UInt8) -> Bool {
            guard let value = byte(k) else { return false }
            return value >= low && value <= high
        }
        guard let lead = byte(0) else { return 0 }
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: return inRange(1, 0x80, 0xBF) ? 2 : 0
        case 0xE0: return inRange(1, 0xA0, 0xBF) && inRange(2, 0x80, 0xBF) ? 3 : 0
        case 0xE1...0xEC, 0xEE...0xEF: return inRange(1, 0x80, 0xBF) && inRange(2, 0x80, 0xBF) ? 3 : 0
        case 0xED: return inRange(1, 0x80, 0x9F) && inRange(2, 0x80, 0xBF) ? 3 : 0
        case 0xF0: return inRange(1, 0x90, 0xBF) && inRange(2, 0x80, 0xBF) && inRange(3, 0x80, 0xBF) ? 4 : 0
        case 0xF1...0xF3:
            return inRange(1, 0x80, 0xBF) && inRange(2, 0x80, 0xBF) && inRange(3, 0x80, 0xBF) ? 4 : 0
        case 0xF4: return inRange(1, 0x80, 0x8F) && inRange(2, 0x80, 0xBF) && inRange(3, 0x80, 0xBF) ? 4 : 0
        default: return 0
        }
    }

    /// Four hexadecimal digits at `position`, or nil.
    private func hexQuad(at position: Int) -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for k in 0..<4 {
            let byte = bytes[position + k]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private static func appendUTF8(_ value: UInt32, to buffer: inout [UInt8]) {
        switch value {
        case 0..<0x80:
            buffer.append(UInt8(value))
        case 0x80..<0x800:
            buffer.append(UInt8(0xC0 | (value >> 6)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        case 0x800..<0x10000:
            buffer.append(UInt8(0xE0 | (value >> 12)))
            buffer.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        default:
            buffer.append(UInt8(0xF0 | (value >> 18)))
            buffer.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
            buffer.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        }
    }

    /// Parses a string starting at its opening quote; the result is valid UTF-8 by construction.
    private mutating func parseString() throws(JSONSyntaxError) -> String {
        let start = index
        index += 1  // '"'
        // Printable ASCII up to the closing quote (every key and name a real topology has): the
        // String is made from the input bytes at once, with no intermediate buffer.
        var scan = index
        while scan < bytes.count {
            let byte = bytes[scan]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { break }
            scan += 1
        }
        if scan < bytes.count, bytes[scan] == UInt8(ascii: "\"") {
            defer { index = scan + 1 }
            return String(decoding: bytes[index..<scan], as: UTF8.self)
        }
        var buffer = Array(bytes[index..<scan])
        index = scan
        while true {
            guard index < bytes.count else { throw error("unterminated string", at: start) }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                break
            }
            if byte == UInt8(ascii: "\\") {
                try parseEscape(into: &buffer)
                continue
            }
            if byte < 0x20 {
                throw error("control character U+\(JSONPath.hex4(UInt32(byte))) must be escaped in a string")
            }
            if byte < 0x80 {
                buffer.append(byte)
                index += 1
                continue
            }
            let length = utf8SequenceLength(at: index)
            guard length > 0 else {
                throw error("invalid UTF-8 in string (byte 0x\(String(byte, radix: 16, uppercase: true)))")
            }
            buffer.append(contentsOf: bytes[index..<(index + length)])
            index += length
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    private mutating func parseEscape(into buffer: inout [UInt8]) throws(JSONSyntaxError) {
        let escapeStart = index
        guard index + 1 < bytes.count else { throw error("unterminated string", at: escapeStart) }
        let code = bytes[index + 1]
        switch code {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(code)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            guard let unit = hexQuad(at: index + 2) else {
                throw error("invalid \\u escape: expected four hexadecimal digits")
            }
            index += 6
            switch unit {
            case 0xD800...0xDBFF:
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u"),
                      let low = hexQuad(at: index + 2), low >= 0xDC00, low <= 0xDFFF else {
                    throw error("unpaired high surrogate \\u\(JSONPath.hex4(unit)) "
                                + "(it must be followed by a low surrogate \\uDC00-\\uDFFF)", at: escapeStart)
                }
                index += 6
                JSONParser.appendUTF8(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), to: &buffer)
            case 0xDC00...0xDFFF:
                throw error("unpaired low surrogate \\u\(JSONPath.hex4(unit))", at: escapeStart)
            default:
                JSONParser.appendUTF8(unit, to: &buffer)
            }
            return
        default:
            index += 1
            throw error("invalid escape sequence '\\' followed by \(describeCurrent())", at: escapeStart)
        }
        index += 2
    }
}
