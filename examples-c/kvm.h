// SPDX-License-Identifier: Apache-2.0
/* kvm.h: a fake VM for the KVM-side consumer example (the parts of virt/kvm/kvm_main.c and
 * arch/x86/kvm that virt/kvm/vfio.c uses): a reference-counted struct kvm with its lock, the
 * non-coherent DMA and assigned-device counters, and the two entry points libswiftvfio looks up
 * in the process with dlsym(RTLD_DEFAULT, ...), as the kernel's VFIO uses symbol_get():
 * kvm_get_kvm_safe() and kvm_put_kvm(). A program defining them must be linked with -rdynamic so
 * the library can find them.
 *
 * struct kvm is incomplete in <swiftvfio.h>: the library never looks inside; this is its owner's
 * definition.
 */
#ifndef EXAMPLES_KVM_H
#define EXAMPLES_KVM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct kvm_vfio;

struct kvm {
    pthread_mutex_t lock;              /* kvm->lock */
    atomic_int users_count;            /* kvm->users_count: the VM's references */
    atomic_int noncoherent_dma_count;  /* kvm->arch.noncoherent_dma_count */
    atomic_int assigned_device_count;  /* kvm->arch.assigned_device_count */
    atomic_int safe_gets_refused;      /* kvm_get_kvm_safe() calls on a dying VM */
    struct kvm_vfio *vfio_device;      /* the live kvm-vfio device (at most one) */
    atomic_bool destroyed;             /* the last reference went */
    char name[32];
};

/* A VM with one reference (its creator's, the VM fd). */
struct kvm *kvm_create_vm(const char *name);
/* kvm_get_kvm(): a reference the caller knows is safe to take. */
void kvm_get_kvm(struct kvm *kvm);
/* Frees a destroyed VM's memory (the kernel frees at destruction; the example keeps the struct
 * until the end so a late call is caught instead of touching freed memory). */
void kvm_free_vm(struct kvm *kvm);
/* The VM's reference count now. */
int kvm_users(struct kvm *kvm);

/* Exported for libswiftvfio (declared in <swiftvfio.h> too). */
bool kvm_get_kvm_safe(struct kvm *kvm);
void kvm_put_kvm(struct kvm *kvm);

/* What the kvm-vfio device (kvm_vfio.c) needs of its VM, declared in kvm_vfio.h: kvm_lock(),
 * kvm_unlock(), kvm_vfio_device_of(), kvm_set_vfio_device() and x86's hooks
 * kvm_arch_{register,unregister}_noncoherent_dma() and kvm_arch_{start,end}_assignment(). */
#include "../Sources/CSwiftVFIOPreload/kvm/kvm_vfio.h"

#endif
