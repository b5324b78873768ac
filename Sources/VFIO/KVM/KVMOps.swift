// SPDX-License-Identifier: Apache-2.0
/// The KVM module's entry points VFIO reaches through `symbol_get` (docs/ERRORS.md#dopen-kvm).
///
/// `struct kvm *` belongs to the KVM side: the model stores and passes the pointer, never
/// dereferences it. The C layer resolves these with `dlsym(RTLD_DEFAULT, ...)` when a device's first
/// open needs them; a Swift test supplies closures.
public struct KVMOps: Sendable {
    /// `kvm_get_kvm_safe(kvm)`: a reference unless the VM's user count already hit zero.
    public var getSafe: @Sendable (UnsafeMutableRawPointer) -> Bool
    /// `kvm_put_kvm(kvm)`.
    public var put: @Sendable (UnsafeMutableRawPointer) -> Void

    /// The two entry points.
    public init(getSafe: @escaping @Sendable (UnsafeMutableRawPointer) -> Bool,
                put: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
        self.getSafe = getSafe
        self.put = put
    }
}
