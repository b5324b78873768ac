// SPDX-License-Identifier: Apache-2.0
/// The type1 IOMMU backend, "vfio-iommu-type1" (`drivers/vfio/vfio_iommu_type1.c`, docs/ERRORS.md#type1): the
/// user API a container fd exposes once VFIO_SET_IOMMU chose TYPE1 (v1) or TYPE1v2 (v2).
///
/// Stateless itself (the container keeps one `Type1IOMMU` per `open`); the fixed domain
/// configuration and the address-space checker are shared by every container it opens.
public final class Type1Backend: IOMMUBackend {
    /// "vfio-iommu-type1".
    public let name = "vfio-iommu-type1"
    /// The domain every IOMMU-backed group joins (docs/DECISIONS.md#t1-simplified item 1).
    public let domainConfig: Type1DomainConfig
    /// Where MAP asks whether user memory could be pinned.
    public let addressSpace: any Type1AddressSpace

    /// A backend with the given domain configuration (default: the Intel values of docs/DECISIONS.md#t1-simplified)
    /// and pin-time checker (default: the calling process's `/proc/self/maps`).
    public init(domainConfig: Type1DomainConfig = .intelDefault,
                addressSpace: any Type1AddressSpace = Type1ProcSelfMaps()) {
        self.domainConfig = domainConfig
        self.addressSpace = addressSpace
    }

    /// Creates the per-container state for TYPE1 (v1), TYPE1v2 (v2) or NESTING (v2 + nesting);
    /// any other id is EINVAL, including VFIO_UNMAP_ALL which CHECK_EXTENSION claims (docs/ERRORS.md#extension-ids).
    ///
    /// Kernel: vfio_iommu_type1_open()
    public func open(arg: UInt, context: BackendContext) throws(Errno) -> AnyObject? {
        let v2: Bool, nesting: Bool
        switch arg {
        case Type1UAPI.extType1: (v2, nesting) = (false, false)
        case Type1UAPI.extType1Nesting: (v2, nesting) = (true, true)
        case Type1UAPI.extType1v2: (v2, nesting) = (true, false)
        default: throw .EINVAL.because("IOMMU type {} is not a type1 extension", arg)
        }
        return Type1IOMMU(v2: v2, nesting: nesting, dmaEntryLimit: context.dmaEntryLimit,
                          config: domainConfig, addressSpace: addressSpace)
    }

    /// The last group left: every mapping, group record and range is dropped.
    ///
    /// Kernel: vfio_iommu_type1_release()
    public func release(_ data: AnyObject?) {
        guard let iommu = data as? Type1IOMMU else { return }
        iommu.lock.lock(); defer { iommu.lock.unlock() }
        iommu.emulatedGroups.removeAll()
        iommu.removeAllDMA()
        iommu.iommuGroups.removeAll()
        iommu.nonCoherentGroups.removeAll()
        iommu.iovaList.removeAll()
        iommu.pgsizeBitmap = Type1IOMMU.pageMask
        iommu.dirtyPageTracking = false
    }

    /// CHECK_EXTENSION and the type1 ioctls; anything else is ENOTTY.
    ///
    /// With `data == nil` (the container polling backends before SET_IOMMU) only CHECK_EXTENSION
    /// is meaningful; the kernel is never asked anything else then, and the model answers EINVAL,
    /// the container's own "no backend" errno.
    ///
    /// Kernel: vfio_iommu_type1_ioctl()
    public func ioctl(_ data: AnyObject?, cmd: UInt32, arg: UInt, context: BackendContext) throws(Errno) -> Int {
        let iommu = data as? Type1IOMMU
        if cmd == Type1UAPI.checkExtension { return checkExtension(iommu, arg) }
        guard let iommu else { throw .EINVAL.because("no type1 state") }
        switch cmd {
        case Type1UAPI.getInfo: try iommu.getInfo(arg: arg)
        case Type1UAPI.mapDMA: try iommu.mapDMA(arg: arg)
        case Type1UAPI.unmapDMA: try iommu.unmapDMA(arg: arg)
        case Type1UAPI.dirtyPages: try iommu.dirtyPages(arg: arg)
        default: throw .ENOTTY.because("not a type1 request")
        }
        return 0
    }

