// SPDX-License-Identifier: Apache-2.0
/* mtty: a C VFIO bus driver on libswiftvfio, in the shape of the kernel's mtty sample
 * (samples/vfio-mdev/mtty.c): an emulated PCI serial port registered with
 * vfio_register_emulated_iommu_dev(), driven by a struct vfio_device_ops, reached by a user-space
 * client through its VFIO group. Written for this project, not copied from the sample.
 *
 * The device: PCI config space (vendor 0x4348, device 0x3253, class "serial controller") and
 * BAR0, eight 16550-style UART registers in loopback (bytes written to THR come back from RBR).
 * The driver records what VFIO asks of it: the struct kvm * it saw at open_device, the request
 * counts while unregistration waits, the names it was asked to match.
 *
 * main() plays both sides: the driver registers its device; a client opens it through the group
 * (iommufd compat: the driver's iommufd ops are the emulated helpers), reads config space and
 * loops a byte through the UART; then the driver unregisters while the client still holds the
 * device fd, and the client closes it when the driver's request op asks.
 */
#define _GNU_SOURCE
#include "mtty.h"

#include <swiftvfio.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Region offsets in the device fd: index << 40, as vfio-pci and mtty lay them out. */
#define MTTY_OFFSET_SHIFT 40
#define MTTY_INDEX(off) ((unsigned)((uint64_t)(off) >> MTTY_OFFSET_SHIFT))
#define MTTY_POS(off) ((uint64_t)(off) & ((1ULL << MTTY_OFFSET_SHIFT) - 1))
#define MTTY_CONFIG_SIZE 256
#define MTTY_BAR0_SIZE 8

/* 16550 register numbers (DLAB 0) and bits used here. */
enum { UART_RX_TX = 0, UART_IER = 1, UART_IIR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7 };
#define UART_LSR_DR 0x01   /* data ready */
#define UART_LSR_THRE 0x20 /* transmit holding register empty */
#define UART_LSR_TEMT 0x40 /* transmitter empty */

static void mtty_reset(struct mtty_state *s)
{
    memset(s->uart, 0, sizeof(s->uart));
    s->fifo_head = s->fifo_count = 0;
}

static void mtty_init_config(struct mtty_state *s)
{
    uint8_t *c = s->config;
    memset(c, 0, sizeof(s->config));
    c[PCI_VENDOR_ID] = 0x48; c[PCI_VENDOR_ID + 1] = 0x43;   /* 0x4348 */
    c[PCI_DEVICE_ID] = 0x53; c[PCI_DEVICE_ID + 1] = 0x32;   /* 0x3253 */
    c[PCI_CLASS_PROG] = 0x02;                               /* 16550-compatible */
    c[PCI_CLASS_DEVICE] = 0x00; c[PCI_CLASS_DEVICE + 1] = 0x07; /* serial controller */
    c[PCI_BASE_ADDRESS_0] = PCI_BASE_ADDRESS_SPACE_IO;
    c[PCI_INTERRUPT_PIN] = 1;
}

/* ---- struct vfio_device_ops ------------------------------------------------------------------ */

static int mtty_init_dev(struct vfio_device *vdev)
{
    struct mtty_state *s = swiftvfio_device_drvdata(vdev);
    s->vdev = vdev;
    mtty_init_config(s);
    mtty_reset(s);
    s->calls.init++;
    return 0;
}

static void mtty_release_dev(struct vfio_device *vdev)
{
    struct mtty_state *s = swiftvfio_device_drvdata(vdev);
    s->calls.release++;
    s->vdev = NULL;
    if (s->on_release)
        s->on_release(s);
}

static int mtty_open_device(struct vfio_device *vdev)
{
    struct mtty_state *s = swiftvfio_device_drvdata(vdev);
    pthread_mutex_lock(&s->lock);
    /* What a driver that needs KVM reads at open (vdev->kvm in the kernel). */
    s->kvm_at_open = swiftvfio_device_kvm(vdev);
    s->calls.open_device++;
    mtty_reset(s);
    pthread_mutex_unlock(&s->lock);
    return s->fail_open ? s->fail_open : 0;
}

static void mtty_close_device(struct vfio_device *vdev)
{
    struct mtty_state *s = swiftvfio_device_drvdata(vdev);
    pthread_mutex_lock(&s->lock);
    s->calls.close_device++;
    pthread_mutex_unlock(&s->lock);
}

