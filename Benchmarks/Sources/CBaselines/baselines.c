// SPDX-License-Identifier: Apache-2.0
/* The C baselines (see cbaselines.h) and the shared clock. */
#define _GNU_SOURCE
#include "cbaselines.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- clock and loops ------------------------------------------------------------------------ */

uint64_t cb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile long sink;
void cb_sink(long v) { sink += v; }

long cb_calibrate(cb_body body, void *ctx, uint64_t target_ns) {
    long iters = 1;
    for (;;) {
        uint64_t t0 = cb_now_ns();
        body(ctx, iters);
        uint64_t dt = cb_now_ns() - t0;
        if (dt >= target_ns / 8 || iters >= (1L << 40)) {
            double per = dt > 0 ? (double)dt / (double)iters : 1.0;
            long n = (long)((double)target_ns / per);
            return n < 1 ? 1 : n;
        }
        iters *= 4;
    }
}

static double run_once(cb_body body, void *ctx, long iters) {
    uint64_t t0 = cb_now_ns();
    body(ctx, iters);
    return (double)(cb_now_ns() - t0) / (double)iters;
}

double cb_measure(cb_body body, void *ctx, long iters, int reps) {
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        double t = run_once(body, ctx, iters);
        if (t < best) best = t;
    }
    return best;
}

void cb_compare(cb_body a, void *actx, cb_body b, void *bctx, long iters, int reps, double *a_ns, double *b_ns) {
    double ba = 1e300, bb = 1e300;
    for (int r = 0; r < reps; r++) {
        double ta = run_once(a, actx, iters);
        double tb = run_once(b, bctx, iters);
        if (ta < ba) ba = ta;
        if (tb < bb) bb = tb;
    }
    *a_ns = ba;
    *b_ns = bb;
}

struct thread_arg {
    cb_body body;
    void *ctx;
    long iters;
    atomic_int *ready;
    atomic_int *go;
};

static void *thread_main(void *p) {
    struct thread_arg *a = p;
    atomic_fetch_add(a->ready, 1);
    while (!atomic_load_explicit(a->go, memory_order_acquire)) { }
    a->body(a->ctx, a->iters);
    return NULL;
}

uint64_t cb_run_threads(int n, cb_body body, void **ctxs, long iters) {
    pthread_t tids[64];
    struct thread_arg args[64];
    atomic_int ready = 0, go = 0;
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++) {
        args[i] = (struct thread_arg){ body, ctxs[i], iters, &ready, &go };
        pthread_create(&tids[i], NULL, thread_main, &args[i]);
    }
    while (atomic_load(&ready) < n) sched_yield();
    uint64_t t0 = cb_now_ns();
    atomic_store_explicit(&go, 1, memory_order_release);
    for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
    return cb_now_ns() - t0;
}

void cb_independent_work(void *ctx, long iters) {
    (void)ctx;
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < iters; i++) {
        for (int k = 0; k < 16; k++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; }
    }
    cb_sink((long)x);
}

static void *nothing(void *p) { return p; }

void cb_become_multithreaded(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0) pthread_join(t, NULL);
}

uint64_t cb_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2) return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- the C model ---------------------------------------------------------------------------- */

enum cm_kind { CM_GROUP = 1, CM_CONTAINER, CM_DEVICE_FILE };
enum cm_handle_kind { CM_H_FILE = 1, CM_H_VFIO_DEVICE = 2 };

struct cm_iommu_group {
    pthread_mutex_t mutex;
    int owner_cnt;
};

struct cm_group {
    pthread_mutex_t group_lock;
    pthread_mutex_t device_lock;
    struct cm_iommu_group *iommu_group;
    void *container;
    void *iommufd;
    int container_users;
    int fake; /* NO_IOMMU / EMULATED: no IOMMU driver enforces coherency */
    struct cm_device *devices;
};

struct cm_device {
    struct cm_group *group;
    bool enforce_cache_coherency;
    atomic_long refs;
    struct cm_device *next;
};

struct cm_file {
    int kind;
    atomic_long refs;
    void *private_data;
};

