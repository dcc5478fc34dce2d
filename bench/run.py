#!/usr/bin/python3
"""tt's benchmark: tt's carriers against microsocks, shadowsocks-libev, stunnel, ssh and v2ray.

Starts every process itself on free 127.0.0.1 ports: the destination server
(ttbench serve), and per system its proxy processes. Then, round-robin over the
systems and repeated --rounds times (so a slow minute of the machine hits every
system alike), measures with bench/ttbench (C, so the load generator is never
the bottleneck):

  - single-stream throughput up (client -> destination) and down;
  - CPU seconds per GB of the proxy's processes (utime+stime from
    /proc/PID/stat, before/after each transfer);
  - latency: new connection + SOCKS5 CONNECT + 1 byte echoed, per connection;
  - first byte: new connection + SOCKS5 CONNECT until the destination's banner
    byte arrives (the destination speaks first; the client sends nothing);
  - echo RTT: 1-byte round trips on one open connection (the relay's own
    delay, without the cost of opening a stream).

Forward systems (stunnel, tt -L) have no SOCKS5: ttbench connects straight to
their fixed forward ports, one per destination port. After the rounds, the
idle-connection section holds --idle connections open through each system and
reads the proxy processes' memory (VmRSS) before and after.

Two groups of systems: "default" (tcp:// and tt:// against microsocks,
shadowsocks-libev, stunnel and ssh) and "web" (tls://, wss:// and --mux
against stunnel, v2ray VLESS over WebSocket+TLS and shadowsocks-libev with
v2ray-plugin); --group picks one, --systems any list.

Reports the median over the rounds of each figure, a table, the ratios and
the targets' verdicts. Everything started is killed by pid at the end, on
errors and on Ctrl-C. Usage: bench/run.py [--quick] [--group default|web|all]
[--rounds N] [--bytes N] [--count N] [--systems a,b] [--idle N] [--json FILE];
see --help.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
SS_PASSWORD = "ttbench-not-a-secret"

# The plain carrier's comparison (tt-tcp: tcp://, no encryption) and the
# encrypted one's (tt:// against shadowsocks-libev, stunnel and ssh).
ALL_SYSTEMS = [
    "direct", "tt-tcp", "microsocks",
    "ss-aes-256-gcm", "ss-chacha20-ietf-poly1305",
    "tt-chacha20", "tt-aes-256-gcm", "tt-chacha20-16k", "tt-chacha20-L",
    "tt-chacha20-fast", "tt-aes-256-gcm-fast",
    "stunnel-aes-256-gcm", "stunnel-chacha20",
    "ssh-chacha20", "ssh-aes256-gcm",
]
# The web carriers' comparison (--group web): tls:// against stunnel (both
# TLS 1.3, AES-256-GCM), wss:// against tls:// and against v2ray's
# WebSocket+TLS transport, and a stream opened on a multiplexed connection
# against a new TLS connection. direct stays in for the load generator's
# headroom. Not in the default run: it would take it past 8 minutes.
WEB_SYSTEMS = [
    "direct", "tt-tls", "tt-tls-L", "stunnel-aes-256-gcm", "tt-wss", "tt-tls-mux",
    "v2ray-vless-wss", "ss-v2ray-plugin",
]
GROUPS = {"default": ALL_SYSTEMS, "web": WEB_SYSTEMS,
          "all": ALL_SYSTEMS + [s for s in WEB_SYSTEMS if s not in ALL_SYSTEMS]}
# Known but in no group: --systems tt-aes-256-gcm-16k,...
EXTRA_SYSTEMS = ["tt-socks5", "tt-ssh-chacha20", "tt-aes-256-gcm-16k", "tt-chacha20-early", "tt-chacha20-mux",
                 "tt-chacha20-resume", "tt-chacha20-mux-1", "tt-chacha20-resume-1", "tt-ws", "tt-wss-mux", "tt-wss-L", "v2ray-vmess-wss",
                 "tt-http", "tt-https", "tt-https-mux"]
KNOWN_SYSTEMS = GROUPS["all"] + EXTRA_SYSTEMS
ALIASES = {"tt": "tt-tcp"}
# tt's web carriers: (scheme, forward mode, --mux). The WebSocket ones listen
# on WS_PATH; the TLS ones use the certificate stunnel's server uses.
TT_WEB = {
    "tt-tls": ("tls", False, False),
    "tt-tls-L": ("tls", True, False),
    "tt-tls-mux": ("tls", False, True),
    "tt-wss": ("wss", False, False),
    "tt-wss-L": ("wss", True, False),
    "tt-wss-mux": ("wss", False, True),
    "tt-ws": ("ws", False, False),
    # HTTP streaming (a long GET down, POSTs up), beside ws:// and wss://.
    "tt-http": ("http", False, False),
    "tt-https": ("https", False, False),
    "tt-https-mux": ("https", False, True),
}
WS_PATH = "/ttbench"
# The name in the benchmark certificate (subjectAltName DNS:) that the TLS
# clients ask for and check.
CERT_NAME = "localhost"
# v2ray rows: the proxy protocol inside WebSocket+TLS.
V2RAY_PROTOCOLS = {"v2ray-vless-wss": "vless", "v2ray-vmess-wss": "vmess"}
# shadowsocks-libev's cipher under v2ray-plugin (its TLS is Go's, below).
SS_PLUGIN_METHOD = "aes-256-gcm"
# tt:// rows: (AEAD method, --buffer-size, forward mode, more client options).
# The -fast rows add what ss-local does by design: answer CONNECT at once
# (--early-reply) and open no new connection per stream (--mux).
FAST = ("--early-reply", "--mux")
TT_NATIVE = {
    "tt-chacha20": ("chacha20-poly1305", None, False, ()),
    "tt-aes-256-gcm": ("aes-256-gcm", None, False, ()),
    "tt-chacha20-16k": ("chacha20-poly1305", 16384, False, ()),
    "tt-aes-256-gcm-16k": ("aes-256-gcm", 16384, False, ()),
    "tt-chacha20-L": ("chacha20-poly1305", None, True, ()),
    "tt-chacha20-fast": ("chacha20-poly1305", None, False, FAST),
    "tt-aes-256-gcm-fast": ("aes-256-gcm", None, False, FAST),
    "tt-chacha20-early": ("chacha20-poly1305", None, False, ("--early-reply",)),
    "tt-chacha20-mux": ("chacha20-poly1305", None, False, ("--mux",)),
    # Resumable sessions (--resume implies --mux); the -1 rows put each
    # stream on a session of its own, so an idle connection is an idle session.
    "tt-chacha20-resume": ("chacha20-poly1305", None, False, ("--resume",)),
    "tt-chacha20-mux-1": ("chacha20-poly1305", None, False, ("--mux", "--mux-max-streams", "1")),
    "tt-chacha20-resume-1": ("chacha20-poly1305", None, False,
                             ("--resume", "--mux-max-streams", "1")),
}
STUNNEL_SUITES = {
    "stunnel-aes-256-gcm": "TLS_AES_256_GCM_SHA384",
    "stunnel-chacha20": "TLS_CHACHA20_POLY1305_SHA256",
}
# None: the default cipher. tt-ssh-*: through tt client's ssh:// carrier.
SSH_CIPHERS = {"ssh-chacha20": None, "ssh-aes256-gcm": "aes256-gcm@openssh.com",
               "tt-ssh-chacha20": None}
SSHD = "/usr/sbin/sshd"
# The idle-connection section's default systems: one per kind of peer (opening
# 1,000 channels through ssh takes about 7 s, through stunnel 3 s).
IDLE_SYSTEMS = ["tt-tcp", "tt-chacha20", "microsocks", "ss-chacha20-ietf-poly1305",
                "stunnel-chacha20", "ssh-chacha20"]  # sshd refuses to start from a relative path
# The web group's: tt's TLS and WebSocket links, a multiplexed stream, and the peers.
IDLE_SYSTEMS_WEB = ["tt-tls", "tt-wss", "tt-tls-mux", "stunnel-aes-256-gcm", "v2ray-vless-wss",
                    "ss-v2ray-plugin"]


class BenchError(Exception):
    pass


# ---- processes -------------------------------------------------------------


class Procs:
    """Every long-running process this run started, so all of them are killed
    (by pid) however the run ends."""

    def __init__(self, logdir):
        self.logdir = Path(logdir)
        self.procs = []  # (name, Popen, logpath)

    def start(self, name, argv, env=None):
        log = self.logdir / f"{name}.log"
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                 env=env)
        self.procs.append((name, p, log))
        return p

    def pids(self):
        """Our processes and their descendants (sshd's session processes)."""
        top = {p.pid for _, p, _ in self.procs}
        return top | descendants(top)

    def check_alive(self, procs):
        for p in procs:
            if p.poll() is not None:
                name, log = next((n, lg) for n, q, lg in self.procs if q is p)
                raise BenchError(f"{name} (pid {p.pid}) exited with {p.returncode}:\n{tail(log)}")

    def stop(self, procs=None):
        targets = [t for t in self.procs if procs is None or t[1] in procs]
        # Their descendants (the plugins that ss-server and ss-local start,
        # sshd's sessions), noted with their start times before anything is
        # stopped: one that outlives its parent is then stopped by its pid,
        # and only while that pid still names the same process.
        kids = {pid: start_time(pid) for pid in descendants({p.pid for _, p, _ in targets})}
        for _, p, _ in reversed(targets):
            if p.poll() is None:
                try:
                    p.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 3
        for _, p, _ in targets:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [t for t in self.procs if t not in targets]
        stop_strays(kids)


def start_time(pid):
    """PID's start time (clock ticks after boot), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else int(fields[19])  # a zombie has ended
    except (OSError, ValueError, IndexError):
        return None


def stop_strays(kids):
    """Stops the processes of KIDS ({pid: start time}) that are still the
    same processes: SIGTERM, then SIGKILL after 3 s. They are not our
    children, so their end is seen in /proc, not by wait()."""

    def alive():
        return [pid for pid, t0 in kids.items() if t0 is not None and start_time(pid) == t0]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = alive()
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while left and time.monotonic() < deadline:
            time.sleep(0.02)  # polling interval, not synchronisation
            left = alive()
        if not left:
            return


def parent_pids():
    """{pid: parent pid} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    out[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return out


def descendants(pids):
    """Every live descendant of PIDS (not PIDS themselves)."""
    ppid = parent_pids()
    children = {}
    for pid, parent in ppid.items():
        children.setdefault(parent, []).append(pid)
    out, todo = set(), list(pids)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def rss_kib(pids):
    """Sum of VmRSS (KiB) of PIDS."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total


def tail(path, n=15):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-n:])


_used_ports = set()


def free_port():
    """A port nothing listens on now. Processes are given ports up front
    (not all of them can report a port they picked), so there is a small
    window in which another program could take it; start() then fails loudly."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _used_ports:
            _used_ports.add(port)
            return port


def listening_ports():
    """Ports in LISTEN state, from /proc/net/tcp: checking this way does not
    open a connection that the proxy would log or count."""
    ports = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A":  # TCP_LISTEN
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def wait_listening(procs, port, watch, timeout=10.0):
    """Returns once PORT is listening; fails early if a process in WATCH exits."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while port not in listening_ports():
        procs.check_alive(watch)
        if time.monotonic() > deadline:
            raise BenchError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s")
        time.sleep(delay)  # polling interval, not synchronisation
        delay = min(delay * 2, 0.05)


def wait_log(procs, proc, text, watch, timeout=10.0):
    """Returns once PROC's log holds TEXT; fails early if a process in WATCH
    exits."""
    log = next(lg for _, q, lg in procs.procs if q is proc)
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        procs.check_alive(watch)
        if time.monotonic() > deadline:
            raise BenchError(f"no '{text}' in {log} after {timeout:.0f} s")
        time.sleep(0.02)  # polling interval, not synchronisation


def cpu_ticks(pids):
    """utime+stime in clock ticks of the processes PIDS (all their threads,
    live and exited)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # gone: a dead proxy process is caught by check_alive
        total += int(fields[11]) + int(fields[12])
    return total


PF_KTHREAD = 0x00200000


def all_cpu_ticks():
    """utime+stime of every user process on the machine, by pid. Kernel
    threads are left out: ksoftirqd and kworkers move our loopback traffic."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
                name = s[s.index("(") + 1 : s.rindex(")")]
                fields = s.rsplit(")", 1)[1].split()
                if int(fields[6]) & PF_KTHREAD:
                    continue
                out[int(d)] = (name, int(fields[11]) + int(fields[12]))
            except (OSError, ValueError, IndexError):
                pass
    return out


class CpuWatch:
    """How much CPU others took while we measured: the machine's busy time
    (/proc/stat) minus that of our processes, from one mark() to the next.
    Unlike a scan of /proc/PID, this also catches short-lived processes
    (compilers, test runs). An estimate: kernel threads that move our loopback
    traffic (ksoftirqd) count as others."""

    def __init__(self, procs):
        self.procs = procs
        self.last = self._sample()

    def _sample(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
        t = os.times()
        own = (t.user + t.system) * CLK_TCK
        ours = cpu_ticks(self.procs.pids()) + children_ticks() + own
        return time.monotonic(), busy, v[7], ours

    def mark(self):
        """Returns (others' share of the machine, steal share) since the last mark."""
        now = self._sample()
        t0, busy0, steal0, ours0 = self.last
        self.last = now
        cap = max(1e-9, (now[0] - t0) * CLK_TCK * (os.cpu_count() or 1))
        other = max(0.0, (now[1] - busy0) - (now[3] - ours0))
        return other / cap, (now[2] - steal0) / cap


# ---- systems under test ----------------------------------------------------


class System:
    """A system under test. KIND: "direct" (no proxy), "socks" (a SOCKS5 proxy
    on PORT) or "forward" (fixed forwards: FWD maps each destination port to
    the local port that leads to it)."""

    def __init__(self, name, kind, procs, port=None, fwd=None, server=None, client=None,
                 server_desc=None, with_children=False):
        self.name = name
        self.kind = kind
        self.port = port
        self.fwd = fwd or {}
        self.procs = procs  # Popen list: whose CPU is the proxy's
        self._server = server or []  # Popen list: the server side, for memory
        self._client = client or []
        # sshd: its session processes, forked per client connection, are the
        # server; found as the listener's descendants when asked.
        self.server_desc = server_desc
        # ss-server and ss-local with a plugin: the plugin process each starts
        # is part of that side (its CPU and memory count).
        self.with_children = with_children
        self.watch = procs + ([server_desc] if server_desc is not None else [])

    def _with_children(self, procs):
        top = [p.pid for p in procs]
        return top + sorted(descendants(top)) if self.with_children else top

    @property
    def pids(self):
        top = self._with_children(self.procs)
        if self.server_desc is not None:
            top += sorted(descendants([self.server_desc.pid]))
        return top

    def server_pids(self):
        if self.server_desc is not None:
            return sorted(descendants([self.server_desc.pid]))
        return self._with_children(self._server)

    def client_pids(self):
        return self._with_children(self._client)


class Ctx:
    """What starting a system needs."""

    def __init__(self, procs, binaries, cfg, workdir):
        self.procs, self.binaries, self.cfg = procs, binaries, cfg
        self.workdir = Path(workdir)
        self._tt_key = None
        self._cert = None

    def tt_key(self):
        # A key from 'tt keygen', not a password: a password costs an scrypt
        # at every start.
        if self._tt_key is None:
            r = subprocess.run([self.binaries["tt"], "keygen"], capture_output=True, text=True,
                               timeout=10)
            if r.returncode != 0:
                raise BenchError(f"tt keygen failed: {r.stderr.strip()}")
            self._tt_key = r.stdout.strip()
        return self._tt_key

    def cert(self):
        """A self-signed ECDSA P-256 certificate for every TLS server (stunnel,
        tt's tls:// and wss://, v2ray, v2ray-plugin), so all of them sign
        their handshakes alike. Its subjectAltName holds CERT_NAME: the Go
        TLS clients (v2ray) check names there only, never in the CN."""
        if self._cert is None:
            key, crt = self.workdir / "stunnel-key.pem", self.workdir / "stunnel-cert.pem"
            run_tool(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                      f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{CERT_NAME},IP:{HOST}",
                      "-keyout", str(key), "-out", str(crt)])
            self._cert = (key, crt)
        return self._cert


def run_tool(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"{argv[0]}: {e}") from None
    if r.returncode != 0:
        raise BenchError(f"failed ({r.returncode}): {' '.join(argv)}\n    {r.stderr.strip()}")
    return r.stdout


def start_system(name, ctx):
    procs, binaries, cfg = ctx.procs, ctx.binaries, ctx.cfg
    if name == "direct":
        return System(name, "direct", [])
    if name == "tt-tcp":
        socks, srv_port = free_port(), free_port()
        # Default options, log level included: what a user runs.
        s = procs.start(
            "tt-tcp-server",
            [binaries["tt"], "server", "-l", f"tcp://{HOST}:{srv_port}", "--allow", "127.0.0.0/8"],
        )
        wait_listening(procs, srv_port, [s])
        c = procs.start(
            "tt-tcp-client",
            [binaries["tt"], "client", "-s", f"tcp://{HOST}:{srv_port}", "-l", f"{HOST}:{socks}"],
        )
        wait_listening(procs, socks, [s, c])
        return System(name, "socks", [c, s], port=socks, server=[s], client=[c])
    if name in TT_NATIVE:
        method, bufsize, forward, more = TT_NATIVE[name]
        srv_port = free_port()
        common = ["-k", ctx.tt_key(), "-m", method]
        if bufsize:
            common += ["--buffer-size", str(bufsize)]
        # A fixed port (HOST:PORT) rather than hopping; otherwise defaults.
        s = procs.start(
            f"{name}-server",
            [binaries["tt"], "server", "-l", f"{HOST}:{srv_port}", "--allow", "127.0.0.0/8"]
            + common,
        )
        wait_listening(procs, srv_port, [s])
        argv = [binaries["tt"], "client", "-s", f"{HOST}:{srv_port}"] + common
        argv += list(more)
        return start_tt_client(name, ctx, argv, forward, s)
    if name in TT_WEB:
        return start_tt_web(name, ctx)
    if name in V2RAY_PROTOCOLS:
        return start_v2ray(name, ctx)
    if name == "ss-v2ray-plugin":
        return start_ss_plugin(name, ctx)
    if name == "tt-socks5":
        # tt client's socks5:// carrier in front of microsocks: what tt's
        # hop and the SOCKS5 exchange with an upstream proxy cost.
        up, socks = free_port(), free_port()
        m = procs.start("tt-socks5-microsocks", ["microsocks", "-i", HOST, "-p", str(up)])
        wait_listening(procs, up, [m])
        argv = [binaries["tt"], "client", "-s", f"socks5://{HOST}:{up}"]
        return start_tt_client(name, ctx, argv, False, m)
    if name == "microsocks":
        socks = free_port()
        # microsocks 1.0.3 has no quiet switch: it logs one line per
        # connection to the log file, as it would in real use.
        m = procs.start("microsocks", ["microsocks", "-i", HOST, "-p", str(socks)])
        wait_listening(procs, socks, [m])
        return System(name, "socks", [m], port=socks, server=[m])
    if name.startswith("ss-"):
        method = name[3:]
        socks, srv_port = free_port(), free_port()
        common = ["-k", SS_PASSWORD, "-m", method]
        s = procs.start(f"{name}-server", ["ss-server", "-s", HOST, "-p", str(srv_port)] + common)
        wait_listening(procs, srv_port, [s])
        c = procs.start(
            f"{name}-local",
            ["ss-local", "-s", HOST, "-p", str(srv_port), "-b", HOST, "-l", str(socks)] + common,
        )
        wait_listening(procs, socks, [s, c])
        return System(name, "socks", [c, s], port=socks, server=[s], client=[c])
    if name in STUNNEL_SUITES:
        return start_stunnel(name, ctx)
    if name in SSH_CIPHERS:
        return start_ssh(name, ctx)
    raise BenchError(f"unknown system {name}")


def start_tt_client(name, ctx, argv, forward, server):
    """Starts the tt client ARGV (without -l): a SOCKS5 proxy on a free port,
    or with FORWARD no proxy and a fixed forward per destination port."""
    procs, cfg = ctx.procs, ctx.cfg
    s = server
    if forward:
        fwd = {cfg.dest_port: free_port(), cfg.banner_port: free_port()}
        argv = argv + ["-l", "none"]
        for dest, local in fwd.items():
            argv += ["-L", f"{HOST}:{local}={HOST}:{dest}"]
        c = procs.start(f"{name}-client", argv)
        for local in fwd.values():
            wait_listening(procs, local, [s, c])
        return System(name, "forward", [c, s], fwd=fwd, server=[s], client=[c])
    socks = free_port()
    c = procs.start(f"{name}-client", argv + ["-l", f"{HOST}:{socks}"])
    wait_listening(procs, socks, [s, c])
    return System(name, "socks", [c, s], port=socks, server=[s], client=[c])


def start_tt_web(name, ctx):
    """tt over tls://, wss://, ws://, http:// or https://. The server uses the benchmark's
    certificate (--cert, --tls-key: the one stunnel's server has); the client
    trusts it as its CA and checks its name (--ca, -n), as a user of a
    self-signed certificate would, never --insecure-skip-verify. Otherwise
    defaults, log level and --mux-max-streams (4) included."""
    procs, binaries = ctx.procs, ctx.binaries
    scheme, forward, mux = TT_WEB[name]
    key, crt = ctx.cert()
    srv_port = free_port()
    url = f"{scheme}://{HOST}:{srv_port}" + (WS_PATH if scheme != "tls" else "")
    argv = [binaries["tt"], "server", "-l", url, "-k", ctx.tt_key(), "--allow", "127.0.0.0/8"]
    if scheme not in ("ws", "http"):
        argv += ["--cert", str(crt), "--tls-key", str(key)]
    s = procs.start(f"{name}-server", argv)
    wait_listening(procs, srv_port, [s])
    argv = [binaries["tt"], "client", "-s", url, "-k", ctx.tt_key()]
    if scheme not in ("ws", "http"):
        argv += ["--ca", str(crt), "-n", CERT_NAME]
    if mux:
        argv.append("--mux")
    return start_tt_client(name, ctx, argv, forward, s)


def start_v2ray(name, ctx):
    """v2ray (4.34) at both ends. Server: inbound VLESS (or VMess) over
    WebSocket on WS_PATH inside TLS with the benchmark's certificate,
    outbound freedom (connects to whatever the client asked for). Client:
    inbound SOCKS5 on 127.0.0.1, outbound VLESS (VMess) to the server,
    trusting the certificate as its CA and checking CERT_NAME. Otherwise
    defaults: no mux, log level warning. Go's TLS 1.3 cannot be given a
    cipher suite: with AES-NI it picks TLS_AES_128_GCM_SHA256."""
    procs, wd = ctx.procs, ctx.workdir
    key, crt = ctx.cert()
    proto = V2RAY_PROTOCOLS[name]
    uid = str(uuid.uuid4())
    if proto == "vless":
        inbound = {"clients": [{"id": uid}], "decryption": "none"}
        user = {"id": uid, "encryption": "none"}
    else:
        # alterId 0: VMess's AEAD header; 'auto' is AES-128-GCM on amd64.
        inbound = {"clients": [{"id": uid, "alterId": 0}]}
        user = {"id": uid, "alterId": 0, "security": "auto"}
    srv_port, socks = free_port(), free_port()
    ws = {"path": WS_PATH}
    server = {
        "inbounds": [{
            "listen": HOST, "port": srv_port, "protocol": proto, "settings": inbound,
            "streamSettings": {"network": "ws", "security": "tls", "wsSettings": ws,
                               "tlsSettings": {"certificates": [
                                   {"certificateFile": str(crt), "keyFile": str(key)}]}},
        }],
        "outbounds": [{"protocol": "freedom"}],
    }
    client = {
        "inbounds": [{"listen": HOST, "port": socks, "protocol": "socks",
                      "settings": {"auth": "noauth", "udp": False}}],
        "outbounds": [{
            "protocol": proto,
            "settings": {"vnext": [{"address": HOST, "port": srv_port, "users": [user]}]},
            "streamSettings": {"network": "ws", "security": "tls", "wsSettings": ws,
                               "tlsSettings": {"serverName": CERT_NAME, "certificates": [
                                   {"usage": "verify", "certificateFile": str(crt)}]}},
        }],
    }
    started = []
    for role, conf, port in (("server", server, srv_port), ("client", client, socks)):
        path = wd / f"{name}-{role}.json"
        path.write_text(json.dumps(conf, indent=1) + "\n")
        started.append(procs.start(f"{name}-{role}", ["v2ray", "-config", str(path)]))
        wait_listening(procs, port, started)
    s, c = started
    return System(name, "socks", [c, s], port=socks, server=[s], client=[c])


def start_ss_plugin(name, ctx):
    """shadowsocks-libev with v2ray-plugin: ss-local (SOCKS5) → its plugin
    (WebSocket on WS_PATH inside TLS, checking the benchmark's certificate
    with cert= and its name with host=) → ss-server's plugin (the same
    certificate) → ss-server → destination. Each ss process starts its
    plugin as a child, which counts as part of that side. Otherwise the
    plugin's defaults, among them its client's mux=1: streams take turns on
    one multiplexed WebSocket connection while it is free."""
    procs = ctx.procs
    key, crt = ctx.cert()
    socks, srv_port = free_port(), free_port()
    common = ["-k", SS_PASSWORD, "-m", SS_PLUGIN_METHOD, "--plugin", "ss-v2ray-plugin"]
    # ss-server's -s/-p are where its plugin listens; ss-server itself takes
    # a free port of its own for the plugin to reach it.
    s = procs.start(f"{name}-server", ["ss-server", "-s", HOST, "-p", str(srv_port)] + common + [
        "--plugin-opts", f"server;tls;host={CERT_NAME};cert={crt};key={key};path={WS_PATH}"])
    wait_listening(procs, srv_port, [s])
    c = procs.start(f"{name}-local", [
        "ss-local", "-s", HOST, "-p", str(srv_port), "-b", HOST, "-l", str(socks)] + common + [
        "--plugin-opts", f"tls;host={CERT_NAME};path={WS_PATH};cert={crt}"])
    wait_listening(procs, socks, [s, c])
    # ss-local listens before its plugin does: wait for the plugin's port
    # too, or the first connections would find nothing behind ss-local.
    wait_child_listening(procs, c, [s, c])
    return System(name, "socks", [c, s], port=socks, server=[s], client=[c], with_children=True)


def listening_inodes():
    """Socket inodes of the TCP sockets in LISTEN state."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A":
                        inodes.add(parts[9])
        except OSError:
            pass
    return inodes


def socket_inodes(pid):
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def wait_child_listening(procs, parent, watch, timeout=10.0):
    """Returns once a descendant of PARENT (a Popen) listens on a TCP port."""
    deadline = time.monotonic() + timeout
    while True:
        listening = listening_inodes()
        if any(socket_inodes(pid) & listening for pid in descendants([parent.pid])):
            return
        procs.check_alive(watch)
        if time.monotonic() > deadline:
            raise BenchError(f"no child of pid {parent.pid} listens after {timeout:.0f} s")
        time.sleep(0.02)  # polling interval, not synchronisation


def start_stunnel(name, ctx):
    """Two stunnels, TLS 1.3 between them: client (accept plain, connect TLS)
    and server (accept TLS, connect to the destination). stunnel has no SOCKS,
    so each destination port gets its own service: a fixed forward."""
    procs, cfg, wd = ctx.procs, ctx.cfg, ctx.workdir
    key, crt = ctx.cert()
    suite = STUNNEL_SUITES[name]
    fwd, links = {}, {}
    for dest in (cfg.dest_port, cfg.banner_port):
        fwd[dest], links[dest] = free_port(), free_port()
    # Otherwise stunnel's defaults (TCP_NODELAY on, session cache, log level
    # notice: a line per connection, as in real use); in the foreground its
    # log goes to stderr, not syslog.
    common = [f"sslVersionMin = TLSv1.3", f"ciphersuites = {suite}"]
    srv = ["foreground = yes", f"pid = {wd / (name + '-server.pid')}", "syslog = no"]
    cli = ["foreground = yes", f"pid = {wd / (name + '-client.pid')}", "syslog = no"]
    for dest in fwd:
        srv += [f"[d{dest}]", f"accept = {HOST}:{links[dest]}", f"connect = {HOST}:{dest}",
                f"cert = {crt}", f"key = {key}"] + common
        cli += [f"[d{dest}]", "client = yes", f"accept = {HOST}:{fwd[dest]}",
                f"connect = {HOST}:{links[dest]}", f"CAfile = {crt}", "verifyPeer = yes"] + common
    started = []
    for role, lines in (("server", srv), ("client", cli)):
        conf = wd / f"{name}-{role}.conf"
        conf.write_text("\n".join(lines) + "\n")
        p = procs.start(f"{name}-{role}", ["stunnel4", str(conf)])
        started.append(p)
        for port in (links if role == "server" else fwd).values():
            wait_listening(procs, port, started)
    s, c = started
    return System(name, "forward", [c, s], fwd=fwd, server=[s], client=[c])


def write_sshd_config(d, listen, extra=()):
    """Writes into directory D a host key, a client key (client_key, also the
    only authorized key) and an sshd_config for a private sshd on LISTEN
    (host:port) that lets root in with that key and forwards TCP; EXTRA are
    more config lines. bench/transparent.py uses it too."""
    run_tool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")])
    run_tool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")])
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    (d / "sshd_config").write_text("\n".join([
        f"ListenAddress {listen}",
        f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}",
        f"PidFile {d / 'sshd.pid'}",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AllowTcpForwarding yes",
    ] + list(extra)) + "\n")


def start_sshd(name, ctx):
    """A private sshd on a free loopback port (its own host key, authorized
    key, pid file; run as root). Returns it, its port and the ssh command
    line (a list, without -N -D and destination) that logs in to it."""
    procs, wd = ctx.procs, ctx.workdir
    if os.geteuid() != 0:
        raise BenchError(f"{name}: a private sshd needs root (run as root, or leave out ssh-*)")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    d = wd / name
    d.mkdir()
    port = free_port()
    write_sshd_config(d, f"{HOST}:{port}")
    sshd = procs.start(f"{name}-sshd", [SSHD, "-D", "-e", "-f", str(d / "sshd_config")])
    wait_listening(procs, port, [sshd])
    argv = ["ssh", "-F", "/dev/null", "-i", str(d / "client_key"),
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-p", str(port)]
    if SSH_CIPHERS[name]:
        argv += ["-c", SSH_CIPHERS[name]]
    return sshd, argv


def start_ssh(name, ctx):
    """'ssh -N -D' to a private sshd: a SOCKS5 proxy whose connections
    travel as channels of one SSH connection. tt-ssh-*: the same ssh started
    by tt's ssh:// carrier, with tt client's SOCKS5 proxy in front (one more
    hop on the client machine); its CPU is tt's and its ssh child's."""
    procs = ctx.procs
    sshd, argv = start_sshd(name, ctx)
    socks = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    if name.startswith("tt-"):
        tt = [ctx.binaries["tt"], "client", "-s", f"ssh://root@{HOST}", "-l", f"{HOST}:{socks}"]
        c = procs.start(f"{name}-client", tt + ["--ssh-command", " ".join(argv)], env=env)
        wait_listening(procs, socks, [sshd, c])
        # Its ssh child logs in after tt listens; tt says when it is up.
        wait_log(procs, c, " is up (ssh pid ", [sshd, c], timeout=20)
        return System(name, "socks", [c], port=socks, client=[c], server_desc=sshd,
                      with_children=True)
    argv += ["-N", "-D", f"{HOST}:{socks}"]
    c = procs.start(f"{name}-client", argv + [f"root@{HOST}"], env=env)
    # ssh opens its -D port once authenticated.
    wait_listening(procs, socks, [sshd, c], timeout=20)
    return System(name, "socks", [c], port=socks, client=[c], server_desc=sshd)


# ---- measurements ------------------------------------------------------------


def ttbench(binaries, args, timeout, prefix=()):
    """Runs ttbench with ARGS (after PREFIX, e.g. 'ip netns exec NS') and
    returns its JSON result."""
    argv = list(prefix) + [binaries["ttbench"]] + args
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {' '.join(argv)}") from None
    if r.returncode != 0:
        raise BenchError(f"failed ({r.returncode}): {' '.join(argv)}\n    {r.stderr.strip()}")
    return json.loads(r.stdout)


def route(system, cfg, banner=False):
    """ttbench's arguments that reach the destination (the banner port if
    BANNER) through SYSTEM."""
    flag = "--banner" if banner else "--target"
    dest = cfg.banner_port if banner else cfg.dest_port
    if system.kind == "socks":
        return ["--socks", f"{HOST}:{system.port}", flag, f"{HOST}:{dest}"]
    if system.kind == "forward":
        return ["--direct", flag, f"{HOST}:{system.fwd[dest]}"]
    return ["--direct", flag, f"{HOST}:{dest}"]


COPY = []  # ["--copy"] when asked: for serve and throughput alike


def children_ticks():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * CLK_TCK


def measure(system, cfg, binaries, server, watch):
    """One round of every measurement on SYSTEM."""
    out = {}
    watch.mark()
    for d in ("up", "down"):
        before = cpu_ticks(system.pids)
        gen_before = cpu_ticks([server.pid]) + children_ticks()
        r = ttbench(
            binaries,
            ["throughput"] + COPY + route(system, cfg)
            + ["--bytes", str(cfg.bytes), "--dir", d],
            timeout=300,
        )
        ticks = cpu_ticks(system.pids) - before
        gen_ticks = cpu_ticks([server.pid]) + children_ticks() - gen_before
        gb = r["bytes"] / 1e9
        out[f"{d}_MBps"] = r["MBps"]
        out[f"{d}_cpu_s_per_GB"] = ticks / CLK_TCK / gb if system.pids else None
        out[f"{d}_gen_cpu_s_per_GB"] = gen_ticks / CLK_TCK / gb
    r = ttbench(
        binaries,
        ["latency"] + route(system, cfg) + ["--count", str(cfg.count)],
        timeout=120,
    )
    out["lat_med_us"], out["lat_p90_us"] = r["median_us"], r["p90_us"]
    r = ttbench(
        binaries,
        ["rtt"] + route(system, cfg) + ["--count", str(cfg.count)],
        timeout=120,
    )
    out["rtt_med_us"] = r["median_us"]
    r = ttbench(
        binaries,
        ["firstbyte"] + route(system, cfg, banner=True) + ["--count", str(cfg.fb_count)],
        timeout=300,
    )
    out["fb_med_us"], out["fb_p90_us"] = r["median_us"], r["p90_us"]
    # One figure for the whole round of this system: over a few seconds the
    # clock-tick granularity of /proc/stat is small enough to mean something.
    out["other_cpu"] = watch.mark()[0]
    return out


def idle_memory(system, cfg, binaries):
    """Memory per idle connection: opens cfg.idle_warmup connections through
    SYSTEM (each: connect, SOCKS5 CONNECT to the echo role, one byte each
    way), reads the VmRSS of the server and client processes, opens cfg.idle
    more and reads them again. The connections stay open until the end."""
    argv = [binaries["ttbench"], "idle"] + route(system, cfg)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)

    def step(n):
        p.stdin.write(f"{n}\n")
        p.stdin.flush()
        line = p.stdout.readline()  # ttbench's socket timeouts bound this
        if not line:
            p.wait()
            raise BenchError(f"{system.name}: ttbench idle failed ({p.returncode}): "
                             f"{p.stderr.read().strip()}")
        return json.loads(line)

    def settle():
        # The echo proves each stream is set up end to end; give the proxies
        # a moment for anything they do after relaying it.
        time.sleep(0.3)
        return rss_kib(system.server_pids()), rss_kib(system.client_pids())

    try:
        step(cfg.idle_warmup)
        s0, c0 = settle()
        r = step(cfg.idle)
        s1, c1 = settle()
    finally:
        if p.poll() is None:
            p.stdin.close()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in (p.stdout, p.stderr):
            f.close()
    return {
        "server_kib_per_conn": (s1 - s0) / cfg.idle if system.server_pids() else None,
        "client_kib_per_conn": (c1 - c0) / cfg.idle if system.client_pids() else None,
        "server_rss_kib": [s0, s1],
        "client_rss_kib": [c0, c1],
        "open_seconds": r["seconds"],
    }


# ---- reporting ---------------------------------------------------------------


def machine_info(binaries):
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    osname = platform.platform()
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    hv = ""
    try:
        if "hypervisor" in open("/proc/cpuinfo").read():
            hv = " (virtual machine)"
    except OSError:
        pass

    def cmd(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def deb(pkg):
        return cmd(["dpkg-query", "-W", "-f=${Version}", pkg]) or "?"

    # The revision of the tree the tt binary was built from (build/tt).
    src = str(Path(binaries["tt"]).resolve().parent)
    rev = "?"
    top = cmd(["git", "-C", src, "rev-parse", "--show-toplevel"])
    if top and os.path.isdir(top):
        rev = cmd(["git", "-C", top, "rev-parse", "--short", "HEAD"])
        if cmd(["git", "-C", top, "status", "--porcelain", "--untracked-files=no", "--", "src"]):
            rev += " + uncommitted changes in src/"
    return {
        "cpu": cpu + hv,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "os": osname,
        "python": platform.python_version(),
        "tt": (cmd([binaries["tt"], "--version"]) or "?") + f", git {rev}",
        "libuv": deb("libuv1"),
        "openssl": deb("libssl3"),
        "microsocks": deb("microsocks"),
        "shadowsocks-libev": deb("shadowsocks-libev"),
        "stunnel4": deb("stunnel4"),
        "openssh": deb("openssh-server") + " (server), " + deb("openssh-client") + " (client)",
        "v2ray": deb("v2ray"),
        "shadowsocks-v2ray-plugin": deb("shadowsocks-v2ray-plugin"),
        "compiler": (cmd(["cc", "--version"]) or "?").splitlines()[0],
        "load generator": "ttbench, " + ("send/recv (--copy)" if COPY else "sendfile/splice"),
    }


def med(rounds, key, max_other):
    """Median of KEY over the rounds in which other processes took at most
    MAX_OTHER of the CPU while this system was measured, if at least 3 such
    rounds exist; otherwise over all rounds. Returns (median, clean rounds used
    or 0)."""
    pairs = [(r[key], r.get("other_cpu", 0.0)) for r in rounds if r.get(key) is not None]
    if not pairs:
        return None, 0
    clean = [v for v, o in pairs if o <= max_other]
    if len(clean) >= 3:
        return statistics.median(clean), len(clean)
    return statistics.median(v for v, _ in pairs), 0


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def tput_ratios(a, b):
    """A's throughput over B's: (up, down, the worse of the two)."""
    up, down = a["up_MBps"] / b["up_MBps"], a["down_MBps"] / b["down_MBps"]
    return up, down, min(up, down)


def verdict(ok):
    return "MET" if ok else "NOT MET"


# tt:// rows and the systems the issue compares them with, cipher by cipher.
NATIVE_TARGETS = [
    ("tt-chacha20", "ss-chacha20-ietf-poly1305", "ssh-chacha20", "stunnel-chacha20"),
    ("tt-aes-256-gcm", "ss-aes-256-gcm", "ssh-aes256-gcm", "stunnel-aes-256-gcm"),
    # With --early-reply and --mux (FAST).
    ("tt-chacha20-fast", "ss-chacha20-ietf-poly1305", "ssh-chacha20", "stunnel-chacha20"),
    ("tt-aes-256-gcm-fast", "ss-aes-256-gcm", "ssh-aes256-gcm", "stunnel-aes-256-gcm"),
]
IDLE_LIMIT_KIB = 8.0
FIRST_BYTE_LIMIT_US = 1000.0


def native_targets(agg, idle):
    """Issue 3's targets for tt://, as (title, figures, verdict or None when a
    system needed was not measured) lines, plus the machine-readable record."""
    lines, record = [], {}
    tunnels = [n for n in agg if n.startswith(("stunnel-", "ssh-"))]
    for tt, ss, ssh, _ in NATIVE_TARGETS:
        if tt not in agg:
            continue
        t = agg[tt]
        rec = record[tt] = {}
        if ss in agg:
            up, down, worst = tput_ratios(t, agg[ss])
            rec["throughput_vs_ss"] = {"up": up, "down": down, "met": worst >= 2}
            lines.append((f"{tt}: throughput >= 2x {ss}",
                          f"up {t['up_MBps']:.0f} vs {agg[ss]['up_MBps']:.0f} MB/s = {up:.2f}x, "
                          f"down {t['down_MBps']:.0f} vs {agg[ss]['down_MBps']:.0f} MB/s = "
                          f"{down:.2f}x", worst >= 2))
        if tunnels:
            best_up = max(tunnels, key=lambda n: agg[n]["up_MBps"])
            best_dn = max(tunnels, key=lambda n: agg[n]["down_MBps"])
            up = t["up_MBps"] / agg[best_up]["up_MBps"]
            down = t["down_MBps"] / agg[best_dn]["down_MBps"]
            ok = min(up, down) >= 1
            rec["throughput_vs_fastest_tunnel"] = {"up": up, "up_of": best_up, "down": down,
                                                   "down_of": best_dn, "met": ok}
            lines.append((f"{tt}: throughput >= the fastest of stunnel and ssh",
                          f"up {t['up_MBps']:.0f} vs {agg[best_up]['up_MBps']:.0f} MB/s "
                          f"({best_up}) = {up:.2f}x, down {t['down_MBps']:.0f} vs "
                          f"{agg[best_dn]['down_MBps']:.0f} MB/s ({best_dn}) = {down:.2f}x", ok))
        if ss in agg:
            d = (t["lat_med_us"] - agg[ss]["lat_med_us"]) / 1000
            ok = d <= 0
            rec["latency_vs_ss"] = {"tt_us": t["lat_med_us"], "ss_us": agg[ss]["lat_med_us"],
                                    "met": ok}
            lines.append((f"{tt}: SOCKS connect + first echoed byte <= {ss}",
                          f"{t['lat_med_us']:.0f} vs {agg[ss]['lat_med_us']:.0f} µs "
                          f"({d:+.3f} ms)", ok))
        ok = t["fb_med_us"] <= FIRST_BYTE_LIMIT_US
        rec["first_byte"] = {"p50_us": t["fb_med_us"], "p90_us": t["fb_p90_us"], "met": ok}
        lines.append((f"{tt}: first byte (destination speaks first) <= 1 ms",
                      f"p50 {t['fb_med_us']:.0f} µs (p90 {t['fb_p90_us']:.0f} µs)", ok))
        if ssh in agg:
            o = agg[ssh]
            ok = (t["up_cpu_s_per_GB"] <= o["up_cpu_s_per_GB"]
                  and t["down_cpu_s_per_GB"] <= o["down_cpu_s_per_GB"])
            rec["cpu_vs_ssh"] = {"tt": [t["up_cpu_s_per_GB"], t["down_cpu_s_per_GB"]],
                                 "ssh": [o["up_cpu_s_per_GB"], o["down_cpu_s_per_GB"]],
                                 "met": ok}
            lines.append((f"{tt}: CPU s/GB <= {ssh}",
                          f"up {t['up_cpu_s_per_GB']:.2f} vs {o['up_cpu_s_per_GB']:.2f}, down "
                          f"{t['down_cpu_s_per_GB']:.2f} vs {o['down_cpu_s_per_GB']:.2f}", ok))
        m = idle.get(tt)
        if m:
            kib = m["server_kib_per_conn"]
            ok = kib <= IDLE_LIMIT_KIB
            rec["idle_server_kib"] = {"per_conn": kib, "met": ok}
            lines.append((f"{tt}: idle connection <= 8 KiB of server memory",
                          f"{kib:.1f} KiB per connection (tt server VmRSS growth over "
                          f"{idle['_n']} connections)", ok))
    return lines, record


# The web carriers' targets: (row, the row it is compared with, the least
# ratio of their throughputs, judged on the worse direction).
WEB_TPUT_TARGETS = [
    ("tt-tls-L", "stunnel-aes-256-gcm", 1.5),
    ("tt-tls", "stunnel-aes-256-gcm", 1.5),
    ("tt-wss", "tt-tls", 0.8),
    ("tt-wss", "v2ray-vless-wss", 2.0),
    ("tt-wss", "v2ray-vmess-wss", 2.0),
    ("tt-wss", "ss-v2ray-plugin", 2.0),
]
# A new stream on an open multiplexed connection against a new connection of
# the same carrier: (muxed row, fresh row); its time to first byte at most
# MUX_TTFB_LIMIT of the fresh one's.
MUX_TARGETS = [("tt-tls-mux", "tt-tls"), ("tt-wss-mux", "tt-wss")]
MUX_TTFB_LIMIT = 0.25


def web_targets(agg):
    """The targets of tls://, wss:// and --mux, as native_targets gives them."""
    lines, record = [], {}
    for a, b, least in WEB_TPUT_TARGETS:
        if a not in agg or b not in agg:
            continue
        up, down, worst = tput_ratios(agg[a], agg[b])
        ok = worst >= least
        record.setdefault(a, {})[f"throughput_vs_{b}"] = {"up": up, "down": down,
                                                           "least": least, "met": ok}
        lines.append((f"{a}: throughput >= {least:g}x {b}",
                      f"up {agg[a]['up_MBps']:.0f} vs {agg[b]['up_MBps']:.0f} MB/s = {up:.2f}x, "
                      f"down {agg[a]['down_MBps']:.0f} vs {agg[b]['down_MBps']:.0f} MB/s = "
                      f"{down:.2f}x", ok))
    for a, b in MUX_TARGETS:
        if a not in agg or b not in agg:
            continue
        # Both ways of timing a new stream: the client speaks first (latency:
        # connect, SOCKS5, one byte echoed) and the destination does (first
        # byte: its banner). Met when both are within the limit.
        lat = agg[a]["lat_med_us"] / agg[b]["lat_med_us"]
        fb = agg[a]["fb_med_us"] / agg[b]["fb_med_us"]
        ok = max(lat, fb) <= MUX_TTFB_LIMIT
        record.setdefault(a, {})[f"ttfb_vs_{b}"] = {"latency": lat, "first_byte": fb,
                                                     "limit": MUX_TTFB_LIMIT, "met": ok}
        lines.append((f"{a}: new stream's time to first byte <= {MUX_TTFB_LIMIT:g}x {b}'s "
                      "(a new connection each)",
                      f"echoed byte {agg[a]['lat_med_us']:.0f} vs {agg[b]['lat_med_us']:.0f} µs "
                      f"= {lat:.2f}x, banner {agg[a]['fb_med_us']:.0f} vs "
                      f"{agg[b]['fb_med_us']:.0f} µs = {fb:.2f}x", ok))
    return lines, record


