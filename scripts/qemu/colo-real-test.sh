#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# COLO as deployed (issue 33): a Linux guest serving a client through
# colo-compare, its disk replicated (scripts/qemu/colo-real.py), stock and
# through rctd: stock with kill -9 of the primary QEMU; rct tcp:4 with kill -9
# of the primary QEMU, kill -9 of the primary's rctd and the primary's link
# cut; rct ucx:4 with kill -9 of the primary QEMU (the hosts are network
# namespaces: UCX's lanes go over tcp, its puts emulated).  Each run: the client's one
# connection through the fault and the failover, every request answered once
# and in order, the guest's file holding each once.  One line per run:
#   colo-real: MODE BACKEND R requests, C checkpoints (T timer, M compare), failover ok|failed, lost L, duplicated D
#
#   scripts/qemu/colo-real-test.sh RCT_BUILD_DIR
# As root (network namespaces).  Logs and traces go to a temporary folder,
# named at the start and kept on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
esac
build=$1
rctd=$build/daemon/rctd
[ -x "$rctd" ] || { echo "colo-real-test: no rctd at $rctd (build rct first)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "colo-real-test: network namespaces need root" >&2; exit 1; }
qemu=$("$here/build.sh" | tail -n 1)
qemu_img=$(dirname "$qemu")/qemu-img
guest=$("$here/guest-linux/build.sh" | tail -n 1)
work=$(mktemp -d /tmp/rct-colo-real.XXXXXX)
echo "colo-real-test: QEMU $qemu, guest $guest, work folder $work"
rc=0
lines=()
for run in "stock - kill-qemu" "rct tcp kill-qemu" "rct tcp kill-rctd" "rct tcp link-cut" \
           "rct ucx kill-qemu"; do
    read -r mode be fault <<<"$run"
    name=$mode-$be-$fault
    args=(--mode "$mode" --fault "$fault")
    [ "$mode" = rct ] && args+=(--backend "$be" --rctd "$rctd")
    echo "colo-real-test: $mode $be, $fault"
    "$here/colo-real.py" --qemu "$qemu" --qemu-img "$qemu_img" --guest-dir "$guest" "${args[@]}" \
        --workdir "$work/$name" >"$work/$name.out" 2>&1 || rc=1
    grep '^\[' "$work/$name.out" | sed 's/^/  /' | cut -c1-300
    lines+=("$(tail -n 1 "$work/$name.out")")
    [[ ${lines[-1]} == *"failover ok, lost 0, duplicated 0" ]] || rc=1
done
[ $rc = 0 ] && rm -rf "$work" || echo "colo-real-test: logs and traces kept in $work"
printf '%s\n' "${lines[@]}"
exit $rc
