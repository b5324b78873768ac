// SPDX-License-Identifier: Apache-2.0
/* kvm_vm.h: the interposer's `struct kvm`, its record of a real KVM VM (kvm_vm.c). */
#ifndef KVM_VM_H
#define KVM_VM_H

#pragma GCC visibility push(hidden)

struct kvm;

/* The record of the VM whose file `vmfd` refers to (the same record for every fd of that file,
 * found with kcmp(KCMP_FILE)), created on first need, with one reference for the caller
 * (kvm_put_kvm() drops it). NULL with *err = ENOMEM or EMFILE (no descriptor left to hold the
 * VM's file). `vmfd` must be a VM fd of this process (the caller asked the kernel). */
struct kvm *kvm_vm_get(int vmfd, int *err);

#pragma GCC visibility pop

#endif
