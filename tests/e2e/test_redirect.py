"""tt client --redirect: transparent proxying with nftables.

Three network namespaces of the test's own, joined by veth pairs whose
addresses exist only inside them:

    client ns  c0 10.77.0.1     fd77::1   ──  s0 10.77.0.2   fd77::2    server ns
                                              s1 10.78.0.1   fd78::1
                                              ──  d0 10.78.0.2 (and .3)  fd78::2   dest ns

The client namespace routes everything to the server namespace, which does
not forward: an application there reaches the destination namespace only
through the tunnel, which is what --redirect gives it, with no proxy setting.
"""
import os
import re
import socket
import subprocess
import uuid

import pytest

from helpers import NetNs, free_port, recv_exact, run_tt, sanitizer_env, tt_bin
from test_daemon import alive, daemons, read_pid  # noqa: F401 (daemons is a fixture)

KEY = "correct horse battery staple"


def veth(a, a_if, b, b_if):
    """A veth pair with one end in each of namespaces A and B, both up."""
    tmp = "tt" + uuid.uuid4().hex[:10]
    a.ip("link", "add", tmp, "type", "veth", "peer", "name", b_if, "netns", b.name)
    a.ip("link", "set", tmp, "name", a_if)
    a.ip("link", "set", a_if, "up")
    b.ip("link", "set", b_if, "up")


class Net:
    def __init__(self):
        self.nses = []
        self.client = self._ns()
        self.server = self._ns()
        self.dest = self._ns()
        veth(self.client, "c0", self.server, "s0")
        veth(self.server, "s1", self.dest, "d0")
        # nodad: the addresses are usable at once, without a wait for
        # duplicate address detection.
        for ns, dev, addrs in ((self.client, "c0", ["10.77.0.1/24", "fd77::1/64"]),
                               (self.server, "s0", ["10.77.0.2/24", "fd77::2/64"]),
                               (self.server, "s1", ["10.78.0.1/24", "fd78::1/64"]),
                               (self.dest, "d0", ["10.78.0.2/24", "10.78.0.3/24", "fd78::2/64"])):
            for a in addrs:
                ns.ip("addr", "add", a, "dev", dev, *(["nodad"] if ":" in a else []))
        # A route to everything, so a connection reaches the nat hook rather
        # than failing its route lookup; the server namespace does not
        # forward, so it goes no further unless tt carries it.
        self.client.ip("route", "add", "default", "via", "10.77.0.2")
        self.client.ip("-6", "route", "add", "default", "via", "fd77::2")
        self.dest.ip("route", "add", "default", "via", "10.78.0.1")
        self.dest.ip("-6", "route", "add", "default", "via", "fd78::1")
        self.refuse_forwarding(self.server)

    @staticmethod
    def refuse_forwarding(ns):
        """NS routes nothing: what it would forward gets a TCP reset at once
        (a namespace that merely does not forward drops IPv6 silently, and
        a test would wait for its connect timeout)."""
        subprocess.run(["ip", "netns", "exec", ns.name, "sysctl", "-qw",
                        "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"], check=True)
        subprocess.run(["ip", "netns", "exec", ns.name, "nft", "add table inet refuse; "
                        "add chain inet refuse forward { type filter hook forward priority 0; }; "
                        "add rule inet refuse forward meta l4proto tcp reject with tcp reset"],
                       check=True)

    def add_lan(self):
        """A machine behind the client namespace, which is its router:
        lan l0 10.76.0.2 fd76::2 -- c1 10.76.0.1 fd76::1 in the client
        namespace. The client namespace does not forward either."""
        self.lan = self._ns()
        veth(self.client, "c1", self.lan, "l0")
        for ns, dev, addrs in ((self.client, "c1", ["10.76.0.1/24", "fd76::1/64"]),
                               (self.lan, "l0", ["10.76.0.2/24", "fd76::2/64"])):
            for a in addrs:
                ns.ip("addr", "add", a, "dev", dev, *(["nodad"] if ":" in a else []))
        self.lan.ip("route", "add", "default", "via", "10.76.0.1")
        self.lan.ip("-6", "route", "add", "default", "via", "fd76::1")
        self.refuse_forwarding(self.client)

    def _ns(self):
        ns = NetNs()
        self.nses.append(ns)
        return ns

    def delete(self):
        for ns in self.nses:
            ns.delete()


