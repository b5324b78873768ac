// A decoded, strace-like trace of the model's system calls: one line per call into the model's
// syscall surface (open, close, dup, ioctl, read/pread, write/pwrite, mmap) and one per model file
// release, e.g.
//
//   open("/dev/vfio/26", O_RDWR|O_CLOEXEC) = 5
//   ioctl(5, VFIO_GROUP_GET_STATUS, {argsz=8}) = 0 => {flags=VIABLE}
//   ioctl(5, VFIO_GROUP_SET_CONTAINER, &4) = 0
//   ioctl(4, VFIO_IOMMU_MAP_DMA, {iova=0x0, size=0x4000000, flags=R|W}) = 0
//   ioctl(5, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0") = 7
//   pread64(7, 0x7ffd5c3e1a40, 2, 0x70000000004 /* CONFIG+0x4 */) = 2 => 0x0002
//   ioctl(7, VFIO_DEVICE_SET_IRQS, {argsz=24, flags=DATA_EVENTFD|ACTION_TRIGGER, index=INTX, start=0, count=1, fds=[12]}) = 0
//   ioctl(5, VFIO_GROUP_SET_CONTAINER, &9) = -1 EINVAL
//   close(7) = 0
//   release([vfio-device] 0000:06:0d.0)
//
// Arguments are read through UserMemory: an unreadable pointer prints as its address. When the
// trace is off the cost is one relaxed atomic load per call.

import CSwiftVFIOShim
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where a subsystem's trace lines go: nowhere (the default), a file descriptor, or a handler.
///
/// A subsystem's tracer starts as its `VFIODiagnostics.trace` says (the default subsystem's from
/// `SWIFTVFIO_TRACE`, read by the C ABI): a path to append to, or `-` for standard error. Tests
/// set a handler.
public final class Tracer: @unchecked Sendable {
    private enum Sink {
        case none
        case fd(Int32, owned: Bool)
        case handler(@Sendable (String) -> Void)
    }

    private let on = Atomic<Bool>(false)
    private let sink = Locked<Sink>(.none, name: "tracer.sink")

    /// A tracer that is off.
    public init() {}

    deinit {
        if case .fd(let fd, true) = sink.withLock({ $0 }) { _ = svfio_close_fd(fd) }
    }

    /// A tracer writing to `output` (`VFIODiagnostics.trace`): nil or empty, off; `-`, standard
    /// error; anything else, a file appended to (created 0644). A file that cannot be opened leaves
    /// the tracer off.
    public convenience init(output: String?) {
        self.init()
        if let output, !output.isEmpty { try? setOutput(path: output) }
    }

    /// Whether lines are written (one relaxed load: the hooks' only cost when off).
    @inline(__always) public var isEnabled: Bool { on.load(ordering: .relaxed) }

    /// Sends lines to `path` (appending), or to standard error for `-`.
    public func setOutput(path: String) throws(Errno) {
        let new: Sink
        if path == "-" {
            new = .fd(2, owned: false)
        } else {
            let fd = svfio_trace_open(path)
            if fd < 0 { throw Errno(rawValue: -fd) }
            new = .fd(fd, owned: true)
        }
        replace(with: new)
        on.store(true, ordering: .relaxed)
    }

    /// Sends each line (without its newline) to `handler`.
    public func setHandler(_ handler: @escaping @Sendable (String) -> Void) {
        replace(with: .handler(handler))
        on.store(true, ordering: .relaxed)
    }

    /// Turns the trace off (closing a file it opened).
    public func disable() {
        on.store(false, ordering: .relaxed)
        replace(with: .none)
    }

    private func replace(with new: Sink) {
        let old = sink.withLock { s -> Sink in
            let o = s
            s = new
            return o
        }
        if case .fd(let fd, true) = old { _ = svfio_close_fd(fd) }
    }

    /// Writes one line (a newline is added); the whole line goes out in one write.
    public func emit(_ line: String) {
        sink.withLock { s in
            switch s {
            case .none: break
            case .handler(let h): h(line)
            case .fd(let fd, _):
                var text = line
                text.append("\n")
                text.withUTF8 { b in _ = svfio_trace_write(fd, b.baseAddress, b.count) }
            }
        }
    }

