// SPDX-License-Identifier: Apache-2.0
/* A topology that does not load (or a library that cannot be found) must not crash the client:
 * the first model open fails with ENOENT, the reason goes to stderr (Scripts/test-preload.sh
 * checks the message), and everything else keeps working. With no model loaded, the module files
 * (/sys/module/vfio*) are the host's, so a client's module check fails as on a host without VFIO. */
#include "tp.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* stat's answer from the host itself (a raw system call: no interposer sees it): 0 or an errno. */
static int host_stat(const char *path) {
    struct stat st;
    return syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0 ? 0 : errno;
}

int main(void) {
    tp_require_preload();
    struct stat st;
    FAILS(open("/dev/vfio/vfio", O_RDWR), ENOENT);
    FAILS(open("/dev/vfio/26", O_RDWR), ENOENT);
    FAILS(open("/dev/iommu", O_RDWR), ENOENT);
    FAILS(stat("/dev/vfio/26", &st), ENOENT);
    static const char *const modules[] = { "/sys/module/vfio", "/sys/module/vfio_pci",
                                           "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode" };
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
        int want = host_stat(modules[i]);
        errno = 0;
        int r = stat(modules[i], &st);
        CHECK(want ? r == -1 && errno == want : r == 0, "stat(%s) = %d %s; the host says %s", modules[i], r,
              tp_errname(errno), tp_errname(want));
    }
    /* Ordinary files still work. */
    int fd = OK(open("/dev/null", O_RDONLY));
    char b;
    EQ(read(fd, &b, 1), 0);
    OK(close(fd));
    return tp_done();
}
