"""dns+tls:// and dns+tcp://: the dns:// carrier with its queries to the
resolver over TLS (RFC 7858) or TCP (RFC 7766) instead of UDP. A real
unbound serves DNS over TLS on a port of its own (helpers.Unbound, tls=)
with a certificate from the test CA (test_web_carriers.pki, for the name
tunnel.test), and its stub zone points at the tt server's UDP port as for
dns:// (test_dns_carrier.py); the tt client asks only unbound's TLS port.

unbound also answers plain DNS on its TLS port, so a transfer alone would
not prove that TLS carried it: the TLS connection is seen with ss, and a
client that does not trust the certificate gets nothing."""
import hashlib
import os
import re

import pytest

from helpers import bulk_echo, connections_to, curl
from test_dns_carrier import DnsServer, MB, start_client
from test_dnstun import DOMAIN, Unbound
from test_web_carriers import pki  # noqa: F401 (fixture)

from helpers import CARRIER_KEY


def dot_url(unbound):
    return "dns+tls://127.0.0.1:%d/%s" % (unbound.tls_port, DOMAIN)


def start_dot_client(procs, unbound, args=(), **kw):
    return start_client(procs, dot_url(unbound), ["-k", CARRIER_KEY] + list(args), **kw)


@pytest.fixture
def server(procs):
    return DnsServer(procs)


@pytest.fixture
def dot(procs, tmp_path, server, pki):  # noqa: F811
    """unbound with DNS over TLS, its stub zone to the tt server."""
    return Unbound(procs, tmp_path / "unbound", server, tls=(pki.cert, pki.key))


def test_curl_and_bulk_through_dot(procs, server, dot, pki, nginx, echo):  # noqa: F811
    """curl through SOCKS5 over dns+tls://, 4 MiB down from nginx, and 4
    MiB both ways through an echo server, byte-compared."""
    name = "dot-%s.bin" % os.urandom(4).hex()
    body = os.urandom(4 * MB)
    with open(os.path.join(nginx.root, name), "wb") as f:
        f.write(body)
    client = start_dot_client(procs, dot, ["--ca", pki.ca, "-n", pki.name, "--mux"])
    r = curl("-x", "socks5h://127.0.0.1:%d" % client.socks_port,
             "http://127.0.0.1:%d/%s" % (nginx.port, name), timeout=120)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(body).digest()
    # The queries went in a TLS connection to unbound's TLS port.
    assert connections_to(dot.tls_port) >= 1
    bulk_echo(client.socks, echo, size=4 * MB)


def test_pin_instead_of_ca(procs, server, dot, pki, echo):  # noqa: F811
    """--pin accepts exactly unbound's certificate, whatever its name; one
    stream per DNS connection (no --mux), so each has its own TLS."""
    client = start_dot_client(procs, dot, ["--pin", pki.fingerprint])
    bulk_echo(client.socks, echo, size=200 * 1024)
    bulk_echo(client.socks, echo, size=200 * 1024)


def test_wrong_certificate_is_refused_with_one_line(procs, server, dot, pki):  # noqa: F811
    """Without --ca the test CA is not trusted: the stream fails at once
    (not after the connection's 30 s idle timeout) and the client says why
    in one line."""
    client = start_dot_client(procs, dot, ["-n", pki.name])
    r = curl("-x", "socks5h://127.0.0.1:%d" % client.socks_port, "http://127.0.0.1:1/",
             timeout=20)
    assert r.returncode != 0
    line = client.proc.wait_log(r"^.*over tls: certificate verify failed.*$").group(0)
    assert "127.0.0.1:%d" % dot.tls_port in line
    text = client.proc.log()
    assert len(re.findall(r"certificate verify failed", text)) == 1, text
    assert client.proc.alive()


def test_wrong_name_is_refused(procs, server, dot, pki):  # noqa: F811
    """The test CA's certificate is for tunnel.test, not for the address."""
    client = start_dot_client(procs, dot, ["--ca", pki.ca])
    r = curl("-x", "socks5h://127.0.0.1:%d" % client.socks_port, "http://127.0.0.1:1/",
             timeout=20)
    assert r.returncode != 0
    client.proc.wait_log(r"over tls: certificate verify failed.*(mismatch|name)")


def test_reconnects_after_unbound_closes_the_idle_connection(procs, server, pki, tmp_path,
                                                            echo):  # noqa: F811
    """unbound closes a TCP connection that brings no query for its
    tcp-idle-timeout; an idle client polls less often than that, so its
    connection is closed and the next queries open a new one."""
    ub = Unbound(procs, tmp_path / "unbound", server, tls=(pki.cert, pki.key),
                 server_lines=["tcp-idle-timeout: 300"])
    client = start_dot_client(procs, ub, ["--ca", pki.ca, "-n", pki.name, "--mux"],
                              env={"LOG_LEVEL": "debug"})
    bulk_echo(client.socks, echo, size=256 * 1024)
    client.proc.wait_log(r"the resolver closed its tls connection", timeout=30)
    bulk_echo(client.socks, echo, size=256 * 1024)
    closes = len(re.findall(r"the resolver closed its tls connection", client.proc.log()))
    assert closes >= 1


def test_dns_over_tcp(procs, server, dot, echo):
    """dns+tcp://: the same over plain TCP to unbound's DNS port."""
    client = start_client(procs, "dns+tcp://127.0.0.1:%d/%s" % (dot.port, DOMAIN),
                          ["-k", CARRIER_KEY, "--mux"])
    bulk_echo(client.socks, echo, size=MB)
    assert connections_to(dot.port) >= 1


def test_truncated_answers_are_asked_again_over_tcp(procs, server, tmp_path, echo):
    """A resolver that answers its clients in at most 512 bytes over UDP
    (unbound's max-udp-size) truncates every answer that brings a full
    datagram down; the dns:// client asks each of them again over TCP, so
    the transfer goes on instead of stalling on answers that never fit."""
    ub = Unbound(procs, tmp_path / "unbound", server, server_lines=["max-udp-size: 512"])
    client = start_client(procs, "dns://127.0.0.1:%d/%s" % (ub.port, DOMAIN),
                          ["-k", CARRIER_KEY, "--mux"])
    bulk_echo(client.socks, echo, size=MB)
    assert connections_to(ub.port) >= 1


def test_a_resolver_without_tls_is_left_out(procs, server, dot, pki, echo):  # noqa: F811
    """A second resolver (--dns-resolver) that speaks DNS over TCP but not
    TLS on that port (the tt server itself): its handshakes fail, it is
    taken out of use like a resolver that times out, and the bytes arrive
    whole through unbound."""
    from test_dnstun import SERVER_HOST
    client = start_dot_client(procs, dot, ["--ca", pki.ca, "-n", pki.name, "--mux",
                                           "--dns-resolver", "%s:%d" % (SERVER_HOST, server.port)])
    bulk_echo(client.socks, echo, size=MB)
    client.proc.wait_log(r"resolver %s:%d over tls: " % (re.escape(SERVER_HOST), server.port))
