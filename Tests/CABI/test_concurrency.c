// SPDX-License-Identifier: Apache-2.0
/* The C ABI from several threads: counted references taken and dropped concurrently stay
 * balanced and keep one pointer per file; a topology load while a call is in progress on another
 * thread (a blocked unregistration) answers EBUSY instead of pulling the model from under it;
 * last_error is per thread. */
#include "cabi_test.h"

#include <pthread.h>
#include <stdatomic.h>

#define THREADS 4
#define ROUNDS 5000

static int group_fd;
static struct file *expected;
static atomic_int mismatches, failures;

static void *hammer_references(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < ROUNDS; i++) {
        struct file *f = swiftvfio_fget(group_fd);
        if (f != expected)
            atomic_fetch_add(&mismatches, 1);
        if (!vfio_file_is_group(f))
            atomic_fetch_add(&failures, 1);
        swiftvfio_fput(f);
    }
    return NULL;
}

static void test_references_from_threads(void)
{
    pthread_t t[THREADS];
    int i, files_before;

    group_fd = swiftvfio_open("/dev/vfio/26", O_RDWR);
    expected = swiftvfio_fget(group_fd); /* held throughout, so every fget gives this pointer */
    files_before = cabi_census().files;
    for (i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer_references, NULL);
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(atomic_load(&mismatches), 0);
    CHECK_EQ(atomic_load(&failures), 0);
    CHECK_EQ(cabi_census().files, files_before);
    CHECK_EQ(cabi_warnings(), 0);
    swiftvfio_fput(expected);
    EXPECT_WARNS(1, swiftvfio_fput(expected)); /* the balance is exact */
    swiftvfio_close(group_fd);
    CHECK_NOTHING_OPEN();
}

/* Threads that open and close groups and devices while others misuse handles. */
static void *open_close(void *arg)
{
    const char *group = arg;
    int i;
    for (i = 0; i < 300; i++) {
        int c, g, d = cabi_open_device(group, strcmp(group, "/dev/vfio/26") == 0 ? "0000:06:0d.0" : "0000:07:00.0", &c, &g);
        if (d < 0)
            atomic_fetch_add(&failures, 1);
        swiftvfio_close(d);
        swiftvfio_close(g);
        swiftvfio_close(c);
    }
    return NULL;
}

static void *misuse(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < 3000; i++) {
        if (vfio_file_is_group((struct file *)(uintptr_t)(0x5f10000000000000ULL + ((uint64_t)i << 4))) &&
            i > 1000000)
            atomic_fetch_add(&failures, 1);
        swiftvfio_fput((struct file *)(uintptr_t)(0x1000 + i));
    }
    return NULL;
}

static void test_mixed_threads(void)
{
    pthread_t a, b, m;
    atomic_store(&failures, 0);
    pthread_create(&a, NULL, open_close, "/dev/vfio/26");
    pthread_create(&b, NULL, open_close, "/dev/vfio/28");
    pthread_create(&m, NULL, misuse, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_join(m, NULL);
    CHECK_EQ(atomic_load(&failures), 0);
    CHECK_NOTHING_OPEN();
}

/* A blocked unregistration is a call in progress: the model cannot be replaced under it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int requested;

static void on_request(struct vfio_device *vdev, unsigned int count)
{
    (void)vdev;
    (void)count;
    pthread_mutex_lock(&lock);
    requested = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static const struct vfio_device_ops request_ops = {
    .name = "blocking",
    .bind_iommufd = vfio_iommufd_emulated_bind,
    .unbind_iommufd = vfio_iommufd_emulated_unbind,
    .attach_ioas = vfio_iommufd_emulated_attach_ioas,
    .request = on_request,
};

static struct vfio_device *blocking_vdev;

static void *unregister_thread(void *arg)
{
    (void)arg;
    vfio_unregister_group_dev(blocking_vdev);
    return NULL;
}

static void *other_thread_error(void *arg)
{
    (void)arg;
    /* This thread's own last error, not the main thread's. */
    swiftvfio_close(-7);
    return (void *)(uintptr_t)(swiftvfio_last_error() && strstr(swiftvfio_last_error(), "swiftvfio_close"));
}

static void test_load_while_a_call_is_in_progress(void)
{
    struct device *dev;
    struct iommu_group *ig;
    pthread_t t;
    char path[32];
    int iommufd, g, d;
    void *ok;

    CHECK_EQ(swiftvfio_device_add("blocking-0", 0, &dev), 0);
    CHECK_EQ(swiftvfio_alloc_device(dev, &request_ops, NULL, &blocking_vdev), 0);
    CHECK_EQ(vfio_register_emulated_iommu_dev(blocking_vdev), 0);
    ig = iommu_group_get(dev);
    snprintf(path, sizeof(path), "/dev/vfio/%d", iommu_group_id(ig));
    iommu_group_put(ig);
    iommufd = swiftvfio_open("/dev/iommu", O_RDWR);
    g = swiftvfio_open(path, O_RDWR);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&iommufd), 0);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"blocking-0");
    CHECK(d >= 0);
    swiftvfio_close(g);
    swiftvfio_close(iommufd);

    pthread_create(&t, NULL, unregister_thread, NULL);
    pthread_mutex_lock(&lock);
    while (!requested)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    /* The unregistration waits for d; a load now must refuse. */
    CHECK_EQ(swiftvfio_topology_load(NULL), -EBUSY);
    CHECK_LAST_ERROR("in progress");
    swiftvfio_close(d);
    pthread_join(t, NULL);
    vfio_put_device(blocking_vdev);
    CHECK_EQ(swiftvfio_device_remove(dev), 0);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);

    pthread_create(&t, NULL, other_thread_error, NULL);
    pthread_join(t, &ok);
    CHECK(ok != NULL);
    CHECK_LAST_ERROR("in progress"); /* the main thread's is unchanged */
}

int main(void)
{
    cabi_timeout(120);
    test_references_from_threads();
    test_mixed_threads();
    test_load_while_a_call_is_in_progress();
    CHECK_NOTHING_OPEN();
    return cabi_summary();
}
