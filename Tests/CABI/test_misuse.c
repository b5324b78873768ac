// SPDX-License-Identifier: Apache-2.0
/* Misuse is an error, never a crash: every function that takes a handle, given NULL, a pointer
 * the library never issued (small numbers, real addresses, token-shaped values), a handle of the
 * wrong type, or a handle used after its last put, answers an error and raises exactly one WARN;
 * puts too many are refused the same way; bad user pointers give EFAULT. The test passing at all
 * shows none of it crashed. */
#include "cabi_test.h"

#include <sys/mman.h>

static int local_variable;

/* The bad handles of one type: NULL, forged ones, and (filled in per type) a stale one and one of
 * another type. */
#define NBAD 6
static void *bad[NBAD];
static const char *bad_name[NBAD] = { "NULL", "0x1234", "a stack address", "a token never issued",
                                      "a handle of another type", "a stale handle" };

static void set_common_bad(void)
{
    bad[0] = NULL;
    bad[1] = (void *)0x1234;
    bad[2] = &local_variable;
    bad[3] = (void *)(uintptr_t)0x5f1ffffffffffff0ULL; /* tag and kind right, index never issued */
}

#define FOR_EACH_BAD(i) for (i = 0; i < NBAD; i++)

/* `expr` with handle `h` = bad[i]: one WARN, result `want`. */
#define BAD_CALL(i, want, expr)                                                   \
    do {                                                                          \
        int w0_ = cabi_warnings();                                                \
        long long r_ = (long long)(expr);                                         \
        int dw_ = cabi_warnings() - w0_;                                          \
        if (r_ == (long long)(want) && dw_ == 1)                                  \
            cabi_pass();                                                          \
        else                                                                      \
            cabi_fail_msg(#expr, "with %s: got %lld and %d WARNs, want %lld and 1", \
                          bad_name[i], r_, dw_, (long long)(want));               \
    } while (0)

#define BAD_VOID(i, stmt) BAD_CALL(i, 0, ((stmt), 0))

