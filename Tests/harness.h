// SPDX-License-Identifier: Apache-2.0
/* harness.h: the one harness of the C test programs (Tests/CABI/test_*.c, Tests/Preload/test_*.c),
 * built and run by Tests/Makefile.
 *
 * A test program counts its checks with the macros below and ends with `return test_summary();`:
 * it prints "N passed, M failed" as its last line and returns non-zero on any failure (the
 * Makefile adds the lines up). A failed check prints file, line, the expression and a message on
 * stderr, then whatever the domain layer adds (test_context: CABI/cabi_test.h prints
 * swiftvfio_last_error()). Checks may run on several threads: the counters are atomic.
 * Domain helpers live in CABI/cabi_test.h (programs linking libswiftvfio.so) and Preload/tp.h
 * (programs run under the interposer); both are thin layers over this file. */
#ifndef SWIFTVFIO_TEST_HARNESS_H
#define SWIFTVFIO_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int test_passed, test_failed;
/* Optional: called after a failure's own line, to print what else helps (set by a domain layer). */
static void (*test_context)(void);

__attribute__((unused, format(printf, 4, 5))) static void test_fail(const char *file, int line, const char *expr,
                                                                     const char *fmt, ...) {
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    atomic_fetch_add(&test_failed, 1);
    /* One fprintf: lines from two threads do not interleave. */
    fprintf(stderr, "FAIL %s:%d: %s%s%s\n", file, line, expr, msg[0] ? ": " : "", msg);
    if (test_context) test_context();
}

#define TEST_PASS() atomic_fetch_add(&test_passed, 1)

/* `cond` holds. */
#define TEST_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (cond) TEST_PASS();                                                                     \
        else test_fail(__FILE__, __LINE__, #cond, NULL);                                           \
    } while (0)

/* `cond` holds; on failure the printf-style message says why. */
#define TEST_CHECKF(cond, ...)                                                                     \
    do {                                                                                           \
        if (cond) TEST_PASS();                                                                     \
        else test_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                    \
    } while (0)

/* Two integers (or pointers cast to integers) are equal. */
#define TEST_EQ(got, want)                                                                         \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ == w_) TEST_PASS();                                                                 \
        else test_fail(__FILE__, __LINE__, #got " == " #want, "got %lld (0x%llx), want %lld (0x%llx)", g_, g_, w_, w_); \
    } while (0)

/* The summary line; the program's exit status. */
__attribute__((unused)) static int test_summary(void) {
    printf("%d passed, %d failed\n", atomic_load(&test_passed), atomic_load(&test_failed));
    fflush(stdout);
    return atomic_load(&test_failed) ? 1 : 0;
}
#endif
