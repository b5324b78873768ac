// SPDX-License-Identifier: Apache-2.0
/* kvm_vfio: the KVM-side consumer (kvm_vfio.c, shaped like virt/kvm/vfio.c) against the model,
 * step by step, printing what each step did and the state that results: the groups, the
 * container, the devices open, the VM's reference count and the DMA coherency KVM sees.
 *
 *   usage: kvm_vfio [group-id [device-name [emulated-device-name]]]
 *          (default: 26 0000:06:0d.0 mdev-0, from the built-in default topology)
 *
 * Every step also checks its expected outcome; the program exits 1 if any differs.
 */
#define _GNU_SOURCE
#include "kvm.h"

#include <swiftvfio.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
static int step_no;

static struct kvm *vm;
static struct kvm_vfio *kv;
static int container = -1, group = -1, device = -1, egroup = -1;
static bool iommu_set;
static const char *group_id = "26", *device_name = "0000:06:0d.0", *emulated_name = "mdev-0";
static char group_path[64], egroup_path[64];

/* The errno names a VFIO developer reads in the kernel's sources. */
static const char *errname(int err)
{
    static char buf[64];
    switch (err) {
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case ENXIO: return "ENXIO";
    case ENODEV: return "ENODEV";
    case EPERM: return "EPERM";
    }
    snprintf(buf, sizeof(buf), "errno %d", err);
    return buf;
}

static void step(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("\n%d. ", ++step_no);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* One outcome: `got` is what happened, `want` what VFIO and KVM must answer. */
static void expect(const char *what, int got, int want)
{
    char g[96], w[32];
    if (got < 0)
        snprintf(g, sizeof(g), "%s (%s)", errname(-got), strerror(-got));
    else
        snprintf(g, sizeof(g), "ok");
    if (want < 0)
        snprintf(w, sizeof(w), "%s", errname(-want));
    else
        snprintf(w, sizeof(w), "%d", want);
    if (got == want) {
        printf("   %-58s %s\n", what, g);
    } else {
        const char *why = swiftvfio_last_error();
        printf("   %-58s FAILED: got %d, want %s%s%s\n", what, got, w, why ? "; last error: " : "", why ? why : "");
        failures++;
    }
}

static int group_attr(uint64_t attr, int fd)
{
    int32_t arg = fd;
    return kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, attr, (uint64_t)(uintptr_t)&arg);
}

static int sys(int r)
{
    return r < 0 ? -errno : r;
}

static const char *group_words(int fd)
{
    static char buf[160];
    struct vfio_group_status st = { .argsz = sizeof(st) };
    if (fd < 0)
        return "closed";
    if (swiftvfio_ioctl(fd, VFIO_GROUP_GET_STATUS, (unsigned long)&st) < 0)
        return "open, status unknown";
    snprintf(buf, sizeof(buf), "open (fd %d), %s, %s", fd, st.flags & VFIO_GROUP_FLAGS_VIABLE ? "viable" : "NOT viable",
             st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET ? "in the container" : "no container");
    return buf;
}

