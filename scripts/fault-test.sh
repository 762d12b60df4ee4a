#!/bin/bash
# Fault injection against real rctd daemons (test/fault/rct_fault.c):
#   kill -9 of the primary's rctd at random moments (100 trials over tcp, 50
#   over ucx), kill -9 of the secondary's rctd with the primary staying up and
#   a new secondary resynced while the guest runs, a veth link cut between
#   network namespaces, a hostile peer, and a hostile co-located tenant (uid
#   65534: descriptors, memory, session names, connections, silent connections
#   on the peer port, pairing files, STATUS) while a witness VM checkpoints on
#   and re-pairs through the same two rctd (test/fault/fault_tenant.c).  Needs
#   root (ip netns, setuid).
#   Then stalls (test/fault/stall.c): the bench's default guest through two
#   rctd while the host is made slow on purpose, where a lost peer is a false
#   loss, with in-band heartbeats as the same-run baseline; and link cuts with
#   the stalls on.  RCT_STALL_RUNS, RCT_STALL_CHECKPOINTS (1, 20) size it.
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
# UCX as rct accepts it on one host: the secondary's colo cache mapped into the primary
# rctd (shared memory), the puts its stores.  Over tcp alone UCX would emulate the puts,
# and UCX 1.13 aborts the secondary's rctd when a primary dies mid-put: rct refuses that
# at connect (test_ucx puts_that_would_be_emulated_are_refused_at_connect).  50 kills of
# the primary's rctd, half of them while its puts are in flight, and the secondary's rctd
# must survive every one.
if [ -x "$B/test/test_ucx" ]; then # built with UCX
    UCX_TLS=sm,tcp,self UCX_NET_DEVICES=lo UCX_WARN_UNUSED_ENV_VARS=n \
        run --backend ucx --kill-primary "${RCT_FAULT_UCX_TRIALS:-50}" --kill-secondary 2 \
        --link-cut 0 --no-hostile
    # Link cuts over UCX: the secondary's rctd in its network namespace behind the veth
    # pair.  The endpoints are tcp (peer error handling keeps no shared-memory transport
    # on them), so the control lane and the liveness channel cross the veth; only the
    # stores into the mapped cache do not, and no commit completes without the control lane.
    UCX_TLS=sm,tcp,self UCX_WARN_UNUSED_ENV_VARS=n \
        run --backend ucx --kill-primary 0 --kill-secondary 0 --link-cut 3 --no-hostile
fi
# ---- stalls: a slow host must not read as a dead peer ----
# rct-stall makes this host slow on purpose: a 1 GiB page-fault storm, a spinning thread per
# core, and an 80 ms SIGSTOP of each rctd every second (a stall is ridden out up to
# 3 intervals less a quarter, 137 ms at 50 ms, less scheduling: docs/reliability.md). Meanwhile the bench's default guest (2 GiB, workload load) checkpoints through
# two real rctd, every checkpoint verified byte for byte: a lost peer there is a false loss.
# The same runs with in-band heartbeats (the design before the liveness thread) are the
# baseline, reported and not counted. Then link cuts with the same stalls on: detection times.
stall="$B/test/rct-stall"
rctctl="$B/daemon/rctctl"
sdir=$(mktemp -d)
trap 'rm -f "$out"; rm -rf "$sdir"' EXIT
# A wrapper that records each rctd's pid (for the SIGSTOPs) and picks the liveness mode.
wrapper() {
    printf '#!/bin/sh\necho $$ >> "%s/pids"\nexec "%s" --liveness %s "$@"\n' \
        "$sdir" "$rctd" "$1" >"$sdir/rctd-$1"
    chmod +x "$sdir/rctd-$1"
}
stall_on() { # ARGS of rct-stall beyond the pid file
    rm -f "$sdir/pids"
    "$stall" --seconds 1800 --stop-pids "$sdir/pids" "$@" >"$sdir/stall.out" &
    stall_pid=$!
}
stall_off() { kill -TERM "$stall_pid" 2>/dev/null; wait "$stall_pid"; sed 's/^/  /' "$sdir/stall.out"; }
stall_runs() { # MODE RUNS CHECKPOINTS: prints "MODE V N L" (verified, asked, runs with a loss)
    local v=0 n=0 lost=0 r rc got
    wrapper "$1"
    for r in $(seq "$2"); do
        stall_on --faults 1024 --spin "$(nproc)" --stop-ms 80 --every-ms 1000
        "$rctctl" demo --rctd "$sdir/rctd-$1" --backend tcp --lanes 4 --region-size 2G \
            --workload load --checkpoints "$3" --interval-ms 300 --seed "$r" --json \
            >"$sdir/demo.json" 2>"$sdir/demo.log"
        rc=$?
        stall_off >&2
        got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verified"])' \
              "$sdir/demo.json" 2>/dev/null || echo 0)
        v=$((v + got)); n=$((n + $3))
        grep -q "peer lost" "$sdir/demo.log" && lost=$((lost + 1))
        echo "  stall $1 run $r: demo exit $rc, verified $got/$3, $(grep -c 'rctd stalled' "$sdir/demo.log") stalls reported" >&2
        [ "$rc" = 0 ] || grep -E "peer lost|nothing from" "$sdir/demo.log" | head -2 | sed 's/^/    /' >&2
    done
    echo "$1 $v $n $lost"
}
echo "== stalls (rct-stall beside two rctd; 2 GiB guest, load)"
read -r _ tv tn tl < <(stall_runs thread "${RCT_STALL_RUNS:-1}" "${RCT_STALL_CHECKPOINTS:-20}")
read -r _ iv in il < <(stall_runs inband "${RCT_STALL_BASELINE_RUNS:-1}" "${RCT_STALL_CHECKPOINTS:-20}")
echo "stall: liveness thread: $tv of $tn checkpoints verified, $tl false losses; baseline (in-band heartbeats): $iv of $in verified, $il runs lost the peer"
echo "faults: 1 trials, $([ "$tv" = "$tn" ] && [ "$tl" = 0 ] && echo 1 || echo 0) consistent, $tl lost" >>"$out"
echo
wrapper thread
stall_on --faults 1024 --spin "$(nproc)" --stop-ms 80 --every-ms 1000
run --backend tcp --rctd "$sdir/rctd-thread" --kill-primary 0 --kill-secondary 0 --link-cut 5 --no-hostile
stall_off
awk '/^faults: / { t += $2; c += $4; l += $6 }
     END { printf "faults: %d trials, %d consistent, %d lost\n", t, c, l; exit (t == c && t > 0) ? 0 : 1 }' "$out"
