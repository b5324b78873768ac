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

int svfio_placeholder_fd(const char *name, int cloexec) {
    int fd = memfd_create(name, cloexec ? MFD_CLOEXEC : 0);
    return fd < 0 ? -errno : fd;
}

int svfio_close_fd(int fd) { return close(fd) < 0 ? -errno : 0; }

int svfio_dup_fd(int fd, int minfd, int cloexec) {
    int r = fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, minfd);
    return r < 0 ? -errno : r;
}

int svfio_fd_identity(int fd, uint64_t *dev, uint64_t *ino) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
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
    int fl = fcntl(fd, F_GETFL);
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
