#!/usr/bin/env python3
# rctd as a service: --help, the configuration file, sd_notify readiness,
# a stale socket replaced, a live one refused, clean stop on SIGTERM.
#   test/rctd_service.py PATH/TO/rctd
import os, signal, socket, subprocess, sys, tempfile, time

rctd = sys.argv[1]
d = tempfile.mkdtemp(prefix="rctd-service.")
sock = os.path.join(d, "rctd.sock")
fails = 0
checks = 0

def check(cond, what):
    global fails, checks
    checks += 1
    print(("ok   " if cond else "FAIL ") + what)
    fails += 0 if cond else 1

r = subprocess.run([rctd, "--help"], capture_output=True, text=True)
check(r.returncode == 0 and "--allow-uid" in r.stdout, "--help prints the options, exit 0")

bad = os.path.join(d, "bad.conf")
with open(bad, "w") as f:
    f.write("# comment\nsocket = %s\nno-such-option = 1\n" % sock)
r = subprocess.run([rctd, "--config", bad], capture_output=True, text=True)
check(r.returncode == 2 and "bad.conf:3: unknown option 'no-such-option'" in r.stderr,
      "an unknown option in the config file is named with its line: " + r.stderr.strip())
with open(bad, "w") as f:
    f.write("metrics-port = lots\n")
r = subprocess.run([rctd, "--config", bad], capture_output=True, text=True)
check(r.returncode == 2 and "--metrics-port 'lots'" in r.stderr, "a bad value in the config file")

# A stale socket file of a dead rctd is replaced.
stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
stale.bind(sock)
stale.close()

conf = os.path.join(d, "rctd.conf")
with open(conf, "w") as f:
    f.write("  socket = %s   # the test's\nlog-level = error\nmetrics-port = 0\n" % sock)
notify_path = os.path.join(d, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
notify.settimeout(10)
env = dict(os.environ, NOTIFY_SOCKET=notify_path)
p = subprocess.Popen([rctd, "--config", conf], env=env, stderr=subprocess.PIPE, text=True)
try:
    msg = notify.recv(4096).decode()
except socket.timeout:
    msg = ""
check("READY=1" in msg, "sd_notify READY=1 once serving: %r" % msg)
check(os.path.exists(sock) and (os.stat(sock).st_mode & 0o777) == 0o660,
      "the config file's socket exists, mode 0660")

r = subprocess.run([rctd, "--socket", sock], capture_output=True, text=True, timeout=10)
check(r.returncode != 0 and "another rctd serves" in r.stderr, "a second rctd on a live socket refuses")

p.send_signal(signal.SIGTERM)
try:
    msg = notify.recv(4096).decode()
except socket.timeout:
    msg = ""
check("STOPPING=1" in msg, "sd_notify STOPPING=1 on SIGTERM")
out = p.communicate(timeout=20)[1]
check(p.returncode == 0, "exit 0 after SIGTERM (status %s)" % p.returncode)
check("serving" not in out and "stopped" not in out,
      "log level error from the config file: no info lines (%r)" % out[:200])
check(not os.path.exists(sock), "socket removed on exit")
print("%d passed, %d failed" % (checks - fails, fails))
sys.exit(1 if fails else 0)
