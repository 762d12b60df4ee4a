#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# What a client of a service in a COLO guest feels (issue 33), on this
# machine, same guest, same run: scripts/qemu/colo-real.py's deployment with
# no COLO (the guest alone: the baseline), stock COLO, and COLO through rct
# tcp:4 and ucx:4, at two request rates; then a kill -9 of the primary QEMU
# per COLO mode.  Per cell: answer latency p50 / p99 / p999 over the requests
# after the first (the first one's answer, the connection's set-up, is given
# on its own), the checkpoints while the client's traffic ran and what
# started them (timer, colo-compare), primary pause; per failover: how long
# the client saw no answer across it, requests lost or duplicated.  Ratios
# are to stock at the same rate.
#
#   scripts/qemu/colo-real-bench.sh RCT_BUILD_DIR [--json] [--seconds S] [--rates "R1 R2"]
#     --seconds S   client traffic per cell (default 30)
#     --rates       requests per second (default "20 100"; the failovers run at R1)
#     --json        one JSON object on stdout: {"cells": [...], "failovers": [...]}
# As root (network namespaces).  Progress and the table go to stderr with --json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
esac
build=$1
shift
json=0
seconds=30
rates="20 100"
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1;;
        --seconds) seconds=${2:?--seconds needs a number}; shift;;
        --rates) rates=${2:?--rates needs two numbers}; shift;;
        *) echo "colo-real-bench: unknown argument '$1' (see --help)" >&2; exit 2;;
    esac
    shift
done
read -r r1 _ <<<"$rates"
rctd=$build/daemon/rctd
[ -x "$rctd" ] || { echo "colo-real-bench: no rctd at $rctd (build rct first)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "colo-real-bench: network namespaces need root" >&2; exit 1; }
say() { if [ $json = 1 ]; then echo "$*" >&2; else echo "$*"; fi; }
qemu=$("$here/build.sh" | tail -n 1)
guest=$("$here/guest-linux/build.sh" | tail -n 1)
work=$(mktemp -d /tmp/rct-colo-real-bench.XXXXXX)
say "colo-real-bench: QEMU $qemu, guest $guest, $seconds s a cell, rates $rates, work folder $work"
cells=()
run() { # NAME RATE FAULT MODE [BACKEND]
    local name=$1 rate=$2 fault=$3 mode=$4 be=${5:-} args=()
    [ "$mode" = rct ] && args=(--backend "$be" --rctd "$rctd")
    say "colo-real-bench: $name"
    "$here/colo-real.py" --qemu "$qemu" --qemu-img "$(dirname "$qemu")/qemu-img" \
        --guest-dir "$guest" --mode "$mode" "${args[@]}" --fault "$fault" --rate "$rate" \
        --before-s "$seconds" --after-s "$([ "$fault" = none ] && echo 0 || echo 15)" \
        --workdir "$work/$name" --json >"$work/$name.json" 2>"$work/$name.log" ||
        { tail -3 "$work/$name.log" >&2; echo "colo-real-bench: $name failed" >&2; exit 1; }
    cells+=("$name:$rate:$fault")
}
for rate in $rates; do
    run "none-$rate" "$rate" none none
    run "stock-$rate" "$rate" none stock
    run "rct-tcp-$rate" "$rate" none rct tcp
    run "rct-ucx-$rate" "$rate" none rct ucx
done
run "stock-failover" "$r1" kill-qemu stock
run "rct-tcp-failover" "$r1" kill-qemu rct tcp
run "rct-ucx-failover" "$r1" kill-qemu rct ucx
rc=0
python3 - "$json" "$work" "$here" "${cells[@]}" <<'PY' || rc=$?
import json, sys
want_json, work = sys.argv[1] == "1", sys.argv[2]
sys.path.insert(0, sys.argv[3])
from colo_lib import checkpoint_triggers, checkpoints, parse_trace, stats_ms  # noqa: E402


def pct(xs, p):
    return round(xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))], 2) if xs else None


