#!/bin/busybox sh
# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=dash
# /init of the Linux COLO test guest (build.sh): the virtio NIC and disk, the
# disk's ext4 at /data, colo-svc on port 7777 logging to /data/requests.log,
# and "HB n" on the serial console every second.  The kernel command line
# gives the address: rct.ip=A.B.C.D/NN.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do modprobe "$m" || echo "init: modprobe $m failed"; done < /modules.list
ip=
for w in $(cat /proc/cmdline); do
    case "$w" in rct.ip=*) ip=${w#rct.ip=};; esac
done
ip link set lo up
ip link set eth0 up && [ -n "$ip" ] && ip addr add "$ip" dev eth0 || echo "init: eth0 $ip failed"
mkdir -p /data
if mount -t ext4 -o data=ordered /dev/vda /data; then
    /colo-svc 7777 /data/requests.log > /dev/ttyS0 2>&1 &
else
    echo "init: FAILED: mounting /dev/vda on /data: no service" > /dev/ttyS0
fi
echo "init: up, eth0 $ip" > /dev/ttyS0
i=0
while :; do
    echo "HB $i" > /dev/ttyS0
    i=$((i + 1))
    sleep 1
done
