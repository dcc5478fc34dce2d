#!/usr/bin/python3
"""tt's benchmark: tt's plain carrier against microsocks and shadowsocks-libev.

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

Reports the median over the rounds of each figure, a table and the ratios of
the targets. Everything started is killed by pid at the end, on errors and on
Ctrl-C. Usage: bench/run.py [--quick] [--rounds N] [--bytes N] [--count N]
[--systems a,b] [--json FILE]; see --help.
"""

import argparse
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
SS_PASSWORD = "ttbench-not-a-secret"

ALL_SYSTEMS = ["direct", "tt", "microsocks", "ss-aes-256-gcm", "ss-chacha20-ietf-poly1305"]


class BenchError(Exception):
    pass


# ---- processes -------------------------------------------------------------


class Procs:
    """Every long-running process this run started, so all of them are killed
    (by pid) however the run ends."""

    def __init__(self, logdir):
        self.logdir = Path(logdir)
        self.procs = []  # (name, Popen, logpath)

    def start(self, name, argv):
        log = self.logdir / f"{name}.log"
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        self.procs.append((name, p, log))
        return p

    def pids(self):
        return {p.pid for _, p, _ in self.procs}

    def check_alive(self, procs):
        for p in procs:
            if p.poll() is not None:
                name, log = next((n, lg) for n, q, lg in self.procs if q is p)
                raise BenchError(f"{name} (pid {p.pid}) exited with {p.returncode}:\n{tail(log)}")

    def stop(self, procs=None):
        targets = [t for t in self.procs if procs is None or t[1] in procs]
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


