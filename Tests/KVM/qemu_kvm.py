#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""QEMU 7.2 under real KVM links its VM to a model group (issue 12).

    qemu_kvm.py BUILD_DIR OUT_DIR

Runs an unmodified qemu-system-x86_64 with -accel kvm under libswiftvfio-preload.so on
Tests/QEMU/machine.json (group 5, device 0000:00:01.0):

    LD_PRELOAD=libswiftvfio-preload.so SWIFTVFIO_TOPOLOGY=machine.json SWIFTVFIO_TRACE=<trace> \\
    qemu-system-x86_64 -nodefaults -machine q35 -accel kvm -cpu qemu64,-pni -m 64 -S \\
      -display none -qmp stdio -device vfio-pci,sysfsdev=<tree>/bus/pci/devices/0000:00:01.0

QEMU creates its kvm-vfio device (KVM_CREATE_DEVICE on its VM fd) and adds the group to it while
realizing the device, before any guest code: -S keeps the guest stopped, and QMP's quit ends the
run (QEMU finalizes no device then: the releases are the interposer's exit hook's). Checks: QEMU
exits 0 with nothing on stderr (in particular no "Failed to add group"); query-pci lists the
device; the trace shows KVM_CREATE_DEVICE on the VM fd, GROUP_ADD of the group fd with
vfio_file_set_kvm(/dev/vfio/5, kvm=<the VM>) inside it and result 0, the device fd taken after
(the ordering KVM needs), and at exit the kvm-vfio device's release calling
vfio_file_set_kvm(/dev/vfio/5, NULL) and every model file released ({files=0, fds=0}).
(-cpu qemu64,-pni: the default CPU model asks for SSE3, which KVM on a nested host may not offer;
QEMU would warn on stderr. The guest never runs.)

Prints the KVM lines of the trace; ends with "qemu-kvm: N passed, M failed".
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "QEMU"))
import qemu_vfio as q  # noqa: E402  (the QEMU runner and trace helpers of issue 9)

CREATE = re.compile(r'^ioctl\((\d+), KVM_CREATE_DEVICE, \{type=KVM_DEV_TYPE_VFIO, flags=0x0\}\) = 0 => \{fd=(\d+)\} '
                    r'/\* kvm-vfio device, kvm=(0x[0-9a-f]+) \*/$')


def index(trace, pattern, start=0):
    rx = re.compile(pattern)
    for i in range(max(start, 0), len(trace)):
        if rx.search(trace[i]):
            return i
    return -1


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    build, out = (os.path.abspath(a) for a in sys.argv[1:])
    os.makedirs(out, exist_ok=True)
    topology = os.path.join(os.path.dirname(q.__file__), "machine.json")
    tree = q.readlink_tree(q.load_topology("machine.json"), os.path.join(out, "tree"))
    trace = os.path.join(out, "trace-kvm.txt")

    # The runner of issue 9 with KVM instead of TCG.
    real_popen = q.subprocess.Popen

    def popen(argv, **kw):
        argv = list(argv)
        i = argv.index("-accel")
        argv[i + 1] = "kvm"
        argv[i + 2:i + 2] = ["-cpu", "qemu64,-pni"]
        popen.argv = argv
        return real_popen(argv, **kw)

    q.subprocess.Popen = popen
    try:
        r = q.qemu(build, topology, tree, trace)
    finally:
        q.subprocess.Popen = real_popen
    print("    " + " ".join(popen.argv))
    label = "QEMU -accel kvm"
    ok = q.check(r.error is None and r.rc == 0, "%s: QMP session and exit status 0 (%.2f s)" % (label, r.seconds),
                 "error %s, rc %s\nstderr:\n%s" % (r.error, r.rc, r.stderr))
    q.check("Failed to add group" not in r.stderr, "%s: no 'Failed to add group' (the VM took the model group)" % label,
            r.stderr)
    q.check(r.stderr == "", "%s: nothing on stderr" % label, r.stderr)
    if ok:
        dev = q.find_device(r.answers["query-pci"], 0x8086, 0x10d3)
        q.check(dev is not None, "%s: query-pci lists 8086:10d3" % label)
    t = r.trace
    print("    the KVM link in the trace:")
    for line in t:
        if "KVM" in line or "kvm" in line or line.startswith("exit_files") or "GET_DEVICE_FD" in line:
            print("      " + line)
    create = next((i for i, line in enumerate(t) if CREATE.match(line)), -1)
    if not q.check(create >= 0, "%s: KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) on the VM fd = 0 with a device fd" % label,
                   "\n".join(t)):
        return 1
    m = CREATE.match(t[create])
    devfd, kvm = m.group(2), m.group(3)
    group_fd = re.search(r'open\("/dev/vfio/5", [^)]*\) = (\d+)', "\n".join(t))
    gfd = group_fd.group(1) if group_fd else "?"
    add = index(t, r'^ioctl\(%s, KVM_SET_DEVICE_ATTR, \{group=KVM_DEV_VFIO_GROUP, attr=KVM_DEV_VFIO_GROUP_ADD, addr=&%s\}\) '
                   r'<unfinished \.\.\.>$' % (devfd, gfd), create)
    setk = index(t, r'^vfio_file_set_kvm\(/dev/vfio/5, kvm=%s\)$' % kvm, add)
    done = index(t, r'^<\.\.\. ioctl\(%s, KVM_SET_DEVICE_ATTR\) resumed> = 0$' % devfd, setk)
    getfd = index(t, r'^ioctl\(%s, VFIO_GROUP_GET_DEVICE_FD, "0000:00:01.0"\) = \d+$' % gfd, done)
    release = index(t, r'^release\(\[kvm-vfio\] fd %s, kvm=%s\) /\* exit \*/$' % (devfd, kvm), getfd)
    clear = index(t, r'^vfio_file_set_kvm\(/dev/vfio/5, NULL\)$', release)
    q.check(add > create, "%s: GROUP_ADD of group 5's fd %s on the kvm-vfio device fd %s" % (label, gfd, devfd))
    q.check(setk > add, "%s: inside it, vfio_file_set_kvm(/dev/vfio/5, kvm=%s), the VM of the device" % (label, kvm))
    q.check(done > setk, "%s: GROUP_ADD = 0" % label)
    q.check(getfd > done, "%s: the device fd taken after the ADD (its first open sees the VM)" % label)
    q.check(release > getfd, "%s: at exit, the kvm-vfio device's release" % label)
    q.check(clear > release, "%s: which calls vfio_file_set_kvm(/dev/vfio/5, NULL)" % label)
    q.check(not [l for l in t if " = -1 " in l], "%s: no model or KVM call failed" % label,
            "\n".join(l for l in t if " = -1 " in l))
    q.check_released(r, label, ["/dev/vfio/5", "/dev/vfio/vfio", "[vfio-device] 0000:00:01.0"])
    print("\nqemu-kvm: %d passed, %d failed" % (q.passed, q.failed))
    return 1 if q.failed else 0


if __name__ == "__main__":
    sys.exit(main())
