// SPDX-License-Identifier: Apache-2.0
/* kvm_vm.c: the interposer's `struct kvm`: what a real KVM VM is to libswiftvfio.
 *
 * The kernel hands VFIO a `struct kvm *` through the kvm-vfio device (vfio_file_set_kvm), and a
 * VFIO device that opens while its group holds one takes a reference with kvm_get_kvm_safe()
 * (drops it with kvm_put_kvm()). Under the interposer the VM is the kernel's and the group is
 * the model's, so the pointer the model stores is a record here, one per VM.
 *
 * Identity: a VM is its file (the kvm-vm anonymous file KVM_CREATE_VM returned), not an fd
 * number: kcmp(KCMP_FILE) compares the fd a KVM_CREATE_DEVICE arrives on with the descriptor each
 * record holds. Chosen over recording KVM_CREATE_VM results because it needs no hook on /dev/kvm,
 * dup, dup2, fcntl or close of VM fds (no cost on any other call), is right for a VM fd the
 * interposer never saw made (inherited, received over a socket, dup()ed: KVM_CREATE_DEVICE on a
 * dup of the VM fd finds the same VM and its device: EBUSY, as in the kernel), and never
 * confuses two VMs that used the same fd number one after the other.
 *
 * References (the kernel's kvm->users_count): each kvm-vfio device file holds one (taken at
 * KVM_CREATE_DEVICE, dropped after its release), each VFIO device opened while its group held
 * the VM holds one (kvm_get_kvm_safe at first open, kvm_put_kvm at last close). While any is
 * held, the record holds a descriptor of the VM's file (a dup, close-on-exec, numbered from
 * 1024 up so the program's own fd numbers stay as without the interposer), so the real VM lives
 * exactly as long as the kernel's own references would keep it: the kernel's kvm-vfio device
 * and VFIO devices pin the VM in the same way. When the last goes, the descriptor is closed and
 * the record freed; kvm_get_kvm_safe() on it then fails (and is safe: pointers are looked up in
 * the list of live records, never followed blindly).
 * Deviation, documented: the program's own VM fd is not counted. Counting it would need either
 * every close path of VM fds interposed or the record to pin the VM after its device went (the
 * VM would outlive the program's close). Only a stale pointer can tell: once the kvm-vfio device
 * is closed and no VFIO device holds the VM, no group names the record any more
 * (set_kvm(NULL) ran), so the model never asks for it again; a new kvm-vfio device on the same
 * VM gets a new record.
 */
#define _GNU_SOURCE
#include <swiftvfio.h>
#include "kvm_vm.h"
#include "kvm_vfio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

struct kvm {
    pthread_mutex_t lock;              /* kvm->lock: the kvm-vfio device's create and release */
    struct kvm *next;                  /* in vms, under vms_lock */
    int users;                         /* kvm->users_count, under vms_lock */
    int file_fd;                       /* a descriptor of the VM's file, while users > 0 */
    pid_t pid;                         /* the process whose VM it is (a forked child's is not) */
    struct kvm_vfio *vfio_device;      /* the live kvm-vfio device, under lock */
    atomic_int noncoherent_dma_count;  /* kvm->arch.noncoherent_dma_count */
    atomic_int assigned_device_count;  /* kvm->arch.assigned_device_count */
};

/* Every live record. A lock of its own, taken inside kvm->lock and inside the model's locks
 * (kvm_get_kvm_safe runs under the group's kvm_ref_lock): nothing is called with it held but
 * kcmp, fcntl and close on the VM's descriptor, so it is a leaf. */
static pthread_mutex_t vms_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvm *vms;

static void warn(const char *what, const void *kvm)
{
    char line[160];
    int n = snprintf(line, sizeof line, "swiftvfio-preload: WARNING: %s(%p): not a live VM\n", what, kvm);
    if (n > 0)
        (void)!syscall(SYS_write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* The live record `kvm` points to, or NULL; vms_lock held. */
static struct kvm *find_locked(const struct kvm *kvm)
{
    for (struct kvm *v = vms; v; v = v->next)
        if (v == kvm)
            return v;
    return NULL;
}

/* Drops one reference; the last closes the VM's descriptor and frees the record. */
static void put_locked(struct kvm *kvm)
{
    if (--kvm->users > 0)
        return;
    for (struct kvm **link = &vms; *link; link = &(*link)->next) {
        if (*link == kvm) {
            *link = kvm->next;
            break;
        }
    }
    /* A raw close: the interposer's close() must not see its own descriptor. */
    (void)syscall(SYS_close, kvm->file_fd);
    pthread_mutex_destroy(&kvm->lock);
    free(kvm);
}

struct kvm *kvm_vm_get(int vmfd, int *err)
{
    pid_t pid = getpid();
    pthread_mutex_lock(&vms_lock);
    for (struct kvm *v = vms; v; v = v->next) {
        if (v->pid == pid && syscall(SYS_kcmp, pid, pid, KCMP_FILE, vmfd, v->file_fd) == 0) {
            v->users++;
            pthread_mutex_unlock(&vms_lock);
            return v;
        }
    }
    struct kvm *kvm = calloc(1, sizeof(*kvm));
    if (!kvm) {
        pthread_mutex_unlock(&vms_lock);
        *err = ENOMEM;
        return NULL;
    }
    kvm->file_fd = (int)syscall(SYS_fcntl, vmfd, F_DUPFD_CLOEXEC, 1024);
    if (kvm->file_fd < 0 && errno == EINVAL) /* RLIMIT_NOFILE at or below 1024 */
        kvm->file_fd = (int)syscall(SYS_fcntl, vmfd, F_DUPFD_CLOEXEC, 0);
    if (kvm->file_fd < 0) {
        *err = errno;
        pthread_mutex_unlock(&vms_lock);
        free(kvm);
        return NULL;
    }
    pthread_mutex_init(&kvm->lock, NULL);
    kvm->users = 1;
    kvm->pid = pid;
    kvm->next = vms;
    vms = kvm;
    pthread_mutex_unlock(&vms_lock);
    return kvm;
}

void kvm_get_kvm(struct kvm *kvm)
{
    pthread_mutex_lock(&vms_lock);
    if (find_locked(kvm))
        kvm->users++;
    else
        warn("kvm_get_kvm", kvm);
    pthread_mutex_unlock(&vms_lock);
}

/* Exported: libswiftvfio finds it with dlsym(RTLD_DEFAULT) at a VFIO device's first open.
 * refcount_inc_not_zero(&kvm->users_count): a VM whose references are all gone gives none. */
EXPORT bool kvm_get_kvm_safe(struct kvm *kvm)
{
    bool ok = false;
    pthread_mutex_lock(&vms_lock);
    struct kvm *v = find_locked(kvm);
    if (v && v->users > 0) {
        v->users++;
        ok = true;
    }
    pthread_mutex_unlock(&vms_lock);
    return ok;
}

/* Exported: the model drops a VFIO device's reference at its last close. A pointer that is not a
 * live record (a put too many) WARNs and does nothing. */
EXPORT void kvm_put_kvm(struct kvm *kvm)
{
    pthread_mutex_lock(&vms_lock);
    struct kvm *v = find_locked(kvm);
    if (v)
        put_locked(v);
    pthread_mutex_unlock(&vms_lock);
    if (!v)
        warn("kvm_put_kvm", kvm);
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

/* x86: the counts KVM keeps to decide on WBINVD emulation and memory types (non-coherent DMA)
 * and on posted-interrupt handling (assigned devices). The real VM's own counts are the kernel's
 * and untouched: a model group's DMA never reaches the real VM. */
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
