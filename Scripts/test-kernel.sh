#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kernel-verified differential test (issue 17): boots Debian's Linux 6.1 and 6.12 under QEMU (TCG,
# emulated Intel IOMMU), runs Tests/Kernel/vfioseq.c's seeded call sequences in the guest against
# the real VFIO, captures the guest's sysfs as a model topology with `vfioctl topology capture`,
# replays the same sequences on the host under libswiftvfio-preload.so against that topology, and
# compares the outputs line by line (Tests/Kernel/harness.py). A difference fails unless
# Tests/Kernel/version-differences.tsv names it for that kernel; an entry of the table no run hits
# fails too, so every entry stays tested.
#
#   Scripts/test-kernel.sh [--fetch] [--keep] [--seeds N] [--calls N] [--kernels "6.1 6.12"]
#
#   --fetch      only make sure the cache holds the kernel images and busybox-static, then exit
#   --keep       keep the work directory (.build/kernel-harness) for inspection; it is always left
#                in place on failure
#   --seeds N    random sequences per kernel (default 24; seed 0, the directed sequence, always runs
#                first), --calls N calls per random sequence (default 150)
#   --kernels L  which to boot (default "6.1 6.12 6.12-mini 6.12-noiommu")
#
# Cache: ${SWIFTVFIO_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftvfio-kernels}, outside the
# clone so fresh clones reuse it. Each kernel is Debian's newest `linux-image-*-cloud-amd64-unsigned`
# of its series, fetched with `apt-get download` and unpacked with `dpkg -x` (never installed); only
# vmlinuz and the modules the guest loads (decompressed) are kept. Nothing here needs root except
# installing QEMU when it is missing (see Scripts/test-qemu.sh for that rule).
#
# Kernels: "6.1", "6.12" (Debian's cloud images: neither VFIO_NOIOMMU nor IOMMUFD), "6.12-mini"
# (Tests/Kernel/build-mini-kernel.sh: 6.12 from Debian's linux-source-6.12 with both; built once
# into the cache, ~5 minutes on two idle cores) booted with VT-d so iommufd's compat path is judged,
# and "6.12-noiommu", the same image without VT-d and with vfio.enable_unsafe_noiommu_mode=1.
#
# The guest's machine (q35, intel-iommu with interrupt remapping, caching mode and a 48-bit address
# width; 6.12 also with snoop control, so both answers of VFIO_DMA_CC_IOMMU are judged):
#   00:03.0 edu                       group "one": one device, bound to vfio-pci
#   00:04.0 pcie-pci-bridge, 01:01.0 edu, 01:02.0 edu
#                                     group "two": the bridge (unbound) and two vfio-pci devices
#   00:05.0 edu, 00:05.1 edu          group "unbound": multifunction, .1 left unbound
#   00:06.0 edu, 00:06.1 virtio-rng   group "nonviable": .1 bound to virtio-pci (not viable)
#   00:07.0 edu                       group "novfio": unbound, so no VFIO group node
# plus q35's own devices (host bridge, ICH9 LPC/SATA/SMBus: I/O BARs the model only describes).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export SWIFT_BACKTRACE=enable=no
unset SWIFTVFIO_TOPOLOGY SWIFTVFIO_TRACE LD_PRELOAD

fetch_only=0 keep=0 seeds=24 calls=150 kernels="6.1 6.12 6.12-mini 6.12-noiommu"
while [ $# -gt 0 ]; do
  case "$1" in
    --fetch) fetch_only=1 ;;
    --keep) keep=1 ;;
    --seeds) seeds="$2"; shift ;;
    --calls) calls="$2"; shift ;;
    --kernels) kernels="$2"; shift ;;
    *) echo "usage: $0 [--fetch] [--keep] [--seeds N] [--calls N] [--kernels LIST]" >&2; exit 2 ;;
  esac
  shift
done

