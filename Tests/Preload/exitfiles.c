// SPDX-License-Identifier: Apache-2.0
/* A client that leaves its VFIO files to the process's exit, as QEMU's `quit` does: the
 * interposer's exit hook closes them through the model, so every release runs (and is traced:
 * Scripts/test-preload.sh reads SWIFTVFIO_TRACE). Also: a forked child's exit() releases nothing
 * (its files are its parent's too), and a model fd closed behind the model's back whose number
 * the process reused is left alone. An atexit handler registered before the model is used runs
 * after the hook and checks what it did (in the child: that it did nothing).
 *
 *   exitfiles        leave everything open, return from main
 */
#include "tp.h"

#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int group, container, device, reused;
static pid_t parent;

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

/* Registered first, so it runs after the interposer's hook (atexit handlers run in reverse). */
static void after_exit_hook(void) {
    if (getpid() != parent) {
        /* The forked child: the hook left its inherited model fds alone. */
        if (!is_open(group) || !is_open(container) || !is_open(device)) {
            printf("child: the exit hook closed model fds: FAILED\n");
            fflush(stdout);
            _exit(1);
        }
        return;
    }
    int ok = !is_open(group) && !is_open(container) && !is_open(device) && is_open(reused);
    printf("after the exit hook: model fds %s, reused number %s: %s\n",
           !is_open(group) && !is_open(container) && !is_open(device) ? "closed" : "OPEN",
           is_open(reused) ? "open" : "CLOSED", ok ? "ok" : "FAILED");
    fflush(stdout);
    if (!ok) _exit(1);
}

int main(void) {
    tp_require_preload();
    parent = getpid();
    atexit(after_exit_hook);
    struct vfio_group_status status = { .argsz = sizeof status };
    group = OK(open("/dev/vfio/26", O_RDWR));
    container = OK(open("/dev/vfio/vfio", O_RDWR));
    OK(ioctl(group, VFIO_GROUP_GET_STATUS, &status));
    EQ(status.flags & VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_FLAGS_VIABLE);
    OK(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
    OK(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
    device = OK(ioctl(group, VFIO_GROUP_GET_DEVICE_FD, "0000:06:0d.0"));

    /* A dup closed with a raw system call instruction (behind the interposer's back), its number
     * reused by open(): the model retires the stale entry, the exit hook leaves the number alone. */
    int dup_fd = OK(dup(group));
    EQ(tp_raw_close(dup_fd), 0);
    reused = OK(open("/dev/null", O_RDONLY));
    EQ(reused, dup_fd);

    /* A child that exits with exit(): the hook does nothing there. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) exit(0);
    int wst = 0;
    EQ(waitpid(pid, &wst, 0), pid);
    EQ(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, 1);

    /* Everything stays open: the exit hook closes group, container and device. */
    return tp_done();
}
