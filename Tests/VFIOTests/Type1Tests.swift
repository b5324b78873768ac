// Tests of the type1 IOMMU backend's user API (SPEC §8a): every check-order row with its exact
// errno, the v1/v2 unmap table, the GET_INFO worked example, CHECK_EXTENSION, dirty pages and the
// group rules. User memory is real: mmap'd anonymous pages for vaddrs and stack/heap buffers for
// ioctl arguments; small kBogus addresses (0x10) stand for unreadable pointers.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - helpers

/// An identity token standing for a VFIO group.
private final class T1Group {}

private let kRW = Type1UAPI.mapFlagRead | Type1UAPI.mapFlagWrite
private let kR = Type1UAPI.mapFlagRead
private let kW = Type1UAPI.mapFlagWrite
private let kVADDR = Type1UAPI.mapFlagVaddr
private let kP: UInt64 = 0x1000
private let kBogus: UInt = 0x10

private func t1Context(limit: UInt32 = 65535) -> BackendContext {
    BackendContext(capableSysRawIO: { true }, unsafeNoIOMMUMode: false, dmaEntryLimit: limit)
}

/// The errno `body` threw, or nil on success.
private func t1Errno(_ body: () throws(Errno) -> Void) -> Errno? {
    do { try body(); return nil } catch { return error }
}

/// The address of `value` as a user pointer for the duration of `body`.
private func t1WithArg<T, Output>(_ value: inout T, _ body: (UInt) -> Output) -> Output {
    withUnsafeMutableBytes(of: &value) { body(UInt(bitPattern: $0.baseAddress)) }
}

/// Anonymous memory from mmap (page aligned), unmapped at deinit.
private final class T1Mem {
    let base: UInt64
    let size: Int
    init(_ size: Int, prot: Int32 = PROT_READ | PROT_WRITE) {
        let p = mmap(nil, size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(p != MAP_FAILED)
        base = UInt64(UInt(bitPattern: p))
        self.size = size
    }
    func protect(offset: Int, length: Int, prot: Int32) {
        precondition(mprotect(UnsafeMutableRawPointer(bitPattern: UInt(base) + UInt(offset)), length, prot) == 0)
    }
    deinit { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), size) }
}

/// A container in state S2: a type1 backend opened with `type`, with groups attached.
private final class T1Container {
    let backend: Type1Backend
    let iommu: Type1IOMMU
    let ctx: BackendContext
    var groups: [T1Group] = []
    /// 2 MiB of anonymous read/write memory for mapping vaddrs.
    let mem = T1Mem(0x20_0000)

    init(type: UInt = Type1UAPI.extType1v2, groups: [VFIOGroupType] = [.iommu], limit: UInt32 = 65535,
         backend: Type1Backend = Type1Backend()) {
        self.backend = backend
        ctx = t1Context(limit: limit)
        iommu = try! backend.open(arg: type, context: ctx) as! Type1IOMMU
        for t in groups { #expect(attach(t) == nil) }
    }

    var vaddr: UInt64 { mem.base }

    @discardableResult
    func attach(_ type: VFIOGroupType) -> Errno? {
        let g = T1Group()
        let e = t1Errno { () throws(Errno) in try backend.attachGroup(iommu, group: g, type: type) }
        if e == nil { groups.append(g) }
        return e
    }

    func detach(_ index: Int) {
        backend.detachGroup(iommu, group: groups.remove(at: index))
    }

    func ioctl(_ cmd: UInt32, _ arg: UInt) -> Result<Int, Errno> {
        do throws(Errno) { return .success(try backend.ioctl(iommu, cmd: cmd, arg: arg, context: ctx)) } catch {
            return .failure(error)
        }
    }

    func ioctlErrno(_ cmd: UInt32, _ arg: UInt) -> Errno? {
        if case .failure(let e) = ioctl(cmd, arg) { return e }
        return nil
    }

    func checkExtension(_ id: UInt) -> Int { try! backend.ioctl(iommu, cmd: Type1UAPI.checkExtension, arg: id, context: ctx) }

    /// MAP_DMA; vaddr defaults to the start of `mem`.
    func map(iova: UInt64, size: UInt64, vaddr: UInt64? = nil, flags: UInt32 = kRW, argsz: UInt32 = 32) -> Errno? {
        var m = Type1DMAMapArg(argsz: argsz, flags: flags, vaddr: vaddr ?? self.vaddr, iova: iova, size: size)
        return t1WithArg(&m) { ioctlErrno(Type1UAPI.mapDMA, $0) }
    }

    /// UNMAP_DMA; the size written back on success.
    func unmap(iova: UInt64, size: UInt64, flags: UInt32 = 0, argsz: UInt32 = 24) -> Result<UInt64, Errno> {
        var u = Type1DMAUnmapArg(argsz: argsz, flags: flags, iova: iova, size: size)
        let r = t1WithArg(&u) { ioctl(Type1UAPI.unmapDMA, $0) }
        return r.map { _ in u.size }
    }

    /// UNMAP_DMA with GET_DIRTY_BITMAP.
    func unmapBitmap(iova: UInt64, size: UInt64, bitmap: Type1Bitmap, argsz: UInt32 = 48, flags: UInt32 = 1)
        -> Result<UInt64, Errno> {
        var u = Type1DMAUnmapBitmapArg(unmap: Type1DMAUnmapArg(argsz: argsz, flags: flags, iova: iova, size: size),
                                       bitmap: bitmap)
        let r = t1WithArg(&u) { ioctl(Type1UAPI.unmapDMA, $0) }
        return r.map { _ in u.unmap.size }
    }

    func dirty(_ flags: UInt32, argsz: UInt32 = 8) -> Errno? {
        var d = Type1DirtyBitmapArg(argsz: argsz, flags: flags)
        return t1WithArg(&d) { ioctlErrno(Type1UAPI.dirtyPages, $0) }
    }

    func getBitmap(iova: UInt64, size: UInt64, bitmap: Type1Bitmap, argsz: UInt32 = 48) -> Errno? {
        var d = Type1DirtyBitmapGetArg(header: Type1DirtyBitmapArg(argsz: argsz, flags: Type1UAPI.dirtyFlagGetBitmap),
                                       range: Type1DirtyBitmapGet(iova: iova, size: size, bitmap: bitmap))
        return t1WithArg(&d) { ioctlErrno(Type1UAPI.dirtyPages, $0) }
    }

    /// GET_INFO into a 256-byte buffer pre-filled with 0xAA; returns the errno and the buffer.
    func info(argsz: UInt32, flagsIn: UInt32 = 0) -> (Errno?, [UInt8]) {
        var buf = [UInt8](repeating: 0xAA, count: 256)
        buf.withUnsafeMutableBytes {
            $0.storeBytes(of: argsz, toByteOffset: 0, as: UInt32.self)
            $0.storeBytes(of: flagsIn, toByteOffset: 4, as: UInt32.self)
        }
        let e = buf.withUnsafeMutableBytes { ioctlErrno(Type1UAPI.getInfo, UInt(bitPattern: $0.baseAddress)) }
        return (e, buf)
    }

    var avail: UInt32 { iommu.availableDMAEntries }
    var spans: [[UInt64]] { iommu.mappings.map { [$0.iova, $0.size] } }
}

private func t1U32(_ b: [UInt8], _ off: Int) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt32.self) } }
private func t1U16(_ b: [UInt8], _ off: Int) -> UInt16 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt16.self) } }
private func t1U64(_ b: [UInt8], _ off: Int) -> UInt64 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt64.self) } }

/// A zeroed array of t1U64 words as a user bitmap.
private final class T1Words {
    var p: UnsafeMutablePointer<UInt64>
    let count: Int
    init(_ count: Int, fill: UInt64 = 0) {
        self.count = count
        p = .allocate(capacity: count)
        p.initialize(repeating: fill, count: count)
    }
    var address: UInt64 { UInt64(UInt(bitPattern: p)) }
    subscript(i: Int) -> UInt64 { get { p[i] } set { p[i] = newValue } }
    func bitmap(pgsize: UInt64 = kP) -> Type1Bitmap { Type1Bitmap(pgsize: pgsize, size: UInt64(count * 8), data: address) }
    deinit { p.deallocate() }
}

// MARK: - ABI layout

