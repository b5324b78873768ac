/* libswiftvfio-preload.so: runs unmodified VFIO clients against the libswiftvfio model.
 *
 * Thin C by design (DESIGN.md, "one default subsystem per process"): a SwiftPM dynamic product
 * statically contains its targets, so an interposer holding the Swift model would be a second
 * model in a process that also links libswiftvfio.so. This file holds no model state. It decides
 * "ours or not" by path and by fd, and reaches the model only through libswiftvfio.so's C entry
 * points, loaded lazily from the interposer's own directory (or taken from the process when it
 * already has the library).
 *
 * Cost on other fds: every interposed fd call first reads the fd's slot in a table of the fds
 * this interposer handed out as model fds (two plain loads: the chunk pointer and the slot);
 * zero means "not ours" and the call goes straight to libc. Path calls first look for "vfio" or
 * "iommu" in the path (every model path, after lexical normalisation, keeps one of these
 * components). Nothing else runs on those paths: no locks, no TLS, no system calls.
 *
 * Model fds are real descriptors (the library's placeholders). A slot is only a hint: before a
 * call is routed to the model, the library checks that the descriptor is still the one it opened
 * (st_dev/st_ino), because the process can close a model fd behind the interposer's back
 * (fclose() of an fdopen()ed stream, a raw syscall) and the number can be reused.
 *
 * Recursion: the library itself calls close/fstat/fcntl/open on its placeholders and files. Those
 * calls land here too (the preload comes first in symbol lookup) and must go straight to libc.
 * Two guards say "this call comes from the model": a thread-local depth counter raised around
 * every call this file makes into the library, and the caller's return address lying inside
 * libswiftvfio.so (for programs that link the library and call it directly).
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
#include "swiftvfio_preload.h"
#include "kvm/kvm_device.h" /* issue 12: the kvm-vfio device of real KVM VMs */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RA() __builtin_return_address(0)
/* A plain `swift build` compiles C at -O0, where `static inline` is not inlined: the fast-path
 * helpers are forced inline so the debug build's cost on other fds is the release build's. */
#define HOT static inline __attribute__((always_inline))

/* Interposed glibc entry points that its headers declare only under _FORTIFY_SOURCE, or no longer
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

/* On the 64-bit targets this supports, the *64 structs and offsets are the plain ones. */
_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "64-bit glibc only");
_Static_assert(sizeof(off_t) == sizeof(off64_t), "64-bit glibc only");

/* ---- keeping the Swift runtime out ------------------------------------------------------------
 * SwiftPM links every product with swiftc, even a C-only one, and swiftc adds the Swift start-up
 * object swiftrt.o (whose constructor registers the image's Swift metadata with the runtime) and
 * -lswiftCore, without --as-needed. The result would be NEEDED libswiftCore.so: every process run
 * under the preload (ls, python3) would load the Swift runtime and libstdc++ at start-up (about
 * 1.3 ms each here) and get the runtime's crash handlers on SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGTRAP and SIGABRT. The runtime must arrive only with libswiftvfio.so, when the model is used.
 *
 * Without unsafe flags, two pieces do it:
 *  - swiftc passes each object's ".swift1_autolink_entries" strings (how Swift objects ask for
 *    their libraries) to the link command before its own -lswiftCore; ours asks for
 *    --as-needed, so -lswiftCore is recorded only if something uses it;
 *  - swiftrt.o's two references into the runtime are satisfied here by hidden no-ops: this
 *    image has no Swift metadata to register and no Swift thunks to name. Hidden, they are not
 *    exported and never stand in for the runtime's own in the process.
 * Scripts/test-preload.sh checks the built library has no NEEDED Swift library. */
/* no_sanitize: ASan would add a redzone and a metadata reference to a section the link discards. */
__attribute__((section(".swift1_autolink_entries"), used, no_sanitize("address"))) static const char swift_autolink_as_needed[] =
    "-Wl,--as-needed";
__attribute__((visibility("hidden"))) void swift_addNewDSOImage(const void *sections);
__attribute__((visibility("hidden"))) void swift_addNewDSOImage(const void *sections) { (void)sections; }
__attribute__((visibility("hidden"))) int _swift_backtrace_isThunkFunction(const char *name);
__attribute__((visibility("hidden"))) int _swift_backtrace_isThunkFunction(const char *name) {
    (void)name;
    return 0;
}

/* ---- libc's own functions (RTLD_NEXT) --------------------------------------------------------
 * Resolved in the constructor, and lazily for calls made before it runs (another library's
 * constructor opening a file). A racing double resolution stores the same pointer twice. */

