#!/bin/bash
# The whole test suite, as CI runs it on a fresh Debian 12 machine:
#   1. install missing Debian packages (as root)
#   2. clang-format check of every C source
#   3. release build with -Werror, every ctest entry (unit + end-to-end)
#   4. fault injection against real daemons (scripts/fault-test.sh)
#   5. soft-RoCE VM: the tests that need an RDMA device
#   6. QEMU 10.2.2 with rct's series (built once and cached in /var/cache/rct-qemu):
#      every prefix of the series builds, a stock COLO pair, real COLO pairs through rctd
#      over tcp and ucx (scripts/qemu/colo-test.sh), the COLO qtests, stock and through
#      rct (scripts/qemu/qtest.sh), and COLO as deployed: a Linux guest serving a client
#      through colo-compare, its disk replicated, through kills and a link cut
#      (scripts/qemu/colo-real-test.sh)
#   7. the Pacemaker resource agent: ocf-tester, then a real two-node cluster with a
#      quorum device and fencing, its pair beside rct-stall, kill -9 and link cuts
#      (scripts/cluster-test.sh)
#   8. ASan+UBSan build with -Werror, the host tests again
#   9. the libFuzzer targets, 60 s each (scripts/fuzz.sh)
# Build trees go to build/ (RCT_BUILD_DIR overrides).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
B=${RCT_BUILD_DIR:-$top/build}
jobs=$(nproc)

