// SPDX-License-Identifier: Apache-2.0
// Shared fixtures of the type1 IOMMU backend's user-API tests (docs/ERRORS.md#type1), one file per ioctl beside
// this one: every check-order row with its exact errno, the v1/v2 unmap table, the GET_INFO worked
// example, CHECK_EXTENSION, dirty pages and the group rules. User memory is real: mmap'd anonymous
// pages for vaddrs and stack/heap buffers for ioctl arguments; small kBogus addresses (0x10) stand
// for unreadable pointers.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - helpers

/// An identity token standing for a VFIO group.
final class T1Group {}

let kRW = Type1UAPI.mapFlagRead | Type1UAPI.mapFlagWrite
let kR = Type1UAPI.mapFlagRead
let kW = Type1UAPI.mapFlagWrite
let kVADDR = Type1UAPI.mapFlagVaddr
let kP: UInt64 = 0x1000
let kBogus: UInt = 0x10

func t1Context(limit: UInt32 = 65535) -> BackendContext {
    BackendContext(capableSysRawIO: { true }, unsafeNoIOMMUMode: false, dmaEntryLimit: limit)
}

/// The errno `body` threw, or nil on success.
func t1Errno(_ body: () throws(Errno) -> Void) -> Errno? {
    do { try body(); return nil } catch { return error }
}

/// The address of `value` as a user pointer for the duration of `body`.
func t1WithArg<T, Output>(_ value: inout T, _ body: (UInt) -> Output) -> Output {
    withUnsafeMutableBytes(of: &value) { body(UInt(bitPattern: $0.baseAddress)) }
}

/// Anonymous memory from mmap (page aligned), unmapped at deinit.
final class T1Mem {
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
final class T1Container {
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

func t1U32(_ b: [UInt8], _ off: Int) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt32.self) } }
func t1U16(_ b: [UInt8], _ off: Int) -> UInt16 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt16.self) } }
func t1U64(_ b: [UInt8], _ off: Int) -> UInt64 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt64.self) } }

/// A zeroed array of t1U64 words as a user bitmap.
final class T1Words {
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

extension T1Container {
    /// A = [0x10000, 0x20000) and B = [0x20000, 0x30000), backed by `mem`.
    func mapAB() {
        #expect(map(iova: 0x10000, size: 0x10000, vaddr: vaddr) == nil)
        #expect(map(iova: 0x20000, size: 0x10000, vaddr: vaddr + 0x10000) == nil)
    }
}

// MARK: - faulting user memory (guard pages)

/// Two pages: the first read/write (or read-only), the second PROT_NONE. `edge` is the first
/// byte of the inaccessible page, so a struct placed just below it is cut off there.
final class T1EdgeBuffer {
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
