// SPDX-License-Identifier: Apache-2.0
/// MAP_DMA, UNMAP_DMA and DIRTY_PAGES (docs/ERRORS.md#t1-map, docs/DECISIONS.md#t1-wrap, docs/ERRORS.md#t1-dirty). Every check runs in the
/// kernel's order: user space sees the errno of the first failing one.
extension Type1IOMMU {
    /// x86-64 `TASK_SIZE_MAX` (4-level paging): the `access_ok` limit (docs/DECISIONS.md#t1-simplified item 7).
    static let taskSizeMax: UInt64 = 0x7FFF_FFFF_F000
    /// `DIRTY_BITMAP_PAGES_MAX` = INT_MAX: the most pages one mapping's dirty bitmap may cover.
    static let dirtyBitmapPagesMax: UInt64 = UInt64(Int32.max)

    // MARK: MAP

    /// VFIO_IOMMU_MAP_DMA: copy in 32 bytes, validate `argsz` and flags, then map.
    ///
    /// Kernel: vfio_iommu_type1_map_dma()
    func mapDMA(arg: UInt) throws(Errno) {
        let map: Type1DMAMapArg = try UserMemory.read(from: arg)
        let mask = Type1UAPI.mapFlagRead | Type1UAPI.mapFlagWrite | Type1UAPI.mapFlagVaddr
        guard map.argsz >= 32 else { throw .EINVAL.because("argsz {} < minsz {}", map.argsz, 32) }
        guard map.flags & ~mask == 0 else { throw .EINVAL.because("unknown flags {x} (known {x})", map.flags & ~mask, mask) }
        try doMap(map)
    }

    /// Creates one mapping, or (flags = VADDR) gives an invalidated mapping its new vaddr.
    ///
    /// Kernel: vfio_dma_do_map()
    func doMap(_ map: Type1DMAMapArg) throws(Errno) {
        let iova = map.iova, vaddr = map.vaddr, size = map.size
        let read = map.flags & Type1UAPI.mapFlagRead != 0
        let write = map.flags & Type1UAPI.mapFlagWrite != 0
        let setVaddr = map.flags & Type1UAPI.mapFlagVaddr != 0
        // (Step 3, u64 fields not fitting native types, exists only on 32-bit kernels.)
        // Step 4: a mapping needs a permission; a vaddr update must not carry one.
        let prot = read || write
        if prot == setVaddr {
            throw setVaddr ? .EINVAL.because("flags {x}: VADDR with READ/WRITE", map.flags)
                           : .EINVAL.because("flags {x}: neither READ nor WRITE", map.flags)
        }

        lock.lock(); defer { lock.unlock() }
        let pgsize = minPageSize

        // Step 5: alignment to P.
        if size == 0 || (size | iova | vaddr) & (pgsize - 1) != 0 {
            throw Self.alignmentError(iova: iova, size: size, vaddr: vaddr, pgsize: pgsize)
        }
        // Step 6: neither range may wrap; ending exactly at 2^64 is allowed.
        if iova &+ size &- 1 < iova { throw .EINVAL.because("iova {x} + size {x} wraps", iova, size) }
        if vaddr &+ size &- 1 < vaddr { throw .EINVAL.because("vaddr {x} + size {x} wraps", vaddr, size) }

        let found = dma.find(start: iova, size: size)
        if setVaddr {
            // Step 7: the request must name exactly one invalidated mapping.
            guard let index = found else { throw .ENOENT.because("VADDR: no mapping overlaps iova {x} size {x}", iova, size) }
            let current = dma[index]
            guard current.vaddrInvalid else { throw .EINVAL.because("VADDR: mapping at iova {x} has a valid vaddr", current.iova) }
            guard current.iova == iova, current.size == size else {
                throw .EINVAL.because("VADDR: range differs from the mapping at iova {x} size {x}", current.iova, current.size)
            }
            // vfio_change_dma_owner(): the memlock charge would move to the caller's mm; the model
            // has no accounting, so it cannot fail (docs/DECISIONS.md#t1-simplified item 6). Nothing is pinned or checked.
            dma[index].vaddr = vaddr
            dma[index].vaddrInvalid = false
            vaddrInvalidCount -= 1
            return
        }
        // Step 8: overlap with any existing mapping (adjacent is fine).
        if let index = found {
            throw .EEXIST.because("iova {x} size {x} overlaps the mapping at iova {x}", iova, size, dma[index].iova)
        }
        // Step 9: the dma_entry_limit budget.
        if dmaAvail == 0 { throw .ENOSPC.because("dma_entry_limit reached: no mapping budget left") }
        // Step 10: the whole range inside one valid IOVA range.
        if !iovaDMAValid(start: iova, end: iova &+ size &- 1) {
            throw .EINVAL.because("iova {x} size {x} outside the valid IOVA ranges", iova, size)
        }
        // The kernel would now link a range ending exactly at 2^64 even over existing mappings,
        // because `iova + size` wrapped to 0 and hid them from step 8 (docs/DECISIONS.md#t1-wrap). Only an
        // emulated-only container can get here with such a range; the model refuses to corrupt
        // its table and answers as step 8 would without the wrap.
        if dma.overlapsAny(iova: iova, size: size) {
            throw .EEXIST.because("iova {x} size {x} overlaps an existing mapping", iova, size)
        }

        // Step 12: pin and map, only into an existing IOMMU domain. Failure removes the mapping
        // again, so dma_avail is untouched from the caller's view.
        if hasDomain {
            try addressSpace.checkPinnable(vaddr: vaddr, size: size, write: write)
        }
        // Step 13: a mapping created while tracking needs its own dirty bitmap.
        if dirtyPageTracking && size / pgsize > Self.dirtyBitmapPagesMax {
            throw .EINVAL.because("{} pages > INT_MAX while dirty tracking", size / pgsize)
        }

        dma.insert(Type1Mapping(iova: iova, size: size, vaddr: vaddr, read: read, write: write,
                                vaddrInvalid: false, iommuMapped: hasDomain))
        dmaAvail -= 1
    }

