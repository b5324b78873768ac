// SPDX-License-Identifier: Apache-2.0
/* CSwiftVFIOShim: the few things Swift cannot express or should not do itself.
 *
 * - Guarded user-memory copies: the model's counterpart of the kernel's copy_{from,to}_user
 *   exception-table fixups. A bad user pointer gives -EFAULT, never a SIGSEGV/SIGBUS.
 * - Real placeholder descriptors (memfd) backing model fds.
 * - capget(2) for "capable(CAP_SYS_RAWIO)" at the moment the kernel would ask.
 * - The uapi ioctl numbers, taken from the system's <linux/vfio.h>: the model's one source for them.
 */
#ifndef SWIFTVFIO_SHIM_H
#define SWIFTVFIO_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>
#include <linux/kvm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Copies len bytes from the user address src into dst. 0, or -EFAULT if any byte is unreadable. */
int svfio_copy_from_user(void *dst, uintptr_t src, size_t len);
/* Copies len bytes from src to the user address dst. 0, or -EFAULT if any byte is unwritable. */
int svfio_copy_to_user(uintptr_t dst, const void *src, size_t len);
/* Copies a NUL-terminated string of at most max bytes (NUL included) from user address src into dst
 * (dst has room for max bytes). Returns the string length (< max) when a NUL was found, max when no
 * NUL lies within max bytes, or -EFAULT when a byte before the NUL is unreadable. */
long svfio_strncpy_from_user(char *dst, uintptr_t src, size_t max);
/* The copies above install their SIGSEGV/SIGBUS guard lazily on first use. A handler installed
 * later by the host program (or a crash reporter) takes precedence and bypasses the guard; call
 * this again after installing one: it re-installs ours on top if it is no longer the current
 * handler and chains to the newcomer. 0, or -errno (-ENOSPC after too many re-chainings). */
int svfio_usermem_install_guard(void);
/* 1 if the guard is currently the installed SIGSEGV and SIGBUS handler, else 0. */
int svfio_usermem_guard_installed(void);

/* A fresh placeholder descriptor (memfd) for a model file; cloexec sets FD_CLOEXEC.
 * Returns the fd or -errno (-EMFILE, -ENFILE, ...). */
int svfio_placeholder_fd(const char *name, int cloexec);
/* Closes a descriptor; returns 0 or -errno. */
int svfio_close_fd(int fd);
/* dup(2)/fcntl(F_DUPFD[_CLOEXEC]) for placeholders: the lowest free fd >= minfd. -errno on error. */
int svfio_dup_fd(int fd, int minfd, int cloexec);
/* The (st_dev, st_ino) identity of a descriptor, or -errno. */
int svfio_fd_identity(int fd, uint64_t *dev, uint64_t *ino);

/* 1 if fd is an open descriptor usable for I/O, 0 if closed or an O_PATH descriptor. */
int svfio_fd_state(int fd);
/* getpid(2). */
int svfio_getpid(void);
/* The calling thread's comm (task name) into buf; length or -errno. */
int svfio_comm(char *buf, int len);

/* 1 if the calling thread's effective capability set holds CAP_SYS_RAWIO, else 0. */
int svfio_capable_sys_rawio(void);

/* The calling thread's id (gettid), for lock-owner assertions and WARN messages. */
int svfio_gettid(void);

/* ---- Device-model helpers ------------------------------------------------------------------ */
/* A close-on-exec memfd of `size` bytes (BAR backing store). fd or -errno. */
int svfio_memfd(const char *name, uint64_t size);
/* mmap(addr, length, prot, MAP_SHARED | placement, fd, offset): addr a hint, or the address with
 * placement MAP_FIXED / MAP_FIXED_NOREPLACE; NULL with *err = errno on failure. */
void *svfio_mmap_shared(int fd, size_t length, int prot, uint64_t offset, void *addr, int placement, int *err);
/* munmap(2); 0 or -errno. */
int svfio_munmap(void *addr, size_t length);
/* eventfd(initval, EFD_CLOEXEC [| EFD_NONBLOCK]); fd or -errno. */
int svfio_eventfd(unsigned int initval, int nonblock);
/* 1 if fd is an open eventfd, 0 if it is open but something else, -EBADF if not open. */
int svfio_fd_is_eventfd(int fd);
/* Adds 1 to an eventfd's counter (eventfd_signal); 0 or -errno. */
int svfio_eventfd_signal(int fd);
/* Reads and resets an eventfd's counter: the value, 0 when it was zero (non-blocking fd), or -errno. */
long long svfio_eventfd_read(int fd);

/* One VMA of the calling process, as PROCMAP_QUERY (Linux 6.11) reports it. */
struct svfio_vma {
    uint64_t start, end; /* [start, end) */
    int readable, writable;
    int secret;          /* a memfd_secret() mapping ("/secretmem (deleted)") */
};
/* /proc/self/maps opened for svfio_vma_at(): fd or -errno. Close it with svfio_vma_close(). */
int svfio_vma_open(void);
void svfio_vma_close(int mapsfd);
/* The VMA covering addr: 1 (filled in), 0 (no VMA there: a hole), or -errno when the kernel cannot
 * say (ENOTTY before Linux 6.11: read /proc/self/maps instead). */
int svfio_vma_at(int mapsfd, uint64_t addr, struct svfio_vma *vma);

/* Opens (creating, appending, close-on-exec) a trace file with a raw openat(2): fd or -errno. */
int svfio_trace_open(const char *path);
/* Writes all of buf with raw write(2) calls; 0 or -errno. */
int svfio_trace_write(int fd, const void *buf, size_t len);

