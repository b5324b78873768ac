// SPDX-License-Identifier: Apache-2.0
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
// Arguments are read through UserMemory: an unreadable pointer prints as its address. A failed
// call shows the model's reason after its errno ("= -1 EINVAL (argsz 8 < minsz 32)"). When the
// trace is off the cost is one relaxed atomic load per call.
//
// In a file or on standard error each line starts with the caller's pid and thread id, and with
// SWIFTVFIO_TRACE_TIME=1 the time: "[pid 4242 tid 4243] 06:21:01.123456 open(...) = 5"; a file
// gets a "# swiftvfio trace: ..." header line each time a process (or a new model) opens it, so
// runs appended to one file can be told apart. A handler (tests) gets the bare call text.
// docs/TRACE.md describes the format.

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
    /// the tracer off, with the error in `outputError` (the subsystem reports it).
    public convenience init(output: String?, timestamps: Bool = false) {
        self.init()
        self.timestamps = timestamps
        if let output, !output.isEmpty {
            do throws(Errno) { try setOutput(path: output) } catch { outputError = error }
        }
    }

    /// Why the output given at creation could not be opened (nil when it was, or none was given).
    public private(set) var outputError: Errno?

    /// Whether file and standard-error lines carry the time (`SWIFTVFIO_TRACE_TIME`).
    public private(set) var timestamps = false

    /// Whether lines are written (one relaxed load: the hooks' only cost when off).
    @inline(__always) public var isEnabled: Bool { on.load(ordering: .relaxed) }

    /// Sends lines to `path` (appending), or to standard error for `-`.
    public func setOutput(path: String) throws(Errno) {
        let new: Sink
        if path == "-" {
            new = .fd(2, owned: false)
        } else {
            let fd = svfio_trace_open(path)
            if fd < 0 { throw Errno(rawValue: -fd).because("cannot open the trace file for appending") }
            new = .fd(fd, owned: true)
            // One header per opening: runs appended to one file stay apart.
            var header = "# swiftvfio trace: pid \(svfio_getpid()) (\(currentTaskName())), started \(Self.wallClock(date: true))"
            header += timestamps ? ", times local\n" : "\n"
            header.withUTF8 { b in _ = svfio_trace_write(fd, b.baseAddress, b.count) }
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

    /// Writes `line` and a newline to standard error in one write (for the few messages the
    /// library prints whatever SWIFTVFIO_LOG says).
    public static func reportToStandardError(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { b in _ = svfio_trace_write(2, b.baseAddress, b.count) }
    }

    /// Writes one line (a newline is added); the whole line goes out in one write.
    public func emit(_ line: String) {
        sink.withLock { s in
            switch s {
            case .none: break
            case .handler(let h): h(line)
            case .fd(let fd, _):
                var text = "[pid \(svfio_getpid()) tid \(svfio_gettid())] "
                if timestamps { text += Self.wallClock(date: false) + " " }
                text += line
                text.append("\n")
                text.withUTF8 { b in _ = svfio_trace_write(fd, b.baseAddress, b.count) }
            }
        }
    }

    /// Local wall-clock time: "06:21:01.123456", or with `date` "2026-12-04 06:21:01.123456".
    static func wallClock(date: Bool) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var parts = tm()
        localtime_r(&t, &parts)
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        var text = pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(Int(ts.tv_nsec) / 1000, 6)
        if date {
            text = pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2) + " " + text
        }
        return text
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
    /// " = 5", " = -1 EINVAL", " = -1 EINVAL (argsz 8 < minsz 32)" (the model's reason, when
    /// the failing check gave one).
    static func result<R>(_ r: Result<R, Errno>, _ show: (R) -> String = { "\($0)" }) -> String {
        switch r {
        case .success(let v): return " = " + show(v)
        case .failure(let e):
            guard let why = e.reasonText else { return " = -1 " + errnoName(e) }
            return " = -1 " + errnoName(e) + " (" + why + ")"
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

    /// An mmap's placement when it is not a plain shared mapping anywhere: ", MAP_SHARED|MAP_FIXED
    /// at 0x7f0000000000", ", MAP_SHARED hint 0x7f0000000000", ", MAP_PRIVATE"; else nothing.
    static func placement(_ p: MmapPlacement) -> String {
        guard p != .shared else { return "" }
        let kinds: [(UInt64, String)] = [(UInt64(MAP_FIXED), "MAP_FIXED"), (UInt64(MAP_FIXED_NOREPLACE), "MAP_FIXED_NOREPLACE")]
        let type: String
        switch p.flags & 0x0f {
        case MAP_SHARED: type = "MAP_SHARED"
        case MAP_PRIVATE: type = "MAP_PRIVATE"
        case MAP_SHARED_VALIDATE: type = "MAP_SHARED_VALIDATE"
        default: type = "type \(p.flags & 0x0f)"
        }
        let fixed = UInt64(UInt32(bitPattern: p.flags)) & UInt64(MAP_FIXED | MAP_FIXED_NOREPLACE)
        var text = ", " + type + (fixed != 0 ? "|" + flags(fixed, kinds) : "")
        if p.address != 0 { text += (p.isFixed ? " at " : " hint ") + hex(UInt64(p.address)) }
        return text
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
/// kinds: 0x3b70 is IOMMU_GET_INFO on a container, GET_PCI_HOT_RESET_INFO on a device), from the
/// one ioctl table (`IoctlTable`, beside the numbers in Kernel/UAPI.swift).
enum IoctlDecoder {
    /// What the trace knows of the file behind an fd.
    struct Target {
        var kind: FileKind?
        /// vfio-pci's region layout applies (the built-in drivers).
        var pciLayout = false
    }

    static func name(_ kind: FileKind?, _ cmd: UInt32) -> String {
        IoctlTable.row(kind, cmd)?.row.name ?? TraceFormat.hex(cmd)
    }

    /// The argument as the call receives it: ", {...}", ", &4", ", \"name\"", ", VFIO_TYPE1v2_IOMMU",
    /// or "" for an ioctl without one.
    static func arguments(_ t: Target, _ cmd: UInt32, _ arg: UInt) -> String {
        let raw = arg == 0 ? ", 0" : ", " + TraceFormat.hex(arg)
        guard let (row, exact) = IoctlTable.row(t.kind, cmd), exact else { return raw }
        switch row.argument {
        case .none: return ""
        case .extensionID: return ", " + (VFIOExtension.names[arg] ?? "\(arg)")
        case .pointer(let decode):
            return decode(t, arg).map { ", " + $0 } ?? ", " + TraceFormat.pointer(arg)
        }
    }

    /// What a successful call wrote back: " => {...}", or "".
    static func output(_ t: Target, _ cmd: UInt32, _ arg: UInt) -> String {
        guard let (row, exact) = IoctlTable.row(t.kind, cmd), exact, let output = row.output,
              let text = output(t, arg) else { return "" }
        return " => " + text
    }

    static let irqIndexNames = ["INTX", "MSI", "MSIX", "ERR", "REQ"]
    static let regionNames = ["BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA"]

    static func irqIndex(_ i: UInt32) -> String { Int(i) < irqIndexNames.count ? irqIndexNames[Int(i)] : "\(i)" }
    static func regionIndex(_ i: UInt32, _ t: Target) -> String {
        t.pciLayout && Int(i) < regionNames.count ? "\(i) /* \(regionNames[Int(i)]) */" : "\(i)"
    }

    /// `struct vfio_irq_set` with its first 16 eventfds or bools; nil when the header is unreadable.
    static func irqSet(_ arg: UInt) -> String? {
        guard let h = try? UserMemory.read(PCIDeviceModel.IRQSet.self, from: arg) else { return nil }
        var text = "{argsz=\(h.argsz), flags=\(irqSetFlags(h.flags)), index=\(irqIndex(h.index)), start=\(h.start), count=\(h.count)"
        let shown = Int(min(h.count, 16))
        if h.flags & UInt32(VFIO_IRQ_SET_DATA_EVENTFD) != 0 && h.count > 0 {
            let fds = (0..<shown).map { i -> String in
                (try? UserMemory.read(Int32.self, from: arg + 20 + UInt(4 * i))).map { "\($0)" } ?? "?"
            }
            text += ", fds=[" + fds.joined(separator: ", ") + (h.count > 16 ? ", ..." : "") + "]"
        } else if h.flags & UInt32(VFIO_IRQ_SET_DATA_BOOL) != 0 && h.count > 0 {
            let bools = (0..<shown).map { i -> String in
                (try? UserMemory.read(UInt8.self, from: arg + 20 + UInt(i))).map { "\($0)" } ?? "?"
            }
            text += ", bools=[" + bools.joined(separator: ", ") + (h.count > 16 ? ", ..." : "") + "]"
        }
        return text + "}"
    }

    static let deviceInfoFlags: [(UInt64, String)] = [
        (UInt64(VFIO_DEVICE_FLAGS_RESET), "RESET"), (UInt64(VFIO_DEVICE_FLAGS_PCI), "PCI"),
        (UInt64(VFIO_DEVICE_FLAGS_PLATFORM), "PLATFORM"), (UInt64(VFIO_DEVICE_FLAGS_AMBA), "AMBA"),
        (UInt64(VFIO_DEVICE_FLAGS_CCW), "CCW"), (UInt64(VFIO_DEVICE_FLAGS_AP), "AP"),
        (UInt64(VFIO_DEVICE_FLAGS_FSL_MC), "FSL_MC"), (UInt64(VFIO_DEVICE_FLAGS_CAPS), "CAPS"),
    ]
    static let regionInfoFlags: [(UInt64, String)] = [
        (UInt64(VFIO_REGION_INFO_FLAG_READ), "READ"), (UInt64(VFIO_REGION_INFO_FLAG_WRITE), "WRITE"),
        (UInt64(VFIO_REGION_INFO_FLAG_MMAP), "MMAP"), (UInt64(VFIO_REGION_INFO_FLAG_CAPS), "CAPS"),
    ]
    static let irqInfoFlags: [(UInt64, String)] = [
        (UInt64(VFIO_IRQ_INFO_EVENTFD), "EVENTFD"), (UInt64(VFIO_IRQ_INFO_MASKABLE), "MASKABLE"),
        (UInt64(VFIO_IRQ_INFO_AUTOMASKED), "AUTOMASKED"), (UInt64(VFIO_IRQ_INFO_NORESIZE), "NORESIZE"),
    ]

    static func irqSetFlags(_ f: UInt32) -> String {
        TraceFormat.flags(UInt64(f), [(UInt64(VFIO_IRQ_SET_DATA_NONE), "DATA_NONE"), (UInt64(VFIO_IRQ_SET_DATA_BOOL), "DATA_BOOL"),
                                      (UInt64(VFIO_IRQ_SET_DATA_EVENTFD), "DATA_EVENTFD"), (UInt64(VFIO_IRQ_SET_ACTION_MASK), "ACTION_MASK"),
                                      (UInt64(VFIO_IRQ_SET_ACTION_UNMASK), "ACTION_UNMASK"), (UInt64(VFIO_IRQ_SET_ACTION_TRIGGER), "ACTION_TRIGGER")])
    }

    static func dmaMapFlags(_ f: UInt32) -> String {
        TraceFormat.flags(UInt64(f), [(UInt64(VFIO_DMA_MAP_FLAG_READ), "R"), (UInt64(VFIO_DMA_MAP_FLAG_WRITE), "W"),
                                      (UInt64(VFIO_DMA_MAP_FLAG_VADDR), "VADDR")])
    }
}

// MARK: - The subsystem's trace hooks

extension VFIOSubsystem {
    /// The name of ioctl `request` as issued on model fd `fd` ("VFIO_IOMMU_MAP_DMA"), decoded by
    /// the kind of file behind the fd (numbers collide across kinds); hex for an unknown one.
    /// For error messages: called only when a call failed.
    public func ioctlName(fd: Int32, request: UInt) -> String {
        IoctlDecoder.name(traceTarget(fd).kind, UInt32(truncatingIfNeeded: request))
    }

    /// What the trace shows of the file behind `fd` (no reference is taken).
    func traceTarget(_ fd: Int32) -> IoctlDecoder.Target {
        guard let file = fdTable.lookup(fd) else { return IoctlDecoder.Target(kind: nil) }
        return traceTarget(file)
    }

    func traceTarget(_ file: VFIOFile) -> IoctlDecoder.Target {
        var t = IoctlDecoder.Target(kind: file.kind)
        if let device = file.device {
            t.pciLayout = device.ops.name == "vfio-pci" || device.ops.name == "mdev-model"
        }
        return t
    }

    /// The line for a model file's release: "release(/dev/vfio/26)", "release([vfio-device] 0000:06:0d.0)".
    func traceRelease(_ file: VFIOFile) {
        guard tracer.isEnabled else { return }
        var what = file.name
        if let device = file.device { what += " " + device.busDevice.name }
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