#define REALS(X)                                                                                   \
    X(int, open, (const char *, int, ...))                                                        \
    X(int, open64, (const char *, int, ...))                                                      \
    X(int, openat, (int, const char *, int, ...))                                                 \
    X(int, openat64, (int, const char *, int, ...))                                               \
    X(int, __open_2, (const char *, int))                                                         \
    X(int, __open64_2, (const char *, int))                                                       \
    X(int, __openat_2, (int, const char *, int))                                                  \
    X(int, __openat64_2, (int, const char *, int))                                                \
    X(int, ioctl, (int, unsigned long, ...))                                                      \
    X(int, close, (int))                                                                          \
    X(int, close_range, (unsigned int, unsigned int, int))                                        \
    X(void, closefrom, (int))                                                                     \
    X(int, dup, (int))                                                                            \
    X(int, dup2, (int, int))                                                                      \
    X(int, dup3, (int, int, int))                                                                 \
    X(int, fcntl, (int, int, ...))                                                                \
    X(int, fcntl64, (int, int, ...))                                                              \
    X(ssize_t, read, (int, void *, size_t))                                                       \
    X(ssize_t, write, (int, const void *, size_t))                                                \
    X(ssize_t, pread, (int, void *, size_t, off_t))                                               \
    X(ssize_t, pread64, (int, void *, size_t, off64_t))                                           \
    X(ssize_t, pwrite, (int, const void *, size_t, off_t))                                        \
    X(ssize_t, pwrite64, (int, const void *, size_t, off64_t))                                    \
    X(ssize_t, __read_chk, (int, void *, size_t, size_t))                                         \
    X(ssize_t, __pread_chk, (int, void *, size_t, off_t, size_t))                                 \
    X(ssize_t, __pread64_chk, (int, void *, size_t, off64_t, size_t))                             \
    X(void *, mmap, (void *, size_t, int, int, int, off_t))                                       \
    X(void *, mmap64, (void *, size_t, int, int, int, off64_t))                                   \
    X(int, stat, (const char *, struct stat *))                                                   \
    X(int, stat64, (const char *, struct stat64 *))                                               \
    X(int, lstat, (const char *, struct stat *))                                                  \
    X(int, lstat64, (const char *, struct stat64 *))                                              \
    X(int, fstat, (int, struct stat *))                                                           \
    X(int, fstat64, (int, struct stat64 *))                                                       \
    X(int, fstatat, (int, const char *, struct stat *, int))                                      \
    X(int, fstatat64, (int, const char *, struct stat64 *, int))                                  \
    X(int, __xstat, (int, const char *, struct stat *))                                           \
    X(int, __xstat64, (int, const char *, struct stat64 *))                                       \
    X(int, __lxstat, (int, const char *, struct stat *))                                          \
    X(int, __lxstat64, (int, const char *, struct stat64 *))                                      \
    X(int, __fxstat, (int, int, struct stat *))                                                   \
    X(int, __fxstat64, (int, int, struct stat64 *))                                               \
    X(int, __fxstatat, (int, int, const char *, struct stat *, int))                              \
    X(int, __fxstatat64, (int, int, const char *, struct stat64 *, int))                          \
    X(int, statx, (int, const char *, int, unsigned int, struct statx *))                         \
    X(ssize_t, getxattr, (const char *, const char *, void *, size_t))                            \
    X(ssize_t, lgetxattr, (const char *, const char *, void *, size_t))                           \
    X(ssize_t, listxattr, (const char *, char *, size_t))                                         \
    X(ssize_t, llistxattr, (const char *, char *, size_t))                                        \
    X(int, access, (const char *, int))                                                           \
    X(int, faccessat, (int, const char *, int, int))

#define DECLARE_REAL(ret, name, params) static ret(*real_##name) params;
REALS(DECLARE_REAL)

static void *resolve_real(const char *name, void **slot) {
    void *f = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, f, __ATOMIC_RELAXED);
    return f;
}

/* The libc function `name`, or NULL if this libc lacks it (callers then answer ENOSYS). */
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

/* ---- the model fd table ----------------------------------------------------------------------
 * Per fd: a 32-bit tag (0 = not a model fd, else unique per hand-out, so a slot is only cleared by
 * the one who saw that tag: a stale-entry cleanup racing with a new model fd at the same number
 * cannot wipe the new one) and the placeholder's identity (st_dev, st_ino) as it was when the
 * model handed the fd out. Chunks of 4096 fds are allocated on first use; the top level covers
 * every int fd and lives in .bss (touched only where used). */

#define CHUNK_SHIFT 12
#define CHUNK_SLOTS (1u << CHUNK_SHIFT)
#define MAX_FDS (1u << 31)

struct slot_chunk {
    _Atomic uint32_t tag[CHUNK_SLOTS];
    _Atomic uint64_t dev[CHUNK_SLOTS];
    _Atomic uint64_t ino[CHUNK_SLOTS];
};

static _Atomic(struct slot_chunk *) slot_chunks[MAX_FDS >> CHUNK_SHIFT];
static atomic_uint slot_next_tag;
static atomic_int slot_max_fd = -1; /* highest fd ever tracked: bounds the sweeps */

HOT struct slot_chunk *slot_chunk_of(int fd) {
    if (UNLIKELY((unsigned)fd >= MAX_FDS)) return NULL;
    return atomic_load_explicit(&slot_chunks[(unsigned)fd >> CHUNK_SHIFT], memory_order_acquire);
}

HOT uint32_t slot_get(int fd) {
    struct slot_chunk *c = slot_chunk_of(fd);
    if (LIKELY(c == NULL)) return 0;
    return atomic_load_explicit(&c->tag[(unsigned)fd & (CHUNK_SLOTS - 1)], memory_order_relaxed);
}

