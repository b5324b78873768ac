// SPDX-License-Identifier: Apache-2.0
/* Files as the kernel has them, through the preload: a dup is the same file, release runs at the
 * last close of the last dup, device fds pin the group file (container mode), the container lives
 * while a group holds it, fds closed behind the interposer's back never misroute a reused number,
 * and stat answers as for the kernel's character devices. Built-in default topology. */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int open26(void) { return open("/dev/vfio/26", O_RDWR); }

static unsigned status_flags(int group) {
    struct vfio_group_status st = { .argsz = sizeof st };
    EQ(ioctl(group, VFIO_GROUP_GET_STATUS, &st), 0);
    return st.flags;
}

/* A group fd closed somewhere: the group opens again. */
static void expect_released(const char *how) {
    int g = open26();
    CHECK(g >= 0, "after %s: open 26: %s", how, tp_errname(errno));
    if (g >= 0) close(g);
}

static void expect_busy(const char *how) {
    errno = 0;
    int g = open26();
    CHECK(g < 0 && errno == EBUSY, "after %s: open 26 = %d (%s), want EBUSY", how, g, tp_errname(errno));
    if (g >= 0) close(g);
}

static void dups(void) {
    /* dup */
    int g = OK(open26());
    int d = OK(dup(g));
    CHECK(d != g, "dup returned the same number");
    EQ(status_flags(d), VFIO_GROUP_FLAGS_VIABLE); /* the dup is the group file */
    OK(close(g));
    expect_busy("close of the original, dup open");
    EQ(status_flags(d), VFIO_GROUP_FLAGS_VIABLE);
    OK(close(d));
    expect_released("close of the last dup");

    /* dup2, dup3, F_DUPFD, F_DUPFD_CLOEXEC, and the flags each sets */
    g = OK(open26());
    int target = OK(open("/dev/null", O_RDONLY)); /* dup2 closes what was there */
    EQ(dup2(g, target), target);
    EQ(fcntl(target, F_GETFD) & FD_CLOEXEC, 0);
    int d3 = OK(dup3(g, 200, O_CLOEXEC));
    EQ(d3, 200);
    CHECK(fcntl(d3, F_GETFD) & FD_CLOEXEC, "dup3(O_CLOEXEC) without FD_CLOEXEC");
    int f1 = OK(fcntl(g, F_DUPFD, 300));
    CHECK(f1 >= 300, "F_DUPFD gave %d", f1);
    EQ(fcntl(f1, F_GETFD) & FD_CLOEXEC, 0);
    int f2 = OK(fcntl(g, F_DUPFD_CLOEXEC, 300));
    CHECK(f2 > 300, "F_DUPFD_CLOEXEC gave %d", f2);
    CHECK(fcntl(f2, F_GETFD) & FD_CLOEXEC, "F_DUPFD_CLOEXEC without FD_CLOEXEC");
    OK(fcntl(f2, F_SETFD, 0));
    EQ(fcntl(f2, F_GETFD) & FD_CLOEXEC, 0);
    FAILS(fcntl(g, F_DUPFD, -1), EINVAL);
    FAILS(dup3(g, g, 0), EINVAL);
    EQ(dup2(g, g), g);
    int fds[] = { g, target, d3, f1, f2 };
    for (int i = 0; i < 5; i++) {
        EQ(status_flags(fds[i]), VFIO_GROUP_FLAGS_VIABLE);
        OK(close(fds[i]));
        if (i < 4) expect_busy("closing some of the dups");
    }
    expect_released("closing every dup");

    /* dup2 over a model fd closes that file (its release runs). */
    g = OK(open26());
    int p[2];
    OK(pipe(p));
    EQ(dup2(p[0], g), g);
    expect_released("dup2 of a pipe over the group fd");
    int n = 0;
    EQ(ioctl(g, FIONREAD, &n), 0); /* the number is the pipe now */
    OK(close(g));
    OK(close(p[0]));
    OK(close(p[1]));

    /* close_range and closefrom close model fds through the model. */
    g = OK(open26());
    EQ(close_range((unsigned)g, (unsigned)g, 0), 0);
    expect_released("close_range");
    g = OK(open26());
    EQ(close_range((unsigned)g, (unsigned)g, CLOSE_RANGE_CLOEXEC), 0); /* only marks it */
    expect_busy("close_range(CLOSE_RANGE_CLOEXEC)");
    CHECK(fcntl(g, F_GETFD) & FD_CLOEXEC, "CLOSE_RANGE_CLOEXEC did not mark it");
    OK(close(g));
    g = OK(open26());
    int hi = OK(fcntl(g, F_DUPFD, 500));
    CHECK(hi >= 500, "F_DUPFD gave %d", hi);
    OK(close(g));
    expect_busy("close of the original, a high dup open");
    closefrom(400);
    expect_released("closefrom");
}