    /// Runs `body` and writes `describe(result)` when tracing (the closure runs only then).
    @inline(__always)
    func call<R>(_ body: () throws(Errno) -> R, _ describe: (Result<R, Errno>) -> String) throws(Errno) -> R {
        guard isEnabled else { return try body() }
        let r = Result { () throws(Errno) -> R in try body() }
        emit(describe(r))
        return try r.get()
    }

    /// Runs `body` with `before()` captured first (arguments read before the call changes them) and
    /// writes `describe(captured, result)` when tracing.
    @inline(__always)
    func call<R>(before: () -> String, _ body: () throws(Errno) -> R,
                 _ describe: (String, Result<R, Errno>) -> String) throws(Errno) -> R {
        guard isEnabled else { return try body() }
        let pre = before()
        let r = Result { () throws(Errno) -> R in try body() }
        emit(describe(pre, r))
        return try r.get()
    }
}

// MARK: - Decoding

/// The text pieces of trace lines.
enum TraceFormat {
    /// " = 5", " = -1 EINVAL".
    static func result<R>(_ r: Result<R, Errno>, _ show: (R) -> String = { "\($0)" }) -> String {
        switch r {
        case .success(let v): return " = " + show(v)
        case .failure(let e): return " = -1 " + errnoName(e)
        }
    }

    /// The Linux errno name ("EINVAL"), or "E<number>" for one without a name here.
    static func errnoName(_ e: Errno) -> String {
        switch e.rawValue {
        case 3: return "ESRCH"
        case 10: return "ECHILD"
        case 20: return "ENOTDIR"
        case 21: return "EISDIR"
        case 32: return "EPIPE"
        case 34: return "ERANGE"
        case 36: return "ENAMETOOLONG"
        case 38: return "ENOSYS"
        case 75: return "EOVERFLOW"
        default:
            let n = e.name
            return n.hasPrefix("errno ") ? "E\(e.rawValue)" : n
        }
    }

