// SPDX-License-Identifier: Apache-2.0
/* The descriptor creators that are not opens of a path (calls_open.c) or dups (calls_close.c).
 * Each is libc's own call; the numbers it returns go through fd_created(): a number the model
 * still holds had its placeholder closed behind the interposer's back (a raw system call, inside
 * libc), and the model retires that stale entry before the number reaches the caller, so a later
 * ioctl() or close() of it is never routed to the model. Streams and directories are covered by
 * their number (fileno, dirfd). */
#include "preload.h"

/* A created pair (pipe, socketpair): both numbers. */
HOT int pair_created(int r, int fds[2], void *ra) {
    if (r == 0) {
        fd_created(fds[0], ra);
        fd_created(fds[1], ra);
    }
    return r;
}

EXPORT int socket(int domain, int type, int protocol) {
    return fd_created(CALL_REAL(-1, socket, domain, type, protocol), RA());
}
EXPORT int socketpair(int domain, int type, int protocol, int fds[2]) {
    return pair_created(CALL_REAL(-1, socketpair, domain, type, protocol, fds), fds, RA());
}
EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return fd_created(CALL_REAL(-1, accept, fd, addr, len), RA());
}
EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return fd_created(CALL_REAL(-1, accept4, fd, addr, len, flags), RA());
}
EXPORT int pipe(int fds[2]) { return pair_created(CALL_REAL(-1, pipe, fds), fds, RA()); }
EXPORT int pipe2(int fds[2], int flags) { return pair_created(CALL_REAL(-1, pipe2, fds, flags), fds, RA()); }
EXPORT int eventfd(unsigned int count, int flags) { return fd_created(CALL_REAL(-1, eventfd, count, flags), RA()); }
EXPORT int epoll_create(int size) { return fd_created(CALL_REAL(-1, epoll_create, size), RA()); }
EXPORT int epoll_create1(int flags) { return fd_created(CALL_REAL(-1, epoll_create1, flags), RA()); }
/* signalfd(fd >= 0) changes an existing signalfd and returns it: no new number, nothing stale. */
EXPORT int signalfd(int fd, const sigset_t *mask, int flags) {
    return fd_created(CALL_REAL(-1, signalfd, fd, mask, flags), RA());
}
EXPORT int timerfd_create(int clockid, int flags) {
    return fd_created(CALL_REAL(-1, timerfd_create, clockid, flags), RA());
}
EXPORT int inotify_init(void) { return fd_created(CALL_REAL(-1, inotify_init), RA()); }
EXPORT int inotify_init1(int flags) { return fd_created(CALL_REAL(-1, inotify_init1, flags), RA()); }
EXPORT int memfd_create(const char *name, unsigned int flags) {
    return fd_created(CALL_REAL(-1, memfd_create, name, flags), RA());
}
EXPORT int pidfd_open(pid_t pid, unsigned int flags) { return fd_created(CALL_REAL(-1, pidfd_open, pid, flags), RA()); }
EXPORT int pidfd_getfd(int pidfd, int targetfd, unsigned int flags) {
    return fd_created(CALL_REAL(-1, pidfd_getfd, pidfd, targetfd, flags), RA());
}
EXPORT int fanotify_init(unsigned int flags, unsigned int event_f_flags) {
    return fd_created(CALL_REAL(-1, fanotify_init, flags, event_f_flags), RA());
}
EXPORT int open_by_handle_at(int mount_fd, struct file_handle *handle, int flags) {
    return fd_created(CALL_REAL(-1, open_by_handle_at, mount_fd, handle, flags), RA());
}
/* creat of a model path is not routed to the model (docs/PRELOAD.md): only its number is checked. */
EXPORT int creat(const char *path, mode_t mode) { return fd_created(CALL_REAL(-1, creat, path, mode), RA()); }
EXPORT int creat64(const char *path, mode_t mode) { return fd_created(CALL_REAL(-1, creat64, path, mode), RA()); }
EXPORT int posix_openpt(int flags) { return fd_created(CALL_REAL(-1, posix_openpt, flags), RA()); }
EXPORT int mkstemp(char *tmpl) { return fd_created(CALL_REAL(-1, mkstemp, tmpl), RA()); }
EXPORT int mkostemp(char *tmpl, int flags) { return fd_created(CALL_REAL(-1, mkostemp, tmpl, flags), RA()); }

/* Streams and directories: libc opens their descriptor inside itself. (fopen of a model path is
 * not routed to the model: docs/PRELOAD.md.) */
HOT FILE *stream_created(FILE *f, void *ra) {
    if (f != NULL) fd_created(fileno(f), ra);
    return f;
}
EXPORT FILE *fopen(const char *path, const char *mode) { return stream_created(CALL_REAL(NULL, fopen, path, mode), RA()); }
EXPORT FILE *fopen64(const char *path, const char *mode) { return stream_created(CALL_REAL(NULL, fopen64, path, mode), RA()); }
EXPORT DIR *opendir(const char *path) {
    DIR *d = CALL_REAL(NULL, opendir, path);
    if (d != NULL) fd_created(dirfd(d), RA());
    return d;
}
