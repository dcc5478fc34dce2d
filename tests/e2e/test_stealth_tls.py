"""The web carriers as a censor sees them (issue 11, items 3, 4 and 7): the
client's TLS ClientHello against curl's from the same machine (suites,
extensions in order, ALPN, groups, signature algorithms, versions, key
shares, length); a server that is offered h2 as curl offers it; the
self-signed certificate field by field against one `openssl req -x509`
makes, and its fingerprint across a restart (a client's --pin keeps
working); the WebSocket upgrade request across many connections (no fixed
length, no fixed bytes where the token lives, a browser's headers)."""

import base64
import datetime
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from helpers import free_port, recv_exact, socks_open, start_client
from test_web_carriers import nginx_wss, pki  # noqa: F401 (fixtures)

KEY = base64.b64encode(os.urandom(32)).decode()
LOOPBACK = ["--allow", "127.0.0.0/8"]


# ---------------------------------------------------------------------------
# ClientHello capture and parsing


def read_record(conn):
    """One whole TLS record from CONN."""
    head = recv_exact(conn, 5, "a TLS record header")
    return head + recv_exact(conn, struct.unpack(">H", head[3:5])[0], "a TLS record")


def parse_client_hello(rec):
    """The parts of a ClientHello record an observer fingerprints."""
    assert rec[0] == 22 and rec[5] == 1, "not a ClientHello: %r" % rec[:8]
    h = rec[9:9 + int.from_bytes(rec[6:9], "big")]
    p = 2 + 32
    p += 1 + h[p]  # session id
    n = struct.unpack(">H", h[p:p + 2])[0]
    suites = [struct.unpack(">H", h[p + 2 + i:p + 4 + i])[0] for i in range(0, n, 2)]
    p += 2 + n
    compression = h[p + 1:p + 1 + h[p]]
    p += 1 + h[p]
    end = p + 2 + struct.unpack(">H", h[p:p + 2])[0]
    p += 2
    exts = []
    while p < end:
        t, ln = struct.unpack(">HH", h[p:p + 4])
        exts.append((t, h[p + 4:p + 4 + ln]))
        p += 4 + ln
    e = dict(exts)

    def u16s(b):
        return [struct.unpack(">H", b[i:i + 2])[0] for i in range(0, len(b), 2)]

    alpn, q = [], 2
    while q < len(e.get(16, b"")):
        alpn.append(e[16][q + 1:q + 1 + e[16][q]].decode())
        q += 1 + e[16][q]
    shares, q = [], 2
    while q < len(e.get(51, b"")):
        g, ln = struct.unpack(">HH", e[51][q:q + 4])
        shares.append((g, ln))
        q += 4 + ln
    return {
        "record length": len(rec),
        "session id length": h[34],
        "suites": suites,
        "compression": compression,
        "extension types in order": [t for t, _ in exts],
        "server name": e.get(0, b"")[5:].decode(),
        "ALPN": alpn,
        "groups": u16s(e.get(10, b"")[2:]),
        "point formats": e.get(11),
        "signature algorithms": u16s(e.get(13, b"")[2:]),
        "versions": u16s(e.get(43, b"")[1:]),
        "psk modes": e.get(45),
        "key shares (group, length)": shares,
    }


