#!/bin/busybox sh
# /init of the soft-RoCE VM.  Loads the rxe module chain, mounts the host's /
# (9p, read-only) under a tmpfs overlay, puts rxe0 on dummy0 (10.77.0.1/24, no
# NIC: nothing leaves the VM) and rxe1/rxe2 on a veth pair (below), runs the host-written $RUN_DIR/cmd.sh chrooted
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

# rxe1 and rxe2 on the two ends of a veth pair, rxv0 (10.78.0.1) and rxv1
# (10.78.0.2): two devices with a link between them that a test can cut
# (rct-fault --link rxv0,rxv1,10.78.0.2).  Both ends stay in this namespace:
# rdma_rxe of this kernel has its UDP socket in the initial one only.  So that
# packets between two local addresses cross the pair instead of lo, what is
# sent from here to either address is routed out the other end (rules ahead of
# the local table), and what arrives from a local address is accepted.
ipr() { chroot $R /usr/bin/ip "$@" || die "ip $*"; }
ipr link add rxv0 mtu ${MTU:-1500} type veth peer name rxv1 mtu ${MTU:-1500}
ipr addr add 10.78.0.1/24 dev rxv0
ipr addr add 10.78.0.2/24 dev rxv1
for c in all default rxv0 rxv1; do
    echo 1 > /proc/sys/net/ipv4/conf/$c/accept_local
    echo 0 > /proc/sys/net/ipv4/conf/$c/rp_filter
done
# veth hands a packet to the backlog of the CPU that sent it: rxe's requester
# moving between CPUs reordered one QP's packets, and this kernel's rxe answered
# a reordered multi-packet WRITE with an invalid-request NAK ("RDMA WRITE failed:
# remote invalid request", 4 of 45 link-cut trials, on healthy links).  A link
# keeps order: receive both ends on CPU 0 (RPS).
for d in rxv0 rxv1; do echo 1 > /sys/class/net/$d/queues/rx-0/rps_cpus || die "rps_cpus of $d"; done
ipr link set rxv0 up
ipr link set rxv1 up
ipr route add 10.78.0.2 dev rxv0 src 10.78.0.1 table 78
ipr route add 10.78.0.1 dev rxv1 src 10.78.0.2 table 79
ipr rule add pref 10 to 10.78.0.2 iif lo lookup 78
ipr rule add pref 11 to 10.78.0.1 iif lo lookup 79
ipr rule add pref 100 lookup local
ipr rule del pref 0
chroot $R rdma link add rxe1 type rxe netdev rxv0 || die "rdma link add rxe1"
chroot $R rdma link add rxe2 type rxe netdev rxv1 || die "rdma link add rxe2"
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
