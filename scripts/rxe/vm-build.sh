#!/bin/bash
# Build the throw-away soft-RoCE VM's boot files into $RCT_RXE_VM_CACHE
# (default /var/tmp/rct-rxe-vm): Debian's kernel (extracted from its package,
# not installed) and a busybox initramfs with the rdma_rxe module chain and
# vm-init.sh as /init.  Run by vm-run.sh when the files are missing or older
# than vm-init.sh.  Needs: qemu-system-x86 busybox-static kmod cpio, and apt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${RCT_RXE_VM_CACHE:-/var/tmp/rct-rxe-vm}
mkdir -p "$cache"
cd "$cache"

# shellcheck source=scripts/lib/debian-kernel.sh
. "$here/../lib/debian-kernel.sh"
kver=$(dk_fetch "$cache")
cp "kernel/boot/vmlinuz-$kver" vmlinuz

# 9p for the host's filesystem, virtio-console for the command's output,
# dummy for the link under rxe0, veth for rxe1/rxe2 and netem to cut it, overlay for a writable root.
mods="virtio_pci 9pnet_virtio 9p virtio_console dummy veth sch_netem overlay crc32_generic rdma_rxe rdma_ucm ib_umad"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,mnt,newroot,lib/modules/$kver}
cp /bin/busybox "$stage/bin/busybox"
# shellcheck disable=SC2086 # the module list splits into words
dk_stage_modules "$cache" "$kver" "$stage" $mods
echo "$mods" | tr ' ' '\n' | grep -vx -e dummy -e '' > "$stage/modules.list"
cp "$here/vm-init.sh" "$stage/init"
chmod 755 "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz.tmp
mv initramfs.cpio.gz.tmp initramfs.cpio.gz
echo "rxe-vm: built $cache/vmlinuz ($kver) and initramfs.cpio.gz" >&2
