"""dns+https://: the dns:// carrier with its queries to the resolver over
DNS over HTTPS (RFC 8484): POSTs of application/dns-message on one HTTP/2
connection. A real unbound (Debian's is built with libnghttp2) serves DoH
on a port of its own with a certificate from the test CA
(test_web_carriers.pki, for the name tunnel.test), and its stub zone
points at the tt server's UDP port as for dns:// (test_dns_carrier.py);
the tt client asks only unbound's HTTPS port.

unbound answers DoH only over HTTP/2 with TLS on that port, so a transfer
proves the carrier spoke it; the connection is also seen with ss, and a
client that does not trust the certificate gets nothing."""
import concurrent.futures
import hashlib
import os
import re
import signal
import threading

import pytest

from helpers import CARRIER_KEY, bulk_echo, connections_to, curl, free_port, port_accepts
from helpers import run_tt, socks_open, wait_until
from test_dns_carrier import MB, server, start_client  # noqa: F401 (fixture)
from test_dnstun import DOMAIN, Unbound
from test_web_carriers import pki  # noqa: F401 (fixture)


class DohUnbound(Unbound):
    """unbound with DNS over HTTPS on .https_port (path /dns-query), its
    stub zone to the tt server. HTTPS_PORT: a given port (a restart keeps
    its ports), else a free one."""

    def __init__(self, procs, tmp, server, pki, port=None, https_port=None,  # noqa: F811
                 server_lines=(), **kw):
        self.https_port = https_port or free_port(("127.0.0.1",))
        lines = ["interface: 127.0.0.1@%d" % self.https_port,
                 "https-port: %d" % self.https_port,
                 'http-endpoint: "/dns-query"'] + list(server_lines)
        super().__init__(procs, tmp, server, port=port, tls=(pki.cert, pki.key),
                         server_lines=lines, **kw)
        wait_until(lambda: port_accepts("127.0.0.1", self.https_port), 15,
                   "unbound's DoH port %d" % self.https_port)


def start_doh_client(procs, unbound, args=(), **kw):
    """A client of dns+https:// to UNBOUND's DoH port."""
    url = "dns+https://127.0.0.1:%d/%s" % (unbound.https_port, DOMAIN)
    return start_client(procs, url, ["-k", CARRIER_KEY] + list(args), **kw)


@pytest.fixture
def doh(procs, tmp_path, server, pki):  # noqa: F811
    return DohUnbound(procs, tmp_path / "unbound", server, pki)


def test_curl_and_bulk_through_doh(procs, server, doh, pki, nginx, echo):  # noqa: F811
    """curl through SOCKS5 over dns+https://, 4 MiB down from nginx, and 4
    MiB both ways through an echo server, byte-compared; the queries went
    in a TLS connection to unbound's DoH port and nowhere else."""
    name = "doh-%s.bin" % os.urandom(4).hex()
    body = os.urandom(4 * MB)
    with open(os.path.join(nginx.root, name), "wb") as f:
        f.write(body)
    client = start_doh_client(procs, doh, ["--ca", pki.ca, "-n", pki.name, "--mux"])
    r = curl("-x", "socks5h://127.0.0.1:%d" % client.socks_port,
             "http://127.0.0.1:%d/%s" % (nginx.port, name), timeout=120)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(body).digest()
    assert connections_to(doh.https_port) >= 1
    assert connections_to(doh.port) == 0 and connections_to(doh.tls_port) == 0
    bulk_echo(client.socks, echo, size=4 * MB)


def test_several_streams_at_once(procs, server, doh, pki, echo):  # noqa: F811
    """Five streams at once over one tunnel (--mux) and two at once each on
    a DNS connection of its own (no --mux): every one byte-compared."""
    for args, n in ((["--mux"], 5), ([], 2)):
        client = start_doh_client(procs, doh, ["--pin", pki.fingerprint] + args)
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            jobs = [pool.submit(bulk_echo, client.socks, echo, 512 * 1024) for _ in range(n)]
            for j in jobs:
                j.result(timeout=120)


def no_stream_through(client, timeout=20):
    """A stream through CLIENT's SOCKS5 proxy fails."""
    r = curl("-x", "socks5h://127.0.0.1:%d" % client.socks_port, "http://127.0.0.1:1/",
             timeout=timeout)
    assert r.returncode != 0


@pytest.mark.parametrize("wrong", ["ca", "name"])
def test_a_wrong_certificate_is_refused_with_one_line(procs, server, doh, pki,  # noqa: F811
                                                      wrong):
    """Without --ca the test CA is not trusted; with it, the certificate is
    for tunnel.test, not for the address. Either way the stream fails at
    once and the client says why in one line, once."""
    client = start_doh_client(procs, doh, ["-n", pki.name] if wrong == "ca" else ["--ca", pki.ca])
    no_stream_through(client)
    m = client.proc.wait_log(r"^.*over https: certificate verify failed(.*)$")
    assert "127.0.0.1:%d" % doh.https_port in m.group(0)
    if wrong == "name":
        assert re.search(r"mismatch|name", m.group(1)), m.group(0)
    text = client.proc.log()
    assert len(re.findall(r"certificate verify failed", text)) == 1, text
    assert client.proc.alive()


