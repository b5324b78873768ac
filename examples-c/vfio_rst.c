// SPDX-License-Identifier: Apache-2.0
/* vfio_rst.c: the user-space sequence of Documentation/driver-api/vfio.rst (docs/TOPOLOGY.md#built-in), step by
 * step, through libswiftvfio's system calls instead of open(2)/ioctl(2). Against the built-in
 * default topology it opens the documented group 26 and device 0000:06:0d.0.
 *
 *   usage: vfio_rst [group-id [device-name]]      (default: 26 0000:06:0d.0)
 *
 * Each step prints what it did; any unexpected answer prints the library's last error and exits 1.
 */
#define _GNU_SOURCE
#include <swiftvfio.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

static int fail(const char *what)
{
    const char *why = swiftvfio_last_error();
    fprintf(stderr, "vfio_rst: %s: %s (%s)\n", what, strerror(errno), why ? why : "no message");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *group_id = argc > 1 ? argv[1] : "26";
    const char *device_name = argc > 2 ? argv[2] : "0000:06:0d.0";
    char path[64];
    int container, group, device, i;
    struct vfio_group_status group_status = { .argsz = sizeof(group_status) };
    struct vfio_iommu_type1_info iommu_info = { .argsz = sizeof(iommu_info) };
    struct vfio_iommu_type1_dma_map dma_map = { .argsz = sizeof(dma_map) };
    struct vfio_device_info device_info = { .argsz = sizeof(device_info) };

    /* Create a new container */
    container = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    if (container < 0)
        fail("open /dev/vfio/vfio");
    printf("1. opened the container /dev/vfio/vfio: fd %d\n", container);

    if (swiftvfio_ioctl(container, VFIO_GET_API_VERSION, 0) != VFIO_API_VERSION)
        fail("unknown API version");
    printf("2. VFIO_GET_API_VERSION: %d, as expected\n", VFIO_API_VERSION);

    if (!swiftvfio_ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU))
        fail("doesn't support the IOMMU driver we want");
    printf("3. VFIO_CHECK_EXTENSION(VFIO_TYPE1_IOMMU): supported\n");

    /* Open the group */
    snprintf(path, sizeof(path), "/dev/vfio/%s", group_id);
    group = swiftvfio_open(path, O_RDWR);
    if (group < 0)
        fail(path);
    printf("4. opened the group %s: fd %d\n", path, group);

    /* Test the group is viable and available */
    if (swiftvfio_ioctl(group, VFIO_GROUP_GET_STATUS, (unsigned long)&group_status) < 0)
        fail("VFIO_GROUP_GET_STATUS");
    if (!(group_status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        fprintf(stderr, "vfio_rst: group %s is not viable (not all devices bound for vfio)\n", group_id);
        return 1;
    }
    printf("5. VFIO_GROUP_GET_STATUS: viable\n");

    /* Add the group to the container */
    if (swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, (unsigned long)&container) < 0)
        fail("VFIO_GROUP_SET_CONTAINER");
    printf("6. VFIO_GROUP_SET_CONTAINER: the group is in the container\n");

    /* Enable the IOMMU model we want */
    if (swiftvfio_ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0)
        fail("VFIO_SET_IOMMU");
    printf("7. VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU): the container has its IOMMU\n");

    /* Get additional IOMMU info */
    if (swiftvfio_ioctl(container, VFIO_IOMMU_GET_INFO, (unsigned long)&iommu_info) < 0)
        fail("VFIO_IOMMU_GET_INFO");
    printf("8. VFIO_IOMMU_GET_INFO: flags 0x%x, page sizes 0x%llx\n", iommu_info.flags,
           (unsigned long long)iommu_info.iova_pgsizes);

    /* Allocate some space and setup a DMA mapping */
    dma_map.vaddr = (unsigned long)mmap(0, 1024 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0, 0);
    dma_map.size = 1024 * 1024;
    dma_map.iova = 0; /* 1MB starting at 0x0 from device view */
    dma_map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    if (swiftvfio_ioctl(container, VFIO_IOMMU_MAP_DMA, (unsigned long)&dma_map) < 0)
        fail("VFIO_IOMMU_MAP_DMA");
    printf("   VFIO_IOMMU_MAP_DMA: 1 MiB at IOVA 0x0\n");

    /* Get a file descriptor for the device */
    device = swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)device_name);
    if (device < 0)
        fail("VFIO_GROUP_GET_DEVICE_FD");
    printf("9. VFIO_GROUP_GET_DEVICE_FD(\"%s\"): device fd %d\n", device_name, device);

    /* Test and setup the device */
    if (swiftvfio_ioctl(device, VFIO_DEVICE_GET_INFO, (unsigned long)&device_info) < 0)
        fail("VFIO_DEVICE_GET_INFO");
    printf("10. VFIO_DEVICE_GET_INFO: %u regions, %u irqs, flags 0x%x\n", device_info.num_regions,
           device_info.num_irqs, device_info.flags);

    for (i = 0; i < (int)device_info.num_regions; i++) {
        struct vfio_region_info reg = { .argsz = sizeof(reg) };
        reg.index = i;
        /* vfio.rst ignores the result: a region the device lacks (vfio-pci's VGA region without
         * VGA) answers EINVAL. */
        if (swiftvfio_ioctl(device, VFIO_DEVICE_GET_REGION_INFO, (unsigned long)&reg) < 0) {
            if (errno != EINVAL)
                fail("VFIO_DEVICE_GET_REGION_INFO");
            printf("    region %d: not present (EINVAL)\n", i);
        } else if (reg.size)
            printf("    region %d: size 0x%llx, offset 0x%llx, flags 0x%x\n", i,
                   (unsigned long long)reg.size, (unsigned long long)reg.offset, reg.flags);
    }

    for (i = 0; i < (int)device_info.num_irqs; i++) {
        struct vfio_irq_info irq = { .argsz = sizeof(irq) };
        irq.index = i;
        if (swiftvfio_ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, (unsigned long)&irq) < 0) {
            if (errno != EINVAL)
                fail("VFIO_DEVICE_GET_IRQ_INFO");
            printf("    irq %d: not present (EINVAL)\n", i);
        } else {
            printf("    irq %d: count %u, flags 0x%x\n", i, irq.count, irq.flags);
        }
    }

    /* Gratuitous device reset and go... */
    if (swiftvfio_ioctl(device, VFIO_DEVICE_RESET, 0) < 0)
        fail("VFIO_DEVICE_RESET");
    printf("    VFIO_DEVICE_RESET: done\n");

    swiftvfio_close(device);
    swiftvfio_close(group);
    swiftvfio_close(container);
    munmap((void *)(unsigned long)dma_map.vaddr, 1024 * 1024);
    {
        struct swiftvfio_census c;
        if (swiftvfio_census(&c) < 0)
            fail("swiftvfio_census");
        if (c.files || c.fds || c.kvm_references || c.warnings) {
            fprintf(stderr, "vfio_rst: leaked: %d files, %d fds, %d kvm references, %d warnings\n", c.files,
                    c.fds, c.kvm_references, c.warnings);
            return 1;
        }
    }
    printf("closed everything: no files, fds or warnings left in the model\n");
    return 0;
}
