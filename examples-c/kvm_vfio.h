/* kvm_vfio.h: the KVM-VFIO pseudo device of virt/kvm/vfio.c (SPEC section 10), as a user-space consumer
 * of libswiftvfio's file kAPI. See kvm_vfio.c. */
#ifndef EXAMPLES_KVM_VFIO_H
#define EXAMPLES_KVM_VFIO_H

#include <stdbool.h>
#include <stdint.h>

struct kvm;
struct kvm_vfio;

/* KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO): one per VM (-EBUSY for a second while the first lives),
 * holding a VM reference until kvm_vfio_release(). 0 or -errno. */
int kvm_vfio_create(struct kvm *kvm, struct kvm_vfio **out);
/* KVM_SET_DEVICE_ATTR: group KVM_DEV_VFIO_GROUP, attr KVM_DEV_VFIO_GROUP_ADD / _DEL /
 * _SET_SPAPR_TCE, addr the user pointer to the argument (an int32 fd, or struct
 * kvm_vfio_spapr_tce). 0 or -errno. */
int kvm_vfio_set_attr(struct kvm_vfio *kv, uint32_t group, uint64_t attr, uint64_t addr);
/* KVM_HAS_DEVICE_ATTR: 0 if supported, else -ENXIO. */
int kvm_vfio_has_attr(struct kvm_vfio *kv, uint32_t group, uint64_t attr);
/* Closing the kvm-vfio device fd: clears the VM from every group, drops every file reference,
 * recomputes coherency, frees the device and drops its VM reference. */
void kvm_vfio_release(struct kvm_vfio *kv);

/* Observation for the demo and tests. */
int kvm_vfio_file_count(struct kvm_vfio *kv);
bool kvm_vfio_noncoherent(struct kvm_vfio *kv);
/* How many times the device registered non-coherent DMA with the VM (register transitions). */
int kvm_vfio_noncoherent_registrations(struct kvm_vfio *kv);

#endif
