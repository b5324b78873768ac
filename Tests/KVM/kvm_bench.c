// SPDX-License-Identifier: Apache-2.0
/* The kvm-vfio hooks' cost on ioctls that are not theirs: KVM_CHECK_EXTENSION on /dev/kvm and
 * FIONREAD on a pipe, best of several rounds, in ns per call including the system call.
 * Scripts/test-kvm.sh runs it without the interposer, with it, and with it while a kvm-vfio
 * device is alive (`kvm_bench device`: every other ioctl then also looks the fd up in the
 * device table), rounds alternating, and prints the three. Not a gate: a measurement. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 30
#define CALLS 20000

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), p[2], n;
    if (kvm < 0 || pipe(p) != 0)
        return 77;
    if (argc > 1 && strcmp(argv[1], "device") == 0) {
        int vm = ioctl(kvm, KVM_CREATE_VM, 0);
        struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
        if (vm < 0 || ioctl(vm, KVM_CREATE_DEVICE, &cd) != 0)
            return 1;
    }
    double t_ext = 1e30, t_pipe = 1e30;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (int i = 0; i < CALLS; i++)
            (void)ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
        double t1 = now();
        for (int i = 0; i < CALLS; i++)
            (void)ioctl(p[0], FIONREAD, &n);
        double t2 = now();
        if ((t1 - t0) / CALLS < t_ext)
            t_ext = (t1 - t0) / CALLS;
        if ((t2 - t1) / CALLS < t_pipe)
            t_pipe = (t2 - t1) / CALLS;
    }
    printf("KVM_CHECK_EXTENSION %.1f\nFIONREAD %.1f\n", t_ext, t_pipe);
    return 0;
}
