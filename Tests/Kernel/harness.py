#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host side of the kernel-verified comparison (issue 17); Scripts/test-kernel.sh drives it.

  harness.py rebuild DATA DIR     rebuild the guest's sysfs records ("@@S") as a tree under DIR
  harness.py split DATA DIR       one DIR/NNN.args + DIR/NNN.out per "@@RUN" block of the guest
  harness.py compare --table TSV SERIES=WORKDIR...
                                  compare WORKDIR/guest/NNN.out (the kernel) with
                                  WORKDIR/host/NNN.out (the model) line by line

DATA is what the guest's /init (Tests/Kernel/init.sh) wrote to its second serial port.

Comparison rules: a line is "<n> <call> = <result>". Equal lines agree. A differing line is a
named version difference when an entry of the table lists that kernel series and its regular
expressions match the call, the model's result and the kernel's result in full; anything else is
a divergence, and the rest of that sequence is not compared (its state may differ from there on).
Every table entry must be hit by at least one line on each kernel series it lists that ran, so
no entry survives untested. Exit status 1 on any divergence or unhit entry.
"""
import collections
import os
import re
import sys


def records(path):
    with open(path, "rb") as f:
        for raw in f.read().decode("utf-8", "replace").split("\n"):
            yield raw.rstrip("\r")


def safe_join(root, rel):
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise SystemExit(f"rebuild: refusing record path {rel!r}")
    return os.path.join(root, *parts)


def rebuild(data, root):
    """Replays D (directory), L (link), F (a line of a file) and Z (file size) records."""
    os.makedirs(root, exist_ok=True)
    count = 0
    for line in records(data):
        if not line.startswith("@@S "):
            continue
        kind, _, rest = line[4:].partition(" ")
        rel, _, value = rest.partition(" ")
        path = safe_join(root, rel)
        count += 1
        if kind == "D":
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind == "L":
            if not os.path.lexists(path):
                os.symlink(value, path)
        elif kind == "F":
            with open(path, "a") as f:
                f.write(value + "\n")
        elif kind == "Z":
            with open(path, "wb") as f:
                f.truncate(int(value))
        else:
            raise SystemExit(f"rebuild: unknown record {line!r}")
    if count == 0:
        raise SystemExit(f"rebuild: no sysfs records in {data}")


def split(data, out):
    os.makedirs(out, exist_ok=True)
    current, n = None, 0
    meta = []
    for line in records(data):
        if line.startswith("@@RUN "):
            n += 1
            with open(os.path.join(out, f"{n:03d}.args"), "w") as f:
                f.write(line[6:] + "\n")
            current = open(os.path.join(out, f"{n:03d}.out"), "w")
        elif line.startswith("@@END "):
            if current:
                current.close()
                current = None
                if line[6:].strip() != "0":
                    raise SystemExit(f"split: guest run {n} exited with {line[6:]}")
        elif current is not None:
            current.write(line + "\n")
        elif line.startswith("@@KERNEL ") or line.startswith("@@NODE "):
            meta.append(line)
    if current is not None:
        raise SystemExit(f"split: guest run {n} did not end")
    with open(os.path.join(out, "meta.txt"), "w") as f:
        f.write("\n".join(meta) + "\n")
    if n == 0:
        raise SystemExit(f"split: no runs in {data}")


Entry = collections.namedtuple("Entry", "id series call model kernel why")


def load_table(path):
    entries = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 6:
                raise SystemExit(f"{path}:{number}: expected 6 tab-separated fields, found {len(fields)}")
            ident, series, call, model, kernel, why = fields
            try:
                entries.append(Entry(ident, set(series.split(",")), re.compile(call),
                                     re.compile(model), re.compile(kernel), why))
            except re.error as e:
                raise SystemExit(f"{path}:{number}: bad regular expression: {e}")
    ids = [e.id for e in entries]
    if len(ids) != len(set(ids)):
        raise SystemExit(f"{path}: duplicate ids")
    return entries


def parse(line):
    number, _, rest = line.partition(" ")
    call, sep, result = rest.partition(" = ")
    return number, call, result if sep else None


ERRNO = re.compile(r"-(E[A-Z0-9]+)$")


def compare(table_path, runs):
    entries = load_table(table_path)
    hits = collections.Counter()
    failures = []
    total_calls = 0
    for spec in runs:
        series, _, workdir = spec.partition("=")
        guest_dir, host_dir = os.path.join(workdir, "guest"), os.path.join(workdir, "host")
        names = sorted(n[:-4] for n in os.listdir(guest_dir) if n.endswith(".out"))
        compared = same = named = 0
        errnos = collections.Counter()
        for name in names:
            kernel_lines = open(os.path.join(guest_dir, name + ".out")).read().splitlines()
            host_path = os.path.join(host_dir, name + ".out")
            model_lines = open(host_path).read().splitlines() if os.path.exists(host_path) else []
            args = open(os.path.join(guest_dir, name + ".args")).read().strip()
            for line in kernel_lines:
                m = ERRNO.search(line)
                if m:
                    errnos[m.group(1)] += 1
            for k in range(max(len(kernel_lines), len(model_lines))):
                kl = kernel_lines[k] if k < len(kernel_lines) else "<missing>"
                ml = model_lines[k] if k < len(model_lines) else "<missing>"
                compared += 1
                if kl == ml:
                    same += 1
                    continue
                kn, kcall, kres = parse(kl)
                mn, mcall, mres = parse(ml)
                entry = None
                if kn == mn and kcall == mcall and kres is not None and mres is not None:
                    for e in entries:
                        if (series in e.series and e.call.fullmatch(kcall) and e.model.fullmatch(mres)
                                and e.kernel.fullmatch(kres)):
                            entry = e
                            break
                if entry:
                    named += 1
                    hits[(entry.id, series)] += 1
                    continue
                failures.append(f"Linux {series}, sequence {name} ({args}): line {k + 1} differs\n"
                                f"    kernel: {kl}\n    model:  {ml}\n"
                                f"    (the rest of this sequence is not compared)")
                break
        total_calls += compared
        meta = open(os.path.join(guest_dir, "meta.txt")).read().split("\n")[0]
        print(f"Linux {series} ({meta.replace('@@KERNEL ', '')}): {len(names)} sequences, {compared} calls "
              f"compared, {same} identical, {named} named version differences")
        print(f"  errno names in the kernel's output: "
              + ", ".join(f"{e} {c}" for e, c in sorted(errnos.items())))
    ran = {spec.partition("=")[0] for spec in runs}
    for e in entries:
        for series in sorted(e.series & ran):
            n = hits[(e.id, series)]
            print(f"  table {e.id} on {series}: {n} lines" + ("" if n else "  <- NEVER HIT"))
            if n == 0:
                failures.append(f"table entry {e.id} ({e.why}) was never hit on Linux {series}: "
                                "stale, or the sequences no longer reach it")
    print(f"total: {total_calls} calls compared")
    for f in failures:
        print("DIVERGENCE: " + f)
    return 1 if failures else 0


def main(argv):
    if len(argv) == 4 and argv[1] == "rebuild":
        rebuild(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "split":
        split(argv[2], argv[3])
    elif len(argv) >= 5 and argv[1] == "compare" and argv[2] == "--table":
        return compare(argv[3], argv[4:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
