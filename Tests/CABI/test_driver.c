// SPDX-License-Identifier: Apache-2.0
/* A C driver's full life on the driver API: its own hardware (a bus device in an IOMMU group it
 * creates), allocation and registration (and their errors), opens through the group by the
 * container and by iommufd, every op called with the right arguments (init, release,
 * bind_iommufd, unbind_iommufd, attach_ioas, open_device, close_device, read, write, ioctl, mmap,
 * request, match), unregistration blocking until the last device fd closes while request is
 * called, the last put calling release, and the cleanup of the hardware. */
#include "cabi_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

/* What the driver saw. */
struct seen {
    struct vfio_device *vdev;      /* the handle every op must get */
    int wrong_vdev;                /* ops that got another handle */
    int init, release, open, close, bind, unbind, attach, read, write, ioctl, mmap, match, request;
    struct iommufd_ctx *ictx;
    uint32_t pt_id;
    char *read_buf;
    size_t read_count;
    int64_t read_pos;
    const char *write_buf;
    size_t write_count;
    int64_t write_pos;
    unsigned ioctl_cmd;
    unsigned long ioctl_arg;
    struct vm_area_struct vma;
    char match_buf[64];
    unsigned requests[64];
    int mmap_leave_start_zero;
    struct kvm *kvm_in_open;
    int drvdata_ok;
    int open_count_in_open;
};

static struct seen seen;
static char bar[8192] __attribute__((aligned(4096)));
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static char drvdata_cookie[] = "test driver data";

static void saw(struct vfio_device *vdev)
{
    if (vdev != seen.vdev)
        seen.wrong_vdev++;
    if (swiftvfio_device_drvdata(vdev) == drvdata_cookie)
        seen.drvdata_ok++;
}

static int t_init(struct vfio_device *vdev)
{
    seen.vdev = vdev; /* init is the first moment the handle exists */
    saw(vdev);
    seen.init++;
    return 0;
}

static void t_release(struct vfio_device *vdev)
{
    saw(vdev);
    seen.release++;
}

static int t_bind(struct vfio_device *vdev, struct iommufd_ctx *ictx, uint32_t *out_device_id)
{
    saw(vdev);
    seen.bind++;
    seen.ictx = ictx;
    return vfio_iommufd_physical_bind(vdev, ictx, out_device_id);
}

static void t_unbind(struct vfio_device *vdev)
{
    saw(vdev);
    seen.unbind++;
    vfio_iommufd_physical_unbind(vdev);
}

static int t_attach(struct vfio_device *vdev, uint32_t *pt_id)
{
    saw(vdev);
    seen.attach++;
    seen.pt_id = *pt_id;
    return vfio_iommufd_physical_attach_ioas(vdev, pt_id);
}

static int t_open(struct vfio_device *vdev)
{
    saw(vdev);
    seen.open++;
    seen.kvm_in_open = swiftvfio_device_kvm(vdev);
    /* Asking for the open count from inside open_device would deadlock: refused. */
    seen.open_count_in_open = swiftvfio_device_open_count(vdev);
    return 0;
}

static void t_close(struct vfio_device *vdev)
{
    saw(vdev);
    seen.close++;
}

static ssize_t t_read(struct vfio_device *vdev, char *buf, size_t count, int64_t *ppos)
{
    saw(vdev);
    seen.read++;
    seen.read_buf = buf;
    seen.read_count = count;
    seen.read_pos = *ppos;
    if (*ppos < 0 || (uint64_t)*ppos + count > sizeof(bar))
        return -EINVAL;
    if (swiftvfio_copy_to_user(buf, bar + *ppos, count))
        return -EFAULT;
    *ppos += (int64_t)count;
    return (ssize_t)count;
}

