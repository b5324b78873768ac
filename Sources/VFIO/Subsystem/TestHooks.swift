// SPDX-License-Identifier: Apache-2.0
// Test hooks for VMM and driver tests (issue 18 item 6): what a real machine would do behind the
// client's back, and what it would let a debugger see. Raising an interrupt stands for the device
// asserting it; listing the mappings stands for reading the IOMMU's page tables. Neither exists
// in the kernel's user API; both are exported to C by Sources/SwiftVFIOCABI/TestHooks.swift.

extension PCIDeviceModel {
    /// The device raises interrupt `vector` of IRQ `index` (0 INTx, 1 MSI, 2 MSI-X, 3 ERR, 4 REQ),
    /// after the checks the kernel's loopback trigger (`VFIO_DEVICE_SET_IRQS` with
    /// DATA_NONE|ACTION_TRIGGER: vfio_set_irqs_validate_and_prepare() and the per-index trigger
    /// functions) makes: EINVAL for an index past num_irqs, a vector past that index's count
    /// (GET_IRQ_INFO), or an index the client has not enabled with SET_IRQS (MSI while in INTx mode,
    /// ERR/REQ with no eventfd). Returns whether an eventfd was signalled: false when INTx is
    /// masked (held pending until UNMASK) or an enabled MSI/MSI-X vector has no eventfd.
    public func raiseChecked(index: UInt32, vector: UInt32) throws(Errno) -> Bool {
        guard index < VFIOPCI.numIRQs else {
            throw .EINVAL.because("IRQ index {} >= num_irqs {}", index, VFIOPCI.numIRQs)
        }
        let count = irqCount(index)
        guard vector < count else {
            throw .EINVAL.because("vector {} >= count {} of IRQ index {}", vector, count, index)
        }
        let enabled: Bool = lock.withLock {
            switch index {
            case VFIOPCI.intxIRQ: return irqType == .intx
            case VFIOPCI.msiIRQ: return irqType == .msi && Int(vector) < triggers.count
            case VFIOPCI.msixIRQ: return irqType == .msix && Int(vector) < triggers.count
            case VFIOPCI.errIRQ: return errTrigger != nil
            default: return reqTrigger != nil
            }
        }
        guard enabled else {
            throw .EINVAL.because("IRQ index {} vector {} not enabled by VFIO_DEVICE_SET_IRQS", index, vector)
        }
        return raise(index: index, vector: Int(vector))
    }
}

extension VFIOSubsystem {
    /// The vfio-pci model device called `name` (its bus name, "0000:06:0d.0") raises an interrupt:
    /// ENXIO when no registered VFIO device of that name has a PCI device model behind it, then
    /// `PCIDeviceModel.raiseChecked(index:vector:)`.
    public func raiseInterrupt(device name: String, index: UInt32, vector: UInt32) throws(Errno) -> Bool {
        guard let device = registeredDevices.first(where: { $0.busDevice.name == name }),
              let model = ModelPCIDriver.model(of: device) else {
            throw .ENXIO.because("no vfio-pci model device of that name")
        }
        return try model.raiseChecked(index: index, vector: vector)
    }

    /// The DMA mappings of the container behind model fd `fd`, in IOVA order: EBADF for a number
    /// that is not a model fd, EINVAL for a file that is not a container or a container with no
    /// IOMMU backend set. A no-IOMMU container has none.
    public func dmaMappings(containerFD fd: Int32) throws(Errno) -> [Type1Mapping] {
        let file = try fget(fd)
        defer { fput(file) }
        guard let container = file.container else {
            throw .EINVAL.because("fd {i} is not a container", fd)
        }
        guard container.backendName != nil else {
            throw .EINVAL.because("container has no IOMMU backend (VFIO_SET_IOMMU not done)")
        }
        return (container.backendState as? Type1IOMMU)?.mappings ?? []
    }
}
