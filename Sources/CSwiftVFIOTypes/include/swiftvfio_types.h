// SPDX-License-Identifier: Apache-2.0
/* swiftvfio_types.h: the C types of libswiftvfio's C ABI.
 *
 * Scripts/gen-header.sh copies this file (without its Swift-only part) into include/swiftvfio.h,
 * ahead of the function prototypes the Swift compiler generates, so C programs include only
 * <swiftvfio.h>. Swift (target SwiftVFIOCABI) imports it as the module CSwiftVFIOTypes.
 */
#ifndef SWIFTVFIO_TYPES_H
#define SWIFTVFIO_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* ssize_t, off_t */

/* ---- Handles ------------------------------------------------------------------------------
 *
 * The kernel's objects are incomplete structs, as they are to a module that only holds pointers:
 *   struct file         an open file (group, container, iommufd or device file); from
 *                       swiftvfio_fget(), one counted reference each; swiftvfio_fput() drops it.
 *   struct kvm          the KVM side's VM. The library stores and passes it, never dereferences
 *                       it; references are taken through the consumer's kvm_get_kvm_safe().
 *   struct vfio_device  a VFIO device: swiftvfio_alloc_device() (one reference, put with
 *                       vfio_put_device()), swiftvfio_file_device(), or an ops callback argument.
 *   struct iommu_group  an IOMMU group: vfio_file_iommu_group(), iommu_group_get() and
 *                       swiftvfio_iommu_group_alloc() return a counted reference, put with
 *                       iommu_group_put().
 *   struct iommufd_ctx  an iommufd context, passed to a driver's bind_iommufd.
 *   struct device       a device on a bus (the model's hardware): swiftvfio_device_add(),
 *                       swiftvfio_device_find().
 *
 * Every pointer the library hands out is a token it checks on every call: NULL, a pointer it never
 * issued, a handle put once too often or used after its last put is an error plus a WARN in the
 * model's log (never a crash). Tokens are not addresses; do not dereference them.
 */
#if defined(__swift__)
/* For Swift only, the structs are completed with a dummy member: a pointer to an incomplete
 * struct imports into Swift as OpaquePointer and would print as `void *` in the generated
 * header; completed, it prints as `struct file *`. (Scripts/gen-header.sh drops this part.) */
struct file { char swiftvfio_opaque_; };
struct kvm { char swiftvfio_opaque_; };
struct vfio_device { char swiftvfio_opaque_; };
struct iommu_group { char swiftvfio_opaque_; };
struct iommufd_ctx { char swiftvfio_opaque_; };
struct device { char swiftvfio_opaque_; };
#else
struct file;
struct kvm;
struct vfio_device;
struct iommu_group;
struct iommufd_ctx;
struct device;
#endif

/* ---- Driver API ---------------------------------------------------------------------------- */

/* The mapping a driver's mmap op is asked for (a small stand-in for the kernel's struct).
 *
 * The model has no page tables, so remap_pfn_range() has no counterpart: the library fills in
 * vm_pgoff (the file offset in pages), vm_end - vm_start (the length, with vm_start 0),
 * vm_flags (VM_READ 0x1, VM_WRITE 0x2, VM_SHARED 0x8) and vm_page_prot (the PROT_* bits); the
 * driver sets vm_start to the address of memory it owns that backs the region (and may set
 * vm_private_data) and returns 0, or returns -errno. The library moves vm_end with vm_start and
 * returns vm_start from swiftvfio_mmap(). The driver owns that memory: it must stay valid until
 * the device's close_device. */
struct vm_area_struct {
    unsigned long vm_start;
    unsigned long vm_end;
    unsigned long vm_pgoff;
    unsigned long vm_flags;
    unsigned long vm_page_prot;
    void *vm_private_data;
};

/* A VFIO bus driver's callbacks: the kernel's v6.3 struct vfio_device_ops (include/linux/vfio.h),
 * same member names, order and meaning. Every member may be NULL, as in the kernel. Returns are
 * the kernel's: 0 or a negative errno (read/write: bytes or -errno; ioctl: >= 0 or -errno;
 * match: < 0 error, 0 no match, > 0 match).
 *
 * Deviations, all ABI-compatible on LP64 Linux: `name` is `const char *` (so a string literal
 * initialises it in C++ too); u32/u64 are uint32_t/uint64_t; loff_t is int64_t (glibc's loff_t on
 * LP64); __user pointers are plain pointers into the caller's address space: copy through
 * swiftvfio_copy_to_user()/swiftvfio_copy_from_user() so a bad pointer from a client gives EFAULT
 * instead of a crash; mmap gets the stand-in struct vm_area_struct above.
 *
 * The library copies the table in swiftvfio_alloc_device(): later changes to the caller's struct
 * have no effect. Callbacks run on the thread of the call that caused them; open_device,
 * close_device, bind_iommufd, unbind_iommufd and attach_ioas run with the device set's lock held
 * (do not open or close the same device from them). dma_unmap is part of the layout but never
 * called: the model's containers have no emulated-IOMMU pinning. */
