"""tt client --dns: DNS to the nameservers of the client's resolv.conf,
captured with nftables and answered through the tunnel by a nameserver on
the far side (a real unbound in the destination namespace of
test_redirect's network, reachable from the client namespace only through
the tunnel), with answers cached by their TTL.

The client namespace's resolv.conf (`ip netns exec` bind-mounts
/etc/netns/NAME/resolv.conf) names 10.77.0.53 and fd77::53: addresses
nothing answers at, routed toward the server namespace, which does not
forward. A query gets an answer only if tt captured it."""
import os
import re
import socket
import struct
import pytest

import helpers
from helpers import free_port, run_tt, start_sshd, wait_until
from test_redirect import KEY, Net, start_server

NS4, NS6 = "10.77.0.53", "fd77::53"
RESOLVER = "10.78.0.2"

# An answer of 40 addresses (about 700 bytes): more than a UDP client
# without EDNS0 takes (512).
BIG = ["10.79.0.%d" % i for i in range(1, 41)]

FAR_ZONE = ['local-zone: "far." static',
            'local-data: "far. 3600 IN SOA ns.far. admin.far. 1 3600 600 86400 60"',
            'local-data: "cached.far. 300 IN A 10.78.0.3"',
            'local-data: "brief.far. 1 IN A 10.78.0.2"']
BIG_DATA = ['local-data: "big.far. 300 IN A %s"' % a for a in BIG]


@pytest.fixture
def net(procs):
    n = Net()
    with open(os.path.join(n.client.etc, "resolv.conf"), "w") as f:
        f.write("# the client's nameservers\nnameserver %s\nnameserver %s\n" % (NS4, NS6))
    yield n
    try:
        procs.cleanup()
    finally:
        n.delete()


class Unbound(helpers.Unbound):
    def __init__(self, procs, net, tmp):
        super().__init__(procs, tmp, host=RESOLVER, port=53, allow="10.78.0.0/24", verbosity=0,
                         netns=net.dest, server_lines=["log-queries: yes"] + FAR_ZONE + BIG_DATA)
        wait_until(lambda: self.count("cached.far.") >= 1 or self._probe(net), 15,
                   "unbound answering")

    def _probe(self, net):
        """Asks unbound directly from its own namespace (a name the tests
        do not count)."""
        try:
            ask_udp(net.dest, RESOLVER, "probe.far.", timeout=1)
            return True
        except OSError:
            return False

    def count(self, name):
        """Queries for NAME (type A) that reached unbound."""
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return 0
        return len(re.findall(r"info: \S+ %s A IN" % re.escape(name), text))


def query(name, qid=0x1234):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def parse(msg, qid):
    """(rcode, [A addresses], [TTLs]) of the answer MSG to query QID."""
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    assert rid == qid and flags & 0x8000
    p = 12
    for _ in range(qd):
        while msg[p]:
            p += 1 + msg[p]
        p += 5
    addrs, ttls = [], []
    for _ in range(an):
        if msg[p] & 0xC0 == 0xC0:
            p += 2
        else:
            while msg[p]:
                p += 1 + msg[p]
            p += 1
        rtype, _, ttl, rdlen = struct.unpack(">HHIH", msg[p:p + 10])
        p += 10
        if rtype == 1:
            addrs.append(socket.inet_ntoa(msg[p:p + 4]))
            ttls.append(ttl)
        p += rdlen
    return flags & 0xF, addrs, ttls


def ask_udp(ns, server, name, qid=0x1234, timeout=10):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with ns.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query(name, qid), (server, 53))
        msg, src = s.recvfrom(4096)
        # The answer comes from the address the query went to.
        assert src[0] == server and src[1] == 53
        return parse(msg, qid)


def ask_tcp(ns, server, name, qid=0x4321):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with ns.socket(family) as s:
        s.settimeout(10)
        s.connect((server, 53))
        q = query(name, qid)
        # Two queries pipelined on one connection, answered in turn.
        s.sendall((struct.pack(">H", len(q)) + q) * 2)
        f = s.makefile("rb")
        out = []
        for _ in range(2):
            n = struct.unpack(">H", f.read(2))[0]
            out.append(parse(f.read(n), qid))
        assert out[0][:2] == out[1][:2]
        return out[0]


def start_dns_client(procs, net, url, *args):
    argv = ["client", "-s", url, "-l", "none", "--dns", "-v"] + list(args)
    if url.startswith("tt://"):
        argv += ["-k", KEY]
    p = procs.tt(argv, name="tt-client", netns=net.client)
    p.wait_log(r"capturing DNS to 2 nameservers", timeout=60)
    return p


def setup_pair(procs, net, tmp_path, scheme="tt", *args):
    unbound = Unbound(procs, net, tmp_path)
    url = start_server(procs, net, scheme)
    start_dns_client(procs, net, url, "--dns-server", RESOLVER, *args)
    return unbound


@pytest.fixture
def setup(procs, net, tmp_path):
    return setup_pair(procs, net, tmp_path)


