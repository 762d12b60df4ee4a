#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# QEMU COLO through rct against stock COLO, on this machine, same guest, same
# workload: stock (the patched build with x-colo-rct off), rct over tcp:4
# and ucx:4, at two dirtying rates (the reference's 15.6 MiB/s and 10x that).
# Pauses come from QEMU's own trace events on each side; CPU is every
# process's (both QEMUs, both rctds).  Ratios are to stock at the same rate,
# measured in the same run.
#
#   scripts/qemu/colo-bench.sh RCT_BUILD_DIR [--json] [--checkpoints N] [--quick]
#     --json           one JSON object on stdout:
#                      {"cells":[{"mode","backend","lanes","rate_mib_s","checkpoints",
#                        "primary_pause_ms":{"mean","p50","p99"},"secondary_pause_ms":{...},
#                        ...}], "ratios":[...]}
#     --checkpoints N  per cell (default 100; --quick: 30)
# Progress and the table go to stderr with --json, else to stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
esac
build=$1
shift
json=0
n=100
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1;;
        --quick) n=30;;
        --checkpoints) n=${2:?--checkpoints needs a number}; shift;;
        *) echo "colo-bench: unknown argument '$1' (see --help)" >&2; exit 2;;
    esac
    shift
done
rctd=$build/daemon/rctd
[ -x "$rctd" ] || { echo "colo-bench: no rctd at $rctd (build rct first)" >&2; exit 2; }
say() { if [ $json = 1 ]; then echo "$*" >&2; else echo "$*"; fi; }

qemu=$("$here/build.sh" | tail -n 1)
work=$(mktemp -d /tmp/rct-colo-bench.XXXXXX)
say "colo-bench: QEMU $qemu, $n checkpoints per cell, work folder $work"
cells=()
for ppt in 40 400; do
    "$here/guest/build-guest.sh" "$work/guest-$ppt.elf" "$ppt" >&2
    for cell in stock rct:tcp rct:ucx; do
        mode=${cell%%:*}
        be=${cell#*:}
        [ "$mode" = stock ] && be=tcp
        name=$mode-$be-$ppt
        say "colo-bench: $name"
        "$here/colo-pair.py" --qemu "$qemu" --rctd "$rctd" --guest "$work/guest-$ppt.elf" \
            --mode "$mode" --backend "$be" --lanes 4 --checkpoints "$n" --kill none \
            --workdir "$work/$name" --json >"$work/$name.json" 2>"$work/$name.log" ||
            { tail -5 "$work/$name.log" >&2; echo "colo-bench: cell $name failed" >&2; exit 1; }
        cells+=("$ppt:$work/$name.json")
    done
done
python3 - "$json" "${cells[@]}" <<'PY'
import json, sys
want_json = sys.argv[1] == "1"
cells = []
for arg in sys.argv[2:]:
    ppt, path = arg.split(":", 1)
    s = json.load(open(path))
    cells.append({"mode": s["mode"], "backend": s["backend"], "lanes": s["lanes"],
                  "rate_mib_s": round(int(ppt) * 100 * 4096 / 2 ** 20, 1),
                  "checkpoints": s["checkpoints"], "checkpoints_per_s": s["checkpoints_per_s"],
                  "mb_per_checkpoint": s["mb_per_checkpoint"],
                  "primary_pause_ms": {k: s["primary_pause_ms"][k] for k in ("mean", "p50", "p99")},
                  "secondary_pause_ms": {k: s["secondary_pause_ms"][k] for k in ("mean", "p50", "p99")},
                  "cpu_pct_of_one_core": s["cpu_pct_of_one_core"], "consistent": s["consistent"]})
ratios = []
for c in cells:
    base = next(b for b in cells if b["mode"] == "stock" and b["rate_mib_s"] == c["rate_mib_s"])
    if c["mode"] == "rct":
        ratios.append({"backend": c["backend"], "rate_mib_s": c["rate_mib_s"],
                       "primary_p99_to_stock": round(c["primary_pause_ms"]["p99"] / base["primary_pause_ms"]["p99"], 2),
                       "primary_mean_to_stock": round(c["primary_pause_ms"]["mean"] / base["primary_pause_ms"]["mean"], 2)})
out = sys.stderr if want_json else sys.stdout
print("%-6s %-5s %5s %9s %7s %7s %22s %22s %s" % ("mode", "be", "lanes", "MiB/s", "ckpts", "MB/ck",
      "primary mean/p50/p99", "secondary mean/p50/p99", "CPU % of a core"), file=out)
for c in cells:
    p, q = c["primary_pause_ms"], c["secondary_pause_ms"]
    print("%-6s %-5s %5s %9s %7d %7.2f %22s %22s %s" % (c["mode"], c["backend"] or "-", c["lanes"] or "-",
          c["rate_mib_s"], c["checkpoints"], c["mb_per_checkpoint"] or 0,
          "%.1f/%.1f/%.1f" % (p["mean"], p["p50"], p["p99"]), "%.1f/%.1f/%.1f" % (q["mean"], q["p50"], q["p99"]),
          " ".join("%s %s" % kv for kv in sorted(c["cpu_pct_of_one_core"].items()))), file=out)
for r in ratios:
    print("rct %s at %s MiB/s: primary pause p99 %.2fx stock's, mean %.2fx" % (
        r["backend"], r["rate_mib_s"], r["primary_p99_to_stock"], r["primary_mean_to_stock"]), file=out)
if want_json:
    print(json.dumps({"cells": cells, "ratios": ratios}))
PY
