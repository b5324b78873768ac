// SPDX-License-Identifier: Apache-2.0
// Every row of docs/ERRORS.md, driven by its row id (issue 18 item 3): each row is reached, its
// exact code checked, and, for a failure, the reason the model gives (the check that failed, with
// its values) checked by a stable fragment. The rows live in one table per area beside this file
// (ErrorRows+*.swift); the rows only C can reach are in Tests/CABI/test_error_reasons.c, each
// marked `ROW("id")`. `everyRowOfTheCatalogueHasATest` fails for a row id in docs/ERRORS.md that
// neither table names, so a new row cannot go untested.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

/// What a row's operation gave: a value, or an errno with its reason.
enum RowOutcome: Equatable, CustomStringConvertible {
    case value(Int)
    case failed(Errno)

    var description: String {
        switch self {
        case .value(let v): "value \(v)"
        case .failed(let e): "\(e.name) (\(e.reasonText ?? "no reason"))"
        }
    }
}

/// One row of docs/ERRORS.md: how to reach it, and what it must give.
struct ErrorRow: CustomStringConvertible, Sendable {
    /// The row id (the anchor in docs/ERRORS.md); a row reached several ways lists it once per way
    /// with a note after a space: "t1-map-einval-align (iova)".
    let id: String
    /// The code the row documents, or nil for a row that documents a success.
    let code: Errno?
    /// For a failure: a fragment the reason must contain (with the values). For a success: unused.
    let reason: String
    /// For a success: the value the operation must return.
    let value: Int
    /// Reaches the row and returns the operation's outcome (setting up and tearing down itself).
    let run: @Sendable () throws -> RowOutcome

    var description: String { id }
    /// The row id without the note.
    var rowID: String { String(id.split(separator: " ").first ?? "") }
}

extension ErrorRow {
    /// A row reached on a fresh subsystem (`populate`d unless `populated` is false), torn down after
    /// (expecting `warnings` WARNs). `body` performs the steps; the errno the last one throws is the row's.
    static func sub(_ id: String, _ code: Errno, _ reason: String,
                    config: VFIOConfig = VFIOConfig(unregisterRequestInterval: .milliseconds(20)),
                    rawIO: RawIOPolicy = .granted, populated: Bool = true, warnings: Int = 0,
                    _ body: @escaping @Sendable (VFIOSubsystem) throws -> Int) -> ErrorRow {
        ErrorRow(id: id, code: code, reason: reason, value: 0,
                 run: onSubsystem(config: config, rawIO: rawIO, populated: populated, warnings: warnings, body))
    }

    /// A row that documents a success: `body` must return `value`.
    static func succeeds(_ id: String, value: Int,
                         config: VFIOConfig = VFIOConfig(unregisterRequestInterval: .milliseconds(20)),
                         rawIO: RawIOPolicy = .granted, populated: Bool = true, warnings: Int = 0,
                         _ body: @escaping @Sendable (VFIOSubsystem) throws -> Int) -> ErrorRow {
        ErrorRow(id: id, code: nil, reason: "", value: value,
                 run: onSubsystem(config: config, rawIO: rawIO, populated: populated, warnings: warnings, body))
    }

    /// A type1 row, reached on the backend directly (docs/ERRORS.md#type1): `body` returns the errno.
    static func t1(_ id: String, _ code: Errno, _ reason: String, type: UInt = Type1UAPI.extType1v2,
                   groups: [VFIOGroupType] = [.iommu], _ body: @escaping @Sendable (T1Container) -> Errno?) -> ErrorRow {
        ErrorRow(id: id, code: code, reason: reason, value: 0) {
            let c = T1Container(type: type, groups: groups)
            return body(c).map(RowOutcome.failed) ?? .value(0)
        }
    }

    private static func onSubsystem(config: VFIOConfig, rawIO: RawIOPolicy, populated: Bool, warnings: Int,
                                    _ body: @escaping @Sendable (VFIOSubsystem) throws -> Int) -> @Sendable () throws -> RowOutcome {
        {
            let sub = makeSubsystem(config, rawIO: rawIO)
            if populated { try populate(sub) }
            let outcome: RowOutcome
            do { outcome = .value(try body(sub)) } catch let e as Errno { outcome = .failed(e) }
            sub.rawIOPolicy = .granted
            sub.faults.reset()
            teardown(sub, expectWarnings: warnings)
            return outcome
        }
    }
}

/// The tables, one per area.
enum ErrorRows {
    static var all: [ErrorRow] { group + device + container + type1 + iommufd + pci + registration }
}

