// SPDX-License-Identifier: Apache-2.0
// Issue 18 item 3 as a property of the sources: every place the model throws an errno it names
// itself (`throw .EINVAL`, `throw Errno.EFAULT`, `throw Errno(rawValue: ...)`, `.failure(.E...)`)
// attaches the reason with `.because(...)`, so no new throw site can come without one. A throw
// of an errno received from elsewhere (`throw error`) keeps that errno's reason and is not
// flagged.
#if canImport(Glibc)
import Glibc
#endif
import Testing

@Suite struct ReasonAtEveryThrowTests {
    /// The Swift files under `dir`, recursively (sorted, for stable messages).
    static func swiftFiles(under dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            let path = dir + "/" + name
            if entry.pointee.d_type == UInt8(DT_DIR) {
                out += swiftFiles(under: path)
            } else if name.hasSuffix(".swift") {
                out.append(path)
            }
        }
        return out.sorted()
    }

    /// Whether `text` at `i` starts an errno constant (`E` and capitals or digits).
    static func errnoConstant(in text: Substring) -> Substring? {
        guard text.first == "E" else { return nil }
        let name = text.prefix { $0.isUppercase || $0.isNumber }
        return name.count >= 3 ? name : nil
    }

    /// The places on `line` where an errno the code names itself is thrown or failed with and no
    /// `.because(` follows it (for `Errno(rawValue:`, none anywhere on the line or `next`).
    static func bareSites(_ line: String, next: String) -> [String] {
        var found: [String] = []
        for marker in ["throw .", "throw Errno.", ".failure(.", ".failure(Errno.", "? .", ": ."] {
            var rest = line[...]
            while let r = rest.firstRange(of: marker) {
                rest = rest[r.upperBound...]
                guard let name = errnoConstant(in: rest) else { continue }
                let after = rest[name.endIndex...]
                // `? .EACCES :` in a ternary that throws: each branch must carry its reason.
                if (marker == "? ." || marker == ": .") && !line.contains("throw") { continue }
                if !after.hasPrefix(".because(") { found.append(marker + name) }
            }
        }
        if line.contains("throw Errno(rawValue") && !line.contains(".because(") && !next.contains(".because(") {
            found.append("throw Errno(rawValue:")
        }
        return found
    }

    @Test func everyErrnoTheModelThrowsCarriesAReason() throws {
        let root = ErrorRowTests.repoRoot
        var files: [String] = []
        for target in ["VFIO", "SwiftVFIOCABI"] { files += Self.swiftFiles(under: root + "/Sources/" + target) }
        #expect(files.count > 50, "found only \(files.count) source files under \(root)/Sources")
        var bare: [String] = []
        for path in files {
            let lines = try #require(ErrorRowTests.readText(path)).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (i, line) in lines.enumerated() {
                let code = line.trimmingPrefix(while: { $0 == " " })
                if code.hasPrefix("//") { continue }
                for site in Self.bareSites(line, next: i + 1 < lines.count ? lines[i + 1] : "") {
                    bare.append("\(path.dropFirst(root.count + 1)):\(i + 1): \(site)")
                }
            }
        }
        #expect(bare.isEmpty, "errno thrown without a reason:\n\(bare.joined(separator: "\n"))")
    }

    @Test func theScanFindsABareThrow() {
        // The scanner itself: a bare throw is found, a reasoned one and a rethrow are not.
        #expect(Self.bareSites("        guard x else { throw .EINVAL }", next: "") == ["throw .EINVAL"])
        #expect(Self.bareSites("throw Errno.EFAULT", next: "") == ["throw Errno.EFAULT"])
        #expect(Self.bareSites("return .failure(.EBUSY)", next: "") == [".failure(.EBUSY"])
        #expect(Self.bareSites("throw e == .EACCES ? .EACCES : .ENOMEM", next: "") == ["? .EACCES", ": .ENOMEM"])
        #expect(Self.bareSites("if r < 0 { throw Errno(rawValue: -r) }", next: "") == ["throw Errno(rawValue:"])
        #expect(Self.bareSites("throw .EINVAL.because(\"argsz {} < minsz {}\", a, 8)", next: "").isEmpty)
        #expect(Self.bareSites("throw Errno(rawValue: -r).because(\"x\")", next: "").isEmpty)
        #expect(Self.bareSites("throw error", next: "").isEmpty)
    }
}
