// SPDX-License-Identifier: Apache-2.0
/// The type1 slice of `include/uapi/linux/vfio.h` (docs/ERRORS.md#extension-ids, docs/ERRORS.md#type1): ioctl numbers, flag
/// bits and the argument structs exactly as user space lays them out.
///
/// The structs are plain `UInt32`/`UInt64` fields in declaration order, which Swift lays out like C
/// (natural alignment, no reordering); a test pins every size and offset. They are copied through
/// `UserMemory`, never dereferenced in place.
public enum Type1UAPI {
    // MARK: ioctl numbers (`_IO(';', 100 + n)`: no size or direction bits)

    /// `VFIO_CHECK_EXTENSION`: the one container ioctl type1 also answers without state.
    public static let checkExtension: UInt32 = 0x3B65
    /// `VFIO_IOMMU_GET_INFO`.
    public static let getInfo: UInt32 = 0x3B70
    /// `VFIO_IOMMU_MAP_DMA`.
    public static let mapDMA: UInt32 = 0x3B71
    /// `VFIO_IOMMU_UNMAP_DMA`.
    public static let unmapDMA: UInt32 = 0x3B72
    /// `VFIO_IOMMU_DIRTY_PAGES`.
    public static let dirtyPages: UInt32 = 0x3B75

    // MARK: extension / IOMMU type ids (docs/ERRORS.md#extension-ids)

    /// `VFIO_TYPE1_IOMMU`: type1 v1.
    public static let extType1: UInt = 1
    /// `VFIO_SPAPR_TCE_IOMMU`.
    public static let extSPAPRTCE: UInt = 2
    /// `VFIO_TYPE1v2_IOMMU`: type1 v2.
    public static let extType1v2: UInt = 3
    /// `VFIO_DMA_CC_IOMMU`: DMA cache coherence query.
    public static let extDMACC: UInt = 4
    /// `VFIO_EEH`.
    public static let extEEH: UInt = 5
    /// `VFIO_TYPE1_NESTING_IOMMU`.
    public static let extType1Nesting: UInt = 6
    /// `VFIO_SPAPR_TCE_v2_IOMMU`.
    public static let extSPAPRTCEv2: UInt = 7
    /// `VFIO_NOIOMMU_IOMMU`.
    public static let extNoIOMMU: UInt = 8
    /// `VFIO_UNMAP_ALL`.
    public static let extUnmapAll: UInt = 9
    /// `VFIO_UPDATE_VADDR`.
    public static let extUpdateVaddr: UInt = 10

    // MARK: flags

    /// `VFIO_IOMMU_INFO_PGSIZES`.
    public static let infoFlagPgsizes: UInt32 = 1
    /// `VFIO_IOMMU_INFO_CAPS`.
    public static let infoFlagCaps: UInt32 = 2
    /// `VFIO_DMA_MAP_FLAG_READ`: the device may read.
    public static let mapFlagRead: UInt32 = 1
    /// `VFIO_DMA_MAP_FLAG_WRITE`: the device may write.
    public static let mapFlagWrite: UInt32 = 2
    /// `VFIO_DMA_MAP_FLAG_VADDR`: replace the vaddr of an invalidated mapping.
    public static let mapFlagVaddr: UInt32 = 4
    /// `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`.
    public static let unmapFlagGetDirtyBitmap: UInt32 = 1
    /// `VFIO_DMA_UNMAP_FLAG_ALL`.
    public static let unmapFlagAll: UInt32 = 2
    /// `VFIO_DMA_UNMAP_FLAG_VADDR`: invalidate the vaddr instead of unmapping.
    public static let unmapFlagVaddr: UInt32 = 4
    /// `VFIO_IOMMU_DIRTY_PAGES_FLAG_START`.
    public static let dirtyFlagStart: UInt32 = 1
    /// `VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP`.
    public static let dirtyFlagStop: UInt32 = 2
    /// `VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP`.
    public static let dirtyFlagGetBitmap: UInt32 = 4

    // MARK: capability ids of the GET_INFO chain

    /// `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`.
    public static let capIOVARange: UInt16 = 1
    /// `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`.
    public static let capMigration: UInt16 = 2
    /// `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`.
    public static let capDMAAvail: UInt16 = 3
}

/// `struct vfio_iommu_type1_info` (24 bytes; bytes 20–23 are padding the kernel never writes).
public struct Type1InfoArg: BitwiseCopyable, Equatable, Sendable {
    /// In: buffer size; out: the size needed for the whole chain when it did not fit.
    public var argsz: UInt32
    /// Out: `VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS`.
    public var flags: UInt32
    /// Out: the container's `pgsize_bitmap`.
    public var iovaPgsizes: UInt64
    /// Out (only when `argsz >= 20`): offset of the first capability, or 0.
    public var capOffset: UInt32
    /// Trailing padding of the C struct.
    public var pad: UInt32

