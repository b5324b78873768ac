// SPDX-License-Identifier: Apache-2.0
/* An unmodified VFIO client for `vfioctl state` (Scripts/test-tools.sh): no libswiftvfio, plain
 * open/ioctl as the vfio.rst sample issues them, run under `vfioctl run` with SWIFTVFIO_CONTROL=1.
 *
 * It sets up group 26 of the built-in topology in a type1 container with one 1 MiB DMA mapping at
 * IOVA 0x100000 and opens device 0000:06:0d.0, prints "ready", then obeys lines on stdin:
 *   measure MS   calls VFIO_GROUP_GET_STATUS for MS milliseconds, timing each call; prints
 *                "calls N p50 P p99 Q max M" (nanoseconds)
 *   quit         closes everything and exits 0
 * The script times the calls once alone and once while `vfioctl state` is asked in a loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DIE(...) do { fprintf(stderr, "state_client: " __VA_ARGS__); fprintf(stderr, ": %s\n", strerror(errno)); exit(1); } while (0)

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    int container = open("/dev/vfio/vfio", O_RDWR);
    if (container < 0) DIE("open /dev/vfio/vfio");
    int group = open("/dev/vfio/26", O_RDWR);
    if (group < 0) DIE("open /dev/vfio/26");
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)) DIE("SET_CONTAINER");
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) DIE("SET_IOMMU");
    void *mem = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                                            .vaddr = (uintptr_t)mem, .iova = 0x100000, .size = 1 << 20 };
    if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map)) DIE("MAP_DMA");
    int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0");
    if (device < 0) DIE("GET_DEVICE_FD");
    printf("ready\n");
    fflush(stdout);

    char line[128];
    static uint64_t samples[1 << 22];
    while (fgets(line, sizeof(line), stdin)) {
        unsigned ms;
        if (sscanf(line, "measure %u", &ms) == 1) {
            size_t n = 0;
            uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
            struct vfio_group_status st = { .argsz = sizeof(st) };
            for (;;) {
                uint64_t t0 = now_ns();
                if (t0 >= end || n == sizeof(samples) / sizeof(samples[0])) break;
                if (ioctl(group, VFIO_GROUP_GET_STATUS, &st)) DIE("GET_STATUS");
                samples[n++] = now_ns() - t0;
            }
            qsort(samples, n, sizeof(samples[0]), cmp_u64);
            printf("calls %zu p50 %llu p99 %llu max %llu\n", n, (unsigned long long)samples[n / 2],
                   (unsigned long long)samples[n * 99 / 100], (unsigned long long)samples[n - 1]);
            fflush(stdout);
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        }
    }
    close(device);
    close(group);
    close(container);
    return 0;
}