/* Tracks `fd`, just handed out by the model, with its placeholder's identity. */
static void slot_set(int fd) {
    if ((unsigned)fd >= MAX_FDS) return;
    struct stat st;
    if (CALL_REAL(-1, fstat, fd, &st) != 0) return; /* already gone again */
    _Atomic(struct slot_chunk *) *top = &slot_chunks[(unsigned)fd >> CHUNK_SHIFT];
    struct slot_chunk *c = atomic_load_explicit(top, memory_order_acquire);
    if (c == NULL) {
        /* mmap rather than malloc: no allocator state is touched from inside libc calls. */
        void *m = CALL_REAL(MAP_FAILED, mmap, NULL, sizeof(struct slot_chunk), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return; /* untracked: the fd answers as a plain descriptor */
        struct slot_chunk *expected = NULL;
        if (atomic_compare_exchange_strong(top, &expected, (struct slot_chunk *)m)) {
            c = m;
        } else {
            munmap(m, sizeof(struct slot_chunk));
            c = expected;
        }
    }
    unsigned i = (unsigned)fd & (CHUNK_SLOTS - 1);
    uint32_t tag;
    do tag = atomic_fetch_add_explicit(&slot_next_tag, 1, memory_order_relaxed) + 1;
    while (tag == 0);
    /* Clear the tag while the identity changes, so a reader never pairs the new tag with the old
     * identity (it re-reads the tag after the identity: see slot_matches). */
    atomic_store_explicit(&c->tag[i], 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&c->dev[i], (uint64_t)st.st_dev, memory_order_relaxed);
    atomic_store_explicit(&c->ino[i], (uint64_t)st.st_ino, memory_order_relaxed);
    atomic_store_explicit(&c->tag[i], tag, memory_order_release);
    int max = atomic_load_explicit(&slot_max_fd, memory_order_relaxed);
    while (fd > max && !atomic_compare_exchange_weak(&slot_max_fd, &max, fd)) {
    }
}

static void slot_clear(int fd, uint32_t tag) {
    struct slot_chunk *c = slot_chunk_of(fd);
    if (c == NULL) return;
    uint32_t expected = tag;
    atomic_compare_exchange_strong(&c->tag[(unsigned)fd & (CHUNK_SLOTS - 1)], &expected, 0);
}

/* Whether the descriptor now at `fd` is the placeholder tracked there with `tag`: one fstat and a
 * compare, no call into the model. A mismatch is not yet proof of staleness (the slot may be
 * changing under us); the caller then asks the model. */
static int slot_matches(int fd, uint32_t tag) {
    struct slot_chunk *c = slot_chunk_of(fd);
    if (c == NULL) return 0;
    unsigned i = (unsigned)fd & (CHUNK_SLOTS - 1);
    struct stat st;
    int saved = errno;
    int r = CALL_REAL(-1, fstat, fd, &st);
    errno = saved;
    if (r != 0) return 0;
    uint64_t dev = atomic_load_explicit(&c->dev[i], memory_order_acquire);
    uint64_t ino = atomic_load_explicit(&c->ino[i], memory_order_acquire);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&c->tag[i], memory_order_relaxed) == tag && dev == (uint64_t)st.st_dev &&
           ino == (uint64_t)st.st_ino;
}

/* ---- libswiftvfio.so -------------------------------------------------------------------------- */

