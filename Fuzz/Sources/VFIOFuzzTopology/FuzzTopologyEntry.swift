// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import FuzzReplay
import VFIOFuzzSupport

// The topology fuzzer: bytes as JSON into TopologySpec.parse and VFIOSubsystem.load
// (`FuzzTopology`, shared with the regression tests in Tests/VFIOFuzzTests).
//
// Built with `--sanitize=fuzzer`, libFuzzer supplies `main` and calls the entry point below.
// Built plainly, SwiftPM links `main` to `VFIOFuzzTopology_main` (the target is compiled with
// `-parse-as-library`, so it has no generated one): it replays the input files it is given.

/// libFuzzer's entry point: one input. A finding aborts, so libFuzzer keeps the input as a crash.
@c(LLVMFuzzerTestOneInput)
public func vfioFuzzTopologyTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let r = FuzzTopology.run(UnsafeRawBufferPointer(start: data, count: size))
    if !r.findings.isEmpty {
        print("VFIOFuzzTopology findings:\n  " + r.findings.joined(separator: "\n  "))
        fflush(nil)
        abort()
    }
    return 0
}

/// The entry point of a build without libFuzzer: replays files and directories of inputs.
@c(VFIOFuzzTopology_main)
public func vfioFuzzTopologyMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runInputFiles(Array(CommandLine.arguments.dropFirst()), name: "VFIOFuzzTopology") { FuzzTopology.run($0) }
}
