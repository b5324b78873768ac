// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import FuzzReplay
import VFIOFuzzSupport

// The operations fuzzer: bytes decoded into model system calls on a small topology
// (`FuzzOps`, shared with the regression tests in Tests/VFIOFuzzTests).
//
// Built with `--sanitize=fuzzer`, libFuzzer supplies `main` and calls the entry point below.
// Built plainly, SwiftPM links `main` to `VFIOFuzzOps_main` (the target is compiled with
// `-parse-as-library`, so it has no generated one): it replays the input files it is given.

/// libFuzzer's entry point: one input. A finding aborts, so libFuzzer keeps the input as a crash.
@c(LLVMFuzzerTestOneInput)
public func vfioFuzzOpsTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let r = FuzzOps.run(UnsafeRawBufferPointer(start: data, count: size))
    if !r.findings.isEmpty {
        print("VFIOFuzzOps findings:\n  " + r.findings.joined(separator: "\n  "))
        fflush(nil)
        abort()
    }
    return 0
}

/// The entry point of a build without libFuzzer: replays files and directories of inputs.
@c(VFIOFuzzOps_main)
public func vfioFuzzOpsMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runInputFiles(Array(CommandLine.arguments.dropFirst()), name: "VFIOFuzzOps") { FuzzOps.run($0, trace: fuzzTraceRequested) }
}
