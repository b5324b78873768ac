// SPDX-License-Identifier: Apache-2.0
/// `struct vfio_device_set`: devices that must open, close and reset together share one lock.
///
/// A device without an explicit set gets a singleton keyed by itself. `lock` (`dev_set->lock`)
/// serialises first open and last close of every member (docs/ERRORS.md#state-device, docs/ERRORS.md#state-device).
public final class DeviceSet: @unchecked Sendable {
    /// `dev_set->lock`.
    let lock = KernelMutex("dev_set->lock")
    let key: ObjectIdentifier
    /// Members, guarded by `lock` (and by the subsystem's set table for membership changes).
    var members: [VFIODevice] = []

    init(key: ObjectIdentifier) { self.key = key }

    /// Kernel: vfio_device_set_open_count(): the sum of the members' open counts (vfio-pci uses it
    /// for reset decisions). Caller holds `lock`.
    func openCount() -> Int {
        lock.assertHeld()
        return members.reduce(0) { $0 + $1.openCountStorage }
    }

    /// The members' summed open counts, taking the lock.
    public var totalOpenCount: Int { lock.withLock { openCount() } }

    /// The number of member devices.
    public var count: Int { lock.withLock { members.count } }
}
