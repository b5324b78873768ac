// SPDX-License-Identifier: Apache-2.0
/// The kernel's IDA: hands out the smallest free integer id in `[0, limit)`.
///
/// A bitmap with a hint at the lowest word that may have a free bit, so allocation is amortised
/// O(1) while ids are handed out in order and freeing is O(1). Not thread-safe: its owner's lock
/// guards it (the kernel's IDA has its own spinlock; here the subsystem's `idaLock` does).
struct IDA {
    private var words: [UInt64] = []
    private var hint = 0          // no free bit below word `hint`
    let limit: Int
    private(set) var count = 0

    init(limit: Int) { self.limit = limit }

    /// The smallest free id that is >= `minimum`, now taken. ENOSPC when none is left.
    mutating func alloc(minimum: Int = 0) throws(Errno) -> Int {
        var w = minimum > 0 ? minimum >> 6 : hint
        while true {
            if w >= words.count {
                if w * 64 >= limit { throw .ENOSPC.because("no free id below {}", limit) }
                words.append(0)
                continue
            }
            var free = ~words[w]
            if minimum > 0 && w == minimum >> 6 { free &= ~((UInt64(1) << UInt64(minimum & 63)) &- 1) }
            if free != 0 {
                let id = w * 64 + free.trailingZeroBitCount
                if id >= limit { throw .ENOSPC.because("no free id below {}", limit) }
                words[w] |= UInt64(1) << UInt64(id & 63)
                if minimum == 0 { hint = w }
                count += 1
                return id
            }
            w += 1
        }
    }

    /// Takes a specific id; false if it is already taken or out of range.
    mutating func take(_ id: Int) -> Bool {
        guard id >= 0, id < limit else { return false }
        while words.count <= id >> 6 { words.append(0) }
        let bit = UInt64(1) << UInt64(id & 63)
        if words[id >> 6] & bit != 0 { return false }
        words[id >> 6] |= bit
        count += 1
        return true
    }

    /// Whether `id` is taken.
    func contains(_ id: Int) -> Bool {
        guard id >= 0, id >> 6 < words.count else { return false }
        return words[id >> 6] & (UInt64(1) << UInt64(id & 63)) != 0
    }

    /// Returns `id` to the pool. Returns false (the caller WARNs) if it was not taken.
    @discardableResult
    mutating func free(_ id: Int) -> Bool {
        guard contains(id) else { return false }
        words[id >> 6] &= ~(UInt64(1) << UInt64(id & 63))
        if id >> 6 < hint { hint = id >> 6 }
        count -= 1
        return true
    }
}
