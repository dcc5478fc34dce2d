"""--resolver: names resolved by a given DNS server (a real unbound started
here) instead of the system's, on the server for destinations and on the
client for the server's own name (mos-tls-tunnel's -fallback-dns)."""

import pytest

from helpers import Unbound, curl, free_port, run_tt

KEY = "resolver test key"

@pytest.fixture
def unbound(procs, tmp_path):
    ub = Unbound(procs, tmp_path, log=False, server_lines=[
        'local-zone: "test." static', 'local-data: "svc.test. A 127.0.0.1"',
        'local-data: "tunnel.test. A 127.0.0.1"'])
    return ub.port


def start_pair(procs, server_args=(), client_args=(), server_host="127.0.0.1"):
    sp = free_port(("127.0.0.1",))
    s = procs.tt(["server", "-k", KEY, "-l", "127.0.0.1:%d" % sp, "--allow", "127.0.0.0/8", "-v"]
                 + list(server_args), name="tt-server")
    s.wait_log(r"tt server listening", timeout=60)
    c = procs.tt(["client", "-k", KEY, "-s", "%s:%d" % (server_host, sp), "-l", "127.0.0.1:0"]
                 + list(client_args), name="tt-client")
    socks = int(c.wait_log(r"SOCKS5 proxy listening on 127\.0\.0\.1:(\d+)", timeout=60).group(1))
    return s, c, socks


def test_server_resolves_destinations_with_the_resolver(procs, unbound, nginx):
    _, _, socks = start_pair(procs, server_args=("--resolver", "127.0.0.1:%d" % unbound))
    r = curl("--socks5-hostname", "127.0.0.1:%d" % socks, "http://svc.test:%d/" % nginx.port)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == nginx.index


def test_without_the_resolver_the_name_is_unknown(procs, unbound, nginx):
    # The same request without --resolver: the system resolver does not know
    # svc.test, so the SOCKS reply is "host unreachable" and curl fails.
    _, _, socks = start_pair(procs)
    r = curl("--socks5-hostname", "127.0.0.1:%d" % socks, "http://svc.test:%d/" % nginx.port)
    assert r.returncode != 0


def test_unknown_name_through_the_resolver_is_host_unreachable(procs, unbound, nginx):
    s, _, socks = start_pair(procs, server_args=("--resolver", "127.0.0.1:%d" % unbound))
    r = curl("--socks5-hostname", "127.0.0.1:%d" % socks, "http://nx.test:%d/" % nginx.port)
    assert r.returncode != 0
    s.wait_log(r"nx\.test:\d+: host unreachable")


def test_client_resolves_the_server_name_with_the_resolver(procs, unbound, nginx):
    _, _, socks = start_pair(procs, client_args=("--resolver", "127.0.0.1:%d" % unbound),
                             server_host="tunnel.test")
    r = curl("--socks5-hostname", "127.0.0.1:%d" % socks, "http://127.0.0.1:%d/" % nginx.port)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == nginx.index


@pytest.mark.parametrize("value", ["example.org:53", "127.0.0.1", "1.2.3.4:0", "[::1]:x"])
def test_bad_resolver_option_is_one_line_and_status_2(value):
    r = run_tt(["server", "-k", KEY, "-l", "127.0.0.1:9", "--resolver", value])
    assert r.returncode == 2
    assert r.stderr.splitlines()[0].startswith("tt server: invalid --resolver")
