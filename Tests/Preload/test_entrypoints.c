// SPDX-License-Identifier: Apache-2.0
/* Every libc entry point the preload interposes, called by name on model paths and fds: the
 * fortified and 64-bit forms, the pre-2.33 stat ABI older binaries call, the _chk reads, and the
 * device fd's read/write/pread/pwrite/mmap routed to the driver (the built-in vfio-pci model).
 * Built-in default topology. */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);
ssize_t __read_chk(int, void *, size_t, size_t);
ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
ssize_t __pread64_chk(int, void *, size_t, off64_t, size_t);
int __xstat(int, const char *, struct stat *);
int __xstat64(int, const char *, struct stat64 *);
int __lxstat(int, const char *, struct stat *);
int __lxstat64(int, const char *, struct stat64 *);
int __fxstat(int, int, struct stat *);
int __fxstat64(int, int, struct stat64 *);
int __fxstatat(int, int, const char *, struct stat *, int);
int __fxstatat64(int, int, const char *, struct stat64 *, int);
#define STAT_VER 1 /* _STAT_VER_LINUX on x86_64 */

#define CFG(off) (((off_t)VFIO_PCI_CONFIG_REGION_INDEX << 40) + (off))
#define BAR0(off) (((off_t)VFIO_PCI_BAR0_REGION_INDEX << 40) + (off))

static void opens(void) {
    typedef int (*open2)(const char *, int);
    typedef int (*openat2)(int, const char *, int);
    open2 o2[] = { __open_2, __open64_2 };
    openat2 oa2[] = { __openat_2, __openat64_2 };
    for (int i = 0; i < 2; i++) {
        int g = OK(o2[i]("/dev/vfio/26", O_RDWR));
        FAILS(o2[i]("/dev/vfio/26", O_RDWR), EBUSY);
        FAILS(o2[i]("/dev/vfio/99", O_RDWR), ENOENT);
        OK(close(g));
        g = OK(oa2[i](AT_FDCWD, "/dev/vfio/26", O_RDWR));
        FAILS(oa2[i](AT_FDCWD, "/dev/vfio/26", O_RDWR), EBUSY);
        OK(close(g));
    }
    int g = OK(open64("/dev/vfio/26", O_RDWR));
    FAILS(openat64(AT_FDCWD, "/dev/vfio/26", O_RDWR), EBUSY);
    int d = OK(fcntl64(g, F_DUPFD_CLOEXEC, 0));
    CHECK(fcntl64(d, F_GETFD) & FD_CLOEXEC, "fcntl64(F_DUPFD_CLOEXEC) without FD_CLOEXEC");
    OK(close(g));
    FAILS(open("/dev/vfio/26", O_RDWR), EBUSY);
    OK(close(d));
    g = OK(openat64(AT_FDCWD, "/dev/vfio/26", O_RDWR));
    OK(close(g));
}

static void stats(void) {
    struct stat s, s2;
    struct stat64 s64;
    OK(stat("/dev/vfio/26", &s));
    OK(stat64("/dev/vfio/26", &s64));
    EQ(s64.st_rdev, s.st_rdev);
    OK(lstat64("/dev/vfio/26", &s64));
    EQ(s64.st_rdev, s.st_rdev);
    OK(__xstat(STAT_VER, "/dev/vfio/26", &s2));
    EQ(s2.st_rdev, s.st_rdev);
    OK(__xstat64(STAT_VER, "/dev/vfio/26", &s64));
    EQ(s64.st_rdev, s.st_rdev);
    OK(__lxstat(STAT_VER, "/dev/vfio/26", &s2));
    EQ(s2.st_mode, s.st_mode);
    OK(__lxstat64(STAT_VER, "/dev/vfio/26", &s64));
    EQ(s64.st_mode, s.st_mode);
    FAILS(__xstat(STAT_VER, "/dev/vfio/99", &s2), ENOENT);
    OK(fstatat64(AT_FDCWD, "/dev/vfio/26", &s64, 0));
    EQ(s64.st_rdev, s.st_rdev);
    OK(__fxstatat(STAT_VER, AT_FDCWD, "/dev/vfio/26", &s2, AT_SYMLINK_NOFOLLOW));
    EQ(s2.st_rdev, s.st_rdev);
    OK(__fxstatat64(STAT_VER, AT_FDCWD, "/dev/vfio/26", &s64, 0));
    EQ(s64.st_rdev, s.st_rdev);
    int g = OK(open("/dev/vfio/26", O_RDWR));
    OK(fstat64(g, &s64));
    EQ(s64.st_rdev, s.st_rdev);
    OK(__fxstat(STAT_VER, g, &s2));
    EQ(s2.st_rdev, s.st_rdev);
    OK(__fxstat64(STAT_VER, g, &s64));
    EQ(s64.st_rdev, s.st_rdev);
    OK(__fxstatat64(STAT_VER, g, "", &s64, AT_EMPTY_PATH));
    EQ(s64.st_rdev, s.st_rdev);
    OK(close(g));
    /* No extended attributes on the nodes (ls -l asks for the SELinux label and ACLs). */
    char buf[64];
    FAILS(getxattr("/dev/vfio/26", "security.selinux", buf, sizeof buf), ENODATA);
    FAILS(lgetxattr("/dev/vfio/vfio", "system.posix_acl_access", buf, sizeof buf), ENODATA);
    EQ(listxattr("/dev/vfio/26", buf, sizeof buf), 0);
    EQ(llistxattr("/dev/iommu", buf, sizeof buf), 0);
    FAILS(getxattr("/dev/vfio/99", "security.selinux", buf, sizeof buf), ENOENT);
    FAILS(llistxattr("/dev/vfio/99", buf, sizeof buf), ENOENT);
}

