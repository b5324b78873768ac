// SPDX-License-Identifier: Apache-2.0
/* kvm_vfio.c: the kvm-vfio device, a KVM-side consumer of libswiftvfio shaped like
 * virt/kvm/vfio.c (v6.3, with the fixes the kernel took in v6.6 adopted). It
 * uses only the public header <swiftvfio.h>; the VM it belongs to is whoever provides the
 * functions kvm_vfio.h lists (the example's fake VM, or the interposer's record of a real KVM VM).
 *
 * The kvm-vfio device keeps a list of VFIO group files, each a counted reference taken with
 * swiftvfio_fget() (the kernel's fget), and tells VFIO which VM uses the group
 * (vfio_file_set_kvm), so a device opened later takes a VM reference for its driver. It tracks
 * whether any group can do non-coherent DMA (vfio_file_enforced_coherent) and registers that with
 * the VM at most once at a time.
 *
 * Differences from v6.3 on purpose (the 6.6 fixes): vfio_file_set_kvm() is called with the
 * device's lock held in ADD (v6.3 called it after unlocking, so a racing DEL could leave the
 * group pointing at the VM), and coherency is recomputed in the same lock hold as the list change.
 * Both are safe because vfio_file_set_kvm() takes only VFIO's leaf lock.
 *
 * Files the model does not know: swiftvfio_fget() only knows model fds, where the kernel's fget()
 * takes any open file. An fd that is open but not the model's is a file that is not a VFIO group:
 * ADD answers -EINVAL and DEL -ENOENT for it, as the kernel does for /dev/null; only an fd that is
 * not open at all is -EBADF.
 *
 * The kernel reaches VFIO with symbol_get(); the example links libswiftvfio directly, and the
 * interposer (SWIFTVFIO_PRELOAD) calls it through the library it loaded (kvm_model.h).
 */
#define _GNU_SOURCE
#include <swiftvfio.h>
#ifdef SWIFTVFIO_PRELOAD
#include "kvm_model.h"
#endif
#include "kvm_vfio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>

struct kvm_vfio_file {
    struct kvm_vfio_file *next;
    struct file *file;              /* a counted reference, owned by the entry */
#ifdef CONFIG_SPAPR_TCE_IOMMU
    struct iommu_group *iommu_group; /* fetched lazily by SET_SPAPR_TCE, a counted reference */
#endif
};

struct kvm_vfio {
    struct kvm *kvm;
    pthread_mutex_t lock;
    struct kvm_vfio_file *files;    /* in the order added */
    bool noncoherent;
    int noncoherent_registrations;
};

/* Recomputes whether any group lacks enforced coherency, and (un)registers non-coherent DMA on a
 * change only, so at most one registration is outstanding. Called with kv->lock held. */
static void kvm_vfio_update_coherency(struct kvm_vfio *kv)
{
    bool noncoherent = false;
    struct kvm_vfio_file *kvf;

    for (kvf = kv->files; kvf; kvf = kvf->next) {
        if (!vfio_file_enforced_coherent(kvf->file)) {
            noncoherent = true;
            break;
        }
    }

    if (noncoherent != kv->noncoherent) {
        kv->noncoherent = noncoherent;
        if (kv->noncoherent) {
            kvm_arch_register_noncoherent_dma(kv->kvm);
            kv->noncoherent_registrations++;
        } else {
            kvm_arch_unregister_noncoherent_dma(kv->kvm);
        }
    }
}

#ifdef CONFIG_SPAPR_TCE_IOMMU
static void kvm_spapr_tce_release_vfio_group(struct kvm_vfio_file *kvf)
{
    if (kvf->iommu_group) {
        iommu_group_put(kvf->iommu_group);
        kvf->iommu_group = NULL;
    }
}
#endif

/* Reads the int32 fd at user address addr, guarded: -EFAULT for a bad pointer. */
static int get_user_fd(uint64_t addr, int32_t *fd)
{
    if (swiftvfio_copy_from_user(fd, (const void *)(uintptr_t)addr, sizeof(*fd)))
        return -EFAULT;
    return 0;
}

/* Whether `fd` is an open descriptor of the process (the model's or not); errno is kept. */
static bool fd_is_open(int fd)
{
    int saved = errno;
    bool open = fcntl(fd, F_GETFD) != -1 || errno != EBADF;
    errno = saved;
    return open;
}

