#!/bin/bash
# Two rctd with different pre-shared keys: the demo through them must fail with
# "peer authentication failed" on both sides, and no checkpoint may pass; then a
# daemon with a key file others can read must refuse to start.  Every line
# either daemon logs, the library's included, is in rctd's format.
#   test/rctd_auth.sh BUILD_DAEMON_DIR
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/rctd-auth.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$dir"/*.log >&2 || true; exit 1; }

(umask 077; head -c 32 /dev/urandom >"$dir/a.key"; head -c 32 /dev/urandom >"$dir/b.key")
"$bin/rctd" --socket "$dir/p.sock" --psk-file "$dir/a.key" 2>"$dir/rctd-p.log" & pids+=($!)
"$bin/rctd" --socket "$dir/s.sock" --psk-file "$dir/b.key" 2>"$dir/rctd-s.log" & pids+=($!)
for i in $(seq 100); do [ -S "$dir/p.sock" ] && [ -S "$dir/s.sock" ] && break; sleep 0.1; done
"$bin/rctctl" status --socket "$dir/p.sock" | grep -q "peer auth:   pre-shared key" || fail "status does not show the key"

rc=0
"$bin/rctctl" demo --primary-socket "$dir/p.sock" --secondary-socket "$dir/s.sock" --backend tcp \
    --region-size 16M --checkpoints 2 --interval-ms 10 >"$dir/demo.out" 2>"$dir/demo.log" || rc=$?
[ $rc -eq 3 ] || fail "demo with mismatched keys exited $rc, expected 3 (transport)"
grep -q "peer authentication failed" "$dir/demo.log" || fail "the demo does not say authentication failed"
grep -q "verified [1-9]" "$dir/demo.out" && fail "a checkpoint passed between peers with different keys"
sleep 0.3
grep -q "another pre-shared key" "$dir/rctd-p.log" || fail "rctd primary does not name the cause"
# The library's lines in rctd's format, beside rctd's own: one format in one journal.
grep -qE '^rctd\[[0-9]+\]: (error|warning): .*another pre-shared key' "$dir/rctd-p.log" ||
    fail "the library's auth error is not in rctd's format"
other=$(grep -vE '^rctd\[[0-9]+\]: (error|warning|info|debug): ' "$dir"/rctd-[ps].log || true)
[ -z "$other" ] || fail "lines in rctd's log not in its format: $(echo "$other" | head -3)"
"$bin/rctctl" status --socket "$dir/s.sock" >/dev/null || fail "rctd secondary died"
"$bin/rctctl" status --socket "$dir/p.sock" >/dev/null || fail "rctd primary died"

chmod 0644 "$dir/a.key"
rc=0
"$bin/rctd" --socket "$dir/x.sock" --psk-file "$dir/a.key" 2>"$dir/x.log" || rc=$?
[ $rc -ne 0 ] && grep -q "lets others read it" "$dir/x.log" || fail "rctd started with a world-readable key"
echo "mismatched keys refused on both sides; readable key file refused: auth ok"
