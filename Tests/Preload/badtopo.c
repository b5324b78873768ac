// SPDX-License-Identifier: Apache-2.0
/* A topology that does not load (or a library that cannot be found) must not crash the client:
 * the first model open fails with ENOENT, the reason goes to stderr (Scripts/test-preload.sh
 * checks the message), and everything else keeps working. */
#include "tp.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    tp_require_preload();
    struct stat st;
    FAILS(open("/dev/vfio/vfio", O_RDWR), ENOENT);
    FAILS(open("/dev/vfio/26", O_RDWR), ENOENT);
    FAILS(open("/dev/iommu", O_RDWR), ENOENT);
    FAILS(stat("/dev/vfio/26", &st), ENOENT);
    /* Ordinary files still work. */
    int fd = OK(open("/dev/null", O_RDONLY));
    char b;
    EQ(read(fd, &b, 1), 0);
    OK(close(fd));
    return tp_done();
}
