// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO

// The built-in vfio-pci device model: the answers QEMU 7.2's realize path depends on, as v6.3
// vfio-pci gives them (see the call list at the top of PCIDeviceModel.swift).

/// A subsystem with one vfio-pci function `0000:06:0d.0` in group 26, a type1 container, and the
/// device fd open.
private struct Rig {
    let sub: VFIOSubsystem
    let group: Int32
    let container: Int32
    let device: Int32
    let vdev: VFIODevice

    init(_ identity: PCIDeviceIdentity = PCIDeviceIdentity()) throws {
        sub = makeSubsystem()
        vdev = try #require(try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci",
                                                   identity: identity))
        group = try sub.open("/dev/vfio/26")
        container = try sub.containerWith(group)
        device = try sub.deviceFD(group, "0000:06:0d.0")
    }

    var model: PCIDeviceModel { ModelPCIDriver.model(of: vdev)! }

    func ioctl<T>(_ cmd: UInt32, _ value: inout T) throws(Errno) -> Int {
        try withUnsafeMutablePointer(to: &value) { (p) throws(Errno) -> Int in
            try sub.ioctl(device, UInt(cmd), UInt(bitPattern: p))
        }
    }

    func regionInfo(_ index: UInt32, argsz: UInt32 = 32) throws(Errno) -> PCIDeviceModel.RegionInfo {
        var r = PCIDeviceModel.RegionInfo(argsz: argsz, flags: 0, index: index, capOffset: 0, size: 0, offset: 0)
        _ = try ioctl(VFIOIoctl.deviceGetRegionInfo, &r)
        return r
    }

    /// GET_REGION_INFO into a buffer of `argsz` bytes (room for a cap chain).
    func regionInfoRaw(_ index: UInt32, argsz: UInt32) throws(Errno) -> PCIDeviceModel.RegionInfo {
        var buf = [UInt8](repeating: 0, count: Int(argsz))
        buf.replaceSubrange(0..<4, with: bytes32(argsz))
        buf.replaceSubrange(8..<12, with: bytes32(index))
        return try buf.withUnsafeMutableBytes { (b) -> Result<PCIDeviceModel.RegionInfo, Errno> in
            Result { () throws(Errno) -> PCIDeviceModel.RegionInfo in
                _ = try sub.ioctl(device, UInt(VFIOIoctl.deviceGetRegionInfo), UInt(bitPattern: b.baseAddress))
                return b.loadUnaligned(as: PCIDeviceModel.RegionInfo.self)
            }
        }.get()
    }

    func irqInfo(_ index: UInt32) throws(Errno) -> PCIDeviceModel.IRQInfo {
        var r = PCIDeviceModel.IRQInfo(argsz: 16, flags: 0, index: index, count: 0)
        _ = try ioctl(VFIOIoctl.deviceGetIRQInfo, &r)
        return r
    }

    /// pread of `count` bytes at `offset`.
    func pread(_ count: Int, at offset: Int64) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var pos = offset
        let n = try buf.withUnsafeMutableBytes { (b) -> Result<Int, Errno> in
            Result { () throws(Errno) -> Int in try sub.read(device, buffer: UInt(bitPattern: b.baseAddress), count: count, offset: &pos) }
        }.get()
        return Array(buf.prefix(n))
    }

    @discardableResult
    func pwrite(_ bytes: [UInt8], at offset: Int64) throws(Errno) -> Int {
        var pos = offset
        return try bytes.withUnsafeBytes { (b) -> Result<Int, Errno> in
            Result { () throws(Errno) -> Int in try sub.write(device, buffer: UInt(bitPattern: b.baseAddress), count: bytes.count, offset: &pos) }
        }.get()
    }

    func config32(_ at: Int) throws(Errno) -> UInt32 { le32(try pread(4, at: 7 << 40 | Int64(at))) }
    func config16(_ at: Int) throws(Errno) -> UInt16 { UInt16(le32(try pread(2, at: 7 << 40 | Int64(at)) + [0, 0]) & 0xffff) }
    func writeConfig32(_ at: Int, _ v: UInt32) throws(Errno) { try pwrite(bytes32(v), at: 7 << 40 | Int64(at)) }

    /// SET_IRQS with eventfds (`-1` entries allowed) or no data.
    func setIRQs(index: UInt32, flags: UInt32, start: UInt32 = 0, count: UInt32, fds: [Int32] = [], argsz: UInt32? = nil) throws(Errno) {
        var buf = [UInt8](repeating: 0, count: 20 + 4 * fds.count)
        let header = [argsz ?? UInt32(buf.count), flags, index, start, count]
        for (i, v) in header.enumerated() { buf.replaceSubrange(4 * i..<4 * i + 4, with: bytes32(v)) }
        for (i, fd) in fds.enumerated() { buf.replaceSubrange(20 + 4 * i..<24 + 4 * i, with: bytes32(UInt32(bitPattern: fd))) }
        _ = try buf.withUnsafeMutableBytes { (b) -> Result<Int, Errno> in
            Result { () throws(Errno) -> Int in try sub.ioctl(device, UInt(VFIOIoctl.deviceSetIRQs), UInt(bitPattern: b.baseAddress)) }
        }.get()
    }

    func finish(expectWarnings: Int = 0, sourceLocation: SourceLocation = #_sourceLocation) {
        teardown(sub, expectWarnings: expectWarnings, sourceLocation: sourceLocation)
    }
}

private func le32(_ b: [UInt8]) -> UInt32 {
    b.prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
}
private func bytes32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

private let dataNone: UInt32 = 1, dataBool: UInt32 = 2, dataEventfd: UInt32 = 4
private let actionMask: UInt32 = 8, actionUnmask: UInt32 = 16, actionTrigger: UInt32 = 32

