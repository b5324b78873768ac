// SPDX-License-Identifier: Apache-2.0
/* mtty_plugin: mtty.c's driver as a device plug-in (SWIFTVFIO_DRIVERS), so an UNMODIFIED client
 * run with `vfioctl run` drives it through /dev/vfio like any VFIO device.
 *
 *   make plugin                     builds build/libmtty-plugin.so
 *   SWIFTVFIO_DRIVERS=$PWD/build/libmtty-plugin.so \
 *     vfioctl run --topology mtty-topology.json PROGRAM
 *
 * A topology device whose "driver" is "mtty" (mtty-topology.json: 0000:00:05.0 in IOMMU group
 * 40) is served by this driver: the library calls mtty_plugin_probe() for it, then allocates and
 * registers a VFIO device with the ops below in the device's IOMMU group. The device is the
 * mtty sample's PCI serial port (config space 4348:3253, BAR0 eight 16550 registers in
 * loopback); as a physical device in an IOMMU group it uses the physical iommufd helpers. */
#define _GNU_SOURCE
#include "mtty.h"

#include <swiftvfio.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plug-in's entry point: the library calls it once after loading the plug-in. */
int swiftvfio_plugin_init(void);

static struct vfio_device_ops plugin_ops;

/* Each device's state lives from its probe to its release op. */
static void mtty_plugin_free(struct mtty_state *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

/* Called for each topology device bound to "mtty", before its VFIO device exists. */
static int mtty_plugin_probe(const char *device_name, void **drvdata)
{
    struct mtty_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    snprintf(s->name, sizeof(s->name), "%s", device_name);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->on_release = mtty_plugin_free;
    *drvdata = s;
    return 0;
}

int swiftvfio_plugin_init(void)
{
    plugin_ops = mtty_dev_ops;
    plugin_ops.name = "mtty";
    /* A device in a real IOMMU group: the physical iommufd helpers, not the emulated ones. */
    plugin_ops.bind_iommufd = vfio_iommufd_physical_bind;
    plugin_ops.unbind_iommufd = vfio_iommufd_physical_unbind;
    plugin_ops.attach_ioas = vfio_iommufd_physical_attach_ioas;
    return swiftvfio_driver_register("mtty", &plugin_ops, mtty_plugin_probe);
}
