// SPDX-License-Identifier: Apache-2.0
/* libswiftvfio-preload.so, shared by its files (not installed). docs/PRELOAD.md is the user's view.
 *
 * Thin C by design: a SwiftPM dynamic product statically contains its targets, so an interposer
 * holding the Swift model would be a second model in a process that also links libswiftvfio.so.
 * The interposer holds no model state. It reaches the model only through libswiftvfio.so's C entry
 * points, loaded lazily from its own directory (or taken from the process when it already has it).
 *
 * THE ROUTING RULE (the only one; every file applies it through ROUTED_FD / maybe_model_path):
 *   - a call on fd N goes to the model exactly when the model's fd table holds N and the call does
 *     not come from the model itself. The interposer does not decide which numbers are model fds:
 *     the model tells it, through the fd observer (swiftvfio_set_fd_observer(): fd_table.c mirrors
 *     it in a table read with two plain loads). No system call, lock or identity check on the way;
 *   - a call on a path goes to the model exactly when the path names a model node (paths.c);
 *   - everything else goes to libc unchanged. Calls that make a descriptor (open, socket, pipe,
 *     dup, ...: calls_create.c and the families) look at the number they return: if the model
 *     still holds it, the model's descriptor was closed behind the interposer's back, and the model
 *     is asked to retire that stale entry (it checks identity itself and drops the file reference
 *     as the real close would have) before the number is returned.
 *
 * Files, one concern each:
 *   preload.h        this: the rule, the shared declarations, the hot inline helpers
 *   reals.c          libc's own functions (dlsym(RTLD_NEXT)), typed from libc's headers
 *   fd_table.c       the mirror of the model's fd table, the observer, retiring stale entries
 *   library.c        loading libswiftvfio.so, the "called from the model" guards
 *   startup.c        the constructor, the exit hook (exit_files), keeping the Swift runtime out
 *   paths.c          which paths name model nodes (lexical classification)
 *   calls_open.c     open family            calls_io.c      ioctl, read/write, mmap
 *   calls_close.c    close, dup, fcntl, fclose families (every way a number is closed or replaced)
 *   calls_create.c   the other descriptor creators     calls_syscall.c  syscall() with fd numbers
 *   calls_stat.c     stat family, access, xattr
 *   calls_module.c   the module files (/sys/module/vfio*): stat answers and the noiommu parameter
 *   kvm/             the kvm-vfio device of real KVM VMs (docs/KVM.md): its hooks (kvm/kvm_device.h)
 *                    sit in ioctl() and close() on fds that are not model fds, and in the exit hook
 * A new family of calls (KVM, a DPDK module's files) is one more calls_<family>.c: its functions
 * in REAL_FUNCS (reals.c), its routing through ROUTED_FD or maybe_model_path, and every creator it
 * adds returning through fd_created().
 *
 * Recursion: the library itself calls close/fstat/fcntl/memfd_create... on its placeholders. Those
 * calls land here too (the preload comes first in symbol lookup) and must go straight to libc.
 * from_model() says "this call comes from the model": a thread-local depth counter raised around
 * every call this interposer makes into the library, or the caller's return address inside
 * libswiftvfio.so (programs that link the library and call it directly). */
#ifndef SWIFTVFIO_PRELOAD_INTERNAL_H
#define SWIFTVFIO_PRELOAD_INTERNAL_H

#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
#include "swiftvfio_preload.h"
#include "kvm/kvm_device.h" /* the KVM family's hooks */
/* The library's own declarations: the interposer's table of its entry points is typed from them,
 * so a signature change there fails to compile here. */
#include "../../include/swiftvfio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define INTERNAL __attribute__((visibility("hidden")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RA() __builtin_return_address(0)
/* A plain `swift build` compiles C at -O0, where `static inline` is not inlined: the fast-path
 * helpers are forced inline so the debug build's cost on other fds is the release build's. */
#define HOT static inline __attribute__((always_inline))

