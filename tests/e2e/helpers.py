"""Shared helpers for tt's end-to-end tests: processes, waits, free ports,
network namespaces and a raw SOCKS5 client.

Nothing here sleeps to synchronise: every wait polls a condition (a log
line, a port accepting, a process ending) against a deadline and fails
with a message that says what it was waiting for.
"""

import base64
import contextlib
import ctypes
import dataclasses
import hashlib
import os
import pathlib
import random
import re
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import types
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PEERS = os.path.join(HERE, "peers.py")
PYTHON = "/usr/bin/python3"

# A sanitizer report in a tt process's stderr is a failure even when the
# exit status hides it (e.g. a report from a thread before a clean exit).
SANITIZER_MARKERS = ("Sanitizer", "runtime error")

# How often a wait re-checks its condition. This is a poll interval, not a
# synchronisation delay: the wait ends as soon as the condition holds.
POLL = 0.02


def tt_bin():
    return os.environ.get("TT_BIN", os.path.join(REPO, "build-test", "tt"))


def sanitizer_env(env=None):
    """The environment for a tt process: sanitizer options that make leaks
    and undefined behaviour fail (the runner normally sets them; these are
    the same defaults for a bare `pytest` run)."""
    if env is None:
        e = dict(os.environ)
        # A LOG_LEVEL from the caller's shell would change what tt logs.
        e.pop("LOG_LEVEL", None)
    else:
        e = dict(env)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:exitcode=86")
    e.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:exitcode=87")
    return e


def sanitizer_report(text):
    """The first sanitizer line in TEXT, or None."""
    for line in text.splitlines():
        if any(m in line for m in SANITIZER_MARKERS):
            return line
    return None


def tail(text, n=40):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------------------
# Free ports

_handed_out = set()


