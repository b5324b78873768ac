// SPDX-License-Identifier: Apache-2.0
/* Several threads opening, using and closing model fds at once, while other threads churn plain
 * fds (pipes, /dev/null) whose numbers the model's fds keep reusing, and one closes model fds
 * behind the interposer's back (fclose of an fdopen()ed stream). No call may be misrouted: a pipe
 * always answers as a pipe, a model fd as the model. Built-in default topology. */
#include "tp.h"
#include <dirent.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define ROUNDS 300
static atomic_int failures, model_rounds, busy_rounds, plain_rounds;
static pthread_mutex_t report = PTHREAD_MUTEX_INITIALIZER;

#define T_CHECK(cond, ...)                                                                        \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            atomic_fetch_add(&failures, 1);                                                       \
            pthread_mutex_lock(&report);                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            pthread_mutex_unlock(&report);                                                        \
        }                                                                                         \
    } while (0)

/* Uses one group end to end in a container of its own. */
static void *model_worker(void *arg) {
    const char *group_path = arg;
    const char *name = strcmp(group_path, "/dev/vfio/26") == 0 ? "0000:06:0d.0" : "0000:07:00.0";
    for (int i = 0; i < ROUNDS; i++) {
        int c = open("/dev/vfio/vfio", O_RDWR);
        T_CHECK(c >= 0, "open container: %s", tp_errname(errno));
        if (c < 0) continue;
        T_CHECK(ioctl(c, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "api version on %d: %s", c, tp_errname(errno));
        int cd = dup(c);
        T_CHECK(cd >= 0 && ioctl(cd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1, "dup'd container %d: %s", cd, tp_errname(errno));
        int g = open(group_path, O_RDWR);
        if (g < 0) {
            T_CHECK(errno == EBUSY, "open %s: %s", group_path, tp_errname(errno));
            atomic_fetch_add(&busy_rounds, 1);
        } else {
            struct vfio_group_status st = { .argsz = sizeof st };
            T_CHECK(ioctl(g, VFIO_GROUP_GET_STATUS, &st) == 0 && st.flags == VFIO_GROUP_FLAGS_VIABLE,
                    "status of %d: %s, flags 0x%x", g, tp_errname(errno), st.flags);
            T_CHECK(ioctl(g, VFIO_GROUP_SET_CONTAINER, &cd) == 0, "set container %d on %d: %s", cd, g, tp_errname(errno));
            T_CHECK(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "set iommu on %d: %s", c, tp_errname(errno));
            int d = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, name);
            T_CHECK(d >= 0, "device fd: %s", tp_errname(errno));
            if (d >= 0) {
                struct vfio_device_info info = { .argsz = sizeof info };
                T_CHECK(ioctl(d, VFIO_DEVICE_GET_INFO, &info) == 0 && (info.flags & VFIO_DEVICE_FLAGS_PCI),
                        "device info on %d: %s", d, tp_errname(errno));
                T_CHECK(close(d) == 0, "close device %d: %s", d, tp_errname(errno));
            }
            T_CHECK(close(g) == 0, "close group %d: %s", g, tp_errname(errno));
            atomic_fetch_add(&model_rounds, 1);
        }
        if (cd >= 0) T_CHECK(close(cd) == 0, "close %d: %s", cd, tp_errname(errno));
        T_CHECK(close(c) == 0, "close container %d: %s", c, tp_errname(errno));
    }
    return NULL;
}

/* Plain fds: they must always answer as what they are. */
static void *plain_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS * 4; i++) {
        int p[2];
        T_CHECK(pipe(p) == 0, "pipe: %s", tp_errname(errno));
        T_CHECK(write(p[1], "abcd", 4) == 4, "write to pipe %d: %s", p[1], tp_errname(errno));
        int n = -1;
        T_CHECK(ioctl(p[0], FIONREAD, &n) == 0 && n == 4, "FIONREAD on pipe %d: %s, n=%d", p[0], tp_errname(errno), n);
        errno = 0;
        T_CHECK(ioctl(p[0], VFIO_GET_API_VERSION) == -1 && errno == ENOTTY, "VFIO ioctl on pipe %d: %s", p[0], tp_errname(errno));
        char buf[4];
        T_CHECK(read(p[0], buf, 4) == 4 && memcmp(buf, "abcd", 4) == 0, "read from pipe %d: %s", p[0], tp_errname(errno));
        int d = dup(p[0]);
        T_CHECK(d >= 0 && close(d) == 0, "dup/close of pipe: %s", tp_errname(errno));
        T_CHECK(close(p[0]) == 0 && close(p[1]) == 0, "close pipe: %s", tp_errname(errno));
        int z = open("/dev/null", O_RDWR);
        T_CHECK(z >= 0 && write(z, "x", 1) == 1 && read(z, buf, 1) == 0, "/dev/null %d: %s", z, tp_errname(errno));
        if (z >= 0) close(z);
        atomic_fetch_add(&plain_rounds, 1);
    }
    return NULL;
}

/* Model fds closed inside glibc, unseen by the interposer. */
static void *sneaky_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int c = open("/dev/vfio/vfio", O_RDWR);
        T_CHECK(c >= 0, "open container: %s", tp_errname(errno));
        if (c < 0) continue;
        FILE *f = fdopen(c, "r");
        T_CHECK(f != NULL, "fdopen: %s", tp_errname(errno));
        if (f) fclose(f);
        else close(c);
    }
    return NULL;
}

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

int main(void) {
    tp_require_preload();
    /* The model's own descriptors (its devices' memory) appear when it loads: count after that. */
    OK(close(OK(open("/dev/vfio/vfio", O_RDWR))));
    int before = count_fds();
    pthread_t t[8];
    char *groups[] = { "/dev/vfio/26", "/dev/vfio/26", "/dev/vfio/28", "/dev/vfio/28" };
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, model_worker, groups[i]);
    pthread_create(&t[4], NULL, plain_worker, NULL);
    pthread_create(&t[5], NULL, plain_worker, NULL);
    pthread_create(&t[6], NULL, sneaky_worker, NULL);
    pthread_create(&t[7], NULL, plain_worker, NULL);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);

    EQ(atomic_load(&failures), 0);
    CHECK(atomic_load(&model_rounds) > 0, "no model round got a group");
    EQ(atomic_load(&model_rounds) + atomic_load(&busy_rounds), 4 * ROUNDS);
    EQ(atomic_load(&plain_rounds), 3 * 4 * ROUNDS);
    /* Nothing leaked: both groups open again, and the process has the fds it started with. */
    int g = OK(open("/dev/vfio/26", O_RDWR));
    int g2 = OK(open("/dev/vfio/28", O_RDWR));
    OK(close(g));
    OK(close(g2));
    EQ(count_fds(), before);
    printf("model rounds %d, EBUSY rounds %d, plain rounds %d\n", atomic_load(&model_rounds),
           atomic_load(&busy_rounds), atomic_load(&plain_rounds));
    return tp_done();
}
