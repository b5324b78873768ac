// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSwiftVFIOTypes
import VFIO

// Device plug-ins (SWIFTVFIO_DRIVERS=/path/libdev.so[:...]): C VFIO bus drivers in shared
// libraries, for devices an unmodified client drives through the interposer.
//
// A plug-in defines `int swiftvfio_plugin_init(void)`, which registers its drivers with
// swiftvfio_driver_register() (a name, a struct vfio_device_ops and a probe) and returns 0. The
// plug-ins are loaded once per process, before the first model is made (so before the topology
// binds devices). When a model is made, every topology device whose `driver` names a registered
// driver is served by it, as the driver core binds a driver to a matching device: the loader
// first bound the name as an ordinary kernel driver; here it is unbound, the driver bound as a
// VFIO driver (managing DMA), its probe asked for the device's driver data, and a VFIO device
// with the driver's ops allocated and registered in the device's IOMMU group.
//
// Failures: a plug-in that cannot be loaded, lacks swiftvfio_plugin_init, whose init fails,
// registers nothing, or has a registration refused, is an error naming the file and the reason;
// every driver registered by this load is then unregistered and every plug-in closed, and no
// model is made from the topology (the process's model is empty, as with a topology that does
// not load). A probe that refuses a device (returns -errno) leaves that device unbound, as a
// failed probe does in the kernel, with a line in the model's log.

/// A registered driver.
private struct PluginDriver {
    let name: String
    let ops: vfio_device_ops
    let probe: @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CInt
    /// The plug-in that registered it (nil: the program itself).
    let file: String?
}

enum Plugins {
    private enum LoadState { case notLoaded, loaded, failed(CallError) }

    /// Guards the driver table and the bindings.
    private static let lock = KernelMutex("swiftvfio.plugins")
    /// Held for a whole load (a plug-in's init runs under it and registers under `lock`).
    private static let loadLock = KernelMutex("swiftvfio.plugins.load")
    /// The thread running a plug-in's init: only its registrations count for that plug-in.
    nonisolated(unsafe) private static var loadingThread: pthread_t?
    nonisolated(unsafe) private static var drivers: [String: PluginDriver] = [:]
    nonisolated(unsafe) private static var state = LoadState.notLoaded
    /// The plug-in whose swiftvfio_plugin_init() runs now, and what its registrations did.
    nonisolated(unsafe) private static var loadingFile: String?
    nonisolated(unsafe) private static var loadingRegistered = 0
    nonisolated(unsafe) private static var loadingRefused: String?
    /// The plug-in devices of each model (unbound before the model is replaced).
    nonisolated(unsafe) private static var bound: [ObjectIdentifier: [VFIODevice]] = [:]

    /// Names a plug-in may not take: the built-in drivers' and those the topology rules give a
    /// meaning (docs/TOPOLOGY.md#drivers: `vfio*` is the built-in vfio-pci, pci-stub and pcieport manage DMA).
    static func reservedProblem(_ name: String) -> String? {
        if name.isEmpty { return "the name is empty" }
        if name.utf8.count > 63 { return "the name is longer than 63 bytes" }
        if name.hasPrefix("vfio") { return "names beginning with \"vfio\" are the built-in vfio-pci's" }
        if ["pci-stub", "pcieport", "mdev-model"].contains(name) { return "\"\(name)\" is a built-in driver's name" }
        if name.contains(where: { $0 == ":" || $0 == "/" || $0 == " " }) { return "the name contains ':', '/' or a space" }
        return nil
    }

    /// Registers a driver (swiftvfio_driver_register()).
    static func register(name: String, ops: vfio_device_ops,
                         probe: @escaping @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CInt) throws(CallError) {
        try lock.withLock { () throws(CallError) in
            do throws(CallError) {
                if let problem = reservedProblem(name) { throw CallError(.EINVAL, "driver \"\(name)\": \(problem)") }
                if let other = drivers[name] {
                    throw CallError(.EEXIST, "driver \"\(name)\" is already registered" + (other.file.map { " by \($0)" } ?? ""))
                }
                let file = isLoadingThread ? loadingFile : nil
                drivers[name] = PluginDriver(name: name, ops: ops, probe: probe, file: file)
                if file != nil { loadingRegistered += 1 }
            } catch {
                if isLoadingThread, loadingFile != nil, loadingRefused == nil { loadingRefused = "\(error.errno.name): \(error.message)" }
                throw error
            }
        }
    }

