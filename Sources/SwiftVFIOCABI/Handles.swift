// SPDX-License-Identifier: Apache-2.0
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
///   vfio-pci, reached with `swiftvfio_file_device`) are borrowed: valid while the device lives
///   (its model reference count is above zero). The slot holds the object strongly all the same
///   (a weak reference would move every retain of the device to its side table, on every call
///   that touches it); a slot whose device is gone retires when it is next resolved, or when the
///   table next grows (`purgeLocked`).
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
        /// The address of `object` while the slot holds it strongly (0 otherwise) and its exact
        /// class: what the fast path (`withLive`) reads, without retaining or casting.
        var strongBits: UInt = 0
        var type: ObjectIdentifier?
        /// A borrowed device handle: held strongly, valid while the device's count is above zero.
        var borrowed = false
        var target: AnyObject? { object ?? weakObject }
    }

    /// The slots, in memory the table manages itself: indexing it takes no retain of an array
    /// buffer and no exclusivity check, which matters on the fast path. Guarded by `lock`.
    struct SlotStore {
        private(set) var base: UnsafeMutablePointer<Slot>?
        private(set) var count = 0
        private var capacity = 0

        subscript(i: Int) -> Slot {
            unsafeAddress { UnsafePointer(base! + i) }
            nonmutating unsafeMutableAddress { base! + i }
        }

        var indices: Range<Int> { 0..<count }

        mutating func append(_ slot: Slot) {
            if count == capacity {
                let newCapacity = max(64, capacity * 2)
                let newBase = UnsafeMutablePointer<Slot>.allocate(capacity: newCapacity)
                if let base {
                    newBase.moveInitialize(from: base, count: count)
                    base.deallocate()
                }
                base = newBase
                capacity = newCapacity
            }
            (base! + count).initialize(to: slot)
            count += 1
        }
    }

    /// The process's table: one for the default model, never freed.
    static let shared = HandleTable()

    /// The classes the fast paths lend, as the slots record them: read from the table (one load)
    /// rather than through the class's metadata accessor (a call) on every query.
    let fileType = ObjectIdentifier(VFIOFile.self)
    let vfioDeviceType = ObjectIdentifier(VFIODevice.self)

    static let tag: UInt = 0x5f << 56
    static let generationMask: UInt32 = 0xff_ffff
    static let indexLimit = 1 << 24

    private let lock = KernelMutex("swiftvfio.handles")
    /// Guarded by `lock` (every access, read or write, holds it): the dynamic exclusivity check
    /// would only repeat that guarantee, on every C call.
    @exclusivity(unchecked) private var slots = SlotStore()
    /// `slots.count` at which `issue` next sweeps out borrowed handles of devices that are gone.
    private var nextPurge = 256
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
    /// that C now holds. `strong` keeps the object alive while the slot lives; `borrowed` (a
    /// device C holds no reference to) makes the handle valid only while the device's count is
    /// above zero.
    func issue(_ object: AnyObject, kind: HandleKind, strong: Bool = true, borrowed: Bool = false,
               addRef: Bool = false, name: String? = nil) throws(CallError) -> UInt {
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
                if slots.count >= Self.indexLimit || slots.count >= nextPurge {
                    purgeLocked()
                    nextPurge = max(256, slots.count * 2)
                }
                if let f = freeSlots.popLast() { i = f } else {
                    guard slots.count < Self.indexLimit else { throw CallError(.ENOMEM, "too many live handles") }
                    slots.append(Slot())
                    i = slots.count - 1
                }
            }
            slots[i].kind = kind
            slots[i].id = id
            slots[i].type = ObjectIdentifier(Swift.type(of: object))
            if strong {
                slots[i].object = object
                slots[i].strongBits = UInt(bitPattern: Unmanaged.passUnretained(object).toOpaque())
            } else {
                slots[i].weakObject = object
            }
            slots[i].cRefs = addRef ? 1 : 0
            slots[i].releasing = false
            slots[i].borrowed = borrowed
            if let name { slots[i].name = strdup(name) }
            byObject[id] = i
            return Self.token(kind: kind, generation: slots[i].generation, index: i)
        }
    }

    // MARK: resolving

    /// The fast path of `resolve`, for the calls C makes most: when `token` is a live handle of
    /// `kind` to an object of class `T` that passes `alive`, runs `body` on it with the table's
    /// lock held and returns its result; otherwise nil, and the caller takes `resolve`, which
    /// says what is wrong. A strongly held object is lent to `body` without a retain (the slot
    /// keeps it alive and cannot change while the lock is held). `body` runs under the lock: it
    /// must not take any lock that is held while handles are resolved (a driver callback can run
    /// under a group's locks and resolve handles), nor call back into this table.
    @inline(__always)
    func withLive<T: AnyObject, R>(_ token: UInt, _ kind: HandleKind, as: T.Type, type: ObjectIdentifier,
                                   alive: (T) -> Bool, _ body: (T) -> R) -> R? {
        guard token & (0xff << 56) == Self.tag, token & 0xf == 0,
              UInt8(truncatingIfNeeded: token >> 52) & 0xf == kind.rawValue else { return nil }
        let generation = UInt32(truncatingIfNeeded: token >> 28) & Self.generationMask
        let index = Int(truncatingIfNeeded: token >> 4) & (Self.indexLimit - 1)
        lock.lock()
        defer { lock.unlock() }
        // `type` is T's identifier (the callers pass the table's own copy of it).
        guard index < slots.count, slots[index].kind == kind, slots[index].generation == generation,
              slots[index].type == type else { return nil }
        let bits = slots[index].strongBits
        let releasing = slots[index].releasing
        if let object = Unretained<T>(bits: bits) {
            // Held by the slot, which cannot change while the lock is held.
            return object.with { (object) -> R? in
                guard releasing || alive(object) else { return nil }
                return body(object)
            }
        }
        guard let object = slots[index].weakObject as? T, releasing || alive(object) else { return nil }
        return body(object)
    }

    /// `withLive` for two handles at once (one lock hold): `body` gets both objects, or the call
    /// returns nil when either is not a live handle of its kind.
    @inline(__always)
    func withLivePair<T: AnyObject, U: AnyObject, R>(_ t: UInt, _ tKind: HandleKind, as _: T.Type, type tType: ObjectIdentifier,
                                                     alive tAlive: (T) -> Bool,
                                                     _ u: UInt, _ uKind: HandleKind, as _: U.Type, type uType: ObjectIdentifier,
                                                     alive uAlive: (U) -> Bool,
                                                     _ body: (T, U) -> R) -> R? {
        guard let (ti, tg) = Self.fastDecode(t, tKind), let (ui, ug) = Self.fastDecode(u, uKind) else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard let tBits = strongBitsLocked(ti, tKind, tg, tType), let uBits = strongBitsLocked(ui, uKind, ug, uType) else {
            return nil
        }
        // Both held by their slots, which cannot change while the lock is held.
        return Unretained<T>(tBits).with { (a) -> R? in
            Unretained<U>(uBits).with { (b) -> R? in
                guard slots[ti].releasing || tAlive(a), slots[ui].releasing || uAlive(b) else { return nil }
                return body(a, b)
            }
        }
    }

    /// The slot index and generation a token of `kind` names, or nil for anything else.
    @inline(__always)
    private static func fastDecode(_ token: UInt, _ kind: HandleKind) -> (Int, UInt32)? {
        guard token & (0xff << 56) == tag, token & 0xf == 0,
              UInt8(truncatingIfNeeded: token >> 52) & 0xf == kind.rawValue else { return nil }
        return (Int(truncatingIfNeeded: token >> 4) & (indexLimit - 1), UInt32(truncatingIfNeeded: token >> 28) & generationMask)
    }

    /// The strongly held object of class `T` in a live slot, as a raw pointer; lock held.
    @inline(__always)
    private func strongBitsLocked(_ index: Int, _ kind: HandleKind, _ generation: UInt32, _ type: ObjectIdentifier) -> UnsafeRawPointer? {
        guard index < slots.count, slots[index].kind == kind, slots[index].generation == generation,
              slots[index].type == type else { return nil }
        return UnsafeRawPointer(bitPattern: slots[index].strongBits)
    }

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
            for i in slots.indices where slots[i].kind != nil && slots[i].cRefs > 0 {
                counts[slots[i].kind!, default: 0] += slots[i].cRefs
            }
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

    /// Retires slots whose weakly held object is gone, and borrowed device handles whose device
    /// is gone (the table is full, or has doubled since the last sweep).
    private func purgeLocked() {
        for i in slots.indices where slots[i].kind != nil {
            if slots[i].target == nil {
                retireLocked(i)
            } else if slots[i].borrowed, !slots[i].releasing, slots[i].cRefs == 0,
                      let d = slots[i].object as? VFIODevice, d.refCount <= 0 {
                retireLocked(i)
            }
        }
    }

    static func hex(_ token: UInt) -> String { "0x" + String(token, radix: 16) }
}

extension UInt {
    /// A token as the C pointer type `T`.
    @inline(__always) func handle<T>(_: T.Type = T.self) -> UnsafeMutablePointer<T>? { UnsafeMutablePointer(bitPattern: self) }
}

/// A C pointer argument as a token.
@inline(__always) func tokenOf<T>(_ p: UnsafeMutablePointer<T>?) -> UInt { UInt(bitPattern: p) }
