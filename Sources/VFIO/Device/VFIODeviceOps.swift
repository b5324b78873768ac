// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A VFIO bus driver's module: `try_module_get` fails while it is unloading.
public final class DriverModule: Sendable {
    /// The module name, e.g. "vfio_pci".
    public let name: String
    private let unloadingFlag = Atomic<Bool>(false)
    private let refs = Atomic<Int>(0)

    /// A loaded module.
    public init(name: String) { self.name = name }

    /// Marks the module as unloading: later first opens of its devices fail ENODEV.
    public var unloading: Bool {
        get { unloadingFlag.load(ordering: .relaxed) }
        set { unloadingFlag.store(newValue, ordering: .relaxed) }
    }

    /// References held by open devices.
    public var refCount: Int { refs.load(ordering: .relaxed) }

    /// `try_module_get()`.
    func tryGet() -> Bool {
        if unloading { return false }
        refs.add(1, ordering: .relaxed)
        return true
    }

    /// `module_put()`.
    func put() { refs.subtract(1, ordering: .relaxed) }
}

/// A VFIO bus driver's callbacks, `struct vfio_device_ops` (docs/ERRORS.md#state-device), with the kernel's names.
///
/// Every member is optional, as a C ops table's function pointers are: the core checks presence
/// where the kernel does (`match` changes lookup, a missing `ioctl` gives EINVAL, `bind_iommufd`
/// without `unbind_iommufd`/`attach_ioas` fails registration).
public struct VFIODeviceOps: Sendable {
    /// The driver's name, for messages.
    public var name: String
    /// The driver's module; nil for built-in drivers (never unloading).
    public var module: DriverModule?
    /// `init`: called by device allocation; an error fails the allocation.
    public var initDevice: (@Sendable (VFIODevice) throws(Errno) -> Void)?
    /// `release`: called when the last device reference is put.
    public var release: (@Sendable (VFIODevice) -> Void)?
    /// `bind_iommufd(vdev, ictx, &out_device_id)`.
    public var bindIOMMUFD: (@Sendable (VFIODevice, IOMMUFDContext) throws(Errno) -> UInt32)?
    /// `unbind_iommufd(vdev)`.
    public var unbindIOMMUFD: (@Sendable (VFIODevice) -> Void)?
    /// `attach_ioas(vdev, &pt_id)`.
    public var attachIOAS: (@Sendable (VFIODevice, UInt32) throws(Errno) -> Void)?
    /// `open_device(vdev)`: the first open.
    public var openDevice: (@Sendable (VFIODevice) throws(Errno) -> Void)?
    /// `close_device(vdev)`: the last close.
    public var closeDevice: (@Sendable (VFIODevice) -> Void)?
    /// `read(vdev, buf, count, ppos)`: bytes read.
    public var read: (@Sendable (VFIODevice, UInt, Int, inout Int64) throws(Errno) -> Int)?
    /// `write(vdev, buf, count, ppos)`: bytes written.
    public var write: (@Sendable (VFIODevice, UInt, Int, inout Int64) throws(Errno) -> Int)?
    /// `ioctl(vdev, cmd, arg)`.
    public var ioctl: (@Sendable (VFIODevice, UInt32, UInt) throws(Errno) -> Int)?
    /// `mmap(vdev, vma)`: `(offset, length, prot, placement)` of the requested mapping (the
    /// placement carries VM_SHARED and where the caller wants it); returns the address.
    public var mmap: (@Sendable (VFIODevice, Int64, Int, Int32, MmapPlacement) throws(Errno) -> UInt)?
    /// `request(vdev, count)`: asked to release the device while unregister waits.
    public var request: (@Sendable (VFIODevice, UInt32) -> Void)?
    /// `match(vdev, buf)`: <0 error, 0 no match, >0 match (a custom GET_DEVICE_FD name match).
    public var match: (@Sendable (VFIODevice, String) -> Int32)?
    /// The driver's declaration that `match` is vfio-pci's (`vfio_pci_core_match`): for a name
    /// with no space in it (no options) it answers 0 unless the name is the device's own. The
    /// group then finds such a name through its name index instead of asking every device in
    /// turn; nothing can tell the difference, since every other device would answer 0.
    public var matchIsPCICoreMatch = false
    /// `device_feature(vdev, flags, arg, argsz)`.
    public var deviceFeature: (@Sendable (VFIODevice, UInt32, UInt, Int) throws(Errno) -> Int)?

    /// An ops table with only a name; set the members the driver implements.
    public init(name: String, module: DriverModule? = nil) {
        self.name = name
        self.module = module
    }
}