static ssize_t t_write(struct vfio_device *vdev, const char *buf, size_t count, int64_t *ppos)
{
    saw(vdev);
    seen.write++;
    seen.write_buf = buf;
    seen.write_count = count;
    seen.write_pos = *ppos;
    if (*ppos < 0 || (uint64_t)*ppos + count > sizeof(bar))
        return -EINVAL;
    if (swiftvfio_copy_from_user(bar + *ppos, buf, count))
        return -EFAULT;
    *ppos += (int64_t)count;
    return (ssize_t)count;
}

static long t_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
    saw(vdev);
    seen.ioctl++;
    seen.ioctl_cmd = cmd;
    seen.ioctl_arg = arg;
    if (cmd == 0x3b99)
        return -EOPNOTSUPP;
    return 42;
}

static int t_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
    saw(vdev);
    seen.mmap++;
    seen.vma = *vma;
    if (seen.mmap_leave_start_zero)
        return 0;
    if (vma->vm_pgoff * 4096 + (vma->vm_end - vma->vm_start) > sizeof(bar))
        return -EINVAL;
    vma->vm_start = (unsigned long)(bar + vma->vm_pgoff * 4096);
    return 0;
}

static void t_request(struct vfio_device *vdev, unsigned int count)
{
    saw(vdev);
    pthread_mutex_lock(&lock);
    if (seen.request < 64)
        seen.requests[seen.request] = count;
    seen.request++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static int t_match(struct vfio_device *vdev, char *buf)
{
    saw(vdev);
    seen.match++;
    snprintf(seen.match_buf, sizeof(seen.match_buf), "%s", buf);
    if (strcmp(buf, "error") == 0)
        return -EIO;
    return strcmp(buf, swiftvfio_device_name(vdev)) == 0 || strcmp(buf, "test-alias") == 0;
}

static const struct vfio_device_ops test_ops = {
    .name = "vfio-test",
    .init = t_init,
    .release = t_release,
    .bind_iommufd = t_bind,
    .unbind_iommufd = t_unbind,
    .attach_ioas = t_attach,
    .open_device = t_open,
    .close_device = t_close,
    .read = t_read,
    .write = t_write,
    .ioctl = t_ioctl,
    .mmap = t_mmap,
    .request = t_request,
    .match = t_match,
};

static struct device *dev;
static struct vfio_device *vdev;

static void test_hardware_and_registration_errors(void)
{
    struct iommu_group *ig, *ig2;
    struct device *incoherent, *loose;
    struct vfio_device *v;
    struct vfio_device_ops ops;

    /* The driver's own IOMMU group and device. */
    CHECK_EQ(swiftvfio_iommu_group_alloc(50, &ig), 0);
    CHECK_EQ(iommu_group_id(ig), 50);
    CHECK_EQ(swiftvfio_iommu_group_alloc(50, &ig2), -EEXIST);
    CHECK_EQ(swiftvfio_iommu_group_alloc(26, &ig2), -EEXIST); /* the topology's */
    CHECK_EQ(swiftvfio_iommu_group_alloc(-3, &ig2), -EINVAL);
    CHECK_EQ(swiftvfio_device_add("0000:50:00.0", 0, &dev), 0);
    CHECK_EQ(swiftvfio_device_add("0000:50:00.0", 0, &loose), -EEXIST);
    CHECK_EQ(swiftvfio_device_add("", 0, &loose), -EINVAL);
    CHECK_EQ(swiftvfio_device_add("x", 0x80, &loose), -EINVAL);
    CHECK_PTR_EQ(swiftvfio_device_find("0000:50:00.0"), dev);
    CHECK_PTR_EQ(swiftvfio_device_find("0000:50:00.9"), NULL);
    CHECK_EQ(errno, ENOENT);
    CHECK_PTR_EQ(iommu_group_get(dev), NULL);
    CHECK_EQ(errno, ENODEV);
    CHECK_EQ(iommu_group_add_device(ig, dev), 0);
    CHECK_EQ(iommu_group_add_device(ig, dev), -EBUSY);
    iommu_group_put(ig); /* the member keeps the group */
    ig = iommu_group_get(dev);
    CHECK(ig != NULL);
    CHECK_EQ(iommu_group_id(ig), 50);
    iommu_group_put(ig);
    CHECK_EQ(swiftvfio_device_bind_driver(dev, "vfio-test", true), 0);
    CHECK_EQ(swiftvfio_device_bind_driver(dev, "other", true), -EBUSY);
    CHECK_EQ(swiftvfio_device_remove(dev), -EBUSY); /* bound and in a group */

    /* Allocation errors. */
    CHECK_EQ(swiftvfio_alloc_device(dev, NULL, NULL, &v), -EFAULT);
    CHECK_EQ(swiftvfio_alloc_device(dev, &test_ops, NULL, NULL), -EFAULT);
    CHECK_EQ(swiftvfio_alloc_device(dev, (const struct vfio_device_ops *)8, NULL, &v), -EFAULT);
    CHECK_EQ(swiftvfio_alloc_device(dev, &test_ops, NULL, (struct vfio_device **)8), -EFAULT);
    CHECK_EQ(seen.init + seen.release, 0); /* refused before anything existed */
    memset(&seen, 0, sizeof(seen));

    /* bind_iommufd without unbind_iommufd / attach_ioas: WARN and EINVAL at registration. */
    ops = test_ops;
    ops.unbind_iommufd = NULL;
    CHECK_EQ(swiftvfio_alloc_device(dev, &ops, drvdata_cookie, &v), 0);
    EXPECT_WARNS(1, CHECK_EQ(vfio_register_group_dev(v), -EINVAL));
    vfio_put_device(v);
    CHECK_EQ(seen.release, 1);
    memset(&seen, 0, sizeof(seen));

    /* No cache coherency: EINVAL (no WARN). */
    CHECK_EQ(swiftvfio_device_add("0000:51:00.0", SWIFTVFIO_DEV_NO_CACHE_COHERENCY, &incoherent), 0);
    CHECK_EQ(swiftvfio_iommu_group_alloc(51, &ig2), 0);
    CHECK_EQ(iommu_group_add_device(ig2, incoherent), 0);
    iommu_group_put(ig2);
    ops = test_ops;
    ops.init = NULL;
    ops.release = NULL;
    CHECK_EQ(swiftvfio_alloc_device(incoherent, &ops, NULL, &v), 0);
    EXPECT_WARNS(0, CHECK_EQ(vfio_register_group_dev(v), -EINVAL));
    vfio_put_device(v);
    iommu_group_remove_device(incoherent);
    CHECK_EQ(swiftvfio_device_remove(incoherent), 0);

    /* A device in no IOMMU group (no-IOMMU mode off): EINVAL. */
    CHECK_EQ(swiftvfio_device_add("loose", 0, &loose), 0);
    CHECK_EQ(swiftvfio_alloc_device(loose, &ops, NULL, &v), 0);
    CHECK_EQ(vfio_register_group_dev(v), -EINVAL);
    vfio_put_device(v);
    CHECK_EQ(swiftvfio_device_remove(loose), 0);

    /* init's error fails the allocation, and release is not called. */
    ops = test_ops;
    ops.init = NULL;
    memset(&seen, 0, sizeof(seen));
}

static int failing_init(struct vfio_device *v)
{
    (void)v;
    return -ENOMEM;
}

static void test_init_failure(void)
{
    struct vfio_device_ops ops = test_ops;
    struct vfio_device *v = (struct vfio_device *)1;
    int devices = cabi_census().devices;

    ops.init = failing_init;
    CHECK_EQ(swiftvfio_alloc_device(dev, &ops, NULL, &v), -ENOMEM);
    CHECK_PTR_EQ(v, NULL); /* cleared on error */
    CHECK_EQ(seen.release, 0);
    CHECK_EQ(cabi_census().devices, devices);
}

static void test_register(void)
{
    struct swiftvfio_census before = cabi_census();

    memset(&seen, 0, sizeof(seen));
    CHECK_EQ(swiftvfio_alloc_device(dev, &test_ops, drvdata_cookie, &vdev), 0);
    CHECK(vdev != NULL);
    CHECK_EQ(seen.init, 1);
    CHECK_PTR_EQ(seen.vdev, vdev);
    CHECK_PTR_EQ(swiftvfio_device_drvdata(vdev), drvdata_cookie);
    CHECK(strcmp(swiftvfio_device_name(vdev), "0000:50:00.0") == 0);
    CHECK_EQ(swiftvfio_device_open_count(vdev), 0);
    CHECK_PTR_EQ(swiftvfio_device_kvm(vdev), NULL);
    CHECK_EQ(vfio_register_group_dev(vdev), 0);
    EXPECT_WARNS(1, CHECK_EQ(vfio_register_group_dev(vdev), -EINVAL)); /* twice */
    CHECK_EQ(cabi_census().registered_devices, before.registered_devices + 1);
    CHECK_EQ(cabi_census().groups, before.groups + 1);
}

static void test_open_through_container(void)
{
    int c, g, d, d2, other;
    char buf[32];
    void *p;
    struct file *fg, *fd, *f26;
    struct vfio_group_status st = { .argsz = sizeof(st) };

    memset(buf, 0, sizeof(buf));
    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    g = swiftvfio_open("/dev/vfio/50", O_RDWR);
    CHECK(c >= 0 && g >= 0);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, (unsigned long)&st), 0);
    CHECK_EQ(st.flags, VFIO_GROUP_FLAGS_VIABLE);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), 0);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);

    /* match decides the name lookup; its error is the ioctl's. */
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"nobody"), ENODEV);
    CHECK(strcmp(seen.match_buf, "nobody") == 0);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"error"), EIO);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"test-alias");
    CHECK(d >= 0);
    CHECK(strcmp(seen.match_buf, "test-alias") == 0);
    CHECK_EQ(seen.open, 1);
    CHECK_PTR_EQ(seen.kvm_in_open, NULL);
    CHECK_EQ(seen.open_count_in_open, -35); /* -EDEADLK */
    CHECK_EQ(seen.bind, 0); /* container mode: no iommufd ops */
    CHECK_EQ(swiftvfio_device_open_count(vdev), 1);
    d2 = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:50:00.0");
    CHECK(d2 >= 0);
    CHECK_EQ(seen.open, 1); /* not the first open */
    CHECK_EQ(swiftvfio_device_open_count(vdev), 2);

    /* The device file's device is the driver's handle; has_dev across groups. */
    fd = swiftvfio_fget(d);
    fg = swiftvfio_fget(g);
    CHECK_PTR_EQ(swiftvfio_file_device(fd), vdev);
    CHECK(vfio_file_has_dev(fg, vdev));
    other = swiftvfio_open("/dev/vfio/26", O_RDWR);
    f26 = swiftvfio_fget(other);
    CHECK(!vfio_file_has_dev(f26, vdev));
    swiftvfio_fput(f26);
    swiftvfio_close(other);
    swiftvfio_fput(fd);
    swiftvfio_fput(fg);

    /* read/write/pread/pwrite: the arguments reach the ops as given; read/write advance the
     * file position, shared by both fds of the one file. */
    memcpy(bar + 0x100, "hello", 5);
    CHECK_EQ(swiftvfio_pread(d, buf, 5, 0x100), 5);
    CHECK_PTR_EQ(seen.read_buf, buf);
    CHECK_EQ(seen.read_count, 5);
    CHECK_EQ(seen.read_pos, 0x100);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(swiftvfio_pwrite(d, "HELLO", 5, 0x200), 5);
    CHECK_EQ(seen.write_count, 5);
    CHECK_EQ(seen.write_pos, 0x200);
    CHECK(memcmp(bar + 0x200, "HELLO", 5) == 0);
    CHECK_EQ(swiftvfio_read(d, buf, 4), 4);
    CHECK_EQ(seen.read_pos, 0);
    CHECK_EQ(swiftvfio_read(d, buf, 4), 4);
    CHECK_EQ(seen.read_pos, 4);
    CHECK_EQ(swiftvfio_write(d, "ab", 2), 2);
    CHECK_EQ(seen.write_pos, 8);
    CHECK_EQ(swiftvfio_read(d2, buf, 1), 1); /* d2 is another file: its own position */
    CHECK_EQ(seen.read_pos, 0);
    CHECK_SYSERR(swiftvfio_pread(d, buf, 8, sizeof(bar)), EINVAL); /* the driver's error */
    CHECK_SYSERR(swiftvfio_pread(d, (void *)8, 4, 0), EFAULT);     /* guarded copy */
    CHECK_SYSERR(swiftvfio_pwrite(d, (void *)8, 4, 0), EFAULT);

    /* ioctl: cmd and arg verbatim, the op's result or -errno. */
    CHECK_EQ(swiftvfio_ioctl(d, 0x3b70 + 0x20, 0xdeadbeef), 42);
    CHECK_EQ(seen.ioctl_cmd, 0x3b90);
    CHECK_EQ(seen.ioctl_arg, 0xdeadbeef);
    CHECK_SYSERR(swiftvfio_ioctl(d, 0x3b99, 0), EOPNOTSUPP);

    /* mmap: the request in the vma, the driver's memory back. */
    p = swiftvfio_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, d, 4096);
    CHECK_PTR_EQ(p, bar + 4096);
    CHECK_EQ(seen.vma.vm_pgoff, 1);
    CHECK_EQ(seen.vma.vm_end - seen.vma.vm_start, 4096);
    CHECK_EQ(seen.vma.vm_flags, 0x1 | 0x2 | 0x8);
    CHECK_EQ(seen.vma.vm_page_prot, PROT_READ | PROT_WRITE);
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, 8192), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    /* A private mapping reaches the driver without VM_SHARED (the driver decides). */
    p = swiftvfio_mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, d, 0);
    CHECK_PTR_EQ(p, bar);
    CHECK_EQ(seen.vma.vm_flags, 0x1);
    /* MAP_FIXED: the driver's memory cannot be moved, so EINVAL without asking the driver; as in
     * the kernel after a refused MAP_FIXED, the caller's range is left unmapped. */
    {
        int calls = seen.mmap;
        unsigned char vec;
        void *hole = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(hole != MAP_FAILED);
        CHECK_PTR_EQ(swiftvfio_mmap(hole, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, d, 0), MAP_FAILED);
        CHECK_EQ(errno, EINVAL);
        CHECK_EQ(seen.mmap, calls);
        CHECK_EQ(mincore(hole, 4096, &vec), -1);
        CHECK_EQ(errno, ENOMEM);
        /* A hint is only a hint: the driver's memory comes back. */
        p = swiftvfio_mmap(hole, 4096, PROT_READ, MAP_SHARED, d, 0);
        CHECK_PTR_EQ(p, bar);
    }
    seen.mmap_leave_start_zero = 1; /* a driver bug: WARN and EINVAL, not a NULL mapping */
    EXPECT_WARNS(1, CHECK_PTR_EQ(swiftvfio_mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, 0), MAP_FAILED));
    seen.mmap_leave_start_zero = 0;

    swiftvfio_close(d2);
    CHECK_EQ(seen.close, 0);
    swiftvfio_close(d);
    CHECK_EQ(seen.close, 1);
    CHECK_EQ(swiftvfio_device_open_count(vdev), 0);
    swiftvfio_close(g);
    swiftvfio_close(c);
}

