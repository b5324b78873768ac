// SPDX-License-Identifier: Apache-2.0
/* syscall(): the generic system call entry point, with the numbers that close, replace or create
 * descriptors. Closes and dups go where their libc wrappers go (calls_close.c); creators return
 * through fd_created(). Every other number, and every call from the model itself (its shim makes
 * raw system calls on its placeholders on purpose), is libc's syscall() unchanged. Opens of model
 * paths through syscall(SYS_openat, ...) are not routed to the model (docs/PRELOAD.md). */
#include "preload.h"

/* Whether system call `nr` returns a new descriptor. */
static int creates_fd(long nr) {
    switch (nr) {
#ifdef SYS_open
    case SYS_open:
#endif
#ifdef SYS_creat
    case SYS_creat:
#endif
#ifdef SYS_epoll_create
    case SYS_epoll_create:
#endif
#ifdef SYS_eventfd
    case SYS_eventfd:
#endif
#ifdef SYS_signalfd
    case SYS_signalfd:
#endif
#ifdef SYS_inotify_init
    case SYS_inotify_init:
#endif
    case SYS_openat: case SYS_openat2: case SYS_open_by_handle_at: case SYS_socket: case SYS_accept:
    case SYS_accept4: case SYS_eventfd2: case SYS_epoll_create1: case SYS_signalfd4:
    case SYS_timerfd_create: case SYS_inotify_init1: case SYS_memfd_create: case SYS_pidfd_open:
    case SYS_pidfd_getfd: case SYS_fanotify_init: case SYS_userfaultfd: case SYS_perf_event_open:
    case SYS_io_uring_setup: case SYS_fsopen: case SYS_fsmount: case SYS_open_tree: case SYS_fspick:
    case SYS_memfd_secret: case SYS_bpf: case SYS_landlock_create_ruleset:
        return 1;
    default:
        return 0;
    }
}

EXPORT long syscall(long nr, ...) {
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    void *ra = RA();
    if (LIKELY(!from_model(ra))) {
        switch (nr) {
        case SYS_close: return preload_close((int)a, ra);
        case SYS_close_range: return preload_close_range((unsigned)a, (unsigned)b, (int)c, ra);
        case SYS_dup: return preload_dup((int)a, 0, -1, ra);
#ifdef SYS_dup2
        case SYS_dup2: return preload_dup23((int)a, (int)b, 0, 0, ra);
#endif
        case SYS_dup3: return preload_dup23((int)a, (int)b, (int)c, 1, ra);
        case SYS_fcntl: return preload_fcntl((int)a, (int)b, (unsigned long)c, ra);
#ifdef SYS_pipe
        case SYS_pipe:
#endif
        case SYS_pipe2:
        case SYS_socketpair: {
            long r = CALL_REAL(-1, syscall, nr, a, b, c, d, e, f);
            int *fds = (int *)(nr == SYS_socketpair ? d : a);
            if (r == 0) {
                fd_created(fds[0], ra);
                fd_created(fds[1], ra);
            }
            return r;
        }
        default:
            if (creates_fd(nr)) return fd_created((int)CALL_REAL(-1, syscall, nr, a, b, c, d, e, f), ra);
        }
    }
    return CALL_REAL(-1, syscall, nr, a, b, c, d, e, f);
}
