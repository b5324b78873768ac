// SPDX-License-Identifier: Apache-2.0
import CSwiftVFIOShim

// The userspace ABI of `include/uapi/linux/vfio.h` and `linux/iommufd.h` (docs/DECISIONS.md#basis): every number
// comes from the system header through CSwiftVFIOShim (`SVFIO_*` for the ioctls, whose `_IO()`
// macro Swift cannot expand; the plain integer macros directly). Nothing here is typed by hand.
//
// Adding an ioctl: its `SVFIO_` line in swiftvfio_shim.h, a constant and a row of `IoctlTable`
// below (name and trace decoders), the handler in its file's `ioctl` operation, and tests.

/// The ioctl numbers the model dispatches on. (Computed and inlinable: each use compiles to the
/// number itself, where a stored `static let` would run a lazy-initialisation check per use.)
///
/// Every VFIO ioctl is `_IO(';', 100 + n)`: no size or direction bits, `argsz` plays that role.
/// Numbers collide across kinds of files (0x3b70 is IOMMU_GET_INFO on a container,
/// GET_PCI_HOT_RESET_INFO on a device): each file's `ioctl` operation decodes its own.
public enum VFIOIoctl {
    /// `VFIO_GET_API_VERSION` (container).
    @inlinable public static var getAPIVersion: UInt32 { UInt32(SVFIO_GET_API_VERSION) }
    /// `VFIO_CHECK_EXTENSION` (container; arg by value).
    @inlinable public static var checkExtension: UInt32 { UInt32(SVFIO_CHECK_EXTENSION) }
    /// `VFIO_SET_IOMMU` (container; arg by value).
    @inlinable public static var setIOMMU: UInt32 { UInt32(SVFIO_SET_IOMMU) }
    /// `VFIO_GROUP_GET_STATUS` (group).
    @inlinable public static var groupGetStatus: UInt32 { UInt32(SVFIO_GROUP_GET_STATUS) }
    /// `VFIO_GROUP_SET_CONTAINER` (group; pointer to an int fd).
    @inlinable public static var groupSetContainer: UInt32 { UInt32(SVFIO_GROUP_SET_CONTAINER) }
    /// `VFIO_GROUP_UNSET_CONTAINER` (group).
    @inlinable public static var groupUnsetContainer: UInt32 { UInt32(SVFIO_GROUP_UNSET_CONTAINER) }
    /// `VFIO_GROUP_GET_DEVICE_FD` (group; pointer to a NUL-terminated name).
    @inlinable public static var groupGetDeviceFD: UInt32 { UInt32(SVFIO_GROUP_GET_DEVICE_FD) }
    /// `VFIO_DEVICE_GET_INFO` (device).
    @inlinable public static var deviceGetInfo: UInt32 { UInt32(SVFIO_DEVICE_GET_INFO) }
    /// `VFIO_DEVICE_GET_REGION_INFO` (device).
    @inlinable public static var deviceGetRegionInfo: UInt32 { UInt32(SVFIO_DEVICE_GET_REGION_INFO) }
    /// `VFIO_DEVICE_GET_IRQ_INFO` (device).
    @inlinable public static var deviceGetIRQInfo: UInt32 { UInt32(SVFIO_DEVICE_GET_IRQ_INFO) }
    /// `VFIO_DEVICE_SET_IRQS` (device).
    @inlinable public static var deviceSetIRQs: UInt32 { UInt32(SVFIO_DEVICE_SET_IRQS) }
    /// `VFIO_DEVICE_RESET` (device).
    @inlinable public static var deviceReset: UInt32 { UInt32(SVFIO_DEVICE_RESET) }
    /// `VFIO_IOMMU_GET_INFO` (container, type1).
    @inlinable public static var iommuGetInfo: UInt32 { UInt32(SVFIO_IOMMU_GET_INFO) }
    /// `VFIO_IOMMU_MAP_DMA` (container, type1).
    @inlinable public static var iommuMapDMA: UInt32 { UInt32(SVFIO_IOMMU_MAP_DMA) }
    /// `VFIO_IOMMU_UNMAP_DMA` (container, type1).
    @inlinable public static var iommuUnmapDMA: UInt32 { UInt32(SVFIO_IOMMU_UNMAP_DMA) }
    /// `VFIO_IOMMU_DIRTY_PAGES` (container, type1) and `VFIO_DEVICE_FEATURE` (device): same number.
    @inlinable public static var iommuDirtyPages: UInt32 { UInt32(SVFIO_IOMMU_DIRTY_PAGES) }
    /// `VFIO_DEVICE_FEATURE` (device).
    @inlinable public static var deviceFeature: UInt32 { UInt32(SVFIO_DEVICE_FEATURE) }
    /// `IOMMU_VFIO_IOAS` on an iommufd.
    @inlinable public static var iommuVFIOIOAS: UInt32 { UInt32(SVFIO_IOMMU_VFIO_IOAS) }
    /// `IOMMU_DESTROY` on an iommufd.
    @inlinable public static var iommuDestroy: UInt32 { UInt32(SVFIO_IOMMU_DESTROY) }
    /// `IOMMU_IOAS_ALLOC` on an iommufd.
    @inlinable public static var iommuIOASAlloc: UInt32 { UInt32(SVFIO_IOMMU_IOAS_ALLOC) }
}

