"""The socks5:// carrier against real SOCKS5 proxies (microsocks, and ssh -D
with a private sshd), and the command-line behaviours that came with the
carrier types: -L without a destination, SIGHUP. The cases common to every
carrier (bulk, 200 streams, half-close, SIGTERM ...) run over socks5:// with
ssh -D as its far end in test_every_carrier.py."""

import os
import signal
import subprocess

import pytest

from helpers import (
    bulk_echo,
    connect,
    free_port,
    halfclose_exchange,
    port_accepts,
    recv_exact,
    recv_until_eof,
    socks_connect,
    socks_open,
    start_client,
    start_server,
    start_ssh_d,
    wait_until,
)

KEY = "socks5 carrier test key"


def start_microsocks(procs, user=None, password=None):
    port = free_port(("127.0.0.1",))
    argv = ["microsocks", "-i", "127.0.0.1", "-p", str(port)]
    if user:
        argv += ["-u", user, "-P", password]
    p = procs.start(argv, name="microsocks", env=dict(os.environ))
    wait_until(lambda: p.popen.poll() is not None or port_accepts("127.0.0.1", port), 15,
               "microsocks to listen on %d" % port)
    assert p.popen.poll() is None, p.log()
    return port


@pytest.fixture
def ssh_d(procs, sshd):
    """'ssh -N -D' to the private sshd: a SOCKS5 proxy whose connections
    leave from the sshd's side. Its SOCKS port."""
    return start_ssh_d(procs, sshd)[1]


def test_microsocks_carries_bulk_both_ways(procs, echo):
    proxy = start_microsocks(procs)
    c = start_client(procs, "socks5://127.0.0.1:%d" % proxy)
    bulk_echo(c.socks, echo)


def test_microsocks_login_and_a_wrong_password(procs, echo):
    proxy = start_microsocks(procs, "alice", "s3cret")
    good = start_client(procs, "socks5://127.0.0.1:%d" % proxy,
                        ["--proxy-user", "alice", "--proxy-pass", "s3cret"], name="good")
    with socks_open(good.socks, "127.0.0.1", echo) as s:
        s.sendall(b"logged in")
        assert recv_exact(s, 9) == b"logged in"
    # The password from the environment keeps it out of the process list.
    env = {"TT_PROXY_PASS": "wrong"}
    bad = start_client(procs, "socks5://127.0.0.1:%d" % proxy, ["--proxy-user", "alice"],
                       name="bad", env=env)
    s, rep = socks_connect(bad.socks, "127.0.0.1", echo)
    s.close()
    assert rep[1] == 0x02, rep  # "not allowed", passed on to the application
    bad.proc.wait_log(r"socks5://127\.0\.0\.1:%d: the proxy refused the username or password"
                      % proxy)


def test_proxy_reply_codes_reach_the_application(procs):
    proxy = start_microsocks(procs)
    c = start_client(procs, "socks5://127.0.0.1:%d" % proxy)
    closed = free_port(("127.0.0.1",))
    s, rep = socks_connect(c.socks, "127.0.0.1", closed)
    s.close()
    assert rep[1] == 0x05, rep  # connection refused, as microsocks said it


def test_forward_holds_early_data_until_the_proxy_answers(procs, echo):
    """A -L application writes at once; microsocks reads each message with
    one recv(), so bytes sent behind the CONNECT would be lost. The carrier
    holds them until the proxy's reply."""
    proxy = start_microsocks(procs)
    dest = "127.0.0.1:%d" % echo
    c = start_client(procs, "socks5://127.0.0.1:%d" % proxy, socks=False, forwards=(dest,))
    for i in range(5):
        with connect(("127.0.0.1", c.forward_ports[0])) as s:
            msg = b"early %d " % i * 100
            s.sendall(msg)
            assert recv_exact(s, len(msg)) == msg


def test_ssh_d_carries_http_and_half_close(procs, nginx, ssh_d):
    c = start_client(procs, "socks5://127.0.0.1:%d" % ssh_d)
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--socks5-hostname",
                        "127.0.0.1:%d" % c.socks_port, "http://127.0.0.1:%d/" % nginx.port],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == nginx.index, r.stderr
    # ssh passes a half-close on: the answer comes after our FIN.
    _, port = procs.peer("halfclose", "--body-size", 100000)
    with socks_open(c.socks, "127.0.0.1", port) as s:
        halfclose_exchange(s)


def test_unreachable_proxy_is_named(procs):
    closed = free_port(("127.0.0.1",))
    c = start_client(procs, "socks5://127.0.0.1:%d" % closed)
    s, rep = socks_connect(c.socks, "127.0.0.1", 80)
    s.close()
    assert rep[1] != 0
    c.proc.wait_log(r"cannot reach socks5://127\.0\.0\.1:%d: connection refused" % closed)


# ---------------------------------------------------------------------------
# -L without a destination, SIGHUP


def test_forward_without_destination_goes_to_the_servers(procs, echo):
    srv = start_server(procs, ["-d", "127.0.0.1:%d" % echo, "--allow", "127.0.0.0/8"])
    p = procs.tt(["client", "-s", srv.url, "-l", "none", "-L", "127.0.0.1:0"], name="tt-client")
    m = p.wait_log(r"forward listening on 127\.0\.0\.1:(\d+) -> the server's fixed destination")
    with connect(("127.0.0.1", int(m.group(1)))) as s:
        s.sendall(b"to wherever -d says")
        assert recv_exact(s, 19) == b"to wherever -d says"


def test_forward_without_destination_refused_by_a_server_without_d(procs):
    srv = start_server(procs, ["-v"])
    p = procs.tt(["client", "-s", srv.url, "-l", "none", "-L", "127.0.0.1:0"], name="tt-client")
    m = p.wait_log(r"forward listening on 127\.0\.0\.1:(\d+)")
    with connect(("127.0.0.1", int(m.group(1)))) as s:
        s.sendall(b"x")
        data, _ = recv_until_eof(s, 15)
    assert data == b""
    srv.proc.wait_log(r"names no destination .* this server has no -d")


def test_sighup_is_logged_and_ignored(procs, echo):
    srv = start_server(procs, ["--allow", "127.0.0.0/8"])
    c = start_client(procs, srv.url)
    for p in (srv.proc, c.proc):
        p.popen.send_signal(signal.SIGHUP)
        p.wait_log(r"received SIGHUP: reloading is not supported yet; ignored")
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"still here")
        assert recv_exact(s, 10) == b"still here"