static void test_file_handles(void)
{
    int g, c, i;
    struct file *fg, *fc, *stale, *fresh;
    struct vfio_device *vdev_good;
    struct iommu_group *ig;
    int d, cc, gg;

    set_common_bad();
    g = swiftvfio_open("/dev/vfio/28", O_RDWR);
    stale = swiftvfio_fget(g);
    swiftvfio_fput(stale); /* its last put: the token is stale from now on */
    fc = NULL;
    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    fc = swiftvfio_fget(c);
    d = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &cc, &gg);
    {
        struct file *fd = swiftvfio_fget(d);
        vdev_good = swiftvfio_file_device(fd);
        swiftvfio_fput(fd);
    }
    fg = swiftvfio_fget(gg);
    bad[4] = vdev_good; /* a struct vfio_device * where a struct file * belongs */
    bad[5] = stale;

    FOR_EACH_BAD(i) {
        struct file *f = bad[i];
        BAD_CALL(i, 0, vfio_file_iommu_group(f));
        BAD_CALL(i, false, vfio_file_is_group(f));
        BAD_CALL(i, false, vfio_file_enforced_coherent(f));
        BAD_VOID(i, vfio_file_set_kvm(f, (struct kvm *)&local_variable));
        BAD_CALL(i, false, vfio_file_has_dev(f, vdev_good));
        BAD_CALL(i, 0, swiftvfio_file_device(f));
        BAD_VOID(i, swiftvfio_fput(f));
    }
    CHECK_LAST_ERROR("swiftvfio_fput");
    /* The messages say what was wrong. */
    EXPECT_WARNS(1, vfio_file_is_group(NULL));
    CHECK_LAST_ERROR("NULL struct file *");
    EXPECT_WARNS(1, vfio_file_is_group((struct file *)0x1234));
    CHECK_LAST_ERROR("never issued");
    EXPECT_WARNS(1, vfio_file_is_group((struct file *)vdev_good));
    CHECK_LAST_ERROR("not a struct file *");
    EXPECT_WARNS(1, vfio_file_is_group(stale));
    CHECK_LAST_ERROR("stale");

    /* has_dev's device argument. */
    {
        struct vfio_device *vbad[NBAD] = { NULL, (struct vfio_device *)0x1234,
                                           (struct vfio_device *)&local_variable,
                                           (struct vfio_device *)(uintptr_t)0x5f2ffffffffffff0ULL,
                                           (struct vfio_device *)fg, NULL };
        for (i = 0; i < NBAD - 1; i++)
            BAD_CALL(i, false, vfio_file_has_dev(fg, vbad[i]));
    }

    /* A recycled slot does not make an old token valid again. */
    fresh = swiftvfio_fget(g); /* probably the slot `stale` had */
    CHECK(fresh != NULL && fresh != stale);
    EXPECT_WARNS(1, CHECK(!vfio_file_is_group(stale)));
    EXPECT_WARNS(0, CHECK(vfio_file_is_group(fresh)));
    swiftvfio_fput(fresh);

    /* Puts too many. */
    {
        struct file *a = swiftvfio_fget(g), *b = swiftvfio_fget(g); /* C holds no other reference to g */
        CHECK_PTR_EQ(a, b);
        EXPECT_WARNS(0, swiftvfio_fput(a));
        EXPECT_WARNS(0, swiftvfio_fput(b));
        EXPECT_WARNS(1, swiftvfio_fput(a));
    }

    /* iommu_group handles: NULL put is allowed (the kernel's), everything else WARNs. */
    EXPECT_WARNS(0, iommu_group_put(NULL));
    {
        struct device *mdev = swiftvfio_device_find("mdev-0");
        ig = iommu_group_get(mdev);
        iommu_group_put(ig); /* its last put: stale */
        bad[4] = fc;
        bad[5] = ig;
        FOR_EACH_BAD(i) {
            struct iommu_group *h = bad[i];
            BAD_CALL(i, -EINVAL, iommu_group_id(h));
            if (i > 0)
                BAD_VOID(i, iommu_group_put(h));
        }
    }

    swiftvfio_fput(fc);
    swiftvfio_fput(fg);
    swiftvfio_close(d);
    swiftvfio_close(gg);
    swiftvfio_close(cc);
    swiftvfio_close(c);
    swiftvfio_close(g);
    CHECK_NOTHING_OPEN();
}

static int noop_init(struct vfio_device *v)
{
    (void)v;
    return 0;
}

static const struct vfio_device_ops noop_ops = { .name = "noop", .init = noop_init };