cells, failovers = [], []
for arg in sys.argv[4:]:
    name, rate, fault = arg.split(":")
    s = json.load(open("%s/%s.json" % (work, name)))
    cl = json.load(open("%s/%s/client.json" % (work, name)))
    req = cl["requests"]
    first = (req[0][2] - req[0][1]) * 1000 if req and req[0][2] else None
    lat = sorted((a - t) * 1000 for _, t, a in req[1:] if a is not None)
    c = {"name": name, "mode": s["mode"], "backend": s["backend"], "rate": float(rate),
         "requests": s.get("requests"), "lost": s.get("lost"), "duplicated": s.get("duplicated"),
         "first_answer_ms": round(first, 1) if first is not None else None,
         "latency_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "p999": pct(lat, 99.9),
                        "max": round(lat[-1], 2) if lat else None},
         "ok": s.get("ok", False)}
    # the checkpoints while the client's traffic ran (not the guest's boot)
    t0 = req[0][1] if req else 0
    t1 = max((a for _, _, a in req if a is not None), default=t0)
    cps = [x for x in checkpoints(parse_trace("%s/%s/pri-trace.log" % (work, name)))
           if t0 <= x["stop"] <= t1]
    c["checkpoints"] = len(cps)
    c["checkpoints_timer"], c["checkpoints_compare"] = checkpoint_triggers(cps, s["delay_ms"])
    c["checkpoints_per_s"] = round(len(cps) / max(1e-3, t1 - t0), 2)
    c["primary_pause_ms"] = stats_ms([(x["run"] - x["stop"]) * 1000 for x in cps])
    if fault == "none":
        cells.append(c)
    else:
        c["stall_ms"] = s.get("failover_stall_ms")
        c["failover_ok"] = s.get("ok", False)
        failovers.append(c)
for c in cells:
    base = next((b for b in cells if b["mode"] == "stock" and b["rate"] == c["rate"]), None)
    if base and c["mode"] == "rct":
        c["p99_to_stock"] = round(c["latency_ms"]["p99"] / base["latency_ms"]["p99"], 2)
for f in failovers:
    base = next((b for b in failovers if b["mode"] == "stock"), None)
    if base and f["mode"] == "rct" and base["stall_ms"] and f["stall_ms"] is not None:
        f["stall_to_stock"] = round(f["stall_ms"] / base["stall_ms"], 2)
out = sys.stderr if want_json else sys.stdout
print("%-18s %6s %6s %9s %28s %13s %18s %s" % ("cell", "req/s", "reqs", "first ms",
      "answer p50 / p99 / p999 ms", "ckpts (t, c)", "pri pause mean/p99", "lost/dup"), file=out)
for c in cells + failovers:
    l, p = c["latency_ms"], c["primary_pause_ms"]
    print("%-18s %6s %6s %9s %28s %13s %18s %s/%s%s" % (
        c["name"], c["rate"], c["requests"], c["first_answer_ms"],
        "%s / %s / %s" % (l["p50"], l["p99"], l["p999"]),
        "%d (%d, %d)" % (c["checkpoints"], c["checkpoints_timer"], c["checkpoints_compare"]),
        "%s / %s" % (p.get("mean", "-"), p.get("p99", "-")), c["lost"], c["duplicated"],
        ", stall %s ms" % c["stall_ms"] if "stall_ms" in c else ""), file=out)
for c in cells:
    if "p99_to_stock" in c:
        print("rct %s at %s req/s: answer p99 %.2fx stock's" % (c["backend"], c["rate"],
                                                                c["p99_to_stock"]), file=out)
for f in failovers:
    if "stall_to_stock" in f:
        print("rct %s failover: stall %.2fx stock's" % (f["backend"], f["stall_to_stock"]), file=out)
if want_json:
    print(json.dumps({"cells": cells, "failovers": failovers}))
ok = all(c["ok"] for c in cells + failovers)
sys.exit(0 if ok else 1)
PY
[ $rc = 0 ] && rm -rf "$work" || say "colo-real-bench: logs kept in $work"
exit $rc