static struct {
    int (*open)(const char *, int);
    int (*ioctl)(int, unsigned long, unsigned long);
    int (*close)(int);
    int (*dup)(int, int, int);
    int (*adopt_dup)(int, int);
    int (*forget_fd)(int);
    int (*is_model_fd)(int);
    ssize_t (*read)(int, void *, ssize_t);
    ssize_t (*pread)(int, void *, ssize_t, off_t);
    ssize_t (*write)(int, const void *, ssize_t);
    ssize_t (*pwrite)(int, const void *, ssize_t, off_t);
    void *(*mmap)(void *, ssize_t, int, int, int, off_t);
    int (*path_stat)(const char *, uint32_t *, uint32_t *, uint32_t *);
    int (*fd_stat)(int, uint32_t *, uint32_t *, uint32_t *);
    int (*load_environment_topology)(void);
    const char *(*last_error)(void);
    int (*exit_files)(void); /* optional: NULL in a library older than the interposer */
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static atomic_int lib_state; /* 0 not loaded, 1 loaded, -1 failed */
/* libswiftvfio.so's mapped address range: calls whose return address lies here come from the
 * model itself and go to libc. */
static _Atomic uintptr_t lib_lo, lib_hi;

/* What the nodes' stat answers share: devtmpfs's device, the time the model was loaded, and the
 * identity of the kernel's anonymous inode (all anon-inode files share one inode; it is probed
 * from a real eventfd, so a device fd answers fstat exactly as the kernel's "[vfio-device]"). */
static struct timespec node_time;
static dev_t anon_dev;
static ino_t anon_ino;
static const dev_t devtmpfs_dev = 5; /* makedev(0, 5): devtmpfs on a typical system */
static int real_dev_vfio_exists;     /* the host has a real /dev/vfio (relative paths may be ours) */
/* The directory this library was loaded from, made absolute at start-up (LD_PRELOAD may name it
 * relative to a directory the program leaves). */
static char own_dir[PATH_MAX];

/* Depth of this thread's calls into the library (initial-exec: no allocation on first access). */
static __thread int in_model __attribute__((tls_model("initial-exec")));

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

static void say(const char *a, const char *b, const char *c) {
    char line[1024];
    int n = snprintf(line, sizeof line, "swiftvfio-preload: %s%s%s\n", a, b ? b : "", c ? c : "");
    if (n > 0) (void)!CALL_REAL(-1, write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

struct range_probe {
    uintptr_t addr, lo, hi;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct range_probe *p = data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int hit = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo) lo = s;
        if (e > hi) hi = e;
        if (p->addr >= s && p->addr < e) hit = 1;
    }
    if (!hit) return 0;
    p->lo = lo;
    p->hi = hi;
    return 1;
}

static void exit_hook_install(void);

static void lib_load(void) {
    in_model++;
    void *h = NULL;
    char path[PATH_MAX];
    Dl_info info;
    /* A program linked with libswiftvfio.so already has the model: use that copy. */
    void *own = dlsym(RTLD_DEFAULT, "swiftvfio_open");
    if (own && dladdr(own, &info) && info.dli_fname && info.dli_fname[0]) {
        h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    }
    if (h == NULL) {
        /* Otherwise the library beside this one (both are products of the same build). */
        if (own_dir[0] == 0) {
            say("cannot locate libswiftvfio-preload.so itself", NULL, "; model paths answer ENOENT");
            goto fail;
        }
        /* The development name first, then the release library's soname (an installed copy
         * may carry only that). */
        char why[PATH_MAX + 256] = "";
        static const char *const names[] = { "libswiftvfio.so", "libswiftvfio.so.0" };
        for (size_t i = 0; h == NULL && i < sizeof names / sizeof names[0]; i++) {
            if (snprintf(path, sizeof path, "%s/%s", own_dir, names[i]) >= (int)sizeof path) continue;
            h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            const char *e = h ? NULL : dlerror();
            if (e && why[0] == 0) snprintf(why, sizeof why, "%s", e);
        }
        if (h == NULL) {
            say("cannot load libswiftvfio.so: ", why[0] ? why : own_dir, "; model paths answer ENOENT");
            goto fail;
        }
    }
#define SYM(field, name)                                                                           \
    if ((*(void **)&lib.field = dlsym(h, name)) == NULL) {                                         \
        say("libswiftvfio.so lacks ", name, "; model paths answer ENOENT");                        \
        goto fail;                                                                                 \
    }
    SYM(open, "swiftvfio_open")
    SYM(ioctl, "swiftvfio_ioctl")
    SYM(close, "swiftvfio_close")
    SYM(dup, "swiftvfio_dup")
    SYM(adopt_dup, "swiftvfio_adopt_dup")
    SYM(forget_fd, "swiftvfio_forget_fd")
    SYM(is_model_fd, "swiftvfio_is_model_fd")
    SYM(read, "swiftvfio_read")
    SYM(pread, "swiftvfio_pread")
    SYM(write, "swiftvfio_write")
    SYM(pwrite, "swiftvfio_pwrite")
    SYM(mmap, "swiftvfio_mmap")
    SYM(path_stat, "swiftvfio_path_stat")
    SYM(fd_stat, "swiftvfio_fd_stat")
    SYM(load_environment_topology, "swiftvfio_load_environment_topology")
    SYM(last_error, "swiftvfio_last_error")
#undef SYM
    *(void **)&lib.exit_files = dlsym(h, "swiftvfio_exit_files");
    /* A topology that does not load must not become an empty model the client half works with:
     * say why once, and answer ENOENT for every model path. */
    if (lib.load_environment_topology() < 0) {
        const char *why = lib.last_error();
        say(why ? why : "SWIFTVFIO_TOPOLOGY does not load", NULL, "; model paths answer ENOENT");
        goto fail;
    }
    struct range_probe probe = { (uintptr_t)lib.open, 0, 0 };
    if (dl_iterate_phdr(find_object, &probe)) {
        atomic_store(&lib_lo, probe.lo);
        atomic_store(&lib_hi, probe.hi);
    }
    clock_gettime(CLOCK_REALTIME, &node_time);
    int efd = (int)syscall(SYS_eventfd2, 0, O_CLOEXEC);
    if (efd >= 0) {
        struct stat st;
        if (CALL_REAL(-1, fstat, efd, &st) == 0) {
            anon_dev = st.st_dev;
            anon_ino = st.st_ino;
        }
        CALL_REAL(-1, close, efd);
    }
    in_model--;
    atomic_store(&lib_state, 1);
    exit_hook_install();
    return;
fail:
    in_model--;
    atomic_store(&lib_state, -1);
}

/* Loads the library on first need; 1 when the model is usable. */
static int lib_ready(void) {
    int s = atomic_load_explicit(&lib_state, memory_order_acquire);
    if (LIKELY(s != 0)) return s > 0;
    int saved = errno; /* loading (dlopen, the runtime's start-up) must not leak errno */
    pthread_once(&lib_once, lib_load);
    errno = saved;
    return atomic_load(&lib_state) > 0;
}

EXPORT int swiftvfio_preload_state(void) { return atomic_load(&lib_state); }

/* issue 12 (kvm/kvm_device.h): an address inside libswiftvfio.so, loaded on first need. */
void *preload_model_library(void) { return lib_ready() ? (void *)lib.open : NULL; }

/* Checks and creations of model fd numbers exclude each other.
 *
 * swiftvfio_is_model_fd() reads the identity the model recorded for a number, fstat()s the
 * descriptor, and forgets the entry when they differ. If a new model fd were installed at that
 * number between the read and the forget (the old descriptor was closed behind our back and the
 * number reused by the model), the check would forget the new, valid entry. So every check that
 * asks the model holds this lock shared, and every call that makes a model fd number (open, dup,
 * F_DUPFD, dup2/dup3, GET_DEVICE_FD) holds it exclusive. (The usual check, our own identity
 * compare, never forgets anything and takes no lock.) Checks run concurrently with each other and
 * with every other model call; only fd creations serialise (as the kernel's fd table does, more
 * coarsely). Writer-preferring, so a stream of checks cannot starve an open. */
static pthread_rwlock_t fd_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* Whether the descriptor at `fd`, tracked with `tag`, is still the model fd the library opened;
 * caller holds fd_lock (either way). A stale slot (the descriptor was closed behind our back, the
 * number maybe reused) is cleared; the library forgets its entry, dropping that file reference
 * as the real close would have. */
static int still_model_locked(int fd, uint32_t tag) {
    if (slot_matches(fd, tag)) return 1;
    if (LIB_QUIET(lib.is_model_fd(fd))) return 1;
    slot_clear(fd, tag);
    return 0;
}

/* The common case, the descriptor still being our placeholder, needs neither the lock nor the
 * model: it can only turn into a forget when the identity differs. */
static int still_model(int fd, uint32_t tag) {
    if (LIKELY(slot_matches(fd, tag))) return 1;
    pthread_rwlock_rdlock(&fd_lock);
    int r = still_model_locked(fd, tag);
    pthread_rwlock_unlock(&fd_lock);
    return r;
}

/* Checks every tracked fd and forgets the stale ones. Run before the model hands out a new fd
 * number (its table must not hold a stale entry there) and before SET_CONTAINER resolves an fd
 * argument; also makes the releases of files closed behind our back run before the next open
 * asks whether a group is busy. */
static void sweep_stale_locked(void) {
    int max = atomic_load_explicit(&slot_max_fd, memory_order_relaxed);
    for (int base = 0; base <= max && (unsigned)base < MAX_FDS; base += CHUNK_SLOTS) {
        struct slot_chunk *c = atomic_load_explicit(&slot_chunks[(unsigned)base >> CHUNK_SHIFT], memory_order_acquire);
        if (c == NULL) continue;
        for (unsigned i = 0; i < CHUNK_SLOTS && base + (int)i <= max; i++) {
            uint32_t t = atomic_load_explicit(&c->tag[i], memory_order_relaxed);
            if (t) (void)still_model_locked(base + (int)i, t);
        }
    }
}

/* ---- process exit -----------------------------------------------------------------------------
 * The kernel closes the files of a process that exits (exit_files()), so every release runs: a
 * VMM's `quit` that finalizes no device still releases its device, group and container. The model
 * lives in the process, and its files would simply vanish with it. So, at exit(), the library
 * closes every model fd (swiftvfio_exit_files(): each close and release runs and is traced).
 *
 * An atexit() handler, registered once libswiftvfio.so is loaded and its model made, rather than
 * a destructor: exit() runs atexit handlers in reverse order of registration, all of them before
 * the dynamic linker runs any library's destructors (its own handler was registered first of
 * all, at start-up), so libswiftvfio.so, the Swift runtime and their C++ statics (whose
 * __cxa_atexit handlers were registered while they loaded, before this one) are intact while it
 * runs. A destructor of this library is not ordered against libswiftvfio.so's (neither depends
 * on the other). _exit(), exec and a fatal signal close nothing, as they release nothing here.
 *
 * Not in a forked child (the handler is inherited): the kernel shares the files of a fork with
 * the parent, so the child's exit releases nothing; its copy of the model is dropped unreleased.
 * Not when exit() is called from inside a model call (a C driver's callback): the model is busy. */
static pid_t exit_pid;

static void slot_clear_all(void) {
    int max = atomic_load_explicit(&slot_max_fd, memory_order_relaxed);
    for (int base = 0; base <= max && (unsigned)base < MAX_FDS; base += CHUNK_SLOTS) {
        struct slot_chunk *c = atomic_load_explicit(&slot_chunks[(unsigned)base >> CHUNK_SHIFT], memory_order_acquire);
        if (c == NULL) continue;
        for (unsigned i = 0; i < CHUNK_SLOTS; i++) atomic_store_explicit(&c->tag[i], 0, memory_order_relaxed);
    }
}

static void preload_exit(void) {
    if (in_model || getpid() != exit_pid || atomic_load(&lib_state) <= 0 || lib.exit_files == NULL) return;
    int saved = errno;
    kvm_hook_exit(); /* issue 12: kvm-vfio devices first: their release drops group file references */
    pthread_rwlock_wrlock(&fd_lock);
    /* The model closes the placeholders: no number may stay routed to it afterwards (a later
     * atexit handler or destructor may close or reuse them). */
    slot_clear_all();
    in_model++;
    (void)lib.exit_files();
    in_model--;
    pthread_rwlock_unlock(&fd_lock);
    errno = saved;
}

static void exit_hook_install(void) {
    if (lib.exit_files == NULL) return;
    exit_pid = getpid();
    (void)atexit(preload_exit);
}

/* ---- model paths ------------------------------------------------------------------------------ */

enum path_kind { P_NOT_OURS, P_DIR, P_NODE, P_BELOW_NODE };

struct model_path {
    enum path_kind kind;
    int must_be_dir; /* trailing "/", "/." or "/..": the kernel wants a directory */
    char node[PATH_MAX];
};

static int node_like(const char *name) {
    if (strcmp(name, "vfio") == 0) return 1;
    if (strncmp(name, "noiommu-", 8) == 0) name += 8;
    if (*name == 0) return 0;
    for (; *name; name++)
        if (*name < '0' || *name > '9') return 0;
    return 1;
}

/* Cheap test on the fast path: can `path` name a model node? Lexical normalisation only removes
 * components, so an absolute model path always spells "vfio" or "iommu". A relative one is
 * resolved against its directory, which can only be inside /dev/vfio when the host has a real
 * one; then a last component that looks like a node name is a candidate too. */
HOT int readable_ptr(const char *path) {
    /* libc declares the path nonnull; hide that from the optimiser so this check stays. A pointer
     * into the first page (NULL and small garbage) goes to libc, which answers EFAULT. */
    __asm__("" : "+r"(path));
    return LIKELY((uintptr_t)path >= 4096);
}

HOT int maybe_model_path(const char *path) {
    if (UNLIKELY(!readable_ptr(path))) return 0;
    /* "vfio" and "iommu" share "io": one scan for it (libc's vectorised strstr), then a look at
     * the bytes around each hit. */
    for (const char *p = strstr(path, "io"); UNLIKELY(p != NULL); p = strstr(p + 1, "io")) {
        if ((p - path >= 2 && p[-2] == 'v' && p[-1] == 'f') || (p[2] == 'm' && p[3] == 'm' && p[4] == 'u')) return 1;
    }
    if (LIKELY(path[0] == '/' || !real_dev_vfio_exists)) return 0;
    const char *last = strrchr(path, '/');
    return node_like(last ? last + 1 : path);
}

/* Resolves `path` (relative to `dirfd`) lexically into `out`. */
static void classify(int dirfd, const char *path, struct model_path *out) {
    char joined[2 * PATH_MAX];
    out->kind = P_NOT_OURS;
    out->must_be_dir = 0;
    size_t plen = strlen(path);
    if (plen == 0 || plen >= PATH_MAX) return;
    if (path[0] == '/') {
        memcpy(joined, path, plen + 1);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (getcwd(base, sizeof base) == NULL) return;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            if (n <= 0) return;
            base[n] = 0;
            if (base[0] != '/') return; /* not a directory in the file system */
        }
        if (snprintf(joined, sizeof joined, "%s/%s", base, path) >= (int)sizeof joined) return;
    }
    /* Normalise: drop empty and "." components, ".." pops one. */
    char norm[PATH_MAX];
    size_t starts[256];
    int depth = 0;
    size_t len = 0;
    const char *p = joined;
    const char *last_component = NULL;
    size_t last_len = 0;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != '/') p++;
        size_t n = (size_t)(p - s);
        last_component = s;
        last_len = n;
        if (n == 1 && s[0] == '.') continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (depth > 0) len = starts[--depth];
            continue;
        }
        if (len + 1 + n >= sizeof norm || depth >= (int)(sizeof starts / sizeof starts[0])) return;
        starts[depth++] = len;
        norm[len++] = '/';
        memcpy(norm + len, s, n);
        len += n;
    }
    norm[len] = 0;
    size_t jl = strlen(joined);
    if (jl > 0 && joined[jl - 1] == '/') out->must_be_dir = 1;
    if (last_component && ((last_len == 1 && last_component[0] == '.') ||
                           (last_len == 2 && last_component[0] == '.' && last_component[1] == '.')))
        out->must_be_dir = 1;

    if (strcmp(norm, "/dev/vfio") == 0) {
        out->kind = P_DIR;
        memcpy(out->node, norm, len + 1);
        return;
    }
    const char *rest = NULL;
    if (strncmp(norm, "/dev/vfio/", 10) == 0) {
        rest = strchr(norm + 10, '/');
    } else if (strcmp(norm, "/dev/iommu") == 0 || strncmp(norm, "/dev/iommu/", 11) == 0) {
        rest = strchr(norm + 5, '/');
    } else {
        return;
    }
    size_t nl = rest ? (size_t)(rest - norm) : len;
    memcpy(out->node, norm, nl);
    out->node[nl] = 0;
    out->kind = rest ? P_BELOW_NODE : P_NODE;
}

