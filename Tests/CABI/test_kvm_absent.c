// SPDX-License-Identifier: Apache-2.0
/* No KVM in the process: this program neither defines nor exports kvm_get_kvm_safe/kvm_put_kvm.
 * A device's first open with a VM set on its group then finds no symbols: one WARN, no
 * reference, the device sees no VM, and everything else works, as the kernel without the KVM
 * module. */
#include "cabi_test.h"

static char fake_vm[64]; /* never dereferenced by the library */

int main(void)
{
    int c, g, d, d2;
    struct file *fg, *fd;

    cabi_timeout(60);
    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), 0);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
    fg = swiftvfio_fget(g);
    vfio_file_set_kvm(fg, (struct kvm *)fake_vm);

    EXPECT_WARNS(1, d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0"));
    CHECK(d >= 0);
    fd = swiftvfio_fget(d);
    CHECK_PTR_EQ(swiftvfio_device_kvm(swiftvfio_file_device(fd)), NULL);
    CHECK_EQ(cabi_census().kvm_references, 0);
    /* Not the first open: no lookup, no WARN. */
    EXPECT_WARNS(0, d2 = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0"));
    swiftvfio_fput(fd);
    EXPECT_WARNS(0, {
        swiftvfio_close(d2);
        swiftvfio_close(d);
    });
    /* Without a VM set, a first open needs no symbols: no WARN. */
    vfio_file_set_kvm(fg, NULL);
    EXPECT_WARNS(0, d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0"));
    swiftvfio_close(d);

    swiftvfio_fput(fg);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_NOTHING_OPEN();
    return cabi_summary();
}