/// Extension and IOMMU type ids shared by CHECK_EXTENSION and SET_IOMMU (docs/ERRORS.md#extension-ids).
public enum VFIOExtension {
    /// `VFIO_TYPE1_IOMMU`.
    @inlinable public static var type1IOMMU: UInt { UInt(VFIO_TYPE1_IOMMU) }
    /// `VFIO_SPAPR_TCE_IOMMU`.
    @inlinable public static var spaprTCEIOMMU: UInt { UInt(VFIO_SPAPR_TCE_IOMMU) }
    /// `VFIO_TYPE1v2_IOMMU`.
    @inlinable public static var type1v2IOMMU: UInt { UInt(VFIO_TYPE1v2_IOMMU) }
    /// `VFIO_DMA_CC_IOMMU`.
    @inlinable public static var dmaCCIOMMU: UInt { UInt(VFIO_DMA_CC_IOMMU) }
    /// `VFIO_EEH`.
    @inlinable public static var eeh: UInt { UInt(VFIO_EEH) }
    /// `VFIO_TYPE1_NESTING_IOMMU`.
    @inlinable public static var type1NestingIOMMU: UInt { UInt(VFIO_TYPE1_NESTING_IOMMU) }
    /// `VFIO_SPAPR_TCE_v2_IOMMU`.
    @inlinable public static var spaprTCEv2IOMMU: UInt { UInt(VFIO_SPAPR_TCE_v2_IOMMU) }
    /// `VFIO_NOIOMMU_IOMMU`.
    @inlinable public static var noIOMMU: UInt { UInt(VFIO_NOIOMMU_IOMMU) }
    /// `VFIO_UNMAP_ALL`.
    @inlinable public static var unmapAll: UInt { UInt(VFIO_UNMAP_ALL) }
    /// `VFIO_UPDATE_VADDR`.
    @inlinable public static var updateVaddr: UInt { UInt(VFIO_UPDATE_VADDR) }

    /// The names CHECK_EXTENSION and SET_IOMMU arguments print as in the trace.
    static let names: [UInt: String] = [
        type1IOMMU: "VFIO_TYPE1_IOMMU", spaprTCEIOMMU: "VFIO_SPAPR_TCE_IOMMU", type1v2IOMMU: "VFIO_TYPE1v2_IOMMU",
        dmaCCIOMMU: "VFIO_DMA_CC_IOMMU", eeh: "VFIO_EEH", type1NestingIOMMU: "VFIO_TYPE1_NESTING_IOMMU",
        spaprTCEv2IOMMU: "VFIO_SPAPR_TCE_v2_IOMMU", noIOMMU: "VFIO_NOIOMMU_IOMMU", unmapAll: "VFIO_UNMAP_ALL",
        updateVaddr: "VFIO_UPDATE_VADDR",
    ]
}

/// `struct vfio_group_status` flags.
public enum VFIOGroupFlags {
    /// `VFIO_GROUP_FLAGS_VIABLE`.
    @inlinable public static var viable: UInt32 { UInt32(VFIO_GROUP_FLAGS_VIABLE) }
    /// `VFIO_GROUP_FLAGS_CONTAINER_SET`.
    @inlinable public static var containerSet: UInt32 { UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET) }
}

/// `struct vfio_group_status`: the only argument struct group.c copies itself.
public struct VFIOGroupStatus: BitwiseCopyable, Equatable, Sendable {
    public var argsz: UInt32
    public var flags: UInt32
    public init(argsz: UInt32 = 8, flags: UInt32 = 0) { self.argsz = argsz; self.flags = flags }
}

/// `VFIO_API_VERSION`.
public let vfioAPIVersion = Int(VFIO_API_VERSION)