struct node_info {
    uint32_t mode, major, minor;
};

/* The model's answer for a node path: 0, or an errno (ENOENT, ENOTDIR). */
static int node_lookup(const struct model_path *mp, struct node_info *ni) {
    int r = LIB_QUIET(lib.path_stat(mp->node, &ni->mode, &ni->major, &ni->minor));
    if (r < 0) return -r;
    if (mp->kind == P_BELOW_NODE) return ENOTDIR;
    if (mp->must_be_dir && !S_ISDIR(ni->mode)) return ENOTDIR;
    return 0;
}

/* ---- stat answers ----------------------------------------------------------------------------- */

static void fill_stat(struct stat *st, const struct node_info *ni) {
    memset(st, 0, sizeof *st);
    st->st_mode = ni->mode;
    st->st_uid = 0;
    st->st_gid = 0;
    st->st_blksize = 4096;
    if (S_ISCHR(ni->mode)) {
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
    sx->stx_size = 0;
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

/* fstat of an fd: 1 and *ni filled when it is a live model fd, 0 to leave it to libc. */
static int model_stat_fd(int fd, uint32_t tag, struct node_info *ni, void *ra) {
    if (from_model(ra) || !still_model(fd, tag)) return 0;
    return LIB_QUIET(lib.fd_stat(fd, &ni->mode, &ni->major, &ni->minor)) == 0;
}

/* ---- open ------------------------------------------------------------------------------------- */

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
    *rc = -1;
    if (!lib_ready()) {
        errno = ENOENT;
        return 1;
    }
    struct node_info ni;
    int e = node_lookup(&mp, &ni);
    if (!e && (flags & O_DIRECTORY)) e = ENOTDIR;
    if (!e && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) e = EEXIST;
    if (!e && (flags & O_PATH)) e = EOPNOTSUPP; /* no path-only model files (docs/PRELOAD.md) */
    if (e) {
        errno = e;
        return 1;
    }
    pthread_rwlock_wrlock(&fd_lock);
    sweep_stale_locked();
    errno = saved;
    int fd = LIB_SYSCALL(r_ < 0, lib.open(mp.node, flags));
    if (fd >= 0) slot_set(fd);
    pthread_rwlock_unlock(&fd_lock);
    *rc = fd;
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

EXPORT int open(const char *path, int flags, ...) {
    OPEN_MODE(flags)
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(AT_FDCWD, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, open, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...) {
    OPEN_MODE(flags)
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(AT_FDCWD, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, open64, path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags)
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(dirfd, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, openat, dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags)
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(dirfd, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, openat64, dirfd, path, flags, mode);
}

/* The fortified forms (gcc -D_FORTIFY_SOURCE turns a two-argument open into these). */
EXPORT int __open_2(const char *path, int flags) {
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(AT_FDCWD, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, __open_2, path, flags);
}

EXPORT int __open64_2(const char *path, int flags) {
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(AT_FDCWD, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, __open64_2, path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags) {
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(dirfd, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, __openat_2, dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags) {
    int rc;
    if (UNLIKELY(maybe_model_path(path)) && model_open(dirfd, path, flags, &rc, RA())) return rc;
    return CALL_REAL(-1, __openat64_2, dirfd, path, flags);
}

/* ---- ioctl ------------------------------------------------------------------------------------ */

static int model_ioctl(int fd, uint32_t tag, unsigned long request, unsigned long arg, void *ra) {
    if (from_model(ra) || !still_model(fd, tag)) return CALL_REAL(-1, ioctl, fd, request, arg);
    /* The model dispatches on the kind of file first (numbers collide across fd kinds). Before
     * SET_CONTAINER resolves its fd argument, and before GET_DEVICE_FD takes a new number, stale
     * entries must be gone: a stale number reused by a pipe must read as "not a model fd". */
    unsigned long nr = request & 0xffffffffUL;
    if (nr == VFIO_GROUP_GET_DEVICE_FD) {
        pthread_rwlock_wrlock(&fd_lock);
        sweep_stale_locked();
        int r = LIB_SYSCALL(r_ < 0, lib.ioctl(fd, request, arg));
        if (r >= 0 && LIB_QUIET(lib.is_model_fd(r))) slot_set(r);
        pthread_rwlock_unlock(&fd_lock);
        return r;
    }
    if (nr == VFIO_GROUP_SET_CONTAINER) {
        pthread_rwlock_rdlock(&fd_lock);
        sweep_stale_locked();
        pthread_rwlock_unlock(&fd_lock);
    }
    return LIB_SYSCALL(r_ < 0, lib.ioctl(fd, request, arg));
}

EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0)) {
        int kvm_r; /* issue 12: KVM_CREATE_DEVICE(VFIO) on a VM fd, and kvm-vfio device fds */
        if (UNLIKELY(kvm_hook_wants_ioctl(request)) && kvm_hook_ioctl(fd, request, arg, &kvm_r)) return kvm_r;
        return CALL_REAL(-1, ioctl, fd, request, arg);
    }
    return model_ioctl(fd, tag, request, arg, RA());
}

/* ---- close, dup ------------------------------------------------------------------------------- */

static int model_close(int fd, uint32_t tag, void *ra) {
    if (from_model(ra) || !still_model(fd, tag)) return CALL_REAL(-1, close, fd);
    /* Clear first: once the model closes the placeholder the number is free for anyone. */
    slot_clear(fd, tag);
    int r = LIB_SYSCALL(r_ < 0, lib.close(fd));
    if (r < 0 && errno == EBADF) return CALL_REAL(-1, close, fd); /* lost a race with another close */
    return r;
}

EXPORT int close(int fd) {
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0)) {
        if (UNLIKELY(kvm_hook_wants_close())) kvm_hook_close(fd); /* issue 12: a kvm-vfio device's release */
        return CALL_REAL(-1, close, fd);
    }
    return model_close(fd, tag, RA());
}

