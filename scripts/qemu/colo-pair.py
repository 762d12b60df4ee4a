#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A real QEMU COLO pair on this host, stock or through rct.

Starts a secondary QEMU (-incoming defer) and a primary running the probe
guest (scripts/qemu/guest: a multiboot kernel that dirties pages at a fixed
rate and prints "HB n" on COM1), with two rctd daemons in rct mode; enters
COLO; runs until N checkpoints are done; checks that both sides' RAM is
identical byte for byte after a checkpoint (guest frozen, two checkpoints,
both stopped, the two RAM files compared); then kills -9 the primary QEMU or
the primary's rctd and checks that the secondary's guest runs on from the
last checkpoint (its heartbeat counts on).  Pause figures come from QEMU's
own trace events (colo_vm_state_change on each side).

Everything goes to --workdir; the summary (one JSON object) to stdout with
--json, else a line per step and the last line
  qemu-colo: BACKEND N checkpoints, consistent yes|no, failover ok|failed
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from colo_lib import (QMP, checkpoints, cpu_seconds, free_port, page_diff,  # noqa: E402
                      parse_trace, pss_mb, stats_ms, stop_procs, wait_colo)

T0 = time.time()
ARGS = None


def log(*a):
    if not ARGS.json:
        print("[%6.1fs]" % (time.time() - T0), *a, flush=True)
    else:
        print("[%6.1fs]" % (time.time() - T0), *a, file=sys.stderr, flush=True)


