// SPDX-License-Identifier: Apache-2.0
/* The model's system calls and the interposer's entry points: swiftvfio_topology_load,
 * _last_error, _open, _ioctl, _close, _read/_pread/_write/_pwrite, _mmap, _dup, _adopt_dup,
 * _forget_fd, _is_model_fd, _exit_files, plus _census and _state. Success and error paths. */
#include "cabi_test.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void test_last_error_starts_empty(void)
{
    /* Nothing failed on this thread yet. */
    CHECK_PTR_EQ(swiftvfio_last_error(), NULL);
}

static void test_open_close(void)
{
    int c, g, flags;

    CHECK_SYSERR(swiftvfio_open("/dev/vfio/99", O_RDWR), ENOENT);
    CHECK_LAST_ERROR("swiftvfio_open");
    CHECK_LAST_ERROR("/dev/vfio/99");
    CHECK_SYSERR(swiftvfio_open("/etc/passwd", O_RDWR), ENOENT);
    CHECK_SYSERR(swiftvfio_open("/dev/vfio/27x", O_RDWR), ENOENT);
    EXPECT_WARNS(0, CHECK_SYSERR(swiftvfio_open(NULL, O_RDWR), EFAULT));
    EXPECT_WARNS(0, CHECK_SYSERR(swiftvfio_open((const char *)8, O_RDWR), EFAULT));

    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(c >= 0 && g >= 0 && c != g);
    /* Model fds are real descriptors: the numbers are the process's, close-on-exec is true. */
    flags = fcntl(c, F_GETFD);
    CHECK(flags >= 0 && (flags & FD_CLOEXEC));
    flags = fcntl(g, F_GETFD);
    CHECK(flags >= 0 && !(flags & FD_CLOEXEC));
    CHECK_EQ(swiftvfio_is_model_fd(c), 1);
    CHECK_EQ(swiftvfio_is_model_fd(0), 0);

    /* One open of a group at a time. */
    CHECK_SYSERR(swiftvfio_open("/dev/vfio/26", O_RDWR), EBUSY);

    CHECK_EQ(swiftvfio_close(g), 0);
    CHECK_SYSERR(swiftvfio_close(g), EBADF);
    CHECK_EQ(swiftvfio_close(c), 0);
    /* Not a model fd: EBADF, and the process's own descriptor is untouched. */
    CHECK_SYSERR(swiftvfio_close(0), EBADF);
    CHECK(fcntl(0, F_GETFD) >= 0 || errno != EBADF);
    CHECK_SYSERR(swiftvfio_close(-1), EBADF);
    CHECK_NOTHING_OPEN();
}

static void test_ioctl(void)
{
    int c, g, d, bad = -1;
    struct vfio_group_status st = { .argsz = sizeof(st) };

    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_GET_API_VERSION, 0), VFIO_API_VERSION);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU), 1);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, (unsigned long)&st), 0);
    CHECK_EQ(st.flags, VFIO_GROUP_FLAGS_VIABLE);

    /* Errors: not a model fd, an unknown request, bad user pointers (EFAULT, never a crash),
     * the kernel's own codes. */
    CHECK_SYSERR(swiftvfio_ioctl(0, VFIO_GET_API_VERSION, 0), EBADF);
    CHECK_SYSERR(swiftvfio_ioctl(-5, VFIO_GET_API_VERSION, 0), EBADF);
    CHECK_SYSERR(swiftvfio_ioctl(g, 0x1234, 0), ENOTTY);
    CHECK_SYSERR(swiftvfio_ioctl(c, 0x1234, 0), EINVAL); /* container.c: EINVAL without an IOMMU driver */
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, 0), EFAULT);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, 8), EFAULT);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, (unsigned long)-4096), EFAULT);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, 16), EFAULT);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&bad), EBADF);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, 24), EFAULT);
    st.argsz = 4;
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, (unsigned long)&st), EINVAL);
    /* No container yet: no device. */
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0"), EINVAL);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), 0);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
    CHECK_SYSERR(swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:99:00.0"), ENODEV);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0");
    CHECK(d >= 0);
    CHECK_SYSERR(swiftvfio_ioctl(d, VFIO_DEVICE_GET_INFO, 8), EFAULT);
    CHECK_EQ(swiftvfio_ioctl(d, VFIO_DEVICE_RESET, 0), 0);

    swiftvfio_close(d);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_NOTHING_OPEN();
}

