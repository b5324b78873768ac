// SPDX-License-Identifier: Apache-2.0
// The run-time version (the header's SWIFTVFIO_VERSION_* macros are the compile-time one; both
// come from VERSION through Scripts/gen-header.sh).

/// Returns the library's version as "MAJOR.MINOR.PATCH" (a static string, never NULL): the
/// version of the libswiftvfio.so actually loaded, which may be newer than the header a program
/// was compiled with (SWIFTVFIO_VERSION_STRING); the SONAME's number (libswiftvfio.so.N) is
/// MAJOR. Each of `major`, `minor`, `patch` that is not NULL receives that number. Never fails.
@c public func swiftvfio_version(_ major: UnsafeMutablePointer<CInt>?, _ minor: UnsafeMutablePointer<CInt>?,
                                 _ patch: UnsafeMutablePointer<CInt>?) -> UnsafePointer<CChar>? {
    let parts = "\(swiftvfioVersionString)".split(separator: ".").map { CInt($0) ?? 0 }
    major?.pointee = parts[0]
    minor?.pointee = parts[1]
    patch?.pointee = parts[2]
    return UnsafeRawPointer(swiftvfioVersionString.utf8Start).assumingMemoryBound(to: CChar.self)
}