static void test_open_through_iommufd(void)
{
    int iommufd, g, d;

    iommufd = swiftvfio_open("/dev/iommu", O_RDWR);
    g = swiftvfio_open("/dev/vfio/50", O_RDWR);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&iommufd), 0);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:50:00.0");
    CHECK(d >= 0);
    CHECK_EQ(seen.bind, 1);
    CHECK(seen.ictx != NULL);
    CHECK_EQ(seen.attach, 1);
    CHECK(seen.pt_id != 0); /* the compat IOAS */
    CHECK_EQ(seen.open, 2);
    swiftvfio_close(d);
    CHECK_EQ(seen.unbind, 1);
    CHECK_EQ(seen.close, 2);
    swiftvfio_close(g);
    swiftvfio_close(iommufd);
}

struct holder {
    int fd;
    struct timespec closed_at;
};

static void *close_on_second_request(void *arg)
{
    struct holder *h = arg;
    pthread_mutex_lock(&lock);
    while (seen.request < 1)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    usleep(200 * 1000); /* unregister must still be waiting */
    clock_gettime(CLOCK_MONOTONIC, &h->closed_at);
    swiftvfio_close(h->fd);
    return NULL;
}

static void test_unregister_blocks(void)
{
    int c, g;
    struct holder h;
    pthread_t t;
    struct timespec done;
    struct vfio_device *stale;

    h.fd = cabi_open_device("/dev/vfio/50", "0000:50:00.0", &c, &g);
    CHECK(h.fd >= 0);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_EQ(seen.request, 0);

    pthread_create(&t, NULL, close_on_second_request, &h);
    vfio_unregister_group_dev(vdev); /* blocks until the client closes */
    clock_gettime(CLOCK_MONOTONIC, &done);
    pthread_join(t, NULL);
    CHECK(done.tv_sec > h.closed_at.tv_sec ||
          (done.tv_sec == h.closed_at.tv_sec && done.tv_nsec >= h.closed_at.tv_nsec));
    CHECK(seen.request >= 1);
    CHECK_EQ(seen.requests[0], 0);
    CHECK_EQ(seen.close, 3);
    CHECK_SYSERR(swiftvfio_open("/dev/vfio/50", O_RDWR), ENOENT); /* the group went with it */

    /* Unregistered, not released: the driver still holds its reference. */
    CHECK_EQ(seen.release, 0);
    CHECK_PTR_EQ(swiftvfio_device_drvdata(vdev), drvdata_cookie);
    EXPECT_WARNS(1, vfio_unregister_group_dev(vdev)); /* not registered */
    vfio_put_device(vdev);
    CHECK_EQ(seen.release, 1);
    CHECK_EQ(seen.wrong_vdev, 0);
    CHECK(seen.drvdata_ok > 10);

    /* The handle is stale now. */
    stale = vdev;
    EXPECT_WARNS(1, vfio_put_device(stale));
    EXPECT_WARNS(1, CHECK_PTR_EQ(swiftvfio_device_drvdata(stale), NULL));
    CHECK_LAST_ERROR("stale");
}