    /// The reason for the step-5 EINVAL, naming the first offending field (built only on failure).
    static func alignmentError(iova: UInt64, size: UInt64, vaddr: UInt64, pgsize: UInt64) -> Errno {
        if size == 0 { return .EINVAL.because("size 0") }
        if size & (pgsize - 1) != 0 { return .EINVAL.because("size {x} not aligned to page size {x}", size, pgsize) }
        if iova & (pgsize - 1) != 0 { return .EINVAL.because("iova {x} not aligned to page size {x}", iova, pgsize) }
        return .EINVAL.because("vaddr {x} not aligned to page size {x}", vaddr, pgsize)
    }

    /// Whether `[start, end]` lies inside one range of `iova_list`; an empty list allows all.
    ///
    /// Kernel: vfio_iommu_iova_dma_valid()
    func iovaDMAValid(start: UInt64, end: UInt64) -> Bool {
        if iovaList.isEmpty { return true }
        return iovaList.contains { start >= $0.start && end <= $0.end }
    }

    // MARK: UNMAP

    /// VFIO_IOMMU_UNMAP_DMA: copy in 24 bytes (plus the bitmap descriptor with
    /// GET_DIRTY_BITMAP), validate, unmap, and write the 24 bytes back with `size` = bytes done.
    ///
    /// Kernel: vfio_iommu_type1_unmap_dma()
    func unmapDMA(arg: UInt) throws(Errno) {
        var unmap: Type1DMAUnmapArg = try UserMemory.read(from: arg)
        let getBitmap = unmap.flags & Type1UAPI.unmapFlagGetDirtyBitmap != 0
        let mask = Type1UAPI.unmapFlagGetDirtyBitmap | Type1UAPI.unmapFlagAll | Type1UAPI.unmapFlagVaddr
        // Step 2.
        guard unmap.argsz >= 24 else { throw .EINVAL.because("argsz {} < minsz {}", unmap.argsz, 24) }
        guard unmap.flags & ~mask == 0 else { throw .EINVAL.because("unknown flags {x} (known {x})", unmap.flags & ~mask, mask) }
        // Step 3: a bitmap only for a plain unmap.
        if getBitmap && unmap.flags & (Type1UAPI.unmapFlagAll | Type1UAPI.unmapFlagVaddr) != 0 {
            throw .EINVAL.because("flags {x}: GET_DIRTY_BITMAP with ALL or VADDR", unmap.flags)
        }

        var bitmap = Type1Bitmap(pgsize: 0, size: 0, data: 0)
        if getBitmap {
            // Step 4a–4d, all before the lock.
            guard unmap.argsz >= 24 + 24 else { throw .EINVAL.because("argsz {} < {} with GET_DIRTY_BITMAP", unmap.argsz, 48) }
            bitmap = try UserMemory.read(from: arg &+ 24)
            guard Self.accessOK(bitmap.data, bitmap.size) else {
                throw .EINVAL.because("bitmap data {x} size {x} fails access_ok", bitmap.data, bitmap.size)
            }
            // __ffs(0) is undefined; every path from a zero pgsize ends in EINVAL (docs/DECISIONS.md#t1-simplified item 8).
            guard bitmap.pgsize != 0 else { throw .EINVAL.because("bitmap pgsize 0") }
            try Self.verifyBitmapSize(npages: unmap.size >> UInt64(bitmap.pgsize.trailingZeroBitCount),
                                      bitmapSize: bitmap.size)
        }

        let unmapped = try doUnmap(unmap, bitmap: bitmap)
        // Step 11: only `size` changes; the unmap has already happened if this faults.
        unmap.size = unmapped
        try UserMemory.write(unmap, to: arg)
    }

