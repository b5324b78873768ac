// SPDX-License-Identifier: Apache-2.0
/* The KVM link: the VM reference a device takes at its first open (through the process's
 * kvm_get_kvm_safe/kvm_put_kvm, found with dlsym) and drops at its last close; none for a dying
 * VM, none after set_kvm(NULL), set_kvm on a non-group file ignored; the KVM-side consumer of
 * examples-c (GROUP_ADD/GROUP_DEL errors, non-coherent DMA registered at most once, release of
 * everything); a driver's open_device sees the VM; no deadlock between set_kvm under the VM
 * lock and an open_device that takes the VM lock. */
#include "cabi_test.h"

#include "../../examples-c/kvm.h"
#include "../../Sources/CSwiftVFIOPreload/kvm/kvm_vfio.h"
#include "../../examples-c/mtty.h"

#include <linux/kvm.h>
#include <pthread.h>

static int c26 = -1, g26 = -1;
static struct file *f26;

static void open_group26(void)
{
    c26 = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    g26 = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(c26 >= 0 && g26 >= 0);
    CHECK_EQ(swiftvfio_ioctl(g26, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c26), 0);
    CHECK_EQ(swiftvfio_ioctl(c26, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
    f26 = swiftvfio_fget(g26);
    CHECK(f26 != NULL);
}

static void close_group26(void)
{
    swiftvfio_fput(f26);
    swiftvfio_close(g26);
    swiftvfio_close(c26);
    CHECK_NOTHING_OPEN();
}

static int open_device26(void)
{
    return swiftvfio_ioctl(g26, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0");
}

static struct kvm *device_kvm(int fd)
{
    struct file *f = swiftvfio_fget(fd);
    struct kvm *k = swiftvfio_device_kvm(swiftvfio_file_device(f));
    swiftvfio_fput(f);
    return k;
}

static void test_reference_first_open_last_close(void)
{
    struct kvm *vm = kvm_create_vm("vm-a");
    int d1, d2;

    open_group26();
    EXPECT_WARNS(0, vfio_file_set_kvm(f26, vm));
    CHECK_EQ(kvm_users(vm), 1); /* set_kvm takes no reference */

    d1 = open_device26();
    CHECK(d1 >= 0);
    CHECK_EQ(kvm_users(vm), 2); /* the first open took one */
    CHECK_EQ(cabi_census().kvm_references, 1);
    CHECK_PTR_EQ(device_kvm(d1), vm);

    d2 = open_device26(); /* a second fd of the same device: no second reference */
    CHECK(d2 >= 0);
    CHECK_EQ(kvm_users(vm), 2);
    swiftvfio_close(d1);
    CHECK_EQ(kvm_users(vm), 2);
    swiftvfio_close(d2); /* the last close dropped it */
    CHECK_EQ(kvm_users(vm), 1);
    CHECK_EQ(cabi_census().kvm_references, 0);

    /* Clearing the group's VM does not revoke the reference of a device already open. */
    d1 = open_device26();
    CHECK_EQ(kvm_users(vm), 2);
    vfio_file_set_kvm(f26, NULL);
    CHECK_EQ(kvm_users(vm), 2);
    CHECK_PTR_EQ(device_kvm(d1), vm);
    swiftvfio_close(d1);
    CHECK_EQ(kvm_users(vm), 1);

    /* After set_kvm(NULL), a new first open takes nothing. */
    d1 = open_device26();
    CHECK_EQ(kvm_users(vm), 1);
    CHECK_PTR_EQ(device_kvm(d1), NULL);
    /* Setting the VM while the device is open has no effect until it is reopened. */
    vfio_file_set_kvm(f26, vm);
    CHECK_PTR_EQ(device_kvm(d1), NULL);
    CHECK_EQ(kvm_users(vm), 1);
    swiftvfio_close(d1);
    d1 = open_device26();
    CHECK_EQ(kvm_users(vm), 2);
    swiftvfio_close(d1);
    vfio_file_set_kvm(f26, NULL);

    close_group26();
    CHECK_EQ(kvm_users(vm), 1);
    kvm_put_kvm(vm);
    kvm_free_vm(vm);
}

static void test_dying_vm(void)
{
    struct kvm *vm = kvm_create_vm("vm-dying");
    int d;

    open_group26();
    kvm_put_kvm(vm); /* the last user reference went; the struct is still there */
    CHECK_EQ(kvm_users(vm), 0);
    vfio_file_set_kvm(f26, vm);
    EXPECT_WARNS(0, d = open_device26());
    CHECK(d >= 0);
    CHECK_EQ(atomic_load(&vm->safe_gets_refused), 1); /* asked, refused, silently */
    CHECK_EQ(kvm_users(vm), 0);
    CHECK_PTR_EQ(device_kvm(d), NULL);
    CHECK_EQ(cabi_census().kvm_references, 0);
    swiftvfio_close(d); /* no kvm_put_kvm: the fake VM would abort on an underflow */
    vfio_file_set_kvm(f26, NULL);
    close_group26();
    kvm_free_vm(vm);
}

static void test_set_kvm_on_other_files_ignored(void)
{
    struct kvm *vm = kvm_create_vm("vm-b");
    struct file *fc;
    int d, d2;
    struct file *fd;

    open_group26();
    fc = swiftvfio_fget(c26);
    d = open_device26();
    fd = swiftvfio_fget(d);
    EXPECT_WARNS(0, {
        vfio_file_set_kvm(fc, vm);
        vfio_file_set_kvm(fd, vm);
    });
    swiftvfio_fput(fd);
    swiftvfio_close(d);
    /* Neither reached the group: a new first open sees no VM. */
    d2 = open_device26();
    CHECK_PTR_EQ(device_kvm(d2), NULL);
    CHECK_EQ(kvm_users(vm), 1);
    swiftvfio_close(d2);
    swiftvfio_fput(fc);
    close_group26();
    kvm_put_kvm(vm);
    kvm_free_vm(vm);
}

static int add(struct kvm_vfio *kv, int fd)
{
    int32_t arg = fd;
    return kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, (uint64_t)(uintptr_t)&arg);
}

static int del(struct kvm_vfio *kv, int fd)
{
    int32_t arg = fd;
    return kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, (uint64_t)(uintptr_t)&arg);
}

static void test_consumer(void)
{
    struct kvm *vm = kvm_create_vm("vm-c");
    struct kvm_vfio *kv, *kv2;
    struct mtty_state mtty;
    struct device *mdev;
    struct iommu_group *ig;
    char path[32];
    int dupfd, closed, emu, mt, d;

    CHECK_EQ(kvm_vfio_create(vm, &kv), 0);
    CHECK_EQ(kvm_vfio_create(vm, &kv2), -EBUSY);
    CHECK_EQ(kvm_users(vm), 2);
    open_group26();

    /* GROUP_ADD: EFAULT, EBADF, EINVAL, EEXIST; GROUP_DEL: ENOENT. */
    CHECK_EQ(kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, 0), -EFAULT);
    CHECK_EQ(kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, 8), -EFAULT);
    CHECK_EQ(add(kv, -1), -EBADF);
    {
        /* An open file the model does not know is not a group: the kernel's EINVAL for ADD and
         * ENOENT for DEL (only a descriptor that is not open is EBADF). */
        int null = open("/dev/null", O_RDONLY);
        CHECK_EQ(add(kv, null), -EINVAL);
        CHECK_EQ(del(kv, null), -ENOENT);
        close(null);
        CHECK_EQ(add(kv, null), -EBADF);
    }
    CHECK_EQ(add(kv, c26), -EINVAL);
    CHECK_EQ(del(kv, g26), -ENOENT);
    CHECK_EQ(add(kv, g26), 0);
    CHECK_EQ(add(kv, g26), -EEXIST);
    dupfd = swiftvfio_dup(g26, 0, 0);
    CHECK_EQ(add(kv, dupfd), -EEXIST);
    CHECK_EQ(del(kv, -1), -EBADF);
    closed = swiftvfio_dup(g26, 0, 0);
    swiftvfio_close(closed);
    CHECK_EQ(del(kv, closed), -EBADF);
    CHECK_EQ(kvm_vfio_set_attr(kv, 2, 0, 0), -ENXIO);
    CHECK_EQ(kvm_vfio_has_attr(kv, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL), 0);
    CHECK_EQ(kvm_vfio_has_attr(kv, KVM_DEV_VFIO_GROUP, 3), -ENXIO);
    CHECK_EQ(kvm_vfio_file_count(kv), 1);
    CHECK(!kvm_vfio_noncoherent(kv));

    /* The device opened after ADD holds the VM. */
    d = open_device26();
    CHECK_EQ(kvm_users(vm), 3);
    swiftvfio_close(d);
    CHECK_EQ(kvm_users(vm), 2);

    /* Two non-coherent groups (the built-in emulated mdev-0 and a C driver's): registered once. */
    mdev = swiftvfio_device_find("mdev-0");
    ig = iommu_group_get(mdev);
    snprintf(path, sizeof(path), "/dev/vfio/%d", iommu_group_id(ig));
    iommu_group_put(ig);
    emu = swiftvfio_open(path, O_RDWR);
    CHECK_EQ(mtty_probe(&mtty, "mtty-kvm"), 0);
    snprintf(path, sizeof(path), "/dev/vfio/%d", mtty_group_id(&mtty));
    mt = swiftvfio_open(path, O_RDWR);
    CHECK(emu >= 0 && mt >= 0);
    CHECK_EQ(add(kv, emu), 0);
    CHECK_EQ(atomic_load(&vm->noncoherent_dma_count), 1);
    CHECK_EQ(add(kv, mt), 0);
    CHECK_EQ(atomic_load(&vm->noncoherent_dma_count), 1);
    CHECK_EQ(kvm_vfio_noncoherent_registrations(kv), 1);
    CHECK_EQ(del(kv, emu), 0);
    CHECK_EQ(atomic_load(&vm->noncoherent_dma_count), 1); /* the mtty group is still there */
    CHECK_EQ(del(kv, mt), 0);
    CHECK_EQ(atomic_load(&vm->noncoherent_dma_count), 0);
    CHECK_EQ(del(kv, mt), -ENOENT);
    CHECK_EQ(add(kv, mt), 0); /* registers again: a new transition */
    CHECK_EQ(atomic_load(&vm->noncoherent_dma_count), 1);
    CHECK_EQ(kvm_vfio_noncoherent_registrations(kv), 2);
    CHECK_EQ(atomic_load(&vm->assigned_device_count), 2);

    /* The user closes its fds: the consumer's references keep the groups open... */
    swiftvfio_close(mt);
    swiftvfio_close(emu);
    swiftvfio_close(dupfd);
    swiftvfio_fput(f26);
    f26 = NULL;
    swiftvfio_close(g26);
    CHECK_SYSERR(swiftvfio_open("/dev/vfio/26", O_RDWR), EBUSY);
    CHECK(cabi_census().files >= 2);

    /* ...until the kvm-vfio device is released: everything goes, coherency is recomputed. */
    kvm_vfio_release(kv);
    CHECK_EQ(atomic_load(&vm->noncoherent_dma_count), 0);
    CHECK_EQ(atomic_load(&vm->assigned_device_count), 0);
    CHECK_EQ(kvm_users(vm), 1);
    g26 = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(g26 >= 0);
    swiftvfio_close(g26);
    swiftvfio_close(c26);
    mtty_remove(&mtty);
    CHECK_NOTHING_OPEN();

    /* One kvm-vfio device per VM, but a new one once the first is gone. */
    CHECK_EQ(kvm_vfio_create(vm, &kv2), 0);
    kvm_vfio_release(kv2);
    kvm_put_kvm(vm);
    CHECK(atomic_load(&vm->destroyed));
    kvm_free_vm(vm);
}