static void test_dup_adopt_forget(void)
{
    int g, d1, d2, d3, real, other;
    struct file *f;
    struct vfio_group_status st = { .argsz = sizeof(st) };

    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    d1 = swiftvfio_dup(g, 0, 0);
    d2 = swiftvfio_dup(g, 200, O_CLOEXEC);
    CHECK(d1 >= 0 && d1 != g);
    CHECK(d2 >= 200);
    CHECK(fcntl(d2, F_GETFD) & FD_CLOEXEC);
    f = swiftvfio_fget(d2);
    CHECK_PTR_EQ(swiftvfio_fget(g), f);
    swiftvfio_fput(f);
    swiftvfio_fput(f);
    CHECK_SYSERR(swiftvfio_dup(0, 0, 0), EBADF);
    CHECK_SYSERR(swiftvfio_dup(g, -1, 0), EINVAL);
    CHECK_SYSERR(swiftvfio_dup(g, 0, O_NONBLOCK), EINVAL);

    /* dup2() behind the model's back, then adopted: the new number is the same file. */
    real = dup(g);
    CHECK(real >= 0);
    CHECK_EQ(swiftvfio_is_model_fd(real), 0);
    CHECK_EQ(swiftvfio_adopt_dup(g, real), 0);
    CHECK_EQ(swiftvfio_is_model_fd(real), 1);
    CHECK_EQ(swiftvfio_ioctl(real, VFIO_GROUP_GET_STATUS, (unsigned long)&st), 0);
    CHECK_SYSERR(swiftvfio_adopt_dup(0, real), EBADF);
    CHECK_SYSERR(swiftvfio_adopt_dup(g, -1), EBADF);

    /* A model fd closed behind the model's back (fclose of an fdopen()ed stream) and its number
     * reused by the process: is_model_fd notices the different file and forgets it. */
    close(d1);
    other = open("/dev/null", O_RDONLY);
    CHECK_EQ(other, d1);
    CHECK_EQ(swiftvfio_is_model_fd(other), 0);
    CHECK_SYSERR(swiftvfio_ioctl(other, VFIO_GROUP_GET_STATUS, (unsigned long)&st), EBADF);
    close(other);

    /* forget_fd: 1 for a model fd (descriptor left alone), 0 otherwise. */
    d3 = swiftvfio_dup(g, 0, 0);
    CHECK_EQ(swiftvfio_forget_fd(d3), 1);
    CHECK_EQ(swiftvfio_forget_fd(d3), 0);
    CHECK(fcntl(d3, F_GETFD) >= 0);
    close(d3);
    CHECK_EQ(swiftvfio_forget_fd(0), 0);

    swiftvfio_close(real);
    swiftvfio_close(d2);
    swiftvfio_close(g);
    CHECK_NOTHING_OPEN();
}

