#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
# The guest's /init (Tests/Guest/virtio_guest.py puts it in a busybox initramfs): load the modules
# Debian's cloud kernel builds virtio-net as (virtio_pci is built in), then report what bound.
# The driver reads the lines starting with PCI, VIRTIO_NET_BOUND, NETIF and GUEST-DONE.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in failover net_failover virtio_net; do insmod /lib/$m.ko || echo "insmod $m failed"; done
sleep 1
for d in /sys/bus/pci/devices/*; do
    drv=""
    [ -e "$d/driver" ] && drv="$(basename "$(readlink "$d/driver")")"
    echo "PCI $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") driver=$drv"
done
for v in /sys/bus/virtio/drivers/virtio_net/virtio*; do
    [ -e "$v" ] && echo "VIRTIO_NET_BOUND $(basename "$v")"
done
for n in /sys/class/net/*; do echo "NETIF $(basename "$n") $(cat "$n/address")"; done
echo GUEST-DONE
poweroff -f