def cpu_ticks(pids):
    """utime+stime in clock ticks of the processes PIDS (all their threads,
    live and exited)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
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
    def __init__(self, name, socks_port, procs):
        self.name = name
        self.socks_port = socks_port  # None: direct
        self.procs = procs  # Popen list: whose CPU is the proxy's

    @property
    def pids(self):
        return [p.pid for p in self.procs]


def start_system(name, procs, binaries):
    if name == "direct":
        return System(name, None, [])
    socks = free_port()
    if name == "tt":
        srv_port = free_port()
        # Default options, log level included: what a user runs.
        s = procs.start(
            "tt-server",
            [binaries["tt"], "server", "-l", f"tcp://{HOST}:{srv_port}", "--allow", "127.0.0.0/8"],
        )
        wait_listening(procs, srv_port, [s])
        c = procs.start(
            "tt-client",
            [binaries["tt"], "client", "-s", f"tcp://{HOST}:{srv_port}", "-l", f"{HOST}:{socks}"],
        )
        wait_listening(procs, socks, [s, c])
        return System(name, socks, [c, s])
    if name == "microsocks":
        # microsocks 1.0.3 has no quiet switch: it logs one line per
        # connection to the log file, as it would in real use.
        m = procs.start("microsocks", ["microsocks", "-i", HOST, "-p", str(socks)])
        wait_listening(procs, socks, [m])
        return System(name, socks, [m])
    if name.startswith("ss-"):
        method = name[3:]
        srv_port = free_port()
        common = ["-k", SS_PASSWORD, "-m", method]
        s = procs.start(f"{name}-server", ["ss-server", "-s", HOST, "-p", str(srv_port)] + common)
        wait_listening(procs, srv_port, [s])
        c = procs.start(
            f"{name}-local",
            ["ss-local", "-s", HOST, "-p", str(srv_port), "-b", HOST, "-l", str(socks)] + common,
        )
        wait_listening(procs, socks, [s, c])
        return System(name, socks, [c, s])
    raise BenchError(f"unknown system {name}")


# ---- measurements ------------------------------------------------------------


def ttbench(binaries, args, timeout):
    argv = [binaries["ttbench"]] + args
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {' '.join(argv)}") from None
    if r.returncode != 0:
        raise BenchError(f"failed ({r.returncode}): {' '.join(argv)}\n    {r.stderr.strip()}")
    return json.loads(r.stdout)


def via(system):
    return ["--direct"] if system.socks_port is None else ["--socks", f"{HOST}:{system.socks_port}"]


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
            ["throughput"] + COPY + via(system)
            + ["--target", f"{HOST}:{cfg.dest_port}", "--bytes", str(cfg.bytes), "--dir", d],
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
        ["latency"] + via(system)
        + ["--target", f"{HOST}:{cfg.dest_port}", "--count", str(cfg.count)],
        timeout=120,
    )
    out["lat_med_us"], out["lat_p90_us"] = r["median_us"], r["p90_us"]
    r = ttbench(
        binaries,
        ["rtt"] + via(system)
        + ["--target", f"{HOST}:{cfg.dest_port}", "--count", str(cfg.count)],
        timeout=120,
    )
    out["rtt_med_us"] = r["median_us"]
    r = ttbench(
        binaries,
        ["firstbyte"] + via(system)
        + ["--banner", f"{HOST}:{cfg.banner_port}", "--count", str(cfg.fb_count)],
        timeout=300,
    )
    out["fb_med_us"], out["fb_p90_us"] = r["median_us"], r["p90_us"]
    # One figure for the whole round of this system: over a few seconds the
    # clock-tick granularity of /proc/stat is small enough to mean something.
    out["other_cpu"] = watch.mark()[0]
    return out


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


def report(results, info, cfg, foreign, elapsed):
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
    p("open connection (p50). Clean rounds: rounds in which other processes took at most")
    p(f"{cfg.max_other * 100:.0f}% of the CPU while this system was measured; the medians are "
      "over those when")
    p("there are at least 3, else over all rounds ('-').")
    p()

    p("## Ratios")
    lines = []
    tt = agg.get("tt")
    for other in [n for n in agg if n not in ("tt", "direct")]:
        o = agg[other]
        if tt is None:
            break
        lines.append(
            f"- tt vs {other}: throughput up {tt['up_MBps'] / o['up_MBps']:.2f}x, "
            f"down {tt['down_MBps'] / o['down_MBps']:.2f}x; "
            f"latency {(tt['lat_med_us'] - o['lat_med_us']) / 1000:+.3f} ms, "
            f"first byte {(tt['fb_med_us'] - o['fb_med_us']) / 1000:+.3f} ms, "
            f"echo RTT {(tt['rtt_med_us'] - o['rtt_med_us']) / 1000:+.3f} ms"
        )
    for line in lines:
        p(line)
    if tt is not None and "microsocks" in agg:
        o = agg["microsocks"]
        tp = min(tt["up_MBps"] / o["up_MBps"], tt["down_MBps"] / o["down_MBps"])
        dl = (tt["lat_med_us"] - o["lat_med_us"]) / 1000
        df = (tt["fb_med_us"] - o["fb_med_us"]) / 1000
        p()
        p("## Targets (plain carrier vs microsocks)")
        p(f"- throughput >= 3x microsocks: {tp:.2f}x (worse direction) -> "
          f"{'MET' if tp >= 3 else 'NOT MET'}")
        p(f"- connect-to-first-byte within 0.3 ms of microsocks: echo {dl:+.3f} ms, "
          f"banner {df:+.3f} ms -> {'MET' if max(dl, df) <= 0.3 else 'NOT MET'}")
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
    return agg


# ---- main ------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="about one minute: fewer rounds, bytes "
                    "and connections")
    ap.add_argument("--rounds", type=int, help="rounds over all systems (default 7, quick 3)")
    ap.add_argument("--bytes", type=int, help="bytes per transfer (default 1 GiB, quick 256 MiB)")
    ap.add_argument("--count", type=int, help="connections per latency run, and round trips "
                    "per echo-RTT run (default 500, quick 200)")
    ap.add_argument("--fb-count", type=int, help="connections per first-byte run (default 100, "
                    "quick 40: proxies that stall ~50 ms per banner make this the slow part)")
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS),
                    help=f"comma-separated subset of {','.join(ALL_SYSTEMS)}")
    ap.add_argument("--tt", default=str(ROOT / "build" / "tt"), help="the tt binary")
    ap.add_argument("--ttbench", default=str(ROOT / "build" / "bench" / "ttbench"),
                    help="the ttbench binary")
    ap.add_argument("--max-other", type=float, default=0.10, help="a system's round during "
                    "which other processes took more than this share of the CPU is left out of "
                    "the medians, if at least 3 clean rounds remain (default 0.10)")
    ap.add_argument("--copy", action="store_true", help="load generator moves bulk data with "
                    "send/recv (copies) instead of sendfile/splice")
    ap.add_argument("--json", help="also write every round's figures and the medians here")
    ap.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    a = ap.parse_args()
    a.rounds = a.rounds or (3 if a.quick else 7)
    a.bytes = a.bytes or (256 << 20 if a.quick else 1 << 30)
    a.count = a.count or (200 if a.quick else 500)
    a.fb_count = a.fb_count or (40 if a.quick else 100)
    a.systems = [s for s in a.systems.split(",") if s]
    for s in a.systems:
        if s not in ALL_SYSTEMS:
            ap.error(f"unknown system {s} (known: {', '.join(ALL_SYSTEMS)})")
    return a


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
    logdir = tempfile.mkdtemp(prefix="ttbench-")
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
        systems = [start_system(n, procs, binaries) for n in cfg.systems]
        # One short pass first: each system answers at all (a broken one
        # fails here, in seconds) and every process has its pages in.
        for s in systems:
            target = ["--target", f"{HOST}:{cfg.dest_port}"]
            ttbench(binaries, ["latency"] + via(s) + target + ["--count", "20", "--warmup", "0"],
                    timeout=60)
            ttbench(binaries, ["throughput"] + COPY + via(s) + target
                    + ["--bytes", str(min(cfg.bytes, 64 << 20)), "--dir", "up"], timeout=60)
        results = {s.name: [] for s in systems}
        watch = CpuWatch(procs)
        total = CpuWatch(procs)
        for rnd in range(cfg.rounds):
            # Rotate the order so no system always runs first or last in a round.
            order = systems[rnd % len(systems):] + systems[: rnd % len(systems)]
            for s in order:
                procs.check_alive(s.procs)
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
        elapsed = time.monotonic() - t_start
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
            procs.check_alive(s.procs)
        agg = report(results, info, cfg, foreign, elapsed)
        if cfg.json:
            with open(cfg.json, "w") as f:
                json.dump({"machine": info, "config": {k: getattr(cfg, k) for k in
                          ("rounds", "bytes", "count", "fb_count", "systems", "max_other",
                           "copy")},
                           "rounds": results, "medians": agg, "other_cpu": foreign,
                           "elapsed_s": elapsed}, f, indent=1)
        ok = True
    except BenchError as e:
        print(f"run.py: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
    finally:
        procs.stop()
        if ok and not cfg.keep_logs:
            for f in Path(logdir).iterdir():
                f.unlink()
            os.rmdir(logdir)
        else:
            print(f"run.py: process logs in {logdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
