// SPDX-License-Identifier: Apache-2.0
/* tp.h: the preload tests' layer over the one harness (../harness.h), for the C clients run
 * under libswiftvfio-preload.so (Tests/Makefile, Scripts/test-preload.sh). Checks compare errno
 * by name so a failure says what the kernel would have answered. Each program ends with
 * `return tp_done();` ("N passed, M failed"). */
#ifndef SWIFTVFIO_TP_H
#define SWIFTVFIO_TP_H
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"

__attribute__((unused)) static const char *tp_errname(int e) {
    const char *n = e ? strerrorname_np(e) : "0";
    return n ? n : "?";
}

/* `cond` holds; the printf-style message says what was seen. */
#define CHECK(cond, ...) TEST_CHECKF(cond, __VA_ARGS__)

/* `expr` must succeed (>= 0); yields its value. */
#define OK(expr)                                                                                  \
    ({                                                                                            \
        errno = 0;                                                                                \
        long r_ = (long)(expr);                                                                   \
        int e_ = errno;                                                                           \
        CHECK(r_ >= 0, "%s = %ld, errno %s", #expr, r_, tp_errname(e_));                          \
        r_;                                                                                       \
    })

/* `expr` must fail with -1 and errno `err`. */
#define FAILS(expr, err)                                                                          \
    do {                                                                                          \
        errno = 0;                                                                                \
        long r_ = (long)(expr);                                                                   \
        int e_ = errno;                                                                           \
        CHECK(r_ == -1 && e_ == (err), "%s = %ld, errno %s; want -1, %s", #expr, r_,              \
              tp_errname(e_), tp_errname(err));                                                   \
    } while (0)

/* `expr` must equal `want`. */
#define EQ(expr, want)                                                                            \
    do {                                                                                          \
        long long g_ = (long long)(expr), w_ = (long long)(want);                                 \
        CHECK(g_ == w_, "%s = %lld (0x%llx), want %lld (0x%llx)", #expr, g_, g_, w_, w_);         \
    } while (0)

/* Fails at once unless the program runs under the preload (a check that never runs is no check). */
__attribute__((unused)) static void tp_require_preload(void) {
    if (dlsym(RTLD_DEFAULT, "swiftvfio_preload_state") == NULL) {
        fprintf(stderr, "not running under libswiftvfio-preload.so (LD_PRELOAD)\n");
        exit(2);
    }
}

/* close(2) as a raw system call instruction: no libc function runs, so no interposer sees it (the
 * one way to close a descriptor behind the interposer's back that it cannot cover). */
__attribute__((unused)) static long tp_raw_close(int fd) {
    long r;
#if defined(__x86_64__)
    __asm__ volatile("syscall" : "=a"(r) : "0"(3L /* __NR_close */), "D"((long)fd) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x0 __asm__("x0") = fd;
    register long x8 __asm__("x8") = 57; /* __NR_close */
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
    r = x0;
#else
#error "tp_raw_close: add this architecture's system call instruction"
#endif
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

__attribute__((unused)) static int tp_done(void) { return test_summary(); }
#endif
