// SPDX-License-Identifier: Apache-2.0
/* test_hostile.c: hostile C callers (issue 7, item 6), on the default model.
 *
 * User pointers into an unmapped page or a read-only page give EFAULT, never SIGSEGV; argsz of 0,
 * short and huge; device names of exactly 4095 and 4096 bytes without NUL; unknown ioctls on every
 * fd kind; double close; closed and forged fds. Each case checks the kernel's errno and that the
 * model's state is unchanged (nothing leaked, nothing opened).
 */
#include "cabi_test.h"

#include <sys/mman.h>

/* A page that is mapped, followed by a PROT_NONE guard page: the second page's address faults.
 * (Not munmap: the model's own mappings, made later, could land in a hole.) */
static char *guarded_page(void)
{
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        abort();
    mprotect(p + 4096, 4096, PROT_NONE);
    return p;
}

static void test_bad_user_pointers(int group, int container, char *page)
{
    unsigned long unmapped = (unsigned long)(page + 4096);
    /* Every pointer-taking group ioctl, with NULL, a kernel address, an unmapped page. */
    /* 1 << 50: below the user limit, non-canonical with 4-level paging (a #GP, not a page fault). */
    unsigned long bad[] = { 0, 1, 0xffff800000000000ul, 1ul << 50, unmapped, (unsigned long)-1 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_STATUS, bad[i]), EFAULT);
        CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, bad[i]), EFAULT);
        CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bad[i]), EFAULT);
    }
    /* A struct straddling into the unmapped page: the first half readable, the rest not. */
    struct vfio_group_status *st = (void *)(page + 4096 - 4);
    st->argsz = 8;
    CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_STATUS, (unsigned long)st), EFAULT);
    /* Copy-out to a read-only page: EFAULT after the work, no crash. */
    ((struct vfio_group_status *)page)->argsz = 8;
    mprotect(page, 4096, PROT_READ);
    CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_STATUS, (unsigned long)page), EFAULT);
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
    /* The SET_CONTAINER fd argument read from a straddling int. */
    CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, (unsigned long)(page + 4094)), EFAULT);
    /* type1 structs on the container. */
    CHECK_SYSERR(swiftvfio_ioctl(container, VFIO_IOMMU_GET_INFO, unmapped), EFAULT);
    CHECK_SYSERR(swiftvfio_ioctl(container, VFIO_IOMMU_MAP_DMA, unmapped), EFAULT);
    CHECK_SYSERR(swiftvfio_ioctl(container, VFIO_IOMMU_UNMAP_DMA, unmapped), EFAULT);
}

static void test_argsz(int group, int container)
{
    struct vfio_group_status st;
    unsigned int sizes[] = { 0, 1, 7 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        st.argsz = sizes[i];
        CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_STATUS, (unsigned long)&st), EINVAL);
    }
    /* Huge argsz: the kernel copies only what it needs and echoes argsz unchanged. */
    st.argsz = 0xffffffffu;
    CHECK_EQ(swiftvfio_ioctl(group, VFIO_GROUP_GET_STATUS, (unsigned long)&st), 0);
    CHECK_EQ(st.argsz, 0xffffffffu);
    CHECK_EQ(st.flags & VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_FLAGS_VIABLE);

    struct vfio_iommu_type1_info info;
    for (unsigned int a = 0; a < 16; a += 5) {
        memset(&info, 0, sizeof(info));
        info.argsz = a;
        CHECK_SYSERR(swiftvfio_ioctl(container, VFIO_IOMMU_GET_INFO, (unsigned long)&info), EINVAL);
    }
    struct vfio_iommu_type1_dma_map map = { .argsz = 31, .flags = 3, .size = 4096 };
    CHECK_SYSERR(swiftvfio_ioctl(container, VFIO_IOMMU_MAP_DMA, (unsigned long)&map), EINVAL);
    struct vfio_iommu_type1_dma_unmap unmap = { .argsz = 0, .size = 4096 };
    CHECK_SYSERR(swiftvfio_ioctl(container, VFIO_IOMMU_UNMAP_DMA, (unsigned long)&unmap), EINVAL);
}

