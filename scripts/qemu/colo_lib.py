# SPDX-License-Identifier: BSD-3-Clause
"""What rct's QEMU COLO scripts share (colo-pair.py, colo-real.py): a QMP
client, free ports, QEMU's trace (the log backend) and the checkpoints in
it, pause statistics, per-process CPU and memory, RAM file comparison."""
import datetime
import json
import os
import re
import socket
import statistics
import subprocess
import time


class QMP:
    def __init__(self, path, name, timeout=30):
        self.name, self.events, self.buf = name, [], b""
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise RuntimeError("%s: no QMP socket at %s" % (name, path))
                time.sleep(0.1)
        self.s.settimeout(timeout)
        self._read()
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("%s: QMP closed" % self.name)
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, check=True, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r and check:
                raise RuntimeError("%s: %s: %s" % (self.name, name, r["error"].get("desc")))
            return r.get("return", r)

    def poll(self, wait=0.0):
        self.s.settimeout(max(wait, 0.001))
        try:
            while True:
                r = self._read()
                if "event" in r:
                    self.events.append(r)
                self.s.settimeout(0.001)
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            self.s.settimeout(30)

    def wait_event(self, name, n=1, timeout=30, since=0):
        deadline = time.time() + timeout
        while True:
            got = [e for e in self.events[since:] if e["event"] == name]
            if len(got) >= n:
                return got
            if time.time() > deadline:
                raise TimeoutError("%s: %d x %s not seen in %s s" % (self.name, n, name, timeout))
            self.poll(0.2)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def page_diff(a, b, page=4096):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        da, db = fa.read(), fb.read()
    if len(da) != len(db):
        return [(-1, 0)]
    out = []
    for off in range(0, len(da), page):
        if da[off:off + page] != db[off:off + page]:
            first = next(i for i in range(page) if da[off + i] != db[off + i])
            out.append((off // page, off + first))
    return out


# QEMU's log trace backend: "PID@SECONDS.USEC:EVENT ARGS" (7.2), or
# "YYYY-MM-DDTHH:MM:SS.USECZ EVENT ARGS" (10.x, with -msg timestamp=on).
TRACE_RE = re.compile(r"^(\d+)@(\d+\.\d+):(\w+) (.*)$")
TRACE_RE_10 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z (\w+) (.*)$")


def parse_trace(path):
    ev = []
    try:
        for l in open(path, errors="replace"):
            m = TRACE_RE.match(l.strip())
            if m:
                ev.append((float(m.group(2)), m.group(3), m.group(4)))
                continue
            m = TRACE_RE_10.match(l.strip())
            if m:
                t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
                ev.append((t.replace(tzinfo=datetime.timezone.utc).timestamp(), m.group(2),
                           m.group(3)))
    except FileNotFoundError:
        pass
    return ev


def checkpoints(ev):
    """Each checkpoint: from 'run' => 'stop' to 'stop' => 'run' around a
    COLO checkpoint (the first stop of the trace ends the initial migration)."""
    cps, cur = [], None
    for t, name, arg in ev:
        if name == "colo_vm_state_change" and "'run' => 'stop'" in arg:
            cur = {"stop": t}
        elif cur is not None and name == "colo_vm_state_change" and "'stop' => 'run'" in arg:
            cur["run"] = t
            cps.append(cur)
            cur = None
        elif cur is not None and name == "colo_save_dirty":
            cur["dirty_pages"] = int(arg.split()[0])
        elif cur is not None and name == "colo_rct_save":
            cur["rct_pages"] = int(arg.split()[0])
    return cps


def checkpoint_triggers(cps, delay_ms):
    """(timer, colo-compare) among @cps after the first: a timer checkpoint
    starts x-checkpoint-delay after the last one began, colo-compare's
    earlier (its notify restarts the timer)."""
    timer = sum(1 for a, b in zip(cps, cps[1:]) if (b["stop"] - a["stop"]) * 1000 >= 0.95 * delay_ms)
    return timer, max(0, len(cps) - 1 - timer)


def stats_ms(xs):
    xs = sorted(xs)
    if not xs:
        return {"n": 0}

    def pct(p):
        return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]
    return {"n": len(xs), "mean": round(statistics.mean(xs), 2), "p50": round(pct(50), 2),
            "p99": round(pct(99), 2), "max": round(xs[-1], 2)}


def cpu_seconds(pid):
    try:
        f = open("/proc/%d/stat" % pid).read()
        f = f[f.rindex(")") + 2:].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError):
        return None


def pss_mb(pid):
    """The process's proportional set size (shared pages split between the
    processes that map them, so a side's processes add up to its memory)."""
    try:
        for l in open("/proc/%d/smaps_rollup" % pid):
            if l.startswith("Pss:"):
                return round(int(l.split()[1]) / 1024.0, 1)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def wait_colo(pri, sec, check_alive, timeout=120, period=0.1):
    """Until both QEMUs (QMP) are in COLO, primary and secondary; a failed
    migration, a dead process (check_alive() raises) or the timeout raise."""
    deadline = time.time() + timeout
    while True:
        ps, ss = pri.cmd("query-colo-status"), sec.cmd("query-colo-status")
        if ps["mode"] == "primary" and ss["mode"] == "secondary":
            return
        st = pri.cmd("query-migrate").get("status")
        if st in ("failed", "cancelled") or time.time() > deadline:
            raise RuntimeError("did not enter COLO: migrate status %s, primary %s, secondary %s"
                               % (st, ps, ss))
        check_alive()
        time.sleep(period)


def stop_procs(procs, files=()):
    """SIGTERM each process still running (SIGKILL after 5 s), then remove @files."""
    for p in procs:
        if p and p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    for f in files:
        if os.path.exists(f):
            os.unlink(f)
