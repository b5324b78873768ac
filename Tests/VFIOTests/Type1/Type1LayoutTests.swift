// SPDX-License-Identifier: Apache-2.0
// Type1 uAPI layout: struct sizes and offsets against <linux/vfio.h>, domain config ranges.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import VFIO

// MARK: - ABI layout

@Suite("type1: uapi layout")
struct Type1LayoutTests {
    @Test func structSizesAndOffsets() {
        #expect(MemoryLayout<Type1InfoArg>.size == 24)
        #expect(MemoryLayout<Type1InfoArg>.offset(of: \.iovaPgsizes) == 8)
        #expect(MemoryLayout<Type1InfoArg>.offset(of: \.capOffset) == 16)
        #expect(MemoryLayout<Type1DMAMapArg>.size == 32)
        #expect(MemoryLayout<Type1DMAMapArg>.offset(of: \.vaddr) == 8)
        #expect(MemoryLayout<Type1DMAMapArg>.offset(of: \.iova) == 16)
        #expect(MemoryLayout<Type1DMAMapArg>.offset(of: \.size) == 24)
        #expect(MemoryLayout<Type1DMAUnmapArg>.size == 24)
        #expect(MemoryLayout<Type1DMAUnmapArg>.offset(of: \.size) == 16)
        #expect(MemoryLayout<Type1Bitmap>.size == 24)
        #expect(MemoryLayout<Type1DMAUnmapBitmapArg>.size == 48)
        #expect(MemoryLayout<Type1DMAUnmapBitmapArg>.offset(of: \.bitmap) == 24)
        #expect(MemoryLayout<Type1DirtyBitmapArg>.size == 8)
        #expect(MemoryLayout<Type1DirtyBitmapGet>.size == 40)
        #expect(MemoryLayout<Type1DirtyBitmapGetArg>.size == 48)
        #expect(MemoryLayout<Type1DirtyBitmapGetArg>.offset(of: \.range) == 8)
    }

    @Test func domainConfigRanges() {
        #expect(Type1DomainConfig.intelDefault.iovaRanges == [
            Type1IOVARange(start: 0, end: 0xFEDF_FFFF), Type1IOVARange(start: 0xFEF0_0000, end: 0xFFFF_FFFF_FFFF)])
    }
}