/* Closes the model fds in [first, last] through the model (releases run as the kernel's would). */
static void close_model_range(unsigned first, unsigned last) {
    int max = atomic_load_explicit(&slot_max_fd, memory_order_relaxed);
    if (max < 0 || first > (unsigned)max) return;
    if (last > (unsigned)max) last = (unsigned)max;
    for (unsigned fd = first; fd <= last; fd++) {
        uint32_t tag = slot_get((int)fd);
        if (tag && still_model((int)fd, tag)) {
            slot_clear((int)fd, tag);
            (void)LIB_QUIET(lib.close((int)fd));
        }
        if (fd == UINT_MAX) break;
    }
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags) {
    if (UNLIKELY(atomic_load_explicit(&slot_max_fd, memory_order_relaxed) >= 0) &&
        !(flags & CLOSE_RANGE_CLOEXEC) && first <= last && !from_model(RA()))
        close_model_range(first, last);
    __typeof__(real_close_range) f = REAL(close_range);
    if (f) return f(first, last, flags);
    return (int)syscall(SYS_close_range, first, last, flags);
}

EXPORT void closefrom(int lowfd) {
    if (UNLIKELY(atomic_load_explicit(&slot_max_fd, memory_order_relaxed) >= 0) && lowfd >= 0 && !from_model(RA()))
        close_model_range((unsigned)lowfd, UINT_MAX);
    __typeof__(real_closefrom) f = REAL(closefrom);
    if (f) f(lowfd);
    else (void)syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0);
}

