// SPDX-License-Identifier: Apache-2.0
/* Placeholder descriptors, capget and small syscalls for the model (see swiftvfio_shim.h). */
#define _GNU_SOURCE
#include "swiftvfio_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The per-thread slots (swiftvfio_shim.h). */
__thread struct svfio_thread_slots svfio_tls_slots __attribute__((tls_model("initial-exec")));

int svfio_placeholder_fd(const char *name, int cloexec) {
    int fd = memfd_create(name, cloexec ? MFD_CLOEXEC : 0);
    return fd < 0 ? -errno : fd;
}

/* The model's own operations on its placeholders go to the kernel directly (raw system calls), never
 * through the libc symbols: under the LD_PRELOAD interposer those symbols route model fds back into
 * the model, which would re-enter it while it holds the fd table's lock. */
int svfio_close_fd(int fd) { return syscall(SYS_close, fd) < 0 ? -errno : 0; }

int svfio_dup_fd(int fd, int minfd, int cloexec) {
    long r = syscall(SYS_fcntl, fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, minfd);
    return r < 0 ? -errno : (int)r;
}

int svfio_fd_identity(int fd, uint64_t *dev, uint64_t *ino) {
    struct stat st;
    if (syscall(SYS_fstat, fd, &st) < 0) return -errno;
    *dev = (uint64_t)st.st_dev;
    *ino = (uint64_t)st.st_ino;
    return 0;
}

int svfio_capable_sys_rawio(void) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
    if (syscall(SYS_capget, &hdr, data) != 0) return 0;
    return (data[CAP_TO_INDEX(CAP_SYS_RAWIO)].effective & CAP_TO_MASK(CAP_SYS_RAWIO)) != 0;
}

int svfio_gettid(void) { return (int)syscall(SYS_gettid); }

int svfio_fd_state(int fd) {
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    if (fl < 0) return 0;
#ifdef O_PATH
    if (fl & O_PATH) return 0;
#endif
    return 1;
}

int svfio_getpid(void) { return (int)getpid(); }

int svfio_comm(char *buf, int len) {
    int fd = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, buf, (size_t)len - 1);
    close(fd);
    if (n < 0) return -errno;
    if (n > 0 && buf[n - 1] == '\n') n--;
    buf[n] = 0;
    return (int)n;
}

/* ---- Device-model helpers (memfd-backed BARs, eventfd interrupt triggers) ---------------- */
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

int svfio_memfd(const char *name, uint64_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -errno;
    /* The model's own backing stores are not the client's files: keep them off the low numbers a
     * client may close wholesale (closefrom(3)) or expect to be handed out next. */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 1024);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

void *svfio_mmap_shared(int fd, size_t length, int prot, uint64_t offset, void *addr, int placement, int *err) {
    void *p = mmap(addr, length, prot, MAP_SHARED | placement, fd, (off_t)offset);
    if (p == MAP_FAILED) {
        *err = errno;
        return NULL;
    }
    *err = 0;
    return p;
}

int svfio_munmap(void *addr, size_t length) { return munmap(addr, length) < 0 ? -errno : 0; }

int svfio_eventfd(unsigned int initval, int nonblock) {
    int fd = eventfd(initval, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));
    return fd < 0 ? -errno : fd;
}

int svfio_fd_is_eventfd(int fd) {
    char path[64], target[64];
    ssize_t n;
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return -EBADF;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) return -errno;
    target[n] = 0;
    return strcmp(target, "anon_inode:[eventfd]") == 0 ? 1 : 0;
}

int svfio_eventfd_signal(int fd) {
    uint64_t one = 1;
    for (;;) {
        ssize_t n = write(fd, &one, sizeof(one));
        if (n == (ssize_t)sizeof(one)) return 0;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? -errno : -EIO;
    }
}

long long svfio_eventfd_read(int fd) {
    uint64_t value = 0;
    for (;;) {
        ssize_t n = read(fd, &value, sizeof(value));
        if (n == (ssize_t)sizeof(value)) return (long long)value;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        return n < 0 ? -errno : -EIO;
    }
}

/* ---- Trace output: raw system calls, so an LD_PRELOAD interposer never sees them ---------- */
int svfio_trace_open(const char *path) {
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : (int)fd;
}

int svfio_trace_write(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        long n = syscall(SYS_write, fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- The calling process's VMAs, one at a time (PROCMAP_QUERY, Linux 6.11) ------------------
 * The uapi definitions are spelled out: older system headers (Debian 12's) lack them. */
#define SVFIO_PROCMAP_QUERY 0xC0686611u /* _IOWR('f', 17, struct svfio_procmap_query) */
#define SVFIO_PROCMAP_QUERY_VMA_READABLE 0x01u
#define SVFIO_PROCMAP_QUERY_VMA_WRITABLE 0x02u
#define SVFIO_PROCMAP_QUERY_FILE_BACKED_VMA 0x20u
struct svfio_procmap_query {
    uint64_t size, query_flags, query_addr;                       /* in */
    uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode; /* out */
    uint32_t dev_major, dev_minor;                                 /* out */
    uint32_t vma_name_size, build_id_size;                         /* in/out */
    uint64_t vma_name_addr, build_id_addr;                         /* in */
};
_Static_assert(sizeof(struct svfio_procmap_query) == 104, "struct procmap_query is 104 bytes");

/* Through libc (not a raw system call), as every descriptor the model opens for itself: under the
 * interposer a new number must pass its creators' bookkeeping (docs/PRELOAD.md). */
int svfio_vma_open(void) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void svfio_vma_close(int mapsfd) { (void)close(mapsfd); }

int svfio_vma_at(int mapsfd, uint64_t addr, struct svfio_vma *vma) {
    char name[4096];
    struct svfio_procmap_query q;
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.query_addr = addr;
    q.vma_name_addr = (uint64_t)(uintptr_t)name;
    q.vma_name_size = sizeof name;
    if (ioctl(mapsfd, SVFIO_PROCMAP_QUERY, &q) != 0) return errno == ENOENT ? 0 : -errno;
    vma->start = q.vma_start;
    vma->end = q.vma_end;
    vma->readable = (q.vma_flags & SVFIO_PROCMAP_QUERY_VMA_READABLE) != 0;
    vma->writable = (q.vma_flags & SVFIO_PROCMAP_QUERY_VMA_WRITABLE) != 0;
    /* As /proc/self/maps names it (memfd_secret's file has no path of its own). */
    static const char secret[] = "/secretmem (deleted)";
    vma->secret = q.vma_name_size > 0 && strcmp(name, secret) == 0;
    return 1;
}
