#!/usr/bin/python3
"""Transparent proxying next to sshuttle, ssh -D and tt's own SOCKS5 entry.

Run as root (it makes network namespaces, a private sshd and nftables rules):

    sudo bench/transparent.py [--rounds 3] [--bytes 268435456] [--count 200]
                              [--dns-count 200]

Two network namespaces joined by one veth pair:

    client ns  c0 10.79.0.1/24  <---->  s0 10.79.0.2/24 + 10.79.0.3/24  server ns

The server namespace runs a private sshd on 10.79.0.2:22 (its own host key and
authorized key, made here), a tt server (tt:// on 10.79.0.2), and the
destination, ttbench serve on 10.79.0.3. The destination has an address of its
own so that redirecting it (DEST/32) never catches the tunnels' own
connections to 10.79.0.2.

In the client namespace, one system at a time:
  sshuttle      sshuttle -r root@10.79.0.2 DEST/32 (--method nft), over the sshd;
  tt-ssh-redir  tt client -s ssh://root@10.79.0.2 --redirect DEST/32 -l none;
  ssh-D         ssh -N -D 127.0.0.1:P to the same sshd, ttbench through SOCKS5;
  tt-redir      tt client -s tt://10.79.0.2:P --redirect DEST/32 -l none;
  tt-socks      tt client -s tt://10.79.0.2:P -l 127.0.0.1:P, ttbench through SOCKS5;
  direct        no tunnel at all (the ceiling, for reference);
  tt-ssh-redir-copy  (only when named in --systems) tt-ssh-redir with
                TT_SPLICE=0: tt's relay copies instead of splicing.
  tt-socks-nft  (only when named in --systems) tt-socks plus
                --redirect UNUSED/32: its nftables table in place, unused.
The transparent systems' ttbench connects straight to DEST: the nftables
redirect carries it. Every ssh uses the same sshd and the same cipher (-c).

Each round starts every system, measures throughput up and down (MB/s) and the
latency of a new connection (connect + SOCKS5 CONNECT where there is one + the
echo of its first byte), and stops it again; rounds alternate the systems so
drift hits all alike. The figures are medians over the rounds; the ratios are
those of issue 12 item 6.

DNS (unless --dns-count 0): the server namespace also runs unbound on
10.79.1.53, an address on its loopback that the client namespace has no
route to, answering every name under tt-bench.test. with one address (a
local-zone redirect, TTL 300). Each namespace gets its own resolv.conf
(/etc/netns/NAME/resolv.conf, which `ip netns exec` mounts): the server's
names unbound, the client's names 10.79.2.53, routed to the server
namespace, which does not forward, so only a capture answers there.
sshuttle, tt-ssh-redir and tt-redir then run with --dns (tt without
--dns-server: over ssh:// the remote resolv.conf's nameserver, over tt://
the tt server's own), and bench/dnsstub.py in the client namespace times
UDP lookups to the resolv.conf nameserver: the first of the run, --dns-count
cold ones (names never asked before: neither tt's cache nor anything else
has them) and --dns-count cached ones (one name again and again: tt answers
from its TTL cache; sshuttle has none and asks unbound each time). The row
"direct" times the same lookups from the server namespace straight to
unbound, without any tunnel (the floor).

Every process is stopped by pid (with its descendants) and the namespaces are
deleted at the end, on an error and on Ctrl-C alike.
"""

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/run.py's helpers (the script's directory is on sys.path).
from run import BenchError, descendants, ttbench, write_sshd_config

