// SPDX-License-Identifier: Apache-2.0
/// An inclusive IOVA range `[start, end]`, the unit of `iova_list` and of the IOVA_RANGE capability.
public struct Type1IOVARange: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// First valid IOVA.
    public var start: UInt64
    /// Last valid IOVA (inclusive).
    public var end: UInt64

    /// A range `[start, end]`.
    public init(start: UInt64, end: UInt64) { self.start = start; self.end = end }

    /// `[0x…, 0x…]`: both ends inclusive, in upper-case hex (how a failed `#expect` prints a range).
    public var description: String {
        "[0x\(String(start, radix: 16, uppercase: true)), 0x\(String(end, radix: 16, uppercase: true))]"
    }
}

/// The one IOMMU domain configuration every IOMMU-backed group of the model shares (docs/DECISIONS.md#t1-simplified
/// item 1): fixed values instead of a live IOMMU, so joining or leaving never changes them.
public struct Type1DomainConfig: Sendable, Equatable {
    /// The domain's `pgsize_bitmap` (the lowest set bit is P).
    public var pgsizeBitmap: UInt64
    /// First IOVA of the domain's aperture.
    public var apertureStart: UInt64
    /// Last IOVA of the domain's aperture (inclusive).
    public var apertureEnd: UInt64
    /// The groups' non-relaxable reserved regions (MSI window, RMRRs), subtracted from the aperture.
    public var reservedRegions: [Type1IOVARange]
    /// Whether the platform's IOMMU can enforce cache coherency at all. A domain enforces it when
    /// this is true and every device of its groups sits behind an IOMMU that can (the topology's
    /// per-device `enforce_cache_coherency`); VFIO_DMA_CC_IOMMU answers for all domains.
    public var enforceCacheCoherency: Bool

    /// An explicit configuration.
    public init(pgsizeBitmap: UInt64, apertureStart: UInt64, apertureEnd: UInt64,
                reservedRegions: [Type1IOVARange], enforceCacheCoherency: Bool = true) {
        self.pgsizeBitmap = pgsizeBitmap
        self.apertureStart = apertureStart
        self.apertureEnd = apertureEnd
        self.reservedRegions = reservedRegions
        self.enforceCacheCoherency = enforceCacheCoherency
    }

    /// Intel VT-d with 4K/2M/1G pages, a 48-bit aperture and the MSI window 0xFEE00000–0xFEEFFFFF
    /// reserved: `iova_list` = [0, 0xFEDFFFFF] and [0xFEF00000, 0xFFFFFFFFFFFF] (docs/ERRORS.md#t1-get-info example).
    public static let intelDefault = Type1DomainConfig(
        pgsizeBitmap: 0x4020_1000, apertureStart: 0, apertureEnd: 0xFFFF_FFFF_FFFF,
        reservedRegions: [Type1IOVARange(start: 0xFEE0_0000, end: 0xFEEF_FFFF)])

    /// The aperture minus the reserved regions, sorted: the `iova_list` while a domain exists.
    ///
    /// Kernel: vfio_iommu_aper_resize() + vfio_iommu_resv_exclude()
    public var iovaRanges: [Type1IOVARange] {
        var ranges = [Type1IOVARange(start: apertureStart, end: apertureEnd)]
        for resv in reservedRegions.sorted(by: { $0.start < $1.start }) {
            var next: [Type1IOVARange] = []
            for r in ranges {
                // Untouched by this reserved region: keep as is.
                if resv.end < r.start || resv.start > r.end { next.append(r); continue }
                if resv.start > r.start { next.append(Type1IOVARange(start: r.start, end: resv.start - 1)) }
                if resv.end < r.end { next.append(Type1IOVARange(start: resv.end + 1, end: r.end)) }
            }
            ranges = next
        }
        return ranges
    }
}

/// One DMA mapping (`struct vfio_dma`) as user space can observe it.
public struct Type1Mapping: Equatable, Sendable {
    /// Device address of the first byte.
    public var iova: UInt64
    /// Length in bytes (a multiple of P, never 0).
    public var size: UInt64
    /// Process virtual address backing `iova` (stale while `vaddrInvalid`).
    public var vaddr: UInt64
    /// IOMMU_READ: the device may read.
    public var read: Bool
    /// IOMMU_WRITE: the device may write.
    public var write: Bool
    /// Set by UNMAP with VADDR, cleared by MAP with VADDR.
    public var vaddrInvalid: Bool
    /// Pinned and mapped into the (single) IOMMU domain (`dma->iommu_mapped`).
    public var iommuMapped: Bool
    /// The per-mapping dirty bitmap is all ones (`vfio_iommu_populate_bitmap_full()` ran and no
    /// GET_BITMAP has cleared it since). No page is ever pinned by an mdev in the model, so the
    /// bitmap is either empty or full and one flag is the whole bitmap.
    var bitmapFull: Bool = false

    /// Last byte, computed without overflow for a mapping that ends exactly at 2^64.
    var lastByte: UInt64 { iova &+ (size &- 1) }
    /// `dma->iova + dma->size` as the kernel computes it: wraps to 0 at 2^64.
    var wrappedEnd: UInt64 { iova &+ size }

