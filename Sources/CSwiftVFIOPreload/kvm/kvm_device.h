// SPDX-License-Identifier: Apache-2.0
/* kvm_device.h: the interposer's hooks for the kvm-vfio device of real KVM VMs (kvm_device.c).
 *
 * The interposer calls these in four places (preload.h lists the KVM family):
 *  - ioctl() on an fd that is not a model fd: when kvm_hook_wants_ioctl(request), then
 *    kvm_hook_ioctl(), which answers KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) on a VM fd and every
 *    ioctl on a kvm-vfio device fd it made (returns 1 and the ioctl's result), else returns 0
 *    and the call goes to libc as before;
 *  - close() on an fd that is not a model fd: when kvm_hook_wants_close(), kvm_hook_close(fd)
 *    first (the device's release when fd is one of its fds), then libc's close as before;
 *  - the exit handler, before the model closes its fds: kvm_hook_exit();
 *  - preload_model_library(), defined in library.c, which kvm_device.c calls to reach the model.
 * The fast path (no kvm-vfio device alive): one compare and one relaxed load per ioctl, one
 * relaxed load per close. */
#ifndef KVM_DEVICE_H
#define KVM_DEVICE_H

#include <linux/kvm.h>
#include <stdatomic.h>

#pragma GCC visibility push(hidden)

/* How many kvm-vfio device fds are tracked (the hooks' only test when there are none). */
extern atomic_int kvm_devices_live;

static inline __attribute__((always_inline)) int kvm_hook_wants_ioctl(unsigned long request)
{
    /* The kernel's ioctl number is 32 bits: the upper half of `request` is not part of it. */
    return (unsigned int)request == KVM_CREATE_DEVICE ||
           atomic_load_explicit(&kvm_devices_live, memory_order_relaxed) != 0;
}

static inline __attribute__((always_inline)) int kvm_hook_wants_close(void)
{
    return atomic_load_explicit(&kvm_devices_live, memory_order_relaxed) != 0;
}

/* 1 with *result (the ioctl's return value, errno set on -1) when the call was the kvm-vfio
 * device's; 0 when it goes to the kernel unchanged. errno is untouched then. */
int kvm_hook_ioctl(int fd, unsigned long request, unsigned long arg, int *result);
/* Releases the kvm-vfio device whose fd `fd` is (when it is one); the caller closes fd. */
void kvm_hook_close(int fd);
/* At exit: releases every kvm-vfio device of this process and closes its fd, as the kernel's
 * exit_files() does (set_kvm(NULL), the group file references dropped). */
void kvm_hook_exit(void);

/* Defined in library.c: an address inside libswiftvfio.so (loading it on first need, as any model
 * path or fd does), or NULL when the library cannot be loaded. */
void *preload_model_library(void);

#pragma GCC visibility pop

#endif
