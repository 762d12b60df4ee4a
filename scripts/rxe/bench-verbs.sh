#!/bin/bash
# Inside the soft-RoCE VM (scripts/rxe/vm-run.sh scripts/rxe/bench-verbs.sh BUILD):
# ib_write_bw and rctctl bench over verbs with the same message size, in the
# same VM run, so that their ratio means something under emulation.
#   BUILD  the build tree with daemon/rctctl (default build/release)
set -euo pipefail
B=${1:-build/release}
SIZE=${RCT_BENCH_MSG:-1048576}

echo "== ib_write_bw, RC, $SIZE-byte writes, rxe0 =="
ib_write_bw -d rxe0 -x 1 -F -s "$SIZE" -n 300 > /tmp/ibw-srv.log 2>&1 &
srv=$!
for _ in $(seq 100); do ss -ltn | grep -q ':18515 ' && break; sleep 0.2; done
ib_write_bw -d rxe0 -x 1 -F -s "$SIZE" -n 300 127.0.0.1 | tee /tmp/ibw.log
wait $srv
ibw=$(awk -v s="$SIZE" '$1 == s {print $4}' /tmp/ibw.log | tail -1) # BW average, MB/s
echo "ib_write_bw: ${ibw} MB/s"

echo "== rctctl bench over verbs: random:100 dirties every page, so every put is a"
echo "   ${SIZE}-byte run (max_put) =="
RCT_LOG=info "$B/daemon/rctctl" bench --backends verbs:1,verbs:4 --region-size 128M --heartbeat-ms 1000 \
    --workload random:100 --checkpoints 5 --timeout-ms 120000 --json > /tmp/bench.json 2> /tmp/bench.err || {
    cat /tmp/bench.err >&2
    exit 1
}
grep -E "ibv_post_send" /tmp/bench.err || true
python3 - "$ibw" <<'PY'
import json, sys
ibw = float(sys.argv[1]) * 1e6 / 1e9  # MB/s (10^6) -> GB/s
d = json.load(open('/tmp/bench.json'))
for c in d['cells']:
    print("verbs:%d  verified %d/%d  transfer mean %.1f ms  %.3f GB/s  = %.0f%% of ib_write_bw (%.3f GB/s)"
          % (c['lanes'], c['verified'], c['checkpoints'], c['transfer_ms']['mean'], c['gbps'],
             100 * c['gbps'] / ibw if ibw else 0, ibw))
PY