    static func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 || u.value == 0x7f { out += "\\x" + String(u.value, radix: 16) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// Flag words: known names joined by "|", unknown bits as hex, "0" for none.
    static func flags(_ value: UInt64, _ names: [(UInt64, String)]) -> String {
        var rest = value, parts: [String] = []
        for (bit, name) in names where value & bit == bit && bit != 0 {
            parts.append(name)
            rest &= ~bit
        }
        if rest != 0 { parts.append(hex(rest)) }
        return parts.isEmpty ? "0" : parts.joined(separator: "|")
    }

    static func openFlags(_ f: Int32) -> String {
        var parts: [String]
        switch f & 3 {
        case 0: parts = ["O_RDONLY"]
        case 1: parts = ["O_WRONLY"]
        case 2: parts = ["O_RDWR"]
        default: parts = ["O_ACCMODE"]
        }
        let rest = UInt64(UInt32(bitPattern: f & ~3))
        let names: [(UInt64, String)] = [(0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
                                         (0o4000, "O_NONBLOCK"), (0o200000, "O_DIRECTORY"), (0o2000000, "O_CLOEXEC")]
        if rest != 0 { parts.append(flags(rest, names)) }
        return parts.joined(separator: "|")
    }

    static func prot(_ p: Int32) -> String {
        p == 0 ? "PROT_NONE" : flags(UInt64(UInt32(bitPattern: p)), [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")])
    }

    /// A device-file offset with the vfio-pci region it selects: "0x70000000004 /* CONFIG+0x4 */".
    static func deviceOffset(_ offset: Int64, pciLayout: Bool) -> String {
        guard offset >= 0 else { return "\(offset)" }
        let index = Int(offset >> 40), within = offset & ((1 << 40) - 1)
        let names = ["BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA"]
        let region = pciLayout && index < names.count ? names[index] : "region \(index)"
        return hex(offset) + " /* \(region)+\(hex(within)) */"
    }

    /// The little-endian value of a 1-, 2-, 4- or 8-byte buffer in user memory, or nil.
    static func smallValue(at address: UInt, count: Int) -> String? {
        switch count {
        case 1: return (try? UserMemory.read(UInt8.self, from: address)).map { hexPadded(UInt64($0), 2) }
        case 2: return (try? UserMemory.read(UInt16.self, from: address)).map { hexPadded(UInt64($0), 4) }
        case 4: return (try? UserMemory.read(UInt32.self, from: address)).map { hexPadded(UInt64($0), 8) }
        case 8: return (try? UserMemory.read(UInt64.self, from: address)).map { hexPadded($0, 16) }
        default: return nil
        }
    }

    static func hexPadded(_ v: UInt64, _ width: Int) -> String {
        let d = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, width - d.count)) + d
    }

    static func pointer(_ a: UInt) -> String { a == 0 ? "NULL" : hex(a) }
}

/// Decodes VFIO and iommufd ioctls by the kind of file they are issued on (numbers collide across
/// kinds: 0x3b70 is IOMMU_GET_INFO on a container, GET_PCI_HOT_RESET_INFO on a device).
enum IoctlDecoder {
    /// What the trace knows of the file behind an fd.
    struct Target {
        var kind: FileKind?
        /// vfio-pci's region layout applies (the built-in drivers).
        var pciLayout = false
    }

    static func name(_ kind: FileKind?, _ cmd: UInt32) -> String {
        switch cmd {
        case 0x3B64: return "VFIO_GET_API_VERSION"
        case 0x3B65: return "VFIO_CHECK_EXTENSION"
        case 0x3B66: return "VFIO_SET_IOMMU"
        case 0x3B67: return "VFIO_GROUP_GET_STATUS"
        case 0x3B68: return "VFIO_GROUP_SET_CONTAINER"
        case 0x3B69: return "VFIO_GROUP_UNSET_CONTAINER"
        case 0x3B6A: return "VFIO_GROUP_GET_DEVICE_FD"
        case 0x3B6B: return "VFIO_DEVICE_GET_INFO"
        case 0x3B6C: return "VFIO_DEVICE_GET_REGION_INFO"
        case 0x3B6D: return "VFIO_DEVICE_GET_IRQ_INFO"
        case 0x3B6E: return "VFIO_DEVICE_SET_IRQS"
        case 0x3B6F: return "VFIO_DEVICE_RESET"
        case 0x3B70: return kind == .device ? "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO" : "VFIO_IOMMU_GET_INFO"
        case 0x3B71: return kind == .device ? "VFIO_DEVICE_PCI_HOT_RESET" : "VFIO_IOMMU_MAP_DMA"
        case 0x3B72: return kind == .device ? "VFIO_DEVICE_QUERY_GFX_PLANE" : "VFIO_IOMMU_UNMAP_DMA"
        case 0x3B73: return kind == .device ? "VFIO_DEVICE_GET_GFX_DMABUF" : "VFIO_IOMMU_ENABLE"
        case 0x3B74: return kind == .device ? "VFIO_DEVICE_IOEVENTFD" : "VFIO_IOMMU_DISABLE"
        case 0x3B75: return kind == .device ? "VFIO_DEVICE_FEATURE" : "VFIO_IOMMU_DIRTY_PAGES"
        case 0x3B80: return "IOMMU_DESTROY"
        case 0x3B81: return "IOMMU_IOAS_ALLOC"
        case 0x3B82: return "IOMMU_IOAS_ALLOW_IOVAS"
        case 0x3B83: return "IOMMU_IOAS_COPY"
        case 0x3B84: return "IOMMU_IOAS_IOVA_RANGES"
        case 0x3B85: return "IOMMU_IOAS_MAP"
        case 0x3B86: return "IOMMU_IOAS_UNMAP"
        case 0x3B87: return "IOMMU_OPTION"
        case 0x3B88: return "IOMMU_VFIO_IOAS"
        default: return TraceFormat.hex(cmd)
        }
    }

    static let extensionNames: [UInt: String] = [
        1: "VFIO_TYPE1_IOMMU", 2: "VFIO_SPAPR_TCE_IOMMU", 3: "VFIO_TYPE1v2_IOMMU", 4: "VFIO_DMA_CC_IOMMU",
        5: "VFIO_EEH", 6: "VFIO_TYPE1_NESTING_IOMMU", 7: "VFIO_SPAPR_TCE_v2_IOMMU", 8: "VFIO_NOIOMMU_IOMMU",
        9: "VFIO_UNMAP_ALL", 10: "VFIO_UPDATE_VADDR",
    ]
    static let irqIndexNames = ["INTX", "MSI", "MSIX", "ERR", "REQ"]
    static let regionNames = ["BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA"]

    static func irqIndex(_ i: UInt32) -> String { Int(i) < irqIndexNames.count ? irqIndexNames[Int(i)] : "\(i)" }
    static func regionIndex(_ i: UInt32, _ t: Target) -> String {
        t.pciLayout && Int(i) < regionNames.count ? "\(i) /* \(regionNames[Int(i)]) */" : "\(i)"
    }

    /// The argument as the call receives it: ", {...}", ", &4", ", \"name\"", ", VFIO_TYPE1v2_IOMMU",
    /// or "" for an ioctl without one.
    static func arguments(_ t: Target, _ cmd: UInt32, _ arg: UInt) -> String {
        let p = TraceFormat.pointer(arg)
        func read<T: BitwiseCopyable>(_: T.Type) -> T? { try? UserMemory.read(T.self, from: arg) }
        switch (t.kind, cmd) {
        case (_, 0x3B64), (_, 0x3B69), (.device, 0x3B6F):
            return ""
        case (_, 0x3B65), (_, 0x3B66):
            return ", " + (extensionNames[arg] ?? "\(arg)")
        case (.group, 0x3B67):
            guard let s = read(VFIOGroupStatus.self) else { return ", " + p }
            return ", {argsz=\(s.argsz)}"
        case (.group, 0x3B68):
            guard let fd = read(Int32.self) else { return ", " + p }
            return ", &\(fd)"
        case (.group, 0x3B6A):
            guard let name = try? UserMemory.string(at: arg, limit: 4096) else { return ", " + p }
            return ", " + TraceFormat.quoted(name)
        case (.device, 0x3B6B):
            guard let argsz = read(UInt32.self) else { return ", " + p }
            return ", {argsz=\(argsz)}"
        case (.device, 0x3B6C):
            guard let r = read(PCIDeviceModel.RegionInfo.self) else { return ", " + p }
            return ", {argsz=\(r.argsz), index=\(regionIndex(r.index, t))}"
        case (.device, 0x3B6D):
            guard let r = read(PCIDeviceModel.IRQInfo.self) else { return ", " + p }
            return ", {argsz=\(r.argsz), index=\(irqIndex(r.index))}"
        case (.device, 0x3B6E):
            guard let h = read(PCIDeviceModel.IRQSet.self) else { return ", " + p }
            var text = ", {argsz=\(h.argsz), flags=\(irqSetFlags(h.flags)), index=\(irqIndex(h.index)), start=\(h.start), count=\(h.count)"
            let shown = Int(min(h.count, 16))
            if h.flags & 4 != 0 && h.count > 0 {
                let fds = (0..<shown).map { i -> String in
                    (try? UserMemory.read(Int32.self, from: arg + 20 + UInt(4 * i))).map { "\($0)" } ?? "?"
                }
                text += ", fds=[" + fds.joined(separator: ", ") + (h.count > 16 ? ", ..." : "") + "]"
            } else if h.flags & 2 != 0 && h.count > 0 {
                let bools = (0..<shown).map { i -> String in
                    (try? UserMemory.read(UInt8.self, from: arg + 20 + UInt(i))).map { "\($0)" } ?? "?"
                }
                text += ", bools=[" + bools.joined(separator: ", ") + (h.count > 16 ? ", ..." : "") + "]"
            }
            return text + "}"
        case (.device, 0x3B75):
            guard let h = read((UInt32, UInt32).self) else { return ", " + p }
            return ", {argsz=\(h.0), flags=\(TraceFormat.flags(UInt64(h.1 & ~0xffff), [(1 << 16, "GET"), (1 << 17, "SET"), (1 << 18, "PROBE")]))|\(h.1 & 0xffff)}"
        case (.container, 0x3B70), (.iommufd, 0x3B70):
            guard let argsz = read(UInt32.self) else { return ", " + p }
            return ", {argsz=\(argsz)}"
        case (.container, 0x3B71), (.iommufd, 0x3B71):
            guard let m = read(Type1DMAMapArg.self) else { return ", " + p }
            return ", {iova=\(TraceFormat.hex(m.iova)), size=\(TraceFormat.hex(m.size)), flags=\(dmaMapFlags(m.flags))}"
        case (.container, 0x3B72), (.iommufd, 0x3B72):
            guard let u = read(Type1DMAUnmapArg.self) else { return ", " + p }
            return ", {iova=\(TraceFormat.hex(u.iova)), size=\(TraceFormat.hex(u.size)), flags=\(TraceFormat.flags(UInt64(u.flags), [(1, "GET_DIRTY_BITMAP"), (2, "ALL"), (4, "VADDR")]))}"
        case (.container, 0x3B75):
            guard let h = read((UInt32, UInt32).self) else { return ", " + p }
            return ", {argsz=\(h.0), flags=\(TraceFormat.flags(UInt64(h.1), [(1, "START"), (2, "STOP"), (4, "GET_BITMAP")]))}"
        case (.iommufd, 0x3B80):
            guard let d = read((UInt32, UInt32).self) else { return ", " + p }
            return ", {size=\(d.0), id=\(d.1)}"
        case (.iommufd, 0x3B81):
            guard let a = read((UInt32, UInt32, UInt32).self) else { return ", " + p }
            return ", {size=\(a.0), flags=\(a.1)}"
        case (.iommufd, 0x3B88):
            guard let v = read((UInt32, UInt32, UInt16, UInt16).self) else { return ", " + p }
            let ops = ["GET", "SET", "CLEAR"]
            return ", {size=\(v.0), ioas_id=\(v.1), op=\(Int(v.2) < ops.count ? ops[Int(v.2)] : "\(v.2)")}"
        default:
            return arg == 0 ? ", 0" : ", " + TraceFormat.hex(arg)
        }
    }

    /// What a successful call wrote back: " => {...}", or "".
    static func output(_ t: Target, _ cmd: UInt32, _ arg: UInt) -> String {
        func read<T: BitwiseCopyable>(_: T.Type) -> T? { try? UserMemory.read(T.self, from: arg) }
        switch (t.kind, cmd) {
        case (.group, 0x3B67):
            guard let s = read(VFIOGroupStatus.self) else { return "" }
            return " => {flags=\(TraceFormat.flags(UInt64(s.flags), [(1, "VIABLE"), (2, "CONTAINER_SET")]))}"
        case (.device, 0x3B6B):
            guard let i = read((UInt32, UInt32, UInt32, UInt32).self) else { return "" }
            return " => {flags=\(TraceFormat.flags(UInt64(i.1), [(1, "RESET"), (2, "PCI"), (4, "PLATFORM"), (8, "AMBA"), (16, "CCW"), (32, "AP"), (64, "FSL_MC"), (128, "CAPS")])), num_regions=\(i.2), num_irqs=\(i.3)}"
        case (.device, 0x3B6C):
            guard let r = read(PCIDeviceModel.RegionInfo.self) else { return "" }
            return " => {argsz=\(r.argsz), flags=\(TraceFormat.flags(UInt64(r.flags), [(1, "READ"), (2, "WRITE"), (4, "MMAP"), (8, "CAPS")])), size=\(TraceFormat.hex(r.size)), offset=\(TraceFormat.hex(r.offset)), cap_offset=\(r.capOffset)}"
        case (.device, 0x3B6D):
            guard let r = read(PCIDeviceModel.IRQInfo.self) else { return "" }
            return " => {flags=\(TraceFormat.flags(UInt64(r.flags), [(1, "EVENTFD"), (2, "MASKABLE"), (4, "AUTOMASKED"), (8, "NORESIZE")])), count=\(r.count)}"
        case (.container, 0x3B70), (.iommufd, 0x3B70):
            guard let i = read(Type1InfoArg.self) else { return "" }
            return " => {argsz=\(i.argsz), flags=\(TraceFormat.flags(UInt64(i.flags), [(1, "PGSIZES"), (2, "CAPS")])), iova_pgsizes=\(TraceFormat.hex(i.iovaPgsizes)), cap_offset=\(i.capOffset)}"
        case (.container, 0x3B72), (.iommufd, 0x3B72):
            guard let u = read(Type1DMAUnmapArg.self) else { return "" }
            return " => {size=\(TraceFormat.hex(u.size))}"
        case (.iommufd, 0x3B81):
            guard let a = read((UInt32, UInt32, UInt32).self) else { return "" }
            return " => {out_ioas_id=\(a.2)}"
        case (.iommufd, 0x3B88):
            guard let v = read((UInt32, UInt32, UInt16, UInt16).self), v.2 == 0 else { return "" }
            return " => {ioas_id=\(v.1)}"
        default:
            return ""
        }
    }

    static func irqSetFlags(_ f: UInt32) -> String {
        TraceFormat.flags(UInt64(f), [(1, "DATA_NONE"), (2, "DATA_BOOL"), (4, "DATA_EVENTFD"),
                                      (8, "ACTION_MASK"), (16, "ACTION_UNMASK"), (32, "ACTION_TRIGGER")])
    }

    static func dmaMapFlags(_ f: UInt32) -> String {
        TraceFormat.flags(UInt64(f), [(1, "R"), (2, "W"), (4, "VADDR")])
    }
}

// MARK: - The subsystem's trace hooks

extension VFIOSubsystem {
    /// What the trace shows of the file behind `fd` (no reference is taken).
    func traceTarget(_ fd: Int32) -> IoctlDecoder.Target {
        guard let file = fdTable.lookup(fd) else { return IoctlDecoder.Target(kind: nil) }
        return traceTarget(file)
    }

    func traceTarget(_ file: VFIOFile) -> IoctlDecoder.Target {
        var t = IoctlDecoder.Target(kind: file.kind)
        if file.kind == .device, let df = file.privateData as? DeviceFile {
            t.pciLayout = df.device.ops.name == "vfio-pci" || df.device.ops.name == "mdev-model"
        }
        return t
    }

    /// The line for a model file's release: "release(/dev/vfio/26)", "release([vfio-device] 0000:06:0d.0)".
    func traceRelease(_ file: VFIOFile) {
        guard tracer.isEnabled else { return }
        var what = file.name
        if file.kind == .device, let df = file.privateData as? DeviceFile { what += " " + df.device.busDevice.name }
        tracer.emit("release(\(what))")
    }

    /// "ioctl(5, NAME, args)" before, " = r => out" after.
    func traceIoctl(_ fdText: String, _ target: IoctlDecoder.Target, _ cmd: UInt32, _ arg: UInt,
                    _ body: () throws(Errno) -> Int) throws(Errno) -> Int {
        try tracer.call(before: {
            "ioctl(\(fdText), \(IoctlDecoder.name(target.kind, cmd))\(IoctlDecoder.arguments(target, cmd, arg)))"
        }, body) { pre, r in
            var line = pre + TraceFormat.result(r)
            if case .success = r { line += IoctlDecoder.output(target, cmd, arg) }
            return line
        }
    }

    /// "pread64(7, buf, 4, offset) = 4 => 0x..." (or read/write/pwrite64 for the others).
    func traceRW(_ fd: Int32, write: Bool, buffer: UInt, count: Int, offset: Int64,
                 _ body: () throws(Errno) -> Int) throws(Errno) -> Int {
        try tracer.call(before: { () -> String in
            let target = traceTarget(fd)
            // read(2)/write(2) hold the file's f_pos lock around this call; pread/pwrite do not.
            // (A concurrent read(2) of the same file on another thread can make a pread look like
            // a read: the label is the only thing that can be wrong.)
            var positional = true
            if let file = fdTable.lookup(fd) {
                if file.positionLock.tryLock() { file.positionLock.unlock() } else { positional = false }
            }
            let call = write ? (positional ? "pwrite64" : "write") : (positional ? "pread64" : "read")
            var text = "\(call)(\(fd), \(TraceFormat.pointer(buffer)), \(count)"
            let where_ = target.kind == .device ? TraceFormat.deviceOffset(offset, pciLayout: target.pciLayout) : "\(offset)"
            // pread/pwrite show their offset argument; read/write show the file position they use.
            text += positional ? ", " + where_ + ")" : ") /* at \(where_.split(separator: " ").first ?? "") */"
            if write, let v = TraceFormat.smallValue(at: buffer, count: count) { text += " <= " + v }
            return text
        }, body) { pre, r in
            var line = pre + TraceFormat.result(r)
            if !write, case .success(let n) = r, n == count, let v = TraceFormat.smallValue(at: buffer, count: n) {
                line += " => " + v
            }
            return line
        }
    }
}
