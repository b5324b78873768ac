// SPDX-License-Identifier: Apache-2.0
/* kvm_model.h: inside the interposer, the calls kvm_vfio.c makes into libswiftvfio.
 *
 * The interposer does not link libswiftvfio.so (one model per process: it loads the library on
 * first use, or uses the copy the program linked). So in its build (SWIFTVFIO_PRELOAD), after
 * <swiftvfio.h>, each library function kvm_vfio.c calls becomes a call through a pointer that
 * kvm_device.c resolves from the loaded library before it creates the first kvm-vfio device; the
 * source of kvm_vfio.c stays the one the example compiles against the library directly. */
#ifndef KVM_MODEL_H
#define KVM_MODEL_H

#include <swiftvfio.h>

#pragma GCC visibility push(hidden)

/* The library's entry points the kvm-vfio device and the interposer's KVM code use. */
struct kvm_model_calls {
    __typeof__(&swiftvfio_fget) fget;
    __typeof__(&swiftvfio_fput) fput;
    __typeof__(&swiftvfio_is_model_fd) is_model_fd;
    __typeof__(&vfio_file_is_group) file_is_group;
    __typeof__(&vfio_file_enforced_coherent) file_enforced_coherent;
    __typeof__(&vfio_file_set_kvm) file_set_kvm;
    __typeof__(&vfio_file_iommu_group) file_iommu_group;
    __typeof__(&iommu_group_put) iommu_group_put;
    __typeof__(&swiftvfio_copy_from_user) copy_from_user;
    __typeof__(&swiftvfio_copy_to_user) copy_to_user;
    __typeof__(&swiftvfio_trace_enabled) trace_enabled;
    __typeof__(&swiftvfio_trace) trace;
};

/* Filled once (kvm_device.c: kvm_model_resolve()); read-only afterwards. */
extern struct kvm_model_calls kvm_model;

/* swiftvfio_fget() of a model fd whose identity the interposer checked first: a number the
 * program closed behind the interposer's back (and maybe reused) is not the model's any more. */
struct file *kvm_model_fget(int fd);

#pragma GCC visibility pop

#define swiftvfio_fget(fd) kvm_model_fget(fd)
#define swiftvfio_fput(file) kvm_model.fput(file)
#define vfio_file_is_group(file) kvm_model.file_is_group(file)
#define vfio_file_enforced_coherent(file) kvm_model.file_enforced_coherent(file)
#define vfio_file_set_kvm(file, kvm) kvm_model.file_set_kvm(file, kvm)
#define vfio_file_iommu_group(file) kvm_model.file_iommu_group(file)
#define iommu_group_put(group) kvm_model.iommu_group_put(group)
#define swiftvfio_copy_from_user(to, from, n) kvm_model.copy_from_user(to, from, n)

#endif
