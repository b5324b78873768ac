#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A Linux guest's own virtio drivers bind the model's virtio-net personality (issue 13, item 5).

Boots Debian 12's 6.12 cloud kernel under QEMU 7.2 (TCG, no KVM) with the model's device passed
through by `-device vfio-pci,sysfsdev=<tree>/bus/pci/devices/0000:00:05.0` under
libswiftvfio-preload.so, with a busybox initramfs whose /init (Tests/Guest/init.sh) loads
failover, net_failover and virtio_net (virtio_pci is built into that kernel) and prints what
bound. The device's registers with side effects are trapped (its structures' BAR has no MMAP
flag), so every access the guest makes reaches the model through QEMU's pread/pwrite.

Checks, per case:
  modern (1af4:1041, structures in a 64-bit BAR4), transitional (1af4:1000, plus the legacy I/O
  BAR0; Linux takes the modern interface): the guest's virtio-pci binds the function, virtio_net
  binds virtio0, eth0 has the topology's MAC; QEMU exits 0; the trace's exit_files line shows
  every model file released.
  plain (the same 1af4:1041 ids with `personality` = plain): no virtio capabilities, so the
  guest's virtio-pci does not bind and no eth0 appears (the personality is what the driver uses).

    virtio_guest.py BUILD_DIR OUT_DIR KERNEL_DIR BUSYBOX