@Suite("type1: uapi layout")
struct Type1LayoutTests {
    @Test func structSizesAndOffsets() {
        #expect(MemoryLayout<Type1InfoArg>.size == 24)
        #expect(MemoryLayout<Type1InfoArg>.offset(of: \.iovaPgsizes) == 8)
        #expect(MemoryLayout<Type1InfoArg>.offset(of: \.capOffset) == 16)
        #expect(MemoryLayout<Type1DMAMapArg>.size == 32)
        #expect(MemoryLayout<Type1DMAMapArg>.offset(of: \.vaddr) == 8)
        #expect(MemoryLayout<Type1DMAMapArg>.offset(of: \.iova) == 16)
        #expect(MemoryLayout<Type1DMAMapArg>.offset(of: \.size) == 24)
        #expect(MemoryLayout<Type1DMAUnmapArg>.size == 24)
        #expect(MemoryLayout<Type1DMAUnmapArg>.offset(of: \.size) == 16)
        #expect(MemoryLayout<Type1Bitmap>.size == 24)
        #expect(MemoryLayout<Type1DMAUnmapBitmapArg>.size == 48)
        #expect(MemoryLayout<Type1DMAUnmapBitmapArg>.offset(of: \.bitmap) == 24)
        #expect(MemoryLayout<Type1DirtyBitmapArg>.size == 8)
        #expect(MemoryLayout<Type1DirtyBitmapGet>.size == 40)
        #expect(MemoryLayout<Type1DirtyBitmapGetArg>.size == 48)
        #expect(MemoryLayout<Type1DirtyBitmapGetArg>.offset(of: \.range) == 8)
    }

    @Test func domainConfigRanges() {
        #expect(Type1DomainConfig.intelDefault.iovaRanges == [
            Type1IOVARange(start: 0, end: 0xFEDF_FFFF), Type1IOVARange(start: 0xFEF0_0000, end: 0xFFFF_FFFF_FFFF)])
    }
}

// MARK: - open / dispatch / CHECK_EXTENSION

@Suite("type1: open, dispatch, CHECK_EXTENSION")
struct Type1DispatchTests {
    @Test func openModes() throws {
        let b = Type1Backend()
        #expect(b.name == "vfio-iommu-type1")
        #expect(!b.isNoIOMMU && !b.hasDeviceRegistration)
        let v1 = try #require(try b.open(arg: 1, context: t1Context()) as? Type1IOMMU)
        #expect(!v1.isV2 && !v1.isNesting)
        let v2 = try #require(try b.open(arg: 3, context: t1Context()) as? Type1IOMMU)
        #expect(v2.isV2 && !v2.isNesting)
        let nest = try #require(try b.open(arg: 6, context: t1Context()) as? Type1IOMMU)
        #expect(nest.isV2 && nest.isNesting)
        for bad: UInt in [0, 2, 4, 5, 7, 8, 9, 10, 11, 0x3B65, .max] {
            #expect(t1Errno { () throws(Errno) in _ = try b.open(arg: bad, context: t1Context()) } == .EINVAL, "open(\(bad))")
        }
        #expect(v2.availableDMAEntries == 65535)
        let small = try #require(try b.open(arg: 3, context: t1Context(limit: 7)) as? Type1IOMMU)
        #expect(small.availableDMAEntries == 7)
    }

    @Test func checkExtensionS0S1() {
        // No backend state: the container's polling question (SPEC §8a.3, S0/S1 column).
        let b = Type1Backend()
        let expected: [UInt: Int] = [0: 0, 1: 1, 2: 0, 3: 1, 4: 0, 5: 0, 6: 1, 7: 0, 8: 0, 9: 1, 10: 0, 11: 0, 12: 0, 1000: 0]
        for (id, want) in expected {
            let got = try? b.ioctl(nil, cmd: Type1UAPI.checkExtension, arg: id, context: t1Context())
            #expect(got == want, "CHECK_EXTENSION(\(id))")
        }
    }

    @Test func checkExtensionS2() {
        for type: UInt in [1, 3] {
            let c = T1Container(type: type)
            let expected: [UInt: Int] = [0: 0, 1: 1, 2: 0, 3: 1, 4: 1, 5: 0, 6: 1, 7: 0, 8: 0, 9: 1, 10: 1, 11: 0]
            for (id, want) in expected { #expect(c.checkExtension(id) == want, "v\(type) CHECK_EXTENSION(\(id))") }
            // An emulated group turns UPDATE_VADDR off; DMA_CC still follows the domain.
            #expect(c.attach(.emulatedIOMMU) == nil)
            #expect(c.checkExtension(10) == 0)
            #expect(c.checkExtension(4) == 1)
        }
        // Emulated only: no domain, DMA_CC vacuously 1, UPDATE_VADDR 0.
        let e = T1Container(groups: [.emulatedIOMMU])
        #expect(e.checkExtension(4) == 1)
        #expect(e.checkExtension(10) == 0)
        // A domain without coherency enforcement.
        var cfg = Type1DomainConfig.intelDefault
        cfg.enforceCacheCoherency = false
        let nc = T1Container(backend: Type1Backend(domainConfig: cfg))
        #expect(nc.checkExtension(4) == 0)
        #expect(nc.checkExtension(10) == 1)
    }

    @Test func unknownIoctlsAreENOTTY() {
        let c = T1Container()
        for cmd: UInt32 in [0x3B64, 0x3B66, 0x3B67, 0x3B73, 0x3B74, 0x3B76, 0x3B77, 0, 0xFFFF_FFFF, 0x8000_3B70] {
            #expect(c.ioctlErrno(cmd, 0) == .ENOTTY, "cmd \(cmd)")
        }
    }

    @Test func noDataIsEINVAL() {
        let b = Type1Backend()
        for cmd: UInt32 in [0x3B70, 0x3B71, 0x3B72, 0x3B75, 0x3B73] {
            #expect(t1Errno { () throws(Errno) in _ = try b.ioctl(nil, cmd: cmd, arg: 0, context: t1Context()) } == .EINVAL)
        }
    }
}

// MARK: - GET_INFO

@Suite("type1: GET_INFO")
struct Type1GetInfoTests {
    @Test func checkOrder() {
        let c = T1Container()
        #expect(c.ioctlErrno(Type1UAPI.getInfo, kBogus) == .EFAULT)
        for argsz: UInt32 in [0, 8, 15] {
            let (e, buf) = c.info(argsz: argsz)
            #expect(e == .EINVAL)
            #expect(t1U64(buf, 8) == 0xAAAA_AAAA_AAAA_AAAA && t1U32(buf, 0) == argsz)   // nothing written
        }
    }

    @Test func argszGrowthProtocol() {
        let c = T1Container()
        // 16 <= A < 20: bytes 0-15 only.
        var (e, buf) = c.info(argsz: 16, flagsIn: 0xFFFF)
        #expect(e == nil)
        #expect(t1U32(buf, 0) == 116 && t1U32(buf, 4) == 3 && t1U64(buf, 8) == 0x4020_1000)
        #expect(t1U32(buf, 16) == 0xAAAA_AAAA)
        (e, buf) = c.info(argsz: 19)
        #expect(e == nil && t1U32(buf, 0) == 116 && t1U32(buf, 16) == 0xAAAA_AAAA)
        // 20 <= A < 24 + C: bytes 0-19, cap_offset 0, padding untouched, no chain.
        for a: UInt32 in [20, 24, 115] {
            (e, buf) = c.info(argsz: a)
            #expect(e == nil)
            #expect(t1U32(buf, 0) == 116 && t1U32(buf, 4) == 3 && t1U64(buf, 8) == 0x4020_1000 && t1U32(buf, 16) == 0)
            #expect(t1U32(buf, 20) == 0xAAAA_AAAA)
            #expect(t1U32(buf, 24) == 0xAAAA_AAAA)
        }
        // A >= 24 + C: argsz unchanged, chain written, nothing beyond it.
        (e, buf) = c.info(argsz: 200)
        #expect(e == nil && t1U32(buf, 0) == 200 && t1U32(buf, 16) == 24 && t1U32(buf, 20) == 0xAAAA_AAAA)
        #expect(buf[116..<200].allSatisfy { $0 == 0xAA })
    }

