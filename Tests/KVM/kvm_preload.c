// SPDX-License-Identifier: Apache-2.0
/* The kvm-vfio device of real KVM VMs under the interposer (issue 12): a C program on /dev/kvm,
 * run with LD_PRELOAD=libswiftvfio-preload.so and linked with libswiftvfio.so (so it can read the
 * model: swiftvfio_device_kvm, the census; the interposer uses the same copy). Built-in topology.
 *
 *   kvm_preload            every errno of the device, each next to the real kernel's own
 *                          kvm-vfio device's answer where the kernel can give one (a device made
 *                          with a raw syscall on another VM), and the VM reference rules
 *   kvm_preload exit TRACE a child: links a VM to group 26, opens the device and exits without
 *                          closing anything; the parent reads its trace
 *
 * Exit 77 (after "SKIPPED: ...") when /dev/kvm cannot create a VM. */
#include "../CABI/cabi_test.h"

#include <dirent.h>
#include <dlfcn.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static bool (*get_safe)(struct kvm *);
static void (*put_kvm)(struct kvm *);
static int kvmfd = -1;
static char *bad; /* a PROT_NONE page: every access faults */

/* -errno or the result, for ioctl() through the interposer. */
static int sys(int r) { return r < 0 ? -errno : r; }
/* The same call straight to the kernel, past the interposer. */
static int raw(int fd, unsigned long req, void *arg) { return sys((int)syscall(SYS_ioctl, fd, req, arg)); }

static int create_vm(void) { return sys(ioctl(kvmfd, KVM_CREATE_VM, 0)); }

static int create_dev(int vm, uint32_t flags, int *fd)
{
    struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO, .flags = flags, .fd = 12345 };
    int r = sys(ioctl(vm, KVM_CREATE_DEVICE, &cd));
    if (fd)
        *fd = (int)cd.fd;
    return r;
}

static int attr_call(bool kernel, int dev, unsigned long cmd, uint32_t group, uint64_t attr, const void *addr)
{
    struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)addr };
    return kernel ? raw(dev, cmd, &a) : sys(ioctl(dev, cmd, &a));
}

static int add(int dev, int32_t fd) { return attr_call(false, dev, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, &fd); }
static int del(int dev, int32_t fd) { return attr_call(false, dev, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, &fd); }

static int container = -1, g26 = -1;

static void open_group26(void)
{
    container = open("/dev/vfio/vfio", O_RDWR);
    g26 = open("/dev/vfio/26", O_RDWR);
    CHECK(container >= 0 && g26 >= 0);
    CHECK_EQ(sys(ioctl(g26, VFIO_GROUP_SET_CONTAINER, &container)), 0);
    CHECK_EQ(sys(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)), 0);
}

