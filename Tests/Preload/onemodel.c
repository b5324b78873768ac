// SPDX-License-Identifier: Apache-2.0
/* One model per process: a program that links libswiftvfio.so and runs under the preload. Files
 * opened through libc (the interposer) and through the library's own entry points are files of
 * the same model: the kernel's file kAPI works on fds from open(), single-open is shared, and the
 * census sees everything. Built with -lswiftvfio; built-in default topology. */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "swiftvfio.h"

static int libswiftvfio_mappings(void) {
    /* Distinct files named libswiftvfio.so mapped into the process (the preload is another name). */
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024], seen[8][512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path) continue;
        path[strcspn(path, "\n")] = 0;
        const char *base = strrchr(path, '/') + 1;
        if (strcmp(base, "libswiftvfio.so") != 0) continue;
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= strcmp(seen[i], path) == 0;
        if (!dup && n < 8) snprintf(seen[n++], sizeof seen[0], "%s", path);
    }
    if (f) fclose(f);
    return n;
}

static struct swiftvfio_census census(void) {
    struct swiftvfio_census c;
    memset(&c, 0xff, sizeof c);
    EQ(swiftvfio_census(&c), 0);
    return c;
}

int main(void) {
    tp_require_preload();
    int (*state)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "swiftvfio_preload_state");

    /* An fd from open() is a model fd of the library's model. */
    int g = OK(open("/dev/vfio/26", O_RDWR));
    EQ(state(), 1);
    EQ(libswiftvfio_mappings(), 1);
    EQ(swiftvfio_is_model_fd(g), 1);
    struct file *f = swiftvfio_fget(g);
    CHECK(f != NULL, "swiftvfio_fget(%d): %s", g, swiftvfio_last_error());
    CHECK(vfio_file_is_group(f), "not a group file");
    CHECK(vfio_file_enforced_coherent(f), "group 26 not coherent");
    /* Single-open is the same model's: the library's own open sees the group busy. */
    FAILS(swiftvfio_open("/dev/vfio/26", O_RDWR), EBUSY);
    struct vfio_group_status st = { .argsz = sizeof st };
    EQ(swiftvfio_ioctl(g, VFIO_GROUP_GET_STATUS, (unsigned long)&st), 0);
    EQ(st.flags, VFIO_GROUP_FLAGS_VIABLE);

    /* A counted reference keeps the group file open after the last close (as the kernel's fget). */
    OK(close(g));
    FAILS(open("/dev/vfio/26", O_RDWR), EBUSY);
    swiftvfio_fput(f);
    g = OK(open("/dev/vfio/26", O_RDWR));

    /* Device fds from the preload, the device behind them through the file kAPI. */
    int c = OK(open("/dev/vfio/vfio", O_RDWR));
    EQ(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EQ(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    int d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));
    struct file *df = swiftvfio_fget(d), *gf = swiftvfio_fget(g);
    struct vfio_device *dev = df ? swiftvfio_file_device(df) : NULL;
    CHECK(dev != NULL, "no device behind fd %d", d);
    CHECK(dev && gf && vfio_file_has_dev(gf, dev), "group file does not have the device");
    CHECK(dev && strcmp(swiftvfio_device_name(dev), "0000:06:0d.0") == 0, "device name");
    EQ(dev ? swiftvfio_device_open_count(dev) : -1, 1);
    if (df) swiftvfio_fput(df);
    if (gf) swiftvfio_fput(gf);

    /* The stat answers come from the library's swiftvfio_path_stat/swiftvfio_fd_stat. */
    struct stat sp, sf;
    uint32_t mode = 0, maj = 0, min = 0;
    OK(stat("/dev/vfio/26", &sp));
    EQ(swiftvfio_path_stat("/dev/vfio/26", &mode, &maj, &min), 0);
    EQ(mode, sp.st_mode);
    EQ(makedev(maj, min), sp.st_rdev);
    EQ(swiftvfio_path_stat("/dev/vfio/99", &mode, &maj, &min), -ENOENT);
    OK(fstat(g, &sf));
    EQ(swiftvfio_fd_stat(g, &mode, &maj, &min), 0);
    EQ(makedev(maj, min), sf.st_rdev);
    EQ(swiftvfio_fd_stat(d, &mode, &maj, &min), 0);
    EQ(mode, 0600);
    EQ(swiftvfio_fd_stat(0, &mode, &maj, &min), -EBADF);

    /* The library's own fds live in the same model; fds closed through it behind the
     * interposer's back are recognised as gone. */
    int g28 = OK(swiftvfio_open("/dev/vfio/28", O_RDWR));
    FAILS(open("/dev/vfio/28", O_RDWR), EBUSY);
    EQ(swiftvfio_close(g28), 0);
    int dd = OK(dup(d));
    EQ(swiftvfio_close(dd), 0);
    FAILS(close(dd), EBADF);
    int z = OK(open("/dev/null", O_RDONLY)); /* likely the same number */
    char b;
    EQ(read(z, &b, 1), 0);
    OK(close(z));

    /* The interposer's start-up call: the process already has its model, so nothing changes. */
    EQ(swiftvfio_load_environment_topology(), 0);
    EQ(swiftvfio_is_model_fd(g), 1);

    struct swiftvfio_census cs = census();
    EQ(cs.fds, 3);  /* g, c, d */
    OK(close(d));
    OK(close(g));
    OK(close(c));
    cs = census();
    EQ(cs.fds, 0);
    EQ(cs.files, 0);
    EQ(cs.containers, 0);
    EQ(cs.warnings, 0);
    return tp_done();
}