    /// A mapping with explicit fields.
    public init(iova: UInt64, size: UInt64, vaddr: UInt64, read: Bool, write: Bool,
                vaddrInvalid: Bool = false, iommuMapped: Bool = false) {
        self.iova = iova; self.size = size; self.vaddr = vaddr; self.read = read; self.write = write
        self.vaddrInvalid = vaddrInvalid; self.iommuMapped = iommuMapped
    }

    /// Equality on what user space can observe (the dirty-bitmap state is not part of it).
    public static func == (a: Type1Mapping, b: Type1Mapping) -> Bool {
        a.iova == b.iova && a.size == b.size && a.vaddr == b.vaddr && a.read == b.read
            && a.write == b.write && a.vaddrInvalid == b.vaddrInvalid && a.iommuMapped == b.iommuMapped
    }
}

/// `iommu->dma_list`: the mappings ordered by IOVA, non-overlapping, with the kernel's rb-tree
/// searches reproduced by binary search over a sorted array (O(log n) lookups).
///
/// The kernel's comparisons use `iova + size` in 64-bit arithmetic, which wraps to 0 for a range
/// ending exactly at 2^64; that wrap is observable (docs/DECISIONS.md#t1-wrap), so the searches
/// evaluate the same wrapped expressions on the candidate the tree would settle on.
struct Type1DMATable {
    /// Sorted by `iova`; no two entries overlap.
    private(set) var entries: [Type1Mapping] = []

    /// Number of mappings.
    var count: Int { entries.count }

    /// The mapping at `index`.
    subscript(index: Int) -> Type1Mapping {
        get { entries[index] }
        set { entries[index] = newValue }
    }

    /// The lowest index whose mapping's last byte is at or above `address` (`count` if none).
    ///
    /// Over sorted, non-overlapping mappings the last bytes are increasing, so this is a plain
    /// lower-bound search.
    func firstIndex(lastByteAtLeast address: UInt64) -> Int {
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].lastByte < address { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Any mapping overlapping `[start, start + size)`, with the kernel's wrapped arithmetic: a
    /// query ending exactly at 2^64 finds nothing (`start + size` is 0), and a mapping ending
    /// exactly at 2^64 is never found (its end is 0). With `size == 0` it finds the mapping that
    /// holds byte `start` strictly after its first byte.
    ///
    /// Kernel: vfio_find_dma()
    func find(start: UInt64, size: UInt64) -> Int? {
        // The only mapping that can overlap the query if any does: the lowest one not entirely
        // below `start`. (Were another to overlap, this one would lie inside the query too.)
        let i = firstIndex(lastByteAtLeast: start)
        guard i < entries.count else { return nil }
        let dma = entries[i]
        if start &+ size <= dma.iova { return nil }          // the tree's "go left"
        if start >= dma.wrappedEnd { return nil }            // the tree's "go right"
        return i
    }

    /// The lowest mapping that ends above `start`, or nil when there is none or it starts at or
    /// beyond `start + size` (wrapped: a query ending at 2^64 gets nil).
    ///
    /// Kernel: vfio_find_dma_first_node()
    func firstNode(start: UInt64, size: UInt64) -> Int? {
        let i = firstIndex(lastByteAtLeast: start)
        guard i < entries.count else { return nil }
        let dma = entries[i]
        // `start < dma->iova + dma->size` fails for a mapping ending at 2^64 (end wraps to 0);
        // such a mapping is the last one, so nothing qualifies.
        guard start < dma.wrappedEnd else { return nil }
        if size != 0 && dma.iova >= start &+ size { return nil }
        return i
    }

    /// Whether `[iova, iova + size)` truly overlaps a mapping, without the kernel's wrap.
    func overlapsAny(iova: UInt64, size: UInt64) -> Bool {
        let i = firstIndex(lastByteAtLeast: iova)
        guard i < entries.count else { return false }
        return entries[i].iova <= iova &+ (size &- 1)
    }

    /// Inserts a mapping that overlaps none; returns its index.
    ///
    /// Kernel: vfio_link_dma()
    @discardableResult
    mutating func insert(_ mapping: Type1Mapping) -> Int {
        let i = firstIndex(lastByteAtLeast: mapping.iova)
        entries.insert(mapping, at: i)
        return i
    }

    /// Removes the mapping at `index`.
    ///
    /// Kernel: vfio_unlink_dma()
    @discardableResult
    mutating func remove(at index: Int) -> Type1Mapping { entries.remove(at: index) }

    /// Removes every mapping.
    mutating func removeAll() { entries.removeAll() }

    /// Applies `body` to every mapping.
    mutating func updateAll(_ body: (inout Type1Mapping) -> Void) {
        for i in entries.indices { body(&entries[i]) }
    }
}

/// The per-container state of the type1 backend (`struct vfio_iommu`, docs/ERRORS.md#t1-state): what
/// `Type1Backend.open` returns as the container's `iommu_data`.
///
/// One lock (`iommu->lock`) serialises every ioctl and group operation on it (docs/DECISIONS.md#t1-simplified item 8).
/// The model keeps one IOMMU domain, which exists exactly while an IOMMU-backed group is attached.
public final class Type1IOMMU: @unchecked Sendable {
    /// `iommu->lock`: guards every `var` below.
    let lock = KernelMutex("iommu->lock")
    /// `iommu->v2`: TYPE1v2 (or nesting) rather than TYPE1; fixed at open.
    public let isV2: Bool
    /// `iommu->nesting`: opened as VFIO_TYPE1_NESTING_IOMMU.
    public let isNesting: Bool
    /// The fixed domain configuration applied while a domain exists.
    let config: Type1DomainConfig
    /// Where pin-time EFAULT checks look.
    let addressSpace: any Type1AddressSpace

