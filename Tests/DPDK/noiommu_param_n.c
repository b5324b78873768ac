// SPDX-License-Identifier: Apache-2.0
/* A test fixture for Tests/DPDK/testpmd_vfio.py, stacked in front of libswiftvfio-preload.so in the
 * no-IOMMU probe runs only: LD_PRELOAD="noiommu_param_n.so libswiftvfio-preload.so".
 *
 * Why: with /sys/module/vfio/parameters/enable_unsafe_noiommu_mode reading "Y", DPDK insists on
 * IOVA-as-PA for a VFIO device ("Expecting 'PA' IOVA mode but current mode is 'VA'"), as it does on
 * a real kernel, and --no-huge cannot give physical addresses. The model's answer is right (the
 * test checks DPDK sees it in a run of its own); to let DPDK probe in VA mode anyway, this fixture
 * presents the parameter as "N" to DPDK, after checking the model's own answer on every open:
 *
 *   open(parameter) -> the next open (the interposer, which answers from the model) -> read it;
 *   "Y\n" -> stderr "noiommu_param_n: the model says Y; DPDK is shown N", return a descriptor
 *            reading "N\n";
 *   anything else -> stderr "noiommu_param_n: the model says <text>", return the model's own
 *            descriptor unchanged (the test then fails on that line).
 *
 * Nothing else is touched: every other path and call goes straight on to the interposer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PARAM "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"

typedef int (*open_fn)(const char *, int, ...);

static int shown_n(int model_fd) {
    char text[8] = { 0 };
    ssize_t n = pread(model_fd, text, sizeof text - 1, 0);
    if (n != 2 || strcmp(text, "Y\n") != 0) {
        fprintf(stderr, "noiommu_param_n: the model says %s\n", n < 0 ? "nothing (read failed)" : text);
        return model_fd;
    }
    int fd = memfd_create("enable_unsafe_noiommu_mode", MFD_CLOEXEC);
    if (fd < 0 || write(fd, "N\n", 2) != 2 || lseek(fd, 0, SEEK_SET) != 0) {
        fprintf(stderr, "noiommu_param_n: cannot make the N file\n");
        if (fd >= 0) close(fd);
        return model_fd;
    }
    close(model_fd);
    fprintf(stderr, "noiommu_param_n: the model says Y; DPDK is shown N\n");
    return fd;
}

#define WRAP(name)                                                                                 \
    int name(const char *path, int flags, ...) {                                                   \
        mode_t mode = 0;                                                                           \
        if (__OPEN_NEEDS_MODE(flags)) {                                                            \
            va_list ap;                                                                            \
            va_start(ap, flags);                                                                   \
            mode = (mode_t)va_arg(ap, int);                                                        \
            va_end(ap);                                                                            \
        }                                                                                          \
        static open_fn next;                                                                       \
        if (!next) next = (open_fn)dlsym(RTLD_NEXT, #name);                                        \
        int fd = next(path, flags, mode);                                                          \
        if (fd >= 0 && strcmp(path, PARAM) == 0) fd = shown_n(fd);                                 \
        return fd;                                                                                 \
    }
WRAP(open)
WRAP(open64)
