// SPDX-License-Identifier: Apache-2.0
// The legacy register block of a transitional virtio-net function (virtio 1.2 §4.1.4.8, the
// 0.9.5 layout), in its I/O BAR0: what DPDK's net_virtio uses when the modern structures' BAR is
// not mappable. It shares the device state with the modern interface (VirtioNetPersonality.swift).

extension VirtioNetPersonality {
    /// Where the device config starts in the legacy block: after the two MSI-X vector registers
    /// when MSI-X is enabled.
    static func legacyConfigOffset(msixEnabled: Bool) -> Int { msixEnabled ? 24 : 20 }

    func legacyImage(msixEnabled: Bool) -> [UInt8] {
        let q = Int(queueSelect) < Self.queueCount ? queues[Int(queueSelect)] : nil
        var b: [UInt8] = []
        b += virtioLE(UInt32(truncatingIfNeeded: Self.offeredFeatures), 4)              // 0x00 host features
        b += virtioLE(UInt32(truncatingIfNeeded: driverFeatures), 4)                   // 0x04 guest features
        b += virtioLE(q?.pfn ?? 0, 4)                                                   // 0x08 queue PFN
        b += virtioLE(UInt32(q == nil ? 0 : Self.queueSizeMax), 2)                      // 0x0c queue num
        b += virtioLE(UInt32(queueSelect), 2) + virtioLE(0, 2)                                // 0x0e select, 0x10 notify
        b += [status, isr]                                                        // 0x12, 0x13
        if msixEnabled {
            b += virtioLE(UInt32(msixConfig), 2) + virtioLE(UInt32(q?.msixVector ?? Self.noVector), 2)  // 0x14, 0x16
        }
        return b + deviceConfigImage()
    }

    func legacyRead(_ offset: Int, _ width: Int, msixEnabled: Bool) -> UInt32 {
        let value = virtioWindow(legacyImage(msixEnabled: msixEnabled), offset, width)
        if offset <= 0x13 && 0x13 < offset + width { isr = 0 }   // ISR: read clears
        return value
    }

    func legacyWrite(_ offset: Int, _ width: Int, _ value: UInt32, msixEnabled: Bool) {
        let q = Int(queueSelect)
        let hasQueue = q < Self.queueCount
        let config = Self.legacyConfigOffset(msixEnabled: msixEnabled)
        switch (offset, width) {
        case (0x04, 4): driverFeatures = UInt64(value)
        case (0x08, 4):
            // PFN 0 takes the queue down; anything else is the ring's page (4 KiB units).
            if hasQueue {
                queues[q].pfn = value
                queues[q].enabled = value != 0
                queues[q].desc = UInt64(value) << 12
            }
        case (0x0e, 2): queueSelect = UInt16(truncatingIfNeeded: value)
        case (0x10, 2): if Int(value) < Self.queueCount { notifications[Int(value)] += 1 }
        case (0x12, 1): writeStatus(UInt8(truncatingIfNeeded: value), modern: false)
        case (0x14, 2) where msixEnabled: msixConfig = acceptVector(UInt16(truncatingIfNeeded: value))
        case (0x16, 2) where msixEnabled: if hasQueue { queues[q].msixVector = acceptVector(UInt16(truncatingIfNeeded: value)) }
        default:
            // A legacy driver may write the MAC (QEMU allows it before VERSION_1); the rest of the
            // device config is read-only.
            if offset >= config && offset + width <= config + 6 {
                for i in 0..<width { mac[offset - config + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
            }
        }
    }
}
