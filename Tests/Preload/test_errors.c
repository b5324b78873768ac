// SPDX-License-Identifier: Apache-2.0
/* Every group and container errno a user program can reach through /dev/vfio (docs/ERRORS.md#group-ioctls, docs/ERRORS.md#container, docs/ERRORS.md),
 * in the kernel's order of checks, as errno after the libc call. Built-in default topology:
 * group 26 (0000:06:0d.0, vfio-pci, viable), group 27 (a vfio-pci device plus one bound to the
 * kernel driver e1000e: not viable), group 28 (viable), and the emulated device mdev-0 with a
 * fake IOMMU group of its own. */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned status_flags(int group) {
    struct vfio_group_status st = { .argsz = sizeof st };
    EQ(ioctl(group, VFIO_GROUP_GET_STATUS, &st), 0);
    return st.flags;
}

/* The emulated device's group: VFIO gives it a fake IOMMU group number of its own. */
static int find_mdev_group(char *path, size_t len) {
    for (int n = 0; n < 64; n++) {
        snprintf(path, len, "/dev/vfio/%d", n);
        int g = open(path, O_RDWR);
        if (g < 0) continue;
        int d = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "mdev-0");
        int e = errno;
        if (d < 0 && e == EINVAL) return g; /* known name, no container yet (docs/ERRORS.md#get-device-fd step 2 vs 4) */
        close(g);
    }
    return -1;
}