// MARK: - The ioctl table

/// One ioctl as the model knows it: its number, the files it is issued on, its name, and how the
/// trace shows its argument and what it wrote back.
struct IoctlRow: Sendable {
    /// How the argument is shown.
    enum Argument: Sendable {
        /// None: the ioctl takes no argument.
        case none
        /// An extension or IOMMU type id, by value (CHECK_EXTENSION, SET_IOMMU).
        case extensionID
        /// A pointer to a structure: `decode` gives its text, or nil when it cannot be read (then
        /// the pointer itself is shown).
        case pointer(decode: @Sendable (IoctlDecoder.Target, UInt) -> String?)
    }

    let number: UInt32
    let name: String
    /// The kinds of file the number means this ioctl on (nil: every kind, and an fd that is not
    /// the model's).
    let files: [FileKind]?
    let argument: Argument
    /// The text of what a successful call wrote back (" => {...}" without the " => "), or nil.
    let output: (@Sendable (IoctlDecoder.Target, UInt) -> String?)?

    init(_ number: Int, _ name: String, on files: [FileKind]?, _ argument: Argument = .pointer(decode: { _, _ in nil }),
         output: (@Sendable (IoctlDecoder.Target, UInt) -> String?)? = nil) {
        self.number = UInt32(number)
        self.name = name
        self.files = files
        self.argument = argument
        self.output = output
    }
}

/// Every ioctl the model serves or names, in one table: the trace's names and decoders come from
/// here (the handlers are each file's `ioctl` operation).
enum IoctlTable {
    private static func read<T: BitwiseCopyable>(_: T.Type, _ arg: UInt) -> T? { try? UserMemory.read(T.self, from: arg) }
    private typealias F = TraceFormat

