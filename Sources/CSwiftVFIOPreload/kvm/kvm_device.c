// SPDX-License-Identifier: Apache-2.0
/* kvm_device.c: the kvm-vfio device of real KVM VMs, for processes under the interposer.
 *
 * A VMM (QEMU) links its VM to the VFIO groups it uses with
 *     ioctl(vmfd, KVM_CREATE_DEVICE, {.type = KVM_DEV_TYPE_VFIO})  -> devfd
 *     ioctl(devfd, KVM_SET_DEVICE_ATTR, {KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, &groupfd})
 * The kernel's kvm-vfio device cannot take a model group fd (a memfd placeholder: EINVAL), so the
 * interposer serves KVM_CREATE_DEVICE of that type on a real VM fd itself: the device is
 * kvm_vfio.c (the same C the examples build), its VM the record kvm_vm.c keeps for the real VM,
 * and its fd a placeholder memfd named "kvm-vfio". Everything else on the VM fd, and every other
 * device type, goes to the kernel unchanged.
 *
 * Order of checks, as kvm_vm_ioctl() / kvm_ioctl_create_device() / kvm_device_ioctl() have them:
 *  - KVM_CREATE_DEVICE: an unreadable argument, another type, and KVM_CREATE_DEVICE_TEST (which
 *    answers 0 without creating anything, whether or not a device exists) are the kernel's own
 *    answers: the call is passed through. For the real creation, the kernel is first asked the
 *    TEST form on our own copy of the argument: a descriptor that is not a VM of this process
 *    (/dev/kvm: EINVAL, a vCPU: EINVAL, another file: ENOTTY, a VM of another process: EIO) fails
 *    there, and then the unchanged call is passed through for the kernel to answer the same. Then
 *    the one-per-VM rule (EBUSY, by VM file, not fd number), the fd (the lowest free number,
 *    O_RDWR|O_CLOEXEC), and the copy of the fd back (EFAULT, the device staying, as in the kernel).
 *  - On the device fd: another process (a forked child) gets EIO (kvm->mm != current->mm);
 *    KVM_SET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR copy struct kvm_device_attr (EFAULT) and call the
 *    device; KVM_GET_DEVICE_ATTR is EPERM (kvm-vfio has no get_attr); anything else ENOTTY.
 *  - The device's release runs at its fd's close (close(), or the descriptor found closed behind
 *    the interposer's back) and at exit (kvm_hook_exit()), as the kernel's last fput() would.
 * Limits: a dup() of the device fd is not routed (it answers as the memfd it is); close_range(),
 * closefrom() and dup2() over the device fd release it only at exit.
 */
#define _GNU_SOURCE
#include "kvm_device.h"
#include "kvm_model.h"
#include "kvm_vfio.h"
#include "kvm_vm.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

struct kvm_model_calls kvm_model;
atomic_int kvm_devices_live;

/* ---- the model's entry points ----------------------------------------------------------------- */

static pthread_once_t model_once = PTHREAD_ONCE_INIT;
static int model_ok;

static void say(const char *what)
{
    char line[256];
    int n = snprintf(line, sizeof line, "swiftvfio-preload: %s\n", what);
    if (n > 0)
        (void)!syscall(SYS_write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void model_resolve(void)
{
    void *anchor = preload_model_library();
    Dl_info info;
    if (!anchor || !dladdr(anchor, &info) || !info.dli_fname)
        return;
    void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD); /* kept: the library stays loaded */
    if (!h)
        return;
#define SYM(field, name)                                                                           \
    if ((*(void **)&kvm_model.field = dlsym(h, name)) == NULL) {                                   \
        say("libswiftvfio.so lacks " name ": KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) goes to the kernel"); \
        return;                                                                                    \
    }
    SYM(fget, "swiftvfio_fget")
    SYM(fput, "swiftvfio_fput")
    SYM(is_model_fd, "swiftvfio_is_model_fd")
    SYM(file_is_group, "vfio_file_is_group")
    SYM(file_enforced_coherent, "vfio_file_enforced_coherent")
    SYM(file_set_kvm, "vfio_file_set_kvm")
    SYM(file_iommu_group, "vfio_file_iommu_group")
    SYM(iommu_group_put, "iommu_group_put")
    SYM(copy_from_user, "swiftvfio_copy_from_user")
    SYM(copy_to_user, "swiftvfio_copy_to_user")
    SYM(trace_enabled, "swiftvfio_trace_enabled")
    SYM(trace, "swiftvfio_trace")
#undef SYM
    model_ok = 1;
}

static int model_ready(void)
{
    pthread_once(&model_once, model_resolve);
    return model_ok;
}

/* The identity check comes first: a number the program closed behind the interposer's back is
 * forgotten by the model (its reference dropped) and answers as not the model's. (The
 * interposer's own checks hold its fd lock against a model fd being made at that number at the
 * same moment; this one does not: such a race can only make the ADD of a just-reused number
 * fail.) */
struct file *kvm_model_fget(int fd)
{
    if (kvm_model.is_model_fd(fd) <= 0)
        return NULL;
    return kvm_model.fget(fd);
}

/* ---- the trace -------------------------------------------------------------------------------- */

static const char *errname(int e)
{
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    default: return "E?";
    }
}