/* One register access of BAR0. Called with s->lock held. */
static uint8_t mtty_uart_read(struct mtty_state *s, unsigned reg)
{
    uint8_t v;
    switch (reg) {
    case UART_RX_TX:
        if (!s->fifo_count)
            return 0;
        v = s->fifo[s->fifo_head];
        s->fifo_head = (s->fifo_head + 1) % sizeof(s->fifo);
        s->fifo_count--;
        return v;
    case UART_LSR:
        return (s->fifo_count ? UART_LSR_DR : 0) | UART_LSR_THRE | UART_LSR_TEMT;
    case UART_IIR:
        return 0x01; /* no interrupt pending */
    default:
        return s->uart[reg];
    }
}

static void mtty_uart_write(struct mtty_state *s, unsigned reg, uint8_t v)
{
    if (reg == UART_RX_TX) {
        if (s->fifo_count < sizeof(s->fifo)) { /* loopback: what goes out comes back in */
            s->fifo[(s->fifo_head + s->fifo_count) % sizeof(s->fifo)] = v;
            s->fifo_count++;
        }
    } else if (reg != UART_LSR && reg != UART_IIR) {
        s->uart[reg] = v;
    }
}

static ssize_t mtty_access(struct mtty_state *s, char *ubuf, size_t count, int64_t *ppos, bool is_write)
{
    unsigned index = MTTY_INDEX(*ppos);
    uint64_t pos = MTTY_POS(*ppos);
    uint8_t buf[MTTY_CONFIG_SIZE];
    size_t i, size;

    if (index == VFIO_PCI_CONFIG_REGION_INDEX)
        size = MTTY_CONFIG_SIZE;
    else if (index == VFIO_PCI_BAR0_REGION_INDEX)
        size = MTTY_BAR0_SIZE;
    else
        return -EINVAL;
    if (pos >= size || count > size - pos)
        return -EINVAL;

    if (is_write && swiftvfio_copy_from_user(buf, ubuf, count))
        return -EFAULT;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < count; i++) {
        if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
            if (is_write)
                s->config[pos + i] = buf[i]; /* a real device masks read-only bits */
            else
                buf[i] = s->config[pos + i];
        } else if (is_write) {
            mtty_uart_write(s, (unsigned)(pos + i), buf[i]);
        } else {
            buf[i] = mtty_uart_read(s, (unsigned)(pos + i));
        }
    }
    if (is_write) s->calls.write++; else s->calls.read++;
    pthread_mutex_unlock(&s->lock);

    if (!is_write && swiftvfio_copy_to_user(ubuf, buf, count))
        return -EFAULT;
    *ppos += (int64_t)count;
    return (ssize_t)count;
}

static ssize_t mtty_read(struct vfio_device *vdev, char *buf, size_t count, int64_t *ppos)
{
    return mtty_access(swiftvfio_device_drvdata(vdev), buf, count, ppos, false);
}

static ssize_t mtty_write(struct vfio_device *vdev, const char *buf, size_t count, int64_t *ppos)
{
    return mtty_access(swiftvfio_device_drvdata(vdev), (char *)buf, count, ppos, true);
}

