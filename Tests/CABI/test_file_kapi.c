// SPDX-License-Identifier: Apache-2.0
/* The kernel's file kAPI (vfio_file_*, iommu_group_id/put) and the counted file references
 * (swiftvfio_fget/fput/file_device): success and error paths, on the built-in default topology
 * and on topologies loaded for the cases it does not have. */
#include "cabi_test.h"

static const char *topology_enforce = "{\n"
    "  \"iommu_groups\": [\n"
    "    { \"id\": 40, \"devices\": [ { \"name\": \"0000:40:00.0\", \"driver\": \"vfio-pci\" },\n"
    "                               { \"name\": \"0000:40:00.1\", \"driver\": \"vfio-pci\", \"enforce_cache_coherency\": false } ] },\n"
    "    { \"id\": 41, \"devices\": [ { \"name\": \"0000:41:00.0\", \"driver\": \"vfio-pci\" } ] }\n"
    "  ]\n"
    "}\n";

static const char *topology_spapr = "{\n"
    "  \"config\": { \"spapr_tce_iommu\": true },\n"
    "  \"iommu_groups\": [ { \"id\": 26, \"devices\": [ { \"name\": \"0000:06:0d.0\", \"driver\": \"vfio-pci\" } ] } ]\n"
    "}\n";

static void test_is_group_and_device(void)
{
    int container, group, iommufd, device;
    struct file *fc, *fg, *fi, *fd;

    device = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &container, &group);
    CHECK(device >= 0);
    iommufd = swiftvfio_open("/dev/iommu", O_RDWR);
    CHECK(iommufd >= 0);

    fc = swiftvfio_fget(container);
    fg = swiftvfio_fget(group);
    fi = swiftvfio_fget(iommufd);
    fd = swiftvfio_fget(device);
    CHECK(fc && fg && fi && fd);

    EXPECT_WARNS(0, {
        CHECK(vfio_file_is_group(fg));
        CHECK(!vfio_file_is_group(fc));
        CHECK(!vfio_file_is_group(fi));
        CHECK(!vfio_file_is_group(fd));

        /* True for every file that is not a group; group 26's device enforces coherency. */
        CHECK(vfio_file_enforced_coherent(fc));
        CHECK(vfio_file_enforced_coherent(fi));
        CHECK(vfio_file_enforced_coherent(fd));
        CHECK(vfio_file_enforced_coherent(fg));

        /* No CONFIG_SPAPR_TCE_IOMMU in the default model: no IOMMU group for anyone. */
        CHECK_PTR_EQ(vfio_file_iommu_group(fg), NULL);
        CHECK_PTR_EQ(vfio_file_iommu_group(fc), NULL);

        /* The device behind the device file, borrowed; nothing behind the others. */
        struct vfio_device *vdev = swiftvfio_file_device(fd);
        CHECK(vdev != NULL);
        CHECK_PTR_EQ(swiftvfio_file_device(fg), NULL);
        CHECK_PTR_EQ(swiftvfio_file_device(fc), NULL);
        CHECK_PTR_EQ(swiftvfio_file_device(fd), vdev); /* one handle per device */
        CHECK(strcmp(swiftvfio_device_name(vdev), "0000:06:0d.0") == 0);
        CHECK_EQ(swiftvfio_device_open_count(vdev), 1);

        /* has_dev: the device's own group file only. */
        CHECK(vfio_file_has_dev(fg, vdev));
        CHECK(!vfio_file_has_dev(fc, vdev));
        CHECK(!vfio_file_has_dev(fd, vdev));
        CHECK(!vfio_file_has_dev(fi, vdev));

        /* set_kvm on files that are not groups is ignored (no WARN, nothing latched). */
        vfio_file_set_kvm(fc, (struct kvm *)0x1000);
        vfio_file_set_kvm(fd, (struct kvm *)0x1000);
        vfio_file_set_kvm(fi, (struct kvm *)0x1000);
        vfio_file_set_kvm(fg, NULL);
    });

    swiftvfio_fput(fd);
    swiftvfio_fput(fi);
    swiftvfio_fput(fg);
    swiftvfio_fput(fc);
    CHECK_EQ(swiftvfio_close(device), 0);
    CHECK_EQ(swiftvfio_close(iommufd), 0);
    CHECK_EQ(swiftvfio_close(group), 0);
    CHECK_EQ(swiftvfio_close(container), 0);
    CHECK_NOTHING_OPEN();
}

static void test_has_dev_across_groups(void)
{
    int c26, g26, c28, g28, d26, d28;
    struct file *f26, *f28, *fd26, *fd28;
    struct vfio_device *v26, *v28;

    d26 = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &c26, &g26);
    d28 = cabi_open_device("/dev/vfio/28", "0000:07:00.0", &c28, &g28);
    CHECK(d26 >= 0 && d28 >= 0);
    f26 = swiftvfio_fget(g26);
    f28 = swiftvfio_fget(g28);
    fd26 = swiftvfio_fget(d26);
    fd28 = swiftvfio_fget(d28);
    v26 = swiftvfio_file_device(fd26);
    v28 = swiftvfio_file_device(fd28);
    CHECK(v26 && v28 && v26 != v28);
    CHECK(vfio_file_has_dev(f26, v26));
    CHECK(vfio_file_has_dev(f28, v28));
    CHECK(!vfio_file_has_dev(f26, v28));
    CHECK(!vfio_file_has_dev(f28, v26));
    swiftvfio_fput(fd26);
    swiftvfio_fput(fd28);
    swiftvfio_fput(f26);
    swiftvfio_fput(f28);
    swiftvfio_close(d26);
    swiftvfio_close(d28);
    swiftvfio_close(g26);
    swiftvfio_close(g28);
    swiftvfio_close(c26);
    swiftvfio_close(c28);
    CHECK_NOTHING_OPEN();
}