static void test_device_handles(void)
{
    struct device *bus, *stale_bus;
    struct vfio_device *v, *stale, *borrowed, *out;
    struct iommu_group *ig, *gout;
    int i, d, c, g;
    uint32_t id = 0;

    set_common_bad();
    CHECK_EQ(swiftvfio_device_add("misuse-0", 0, &bus), 0);
    CHECK_EQ(swiftvfio_alloc_device(bus, &noop_ops, NULL, &v), 0);
    CHECK_EQ(swiftvfio_alloc_device(bus, &noop_ops, NULL, &stale), 0);
    vfio_put_device(stale); /* released: stale */
    d = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &c, &g);
    {
        struct file *fd = swiftvfio_fget(d);
        borrowed = swiftvfio_file_device(fd);
        swiftvfio_fput(fd);
    }
    bad[4] = bus; /* a struct device * where a struct vfio_device * belongs */
    bad[5] = stale;

    FOR_EACH_BAD(i) {
        struct vfio_device *h = bad[i];
        BAD_VOID(i, vfio_put_device(h));
        BAD_CALL(i, -EINVAL, vfio_register_group_dev(h));
        BAD_CALL(i, -EINVAL, vfio_register_emulated_iommu_dev(h));
        BAD_VOID(i, vfio_unregister_group_dev(h));
        BAD_CALL(i, 0, swiftvfio_device_drvdata(h));
        BAD_VOID(i, swiftvfio_device_set_drvdata(h, &local_variable));
        BAD_CALL(i, 0, swiftvfio_device_kvm(h));
        BAD_CALL(i, 0, swiftvfio_device_name(h));
        BAD_CALL(i, -EINVAL, swiftvfio_device_open_count(h));
        BAD_CALL(i, -EINVAL, vfio_iommufd_emulated_bind(h, (struct iommufd_ctx *)0x5f4000000000000ULL, &id));
        BAD_CALL(i, -EINVAL, vfio_iommufd_physical_bind(h, NULL, &id));
        BAD_VOID(i, vfio_iommufd_emulated_unbind(h));
        BAD_VOID(i, vfio_iommufd_physical_unbind(h));
        BAD_CALL(i, -EINVAL, vfio_iommufd_emulated_attach_ioas(h, &id));
        BAD_CALL(i, -EINVAL, vfio_iommufd_physical_attach_ioas(h, &id));
    }
    /* A bad iommufd context with a good device. */
    BAD_CALL(0, -EINVAL, vfio_iommufd_emulated_bind(v, NULL, &id));
    BAD_CALL(1, -EINVAL, vfio_iommufd_physical_bind(v, (struct iommufd_ctx *)0x1234, &id));
    /* Bad out pointers: EFAULT, no WARN (not a handle). */
    EXPECT_WARNS(0, CHECK_EQ(vfio_iommufd_emulated_bind(v, NULL, NULL), -EFAULT));
    EXPECT_WARNS(0, CHECK_EQ(vfio_iommufd_emulated_attach_ioas(v, NULL), -EFAULT));
    EXPECT_WARNS(0, CHECK_EQ(vfio_iommufd_emulated_attach_ioas(v, (uint32_t *)8), -EFAULT));

    /* A device the caller holds no reference to (borrowed from a device file). */
    EXPECT_WARNS(1, vfio_put_device(borrowed));
    CHECK_LAST_ERROR("put too many");
    CHECK_EQ(swiftvfio_device_open_count(borrowed), 1); /* still fine */
    /* Put too many on an allocated device: the first put releases, the second is refused. */
    vfio_put_device(v);
    EXPECT_WARNS(1, vfio_put_device(v));

    /* Bus device handles. */
    CHECK_EQ(swiftvfio_device_add("misuse-1", 0, &stale_bus), 0);
    CHECK_EQ(swiftvfio_device_remove(stale_bus), 0);
    CHECK_EQ(swiftvfio_iommu_group_alloc(77, &ig), 0);
    bad[4] = ig;
    bad[5] = stale_bus;
    FOR_EACH_BAD(i) {
        struct device *h = bad[i];
        BAD_CALL(i, -EINVAL, swiftvfio_alloc_device(h, &noop_ops, NULL, &out));
        BAD_CALL(i, -EINVAL, swiftvfio_device_remove(h));
        BAD_CALL(i, -EINVAL, swiftvfio_device_bind_driver(h, "x", true));
        BAD_VOID(i, swiftvfio_device_unbind_driver(h));
        BAD_CALL(i, -EINVAL, iommu_group_add_device(ig, h));
        BAD_VOID(i, iommu_group_remove_device(h));
        BAD_CALL(i, 0, iommu_group_get(h));
    }
    /* And a bad group for iommu_group_add_device. */
    bad[4] = bus;
    iommu_group_put(ig);
    bad[5] = ig;
    FOR_EACH_BAD(i)
        BAD_CALL(i, -EINVAL, iommu_group_add_device((struct iommu_group *)bad[i], bus));

    /* Bad user pointers in the hardware and driver calls: EFAULT, no WARN. */
    EXPECT_WARNS(0, {
        CHECK_EQ(swiftvfio_device_add(NULL, 0, &bus), -EFAULT);
        CHECK_EQ(swiftvfio_device_add((const char *)8, 0, &bus), -EFAULT);
        CHECK_EQ(swiftvfio_device_add("misuse-2", 0, NULL), -EFAULT);
        CHECK_PTR_EQ(swiftvfio_device_find((const char *)8), NULL);
        CHECK_EQ(errno, EFAULT);
        CHECK_EQ(swiftvfio_device_bind_driver(bus, (const char *)8, true), -EFAULT);
        CHECK_EQ(swiftvfio_iommu_group_alloc(78, NULL), -EFAULT);
        CHECK_EQ(swiftvfio_iommu_group_alloc(78, (struct iommu_group **)8), -EFAULT);
        CHECK_EQ(swiftvfio_alloc_device(bus, (const struct vfio_device_ops *)16, NULL, &out), -EFAULT);
    });
    {
        /* An ops table whose name is not readable. */
        struct vfio_device_ops ops = noop_ops;
        ops.name = (const char *)8;
        EXPECT_WARNS(0, CHECK_EQ(swiftvfio_alloc_device(bus, &ops, NULL, &out), -EFAULT));
    }
    /* Group 78 was not created by the failed calls above. */
    CHECK_EQ(swiftvfio_iommu_group_alloc(78, &gout), 0);
    iommu_group_put(gout);
    CHECK_EQ(swiftvfio_device_remove(bus), 0);

    swiftvfio_close(d);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_NOTHING_OPEN();
}