    /// Removes (or, with VADDR, invalidates) the mappings in the range; returns the bytes done.
    ///
    /// Kernel: vfio_dma_do_unmap()
    func doUnmap(_ unmap: Type1DMAUnmapArg, bitmap: Type1Bitmap) throws(Errno) -> UInt64 {
        let iova = unmap.iova
        var size = unmap.size
        let unmapAll = unmap.flags & Type1UAPI.unmapFlagAll != 0
        let invalidateVaddr = unmap.flags & Type1UAPI.unmapFlagVaddr != 0
        let getBitmap = unmap.flags & Type1UAPI.unmapFlagGetDirtyBitmap != 0

        lock.lock(); defer { lock.unlock() }

        // Step 5: mdev drivers may pin at any time, so vaddrs cannot be switched under them.
        if invalidateVaddr && !emulatedGroups.isEmpty {
            throw .EBUSY.because("VADDR with {} emulated (mdev) group(s) attached", emulatedGroups.count)
        }

        let pgsize = minPageSize
        // Step 6.
        if iova & (pgsize - 1) != 0 { throw .EINVAL.because("iova {x} not aligned to page size {x}", iova, pgsize) }
        // Step 7.
        if unmapAll {
            if iova != 0 || size != 0 { throw .EINVAL.because("ALL with iova {x} size {x} (both must be 0)", iova, size) }
            size = .max
        } else if size == 0 || size & (pgsize - 1) != 0 {
            throw .EINVAL.because("size {x} zero or not aligned to page size {x}", size, pgsize)
        } else if iova &+ size &- 1 < iova {
            throw .EINVAL.because("iova {x} + size {x} wraps", iova, size)
        }
        // Step 8: bitmaps only while tracking, and only at P granularity.
        if getBitmap && !dirtyPageTracking { throw .EINVAL.because("GET_DIRTY_BITMAP while dirty tracking is off") }
        if getBitmap && bitmap.pgsize != pgsize {
            throw .EINVAL.because("bitmap pgsize {x} != page size {x}", bitmap.pgsize, pgsize)
        }

        // Step 9: v2 refuses to split a mapping at either end of the range.
        if isV2 && !unmapAll {
            if let i = dma.find(start: iova, size: 1), dma[i].iova != iova {
                throw .EINVAL.because("iova {x} splits the mapping at iova {x} (v2)", iova, dma[i].iova)
            }
            if let i = dma.find(start: iova &+ size &- 1, size: 0), dma[i].wrappedEnd != iova &+ size {
                throw .EINVAL.because("end {x} splits the mapping at iova {x} (v2)", iova &+ size, dma[i].iova)
            }
        }

        // Step 10: the walk. `iova + size` is the kernel's wrapped end: for a range ending exactly
        // at 2^64 it is 0, so firstNode finds nothing and nothing is visited (the wrap quirk: docs/DECISIONS.md#t1-wrap).
        let end = iova &+ size
        var unmapped: UInt64 = 0
        guard let first = dma.firstNode(start: iova, size: size) else { return 0 }
        var n = first
        while n < dma.count {
            let current = dma[n]
            if current.iova >= end { break }
            // v1: a range starting inside a mapping unmaps nothing (granularity of the original
            // mapping is kept; see the comment in the kernel function).
            if !isV2 && iova > current.iova { break }

            if invalidateVaddr {
                if current.vaddrInvalid {
                    // Roll back the marks this call made, then fail without writing size.
                    for k in first..<n {
                        dma[k].vaddrInvalid = false
                        vaddrInvalidCount -= 1
                    }
                    throw .EINVAL.because("VADDR: mapping at iova {x} already invalidated", current.iova)
                }
                dma[n].vaddrInvalid = true
                vaddrInvalidCount += 1
                unmapped &+= current.size
                n += 1
                continue
            }

            if getBitmap {
                // A fault leaves mappings removed earlier in the walk removed.
                try updateUserBitmap(bitmap.data, index: n, baseIOVA: iova, pgsize: pgsize)
            }
            unmapped &+= current.size
            removeDMA(at: n)    // the next mapping slides into slot n
        }
        return unmapped
    }

