"""A real HTTP client (curl) through tt to a real HTTP server (nginx): the
SOCKS5 entry by IPv4 address, by name and by IPv6 address; the server's
fixed destination (-d); entries, forwards and the carrier on IPv6 and by
name."""

import re

import pytest

from helpers import curl, free_port, recv_exact, socks_connect, start_client, start_server

LOOPBACK = ["--allow", "127.0.0.0/8"]


def fetch(proxy_flag, socks_port, url, userinfo=""):
    r = curl(proxy_flag, "%s127.0.0.1:%d" % (userinfo, socks_port), url)
    assert r.returncode == 0, "curl %s failed (%d): %s" % (url, r.returncode, r.stderr.decode())
    return r.stdout.decode()


def test_curl_by_ip(tunnel, nginx):
    # --socks5: curl resolves, so the request carries an IPv4 address.
    _, client = tunnel(server_args=LOOPBACK)
    body = fetch("--socks5", client.socks_port, "http://127.0.0.1:%d/index.html" % nginx.port)
    assert body == nginx.index


def test_curl_by_name_localhost(tunnel, nginx):
    # --socks5-hostname: the name travels to the tt server, which resolves it.
    _, client = tunnel(server_args=LOOPBACK)
    body = fetch("--socks5-hostname", client.socks_port, "http://localhost:%d/" % nginx.port)
    assert body == nginx.index


@pytest.mark.parametrize("proxy_flag", ["--socks5", "--socks5-hostname"])
def test_curl_ipv6(tunnel, nginx, proxy_flag):
    # Only ::1 is opened on the server, so this also shows --allow takes an
    # IPv6 range.
    _, client = tunnel(server_args=["--allow", "::1/128"])
    body = fetch(proxy_flag, client.socks_port, "http://[::1]:%d/" % nginx.port)
    assert body == nginx.index


def test_curl_ipv6_needs_allow(tunnel, nginx):
    # The control for the test above: ::1 is refused when only IPv4 loopback
    # is opened (curl reports the proxy's refusal and gets no page).
    _, client = tunnel(server_args=LOOPBACK)
    r = curl("--socks5", "127.0.0.1:%d" % client.socks_port, "http://[::1]:%d/" % nginx.port)
    assert r.returncode != 0
    assert nginx.index.encode() not in r.stdout


# ---------------------------------------------------------------------------
# -d: every stream to one destination


@pytest.mark.parametrize("host, port", [
    ("127.0.0.1", 1),             # a loopback port where nothing listens
    ("localhost", 2),             # a name
    ("::1", 3),                   # IPv6, not opened by --allow
    ("203.0.113.7", 80),          # an address with no route in the namespace
    ("no-such-host.invalid", 80), # a name that does not resolve
])
def test_fixed_destination(procs, netns, tunnel, host, port):
    # In a namespace so that asking for any address or name is harmless
    # even if -d were ignored. The banner names the server reached.
    _, banner_port = procs.peer("banner", "--banner", "FIXED-DEST", netns=netns)
    _, client = tunnel(server_args=LOOPBACK + ["-d", "127.0.0.1:%d" % banner_port],
                       netns=netns)
    s, rep = socks_connect(client.socks, host, port, netns=netns)
    with s:
        assert rep[:2] == b"\x05\x00", "CONNECT %s:%d with -d: reply %r" % (host, port, rep)
        assert recv_exact(s, len(b"FIXED-DEST\n"), "banner") == b"FIXED-DEST\n"
        s.sendall(b"ping")
        assert recv_exact(s, 4, "echo") == b"ping"


# ---------------------------------------------------------------------------
# Entries on IPv6 and forwards by name


def test_socks_proxy_on_ipv6_loopback(procs, nginx):
    server = start_server(procs, LOOPBACK)
    p = procs.tt(["client", "-s", server.url, "-l", "[::1]:0"], name="tt-client")
    port = int(p.wait_log(r"SOCKS5 proxy listening on \[::1\]:(\d+)").group(1))
    r = curl("--socks5-hostname", "[::1]:%d" % port, "http://127.0.0.1:%d/" % nginx.port)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == nginx.index


@pytest.mark.parametrize("listen, dest", [
    ("[::1]:0", "127.0.0.1"),   # forward listening on IPv6
    ("127.0.0.1:0", "[::1]"),   # forward to an IPv6 destination
    ("127.0.0.1:0", "localhost"),  # forward to a name, resolved by the server
])
def test_forward_variants(procs, nginx, listen, dest):
    server = start_server(procs, ["--allow", "127.0.0.0/8", "--allow", "::1/128"])
    spec = "%s=%s:%d" % (listen, dest, nginx.port)
    p = procs.tt(["client", "-s", server.url, "-l", "none", "-L", spec], name="tt-client")
    m = p.wait_log(r"forward listening on (\[::1\]|127\.0\.0\.1):(\d+) -> ")
    host = m.group(1)
    r = curl("http://%s:%s/" % (host, m.group(2)))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == nginx.index


@pytest.mark.parametrize("listen, connect_to", [
    ("[::1]", "[::1]"),            # the carrier over IPv6
    ("127.0.0.1", "localhost"),    # the client finds its server by name
])
def test_server_addresses(procs, nginx, listen, connect_to):
    port = free_port()
    p = procs.tt(["server", "-l", "tcp://%s:%d" % (listen, port)] + LOOPBACK, name="tt-server")
    p.wait_log(r"tt server listening on tcp://%s:%d" % (re.escape(listen), port))
    client = start_client(procs, "tcp://%s:%d" % (connect_to, port))
    body = fetch("--socks5", client.socks_port, "http://127.0.0.1:%d/" % nginx.port)
    assert body == nginx.index