/* On the 64-bit targets this supports, the *64 structs and offsets are the plain ones. */
_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "64-bit glibc only");
_Static_assert(sizeof(off_t) == sizeof(off64_t), "64-bit glibc only");

/* ---- libc's functions (reals.c) -------------------------------------------------------------- */

/* Interposed glibc entry points its headers declare only under _FORTIFY_SOURCE, or no longer
 * (the pre-2.33 stat ABI that older binaries still call). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t nbytes, off_t offset, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t nbytes, off64_t offset, size_t buflen);
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
extern void __chk_fail(void) __attribute__((noreturn));

/* Every libc function the interposer defines or calls through RTLD_NEXT. Each real_<name> has the
 * type of libc's own declaration (__typeof__), so the table cannot disagree with libc. */
#define REAL_FUNCS(X)                                                                              \
    /* open family */ X(open) X(open64) X(openat) X(openat64) X(__open_2) X(__open64_2)            \
    X(__openat_2) X(__openat64_2)                                                                  \
    /* io */ X(ioctl) X(read) X(write) X(pread) X(pread64) X(pwrite) X(pwrite64) X(__read_chk)     \
    X(__pread_chk) X(__pread64_chk) X(mmap) X(mmap64)                                              \
    /* close, dup */ X(close) X(close_range) X(closefrom) X(dup) X(dup2) X(dup3) X(fcntl)          \
    X(fcntl64) X(fclose)                                                              \
    /* creators */ X(socket) X(socketpair) X(accept) X(accept4) X(pipe) X(pipe2) X(eventfd)        \
    X(epoll_create) X(epoll_create1) X(signalfd) X(timerfd_create) X(inotify_init)                 \
    X(inotify_init1) X(memfd_create) X(pidfd_open) X(pidfd_getfd) X(fanotify_init)                \
    X(open_by_handle_at) X(creat) X(creat64) X(posix_openpt) X(mkstemp) X(mkostemp) X(fopen) X(fopen64) X(opendir)    \
    X(syscall)                                                                                     \
    /* stat */ X(stat) X(stat64) X(lstat) X(lstat64) X(fstat) X(fstat64) X(fstatat) X(fstatat64)  \
    X(__xstat) X(__xstat64) X(__lxstat) X(__lxstat64) X(__fxstat) X(__fxstat64) X(__fxstatat)     \
    X(__fxstatat64) X(statx) X(getxattr) X(lgetxattr) X(listxattr) X(llistxattr) X(access)        \
    X(faccessat)

#define DECLARE_REAL(name) extern INTERNAL __typeof__(name) *real_##name;
REAL_FUNCS(DECLARE_REAL)
#undef DECLARE_REAL

INTERNAL void *resolve_real(const char *name, void **slot);
INTERNAL void resolve_all_reals(void);

/* The libc function `name`, or NULL if this libc lacks it (callers then answer ENOSYS). Resolved
 * in the constructor, and lazily for calls made before it runs (another library's constructor). */
