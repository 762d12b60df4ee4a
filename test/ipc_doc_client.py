#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A client of rctd's socket API written from docs/ipc.md alone.

It includes nothing of rct's: every layout, value, errno and rule it relies on
is the document's, so a gap in docs/ipc.md shows up here as a failure.  Two
real rctd holding one host key; a paired primary and secondary, each with a
guest RAM memfd and a dirty-bitmap memfd; a full sync, an incremental
checkpoint and the primary's loss.  Every epoch the secondary's guest RAM (read
back from its memfd) is compared with the primary's, byte for byte, and the
device state too.

usage: ipc_doc_client.py RCTD
"""
import errno
import fcntl
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

MAGIC = 0x53544352
VERSION = 6
HDR = struct.Struct("<IHHIHBBQii")  # magic version type length flags nfds reserved id status detail
HELLO, SESSION_OPEN, SESSION_CLOSE, REGION_ADD = 1, 2, 3, 4
LISTEN, ACCEPT, CONNECT = 6, 7, 8
CKPT_BEGIN, CKPT_DIRTY, CKPT_DEVSTATE, CKPT_COMMIT = 9, 10, 11, 12
CKPT_FLUSH, DEVSTATE_GET, EVENT, STATUS, SESSION_PAIRING = 13, 14, 15, 16, 19
FLAG_REPLY, FLAG_EVENT = 1, 2
CKPT_READY, PEER_LOST = 1, 2
NONE = (1 << 64) - 1
PAGE = 4096
SIZE = 4 << 20


class Refused(Exception):
    def __init__(self, status, text):
        super().__init__("%s (%d): %s" % (errno.errorcode.get(-status, "?"), status, text))
        self.status = status


class Client:
    def __init__(self, path, name):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.next_id = 1
        self.events = []
        reply = self.call(HELLO, struct.pack("<HHI32s", VERSION, VERSION, 0, name.encode()))
        version, _, self.max_payload, self.caps, self.pid, _ = struct.unpack("<HHIQII", reply)
        check(version == VERSION, "HELLO reply: version %d" % version)

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            part = self.s.recv(n - len(buf))
            if not part:
                raise ConnectionError("rctd closed the connection")
            buf += part
        return buf

    def read_msg(self):
        magic, version, mtype, length, flags, nfds, _, rid, status, detail = HDR.unpack(
            self.read_exact(HDR.size))
        check(magic == MAGIC and version == VERSION, "header magic %#x version %d" % (magic, version))
        return mtype, flags, rid, status, detail, self.read_exact(length)

    def call(self, mtype, payload=b"", fds=()):
        rid = self.next_id
        self.next_id += 1
        hdr = HDR.pack(MAGIC, VERSION, mtype, len(payload), 0, len(fds), 0, rid, 0, 0)
        socket.send_fds(self.s, [hdr + payload], list(fds))
        while True:
            rtype, flags, got_id, status, detail, body = self.read_msg()
            if flags & FLAG_EVENT:
                check(rtype == EVENT and got_id == 0 and len(body) == 24,
                      "event: type %d id %d, %d bytes" % (rtype, got_id, len(body)))
                self.events.append(struct.unpack("<IiQQ", body))
                continue
            check(flags & FLAG_REPLY and rtype == mtype and got_id == rid,
                  "reply to %d/%d is %d/%d" % (mtype, rid, rtype, got_id))
            if status:
                raise Refused(status, body.decode(errors="replace"))
            return body

    def event(self, timeout_s=20):
        deadline = time.monotonic() + timeout_s
        while not self.events:
            self.s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                rtype, flags, rid, status, detail, body = self.read_msg()
            except socket.timeout:
                raise AssertionError("no event within %d s" % timeout_s)
            finally:
                self.s.settimeout(None)
            check(flags & FLAG_EVENT and rtype == EVENT and len(body) == 24, "not an event")
            self.events.append(struct.unpack("<IiQQ", body))
        return self.events.pop(0)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def memfd(name, size):
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    return fd


def cstr(text, n):
    return text.encode().ljust(n, b"\0")


def open_side(path, role, name, pairing_key, ram, bits):
    c = Client(path, name)
    c.call(SESSION_OPEN, struct.pack("<HHHHIIQ16s32s", role, 2 if role == 1 else 0, 0, 0,
                                     0, 5000, 0, cstr("tcp", 16), cstr(name, 32)))
    if c.caps & 16:  # a host key: the session must prove its pairing
        generation, last = struct.unpack("<QQ", c.call(
            SESSION_PAIRING, struct.pack("<QII64s32s", 0, 1, 0, cstr("doc-vm", 64), pairing_key)))
    pages, = struct.unpack("<Q", c.call(REGION_ADD, struct.pack("<IIQQQ", 0, len(b"pc.ram"), 0, SIZE, 0) + b"pc.ram",
                                        (ram, bits)))
    check(pages == SIZE // PAGE, "REGION_ADD reply: %d pages" % pages)
    return c


def pread_all(fd, n):
    return os.pread(fd, n, 0)


def main():
    rctd = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="rct-doc-client.")
    key = os.path.join(tmp, "host.key")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(os.urandom(32))
    daemons, socks = [], []
    for side in ("p", "s"):
        sock = os.path.join(tmp, side + ".sock")
        daemons.append(subprocess.Popen([rctd, "--socket", sock, "--psk-file", key,
                                         "--state-dir", os.path.join(tmp, side + ".state"),
                                         "--log-level", "warn"]))
        socks.append(sock)
    for sock in socks:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
    pairing_key = os.urandom(32)
    pram, pbits = memfd("doc-pram", SIZE), memfd("doc-pbits", SIZE // PAGE // 8)
    sram, sbits = memfd("doc-sram", SIZE), memfd("doc-sbits", SIZE // PAGE // 8)
    os.pwrite(pram, os.urandom(SIZE), 0)
    os.pwrite(sram, b"\xee" * SIZE, 0)
    try:
        sec = open_side(socks[1], 2, "doc-vm.secondary", pairing_key, sram, sbits)
        port, = struct.unpack("<H6x", sec.call(LISTEN, struct.pack("<64sH6x", cstr("127.0.0.1", 64), 0)))
        accepted = {}

        def accept():
            try:
                accepted["reply"] = sec.call(ACCEPT)
            except Exception as e:  # reported below
                accepted["error"] = e
        t = threading.Thread(target=accept)
        t.start()
        pri = open_side(socks[0], 1, "doc-vm.primary", pairing_key, pram, pbits)
        lanes, _, backend = struct.unpack("<II16s", pri.call(
            CONNECT, struct.pack("<64sH6x", cstr("127.0.0.1", 64), port)))
        t.join()
        check("reply" in accepted, "ACCEPT: %s" % accepted.get("error"))
        check(lanes == 2 and backend.rstrip(b"\0") == b"tcp", "CONNECT reply: %d %r" % (lanes, backend))

        def checkpoint(epoch, flags, dev):
            pri.call(CKPT_BEGIN, struct.pack("<QII", epoch, flags, 0))
            if not flags & 1:
                pri.call(CKPT_DIRTY, struct.pack("<II", 0, 0))
            pri.call(CKPT_DEVSTATE, struct.pack("<Q", len(dev)) + dev)
            stats = struct.unpack("<10Q", pri.call(CKPT_COMMIT))
            check(stats[0] == epoch, "COMMIT stats: epoch %d" % stats[0])
            etype, status, ev_epoch, discarded = sec.event()
            check(etype == CKPT_READY and ev_epoch == epoch, "event %d epoch %d" % (etype, ev_epoch))
            flush = struct.unpack("<10Q", sec.call(CKPT_FLUSH, struct.pack("<QII", epoch, 1, 0)))
            check(flush[0] == epoch, "FLUSH stats: epoch %d" % flush[0])
            out = os.memfd_create("doc-dev", os.MFD_CLOEXEC)
            length, = struct.unpack("<Q", sec.call(DEVSTATE_GET, struct.pack("<Q", epoch), (out,)))
            check(length == len(dev) and pread_all(out, length) == dev, "device state of %d" % epoch)
            os.close(out)
            os.pwrite(sbits, bytes(SIZE // PAGE // 8), 0)
            check(pread_all(sram, SIZE) == pread_all(pram, SIZE),
                  "epoch %d: the secondary's guest RAM differs from the primary's" % epoch)
            return stats

        checkpoint(0, 1, b"device state of epoch 0")
        # Epoch 1: the guest dirties 37 pages; the dirty log goes into the shared bitmap.
        bitmap = bytearray(SIZE // PAGE // 8)
        for page in range(3, SIZE // PAGE, 27)[:37]:
            os.pwrite(pram, os.urandom(PAGE), page * PAGE)
            bitmap[page // 8] |= 1 << (page % 8)
        os.pwrite(pbits, bytes(bitmap), 0)
        stats = checkpoint(1, 0, b"device state of epoch 1")
        check(stats[1] == 37, "epoch 1 moved %d pages, 37 were dirty" % stats[1])
        # An epoch that does not follow the last committed one.
        try:
            pri.call(CKPT_BEGIN, struct.pack("<QII", 1, 0, 0))
            raise AssertionError("CKPT_BEGIN of epoch 1 again was accepted")
        except Refused as e:
            check(e.status == -errno.EINVAL, "CKPT_BEGIN of an old epoch: %s" % e)
        # The primary goes: the failover event, nothing in flight.
        pri.s.close()
        etype, status, epoch, discarded = sec.event()
        check(etype == PEER_LOST and epoch == 1 and discarded == NONE,
              "PEER_LOST: type %d epoch %d discarded %d" % (etype, epoch, discarded))
        check(pread_all(sram, SIZE) == pread_all(pram, SIZE), "guest RAM changed at the loss")
        print("ipc_doc_client: 2 checkpoints verified byte for byte, failover event as documented")
        return 0
    finally:
        for d in daemons:
            d.terminate()
            d.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