/* Handles: the same token layout as libswiftvfio (tag 0x5f in bits 63..56, kind 55..52,
 * generation 51..28, index 27..4). */
#define CM_TAG ((uintptr_t)0x5f << 56)
#define CM_GEN_MASK 0xffffffu
#define CM_MAX_SLOTS 4096

struct cm_slot {
    uint32_t generation;
    int kind;
    void *object;
    int crefs;
};

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cm_slot slots[CM_MAX_SLOTS];
static int nslots;

/* The fd table. */
#define CM_MAX_FDS 4096
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cm_file *fd_table[CM_MAX_FDS];

/* The model-replacement handshake. */
static atomic_long in_flight;
static atomic_bool loading;
static __thread int syscall_depth;

static inline void cm_enter(void) {
    for (;;) {
        atomic_fetch_add(&in_flight, 1);
        if (!atomic_load(&loading)) return;
        atomic_fetch_sub(&in_flight, 1);
        while (atomic_load(&loading)) sched_yield();
    }
}

static inline void cm_leave(void) { atomic_fetch_sub(&in_flight, 1); }

static uintptr_t cm_issue(void *object, int kind) {
    pthread_mutex_lock(&handles_lock);
    int i = nslots++;
    slots[i] = (struct cm_slot){ 0, kind, object, 1 };
    uintptr_t t = CM_TAG | (uintptr_t)kind << 52 | (uintptr_t)(slots[i].generation & CM_GEN_MASK) << 28 |
                  (uintptr_t)i << 4;
    pthread_mutex_unlock(&handles_lock);
    return t;
}

static void cm_warn(const char *fn, const char *what) {
    /* The library WARNs into its log; a bad handle is not on the measured path. */
    fprintf(stderr, "cm: %s: %s\n", fn, what);
}

/* The object behind a token of `kind`, or NULL (with a warning) for NULL, forged or stale. */
static void *cm_resolve(uintptr_t token, int kind, const char *fn) {
    if (token == 0) { cm_warn(fn, "NULL handle"); return NULL; }
    if ((token & ((uintptr_t)0xff << 56)) != CM_TAG || (token & 0xf) != 0) {
        cm_warn(fn, "handle never issued");
        return NULL;
    }
    int k = (int)((token >> 52) & 0xf);
    uint32_t generation = (uint32_t)(token >> 28) & CM_GEN_MASK;
    int index = (int)((token >> 4) & 0xffffff);
    void *object = NULL;
    pthread_mutex_lock(&handles_lock);
    if (k == kind && index < nslots && slots[index].kind == kind && slots[index].generation == generation) {
        object = slots[index].object;
        /* alive: a file with references, a device with references */
        long refs = kind == CM_H_FILE ? atomic_load_explicit(&((struct cm_file *)object)->refs, memory_order_relaxed)
                                      : atomic_load_explicit(&((struct cm_device *)object)->refs, memory_order_relaxed);
        if (refs <= 0) object = NULL;
    }
    pthread_mutex_unlock(&handles_lock);
    if (object == NULL) cm_warn(fn, "stale or wrong-kind handle");
    return object;
}

int cm_setup(int ngroups, int *fds, uintptr_t *file_tokens, uintptr_t *device_tokens) {
    for (int g = 0; g < ngroups; g++) {
        struct cm_iommu_group *ig = calloc(1, sizeof *ig);
        pthread_mutex_init(&ig->mutex, NULL);
        struct cm_group *group = calloc(1, sizeof *group);
        pthread_mutex_init(&group->group_lock, NULL);
        pthread_mutex_init(&group->device_lock, NULL);
        group->iommu_group = ig;
        struct cm_device *d = calloc(1, sizeof *d);
        d->group = group;
        d->enforce_cache_coherency = true;
        atomic_store(&d->refs, 1);
        group->devices = d;
        struct cm_file *f = calloc(1, sizeof *f);
        f->kind = CM_GROUP;
        atomic_store(&f->refs, 1);
        f->private_data = group;
        int fd = 1000 + g;
        pthread_mutex_lock(&fd_lock);
        fd_table[fd] = f;
        pthread_mutex_unlock(&fd_lock);
        atomic_fetch_add(&f->refs, 1); /* the handle's reference */
        fds[g] = fd;
        file_tokens[g] = cm_issue(f, CM_H_FILE);
        device_tokens[g] = cm_issue(d, CM_H_VFIO_DEVICE);
    }
    return 0;
}