ROOT = Path(__file__).resolve().parent.parent
CLIENT_IP, SERVER_IP, DEST_IP = "10.79.0.1", "10.79.0.2", "10.79.0.3"
DEST_PORT, TT_PORT = 7001, 7002
SOCKS_TT, SOCKS_SSH = 1080, 1081
# DNS: unbound on the server namespace's loopback (the client has no route
# to it); the client's resolv.conf names an address nothing answers at.
RESOLVER_IP, CLIENT_NS_IP = "10.79.1.53", "10.79.2.53"
ZONE, ZONE_ANSWER = "tt-bench.test", "10.79.1.99"
# The systems with a --dns of their own, and direct (unbound asked from the
# server namespace) for reference.
DNS_SYSTEMS = ["sshuttle", "tt-ssh-redir", "tt-redir", "direct"]
DNS_KEYS = ["dns_first", "dns_cold", "dns_cold_p90", "dns_cached", "dns_cached_p90"]
UNBOUND_CONF = """\
server:
    interface: {addr}@53
    use-syslog: no
    verbosity: 0
    chroot: ""
    username: ""
    directory: "{wd}"
    pidfile: "{wd}/unbound.pid"
    access-control: 10.79.0.0/16 allow
    local-zone: "{zone}." redirect
    local-data: "{zone}. 300 IN A {answer}"
remote-control:
    control-enable: no
"""
SYSTEMS = ["sshuttle", "tt-ssh-redir", "ssh-D", "tt-redir", "tt-socks", "direct"]
# Run only when named in --systems: tt-ssh-redir with TT_SPLICE=0, its relay
# copying through user space instead of splicing (the A/B of that change).
# tt-socks-nft: tt-socks with --redirect of an address nothing uses, so that
# tt's nftables table (and with it connection tracking on every packet of the
# namespace) is there while the traffic still goes through SOCKS5: what the
# redirect's rules cost apart from the redirect itself.
EXTRA = ["tt-ssh-redir-copy", "tt-socks-nft"]
UNUSED_IP = "10.79.3.1"


# ---- processes -----------------------------------------------------------------


class Procs:
    def __init__(self, logdir):
        self.logdir = Path(logdir)
        self.procs = []
        self.started = 0

    def start(self, name, ns, argv, env=None):
        # One log per start: a readiness line from an earlier round must not
        # count for this one.
        self.started += 1
        log = self.logdir / f"{name}-{self.started}.log"
        with open(log, "wb") as f:
            p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=subprocess.STDOUT, env=env)
        p.name, p.log = name, log
        self.procs.append(p)
        return p

    def wait_log(self, p, pattern, timeout=20.0):
        """Waits until P's log matches PATTERN (its readiness line)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if re.search(pattern, p.log.read_text(errors="replace")):
                return
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError(f"{p.name}: no '{pattern}' in its log "
                         f"(exit {p.poll()}):\n{tail(p.log)}")

    def stop(self, procs=None):
        """SIGTERM to PROCS (default: all) and their descendants, by pid,
        then SIGKILL to whatever is still there after 5 s."""
        procs = list(self.procs if procs is None else procs)
        pids = [p.pid for p in procs if p.poll() is None]
        pids += list(descendants(pids))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        while time.monotonic() < end and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.05)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in procs:
            p.wait()
            self.procs.remove(p)


def tail(path, n=15):
    try:
        return "\n".join("    " + l for l in Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def run(argv, timeout=30):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BenchError(f"failed ({r.returncode}): {' '.join(argv)}\n    {r.stderr.strip()}")
    return r.stdout


def wait_listening(ns, port, procs, timeout=20.0):
    """Waits until something in NS listens on PORT (for programs that log
    nothing when ready: sshd, ssh -D)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = run(["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"])
        if out.strip():
            return
        for p in procs:
            if p.poll() is not None:
                raise BenchError(f"{p.name} exited ({p.returncode}):\n{tail(p.log)}")
        time.sleep(0.05)
    raise BenchError(f"nothing listens on port {port} in {ns} after {timeout} s")


