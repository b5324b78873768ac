# SPDX-License-Identifier: Apache-2.0
"""What the Python harnesses that drive unmodified clients share (Tests/DPDK/testpmd_vfio.py,
Tests/Guest/virtio_guest.py), as Tests/harness.h is for the C tests: the check that prints
"ok"/"FAIL" and records failures, the trace reader and a file writer."""
import os
import re

# Every failed check's description, in order: a harness exits non-zero when this is not empty.
failures = []

# Trace lines may start with "[pid N tid N] " (docs/TRACE.md).
TRACE_PREFIX = re.compile(r"^\[pid \d+ tid \d+\] ")


def trace_lines(text):
    """The lines of a SWIFTVFIO_TRACE file without their pid/tid prefix."""
    return [TRACE_PREFIX.sub("", l) for l in text.splitlines()]


def check(ok, what, detail=""):
    """Prints one check's result; a failure is recorded in `failures` with its detail printed."""
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
        if detail:
            print("    " + detail.replace("\n", "\n    "))
    return ok


def write(path, text):
    """Writes `text` to `path`, making its directory first."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