static void pins(void) {
    /* Device fds pin the group file while the group is in a container (docs/ERRORS.md#device-open). */
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    int g = OK(open26());
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    int d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    int dd = OK(dup(d));
    OK(close(g));
    expect_busy("close of the group fd with a device open");
    OK(close(d));
    expect_busy("close of one of two device fds");
    OK(close(dd));
    expect_released("close of the last device fd");

    /* The container lives while a group holds it. */
    g = OK(open26());
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    OK(close(c));
    EQ(status_flags(g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0")); /* still type1 */
    OK(close(d));
    EQ(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 0); /* the last group leaves: the container goes */
    c = OK(open("/dev/vfio/vfio", O_RDWR));
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    FAILS(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"), EINVAL); /* a new container: no IOMMU set */
    OK(close(g));
    OK(close(c));
}

static void behind_the_back(void) {
    /* fclose(fdopen(fd)) closes a model fd inside glibc, unseen; a pipe reuses the number. */
    int g = OK(open26());
    FILE *f = fdopen(g, "r");
    CHECK(f != NULL, "fdopen: %s", tp_errname(errno));
    if (f) fclose(f);
    int p[2];
    OK(pipe(p));
    int reused = p[0] == g ? p[0] : p[1] == g ? p[1] : -1;
    CHECK(reused == g, "the pipe did not reuse fd %d (%d, %d)", g, p[0], p[1]);
    /* An ioctl on the pipe is the pipe's: FIONREAD works, a VFIO ioctl is ENOTTY. */
    OK(write(p[1], "abc", 3));
    int n = -1;
    EQ(ioctl(p[0], FIONREAD, &n), 0);
    EQ(n, 3);
    FAILS(ioctl(reused, VFIO_GROUP_GET_STATUS, &(struct vfio_group_status){ .argsz = 8 }), ENOTTY);
    char buf[3];
    EQ(read(p[0], buf, 3), 3);
    struct stat st;
    OK(fstat(reused, &st));
    CHECK(S_ISFIFO(st.st_mode), "fstat of the pipe says mode 0%o", st.st_mode);
    /* The file the stream closed was released (the kernel released it at fclose). */
    expect_released("fclose(fdopen(group fd))");
    OK(close(p[0]));
    OK(close(p[1]));

    /* A raw close(2) system call instruction, unseen: the model learns when a creator (here
     * eventfd) hands the number out again, and retires the stale entry first. */
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    g = OK(open26());
    EQ(tp_raw_close(g), 0);
    int e = OK(eventfd(0, 0));
    EQ(e, g);
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), ENOTTY); /* the eventfd's answer */
    expect_released("raw close of the group fd");
    /* SET_CONTAINER given the reused number: an open non-model fd, EBADFD. */
    g = OK(open26());
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &e), EBADFD);
    /* ... and a number closed behind our back and not reused: the model checks the number it is
     * given itself, EBADF. */
    int c2 = OK(open("/dev/vfio/vfio", O_RDWR));
    EQ(tp_raw_close(c2), 0);
    FAILS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c2), EBADF);
    FAILS(close(c2), EBADF);
    OK(close(e));
    OK(close(g));
    OK(close(c));
}

