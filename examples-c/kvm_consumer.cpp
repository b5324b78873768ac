// SPDX-License-Identifier: Apache-2.0
// kvm_consumer.cpp: a KVM-side consumer written in C++ on libswiftvfio's C ABI.
//
// The C examples manage references by hand, as the kernel does. A C++ consumer wraps each kind
// of reference in a move-only owner so that every path out of a scope, an exception included,
// drops exactly what it took:
//   ModelFd       a model fd (swiftvfio_open / swiftvfio_close)
//   FileRef       a counted struct file reference (swiftvfio_fget / swiftvfio_fput, the
//                 kernel's fget/fput: what virt/kvm/vfio.c keeps per group)
//   IommuGroupRef a struct iommu_group reference (vfio_file_iommu_group or iommu_group_get /
//                 iommu_group_put)
//   KvmVfioGroup  KVM_DEV_VFIO_GROUP_ADD: a group file reference with the VM set on it
//                 (vfio_file_set_kvm); the destructor is KVM_DEV_VFIO_GROUP_DEL
// The VM itself is a small C++ struct kvm whose kvm_get_kvm_safe/kvm_put_kvm are defined
// extern "C" and exported (link with -rdynamic) for the library's dlsym lookup.
//
//   usage: kvm_consumer [group-id [device-name [non-viable-group-id]]]
//          (default: 26 0000:06:0d.0 27, from the built-in default topology)
//
// Every step checks its outcome; the last line says how many checks passed, and the program
// exits 1 if any failed.
#include <swiftvfio.h>

#include <fcntl.h>
#include <linux/vfio.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

// ---- The VM (the consumer's own object; the library only stores the pointer) ------------------

struct kvm {
    std::atomic<int> users_count{1};  // kvm->users_count: the creator's reference
};

// refcount_inc_not_zero(): a dying VM gives no reference.
extern "C" bool kvm_get_kvm_safe(struct kvm *kvm)
{
    int old = kvm->users_count.load();
    while (old > 0)
        if (kvm->users_count.compare_exchange_weak(old, old + 1))
            return true;
    return false;
}

extern "C" void kvm_put_kvm(struct kvm *kvm)
{
    kvm->users_count.fetch_sub(1);
}