static void test_read_write_mmap_errors(void)
{
    int c, g, d;
    char buf[16];
    long page = sysconf(_SC_PAGESIZE);

    d = cabi_open_device("/dev/vfio/26", "0000:06:0d.0", &c, &g);
    CHECK(d >= 0);
    CHECK_SYSERR(swiftvfio_read(0, buf, sizeof(buf)), EBADF);
    CHECK_SYSERR(swiftvfio_write(1000, buf, sizeof(buf)), EBADF);
    CHECK_SYSERR(swiftvfio_pread(-1, buf, sizeof(buf), 0), EBADF);
    CHECK_SYSERR(swiftvfio_pwrite(-1, buf, sizeof(buf), 0), EBADF);
    /* Group and container files have no read/write; the device file routes to its driver. */
    CHECK_SYSERR(swiftvfio_read(g, buf, sizeof(buf)), EINVAL);
    CHECK_SYSERR(swiftvfio_pwrite(c, buf, sizeof(buf), 0), EINVAL);
    /* (A driver without read/write/mmap ops: EINVAL; see test_driver.c.) */
    CHECK_SYSERR(swiftvfio_pread(d, buf, sizeof(buf), -1), EINVAL);
    CHECK_SYSERR(swiftvfio_pwrite(d, buf, (size_t)-1, 0), EINVAL);

    CHECK_PTR_EQ(swiftvfio_mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, 0, 0), MAP_FAILED);
    CHECK_EQ(errno, EBADF);
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, g, 0), MAP_FAILED);
    CHECK_EQ(errno, ENODEV);
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, d, 1), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, 0, PROT_READ, MAP_SHARED, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    /* mm checks before the driver: MAP_FIXED at an address not page aligned, at NULL (below
     * mmap_min_addr), no mapping type. (Placement itself: Tests/Preload/test_mmap.c.) */
    CHECK_PTR_EQ(swiftvfio_mmap((void *)(uintptr_t)(page + 1), (size_t)page, PROT_READ, MAP_SHARED | MAP_FIXED, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED | MAP_FIXED, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EPERM);
    /* An address in the kernel half, fixed: refused with the host's own errno (the kernel's ENOMEM;
     * a sanitizer's mmap says EINVAL), never a crash here. */
    {
        void *high = (void *)~(uintptr_t)0xfff;
        int host;
        CHECK_PTR_EQ(mmap(high, (size_t)page, PROT_READ, MAP_SHARED | MAP_FIXED | MAP_ANONYMOUS, -1, 0), MAP_FAILED);
        host = errno;
        CHECK_PTR_EQ(swiftvfio_mmap(high, (size_t)page, PROT_READ, MAP_SHARED | MAP_FIXED, d, 0), MAP_FAILED);
        CHECK_EQ(errno, host);
    }
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, (size_t)page, PROT_READ, 0, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    CHECK_PTR_EQ(swiftvfio_mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE, d, 0), MAP_FAILED);
    CHECK_EQ(errno, EINVAL); /* vfio-pci: VM_SHARED required */

    swiftvfio_close(d);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_NOTHING_OPEN();
}

static const char *topology_small = "{ \"iommu_groups\": [ { \"id\": 60, \"devices\": [ "
                                    "{ \"name\": \"0000:60:00.0\", \"driver\": \"vfio-pci\" } ] } ] }\n";

static void test_topology_load(void)
{
    int g, c;
    const char *path;
    struct file *f;
    char dir[] = "/tmp/swiftvfio-cabi-dirXXXXXX";

    /* Replacing the built-in model by itself works when nothing is open. */
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);

    /* EBUSY while model files are open, and while C holds a file reference. */
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK_EQ(swiftvfio_topology_load(NULL), -EBUSY);
    CHECK_LAST_ERROR("swiftvfio_topology_load");
    f = swiftvfio_fget(g);
    swiftvfio_close(g);
    CHECK_EQ(swiftvfio_topology_load(NULL), -EBUSY);
    swiftvfio_fput(f);

    /* A file that is not there: -ENOENT; the model is exactly as it was. */
    CHECK_EQ(swiftvfio_topology_load("/nonexistent/topology.json"), -ENOENT);
    CHECK_LAST_ERROR("/nonexistent/topology.json");
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(g >= 0);
    swiftvfio_close(g);

    /* Not a topology: -EINVAL, with the file, the JSON path and what was expected. */
    path = cabi_temp_file("{ \"iommu_groups\": [ { \"id\": \"seven\" } ] }");
    CHECK_EQ(swiftvfio_topology_load(path), -EINVAL);
    CHECK_LAST_ERROR(path);
    CHECK_LAST_ERROR("$.iommu_groups[0].id");
    unlink(path);
    path = cabi_temp_file("{ not json");
    CHECK_EQ(swiftvfio_topology_load(path), -EINVAL);
    unlink(path);
    path = cabi_temp_file("{ \"iommu_groups\": [ { \"id\": 1, \"devices\": [] } ], \"bogus\": 1 }");
    CHECK_EQ(swiftvfio_topology_load(path), -EINVAL);
    CHECK_LAST_ERROR("bogus");
    unlink(path);
    /* An empty directory is not a sysfs-shaped topology either. */
    CHECK(mkdtemp(dir) != NULL);
    CHECK(swiftvfio_topology_load(dir) < 0);
    rmdir(dir);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(g >= 0);
    swiftvfio_close(g);
    CHECK_EQ(swiftvfio_topology_load((const char *)8), -EFAULT);

    /* A valid topology replaces the model: group 60 exists, 26 does not. */
    CHECK_EQ(cabi_load_topology(topology_small), 0);
    CHECK_SYSERR(swiftvfio_open("/dev/vfio/26", O_RDWR), ENOENT);
    g = swiftvfio_open("/dev/vfio/60", O_RDWR);
    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    CHECK(g >= 0 && c >= 0);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(g >= 0);
    swiftvfio_close(g);
    CHECK_NOTHING_OPEN();
}