    @Test func workedExample() {
        let c = T1Container()
        // First call with argsz 24 as QEMU starts.
        var (e, buf) = c.info(argsz: 24)
        #expect(e == nil)
        #expect(t1U32(buf, 0) == 116 && t1U32(buf, 4) == 3 && t1U64(buf, 8) == 0x4020_1000 && t1U32(buf, 16) == 0)
        #expect(c.map(iova: 0, size: 0x10_0000) == nil)
        #expect(c.map(iova: 0x10_0000, size: 0x1000) == nil)
        (e, buf) = c.info(argsz: 116)
        #expect(e == nil)
        var want = [UInt8](repeating: 0, count: 116)
        func put<T: FixedWidthInteger>(_ v: T, _ off: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (k, b) in $0.enumerated() { want[off + k] = b } }
        }
        put(UInt32(116), 0); put(UInt32(3), 4); put(UInt64(0x4020_1000), 8); put(UInt32(24), 16)
        for k in 20..<24 { want[k] = 0xAA }                      // header padding never written
        put(UInt16(2), 24); put(UInt16(1), 26); put(UInt32(56), 28)      // MIGRATION
        put(UInt32(0), 32); put(UInt32(0), 36); put(UInt64(0x1000), 40); put(UInt64(0x1000_0000), 48)
        put(UInt16(3), 56); put(UInt16(1), 58); put(UInt32(68), 60)      // DMA_AVAIL
        put(UInt32(65533), 64)
        put(UInt16(1), 68); put(UInt16(1), 70); put(UInt32(0), 72)       // IOVA_RANGE
        put(UInt32(2), 76); put(UInt32(0), 80)
        put(UInt64(0), 84); put(UInt64(0xFEDF_FFFF), 92)
        put(UInt64(0xFEF0_0000), 100); put(UInt64(0xFFFF_FFFF_FFFF), 108)
        #expect(Array(buf[0..<116]) == want)
        #expect(buf[116] == 0xAA)
    }

    @Test func v1HasMigrationCapToo() {
        let c = T1Container(type: 1)
        let (e, buf) = c.info(argsz: 116)
        #expect(e == nil && t1U16(buf, 24) == 2 && t1U32(buf, 28) == 56 && t1U64(buf, 40) == 0x1000)
    }

    @Test func emulatedOnlyContainer() {
        let c = T1Container(groups: [.emulatedIOMMU])
        var (e, buf) = c.info(argsz: 24)
        #expect(e == nil && t1U32(buf, 0) == 68 && t1U64(buf, 8) == 0xFFFF_FFFF_FFFF_F000)
        (e, buf) = c.info(argsz: 68)
        #expect(e == nil && t1U32(buf, 16) == 24)
        #expect(t1U16(buf, 24) == 2 && t1U32(buf, 28) == 56 && t1U64(buf, 40) == 0x1000)
        #expect(t1U16(buf, 56) == 3 && t1U32(buf, 60) == 0 && t1U32(buf, 64) == 65535)
        #expect(buf[68] == 0xAA)
    }
}

// MARK: - MAP_DMA

@Suite("type1: MAP_DMA")
struct Type1MapTests {
    @Test func steps1to4() {
        let c = T1Container()
        #expect(c.ioctlErrno(Type1UAPI.mapDMA, kBogus) == .EFAULT)                       // 1
        #expect(c.map(iova: 0, size: kP, argsz: 31) == .EINVAL)                          // 2
        #expect(c.map(iova: 0, size: kP, argsz: 0) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: kRW | 8) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: 0x8000_0000) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: 0) == .EINVAL)                           // 4
        #expect(c.map(iova: 0, size: kP, flags: kVADDR | kR) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, flags: kVADDR | kW) == .EINVAL)
        // Step 2 and 4 precede the alignment checks of step 5.
        #expect(c.map(iova: 1, size: 0, flags: 0) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, argsz: 64) == nil)                              // larger argsz fine
        #expect(c.avail == 65534)
    }

    @Test func step5Alignment() {
        let c = T1Container()
        #expect(c.map(iova: 0, size: 0) == .EINVAL)
        #expect(c.map(iova: 0, size: 0x800) == .EINVAL)
        #expect(c.map(iova: 0x800, size: kP) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, vaddr: c.vaddr + 0x800) == .EINVAL)
        #expect(c.map(iova: 0, size: 0x1800) == .EINVAL)
        // READ-only and WRITE-only are both legal.
        #expect(c.map(iova: 0, size: kP, flags: kR) == nil)
        #expect(c.map(iova: kP, size: kP, flags: kW) == nil)
        #expect(c.iommu.mappings.map { [$0.read, $0.write] } == [[true, false], [false, true]])
    }

    @Test func step6Wrap() {
        let c = T1Container(limit: 1)
        #expect(c.map(iova: 0, size: kP) == nil)     // exhaust dma_avail
        // Wrapping IOVA or vaddr: EINVAL even though dma_avail is 0 (step 6 precedes step 9).
        #expect(c.map(iova: 0 &- kP, size: 2 * kP) == .EINVAL)
        #expect(c.map(iova: 0x10_0000, size: 2 * kP, vaddr: 0 &- kP) == .EINVAL)
        // Ending exactly at 2^64 passes step 6: the next failing check is step 9.
        #expect(c.map(iova: 0 &- kP, size: kP) == .ENOSPC)
        #expect(c.map(iova: 0x10_0000, size: kP, vaddr: 0 &- kP) == .ENOSPC)
    }

    @Test func step8Overlap() {
        let c = T1Container()
        #expect(c.map(iova: 0x10000, size: 0x10000) == nil)
        for (iova, size) in [(0x10000, 0x10000), (0x10000, 0x1000), (0xF000, 0x2000), (0x1F000, 0x2000),
                             (0x8000, 0x20000), (0x18000, 0x1000)] as [(UInt64, UInt64)] {
            #expect(c.map(iova: iova, size: size) == .EEXIST, "[\(iova), +\(size))")
        }
        // Adjacent on both sides is fine.
        #expect(c.map(iova: 0xF000, size: 0x1000) == nil)
        #expect(c.map(iova: 0x20000, size: 0x1000) == nil)
        #expect(c.spans == [[0xF000, 0x1000], [0x10000, 0x10000], [0x20000, 0x1000]])
        // Never merged: three entries, three slots.
        #expect(c.avail == 65532)
    }

    @Test func step9ENOSPC() {
        let c = T1Container(limit: 2)
        #expect(c.map(iova: 0, size: kP) == nil)
        #expect(c.map(iova: kP, size: kP) == nil)
        #expect(c.map(iova: 2 * kP, size: kP) == .ENOSPC)
        // EEXIST (step 8) comes first; ENOSPC precedes the IOVA range check and pinning.
        #expect(c.map(iova: 0, size: kP) == .EEXIST)
        #expect(c.map(iova: 0xFEE0_0000, size: kP) == .ENOSPC)
        #expect(c.map(iova: 2 * kP, size: kP, vaddr: 0x1000) == .ENOSPC)
        // Unmapping gives the slot back.
        #expect(c.unmap(iova: 0, size: kP) == .success(kP))
        #expect(c.map(iova: 2 * kP, size: kP) == nil)
        #expect(c.avail == 0)
    }

    @Test func step10IOVARanges() {
        let c = T1Container()
        #expect(c.map(iova: 0xFEE0_0000, size: kP) == .EINVAL)
        #expect(c.map(iova: 0xFEEF_F000, size: kP) == .EINVAL)
        #expect(c.map(iova: 0xFEDF_F000, size: 2 * kP) == .EINVAL)       // runs into the MSI window
        #expect(c.map(iova: 0xFEEF_F000, size: 2 * kP) == .EINVAL)       // runs out of it
        #expect(c.map(iova: 0xFEDF_F000, size: 0x10_2000) == .EINVAL)   // spans the hole: two ranges
        #expect(c.map(iova: 0x1_0000_0000_0000, size: kP) == .EINVAL)    // beyond 48 bits
        #expect(c.map(iova: 0xFFFF_FFFF_F000, size: 2 * kP) == .EINVAL)
        #expect(c.map(iova: 0 &- kP, size: kP) == .EINVAL)                // ends at 2^64
        // Step 10 precedes pinning: a bad vaddr still gets EINVAL.
        #expect(c.map(iova: 0xFEE0_0000, size: kP, vaddr: 0x1000) == .EINVAL)
        // The edges of both ranges are valid.
        #expect(c.map(iova: 0xFEDF_F000, size: kP) == nil)
        #expect(c.map(iova: 0xFEF0_0000, size: kP) == nil)
        #expect(c.map(iova: 0xFFFF_FFFF_F000, size: kP) == nil)
        #expect(c.avail == 65532)
    }