def report(results, info, cfg, foreign, elapsed, idle):
    p = print
    p()
    p("## Machine")
    for k, v in info.items():
        p(f"- {k}: {v}")
    p()
    p(
        f"## Results: {cfg.rounds} rounds; {cfg.bytes / 2**20:.0f} MiB per transfer, "
        f"{cfg.count} connections per latency run, {cfg.fb_count} per first-byte run"
    )
    p()
    hdr = ("system", "up MB/s", "down MB/s", "CPU s/GB up", "CPU s/GB down",
           "latency µs (p50)", "(p90)", "first byte µs (p50)", "(p90)", "echo RTT µs",
           "clean rounds")
    p("| " + " | ".join(hdr) + " |")
    p("|" + "|".join("---" if i == 0 else "---:" for i in range(len(hdr))) + "|")
    agg = {}
    for name, rounds in results.items():
        a, used = {}, {}
        for k in rounds[0]:
            if k != "other_cpu":
                a[k], used[k] = med(rounds, k, cfg.max_other)
        agg[name] = a
        n_clean = used["up_MBps"]
        clean_s = f"{n_clean}/{len(rounds)}" if n_clean else f"- (<3/{len(rounds)})"
        p(
            f"| {name} | {fmt(a['up_MBps'], '.0f')} | {fmt(a['down_MBps'], '.0f')} | "
            f"{fmt(a['up_cpu_s_per_GB'], '.2f')} | {fmt(a['down_cpu_s_per_GB'], '.2f')} | "
            f"{fmt(a['lat_med_us'], '.0f')} | {fmt(a['lat_p90_us'], '.0f')} | "
            f"{fmt(a['fb_med_us'], '.0f')} | {fmt(a['fb_p90_us'], '.0f')} | "
            f"{fmt(a['rtt_med_us'], '.0f')} | {clean_s} |"
        )
    p()
    p("Each figure is a median over rounds. MB/s = 10^6 bytes/s. CPU s/GB: user+system CPU")
    p("seconds of all the proxy's processes per 10^9 bytes moved. Latency: connect + SOCKS5")
    p("CONNECT + 1-byte echo. First byte: connect + SOCKS5 CONNECT until the destination's")
    p("banner byte arrives (the destination speaks first). Echo RTT: 1-byte round trip on an")
    forwards = [n for n in results if n in TT_WEB and TT_WEB[n][1]
                or n in TT_NATIVE and TT_NATIVE[n][2] or n in STUNNEL_SUITES]
    p(f"open connection (p50). Forward systems ({', '.join(forwards) or 'none here'}) have no")
    p("SOCKS5 step: the client connects to a fixed forward port. Clean rounds: rounds in which other")
    p(f"processes took at most {cfg.max_other * 100:.0f}% of the CPU while this system was "
      "measured; the medians")
    p("are over those when there are at least 3, else over all rounds ('-').")
    p()

    if idle:
        p(f"## Idle connections: {idle['_n']} held open after {cfg.idle_warmup} warm-up ones")
        p()
        p("| system | server KiB/connection | client KiB/connection | server VmRSS KiB "
          "before → after | time to open them |")
        p("|---|---:|---:|---:|---:|")
        for name, m in idle.items():
            if name.startswith("_"):
                continue
            s0, s1 = m["server_rss_kib"]
            p(f"| {name} | {fmt(m['server_kib_per_conn'], '.1f')} | "
              f"{fmt(m['client_kib_per_conn'], '.1f')} | {s0} → {s1} | "
              f"{m['open_seconds']:.2f} s |")
        p()
        p("Growth of VmRSS (/proc/PID/status) over the idle connections, divided by their")
        p("number. Server: tt server, ss-server, stunnel's server, microsocks (its only")
        p("process), sshd's session processes (the listener's descendants), v2ray's server;")
        p("client: tt client, ss-local, stunnel's client, ssh, v2ray's client. With")
        p("v2ray-plugin each ss process counts with its plugin.")
        p()

    p("## Ratios")

    def cmp_line(a_name, b_name):
        a, b = agg[a_name], agg[b_name]
        up, down, _ = tput_ratios(a, b)
        return (f"- {a_name} vs {b_name}: throughput up {up:.2f}x, down {down:.2f}x; "
                f"latency {(a['lat_med_us'] - b['lat_med_us']) / 1000:+.3f} ms, "
                f"first byte {(a['fb_med_us'] - b['fb_med_us']) / 1000:+.3f} ms, "
                f"echo RTT {(a['rtt_med_us'] - b['rtt_med_us']) / 1000:+.3f} ms")

    pairs = []
    if "tt-tcp" in agg:
        pairs += [("tt-tcp", n) for n in ("microsocks", "ss-aes-256-gcm",
                                          "ss-chacha20-ietf-poly1305") if n in agg]
    for tt, ss, ssh, stunnel in NATIVE_TARGETS:
        if tt in agg:
            pairs += [(tt, n) for n in (ss, ssh, stunnel) if n in agg]
    if "tt-chacha20-16k" in agg and "tt-chacha20" in agg:
        pairs.append(("tt-chacha20-16k", "tt-chacha20"))
    if "tt-chacha20-L" in agg:
        # Both fixed forwards: the fair comparison for latency and first byte.
        pairs += [("tt-chacha20-L", n) for n in ("stunnel-chacha20", "tt-chacha20") if n in agg]
    for a, b, _ in WEB_TPUT_TARGETS:
        if a in agg and b in agg:
            pairs.append((a, b))
    for a, b in MUX_TARGETS + [("tt-tls", "tt-aes-256-gcm"), ("tt-tls-L", "tt-tls")]:
        if a in agg and b in agg:
            pairs.append((a, b))
    for a, b in dict.fromkeys(pairs):
        p(cmp_line(a, b))
    if "tt-chacha20-16k" in agg and "tt-chacha20" in agg:
        a, b = agg["tt-chacha20-16k"], agg["tt-chacha20"]
        p(f"- frame size 16384 vs 4096 (chacha20): CPU s/GB up {a['up_cpu_s_per_GB']:.2f} vs "
          f"{b['up_cpu_s_per_GB']:.2f}, down {a['down_cpu_s_per_GB']:.2f} vs "
          f"{b['down_cpu_s_per_GB']:.2f}")

    verdicts = {}
    if "tt-tcp" in agg and "microsocks" in agg:
        tt, o = agg["tt-tcp"], agg["microsocks"]
        tp = min(tt["up_MBps"] / o["up_MBps"], tt["down_MBps"] / o["down_MBps"])
        dl = (tt["lat_med_us"] - o["lat_med_us"]) / 1000
        df = (tt["fb_med_us"] - o["fb_med_us"]) / 1000
        verdicts["tt-tcp"] = {"throughput_vs_microsocks": {"worst": tp, "met": tp >= 3},
                              "latency_vs_microsocks_ms": {"echo": dl, "banner": df,
                                                           "met": max(dl, df) <= 0.3}}
        p()
        p("## Targets (plain carrier tcp:// vs microsocks)")
        p(f"- throughput >= 3x microsocks: {tp:.2f}x (worse direction) -> {verdict(tp >= 3)}")
        p(f"- connect-to-first-byte within 0.3 ms of microsocks: echo {dl:+.3f} ms, "
          f"banner {df:+.3f} ms -> {verdict(max(dl, df) <= 0.3)}")
    lines, rec = native_targets(agg, idle or {})
    verdicts.update(rec)
    if lines:
        p()
        p("## Targets (tt:// vs shadowsocks-libev, stunnel, ssh)")
        for title, figures, ok in lines:
            p(f"- {title}: {figures} -> {verdict(ok)}")
        for name in ("tt-tcp",):
            m = (idle or {}).get(name)
            if m:
                p(f"- (for comparison) {name}: idle connection "
                  f"{m['server_kib_per_conn']:.1f} KiB of tt server memory")
    lines, rec = web_targets(agg)
    for name, r in rec.items():
        verdicts.setdefault(name, {}).update(r)
    if lines:
        p()
        p("## Targets (tls://, wss:// and --mux vs stunnel, v2ray and v2ray-plugin)")
        for title, figures, ok in lines:
            p(f"- {title}: {figures} -> {verdict(ok)}")
    if "direct" in agg:
        d = agg["direct"]
        proxies = [a for n, a in agg.items() if n != "direct"]
        p()
        p("## Load generator")
        p(f"- direct loopback (ttbench alone): up {d['up_MBps']:.0f} MB/s, down "
          f"{d['down_MBps']:.0f} MB/s; ttbench CPU {d['up_gen_cpu_s_per_GB']:.2f} s/GB up, "
          f"{d['down_gen_cpu_s_per_GB']:.2f} s/GB down (client + destination)")
        if proxies:
            best = max(max(a["up_MBps"], a["down_MBps"]) for a in proxies)
            head = min(d["up_MBps"], d["down_MBps"]) / best
            p(f"- headroom: direct is {head:.1f}x the fastest proxy figure ({best:.0f} MB/s)"
              + ("" if head >= 1.5 else "  WARNING: the load generator may be limiting"))
    p()
    p(f"## Run: {elapsed:.0f} s; while measuring, other activity used about "
      f"{foreign['share'] * 100:.0f}% of the machine's CPU time (hypervisor steal "
      f"{foreign['steal'] * 100:.1f}%)")
    if foreign["share"] > 0.05:
        top = ", ".join(f"{n} {s:.1f} s" for n, s in foreign["top"]) or "short-lived processes"
        p(f"  WARNING: the machine was not idle (e.g. {top}); figures are disturbed.")
    return agg, verdicts


