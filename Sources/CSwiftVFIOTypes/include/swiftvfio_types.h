#ifndef SWIFTVFIO_TYPES_H
#define SWIFTVFIO_TYPES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#if defined(__swift__)
struct file { char swiftvfio_opaque_; };
struct vfio_device { char swiftvfio_opaque_; };
#else
struct file;
struct vfio_device;
#endif
struct vfio_device_ops {
    const char *name;
    int (*init)(struct vfio_device *vdev);
    ssize_t (*read)(struct vfio_device *vdev, char *buf, size_t count, int64_t *ppos);
};
#endif