/// An eventfd owned by a test (non-blocking, so reading an unsignalled one gives 0).
private final class EventFD {
    let fd: Int32
    init() { fd = svfio_eventfd(0, 1) }
    /// The counter since the last read.
    func take() -> Int64 { Int64(svfio_eventfd_read(fd)) }
    deinit { close(fd) }
}

/// Whether `fd` is an open eventfd (the model's duplicates are closed when released).
private func isOpenEventfd(_ fd: Int32) -> Bool { svfio_fd_is_eventfd(fd) == 1 }

@Suite struct PCIDeviceModelTests {
    // MARK: GET_INFO

    @Test func deviceInfoFollowsTheV63ArgszRule() throws {
        let r = try Rig()
        // argsz 20 (QEMU 7.2's struct): 20 bytes written, cap_offset 0.
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (20, 0xdead, 0, 0, 0xffff_ffff, 0xffff_ffff)
        _ = try r.ioctl(VFIOIoctl.deviceGetInfo, &info)
        #expect(info.1 == 3)               // PCI | RESET
        #expect(info.2 == 9 && info.3 == 5)
        #expect(info.4 == 0)               // cap_offset written
        #expect(info.5 == 0xffff_ffff)     // pad untouched
        // argsz 16: only 16 bytes written.
        info = (16, 0, 0, 0, 0xffff_ffff, 0)
        _ = try r.ioctl(VFIOIoctl.deviceGetInfo, &info)
        #expect(info.4 == 0xffff_ffff)
        info = (15, 0, 0, 0, 0, 0)
        #expect(throws: Errno.EINVAL) { _ = try r.ioctl(VFIOIoctl.deviceGetInfo, &info) }
        #expect(throws: Errno.EFAULT) { try r.sub.ioctl(r.device, UInt(VFIOIoctl.deviceGetInfo), 8) }
        #expect(throws: Errno.ENOTTY) { try r.sub.ioctl(r.device, 0x3B74, 0) }   // IOEVENTFD: not modelled
        r.finish()
    }

    // MARK: GET_REGION_INFO

    @Test func regionInfoForEveryIndex() throws {
        let r = try Rig(PCIDeviceIdentity(bars: [4096, 0, 1 << 20, 0, 16, 0]))
        let bar0 = try r.regionInfo(0)
        #expect(bar0.size == 4096 && bar0.offset == 0 && bar0.flags == 0x7 && bar0.capOffset == 0)
        let bar1 = try r.regionInfo(1)
        #expect(bar1.size == 0 && bar1.flags == 0 && bar1.offset == 1 << 40)
        #expect(try r.regionInfo(2).size == 1 << 20)
        #expect(try r.regionInfo(4).size == 16)
        #expect(try r.regionInfo(4).flags == 0x7)   // sub-page BARs are mmappable (page-aligned start)
        let rom = try r.regionInfo(6)
        #expect(rom.size == 0 && rom.flags == 0 && rom.offset == 6 << 40)
        let config = try r.regionInfo(7)
        #expect(config.size == 4096 && config.offset == 7 << 40 && config.flags == 0x3)
        #expect(throws: Errno.EINVAL) { _ = try r.regionInfo(8) }    // VGA: none
        #expect(throws: Errno.EINVAL) { _ = try r.regionInfo(9) }
        #expect(throws: Errno.EINVAL) { _ = try r.regionInfo(0, argsz: 31) }
        r.finish()
    }

    @Test func msixBARCarriesTheMappableCapability() throws {
        let r = try Rig(PCIDeviceIdentity(bars: [16384], msixVectors: 8))
        // argsz 32: CAPS flag, argsz grows to 40, cap_offset 0 (QEMU retries with 40).
        let short = try r.regionInfo(0)
        #expect(short.flags == 0xf && short.argsz == 40 && short.capOffset == 0)
        var buf = [UInt8](repeating: 0xee, count: 48)
        buf.replaceSubrange(0..<4, with: bytes32(40))
        buf.replaceSubrange(8..<12, with: bytes32(0))
        try buf.withUnsafeMutableBytes { b in
            _ = try r.sub.ioctl(r.device, UInt(VFIOIoctl.deviceGetRegionInfo), UInt(bitPattern: b.baseAddress))
        }
        #expect(le32(Array(buf[12..<16])) == 32)                       // cap_offset
        #expect(Array(buf[32..<40]) == [3, 0, 1, 0, 0, 0, 0, 0])        // MSIX_MAPPABLE v1, next 0
        #expect(Array(buf[40..<48]) == [UInt8](repeating: 0xee, count: 8))
        r.finish()
    }

    // MARK: Config space

    @Test func configHeaderIsAValidType0Header() throws {
        let id = PCIDeviceIdentity(vendorID: 0x8086, deviceID: 0x10d3, classCode: 0x020000)
        let r = try Rig(id)
        #expect(try r.config32(0) == 0x10d3_8086)
        #expect(try r.config16(4) == 0x0002)                  // memory decoding on after enable
        #expect(try r.config16(6) & 0x10 != 0)                // capability list
        #expect(try r.config32(8) == 0x0200_0000)             // class 02/00/00, revision 0
        #expect(try r.pread(1, at: 7 << 40 | 0x0e) == [0])    // header type 0
        #expect(try r.config32(0x2c) == 0x10d3_8086)          // subsystem ids
        #expect(try r.pread(1, at: 7 << 40 | 0x3d) == [1])    // INTA
        // The capability chain: PCIe (FLR) -> MSI -> end.
        let first = Int(try r.pread(1, at: 7 << 40 | 0x34)[0])
        #expect(first == 0x40)
        #expect(try r.pread(2, at: 7 << 40 | 0x40) == [0x10, 0x80])
        #expect(try r.config32(0x44) & (1 << 28) != 0)
        #expect(try r.pread(2, at: 7 << 40 | 0x80) == [0x05, 0x00])
        // Every 4-byte read of the whole space works; past the end is EFAULT.
        for at in stride(from: 0, to: 4096, by: 4) { _ = try r.config32(at) }
        #expect(try r.pread(4096, at: 7 << 40).count == 4096)
        #expect(throws: Errno.EFAULT) { _ = try r.pread(4, at: 7 << 40 | 4094) }
        #expect(throws: Errno.EFAULT) { _ = try r.pread(1, at: 7 << 40 | 4096) }
        #expect(try r.pread(0, at: 7 << 40 | 9999) == [])
        r.finish()
    }

