// SPDX-License-Identifier: Apache-2.0
/* The module files a VFIO client checks before it opens /dev/vfio, answered by the interposer while
 * a model is loaded (Sources/CSwiftVFIOPreload/calls_module.c): DPDK's rte_eal_check_module() stats
 * /sys/module/vfio and /sys/module/vfio_pci, and its IOVA choice open()s and read()s the no-IOMMU
 * parameter. Run with no argument under the built-in default topology (parameter "N"), and by
 * Scripts/test-preload.sh as `test_modules Y` under a no-IOMMU topology. With no model loaded the
 * same paths are the host's (Tests/Preload/badtopo.c). */
#include "tp.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define PARAM "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"

/* Whether the host itself has `path` (a raw system call: no interposer sees it). */
static int host_has(const char *path) {
    struct stat st;
    return syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0;
}

static void directories(void) {
    static const char *const dirs[] = { "/sys/module/vfio", "/sys/module/vfio_pci", "/sys/module/vfio_iommu_type1",
                                        "/sys/module/vfio/parameters", "/sys/module/vfio/", "/sys/module//vfio_pci/." };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        struct stat st;
        struct stat64 st64;
        struct statx sx;
        EQ(stat(dirs[i], &st), 0);
        CHECK(S_ISDIR(st.st_mode), "%s: mode 0%o", dirs[i], st.st_mode);
        if (!host_has(dirs[i])) { /* the model's own answer (the host's wins where it has one) */
            EQ(st.st_mode & 07777, 0755);
            EQ(st.st_uid, 0);
            EQ(st.st_nlink, 2);
        }
        EQ(lstat(dirs[i], &st), 0);
        CHECK(S_ISDIR(st.st_mode), "lstat %s", dirs[i]);
        EQ(stat64(dirs[i], &st64), 0);
        CHECK(S_ISDIR(st64.st_mode), "stat64 %s", dirs[i]);
        EQ(fstatat(AT_FDCWD, dirs[i], &st, 0), 0);
        CHECK(S_ISDIR(st.st_mode), "fstatat %s", dirs[i]);
        EQ(statx(AT_FDCWD, dirs[i], 0, STATX_BASIC_STATS, &sx), 0);
        CHECK(S_ISDIR(sx.stx_mode), "statx %s", dirs[i]);
        EQ(access(dirs[i], F_OK), 0);
        EQ(access(dirs[i], R_OK | X_OK), 0);
        EQ(faccessat(AT_FDCWD, dirs[i], R_OK, 0), 0);
    }
    /* One path is one inode; two paths are two. */
    struct stat a, b, c;
    EQ(stat("/sys/module/vfio", &a), 0);
    EQ(stat("/sys/module/vfio/", &b), 0);
    EQ(stat("/sys/module/vfio_pci", &c), 0);
    CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "two inodes for /sys/module/vfio");
    CHECK(a.st_ino != c.st_ino, "vfio and vfio_pci share inode %lu", (unsigned long)a.st_ino);
    /* Names that are not the model's modules: the host's (ENOENT on a host without them). */
    struct stat st;
    if (!host_has("/sys/module/vfio_nope")) FAILS(stat("/sys/module/vfio_nope", &st), ENOENT);
    if (!host_has("/sys/module/vfio/refcnt")) FAILS(stat("/sys/module/vfio/refcnt", &st), ENOENT);
    if (!host_has("/sys/module/vfiox")) FAILS(stat("/sys/module/vfiox", &st), ENOENT);
    /* Relative to the current directory and to a directory fd, as the kernel resolves them. */
    if (host_has("/sys/module")) {
        char cwd[4096];
        CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
        OK(chdir("/sys/module"));
        EQ(stat("vfio", &st), 0);
        CHECK(S_ISDIR(st.st_mode), "stat(\"vfio\") in /sys/module");
        OK(chdir(cwd));
        int dir = OK(open("/sys/module", O_RDONLY | O_DIRECTORY));
        EQ(fstatat(dir, "vfio_pci", &st, 0), 0);
        CHECK(S_ISDIR(st.st_mode), "fstatat(/sys/module fd, \"vfio_pci\")");
        int p = OK(openat(dir, "vfio/parameters/enable_unsafe_noiommu_mode", O_RDONLY));
        OK(close(p));
        OK(close(dir));
    }
}

static void parameter(char want) {
    struct stat st;
    EQ(stat(PARAM, &st), 0);
    CHECK(S_ISREG(st.st_mode), "mode 0%o", st.st_mode);
    EQ(st.st_mode & 07777, 0644);
    EQ(st.st_size, 4096); /* sysfs attributes report a page */
    EQ(access(PARAM, R_OK), 0);
    FAILS(access(PARAM, W_OK), EACCES); /* writing the parameter is not modelled */
    FAILS(access(PARAM, X_OK), EACCES);
    FAILS(stat(PARAM "/", &st), ENOTDIR);

    /* open + read, as DPDK's rte_vfio_noiommu_is_enabled(): "Y\n" or "N\n", then end of file. */
    char buf[16] = { 0 };
    int fd = OK(open(PARAM, O_RDONLY));
    EQ(read(fd, buf, sizeof buf), 2);
    EQ(buf[0], want);
    EQ(buf[1], '\n');
    EQ(read(fd, buf, sizeof buf), 0);
    EQ(pread(fd, buf, 1, 0), 1);
    EQ(buf[0], want);
    FAILS(write(fd, "N", 1), EBADF); /* opened for reading */
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0, "O_CLOEXEC not asked for, but set");
    OK(close(fd));
    fd = OK(open(PARAM, O_RDONLY | O_CLOEXEC));
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "O_CLOEXEC asked for, not set");
    EQ(read(fd, buf, 1), 1);
    EQ(buf[0], want);
    OK(close(fd));
    fd = OK(openat(AT_FDCWD, PARAM, O_RDONLY));
    OK(close(fd));
    /* stdio reads it too (fopen opens inside glibc, unseen; fdopen of our descriptor works). */
    fd = OK(open(PARAM, O_RDONLY));
    FILE *f = fdopen(fd, "r");
    CHECK(f != NULL, "fdopen");
    if (f) {
        CHECK(fgets(buf, sizeof buf, f) != NULL && buf[0] == want && buf[1] == '\n', "fgets: %s", buf);
        fclose(f);
    }

    /* What the kernel refuses. */
    FAILS(open(PARAM, O_WRONLY), EACCES);
    FAILS(open(PARAM, O_RDWR), EACCES);
    FAILS(open(PARAM, O_RDONLY | O_DIRECTORY), ENOTDIR);
    FAILS(open(PARAM "/", O_RDONLY), ENOTDIR);
    FAILS(open(PARAM, O_RDONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    /* No extended attributes. */
    FAILS(getxattr(PARAM, "security.selinux", buf, sizeof buf), ENODATA);
    EQ(listxattr("/sys/module/vfio", buf, sizeof buf), 0);
}

int main(int argc, char **argv) {
    tp_require_preload();
    char want = argc > 1 ? argv[1][0] : 'N';
    directories();
    parameter(want);
    return tp_done();
}
