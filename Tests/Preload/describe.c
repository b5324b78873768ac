// SPDX-License-Identifier: Apache-2.0
/* Prints what a VFIO client can observe of the model, in a fixed order: the device nodes and
 * their numbers, each group's status, members (by GET_DEVICE_FD's ENODEV/EINVAL), attachment to
 * a container and its devices. Scripts/test-preload.sh runs it under the preload with a JSON
 * topology and with the equivalent sysfs-shaped directory and requires the same output.
 *   describe <device name>...     the names to probe as group members */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void node(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("%s: %s\n", path, tp_errname(errno));
        return;
    }
    printf("%s: mode 0%o rdev %u:%u\n", path, st.st_mode, major(st.st_rdev), minor(st.st_rdev));
}

static void group(const char *path, int noiommu, int ndev, char **devs) {
    struct stat st;
    if (stat(path, &st) != 0) return;
    printf("group %s: rdev %u:%u\n", path, major(st.st_rdev), minor(st.st_rdev));
    int g = open(path, O_RDWR);
    if (g < 0) {
        printf("  open: %s\n", tp_errname(errno));
        return;
    }
    struct vfio_group_status gs = { .argsz = sizeof gs };
    if (ioctl(g, VFIO_GROUP_GET_STATUS, &gs) == 0) printf("  status: flags 0x%x\n", gs.flags);
    else printf("  status: %s\n", tp_errname(errno));
    int member[64] = { 0 };
    for (int i = 0; i < ndev && i < 64; i++) {
        int d = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, devs[i]);
        member[i] = d < 0 && errno == EINVAL; /* a known name, no container yet */
        if (member[i]) printf("  member %s\n", devs[i]);
        if (d >= 0) close(d);
    }
    int c = open("/dev/vfio/vfio", O_RDWR);
    int r = ioctl(g, VFIO_GROUP_SET_CONTAINER, &c);
    printf("  set container: %s\n", r == 0 ? "ok" : tp_errname(errno));
    if (r == 0) {
        r = ioctl(c, VFIO_SET_IOMMU, noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU);
        printf("  set iommu: %s\n", r == 0 ? "ok" : tp_errname(errno));
        for (int i = 0; i < ndev && i < 64; i++) {
            if (!member[i]) continue;
            int d = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, devs[i]);
            if (d < 0) {
                printf("  device %s: %s\n", devs[i], tp_errname(errno));
                continue;
            }
            struct vfio_device_info info = { .argsz = sizeof info };
            if (ioctl(d, VFIO_DEVICE_GET_INFO, &info) == 0)
                printf("  device %s: flags 0x%x regions %u irqs %u\n", devs[i], info.flags, info.num_regions, info.num_irqs);
            else printf("  device %s: info %s\n", devs[i], tp_errname(errno));
            close(d);
        }
        ioctl(g, VFIO_GROUP_UNSET_CONTAINER);
    }
    close(c);
    close(g);
}

int main(int argc, char **argv) {
    tp_require_preload();
    node("/dev/vfio");
    node("/dev/vfio/vfio");
    node("/dev/iommu");
    int c = open("/dev/vfio/vfio", O_RDWR);
    printf("CHECK_EXTENSION(NOIOMMU): %d\n", ioctl(c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU));
    close(c);
    char path[64];
    for (int n = 0; n < 300; n++) {
        snprintf(path, sizeof path, "/dev/vfio/%d", n);
        group(path, 0, argc - 1, argv + 1);
        snprintf(path, sizeof path, "/dev/vfio/noiommu-%d", n);
        group(path, 1, argc - 1, argv + 1);
    }
    return 0;
}