static void test_names_without_nul(int group)
{
    /* 4096 bytes with no NUL, then an unmapped page: EINVAL (no NUL within PAGE_SIZE), no fault. */
    char *p = guarded_page();
    memset(p, 'a', 4096);
    CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)p), EINVAL);
    /* 4095 bytes and a NUL: a valid name no device has: ENODEV. */
    p[4095] = 0;
    CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)p), ENODEV);
    /* 4095 bytes ending at the unmapped page with no NUL: the copy faults before finding one. */
    memset(p, 'b', 4096);
    CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)(p + 1)), EFAULT);
    /* An empty name: no device. */
    p[0] = 0;
    CHECK_SYSERR(swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)p), ENODEV);
    munmap(p, 8192);
}

static void test_unknown_ioctls(int group, int container, int device, int iommufd)
{
    unsigned long cmds[] = { 0, 1, 0x3b00, 0x3bff, 0xffffffffu, 0xc0de3b64ul, VFIO_GROUP_GET_STATUS + 0x100 };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        CHECK_SYSERR(swiftvfio_ioctl(group, cmds[i], 0), ENOTTY);      /* group: ENOTTY */
        CHECK_SYSERR(swiftvfio_ioctl(device, cmds[i], 0), ENOTTY);     /* vfio-pci's own default */
        CHECK_SYSERR(swiftvfio_ioctl(iommufd, cmds[i], 0), ENOTTY);    /* iommufd: ENOTTY */
        CHECK_SYSERR(swiftvfio_ioctl(container, cmds[i], 0), ENOTTY);  /* type1 set: ENOTTY */
    }
}

static void test_fds(int group)
{
    /* A forged number, a closed number, a non-model fd. */
    CHECK_SYSERR(swiftvfio_ioctl(-1, VFIO_GROUP_GET_STATUS, 0), EBADF);
    CHECK_SYSERR(swiftvfio_ioctl(123456, VFIO_GROUP_GET_STATUS, 0), EBADF);
    CHECK_SYSERR(swiftvfio_ioctl(0, VFIO_GROUP_GET_STATUS, 0), EBADF);
    CHECK_SYSERR(swiftvfio_close(123456), EBADF);
    int d = swiftvfio_dup(group, 0, 0);
    CHECK(d >= 0);
    CHECK_EQ(swiftvfio_close(d), 0);
    CHECK_SYSERR(swiftvfio_close(d), EBADF);                 /* double close */
    CHECK_SYSERR(swiftvfio_ioctl(d, VFIO_GROUP_GET_STATUS, 0), EBADF);
    CHECK(swiftvfio_fget(d) == NULL);
    CHECK(swiftvfio_fget(-5) == NULL);
}

int main(void)
{
    char *page = guarded_page();
    int container = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    int group = swiftvfio_open("/dev/vfio/26", O_RDWR);
    int iommufd = swiftvfio_open("/dev/iommu", O_RDWR);
    CHECK(container >= 0 && group >= 0 && iommufd >= 0);

    test_names_without_nul(group);
    test_fds(group);
    test_argsz(group, container);   /* before the container is set: GET_INFO etc. EINVAL anyway */

    CHECK_EQ(swiftvfio_ioctl(group, VFIO_GROUP_SET_CONTAINER, (unsigned long)&container), 0);
    CHECK_EQ(swiftvfio_ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    test_bad_user_pointers(group, container, page);
    test_argsz(group, container);
    int device = swiftvfio_ioctl(group, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0");
    CHECK(device >= 0);
    test_unknown_ioctls(group, container, device, iommufd);

    CHECK_EQ(swiftvfio_close(device), 0);
    CHECK_EQ(swiftvfio_close(iommufd), 0);
    CHECK_EQ(swiftvfio_close(group), 0);
    CHECK_EQ(swiftvfio_close(container), 0);
    munmap(page, 8192);
    CHECK_NOTHING_OPEN();
    return cabi_summary();
}
