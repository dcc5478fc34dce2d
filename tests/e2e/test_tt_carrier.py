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


@pytest.mark.parametrize("offset,ok", [(3, True), (-3, True), (9, False), (-9, False)])
def test_clock_skew_inside_and_outside_the_window(procs, echo, offset, ok):
    """A client clock within --replay-window of the server's is accepted,
    one outside it never is. A client whose clock is behind is refused
    until the server is older than its lag: the server refuses first
    flights stamped before its start (the replay memory cannot judge
    them), so such a client waits for the server's clock to pass its
    start, and then connects."""
    _, _, socks, _ = fixed_pair(procs, ("--replay-window", "5s", "--handshake-timeout", "1s"),
                                ("--clock-offset", str(offset)))

    def attempt():
        sock, rep = socks_connect(socks, "127.0.0.1", echo, timeout=15)
        if rep_code(rep) != 0:
            sock.close()
            return None, rep_code(rep)
        return sock, 0

    sock, code = attempt()
    if not ok:
        assert code == 0x01
        return
    # A lagging client is refused (each time after the server's 1-2 s of
    # silence) for at most its lag after the server's start.
    deadline = time.monotonic() + abs(offset) + 3
    while sock is None and offset < 0 and time.monotonic() < deadline:
        sock, code = attempt()
    assert sock is not None, "a clock %+d s from the server's was refused: 0x%02x" % (offset, code)
    try:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
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


class CountingEcho:
    """A destination that counts the connections made to it and echoes:
    whether a server dialled is read here, not from the server's log."""

    def __init__(self):
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _echo(self, c):
        with c:
            try:
                while True:
                    data = c.recv(65536)
                    if not data:
                        break
                    c.sendall(data)
            except OSError:
                pass

    def _run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.count += 1
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    def close(self):
        self.lsock.close()


