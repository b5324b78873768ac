#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""DPDK 22.11's dpdk-testpmd probes the model's personalities (issue 13, item 4).

Run by Scripts/test-dpdk.sh (part of Scripts/test.sh). Runs, under libswiftvfio-preload.so with the
same sysfs-shaped tree as SYSFS_PCI_DEVICES and SWIFTVFIO_TOPOLOGY:

    dpdk-testpmd --no-huge -m 64 --no-shconf --iova-mode=va -a <device> \
      -- -i --disable-device-start --total-num-mbufs=2048      (stdin: "show port summary all", "quit")

Checks per positive case (plain 177d:0001 and transitional virtio-net 1af4:1000, each in type1
mode and in no-IOMMU mode, where the tree's group is named vfio-noiommu and the node is
/dev/vfio/noiommu-5): testpmd's own "Probe PCI driver: <pmd> (<ids>)" line; the IOMMU type EAL
reports ("Type 1" / "No-IOMMU"); for virtio-net the port summary line with net_virtio and the
topology's MAC; exit 0; the BARs DPDK maps land where it asked (MAP_FIXED over its own
reservation, seen in the trace); the trace's exit_files line shows every model file released.

No-IOMMU mode: the model's parameter file reads "Y", and with "Y" DPDK insists on IOVA-as-PA for
a VFIO device, which --no-huge cannot give: one run checks exactly that refusal (so DPDK did read
the model's "Y"); the probe runs stack Tests/DPDK/noiommu_param_n.so in front of the interposer,
which checks the model says "Y" on each open and shows DPDK "N" (its stderr line is checked too).

Negative cases: a group that is not viable (a second member bound to e1000e), a group with no
VFIO device (the model's topology has the device unbound), and the module check failing when no
model is loaded (SWIFTVFIO_TOPOLOGY names a file that is not there: the interposer says why and
the /sys/module/vfio* paths are the host's, which has none).

    testpmd_vfio.py BUILD_DIR OUT_DIR FIXTURE_SO
"""
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter

sys.dont_write_bytecode = True  # no __pycache__ left in the clone
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import check, failures, trace_lines, write  # noqa: E402  (Tests/harness.py)

TESTPMD = os.environ.get("TESTPMD", "dpdk-testpmd")
MAC = "02:5e:13:00:00:02"
timings = []


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


def run(build, out, label, tree, topology, name, front=None, eal=()):
    """testpmd under the interposer (with `front` stacked before it); its output and trace."""
    trace = os.path.join(out, label + ".trace")
    if os.path.exists(trace):
        os.unlink(trace)   # the trace appends
    env = dict(os.environ)
    preload = os.path.join(build, "libswiftvfio-preload.so")
    env.update(LD_PRELOAD=(front + " " + preload) if front else preload, SWIFTVFIO_TRACE=trace,
               SYSFS_PCI_DEVICES=os.path.join(tree, "bus/pci/devices"))
    env.pop("SWIFTVFIO_TOPOLOGY", None)
    if topology:
        env["SWIFTVFIO_TOPOLOGY"] = topology
    argv = [TESTPMD, "--no-huge", "-m", "64", "--no-shconf", "--iova-mode=va", *eal, "-a", name, "--",
            "-i", "--disable-device-start", "--total-num-mbufs=2048"]
    started = time.monotonic()
    p = subprocess.run(argv, env=env, input=b"show port summary all\nquit\n", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300, cwd=out)
    timings.append((label, time.monotonic() - started))
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


def placed_where_asked(label, trace):
    """Every BAR mmap in the trace was MAP_FIXED (DPDK's reservation) and returned that address."""
    maps = [l for l in trace_lines(trace) if l.startswith("mmap(")]
    bad = [l for l in maps if not re.search(r"MAP_SHARED\|MAP_FIXED at (0x[0-9a-f]+)\) = \1$", l)]
    check(maps and not bad, "%s: each BAR mmap is MAP_FIXED over DPDK's reservation, placed there (%d)" % (label, len(maps)),
          "\n".join(bad or ["(no mmap in the trace)"]))


def main():
    build, out, fixture = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    cases = [("plain-type1", PLAIN, "0000:00:06.0", False, "event_skeleton_pci (177d:0001)", "Type 1"),
             ("virtio-type1", VIRTIO, "0000:00:05.0", False, "net_virtio (1af4:1000)", "Type 1"),
             ("plain-noiommu", PLAIN, "0000:00:06.0", True, "event_skeleton_pci (177d:0001)", "No-IOMMU"),
             ("virtio-noiommu", VIRTIO, "0000:00:05.0", True, "net_virtio (1af4:1000)", "No-IOMMU")]
    for label, (vendor, device, resources, extra), name, noiommu, pmd, iommu in cases:
        tree = os.path.join(out, label + "-tree")
        make_tree(tree, name, vendor, device, resources, extra, noiommu=noiommu)
        rc, output, trace = run(build, out, label, tree, tree, name, front=fixture if noiommu else None)
        if noiommu:
            check("noiommu_param_n: the model says Y; DPDK is shown N" in output,
                  "%s: the model's no-IOMMU parameter reads Y" % label,
                  "\n".join(l for l in output.splitlines() if "noiommu_param_n" in l) or "(the fixture never saw an open)")
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
        placed_where_asked(label, trace)
        released(label, trace)
        for l in probe:
            print("    " + l)
        print("    ioctls: " + ", ".join("%s %d" % kv for kv in sorted(ioctl_counts(trace).items())))

    # The model's "Y" shown to DPDK as it is: DPDK reads it and refuses VA mode for the device, as on
    # a real kernel in no-IOMMU mode.
    tree = os.path.join(out, "virtio-noiommu-tree")
    rc, output, trace = run(build, out, "noiommu-as-is", tree, tree, "0000:00:05.0")
    check("Expecting 'PA' IOVA mode but current mode is 'VA', not initializing" in output,
          "noiommu-as-is: DPDK reads the model's Y and asks for IOVA-as-PA", output[-1500:])
    released("noiommu-as-is", trace)

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

    missing = os.path.join(out, "no-such-topology.json")
    # (EAL says why it skips VFIO at debug level only.)
    rc, output, trace = run(build, out, "no-model", scan, missing, "0000:00:05.0", eal=("--log-level=lib.eal:debug",))
    check("swiftvfio-preload: SWIFTVFIO_TOPOLOGY: %s" % missing in output,
          "no-model: the interposer says why no model is loaded", output[-1500:])
    check("Module /sys/module/vfio not found!" in output and "VFIO modules not loaded" in output
          and "VFIO support initialized" not in output,
          "no-model: the module check fails with no model loaded", output[-1500:])
    check("Probe PCI driver" not in output or "cannot be used" in output, "no-model: the port is not probed")

    print("run time per testpmd (s): " + ", ".join("%s %.2f" % t for t in timings))

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all DPDK checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
