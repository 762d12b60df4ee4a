#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The client of the Linux COLO test guest's service (colo-svc, issue 33).

One TCP connection for the whole run: sends "REQ n" (n from 1) at a fixed
rate (request 1 alone first: the rate starts at its answer, so that its
latency is the connection's set-up), at most --window unanswered, reads the
answers ("OK REQ n") and times each.  Every --vary-every'th request is "REQ n T", which the service answers
with its guest's clock after it: the two COLO guests answer it differently,
so colo-compare takes a checkpoint for it.  It stops sending when the file --stop appears (or after --seconds),
waits up to --drain-s for the last answers, then asks the service for its
log ("!dump") on the same connection.  Every event is kept: a request not
answered, answered twice or out of order, a connection that broke.  One JSON
object on stdout at the end (or --out FILE): per request its send and
answer times, the log's lines, what went wrong.

  colo-client.py --addr 10.77.1.10:7777 --rate 20 --stop FILE [--out FILE]
"""
import argparse
import json
import os
import select
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addr", required=True, help="HOST:PORT of colo-svc")
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second (20)")
    ap.add_argument("--window", type=int, default=64, help="unanswered requests at most (64)")
    ap.add_argument("--vary-every", type=int, default=0,
                    help="every Nth request asks for an answer the two guests give differently "
                         "(0: none)")
    ap.add_argument("--seconds", type=float, default=3600.0, help="send for at most this long")
    ap.add_argument("--stop", help="stop sending once this file exists")
    ap.add_argument("--drain-s", type=float, default=60.0,
                    help="after the last request, wait this long for the answers (60)")
    ap.add_argument("--connect-s", type=float, default=120.0,
                    help="keep trying to connect this long (the guest may still be booting)")
    ap.add_argument("--out", help="the JSON result to this file instead of stdout")
    args = ap.parse_args()
    host, port = args.addr.rsplit(":", 1)

    res = {"addr": args.addr, "rate": args.rate, "errors": []}
    deadline = time.time() + args.connect_s
    while True:
        try:
            s = socket.create_connection((host, int(port)), timeout=5)
            break
        except OSError as e:
            if time.time() > deadline:
                res["errors"].append("connect: %s" % e)
                emit(args, res)
                return 1
            time.sleep(0.5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    t0 = time.time()
    res["connected_at"] = t0
    sent, answered, order = {}, {}, []
    dup, unexpected = [], []
    buf = b""
    n = 0
    stopping = False
    t_stop = None
    dump, dumping = [], False
    while True:
        now = time.time()
        if not stopping and (now - t0 > args.seconds or (args.stop and os.path.exists(args.stop))):
            stopping, t_stop = True, now
        if stopping and not dumping and len(answered) == len(sent):
            s.sendall(b"!dump\n")
            dumping = True
        if stopping and now - t_stop > args.drain_s:
            res["errors"].append("gave up waiting after %.0f s: %d of %d answered%s" % (
                args.drain_s, len(answered), len(sent), ", the dump unfinished" if dumping else ""))
            break
        # Request 1 alone first: the connection's set-up (colo-compare holds
        # the first answers until a checkpoint) is its latency; the rate's
        # schedule starts at its answer.
        if n == 0:
            due = t0
        elif 1 in answered:
            due = answered[1] + (n - 1) / args.rate
        else:
            due = now + 0.05
        if not stopping and now >= due and len(sent) - len(answered) < args.window \
                and (n == 0 or 1 in answered):
            n += 1
            vary = args.vary_every and n % args.vary_every == 0
            try:
                s.sendall(b"REQ %d%s\n" % (n, b" T" if vary else b""))
            except OSError as e:
                res["errors"].append("send of REQ %d: %s" % (n, e))
                break
            sent[n] = time.time()
            continue
        wait = max(0.0, min(due - now, 0.05)) if not stopping else 0.05
        r, _, _ = select.select([s], [], [], wait)
        if not r:
            continue
        try:
            d = s.recv(65536)
        except OSError as e:
            res["errors"].append("receive: %s" % e)
            break
        if not d:
            res["errors"].append("the connection was closed by the other end")
            break
        buf += d
        done = False
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.decode(errors="replace")
            if dumping:
                if line == ".":
                    done = True
                    break
                dump.append(line)
                continue
            parts = line.split()
            if parts[3:4] == ["T"] and len(parts) == 5:
                parts = parts[:3]
            if len(parts) == 3 and parts[:2] == ["OK", "REQ"] and parts[2].isdigit():
                k = int(parts[2])
                if k in answered:
                    dup.append(k)
                elif k not in sent:
                    unexpected.append(line)
                else:
                    answered[k] = time.time()
                    order.append(k)
            else:
                unexpected.append(line)
        if done:
            break
    s.close()
    res["sent"] = len(sent)
    res["answered"] = len(answered)
    res["duplicated"] = dup
    res["unexpected"] = unexpected[:20]
    res["in_order"] = order == sorted(order)
    res["requests"] = [[k, round(sent[k], 6), round(answered[k], 6) if k in answered else None]
                       for k in sorted(sent)]
    res["log"] = dump
    emit(args, res)
    return 0


def emit(args, res):
    text = json.dumps(res)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text + "\n")
        os.rename(args.out + ".tmp", args.out)
    else:
        print(text)
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
