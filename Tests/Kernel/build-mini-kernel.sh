#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the minimal Linux 6.12 the kernel-verified test uses to judge no-IOMMU and iommufd (issue
# 17, item 5): Debian's prebuilt kernels enable neither CONFIG_VFIO_NOIOMMU nor CONFIG_IOMMUFD.
#
#   Tests/Kernel/build-mini-kernel.sh CACHE
#
# Source: Debian's linux-source-6.12, fetched with `apt-get download` and unpacked (not installed).
# Configuration: `make tinyconfig`, then built in (no modules) what a q35 guest with VT-d, a serial
# console and a busybox initramfs needs, plus VFIO with group, container, no-IOMMU, PCI and device
# cdev, and IOMMUFD; the script fails if `olddefconfig` dropped any of them (VFIO_IOMMU_TYPE1 is
# selected, not set, so it is checked too). Result: CACHE/6.12-mini/{vmlinuz,package,release,
# modules.list (empty: everything is built in)}. Build tools (flex, bison, bc, libelf-dev,
# libssl-dev, cpio) are installed with apt-get when missing and running as root.
set -euo pipefail
cache="$1"
out="$cache/6.12-mini"
[ -f "$out/vmlinuz" ] && exit 0

need=()
for tool in flex:flex bison:bison bc:bc cpio:cpio; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/openssl/opensslv.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "build-mini-kernel: need ${need[*]} (not root: cannot install)" >&2; exit 1; }
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

build="$cache/6.12-mini.build"
rm -rf "$build"
mkdir -p "$build"
(cd "$build" && apt-get download -q linux-source-6.12 >/dev/null 2>&1) || { echo "build-mini-kernel: apt-get download linux-source-6.12 failed" >&2; exit 1; }
deb="$(ls "$build"/linux-source-6.12_*.deb)"
dpkg -x "$deb" "$build/pkg"
tar -C "$build" -xf "$build"/pkg/usr/src/linux-source-6.12.tar.xz
src="$(ls -d "$build"/linux-source-6.12)"
cd "$src"
make -s tinyconfig >/dev/null
options=(64BIT PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE BLK_DEV_INITRD RD_GZIP BINFMT_ELF
  BINFMT_SCRIPT PROC_FS SYSFS DEVTMPFS PCI PCIEPORTBUS PCI_MSI ACPI IOMMU_SUPPORT INTEL_IOMMU
  IRQ_REMAP X86_X2APIC EVENTFD FUTEX MULTIUSER VFIO VFIO_GROUP VFIO_CONTAINER VFIO_NOIOMMU VFIO_PCI
  VFIO_DEVICE_CDEV IOMMUFD VIRTIO_MENU VIRTIO VIRTIO_PCI POSIX_TIMERS SHMEM TMPFS)
for o in "${options[@]}"; do scripts/config --enable "$o"; done
scripts/config --disable IOMMUFD_VFIO_CONTAINER --disable MODULES
make -s olddefconfig >/dev/null
for o in "${options[@]}" VFIO_IOMMU_TYPE1 VFIO_PCI_CORE; do
  grep -q "^CONFIG_$o=y" .config || { echo "build-mini-kernel: CONFIG_$o is not y after olddefconfig" >&2; exit 1; }
done
start=$SECONDS
make -s -j"$(nproc)" bzImage >/dev/null
mkdir -p "$out"
cp arch/x86/boot/bzImage "$out/vmlinuz"
cp .config "$out/config"
make -s kernelrelease > "$out/release"
echo "linux-source-6.12 $(dpkg-deb -f "$deb" Version) (tinyconfig + VFIO_NOIOMMU + IOMMUFD)" > "$out/package"
: > "$out/modules.list"
mkdir -p "$out/kmod"
echo "build-mini-kernel: built $(cat "$out/release") in $((SECONDS - start)) s"
rm -rf "$build"
