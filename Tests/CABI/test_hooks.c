// SPDX-License-Identifier: Apache-2.0
/* The test hooks (swiftvfio_irq_raise, swiftvfio_dma_mappings) and errors that say why
 * (swiftvfio_last_error() carries the ioctl's name and the failed check): success and every
 * errno, on the built-in topology's vfio-pci device 0000:06:0d.0 in group 26. */
#include "cabi_test.h"

#include <sys/eventfd.h>
#include <sys/mman.h>

#define DEV "0000:06:0d.0"

/* VFIO_DEVICE_SET_IRQS with one eventfd (or none) after the header. */
static int set_irq(int device, uint32_t index, uint32_t flags, int32_t fd, uint32_t count)
{
    uint32_t buf[6];
    struct vfio_irq_set hdr;
    memset(&hdr, 0, sizeof(hdr));
    hdr.argsz = sizeof(buf);
    hdr.flags = flags;
    hdr.index = index;
    hdr.start = 0;
    hdr.count = count;
    memcpy(buf, &hdr, sizeof(hdr));
    memcpy(&buf[5], &fd, sizeof(fd));
    return swiftvfio_ioctl(device, VFIO_DEVICE_SET_IRQS, (unsigned long)buf);
}

/* The eventfd's counter (0 when nothing was signalled), non-blocking. */
static uint64_t drain(int efd)
{
    uint64_t v = 0;
    if (read(efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        return 0;
    return v;
}

static int open_device(int *c, int *g)
{
    *c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    *g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(*c >= 0 && *g >= 0);
    CHECK_EQ(swiftvfio_ioctl(*g, VFIO_GROUP_SET_CONTAINER, (unsigned long)c), 0);
    CHECK_EQ(swiftvfio_ioctl(*c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    return swiftvfio_ioctl(*g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)DEV);
}

static void test_irq_raise(void)
{
    int c, g, d, efd, efd2;
    struct vfio_irq_info msi = { .argsz = sizeof(msi), .index = VFIO_PCI_MSI_IRQ_INDEX };

    /* Errors before any device is open. */
    CHECK_EQ(swiftvfio_irq_raise(NULL, 0, 0), -EFAULT);
    CHECK_EQ(swiftvfio_irq_raise((const char *)8, 0, 0), -EFAULT);
    CHECK_EQ(swiftvfio_irq_raise("0000:99:00.0", 0, 0), -ENXIO);
    CHECK_LAST_ERROR("swiftvfio_irq_raise: ENXIO: 0000:99:00.0: no vfio-pci model device of that name");

    d = open_device(&c, &g);
    CHECK(d >= 0);
    efd = eventfd(0, EFD_NONBLOCK);
    efd2 = eventfd(0, EFD_NONBLOCK);
    CHECK(efd >= 0 && efd2 >= 0);

    /* The kernel's loopback checks, in its order. */
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_NUM_IRQS, 0), -EINVAL);
    CHECK_LAST_ERROR("IRQ index 5 >= num_irqs 5");
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_INTX_IRQ_INDEX, 1), -EINVAL);
    CHECK_LAST_ERROR("vector 1 >= count 1 of IRQ index 0");
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_INTX_IRQ_INDEX, 0), -EINVAL);   /* INTx not enabled */
    CHECK_LAST_ERROR("IRQ index 0 vector 0 not enabled by VFIO_DEVICE_SET_IRQS");
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_REQ_IRQ_INDEX, 0), -EINVAL);    /* no REQ eventfd */

    /* INTx: signalled, then automasked (held pending), delivered at UNMASK. */
    CHECK_EQ(set_irq(d, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, efd, 1), 0);
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_INTX_IRQ_INDEX, 0), 1);
    CHECK_EQ(drain(efd), 1);
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_INTX_IRQ_INDEX, 0), 0);
    CHECK_EQ(drain(efd), 0);
    CHECK_EQ(set_irq(d, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, -1, 1), 0);
    CHECK_EQ(drain(efd), 1);
    /* MSI while in INTx mode: not enabled. */
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_MSI_IRQ_INDEX, 0), -EINVAL);

    /* MSI: vector 0 signals its eventfd. */
    CHECK_EQ(swiftvfio_ioctl(d, VFIO_DEVICE_GET_IRQ_INFO, (unsigned long)&msi), 0);
    CHECK_EQ(set_irq(d, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, -1, 0), 0);
    if (msi.count > 0) {
        CHECK_EQ(set_irq(d, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, efd2, 1), 0);
        CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_MSI_IRQ_INDEX, 0), 1);
        CHECK_EQ(drain(efd2), 1);
        CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_MSI_IRQ_INDEX, msi.count), -EINVAL);
        CHECK_EQ(set_irq(d, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, -1, 0), 0);
    } else {
        CHECK(!"the built-in device has MSI");
    }
    /* REQ with an eventfd. */
    CHECK_EQ(set_irq(d, VFIO_PCI_REQ_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, efd, 1), 0);
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_REQ_IRQ_INDEX, 0), 1);
    CHECK_EQ(drain(efd), 1);

    CHECK_EQ(swiftvfio_close(d), 0);
    /* Closed: the device's interrupts are torn down with its last close. */
    CHECK_EQ(swiftvfio_irq_raise(DEV, VFIO_PCI_REQ_IRQ_INDEX, 0), -EINVAL);
    CHECK_EQ(swiftvfio_close(g), 0);
    CHECK_EQ(swiftvfio_close(c), 0);
    close(efd);
    close(efd2);
    CHECK_NOTHING_OPEN();
}