# ---- main ------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 70 s: fewer rounds, "
                    "bytes and connections")
    ap.add_argument("--rounds", type=int, help="rounds over all systems (default 7, quick 3)")
    ap.add_argument("--bytes", type=int, help="bytes per transfer (default 512 MiB, quick "
                    "128 MiB)")
    ap.add_argument("--count", type=int, help="connections per latency run, and round trips "
                    "per echo-RTT run (default 400, quick 150)")
    ap.add_argument("--fb-count", type=int, help="connections per first-byte run (default 50, "
                    "quick 20: proxies that stall 44-51 ms per banner make this the slow part)")
    ap.add_argument("--idle", type=int, help="idle connections held open for the memory "
                    "measurement (default 1000; 0 skips it)")
    ap.add_argument("--idle-systems", help="systems of the run measured with idle "
                    "connections, comma-separated, or 'all' (default "
                    f"those of {','.join(IDLE_SYSTEMS + IDLE_SYSTEMS_WEB)} in the run; "
                    "stunnel-aes-256-gcm only with --group web)")
    ap.add_argument("--idle-warmup", type=int, default=50, help="connections opened before "
                    "the first memory reading (default 50)")
    ap.add_argument("--group", choices=sorted(GROUPS), default="default", help="the systems "
                    "to run: 'default' (tcp:// and tt:// against microsocks, shadowsocks-libev, "
                    "stunnel and ssh; about 7 min), 'web' (tls://, wss:// and --mux against "
                    "stunnel, v2ray and v2ray-plugin: " + ",".join(WEB_SYSTEMS) + "; about "
                    "7 min) or 'all' (both, about 14 min)")
    ap.add_argument("--systems", help="comma-separated, instead of a group's, from "
                    f"{','.join(KNOWN_SYSTEMS)} (the last {len(EXTRA_SYSTEMS)} are in no group)")
    ap.add_argument("--tt", default=str(ROOT / "build" / "tt"), help="the tt binary")
    ap.add_argument("--ttbench", default=str(ROOT / "build" / "bench" / "ttbench"),
                    help="the ttbench binary")
    ap.add_argument("--max-other", type=float, default=0.10, help="a system's round during "
                    "which other processes took more than this share of the CPU is left out of "
                    "the medians, if at least 3 clean rounds remain (default 0.10)")
    ap.add_argument("--copy", action="store_true", help="load generator moves bulk data with "
                    "send/recv (copies) instead of sendfile/splice")
    ap.add_argument("--json", help="also write every round's figures and the medians here")
    ap.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and "
                    "configuration files")
    a = ap.parse_args()
    a.rounds = a.rounds or (3 if a.quick else 7)
    a.bytes = a.bytes or (128 << 20 if a.quick else 512 << 20)
    a.count = a.count or (150 if a.quick else 400)
    a.fb_count = a.fb_count or (20 if a.quick else 50)
    a.idle = 1000 if a.idle is None else a.idle
    if a.systems is None:
        a.systems = ",".join(GROUPS[a.group])
    a.systems = [ALIASES.get(s, s) for s in a.systems.split(",") if s]
    if a.idle_systems is None:
        # Of these, those in the run. The default group's stay as they were
        # (stunnel-aes-256-gcm joins only with --group web).
        idle = IDLE_SYSTEMS_WEB if a.group == "web" else (
            IDLE_SYSTEMS + [s for s in IDLE_SYSTEMS_WEB if s not in ALL_SYSTEMS])
        a.idle_systems = ",".join(idle)
    if a.idle_systems == "all":
        a.idle_systems = [s for s in a.systems if s != "direct"]
    else:
        a.idle_systems = [ALIASES.get(s, s) for s in a.idle_systems.split(",") if s]
    for s in a.systems + a.idle_systems:
        if s not in KNOWN_SYSTEMS:
            ap.error(f"unknown system {s} (known: {', '.join(KNOWN_SYSTEMS)})")
    return a


