// SPDX-License-Identifier: Apache-2.0
/* vfio-bench-c: the C side of the benchmarks. Links libswiftvfio.so as a C program does and times
 * its exported functions against the C model (CBaselines) in the same process, with the same
 * clock, alternating the two sides.
 *
 *   vfio-bench-c cabi      C ABI queries, GET_STATUS through swiftvfio_ioctl, two-thread scaling
 *   vfio-bench-c preload   run under LD_PRELOAD=libswiftvfio-preload.so (preload.c): the routed
 *                          calls against the system calls, the interposer's cost on other fds
 *
 * Output: one line per result, "ROW\t<id>\t<name>\t<a ns>\t<b ns>\t<kind>\t<target>" (see
 * vfio-bench's main.swift), read by vfio-bench, which prints the table.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

uint64_t target_ns = 20 * 1000 * 1000; /* one timed run: about 20 ms */
int reps = 9;

void row(const char *id, const char *name, double a, double b, const char *kind, double target) {
    printf("ROW\t%s\t%s\t%.2f\t%.2f\t%s\t%.3f\n", id, name, a, b, kind, target);
    fflush(stdout);
}

void row_na(const char *id, const char *name, const char *why) {
    printf("NA\t%s\t%s\t%s\n", id, name, why);
    fflush(stdout);
}

void die(const char *what) {
    fprintf(stderr, "vfio-bench-c: %s: %s (%s)\n", what, strerror(errno),
            swiftvfio_last_error() ? swiftvfio_last_error() : "-");
    exit(1);
}

/* ---- bodies ------------------------------------------------------------------------------- */

struct kapi_ctx {
    struct file *file;
    struct vfio_device *device;
    uintptr_t cfile, cdevice;
};

static void lib_is_group(void *p, long n) {
    struct kapi_ctx *c = p;
    long acc = 0;
    for (long i = 0; i < n; i++) acc += vfio_file_is_group(c->file);
    cb_sink(acc);
}
static void cm_is_group(void *p, long n) {
    struct kapi_ctx *c = p;
    long acc = 0;
    for (long i = 0; i < n; i++) acc += cm_file_is_group(c->cfile);
    cb_sink(acc);
}
static void lib_has_dev(void *p, long n) {
    struct kapi_ctx *c = p;
    long acc = 0;
    for (long i = 0; i < n; i++) acc += vfio_file_has_dev(c->file, c->device);
    cb_sink(acc);
}
static void cm_has_dev(void *p, long n) {
    struct kapi_ctx *c = p;
    long acc = 0;
    for (long i = 0; i < n; i++) acc += cm_file_has_dev(c->cfile, c->cdevice);
    cb_sink(acc);
}
static void lib_coherent(void *p, long n) {
    struct kapi_ctx *c = p;
    long acc = 0;
    for (long i = 0; i < n; i++) acc += vfio_file_enforced_coherent(c->file);
    cb_sink(acc);
}
static void cm_coherent(void *p, long n) {
    struct kapi_ctx *c = p;
    long acc = 0;
    for (long i = 0; i < n; i++) acc += cm_file_enforced_coherent(c->cfile);
    cb_sink(acc);
}

void run_ioctl(void *p, long n) {
    struct ioctl_ctx *c = p;
    long acc = 0;
    for (long i = 0; i < n; i++) {
        c->st.argsz = sizeof c->st;
        acc += c->ioctl_fn(c->fd, VFIO_GROUP_GET_STATUS, (unsigned long)&c->st);
    }
    cb_sink(acc + (long)c->st.flags);
}

int plain_ioctl(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }
int raw_ioctl(int fd, unsigned long request, unsigned long arg) { return (int)syscall(SYS_ioctl, fd, request, arg); }

/* ---- cabi ---------------------------------------------------------------------------------- */

/* Two threads (each on its own context) against one: best wall time per operation of each. */
static void threads_1v2(cb_body body, void *a, void *b, double *t1, double *t2) {
    void *one[1] = { a }, *two[2] = { a, b };
    long iters = cb_calibrate(body, a, 4 * target_ns);
    double best1 = 1e300, best2 = 1e300;
    for (int r = 0; r < reps; r++) {
        double x1 = (double)cb_run_threads(1, body, one, iters) / (double)iters;
        double x2 = (double)cb_run_threads(2, body, two, iters) / (double)(2 * iters);
        if (x1 < best1) best1 = x1;
        if (x2 < best2) best2 = x2;
    }
    *t1 = best1;
    *t2 = best2;
}

