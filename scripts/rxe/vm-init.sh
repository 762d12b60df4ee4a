#!/bin/busybox sh
# /init of the soft-RoCE VM.  Loads the rxe module chain, mounts the host's /
# (9p, read-only) under a tmpfs overlay, puts rxe0 on dummy0 (10.77.0.1/24, no
# NIC: nothing leaves the VM), runs the host-written $RUN_DIR/cmd.sh chrooted
# in that view, stores its exit status in $RUN_DIR/rc and powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo /bin/modprobe > /proc/sys/kernel/modprobe
XFER=/mnt/xfer
say() { echo "rxe-vm[$(cut -d' ' -f1 /proc/uptime)]: $*"; }
die() {
    say "FATAL: $*"
    [ -d $XFER/. ] && echo 255 > $XFER/rc
    sync; poweroff -f; sleep 5
}

for a in $(cat /proc/cmdline); do
    case "$a" in rxevm.date=*) date -s "@${a#*=}" >/dev/null ;; esac
done

modprobe dummy numdummies=0 || die "modprobe dummy"
modprobe -a $(cat /modules.list) || die "modprobe $(cat /modules.list)"
P9="trans=virtio,version=9p2000.L,msize=512000"
mkdir -p $XFER /mnt/lower /mnt/rw
mount -t 9p -o $P9,cache=none xfer $XFER || die "mount xfer"
. $XFER/config
mount -t 9p -o $P9,cache=loose,ro hostroot /mnt/lower || die "mount hostroot"
mount -t tmpfs -o size=${TMPFS_SIZE:-50%} rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot \
    || die "overlay"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm $R/run/lock
mount -t devpts -o ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs shm $R/dev/shm
mount -t tmpfs run $R/run
mkdir -p $R/run/lock "$R$RUN_DIR"
mount --bind $XFER "$R$RUN_DIR" || die "bind $RUN_DIR"
i=0
for d in $RW_DIRS; do
    mkdir -p "$R$d" 2>/dev/null
    mount -t 9p -o $P9,cache=none "rw$i" "$R$d" || die "mount rw$i at $d"
    i=$((i + 1))
done

ip link set lo up
hostname rxevm
ip link add dummy0 type dummy || die "dummy0"
ip link set dummy0 mtu ${MTU:-1500}
ip addr add 10.77.0.1/24 dev dummy0
ip link set dummy0 up
# IPv6 too (the host's iproute2 by full path: busybox ip has no nodad)
out=$(chroot $R /usr/bin/ip -6 addr add fd00:77::1/64 dev dummy0 nodad 2>&1) || say "no IPv6 address on dummy0: $out"
chroot $R rdma link add rxe0 type rxe netdev dummy0 || die "rdma link add rxe0"
say "rxe ready: $(ls /sys/class/infiniband | tr '\n' ' ')"

OUT=/dev/null ERR=/dev/null
for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] || continue
    case "$(cat $p/name)" in
        rxevm.stdout) OUT=/dev/${p##*/} ;;
        rxevm.stderr) ERR=/dev/${p##*/} ;;
    esac
done
chroot $R /bin/bash "$RUN_DIR/cmd.sh" </dev/null >$OUT 2>$ERR
rc=$?
say "command exited with $rc"
echo $rc > $XFER/rc
sync
poweroff -f
sleep 10
