// SPDX-License-Identifier: Apache-2.0
// The built-in default topology: what the default subsystem loads when SWIFTVFIO_TOPOLOGY is unset.

extension TopologySpec {
    /// The built-in default topology: the one `Documentation/driver-api/vfio.rst` walks through,
    /// plus enough around it to show the viability rules.
    ///
    /// - IOMMU group 26: `0000:06:0d.0` bound to `vfio-pci`, the device of the documented sample
    ///   program, which therefore runs unmodified (`/dev/vfio/26` is viable).
    /// - IOMMU group 27: `0000:06:0e.0` bound to `vfio-pci` and `0000:06:0e.1` bound to the kernel
    ///   driver `e1000e`, which owns DMA: the group is not viable (GET_STATUS reports no VIABLE
    ///   flag, SET_CONTAINER fails).
    /// - IOMMU group 28: `0000:07:00.0` bound to `vfio-pci`, a second viable group (two containers,
    ///   or two groups in one container).
    /// - Emulated device `mdev-0`, which gets a fake IOMMU group of its own.
    /// - No no-IOMMU devices; config: `noiommu` false, `spapr_tce_iommu` false, `iommufd` true.
    /// - Every vfio-pci function is the default `PCIDeviceIdentity`: a PCI Express endpoint
    ///   1b36:0005 (class ff0000) with a 4 KiB memory BAR0, no ROM, INTx pin A and one MSI vector,
    ///   so the sample's loops over regions and IRQs see what a simple real device shows (the VGA
    ///   region is EINVAL, as for any non-VGA function).
    ///
    /// `builtInDefaultJSON` is the same topology as JSON text.
    public static let builtInDefault = TopologySpec(
        config: Config(noiommu: false, spaprTCEIOMMU: false, iommufd: true),
        iommuGroups: [
            IOMMUGroup(id: 26, devices: [Device(name: "0000:06:0d.0", driver: "vfio-pci")]),
            IOMMUGroup(id: 27, devices: [Device(name: "0000:06:0e.0", driver: "vfio-pci"),
                                         Device(name: "0000:06:0e.1", driver: "e1000e")]),
            IOMMUGroup(id: 28, devices: [Device(name: "0000:07:00.0", driver: "vfio-pci")]),
        ],
        noIOMMUDevices: [],
        emulatedDevices: [EmulatedDevice(name: "mdev-0")])

    /// The built-in default topology as JSON text (`builtInDefault` is what it parses to); a
    /// starting point for writing a topology file.
    public static let builtInDefaultJSON = """
        {
          "config": { "noiommu": false, "spapr_tce_iommu": false, "iommufd": true },
          "iommu_groups": [
            { "id": 26, "devices": [
              { "name": "0000:06:0d.0", "driver": "vfio-pci" }
            ] },
            { "id": 27, "devices": [
              { "name": "0000:06:0e.0", "driver": "vfio-pci" },
              { "name": "0000:06:0e.1", "driver": "e1000e" }
            ] },
            { "id": 28, "devices": [
              { "name": "0000:07:00.0", "driver": "vfio-pci" }
            ] }
          ],
          "noiommu_devices": [],
          "emulated_devices": [
            { "name": "mdev-0" }
          ]
        }

        """
}