    /// Loads SWIFTVFIO_DRIVERS once per process; nil, or why the plug-ins did not load (the same
    /// error every later call).
    static func loadOnce() -> CallError? {
        loadLock.lock()
        defer { loadLock.unlock() }
        switch state {
        case .loaded: return nil
        case .failed(let e): return e
        case .notLoaded: break
        }
        var handles: [UnsafeMutableRawPointer] = []
        var failure: CallError?
        for file in ProcessEnvironment.driverPlugins {
            if let e = loadOne(file, &handles) { failure = e; break }
        }
        if let failure {
            // Nothing half-loaded: every plug-in driver goes, every plug-in closes.
            lock.withLock { drivers = drivers.filter { $0.value.file == nil } }
            for h in handles.reversed() { dlclose(h) }
            state = .failed(failure)
            return failure
        }
        state = .loaded
        return nil
    }

    private static var isLoadingThread: Bool {
        guard let t = loadingThread else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }

    /// Loads one plug-in (`loadLock` held).
    private static func loadOne(_ file: String, _ handles: inout [UnsafeMutableRawPointer]) -> CallError? {
        func fail(_ e: Errno, _ why: String) -> CallError { CallError(e, "SWIFTVFIO_DRIVERS: \(file): \(why)") }
        guard file.hasPrefix("/") else { return fail(.EINVAL, "not an absolute path") }
        guard access(file, R_OK) == 0 else { let e = errno; return fail(Errno(rawValue: e), String(cString: strerror(e))) }
        guard let h = dlopen(file, RTLD_NOW | RTLD_LOCAL) else {
            return fail(.EINVAL, "cannot load: " + (dlerror().map { String(cString: $0) } ?? "dlopen failed"))
        }
        handles.append(h)
        guard let sym = dlsym(h, "swiftvfio_plugin_init") else {
            return fail(.EINVAL, "no swiftvfio_plugin_init() (a plug-in defines int swiftvfio_plugin_init(void), which registers its drivers)")
        }
        typealias Init = @convention(c) () -> CInt
        let initFn = unsafeBitCast(sym, to: Init.self)
        lock.withLock {
            loadingFile = file
            loadingThread = pthread_self()
            loadingRegistered = 0
            loadingRefused = nil
        }
        let r = initFn()   // calls swiftvfio_driver_register()
        lock.withLock {
            loadingFile = nil
            loadingThread = nil
        }
        if let refused = loadingRefused { return fail(.EINVAL, "registering a driver failed: \(refused)") }
        if r < 0 {
            let e = r < -4095 ? Errno.EINVAL : Errno(rawValue: -r)
            return fail(e, "swiftvfio_plugin_init() failed: \(e.name)")
        }
        if r != 0 { return fail(.EINVAL, "swiftvfio_plugin_init() returned \(r) (0 or -errno expected)") }
        if loadingRegistered == 0 { return fail(.EINVAL, "swiftvfio_plugin_init() registered no driver") }
        return nil
    }

    /// Binds the registered drivers to the devices of `sub` the topology gave their names. Runs
    /// with `sub` current (the drivers' ops call back into the library).
    static func bind(_ sub: VFIOSubsystem) {
        let table = lock.withLock { drivers }
        guard !table.isEmpty else { return }
        var made: [VFIODevice] = []
        for bus in sub.iommu.devices.sorted(by: { $0.name < $1.name }) {
            guard let name = sub.iommu.driver(of: bus), let driver = table[name] else { continue }
            if let d = bindOne(driver, bus, sub) { made.append(d) }
        }
        lock.withLock { bound[ObjectIdentifier(sub), default: []] += made }
    }

