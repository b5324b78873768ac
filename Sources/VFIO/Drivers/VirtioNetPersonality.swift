// SPDX-License-Identifier: Apache-2.0
// A virtio-net function (virtio 1.2 §4.1 "Virtio Over PCI Bus", §5.1 "Network Device"), as far as a
// driver's probe goes: the virtio PCI capabilities in config space, the common configuration,
// notify, ISR and device-specific structures in a trapped memory BAR, and for a transitional
// device (1af4:1000) the legacy register block in an I/O BAR0.
//
// What a driver reads, and in what order (read in DPDK 22.11 drivers/net/virtio/virtio_pci.c +
// virtio_ethdev.c and Linux 6.12 drivers/virtio/virtio_pci_modern_dev.c / virtio_pci_legacy_dev.c):
//  - modern: walk the vendor capabilities (id 0x09) for the four structure types, check each lies
//    inside its BAR, read notify_off_multiplier; reset (status 0, poll until it reads 0); status
//    ACKNOWLEDGE | DRIVER; device_feature_select 0/1 + device_feature; driver_feature_select 0/1 +
//    driver_feature; status |= FEATURES_OK and read it back (cleared = refused; VERSION_1 is
//    required); read the MAC and status from the device config (config_generation around it);
//    per queue: queue_select, queue_size (0 = absent), queue_enable must read 0, queue_msix_vector
//    (read back: NO_VECTOR = refused), queue_desc/driver/device, queue_notify_off, queue_enable = 1;
//    status |= DRIVER_OK.
//  - legacy (DPDK maps only MMAP regions, so it falls back to the I/O BAR, reached by pread/pwrite):
//    status 0 (reset), ACKNOWLEDGE | DRIVER, host features (32 bits), guest features, the device
//    config (at 20, or 24 when MSI-X is enabled), per queue: queue select, queue num (a power of
//    two), queue PFN; DRIVER_OK.
//
// Modelled: all of the above registers with their side effects (feature windows, FEATURES_OK
// acceptance, reset of every register on status 0 or a function reset, ISR read-to-clear, MSI-X
// vector acceptance against the function's vector count, notifications counted per queue), two
// queues (receive, transmit) of up to 256 entries, MAC and link status from the topology.
// Not modelled: the virtqueues themselves (no descriptor is ever read: no packet moves), interrupts
// raised by the device, the control queue and multiqueue, the PCI configuration access capability
// (VIRTIO_PCI_CAP_PCI_CFG; no driver here needs it), packed rings.

/// The virtio-net device behind a modelled 1af4:1000 or 1af4:1041 function.
final class VirtioNetPersonality: PCIPersonality {
    // Feature bits offered (virtio 1.2 §5.1.3, §6).
    static let featureMAC: UInt64 = 1 << 5
    static let featureStatus: UInt64 = 1 << 16
    static let featureVersion1: UInt64 = 1 << 32
    static let offeredFeatures = featureMAC | featureStatus | featureVersion1

    // Device status bits (§2.1).
    static let statusAcknowledge: UInt8 = 1, statusDriver: UInt8 = 2, statusDriverOK: UInt8 = 4
    static let statusFeaturesOK: UInt8 = 8, statusFailed: UInt8 = 0x80
    static let noVector: UInt16 = 0xffff

    // Where the structures sit in their BAR (QEMU's layout: 4 KiB each).
    static let commonOffset = 0x0000, isrOffset = 0x1000, deviceOffset = 0x2000, notifyOffset = 0x3000
    static let structureLength = 0x1000
    static let notifyOffMultiplier = 4
    /// Config-space offsets of the vendor capabilities (after the model's MSI-X capability).
    static let capCommon = 0xb0, capNotify = 0xc0, capISR = 0xd4, capDevice = 0xe4
    // VIRTIO_PCI_CAP_* structure types.
    static let cfgCommon: UInt8 = 1, cfgNotify: UInt8 = 2, cfgISR: UInt8 = 3, cfgDevice: UInt8 = 4

