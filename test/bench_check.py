#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Run `rctctl bench ARGS...` and check what it wrote.

    bench_check.py CHECK RCTCTL ARGS...

CHECK names what is checked (json, csv, plots, verbs); the last line is
`bench_check CHECK: ok` when every assertion held.  The command runs in the
current directory (ctest's build/test), its outputs are left there.
"""
import csv
import json
import os
import subprocess
import sys

PNG_MAGIC = bytes([137, 80, 78, 71, 13, 10, 26, 10])


def run(rctctl, args):
    p = subprocess.run([rctctl, "bench"] + args, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(p.stdout)
    assert p.returncode == 0, f"rctctl bench exited with {p.returncode}"
    return p.stdout


def timing_sane(cell):
    """Every summary ordered, the pause containing the transfer."""
    t, z = cell["transfer_ms"], cell["pause_ms"]
    return (cell["gbps"] > 0 and t["max"] >= t["p99"] >= t["p50"] > 0
            and z["mean"] >= t["mean"])


def check_json(out, want, workload=None):
    d = json.loads(out)
    assert d["memcpy_gbps"] > 0, d
    c = d["cells"]
    assert [(x["backend"], x["lanes"], x["verified"]) for x in c] == want, c
    assert all(timing_sane(x) for x in c), c
    assert workload is None or all(x["workload"] == workload for x in c), c
    return d


def main():
    check, rctctl, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if check == "json":
        check_json(run(rctctl, args + ["--json"]),
                   [("ucx", 2, 4), ("tcp", 2, 4), ("tcp", 1, 4)], "random:10")
    elif check == "verbs":
        check_json(run(rctctl, args + ["--json"]),
                   [("verbs", 1, 5), ("verbs", 4, 5), ("tcp", 4, 5)], "load")
    elif check == "csv":
        text = run(rctctl, args + ["--csv", "bench.csv"])
        rows = list(csv.DictReader(open("bench.csv")))
        cells = {(r["backend"], r["lanes"], r["workload"]) for r in rows}
        assert len(cells) == 8 and len(rows) == 80, (len(cells), len(rows))
        assert all(float(r["pause_ms"]) >= float(r["transfer_ms"]) > 0
                   and r["part"] == "experiment" and r["stream_ms"] == "0"
                   and int(r["region_size"]) == 32 << 20 for r in rows)
        assert "tcp:4 (multifd-4)" in text and "whole pause" in text, text
    elif check == "plots":
        d = check_json(run(rctctl, args + ["--plots", "plots", "--json"]),
                       [("tcp", 1, 10), ("ucx", 2, 10)], "load")
        s = d["sweeps"]
        want = [(b, l, 10.0) for b in ("tcp", "ucx") for l in (1, 2, 4, 8)]
        want += [(b, 4, p) for b in ("tcp", "ucx") for p in (0.1, 1.0, 100.0)]
        assert sorted((x["backend"], x["lanes"], x["dirty_pct"]) for x in s) == sorted(want), s
        assert all(x["verified"] == x["checkpoints"] == 3 and timing_sane(x)
                   and x["memcpy_gbps"] > 0 for x in s), s
        for f in ("cdf-transfer-load", "cdf-pause-load", "throughput-lanes",
                  "throughput-dirty"):
            with open(f"plots/{f}.png", "rb") as png:
                assert png.read(8) == PNG_MAGIC, f
        gp = open("plots/plots.gp").read()
        # 2 CDF blocks per cell and metric, (2 backends + memcpy) per sweep
        assert gp.count("<< EOD") == 2 * 2 + 2 * 3, gp.count("<< EOD")
    elif check == "scale":
        # --region-sizes 256M,64G: sparse guests, a pair per size, the 64 GiB
        # one on a host of less (rctd's default limit would refuse it).
        # A ucx cell whose colo cache UCX cannot share (larger than the host)
        # is skipped where no RDMA device exists: its puts would be emulated,
        # which rct refuses (issue 29), and the cell says why.
        d = json.loads(run(rctctl, args + ["--json"]))
        c = d["cells"]
        host = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        rdma = os.path.isdir("/sys/class/infiniband") and os.listdir("/sys/class/infiniband")
        skip = lambda s, b: b == "ucx" and s >= host and not rdma
        want = [(s, b, 0 if skip(s, b) else 3) for s in (256 << 20, 64 << 30)
                for b in ("tcp", "ucx")]
        assert [(x["region_size"], x["backend"], x["verified"]) for x in c] == want, c
        ran = [x for x in c if not skip(x["region_size"], x["backend"])]
        assert all("skipped" not in x for x in ran), c
        assert all("emulated" in x["skipped"] for x in c if x not in ran), c
        assert all(timing_sane(x) and x["workload"] == "pages:4M" and x["stream_ms"] == 0
                   and x["memcpy_hot_gbps"] > 0 and x["memcpy_gbps"] > 0
                   and x["primary_cpu_ms"]["mean"] > 0 for x in ran), c
    elif check == "stream":
        # --stream-ms: every workload twice, stop-and-copy then streaming, each
        # checkpoint verified byte for byte; the streaming cells streamed.
        d = json.loads(run(rctctl, args + ["--json"]))
        c = d["cells"]
        want = [(s, b) for s in (0, 20) for b in ("tcp", "ucx")]
        assert [(x["stream_ms"], x["backend"]) for x in c] == want, c
        assert all(x["verified"] == 10 and x["workload"] == "load" and timing_sane(x)
                   for x in c), c
        for x in c[2:]:
            assert x["streams"] > 0 and x["stream_pages"] > 0, x
            for k in ("pause_vs_stop_and_copy", "primary_pause_vs_stop_and_copy"):
                assert x[k]["mean"] > 0 and x[k]["p99"] > 0, x
        assert all(x["primary_pause_ms"]["mean"] > 0 for x in c), c
    elif check == "zero":
        # --zero-pages on free:SIZE: every workload twice, without then with
        # elision, every checkpoint verified byte for byte; with it, the half
        # of the pages that were freed go as ZEROS, not as data.
        d = json.loads(run(rctctl, args + ["--json"]))
        c = d["cells"]
        want = [(z, b) for z in (False, True) for b in ("tcp", "ucx")]
        assert [(x["zero_pages"], x["backend"]) for x in c] == want, c
        assert all(x["verified"] == 10 and x["workload"] == "free:4M" and timing_sane(x)
                   for x in c), c
        for off, on in zip(c[:2], c[2:]):
            ratio = on["mb_per_checkpoint"] / off["mb_per_checkpoint"]
            assert 0.3 < ratio < 0.7, (ratio, off, on)
            for k in ("pause_vs_without_zero_pages", "transfer_vs_without_zero_pages"):
                assert on[k]["mean"] > 0 and on[k]["p99"] > 0, on
    else:
        sys.exit(f"bench_check: unknown check {check}")
    print(f"bench_check {check}: ok")


if __name__ == "__main__":
    main()