    @Test func step12PinEFAULT() {
        let c = T1Container()
        #expect(c.map(iova: 0, size: kP, vaddr: 0x1000) == .EFAULT)              // no VMA
        let none = T1Mem(2 * Int(kP), prot: PROT_NONE)
        #expect(c.map(iova: 0, size: kP, vaddr: none.base, flags: kR) == .EFAULT)  // PROT_NONE
        let ro = T1Mem(2 * Int(kP), prot: PROT_READ)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: ro.base, flags: kRW) == .EFAULT)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: ro.base, flags: kW) == .EFAULT)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: ro.base, flags: kR) == nil)
        // A failed pin costs nothing.
        #expect(c.avail == 65534)
        #expect(c.spans == [[0, 2 * kP]])
        // The whole 2 MiB buffer in one request.
        #expect(c.map(iova: 0x40_0000, size: 0x20_0000, vaddr: c.vaddr) == nil)
    }

    @Test func step12AdjacentVMAs() {
        let c = T1Container()
        let m = T1Mem(4 * Int(kP))
        m.protect(offset: 2 * Int(kP), length: 2 * Int(kP), prot: PROT_READ)   // [rw rw][r r]
        #expect(c.map(iova: 0, size: 4 * kP, vaddr: m.base, flags: kR) == nil)
        #expect(c.map(iova: 0x10_0000, size: 4 * kP, vaddr: m.base, flags: kRW) == .EFAULT)
        #expect(c.map(iova: 0x10_0000, size: 3 * kP, vaddr: m.base, flags: kRW) == .EFAULT)
        #expect(c.map(iova: 0x10_0000, size: 2 * kP, vaddr: m.base, flags: kRW) == nil)
        m.protect(offset: Int(kP), length: Int(kP), prot: PROT_NONE)           // [rw -][r r]
        #expect(c.map(iova: 0x20_0000, size: 4 * kP, vaddr: m.base, flags: kR) == .EFAULT)
        #expect(c.map(iova: 0x20_0000, size: 2 * kP, vaddr: m.base + 2 * kP, flags: kR) == nil)
    }

    @Test func writeOnlyVMAFollowsGUP() {
        // check_vma_flags(): FOLL_WRITE needs VM_WRITE only; a plain read needs VM_READ.
        let c = T1Container()
        let wo = T1Mem(Int(kP), prot: PROT_WRITE)
        #expect(c.map(iova: 0, size: kP, vaddr: wo.base, flags: kR) == .EFAULT)
        #expect(c.map(iova: 0, size: kP, vaddr: wo.base, flags: kW) == nil)
    }

    @Test func procMapsCoverageRule() {
        let text = """
        00400000-00401000 r-xp 00000000 08:01 1234 /bin/x
        10000000-10002000 rw-p 00000000 00:00 0
        10002000-10003000 r--p 00000000 00:00 0
        10004000-10005000 rw-p 00000000 00:00 0
        20000000-20001000 -w-p 00000000 00:00 0
        30000000-30001000 rw-s 00000000 00:01 77 /secretmem (deleted)
        7ffd0000-7ffd1000 ---p 00000000 00:00 0
        ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
        """
        let maps = Array(text.utf8)
        func check(_ v: UInt64, _ s: UInt64, _ w: Bool) -> Errno? {
            t1Errno { () throws(Errno) in try Type1ProcSelfMaps.check(maps: maps, vaddr: v, size: s, write: w) }
        }
        #expect(check(0x1000_0000, 0x3000, false) == nil)
        #expect(check(0x1000_0000, 0x3000, true) == .EFAULT)
        #expect(check(0x1000_0000, 0x2000, true) == nil)
        #expect(check(0x1000_1000, 0x2000, false) == nil)
        #expect(check(0x1000_2000, 0x3000, false) == .EFAULT)     // hole at 0x10003000
        #expect(check(0x1000_3000, 0x1000, false) == .EFAULT)
        #expect(check(0x0FFF_F000, 0x2000, false) == .EFAULT)     // hole before
        #expect(check(0x1000_4000, 0x1000, true) == nil)
        #expect(check(0x1000_4000, 0x2000, true) == .EFAULT)      // runs past the last byte
        #expect(check(0x2000_0000, 0x1000, true) == nil)
        #expect(check(0x2000_0000, 0x1000, false) == .EFAULT)
        #expect(check(0x3000_0000, 0x1000, false) == .EFAULT)     // secretmem
        #expect(check(0x7FFD_0000, 0x1000, false) == .EFAULT)
        #expect(check(0x0040_0000, 0x1000, false) == nil)
        #expect(check(0xFFFF_FFFF_FF60_0000, 0x1000, false) == .EFAULT)
        #expect(check(0xFFFF_FFFF_FFFF_F000, 0x1000, false) == .EFAULT)
    }

    @Test func v1MapsTheSame() {
        let c = T1Container(type: 1)
        #expect(c.map(iova: 0x10000, size: 0x10000) == nil)
        #expect(c.map(iova: 0x18000, size: 0x10000) == .EEXIST)
        #expect(c.map(iova: 0xFEE0_0000, size: kP) == .EINVAL)
        #expect(c.map(iova: 0, size: kP, vaddr: 0x1000) == .EFAULT)
    }

    @Test func vaddrUpdate() {
        let c = T1Container()
        #expect(c.map(iova: 0x10000, size: 0x10000) == nil)
        #expect(c.map(iova: 0x40000, size: 0x10000, vaddr: c.vaddr + 0x10000) == nil)
        // Nothing there: ENOENT.
        #expect(c.map(iova: 0x80000, size: 0x1000, flags: kVADDR) == .ENOENT)
        // Found but not invalidated: EINVAL.
        #expect(c.map(iova: 0x10000, size: 0x10000, flags: kVADDR) == .EINVAL)
        // Invalidate A.
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: Type1UAPI.unmapFlagVaddr) == .success(0x10000))
        #expect(c.iommu.mappings[0].vaddrInvalid)
        // Inexact requests: EINVAL.
        #expect(c.map(iova: 0x10000, size: 0x8000, flags: kVADDR) == .EINVAL)
        #expect(c.map(iova: 0x18000, size: 0x8000, flags: kVADDR) == .EINVAL)
        #expect(c.map(iova: 0x10000, size: 0x40000, flags: kVADDR) == .EINVAL)
        // Alignment and wrap still apply first.
        #expect(c.map(iova: 0x10000, size: 0x10000, vaddr: 0x800, flags: kVADDR) == .EINVAL)
        // While A is invalid, a new group cannot attach.
        #expect(c.attach(.iommu) == .EBUSY)
        // Exact: success. The new vaddr is neither pinned nor checked; avail and prot unchanged.
        let before = c.avail
        #expect(c.map(iova: 0x10000, size: 0x10000, vaddr: 0x1000_0000, flags: kVADDR) == nil)
        #expect(c.avail == before)
        let a = c.iommu.mappings[0]
        #expect(a.vaddr == 0x1000_0000 && !a.vaddrInvalid && a.read && a.write)
        #expect(c.attach(.iommu) == nil)
        // Valid again: a second update is EINVAL.
        #expect(c.map(iova: 0x10000, size: 0x10000, vaddr: c.vaddr, flags: kVADDR) == .EINVAL)
    }
}

// MARK: - UNMAP_DMA

