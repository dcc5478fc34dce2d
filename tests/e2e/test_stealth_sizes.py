"""tt:// sizes as a censor sees them (issue 11, item 5). A recording proxy
between a tt client and a tt server keeps the size of every read in each
direction, as a passive observer would see TCP payloads. The first flights
of 1000 connections are not confined to the old uniform range [118, 1141],
gather near 517 bytes as ClientHellos do and have no hard edge (their
density fades out at both ends, where a uniform draw stays flat); in an interactive exchange a 1-byte write
and a 100-byte write cannot be told apart by their size, in either
direction. Each case runs the old uniform padding as well, where the same
measures see what they look for, so the test shows that it can fail."""

import socket
import threading

import pytest
from helpers import free_port, socks_open, wait_until
from test_stealth_tt import LoopbackServer, run_parallel
from test_tt_carrier import tt_client, tt_server

FLIGHTS = 1000
ROUNDS = 400


class RecordingProxy(LoopbackServer):
    """Forwards each accepted connection to UPSTREAM and keeps, per
    connection, the list of reads as ('c' | 's', size): 'c' from the client,
    's' from the server. On loopback with TCP_NODELAY each write of one side
    arrives in one read while the other side waits for it."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.conns = []
        self.socks = []
        super().__init__()

    def handle(self, c):
        u = socket.create_connection(self.upstream)
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log = []
        with self.lock:
            self.conns.append(log)
            self.socks += [c, u]
        threading.Thread(target=self._pump, args=(c, u, "c", log), daemon=True).start()
        threading.Thread(target=self._pump, args=(u, c, "s", log), daemon=True).start()

    def _pump(self, src, dst, side, log):
        try:
            while True:
                d = src.recv(1 << 16)
                if not d:
                    break
                with self.lock:
                    log.append((side, len(d)))
                dst.sendall(d)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def snapshot(self):
        with self.lock:
            return [list(log) for log in self.conns]

    def close(self):
        super().close()
        with self.lock:
            for s in self.socks:
                s.close()


def tapped_pair(procs, profile):
    port = free_port(("127.0.0.1",))
    tt_server(procs, "-l", "127.0.0.1:%d" % port, "--padding-profile", profile)
    proxy = RecordingProxy(("127.0.0.1", port))
    _, socks = tt_client(procs, "127.0.0.1:%d" % proxy.port, "--padding-profile", profile,
                         name="tapped-client")
    return proxy, socks


def first_flights(log):
    """The client's bytes before the server's first, and the server's first
    read (its hello: the client sends nothing more until it closes)."""
    client = 0
    for side, n in log:
        if side == "s":
            return client, n
        client += n
    return client, None


def fading(sizes):
    """How the density behaves at the two ends of SIZES, averaged: of the 2K
    sizes nearest an end, where the K-th lies within their span. At a hard
    edge (uniform) it lies halfway, 0.5; where the density fades out like
    the tail of a sum of uniforms (growing as the square of the distance
    from the end) it lies near 0.79. With 1000 sizes and K = 33, simulation
    of both draws (300 runs each) put uniform at most at 0.57 and the
    shaped draw at least at 0.65, hence the threshold 0.61."""
    s = sorted(sizes)
    k = len(s) // 30
    lo = (s[k] - s[0]) / max(1, s[2 * k] - s[0])
    hi = (s[-1] - s[-1 - k]) / max(1, s[-1] - s[-1 - 2 * k])
    return (lo + hi) / 2


@pytest.mark.parametrize("profile", ["shaped", "uniform"])
def test_first_flights_have_no_hard_edge(procs, echo, profile):
    proxy, socks = tapped_pair(procs, profile)
    try:
        def streams(k):
            for _ in range(k):
                socks_open(socks, "127.0.0.1", echo).close()

        run_parallel({i: (lambda: streams(FLIGHTS // 10)) for i in range(10)})

        def done():
            logs = proxy.snapshot()
            return len(logs) >= FLIGHTS and all(first_flights(g)[1] for g in logs[:FLIGHTS])

        wait_until(done, 30, "%d recorded handshakes" % FLIGHTS)
        pairs = [first_flights(g) for g in proxy.snapshot()[:FLIGHTS]]
    finally:
        proxy.close()
    client = [c for c, _ in pairs]
    server = [s for _, s in pairs]
    fade = (fading(client) + fading(server)) / 2
    print("%s: client flights %d-%d, %d above 1141; server %d-%d; fading at the ends %.3f"
          % (profile, min(client), max(client), sum(c > 1141 for c in client), min(server),
             max(server), fade))
    if profile == "uniform":
        # What the shaped profile replaces: flat between hard bounds.
        assert 118 <= min(client) and max(client) <= 1142
        assert fade < 0.61
        return
    assert sum(c > 1141 for c in client) > FLIGHTS // 10, "flights stay below the old bound"
    assert sum(497 <= c <= 537 for c in client) > FLIGHTS // 10, "no cluster near 517"
    assert fade > 0.61, (sorted(client), sorted(server))


def ks_distance(a, b):
    """The largest gap between the empirical distributions of A and B."""
    d = 0.0
    for x in sorted(set(a) | set(b)):
        fa = sum(v <= x for v in a) / len(a)
        fb = sum(v <= x for v in b) / len(b)
        d = max(d, abs(fa - fb))
    return d


@pytest.mark.parametrize("profile", ["shaped", "uniform"])
def test_small_writes_do_not_show_their_size(procs, echo, profile):
    """ROUNDS 1-byte and ROUNDS 100-byte writes, interleaved, each echoed
    before the next: the sizes the observer sees for the two kinds, in each
    direction, are as close as sampling allows: their Kolmogorov-Smirnov
    distance is about 0.05 (20000 draws in the unit test), and with 400
    samples each chance adds more than 0.14 less than one time in a
    thousand, so 0.2 is the bound; padding of 0..31 bytes gives 1.0."""
    proxy, socks = tapped_pair(procs, profile)
    try:
        sock = socks_open(socks, "127.0.0.1", echo)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10)

        def exchange(payload):
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += sock.recv(len(payload) - len(got))
            assert got == payload

        exchange(b"w")  # the session keys exist from here on
        wait_until(lambda: len(proxy.snapshot()[0]) >= 4, 10, "the warm-up through the proxy")
        start = len(proxy.snapshot()[0])
        kinds = [1, 100] * ROUNDS
        for i, n in enumerate(kinds):
            exchange(bytes([65 + i % 26]) * n)
        wait_until(lambda: len(proxy.snapshot()[0]) >= start + 2 * len(kinds), 10,
                   "every write through the proxy")
        log = proxy.snapshot()[0][start:]
        sock.close()
    finally:
        proxy.close()
    up = [n for side, n in log if side == "c"]
    down = [n for side, n in log if side == "s"]
    # One read per write: the exchange is strictly one at a time.
    assert len(up) == len(kinds) and len(down) == len(kinds), (len(up), len(down))
    d_up = ks_distance(up[0::2], up[1::2])
    d_down = ks_distance(down[0::2], down[1::2])
    cost = sum(up + down) / len(up + down)
    print("%s: KS 1 vs 100 bytes: up %.3f, down %.3f; mean write on the wire %.0f bytes"
          % (profile, d_up, d_down, cost))
    if profile == "uniform":
        assert d_up > 0.99 and d_down > 0.99  # 0..31 bytes cannot hide 99
        return
    assert d_up < 0.2 and d_down < 0.2, (d_up, d_down)
