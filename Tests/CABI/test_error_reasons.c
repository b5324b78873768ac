// SPDX-License-Identifier: Apache-2.0
/* The rows of docs/ERRORS.md that only C can reach (C pointers and handles, the C-only entry
 * points), each marked with the ROW macro and its id: the exact code, and the reason swiftvfio_last_error() gives
 * for it. The other rows are asserted from Swift (Tests/VFIOTests/ErrorRows/), whose
 * everyRowOfTheCatalogueHasATest reads the ROW marks of this file: a catalogue row neither table
 * names fails the Swift suite. */
#include "cabi_test.h"

#include <sys/mman.h>

/* The row being checked, for failure messages and for the Swift coverage check. */
static const char *current_row = "";
#define ROW(row_id) (current_row = (row_id))

/* A -1/errno call: `err` and a last error mentioning `text`. */
#define CHECK_SYS_WHY(call, err, text) \
    do {                               \
        CHECK_SYSERR(call, err);       \
        CHECK_LAST_ERROR(text);        \
    } while (0)

/* A kernel-style call: -`err` and a last error mentioning `text`. */
#define CHECK_NEG_WHY(call, err, text) \
    do {                               \
        CHECK_EQ((call), -(err));      \
        CHECK_LAST_ERROR(text);        \
    } while (0)

static const char *unreadable = (const char *)0x10;

static void open_rows(void)
{
    ROW("open-efault");
    CHECK_SYS_WHY(swiftvfio_open(unreadable, O_RDWR), EFAULT, "swiftvfio_open: EFAULT: path is not a readable string");

    ROW("open-enoent");
    CHECK_SYS_WHY(swiftvfio_open("/dev/vfio/99", O_RDWR), ENOENT, "swiftvfio_open: ENOENT: /dev/vfio/99: no such model node");
}

static void c_rows(void)
{
    int g, c, d, cc, gg, w0;
    struct file *f;

    ROW("c-ebadf-fd");
    w0 = cabi_warnings();
    CHECK_SYS_WHY(swiftvfio_ioctl(4321, VFIO_GROUP_GET_STATUS, 0), EBADF, "VFIO_GROUP_GET_STATUS: not a model fd (fd 4321)");
    CHECK_SYS_WHY(swiftvfio_close(4321), EBADF, "swiftvfio_close: EBADF");
    errno = 0;
    CHECK_PTR_EQ(swiftvfio_fget(4321), NULL);
    CHECK_EQ(errno, EBADF);
    CHECK_LAST_ERROR("swiftvfio_fget: EBADF");
    CHECK_EQ(cabi_warnings() - w0, 0); /* a bad number is not a bad handle: no WARN */

    ROW("c-bad-handle");
    EXPECT_WARNS(1, CHECK_NEG_WHY(vfio_register_group_dev(NULL), EINVAL, "vfio_register_group_dev: EINVAL"));
    EXPECT_WARNS(1, CHECK_PTR_EQ(swiftvfio_file_device((struct file *)0x1234), NULL));
    CHECK_LAST_ERROR("swiftvfio_file_device");

    ROW("kapi-bad-handle");
    EXPECT_WARNS(1, CHECK(!vfio_file_is_group((struct file *)0x1234)));
    EXPECT_WARNS(1, CHECK(!vfio_file_enforced_coherent((struct file *)0x1234))); /* false: assume non-coherent */

    ROW("c-put-too-many");
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(g >= 0);
    f = swiftvfio_fget(g);
    CHECK(f != NULL);
    swiftvfio_fput(f);
    EXPECT_WARNS(1, swiftvfio_fput(f));
    CHECK_LAST_ERROR("used after its last put");
    CHECK_EQ(swiftvfio_close(g), 0);

    ROW("c-efault");
    CHECK_NEG_WHY(swiftvfio_topology_load(unreadable), EFAULT, "swiftvfio_topology_load: EFAULT: path is not a readable string");

    ROW("c-topology-ebusy");
    d = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &cc, &gg);
    CHECK(d >= 0);
    CHECK_NEG_WHY(swiftvfio_topology_load(NULL), EBUSY, "model files are open");
    swiftvfio_close(d);
    swiftvfio_close(gg);
    swiftvfio_close(cc);

    ROW("c-topology-einval");
    CHECK_NEG_WHY(cabi_load_topology("{\"devices\": 7}"), EINVAL, "swiftvfio_topology_load: EINVAL");

    /* c-enomem-handles is not reached: filling the handle table takes 2^24 live handles (see
     * unreachedRows in Tests/VFIOTests/ErrorRows/ErrorRowTable.swift). */

    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    CHECK(c >= 0);
    swiftvfio_close(c);
    CHECK_NOTHING_OPEN();
}