static void test_user_memory_helpers(void)
{
    char buf[8] = "abcdefg";
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    CHECK_EQ(swiftvfio_copy_to_user(buf, "XY", 2), 0);
    CHECK(memcmp(buf, "XY", 2) == 0);
    CHECK_EQ(swiftvfio_copy_from_user(buf, "12", 2), 0);
    CHECK_EQ(swiftvfio_copy_to_user((void *)8, buf, 4), 4);
    CHECK_EQ(swiftvfio_copy_to_user(ro, buf, 4), 4); /* read-only: unwritable */
    CHECK_EQ(swiftvfio_copy_from_user(buf, ro, 4), 0);
    CHECK_EQ(swiftvfio_copy_from_user(buf, (void *)8, 4), 4);
    CHECK_EQ(swiftvfio_copy_to_user(buf, NULL, 4), 4);
    CHECK_EQ(swiftvfio_copy_from_user(NULL, buf, 4), 4);
    CHECK_EQ(swiftvfio_copy_to_user(NULL, NULL, 0), 0);
    munmap(ro, 4096);
}

static void test_handles_do_not_survive_a_reload(void)
{
    struct device *d = swiftvfio_device_find("0000:06:0d.0");
    CHECK(d != NULL);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
    EXPECT_WARNS(1, CHECK_PTR_EQ(iommu_group_get(d), NULL));
    CHECK_LAST_ERROR("stale");
    d = swiftvfio_device_find("0000:06:0d.0");
    EXPECT_WARNS(0, {
        struct iommu_group *g = iommu_group_get(d);
        CHECK_EQ(iommu_group_id(g), 26);
        iommu_group_put(g);
    });
}

static void test_model_busy_while_c_holds_references(void)
{
    struct device *bus;
    struct vfio_device *v;
    struct iommu_group *ig;

    CHECK_EQ(swiftvfio_device_add("busy-0", 0, &bus), 0);
    CHECK_EQ(swiftvfio_alloc_device(bus, &noop_ops, NULL, &v), 0);
    CHECK_EQ(swiftvfio_topology_load(NULL), -EBUSY); /* a C driver's device exists */
    CHECK_LAST_ERROR("C drivers' devices");
    vfio_put_device(v);
    CHECK_EQ(swiftvfio_iommu_group_alloc(90, &ig), 0);
    CHECK_EQ(swiftvfio_topology_load(NULL), -EBUSY); /* C holds an IOMMU group reference */
    CHECK_LAST_ERROR("struct iommu_group *");
    iommu_group_put(ig);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
}

int main(void)
{
    cabi_timeout(60);
    test_file_handles();
    test_device_handles();
    test_user_memory_helpers();
    test_handles_do_not_survive_a_reload();
    test_model_busy_while_c_holds_references();
    CHECK_NOTHING_OPEN();
    return cabi_summary();
}