/* The state, in the words a VFIO developer reads at a glance. */
static void show_state(void)
{
    struct swiftvfio_census c;
    int users = kvm_users(vm);

    printf("   state:\n");
    printf("     group %-4s %s\n", group_id, group_words(group));
    if (egroup >= 0)
        printf("     group %-4s %s (the emulated device %s)\n", egroup_path + strlen("/dev/vfio/"), group_words(egroup),
               emulated_name);
    if (container < 0)
        printf("     container  closed\n");
    else
        printf("     container  open (fd %d)%s\n", container, iommu_set ? ", type1 IOMMU set" : ", no IOMMU driver yet");
    if (device >= 0) {
        struct file *f = swiftvfio_fget(device);
        struct vfio_device *vdev = swiftvfio_file_device(f);
        printf("     device     %s open (fd %d, open count %d), holds %s\n", device_name, device,
               swiftvfio_device_open_count(vdev), swiftvfio_device_kvm(vdev) == vm ? "a VM reference" : "no VM reference");
        swiftvfio_fput(f);
    } else {
        printf("     device     %s closed\n", device_name);
    }
    printf("     VM         %s: %d reference%s%s, %d assigned group%s\n", vm->name, users, users == 1 ? "" : "s",
           atomic_load(&vm->destroyed) ? " (destroyed)" : "", atomic_load(&vm->assigned_device_count),
           atomic_load(&vm->assigned_device_count) == 1 ? "" : "s");
    if (kv)
        printf("     kvm-vfio   %d group%s; DMA %s; non-coherent DMA registered with the VM: %d (registrations so far %d)\n",
               kvm_vfio_file_count(kv), kvm_vfio_file_count(kv) == 1 ? "" : "s",
               kvm_vfio_noncoherent(kv) ? "NOT coherent (a device lacks enforced cache coherency)" : "coherent",
               atomic_load(&vm->noncoherent_dma_count), kvm_vfio_noncoherent_registrations(kv));
    else
        printf("     kvm-vfio   none; non-coherent DMA registered with the VM: %d\n", atomic_load(&vm->noncoherent_dma_count));
    if (swiftvfio_census(&c) == 0)
        printf("     model      %d file%s, %d fd%s, %d VM reference%s held by devices, %d WARN%s\n", c.files,
               c.files == 1 ? "" : "s", c.fds, c.fds == 1 ? "" : "s", c.kvm_references, c.kvm_references == 1 ? "" : "s",
               c.warnings, c.warnings == 1 ? "" : "s");
}

/* The fake IOMMU group id of the emulated device (the smallest id free when it registered). */
static int emulated_group_id(void)
{
    struct device *dev = swiftvfio_device_find(emulated_name);
    struct iommu_group *g = dev ? iommu_group_get(dev) : NULL;
    int id = g ? iommu_group_id(g) : -1;
    iommu_group_put(g);
    return id;
}

