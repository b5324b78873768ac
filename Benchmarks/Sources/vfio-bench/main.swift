// SPDX-License-Identifier: Apache-2.0
// vfio-bench: libswiftvfio's benchmarks, each figure a ratio to its baseline measured in the same run.
//
//   vfio-bench                  runs everything (each part in a fresh child process) and prints the table
//   vfio-bench scale N [pci]    N devices, each in its own IOMMU group: registration, open/close, memory
//   vfio-bench lookup N [pci]   GET_DEVICE_FD of one device among N in one group
//   vfio-bench threads          two threads on distinct groups against one (the Swift core API)
//
// The C ABI and LD_PRELOAD comparisons run in vfio-bench-c (beside this executable), which links
// libswiftvfio.so as a C program does. Children print "ROW\t<id>\t<name>\t<a>\t<b>\t<kind>\t<target>"
// lines: kind "le" (ratio a/b at most target), "speedup" (b/a at least target), "bytes" (a bytes
// against a budget of b), "info" (a/b, no target). Environment: VFIO_BENCH_QUICK=1 shortens every
// timed run (a smoke test, not for the record); VFIO_BENCH_PRELOAD=<path> names the interposer.

import CBaselines
import VFIO
#if canImport(Glibc)
import Glibc
#endif

// MARK: - output

func emit(_ id: String, _ name: String, _ a: Double, _ b: Double, _ kind: String, _ target: Double) {
    print("ROW\t\(id)\t\(name)\t\(fixed(a, 2))\t\(fixed(b, 2))\t\(kind)\t\(fixed(target, 3))")
    fflush(nil)
}

/// A line on stderr.
func note(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let v = (abs(x) * scale).rounded()
    let whole = Int(v / scale)
    var frac = String(Int(v.truncatingRemainder(dividingBy: scale)))
    while frac.count < digits { frac = "0" + frac }
    return (x < 0 ? "-" : "") + "\(whole)" + (digits > 0 ? "." + frac : "")
}

func fail(_ what: String) -> Never {
    note("vfio-bench: \(what)")
    exit(1)
}

let quick: Bool = {
    guard let q = getenv("VFIO_BENCH_QUICK") else { return false }
    return q.pointee != 0 && q.pointee != 0x30
}()

// MARK: - timing (CBaselines' clock, shared with the C side)

/// Best ns per operation of `body(iters)` over `reps` runs.
func measure(iters: Int, reps: Int, _ body: (Int) -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<reps {
        let t0 = cb_now_ns()
        body(iters)
        let dt = Double(cb_now_ns() - t0) / Double(iters)
        best = min(best, dt)
    }
    return best
}

/// Iterations of `body` that take about `ns`.
func calibrate(_ ns: UInt64, _ body: (Int) -> Void) -> Int {
    var iters = 1
    while true {
        let t0 = cb_now_ns()
        body(iters)
        let dt = cb_now_ns() - t0
        if dt >= ns / 8 || iters >= 1 << 30 {
            let per = max(Double(dt) / Double(iters), 1)
            return max(1, Int(Double(ns) / per))
        }
        iters *= 4
    }
}

let runNS: UInt64 = quick ? 5_000_000 : 20_000_000
let reps = quick ? 3 : 9

// MARK: - building models

