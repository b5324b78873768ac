// SPDX-License-Identifier: Apache-2.0
/* The open family: a model path opens a model file (swiftvfio_open); any other path is libc's,
 * and the number it returns goes through fd_created() (it may land on a stale model number). */
#include "preload.h"

/* Routes an open of a model path; 1 with *rc set when the model answered, 0 to leave it to libc. */
static int model_open(int dirfd, const char *path, int flags, int *rc, void *ra) {
    if (from_model(ra)) return 0;
    int saved = errno; /* a successful open leaves errno alone */
    struct model_path mp;
    classify(dirfd, path, &mp);
    errno = saved;
    /* The /dev/vfio directory itself is not a model file: libc answers (ENOENT unless the host has
     * a real one); stat answers it as a directory. */
    if (mp.kind == P_NOT_OURS || mp.kind == P_DIR) return 0;
    if (mp.kind == P_MODULE) return module_open(&mp, flags, rc, ra);
    *rc = -1;
    if (!lib_ready()) {
        errno = ENOENT;
        return 1;
    }
    struct node_info ni;
    int e = node_lookup(&mp, &ni);
    /* A model path with no node: the model answers ENOENT itself, so the failed open is traced
     * like every other model call (docs/TRACE.md). */
    if (e == ENOENT && mp.kind != P_BELOW_NODE) {
        *rc = LIB_SYSCALL(r_ < 0, lib.open(mp.node, flags));
        return 1;
    }
    if (!e && (flags & O_DIRECTORY)) e = ENOTDIR;
    if (!e && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) e = EEXIST;
    if (!e && (flags & O_PATH)) e = EOPNOTSUPP; /* no path-only model files (docs/PRELOAD.md) */
    if (e) {
        errno = e;
        return 1;
    }
    /* The model reports the new number to the fd table mirror itself (and replaces a stale entry
     * its placeholder may have landed on). */
    *rc = LIB_SYSCALL(r_ < 0, lib.open(mp.node, flags));
    return 1;
}

#define OPEN_MODE(flags)                                                                           \
    mode_t mode = 0;                                                                               \
    if (__OPEN_NEEDS_MODE(flags)) {                                                                \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = (mode_t)va_arg(ap, int);                                                            \
        va_end(ap);                                                                                \
    }

/* One open-like entry point: the model's for a model path, else libc's `name`(args...). */
#define OPEN_BODY(dirfd, name, ...)                                                                \
    int rc;                                                                                        \
    if (UNLIKELY(maybe_model_path(path)) && model_open((dirfd), path, flags, &rc, RA())) return rc; \
    return fd_created(CALL_REAL(-1, name, __VA_ARGS__), RA());

EXPORT int open(const char *path, int flags, ...) {
    OPEN_MODE(flags)
    OPEN_BODY(AT_FDCWD, open, path, flags, mode)
}
EXPORT int open64(const char *path, int flags, ...) {
    OPEN_MODE(flags)
    OPEN_BODY(AT_FDCWD, open64, path, flags, mode)
}
EXPORT int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags)
    OPEN_BODY(dirfd, openat, dirfd, path, flags, mode)
}
EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags)
    OPEN_BODY(dirfd, openat64, dirfd, path, flags, mode)
}

/* The fortified forms (gcc -D_FORTIFY_SOURCE turns a two-argument open into these). */
EXPORT int __open_2(const char *path, int flags) { OPEN_BODY(AT_FDCWD, __open_2, path, flags) }
EXPORT int __open64_2(const char *path, int flags) { OPEN_BODY(AT_FDCWD, __open64_2, path, flags) }
EXPORT int __openat_2(int dirfd, const char *path, int flags) { OPEN_BODY(dirfd, __openat_2, dirfd, path, flags) }
EXPORT int __openat64_2(int dirfd, const char *path, int flags) { OPEN_BODY(dirfd, __openat64_2, dirfd, path, flags) }
