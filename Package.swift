// swift-tools-version:6.1
// libswiftvfio: a user-space model of the Linux v6.3 VFIO group layer, exported to C.
// The root package has no third-party dependencies (design card); Benchmarks/ is its own package.
import PackageDescription

let package = Package(
    name: "libswiftvfio",
    products: [
        .library(name: "VFIO", targets: ["VFIO"]),
        // The C ABI: libswiftvfio.so (include/swiftvfio.h).
        .library(name: "swiftvfio", type: .dynamic, targets: ["SwiftVFIO"]),
    ],
    targets: [
        // Platform code at the edge (swift-nio style): guarded user-memory copies, memfd
        // placeholders, capget, TSan annotations, and the uapi constants from <linux/vfio.h>.
        .target(name: "CSwiftVFIOShim"),
        // The model: group.c and everything it leans on.
        .target(name: "VFIO", dependencies: ["CSwiftVFIOShim"]),
        // The C types the C ABI's header declares (struct vfio_device_ops, the incomplete structs).
        .target(name: "CSwiftVFIOTypes"),
        // The C ABI: @c functions only (handles <-> objects, user memory, errors -> errno).
        .target(name: "SwiftVFIO", dependencies: ["VFIO", "CSwiftVFIOTypes"]),
        .testTarget(name: "VFIOTests", dependencies: ["VFIO", "CSwiftVFIOShim"]),
    ]
)