@Suite("type1: UNMAP_DMA")
struct Type1UnmapTests {
    @Test func steps1to4() {
        let c = T1Container()
        c.mapAB()
        #expect(c.ioctlErrno(Type1UAPI.unmapDMA, kBogus) == .EFAULT)                                   // 1
        #expect(c.unmap(iova: 0x10000, size: 0x10000, argsz: 23) == .failure(.EINVAL))               // 2
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: 8) == .failure(.EINVAL))
        #expect(c.unmap(iova: 0, size: 0, flags: 1 | 2) == .failure(.EINVAL))                        // 3
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: 1 | 4) == .failure(.EINVAL))
        // 4a: argsz < 48 with GET_DIRTY_BITMAP, before reading the bitmap.
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: 1, argsz: 24) == .failure(.EINVAL))
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: 1, argsz: 47) == .failure(.EINVAL))
        let w = T1Words(4)
        // 4c: access_ok.
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000,
                              bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x7FFF_FFFF_F000)) == .failure(.EINVAL))
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000,
                              bitmap: Type1Bitmap(pgsize: kP, size: 16, data: 0 &- 8)) == .failure(.EINVAL))
        // 4d: verify_bitmap_size.
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x800, bitmap: w.bitmap()) == .failure(.EINVAL))     // npages 0
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000,
                              bitmap: Type1Bitmap(pgsize: kP, size: 0, data: w.address)) == .failure(.EINVAL))
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000,
                              bitmap: Type1Bitmap(pgsize: kP, size: 0x1000_0001, data: w.address)) == .failure(.EINVAL))
        #expect(c.unmapBitmap(iova: 0, size: 65 * kP,
                              bitmap: Type1Bitmap(pgsize: kP, size: 8, data: w.address)) == .failure(.EINVAL))
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000,
                              bitmap: Type1Bitmap(pgsize: 0, size: 8, data: w.address)) == .failure(.EINVAL))
        #expect(c.spans == [[0x10000, 0x10000], [0x20000, 0x10000]])
    }

    @Test func step5VaddrWithEmulatedGroupIsEBUSY() {
        let c = T1Container(groups: [.iommu, .emulatedIOMMU])
        c.mapAB()
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: 4) == .failure(.EBUSY))
        // Before the alignment checks of steps 6-7.
        #expect(c.unmap(iova: 0x10800, size: 0, flags: 4) == .failure(.EBUSY))
        #expect(c.unmap(iova: 0, size: 0, flags: 2 | 4) == .failure(.EBUSY))
        // A plain unmap works.
        #expect(c.unmap(iova: 0x10000, size: 0x10000) == .success(0x10000))
    }

    @Test func steps6to8() {
        let c = T1Container()
        c.mapAB()
        #expect(c.unmap(iova: 0x10800, size: 0x10000) == .failure(.EINVAL))                          // 6
        #expect(c.unmap(iova: 0x10000, size: 0) == .failure(.EINVAL))                                // 7
        #expect(c.unmap(iova: 0x10000, size: 0x800) == .failure(.EINVAL))
        #expect(c.unmap(iova: 0x2000, size: 0 &- kP) == .failure(.EINVAL))                            // wraps
        #expect(c.unmap(iova: 0x1000, size: 0, flags: 2) == .failure(.EINVAL))                       // ALL with iova
        #expect(c.unmap(iova: 0, size: 0x1000, flags: 2) == .failure(.EINVAL))                       // ALL with size
        #expect(c.unmap(iova: 0x1000, size: 0x1000, flags: 2) == .failure(.EINVAL))
        // 8: bitmap while tracking is off, then with the wrong pgsize.
        let w = T1Words(4)
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000, bitmap: w.bitmap()) == .failure(.EINVAL))
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000, bitmap: w.bitmap(pgsize: 0x2000)) == .failure(.EINVAL))
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000, bitmap: w.bitmap(pgsize: 0x3000)) == .failure(.EINVAL))
        #expect(c.spans == [[0x10000, 0x10000], [0x20000, 0x10000]])
    }

    @Test(arguments: [
        // (iova, size, v1 result, v1 remaining, v2 result)
        (UInt64(0x10000), UInt64(0x10000), Result<UInt64, Errno>.success(0x10000), [[UInt64(0x20000), UInt64(0x10000)]], Result<UInt64, Errno>.success(0x10000)),
        (0x10000, 0x20000, .success(0x20000), [], .success(0x20000)),
        (0x0, 0x10_0000, .success(0x20000), [], .success(0x20000)),
        (0x10000, 0x1000, .success(0x10000), [[0x20000, 0x10000]], .failure(.EINVAL)),
        (0x11000, 0x1000, .success(0), [[0x10000, 0x10000], [0x20000, 0x10000]], .failure(.EINVAL)),
        (0x18000, 0x10000, .success(0), [[0x10000, 0x10000], [0x20000, 0x10000]], .failure(.EINVAL)),
        (0x40000, 0x1000, .success(0), [[0x10000, 0x10000], [0x20000, 0x10000]], .success(0)),
    ])
    func v1VersusV2Table(iova: UInt64, size: UInt64, v1: Result<UInt64, Errno>, v1Left: [[UInt64]], v2: Result<UInt64, Errno>) {
        let c1 = T1Container(type: 1)
        c1.mapAB()
        #expect(c1.unmap(iova: iova, size: size) == v1)
        #expect(c1.spans == v1Left)
        #expect(c1.avail == 65535 - UInt32(v1Left.count))

        let c2 = T1Container(type: 3)
        c2.mapAB()
        #expect(c2.unmap(iova: iova, size: size) == v2)
        let v2Left: [[UInt64]] = switch v2 {
        case .failure: [[0x10000, 0x10000], [0x20000, 0x10000]]
        case .success(let n): n == 0 ? [[0x10000, 0x10000], [0x20000, 0x10000]] : v1Left
        }
        #expect(c2.spans == v2Left)
    }

    @Test func unmapSizeMayExceedRequestInV1() {
        let c = T1Container(type: 1)
        c.mapAB()
        #expect(c.unmap(iova: 0x10000, size: 0x11000) == .success(0x20000))   // all of B too
    }

    @Test func unmapAll() {
        for type: UInt in [1, 3] {
            let c = T1Container(type: type)
            c.mapAB()
            #expect(c.map(iova: 0xFFFF_FFFF_F000, size: kP) == nil)
            #expect(c.unmap(iova: 0, size: 0, flags: 2) == .success(0x21000))
            #expect(c.spans.isEmpty && c.avail == 65535)
            #expect(c.unmap(iova: 0, size: 0, flags: 2) == .success(0))
        }
    }

    @Test func quirkRangeEndingAt2to64() {
        for type: UInt in [1, 3] {
            let c = T1Container(type: type)
            c.mapAB()
            // QEMU's split of a full unmap: the upper half holds nothing.
            #expect(c.unmap(iova: 1 << 63, size: 1 << 63) == .success(0))
            // [A.start, 2^64): covers A and B, yet nothing is visited in either mode.
            #expect(c.unmap(iova: 0x10000, size: 0 &- 0x10000) == .success(0))
            #expect(c.spans.count == 2)
            // Starting inside A: v1 succeeds with 0; v2 still fails check 9.
            let r = c.unmap(iova: 0x18000, size: 0 &- 0x18000)
            #expect(r == (type == 1 ? .success(0) : .failure(.EINVAL)))
            #expect(c.spans.count == 2)
        }
    }

    @Test func vaddrInvalidateAndRollback() {
        let c = T1Container()
        c.mapAB()
        #expect(c.map(iova: 0x30000, size: 0x10000, vaddr: c.vaddr + 0x20000) == nil)   // C
        // Invalidate B alone.
        #expect(c.unmap(iova: 0x20000, size: 0x10000, flags: 4) == .success(0x10000))
        // A range over A, B, C: B already invalid ⇒ EINVAL, A's mark rolled back, size unwritten.
        var u = Type1DMAUnmapArg(flags: 4, iova: 0x10000, size: 0x30000)
        let e = t1WithArg(&u) { c.ioctlErrno(Type1UAPI.unmapDMA, $0) }
        #expect(e == .EINVAL)
        #expect(u.size == 0x30000)
        #expect(c.iommu.mappings.map(\.vaddrInvalid) == [false, true, false])
        // Invalidation keeps the mappings and the budget.
        #expect(c.avail == 65532)
        // v2 split rule applies to kVADDR too.
        #expect(c.unmap(iova: 0x18000, size: 0x8000, flags: 4) == .failure(.EINVAL))
        // A normal unmap of the invalid mapping is allowed and clears the count (attach works).
        #expect(c.unmap(iova: 0x20000, size: 0x10000) == .success(0x10000))
        #expect(c.attach(.iommu) == nil)
    }

    @Test func vaddrV1EarlyStop() {
        let c = T1Container(type: 1)
        c.mapAB()
        #expect(c.unmap(iova: 0x18000, size: 0x20000, flags: 4) == .success(0))
        #expect(c.iommu.mappings.allSatisfy { !$0.vaddrInvalid })
        #expect(c.unmap(iova: 0x10000, size: 0x1000, flags: 4) == .success(0x10000))
        #expect(c.iommu.mappings.map(\.vaddrInvalid) == [true, false])
    }

    @Test func allPlusVaddrInvalidatesEverything() {
        let c = T1Container()
        c.mapAB()
        #expect(c.unmap(iova: 0, size: 0, flags: 2 | 4) == .success(0x20000))
        #expect(c.iommu.mappings.allSatisfy { $0.vaddrInvalid })
        #expect(c.attach(.iommu) == .EBUSY)
        #expect(c.unmap(iova: 0, size: 0, flags: 2 | 4) == .failure(.EINVAL))
        #expect(c.iommu.mappings.allSatisfy { $0.vaddrInvalid })
        #expect(c.map(iova: 0x10000, size: 0x10000, flags: kVADDR) == nil)
        #expect(c.attach(.iommu) == .EBUSY)
        #expect(c.map(iova: 0x20000, size: 0x10000, flags: kVADDR) == nil)
        #expect(c.attach(.iommu) == nil)
    }

    @Test func getDirtyBitmapOnUnmap() {
        let c = T1Container()
        c.mapAB()
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let w = T1Words(2, fill: 0xDEAD)
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x20000, bitmap: w.bitmap()) == .success(0x20000))
        // 32 pages from bit 0: word 0 overwritten (first mapping starts on a word boundary).
        #expect(w[0] == 0xFFFF_FFFF && w[1] == 0xDEAD)
        #expect(c.spans.isEmpty)

        // Bits are relative to unmap.iova; a mapping not on a word boundary merges the first word.
        #expect(c.map(iova: 0x14000, size: 0x2000) == nil)
        let w2 = T1Words(1, fill: 1 << 63)
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x10000, bitmap: w2.bitmap()) == .success(0x2000))
        #expect(w2[0] == (UInt64(1) << 63) | 0b11_0000)

        // A bitmap write fault: EFAULT, the mapping is not removed.
        #expect(c.map(iova: 0x10000, size: 0x1000) == nil)
        #expect(c.unmapBitmap(iova: 0x10000, size: 0x1000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x100))
                == .failure(.EFAULT))
        #expect(c.spans == [[0x10000, 0x1000]])
    }

    @Test func copyBackFault() {
        // Step 11 faults only if the struct becomes unwritable after being read; with an unreadable
        // pointer step 1 answers first. Here the struct is fine: only `size` changes.
        let c = T1Container()
        c.mapAB()
        var u = Type1DMAUnmapArg(argsz: 99, flags: 0, iova: 0x10000, size: 0x30000)
        #expect(t1WithArg(&u) { c.ioctlErrno(Type1UAPI.unmapDMA, $0) } == nil)
        #expect(u == Type1DMAUnmapArg(argsz: 99, flags: 0, iova: 0x10000, size: 0x20000))
    }
}

