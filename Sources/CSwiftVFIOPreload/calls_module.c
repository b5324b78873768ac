// SPDX-License-Identifier: Apache-2.0
/* The module files: what a VFIO client checks in sysfs before it opens /dev/vfio. DPDK's EAL
 * stat()s /sys/module/vfio and /sys/module/vfio_pci ("VFIO modules not loaded" otherwise) and
 * reads the first byte of /sys/module/vfio/parameters/enable_unsafe_noiommu_mode to choose its
 * IOVA mode. While a model is loaded these answer as the kernel's sysfs does for the modules the
 * model stands for (the model says which exist: swiftvfio_path_stat(); the parameter's text:
 * swiftvfio_sysfs_read()):
 *
 * | path                                                  | answer                                |
 * | /sys/module/vfio, vfio_pci, vfio_iommu_type1 (type1)  | directories 0755 (stat, access)       |
 * | /sys/module/vfio/parameters                           | directory 0755 (CONFIG_VFIO_NOIOMMU)  |
 * | .../parameters/enable_unsafe_noiommu_mode             | 0644 file: stat; open+read "Y\n"/"N\n"|
 * | anything else below them                              | the host's (libc)                     |
 *
 * The host's own directory wins where it has one (the model has nothing to add to a real module
 * directory); the parameter is always the model's, as /dev/vfio's nodes are the model's on a
 * host that has VFIO: it is the configuration the model runs with.
 *
 * "While a model is loaded": the model is loaded as for a /dev/vfio path (lib_ready(): the first
 * model path loads libswiftvfio.so and the topology SWIFTVFIO_TOPOLOGY names, or the built-in
 * default). When that fails (the topology does not load, the library is missing) no model is
 * loaded and these paths are the host's, so a client's module check fails as on a host without
 * VFIO. A process never pays for this on its own paths: only a path that spells "vfio" gets past
 * maybe_model_path() to classify(), and only /sys/module/vfio* comes here.
 *
 * Not answered: opendir() and open(O_DIRECTORY) of the directories (glibc's opendir opens the
 * path itself, unseen; a directory descriptor cannot be made up), which no client checking
 * modules needs; writing the parameter (the kernel lets root change it at run time). */
#include "preload.h"

#include <sys/sysmacros.h>

/* A stable inode number per module path (sysfs numbers its kernfs nodes; any fixed one will do). */
static uint32_t path_ino(const char *path) {
    uint32_t h = 5381;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) h = h * 33 + *p;
    return h | 1;
}

/* Whether the host has `path` itself (then libc answers every call on it). */
static int host_has(const char *path) {
    struct stat st;
    int saved = errno;
    int r = CALL_REAL(-1, lstat, path, &st);
    errno = saved;
    return r == 0;
}

/* The model's module file at `mp` into *ni: 0, or an errno (ENOENT: the model has none). */
static int module_lookup(const struct model_path *mp, struct node_info *ni) {
    int r = LIB_QUIET(lib.path_stat(mp->node, &ni->mode, &ni->major, &ni->minor));
    if (r < 0) return -r;
    if (mp->must_be_dir && !S_ISDIR(ni->mode)) return ENOTDIR;
    ni->module = 1;
    ni->minor = path_ino(mp->node);
    return 0;
}

int module_stat(const struct model_path *mp, struct node_info *ni, int *rc) {
    if (!lib_ready()) return 0;
    struct node_info found;
    int e = module_lookup(mp, &found);
    if (e == ENOTDIR) { /* the parameter file named as a directory ("…_mode/") */
        errno = e;
        *rc = -1;
        return 1;
    }
    if (e) return 0; /* not a model file: the host's, or ENOENT */
    /* The host's real directory where it has one; the parameter is always the model's. */
    if (S_ISDIR(found.mode) && host_has(mp->node)) return 0;
    *ni = found;
    *rc = 0;
    return 1;
}

/* A read-only descriptor whose content is `text`: a sealed memfd, reopened O_RDONLY through
 * /proc so write() fails with EBADF as on a file opened for reading (the memfd itself when /proc
 * is not mounted: then write() fails with EPERM, from the seals). */
static int text_fd(const char *name, const char *text, size_t n, int cloexec) {
    int fd = CALL_REAL(-1, memfd_create, name, MFD_ALLOW_SEALING | MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (CALL_REAL(-1, write, fd, text, n) != (ssize_t)n ||
        CALL_REAL(-1, fcntl, fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int e = errno;
        CALL_REAL(-1, close, fd);
        errno = e;
        return -1;
    }
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int ro = CALL_REAL(-1, open, self, O_RDONLY | (cloexec ? O_CLOEXEC : 0));
    if (ro >= 0) {
        CALL_REAL(-1, close, fd);
        return ro;
    }
    lseek(fd, 0, SEEK_SET);
    if (!cloexec) CALL_REAL(-1, fcntl, fd, F_SETFD, 0);
    return fd;
}

int module_open(const struct model_path *mp, int flags, int *rc, void *ra) {
    if (!lib_ready()) return 0;
    struct node_info ni;
    int saved = errno;
    int e = module_lookup(mp, &ni);
    if (e == ENOENT || (e == 0 && S_ISDIR(ni.mode))) {
        errno = saved;
        return 0; /* not a model file, or a directory: the host's (see the top) */
    }
    *rc = -1;
    if (!e && (flags & O_DIRECTORY)) e = ENOTDIR;
    if (!e && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) e = EEXIST;
    if (!e && (flags & O_PATH)) e = EOPNOTSUPP; /* no path-only model files (docs/PRELOAD.md) */
    if (!e && (flags & O_ACCMODE) != O_RDONLY) e = EACCES; /* writing the parameter is not modelled */
    if (e) {
        errno = e;
        return 1;
    }
    char text[64];
    int n = LIB_QUIET(lib.sysfs_read(mp->node, text, sizeof text));
    if (n < 0) {
        errno = -n;
        return 1;
    }
    const char *name = strrchr(mp->node, '/');
    int fd = text_fd(name ? name + 1 : mp->node, text, (size_t)n, (flags & O_CLOEXEC) != 0);
    if (fd < 0) return 1;
    errno = saved;
    *rc = fd_created(fd, ra);
    return 1;
}