int main(int argc, char **argv)
{
    struct kvm_vfio *second = NULL;
    struct swiftvfio_census c;
    const char *topology = getenv("SWIFTVFIO_TOPOLOGY");
    int dup_fd, closed_fd, other, r, eid;

    if (argc > 1) group_id = argv[1];
    if (argc > 2) device_name = argv[2];
    if (argc > 3) emulated_name = argv[3];
    snprintf(group_path, sizeof(group_path), "/dev/vfio/%s", group_id);

    printf("A KVM-side consumer (virt/kvm/vfio.c) on libswiftvfio's model of the VFIO group layer\n");
    printf("topology: %s\n", topology && *topology ? topology : "the built-in default (vfio.rst: group 26, device 0000:06:0d.0)");

    step("Create a VM; KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) gives it its kvm-vfio device");
    vm = kvm_create_vm("vm0");
    expect("kvm-vfio device created", kvm_vfio_create(vm, &kv), 0);
    expect("a second kvm-vfio device for the same VM", kvm_vfio_create(vm, &second), -EBUSY);
    expect("KVM_HAS_DEVICE_ATTR(GROUP_ADD)", kvm_vfio_has_attr(kv, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD), 0);
    expect("VM references: the creator and the kvm-vfio device", kvm_users(vm), 2);
    show_state();

    step("User space opens the container and group %s, makes it viable and sets the container (vfio.rst)", group_id);
    container = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    expect("open /dev/vfio/vfio", container < 0 ? -errno : 0, 0);
    group = swiftvfio_open(group_path, O_RDWR);
    expect(group_path, group < 0 ? -errno : 0, 0);
    expect("VFIO_GROUP_SET_CONTAINER", sys(swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, (unsigned long)&container)), 0);
    expect("VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU)", sys(swiftvfio_ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)), 0);
    iommu_set = true;
    show_state();

    step("KVM_DEV_VFIO_GROUP_ADD(group fd %d): the consumer takes a file reference and sets the VM on the group", group);
    expect("GROUP_ADD", group_attr(KVM_DEV_VFIO_GROUP_ADD, group), 0);
    expect("the VM is not referenced yet (no device is open)", kvm_users(vm), 2);
    show_state();

    step("The consumer refuses what virt/kvm/vfio.c refuses");
    expect("GROUP_ADD of the same group again", group_attr(KVM_DEV_VFIO_GROUP_ADD, group), -EEXIST);
    dup_fd = swiftvfio_dup(group, 0, 0);
    expect("GROUP_ADD of a dup() of the group fd (same file)", group_attr(KVM_DEV_VFIO_GROUP_ADD, dup_fd), -EEXIST);
    swiftvfio_close(dup_fd);
    expect("GROUP_ADD of the container fd (not a group)", group_attr(KVM_DEV_VFIO_GROUP_ADD, container), -EINVAL);
    closed_fd = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    swiftvfio_close(closed_fd);
    expect("GROUP_ADD of a closed fd", group_attr(KVM_DEV_VFIO_GROUP_ADD, closed_fd), -EBADF);
    expect("GROUP_ADD with an unreadable argument pointer",
           kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, 16), -EFAULT);
    other = swiftvfio_open("/dev/vfio/28", O_RDWR);
    expect("GROUP_DEL of group 28, which was never added", group_attr(KVM_DEV_VFIO_GROUP_DEL, other), -ENOENT);
    swiftvfio_close(other);
    expect("an unknown attribute", kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, 99, 0), -ENXIO);
    expect("model WARNs so far (bad fds are not bad handles)", swiftvfio_census(&c) == 0 ? c.warnings : -1, 0);
    show_state();

    step("VFIO_GROUP_GET_DEVICE_FD(\"%s\"): the device's first open takes a VM reference", device_name);
    device = swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)device_name);
    expect("device fd", device < 0 ? -errno : 0, 0);
    expect("VM references: creator, kvm-vfio, the open device", kvm_users(vm), 3);
    show_state();

    eid = emulated_group_id();
    if (eid >= 0) {
        snprintf(egroup_path, sizeof(egroup_path), "/dev/vfio/%d", eid);
        step("GROUP_ADD of %s, the group of the emulated device %s (no IOMMU to enforce coherency)", egroup_path,
             emulated_name);
        egroup = swiftvfio_open(egroup_path, O_RDWR);
        expect(egroup_path, egroup < 0 ? -errno : 0, 0);
        expect("GROUP_ADD", group_attr(KVM_DEV_VFIO_GROUP_ADD, egroup), 0);
        expect("DMA is now non-coherent: registered once with the VM", atomic_load(&vm->noncoherent_dma_count), 1);
        show_state();

        step("GROUP_DEL of %s: coherent again, the registration goes", egroup_path);
        expect("GROUP_DEL", group_attr(KVM_DEV_VFIO_GROUP_DEL, egroup), 0);
        expect("GROUP_DEL again", group_attr(KVM_DEV_VFIO_GROUP_DEL, egroup), -ENOENT);
        expect("non-coherent DMA registrations outstanding", atomic_load(&vm->noncoherent_dma_count), 0);
        swiftvfio_close(egroup);
        egroup = -1;
        show_state();
    }

    step("Close the device fd: its last close drops the VM reference");
    expect("close", sys(swiftvfio_close(device)), 0);
    device = -1;
    expect("VM references: creator, kvm-vfio", kvm_users(vm), 2);
    show_state();

    step("Close the kvm-vfio device: the VM is cleared from every group, every file reference dropped");
    kvm_vfio_release(kv);
    kv = NULL;
    expect("VM references: the creator", kvm_users(vm), 1);
    expect("assigned groups", atomic_load(&vm->assigned_device_count), 0);
    show_state();

    step("User space closes the group and the container; the VM goes");
    expect("close group", sys(swiftvfio_close(group)), 0);
    group = -1;
    expect("close container", sys(swiftvfio_close(container)), 0);
    container = -1;
    kvm_put_kvm(vm);
    expect("VM destroyed", atomic_load(&vm->destroyed), 1);
    show_state();

    r = swiftvfio_census(&c);
    expect("nothing left in the model: files, fds, VM references, WARNs",
           r == 0 ? c.files + c.fds + c.kvm_references + c.warnings : -1, 0);
    kvm_free_vm(vm);

    printf("\n%s: %d step%s, %d failure%s\n", failures ? "FAILED" : "OK", step_no, step_no == 1 ? "" : "s", failures,
           failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