static void test_driver_sees_vm(void)
{
    struct kvm *vm = kvm_create_vm("vm-d");
    struct kvm_vfio *kv;
    struct mtty_state mtty;
    char path[32];
    int iommufd, g, d;

    CHECK_EQ(mtty_probe(&mtty, "mtty-sees"), 0);
    snprintf(path, sizeof(path), "/dev/vfio/%d", mtty_group_id(&mtty));
    iommufd = swiftvfio_open("/dev/iommu", O_RDWR);
    g = swiftvfio_open(path, O_RDWR);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&iommufd), 0);
    CHECK_EQ(kvm_vfio_create(vm, &kv), 0);

    /* ADD first: open_device sees the VM. */
    CHECK_EQ(add(kv, g), 0);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"mtty-sees");
    CHECK(d >= 0);
    CHECK_PTR_EQ(mtty.kvm_at_open, vm);
    CHECK_EQ(kvm_users(vm), 3);
    swiftvfio_close(d);
    CHECK_EQ(kvm_users(vm), 2);

    /* After DEL: NULL. */
    CHECK_EQ(del(kv, g), 0);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"mtty-sees");
    CHECK_PTR_EQ(mtty.kvm_at_open, NULL);
    CHECK_EQ(kvm_users(vm), 2);
    swiftvfio_close(d);

    kvm_vfio_release(kv);
    swiftvfio_close(g);
    swiftvfio_close(iommufd);
    mtty_remove(&mtty);
    kvm_put_kvm(vm);
    kvm_free_vm(vm);
    CHECK_NOTHING_OPEN();
}

