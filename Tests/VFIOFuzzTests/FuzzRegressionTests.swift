// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
import VFIO
import VFIOFuzzSupport

/// The fuzzers' inputs as tests: the committed corpus, every crash the fuzzers found, and a
/// few hundred deterministic random inputs, each through the very decoder the fuzz executables
/// use (`VFIOFuzzSupport`), so a crash found by libFuzzer stays fixed in a plain `swift test`.
@Suite struct FuzzRegressionTests {
    /// The repository's Fuzz/corpus/<name>.
    static func corpus(_ name: String) -> [(String, [UInt8])] {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        let dir = path + "/Fuzz/corpus/" + name
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [(String, [UInt8])] = []
        while let e = readdir(d) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !n.hasPrefix("."), let f = fopen(dir + "/" + n, "rb") else { continue }
            var bytes: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let k = fread(&buf, 1, buf.count, f)
                if k <= 0 { break }
                bytes += buf[0..<k]
            }
            fclose(f)
            out.append((n, bytes))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    @Test func opsCorpusRunsClean() {
        let inputs = Self.corpus("ops")
        #expect(inputs.count >= 10, "Fuzz/corpus/ops is missing")
        var ops = 0
        for (name, bytes) in inputs {
            let r = FuzzOps.run(bytes)
            ops += r.ops
            #expect(r.findings.isEmpty, "\(name): \(r.findings)")
        }
        #expect(ops > inputs.count)
    }

    @Test func topologyCorpusRunsClean() {
        let inputs = Self.corpus("topology")
        #expect(inputs.count >= 10, "Fuzz/corpus/topology is missing")
        for (name, bytes) in inputs {
            let r = FuzzTopology.run(bytes)
            #expect(r.findings.isEmpty, "\(name): \(r.findings)")
        }
    }

    /// A few hundred inputs from a fixed generator: any byte string must decode and run clean.
    @Test func randomInputsRunClean() {
        var state: UInt64 = 0x7e57_f022
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for i in 0..<300 {
            let bytes = (0..<Int(next() % 400)).map { _ in UInt8(truncatingIfNeeded: next()) }
            let r = FuzzOps.run(bytes)
            #expect(r.findings.isEmpty, "random input \(i) \(bytes): \(r.findings)")
        }
    }

    @Test func emptyAndTinyInputs() {
        for bytes: [UInt8] in [[], [0], [0xff], [0, 0], [0x3f, 0x0f, 0xff]] {
            #expect(FuzzOps.run(bytes).findings.isEmpty)
            #expect(FuzzTopology.run(bytes).findings.isEmpty)
        }
    }

    // MARK: crashes the fuzzers found (each input replayed through the same decoder)

    /// VFIOFuzzOps, minimised: arm `deviceIndex`, probe an emulated device. Its allocation failed
    /// after the driver was bound, and `probeEmulatedDevice` left the bus device bound to
    /// mdev-model, so it could never be removed ("fz1 still bound to mdev-model with no VFIO
    /// device"). Fixed in DriverProbe.swift. Also Fuzz/corpus/ops/regression-emulated-probe-unbind.
    @Test func emulatedProbeWhoseAllocationFailsIsUnbound() {
        let input: [UInt8] = [0x00, 0x0e, 0x2d, 0x00, 0x09, 0x09]
        let r = FuzzOps.run(input, trace: true)
        #expect(r.trace == ["arm deviceIndex", "probe fz1 kind 3: ENOMEM"])
        #expect(r.findings.isEmpty, "\(r.findings)")
    }
}
