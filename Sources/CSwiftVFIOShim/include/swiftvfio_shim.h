/* CSwiftVFIOShim: the few things Swift cannot express or should not do itself.
 *
 * - Guarded user-memory copies: the model's counterpart of the kernel's copy_{from,to}_user
 *   exception-table fixups. A bad user pointer gives -EFAULT, never a SIGSEGV/SIGBUS.
 * - Real placeholder descriptors (memfd) backing model fds.
 * - capget(2) for "capable(CAP_SYS_RAWIO)" at the moment the kernel would ask.
 * - The uapi constants, taken from the system's <linux/vfio.h> so they are checked against it.
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
/* mmap(NULL, length, prot, MAP_SHARED, fd, offset); NULL with *err = errno on failure. */
void *svfio_mmap_shared(int fd, size_t length, int prot, uint64_t offset, int *err);
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

/* Opens (creating, appending, close-on-exec) a trace file with a raw openat(2): fd or -errno. */
int svfio_trace_open(const char *path);
/* Writes all of buf with raw write(2) calls; 0 or -errno. */
int svfio_trace_write(int fd, const void *buf, size_t len);

/* ---- uapi constants (checked against the system header) ---------------------------------- */
static const unsigned long SVFIO_GET_API_VERSION = VFIO_GET_API_VERSION;
static const unsigned long SVFIO_CHECK_EXTENSION = VFIO_CHECK_EXTENSION;
static const unsigned long SVFIO_SET_IOMMU = VFIO_SET_IOMMU;
static const unsigned long SVFIO_GROUP_GET_STATUS = VFIO_GROUP_GET_STATUS;
static const unsigned long SVFIO_GROUP_SET_CONTAINER = VFIO_GROUP_SET_CONTAINER;
static const unsigned long SVFIO_GROUP_UNSET_CONTAINER = VFIO_GROUP_UNSET_CONTAINER;
static const unsigned long SVFIO_GROUP_GET_DEVICE_FD = VFIO_GROUP_GET_DEVICE_FD;
static const unsigned long SVFIO_DEVICE_GET_INFO = VFIO_DEVICE_GET_INFO;
static const unsigned long SVFIO_DEVICE_GET_REGION_INFO = VFIO_DEVICE_GET_REGION_INFO;
static const unsigned long SVFIO_DEVICE_GET_IRQ_INFO = VFIO_DEVICE_GET_IRQ_INFO;
static const unsigned long SVFIO_DEVICE_SET_IRQS = VFIO_DEVICE_SET_IRQS;
static const unsigned long SVFIO_DEVICE_RESET = VFIO_DEVICE_RESET;
static const unsigned long SVFIO_IOMMU_GET_INFO = VFIO_IOMMU_GET_INFO;
static const unsigned long SVFIO_IOMMU_MAP_DMA = VFIO_IOMMU_MAP_DMA;
static const unsigned long SVFIO_IOMMU_UNMAP_DMA = VFIO_IOMMU_UNMAP_DMA;
static const unsigned long SVFIO_IOMMU_DIRTY_PAGES = VFIO_IOMMU_DIRTY_PAGES;
static const unsigned long SVFIO_DEVICE_FEATURE = VFIO_DEVICE_FEATURE;
static const unsigned int SVFIO_API_VERSION = VFIO_API_VERSION;
static const unsigned int SVFIO_GROUP_FLAGS_VIABLE = VFIO_GROUP_FLAGS_VIABLE;
static const unsigned int SVFIO_GROUP_FLAGS_CONTAINER_SET = VFIO_GROUP_FLAGS_CONTAINER_SET;

#ifdef __cplusplus
}
#endif
#endif
