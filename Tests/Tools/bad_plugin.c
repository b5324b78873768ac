// SPDX-License-Identifier: Apache-2.0
/* Broken device plug-ins for Scripts/test-tools.sh, one per BAD_KIND:
 *   1  no swiftvfio_plugin_init()
 *   2  swiftvfio_plugin_init() returns -ENODEV
 *   3  registers a driver named "vfio-bad" (reserved: refused with -EINVAL)
 *   4  registers nothing */
#include <swiftvfio.h>

#include <errno.h>
#include <stddef.h>

int swiftvfio_plugin_init(void);

__attribute__((unused)) static int bad_probe(const char *name, void **drvdata)
{
    (void)name;
    *drvdata = NULL;
    return -ENODEV;
}

__attribute__((unused)) static const struct vfio_device_ops bad_ops = { .name = "bad" };

#if BAD_KIND == 1
int bad_plugin_without_init(void) { return bad_probe(NULL, NULL); }
#else
int swiftvfio_plugin_init(void)
{
#if BAD_KIND == 2
    return -ENODEV;
#elif BAD_KIND == 3
    return swiftvfio_driver_register("vfio-bad", &bad_ops, bad_probe) ? 0 : 0; /* ignores the error */
#else
    return 0;
#endif
}
#endif