static void stats(void) {
    struct stat s, s2;
    OK(stat("/dev/vfio/vfio", &s));
    CHECK(S_ISCHR(s.st_mode) && (s.st_mode & 07777) == 0666, "vfio mode 0%o", s.st_mode);
    EQ(major(s.st_rdev), 10);
    EQ(minor(s.st_rdev), 196);
    OK(stat("/dev/vfio/26", &s));
    CHECK(S_ISCHR(s.st_mode) && (s.st_mode & 07777) == 0600, "group mode 0%o", s.st_mode);
    CHECK(major(s.st_rdev) != 10 && major(s.st_rdev) != 0, "group major %u", major(s.st_rdev));
    EQ(s.st_uid, 0);
    OK(stat("/dev/vfio/28", &s2));
    EQ(major(s2.st_rdev), major(s.st_rdev));
    CHECK(minor(s2.st_rdev) != minor(s.st_rdev), "groups 26 and 28 share minor %u", minor(s.st_rdev));
    OK(lstat("/dev/vfio/26", &s2));
    EQ(s2.st_rdev, s.st_rdev);
    OK(stat("/dev/iommu", &s2));
    CHECK(S_ISCHR(s2.st_mode) && (s2.st_mode & 07777) == 0660 && major(s2.st_rdev) == 10, "iommu 0%o %u:%u",
          s2.st_mode, major(s2.st_rdev), minor(s2.st_rdev));
    OK(stat("/dev/vfio", &s2));
    CHECK(S_ISDIR(s2.st_mode) && (s2.st_mode & 07777) == 0755, "/dev/vfio mode 0%o", s2.st_mode);
    OK(stat("/dev/vfio/", &s2));
    FAILS(stat("/dev/vfio/99", &s2), ENOENT);
    FAILS(stat("/dev/vfio/26/", &s2), ENOTDIR);
    FAILS(stat("/dev/vfio/26/x", &s2), ENOTDIR);
    OK(stat("//dev/./vfio/../vfio//26", &s2));
    EQ(s2.st_rdev, s.st_rdev);
    EQ(access("/dev/vfio/26", R_OK | W_OK), 0);
    FAILS(access("/dev/vfio/26", X_OK), EACCES);
    FAILS(access("/dev/vfio/99", F_OK), ENOENT);
    EQ(faccessat(AT_FDCWD, "/dev/vfio/vfio", F_OK, 0), 0);

    /* An open group fd answers as its node; a dup is the same inode. */
    int g = OK(open26());
    OK(fstat(g, &s2));
    EQ(s2.st_rdev, s.st_rdev);
    EQ(s2.st_ino, s.st_ino);
    EQ(s2.st_mode, s.st_mode);
    int d = OK(dup(g));
    struct stat s3;
    OK(fstat(d, &s3));
    EQ(s3.st_ino, s2.st_ino);
    EQ(s3.st_dev, s2.st_dev);
    OK(fstatat(g, "", &s3, AT_EMPTY_PATH));
    EQ(s3.st_rdev, s.st_rdev);
    struct statx sx;
    OK(statx(AT_FDCWD, "/dev/vfio/26", 0, STATX_BASIC_STATS, &sx));
    EQ(makedev(sx.stx_rdev_major, sx.stx_rdev_minor), s.st_rdev);
    EQ(sx.stx_mode, s.st_mode);
    OK(statx(g, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx));
    EQ(sx.stx_ino, s.st_ino);
    OK(close(d));

    /* Relative paths resolve against the cwd or the directory fd. */
    int dev = OK(open("/dev", O_RDONLY | O_DIRECTORY));
    OK(fstatat(dev, "vfio/26", &s3, 0));
    EQ(s3.st_rdev, s.st_rdev);
    FAILS(openat(dev, "vfio/26", O_RDWR), EBUSY); /* the model's group, already open */
    OK(close(g));
    g = OK(openat(dev, "vfio/26", O_RDWR));
    OK(close(g));
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    OK(chdir("/dev"));
    g = OK(open("vfio/../vfio/26", O_RDWR));
    OK(close(g));
    OK(chdir(cwd));
    OK(close(dev));

    /* The container and iommufd fds answer as their nodes; a device fd as the anonymous inode,
     * like every anon-inode file (an eventfd here). */
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    OK(fstat(c, &s2));
    EQ(major(s2.st_rdev), 10);
    EQ(minor(s2.st_rdev), 196);
    g = OK(open26());
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    int e = OK(eventfd(0, 0));
    struct stat se;
    OK(fstat(e, &se));
    OK(fstat(d, &s2));
    EQ(s2.st_mode, 0600);
    EQ(s2.st_mode & S_IFMT, 0);
    EQ(s2.st_dev, se.st_dev);
    EQ(s2.st_ino, se.st_ino);
    OK(close(e));
    OK(close(d));
    OK(close(g));
    OK(close(c));
}

static void cloexec(void) {
    int g = OK(open("/dev/vfio/26", O_RDWR | O_CLOEXEC));
    CHECK(fcntl(g, F_GETFD) & FD_CLOEXEC, "O_CLOEXEC open without FD_CLOEXEC");
    OK(close(g));
    g = OK(open26());
    EQ(fcntl(g, F_GETFD) & FD_CLOEXEC, 0);
    EQ(fcntl(g, F_GETFL) & O_ACCMODE, O_RDWR);
    OK(close(g));
}

int main(void) {
    tp_require_preload();
    dups();
    pins();
    behind_the_back();
    stats();
    cloexec();
    return tp_done();
}