/* A failed MAP_DMA from C: its last-error text names the ioctl and the failed check (issue 18). */
static void map_dma_row(void)
{
    int d, c, g;
    struct vfio_iommu_type1_dma_map map = { .argsz = 8, .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                                            .vaddr = 0x1000, .iova = 0, .size = 0x1000 };

    ROW("t1-map-einval-argsz");
    d = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &c, &g);
    CHECK(d >= 0);
    CHECK_SYSERR(swiftvfio_ioctl(c, VFIO_IOMMU_MAP_DMA, (unsigned long)&map), EINVAL);
    {
        char want[96];
        snprintf(want, sizeof(want), "swiftvfio_ioctl: EINVAL: VFIO_IOMMU_MAP_DMA: argsz 8 < minsz 32 (fd %d)", c);
        CHECK_LAST_ERROR(want);
    }
    swiftvfio_close(d);
    swiftvfio_close(g);
    swiftvfio_close(c);
}

/* The mm layer's checks of swiftvfio_mmap (before the driver), and the module files' entry points. */
static void mmap_and_module_rows(void)
{
    int d, c, g;
    char buf[8];
    uint32_t mode, major, minor;
    void *spot = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    d = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &c, &g);
    CHECK(d >= 0 && spot != MAP_FAILED);
    ROW("devfd-mm-einval");
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, 4096, PROT_READ, 0, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    CHECK_LAST_ERROR("neither MAP_SHARED nor MAP_PRIVATE");
    CHECK_PTR_EQ(swiftvfio_mmap((char *)spot + 1, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    CHECK_LAST_ERROR("not page aligned");
    ROW("devfd-mm-eperm");
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EPERM);
    CHECK_LAST_ERROR("swiftvfio_mmap: EPERM: MAP_FIXED at NULL");
    swiftvfio_close(d);
    swiftvfio_close(g);
    swiftvfio_close(c);
    munmap(spot, 4096);

    ROW("c-sysfs-enoent");
    CHECK_NEG_WHY(swiftvfio_path_stat("/sys/module/vfio_nope", &mode, &major, &minor), ENOENT,
                  "/sys/module/vfio_nope: no such module file in the model");
    CHECK_NEG_WHY(swiftvfio_sysfs_read("/sys/module/vfio/refcnt", buf, sizeof buf), ENOENT,
                  "/sys/module/vfio/refcnt: no such sysfs file in the model");
    ROW("c-sysfs-eisdir");
    CHECK_NEG_WHY(swiftvfio_sysfs_read("/sys/module/vfio", buf, sizeof buf), EISDIR,
                  "swiftvfio_sysfs_read: EISDIR: /sys/module/vfio is a directory");
    CHECK_NOTHING_OPEN();
}

/* Failures name the row and the last error. */
static void row_context(void)
{
    fprintf(stderr, "    row: docs/ERRORS.md#%s\n", current_row);
    cabi_print_last_error();
}

int main(void)
{
    test_context = row_context;
    cabi_timeout(120);
    open_rows();
    c_rows();
    map_dma_row();
    mmap_and_module_rows();
    return cabi_summary();
}
