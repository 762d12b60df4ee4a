#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Build qemu-system-x86_64 from Debian 12's QEMU source with rct's patches
# (scripts/qemu/patches/*.patch: to QEMU, so GPL-2.0-or-later as QEMU is; see
# docs/qemu.md) into a cache outside the work tree, keyed by the source version
# and a hash of the patches, this script and rct's client library (the socket
# API QEMU links: daemon/client, daemon/ipc, include/rct), so that a second run
# takes seconds.  The client library is built from this tree (its build
# dependencies are rct's: scripts/deps.sh) and kept beside the binary, which
# finds it by its RPATH; QEMU's meson finds it by pkg-config (rct-client).
#
#   scripts/qemu/build.sh [--print-key] [--help]
#
# The last line of its output is the path of the binary.  Run it with
# -L /usr/share/seabios -L /usr/share/qemu (Debian's firmware).
#
# As root it adds a deb-src entry for the machine's own Debian mirror
# (/etc/apt/sources.list.d/rct-deb-src.sources) and installs the build
# dependencies; otherwise it says what is missing and fails.  Only the x86_64
# softmmu target is configured, with replication (COLO's block side) on and
# no default features; the build uses every core.  Progress goes to stderr,
# the full build log to the cache.
#   RCT_QEMU_CACHE      the cache (default /var/cache/rct-qemu)
#   RCT_QEMU_VERSION    the source version (default: the newest qemu source
#                       the mirror offers that matches the installed binary
#                       package's base version, else the newest)
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
cache=${RCT_QEMU_CACHE:-/var/cache/rct-qemu}
say() { echo "qemu-build: $*" >&2; }
die() { say "$*"; exit 1; }

case "${1:-}" in
    -h|--help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    ""|--print-key) ;;
    *) die "unknown argument '$1' (see --help)";;
esac

configure_args=(--target-list=x86_64-softmmu --without-default-features --enable-replication
                --enable-trace-backends=log --disable-docs --enable-fdt=system)
build_deps=(dpkg-dev meson ninja-build pkg-config python3 libglib2.0-dev libpixman-1-dev
            zlib1g-dev libfdt-dev gcc make)

need_root() {
    [ "$(id -u)" = 0 ] || die "$1 (run as root, or: $2)"
}

# A deb-src entry beside the machine's deb one, for the same mirror and suites.
src_list=/etc/apt/sources.list.d/rct-deb-src.sources
src_versions() { { apt-cache showsrc qemu 2>/dev/null || true; } | awk '/^Version:/ {print $2}' | sort -Vr; }
versions=$(src_versions)
if [ -z "$versions" ]; then
    need_root "no source package for qemu in apt's lists" \
        "add a deb-src entry for your Debian mirror and apt-get update"
    [ -f /etc/apt/sources.list.d/debian.sources ] ||
        die "no /etc/apt/sources.list.d/debian.sources to take the mirror from"
    say "adding $src_list (deb-src of the mirror in debian.sources)"
    sed -n 's/^Types: deb$/Types: deb-src/; /^Types:\|^URIs:\|^Suites:\|^Components:\|^Signed-By:\|^$/p' \
        /etc/apt/sources.list.d/debian.sources |
        sed '1i # Added by rct scripts/qemu/build.sh: Debian source packages (QEMU).' >"$src_list"
    apt-get update -qq
    versions=$(src_versions)
    [ -n "$versions" ] || die "still no qemu source after adding $src_list"
fi
if [ -n "${RCT_QEMU_VERSION:-}" ]; then
    version=$RCT_QEMU_VERSION
    grep -qxF "$version" <<<"$versions" || die "source version $version not offered: $(echo $versions)"
else
    installed=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | sed 's/+b[0-9]*$//' || true)
    version=$(grep -xF "${installed:-none}" <<<"$versions" || head -1 <<<"$versions")
fi

patches=("$here"/patches/*.patch)
root=$(cd "$here/../.." && pwd)
client_src=$(cd "$root" && find daemon/client daemon/ipc include/rct scripts/cmake/rct-client.pc.in \
                 -type f | LC_ALL=C sort)
key=$(echo "$version" | tr ':~' '__')-$( (cat "${patches[@]}" "$0"; cd "$root" && cat $client_src) |
                                         sha256sum | cut -c1-12)
[ "${1:-}" = --print-key ] && { echo "$key"; exit 0; }
out=$cache/$key
if [ -x "$out/qemu-system-x86_64" ]; then
    say "cached: $out (source $version, ${#patches[@]} patches)"
    echo "$out/qemu-system-x86_64"
    exit 0
fi

missing=()
for p in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    need_root "missing build dependencies: ${missing[*]}" "apt-get install ${missing[*]}"
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

work=$cache/build-$key
rm -rf "$work" "$out.tmp"
mkdir -p "$work" "$cache"
log=$cache/$key.log
say "building source $version with ${#patches[@]} patches in $work (log: $log)"
t0=$(date +%s)

# rct's client library, staged as an install (lib/, include/, lib/pkgconfig/).
stage=$work/rct-client
say "librct-client from $root"
{ cmake -S "$root" -B "$work/rct-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRCT_BUILD_TESTS=OFF &&
  cmake --build "$work/rct-build" --target rct_client -j "$(nproc)"; } >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "building librct-client failed"; }
mkdir -p "$stage/lib/pkgconfig" "$stage/include/rct" "$out.tmp/lib"
cp -P "$work"/rct-build/daemon/librct-client.so* "$stage/lib/"
cp "$root"/include/rct/*.h "$stage/include/rct/"
cp "$work/rct-build/rct-client.pc" "$stage/lib/pkgconfig/"
cp -P "$work"/rct-build/daemon/librct-client.so* "$out.tmp/lib/"
(cd "$work" && apt-get source -qq "qemu=$version") >>"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "apt-get source qemu=$version failed"; }
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -1)
[ -n "$src" ] || die "no source tree after apt-get source"
for p in "${patches[@]}"; do
    say "patch $(basename "$p")"
    patch -d "$src" -p1 --forward --quiet <"$p" >>"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "$(basename "$p") does not apply to $version"; }
done
mkdir -p "$src/build"
say "configure ${configure_args[*]}"
(cd "$src/build" && PKG_CONFIG_PATH=$stage/lib/pkgconfig \
    ../configure "${configure_args[@]}" --extra-ldflags="-Wl,-rpath,$out/lib") >>"$log" 2>&1 ||
    { tail -30 "$log" >&2; die "configure failed"; }
grep -q "^#define CONFIG_COLO_RCT" "$src/build/config-host.h" ||
    die "configure did not find rct-client (pkg-config $stage/lib/pkgconfig): see $log"

say "ninja qemu-system-x86_64 on $(nproc) cores (about 5 min on 2)"
(cd "$src/build" && ninja -j "$(nproc)" qemu-system-x86_64) >>"$log" 2>&1 ||
    { tail -40 "$log" >&2; die "the build failed"; }
cp "$src/build/qemu-system-x86_64" "$out.tmp/"
{
    echo "source qemu $version"
    for p in "${patches[@]}"; do echo "patch $(basename "$p") $(sha256sum <"$p" | cut -c1-16)"; done
    echo "configure ${configure_args[*]}"
    echo "built $(date -u +%FT%TZ) in $(($(date +%s) - t0)) s on $(nproc) cores"
} >"$out.tmp/BUILD-INFO"
rm -rf "$out"
mv "$out.tmp" "$out"
rm -rf "$work"
say "built in $(($(date +%s) - t0)) s: $out"
echo "$out/qemu-system-x86_64"
