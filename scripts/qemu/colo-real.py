#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""COLO as deployed, on one machine (issue 33): a Linux guest serving a client
through colo-compare, its disk replicated, stock or through rct.

Two hosts and a client are network namespaces on one switch
(scripts/qemu/colo-net.sh).  The guest (scripts/qemu/guest-linux: Debian's
kernel, a virtio NIC and disk, colo-svc appending every request to a file on
the disk and fsyncing it before it answers) runs on the primary as QEMU's
docs/COLO-FT.txt sets COLO up: filter-mirror, filter-redirector and
colo-compare (on an iothread) on the primary, filter-redirector and
filter-rewriter on the secondary, the disk through quorum and the
replication driver with the secondary's NBD export (every filter and
colo-compare with vnet_hdr_support=on for a virtio NIC: its tap carries
virtio net headers); the primary starts
paused, COLO starts it (both disks equal from the first write).  With
--mode rct both QEMUs also have a colo-rct object and an rctd in their
namespace.

The client (scripts/qemu/colo-client.py, in the client's namespace) keeps
one TCP connection and sends requests at --rate (every --vary-every'th one answered
differently by the two guests, so that colo-compare takes checkpoints too);
after --before-s the
fault (--fault): kill -9 of the primary QEMU, or of the primary's rctd, or
the primary's link to the switch cut; then the failover as a cluster
manager drives it on the secondary (docs/COLO-FT.txt's "Secondary
Failover": nbd-server-stop, x-colo-lost-heartbeat, the redirectors and
their chardevs removed, announce-self); the client goes on for --after-s.
Then the checks: every request answered exactly once and in order on the
one connection, and the guest's file (read through the service) holds each
answered request exactly once.  Checkpoints are counted from the primary's
trace and split by what started them: the timer (x-checkpoint-delay after
the last) or colo-compare (earlier: a miscompare or a packet held too long).

The last line (or --json: one JSON object on stdout):
  colo-real: MODE BACKEND R requests, C checkpoints (T timer, M compare), failover ok|failed, lost L, duplicated D
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from colo_lib import (QMP, checkpoint_triggers, checkpoints, parse_trace,  # noqa: E402
                      stats_ms, stop_procs, wait_colo)

T0 = time.time()
ARGS = None
PRI_IP, SEC_IP, GUEST_IP = "10.77.1.1", "10.77.1.2", "10.77.1.10"
MAC = "52:54:00:c0:10:0a"
SVC_PORT, NBD_PORT, MIG_PORT, RCT_PORT = 7777, 9999, 9998, 7471


def log(*a):
    print("[%6.1fs]" % (time.time() - T0), *a, file=sys.stderr if ARGS.json else sys.stdout,
          flush=True)


class Deployment:
    def __init__(self, work, prefix):
        self.work, self.prefix = work, prefix
        self.procs = {}
        self.shm = {r: "/dev/shm/rct-colo-real-%d-%s" % (os.getpid(), r) for r in ("pri", "sec")}
        # The disks on tmpfs, as COLO's documentation advises for the
        # secondary's overlays: the guest fsyncs every request, and this
        # machine's disk would make that the figure measured.
        self.disk_dir = "/dev/shm/rct-colo-real-%d-disks" % os.getpid()
        self.rct = ARGS.mode == "rct"

    def path(self, name):
        return os.path.join(self.work, name)

    def ns(self, host):
        return ["ip", "netns", "exec", "%s-%s" % (self.prefix, host)]

    def spawn(self, name, host, argv, env=None):
        out = open(self.path(name + ".log"), "w")
        open(self.path(name + "-cmdline.txt"), "w").write(" ".join(argv) + "\n")
        self.procs[name] = subprocess.Popen(self.ns(host) + argv, stdout=out,
                                            stderr=subprocess.STDOUT, env=env)
        return self.procs[name]

    def net(self, op, *args):
        subprocess.run([os.path.join(HERE, "colo-net.sh"), op, self.prefix, *args], check=True,
                       stdout=subprocess.DEVNULL)

    # ---- the pieces ----

    def disk(self, name):
        return os.path.join(self.disk_dir, name)

    def disks(self):
        """The guest's disk, the secondary's copy of it, its active and hidden
        overlays (qcow2, as large)."""
        os.makedirs(self.disk_dir, exist_ok=True)
        disk = self.disk("pri-disk.img")
        subprocess.run([os.path.join(HERE, "guest-linux", "build.sh"), "--disk", disk,
                        str(ARGS.disk_mib)], check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(disk, self.disk("sec-disk.img"))
        size = str(os.path.getsize(disk))
        for f in ("sec-active.qcow2", "sec-hidden.qcow2"):
            subprocess.run([ARGS.qemu_img, "create", "-q", "-f", "qcow2", self.disk(f), size],
                           check=True)

    def start_rctd(self, host):
        state = self.path(host + "-rctd-state")
        os.makedirs(state, exist_ok=True)
        sock = self.path(host + "-rctd.sock")
        argv = [ARGS.rctd, "-s", sock, "-S", state, "-k", self.path("psk"), "-l", "info"]
        env = dict(os.environ)
        if ARGS.backend == "ucx":
            # As colo-pair.py: shared memory for the puts, tcp for the
            # connection, over the host's own bridge (its namespace's uplink).
            env.setdefault("UCX_TLS", "sm,tcp,self")
            env.setdefault("UCX_NET_DEVICES", "brp" if host == "pri" else "brs")
            env.setdefault("UCX_WARN_UNUSED_ENV_VARS", "n")
        p = self.spawn(host + "-rctd", host, argv, env)
        deadline = time.time() + 20
        while not os.path.exists(sock):
            if p.poll() is not None or time.time() > deadline:
                raise RuntimeError("%s rctd did not start: %s" % (
                    host, open(self.path(host + "-rctd.log")).read()[-600:]))
            time.sleep(0.05)
        return sock

    def qemu_argv(self, host, rct_sock):
        g = ARGS.guest_dir
        argv = [ARGS.qemu, "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
                "-name", host + ",debug-threads=on", "-accel", "tcg", "-m", "%dM" % ARGS.mem_mb,
                "-smp", "1",
                "-object", "memory-backend-file,id=mem,size=%dM,mem-path=%s,share=on"
                % (ARGS.mem_mb, self.shm[host]),
                "-machine", "pc,memory-backend=mem", "-nodefaults", "-display", "none",
                "-no-user-config",
                "-kernel", os.path.join(g, "vmlinuz"), "-initrd", os.path.join(g, "initramfs.cpio.gz"),
                "-append", "console=ttyS0 quiet panic=-1 ipv6.disable=1 rct.ip=%s/24" % GUEST_IP,
                "-chardev", "socket,id=ser0,path=%s,server=on,wait=off,logfile=%s"
                % (self.path(host + "-serial.sock"), self.path(host + "-serial.log")),
                "-serial", "chardev:ser0",
                "-qmp", "unix:%s,server=on,wait=off" % self.path(host + "-qmp.sock"),
                "-msg", "timestamp=on", "-D", self.path(host + "-trace.log"),
                "-trace", "enable=colo_*",
                "-netdev", "tap,id=hn0,ifname=%s-tap,script=no,downscript=no,vhost=off,vnet_hdr=%s"
                % (self.prefix, "on" if ARGS.vnet_hdr else "off"),
                "-device", "%s,id=e0,netdev=hn0,mac=%s,romfile=" % (ARGS.nic, MAC)]
        if ARGS.mode == "none":
            # the guest alone on the primary host, no COLO: the baseline
            argv += ["-drive", "if=none,id=disk0,driver=raw,file.filename=%s"
                     % self.disk("pri-disk.img"), "-device", "virtio-blk-pci,drive=disk0"]
        elif host == "pri":
            argv += [
                "-chardev", "socket,id=mirror0,host=0.0.0.0,port=9003,server=on,wait=off",
                "-chardev", "socket,id=compare1,host=0.0.0.0,port=9004,server=on,wait=off",
                "-chardev", "socket,id=compare0,host=127.0.0.1,port=9001,server=on,wait=off",
                "-chardev", "socket,id=compare0-0,host=127.0.0.1,port=9001",
                "-chardev", "socket,id=compare_out,host=127.0.0.1,port=9005,server=on,wait=off",
                "-chardev", "socket,id=compare_out0,host=127.0.0.1,port=9005",
                "-object", "filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0",
                "-object", "filter-redirector,netdev=hn0,id=redire0,queue=rx,indev=compare_out",
                "-object", "filter-redirector,netdev=hn0,id=redire1,queue=rx,outdev=compare0",
                "-object", "iothread,id=iothread1",
                "-object", "colo-compare,id=comp0,primary_in=compare0-0,secondary_in=compare1,"
                           "outdev=compare_out0,iothread=iothread1",
                "-drive", "if=none,id=colo-disk0,driver=quorum,read-pattern=fifo,vote-threshold=1,"
                          "children.0.file.filename=%s,children.0.driver=raw" % self.disk("pri-disk.img"),
                "-device", "virtio-blk-pci,drive=colo-disk0",
                "-S"]
        else:
            argv += [
                "-chardev", "socket,id=red0,host=%s,port=9003,reconnect-ms=1000" % PRI_IP,
                "-chardev", "socket,id=red1,host=%s,port=9004,reconnect-ms=1000" % PRI_IP,
                "-object", "filter-redirector,id=f1,netdev=hn0,queue=tx,indev=red0",
                "-object", "filter-redirector,id=f2,netdev=hn0,queue=rx,outdev=red1",
                "-object", "filter-rewriter,id=rew0,netdev=hn0,queue=all",
                "-drive", "if=none,id=parent0,file.filename=%s,driver=raw" % self.disk("sec-disk.img"),
                "-drive", "if=none,id=childs0,driver=replication,mode=secondary,file.driver=qcow2,"
                          "top-id=colo-disk0,file.file.filename=%s,file.backing.driver=qcow2,"
                          "file.backing.file.filename=%s,file.backing.backing=parent0"
                          % (self.disk("sec-active.qcow2"), self.disk("sec-hidden.qcow2")),
                "-drive", "if=none,id=colo-disk0,driver=quorum,read-pattern=fifo,vote-threshold=1,"
                          "children.0=childs0",
                "-device", "virtio-blk-pci,drive=colo-disk0",
                "-incoming", "defer"]
        if ARGS.nic.startswith("virtio-net-pci") and ARGS.vnet_hdr:
            argv = [a + ",vnet_hdr_support=on" if a.startswith(("filter-", "colo-compare")) else a
                    for a in argv]
        if ARGS.pcap:
            # last in the chain: the guest's packets before any other filter, the
            # network's after the others (so on the secondary: what f1 injects)
            argv += ["-object", "filter-dump,id=dump0,netdev=hn0,queue=all,file=%s,maxlen=256"
                     % self.path(host + "-nic.pcap")]
        if rct_sock:
            argv += ["-object", "secret,id=pairing-key,file=%s,format=raw" % self.path("pairing-key"),
                     "-object", "colo-rct,id=rct,socket=%s,addr=%s:%d,backend=%s,lanes=%d,"
                                "name=colo-real-%s,pairing=colo-real,pairing-secret=pairing-key"
                                % (rct_sock, SEC_IP, RCT_PORT, ARGS.backend, ARGS.lanes, host)]
        return argv

    def start(self):
        for name in ("psk", "pairing-key"):
            with open(self.path(name), "wb") as f:
                f.write(os.urandom(32))
            os.chmod(self.path(name), 0o600)
        self.net("up")
        self.disks()
        if ARGS.mode == "none":
            self.spawn("pri", "pri", self.qemu_argv("pri", None))
            self.pri = QMP(self.path("pri-qmp.sock"), "pri")
            self.sec = None
            self.wait_serial("pri", "colo-svc: listening", ARGS.boot_s)
            log("no COLO: the guest's service listens")
            return
        socks = {"pri": None, "sec": None}
        if self.rct:
            for host in ("sec", "pri"):
                socks[host] = self.start_rctd(host)
        for host in ("sec", "pri"):
            self.spawn(host, host, self.qemu_argv(host, socks[host]))
        self.sec = QMP(self.path("sec-qmp.sock"), "sec")
        self.pri = QMP(self.path("pri-qmp.sock"), "pri")
        caps = [{"capability": "x-colo", "state": True}]
        if self.rct:
            caps.append({"capability": "x-colo-rct", "state": True})
        self.sec.cmd("migrate-set-capabilities", capabilities=caps)
        self.sec.cmd("nbd-server-start", addr={"type": "inet", "data": {"host": SEC_IP,
                                                                          "port": str(NBD_PORT)}})
        self.sec.cmd("nbd-server-add", device="parent0", writable=True)
        self.sec.cmd("migrate-incoming", uri="tcp:%s:%d" % (SEC_IP, MIG_PORT))
        self.pri.cmd("human-monitor-command", **{
            "command-line": "drive_add -n buddy driver=replication,mode=primary,file.driver=nbd,"
                            "file.host=%s,file.port=%d,file.export=parent0,node-name=replication0"
                            % (SEC_IP, NBD_PORT)})
        self.pri.cmd("x-blockdev-change", parent="colo-disk0", node="replication0")
        self.pri.cmd("migrate-set-capabilities", capabilities=caps)
        self.pri.cmd("migrate-set-parameters", **{"x-checkpoint-delay": ARGS.delay_ms,
                                                  "max-bandwidth": 10 * 1024 ** 3})
        self.pri.cmd("migrate", uri="tcp:%s:%d" % (SEC_IP, MIG_PORT))
        wait_colo(self.pri, self.sec, self.check_alive, period=0.2)
        log("in COLO; the guest boots under it")
        self.wait_serial("pri", "colo-svc: listening", ARGS.boot_s)
        log("the guest's service listens")

    def serial(self, host):
        try:
            return open(self.path(host + "-serial.log"), errors="replace").read()
        except FileNotFoundError:
            return ""

    def wait_serial(self, host, text, timeout):
        deadline = time.time() + timeout
        while text not in self.serial(host):
            if time.time() > deadline:
                raise TimeoutError("%s serial: %r not seen in %s s; last: %r"
                                   % (host, text, timeout, self.serial(host)[-300:]))
            self.check_alive()
            for q in (self.pri, self.sec):
                if q is None:
                    time.sleep(0.1)
                    continue
                q.poll(0.1)
                left = [e for e in q.events if e["event"] == "COLO_EXIT"]
                if left:
                    raise RuntimeError("%s left COLO: %s; %s" % (
                        q.name, left[0]["data"],
                        open(self.path(q.name + ".log"), errors="replace").read()[-400:]))

    def check_alive(self, but=()):
        for r, p in self.procs.items():
            if r not in but and r != "client" and p.poll() is not None:
                raise RuntimeError("%s exited with %s: %s" % (
                    r, p.returncode, open(self.path(r + ".log"), errors="replace").read()[-600:]))

    # ---- the run ----

    def client_start(self):
        self.stop_file = self.path("client.stop")
        argv = [sys.executable, os.path.join(HERE, "colo-client.py"), "--addr",
                "%s:%d" % (GUEST_IP, SVC_PORT), "--rate", str(ARGS.rate), "--stop", self.stop_file,
                "--vary-every", str(ARGS.vary_every),
                "--drain-s", str(ARGS.drain_s), "--out", self.path("client.json")]
        self.spawn("client", "cli", argv)

    def client_result(self):
        open(self.stop_file, "w").close()
        self.procs["client"].wait(ARGS.drain_s + 60)
        return json.load(open(self.path("client.json")))

    def fault(self, what):
        """The fault, then the failover on the secondary as a cluster manager
        drives it; what happened, with times from the fault."""
        fo = {"fault": what}
        t = time.time()
        if what == "kill-qemu":
            self.procs["pri"].kill()
            self.procs["pri"].wait(10)
        elif what == "kill-rctd":
            self.procs["pri-rctd"].kill()
            self.procs["pri-rctd"].wait(10)
        elif what == "link-cut":
            self.net("cut", "pri")
        fo["t_fault"] = t
        # The manager's view: the secondary says the primary is gone.
        noticed = None
        deadline = time.time() + 30
        while noticed is None and time.time() < deadline:
            got = [e for e in self.sec.events if e["event"] in ("COLO_EXIT", "COLO_RCT_PEER_LOST")]
            if got:
                noticed = {"event": got[0]["event"], "data": got[0]["data"]}
            else:
                self.sec.poll(0.1)
        fo["noticed"] = noticed or "nothing in 30 s"
        fo["noticed_after_s"] = round(time.time() - t, 3)
        if what != "kill-qemu" and self.procs["pri"].poll() is None:
            # fencing, the manager's first step when the primary may live on
            self.procs["pri"].kill()
            self.procs["pri"].wait(10)
            fo["primary_fenced"] = True
        steps = [("nbd-server-stop", {}), ("x-colo-lost-heartbeat", {}),
                 ("object-del", {"id": "f2"}), ("object-del", {"id": "f1"}),
                 ("chardev-remove", {"id": "red1"}), ("chardev-remove", {"id": "red0"})]
        fo["steps"] = {}
        for name, a in steps:
            r = self.sec.cmd(name, check=False, **a)
            fo["steps"][name + (" " + a["id"] if "id" in a else "")] = r
        deadline = time.time() + 30
        while self.sec.cmd("query-status")["status"] != "running" and time.time() < deadline:
            time.sleep(0.05)
        fo["status"] = self.sec.cmd("query-status")["status"]
        fo["running_after_s"] = round(time.time() - t, 3)
        # the switch learns where the guest's MAC went (its NIC announces it)
        fo["steps"]["announce-self"] = self.sec.cmd("announce-self", check=False, initial=50,
                                                    max=550, rounds=3, step=100)
        return fo

    def stop(self):
        stop_procs(list(self.procs.values()), self.shm.values())
        shutil.rmtree(self.disk_dir, ignore_errors=True)
        try:
            self.net("down")
        except subprocess.CalledProcessError:
            pass


def stall_ms(client, t_fault):
    """What the client felt of the failover: the longest wait between two
    answers (or from a request to its answer) that spans the fault."""
    times = sorted(a for _, _, a in client.get("requests", []) if a is not None)
    before = [t for t in times if t <= t_fault]
    after = [t for t in times if t > t_fault]
    if not before or not after:
        return None
    return round((after[0] - before[-1]) * 1000, 1)


def check(client, fo_ok):
    """Every request answered once, in order, on the one connection; the
    guest's file holds each answered request once."""
    req = client.get("requests", [])
    lost = [k for k, _, a in req if a is None]
    dup = client.get("duplicated", [])
    lines = [l[:-2] if l.endswith(" T") else l for l in client.get("log", []) if l.startswith("REQ ")]
    counts = {}
    for l in lines:
        counts[l] = counts.get(l, 0) + 1
    answered = {"REQ %d" % k for k, _, a in req if a is not None}
    missing_in_file = sorted(answered - set(counts))
    twice_in_file = sorted(l for l, c in counts.items() if c > 1)
    res = {"requests": len(req), "lost": len(lost), "duplicated": len(dup),
           "in_order": client.get("in_order", False), "client_errors": client.get("errors", []),
           "file_lines": len(lines), "file_missing": missing_in_file[:10],
           "file_twice": twice_in_file[:10], "file_extra": len(set(counts) - answered)}
    lat = [(a - s) * 1000 for _, s, a in req if a is not None]
    res["latency_ms"] = stats_ms(lat)
    if req:
        # the longest wait for an answer: the stall the client felt
        res["longest_answer_ms"] = round(max(lat), 1) if lat else None
    res["ok"] = (fo_ok and not lost and not dup and res["in_order"] and not res["client_errors"]
                 and not missing_in_file and not twice_in_file and len(req) > 0)
    return res


def main():
    global ARGS
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", required=True, help="qemu-system-x86_64 (scripts/qemu/build.sh)")
    ap.add_argument("--qemu-img", required=True, help="qemu-img (beside it)")
    ap.add_argument("--guest-dir", required=True, help="scripts/qemu/guest-linux/build.sh's folder")
    ap.add_argument("--rctd", help="rctd (required with --mode rct)")
    ap.add_argument("--mode", choices=("none", "stock", "rct"), default="stock",
                    help="none: the guest alone on the primary host, no COLO (the baseline)")
    ap.add_argument("--backend", choices=("tcp", "ucx"), default="tcp")
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--fault", choices=("none", "kill-qemu", "kill-rctd", "link-cut"),
                    default="kill-qemu")
    ap.add_argument("--rate", type=float, default=20.0, help="client requests per second (20)")
    ap.add_argument("--vary-every", type=int, default=20,
                    help="every Nth request's answer differs between the two guests (the guest's "
                         "clock), so colo-compare takes a checkpoint (20; 0: none)")
    ap.add_argument("--before-s", type=float, default=20.0, help="client traffic before the fault")
    ap.add_argument("--after-s", type=float, default=15.0, help="and after the failover")
    ap.add_argument("--drain-s", type=float, default=60.0)
    ap.add_argument("--delay-ms", type=int, default=2000, help="x-checkpoint-delay (2000)")
    ap.add_argument("--mem-mb", type=int, default=256)
    ap.add_argument("--disk-mib", type=int, default=64)
    ap.add_argument("--boot-s", type=float, default=300.0, help="the guest's boot under COLO, at most")
    ap.add_argument("--prefix", default="rcr", help="colo-net.sh's prefix (rcr)")
    ap.add_argument("--nic", default="virtio-net-pci",
                    help="the guest's NIC, a -device (virtio-net-pci; e1000 works too)")
    ap.add_argument("--no-vnet-hdr", dest="vnet_hdr", action="store_false",
                    help="the tap without virtio net headers (no checksum or segmentation "
                         "offload between the guest and the host)")
    ap.add_argument("--pcap", action="store_true",
                    help="each NIC's packets (filter-dump) into HOST-nic.pcap in the work folder")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json", action="store_true", help="the summary, one JSON object, on stdout")
    ARGS = ap.parse_args()
    if ARGS.mode == "rct" and not ARGS.rctd:
        ap.error("--mode rct needs --rctd")
    if ARGS.fault == "kill-rctd" and ARGS.mode != "rct":
        ap.error("--fault kill-rctd needs --mode rct")
    if ARGS.mode == "none" and ARGS.fault != "none":
        ap.error("--mode none has no failover: --fault none")
    os.makedirs(ARGS.workdir, exist_ok=True)
    summary = {"mode": ARGS.mode, "backend": ARGS.backend if ARGS.mode == "rct" else None,
               "fault": ARGS.fault, "rate": ARGS.rate, "delay_ms": ARGS.delay_ms}
    d = Deployment(ARGS.workdir, ARGS.prefix)
    fo_ok = ARGS.fault == "none"
    try:
        d.start()
        d.client_start()
        time.sleep(ARGS.before_s)
        d.check_alive()
        if ARGS.fault != "none":
            log("fault: %s" % ARGS.fault)
            fo = d.fault(ARGS.fault)
            log("failover: %s" % fo)
            summary["failover"] = fo
            fo_ok = fo["status"] == "running"
        time.sleep(ARGS.after_s)
        client = d.client_result()
        summary.update(check(client, fo_ok))
        if "failover" in summary:
            summary["failover_stall_ms"] = stall_ms(client, summary["failover"]["t_fault"])
    except Exception as e:
        summary["error"] = "%s: %s" % (type(e).__name__, e)
        log("FAILED: %s" % summary["error"])
        summary["ok"] = False
    finally:
        d.stop()
    cps = checkpoints(parse_trace(d.path("pri-trace.log")))
    timer, compare = checkpoint_triggers(cps, ARGS.delay_ms)
    summary["checkpoints"] = len(cps)
    summary["checkpoints_timer"], summary["checkpoints_compare"] = timer, compare
    summary["primary_pause_ms"] = stats_ms([(c["run"] - c["stop"]) * 1000 for c in cps])
    if ARGS.json:
        print(json.dumps(summary))
    line = "colo-real: %s %s %d requests, %d checkpoints (%d timer, %d compare), failover %s, lost %s, duplicated %s" % (
        ARGS.mode, summary["backend"] or "-", summary.get("requests", 0), len(cps), timer, compare,
        "ok" if summary.get("ok") else "failed", summary.get("lost", "?"), summary.get("duplicated", "?"))
    if not ARGS.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "failover"}, indent=None)[:2000])
        print(line)
    else:
        log(line)
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
