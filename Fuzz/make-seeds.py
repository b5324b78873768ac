#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the hand-made seeds of Fuzz/corpus/ops and Fuzz/corpus/topology.

The ops format is FuzzOps's (Sources/VFIOFuzzSupport/FuzzOps.swift): byte 0 the configuration,
then per operation an opcode (value mod 16) and its operands. Seeds are named seed-*; what a
fuzzing run adds to the corpus keeps libFuzzer's hash names. Run from the repository root.
"""
import os
import struct

OPEN, CLOSE, DUP, IOCTL, SETC, UNSETC, SETIOMMU, GETDEV, SETKVM, PROBE, REMOVE, KAPI, DMA, DEVIO, FAULT, KNOB = range(16)

# Paths FuzzOps offers, in order: fixed ones, then the groups by minor.
P_VFIO, P_IOMMU, P_99, P_NOIOMMU0, P_DIR, P_26, P_27, P_28, P_MDEV, P_NOIOMMU = range(10)
# Device names, in FuzzRun.deviceNames order.
N_26, N_27, N_28A, N_28B, N_NOIOMMU, N_MDEV, N_TOKEN = range(7)

FAULT_POINTS = ["groupAlloc", "groupMinor", "groupCdevAdd", "fakeIOMMUGroupAlloc", "fakeIOMMUGroupAddDevice",
                "deviceIndex", "deviceAdd", "deviceSetAlloc", "deviceAlloc", "nameCopy", "fdReserve",
                "anonInodeFile", "driverModuleGet", "containerAlloc", "iommufdAlloc", "backendOpen",
                "backendAttach", "ownershipClaim", "compatIOASAlloc", "fileAlloc"]


class Seq:
    def __init__(self, config=0):
        self.b = bytearray([config])

    def op(self, code, *operands):
        self.b.append(code)
        self.b.extend(operands)
        return self

    def open(self, path, cloexec=False):
        return self.op(OPEN, path, 1 if cloexec else 0)

    def ioctl(self, slot, cmd, kind=0, payload=b"", value=0):
        """cmd: a VFIO number 0x3B64..0x3B8B (selector byte), kind: 0 NULL, 1 small, 2 value, 3 buffer, 4 buffer at a page edge."""
        self.op(IOCTL, slot, cmd - 0x3B64, kind)
        if kind == 1:
            self.b.extend(struct.pack("<H", value))
        elif kind == 2:
            self.b.extend(struct.pack("<Q", value))
        elif kind in (3, 4):
            self.b.append(len(payload))
            self.b.extend(payload)
        return self

    def dma(self, slot, kind, iova_pages, size_pages, page=0, flags=3, argsz=None):
        k = kind | (0x40 if argsz is not None else 0)
        self.op(DMA, slot, k)
        self.b.extend(struct.pack("<H", iova_pages))
        self.b.extend([0, size_pages, page, flags])
        if argsz is not None:
            self.b.append(argsz)
        return self

    def fault(self, point, nth=1, errno_index=0):
        return self.op(FAULT, FAULT_POINTS.index(point), (nth - 1) | (errno_index << 2))

    def bytes(self):
        return bytes(self.b)


def u32s(*v):
    return struct.pack("<%dI" % len(v), *v)


def container_flow(config=0, group=P_26, name=N_26):
    # vfio.rst: container, extension checks, group status, attach, IOMMU, device fd, device info.
    s = Seq(config).open(P_VFIO)                              # slot 0
    s.ioctl(0, 0x3B64).ioctl(0, 0x3B65, 2, value=1).ioctl(0, 0x3B65, 2, value=3)
    s.open(group)                                             # slot 1
    s.ioctl(1, 0x3B67, 3, u32s(8, 0))                         # GET_STATUS
    s.op(SETC, 1, 0).op(SETIOMMU, 0, 3)
    s.ioctl(0, 0x3B70, 3, u32s(24, 0, 0, 0, 0, 0))            # type1 GET_INFO
    s.op(GETDEV, 1, name)                                     # slot 2
    s.ioctl(2, 0x3B6B, 3, u32s(16, 0, 0, 0))                  # DEVICE_GET_INFO
    s.ioctl(2, 0x3B6C, 3, u32s(32, 0, 7, 0) + bytes(16))      # GET_REGION_INFO (config space)
    s.ioctl(2, 0x3B6D, 3, u32s(16, 0, 0, 0))                  # GET_IRQ_INFO
    s.ioctl(2, 0x3B6F)                                        # RESET
    s.op(CLOSE, 2).op(UNSETC, 1).op(CLOSE, 1).op(CLOSE, 0)
    return s


def seeds():
    out = {}
    out["container-flow"] = container_flow()
    out["container-flow-group28"] = container_flow(group=P_28, name=N_28B)
    # iommufd instead of the container.
    s = Seq().open(P_IOMMU).open(P_26).op(SETC, 1, 0).op(GETDEV, 1, N_26)
    s.ioctl(0, 0x3B88, 3, u32s(12, 0, 0))                     # IOMMU_VFIO_IOAS GET
    s.ioctl(0, 0x3B81, 3, u32s(12, 0, 0))                     # IOMMU_IOAS_ALLOC
    s.ioctl(0, 0x3B65, 2, value=4).op(SETIOMMU, 0, 3)
    s.op(CLOSE, 1).op(CLOSE, 0).op(CLOSE, 0)
    out["iommufd-flow"] = s
    # No-IOMMU mode: the no-IOMMU group in a container, then through an iommufd.
    s = Seq(4).open(P_NOIOMMU).open(P_VFIO).op(SETC, 0, 1).op(SETIOMMU, 1, 8).op(GETDEV, 0, N_NOIOMMU)
    s.op(CLOSE, 2).op(UNSETC, 0).open(P_IOMMU).op(SETC, 0, 2).op(GETDEV, 0, N_NOIOMMU)
    out["noiommu-flow"] = s
    out["noiommu-without-rawio"] = Seq(4 | 8).open(P_NOIOMMU).open(P_VFIO).op(SETC, 0, 1).op(KNOB, 1).op(SETC, 0, 1)
    # The emulated device through an iommufd and through a container.
    s = Seq().open(P_MDEV).open(P_IOMMU).op(SETC, 0, 1).op(GETDEV, 0, N_MDEV).op(UNSETC, 0)
    s.open(P_VFIO).op(SETC, 0, 3).op(SETIOMMU, 3, 1).op(GETDEV, 0, N_MDEV)
    out["emulated-flow"] = s
    # Two groups in one container, DMA maps and unmaps, dirty tracking.
    s = Seq().open(P_VFIO).open(P_26).open(P_28).op(SETC, 1, 0).op(SETC, 2, 0).op(SETIOMMU, 0, 3)
    s.dma(0, 0, 16, 4).dma(0, 0, 32, 1, page=2, flags=1).dma(0, 2, 0, 0, flags=1).dma(0, 1, 16, 4)
    s.dma(0, 1, 0, 0, flags=2).dma(0, 3, 0, 0, argsz=200).dma(0, 2, 0, 0, flags=2)
    s.op(UNSETC, 1).op(GETDEV, 2, N_28A).op(UNSETC, 2)
    out["two-groups-dma"] = s
    # KVM: set before the first open, a dying VM, set to NULL.
    s = Seq().open(P_26).open(P_VFIO).op(SETC, 0, 1).op(SETIOMMU, 1, 1).op(SETKVM, 0, 0).op(GETDEV, 0, N_26)
    s.op(GETDEV, 0, N_26).op(CLOSE, 2).op(CLOSE, 2).op(SETKVM, 0, 2).op(GETDEV, 0, N_26).op(SETKVM, 0, 3)
    out["kvm"] = s
    # Removing devices whose fds are open; probes of every kind.
    s = Seq().open(P_28).open(P_VFIO).op(SETC, 0, 1).op(SETIOMMU, 1, 3).op(GETDEV, 0, N_28A).op(REMOVE, 2)
    s.op(GETDEV, 0, N_28B).op(REMOVE, 2).op(GETDEV, 0, N_28B).ioctl(0, 0x3B67, 3, u32s(8, 0))
    out["remove-open"] = s
    s = Seq(4)
    for kind in range(6):
        s.op(PROBE, kind, kind)
    s.open(9).open(10).open(11).op(REMOVE, 6).op(REMOVE, 6)
    out["probes"] = s
    # Faults under ordinary flows.
    for i, (point, flow) in enumerate([("fdReserve", "open"), ("ownershipClaim", "setc"), ("backendAttach", "setiommu"),
                                       ("anonInodeFile", "getdev"), ("driverModuleGet", "getdev"),
                                       ("groupAlloc", "probe"), ("compatIOASAlloc", "iommufd")]):
        s = Seq().open(P_VFIO).open(P_26).fault(point)
        if flow == "iommufd":
            s.open(P_IOMMU).op(SETC, 1, 2).op(SETC, 1, 2)
        elif flow == "probe":
            s.op(PROBE, 0, 1).op(PROBE, 3, 0)
        else:
            s.open(P_28).op(SETC, 1, 0).op(SETC, 2, 0).op(SETIOMMU, 0, 3).op(GETDEV, 1, N_26).op(GETDEV, 1, N_26)
        out["fault-%d-%s" % (i, point)] = s
    # Knobs: backend unloading, driver unloading, kernel driver rebind, domain conflict.
    s = Seq().open(P_VFIO).open(P_27).op(SETC, 1, 0).op(KNOB, 4).op(SETC, 1, 0).op(KNOB, 4)
    s.op(KNOB, 3).op(SETIOMMU, 0, 3).op(KNOB, 3).op(SETIOMMU, 0, 3).op(KNOB, 2).op(GETDEV, 1, N_27)
    s.op(KNOB, 2 + 0x80).op(KNOB, 5 | 0x80).open(P_26).op(SETC, 2, 0)
    out["knobs"] = s
    # The file kAPI, reopen, dup, SPAPR's counted iommu_group.
    s = Seq(16).open(P_26).op(DUP, 0, 0x45).op(KAPI, 0, 0x80).op(KAPI, 1, 0).open(P_VFIO).op(KAPI, 2, 1)
    s.op(DEVIO, 0, 0, 16, 0, 0, 0, 0)
    out["kapi"] = s
    # Illegal arguments: NULL, small pointers, a page edge, foreign fds, unknown commands.
    s = Seq().open(P_26).open(P_VFIO).ioctl(0, 0x3B67).ioctl(0, 0x3B67, 1, value=0x20).ioctl(0, 0x3B68, 4, b"\x07")
    s.ioctl(0, 0x3B6A, 4, b"0000:06:0d").ioctl(1, 0x3B71, 4, u32s(32, 3)).ioctl(0, 0x3B7F).op(SETC, 0, 9).op(CLOSE, 9)
    s.ioctl(1, 0x3B72, 3, u32s(48, 1) + bytes(16) + struct.pack("<QQ", 4096, 8))
    out["illegal"] = s
    # Configurations: no iommufd, no no-IOMMU support, no KVM.
    out["config-no-iommufd"] = container_flow(1).op(OPEN, P_IOMMU, 0)
    out["config-no-noiommu"] = container_flow(2).op(OPEN, P_NOIOMMU0, 0)
    out["config-no-kvm"] = Seq(32).open(P_26).open(P_VFIO).op(SETC, 0, 1).op(SETIOMMU, 1, 3).op(SETKVM, 0, 0).op(GETDEV, 0, N_26)
    return {k: v.bytes() for k, v in out.items()}


TOPOLOGIES = {
    "default": None,  # filled from the built-in default below
    "design-example": """{
  "config": { "noiommu": false, "spapr_tce_iommu": false, "iommufd": true },
  "iommu_groups": [
    { "id": 26, "devices": [
      { "name": "0000:06:0d.0", "driver": "vfio-pci",
        "cache_coherency": true, "enforce_cache_coherency": true } ] }
  ],
  "noiommu_devices": [ { "name": "0000:09:00.0", "driver": "vfio-pci" } ],
  "emulated_devices": [ { "name": "mdev-0" } ]
}""",
    "mixed": """{ "config": { "noiommu": true, "iommufd": true },
  "iommu_groups": [
    { "id": 3, "devices": [ { "name": "0000:01:00.0", "driver": "vfio-pci" }, { "name": "0000:01:00.1", "driver": "vfio-pci" },
                             { "name": "0000:01:00.2", "driver": "e1000e" } ] },
    { "id": 4, "devices": [ { "name": "0000:02:00.0", "driver": "vfio-pci", "cache_coherency": false },
                             { "name": "0000:02:00.1", "driver": "pci-stub" }, { "name": "0000:02:00.2", "driver": "pcieport" } ] },
    { "id": 0, "devices": [] } ],
  "noiommu_devices": [ { "name": "0000:09:00.0", "driver": "vfio-pci" }, { "name": "0000:09:00.1" } ],
  "emulated_devices": [ { "name": "mdev-0" }, { "name": "mdev-1" } ] }""",
    "noiommu-off": """{"noiommu_devices":[{"name":"a","driver":"vfio-pci"}],"iommu_groups":[{"id":1,"devices":[{"name":"b","driver":"vfio"}]}]}""",
    "spapr-no-iommufd": """{"config":{"spapr_tce_iommu":true,"iommufd":false},"iommu_groups":[{"id":2147483647,"devices":[{"name":"x","driver":"vfio-pci","enforce_cache_coherency":false}]}]}""",
    "empty": "{}",
    "empty-sections": """{"config":{},"iommu_groups":[],"noiommu_devices":[],"emulated_devices":[]}""",
    "unicode": """{"iommu_groups":[{"id":7,"devices":[{"name":"d\\u00e9v\\u0000x","driver":"vfio-pci"},{"name":"\u00e9t\u00e9","driver":null}]}]}""",
    "err-unknown-key": """{"iommu_groups":[{"id":1,"devices":[],"extra":1}]}""",
    "err-duplicate-id": """{"iommu_groups":[{"id":1,"devices":[]},{"id":1,"devices":[]}]}""",
    "err-duplicate-name": """{"iommu_groups":[{"id":1,"devices":[{"name":"a"}]}],"emulated_devices":[{"name":"a"}]}""",
    "err-wrong-type": """{"config":{"noiommu":"yes"}}""",
    "err-negative-id": """{"iommu_groups":[{"id":-1,"devices":[]}]}""",
    "err-big-number": """{"iommu_groups":[{"id":1e400,"devices":[]}]}""",
    "err-syntax": """{"iommu_groups":[{"id":1,"devices":[}""",
    "err-trailing": """{} {}""",
    "err-not-object": """[1, 2, 3]""",
    "err-deep": "[" * 200 + "]" * 200,
    "err-bad-utf8": None,
}


def main():
    root = os.path.dirname(os.path.abspath(__file__))
    ops_dir = os.path.join(root, "corpus", "ops")
    top_dir = os.path.join(root, "corpus", "topology")
    os.makedirs(ops_dir, exist_ok=True)
    os.makedirs(top_dir, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(ops_dir, "seed-" + name), "wb") as f:
            f.write(data)
    default = open(os.path.join(root, "..", "Sources", "VFIO", "Topology", "DefaultTopology.swift")).read()
    start = default.index('builtInDefaultJSON = """') + len('builtInDefaultJSON = """')
    TOPOLOGIES["default"] = "\n".join(l[8:] for l in default[start:default.index('"""', start)].strip("\n").split("\n"))
    for name, text in TOPOLOGIES.items():
        data = b'{"emulated_devices":[{"name":"\xff\xfe"}]}' if text is None else text.encode()
        with open(os.path.join(top_dir, "seed-" + name + ".json"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
