"""tt:// as a censor sees it (issue 11). A prober who connects, sends some
bytes and watches what happens must learn nothing about whether the bytes
were anything like a tt client's: probes of 0-5000 random bytes, genuine
prefixes of a recorded first flight and flights with one flipped byte, each
with and without a FIN, all meet the same silence and the same kind of close
inside the same random window. With --fallback, everything that is not a tt
client meets the web server at once, and an idle connection ends when the web
server ends it. Last, the first-packet rule of Wu et al. (USENIX Security
2023) flags tt's first flights no more often than random bytes of the same
lengths."""

import os
import re
import socket
import threading
import time

from helpers import free_port, recv_until_eof, socks_connect, socks_open, wait_until
from test_tt_carrier import Tap, first_flight, tt_client, tt_server

HS_TIMEOUT = 1.0  # --handshake-timeout: an unauthenticated close in [1, 2] s


def probe(port, payload, fin, bulk=0, timeout=10):
    """Connects, sends PAYLOAD (then BULK more random bytes), half-closes
    when FIN, and reads until the server closes. Returns (bytes received,
    'eof' | 'reset', seconds from connect to close)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    try:
        if payload:
            s.sendall(payload)
        if bulk:
            s.sendall(os.urandom(bulk))
        if fin:
            s.shutdown(socket.SHUT_WR)
        got, how = recv_until_eof(s, timeout)
    finally:
        s.close()
    return got, how, time.monotonic() - t0


def run_parallel(jobs):
    """Runs each callable of the dict JOBS in its own thread; returns their
    results by name."""
    results, errors = {}, {}

    def run(name, fn):
        try:
            results[name] = fn()
        except BaseException as e:  # reported below, with the probe's name
            errors[name] = e

    threads = [threading.Thread(target=run, args=(n, f)) for n, f in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert set(results) == set(jobs)
    return results


def flipped(flight, i):
    b = bytearray(flight)
    b[i] ^= 0x01
    return bytes(b)


def test_no_probe_separates_from_another_by_its_close(procs, echo):
    """Every probe, whatever its length or content and with or without a
    FIN, gets no byte, a FIN (never a reset) and a close between one and two
    handshake timeouts after connecting. Before issue 11, a FIN after 50 or
    more bytes that failed (random, a flipped byte) drew the close within a
    millisecond while a shorter probe or a genuine prefix drew it at the
    deadline: a threshold at exactly 50 bytes that told the prober where
    authentication happens and that the server held the key."""
    port = free_port(("127.0.0.1",))
    s = tt_server(procs, "-l", "127.0.0.1:%d" % port, "--handshake-timeout", "%ds" % HS_TIMEOUT)
    flight = first_flight(procs, port, echo)
    assert len(flight) > 100
    payloads = {"random %d" % n: os.urandom(n) for n in (0, 1, 2, 10, 49, 50, 51, 100, 500, 1000,
                                                         5000)}
    payloads.update({
        "genuine first 50": flight[:50],
        "genuine first 51": flight[:51],
        "genuine all but last": flight[:-1],
        "flipped length byte": flipped(flight, 40),
        "flipped body byte": flipped(flight, len(flight) // 2),
        "flipped first 50": flipped(flight[:50], 49),
        "http get": b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
    })
    jobs = {}
    for name, data in payloads.items():
        for fin in (False, True):
            jobs["%s%s" % (name, ", FIN" if fin else "")] = (
                lambda data=data, fin=fin: probe(port, data, fin))
    # More than any buffer of the server: it reads and discards all of it,
    # so the TCP window shows no buffer size (sendall would block).
    jobs["1 MiB, FIN"] = lambda: probe(port, b"", True, bulk=1 << 20)
    results = run_parallel(jobs)
    manners, times = set(), []
    for name, (got, how, secs) in sorted(results.items()):
        assert got == b"", "%s: the server answered %r" % (name, got[:40])
        manners.add(how)
        times.append(secs)
        assert HS_TIMEOUT - 0.05 <= secs <= 2 * HS_TIMEOUT + 0.8, (
            "%s: closed after %.3f s, outside the window of every other probe" % (name, secs))
    assert manners == {"eof"}, results
    # The draws are spread over the window, not clustered by probe kind:
    # for each way a prober would split its probes, neither side's close
    # times all come before the other's (with about 18 uniform draws a
    # side, chance alone does that with probability below 10^-9).
    assert max(times) - min(times) > 0.2 * HS_TIMEOUT, sorted(times)
    splits = {
        "FIN or not": lambda n: n.endswith("FIN"),
        "50 bytes or more": lambda n: len(payloads.get(n.replace(", FIN", ""), b"")) >= 50,
        "genuine bytes": lambda n: n.startswith(("genuine", "flipped")),
    }
    for split, side in splits.items():
        a = [r[2] for n, r in results.items() if side(n)]
        b = [r[2] for n, r in results.items() if not side(n)]
        assert min(a) < max(b) and min(b) < max(a), (
            "%s separates the closes: %s vs %s" % (split, sorted(a), sorted(b)))
    assert s.popen.poll() is None


class LoopbackServer:
    """Accepts on a kernel-chosen loopback port in a thread and passes each
    connection to self.handle, until closed."""

    def __init__(self):
        self.lsock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.handle(c)

    def close(self):
        self.lsock.close()


class IdleSite(LoopbackServer):
    """A stand-in web server for --fallback that answers each request with
    one line and closes a connection after IDLE seconds without a request,
    as nginx does with its client_header_timeout; it notes when each
    connection came and what it got."""

    def __init__(self, idle):
        self.idle = idle
        self.conns = []
        super().__init__()

    def handle(self, c):
        threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        rec = {"at": time.monotonic(), "got": b""}
        with self.lock:
            self.conns.append(rec)
        c.settimeout(self.idle)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                rec["got"] += d
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                break
        except (socket.timeout, OSError):
            pass
        c.close()


def answered(port, payload, fin=False):
    """Sends PAYLOAD and returns (the first bytes of the answer, seconds
    until they came)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        t0 = time.monotonic()
        s.sendall(payload)
        if fin:
            s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        got = s.recv(100)
        return got, time.monotonic() - t0
    finally:
        s.close()


