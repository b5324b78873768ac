#if canImport(Glibc)
import Glibc
#endif
import VFIO

/// What a handle stands for; part of the token, so a handle of the wrong type is told apart from a
/// forged one.
enum HandleKind: UInt8, CustomStringConvertible {
    case file = 1, vfioDevice, iommuGroup, iommufdCtx, device

    var description: String {
        switch self {
        case .file: "struct file *"
        case .vfioDevice: "struct vfio_device *"
        case .iommuGroup: "struct iommu_group *"
        case .iommufdCtx: "struct iommufd_ctx *"
        case .device: "struct device *"
        }
    }
}

/// The pointers the library hands to C, and the objects behind them.
///
/// A handle is a token, not an address: bits 63..56 hold a tag (0x5f, which makes the value a
/// non-canonical x86-64 address, so a C program that dereferences one faults at once instead of
/// scribbling on memory), 55..52 the kind, 51..28 a generation, 27..4 a slot index, 3..0 zero
/// (pointer-aligned). A slot holds one object; while it is live the same object always gets the
/// same token (the kernel's pointer identity: KVM matches GROUP_DEL by `struct file *`). Retiring
/// a slot bumps its generation, so an old token is recognised as used-after-put, not confused with
/// the slot's next object.
///
/// Reference rules by kind:
/// - file, iommu_group: the slot counts the references C holds (`cRefs`); each is a real model
///   reference. The slot retires when C puts its last one.
/// - vfio_device: C drivers' devices are held from allocation until their release op has run (the
///   model's reference count decides, `cRefs` counts only what C may put). Other devices (built-in
///   vfio-pci, reached with `swiftvfio_file_device`) are borrowed: valid while the device lives.
/// - device (bus device): valid while it is in the model (no reference count, as the model's
///   hardware has none).
/// - iommufd_ctx: held weakly; valid while the context object lives.
final class HandleTable: @unchecked Sendable {
    struct Slot {
        var generation: UInt32 = 0
        var kind: HandleKind?
        var object: AnyObject?
        weak var weakObject: AnyObject?
        var cRefs = 0
        /// Set while a C driver's release op runs: the device's count is 0 but the handle works.
        var releasing = false
        /// `dev_name()` for device handles, owned by the slot.
        var name: UnsafeMutablePointer<CChar>?
        /// The object's identity, the key of `byObject` (kept: a weak object may be gone).
        var id: ObjectIdentifier?
        var target: AnyObject? { object ?? weakObject }
    }

    static let tag: UInt = 0x5f << 56
    static let generationMask: UInt32 = 0xff_ffff
    static let indexLimit = 1 << 24

    private let lock = KernelMutex("swiftvfio.handles")
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var byObject: [ObjectIdentifier: Int] = [:]

    // MARK: tokens

    private static func token(kind: HandleKind, generation: UInt32, index: Int) -> UInt {
        tag | UInt(kind.rawValue) << 52 | UInt(generation & generationMask) << 28 | UInt(index) << 4
    }

    private enum Decoded {
        case null, foreign
        case handle(kind: HandleKind, generation: UInt32, index: Int)
    }

    private static func decode(_ token: UInt) -> Decoded {
        if token == 0 { return .null }
        guard token & (0xff << 56) == tag, token & 0xf == 0,
              let kind = HandleKind(rawValue: UInt8(truncatingIfNeeded: token >> 52) & 0xf) else { return .foreign }
        return .handle(kind: kind, generation: UInt32(truncatingIfNeeded: token >> 28) & generationMask,
                       index: Int(truncatingIfNeeded: token >> 4) & (indexLimit - 1))
    }

    // MARK: issuing

    /// The token for `object`, creating a slot if it has none; `addRef` counts one more reference
    /// that C now holds. `strong` keeps the object alive while the slot lives.
    func issue(_ object: AnyObject, kind: HandleKind, strong: Bool = true, addRef: Bool = false,
               name: String? = nil) throws(CallError) -> UInt {
        try lock.withLock { () throws(CallError) -> UInt in
            let id = ObjectIdentifier(object)
            if let i = byObject[id], slots[i].kind == kind, slots[i].target === object {
                if addRef { slots[i].cRefs += 1 }
                return Self.token(kind: kind, generation: slots[i].generation, index: i)
            }
            if let i = byObject[id] { retireLocked(i) }   // a dead object's identity was reused
            let i: Int
            if let f = freeSlots.popLast() {
                i = f
            } else {
                if slots.count >= Self.indexLimit { purgeLocked() }
                if let f = freeSlots.popLast() { i = f } else {
                    guard slots.count < Self.indexLimit else { throw CallError(.ENOMEM, "too many live handles") }
                    slots.append(Slot())
                    i = slots.count - 1
                }
            }
            slots[i].kind = kind
            slots[i].id = id
            if strong { slots[i].object = object } else { slots[i].weakObject = object }
            slots[i].cRefs = addRef ? 1 : 0
            slots[i].releasing = false
            if let name { slots[i].name = strdup(name) }
            byObject[id] = i
            return Self.token(kind: kind, generation: slots[i].generation, index: i)
        }
    }

    // MARK: resolving

