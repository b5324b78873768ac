// SPDX-License-Identifier: Apache-2.0
/* No-IOMMU groups and CAP_SYS_RAWIO (docs/DECISIONS.md#noiommu-config, docs/ERRORS.md#open, docs/ERRORS.md#noiommu-open-einval, docs/ERRORS.md#container-attach, docs/ERRORS.md#device-open, docs/ERRORS.md#device-open), with
 * SWIFTVFIO_TOPOLOGY=noiommu.json: enable_unsafe_noiommu_mode on, device 0000:09:00.0 without an
 * IOMMU group bound to vfio-pci (node /dev/vfio/noiommu-0), and group 26 as before.
 *
 *   noiommu rawio     the process has CAP_SYS_RAWIO (root); also drops and regains it in its
 *                     effective set mid-run: the model asks capget() at the moment the kernel asks
 *   noiommu norawio   run under setpriv --inh-caps=-sys_rawio --bounding-set=-sys_rawio */
#include "tp.h"
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct __user_cap_data_struct caps[2];

static int have_rawio(void) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    if (syscall(SYS_capget, &h, caps) != 0) return 0;
    return (caps[CAP_TO_INDEX(CAP_SYS_RAWIO)].effective & CAP_TO_MASK(CAP_SYS_RAWIO)) != 0;
}

/* Raises or lowers CAP_SYS_RAWIO in the effective set (it stays permitted). */
static int set_rawio(int on) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    if (syscall(SYS_capget, &h, caps) != 0) return -1;
    if (on) caps[CAP_TO_INDEX(CAP_SYS_RAWIO)].effective |= CAP_TO_MASK(CAP_SYS_RAWIO);
    else caps[CAP_TO_INDEX(CAP_SYS_RAWIO)].effective &= ~CAP_TO_MASK(CAP_SYS_RAWIO);
    return (int)syscall(SYS_capset, &h, caps);
}

static unsigned status_flags(int group) {
    struct vfio_group_status st = { .argsz = sizeof st };
    EQ(ioctl(group, VFIO_GROUP_GET_STATUS, &st), 0);
    return st.flags;
}

static void with_rawio(void) {
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 1);
    int g = OK(open("/dev/vfio/noiommu-0", O_RDWR));
    FAILS(open("/dev/vfio/noiommu-0", O_RDWR), EBUSY);
    FAILS(open("/dev/vfio/0", O_RDWR), ENOENT); /* a no-IOMMU group is only noiommu-<N> */
    EQ(status_flags(g), VFIO_GROUP_FLAGS_VIABLE); /* always viable */
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    /* Only the noiommu backend is allowed for a container of no-IOMMU groups (docs/ERRORS.md#state-container). */
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU), 0);
    FAILS(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), ENODEV);
    /* Real and fake groups cannot mix in a container. */
    int g26 = OK(open("/dev/vfio/26", O_RDWR));
    FAILS(ioctl(g26, VFIO_GROUP_SET_CONTAINER, &c), EPERM);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), 0);
    FAILS(ioctl(c, VFIO_IOMMU_MAP_DMA, &(struct vfio_iommu_type1_dma_map){ .argsz = 32 }), ENOTTY);
    int d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:09:00.0"));
    OK(close(d));

    /* CAP_SYS_RAWIO is read when the kernel asks, not at start-up. */
    CHECK(set_rawio(0) == 0 && !have_rawio(), "cannot drop CAP_SYS_RAWIO: %s", tp_errname(errno));
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:09:00.0"), EPERM); /* container use (docs/ERRORS.md#device-open) */
    int c2 = OK(open("/dev/vfio/vfio", O_RDWR));
    FAILS(ioctl(c2, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), EINVAL); /* no groups: EINVAL first */
    OK(close(g));
    FAILS(open("/dev/vfio/noiommu-0", O_RDWR), EPERM); /* group open (docs/ERRORS.md#open) */
    CHECK(set_rawio(1) == 0 && have_rawio(), "cannot regain CAP_SYS_RAWIO: %s", tp_errname(errno));
    g = OK(open("/dev/vfio/noiommu-0", O_RDWR));
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c2), 0);
    CHECK(set_rawio(0) == 0, "drop");
    FAILS(ioctl(c2, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), EPERM); /* backend open (docs/ERRORS.md#noiommu-open-einval) */
    CHECK(set_rawio(1) == 0, "regain");
    EQ(ioctl(c2, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), 0);
    d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:09:00.0"));
    OK(close(d));
    EQ(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 0);

    /* The iommufd path: a no-IOMMU group on /dev/iommu sets no-iommu mode (docs/ERRORS.md#iommufd, docs/ERRORS.md#device-open). */
    int ioas = OK(open("/dev/iommu", O_RDWR));
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &ioas), 0);
    EQ(status_flags(g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    CHECK(set_rawio(0) == 0, "drop");
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:09:00.0"), EPERM); /* bind without RAWIO */
    CHECK(set_rawio(1) == 0, "regain");
    d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:09:00.0"));
    /* A real group on the same iommufd needs a compat IOAS: no-iommu mode refuses it. */
    FAILS(ioctl(g26, VFIO_GROUP_SET_CONTAINER, &ioas), EINVAL);
    OK(close(d));
    OK(close(g));
    OK(close(ioas));
    OK(close(g26));
    OK(close(c));
    OK(close(c2));
}

static void without_rawio(void) {
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 1); /* asking needs no privilege */
    FAILS(open("/dev/vfio/noiommu-0", O_RDWR), EPERM);
    FAILS(openat(AT_FDCWD, "/dev/vfio/noiommu-0", O_RDWR | O_CLOEXEC), EPERM);
    /* The real group is unaffected. */
    int g = OK(open("/dev/vfio/26", O_RDWR));
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    int d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    OK(close(d));
    OK(close(g));
    OK(close(c));
}

int main(int argc, char **argv) {
    tp_require_preload();
    int want = argc > 1 && strcmp(argv[1], "rawio") == 0;
    if (argc < 2 || (!want && strcmp(argv[1], "norawio") != 0)) {
        fprintf(stderr, "usage: %s rawio|norawio\n", argv[0]);
        return 2;
    }
    if (have_rawio() != want) {
        fprintf(stderr, "%s: CAP_SYS_RAWIO is %s in the effective set, expected %s\n", argv[0],
                have_rawio() ? "present" : "absent", want ? "present" : "absent");
        return 2;
    }
    if (want) with_rawio();
    else without_rawio();
    return tp_done();
}