static int tracing(void)
{
    return model_ok && kvm_model.trace_enabled() > 0;
}

__attribute__((format(printf, 1, 2))) static void trace(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)kvm_model.trace(line);
}

/* " = 0" or " = -1 EBUSY" for a kernel-style result r (0 or -errno). */
static const char *result_text(int r, char *buf, size_t size)
{
    if (r >= 0)
        snprintf(buf, size, " = %d", r);
    else
        snprintf(buf, size, " = -1 %s", errname(-r));
    return buf;
}

/* ---- the devices ------------------------------------------------------------------------------ */

struct kvm_device {
    int fd;                /* the placeholder's number */
    dev_t dev;             /* and its identity: a number reused behind our back is not it */
    ino_t ino;
    pid_t pid;             /* the creating process (the kernel's kvm->mm) */
    int refs;              /* 1 for the open file, 1 per call in flight; under devices_lock */
    struct kvm *kvm;
    struct kvm_vfio *kv;
};

#define MAX_DEVICES 64 /* one per VM: more VMs than this in a process get ENFILE */

static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvm_device *devices[MAX_DEVICES]; /* under devices_lock */
/* The hooks' lock-free look-up: fd + 1 of devices[i] (0 = free), slots [0, slots_hi) in use. */
static atomic_int device_fds[MAX_DEVICES];
static atomic_int slots_hi;

static void unlink_locked(int i)
{
    devices[i] = NULL;
    atomic_store_explicit(&device_fds[i], 0, memory_order_relaxed);
    atomic_fetch_sub_explicit(&kvm_devices_live, 1, memory_order_relaxed);
}

/* The device file's release (the kernel's kvm_device_release): kvm_vfio.c's release, which drops
 * the device's VM reference last. */
static void device_put(struct kvm_device *d, const char *why)
{
    pthread_mutex_lock(&devices_lock);
    int left = --d->refs;
    pthread_mutex_unlock(&devices_lock);
    if (left > 0)
        return;
    if (tracing())
        trace("release([kvm-vfio] fd %d, kvm=%p)%s", d->fd, (void *)d->kvm, why);
    kvm_vfio_release(d->kv);
    free(d);
}

