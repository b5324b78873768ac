// SPDX-License-Identifier: Apache-2.0
/// A capability chain under construction (`struct vfio_info_cap`): capabilities packed back to
/// back with no alignment (v6.3; the 8-byte alignment came in v6.6), each starting with
/// `struct vfio_info_cap_header` {u16 id, u16 version, u32 next}.
struct Type1CapChain {
    /// The chain bytes; `next` offsets are relative to the chain start until `shift`.
    private(set) var bytes: [UInt8] = []
    /// Offset of the last capability added (where the next one gets linked).
    private var lastOffset: Int?

    /// Appends a zeroed capability of `size` bytes with the given header and links it at the end of
    /// the chain; returns its offset so the caller can fill the body.
    ///
    /// Kernel: vfio_info_cap_add()
    mutating func add(id: UInt16, version: UInt16, size: Int) -> Int {
        let offset = bytes.count
        // The kernel zeroes each new capability before filling it, so every byte not written
        // below is 0 (that includes the padding of MIGRATION the model writes explicitly as 0).
        bytes.append(contentsOf: repeatElement(0, count: size))
        store(id, at: offset)
        store(version, at: offset + 2)
        if let last = lastOffset { store(UInt32(offset), at: last + 4) }
        lastOffset = offset
        return offset
    }

    /// Adds `delta` to every non-zero `next` so the offsets count from the start of the user buffer.
    ///
    /// Kernel: vfio_info_cap_shift()
    mutating func shift(by delta: UInt32) {
        var offset = 0
        while offset + 8 <= bytes.count {
            let next: UInt32 = load(at: offset + 4)
            if next == 0 { break }
            store(next + delta, at: offset + 4)
            offset = Int(next)
        }
    }

    /// Writes `value` little-endian at `offset`.
    mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { raw in
            for (k, b) in raw.enumerated() { bytes[offset + k] = b }
        }
    }

    /// Reads a little-endian `T` at `offset`.
    func load<T: FixedWidthInteger>(at offset: Int) -> T {
        var v = T.zero
        withUnsafeMutableBytes(of: &v) { raw in
            for k in 0..<raw.count { raw[k] = bytes[offset + k] }
        }
        return T(littleEndian: v)
    }
}

extension Type1IOMMU {
    /// `sizeof(struct vfio_iommu_type1_info)`: where the chain goes in the user buffer.
    static let infoSize = 24
    /// `DIRTY_BITMAP_SIZE_MAX`: the largest bitmap in bytes (INT_MAX pages rounded to u64 words).
    static let dirtyBitmapSizeMax: UInt64 = 0x1000_0000

    /// VFIO_IOMMU_GET_INFO (docs/ERRORS.md#t1-get-info): header, then the MIGRATION, DMA_AVAIL and IOVA_RANGE
    /// capabilities if `argsz` leaves room for all of them, else the size needed in `argsz`.
    ///
    /// Kernel: vfio_iommu_type1_get_info()
    func getInfo(arg: UInt) throws(Errno) {
        // minsz = offsetofend(iova_pgsizes): only 16 bytes are read; input flags are ignored.
        let minsz = 16, capsz = 20
        var info = Type1InfoArg()
        try UserMemory.copyIn(&info, from: arg, count: minsz)
        guard info.argsz >= UInt32(minsz) else { throw .EINVAL.because("argsz {} < minsz {}", info.argsz, minsz) }

        var copyBack = minsz
        if info.argsz >= UInt32(capsz) {
            // A caller that knows about cap_offset gets it cleared even when no chain follows.
            copyBack = capsz
            info.capOffset = 0
        }

        var chain = Type1CapChain()
        do {
            lock.lock(); defer { lock.unlock() }
            info.flags = Type1UAPI.infoFlagPgsizes
            info.iovaPgsizes = pgsizeBitmap
            buildMigrationCap(&chain)
            buildDMAAvailCap(&chain)
            // An emulated-only container has an empty iova_list and no IOVA_RANGE capability.
            if !iovaList.isEmpty { buildIOVARangeCap(&chain) }
        }

        if !chain.bytes.isEmpty {
            info.flags |= Type1UAPI.infoFlagCaps
            let needed = UInt32(Self.infoSize + chain.bytes.count)
            if info.argsz < needed {
                // Too small: report the size, copy no chain; the call still succeeds.
                info.argsz = needed
            } else {
                chain.shift(by: UInt32(Self.infoSize))
                let failure: Errno? = chain.bytes.withUnsafeBytes { raw in
                    do throws(Errno) {
                        try UserMemory.copyOut(raw.baseAddress!, to: arg &+ UInt(Self.infoSize), count: raw.count)
                    } catch { return error }
                    return nil
                }
                if let failure { throw failure }
                info.capOffset = UInt32(Self.infoSize)
            }
        }
        try UserMemory.copyOut(&info, to: arg, count: copyBack)
    }

    /// MIGRATION (id 2, 32 bytes): flags 0, 4 padding bytes (zero here; uninitialised stack in
    /// v6.3), the minimum page size only, and `max_dirty_bitmap_size`. Present in v1 too.
    ///
    /// Kernel: vfio_iommu_migration_build_caps()
    private func buildMigrationCap(_ chain: inout Type1CapChain) {
        let at = chain.add(id: Type1UAPI.capMigration, version: 1, size: 32)
        chain.store(UInt32(0), at: at + 8)
        chain.store(minPageSize, at: at + 16)
        chain.store(Self.dirtyBitmapSizeMax, at: at + 24)
    }

    /// DMA_AVAIL (id 3, 12 bytes): the current `dma_avail`.
    ///
    /// Kernel: vfio_iommu_dma_avail_build_caps()
    private func buildDMAAvailCap(_ chain: inout Type1CapChain) {
        let at = chain.add(id: Type1UAPI.capDMAAvail, version: 1, size: 12)
        chain.store(dmaAvail, at: at + 8)
    }

    /// IOVA_RANGE (id 1, 16 + 16·n bytes): `nr_iovas`, a zero reserved word, then the inclusive
    /// ranges in order.
    ///
    /// Kernel: vfio_iommu_iova_build_caps()
    private func buildIOVARangeCap(_ chain: inout Type1CapChain) {
        let at = chain.add(id: Type1UAPI.capIOVARange, version: 1, size: 16 + 16 * iovaList.count)
        chain.store(UInt32(iovaList.count), at: at + 8)
        for (k, range) in iovaList.enumerated() {
            chain.store(range.start, at: at + 16 + 16 * k)
            chain.store(range.end, at: at + 24 + 16 * k)
        }
    }
}