namespace {

// A failed call: what was attempted, the errno and the library's own message.
class Error : public std::runtime_error {
public:
    Error(const std::string &what, int err)
        : std::runtime_error(describe(what, err)), err_(err) {}
    int err() const noexcept { return err_; }

private:
    static std::string describe(const std::string &what, int err)
    {
        const char *why = swiftvfio_last_error();
        return what + ": " + std::strerror(err) + " (" + (why ? why : "no message") + ")";
    }
    int err_;
};

// ---- Owners --------------------------------------------------------------------------------

class ModelFd {
public:
    static ModelFd open(const std::string &path)
    {
        int fd = swiftvfio_open(path.c_str(), O_RDWR);
        if (fd < 0)
            throw Error("open " + path, errno);
        return ModelFd(fd);
    }
    explicit ModelFd(int fd) noexcept : fd_(fd) {}
    ModelFd(ModelFd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    ModelFd &operator=(ModelFd &&o) noexcept
    {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ModelFd(const ModelFd &) = delete;
    ModelFd &operator=(const ModelFd &) = delete;
    ~ModelFd() { reset(); }

    void reset() noexcept
    {
        if (fd_ >= 0)
            swiftvfio_close(std::exchange(fd_, -1));
    }
    int get() const noexcept { return fd_; }

    // ioctl(2) on the model: the result, or an Error carrying errno.
    int ioctl(unsigned long request, unsigned long arg, const char *name) const
    {
        int r = swiftvfio_ioctl(fd_, request, arg);
        if (r < 0)
            throw Error(name, errno);
        return r;
    }
    template <typename T> int ioctl(unsigned long request, T *arg, const char *name) const
    {
        return ioctl(request, reinterpret_cast<unsigned long>(arg), name);
    }

private:
    int fd_;
};

class FileRef {
public:
    static FileRef fget(int fd)
    {
        struct file *f = swiftvfio_fget(fd);
        if (!f)
            throw Error("swiftvfio_fget(" + std::to_string(fd) + ")", errno);
        return FileRef(f);
    }
    FileRef(FileRef &&o) noexcept : file_(std::exchange(o.file_, nullptr)) {}
    FileRef &operator=(FileRef &&o) noexcept
    {
        if (this != &o) {
            reset();
            file_ = std::exchange(o.file_, nullptr);
        }
        return *this;
    }
    FileRef(const FileRef &) = delete;
    FileRef &operator=(const FileRef &) = delete;
    ~FileRef() { reset(); }

    void reset() noexcept
    {
        if (file_)
            swiftvfio_fput(std::exchange(file_, nullptr));
    }
    struct file *get() const noexcept { return file_; }
    explicit operator bool() const noexcept { return file_ != nullptr; }

private:
    explicit FileRef(struct file *f) noexcept : file_(f) {}
    struct file *file_;
};

class IommuGroupRef {
public:
    explicit IommuGroupRef(struct iommu_group *g = nullptr) noexcept : group_(g) {}
    IommuGroupRef(IommuGroupRef &&o) noexcept : group_(std::exchange(o.group_, nullptr)) {}
    IommuGroupRef &operator=(IommuGroupRef &&o) noexcept
    {
        if (this != &o) {
            iommu_group_put(group_);  // NULL is ignored, as in the kernel
            group_ = std::exchange(o.group_, nullptr);
        }
        return *this;
    }
    IommuGroupRef(const IommuGroupRef &) = delete;
    IommuGroupRef &operator=(const IommuGroupRef &) = delete;
    ~IommuGroupRef() { iommu_group_put(group_); }

    struct iommu_group *get() const noexcept { return group_; }
    explicit operator bool() const noexcept { return group_ != nullptr; }
    int id() const { return iommu_group_id(group_); }

private:
    struct iommu_group *group_;
};

// KVM_DEV_VFIO_GROUP_ADD / _DEL (virt/kvm/vfio.c): the device keeps a file reference per group
// and tells VFIO which VM the group belongs to.
class KvmVfioGroup {
public:
    KvmVfioGroup(struct kvm *kvm, int group_fd) : file_(FileRef::fget(group_fd))
    {
        if (!vfio_file_is_group(file_.get()))
            throw Error("KVM_DEV_VFIO_GROUP_ADD: not a VFIO group file", EINVAL);
        vfio_file_set_kvm(file_.get(), kvm);
    }
    KvmVfioGroup(KvmVfioGroup &&) noexcept = default;
    KvmVfioGroup &operator=(KvmVfioGroup &&) = delete;
    KvmVfioGroup(const KvmVfioGroup &) = delete;
    KvmVfioGroup &operator=(const KvmVfioGroup &) = delete;
    ~KvmVfioGroup()
    {
        if (file_)
            vfio_file_set_kvm(file_.get(), nullptr);
        // file_'s destructor then drops the reference (fput).
    }

    struct file *file() const noexcept { return file_.get(); }
    bool enforced_coherent() const { return vfio_file_enforced_coherent(file_.get()); }
    bool has_dev(struct vfio_device *dev) const { return vfio_file_has_dev(file_.get(), dev); }
    IommuGroupRef iommu_group() const { return IommuGroupRef(vfio_file_iommu_group(file_.get())); }

private:
    FileRef file_;
};

// ---- Checks ----------------------------------------------------------------------------------

int passed, failed;

void check(const char *what, bool ok)
{
    std::printf("   %-62s %s\n", what, ok ? "ok" : "FAILED");
    (ok ? passed : failed)++;
}

void check_eq(const char *what, long got, long want)
{
    char line[160];
    std::snprintf(line, sizeof line, "%s: %ld", what, got);
    if (got != want)
        std::snprintf(line, sizeof line, "%s: %ld, expected %ld", what, got, want);
    check(line, got == want);
}

// `struct` is needed: the function swiftvfio_census() hides the type's plain name in C++.
struct swiftvfio_census census()
{
    struct swiftvfio_census c{};
    if (swiftvfio_census(&c) < 0)
        throw Error("swiftvfio_census", EFAULT);
    return c;
}

void run(const std::string &group_id, const std::string &device_name, const std::string &bad_group_id)
{
    kvm vm;

    std::printf("1. container and group %s, as a VMM sets them up\n", group_id.c_str());
    ModelFd container = ModelFd::open("/dev/vfio/vfio");
    ModelFd group = ModelFd::open("/dev/vfio/" + group_id);
    vfio_group_status status{};
    status.argsz = sizeof status;
    group.ioctl(VFIO_GROUP_GET_STATUS, &status, "VFIO_GROUP_GET_STATUS");
    check("the group is viable", status.flags & VFIO_GROUP_FLAGS_VIABLE);
    int container_fd = container.get();
    group.ioctl(VFIO_GROUP_SET_CONTAINER, &container_fd, "VFIO_GROUP_SET_CONTAINER");
    container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU, "VFIO_SET_IOMMU");

    {
        std::printf("2. KVM_DEV_VFIO_GROUP_ADD: fget the group, vfio_file_set_kvm\n");
        KvmVfioGroup kvm_group(&vm, group.get());
        check("vfio_file_is_group(group file)", vfio_file_is_group(kvm_group.file()));
        {
            FileRef container_file = FileRef::fget(container.get());
            check("vfio_file_is_group(container file) is false", !vfio_file_is_group(container_file.get()));
        }
        check("vfio_file_enforced_coherent(group file)", kvm_group.enforced_coherent());
        IommuGroupRef spapr_group = kvm_group.iommu_group();
        check("vfio_file_iommu_group: NULL without CONFIG_SPAPR_TCE_IOMMU", !spapr_group);
        IommuGroupRef hw_group(iommu_group_get(swiftvfio_device_find(device_name.c_str())));
        check_eq("iommu_group_id(iommu_group_get(device))", hw_group.id(), std::stol(group_id));

        std::printf("3. the VMM opens the device: its first open takes a VM reference\n");
        ModelFd device(group.ioctl(VFIO_GROUP_GET_DEVICE_FD,
                                   reinterpret_cast<unsigned long>(device_name.c_str()),
                                   "VFIO_GROUP_GET_DEVICE_FD"));
        check_eq("VM users (creator + device)", vm.users_count.load(), 2);
        FileRef device_file = FileRef::fget(device.get());
        {
            FileRef again = FileRef::fget(device.get());
            check("fget twice: the same struct file", again.get() == device_file.get());
        }
        struct vfio_device *vdev = swiftvfio_file_device(device_file.get());
        check("swiftvfio_file_device(device file)", vdev != nullptr);
        check("vfio_file_has_dev(group file, device)", kvm_group.has_dev(vdev));

        std::printf("4. close(device) while a file reference is held: the release waits\n");
        device.reset();
        check_eq("VM users after close, reference held", vm.users_count.load(), 2);
        device_file.reset();
        check_eq("VM users after the last fput", vm.users_count.load(), 1);

        std::printf("5. an exception in the middle of the setup unwinds every reference\n");
        try {
            ModelFd bad = ModelFd::open("/dev/vfio/" + bad_group_id);
            FileRef held = FileRef::fget(bad.get());
            bad.ioctl(VFIO_GROUP_SET_CONTAINER, &container_fd, "VFIO_GROUP_SET_CONTAINER (non-viable group)");
            check("a non-viable group joined the container", false);
        } catch (const Error &e) {
            std::printf("   caught: %s\n", e.what());
            check("the non-viable group was refused with EPERM", e.err() == EPERM);
        }
        std::printf("6. KVM_DEV_VFIO_GROUP_DEL: the destructors run\n");
    }
    struct swiftvfio_census mid = census();
    check_eq("VM references held by devices", mid.kvm_references, 0);
    check_eq("model files still open (container, group)", mid.files, 2);
}

}  // namespace

int main(int argc, char **argv)
{
    std::string group_id = argc > 1 ? argv[1] : "26";
    std::string device_name = argc > 2 ? argv[2] : "0000:06:0d.0";
    std::string bad_group_id = argc > 3 ? argv[3] : "27";
    try {
        run(group_id, device_name, bad_group_id);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "kvm_consumer: %s\n", e.what());
        failed++;
    }
    std::printf("7. everything out of scope\n");
    struct swiftvfio_census end = census();
    check_eq("files", end.files, 0);
    check_eq("fds", end.fds, 0);
    check_eq("WARNs", end.warnings, 0);
    std::printf("kvm_consumer: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
