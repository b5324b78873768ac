#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the benchmarks (Benchmarks/, its own package) in release and prints the table: every
# figure of libswiftvfio beside its baseline, measured in the same run, with the ratio, the target
# and PASS/MISS (docs/BENCHMARKS.md says what each row measures).
#
#   Scripts/bench.sh              build, run, print the table and write it into docs/BENCHMARKS.md
#   Scripts/bench.sh --no-record  the same, without touching docs/BENCHMARKS.md
#   Scripts/bench.sh --quick      short timed runs (a smoke test; never recorded)
#
# Build products go to Benchmarks/.build (release). The interposer comes from the same build;
# Benchmarks/firstcall.c (the start-up row) is compiled here with cc; Benchmarks/qemu_startup.py
# (the QEMU row) needs qemu-system-x86_64 (the row says n/a without it).
set -euo pipefail
cd "$(dirname "$0")/.."

record=1
for arg in "$@"; do
    case "$arg" in
        --record) record=1 ;;
        --no-record) record=0 ;;
        --quick) export VFIO_BENCH_QUICK=1; record=0 ;;
        *) echo "usage: Scripts/bench.sh [--no-record] [--quick]" >&2; exit 2 ;;
    esac
done

export SWIFT_BACKTRACE=enable=no
echo "==> building Benchmarks (release)" >&2
# SwiftPM keeps the build plan of a path dependency (the root package) from an earlier build: a
# source file or a manifest setting added to the root since then is missed (a new file's types
# "not in scope"). Dropping the plan makes it plan again; the compiled objects stay.
rm -f Benchmarks/.build/release.yaml
# The shipped library's lean build (Scripts/dist.sh says why): no implicit _Concurrency and
# _StringProcessing imports, so the measured libswiftvfio.so loads what the installed one does.
lean=(-Xswiftc -Xfrontend -Xswiftc -disable-implicit-concurrency-module-import
      -Xswiftc -Xfrontend -Xswiftc -disable-implicit-string-processing-module-import)
swift build -c release --package-path Benchmarks "${lean[@]}" 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2
# The interposer is a product of the root package: built by the same build, beside vfio-bench.
if ! swift build -c release --package-path Benchmarks "${lean[@]}" --product swiftvfio-preload 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2; then
    echo "bench: the interposer did not build; its rows will say n/a" >&2
fi
bin="$(swift build -c release --package-path Benchmarks "${lean[@]}" --show-bin-path)"
cc -std=gnu11 -O2 -Wall -Wextra -Werror Benchmarks/firstcall.c -o "$bin/vfio-firstcall"
export VFIO_BENCH_QEMU_SCRIPT="$PWD/Benchmarks/qemu_startup.py"

echo "==> running (a few minutes; the machine should be otherwise idle for the scaling rows)" >&2
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$bin/vfio-bench" | tee "$out"

if [ "$record" = 1 ]; then
    doc=docs/BENCHMARKS.md
    python3 - "$doc" "$out" <<'EOF'
import sys
doc, out = sys.argv[1], sys.argv[2]
table = open(out).read().rstrip("\n")
text = open(doc).read()
begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
i, j = text.index(begin) + len(begin), text.index(end)
open(doc, "w").write(text[:i] + "\n" + table + "\n" + text[j:])
EOF
    echo "==> recorded in $doc" >&2
fi