// MARK: - DIRTY_PAGES

@Suite("type1: DIRTY_PAGES")
struct Type1DirtyPagesTests {
    @Test func v1IsEACCESBeforeAnything() {
        let c = T1Container(type: 1)
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, kBogus) == .EACCES)
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, 0) == .EACCES)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == .EACCES)
        #expect(c.dirty(0, argsz: 0) == .EACCES)
    }

    @Test func headerChecks() {
        let c = T1Container()
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, kBogus) == .EFAULT)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart, argsz: 7) == .EINVAL)
        #expect(c.dirty(8) == .EINVAL)
        #expect(c.dirty(1 | 8) == .EINVAL)
        #expect(c.dirty(0) == .EINVAL)
        #expect(c.dirty(1 | 2) == .EINVAL)
        #expect(c.dirty(1 | 4) == .EINVAL)
        #expect(c.dirty(2 | 4) == .EINVAL)
        #expect(!c.iommu.isDirtyTracking)
    }

    @Test func startStopIdempotent() {
        let c = T1Container()
        #expect(c.dirty(Type1UAPI.dirtyFlagStop) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        #expect(c.iommu.isDirtyTracking)
        #expect(c.dirty(Type1UAPI.dirtyFlagStop) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStop) == nil)
        #expect(!c.iommu.isDirtyTracking)
    }

    @Test func getBitmapCheckOrder() {
        let c = T1Container()
        c.mapAB()
        let w = T1Words(4)
        // 1: argsz < 48 before the range is read.
        var h = Type1DirtyBitmapArg(argsz: 47, flags: 4)
        #expect(t1WithArg(&h) { c.ioctlErrno(Type1UAPI.dirtyPages, $0) } == .EINVAL)
        // 3: wrap (ending at 2^64 counts).
        #expect(c.getBitmap(iova: 0 &- kP, size: kP, bitmap: w.bitmap()) == .EINVAL)
        // 4: access_ok.
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x7FFF_FFFF_FFF8)) == .EINVAL)
        // 5: verify_bitmap_size.
        #expect(c.getBitmap(iova: 0x10000, size: 0x800, bitmap: w.bitmap()) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 0, data: w.address)) == .EINVAL)
        #expect(c.getBitmap(iova: 0, size: 0x10_0000, bitmap: Type1Bitmap(pgsize: kP, size: 16, data: w.address)) == .EINVAL)
        #expect(c.getBitmap(iova: 0, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 0x1000_0008, data: w.address)) == .EINVAL)
        // 10: tracking off — even with a bitmap that would fault on write (EINVAL beats EFAULT).
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x100)) == .EINVAL)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        // 7-9: pgsize, iova and size alignment under the lock.
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: w.bitmap(pgsize: 0x2000)) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10800, size: 0x10000, bitmap: w.bitmap()) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10000, size: 0x1800, bitmap: w.bitmap()) == .EINVAL)
        // 11: splitting a mapping at either end.
        #expect(c.getBitmap(iova: 0x18000, size: 0x8000, bitmap: w.bitmap()) == .EINVAL)
        #expect(c.getBitmap(iova: 0x10000, size: 0x18000, bitmap: w.bitmap()) == .EINVAL)
        // 12: write fault.
        #expect(c.getBitmap(iova: 0x10000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x100)) == .EFAULT)
        // A range with no mapping writes nothing and succeeds.
        #expect(c.getBitmap(iova: 0x10_0000, size: 0x10000, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0x100)) == nil)
    }

    @Test func getBitmapContents() {
        let c = T1Container()
        #expect(c.map(iova: 0x10000, size: 0x2000) == nil)
        #expect(c.map(iova: 0x14000, size: 0x1000) == nil)
        #expect(c.map(iova: 0x10_0000, size: 0x1000) == nil)     // outside the query
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let w = T1Words(1)
        #expect(c.getBitmap(iova: 0x10000, size: 0x8000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0b1_0011)
        // Mappings stay and are reported again (vfio-pci groups dirty everything).
        w[0] = 0
        #expect(c.getBitmap(iova: 0x10000, size: 0x8000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0b1_0011)
        #expect(c.spans.count == 3)

        // copy_offset: a mapping starting 64 pages in lands in word 1, word 0 untouched.
        let c2 = T1Container()
        #expect(c2.map(iova: 64 * kP, size: 100 * kP) == nil)
        #expect(c2.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let w3 = T1Words(3, fill: 0x5555)
        #expect(c2.getBitmap(iova: 0, size: 192 * kP, bitmap: w3.bitmap()) == nil)
        #expect(w3[0] == 0x5555 && w3[1] == .max && w3[2] == (1 << 36) - 1)
    }

    @Test func step13AndStartLimitINTMAX() {
        // Emulated-only: no pinning, so huge mappings are cheap to make.
        let c = T1Container(groups: [.emulatedIOMMU])
        #expect(c.map(iova: 0, size: 1 << 43, vaddr: 0) == nil)               // 2^31 pages
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == .EINVAL)
        #expect(!c.iommu.isDirtyTracking)
        #expect(c.unmap(iova: 0, size: 1 << 43) == .success(1 << 43))
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        #expect(c.map(iova: 0, size: (1 << 43) + kP, vaddr: 0) == .EINVAL)     // step 13, removed again
        #expect(c.avail == 65535 && c.spans.isEmpty)
        #expect(c.map(iova: 0, size: (1 << 43) - kP, vaddr: 0) == nil)         // INT_MAX pages
        // No IOMMU-backed group: nothing pinned through a domain ⇒ nothing reported dirty.
        // The kernel still writes whole words, so a stale word is overwritten with zeros.
        let w = T1Words(1, fill: 0xFF)
        #expect(c.map(iova: 1 << 44, size: 2 * kP, vaddr: 0) == nil)
        #expect(c.getBitmap(iova: 1 << 44, size: 64 * kP, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0)
    }

    @Test func groupLeavingDuringTrackingMarksBitmapsFull() {
        let c = T1Container(groups: [.iommu, .emulatedIOMMU])
        #expect(c.map(iova: 0x10000, size: 0x2000) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        c.detach(0)                                   // the IOMMU-backed group leaves
        let w = T1Words(1)
        #expect(c.getBitmap(iova: 0x10000, size: 0x2000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0b11)                         // reported once…
        w[0] = 0
        #expect(c.getBitmap(iova: 0x10000, size: 0x2000, bitmap: w.bitmap()) == nil)
        #expect(w[0] == 0)                            // …then cleared
    }
}

