// SPDX-License-Identifier: Apache-2.0
// docs/ERRORS.md rows of the container fd, the backends' open through SET_IOMMU, and type1 (reached
// on the backend directly, as the type1 suites do: docs/ERRORS.md#type1).
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

extension T1Container {
    /// UNMAP_DMA's errno, ignoring the size written back.
    func unmapErrno(iova: UInt64, size: UInt64, flags: UInt32 = 0, argsz: UInt32 = 24) -> Errno? {
        if case .failure(let e) = unmap(iova: iova, size: size, flags: flags, argsz: argsz) { return e }
        return nil
    }

    /// UNMAP_DMA with GET_DIRTY_BITMAP's errno.
    func unmapBitmapErrno(iova: UInt64, size: UInt64, bitmap: Type1Bitmap, argsz: UInt32 = 48, flags: UInt32 = 1) -> Errno? {
        if case .failure(let e) = unmapBitmap(iova: iova, size: size, bitmap: bitmap, argsz: argsz, flags: flags) { return e }
        return nil
    }

    /// A mapping of `size` bytes at IOVA 0 whose vaddr is never touched (only emulated groups pin
    /// nothing), so it may be larger than the process.
    func mapHuge(size: UInt64) -> Errno? { map(iova: 0, size: size, vaddr: 0x1000_0000_0000) }
}

/// A page of `T`, readable but not writable: a result cannot be written back.
final class ReadOnlyArg<T: BitwiseCopyable>: @unchecked Sendable {
    let mem = T1Mem(Int(kP))
    init(_ value: T) {
        UnsafeMutableRawPointer(bitPattern: UInt(mem.base))!.storeBytes(of: value, as: T.self)
        mem.protect(offset: 0, length: Int(kP), prot: PROT_READ)
    }
    var address: UInt { UInt(mem.base) }
}

let kVFIOVaddr = Type1UAPI.unmapFlagVaddr
/// 2^31 pages: one more than INT_MAX.
let kHugeSize: UInt64 = (1 << 31) * kP

extension ErrorRows {
    static let container: [ErrorRow] = [
        .succeeds("ctr-api-version", value: 0) { sub in try sub.ioctl(try sub.open("/dev/vfio/vfio"), UInt(VFIOIoctl.getAPIVersion)) },
        .succeeds("ctr-check-extension", value: 1) { sub in
            try sub.checkExtension(try sub.open("/dev/vfio/vfio"), VFIOExtension.type1v2IOMMU)
        },
        .sub("ctr-setiommu-einval", .EINVAL, "container has no group attached") { sub in
            try sub.setIOMMU(try sub.open("/dev/vfio/vfio"), VFIOExtension.type1v2IOMMU)
            return 0
        },
        .sub("ctr-setiommu-einval (twice)", .EINVAL, "container already has an IOMMU backend") { sub in
            let c = try sub.containerWith(try sub.open("/dev/vfio/26"))
            try sub.setIOMMU(c, VFIOExtension.type1v2IOMMU)
            return 0
        },
        .sub("ctr-setiommu-enodev", .ENODEV, "no IOMMU backend accepts type 99") { sub in
            let c = try sub.open("/dev/vfio/vfio")
            try sub.setContainer(try sub.open("/dev/vfio/26"), c)
            try sub.setIOMMU(c, 99)
            return 0
        },
        .sub("ctr-passthrough-einval", .EINVAL, "container has no IOMMU backend (VFIO_SET_IOMMU not done)") { sub in
            try sub.ioctl(try sub.open("/dev/vfio/vfio"), UInt(VFIOIoctl.iommuMapDMA), 0x10)
        },
        ErrorRow(id: "noiommu-open-einval", code: .EINVAL, reason: "IOMMU type 1 on a no-IOMMU container (want 8)", value: 0) {
            let ctx = BackendContext(capableSysRawIO: { true }, unsafeNoIOMMUMode: true, dmaEntryLimit: 65535)
            do throws(Errno) { _ = try NoIOMMUBackend().open(arg: VFIOExtension.type1IOMMU, context: ctx); return .value(0) } catch {
                return .failed(error)
            }
        },
        .sub("noiommu-open-eperm", .EPERM, "no-IOMMU backend needs CAP_SYS_RAWIO", config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            let c = try sub.open("/dev/vfio/vfio")
            try sub.setContainer(g, c)
            sub.rawIOPolicy = .denied
            try sub.setIOMMU(c, VFIOExtension.noIOMMU)
            return 0
        },
        .sub("noiommu-ioctl-enotty", .ENOTTY, "the no-IOMMU backend serves only VFIO_CHECK_EXTENSION",
             config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            return try sub.ioctl(try sub.containerWith(g, type: VFIOExtension.noIOMMU), UInt(VFIOIoctl.iommuMapDMA), 0x10)
        },
        ErrorRow(id: "t1-open-einval", code: .EINVAL, reason: "IOMMU type 9 is not a type1 extension", value: 0) {
            do throws(Errno) { _ = try Type1Backend().open(arg: Type1UAPI.extUnmapAll, context: t1Context()); return .value(0) } catch {
                return .failed(error)
            }
        },
        .sub("setiommu-backend-fault", .ENOMEM, "fault injected: the IOMMU backend's open") { sub in
            let c = try sub.open("/dev/vfio/vfio")
            try sub.setContainer(try sub.open("/dev/vfio/26"), c)
            sub.faults.arm(.backendOpen, errno: .ENOMEM)
            try sub.setIOMMU(c, VFIOExtension.type1v2IOMMU)
            return 0
        },
    ]

