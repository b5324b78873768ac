// SPDX-License-Identifier: Apache-2.0
/* mtty: the mtty-shaped C driver (mtty.c) registered with the model and used by a client through
 * its VFIO group, then removed while the client still holds the device: the driver's request op
 * asks the client to let go, and unregistration waits for it. Prints each step; exits 1 if any
 * outcome differs from what VFIO must do. */
#define _GNU_SOURCE
#include "mtty.h"

#include <swiftvfio.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

static void expect(const char *what, long got, long want)
{
    if (got == want) {
        printf("   %-60s ok\n", what);
    } else {
        const char *why = swiftvfio_last_error();
        printf("   %-60s FAILED: got %ld, want %ld%s%s\n", what, got, want, why ? "; last error: " : "", why ? why : "");
        failures++;
    }
}

static struct mtty_state mtty;
static int device = -1;

/* The client: closes its device fd when the driver asks (the first request). */
static void *client_waits_for_request(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mtty.lock);
    while (mtty.nr_requests == 0)
        pthread_cond_wait(&mtty.cond, &mtty.lock);
    pthread_mutex_unlock(&mtty.lock);
    printf("   client: the driver asked for the device back (request %u): closing fd %d\n", mtty.requests[0], device);
    swiftvfio_close(device);
    return NULL;
}

int main(void)
{
    char path[64], id_name[64];
    int iommufd, group, id;
    uint16_t vendor = 0, devid = 0;
    uint8_t lsr = 0, byte = 0;
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct swiftvfio_census c;
    pthread_t client;

    printf("mtty: a C VFIO driver (struct vfio_device_ops) on libswiftvfio's model\n");

    printf("\n1. The driver probes: bus device \"mtty-0\", vfio_register_emulated_iommu_dev()\n");
    expect("mtty_probe", mtty_probe(&mtty, "mtty-0"), 0);
    expect("init op called once", mtty.calls.init, 1);
    id = mtty_group_id(&mtty);
    snprintf(path, sizeof(path), "/dev/vfio/%d", id);
    printf("   the device got a fake IOMMU group of its own: %s\n", path);

    printf("\n2. A client opens %s and attaches it to an iommufd (/dev/iommu, the compat IOAS)\n", path);
    iommufd = swiftvfio_open("/dev/iommu", O_RDWR);
    expect("open /dev/iommu", iommufd >= 0, 1);
    group = swiftvfio_open(path, O_RDWR);
    expect("open the group", group >= 0, 1);
    expect("VFIO_GROUP_SET_CONTAINER(iommufd)", swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, (unsigned long)&iommufd), 0);

    printf("\n3. VFIO_GROUP_GET_DEVICE_FD by the driver's alias: its match op decides\n");
    snprintf(id_name, sizeof(id_name), "%s-serial", mtty.name);
    device = swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)id_name);
    expect("device fd", device >= 0, 1);
    printf("   match was asked about \"%s\"; bind_iommufd/attach_ioas went to vfio_iommufd_emulated_*\n", mtty.last_match);
    expect("open_device called once", mtty.calls.open_device, 1);
    expect("open_device saw no VM (no KVM consumer set one)", mtty.kvm_at_open == NULL, 1);
    expect("GET_DEVICE_FD of a name nobody matches",
           swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"nobody") < 0 ? -errno : 0, -ENODEV);

    printf("\n4. The client uses the device: config space, the UART, an ioctl\n");
    expect("pread vendor id", swiftvfio_pread(device, &vendor, 2, (off_t)VFIO_PCI_CONFIG_REGION_INDEX << 40), 2);
    expect("pread device id", swiftvfio_pread(device, &devid, 2, ((off_t)VFIO_PCI_CONFIG_REGION_INDEX << 40) + 2), 2);
    printf("   config space: vendor 0x%04x, device 0x%04x\n", vendor, devid);
    expect("vendor 0x4348", vendor, 0x4348);
    expect("pwrite 'A' to THR", swiftvfio_pwrite(device, "A", 1, (off_t)VFIO_PCI_BAR0_REGION_INDEX << 40), 1);
    expect("pread LSR", swiftvfio_pread(device, &lsr, 1, ((off_t)VFIO_PCI_BAR0_REGION_INDEX << 40) + 5), 1);
    expect("LSR: data ready", lsr & 1, 1);
    expect("pread RBR", swiftvfio_pread(device, &byte, 1, (off_t)VFIO_PCI_BAR0_REGION_INDEX << 40), 1);
    printf("   loopback: wrote 'A', read '%c'\n", byte);
    expect("the byte came back", byte, 'A');
    expect("VFIO_DEVICE_GET_INFO", swiftvfio_ioctl(device, VFIO_DEVICE_GET_INFO, (unsigned long)&info), 0);
    printf("   %u regions, %u irqs\n", info.num_regions, info.num_irqs);
    expect("an ioctl with a bad pointer: EFAULT, no crash",
           swiftvfio_ioctl(device, VFIO_DEVICE_GET_INFO, 8) < 0 ? -errno : 0, -EFAULT);
    expect("pread out of the region", swiftvfio_pread(device, &byte, 1, ((off_t)VFIO_PCI_BAR0_REGION_INDEX << 40) + 8) < 0 ? -errno : 0, -EINVAL);

    printf("\n5. The driver is removed while the client holds the device fd\n");
    swiftvfio_close(group);
    swiftvfio_close(iommufd);
    pthread_create(&client, NULL, client_waits_for_request, NULL);
    mtty_remove(&mtty); /* blocks until the client closes */
    pthread_join(client, NULL);
    printf("   vfio_unregister_group_dev returned after the client closed; requests seen: %d\n", mtty.nr_requests);
    expect("request op called with count 0 first", mtty.nr_requests >= 1 && mtty.requests[0] == 0, 1);
    expect("close_device called once", mtty.calls.close_device, 1);
    expect("release op called once", mtty.calls.release, 1);
    expect("the group's node is gone", swiftvfio_open(path, O_RDWR) < 0 ? -errno : 0, -ENOENT);

    expect("nothing left: files, fds, devices of the driver, WARNs",
           swiftvfio_census(&c) == 0 ? c.files + c.fds + c.warnings : -1, 0);
    printf("\n%s: %d failure%s\n", failures ? "FAILED" : "OK", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