static void scaling(const char *id, const char *name, int fd_a, int fd_b,
                    int (*fn)(int, unsigned long, unsigned long)) {
    struct ioctl_ctx a = { .fd = fd_a, .ioctl_fn = fn }, b = { .fd = fd_b, .ioctl_fn = fn };
    double t1, t2;
    threads_1v2(run_ioctl, &a, &b, &t1, &t2);
    row(id, name, t2, t1, "speedup", 1.6);
}

static int mode_cabi(void) {
    /* GET_STATUS on a viable group without a container (the viability check a client makes
     * first): group 28 of the built-in topology. */
    int fd28 = swiftvfio_open("/dev/vfio/28", O_RDWR);
    int fd26 = swiftvfio_open("/dev/vfio/26", O_RDWR);
    if (fd28 < 0 || fd26 < 0) die("swiftvfio_open group");

    int cfds[2];
    uintptr_t cfiles[2], cdevs[2];
    cm_setup(2, cfds, cfiles, cdevs);

    struct ioctl_ctx lib = { .fd = fd28, .ioctl_fn = swiftvfio_ioctl };
    struct ioctl_ctx cm = { .fd = cfds[0], .ioctl_fn = cm_ioctl };
    lib.st.argsz = cm.st.argsz = sizeof lib.st;
    if (swiftvfio_ioctl(fd28, VFIO_GROUP_GET_STATUS, (unsigned long)&lib.st) != 0) die("GET_STATUS");
    if (cm_ioctl(cfds[0], VFIO_GROUP_GET_STATUS, (unsigned long)&cm.st) != 0) die("cm GET_STATUS");
    if (lib.st.flags != cm.st.flags) fprintf(stderr, "vfio-bench-c: flags differ: %u vs %u\n", lib.st.flags, cm.st.flags);
    long iters = cb_calibrate(run_ioctl, &lib, target_ns);
    double a, b;
    cb_compare(run_ioctl, &lib, run_ioctl, &cm, iters, reps, &a, &b);
    row("status_cabi", "GROUP_GET_STATUS: swiftvfio_ioctl vs C model", a, b, "le", 1.2);

    /* Scaling: two threads, each on its own group, against one thread. */
    scaling("scale_cabi", "2 threads, distinct groups: swiftvfio_ioctl GET_STATUS (speedup)", fd26, fd28, swiftvfio_ioctl);
    scaling("scale_cm", "2 threads, distinct groups: C model GET_STATUS (speedup; its fd table and call counter are shared)", cfds[0], cfds[1], cm_ioctl);
    double t1, t2;
    threads_1v2(cb_independent_work, NULL, NULL, &t1, &t2);
    row("scale_ideal", "2 threads sharing nothing (speedup: what the machine gives now)", t2, t1, "speedup", 1.6);

    /* The file kAPI on group 26 with a device opened through a container. */
    int cfd = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    if (cfd < 0) die("open container");
    if (swiftvfio_ioctl(fd26, VFIO_GROUP_SET_CONTAINER, (unsigned long)&cfd) != 0) die("SET_CONTAINER");
    if (swiftvfio_ioctl(cfd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) != 0) die("SET_IOMMU");
    int dfd = swiftvfio_ioctl(fd26, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0");
    if (dfd < 0) die("GET_DEVICE_FD");
    struct kapi_ctx k = { 0 };
    k.file = swiftvfio_fget(fd26);
    struct file *dfile = swiftvfio_fget(dfd);
    if (k.file == NULL || dfile == NULL) die("swiftvfio_fget");
    k.device = swiftvfio_file_device(dfile);
    if (k.device == NULL) die("swiftvfio_file_device");
    k.cfile = cfiles[0];
    k.cdevice = cdevs[0];
    if (!vfio_file_is_group(k.file) || !vfio_file_has_dev(k.file, k.device) || !vfio_file_enforced_coherent(k.file))
        die("kAPI answers");

    iters = cb_calibrate(lib_is_group, &k, target_ns);
    cb_compare(lib_is_group, &k, cm_is_group, &k, iters, reps, &a, &b);
    row("is_group", "vfio_file_is_group: C ABI vs C model", a, b, "le", 1.1);
    iters = cb_calibrate(lib_has_dev, &k, target_ns);
    cb_compare(lib_has_dev, &k, cm_has_dev, &k, iters, reps, &a, &b);
    row("has_dev", "vfio_file_has_dev: C ABI vs C model", a, b, "le", 1.1);
    iters = cb_calibrate(lib_coherent, &k, target_ns);
    cb_compare(lib_coherent, &k, cm_coherent, &k, iters, reps, &a, &b);
    row("coherent", "vfio_file_enforced_coherent: C ABI vs C model", a, b, "le", 1.1);

    swiftvfio_fput(dfile);
    swiftvfio_fput(k.file);
    swiftvfio_close(dfd);
    swiftvfio_close(fd26);
    swiftvfio_close(fd28);
    swiftvfio_close(cfd);
    return 0;
}

/* For profiling (valgrind --tool=callgrind): only the library side of one comparison, n times. */
static int mode_loop(const char *what, long n) {
    int fd28 = swiftvfio_open("/dev/vfio/28", O_RDWR);
    int fd26 = swiftvfio_open("/dev/vfio/26", O_RDWR);
    int cfd = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    if (fd28 < 0 || fd26 < 0 || cfd < 0) die("swiftvfio_open");
    struct ioctl_ctx st = { .fd = fd28, .ioctl_fn = swiftvfio_ioctl };
    if (strcmp(what, "status") == 0) { run_ioctl(&st, n); return 0; }
    if (strncmp(what, "cm_", 3) == 0) {
        int cfds[1];
        uintptr_t cfiles[1], cdevs[1];
        cm_setup(1, cfds, cfiles, cdevs);
        struct ioctl_ctx cm = { .fd = cfds[0], .ioctl_fn = cm_ioctl };
        struct kapi_ctx ck = { .cfile = cfiles[0], .cdevice = cdevs[0] };
        if (strcmp(what, "cm_status") == 0) run_ioctl(&cm, n);
        else if (strcmp(what, "cm_is_group") == 0) cm_is_group(&ck, n);
        else if (strcmp(what, "cm_has_dev") == 0) cm_has_dev(&ck, n);
        else if (strcmp(what, "cm_coherent") == 0) cm_coherent(&ck, n);
        else { fprintf(stderr, "loop: cm_status|cm_is_group|cm_has_dev|cm_coherent\n"); return 2; }
        return 0;
    }
    if (swiftvfio_ioctl(fd26, VFIO_GROUP_SET_CONTAINER, (unsigned long)&cfd) != 0) die("SET_CONTAINER");
    if (swiftvfio_ioctl(cfd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) != 0) die("SET_IOMMU");
    int dfd = swiftvfio_ioctl(fd26, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0");
    if (dfd < 0) die("GET_DEVICE_FD");
    struct kapi_ctx k = { 0 };
    k.file = swiftvfio_fget(fd26);
    k.device = swiftvfio_file_device(swiftvfio_fget(dfd));
    if (strcmp(what, "is_group") == 0) lib_is_group(&k, n);
    else if (strcmp(what, "has_dev") == 0) lib_has_dev(&k, n);
    else if (strcmp(what, "coherent") == 0) lib_coherent(&k, n);
    else { fprintf(stderr, "loop: status|is_group|has_dev|coherent (cm_<what>: the C model's side)\n"); return 2; }
    return 0;
}

/* Two threads on groups 26 and 28, n GET_STATUS each (profiling the scaling). */
static int mode_loop2(long n) {
    int fd26 = swiftvfio_open("/dev/vfio/26", O_RDWR), fd28 = swiftvfio_open("/dev/vfio/28", O_RDWR);
    if (fd26 < 0 || fd28 < 0) die("swiftvfio_open");
    struct ioctl_ctx a = { .fd = fd26, .ioctl_fn = swiftvfio_ioctl }, b = { .fd = fd28, .ioctl_fn = swiftvfio_ioctl };
    void *two[2] = { &a, &b };
    printf("%.1f ns/op aggregate\n", (double)cb_run_threads(2, run_ioctl, two, n) / (double)(2 * n));
    return 0;
}

int main(int argc, char **argv) {
    cb_become_multithreaded();
    const char *quick = getenv("VFIO_BENCH_QUICK");
    if (quick && *quick && *quick != '0') {
        target_ns = 5 * 1000 * 1000;
        reps = 3;
    }
    if (argc > 1 && strcmp(argv[1], "cabi") == 0) return mode_cabi();
    if (argc > 1 && strcmp(argv[1], "preload") == 0) return mode_preload();
    if (argc > 3 && strcmp(argv[1], "loop") == 0) return mode_loop(argv[2], atol(argv[3]));
    if (argc > 2 && strcmp(argv[1], "loop2") == 0) return mode_loop2(atol(argv[2]));
    fprintf(stderr, "usage: vfio-bench-c cabi|preload|loop WHAT N|loop2 N\n");
    return 2;
}