    static let queueCount = 2
    static let queueSizeMax: UInt16 = 256

    struct Queue {
        var size = VirtioNetPersonality.queueSizeMax
        var msixVector = VirtioNetPersonality.noVector
        var enabled = false
        var desc: UInt64 = 0, driver: UInt64 = 0, device: UInt64 = 0
        /// Legacy: the ring's page frame number (0 = not set up).
        var pfn: UInt32 = 0
    }

    let identity: PCIDeviceIdentity
    /// The BAR holding the modern structures.
    let structureBAR: Int
    /// A transitional device: legacy registers in I/O BAR0.
    let transitional: Bool

    // State (§4.1.4.3 common configuration), reset by `reset()`.
    var deviceFeatureSelect: UInt32 = 0
    var driverFeatureSelect: UInt32 = 0
    var driverFeatures: UInt64 = 0
    var status: UInt8 = 0
    var configGeneration: UInt8 = 0
    var msixConfig = VirtioNetPersonality.noVector
    var queueSelect: UInt16 = 0
    var isr: UInt8 = 0
    var queues = [Queue](repeating: Queue(), count: VirtioNetPersonality.queueCount)
    var mac: [UInt8]
    /// Notifications received per queue (the data path a real device would start).
    var notifications = [Int](repeating: 0, count: VirtioNetPersonality.queueCount)
    /// Resets seen (status 0 written, or a function reset).
    var resets = 0

    init(_ identity: PCIDeviceIdentity) {
        self.identity = identity
        structureBAR = identity.virtioStructureBAR ?? 0
        transitional = identity.isTransitionalVirtio
        mac = identity.mac
    }

    // MARK: PCIPersonality

    var subsystemIDs: (vendor: UInt16, device: UInt16)? {
        // A transitional device names its virtio type (1 = network) in the subsystem id, which is
        // how Linux's virtio_pci tells a transitional device's type; QEMU does the same for both.
        (0x1af4, 0x0001)
    }

    /// Virtio 1.2 §4.1.2.1: a non-transitional device has revision 1 or higher.
    var revision: UInt8 { transitional ? 0 : 1 }

    func capabilities() -> [(offset: Int, id: UInt8, body: [UInt8])] {
        // struct virtio_pci_cap after cap_vndr/cap_next: cap_len, cfg_type, bar, id, padding[2],
        // offset, length (16 bytes in all); the notify capability adds notify_off_multiplier.
        func cap(_ type: UInt8, _ offset: Int, extra: [UInt8] = []) -> [UInt8] {
            [UInt8(16 + extra.count), type, UInt8(structureBAR), 0, 0, 0]
                + virtioLE(UInt32(offset), 4) + virtioLE(UInt32(Self.structureLength), 4) + extra
        }
        return [
            (Self.capCommon, 0x09, cap(Self.cfgCommon, Self.commonOffset)),
            (Self.capNotify, 0x09, cap(Self.cfgNotify, Self.notifyOffset, extra: virtioLE(UInt32(Self.notifyOffMultiplier), 4))),
            (Self.capISR, 0x09, cap(Self.cfgISR, Self.isrOffset)),
            (Self.capDevice, 0x09, cap(Self.cfgDevice, Self.deviceOffset)),
        ]
    }

    func traps(bar: Int) -> Bool { bar == structureBAR || (transitional && bar == 0) }

    func read(bar: Int, offset: Int, width: Int, msixEnabled: Bool) -> UInt32 {
        if transitional && bar == 0 { return legacyRead(offset, width, msixEnabled: msixEnabled) }
        guard bar == structureBAR else { return 0 }
        switch offset {
        case Self.commonOffset..<Self.commonOffset + Self.structureLength:
            return virtioWindow(commonImage(), offset - Self.commonOffset, width)
        case Self.isrOffset..<Self.isrOffset + Self.structureLength:
            // Reading the ISR status clears it (§4.1.4.5).
            let value = virtioWindow([isr], offset - Self.isrOffset, width)
            if offset == Self.isrOffset { isr = 0 }
            return value
        case Self.deviceOffset..<Self.deviceOffset + Self.structureLength:
            return virtioWindow(deviceConfigImage(), offset - Self.deviceOffset, width)
        default:
            return 0   // notify area and the rest of the BAR read as zero
        }
    }