class HelloCatcher:
    """A listener on 127.0.0.1 that reads the first TLS record of each
    connection and closes it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(30)

    def catch(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            return read_record(conn)

    def close(self):
        self.sock.close()


def curl_hello(catcher, host="localhost"):
    """The ClientHello of `curl -k https://HOST:PORT/`."""
    p = subprocess.Popen(["curl", "-sk", "--max-time", "20",
                          "https://%s:%d/" % (host, catcher.port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return catcher.catch()
    finally:
        p.wait(timeout=30)


def tt_hello(procs, catcher, scheme, host="localhost"):
    """The ClientHello of a tt client dialing SCHEME://HOST:PORT: a forward
    whose connection makes it dial."""
    path = "/ws" if scheme == "wss" else ""
    url = "%s://%s:%d%s" % (scheme, host, catcher.port, path)
    c = start_client(procs, url, ["-k", KEY, "--insecure-skip-verify"], socks=False,
                     forwards=["127.0.0.1:9"], name="tt-client-" + scheme)
    app = socket.create_connection(("127.0.0.1", c.forward_ports[0]))
    try:
        return catcher.catch()
    finally:
        app.close()


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_client_hello_is_curls(procs, scheme):
    """Every part of the hello an observer fingerprints (JA3's fields and
    more) is the same as curl's on this machine; only the random values
    (client random, session id, key share) differ."""
    catcher = HelloCatcher()
    try:
        want = parse_client_hello(curl_hello(catcher))
        got = parse_client_hello(tt_hello(procs, catcher, scheme))
    finally:
        catcher.close()
    assert want["ALPN"] == ["h2", "http/1.1"], "curl is not the reference expected: %r" % want
    for field in want:
        assert got[field] == want[field], "%s: tt %r, curl %r" % (field, got[field], want[field])


def test_server_offered_h2_picks_http11(procs):
    """A client offering h2 first, as curl does, gets http/1.1 from a wss://
    server (the protocol the WebSocket upgrade needs) and the web site; a
    client offering only h2 is refused with the fatal alert
    no_application_protocol, as by nginx without HTTP/2
    (test_stealth_nginx.py compares the two)."""
    from test_web_carriers import web_server
    srv = web_server(procs, "wss")
    for offer, chosen in ((["h2", "http/1.1"], "http/1.1"), (["h2"], None)):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(offer)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
            if chosen is None:
                with pytest.raises(ssl.SSLError, match="no application protocol"):
                    ctx.wrap_socket(raw, server_hostname="localhost")
                continue
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert s.selected_alpn_protocol() == chosen
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert s.recv(12) == b"HTTP/1.1 404"


# ---------------------------------------------------------------------------
# The self-signed certificate


def server_cert_der(port):
    """The certificate a TLS server on PORT presents."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def asn1_shape(der, tmp_path):
    """The certificate's ASN.1 tree without its random parts: each node's
    depth, form and tag, with object identifiers, booleans and string
    values kept, and the lengths of values that are random (serial, key,
    signature) dropped."""
    f = tmp_path / "shape.der"
    f.write_bytes(der)
    out = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in", str(f)],
                         capture_output=True, text=True, check=True).stdout
    shape = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+:d=(\d+)\s+hl=\d+ l=\s*\d+ (prim|cons):\s*(.*?)\s*(?::(.*))?$", line)
        assert m, line
        depth, form, tag, value = m.groups()
        tag = tag.strip()
        if tag in ("OBJECT", "BOOLEAN", "UTF8STRING", "PRINTABLESTRING"):
            shape.append((int(depth), form, tag, value))
        else:
            shape.append((int(depth), form, tag))
    return shape


def utc(naive):
    """A certificate time (naive, in UTC) as Unix seconds."""
    return naive.replace(tzinfo=datetime.timezone.utc).timestamp()