    private static func bindOne(_ driver: PluginDriver, _ bus: BusDevice, _ sub: VFIOSubsystem) -> VFIODevice? {
        // The loader bound the name as a kernel driver owning DMA; the plug-in is a VFIO driver.
        sub.iommu.unbindDriver(from: bus)
        do throws(Errno) {
            try sub.iommu.bindDriver(driver.name, to: bus, managesDMA: true)
        } catch {
            sub.log.warning("\(driver.name): cannot bind to \(bus.name): \(error.name)")
            return nil
        }
        var drvdata: UnsafeMutableRawPointer?
        let r = bus.name.withCString { driver.probe($0, &drvdata) }
        guard r == 0 else {
            sub.iommu.unbindDriver(from: bus)
            let e = r < 0 && r >= -4095 ? Errno(rawValue: -r).name : "\(r)"
            if r == -Errno.ENODEV.rawValue || r == -Errno.ENXIO.rawValue {
                sub.log.info("\(driver.name): probe of \(bus.name) declined: \(e)")
            } else {
                sub.log.warning("\(driver.name) \(bus.name): probe with driver \(driver.name) failed with error \(e)")
            }
            return nil
        }
        let box = CDriverDevice(ops: driver.ops, drvdata: drvdata)
        DefaultSubsystem.shared.cDevices.add(1, ordering: .relaxed)
        let device: VFIODevice
        do throws(Errno) {
            device = try sub.allocDevice(bus, ops: box.swiftOps(name: driver.name))
        } catch {
            if box.token != 0 { DefaultSubsystem.shared.handles.retire(token: box.token) }
            DefaultSubsystem.shared.cDevices.subtract(1, ordering: .relaxed)
            sub.iommu.unbindDriver(from: bus)
            sub.log.warning("\(driver.name) \(bus.name): allocating the VFIO device failed: \(error.name)")
            return nil
        }
        do throws(Errno) {
            try sub.registerGroupDevice(device)
        } catch {
            // As vfio-pci's probe fails (no cache coherency, no IOMMU group with no-IOMMU off).
            device.put()
            sub.iommu.unbindDriver(from: bus)
            sub.log.warning("\(driver.name) \(bus.name): registering the VFIO device failed: \(error.name)")
            return nil
        }
        return device
    }

    /// Removes the plug-in devices of `sub` (the model is being replaced and has no open files):
    /// unregister, the driver's reference put (its release op runs), driver unbound.
    static func unbindAll(_ sub: VFIOSubsystem) {
        let devices = lock.withLock { bound.removeValue(forKey: ObjectIdentifier(sub)) ?? [] }
        for d in devices {
            let bus = d.busDevice
            sub.unregisterGroupDevice(d)
            d.put()
            sub.iommu.unbindDriver(from: bus)
        }
    }

    /// How many plug-in devices `sub` holds.
    static func deviceCount(_ sub: VFIOSubsystem) -> Int { lock.withLock { bound[ObjectIdentifier(sub)]?.count ?? 0 } }

    /// The registered drivers' names (for messages and tests).
    static var names: [String] { lock.withLock { drivers.keys.sorted() } }
}

/// Registers a C VFIO bus driver for topology devices: every device of a model made after this
/// call whose topology `driver` is `name` is bound to it. `probe(device_name, &drvdata)` is
/// called once per such device, before the device exists: it returns 0 and sets `*drvdata` to
/// the driver's state for the device (read back with swiftvfio_device_drvdata(); the device's
/// `ops->release` frees it), or -errno to refuse the device, which then stays unbound (-ENODEV
/// and -ENXIO quietly, other errors with a warning in the model's log). The library then
/// allocates a VFIO device with a copy of `*ops` (`ops->init` runs) and registers it in the
/// device's IOMMU group (vfio_register_group_dev()), so an unmodified client reaches it through
/// /dev/vfio/<group>. Device plug-ins (SWIFTVFIO_DRIVERS=/path/libdev.so[:...]) call this from
/// their `int swiftvfio_plugin_init(void)`, which the library calls once after loading the
/// plug-in, before the first model is made. `name` may not begin with "vfio" (the built-in
/// vfio-pci) nor be "pci-stub", "pcieport" or "mdev-model", and has at most 63 bytes without ':',
/// '/' or spaces. Returns 0, or -errno: -EFAULT (`name` or `ops` NULL or unreadable), -EINVAL (no
/// `probe`, a reserved or malformed name), -EEXIST (`name` already registered); the message in
/// swiftvfio_last_error() says which. Drivers stay registered for the life of the process.
@c public func swiftvfio_driver_register(
    _ name: UnsafePointer<CChar>?, _ ops: UnsafePointer<vfio_device_ops>?,
    _ probe: (@convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CInt)?
) -> CInt {
    do throws(CallError) {
        let n = try cString(name, "name", limit: 256)
        guard let ops else { throw CallError(.EFAULT, "ops is NULL") }
        let table = try model("ops is not readable") { () throws(Errno) in
            try UserMemory.read(vfio_device_ops.self, from: UInt(bitPattern: ops))
        }
        guard let probe else { throw CallError(.EINVAL, "driver \"\(n)\": probe is NULL") }
        try Plugins.register(name: n, ops: table, probe: probe)
        return 0
    } catch {
        LastError.set("swiftvfio_driver_register: \(error.errno.name): \(error.message)")
        return -error.errno.rawValue
    }
}
