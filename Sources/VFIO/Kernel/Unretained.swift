// SPDX-License-Identifier: Apache-2.0
/// An object reached through a raw pointer that something else keeps alive, used without taking a
/// reference of its own: the one unsafe construct the system-call fast paths use, so each use is
/// a visible `Unretained(...).with { }` whose caller says what keeps the object alive.
///
/// Why it exists: a Swift reference taken from a raw pointer or a mutable slot is retained for
/// its use and released after, two atomic read-modify-writes of the object's reference count.
/// On an object every thread reaches on every call (the default subsystem, a handle's file) that
/// count is one cache line that threads working on unrelated groups would all write; the
/// benchmark's two-thread rows (docs/BENCHMARKS.md) are where that shows. Where the object is a
/// `let` of something the caller already holds, plain Swift borrows it with no retain, and this
/// is not needed.
@frozen
public struct Unretained<T: AnyObject> {
    @usableFromInline let reference: Unmanaged<T>

    /// The object at `pointer` (from `Unmanaged.toOpaque()` of a reference kept elsewhere).
    @inlinable public init(_ pointer: UnsafeRawPointer) { reference = Unmanaged<T>.fromOpaque(pointer) }

    /// The object whose address is `bits`, or nil for 0.
    @inlinable public init?(bits: UInt) {
        guard let p = UnsafeRawPointer(bitPattern: bits) else { return nil }
        reference = Unmanaged<T>.fromOpaque(p)
    }

    /// Runs `body` on the object. The caller guarantees the object outlives the call.
    @inlinable @inline(__always)
    public func with<R, E: Error>(_ body: (T) throws(E) -> R) throws(E) -> R {
        let result = reference._withUnsafeGuaranteedRef { (object) -> Result<R, E> in
            do throws(E) { return .success(try body(object)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
