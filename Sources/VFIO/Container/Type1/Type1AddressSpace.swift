// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where MAP_DMA asks whether user memory could be pinned (docs/ERRORS.md#t1-map step 12, docs/DECISIONS.md#t1-simplified item 2).
///
/// The model pins nothing; it only reproduces the errno `pin_user_pages_remote()` would give.
public protocol Type1AddressSpace: Sendable {
    /// Throws EFAULT unless every page of `[vaddr, vaddr + size)` lies in a VMA of the calling
    /// process that GUP would accept for the access (`write` = FOLL_WRITE). `size > 0` and the
    /// range does not wrap (MAP checked both).
    func checkPinnable(vaddr: UInt64, size: UInt64, write: Bool) throws(Errno)
}

/// The calling process's own VMAs at every check: asked of the kernel one at a time (PROCMAP_QUERY,
/// Linux 6.11), or read from `/proc/self/maps` where it has no such ioctl.
///
/// Mirrors GUP's `check_vma_flags()` as far as `/proc/self/maps` can tell: no VMA (a hole) is
/// EFAULT; with FOLL_WRITE the VMA must be writable (VM_WRITE; a write-only VMA passes, as in the
/// kernel); without it the VMA must be readable (VM_READ). secretmem VMAs are refused. VM_IO /
/// VM_PFNMAP, fs-DAX and RLIMIT_MEMLOCK are not visible here and are not modelled (docs/DECISIONS.md#t1-simplified item 2).
public struct Type1ProcSelfMaps: Type1AddressSpace {
    /// The default checker.
    public init() {}

    /// Kernel: vaddr_get_pfns() → pin_user_pages_remote() → check_vma_flags()
    public func checkPinnable(vaddr: UInt64, size: UInt64, write: Bool) throws(Errno) {
        // If the maps file cannot be read the model cannot tell; it accepts rather than fail
        // valid memory (the kernel would always know).
        guard size > 0 else { return }
        if let covered = Self.queryCovers(vaddr: vaddr, size: size, write: write) {
            if !covered { throw Self.refusal(vaddr: vaddr, size: size, write: write) }
            return
        }
        guard let maps = Self.readMaps() else { return }
        try Self.check(maps: maps, vaddr: vaddr, size: size, write: write)
    }

    /// The same rule asked of the kernel one VMA at a time (PROCMAP_QUERY, Linux 6.11): whether the
    /// range is covered, or nil when the kernel cannot say (then the maps text decides). Reading
    /// and parsing all of /proc/self/maps for each MAP_DMA was most of an interposed QEMU's ioctl
    /// time at start-up (its maps list every library it loads).
    static func queryCovers(vaddr: UInt64, size: UInt64, write: Bool) -> Bool? {
        let fd = svfio_vma_open()
        guard fd >= 0 else { return nil }
        defer { svfio_vma_close(fd) }
        let last = vaddr &+ (size - 1)
        var cursor = vaddr          // the first byte not yet known to be covered
        var vma = svfio_vma()
        while true {
            let r = svfio_vma_at(fd, cursor, &vma)
            if r < 0 { return nil }
            if r == 0 { return false }                                         // a hole
            if vma.secret != 0 || !(write ? vma.writable != 0 : vma.readable != 0) { return false }
            if vma.end &- 1 >= last { return true }                            // covered to the end
            cursor = vma.end                                                    // the next VMA may continue it
        }
    }

    private static func refusal(vaddr: UInt64, size: UInt64, write: Bool) -> Errno {
        write ? .EFAULT.because("vaddr {x} size {x}: not all mapped writable in this process", vaddr, size)
              : .EFAULT.because("vaddr {x} size {x}: not all mapped readable in this process", vaddr, size)
    }

    /// The coverage rule over the text of a maps file: walks the VMAs in address order, so a range
    /// spanning several adjacent VMAs passes only if each one grants the access.
    static func check(maps: [UInt8], vaddr: UInt64, size: UInt64, write: Bool) throws(Errno) {
        guard size > 0 else { return }
        let last = vaddr &+ (size - 1)
        var cursor = vaddr          // the first byte not yet known to be covered
        var ok = false
        Self.forEachVMA(in: maps) { start, end, readable, writable, secret in
            if end <= cursor { return true }                     // entirely below: keep looking
            if start > cursor { return false }                   // a hole before the next VMA
            if secret || !(write ? writable : readable) { return false }
            if end &- 1 >= last { ok = true; return false }      // covered to the end
            cursor = end                                         // adjacent VMAs may continue it
            return true
        }
        if !ok { throw refusal(vaddr: vaddr, size: size, write: write) }
    }

    /// The whole of `/proc/self/maps`, or nil if it cannot be read.
    static func readMaps() -> [UInt8]? {
        let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        var out: [UInt8] = []
        out.reserveCapacity(16384)
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Calls `body(start, end, readable, writable, secretmem)` for each line of a maps file, in
    /// address order, until it returns false.
    static func forEachVMA(in maps: [UInt8],
                           _ body: (UInt64, UInt64, Bool, Bool, Bool) -> Bool) {
        let secretName = Array("/secretmem (deleted)".utf8)
        var i = 0
        let n = maps.count
        while i < n {
            var lineEnd = i
            while lineEnd < n && maps[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            // "start-end perms offset dev inode [path]"
            var p = i
            func hex() -> UInt64 {
                var v: UInt64 = 0
                while p < lineEnd, let d = hexDigit(maps[p]) { v = v << 4 | d; p += 1 }
                return v
            }
            let start = hex()
            if p < lineEnd && maps[p] == UInt8(ascii: "-") { p += 1 }
            let end = hex()
            if p < lineEnd && maps[p] == UInt8(ascii: " ") { p += 1 }
            if p + 2 <= lineEnd {
                let readable = maps[p] == UInt8(ascii: "r")
                let writable = maps[p + 1] == UInt8(ascii: "w")
                let secret = lineEnd - i >= secretName.count
                    && maps[(lineEnd - secretName.count)..<lineEnd].elementsEqual(secretName)
                if !body(start, end, readable, writable, secret) { return }
            }
            i = lineEnd + 1
        }
    }

    /// The value of one hexadecimal digit, or nil.
    private static func hexDigit(_ c: UInt8) -> UInt64? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt64(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt64(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt64(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