    /// Table order matters for one thing: a number issued on a file with no row of its own is
    /// named after its first row (0x3b70 on a group prints as VFIO_IOMMU_GET_INFO).
    static let rows: [IoctlRow] = [
        // container (vfio_fops); the iommufd emulates the first three
        IoctlRow(SVFIO_GET_API_VERSION, "VFIO_GET_API_VERSION", on: nil, .none),
        IoctlRow(SVFIO_CHECK_EXTENSION, "VFIO_CHECK_EXTENSION", on: nil, .extensionID),
        IoctlRow(SVFIO_SET_IOMMU, "VFIO_SET_IOMMU", on: nil, .extensionID),
        // group (vfio_group_fops)
        IoctlRow(SVFIO_GROUP_GET_STATUS, "VFIO_GROUP_GET_STATUS", on: [.group], .pointer { _, a in
            read(VFIOGroupStatus.self, a).map { "{argsz=\($0.argsz)}" }
        }, output: { _, a in
            read(VFIOGroupStatus.self, a).map {
                "{flags=\(F.flags(UInt64($0.flags), [(UInt64(VFIOGroupFlags.viable), "VIABLE"), (UInt64(VFIOGroupFlags.containerSet), "CONTAINER_SET")]))}"
            }
        }),
        IoctlRow(SVFIO_GROUP_SET_CONTAINER, "VFIO_GROUP_SET_CONTAINER", on: [.group], .pointer { _, a in
            read(Int32.self, a).map { "&\($0)" }
        }),
        IoctlRow(SVFIO_GROUP_UNSET_CONTAINER, "VFIO_GROUP_UNSET_CONTAINER", on: nil, .none),
        IoctlRow(SVFIO_GROUP_GET_DEVICE_FD, "VFIO_GROUP_GET_DEVICE_FD", on: [.group], .pointer { _, a in
            (try? UserMemory.string(at: a, limit: 4096)).map(F.quoted)
        }),
        // type1 container (and the iommufd's compat emulation of the first three)
        IoctlRow(SVFIO_IOMMU_GET_INFO, "VFIO_IOMMU_GET_INFO", on: [.container, .iommufd], .pointer { _, a in
            read(UInt32.self, a).map { "{argsz=\($0)}" }
        }, output: { _, a in
            read(Type1InfoArg.self, a).map { i in
                "{argsz=\(i.argsz), flags=\(F.flags(UInt64(i.flags), [(UInt64(VFIO_IOMMU_INFO_PGSIZES), "PGSIZES"), (UInt64(VFIO_IOMMU_INFO_CAPS), "CAPS")])), iova_pgsizes=\(F.hex(i.iovaPgsizes)), cap_offset=\(i.capOffset)}"
            }
        }),
        IoctlRow(SVFIO_IOMMU_MAP_DMA, "VFIO_IOMMU_MAP_DMA", on: [.container, .iommufd], .pointer { _, a in
            read(Type1DMAMapArg.self, a).map {
                "{argsz=\($0.argsz), flags=\(IoctlDecoder.dmaMapFlags($0.flags)), vaddr=\(F.hex($0.vaddr)), iova=\(F.hex($0.iova)), size=\(F.hex($0.size))}"
            }
        }),
        IoctlRow(SVFIO_IOMMU_UNMAP_DMA, "VFIO_IOMMU_UNMAP_DMA", on: [.container, .iommufd], .pointer { _, a in
            read(Type1DMAUnmapArg.self, a).map {
                "{argsz=\($0.argsz), flags=\(F.flags(UInt64($0.flags), [(UInt64(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP), "GET_DIRTY_BITMAP"), (UInt64(VFIO_DMA_UNMAP_FLAG_ALL), "ALL"), (UInt64(VFIO_DMA_UNMAP_FLAG_VADDR), "VADDR")])), iova=\(F.hex($0.iova)), size=\(F.hex($0.size))}"
            }
        }, output: { _, a in
            read(Type1DMAUnmapArg.self, a).map { "{size=\(F.hex($0.size))}" }
        }),
        IoctlRow(SVFIO_IOMMU_ENABLE, "VFIO_IOMMU_ENABLE", on: [.container]),
        IoctlRow(SVFIO_IOMMU_DISABLE, "VFIO_IOMMU_DISABLE", on: [.container]),
        IoctlRow(SVFIO_IOMMU_DIRTY_PAGES, "VFIO_IOMMU_DIRTY_PAGES", on: [.container], .pointer { _, a in
            read((UInt32, UInt32).self, a).map {
                "{argsz=\($0.0), flags=\(F.flags(UInt64($0.1), [(UInt64(VFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START"), (UInt64(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), "STOP"), (UInt64(VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP), "GET_BITMAP")]))}"
            }
        }),
        // device (vfio_device_fops)
        IoctlRow(SVFIO_DEVICE_GET_INFO, "VFIO_DEVICE_GET_INFO", on: [.device], .pointer { _, a in
            read(UInt32.self, a).map { "{argsz=\($0)}" }
        }, output: { _, a in
            read((UInt32, UInt32, UInt32, UInt32).self, a).map { i in
                "{flags=\(F.flags(UInt64(i.1), IoctlDecoder.deviceInfoFlags)), num_regions=\(i.2), num_irqs=\(i.3)}"
            }
        }),
        IoctlRow(SVFIO_DEVICE_GET_REGION_INFO, "VFIO_DEVICE_GET_REGION_INFO", on: [.device], .pointer { t, a in
            read(PCIDeviceModel.RegionInfo.self, a).map { "{argsz=\($0.argsz), index=\(IoctlDecoder.regionIndex($0.index, t))}" }
        }, output: { _, a in
            read(PCIDeviceModel.RegionInfo.self, a).map { r in
                "{argsz=\(r.argsz), flags=\(F.flags(UInt64(r.flags), IoctlDecoder.regionInfoFlags)), size=\(F.hex(r.size)), offset=\(F.hex(r.offset)), cap_offset=\(r.capOffset)}"
            }
        }),
        IoctlRow(SVFIO_DEVICE_GET_IRQ_INFO, "VFIO_DEVICE_GET_IRQ_INFO", on: [.device], .pointer { _, a in
            read(PCIDeviceModel.IRQInfo.self, a).map { "{argsz=\($0.argsz), index=\(IoctlDecoder.irqIndex($0.index))}" }
        }, output: { _, a in
            read(PCIDeviceModel.IRQInfo.self, a).map { r in
                "{flags=\(F.flags(UInt64(r.flags), IoctlDecoder.irqInfoFlags)), count=\(r.count)}"
            }
        }),
        IoctlRow(SVFIO_DEVICE_SET_IRQS, "VFIO_DEVICE_SET_IRQS", on: [.device], .pointer { _, a in IoctlDecoder.irqSet(a) }),
        IoctlRow(SVFIO_DEVICE_RESET, "VFIO_DEVICE_RESET", on: [.device], .none),
        IoctlRow(SVFIO_DEVICE_GET_PCI_HOT_RESET_INFO, "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", on: [.device]),
        IoctlRow(SVFIO_DEVICE_PCI_HOT_RESET, "VFIO_DEVICE_PCI_HOT_RESET", on: [.device]),
        IoctlRow(SVFIO_DEVICE_QUERY_GFX_PLANE, "VFIO_DEVICE_QUERY_GFX_PLANE", on: [.device]),
        IoctlRow(SVFIO_DEVICE_GET_GFX_DMABUF, "VFIO_DEVICE_GET_GFX_DMABUF", on: [.device]),
        IoctlRow(SVFIO_DEVICE_IOEVENTFD, "VFIO_DEVICE_IOEVENTFD", on: [.device]),
        IoctlRow(SVFIO_DEVICE_FEATURE, "VFIO_DEVICE_FEATURE", on: [.device], .pointer { _, a in
            read((UInt32, UInt32).self, a).map { h in
                "{argsz=\(h.0), flags=\(F.flags(UInt64(h.1 & ~UInt32(VFIO_DEVICE_FEATURE_MASK)), [(UInt64(VFIO_DEVICE_FEATURE_GET), "GET"), (UInt64(VFIO_DEVICE_FEATURE_SET), "SET"), (UInt64(VFIO_DEVICE_FEATURE_PROBE), "PROBE")]))|\(h.1 & UInt32(VFIO_DEVICE_FEATURE_MASK))}"
            }
        }),
        // iommufd (iommufd_fops)
        IoctlRow(SVFIO_IOMMU_DESTROY, "IOMMU_DESTROY", on: [.iommufd], .pointer { _, a in
            read((UInt32, UInt32).self, a).map { "{size=\($0.0), id=\($0.1)}" }
        }),
        IoctlRow(SVFIO_IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC", on: [.iommufd], .pointer { _, a in
            read((UInt32, UInt32, UInt32).self, a).map { "{size=\($0.0), flags=\($0.1)}" }
        }, output: { _, a in
            read((UInt32, UInt32, UInt32).self, a).map { "{out_ioas_id=\($0.2)}" }
        }),
        IoctlRow(SVFIO_IOMMU_IOAS_ALLOW_IOVAS, "IOMMU_IOAS_ALLOW_IOVAS", on: [.iommufd]),
        IoctlRow(SVFIO_IOMMU_IOAS_COPY, "IOMMU_IOAS_COPY", on: [.iommufd]),
        IoctlRow(SVFIO_IOMMU_IOAS_IOVA_RANGES, "IOMMU_IOAS_IOVA_RANGES", on: [.iommufd]),
        IoctlRow(SVFIO_IOMMU_IOAS_MAP, "IOMMU_IOAS_MAP", on: [.iommufd]),
        IoctlRow(SVFIO_IOMMU_IOAS_UNMAP, "IOMMU_IOAS_UNMAP", on: [.iommufd]),
        IoctlRow(SVFIO_IOMMU_OPTION, "IOMMU_OPTION", on: [.iommufd]),
        IoctlRow(SVFIO_IOMMU_VFIO_IOAS, "IOMMU_VFIO_IOAS", on: [.iommufd], .pointer { _, a in
            read((UInt32, UInt32, UInt16, UInt16).self, a).map { v in
                let ops = ["GET", "SET", "CLEAR"]
                return "{size=\(v.0), ioas_id=\(v.1), op=\(Int(v.2) < ops.count ? ops[Int(v.2)] : "\(v.2)")}"
            }
        }, output: { _, a in
            guard let v = read((UInt32, UInt32, UInt16, UInt16).self, a), v.2 == 0 else { return nil }
            return "{ioas_id=\(v.1)}"
        }),
    ]

    /// The row for `number` issued on a file of `kind`: its own row (`exact`), or else the first
    /// row with that number, which gives the name only (its decoders apply to every kind of file
    /// only when it has no `files` list).
    static func row(_ kind: FileKind?, _ number: UInt32) -> (row: IoctlRow, exact: Bool)? {
        if let kind, let r = byFile[kind]?[number] { return (r, true) }
        guard let r = byNumber[number] else { return nil }
        return (r, r.files == nil)
    }

    private static let byFile: [FileKind: [UInt32: IoctlRow]] = {
        var t: [FileKind: [UInt32: IoctlRow]] = [:]
        for r in rows {
            for k in r.files ?? [.group, .container, .iommufd, .device, .other] where t[k]?[r.number] == nil {
                t[k, default: [:]][r.number] = r
            }
        }
        return t
    }()

    private static let byNumber: [UInt32: IoctlRow] = {
        var t: [UInt32: IoctlRow] = [:]
        for r in rows where t[r.number] == nil { t[r.number] = r }
        return t
    }()
}
