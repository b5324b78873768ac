// SPDX-License-Identifier: Apache-2.0
// vfio-pci's `reset_works` from the topology (issue 17: Linux 6.1 and 6.12 answer DEVICE_GET_INFO
// for QEMU's edu, which has no reset method, without VFIO_DEVICE_FLAGS_RESET; the model always set
// it). The flag and DEVICE_RESET follow the device's `reset` (JSON) / `reset_method` (sysfs).
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIO
@testable import VFIOTopology

@Suite("vfio-pci reset_works")
struct PCIResetTests {
    /// DEVICE_GET_INFO's flags and DEVICE_RESET's errno for a device with `reset` as given (nil: key absent).
    private func probe(reset: Bool?) throws -> (flags: UInt32, resetErrno: Errno?) {
        let key = reset.map { #", "reset": \#($0)"# } ?? ""
        let spec = try TopologySpec.parse(json: Array("""
            { "iommu_groups": [ { "id": 9, "devices": [
                { "name": "0000:00:03.0", "driver": "vfio-pci"\(key) } ] } ] }
            """.utf8), source: "test")
        let sub = try VFIOSubsystem.load(spec, rawIO: .granted)
        defer { teardown(sub) }
        let g = try sub.open("/dev/vfio/9")
        try sub.containerWith(g)
        let d = try sub.deviceFD(g, "0000:00:03.0")
        // struct vfio_device_info { argsz, flags, num_regions, num_irqs, cap_offset, pad }
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (24, 0, 0, 0, 0, 0)
        _ = try withUnsafeMutablePointer(to: &info) { (p) throws(Errno) -> Int in
            try sub.ioctl(d, UInt(VFIOIoctl.deviceGetInfo), UInt(bitPattern: p))
        }
        #expect(info.2 == 9 && info.3 == 5)
        var resetErrno: Errno?
        do throws(Errno) { _ = try sub.ioctl(d, UInt(VFIOIoctl.deviceReset)) } catch { resetErrno = error }
        return (info.1, resetErrno)
    }

    @Test func resetWorksByDefault() throws {
        let r = try probe(reset: nil)
        #expect(r.flags == 0x3)               // VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI
        #expect(r.resetErrno == nil)
        #expect(try probe(reset: true).flags == 0x3)
    }

    @Test func noResetMethodClearsTheFlagAndResetIsEINVAL() throws {
        let r = try probe(reset: false)
        #expect(r.flags == 0x2)               // VFIO_DEVICE_FLAGS_PCI only
        #expect(r.resetErrno == .EINVAL)
    }

    @Test func jsonRoundTripKeepsReset() throws {
        var spec = TopologySpec()
        var device = TopologySpec.Device(name: "0000:00:03.0", driver: "vfio-pci")
        device.pci.reset = false
        spec.iommuGroups = [.init(id: 1, devices: [device])]
        #expect(spec.jsonText().contains(#""reset": false"#))
        #expect(try TopologySpec.parse(json: Array(spec.jsonText().utf8), source: "t") == spec)
    }
}