struct vfio_device_ops {
    const char *name;
    int (*init)(struct vfio_device *vdev);
    void (*release)(struct vfio_device *vdev);
    int (*bind_iommufd)(struct vfio_device *vdev, struct iommufd_ctx *ictx, uint32_t *out_device_id);
    void (*unbind_iommufd)(struct vfio_device *vdev);
    int (*attach_ioas)(struct vfio_device *vdev, uint32_t *pt_id);
    int (*open_device)(struct vfio_device *vdev);
    void (*close_device)(struct vfio_device *vdev);
    ssize_t (*read)(struct vfio_device *vdev, char *buf, size_t count, int64_t *ppos);
    ssize_t (*write)(struct vfio_device *vdev, const char *buf, size_t count, int64_t *size);
    long (*ioctl)(struct vfio_device *vdev, unsigned int cmd, unsigned long arg);
    int (*mmap)(struct vfio_device *vdev, struct vm_area_struct *vma);
    void (*request)(struct vfio_device *vdev, unsigned int count);
    int (*match)(struct vfio_device *vdev, char *buf);
    void (*dma_unmap)(struct vfio_device *vdev, uint64_t iova, uint64_t length);
    int (*device_feature)(struct vfio_device *device, uint32_t flags, void *arg, size_t argsz);
};

/* Flags of swiftvfio_device_add(): the device's IOMMU capabilities (both present by default). */
enum {
    /* No IOMMU_CAP_CACHE_COHERENCY: vfio_register_group_dev() refuses it with EINVAL. */
    SWIFTVFIO_DEV_NO_CACHE_COHERENCY = 0x1,
    /* No IOMMU_CAP_ENFORCE_CACHE_COHERENCY: vfio_file_enforced_coherent() answers false. */
    SWIFTVFIO_DEV_NO_ENFORCE_CACHE_COHERENCY = 0x2
};

/* One DMA mapping of a type1 container, as swiftvfio_dma_mappings() reports it. */
struct swiftvfio_dma_mapping {
    uint64_t iova;     /* device (IO virtual) address of the first byte */
    uint64_t size;     /* length in bytes */
    uint64_t vaddr;    /* process address backing it (stale with SWIFTVFIO_DMA_VADDR_INVALID) */
    uint32_t flags;    /* SWIFTVFIO_DMA_READ | SWIFTVFIO_DMA_WRITE | SWIFTVFIO_DMA_VADDR_INVALID */
    uint32_t reserved; /* 0 */
};

/* Flags of struct swiftvfio_dma_mapping. */
enum {
    /* The device may read (VFIO_DMA_MAP_FLAG_READ at MAP_DMA). */
    SWIFTVFIO_DMA_READ = 0x1,
    /* The device may write (VFIO_DMA_MAP_FLAG_WRITE at MAP_DMA). */
    SWIFTVFIO_DMA_WRITE = 0x2,
    /* UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_VADDR invalidated vaddr; a MAP_DMA with VADDR renews it. */
    SWIFTVFIO_DMA_VADDR_INVALID = 0x100
};

/* ---- Provided by the KVM side, not by this library ----------------------------------------
 *
 * A KVM-side consumer defines and exports these (link the program with -rdynamic); the library
 * looks them up with dlsym(RTLD_DEFAULT, ...) at each device's first open that needs a VM
 * reference, as the kernel's VFIO uses symbol_get(). Absent, the open WARNs and takes no
 * reference (the device sees no VM), as the kernel does without the KVM module.
 *   kvm_get_kvm_safe: takes a reference on the VM unless its user count already reached zero
 *                     (a dying VM: return false, no reference).
 *   kvm_put_kvm:      drops a reference taken by kvm_get_kvm_safe().
 * From C++, define them inside extern "C" (as declared here) so dlsym() finds the plain names. */
#ifdef __cplusplus
extern "C" {
#endif
bool kvm_get_kvm_safe(struct kvm *kvm);
void kvm_put_kvm(struct kvm *kvm);
#ifdef __cplusplus
}
#endif

/* ---- Observation --------------------------------------------------------------------------- */

/* Live-object counts of the default model (swiftvfio_census()), so a test that leaks can say what
 * leaked, plus the WARNs the model raised (kernel bugs or misuse, including bad handles). */
struct swiftvfio_census {
    int files;              /* struct file objects alive */
    int fds;                /* model fds open */
    int groups;             /* VFIO groups alive (registered, or removed but still open) */
    int containers;         /* containers alive */
    int iommufd_contexts;   /* iommufd contexts alive */
    int devices;            /* VFIO device objects alive */
    int registered_devices; /* VFIO devices registered */
    int device_sets;        /* device sets alive */
    int kvm_references;     /* VM references devices hold (taken at first open) */
    int warnings;           /* WARNs raised so far */
};

#endif /* SWIFTVFIO_TYPES_H */