    // MARK: dirty bitmaps

    /// `access_ok(addr, size)`: no wrap and `addr + size <= TASK_SIZE_MAX`.
    ///
    /// Kernel: access_ok() (asm-generic `__access_ok()` on x86-64)
    static func accessOK(_ addr: UInt64, _ size: UInt64) -> Bool {
        size <= taskSizeMax && addr <= taskSizeMax - size
    }

    /// The bitmap must be non-empty, at most `DIRTY_BITMAP_SIZE_MAX` bytes, and hold `npages`
    /// bits rounded up to whole u64 words (the rounding wraps as in the kernel).
    ///
    /// Kernel: verify_bitmap_size()
    static func verifyBitmapSize(npages: UInt64, bitmapSize: UInt64) throws(Errno) {
        if npages == 0 || bitmapSize == 0 || bitmapSize > dirtyBitmapSizeMax {
            throw .EINVAL.because("bitmap of {} pages, size {} (must be 1..{})", npages, bitmapSize, dirtyBitmapSizeMax)
        }
        let needed = ((npages &+ 63) & ~63) / 8
        if bitmapSize < needed { throw .EINVAL.because("bitmap size {} < {} needed for {} pages", bitmapSize, needed, npages) }
    }

    /// Writes the dirty bits of mapping `index` into the user bitmap, bit *i* standing for the page
    /// at `baseIOVA + i·P`: whole u64 words covering the mapping, the first word merged with the
    /// user's existing word when the mapping does not start on a word boundary.
    ///
    /// With an IOMMU-backed group attached every page of an IOMMU-mapped mapping is dirty
    /// (`num_non_pinned_groups`); otherwise the per-mapping bitmap (empty, or full after a group
    /// left during tracking) is what gets reported.
    ///
    /// Kernel: update_user_bitmap()
    func updateUserBitmap(_ userBitmap: UInt64, index: Int, baseIOVA: UInt64, pgsize: UInt64) throws(Errno) {
        let mapping = dma[index]
        let pgshift = UInt64(pgsize.trailingZeroBitCount)
        let nbits = mapping.size >> pgshift
        let bitOffset = (mapping.iova &- baseIOVA) >> pgshift
        let copyOffset = bitOffset / 64
        let shift = bitOffset % 64
        let allDirty = (numNonPinnedGroups > 0 && mapping.iommuMapped) || mapping.bitmapFull
        if numNonPinnedGroups > 0 && mapping.iommuMapped { dma[index].bitmapFull = true }

        let address = userBitmap &+ copyOffset &* 8
        var leftover: UInt64 = 0
        if shift != 0 { leftover = try UserMemory.read(UInt64.self, from: UInt(address)) }

        // Words [0, words) of the shifted bitmap: bits [shift, shift + nbits) set when dirty.
        let totalBits = nbits &+ shift
        let words = (totalBits &+ 63) / 64
        let chunkWords: UInt64 = 4096
        var buffer = [UInt64](repeating: 0, count: Int(min(words, chunkWords)))
        var w: UInt64 = 0
        while w < words {
            let count = min(chunkWords, words - w)
            for k in 0..<count {
                let word = w + k
                var value: UInt64 = 0
                if allDirty {
                    let lo = word * 64, hi = lo + 64      // this word's bit span
                    let from = max(lo, shift), to = min(hi, totalBits)
                    if from < to {
                        let width = to - from
                        let ones: UInt64 = width == 64 ? .max : (1 << width) - 1
                        value = ones << (from - lo)
                    }
                }
                if word == 0 && shift != 0 { value |= leftover }
                buffer[Int(k)] = value
            }
            let target = UInt(address &+ w &* 8)
            let failure: Errno? = buffer.withUnsafeBytes { raw in
                do throws(Errno) { try UserMemory.copyOut(raw.baseAddress!, to: target, count: Int(count) * 8) }
                catch { return error }
                return nil
            }
            if let failure { throw failure }
            w += count
        }
    }

