#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A real QEMU COLO pair replicating the probe guest through rctd, once per
# backend: scripts/qemu/build.sh (cached), the guest, then colo-pair.py with
# at least 100 checkpoints, the frozen-guest byte-for-byte RAM comparison,
# kill -9 of the primary QEMU, a second pair for kill -9 of the primary's
# rctd, three more for the secondary's rctd (kill -9 between checkpoints and
# inside a flush, SIGTERM: its QEMU told that rctd stops) with both QEMUs
# sampled for two running guests; then the
# primary's QMP timed while its rctd is stopped (nothing waits under the
# BQL); then a pair beside rct-stall (a slow host must not read as a dead
# peer); then a pair that resumes at commit, its primary killed -9 between its
# resume and the secondary's LOADED.  The last lines: those three, then one
# per backend:
#   qemu-colo-commit: tcp N checkpoints resuming at commit, consistent yes|no, failover ok|failed
#   qemu-colo-stall: tcp N checkpoints beside rct-stall, consistent yes|no, false losses L
#   qemu-colo-qmp: tcp: the primary's QMP round trip max X ms ... ok|FAILED
#   qemu-colo: BACKEND N checkpoints, consistent yes|no, failover ok|failed
#
#   scripts/qemu/colo-test.sh RCT_BUILD_DIR [BACKEND...]    (default: tcp ucx)
# Logs and traces go to a temporary folder, named at the start and kept on failure.
#   RCT_COLO_CHECKPOINTS   checkpoints per backend (default 100)
#   RCT_COLO_STALL_CHECKPOINTS  checkpoints of the pair beside rct-stall (default 50)
#   RCT_COLO_COMMIT_CHECKPOINTS checkpoints of the pair resuming at commit (default 50)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
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
# A slow host is not a dead peer: the pair (tcp, rctd's default 50 ms
# heartbeat) beside rct-stall, as scripts/fault-test.sh runs it beside two
# rctd: a page-fault storm of 1 GiB a loop, a spinning thread per core, and
# each rctd SIGSTOPped 80 ms every second.  Every "peer lost" in either
# rctd's log is a false loss (nothing was killed or cut).
stall_bin=$build/test/rct-stall
if [ -x "$stall_bin" ]; then
    st=$work/stall.out
    printf '#!/bin/sh\necho $$ >> "%s/stall.pids"\nexec "%s" "$@"\n' "$work" "$rctd" \
        >"$work/rctd-stalled"
    chmod +x "$work/rctd-stalled"
    "$stall_bin" --seconds 1800 --faults 1024 --spin "$(nproc)" --stop-pids "$work/stall.pids" \
        --stop-ms 80 --every-ms 1000 >"$work/rct-stall.out" 2>&1 &
    stall_pid=$!
    "$here/colo-pair.py" --qemu "$qemu" --rctd "$work/rctd-stalled" --guest "$work/guest.elf" \
        --mode rct --backend tcp --lanes 4 --checkpoints "${RCT_COLO_STALL_CHECKPOINTS:-50}" \
        --kill none --workdir "$work/stall" 2>&1 | tee "$st" || rc=1
    kill -TERM "$stall_pid" 2>/dev/null || true
    wait "$stall_pid" 2>/dev/null || true
    sed 's/^/  /' "$work/rct-stall.out"
    losses=$(cat "$work"/stall/*-rctd.log 2>/dev/null | grep -c 'peer lost' || true)
    stalls=$(cat "$work"/stall/*-rctd.log 2>/dev/null | grep -c 'rctd stalled' || true)
    [ "$losses" = 0 ] || rc=1
    last=$(tail -n 1 "$st")
    lines=("qemu-colo-stall: ${last#qemu-colo: } beside rct-stall (${stalls} stalls reported), false losses $losses" "${lines[@]}")
else
    lines=("qemu-colo-stall: no rct-stall in $build/test (build the tests)" "${lines[@]}")
    rc=1
fi
# Resume at commit (colo-rct resume-at-commit=on): the primary's guest runs
# again once the secondary's rctd holds the checkpoint; the secondary applies
# it even when the primary dies before its LOADED.  The primary is killed -9
# while the secondary's rctd is stopped inside that checkpoint's flush.
rac=$work/commit.out
"$here/colo-pair.py" --qemu "$qemu" --rctd "$rctd" --guest "$work/guest.elf" --mode rct \
    --backend tcp --lanes 4 --checkpoints "${RCT_COLO_COMMIT_CHECKPOINTS:-50}" --resume-at-commit \
    --kill commit --workdir "$work/commit" 2>&1 | tee "$rac" || rc=1
last=$(tail -n 1 "$rac")
lines=("qemu-colo-commit: ${last#qemu-colo: } (resuming at commit)" "${lines[@]}")
# The work folder stays only when something failed (its logs and traces).
[ $rc = 0 ] && rm -rf "$work" || echo "colo-test: logs and traces kept in $work"
printf '%s\n' "${lines[@]}"
exit $rc
