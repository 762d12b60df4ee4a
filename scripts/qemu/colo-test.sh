#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A real QEMU COLO pair replicating the probe guest through rctd, once per
# backend: scripts/qemu/build.sh (cached), the guest, then colo-pair.py with
# at least 100 checkpoints, the frozen-guest byte-for-byte RAM comparison,
# kill -9 of the primary QEMU, a second pair for kill -9 of the primary's
# rctd, two more for kill -9 of the secondary's rctd (between checkpoints,
# inside a flush) with both QEMUs sampled for two running guests; then the
# primary's QMP timed while its rctd is stopped (nothing waits under the
# BQL).  The last lines: that one, then one per backend:
#   qemu-colo-qmp: tcp: the primary's QMP round trip max X ms ... ok|FAILED
#   qemu-colo: BACKEND N checkpoints, consistent yes|no, failover ok|failed
#
#   scripts/qemu/colo-test.sh RCT_BUILD_DIR [BACKEND...]    (default: tcp ucx)
# Logs and traces go to a temporary folder, named at the start and kept on failure.
#   RCT_COLO_CHECKPOINTS   checkpoints per backend (default 100)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
esac
build=$1
shift
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(tcp ucx)
rctd=$build/daemon/rctd
[ -x "$rctd" ] || { echo "colo-test: no rctd at $rctd (build rct first)" >&2; exit 2; }

qemu=$("$here/build.sh" | tail -n 1)
work=$(mktemp -d /tmp/rct-colo-test.XXXXXX)
echo "colo-test: QEMU $qemu, work folder $work"
"$here/guest/build-guest.sh" "$work/guest.elf" 40
rc=0
lines=()
for be in "${backends[@]}"; do
    out=$work/$be.out
    "$here/colo-pair.py" --qemu "$qemu" --rctd "$rctd" --guest "$work/guest.elf" --mode rct \
        --backend "$be" --lanes 4 --checkpoints "${RCT_COLO_CHECKPOINTS:-100}" --kill all \
        --workdir "$work/$be" 2>&1 | tee "$out" || rc=1
    lines+=("$(tail -n 1 "$out")")
done
# Nothing that can wait runs under the BQL: the primary's rctd stopped for
# 1.5 s while the primary checkpoints, its QMP timed meanwhile (heartbeats of
# 1 s, so that nobody takes the stop for a loss).
qmp=$work/qmp-stall.out
"$here/colo-pair.py" --qemu "$qemu" --rctd "$rctd" --guest "$work/guest.elf" --mode rct \
    --backend tcp --lanes 4 --heartbeat-ms 1000 --qmp-stall-ms 1500 --stall-side pri \
    --workdir "$work/qmp-stall" 2>&1 | tee "$qmp" || rc=1
lines=("$(tail -n 1 "$qmp")" "${lines[@]}")
# The work folder stays only when something failed (its logs and traces).
[ $rc = 0 ] && rm -rf "$work" || echo "colo-test: logs and traces kept in $work"
printf '%s\n' "${lines[@]}"
exit $rc
