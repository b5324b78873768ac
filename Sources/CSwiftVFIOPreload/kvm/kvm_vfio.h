// SPDX-License-Identifier: Apache-2.0
/* kvm_vfio.h: the KVM-VFIO pseudo device of virt/kvm/vfio.c (v6.3), a C consumer of
 * libswiftvfio's file kAPI that uses only <swiftvfio.h>. See kvm_vfio.c.
 *
 * One implementation, two users:
 *  - examples-c/ (kvm_vfio, the C ABI tests) links it with libswiftvfio and a fake VM (kvm.c);
 *  - the LD_PRELOAD interposer compiles it (with SWIFTVFIO_PRELOAD defined) as the kvm-vfio
 *    device of real KVM VMs (kvm_device.c, kvm_vm.c): QEMU's KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO)
 *    gets this device, so model group fds can be added to a real VM.
 * The VM side is not this file's business: whoever owns `struct kvm` provides the functions of
 * the second section (the kernel's kvm->lock, the VM's device list, its reference count and the
 * x86 hooks vfio.c calls). */
#ifndef KVM_VFIO_H
#define KVM_VFIO_H

#include <stdbool.h>
#include <stdint.h>

#ifdef SWIFTVFIO_PRELOAD
/* Inside the interposer these are its own internals: none of them is exported (a program that
 * defines its own kvm_vfio_create must not capture the interposer's calls, nor the reverse). */
#pragma GCC visibility push(hidden)
#endif

struct kvm;
struct kvm_vfio;

/* ---- The device ----------------------------------------------------------------------------- */

/* KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO): one per VM (-EBUSY for a second while the first lives),
 * holding a VM reference (kvm_get_kvm()) until kvm_vfio_release(). 0 or -errno (-ENOMEM). */
int kvm_vfio_create(struct kvm *kvm, struct kvm_vfio **out);
/* KVM_SET_DEVICE_ATTR: group KVM_DEV_VFIO_GROUP, attr KVM_DEV_VFIO_GROUP_ADD / _DEL /
 * _SET_SPAPR_TCE, addr the user pointer to the argument (an int32 fd, or struct
 * kvm_vfio_spapr_tce). 0 or -errno: -EFAULT (addr), -EBADF (not an open fd), -EINVAL (ADD of a
 * file that is not a VFIO group), -EEXIST (ADD of a group already added, by file: a dup()ed fd
 * too), -ENOENT (DEL of a file not added), -ENXIO (another group or attr), -ENOMEM. */
int kvm_vfio_set_attr(struct kvm_vfio *kv, uint32_t group, uint64_t attr, uint64_t addr);
/* KVM_HAS_DEVICE_ATTR: 0 if supported (GROUP_ADD, GROUP_DEL; SET_SPAPR_TCE only with
 * CONFIG_SPAPR_TCE_IOMMU), else -ENXIO. */
int kvm_vfio_has_attr(struct kvm_vfio *kv, uint32_t group, uint64_t attr);
/* The kvm-vfio device fd's last close (the kernel's .release): unlinks the device from its VM,
 * clears the VM from every group (vfio_file_set_kvm(file, NULL)), drops every file reference,
 * recomputes coherency, frees the device and drops its VM reference (kvm_put_kvm()). */
void kvm_vfio_release(struct kvm_vfio *kv);

/* Observation for the demo and tests. */
int kvm_vfio_file_count(struct kvm_vfio *kv);
bool kvm_vfio_noncoherent(struct kvm_vfio *kv);
/* How many times the device registered non-coherent DMA with the VM (register transitions). */
int kvm_vfio_noncoherent_registrations(struct kvm_vfio *kv);

/* ---- What the owner of struct kvm provides ----------------------------------------------------
 * examples-c/kvm.c for the example's fake VM; kvm_vm.c for the interposer's record of a real VM.
 * kvm_put_kvm() is declared in <swiftvfio.h> (libswiftvfio calls it too). */

/* mutex_lock(&kvm->lock) / mutex_unlock(&kvm->lock). */
void kvm_lock(struct kvm *kvm);
void kvm_unlock(struct kvm *kvm);
/* The VM's live kvm-vfio device, or NULL: the kernel's scan of kvm->devices for kvm_vfio_ops.
 * Called with kvm_lock() held. */
struct kvm_vfio *kvm_vfio_device_of(struct kvm *kvm);
/* Links (kv) or unlinks (NULL) the VM's kvm-vfio device: list_add / list_del of dev->vm_node.
 * Called with kvm_lock() held. */
void kvm_set_vfio_device(struct kvm *kvm, struct kvm_vfio *kv);
/* kvm_get_kvm(): a reference the caller knows is safe to take (the VM is alive). */
void kvm_get_kvm(struct kvm *kvm);
/* x86's hooks virt/kvm/vfio.c calls. */
void kvm_arch_register_noncoherent_dma(struct kvm *kvm);
void kvm_arch_unregister_noncoherent_dma(struct kvm *kvm);
void kvm_arch_start_assignment(struct kvm *kvm);
void kvm_arch_end_assignment(struct kvm *kvm);

#ifdef SWIFTVFIO_PRELOAD
#pragma GCC visibility pop
#endif

#endif
