#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Build the Linux COLO test guest (issue 33): Debian's own kernel and a
# busybox initramfs with the virtio NIC and disk modules, ext4, colo-svc (a
# request/response service that appends every request to a file on the disk
# and fsyncs it before answering: colo-svc.c) and init.sh as /init.  Cached in
# /var/cache/rct-qemu/linux-guest-KEY (KEY: the kernel package and these
# files).  Prints the folder holding vmlinuz and initramfs.cpio.gz.
#   scripts/qemu/guest-linux/build.sh
#   scripts/qemu/guest-linux/build.sh --disk FILE [SIZE_MIB]  an empty ext4 disk image (64)
# Boot: -kernel vmlinuz -initrd initramfs.cpio.gz -append "console=ttyS0 rct.ip=10.0.0.10/24"
#       -device virtio-net-pci,... -drive if=none,id=d0,... -device virtio-blk-pci,drive=d0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    -h|--help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit;;
    --disk)
        f=${2:?--disk needs a file}
        size=${3:-64}
        rm -f "$f"
        truncate -s "${size}M" "$f"
        mkfs.ext4 -q -F -L coloda -E lazy_itable_init=0,lazy_journal_init=0 "$f"
        echo "$f"
        exit;;
    "") ;;
    *) echo "guest-linux: unknown argument '$1' (see --help)" >&2; exit 2;;
esac
root=${RCT_QEMU_CACHE:-/var/cache/rct-qemu}
kcache=${RCT_RXE_VM_CACHE:-/var/tmp/rct-rxe-vm}
mkdir -p "$root" "$kcache"
# shellcheck source=scripts/lib/debian-kernel.sh
. "$here/../../lib/debian-kernel.sh"
kver=$(dk_fetch "$kcache")
key=$(cat "$here/build.sh" "$here/init.sh" "$here/colo-svc.c" "$here/../../lib/debian-kernel.sh" |
    { cat; echo "$kver"; } | sha256sum | cut -c1-12)
out=$root/linux-guest-$key
if [ -f "$out/initramfs.cpio.gz" ]; then
    echo "$out"
    exit
fi
echo "guest-linux: building into $out (kernel $kver)" >&2
stage=$(mktemp -d)
trap 'rm -rf "$stage" "$out.tmp"' EXIT
rm -rf "$out.tmp"
mkdir -p "$out.tmp" "$stage"/{bin,sbin,proc,sys,dev,data}
cp /bin/busybox "$stage/bin/busybox"
mods="virtio_pci virtio_net virtio_blk e1000 crc32c_generic ext4"
# shellcheck disable=SC2086 # the module list splits into words
dk_stage_modules "$kcache" "$kver" "$stage" $mods
echo "$mods" | tr ' ' '\n' > "$stage/modules.list"
gcc -static -O2 -Wall -Wextra -Werror -o "$stage/colo-svc" "$here/colo-svc.c"
cp "$here/init.sh" "$stage/init"
chmod 755 "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp/initramfs.cpio.gz"
cp "$kcache/kernel/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
mv "$out.tmp" "$out"
echo "$out"