int main(void) {
    tp_require_preload();
    const int VIABLE = VFIO_GROUP_FLAGS_VIABLE, SET = VFIO_GROUP_FLAGS_CONTAINER_SET;

    /* ---- names ---- */
    FAILS(open("/dev/vfio/99", O_RDWR), ENOENT);
    FAILS(open("/dev/vfio/foo", O_RDWR), ENOENT);
    FAILS(open("/dev/vfio/noiommu-0", O_RDWR), ENOENT); /* no no-IOMMU groups in this topology */
    FAILS(open("/dev/vfio/26/x", O_RDWR), ENOTDIR);
    FAILS(open("/dev/vfio/26/", O_RDWR), ENOTDIR);
    FAILS(open("/dev/vfio/99/x", O_RDWR), ENOENT);
    FAILS(open("/dev/vfio/26", O_RDWR | O_DIRECTORY), ENOTDIR);
    FAILS(open("/dev/vfio/vfio", O_RDWR | O_CREAT | O_EXCL, 0600), EEXIST);
    FAILS(openat(AT_FDCWD, "/dev/vfio/nope", O_RDONLY), ENOENT);

    /* ---- container without groups (docs/ERRORS.md#container, docs/DECISIONS.md#q4) ---- */
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    EQ(ioctl(c, VFIO_GET_API_VERSION), VFIO_API_VERSION);
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU), 1);
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 0); /* noiommu mode off */
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, 999), 0);
    FAILS(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), EINVAL); /* no groups */
    FAILS(ioctl(c, VFIO_IOMMU_GET_INFO, &(struct vfio_iommu_type1_info){ .argsz = 16 }), EINVAL); /* no backend */
    /* Numbers collide across fd kinds: a group ioctl on a container goes to the (absent) backend. */
    FAILS(ioctl(c, VFIO_GROUP_GET_STATUS, &(struct vfio_group_status){ .argsz = 8 }), EINVAL);
    FAILS(read(c, (char[4]){0}, 4), EINVAL);
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, c, 0) == MAP_FAILED && errno == ENODEV, "mmap container: %s", tp_errname(errno));

    /* ---- group 26 without a container ---- */
    int g = OK(open("/dev/vfio/26", O_RDWR));
    FAILS(open("/dev/vfio/26", O_RDWR), EBUSY); /* single open (docs/ERRORS.md#open) */
    EQ(status_flags(g), VIABLE);
    FAILS(ioctl(g, VFIO_GROUP_GET_STATUS, &(struct vfio_group_status){ .argsz = 7 }), EINVAL);
    FAILS(ioctl(g, VFIO_GROUP_GET_STATUS, NULL), EFAULT);
    FAILS(ioctl(g, VFIO_GROUP_GET_STATUS, (void *)16), EFAULT);
    FAILS(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EINVAL); /* nothing set */
    FAILS(ioctl(g, VFIO_GET_API_VERSION), ENOTTY);         /* a container ioctl on a group */
    FAILS(ioctl(g, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU), ENOTTY);
    FAILS(ioctl(g, _IO(VFIO_TYPE, VFIO_BASE + 40)), ENOTTY);
    /* GET_DEVICE_FD: name copy, then lookup (ENODEV), then the container check (EINVAL) (docs/DECISIONS.md#q3). */
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, NULL), EFAULT);
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:ff:00.0"), ENODEV);
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"), EINVAL);
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0e.0"), ENODEV); /* group 27's device */
    static char longname[8192];
    memset(longname, 'a', sizeof longname - 1);
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, longname), EINVAL); /* no NUL in PAGE_SIZE bytes */
    /* vfio-pci's match: options after a space (docs/ERRORS.md#pci-match). */
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0 bogus=1"), EINVAL);
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0 vf_token=2ab74924-c335-45f4-9b16-8569e5b08258"), EINVAL); /* no VF token applies */
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0x"), ENODEV);
    FAILS(read(g, (char[4]){0}, 4), EINVAL);
    FAILS(write(g, "x", 1), EINVAL);
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, g, 0) == MAP_FAILED && errno == ENODEV, "mmap group: %s", tp_errname(errno));

    /* SET_CONTAINER precedence (docs/DECISIONS.md#q2): EFAULT, EBADF, (EINVAL already set), EBADFD. */
    int p[2];
    OK(pipe(p));
    int closed = OK(dup(p[0]));
    OK(close(closed));
    int opath = OK(open("/", O_PATH));
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, NULL), EFAULT);
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &closed), EBADF);
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &(int){ -1 }), EBADF);
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &opath), EBADF); /* O_PATH is not open for I/O */
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &p[0]), EBADFD); /* open, but not a container */
    int g28 = OK(open("/dev/vfio/28", O_RDWR));
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &g28), EBADFD);  /* a group is not a container */
    EQ(status_flags(g), VIABLE);

    /* ---- attach ---- */
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(status_flags(g), VIABLE | SET);
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), EINVAL);     /* already set */
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &p[0]), EINVAL);  /* EINVAL before EBADFD */
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &closed), EBADF); /* EBADF before EINVAL */
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"), EINVAL); /* no SET_IOMMU yet */
    FAILS(ioctl(c, VFIO_IOMMU_GET_INFO, &(struct vfio_iommu_type1_info){ .argsz = 16 }), EINVAL);
    FAILS(ioctl(c, VFIO_SET_IOMMU, 999), ENODEV);           /* no backend accepts it */
    FAILS(ioctl(c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), ENODEV);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    FAILS(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), EINVAL); /* backend already set */
    FAILS(ioctl(c, _IO(VFIO_TYPE, VFIO_BASE + 40)), ENOTTY);     /* unknown, to type1 */
    EQ(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU), 1);

    /* A second viable group joins the same container (docs/ERRORS.md#t1-attach). */
    EQ(ioctl(g28, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(status_flags(g28), VIABLE | SET);

    /* The non-viable group: a kernel driver owns DMA in IOMMU group 27 (docs/ERRORS.md#get-status, docs/ERRORS.md#container-attach). */
    int g27 = OK(open("/dev/vfio/27", O_RDWR));
    EQ(status_flags(g27), 0);
    FAILS(ioctl(g27, VFIO_GROUP_SET_CONTAINER, &c), EPERM);
    int c2 = OK(open("/dev/vfio/vfio", O_RDWR));
    FAILS(ioctl(g27, VFIO_GROUP_SET_CONTAINER, &c2), EPERM);
    FAILS(ioctl(g27, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0e.0"), EINVAL);
    OK(close(g27));

    /* ---- devices ---- */
    int d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    CHECK(fcntl(d, F_GETFD) & FD_CLOEXEC, "device fd without FD_CLOEXEC");
    int d2 = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0")); /* no limit per device (docs/DECISIONS.md#q10) */
    FAILS(ioctl(d, VFIO_GROUP_GET_STATUS, &(struct vfio_group_status){ .argsz = 8 }), ENOTTY); /* to the driver */
    FAILS(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EBUSY); /* a device is open (container mode) */
    OK(close(d));
    FAILS(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EBUSY);
    OK(close(d2));
    EQ(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 0);
    EQ(status_flags(g), VIABLE);
    FAILS(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EINVAL);

    /* EMFILE: GET_DEVICE_FD cannot reserve an fd (docs/ERRORS.md#get-device-fd step 3); open likewise. */
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    struct rlimit old, low;
    OK(getrlimit(RLIMIT_NOFILE, &old));
    low = old;
    low.rlim_cur = 64;
    OK(setrlimit(RLIMIT_NOFILE, &low));
    int filler[64], nfill = 0;
    for (;;) {
        int f = open("/dev/null", O_RDONLY);
        if (f < 0) break;
        filler[nfill++] = f;
    }
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"), EMFILE);
    FAILS(open("/dev/vfio/vfio", O_RDWR), EMFILE);
    FAILS(dup(c), EMFILE);
    while (nfill) close(filler[--nfill]);
    OK(setrlimit(RLIMIT_NOFILE, &old));
    d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    OK(close(d));

    /* ---- the emulated device's fake group ---- */
    char path[64];
    int gm = find_mdev_group(path, sizeof path);
    CHECK(gm >= 0, "no group holds mdev-0");
    if (gm >= 0) {
        EQ(status_flags(gm), VIABLE); /* EMULATED groups are always viable */
        EQ(ioctl(gm, VFIO_GROUP_SET_CONTAINER, &c), 0); /* EMULATED counts as real: it may join */
        int dm = OK(ioctl(gm, VFIO_GROUP_GET_DEVICE_FD, "mdev-0"));
        OK(close(dm));
        OK(close(gm));
    }

    OK(close(g28));
    OK(close(g));
    OK(close(c));
    OK(close(c2));
    OK(close(opath));
    OK(close(p[0]));
    OK(close(p[1]));
    /* Everything released: the groups open again. */
    g = OK(open("/dev/vfio/26", O_RDWR));
    OK(close(g));
    FAILS(close(g), EBADF);
    return tp_done();
}
