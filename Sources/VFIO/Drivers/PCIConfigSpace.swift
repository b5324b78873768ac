// SPDX-License-Identifier: Apache-2.0
// The PCI device model's virtual config space (v6.3 drivers/vfio/pci/vfio_pci_config.c): the
// layout after enable, the write masks, BAR/ROM sizing, capability placement and the option ROM.

import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension PCIDeviceModel {
    // MARK: Config space layout

    /// Kernel: vfio_config_init(): the virtual config space as the function presents it after
    /// pci_enable_device() (memory decoding on), with the write masks of the permission tables.
    func initConfig() {
        let id = identity
        config = [UInt8](repeating: 0, count: configSize)
        writable = [UInt8](repeating: 0, count: configSize)
        put16(PCIReg.vendorID, id.vendorID)
        put16(PCIReg.deviceID, id.deviceID)
        let hasMemory = (0..<6).contains { id.barSize($0) > 0 && id.barType($0).isMemory } || id.romSize > 0
        let hasIO = (0..<6).contains { id.barSize($0) > 0 && id.barType($0) == .io }
        put16(PCIReg.command, (hasMemory ? PCIReg.commandMemory : 0) | (hasIO ? PCIReg.commandIO : 0))
        mask16(PCIReg.command, PCIReg.commandIO | PCIReg.commandMemory | PCIReg.commandMaster
               | PCIReg.commandParity | PCIReg.commandSERR | PCIReg.commandIntxDisable)
        config[PCIReg.revision] = personality.revision
        config[PCIReg.classProg] = UInt8(id.classCode & 0xff)
        config[PCIReg.classProg + 1] = UInt8((id.classCode >> 8) & 0xff)
        config[PCIReg.classProg + 2] = UInt8((id.classCode >> 16) & 0xff)
        writable[PCIReg.cacheLineSize] = 0xff
        writable[PCIReg.latencyTimer] = 0xff
        config[PCIReg.headerType] = 0   // type 0, single function
        let subsystem = personality.subsystemIDs ?? (id.vendorID, id.deviceID)
        put16(PCIReg.subsystemVendorID, subsystem.vendor)
        put16(PCIReg.subsystemID, subsystem.device)
        writable[PCIReg.interruptLine] = 0xff
        config[PCIReg.interruptLine] = 0xff
        config[PCIReg.interruptPin] = id.intx ? 1 : 0
        barRaw = barAddress
        romRaw = romAddress

        // Capabilities, chained in address order.
        var caps: [(offset: Int, id: UInt8)] = []
        if id.pcie { caps.append((PCIReg.pcieCapOffset, PCIReg.capIDPCIe)) }
        if id.msiVectors > 0 { caps.append((PCIReg.msiCapOffset, PCIReg.capIDMSI)) }
        if id.msixVectors > 0 { caps.append((PCIReg.msixCapOffset, PCIReg.capIDMSIX)) }
        let personalityCaps = personality.capabilities()
        caps += personalityCaps.map { ($0.offset, $0.id) }
        caps.sort { $0.offset < $1.offset }
        for cap in personalityCaps {
            for (i, byte) in cap.body.enumerated() { config[cap.offset + 2 + i] = byte }
        }
        if let first = caps.first {
            config[PCIReg.capabilityList] = UInt8(first.offset)
            put16(PCIReg.status, PCIReg.statusCapList)
        }
        for (i, cap) in caps.enumerated() {
            config[cap.offset] = cap.id
            config[cap.offset + 1] = i + 1 < caps.count ? UInt8(caps[i + 1].offset) : 0
        }
        if id.pcie {
            let p = PCIReg.pcieCapOffset
            put16(p + 2, 0x0002)                   // version 2, type 0: PCI Express endpoint
            put32(p + 4, 0x1000_8000)              // DevCap: FLR, role-based error reporting
            mask16(p + 8, 0x7fff)                  // DevCtl (bit 15 initiates FLR: not stored)
            put32(p + 12, 0x0000_0011)             // LnkCap: x1, 2.5 GT/s
            mask16(p + 16, 0x0fff)                 // LnkCtl
            put16(p + 18, 0x0011)                  // LnkSta: x1, 2.5 GT/s
            mask16(p + 40, 0xffff)                 // DevCtl2
            put32(p + 44, 0x0000_0002)             // LnkCap2: 2.5 GT/s
            put16(p + 48, 0x0001)                  // LnkCtl2: target 2.5 GT/s
            mask16(p + 48, 0xffff)
        }
        if id.msiVectors > 0 {
            let p = PCIReg.msiCapOffset
            let mmc = UInt16(id.msiVectors.trailingZeroBitCount) << 1
            put16(p + 2, 0x0180 | mmc)             // per-vector masking, 64-bit, MMC
            mask16(p + 2, 0x0071)                  // enable, multiple message enable
            mask32(p + 4, 0xffff_fffc)             // address low
            mask32(p + 8, 0xffff_ffff)             // address high
            mask16(p + 12, 0xffff)                 // data
            mask32(p + 16, 0xffff_ffff)            // mask bits
        }
        if id.msixVectors > 0 {
            let p = PCIReg.msixCapOffset
            put16(p + 2, UInt16(id.msixVectors - 1))
            mask16(p + 2, 0xc000)                  // enable, function mask
            put32(p + 4, UInt32(id.msixBAR))       // table at offset 0 of the BAR
            put32(p + 8, UInt32(id.barSize(id.msixBAR) / 2) | UInt32(id.msixBAR))
        }
    }

    /// Builds the config space at its first use (`lock` held): until then nothing could have
    /// changed it from what vfio_config_init() makes.
    @inline(__always) func ensureConfig() {
        if config.isEmpty { initConfig() }
    }

    func put16(_ at: Int, _ v: UInt16) { config[at] = UInt8(v & 0xff); config[at + 1] = UInt8(v >> 8) }
    private func put32(_ at: Int, _ v: UInt32) { put16(at, UInt16(v & 0xffff)); put16(at + 2, UInt16(v >> 16)) }
    private func mask16(_ at: Int, _ v: UInt16) { writable[at] = UInt8(v & 0xff); writable[at + 1] = UInt8(v >> 8) }
    private func mask32(_ at: Int, _ v: UInt32) { mask16(at, UInt16(v & 0xffff)); mask16(at + 2, UInt16(v >> 16)) }
    func get16(_ at: Int) -> UInt16 {
        ensureConfig()
        return UInt16(config[at]) | UInt16(config[at + 1]) << 8
    }

    /// Where the MSI-X table lives: (BAR, offset, size in bytes), or nil without MSI-X
    /// (`vdev->msix_bar`, `msix_offset`, `msix_size`).
    var msixTable: (bar: Int, offset: Int, size: Int)? {
        identity.msixVectors > 0 ? (identity.msixBAR, 0, identity.msixVectors * 16) : nil
    }

    /// The value a BAR register reads as (the kernel's vfio_bar_fixup): the last value written,
    /// masked to the BAR's size, with the type bits the BAR's kind fixes; a 64-bit BAR's upper
    /// half masks with the size's upper bits, so writing all ones reads back the size's complement
    /// across both registers.
    func barRegister(_ slot: Int) -> UInt32 {
        let id = identity
        if id.isUpperHalf(slot) {
            let size = id.barSize(slot - 1)
            return barRaw[slot] & UInt32(truncatingIfNeeded: ~(size - 1) >> 32)
        }
        let size = id.barSize(slot)
        guard size > 0 else { return 0 }
        let sizeMask = UInt32(truncatingIfNeeded: ~(size - 1))
        switch id.barType(slot) {
        case .io:
            return barRaw[slot] & sizeMask & 0xffff_fffc | 0x1        // PCI_BASE_ADDRESS_SPACE_IO
        case .memory32, .memory64:
            let type: UInt32 = id.barType(slot) == .memory64 ? 0x4 : 0  // PCI_BASE_ADDRESS_MEM_TYPE_64
            let prefetch: UInt32 = id.isPrefetchable(slot) ? 0x8 : 0    // PCI_BASE_ADDRESS_MEM_PREFETCH
            return barRaw[slot] & sizeMask & 0xffff_fff0 | type | prefetch
        }
    }

    /// Whether the function itself has MSI-X enabled: on hardware, the enable bit the host
    /// kernel sets when the user enables MSI-X with SET_IRQS. The bit a user reads or writes in
    /// config space is virtualized by vfio-pci and never reaches the function, so a driver that
    /// only writes it (without SET_IRQS) leaves the device in INTx mode.
    var msixEnabled: Bool { irqType == .msix }

    /// The value a config byte reads as: BAR and ROM registers through the size masks.
    func configByte(_ at: Int) -> UInt8 {
        ensureConfig()
        if at >= PCIReg.bar0 && at < PCIReg.bar0 + 24 {
            let value = barRegister((at - PCIReg.bar0) / 4)
            return UInt8(truncatingIfNeeded: value >> (8 * UInt32((at - PCIReg.bar0) % 4)))
        }
        if at >= PCIReg.romAddress && at < PCIReg.romAddress + 4 {
            let size = identity.romSize
            let value = size == 0 ? 0 : romRaw & (~UInt32(truncatingIfNeeded: size - 1) | 1) & 0xffff_f801
            return UInt8(truncatingIfNeeded: value >> (8 * UInt32(at - PCIReg.romAddress)))
        }
        return config[at]
    }

    func writeConfigByte(_ at: Int, _ value: UInt8) {
        ensureConfig()
        if at >= PCIReg.bar0 && at < PCIReg.bar0 + 24 {
            let bar = (at - PCIReg.bar0) / 4, shift = 8 * UInt32((at - PCIReg.bar0) % 4)
            barRaw[bar] = barRaw[bar] & ~(0xff << shift) | UInt32(value) << shift
            return
        }
        if at >= PCIReg.romAddress && at < PCIReg.romAddress + 4 {
            let shift = 8 * UInt32(at - PCIReg.romAddress)
            romRaw = romRaw & ~(0xff << shift) | UInt32(value) << shift
            return
        }
        config[at] = config[at] & ~writable[at] | value & writable[at]
    }

    /// An option ROM image: a 0x55AA header, a PCI data structure naming the function, 0xff after.
    static func makeROM(_ id: PCIDeviceIdentity) -> [UInt8] {
        guard id.romSize > 0 else { return [] }
        var r = [UInt8](repeating: 0xff, count: Int(id.romSize))
        for i in 0..<0x40 { r[i] = 0 }
        r[0] = 0x55; r[1] = 0xaa
        r[2] = UInt8(min(Int(id.romSize) / 512, 255))
        r[0x18] = 0x1c; r[0x19] = 0                    // offset of the PCI data structure
        let p = 0x1c
        r[p] = 0x50; r[p + 1] = 0x43; r[p + 2] = 0x49; r[p + 3] = 0x52   // "PCIR"
        r[p + 4] = UInt8(id.vendorID & 0xff); r[p + 5] = UInt8(id.vendorID >> 8)
        r[p + 6] = UInt8(id.deviceID & 0xff); r[p + 7] = UInt8(id.deviceID >> 8)
        r[p + 10] = 0x18                               // structure length
        r[p + 12] = UInt8(id.classCode & 0xff)
        r[p + 13] = UInt8((id.classCode >> 8) & 0xff)
        r[p + 14] = UInt8((id.classCode >> 16) & 0xff)
        r[p + 16] = r[2]                               // image length in 512-byte units
        r[p + 21] = 0x80                               // last image
        return r
    }
}
