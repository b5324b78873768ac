// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOTypes
import VFIO

// The model's kernel log for C (issue 18 item 4): the text of the WARNs and warnings, not only
// their count (struct swiftvfio_census).

/// Writes the default model's kernel log into `buf` (at most `size` bytes, NUL-terminated,
/// truncated if needed): one line per message since the model was made, oldest first: a WARN (a
/// kernel bug or misuse the kernel would WARN_ON about, counted in swiftvfio_census().warnings)
/// as "WARNING: <where>: <text>", e.g. "WARNING: VFIO/DeviceOpen.swift:67:
/// kvm_put_kvm/kvm_get_kvm_safe not found: 0000:06:0d.0 gets no VM reference (define and export
/// them in the program: link it with -rdynamic)"; other messages as "warning: <text>" or
/// "info: <text>". With SWIFTVFIO_LOG=1 in the environment every message is also echoed to
/// standard error as it happens (unset or 0: not echoed). Returns the length of the whole text
/// (a call with `size` 0 sizes the buffer), or -EFAULT for an unwritable `buf`.
@c public func swiftvfio_log(_ buf: UnsafeMutablePointer<CChar>?, _ size: size_t) -> CInt {
    kernelCall("swiftvfio_log") { sub throws(CallError) in
        let text = sub.log.messages.map { m -> String in
            switch m.level {
            case .warn: return m.text + "\n"   // already "WARNING: <file>:<line>: ..."
            case .warning: return "warning: " + m.text + "\n"
            case .info: return "info: " + m.text + "\n"
            }
        }.joined()
        return try copyText(text, to: buf, size: size)
    }
}

/// Copies `text` into a C buffer of `size` bytes, NUL-terminated and truncated, through the
/// guarded user copy; returns the whole text's length.
func copyText(_ text: String, to buf: UnsafeMutablePointer<CChar>?, size: size_t) throws(CallError) -> CInt {
    let bytes = Array(text.utf8)
    if size > 0 {
        var out = Array(bytes[0..<min(bytes.count, size - 1)])
        out.append(0)
        let failure: Errno? = out.withUnsafeBytes { raw in
            do throws(Errno) {
                try UserMemory.copyOut(raw.baseAddress!, to: UInt(bitPattern: buf), count: raw.count)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw CallError(failure, "buf is not writable", withReason: false) }
    }
    return cInt(bytes.count)
}
