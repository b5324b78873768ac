// SPDX-License-Identifier: Apache-2.0
/* vfio-firstcall: the time of the first model call of a process that does not link libswiftvfio,
 * run under LD_PRELOAD=libswiftvfio-preload.so: open("/dev/vfio/vfio") loads libswiftvfio.so (and
 * with it the Swift runtime), creates the model and loads the topology (SWIFTVFIO_TOPOLOGY).
 * Prints "FIRSTCALL\t<ms>". Built by Scripts/bench.sh with cc (a SwiftPM executable would bring
 * the Swift runtime into the process before the call); run by vfio-bench. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fd = open("/dev/vfio/vfio", O_RDWR);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (fd < 0) {
        perror("vfio-firstcall: open /dev/vfio/vfio");
        return 1;
    }
    printf("FIRSTCALL\t%.3f\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return 0;
}
