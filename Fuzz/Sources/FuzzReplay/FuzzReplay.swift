// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIOFuzzSupport

// What the fuzz executables do when built without libFuzzer: replay input files through the same
// decoders (`VFIOFuzzSupport`). Only the executables need it, so it lives in the Fuzz package.

/// Runs every input named on the command line (files, or directories of files) through `body`:
/// what a fuzz executable does when built without libFuzzer. Exit status 1 when any input has
/// findings. With SWIFTVFIO_FUZZ_TRACE=1 the decoded operations of each input are printed.
public func runInputFiles(_ arguments: [String], name: String, _ body: ([UInt8]) -> FuzzOpsResult) -> Int32 {
    var files: [String] = []
    for a in arguments {
        if let dir = opendir(a) {
            while let e = readdir(dir) {
                let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if n != "." && n != ".." { files.append(a + "/" + n) }
            }
            closedir(dir)
        } else {
            files.append(a)
        }
    }
    if files.isEmpty {
        print("\(name): built without libFuzzer; give input files or directories to replay them "
              + "(fuzz with Scripts/fuzz.sh, which builds this package with --sanitize=fuzzer,address)")
        return 0
    }
    var bad = 0
    for f in files.sorted() {
        guard let bytes = readFile(f) else { print("\(f): cannot read"); bad += 1; continue }
        let r = body(bytes)
        if !r.trace.isEmpty { print("\(f):\n  " + r.trace.joined(separator: "\n  ")) }
        if !r.findings.isEmpty {
            bad += 1
            print("\(f): \(r.findings.joined(separator: "\n  "))")
        }
    }
    print("\(name): \(files.count) inputs, \(bad) with findings")
    return bad == 0 ? 0 : 1
}

/// Whether SWIFTVFIO_FUZZ_TRACE=1 asks for traces.
public var fuzzTraceRequested: Bool { getenv("SWIFTVFIO_FUZZ_TRACE").map { String(cString: $0) == "1" } ?? false }

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}
