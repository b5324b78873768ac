// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// Live-object counts of one subsystem, so a test that leaks fails and names what leaked.
public final class Census: Sendable {
    private let files = Atomic<Int>(0)
    private let fds = Atomic<Int>(0)
    private let groups = Atomic<Int>(0)
    private let containers = Atomic<Int>(0)
    private let iommufds = Atomic<Int>(0)
    private let devices = Atomic<Int>(0)
    private let registered = Atomic<Int>(0)
    private let deviceSets = Atomic<Int>(0)
    private let kvmRefs = Atomic<Int>(0)
    private let iommuGroups = Atomic<Int>(0)

    /// A snapshot of the counts.
    public struct Counts: Equatable, Sendable, CustomStringConvertible {
        public var files = 0, fds = 0, groups = 0, containers = 0, iommufdContexts = 0
        public var devices = 0, registeredDevices = 0, deviceSets = 0, kvmReferences = 0
        /// Whether every count is zero: nothing of the VFIO layer is alive.
        public var isEmpty: Bool { self == Counts() }
        /// Only the non-zero counts, named ("2 files, 1 fds"), or "nothing" when all are zero.
        public var leaks: String {
            let named: [(String, Int)] = [("files", files), ("fds", fds), ("groups", groups), ("containers", containers),
                                          ("iommufd contexts", iommufdContexts), ("devices", devices),
                                          ("registered devices", registeredDevices), ("device sets", deviceSets),
                                          ("kvm references", kvmReferences)]
            let nonZero = named.filter { $0.1 != 0 }.map { "\($0.1) \($0.0)" }
            return nonZero.isEmpty ? "nothing" : nonZero.joined(separator: ", ")
        }
        public var description: String {
            "files \(files), fds \(fds), groups \(groups), containers \(containers), iommufd \(iommufdContexts), "
                + "devices \(devices) (registered \(registeredDevices)), device sets \(deviceSets), kvm refs \(kvmReferences)"
        }
    }

    /// Live `IOMMUGroup` objects (discovered and fake): created by `IOMMUCore.addGroup` and
    /// `allocFakeGroup`, freed by the last `iommu_group_put`.
    ///
    /// Kept out of `Counts` on purpose: IOMMU groups are hardware, which outlives every VFIO object
    /// (the topology owns the discovered ones), so "an empty census" keeps meaning "no VFIO object
    /// left" while this count is checked against what the topology owns. A leaked
    /// `iommu_group_get`, or a fake group a failed registration forgot, shows up here.
    public var iommuGroupCount: Int { iommuGroups.load(ordering: .relaxed) }

    /// The counts now.
    public var counts: Counts {
        Counts(files: files.load(ordering: .relaxed), fds: fds.load(ordering: .relaxed),
               groups: groups.load(ordering: .relaxed), containers: containers.load(ordering: .relaxed),
               iommufdContexts: iommufds.load(ordering: .relaxed), devices: devices.load(ordering: .relaxed),
               registeredDevices: registered.load(ordering: .relaxed), deviceSets: deviceSets.load(ordering: .relaxed),
               kvmReferences: kvmRefs.load(ordering: .relaxed))
    }

    func fileCreated() { files.add(1, ordering: .relaxed) }
    func fileReleased() { files.subtract(1, ordering: .relaxed) }
    func fdInstalled() { fds.add(1, ordering: .relaxed) }
    func fdClosed() { fds.subtract(1, ordering: .relaxed) }
    func groupCreated() { groups.add(1, ordering: .relaxed) }
    func groupFreed() { groups.subtract(1, ordering: .relaxed) }
    func containerCreated() { containers.add(1, ordering: .relaxed) }
    func containerFreed() { containers.subtract(1, ordering: .relaxed) }
    func iommufdCreated() { iommufds.add(1, ordering: .relaxed) }
    func iommufdFreed() { iommufds.subtract(1, ordering: .relaxed) }
    func deviceCreated() { devices.add(1, ordering: .relaxed) }
    func deviceFreed() { devices.subtract(1, ordering: .relaxed) }
    func deviceRegistered() { registered.add(1, ordering: .relaxed) }
    func deviceUnregistered() { registered.subtract(1, ordering: .relaxed) }
    func deviceSetCreated() { deviceSets.add(1, ordering: .relaxed) }
    func deviceSetFreed() { deviceSets.subtract(1, ordering: .relaxed) }
    func kvmReferenceTaken() { kvmRefs.add(1, ordering: .relaxed) }
    func kvmReferenceDropped() { kvmRefs.subtract(1, ordering: .relaxed) }
    func iommuGroupCreated() { iommuGroups.add(1, ordering: .relaxed) }
    func iommuGroupFreed() { iommuGroups.subtract(1, ordering: .relaxed) }
}
