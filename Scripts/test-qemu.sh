#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# QEMU end to end (issue 9): Debian's QEMU 7.2 realizes a vfio-pci device on the libswiftvfio
# model through libswiftvfio-preload.so, with no root, no IOMMU and no hardware, once with a
# sysfs-shaped topology and once with the equivalent JSON; then QEMU's own errors for a group that
# is not viable and a group with no VFIO device. The checks are Tests/QEMU/qemu_vfio.py's (read
# its docstring); it prints the query-pci excerpt, the ioctls QEMU issued and the time of a run.
#
#   Scripts/test-qemu.sh [BUILD_DIR]
#
# BUILD_DIR holds libswiftvfio.so and libswiftvfio-preload.so (default .build/debug); it is built
# first with `swift build --scratch-path <its parent>` unless SWIFTVFIO_NO_BUILD=1.
#
# QEMU: qemu-system-x86 from Debian (bookworm: 7.2). When qemu-system-x86_64 (or python3) is
# missing, it is installed with apt-get (without recommends: no GUI, no firmware beyond SeaBIOS)
# when running as root or under CI=true; otherwise the script says so and exits 0 (skipped).
# Under CI=true a failed install is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
libdir="${1:-.build/debug}"
case "$libdir" in /*) ;; *) libdir="$root/$libdir" ;; esac
scratch="$(dirname "$libdir")"
[ "$(basename "$libdir")" = debug ] || { echo "$0: BUILD_DIR must be a SwiftPM debug directory (<scratch>/debug)" >&2; exit 2; }

export SWIFT_BACKTRACE=enable=no
unset SWIFTVFIO_TOPOLOGY SWIFTVFIO_TRACE LD_PRELOAD

step() { printf '\n--> %s\n' "$*"; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    step "apt-get install --no-install-recommends ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  elif [ "${CI:-}" = true ]; then
    echo "FAILED: CI lacks ${need[*]} and is not root: cannot apt-get install" >&2
    exit 1
  else
    echo "SKIPPED: QEMU test: ${need[*]} not installed and not root" >&2
    echo "    install with: sudo apt-get install --no-install-recommends ${need[*]}" >&2
    exit 0
  fi
fi
version="$(qemu-system-x86_64 --version | head -1)"
echo "$version"
case "$version" in
  *"version 7.2."*) ;;
  *) echo "note: the model's vfio-pci answers follow QEMU 7.2's call list (PCIDeviceModel.swift); this is another version" ;;
esac

if [ "${SWIFTVFIO_NO_BUILD:-0}" != 1 ]; then
  step "swift build --scratch-path $scratch"
  swift build --scratch-path "$scratch"
fi
for lib in libswiftvfio-preload.so libswiftvfio.so; do
  [ -f "$libdir/$lib" ] || { echo "FAILED: no $libdir/$lib" >&2; exit 1; }
done

out="$scratch/qemu-tests"
rm -rf "$out"
mkdir -p "$out"
python3 Tests/QEMU/qemu_vfio.py "$libdir" "$out"
