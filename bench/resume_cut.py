#!/usr/bin/python3
"""After a cut, how soon do bytes move again? A --resume client over tt://
(or CARRIER) on loopback, a -L stream to an echo server carrying a 64-byte
message every 2 ms, and a TCP proxy between client and server that resets
the carrier connection CUTS times. For each cut: the time from the reset to
the first echoed byte after it, and the reconnection delay the client drew
for it (its log line "reconnect attempt N ... in D ms"); the difference is
what resuming itself costs (connect, the carrier's handshake, the join, the
resend), to be set against one round trip of a message through the same
path (tunnel, proxy, echo), measured before the cuts.

  bench/resume_cut.py [--tt build/tt] [--cuts 20] [--carrier tt] [--reconnect-min 100ms]

The proxy is the fault-injecting one of tests/e2e/test_resume.py."""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from helpers import CuttingProxy  # noqa: E402


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
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return ls.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tt", default=os.path.join(HERE, "..", "build", "tt"))
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--carrier", default="tt")
    ap.add_argument("--reconnect-min", default="100ms")
    a = ap.parse_args()
    key = subprocess.run([a.tt, "keygen"], capture_output=True, text=True).stdout.strip()
    tmp = tempfile.mkdtemp()
    procs = []
    try:
        echo = echo_server()
        sport = free_port()
        slog = os.path.join(tmp, "server.log")
        procs.append(subprocess.Popen(
            [a.tt, "server", "-l", "%s://127.0.0.1:%d" % (a.carrier, sport), "-k", key,
             "--allow", "127.0.0.0/8"], stderr=open(slog, "w")))
        wait_log(slog, "listening")
        proxy = CuttingProxy(sport)
        fport = free_port()
        clog = os.path.join(tmp, "client.log")
        procs.append(subprocess.Popen(
            [a.tt, "client", "-s", "%s://127.0.0.1:%d" % (a.carrier, proxy.port), "-k", key,
             "--resume", "--reconnect-min", a.reconnect_min, "-l", "none",
             "-L", "127.0.0.1:%d=127.0.0.1:%d" % (fport, echo)], stderr=open(clog, "w")))
        wait_log(clog, "forward listening")
        s = socket.create_connection(("127.0.0.1", fport))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The round trip the target counts in: a message through the whole
        # path (tunnel, proxy, echo) and back, before any cut.
        echo_rtt = []
        for _ in range(50):
            t = time.monotonic()
            s.sendall(b"y" * 64)
            got = 0
            while got < 64:
                got += len(s.recv(64 - got))
            echo_rtt.append((time.monotonic() - t) * 1000)
        arrivals = []
        stop = threading.Event()

        def send():
            while not stop.is_set():
                try:
                    s.sendall(b"x" * 64)
                except OSError:
                    return
                time.sleep(0.002)

        def recv():
            while True:
                try:
                    d = s.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                arrivals.append(time.monotonic())

        threading.Thread(target=send, daemon=True).start()
        threading.Thread(target=recv, daemon=True).start()
        time.sleep(0.5)
        gaps, up_to_accept, up_to_byte = [], [], []
        for i in range(a.cuts):
            t = time.monotonic()
            proxy.cut_all()
            while not arrivals or arrivals[-1] <= t:
                if time.monotonic() - t > 60:
                    sys.exit("nothing moved for 60 s after cut %d" % i)
                time.sleep(0.0005)
            first = next(x for x in arrivals if x > t)
            gaps.append((first - t) * 1000)
            # The new connection's accept at the proxy splits the gap: before
            # it, the backoff timer and the connect; after it, the carrier's
            # handshake, the join, the resend and the echo.
            acc = [x for x in proxy.accepted if x > t]
            if acc:
                after = [x for x in arrivals if x > acc[0]]
                if after:
                    up_to_byte.append((after[0] - acc[0]) * 1000)
                    up_to_accept.append((acc[0] - t) * 1000)
            deadline = time.monotonic() + 15
            while open(clog).read().count("resumed after") <= i:
                if time.monotonic() > deadline:
                    sys.exit("the client did not log its resume %d" % (i + 1))
                time.sleep(0.005)
            time.sleep(0.2)
        stop.set()
        delays = [int(d) for n, d in re.findall(r"reconnect attempt (\d+) to \S+ in (\d+) ms",
                                                 open(clog).read())]
        attempts = len(delays)
        print("carrier %s, --reconnect-min %s, %d cuts, %d reconnection attempts" % (
            a.carrier, a.reconnect_min, a.cuts, attempts))
        print("cut -> first byte again: median %.1f ms, min %.1f, max %.1f" % (
            statistics.median(gaps), min(gaps), max(gaps)))
        if attempts == a.cuts:
            extra = [g - d for g, d in zip(gaps, delays)]
            print("minus the drawn backoff delay: median %.2f ms, max %.2f ms" % (
                statistics.median(extra), max(extra)))
        if attempts == a.cuts and len(up_to_accept) == a.cuts:
            late = [x - d for x, d in zip(up_to_accept, delays)]
            print("cut -> the new connection's accept, minus the drawn delay: median %.2f ms, "
                  "max %.2f ms" % (statistics.median(late), max(late)))
        if up_to_byte:
            print("the new connection's accept -> first byte again: median %.2f ms, max %.2f ms"
                  % (statistics.median(up_to_byte), max(up_to_byte)))
        rtt = []
        for _ in range(50):
            t = time.monotonic()
            c = socket.create_connection(("127.0.0.1", sport))
            rtt.append((time.monotonic() - t) * 1000)
            c.close()
        print("one round trip (TCP connect to the server, median): %.3f ms" % statistics.median(rtt))
        print("one round trip of a message through the tunnel and the echo, before the cuts "
              "(median, max): %.2f ms, %.2f ms" % (statistics.median(echo_rtt), max(echo_rtt)))
        s.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
