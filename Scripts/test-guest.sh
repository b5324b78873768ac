#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A Linux guest's virtio_net binds the model (issue 13, item 5): Debian 12's 6.12 cloud kernel,
# booted by QEMU 7.2 under TCG with the model's virtio-net personality passed through by
# `-device vfio-pci` under libswiftvfio-preload.so; the guest's own virtio-pci and virtio_net bind
# it and eth0 carries the topology's MAC. The checks are Tests/Guest/virtio_guest.py's (read its
# docstring).
#
#   Scripts/test-guest.sh [BUILD_DIR]
#
# BUILD_DIR as for Scripts/test-qemu.sh (default .build/debug; built first unless
# SWIFTVFIO_NO_BUILD=1). The kernel (linux-image-6.12.*-cloud-amd64-unsigned, the newest the
# apt sources offer) and busybox-static are fetched with `apt-get download` (no root needed),
# unpacked with `dpkg -x`, and cached in ${XDG_CACHE_HOME:-~/.cache}/swiftvfio-kernels/virtio-guest
# (vmlinuz, failover.ko, net_failover.ko, virtio_net.ko, busybox). QEMU and python3 are installed
# as Scripts/test-qemu.sh installs them. When something cannot be had: under CI=true a failure,
# otherwise the script says so and exits 0 (skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
libdir="${1:-.build/debug}"
case "$libdir" in /*) ;; *) libdir="$root/$libdir" ;; esac
scratch="$(dirname "$libdir")"

export SWIFT_BACKTRACE=enable=no
unset SWIFTVFIO_TOPOLOGY SWIFTVFIO_TRACE LD_PRELOAD

skip_or_fail() {
  if [ "${CI:-}" = true ]; then echo "FAILED: $*" >&2; exit 1; fi
  echo "SKIPPED: guest test: $*" >&2
  exit 0
}

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || skip_or_fail "${need[*]} not installed and not root"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/swiftvfio-kernels/virtio-guest"
if [ ! -f "$cache/vmlinuz" ] || [ ! -f "$cache/virtio_net.ko" ] || [ ! -x "$cache/busybox" ]; then
  printf '\n--> fetching the guest kernel and busybox-static into %s\n' "$cache"
  pkg="$(apt-cache search --names-only '^linux-image-6\.12\..*-cloud-amd64-unsigned$' 2>/dev/null \
         | awk '{print $1}' | sort -V | tail -1)"
  if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    pkg="$(apt-cache search --names-only '^linux-image-6\.12\..*-cloud-amd64-unsigned$' | awk '{print $1}' | sort -V | tail -1)"
  fi
  [ -n "$pkg" ] || skip_or_fail "no linux-image-6.12.*-cloud-amd64-unsigned in the apt sources"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -q "$pkg" busybox-static >/dev/null 2>&1) \
    || skip_or_fail "apt-get download $pkg busybox-static failed"
  dpkg -x "$work"/linux-image-*.deb "$work/k"
  dpkg -x "$work"/busybox-static_*.deb "$work/b"
  mkdir -p "$cache"
  cp "$work"/k/boot/vmlinuz-* "$cache/vmlinuz"
  for m in net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
    src="$(ls "$work"/k/lib/modules/*/kernel/$m.ko*)"
    python3 -c 'import lzma,sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(lzma.decompress(d) if sys.argv[1].endswith(".xz") else d)' \
      "$src" "$cache/$(basename $m).ko"
  done
  cp "$work/b/bin/busybox" "$cache/busybox"
  echo "$pkg" > "$cache/package"
fi
echo "guest kernel: $(cat "$cache/package" 2>/dev/null || echo cached)"

if [ "${SWIFTVFIO_NO_BUILD:-0}" != 1 ]; then
  printf '\n--> swift build --scratch-path %s\n' "$scratch"
  swift build --scratch-path "$scratch"
fi
[ -f "$libdir/libswiftvfio-preload.so" ] || { echo "FAILED: no $libdir/libswiftvfio-preload.so" >&2; exit 1; }

out="$scratch/guest-tests"
rm -rf "$out"
mkdir -p "$out"
python3 Tests/Guest/virtio_guest.py "$libdir" "$out" "$cache" "$cache/busybox"
