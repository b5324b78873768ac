// SPDX-License-Identifier: Apache-2.0
/* swiftvfio_set_fd_observer(): the model reports every number its fd table gains or loses (the
 * LD_PRELOAD interposer routes exactly those numbers), and validates a number it is given itself.
 * Each path that makes or drops a model fd number is checked for its event, in order. */
#include "cabi_test.h"

#include <sys/syscall.h>

#define MAX_EVENTS 64
static struct {
    int fd, is_model;
} events[MAX_EVENTS];
static int nevents;

static void observer(int32_t fd, int32_t is_model_fd)
{
    if (nevents < MAX_EVENTS) {
        events[nevents].fd = fd;
        events[nevents].is_model = is_model_fd;
    }
    nevents++;
}

/* Exactly one event since the last call, for `fd`, saying `is_model`. */
#define CHECK_EVENT(fd_, is_model_)                                              \
    do {                                                                         \
        CHECK_EQ(nevents, 1);                                                    \
        CHECK_EQ(events[0].fd, (fd_));                                           \
        CHECK_EQ(events[0].is_model, (is_model_));                               \
        nevents = 0;                                                             \
    } while (0)

/* A close the model does not see: the system call itself. */
static void close_behind_the_models_back(int fd) { CHECK_EQ(syscall(SYS_close, fd), 0); }

static void test_replay_on_registration(void)
{
    int g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(g >= 0);
    nevents = 0;
    swiftvfio_set_fd_observer(observer);
    /* The fds already open are reported at once. */
    CHECK_EVENT(g, 1);
    CHECK_EQ(swiftvfio_close(g), 0);
    CHECK_EVENT(g, 0);
}

static void test_each_change(void)
{
    int c, g, d, dup_fd, target;

    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    CHECK_EVENT(c, 1);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK_EVENT(g, 1);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), 0);
    CHECK_EQ(nevents, 0); /* an ioctl that makes no fd says nothing */
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0");
    CHECK(d >= 0);
    CHECK_EVENT(d, 1); /* the device fd the ioctl made */

    dup_fd = swiftvfio_dup(g, 100, 0);
    CHECK(dup_fd >= 100);
    CHECK_EVENT(dup_fd, 1);
    CHECK_EQ(swiftvfio_close(dup_fd), 0);
    CHECK_EVENT(dup_fd, 0);

    /* adopt_dup after a real dup2 onto another number */
    target = open("/dev/null", O_RDONLY);
    CHECK_EQ(dup2(g, target), target);
    CHECK_EQ(swiftvfio_adopt_dup(g, target), 0);
    CHECK_EVENT(target, 1);
    /* forget: the number was overwritten by another file */
    {
        int null_fd = open("/dev/null", O_RDONLY);
        CHECK_EQ(dup2(null_fd, target), target);
        close(null_fd);
    }
    CHECK_EQ(swiftvfio_forget_fd(target), 1);
    CHECK_EVENT(target, 0);
    close(target);
    CHECK_EQ(swiftvfio_forget_fd(target), 0);
    CHECK_EQ(nevents, 0);

    /* A number closed behind the model's back and checked: forgotten, reported. */
    dup_fd = swiftvfio_dup(g, 0, 0);
    CHECK_EVENT(dup_fd, 1);
    close_behind_the_models_back(dup_fd);
    CHECK_EQ(swiftvfio_is_model_fd(dup_fd), 0);
    CHECK_EVENT(dup_fd, 0);

    CHECK_EQ(swiftvfio_close(d), 0);
    CHECK_EVENT(d, 0);
    CHECK_EQ(swiftvfio_close(g), 0);
    CHECK_EVENT(g, 0);
    CHECK_EQ(swiftvfio_close(c), 0);
    CHECK_EVENT(c, 0);
    CHECK_NOTHING_OPEN();
}

/* SET_CONTAINER's fd argument is validated by the model itself: a container fd closed behind its
 * back is EBADF (not the stale container), the stale entry is dropped and reported; reused by
 * another file, EBADFD. */
static void test_model_validates_the_fds_it_is_given(void)
{
    int g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    int c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    int c2, other;
    CHECK(g >= 0 && c >= 0);
    nevents = 0;
    close_behind_the_models_back(c);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), EBADF);
    CHECK_EVENT(c, 0);
    CHECK_EQ(cabi_census().containers, 0); /* the stale container was released */

    c2 = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    CHECK_EVENT(c2, 1);
    close_behind_the_models_back(c2);
    other = open("/dev/null", O_RDONLY);
    CHECK_EQ(other, c2);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&other), EBADFD);
    CHECK_EVENT(c2, 0);
    close(other);
    CHECK_EQ(swiftvfio_close(g), 0);
    CHECK_EVENT(g, 0);
    CHECK_NOTHING_OPEN();
}

static void test_removed_observer_hears_nothing(void)
{
    int g;
    swiftvfio_set_fd_observer(NULL);
    nevents = 0;
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(g >= 0);
    CHECK_EQ(swiftvfio_close(g), 0);
    CHECK_EQ(nevents, 0);
}

int main(void)
{
    cabi_timeout(60);
    test_replay_on_registration();
    test_each_change();
    test_model_validates_the_fds_it_is_given();
    test_removed_observer_hears_nothing();
    CHECK_EQ(cabi_warnings(), 0);
    return cabi_summary();
}
