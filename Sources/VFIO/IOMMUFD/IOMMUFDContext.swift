// SPDX-License-Identifier: Apache-2.0
/// An iommufd context (`struct iommufd_ctx`, docs/ERRORS.md#iommufd): what `/dev/iommu` opens.
///
/// Only the pieces the VFIO group layer uses are modelled: IOAS objects, the compat IOAS that
/// SET_CONTAINER creates, `no_iommu_mode`, the VFIO container ioctls emulated on the iommufd, and
/// device binds. A reference to the context is a reference to its file (`iommufd_ctx_get`).
public final class IOMMUFDContext: @unchecked Sendable {
    unowned let subsystem: VFIOSubsystem
    /// The context's file (whose operations are this context); a reference to the context is a
    /// reference to it. Cleared by the release, which breaks the file <-> context cycle.
    fileprivate(set) var file: VFIOFile?
    /// `ictx->lock` / the objects xarray lock.
    let lock = KernelMutex("iommufd_ctx->lock")
    // Guarded by lock.
    final class IOAS {
        let id: UInt32
        var attachedDevices = 0
        var accesses = 0
        init(id: UInt32) { self.id = id }
    }
    var objects: [UInt32: IOAS] = [:]
    var nextID: UInt32 = 1
    var compatIOAS: IOAS?
    var noIOMMUMode = false

    init(subsystem: VFIOSubsystem) {
        self.subsystem = subsystem
        subsystem.census.iommufdCreated()
    }

    /// Whether a compat IOAS exists.
    public var hasCompatIOAS: Bool { lock.withLock { compatIOAS != nil } }
    /// Whether the context is in no-IOMMU mode.
    public var isNoIOMMUMode: Bool { lock.withLock { noIOMMUMode } }

    /// Clears the compat IOAS (`IOMMU_VFIO_IOAS` CLEAR_COMPAT), so the next device open gives ENODEV.
    public func clearCompatIOAS() { lock.withLock { compatIOAS = nil } }

    /// `iommufd_ctx_get()`.
    @discardableResult func get() -> Bool { file?.get() ?? false }
    /// `iommufd_ctx_put()`.
    func put() { file?.put() }

    /// Kernel: iommufd_vfio_compat_set_no_iommu().
    func compatSetNoIOMMU() throws(Errno) {
        try lock.withLock { () throws(Errno) in
            if compatIOAS != nil { throw .EINVAL.because("iommufd already has a compat IOAS: cannot switch to no-IOMMU") }
            noIOMMUMode = true
        }
    }

    /// Kernel: iommufd_vfio_compat_ioas_create(): an existing live compat IOAS is fine.
    func compatIOASCreate() throws(Errno) {
        try subsystem.faults.check(.compatIOASAlloc)
        try lock.withLock { () throws(Errno) in
            if noIOMMUMode { throw .EINVAL.because("iommufd is in no-IOMMU mode: cannot create a compat IOAS") }
            if compatIOAS != nil { return }
            compatIOAS = allocIOASLocked()
        }
    }

    /// Kernel: iommufd_vfio_compat_ioas_get_id(): ENODEV with no compat IOAS.
    func compatIOASGetID() throws(Errno) -> UInt32 {
        try lock.withLock { () throws(Errno) -> UInt32 in
            guard let ioas = compatIOAS else { throw .ENODEV.because("iommufd has no compat IOAS") }
            return ioas.id
        }
    }

    private func allocIOASLocked() -> IOAS {
        let ioas = IOAS(id: nextID)
        nextID += 1
        objects[ioas.id] = ioas
        return ioas
    }

    /// A new object id (device objects of physical binds).
    func allocObjectID() -> UInt32 { lock.withLock { defer { nextID += 1 }; return nextID } }

    /// Kernel: iommufd_fops_ioctl() for the commands the model serves, and the VFIO container
    /// ioctls (vfio_compat.c). Unknown: ENOTTY.
    func ioctl(_ file: VFIOFile, cmd: UInt32, arg: UInt) throws(Errno) -> Int {
        switch cmd {
        case VFIOIoctl.getAPIVersion: return vfioAPIVersion
        case VFIOIoctl.checkExtension: return try compatCheckExtension(arg)
        case VFIOIoctl.setIOMMU: try compatSetIOMMU(arg); return 0
        case VFIOIoctl.iommuVFIOIOAS: try ioctlVFIOIOAS(arg); return 0
        case VFIOIoctl.iommuDestroy: try ioctlDestroy(arg); return 0
        case VFIOIoctl.iommuIOASAlloc: try ioctlIOASAlloc(arg); return 0
        default: throw .ENOTTY.because("request not served by the iommufd model")
        }
    }

    /// Kernel: iommufd_vfio_check_extension().
    private func compatCheckExtension(_ type: UInt) throws(Errno) -> Int {
        switch type {
        case VFIOExtension.type1IOMMU, VFIOExtension.type1v2IOMMU, VFIOExtension.unmapAll: return 1
        case VFIOExtension.noIOMMU: return subsystem.config.vfioNoIOMMU ? 1 : 0
        case VFIOExtension.dmaCCIOMMU:
            // All modelled hardware enforces coherency: 1 once a compat IOAS exists.
            _ = try compatIOASGetID()
            return 1
        default: return 0
        }
    }