/* The first use of the library in a process loads SWIFTVFIO_TOPOLOGY: checked in children. */
static int child_env(void)
{
    int g60 = swiftvfio_open("/dev/vfio/60", O_RDWR);
    int g26 = swiftvfio_open("/dev/vfio/26", O_RDWR);
    return (g60 >= 0 && g26 < 0) ? 0 : 1;
}

static int child_bad_env(void)
{
    struct swiftvfio_census c;
    int ok = swiftvfio_census(&c) == 0, g26;
    const char *m = swiftvfio_last_error();
    /* The reason in the first caller's last error (its call succeeded), and an empty model. */
    ok = ok && m && strstr(m, "SWIFTVFIO_TOPOLOGY") && strstr(m, "/nonexistent/topology.json") && c.groups == 0;
    g26 = swiftvfio_open("/dev/vfio/26", O_RDWR);
    return (ok && g26 < 0 && errno == ENOENT) ? 0 : 1;
}

/* The interposer's explicit first load: the environment's topology, or an error and no model. */
static int child_env_explicit(void)
{
    int ok = swiftvfio_load_environment_topology() == 0;
    int g60 = swiftvfio_open("/dev/vfio/60", O_RDWR);
    ok = ok && g60 >= 0 && swiftvfio_load_environment_topology() == 0; /* a model exists: nothing to do */
    return ok ? 0 : 1;
}

static int child_bad_env_explicit(void)
{
    const char *m;
    int r = swiftvfio_load_environment_topology();
    m = swiftvfio_last_error();
    return (r == -ENOENT && m && strstr(m, "SWIFTVFIO_TOPOLOGY") && strstr(m, "/nonexistent/topology.json")) ? 0 : 1;
}

