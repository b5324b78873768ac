// SPDX-License-Identifier: Apache-2.0
/* Stress through the C ABI with the example KVM consumer (issue 7, item 4): threads doing random
 * legal and illegal operations on shared groups, containers and devices: open, close, dup,
 * SET/UNSET_CONTAINER, SET_IOMMU, GET_DEVICE_FD, and KVM GROUP_ADD/GROUP_DEL through
 * examples-c/kvm_vfio.c, for a bounded time (SWIFTVFIO_STRESS_SECONDS, default 2). Checked at the
 * end: every errno is one the kernel could give; the model is empty after teardown (no file, fd
 * or VM reference left, no WARN); the VM's reference count is back to its creator's; every
 * non-coherent DMA registration was undone. A watchdog aborts (with a message) on a deadlock. */
#include "cabi_test.h"

#include "../../examples-c/kvm.h"
#include "../../Sources/CSwiftVFIOPreload/kvm/kvm_vfio.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define THREADS 4

static struct kvm *vm;
static struct kvm_vfio *kv;
static atomic_int stop, ops, unexpected;
static atomic_long heartbeat;
static const char *groups[] = { "/dev/vfio/26", "/dev/vfio/27", "/dev/vfio/28" };
static const char *devices[] = { "0000:06:0d.0", "0000:06:0e.0", "0000:07:00.0" };

/* Errnos the kernel can return on these paths; anything else is a model bug. */
static int expected_errno(int e)
{
    switch (e) {
    case EPERM: case ENOENT: case EBADF: case EBUSY: case EEXIST: case ENODEV: case EINVAL:
    case EFAULT: case ENOTTY: case EBADFD: case EMFILE:
        return 1;
    default:
        return 0;
    }
}

static void note(int rc)
{
    atomic_fetch_add(&ops, 1);
    if (rc < 0 && !expected_errno(rc == -1 ? errno : -rc)) {
        fprintf(stderr, "unexpected errno %d\n", rc == -1 ? errno : -rc);
        atomic_fetch_add(&unexpected, 1);
    }
}

static void *worker(void *arg)
{
    unsigned int seed = (unsigned int)(uintptr_t)arg * 2654435761u;
    int fds[16];
    int n = 0;
    while (!atomic_load(&stop)) {
        atomic_fetch_add(&heartbeat, 1);
        int g = rand_r(&seed) % 3;
        int pick = n ? (int)(rand_r(&seed) % (unsigned)n) : -1;
        switch (rand_r(&seed) % 10) {
        case 0: case 1: {
            int fd = swiftvfio_open(rand_r(&seed) % 4 ? groups[g] : "/dev/vfio/vfio", O_RDWR);
            note(fd);
            if (fd >= 0 && n < 16) fds[n++] = fd; else if (fd >= 0) swiftvfio_close(fd);
            break;
        }
        case 2:
            if (pick >= 0) { note(swiftvfio_close(fds[pick])); fds[pick] = fds[--n]; }
            break;
        case 3:
            if (pick >= 0 && n < 16) { int d = swiftvfio_dup(fds[pick], 0, 0); note(d); if (d >= 0) fds[n++] = d; }
            break;
        case 4: {
            int c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
            note(c);
            if (c >= 0 && pick >= 0) {
                note(swiftvfio_ioctl(fds[pick], VFIO_GROUP_SET_CONTAINER, (unsigned long)&c));
                note(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
            }
            if (c >= 0) swiftvfio_close(c);
            break;
        }
        case 5:
            if (pick >= 0) note(swiftvfio_ioctl(fds[pick], VFIO_GROUP_UNSET_CONTAINER, 0));
            break;
        case 6:
            if (pick >= 0) {
                int d = swiftvfio_ioctl(fds[pick], VFIO_GROUP_GET_DEVICE_FD, (unsigned long)devices[g]);
                note(d);
                if (d >= 0) swiftvfio_close(d);
            }
            break;
        case 7: case 8:
            if (pick >= 0) {
                int32_t fd = fds[pick];
                uint64_t attr = rand_r(&seed) % 2 ? KVM_DEV_VFIO_GROUP_ADD : KVM_DEV_VFIO_GROUP_DEL;
                note(kvm_vfio_set_attr(kv, KVM_DEV_VFIO_GROUP, attr, (uint64_t)(uintptr_t)&fd));
            }
            break;
        default: {
            struct vfio_group_status st = { .argsz = sizeof(st) };
            if (pick >= 0) note(swiftvfio_ioctl(fds[pick], VFIO_GROUP_GET_STATUS, (unsigned long)&st));
            break;
        }
        }
    }
    for (int i = 0; i < n; i++) swiftvfio_close(fds[i]);
    return NULL;
}

static void *watchdog(void *arg)
{
    int seconds = *(int *)arg;
    long last = -1;
    for (int t = 0; !atomic_load(&stop) || t < 1; t++) {
        sleep(5);
        long now = atomic_load(&heartbeat);
        if (atomic_load(&stop) && now == last) {
            fprintf(stderr, "watchdog: no progress for 5 s after the %d s run: deadlock\n", seconds);
            abort();
        }
        last = now;
        if (atomic_load(&stop)) break;
    }
    return NULL;
}

int main(void)
{
    const char *env = getenv("SWIFTVFIO_STRESS_SECONDS");
    int seconds = env ? atoi(env) : 2;
    vm = kvm_create_vm("stress");
    CHECK_EQ(kvm_vfio_create(vm, &kv), 0);
    int vm_users_before = kvm_users(vm);

    pthread_t t[THREADS], dog;
    pthread_create(&dog, NULL, watchdog, &seconds);
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    sleep((unsigned)seconds);
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

    /* Entries still listed in the consumer hold their group files: release drops them. */
    kvm_vfio_release(kv);
    CHECK_EQ(kvm_users(vm), vm_users_before - 1);    /* the kvm-vfio device's VM reference went */
    CHECK_EQ(atomic_load(&unexpected), 0);
    printf("stress: %d threads, %d s, %d operations (%.0f/s)\n", THREADS, seconds, atomic_load(&ops),
           (double)atomic_load(&ops) / seconds);
    pthread_join(dog, NULL);
    CHECK_NOTHING_OPEN();
    kvm_put_kvm(vm);
    kvm_free_vm(vm);
    return cabi_summary();
}
