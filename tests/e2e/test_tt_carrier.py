"""The native carrier, tt://, end to end: TT's usage verbatim, both ciphers,
wrong keys, the clock window, hopping ports across rotations, replay and
probe resistance, and the --fallback web site (a real nginx)."""

import hashlib
import os
import re
import socket
import threading
import time

import pytest

from helpers import (curl, free_port, recv_until_eof, rep_code, run_tt, socks_connect, socks_open,
                     wait_until)

# A password (stretched with scrypt) unless a test uses a `tt keygen` key.
KEY = "correct horse battery staple"


def tt_server(procs, *args, key=KEY, name="tt-server"):
    p = procs.tt(["server", "-k", key, "--allow", "127.0.0.0/8"] + list(args), name=name)
    p.wait_log(r"tt server listening on tt://", timeout=60)
    return p


def tt_client(procs, server, *args, key=KEY, name="tt-client"):
    p = procs.tt(["client", "-s", server, "-k", key, "-l", "127.0.0.1:0"] + list(args), name=name)
    port = int(p.wait_log(r"SOCKS5 proxy listening on 127\.0\.0\.1:(\d+)", timeout=60).group(1))
    return p, ("127.0.0.1", port)


def fixed_pair(procs, server_args=(), client_args=(), key=KEY):
    port = free_port(("127.0.0.1",))
    s = tt_server(procs, "-l", "127.0.0.1:%d" % port, *server_args, key=key)
    c, socks = tt_client(procs, "127.0.0.1:%d" % port, *client_args, key=key)
    return s, c, socks, port


def fetch(socks, url, *args):
    r = curl("--socks5-hostname", "%s:%d" % socks, *args, url, timeout=120)
    assert r.returncode == 0, "curl through tt failed: %s" % r.stderr.decode(errors="replace")
    return r.stdout


def count(proc, pattern):
    return len(re.findall(pattern, proc.log(), re.M))


# ---------------------------------------------------------------------------
# TT's usage


