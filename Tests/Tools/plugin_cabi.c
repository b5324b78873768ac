// SPDX-License-Identifier: Apache-2.0
/* Device plug-ins through the C ABI (Scripts/test-tools.sh), linked with libswiftvfio.
 *   plugin_cabi good TOPOLOGY   SWIFTVFIO_DRIVERS names libmtty-plugin.so: the plug-in's device
 *                               in group 40 answers swiftvfio_open/ioctl/pread; a topology load
 *                               unbinds and releases it and binds it again; argument errors of
 *                               swiftvfio_driver_register
 *   plugin_cabi control TOPOLOGY  with SWIFTVFIO_CONTROL=1: holds the plug-in's device open,
 *                               prints "ready", waits for a line on stdin (`vfioctl state` reads
 *                               the model meanwhile), closes everything, exits
 *   plugin_cabi bad TOPOLOGY BADFILE   SWIFTVFIO_DRIVERS names libmtty-plugin.so then BADFILE:
 *                               no model from the topology, the error names BADFILE, and the
 *                               good plug-in's driver was unregistered (nothing half-loaded) */
#define _GNU_SOURCE
#include <swiftvfio.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks;
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "plugin_cabi: FAIL line %d: ", __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (last error: %s)\n", swiftvfio_last_error() ? swiftvfio_last_error() : "none"); exit(1); } checks++; } while (0)

static int probe_none(const char *name, void **drvdata) { (void)name; (void)drvdata; return -ENODEV; }
static const struct vfio_device_ops none_ops = { .name = "none" };

static void use_device(void)
{
    int container = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    int group = swiftvfio_open("/dev/vfio/40", O_RDWR);
    CHECK(container >= 0 && group >= 0, "open container %d group %d", container, group);
    CHECK(swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, (unsigned long)&container) == 0, "SET_CONTAINER");
    CHECK(swiftvfio_ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "SET_IOMMU");
    int device = swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:00:05.0");
    CHECK(device >= 0, "GET_DEVICE_FD");
    struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    CHECK(swiftvfio_ioctl(device, VFIO_DEVICE_GET_REGION_INFO, (unsigned long)&cfg) == 0, "config REGION_INFO");
    uint16_t ids[2] = { 0, 0 };
    CHECK(swiftvfio_pread(device, ids, sizeof(ids), (int64_t)cfg.offset) == sizeof(ids), "pread config");
    CHECK(ids[0] == 0x4348 && ids[1] == 0x3253, "ids %04x:%04x", ids[0], ids[1]);
    struct file *f = swiftvfio_fget(device);
    CHECK(f && strcmp(swiftvfio_device_name(swiftvfio_file_device(f)), "0000:00:05.0") == 0, "device name");
    swiftvfio_fput(f);
    CHECK(swiftvfio_close(device) == 0 && swiftvfio_close(group) == 0 && swiftvfio_close(container) == 0, "close");
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: plugin_cabi good|bad TOPOLOGY [BADFILE]\n"); return 2; }
    const char *topology = argv[2];
    struct swiftvfio_census c;
    if (strcmp(argv[1], "control") == 0) {
        int container = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
        int group = swiftvfio_open("/dev/vfio/40", O_RDWR);
        CHECK(container >= 0 && group >= 0, "open");
        CHECK(swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, (unsigned long)&container) == 0, "SET_CONTAINER");
        CHECK(swiftvfio_ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "SET_IOMMU");
        int device = swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:00:05.0");
        CHECK(device >= 0, "GET_DEVICE_FD");
        printf("ready\n");
        fflush(stdout);
        char line[16];
        CHECK(fgets(line, sizeof(line), stdin) != NULL, "no line on stdin");
        CHECK(swiftvfio_close(device) == 0 && swiftvfio_close(group) == 0 && swiftvfio_close(container) == 0, "close");
        CHECK(swiftvfio_census(&c) == 0 && c.fds == 0 && c.warnings == 0, "census fds %d warnings %d", c.fds, c.warnings);
    } else if (strcmp(argv[1], "good") == 0) {
        use_device();
        CHECK(swiftvfio_census(&c) == 0 && c.devices == 2 && c.warnings == 0, "census devices %d warnings %d", c.devices, c.warnings);
        /* Another model: the plug-in device is unregistered and released with the old one... */
        CHECK(swiftvfio_topology_load(NULL) == 0, "load the built-in topology");
        CHECK(swiftvfio_open("/dev/vfio/40", O_RDWR) == -1 && errno == ENOENT, "group 40 gone");
        CHECK(swiftvfio_census(&c) == 0 && c.devices == 4, "built-in census devices %d", c.devices);
        /* ... and bound again in the next model that names it. */
        CHECK(swiftvfio_topology_load(topology) == 0, "reload %s", topology);
        use_device();
        /* swiftvfio_driver_register's argument errors, each with its own errno. */
        CHECK(swiftvfio_driver_register(NULL, &none_ops, probe_none) == -EFAULT, "NULL name");
        CHECK(swiftvfio_driver_register("x", NULL, probe_none) == -EFAULT, "NULL ops");
        CHECK(swiftvfio_driver_register("x", &none_ops, NULL) == -EINVAL, "NULL probe");
        CHECK(swiftvfio_driver_register("vfio-x", &none_ops, probe_none) == -EINVAL, "reserved vfio- name");
        CHECK(swiftvfio_driver_register("pci-stub", &none_ops, probe_none) == -EINVAL, "reserved pci-stub");
        CHECK(swiftvfio_driver_register("", &none_ops, probe_none) == -EINVAL, "empty name");
        CHECK(swiftvfio_driver_register("a:b", &none_ops, probe_none) == -EINVAL, "':' in the name");
        CHECK(swiftvfio_driver_register("mtty", &none_ops, probe_none) == -EEXIST, "mtty twice");
        CHECK(strstr(swiftvfio_last_error(), "libmtty-plugin.so") != NULL, "EEXIST names the plug-in: %s", swiftvfio_last_error());
        /* A driver whose probe declines every device: the device stays unbound, no node. */
        CHECK(swiftvfio_driver_register("none", &none_ops, probe_none) == 0, "register none");
    } else {
        const char *bad = argc > 3 ? argv[3] : "?";
        /* The first use made an empty model; a load fails the same way, naming the file. */
        CHECK(swiftvfio_open("/dev/vfio/40", O_RDWR) == -1 && errno == ENOENT, "group 40 must not exist");
        int r = swiftvfio_topology_load(topology);
        CHECK(r < 0, "load succeeded despite %s", bad);
        CHECK(strstr(swiftvfio_last_error(), "SWIFTVFIO_DRIVERS") && strstr(swiftvfio_last_error(), bad),
              "message does not name %s: %s", bad, swiftvfio_last_error());
        printf("plugin_cabi: error: %s\n", swiftvfio_last_error());
        /* Nothing half-loaded: the good plug-in's "mtty" was unregistered with the failure. */
        CHECK(swiftvfio_driver_register("mtty", &none_ops, probe_none) == 0, "mtty still registered");
    }
    printf("plugin_cabi %s: %d checks passed\n", argv[1], checks);
    return 0;
}