def _bindable(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(hosts=("127.0.0.1", "::1")):
    """A TCP port free on every address in HOSTS.

    Ports come from below the kernel's ephemeral range, so an outgoing
    connection cannot take the port between this check and the bind by the
    program the test starts; ports already handed out in this run are not
    reused."""
    lo, _ = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    top = min(lo, 32768) - 1
    rng = random.Random()
    for _ in range(1000):
        port = rng.randint(20000, top)
        if port in _handed_out:
            continue
        if all(_bindable(h, port) for h in hosts):
            _handed_out.add(port)
            return port
    pytest.fail("no free TCP port found in 20000-%d" % top)


# ---------------------------------------------------------------------------
# Waits


def wait_until(cond, timeout, what):
    """Polls COND until it returns a true value, which is returned; fails
    with WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(POLL)


def port_accepts(host, port, netns=None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = netns.socket(family) if netns else socket.socket(family)
    s.settimeout(1)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def connections_to(port, state="established"):
    """How many TCP sockets on this host in STATE (an ss state: established,
    syn-sent ...) have 127.0.0.1:PORT as their peer."""
    out = subprocess.run(["ss", "-Htn", "state", state, "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def recv_exact(sock, n, what="data"):
    """Reads exactly N bytes; fails on EOF (the socket's own timeout bounds
    the wait)."""
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            pytest.fail("timed out reading %s: got %d of %d bytes: %r" % (what, len(buf), n, bytes(buf)))
        if not chunk:
            pytest.fail("EOF while reading %s: got %d of %d bytes: %r" % (what, len(buf), n, bytes(buf)))
        buf += chunk
    return bytes(buf)


def recv_until_eof(sock, timeout, limit=1 << 30):
    """Reads until EOF or a reset; returns (data, 'eof' | 'reset'). Fails if
    neither comes within TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("connection still open after %.1fs (got %d bytes)" % (timeout, len(data)))
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            pytest.fail("connection still open after %.1fs (got %d bytes)" % (timeout, len(data)))
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk
        if len(data) > limit:
            pytest.fail("more than %d bytes before EOF" % limit)


def read_to_end(s, wait):
    """Reads S until the peer ends it or WAIT seconds pass: (bytes, 'FIN',
    'reset' or 'open')."""
    s.settimeout(wait)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return got, "FIN"
            got += d
    except ConnectionResetError:
        return got, "reset"
    except socket.timeout:
        return got, "open"



def tls_probe(port, steps, wait):
    """A TLS connection to 127.0.0.1:PORT (memory BIOs, so that close_notify
    shows) that takes STEPS after its handshake: bytes to send, seconds to
    pause, "close_notify" or "FIN" (TCP's, without close_notify); then reads
    for up to WAIT seconds. Returns (plaintext received, how the connection
    ended: 'FIN', 'reset' or 'open', whether close_notify came, bytes
    received, seconds from the connect)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="tunnel.test")
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
                d = s.recv(65536)
                if not d:
                    return b"", "FIN during the handshake", False, time.monotonic() - t0
                inc.write(d)
        s.sendall(out.read())
        for st in steps:
            if isinstance(st, float):
                time.sleep(st)  # the prober's own pace, not a synchronisation
            elif st == "close_notify":
                try:
                    obj.unwrap()
                except ssl.SSLWantReadError:
                    pass
                s.sendall(out.read())
            elif st == "FIN":
                s.shutdown(socket.SHUT_WR)
            else:
                obj.write(st)
                s.sendall(out.read())
        raw, how = read_to_end(s, wait)
        inc.write(raw)
        plain, notify = b"", False
        try:
            while True:
                d = obj.read(65536)
                if not d:
                    notify = True
                    break
                plain += d
        except ssl.SSLZeroReturnError:
            notify = True
        except ssl.SSLError:
            pass
        # The bytes on the wire too: their count tells the records apart
        # (tickets, answer, close_notify) when the plaintext cannot be read
        # after the client's own close_notify.
        return plain, how, notify, len(raw), time.monotonic() - t0
    finally:
        s.close()


# ---------------------------------------------------------------------------
# Processes


class Proc:
    """One child process with its stderr (and stdout) captured in a file."""

    def __init__(self, name, argv, popen, log_path, is_tt):
        self.name = name
        self.argv = argv
        self.popen = popen
        self.log_path = log_path
        self.is_tt = is_tt
        self.killed = False  # deliberately SIGKILLed: exit status not checked
        self.reaped = False

    @property
    def pid(self):
        return self.popen.pid

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.popen.poll() is None

    def wait_log(self, pattern, timeout=15):
        """Waits for a line matching the regex PATTERN in the process's
        stderr; returns the match. Fails early if the process exits."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            m = rx.search(text)
            if m:
                return m
            if self.popen.poll() is not None:
                m = rx.search(self.log())
                if m:
                    return m
                pytest.fail("%s exited with status %s before logging /%s/; its stderr:\n%s"
                            % (self.name, self.popen.returncode, pattern, tail(self.log())))
            if time.monotonic() > deadline:
                pytest.fail("%s did not log /%s/ within %.0fs; its stderr:\n%s"
                            % (self.name, pattern, timeout, tail(text)))
            time.sleep(POLL)

    def kill(self):
        """SIGKILL, for tests about a peer vanishing."""
        self.killed = True
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate_and_wait(self, timeout=30):
        """SIGTERM and wait; returns the exit status. The process manager
        still checks it at teardown."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("%s (pid %d) did not exit within %ds of SIGTERM" % (self.name, self.pid, timeout))


class ProcessManager:
    """Starts processes for one test and, at teardown, stops every one of
    them by pid: SIGTERM, a bounded wait, SIGKILL if that fails. Each tt
    process must then have exited 0 with no sanitizer report in its stderr;
    anything else fails the test."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []
        self.netnses = []
        self._n = 0

    def start(self, argv, name=None, netns=None, env=None, is_tt=False):
        self._n += 1
        name = name or os.path.basename(argv[0])
        log_path = os.path.join(self.workdir, "%02d-%s.log" % (self._n, re.sub(r"\W", "_", name)))
        if netns is not None:
            argv = ["ip", "netns", "exec", netns.name] + list(argv)
        logf = open(log_path, "wb")
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     env=env if env is not None else sanitizer_env())
        finally:
            logf.close()
        p = Proc(name, argv, popen, log_path, is_tt)
        self.procs.append(p)
        return p

    def tt(self, args, name, netns=None, env=None, prefix=()):
        """Starts tt with ARGS. PREFIX is a command that execs tt in its own
        process (e.g. prlimit), so the pid stays tt's."""
        env = sanitizer_env(env)
        # A self-signed certificate is kept in the state directory: one of
        # the test's own, so that tests neither share one nor leave one.
        env.setdefault("TT_STATE_DIR", self.workdir)
        return self.start(list(prefix) + [tt_bin()] + list(args), name=name, netns=netns,
                          env=env, is_tt=True)

    def peer(self, mode, *args, host="127.0.0.1", netns=None, name=None):
        """Starts a helper server from peers.py on HOST, port chosen by the
        kernel; returns (proc, port) once it listens."""
        p = self.start([PYTHON, PEERS, mode, "--host", host] + [str(a) for a in args],
                       name=name or "peer-" + mode, netns=netns, env=dict(os.environ))
        port = int(p.wait_log(r"^listening on \S+ port (\d+)$").group(1))
        return p, port

    def discard(self, p):
        """Forgets a process that failed to start for a reason outside the
        test (a port taken meanwhile); it must already have exited."""
        p.popen.wait(timeout=30)
        p.reaped = True

    def cleanup(self):
        errors = []
        live = [p for p in self.procs if not p.reaped]
        for p in live:
            if p.popen.poll() is None:
                try:
                    p.popen.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in live:
            p.reaped = True
            try:
                p.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.popen.send_signal(signal.SIGKILL)
                p.popen.wait(timeout=10)
                errors.append("%s (pid %d) did not exit within 30s of SIGTERM" % (p.name, p.pid))
                continue
            if not p.is_tt or p.killed:
                continue
            text = p.log()
            rc = p.popen.returncode
            if rc != 0:
                errors.append("%s (pid %d) exited with status %s after SIGTERM; stderr:\n%s"
                              % (p.name, p.pid, rc, tail(text)))
            elif sanitizer_report(text):
                errors.append("%s (pid %d): sanitizer report in stderr:\n%s" % (p.name, p.pid, tail(text, 60)))
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


def run_tt(args, env=None, timeout=15, netns=None):
    """Runs tt to completion (for commands that are meant to exit); returns
    the CompletedProcess after checking there was no sanitizer report."""
    argv = [tt_bin()] + list(args)
    if netns is not None:
        argv = ["ip", "netns", "exec", netns.name] + argv
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=sanitizer_env(env), timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("tt %s was still running after %ds (expected it to exit); stderr:\n%s"
                    % (" ".join(args), timeout, (e.stderr or b"").decode(errors="replace")))
    report = sanitizer_report(r.stderr)
    assert report is None, "sanitizer report from tt %s:\n%s" % (" ".join(args), r.stderr)
    return r


