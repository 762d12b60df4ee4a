# SPDX-License-Identifier: BSD-3-Clause
# Debian's own kernel for the VMs rct boots (the soft-RoCE VM, the Linux COLO
# guest): extracted from its package, never installed.  Sourced by bash.
#   dk_fetch DIR               DIR/kernel holds linux-image-amd64's package;
#                              prints the kernel version
#   dk_stage_modules DIR KVER STAGE MOD...
#                              MOD and what it depends on, decompressed, into
#                              STAGE/lib/modules/KVER, with depmod run there
# Needs: apt, dpkg, kmod (modprobe, depmod), xz, zstd.

dk_fetch() {
    local dir=$1 pkg
    if ! ls "$dir"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
        if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
            apt-get update -qq # a machine whose package lists were never fetched
            pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
        fi
        [ -n "$pkg" ] || { echo "debian-kernel: cannot find Debian's kernel package (apt-get update?)" >&2; return 1; }
        echo "debian-kernel: downloading $pkg" >&2
        rm -f "$dir"/linux-image-*.deb
        (cd "$dir" && apt-get download "$pkg" >/dev/null) || return 1
        dpkg -x "$dir"/linux-image-*.deb "$dir/kernel" || return 1
    fi
    local kver
    kver=$(ls "$dir/kernel/lib/modules" | head -1)
    [ -f "$dir/kernel/lib/modules/$kver/modules.dep" ] || depmod -b "$dir/kernel" "$kver"
    echo "$kver"
}

dk_stage_modules() {
    local dir=$1 kver=$2 stage=$3 m f rel
    shift 3
    mkdir -p "$stage/lib/modules/$kver"
    for m in "$@"; do
        modprobe -d "$dir/kernel" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
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
        [ -f "$dir/kernel/lib/modules/$kver/$f" ] && cp "$dir/kernel/lib/modules/$kver/$f" "$stage/lib/modules/$kver/"
    done
    depmod -b "$stage" "$kver"
}
