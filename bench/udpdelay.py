#!/usr/bin/python3
"""A UDP relay that delays every datagram by a fixed time each way: put
between a resolver and a DNS server, it adds twice DELAY_MS to each query's
round trip, as a distant server would (there is no netem on this machine).

    udpdelay.py LISTEN_ADDR:PORT TARGET_ADDR:PORT DELAY_MS

Queries arrive from many source ports (a resolver picks a random one per
query); they all go to TARGET from one socket, and each answer goes back to
the address its query came from, matched by DNS id and question (a server
echoes both). Order is kept: every datagram waits the same time. On SIGTERM
it prints one line: datagrams relayed each way and answers that matched no
query (dns2tcpd answers some queries more than once; the resolver would
drop those too). Only DNS over UDP: a server that truncates would show up as unbound's
num.query.tcpout (bench/dns_common.sh reads it).
"""

import heapq
import selectors
import signal
import socket
import sys
import time


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def key(msg):
    """The DNS id and the question's bytes (name, type, class): what an
    answer repeats of its query. None for a message too short to hold them."""
    i = 12
    while i < len(msg) and msg[i] != 0:
        if msg[i] & 0xC0:
            return None
        i += msg[i] + 1
    if i + 5 > len(msg):
        return None
    return msg[:2] + msg[12 : i + 5]


def send(fn, *args):
    """Sends, dropping the datagram when the socket's buffer is full or the
    peer refuses it: a relay, like a router, does not queue without bound."""
    try:
        fn(*args)
    except OSError:
        pass


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: udpdelay.py LISTEN_ADDR:PORT TARGET_ADDR:PORT DELAY_MS")
    listen, target, delay = hostport(sys.argv[1]), hostport(sys.argv[2]), float(sys.argv[3]) / 1000
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(listen)
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.connect(target)
    for s in (front, back):
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ)
    sel.register(back, selectors.EVENT_READ)
    waiting = {}  # query key -> (client address, when it expires)
    due = []  # (time, sequence, to the server?, datagram, client address)
    seq = 0
    counts = {"up": 0, "down": 0, "unmatched": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    next_sweep = time.monotonic() + 10
    while not stop:
        now = time.monotonic()
        timeout = max(0.0, due[0][0] - now) if due else 1.0
        try:
            events = sel.select(timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for k, _ in events:
            s = k.fileobj
            while True:
                try:
                    msg, addr = s.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:
                    # An ICMP error from the server's side (say, its port
                    # closed for a moment): that datagram is lost, as on a
                    # real path.
                    continue
                seq += 1
                heapq.heappush(due, (now + delay, seq, s is front, msg, addr))
        while due and due[0][0] <= now:
            _, _, up, msg, addr = heapq.heappop(due)
            q = key(msg)
            if up:
                if q is not None:
                    waiting[q] = (addr, now + 30)
                counts["up"] += 1
                send(back.send, msg)
            else:
                hit = waiting.pop(q, None) if q is not None else None
                if hit is None:
                    counts["unmatched"] += 1
                    continue
                counts["down"] += 1
                send(front.sendto, msg, hit[0])
        if now >= next_sweep:
            # Queries never answered: forgotten after 30 s, so that memory
            # stays bounded.
            waiting = {q: v for q, v in waiting.items() if v[1] > now}
            next_sweep = now + 10
    print("udpdelay %s: %d up, %d down, %d unmatched" % (sys.argv[1], counts["up"],
                                                          counts["down"], counts["unmatched"]))


if __name__ == "__main__":
    main()
