// SPDX-License-Identifier: Apache-2.0
/* The header alone, in every language mode the test matrix uses (C11 and C++17, gcc and clang,
 * -pedantic -Werror): it must be self-contained and warning-free, and usable from C++. */
#include <swiftvfio.h>

#ifdef __cplusplus
static_assert(sizeof(struct vfio_device_ops) == 16 * sizeof(void *), "struct vfio_device_ops has v6.3's 16 members");
#else
_Static_assert(sizeof(struct vfio_device_ops) == 16 * sizeof(void *), "struct vfio_device_ops has v6.3's 16 members");
#endif

/* A driver table initialised the way drivers write it (designated initialisers are C++20, so
 * C++ assigns members). */
static int open_device(struct vfio_device *vdev)
{
    return vdev ? 0 : -1;
}

int main(void)
{
    struct vfio_device_ops ops;
    struct swiftvfio_census census;
    ops.name = "vfio-example";
    ops.open_device = open_device;
    (void)ops;
    (void)census;
    return SWIFTVFIO_DEV_NO_CACHE_COHERENCY == 1 ? 0 : 1;
}
