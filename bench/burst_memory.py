#!/usr/bin/python3
"""Memory of an idle tt server after a burst of connections, for one or more
tt builds (docs/BENCHMARKS.md, "Memory after a burst").

    bench/burst_memory.py [--conns N] [--batch B] [--ttbench PATH] TT [TT ...]

For each TT binary, on 127.0.0.1: a `ttbench serve` destination, `tt server`
(tt://, a keygen key) and `tt client` (SOCKS5); `ttbench idle` opens B
connections through them at once (each: SOCKS5 CONNECT, one byte each way),
then closes them all, N / B times. VmRSS of the server and the client is
read with the last batch open, and again once the server holds no
connection and has been idle for 3 s. Every process is started here and
killed by pid at the end. RLIMIT_NOFILE is raised to the hard limit; each
stream costs the server and the client two descriptors, so B must stay
under half of it."""

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import HOST, free_port, listening_ports, rss_kib  # noqa: E402

def raise_nofile():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def established(port):
    """Established connections whose local port is PORT (the server's side)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "sport", "= :%d" % port],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def wait_for(cond, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("burst_memory: timed out waiting for " + what)
        time.sleep(0.05)  # polling interval, not synchronisation


def measure(tt, ttbench, conns, batch, tmp):
    key = subprocess.run([tt, "keygen"], capture_output=True, text=True, check=True).stdout.strip()
    dest, srv, socks = free_port(), free_port(), free_port()
    procs = []

    def start(name, argv):
        log = open(os.path.join(tmp, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             preexec_fn=raise_nofile)
        procs.append(p)
        return p

    try:
        start("serve", [ttbench, "serve", "--port", str(dest), "--host", HOST])
        server = start("server", [tt, "server", "-l", "%s:%d" % (HOST, srv), "-k", key,
                                  "--allow", "127.0.0.0/8"])
        client = start("client", [tt, "client", "-s", "%s:%d" % (HOST, srv), "-k", key,
                                  "-l", "%s:%d" % (HOST, socks)])
        wait_for(lambda: {dest, srv, socks} <= listening_ports(), "the listeners")
        base = rss_kib([server.pid]), rss_kib([client.pid])
        for _ in range(max(1, conns // batch)):
            idle = subprocess.Popen([ttbench, "idle", "--socks", "%s:%d" % (HOST, socks),
                                     "--target", "%s:%d" % (HOST, dest)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
            procs.append(idle)
            idle.stdin.write("%d\n" % batch)
            idle.stdin.flush()
            if not idle.stdout.readline():
                sys.exit("burst_memory: ttbench idle failed")
            held = rss_kib([server.pid]), rss_kib([client.pid])
            idle.stdin.close()
            idle.wait(60)
            wait_for(lambda: established(srv) == 0, "the server to close every connection")
        time.sleep(3)  # the measured idle time
        after = rss_kib([server.pid]), rss_kib([client.pid])
        return base, held, after
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tt", nargs="+")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--ttbench", default="build/bench/ttbench")
    a = ap.parse_args()
    print("VmRSS in MiB: before / with %d connections open / idle 3 s after %d closed"
          % (a.batch, a.conns))
    with tempfile.TemporaryDirectory() as tmp:
        for tt in a.tt:
            base, held, after = measure(tt, a.ttbench, a.conns, a.batch, tmp)
            print("%s\n  server %6.1f / %6.1f / %6.1f\n  client %6.1f / %6.1f / %6.1f"
                  % (tt, base[0] / 1024, held[0] / 1024, after[0] / 1024,
                     base[1] / 1024, held[1] / 1024, after[1] / 1024))


if __name__ == "__main__":
    main()