def stale_flight(procs, port, echo):
    """The first flight of a client whose clock is 300 s behind, as a
    recording made five minutes ago would be: its salt was never accepted
    (the server has no trace of it), only its time stamp is old."""
    tap = Tap(("127.0.0.1", port))
    try:
        _, socks = tt_client(procs, "127.0.0.1:%d" % tap.port, "--clock-offset", "-300",
                             name="stale-client")
        sock, _ = socks_connect(socks, "127.0.0.1", echo, timeout=20)
        sock.close()
        wait_until(tap.server_spoke.is_set, 10, "the fallback's answer through the tap")
        return bytes(tap.first_flight)
    finally:
        tap.close()


def test_fallback_gets_every_non_client_at_once_and_closes_idle_ones_itself(procs, echo):
    """With --fallback, bytes that are not a tt client reach the web server
    without a delay of tt's: a short request (before issue 11 it waited 1 s
    for more), genuine prefixes of a recorded first flight (known by its
    salt) and of a stale one (known by its authenticated time stamp, in the
    sealed head since issue 11), flipped bytes. A connection that sends
    nothing is ended by the web server's idle timeout, not by tt's
    handshake deadline."""
    site = IdleSite(idle=3.5)
    try:
        port = free_port(("127.0.0.1",))
        tt_server(procs, "-l", "127.0.0.1:%d" % port, "--handshake-timeout", "%ds" % HS_TIMEOUT,
                  "--fallback", "127.0.0.1:%d" % site.port, "-v")
        flight = first_flight(procs, port, echo)
        stale = stale_flight(procs, port, echo)
        assert len(stale) > 100
        payloads = {
            "stale first 58": stale[:58],
            "stale all but last": stale[:-1],
            "short request": b"GET / HTTP/1.0\r\n\r\n",
            "10 random bytes": os.urandom(10),
            "49 random bytes": os.urandom(49),
            "5000 random bytes": os.urandom(5000),
            "genuine first 50": flight[:50],
            "genuine all but last": flight[:-1],
            "flipped byte": flipped(flight, 40),
        }
        jobs = {}
        for name, data in payloads.items():
            for fin in (False, True):
                jobs["%s%s" % (name, ", FIN" if fin else "")] = (
                    lambda data=data, fin=fin: answered(port, data, fin))
        jobs["idle"] = lambda: probe(port, b"", False)
        results = run_parallel(jobs)
        for name, result in results.items():
            if name == "idle":
                continue
            got, secs = result
            assert got.startswith(b"HTTP/1.1 400"), (name, got)
            assert secs < 0.5, "%s: the web site answered after %.2f s" % (name, secs)
        got, how, secs = results["idle"]
        assert (got, how) == (b"", "eof")
        # The site's 3.5 s idle close, timed from its connect at accept, and
        # not tt's deadline (1-2 s).
        assert 3.3 <= secs <= 5.0, "idle connection closed after %.2f s" % secs
        with site.lock:
            sent = {rec["got"] for rec in site.conns}
        for name, data in payloads.items():
            assert data in sent, "%s: the site did not get exactly the bytes sent" % name
    finally:
        site.close()


def test_unreachable_fallback_drains_like_no_fallback_and_spares_real_clients(procs, echo):
    """With the web server down, a probe meets what it would without
    --fallback (silence, a close in the window), and only the probe's
    connection logs the web server's absence: real clients, whose
    handshakes also dialled it, do not."""
    site = free_port(("127.0.0.1",))  # nothing listens there
    port = free_port(("127.0.0.1",))
    s = tt_server(procs, "-l", "127.0.0.1:%d" % port, "--handshake-timeout", "%ds" % HS_TIMEOUT,
                  "--fallback", "127.0.0.1:%d" % site, "-v")
    _, socks = tt_client(procs, "127.0.0.1:%d" % port)
    for _ in range(3):
        sock = socks_open(socks, "127.0.0.1", echo)
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
        sock.close()
    got, how, secs = probe(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True)
    assert (got, how) == (b"", "eof")
    assert HS_TIMEOUT - 0.05 <= secs <= 2 * HS_TIMEOUT + 0.8, secs
    assert len(re.findall(r"fallback unreachable", s.log())) == 1, s.log()