    func write(bar: Int, offset: Int, width: Int, value: UInt32, msixEnabled: Bool) {
        if transitional && bar == 0 { return legacyWrite(offset, width, value, msixEnabled: msixEnabled) }
        guard bar == structureBAR else { return }
        switch offset {
        case Self.commonOffset..<Self.commonOffset + Self.structureLength:
            commonWrite(offset - Self.commonOffset, width, value)
        case Self.notifyOffset..<Self.notifyOffset + Self.structureLength:
            // queue_notify_off is the queue index, so the queue is the offset / multiplier.
            let queue = (offset - Self.notifyOffset) / Self.notifyOffMultiplier
            if queue < Self.queueCount { notifications[queue] += 1 }
        case Self.deviceOffset..<Self.deviceOffset + Self.structureLength:
            break   // the device config of a modern device is read-only (MAC included)
        default:
            break
        }
    }

    /// Virtio 1.2 §2.4: every register back to its initial value; the device config keeps the
    /// topology's MAC.
    func reset() {
        deviceFeatureSelect = 0
        driverFeatureSelect = 0
        driverFeatures = 0
        status = 0
        msixConfig = Self.noVector
        queueSelect = 0
        isr = 0
        queues = [Queue](repeating: Queue(), count: Self.queueCount)
        mac = identity.mac
        resets += 1
    }

    // MARK: Modern common configuration (§4.1.4.3)

    /// The 64-byte common configuration as it reads now (struct virtio_pci_common_cfg plus the
    /// 1.2 queue_notify_data and queue_reset, which read 0).
    func commonImage() -> [UInt8] {
        let q = Int(queueSelect) < Self.queueCount ? queues[Int(queueSelect)] : nil
        let feature = deviceFeatureSelect < 2 ? UInt32(truncatingIfNeeded: Self.offeredFeatures >> (32 * UInt64(deviceFeatureSelect))) : 0
        let driver = driverFeatureSelect < 2 ? UInt32(truncatingIfNeeded: driverFeatures >> (32 * UInt64(driverFeatureSelect))) : 0
        var b: [UInt8] = []
        b += virtioLE(deviceFeatureSelect, 4) + virtioLE(feature, 4)                          // 0x00, 0x04
        b += virtioLE(driverFeatureSelect, 4) + virtioLE(driver, 4)                           // 0x08, 0x0c
        b += virtioLE(UInt32(msixConfig), 2) + virtioLE(UInt32(Self.queueCount), 2)           // 0x10, 0x12
        b += [status, configGeneration] + virtioLE(UInt32(queueSelect), 2)              // 0x14, 0x15, 0x16
        b += virtioLE(UInt32(q?.size ?? 0), 2) + virtioLE(UInt32(q?.msixVector ?? Self.noVector), 2)   // 0x18, 0x1a
        b += virtioLE(q?.enabled == true ? 1 : 0, 2) + virtioLE(UInt32(q == nil ? 0 : queueSelect), 2) // 0x1c, 0x1e
        b += virtioLE64(q?.desc ?? 0) + virtioLE64(q?.driver ?? 0) + virtioLE64(q?.device ?? 0)     // 0x20, 0x28, 0x30
        b += [UInt8](repeating: 0, count: 8)                                      // 0x38..0x3f
        return b
    }

