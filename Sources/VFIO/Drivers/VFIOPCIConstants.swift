// SPDX-License-Identifier: Apache-2.0
// The numbers the PCI device model answers with: vfio-pci's uapi (region and IRQ indexes, flags)
// and the PCI config-space registers and capability IDs.

/// vfio-pci's uapi numbers for the PCI device (`include/uapi/linux/vfio.h`).
enum VFIOPCI {
    static let bar0Region = 0, romRegion = 6, configRegion = 7, vgaRegion = 8, numRegions = 9
    static let intxIRQ: UInt32 = 0, msiIRQ: UInt32 = 1, msixIRQ: UInt32 = 2, errIRQ: UInt32 = 3, reqIRQ: UInt32 = 4
    static let numIRQs: UInt32 = 5
    /// VFIO_PCI_OFFSET_SHIFT: region index << 40 is its offset in the device fd.
    static let offsetShift: Int64 = 40
    static let offsetMask: Int64 = (1 << 40) - 1

    static let deviceFlagsReset: UInt32 = 1 << 0, deviceFlagsPCI: UInt32 = 1 << 1
    static let regionRead: UInt32 = 1, regionWrite: UInt32 = 2, regionMmap: UInt32 = 4, regionCaps: UInt32 = 8
    static let capMSIXMappable: UInt16 = 3
    static let irqEventfd: UInt32 = 1, irqMaskable: UInt32 = 2, irqAutomasked: UInt32 = 4, irqNoresize: UInt32 = 8

    static let setDataNone: UInt32 = 1, setDataBool: UInt32 = 2, setDataEventfd: UInt32 = 4
    static let setActionMask: UInt32 = 8, setActionUnmask: UInt32 = 16, setActionTrigger: UInt32 = 32
    static let setDataTypeMask: UInt32 = 7, setActionTypeMask: UInt32 = 0x38

    /// The region index an offset in the device fd selects.
    static func index(of offset: Int64) -> Int { Int(offset >> offsetShift) }
}

/// PCI config-space register offsets and bits (`include/uapi/linux/pci_regs.h`).
enum PCIReg {
    static let vendorID = 0x00, deviceID = 0x02, command = 0x04, status = 0x06, revision = 0x08
    static let classProg = 0x09, cacheLineSize = 0x0c, latencyTimer = 0x0d, headerType = 0x0e
    static let bar0 = 0x10, subsystemVendorID = 0x2c, subsystemID = 0x2e, romAddress = 0x30
    static let capabilityList = 0x34, interruptLine = 0x3c, interruptPin = 0x3d
    static let commandIO: UInt16 = 0x1, commandMemory: UInt16 = 0x2, commandMaster: UInt16 = 0x4
    static let commandParity: UInt16 = 0x40, commandSERR: UInt16 = 0x100, commandIntxDisable: UInt16 = 0x400
    static let statusInterrupt: UInt16 = 0x8, statusCapList: UInt16 = 0x10
    static let capIDPCIe: UInt8 = 0x10, capIDMSI: UInt8 = 0x05, capIDMSIX: UInt8 = 0x11
    /// Where the model puts its capabilities.
    static let pcieCapOffset = 0x40, msiCapOffset = 0x80, msixCapOffset = 0xa0
    static let pcieCapSize = 0x3c, msiCapSize = 24, msixCapSize = 12
}
