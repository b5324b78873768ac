// SPDX-License-Identifier: Apache-2.0
/* The stat family, access, extended attributes: model nodes answer as the kernel's character
 * devices (devtmpfs), /dev/vfio as a directory, model fds as their node or (device fds) the
 * anonymous inode. Everything else is libc's. docs/PRELOAD.md has the table of answers. */
#include "preload.h"

#include <sys/sysmacros.h>
#include <time.h>

/* What the nodes' stat answers share: devtmpfs's device, the time the model was loaded, and the
 * identity of the kernel's anonymous inode (all anon-inode files share one inode; it is probed
 * from a real eventfd, so a device fd answers fstat exactly as the kernel's "[vfio-device]"). */
static struct timespec node_time;
static dev_t anon_dev;
static ino_t anon_ino;
static const dev_t devtmpfs_dev = 5; /* makedev(0, 5): devtmpfs on a typical system */
static dev_t sysfs_dev = 22;         /* the host's /sys when it has one (probed), else a typical 0:22 */

/* Called once, when libswiftvfio.so is loaded (library.c), from inside it (in_model raised). */
INTERNAL void stat_answers_init(void);
void stat_answers_init(void) {
    clock_gettime(CLOCK_REALTIME, &node_time);
    int efd = (int)CALL_REAL(-1, syscall, SYS_eventfd2, 0, O_CLOEXEC);
    if (efd >= 0) {
        struct stat st;
        if (CALL_REAL(-1, fstat, efd, &st) == 0) {
            anon_dev = st.st_dev;
            anon_ino = st.st_ino;
        }
        CALL_REAL(-1, close, efd);
    }
    struct stat sys;
    if (CALL_REAL(-1, stat, "/sys/module", &sys) == 0) sysfs_dev = sys.st_dev;
}

static void fill_stat(struct stat *st, const struct node_info *ni) {
    memset(st, 0, sizeof *st);
    st->st_mode = ni->mode;
    st->st_uid = 0;
    st->st_gid = 0;
    st->st_blksize = 4096;
    if (ni->module) { /* a sysfs file or directory of a module (calls_module.c) */
        st->st_dev = sysfs_dev;
        st->st_ino = ni->minor;
        st->st_nlink = S_ISDIR(ni->mode) ? 2 : 1;
        st->st_size = S_ISREG(ni->mode) ? 4096 : 0; /* sysfs attributes report a page */
    } else if (S_ISCHR(ni->mode)) {
        st->st_dev = devtmpfs_dev;
        st->st_rdev = makedev(ni->major, ni->minor);
        st->st_ino = 2 + (((ino_t)ni->major << 20) | ni->minor); /* stable, unique per node */
        st->st_nlink = 1;
    } else if (S_ISDIR(ni->mode)) {
        st->st_dev = devtmpfs_dev;
        st->st_ino = 1;
        st->st_nlink = 2;
    } else { /* anonymous inode (device fd) */
        st->st_dev = anon_dev;
        st->st_ino = anon_ino;
        st->st_nlink = 1;
    }
    st->st_atim = st->st_mtim = st->st_ctim = node_time;
}

static void fill_statx(struct statx *sx, const struct node_info *ni) {
    struct stat st;
    fill_stat(&st, ni);
    memset(sx, 0, sizeof *sx);
    sx->stx_mask = STATX_BASIC_STATS;
    sx->stx_blksize = (uint32_t)st.st_blksize;
    sx->stx_nlink = (uint32_t)st.st_nlink;
    sx->stx_uid = st.st_uid;
    sx->stx_gid = st.st_gid;
    sx->stx_mode = (uint16_t)st.st_mode;
    sx->stx_ino = st.st_ino;
    sx->stx_size = (uint64_t)st.st_size;
    sx->stx_blocks = 0;
    sx->stx_atime.tv_sec = sx->stx_mtime.tv_sec = sx->stx_ctime.tv_sec = node_time.tv_sec;
    sx->stx_atime.tv_nsec = sx->stx_mtime.tv_nsec = sx->stx_ctime.tv_nsec = (uint32_t)node_time.tv_nsec;
    sx->stx_rdev_major = major(st.st_rdev);
    sx->stx_rdev_minor = minor(st.st_rdev);
    sx->stx_dev_major = major(st.st_dev);
    sx->stx_dev_minor = minor(st.st_dev);
}