# Over both kinds of carrier, and in one table with --redirect and --mux.
@pytest.mark.parametrize("scheme,extra", [("tt", ()), ("tcp", ()),
                                          ("tt", ("--mux", "--redirect", "10.78.0.0/24"))])
def test_dns_over_udp_and_tcp_through_the_tunnel_then_from_the_cache(procs, net, tmp_path,
                                                                     scheme, extra):
    unbound = setup_pair(procs, net, tmp_path, scheme, *extra)
    rcode, addrs, ttls = ask_udp(net.client, NS4, "cached.far.")
    assert (rcode, addrs) == (0, ["10.78.0.3"])
    assert 0 < ttls[0] <= 300
    assert unbound.count("cached.far.") == 1
    # Over TCP, to the other family's nameserver, in another case: the
    # cache answers, unbound sees nothing more.
    rcode, addrs, _ = ask_tcp(net.client, NS6, "CACHED.far.")
    assert (rcode, addrs) == (0, ["10.78.0.3"])
    rcode, addrs, _ = ask_udp(net.client, NS6, "cached.far.", qid=7)
    assert (rcode, addrs) == (0, ["10.78.0.3"])
    assert unbound.count("cached.far.") == 1


def test_dns_negative_answer_is_carried_and_cached(net, setup):
    """NXDOMAIN with the zone's SOA: kept for the SOA's MINIMUM (60 s)."""
    unbound = setup
    for qid in (1, 2):
        rcode, addrs, _ = ask_udp(net.client, NS4, "missing.far.", qid=qid)
        assert (rcode, addrs) == (3, [])
    assert unbound.count("missing.far.") == 1


def test_dns_answer_expires_with_its_ttl(net, setup):
    """Each answer is kept for its own TTL: the 1-second one is asked again
    while the 300-second one is still answered from the cache."""
    unbound = setup
    assert ask_udp(net.client, NS4, "cached.far.")[:2] == (0, ["10.78.0.3"])
    assert ask_udp(net.client, NS4, "brief.far.")[:2] == (0, ["10.78.0.2"])
    assert unbound.count("brief.far.") == 1
    wait_until(lambda: ask_udp(net.client, NS4, "brief.far.")[1] == ["10.78.0.2"]
               and unbound.count("brief.far.") >= 2, 10, "the expired answer asked again")
    assert ask_udp(net.client, NS4, "cached.far.")[:2] == (0, ["10.78.0.3"])
    assert unbound.count("cached.far.") == 1


def test_dns_needs_a_far_nameserver():
    # A SOCKS5 proxy cannot say which nameserver is behind it.
    r = run_tt(["client", "-s", "socks5://127.0.0.1:1", "-l", "none", "--dns"])
    assert r.returncode == 2
    assert "--dns needs --dns-server" in r.stderr
    r = run_tt(["client", "-s", "127.0.0.1:1", "-k", KEY, "--dns-server", "10.0.0.1"])
    assert r.returncode == 2
    assert "--dns-server applies with --dns only" in r.stderr
    r = run_tt(["client", "-s", "127.0.0.1:1", "-k", KEY, "--dns", "--dns-server", "ns.example"])
    assert r.returncode == 2
    assert "invalid --dns-server 'ns.example'" in r.stderr


def test_dns_unreachable_nameserver_gets_servfail(procs, net):
    """Nothing answers at the far nameserver: the client gets SERVFAIL once
    the query's time (5 s) runs out, not silence."""
    url = start_server(procs, net, "tt")
    start_dns_client(procs, net, url, "--dns-server", "10.78.0.9")
    rcode, addrs, _ = ask_udp(net.client, NS4, "cached.far.", timeout=15)
    assert (rcode, addrs) == (2, [])


def test_dns_stream_is_opened_again_after_it_ends(procs, net, tmp_path):
    """The far nameserver restarts, which ends the stream: the next query
    opens another and is answered."""
    unbound = setup_pair(procs, net, tmp_path)
    assert ask_udp(net.client, NS4, "missing.far.")[0] == 3
    ub = next(p for p in procs.procs if p.name == "unbound")
    assert ub.terminate_and_wait() == 0
    Unbound(procs, net, tmp_path)
    rcode, addrs, _ = ask_udp(net.client, NS4, "cached.far.")
    assert (rcode, addrs) == (0, ["10.78.0.3"])
    assert unbound.count("cached.far.") == 1


def servers_nameserver(procs, net, tmp_path, scheme, *server_args):
    """A tt server whose namespace's resolv.conf names unbound, started
    with SERVER_ARGS only (no --allow: unbound's private address is in a
    range a server refuses by default), and a --dns client without
    --dns-server."""
    with open(os.path.join(net.server.etc, "resolv.conf"), "w") as f:
        f.write("search far\nnameserver %s\nnameserver 10.78.0.9\n" % RESOLVER)
    unbound = Unbound(procs, net, tmp_path)
    port = free_port()
    url = "%s://10.77.0.2:%d" % (scheme, port)
    args = ["server", "-l", url, "-v"] + list(server_args)
    args += ["-k", KEY] if scheme == "tt" else ["--insecure"]
    server = procs.tt(args, name="tt-server", netns=net.server)
    server.wait_log(r"clients' DNS \(--dns\) goes to 10\.78\.0\.2:53")
    client = start_dns_client(procs, net, url)
    client.wait_log(r"the far nameserver is the tt server's own")
    return unbound, server


