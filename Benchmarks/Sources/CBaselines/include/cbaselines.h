// SPDX-License-Identifier: Apache-2.0
/* CBaselines: what libswiftvfio is measured against, and the one clock both sides use.
 *
 * The C model ("cm_") is the library's logic for the measured calls written in plain C with
 * pthread mutexes, as a C implementation of the same design would be:
 *  - a call in flight is counted (two sequentially consistent atomic adds, the model-replacement
 *    handshake every libswiftvfio entry point does);
 *  - handles are tokens (tag, kind, generation, slot index) checked against a table under a
 *    pthread mutex, as libswiftvfio's HandleTable does, so a forged or stale pointer is refused;
 *  - fds are looked up in an fd table under a pthread mutex and the file referenced for the call;
 *  - GROUP_GET_STATUS copies in, checks argsz, takes group_lock (and the IOMMU group's mutex for
 *    viability) and copies out, in the kernel's order.
 * The one simplification in the baseline's favour: user memory is copied with memcpy (no EFAULT
 * guard), where libswiftvfio uses its guarded copy.
 */
#ifndef CBASELINES_H
#define CBASELINES_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- clock and loops ------------------------------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t cb_now_ns(void);

/* A timed body: runs `iters` operations on `ctx`. */
typedef void (*cb_body)(void *ctx, long iters);

/* Iterations of `body` that take about `target_ns`. */
long cb_calibrate(cb_body body, void *ctx, uint64_t target_ns);

/* Times `a` and `b` alternately, `reps` times each with `iters` operations, and stores the best
 * (lowest) ns per operation of each: both sides see the same clock, load and frequency. */
void cb_compare(cb_body a, void *actx, cb_body b, void *bctx, long iters, int reps, double *a_ns, double *b_ns);

/* Best ns per operation of `body` over `reps` runs of `iters`. */
double cb_measure(cb_body body, void *ctx, long iters, int reps);

/* Runs `body(ctxs[i], iters)` on `n` threads at once (started together) and returns the wall time
 * in ns from the common start to the last thread's end. */
uint64_t cb_run_threads(int n, cb_body body, void **ctxs, long iters);

/* A body with no shared state at all (integer work on locals): what two threads can do on this
 * machine at this moment, the reference for the scaling figures. */
void cb_independent_work(void *ctx, long iters);

/* Starts and joins a thread that does nothing, so the process is multi-threaded from here on,
 * as the programs that use the library are. (glibc skips the lock prefix of its mutexes' atomic
 * instructions while a process has only ever had one thread: a state no VMM runs in, which would
 * make the baseline's mutexes artificially cheap.) */
void cb_become_multithreaded(void);

/* Resident set size of this process in bytes (/proc/self/statm). */
uint64_t cb_rss_bytes(void);

/* Keeps a value alive for the optimizer. */
void cb_sink(long v);

/* ---- the C model ---------------------------------------------------------------------------- */

struct cm_file;
struct cm_device;

/* Builds the C model: `ngroups` groups (ids 0...), each with one device, a file per group open at
 * fds returned through `fds` and a handle (token) per group file and device. Returns 0. */
int cm_setup(int ngroups, int *fds, uintptr_t *file_tokens, uintptr_t *device_tokens);

/* The file kAPI, by token (as C passes a struct file *). */
bool cm_file_is_group(uintptr_t file);
bool cm_file_has_dev(uintptr_t file, uintptr_t device);
bool cm_file_enforced_coherent(uintptr_t file);

/* ioctl(2) on a C-model fd: GROUP_GET_STATUS; -1 with errno otherwise. */
int cm_ioctl(int fd, unsigned long request, unsigned long arg);

#ifdef __cplusplus
}
#endif

#endif