bool cm_file_is_group(uintptr_t token) {
    cm_enter();
    struct cm_file *f = cm_resolve(token, CM_H_FILE, "vfio_file_is_group");
    bool r = f != NULL && f->kind == CM_GROUP;
    cm_leave();
    return r;
}

bool cm_file_has_dev(uintptr_t ftoken, uintptr_t dtoken) {
    cm_enter();
    bool r = false;
    struct cm_file *f = cm_resolve(ftoken, CM_H_FILE, "vfio_file_has_dev");
    struct cm_device *d = f ? cm_resolve(dtoken, CM_H_VFIO_DEVICE, "vfio_file_has_dev") : NULL;
    if (f && d) r = f->kind == CM_GROUP && d->group == (struct cm_group *)f->private_data;
    cm_leave();
    return r;
}

bool cm_file_enforced_coherent(uintptr_t token) {
    cm_enter();
    bool r = false;
    struct cm_file *f = cm_resolve(token, CM_H_FILE, "vfio_file_enforced_coherent");
    if (f != NULL) {
        r = true;
        if (f->kind == CM_GROUP) {
            struct cm_group *g = f->private_data;
            pthread_mutex_lock(&g->device_lock);
            for (struct cm_device *d = g->devices; d; d = d->next) {
                if (g->fake || !d->enforce_cache_coherency) { r = false; break; }
            }
            pthread_mutex_unlock(&g->device_lock);
        }
    }
    cm_leave();
    return r;
}

struct cm_group_status {
    uint32_t argsz;
    uint32_t flags;
};

#define CM_VFIO_GROUP_GET_STATUS 0x3B67u
#define CM_FLAGS_VIABLE 1u
#define CM_FLAGS_CONTAINER_SET 2u

static int cm_group_get_status(struct cm_group *g, unsigned long arg) {
    struct cm_group_status st;
    if (arg == 0) return -EFAULT;
    memcpy(&st, (const void *)arg, sizeof st);
    if (st.argsz < sizeof st) return -EINVAL;
    st.flags = 0;
    pthread_mutex_lock(&g->group_lock);
    if (g->iommu_group == NULL) {
        pthread_mutex_unlock(&g->group_lock);
        return -ENODEV;
    }
    if (g->container || g->iommufd) {
        st.flags |= CM_FLAGS_CONTAINER_SET | CM_FLAGS_VIABLE;
    } else {
        pthread_mutex_lock(&g->iommu_group->mutex);
        bool claimed = g->iommu_group->owner_cnt > 0;
        pthread_mutex_unlock(&g->iommu_group->mutex);
        if (!claimed) st.flags |= CM_FLAGS_VIABLE;
    }
    pthread_mutex_unlock(&g->group_lock);
    memcpy((void *)arg, &st, sizeof st);
    return 0;
}

static struct cm_file *cm_fget(int fd) {
    struct cm_file *f = NULL;
    if (fd < 0 || fd >= CM_MAX_FDS) return NULL;
    pthread_mutex_lock(&fd_lock);
    f = fd_table[fd];
    if (f) atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&fd_lock);
    return f;
}

static void cm_fput(struct cm_file *f) {
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) free(f);
}

int cm_ioctl(int fd, unsigned long request, unsigned long arg) {
    cm_enter();
    syscall_depth++;
    int r;
    struct cm_file *f = cm_fget(fd);
    if (f == NULL) {
        r = -EBADF;
    } else {
        switch (f->kind) {
        case CM_GROUP:
            r = (uint32_t)request == CM_VFIO_GROUP_GET_STATUS ? cm_group_get_status(f->private_data, arg) : -ENOTTY;
            break;
        default:
            r = -ENOTTY;
        }
        cm_fput(f);
    }
    syscall_depth--;
    cm_leave();
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return r;
}
