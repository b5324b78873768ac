#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
# The guest's /init (issue 17): Scripts/test-kernel.sh packs it with busybox-static, the vfio
# modules of the booted image, vfioseq (static) and a run list into the initramfs.
#
# It loads the modules listed in /modules.list (dependency order, decided on the host), binds the
# devices listed in /bind.list to vfio-pci through driver_override, writes the parts of sysfs a
# topology capture reads to the second serial port (ttyS1) as "@@S" records (Scripts/test-kernel.sh
# rebuilds the tree from them on the host), runs every line of /run.list as a vfioseq command
# with its output framed by "@@RUN <args>" / "@@END <status>", then powers off.
# Everything else (kernel messages, errors) goes to the console, ttyS0.
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
out=/dev/ttyS1
stty -F "$out" raw -echo 2>/dev/null

# Modules: "name.ko" per line, already in load order.
while read -r m; do
    [ -n "$m" ] && insmod "/lib/kmod/$m" || echo "init: insmod $m failed" >&2
done < /modules.list

# vfio-pci for the listed devices only; the others keep their driver (or none).
while read -r d; do
    [ -n "$d" ] || continue
    echo vfio-pci > "/sys/bus/pci/devices/$d/driver_override"
    echo "$d" > /sys/bus/pci/drivers_probe
done < /bind.list

uname_r=$(uname -r)
{
    echo "@@KERNEL $uname_r"
    # The sysfs records: D dir, L link target, F file (one record per line of text), Z file size.
    for g in /sys/kernel/iommu_groups/*; do
        [ -d "$g" ] || continue
        rel=${g#/sys/}
        echo "@@S D $rel/devices"
        for d in "$g"/devices/*; do
            [ -e "$d" ] || [ -L "$d" ] || continue
            echo "@@S L $rel/devices/${d##*/} $(readlink "$d")"
        done
        [ -f "$g/name" ] && while IFS= read -r line; do echo "@@S F $rel/name $line"; done < "$g/name"
        [ -f "$g/type" ] && while IFS= read -r line; do echo "@@S F $rel/type $line"; done < "$g/type"
    done
    for iommu in /sys/class/iommu/*; do
        [ -e "$iommu" ] || continue
        echo "@@S L ${iommu#/sys/} $(readlink "$iommu")"
        real=$(readlink -f "$iommu")
        for f in cap ecap version; do
            [ -f "$real/intel-iommu/$f" ] && echo "@@S F ${real#/sys/}/intel-iommu/$f $(cat "$real/intel-iommu/$f")"
        done
    done
    for d in /sys/bus/pci/devices/*; do
        name=${d##*/}
        echo "@@S L bus/pci/devices/$name $(readlink "$d")"
        real=$(readlink -f "$d")
        rel=${real#/sys/}
        echo "@@S D $rel"
        for l in iommu_group driver iommu; do
            [ -L "$real/$l" ] && echo "@@S L $rel/$l $(readlink "$real/$l")"
        done
        for f in vendor device class subsystem_vendor subsystem_device revision resource driver_override reset_method; do
            [ -f "$real/$f" ] || continue
            while IFS= read -r line; do echo "@@S F $rel/$f $line"; done < "$real/$f"
        done
        [ -f "$real/config" ] && echo "@@S Z $rel/config $(stat -c %s "$real/config")"
    done
    echo "@@S D class/misc"
    for m in /sys/class/misc/*; do
        [ -L "$m" ] && echo "@@S L ${m#/sys/} $(readlink "$m")"
    done
    for p in /sys/module/vfio/parameters/enable_unsafe_noiommu_mode; do
        [ -f "$p" ] && echo "@@S F ${p#/sys/} $(cat "$p")"
    done
    # The device nodes as the kernel made them (major:minor), for the version table.
    for n in /dev/vfio/* /dev/iommu; do
        [ -e "$n" ] && echo "@@NODE $n $(stat -c '%t:%T %a' "$n")"
    done
    while IFS= read -r args; do
        [ -n "$args" ] || continue
        echo "@@RUN $args"
        # shellcheck disable=SC2086
        /vfioseq $args
        echo "@@END $?"
    done < /run.list
    echo "@@DONE"
} > "$out" 2>&1
sync
poweroff -f
