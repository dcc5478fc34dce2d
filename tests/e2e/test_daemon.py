"""Daemon mode: `--daemon` returns only once tt listens (or with the error
that stopped it), `--pid-file` names the daemon and goes on a clean stop,
`--log-file` takes the log and is reopened on SIGHUP.

The daemons are not children of pytest: the `daemons` fixture tracks them by
their pid files and kills any left (by pid), even when a test fails. Their
sanitizer reports cannot reach a terminal, so ASAN_OPTIONS and UBSAN_OPTIONS
send them to files in the test's directory, which must stay empty.
"""

import glob
import os
import signal
import socket
import subprocess

import pytest

from helpers import (free_port, port_accepts, recv_exact, run_tt, sanitizer_env, socks_open,
                     start_server, tt_bin, wait_until)


def alive(pid):
    """True while PID runs (a zombie nobody reaps counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


class Daemons:
    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.pids = set()
        self.env = sanitizer_env()
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            self.env[var] += ":log_path=%s/%s" % (self.tmp, var.split("_")[0].lower())

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, args, pid_file=None, netns=None):
        """Runs `tt ARGS` (which detaches with --daemon) to its exit, in
        NETNS if given; tracks the daemon that PID_FILE then names."""
        r = run_tt(args, env=self.env, netns=netns)
        if pid_file and os.path.exists(pid_file):
            self.pids.add(read_pid(pid_file))
        return r

    def stop(self, pid):
        """SIGTERM and wait for PID to end."""
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), 10, "daemon %d to exit on SIGTERM" % pid)

    def reports(self):
        return sorted(glob.glob(os.path.join(self.tmp, "asan*")) +
                      glob.glob(os.path.join(self.tmp, "ubsan*")))

    def cleanup(self):
        left = [p for p in self.pids if alive(p)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        for pid in left:
            wait_until(lambda: not alive(pid), 10, "daemon %d to die of SIGKILL" % pid)
        return left


@pytest.fixture
def daemons(tmp_path):
    d = Daemons(tmp_path)
    yield d
    left = d.cleanup()
    assert not left, "daemons still running at the end of the test: %s" % left
    reports = d.reports()
    assert not reports, "sanitizer report from a daemon:\n%s" % open(reports[0]).read()


def server_args(port, *more):
    return ["server", "-l", "tcp://127.0.0.1:%d" % port, "--allow", "127.0.0.0/8"] + list(more)


def test_server_daemon_ready_pid_file_and_stop(daemons):
    port = free_port()
    pid_file, log = daemons.path("tt.pid"), daemons.path("tt.log")
    r = daemons.run(server_args(port, "--daemon", "--pid-file", pid_file, "--log-file", log),
                    pid_file)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    # Ready means listening: no wait here.
    assert port_accepts("127.0.0.1", port)
    pid = read_pid(pid_file)
    assert alive(pid)
    assert os.path.realpath("/proc/%d/exe" % pid) == os.path.realpath(tt_bin())
    assert os.getsid(pid) == pid, "the daemon leads a session of its own"
    assert os.readlink("/proc/%d/cwd" % pid) == "/"
    with open(log) as f:
        assert "tt server listening on tcp://127.0.0.1:%d" % port in f.read()

    daemons.stop(pid)
    assert not os.path.exists(pid_file), "the pid file stays after SIGTERM"
    with open(log) as f:
        assert "received SIGTERM, shutting down" in f.read()


@pytest.mark.parametrize("bad", [
    ["--bogus"],                        # refused by the parser, before the fork
    ["--session-linger", "0"],          # refused by the command's checks, after the fork
    ["--log-file", "x", "--syslog"],
], ids=["parser", "command check", "two log sinks"])
def test_daemon_bad_option_one_line_exit_2(daemons, bad):
    pid_file = daemons.path("tt.pid")
    r = daemons.run(server_args(free_port(), "--daemon", "--pid-file", pid_file) + bad, pid_file)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tt server: "), r.stderr
    assert not os.path.exists(pid_file)


def test_daemon_setup_failure_reaches_the_parent(daemons):
    # The port is taken: the daemon fails after the fork, and the command
    # reports its error line and status.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        pid_file, log = daemons.path("tt.pid"), daemons.path("tt.log")
        r = daemons.run(server_args(port, "--daemon", "--pid-file", pid_file, "--log-file", log),
                        pid_file)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "error: cannot listen on tcp://127.0.0.1:%d: address already in use" % port in lines[0]
    assert not os.path.exists(pid_file)
    with open(log) as f:
        assert "address already in use" in f.read()


def test_second_daemon_with_the_same_pid_file_is_refused(daemons):
    pid_file = daemons.path("tt.pid")
    r = daemons.run(server_args(free_port(), "--daemon", "--pid-file", pid_file, "--log-file",
                                daemons.path("a.log")), pid_file)
    assert r.returncode == 0, r.stderr
    first = read_pid(pid_file)
    port = free_port()
    r = daemons.run(server_args(port, "--daemon", "--pid-file", pid_file, "--log-file",
                                daemons.path("b.log")))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "names process %d, which is running" % first in r.stderr
    assert read_pid(pid_file) == first
    assert not port_accepts("127.0.0.1", port)
    daemons.stop(first)
    assert not os.path.exists(pid_file)


def test_stale_pid_file_is_taken_over(daemons):
    # A pid file left by a killed tt names no live process: no refusal.
    pid_file = daemons.path("tt.pid")
    p = subprocess.Popen(["true"])
    p.wait()
    with open(pid_file, "w") as f:
        f.write("%d\n" % p.pid)
    r = daemons.run(server_args(free_port(), "--daemon", "--pid-file", pid_file, "--log-file",
                                daemons.path("tt.log")), pid_file)
    assert r.returncode == 0, r.stderr
    pid = read_pid(pid_file)
    assert pid != p.pid and alive(pid)
    daemons.stop(pid)


def test_client_daemon(procs, daemons, echo):
    server = start_server(procs, ["--allow", "127.0.0.0/8"])
    socks = free_port()
    pid_file, log = daemons.path("client.pid"), daemons.path("client.log")
    r = daemons.run(["client", "-s", "tcp://127.0.0.1:%d" % server.port,
                     "-l", "127.0.0.1:%d" % socks, "--daemon", "--pid-file", pid_file,
                     "--log-file", log], pid_file)
    assert r.returncode == 0, r.stderr
    assert port_accepts("127.0.0.1", socks)
    with socks_open(("127.0.0.1", socks), "127.0.0.1", echo) as s:
        s.sendall(b"ping")
        assert recv_exact(s, 4, "echo through the daemon") == b"ping"
    with open(log) as f:
        assert "SOCKS5 proxy listening on 127.0.0.1:%d" % socks in f.read()
    daemons.stop(read_pid(pid_file))
    assert not os.path.exists(pid_file)


def test_sighup_reopens_the_log_file(daemons):
    pid_file, log = daemons.path("tt.pid"), daemons.path("tt.log")
    r = daemons.run(server_args(free_port(), "--daemon", "--pid-file", pid_file, "--log-file", log),
                    pid_file)
    assert r.returncode == 0, r.stderr
    pid = read_pid(pid_file)
    os.rename(log, log + ".1")  # what logrotate does
    os.kill(pid, signal.SIGHUP)
    wait_until(lambda: os.path.exists(log) and "reopened the log file" in open(log).read(), 10,
               "the SIGHUP line in a new log file")
    daemons.stop(pid)
    with open(log) as f:
        assert "received SIGTERM" in f.read()
    with open(log + ".1") as f:
        old = f.read()
    assert "listening on" in old and "SIGHUP" not in old and "SIGTERM" not in old


def test_log_file_without_daemon(daemons):
    # In the foreground too, --log-file takes the log off stderr.
    port, log = free_port(), daemons.path("tt.log")
    p = subprocess.Popen([tt_bin()] + server_args(port, "--log-file", log),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=daemons.env)
    daemons.pids.add(p.pid)
    try:
        wait_until(lambda: os.path.exists(log) and "listening on" in open(log).read(), 10,
                   "the listening line in the log file")
        assert port_accepts("127.0.0.1", port)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and err == "" and out == ""


def test_sigterm_right_after_readiness_is_a_clean_stop(daemons):
    """A service manager may stop a daemon the moment it reported ready:
    the SIGTERM must find tt's handler (its line, the pid file removed),
    not the default action. 50 starts, each stopped at once; the window
    was the few instructions between readiness and the loop's handlers."""
    for i in range(50):
        port, pid_file, log = free_port(), daemons.path("tt%d.pid" % i), daemons.path("tt%d.log" % i)
        r = daemons.run(server_args(port, "--daemon", "--pid-file", pid_file, "--log-file", log),
                        pid_file)
        assert r.returncode == 0, r.stderr
        pid = read_pid(pid_file)
        daemons.stop(pid)
        assert not os.path.exists(pid_file), "start %d: SIGTERM left the pid file" % i
        with open(log) as f:
            assert "received SIGTERM" in f.read(), "start %d: no clean stop" % i