    /// `iommu->dma_list`.
    var dma = Type1DMATable()
    /// `iommu->dma_avail`: mappings still allowed.
    var dmaAvail: UInt32
    /// The IOMMU-backed groups (all in the single domain's `group_list`), by identity.
    var iommuGroups: [ObjectIdentifier] = []
    /// The attached IOMMU-backed groups whose domain cannot enforce cache coherency. The kernel
    /// keeps such groups in a domain of their own (a domain's `enforce_cache_coherency` must match
    /// to be shared), so VFIO_DMA_CC_IOMMU is 1 exactly while this is empty.
    var nonCoherentGroups: [ObjectIdentifier] = []
    /// `iommu->emulated_iommu_groups`, by identity.
    var emulatedGroups: [ObjectIdentifier] = []
    /// `iommu->pgsize_bitmap`.
    var pgsizeBitmap: UInt64 = Type1IOMMU.pageMask
    /// `iommu->iova_list`; empty means every IOVA is valid.
    var iovaList: [Type1IOVARange] = []
    /// `iommu->dirty_page_tracking`.
    var dirtyPageTracking = false
    /// `iommu->vaddr_invalid_count`.
    var vaddrInvalidCount = 0

    /// x86-64 `PAGE_SIZE`.
    static let pageSize: UInt64 = 4096
    /// x86-64 `PAGE_MASK`: the `pgsize_bitmap` with no domain.
    static let pageMask: UInt64 = ~(pageSize - 1)

    /// Fresh state as `vfio_iommu_type1_open()` leaves it.
    init(v2: Bool, nesting: Bool, dmaEntryLimit: UInt32, config: Type1DomainConfig, addressSpace: any Type1AddressSpace) {
        isV2 = v2
        isNesting = nesting
        dmaAvail = dmaEntryLimit
        self.config = config
        self.addressSpace = addressSpace
    }

    /// Whether the (single) IOMMU domain exists: `!list_empty(&iommu->domain_list)`.
    var hasDomain: Bool { !iommuGroups.isEmpty }

    /// `iommu->num_non_pinned_groups`: vfio-pci style groups never pin through the mdev path, so
    /// every IOMMU-backed group counts.
    var numNonPinnedGroups: Int { iommuGroups.count }

    /// P, the minimum page size: the lowest set bit of `pgsize_bitmap`.
    var minPageSize: UInt64 { 1 << UInt64(pgsizeBitmap.trailingZeroBitCount) }

    // MARK: read-only views (each takes the lock)

    /// A snapshot of the mappings in IOVA order.
    public var mappings: [Type1Mapping] { lock.lock(); defer { lock.unlock() }; return dma.entries }
    /// The current `dma_avail`.
    public var availableDMAEntries: UInt32 { lock.lock(); defer { lock.unlock() }; return dmaAvail }
    /// The current `pgsize_bitmap`.
    public var pageSizeBitmap: UInt64 { lock.lock(); defer { lock.unlock() }; return pgsizeBitmap }
    /// The current `iova_list` (empty: every IOVA valid).
    public var iovaRanges: [Type1IOVARange] { lock.lock(); defer { lock.unlock() }; return iovaList }
    /// Whether dirty page tracking is on.
    public var isDirtyTracking: Bool { lock.lock(); defer { lock.unlock() }; return dirtyPageTracking }
    /// Number of attached IOMMU-backed groups.
    public var iommuGroupCount: Int { lock.lock(); defer { lock.unlock() }; return iommuGroups.count }
    /// Number of attached emulated (mdev-style) groups.
    public var emulatedGroupCount: Int { lock.lock(); defer { lock.unlock() }; return emulatedGroups.count }

    // MARK: helpers shared by the ioctls (lock held)

    /// Removes the mapping at `index`, unpinning it and returning its slot to `dma_avail`.
    ///
    /// Kernel: vfio_remove_dma()
    func removeDMA(at index: Int) {
        lock.assertHeld()
        let removed = dma.remove(at: index)
        if removed.vaddrInvalid { vaddrInvalidCount -= 1 }
        dmaAvail &+= 1
    }

    /// Removes every mapping (pages unpinned, `dma_avail` back to its limit).
    ///
    /// Kernel: vfio_iommu_unmap_unpin_all()
    func removeAllDMA() {
        lock.assertHeld()
        while dma.count > 0 { removeDMA(at: dma.count - 1) }
    }
}