def test_a_wrong_path_is_refused_with_the_status(procs, server, doh, pki):  # noqa: F811
    """unbound answers another path with 404: no answers come, and the
    debug log says why per query."""
    client = start_doh_client(procs, doh, ["--pin", pki.fingerprint, "--doh-path", "/nope"],
                              env={"LOG_LEVEL": "debug"})
    no_stream_through(client, timeout=3)
    client.proc.wait_log(r"https: a query got no answer: the resolver answered HTTP status 404")


def test_a_tls_server_without_http2_is_refused(procs, server, pki, tmp_path):  # noqa: F811
    """unbound's DoT port speaks TLS but not HTTP/2 (though it agrees to
    ALPN "h2": it sends no SETTINGS): the client gives the connection up
    after its connect timeout and says so in one line, instead of waiting
    on it for good."""
    ub = Unbound(procs, tmp_path / "unbound", server, tls=(pki.cert, pki.key))
    client = start_client(procs, "dns+https://127.0.0.1:%d/%s" % (ub.tls_port, DOMAIN),
                          ["-k", CARRIER_KEY, "--pin", pki.fingerprint, "--connect-timeout",
                           "2s"])
    no_stream_through(client)
    client.proc.wait_log(r"over https: the resolver sent no HTTP/2 SETTINGS within 2000 ms")


def test_doh_path_must_be_absolute():
    r = run_tt(["client", "-s", "dns+https://127.0.0.1:1/%s" % DOMAIN, "-k", CARRIER_KEY,
                "--doh-path", "dns-query", "-l", "127.0.0.1:0"])
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--doh-path must begin with '/'" in lines[0], r.stderr


def echo_across(client, echo, disrupt, size=3 * MB):
    """SIZE random bytes both ways at once through CLIENT to the echo
    server, with DISRUPT() called once a quarter has come back: the stream
    must end whole and byte-identical. Had it failed, the client would
    have seen an error (a reset, EOF short of SIZE), never a short stream
    taken for a whole one."""
    payload = os.urandom(size)
    got = bytearray()
    result = {}

    def transfer():
        try:
            with socks_open(client.socks, "127.0.0.1", echo) as s:
                s.settimeout(60)
                sender = threading.Thread(target=s.sendall, args=(payload,))
                sender.start()
                while len(got) < size:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    got.extend(chunk)
                sender.join(60)
        except BaseException as e:  # noqa: B902 (reported below)
            result["error"] = e

    t = threading.Thread(target=transfer)
    t.start()
    wait_until(lambda: len(got) >= size // 4 or not t.is_alive(), 60, "a quarter of the transfer")
    disrupt()
    t.join(120)
    assert not t.is_alive(), "the transfer hung"
    assert "error" not in result, result
    assert len(got) == size, "the stream ended short: %d of %d" % (len(got), size)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    # And a new stream works on the same client.
    bulk_echo(client.socks, echo, size=256 * 1024)


def test_unbound_restarting_mid_transfer(procs, server, pki, tmp_path, echo):  # noqa: F811
    """unbound stops in the middle of a transfer and starts again on the
    same ports: the client's HTTP/2 connection is gone, it reconnects, and
    the stream goes on to the last byte (the tunnel's ARQ resends what was
    lost)."""
    ub = DohUnbound(procs, tmp_path / "ub1", server, pki)
    client = start_doh_client(procs, ub, ["--pin", pki.fingerprint, "--mux"],
                              env={"LOG_LEVEL": "debug"})
    again = []

    def restart():
        assert ub.proc.terminate_and_wait() == 0
        client.proc.wait_log(r"https: the resolver closed the connection|https connection to "
                             r"the resolver: ")
        again.append(DohUnbound(procs, tmp_path / "ub2", server, pki, port=ub.port,
                                https_port=ub.https_port, name="unbound2"))

    echo_across(client, echo, restart)
    assert connections_to(again[0].https_port) >= 1


def test_a_silent_resolver_is_left_for_a_new_connection(procs, server, doh, pki,  # noqa: F811
                                                       echo):
    """unbound frozen (SIGSTOP) in the middle of a transfer: its connection
    stays open but says nothing, not even to a PING, so the client gives it
    up after about 10 s and connects anew, which succeeds once unbound runs
    again (SIGCONT); the stream ends whole."""
    client = start_doh_client(procs, doh, ["--pin", pki.fingerprint, "--mux"])

    def freeze():
        os.kill(doh.proc.pid, signal.SIGSTOP)
        try:
            client.proc.wait_log(r"over https: the resolver said nothing for \d+ ms, not even to "
                                 r"a PING", timeout=30)
        finally:
            os.kill(doh.proc.pid, signal.SIGCONT)

    echo_across(client, echo, freeze, size=MB)