def test_tt_usage_hopping_ports_carries_curl_and_100mb(procs, nginx, big_file):
    """`tt server -k KEY` / `tt client -s SERVER -k KEY` with TT's defaults
    (hopping in 1024-65535), pinned to loopback as the issue asks."""
    tt_server(procs, "-l", "127.0.0.1")
    _, socks = tt_client(procs, "127.0.0.1")
    assert fetch(socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index
    body = fetch(socks, "http://127.0.0.1:%d/%s" % (nginx.port, big_file.name))
    assert len(body) == big_file.size
    assert hashlib.sha256(body).hexdigest() == big_file.sha256


@pytest.mark.parametrize("method", ["chacha20-poly1305", "aes-256-gcm"])
def test_each_cipher_carries_100mb_byte_for_byte(procs, nginx, big_file, method):
    key = run_tt(["keygen"]).stdout.strip()
    _, _, socks, _ = fixed_pair(procs, ("-m", method), ("-m", method), key=key)
    body = fetch(socks, "http://127.0.0.1:%d/%s" % (nginx.port, big_file.name))
    assert hashlib.sha256(body).hexdigest() == big_file.sha256


def test_server_accepts_both_methods(procs, nginx):
    port = free_port(("127.0.0.1",))
    tt_server(procs, "-l", "127.0.0.1:%d" % port, "-m", "chacha20-poly1305,aes-256-gcm")
    for m in ("aes-256-gcm", "chacha20-poly1305"):
        _, socks = tt_client(procs, "127.0.0.1:%d" % port, "-m", m, name="client-" + m)
        assert fetch(socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index


def test_keygen_prints_distinct_base64_keys():
    a = run_tt(["keygen"]).stdout.strip()
    b = run_tt(["keygen"]).stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", a), a
    assert a != b


def test_key_from_environment(procs, nginx):
    port = free_port(("127.0.0.1",))
    env = dict(os.environ, TT_KEY=KEY)
    s = procs.tt(["server", "-l", "127.0.0.1:%d" % port, "--allow", "127.0.0.0/8"], name="srv",
                 env=env)
    s.wait_log(r"tt server listening", timeout=60)
    c = procs.tt(["client", "-s", "127.0.0.1:%d" % port, "-l", "127.0.0.1:0"], name="cli",
                 env=env)
    sp = int(c.wait_log(r"SOCKS5 proxy listening on 127\.0\.0\.1:(\d+)", timeout=60).group(1))
    assert fetch(("127.0.0.1", sp), "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index


# ---------------------------------------------------------------------------
# Authentication, clock window


def test_wrong_key_fails_with_general_failure_and_no_dial(procs, echo):
    # A wrong key meets the same silence as any probe: the server closes
    # 1-2 handshake timeouts later, and the client then answers 0x01.
    port = free_port(("127.0.0.1",))
    s = tt_server(procs, "-l", "127.0.0.1:%d" % port, "-v", "--handshake-timeout", "1s")
    _, socks = tt_client(procs, "127.0.0.1:%d" % port, key="not the key")
    sock, rep = socks_connect(socks, "127.0.0.1", echo)
    sock.close()
    assert rep_code(rep) == 0x01
    s.wait_log(r"not a tt client \(authentication failed\)")
    assert count(s, r"connected to") == 0


@pytest.mark.parametrize("offset,ok", [(20, True), (-20, True), (45, False), (-45, False)])
def test_clock_skew_inside_and_outside_the_window(procs, echo, offset, ok):
    _, _, socks, _ = fixed_pair(procs, ("--replay-window", "30s", "--handshake-timeout", "1s"),
                                ("--clock-offset", str(offset)))
    sock, rep = socks_connect(socks, "127.0.0.1", echo)
    try:
        if ok:
            assert rep_code(rep) == 0
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
        else:
            assert rep_code(rep) == 0x01
    finally:
        sock.close()


# ---------------------------------------------------------------------------
# Port hopping


def test_download_survives_three_port_rotations(procs, nginx, big_file):
    """With 1 s slots, a download held open (the test stops reading, so
    backpressure keeps it mid-transfer) outlives three listener rotations,
    including the close of the listener it came through; then it finishes
    byte for byte and new streams still find the server."""
    args = ("-r", "20000-29999", "--hop-interval", "1s")
    s = tt_server(procs, "-l", "127.0.0.1", "-v", *args)
    _, socks = tt_client(procs, "127.0.0.1", *args)
    size = 16 << 20
    sock = socks_open(socks, "127.0.0.1", nginx.port, timeout=30)
    sock.sendall(b"GET /%s HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-%d\r\n"
                 b"Connection: close\r\n\r\n" % (big_file.name.encode(), size - 1))
    got = bytearray()
    while len(got) < (1 << 20):
        chunk = sock.recv(1 << 16)
        assert chunk, "the download ended early"
        got += chunk
    closed_before = count(s, r"hopping: closing port")
    wait_until(lambda: count(s, r"hopping: closing port") - closed_before >= 3, 20,
               "three listener rotations while the download is open")
    data, how = recv_until_eof(sock, 60)
    sock.close()
    assert how == "eof"
    got += data
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206"), head[:80]
    with open(os.path.join(nginx.root, big_file.name), "rb") as f:
        assert body == f.read(size)
    # New streams still find the server after the rotations.
    assert fetch(socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index


# ---------------------------------------------------------------------------
# Replays and probes


class Tap:
    """A TCP forwarder that records what the client sent before the server's
    first byte: exactly a tt client's first flight."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.first_flight = bytearray()
        self.server_spoke = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)]
        self.threads[0].start()

    def _pump(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record and not self.server_spoke.is_set():
                    self.first_flight += data
                if not record:
                    self.server_spoke.set()
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self):
        """Ends both connections abruptly mid-stream, as a middlebox would."""
        for s in (self.c, self.u):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run(self):
        c, _ = self.lsock.accept()
        u = socket.create_connection(self.upstream)
        self.c, self.u = c, u
        t = threading.Thread(target=self._pump, args=(u, c, False), daemon=True)
        t.start()
        self._pump(c, u, True)
        t.join(30)
        c.close()
        u.close()

    def close(self):
        self.lsock.close()


def probe(port, payload, bytewise=False, timeout=10):
    """Connects, sends PAYLOAD, reads until the server closes. Returns
    (bytes received, seconds from connect to close)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    try:
        if bytewise:
            for b in payload:
                s.send(bytes([b]))
        elif payload:
            s.sendall(payload)
        got, _ = recv_until_eof(s, timeout)
    finally:
        s.close()
    return got, time.monotonic() - t0


def first_flight(procs, server_port, echo):
    """A real client's first flight, recorded through a tap while it opened
    a stream for real (so the server has seen it once)."""
    tap = Tap(("127.0.0.1", server_port))
    try:
        _, socks = tt_client(procs, "127.0.0.1:%d" % tap.port, name="tapped-client")
        sock = socks_open(socks, "127.0.0.1", echo)
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        sock.close()
        wait_until(tap.server_spoke.is_set, 10, "the server's first bytes through the tap")
        return bytes(tap.first_flight)
    finally:
        tap.close()


def test_cut_connection_reaches_the_application_as_a_reset(procs, echo):
    """A tt connection that ends without a FIN frame was cut by someone:
    the application gets a reset, never a clean end that could pass a
    truncated transfer off as complete."""
    port = free_port(("127.0.0.1",))
    tt_server(procs, "-l", "127.0.0.1:%d" % port)
    tap = Tap(("127.0.0.1", port))
    try:
        _, socks = tt_client(procs, "127.0.0.1:%d" % tap.port)
        sock = socks_open(socks, "127.0.0.1", echo)
        sock.sendall(b"before the cut")
        got = b""
        while len(got) < 14:
            got += sock.recv(64)
        assert got == b"before the cut"
        tap.cut()
        data, how = recv_until_eof(sock, 10)
        sock.close()
        assert (data, how) == (b"", "reset")
    finally:
        tap.close()


def test_probes_and_replays_get_the_same_silence(procs, echo):
    """Random bytes of any length (around the 50-byte authentication point
    too), a truncated first flight, a replayed one, bytes one at a time: no
    answer, and the close comes 1-2 handshake timeouts after connecting,
    never at a byte threshold. The replay makes no outbound connection."""
    port = free_port(("127.0.0.1",))
    s = tt_server(procs, "-l", "127.0.0.1:%d" % port, "--handshake-timeout", "1s", "-v")
    flight = first_flight(procs, port, echo)
    assert len(flight) > 50
    dials = count(s, r"connected to")
    assert dials == 1
    probes = {
        "nothing": (b"", False),
        "1 byte": (os.urandom(1), False),
        "49 bytes": (os.urandom(49), False),
        "50 bytes": (os.urandom(50), False),
        "51 bytes": (os.urandom(51), False),
        "5000 bytes": (os.urandom(5000), False),
        "http get": (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", False),
        "truncated flight": (flight[: len(flight) // 2], False),
        "replayed flight": (flight, False),
        "random bytewise": (os.urandom(80), True),
        "replay bytewise": (flight, True),
    }
    results = {}

    def run(name, payload, bytewise):
        results[name] = probe(port, payload, bytewise)

    threads = [threading.Thread(target=run, args=(n,) + v) for n, v in probes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for name in probes:
        got, secs = results[name]
        assert got == b"", "%s: the server answered %r" % (name, got[:40])
        assert 0.9 <= secs <= 3.0, "%s: closed after %.2fs, not within 1-2 s" % (name, secs)
    s.wait_log(r"not a tt client \(replayed hello\)")
    assert count(s, r"connected to") == dials, "a probe or replay made the server dial"


def test_fallback_makes_the_port_look_like_the_web_site(procs, nginx, echo):
    port = free_port(("127.0.0.1",))
    s = tt_server(procs, "-l", "127.0.0.1:%d" % port, "--fallback", "127.0.0.1:%d" % nginx.port,
                  "-v")
    # A browser (or a prober) asking the tt port gets the site itself.
    r = curl("http://127.0.0.1:%d/" % port, timeout=20)
    assert r.returncode == 0 and r.stdout.decode() == nginx.index
    # Garbage gets the answer nginx itself gives to the same garbage.
    junk = b"\x16\x03\x01" + os.urandom(200)
    got, _ = probe(port, junk)
    direct, _ = probe(nginx.port, junk)
    assert got.split(b"\r\n")[0] == direct.split(b"\r\n")[0] != b""
    # A replayed first flight goes to the web site too, never to a destination.
    flight = first_flight(procs, port, echo)
    dials = count(s, r"connected to")
    got, _ = probe(port, flight)
    assert got.startswith(b"HTTP/1.1 400"), got[:60]
    assert count(s, r"connected to") == dials
    # Real clients are unaffected.
    _, socks = tt_client(procs, "127.0.0.1:%d" % port, name="real-client")
    assert fetch(socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index


# ---------------------------------------------------------------------------
# Options


@pytest.mark.parametrize("args,msg", [
    (["server", "-l", "127.0.0.1"], r"missing -k"),
    (["client", "-s", "127.0.0.1"], r"missing -k"),
    (["server", "-k", "x", "-m", "rot13"], r"invalid -m"),
    (["client", "-s", "h", "-k", "x", "-m", "chacha20-poly1305,aes-256-gcm"], r"invalid -m"),
    (["server", "-k", "x", "-r", "5000-1000"], r"invalid -r"),
    (["server", "-k", "x", "-r", "0-10"], r"invalid -r"),
    (["server", "-k", "x", "--buffer-size", "0"], r"invalid --buffer-size"),
    (["server", "-k", "x", "--buffer-size", "70000"], r"invalid --buffer-size"),
    (["server", "-k", "x", "--hop-interval", "500ms"], r"--hop-interval"),
    (["server", "-k", "x", "--fallback", "nope"], r"invalid --fallback"),
    (["client", "-s", "h", "-k", "x", "--clock-offset", "soon"], r"invalid --clock-offset"),
    (["client", "-s", "tt://[::1", "-k", "x"], r"invalid --server"),
    (["server", "-k", "x", "--handshake-timeout", "0"], r"--handshake-timeout must be more than 0"),
    (["client", "-s", "h", "-k", "x", "--handshake-timeout", "0"],
     r"--handshake-timeout must be more than 0"),
])
def test_bad_carrier_options_exit_2_with_one_line(args, msg):
    r = run_tt(args)
    assert r.returncode == 2, r.stderr
    assert re.search(msg, r.stderr.splitlines()[0]), r.stderr


def test_small_buffer_size_warns_about_traffic_pattern(procs):
    port = free_port(("127.0.0.1",))
    p = tt_server(procs, "-l", "127.0.0.1:%d" % port, "--buffer-size", "1000")
    assert "below 1400" in p.log()


def test_version_flag():
    for cmd in (["server", "-V"], ["client", "--version"], ["--version"]):
        r = run_tt(cmd)
        assert r.returncode == 0 and re.match(r"tt \d+\.\d+", r.stdout), (cmd, r.stdout)
