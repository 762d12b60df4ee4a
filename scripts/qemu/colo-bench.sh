#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# QEMU COLO through rct against stock COLO, on this machine, same guest, same
# workload: stock (the patched build with x-colo-rct off), rct over tcp:4
# and ucx:4 (UCX over shared memory: puts are the primary rctd's stores into
# the secondary's cache), at two dirtying rates (the reference's 15.6 MiB/s
# and 10x that), a 256 MiB guest.  Every checkpoint counts from COLO's first
# (no warm-up left out); the first one's pause is also given on its own, and
# again with a 2 GiB guest (stock and rct tcp:4), where a full first
# checkpoint would show; and rct resuming at commit (colo-rct
# resume-at-commit=on: the primary runs again once the secondary's rctd holds
# the checkpoint), tcp:4 and ucx:4.  Pauses come from QEMU's own trace events on each
# side; CPU is every process's (both QEMUs, both rctds), per checkpoint;
# memory is each host's (PSS of its QEMU and rctd) after the checkpoints.
# Ratios are to stock at the same rate and size, measured in the same run.
#
#   scripts/qemu/colo-bench.sh RCT_BUILD_DIR [--json] [--checkpoints N] [--quick]
#     --json           one JSON object on stdout:
#                      {"cells":[{"mode","backend","lanes","resume_at_commit","rate_mib_s","mem_mb","checkpoints",
#                        "primary_pause_ms":{"mean","p50","p99","max"},"secondary_pause_ms":{...},
#                        "first_pause_ms":{"primary","secondary"},"base_sync":{"pages","ms"}|null,
#                        "primary_pauses_ms":[every checkpoint's, in order],
#                        "memory_mib":{"pri":{...,"total"},"sec":{...}},"cpu_ms_per_checkpoint",
#                        ...}], "ratios":[...]}
#     --checkpoints N  per cell (default 100; --quick: 30); the 2 GiB cells: 10
# Progress and the table go to stderr with --json, else to stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
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
run_cell() { # PPT MODE BACKEND MEM_MB CHECKPOINTS [commit]
    local ppt=$1 mode=$2 be=$3 mem=$4 cn=$5 name=$2-$3-$1-$4${6:+-$6} extra=()
    [ "${6:-}" = commit ] && extra=(--resume-at-commit)
    say "colo-bench: $name ($cn checkpoints)"
    "$here/colo-pair.py" --qemu "$qemu" --rctd "$rctd" --guest "$work/guest-$ppt.elf" \
        --mode "$mode" --backend "$be" --lanes 4 --checkpoints "$cn" --kill none --mem-mb "$mem" \
        "${extra[@]}" --workdir "$work/$name" --json >"$work/$name.json" 2>"$work/$name.log" ||
        { tail -5 "$work/$name.log" >&2; echo "colo-bench: cell $name failed" >&2; exit 1; }
    cells+=("$ppt:$work/$name.json")
}
for ppt in 40 400; do
    "$here/guest/build-guest.sh" "$work/guest-$ppt.elf" "$ppt" >&2
    for cell in stock rct:tcp rct:ucx rct:tcp:commit rct:ucx:commit; do
        IFS=: read -r mode be variant <<<"$cell"
        [ "$mode" = stock ] && be=tcp
        run_cell "$ppt" "$mode" "$be" 256 "$n" "$variant"
    done
