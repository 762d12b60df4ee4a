#!/bin/bash
# Fault injection against real rctd daemons (test/fault/rct_fault.c):
#   kill -9 of the primary's rctd at random moments (100 trials over tcp, 20
#   over ucx), kill -9 of the secondary's rctd with the primary staying up and
#   a new secondary resynced while the guest runs, a veth link cut between
#   network namespaces, and a hostile peer.  Needs root (ip netns).
# Usage: scripts/fault-test.sh [BUILD_DIR]   (default build/release)
# Last line: "faults: T trials, C consistent, L lost"; exit 0 only when C = T.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$top/build/release}
fault="$B/test/rct-fault"
rctd="$B/daemon/rctd"
for f in "$fault" "$rctd"; do
    [ -x "$f" ] || { echo "fault-test: $f is not built (cmake --build $B)" >&2; exit 2; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() {
    echo "== rct-fault $*"
    "$fault" --rctd "$rctd" "$@" | tee -a "$out"
    echo
}
run --backend tcp --kill-primary "${RCT_FAULT_TRIALS:-100}" --kill-secondary 5 --link-cut 5
# UCX over loopback TCP (no shared-memory transports: the peers are two daemons).
if [ -x "$B/test/test_ucx" ]; then # built with UCX
    UCX_NET_DEVICES=lo UCX_WARN_UNUSED_ENV_VARS=n \
        run --backend ucx --kill-primary 20 --kill-secondary 2 --link-cut 0 --no-hostile
fi
awk '/^faults: / { t += $2; c += $4; l += $6 }
     END { printf "faults: %d trials, %d consistent, %d lost\n", t, c, l; exit (t == c && t > 0) ? 0 : 1 }' "$out"
