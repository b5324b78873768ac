// SPDX-License-Identifier: Apache-2.0
import VFIO

// The decoded trace (SWIFTVFIO_TRACE) for C code beside the model: the interposer's kvm-vfio
// device (Sources/CSwiftVFIOPreload/kvm) traces the KVM calls it serves (KVM_CREATE_DEVICE,
// KVM_SET_DEVICE_ATTR with its result, its release), so one trace shows the whole KVM link in
// order with the model's own lines. And the model's side of that link: every vfio_file_set_kvm()
// call, naming the group it sets or clears the VM of.

/// Returns 1 when the trace of the default model (SWIFTVFIO_TRACE) is on, 0 when it is off or
/// the process has no model yet (this call creates none). For C code that writes its own lines
/// with swiftvfio_trace() and formats them only when they will be written.
@c public func swiftvfio_trace_enabled() -> CInt {
    guard let sub = DefaultSubsystem.shared.currentSubsystem else { return 0 }
    return sub.tracer.isEnabled ? 1 : 0
}

/// Writes `line` (text without its newline, at most 4095 bytes) as one line of the default
/// model's trace (SWIFTVFIO_TRACE), in order with the model's own lines. Creates no model.
/// Returns 1 when written, 0 when the trace is off or there is no model, -EFAULT for a NULL or
/// unreadable `line`, -EINVAL when it contains a newline (one call, one line) or is longer.
@c public func swiftvfio_trace(_ line: UnsafePointer<CChar>?) -> CInt {
    guard DefaultSubsystem.shared.currentSubsystem != nil else { return 0 }
    return kernelCall("swiftvfio_trace") { sub throws(CallError) in
        let text = try cString(line, "line")
        if text.utf8.contains(10) { throw CallError(.EINVAL, "line contains a newline") }
        guard sub.tracer.isEnabled else { return 0 }
        sub.tracer.emit(text)
        return 1
    }
}

/// The trace line of a vfio_file_set_kvm() call: "vfio_file_set_kvm(/dev/vfio/26, kvm=0x5581...)"
/// or "vfio_file_set_kvm(/dev/vfio/26, NULL)"; a file that is not a group is named and marked
/// ignored, as the call ignores it.
func traceSetKVM(_ sub: VFIOSubsystem, _ file: VFIOFile, _ kvm: UnsafeMutableRawPointer?) {
    guard sub.tracer.isEnabled else { return }
    let vm = kvm.map { "kvm=0x" + String(UInt(bitPattern: $0), radix: 16) } ?? "NULL"
    if let group = file.group {
        sub.tracer.emit("vfio_file_set_kvm(\(group.path), \(vm))")
    } else {
        sub.tracer.emit("vfio_file_set_kvm(\(file.name), \(vm)) /* not a group: ignored */")
    }
}