@pytest.mark.parametrize("scheme", ["tt", "tcp"])
def test_dns_over_tt_carriers_asks_the_servers_nameserver(procs, net, tmp_path, scheme):
    """Without --dns-server, a client of a tt server sends its DNS stream
    to the reserved destination nameserver.tt.invalid, which the server
    maps to the first nameserver of its own resolv.conf; the default
    refusal of private addresses does not apply to it."""
    unbound, _ = servers_nameserver(procs, net, tmp_path, scheme)
    rcode, addrs, _ = ask_udp(net.client, NS4, "cached.far.", timeout=20)
    assert (rcode, addrs) == (0, ["10.78.0.3"])
    assert unbound.count("cached.far.") == 1
    # Over TCP, another name: asked through the same stream.
    rcode, addrs, _ = ask_tcp(net.client, NS6, "brief.far.")
    assert (rcode, addrs) == (0, ["10.78.0.2"])


def test_servers_nameserver_obeys_deny(procs, net, tmp_path):
    """An explicit --deny covering the nameserver refuses the reserved
    destination: the client's query gets SERVFAIL at once, and unbound is
    never asked."""
    unbound, server = servers_nameserver(procs, net, tmp_path, "tt", "--deny", RESOLVER + "/32")
    rcode, addrs, _ = ask_udp(net.client, NS4, "cached.far.", timeout=20)
    assert (rcode, addrs) == (2, [])
    server.wait_log(r"10\.78\.0\.2:53: (connection )?not allowed")
    assert unbound.count("cached.far.") == 0


def test_dns_over_ssh_asks_the_remote_resolv_conf(procs, net, tmp_path):
    """Over ssh:// without --dns-server, the far nameserver is the first of
    the remote /etc/resolv.conf (the sshd runs in the server namespace,
    whose resolv.conf names unbound)."""
    with open(os.path.join(net.server.etc, "resolv.conf"), "w") as f:
        f.write("search far\nnameserver %s\nnameserver 10.78.0.9\n" % RESOLVER)
    unbound = Unbound(procs, net, tmp_path)
    sshd = start_sshd(procs, tmp_path / "ssh", host="10.77.0.2", netns=net.server)
    p = procs.tt(["client", "-s", "ssh://root@10.77.0.2", "--ssh-command", " ".join(sshd.command),
                  "-l", "none", "--dns", "-v"], name="tt-client", netns=net.client, env=sshd.env)
    p.wait_log(r"the far nameserver is 10\.78\.0\.2:53, from the remote /etc/resolv\.conf",
               timeout=60)
    p.wait_log(r"capturing DNS to 2 nameservers", timeout=60)
    rcode, addrs, _ = ask_udp(net.client, NS4, "cached.far.", timeout=20)
    assert (rcode, addrs) == (0, ["10.78.0.3"])
    assert unbound.count("cached.far.") == 1


def test_dns_over_ssh_says_why_the_remote_resolv_conf_is_unread(procs, net, tmp_path):
    sshd = start_sshd(procs, tmp_path / "ssh", host="10.77.0.2", netns=net.server)
    # A key the sshd does not know: the login is refused.
    command = [str(tmp_path / "no-such-key") if w == sshd.key else w for w in sshd.command]
    r = run_tt(["client", "-s", "ssh://root@10.77.0.2", "--ssh-command", " ".join(command),
                "-l", "none", "--dns"], env=sshd.env, netns=net.client, timeout=60)
    assert r.returncode == 1
    assert re.search(r"--dns: cannot read the remote /etc/resolv.conf with ssh .*: "
                     r".*Permission denied", r.stderr), r.stderr


def test_dns_answer_too_long_for_udp_sends_the_client_to_tcp(net, setup):
    """The application's query has no EDNS0, so it takes 512 bytes over UDP:
    a longer answer comes back empty with TC set, and the same question over
    TCP gets all of it (from the cache: the long answer was kept)."""
    unbound = setup
    def ask_truncated(qid):
        with net.client.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(query("big.far.", qid), (NS4, 53))
            msg, _ = s.recvfrom(4096)
        flags = struct.unpack(">H", msg[2:4])[0]
        assert flags & 0x0200, "TC not set"
        assert parse(msg, qid)[:2] == (0, [])

    ask_truncated(99)
    rcode, addrs, _ = ask_tcp(net.client, NS4, "big.far.")
    assert rcode == 0 and sorted(addrs) == sorted(BIG)
    # From the cache too, the long answer does not go over UDP.
    ask_truncated(100)
    assert unbound.count("big.far.") == 1