@pytest.fixture
def net(procs):
    n = Net()
    yield n
    try:
        procs.cleanup()
    finally:
        n.delete()


class Echo:
    """Echo servers in the destination namespace on every address, one per
    family (asyncio makes IPv6 listeners IPv6-only)."""

    def __init__(self, procs, ns):
        _, self.port4 = procs.peer("echo", host="0.0.0.0", netns=ns, name="echo4")
        _, self.port6 = procs.peer("echo", host="::", netns=ns, name="echo6")

    def port(self, host):
        return self.port6 if ":" in host else self.port4


@pytest.fixture
def echo(procs, net):
    return Echo(procs, net.dest)


def start_server(procs, net, scheme, host="10.77.0.2"):
    port = free_port()
    where = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    args = ["server", "--allow", "10.78.0.0/24", "--allow", "fd78::/64"]
    if scheme == "tt":
        args += ["-l", "tt://" + where, "-k", KEY]
    else:
        args += ["-l", "tcp://" + where, "--insecure"]
    p = procs.tt(args, name="tt-server", netns=net.server)
    p.wait_log(r"tt server listening on %s://%s" % (scheme, re.escape(where)), timeout=60)
    return "%s://%s" % (scheme, where)


def start_client(procs, net, url, *args):
    argv = ["client", "-s", url, "-l", "none"] + list(args)
    if url.startswith("tt://"):
        argv += ["-k", KEY]
    p = procs.tt(argv, name="tt-client", netns=net.client)
    p.wait_log(r"redirecting TCP to .* nftables table inet tt_(\d+)", timeout=60)
    return p


