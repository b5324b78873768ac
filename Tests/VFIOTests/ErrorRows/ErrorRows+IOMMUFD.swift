// SPDX-License-Identifier: Apache-2.0
// docs/ERRORS.md rows of the iommufd fd (/dev/iommu): the VFIO compat ioctls and the few iommufd
// requests the model serves.
import Testing
@testable import VFIO

extension ErrorRows {
    static let iommufd: [ErrorRow] = [
        .sub("ifd-enotty", .ENOTTY, "request not served by the iommufd model") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), UInt(VFIOIoctl.iommuMapDMA), 0x10)
        },
        .succeeds("ifd-api-version", value: 0) { sub in try sub.ioctl(try sub.open("/dev/iommu"), UInt(VFIOIoctl.getAPIVersion)) },
        .sub("ifd-check-enodev", .ENODEV, "iommufd has no compat IOAS") { sub in
            try sub.checkExtension(try sub.open("/dev/iommu"), VFIOExtension.dmaCCIOMMU)
        },
        .sub("ifd-setiommu-eperm", .EPERM, "no-IOMMU needs CAP_SYS_RAWIO", config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            let ictx = try sub.open("/dev/iommu")
            try sub.setContainer(g, ictx)   // the context is in no-IOMMU mode now
            sub.rawIOPolicy = .denied
            try sub.setIOMMU(ictx, VFIOExtension.noIOMMU)
            return 0
        },
        .sub("ifd-setiommu-einval", .EINVAL, "IOMMU type 2 not emulated by iommufd (type1 or type1v2 only)") { sub in
            try sub.setIOMMU(try sub.open("/dev/iommu"), VFIOExtension.spaprTCEIOMMU)
            return 0
        },
        .sub("ifd-setiommu-einval (no-IOMMU mode)", .EINVAL, "iommufd in no-IOMMU mode: IOMMU type 3 refused",
             config: noIOMMUConfig, populated: false) { sub in
            let (_, g) = try sub.noIOMMUGroup()
            let ictx = try sub.open("/dev/iommu")
            try sub.setContainer(g, ictx)
            try sub.setIOMMU(ictx, VFIOExtension.type1v2IOMMU)
            return 0
        },
        .sub("ifd-setiommu-enodev", .ENODEV, "iommufd has no compat IOAS") { sub in
            try sub.setIOMMU(try sub.open("/dev/iommu"), VFIOExtension.type1v2IOMMU)
            return 0
        },
        .sub("ifd-ioas-efault", .EFAULT, "cannot read 4 bytes at 0x10") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), UInt(VFIOIoctl.iommuVFIOIOAS), 0x10)
        },
        .sub("ifd-ioas-efault (destroy)", .EFAULT, "cannot read 4 bytes at 0x10") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), UInt(VFIOIoctl.iommuDestroy), 0x10)
        },
        .sub("ifd-ioas-einval-size", .EINVAL, "size 8 < minsz 12") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuVFIOIOAS, with: VFIOIOASArg(size: 8))
        },
        .sub("ifd-ioas-einval-size (alloc)", .EINVAL, "size 8 < minsz 12") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuIOASAlloc, with: (UInt32(8), UInt32(0), UInt32(0)))
        },
        .sub("ifd-vfio-ioas-eopnotsupp", .EOPNOTSUPP, "reserved 0x1 not 0") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuVFIOIOAS, with: VFIOIOASArg(reserved: 1))
        },
        .sub("ifd-vfio-ioas-eopnotsupp (op)", .EOPNOTSUPP, "op 3 is not GET (0), SET (1) or CLEAR (2)") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuVFIOIOAS, with: VFIOIOASArg(op: 3))
        },
        .sub("ifd-vfio-ioas-get-enodev", .ENODEV, "iommufd has no compat IOAS") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuVFIOIOAS, with: VFIOIOASArg(op: 0))
        },
        .sub("ifd-vfio-ioas-set-enoent", .ENOENT, "no IOAS with id 999") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuVFIOIOAS, with: VFIOIOASArg(id: 999, op: 1))
        },
        .sub("ifd-destroy-enoent", .ENOENT, "no object with id 999") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuDestroy, with: (UInt32(8), UInt32(999)))
        },
        .sub("ifd-destroy-ebusy", .EBUSY, "has 1 attached device(s) and 0 access(es)") { sub in
            let g = try sub.open("/dev/vfio/26"), ictx = try sub.open("/dev/iommu")
            try sub.setContainer(g, ictx)
            _ = try sub.deviceFD(g, "0000:06:0d.0")
            var get = VFIOIOASArg(op: 0)
            _ = try withUnsafeMutablePointer(to: &get) { (p) throws(Errno) -> Int in
                try sub.ioctl(ictx, UInt(VFIOIoctl.iommuVFIOIOAS), UInt(bitPattern: p))
            }
            return try sub.ioctl(ictx, VFIOIoctl.iommuDestroy, with: (UInt32(8), get.id))
        },
        .sub("ifd-alloc-eopnotsupp", .EOPNOTSUPP, "flags 0x1 not 0") { sub in
            try sub.ioctl(try sub.open("/dev/iommu"), VFIOIoctl.iommuIOASAlloc, with: (UInt32(12), UInt32(1), UInt32(0)))
        },
    ]
}
