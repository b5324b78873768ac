#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: builds libswiftvfio.so and runs the KVM-side consumer example
# (examples-c/kvm_vfio: virt/kvm/vfio.c's shape on the C ABI) against the built-in default
# topology, printing each step and the state that results: the groups, the container, the
# devices open, the VM's reference count and the DMA coherency KVM sees.
#
#   Scripts/main-job.sh
#
# Needs swift (on PATH or in /opt/swift/usr/bin), a C compiler and make; as root on a Debian-like
# machine without them, installs gcc and make with apt-get. Environment: SWIFTVFIO_SCRATCH, the
# SwiftPM scratch path (default .build); CC, the C compiler (default gcc, else cc).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
scratch="${SWIFTVFIO_SCRATCH:-.build}"
case "$scratch" in /*) ;; *) scratch="$root/$scratch" ;; esac

command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "main-job: swift is not installed (see README)" >&2; exit 1; }
need=()
command -v make >/dev/null || need+=(make)
command -v "${CC:-gcc}" >/dev/null || command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "main-job: please install: ${need[*]}" >&2
    exit 1
  fi
fi
cc="${CC:-gcc}"
command -v "$cc" >/dev/null || cc=cc

echo "==> building libswiftvfio.so (swift build --product swiftvfio)"
swift build --scratch-path "$scratch" --product swiftvfio 2>&1 | tail -n 1

echo "==> building examples-c/kvm_vfio ($cc)"
make -s -C examples-c CC="$cc" SWIFTVFIO_LIBDIR="$scratch/debug" PKG_CONFIG=false build/kvm_vfio

echo "==> running examples-c/kvm_vfio against the built-in default topology"
echo
unset SWIFTVFIO_TOPOLOGY
export SWIFT_BACKTRACE=enable=no
exec examples-c/build/kvm_vfio
