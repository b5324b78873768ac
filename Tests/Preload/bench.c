// SPDX-License-Identifier: Apache-2.0
/* The interposer's cost on fds that are not the model's: times open, ioctl, close (and read,
 * stat) of ordinary files. Scripts/test-preload.sh runs it without and with LD_PRELOAD, rounds
 * alternating, and prints both. Each figure is the best of several rounds, in nanoseconds per
 * call, including the system call itself.
 *   bench            as any program
 *   bench model      with a model fd open first (under the preload: the model is loaded and the fd
 *                    table is in use, the fast path's worst case) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define ROUNDS 40
#define CALLS 20000

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static double best(double a, double b) { return a < b ? a : b; }

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "model") == 0) (void)open("/dev/vfio/vfio", O_RDWR);
    double t_open = 1e30, t_close = 1e30, t_ioctl = 1e30, t_read = 1e30, t_stat = 1e30;
    int fds[BATCH], p[2];
    if (pipe(p) != 0) return 1;
    int null = open("/dev/null", O_RDONLY);
    for (int r = 0; r < ROUNDS; r++) {
        /* open and close in batches, so each is timed without the other */
        double t0 = now();
        for (int i = 0; i < BATCH; i++) fds[i] = open("/dev/null", O_RDONLY);
        double t1 = now();
        for (int i = 0; i < BATCH; i++) close(fds[i]);
        double t2 = now();
        t_open = best(t_open, (t1 - t0) / BATCH);
        t_close = best(t_close, (t2 - t1) / BATCH);

        int n;
        t0 = now();
        for (int i = 0; i < CALLS / 10; i++) ioctl(p[0], FIONREAD, &n);
        t1 = now();
        t_ioctl = best(t_ioctl, (t1 - t0) / (CALLS / 10));

        char b;
        t0 = now();
        for (int i = 0; i < CALLS / 10; i++) (void)!read(null, &b, 1);
        t1 = now();
        t_read = best(t_read, (t1 - t0) / (CALLS / 10));

        struct stat st;
        t0 = now();
        for (int i = 0; i < CALLS / 20; i++) stat("/usr/lib/x86_64-linux-gnu/libc.so.6", &st);
        t1 = now();
        t_stat = best(t_stat, (t1 - t0) / (CALLS / 20));
    }
    printf("open %.1f\nioctl %.1f\nclose %.1f\nread %.1f\nstat %.1f\n", t_open, t_ioctl, t_close, t_read, t_stat);
    return 0;
}
