#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Plots of the scale sweep and of streaming, from rctctl bench's own output,
and of a real QEMU COLO pair's pauses, from colo-bench.sh's.

  scripts/bench-plots.py scale SCALE.json OUT.png
      pause (mean and p99) and the primary's CPU per checkpoint against guest
      size, one line per backend: `rctctl bench --region-sizes ... --json`
  scripts/bench-plots.py stream STREAM.csv OUT.png
      CDF of the whole pause and of the primary's pause, stop-and-copy against
      streaming, per backend: `rctctl bench --stream-ms MS --csv STREAM.csv`
  scripts/bench-plots.py colo BENCH.json OUT.png
      CDF of the primary's pause (every checkpoint from the first), stock COLO
      against COLO through rct, one panel per dirtying rate (the 256 MiB
      cells): `scripts/qemu/colo-bench.sh BUILD --json > BENCH.json`

gnuplot (pngcairo) draws; the data and commands are written next to OUT as
OUT.gp, so a plot can be redrawn or checked by hand.
"""
import csv
import json
import subprocess
import sys


def die(msg):
    sys.exit(f"bench-plots: {msg}")


def block(name, rows):
    return f"${name} << EOD\n" + "".join(" ".join(str(v) for v in r) + "\n" for r in rows) + "EOD\n"


def scale(src, out):
    cells = json.load(open(src))["cells"]
    series = {}
    for c in cells:
        if c.get("skipped") or not c["verified"]:
            continue
        key = f'{c["backend"]}:{c["lanes"]}'
        series.setdefault(key, []).append(
            (c["region_size"] / 2**30, c["pause_ms"]["mean"], c["pause_ms"]["p99"],
             c["primary_cpu_ms"]["mean"]))
    if not series:
        die(f"{src}: no verified cell")
    gp = ""
    plots = []
    for i, (k, rows) in enumerate(sorted(series.items())):
        rows.sort()
        gp += block(f"d{i}", rows)
        plots += [f'$d{i} using 1:2 with linespoints title "{k} pause mean"',
                  f'$d{i} using 1:3 with linespoints dashtype 2 title "{k} pause p99"',
                  f'$d{i} using 1:4 axes x1y2 with linespoints dashtype 3 '
                  f'title "{k} primary CPU mean"']
    gp += (f'set terminal pngcairo size 900,520\nset output "{out}"\n'
           'set logscale x 2\nset xlabel "guest RAM (GiB, sparse), same dirty set"\n'
           'set ylabel "whole pause (ms)"\nset y2label "primary rctd CPU (ms)"\n'
           'set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n'
           'set key top left\nset grid\nplot ' + ", \\\n     ".join(plots) + "\n")
    return gp


def cdf(values):
    v = sorted(values)
    return [(x, (i + 1) / len(v)) for i, x in enumerate(v)]


def stream(src, out):
    rows = [r for r in csv.DictReader(open(src)) if r["part"] == "experiment"]
    if not rows or "stream_ms" not in rows[0]:
        die(f"{src}: no experiment rows with stream_ms (rctctl bench --stream-ms --csv)")
    groups = {}
    for r in rows:
        key = (f'{r["backend"]}:{r["lanes"]}', int(r["stream_ms"]))
        groups.setdefault(key, []).append(r)
    gp = ""
    plots = {"pause_ms": [], "hypervisor_ms": []}
    for i, ((cell, ms), rs) in enumerate(sorted(groups.items())):
        what = f"stream {ms} ms" if ms else "stop-and-copy"
        for col in plots:
            name = f"{col[0]}{i}"
            gp += block(name, cdf([float(r[col]) for r in rs]))
            plots[col].append(f'${name} using 1:2 with steps '
                              f'{"dashtype 2 " if not ms else ""}title "{cell} {what}"')
    gp += (f'set terminal pngcairo size 1100,460\nset output "{out}"\n'
           'set multiplot layout 1,2\nset ylabel "fraction of checkpoints"\n'
           'set yrange [0:1]\nset key bottom right\nset grid\n'
           'set xlabel "whole pause (ms): primary + the secondary\'s flush"\n'
           'plot ' + ", \\\n     ".join(plots["pause_ms"]) + "\n"
           'set xlabel "primary pause (ms): pause call -> commit reply"\n'
           'plot ' + ", \\\n     ".join(plots["hypervisor_ms"]) + "\n"
           'unset multiplot\n')
    return gp


def colo(src, out):
    cells = [c for c in json.load(open(src))["cells"] if c.get("primary_pauses_ms")]
    rates = sorted({c["rate_mib_s"] for c in cells if c["mem_mb"] == 256})
    if not rates:
        die(f"{src}: no 256 MiB cell with its pauses (colo-bench.sh --json of this version)")
    gp = (f'set terminal pngcairo size 1100,460\nset output "{out}"\n'
          f'set multiplot layout 1,{len(rates)}\nset ylabel "fraction of checkpoints"\n'
          'set yrange [0:1]\nset key bottom right\nset grid\nset logscale x\n')
    for j, rate in enumerate(rates):
        plots = []
        for i, c in enumerate(c for c in cells if c["mem_mb"] == 256 and c["rate_mib_s"] == rate):
            name = f"r{j}c{i}"
            what = "stock COLO" if c["mode"] == "stock" else f'rct {c["backend"]}:{c["lanes"]}'
            if c.get("resume_at_commit"):
                what += ", resume at commit"
            gp += block(name, cdf(c["primary_pauses_ms"]))
            style = 'linecolor rgb "black" linewidth 2 ' if c["mode"] == "stock" else ""
            plots.append(f'${name} using 1:2 with steps {style}title "{what}"')
        gp += (f'set title "{rate} MiB/s dirtied, every checkpoint from the first"\n'
               'set xlabel "primary pause (ms)"\nplot ' + ", \\\n     ".join(plots) + "\n")
    return gp + "unset multiplot\n"


def main():
    kinds = {"scale": scale, "stream": stream, "colo": colo}
    if len(sys.argv) != 4 or sys.argv[1] not in kinds:
        sys.stderr.write(__doc__)
        sys.exit(0 if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help") else 2)
    kind, src, out = sys.argv[1:]
    gp = kinds[kind](src, out)
    with open(out + ".gp", "w") as f:
        f.write(gp)
    r = subprocess.run(["gnuplot", out + ".gp"], capture_output=True, text=True)
    if r.returncode:
        die(f"gnuplot on {out}.gp: {r.stderr.strip()}")
    print(f"bench-plots: {out}")


if __name__ == "__main__":
    main()
