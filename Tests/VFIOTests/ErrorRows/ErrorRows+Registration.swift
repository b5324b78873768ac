// SPDX-License-Identifier: Apache-2.0
// docs/ERRORS.md rows of the driver side: device allocation, device sets and registration.
import Testing
@testable import VFIO

extension VFIOSubsystem {
    /// A bus device `name` in a new IOMMU group `id`.
    func busDevice(_ name: String, group id: Int) throws -> BusDevice {
        let ig = try iommu.addGroup(id: id)
        let bus = try iommu.addDevice(name: name)
        try iommu.addDevice(bus, to: ig)
        return bus
    }
}

extension ErrorRows {
    static let registration: [ErrorRow] = [
        .sub("reg-einval-ops", .EINVAL, "ops: bind_iommufd without unbind_iommufd or attach_ioas", populated: false, warnings: 1) { sub in
            var ops = VFIODeviceOps(name: "broken")
            ops.bindIOMMUFD = VFIOIOMMUFDOps.physicalBind
            let d = try sub.allocDevice(try sub.busDevice("x", group: 70), ops: ops)
            defer { d.put() }
            try sub.registerGroupDevice(d)
            return 0
        },
        .sub("reg-einval-released", .EINVAL, "the device was released", populated: false, warnings: 1) { sub in
            let d = try sub.allocDevice(try sub.busDevice("x", group: 70), ops: VFIODeviceOps(name: "plain"))
            d.put()
            try sub.registerGroupDevice(d)
            return 0
        },
        .sub("reg-einval-twice", .EINVAL, "device registered twice", warnings: 1) { sub in
            try sub.registerGroupDevice(try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" }))
            return 0
        },
        .sub("reg-enomem-devset", .ENOMEM, "fault injected: kzalloc of the device set", populated: false) { sub in
            sub.faults.arm(.deviceSetAlloc, errno: .ENOMEM)
            try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci")
            return 0
        },
        .succeeds("reg-noiommu-alloc", value: 1, config: noIOMMUConfig, populated: false) { sub in
            let d = try #require(try sub.probePCIDevice(name: "0000:09:00.0", iommuGroupID: nil, driver: "vfio-pci"))
            return d.vfioGroup?.type == .noIOMMU && sub.log.taintedUser ? 1 : 0
        },
        .sub("reg-einval-nogroup", .EINVAL, "device has no IOMMU group (and no-IOMMU mode is off)", populated: false) { sub in
            try sub.probePCIDevice(name: "0000:0a:00.0", iommuGroupID: nil, driver: "vfio-pci")
            return 0
        },
        .sub("reg-einval-coherency", .EINVAL, "device is not cache coherent (IOMMU_CAP_CACHE_COHERENCY)", populated: false) { sub in
            try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci", cacheCoherency: false)
            return 0
        },
        .sub("reg-einval-dup", .EINVAL, "device already registered in group 26", warnings: 1) { sub in
            // A second vfio_device for the same bus device: the group already lists it.
            let dev = try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" })
            let other = try sub.allocDevice(dev.busDevice, ops: sub.pciDriver.ops)
            defer { other.put() }
            try sub.registerGroupDevice(other)
            return 0
        },
        .sub("reg-enomem-group", .ENOMEM, "fault injected: kzalloc of the vfio_group", populated: false) { sub in
            sub.faults.arm(.groupAlloc, errno: .ENOMEM)
            try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci")
            return 0
        },
        .sub("reg-enomem-group (minor)", .ENOSPC, "fault injected: ida_alloc_max of the group minor", populated: false) { sub in
            sub.faults.arm(.groupMinor, errno: .ENOSPC)
            try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci")
            return 0
        },
        .sub("reg-enomem-add", .ENOMEM, "fault injected: device_add", populated: false) { sub in
            sub.faults.arm(.deviceAdd, errno: .ENOMEM)
            try sub.probePCIDevice(name: "0000:06:0d.0", iommuGroupID: 26, driver: "vfio-pci")
            return 0
        },
        .sub("alloc-device", .ENOMEM, "the driver's init failed", populated: false) { sub in
            var ops = VFIODeviceOps(name: "init-fails")
            ops.initDevice = { _ throws(Errno) in throw .ENOMEM }
            _ = try sub.allocDevice(try sub.iommu.addDevice(name: "i"), ops: ops)
            return 0
        },
        .sub("alloc-device (index)", .ENOSPC, "fault injected: ida_alloc of the device index", populated: false) { sub in
            sub.faults.arm(.deviceIndex, errno: .ENOSPC)
            _ = try sub.allocDevice(try sub.iommu.addDevice(name: "i"), ops: VFIODeviceOps(name: "plain"))
            return 0
        },
        .sub("devset-einval", .EINVAL, "device already registered") { sub in
            let dev = try #require(sub.registeredDevices.first { $0.busDevice.name == "0000:06:0d.0" })
            try sub.assignDeviceSet(dev, setID: DriverModule(name: "slot"))
            return 0
        },
    ]
}