def echo_through(net, host, echo, payload=b"through the tunnel\n", ns=None):
    """Connects from the client namespace (or NS) straight to HOST's ECHO
    server, no proxy, and checks the echo."""
    port = echo.port(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with (ns or net.client).socket(family) as s:
        s.settimeout(10)
        s.connect((host, port))
        s.sendall(payload)
        assert recv_exact(s, len(payload), "the echo") == payload


def unreachable(net, host, echo, ns=None):
    """True when a direct connection from the client namespace (or NS) to
    HOST's ECHO server fails."""
    port = echo.port(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with (ns or net.client).socket(family) as s:
        s.settimeout(5)
        try:
            s.connect((host, port))
        except OSError:
            return True
        return False


def assert_closed_at_once(ns, host, port):
    """Connects from NS to HOST:PORT and expects the connection closed (an
    EOF or a reset) rather than carried anywhere."""
    with ns.socket(socket.AF_INET) as s:
        s.settimeout(10)
        # tt may reset the connection before our byte goes out, even before
        # connect() returns: the same verdict as reading the reset.
        try:
            s.connect((host, port))
            s.sendall(b"x")
            got = s.recv(1)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        assert got == b""


def netlink_fds(pid):
    """(fd, flags) of every netlink socket that process PID holds."""
    with open("/proc/%d/net/netlink" % pid) as f:
        inodes = {line.split()[-1] for line in f.readlines()[1:]}
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m and m.group(1) in inodes:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                flags = int(re.search(r"^flags:\s+(\d+)", f.read(), re.M).group(1), 8)
            out.append((int(fd), flags))
    return out


def ruleset(ns):
    r = subprocess.run(["ip", "netns", "exec", ns.name, "nft", "list", "ruleset"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("scheme", ["tcp", "tt"])
@pytest.mark.parametrize("dest", ["10.78.0.2", "fd78::2"])
def test_app_reaches_destination_by_ip(procs, net, echo, scheme, dest):
    # Without tt the destination is out of the client namespace's reach.
    assert unreachable(net, dest, echo)
    url = start_server(procs, net, scheme)
    start_client(procs, net, url, "--redirect", "10.78.0.0/24", "--redirect", "fd78::/64")
    echo_through(net, dest, echo)
    # A second connection, over the carrier connection pool or a new one.
    echo_through(net, dest, echo, b"again\n")


@pytest.mark.parametrize("server", ["10.77.0.2", "fd77::2"])
@pytest.mark.parametrize("scheme", ["tcp", "tt"])
def test_redirect_everything_does_not_loop(procs, net, echo, scheme, server):
    # 0.0.0.0/0 and ::/0 cover the server's own address: the carrier's
    # connection to it must pass untouched, or it would come back into tt.
    url = start_server(procs, net, scheme, server)
    c = start_client(procs, net, url, "--redirect", "0.0.0.0/0", "--redirect", "::/0")
    for host in ("10.78.0.2", "fd78::2", "10.78.0.3"):
        echo_through(net, host, echo)
    assert "no redirected destination" not in c.log()


def test_redirect_everything_with_mux(procs, net, echo):
    url = start_server(procs, net, "tcp")
    start_client(procs, net, url, "--mux", "--redirect", "0.0.0.0/0")
    echo_through(net, "10.78.0.2", echo)
    echo_through(net, "10.78.0.3", echo)


def test_exclude_is_honoured(procs, net, echo):
    url = start_server(procs, net, "tcp")
    start_client(procs, net, url, "--redirect", "10.78.0.0/24", "--exclude", "10.78.0.3/32")
    echo_through(net, "10.78.0.2", echo)
    assert unreachable(net, "10.78.0.3", echo)
    # IPv6 was not asked for: it stays direct, so unreachable too.
    assert unreachable(net, "fd78::2", echo)


def test_direct_connection_to_the_listener_is_refused(procs, net, echo):
    # A connection made to tt's redirect listener itself has no other
    # destination than tt: it is closed, not carried.
    url = start_server(procs, net, "tcp")
    c = start_client(procs, net, url, "-v", "--redirect", "10.78.0.0/24")
    port = int(c.wait_log(r"listening on 127\.0\.0\.1:(\d+) for --redirect").group(1))
    assert_closed_at_once(net.client, "127.0.0.1", port)
    c.wait_log(r"no redirected destination \(it connected to the redirect listener itself\)")


def test_forwarded_traffic_with_redirect_forwarded(procs, net, echo):
    # sshuttle's router use: a machine routing through the client's gets the
    # tunnel too, and the client's own connections still do.
    net.add_lan()
    for host in ("10.78.0.2", "fd78::2"):
        assert unreachable(net, host, echo, ns=net.lan)
    url = start_server(procs, net, "tcp")
    c = start_client(procs, net, url, "--redirect", "10.78.0.0/24", "--redirect", "fd78::/64",
                     "--redirect-forwarded")
    for host in ("10.78.0.2", "fd78::2"):
        echo_through(net, host, echo, ns=net.lan)
        echo_through(net, host, echo)
    assert "chain prerouting" in ruleset(net.client)
    # The listener is on every address then; the LAN machine connecting to
    # it directly gets nothing carried.
    port = int(c.wait_log(r"listening on 0\.0\.0\.0:(\d+) for --redirect").group(1))
    assert_closed_at_once(net.lan, "10.76.0.1", port)
    c.wait_log(r"no redirected destination \(it connected to the redirect listener itself\)")


def test_forwarded_traffic_is_left_alone_by_default(procs, net, echo):
    net.add_lan()
    url = start_server(procs, net, "tcp")
    start_client(procs, net, url, "--redirect", "10.78.0.0/24")
    echo_through(net, "10.78.0.2", echo)
    assert unreachable(net, "10.78.0.2", echo, ns=net.lan)


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_no_rule_left_after_tt_ends(procs, net, echo, sig):
    url = start_server(procs, net, "tcp")
    c = start_client(procs, net, url, "--redirect", "10.78.0.0/24", "--redirect", "fd78::/64")
    echo_through(net, "10.78.0.2", echo)
    table = "tt_%d" % c.popen.pid
    rules = ruleset(net.client)
    # `ip netns exec` execs tt, so the pid is tt's and names its table.
    assert "table inet %s" % table in rules, rules
    assert "redirect to" in rules, rules
    # The owning netlink socket must not outlive tt in a child: it is
    # close-on-exec.
    netlink = netlink_fds(c.popen.pid)
    assert netlink, "tt holds no netlink socket"
    for fd, flags in netlink:
        assert flags & os.O_CLOEXEC, "netlink fd %d of tt is not close-on-exec" % fd
    if sig == "SIGKILL":
        c.kill()
    else:
        assert c.terminate_and_wait() == 0
    assert "tt_" not in ruleset(net.client)
    assert unreachable(net, "10.78.0.2", echo)


def test_daemon_returns_once_the_rules_are_in_place(net, echo, procs, daemons):
    # --daemon's readiness includes the rules: a connection made as soon as
    # the command returns is redirected; SIGTERM removes them and the pid file.
    url = start_server(procs, net, "tcp")
    pid_file = daemons.path("tt.pid")
    r = daemons.run(["client", "-s", url, "-l", "none", "--redirect", "10.78.0.0/24", "--daemon",
                     "--pid-file", pid_file, "--log-file", daemons.path("tt.log")], pid_file,
                    netns=net.client)
    assert r.returncode == 0, r.stderr
    echo_through(net, "10.78.0.2", echo)
    pid = read_pid(pid_file)
    assert "table inet tt_%d" % pid in ruleset(net.client)
    daemons.stop(pid)
    assert not alive(pid) and not os.path.exists(pid_file)
    assert "tt_" not in ruleset(net.client)
    assert unreachable(net, "10.78.0.2", echo)


def test_bad_cidr_is_one_line(net):
    for bad, said in (("10.78.0.0/33", "invalid --redirect '10.78.0.0/33'"),
                      ("10.78.0.1/24", "invalid --redirect '10.78.0.1/24': host bits set"),
                      ("bogus", "invalid --redirect 'bogus'")):
        r = run_tt(["client", "-s", "tcp://10.77.0.2:1", "-l", "none",
                    "--redirect", bad], netns=net.client)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], r.stderr
    r = run_tt(["client", "-s", "tcp://10.77.0.2:1", "--redirect", "10.0.0.0/8", "--exclude",
                "10.1.0.0/16x"], netns=net.client)
    assert r.returncode == 2 and "invalid --exclude '10.1.0.0/16x'" in r.stderr, r.stderr
    r = run_tt(["client", "-s", "tcp://10.77.0.2:1", "--exclude", "10.1.0.0/16"],
               netns=net.client)
    assert r.returncode == 2 and "--exclude applies with --redirect only" in r.stderr, r.stderr
    assert "tt_" not in ruleset(net.client)


def test_range_that_captures_tt_itself_is_refused(net):
    # Loopback holds tt's own listener; it is never redirected.
    r = run_tt(["client", "-s", "tcp://10.77.0.2:1", "-l", "none", "--redirect", "127.0.0.0/8"],
               netns=net.client)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "loopback" in r.stderr, r.stderr
    # A server whose address cannot be known cannot be exempted: its
    # carrier connection could be captured.
    r = run_tt(["client", "-s", "tcp://tt-server.invalid:1", "-l", "none", "--redirect",
                "0.0.0.0/0"], netns=net.client)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "would capture the carrier itself" in lines[0], r.stderr
    assert "tt_" not in ruleset(net.client)


def test_no_permission_for_nftables_is_one_line(net):
    # Root without CAP_NET_ADMIN: nftables refuses, tt says so and exits.
    argv = ["ip", "netns", "exec", net.client.name, "setpriv", "--bounding-set=-net_admin",
            "--inh-caps=-net_admin", "--", tt_bin(), "client", "-s", "tcp://10.77.0.2:1", "-l",
            "none", "--redirect", "10.78.0.0/24"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=sanitizer_env())
    assert r.returncode == 1, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if "error" in l]
    assert len(lines) == 1, r.stderr
    assert re.search(r"cannot install the --redirect rules with nftables: .*"
                     r"Operation not permitted.*CAP_NET_ADMIN", lines[0]), r.stderr
    assert "tt_" not in ruleset(net.client)
