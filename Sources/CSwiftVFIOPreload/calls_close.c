// SPDX-License-Identifier: Apache-2.0
/* Every way a number is closed or replaced: close, close_range, closefrom, dup2/dup3 onto a
 * number, fclose of a stream on it (glibc's fcloseall flushes streams without closing them); and
 * the dup family that copies one (dup, fcntl F_DUPFD[_CLOEXEC]). A model fd closed here is closed by the model (its release runs at
 * the last close of the last dup, as the kernel's); a model number replaced by another file is
 * forgotten by the model (it drops that reference as the real close would have). The model reports
 * each change to the fd table mirror itself. syscall() with these numbers comes here too
 * (calls_syscall.c), through the preload_* functions. */
#include "preload.h"

#include <limits.h>

int preload_close(int fd, void *ra) {
    if (LIKELY(!fd_is_model(fd))) {
        /* The KVM family: a kvm-vfio device's release, before libc closes its fd. */
        if (UNLIKELY(kvm_hook_wants_close()) && !from_model(ra)) kvm_hook_close(fd);
        return CALL_REAL(-1, close, fd);
    }
    if (from_model(ra)) return CALL_REAL(-1, close, fd);
    int r = LIB_SYSCALL(r_ < 0, lib.close(fd));
    if (r < 0 && errno == EBADF) return CALL_REAL(-1, close, fd); /* lost a race with another close */
    return r;
}

EXPORT int close(int fd) { return preload_close(fd, RA()); }

/* Closes the model fds in [first, last] through the model (releases run as the kernel's would). */
static void close_model_range(unsigned first, unsigned last) {
    int max = atomic_load_explicit(&fd_max_tracked, memory_order_relaxed);
    if (max < 0 || first > (unsigned)max) return;
    if (last > (unsigned)max) last = (unsigned)max;
    for (unsigned fd = first; fd <= last; fd++)
        if (fd_is_model((int)fd)) (void)LIB_QUIET(lib.close((int)fd));
}

int preload_close_range(unsigned first, unsigned last, int flags, void *ra) {
    if (UNLIKELY(atomic_load_explicit(&fd_max_tracked, memory_order_relaxed) >= 0) &&
        !(flags & CLOSE_RANGE_CLOEXEC) && first <= last && !from_model(ra))
        close_model_range(first, last);
    __typeof__(real_close_range) f = REAL(close_range);
    if (f) return f(first, last, flags);
    return (int)CALL_REAL(-1, syscall, SYS_close_range, first, last, flags);
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags) {
    return preload_close_range(first, last, flags, RA());
}

EXPORT void closefrom(int lowfd) {
    if (UNLIKELY(atomic_load_explicit(&fd_max_tracked, memory_order_relaxed) >= 0) && lowfd >= 0 && !from_model(RA()))
        close_model_range((unsigned)lowfd, UINT_MAX);
    __typeof__(real_closefrom) f = REAL(closefrom);
    if (f) f(lowfd);
    else (void)CALL_REAL(-1, syscall, SYS_close_range, (unsigned)lowfd, ~0U, 0);
}

/* dup / F_DUPFD of a model fd: a new model fd for the same file, from the model. Of any other fd:
 * libc's, and the new number is a created one. */
int preload_dup(int fd, int minfd, int cmd, void *ra) {
    if (LIKELY(!fd_is_model(fd)) || from_model(ra)) {
        int r = cmd < 0 ? CALL_REAL(-1, dup, fd) : CALL_REAL(-1, fcntl, fd, cmd, minfd);
        return fd_created(r, ra);
    }
    if (minfd < 0) { /* the kernel's unsigned `from` >= RLIMIT_NOFILE */
        errno = EINVAL;
        return -1;
    }
    return LIB_SYSCALL(r_ < 0, lib.dup(fd, minfd, cmd == F_DUPFD_CLOEXEC ? O_CLOEXEC : 0));
}

EXPORT int dup(int fd) { return preload_dup(fd, 0, -1, RA()); }

/* dup2/dup3: the real call (it closes `newfd` atomically and takes that exact number), then the
 * model is told: a model `oldfd` makes `newfd` one more model fd of its file (replacing a model
 * entry there); a model `newfd` overwritten by another file is dropped from the model (its release
 * runs if it was the last). */
int preload_dup23(int oldfd, int newfd, int flags, int three, void *ra) {
    int old_model = fd_is_model(oldfd), new_model = fd_is_model(newfd);
    int r = three ? CALL_REAL(-1, dup3, oldfd, newfd, flags) : CALL_REAL(-1, dup2, oldfd, newfd);
    if (LIKELY(!(old_model | new_model)) || r < 0 || oldfd == newfd || from_model(ra)) return r;
    if (old_model) {
        /* Fails only when oldfd was closed meanwhile: then newfd is whatever it is now. */
        if (LIB_QUIET(lib.adopt_dup(oldfd, newfd)) != 0) fd_retire_if_stale(newfd);
    } else {
        (void)LIB_QUIET(lib.forget_fd(newfd));
    }
    return r;
}

EXPORT int dup2(int oldfd, int newfd) { return preload_dup23(oldfd, newfd, 0, 0, RA()); }
EXPORT int dup3(int oldfd, int newfd, int flags) { return preload_dup23(oldfd, newfd, flags, 1, RA()); }

/* fcntl: F_DUPFD and F_DUPFD_CLOEXEC are dups; every other command (F_GETFD, F_SETFD, F_GETFL,
 * locks) is answered by the descriptor itself, for a model fd its placeholder, which is the truth
 * for the close-on-exec flag the model set on it. */
int preload_fcntl(int fd, int cmd, unsigned long arg, void *ra) {
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return preload_dup(fd, (int)arg, cmd, ra);
    return CALL_REAL(-1, fcntl, fd, cmd, arg);
}

#define FCNTL_ARG()                                                                                \
    va_list ap;                                                                                    \
    va_start(ap, cmd);                                                                             \
    unsigned long arg = va_arg(ap, unsigned long);                                                 \
    va_end(ap);

EXPORT int fcntl(int fd, int cmd, ...) {
    FCNTL_ARG()
    return preload_fcntl(fd, cmd, arg, RA());
}

EXPORT int fcntl64(int fd, int cmd, ...) {
    FCNTL_ARG()
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return preload_dup(fd, (int)arg, cmd, RA());
    return CALL_REAL(-1, fcntl64, fd, cmd, arg);
}

/* fclose of a stream on a model fd (fdopen()): libc closes the descriptor inside itself, unseen;
 * the model then retires the number (its placeholder is gone), releasing the file as the kernel's
 * fclose would. If the number was reused meanwhile, the creator retired it already. */
EXPORT int fclose(FILE *stream) {
    int fd = stream != NULL ? fileno(stream) : -1;
    int r = CALL_REAL(EOF, fclose, stream);
    if (UNLIKELY(fd >= 0 && fd_is_model(fd)) && !from_model(RA())) fd_retire_if_stale(fd);
    return r;
}
