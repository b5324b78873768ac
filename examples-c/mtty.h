// SPDX-License-Identifier: Apache-2.0
/* mtty.h: the mtty-shaped C driver of mtty.c, for its demo and the C ABI tests. */
#ifndef EXAMPLES_MTTY_H
#define EXAMPLES_MTTY_H

#include <swiftvfio.h>

#include <pthread.h>
#include <stdint.h>

struct mtty_state {
    char name[32];
    struct device *dev;      /* the bus device (the mdev) */
    struct vfio_device *vdev;
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* signalled by every request */
    uint8_t config[256];     /* PCI config space */
    uint8_t uart[8];         /* BAR0 registers */
    uint8_t fifo[16];        /* loopback receive FIFO */
    unsigned fifo_head, fifo_count;
    struct kvm *kvm_at_open; /* swiftvfio_device_kvm() in the last open_device */
    int fail_open;           /* a -errno for open_device to return (tests) */
    unsigned requests[16];   /* request counts received, in order */
    int nr_requests;
    char last_match[64];
    unsigned last_ioctl_cmd;
    struct {
        int init, release, open_device, close_device, read, write, ioctl, match;
    } calls;
    void (*on_release)(struct mtty_state *s);
};

extern const struct vfio_device_ops mtty_dev_ops;

/* Creates bus device `name`, binds the driver, allocates and registers the emulated VFIO device.
 * 0 or -errno. */
int mtty_probe(struct mtty_state *s, const char *name);
/* Unregisters (blocking until the device's fds close), puts the device, unbinds, removes. */
void mtty_remove(struct mtty_state *s);
/* The id of the device's (fake) IOMMU group: its node is /dev/vfio/<id>. */
int mtty_group_id(struct mtty_state *s);

#endif
