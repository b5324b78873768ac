#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# linked-sources.sh CC CFLAGS... SOURCE: the C files a test program is linked with, found by the
# compiler: for every header of this source tree that SOURCE includes (directly or not, as
# `CC -MM` lists them), the .c file beside it, if there is one (examples-c/kvm.h brings kvm.c,
# Sources/CSwiftVFIOPreload/kvm/kvm_vfio.h brings kvm_vfio.c). Used by Tests/Makefile.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$@" -MM | tr ' \\' '\n\n' | sed -n 's/\.h$/.c/p' | while read -r c; do
  [ -f "$c" ] || continue
  abs="$(cd "$(dirname "$c")" && pwd)/$(basename "$c")"
  case "$abs" in "$root"/*) echo "$abs" ;; esac
done | sort -u