// MARK: - groups

@Suite("type1: groups attach/detach/release")
struct Type1GroupTests {
    @Test func duplicateAndEBUSYOrder() {
        let c = T1Container()
        let g = c.groups[0]
        #expect(t1Errno { () throws(Errno) in try c.backend.attachGroup(c.iommu, group: g, type: .iommu) } == .EINVAL)
        #expect(t1Errno { () throws(Errno) in try c.backend.attachGroup(c.iommu, group: g, type: .emulatedIOMMU) } == .EINVAL)
        c.mapAB()
        #expect(c.unmap(iova: 0x10000, size: 0x10000, flags: 4) == .success(0x10000))
        // EBUSY precedes the duplicate check, and applies to emulated groups too.
        #expect(t1Errno { () throws(Errno) in try c.backend.attachGroup(c.iommu, group: g, type: .iommu) } == .EBUSY)
        #expect(c.attach(.emulatedIOMMU) == .EBUSY)
        #expect(c.attach(.iommu) == .EBUSY)
    }

    @Test func nestingAndNoIOMMU() {
        let c = T1Container(type: 6, groups: [])
        #expect(c.attach(.iommu) == .EINVAL)
        #expect(c.attach(.emulatedIOMMU) == nil)
        let d = T1Container(groups: [])
        #expect(d.attach(.noIOMMU) == .EIO)
        #expect(d.attach(.iommu) == nil)
    }

    @Test func lastIOMMUGroupLeavingDropsMappings() {
        let c = T1Container(groups: [.iommu, .iommu])
        c.mapAB()
        #expect(c.avail == 65533)
        c.detach(1)
        #expect(c.spans.count == 2)                  // another IOMMU-backed group remains
        #expect(c.iommu.iovaRanges == Type1DomainConfig.intelDefault.iovaRanges)
        c.detach(0)
        #expect(c.spans.isEmpty)
        #expect(c.avail == 65535)
    }

    @Test func emulatedEdgeCase() {
        let c = T1Container(groups: [.iommu, .emulatedIOMMU])
        c.mapAB()
        c.detach(0)
        // Kept but unpinned; IOVA list opens up, pgsize back to PAGE_MASK.
        #expect(c.spans.count == 2)
        #expect(c.iommu.mappings.allSatisfy { !$0.iommuMapped })
        #expect(c.iommu.iovaRanges == [Type1IOVARange(start: 0, end: .max)])
        #expect(c.iommu.pageSizeBitmap == 0xFFFF_FFFF_FFFF_F000)
        let (e, buf) = c.info(argsz: 200)
        #expect(e == nil && t1U16(buf, 68) == 1 && t1U32(buf, 76) == 1 && t1U64(buf, 84) == 0 && t1U64(buf, 92) == .max)
        #expect(t1U64(buf, 8) == 0xFFFF_FFFF_FFFF_F000)
        // A new IOMMU-backed group replays them.
        #expect(c.attach(.iommu) == nil)
        #expect(c.iommu.mappings.allSatisfy { $0.iommuMapped })
        #expect(c.iommu.iovaRanges == Type1DomainConfig.intelDefault.iovaRanges)
        // Last emulated group leaving with a domain: nothing removed.
        c.detach(0)
        #expect(c.spans.count == 2)
    }

    @Test func emulatedOnlyContainer() {
        let c = T1Container(groups: [.emulatedIOMMU])
        #expect(c.map(iova: 0x10000, size: kP) == nil)
        // No pinning: any aligned vaddr, any IOVA.
        #expect(c.map(iova: 0xFEE0_0000, size: kP, vaddr: 0) == nil)
        #expect(c.map(iova: 1 << 60, size: kP, vaddr: 0x1000) == nil)
        #expect(c.map(iova: 0x20000, size: kP, vaddr: 0x1000) == nil)
        // The first IOMMU-backed group: the MSI window overlaps a mapping (check 7).
        #expect(c.attach(.iommu) == .EINVAL)
        #expect(c.unmap(iova: 0xFEE0_0000, size: kP) == .success(kP))
        // Replay pinning: vaddr 0x1000 is not mapped (EFAULT); state unchanged.
        #expect(c.attach(.iommu) == .EFAULT)
        #expect(c.iommu.iommuGroupCount == 0 && c.iommu.pageSizeBitmap == 0xFFFF_FFFF_FFFF_F000)
        #expect(c.iommu.mappings.allSatisfy { !$0.iommuMapped })
        #expect(c.unmap(iova: 0x20000, size: kP) == .success(kP))
        #expect(c.map(iova: 0x20000, size: kP, vaddr: c.vaddr) == nil)
        // Replay: beyond the 48-bit aperture Intel's map op refuses (EFAULT).
        #expect(c.attach(.iommu) == .EFAULT)
        #expect(c.unmap(iova: 1 << 60, size: kP) == .success(kP))
        #expect(c.attach(.iommu) == nil)
        #expect(c.iommu.pageSizeBitmap == 0x4020_1000)
        #expect(c.iommu.mappings.allSatisfy { $0.iommuMapped })
    }

    @Test func lastEmulatedGroupLeavingDomainlessContainer() {
        let c = T1Container(groups: [.emulatedIOMMU, .emulatedIOMMU])
        #expect(c.map(iova: 0, size: kP, vaddr: 0) == nil)
        c.detach(1)
        #expect(c.spans.count == 1)
        c.detach(0)
        #expect(c.spans.isEmpty && c.avail == 65535)
    }

    @Test func emulatedOnlyMappingEndingAt2to64() {
        // Reachable only without a domain (empty iova_list). The kernel's wrapped end hides such a
        // mapping from every lookup that starts at it.
        let c = T1Container(groups: [.emulatedIOMMU])
        #expect(c.map(iova: 0 &- kP, size: kP, vaddr: 0) == nil)
        #expect(c.unmap(iova: 0 &- kP, size: kP) == .success(0))
        #expect(c.unmap(iova: 0, size: 0, flags: 2) == .success(0))   // first node: none
        #expect(c.map(iova: 0, size: kP, vaddr: 0) == nil)
        #expect(c.unmap(iova: 0, size: 0, flags: 2) == .success(2 * kP)) // reached by the walk
        #expect(c.spans.isEmpty)
    }

    @Test func releaseFreesEverything() {
        let c = T1Container()
        c.mapAB()
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        c.backend.release(c.iommu)
        #expect(c.spans.isEmpty && c.avail == 65535 && !c.iommu.isDirtyTracking)
        #expect(c.iommu.iommuGroupCount == 0 && c.iommu.iovaRanges.isEmpty)
    }

