#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The start-up of an unmodified QEMU realizing one vfio-pci device under libswiftvfio-preload.so,
against the same QEMU with a plain emulated device of the same identity instead (e1000e: the
topology's 8086:10d3), no preload. Each run: start, QMP qmp_capabilities + query-pci + quit, exit
(Tests/QEMU/qemu_vfio.py's sequence). N pairs, each pair's two runs back to back (alternating which
goes first), and the pair with the median ratio reported: a process start on a shared machine has a
long tail both ways (one lucky run of either side moves a best-of by 30%), and the load changes
between runs (the emulated side's own median moved from 54 to 74 ms between two repeats), which a
ratio of two separate medians carries and a pair's own ratio does not. Prints one vfio-bench row: "ROW\tqemu_startup\t<name>\t<vfio ms>\t<emulated ms>\tle\t1.5", or "NA\t..." when QEMU is
missing.

    qemu_startup.py BUILD_DIR [RUNS]      BUILD_DIR holds libswiftvfio.so and the preload
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Tests", "QEMU"))
import qemu_vfio  # noqa: E402  (the topology and the sysfsdev tree QEMU reads)

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
NAME = "QEMU start-up, median (QMP query-pci, quit): vfio-pci under the preload vs an emulated e1000e"


def one_run(argv, env):
    start = time.monotonic()
    p = subprocess.run(argv, env=env, input=b"".join(json.dumps({"execute": c}).encode() + b"\n"
                                                     for c in ("qmp_capabilities", "query-pci", "quit")),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    seconds = time.monotonic() - start
    if p.returncode != 0 or b'"return"' not in p.stdout:
        raise RuntimeError("%s: rc %d: %s" % (" ".join(argv[-2:]), p.returncode, p.stderr.decode(errors="replace")))
    return seconds


def main():
    build = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 21
    if shutil.which(QEMU) is None:
        print("NA\tqemu_startup\t%s\tn/a (no %s)" % (NAME, QEMU))
        return 0
    out = tempfile.mkdtemp(prefix="vfio-bench-qemu-")
    try:
        topo_path = os.path.join(HERE, "..", "Tests", "QEMU", "machine.json")
        topo = qemu_vfio.load_topology("machine.json")
        tree = qemu_vfio.readlink_tree(topo, os.path.join(out, "tree"))
        base = [QEMU, "-nodefaults", "-machine", "q35", "-accel", "tcg", "-m", "64", "-S", "-display", "none",
                "-qmp", "stdio", "-device"]
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SWIFTVFIO_TOPOLOGY", "SWIFTVFIO_TRACE")}
        vfio_env = dict(env, LD_PRELOAD=os.path.join(build, "libswiftvfio-preload.so"), SWIFTVFIO_TOPOLOGY=topo_path,
                        SWIFT_BACKTRACE="enable=no")
        vfio = base + ["vfio-pci,sysfsdev=%s/bus/pci/devices/%s" % (tree, qemu_vfio.DEVICE)]
        emulated = base + ["e1000e"]
        one_run(vfio, vfio_env)  # warm the page cache for both
        one_run(emulated, env)
        pairs = []
        for i in range(runs):
            # Each pair runs back to back, in alternating order, so both sides of a pair see the
            # same load; the pair with the median ratio is reported (its two real times).
            if i % 2 == 0:
                pairs.append((one_run(vfio, vfio_env), one_run(emulated, env)))
            else:
                e = one_run(emulated, env)
                pairs.append((one_run(vfio, vfio_env), e))
        pairs.sort(key=lambda p: p[0] / p[1])
        a, b = pairs[len(pairs) // 2]
        print("ROW\tqemu_startup\t%s\t%.2f\t%.2f\tms\t1.500" % (NAME, a * 1e3, b * 1e3))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print("NA\tqemu_startup\t%s\tn/a (%s)" % (NAME, str(e).splitlines()[0][:120]))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