static void test_unregister_without_users(void)
{
    struct vfio_device *v;
    struct vfio_device_ops ops = test_ops;
    int g;
    struct file *fg;

    ops.init = NULL;
    memset(&seen, 0, sizeof(seen));
    CHECK_EQ(swiftvfio_alloc_device(dev, &ops, NULL, &v), 0);
    seen.vdev = v;
    CHECK_EQ(vfio_register_group_dev(v), 0);
    g = swiftvfio_open("/dev/vfio/50", O_RDWR);
    fg = swiftvfio_fget(g);
    CHECK(!vfio_file_enforced_coherent(fg) == 0);
    /* No device fd: returns at once, no request. */
    vfio_unregister_group_dev(v);
    CHECK_EQ(seen.request, 0);
    /* The group file outlives its devices: an empty group enforces coherency trivially. */
    CHECK(vfio_file_enforced_coherent(fg));
    CHECK(vfio_file_is_group(fg));
    swiftvfio_fput(fg);
    swiftvfio_close(g);
    vfio_put_device(v);
    CHECK_EQ(seen.release, 1);
}

static void test_drvdata_and_cleanup(void)
{
    struct vfio_device *v;
    struct vfio_device_ops ops = test_ops;
    char other[] = "other";

    ops.init = NULL;
    ops.release = NULL;
    CHECK_EQ(swiftvfio_alloc_device(dev, &ops, NULL, &v), 0);
    CHECK_PTR_EQ(swiftvfio_device_drvdata(v), NULL);
    swiftvfio_device_set_drvdata(v, other);
    CHECK_PTR_EQ(swiftvfio_device_drvdata(v), other);
    vfio_put_device(v);

    /* The hardware goes: unbind, leave the group (which goes with its last member), remove. */
    swiftvfio_device_unbind_driver(dev);
    iommu_group_remove_device(dev);
    EXPECT_WARNS(1, iommu_group_remove_device(dev)); /* in no group now */
    CHECK_PTR_EQ(iommu_group_get(dev), NULL);
    CHECK_EQ(swiftvfio_device_remove(dev), 0);
    EXPECT_WARNS(1, CHECK_EQ(swiftvfio_device_remove(dev), -EINVAL)); /* stale */
    /* Group 50's id is free again. */
    {
        struct iommu_group *ig;
        CHECK_EQ(swiftvfio_iommu_group_alloc(50, &ig), 0);
        iommu_group_put(ig);
    }
}

