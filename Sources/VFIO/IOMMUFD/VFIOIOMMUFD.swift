// SPDX-License-Identifier: Apache-2.0
/// drivers/vfio/iommufd.c (docs/ERRORS.md#device-open) and the iommufd device-bind helpers drivers point their
/// ops at (`vfio_iommufd_physical_bind`, `vfio_iommufd_emulated_bind`, ...).
extension VFIODevice {
    /// Kernel: vfio_iommufd_bind(). dev_set->lock held.
    func iommufdBind(_ ctx: IOMMUFDContext) throws(Errno) {
        devSet!.lock.assertHeld()
        if group?.type == .noIOMMU {
            // Require the same privileges as a legacy no-IOMMU container use, and refuse a context
            // the user already asked to translate. Nothing is bound; the first open goes on.
            guard subsystem.capableSysRawIO() else { throw .EPERM.because("no-IOMMU device needs CAP_SYS_RAWIO") }
            if ctx.hasCompatIOAS { throw .EPERM.because("no-IOMMU device on an iommufd with a compat IOAS") }
            return
        }
        // A driver without bind_iommufd does no DMA at all.
        guard let bind = ops.bindIOMMUFD else { return }
        _ = try bind(self, ctx)
        do throws(Errno) {
            let ioasID = try ctx.compatIOASGetID()
            try ops.attachIOAS!(self, ioasID)
        } catch {
            ops.unbindIOMMUFD!(self)
            throw error
        }
    }

    /// Kernel: vfio_iommufd_unbind(). dev_set->lock held.
    func iommufdUnbind(_ ctx: IOMMUFDContext) {
        if group?.type == .noIOMMU { return }
        ops.unbindIOMMUFD?(self)
    }

    /// The iommufd context a bind holds, or nil.
    public var iommufdContext: IOMMUFDContext? { iommufdBound }
}

/// The iommufd ops a VFIO bus driver plugs into `VFIODeviceOps` (the kernel's exported helpers).
public enum VFIOIOMMUFDOps {
    /// Kernel: vfio_iommufd_physical_bind() → iommufd_device_bind(): EINVAL without cache
    /// coherency, ENODEV without an IOMMU group, then the per-device DMA-ownership claim with the
    /// context as owner (shared by devices bound to the same context; EPERM for another owner or a
    /// kernel driver; EBUSY on a domain conflict). Holds a context reference.
    public static let physicalBind: @Sendable (VFIODevice, IOMMUFDContext) throws(Errno) -> UInt32 = { device, ctx throws(Errno) in
        guard device.busDevice.cacheCoherency else { throw .EINVAL.because("device is not cache coherent") }
        guard let iommuGroup = device.subsystem.iommu.iommuGroupGet(device.busDevice) else { throw .ENODEV.because("device has no IOMMU group") }
        defer { iommuGroup.put() }
        try iommuGroup.deviceClaimDMAOwner(ctx)
        ctx.get()
        device.iommufdBound = ctx
        return ctx.allocObjectID()
    }

    /// Kernel: vfio_iommufd_physical_unbind(): detach, release ownership, drop the context.
    public static let physicalUnbind: @Sendable (VFIODevice) -> Void = { device in
        guard let ctx = device.iommufdBound else { return }
        detach(device, ctx)
        if let iommuGroup = device.subsystem.iommu.iommuGroupGet(device.busDevice) {
            iommuGroup.deviceReleaseDMAOwner()
            iommuGroup.put()
        }
        device.iommufdBound = nil
        ctx.put()
    }

    /// Kernel: vfio_iommufd_physical_attach_ioas(): attach to IOAS `id` (ENOENT if none).
    public static let physicalAttachIOAS: @Sendable (VFIODevice, UInt32) throws(Errno) -> Void = { device, id throws(Errno) in
        guard let ctx = device.iommufdBound else { throw .EINVAL.because("device is not bound to an iommufd") }
        try ctx.lock.withLock { () throws(Errno) in
            guard let ioas = ctx.objects[id] else { throw .ENOENT.because("no IOAS with id {}", id) }
            ioas.attachedDevices += 1
        }
        device.iommufdAttachedIOAS = id
    }

    /// Kernel: vfio_iommufd_emulated_bind(): no ownership claim, just a context reference.
    public static let emulatedBind: @Sendable (VFIODevice, IOMMUFDContext) throws(Errno) -> UInt32 = { device, ctx throws(Errno) in
        ctx.get()
        device.iommufdBound = ctx
        return ctx.allocObjectID()
    }

    /// Kernel: vfio_iommufd_emulated_unbind().
    public static let emulatedUnbind: @Sendable (VFIODevice) -> Void = { device in
        guard let ctx = device.iommufdBound else { return }
        detach(device, ctx, access: true)
        device.iommufdBound = nil
        ctx.put()
    }

    /// Kernel: vfio_iommufd_emulated_attach_ioas(): an access on the IOAS.
    public static let emulatedAttachIOAS: @Sendable (VFIODevice, UInt32) throws(Errno) -> Void = { device, id throws(Errno) in
        guard let ctx = device.iommufdBound else { throw .EINVAL.because("device is not bound to an iommufd") }
        try ctx.lock.withLock { () throws(Errno) in
            guard let ioas = ctx.objects[id] else { throw .ENOENT.because("no IOAS with id {}", id) }
            ioas.accesses += 1
        }
        device.iommufdAttachedIOAS = id
    }

    private static func detach(_ device: VFIODevice, _ ctx: IOMMUFDContext, access: Bool = false) {
        guard let id = device.iommufdAttachedIOAS else { return }
        ctx.lock.withLock {
            if let ioas = ctx.objects[id] {
                if access { ioas.accesses -= 1 } else { ioas.attachedDevices -= 1 }
            }
        }
        device.iommufdAttachedIOAS = nil
    }

    /// Fills `ops` with the physical-device helpers (what vfio-pci does).
    public static func physical(_ ops: inout VFIODeviceOps) {
        ops.bindIOMMUFD = physicalBind
        ops.unbindIOMMUFD = physicalUnbind
        ops.attachIOAS = physicalAttachIOAS
    }

    /// Fills `ops` with the emulated-device helpers (what mdev drivers do).
    public static func emulated(_ ops: inout VFIODeviceOps) {
        ops.bindIOMMUFD = emulatedBind
        ops.unbindIOMMUFD = emulatedUnbind
        ops.attachIOAS = emulatedAttachIOAS
    }
}