    /// A request or reply with explicit fields.
    public init(argsz: UInt32 = 24, flags: UInt32 = 0, iovaPgsizes: UInt64 = 0, capOffset: UInt32 = 0, pad: UInt32 = 0) {
        self.argsz = argsz; self.flags = flags; self.iovaPgsizes = iovaPgsizes
        self.capOffset = capOffset; self.pad = pad
    }
}

/// `struct vfio_iommu_type1_dma_map` (32 bytes; nothing is written back).
public struct Type1DMAMapArg: BitwiseCopyable, Equatable, Sendable {
    /// Must be at least 32; bytes beyond are ignored.
    public var argsz: UInt32
    /// READ = 1, WRITE = 2, VADDR = 4.
    public var flags: UInt32
    /// Process virtual address of the memory.
    public var vaddr: UInt64
    /// Device (IO virtual) address.
    public var iova: UInt64
    /// Length in bytes.
    public var size: UInt64

    /// A request with explicit fields.
    public init(argsz: UInt32 = 32, flags: UInt32, vaddr: UInt64, iova: UInt64, size: UInt64) {
        self.argsz = argsz; self.flags = flags; self.vaddr = vaddr; self.iova = iova; self.size = size
    }
}

/// `struct vfio_iommu_type1_dma_unmap` (24 bytes, then `data[]`).
public struct Type1DMAUnmapArg: BitwiseCopyable, Equatable, Sendable {
    /// At least 24 (48 with GET_DIRTY_BITMAP).
    public var argsz: UInt32
    /// GET_DIRTY_BITMAP = 1, ALL = 2, VADDR = 4.
    public var flags: UInt32
    /// First IOVA of the range.
    public var iova: UInt64
    /// In: bytes requested; out: bytes unmapped or invalidated.
    public var size: UInt64

    /// A request with explicit fields.
    public init(argsz: UInt32 = 24, flags: UInt32 = 0, iova: UInt64, size: UInt64) {
        self.argsz = argsz; self.flags = flags; self.iova = iova; self.size = size
    }
}

/// `struct vfio_bitmap` (24 bytes): where a dirty bitmap goes.
public struct Type1Bitmap: BitwiseCopyable, Equatable, Sendable {
    /// The page size each bit stands for; must equal the container's minimum page size.
    public var pgsize: UInt64
    /// Size of the user buffer in bytes.
    public var size: UInt64
    /// User address of the `u64` words.
    public var data: UInt64

    /// A bitmap descriptor with explicit fields.
    public init(pgsize: UInt64, size: UInt64, data: UInt64) {
        self.pgsize = pgsize; self.size = size; self.data = data
    }
}

/// `struct vfio_iommu_type1_dma_unmap` followed by its `struct vfio_bitmap` (48 bytes), the
/// argument of UNMAP with GET_DIRTY_BITMAP.
public struct Type1DMAUnmapBitmapArg: BitwiseCopyable, Equatable, Sendable {
    /// The 24-byte unmap header.
    public var unmap: Type1DMAUnmapArg
    /// The bitmap descriptor at offset 24.
    public var bitmap: Type1Bitmap

    /// A request with explicit parts.
    public init(unmap: Type1DMAUnmapArg, bitmap: Type1Bitmap) { self.unmap = unmap; self.bitmap = bitmap }
}

/// `struct vfio_iommu_type1_dirty_bitmap` header (8 bytes, then `data[]`).
public struct Type1DirtyBitmapArg: BitwiseCopyable, Equatable, Sendable {
    /// At least 8 (48 with GET_BITMAP).
    public var argsz: UInt32
    /// Exactly one of START = 1, STOP = 2, GET_BITMAP = 4.
    public var flags: UInt32

    /// A request with explicit fields.
    public init(argsz: UInt32 = 8, flags: UInt32) { self.argsz = argsz; self.flags = flags }
}

/// `struct vfio_iommu_type1_dirty_bitmap_get` (40 bytes at offset 8 of a GET_BITMAP request).
public struct Type1DirtyBitmapGet: BitwiseCopyable, Equatable, Sendable {
    /// First IOVA of the queried range.
    public var iova: UInt64
    /// Length of the queried range in bytes.
    public var size: UInt64
    /// Where the bits go.
    public var bitmap: Type1Bitmap

    /// A query with explicit fields.
    public init(iova: UInt64, size: UInt64, bitmap: Type1Bitmap) { self.iova = iova; self.size = size; self.bitmap = bitmap }
}

/// A whole GET_BITMAP request: header plus range (48 bytes).
public struct Type1DirtyBitmapGetArg: BitwiseCopyable, Equatable, Sendable {
    /// The 8-byte header (`flags` = GET_BITMAP).
    public var header: Type1DirtyBitmapArg
    /// The range and bitmap at offset 8.
    public var range: Type1DirtyBitmapGet

    /// A request with explicit parts.
    public init(header: Type1DirtyBitmapArg, range: Type1DirtyBitmapGet) { self.header = header; self.range = range }
}