static void test_fget_fput_balance(void)
{
    int group, dupfd, again;
    struct file *a, *b, *c;
    struct swiftvfio_census before = cabi_census(), now;

    /* A number that is not a model fd: NULL with EBADF, and no WARN (not a handle misuse). */
    EXPECT_WARNS(0, {
        CHECK_PTR_EQ(swiftvfio_fget(-1), NULL);
        CHECK_EQ(errno, EBADF);
        CHECK_PTR_EQ(swiftvfio_fget(0), NULL);
        CHECK_EQ(errno, EBADF);
        CHECK_PTR_EQ(swiftvfio_fget(100000), NULL);
    });

    group = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(group >= 0);
    dupfd = swiftvfio_dup(group, 0, 0);
    a = swiftvfio_fget(group);
    b = swiftvfio_fget(group);
    c = swiftvfio_fget(dupfd);
    /* One file, one pointer: KVM matches GROUP_DEL by struct file *. */
    CHECK(a != NULL);
    CHECK_PTR_EQ(b, a);
    CHECK_PTR_EQ(c, a);
    now = cabi_census();
    CHECK_EQ(now.files, before.files + 1);

    /* The references keep the file open after its fds close: the group stays busy. */
    swiftvfio_close(group);
    swiftvfio_close(dupfd);
    CHECK_SYSERR(swiftvfio_open("/dev/vfio/26", O_RDWR), EBUSY);
    CHECK(vfio_file_is_group(a));
    swiftvfio_fput(a);
    swiftvfio_fput(b);
    CHECK_SYSERR(swiftvfio_open("/dev/vfio/26", O_RDWR), EBUSY);
    /* The last put runs the release before returning: the group can be opened again. */
    swiftvfio_fput(c);
    again = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(again >= 0);
    swiftvfio_close(again);

    /* Balance: a put too many WARNs and changes nothing. */
    EXPECT_WARNS(1, swiftvfio_fput(a));
    CHECK_LAST_ERROR("swiftvfio_fput");
    now = cabi_census();
    CHECK_EQ(now.files, before.files);
    CHECK_NOTHING_OPEN();
}

static void test_enforced_coherent_topology(void)
{
    int g40, g41;
    struct file *f40, *f41;

    CHECK_EQ(cabi_load_topology(topology_enforce), 0);
    g40 = swiftvfio_open("/dev/vfio/40", O_RDWR);
    g41 = swiftvfio_open("/dev/vfio/41", O_RDWR);
    CHECK(g40 >= 0 && g41 >= 0);
    f40 = swiftvfio_fget(g40);
    f41 = swiftvfio_fget(g41);
    /* A group with a device lacking IOMMU_CAP_ENFORCE_CACHE_COHERENCY is not coherent. */
    CHECK(!vfio_file_enforced_coherent(f40));
    CHECK(vfio_file_enforced_coherent(f41));
    swiftvfio_fput(f40);
    swiftvfio_fput(f41);
    swiftvfio_close(g40);
    swiftvfio_close(g41);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
}

static void test_emulated_group_not_coherent(void)
{
    struct device *dev = swiftvfio_device_find("mdev-0");
    struct iommu_group *ig = dev ? iommu_group_get(dev) : NULL;
    char path[32];
    int g;
    struct file *f;

    CHECK(ig != NULL);
    snprintf(path, sizeof(path), "/dev/vfio/%d", iommu_group_id(ig));
    iommu_group_put(ig);
    g = swiftvfio_open(path, O_RDWR);
    CHECK(g >= 0);
    f = swiftvfio_fget(g);
    /* Emulated groups have no IOMMU driver to enforce anything. */
    CHECK(vfio_file_is_group(f));
    CHECK(!vfio_file_enforced_coherent(f));
    swiftvfio_fput(f);
    swiftvfio_close(g);
}

static void test_iommu_group_spapr(void)
{
    int g, c;
    struct file *fg, *fc;
    struct iommu_group *ig, *ig2;

    CHECK_EQ(cabi_load_topology(topology_spapr), 0);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    fg = swiftvfio_fget(g);
    fc = swiftvfio_fget(c);
    EXPECT_WARNS(0, {
        ig = vfio_file_iommu_group(fg);
        CHECK(ig != NULL);
        CHECK_EQ(iommu_group_id(ig), 26);
        ig2 = vfio_file_iommu_group(fg); /* a second counted reference, same group */
        CHECK_PTR_EQ(ig2, ig);
        CHECK_PTR_EQ(vfio_file_iommu_group(fc), NULL); /* not a group file */
        iommu_group_put(ig2);
        CHECK_EQ(iommu_group_id(ig), 26); /* one reference still held */
        iommu_group_put(ig);
        iommu_group_put(NULL); /* allowed, as in the kernel */
    });
    /* After the last put the handle is stale. */
    EXPECT_WARNS(1, iommu_group_put(ig));
    EXPECT_WARNS(1, CHECK_EQ(iommu_group_id(ig), -EINVAL));
    swiftvfio_fput(fg);
    swiftvfio_fput(fc);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
}

int main(void)
{
    cabi_timeout(60);
    test_is_group_and_device();
    test_has_dev_across_groups();
    test_fget_fput_balance();
    test_enforced_coherent_topology();
    test_emulated_group_not_coherent();
    test_iommu_group_spapr();
    CHECK_NOTHING_OPEN();
    return cabi_summary();
}