    @Test func conventionalFunctionHas256BytesAndNoERR() throws {
        let r = try Rig(PCIDeviceIdentity(pcie: false))
        #expect(try r.regionInfo(7).size == 256)
        #expect(try r.pread(1, at: 7 << 40 | 0x34) == [0x80])   // MSI first
        #expect(throws: Errno.EINVAL) { _ = try r.irqInfo(3) }   // ERR: not PCIe
        #expect(throws: Errno.EFAULT) { _ = try r.pread(4, at: 7 << 40 | 256) }
        let d = EventFD()
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 3, flags: dataEventfd | actionTrigger, count: 1, fds: [d.fd]) }
        r.finish()
    }

    @Test func commandRegisterAndReadOnlyBits() throws {
        let r = try Rig()
        try r.pwrite([0x07, 0x05], at: 7 << 40 | 4)                // IO|MEM|MASTER|SERR|INTX_DISABLE
        #expect(try r.config16(4) == 0x0507)
        try r.pwrite([0xff, 0xff], at: 7 << 40 | 4)
        #expect(try r.config16(4) == 0x0547)                       // only the writable bits
        try r.writeConfig32(0, 0xffff_ffff)                        // ids are read-only
        #expect(try r.config32(0) == 0x0005_1b36)
        try r.pwrite([0x0b], at: 7 << 40 | 0x3c)                   // interrupt line
        #expect(try r.pread(1, at: 7 << 40 | 0x3c) == [0x0b])
        try r.pwrite([0], at: 7 << 40 | 0x3d)                      // interrupt pin: read-only
        #expect(try r.pread(1, at: 7 << 40 | 0x3d) == [1])
        r.finish()
    }

    @Test func barSizingAsQEMUAndTheGuestDoIt() throws {
        let r = try Rig(PCIDeviceIdentity(bars: [4096, 0, 1 << 20, 0, 0, 0]))
        // QEMU's vfio_bar_prepare reads the flag bits of each present BAR.
        #expect(try r.config32(0x10) & 0xf == 0)                   // 32-bit memory
        let host = try r.config32(0x10)
        #expect(host != 0 && host & 0xfff == 0)                    // a (fake) host address
        try r.writeConfig32(0x10, 0xffff_ffff)
        #expect(try r.config32(0x10) == 0xffff_f000)               // 4 KiB
        try r.writeConfig32(0x18, 0xffff_ffff)
        #expect(try r.config32(0x18) == 0xfff0_0000)               // 1 MiB
        try r.writeConfig32(0x14, 0xffff_ffff)
        #expect(try r.config32(0x14) == 0)                         // absent
        try r.writeConfig32(0x10, 0xfebf_1000)
        #expect(try r.config32(0x10) == 0xfebf_1000)
        // vfio_pci_post_reset zeroes every BAR register; each write is 4 bytes.
        for n in 0..<6 { #expect(try r.pwrite(bytes32(0), at: 7 << 40 | Int64(0x10 + 4 * n)) == 4) }
        #expect(try r.config32(0x10) == 0)
        // ROM sizing without a ROM: reads back 0 → QEMU skips the ROM silently.
        let orig = try r.config32(0x30)
        try r.writeConfig32(0x30, 0xffff_f800)
        #expect(try r.config32(0x30) == 0)
        try r.writeConfig32(0x30, orig)
        #expect(throws: Errno.EINVAL) { _ = try r.pread(4, at: 6 << 40) }
        r.finish()
    }

    @Test func optionROM() throws {
        let r = try Rig(PCIDeviceIdentity(vendorID: 0x8086, deviceID: 0x10d3, romSize: 65536))
        try r.writeConfig32(0x30, 0xffff_f800)
        #expect(try r.config32(0x30) == 0xffff_0000)               // 64 KiB
        let info = try r.regionInfo(6)
        #expect(info.size == 65536 && info.flags == 1)
        let rom = try r.pread(65536, at: 6 << 40)
        #expect(rom.count == 65536 && rom[0] == 0x55 && rom[1] == 0xaa)
        #expect(Array(rom[0x1c..<0x24]) == [0x50, 0x43, 0x49, 0x52, 0x86, 0x80, 0xd3, 0x10])
        #expect(throws: Errno.EINVAL) { try r.pwrite([0], at: 6 << 40) }   // the ROM is read-only
        #expect(throws: Errno.EINVAL) { _ = try r.pread(1, at: 6 << 40 | 65536) }
        r.finish()
    }

    // MARK: BARs: pread/pwrite and mmap share the memfd

    /// DPDK's way: a PROT_NONE reservation, the BAR mapped MAP_SHARED|MAP_FIXED over it, unmapped
    /// and mapped again; the model places the mapping and the BAR keeps its bytes.
    @Test func mmapPlacedOverAReservation() throws {
        let r = try Rig()
        let reservation = try #require(mmap(nil, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        let at = UInt(bitPattern: reservation)
        let fixed = MmapPlacement(address: at, flags: MAP_SHARED | MAP_FIXED)
        #expect(try r.sub.mmap(r.device, offset: 0, length: 4096, prot: PROT_READ | PROT_WRITE, placement: fixed) == at)
        reservation.storeBytes(of: 0x5a, toByteOffset: 8, as: UInt8.self)
        #expect(try r.pread(1, at: 8) == [0x5a])
        munmap(reservation, 4096)
        #expect(try r.sub.mmap(r.device, offset: 0, length: 4096, prot: PROT_READ, placement: fixed) == at)
        #expect(reservation.load(fromByteOffset: 8, as: UInt8.self) == 0x5a)
        // MAP_FIXED_NOREPLACE over that mapping: the host's EEXIST, and the mapping stays.
        let noReplace = MmapPlacement(address: at, flags: MAP_SHARED | MAP_FIXED_NOREPLACE)
        #expect(throws: Errno.EEXIST) { _ = try r.sub.mmap(r.device, offset: 0, length: 4096, prot: PROT_READ, placement: noReplace) }
        #expect(reservation.load(fromByteOffset: 8, as: UInt8.self) == 0x5a)
        // vfio-pci requires VM_SHARED.
        #expect(throws: Errno.EINVAL) {
            _ = try r.sub.mmap(r.device, offset: 0, length: 4096, prot: PROT_READ, placement: MmapPlacement(flags: MAP_PRIVATE))
        }
        // A MAP_FIXED the driver refuses (past the BAR) leaves the range unmapped, as mmap_region().
        let second = reservation + 4096
        let past = MmapPlacement(address: UInt(bitPattern: second), flags: MAP_SHARED | MAP_FIXED)
        #expect(throws: Errno.EINVAL) { _ = try r.sub.mmap(r.device, offset: 4096, length: 4096, prot: PROT_READ, placement: past) }
        var vec: UInt8 = 0
        #expect(mincore(second, 4096, &vec) == -1 && errno == ENOMEM)
        munmap(reservation, 8192)
        r.finish()
    }

    @Test func barAccessAndMmapShareMemory() throws {
        let r = try Rig()
        let addr = try r.sub.mmap(r.device, offset: 0, length: 4096, prot: PROT_READ | PROT_WRITE)
        let p = try #require(UnsafeMutableRawPointer(bitPattern: addr))
        p.storeBytes(of: 0xcafe_f00d, toByteOffset: 16, as: UInt32.self)
        #expect(le32(try r.pread(4, at: 16)) == 0xcafe_f00d)
        try r.pwrite(bytes32(0x1234_5678), at: 32)
        #expect(p.load(fromByteOffset: 32, as: UInt32.self) == 0x1234_5678)
        #expect(r.model.barMemory(0)?.load(fromByteOffset: 32, as: UInt32.self) == 0x1234_5678)
        // A second mapping shows the same bytes.
        let addr2 = try r.sub.mmap(r.device, offset: 0, length: 4096, prot: PROT_READ)
        #expect(UnsafeRawPointer(bitPattern: addr2)!.load(fromByteOffset: 16, as: UInt32.self) == 0xcafe_f00d)
        // Reads are clipped to the BAR; past the end EINVAL; absent BARs and non-BAR regions refuse.
        #expect(try r.pread(8, at: 4092).count == 4)
        #expect(throws: Errno.EINVAL) { _ = try r.pread(4, at: 4096) }
        #expect(throws: Errno.EINVAL) { _ = try r.pread(4, at: 1 << 40) }
        #expect(throws: Errno.EINVAL) { _ = try r.pread(4, at: 8 << 40) }   // VGA
        #expect(throws: Errno.EINVAL) { _ = try r.sub.mmap(r.device, offset: 0, length: 8192, prot: PROT_READ) }
        #expect(throws: Errno.EINVAL) { _ = try r.sub.mmap(r.device, offset: 1 << 40, length: 4096, prot: PROT_READ) }
        #expect(throws: Errno.EINVAL) { _ = try r.sub.mmap(r.device, offset: 7 << 40, length: 4096, prot: PROT_READ) }
        // Memory decoding off: pread/pwrite of the BAR is EIO (the mapping stays).
        try r.pwrite([0, 0], at: 7 << 40 | 4)
        #expect(throws: Errno.EIO) { _ = try r.pread(4, at: 0) }
        #expect(throws: Errno.EIO) { try r.pwrite([1], at: 0) }
        // The caller owns its mappings, as after a real mmap.
        munmap(p, 4096)
        munmap(UnsafeMutableRawPointer(bitPattern: addr2), 4096)
        r.finish()
    }

    @Test func msixTableIsExcludedFromReadWrite() throws {
        let r = try Rig(PCIDeviceIdentity(bars: [8192], msixVectors: 4))
        // Table: BAR0 0..<64, PBA at 4096; the capability says so.
        #expect(try r.pread(2, at: 7 << 40 | 0xa0) == [0x11, 0x00])
        #expect(try r.config16(0xa2) == 3)
        #expect(try r.config32(0xa4) == 0)
        #expect(try r.config32(0xa8) == 4096)
        try r.pwrite([1, 2, 3, 4], at: 0)
        #expect(try r.pread(4, at: 0) == [0xff, 0xff, 0xff, 0xff])
        #expect(r.model.barMemory(0)?.load(as: UInt32.self) == 0)
        try r.pwrite([9], at: 64)
        #expect(try r.pread(1, at: 64) == [9])
        r.finish()
    }

    // MARK: IRQs

    @Test func irqInfoForEveryIndex() throws {
        let r = try Rig(PCIDeviceIdentity(msiVectors: 4, msixVectors: 16))
        let intx = try r.irqInfo(0)
        #expect(intx.flags == 0x7 && intx.count == 1)
        #expect(try r.irqInfo(1).count == 4)
        #expect(try r.irqInfo(1).flags == 0x9)
        #expect(try r.irqInfo(2).count == 16)
        #expect(try r.irqInfo(3).count == 1)
        #expect(try r.irqInfo(4).count == 1)
        #expect(throws: Errno.EINVAL) { _ = try r.irqInfo(5) }
        r.finish()
    }

    @Test func intxTriggerAutomaskAndUnmask() throws {
        let r = try Rig()
        let e = EventFD()
        try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [e.fd])
        #expect(r.model.interruptMode == "intx" && r.model.armedVectors == 1)
        let held = r.model.triggerFDs
        #expect(held.count == 1 && held[0] != e.fd && isOpenEventfd(held[0]))   // the model's own duplicate
        // What the model holds is counted by its host seam, not by probing the number afterwards:
        // a parallel test may reuse a closed number at once.
        let holding = r.sub.host.live.fds
        #expect(r.model.raise(index: 0))
        #expect(e.take() == 1)
        #expect(r.model.intxIsMasked)
        #expect(try r.config16(6) & 0x8 != 0)                  // interrupt status
        #expect(!r.model.raise(index: 0))                      // masked: held pending
        #expect(e.take() == 0)
        // UNMASK with one pending re-sends it (still masked); the next UNMASK really unmasks.
        try r.setIRQs(index: 0, flags: dataNone | actionUnmask, count: 1)
        #expect(e.take() == 1 && r.model.intxIsMasked)
        try r.setIRQs(index: 0, flags: dataNone | actionUnmask, count: 1)
        #expect(!r.model.intxIsMasked)
        // Loopback trigger (DATA_NONE) and MASK.
        try r.setIRQs(index: 0, flags: dataNone | actionTrigger, count: 1)
        #expect(e.take() == 1)
        try r.setIRQs(index: 0, flags: dataNone | actionMask, count: 1)
        #expect(r.model.intxIsMasked)
        // Disable (count 0): the duplicate is closed.
        try r.setIRQs(index: 0, flags: dataNone | actionTrigger, count: 0)
        #expect(r.model.interruptMode == "none")
        #expect(r.model.triggerFDs.isEmpty && r.sub.host.live.fds == holding - 1)
        // Not an eventfd: EINVAL; a closed fd: EBADF; MASK without INTx enabled: EINVAL.
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [r.device]) }
        #expect(throws: Errno.EBADF) { try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [9999]) }
        #expect(r.model.interruptMode == "none")
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 0, flags: dataNone | actionMask, count: 1) }
        r.finish()
    }

    @Test func setIRQsValidation() throws {
        let r = try Rig()
        let e = EventFD()
        // argsz too small for the data, two data types, start past count, unknown flags, bad index.
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [e.fd], argsz: 20) }
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 0, flags: dataNone | dataBool | actionTrigger, count: 1) }
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 0, flags: dataNone | actionTrigger, start: 1, count: 0) }
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 0, flags: dataNone | actionTrigger | 0x40, count: 1) }
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 5, flags: dataNone | actionTrigger, count: 0) }
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 2, flags: dataNone | actionTrigger, count: 0) }   // no MSI-X
        // Two actions at once: no handler, ENOTTY.
        #expect(throws: Errno.ENOTTY) { try r.setIRQs(index: 0, flags: dataNone | actionMask | actionUnmask, count: 1) }
        // REQ with MASK: ENOTTY.
        #expect(throws: Errno.ENOTTY) { try r.setIRQs(index: 4, flags: dataNone | actionMask, count: 1) }
        #expect(throws: Errno.EFAULT) { try r.sub.ioctl(r.device, UInt(VFIOIoctl.deviceSetIRQs), 16) }
        r.finish()
    }

    @Test func msiAndMSIXVectors() throws {
        let r = try Rig(PCIDeviceIdentity(bars: [16384], msiVectors: 2, msixVectors: 8))
        let a = EventFD(), b = EventFD()
        try r.setIRQs(index: 1, flags: dataEventfd | actionTrigger, count: 2, fds: [a.fd, b.fd])
        #expect(r.model.interruptMode == "msi" && r.model.armedVectors == 2)
        #expect(r.model.raise(index: 1, vector: 1))
        #expect(b.take() == 1 && a.take() == 0)
        // While MSI is on, INTx and MSI-X cannot be enabled.
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 2, flags: dataEventfd | actionTrigger, count: 1, fds: [a.fd]) }
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [a.fd]) }
        try r.setIRQs(index: 1, flags: dataNone | actionTrigger, count: 0)
        // QEMU's MSI-X dance: enable vector 0, release it with fd -1, disable, re-enable with more.
        try r.setIRQs(index: 2, flags: dataEventfd | actionTrigger, count: 1, fds: [a.fd])
        try r.setIRQs(index: 2, flags: dataEventfd | actionTrigger, start: 0, count: 1, fds: [-1])
        #expect(r.model.interruptMode == "msix" && r.model.armedVectors == 0)
        #expect(throws: Errno.EINVAL) { try r.setIRQs(index: 2, flags: dataEventfd | actionTrigger, start: 1, count: 1, fds: [b.fd]) }
        try r.setIRQs(index: 2, flags: dataNone | actionTrigger, count: 0)
        try r.setIRQs(index: 2, flags: dataEventfd | actionTrigger, count: 4, fds: [a.fd, -1, -1, b.fd])
        #expect(r.model.armedVectors == 2)
        #expect(r.model.raise(index: 2, vector: 3) && b.take() == 1)
        #expect(!r.model.raise(index: 2, vector: 1))
        // MSI-X MASK/UNMASK are accepted and do nothing (the kernel's "XXX").
        try r.setIRQs(index: 2, flags: dataNone | actionMask, count: 1)
        // A bad fd in a block unwinds the whole enable.
        try r.setIRQs(index: 2, flags: dataNone | actionTrigger, count: 0)
        #expect(throws: Errno.EBADF) { try r.setIRQs(index: 2, flags: dataEventfd | actionTrigger, count: 2, fds: [a.fd, 9999]) }
        #expect(r.model.interruptMode == "none" && r.model.armedVectors == 0)
        r.finish()
    }

    @Test func errAndReqTriggersAndTheRequestOp() throws {
        let r = try Rig()
        let err = EventFD(), req = EventFD()
        try r.setIRQs(index: 3, flags: dataEventfd | actionTrigger, count: 1, fds: [err.fd])
        try r.setIRQs(index: 4, flags: dataEventfd | actionTrigger, count: 1, fds: [req.fd])
        #expect(r.model.errArmed && r.model.reqArmed)
        #expect(r.model.raise(index: 3) && err.take() == 1)
        try r.setIRQs(index: 4, flags: dataNone | actionTrigger, count: 1)   // loopback
        #expect(req.take() == 1)
        // fd -1 releases (QEMU's vfio_unregister_req_notifier).
        try r.setIRQs(index: 3, flags: dataEventfd | actionTrigger, count: 1, fds: [-1])
        #expect(!r.model.errArmed)
        // Hot-unplug while open: unregister calls request(), relayed on REQ; the user then closes.
        let vdev = r.vdev, sub = r.sub
        let done = EventFD()
        let doneFD = done.fd
        _ = Thread { sub.removeVFIODevice(vdev); _ = svfio_eventfd_signal(doneFD) }
        var seen: Int64 = 0
        for _ in 0..<400 where seen == 0 { usleep(5000); seen = req.take() }
        #expect(seen >= 1)
        try sub.close(r.device)
        var finished: Int64 = 0
        for _ in 0..<400 where finished == 0 { usleep(5000); finished = done.take() }
        #expect(finished == 1)
        #expect(ModelPCIDriver.state(of: vdev)?.requests.first == 0)
        r.finish()
    }

    @Test func closeDeviceReleasesEveryTrigger() throws {
        let r = try Rig()
        let e = EventFD()
        try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [e.fd])
        try r.setIRQs(index: 4, flags: dataEventfd | actionTrigger, count: 1, fds: [e.fd])
        let held = r.model.triggerFDs
        #expect(held.count == 2 && held.allSatisfy(isOpenEventfd))
        let holding = r.sub.host.live.fds   // counted by the seam: a closed number may be reused at once
        try r.sub.close(r.device)
        #expect(r.model.triggerFDs.isEmpty && r.sub.host.live.fds == holding - 2)
        #expect(isOpenEventfd(e.fd))
        #expect(r.model.interruptMode == "none" && !r.model.reqArmed)
        // Reopened: a fresh config space (memory decoding back on).
        let d = try r.sub.deviceFD(r.group, "0000:06:0d.0")
        try r.sub.close(d)
        #expect(ModelPCIDriver.state(of: r.vdev)?.openDeviceCalls == 2)
        r.finish()
    }

    @Test func resetSucceeds() throws {
        let r = try Rig()
        #expect(try r.sub.ioctl(r.device, UInt(VFIOIoctl.deviceReset)) == 0)
        #expect(r.model.resets == 1)
        r.finish()
    }

    // MARK: Peer-to-peer DMA of the BAR mmap

    @Test func mapDMAOfTheBARMmapPasses() throws {
        let r = try Rig(PCIDeviceIdentity(bars: [1 << 16]))
        let addr = try r.sub.mmap(r.device, offset: 0, length: 1 << 16, prot: PROT_READ | PROT_WRITE)
        // /proc/self/maps shows it as a shared memfd mapping: "rw-s ... /memfd:vfio-bar0:...".
        let maps = String(decoding: Type1ProcSelfMaps.readMaps() ?? [], as: UTF8.self)
        let line = maps.split(separator: "\n").first { $0.hasPrefix(String(addr, radix: 16) + "-") }
        #expect(line?.contains("rw-s") == true)
        #expect(line?.contains("memfd:vfio-bar0") == true)
        var map = Type1DMAMapArg(flags: 3, vaddr: UInt64(addr), iova: 0x1_0000_0000, size: 1 << 16)
        _ = try withUnsafeMutablePointer(to: &map) { (p) throws(Errno) -> Int in
            try r.sub.ioctl(r.container, UInt(VFIOIoctl.iommuMapDMA), UInt(bitPattern: p))
        }
        // A read-only mapping of it can be mapped for device reads only.
        let ro = try r.sub.mmap(r.device, offset: 0, length: 4096, prot: PROT_READ)
        var roMap = Type1DMAMapArg(flags: 3, vaddr: UInt64(ro), iova: 0x2_0000_0000, size: 4096)
        #expect(throws: Errno.EFAULT) {
            _ = try withUnsafeMutablePointer(to: &roMap) { (p) throws(Errno) -> Int in
                try r.sub.ioctl(r.container, UInt(VFIOIoctl.iommuMapDMA), UInt(bitPattern: p))
            }
        }
        roMap.flags = 1
        _ = try withUnsafeMutablePointer(to: &roMap) { (p) throws(Errno) -> Int in
            try r.sub.ioctl(r.container, UInt(VFIOIoctl.iommuMapDMA), UInt(bitPattern: p))
        }
        munmap(UnsafeMutableRawPointer(bitPattern: addr), 1 << 16)
        munmap(UnsafeMutableRawPointer(bitPattern: ro), 4096)
        r.finish()
    }

    // MARK: QEMU 7.2's realize, call by call

    @Test func qemuRealizeSequence() throws {
        let r = try Rig(PCIDeviceIdentity(bars: [4096], msiVectors: 1, msixVectors: 4))
        // vfio_get_device
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (20, 0, 0, 0, 0)
        _ = try r.ioctl(VFIOIoctl.deviceGetInfo, &info)
        #expect(info.1 & 2 != 0 && info.2 >= 8 && info.3 >= 3)
        // vfio_populate_device: BARs with the argsz retry, config, ERR.
        var mmaps: [(index: Int, size: UInt64)] = []
        for i in 0..<6 {
            var reg = try r.regionInfo(UInt32(i))
            if reg.argsz > 32 { reg = try r.regionInfoRaw(UInt32(i), argsz: reg.argsz) }
            if reg.size > 0 && reg.flags & 4 != 0 { mmaps.append((i, reg.size)) }
        }
        let config = try r.regionInfo(7)
        #expect(try r.irqInfo(3).count == 1)
        // Config copy, ROM sizing, BAR types, MSI-X early setup.
        let space = try r.pread(Int(min(4096, config.size)), at: Int64(config.offset))
        #expect(space.count == 4096)
        let orig = try r.config32(0x30)
        try r.writeConfig32(0x30, 0xffff_f800)
        #expect(try r.config32(0x30) & 0xffff_f800 == 0)
        try r.writeConfig32(0x30, orig)
        #expect(try r.config32(0x10) & 1 == 0)
        var pos = Int(space[0x34])
        var found: [UInt8: Int] = [:]
        while pos != 0 { found[space[pos]] = pos; pos = Int(space[pos + 1]) }
        let msix = try #require(found[0x11])
        let table = try r.config32(msix + 4), pba = try r.config32(msix + 8)
        #expect(Int((try r.config16(msix + 2) & 0x7ff) + 1) == 4)
        #expect(UInt64(pba & ~7) < 4096 && table & 7 == 0)
        // vfio_bars_register: mmap each BAR.
        for m in mmaps {
            let a = try r.sub.mmap(r.device, offset: Int64(m.index) << 40, length: Int(m.size), prot: PROT_READ | PROT_WRITE)
            munmap(UnsafeMutableRawPointer(bitPattern: a), Int(m.size))
        }
        // MSI capability flags, interrupt pin, INTx enable, ERR and REQ notifiers.
        let msi = try #require(found[0x05])
        #expect(try r.config16(msi + 2) & 0x80 != 0)
        #expect(try r.pread(1, at: 7 << 40 | 0x3d) == [1])
        let intx = EventFD(), err = EventFD(), req = EventFD()
        try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [intx.fd])
        try r.setIRQs(index: 3, flags: dataEventfd | actionTrigger, count: 1, fds: [err.fd])
        #expect(try r.irqInfo(4).count >= 1)
        try r.setIRQs(index: 4, flags: dataEventfd | actionTrigger, count: 1, fds: [req.fd])
        // vfio_pci_reset: INTx off, command cleared, RESET, INTx on, BARs zeroed.
        try r.setIRQs(index: 0, flags: dataNone | actionTrigger, count: 0)
        let cmd = try r.config16(4) & ~UInt16(0x0407)
        try r.pwrite([UInt8(cmd & 0xff), UInt8(cmd >> 8)], at: 7 << 40 | 4)
        #expect(try r.sub.ioctl(r.device, UInt(VFIOIoctl.deviceReset)) == 0)
        try r.setIRQs(index: 0, flags: dataEventfd | actionTrigger, count: 1, fds: [intx.fd])
        for n in 0..<6 { try r.pwrite(bytes32(0), at: 7 << 40 | Int64(0x10 + 4 * n)) }
        // Exit: REQ/ERR released, interrupts off, close.
        try r.setIRQs(index: 4, flags: dataEventfd | actionTrigger, count: 1, fds: [-1])
        try r.setIRQs(index: 3, flags: dataEventfd | actionTrigger, count: 1, fds: [-1])
        try r.setIRQs(index: 0, flags: dataNone | actionTrigger, count: 0)
        try r.sub.close(r.device)
        try r.sub.unsetContainer(r.group)
        r.finish()
    }

    // MARK: VF tokens (vfio_pci_validate_vf_token)

    @Test func pfTokenSemantics() throws {
        let sub = makeSubsystem()
        let pf = try #require(try sub.probePCIDevice(name: "0000:03:00.0", iommuGroupID: 40, driver: "vfio-pci"))
        let token = VFToken(uuid: "4a7b9e2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c")
        ModelPCIDriver.state(of: pf)?.sriov = .physicalFunction(token)
        let vf = try #require(try sub.probePCIDevice(name: "0000:03:00.1", iommuGroupID: 41, driver: "vfio-pci"))
        ModelPCIDriver.state(of: vf)?.sriov = .virtualFunction(pf: token)
        let g = try sub.open("/dev/vfio/40")
        try sub.containerWith(g)
        // A PF without VF users: no token is fine, and a token given becomes the PF's token.
        try sub.close(try sub.deviceFD(g, "0000:03:00.0"))
        let newToken = "00000000-1111-2222-3333-444444444444"
        try sub.close(try sub.deviceFD(g, "0000:03:00.0 vf_token=\(newToken.uppercased())"))
        #expect(token.uuid == newToken)
        // The VF now needs the new token.
        let v = try sub.open("/dev/vfio/41")
        try sub.containerWith(v)
        #expect(throws: Errno.EACCES) { try sub.deviceFD(v, "0000:03:00.1") }
        #expect(throws: Errno.EACCES) { try sub.deviceFD(v, "0000:03:00.1 vf_token=4a7b9e2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c") }
        try sub.close(try sub.deviceFD(v, "0000:03:00.1 vf_token=\(newToken)"))
        // With VF users the PF demands the token too.
        token.users = 1
        #expect(throws: Errno.EACCES) { try sub.deviceFD(g, "0000:03:00.0") }
        try sub.close(try sub.deviceFD(g, "0000:03:00.0 vf_token=\(newToken)"))
        // A VF whose PF is not bound to vfio-pci: a token is refused, none is fine.
        ModelPCIDriver.state(of: vf)?.sriov = .virtualFunction(pf: nil)
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(v, "0000:03:00.1 vf_token=\(newToken)") }
        try sub.close(try sub.deviceFD(v, "0000:03:00.1"))
        // Short or malformed UUIDs: EINVAL before the token is looked at.
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, "0000:03:00.0 vf_token=00000000-1111-2222-3333-44444444444") }
        #expect(throws: Errno.EINVAL) { try sub.deviceFD(g, "0000:03:00.0 vf_token=00000000x1111-2222-3333-444444444444") }
        teardown(sub)
    }

    // MARK: Identity from topologies

    @Test func identityFromJSON() throws {
        let json = """
            { "iommu_groups": [ { "id": 26, "devices": [
              { "name": "0000:06:0d.0", "driver": "vfio-pci", "vendor_id": "0x8086", "device_id": 4307,
                "class_code": "0x020000", "bars": [131072, 0, 16384], "rom_size": 65536,
                "msi": 4, "msix": 16, "msix_bar": 2, "pcie": false, "intx": false } ] } ] }
            """
        let spec = try TopologySpec.parse(json: Array(json.utf8), source: "t.json")
        let pci = spec.iommuGroups[0].devices[0].pci
        #expect(pci == PCIDeviceIdentity(vendorID: 0x8086, deviceID: 4307, classCode: 0x020000,
                                         bars: [131072, 0, 16384, 0, 0, 0], romSize: 65536, msiVectors: 4,
                                         msixVectors: 16, msixBAR: 2, pcie: false, intx: false))
        #expect(try TopologySpec.parse(json: Array(spec.jsonText().utf8), source: "t") == spec)
        let sub = try VFIOSubsystem.load(spec, rawIO: .granted)
        let dev = try #require(sub.registeredDevices.first)
        #expect(ModelPCIDriver.model(of: dev)?.identity == pci)
        #expect(dev.busDevice.vendorID == 0x8086)
        teardown(sub)
    }

    @Test func identityErrorsInJSON() {
        func message(_ device: String) -> String? {
            let json = #"{ "iommu_groups": [ { "id": 1, "devices": [ { "name": "a", "# + device + #" } ] } ] }"#
            do { _ = try TopologySpec.parse(json: Array(json.utf8), source: "t.json"); return nil } catch { return error.path + ": " + error.message }
        }
        #expect(message(#""vendor_id": 65536"#)?.hasPrefix("$.iommu_groups[0].devices[0].vendor_id: expected an integer from 0 to 65535") == true)
        #expect(message(#""vendor_id": "0xzz""#)?.contains("found \"0xzz\"") == true)
        #expect(message(#""bars": [4096, 100]"#) == "$.iommu_groups[0].devices[0].bars: BAR1 size 100: expected 0 or a power of two from 16 to 2147483648")
        #expect(message(#""bars": [1,2,3,4,5,6,7]"#)?.contains("at most 6") == true)
        #expect(message(#""msi": 3"#)?.contains("expected 0, 1, 2, 4, 8, 16 or 32") == true)
        #expect(message(#""msix": 300"#)?.contains("need BAR0 of at least 9600 bytes") == true)
        #expect(message(#""rom_size": 1000"#)?.contains("rom_size") == true)
        #expect(message(#""pcie": 1"#)?.contains("expected a boolean") == true)
    }

    @Test func identityFromSysfsTree() throws {
        let root = "/tmp/swiftvfio-pci-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { _ = system("rm -rf '\(root)'") }
        let dev = root + "/bus/pci/devices/0000:00:01.0"
        mkdirp(root + "/kernel/iommu_groups/5/devices/0000:00:01.0")
        mkdirp(dev)
        symlink("../../../../kernel/iommu_groups/5", dev + "/iommu_group")
        symlink("../../../../bus/pci/drivers/vfio-pci", dev + "/driver")
        writeFile(dev + "/vendor", "0x1af4\n")
        writeFile(dev + "/device", "0x1000\n")
        writeFile(dev + "/class", "0x020000\n")
        writeFile(dev + "/resource", """
            0x00000000febf0000 0x00000000febf0fff 0x0000000000040200
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x00000000fe000000 0x00000000fe003fff 0x000000000014220c
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x00000000feb80000 0x00000000febbffff 0x0000000000046200

            """)
        writeFile(dev + "/msix", "4\n")
        writeFile(dev + "/msix_bar", "2\n")
        writeFile(dev + "/personality", "plain\n")   // 1af4:1000 would otherwise be virtio-net
        let spec = try TopologySpec.load(path: root)
        let pci = try #require(spec.iommuGroups.first?.devices.first?.pci)
        #expect(pci.vendorID == 0x1af4 && pci.deviceID == 0x1000 && pci.classCode == 0x020000)
        #expect(pci.bars == [4096, 0, 16384, 0, 0, 0] && pci.romSize == 262144)
        #expect(pci.msixVectors == 4 && pci.msixBAR == 2 && pci.msiVectors == 1 && pci.pcie)
        #expect(pci.barTypes[2] == .memory64 && pci.barPrefetchable[2])   // flags 0x14220c
        // An I/O BAR (PCIBARKindTests has the rest); a bad BAR is refused, naming the file.
        writeFile(dev + "/resource", "0x000000000000c000 0x000000000000c01f 0x0000000000040101\n")
        writeFile(dev + "/msix", "0\n")
        #expect(try TopologySpec.load(path: root).iommuGroups.first?.devices.first?.pci.barTypes[0] == .io)
        writeFile(dev + "/resource", "0x000000000000c000 0x000000000000c3ff 0x0000000000040101\n")
        #expect(throws: TopologyError.self) { _ = try TopologySpec.load(path: root) }
        do { _ = try TopologySpec.load(path: root) } catch { #expect(error.path == dev + "/resource") }
        writeFile(dev + "/resource", "0x0 0x0 0x0\n")
        writeFile(dev + "/vendor", "intel\n")
        do { _ = try TopologySpec.load(path: root); Issue.record("loaded") } catch { #expect(error.path == dev + "/vendor") }
    }
}

private func mkdirp(_ path: String) { _ = system("mkdir -p '\(path)'") }
private func writeFile(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

/// A detached thread running `body`.
private final class Thread {
    init(_ body: @escaping @Sendable () -> Void) {
        final class Box { let f: @Sendable () -> Void; init(_ f: @escaping @Sendable () -> Void) { self.f = f } }
        var t = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&t, nil, { p in
            let b = Unmanaged<Box>.fromOpaque(p!).takeRetainedValue()
            b.f()
            return nil
        }, box)
        pthread_detach(t)
    }
}
