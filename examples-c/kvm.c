// SPDX-License-Identifier: Apache-2.0
/* kvm.c: the fake VM of kvm.h. */
#include "kvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kvm *kvm_create_vm(const char *name)
{
    struct kvm *kvm = calloc(1, sizeof(*kvm));
    if (!kvm)
        return NULL;
    pthread_mutex_init(&kvm->lock, NULL);
    atomic_init(&kvm->users_count, 1);
    snprintf(kvm->name, sizeof(kvm->name), "%s", name);
    return kvm;
}

void kvm_get_kvm(struct kvm *kvm)
{
    atomic_fetch_add(&kvm->users_count, 1);
}

/* refcount_inc_not_zero(): a dying VM (users_count already 0) gives no reference. */
bool kvm_get_kvm_safe(struct kvm *kvm)
{
    int old = atomic_load(&kvm->users_count);
    while (old > 0)
        if (atomic_compare_exchange_weak(&kvm->users_count, &old, old + 1))
            return true;
    atomic_fetch_add(&kvm->safe_gets_refused, 1);
    return false;
}

void kvm_put_kvm(struct kvm *kvm)
{
    int old = atomic_fetch_sub(&kvm->users_count, 1);
    if (old <= 0) {
        fprintf(stderr, "kvm: BUG: kvm_put_kvm on %s with users_count %d\n", kvm->name, old);
        abort();
    }
    if (old == 1)
        atomic_store(&kvm->destroyed, true);
}

void kvm_free_vm(struct kvm *kvm)
{
    if (!kvm)
        return;
    pthread_mutex_destroy(&kvm->lock);
    free(kvm);
}

int kvm_users(struct kvm *kvm)
{
    return atomic_load(&kvm->users_count);
}

void kvm_lock(struct kvm *kvm)
{
    pthread_mutex_lock(&kvm->lock);
}

void kvm_unlock(struct kvm *kvm)
{
    pthread_mutex_unlock(&kvm->lock);
}

struct kvm_vfio *kvm_vfio_device_of(struct kvm *kvm)
{
    return kvm->vfio_device;
}

void kvm_set_vfio_device(struct kvm *kvm, struct kvm_vfio *kv)
{
    kvm->vfio_device = kv;
}

void kvm_arch_register_noncoherent_dma(struct kvm *kvm)
{
    atomic_fetch_add(&kvm->noncoherent_dma_count, 1);
}

void kvm_arch_unregister_noncoherent_dma(struct kvm *kvm)
{
    atomic_fetch_sub(&kvm->noncoherent_dma_count, 1);
}

void kvm_arch_start_assignment(struct kvm *kvm)
{
    atomic_fetch_add(&kvm->assigned_device_count, 1);
}

void kvm_arch_end_assignment(struct kvm *kvm)
{
    atomic_fetch_sub(&kvm->assigned_device_count, 1);
}
