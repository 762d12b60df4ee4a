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

if ! ls kernel/boot/vmlinuz-* >/dev/null 2>&1; then
    find_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'; }
    pkg=$(find_pkg)
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
        apt-get update -qq # a machine whose package lists were never fetched
        pkg=$(find_pkg)
    fi
    [ -n "$pkg" ] || { echo "rxe-vm: cannot find Debian's kernel package (apt-get update?)" >&2; exit 1; }
    echo "rxe-vm: downloading $pkg" >&2
    rm -f linux-image-*.deb
    apt-get download "$pkg" >/dev/null
    dpkg -x linux-image-*.deb kernel
fi
kver=$(ls kernel/lib/modules | head -1)
cp "kernel/boot/vmlinuz-$kver" vmlinuz
[ -f "kernel/lib/modules/$kver/modules.dep" ] || depmod -b kernel "$kver"

# 9p for the host's filesystem, virtio-console for the command's output,
# dummy for the link under rxe0, veth for rxe1/rxe2 and netem to cut it, overlay for a writable root.
mods="virtio_pci 9pnet_virtio 9p virtio_console dummy veth sch_netem overlay crc32_generic rdma_rxe rdma_ucm ib_umad"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,mnt,newroot,lib/modules/$kver}
cp /bin/busybox "$stage/bin/busybox"
for m in $mods; do
    modprobe -d kernel -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r f; do
    rel=${f#*/lib/modules/$kver/}
    mkdir -p "$stage/lib/modules/$kver/$(dirname "$rel")"
    case "$f" in
        *.xz) xz -dc "$f" > "$stage/lib/modules/$kver/${rel%.xz}" ;;
        *.zst) zstd -dcq "$f" > "$stage/lib/modules/$kver/${rel%.zst}" ;;
        *) cp "$f" "$stage/lib/modules/$kver/$rel" ;;
    esac
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -f "kernel/lib/modules/$kver/$f" ] && cp "kernel/lib/modules/$kver/$f" "$stage/lib/modules/$kver/"
done
depmod -b "$stage" "$kver"
echo "$mods" | tr ' ' '\n' | grep -vx -e dummy -e '' > "$stage/modules.list"
cp "$here/vm-init.sh" "$stage/init"
chmod 755 "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz.tmp
mv initramfs.cpio.gz.tmp initramfs.cpio.gz
echo "rxe-vm: built $cache/vmlinuz ($kver) and initramfs.cpio.gz" >&2