    /// Kernel: iommufd_vfio_set_iommu() (docs/ERRORS.md#iommufd). Not one-shot.
    private func compatSetIOMMU(_ type: UInt) throws(Errno) {
        let mode = lock.withLock { noIOMMUMode }
        if type == VFIOExtension.noIOMMU && subsystem.config.vfioNoIOMMU && mode {
            guard subsystem.capableSysRawIO() else { throw .EPERM.because("no-IOMMU needs CAP_SYS_RAWIO") }
            return
        }
        if (type != VFIOExtension.type1IOMMU && type != VFIOExtension.type1v2IOMMU) || mode {
            throw mode ? .EINVAL.because("iommufd in no-IOMMU mode: IOMMU type {} refused", type)
                       : .EINVAL.because("IOMMU type {} not emulated by iommufd (type1 or type1v2 only)", type)
        }
        _ = try compatIOASGetID()
    }

    /// `IOMMU_VFIO_IOAS`: {u32 size; u32 ioas_id; u16 op; u16 reserved}; op GET 0, SET 1, CLEAR 2.
    private func ioctlVFIOIOAS(_ arg: UInt) throws(Errno) {
        struct Cmd: BitwiseCopyable { var size: UInt32; var ioasID: UInt32; var op: UInt16; var reserved: UInt16 }
        let size = try UserMemory.read(UInt32.self, from: arg)
        guard size >= 12 else { throw .EINVAL.because("size {} < minsz {}", size, 12) }
        var cmd = try UserMemory.read(Cmd.self, from: arg)
        guard cmd.reserved == 0 else { throw .EOPNOTSUPP.because("reserved {x} not 0", cmd.reserved) }
        switch cmd.op {
        case 0:
            cmd.ioasID = try compatIOASGetID()
            try UserMemory.write(cmd, to: arg)
        case 1:
            try lock.withLock { () throws(Errno) in
                guard let ioas = objects[cmd.ioasID] else { throw .ENOENT.because("no IOAS with id {}", cmd.ioasID) }
                compatIOAS = ioas
            }
        case 2:
            clearCompatIOAS()
        default:
            throw .EOPNOTSUPP.because("op {} is not GET (0), SET (1) or CLEAR (2)", cmd.op)
        }
    }

    /// `IOMMU_DESTROY`: {u32 size; u32 id}. EBUSY while devices are attached; destroying the compat
    /// IOAS clears it.
    private func ioctlDestroy(_ arg: UInt) throws(Errno) {
        struct Cmd: BitwiseCopyable { var size: UInt32; var id: UInt32 }
        let size = try UserMemory.read(UInt32.self, from: arg)
        guard size >= 8 else { throw .EINVAL.because("size {} < minsz {}", size, 8) }
        let cmd = try UserMemory.read(Cmd.self, from: arg)
        try lock.withLock { () throws(Errno) in
            guard let ioas = objects[cmd.id] else { throw .ENOENT.because("no object with id {}", cmd.id) }
            guard ioas.attachedDevices == 0 && ioas.accesses == 0 else {
                throw .EBUSY.because("IOAS {} has {} attached device(s) and {} access(es)", cmd.id, ioas.attachedDevices, ioas.accesses)
            }
            objects[cmd.id] = nil
            if compatIOAS === ioas { compatIOAS = nil }
        }
    }

    /// `IOMMU_IOAS_ALLOC`: {u32 size; u32 flags; u32 out_ioas_id}.
    private func ioctlIOASAlloc(_ arg: UInt) throws(Errno) {
        struct Cmd: BitwiseCopyable { var size: UInt32; var flags: UInt32; var outID: UInt32 }
        let size = try UserMemory.read(UInt32.self, from: arg)
        guard size >= 12 else { throw .EINVAL.because("size {} < minsz {}", size, 12) }
        var cmd = try UserMemory.read(Cmd.self, from: arg)
        guard cmd.flags == 0 else { throw .EOPNOTSUPP.because("flags {x} not 0", cmd.flags) }
        cmd.outID = lock.withLock { allocIOASLocked().id }
        try UserMemory.write(cmd, to: arg)
    }

    /// Kernel: iommufd_fops_release(): the context goes with its file's last reference.
    func release(_ file: VFIOFile) {
        lock.withLock { objects.removeAll(); compatIOAS = nil }
        self.file = nil
        subsystem.census.iommufdFreed()
    }
}

extension IOMMUFDContext: FileOperations {}

extension VFIOSubsystem {
    /// Kernel: iommufd_fops_open(): `/dev/iommu` opens a new context (ENOENT without
    /// CONFIG_IOMMUFD: no such node).
    func iommufdFileOpen(_ path: String, flags: Int32) throws(Errno) -> VFIOFile {
        guard config.iommufd else { throw .ENOENT.because("no /dev/iommu: config.iommufd is off") }
        try faults.check(.fileAlloc)
        try faults.check(.iommufdAlloc)
        let ctx = IOMMUFDContext(subsystem: self)
        let file = VFIOFile(subsystem: self, kind: .iommufd, flags: flags, name: path, operations: ctx)
        ctx.file = file
        return file
    }
}
