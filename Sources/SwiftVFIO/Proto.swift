import VFIO
import CSwiftVFIOTypes

/// Does a thing.
///
/// Returns 0.
@c public func swiftvfio_proto(_ f: UnsafeMutablePointer<file>?, _ ops: UnsafePointer<vfio_device_ops>?) -> Bool {
    if let ops { _ = ops.pointee.`init` }
    return f == nil
}
/// t
@c public func swiftvfio_types(_ a: CUnsignedLong, _ b: CLong, _ c: Int, _ d: CInt, _ e: CUnsignedInt, _ f: UnsafeMutableRawPointer?, _ g: UnsafeRawPointer?, _ h: CLongLong, _ i: Int64, _ j: UInt32, _ k: size_t, _ l: ssize_t, _ m: off_t) -> CLong { 0 }