    // MARK: DIRTY_PAGES

    /// VFIO_IOMMU_DIRTY_PAGES: START / STOP / GET_BITMAP (docs/ERRORS.md#t1-dirty).
    ///
    /// Kernel: vfio_iommu_type1_dirty_pages()
    func dirtyPages(arg: UInt) throws(Errno) {
        // Check 1: v1 containers refuse before reading anything.
        guard isV2 else { throw .EACCES.because("dirty tracking needs a v2 container (TYPE1v2)") }
        let header: Type1DirtyBitmapArg = try UserMemory.read(from: arg)
        let mask = Type1UAPI.dirtyFlagStart | Type1UAPI.dirtyFlagStop | Type1UAPI.dirtyFlagGetBitmap
        guard header.argsz >= 8 else { throw .EINVAL.because("argsz {} < minsz {}", header.argsz, 8) }
        guard header.flags & ~mask == 0 else { throw .EINVAL.because("unknown flags {x} (known {x})", header.flags & ~mask, mask) }
        // Exactly one flag (__ffs == __fls); zero flags is undefined there and EINVAL here.
        guard header.flags != 0, header.flags & (header.flags - 1) == 0 else {
            throw .EINVAL.because("flags {x}: exactly one of START, STOP, GET_BITMAP", header.flags)
        }

        if header.flags & Type1UAPI.dirtyFlagStart != 0 {
            lock.lock(); defer { lock.unlock() }
            if !dirtyPageTracking {
                // vfio_dma_bitmap_alloc_all(): every existing mapping gets an empty bitmap, which
                // fails for a mapping of more than INT_MAX pages.
                let pgsize = minPageSize
                for i in 0..<dma.count where dma[i].size / pgsize > Self.dirtyBitmapPagesMax {
                    throw .EINVAL.because("mapping at iova {x} has {} pages > INT_MAX", dma[i].iova, dma[i].size / pgsize)
                }
                dma.updateAll { $0.bitmapFull = false }
                dirtyPageTracking = true
            }
            return
        }
        if header.flags & Type1UAPI.dirtyFlagStop != 0 {
            lock.lock(); defer { lock.unlock() }
            if dirtyPageTracking {
                dirtyPageTracking = false
                dma.updateAll { $0.bitmapFull = false }    // vfio_dma_bitmap_free_all()
            }
            return
        }

        // GET_BITMAP.
        guard header.argsz >= 8 + 40 else { throw .EINVAL.because("argsz {} < {} with GET_BITMAP", header.argsz, 48) }
        let range: Type1DirtyBitmapGet = try UserMemory.read(from: arg &+ 8)
        if range.iova &+ range.size < range.iova { throw .EINVAL.because("iova {x} + size {x} wraps", range.iova, range.size) }
        guard Self.accessOK(range.bitmap.data, range.bitmap.size) else {
            throw .EINVAL.because("bitmap data {x} size {x} fails access_ok", range.bitmap.data, range.bitmap.size)
        }
        guard range.bitmap.pgsize != 0 else { throw .EINVAL.because("bitmap pgsize 0") }       // __ffs(0)
        try Self.verifyBitmapSize(npages: range.size >> UInt64(range.bitmap.pgsize.trailingZeroBitCount),
                                  bitmapSize: range.bitmap.size)

        lock.lock(); defer { lock.unlock() }
        let pgsize = minPageSize
        if range.bitmap.pgsize != pgsize { throw .EINVAL.because("bitmap pgsize {x} != page size {x}", range.bitmap.pgsize, pgsize) }
        if range.iova & (pgsize - 1) != 0 { throw .EINVAL.because("iova {x} not aligned to page size {x}", range.iova, pgsize) }
        if range.size == 0 || range.size & (pgsize - 1) != 0 {
            throw .EINVAL.because("size {x} zero or not aligned to page size {x}", range.size, pgsize)
        }
        guard dirtyPageTracking else { throw .EINVAL.because("dirty tracking is off") }
        try iovaDirtyBitmap(range.bitmap.data, iova: range.iova, size: range.size, pgsize: pgsize)
    }

