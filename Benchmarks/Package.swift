// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
// libswiftvfio benchmarks: its own package, release builds, C baselines measured in the same run.
// Run everything with `bash Scripts/bench.sh` from the repository root (docs/BENCHMARKS.md).
import Foundation
import PackageDescription

// `.package(path: "..")` takes its identity from the root directory's name, which differs between
// checkouts (/work/main, a CI clone): compute it rather than spelling it.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent
let rootInclude = root.appendingPathComponent("include").path

let package = Package(
    name: "libswiftvfio-benchmarks",
    dependencies: [.package(path: "..")],
    targets: [
        // The C side: the same logic in C with pthread mutexes (the baselines), the clock, and
        // thread helpers, shared by both executables so every comparison uses one timer.
        .target(name: "CBaselines"),
        // The driver: runs every measurement (core ones itself, each in a fresh child process),
        // prints the table.
        .executableTarget(name: "vfio-bench",
                          dependencies: ["CBaselines", .product(name: "VFIO", package: rootIdentity)]),
        // The C ABI side: links libswiftvfio.so as a C program does and times its exported
        // functions against CBaselines in the same loops; also runs under the LD_PRELOAD interposer.
        .executableTarget(name: "vfio-bench-c",
                          dependencies: ["CBaselines", .product(name: "swiftvfio", package: rootIdentity)],
                          cSettings: [.unsafeFlags(["-I", rootInclude])]),
    ]
)
