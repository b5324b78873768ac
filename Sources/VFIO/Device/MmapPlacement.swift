// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What mmap(2) says beyond the file range: its `addr` argument and its flags. In the kernel these
/// become the `struct vm_area_struct` a driver's `mmap` fills: `VM_SHARED` (vfio-pci maps only
/// shared mappings) and where the mm layer put the area (at a hint when it is free, anywhere
/// else otherwise; exactly at `addr` with MAP_FIXED, replacing what was there; with
/// MAP_FIXED_NOREPLACE exactly there or EEXIST). The model places a mapping where the kernel
/// would, so a client that reserves address space and maps BARs over it (DPDK) gets its layout.
public struct MmapPlacement: Sendable, Equatable {
    /// mmap's `addr`: a hint, or with MAP_FIXED / MAP_FIXED_NOREPLACE the address. 0: anywhere.
    public var address: UInt
    /// mmap's `flags` (MAP_SHARED, MAP_PRIVATE, MAP_FIXED, ...).
    public var flags: Int32

    /// A placement from mmap(2)'s `addr` and `flags`.
    public init(address: UInt = 0, flags: Int32 = MAP_SHARED) {
        self.address = address
        self.flags = flags
    }

    /// A shared mapping anywhere: `mmap(NULL, ..., MAP_SHARED, fd, offset)`.
    public static let shared = MmapPlacement()

    /// `VM_SHARED`: MAP_SHARED or MAP_SHARED_VALIDATE (the kernel's `MAP_TYPE` field).
    public var isShared: Bool {
        let type = flags & 0x0f
        return type == MAP_SHARED || type == MAP_SHARED_VALIDATE
    }

    /// MAP_FIXED: the area is `address` exactly, and whatever was mapped there goes first.
    public var replaces: Bool { flags & MAP_FIXED != 0 }

    /// MAP_FIXED or MAP_FIXED_NOREPLACE: the area must be `address` exactly.
    public var isFixed: Bool { flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 }

    /// The placement flags a host mmap(2) of the model's own memory takes to put it where this asks.
    var hostPlacementFlags: Int32 { flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) }
}