/* stat of a path: 1 and *rc set when the model answers it, 0 to leave it to libc. */
static int model_stat_path(int dirfd, const char *path, struct node_info *ni, int *rc, void *ra) {
    if (from_model(ra)) return 0;
    int saved = errno;
    struct model_path mp;
    classify(dirfd, path, &mp);
    errno = saved;
    if (mp.kind == P_NOT_OURS) return 0;
    if (mp.kind == P_MODULE) return module_stat(&mp, ni, rc);
    if (!lib_ready()) return 0;
    int e = node_lookup(&mp, ni);
    if (e) {
        errno = e;
        *rc = -1;
    } else {
        *rc = 0;
    }
    return 1;
}

/* fstat of an fd the routing rule gives the model: 1 and *ni filled, 0 to leave it to libc (a
 * number the model no longer knows). */
static int model_stat_fd(int fd, struct node_info *ni) {
    ni->module = 0;
    return LIB_QUIET(lib.fd_stat(fd, &ni->mode, &ni->major, &ni->minor)) == 0;
}

#define STAT_PATH(dirfd, path, fill, st, ...)                                                      \
    if (UNLIKELY(maybe_model_path(path))) {                                                        \
        struct node_info ni;                                                                       \
        int rc;                                                                                    \
        if (model_stat_path((dirfd), (path), &ni, &rc, RA())) {                                    \
            if (rc == 0) fill((st), &ni);                                                          \
            return rc;                                                                             \
        }                                                                                          \
    }                                                                                              \
    return CALL_REAL(-1, __VA_ARGS__);

#define STAT_FD(fd, fill, st, ...)                                                                 \
    if (ROUTED_FD(fd)) {                                                                           \
        struct node_info ni;                                                                       \
        if (model_stat_fd((fd), &ni)) {                                                            \
            fill((st), &ni);                                                                       \
            return 0;                                                                              \
        }                                                                                          \
    }                                                                                              \
    return CALL_REAL(-1, __VA_ARGS__);

#define FILL_STAT(st, ni) fill_stat((struct stat *)(st), (ni))

EXPORT int stat(const char *path, struct stat *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, stat, path, st) }
EXPORT int stat64(const char *path, struct stat64 *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, stat64, path, st) }
EXPORT int lstat(const char *path, struct stat *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, lstat, path, st) }
EXPORT int lstat64(const char *path, struct stat64 *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, lstat64, path, st) }
EXPORT int fstat(int fd, struct stat *st) { STAT_FD(fd, FILL_STAT, st, fstat, fd, st) }
EXPORT int fstat64(int fd, struct stat64 *st) { STAT_FD(fd, FILL_STAT, st, fstat64, fd, st) }
EXPORT int __xstat(int ver, const char *path, struct stat *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, __xstat, ver, path, st) }
EXPORT int __xstat64(int ver, const char *path, struct stat64 *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, __xstat64, ver, path, st) }
EXPORT int __lxstat(int ver, const char *path, struct stat *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, __lxstat, ver, path, st) }
EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st) { STAT_PATH(AT_FDCWD, path, FILL_STAT, st, __lxstat64, ver, path, st) }
EXPORT int __fxstat(int ver, int fd, struct stat *st) { STAT_FD(fd, FILL_STAT, st, __fxstat, ver, fd, st) }
EXPORT int __fxstat64(int ver, int fd, struct stat64 *st) { STAT_FD(fd, FILL_STAT, st, __fxstat64, ver, fd, st) }

