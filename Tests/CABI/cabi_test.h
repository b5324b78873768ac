// SPDX-License-Identifier: Apache-2.0
/* cabi_test.h: the C ABI tests' layer over the one harness (../harness.h): checks named as the
 * C ABI tests use them, and helpers for programs linking libswiftvfio.so (census, WARN counts,
 * topologies, the vfio.rst setup). Each test program includes this once and ends with
 * `return cabi_summary();` ("N passed, M failed"). Failures also print swiftvfio_last_error().
 */
#ifndef CABI_TEST_H
#define CABI_TEST_H

#define _GNU_SOURCE
#include <swiftvfio.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"

/* Counting a check done by hand (a test's own macro). */
#define cabi_pass() TEST_PASS()
#define cabi_fail_msg(...) test_fail(__FILE__, __LINE__, __VA_ARGS__)

static void cabi_print_last_error(void)
{
    const char *why = swiftvfio_last_error();
    fprintf(stderr, "    last error: %s\n", why ? why : "none");
}

__attribute__((constructor)) static void cabi_install_context(void) { test_context = cabi_print_last_error; }

/* A condition. */
#define CHECK(cond) TEST_CHECK(cond)

/* Two integers (or pointers cast to integers) equal. */
#define CHECK_EQ(got, want) TEST_EQ(got, want)

#define CHECK_PTR_EQ(got, want) CHECK_EQ((intptr_t)(got), (intptr_t)(want))

/* A system-call-style call fails with -1 and errno `err`. */
#define CHECK_SYSERR(call, err)                                                  \
    do {                                                                         \
        errno = 0;                                                               \
        long long r_ = (long long)(call);                                        \
        int e_ = errno;                                                          \
        if (r_ == -1 && e_ == (err))                                             \
            TEST_PASS();                                                         \
        else                                                                     \
            test_fail(__FILE__, __LINE__, #call " fails with " #err, "got %lld, errno %d", r_, e_); \
    } while (0)

/* The model's WARN count (bad handles WARN; ordinary errors do not). */
static inline int cabi_warnings(void)
{
    struct swiftvfio_census c;
    if (swiftvfio_census(&c) != 0)
        return -1;
    return c.warnings;
}

/* `stmt` raises exactly `n` WARNs. */
#define EXPECT_WARNS(n, stmt)                                                    \
    do {                                                                         \
        int w0_ = cabi_warnings();                                               \
        stmt;                                                                    \
        CHECK_EQ(cabi_warnings() - w0_, n);                                      \
    } while (0)

/* swiftvfio_last_error() mentions `text`. */
#define CHECK_LAST_ERROR(text)                                                   \
    do {                                                                         \
        const char *m_ = swiftvfio_last_error();                                 \
        if (m_ && strstr(m_, text))                                              \
            TEST_PASS();                                                         \
        else                                                                     \
            test_fail(__FILE__, __LINE__, "swiftvfio_last_error()", "\"%s\" does not mention \"%s\"", \
                      m_ ? m_ : "(null)", text);                                 \
    } while (0)

static inline struct swiftvfio_census cabi_census(void)
{
    struct swiftvfio_census c;
    memset(&c, 0, sizeof(c));
    if (swiftvfio_census(&c) != 0)
        c.files = -1;
    return c;
}

/* No files, fds or VM references left in the model. */
#define CHECK_NOTHING_OPEN()                                                     \
    do {                                                                         \
        struct swiftvfio_census c_ = cabi_census();                              \
        CHECK_EQ(c_.files, 0);                                                   \
        CHECK_EQ(c_.fds, 0);                                                     \
        CHECK_EQ(c_.kvm_references, 0);                                          \
    } while (0)

/* Writes `text` to a fresh temporary file; returns its path (static storage, one at a time). */
static inline const char *cabi_temp_file(const char *text)
{
    static char path[64];
    int fd;
    snprintf(path, sizeof(path), "/tmp/swiftvfio-cabi-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        perror("cabi_temp_file");
        exit(2);
    }
    close(fd);
    return path;
}

/* Loads a JSON topology given as text; 0 or -errno. */
static inline int cabi_load_topology(const char *json)
{
    const char *path = cabi_temp_file(json);
    int r = swiftvfio_topology_load(path);
    unlink(path);
    return r;
}

/* Opens the vfio.rst setup: container + group 26 with type1, and the device. Returns the device
 * fd; the container and group fds through the pointers. */
static inline int cabi_open_device(const char *group_path, const char *name, int *container, int *group)
{
    *container = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    *group = swiftvfio_open(group_path, O_RDWR);
    if (*container < 0 || *group < 0)
        return -1;
    if (swiftvfio_ioctl(*group, VFIO_GROUP_SET_CONTAINER, (unsigned long)container) < 0)
        return -1;
    if (swiftvfio_ioctl(*container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0 && errno != EBUSY)
        return -1;
    return swiftvfio_ioctl(*group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)name);
}

/* A hang is a failure: the test dies with a message instead of blocking the suite. */
static inline void cabi_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAILED: the test timed out (a deadlock or a wait that never ends)\n";
    if (write(2, msg, sizeof(msg) - 1) < 0) {}
    _exit(3);
}

static inline void cabi_timeout(unsigned seconds)
{
    signal(SIGALRM, cabi_alarm);
    alarm(seconds);
}

static inline int cabi_summary(void) { return test_summary(); }

#endif
