#!/bin/bash
# Two VMs at once through the same pair of real rctd processes, in the
# deployment shape (guest -> rctd primary <-> rctd secondary <- guest), while
# `rctctl stats` and the Prometheus endpoint are read; every checkpoint of
# both VMs verified byte for byte; both daemons stop cleanly on SIGTERM.
#   test/rctd_two_vms.sh BUILD_DAEMON_DIR BACKEND1 BACKEND2
set -euo pipefail
bin=$1 b1=${2:-tcp} b2=${3:-tcp}
K=30 # at 250 ms: ~8 s, long enough for the reads below on a loaded host
dir=$(mktemp -d /tmp/rctd-two-vms.XXXXXX)
export UCX_NET_DEVICES=${UCX_NET_DEVICES:-lo} UCX_WARN_UNUSED_ENV_VARS=n
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$dir"/*.log; do echo "== $f" >&2; tail -20 "$f" >&2; done; exit 1; }

(umask 077; head -c 32 /dev/urandom >"$dir/peer.key")
"$bin/rctd" --socket "$dir/p.sock" --metrics-port 0 --psk-file "$dir/peer.key" --log-level info \
    --state-dir "$dir/p-state" \
    2>"$dir/rctd-p.log" & pids+=($!); ppid=$!
"$bin/rctd" --socket "$dir/s.sock" --metrics-port 0 --psk-file "$dir/peer.key" --log-level info \
    --state-dir "$dir/s-state" \
    2>"$dir/rctd-s.log" & pids+=($!); spid=$!
for i in $(seq 100); do [ -S "$dir/p.sock" ] && [ -S "$dir/s.sock" ] && break; sleep 0.1; done
"$bin/rctctl" status --socket "$dir/p.sock" >/dev/null || fail "rctd primary not serving"

demo() { "$bin/rctctl" demo --primary-socket "$dir/p.sock" --secondary-socket "$dir/s.sock" \
           --backend "$1" --vm-name "$2" --lanes 2 --region-size 64M --checkpoints $K \
           --interval-ms 250 --workload load >"$dir/$2.out" 2>"$dir/$2.log"; }
demo "$b1" vm1 & d1=$!
demo "$b2" vm2 & d2=$!

# While both run: both sessions in `rctctl stats`, with checkpoints counted.
ok=
for i in $(seq 200); do
    if "$bin/rctctl" stats --socket "$dir/p.sock" --json >"$dir/stats.json" 2>/dev/null &&
       python3 - "$dir/stats.json" <<'PY'
import json, sys
s = {x["name"]: x for x in json.load(open(sys.argv[1]))}
sys.exit(0 if all(s.get(n, {}).get("checkpoints", 0) >= 5 for n in ("vm1.primary", "vm2.primary")) else 1)
PY
    then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || fail "the two primary sessions never showed 5 checkpoints each in rctctl stats"
"$bin/rctctl" sessions --socket "$dir/p.sock" | tee "$dir/sessions.txt"
grep -q "vm1.primary .*connected" "$dir/sessions.txt" || fail "vm1 not listed as connected"
grep -q "vm2.primary .*connected" "$dir/sessions.txt" || fail "vm2 not listed as connected"
# Which transports UCX chose, and how the pages move (issue 29: the safe ones only).
if [ "$b1" = ucx ] || [ "$b2" = ucx ]; then
    "$bin/rctctl" status --socket "$dir/p.sock" | tee "$dir/status.txt"
    grep -q "^  transport: ucx over [^:]*: \(stores\|puts\)" "$dir/status.txt" ||
        fail "rctctl status does not say which transports UCX chose"
fi
"$bin/rctctl" stats --socket "$dir/p.sock" | grep -A3 "^vm1.primary"

mport() { "$bin/rctctl" status --socket "$1" --json |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics_port"])'; }
curl -sf "http://127.0.0.1:$(mport "$dir/p.sock")/metrics" >"$dir/p.prom" || fail "no metrics from rctd primary"
curl -sf "http://127.0.0.1:$(mport "$dir/s.sock")/metrics" >"$dir/s.prom" || fail "no metrics from rctd secondary"
for vm in vm1 vm2; do
    grep -E "^rct_transfer_seconds_bucket\{session=\"$vm.primary\",uid=\"[0-9]+\",le=\"\+Inf\"\} [1-9]" "$dir/p.prom" ||
        fail "no transfer histogram for $vm"
    grep -E "^rct_commit_rtt_quantile_seconds\{session=\"$vm.primary\",uid=\"[0-9]+\",q=\"0.99\"\} [0-9.]+" "$dir/p.prom" ||
        fail "no commit p99 for $vm"
    grep -E "^rct_flush_quantile_seconds\{session=\"$vm.secondary\",uid=\"[0-9]+\",q=\"0.999\"\} [0-9.]+" "$dir/s.prom" ||
        fail "no flush p999 for $vm on the secondary"
    grep -E "^rct_stalls_total\{session=\"$vm.primary\",uid=\"[0-9]+\",kind=\"process\"\} [0-9]+" "$dir/p.prom" ||
        fail "no stall counter for $vm"
done
for f in p s; do
    grep -E "^rct_held_bytes [1-9][0-9]*$" "$dir/$f.prom" || fail "no held memory in $f's metrics"
    grep -E "^rct_kept_descriptors_limit [1-9][0-9]*$" "$dir/$f.prom" || fail "no descriptor budget in $f's metrics"
done
# Prometheus' own linter on the live pages (exit 3 on the quantile label before).
command -v promtool >/dev/null || fail "promtool missing (Debian package prometheus; scripts/deps.sh test)"
for f in p s; do
    promtool check metrics <"$dir/$f.prom" >"$dir/$f.lint" 2>&1 ||
        fail "promtool check metrics on rctd's page: $(cat "$dir/$f.lint")"
done

wait $d1 || fail "vm1 demo failed"
wait $d2 || fail "vm2 demo failed"
grep -q "verified $K/$K" "$dir/vm1.out" || fail "vm1 not verified $K/$K"
grep -q "verified $K/$K" "$dir/vm2.out" || fail "vm2 not verified $K/$K"
kill -TERM $ppid $spid
wait $ppid || fail "rctd primary exited non-zero on SIGTERM"
wait $spid || fail "rctd secondary exited non-zero on SIGTERM"
pids=()
echo "two VMs at once over $b1 and $b2: verified $K/$K each; stats and metrics served"