static int kvm_vfio_group_add(struct kvm_vfio *kv, int fd)
{
    struct kvm_vfio_file *kvf;
    struct file *filp;
    int ret = 0;

    filp = swiftvfio_fget(fd);
    if (!filp)
        return fd_is_open(fd) ? -EINVAL : -EBADF; /* open, but not a model file: not a group */

    /* Ensure the FD is a vfio group FD. */
    if (!vfio_file_is_group(filp)) {
        ret = -EINVAL;
        goto err_fput;
    }

    pthread_mutex_lock(&kv->lock);

    /* Matching is by file object: a dup()ed fd of a listed group is a duplicate. */
    for (kvf = kv->files; kvf; kvf = kvf->next) {
        if (kvf->file == filp) {
            ret = -EEXIST;
            goto err_unlock;
        }
    }

    kvf = calloc(1, sizeof(*kvf));
    if (!kvf) {
        ret = -ENOMEM;
        goto err_unlock;
    }

    kvf->file = filp; /* the entry owns the reference */
    {
        struct kvm_vfio_file **tail = &kv->files;
        while (*tail)
            tail = &(*tail)->next;
        *tail = kvf;
    }

    kvm_arch_start_assignment(kv->kvm);
    /* 6.6: under the lock, so a racing DEL cannot clear the VM before it is set. */
    vfio_file_set_kvm(kvf->file, kv->kvm);
    kvm_vfio_update_coherency(kv);

    pthread_mutex_unlock(&kv->lock);
    return 0;

err_unlock:
    pthread_mutex_unlock(&kv->lock);
err_fput:
    swiftvfio_fput(filp);
    return ret;
}

static int kvm_vfio_group_del(struct kvm_vfio *kv, int fd)
{
    struct kvm_vfio_file **link, *kvf;
    struct file *filp;
    int ret;

    /* The kernel borrows the fd (fdget); a counted reference held for the call is the same here.
     * An open fd the model does not know matches no entry (NULL): -ENOENT, after the recompute. */
    filp = swiftvfio_fget(fd);
    if (!filp && !fd_is_open(fd))
        return -EBADF;

    ret = -ENOENT;

    pthread_mutex_lock(&kv->lock);

    for (link = &kv->files; (kvf = *link); link = &kvf->next) {
        if (kvf->file != filp)
            continue;

        *link = kvf->next;
        kvm_arch_end_assignment(kv->kvm);
#ifdef CONFIG_SPAPR_TCE_IOMMU
        kvm_spapr_tce_release_vfio_group(kvf);
#endif
        vfio_file_set_kvm(kvf->file, NULL);
        swiftvfio_fput(kvf->file);
        free(kvf);
        ret = 0;
        break;
    }

    /* Recomputed even when the group was not found, as the kernel does. */
    kvm_vfio_update_coherency(kv);

    pthread_mutex_unlock(&kv->lock);

    if (filp)
        swiftvfio_fput(filp);
    return ret;
}

#ifdef CONFIG_SPAPR_TCE_IOMMU
static int kvm_vfio_group_set_spapr_tce(struct kvm_vfio *kv, uint64_t addr)
{
    struct kvm_vfio_spapr_tce param;
    struct kvm_vfio_file *kvf;
    struct file *filp;
    int ret;

    if (swiftvfio_copy_from_user(&param, (const void *)(uintptr_t)addr, sizeof(param)))
        return -EFAULT;

    filp = swiftvfio_fget(param.groupfd);
    if (!filp)
        return -EBADF;

    ret = -ENOENT;

    pthread_mutex_lock(&kv->lock);

    for (kvf = kv->files; kvf; kvf = kvf->next) {
        if (kvf->file != filp)
            continue;

        if (!kvf->iommu_group) {
            kvf->iommu_group = vfio_file_iommu_group(kvf->file);
            if (!kvf->iommu_group) {
                ret = -EIO;
                goto err_fdput;
            }
        }

        /* Attaching the TCE table (param.tablefd) is PPC's business: nothing to model. */
        ret = 0;
        break;
    }

err_fdput:
    pthread_mutex_unlock(&kv->lock);
    swiftvfio_fput(filp);
    return ret;
}
#endif

