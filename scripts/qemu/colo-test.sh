#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A real QEMU COLO pair replicating the probe guest through rctd, once per
# backend: scripts/qemu/build.sh (cached), the guest, then colo-pair.py with
# at least 100 checkpoints, the frozen-guest byte-for-byte RAM comparison,
# kill -9 of the primary QEMU, and a second pair for kill -9 of the
# primary's rctd.  One line per backend, the last ones:
#   qemu-colo: BACKEND N checkpoints, consistent yes|no, failover ok|failed
#
#   scripts/qemu/colo-test.sh RCT_BUILD_DIR [BACKEND...]    (default: tcp ucx)
# Logs and traces go to a temporary folder, named at the start and kept on failure.
#   RCT_COLO_CHECKPOINTS   checkpoints per backend (default 100)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
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
        --backend "$be" --lanes 4 --checkpoints "${RCT_COLO_CHECKPOINTS:-100}" --kill both \
        --workdir "$work/$be" 2>&1 | tee "$out" || rc=1
    lines+=("$(tail -n 1 "$out")")
done
# The work folder stays only when something failed (its logs and traces).
[ $rc = 0 ] && rm -rf "$work" || echo "colo-test: logs and traces kept in $work"
printf '%s\n' "${lines[@]}"
exit $rc