    /// The extension table of docs/ERRORS.md#extension-ids: nil `iommu` is the S0/S1 column.
    ///
    /// Kernel: vfio_iommu_type1_check_extension()
    public func checkExtension(_ iommu: Type1IOMMU?, _ id: UInt) -> Int {
        switch id {
        case Type1UAPI.extType1, Type1UAPI.extType1v2, Type1UAPI.extType1Nesting, Type1UAPI.extUnmapAll:
            return 1
        case Type1UAPI.extUpdateVaddr:
            // mdev drivers pin behind the user's back, so vaddr updates are off while one is there.
            guard let iommu else { return 0 }
            iommu.lock.lock(); defer { iommu.lock.unlock() }
            return iommu.emulatedGroups.isEmpty ? 1 : 0
        case Type1UAPI.extDMACC:
            guard let iommu else { return 0 }
            iommu.lock.lock(); defer { iommu.lock.unlock() }
            // vfio_domains_have_enforce_cache_coherency(): every domain must enforce (over no
            // domain at all, vacuously 1); a group that cannot has a domain of its own.
            if !iommu.hasDomain { return 1 }
            return iommu.config.enforceCacheCoherency && iommu.nonCoherentGroups.isEmpty ? 1 : 0
        default:
            return 0
        }
    }

    /// A group joins the container (docs/ERRORS.md#t1-attach), checks in the kernel's order.
    ///
    /// An emulated group is only recorded. The first IOMMU-backed group creates the model's one
    /// domain: aperture and reserved-region conflicts with existing mappings (possible only when
    /// emulated groups mapped first) are EINVAL, then the existing mappings are replayed (pinned)
    /// into it, where a bad vaddr or an IOVA beyond the aperture is EFAULT. Later IOMMU-backed
    /// groups reuse the domain: same configuration, nothing to replay. A NO_IOMMU group cannot
    /// get a domain (EIO); the container never offers one to type1.
    ///
    /// Kernel: vfio_iommu_type1_attach_group()
    public func attachGroup(_ data: AnyObject?, group: AnyObject, type: VFIOGroupType) throws(Errno) {
        guard let iommu = data as? Type1IOMMU else { throw .EINVAL.because("no type1 state") }
        let id = ObjectIdentifier(group)
        let coherent = type == .iommu ? Self.groupEnforcesCoherency(group) : true
        iommu.lock.lock(); defer { iommu.lock.unlock() }

        // 1. Attaching may need pinning, which needs valid vaddrs.
        if iommu.vaddrInvalidCount > 0 { throw .EBUSY.because("{} mapping(s) have their vaddr invalidated", iommu.vaddrInvalidCount) }
        // 2. Duplicate.
        if iommu.iommuGroups.contains(id) || iommu.emulatedGroups.contains(id) { throw .EINVAL.because("group already attached") }
        // 3. Emulated groups have no domain.
        if type == .emulatedIOMMU {
            iommu.emulatedGroups.append(id)
            return
        }
        // 4. No IOMMU behind the group: iommu_domain_alloc() fails.
        if type == .noIOMMU { throw .EIO.because("no-IOMMU group: no IOMMU domain can be made") }
        // 5. Intel and AMD in 6.3 have no enable_nesting op.
        if iommu.isNesting { throw .EINVAL.because("nesting: the IOMMU has no enable_nesting") }

        if iommu.hasDomain {
            // The new domain would match the existing one and be dropped for it (or, with another
            // coherency answer, stay a second domain of the same shape); its aperture and reserved
            // regions are the ones already applied, so checks 6–8 cannot fail.
            iommu.iommuGroups.append(id)
            if !coherent { iommu.nonCoherentGroups.append(id) }
            return
        }

        let config = iommu.config
        // 6. vfio_iommu_aper_conflict(): an empty list never conflicts; otherwise mappings below
        // or above the new aperture do (found with the kernel's wrapped vfio_find_dma()).
        if let first = iommu.iovaList.first, let last = iommu.iovaList.last {
            if config.apertureStart > last.end || config.apertureEnd < first.start {
                throw .EINVAL.because("aperture {x}-{x} outside the container's IOVA ranges", config.apertureStart, config.apertureEnd)
            }
            if first.start < config.apertureStart,
               iommu.dma.find(start: first.start, size: config.apertureStart - first.start) != nil {
                throw .EINVAL.because("a mapping lies below the new aperture start {x}", config.apertureStart)
            }
            if last.end > config.apertureEnd,
               iommu.dma.find(start: config.apertureEnd &+ 1, size: last.end - config.apertureEnd) != nil {
                throw .EINVAL.because("a mapping lies above the new aperture end {x}", config.apertureEnd)
            }
        }
        // 7. vfio_iommu_resv_conflict(): a reserved region over an existing mapping.
        for resv in config.reservedRegions
        where iommu.dma.find(start: resv.start, size: resv.end &- resv.start &+ 1) != nil {
            throw .EINVAL.because("reserved region {x}-{x} overlaps a mapping", resv.start, resv.end)
        }
        // 8. No usable IOVA left.
        let ranges = config.iovaRanges
        if ranges.isEmpty { throw .EINVAL.because("no usable IOVA range left") }
        // (9. MSI isolation: every modelled platform has interrupt remapping.)
        // 10. vfio_iommu_replay(): pin each mapping and map it into the new domain. Intel's map
        // op refuses addresses beyond the domain's width with -EFAULT.
        for i in 0..<iommu.dma.count {
            let m = iommu.dma[i]
            // The replay loop runs `while (iova < dma->iova + dma->size)`: a mapping ending exactly
            // at 2^64 has end 0 and is skipped, yet marked mapped like the rest.
            if m.wrappedEnd == 0 { continue }
            if m.lastByte > config.apertureEnd {
                throw .EFAULT.because("replay: mapping at iova {x} beyond the domain's aperture end {x}", m.iova, config.apertureEnd)
            }
            try iommu.addressSpace.checkPinnable(vaddr: m.vaddr, size: m.size, write: m.write)
        }

        iommu.iommuGroups.append(id)
        if !coherent { iommu.nonCoherentGroups.append(id) }
        iommu.iovaList = ranges
        iommu.pgsizeBitmap = Self.effectivePgsizeBitmap(config.pgsizeBitmap)
        iommu.dma.updateAll { $0.iommuMapped = true }
    }

