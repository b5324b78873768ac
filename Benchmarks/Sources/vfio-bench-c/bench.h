// SPDX-License-Identifier: Apache-2.0
/* vfio-bench-c's shared declarations (main.c: the C ABI side; preload.c: under the interposer). */
#ifndef VFIO_BENCH_C_H
#define VFIO_BENCH_C_H
#define _GNU_SOURCE
#include <cbaselines.h>
#include <swiftvfio.h>

#include <linux/vfio.h>
#include <stdint.h>

/* One timed run's length and the repetitions (VFIO_BENCH_QUICK shortens both). */
extern uint64_t target_ns;
extern int reps;

/* One result: "ROW\t<id>\t<name>\t<a>\t<b>\t<kind>\t<target>" (vfio-bench's main.swift reads it). */
void row(const char *id, const char *name, double a, double b, const char *kind, double target);
/* A result that could not be measured, and why. */
void row_na(const char *id, const char *name, const char *why);
void die(const char *what) __attribute__((noreturn));

/* One caller's state. Aligned and padded to 128 bytes (a cache line and the pair the prefetcher
 * fetches with it): two threads' contexts side by side on the stack would otherwise share a line,
 * and the benchmark would measure its own false sharing (it did: 0.7-2.0x depending on layout). */
struct ioctl_ctx {
    int fd;
    struct vfio_group_status st __attribute__((aligned(8))); /* as a stack variable usually is */
    int (*ioctl_fn)(int, unsigned long, unsigned long);
} __attribute__((aligned(128)));

/* n GROUP_GET_STATUS through c->ioctl_fn. */
void run_ioctl(void *p, long n);
/* ioctl() as the program calls it: under LD_PRELOAD, the interposer's. */
int plain_ioctl(int fd, unsigned long request, unsigned long arg);
/* The real system call, whatever is preloaded. */
int raw_ioctl(int fd, unsigned long request, unsigned long arg);

int mode_preload(void);
#endif