def wait_ready(sock, p, timeout):
    """Waits for READY=1 from P on the sd_notify datagram socket SOCK."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(0.2)
        try:
            if b"READY=1" in sock.recv(4096):
                return
        except socket.timeout:
            pass
        if p.poll() is not None:
            break
    raise BenchError(f"{p.name}: no readiness message (exit {p.poll()}):\n{tail(p.log)}")


# ---- the namespaces ----------------------------------------------------------


class Net:
    def __init__(self):
        tag = f"{os.getpid()}"
        self.client, self.server = f"ttb-c-{tag}", f"ttb-s-{tag}"
        self.made, self.etc = [], []
        try:
            self._make()
        except BaseException:
            # The caller has no Net to delete yet: undo what was made here.
            self.delete()
            raise

    def _make(self):
        # Each namespace's resolv.conf, which `ip netns exec` mounts over
        # /etc/resolv.conf for what it starts (so before anything starts).
        for ns, server in ((self.client, CLIENT_NS_IP), (self.server, RESOLVER_IP)):
            d = Path("/etc/netns") / ns
            d.mkdir(parents=True, exist_ok=True)
            self.etc.append(d)
            (d / "resolv.conf").write_text(f"nameserver {server}\n")
        for ns in (self.client, self.server):
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
            self.ip(ns, "link", "set", "lo", "up")
        self.ip(self.client, "link", "add", "c0", "type", "veth", "peer", "name", "s0",
                "netns", self.server)
        self.ip(self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "c0")
        self.ip(self.server, "addr", "add", f"{SERVER_IP}/24", "dev", "s0")
        self.ip(self.server, "addr", "add", f"{DEST_IP}/24", "dev", "s0")
        self.ip(self.client, "link", "set", "c0", "up")
        self.ip(self.server, "link", "set", "s0", "up")
        # The far resolver's address, on the server's loopback: the client
        # namespace has no route to it. The client's nameserver is routed
        # to the server namespace, which does not forward: a query there
        # is answered only if captured.
        self.ip(self.server, "addr", "add", f"{RESOLVER_IP}/32", "dev", "lo")
        self.ip(self.client, "route", "add", f"{CLIENT_NS_IP}/32", "via", SERVER_IP)

    @staticmethod
    def ip(ns, *args):
        run(["ip", "-n", ns] + list(args))

    def delete(self):
        for ns in self.made:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self.made = []
        for d in self.etc:
            shutil.rmtree(d, ignore_errors=True)
        self.etc = []


# ---- the systems ---------------------------------------------------------------


class Bench:
    def __init__(self, args, procs, net, workdir):
        self.args, self.procs, self.net, self.wd = args, procs, net, Path(workdir)
        self.tt = str(args.tt)
        self.ttbench = str(args.ttbench)
        self.key = run([self.tt, "keygen"]).strip()
        self.env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        self.dns = args.dns_count > 0
        self.ssh = self._ssh_keys()

    def _ssh_keys(self):
        d = self.wd
        write_sshd_config(d, f"{SERVER_IP}:22", [f"Ciphers {self.args.cipher}"])
        return ["ssh", "-F", "/dev/null", "-i", str(d / "client_key"), "-c", self.args.cipher,
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR"]

    def start_servers(self):
        """The processes every round shares: sshd, tt server, destination."""
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        s = self.net.server
        sshd = self.procs.start("sshd", s, ["/usr/sbin/sshd", "-D", "-e", "-f",
                                            str(self.wd / "sshd_config")])
        dest = self.procs.start("dest", s, [self.ttbench, "serve", "--host", DEST_IP,
                                            "--port", str(DEST_PORT)])
        tts = self.procs.start("tt-server", s, [self.tt, "server", "-l",
                                                f"tt://{SERVER_IP}:{TT_PORT}", "-k", self.key,
                                                "--allow", f"{DEST_IP}/32"])
        wait_listening(s, 22, [sshd])
        wait_listening(s, DEST_PORT, [dest])
        self.procs.wait_log(tts, r"tt server listening on")
        if self.dns:
            conf = self.wd / "unbound.conf"
            conf.write_text(UNBOUND_CONF.format(addr=RESOLVER_IP, wd=self.wd, zone=ZONE,
                                                answer=ZONE_ANSWER))
            run(["unbound-checkconf", str(conf)])
            ub = self.procs.start("unbound", s, ["unbound", "-d", "-c", str(conf)])
            wait_listening(s, 53, [ub])

    def start(self, name):
        """Starts system NAME in the client namespace; returns its processes
        and ttbench's route arguments."""
        c, pr = self.net.client, self.procs
        direct = ["--direct"]
        dns = ["--dns"] if self.dns and name != "direct" else []
        if name == "direct":
            return [], direct
        if name == "sshuttle":
            # sshuttle logs "Connected to server." before its firewall rules
            # are in; its systemd readiness message comes after them.
            path = self.wd / "sshuttle.notify"
            path.unlink(missing_ok=True)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready:
                ready.bind(str(path))
                p = pr.start(name, c, ["sshuttle", "--method", "nft", "-r", f"root@{SERVER_IP}",
                                       "--ssh-cmd", shlex.join(self.ssh), f"{DEST_IP}/32"]
                             + dns,
                             env=dict(self.env, NOTIFY_SOCKET=str(path)))
                wait_ready(ready, p, timeout=30)
            return [p], direct
        if name in ("tt-ssh-redir", "tt-ssh-redir-copy"):
            env = dict(self.env, TT_SPLICE="0") if name.endswith("-copy") else self.env
            p = pr.start(name, c, [self.tt, "client", "-s", f"ssh://root@{SERVER_IP}",
                                   "--ssh-command", shlex.join(self.ssh),
                                   "--redirect", f"{DEST_IP}/32", "-l", "none"] + dns, env=env)
            pr.wait_log(p, r"redirecting TCP to .* nftables table")
            pr.wait_log(p, r" is up \(ssh pid ", timeout=30)
            if dns:
                pr.wait_log(p, r"capturing DNS to \d+ nameserver", timeout=30)
            return [p], direct
        if name == "ssh-D":
            p = pr.start(name, c, self.ssh + ["-N", "-D", f"127.0.0.1:{SOCKS_SSH}",
                                              f"root@{SERVER_IP}"], env=self.env)
            wait_listening(c, SOCKS_SSH, [p], timeout=30)
            return [p], ["--socks", f"127.0.0.1:{SOCKS_SSH}"]
        tt = [self.tt, "client", "-s", f"tt://{SERVER_IP}:{TT_PORT}", "-k", self.key]
        if name == "tt-redir":
            p = pr.start(name, c, tt + ["--redirect", f"{DEST_IP}/32", "-l", "none"] + dns)
            pr.wait_log(p, r"redirecting TCP to .* nftables table")
            if dns:
                pr.wait_log(p, r"capturing DNS to \d+ nameserver")
            return [p], direct
        if name in ("tt-socks", "tt-socks-nft"):
            nft = ["--redirect", f"{UNUSED_IP}/32"] if name.endswith("-nft") else []
            p = pr.start(name, c, tt + ["-l", f"127.0.0.1:{SOCKS_TT}"] + nft)
            pr.wait_log(p, r"SOCKS5 proxy listening on")
            return [p], ["--socks", f"127.0.0.1:{SOCKS_TT}"]
        raise BenchError(f"unknown system {name}")

    def ttbench_run(self, args, timeout):
        return ttbench({"ttbench": self.ttbench}, args, timeout,
                       prefix=["ip", "netns", "exec", self.net.client])

    def dns_lookups(self, name, tag):
        """Times lookups through NAME's --dns (for direct: unbound asked
        from the server namespace); returns the DNS_KEYS figures in us."""
        ns, extra = self.net.client, []
        if name == "direct":
            ns, extra = self.net.server, ["--server", RESOLVER_IP]
        argv = ["ip", "netns", "exec", ns, sys.executable, str(ROOT / "bench" / "dnsstub.py"),
                "--zone", ZONE, "--tag", tag, "--count", str(self.args.dns_count),
                "--expect", ZONE_ANSWER] + extra
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise BenchError(f"timed out: {' '.join(argv)}") from None
        if r.returncode != 0:
            raise BenchError(f"failed ({r.returncode}): {' '.join(argv)}\n    {r.stderr.strip()}")
        d = json.loads(r.stdout)
        return {"dns_first": d["first_us"],
                "dns_cold": statistics.median(d["cold_us"]), "dns_cold_p90": p90(d["cold_us"]),
                "dns_cached": statistics.median(d["cached_us"]),
                "dns_cached_p90": p90(d["cached_us"])}

    def measure(self, name, tag):
        procs, route = self.start(name)
        try:
            target = ["--target", f"{DEST_IP}:{DEST_PORT}"]
            out = {}
            for d in ("up", "down"):
                r = self.ttbench_run(["throughput"] + route + target
                                     + ["--bytes", str(self.args.bytes), "--dir", d], timeout=300)
                out[d] = r["MBps"]
            r = self.ttbench_run(["latency"] + route + target + ["--count", str(self.args.count)],
                                 timeout=120)
            out["lat"] = r["median_us"]
            if self.dns and name in DNS_SYSTEMS:
                out.update(self.dns_lookups(name, f"{tag}-{name}"))
            for p in procs:
                if p.poll() is not None:
                    raise BenchError(f"{p.name} exited ({p.returncode}):\n{tail(p.log)}")
            return out
        finally:
            self.procs.stop(procs)