step() { printf '\n=== %s ===\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "dependencies"
scripts/deps.sh test

step "clang-format"
mapfile -t srcs < <(git ls-files '*.c' '*.h' 2>/dev/null || find include transport daemon test -name '*.[ch]')
clang-format --dry-run -Werror "${srcs[@]}"
echo "clang-format: ${#srcs[@]} files clean"

step "release build (-Werror)"
cmake -S . -B "$B/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRCT_WERROR=ON -DRCT_BUILD_TESTS=ON >/dev/null
cmake --build "$B/release" -j "$jobs"

step "tests (all but those that need an RDMA device)"
ctest --test-dir "$B/release" -LE rxe --output-on-failure | tee -a "$log"

step "fault injection: kill -9, link cuts, hostile peers (scripts/fault-test.sh)"
faults=$(mktemp)
scripts/fault-test.sh "$B/release" | tee "$faults" | grep -v '^  rct'
tail -n 1 "$faults" | grep -q '^faults: .* 0 lost$' || { echo "fault-test failed" >&2; exit 1; }

step "tests on a real verbs device: soft-RoCE in a throw-away VM"
# The kernel here has no InfiniBand: scripts/rxe/vm-run.sh boots Debian's
# kernel with rdma_rxe (rxe0 on 10.77.0.1) and runs ctest there, on this tree.
# Then, in the same VM, the verbs link cuts at rctd's default 50 ms heartbeat:
# reported, not counted (the gating run above uses 100 ms; docs/reliability.md).
rm -rf "$B/release/test/fault-logs" "$B/release/test/fault-logs-50ms"
# shellcheck disable=SC2016 # $1 expands in the VM's bash
RCT_RXE_VM_RW="$B/release" scripts/rxe/vm-run.sh bash -c '
    ctest --test-dir "$1" -L rxe --output-on-failure; rc=$?
    "$1/test/rct-fault" --rctd "$1/daemon/rctd" --backend verbs --kill-primary 0 \
        --kill-secondary 0 --link-cut 5 --no-hostile --link rxv0,rxv1,10.78.0.2 \
        --heartbeat-ms 50 --detect-max-ms 2000 --seed 50 --logs-to "$1/test/fault-logs-50ms" \
        >"$1/test/verbs-50ms.out" 2>&1
    exit $rc' _ "$B/release" | tee -a "$log" || {
    # A failed verbs trial's daemon logs, copied out of the VM by rct-fault.
    for f in "$B"/release/test/fault-logs/*/*.log; do
        [ -f "$f" ] && { echo "--- $f (last 60 lines)"; tail -n 60 "$f"; }
    done
    exit 1
}
grep -E '^link-cut [0-9]+/' "$B/release/test/verbs-50ms.out" || true
echo "verbs-50ms: $(grep -E '^link-cut:' "$B/release/test/verbs-50ms.out" || echo 'no result')" \
    "(reported, not counted)"
# Where a 50 ms trial failed: each rctd's own stall reports around the loss.
for f in "$B"/release/test/fault-logs-50ms/*/*.log; do
    [ -f "$f" ] && grep -E 'stalled|peer lost' "$f" | head -n 12 | sed "s|^|  $(basename "$f"): |"
done
true

step "a real QEMU COLO pair through rctd: QEMU 10.2.2 with rct's series (scripts/qemu/)"
# The QEMU COLO users run now, pinned (scripts/qemu/build.sh: built once and cached) with
# scripts/qemu/patches-10.2, every prefix of which must build on its own (cached once
# checked); a stock COLO pair on it (patches 5-14 change nothing without the capability)
# must checkpoint (10.2.2 unpatched aborts at the first one), keep the frozen guest's RAM
# equal byte for byte and fail over on the primary's kill; then the pairs through rctd
# (colo-test.sh: tcp and ucx, the kills, QMP under a stopped rctd, beside rct-stall, resuming
# at commit with the primary killed before the secondary loaded); then
# QEMU's own kind of COLO test.  (QEMU 7.2, RCT_QEMU_SERIES=7.2, is no longer run here.)
q10w=$(mktemp -d /tmp/rct-qemu10.XXXXXX)
scripts/qemu/build.sh --series-check | tee "$q10w/series"
tail -n 1 "$q10w/series" | grep -q '^series: every prefix' ||
    { echo "a prefix of the QEMU 10.2 series does not build" >&2; exit 1; }
q10=$(scripts/qemu/build.sh | tail -n 1)
scripts/qemu/guest/build-guest.sh "$q10w/guest.elf" 40 >/dev/null
scripts/qemu/colo-pair.py --qemu "$q10" --guest "$q10w/guest.elf" --mode stock --checkpoints 50 \
    --kill qemu --workdir "$q10w/pair" 2>&1 | tee "$q10w/out"
tail -n 1 "$q10w/out" | grep -q '^qemu-colo: stock .* consistent yes, failover ok$' ||
    { echo "stock COLO on QEMU 10.2.2 failed (logs in $q10w)" >&2; exit 1; }
echo "qemu-colo-stock: $(tail -n 1 "$q10w/out" | sed 's/^qemu-colo: //') ($("$q10" --version | head -n 1))"
rm -rf "$q10w"
colo=$(mktemp)
scripts/qemu/colo-test.sh "$B/release" tcp ucx | tee "$colo"
[ "$(tail -n 2 "$colo" | grep -c '^qemu-colo: .* consistent yes, failover ok$')" = 2 ] &&
    tail -n 3 "$colo" | head -n 1 | grep -q '^qemu-colo-qmp: .* ok$' &&
    tail -n 4 "$colo" | head -n 1 | grep -q '^qemu-colo-stall: .* consistent yes, failover ok .* false losses 0$' &&
    tail -n 5 "$colo" | head -n 1 | grep -q '^qemu-colo-commit: .* consistent yes, failover ok (resuming at commit)$' ||
    { echo "the QEMU COLO pair through rctd failed" >&2; exit 1; }
# QEMU's own kind of COLO test (upstream 11's failover cases, for 10.2's qtest framework),
# stock and through rct; the cases 10.2.2 can pass must (docs/qemu.md).
qtest10=$(mktemp)
scripts/qemu/qtest.sh "$B/release" | tee "$qtest10" || { echo "the QEMU 10.2 COLO qtests failed" >&2; exit 1; }
# COLO as deployed: a Linux guest, its network through colo-compare, its disk through quorum
# and replication, a client whose one connection must outlive each fault and failover.
real=$(mktemp)
scripts/qemu/colo-real-test.sh "$B/release" | tee "$real" || true
[ "$(tail -n 5 "$real" | grep -c '^colo-real: .* failover ok, lost 0, duplicated 0$')" = 5 ] ||
    { echo "COLO with a Linux guest, colo-compare and block replication failed" >&2; exit 1; }

step "failover decided by Pacemaker: the OCF agent in a real two-node cluster (scripts/cluster-test.sh)"
shellcheck -s sh scripts/ocf/rct-colo
shellcheck scripts/ocf/ocf-test.sh scripts/cluster/fence_rctns
cluster=$(mktemp)
scripts/cluster-test.sh "$B/release" | tee "$cluster" | grep -v '^ \|^\[\|^\]'
tail -n 1 "$cluster" | grep -q '^cluster: .* 0 double primaries, ' &&
    tail -n 2 "$cluster" | head -n 1 |
    grep -q '^cluster-stall: .* false losses 0, failed actions 0, promotions 0, in sync after: yes$' ||
    { echo "the cluster test failed" >&2; exit 1; }

step "ASan+UBSan build (-Werror)"
cmake -S . -B "$B/asan" -DCMAKE_BUILD_TYPE=Debug -DRCT_SANITIZE=ON -DRCT_WERROR=ON -DRCT_BUILD_TESTS=ON >/dev/null
cmake --build "$B/asan" -j "$jobs"

step "tests under ASan+UBSan (all but those that need an RDMA device)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$B/asan" -LE rxe --output-on-failure | tee -a "$log"

step "fuzzing: the peer protocol decoder, rctd's socket API and its payload codec, 60 s each"
scripts/fuzz.sh "${RCT_FUZZ_SECONDS:-60}"

tail -n 1 "$faults"
tail -n 5 "$colo"
tail -n 3 "$qtest10"
tail -n 5 "$real"
tail -n 1 "$cluster"
rm -f "$faults" "$colo" "$cluster" "$qtest10" "$real"
# One closing line over both runs (ctest prints one per run).
awk '/tests passed, [0-9]+ tests failed out of/ {
        total += $NF; failed += $(NF-5) }
     END { printf "\nctest: %d passed, %d failed\n", total - failed, failed }' "$log"
