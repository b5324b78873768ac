// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

// A vfio-pci function opened the way a client opens it (group, type1 container, device fd), with
// region access helpers, for the BAR-kind and personality tests.

/// One vfio-pci function `0000:00:05.0` in group 5 with its device fd open.
struct ModelRig {
    let sub: VFIOSubsystem
    let group: Int32
    let container: Int32
    let device: Int32
    let vdev: VFIODevice

    init(_ identity: PCIDeviceIdentity) throws {
        sub = makeSubsystem()
        vdev = try #require(try sub.probePCIDevice(name: "0000:00:05.0", iommuGroupID: 5, driver: "vfio-pci",
                                                   identity: identity))
        group = try sub.open("/dev/vfio/5")
        container = try sub.containerWith(group)
        device = try sub.deviceFD(group, "0000:00:05.0")
    }

    var model: PCIDeviceModel { ModelPCIDriver.model(of: vdev)! }

    /// GET_REGION_INFO of `index` as (flags, size, offset).
    func region(_ index: UInt32) throws(Errno) -> (flags: UInt32, size: UInt64, offset: UInt64) {
        var buf = [UInt8](repeating: 0, count: 64)
        buf.replaceSubrange(0..<4, with: leBytes(64, 4))
        buf.replaceSubrange(8..<12, with: leBytes(UInt64(index), 4))
        let info = try buf.withUnsafeMutableBytes { (b) -> Result<PCIDeviceModel.RegionInfo, Errno> in
            Result { () throws(Errno) -> PCIDeviceModel.RegionInfo in
                _ = try sub.ioctl(device, UInt(VFIOIoctl.deviceGetRegionInfo), UInt(bitPattern: b.baseAddress))
                return b.loadUnaligned(as: PCIDeviceModel.RegionInfo.self)
            }
        }.get()
        return (info.flags, info.size, info.offset)
    }

    /// pread of `count` bytes at `offset` of region `index`.
    func read(_ index: Int, _ offset: Int, _ count: Int) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var pos = Int64(index) << 40 | Int64(offset)
        let n = try buf.withUnsafeMutableBytes { (b) -> Result<Int, Errno> in
            Result { () throws(Errno) -> Int in
                try sub.read(device, buffer: UInt(bitPattern: b.baseAddress), count: count, offset: &pos)
            }
        }.get()
        return Array(buf.prefix(n))
    }

    /// A little-endian register of `width` bytes read from region `index`.
    func reg(_ index: Int, _ offset: Int, _ width: Int) throws(Errno) -> UInt64 {
        leValue(try read(index, offset, width))
    }

    /// pwrite of `bytes` at `offset` of region `index`.
    @discardableResult
    func write(_ index: Int, _ offset: Int, _ bytes: [UInt8]) throws(Errno) -> Int {
        var pos = Int64(index) << 40 | Int64(offset)
        return try bytes.withUnsafeBytes { (b) -> Result<Int, Errno> in
            Result { () throws(Errno) -> Int in
                try sub.write(device, buffer: UInt(bitPattern: b.baseAddress), count: bytes.count, offset: &pos)
            }
        }.get()
    }

    /// A little-endian register write of `width` bytes to region `index`.
    func setReg(_ index: Int, _ offset: Int, _ width: Int, _ value: UInt64) throws(Errno) {
        try write(index, offset, leBytes(value, width))
    }

    /// Config space register access (region 7).
    func config(_ offset: Int, _ width: Int) throws(Errno) -> UInt64 { try reg(7, offset, width) }
    func setConfig(_ offset: Int, _ width: Int, _ value: UInt64) throws(Errno) { try setReg(7, offset, width, value) }

    /// mmap of `length` bytes of the device fd at `offset`.
    func mmap(_ offset: Int64, _ length: Int) throws(Errno) -> UInt {
        try sub.mmap(device, offset: offset, length: length, prot: PROT_READ | PROT_WRITE)
    }

    /// VFIO_DEVICE_SET_IRQS of `index` from vector 0 with `fds` (or `count` vectors and no data).
    func setIRQs(index: UInt32, flags: UInt32, fds: [Int32], count: Int? = nil) throws(Errno) {
        var buf = [UInt8](repeating: 0, count: 20 + 4 * fds.count)
        let header = [UInt64(buf.count), UInt64(flags), UInt64(index), 0, UInt64(count ?? fds.count)]
        for (i, v) in header.enumerated() { buf.replaceSubrange(4 * i..<4 * i + 4, with: leBytes(v, 4)) }
        for (i, fd) in fds.enumerated() {
            buf.replaceSubrange(20 + 4 * i..<24 + 4 * i, with: leBytes(UInt64(UInt32(bitPattern: fd)), 4))
        }
        _ = try buf.withUnsafeMutableBytes { (b) -> Result<Int, Errno> in
            Result { () throws(Errno) -> Int in
                try sub.ioctl(device, UInt(VFIOIoctl.deviceSetIRQs), UInt(bitPattern: b.baseAddress))
            }
        }.get()
    }

    func finish(sourceLocation: SourceLocation = #_sourceLocation) {
        teardown(sub, sourceLocation: sourceLocation)
    }
}

/// `count` little-endian bytes of `value`.
func leBytes(_ value: UInt64, _ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

/// The little-endian value of `bytes`.
func leValue(_ bytes: [UInt8]) -> UInt64 {
    bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
}