# ---------------------------------------------------------------------------
# curl


# The start of every nginx.conf a test writes (a str.format template: {tmp}
# is the test's directory): one process in the foreground, every path of its
# own under {tmp}. The caller adds its server blocks and closes "http {".
NGINX_PRELUDE = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
"""


# The lines of an nginx location that passes WebSocket upgrades on to
# 127.0.0.1:{upstream} (a str.format template inside a server block).
NGINX_WS_PROXY = """\
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 300s;
"""


def start_nginx(procs, base, name, conf_for, ready):
    """Starts an nginx of the test's own: CONF_FOR(tmp, port) gives its
    nginx.conf for a free port on 127.0.0.1, written in BASE/NAME<n>; waits
    until READY(port) is true. Tries another port if the one chosen was
    taken meanwhile. Returns the port."""
    for attempt in range(3):
        tmp = base / ("%s%d" % (name, attempt))
        tmp.mkdir()
        port = free_port(("127.0.0.1",))
        conf = tmp / "nginx.conf"
        conf.write_text(conf_for(tmp, port))
        p = procs.start(["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
                        name=name)

        def up():
            if p.popen.poll() is not None:
                return "exited"
            return port_accepts("127.0.0.1", port) and ready(port)

        if wait_until(up, 15, "%s to serve on 127.0.0.1:%d" % (name, port)) is True:
            return port
        err = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
        procs.discard(p)
        if "Address already in use" not in err + p.log():
            pytest.fail("nginx exited with %s:\n%s\n%s" % (p.popen.returncode, p.log(), err))
    pytest.fail("could not find a free port for nginx")


# ---------------------------------------------------------------------------
# unbound

UNBOUND_CONF = """\
server:
{interfaces}    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: "{logfile}"
    verbosity: {verbosity}
    chroot: ""
    username: ""
    directory: "{tmp}"
    pidfile: "{tmp}/unbound.pid"
    access-control: {allow} allow
    do-not-query-localhost: no
{server_lines}{stubs}remote-control:
    control-enable: no
