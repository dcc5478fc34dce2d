#!/usr/bin/python3
"""Both ends of bench/dnscarrier.sh's measurements, on plain TCP: the
destination behind each tunnel, and the measuring client in front of it.

    dnspeer.py serve ADDR PORT
    dnspeer.py bulk ADDR PORT down|up BYTES
    dnspeer.py firstbyte ADDR PORT COUNT

The destination reads a request line: "down N" is answered with N bytes,
"up N" reads N bytes and answers "ok", "echo" echoes what follows. bulk
times one transfer from connect to its last byte and prints "BYTES SECONDS
MB/s" (BYTES: what arrived, less than asked if the tunnel broke). firstbyte
times COUNT connections, each from connect to its first echoed byte, one
after another, and prints the median in milliseconds, every sample and the
number of connections that failed (reset, closed or 30 s without an echo).
"""

import os
import socket
import statistics
import sys
import threading
import time


def serve(addr, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    blob = os.urandom(1 << 20)

    def one(c):
        with c:
            # The request line byte by byte: a buffered reader would take
            # the upload's first bytes with it.
            line = b""
            while not line.endswith(b"\n"):
                ch = c.recv(1)
                if not ch:
                    return
                line += ch
            words = line.split()
            if words[0] == b"echo":
                while True:
                    d = c.recv(65536)
                    if not d:
                        return
                    c.sendall(d)
            mode, n = words[0], int(words[1])
            if mode == b"down":
                while n > 0:
                    k = min(n, len(blob))
                    c.sendall(blob[:k])
                    n -= k
            else:
                while n > 0:
                    d = c.recv(65536)
                    if not d:
                        return
                    n -= len(d)
                c.sendall(b"ok\n")

    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def bulk(addr, port, mode, n):
    t = time.monotonic()
    c = socket.create_connection((addr, port), timeout=300)
    c.sendall(b"%s %d\n" % (mode.encode(), n))
    got = 0
    try:
        if mode == "down":
            while got < n:
                d = c.recv(65536)
                if not d:
                    break
                got += len(d)
        else:
            blob = os.urandom(65536)
            left = n
            while left > 0:
                k = min(left, len(blob))
                c.sendall(blob[:k])
                left -= k
            got = n if c.recv(3) == b"ok\n" else 0
    except OSError:
        pass
    dt = time.monotonic() - t
    print("%d %.2f %.3f" % (got, dt, got / dt / 1e6))


def firstbyte(addr, port, count):
    ms, failed = [], 0
    for _ in range(count):
        t = time.monotonic()
        try:
            with socket.create_connection((addr, port), timeout=30) as c:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.sendall(b"echo\nx")
                if c.recv(1) != b"x":
                    raise OSError("no echo")
            ms.append((time.monotonic() - t) * 1000)
        except OSError:
            # A tunnel that drops a connection is counted, not timed.
            failed += 1
    med = statistics.median(ms) if ms else float("nan")
    print("%.1f %s %d" % (med, ",".join("%.1f" % x for x in ms) or "-", failed))


def main():
    cmd, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "serve":
        serve(addr, port)
    elif cmd == "bulk":
        bulk(addr, port, sys.argv[4], int(sys.argv[5]))
    else:
        firstbyte(addr, port, int(sys.argv[4]))


if __name__ == "__main__":
    main()
