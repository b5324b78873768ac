#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""QEMU 7.2 realizes a vfio-pci device on the libswiftvfio model (issue 9, part 5).

    qemu_vfio.py BUILD_DIR OUT_DIR

Runs an unmodified qemu-system-x86_64 under libswiftvfio-preload.so, no root, no IOMMU, no
hardware:

    LD_PRELOAD=libswiftvfio-preload.so SWIFTVFIO_TOPOLOGY=<topology> SWIFTVFIO_TRACE=<trace> \\
    qemu-system-x86_64 -nodefaults -machine q35 -accel tcg -m 64 -S -display none -qmp stdio \\
      -device vfio-pci,sysfsdev=<tree>/bus/pci/devices/0000:00:01.0

once with a sysfs-shaped tree (made here from machine.json: the same machine) and once with
machine.json itself. With the JSON, QEMU still reads <sysfsdev>/iommu_group (readlink) for the
group number, so a minimal tree holding only that link is made. Over QMP on stdio:
qmp_capabilities, query-pci, quit. Checks: query-pci shows the topology's vendor and device ids,
class and BAR sizes; both forms answer the same; QEMU exits 0 with nothing on stderr; the trace
shows every model file QEMU opened released at exit (the interposer's exit hook) and ends with
"exit_files() = N => {files=0, fds=0}". Negative cases, in both forms: a group with a member bound
to a kernel driver (QEMU: "group 5 is not viable") and a group with no VFIO device (no
/dev/vfio/5: QEMU: "failed to open /dev/vfio/5: No such file or directory"), each a non-zero
exit with QEMU's own message and the model's files released.

Prints the query-pci excerpt of the device, the ioctls QEMU issued (from the trace) and the wall
time of each QEMU run; ends with "qemu: N passed, M failed" and exits non-zero on a failure.
"""

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE = "0000:00:01.0"
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
TIMEOUT = 60.0  # seconds for one QEMU run (a debug build realizes in well under one)

passed = 0
failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("    ok  " + what)
    else:
        failed += 1
        print("    FAIL " + what + (":\n" + detail if detail else ""))
    return cond


# ---- topologies ------------------------------------------------------------------------------

def load_topology(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


def integer(v):
    return int(v, 0) if isinstance(v, str) else int(v)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def sysfs_tree(topology, root):
    """The sysfs-shaped tree describing the same machine as `topology` (SysfsTopology.swift):
    devices/pci0000:00/<name> with its ids, resource and model files; the bus/pci/devices link,
    iommu_group and driver links; kernel/iommu_groups/<N>/devices entries."""
    shutil.rmtree(root, ignore_errors=True)
    for d in ("kernel/iommu_groups", "bus/pci/devices", "bus/pci/drivers", "devices/pci0000:00"):
        os.makedirs(os.path.join(root, d))
    for group in topology.get("iommu_groups", []):
        gid = str(group["id"])
        os.makedirs(os.path.join(root, "kernel/iommu_groups", gid, "devices"))
        for dev in group["devices"]:
            name = dev["name"]
            ddir = os.path.join(root, "devices/pci0000:00", name)
            os.makedirs(ddir)
            os.symlink("../../../devices/pci0000:00/" + name, os.path.join(root, "bus/pci/devices", name))
            os.symlink("../../../../devices/pci0000:00/" + name,
                       os.path.join(root, "kernel/iommu_groups", gid, "devices", name))
            os.symlink("../../kernel/iommu_groups/" + gid, os.path.join(ddir, "iommu_group"))
            if dev.get("driver"):
                os.makedirs(os.path.join(root, "bus/pci/drivers", dev["driver"]), exist_ok=True)
                os.symlink("../../bus/pci/drivers/" + dev["driver"], os.path.join(ddir, "driver"))
            for key, fname, width in (("vendor_id", "vendor", 4), ("device_id", "device", 4),
                                      ("class_code", "class", 6)):
                if key in dev:
                    write(os.path.join(ddir, fname), "0x%0*x\n" % (width, integer(dev[key])))
            if "bars" in dev:
                lines, base = [], 0xfe000000
                for size in [integer(b) for b in dev["bars"]] + [0] * (7 - len(dev["bars"])):
                    if size:
                        base = (base + size - 1) & ~(size - 1)
                        lines.append("0x%016x 0x%016x 0x%016x" % (base, base + size - 1, 0x40200))
                        base += size
                    else:
                        lines.append("0x%016x 0x%016x 0x%016x" % (0, 0, 0))
                write(os.path.join(ddir, "resource"), "\n".join(lines) + "\n")
            for key in ("msi", "msix", "msix_bar"):
                if key in dev:
                    write(os.path.join(ddir, key), "%d\n" % integer(dev[key]))
            for key in ("pcie", "intx"):
                if key in dev:
                    write(os.path.join(ddir, key), "1\n" if dev[key] else "0\n")
    return root


def readlink_tree(topology, root):
    """For a JSON topology: only what QEMU itself reads of sysfsdev, the iommu_group link."""
    shutil.rmtree(root, ignore_errors=True)
    for group in topology.get("iommu_groups", []):
        for dev in group["devices"]:
            ddir = os.path.join(root, "bus/pci/devices", dev["name"])
            os.makedirs(ddir)
            os.symlink("../../../../kernel/iommu_groups/%d" % group["id"], os.path.join(ddir, "iommu_group"))
    return root


# ---- one QEMU run ----------------------------------------------------------------------------

class Run:
    pass


def qemu(build, topology_path, tree, trace, qmp=True):
    """Runs QEMU on the model. With `qmp`, drives qmp_capabilities, query-pci and quit; returns a
    Run with rc, stdout lines, stderr, the QMP answers and the wall time of the process."""
    if os.path.exists(trace):
        os.unlink(trace)
    env = dict(os.environ)
    env.update(LD_PRELOAD=os.path.join(build, "libswiftvfio-preload.so"), SWIFTVFIO_TOPOLOGY=topology_path,
               SWIFTVFIO_TRACE=trace, SWIFT_BACKTRACE="enable=no")
    argv = [QEMU, "-nodefaults", "-machine", "q35", "-accel", "tcg", "-m", "64", "-S", "-display", "none",
            "-qmp", "stdio", "-device", "vfio-pci,sysfsdev=%s/bus/pci/devices/%s" % (tree, DEVICE)]
    r = Run()
    r.argv = argv
    r.answers = {}
    r.events = []
    r.error = None
    start = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = start + TIMEOUT
    buf = b""

    def next_message():
        nonlocal buf
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no QMP answer within %.0f s" % TIMEOUT)
            ready, _, _ = select.select([p.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError("QEMU closed QMP")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        return json.loads(line)

    def execute(command):
        p.stdin.write(json.dumps({"execute": command}).encode() + b"\n")
        p.stdin.flush()
        while True:
            m = next_message()
            if "event" in m:
                r.events.append(m["event"])
                continue
            if "error" in m:
                raise RuntimeError("%s: %s" % (command, m["error"]))
            return m["return"]

    try:
        if qmp:
            greeting = next_message()
            r.version = greeting["QMP"]["version"]
            for command in ("qmp_capabilities", "query-pci", "quit"):
                r.answers[command] = execute(command)
    except (TimeoutError, EOFError, RuntimeError, ValueError, BrokenPipeError, KeyError) as e:
        r.error = "%s: %s" % (type(e).__name__, e)
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.stdin = None  # communicate() must not flush it
    try:
        rest, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        rest, err = p.communicate()
        r.error = (r.error or "") + " QEMU did not exit"
    r.seconds = time.monotonic() - start
    r.rc = p.returncode
    r.stderr = err.decode(errors="replace")
    r.stdout_rest = (buf + rest).decode(errors="replace")
    try:
        with open(trace) as f:
            raw = f.read().splitlines()
        # docs/TRACE.md: "# swiftvfio trace: ..." header lines, then "[pid P tid T] <call>" lines;
        # the checks below read the calls.
        r.trace_headers = [l for l in raw if l.startswith("# swiftvfio trace: ")]
        r.trace_unprefixed = [l for l in raw if not l.startswith("#") and not LINE_PREFIX.match(l)]
        r.trace = [LINE_PREFIX.sub("", l) for l in raw if not l.startswith("#")]
    except FileNotFoundError:
        r.trace, r.trace_headers, r.trace_unprefixed = [], [], []
    return r


# ---- what the trace says ---------------------------------------------------------------------

LINE_PREFIX = re.compile(r'^\[pid \d+ tid \d+\] ')
OPEN = re.compile(r'^open\("([^"]*)", [^)]*\) = (\d+)$')
DEVICE_FD = re.compile(r'^ioctl\(\d+, VFIO_GROUP_GET_DEVICE_FD, "([^"]*)"\) = (\d+)$')
RELEASE = re.compile(r'^release\((.*)\)$')
IOCTL = re.compile(r'^ioctl\(\d+, (\w+)')
EXIT = re.compile(r'^exit_files\(\) = (\d+) => \{files=(\d+), fds=(\d+)\}$')


def opened_files(trace):
    """The model files the trace shows opened, as their release lines name them."""
    files = []
    for line in trace:
        m = OPEN.match(line)
        if m:
            files.append(m.group(1))
            continue
        m = DEVICE_FD.match(line)
        if m:
            files.append("[vfio-device] " + m.group(1))
    return files


def released_files(trace):
    return [m.group(1) for m in map(RELEASE.match, trace) if m]


def ioctl_list(trace):
    """The ioctls in order of first use, with how many times each was issued."""
    counts = {}
    for line in trace:
        m = IOCTL.match(line)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def check_released(r, label, expect):
    """Every model file the trace shows opened was released, and they are the files `expect`s."""
    opened = opened_files(r.trace)
    released = released_files(r.trace)
    check(sorted(opened) == sorted(released) == sorted(expect),
          "%s: every model file QEMU opened was released (%d: %s)" % (label, len(released), ", ".join(released)),
          "opened %s\nreleased %s\nexpected %s" % (opened, released, expect))
    check(r.trace_headers and not r.trace_unprefixed,
          "%s: the trace has a header line and every line its pid and tid" % label,
          "headers %s, lines without [pid tid]: %s" % (r.trace_headers, r.trace_unprefixed[:3]))
    last = EXIT.match(r.trace[-1]) if r.trace else None
    check(last is not None and last.group(2) == "0" and last.group(3) == "0",
          "%s: the trace ends with the exit census: %s" % (label, r.trace[-1] if r.trace else "(empty trace)"))


# ---- the checks ------------------------------------------------------------------------------

def find_device(query_pci, vendor, device):
    for bus in query_pci:
        for dev in bus["devices"]:
            if dev["id"]["vendor"] == vendor and dev["id"]["device"] == device:
                return dev
    return None


def excerpt(dev):
    regions = ", ".join("BAR%d %s %d bytes" % (r["bar"], r["type"], r["size"]) for r in dev["regions"])
    return ("%02x:%02x.%d vendor 0x%04x device 0x%04x class 0x%04x (%s) subsystem %04x:%04x irq_pin %d; %s"
            % (dev["bus"], dev["slot"], dev["function"], dev["id"]["vendor"], dev["id"]["device"],
               dev["class_info"]["class"], dev["class_info"].get("desc", "?"), dev["id"]["subsystem-vendor"],
               dev["id"]["subsystem"], dev["irq_pin"], regions))


def positive(build, out, machine, form, topology_path, tree):
    label = "machine.json, " + form
    print("\n--> QEMU realizes vfio-pci,sysfsdev=%s/bus/pci/devices/%s (%s)" % (tree, DEVICE, form))
    r = qemu(build, topology_path, tree, os.path.join(out, "trace-%s.txt" % form))
    print("    %s" % " ".join(r.argv))
    if not check(r.error is None and r.rc == 0, "%s: QMP session and exit status 0 (%.2f s)" % (label, r.seconds),
                 "error %s, rc %s\nstderr:\n%s" % (r.error, r.rc, r.stderr)):
        return None
    check(r.stderr == "", "%s: nothing on stderr" % label, r.stderr)
    check("SHUTDOWN" in r.events, "%s: SHUTDOWN event after quit" % label)
    v = r.version["qemu"]
    print("    QEMU %d.%d.%d (%s)" % (v["major"], v["minor"], v["micro"], r.version.get("package", "")))
    dev0 = machine["iommu_groups"][0]["devices"][0]
    vendor, device = integer(dev0["vendor_id"]), integer(dev0["device_id"])
    dev = find_device(r.answers["query-pci"], vendor, device)
    if not check(dev is not None, "%s: query-pci lists %04x:%04x" % (label, vendor, device),
                 json.dumps(r.answers["query-pci"], indent=1)):
        return None
    print("    query-pci: " + excerpt(dev))
    check(dev["class_info"]["class"] == integer(dev0["class_code"]) >> 8,
          "%s: class 0x%04x" % (label, integer(dev0["class_code"]) >> 8))
    want = {i: integer(s) for i, s in enumerate(dev0["bars"]) if integer(s)}
    got = {reg["bar"]: reg["size"] for reg in dev["regions"] if reg["type"] == "memory"}
    check(got == want, "%s: BAR sizes %s (BAR0 %d bytes)" % (label, got, got.get(0, 0)), "want %s" % want)
    check(dev["irq_pin"] == 1, "%s: interrupt pin A" % label)
    check_released(r, label, ["/dev/vfio/5", "/dev/vfio/vfio", "[vfio-device] " + DEVICE])
    ioctls = ioctl_list(r.trace)
    for needed in ("VFIO_GROUP_GET_STATUS", "VFIO_GROUP_SET_CONTAINER", "VFIO_SET_IOMMU", "VFIO_IOMMU_MAP_DMA",
                   "VFIO_GROUP_GET_DEVICE_FD", "VFIO_DEVICE_GET_INFO", "VFIO_DEVICE_GET_REGION_INFO",
                   "VFIO_DEVICE_SET_IRQS", "VFIO_DEVICE_RESET"):
        if needed not in ioctls:
            check(False, "%s: QEMU issued %s" % (label, needed))
    failed_calls = [line for line in r.trace if " = -1 " in line]
    check(not failed_calls, "%s: no model call failed" % label, "\n".join(failed_calls))
    return r, dev


def negative(build, out, name, form, topology_path, tree, fragments, model_lines, files):
    label = "%s, %s" % (name, form)
    print("\n--> %s (%s)" % (name, form))
    r = qemu(build, topology_path, tree, os.path.join(out, "trace-%s-%s.txt" % (name, form)), qmp=False)
    message = r.stderr.strip()
    print("    QEMU: " + message.replace("\n", "\n          "))
    check(r.rc not in (0, None) and r.rc > 0, "%s: QEMU exits with status %s (%.2f s)" % (label, r.rc, r.seconds))
    for fragment in fragments:
        check(fragment in message, "%s: QEMU says '%s'" % (label, fragment), message)
    for pattern in model_lines:
        hit = [l for l in r.trace if re.fullmatch(pattern, l)]
        check(hit, "%s: the model answered: %s" % (label, hit[0] if hit else pattern), "\n".join(r.trace))
    check_released(r, label, files)
    return r


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    build, out = (os.path.abspath(a) for a in sys.argv[1:])
    os.makedirs(out, exist_ok=True)
    machine_path = os.path.join(HERE, "machine.json")
    machine = load_topology("machine.json")
    sys_tree = sysfs_tree(machine, os.path.join(out, "machine-sysfs"))
    json_tree = readlink_tree(machine, os.path.join(out, "machine-json"))

    results = {}
    for form, topo, tree in (("sysfs", sys_tree, sys_tree), ("json", machine_path, json_tree)):
        results[form] = positive(build, out, machine, form, topo, tree)
    if results["sysfs"] and results["json"]:
        check(results["sysfs"][1] == results["json"][1], "the sysfs tree and the JSON give QEMU the same device")
        a, b = ioctl_list(results["sysfs"][0].trace), ioctl_list(results["json"][0].trace)
        check(a == b, "the sysfs tree and the JSON see the same ioctls")
        r = results["sysfs"][0]
        print("\n--> the ioctls QEMU issued (in order of first use, with counts)")
        for name, n in ioctl_list(r.trace).items():
            print("    %-30s %d" % (name, n))
        other = sorted({l.split("(")[0] for l in r.trace if not l.startswith("ioctl(")})
        print("    other model calls: " + ", ".join(other))

    # (topology, QEMU's message, the model's trace lines (regexes), the model files opened and released)
    cases = (
        # 0000:00:01.1 is bound to e1000e, a kernel driver that owns DMA: the group is not viable.
        ("not-viable", ["vfio %s: group 5 is not viable" % DEVICE,
                        "Please ensure all devices within the iommu_group are bound to their vfio bus driver."],
         [r"ioctl\(\d+, VFIO_GROUP_GET_STATUS, \{argsz=8\}\) = 0 => \{flags=0\}"], ["/dev/vfio/5"]),
        # The group's only device is bound to pci-stub: no VFIO device, so no /dev/vfio/5 node (the
        # interposer leaves a path the model has no node for to libc, which says ENOENT).
        ("no-vfio-device", ["vfio %s: failed to open /dev/vfio/5: No such file or directory" % DEVICE], [], []),
    )
    for name, fragments, model_lines, files in cases:
        topo = load_topology(name + ".json")
        tree = sysfs_tree(topo, os.path.join(out, name + "-sysfs"))
        negative(build, out, name, "sysfs", tree, tree, fragments, model_lines, files)
        negative(build, out, name, "json", os.path.join(HERE, name + ".json"),
                 readlink_tree(topo, os.path.join(out, name + "-json")), fragments, model_lines, files)

    print("\n--> time of one QEMU run (start to exit, QMP included)")
    times = []
    for i in range(3):
        r = qemu(build, sys_tree, sys_tree, os.path.join(out, "trace-timing.txt"))
        if r.error is None and r.rc == 0:
            times.append(r.seconds)
    if check(len(times) == 3, "3 more runs succeed"):
        print("    %s s; best %.3f s" % (", ".join("%.3f" % t for t in times), min(times)))

    print("\nqemu: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