    @Test func concurrentMapsAreSerialised() async {
        let c = T1Container(limit: 1000)
        let backend = c.backend, iommu = c.iommu, vaddr = c.vaddr, ctx = c.ctx
        await withTaskGroup(of: Int.self) { group in
            for t in 0..<4 {
                group.addTask {
                    var ok = 0
                    for k in 0..<64 {
                        // Every task also tries the others' IOVAs: exactly one MAP per IOVA wins.
                        let iova = UInt64((k * 4 + (t + k) % 4)) * 0x1000
                        var m = Type1DMAMapArg(flags: kRW, vaddr: vaddr, iova: iova, size: 0x1000)
                        let r = withUnsafeMutableBytes(of: &m) { p -> Bool in
                            (try? backend.ioctl(iommu, cmd: Type1UAPI.mapDMA, arg: UInt(bitPattern: p.baseAddress), context: ctx)) != nil
                        }
                        if r { ok += 1 }
                        var m2 = Type1DMAMapArg(flags: kRW, vaddr: vaddr, iova: UInt64(k * 4 + t) * 0x1000, size: 0x1000)
                        if withUnsafeMutableBytes(of: &m2, { p in
                            (try? backend.ioctl(iommu, cmd: Type1UAPI.mapDMA, arg: UInt(bitPattern: p.baseAddress), context: ctx)) != nil
                        }) { ok += 1 }
                    }
                    return ok
                }
            }
            var total = 0
            for await n in group { total += n }
            #expect(total == 256)
        }
        #expect(c.iommu.mappings.count == 256)
        #expect(c.avail == 1000 - 256)
        let m = c.iommu.mappings
        #expect(zip(m, m.dropFirst()).allSatisfy { $0.iova + $0.size <= $1.iova })
    }
}

private extension T1Container {
    /// A = [0x10000, 0x20000) and B = [0x20000, 0x30000), backed by `mem`.
    func mapAB() {
        #expect(map(iova: 0x10000, size: 0x10000, vaddr: vaddr) == nil)
        #expect(map(iova: 0x20000, size: 0x10000, vaddr: vaddr + 0x10000) == nil)
    }
}

// MARK: - faulting user memory (guard pages)

/// Two pages: the first read/write (or read-only), the second PROT_NONE. `edge` is the first
/// byte of the inaccessible page, so a struct placed just below it is cut off there.
private final class T1EdgeBuffer {
    let mem = T1Mem(2 * Int(kP))
    init(firstPage prot: Int32 = PROT_READ | PROT_WRITE) {
        mem.protect(offset: Int(kP), length: Int(kP), prot: PROT_NONE)
        if prot != PROT_READ | PROT_WRITE { mem.protect(offset: 0, length: Int(kP), prot: prot) }
    }
    var edge: UInt { UInt(mem.base) + UInt(kP) }
    /// Stores `value` so that it ends exactly `gap` bytes before the edge.
    func place<T: BitwiseCopyable>(_ value: T, endingBefore gap: Int = 0) -> UInt {
        let at = edge - UInt(MemoryLayout<T>.size) - UInt(gap)
        UnsafeMutableRawPointer(bitPattern: at)!.storeBytes(of: value, as: T.self)
        return at
    }
    func load<T: BitwiseCopyable>(_ type: T.Type, at address: UInt) -> T {
        UnsafeRawPointer(bitPattern: address)!.loadUnaligned(as: T.self)
    }
}

@Suite("type1: faulting user memory")
struct Type1FaultTests {
    @Test func getInfoChainCopyOutFaults() {
        // Step 6: header readable, the chain at +24 lands on the PROT_NONE page.
        let c = T1Container()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1InfoArg(argsz: 116))
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg) == .EFAULT)
        #expect(b.load(Type1InfoArg.self, at: arg) == Type1InfoArg(argsz: 116))   // header not written
        // The same buffer with argsz 24: no chain, header fits: success.
        let arg2 = b.place(Type1InfoArg(argsz: 24))
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg2) == nil)
        #expect(b.load(Type1InfoArg.self, at: arg2).argsz == 116)
        // A struct cut off inside its first 16 bytes: step 1.
        #expect(c.ioctlErrno(Type1UAPI.getInfo, b.edge - 12) == .EFAULT)
        // Only 16 bytes are read: a header ending at the edge after 16 bytes is fine for A < 20.
        let arg3 = b.edge - 16
        UnsafeMutableRawPointer(bitPattern: arg3)!.storeBytes(of: UInt32(16), as: UInt32.self)
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg3) == nil)
        #expect(b.load(UInt32.self, at: arg3) == 116)
    }

    @Test func getInfoHeaderCopyBackFaults() {
        // Step 7: a read-only buffer reads fine and cannot be written back.
        let c = T1Container()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1InfoArg(argsz: 24), endingBefore: 64)
        b.mem.protect(offset: 0, length: Int(kP), prot: PROT_READ)
        #expect(c.ioctlErrno(Type1UAPI.getInfo, arg) == .EFAULT)
    }

    @Test func mapStructCutOff() {
        let c = T1Container()
        let b = T1EdgeBuffer()
        #expect(c.ioctlErrno(Type1UAPI.mapDMA, b.edge - 16) == .EFAULT)
        // The vaddr in a PROT_NONE page: EFAULT at pin time.
        #expect(c.map(iova: 0, size: kP, vaddr: UInt64(b.edge)) == .EFAULT)
        #expect(c.map(iova: 0, size: 2 * kP, vaddr: b.mem.base) == .EFAULT)
        #expect(c.map(iova: 0, size: kP, vaddr: b.mem.base) == nil)
    }

    @Test func unmapBitmapDescriptorUnreadable() {
        // Step 4b precedes the lock, so tracking being off (step 8) does not matter.
        let c = T1Container()
        c.mapAB()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1DMAUnmapArg(argsz: 48, flags: 1, iova: 0x10000, size: 0x10000))
        #expect(c.ioctlErrno(Type1UAPI.unmapDMA, arg) == .EFAULT)
        // Without GET_DIRTY_BITMAP nothing beyond 24 bytes is read.
        let arg2 = b.place(Type1DMAUnmapArg(argsz: 48, flags: 0, iova: 0x10000, size: 0x10000))
        #expect(c.ioctlErrno(Type1UAPI.unmapDMA, arg2) == nil)
        #expect(b.load(Type1DMAUnmapArg.self, at: arg2).size == 0x10000)
        #expect(c.spans == [[0x20000, 0x10000]])
    }

    @Test func unmapCopyBackFaultAfterUnmapping() {
        // Step 11: the unmap has happened when the write-back faults.
        let c = T1Container()
        c.mapAB()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1DMAUnmapArg(iova: 0x10000, size: 0x10000), endingBefore: 64)
        b.mem.protect(offset: 0, length: Int(kP), prot: PROT_READ)
        #expect(c.ioctlErrno(Type1UAPI.unmapDMA, arg) == .EFAULT)
        #expect(c.spans == [[0x20000, 0x10000]])
        #expect(c.avail == 65534)
    }

    @Test func unmapBitmapFaultMidWalk() {
        // Word 0 writable, word 1 on the PROT_NONE page: the first mapping is removed, the second
        // faults and stays.
        let c = T1Container()
        #expect(c.map(iova: 0x10_0000, size: kP) == nil)
        #expect(c.map(iova: 0x10_0000 + 64 * kP, size: kP) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let b = T1EdgeBuffer()
        let data = b.edge - 8
        #expect(c.unmapBitmap(iova: 0x10_0000, size: 128 * kP, bitmap: Type1Bitmap(pgsize: kP, size: 16, data: UInt64(data)))
                == .failure(.EFAULT))
        #expect(b.load(UInt64.self, at: data) == 1)
        #expect(c.spans == [[0x10_0000 + 64 * kP, kP]])
        #expect(c.avail == 65534)
    }

    @Test func dirtyGetBitmapRangeUnreadable() {
        let c = T1Container()
        let b = T1EdgeBuffer()
        let arg = b.place(Type1DirtyBitmapArg(argsz: 48, flags: Type1UAPI.dirtyFlagGetBitmap))
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, arg) == .EFAULT)
        // argsz < 48 answers before the read.
        let arg2 = b.place(Type1DirtyBitmapArg(argsz: 47, flags: Type1UAPI.dirtyFlagGetBitmap))
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, arg2) == .EINVAL)
        // START/STOP read only the 8-byte header.
        let arg3 = b.place(Type1DirtyBitmapArg(argsz: 48, flags: Type1UAPI.dirtyFlagStart))
        #expect(c.ioctlErrno(Type1UAPI.dirtyPages, arg3) == nil)
    }

    @Test func dirtyLeftoverReadFaults() {
        // A mapping off a word boundary reads the user's word first: unreadable ⇒ EFAULT.
        let c = T1Container()
        #expect(c.map(iova: 0x10_0000 + 4 * kP, size: kP) == nil)
        #expect(c.dirty(Type1UAPI.dirtyFlagStart) == nil)
        let b = T1EdgeBuffer()
        #expect(c.getBitmap(iova: 0x10_0000, size: 64 * kP, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: UInt64(b.edge)))
                == .EFAULT)
    }
}