    /// A group leaves the container (docs/ERRORS.md#t1-attach).
    ///
    /// Mappings persist while an IOMMU-backed group remains. When the last one leaves, every
    /// mapping is removed if no emulated group remains either; otherwise they stay, unpinned, and
    /// the IOVA list opens to [0, 2^64−1] with `pgsize_bitmap` back to PAGE_MASK. The last
    /// emulated group leaving a domain-less container also removes every mapping. A group that
    /// could dirty memory by itself leaving during tracking marks every bitmap full.
    ///
    /// Kernel: vfio_iommu_type1_detach_group()
    public func detachGroup(_ data: AnyObject?, group: AnyObject) {
        guard let iommu = data as? Type1IOMMU else { return }
        let id = ObjectIdentifier(group)
        iommu.lock.lock(); defer { iommu.lock.unlock() }

        if let k = iommu.emulatedGroups.firstIndex(of: id) {
            iommu.emulatedGroups.remove(at: k)
            if iommu.emulatedGroups.isEmpty && !iommu.hasDomain { iommu.removeAllDMA() }
            return
        }
        guard let k = iommu.iommuGroups.firstIndex(of: id) else { return }
        iommu.iommuGroups.remove(at: k)
        iommu.nonCoherentGroups.removeAll { $0 == id }
        if !iommu.hasDomain {
            if iommu.emulatedGroups.isEmpty {
                iommu.removeAllDMA()
            } else {
                // vfio_iommu_unmap_unpin_reaccount(): kept, but no longer in any domain.
                iommu.dma.updateAll { $0.iommuMapped = false }
            }
            // vfio_iommu_aper_expand() + vfio_iommu_resv_refresh() with no domain left, then
            // vfio_update_pgsize_bitmap() over no domain.
            iommu.iovaList = [Type1IOVARange(start: 0, end: .max)]
            iommu.pgsizeBitmap = Self.effectivePgsizeBitmap(.max)
        }
        // update_dirty_scope: one fewer group that cannot report its own dirty pages.
        if iommu.dirtyPageTracking { iommu.dma.updateAll { $0.bitmapFull = true } }
    }

    /// Whether a domain holding `group` can enforce cache coherency: every member of its IOMMU
    /// group (VFIO or not: the whole group is attached) is behind an IOMMU that can. An identity
    /// token that is not a VFIO group (backend-level tests) has no members to ask: true, so the
    /// domain configuration alone decides.
    ///
    /// Kernel: vfio_iommu_type1_attach_group() -> iommu_enforce_cache_coherency()
    static func groupEnforcesCoherency(_ group: AnyObject) -> Bool {
        guard let vfioGroup = group as? VFIOGroup,
              let iommuGroup = vfioGroup.subsystem.iommu.group(id: vfioGroup.iommuGroupID) else { return true }
        return iommuGroup.devices.allSatisfy { $0.enforceCacheCoherency }
    }

    /// `pgsize_bitmap` as `vfio_update_pgsize_bitmap()` leaves it for a domain AND: sizes below
    /// PAGE_SIZE are hidden behind PAGE_SIZE.
    ///
    /// Kernel: vfio_update_pgsize_bitmap()
    static func effectivePgsizeBitmap(_ bitmap: UInt64) -> UInt64 {
        if bitmap & ~Type1IOMMU.pageMask != 0 {
            return (bitmap & Type1IOMMU.pageMask) | Type1IOMMU.pageSize
        }
        return bitmap
    }
}
