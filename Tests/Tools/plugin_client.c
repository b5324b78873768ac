// SPDX-License-Identifier: Apache-2.0
/* An unmodified VFIO client of a plug-in device (Scripts/test-tools.sh): no libswiftvfio, plain
 * open/ioctl/pread/pwrite, run under `vfioctl run --topology examples-c/mtty-topology.json` with
 * SWIFTVFIO_DRIVERS naming examples-c's libmtty-plugin.so. It finds the device in IOMMU group
 * 40, checks what the mtty driver says about it and loops bytes through its UART (BAR0).
 * Prints "plugin_client: N checks passed" and exits 0, or says what failed and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int checks;
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "plugin_client: FAIL line %d: ", __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (errno %s)\n", strerror(errno)); exit(1); } checks++; } while (0)

int main(int argc, char **argv)
{
    const char *group_path = argc > 1 ? argv[1] : "/dev/vfio/40";
    const char *name = argc > 2 ? argv[2] : "0000:00:05.0";
    int container = open("/dev/vfio/vfio", O_RDWR);
    CHECK(container >= 0, "open /dev/vfio/vfio");
    int group = open(group_path, O_RDWR);
    CHECK(group >= 0, "open %s", group_path);
    struct vfio_group_status st = { .argsz = sizeof(st) };
    CHECK(ioctl(group, VFIO_GROUP_GET_STATUS, &st) == 0, "GET_STATUS");
    CHECK(st.flags & VFIO_GROUP_FLAGS_VIABLE, "group %s not viable (flags 0x%x)", group_path, st.flags);
    CHECK(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) == 0, "SET_CONTAINER");
    CHECK(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "SET_IOMMU");
    int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name);
    CHECK(device >= 0, "GET_DEVICE_FD %s", name);

    struct vfio_device_info info = { .argsz = sizeof(info) };
    CHECK(ioctl(device, VFIO_DEVICE_GET_INFO, &info) == 0, "DEVICE_GET_INFO");
    CHECK(info.flags & VFIO_DEVICE_FLAGS_PCI, "not PCI (flags 0x%x)", info.flags);
    CHECK(info.num_regions == VFIO_PCI_NUM_REGIONS, "%u regions", info.num_regions);

    struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    CHECK(ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &cfg) == 0, "config REGION_INFO");
    CHECK(cfg.size == 256, "config size %llu", (unsigned long long)cfg.size);
    uint16_t ids[2];
    CHECK(pread(device, ids, sizeof(ids), (off_t)cfg.offset + PCI_VENDOR_ID) == sizeof(ids), "pread config");
    CHECK(ids[0] == 0x4348 && ids[1] == 0x3253, "ids %04x:%04x", ids[0], ids[1]);

    struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
    CHECK(ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &bar) == 0, "BAR0 REGION_INFO");
    CHECK(bar.size == 8 && (bar.flags & VFIO_REGION_INFO_FLAG_WRITE), "BAR0 size %llu flags 0x%x",
          (unsigned long long)bar.size, bar.flags);
    /* The UART in loopback: a byte written to THR (0) comes back from RBR (0); LSR (5) says
     * data ready while it waits. */
    const char *msg = "vfio";
    for (const char *p = msg; *p; p++) {
        CHECK(pwrite(device, p, 1, (off_t)bar.offset + 0) == 1, "pwrite THR");
        uint8_t lsr = 0, c = 0;
        CHECK(pread(device, &lsr, 1, (off_t)bar.offset + 5) == 1 && (lsr & 0x01), "LSR 0x%x: no data ready", lsr);
        CHECK(pread(device, &c, 1, (off_t)bar.offset + 0) == 1 && c == (uint8_t)*p, "RBR 0x%x, expected 0x%x", c, *p);
    }
    uint8_t lsr = 0xff;
    CHECK(pread(device, &lsr, 1, (off_t)bar.offset + 5) == 1 && !(lsr & 0x01), "LSR 0x%x after draining", lsr);
    /* Beyond the region: the driver's own bounds check. */
    uint8_t b;
    CHECK(pread(device, &b, 1, (off_t)bar.offset + 8) < 0 && errno == EINVAL, "read past BAR0");

    CHECK(close(device) == 0 && close(group) == 0 && close(container) == 0, "close");
    printf("plugin_client: %d checks passed\n", checks);
    return 0;
}
