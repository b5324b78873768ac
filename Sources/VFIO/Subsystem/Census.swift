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

    /// A snapshot of the counts.
    public struct Counts: Equatable, Sendable, CustomStringConvertible {
        public var files = 0, fds = 0, groups = 0, containers = 0, iommufdContexts = 0
        public var devices = 0, registeredDevices = 0, deviceSets = 0, kvmReferences = 0
        public var description: String {
            "files \(files), fds \(fds), groups \(groups), containers \(containers), iommufd \(iommufdContexts), "
                + "devices \(devices) (registered \(registeredDevices)), device sets \(deviceSets), kvm refs \(kvmReferences)"
        }
    }

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
}