static int kvm_vfio_set_group(struct kvm_vfio *kv, uint64_t attr, uint64_t addr)
{
    int32_t fd;
    int ret;

    switch (attr) {
    case KVM_DEV_VFIO_GROUP_ADD:
        if ((ret = get_user_fd(addr, &fd)))
            return ret;
        return kvm_vfio_group_add(kv, fd);

    case KVM_DEV_VFIO_GROUP_DEL:
        if ((ret = get_user_fd(addr, &fd)))
            return ret;
        return kvm_vfio_group_del(kv, fd);

#ifdef CONFIG_SPAPR_TCE_IOMMU
    case KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE:
        return kvm_vfio_group_set_spapr_tce(kv, addr);
#endif
    }

    return -ENXIO;
}

int kvm_vfio_set_attr(struct kvm_vfio *kv, uint32_t group, uint64_t attr, uint64_t addr)
{
    switch (group) {
    case KVM_DEV_VFIO_GROUP:
        return kvm_vfio_set_group(kv, attr, addr);
    }

    return -ENXIO;
}

int kvm_vfio_has_attr(struct kvm_vfio *kv, uint32_t group, uint64_t attr)
{
    (void)kv;
    switch (group) {
    case KVM_DEV_VFIO_GROUP:
        switch (attr) {
        case KVM_DEV_VFIO_GROUP_ADD:
        case KVM_DEV_VFIO_GROUP_DEL:
#ifdef CONFIG_SPAPR_TCE_IOMMU
        case KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE:
#endif
            return 0;
        }
        break;
    }

    return -ENXIO;
}

void kvm_vfio_release(struct kvm_vfio *kv)
{
    struct kvm *kvm = kv->kvm;
    struct kvm_vfio_file *kvf, *next;

    /* The kernel calls .release with kvm->lock held, after unlinking the device from the VM.
     * Here only the unlinking holds it: the kernel's fput() defers a file's release to the
     * return to user space, while swiftvfio_fput() runs it before returning, so dropping the
     * last reference of a group file under kvm->lock could wait for the group's lock held by a
     * device close whose driver waits for kvm->lock. */
    kvm_lock(kvm);
    kvm_set_vfio_device(kvm, NULL);
    kvm_unlock(kvm);

    pthread_mutex_lock(&kv->lock);
    for (kvf = kv->files; kvf; kvf = next) {
        next = kvf->next;
#ifdef CONFIG_SPAPR_TCE_IOMMU
        kvm_spapr_tce_release_vfio_group(kvf);
#endif
        vfio_file_set_kvm(kvf->file, NULL);
        swiftvfio_fput(kvf->file);
        free(kvf);
        kvm_arch_end_assignment(kvm);
    }
    kv->files = NULL;
    kvm_vfio_update_coherency(kv);
    pthread_mutex_unlock(&kv->lock);

    pthread_mutex_destroy(&kv->lock);
    free(kv);

    /* The kvm-vfio fd held a VM reference; it goes after .release. */
    kvm_put_kvm(kvm);
}

int kvm_vfio_create(struct kvm *kvm, struct kvm_vfio **out)
{
    struct kvm_vfio *kv;

    kvm_lock(kvm);

    /* Only one VFIO "device" per VM. */
    if (kvm_vfio_device_of(kvm)) {
        kvm_unlock(kvm);
        return -EBUSY;
    }

    kv = calloc(1, sizeof(*kv));
    if (!kv) {
        kvm_unlock(kvm);
        return -ENOMEM;
    }

    pthread_mutex_init(&kv->lock, NULL);
    kv->kvm = kvm;
    kvm_set_vfio_device(kvm, kv);
    kvm_get_kvm(kvm); /* the device fd's VM reference */

    kvm_unlock(kvm);
    *out = kv;
    return 0;
}

int kvm_vfio_file_count(struct kvm_vfio *kv)
{
    int n = 0;
    struct kvm_vfio_file *kvf;

    pthread_mutex_lock(&kv->lock);
    for (kvf = kv->files; kvf; kvf = kvf->next)
        n++;
    pthread_mutex_unlock(&kv->lock);
    return n;
}

bool kvm_vfio_noncoherent(struct kvm_vfio *kv)
{
    bool n;

    pthread_mutex_lock(&kv->lock);
    n = kv->noncoherent;
    pthread_mutex_unlock(&kv->lock);
    return n;
}

int kvm_vfio_noncoherent_registrations(struct kvm_vfio *kv)
{
    int n;

    pthread_mutex_lock(&kv->lock);
    n = kv->noncoherent_registrations;
    pthread_mutex_unlock(&kv->lock);
    return n;
}