class Pair:
    def __init__(self, work, tag):
        self.work, self.tag = work, tag
        self.procs = {}
        self.shm = {r: "/dev/shm/rct-colo-%d-%s-%s" % (os.getpid(), tag, r) for r in ("pri", "sec")}

    def path(self, name):
        return os.path.join(self.work, "%s-%s" % (self.tag, name))

    def start_rctd(self, role):
        state = self.path(role + "-rctd-state")
        os.makedirs(state, exist_ok=True)
        sock = self.path(role + "-rctd.sock")
        argv = [ARGS.rctd, "-s", sock, "-S", state, "-k", os.path.join(self.work, "psk"),
                "-l", "info"]
        if ARGS.heartbeat_ms:
            argv += ["-H", str(ARGS.heartbeat_ms)]
        env = dict(os.environ)
        if ARGS.backend == "ucx":
            # Shared memory: the primary rctd stores into the secondary's colo
            # cache mapped into it.  Over tcp alone UCX would emulate the puts,
            # which rct refuses (a primary dying mid-put aborts the secondary's
            # UCX 1.13); tcp stays for the socket-address connection.
            env.setdefault("UCX_TLS", "sm,tcp,self")
            env.setdefault("UCX_NET_DEVICES", "lo")
            env.setdefault("UCX_WARN_UNUSED_ENV_VARS", "n")
        out = open(self.path(role + "-rctd.log"), "w")
        self.procs[role + "-rctd"] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 20
        while not os.path.exists(sock):
            if self.procs[role + "-rctd"].poll() is not None or time.time() > deadline:
                raise RuntimeError("%s rctd did not start: %s" % (role, open(self.path(role + "-rctd.log")).read()[-800:]))
            time.sleep(0.05)
        return sock

    def qemu_argv(self, role, rct_sock, rct_port):
        argv = [ARGS.qemu, "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
                "-name", role + ",debug-threads=on", "-accel", "tcg", "-m", "%dM" % ARGS.mem_mb,
                "-object", ("memory-backend-memfd,id=mem,size=%dM,share=on" % ARGS.mem_mb if ARGS.ram == "memfd" else
                            "memory-backend-file,id=mem,size=%dM,mem-path=%s,share=on" % (ARGS.mem_mb, self.shm[role])),
                "-machine", "pc,memory-backend=mem",
                "-nodefaults", "-display", "none", "-no-user-config",
                "-kernel", ARGS.guest,
                "-chardev", "socket,id=ser0,path=%s,server=on,wait=off,logfile=%s" % (self.path(role + "-serial.sock"), self.path(role + "-serial.log")),
                "-serial", "chardev:ser0",
                "-qmp", "unix:%s,server=on,wait=off" % self.path(role + "-qmp.sock"),
                # a second monitor for the safety sampler (one client per socket)
                "-qmp", "unix:%s,server=on,wait=off" % self.path(role + "-qmp2.sock"),
                "-msg", "timestamp=on", "-D", self.path(role + "-trace.log"),
                "-trace", "enable=colo_*"]
        if rct_sock:
            # rctd holds a pre-shared key: the session proves its pairing with
            # the key both hypervisors were given (a QEMU secret object)
            argv += ["-object", "secret,id=pairing-key,file=%s,format=raw" % os.path.join(self.work, "pairing-key"),
                     "-object", "colo-rct,id=rct,socket=%s,addr=127.0.0.1:%d,backend=%s,lanes=%d,name=colo-%s,"
                     "pairing=%s,pairing-secret=pairing-key%s"
                     % (rct_sock, rct_port, ARGS.backend, ARGS.lanes, role, "colo-" + self.tag,
                        ",failover=on" if role == "sec" and self.auto_failover else "")
                     + (",stream-period=%d" % ARGS.stream_period if ARGS.stream_period is not None else "")
                     + (",resume-at-commit=on" if role == "pri" and ARGS.resume_at_commit else "")]
        if role == "sec":
            argv += ["-incoming", "defer"]
        return argv

    def ram_path(self, role):
        """The guest RAM's file: the /dev/shm file, or (memfd) the QEMU's
        descriptor of its memfd, through /proc."""
        if ARGS.ram != "memfd":
            return self.shm[role]
        fds = "/proc/%d/fd" % self.procs[role].pid
        for fd in os.listdir(fds):
            try:
                if os.readlink(os.path.join(fds, fd)).startswith("/memfd:memory-backend-memfd"):
                    return os.path.join(fds, fd)
            except OSError:
                pass
        raise RuntimeError("%s: no memfd of the memory backend among its descriptors" % role)

    def serial(self, role):
        try:
            return open(self.path(role + "-serial.log"), errors="replace").read().splitlines()
        except FileNotFoundError:
            return []

    def heartbeats(self, role):
        return [l for l in self.serial(role) if l.startswith("HB ")]

    def send_serial(self, role, data):
        c = socket.socket(socket.AF_UNIX)
        c.connect(self.path(role + "-serial.sock"))
        c.sendall(data)
        time.sleep(0.3)
        c.close()

    def wait_serial(self, role, text, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in l for l in self.serial(role)):
                return
            time.sleep(0.1)
        raise TimeoutError("%s serial: %r not seen in %s s" % (role, text, timeout))

    def start(self, rct, auto_failover=False):
        self.auto_failover = auto_failover
        for p in self.shm.values():
            if os.path.exists(p):
                os.unlink(p)
        socks = {"pri": None, "sec": None}
        rct_port = free_port()
        if rct:
            for role in ("sec", "pri"):
                socks[role] = self.start_rctd(role)
        for role in ("sec", "pri"):
            argv = self.qemu_argv(role, socks[role], rct_port)
            open(self.path(role + "-cmdline.txt"), "w").write(" ".join(argv) + "\n")
            self.procs[role] = subprocess.Popen(argv, stdout=open(self.path(role + "-qemu.log"), "w"),
                                                stderr=subprocess.STDOUT)
        self.sec = QMP(self.path("sec-qmp.sock"), "sec")
        self.pri = QMP(self.path("pri-qmp.sock"), "pri")
        caps = [{"capability": "x-colo", "state": True}]
        if rct:
            caps.append({"capability": "x-colo-rct", "state": True})
        port = free_port()
        self.sec.cmd("migrate-set-capabilities", capabilities=caps)
        self.pri.cmd("migrate-set-capabilities", capabilities=caps)
        self.sec.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        self.pri.cmd("migrate-set-parameters", **{"x-checkpoint-delay": ARGS.delay_ms,
                                                  "max-bandwidth": 10 * 1024 ** 3})
        self.wait_serial("pri", "HB 00000002", 60)
        self.pri.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        wait_colo(self.pri, self.sec, self.check_alive)

    def check_alive(self, but=()):
        for r, p in self.procs.items():
            if r not in but and p.poll() is not None:
                raise RuntimeError("%s exited with %s: %s" % (r, p.returncode, self.tail(r)))

    def tail(self, r):
        name = r + ("-qemu.log" if r in ("pri", "sec") else ".log")
        try:
            return " | ".join(open(self.path(name), errors="replace").read().splitlines()[-6:])
        except FileNotFoundError:
            return ""

    def checkpoints_done(self):
        return len(checkpoints(parse_trace(self.path("pri-trace.log"))))

    def run_checkpoints(self, n, timeout):
        deadline = time.time() + timeout
        while self.checkpoints_done() < n:
            if time.time() > deadline:
                raise TimeoutError("%d of %d checkpoints in %s s" % (self.checkpoints_done(), n, timeout))
            self.check_alive()
            self.pri.poll(0.5)
            self.sec.poll(0.01)
            for q in (self.pri, self.sec):
                for e in q.events:
                    if e["event"] == "COLO_EXIT":
                        raise RuntimeError("%s left COLO: %s; %s" % (q.name, e["data"], self.tail(q.name)))

    def quiet_checkpoints(self):
        """(checkpoints done, one under way, the last done's stop time) from
        the primary's trace; under way also while the secondary has not
        resumed from the last one (a primary that resumes at commit runs
        before the secondary loaded)."""
        ev = [e for e in parse_trace(self.path("pri-trace.log")) if e[1] == "colo_vm_state_change"]
        sev = [e for e in parse_trace(self.path("sec-trace.log")) if e[1] == "colo_vm_state_change"]
        cps = checkpoints(ev)
        busy = bool(ev) and "'run' => 'stop'" in ev[-1][2] or \
            bool(sev) and "'run' => 'stop'" in sev[-1][2]
        return len(cps), busy, cps[-1]["stop"] if cps else 0

    def wait_quiet(self, since, deadline, what):
        """Until a checkpoint that stopped after @since has ended on both
        sides and none runs: the checkpoints done."""
        while True:
            n, busy, last_stop = self.quiet_checkpoints()
            if not busy and last_stop >= since:
                return n
            if time.time() > deadline:
                raise TimeoutError("pri: no whole checkpoint after %s in %d s"
                                   % (what, round(deadline - since)))
            self.check_alive()
            self.pri.poll(0.05)

    def consistency(self):
        """Freeze the guest, hold the checkpoints back, compare the RAM files.

        No QMP stop/cont while COLO runs: a 'cont' that lands inside a
        checkpoint's vm_stop (which sets the run state, then drops the BQL to
        wait for the vCPUs) resumes the vCPUs under it, and the COLO thread
        waits for them forever (beside rct-stall: 1 of 24 runs, and a CI).
        Instead the next checkpoint is an hour away (setting x-checkpoint-delay
        starts one at once, after the freeze), the RAM is compared once that
        one has ended on both sides (the primary resumes after the
        secondary's LOADED), and again if a checkpoint ran meanwhile."""
        res = {}
        self.send_serial("pri", b"F")
        self.wait_serial("pri", "FROZEN", 10)
        t_set = time.time()
        self.pri.cmd("migrate-set-parameters", **{"x-checkpoint-delay": QUIET_DELAY_MS})
        deadline = t_set + 60
        for attempt in range(5):
            n = self.wait_quiet(t_set, deadline, "the freeze")
            diff = page_diff(self.ram_path("pri"), self.ram_path("sec"))
            if self.quiet_checkpoints()[:2] == (n, False):
                break
            log("consistency: a checkpoint ran during the comparison; again (%d)" % (attempt + 1))
        else:
            raise RuntimeError("consistency: checkpoints kept running under the comparison")
        res["pages_differing"] = len(diff)
        res["first_differing"] = [{"page": p, "addr": hex(p * 4096), "first_byte": hex(b)} for p, b in diff[:8]]
        res["identical"] = not diff
        mark = len(self.pri.events)
        self.pri.cmd("migrate-set-parameters", **{"x-checkpoint-delay": ARGS.delay_ms})
        self.send_serial("pri", b"U")
        self.wait_serial("pri", "THAWED", 10)
        self.pri.wait_event("RESUME", n=2, timeout=30, since=mark)
        return res

    def wait_any(self, names, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [e for e in self.sec.events if e["event"] in names]
            if got:
                return {"event": got[0]["event"], "data": got[0]["data"]}
            self.sec.poll(0.1)
        return "none of %s in %s s" % (", ".join(names), timeout)

    def failover(self, victim):
        """kill -9 the victim; the secondary's guest must run on."""
        fo = {"killed": victim}
        time.sleep(1.37)
        before = self.heartbeats("sec")
        t_kill = time.time()
        self.procs[victim].send_signal(signal.SIGKILL)
        self.procs[victim].wait(10)
        if self.auto_failover:
            ev = self.sec.wait_event("COLO_RCT_PEER_LOST", timeout=15)[-1]["data"]
            fo["peer_lost_event"] = ev
            fo["peer_lost_after_s"] = round(time.time() - t_kill, 3)
        else:
            # the management's view: the secondary says it lost the primary
            # (COLO_EXIT when the stream broke first, COLO_RCT_PEER_LOST when
            # rct noticed first), then x-colo-lost-heartbeat
            fo["noticed"] = self.wait_any(("COLO_EXIT", "COLO_RCT_PEER_LOST"), 15)
            fo["noticed_after_s"] = round(time.time() - t_kill, 3)
            fo["x-colo-lost-heartbeat"] = self.sec.cmd("x-colo-lost-heartbeat", check=False)
        try:
            fo["colo_exit"] = self.sec.wait_event("COLO_EXIT", timeout=15)[-1]["data"]
        except TimeoutError as e:
            fo["colo_exit"] = str(e)
        deadline = time.time() + 15
        while self.sec.cmd("query-status")["status"] != "running" and time.time() < deadline:
            time.sleep(0.05)
        fo["running_after_s"] = round(time.time() - t_kill, 3)
        fo["status"] = self.sec.cmd("query-status")["status"]
        if victim != "pri" and "pri" in self.procs and self.procs["pri"].poll() is None:
            # the primary lost its transport; fence it (a cluster manager's job)
            self.procs["pri"].kill()
            self.procs["pri"].wait(10)
        time.sleep(3)
        new = self.heartbeats("sec")[len(before):]
        fo["heartbeats_after"] = len(new)
        if new and before:
            a, b = int(before[-1].split()[1], 16), int(new[0].split()[1], 16)
            fo["last_before"], fo["first_after"] = before[-1], new[0]
            fo["counter_continues"] = b == a + 1
        fo["ok"] = fo["status"] == "running" and len(new) >= 2 and fo.get("counter_continues", False)
        return fo

    # ---- faults of the secondary's rctd (issue 29), both sides watched ----

    def sampler_start(self, period=0.1):
        """Both QEMUs' run state and COLO mode every @period s, on monitors of
        their own, until sampler_stop(): what a double primary would show."""
        import threading
        self.samples, self.sampling = [], True
        mon = {}
        for role in ("pri", "sec"):
            try:
                mon[role] = QMP(self.path(role + "-qmp2.sock"), role + "-sampler", timeout=5)
            except Exception:
                mon[role] = None

        def one(role):
            q = mon[role]
            if q is None or self.procs[role].poll() is not None:
                return ("gone", "gone")
            try:
                return (q.cmd("query-status")["status"], q.cmd("query-colo-status")["mode"])
            except Exception:
                mon[role] = None
                return ("gone", "gone")

        def run():
            while self.sampling:
                t = time.time()
                ps, pm = one("pri")
                ss, sm = one("sec")
                self.samples.append({"t": round(t - T0, 3), "pri": ps, "pri_mode": pm,
                                     "sec": ss, "sec_mode": sm})
                time.sleep(max(0.0, period - (time.time() - t)))

        self.sampler = threading.Thread(target=run, daemon=True)
        self.sampler.start()

    def sampler_stop(self):
        """Stop sampling: (samples, samples with two running guests that are
        not a COLO pair replicating: a primary and a secondary)."""
        self.sampling = False
        self.sampler.join(10)
        double = [x for x in self.samples if x["pri"] == "running" and x["sec"] == "running"
                  and not (x["pri_mode"] == "primary" and x["sec_mode"] == "secondary")]
        return len(self.samples), double

    def rctctl(self, *args):
        """rctctl beside rctd, on the secondary's rctd: (exit status, its JSON or None)."""
        r = subprocess.run([os.path.join(os.path.dirname(ARGS.rctd), "rctctl"), *args,
                            "-s", self.path("sec-rctd.sock"), "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return r.returncode, None

    def resume_primary(self, fo, since):
        """The manager's part: the primary says it lost its secondary (rct's
        PEER_LOST, or COLO_EXIT), x-colo-lost-heartbeat, and its guest counts on."""
        deadline = time.time() + 15
        while time.time() < deadline:
            got = [e for e in self.pri.events[since:]
                   if e["event"] in ("COLO_RCT_PEER_LOST", "COLO_EXIT")]
            if got:
                fo["primary_noticed"] = {"event": got[0]["event"], "data": got[0]["data"]}
                break
            self.pri.poll(0.1)
        before = self.heartbeats("pri")
        fo["primary_x-colo-lost-heartbeat"] = self.pri.cmd("x-colo-lost-heartbeat", check=False)
        t0 = time.time()
        while self.pri.cmd("query-status")["status"] != "running" and time.time() < t0 + 15:
            time.sleep(0.05)
        fo["primary_running_after_s"] = round(time.time() - fo["t_kill"], 3)
        time.sleep(3)
        new = self.heartbeats("pri")[len(before):]
        fo["primary_heartbeats_after"] = len(new)
        return self.pri.cmd("query-status")["status"] == "running" and len(new) >= 2

    def catch_in_flush(self, victim, mark, timeout, after=None):
        """SIGSTOP @victim (an rctd) while its flush mark says "flushing": the
        epoch it was caught in, or None.  @after: call it once polling runs."""
        deadline = time.time() + timeout
        with open(mark, "a"):
            pass
        fd = os.open(mark, os.O_RDONLY)
        try:
            while time.time() < deadline:
                if after:
                    after()
                    after = None
                line = os.pread(fd, 64, 0).decode(errors="replace")
                if not line.startswith("flushing"):
                    continue
                victim.send_signal(signal.SIGSTOP)
                line = os.pread(fd, 64, 0).decode(errors="replace")
                if line.startswith("flushing"):
                    return line.split()[1]       # stopped inside the flush
                victim.send_signal(signal.SIGCONT)  # it had finished: the next one
        finally:
            os.close(fd)
        return None

    def primary_killed_before_loaded(self):
        """Resume at commit: kill -9 of the primary QEMU once it resumed from
        a checkpoint that the secondary has not loaded (its rctd stopped inside
        that checkpoint's flush); the secondary must fail over into that
        checkpoint, its RAM byte for byte the primary's at it.  The guest is
        frozen before that checkpoint, so the primary's RAM file keeps the
        checkpoint's image after the kill, and the secondary's RAM differs
        from it before the checkpoint (it holds the previous one, and its
        own guest ran on from there)."""
        fo = {"killed": "pri", "when": "resumed at commit, before the secondary's LOADED"}
        mark = os.path.join(self.path("sec-rctd-state"), "colo-%s.flush" % self.tag)
        rctd = self.procs["sec-rctd"]
        # No checkpoint from now on until asked: the one the setting starts, then none.
        t_set = time.time()
        self.pri.cmd("migrate-set-parameters", **{"x-checkpoint-delay": QUIET_DELAY_MS})
        self.wait_quiet(t_set, t_set + 60, "the setting")
        with open(mark) as f:
            before_mark = f.read(64).split()
        self.send_serial("pri", b"F")
        self.wait_serial("pri", "FROZEN", 10)
        # the primary's RAM is the next checkpoint's image from here on
        fo["pages_differing_before"] = len(page_diff(self.ram_path("pri"), self.ram_path("sec")))
        caught = self.catch_in_flush(rctd, mark, 30, after=lambda: self.pri.cmd(
            "migrate-set-parameters", **{"x-checkpoint-delay": ARGS.delay_ms}))
        fo["caught_in_flush_of_epoch"] = caught
        fo["previous_epoch"] = before_mark[1] if len(before_mark) == 2 else None
        if caught is None:
            fo["ok"] = False
            fo["why"] = "no flush caught in 30 s"
            return fo
        # The primary resumed from that checkpoint before the secondary loaded it:
        # its trace's last run-state change is stop => run.  (A resuming primary
        # may still be taking the BQL for vm_start() when the flush is caught;
        # one that waits for LOADED never resumes while the secondary's rctd
        # is stopped.)  Seen within a second, or not at all.
        fo["primary_status_when_caught"] = self.pri.cmd("query-status")["status"]
        deadline = time.time() + 1.0
        resumed = False
        while not resumed and time.time() < deadline:
            ev = [e for e in parse_trace(self.path("pri-trace.log"))
                  if e[1] == "colo_vm_state_change"]
            resumed = bool(ev) and "'stop' => 'run'" in ev[-1][2]
            if not resumed:
                time.sleep(0.01)
        fo["primary_resumed_before_loaded"] = resumed
        t_kill = time.time()
        self.procs["pri"].send_signal(signal.SIGKILL)
        self.procs["pri"].wait(10)
        rctd.send_signal(signal.SIGCONT)
        fo["noticed"] = self.wait_any(("COLO_EXIT", "COLO_RCT_PEER_LOST"), 15)
        fo["x-colo-lost-heartbeat"] = self.sec.cmd("x-colo-lost-heartbeat", check=False)
        deadline = time.time() + 15
        while self.sec.cmd("query-status")["status"] != "running" and time.time() < deadline:
            time.sleep(0.05)
        fo["running_after_s"] = round(time.time() - t_kill, 3)
        fo["status"] = self.sec.cmd("query-status")["status"]
        with open(mark) as f:
            fo["secondary_flush_mark"] = f.read(64).strip()
        diff = page_diff(self.ram_path("pri"), self.ram_path("sec"))
        fo["pages_differing_after"] = len(diff)
        fo["first_differing"] = [{"page": p, "addr": hex(p * 4096)} for p, _ in diff[:8]]
        before = self.heartbeats("sec")
        self.send_serial("sec", b"U")
        self.wait_serial("sec", "THAWED", 10)
        time.sleep(2)
        fo["heartbeats_after"] = len(self.heartbeats("sec")) - len(before)
        fo["ok"] = (fo["primary_resumed_before_loaded"] and fo["status"] == "running"
                    and fo["pages_differing_before"] > 0 and not diff
                    and fo["secondary_flush_mark"] == "flushed %s" % caught
                    and fo["previous_epoch"] is not None
                    and int(caught) == int(fo["previous_epoch"]) + 1
                    and fo["heartbeats_after"] >= 2)
        return fo

    def secondary_rctd_killed(self, in_flush, sig=signal.SIGKILL):
        """kill -9 (@sig: or SIGTERM) of the secondary's rctd (failover=on on the secondary), while
        both QEMUs are sampled every 100 ms: the secondary reports a local fault
        and never takes over; the manager resumes the primary; never two
        running guests.  @in_flush: the kill lands inside a flush (the rctd is
        stopped while its flush mark says "flushing", then killed): that
        secondary's guest RAM is torn, it is refused as a failover target by
        QEMU and, after a restart, by its rctd.  SIGTERM: rctd stops at once
        (exit 0) and tells its clients first, so the secondary's local fault
        says that its rctd is stopping."""
        fo = {"killed": "sec-rctd", "signal": signal.Signals(sig).name, "in_flush": in_flush}
        mark = os.path.join(self.path("sec-rctd-state"), "colo-%s.flush" % self.tag)
        victim = self.procs["sec-rctd"]
        sec_mark, pri_mark = len(self.sec.events), len(self.pri.events)
        self.sampler_start()
        time.sleep(1.0)
        if in_flush:
            caught = self.catch_in_flush(victim, mark, 30)
            fo["caught_in_flush_of_epoch"] = caught
            if caught is None:
                self.sampler_stop()
                fo["ok"] = False
                fo["why"] = "no flush caught in 30 s"
                return fo
        fo["t_kill"] = time.time()
        victim.send_signal(sig)
        fo["rctd_exit"] = victim.wait(10)
        # The secondary: a local fault, never a failover.
        try:
            fo["secondary_event"] = self.sec.wait_event("COLO_RCT_LOCAL_FAULT", timeout=10,
                                                        since=sec_mark)[-1]["data"]
        except TimeoutError as e:
            fo["secondary_event"] = str(e)
        fo["primary_resumed"] = self.resume_primary(fo, pri_mark)
        fo["secondary_status"] = self.sec.cmd("query-status")["status"]
        fo["secondary_rct_status"] = self.sec.cmd("qom-get", check=False, path="/objects/rct",
                                                  property="status")
        fo["secondary_failed_over"] = any(
            e["event"] == "COLO_RCT_PEER_LOST" and e["data"].get("failover")
            for e in self.sec.events[sec_mark:])
        ok = (isinstance(fo["secondary_event"], dict) and not fo["secondary_failed_over"]
              and fo["secondary_status"] != "running" and fo["primary_resumed"])
        if sig == signal.SIGTERM:
            ok = ok and fo["rctd_exit"] == 0 and \
                "stopping" in fo["secondary_event"].get("reason", "")
        if in_flush:
            # QEMU refuses to resume a torn secondary ...
            fo["secondary_x-colo-lost-heartbeat"] = self.sec.cmd("x-colo-lost-heartbeat",
                                                                 check=False)
            refused = "error" in fo["secondary_x-colo-lost-heartbeat"]
            time.sleep(0.5)
            # ... and so does its rctd once back: torn at that epoch, failover refused.
            sock = self.path("sec-rctd.sock")
            if os.path.exists(sock):
                os.unlink(sock)
            self.start_rctd("sec")
            rc, show = self.rctctl("pairing", "show", "colo-" + self.tag)
            fo["rctd_show_torn_at_epoch"] = show.get("torn_at_epoch") if show else None
            rc, res = self.rctctl("pairing", "failover", "colo-" + self.tag)
            fo["rctd_failover"] = {"exit": rc, "errno": res.get("errno") if res else None}
            ok = ok and refused and fo["secondary_rct_status"] == "torn" and \
                str(fo["rctd_show_torn_at_epoch"]) == fo["caught_in_flush_of_epoch"] and \
                rc == 4 and fo["rctd_failover"]["errno"] == "EUCLEAN"
        time.sleep(1.0)
        n, double = self.sampler_stop()
        fo["samples"], fo["double_running"] = n, len(double)
        if double:
            fo["first_double"] = double[0]
        fo["ok"] = ok and not double and n > 0
        return fo

    def qmp_under_stall(self, stop_ms, side):
        """An rctd (@side: "pri" or "sec") stopped (SIGSTOP) for @stop_ms while the
        primary checkpoints: the primary's save waits on it (its own rctd does
        not answer; the peer's does not acknowledge), and its QMP must answer
        meanwhile: nothing that can wait runs under the BQL.  The primary's
        query-status round trips, every 20 ms on a monitor of their own, before
        and during the stop."""
        import threading
        q = QMP(self.path("pri-qmp2.sock"), "pri-latency", timeout=60)
        rtt, running = [], [True]

        def run():
            while running[0]:
                t = time.time()
                q.cmd("query-status")
                rtt.append((t, (time.time() - t) * 1000))
                time.sleep(0.02)

        th = threading.Thread(target=run, daemon=True)
        th.start()
        time.sleep(2)
        cp0 = self.checkpoints_done()
        t0 = time.time()
        self.procs[side + "-rctd"].send_signal(signal.SIGSTOP)
        time.sleep(stop_ms / 1000.0)
        self.procs[side + "-rctd"].send_signal(signal.SIGCONT)
        t1 = time.time()
        time.sleep(2)
        running[0] = False
        th.join(10)
        before = [ms for t, ms in rtt if t < t0]
        during = [ms for t, ms in rtt if t0 <= t < t1]
        res = {"stopped": side + "-rctd", "stop_ms": stop_ms, "qmp_rtt_ms_before": stats_ms(before),
               "qmp_rtt_ms_during": stats_ms(during),
               "checkpoints_in_stop": None}
        # the primary's checkpoints that began during the stop, and that it replicates on
        pri = checkpoints(parse_trace(self.path("pri-trace.log")))
        res["checkpoints_begun_in_stop"] = len([c for c in pri if t0 <= c["stop"] < t1])
        del res["checkpoints_in_stop"]
        self.run_checkpoints(self.checkpoints_done() + 3, 60)
        res["replicating_after"] = self.pri.cmd("query-colo-status")["mode"] == "primary"
        res["ok"] = res["replicating_after"] and bool(during) and \
            res["qmp_rtt_ms_during"]["max"] < stop_ms / 2.0
        return res

    def stop(self):
        stop_procs([self.procs.get(r) for r in ("pri", "sec", "pri-rctd", "sec-rctd")],
                   self.shm.values())


# x-checkpoint-delay while the RAM is compared: no checkpoint meanwhile.
QUIET_DELAY_MS = 3600 * 1000


def memory(pair):
    """Each host's memory: PSS of its QEMU and rctd (MiB) and their sum."""
    out = {}
    for side in ("pri", "sec"):
        m = {r: pss_mb(p.pid) for r, p in pair.procs.items() if r.startswith(side) and p.poll() is None}
        m = {r: v for r, v in m.items() if v is not None}
        m["total"] = round(sum(m.values()), 1)
        out[side] = m
    return out


def measure(pair, n):
    """n checkpoints, every one from COLO's first (none left out as a warm-up):
    pauses from both sides' traces, the first on its own, CPU per checkpoint
    of every process, each host's memory after them."""
    c0 = {r: cpu_seconds(p.pid) for r, p in pair.procs.items()}
    t0 = time.time()
    pair.run_checkpoints(n, 60 + n * (ARGS.delay_ms / 1000.0 + 1.0))
    t1 = time.time()
    c1 = {r: cpu_seconds(p.pid) for r, p in pair.procs.items()}
    res = {"window_s": round(t1 - t0, 2)}
    pev = parse_trace(pair.path("pri-trace.log"))
    pri = checkpoints(pev)[:n]
    # the secondary stops for a checkpoint after the primary: those in the window
    w0, w1 = (pri[0]["stop"], pri[-1]["run"]) if pri else (0, 0)
    sec = [c for c in checkpoints(parse_trace(pair.path("sec-trace.log"))) if w0 <= c["stop"] <= w1]
    res["checkpoints"] = len(pri)
    res["checkpoints_per_s"] = round(len(pri) / max(1e-9, w1 - w0), 2) if pri else 0
    res["primary_pause_ms"] = stats_ms([(c["run"] - c["stop"]) * 1000 for c in pri])
    res["primary_pauses_ms"] = [round((c["run"] - c["stop"]) * 1000, 3) for c in pri]
    res["secondary_pause_ms"] = stats_ms([(c["run"] - c["stop"]) * 1000 for c in sec])
    res["first_pause_ms"] = {"primary": round((pri[0]["run"] - pri[0]["stop"]) * 1000, 2) if pri else None,
                             "secondary": round((sec[0]["run"] - sec[0]["stop"]) * 1000, 2) if sec else None}
    # rct: the sync that seeded the secondary's cache while the guest ran
    base = [a for _, name, a in pev if name == "colo_rct_base_sync"]
    res["base_sync"] = ({"pages": int(base[0].split()[2]), "ms": int(base[0].split()[5])}
                        if base else None)
    res["cpu_s"] = {r: round(c1[r] - c0[r], 2) for r in c0 if c0[r] is not None and c1.get(r) is not None}
    res["cpu_pct_of_one_core"] = {r: round(100 * v / max(1e-9, t1 - t0), 1) for r, v in res["cpu_s"].items()}
    res["cpu_ms_per_checkpoint"] = round(1000 * sum(res["cpu_s"].values()) / max(1, len(pri)), 1)
    res["memory_mib"] = memory(pair)
    # the guest's dirty pages per checkpoint (trace colo_save_dirty, every
    # block), and those rct moved (colo_rct_save; the rest went on the stream)
    dirty = [c["dirty_pages"] for c in pri if "dirty_pages" in c]
    rct_pages = [c.get("rct_pages", 0) for c in pri]
    res["pages_per_checkpoint"] = {"dirty": round(statistics.mean(dirty), 1) if dirty else None,
                                   "rct": round(statistics.mean(rct_pages), 1) if rct_pages else None}
    res["mb_per_checkpoint"] = round(statistics.mean(dirty) * 4096 / 1e6, 3) if dirty else None
    return res


def dump_stacks(pair):
    """A failed pair's QEMUs, while they still run: every thread's stack
    (gdb), so that a hang leaves its evidence beside the traces."""
    gdb = shutil.which("gdb")
    for role in ("pri", "sec"):
        p = pair.procs.get(role)
        if not p or p.poll() is not None:
            continue
        if not gdb:
            log("%s: no gdb here: the stacks of QEMU %d were not taken" % (role, p.pid))
            continue
        path = pair.path(role + "-stacks.txt")
        with open(path, "w") as out:
            try:
                subprocess.run([gdb, "-p", str(p.pid), "-batch", "-nx", "-ex", "set pagination off",
                                "-ex", "thread apply all bt"], stdout=out, stderr=subprocess.STDOUT,
                               timeout=60, check=False)
            except subprocess.TimeoutExpired:
                out.write("gdb did not finish in 60 s\n")
        log("%s: the stacks of QEMU %d are in %s" % (role, p.pid, path))


def attempt(summary, label, tag, body):
    """body(pair) on a fresh pair; a failure is recorded, the pair always stopped."""
    pair = Pair(ARGS.workdir, label + "-" + tag)
    try:
        body(pair)
        return True
    except Exception as e:
        summary["error"] = "%s: %s" % (type(e).__name__, e)
        log("%s: FAILED: %s" % (label, summary["error"]))
        dump_stacks(pair)
        return False
    finally:
        pair.stop()


def main():
    global ARGS
    # SIGTERM (a caller done with a pair run beside it) stops the pair: its
    # QEMUs and rctds go with it (attempt()'s finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", required=True, help="qemu-system-x86_64 (scripts/qemu/build.sh)")
    ap.add_argument("--rctd", help="rctd (required with --mode rct)")
    ap.add_argument("--guest", required=True, help="the probe guest (scripts/qemu/guest/build-guest.sh)")
    ap.add_argument("--mode", choices=("stock", "rct"), default="rct")
    ap.add_argument("--backend", choices=("tcp", "ucx", "verbs"), default="tcp")
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--stream-period", type=int, default=None,
                    help="colo-rct stream-period: ms between hand-overs of dirty pages while the "
                         "guest runs (0: none; default: the object's)")
    ap.add_argument("--resume-at-commit", action="store_true",
                    help="colo-rct resume-at-commit on the primary: its guest resumes once the "
                         "secondary's rctd holds the checkpoint whole; with --kill all, a last pair "
                         "whose primary is killed between its resume and the secondary's LOADED")
    ap.add_argument("--checkpoints", type=int, default=100, help="checkpoints to measure (100)")
    ap.add_argument("--delay-ms", type=int, default=300, help="x-checkpoint-delay (300)")
    ap.add_argument("--mem-mb", type=int, default=256)
    ap.add_argument("--ram", choices=("file", "memfd"), default="file",
                    help="guest RAM: memory-backend-file on /dev/shm (not sealed: rctd flushes it on "
                         "one thread) or memory-backend-memfd (sealed: rctd's flush threads)")
    ap.add_argument("--kill", choices=("none", "qemu", "rctd", "both", "all", "commit"), default="both",
                    help="what to kill -9 afterwards: the primary's QEMU, its rctd (a second pair), "
                         "both (two pairs); all: both, then three more pairs for the secondary's "
                         "rctd, kill -9 between checkpoints and inside a flush, SIGTERM between "
                         "checkpoints, with both QEMUs sampled; commit (with --resume-at-commit): "
                         "only a second pair whose primary is killed before the secondary loaded")
    ap.add_argument("--heartbeat-ms", type=int, default=0, help="rctd -H (default: rctd's)")
    ap.add_argument("--qmp-stall-ms", type=int, default=0,
                    help="instead of the kills: stop an rctd (--stall-side) this long while the "
                         "primary checkpoints, and time the primary's QMP meanwhile (give "
                         "--heartbeat-ms above a third of it)")
    ap.add_argument("--stall-side", choices=("pri", "sec"), default="pri",
                    help="whose rctd --qmp-stall-ms stops (default: the primary's)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json", action="store_true", help="the summary, one JSON object, on stdout")
    ARGS = ap.parse_args()
    if ARGS.mode == "rct" and not ARGS.rctd:
        ap.error("--mode rct needs --rctd")
    if ARGS.resume_at_commit and (ARGS.mode != "rct" or ARGS.ram != "file"):
        ap.error("--resume-at-commit needs --mode rct and --ram file")
    if ARGS.kill == "commit" and not ARGS.resume_at_commit:
        ap.error("--kill commit needs --resume-at-commit")
    if ARGS.mode == "stock" and ARGS.kill in ("rctd", "both", "all"):
        ARGS.kill = "qemu" if ARGS.kill in ("both", "all") else "none"
    os.makedirs(ARGS.workdir, exist_ok=True)
    for name in ("psk", "pairing-key"):
        path = os.path.join(ARGS.workdir, name)
        with open(path, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(path, 0o600)

    label = ARGS.backend if ARGS.mode == "rct" else "stock"
    summary = {"mode": ARGS.mode, "backend": ARGS.backend if ARGS.mode == "rct" else None,
               "resume_at_commit": ARGS.resume_at_commit,
               "lanes": ARGS.lanes if ARGS.mode == "rct" else None, "delay_ms": ARGS.delay_ms,
               "mem_mb": ARGS.mem_mb, "guest": os.path.basename(ARGS.guest)}
    summary["failover"] = []

    def first(pair):
        log("%s: starting the pair (%s)" % (label, "COLO through rctd, %s:%d" % (ARGS.backend, ARGS.lanes)
                                          if ARGS.mode == "rct" else "stock COLO"))
        pair.start(ARGS.mode == "rct")
        log("%s: in COLO; measuring %d checkpoints" % (label, ARGS.checkpoints))
        summary.update(measure(pair, ARGS.checkpoints))
        log("%s: %d checkpoints, primary pause %s ms, secondary %s ms" % (
            label, summary["checkpoints"], summary["primary_pause_ms"], summary["secondary_pause_ms"]))
        summary["consistency"] = pair.consistency()
        log("%s: RAM after a checkpoint (frozen guest): %s" % (label, summary["consistency"]))
        if ARGS.kill in ("qemu", "both"):
            fo = pair.failover("pri")
            log("%s: kill -9 of the primary QEMU: %s" % (label, fo))
            summary["failover"].append(fo)

    def second(pair):
        log("%s: a second pair, secondary with failover=on; then kill -9 of the primary's rctd" % label)
        pair.start(True, auto_failover=True)
        pair.run_checkpoints(10, 120)
        summary["consistency_b"] = pair.consistency()
        log("%s: RAM after a checkpoint (frozen guest): %s" % (label, summary["consistency_b"]))
        fo = pair.failover("pri-rctd")
        log("%s: kill -9 of the primary's rctd: %s" % (label, fo))
        summary["failover"].append(fo)

    def third(pair, in_flush, sig=signal.SIGKILL):
        what = "inside a flush" if in_flush else "between checkpoints"
        how = "kill -9" if sig == signal.SIGKILL else "SIGTERM"
        log("%s: a pair, secondary with failover=on; %s of the secondary's rctd %s, "
            "both QEMUs sampled every 100 ms" % (label, how, what))
        pair.start(True, auto_failover=True)
        pair.run_checkpoints(10, 120)
        fo = pair.secondary_rctd_killed(in_flush, sig)
        log("%s: %s of the secondary's rctd %s: %s" % (label, how, what, fo))
        summary["failover"].append(fo)

    if ARGS.qmp_stall_ms:
        def stall(pair):
            pair.start(True)
            pair.run_checkpoints(10, 120)
            summary["qmp_under_stall"] = pair.qmp_under_stall(ARGS.qmp_stall_ms, ARGS.stall_side)
            log("%s: %s" % (label, summary["qmp_under_stall"]))
        ok = attempt(summary, label, "s", stall) and summary["qmp_under_stall"]["ok"]
        if ARGS.json:
            print(json.dumps(summary))
        else:
            q = summary.get("qmp_under_stall", {})
            print("qemu-colo-qmp: %s: the primary's QMP round trip max %s ms (before: %s) while "
                  "the %s rctd was stopped %d ms, %s checkpoints begun in it, %s" % (
                      label, q.get("qmp_rtt_ms_during", {}).get("max"),
                      q.get("qmp_rtt_ms_before", {}).get("max"),
                      "primary's" if ARGS.stall_side == "pri" else "secondary's", ARGS.qmp_stall_ms,
                      q.get("checkpoints_begun_in_stop"), "ok" if ok else "FAILED"))
        return 0 if ok else 1

    ok = attempt(summary, label, "a", first)
    if ok and ARGS.kill in ("rctd", "both", "all"):
        ok = attempt(summary, label, "b", second)
    if ok and ARGS.kill == "all":
        ok = attempt(summary, label, "c", lambda p: third(p, False))
    if ok and ARGS.kill == "all":
        ok = attempt(summary, label, "d", lambda p: third(p, True))
    if ok and ARGS.kill == "all":
        ok = attempt(summary, label, "e", lambda p: third(p, False, signal.SIGTERM))

    def fourth(pair):
        log("%s: a pair resuming at commit; kill -9 of the primary QEMU between its resume and "
            "the secondary's LOADED (the secondary's rctd stopped inside that flush)" % label)
        pair.start(True)
        pair.run_checkpoints(10, 120)
        fo = pair.primary_killed_before_loaded()
        log("%s: kill -9 of the primary before the secondary loaded: %s" % (label, fo))
        summary["failover"].append(fo)
    if ok and ARGS.kill in ("all", "commit") and ARGS.resume_at_commit:
        ok = attempt(summary, label, "f", fourth)
    consistent = "consistency" in summary and summary["consistency"]["identical"] and \
        summary.get("consistency_b", {"identical": True})["identical"]
    fo_ok = bool(summary.get("failover")) and all(f["ok"] for f in summary["failover"])
    if ARGS.kill == "none":
        fo_ok = "error" not in summary
    summary["consistent"] = bool(consistent)
    summary["failover_ok"] = fo_ok
    if ARGS.json:
        print(json.dumps(summary))
    else:
        print("qemu-colo: %s %d checkpoints, consistent %s, failover %s" % (
            label, summary.get("checkpoints", 0), "yes" if consistent else "no", "ok" if fo_ok else "failed"))
    return 0 if ok and consistent and fo_ok else 1


if __name__ == "__main__":
    sys.exit(main())