/* dup / F_DUPFD of a model fd: a new model fd for the same file, from the model. */
static int model_dup(int fd, int minfd, int cloexec) {
    pthread_rwlock_wrlock(&fd_lock);
    sweep_stale_locked();
    int nfd = LIB_SYSCALL(r_ < 0, lib.dup(fd, minfd, cloexec ? O_CLOEXEC : 0));
    if (nfd >= 0) slot_set(nfd);
    pthread_rwlock_unlock(&fd_lock);
    return nfd;
}

EXPORT int dup(int fd) {
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0)) return CALL_REAL(-1, dup, fd);
    if (from_model(RA()) || !still_model(fd, tag)) return CALL_REAL(-1, dup, fd);
    return model_dup(fd, 0, 0);
}

/* dup2/dup3: the real call (it closes `newfd` atomically and takes that exact number), then the
 * model is told: a model `oldfd` makes `newfd` one more model fd of its file; a model `newfd`
 * overwritten by another file is dropped from the model (its release runs if it was the last). */
static int model_dup23(int oldfd, int newfd, int flags, int three, void *ra) {
    if (from_model(ra)) goto plain;
    pthread_rwlock_wrlock(&fd_lock);
    uint32_t otag = slot_get(oldfd), ntag = slot_get(newfd);
    int old_model = otag && still_model_locked(oldfd, otag);
    int new_model = ntag && still_model_locked(newfd, ntag);
    if (oldfd == newfd || (!old_model && !new_model)) {
        pthread_rwlock_unlock(&fd_lock);
        goto plain;
    }
    int r = three ? CALL_REAL(-1, dup3, oldfd, newfd, flags) : CALL_REAL(-1, dup2, oldfd, newfd);
    if (r >= 0) {
        if (old_model) {
            if (LIB_QUIET(lib.adopt_dup(oldfd, newfd)) == 0) slot_set(newfd);
            else if (new_model) slot_clear(newfd, ntag);
        } else {
            slot_clear(newfd, ntag);
            (void)LIB_QUIET(lib.forget_fd(newfd));
        }
    }
    pthread_rwlock_unlock(&fd_lock);
    return r;
plain:
    return three ? CALL_REAL(-1, dup3, oldfd, newfd, flags) : CALL_REAL(-1, dup2, oldfd, newfd);
}

EXPORT int dup2(int oldfd, int newfd) {
    if (LIKELY((slot_get(oldfd) | slot_get(newfd)) == 0)) return CALL_REAL(-1, dup2, oldfd, newfd);
    return model_dup23(oldfd, newfd, 0, 0, RA());
}

EXPORT int dup3(int oldfd, int newfd, int flags) {
    if (LIKELY((slot_get(oldfd) | slot_get(newfd)) == 0)) return CALL_REAL(-1, dup3, oldfd, newfd, flags);
    return model_dup23(oldfd, newfd, flags, 1, RA());
}

