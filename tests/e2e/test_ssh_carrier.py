"""The ssh:// carrier against a private sshd (the `sshd` fixture): tt starts
one `ssh -N -D` child and opens each stream as a SOCKS5 CONNECT to it.
Readiness, restarts, ssh's own errors and the child's end are checked by
the pid and the log lines tt gives."""

import os
import re
import signal
import subprocess

from helpers import (
    bulk_echo,
    connect,
    free_port,
    halfclose_exchange,
    recv_exact,
    run_tt,
    socks_connect,
    socks_open,
    start_client,
    wait_until,
)


def ssh_client(procs, sshd, args=(), url=None, command=None, **kw):
    """A tt client over ssh:// to the private sshd (root, its key)."""
    command = command if command is not None else sshd.command
    url = url or "ssh://root@127.0.0.1"
    return start_client(procs, url, ["--ssh-command", " ".join(command)] + list(args),
                        env=sshd.env, **kw)


def ssh_pid(client):
    m = client.proc.wait_log(r"ssh://\S+ is up \(ssh pid (\d+), SOCKS5 on 127\.0\.0\.1:\d+\)",
                             timeout=30)
    return int(m.group(1))


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_curl_and_bulk_both_ways(procs, nginx, echo, sshd):
    c = ssh_client(procs, sshd)
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--socks5-hostname",
                        "127.0.0.1:%d" % c.socks_port, "http://127.0.0.1:%d/" % nginx.port],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == nginx.index, r.stderr
    bulk_echo(c.socks, echo)


def test_port_in_the_url_and_a_forward_with_half_close(procs, sshd):
    """-L works over ssh://, and ssh passes a half-close on: the answer comes
    after the application's FIN. The port comes from the URL here (ssh's -p),
    not from --ssh-command."""
    command = [w for w in sshd.command]
    i = command.index("-p")
    del command[i:i + 2]
    _, port = procs.peer("halfclose", "--body-size", 100000)
    c = ssh_client(procs, sshd, url="ssh://root@127.0.0.1:%d" % sshd.port, command=command,
                   socks=False, forwards=("127.0.0.1:%d" % port,))
    with connect(("127.0.0.1", c.forward_ports[0])) as s:
        halfclose_exchange(s)


def test_host_alias_from_ssh_config(procs, echo, sshd, tmp_path):
    """The host goes to ssh as typed, and without a port in the URL no -p is
    added: an ssh_config Host alias supplies the address, port, user and
    key."""
    cfg = tmp_path / "ssh_config"
    cfg.write_text("\n".join([
        "Host tt-e2e-alias",
        "    HostName 127.0.0.1",
        "    Port %d" % sshd.port,
        "    User root",
        "    IdentityFile %s" % sshd.key,
        "    IdentitiesOnly yes",
        "    StrictHostKeyChecking no",
        "    UserKnownHostsFile /dev/null",
    ]) + "\n")
    c = ssh_client(procs, sshd, ["-v"], url="ssh://tt-e2e-alias", command=["ssh", "-F", str(cfg)])
    m = c.proc.wait_log(r"started ssh \d+: (.*)")
    assert m.group(1).endswith(" -- tt-e2e-alias") and " -p " not in m.group(1), m.group(1)
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"via an alias")
        assert recv_exact(s, 12) == b"via an alias"


def test_refused_destination_fails_the_stream(procs, echo, sshd):
    c = ssh_client(procs, sshd)
    closed = free_port(("127.0.0.1",))
    s, rep = socks_connect(c.socks, "127.0.0.1", closed)
    s.close()
    # ssh -D closes the connection without a SOCKS5 reply when the far end
    # cannot connect, so the reason is not known here: general failure.
    assert rep[1] == 0x01, rep
    c.proc.wait_log(r"ssh: channel \d+: open failed: connect failed: Connection refused")
    # The stream after it is not affected.
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"after a refusal")
        assert recv_exact(s, 15) == b"after a refusal"


