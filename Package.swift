// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
// libswiftvfio: a user-space model of the Linux v6.3 VFIO group layer, exported to C.
// The root package has no third-party dependencies (design card); Benchmarks/ is its own package.
import PackageDescription

let package = Package(
    name: "libswiftvfio",
    products: [
        .library(name: "VFIO", targets: ["VFIO"]),
        // The C ABI: libswiftvfio.so (include/swiftvfio.h).
        .library(name: "swiftvfio", type: .dynamic, targets: ["SwiftVFIOCABI"]),
        // The LD_PRELOAD interposer: libswiftvfio-preload.so, thin C that loads libswiftvfio.so
        // beside itself on first use (docs/PRELOAD.md).
        .library(name: "swiftvfio-preload", type: .dynamic, targets: ["CSwiftVFIOPreload"]),
        // The fuzzers' decoders, for the fuzz executables in Fuzz/ (their own package).
        .library(name: "VFIOFuzzSupport", targets: ["VFIOFuzzSupport"]),
        // The command-line tool: run, topology check/show/capture, state.
        .executable(name: "vfioctl", targets: ["vfioctl"]),
    ],
    targets: [
        // Platform code at the edge (swift-nio style): guarded user-memory copies, memfd
        // placeholders, capget, TSan annotations, and the uapi constants from <linux/vfio.h>.
        .target(name: "CSwiftVFIOShim"),
        // The topology readers: the strict JSON parser (line and column, no Foundation), the schema,
        // the sysfs-shaped reader and the built-in default, producing a plain `TopologySpec` that
        // the model's loader turns into devices. Knows nothing of the model.
        .target(name: "VFIOTopology"),
        // The model: group.c and everything it leans on.
        .target(name: "VFIO", dependencies: ["CSwiftVFIOShim", "VFIOTopology"]),
        // The C types the C ABI's header declares (struct vfio_device_ops, the incomplete structs).
        .target(name: "CSwiftVFIOTypes"),
        // The C ABI: @c functions only (handles <-> objects, user memory, errors -> errno).
        .target(name: "SwiftVFIOCABI", dependencies: ["VFIO", "CSwiftVFIOTypes"]),
        // The interposer: C only, no Swift and no link to libswiftvfio.so (one model per process).
        .target(name: "CSwiftVFIOPreload",
                cSettings: [.headerSearchPath("../../include"), .define("SWIFTVFIO_PRELOAD")]),
        .testTarget(name: "VFIOTests", dependencies: ["VFIO", "VFIOTopology", "CSwiftVFIOShim"]),
        // Reliability: the fuzzers' decoders, shared by the libFuzzer executables (the Fuzz/
        // package) and the regression tests below, which replay the corpus through them.
        .target(name: "VFIOFuzzSupport", dependencies: ["VFIO"]),
        .testTarget(name: "VFIOFuzzTests", dependencies: ["VFIOFuzzSupport", "VFIO"]),
        // vfioctl: links the core (topology check/show load topologies exactly as the model does);
        // it never links libswiftvfio.so (a program it runs gets the model through the interposer).
        .executableTarget(name: "vfioctl", dependencies: ["VFIO", "VFIOTopology"]),
    ]
)
