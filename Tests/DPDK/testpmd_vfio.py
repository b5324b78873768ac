#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""DPDK 22.11's dpdk-testpmd probes the model's personalities (issue 13, item 4).

NOT YET IN Scripts/test.sh: it needs two interposer additions of issue 13 (item 1, the
/sys/module/vfio* answers; item 2, mmap with MAP_FIXED over a client reservation), which wait for
the interposer rewrite (branch s14preload). Until then the positive cases fail with testpmd's
"Module /sys/module/vfio not found!" (see Tests/DPDK/README.md).

Runs, under libswiftvfio-preload.so with the same sysfs-shaped tree as SYSFS_PCI_DEVICES and
SWIFTVFIO_TOPOLOGY:

    dpdk-testpmd --no-huge -m 64 --no-shconf --iova-mode=va -a <device> \
      -- -i --disable-device-start --total-num-mbufs=2048      (stdin: "show port summary all", "quit")

Checks per positive case (plain 177d:0001 and transitional virtio-net 1af4:1000, each in type1
mode and in no-IOMMU mode, where the tree's group is named vfio-noiommu and the node is
/dev/vfio/noiommu-5): testpmd's own "Probe PCI driver: <pmd> (<ids>)" line; the IOMMU type EAL
reports ("Type 1" / "No-IOMMU"); for virtio-net the port summary line with net_virtio and the
topology's MAC; exit 0; the trace's exit_files line shows every model file released.
Negative cases: a group that is not viable (a second member bound to e1000e), a group with no
VFIO device (the model's topology has the device unbound), and the module check failing when no
model is loaded (no SWIFTVFIO_TOPOLOGY).

    testpmd_vfio.py BUILD_DIR OUT_DIR
"""
import os
import re
import shutil
import subprocess
import sys
from collections import Counter

TESTPMD = os.environ.get("TESTPMD", "dpdk-testpmd")
MAC = "02:5e:13:00:00:02"
failures = []
# Trace lines may start with "[pid N tid N] " (docs/TRACE.md).
TRACE_PREFIX = re.compile(r"^\[pid \d+ tid \d+\] ")


def trace_lines(text):
    return [TRACE_PREFIX.sub("", l) for l in text.splitlines()]


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
        if detail:
            print("    " + detail.replace("\n", "\n    "))
    return ok


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_tree(root, name, vendor, device, resources, extra, group=5, noiommu=False, driver="vfio-pci",
              second_member_driver=None):
    """A sysfs-shaped tree: DPDK's scan reads vendor/device/subsystem ids, class, resource (six
    lines at least), numa_node, the driver and iommu_group links; the model reads the same."""
    shutil.rmtree(root, ignore_errors=True)
    members = [(name, driver)] + ([("0000:00:07.0", second_member_driver)] if second_member_driver else [])
    for member, drv in members:
        dev = os.path.join(root, "bus/pci/devices", member)
        os.makedirs(dev)
        os.makedirs(os.path.join(root, "kernel/iommu_groups/%d/devices" % group), exist_ok=True)
        os.symlink("../../../../bus/pci/devices/" + member,
                   os.path.join(root, "kernel/iommu_groups/%d/devices" % group, member))
        os.symlink("../../../../kernel/iommu_groups/%d" % group, os.path.join(dev, "iommu_group"))
        if drv:
            os.symlink("../../../../bus/pci/drivers/" + drv, os.path.join(dev, "driver"))
        lines = resources + ["0x0 0x0 0x0"] * (7 - len(resources))
        files = {"vendor": "0x%04x" % vendor, "device": "0x%04x" % device, "subsystem_vendor": "0x%04x" % vendor,
                 "subsystem_device": "0x0001", "class": "0x020000", "numa_node": "-1", "resource": "\n".join(lines)}
        files.update(extra)
        for f, text in files.items():
            write(os.path.join(dev, f), text + "\n")
    if noiommu:
        write(os.path.join(root, "kernel/iommu_groups/%d/name" % group), "vfio-noiommu\n")
        write(os.path.join(root, "module/vfio/parameters/enable_unsafe_noiommu_mode"), "Y\n")


PLAIN = (0x177d, 0x0001, ["0x00000000fe000000 0x00000000fe0fffff 0x000000000014220c"], {"msi": "0"})
VIRTIO = (0x1af4, 0x1000, ["0x000000000000c040 0x000000000000c05f 0x0000000000040101",
                           "0x00000000febd1000 0x00000000febd1fff 0x0000000000040200", "0x0 0x0 0x0", "0x0 0x0 0x0",
                           "0x00000000fe000000 0x00000000fe003fff 0x000000000014220c"],
          {"msi": "0", "msix": "3", "msix_bar": "1", "mac": MAC})


def run(build, out, label, tree, topology, name):
    trace = os.path.join(out, label + ".trace")
    if os.path.exists(trace):
        os.unlink(trace)   # the trace appends
    env = dict(os.environ)
    env.update(LD_PRELOAD=os.path.join(build, "libswiftvfio-preload.so"), SWIFTVFIO_TRACE=trace,
               SYSFS_PCI_DEVICES=os.path.join(tree, "bus/pci/devices"))
    env.pop("SWIFTVFIO_TOPOLOGY", None)
    if topology:
        env["SWIFTVFIO_TOPOLOGY"] = topology
    argv = [TESTPMD, "--no-huge", "-m", "64", "--no-shconf", "--iova-mode=va", "-a", name, "--",
            "-i", "--disable-device-start", "--total-num-mbufs=2048"]
    p = subprocess.run(argv, env=env, input=b"show port summary all\nquit\n", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300, cwd=out)
    output = p.stdout.decode(errors="replace")
    write(os.path.join(out, label + ".out"), output)
    trace_text = open(trace).read() if os.path.exists(trace) else ""
    return p.returncode, output, trace_text


def ioctl_counts(trace):
    return Counter(m.group(1) for m in re.finditer(r"^ioctl\(\d+, (VFIO_[A-Z_0-9]+)", "\n".join(trace_lines(trace)), re.M))


def released(label, trace):
    lines = [l for l in trace_lines(trace) if l.startswith("exit_files()")]
    check(len(lines) == 1 and lines[0].endswith("{files=0, fds=0}"), "%s: every model file released at exit" % label,
          "\n".join(lines) or "(no exit_files line)")


def main():
    build, out = sys.argv[1:3]
    os.makedirs(out, exist_ok=True)
    cases = [("plain-type1", PLAIN, "0000:00:06.0", False, "event_skeleton_pci (177d:0001)", "Type 1"),
             ("virtio-type1", VIRTIO, "0000:00:05.0", False, "net_virtio (1af4:1000)", "Type 1"),
             ("plain-noiommu", PLAIN, "0000:00:06.0", True, "event_skeleton_pci (177d:0001)", "No-IOMMU"),
             ("virtio-noiommu", VIRTIO, "0000:00:05.0", True, "net_virtio (1af4:1000)", "No-IOMMU")]
    for label, (vendor, device, resources, extra), name, noiommu, pmd, iommu in cases:
        tree = os.path.join(out, label + "-tree")
        make_tree(tree, name, vendor, device, resources, extra, noiommu=noiommu)
        rc, output, trace = run(build, out, label, tree, tree, name)
        probe = [l for l in output.splitlines() if "Probe PCI driver" in l]
        check(rc == 0, "%s: testpmd exits 0 (got %d)" % (label, rc), output[-1500:])
        check(probe == ["EAL: Probe PCI driver: %s device: %s (socket -1)" % (pmd, name)],
              "%s: testpmd probes with %s" % (label, pmd), "\n".join(probe) or output[-1500:])
        check("EAL: Using IOMMU type %s" % ("1 (Type 1)" if iommu == "Type 1" else "8 (No-IOMMU)") in output,
              "%s: EAL uses IOMMU type %s" % (label, iommu))
        if device == 0x1000:
            port = [l for l in output.splitlines() if "net_virtio" in l and l.startswith("0 ")]
            check(len(port) == 1 and MAC.upper() in port[0].upper(),
                  "%s: port 0 is net_virtio with the topology's MAC %s" % (label, MAC), "\n".join(port))
        released(label, trace)
        for l in probe:
            print("    " + l)
        print("    ioctls: " + ", ".join("%s %d" % kv for kv in sorted(ioctl_counts(trace).items())))

    # Negative cases.
    tree = os.path.join(out, "not-viable-tree")
    make_tree(tree, "0000:00:05.0", *VIRTIO[:4], second_member_driver="e1000e")
    rc, output, trace = run(build, out, "not-viable", tree, tree, "0000:00:05.0")
    check("not viable" in output, "not-viable: DPDK reports the group not viable", output[-1500:])
    check("Probe PCI driver" not in output or "cannot be used" in output, "not-viable: the port is not probed")
    released("not-viable", trace)

    scan = os.path.join(out, "no-vfio-device-tree")
    make_tree(scan, "0000:00:05.0", *VIRTIO[:4])
    model = os.path.join(out, "no-vfio-device-model")
    make_tree(model, "0000:00:05.0", *VIRTIO[:4], driver=None)
    rc, output, trace = run(build, out, "no-vfio-device", scan, model, "0000:00:05.0")
    check("Failed to open VFIO group 5" in output or "not managed by VFIO driver" in output,
          "no-vfio-device: DPDK cannot open the group", output[-1500:])
    released("no-vfio-device", trace)

    rc, output, trace = run(build, out, "no-model", scan, None, "0000:00:05.0")
    check("Module /sys/module/vfio not found!" in output and "VFIO modules not loaded" in output,
          "no-model: the module check fails with no model loaded", output[-1500:])

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all DPDK checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