def openssl_req_cert(tmp_path, name):
    """What `openssl req -x509` makes for NAME on this machine, in DER."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "365", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name, "-keyout", str(tmp_path / "ref.key"),
                    "-outform", "DER", "-out", str(tmp_path / "ref.der")],
                   capture_output=True, check=True)
    return (tmp_path / "ref.der").read_bytes()


def test_self_signed_certificate_is_openssl_reqs(procs, tmp_path):
    """Field by field, tt's certificate (no -n: named after the machine) is
    the one `openssl req -x509 -days 365` makes: the same ASN.1 tree
    (version, algorithms, name string types, extensions, their order and
    criticality), a serial of openssl's size, valid from the moment it was
    made (no round offset) for 365 days, and the key identifiers and
    constraints openssl writes."""
    from cryptography import x509
    from test_web_carriers import web_server
    t0 = int(time.time())
    srv = web_server(procs, "tls")
    t1 = time.time()
    name = socket.gethostname()
    srv.proc.wait_log(r"self-signed certificate for %s, SHA-256 %s \(clients: --pin with this\), "
                      r"new, kept in " % (re.escape(name), srv.pin))
    der = server_cert_der(srv.port)
    ref = openssl_req_cert(tmp_path, name)
    assert asn1_shape(der, tmp_path) == asn1_shape(ref, tmp_path)
    got, want = x509.load_der_x509_certificate(der), x509.load_der_x509_certificate(ref)
    assert got.version == want.version == x509.Version.v3
    assert 0 < got.serial_number < 1 << 159, "openssl req draws 159 bits"
    assert got.serial_number.bit_length() > 128, "a serial of openssl's size, not 16 bytes"
    assert got.subject == got.issuer == want.subject.__class__(
        [x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
    nb, na = utc(got.not_valid_before), utc(got.not_valid_after)
    assert t0 <= nb <= t1, "notBefore is when it was made: %s (started %d-%d)" % (nb, t0, t1)
    assert na - nb == 365 * 86400 == utc(want.not_valid_after) - utc(want.not_valid_before)
    assert got.signature_algorithm_oid == want.signature_algorithm_oid
    assert got.public_key().curve.name == want.public_key().curve.name == "secp256r1"
    ext = [(e.oid, e.critical) for e in got.extensions]
    assert ext == [(e.oid, e.critical) for e in want.extensions]
    ski = got.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = got.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(got.public_key()).digest
    assert aki.key_identifier == ski.digest and aki.authority_cert_issuer is None
    assert got.extensions.get_extension_for_class(x509.BasicConstraints).value == \
        x509.BasicConstraints(ca=True, path_length=None)
    assert got.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == \
        x509.SubjectAlternativeName([x509.DNSName(name)])


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_self_signed_certificate_survives_restart(procs, echo, scheme):
    """The certificate is kept in the state directory: a restarted server
    presents the same one, and a client started with --pin before the
    restart opens streams after it."""
    from test_web_carriers import web_client, web_server
    srv = web_server(procs, scheme, "-n", "tunnel.test")
    path = srv.proc.wait_log(r"new, kept in (\S+)$").group(1)
    assert os.stat(path).st_mode & 0o077 == 0, "the file holds a private key: mode 0600"
    c = web_client(procs, srv.url, "--pin", srv.pin, "-n", "tunnel.test")
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"before")
        assert recv_exact(s, 6) == b"before"
    assert srv.proc.terminate_and_wait() == 0
    again = procs.tt(srv.proc.argv[1:], name="tt-server-restarted")
    again.wait_log(r"self-signed certificate for tunnel\.test, SHA-256 %s \(clients: --pin with "
                   r"this\), from %s$" % (srv.pin, re.escape(path)))
    again.wait_log(r"tt server listening on ")
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        s.sendall(b"after")
        assert recv_exact(s, 5) == b"after"


def test_self_signed_certificate_for_another_name_is_replaced(procs, tmp_path):
    """A kept certificate that does not fit (made for another name) is
    replaced, and the server says so; one that cannot be kept (the state
    directory is a file) is made anew at each start, with a warning."""
    from test_web_carriers import web_server
    state = tmp_path / "state"
    state.mkdir()
    kept = state / "selfsigned-tunnel.test.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=other.test",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")],
                   capture_output=True, check=True)
    kept.write_bytes((tmp_path / "k.pem").read_bytes() + (tmp_path / "c.pem").read_bytes())
    old = kept.read_bytes()

    def server(state_dir, name):
        argv = ["server", "-l", "tls://127.0.0.1:%d" % free_port(), "-k", KEY, "-n", "tunnel.test"]
        return procs.tt(argv + LOOPBACK, name=name, env=dict(os.environ, TT_STATE_DIR=state_dir))

    srv = server(str(state), "tt-server")
    srv.wait_log(r"warn: self-signed certificate for tunnel\.test, SHA-256 \S+ \(clients: --pin "
                 r"with this\), new: the one in %s had expired or was for another name"
                 % re.escape(str(kept)))
    srv.wait_log(r"tt server listening on ")
    assert kept.read_bytes() != old
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    srv2 = server(str(blocked), "tt-server-2")
    srv2.wait_log(r"warn: self-signed certificate for tunnel\.test, .*new; cannot keep it in "
                  r"%s/selfsigned-tunnel\.test\.pem \(.+\), so it changes at each start"
                  % re.escape(str(blocked)))


# ---------------------------------------------------------------------------
# The WebSocket upgrade request

# What a desktop Chrome sends when a page opens a WebSocket, in its order.
CHROME_HEADERS = ["Host", "Connection", "Pragma", "Cache-Control", "User-Agent", "Upgrade",
                  "Origin", "Sec-WebSocket-Version", "Accept-Encoding", "Accept-Language", "Cookie",
                  "Sec-WebSocket-Key", "Sec-WebSocket-Extensions"]


def read_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = conn.recv(4096)
        assert d, "EOF inside the request head: %r" % buf
        buf += d
    return buf[:buf.index(b"\r\n\r\n") + 4]


def test_upgrade_request_varies_and_looks_like_chromes(procs):
    """Twenty upgrade requests of one client, caught by a listener posing as
    the server: each carries Chrome's headers in Chrome's order, with its
    User-Agent and the page's origin; the token is a session cookie whose
    value shares no prefix across connections (no 'AAAAA') and whose length
    varies, so the requests' lengths vary; nothing says Authorization."""
    lst = socket.create_server(("127.0.0.1", 0))
    lst.settimeout(30)
    port = lst.getsockname()[1]
    url = "ws://127.0.0.1:%d/tun" % port
    c = start_client(procs, url, ["-k", KEY], socks=False, forwards=["127.0.0.1:9"])
    heads = []
    try:
        for _ in range(20):
            app = socket.create_connection(("127.0.0.1", c.forward_ports[0]))
            conn, _ = lst.accept()
            with conn:
                conn.settimeout(10)
                heads.append(read_head(conn))
            app.close()
    finally:
        lst.close()
    cookies, lengths = [], set()
    for head in heads:
        lines = head.decode("latin-1").split("\r\n")[:-2]
        assert lines[0] == "GET /tun HTTP/1.1", lines[0]
        fields = [tuple(x.split(": ", 1)) for x in lines[1:]]
        assert [n for n, _ in fields] == CHROME_HEADERS, fields
        f = dict(fields)
        assert f["Host"] == "127.0.0.1:%d" % port
        assert f["Origin"] == "http://127.0.0.1:%d" % port
        assert re.match(r"Mozilla/5\.0 \(Windows NT 10\.0; Win64; x64\) AppleWebKit/537\.36 "
                        r"\(KHTML, like Gecko\) Chrome/\d+\.0\.0\.0 Safari/537\.36$",
                        f["User-Agent"])
        assert len(base64.b64decode(f["Sec-WebSocket-Key"], validate=True)) == 16
        name, _, value = f["Cookie"].partition("=")
        assert re.fullmatch(r"[A-Za-z0-9_-]{54,118}", value), f["Cookie"]
        cookies.append((name, value))
        lengths.add(len(head))
    assert len({n for n, _ in cookies}) == 1, "one session cookie name per key"
    values = [v for _, v in cookies]
    for i in range(8):
        assert len({v[i] for v in values}) > 1, "every token has %r at %d" % (values[0][i], i)
    assert len({len(v) for v in values}) > 5, "token lengths: %r" % sorted(len(v) for v in values)
    assert len(lengths) > 5, "request lengths: %r" % sorted(lengths)
    assert len({h for h in heads}) == len(heads)


def test_wss_through_nginx_with_http2_falls_back_to_http11(procs, echo, pki, nginx_wss):
    """nginx with http2 on its TLS listener picks h2 from curl's offer,
    and HTTP/2 cannot carry the upgrade: the client says so once, offers
    http/1.1 alone from then on (as a browser does for a WebSocket) and the
    stream goes through."""
    from test_web_carriers import web_client, web_server
    srv = web_server(procs, "ws", "-v")
    port = nginx_wss(srv.port, http2=True)
    c = web_client(procs, "wss://127.0.0.1:%d/tun" % port, "--ca", pki.ca, "-n", pki.name)
    for i in range(2):
        with socks_open(c.socks, "127.0.0.1", echo) as s:
            s.sendall(b"through h2 nginx")
            assert recv_exact(s, 16) == b"through h2 nginx"
    c.proc.wait_log(r"warn: the wss:// server 127\.0\.0\.1 chose HTTP/2 \(ALPN h2\)")
    assert len(re.findall(r"chose HTTP/2", c.proc.log())) == 1
