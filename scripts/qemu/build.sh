#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Build qemu-system-x86_64 from a pinned QEMU 10.2.2 source (Debian's) with
# rct's series (scripts/qemu/patches-10.2/*.patch: to QEMU, so
# GPL-2.0-or-later as QEMU is; see docs/qemu.md) into a cache outside the work tree, keyed by the source version
# and a hash of the patches, this script and rct's client library (the socket
# API QEMU links: daemon/client, daemon/ipc, include/rct), so that a second run
# takes seconds.  The client library is built from this tree (its build
# dependencies are rct's: scripts/deps.sh) and kept beside the binary, which
# finds it by its RPATH; QEMU's meson finds it by pkg-config (rct-client).
#
#   scripts/qemu/build.sh [--print-key | --series-check] [--help]
#
# The last line of its output is the path of the binary.  --series-check
# builds no binary for the cache: it checks that every prefix of the series
# builds on its own (configure once with --enable-werror, then apply the
# patches one at a time and run ninja after each: 1..k for every k), prints
# one line per prefix, and keeps that result in the cache under the same key.  Run it with
# -L /usr/share/seabios -L /usr/share/qemu (Debian's firmware).
#
# As root it adds a deb-src entry for the machine's own Debian mirror
# (/etc/apt/sources.list.d/rct-deb-src.sources) and installs the build
# dependencies; otherwise it says what is missing and fails.  Only the x86_64
# softmmu target is configured, with replication and the COLO proxy
# (filter-rewriter) on and no default features; qemu-img is built beside the
# binary (COLO's disk overlays); the build uses every core.  Progress goes to stderr,
# the full build log to the cache.
#   RCT_QEMU_CACHE      the cache (default /var/cache/rct-qemu)
#   RCT_QEMU_SERIES     10.2 (default): QEMU 1:10.2.2+ds-1 (Debian sid's
#                       source, pinned by its SHA-256, fetched once from the
#                       machine's Debian mirror into the cache) with
#                       patches-10.2/ (and qtest-10.2/: migration-test beside
#                       the binary), built with meson 1.7.0 from
#                       bookworm-backports unpacked into the cache (nothing
#                       installed system-wide but Debian 12's own packages:
#                       flex, bison, python3-venv, curl); or 7.2: Debian 12's
#                       own source with patches/ (kept, no longer in CI)
#   RCT_QEMU_VERSION    7.2: the source version (default: the newest qemu
#                       source the mirror offers that matches the installed
#                       binary package's base version, else the newest)
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
cache=${RCT_QEMU_CACHE:-/var/cache/rct-qemu}
say() { echo "qemu-build: $*" >&2; }
die() { say "$*"; exit 1; }

case "${1:-}" in
    -h|--help) sed -n '3,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    ""|--print-key|--series-check) ;;
    *) die "unknown argument '$1' (see --help)";;
esac

configure_args=(--target-list=x86_64-softmmu --without-default-features --enable-replication
                --enable-colo-proxy --enable-tools --enable-trace-backends=log --disable-docs --enable-fdt=system)
build_deps=(dpkg-dev meson ninja-build pkg-config python3 libglib2.0-dev libpixman-1-dev
            zlib1g-dev libfdt-dev gcc make)

need_root() {
    [ "$(id -u)" = 0 ] || die "$1 (run as root, or: $2)"
}