def test_wrong_key_is_said_once_and_streams_fail_fast(procs, sshd, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    command = [str(other) if w == sshd.key else w for w in sshd.command]
    c = ssh_client(procs, sshd, command=command)
    c.proc.wait_log(r"warn: ssh: root@127\.0\.0\.1: Permission denied \(publickey\)\.", 30)
    c.proc.wait_log(r"ssh \d+ to ssh://root@127\.0\.0\.1 exited with status 255; restarting in "
                    r"0\.5s")
    s, rep = socks_connect(c.socks, "127.0.0.1", 80, timeout=5)
    s.close()
    assert rep[1] == 0x01, rep
    c.proc.wait_log(r"cannot reach ssh://root@127\.0\.0\.1: ssh is not connected \(root@127\.0\."
                    r"0\.1: Permission denied \(publickey\)\.\)")
    # The next failures are not repeated at warn level.
    c.proc.wait_log(r"restarting in 1\.0s", 30)
    log = c.proc.log()
    assert len(re.findall(r"warn: ssh: root@127\.0\.0\.1: Permission denied", log)) == 1, log


def test_unknown_host_key_in_batch_mode(procs, sshd, tmp_path):
    command = [w for w in sshd.command if w not in ("StrictHostKeyChecking=no",)]
    i = command.index("UserKnownHostsFile=/dev/null")
    command[i] = "UserKnownHostsFile=%s" % (tmp_path / "known_hosts")
    del command[i - 2]  # the -o of StrictHostKeyChecking
    c = ssh_client(procs, sshd, command=command)
    c.proc.wait_log(r"warn: ssh: Host key verification failed\.", 30)
    s, rep = socks_connect(c.socks, "127.0.0.1", 80, timeout=5)
    s.close()
    assert rep[1] == 0x01, rep


def test_streams_wait_for_ssh_then_time_out(procs, sshd, tmp_path):
    """A child that never gets ready (here a stand-in that only sleeps):
    streams wait up to --connect-timeout, then fail with a clear line; the
    stand-in is ended at exit."""
    fake = tmp_path / "slow-ssh"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    c = ssh_client(procs, sshd, ["--connect-timeout", "1s", "-v"], command=[str(fake)])
    pid = int(c.proc.wait_log(r"started ssh (\d+): ").group(1))
    s, rep = socks_connect(c.socks, "127.0.0.1", 80, timeout=10)
    s.close()
    assert rep[1] == 0x01, rep
    c.proc.wait_log(r"cannot reach ssh://root@127\.0\.0\.1: ssh was not ready in time")
    assert c.proc.terminate_and_wait() == 0
    assert gone(pid), "the ssh child %d outlived tt" % pid


def test_sigterm_while_streams_wait(procs, sshd, tmp_path):
    """SIGTERM with streams waiting for a child that is not ready: they are
    cancelled, the child is ended, and tt exits cleanly (the process
    manager checks its status and sanitizer report)."""
    fake = tmp_path / "slow-ssh"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    c = ssh_client(procs, sshd, ["--connect-timeout", "60s", "-v"], command=[str(fake)])
    pid = int(c.proc.wait_log(r"started ssh (\d+): ").group(1))
    held = []
    for _ in range(3):
        s = connect(("127.0.0.1", c.socks_port))
        s.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50")
        held.append(s)
    wait_until(lambda: c.proc.log().count("a stream waits for ssh to be ready") == 3, 15,
               "three streams to wait")
    assert c.proc.terminate_and_wait() == 0
    assert gone(pid), "the ssh child %d outlived tt" % pid
    for s in held:
        s.close()


def test_killed_child_is_restarted_and_sigterm_ends_it(procs, echo, sshd):
    c = ssh_client(procs, sshd)
    first = ssh_pid(c)
    held = socks_open(c.socks, "127.0.0.1", echo)
    held.sendall(b"first")
    assert recv_exact(held, 5) == b"first"
    os.kill(first, signal.SIGKILL)
    # The stream open on the killed child ends; it does not hang.
    held.settimeout(15)
    try:
        assert held.recv(100) == b""
    except ConnectionResetError:
        pass
    held.close()
    c.proc.wait_log(r"ssh %d to ssh://root@127\.0\.0\.1 was killed by signal 9; restarting in "
                    r"0\.5s" % first)
    m = c.proc.wait_log(r"is up \(ssh pid (?!%d\b)(\d+)" % first, 30)
    second = int(m.group(1))
    # A stream opened at any moment after the kill waits for the new child.
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"second")
        assert recv_exact(s, 6) == b"second"
    assert gone(first)
    assert c.proc.terminate_and_wait() == 0
    assert gone(second), "the ssh child %d outlived tt" % second


def ended(pid):
    """PID has exited: gone, or a zombie nobody reaps yet (a child whose
    parent was killed belongs to whatever reaper the machine has)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_sigkill_of_tt_ends_the_ssh_child(procs, echo, sshd):
    """tt killed outright runs no code, yet its ssh child must not live on
    (holding a login and a port): the kernel ends it (PR_SET_PDEATHSIG, set
    by the guard tt starts it through, which becomes ssh in the same
    process)."""
    c = ssh_client(procs, sshd)
    pid = ssh_pid(c)
    with open("/proc/%d/comm" % pid) as f:
        assert f.read().strip() == "ssh", "the pid tt reports is not ssh's"
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"up")
        assert recv_exact(s, 2) == b"up"
    c.proc.kill()
    c.proc.popen.wait(10)
    wait_until(lambda: ended(pid), 10, "the ssh child %d to end after SIGKILL of tt" % pid)


def test_stream_before_readiness_waits(procs, echo, sshd):
    """The first stream is sent as soon as the SOCKS5 port is up, usually
    before ssh has logged in: it waits and works."""
    c = ssh_client(procs, sshd)
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"early")
        assert recv_exact(s, 5) == b"early"


def test_command_line_errors():
    cases = [
        (["-s", "ssh://h", "--mux"], r"--mux needs a tt server at the far end; ssh://"),
        (["-s", "tcp://u@127.0.0.1:1"], r"invalid --server 'tcp://u@127\.0\.0\.1:1': tcp:// takes "
                                        r"no USER@"),
        (["-s", "ssh://u:pw@h"], r"a password in the URL is not supported"),
        (["-s", "ssh://h", "--ssh-command", "/nonexistent/ssh -v"],
         r"cannot run '/nonexistent/ssh' \(--ssh-command\): not found or not executable"),
        (["-s", "ssh://h", "--ssh-command", " "], r"--ssh-command takes a program"),
        (["-s", "tt://h:1", "-k", "x", "--ssh-command", "ssh"],
         r"--ssh-command applies to ssh:// only"),
        (["-s", "ssh://h", "-L", "127.0.0.1:0"], r"ssh:// needs a destination"),
    ]
    for args, want in cases:
        r = run_tt(["client", "-l", "127.0.0.1:0"] + args)
        assert r.returncode in (1, 2), (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert re.search(want, r.stderr), (args, r.stderr)
        assert len(lines) <= 2, (args, r.stderr)
