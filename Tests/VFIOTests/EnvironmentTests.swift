// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

/// Configuration is read once, at the edge (the C ABI), and passed in: these pin down how the
/// variables map to a `VFIOEnvironment` and that the model itself never reads them.
@Suite struct EnvironmentTests {
    @Test func variablesMapToTheEnvironment() {
        let vars = ["SWIFTVFIO_TOPOLOGY": "/t.json", "SWIFTVFIO_TRACE": "-", "SWIFTVFIO_LOG": "1"]
        let env = VFIOEnvironment { vars[$0] }
        #expect(env.topologyPath == "/t.json")
        #expect(env.diagnostics == VFIODiagnostics(trace: "-", echoLog: true))
    }

    @Test func unsetAndEmptyMeanNothingAndLogZeroIsOff() {
        #expect(VFIOEnvironment { _ in nil } == .none)
        #expect(VFIOEnvironment { _ in "" } == .none)
        let off = VFIOEnvironment { $0 == "SWIFTVFIO_LOG" ? "0" : nil }
        #expect(!off.diagnostics.echoLog)
        let on = VFIOEnvironment { $0 == "SWIFTVFIO_LOG" ? "yes" : nil }
        #expect(on.diagnostics.echoLog)
    }

    /// A subsystem's trace follows its diagnostics, not the process environment: with
    /// SWIFTVFIO_TRACE set, a subsystem made without diagnostics traces nothing, and one made with
    /// them traces to the file they name.
    @Test func subsystemsIgnoreTheProcessEnvironment() throws {
        let path = "/tmp/swiftvfio-env-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        setenv("SWIFTVFIO_TRACE", path, 1)
        setenv("SWIFTVFIO_LOG", "1", 1)
        let plain = makeSubsystem()
        unsetenv("SWIFTVFIO_TRACE")
        unsetenv("SWIFTVFIO_LOG")
        #expect(!plain.tracer.isEnabled)
        #expect(plain.diagnostics == .none)
        #expect(access(path, F_OK) != 0)
        teardown(plain)

        let traced = VFIOSubsystem(diagnostics: VFIODiagnostics(trace: path))
        #expect(traced.tracer.isEnabled)
        let c = try traced.open("/dev/vfio/vfio")
        try traced.close(c)
        traced.tracer.disable()
        let text = String(decoding: try TopologyFileSystem.readFile(path, limit: 1 << 20, source: path, tooLarge: "big"),
                          as: UTF8.self)
        #expect(text.contains("] open(\"/dev/vfio/vfio\", O_RDWR) = \(c)\n"))
        teardown(traced)
    }
}
