#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# ocf-tester (resource-agents) on the rct-colo agent, against a real rctd and
# the patched QEMU (scripts/qemu/build.sh, cached), outside a cluster: every
# action, its OCF exit codes, idempotence (start twice, promote twice, demote
# a demoted instance, stop twice).  Last line:
#   ocf-tester: rct-colo passed all tests
#
#   scripts/ocf/ocf-test.sh RCT_BUILD_DIR [QEMU]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
esac
build=$1
qemu=${2:-$("$top/scripts/qemu/build.sh" | tail -n 1)}
command -v ocf-tester >/dev/null || { echo "ocf-test: no ocf-tester (Debian: resource-agents)" >&2; exit 2; }
work=$(mktemp -d /tmp/rct-ocf-test.XXXXXX)
rctd_pid=
cleanup() {
    [ -n "$rctd_pid" ] && kill "$rctd_pid" 2>/dev/null && wait "$rctd_pid" 2>/dev/null
    [ -s "$work/st/qemu.pid" ] && kill -9 "$(cat "$work/st/qemu.pid")" 2>/dev/null
    rm -rf "$work" /dev/shm/rct-colo-ocf-test.ram
}
trap cleanup EXIT
"$top/scripts/qemu/guest/build-guest.sh" "$work/guest.elf" 40 >/dev/null
head -c 32 /dev/urandom > "$work/key"
"$build/daemon/rctd" -s "$work/rctd.sock" -S "$work/state" > "$work/rctd.log" 2>&1 &
rctd_pid=$!
for _ in $(seq 100); do [ -S "$work/rctd.sock" ] && break; sleep 0.05; done
# The agent finds the node it runs on with crm_node -n, else uname -n.
node=$(crm_node -n 2>/dev/null || uname -n)
out=$work/ocf-tester.out
rc=0
ocf-tester -n colo -o pairing=ocf-test -o pairing_key="$work/key" -o nodes="$node=127.0.0.1" \
    -o kernel="$work/guest.elf" -o qemu="$qemu" -o rctctl="$build/daemon/rctctl" \
    -o rctd_socket="$work/rctd.sock" -o state_dir="$work/st" -o memory_mb=64 \
    -o rct_port=17100 -o migrate_port=17101 "$top/scripts/ocf/rct-colo" > "$out" 2>&1 || rc=$?
cat "$out"
if [ $rc != 0 ] || ! grep -q 'passed all tests' "$out"; then
    echo "ocf-test: ocf-tester failed (rc $rc); rctd's log:" >&2
    tail -n 20 "$work/rctd.log" >&2
    exit 1
fi
# What it leaves: the pairing demoted (the last demote), no QEMU.
grep -qx 'demoted_at_generation [0-9]*' "$work/state/ocf-test.state" ||
    { echo "ocf-test: rctd did not record the demotion" >&2; exit 1; }
echo "ocf-tester: rct-colo passed all tests"
