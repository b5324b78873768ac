#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# DPDK 22.11's dpdk-testpmd against the model (issue 13, item 4): the plain (event_skeleton) and
# virtio-net (net_virtio) personalities, in type1 and no-IOMMU mode, plus DPDK's own errors for a
# group that is not viable, a group with no VFIO device and no model loaded. The checks are
# Tests/DPDK/testpmd_vfio.py's (read its docstring); Tests/DPDK/README.md says what runs. Called
# from Scripts/test.sh.
#
#   Scripts/test-dpdk.sh [BUILD_DIR]
#
# BUILD_DIR as for Scripts/test-qemu.sh. dpdk-testpmd comes from Debian's dpdk-dev (with
# librte-net-virtio23 and librte-event-skeleton23); installed with apt-get when missing, as root or
# under CI=true; otherwise skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
libdir="${1:-.build/debug}"
case "$libdir" in /*) ;; *) libdir="$root/$libdir" ;; esac
scratch="$(dirname "$libdir")"

export SWIFT_BACKTRACE=enable=no
unset SWIFTVFIO_TOPOLOGY SWIFTVFIO_TRACE LD_PRELOAD

if ! command -v dpdk-testpmd >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      dpdk-dev librte-net-virtio23 librte-event-skeleton23 librte-mempool-ring23 >/dev/null
  elif [ "${CI:-}" = true ]; then
    echo "FAILED: CI lacks dpdk-testpmd and is not root: cannot apt-get install" >&2
    exit 1
  else
    echo "SKIPPED: DPDK test: dpdk-testpmd not installed and not root" >&2
    exit 0
  fi
fi
dpdk-testpmd --version 2>/dev/null | head -1 || true

if [ "${SWIFTVFIO_NO_BUILD:-0}" != 1 ]; then
  swift build --scratch-path "$scratch"
fi
out="$scratch/dpdk-tests"
rm -rf "$out"
mkdir -p "$out"
# The no-IOMMU probe runs' fixture (Tests/DPDK/noiommu_param_n.c says why).
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -shared -fPIC Tests/DPDK/noiommu_param_n.c -ldl -o "$out/noiommu_param_n.so"
started=$SECONDS
python3 Tests/DPDK/testpmd_vfio.py "$libdir" "$out" "$out/noiommu_param_n.so"
echo "DPDK tests: $((SECONDS - started)) s"