    func commonWrite(_ offset: Int, _ width: Int, _ value: UInt32) {
        let q = Int(queueSelect)
        let hasQueue = q < Self.queueCount
        switch (offset, width) {
        case (0x00, 4): deviceFeatureSelect = value
        case (0x08, 4): driverFeatureSelect = value
        case (0x0c, 4):
            // Features are fixed once FEATURES_OK is set (§3.1.1 step 5).
            guard status & Self.statusFeaturesOK == 0, driverFeatureSelect < 2 else { break }
            let shift = 32 * UInt64(driverFeatureSelect)
            driverFeatures = driverFeatures & ~(0xffff_ffff << shift) | UInt64(value) << shift
        case (0x10, 2): msixConfig = acceptVector(UInt16(truncatingIfNeeded: value))
        case (0x14, 1): writeStatus(UInt8(truncatingIfNeeded: value), modern: true)
        case (0x16, 2): queueSelect = UInt16(truncatingIfNeeded: value)
        case (0x18, 2):
            // The driver may shrink a queue before enabling it; a split ring's size is a power of two.
            let size = UInt16(truncatingIfNeeded: value)
            if hasQueue, !queues[q].enabled, size > 0, size <= Self.queueSizeMax, size & (size - 1) == 0 {
                queues[q].size = size
            }
        case (0x1a, 2): if hasQueue { queues[q].msixVector = acceptVector(UInt16(truncatingIfNeeded: value)) }
        case (0x1c, 2): if hasQueue && value == 1 { queues[q].enabled = true }   // writing 0 is not allowed (§4.1.4.3.2)
        case (0x20, 4), (0x24, 4), (0x28, 4), (0x2c, 4), (0x30, 4), (0x34, 4):
            guard hasQueue, !queues[q].enabled else { break }
            let high = offset % 8 == 4
            func merge(_ old: UInt64) -> UInt64 {
                high ? old & 0xffff_ffff | UInt64(value) << 32 : old & ~0xffff_ffff | UInt64(value)
            }
            switch offset & ~7 {
            case 0x20: queues[q].desc = merge(queues[q].desc)
            case 0x28: queues[q].driver = merge(queues[q].driver)
            default: queues[q].device = merge(queues[q].device)
            }
        default:
            break   // read-only fields, and accesses that do not match a field's width
        }
    }

    /// An MSI-X vector the function has, or NO_VECTOR: a driver reads the register back to learn
    /// whether the device took it (§4.1.5.1.2).
    func acceptVector(_ v: UInt16) -> UInt16 {
        v != Self.noVector && Int(v) < identity.msixVectors ? v : Self.noVector
    }

    /// Writing 0 resets the device; FEATURES_OK stays clear when the driver asked for features the
    /// device does not offer or, through the modern interface, did not accept VERSION_1 (§3.1.1,
    /// §6.1).
    func writeStatus(_ value: UInt8, modern: Bool) {
        if value == 0 { return reset() }
        var v = value
        if v & Self.statusFeaturesOK != 0 && status & Self.statusFeaturesOK == 0 {
            let unknown = driverFeatures & ~Self.offeredFeatures != 0
            let noVersion1 = modern && driverFeatures & Self.featureVersion1 == 0
            if unknown || noVersion1 { v &= ~Self.statusFeaturesOK }
        }
        status = v
    }

    // MARK: Device configuration (§5.1.4)

    /// struct virtio_net_config: mac[6], status (VIRTIO_NET_S_LINK_UP = 1), max_virtqueue_pairs.
    func deviceConfigImage() -> [UInt8] {
        mac + virtioLE(identity.linkUp ? 1 : 0, 2) + virtioLE(1, 2)
    }

    // MARK: Test-visible state

    /// The negotiated (driver-accepted) features.
    var negotiatedFeatures: UInt64 { driverFeatures }
}

/// `count` little-endian bytes of `value`.
func virtioLE(_ value: UInt32, _ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
}

func virtioLE64(_ value: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

/// The `width` bytes at `offset` of `image` as a little-endian value (bytes past the end read 0).
func virtioWindow(_ image: [UInt8], _ offset: Int, _ width: Int) -> UInt32 {
    var v: UInt32 = 0
    for i in 0..<width where offset + i >= 0 && offset + i < image.count {
        v |= UInt32(image[offset + i]) << (8 * UInt32(i))
    }
    return v
}