/* fstatat-like: AT_EMPTY_PATH with "" is the fd itself; otherwise a path relative to dirfd. */
#define STATAT(dirfd, path, flags, fill, st, ...)                                                  \
    if (readable_ptr(path) && path[0] == 0 && (flags & AT_EMPTY_PATH) && dirfd != AT_FDCWD) {      \
        STAT_FD(dirfd, fill, st, __VA_ARGS__)                                                      \
    }                                                                                              \
    STAT_PATH(dirfd, path, fill, st, __VA_ARGS__)

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    STATAT(dirfd, path, flags, FILL_STAT, st, fstatat, dirfd, path, st, flags)
}
EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
    STATAT(dirfd, path, flags, FILL_STAT, st, fstatat64, dirfd, path, st, flags)
}
EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags) {
    STATAT(dirfd, path, flags, FILL_STAT, st, __fxstatat, ver, dirfd, path, st, flags)
}
EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags) {
    STATAT(dirfd, path, flags, FILL_STAT, st, __fxstatat64, ver, dirfd, path, st, flags)
}
EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *sx) {
    STATAT(dirfd, path, flags, fill_statx, sx, statx, dirfd, path, flags, mask, sx)
}

/* access: a model node exists, readable and writable (the model makes no VFS permission checks:
 * as if an administrator had given the user the nodes, vfio.rst's "chown"); not executable. A
 * module file is readable (a directory searchable), not writable: writing the noiommu parameter
 * is not modelled (calls_module.c), so no caller is told it may. */
static int model_access(int dirfd, const char *path, int amode, int *rc, void *ra) {
    struct node_info ni;
    if (!model_stat_path(dirfd, path, &ni, rc, ra)) return 0;
    if (*rc == 0 && (amode & X_OK) && !S_ISDIR(ni.mode)) {
        errno = EACCES;
        *rc = -1;
    }
    if (*rc == 0 && ni.module && (amode & W_OK)) {
        errno = EACCES;
        *rc = -1;
    }
    return 1;
}

EXPORT int access(const char *path, int amode) {
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_access(AT_FDCWD, path, amode, &rc, RA())) return rc;
    return CALL_REAL(-1, access, path, amode);
}

EXPORT int faccessat(int dirfd, const char *path, int amode, int flags) {
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_access(dirfd, path, amode, &rc, RA())) return rc;
    return CALL_REAL(-1, faccessat, dirfd, path, amode, flags);
}

/* Extended attributes of a model node: none (devtmpfs nodes carry none here; `ls -l` asks for
 * the SELinux label and ACLs). For model fds the placeholder answers the same. */
static int model_xattr(const char *path, ssize_t *rc, void *ra) {
    struct node_info ni;
    int r;
    if (!model_stat_path(AT_FDCWD, path, &ni, &r, ra)) return 0;
    *rc = r;
    return 1;
}

#define XATTR_GET(name)                                                                            \
    EXPORT ssize_t name(const char *path, const char *attr, void *value, size_t size) {            \
        ssize_t rc;                                                                                \
        if (UNLIKELY(maybe_model_path(path)) && model_xattr(path, &rc, RA())) {                    \
            if (rc == 0) {                                                                         \
                errno = ENODATA;                                                                   \
                rc = -1;                                                                           \
            }                                                                                      \
            return rc;                                                                             \
        }                                                                                          \
        return CALL_REAL(-1, name, path, attr, value, size);                                       \
    }
XATTR_GET(getxattr)
XATTR_GET(lgetxattr)

#define XATTR_LIST(name)                                                                           \
    EXPORT ssize_t name(const char *path, char *list, size_t size) {                               \
        ssize_t rc;                                                                                \
        if (UNLIKELY(maybe_model_path(path)) && model_xattr(path, &rc, RA())) return rc;           \
        return CALL_REAL(-1, name, path, list, size);                                              \
    }
XATTR_LIST(listxattr)
XATTR_LIST(llistxattr)