/* ---- no deadlock: set_kvm under the VM lock vs an open_device that takes the VM lock ---- */

static struct kvm *deadlock_vm;
static atomic_int opens_done;

static int locking_open_device(struct vfio_device *vdev)
{
    (void)vdev;
    /* A driver like vfio-ap: takes the VM's lock in open_device (under VFIO's group lock). */
    pthread_mutex_lock(&deadlock_vm->lock);
    atomic_fetch_add(&opens_done, 1);
    pthread_mutex_unlock(&deadlock_vm->lock);
    return 0;
}

static const struct vfio_device_ops locking_ops = {
    .name = "locking",
    .bind_iommufd = vfio_iommufd_emulated_bind,
    .unbind_iommufd = vfio_iommufd_emulated_unbind,
    .attach_ioas = vfio_iommufd_emulated_attach_ioas,
    .open_device = locking_open_device,
};

struct opener {
    int group;
    int iterations;
};

static void *opener_thread(void *arg)
{
    struct opener *o = arg;
    int i;
    for (i = 0; i < o->iterations; i++) {
        int d = swiftvfio_ioctl(o->group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"locking-0");
        if (d >= 0)
            swiftvfio_close(d);
    }
    return NULL;
}

static void test_set_kvm_no_deadlock(void)
{
    struct device *dev;
    struct vfio_device *vdev;
    struct iommu_group *ig;
    struct file *fg;
    struct opener o;
    pthread_t t;
    char path[32];
    int iommufd, i;

    deadlock_vm = kvm_create_vm("vm-lock");
    CHECK_EQ(swiftvfio_device_add("locking-0", 0, &dev), 0);
    CHECK_EQ(swiftvfio_alloc_device(dev, &locking_ops, NULL, &vdev), 0);
    CHECK_EQ(vfio_register_emulated_iommu_dev(vdev), 0);
    ig = iommu_group_get(dev);
    snprintf(path, sizeof(path), "/dev/vfio/%d", iommu_group_id(ig));
    iommu_group_put(ig);
    iommufd = swiftvfio_open("/dev/iommu", O_RDWR);
    o.group = swiftvfio_open(path, O_RDWR);
    CHECK_EQ(swiftvfio_ioctl(o.group, VFIO_GROUP_SET_CONTAINER, (unsigned long)&iommufd), 0);
    fg = swiftvfio_fget(o.group);
    o.iterations = 2000;

    pthread_create(&t, NULL, opener_thread, &o);
    for (i = 0; i < 4000; i++) {
        pthread_mutex_lock(&deadlock_vm->lock); /* KVM calls set_kvm with its own lock held */
        vfio_file_set_kvm(fg, (i & 1) ? NULL : deadlock_vm);
        pthread_mutex_unlock(&deadlock_vm->lock);
    }
    pthread_join(t, NULL);
    CHECK_EQ(atomic_load(&opens_done), o.iterations);
    vfio_file_set_kvm(fg, NULL);
    CHECK_EQ(kvm_users(deadlock_vm), 1);

    swiftvfio_fput(fg);
    swiftvfio_close(o.group);
    swiftvfio_close(iommufd);
    vfio_unregister_group_dev(vdev);
    vfio_put_device(vdev);
    CHECK_EQ(swiftvfio_device_remove(dev), 0);
    kvm_put_kvm(deadlock_vm);
    kvm_free_vm(deadlock_vm);
    CHECK_NOTHING_OPEN();
}

int main(void)
{
    cabi_timeout(120);
    test_reference_first_open_last_close();
    test_dying_vm();
    test_set_kvm_on_other_files_ignored();
    test_consumer();
    test_driver_sees_vm();
    test_set_kvm_no_deadlock();
    CHECK_EQ(cabi_warnings(), 0);
    return cabi_summary();
}