    /// Reports the dirty pages of every mapping inside `[iova, iova + size)` without removing them;
    /// the range must not split a mapping.
    ///
    /// Kernel: vfio_iova_dirty_bitmap()
    func iovaDirtyBitmap(_ userBitmap: UInt64, iova: UInt64, size: UInt64, pgsize: UInt64) throws(Errno) {
        if let i = dma.find(start: iova, size: 1), dma[i].iova != iova {
            throw .EINVAL.because("iova {x} splits the mapping at iova {x}", iova, dma[i].iova)
        }
        let last = iova &+ size &- 1
        if let i = dma.find(start: last, size: 0), dma[i].wrappedEnd != iova &+ size {
            throw .EINVAL.because("end {x} splits the mapping at iova {x}", iova &+ size, dma[i].iova)
        }

        var n = dma.firstIndex(lastByteAtLeast: iova)
        // Mappings starting below iova are skipped (the kernel walks from the first node).
        while n < dma.count && dma[n].iova < iova { n += 1 }
        while n < dma.count && dma[n].iova <= last {
            try updateUserBitmap(userBitmap, index: n, baseIOVA: iova, pgsize: pgsize)
            // Re-populate: only pinned pages stay dirty, and the model pins none through mdev.
            dma[n].bitmapFull = false
            n += 1
        }
    }
}
