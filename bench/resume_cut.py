#!/usr/bin/python3
"""After a cut, how soon do bytes move again? A --resume client over tt://
(or CARRIER) on loopback, a -L stream to an echo server carrying a 64-byte
message every 2 ms, and a TCP proxy between client and server that resets
the carrier connection CUTS times. For each cut: the time from the reset to
the first echoed message that was sent after it, and the reconnection delay
the client drew for it (its log line "reconnect attempt N ... in D ms");
the difference is what resuming itself costs (connect, the carrier's
handshake, the join, the resend), to be set against one round trip of a
message through the same path (tunnel, proxy, echo), measured before the
cuts.

With --down CARRIER the session is split (-s CARRIER://.../up --down
CARRIER://.../down, a server with both listeners), each leg through a
proxy of its own, and --leg says which leg is cut: up, down, or both at
once. A message sent after a cut of either leg needs both legs, so its
echo measures the cut leg's return.

  bench/resume_cut.py [--tt build/tt] [--cuts 20] [--carrier tt] [--reconnect-min 100ms]
                      [--down CARRIER --leg up|down|both]

The proxy is the fault-injecting one of the e2e tests (tests/e2e/helpers.py)."""

import argparse
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from helpers import CuttingProxy  # noqa: E402

MSG = 64
# Carriers whose URL has a path, and those with TLS (the client then skips
# verification of the self-signed certificate: the bench is on loopback).
PATHS = ("ws", "wss", "http", "https")
TLS = ("tls", "wss", "https")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_log(path, pattern, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, open(path).read())
        if m:
            return m
        time.sleep(0.01)
    sys.exit("no /%s/ in %s:\n%s" % (pattern, path, open(path).read()[-2000:]))


def echo_server():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def serve(c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)
        except OSError:
            return  # the client went at the end of the run

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return ls.getsockname()[1]


