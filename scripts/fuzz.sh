#!/bin/bash
# The libFuzzer targets (test/fuzz/), built with clang, ASan and UBSan:
#   fuzz_proto  the peer control-protocol decoder (round trip: accepted bytes re-encode
#               to exactly themselves)
#   fuzz_ipc    rctd's connection code: socket API framing, validation and handlers
#   fuzz_payload the socket API's payload codec alone (round trip, as fuzz_proto)
# Each runs for SECONDS (default 60) from its seed corpus (test/fuzz/seeds/) plus what
# earlier runs in this build tree found.  A crash, a sanitizer report or a timeout fails
# the script and leaves the input in build/fuzz/artifacts/.
#   scripts/fuzz.sh [SECONDS]        scripts/fuzz.sh --seeds   (rewrite the seed corpora)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
B=${RCT_BUILD_DIR:-$top/build}/fuzz
secs=${1:-60}

CC=clang cmake -S . -B "$B" -DRCT_FUZZ=ON -DRCT_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" -j "$(nproc)" --target fuzz_proto fuzz_ipc fuzz_payload make_seeds >/dev/null
if [ "$secs" = --seeds ]; then
    mkdir -p test/fuzz/seeds/proto test/fuzz/seeds/ipc test/fuzz/seeds/payload
    "$B/test/fuzz/make_seeds" test/fuzz/seeds
    exit 0
fi
mkdir -p "$B/artifacts"
for t in proto ipc payload; do
    mkdir -p "$B/corpus/$t"
    out=$(mktemp)
    rc=0
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$B/test/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-" \
        "$B/corpus/$t" "test/fuzz/seeds/$t" >"$out" 2>&1 || rc=$?
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$out")
    cov=$(grep -o 'cov: [0-9]*' "$out" | tail -1 | awk '{print $2}')
    if [ $rc -ne 0 ]; then
        tail -40 "$out"
        echo "fuzz: fuzz_$t FAILED after ${runs:-?} runs (input in $B/artifacts/)"
        rm -f "$out"
        exit 1
    fi
    echo "fuzz: fuzz_$t ${secs}s: ${runs} runs, coverage ${cov} edges, corpus $(ls "$B/corpus/$t" | wc -l) inputs, 0 crashes"
    rm -f "$out"
done
# fuzz_ipc's rctd keeps pairing records in a directory of its own (test/fuzz/fuzz_ipc.c).
rm -rf /tmp/rct-fuzz-state.*
