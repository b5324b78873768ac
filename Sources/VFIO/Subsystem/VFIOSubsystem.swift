// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
import Synchronization

/// One instance of the VFIO subsystem: everything the kernel keeps in globals.
///
/// The kernel's `static struct vfio vfio` (group list and lock, minors, device IDA, device sets,
/// IOMMU backends) becomes an object, so tests make as many fully isolated instances as they like.
/// The C ABI and the interposer share one default instance per process.
public final class VFIOSubsystem: @unchecked Sendable {
    /// Build-time configuration.
    public let config: VFIOConfig
    /// Where the trace and the log echo go (from the environment the C ABI read; none by default).
    public let diagnostics: VFIODiagnostics
    /// WARNs, warnings and taint.
    public let log: KernelLog
    /// Named fault points.
    public let faults = FaultInjector()
    /// The host system calls for the model's own resources (BAR memory, eventfds), failable by tests.
    public let host = HostSystem()
    /// Live-object counts.
    public let census = Census()
    /// The decoded system-call trace (started as `diagnostics.trace` says).
    public let tracer: Tracer
    /// The fake IOMMU core and driver core.
    public let iommu: IOMMUCore
    let credentials = Credentials()
    private(set) var groups: GroupRegistry!
    /// A `let` (not created after `self` like the registry): every model system call reaches it,
    /// and a `let` of a live object is read without a retain.
    let fdTable: FDTable

    /// `vfio.device_ida`.
    let deviceIDALock = KernelMutex("vfio.device_ida")
    var deviceIDA = IDA(limit: 1 << 20)
    /// `vfio_device_set_xa`.
    let devSetsLock = KernelMutex("vfio.device_set_xa")
    var deviceSets: [ObjectIdentifier: DeviceSet] = [:]
    /// `vfio.iommu_drivers_lock` and the backend list (newest first).
    let iommuDriversLock = KernelMutex("vfio.iommu_drivers_lock")
    var iommuDrivers: [BackendRegistration] = []

    private let noIOMMUParam: Atomic<Bool>
    private let fileSerial = Atomic<UInt64>(0)
    private let kvmLookup = Locked<@Sendable () -> KVMOps?>({ nil })

    let builtInDrivers = BuiltInDrivers()

    /// The built-in no-IOMMU backend, registered with CONFIG_VFIO_NOIOMMU.
    public let noIOMMUBackend: NoIOMMUBackend?

    /// Kernel: vfio_init() / vfio_group_init() / vfio_container_init(): a subsystem with no
    /// devices. The no-IOMMU backend is registered with CONFIG_VFIO_NOIOMMU; the type1 backend
    /// ("module loaded" by the soft dependency) after it, so it is polled first.
    /// `diagnostics` says where the trace and the log echo go (the model reads no environment).
    public init(config: VFIOConfig = VFIOConfig(), rawIO: RawIOPolicy = .process,
                diagnostics: VFIODiagnostics = .none) {
        self.config = config
        self.diagnostics = diagnostics
        log = KernelLog(echo: diagnostics.echoLog)
        tracer = Tracer(output: diagnostics.trace, timestamps: diagnostics.traceTime)
        if let e = tracer.outputError, let path = diagnostics.trace {
            // Nothing silent: an unusable trace path is said on standard error, whatever the log.
            let text = "SWIFTVFIO_TRACE=\(path): cannot open for appending (\(e.name)): the trace is off"
            log.warning(text)
            if !diagnostics.echoLog { Tracer.reportToStandardError("swiftvfio: " + text) }
        }
        noIOMMUParam = Atomic(config.enableUnsafeNoIOMMUMode)
        iommu = IOMMUCore(log: log, faults: faults, census: census)
        noIOMMUBackend = config.vfioNoIOMMU ? NoIOMMUBackend() : nil
        fdTable = FDTable(faults: faults, census: census)
        groups = GroupRegistry(subsystem: self)
        credentials.rawIOPolicy = rawIO
        if let noIOMMUBackend { _ = try? registerIOMMUDriver(noIOMMUBackend) }
        registerType1Backend()
    }

    // MARK: configuration and privileges

    /// The `vfio.enable_unsafe_noiommu_mode` module parameter (writable at run time: affects later
    /// registrations and CHECK_EXTENSION only, as in the kernel). Always false without
    /// CONFIG_VFIO_NOIOMMU.
    public var enableUnsafeNoIOMMUMode: Bool {
        get { config.vfioNoIOMMU && noIOMMUParam.load(ordering: .relaxed) }
        set { noIOMMUParam.store(newValue, ordering: .relaxed) }
    }

    /// `vfio_noiommu` as registration reads it.
    var noIOMMUModeEnabled: Bool { enableUnsafeNoIOMMUMode }

    /// How `capable(CAP_SYS_RAWIO)` is answered.
    public var rawIOPolicy: RawIOPolicy {
        get { credentials.rawIOPolicy }
        set { credentials.rawIOPolicy = newValue }
    }

    /// `capable(CAP_SYS_RAWIO)` now.
    func capableSysRawIO() -> Bool { credentials.capableSysRawIO() }

    /// What backends may ask.
    var backendContext: BackendContext {
        let creds = credentials
        return BackendContext(capableSysRawIO: { creds.capableSysRawIO() },
                              unsafeNoIOMMUMode: enableUnsafeNoIOMMUMode, dmaEntryLimit: config.dmaEntryLimit)
    }

    /// Sets how the KVM module's symbols are found (`symbol_get`); nil when KVM is not loaded.
    public func setKVMSymbolLookup(_ lookup: @escaping @Sendable () -> KVMOps?) {
        kvmLookup.withLock { $0 = lookup }
    }

    func kvmSymbols() -> KVMOps? { kvmLookup.withLock { $0 }() }

    func nextFileSerial() -> UInt64 { fileSerial.add(1, ordering: .relaxed).newValue }

    // MARK: groups

    /// The registered group whose node is `/dev/vfio/<name>`.
    public func group(named name: String) -> VFIOGroup? { groups.group(named: name) }

    /// The registered group of IOMMU group `id`.
    public func group(iommuGroupID id: Int) -> VFIOGroup? {
        guard let g = iommu.group(id: id) else { return nil }
        return groups.lock.withLock { groups.find(g) }
    }

    /// Every registered group.
    public var allGroups: [VFIOGroup] { groups.all }

    /// Groups holding a minor: registered, or removed but still open.
    public var liveGroupCount: Int { groups.liveCount }
}