KERNEL_DIR holds vmlinuz and failover.ko, net_failover.ko, virtio_net.ko (Scripts/test-guest.sh
unpacks them from the Debian package). Prints the guest's interface lines and the time of a boot.
"""
import gzip
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the clone
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import check, failures, trace_lines, write  # noqa: E402  (Tests/harness.py)

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
DEVICE = "0000:00:05.0"
MAC = "02:5e:13:00:00:01"
HERE = os.path.dirname(os.path.abspath(__file__))


def make_tree(root, device_id, personality=None):
    """A sysfs-shaped tree with one vfio-pci function in IOMMU group 5, laid out like QEMU's
    virtio-net: MSI-X (3 vectors) in BAR1, a 64-bit prefetchable BAR4 of 16 KiB, and for the
    transitional id an I/O BAR0 of 32 bytes."""
    shutil.rmtree(root, ignore_errors=True)
    dev = os.path.join(root, "bus/pci/devices", DEVICE)
    os.makedirs(os.path.join(root, "kernel/iommu_groups/5/devices"))
    os.makedirs(dev)
    os.symlink("../../../../bus/pci/devices/" + DEVICE, os.path.join(root, "kernel/iommu_groups/5/devices", DEVICE))
    os.symlink("../../../../kernel/iommu_groups/5", os.path.join(dev, "iommu_group"))
    os.symlink("../../../../bus/pci/drivers/vfio-pci", os.path.join(dev, "driver"))
    io = "0x000000000000c040 0x000000000000c05f 0x0000000000040101" if device_id == 0x1000 else "0x0 0x0 0x0"
    lines = [io, "0x00000000febd1000 0x00000000febd1fff 0x0000000000040200", "0x0 0x0 0x0", "0x0 0x0 0x0",
             "0x00000000fe000000 0x00000000fe003fff 0x000000000014220c", "0x0 0x0 0x0", "0x0 0x0 0x0"]
    files = {"vendor": "0x1af4", "device": "0x%04x" % device_id, "class": "0x020000", "msi": "0",
             "msix": "3", "msix_bar": "1", "mac": MAC, "resource": "\n".join(lines)}
    if personality:
        files["personality"] = personality
    for name, text in files.items():
        write(os.path.join(dev, name), text + "\n")


def make_initrd(path, kernel_dir, busybox):
    """A newc cpio archive (gzip) with /init, busybox and the three modules, written directly."""
    entries = [("bin", None, 0o40755), ("lib", None, 0o40755), ("proc", None, 0o40755),
               ("sys", None, 0o40755), ("dev", None, 0o40755)]
    with open(os.path.join(HERE, "init.sh"), "rb") as f:
        entries.append(("init", f.read(), 0o100755))
    with open(busybox, "rb") as f:
        entries.append(("bin/busybox", f.read(), 0o100755))
    for m in ("failover", "net_failover", "virtio_net"):
        with open(os.path.join(kernel_dir, m + ".ko"), "rb") as f:
            entries.append(("lib/%s.ko" % m, f.read(), 0o100644))
    out = bytearray()

    def pad(n):
        return b"\0" * ((4 - n % 4) % 4)
    for ino, (name, data, mode) in enumerate(entries + [("TRAILER!!!", None, 0)], start=1):
        body = data or b""
        nameb = name.encode() + b"\0"
        header = "070701" + "".join("%08X" % v for v in (
            ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(nameb), 0))
        out += header.encode() + nameb + pad(110 + len(nameb)) + body + pad(len(body))
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes(out))


def boot(build, out, label, tree, kernel_dir, initrd):
    trace = os.path.join(out, label + ".trace")
    env = dict(os.environ)
    env.update(LD_PRELOAD=os.path.join(build, "libswiftvfio-preload.so"), SWIFTVFIO_TOPOLOGY=tree,
               SWIFTVFIO_TRACE=trace)
    argv = [QEMU, "-nodefaults", "-machine", "q35", "-accel", "tcg", "-m", "256", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", os.path.join(kernel_dir, "vmlinuz"),
            "-initrd", initrd, "-append", "console=ttyS0 quiet loglevel=4 panic=-1",
            "-device", "vfio-pci,sysfsdev=%s/bus/pci/devices/%s" % (tree, DEVICE)]
    start = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    elapsed = time.monotonic() - start
    console = p.stdout.decode(errors="replace")
    write(os.path.join(out, label + ".console"), console)
    with open(trace) as f:
        trace_text = f.read()
    return p.returncode, console, trace_text, elapsed


def main():
    build, out, kernel_dir, busybox = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    initrd = os.path.join(out, "initrd.gz")
    make_initrd(initrd, kernel_dir, busybox)
    cases = [("modern", 0x1041, None, True), ("transitional", 0x1000, None, True), ("plain", 0x1041, "plain", False)]
    for label, device_id, personality, binds in cases:
        tree = os.path.join(out, label + "-tree")
        make_tree(tree, device_id, personality)
        rc, console, trace, elapsed = boot(build, out, label, tree, kernel_dir, initrd)
        lines = [l.strip() for l in console.splitlines()]
        check(rc == 0, "%s: QEMU exits 0 (got %d)" % (label, rc), console[-2000:])
        check("GUEST-DONE" in lines, "%s: the guest's /init ran to the end" % label, console[-2000:])
        pci = [l for l in lines if l.startswith("PCI 0000:00:01.0 ")]
        expected_pci = "PCI 0000:00:01.0 0x1af4:0x%04x driver=%s" % (device_id, "virtio-pci" if binds else "")
        check(pci == [expected_pci], "%s: guest sees %s" % (label, expected_pci), "\n".join(pci))
        netif = [l for l in lines if l.startswith("NETIF eth")]
        if binds:
            check("VIRTIO_NET_BOUND virtio0" in lines, "%s: virtio_net binds virtio0" % label)
            check(netif == ["NETIF eth0 " + MAC], "%s: eth0 has the topology's MAC %s" % (label, MAC), "\n".join(netif))
        else:
            check(netif == [] and not any(l.startswith("VIRTIO_NET_BOUND") for l in lines),
                  "%s: no virtio_net interface without the virtio personality" % label, "\n".join(netif))
        released = [l for l in trace_lines(trace) if l.startswith("exit_files()")]
        check(len(released) == 1 and released[0].endswith("{files=0, fds=0}"),
              "%s: every model file released at exit" % label, "\n".join(released))
        for l in netif:
            print("    guest: " + l)
        print("    boot + probe + poweroff: %.1f s" % elapsed)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all guest checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