def url(carrier, port, path):
    return "%s://127.0.0.1:%d%s" % (carrier, port, path if carrier in PATHS else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tt", default=os.path.join(HERE, "..", "build", "tt"))
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--carrier", default="tt")
    ap.add_argument("--down", help="split the session: the down leg's carrier")
    ap.add_argument("--leg", choices=("up", "down", "both"), default="up",
                    help="with --down: which leg is cut")
    ap.add_argument("--reconnect-min", default="100ms")
    a = ap.parse_args()
    key = subprocess.run([a.tt, "keygen"], capture_output=True, text=True).stdout.strip()
    tmp = tempfile.mkdtemp()
    env = dict(os.environ, TT_STATE_DIR=tmp)
    procs = []
    try:
        echo = echo_server()
        carriers = [a.carrier] + ([a.down] if a.down else [])
        paths = ["/up", "/down"]
        sports = [free_port() for _ in carriers]
        slog = os.path.join(tmp, "server.log")
        argv = [a.tt, "server", "-k", key, "--allow", "127.0.0.0/8"]
        for c, p, path in zip(carriers, sports, paths):
            argv += ["-l", url(c, p, path)]
        procs.append(subprocess.Popen(argv, stderr=open(slog, "w"), env=env))
        for c, p, path in zip(carriers, sports, paths):
            wait_log(slog, "listening on %s" % re.escape(url(c, p, path)))
        proxies = [CuttingProxy(p) for p in sports]
        fport = free_port()
        clog = os.path.join(tmp, "client.log")
        argv = [a.tt, "client", "-s", url(a.carrier, proxies[0].port, paths[0]), "-k", key,
                "--resume", "--reconnect-min", a.reconnect_min, "-l", "none",
                "-L", "127.0.0.1:%d=127.0.0.1:%d" % (fport, echo)]
        if a.down:
            argv += ["--down", url(a.down, proxies[1].port, paths[1])]
        if any(c in TLS for c in carriers):
            argv += ["--insecure-skip-verify"]
        procs.append(subprocess.Popen(argv, stderr=open(clog, "w"), env=env))
        wait_log(clog, "forward listening")
        if not a.down:
            victims = proxies
        else:
            victims = {"up": proxies[:1], "down": proxies[1:], "both": proxies}[a.leg]
        s = socket.create_connection(("127.0.0.1", fport))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The round trip the target counts in: a message through the whole
        # path (tunnel, proxy, echo) and back, before any cut.
        echo_rtt = []
        for _ in range(50):
            t = time.monotonic()
            s.sendall(b"y" * MSG)
            got = 0
            while got < MSG:
                got += len(s.recv(MSG - got))
            echo_rtt.append((time.monotonic() - t) * 1000)
        arrivals = []  # (the message's send time, its arrival)
        stop = threading.Event()

        def send():
            while not stop.is_set():
                try:
                    s.sendall(struct.pack(">d", time.monotonic()).ljust(MSG, b"x"))
                except OSError:
                    return
                time.sleep(0.002)  # the stream's own pace

        def recv():
            buf = b""
            while True:
                try:
                    d = s.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                now = time.monotonic()
                buf += d
                while len(buf) >= MSG:
                    arrivals.append((struct.unpack(">d", buf[:8])[0], now))
                    buf = buf[MSG:]

        threading.Thread(target=send, daemon=True).start()
        threading.Thread(target=recv, daemon=True).start()
        time.sleep(0.5)  # a steady stream before the first cut
        gaps, up_to_accept, up_to_byte = [], [], []
        for i in range(a.cuts):
            t = time.monotonic()
            for p in victims:
                p.cut_all()
            deadline = t + 60
            while not arrivals or arrivals[-1][0] <= t:
                if time.monotonic() > deadline:
                    sys.exit("nothing moved for 60 s after cut %d" % i)
                time.sleep(0.0005)
            first = next(r for s_, r in arrivals if s_ > t)
            gaps.append((first - t) * 1000)
            # The new connection's accept at the (first) cut proxy splits the
            # gap: before it, the backoff timer and the connect; after it,
            # the carrier's handshake, the join, the resend and the echo.
            acc = [x for x in victims[0].accepted if x > t]
            if acc:
                after = [r for _, r in arrivals if r > acc[0]]
                if after:
                    up_to_byte.append((after[0] - acc[0]) * 1000)
                    up_to_accept.append((acc[0] - t) * 1000)
            deadline = time.monotonic() + 15
            while open(clog).read().count("resumed after") < (i + 1) * len(victims):
                if time.monotonic() > deadline:
                    sys.exit("the client did not log its resume %d" % (i + 1))
                time.sleep(0.005)
            time.sleep(0.2)  # the stream flows again before the next cut
        stop.set()
        delays = [int(d) for n, d in re.findall(r"reconnect attempt (\d+) to \S+ in (\d+) ms",
                                                 open(clog).read())]
        attempts = len(delays)
        what = a.carrier if not a.down else "split, up %s, down %s, cutting %s" % (
            a.carrier, a.down, "both legs" if a.leg == "both" else "the %s leg" % a.leg)
        print("%s, --reconnect-min %s, %d cuts, %d reconnection attempts" % (
            what, a.reconnect_min, a.cuts, attempts))
        print("cut -> first byte again: median %.1f ms, min %.1f, max %.1f" % (
            statistics.median(gaps), min(gaps), max(gaps)))
        if attempts == a.cuts and len(victims) == 1:
            extra = [g - d for g, d in zip(gaps, delays)]
            print("minus the drawn backoff delay: median %.2f ms, max %.2f ms" % (
                statistics.median(extra), max(extra)))
        if attempts == a.cuts and len(victims) == 1 and len(up_to_accept) == a.cuts:
            late = [x - d for x, d in zip(up_to_accept, delays)]
            print("cut -> the new connection's accept, minus the drawn delay: median %.2f ms, "
                  "max %.2f ms" % (statistics.median(late), max(late)))
        if up_to_byte:
            print("the new connection's accept -> first byte again: median %.2f ms, max %.2f ms"
                  % (statistics.median(up_to_byte), max(up_to_byte)))
        rtt = []
        for _ in range(50):
            t = time.monotonic()
            c = socket.create_connection(("127.0.0.1", sports[0]))
            rtt.append((time.monotonic() - t) * 1000)
            c.close()
        print("one round trip (TCP connect to the server, median): %.3f ms" % statistics.median(rtt))
        print("one round trip of a message through the tunnel and the echo, before the cuts "
              "(median, max): %.2f ms, %.2f ms" % (statistics.median(echo_rtt), max(echo_rtt)))
        s.close()
    finally:
        for p in procs:
            p.terminate()
            if p.wait() != 0:
                print("%s exited with status %d" % (p.args[1], p.returncode), file=sys.stderr)


if __name__ == "__main__":
    main()
