// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// Hardware discovery and driver probing: how devices enter a subsystem.
///
/// The topology loader and tests describe hardware; these calls play the PCI core (a device
/// appears in its IOMMU group), the driver core (a driver binds) and, for VFIO bus drivers, the
/// driver's probe, which registers a `VFIODevice` through the same path a real driver uses.
extension VFIOSubsystem {
    /// The built-in vfio-pci driver.
    public var pciDriver: ModelPCIDriver { builtInDrivers.pci }
    /// The built-in mdev-style driver for emulated devices.
    public var mdevDriver: ModelMdevDriver { builtInDrivers.mdev }

    /// Discovers PCI function `name` in IOMMU group `iommuGroupID` (nil: a device without an
    /// IOMMU group) and binds `driver` (nil: unbound). A `vfio*` driver registers a VFIO device
    /// with the built-in vfio-pci and returns it; if that registration fails (no IOMMU group with
    /// no-IOMMU mode off, no cache coherency), the probe fails as in the kernel: the device stays
    /// unbound and the registration's errno is thrown. Any other driver is a kernel driver.
    /// `identity` is what the function is (vendor, device, class, BARs, interrupts); an invalid one
    /// fails with EINVAL before anything is added.
    @discardableResult
    public func probePCIDevice(name: String, iommuGroupID: Int?, driver: String?,
                               cacheCoherency: Bool = true, enforceCacheCoherency: Bool = true,
                               vfToken: String? = nil,
                               identity: PCIDeviceIdentity = PCIDeviceIdentity()) throws(Errno) -> VFIODevice? {
        guard identity.problem() == nil else { throw .EINVAL.because("invalid PCI identity") }
        let bus = try iommu.addDevice(name: name, cacheCoherency: cacheCoherency,
                                      enforceCacheCoherency: enforceCacheCoherency)
        do throws(Errno) {
            if let iommuGroupID {
                let g: IOMMUGroup
                if let existing = iommu.group(id: iommuGroupID) { g = existing } else { g = try iommu.addGroup(id: iommuGroupID) }
                try iommu.addDevice(bus, to: g)
            }
        } catch {
            try? iommu.removeDevice(bus)
            throw error
        }
        guard let driver else { return nil }
        if driver.hasPrefix("vfio") {
            return try bindVFIOPCI(bus, driver: driver, vfToken: vfToken, identity: identity)
        }
        bus.vendorID = identity.vendorID
        bus.deviceID = identity.deviceID
        try iommu.bindDriver(driver, to: bus, managesDMA: IOMMUCore.driverManagesDMA(driver))
        return nil
    }

    /// Binds the built-in vfio-pci to an existing bus device (its probe registers a VFIO device
    /// whose device model is `identity`; EINVAL for an invalid identity).
    @discardableResult
    public func bindVFIOPCI(_ bus: BusDevice, driver: String = "vfio-pci", vfToken: String? = nil,
                            identity: PCIDeviceIdentity = PCIDeviceIdentity()) throws(Errno) -> VFIODevice {
        guard identity.problem() == nil else { throw .EINVAL.because("invalid PCI identity") }
        try iommu.bindDriver(driver, to: bus, managesDMA: true)
        bus.vendorID = identity.vendorID
        bus.deviceID = identity.deviceID
        do throws(Errno) {
            let device = try allocDevice(bus, ops: pciDriver.ops)
            if let state = ModelPCIDriver.state(of: device) {
                do throws(Errno) {
                    try state.setIdentity(identity, name: bus.name, host: host)
                } catch {
                    device.put()
                    throw error
                }
                state.vfToken = vfToken
            }
            do throws(Errno) {
                try registerGroupDevice(device)
            } catch {
                device.put()
                throw error
            }
            return device
        } catch {
            iommu.unbindDriver(from: bus)
            throw error
        }
    }

    /// Creates an mdev-style device `name` and registers it as an emulated-IOMMU VFIO device (its
    /// own fake IOMMU group, node `/dev/vfio/<N>`).
    @discardableResult
    public func probeEmulatedDevice(name: String) throws(Errno) -> VFIODevice {
        let bus = try iommu.addDevice(name: name)
        do throws(Errno) {
            try iommu.bindDriver("mdev-model", to: bus, managesDMA: true)
            let device = try allocDevice(bus, ops: mdevDriver.ops)
            do throws(Errno) {
                try registerEmulatedIOMMUDevice(device)
            } catch {
                device.put()
                throw error
            }
            return device
        } catch {
            // Unbind whatever failed (allocation included): a bound device cannot be removed.
            iommu.unbindDriver(from: bus)
            try? iommu.removeDevice(bus)
            throw error
        }
    }

    /// Driver remove + hot-unplug of a VFIO device made by a probe: unregisters it (blocking until
    /// its fds close), drops the driver's reference, unbinds and removes the bus device.
    public func removeVFIODevice(_ device: VFIODevice) {
        let bus = device.busDevice
        unregisterGroupDevice(device)
        device.put()
        iommu.unbindDriver(from: bus)
        if let g = iommu.iommuGroup(of: bus) { iommu.removeDevice(bus, from: g) }
        try? iommu.removeDevice(bus)
    }

    /// Every registered VFIO device, across groups.
    public var registeredDevices: [VFIODevice] { allGroups.flatMap(\.devices) }
}

/// The subsystem's built-in VFIO bus drivers.
final class BuiltInDrivers: Sendable {
    let pci = ModelPCIDriver()
    let mdev = ModelMdevDriver()
}