def raise_nofile(want=65536):
    """The idle-connection section holds thousands of sockets in ttbench and
    in every proxy: raise the limit that all started processes inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))  # root may raise hard
            return
        except (ValueError, OSError):
            pass
    new_soft = hard if hard == resource.RLIM_INFINITY or hard < want else want
    if soft != resource.RLIM_INFINITY and soft < new_soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    cfg = parse_args()
    if cfg.copy:
        COPY.append("--copy")
    # Progress goes to stderr, the report to stdout: keep them in order.
    sys.stdout.reconfigure(line_buffering=True)
    binaries = {"tt": cfg.tt, "ttbench": cfg.ttbench}
    for name, path in binaries.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"run.py: {name} not found at {path} (build: scripts/build.sh release)")
    # Also SIGINT explicitly: started in the background by a script, Python
    # would inherit it ignored, and nothing could stop the run cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_sigterm)
    raise_nofile()
    logdir = tempfile.mkdtemp(prefix="ttbench-")
    # tt servers keep their self-signed certificate in a state directory:
    # the run's own, so that a benchmark leaves nothing in /var/lib/tt.
    os.environ.setdefault("TT_STATE_DIR", logdir)
    procs = Procs(logdir)
    info = machine_info(binaries)
    print("# tt benchmark", flush=True)
    print(f"load average at start: {open('/proc/loadavg').read().split()[0]}", flush=True)
    ok = False
    t_start = time.monotonic()
    ticks_start = all_cpu_ticks()
    try:
        cfg.dest_port, cfg.banner_port = free_port(), free_port()
        server = procs.start(
            "ttbench-serve",
            [cfg.ttbench, "serve", "--port", str(cfg.dest_port), "--banner-port",
             str(cfg.banner_port)] + COPY,
        )
        wait_listening(procs, cfg.dest_port, [server])
        wait_listening(procs, cfg.banner_port, [server])
        ctx = Ctx(procs, binaries, cfg, logdir)
        systems = [start_system(n, ctx) for n in cfg.systems]
        # Memory per idle connection first, while every proxy process is
        # fresh: after the transfers their heaps hold freed buffers that new
        # connections would reuse unseen.
        idle = {}
        if cfg.idle > 0:
            t_idle = time.monotonic()
            idle["_n"] = cfg.idle
            for s in systems:
                if s.kind == "direct" or s.name not in cfg.idle_systems:
                    continue
                m = idle[s.name] = idle_memory(s, cfg, binaries)
                procs.check_alive(s.watch)
                print(f"idle {s.name:>26}: server {fmt(m['server_kib_per_conn'], '.1f')} KiB, "
                      f"client {fmt(m['client_kib_per_conn'], '.1f')} KiB per connection "
                      f"(opened in {m['open_seconds']:.1f} s)", file=sys.stderr, flush=True)
            idle["_seconds"] = time.monotonic() - t_idle
        # One short pass: each system answers at all (a broken one
        # fails here, in seconds) and every process has its pages in.
        for s in systems:
            ttbench(binaries, ["latency"] + route(s, cfg) + ["--count", "20", "--warmup", "0"],
                    timeout=60)
            ttbench(binaries, ["firstbyte"] + route(s, cfg, banner=True)
                    + ["--count", "2", "--warmup", "0"], timeout=60)
            ttbench(binaries, ["throughput"] + COPY + route(s, cfg)
                    + ["--bytes", str(min(cfg.bytes, 64 << 20)), "--dir", "up"], timeout=60)
        results = {s.name: [] for s in systems}
        t_rounds = time.monotonic()
        watch = CpuWatch(procs)
        total = CpuWatch(procs)
        for rnd in range(cfg.rounds):
            # Rotate the order so no system always runs first or last in a round.
            order = systems[rnd % len(systems):] + systems[: rnd % len(systems)]
            for s in order:
                procs.check_alive(s.watch)
                r = measure(s, cfg, binaries, server, watch)
                results[s.name].append(r)
                print(
                    f"round {rnd + 1}/{cfg.rounds} {s.name:>26}: up {r['up_MBps']:7.0f} MB/s  "
                    f"down {r['down_MBps']:7.0f} MB/s  latency {r['lat_med_us']:6.0f} µs  "
                    f"first byte {r['fb_med_us']:7.0f} µs  rtt {r['rtt_med_us']:4.0f} µs  "
                    f"(others used "
                    f"{r['other_cpu'] * 100:.0f}% of the CPU)",
                    file=sys.stderr, flush=True,
                )
        rounds_s = time.monotonic() - t_rounds
        ours = procs.pids() | {os.getpid()}
        ticks_end = all_cpu_ticks()
        # Whatever else ran during the bench took CPU from it: say how much.
        foreign_by = {}
        for pid, (name, t) in ticks_end.items():
            if pid in ours:
                continue
            prev = ticks_start.get(pid)
            d = t - (prev[1] if prev and prev[0] == name else 0)
            if d > 0:
                foreign_by[name] = foreign_by.get(name, 0) + d / CLK_TCK
        share, steal = total.mark()
        foreign = {
            "share": share,
            "steal": steal,
            "top": sorted(foreign_by.items(), key=lambda kv: -kv[1])[:4],
        }
        for s in systems:
            procs.check_alive(s.watch)
        elapsed = time.monotonic() - t_start
        agg, verdicts = report(results, info, cfg, foreign, elapsed, idle)
        if idle:
            print(f"  (the rounds took {rounds_s:.0f} s, the idle-connection section "
                  f"{idle['_seconds']:.0f} s)")
        if cfg.json:
            with open(cfg.json, "w") as f:
                json.dump({"machine": info, "config": {k: getattr(cfg, k) for k in
                          ("group", "rounds", "bytes", "count", "fb_count", "idle",
                           "idle_warmup", "idle_systems", "systems", "max_other", "copy")},
                           "rounds": results, "medians": agg, "idle": idle,
                           "verdicts": verdicts, "other_cpu": foreign,
                           "elapsed_s": elapsed, "rounds_s": rounds_s}, f, indent=1)
        ok = True
    except BenchError as e:
        print(f"run.py: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
    finally:
        procs.stop()
        if ok and not cfg.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print(f"run.py: process logs in {logdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
