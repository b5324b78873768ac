// SPDX-License-Identifier: Apache-2.0
/* The user-space sequence of Documentation/driver-api/vfio.rst (docs/TOPOLOGY.md#built-in), as an unmodified
 * client issues it: plain open/ioctl/mmap on /dev/vfio, against the preload's built-in default
 * topology (device 0000:06:0d.0 in IOMMU group 26, bound to vfio-pci). Every call is the
 * documented one; the checks only look at what the calls return.
 * Built twice by Scripts/test-preload.sh: plain, and with -O2 -D_FORTIFY_SOURCE=2
 * -D_FILE_OFFSET_BITS=64 (open64/fcntl64/mmap64 and the fortified entry points). */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    tp_require_preload();
    int container, group, device;
    struct vfio_group_status group_status = { .argsz = sizeof(group_status) };
    struct vfio_iommu_type1_info iommu_info = { .argsz = sizeof(iommu_info) };
    struct vfio_iommu_type1_dma_map dma_map = { .argsz = sizeof(dma_map) };
    struct vfio_device_info device_info = { .argsz = sizeof(device_info) };

    /* Create a new container */
    container = open("/dev/vfio/vfio", O_RDWR);
    CHECK(container >= 0, "open /dev/vfio/vfio: %s", tp_errname(errno));

    /* Unknown API version? */
    EQ(ioctl(container, VFIO_GET_API_VERSION), VFIO_API_VERSION);

    /* Supports the IOMMU driver we want? */
    CHECK(ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) != 0, "no TYPE1 extension");

    /* Open the group */
    group = open("/dev/vfio/26", O_RDWR);
    CHECK(group >= 0, "open /dev/vfio/26: %s", tp_errname(errno));

    /* Test the group is viable and available */
    EQ(ioctl(group, VFIO_GROUP_GET_STATUS, &group_status), 0);
    CHECK(group_status.flags & VFIO_GROUP_FLAGS_VIABLE, "group 26 not viable (flags 0x%x)", group_status.flags);
    CHECK(!(group_status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET), "container already set");

    /* Add the group to the container */
    EQ(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container), 0);

    /* Enable the IOMMU model we want */
    EQ(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);

    /* Get additional IOMMU info */
    EQ(ioctl(container, VFIO_IOMMU_GET_INFO, &iommu_info), 0);
    CHECK(iommu_info.flags & VFIO_IOMMU_INFO_PGSIZES, "no page sizes (flags 0x%x)", iommu_info.flags);
    CHECK(iommu_info.iova_pgsizes & 4096, "4 KiB pages not supported (0x%llx)", (unsigned long long)iommu_info.iova_pgsizes);

    /* Allocate some space and setup a DMA mapping (the sample passes fd 0 with MAP_ANONYMOUS) */
    void *mem = mmap(0, 1024 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0, 0);
    CHECK(mem != MAP_FAILED, "anonymous mmap: %s", tp_errname(errno));
    dma_map.vaddr = (unsigned long)mem;
    dma_map.size = 1024 * 1024;
    dma_map.iova = 0; /* 1MB starting at 0x0 from device view */
    dma_map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    EQ(ioctl(container, VFIO_IOMMU_MAP_DMA, &dma_map), 0);

    /* Get a file descriptor for the device */
    device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0");
    CHECK(device >= 0, "GET_DEVICE_FD: %s", tp_errname(errno));
    CHECK(fcntl(device, F_GETFD) & FD_CLOEXEC, "device fd is not close-on-exec");

    /* Test and setup the device (the sample goes on past GET_DEVICE_FD) */
    EQ(ioctl(device, VFIO_DEVICE_GET_INFO, &device_info), 0);
    CHECK(device_info.flags & VFIO_DEVICE_FLAGS_PCI, "not a PCI device (flags 0x%x)", device_info.flags);
    CHECK(device_info.num_regions >= VFIO_PCI_CONFIG_REGION_INDEX + 1, "%u regions", device_info.num_regions);
    for (unsigned i = 0; i < device_info.num_regions; i++) {
        struct vfio_region_info reg = { .argsz = sizeof(reg) };
        reg.index = i;
        int r = ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &reg);
        /* The VGA region of a non-VGA device is EINVAL, as in the kernel. */
        CHECK(r == 0 || (i == VFIO_PCI_VGA_REGION_INDEX && errno == EINVAL), "region %u: %s", i, tp_errname(errno));
    }
    for (unsigned i = 0; i < device_info.num_irqs; i++) {
        struct vfio_irq_info irq = { .argsz = sizeof(irq) };
        irq.index = i;
        EQ(ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, &irq), 0);
    }
    /* Gratuitous device reset and go... */
    EQ(ioctl(device, VFIO_DEVICE_RESET), 0);

    /* Config space through the device fd: pread at the config region's offset. */
    struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    EQ(ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &cfg), 0);
    unsigned short ids[2] = { 0, 0 };
    EQ(pread(device, ids, sizeof ids, (off_t)cfg.offset), (long)sizeof ids);
    CHECK(ids[0] != 0 && ids[0] != 0xffff, "vendor id 0x%04x", ids[0]);

    EQ(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &(struct vfio_iommu_type1_dma_unmap){
                                                  .argsz = sizeof(struct vfio_iommu_type1_dma_unmap),
                                                  .iova = 0, .size = 1024 * 1024 }),
       0);
    EQ(close(device), 0);
    EQ(ioctl(group, VFIO_GROUP_UNSET_CONTAINER), 0);
    EQ(close(group), 0);
    EQ(close(container), 0);
    munmap(mem, 1024 * 1024);
    return tp_done();
}
