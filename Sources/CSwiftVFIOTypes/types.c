// SPDX-License-Identifier: Apache-2.0
/* CSwiftVFIOTypes has no code: this file checks at compile time that struct vfio_device_ops keeps
 * the kernel's v6.3 member order (a C driver's positional initialiser or a table built for the
 * kernel's layout must land on the same members), and gives SwiftPM a source to build. */
#include "swiftvfio_types.h"

#define SWIFTVFIO_SLOT(member, n) \
    _Static_assert(offsetof(struct vfio_device_ops, member) == (n) * sizeof(void *), \
                   "struct vfio_device_ops: " #member " is not member " #n " as in v6.3")
SWIFTVFIO_SLOT(name, 0);
SWIFTVFIO_SLOT(init, 1);
SWIFTVFIO_SLOT(release, 2);
SWIFTVFIO_SLOT(bind_iommufd, 3);
SWIFTVFIO_SLOT(unbind_iommufd, 4);
SWIFTVFIO_SLOT(attach_ioas, 5);
SWIFTVFIO_SLOT(open_device, 6);
SWIFTVFIO_SLOT(close_device, 7);
SWIFTVFIO_SLOT(read, 8);
SWIFTVFIO_SLOT(write, 9);
SWIFTVFIO_SLOT(ioctl, 10);
SWIFTVFIO_SLOT(mmap, 11);
SWIFTVFIO_SLOT(request, 12);
SWIFTVFIO_SLOT(match, 13);
SWIFTVFIO_SLOT(dma_unmap, 14);
SWIFTVFIO_SLOT(device_feature, 15);
_Static_assert(sizeof(struct vfio_device_ops) == 16 * sizeof(void *), "struct vfio_device_ops has 16 members");
