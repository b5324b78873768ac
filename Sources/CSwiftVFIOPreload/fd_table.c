// SPDX-License-Identifier: Apache-2.0
/* The mirror of the model's fd table: which numbers are model fds.
 *
 * The model owns fd identity (Sources/VFIO/Files/FDTable.swift). It reports every number its table
 * gains or loses to the observer below, under its lock for that number and before it closes a
 * placeholder, so this mirror never says "model fd" for a number the kernel may have reused
 * through the model. What the model cannot see is a placeholder closed behind everyone's back
 * (inside libc, a raw system call): the number then stays marked until a creator hands it out
 * again, and every creator the interposer wraps asks the model to retire the stale entry before
 * returning the number (fd_created()). docs/PRELOAD.md lists the paths that remain uncovered. */
#include "preload.h"

INTERNAL _Atomic(struct fd_chunk *) fd_chunks[FD_MAX >> FD_CHUNK_SHIFT];
INTERNAL atomic_int fd_max_tracked = -1;

static struct fd_chunk *chunk_for_writing(int fd) {
    _Atomic(struct fd_chunk *) *top = &fd_chunks[(unsigned)fd >> FD_CHUNK_SHIFT];
    struct fd_chunk *c = atomic_load_explicit(top, memory_order_acquire);
    if (c != NULL) return c;
    /* mmap rather than malloc: the observer runs inside model calls, under the model's locks. */
    void *m = CALL_REAL(MAP_FAILED, mmap, NULL, sizeof(struct fd_chunk), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    struct fd_chunk *expected = NULL;
    if (atomic_compare_exchange_strong(top, &expected, (struct fd_chunk *)m)) return m;
    munmap(m, sizeof(struct fd_chunk));
    return expected;
}

void fd_observed(int32_t fd, int32_t is_model_fd) {
    if ((unsigned)fd >= FD_MAX) return;
    struct fd_chunk *c = is_model_fd ? chunk_for_writing(fd) : atomic_load_explicit(&fd_chunks[(unsigned)fd >> FD_CHUNK_SHIFT], memory_order_acquire);
    if (c == NULL) {
        /* No memory for a chunk: the number cannot be routed. Say so rather than misroute. */
        if (is_model_fd) say("out of memory for the fd table; a model fd is not routed", NULL, NULL);
        return;
    }
    atomic_store_explicit(&c->model[(unsigned)fd & (FD_CHUNK_SLOTS - 1)], is_model_fd ? 1 : 0, memory_order_release);
    int max = atomic_load_explicit(&fd_max_tracked, memory_order_relaxed);
    while (is_model_fd && fd > max && !atomic_compare_exchange_weak(&fd_max_tracked, &max, fd)) {
    }
}

void fd_retire_if_stale(int fd) {
    /* swiftvfio_is_model_fd() compares the descriptor with the placeholder the model recorded and,
     * when they differ, forgets the entry (the observer then clears it here). */
    if (atomic_load_explicit(&lib_state, memory_order_acquire) > 0) (void)LIB_QUIET(lib.is_model_fd(fd));
}