/* fcntl: F_DUPFD and F_DUPFD_CLOEXEC of a model fd go to the model; everything else (F_GETFD,
 * F_SETFD, F_GETFL, locks) is answered by the placeholder descriptor, which is the truth for the
 * close-on-exec flag the model set on it. */
#define FCNTL_BODY(which)                                                                          \
    va_list ap;                                                                                    \
    va_start(ap, cmd);                                                                             \
    unsigned long arg = va_arg(ap, unsigned long);                                                 \
    va_end(ap);                                                                                    \
    uint32_t tag = slot_get(fd);                                                                   \
    if (LIKELY(tag == 0) || (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || from_model(RA()) ||      \
        !still_model(fd, tag))                                                                     \
        return CALL_REAL(-1, which, fd, cmd, arg);                                                 \
    if ((int)arg < 0) { /* the kernel's unsigned `from` >= RLIMIT_NOFILE */                         \
        errno = EINVAL;                                                                            \
        return -1;                                                                                 \
    }                                                                                              \
    return model_dup(fd, (int)arg, cmd == F_DUPFD_CLOEXEC);

EXPORT int fcntl(int fd, int cmd, ...) { FCNTL_BODY(fcntl) }
EXPORT int fcntl64(int fd, int cmd, ...) { FCNTL_BODY(fcntl64) }

/* ---- read, write, mmap ------------------------------------------------------------------------ */

#define ROUTE_FD(fd, ra) (from_model(ra) == 0 && still_model((fd), tag))

EXPORT ssize_t read(int fd, void *buf, size_t n) {
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(-1, read, fd, buf, n);
    return LIB_SYSCALL(r_ < 0, lib.read(fd, buf, (ssize_t)n));
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(-1, __read_chk, fd, buf, n, buflen);
    if (n > buflen) __chk_fail();
    return LIB_SYSCALL(r_ < 0, lib.read(fd, buf, (ssize_t)n));
}

EXPORT ssize_t write(int fd, const void *buf, size_t n) {
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(-1, write, fd, buf, n);
    return LIB_SYSCALL(r_ < 0, lib.write(fd, buf, (ssize_t)n));
}

#define PREAD_LIKE(name, model_call, ...)                                                          \
    uint32_t tag = slot_get(fd);                                                                   \
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(-1, name, __VA_ARGS__);          \
    return LIB_SYSCALL(r_ < 0, model_call);

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off) {
    PREAD_LIKE(pread, lib.pread(fd, buf, (ssize_t)n, off), fd, buf, n, off)
}
EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off) {
    PREAD_LIKE(pread64, lib.pread(fd, buf, (ssize_t)n, off), fd, buf, n, off)
}
EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    PREAD_LIKE(pwrite, lib.pwrite(fd, buf, (ssize_t)n, off), fd, buf, n, off)
}
EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    PREAD_LIKE(pwrite64, lib.pwrite(fd, buf, (ssize_t)n, off), fd, buf, n, off)
}

EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen) {
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(-1, __pread_chk, fd, buf, n, off, buflen);
    if (n > buflen) __chk_fail();
    return LIB_SYSCALL(r_ < 0, lib.pread(fd, buf, (ssize_t)n, off));
}

EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen) {
    uint32_t tag = slot_get(fd);
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(-1, __pread64_chk, fd, buf, n, off, buflen);
    if (n > buflen) __chk_fail();
    return LIB_SYSCALL(r_ < 0, lib.pread(fd, buf, (ssize_t)n, off));
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    uint32_t tag = (flags & MAP_ANONYMOUS) ? 0 : slot_get(fd);
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(MAP_FAILED, mmap, addr, len, prot, flags, fd, off);
    return LIB_SYSCALL(r_ == MAP_FAILED, lib.mmap(addr, (ssize_t)len, prot, flags, fd, off));
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
    uint32_t tag = (flags & MAP_ANONYMOUS) ? 0 : slot_get(fd);
    if (LIKELY(tag == 0) || !ROUTE_FD(fd, RA())) return CALL_REAL(MAP_FAILED, mmap64, addr, len, prot, flags, fd, off);
    return LIB_SYSCALL(r_ == MAP_FAILED, lib.mmap(addr, (ssize_t)len, prot, flags, fd, off));
}

/* ---- stat family ------------------------------------------------------------------------------
 * Model nodes answer as the kernel's character devices (devtmpfs), /dev/vfio as a directory,
 * model fds as their node or (device fds) the anonymous inode. Everything else is libc's. */

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
    uint32_t tag = slot_get(fd);                                                                   \
    if (UNLIKELY(tag != 0)) {                                                                      \
        struct node_info ni;                                                                       \
        if (model_stat_fd((fd), tag, &ni, RA())) {                                                 \
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
 * as if an administrator had given the user the nodes, vfio.rst's "chown"); not executable. */
static int model_access(int dirfd, const char *path, int amode, int *rc, void *ra) {
    struct node_info ni;
    if (!model_stat_path(dirfd, path, &ni, rc, ra)) return 0;
    if (*rc == 0 && (amode & X_OK) && !S_ISDIR(ni.mode)) {
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

/* ---- start-up --------------------------------------------------------------------------------- */

__attribute__((constructor)) static void preload_init(void) {
#define RESOLVE(ret, name, params) (void)REAL(name);
    REALS(RESOLVE)
#undef RESOLVE
    struct stat st;
    real_dev_vfio_exists = CALL_REAL(-1, stat, "/dev/vfio", &st) == 0 && S_ISDIR(st.st_mode);
    Dl_info info;
    char resolved[PATH_MAX];
    if (dladdr((void *)&swiftvfio_preload_state, &info) && info.dli_fname && realpath(info.dli_fname, resolved)) {
        char *slash = strrchr(resolved, '/');
        if (slash) {
            *slash = 0;
            snprintf(own_dir, sizeof own_dir, "%s", slash == resolved ? "/" : resolved);
        }
    }
}