    static let type1: [ErrorRow] = [
        .t1("t1-enotty", .ENOTTY, "not a type1 request") { $0.ioctlErrno(0x3BFF, 0) },
        // MARK: a group joining
        .t1("t1-attach-ebusy-vaddr", .EBUSY, "1 mapping(s) have their vaddr invalidated") { c in
            guard c.map(iova: 0, size: kP) == nil, c.unmapErrno(iova: 0, size: kP, flags: kVFIOVaddr) == nil else { return nil }
            return c.attach(.iommu)
        },
        .t1("t1-attach-einval-dup", .EINVAL, "group already attached") { c in
            t1Errno { () throws(Errno) in try c.backend.attachGroup(c.iommu, group: c.groups[0], type: .iommu) }
        },
        .t1("t1-attach-eio", .EIO, "no-IOMMU group: no IOMMU domain can be made") { $0.attach(.noIOMMU) },
        .t1("t1-attach-einval-nesting", .EINVAL, "nesting: the IOMMU has no enable_nesting",
            type: Type1UAPI.extType1Nesting, groups: []) { $0.attach(.iommu) },
        ErrorRow(id: "t1-attach-einval-aperture", code: .EINVAL, reason: "a mapping lies below the new aperture start 0x100000",
                 value: 0) {
            // An IOMMU whose aperture starts at 1 MiB. Its group leaves: every IOVA is valid again
            // for the emulated group, which maps below the aperture; an IOMMU-backed group joining
            // then conflicts with that mapping. (Above the aperture the kernel's wrapped lookup
            // finds nothing: docs/DECISIONS.md#t1-wrap; replay refuses it instead, EFAULT.)
            var config = Type1DomainConfig.intelDefault
            config.apertureStart = 0x10_0000
            let c = T1Container(groups: [.emulatedIOMMU, .iommu], backend: Type1Backend(domainConfig: config))
            c.detach(1)
            guard c.map(iova: 0, size: kP) == nil else { return .value(-1) }
            return c.attach(.iommu).map(RowOutcome.failed) ?? .value(0)
        },
        .t1("t1-attach-einval-resv", .EINVAL, "reserved region 0xfee00000-0xfeefffff overlaps a mapping",
            groups: [.emulatedIOMMU]) { c in
            guard c.map(iova: 0xFEE0_0000, size: kP) == nil else { return nil }
            return c.attach(.iommu)
        },
        .t1("t1-attach-efault-replay", .EFAULT, "vaddr 0x1000 size 0x1000: not all mapped", groups: [.emulatedIOMMU]) { c in
            guard c.map(iova: 0, size: kP, vaddr: 0x1000) == nil else { return nil }
            return c.attach(.iommu)
        },
        // MARK: GET_INFO
        .t1("t1-info-efault-in", .EFAULT, "cannot read 16 bytes at 0x10") { $0.ioctlErrno(Type1UAPI.getInfo, kBogus) },
        .t1("t1-info-einval-argsz", .EINVAL, "argsz 8 < minsz 16") { $0.info(argsz: 8).0 },
        .t1("t1-info-efault-caps", .EFAULT, "cannot write") { c in
            let edge = T1EdgeBuffer()
            let at = edge.place((UInt32(256), UInt32(0), UInt64(0), UInt32(0), UInt32(0)))   // 24 bytes up to the edge
            return withExtendedLifetime(edge) { c.ioctlErrno(Type1UAPI.getInfo, at) }
        },
        .t1("t1-info-efault-out", .EFAULT, "cannot write 16 bytes at") { c in
            let arg = ReadOnlyArg((UInt32(16), UInt32(0), UInt64(0)))
            return withExtendedLifetime(arg) { c.ioctlErrno(Type1UAPI.getInfo, arg.address) }
        },
        // MARK: MAP_DMA
        .t1("t1-map-efault", .EFAULT, "cannot read 32 bytes at 0x10") { $0.ioctlErrno(Type1UAPI.mapDMA, kBogus) },
        .t1("t1-map-einval-argsz", .EINVAL, "argsz 8 < minsz 32") { $0.map(iova: 0, size: kP, argsz: 8) },
        .t1("t1-map-einval-argsz (flags)", .EINVAL, "unknown flags 0x8 (known 0x7)") { $0.map(iova: 0, size: kP, flags: kRW | 8) },
        .t1("t1-map-einval-prot", .EINVAL, "flags 0x0: neither READ nor WRITE") { $0.map(iova: 0, size: kP, flags: 0) },
        .t1("t1-map-einval-prot (vaddr)", .EINVAL, "flags 0x5: VADDR with READ/WRITE") { $0.map(iova: 0, size: kP, flags: kR | kVADDR) },
        .t1("t1-map-einval-align (size 0)", .EINVAL, "size 0") { $0.map(iova: 0, size: 0) },
        .t1("t1-map-einval-align (iova)", .EINVAL, "iova 0x1001 not aligned to page size 0x1000") { $0.map(iova: 0x1001, size: kP) },
        .t1("t1-map-einval-align (vaddr)", .EINVAL, "vaddr 0x1001 not aligned to page size 0x1000") { c in
            c.map(iova: 0, size: kP, vaddr: 0x1001)
        },
        .t1("t1-map-einval-wrap", .EINVAL, "iova 0xfffffffffffff000 + size 0x2000 wraps") { $0.map(iova: 0xFFFF_FFFF_FFFF_F000, size: 0x2000) },
        .t1("t1-map-vaddr-enoent", .ENOENT, "VADDR: no mapping overlaps iova 0x0 size 0x1000") { $0.map(iova: 0, size: kP, flags: kVADDR) },
        .t1("t1-map-vaddr-einval", .EINVAL, "VADDR: mapping at iova 0x0 has a valid vaddr") { c in
            guard c.map(iova: 0, size: kP) == nil else { return nil }
            return c.map(iova: 0, size: kP, flags: kVADDR)
        },
        .t1("t1-map-eexist", .EEXIST, "iova 0x0 size 0x2000 overlaps the mapping at iova 0x1000") { c in
            guard c.map(iova: kP, size: kP) == nil else { return nil }
            return c.map(iova: 0, size: 2 * kP)
        },
        ErrorRow(id: "t1-map-enospc", code: .ENOSPC, reason: "dma_entry_limit reached", value: 0) {
            let c = T1Container(limit: 1)
            guard c.map(iova: 0, size: kP) == nil else { return .value(-1) }
            return c.map(iova: kP, size: kP).map(RowOutcome.failed) ?? .value(0)
        },
        .t1("t1-map-einval-range", .EINVAL, "iova 0xfee00000 size 0x1000 outside the valid IOVA ranges") { $0.map(iova: 0xFEE0_0000, size: kP) },
        .t1("t1-map-efault-pin", .EFAULT, "vaddr 0x1000 size 0x1000: not all mapped") { c in
            c.map(iova: 0, size: kP, vaddr: 0x1000)
        },
        .t1("t1-map-einval-bitmap", .EINVAL, "pages > INT_MAX while dirty tracking", groups: [.emulatedIOMMU]) { c in
            guard c.dirty(Type1UAPI.dirtyFlagStart) == nil else { return nil }
            return c.mapHuge(size: kHugeSize)
        },
        // MARK: UNMAP_DMA
        .t1("t1-unmap-efault", .EFAULT, "cannot read 24 bytes at 0x10") { $0.ioctlErrno(Type1UAPI.unmapDMA, kBogus) },
        .t1("t1-unmap-einval-argsz", .EINVAL, "argsz 16 < minsz 24") { $0.unmapErrno(iova: 0, size: kP, argsz: 16) },
        .t1("t1-unmap-einval-flags", .EINVAL, "flags 0x3: GET_DIRTY_BITMAP with ALL or VADDR") { c in
            c.unmapErrno(iova: 0, size: 0, flags: Type1UAPI.unmapFlagGetDirtyBitmap | Type1UAPI.unmapFlagAll, argsz: 48)
        },
        .t1("t1-unmap-bitmap-argsz", .EINVAL, "argsz 24 < 48 with GET_DIRTY_BITMAP") { c in
            c.unmapErrno(iova: 0, size: kP, flags: Type1UAPI.unmapFlagGetDirtyBitmap)
        },
        .t1("t1-unmap-bitmap-efault", .EFAULT, "cannot read 24 bytes at") { c in
            let edge = T1EdgeBuffer()
            let at = edge.place(Type1DMAUnmapArg(argsz: 48, flags: Type1UAPI.unmapFlagGetDirtyBitmap, iova: 0, size: kP))
            return withExtendedLifetime(edge) { c.ioctlErrno(Type1UAPI.unmapDMA, at) }
        },
        .t1("t1-unmap-bitmap-access", .EINVAL, "bitmap data 0xfffffffffffff000 size 0x8 fails access_ok") { c in
            c.unmapBitmapErrno(iova: 0, size: kP, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: 0xFFFF_FFFF_FFFF_F000))
        },
        .t1("t1-unmap-bitmap-size", .EINVAL, "bitmap of 1 pages, size 0") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.unmapBitmapErrno(iova: 0, size: kP, bitmap: Type1Bitmap(pgsize: kP, size: 0, data: w.address)) }
        },
        .t1("t1-unmap-ebusy-vaddr", .EBUSY, "VADDR with 1 emulated (mdev) group(s) attached", groups: [.iommu, .emulatedIOMMU]) { c in
            guard c.map(iova: 0, size: kP) == nil else { return nil }
            return c.unmapErrno(iova: 0, size: kP, flags: kVFIOVaddr)
        },
        .t1("t1-unmap-einval-align", .EINVAL, "iova 0x800 not aligned to page size 0x1000") { $0.unmapErrno(iova: 0x800, size: kP) },
        .t1("t1-unmap-einval-size", .EINVAL, "size 0x0 zero or not aligned to page size 0x1000") { $0.unmapErrno(iova: 0, size: 0) },
        .t1("t1-unmap-einval-size (ALL)", .EINVAL, "ALL with iova 0x1000 size 0x0 (both must be 0)") { c in
            c.unmapErrno(iova: kP, size: 0, flags: Type1UAPI.unmapFlagAll)
        },
        .t1("t1-unmap-einval-tracking", .EINVAL, "GET_DIRTY_BITMAP while dirty tracking is off") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.unmapBitmapErrno(iova: 0, size: kP, bitmap: w.bitmap()) }
        },
        .t1("t1-unmap-einval-split", .EINVAL, "iova 0x1000 splits the mapping at iova 0x0 (v2)") { c in
            guard c.map(iova: 0, size: 0x2000) == nil else { return nil }
            return c.unmapErrno(iova: 0x1000, size: kP)
        },
        .t1("t1-unmap-vaddr-einval", .EINVAL, "VADDR: mapping at iova 0x0 already invalidated") { c in
            guard c.map(iova: 0, size: kP) == nil, c.unmapErrno(iova: 0, size: kP, flags: kVFIOVaddr) == nil else { return nil }
            return c.unmapErrno(iova: 0, size: kP, flags: kVFIOVaddr)
        },
        .t1("t1-unmap-bitmap-write", .EFAULT, "cannot write") { c in
            guard c.dirty(Type1UAPI.dirtyFlagStart) == nil, c.map(iova: 0, size: kP) == nil else { return nil }
            let bits = ReadOnlyArg(UInt64(0))
            return withExtendedLifetime(bits) {
                c.unmapBitmapErrno(iova: 0, size: kP, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: UInt64(bits.address)))
            }
        },
        .t1("t1-unmap-efault-out", .EFAULT, "cannot write") { c in
            guard c.map(iova: 0, size: kP) == nil else { return nil }
            let arg = ReadOnlyArg(Type1DMAUnmapArg(iova: 0, size: kP))
            return withExtendedLifetime(arg) { c.ioctlErrno(Type1UAPI.unmapDMA, arg.address) }
        },
        // MARK: DIRTY_PAGES
        .t1("t1-dirty-eacces", .EACCES, "dirty tracking needs a v2 container (TYPE1v2)", type: Type1UAPI.extType1) { c in
            c.dirty(Type1UAPI.dirtyFlagStart)
        },
        .t1("t1-dirty-efault", .EFAULT, "cannot read 8 bytes at 0x10") { $0.ioctlErrno(Type1UAPI.dirtyPages, kBogus) },
        .t1("t1-dirty-einval-argsz", .EINVAL, "argsz 4 < minsz 8") { $0.dirty(Type1UAPI.dirtyFlagStart, argsz: 4) },
        .t1("t1-dirty-einval-flags", .EINVAL, "flags 0x3: exactly one of START, STOP, GET_BITMAP") { c in
            c.dirty(Type1UAPI.dirtyFlagStart | Type1UAPI.dirtyFlagStop)
        },
        .t1("t1-dirty-start-einval", .EINVAL, "mapping at iova 0x0 has 2147483648 pages > INT_MAX", groups: [.emulatedIOMMU]) { c in
            guard c.mapHuge(size: kHugeSize) == nil else { return nil }
            return c.dirty(Type1UAPI.dirtyFlagStart)
        },
        .t1("t1-dirty-get-argsz", .EINVAL, "argsz 16 < 48 with GET_BITMAP") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0, size: kP, bitmap: w.bitmap(), argsz: 16) }
        },
        .t1("t1-dirty-get-efault", .EFAULT, "cannot read") { c in
            let edge = T1EdgeBuffer()
            return withExtendedLifetime(edge) { c.ioctlErrno(Type1UAPI.dirtyPages, edge.place(Type1DirtyBitmapArg(argsz: 48, flags: Type1UAPI.dirtyFlagGetBitmap))) }
        },
        .t1("t1-dirty-get-wrap", .EINVAL, "iova 0xfffffffffffff000 + size 0x2000 wraps") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0xFFFF_FFFF_FFFF_F000, size: 0x2000, bitmap: w.bitmap()) }
        },
        .t1("t1-dirty-get-access", .EINVAL, "bitmap pgsize 0") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0, size: kP, bitmap: w.bitmap(pgsize: 0)) }
        },
        .t1("t1-dirty-get-size", .EINVAL, "bitmap of 1 pages, size 0") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0, size: kP, bitmap: Type1Bitmap(pgsize: kP, size: 0, data: w.address)) }
        },
        .t1("t1-dirty-get-pgsize", .EINVAL, "bitmap pgsize 0x2000 != page size 0x1000") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0, size: 0x2000, bitmap: w.bitmap(pgsize: 0x2000)) }
        },
        .t1("t1-dirty-get-align", .EINVAL, "iova 0x800 not aligned to page size 0x1000") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0x800, size: kP, bitmap: w.bitmap()) }
        },
        .t1("t1-dirty-get-off", .EINVAL, "dirty tracking is off") { c in
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0, size: kP, bitmap: w.bitmap()) }
        },
        .t1("t1-dirty-get-split", .EINVAL, "splits the mapping at iova 0x10000") { c in
            c.mapAB()
            guard c.dirty(Type1UAPI.dirtyFlagStart) == nil else { return nil }
            let w = T1Words(1)
            return withExtendedLifetime(w) { c.getBitmap(iova: 0x10000, size: 0x8000, bitmap: w.bitmap()) }
        },
        .t1("t1-dirty-get-write", .EFAULT, "cannot write") { c in
            guard c.dirty(Type1UAPI.dirtyFlagStart) == nil, c.map(iova: 0, size: kP) == nil else { return nil }
            let bits = ReadOnlyArg(UInt64(0))
            return withExtendedLifetime(bits) {
                c.getBitmap(iova: 0, size: kP, bitmap: Type1Bitmap(pgsize: kP, size: 8, data: UInt64(bits.address)))
            }
        },
    ]
}