static void run_child(const char *self, const char *mode, const char *topology)
{
    pid_t pid = fork();
    int status;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        setenv("SWIFTVFIO_TOPOLOGY", topology, 1);
        execl(self, self, mode, (char *)NULL);
        _exit(127);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_environment(const char *self)
{
    const char *path = cabi_temp_file(topology_small);
    char saved[64];
    pid_t pid;
    int status;

    snprintf(saved, sizeof(saved), "%s", path);
    pid = fork();
    if (pid == 0) {
        setenv("SWIFTVFIO_TOPOLOGY", saved, 1);
        execl(self, self, "child-env", (char *)NULL);
        _exit(127);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    run_child(self, "child-env-explicit", saved);
    run_child(self, "child-bad-env-explicit", "/nonexistent/topology.json");
    unlink(saved);

    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2); /* the library says why on stderr: expected here */
        setenv("SWIFTVFIO_TOPOLOGY", "/nonexistent/topology.json", 1);
        execl(self, self, "child-bad-env", (char *)NULL);
        _exit(127);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* What the interposer asks so stat(2) of a node or fd tells the truth (numbers in the header). */
static void test_stat_answers(void)
{
    uint32_t mode = 0, major = 0, minor = 0;
    int g, c;

    CHECK_EQ(swiftvfio_path_stat("/dev/vfio/26", &mode, &major, &minor), 0);
    CHECK_EQ(mode & S_IFMT, S_IFCHR);
    CHECK_EQ(swiftvfio_path_stat("/dev/vfio", &mode, &major, &minor), 0);
    CHECK_EQ(mode & S_IFMT, S_IFDIR);
    CHECK_EQ(swiftvfio_path_stat("/dev/vfio/vfio", &mode, &major, &minor), 0);
    CHECK_EQ(mode & S_IFMT, S_IFCHR);
    CHECK_EQ(swiftvfio_path_stat("/dev/vfio/99", &mode, &major, &minor), -ENOENT);
    CHECK_EQ(swiftvfio_path_stat(NULL, &mode, &major, &minor), -EFAULT);
    CHECK_EQ(swiftvfio_path_stat("/dev/vfio/26", NULL, &major, &minor), -EFAULT);

    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    CHECK_EQ(swiftvfio_fd_stat(g, &mode, &major, &minor), 0);
    CHECK_EQ(mode & S_IFMT, S_IFCHR);
    CHECK_EQ(swiftvfio_fd_stat(c, &mode, &major, &minor), 0);
    CHECK_EQ(mode & S_IFMT, S_IFCHR);
    CHECK_EQ(swiftvfio_fd_stat(0, &mode, &major, &minor), -EBADF);
    CHECK_EQ(swiftvfio_fd_stat(g, (uint32_t *)8, &major, &minor), -EFAULT);
    swiftvfio_close(c);
    swiftvfio_close(g);
    CHECK_NOTHING_OPEN();
}

/* The module files the interposer answers (DPDK's module check and IOVA choice): which exist, and
 * the no-IOMMU parameter's text in the kernel's format, from the model's configuration. */
static void test_module_files(void)
{
    uint32_t mode = 0, major = 1, minor = 1;
    char buf[16];

    static const char *const dirs[] = { "/sys/module/vfio", "/sys/module/vfio_pci", "/sys/module/vfio_iommu_type1",
                                        "/sys/module/vfio/parameters" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        mode = 0;
        CHECK_EQ(swiftvfio_path_stat(dirs[i], &mode, &major, &minor), 0);
        CHECK_EQ(mode, S_IFDIR | 0755);
        CHECK_EQ(major, 0);
        CHECK_EQ(minor, 0);
        CHECK_EQ(swiftvfio_sysfs_read(dirs[i], buf, sizeof buf), -EISDIR);
    }
    const char *param = "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode";
    CHECK_EQ(swiftvfio_path_stat(param, &mode, &major, &minor), 0);
    CHECK_EQ(mode, S_IFREG | 0644);
    /* The built-in model: no-IOMMU mode off. */
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(swiftvfio_sysfs_read(param, buf, sizeof buf), 2);
    CHECK(memcmp(buf, "N\nx", 3) == 0);
    /* A short buffer gets the start, as read(2) of that many bytes. */
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(swiftvfio_sysfs_read(param, buf, 1), 1);
    CHECK(memcmp(buf, "Nx", 2) == 0);
    CHECK_EQ(swiftvfio_sysfs_read(param, NULL, 0), 0);
    /* Files the model does not have. */
    CHECK_EQ(swiftvfio_path_stat("/sys/module/vfio_nope", &mode, &major, &minor), -ENOENT);
    CHECK_EQ(swiftvfio_path_stat("/sys/module/vfio/refcnt", &mode, &major, &minor), -ENOENT);
    CHECK_EQ(swiftvfio_path_stat("/sys/module/kvm", &mode, &major, &minor), -ENOENT);
    CHECK_EQ(swiftvfio_sysfs_read("/sys/module/vfio/refcnt", buf, sizeof buf), -ENOENT);
    CHECK_EQ(swiftvfio_sysfs_read("/dev/vfio/26", buf, sizeof buf), -ENOENT);
    /* Misuse. */
    CHECK_EQ(swiftvfio_sysfs_read(NULL, buf, sizeof buf), -EFAULT);
    CHECK_EQ(swiftvfio_sysfs_read((const char *)8, buf, sizeof buf), -EFAULT);
    CHECK_EQ(swiftvfio_sysfs_read(param, NULL, sizeof buf), -EFAULT);
    CHECK_EQ(swiftvfio_sysfs_read(param, (char *)8, sizeof buf), -EFAULT);
    CHECK_LAST_ERROR("swiftvfio_sysfs_read");

    /* A model in no-IOMMU mode says Y. */
    const char *path = cabi_temp_file("{ \"config\": { \"noiommu\": true } }");
    CHECK_EQ(swiftvfio_topology_load(path), 0);
    unlink(path);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(swiftvfio_sysfs_read(param, buf, sizeof buf), 2);
    CHECK(memcmp(buf, "Y\n", 2) == 0);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
    CHECK_NOTHING_OPEN();
}

static void test_census_state(void)
{
    struct swiftvfio_census c;
    char buf[8192], small[8];
    int n, g;

    CHECK_EQ(swiftvfio_census(&c), 0);
    CHECK_EQ(c.groups, 4);
    CHECK_EQ(c.registered_devices, 4);
    CHECK_EQ(swiftvfio_census(NULL), -EFAULT);
    CHECK_EQ(swiftvfio_census((struct swiftvfio_census *)8), -EFAULT);

    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    n = swiftvfio_state(NULL, 0);
    CHECK(n > 0);
    CHECK_EQ(swiftvfio_state(buf, sizeof(buf)), n);
    CHECK_EQ((int)strlen(buf), n);
    CHECK(strstr(buf, "/dev/vfio/26") != NULL);
    CHECK(strstr(buf, "0000:06:0d.0") != NULL);
    CHECK(strstr(buf, "open") != NULL);
    /* Truncated, NUL-terminated, full length returned. */
    CHECK_EQ(swiftvfio_state(small, sizeof(small)), n);
    CHECK_EQ((int)strlen(small), (int)sizeof(small) - 1);
    CHECK_EQ(swiftvfio_state((char *)8, 100), -EFAULT);
    swiftvfio_close(g);
}

/* swiftvfio_exit_files(): closes every model fd as a process's exit would, so every release runs;
 * a number closed behind the model's back and reused is forgotten, not closed. */
static void test_exit_files(void)
{
    int g, c, d, stale, other, again;

    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    CHECK(g >= 0 && c >= 0);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), 0);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0");
    CHECK(d >= 0);
    stale = swiftvfio_dup(g, 0, 0);
    CHECK(stale >= 0);
    close(stale);
    other = open("/dev/null", O_RDONLY);
    CHECK_EQ(other, stale);

    CHECK_EQ(swiftvfio_exit_files(), 3);
    CHECK_NOTHING_OPEN();
    CHECK(fcntl(other, F_GETFD) >= 0); /* the reused number is the process's: left open */
    CHECK(fcntl(d, F_GETFD) == -1 && errno == EBADF);
    CHECK_SYSERR(swiftvfio_close(g), EBADF);
    CHECK_SYSERR(swiftvfio_close(d), EBADF);
    close(other);
    /* The group's release ran: it opens again. */
    again = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK(again >= 0);
    swiftvfio_close(again);
    CHECK_EQ(swiftvfio_exit_files(), 0);
    CHECK_NOTHING_OPEN();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child-env") == 0)
        return child_env();
    if (argc > 1 && strcmp(argv[1], "child-bad-env") == 0)
        return child_bad_env();
    if (argc > 1 && strcmp(argv[1], "child-env-explicit") == 0)
        return child_env_explicit();
    if (argc > 1 && strcmp(argv[1], "child-bad-env-explicit") == 0)
        return child_bad_env_explicit();

    cabi_timeout(60);
    test_last_error_starts_empty();
    test_open_close();
    test_ioctl();
    test_dup_adopt_forget();
    test_read_write_mmap_errors();
    test_topology_load();
    test_environment(argv[0]);
    test_stat_answers();
    test_module_files();
    test_census_state();
    test_exit_files();
    /* None of the above misused a handle. */
    CHECK_EQ(cabi_warnings(), 0);
    CHECK_NOTHING_OPEN();
    return cabi_summary();
}