cache="${SWIFTVFIO_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftvfio-kernels}"
work="$root/.build/kernel-harness"
mkdir -p "$cache"
step() { printf '\n--> %s\n' "$*"; }
die() { echo "FAILED: $*" >&2; exit 1; }

# The Debian package of each series: its newest version the configured repositories carry.
package_pattern() {
  case "$1" in
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$' ;;
    *) die "unknown kernel series $1" ;;
  esac
}

apt_newest() {  # the newest package name matching a regex, running apt-get update once if none
  local found
  found="$(apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' | sort -V | tail -1)"
  if [ -z "$found" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    found="$(apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' | sort -V | tail -1)"
  fi
  echo "$found"
}

apt_fetch() {  # apt_fetch PACKAGE DIR: download and unpack (never install) PACKAGE into DIR
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -q "$1" >/dev/null 2>&1) || { rm -rf "$tmp"; die "apt-get download $1"; }
  mkdir -p "$2"
  dpkg -x "$tmp"/*.deb "$2"
  rm -rf "$tmp"
}

# The modules' load order: `depends=` from each module's .modinfo, depth first.
declare -A modpath=() loaded=()
modorder=()
module_depends() {
  local f="$1"
  case "$f" in
    *.xz) xz -dc "$f" ;;
    *.zst) zstd -dc "$f" ;;
    *) cat "$f" ;;
  esac | tr '\0' '\n' | sed -n 's/^depends=//p' | head -1
}
add_module() {
  local name="${1//-/_}" dep
  [ -n "${loaded[$name]:-}" ] && return 0
  loaded[$name]=1
  local f="${modpath[$name]:-}"
  [ -n "$f" ] || return 0   # built in
  for dep in $(module_depends "$f" | tr ',' ' '); do add_module "$dep"; done
  modorder+=("$f")
}

fetch_kernel() {  # fetch_kernel SERIES: $cache/SERIES/{vmlinuz,release,package,kmod/*.ko,modules.list}
  local series="$1" dir="$cache/$1"
  [ -f "$dir/vmlinuz" ] && [ -f "$dir/modules.list" ] && return 0
  local pkg
  pkg="$(apt_newest "$(package_pattern "$series")")"
  [ -n "$pkg" ] || die "no package matches $(package_pattern "$series") (apt-get update?)"
  step "fetching $pkg into $dir"
  local x="$dir.unpack"
  rm -rf "$x" "$dir"
  apt_fetch "$pkg" "$x"
  local release
  release="$(basename "$(ls -d "$x"/lib/modules/*)")"
  mkdir -p "$dir/kmod"
  cp "$x/boot/vmlinuz-$release" "$dir/vmlinuz"
  modpath=() loaded=() modorder=()
  local f base
  while IFS= read -r f; do
    base="$(basename "$f")"; base="${base%%.ko*}"
    modpath[${base//-/_}]="$f"
  done < <(find "$x/lib/modules/$release/kernel" -name '*.ko*')
  for m in vfio_iommu_type1 vfio_pci virtio_pci; do add_module "$m"; done
  : > "$dir/modules.list"
  for f in "${modorder[@]}"; do
    base="$(basename "$f")"; base="${base%%.ko*}.ko"
    case "$f" in
      *.xz) xz -dc "$f" > "$dir/kmod/$base" ;;
      *.zst) zstd -dc "$f" > "$dir/kmod/$base" ;;
      *) cp "$f" "$dir/kmod/$base" ;;
    esac
    echo "$base" >> "$dir/modules.list"
  done
  echo "$release" > "$dir/release"
  echo "$pkg" > "$dir/package"
  rm -rf "$x"
}

fetch_busybox() {
  [ -x "$cache/busybox" ] && return 0
  step "fetching busybox-static into $cache"
  local x="$cache/busybox.unpack"
  rm -rf "$x"
  apt_fetch busybox-static "$x"
  cp "$x/bin/busybox" "$cache/busybox"
  rm -rf "$x"
}

fetch_busybox
booted=""
for k in $kernels; do
  case "$k" in
    6.12-mini|6.12-noiommu)
      if [ -f "$cache/6.12-mini/vmlinuz" ] || [ "$(id -u)" = 0 ] || [ "${CI:-}" = true ]; then
        bash Tests/Kernel/build-mini-kernel.sh "$cache" || die "building the minimal 6.12"
      else
        echo "SKIPPED: $k: the minimal 6.12 is not built and building it needs root (run: sudo $0 --fetch)" >&2
        continue
      fi ;;
    *) fetch_kernel "$k" ;;
  esac
  booted+=" $k"
done
kernels="$booted"
if [ "$fetch_only" = 1 ]; then
  for k in $kernels; do
    d="$cache/${k/-noiommu/-mini}"
    echo "cached: $k $(cat "$d/package") ($(wc -l < "$d/modules.list") modules)"
  done
  exit 0
fi

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (.ci/run installs qemu-system-x86)"
command -v python3 >/dev/null || die "python3 missing"

step "building vfioseq (static for the guest, dynamic for the host), vfioctl and the interposer"
rm -rf "$work"
mkdir -p "$work"
gcc -std=c11 -O2 -Wall -Wextra -Werror -static -o "$work/vfioseq-static" Tests/Kernel/vfioseq.c
gcc -std=c11 -O2 -Wall -Wextra -Werror -o "$work/vfioseq" Tests/Kernel/vfioseq.c
if [ "${SWIFTVFIO_NO_BUILD:-0}" != 1 ]; then
  swift build --product vfioctl >/dev/null
  swift build --product swiftvfio-preload >/dev/null
  swift build --product swiftvfio >/dev/null
fi
bin="$root/.build/debug"
for f in vfioctl libswiftvfio-preload.so libswiftvfio.so; do [ -e "$bin/$f" ] || die "no $bin/$f"; done

roles="-r one=0000:00:03.0 -r two=0000:01:01.0 -r unbound=0000:00:05.0 -r nonviable=0000:00:06.0 -r novfio=0000:00:07.0"

boot() {  # boot SERIES: the guest's records in $work/SERIES/data.txt
  local series="$1" out="$work/$1"
  local kdir="$cache/${series/-noiommu/-mini}" rd="$out/initramfs"
  mkdir -p "$rd/bin" "$rd/lib/kmod"
  cp "$cache/busybox" "$rd/bin/busybox"
  cp Tests/Kernel/init.sh "$rd/init"
  chmod +x "$rd/init"
  cp "$work/vfioseq-static" "$rd/vfioseq"
  cp "$kdir"/kmod/*.ko "$rd/lib/kmod/" 2>/dev/null || true   # the mini kernel has no modules
  cp "$kdir/modules.list" "$rd/modules.list"
  # In name order: no-IOMMU groups get their numbers in bind order, the model's in name order.
  printf '%s\n' 0000:00:03.0 0000:00:05.0 0000:00:06.0 0000:01:01.0 0000:01:02.0 > "$rd/bind.list"
  : > "$rd/run.list"
  # Seed 0 is the directed sequence (every table path and reachable errno), then the random ones.
  # It runs again without CAP_SYS_RAWIO (-U): the no-IOMMU boot's EPERM paths.
  for ((s = 0; s <= seeds; s++)); do echo "-S /sys -s $s -n $calls $roles" >> "$rd/run.list"; done
  echo "-S /sys -s 0 -U $roles" >> "$rd/run.list"
  (cd "$rd" && find . | "$cache/busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$out/initramfs.gz")
  # 6.1 and the mini kernel without snoop control, 6.12 with it: both VFIO_DMA_CC_IOMMU answers.
  # The no-IOMMU boot has no VT-d: vfio-pci makes /dev/vfio/noiommu-N groups for its devices.
  local snoop=off iommu cmdline="console=ttyS0 no_timer_check loglevel=4 panic=-1 rdinit=/init"
  [ "$series" = 6.12 ] && snoop=on
  if [ "$series" = 6.12-noiommu ]; then
    iommu=()
    cmdline+=" vfio.enable_unsafe_noiommu_mode=1"
    snoop=n/a
  else
    iommu=(-device "intel-iommu,intremap=on,caching-mode=on,aw-bits=48,snoop-control=$snoop")
    cmdline+=" intel_iommu=on"
  fi
  local start=$SECONDS
  timeout 150 qemu-system-x86_64 -accel tcg -machine q35 -m 512 -smp 1 -nodefaults -display none \
    -no-reboot -kernel "$kdir/vmlinuz" -initrd "$out/initramfs.gz" \
    -append "$cmdline" "${iommu[@]}" \
    -serial "file:$out/console.log" -serial "file:$out/data.txt" \
    -device edu,addr=03.0 \
    -device pcie-pci-bridge,id=br0,addr=04.0 -device edu,bus=br0,addr=01.0 -device edu,bus=br0,addr=02.0 \
    -device edu,addr=05.0,multifunction=on -device edu,addr=05.1 \
    -device edu,addr=06.0,multifunction=on -device virtio-rng-pci,addr=06.1 \
    -device edu,addr=07.0 \
    || die "$series: QEMU failed or timed out (console: $out/console.log)"
  grep -q '^@@DONE' <(tr -d '\r' < "$out/data.txt") || die "$series: the guest did not finish (console: $out/console.log)"
  echo "$series: $(cat "$kdir/package"), snoop-control=$snoop, booted and ran $seeds sequences in $((SECONDS - start)) s"
}

status=0
for k in $kernels; do
  step "Linux $k: boot, run the sequences in the guest"
  boot "$k"
  out="$work/$k"
  step "Linux $k: capture the guest's sysfs as a topology, replay on the host under the interposer"
  python3 Tests/Kernel/harness.py rebuild "$out/data.txt" "$out/sysfs"
  "$bin/vfioctl" topology capture --root "$out/sysfs" > "$out/topology.json" || die "$k: vfioctl topology capture"
  python3 Tests/Kernel/harness.py split "$out/data.txt" "$out/guest"
  mkdir -p "$out/host"
  for f in "$out"/guest/*.args; do
    n="$(basename "$f" .args)"
    # shellcheck disable=SC2046
    SWIFTVFIO_TOPOLOGY="$out/topology.json" LD_PRELOAD="$bin/libswiftvfio-preload.so" \
      "$work/vfioseq" $(sed "s|-S /sys|-S $out/sysfs|" "$f") > "$out/host/$n.out" 2> "$out/host/$n.err" \
      || { echo "host run $n failed: $(head -3 "$out/host/$n.err")" >&2; status=1; }
  done
done
step "compare"
python3 Tests/Kernel/harness.py compare --table Tests/Kernel/version-differences.tsv \
  $(for k in $kernels; do echo "$k=$work/$k"; done) || status=1
# The comparison can fail: one model result changed must be reported as a divergence.
first="$(set -- $kernels; echo "$1")"
if [ "$status" = 0 ] && [ -n "$first" ]; then
  probe="$work/probe"
  mkdir -p "$probe"
  cp -r "$work/$first/guest" "$work/$first/host" "$probe/"
  sed -i '1s/ = .*/ = -ENOTTY/' "$probe/host/001.out"
  if python3 Tests/Kernel/harness.py compare --table Tests/Kernel/version-differences.tsv "$first=$probe" \
       > "$probe/report.txt" 2>&1 \
     || ! grep -q "^DIVERGENCE: Linux $first, sequence 001 .*: line 1 differs" "$probe/report.txt"; then
    echo "FAILED: a changed model result went unnoticed by the comparison" >&2
    status=1
  fi
fi
if [ "$status" = 0 ] && [ "$keep" = 0 ]; then rm -rf "$work"; fi
[ "$status" = 0 ] || die "kernel-verified comparison (work directory: $work)"
echo "kernel-verified comparison: OK"