/// A PCI-style name for device `i`: domain:bus:slot.function, unique for i < 2^24.
func bdf(_ i: Int) -> String {
    func hex(_ v: Int, _ width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(hex(i >> 16, 4)):\(hex((i >> 8) & 0xff, 2)):\(hex((i >> 3) & 0x1f, 2)).\(i & 7)"
}

/// The group layer's own cost: a VFIO bus driver with no callbacks (no device model behind it, no
/// `match` op), registered through the same path vfio-pci's probe takes.
let benchOps = VFIODeviceOps(name: "vfio-bench")

/// Discovers device `name` in IOMMU group `group`, binds a VFIO driver and registers it: the
/// built-in vfio-pci (`pci`, with its PCI device model) or the callback-free bench driver.
@discardableResult
func probe(_ sub: VFIOSubsystem, _ name: String, group id: Int, pci: Bool) -> VFIODevice {
    do throws(Errno) {
        if pci {
            guard let d = try sub.probePCIDevice(name: name, iommuGroupID: id, driver: "vfio-pci") else { fail("no device") }
            return d
        }
        let bus = try sub.iommu.addDevice(name: name)
        let g: IOMMUGroup
        if let existing = sub.iommu.group(id: id) { g = existing } else { g = try sub.iommu.addGroup(id: id) }
        try sub.iommu.addDevice(bus, to: g)
        try sub.iommu.bindDriver("vfio-bench", to: bus, managesDMA: true)
        let device = try sub.allocDevice(bus, ops: benchOps)
        try sub.registerGroupDevice(device)
        return device
    } catch {
        fail("probe \(name): \(error)")
    }
}

func rss() -> Double { Double(cb_rss_bytes()) }

// MARK: - scale: N devices, each in its own group

func modeScale(_ n: Int, pci: Bool) {
    let tag = pci ? "_pci" : ""
    // The same work at every N: `total` registrations, as total/N models of N devices each (each
    // registration happens in a model holding fewer than N), timed as a whole; best of `rounds`.
    // The first model made in this fresh process also gives the resident memory per group +
    // device, and the open/close timing among N groups.
    let total = pci ? n : max(n, 100_000)
    let models = total / n
    let rounds = 2
    let names = (0..<n).map(bdf)   // made before the clock starts
    var best = Double.infinity
    var bytesPerObject = 0.0
    var openClose = Double.infinity
    for round in 0..<rounds {
        var elapsed: UInt64 = 0
        for m in 0..<models {
            let before = rss()
            let sub = VFIOSubsystem()
            let t0 = cb_now_ns()
            for i in 0..<n { probe(sub, names[i], group: i, pci: pci) }
            elapsed += cb_now_ns() - t0
            if round == 0 && m == 0 {
                bytesPerObject = (rss() - before) / Double(n)
                // Opening and closing one group among N.
                let path = "/dev/vfio/\(n / 2)"
                let body: (Int) -> Void = { k in
                    for _ in 0..<k {
                        do throws(Errno) {
                            let fd = try sub.open(path)
                            try sub.close(fd)
                        } catch { fail("open/close \(path): \(error)") }
                    }
                }
                let iters = calibrate(runNS, body)
                openClose = measure(iters: iters, reps: reps, body)
            }
        }
        let perOp = Double(elapsed) / Double(models * n)
        if getenv("VFIO_BENCH_VERBOSE") != nil {
            note("scale \(n) round \(round): \(fixed(perOp, 1)) ns/op over \(models) models, rss \(fixed(rss() / 1048576, 1)) MiB")
        }
        best = min(best, perOp)
    }
    emit("register\(tag)_\(n)", "register", best, 0, "value", 0)
    emit("openclose\(tag)_\(n)", "open+close", openClose, 0, "value", 0)
    emit("memory\(tag)_\(n)", "memory", bytesPerObject, 0, "value", 0)
}

// MARK: - lookup: GET_DEVICE_FD of one device among N in one group

func modeLookup(_ n: Int, pci: Bool) {
    let sub = VFIOSubsystem()
    let groupID = 1
    // The first registered device: the last a newest-first walk reaches.
    for i in 0..<n { probe(sub, bdf(i), group: groupID, pci: pci) }
    let name = strdup(bdf(0))!
    defer { free(name) }
    var cfdBox: Int32 = 0
    let gfd: Int32
    do throws(Errno) {
        cfdBox = try sub.open("/dev/vfio/vfio")
        gfd = try sub.open("/dev/vfio/\(groupID)")
        _ = try withUnsafePointer(to: &cfdBox) { (p) throws(Errno) -> Int in
            try sub.ioctl(gfd, UInt(VFIOIoctl.groupSetContainer), UInt(bitPattern: p))
        }
        _ = try sub.ioctl(cfdBox, UInt(VFIOIoctl.setIOMMU), VFIOExtension.type1v2IOMMU)
    } catch { fail("container setup: \(error)") }
    let arg = UInt(bitPattern: name)
    let body: (Int) -> Void = { k in
        for _ in 0..<k {
            do throws(Errno) {
                let fd = try sub.ioctl(gfd, UInt(VFIOIoctl.groupGetDeviceFD), arg)
                try sub.close(Int32(fd))
            } catch { fail("GET_DEVICE_FD: \(error)") }
        }
    }
    let iters = calibrate(runNS, body)
    let t = measure(iters: iters, reps: reps, body)
    emit("lookup\(pci ? "_pci" : "")_\(n)", "lookup", t, 0, "value", 0)
}

// MARK: - threads: two threads on distinct groups against one (Swift core API)

final class ThreadCtx {
    let sub: VFIOSubsystem
    let fd: Int32
    /// The thread's status buffer, on 128 bytes of its own: two small allocations side by side
    /// would share a cache line and the benchmark would measure its own false sharing.
    let status = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        .bindMemory(to: VFIOGroupStatus.self, capacity: 1)
    init(sub: VFIOSubsystem, fd: Int32) {
        self.sub = sub
        self.fd = fd
        status.initialize(to: VFIOGroupStatus())
    }
}

func modeThreads() {
    let sub = VFIOSubsystem()
    probe(sub, bdf(1), group: 1, pci: false)
    probe(sub, bdf(2), group: 2, pci: false)
    let a: ThreadCtx, b: ThreadCtx
    do throws(Errno) {
        a = ThreadCtx(sub: sub, fd: try sub.open("/dev/vfio/1"))
        b = ThreadCtx(sub: sub, fd: try sub.open("/dev/vfio/2"))
    } catch { fail("open groups: \(error)") }
    let body: cb_body = { p, n in
        let c = Unmanaged<ThreadCtx>.fromOpaque(p!).takeUnretainedValue()
        let arg = UInt(bitPattern: c.status)
        for _ in 0..<n {
            c.status.pointee.argsz = 8
            _ = try? c.sub.ioctl(c.fd, UInt(VFIOIoctl.groupGetStatus), arg)
        }
    }
    var one: [UnsafeMutableRawPointer?] = [Unmanaged.passUnretained(a).toOpaque()]
    var two: [UnsafeMutableRawPointer?] = [Unmanaged.passUnretained(a).toOpaque(), Unmanaged.passUnretained(b).toOpaque()]
    let iters = calibrate(4 * runNS) { k in body(one[0], k) }
    var best1 = Double.infinity, best2 = Double.infinity
    for _ in 0..<reps {
        best1 = min(best1, Double(cb_run_threads(1, body, &one, iters)) / Double(iters))
        best2 = min(best2, Double(cb_run_threads(2, body, &two, iters)) / Double(2 * iters))
    }
    emit("scale_core", "2 threads, distinct groups: core VFIOSubsystem.ioctl GET_STATUS (speedup)", best2, best1, "speedup", 1.6)
}

// MARK: - the driver: children, rows, table

struct Row {
    var id: String
    var name: String
    var a: Double
    var b: Double
    var kind: String
    var target: Double
    var na: String?
}

/// Writes a JSON topology of `devices` vfio-pci devices, one per IOMMU group (for the start-up row).
func writeTopology(devices: Int, to path: String) {
    var text = "{ \"iommu_groups\": [\n"
    for i in 0..<devices {
        let name = "0000:" + hex(i >> 8, 2) + ":" + hex((i >> 3) & 31, 2) + "." + hex(i & 7, 1)
        text += "  { \"id\": \(i + 1), \"devices\": [ { \"name\": \"\(name)\", \"driver\": \"vfio-pci\" } ] }"
        text += i + 1 < devices ? ",\n" : "\n"
    }
    text += "] }\n"
    guard let f = fopen(path, "w") else { fail("write \(path)") }
    fputs(text, f)
    fclose(f)
}

func hex(_ v: Int, _ width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

func selfPath() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { fail("readlink /proc/self/exe") }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func dirname(_ p: String) -> String {
    guard let i = p.lastIndex(of: "/") else { return "." }
    return String(p[..<i])
}

/// Runs `argv` with the environment changed by `set` / `unset`, returning its stdout.
func run(_ argv: [String], set: [String: String] = [:], unset: [String] = []) -> String {
    var env: [String] = []
    var p = environ
    while let e = p.pointee {
        let s = String(cString: e)
        let key = String(s.prefix { $0 != "=" })
        if set[key] == nil && !unset.contains(key) { env.append(s) }
        p += 1
    }
    for (k, v) in set { env.append("\(k)=\(v)") }
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { fail("pipe") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    posix_spawn_file_actions_addclose(&actions, fds[1])
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = env.map { strdup($0) } + [nil]
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
    posix_spawn_file_actions_destroy(&actions)
    cArgs.forEach { free($0) }
    cEnv.forEach { free($0) }
    close(fds[1])
    guard rc == 0 else { fail("spawn \(argv[0]): \(String(cString: strerror(rc)))") }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fds[0], &buf, buf.count)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    close(fds[0])
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    if status != 0 { note("vfio-bench: \(argv.joined(separator: " ")) exited with status \(status)") }
    return String(decoding: out, as: UTF8.self)
}

func parse(_ text: String) -> [String: Row] {
    var rows: [String: Row] = [:]
    for line in text.split(separator: "\n") {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        if f.count == 7 && f[0] == "ROW" {
            rows[f[1]] = Row(id: f[1], name: f[2], a: Double(f[3]) ?? .nan, b: Double(f[4]) ?? .nan,
                             kind: f[5], target: Double(f[6]) ?? .nan)
        } else if f.count == 4 && f[0] == "NA" {
            rows[f[1]] = Row(id: f[1], name: f[2], a: .nan, b: .nan, kind: "na", target: .nan, na: f[3])
        }
    }
    return rows
}

func human(_ ns: Double) -> String {
    if !ns.isFinite { return "n/a" }
    if ns >= 1_000_000 { return fixed(ns / 1_000_000, 2) + " ms" }
    if ns >= 10_000 { return fixed(ns / 1_000, 1) + " µs" }
    if ns >= 1_000 { return fixed(ns / 1_000, 2) + " µs" }
    return fixed(ns, 1) + " ns"
}

func bytes(_ b: Double) -> String {
    !b.isFinite ? "n/a (the run failed)" : b >= 10_240 ? fixed(b / 1024, 1) + " KiB" : fixed(b, 0) + " B"
}

func shell(_ cmd: String) -> String {
    guard let f = popen(cmd, "r") else { return "?" }
    var out = ""
    var buf = [CChar](repeating: 0, count: 1024)
    while fgets(&buf, Int32(buf.count), f) != nil {
        out += String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    pclose(f)
    return out.trimmingCharacters()
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}

func modeAll() {
    let me = selfPath()
    let dir = dirname(me)
    let cBench = dir + "/vfio-bench-c"
    let preload = getenv("VFIO_BENCH_PRELOAD").map { String(cString: $0) } ?? dir + "/libswiftvfio-preload.so"
    let clean = ["SWIFTVFIO_TOPOLOGY", "SWIFTVFIO_TRACE", "LD_PRELOAD"]
    var rows: [String: Row] = [:]
    var order: [String] = []   // row ids in the order the children printed them
    func collect(_ argv: [String], set: [String: String] = [:]) {
        note("vfio-bench: running \(argv.map { $0.hasPrefix("/") ? String($0.split(separator: "/").last!) : $0 }.joined(separator: " "))")
        let text = run(argv, set: set, unset: clean)
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t")
            if f.count > 1, f[0] == "ROW" || f[0] == "NA", !order.contains(String(f[1])) { order.append(String(f[1])) }
        }
        rows.merge(parse(text)) { $1 }
    }
    collect([cBench, "cabi"])
    if access(preload, R_OK) == 0 {
        collect([cBench, "preload"], set: ["LD_PRELOAD": preload])
        if rows["status_preload"] == nil {
            rows["status_preload"] = Row(id: "status_preload", name: "GROUP_GET_STATUS: ioctl() under the preload vs real ioctl(2)",
                                         a: .nan, b: .nan, kind: "na", target: .nan, na: "n/a (preload run failed)")
        }
    } else {
        rows["status_preload"] = Row(id: "status_preload", name: "GROUP_GET_STATUS: ioctl() under the preload vs real ioctl(2)",
                                     a: .nan, b: .nan, kind: "na", target: .nan, na: "n/a (preload not built)")
    }
    // Start-up: the first model call of a fresh process (best of 7), built-in and 10,000 devices.
    let firstcall = dir + "/vfio-firstcall"
    if access(firstcall, X_OK) == 0 && access(preload, R_OK) == 0 {
        let big = "/tmp/vfio-bench-10000-\(getpid()).json"
        writeTopology(devices: 10_000, to: big)
        for (id, topo, budget) in [("firstcall_builtin", nil, 10.0), ("firstcall_10000", big, 100.0)] {
            var best = Double.infinity
            for _ in 0..<7 {
                var env = ["LD_PRELOAD": preload]
                if let topo { env["SWIFTVFIO_TOPOLOGY"] = topo }
                for line in run([firstcall], set: env, unset: clean).split(separator: "\n") {
                    let f = line.split(separator: "\t")
                    if f.count == 2, f[0] == "FIRSTCALL", let ms = Double(f[1]) { best = min(best, ms) }
                }
            }
            let name = "start-up: the first model call of a process (loads libswiftvfio.so, the model, "
                + (topo == nil ? "the built-in topology)" : "a 10,000-device JSON topology)")
            rows[id] = best.isFinite ? Row(id: id, name: name, a: best, b: budget, kind: "ms-budget", target: 1)
                                     : Row(id: id, name: name, a: .nan, b: .nan, kind: "na", target: .nan, na: "n/a (run failed)")
        }
        unlink(big)
    } else {
        rows["firstcall_builtin"] = Row(id: "firstcall_builtin", name: "start-up: the first model call of a process",
                                        a: .nan, b: .nan, kind: "na", target: .nan, na: "n/a (vfio-firstcall or the preload not built)")
    }
    // QEMU start-up: vfio-pci under the preload vs an emulated device (Benchmarks/qemu_startup.py).
    if let script = getenv("VFIO_BENCH_QEMU_SCRIPT").map({ String(cString: $0) }), access(script, R_OK) == 0 {
        collect(["/usr/bin/env", "python3", script, dir, quick ? "3" : "21"])
    }
    for n in [1_000, 10_000, 100_000] { collect([me, "scale", "\(n)"]) }
    collect([me, "scale", "10000", "pci"])
    // GET_DEVICE_FD: each N in a fresh process, three rounds alternating N, the best process kept.
    // A whole process lands in a slow or a fast state (7.5 against 10.2 µs for the same N, either
    // N), which the best of the runs inside one process cannot undo.
    for pci in [false, true] {
        for _ in 0..<3 {
            for n in [10, 10_000] {
                let before = rows
                collect([me, "lookup", "\(n)"] + (pci ? ["pci"] : []))
                let id = "lookup\(pci ? "_pci" : "")_\(n)"
                if let old = before[id], let new = rows[id], old.a < new.a { rows[id] = old }
            }
        }
    }
    collect([me, "threads"])

    func v(_ id: String) -> Double { rows[id]?.a ?? .nan }
    var table: [Row] = []
    func add(_ id: String) { if let r = rows[id] { table.append(r) } }
    add("is_group"); add("has_dev"); add("coherent")
    add("status_cabi"); add("status_preload"); add("status_direct")
    add("pread_preload"); add("close_preload")
    for id in order where id.hasPrefix("other_") { add(id) }
    add("firstcall_builtin"); add("firstcall_10000"); add("qemu_startup")
    table.append(Row(id: "", name: "register a device in its own group, per op: N = 10,000 vs 1,000",
                     a: v("register_10000"), b: v("register_1000"), kind: "info", target: .nan))
    table.append(Row(id: "", name: "register a device in its own group, per op: N = 100,000 vs 1,000",
                     a: v("register_100000"), b: v("register_1000"), kind: "le", target: 1.5))
    table.append(Row(id: "", name: "open+close one group among N groups: N = 10,000 vs 1,000",
                     a: v("openclose_10000"), b: v("openclose_1000"), kind: "info", target: .nan))
    table.append(Row(id: "", name: "open+close one group among N groups: N = 100,000 vs 1,000",
                     a: v("openclose_100000"), b: v("openclose_1000"), kind: "le", target: 1.5))
    table.append(Row(id: "", name: "GET_DEVICE_FD+close, one of N devices in a group: N = 10,000 vs 10",
                     a: v("lookup_10000"), b: v("lookup_10"), kind: "le", target: 1.25))
    table.append(Row(id: "", name: "GET_DEVICE_FD+close, one of N vfio-pci devices (match op): N = 10,000 vs 10",
                     a: v("lookup_pci_10000"), b: v("lookup_pci_10"), kind: "le", target: 1.5))
    add("scale_cabi"); add("scale_core"); add("scale_cm"); add("scale_ideal")
    table.append(Row(id: "", name: "memory per group + device (RSS growth at N = 100,000 / N)",
                     a: v("memory_100000"), b: 2048, kind: "bytes", target: 1.0))
    table.append(Row(id: "", name: "memory per group + vfio-pci device with its PCI model (N = 10,000)",
                     a: v("memory_pci_10000"), b: 2048, kind: "bytes-info", target: .nan))
    table.append(Row(id: "", name: "register a vfio-pci device (PCI model; BAR memory at first use) in its own group, N = 10,000, vs bench driver",
                     a: v("register_pci_10000"), b: v("register_10000"), kind: "info", target: .nan))

    let date = shell("date -u '+%Y-%m-%d %H:%M UTC'")
    let cpu = shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    let machine = "\(shell("uname -m")), \(cpu), \(shell("nproc")) CPUs, Linux \(shell("uname -r"))"
    print("libswiftvfio benchmarks, \(date)\(quick ? " (QUICK: smoke test, not for the record)" : "")")
    print("machine: \(machine)")
    print("")
    print("| benchmark | libswiftvfio | baseline | ratio | target | result |")
    print("|---|---:|---:|---:|---:|---|")
    var missed = 0
    let machineSpeedup = rows["scale_ideal"].map { $0.b / $0.a } ?? 2
    for r in table {
        if let na = r.na {
            print("| \(r.name) | \(na) | | | | n/a |")
            continue
        }
        let ratio: Double
        var targetText: String
        var result: String
        var aText = human(r.a), bText = human(r.b)
        switch r.kind {
        case "speedup":
            ratio = r.b / r.a
            targetText = "≥ \(fixed(r.target, 1))x"
            result = ratio >= r.target ? "PASS" : "MISS"
            aText = "2 thr: " + human(r.a) + "/op"
            bText = "1 thr: " + human(r.b) + "/op"
            if r.id == "scale_cm" || r.id == "scale_ideal" {
                result = "reference"
            } else if machineSpeedup < 1.8 {
                // Two threads that share nothing got less than 1.8x: another job holds a CPU, and
                // the figure says more about the machine than about the library.
                result = "inconclusive"
                targetText += " (machine: \(fixed(machineSpeedup, 2))x)"
            }
        case "bytes", "bytes-info":
            ratio = r.a / r.b
            targetText = r.kind == "bytes" ? "≤ 2 KiB" : "—"
            result = r.kind == "bytes" ? (ratio <= 1 ? "PASS" : "MISS") : "info"
            aText = bytes(r.a)
            bText = "2 KiB budget"
        case "ms-budget":   // a time in ms against a budget in ms
            ratio = r.a / r.b
            targetText = "≤ \(fixed(r.b, 0)) ms"
            result = ratio <= r.target ? "PASS" : "MISS"
            aText = fixed(r.a, 2) + " ms"
            bText = fixed(r.b, 0) + " ms budget"
        case "ms":          // two times in ms, a ratio target
            ratio = r.a / r.b
            targetText = "≤ \(fixed(r.target, 1))x"
            result = ratio <= r.target ? "PASS" : "MISS"
            aText = fixed(r.a, 1) + " ms"
            bText = fixed(r.b, 1) + " ms"
        case "le":
            ratio = r.a / r.b
            targetText = r.target < 1 ? "≤ 1/\(fixed(1 / r.target, 0))" : "≤ \(fixed(r.target, r.target == r.target.rounded() ? 0 : 2))x"
            result = ratio <= r.target ? "PASS" : "MISS"
        default:
            ratio = r.a / r.b
            targetText = "—"
            result = "info"
        }
        if result == "MISS" { missed += 1 }
        if !ratio.isFinite { result = "n/a" }
        print("| \(r.name) | \(aText) | \(bText) | \(fixed(ratio, 2))x | \(targetText) | \(result) |")
    }
    print("")
    print("\(missed == 0 ? "all targets met" : "\(missed) target(s) missed")"
          + (table.contains { $0.kind == "speedup" } && machineSpeedup < 1.8
             ? "; scaling inconclusive: two threads sharing nothing got \(fixed(machineSpeedup, 2))x (another job holds a CPU)" : ""))
}

// MARK: - main

let args = CommandLine.arguments
if args.count > 1 { cb_become_multithreaded() }   // children: measure as a threaded program runs
if args.count > 1 { raiseFDLimit() }

/// The vfio-pci model keeps a memfd per BAR: 10,000 devices need more descriptors than a usual
/// soft limit. Raise the limit to the kernel's maximum where permitted (root), else to the hard one.
func raiseFDLimit() {
    var r = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r) == 0 else { return }
    var nrOpen: rlim_t = r.rlim_max
    if let f = fopen("/proc/sys/fs/nr_open", "r") {
        var v: UInt = 0
        if withUnsafeMutablePointer(to: &v, { fscanf_ulong(f, $0) }) { nrOpen = max(nrOpen, rlim_t(v)) }
        fclose(f)
    }
    var want = rlimit(rlim_cur: nrOpen, rlim_max: nrOpen)
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &want) != 0 {
        want = rlimit(rlim_cur: r.rlim_max, rlim_max: r.rlim_max)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &want)
    }
}

/// Reads one unsigned decimal from `f`.
func fscanf_ulong(_ f: UnsafeMutablePointer<FILE>, _ out: UnsafeMutablePointer<UInt>) -> Bool {
    var buf = [CChar](repeating: 0, count: 32)
    guard fgets(&buf, Int32(buf.count), f) != nil else { return false }
    let text = String(decoding: buf.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let v = UInt(text) else { return false }
    out.pointee = v
    return true
}
switch args.count > 1 ? args[1] : "" {
case "":
    modeAll()
case "scale":
    guard args.count > 2, let n = Int(args[2]) else { fail("usage: vfio-bench scale N [pci]") }
    modeScale(n, pci: args.count > 3 && args[3] == "pci")
case "lookup":
    guard args.count > 2, let n = Int(args[2]) else { fail("usage: vfio-bench lookup N [pci]") }
    modeLookup(n, pci: args.count > 3 && args[3] == "pci")
case "threads":
    modeThreads()
default:
    fail("usage: vfio-bench [scale N [pci] | lookup N [pci] | threads]")
}
