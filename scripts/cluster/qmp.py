#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""One-shot QMP and serial helpers for scripts/cluster-test.sh (run inside a node).

  qmp.py qmp SOCKET COMMAND[=JSON]...   each return as a JSON line
  qmp.py serial SOCKET BYTES            write BYTES to a chardev socket
"""
import json
import socket
import sys
import time


def qmp(path, cmds):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(path)
    f = s.makefile("rw")

    def rd():
        while True:
            m = json.loads(f.readline())
            if "event" not in m:
                return m

    def call(name, args=None):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        f.write(json.dumps(msg) + "\n")
        f.flush()
        return rd()

    rd()
    call("qmp_capabilities")
    for c in cmds:
        name, _, args = c.partition("=")
        m = call(name, json.loads(args) if args else None)
        if "error" in m:
            sys.exit("QMP %s: %s" % (name, m["error"].get("desc")))
        print(json.dumps(m["return"]))


def serial(path, data):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(data.encode())
    time.sleep(0.3)
    s.close()


if __name__ == "__main__":
    if sys.argv[1] == "qmp":
        qmp(sys.argv[2], sys.argv[3:])
    else:
        serial(sys.argv[2], sys.argv[3])
