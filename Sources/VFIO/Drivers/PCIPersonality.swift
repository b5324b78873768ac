// SPDX-License-Identifier: Apache-2.0
// Device personalities: what sits behind a modelled PCI function's registers. The core model
// (PCIDeviceModel) owns config space, BAR memory and interrupts; a personality adds the vendor
// capabilities a driver looks for and answers the BARs whose registers have side effects. Those
// BARs are trapped as the kernel's vfio-pci traps the MSI-X table: their region has no MMAP flag,
// so a client reaches them through pread/pwrite of the device fd, where the personality sees each
// access with its width.

/// A device behind a modelled PCI function. Every call is made with the model's lock
/// (`vdev->igate`) held, so implementations keep their state unlocked.
protocol PCIPersonality: AnyObject {
    /// The subsystem vendor and device ids the function reports (nil: the vendor and device ids).
    var subsystemIDs: (vendor: UInt16, device: UInt16)? { get }
    /// The revision id.
    var revision: UInt8 { get }
    /// Capabilities to add to config space: (offset, capability id, body after the id and next
    /// bytes). The model chains them after its own, in address order; they are read-only.
    func capabilities() -> [(offset: Int, id: UInt8, body: [UInt8])]
    /// Whether every access to BAR `bar` goes through `read`/`write` (the region has no MMAP flag).
    func traps(bar: Int) -> Bool
    /// A read of `width` (1, 2 or 4) bytes at `offset` of trapped BAR `bar`, little-endian.
    /// `msixEnabled` is the MSI-X enable bit of the function's config space.
    func read(bar: Int, offset: Int, width: Int, msixEnabled: Bool) -> UInt32
    /// A write of `width` (1, 2 or 4) bytes at `offset` of trapped BAR `bar`.
    func write(bar: Int, offset: Int, width: Int, value: UInt32, msixEnabled: Bool)
    /// A function-level reset (VFIO_DEVICE_RESET, and the enable at first open).
    func reset()
}

/// The plain personality: config space, BARs of plain memory and IRQ info, nothing trapped.
/// Enough for a driver that only probes (DPDK's event_skeleton PMD, QEMU's realize).
final class PlainPersonality: PCIPersonality {
    var subsystemIDs: (vendor: UInt16, device: UInt16)? { nil }
    var revision: UInt8 { 0 }
    func capabilities() -> [(offset: Int, id: UInt8, body: [UInt8])] { [] }
    func traps(bar: Int) -> Bool { false }
    func read(bar: Int, offset: Int, width: Int, msixEnabled: Bool) -> UInt32 { 0 }
    func write(bar: Int, offset: Int, width: Int, value: UInt32, msixEnabled: Bool) {}
    func reset() {}
}

/// The personality a topology identity asks for (`PCIDeviceIdentity.effectivePersonality`).
func makePersonality(_ identity: PCIDeviceIdentity) -> PCIPersonality {
    switch identity.effectivePersonality {
    case .plain: PlainPersonality()
    case .virtioNet: VirtioNetPersonality(identity)
    }
}