    /// The object behind `token`, which must be a live handle of `kind` whose object passes
    /// `alive`; otherwise a WARN in `sub`'s log and an error naming the misuse. `fn` names the
    /// C function for the messages.
    func resolve<T: AnyObject>(_ token: UInt, _ kind: HandleKind, as: T.Type, sub: VFIOSubsystem, fn: StaticString,
                               errno: Errno = .EINVAL, alive: (T) -> Bool = { _ in true }) throws(CallError) -> T {
        let outcome: Result<T, CallError> = lock.withLock {
            switch Self.decode(token) {
            case .null:
                return .failure(CallError(errno, "NULL \(kind)"))
            case .foreign:
                return .failure(CallError(errno, "\(kind) \(Self.hex(token)) was never issued by libswiftvfio"))
            case let .handle(k, generation, index):
                guard k == kind else {
                    return .failure(CallError(errno, "\(Self.hex(token)) is a \(k), not a \(kind)"))
                }
                guard index < slots.count else {
                    return .failure(CallError(errno, "\(kind) \(Self.hex(token)) was never issued by libswiftvfio"))
                }
                let slot = slots[index]
                guard slot.kind == kind, slot.generation == generation & Self.generationMask,
                      let object = slot.target as? T else {
                    return .failure(CallError(errno, "\(kind) \(Self.hex(token)) is stale: used after its last put"))
                }
                guard slot.releasing || alive(object) else {
                    retireLocked(index)
                    return .failure(CallError(errno, "\(kind) \(Self.hex(token)) is stale: its object is gone"))
                }
                return .success(object)
            }
        }
        switch outcome {
        case .success(let object): return object
        case .failure(let error):
            sub.log.warnOn(true, "\(fn): \(error.message)")
            throw error
        }
    }

    /// Drops one reference C holds through `token` (a put). Returns the object so the caller can
    /// put the model reference, or throws (with a WARN) for a bad handle or a put too many.
    func put<T: AnyObject>(_ token: UInt, _ kind: HandleKind, as: T.Type, sub: VFIOSubsystem, fn: StaticString,
                           retireAtZero: Bool) throws(CallError) -> T {
        let object = try resolve(token, kind, as: T.self, sub: sub, fn: fn)
        let ok = lock.withLock { () -> Bool in
            guard case let .handle(_, _, index) = Self.decode(token), index < slots.count,
                  slots[index].target === object, slots[index].cRefs > 0 else { return false }
            slots[index].cRefs -= 1
            if slots[index].cRefs == 0 && retireAtZero { retireLocked(index) }
            return true
        }
        if !ok {
            let error = CallError(.EINVAL, "\(kind) \(Self.hex(token)): put too many (the caller holds no reference)")
            sub.log.warnOn(true, "\(fn): \(error.message)")
            throw error
        }
        return object
    }

    /// The `dev_name()` string of a handle's slot.
    func name(_ token: UInt) -> UnsafePointer<CChar>? {
        lock.withLock {
            guard case let .handle(_, _, index) = Self.decode(token), index < slots.count,
                  let p = slots[index].name else { return nil }
            return UnsafePointer(p)
        }
    }

    /// Marks the slot of `object` as running its release op (or clears the mark).
    func setReleasing(_ object: AnyObject, _ on: Bool) {
        lock.withLock {
            if let i = byObject[ObjectIdentifier(object)], slots[i].target === object { slots[i].releasing = on }
        }
    }

    /// Retires the slot of `object`, if it has one: its token becomes stale.
    func retire(_ object: AnyObject) {
        lock.withLock {
            if let i = byObject[ObjectIdentifier(object)], slots[i].target === object { retireLocked(i) }
        }
    }

    /// Retires the slot `token` names, if it still does.
    func retire(token: UInt) {
        lock.withLock {
            if case let .handle(_, generation, index) = Self.decode(token), index < slots.count,
               slots[index].kind != nil, slots[index].generation == generation { retireLocked(index) }
        }
    }

    /// Retires every slot (the model was replaced).
    func retireAll() {
        lock.withLock {
            for i in slots.indices where slots[i].kind != nil { retireLocked(i) }
        }
    }

    /// A description of the references C still holds, or nil if none.
    func heldReferences() -> String? {
        lock.withLock {
            var counts: [HandleKind: Int] = [:]
            for s in slots where s.kind != nil && s.cRefs > 0 { counts[s.kind!, default: 0] += s.cRefs }
            if counts.isEmpty { return nil }
            return counts.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        }
    }

    private func retireLocked(_ i: Int) {
        if let id = slots[i].id, byObject[id] == i { byObject[id] = nil }
        free(slots[i].name)
        slots[i] = Slot(generation: (slots[i].generation &+ 1) & Self.generationMask)
        freeSlots.append(i)
    }

    /// Retires slots whose weakly held object is gone (the table is full).
    private func purgeLocked() {
        for i in slots.indices where slots[i].kind != nil && slots[i].target == nil { retireLocked(i) }
    }

    static func hex(_ token: UInt) -> String { "0x" + String(token, radix: 16) }
}

extension UInt {
    /// A token as the C pointer type `T`.
    @inline(__always) func handle<T>(_: T.Type = T.self) -> UnsafeMutablePointer<T>? { UnsafeMutablePointer(bitPattern: self) }
}

/// A C pointer argument as a token.
@inline(__always) func tokenOf<T>(_ p: UnsafeMutablePointer<T>?) -> UInt { UInt(bitPattern: p) }