static int map(int c, uint64_t vaddr, uint64_t iova, uint64_t size, uint32_t flags, uint32_t argsz)
{
    struct vfio_iommu_type1_dma_map m = { .argsz = argsz, .flags = flags, .vaddr = vaddr, .iova = iova, .size = size };
    return swiftvfio_ioctl(c, VFIO_IOMMU_MAP_DMA, (unsigned long)&m);
}

static void test_dma_mappings(void)
{
    int c, g, c2;
    struct swiftvfio_dma_mapping out[4];
    uint8_t *mem = mmap(NULL, 0x4000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t va = (uint64_t)(uintptr_t)mem;
    struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .flags = VFIO_DMA_UNMAP_FLAG_VADDR, .iova = 0x10000, .size = 0x1000 };

    CHECK(mem != MAP_FAILED && ro != MAP_FAILED);
    CHECK_EQ(swiftvfio_dma_mappings(-1, NULL, 0), -EBADF);
    CHECK_EQ(swiftvfio_dma_mappings(0, NULL, 0), -EBADF);          /* stdin: not a model fd */

    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK_EQ(swiftvfio_dma_mappings(g, NULL, 0), -EINVAL);        /* a group fd */
    CHECK_LAST_ERROR("is not a container");
    CHECK_EQ(swiftvfio_dma_mappings(c, NULL, 0), -EINVAL);        /* no backend yet */
    CHECK_LAST_ERROR("VFIO_SET_IOMMU not done");
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), 0);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    CHECK_EQ(swiftvfio_dma_mappings(c, NULL, 0), 0);

    /* Errors that say why: the ioctl by name, the check with its values. */
    CHECK_SYSERR(map(c, va, 0, 0x1000, VFIO_DMA_MAP_FLAG_READ, 8), EINVAL);
    CHECK_LAST_ERROR("swiftvfio_ioctl: EINVAL: VFIO_IOMMU_MAP_DMA: argsz 8 < minsz 32");
    CHECK_SYSERR(map(c, va + 1, 0, 0x1000, VFIO_DMA_MAP_FLAG_READ, 32), EINVAL);
    CHECK_LAST_ERROR("VFIO_IOMMU_MAP_DMA: vaddr 0x");
    CHECK_LAST_ERROR("001 not aligned to page size 0x1000");
    CHECK_SYSERR(swiftvfio_ioctl(c, VFIO_IOMMU_MAP_DMA, 16), EFAULT);
    CHECK_LAST_ERROR("VFIO_IOMMU_MAP_DMA: cannot read 32 bytes at 0x10");
    {
        struct vfio_group_status s = { .argsz = 4 };
        CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, (unsigned long)&s), EINVAL);
        CHECK_LAST_ERROR("swiftvfio_ioctl: EINVAL: VFIO_GROUP_GET_STATUS: argsz 4 < minsz 8 (fd ");
    }

    CHECK_EQ(map(c, va + 0x1000, 0x10000, 0x1000, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, 32), 0);
    CHECK_EQ(map(c, va, 0x2000, 0x2000, VFIO_DMA_MAP_FLAG_READ, 32), 0);
    CHECK_EQ(swiftvfio_dma_mappings(c, NULL, 0), 2);
    memset(out, 0xAA, sizeof(out));
    CHECK_EQ(swiftvfio_dma_mappings(c, out, 4), 2);
    /* IOVA order, every field. */
    CHECK_EQ(out[0].iova, 0x2000);
    CHECK_EQ(out[0].size, 0x2000);
    CHECK_EQ(out[0].vaddr, va);
    CHECK_EQ(out[0].flags, SWIFTVFIO_DMA_READ);
    CHECK_EQ(out[0].reserved, 0);
    CHECK_EQ(out[1].iova, 0x10000);
    CHECK_EQ(out[1].size, 0x1000);
    CHECK_EQ(out[1].vaddr, va + 0x1000);
    CHECK_EQ(out[1].flags, SWIFTVFIO_DMA_READ | SWIFTVFIO_DMA_WRITE);
    /* A short buffer gets the first `max`; the count is still the total. */
    memset(out, 0xAA, sizeof(out));
    CHECK_EQ(swiftvfio_dma_mappings(c, out, 1), 2);
    CHECK_EQ(out[0].iova, 0x2000);
    CHECK_EQ(out[1].iova, 0xAAAAAAAAAAAAAAAAull);
    /* Bad buffers. */
    CHECK_EQ(swiftvfio_dma_mappings(c, NULL, 1), -EFAULT);
    CHECK_EQ(swiftvfio_dma_mappings(c, (struct swiftvfio_dma_mapping *)ro, 1), -EFAULT);
    CHECK_EQ(swiftvfio_dma_mappings(c, (struct swiftvfio_dma_mapping *)8, 2), -EFAULT);
    /* UNMAP with VADDR invalidates the vaddr; the flag shows it. */
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_IOMMU_UNMAP_DMA, (unsigned long)&u), 0);
    CHECK_EQ(swiftvfio_dma_mappings(c, out, 4), 2);
    CHECK_EQ(out[1].flags, SWIFTVFIO_DMA_READ | SWIFTVFIO_DMA_WRITE | SWIFTVFIO_DMA_VADDR_INVALID);
    u.flags = 0;
    u.iova = 0;
    u.size = 0x20000;
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_IOMMU_UNMAP_DMA, (unsigned long)&u), 0);
    CHECK_EQ(swiftvfio_dma_mappings(c, NULL, 0), 0);

    /* A second container with no backend, and a closed fd. */
    c2 = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    CHECK_EQ(swiftvfio_dma_mappings(c2, NULL, 0), -EINVAL);
    CHECK_EQ(swiftvfio_close(c2), 0);
    CHECK_EQ(swiftvfio_dma_mappings(c2, NULL, 0), -EBADF);

    CHECK_EQ(swiftvfio_close(g), 0);
    CHECK_EQ(swiftvfio_close(c), 0);
    munmap(mem, 0x4000);
    munmap(ro, 4096);
    CHECK_NOTHING_OPEN();
}

int main(void)
{
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
    test_irq_raise();
    test_dma_mappings();
    return cabi_summary();
}