done
for cell in stock rct:tcp; do
    mode=${cell%%:*}
    be=${cell#*:}
    [ "$mode" = stock ] && be=tcp
    run_cell 40 "$mode" "$be" 2048 10
done
python3 - "$json" "${cells[@]}" <<'PY'
import json, sys
want_json = sys.argv[1] == "1"
cells = []
for arg in sys.argv[2:]:
    ppt, path = arg.split(":", 1)
    s = json.load(open(path))
    cells.append({"mode": s["mode"], "backend": s["backend"], "lanes": s["lanes"],
                  "resume_at_commit": s.get("resume_at_commit", False),
                  "rate_mib_s": round(int(ppt) * 100 * 4096 / 2 ** 20, 1), "mem_mb": s["mem_mb"],
                  "checkpoints": s["checkpoints"], "checkpoints_per_s": s["checkpoints_per_s"],
                  "mb_per_checkpoint": s["mb_per_checkpoint"],
                  "primary_pause_ms": {k: s["primary_pause_ms"][k] for k in ("mean", "p50", "p99", "max")},
                  "secondary_pause_ms": {k: s["secondary_pause_ms"][k] for k in ("mean", "p50", "p99", "max")},
                  "first_pause_ms": s["first_pause_ms"], "base_sync": s["base_sync"],
                  "primary_pauses_ms": s["primary_pauses_ms"],
                  "memory_mib": s["memory_mib"], "cpu_ms_per_checkpoint": s["cpu_ms_per_checkpoint"],
                  "cpu_pct_of_one_core": s["cpu_pct_of_one_core"], "consistent": s["consistent"]})
ratios = []
for c in cells:
    base = next(b for b in cells if b["mode"] == "stock" and b["rate_mib_s"] == c["rate_mib_s"]
                and b["mem_mb"] == c["mem_mb"])
    if c["mode"] == "rct":
        ratios.append({"backend": c["backend"], "resume_at_commit": c["resume_at_commit"],
                       "rate_mib_s": c["rate_mib_s"], "mem_mb": c["mem_mb"],
                       "primary_p99_to_stock": round(c["primary_pause_ms"]["p99"] / base["primary_pause_ms"]["p99"], 2),
                       "primary_mean_to_stock": round(c["primary_pause_ms"]["mean"] / base["primary_pause_ms"]["mean"], 2),
                       "first_pause_to_stock": round(c["first_pause_ms"]["primary"] / base["first_pause_ms"]["primary"], 2),
                       "secondary_memory_to_stock": round(c["memory_mib"]["sec"]["total"] / base["memory_mib"]["sec"]["total"], 2),
                       "cpu_per_checkpoint_to_stock": round(c["cpu_ms_per_checkpoint"] / base["cpu_ms_per_checkpoint"], 2)})
out = sys.stderr if want_json else sys.stdout
print("%-10s %-5s %5s %6s %6s %5s %6s %21s %21s %8s %9s %8s %8s %s" % (
      "mode", "be", "lanes", "MiB/s", "guest", "ckpts", "MB/ck", "primary mean/p50/p99", "second. mean/p50/p99",
      "1st ms", "base ms", "pri MiB", "sec MiB", "CPU ms/ckpt"), file=out)
for c in cells:
    p, q = c["primary_pause_ms"], c["secondary_pause_ms"]
    b = c["base_sync"]
    print("%-10s %-5s %5s %6s %6s %5d %6.2f %21s %21s %8.1f %9s %8.0f %8.0f %.1f" % (
          c["mode"] + ("+commit" if c["resume_at_commit"] else ""), c["backend"] or "-", c["lanes"] or "-", c["rate_mib_s"], "%dM" % c["mem_mb"],
          c["checkpoints"], c["mb_per_checkpoint"] or 0,
          "%.1f/%.1f/%.1f" % (p["mean"], p["p50"], p["p99"]), "%.1f/%.1f/%.1f" % (q["mean"], q["p50"], q["p99"]),
          c["first_pause_ms"]["primary"], "%d" % b["ms"] if b else "-",
          c["memory_mib"]["pri"]["total"], c["memory_mib"]["sec"]["total"], c["cpu_ms_per_checkpoint"]), file=out)
for r in ratios:
    print("rct %s%s at %s MiB/s, %d MiB guest: primary pause p99 %.2fx stock's, mean %.2fx; first checkpoint "
          "%.2fx; secondary host memory %.2fx; CPU per checkpoint %.2fx" % (
              r["backend"], " resuming at commit" if r["resume_at_commit"] else "", r["rate_mib_s"], r["mem_mb"], r["primary_p99_to_stock"], r["primary_mean_to_stock"],
              r["first_pause_to_stock"], r["secondary_memory_to_stock"], r["cpu_per_checkpoint_to_stock"]), file=out)
if want_json:
    print(json.dumps({"cells": cells, "ratios": ratios}))
PY