"""


class Unbound:
    """A real unbound of the test's own, with its configuration written in
    TMP (a directory of the test) and checked by unbound-checkconf first.

    HOST, PORT: where it answers over UDP and TCP (PORT None: a free one).
    STUBS: (zone, address, port) triples, stub zones to an authority (the
    tt server under test). TLS: (cert, key) PEM files to serve DNS over
    TLS (RFC 7858) on a port of its own too, .tls_port. SERVER_LINES: more
    lines for the server: clause, each without indent (local-zone,
    local-data, tcp-idle-timeout, https-port ...). ALLOW: the clients'
    range. LOG: a log file (.log) instead of stderr; VERBOSITY its level.
    NETNS: started in that namespace (HOST must be one of its addresses).

    Returns once every port accepts TCP (unbound binds TCP after UDP);
    a test that needs more (the stub zone answering) waits for that
    itself."""

    def __init__(self, procs, tmp, host="127.0.0.1", port=None, stubs=(), tls=None,
                 server_lines=(), allow="127.0.0.0/8", log=True, verbosity=1, netns=None,
                 name="unbound"):
        tmp = pathlib.Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port if port is not None else free_port((host,))
        self.addr = (host, self.port)
        self.tls_port = None
        interfaces = "    interface: %s@%d\n" % (host, self.port)
        lines = list(server_lines)
        if tls is not None:
            self.tls_port = free_port((host,))
            interfaces += "    interface: %s@%d\n" % (host, self.tls_port)
            lines += ["tls-port: %d" % self.tls_port, 'tls-service-pem: "%s"' % tls[0],
                      'tls-service-key: "%s"' % tls[1]]
        stub_text = "".join('stub-zone:\n    name: "%s"\n    stub-addr: %s@%d\n' % s
                            for s in stubs)
        self.log = tmp / "unbound.log" if log else None
        self.conf = tmp / "unbound.conf"
        self.conf.write_text(UNBOUND_CONF.format(
            interfaces=interfaces, logfile=self.log or "", verbosity=verbosity, tmp=tmp,
            allow=allow, server_lines="".join("    %s\n" % x for x in lines), stubs=stub_text))
        check = subprocess.run(["unbound-checkconf", str(self.conf)], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = procs.start(["unbound", "-d", "-c", str(self.conf)], name=name, netns=netns,
                                env=dict(os.environ))
        for p in (self.port, self.tls_port):
            if p is not None:
                wait_until(lambda p=p: self._up(p, netns), 15, "%s listening on %s:%d"
                           % (name, host, p))

    def _up(self, port, netns):
        if self.proc.popen.poll() is not None:
            pytest.fail("unbound exited with %s:\n%s\n%s" % (
                self.proc.popen.returncode, self.proc.log(),
                self.log.read_text() if self.log and self.log.exists() else ""))
        return port_accepts(self.host, port, netns)

    def log_text(self):
        """What unbound logged so far (its file, or its stderr)."""
        if self.log is None:
            return self.proc.log()
        return self.log.read_text() if self.log.exists() else ""


def curl(*args, timeout=60):
    """Runs curl; returns the CompletedProcess (stdout as bytes)."""
    try:
        return subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + list(args),
                              capture_output=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        pytest.fail("curl %s did not finish" % " ".join(args))


# ---------------------------------------------------------------------------
# Carriers

# The key of every carrier that needs one: a `tt keygen`-style key (base64 of
# 32 bytes) is used as is, so no process spends its start-up on scrypt.
CARRIER_KEY = base64.b64encode(os.urandom(32)).decode()

# The certificate fingerprint a tls:// or wss:// server logs at start.
PIN_RE = r"SHA-256 ([0-9A-F]{2}(?::[0-9A-F]{2}){31})\b"


@dataclasses.dataclass(frozen=True)
class Carrier:
    """How the tests reach a far end over one carrier: the URLs, the options
    both ends need, and what the far end is. CARRIERS holds one per carrier;
    every test that takes the `carrier` fixture runs over each of them.

    scheme    the URL scheme (`-l` of the server, `-s` of the client)
    path      appended to both URLs (ws://, wss://)
    key       both ends get `-k CARRIER_KEY`
    tls       the server makes a self-signed certificate and logs its
              fingerprint; the client gets `--pin` with it
    mux       the client may add `--mux`
    far_end   "tt": a tt server. "socks5": a SOCKS5 proxy (`ssh -D` to a
              private sshd) for a client-only carrier that opens each stream
              as a SOCKS5 CONNECT: no tt server options (--allow,
              --resolver ...). Tests ask `tt_far_end` before using what only
              a tt server has.
    half_close the far end passes a half-close on (ssh -D does; microsocks
              does not: it closes both ways at the first EOF, and with
              its blocking writes a full-duplex bulk echo stalls it)
    reply_codes the far end answers a failed CONNECT with its reply code
              (ssh -D closes the connection without a reply)
    """

    scheme: str
    path: str = ""
    key: bool = False
    tls: bool = False
    mux: bool = True
    far_end: str = "tt"
    half_close: bool = True
    reply_codes: bool = True

    @property
    def name(self):
        return self.scheme

    @property
    def tt_far_end(self):
        return self.far_end == "tt"

    def url(self, host, port):
        h = "[%s]" % host if ":" in host else host
        return "%s://%s:%d%s" % (self.scheme, h, port, self.path)

    def server_args(self):
        return ["-k", CARRIER_KEY] if self.key else []

    def client_args(self, pin=None):
        args = ["-k", CARRIER_KEY] if self.key else []
        if self.tls:
            assert pin, "a %s:// client needs the server's certificate fingerprint" % self.scheme
            args += ["--pin", pin]
        return args


# Every carrier, one entry each. A new carrier gets the common tests
# (test_every_carrier.py) with one more line here. socks5:// is client-only:
# its far end is an existing SOCKS5 proxy, for which start_server starts
# ssh -D.
CARRIERS = [
    Carrier("tcp"),
    Carrier("tt", key=True),
    Carrier("tls", key=True, tls=True),
    Carrier("ws", path="/tun", key=True),
    Carrier("wss", path="/tun", key=True, tls=True),
    Carrier("http", path="/tun", key=True),
    Carrier("https", path="/tun", key=True, tls=True),
    Carrier("socks5", mux=False, far_end="socks5", reply_codes=False),
]
TCP = CARRIERS[0]


def carrier_named(name):
    return next(c for c in CARRIERS if c.name == name)


# ---------------------------------------------------------------------------
# tt server and client


class TTServer:
    """A running far end: its process, address, the URL a client gives as
    -s, and the options a client needs for it (key, pin)."""

    def __init__(self, proc, host, port, carrier=TCP, pin=None):
        self.proc = proc
        self.host = host
        self.port = port
        self.carrier = carrier
        self.pin = pin

    @property
    def url(self):
        return self.carrier.url(self.host, self.port)

    @property
    def client_args(self):
        return self.carrier.client_args(self.pin)


class TTClient:
    def __init__(self, proc, socks_port, forward_ports):
        self.proc = proc
        self.socks_port = socks_port
        self.forward_ports = forward_ports

    @property
    def socks(self):
        return ("127.0.0.1", self.socks_port)


def start_server(pm, args=(), netns=None, name="tt-server", carrier=TCP):
    """Starts the far end of CARRIER on 127.0.0.1 with the tt server options
    ARGS (and the carrier's own), once it listens."""
    if not carrier.tt_far_end:
        return _start_socks5_far_end(pm, args, netns, name, carrier)
    # Another test run on this machine may take the port between the check
    # and tt's bind; then try another port.
    for attempt in range(3):
        port = free_port()
        url = carrier.url("127.0.0.1", port)
        p = pm.tt(["server", "-l", url] + carrier.server_args() + list(args), name=name,
                  netns=netns)
        m = p.wait_log(r"tt server listening on %s(?![^\s(,])|(address already in use)"
                       % re.escape(url))
        if not m.group(1):
            pin = None
            if carrier.tls:
                pin = re.search(PIN_RE, p.log()).group(1)
            return TTServer(p, "127.0.0.1", port, carrier, pin)
        pm.discard(p)
    pytest.fail("could not find a free port for the tt server")


def _start_socks5_far_end(pm, args, netns, name, carrier):
    """`ssh -D` to a private sshd, the far end of a carrier that speaks
    SOCKS5 to an existing proxy. It reaches every destination, so --allow is
    implied; other tt server options have no meaning for it."""
    rest = list(args)
    while "--allow" in rest:
        i = rest.index("--allow")
        del rest[i:i + 2]
    if rest or netns is not None:
        pytest.fail("%s:// has a SOCKS5 proxy as far end: no tt server options %s, no namespace"
                    % (carrier.scheme, rest))
    sshd = start_sshd(pm, os.path.join(pm.workdir, "sshd-%d" % len(pm.procs)))
    proc, port = start_ssh_d(pm, sshd)
    return TTServer(proc, "127.0.0.1", port, carrier)


def start_sshd(pm, workdir, host="127.0.0.1", netns=None):
    """A private sshd on HOST (in NETNS, a NetNs, if given) with its own host
    key (files in the new directory WORKDIR), accepting root with its own
    client key (public key only). Returns its `port`, `proc`, `key` (the
    client key), `command` (an ssh command line, a list, for it without a
    destination) and `env` (an environment without an ssh agent)."""
    assert os.geteuid() == 0, "a private sshd needs root (the test suite runs as root)"
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    d = pathlib.Path(workdir)
    d.mkdir()
    for k in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / k)],
                       check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = free_port(("127.0.0.1",))
    (d / "sshd_config").write_text("\n".join([
        "ListenAddress %s:%d" % ("[%s]" % host if ":" in host else host, port),
        "HostKey %s" % (d / "host_key"),
        "AuthorizedKeysFile %s" % (d / "authorized_keys"),
        "PidFile %s" % (d / "sshd.pid"),
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AllowTcpForwarding yes",
    ]) + "\n")
    p = pm.start(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], name="sshd",
                 netns=netns, env=dict(os.environ))
    wait_until(lambda: p.popen.poll() is not None or port_accepts(host, port, netns), 15,
               "sshd to listen")
    assert p.popen.poll() is None, p.log()
    command = ["ssh", "-F", "/dev/null", "-i", str(d / "client_key"), "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-p", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return types.SimpleNamespace(port=port, dir=d, key=str(d / "client_key"), command=command,
                                 env=env, proc=p)


def start_ssh_d(pm, sshd):
    """`ssh -N -D` logged in to SSHD (start_sshd): a SOCKS5 proxy whose
    connections leave from the sshd's side. Returns the ssh process and its
    SOCKS port."""
    socks = free_port(("127.0.0.1",))
    c = pm.start(sshd.command + ["-N", "-D", "127.0.0.1:%d" % socks, "-o", "BatchMode=yes",
                                 "-o", "LogLevel=ERROR", "root@127.0.0.1"],
                 name="ssh-D", env=sshd.env)
    # ssh opens its -D port once it has logged in.
    wait_until(lambda: c.popen.poll() is not None or port_accepts("127.0.0.1", socks), 30,
               "ssh -D to listen")
    assert c.popen.poll() is None, c.log() + sshd.proc.log()
    return c, socks


def start_client(pm, server_url, args=(), socks=True, forwards=(), netns=None, name="tt-client",
                 prefix=(), env=None):
    """Starts a client whose SOCKS5 proxy (unless SOCKS is false) and -L
    forwards listen on kernel-chosen loopback ports, read back from its log.
    FORWARDS are DEST strings; each gets its own listener."""
    argv = ["client", "-s", server_url, "-l", "127.0.0.1:0" if socks else "none"]
    for dest in forwards:
        argv += ["-L", "127.0.0.1:0=%s" % dest]
    p = pm.tt(argv + list(args), name=name, netns=netns, prefix=prefix, env=env)
    socks_port = None
    if socks:
        socks_port = int(p.wait_log(r"SOCKS5 proxy listening on 127\.0\.0\.1:(\d+)").group(1))
    fports = []
    for dest in forwards:
        m = p.wait_log(r"forward listening on 127\.0\.0\.1:(\d+) -> %s\b" % re.escape(dest))
        fports.append(int(m.group(1)))
    return TTClient(p, socks_port, fports)


def start_client_of(pm, server, args=(), mux=False, url=None, **kw):
    """start_client for the far end SERVER: its URL (or URL, another address
    for the same carrier) and the options its carrier needs (key, pin),
    --mux if MUX, then ARGS."""
    return start_client(pm, url or server.url,
                        server.client_args + (["--mux"] if mux else []) + list(args), **kw)


# ---------------------------------------------------------------------------
# Network namespaces

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetNs:
    """A network namespace of the test's own with only `lo` up: nothing
    sent inside it can leave the machine. Its resolv.conf names 127.0.0.1,
    where nothing listens, so names fail to resolve without any traffic."""

    def __init__(self):
        self.name = "tt-e2e-" + uuid.uuid4().hex[:10]
        self.etc = "/etc/netns/" + self.name
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            os.makedirs(self.etc)
            with open(os.path.join(self.etc, "resolv.conf"), "w") as f:
                f.write("nameserver 127.0.0.1\n")
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    def ip(self, *args):
        r = subprocess.run(["ip", "-n", self.name] + list(args), capture_output=True, text=True)
        assert r.returncode == 0, "ip -n %s %s: %s" % (self.name, " ".join(args), r.stderr)

    @contextlib.contextmanager
    def entered(self):
        """Runs the block with this thread in the namespace. Sockets keep the
        namespace they were created in, so sockets made here work inside it
        after the block."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "setns into %s: %s" % (self.name, os.strerror(e)))
            try:
                yield
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    # Carrying on in the wrong namespace would be worse.
                    os._exit(99)
        finally:
            os.close(own)
            os.close(target)

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        with self.entered():
            return socket.socket(family, type)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)


# ---------------------------------------------------------------------------
# Raw SOCKS5

ATYP_V4, ATYP_NAME, ATYP_V6 = 1, 3, 4
CMD_CONNECT, CMD_BIND, CMD_UDP = 1, 2, 3
# Reply codes (RFC 1928 6).
GENERAL, NOT_ALLOWED, NET_UNREACH, HOST_UNREACH, REFUSED, TTL_EXPIRED, CMD_UNSUPPORTED, \
    ATYP_UNSUPPORTED = range(1, 9)


def connect(addr, netns=None, timeout=10):
    host = addr[0]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = netns.socket(family) if netns else socket.socket(family)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def encode_addr(host):
    """SOCKS5 ATYP + DST.ADDR for an IPv4/IPv6 literal or a name."""
    try:
        return bytes([ATYP_V4]) + socket.inet_pton(socket.AF_INET, host)
    except OSError:
        pass
    try:
        return bytes([ATYP_V6]) + socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        pass
    b = host.encode()
    return bytes([ATYP_NAME, len(b)]) + b


def request(cmd, host, port):
    return bytes([5, cmd, 0]) + encode_addr(host) + struct.pack(">H", port)


def greet(sock, methods=(0,)):
    """Sends a greeting; returns the 2-byte method selection."""
    sock.sendall(bytes([5, len(methods)]) + bytes(methods))
    return recv_exact(sock, 2, "SOCKS5 method selection")


def auth(sock, user, password):
    u, p = user.encode(), password.encode()
    sock.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
    return recv_exact(sock, 2, "SOCKS5 authentication status")


def read_reply(sock):
    """Reads a whole SOCKS5 reply; returns its bytes."""
    head = recv_exact(sock, 4, "SOCKS5 reply header")
    assert head[0] == 5, "reply VER is %d, not 5: %r" % (head[0], head)
    atyp = head[3]
    if atyp == ATYP_V4:
        rest = recv_exact(sock, 6, "SOCKS5 reply address")
    elif atyp == ATYP_V6:
        rest = recv_exact(sock, 18, "SOCKS5 reply address")
    elif atyp == ATYP_NAME:
        n = recv_exact(sock, 1, "SOCKS5 reply name length")
        rest = n + recv_exact(sock, n[0] + 2, "SOCKS5 reply name")
    else:
        pytest.fail("SOCKS5 reply with bad ATYP %d: %r" % (atyp, head))
    return head + rest


def socks_connect(proxy, host, port, netns=None, user=None, password=None, timeout=10):
    """Opens a raw socket to PROXY and asks for a CONNECT to HOST:PORT.
    Returns (socket, reply bytes); the caller checks the reply."""
    s = connect(proxy, netns=netns, timeout=timeout)
    if user is None:
        assert greet(s, (0,)) == b"\x05\x00"
    else:
        assert greet(s, (2,)) == b"\x05\x02"
        assert auth(s, user, password) == b"\x01\x00"
    s.sendall(request(CMD_CONNECT, host, port))
    return s, read_reply(s)


def socks_request(proxy, host, port, netns=None):
    """Opens a raw socket to PROXY and sends a CONNECT to HOST:PORT without
    reading the reply."""
    s = connect(proxy, netns=netns)
    assert greet(s) == b"\x05\x00"
    s.sendall(request(CMD_CONNECT, host, port))
    return s


def expect_reply(proxy, host, port, rep, netns=None):
    """CONNECT HOST:PORT through PROXY; the reply must carry REP, and the
    proxy must then close the connection."""
    s, reply = socks_connect(proxy, host, port, netns=netns)
    with s:
        assert reply[:3] == bytes([5, rep, 0]), \
            "CONNECT %s:%d: expected reply code 0x%02x, got %r" % (host, port, rep, reply)
        rest, _ = recv_until_eof(s, 10)
        assert rest == b"", "data after a failure reply: %r" % rest
    return reply


def socks_open(proxy, host, port, **kw):
    """A socket carrying a successful CONNECT through PROXY."""
    s, rep = socks_connect(proxy, host, port, **kw)
    if rep[1] != 0:
        s.close()
        pytest.fail("CONNECT %s:%d through %s:%d failed: reply code 0x%02x (%r)"
                    % (host, port, proxy[0], proxy[1], rep[1], rep))
    return s


def rep_code(reply):
    return reply[1]


def bulk_echo(socks, echo_port, size=4 << 20):
    """SIZE random bytes through the echo server, both ways at once,
    byte-compared."""
    payload = os.urandom(size)
    with socks_open(socks, "127.0.0.1", echo_port) as s:
        s.settimeout(30)
        got = bytearray()
        sent = 0
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while len(got) < size:
            events = sel.select(timeout=30)
            assert events, "transfer stalled at %d/%d sent, %d received" % (sent, size, len(got))
            for _, mask in events:
                if mask & selectors.EVENT_WRITE and sent < size:
                    sent += s.send(payload[sent:sent + 65536])
                    if sent == size:
                        sel.modify(s, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    chunk = s.recv(1 << 16)
                    assert chunk, "EOF after %d bytes" % len(got)
                    got += chunk
        sel.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def halfclose_exchange(s, body_size=100000):
    """Over S, connected to a `halfclose` peer started with --body-size
    BODY_SIZE: sends 300000 random bytes and a FIN, then checks that the
    peer's answer (its digest of them, and its own body) arrives after the
    FIN, to the end."""
    body = os.urandom(300000)
    s.sendall(body)
    s.shutdown(socket.SHUT_WR)
    data, how = recv_until_eof(s, 30)
    assert how == "eof"
    head, _, rest = data.partition(b"\n")
    digest, n, blen, bdigest = head.decode().split()
    assert (digest, int(n)) == (hashlib.sha256(body).hexdigest(), len(body))
    assert int(blen) == len(rest) == body_size and hashlib.sha256(rest).hexdigest() == bdigest


MB = 1 << 20


def upload_random(s, mbytes, seed=2026):
    """Sends MBYTES MiB of seeded random bytes over S, then a FIN; returns
    their sha256 (hex)."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    for _ in range(mbytes):
        chunk = rng.randbytes(MB)
        h.update(chunk)
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    return h.hexdigest()


def read_halfclose_answer(s, before_body=None):
    """Reads the answer of the `halfclose` peer (peers.py) to the end: its
    line with the sha256 and length of what it read, then a body whose
    sha256 the line gives, which must arrive whole and intact, then EOF.
    BEFORE_BODY(), if given, runs once the first MiB of the body is in.
    Returns the upload's (sha256, length)."""
    head = b""
    while not head.endswith(b"\n"):
        b = s.recv(1)
        assert b, "the stream ended before the answer"
        head += b
    digest, n, body_len, body_sha = head.decode().split()
    got = hashlib.sha256()
    left = int(body_len)
    while left:
        b = s.recv(min(left, 1 << 20))
        assert b, "the download ended %d bytes short" % left
        got.update(b)
        left -= len(b)
        if before_body and int(body_len) - left >= MB:
            before_body()
            before_body = None
    assert got.hexdigest() == body_sha, "the download arrived changed"
    rest, how = recv_until_eof(s, 30)
    assert (rest, how) == (b"", "eof")
    return digest, int(n)


# ---------------------------------------------------------------------------
# A fault-injecting TCP proxy


class CuttingProxy:
    """A fault-injecting TCP proxy on 127.0.0.1 to TARGET_PORT. With
    cut_randomly(LO, HI) it resets every connection through it (or through
    the proxies in VICTIMS: the legs of a split session, cut while another
    leg carries the data) each time a random amount of bytes in that range
    has passed in one direction since the last cut, and counts the cuts per
    direction. With `blackout` set, new connections are reset at once (the
    server looks unreachable). It keeps the first bytes of each client
    connection (`firsts`), where a join is, and counts the bytes that passed
    each way (`bytes`, "up" from the client)."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        self.firsts = []
        self.cuts = {"up": 0, "down": 0}
        self.since = {"up": 0, "down": 0}
        self.cut_every = None
        self.victims = [self]
        self.bytes = {"up": 0, "down": 0}
        self.accepted = []  # time.monotonic() of each connection's accept
        self.max_cuts = 0
        self.blackout = False
        self.rng = random.Random(13)
        # pause(DIRECTION) stops reading that direction's source until
        # unpause: the sender's writes then back up, as behind a peer that
        # never reads.
        self.flowing = {"up": threading.Event(), "down": threading.Event()}
        self.flowing["up"].set()
        self.flowing["down"].set()
        self.next_cut = {}
        self.closed = False
        # The pairs cut, by id; the pairs are kept so that no later pair
        # gets the id of a freed one.
        self.cut = {}
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _draw(self, direction):
        lo, hi = self.cut_every
        self.next_cut[direction] = self.rng.randint(lo, hi)

    def cut_randomly(self, lo, hi, max_cuts=1000, victims=None):
        with self.lock:
            self.victims = victims or [self]
            self.cut_every = (lo, hi)
            self.max_cuts = max_cuts
            self._draw("up")
            self._draw("down")
            self.since = {"up": 0, "down": 0}

    def stop_cutting(self):
        with self.lock:
            self.cut_every = None

    def pause(self, direction):
        self.flowing[direction].clear()

    def unpause(self, direction):
        self.flowing[direction].set()

    @staticmethod
    def _reset(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        sock.close()

    def cut_all(self):
        """Resets every connection. A close alone would not do it while a
        pump thread is blocked reading the socket (the kernel keeps the
        file open until that read returns), so reading is shut down first,
        which wakes it; the pumps see `cut` and pass nothing on."""
        with self.lock:
            conns, self.conns = self.conns, []
            self.cut.update((id(p), p) for p in conns)
        for a, b in conns:
            for x in (a, b):
                try:
                    x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    x.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        for a, b in conns:
            a.close()
            b.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            if self.blackout:
                self._reset(c)
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._reset(c)
                continue
            u.settimeout(None)
            # Bytes go on as they come: with Nagle a small write (a TLS
            # handshake message, a join) could wait for a delayed ACK.
            for x in (c, u):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (c, u)
            with self.lock:
                self.conns.append(pair)
            threading.Thread(target=self._pump, args=(c, u, "up", pair, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, "down", pair, False),
                             daemon=True).start()

    def _pump(self, src, dst, direction, pair, first):
        head = b""
        try:
            while True:
                self.flowing[direction].wait()
                data = src.recv(1 << 16)
                if not data:
                    if id(pair) not in self.cut:
                        dst.shutdown(socket.SHUT_WR)
                    return
                if first and len(head) < 73:
                    head += data[:73 - len(head)]
                    if len(head) == 73:
                        with self.lock:
                            self.firsts.append(head)
                # Counted before they go on: a test that reads `bytes` as soon
                # as the last of them arrived must find them there.
                with self.lock:
                    self.bytes[direction] += len(data)
                dst.sendall(data)
                cut = False
                with self.lock:
                    if self.cut_every and sum(self.cuts.values()) < self.max_cuts:
                        self.since[direction] += len(data)
                        if self.since[direction] >= self.next_cut[direction]:
                            self.cuts[direction] += 1
                            self.since[direction] = 0
                            self._draw(direction)
                            cut = True
                if cut:
                    victims = self.victims
                    for v in victims:
                        v.cut_all()
                    if self in victims:
                        return
        except OSError:
            return

    def close(self):
        self.closed = True
        self.lsock.close()
        self.cut_all()
        for e in self.flowing.values():
            e.set()


class PostDropper(CuttingProxy):
    """A CuttingProxy for the HTTP streaming carrier (docs/HTTP.md) that
    loses POSTs: it reads the requests each client connection carries, and
    at the POSTs numbered in VICTIMS (0, 1, ... in the order their heads
    arrive, counting only POSTs with a body of at least 64 KiB) passes the
    head and half of the body, then, by MODE, resets the connection both
    ways ("cut") or passes nothing more either way while keeping it open,
    so that the answer never comes ("hold"). `dropped` counts the POSTs it
    lost; `posts` all it saw."""

    def __init__(self, target_port, victims, mode):
        self.drop_victims = set(victims)
        self.mode = mode
        self.posts = 0
        self.dropped = 0
        self.held = {}  # the connection pairs held silent, by id
        super().__init__(target_port)

    def _pump(self, src, dst, direction, pair, first):
        if direction == "up":
            self._requests(src, dst, pair)
            return
        try:
            while True:
                data = src.recv(1 << 16)
                if id(pair) in self.held or id(pair) in self.cut:
                    return
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            return

    def _requests(self, src, dst, pair):
        buf = b""
        body_left = 0  # bytes of the current body still to pass
        drop_at = None  # pass this many more, then lose the POST
        try:
            while True:
                data = src.recv(1 << 16)
                if not data or id(pair) in self.cut:
                    if id(pair) not in self.cut:
                        dst.shutdown(socket.SHUT_WR)
                    return
                buf += data
                while buf:
                    if body_left:
                        n = min(body_left, len(buf))
                        if drop_at is not None and n >= drop_at:
                            dst.sendall(buf[:drop_at])
                            self._lose(pair)
                            return
                        dst.sendall(buf[:n])
                        buf = buf[n:]
                        body_left -= n
                        if drop_at is not None:
                            drop_at -= n
                        continue
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head, buf = buf[:end + 4], buf[end + 4:]
                    dst.sendall(head)
                    m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
                    body_left = int(m.group(1)) if m else 0
                    drop_at = None
                    if head.startswith(b"POST ") and body_left >= 65536:
                        with self.lock:
                            if self.posts in self.drop_victims:
                                drop_at = body_left // 2
                            self.posts += 1
        except OSError:
            return

    def _lose(self, pair):
        with self.lock:
            self.dropped += 1
            if self.mode == "hold":
                # Both sockets stay open and silent until close().
                self.held[id(pair)] = pair
                return
            self.conns.remove(pair)
            self.cut[id(pair)] = pair
        # As in cut_all: reading is shut down first, which wakes the other
        # pump; it sees the pair cut and passes nothing on.
        for x in pair:
            try:
                x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                x.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        for x in pair:
            x.close()


# ---------------------------------------------------------------------------
# A DNS server that holds its answers


class HeldDns:
    """A DNS server on 127.0.0.1 that answers nothing until release(): then
    every A query with 127.0.0.1 and every other query with no records."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.asked = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        held = []
        while True:
            try:
                data, addr = self.sock.recvfrom(2048)
            except OSError:
                return
            self.queries += 1
            self.asked.set()
            held.append((data, addr))
            if not self.released.is_set():
                continue
            try:
                for q, a in held:
                    self.sock.sendto(self._answer(q), a)
            except OSError:
                return  # closed at the test's end while answering
            held = []

    def release(self):
        # The thread answers what it holds at its next query; a query to
        # ourselves wakes it.
        self.released.set()
        poke = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        poke.sendto(b"\0" * 12, ("127.0.0.1", self.port))
        poke.close()

    @staticmethod
    def _answer(q):
        if len(q) < 17:
            return q[:2] + b"\x81\x81" + b"\0" * 8  # FORMERR for the poke
        i = 12
        while q[i] != 0:
            i += 1 + q[i]
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        header = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1 if qtype == 1 else 0, 0, 0)
        answer = b""
        if qtype == 1:
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
        return header + question + answer

    def close(self):
        self.sock.close()