def test_hopping_ports_change_off_the_clock_grid_and_closed_ones_refuse(procs, echo):
    """A scanner that watches the hopping range sees one port replaced per
    slot; the replacements no longer fall on multiples of the interval (a
    whole minute by default) but at key-dependent moments, slots of uneven
    length. A port whose slot has passed refuses connections exactly as a
    port never used does."""
    s = tt_server(procs, "-l", "127.0.0.1", "-r", "20000-29999", "--hop-interval", "1s", "-v")
    rx = re.compile(r"^\S+T\d\d:\d\d:(\d\d\.\d{3})Z .*hopping: closing port (\d+)$", re.M)
    wait_until(lambda: len(rx.findall(s.log())) >= 5, 15, "five port changes")
    closes = [(float(t), int(p)) for t, p in rx.findall(s.log())[:5]]
    # Old code: every change at .000-.002 s. Each boundary is now uniform
    # in the first half of its second; five within 50 ms of the grid have
    # probability 0.1^5.
    assert any(0.05 < t % 1 < 0.95 for t, _ in closes), closes
    gaps = [b[0] - a[0] for a, b in zip(closes, closes[1:])]
    assert max(gaps) - min(gaps) > 0.05, "slots of equal length: %r" % gaps
    unused = next(p for p in range(20000, 30000) if p not in {c[1] for c in closes}
                  and not s.log().count("port %d" % p))
    for port in (closes[0][1], unused):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            continue
        assert False, "port %d accepted a connection out of its slot" % port


# ---------------------------------------------------------------------------
# The first-packet rule of Wu et al., "How the Great Firewall of China Detects
# and Blocks Fully Encrypted Traffic" (USENIX Security 2023), §4: a first
# packet is exempted (left alone) if any of Ex1-Ex5 holds; the rest are
# treated as fully encrypted and may be blocked.

PRINTABLE = set(range(0x20, 0x7F))


def wu_exempt(p):
    if not p:
        return True
    bits = sum(bin(b).count("1") for b in p) / len(p)
    if bits <= 3.4 or bits >= 4.6:
        return True  # Ex1: bits set per byte far from random's 4
    if len(p) >= 6 and all(b in PRINTABLE for b in p[:6]):
        return True  # Ex2: the first six bytes printable
    if sum(b in PRINTABLE for b in p) > len(p) / 2:
        return True  # Ex3: more than half printable
    run = best = 0
    for b in p:
        run = run + 1 if b in PRINTABLE else 0
        best = max(best, run)
    if best > 20:
        return True  # Ex4: more than 20 contiguous printable bytes
    if (len(p) >= 3 and p[0] in (0x16, 0x17) and p[1] == 0x03 and p[2] <= 0x09) or \
            p[:4] in (b"GET ", b"PUT ", b"POST", b"HEAD"):
        return True  # Ex5: TLS or HTTP
    return False


class FlightRecorder(LoopbackServer):
    """Stands where a tt server would and keeps each connection's first
    read (a tt client writes its first flight at once, and on loopback one
    read holds it), then closes."""

    def __init__(self):
        self.flights = []
        super().__init__()

    def handle(self, c):
        c.settimeout(5)
        try:
            d = c.recv(1 << 16)
        except OSError:
            d = b""
        c.close()
        if d:
            with self.lock:
                self.flights.append(d)


def test_first_flights_are_flagged_no_more_often_than_random_bytes(procs):
    n = 500
    rec = FlightRecorder()
    try:
        _, socks = tt_client(procs, "127.0.0.1:%d" % rec.port, "--handshake-timeout", "2s")

        def streams(k):
            for _ in range(k):
                sock, _ = socks_connect(socks, "127.0.0.1", 9, timeout=20)
                sock.close()

        run_parallel({i: (lambda: streams(n // 10)) for i in range(10)})
        wait_until(lambda: len(rec.flights) >= n, 20, "%d recorded first flights" % n)
    finally:
        rec.close()
    flights = rec.flights[:n]
    tt_flagged = sum(not wu_exempt(f) for f in flights)
    rnd_flagged = sum(not wu_exempt(os.urandom(len(f))) for f in flights)
    # Both are near n (random bytes are what the rule looks for); tt may not
    # stand out by more than sampling noise.
    assert tt_flagged <= rnd_flagged + 15, (tt_flagged, rnd_flagged)
    print("Wu et al. first-packet rule: tt flagged %d/%d, random bytes %d/%d"
          % (tt_flagged, n, rnd_flagged, n))
