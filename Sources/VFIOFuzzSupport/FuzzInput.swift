// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import VFIO

/// The fuzzers' shared decoding, in a library so the libFuzzer executables and the regression tests
/// run an input through exactly the same code (a crash found by `VFIOFuzzOps` becomes a test that
/// replays its bytes through `FuzzOps.run`).
///
/// Only the core's public API is used: a fuzzer is a client, and a release fuzz build has no
/// `@testable` access.

/// Reads an input front to back; past the end every read answers 0, so any byte string decodes.
struct FuzzReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { offset >= bytes.count }

    mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }

    /// Up to `max` raw bytes (fewer at the end of the input).
    mutating func take(_ max: Int) -> UnsafeRawBufferPointer {
        let n = Swift.min(max, bytes.count - Swift.min(offset, bytes.count))
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }
}

/// The Linux errno numbers the model may answer; anything else is a finding.
public let knownLinuxErrnos: Set<Int32> = [1, 2, 4, 5, 6, 7, 9, 11, 12, 13, 14, 16, 17, 19, 22, 23, 24, 25, 28, 77, 95]

/// Makes a 64-bit value safe to hand the model as (or inside) an ioctl argument: a value that could
/// be a mapped user address (0x10000 up to the top of the user half) gets bit 47 set, which makes it
/// non-canonical, so following it faults (EFAULT) instead of touching this process's memory.
/// NULL and the first 64 KiB (never mapped: `mmap_min_addr`) pass unchanged, as do values past the
/// user half.
@inline(__always)
func harmless(_ v: UInt64) -> UInt64 {
    (v >= 0x1_0000 && v < 0x8000_0000_0000) ? v | 0x8000_0000_0000 : v
}

/// Argument memory for one input: a read-write page followed by an inaccessible one, so an argument
/// placed at the end of the first page makes the model's copies run into a fault (EFAULT), and a
/// separate anonymous area that DMA mappings may name as their vaddr.
final class FuzzMemory {
    static let page = 4096
    let base: UnsafeMutableRawPointer
    let dma: UnsafeMutableRawPointer
    static let dmaSize = 16 * 4096

    init() {
        base = mmap(nil, 2 * Self.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        mprotect(base + Self.page, Self.page, PROT_NONE)
        dma = mmap(nil, Self.dmaSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
    }

    deinit {
        munmap(base, 2 * Self.page)
        munmap(dma, Self.dmaSize)
    }

    /// Copies `payload` to the start of the page (zero-filled, NUL at the end), defusing every
    /// aligned 64-bit word that could be a pointer; returns its address.
    func buffer(_ payload: UnsafeRawBufferPointer) -> UInt {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: Self.page)
        if payload.count > 0 { base.copyMemory(from: payload.baseAddress!, byteCount: Swift.min(payload.count, Self.page - 1)) }
        defuse(count: payload.count)
        return UInt(bitPattern: base)
    }

    /// The same, placed so the payload ends at the inaccessible page.
    func bufferAtEdge(_ payload: UnsafeRawBufferPointer) -> UInt {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: Self.page)
        let n = Swift.min(payload.count, Self.page - 8)
        let start = (Self.page - n) & ~7   // aligned, so the defusing below sees the words the model reads
        if n > 0 { (base + start).copyMemory(from: payload.baseAddress!, byteCount: n) }
        defuse(count: Self.page)
        return UInt(bitPattern: base + start)
    }

    private func defuse(count: Int) {
        for i in stride(from: 0, to: Swift.min(count + 8, Self.page), by: 8) {
            let v = base.load(fromByteOffset: i, as: UInt64.self)
            base.storeBytes(of: harmless(v), toByteOffset: i, as: UInt64.self)
        }
        base.storeBytes(of: 0, toByteOffset: Self.page - 1, as: UInt8.self)
    }
}

/// A VM for `vfio_file_set_kvm`: `kvm_get_kvm_safe` / `kvm_put_kvm` count, a dying one refuses.
final class FuzzVM: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var users: Int
    private(set) var gets = 0
    private(set) var puts = 0

    init(dying: Bool) {
        users = dying ? 0 : 1
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    func getSafe() -> Bool {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        guard users > 0 else { return false }
        users += 1; gets += 1
        return true
    }

    func put() {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        users -= 1; puts += 1
    }

    static let ops = KVMOps(getSafe: { Unmanaged<FuzzVM>.fromOpaque($0).takeUnretainedValue().getSafe() },
                            put: { Unmanaged<FuzzVM>.fromOpaque($0).takeUnretainedValue().put() })
}
