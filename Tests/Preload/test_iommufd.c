// SPDX-License-Identifier: Apache-2.0
/* The iommufd path through /dev/iommu (docs/ERRORS.md#set-container step 6, docs/ERRORS.md#iommufd, docs/TOPOLOGY.md#built-in's iommufd variant, docs/DECISIONS.md#q1 as
 * decided in docs/DECISIONS.md#q1), built-in default topology.
 *   iommufd        /dev/iommu exists (CONFIG_IOMMUFD)
 *   iommufd off    SWIFTVFIO_TOPOLOGY=no-iommufd.json: /dev/iommu does not exist */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static unsigned status_flags(int group) {
    struct vfio_group_status st = { .argsz = sizeof st };
    EQ(ioctl(group, VFIO_GROUP_GET_STATUS, &st), 0);
    return st.flags;
}

int main(int argc, char **argv) {
    tp_require_preload();
    const unsigned VIABLE = VFIO_GROUP_FLAGS_VIABLE, SET = VFIO_GROUP_FLAGS_CONTAINER_SET;
    struct stat st;
    if (argc > 1 && strcmp(argv[1], "off") == 0) {
        FAILS(open("/dev/iommu", O_RDWR), ENOENT);
        FAILS(stat("/dev/iommu", &st), ENOENT);
        int g = OK(open("/dev/vfio/26", O_RDWR));
        OK(close(g));
        return tp_done();
    }

    int fd = OK(open("/dev/iommu", O_RDWR));
    OK(fstat(fd, &st));
    CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == 10, "mode 0%o rdev %u:%u", st.st_mode, major(st.st_rdev), minor(st.st_rdev));
    int fd2 = OK(open("/dev/iommu", O_RDWR)); /* not single-open: a new context each time */
    OK(close(fd2));

    /* The VFIO container ioctls the iommufd fd emulates (docs/ERRORS.md#iommufd). */
    EQ(ioctl(fd, VFIO_GET_API_VERSION), VFIO_API_VERSION);
    EQ(ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU), 1);
    EQ(ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
    EQ(ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL), 1);
    EQ(ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU), 0);
    FAILS(ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU), ENODEV); /* no compat IOAS yet */
    FAILS(ioctl(fd, VFIO_GROUP_GET_STATUS, &(struct vfio_group_status){ .argsz = 8 }), ENOTTY);

    /* A group on the iommufd: the compat IOAS is created, no SET_IOMMU needed. */
    int g = OK(open("/dev/vfio/26", O_RDWR));
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &fd), 0);
    EQ(status_flags(g), VIABLE | SET);
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &fd), EINVAL);
    EQ(ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU), 1);
    EQ(ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    EQ(ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0); /* not one-shot */
    FAILS(ioctl(fd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), EINVAL);
    FAILS(ioctl(fd, VFIO_IOMMU_DIRTY_PAGES, &(struct vfio_iommu_type1_dirty_bitmap){ .argsz = 8 }), ENOTTY);
    int d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    struct vfio_device_info info = { .argsz = sizeof info };
    EQ(ioctl(d, VFIO_DEVICE_GET_INFO, &info), 0);

    /* A group in iommufd mode: UNSET succeeds with the device open (no check, v6.3); the device
     * file recorded its context at open, so its last close unbinds (docs/DECISIONS.md#q1 as fixed in 6.6). */
    EQ(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 0);
    EQ(status_flags(g), 0); /* the device's bind still claims DMA ownership: not viable */
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), EPERM);
    OK(close(d));
    EQ(status_flags(g), VIABLE);
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0); /* ownership was released */
    EQ(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 0);

    /* The non-viable group attaches to an iommufd (no ownership claim there), reports VIABLE
     * (the source's caveat), and fails at device bind. */
    int g27 = OK(open("/dev/vfio/27", O_RDWR));
    EQ(ioctl(g27, VFIO_GROUP_SET_CONTAINER, &fd), 0);
    EQ(status_flags(g27), VIABLE | SET);
    FAILS(ioctl(g27, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0e.0"), EPERM);
    OK(close(g27));

    /* The group holds the context: closing the iommufd fd does not end it. */
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &fd), 0);
    OK(close(fd));
    d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    OK(close(d));
    OK(close(g));
    OK(close(c));
    g = OK(open("/dev/vfio/26", O_RDWR));
    EQ(status_flags(g), VIABLE);
    OK(close(g));
    return tp_done();
}
