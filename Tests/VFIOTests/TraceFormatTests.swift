// SPDX-License-Identifier: Apache-2.0
// The trace file's format (issue 18 item 5, docs/TRACE.md): a header line per opening, so runs
// appended to one file stay apart; pid and thread id on every line; the time with
// SWIFTVFIO_TRACE_TIME=1; every field of MAP_DMA (argsz included); a failed open of a model path.
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

private func readText(_ path: String) throws -> String {
    String(decoding: try TopologyFileSystem.readFile(path, limit: 1 << 20, source: path, tooLarge: "big"), as: UTF8.self)
}

@Suite struct TraceFormatTests {
    @Test func timeVariableMapsToTheDiagnostics() {
        #expect(VFIOEnvironment { $0 == "SWIFTVFIO_TRACE_TIME" ? "1" : nil }.diagnostics.traceTime)
        #expect(!VFIOEnvironment { $0 == "SWIFTVFIO_TRACE_TIME" ? "0" : nil }.diagnostics.traceTime)
        #expect(!VFIOEnvironment { _ in nil }.diagnostics.traceTime)
    }

    @Test func appendingRunsEachGetAHeaderAndTimesWhenAsked() throws {
        let path = "/tmp/swiftvfio-traceformat-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let first = Tracer(output: path)
        first.emit("one")
        first.disable()
        let second = Tracer(output: path, timestamps: true)
        second.emit("two")
        second.disable()
        let lines = try readText(path).split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.filter { $0.hasPrefix("# swiftvfio trace: pid \(getpid()) (") }.count == 2)
        #expect(lines[3].hasSuffix(", times local") == false)
        #expect(lines[2].hasSuffix(", times local"))
        let me = "[pid \(getpid()) tid \(svfio_gettid())] "
        #expect(lines[1] == me + "one")
        // "[pid P tid T] HH:MM:SS.uuuuuu two"
        #expect(lines[3].hasPrefix(me))
        let rest = Array(lines[3].dropFirst(me.count).utf8)
        #expect(rest.count == 15 + 1 + 3)
        let digits = [0, 1, 3, 4, 6, 7] + Array(9..<15)
        #expect(digits.allSatisfy { rest[$0] >= UInt8(ascii: "0") && rest[$0] <= UInt8(ascii: "9") })
        #expect(rest[2] == UInt8(ascii: ":") && rest[5] == UInt8(ascii: ":") && rest[8] == UInt8(ascii: "."))
        #expect(String(decoding: rest[15...], as: UTF8.self) == " two")
    }

    @Test func threadIDsDifferPerThread() throws {
        let path = "/tmp/swiftvfio-traceformat-tid-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let tracer = Tracer(output: path)
        tracer.emit("main")
        var thread = pthread_t()
        let box = Unmanaged.passRetained(tracer)
        pthread_create(&thread, nil, { arg in
            Unmanaged<Tracer>.fromOpaque(arg!).takeRetainedValue().emit("other")
            return nil
        }, box.toOpaque())
        pthread_join(thread, nil)
        tracer.disable()
        let lines = try readText(path).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        let tids = lines.dropFirst().compactMap { $0.split(separator: " ").dropFirst(3).first }
        #expect(tids.count == 2)
        #expect(tids.first != tids.last)
    }

    @Test func mapDMAShowsEveryFieldAndFailedOpensAreTraced() throws {
        let sub = makeSubsystem()
        try populate(sub)
        let lines = Locked<[String]>([])
        sub.tracer.setHandler { l in lines.withLock { $0.append(l) } }
        #expect(throws: Errno.ENOENT) { try sub.open("/dev/vfio/99") }
        let c = try sub.open("/dev/vfio/vfio")
        let g = try sub.open("/dev/vfio/26")
        try sub.setContainer(g, c)
        try sub.setIOMMU(c, Type1UAPI.extType1v2)
        var map = Type1DMAMapArg(argsz: 8, flags: 3, vaddr: 0x1001, iova: 0x2000, size: 0x1000)
        #expect(throws: Errno.EINVAL) {
            _ = try withUnsafeMutablePointer(to: &map) { (p) throws(Errno) -> Int in
                try sub.ioctl(c, UInt(VFIOIoctl.iommuMapDMA), UInt(bitPattern: p))
            }
        }
        sub.tracer.disable()
        let all = lines.withLock { $0 }
        #expect(all.first == "open(\"/dev/vfio/99\", O_RDWR) = -1 ENOENT (no such model node)")
        #expect(all.last == "ioctl(\(c), VFIO_IOMMU_MAP_DMA, {argsz=8, flags=R|W, vaddr=0x1001, iova=0x2000, size=0x1000}) = -1 EINVAL (argsz 8 < minsz 32)")
        teardown(sub)
    }
}
