"""tt client --redirect over ssh://: transparent proxying through a real
sshd that runs in the server namespace of test_redirect's network.

The client namespace reaches the destination namespace only through the
tunnel; tt's ssh child logs in to the sshd at 10.77.0.2 and its SOCKS5
connections leave from the server namespace, which can reach the
destination. The ssh child is a process of its own, so its connection to
the sshd does not carry tt's mark: only the exemption of the server's
address keeps it out of the redirect rules."""
import glob
import os
import re
import signal

import pytest

from helpers import run_tt, start_sshd
from test_redirect import echo, echo_through, net, ruleset, unreachable  # noqa: F401 (fixtures)

SERVER = "10.77.0.2"


def ssh_client(procs, net, tmp_path, *redirects, server=SERVER):
    """The sshd in the server namespace on SERVER and a tt client over
    ssh:// to it, redirecting REDIRECTS; returns (the client, the pid of its
    ssh child)."""
    sshd = start_sshd(procs, tmp_path / "ssh", host=server, netns=net.server)
    url = "ssh://root@" + ("[%s]" % server if ":" in server else server)
    argv = ["client", "-s", url, "--ssh-command", " ".join(sshd.command), "-l", "none"]
    for r in redirects:
        argv += ["--redirect", r]
    c = procs.tt(argv, name="tt-client", netns=net.client, env=sshd.env)
    c.wait_log(r"redirecting TCP to .* nftables table inet tt_(\d+)", timeout=60)
    m = c.wait_log(r"%s is up \(ssh pid (\d+)," % re.escape(url), timeout=30)
    return c, int(m.group(1))


def children(pid):
    """The pids of PID's children, from every thread's list."""
    out = set()
    for f in glob.glob("/proc/%d/task/*/children" % pid):
        with open(f) as fh:
            out.update(int(p) for p in fh.read().split())
    return out


def test_app_reaches_destination_by_ip(procs, net, echo, tmp_path):
    # Without tt the destination is out of the client namespace's reach.
    for dest in ("10.78.0.2", "fd78::2"):
        assert unreachable(net, dest, echo)
    ssh_client(procs, net, tmp_path, "10.78.0.0/24", "fd78::/64")
    for dest in ("10.78.0.2", "fd78::2"):
        echo_through(net, dest, echo)
        echo_through(net, dest, echo, b"again\n")


@pytest.mark.parametrize("server", ["10.77.0.2", "fd77::2"])
def test_redirect_everything_does_not_loop(procs, net, echo, tmp_path, server):
    # 0.0.0.0/0 and ::/0 cover the sshd's address: the ssh child's
    # connection to it must pass untouched, or ssh would log in to tt's own
    # listener.
    c, _ = ssh_client(procs, net, tmp_path, "0.0.0.0/0", "::/0", server=server)
    for host in ("10.78.0.2", "fd78::2", "10.78.0.3"):
        echo_through(net, host, echo)
    log = c.log()
    assert "no redirected destination" not in log, log
    assert "restarting" not in log, log


def test_ssh_child_killed_is_restarted(procs, net, echo, tmp_path):
    c, first = ssh_client(procs, net, tmp_path, "10.78.0.0/24")
    # `ip netns exec` execs tt, so the ssh child is a child of this pid.
    assert first in children(c.popen.pid), (first, children(c.popen.pid))
    echo_through(net, "10.78.0.2", echo)
    os.kill(first, signal.SIGKILL)
    c.wait_log(r"ssh %d to ssh://root@10\.77\.0\.2 was killed by signal 9; restarting" % first)
    m = c.wait_log(r"is up \(ssh pid (?!%d\b)(\d+)" % first, 30)
    second = int(m.group(1))
    assert second in children(c.popen.pid)
    # A new redirected connection goes through the new child.
    echo_through(net, "10.78.0.2", echo, b"after the restart\n")
    assert c.terminate_and_wait() == 0


def test_missing_ssh_command_is_one_line(net):
    r = run_tt(["client", "-s", "ssh://root@" + SERVER, "--ssh-command", "/nonexistent/ssh",
                "-l", "none", "--redirect", "10.78.0.0/24"], netns=net.client)
    assert r.returncode != 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert re.search(r"cannot run '/nonexistent/ssh' \(--ssh-command\): not found or not "
                     r"executable", lines[0]), r.stderr
    assert "tt_" not in ruleset(net.client)