static int open_device(void) { return sys(ioctl(g26, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0")); }

/* The VM the device's open took a reference on (the model's vdev->kvm), or NULL. */
static struct kvm *device_kvm(int fd)
{
    struct file *f = swiftvfio_fget(fd);
    struct kvm *k = swiftvfio_device_kvm(swiftvfio_file_device(f));
    swiftvfio_fput(f);
    return k;
}

/* Descriptors of the process that refer to a KVM VM file (ours and the interposer's). */
static int vm_files(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], target[64];
    while (d && (e = readdir(d))) {
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = 0;
            n += strcmp(target, "anon_inode:kvm-vm") == 0;
        }
    }
    if (d)
        closedir(d);
    return n;
}

static int kernel_refs(void) { return cabi_census().kvm_references; }

/* KVM_CREATE_DEVICE: TEST, types, non-VM fds, EFAULT, EBUSY by VM file, a new one after close. */
static void test_create_device(void)
{
    int vm = create_vm(), vm2, dev, dev2, fd = -1, null = open("/dev/null", O_RDONLY);
    CHECK(vm >= 0);

    /* KVM_CREATE_DEVICE_TEST: 0, nothing made, cd.fd untouched (the kernel's answer). */
    CHECK_EQ(create_dev(vm, KVM_CREATE_DEVICE_TEST, &fd), 0);
    CHECK_EQ(fd, 12345);
    /* Not a VM: the kernel's own answers (/dev/kvm's and a plain file's). */
    CHECK_EQ(create_dev(kvmfd, 0, NULL), -EINVAL);
    CHECK_EQ(create_dev(null, 0, NULL), -ENOTTY);
    CHECK_EQ(create_dev(-1, 0, NULL), -EBADF);
    CHECK_EQ(sys(ioctl(vm, KVM_CREATE_DEVICE, bad)), -EFAULT);
    struct kvm_create_device other = { .type = 0xffff };
    CHECK_EQ(sys(ioctl(vm, KVM_CREATE_DEVICE, &other)), -ENODEV);

    CHECK_EQ(create_dev(vm, 0, &dev), 0);
    CHECK(dev >= 0 && dev != 12345);
    CHECK_EQ(fcntl(dev, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(create_dev(vm, 0, NULL), -EBUSY);
    int vmdup = dup(vm);
    CHECK_EQ(create_dev(vmdup, 0, NULL), -EBUSY); /* the same VM through another fd */
    CHECK_EQ(create_dev(vm, KVM_CREATE_DEVICE_TEST, NULL), 0); /* TEST skips the one-per-VM check */
    vm2 = create_vm();
    CHECK_EQ(create_dev(vm2, 0, &dev2), 0); /* another VM, its own device */
    close(dev2);
    close(vm2);
    close(dev);
    CHECK_EQ(create_dev(vmdup, 0, &dev), 0); /* one per VM counts live devices only */
    close(dev);
    close(vmdup);
    close(vm);
    close(null);
    CHECK_EQ(vm_files(), 0);
}

/* Every errno of KVM_SET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR on model groups, each next to the
 * kernel's own kvm-vfio device where the argument is not a model fd. */
static void test_attr_errors(void)
{
    int vm = create_vm(), kvm_vm = create_vm(), dev, kdev, null = open("/dev/null", O_RDONLY);
    CHECK_EQ(create_dev(vm, 0, &dev), 0);
    struct kvm_create_device kcd = { .type = KVM_DEV_TYPE_VFIO };
    CHECK_EQ(raw(kvm_vm, KVM_CREATE_DEVICE, &kcd), 0); /* the kernel's own kvm-vfio device */
    kdev = (int)kcd.fd;
    int closed = dup(null);
    close(closed);
    int32_t v = -1;

#define BOTH(want, cmd, group, attr, addr)                                                          \
    do {                                                                                           \
        CHECK_EQ(attr_call(false, dev, cmd, group, attr, addr), want);                             \
        CHECK_EQ(attr_call(true, kdev, cmd, group, attr, addr), want);                             \
    } while (0)
    BOTH(0, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, NULL);
    BOTH(0, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, NULL);
    BOTH(-ENXIO, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE, NULL); /* x86 */
    BOTH(-ENXIO, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, 99, NULL);
    BOTH(-ENXIO, KVM_HAS_DEVICE_ATTR, 7, KVM_DEV_VFIO_GROUP_ADD, NULL);
    BOTH(-ENXIO, KVM_SET_DEVICE_ATTR, 7, KVM_DEV_VFIO_GROUP_ADD, &v);            /* unknown group */
    BOTH(-ENXIO, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, 99, &v);               /* unknown attr */
    BOTH(-ENXIO, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE, &v);
    BOTH(-EFAULT, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, bad);
    BOTH(-EFAULT, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, bad);
    BOTH(-EBADF, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, &v);
    BOTH(-EBADF, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, &v);
    v = closed;
    BOTH(-EBADF, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, &v);
    v = null;
    BOTH(-EINVAL, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, &v); /* not a group */
    BOTH(-ENOENT, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, &v); /* not listed */
#undef BOTH
    /* The generic layer: a bad attribute pointer, no get_attr, no ioctl op. */
    CHECK_EQ(sys(ioctl(dev, KVM_SET_DEVICE_ATTR, bad)), -EFAULT);
    CHECK_EQ(raw(kdev, KVM_SET_DEVICE_ATTR, bad), -EFAULT);
    CHECK_EQ(sys(ioctl(dev, KVM_HAS_DEVICE_ATTR, bad)), -EFAULT);
    CHECK_EQ(raw(kdev, KVM_HAS_DEVICE_ATTR, bad), -EFAULT);
    CHECK_EQ(sys(ioctl(dev, KVM_GET_DEVICE_ATTR, bad)), -EPERM);
    CHECK_EQ(raw(kdev, KVM_GET_DEVICE_ATTR, bad), -EPERM);
    CHECK_EQ(sys(ioctl(dev, KVM_CHECK_EXTENSION, 0)), -ENOTTY);
    CHECK_EQ(raw(kdev, KVM_CHECK_EXTENSION, 0), -ENOTTY);
    /* The kernel's device rejects a model group: the reason the interposer serves the device. */
    v = g26;
    CHECK_EQ(attr_call(true, kdev, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, &v), -EINVAL);

    /* Model fds: a container and a device are not groups; a group once, by file. */
    int d = open_device(), g28 = open("/dev/vfio/28", O_RDWR), gdup = dup(g26);
    CHECK(d >= 0 && g28 >= 0 && gdup >= 0);
    CHECK_EQ(add(dev, container), -EINVAL);
    CHECK_EQ(add(dev, d), -EINVAL);
    CHECK_EQ(add(dev, g26), 0);
    CHECK_EQ(add(dev, g26), -EEXIST);
    CHECK_EQ(add(dev, gdup), -EEXIST); /* a dup()ed fd is the same file */
    CHECK_EQ(del(dev, g28), -ENOENT);  /* a model group never added */
    CHECK_EQ(del(dev, container), -ENOENT);
    CHECK_EQ(del(dev, gdup), 0);       /* by file: the dup deletes the entry */
    CHECK_EQ(del(dev, g26), -ENOENT);
    CHECK_EQ(add(dev, g28), 0);        /* group 28's file, held by the device */
    close(g28);                        /* the device's reference keeps the file open */
    CHECK_EQ(cabi_census().groups >= 1, 1);
    close(gdup);
    close(d);
    close(dev);                        /* release: set_kvm(NULL) and the put of group 28's file */
    close(kdev);
    close(kvm_vm);
    close(vm);
    close(null);
    CHECK_EQ(kernel_refs(), 0);
    CHECK_EQ(vm_files(), 0);
}

/* The VM reference a device's open takes (vfio_device_open: at first open, from the group's VM). */
static void test_references(void)
{
    int vm = create_vm(), dev, d, d2;
    CHECK_EQ(create_dev(vm, 0, &dev), 0);

    /* Opened before ADD: no VM, and ADD does not reach an open device. */
    d = open_device();
    CHECK(d >= 0);
    CHECK(device_kvm(d) == NULL);
    CHECK_EQ(add(dev, g26), 0);
    CHECK(device_kvm(d) == NULL);
    CHECK_EQ(kernel_refs(), 0);
    close(d);

    /* Opened after ADD: the first open takes a reference on the VM record. */
    d = open_device();
    struct kvm *k = device_kvm(d);
    CHECK(k != NULL);
    CHECK_EQ(kernel_refs(), 1);
    CHECK(get_safe(k));
    put_kvm(k);

    /* DEL while the device is open: the reference stays until its last close. */
    CHECK_EQ(del(dev, g26), 0);
    CHECK(device_kvm(d) == k);
    d2 = open_device(); /* a second open is not a first open: nothing new latched */
    CHECK(d2 >= 0);
    CHECK(device_kvm(d2) == k);
    close(d);
    CHECK_EQ(kernel_refs(), 1);
    close(d2);
    CHECK_EQ(kernel_refs(), 0);
    CHECK(get_safe(k)); /* the kvm-vfio device file still holds the VM */
    put_kvm(k);

    /* The VM fd closed first: the device file and the open device keep the VM. */
    CHECK_EQ(add(dev, g26), 0);
    d = open_device();
    CHECK(device_kvm(d) == k);
    close(vm);
    CHECK_EQ(vm_files(), 1); /* the record's hold on the VM's file: the kernel's device reference */
    CHECK(get_safe(k));
    put_kvm(k);
    CHECK_EQ(del(dev, g26), 0); /* the device works on */
    CHECK_EQ(add(dev, g26), 0);
    close(dev); /* release: set_kvm(NULL); the open device still holds the VM */
    CHECK_EQ(kernel_refs(), 1);
    CHECK(get_safe(k));
    put_kvm(k);
    d2 = open_device(); /* the group no longer names a VM */
    CHECK(device_kvm(d2) == k); /* (the device's first open latched it) */
    close(d2);
    close(d); /* the last reference: the VM goes */
    CHECK_EQ(kernel_refs(), 0);
    CHECK(!get_safe(k));
    CHECK_EQ(vm_files(), 0);

    /* The device fd closed last: device, then VM fd, then the kvm-vfio fd. */
    vm = create_vm();
    CHECK_EQ(create_dev(vm, 0, &dev), 0);
    CHECK_EQ(add(dev, g26), 0);
    d = open_device();
    k = device_kvm(d);
    CHECK(k != NULL);
    close(d);
    CHECK_EQ(kernel_refs(), 0);
    close(vm);
    CHECK(get_safe(k)); /* the kvm-vfio file alone keeps the VM */
    put_kvm(k);
    close(dev);
    CHECK(!get_safe(k));
    CHECK_EQ(vm_files(), 0);
}

/* The kernel's corners: the fd copied back into read-only memory, a forked child, a device fd
 * closed behind the interposer's back. */
static void test_edges(void)
{
    int vm = create_vm(), dev, null = open("/dev/null", O_RDONLY);

    /* KVM_CREATE_DEVICE into a read-only argument: EFAULT, and the device exists at the lowest
     * free number (the kernel installs the fd before the copy that fails). */
    struct kvm_create_device *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro->type = KVM_DEV_TYPE_VFIO;
    mprotect(ro, 4096, PROT_READ);
    int lowest = dup(null);
    close(lowest);
    CHECK_EQ(sys(ioctl(vm, KVM_CREATE_DEVICE, ro)), -EFAULT);
    CHECK_EQ(fcntl(lowest, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(create_dev(vm, 0, NULL), -EBUSY);
    CHECK_EQ(attr_call(false, lowest, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, NULL), 0);
    close(lowest);
    munmap(ro, 4096);

    /* A forked child shares the device file but not the VM's mm: EIO, as the kernel's device. */
    int kvm_vm = create_vm(), kdev;
    struct kvm_create_device kcd = { .type = KVM_DEV_TYPE_VFIO };
    CHECK_EQ(raw(kvm_vm, KVM_CREATE_DEVICE, &kcd), 0);
    kdev = (int)kcd.fd;
    CHECK_EQ(create_dev(vm, 0, &dev), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int ours = attr_call(false, dev, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, NULL);
        int kernel = attr_call(true, kdev, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, NULL);
        close(dev); /* the child's close releases nothing: the file is shared with the parent */
        _exit(ours == -EIO && kernel == -EIO ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(attr_call(false, dev, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, NULL), 0);
    close(kdev);
    close(kvm_vm);

    /* Closed behind the interposer's back, the number reused: that was the device file's last
     * close. The next call on the number finds out: the release ran (the group is cleared) and
     * the call is the new file's. */
    CHECK_EQ(add(dev, g26), 0);
    int again = (int)syscall(SYS_dup3, null, dev, 0); /* closes the placeholder, /dev/null there */
    CHECK_EQ(again, dev);
    CHECK_EQ(attr_call(false, again, KVM_HAS_DEVICE_ATTR, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, NULL), -ENOTTY);
    int d = open_device();
    CHECK(device_kvm(d) == NULL); /* set_kvm(NULL) ran at the release */
    close(d);
    CHECK_EQ(create_dev(vm, 0, &dev), 0); /* the VM has no device any more */
    close(dev);
    close(again);
    close(vm);
    close(null);
    CHECK_EQ(kernel_refs(), 0);
    CHECK_EQ(vm_files(), 0);
}

/* The child: a VM linked to group 26, the device open, exit without closing anything. */
static int child_exit(void)
{
    open_group26();
    int vm = create_vm(), dev;
    CHECK_EQ(create_dev(vm, 0, &dev), 0);
    CHECK_EQ(add(dev, g26), 0);
    CHECK_EQ(add(dev, g26), -EEXIST);
    int d = open_device();
    CHECK(device_kvm(d) != NULL);
    CHECK_EQ(swiftvfio_trace_enabled(), 1);
    CHECK_EQ(swiftvfio_trace("kvm_preload: exiting with everything open"), 1);
    CHECK_EQ(swiftvfio_trace("two\nlines"), -EINVAL);
    return cabi_summary(); /* exit(): the interposer's exit hook releases everything */
}

static int trace_has(char **lines, int n, int from, const char *a, const char *b)
{
    for (int i = from; i < n; i++)
        if (strstr(lines[i], a) && (!b || strstr(lines[i], b)))
            return i;
    return -1;
}

static void test_exit(const char *self)
{
    char trace[] = "/tmp/kvm-preload-trace-XXXXXX";
    int tfd = mkstemp(trace);
    CHECK(tfd >= 0);
    close(tfd);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SWIFTVFIO_TRACE", trace, 1);
        execl(self, self, "exit", (char *)NULL);
        _exit(127);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *f = fopen(trace, "r");
    char *lines[4096], buf[1024];
    int n = 0;
    while (f && n < 4096 && fgets(buf, sizeof buf, f))
        lines[n++] = strdup(buf);
    if (f)
        fclose(f);
    unlink(trace);
    int create = trace_has(lines, n, 0, "KVM_CREATE_DEVICE, {type=KVM_DEV_TYPE_VFIO", "= 0 => {fd=");
    int addl = trace_has(lines, n, create, "KVM_DEV_VFIO_GROUP_ADD", "<unfinished ...>");
    int setk = trace_has(lines, n, addl, "vfio_file_set_kvm(/dev/vfio/26, kvm=0x", NULL);
    int done = trace_has(lines, n, setk, "<... ioctl(", "KVM_SET_DEVICE_ATTR) resumed> = 0");
    int eexist = trace_has(lines, n, done, "KVM_SET_DEVICE_ATTR) resumed> = -1 EEXIST", NULL);
    int marker = trace_has(lines, n, eexist, "kvm_preload: exiting with everything open", NULL);
    int release = trace_has(lines, n, marker, "release([kvm-vfio]", "/* exit */");
    int clear = trace_has(lines, n, release, "vfio_file_set_kvm(/dev/vfio/26, NULL)", NULL);
    int census = trace_has(lines, n, clear, "exit_files() = ", "=> {files=0, fds=0}");
    CHECK(create >= 0);
    CHECK(addl > create);
    CHECK(setk > addl);
    CHECK(done > setk);
    CHECK(eexist > done);
    CHECK(release > marker);
    CHECK(clear > release);
    CHECK(census > clear);
    if (census < 0 || create < 0)
        for (int i = 0; i < n; i++)
            fputs(lines[i], stderr);
    for (int i = 0; i < n; i++)
        free(lines[i]);
}

int main(int argc, char **argv)
{
    cabi_timeout(120);
    kvmfd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int probe = kvmfd >= 0 ? create_vm() : -errno;
    if (probe < 0) {
        printf("SKIPPED: /dev/kvm cannot create a VM here (%s)\n", strerror(-probe));
        return 77;
    }
    close(probe);
    if (!dlsym(RTLD_DEFAULT, "swiftvfio_preload_state")) {
        fprintf(stderr, "FAILED: run me with LD_PRELOAD=libswiftvfio-preload.so\n");
        return 2;
    }
    *(void **)&get_safe = dlsym(RTLD_DEFAULT, "kvm_get_kvm_safe");
    *(void **)&put_kvm = dlsym(RTLD_DEFAULT, "kvm_put_kvm");
    CHECK(get_safe != NULL && put_kvm != NULL);
    bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* kept: never reused */
    if (argc > 1 && strcmp(argv[1], "exit") == 0)
        return child_exit();

    open_group26();
    test_create_device();
    test_attr_errors();
    test_references();
    test_edges();
    close(g26);
    close(container);
    test_exit(argv[0]);
    CHECK_NOTHING_OPEN();
    CHECK_EQ(cabi_census().warnings, 0);
    CHECK_EQ(vm_files(), 0);
    close(kvmfd);
    return cabi_summary();
}