@Suite struct ErrorRowTests {
    @Test(arguments: ErrorRows.all) func rowGivesItsCodeAndSaysWhy(_ row: ErrorRow) throws {
        let outcome = try row.run()
        guard let code = row.code else {
            #expect(outcome == .value(row.value), "docs/ERRORS.md#\(row.rowID): \(outcome)")
            return
        }
        guard case .failed(let e) = outcome else {
            Issue.record("docs/ERRORS.md#\(row.rowID): expected \(code.name), got \(outcome)")
            return
        }
        #expect(e == code, "docs/ERRORS.md#\(row.rowID): expected \(code.name), got \(outcome)")
        let why = try #require(e.reasonText, "docs/ERRORS.md#\(row.rowID): \(e.name) without a reason")
        #expect(why.contains(row.reason), "docs/ERRORS.md#\(row.rowID): reason \"\(why)\" lacks \"\(row.reason)\"")
    }

    /// The row ids of docs/ERRORS.md: an anchor whose id is also written as code in its own table
    /// row (or paragraph), as every row of the catalogue is; section anchors are not rows.
    static func catalogueRowIDs() throws -> [String] {
        let text = try #require(readText(repoRoot + "/docs/ERRORS.md"))
        var ids: [String] = []
        for paragraph in text.split(separator: "\n\n").map(String.init) {
            let lines = paragraph.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            let units = !lines.isEmpty && lines.allSatisfy({ $0.hasPrefix("|") }) ? lines : [paragraph]
            for unit in units {
                var rest = unit[...]
                while let open = rest.firstRange(of: "<a id=\"") {
                    rest = rest[open.upperBound...]
                    guard let close = rest.firstIndex(of: "\"") else { break }
                    let id = String(rest[..<close])
                    if unit.contains("`\(id)`") { ids.append(id) }
                }
            }
        }
        return ids
    }

    /// The repository, from this file's path (`<repository>/Tests/VFIOTests/ErrorRows/ErrorRowTable.swift`).
    static let repoRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        return parts.joined(separator: "/")
    }()

    /// A text file's contents, or nil when it cannot be read.
    static func readText(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The row ids the C table asserts (`ROW("id")` in Tests/CABI/test_error_reasons.c).
    static func cRowIDs() throws -> Set<String> {
        let text = try #require(readText(repoRoot + "/Tests/CABI/test_error_reasons.c"))
        var ids: Set<String> = []
        var rest = text[...]
        while let r = rest.firstRange(of: "ROW(\"") {
            rest = rest[r.upperBound...]
            guard let close = rest.firstIndex(of: "\"") else { break }
            ids.insert(String(rest[..<close]))
        }
        return ids
    }

    /// Rows no test reaches, each with why. Kept to the rows whose condition costs more than a
    /// test can spend; each must still be a row of the catalogue.
    static let unreachedRows: [String: String] = [
        "c-enomem-handles": "the C handle table holds 2^24 live handles; filling it takes 16M swiftvfio_fget calls",
    ]

    /// Anchors in table rows that do not write their id as code: such a row would escape
    /// `catalogueRowIDs`, so the catalogue's convention is checked too.
    static func tableAnchorsWithoutCode() throws -> [String] {
        let text = try #require(readText(repoRoot + "/docs/ERRORS.md"))
        var odd: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("|") {
            var rest = line[...]
            while let open = rest.firstRange(of: "<a id=\"") {
                rest = rest[open.upperBound...]
                guard let close = rest.firstIndex(of: "\"") else { break }
                let id = String(rest[..<close])
                if !line.contains("`\(id)`") { odd.append(id) }
            }
        }
        return odd
    }

    @Test func everyRowOfTheCatalogueHasATest() throws {
        #expect(try Self.tableAnchorsWithoutCode().isEmpty, "table rows whose id is not written as `id`")
        let catalogue = try Self.catalogueRowIDs()
        #expect(catalogue.count >= 180, "the row parser found only \(catalogue.count) rows")
        #expect(Set(catalogue).count == catalogue.count, "duplicate row ids: \(catalogue)")
        let swift = Set(ErrorRows.all.map(\.rowID))
        let c = try Self.cRowIDs()
        let missing = catalogue.filter { !swift.contains($0) && !c.contains($0) && Self.unreachedRows[$0] == nil }
        #expect(missing.isEmpty, "rows of docs/ERRORS.md without a test: \(missing)")
        // And no test names a row the catalogue does not have (a renamed or removed row).
        let unknown = swift.union(c).union(Self.unreachedRows.keys).subtracting(catalogue)
        #expect(unknown.isEmpty, "tests name rows docs/ERRORS.md does not have: \(unknown.sorted())")
    }
}