def test_replay_after_a_restart_gets_a_probes_silence_and_no_dial(procs):
    """A real client's first flight, recorded through a tap, replayed to the
    server restarted on the same port within the replay window: the new
    process has an empty replay memory, yet it refuses the flight, because
    it is stamped before the process started. Its reaction is a probe's
    (no byte, a close 1-2 handshake timeouts after connecting, like random
    bytes sent beside it), and the destination sees no connection. A real
    client still gets through the restarted server."""
    dest = CountingEcho()
    try:
        port = free_port(("127.0.0.1",))
        args = ("-l", "127.0.0.1:%d" % port, "--handshake-timeout", "1s", "-v")
        s = tt_server(procs, *args)
        flight = first_flight(procs, port, dest.port)
        assert dest.count == 1
        assert s.terminate_and_wait() == 0
        s2 = tt_server(procs, *args, name="tt-server-restarted")
        results = {}

        def run(name, payload):
            try:
                results[name] = probe(port, payload)
            except BaseException as e:  # pytest.fail in a thread: reported below
                results[name] = e

        threads = [threading.Thread(target=run, args=(n, p))
                   for n, p in (("replay", flight), ("random", os.urandom(len(flight))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for name in ("replay", "random"):
            assert not isinstance(results[name], BaseException), "%s: %s" % (name, results[name])
            got, secs = results[name]
            assert got == b"", "%s: the restarted server answered %r" % (name, got[:40])
            assert 0.9 <= secs <= 3.0, "%s: closed after %.2fs, not within 1-2 s" % (name, secs)
        s2.wait_log(r"not a tt client \(stamped before this server started\)")
        assert dest.count == 1, "the replay made the restarted server dial the destination"
        c, socks = tt_client(procs, "127.0.0.1:%d" % port, name="client-after-restart")
        sock = socks_open(socks, "127.0.0.1", dest.port)
        sock.sendall(b"y")
        assert sock.recv(1) == b"y"
        sock.close()
        assert dest.count == 2
        assert "Likely causes" not in c.log()
    finally:
        dest.close()


def test_replay_on_another_hopping_port_of_the_server_is_refused(procs):
    """One server process on hopping ports is one replay memory: a first
    flight recorded on one of its ports, replayed on another port it
    listens on, meets a probe's silence and the destination sees nothing.
    (Hour-long slots keep the listeners still during the test.)"""
    dest = CountingEcho()
    try:
        s = tt_server(procs, "-l", "127.0.0.1", "-r", "20000-29999", "--hop-interval", "1h",
                      "--handshake-timeout", "1s", "-v")
        # The listeners are open before the server says it listens.
        ports = sorted(set(int(p) for p in re.findall(r"hopping: listening on port (\d+)",
                                                       s.log())))
        assert len(ports) >= 2, "the slots' ports coincide: %r" % ports
        flight = first_flight(procs, ports[0], dest.port)
        assert dest.count == 1
        got, secs = probe(ports[1], flight)
        assert got == b"", "the replay on another port was answered: %r" % got[:40]
        assert 0.9 <= secs <= 3.0, "closed after %.2fs, not within 1-2 s" % secs
        s.wait_log(r"not a tt client \(replayed hello\)")
        assert dest.count == 1, "the replay made the server dial the destination"
    finally:
        dest.close()


def test_wrong_key_is_explained_once_naming_the_server(procs, echo):
    """A server refuses a wrong key with a probe's silence, so only the
    client can say what that means: when the server closes, it names the
    server and the likely causes once, however many streams met the same
    refusal, and before the streams' own errors."""
    port = free_port(("127.0.0.1",))
    tt_server(procs, "-l", "127.0.0.1:%d" % port, "--handshake-timeout", "1s")
    c, socks = tt_client(procs, "127.0.0.1:%d" % port, key="not the key")
    codes = []

    def stream():
        sock, rep = socks_connect(socks, "127.0.0.1", echo, timeout=15)
        sock.close()
        codes.append(rep_code(rep))

    threads = [threading.Thread(target=stream) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stream()
    assert codes == [0x01] * 4
    log = c.log()
    said = re.findall(r"tt server 127\.0\.0\.1 \(127\.0\.0\.1:%d\) closed the connection "
                      r"[\d.]+ s after this client's first message without answering.*" % port, log)
    assert len(said) == 1, log
    for cause in ("-k", "-m", "--replay-window", "restarted"):
        assert cause in said[0], (cause, said[0])
    assert log.index(said[0]) < log.index("failed before its answer"), log


def test_wrong_key_with_a_fallback_site_is_explained_once(procs, nginx, echo):
    """With --fallback the wrong key meets the web site instead of silence:
    the client says the answer was not a tt/1 hello, once."""
    port = free_port(("127.0.0.1",))
    tt_server(procs, "-l", "127.0.0.1:%d" % port, "--fallback", "127.0.0.1:%d" % nginx.port)
    c, socks = tt_client(procs, "127.0.0.1:%d" % port, key="not the key")
    for _ in range(2):
        sock, rep = socks_connect(socks, "127.0.0.1", echo, timeout=15)
        sock.close()
        assert rep_code(rep) == 0x01
    said = re.findall(r"tt server 127\.0\.0\.1 \(127\.0\.0\.1:%d\) answered with bytes that "
                      r"are not a tt/1 hello.*" % port, c.log())
    assert len(said) == 1, c.log()
    assert "--fallback" in said[0] and "-k" in said[0]


def test_hopping_mismatch_is_explained_once_naming_the_ports(procs, echo):
    """A client whose hop settings differ from the server's finds nothing
    on the ports it computes: it says so once, naming the ports and the
    settings they come from."""
    tt_server(procs, "-l", "127.0.0.1", "-r", "20000-29999")
    c, socks = tt_client(procs, "127.0.0.1", "-r", "30000-30999")
    for _ in range(2):
        sock, rep = socks_connect(socks, "127.0.0.1", echo, timeout=30)
        sock.close()
        assert rep_code(rep) == 0x01
    said = re.findall(r"tt server 127\.0\.0\.1: no connection on ports (3\d{4}), (3\d{4}) or "
                      r"(3\d{4}), this moment's hopping ports.*", c.log())
    assert len(said) == 1, c.log()


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
    (["client", "-s", "h", "-k", "x", "--padding-profile", "tls"], r"invalid --padding-profile"),
    (["server", "-k", "x", "--frame-padding", "1025"], r"invalid --frame-padding"),
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