#define REAL(name)                                                                                 \
    ({                                                                                             \
        __typeof__(real_##name) f_ = __atomic_load_n(&real_##name, __ATOMIC_RELAXED);              \
        if (UNLIKELY(f_ == NULL)) f_ = (__typeof__(f_))resolve_real(#name, (void **)&real_##name); \
        f_;                                                                                        \
    })

/* Calls libc's `name`, or fails with ENOSYS when this libc lacks it. */
#define CALL_REAL(fail, name, ...)                                                                 \
    ({                                                                                             \
        __typeof__(real_##name) g_ = REAL(name);                                                   \
        g_ ? g_(__VA_ARGS__) : (errno = ENOSYS, (fail));                                           \
    })

/* ---- libswiftvfio.so (library.c) ------------------------------------------------------------- */

struct swiftvfio_lib {
#define LIB_FIELD(name) __typeof__(swiftvfio_##name) *name;
#define LIB_FUNCS(X)                                                                               \
    X(open) X(ioctl) X(close) X(dup) X(adopt_dup) X(forget_fd) X(is_model_fd) X(read) X(pread)     \
    X(write) X(pwrite) X(mmap) X(path_stat) X(sysfs_read) X(fd_stat) X(load_environment_topology)  \
    X(last_error) X(exit_files) X(set_fd_observer)
    LIB_FUNCS(LIB_FIELD)
#undef LIB_FIELD
};
extern INTERNAL struct swiftvfio_lib lib;

extern INTERNAL atomic_int lib_state; /* 0 not loaded, 1 loaded, -1 failed */
extern INTERNAL _Atomic uintptr_t lib_lo, lib_hi;
/* Depth of this thread's calls into the library (initial-exec: no allocation on first access). */
extern INTERNAL __thread int in_model __attribute__((tls_model("initial-exec")));

/* Loads the library on first need; 1 when the model is usable. */
INTERNAL int lib_ready(void);
/* Writes "swiftvfio-preload: a b c" on stderr through libc's own write. */
INTERNAL void say(const char *a, const char *b, const char *c);

/* Whether a call whose return address is `ra` comes from the model itself. */
HOT int from_model(void *ra) {
    if (in_model) return 1;
    uintptr_t lo = atomic_load_explicit(&lib_lo, memory_order_relaxed);
    uintptr_t hi = atomic_load_explicit(&lib_hi, memory_order_relaxed);
    return (uintptr_t)ra - lo < hi - lo;
}

/* A call into the library that must leave the caller's errno as it was (a check, a lookup). */
#define LIB_QUIET(expr)                                                                            \
    ({                                                                                             \
        int saved_ = errno;                                                                        \
        in_model++;                                                                                \
        __typeof__(expr) r_ = (expr);                                                              \
        in_model--;                                                                                \
        errno = saved_;                                                                            \
        r_;                                                                                        \
    })

/* A system call into the library: errno is the library's on failure, untouched on success (as a
 * kernel system call leaves it). */
#define LIB_SYSCALL(failed, expr)                                                                  \
    ({                                                                                             \
        int saved_ = errno;                                                                        \
        in_model++;                                                                                \
        __typeof__(expr) r_ = (expr);                                                              \
        int err_ = errno;                                                                          \
        in_model--;                                                                                \
        errno = (failed) ? err_ : saved_;                                                          \
        r_;                                                                                        \
    })

/* ---- the mirror of the model's fd table (fd_table.c) ----------------------------------------- */

/* One byte per fd (1: the model's fd table holds it), in chunks of 4096 fds mapped on first use;
 * the top level covers every int fd and lives in .bss (touched only where used). Written only by
 * the model's observer, under the model's lock for that number. */
#define FD_CHUNK_SHIFT 12
#define FD_CHUNK_SLOTS (1u << FD_CHUNK_SHIFT)
#define FD_MAX (1u << 31)

struct fd_chunk {
    _Atomic uint8_t model[FD_CHUNK_SLOTS];
};
extern INTERNAL _Atomic(struct fd_chunk *) fd_chunks[FD_MAX >> FD_CHUNK_SHIFT];
extern INTERNAL atomic_int fd_max_tracked; /* highest fd ever tracked: bounds the range walks */

/* Whether the model's fd table holds `fd` (two plain loads). */
HOT int fd_is_model(int fd) {
    if (UNLIKELY((unsigned)fd >= FD_MAX)) return 0;
    struct fd_chunk *c = atomic_load_explicit(&fd_chunks[(unsigned)fd >> FD_CHUNK_SHIFT], memory_order_acquire);
    if (LIKELY(c == NULL)) return 0;
    /* Acquire: pairs with the observer's release, so the library table (filled before the
     * observer was set) is seen by whoever sees a model fd. A plain load on x86. */
    return atomic_load_explicit(&c->model[(unsigned)fd & (FD_CHUNK_SLOTS - 1)], memory_order_acquire);
}

/* The routing rule for fd calls (see the top of this file). Use only in an exported function. */
#define ROUTED_FD(fd) (UNLIKELY(fd_is_model(fd)) && !from_model(RA()))

/* The observer libswiftvfio.so calls on every change of its fd table. */
INTERNAL void fd_observed(int32_t fd, int32_t is_model_fd);
/* The model's entry at `fd` may be stale (the number was just handed out by a creator, or its
 * descriptor closed inside libc): the model checks its identity and forgets it if so. */
INTERNAL void fd_retire_if_stale(int fd);

/* Every creator returns through this: `fd` (a result; negative = failure) is handed back after a
 * stale model entry at that number, if any, is retired. The common case is one table read. */
HOT int fd_created(int fd, void *ra) {
    if (UNLIKELY(fd >= 0 && fd_is_model(fd)) && !from_model(ra)) fd_retire_if_stale(fd);
    return fd;
}

/* ---- close and dup (calls_close.c), shared with syscall() (calls_syscall.c) ------------------- */

INTERNAL int preload_close(int fd, void *ra);
INTERNAL int preload_close_range(unsigned first, unsigned last, int flags, void *ra);
/* `cmd` F_DUPFD or F_DUPFD_CLOEXEC, or -1 for dup(). */
INTERNAL int preload_dup(int fd, int minfd, int cmd, void *ra);
INTERNAL int preload_dup23(int oldfd, int newfd, int flags, int three, void *ra);
INTERNAL int preload_fcntl(int fd, int cmd, unsigned long arg, void *ra);

/* ---- model paths (paths.c) ------------------------------------------------------------------- */

extern INTERNAL int real_dev_vfio_exists; /* the host has a real /dev/vfio (relative paths may be ours) */

/* Whether `path` points past the first page (NULL and small garbage go to libc, which answers EFAULT). */
HOT int readable_ptr(const char *path) {
    /* libc declares the path nonnull; hide that from the optimiser so this check stays. */
    __asm__("" : "+r"(path));
    return LIKELY((uintptr_t)path >= 4096);
}

/* Cheap test on the fast path: can `path` name a model node? (paths.c explains why it suffices.) */
INTERNAL int maybe_model_path_slow(const char *path, const char *io);
HOT int maybe_model_path(const char *path) {
    if (UNLIKELY(!readable_ptr(path))) return 0;
    const char *io = strstr(path, "io");
    if (LIKELY(io == NULL) && LIKELY(path[0] == '/' || !real_dev_vfio_exists)) return 0;
    return maybe_model_path_slow(path, io);
}

/* P_MODULE: /sys/module/vfio, /sys/module/vfio_<anything> and below (calls_module.c). */
enum path_kind { P_NOT_OURS, P_DIR, P_NODE, P_BELOW_NODE, P_MODULE };

struct model_path {
    enum path_kind kind;
    int must_be_dir; /* trailing "/", "/." or "/..": the kernel wants a directory */
    char node[4096];
};

/* Resolves `path` (relative to `dirfd`) lexically into `out`. */
INTERNAL void classify(int dirfd, const char *path, struct model_path *out);

struct node_info {
    uint32_t mode, major, minor;
    int module; /* a module file (sysfs), not a device node */
};

/* The model's answer for a node path: 0, or an errno (ENOENT, ENOTDIR). */
INTERNAL int node_lookup(const struct model_path *mp, struct node_info *ni);

/* ---- the module files (calls_module.c) -------------------------------------------------------- */

/* stat of a module path: 1 with *rc (and *ni on success) when the model answers, 0 for libc (the
 * host's own file, or no model). */
INTERNAL int module_stat(const struct model_path *mp, struct node_info *ni, int *rc);
/* open of a module path: 1 with *rc when the model answers, 0 for libc. */
INTERNAL int module_open(const struct model_path *mp, int flags, int *rc, void *ra);

#endif
