#!/bin/bash
# What a hypervisor's build consumes: `cmake --install` into a scratch prefix,
# then a client built only from what pkg-config says of rct-client (as QEMU's
# meson finds it), linked, run and checked for its libraries; rctd's systemd
# unit installed with this prefix's paths.
#   install_check.sh BUILD_DIR CLIENT_SOURCE [CFLAGS]   (CFLAGS: a sanitizer build's own)
set -euo pipefail
build=$1 src=$2 extra=${3:-}
prefix=$(mktemp -d /tmp/rct-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "install-check: FAIL: $*" >&2; exit 1; }
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name rct-client.pc -printf '%h\n' | head -1)
[ -n "$libdir" ] || fail "no rct-client.pc under $prefix"
export PKG_CONFIG_PATH=$libdir
flags=$(pkg-config --cflags --libs rct-client) || fail "pkg-config rct-client"
echo "install-check: pkg-config rct-client: $flags"
case " $flags " in *" -lrct-client "*) ;; *) fail "no -lrct-client in '$flags'";; esac
cc $extra -o "$prefix/client" "$src" $flags 2>"$prefix/cc.err" || fail "building a client from pkg-config's flags"
LD_LIBRARY_PATH=$(pkg-config --variable=libdir rct-client) "$prefix/client" ||
    fail "the installed client did not run"
needed=$(readelf -d "$prefix/client" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
case "$needed" in *libucp* | *libibverbs* | *librdmacm* | *libsodium*) fail "client needs $needed";; esac
unit=$prefix/lib/systemd/system/rctd.service
[ -f "$unit" ] || fail "no $unit"
grep -qx "ExecStart=$prefix/sbin/rctd --config /etc/rctd.conf" "$unit" ||
    fail "$unit does not start $prefix/sbin/rctd: $(grep ExecStart "$unit")"
[ -x "$prefix/sbin/rctd" ] || fail "no $prefix/sbin/rctd"
doc=$(sed -n 's|^Documentation=file:||p' "$unit")
[ -f "$doc" ] || fail "the unit's documentation $doc is not installed"
[ -x "$prefix/lib/ocf/resource.d/rct/rct-colo" ] || fail "no OCF agent $prefix/lib/ocf/resource.d/rct/rct-colo"
"$prefix/lib/ocf/resource.d/rct/rct-colo" meta-data | grep -q '<resource-agent name="rct-colo"' ||
    fail "the installed OCF agent gives no meta-data"
echo "install-check: ok ($(basename "$unit") starts $prefix/sbin/rctd; client needs: $needed)"