static void device_io(void) {
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    int g = OK(open("/dev/vfio/26", O_RDWR));
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    int d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));

    unsigned short vendor = 0, vendor2 = 0, cmd = 0;
    EQ(pread(d, &vendor, 2, CFG(0)), 2);
    CHECK(vendor != 0 && vendor != 0xffff, "vendor 0x%04x", vendor);
    EQ(pread64(d, &vendor2, 2, CFG(0)), 2);
    EQ(vendor2, vendor);
    vendor2 = 0;
    EQ(__pread_chk(d, &vendor2, 2, CFG(0), sizeof vendor2), 2);
    EQ(vendor2, vendor);
    vendor2 = 0;
    EQ(__pread64_chk(d, &vendor2, 2, CFG(0), sizeof vendor2), 2);
    EQ(vendor2, vendor);
    FAILS(pread(d, &vendor2, 2, CFG(1 << 20)), EFAULT); /* outside config space, as the kernel */

    struct vfio_region_info bar = { .argsz = sizeof bar, .index = VFIO_PCI_BAR0_REGION_INDEX };
    EQ(ioctl(d, VFIO_DEVICE_GET_REGION_INFO, &bar), 0);
    CHECK(bar.size >= 4096 && (bar.flags & VFIO_REGION_INFO_FLAG_MMAP), "BAR0 size %llu flags 0x%x",
          (unsigned long long)bar.size, bar.flags);
    unsigned char byte;
    /* Enable memory decoding: COMMAND |= MEMORY, written with pwrite and pwrite64. */
    EQ(pread(d, &cmd, 2, CFG(4)), 2);
    cmd |= 0x2;
    EQ(pwrite(d, &cmd, 2, CFG(4)), 2);
    unsigned short back = 0;
    EQ(pread(d, &back, 2, CFG(4)), 2);
    CHECK(back & 0x2, "memory decoding did not stick (0x%x)", back);
    EQ(pwrite64(d, &cmd, 2, CFG(4)), 2);

    /* The BAR mapped with mmap and mmap64, seen through pread/pwrite and read/write. */
    unsigned char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, d, BAR0(0));
    CHECK(m != MAP_FAILED, "mmap BAR0: %s", tp_errname(errno));
    unsigned char *m64 = mmap64(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, d, BAR0(0));
    CHECK(m64 != MAP_FAILED, "mmap64 BAR0: %s", tp_errname(errno));
    if (m != MAP_FAILED && m64 != MAP_FAILED) {
        m[16] = 0x5a;
        EQ(m64[16], 0x5a);
        EQ(pread(d, &byte, 1, BAR0(16)), 1);
        EQ(byte, 0x5a);
        byte = 0xa5;
        EQ(pwrite(d, &byte, 1, BAR0(17)), 1);
        EQ(m[17], 0xa5);
        /* read()/write() use and advance the file position (0 = BAR0 offset 0); the placeholder
         * descriptor would read 0 bytes. */
        m[0] = 0x11;
        m[1] = 0x22;
        m[2] = 0x33;
        unsigned char two[2] = { 0, 0 };
        EQ(read(d, two, 2), 2);
        EQ(two[0], 0x11);
        EQ(two[1], 0x22);
        EQ(__read_chk(d, two, 1, sizeof two), 1);
        EQ(two[0], 0x33);
        EQ(write(d, "\x44", 1), 1); /* at position 3 */
        EQ(m[3], 0x44);
        munmap(m, 4096);
        munmap(m64, 4096);
    }
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, CFG(0)) == MAP_FAILED && errno == EINVAL,
          "mmap of config space: %s", tp_errname(errno));
    OK(close(d));
    OK(close(g));
    OK(close(c));
}

int main(void) {
    tp_require_preload();
    opens();
    stats();
    device_io();
    return tp_done();
}
