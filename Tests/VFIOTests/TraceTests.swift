// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

/// Collects a subsystem's trace lines.
private final class Lines: @unchecked Sendable {
    let lines = Locked<[String]>([])
    init(_ sub: VFIOSubsystem) { sub.tracer.setHandler { [self] l in lines.withLock { $0.append(l) } } }
    var all: [String] { lines.withLock { $0 } }
    func take() -> [String] { lines.withLock { l in defer { l = [] }; return l } }
}

@Suite struct TraceTests {
    @Test func offByDefaultAndCheap() throws {
        unsetenv("SWIFTVFIO_TRACE")
        let sub = makeSubsystem()
        #expect(!sub.tracer.isEnabled)
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.close(g)
        teardown(sub)
    }

    @Test func vfioRstSequenceDecoded() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let t = Lines(sub)
        let c = try sub.open("/dev/vfio/vfio", flags: 0o2 | VFIOSubsystem.O_CLOEXEC)
        #expect(try sub.ioctl(c, UInt(VFIOIoctl.getAPIVersion)) == 0)
        #expect(try sub.checkExtension(c, VFIOExtension.type1v2IOMMU) == 1)
        let g = try sub.open("/dev/vfio/26")
        _ = try sub.status(g)
        try sub.setContainer(g, c)
        try sub.setIOMMU(c, VFIOExtension.type1v2IOMMU)
        let m = Mapping(size: 1 << 20)
        var map = Type1DMAMapArg(flags: 3, vaddr: UInt64(m.address), iova: 0, size: 1 << 20)
        _ = try withUnsafeMutablePointer(to: &map) { (p) throws(Errno) -> Int in
            try sub.ioctl(c, UInt(VFIOIoctl.iommuMapDMA), UInt(bitPattern: p))
        }
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (20, 0, 0, 0, 0)
        _ = try withUnsafeMutablePointer(to: &info) { (p) throws(Errno) -> Int in
            try sub.ioctl(d, UInt(VFIOIoctl.deviceGetInfo), UInt(bitPattern: p))
        }
        var reg = PCIDeviceModel.RegionInfo(argsz: 32, flags: 0, index: 7, capOffset: 0, size: 0, offset: 0)
        _ = try withUnsafeMutablePointer(to: &reg) { (p) throws(Errno) -> Int in
            try sub.ioctl(d, UInt(VFIOIoctl.deviceGetRegionInfo), UInt(bitPattern: p))
        }
        var word: UInt16 = 0
        var pos: Int64 = 7 << 40 | 4
        _ = try withUnsafeMutablePointer(to: &word) { (p) throws(Errno) -> Int in
            try sub.read(d, buffer: UInt(bitPattern: p), count: 2, offset: &pos)
        }
        let e = svfio_eventfd(0, 1)
        defer { close(e) }
        var set: (UInt32, UInt32, UInt32, UInt32, UInt32, Int32) = (24, 4 | 32, 0, 0, 1, e)
        _ = try withUnsafeMutablePointer(to: &set) { (p) throws(Errno) -> Int in
            try sub.ioctl(d, UInt(VFIOIoctl.deviceSetIRQs), UInt(bitPattern: p))
        }
        var bogus: Int32 = 9999
        #expect(throws: Errno.EBADF) {
            _ = try withUnsafeMutablePointer(to: &bogus) { (p) throws(Errno) -> Int in
                try sub.ioctl(g, UInt(VFIOIoctl.groupSetContainer), UInt(bitPattern: p))
            }
        }
        let d2 = try sub.dup(d)
        try sub.close(d2)
        try sub.close(d)
        try sub.close(g)
        try sub.close(c)
        let lines = t.all
        let expected = [
            "open(\"/dev/vfio/vfio\", O_RDWR|O_CLOEXEC) = \(c)",
            "ioctl(\(c), VFIO_GET_API_VERSION) = 0",
            "ioctl(\(c), VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) = 1",
            "open(\"/dev/vfio/26\", O_RDWR) = \(g)",
            "ioctl(\(g), VFIO_GROUP_GET_STATUS, {argsz=8}) = 0 => {flags=VIABLE}",
            "ioctl(\(g), VFIO_GROUP_SET_CONTAINER, &\(c)) = 0",
            "ioctl(\(c), VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) = 0",
            "ioctl(\(c), VFIO_IOMMU_MAP_DMA, {argsz=32, flags=R|W, vaddr=\(TraceFormat.hex(UInt(m.address))), iova=0x0, size=0x100000}) = 0",
            "ioctl(\(g), VFIO_GROUP_GET_DEVICE_FD, \"0000:06:0d.0\") = \(d)",
            "ioctl(\(d), VFIO_DEVICE_GET_INFO, {argsz=20}) = 0 => {flags=RESET|PCI, num_regions=9, num_irqs=5}",
            "ioctl(\(d), VFIO_DEVICE_GET_REGION_INFO, {argsz=32, index=7 /* CONFIG */}) = 0 => {argsz=32, flags=READ|WRITE, size=0x1000, offset=0x70000000000, cap_offset=0}",
            "pread64(\(d), \(TraceFormat.hex(UInt(bitPattern: withUnsafePointer(to: &word) { $0 }))), 2, 0x70000000004 /* CONFIG+0x4 */) = 2 => 0x0002",
            "ioctl(\(d), VFIO_DEVICE_SET_IRQS, {argsz=24, flags=DATA_EVENTFD|ACTION_TRIGGER, index=INTX, start=0, count=1, fds=[\(e)]}) = 0",
            "ioctl(\(g), VFIO_GROUP_SET_CONTAINER, &9999) = -1 EBADF (not an open fd)",
            "dup(\(d)) = \(d2)",
            "close(\(d2)) = 0",
            "close(\(d)) = 0",
            "release([vfio-device] 0000:06:0d.0)",
            "close(\(g)) = 0",
            "release(/dev/vfio/26)",
            "close(\(c)) = 0",
            "release(/dev/vfio/vfio)",
        ]
        for (i, line) in expected.enumerated() where i < lines.count && !lines[i].hasPrefix("pread64") {
            #expect(lines[i] == line)
        }
        #expect(lines.count == expected.count)
        #expect(lines.contains { $0.hasPrefix("pread64(\(d), 0x") && $0.hasSuffix(", 2, 0x70000000004 /* CONFIG+0x4 */) = 2 => 0x0002") })
        // Every model file opened was released.
        #expect(lines.filter { $0.hasPrefix("release(") }.count == 3)
        teardown(sub)
    }

    @Test func badPointersPrintAddressesAndErrnoNames() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let t = Lines(sub)
        let g = try sub.open("/dev/vfio/26")
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetStatus), 0x10) }
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupSetContainer), 0x20) }
        #expect(throws: Errno.EFAULT) { try sub.ioctl(g, UInt(VFIOIoctl.groupGetDeviceFD), 0) }
        #expect(throws: Errno.ENOTTY) { try sub.ioctl(g, 0x3B99, 7) }
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/vfio/99") }
        #expect(throws: Errno.EBADF) { try sub.close(12345) }
        #expect(throws: Errno.EBADF) { try sub.ioctl(12345, UInt(VFIOIoctl.groupGetStatus), 0x10) }
        let lines = t.take()
        #expect(lines == [
            "open(\"/dev/vfio/26\", O_RDWR) = \(g)",
            "ioctl(\(g), VFIO_GROUP_GET_STATUS, 0x10) = -1 EFAULT (cannot read 8 bytes at 0x10)",
            "ioctl(\(g), VFIO_GROUP_SET_CONTAINER, 0x20) = -1 EFAULT (cannot read 4 bytes at 0x20)",
            "ioctl(\(g), VFIO_GROUP_GET_DEVICE_FD, NULL) = -1 EFAULT (string at 0x0 not readable)",
            "ioctl(\(g), 0x3b99, 0x7) = -1 ENOTTY (not a group request)",
            "open(\"/dev/vfio/99\", O_RDWR) = -1 ENOENT (no such model node)",
            "close(12345) = -1 EBADF (not a model fd)",
            "ioctl(12345, VFIO_GROUP_GET_STATUS, 0x10) = -1 EBADF (not a model fd)",
        ])
        teardown(sub)
    }

    @Test func readWriteAndMmapLines() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let g = try sub.open("/dev/vfio/26")
        try sub.containerWith(g)
        let d = try sub.deviceFD(g, "0000:06:0d.0")
        let t = Lines(sub)
        var v: UInt32 = 0xffff_ffff
        var pos: Int64 = 7 << 40 | 0x10
        _ = try withUnsafeMutablePointer(to: &v) { (p) throws(Errno) -> Int in
            try sub.write(d, buffer: UInt(bitPattern: p), count: 4, offset: &pos)
        }
        // read(2) at the file position (the f_pos path).
        _ = try withUnsafeMutablePointer(to: &v) { (p) throws(Errno) -> Int in
            try sub.read(d, buffer: UInt(bitPattern: p), count: 4)
        }
        let a = try sub.mmap(d, offset: 0, length: 4096, prot: PROT_READ | PROT_WRITE)
        munmap(UnsafeMutableRawPointer(bitPattern: a), 4096)
        #expect(throws: Errno.EINVAL) { _ = try sub.mmap(d, offset: 7 << 40, length: 4096, prot: PROT_READ) }
        // A placement other than "shared, anywhere" is shown (DPDK maps BARs with MAP_FIXED).
        let spot = try #require(mmap(nil, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        let fixed = MmapPlacement(address: UInt(bitPattern: spot), flags: MAP_SHARED | MAP_FIXED)
        #expect(try sub.mmap(d, offset: 0, length: 4096, prot: PROT_READ, placement: fixed) == UInt(bitPattern: spot))
        #expect(throws: Errno.EINVAL) {
            _ = try sub.mmap(d, offset: 0, length: 4096, prot: PROT_READ, placement: MmapPlacement(address: 0x10000, flags: MAP_PRIVATE))
        }
        munmap(spot, 4096)
        let lines = t.take()
        #expect(lines.count == 6)
        #expect(lines[4] == "mmap(\(d), 0x0 /* BAR0+0x0 */, 4096, PROT_READ, MAP_SHARED|MAP_FIXED at \(TraceFormat.hex(UInt(bitPattern: spot)))) = \(TraceFormat.hex(UInt(bitPattern: spot)))")
        #expect(lines[5].hasPrefix("mmap(\(d), 0x0 /* BAR0+0x0 */, 4096, PROT_READ, MAP_PRIVATE hint 0x10000) = -1 EINVAL"))
        #expect(lines[0].hasPrefix("pwrite64(\(d), 0x"))
        #expect(lines[0].hasSuffix(", 4, 0x70000000010 /* CONFIG+0x10 */) <= 0xffffffff = 4"))
        #expect(lines[1].hasPrefix("read(\(d), 0x"))
        #expect(lines[1].hasSuffix(", 4) /* at 0x0 */ = 4 => 0x00000000"))
        #expect(lines[2] == "mmap(\(d), 0x0 /* BAR0+0x0 */, 4096, PROT_READ|PROT_WRITE) = \(TraceFormat.hex(a))")
        #expect(lines[3] == "mmap(\(d), 0x70000000000 /* CONFIG+0x0 */, 4096, PROT_READ) = -1 EINVAL (region 7 is not a BAR: only 0-5 can be mapped)")
        teardown(sub)
    }

    @Test func traceFileAndStderrOutput() throws {
        let path = "/tmp/swiftvfio-trace-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let sub = makeSubsystem()
        try populate(sub)
        try sub.tracer.setOutput(path: path)
        let g = try sub.open("/dev/vfio/26")
        try sub.close(g)
        sub.tracer.disable()
        _ = try sub.open("/dev/vfio/27")   // not traced
        let text = String(decoding: try TopologyFileSystem.readFile(path, limit: 1 << 20, source: path, tooLarge: "big"), as: UTF8.self)
        // A header line, then each call with the pid and thread id (docs/TRACE.md).
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let me = "[pid \(getpid()) tid \(svfio_gettid())] "
        #expect(lines.count == 5)
        #expect(lines.first?.hasPrefix("# swiftvfio trace: pid \(getpid()) (") == true)
        #expect(lines.first?.contains("), started 2") == true)
        #expect(Array(lines.dropFirst()) == [me + "open(\"/dev/vfio/26\", O_RDWR) = \(g)", me + "close(\(g)) = 0",
                                             me + "release(/dev/vfio/26)", ""])
        #expect(throws: Errno.ENOENT) { try sub.tracer.setOutput(path: "/nonexistent-dir/x.log") }
        teardown(sub)
    }

    @Test func environmentSelectsTheOutput() throws {
        let path = "/tmp/swiftvfio-trace-env-\(getpid()).log"
        defer { unlink(path) }
        let env = VFIOEnvironment { $0 == "SWIFTVFIO_TRACE" ? path : nil }
        let tracer = Tracer(output: env.diagnostics.trace)
        #expect(tracer.isEnabled)
        tracer.emit("hello")
        tracer.disable()
        let text = String(decoding: try TopologyFileSystem.readFile(path, limit: 1 << 20, source: path, tooLarge: "big"), as: UTF8.self)
        #expect(text.hasSuffix("\n[pid \(getpid()) tid \(svfio_gettid())] hello\n"))
        #expect(text.hasPrefix("# swiftvfio trace: "))
        let err = Tracer(output: VFIOEnvironment { $0 == "SWIFTVFIO_TRACE" ? "-" : nil }.diagnostics.trace)
        #expect(err.isEnabled)
        err.disable()
    }
}