series=${RCT_QEMU_SERIES:-10.2}
test_patches=()
case $series in
7.2) patches=("$here"/patches/*.patch) ;;
10.2)
    # Pinned: the source package's files and the meson that builds it
    # (Debian 12's is 1.0.1; QEMU 10 needs >= 1.5), each with its SHA-256.
    q10_version=1:10.2.2+ds-1
    q10_files=("qemu_10.2.2+ds-1.dsc f1684b3aa5ec500c3389d346c6501dee45041ea91656c6556d4da9023b7987dd"
               "qemu_10.2.2+ds.orig.tar.xz be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb"
               "qemu_10.2.2+ds-1.debian.tar.xz ddf75aceab4f8f77374f3cb34fc97b41514895aeb293ce8b2ddd5e072bb0f5c0")
    meson_deb="pool/main/m/meson/meson_1.7.0-1~bpo12+1_all.deb 4b86d2f2cb4431d03826fa4b2c3a89508edeb8140509e7e4b285285ec3175bbe"
    configure_args+=(--disable-download --disable-install-blobs)
    build_deps+=(flex bison python3-venv python3-setuptools curl)
    patches=()
    for p in "$here"/patches-10.2/*.patch; do [ -e "$p" ] && patches+=("$p"); done
    # QEMU's COLO qtests for this tree (not part of the series): built into
    # migration-test beside the binary (scripts/qemu/qtest.sh runs them).
    test_patches=()
    for p in "$here"/qtest-10.2/*.patch; do [ -e "$p" ] && test_patches+=("$p"); done
    ;;
*) die "RCT_QEMU_SERIES '$series': 7.2 or 10.2" ;;
esac

# The machine's Debian mirror (the first deb URI of debian.sources).
mirror=$(sed -n 's|^URIs: *\(http[^ ]*/debian\)/*$|\1|p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
         head -1)
mirror=${mirror:-http://deb.debian.org/debian}

# A pinned file of the mirror's pool ($1: "PATH SHA256") into the cache's
# src/, once; its path on stdout.
fetch_pinned() {
    local path=${1% *} sum=${1##* } f
    f=$cache/src/$(basename "$path")
    if [ -f "$f" ] && echo "$sum  $f" | sha256sum -c --quiet >/dev/null 2>&1; then
        echo "$f"
        return 0
    fi
    mkdir -p "$cache/src"
    say "fetching $mirror/$path"
    curl -fsS -o "$f.tmp" "$mirror/$path" ||
        { rm -f "$f.tmp"; die "$mirror/$path is not served: the pinned QEMU $q10_version (or meson) is gone from the mirror; pin the version it serves now in $0"; }
    echo "$sum  $f.tmp" | sha256sum -c --quiet >/dev/null 2>&1 ||
        { rm -f "$f.tmp"; die "$mirror/$path: its SHA-256 is not the pinned $sum"; }
    mv "$f.tmp" "$f"
    echo "$f"
}

# Apply patch $1 to the source tree; $2 says what it failed to apply to.
apply_patch() {
    patch -d "$src" -p1 --forward --quiet <"$1" >>"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "$(basename "$1") does not apply $2"; }
}

# A series with x-colo-rct must have found the client library ($1: whose configure).
check_colo_rct() {
    if [ ${#patches[@]} -gt 0 ] && grep -qs "CONFIG_COLO_RCT" "${patches[@]}"; then
        grep -q "^#define CONFIG_COLO_RCT" "$src/build/config-host.h" ||
            die "$1did not find rct-client (pkg-config $stage/lib/pkgconfig): see $log"
    fi
}

# Every prefix of the series builds: configure the unpatched source once
# (warnings are errors), then patch k and ninja, for k = 1..N (meson
# reconfigures itself where a patch changes a meson.build).
series_check() {
    local p k=0 t res=()
    [ ${#patches[@]} -gt 0 ] || die "series check: no patches for series $series"
    mkdir -p "$src/build"
    export PKG_CONFIG_PATH=$stage/lib/pkgconfig
    say "series check: configure ${configure_args[*]} --enable-werror (the unpatched source)"
    (cd "$src/build" && ../configure "${configure_args[@]}" --enable-werror) >>"$log" 2>&1 ||
        { tail -30 "$log" >&2; die "configure failed: see $log"; }
    for p in "${patches[@]}"; do
        k=$((k + 1))
        t=$(date +%s)
        apply_patch "$p" "after the $((k - 1)) before it"
        say "series check: ninja with patches 1..$k of ${#patches[@]} ($(basename "$p"))"
        (cd "$src/build" && ninja -j "$(nproc)" qemu-system-x86_64) >>"$log" 2>&1 ||
            { tail -40 "$log" >&2; die "the series does not build with patches 1..$k ($(basename "$p")): see $log"; }
        res+=("series: 1..$k of ${#patches[@]} builds ($(basename "$p"), $(($(date +%s) - t)) s)")
        say "${res[-1]}"
    done
    check_colo_rct "series check: configure "
    res+=("series: every prefix of the ${#patches[@]} patches builds (source $version, --enable-werror)")
    printf '%s\n' "${res[@]}" >"$marker"
    cat "$marker"
    rm -rf "$work" "$out.tmp"
}

# A deb-src entry beside the machine's deb one, for the same mirror and suites.
src_list=/etc/apt/sources.list.d/rct-deb-src.sources
src_versions() { { apt-cache showsrc qemu 2>/dev/null || true; } | awk '/^Version:/ {print $2}' | sort -Vr; }
versions=$(src_versions)
if [ "$series" = 10.2 ]; then
    versions=$q10_version
elif [ -z "$versions" ]; then
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
if [ "$series" = 10.2 ]; then
    version=$q10_version
elif [ -n "${RCT_QEMU_VERSION:-}" ]; then
    version=$RCT_QEMU_VERSION
    grep -qxF "$version" <<<"$versions" || die "source version $version not offered: $(echo $versions)"
else
    installed=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | sed 's/+b[0-9]*$//' || true)
    version=$(grep -xF "${installed:-none}" <<<"$versions" || head -1 <<<"$versions")
fi

root=$(cd "$here/../.." && pwd)
client_src=$(cd "$root" && find daemon/client daemon/ipc include/rct scripts/cmake/rct-client.pc.in \
                 -type f | LC_ALL=C sort)
key=$(echo "$version" | tr ':~' '__')-$( (cat ${patches[@]+"${patches[@]}"} ${test_patches[@]+"${test_patches[@]}"} "$0"
                                          cd "$root" && cat $client_src) |
                                         sha256sum | cut -c1-12)
[ "${1:-}" = --print-key ] && { echo "$key"; exit 0; }
out=$cache/$key
mode=build
if [ "${1:-}" = --series-check ]; then
    mode=series
    marker=$cache/series-$key.txt
    if [ -f "$marker" ]; then
        say "series check cached: $marker"
        cat "$marker"
        exit 0
    fi
elif [ -x "$out/qemu-system-x86_64" ]; then
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
log=$cache/$key.log
if [ $mode = series ]; then
    work=$cache/series-build-$key
    log=$cache/series-$key.log
fi
rm -rf "$work" "$out.tmp"
mkdir -p "$work" "$cache"
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
if [ "$series" = 10.2 ]; then
    for f in "${q10_files[@]}"; do dsc=$(fetch_pinned "pool/main/q/qemu/$f"); done
    dsc=${dsc%/*}/${q10_files[0]%% *}
    (cd "$work" && dpkg-source -x "$dsc" "qemu-${q10_version#*:}") >>"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "dpkg-source -x $dsc failed"; }
    # meson from bookworm-backports, unpacked into the cache (not installed).
    deb=$(fetch_pinned "$meson_deb")
    mtools=$cache/tools/$(basename "$deb" .deb)
    if [ ! -x "$mtools/usr/bin/meson" ]; then
        rm -rf "$mtools" && mkdir -p "$mtools" && dpkg-deb -x "$deb" "$mtools" ||
            die "unpacking $deb failed"
    fi
    export PATH=$mtools/usr/bin:$PATH
    export PYTHONPATH=$mtools/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
    say "meson $(meson --version) from $mtools"
else
    (cd "$work" && apt-get source -qq "qemu=$version") >>"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "apt-get source qemu=$version failed"; }
fi
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -1)
[ -n "$src" ] || die "no source tree after unpacking qemu $version"
if [ $mode = series ]; then
    series_check
    exit 0
fi
for p in ${patches[@]+"${patches[@]}"}; do
    say "patch $(basename "$p")"
    apply_patch "$p" "to $version"
done
mkdir -p "$src/build"
say "configure ${configure_args[*]}"
(cd "$src/build" && PKG_CONFIG_PATH=$stage/lib/pkgconfig \
    ../configure "${configure_args[@]}" --extra-ldflags="-Wl,-rpath,$out/lib") >>"$log" 2>&1 ||
    { tail -30 "$log" >&2; die "configure failed"; }
check_colo_rct "configure "

say "ninja qemu-system-x86_64 qemu-img on $(nproc) cores (about 5 min on 2)"
(cd "$src/build" && ninja -j "$(nproc)" qemu-system-x86_64 qemu-img) >>"$log" 2>&1 ||
    { tail -40 "$log" >&2; die "the build failed"; }
cp "$src/build/qemu-system-x86_64" "$src/build/qemu-img" "$out.tmp/"
if [ ${#test_patches[@]} -gt 0 ]; then
    for p in "${test_patches[@]}"; do
        say "test patch $(basename "$p")"
        apply_patch "$p" "to $version"
    done
    say "ninja tests/qtest/migration-test"
    (cd "$src/build" && ninja -j "$(nproc)" tests/qtest/migration-test) >>"$log" 2>&1 ||
        { tail -40 "$log" >&2; die "the qtest build failed"; }
    cp "$src/build/tests/qtest/migration-test" "$out.tmp/"
fi
{
    echo "source qemu $version"
    for p in ${patches[@]+"${patches[@]}"} ${test_patches[@]+"${test_patches[@]}"}; do
        echo "patch $(basename "$p") $(sha256sum <"$p" | cut -c1-16)"
    done
    echo "configure ${configure_args[*]}"
    echo "built $(date -u +%FT%TZ) in $(($(date +%s) - t0)) s on $(nproc) cores"
} >"$out.tmp/BUILD-INFO"
rm -rf "$out"
mv "$out.tmp" "$out"
rm -rf "$work"
say "built in $(($(date +%s) - t0)) s: $out"
echo "$out/qemu-system-x86_64"
