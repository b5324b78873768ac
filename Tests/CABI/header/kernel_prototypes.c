// SPDX-License-Identifier: Apache-2.0
/* The kernel's own prototypes, as include/linux/vfio.h, include/linux/iommu.h and
 * include/linux/kvm_host.h (v6.3) declare them, after <swiftvfio.h>: a C file written against the
 * kernel's declarations compiles together with the library's header (same types, no conflict).
 * u32 is the kernel's typedef. Compiled with -std=c11 -pedantic -Werror by gcc and clang. */
#include <swiftvfio.h>

typedef uint32_t u32;

/* include/linux/vfio.h */
struct iommu_group *vfio_file_iommu_group(struct file *file);
bool vfio_file_is_group(struct file *file);
bool vfio_file_enforced_coherent(struct file *file);
void vfio_file_set_kvm(struct file *file, struct kvm *kvm);
bool vfio_file_has_dev(struct file *file, struct vfio_device *device);
int vfio_register_group_dev(struct vfio_device *device);
int vfio_register_emulated_iommu_dev(struct vfio_device *device);
void vfio_unregister_group_dev(struct vfio_device *device);
int vfio_iommufd_physical_bind(struct vfio_device *vdev, struct iommufd_ctx *ictx, u32 *out_device_id);
void vfio_iommufd_physical_unbind(struct vfio_device *vdev);
int vfio_iommufd_physical_attach_ioas(struct vfio_device *vdev, u32 *pt_id);
int vfio_iommufd_emulated_bind(struct vfio_device *vdev, struct iommufd_ctx *ictx, u32 *out_device_id);
void vfio_iommufd_emulated_unbind(struct vfio_device *vdev);
int vfio_iommufd_emulated_attach_ioas(struct vfio_device *vdev, u32 *pt_id);

/* include/linux/iommu.h */
int iommu_group_id(struct iommu_group *group);
void iommu_group_put(struct iommu_group *group);
struct iommu_group *iommu_group_get(struct device *dev);
int iommu_group_add_device(struct iommu_group *group, struct device *dev);
void iommu_group_remove_device(struct device *dev);

/* include/linux/kvm_host.h: what a consumer provides */
bool kvm_get_kvm_safe(struct kvm *kvm);
void kvm_put_kvm(struct kvm *kvm);

/* The kernel's vfio_put_device is an inline over put_device(); as a function it has this type. */
void vfio_put_device(struct vfio_device *device);

/* Function pointers of the kernel's types take the library's functions. */
static bool (*const is_group)(struct file *) = vfio_file_is_group;
static void (*const set_kvm)(struct file *, struct kvm *) = vfio_file_set_kvm;

int main(void)
{
    /* Called through the kernel-typed pointers: a NULL file is answered (false, a WARN). */
    set_kvm(NULL, NULL);
    return is_group(NULL) ? 1 : 0;
}