static int same_file(int fd, const struct kvm_device *d)
{
    struct stat st;
    return syscall(SYS_fstat, fd, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino;
}

/* The device whose fd `fd` is, with a reference for the caller, or NULL. */
static struct kvm_device *device_get(int fd)
{
    int hi = atomic_load_explicit(&slots_hi, memory_order_acquire), i;
    for (i = 0; i < hi; i++)
        if (atomic_load_explicit(&device_fds[i], memory_order_relaxed) == fd + 1)
            break;
    if (i == hi)
        return NULL;
    pthread_mutex_lock(&devices_lock);
    struct kvm_device *d = devices[i];
    if (!d || d->fd != fd) {
        pthread_mutex_unlock(&devices_lock);
        return NULL;
    }
    if (!same_file(fd, d)) {
        /* Closed behind our back (a raw close, close_range): that was the file's last close. */
        unlink_locked(i);
        pthread_mutex_unlock(&devices_lock);
        if (d->pid == getpid())
            device_put(d, " /* its fd was closed behind the interposer's back */");
        return NULL;
    }
    d->refs++;
    pthread_mutex_unlock(&devices_lock);
    return d;
}

/* Tracks a new device; -ENFILE when the table is full. */
static int device_insert(struct kvm_device *d)
{
    pthread_mutex_lock(&devices_lock);
    int i;
    for (i = 0; i < MAX_DEVICES && devices[i]; i++) {
    }
    if (i == MAX_DEVICES) {
        pthread_mutex_unlock(&devices_lock);
        return -ENFILE;
    }
    devices[i] = d;
    atomic_fetch_add_explicit(&kvm_devices_live, 1, memory_order_relaxed);
    atomic_store_explicit(&device_fds[i], d->fd + 1, memory_order_relaxed);
    if (i >= atomic_load_explicit(&slots_hi, memory_order_relaxed))
        atomic_store_explicit(&slots_hi, i + 1, memory_order_release);
    pthread_mutex_unlock(&devices_lock);
    return 0;
}

/* ---- KVM_CREATE_DEVICE ------------------------------------------------------------------------ */

/* Reads n bytes of this process at `addr` without faulting: 0 for an unreadable address. */
static int read_self(unsigned long addr, void *buf, size_t n)
{
    struct iovec local = { buf, n }, remote = { (void *)addr, n };
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

static int create_device(int vmfd, unsigned long arg, int *result)
{
    struct kvm_create_device cd;
    if (!read_self(arg, &cd, sizeof cd) || cd.type != KVM_DEV_TYPE_VFIO || (cd.flags & KVM_CREATE_DEVICE_TEST))
        return 0;
    /* Is vmfd a live VM of this process, whose kernel knows the type? The kernel says, without
     * creating anything; where it says no, it says the same to the caller's own call. */
    struct kvm_create_device probe = { .type = KVM_DEV_TYPE_VFIO, .flags = KVM_CREATE_DEVICE_TEST };
    if (syscall(SYS_ioctl, vmfd, KVM_CREATE_DEVICE, &probe) != 0 || !model_ready())
        return 0;

    int err = 0, r;
    struct kvm_device *d = NULL;
    struct kvm *kvm = kvm_vm_get(vmfd, &err); /* a reference for this call */
    if (!kvm) {
        r = -err;
        goto out;
    }
    struct kvm_vfio *kv;
    r = kvm_vfio_create(kvm, &kv); /* -EBUSY: the VM has one */
    if (r)
        goto out_put;
    d = calloc(1, sizeof(*d));
    int fd = d ? (int)syscall(SYS_memfd_create, "kvm-vfio", MFD_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || syscall(SYS_fstat, fd, &st) != 0) {
        r = d ? -errno : -ENOMEM;
        goto out_release;
    }
    d->fd = fd;
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->pid = getpid();
    d->refs = 1;
    d->kvm = kvm;
    d->kv = kv;
    r = device_insert(d);
    if (r) {
        (void)syscall(SYS_close, fd);
        goto out_release;
    }
    /* The kernel installs the fd, then copies it out: a write that faults leaves the device. */
    cd.fd = (uint32_t)fd;
    r = kvm_model.copy_to_user((void *)arg, &cd, sizeof cd) ? -EFAULT : 0;
    goto out_put;

out_release:
    free(d);
    d = NULL;
    kvm_vfio_release(kv);
out_put:
    if (tracing()) {
        char res[48], out[48] = "";
        if (d)
            snprintf(out, sizeof out, " => {fd=%d}", d->fd);
        trace("ioctl(%d, KVM_CREATE_DEVICE, {type=KVM_DEV_TYPE_VFIO, flags=0x%x})%s%s /* kvm-vfio device, kvm=%p */",
              vmfd, cd.flags, result_text(r, res, sizeof res), r == 0 ? out : "", (void *)kvm);
    }
    kvm_put_kvm(kvm);
out:
    if (r < 0) {
        errno = -r;
        *result = -1;
    } else {
        *result = 0; /* the fd is in the argument's .fd */
    }
    return 1;
}

/* ---- ioctls on the device --------------------------------------------------------------------- */

static const char *attr_name(uint64_t attr)
{
    switch (attr) {
    case KVM_DEV_VFIO_GROUP_ADD: return "KVM_DEV_VFIO_GROUP_ADD";
    case KVM_DEV_VFIO_GROUP_DEL: return "KVM_DEV_VFIO_GROUP_DEL";
    case KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE: return "KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE";
    default: return NULL;
    }
}

/* "ioctl(16, KVM_SET_DEVICE_ATTR, {group=KVM_DEV_VFIO_GROUP, attr=KVM_DEV_VFIO_GROUP_ADD, addr=&14})":
 * the call with its argument decoded (the fd an ADD or DEL names, read from addr), or with the
 * bare pointer when the attribute itself could not be read. */
static void attr_call_text(char *buf, size_t size, int fd, const char *call, unsigned long arg,
                           const struct kvm_device_attr *a)
{
    char group[32], attr[40], addr[48];
    if (!a) {
        snprintf(buf, size, "ioctl(%d, %s, %#lx)", fd, call, arg);
        return;
    }
    if (a->group == KVM_DEV_VFIO_GROUP)
        snprintf(group, sizeof group, "KVM_DEV_VFIO_GROUP");
    else
        snprintf(group, sizeof group, "%u", a->group);
    const char *an = a->group == KVM_DEV_VFIO_GROUP ? attr_name(a->attr) : NULL;
    if (an)
        snprintf(attr, sizeof attr, "%s", an);
    else
        snprintf(attr, sizeof attr, "%llu", (unsigned long long)a->attr);
    int32_t v;
    if (strcmp(call, "KVM_SET_DEVICE_ATTR") == 0 && a->group == KVM_DEV_VFIO_GROUP &&
        (a->attr == KVM_DEV_VFIO_GROUP_ADD || a->attr == KVM_DEV_VFIO_GROUP_DEL) &&
        kvm_model.copy_from_user(&v, (const void *)(uintptr_t)a->addr, sizeof v) == 0)
        snprintf(addr, sizeof addr, "&%d", v);
    else
        snprintf(addr, sizeof addr, "%#llx", (unsigned long long)a->addr);
    snprintf(buf, size, "ioctl(%d, %s, {group=%s, attr=%s, addr=%s})", fd, call, group, attr, addr);
}

/* kvm_device_ioctl() for the kvm-vfio device: 0 or -errno. */
static int device_ioctl(struct kvm_device *d, unsigned long request, unsigned long arg)
{
    if (d->pid != getpid())
        return -EIO;
    unsigned int cmd = (unsigned int)request;
    const char *call;
    switch (cmd) {
    case KVM_SET_DEVICE_ATTR: call = "KVM_SET_DEVICE_ATTR"; break;
    case KVM_HAS_DEVICE_ATTR: call = "KVM_HAS_DEVICE_ATTR"; break;
    case KVM_GET_DEVICE_ATTR: call = "KVM_GET_DEVICE_ATTR"; break;
    default: return -ENOTTY; /* no .ioctl op */
    }
    struct kvm_device_attr attr;
    char text[256], res[48];
    int r;
    if (cmd == KVM_GET_DEVICE_ATTR) {
        r = -EPERM; /* no .get_attr: refused before the argument is read */
    } else if (kvm_model.copy_from_user(&attr, (const void *)arg, sizeof attr)) {
        r = -EFAULT;
    } else if (cmd == KVM_HAS_DEVICE_ATTR) {
        r = kvm_vfio_has_attr(d->kv, attr.group, attr.attr);
    } else {
        /* SET_DEVICE_ATTR calls into the model, whose own lines (vfio_file_set_kvm) come inside
         * it: strace's form, the call first, its result after. */
        int t = tracing();
        if (t) {
            attr_call_text(text, sizeof text, d->fd, call, arg, &attr);
            trace("%s <unfinished ...>", text);
        }
        r = kvm_vfio_set_attr(d->kv, attr.group, attr.attr, attr.addr);
        if (t)
            trace("<... ioctl(%d, %s) resumed>%s", d->fd, call, result_text(r, res, sizeof res));
        return r;
    }
    if (tracing()) {
        attr_call_text(text, sizeof text, d->fd, call, arg, r == -EFAULT || r == -EPERM ? NULL : &attr);
        trace("%s%s", text, result_text(r, res, sizeof res));
    }
    return r;
}

/* ---- the hooks -------------------------------------------------------------------------------- */

int kvm_hook_ioctl(int fd, unsigned long request, unsigned long arg, int *result)
{
    int saved = errno;
    struct kvm_device *d = atomic_load_explicit(&kvm_devices_live, memory_order_relaxed) ? device_get(fd) : NULL;
    if (d) {
        int r = device_ioctl(d, request, arg);
        device_put(d, "");
        if (r < 0) {
            errno = -r;
            *result = -1;
        } else {
            errno = saved;
            *result = r;
        }
        return 1;
    }
    int handled = (unsigned int)request == KVM_CREATE_DEVICE && create_device(fd, arg, result);
    if (!handled || *result == 0)
        errno = saved;
    return handled;
}

void kvm_hook_close(int fd)
{
    int saved = errno;
    int hi = atomic_load_explicit(&slots_hi, memory_order_acquire);
    for (int i = 0; i < hi; i++) {
        if (atomic_load_explicit(&device_fds[i], memory_order_relaxed) != fd + 1)
            continue;
        pthread_mutex_lock(&devices_lock);
        struct kvm_device *d = devices[i];
        if (!d || d->fd != fd) {
            pthread_mutex_unlock(&devices_lock);
            break;
        }
        /* The descriptor being closed is the placeholder, or it was closed behind our back
         * before: either way the device file is gone. */
        unlink_locked(i);
        pthread_mutex_unlock(&devices_lock);
        if (d->pid == getpid())
            device_put(d, "");
        else
            free(d); /* a forked child's copy: the file is its parent's, nothing is released */
        break;
    }
    errno = saved;
}

void kvm_hook_exit(void)
{
    int saved = errno;
    pid_t pid = getpid();
    for (int i = 0; i < MAX_DEVICES; i++) {
        pthread_mutex_lock(&devices_lock);
        struct kvm_device *d = devices[i];
        if (!d || d->pid != pid) {
            pthread_mutex_unlock(&devices_lock);
            continue;
        }
        unlink_locked(i);
        pthread_mutex_unlock(&devices_lock);
        if (same_file(d->fd, d))
            (void)syscall(SYS_close, d->fd);
        device_put(d, " /* exit */");
    }
    errno = saved;
}