/* A driver without read, write, ioctl or mmap ops: the core answers EINVAL for each. */
static void test_missing_ops(void)
{
    static const struct vfio_device_ops bare_ops = { .name = "bare" };
    struct iommu_group *ig;
    struct device *bus;
    struct vfio_device *v;
    int c, g, d;
    char buf[4];

    CHECK_EQ(swiftvfio_iommu_group_alloc(52, &ig), 0);
    CHECK_EQ(swiftvfio_device_add("0000:52:00.0", 0, &bus), 0);
    CHECK_EQ(iommu_group_add_device(ig, bus), 0);
    iommu_group_put(ig);
    CHECK_EQ(swiftvfio_alloc_device(bus, &bare_ops, NULL, &v), 0);
    CHECK_EQ(vfio_register_group_dev(v), 0);
    d = cabi_open_device("/dev/vfio/52", "0000:52:00.0", &c, &g);
    CHECK(d >= 0);
    CHECK_SYSERR(swiftvfio_pread(d, buf, sizeof(buf), 0), EINVAL);
    CHECK_SYSERR(swiftvfio_read(d, buf, sizeof(buf)), EINVAL);
    CHECK_SYSERR(swiftvfio_write(d, buf, sizeof(buf)), EINVAL);
    CHECK_SYSERR(swiftvfio_pwrite(d, buf, sizeof(buf), 0), EINVAL);
    CHECK_SYSERR(swiftvfio_ioctl(d, VFIO_DEVICE_GET_INFO, (unsigned long)buf), EINVAL);
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    swiftvfio_close(d);
    swiftvfio_close(g);
    swiftvfio_close(c);
    vfio_unregister_group_dev(v);
    vfio_put_device(v);
    iommu_group_remove_device(bus);
    CHECK_EQ(swiftvfio_device_remove(bus), 0);
}

int main(void)
{
    struct swiftvfio_census start = cabi_census(), end;

    cabi_timeout(60);
    test_hardware_and_registration_errors();
    test_init_failure();
    test_register();
    test_open_through_container();
    test_open_through_iommufd();
    test_unregister_blocks();
    test_unregister_without_users();
    test_drvdata_and_cleanup();
    test_missing_ops();
    end = cabi_census();
    CHECK_EQ(end.devices, start.devices);
    CHECK_EQ(end.registered_devices, start.registered_devices);
    CHECK_EQ(end.groups, start.groups);
    CHECK_NOTHING_OPEN();
    return cabi_summary();
}
