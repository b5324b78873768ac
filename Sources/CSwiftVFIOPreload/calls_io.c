// SPDX-License-Identifier: Apache-2.0
/* ioctl, read/write, pread/pwrite (and their fortified forms), mmap: on a model fd, the model's
 * (the model dispatches on the kind of file: group, container, iommufd, device; VFIO ioctl numbers
 * collide across kinds). No system call and no lock on the way: the routing rule of preload.h. */
#include "preload.h"

EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    if (ROUTED_FD(fd)) return LIB_SYSCALL(r_ < 0, lib.ioctl(fd, request, arg));
    int kvm_r; /* the KVM family: KVM_CREATE_DEVICE(VFIO) on a VM fd, and kvm-vfio device fds */
    if (UNLIKELY(kvm_hook_wants_ioctl(request)) && kvm_hook_ioctl(fd, request, arg, &kvm_r)) return kvm_r;
    return CALL_REAL(-1, ioctl, fd, request, arg);
}

EXPORT ssize_t read(int fd, void *buf, size_t n) {
    if (ROUTED_FD(fd)) return LIB_SYSCALL(r_ < 0, lib.read(fd, buf, n));
    return CALL_REAL(-1, read, fd, buf, n);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
    if (!ROUTED_FD(fd)) return CALL_REAL(-1, __read_chk, fd, buf, n, buflen);
    if (n > buflen) __chk_fail();
    return LIB_SYSCALL(r_ < 0, lib.read(fd, buf, n));
}

EXPORT ssize_t write(int fd, const void *buf, size_t n) {
    if (ROUTED_FD(fd)) return LIB_SYSCALL(r_ < 0, lib.write(fd, buf, n));
    return CALL_REAL(-1, write, fd, buf, n);
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off) {
    if (ROUTED_FD(fd)) return LIB_SYSCALL(r_ < 0, lib.pread(fd, buf, n, off));
    return CALL_REAL(-1, pread, fd, buf, n, off);
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off) {
    if (ROUTED_FD(fd)) return LIB_SYSCALL(r_ < 0, lib.pread(fd, buf, n, off));
    return CALL_REAL(-1, pread64, fd, buf, n, off);
}

EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen) {
    if (!ROUTED_FD(fd)) return CALL_REAL(-1, __pread_chk, fd, buf, n, off, buflen);
    if (n > buflen) __chk_fail();
    return LIB_SYSCALL(r_ < 0, lib.pread(fd, buf, n, off));
}

EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen) {
    if (!ROUTED_FD(fd)) return CALL_REAL(-1, __pread64_chk, fd, buf, n, off, buflen);
    if (n > buflen) __chk_fail();
    return LIB_SYSCALL(r_ < 0, lib.pread(fd, buf, n, off));
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (ROUTED_FD(fd)) return LIB_SYSCALL(r_ < 0, lib.pwrite(fd, buf, n, off));
    return CALL_REAL(-1, pwrite, fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    if (ROUTED_FD(fd)) return LIB_SYSCALL(r_ < 0, lib.pwrite(fd, buf, n, off));
    return CALL_REAL(-1, pwrite64, fd, buf, n, off);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (!(flags & MAP_ANONYMOUS) && ROUTED_FD(fd)) return LIB_SYSCALL(r_ == MAP_FAILED, lib.mmap(addr, len, prot, flags, fd, off));
    return CALL_REAL(MAP_FAILED, mmap, addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
    if (!(flags & MAP_ANONYMOUS) && ROUTED_FD(fd)) return LIB_SYSCALL(r_ == MAP_FAILED, lib.mmap(addr, len, prot, flags, fd, off));
    return CALL_REAL(MAP_FAILED, mmap64, addr, len, prot, flags, fd, off);
}
