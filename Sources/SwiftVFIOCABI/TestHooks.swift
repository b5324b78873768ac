// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOTypes
import VFIO

// Test hooks for VMM and driver tests (issue 18 item 6): drive a device's interrupt path and
// check what a client mapped, on the default model. The Swift side is
// Sources/VFIO/Subsystem/TestHooks.swift.

/// Test hook: the vfio-pci model device `device` (its bus name, "0000:06:0d.0") raises interrupt
/// `vector` of IRQ index `index` (VFIO_PCI_INTX_IRQ_INDEX 0, MSI 1, MSI-X 2, ERR 3, REQ 4), as
/// the hardware would: the eventfd the client registered for it with VFIO_DEVICE_SET_IRQS
/// (ACTION_TRIGGER) is signalled. INTx is automasked: a raise while INTx is masked (by the
/// previous one, or ACTION_MASK) is held pending and delivered at ACTION_UNMASK. Returns 1 when
/// an eventfd was signalled, 0 when the interrupt was held (INTx masked) or its enabled MSI/MSI-X
/// vector has no eventfd; or -errno, with the reason in swiftvfio_last_error(), from the checks
/// the kernel's loopback trigger (SET_IRQS with DATA_NONE|ACTION_TRIGGER) makes: -EINVAL for
/// `index` >= num_irqs, `vector` >= the index's count (VFIO_DEVICE_GET_IRQ_INFO), or an index the
/// client has not enabled (MSI while in INTx mode, ERR/REQ without an eventfd); -ENXIO when no
/// registered vfio-pci model device has that name; -EFAULT for an unreadable `device`.
@c public func swiftvfio_irq_raise(_ device: UnsafePointer<CChar>?, _ index: CUnsignedInt,
                                  _ vector: CUnsignedInt) -> CInt {
    kernelCall("swiftvfio_irq_raise") { sub throws(CallError) in
        let name = try cString(device, "device", limit: 256)
        return try model(name) { () throws(Errno) in
            try sub.raiseInterrupt(device: name, index: UInt32(index), vector: UInt32(vector))
        } ? 1 : 0
    }
}

/// Test hook: the current DMA mappings of the container behind model fd `container_fd` (what
/// VFIO_IOMMU_MAP_DMA added and UNMAP_DMA has not removed), in IOVA order. Writes the first
/// min(count, `max`) of them to `out` (which may be NULL when `max` is 0, to size a buffer) and
/// returns count, the number of mappings (a no-IOMMU container has none); or -errno, with the
/// reason in swiftvfio_last_error(): -EBADF when `container_fd` is not a model fd, -EINVAL when
/// it is not a container or the container has no IOMMU backend yet (VFIO_SET_IOMMU not done),
/// -EFAULT for a NULL or unwritable `out` with `max` > 0.
@c public func swiftvfio_dma_mappings(_ container_fd: CInt, _ out: UnsafeMutablePointer<swiftvfio_dma_mapping>?,
                                     _ max: size_t) -> CInt {
    kernelCall("swiftvfio_dma_mappings") { sub throws(CallError) in
        let maps = try model("fd \(container_fd)") { () throws(Errno) in try sub.dmaMappings(containerFD: container_fd) }
        let n = min(maps.count, max)
        if n > 0 {
            guard let out else { throw CallError(.EFAULT, "out is NULL with max \(max)") }
            for i in 0..<n {
                let m = maps[i]
                var flags: UInt32 = 0
                if m.read { flags |= UInt32(SWIFTVFIO_DMA_READ) }
                if m.write { flags |= UInt32(SWIFTVFIO_DMA_WRITE) }
                if m.vaddrInvalid { flags |= UInt32(SWIFTVFIO_DMA_VADDR_INVALID) }
                let value = swiftvfio_dma_mapping(iova: m.iova, size: m.size, vaddr: m.vaddr, flags: flags, reserved: 0)
                try writeOut(value, to: UnsafeMutableRawPointer(out + i), "out[\(i)]")
            }
        }
        return cInt(maps.count)
    }
}
