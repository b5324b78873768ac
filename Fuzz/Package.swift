// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
// libswiftvfio fuzzers: its own package (like Benchmarks/), so the root package needs no unsafe
// flags. Build and run them with `bash Scripts/fuzz.sh [SECONDS]` from the repository root.
//
// The decoders (`VFIOFuzzSupport`) stay in the root package: the regression tests in
// Tests/VFIOFuzzTests replay the corpus through them in a plain `swift test`.
import Foundation
import PackageDescription

// `.package(path: "..")` takes its identity from the root directory's name, which differs between
// checkouts (/work/main, a CI clone): compute it rather than spelling it.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent
let support = Target.Dependency.product(name: "VFIOFuzzSupport", package: rootIdentity)

let package = Package(
    name: "libswiftvfio-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        // Replaying input files in a build without libFuzzer (`swift run VFIOFuzzOps FILE...`).
        .target(name: "FuzzReplay", dependencies: [support]),
        // The executables are compiled as libraries: libFuzzer brings `main` to a fuzz build, and
        // a plain build links `main` to their `@c(<Target>_main)` corpus replayer.
        .executableTarget(name: "VFIOFuzzOps", dependencies: [support, "FuzzReplay"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "VFIOFuzzTopology", dependencies: [support, "FuzzReplay"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