/* ---- Per-thread slots -----------------------------------------------------------------------
 * Two per-thread pointers read on every model call: the C ABI's in-flight counter
 * (DefaultSubsystem) and the core's task-work context (TaskWork). pthread_getspecific() behind a
 * lazily created key costs a call and a once-check each time; an initial-exec TLS variable is one
 * %fs-relative load. The owners keep their pthread keys only for the thread-exit destructors, which
 * clear these slots before freeing what they point to. */
struct svfio_thread_slots {
    void *in_flight;
    void *task_work;
};
extern __thread struct svfio_thread_slots svfio_tls_slots __attribute__((tls_model("initial-exec")));
static inline void *svfio_tls_in_flight(void) { return svfio_tls_slots.in_flight; }
static inline void svfio_tls_set_in_flight(void *p) { svfio_tls_slots.in_flight = p; }
static inline void *svfio_tls_task_work(void) { return svfio_tls_slots.task_work; }
static inline void svfio_tls_set_task_work(void *p) { svfio_tls_slots.task_work = p; }

/* ---- uapi constants ------------------------------------------------------------------------
 * The ioctl numbers the model serves, as constants Swift can import: Swift does not expand the
 * function-like _IO() macro, so each number is named here once, from the system's <linux/vfio.h>,
 * and Kernel/UAPI.swift builds the model's ioctl table (numbers, names, trace decoders) from these.
 * Plain integer macros (VFIO_TYPE1_IOMMU, the flag bits) Swift imports from the header directly.
 * <linux/iommufd.h> is newer than some system headers (Debian 12 has none): then the kernel's own
 * definitions (include/uapi/linux/iommufd.h, v6.2+) are spelled out below. */
#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#endif
#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, 0x80)
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)
#define IOMMU_IOAS_ALLOW_IOVAS _IO(IOMMUFD_TYPE, 0x82)
#define IOMMU_IOAS_COPY _IO(IOMMUFD_TYPE, 0x83)
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, 0x84)
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, 0x85)
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, 0x86)
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, 0x87)
#define IOMMU_VFIO_IOAS _IO(IOMMUFD_TYPE, 0x88)
#endif

enum {
    /* container (vfio_fops; the iommufd emulates the first three) */
    SVFIO_GET_API_VERSION = VFIO_GET_API_VERSION,
    SVFIO_CHECK_EXTENSION = VFIO_CHECK_EXTENSION,
    SVFIO_SET_IOMMU = VFIO_SET_IOMMU,
    /* group (vfio_group_fops) */
    SVFIO_GROUP_GET_STATUS = VFIO_GROUP_GET_STATUS,
    SVFIO_GROUP_SET_CONTAINER = VFIO_GROUP_SET_CONTAINER,
    SVFIO_GROUP_UNSET_CONTAINER = VFIO_GROUP_UNSET_CONTAINER,
    SVFIO_GROUP_GET_DEVICE_FD = VFIO_GROUP_GET_DEVICE_FD,
    /* device (vfio_device_fops) */
    SVFIO_DEVICE_GET_INFO = VFIO_DEVICE_GET_INFO,
    SVFIO_DEVICE_GET_REGION_INFO = VFIO_DEVICE_GET_REGION_INFO,
    SVFIO_DEVICE_GET_IRQ_INFO = VFIO_DEVICE_GET_IRQ_INFO,
    SVFIO_DEVICE_SET_IRQS = VFIO_DEVICE_SET_IRQS,
    SVFIO_DEVICE_RESET = VFIO_DEVICE_RESET,
    SVFIO_DEVICE_GET_PCI_HOT_RESET_INFO = VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
    SVFIO_DEVICE_PCI_HOT_RESET = VFIO_DEVICE_PCI_HOT_RESET,
    SVFIO_DEVICE_QUERY_GFX_PLANE = VFIO_DEVICE_QUERY_GFX_PLANE,
    SVFIO_DEVICE_GET_GFX_DMABUF = VFIO_DEVICE_GET_GFX_DMABUF,
    SVFIO_DEVICE_IOEVENTFD = VFIO_DEVICE_IOEVENTFD,
    SVFIO_DEVICE_FEATURE = VFIO_DEVICE_FEATURE,
    /* type1 container, after SET_IOMMU (numbers shared with the device ioctls above) */
    SVFIO_IOMMU_GET_INFO = VFIO_IOMMU_GET_INFO,
    SVFIO_IOMMU_MAP_DMA = VFIO_IOMMU_MAP_DMA,
    SVFIO_IOMMU_UNMAP_DMA = VFIO_IOMMU_UNMAP_DMA,
    SVFIO_IOMMU_ENABLE = VFIO_IOMMU_ENABLE,
    SVFIO_IOMMU_DISABLE = VFIO_IOMMU_DISABLE,
    SVFIO_IOMMU_DIRTY_PAGES = VFIO_IOMMU_DIRTY_PAGES,
    /* iommufd (iommufd_fops) */
    SVFIO_IOMMU_DESTROY = IOMMU_DESTROY,
    SVFIO_IOMMU_IOAS_ALLOC = IOMMU_IOAS_ALLOC,
    SVFIO_IOMMU_IOAS_ALLOW_IOVAS = IOMMU_IOAS_ALLOW_IOVAS,
    SVFIO_IOMMU_IOAS_COPY = IOMMU_IOAS_COPY,
    SVFIO_IOMMU_IOAS_IOVA_RANGES = IOMMU_IOAS_IOVA_RANGES,
    SVFIO_IOMMU_IOAS_MAP = IOMMU_IOAS_MAP,
    SVFIO_IOMMU_IOAS_UNMAP = IOMMU_IOAS_UNMAP,
    SVFIO_IOMMU_OPTION = IOMMU_OPTION,
    SVFIO_IOMMU_VFIO_IOAS = IOMMU_VFIO_IOAS,
};

#ifdef __cplusplus
}
#endif
#endif