def test_daemon_logs_to_syslog(daemons, tmp_path):
    """--daemon without --log-file logs to syslog: glibc's syslog(3) sends
    datagrams to /dev/log. tt runs in a mount namespace of its own whose
    /dev is a directory of the test's, holding the host's null, zero and
    random devices (bind mounts) and, as log, a datagram socket the test
    reads: the real path to a real socket, with nothing in tt changed for
    the test and nothing touched outside the namespace."""
    dev = tmp_path / "dev"
    dev.mkdir()
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind(str(dev / "log"))
    log.settimeout(10)
    binds = ""
    for node in ("null", "zero", "full", "random", "urandom"):
        (dev / node).touch()
        binds += "mount --bind /dev/%s %s/%s && " % (node, dev, node)
    port, pid_file = free_port(), daemons.path("tt.pid")
    argv = [tt_bin()] + server_args(port, "--daemon", "--pid-file", pid_file)
    script = binds + "mount --rbind %s /dev && exec \"$@\"" % dev
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                        "sh"] + argv, capture_output=True, text=True, timeout=30,
                       env=daemons.env)
    if os.path.exists(pid_file):
        daemons.pids.add(read_pid(pid_file))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    pid = read_pid(pid_file)

    def lines_until(text):
        got = []
        while not any(text in g for g in got):
            try:
                got.append(log.recv(4096).decode())
            except socket.timeout:
                pytest.fail("no syslog line with %r; got %r" % (text, got))
        return got

    got = lines_until("tt server listening on tcp://127.0.0.1:%d" % port)
    line = got[-1]
    # Facility daemon (3), level info (6): priority 3 * 8 + 6; tagged with
    # the daemon's name and pid.
    assert line.startswith("<30>"), line
    assert "tt[%d]: " % pid in line, line
    daemons.stop(pid)
    lines_until("received SIGTERM, shutting down")
    log.close()