static long mtty_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
    struct mtty_state *s = swiftvfio_device_drvdata(vdev);
    void *uarg = (void *)arg;
    unsigned long minsz;

    s->calls.ioctl++;
    s->last_ioctl_cmd = cmd;
    switch (cmd) {
    case VFIO_DEVICE_GET_INFO: {
        struct vfio_device_info info;
        minsz = offsetof(struct vfio_device_info, num_irqs) + sizeof(info.num_irqs);
        if (swiftvfio_copy_from_user(&info, uarg, minsz))
            return -EFAULT;
        if (info.argsz < minsz)
            return -EINVAL;
        info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
        info.num_regions = VFIO_PCI_NUM_REGIONS;
        info.num_irqs = VFIO_PCI_NUM_IRQS;
        return swiftvfio_copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO: {
        struct vfio_region_info info;
        minsz = offsetof(struct vfio_region_info, offset) + sizeof(info.offset);
        if (swiftvfio_copy_from_user(&info, uarg, minsz))
            return -EFAULT;
        if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_REGIONS)
            return -EINVAL;
        info.offset = (uint64_t)info.index << MTTY_OFFSET_SHIFT;
        info.cap_offset = 0;
        if (info.index == VFIO_PCI_CONFIG_REGION_INDEX)
            info.size = MTTY_CONFIG_SIZE;
        else if (info.index == VFIO_PCI_BAR0_REGION_INDEX)
            info.size = MTTY_BAR0_SIZE;
        else
            info.size = 0;
        info.flags = info.size ? VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE : 0;
        return swiftvfio_copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
    }
    case VFIO_DEVICE_GET_IRQ_INFO: {
        struct vfio_irq_info info;
        minsz = offsetof(struct vfio_irq_info, count) + sizeof(info.count);
        if (swiftvfio_copy_from_user(&info, uarg, minsz))
            return -EFAULT;
        if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
            return -EINVAL;
        info.flags = VFIO_IRQ_INFO_EVENTFD;
        info.count = info.index == VFIO_PCI_INTX_IRQ_INDEX || info.index == VFIO_PCI_MSI_IRQ_INDEX ? 1 : 0;
        if (info.index == VFIO_PCI_INTX_IRQ_INDEX)
            info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
        else
            info.flags |= VFIO_IRQ_INFO_NORESIZE;
        return swiftvfio_copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
    }
    case VFIO_DEVICE_RESET:
        pthread_mutex_lock(&s->lock);
        mtty_reset(s);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    return -ENOTTY;
}

static void mtty_request(struct vfio_device *vdev, unsigned int count)
{
    struct mtty_state *s = swiftvfio_device_drvdata(vdev);
    pthread_mutex_lock(&s->lock);
    if (s->nr_requests < (int)(sizeof(s->requests) / sizeof(s->requests[0])))
        s->requests[s->nr_requests] = count;
    s->nr_requests++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* The device answers to its bus name and to an alias ("<name>-serial"). */
static int mtty_match(struct vfio_device *vdev, char *buf)
{
    struct mtty_state *s = swiftvfio_device_drvdata(vdev);
    char alias[sizeof(s->name) + 8];
    s->calls.match++;
    snprintf(s->last_match, sizeof(s->last_match), "%s", buf);
    snprintf(alias, sizeof(alias), "%s-serial", s->name);
    return strcmp(buf, swiftvfio_device_name(vdev)) == 0 || strcmp(buf, alias) == 0;
}

const struct vfio_device_ops mtty_dev_ops = {
    .name = "vfio-mtty",
    .init = mtty_init_dev,
    .release = mtty_release_dev,
    .bind_iommufd = vfio_iommufd_emulated_bind,
    .unbind_iommufd = vfio_iommufd_emulated_unbind,
    .attach_ioas = vfio_iommufd_emulated_attach_ioas,
    .open_device = mtty_open_device,
    .close_device = mtty_close_device,
    .read = mtty_read,
    .write = mtty_write,
    .ioctl = mtty_ioctl,
    .request = mtty_request,
    .match = mtty_match,
};

/* ---- the driver's probe and remove ------------------------------------------------------------ */

int mtty_probe(struct mtty_state *s, const char *name)
{
    int ret;

    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);

    /* The hardware appears (the mdev core creates the device), the driver binds to it. */
    if ((ret = swiftvfio_device_add(name, 0, &s->dev)))
        return ret;
    if ((ret = swiftvfio_device_bind_driver(s->dev, "mtty", true)))
        goto err_remove;
    if ((ret = swiftvfio_alloc_device(s->dev, &mtty_dev_ops, s, &s->vdev)))
        goto err_unbind;
    if ((ret = vfio_register_emulated_iommu_dev(s->vdev)))
        goto err_put;
    return 0;

err_put:
    vfio_put_device(s->vdev);
err_unbind:
    swiftvfio_device_unbind_driver(s->dev);
err_remove:
    swiftvfio_device_remove(s->dev);
    return ret;
}

/* Blocks until every fd of the device is closed (the request op asks the user). */
void mtty_remove(struct mtty_state *s)
{
    vfio_unregister_group_dev(s->vdev);
    vfio_put_device(s->vdev); /* the last reference: mtty_release_dev runs */
    swiftvfio_device_unbind_driver(s->dev);
    swiftvfio_device_remove(s->dev);
}

int mtty_group_id(struct mtty_state *s)
{
    struct iommu_group *g = iommu_group_get(s->dev);
    int id = g ? iommu_group_id(g) : -1;
    iommu_group_put(g);
    return id;
}