# ---- report ------------------------------------------------------------------


def p90(xs):
    return statistics.quantiles(xs, n=10, method="inclusive")[8]


def machine():
    def first(path, key):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    ssh_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "tcp_congestion_control": cmd(["sysctl", "-n", "net.ipv4.tcp_congestion_control"]),
        "sshuttle": cmd(["sshuttle", "--version"]),
        "ssh": ssh_v,
    }


def report(rounds, args):
    med = {}
    for name in SYSTEMS + EXTRA:
        rs = [r[name] for r in rounds if name in r]
        if rs:
            med[name] = {k: statistics.median(r[k] for r in rs)
                         for k in ["up", "down", "lat"] + DNS_KEYS if k in rs[0]}
    print(f"\nmedians over {len(rounds)} rounds ({args.bytes} bytes per transfer, "
          f"{args.count} connections for latency; cipher {args.cipher}):")
    print(f"  {'system':<14}{'up MB/s':>10}{'down MB/s':>11}{'connect+echo us':>17}")
    for name, m in med.items():
        print(f"  {name:<14}{m['up']:>10.1f}{m['down']:>11.1f}{m['lat']:>17.0f}")

    def ratio(a, b, target, what):
        if a not in med or b not in med:
            return
        for d in ("up", "down"):
            x = med[a][d] / med[b][d]
            ok = "ok" if x >= target else "MISSED"
            # The ratio within each round too: both systems ran minutes
            # apart at most, so a busy spell of the machine hits both.
            per = [r[a][d] / r[b][d] for r in rounds if a in r and b in r]
            print(f"  {a} / {b} {d:<4} {x:6.2f}x  (target >= {target}x, {what}) {ok}; "
                  f"per round: median {statistics.median(per):.2f}x, min {min(per):.2f}x")

    print("\nratios (issue 12 item 6):")
    ratio("tt-ssh-redir", "sshuttle", 10, "transparent ssh:// vs sshuttle")
    ratio("tt-ssh-redir", "ssh-D", 0.8, "transparent ssh:// vs ssh -D")
    ratio("tt-redir", "tt-socks", 0.9, "transparent tt:// vs tt SOCKS5")
    ratio("tt-ssh-redir", "tt-ssh-redir-copy", 1.0, "splicing vs copying relay")
    ratio("tt-socks-nft", "tt-socks", 1.0, "SOCKS5 with vs without the nftables table")
    ratio("tt-redir", "tt-socks-nft", 0.9, "transparent vs SOCKS5, both with the table")
    if "tt-ssh-redir" in med and "sshuttle" in med:
        a, b = med["tt-ssh-redir"]["lat"], med["sshuttle"]["lat"]
        print(f"  connect+first echoed byte: tt-ssh-redir {a:.0f} us, sshuttle {b:.0f} us "
              f"({a / b:.2f}x)")
    dns = [n for n in DNS_SYSTEMS if n in med and "dns_cold" in med[n]]
    if dns:
        print(f"\nDNS lookups, us (medians over the rounds of each round's median and p90 "
              f"of {args.dns_count} lookups; first: the run's first lookup):")
        print(f"  {'system':<14}{'first':>8}{'cold med':>10}{'cold p90':>10}"
              f"{'cached med':>12}{'cached p90':>12}")
        for n in dns:
            m = med[n]
            print(f"  {n:<14}{m['dns_first']:>8.0f}{m['dns_cold']:>10.0f}"
                  f"{m['dns_cold_p90']:>10.0f}{m['dns_cached']:>12.0f}{m['dns_cached_p90']:>12.0f}")
        for a in ("tt-ssh-redir", "tt-redir"):
            if a in dns and "sshuttle" in dns:
                x = " ".join(f"{k[4:]} {med[a][k] / med['sshuttle'][k]:.2f}x"
                             for k in DNS_KEYS[1:])
                print(f"  {a} / sshuttle: {x}")
    print("\n" + json.dumps({"machine": machine(), "medians": med}, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bytes", type=int, default=256 << 20, help="bytes per throughput transfer")
    ap.add_argument("--count", type=int, default=200, help="connections timed for latency")
    ap.add_argument("--dns-count", type=int, default=200,
                    help="DNS lookups timed per kind (cold, cached); 0: no DNS phase")
    ap.add_argument("--cipher", default="aes128-gcm@openssh.com",
                    help="the one SSH cipher of every ssh-based system")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    ap.add_argument("--tt", type=Path, default=ROOT / "build" / "tt")
    ap.add_argument("--ttbench", type=Path, default=ROOT / "build" / "bench" / "ttbench")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("transparent.py: run as root (namespaces, sshd, nftables)")
    systems = args.systems.split(",")
    for s in systems:
        if s not in SYSTEMS + EXTRA:
            sys.exit(f"transparent.py: unknown system '{s}' "
                     f"(known: {', '.join(SYSTEMS + EXTRA)})")
    for b in (args.tt, args.ttbench):
        if not os.access(b, os.X_OK):
            sys.exit(f"transparent.py: {b} missing: run scripts/build.sh release")
    if "sshuttle" in systems and not shutil.which("sshuttle"):
        sys.exit("transparent.py: sshuttle not installed (scripts/install-deps.sh)")
    if args.dns_count > 0 and not shutil.which("unbound"):
        sys.exit("transparent.py: unbound not installed (scripts/install-deps.sh), "
                 "or --dns-count 0")

    def on_term(*_):
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM alike unwind through the finally below.
    signal.signal(signal.SIGTERM, on_term)
    wd = tempfile.mkdtemp(prefix="tt-transparent-")
    procs, net, rounds, keep_logs = Procs(wd), None, [], False
    try:
        net = Net()
        bench = Bench(args, procs, net, wd)
        bench.start_servers()
        for i in range(args.rounds):
            # Alternate the order each round, so no system always runs first.
            order = systems if i % 2 == 0 else systems[::-1]
            res = {}
            for name in order:
                res[name] = bench.measure(name, f"{os.getpid()}-r{i + 1}")
                m = res[name]
                line = (f"round {i + 1} {name:<14} up {m['up']:8.1f} MB/s  down {m['down']:8.1f} "
                        f"MB/s  connect+echo {m['lat']:8.0f} us")
                if "dns_cold" in m:
                    line += (f"  dns first {m['dns_first']:.0f} cold {m['dns_cold']:.0f}"
                             f"/{m['dns_cold_p90']:.0f} cached {m['dns_cached']:.0f}"
                             f"/{m['dns_cached_p90']:.0f} us")
                print(line, flush=True)
            rounds.append(res)
        report(rounds, args)
    except BenchError as e:
        keep_logs = True
        print(f"transparent.py: {e}\n(logs in {wd})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("transparent.py: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        procs.stop()
        if net:
            net.delete()
        if not keep_logs:
            shutil.rmtree(wd, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
