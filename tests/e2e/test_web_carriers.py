"""The web carriers end to end: tls://, ws:// and wss://. Certificates
(self-signed with --pin, a test CA with --ca and -n, failures of both), the
mos-tls-tunnel reproduction (-d fixed destination, -L, no -k), wss behind a
real nginx terminating TLS, the port looking like a web site to anything
that is not a tunnel client (--fallback, --www, the built-in 404, forged and
replayed WebSocket tokens), wrong and missing keys, option errors, the mux
over every carrier (many streams on few connections, latency beside a bulk
stream, a dead peer, --mux-max-streams, --mux-idle) and TCP Fast Open
(counted by the kernel in a namespace of the test's own)."""

import base64
import hashlib
import hmac
import os
import re
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import threading
import time
import types

import pytest

from helpers import (NGINX_PRELUDE, NGINX_WS_PROXY, PIN_RE, carrier_named, connections_to, curl, free_port,
                     recv_exact, recv_until_eof, rep_code, run_tt, sanitizer_report,
                     socks_connect, socks_open, start_client, start_client_of, start_nginx,
                     start_server, tls_probe, wait_until)

# A `tt keygen`-style key (standard base64 of 32 bytes) is used as the PSK
# as is, without scrypt, so the test can derive the WebSocket token key.
KEY = base64.b64encode(os.urandom(32)).decode()
PATH = "/tun"
LOOPBACK = ["--allow", "127.0.0.0/8"]


# ---------------------------------------------------------------------------
# Starting servers and clients


def web_server(procs, scheme, *args, path=None, key=KEY, name="tt-server", netns=None):
    """Starts `tt server -l SCHEME://127.0.0.1:PORT[PATH]` (PATH defaults to
    /tun for ws and wss). Returns its proc, port, URL and the certificate's
    SHA-256 from its log (None for ws://)."""
    if path is None:
        path = PATH if scheme in ("ws", "wss") else ""
    for _ in range(3):
        port = free_port(("127.0.0.1",))
        url = "%s://127.0.0.1:%d%s" % (scheme, port, path)
        argv = ["server", "-l", url] + LOOPBACK + (["-k", key] if key else []) + list(args)
        p = procs.tt(argv, name=name, netns=netns)
        m = p.wait_log(r"tt server listening on ([^\s,]+)|(address already in use)", timeout=60)
        if not m.group(2):
            assert m.group(1) == url, "listening line shows %s, not %s" % (m.group(1), url)
            fp = re.search(PIN_RE, p.log())
            return types.SimpleNamespace(proc=p, port=port, url=url,
                                         pin=fp.group(1) if fp else None)
        procs.discard(p)
    pytest.fail("could not find a free port for the tt server")


def web_client(procs, url, *args, key=KEY, socks=True, forwards=(), name="tt-client", netns=None):
    kargs = ["-k", key] if key else []
    return start_client(procs, url, kargs + list(args), socks=socks, forwards=forwards, name=name,
                        netns=netns)


def fetch(socks, url, *args):
    r = curl("--socks5-hostname", "%s:%d" % socks, *args, url, timeout=180)
    assert r.returncode == 0, "curl through tt failed: %s" % r.stderr.decode(errors="replace")
    return r.stdout


def fetch_big(socks, nginx, big_file):
    body = fetch(socks, "http://127.0.0.1:%d/%s" % (nginx.port, big_file.name))
    assert len(body) == big_file.size
    assert hashlib.sha256(body).hexdigest() == big_file.sha256


def count(proc, pattern):
    return len(re.findall(pattern, proc.log(), re.M))


def carrier_peers(server):
    """The distinct client addresses of the carrier connections whose
    streams the server connected (needs -v): one per carrier connection."""
    return set(re.findall(r"^\S+ tt\[\d+\] debug: c\d+ (\S+): connected to ", server.log(), re.M))


def echo_once(sock, payload):
    sock.sendall(payload)
    assert recv_exact(sock, len(payload), "the echo") == payload


def assert_stream_fails(socks, port):
    """A CONNECT through the client gets a SOCKS reply other than success."""
    sock, rep = socks_connect(socks, "127.0.0.1", port, timeout=30)
    try:
        assert rep_code(rep) != 0, "the stream was opened: reply %r" % rep
    finally:
        sock.close()


# ---------------------------------------------------------------------------
# Certificates


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)
    return r.stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and a certificate it issued for tunnel.test (DNS name only:
    neither 127.0.0.1 nor another name matches it)."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=tt e2e test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=tunnel.test",
            cwd=d)
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=serverAuth\n"
                               "subjectAltName=DNS:tunnel.test\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "30", "-extfile", "ext.cnf", cwd=d)
    fp = openssl("x509", "-in", "server.pem", "-noout", "-fingerprint", "-sha256", cwd=d)
    return types.SimpleNamespace(ca=str(d / "ca.pem"), cert=str(d / "server.pem"),
                                 key=str(d / "server.key"), name="tunnel.test",
                                 fingerprint=fp.strip().split("=", 1)[1])


# ---------------------------------------------------------------------------
# HTTP and WebSocket by hand


def tls_wrap(sock, server_hostname=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock, server_hostname=server_hostname)


def web_connect(port, tls, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return tls_wrap(s) if tls else s


def read_response(sock, head_request=False):
    """Reads one HTTP/1.1 response: (status line, [(name, value)], body).
    The body is Content-Length long, or runs to EOF without one; none for a
    101, a 304 or an answer to HEAD."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            pytest.fail("no complete response head; got %r" % buf[:200])
        if not d:
            pytest.fail("EOF before a complete response head; got %r" % buf[:200])
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]]
    status = lines[0]
    code = int(status.split()[1])
    if head_request or code in (101, 204, 304):
        return status, headers, rest
    length = [v for n, v in headers if n.lower() == "content-length"]
    if length:
        n = int(length[0])
        body = rest
        while len(body) < n:
            d = sock.recv(n - len(body))
            if not d:
                pytest.fail("EOF inside a %d-byte body after %d bytes" % (n, len(body)))
            body += d
        return status, headers, body
    more, _ = recv_until_eof(sock, 10)
    return status, headers, rest + more


def header(headers, name):
    vals = [v for n, v in headers if n.lower() == name.lower()]
    return vals[0] if vals else None


def ask(port, request, tls, head_request=False):
    """Sends REQUEST on a new connection; returns the response."""
    with web_connect(port, tls) as s:
        s.sendall(request)
        return read_response(s, head_request)


def comparable(resp):
    """A response without what differs between two answers of one server
    (Date, and nginx's keep-alive bookkeeping)."""
    status, headers, body = resp
    keep = [(n.lower(), v) for n, v in headers if n.lower() not in ("date", "connection", "keep-alive")]
    return status, keep, body


def get(path, host="tunnel.test", extra=""):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n%s\r\n"
            % (path, host, extra)).encode()


def ws_auth_key(key):
    """HKDF-SHA256(IKM = PSK, salt = empty, info = "tt-ws1 auth", 32 bytes),
    with the PSK a keygen key used as is (docs/PROTOCOL.md)."""
    psk = base64.b64decode(key)
    assert len(psk) == 32
    prk = hmac.new(b"\0" * 32, psk, hashlib.sha256).digest()
    return hmac.new(prk, b"tt-ws1 auth" + b"\x01", hashlib.sha256).digest()


def ws_token(key, path, now=None, nonce=None, pad=None):
    """The tt-ws2 token of src/codec/wshs.h: base64url(NONCE || TIME ^ MASK
    || MAC || PAD)."""
    k = ws_auth_key(key)
    t = struct.pack(">Q", int(time.time()) if now is None else now)
    nonce = os.urandom(16) if nonce is None else nonce
    pad = os.urandom(os.urandom(1)[0] % 49) if pad is None else pad
    mask = hmac.new(k, b"tt-ws2 time" + nonce, hashlib.sha256).digest()[:8]
    mac = hmac.new(k, b"tt-ws2" + nonce + t + bytes([len(pad)]) + pad + path.encode(),
                   hashlib.sha256).digest()
    masked = bytes(a ^ b for a, b in zip(t, mask))
    return base64.urlsafe_b64encode(nonce + masked + mac[:16] + pad).rstrip(b"=").decode()


def ws_upgrade(path, token=None, host="tunnel.test"):
    """An RFC 6455 upgrade request, the token (if any) in a cookie among
    others; returns (request bytes, expected accept)."""
    k = base64.b64encode(os.urandom(16)).decode()
    auth = "Cookie: theme=dark; sid=%s; lang=en\r\n" % token if token is not None else ""
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (path, host, k, auth))
    accept = base64.b64encode(hashlib.sha1((k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                              .digest()).decode()
    return req.encode(), accept


# ---------------------------------------------------------------------------
# 1. Self-signed certificates and --pin


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_self_signed_pin_carries_curl_and_100mb(procs, nginx, big_file, scheme):
    srv = web_server(procs, scheme)
    assert srv.pin, "no certificate fingerprint in the server's log:\n" + srv.proc.log()
    assert re.search(r"self-signed certificate for \S+, SHA-256 %s \(clients: --pin with this\)"
                     % srv.pin, srv.proc.log())
    # The pin in both spellings: colons as logged, and bare lower-case hex.
    pin = srv.pin if scheme == "tls" else srv.pin.replace(":", "").lower()
    c = web_client(procs, srv.url, "--pin", pin)
    assert fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index
    fetch_big(c.socks, nginx, big_file)


def test_self_signed_certificate_for_name(procs, echo):
    srv = web_server(procs, "tls", "-n", "tunnel.test")
    srv.proc.wait_log(r"self-signed certificate for tunnel\.test, SHA-256 " + srv.pin)
    c = web_client(procs, srv.url, "--pin", srv.pin, "-n", "tunnel.test")
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"named")


# ---------------------------------------------------------------------------
# 2. A wrong pin


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_wrong_pin_fails_the_stream_and_dials_nothing(procs, echo, scheme):
    srv = web_server(procs, scheme, "-v")
    wrong = hashlib.sha256(b"another certificate").hexdigest()
    assert wrong.upper() != srv.pin.replace(":", "")
    c = web_client(procs, srv.url, "--pin", wrong)
    assert_stream_fails(c.socks, echo)
    c.proc.wait_log(r"cannot reach the %s:// server 127\.0\.0\.1: certificate verify failed" % scheme)
    assert count(srv.proc, r"connected to") == 0
    # The same server with the right pin works: the failure was the pin.
    good = web_client(procs, srv.url, "--pin", srv.pin, name="good-client")
    with socks_open(good.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"right pin")
    assert count(srv.proc, r"connected to") == 1


# ---------------------------------------------------------------------------
# 3. A CA's certificate: --ca and -n


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_ca_and_name_verification(procs, echo, pki, scheme):
    srv = web_server(procs, scheme, "--cert", pki.cert, "--tls-key", pki.key, "-v")
    srv.proc.wait_log(r"certificate %s, SHA-256 %s" % (re.escape(pki.cert), pki.fingerprint))
    assert "self-signed" not in srv.proc.log()
    ok = web_client(procs, srv.url, "--ca", pki.ca, "-n", pki.name, name="ca-and-name")
    with socks_open(ok.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"verified")
    # The CA's certificate pinned works as well.
    pinned = web_client(procs, srv.url, "--pin", pki.fingerprint, name="pinned")
    with socks_open(pinned.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"pinned")
    dials = count(srv.proc, r"connected to")
    assert dials == 2
    failing = {
        "wrong name": ("--ca", pki.ca, "-n", "wrong.test"),
        "URL host as the name": ("--ca", pki.ca),
        "system CAs": ("-n", pki.name),
        "system CAs, no name": (),
    }
    for what, args in failing.items():
        c = web_client(procs, srv.url, *args, name=what)
        assert_stream_fails(c.socks, echo)
        m = c.proc.wait_log(r"cannot reach the %s:// server .*" % scheme)
        assert "verify failed" in m.group(0), "%s: %s" % (what, m.group(0))
    assert count(srv.proc, r"connected to") == dials


def test_insecure_skip_verify_warns_and_connects(procs, echo, pki):
    srv = web_server(procs, "tls", "--cert", pki.cert, "--tls-key", pki.key)
    c = web_client(procs, srv.url, "--insecure-skip-verify")
    assert re.search(r"warn: .*--insecure-skip-verify", c.proc.log()), c.proc.log()
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"unchecked")


# ---------------------------------------------------------------------------
# Keys


@pytest.mark.parametrize("scheme", ["tls", "ws", "wss"])
def test_wrong_or_missing_key_fails_and_dials_nothing(procs, echo, scheme):
    srv = web_server(procs, scheme, "-v")
    pin = ("--pin", srv.pin) if srv.pin else ()
    wrong = web_client(procs, srv.url, *pin, key=base64.b64encode(os.urandom(32)).decode(),
                       name="wrong-key")
    assert_stream_fails(wrong.socks, echo)
    srv.proc.wait_log(r"not a tt client \(wrong token\)")
    keyless = web_client(procs, srv.url, *pin, key=None, name="no-key")
    assert_stream_fails(keyless.socks, echo)
    srv.proc.wait_log(r"not a tt client \(%s\)" % ("wrong token" if scheme == "tls" else "no token"))
    assert count(srv.proc, r"not a tt client") == 2
    assert count(srv.proc, r"connected to") == 0
    # A password (stretched with scrypt) as -k works on both ends.
    pw = web_server(procs, scheme, key="correct horse battery staple", name="pw-server")
    c = web_client(procs, pw.url, *(("--pin", pw.pin) if pw.pin else ()),
                   key="correct horse battery staple", name="pw-client")
    with socks_open(c.socks, "127.0.0.1", echo, timeout=30) as s:
        echo_once(s, b"password")


# ---------------------------------------------------------------------------
# 4. mos-tls-tunnel: a fixed destination, -L, no -k


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_mtt_reproduction_fixed_destination_without_key(procs, nginx, echo, scheme):
    """mtt-server -d DEST / mtt-client -L: no key on either side. The -L
    forward names nginx, but the server's -d (the echo server) wins."""
    srv = web_server(procs, scheme, "-d", "127.0.0.1:%d" % echo, key=None)
    srv.proc.wait_log(r"warn: no -k: anyone who can reach this server .*127\.0\.0\.1:%d" % echo)
    srv.proc.wait_log(r"tt server listening on %s, every stream to 127\.0\.0\.1:%d$"
                      % (re.escape(srv.url), echo))
    args = ("--pin", srv.pin) if scheme == "wss" else ()
    c = web_client(procs, srv.url, *args, key=None, socks=False,
                   forwards=["127.0.0.1:%d" % nginx.port])
    for i in range(3):
        with socket.create_connection(("127.0.0.1", c.forward_ports[0]), timeout=10) as s:
            payload = os.urandom(100000)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            data, how = recv_until_eof(s, 20)
            assert how == "eof" and data == payload
    # And a browser at the same port gets a web page, not the tunnel.
    status, headers, _ = ask(srv.port, get(PATH), scheme == "wss")
    assert status.startswith("HTTP/1.1 404"), status
    assert header(headers, "Server") == "nginx"


# ---------------------------------------------------------------------------
# 5. wss behind nginx terminating TLS


NGINX_WS_CONF = NGINX_PRELUDE + """\
    server {{
        listen 127.0.0.1:{port} ssl{http2};
        server_name tunnel.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
        location /tun {{
""" + NGINX_WS_PROXY + """\
        }}
        location / {{
        }}
    }}
}}
"""


@pytest.fixture
def nginx_wss(procs, pki, www, tmp_path):
    """Returns start(upstream_port): an nginx serving `www` over TLS (the
    tunnel.test certificate) on 127.0.0.1 and proxying WebSocket upgrades
    on /tun to UPSTREAM, with HTTP/2 on its listener when HTTP2; its port."""

    def start(upstream, http2=False):
        def conf(tmp, port):
            return NGINX_WS_CONF.format(tmp=tmp, port=port, root=www.root, cert=pki.cert,
                                        key=pki.key, upstream=upstream,
                                        http2=" http2" if http2 else "")

        def ready(port):
            try:
                return ask(port, get("/"), True)[2] == www.index.encode()
            except (OSError, AssertionError):
                return False

        return start_nginx(procs, tmp_path, "nginx-wss", conf, ready)

    return start


@pytest.mark.parametrize("verify", ["ca", "pin"])
def test_wss_through_nginx_reverse_proxy(procs, nginx, big_file, pki, nginx_wss, verify):
    srv = web_server(procs, "ws", "-v")
    port = nginx_wss(srv.port)
    args = ("--ca", pki.ca, "-n", pki.name) if verify == "ca" else ("--pin", pki.fingerprint)
    c = web_client(procs, "wss://127.0.0.1:%d%s" % (port, PATH), *args)
    assert fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index
    fetch_big(c.socks, nginx, big_file)
    # Both streams reached the tt server through nginx, which passed the
    # token on untouched.
    assert count(srv.proc, r"connected to") == 2
    assert count(srv.proc, r"not a tt client") == 0
    # The site in front is still the site.
    assert ask(port, get("/"), True)[2] == nginx.index.encode()


def test_wss_through_nginx_with_mux(procs, nginx, big_file, pki, nginx_wss):
    srv = web_server(procs, "ws", "-v")
    port = nginx_wss(srv.port)
    c = web_client(procs, "wss://127.0.0.1:%d%s" % (port, PATH), "--ca", pki.ca, "-n", pki.name,
                   "--mux", "--mux-max-streams", "16")
    assert fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index
    fetch_big(c.socks, nginx, big_file)
    # Ten concurrent fetches through the same muxed connection.
    results = {}

    def one(i):
        try:
            results[i] = fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode()
        except BaseException as e:  # pytest.fail inside a thread
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(results.get(i) == nginx.index for i in range(10)), results
    # nginx opened one upstream connection per carrier connection.
    assert len(carrier_peers(srv.proc)) == 1, carrier_peers(srv.proc)


# ---------------------------------------------------------------------------
# 6. Anything but a tunnel client sees a web site


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_ws_fallback_answers_as_the_web_site(procs, nginx, scheme):
    srv = web_server(procs, scheme, "--fallback", "127.0.0.1:%d" % nginx.port, "-v")
    tls = scheme == "wss"

    def same_as_nginx(request, what):
        got = ask(srv.port, request, tls)
        direct = ask(nginx.port, request, False)
        assert comparable(got) == comparable(direct), what
        return got

    # (a) the home page, with curl as a browser would ask.
    if tls:
        r = curl("-k", "https://127.0.0.1:%d/" % srv.port, timeout=20)
    else:
        r = curl("http://127.0.0.1:%d/" % srv.port, timeout=20)
    assert r.returncode == 0 and r.stdout.decode() == nginx.index, r.stderr
    got = same_as_nginx(get("/"), "GET /")
    assert got[2] == nginx.index.encode()
    # (b) another path, and our path without an upgrade.
    assert same_as_nginx(get("/nope.html"), "GET /nope.html")[0].startswith("HTTP/1.1 404")
    same_as_nginx(get(PATH), "GET %s without an upgrade" % PATH)
    # (c) upgrades without a token, with garbage, with a wrong key's token,
    # outside the clock window, and for another path.
    cases = {
        "no token": ws_upgrade(PATH)[0],
        "garbage token": ws_upgrade(PATH, "x" * 54)[0],
        "another key's token": ws_upgrade(PATH, ws_token(base64.b64encode(os.urandom(32)).decode(),
                                                         PATH))[0],
        "old token": ws_upgrade(PATH, ws_token(KEY, PATH, now=int(time.time()) - 3600))[0],
        "token for another path": ws_upgrade("/other", ws_token(KEY, "/other"))[0],
    }
    for what, req in cases.items():
        got = same_as_nginx(req, what)
        assert not got[0].startswith("HTTP/1.1 101"), what
    for why in ("no token", "wrong token", "token time outside the window"):
        assert re.search(r"c\d+ 127\.0\.0\.1:\d+: not a tt client \(%s\)" % why, srv.proc.log()), why
    # (d) a valid upgrade is accepted once; the same request again is a replay.
    req, accept = ws_upgrade(PATH, ws_token(KEY, PATH))
    with web_connect(srv.port, tls) as s:
        s.sendall(req)
        status, headers, _ = read_response(s)
        assert status.startswith("HTTP/1.1 101"), status
        assert header(headers, "Sec-WebSocket-Accept") == accept
        assert header(headers, "Upgrade").lower() == "websocket"
    got = same_as_nginx(req, "the replayed upgrade")
    assert not got[0].startswith("HTTP/1.1 101")
    srv.proc.wait_log(r"not a tt client \(replayed token\)")
    assert count(srv.proc, r"connected to") == 0
    # A real client is unaffected by all of this.
    c = web_client(procs, srv.url, *(("--pin", srv.pin) if tls else ()))
    assert fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index


def test_ws_upgrade_replayed_after_a_restart_gets_the_web_site(procs, nginx):
    """A valid upgrade, accepted once, replayed to the server restarted on
    the same port within the window: the new process's nonce memory is
    empty, but the token was made before it started, so the replay gets
    nginx's own answer and nothing is dialled."""
    srv = web_server(procs, "ws", "--fallback", "127.0.0.1:%d" % nginx.port, "-v")
    req, _ = ws_upgrade(PATH, ws_token(KEY, PATH))
    with web_connect(srv.port, False) as s:
        s.sendall(req)
        status, _, _ = read_response(s)
        assert status.startswith("HTTP/1.1 101"), status
    assert srv.proc.terminate_and_wait() == 0
    again = procs.tt(["server", "-l", srv.url, "-k", KEY, "--fallback",
                      "127.0.0.1:%d" % nginx.port, "-v"] + LOOPBACK, name="tt-server-restarted")
    again.wait_log(r"tt server listening on ", timeout=60)
    got = ask(srv.port, req, False)
    assert not got[0].startswith("HTTP/1.1 101"), got[0]
    assert comparable(got) == comparable(ask(nginx.port, req, False))
    again.wait_log(r"not a tt client \(token made before this server started\)")
    assert count(again, r"connected to") == 0


def test_tls_fallback_answers_as_the_web_site(procs, nginx):
    srv = web_server(procs, "tls", "--fallback", "127.0.0.1:%d" % nginx.port, "-v")
    for path in ("/", "/nope.html"):
        got = ask(srv.port, get(path), True)
        direct = ask(nginx.port, get(path), False)
        assert comparable(got) == comparable(direct), path
    r = curl("-k", "https://127.0.0.1:%d/" % srv.port, timeout=20)
    assert r.returncode == 0 and r.stdout.decode() == nginx.index, r.stderr
    srv.proc.wait_log(r"c\d+ 127\.0\.0\.1:\d+: not a tt client \(wrong token\)")
    # 16 bytes that are not the token, then HTTP: still the site's answer
    # to all of it (nginx's 400 for the junk).
    junk = os.urandom(16) + get("/")
    assert comparable(ask(srv.port, junk, True)) == comparable(ask(nginx.port, junk, False))
    assert count(srv.proc, r"connected to") == 0
    c = web_client(procs, srv.url, "--pin", srv.pin)
    assert fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index


@pytest.mark.parametrize("scheme", ["tls", "ws", "wss"])
def test_www_serves_the_directory(procs, www, scheme):
    srv = web_server(procs, scheme, "--www", www.root)
    tls = scheme != "ws"
    status, headers, body = ask(srv.port, get("/"), tls)
    assert status.startswith("HTTP/1.1 200"), status
    assert body == www.index.encode()
    assert header(headers, "Server") == "nginx"
    status, headers, body = ask(srv.port, get("/index.html"), tls)
    assert status.startswith("HTTP/1.1 200") and body == www.index.encode()
    status, headers, body = ask(srv.port, get("/missing.html"), tls)
    assert status.startswith("HTTP/1.1 404"), status
    assert b"404 Not Found" in body
    with web_connect(srv.port, tls) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: tunnel.test\r\nConnection: close\r\n\r\n")
        status, headers, rest = read_response(s, head_request=True)
        more, _ = recv_until_eof(s, 10)
    assert status.startswith("HTTP/1.1 200"), status
    assert header(headers, "Content-Length") == str(len(www.index.encode()))
    assert rest + more == b"", "a body after HEAD"
    # Our path without a token is a missing page like any other.
    status, _, _ = ask(srv.port, (ws_upgrade(PATH)[0] if scheme != "tls" else get(PATH)), tls)
    assert status.startswith("HTTP/1.1 404"), status
    r = curl("-k", "%s://127.0.0.1:%d/" % ("https" if tls else "http", srv.port), timeout=20)
    assert r.returncode == 0 and r.stdout.decode() == www.index


@pytest.mark.parametrize("scheme", ["tls", "ws", "wss"])
def test_no_site_answers_nginx_404(procs, scheme):
    srv = web_server(procs, scheme)
    tls = scheme != "ws"
    for req in (get("/"), get(PATH), ws_upgrade(PATH)[0]):
        status, headers, body = ask(srv.port, req, tls)
        assert status.startswith("HTTP/1.1 404"), status
        assert header(headers, "Server") == "nginx"
        assert b"<center>nginx</center>" in body and b"404 Not Found" in body, body


def cut_short(port, tls, partial):
    """Sends PARTIAL, the start of a request, then half-closes (inside TLS:
    close_notify). Returns what came back before the server closed; fails
    if it does not close within 10 s."""
    if tls:
        plain, how, _, _, _ = tls_probe(port, [partial, "close_notify"], 10)
        assert how != "open", "the server did not close within 10 s"
        return plain
    with web_connect(port, tls) as s:
        s.sendall(partial)
        s.shutdown(socket.SHUT_WR)
        return recv_until_eof(s, 10)[0]


@pytest.mark.parametrize("scheme", ["tls", "ws", "wss"])
@pytest.mark.parametrize("site", ["none", "fallback"])
def test_request_cut_short_closes_without_an_answer_like_nginx(procs, nginx, scheme, site):
    args = ("--fallback", "127.0.0.1:%d" % nginx.port) if site == "fallback" else ()
    srv = web_server(procs, scheme, "-v", *args)
    tls = scheme != "ws"
    partial = b"GET / HT"
    assert cut_short(nginx.port, False, partial) == b"", "nginx itself answers nothing"
    assert cut_short(srv.port, tls, partial) == b""
    # (tls:// knows at the first wrong byte; ws:// needs the whole head.)
    srv.proc.wait_log(r"not a tt client \((wrong token|closed during the request)\)")
    assert count(srv.proc, r"connected to") == 0


def tls_until_finished(port):
    """A TLS client over memory BIOs, stopped with its handshake done on its
    side but its last flight (the client Finished) unsent, so that the
    server's TLS handshake is still pending. Returns (socket, last flight)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    while True:
        try:
            obj.do_handshake()
            return sock, out.read()
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            data = sock.recv(65536)
            if not data:
                pytest.fail("the server closed during the TLS handshake")
            inc.write(data)


def half_way(port, scheme, stage):
    """A connection to a web carrier stopped half way through STAGE, as
    (socket, the bytes that complete the stage): the TLS handshake (its
    last flight), tls://'s token (a browser's request, which is not one), or
    the upgrade head (its second half)."""
    if stage == "handshake":
        return tls_until_finished(port)
    s = web_connect(port, scheme != "ws")
    if stage == "token":
        return s, get("/")
    req = ws_upgrade(PATH, ws_token(KEY, PATH))[0]
    s.sendall(req[:len(req) // 2])
    return s, req[len(req) // 2:]


@pytest.mark.parametrize("scheme,stage", [("tls", "handshake"), ("tls", "token"), ("ws", "head"),
                                          ("wss", "handshake"), ("wss", "head")])
def test_stopping_with_handshakes_pending_exits_cleanly(procs, scheme, stage):
    """SIGTERM while 100 connections are half way through a handshake of
    the carrier's, then the rest of each: the server closes those
    handshakes with its carrier and exits 0 with no sanitizer report. They
    once outlived the carrier and read its freed memory when the rest came.
    (That needed the rest to arrive during the few loop turns of the stop:
    on the old code each case failed about every other run, so that the
    five together failed every time.)"""
    srv = web_server(procs, scheme)
    fd_dir = "/proc/%d/fd" % srv.proc.pid
    before = len(os.listdir(fd_dir))
    conns = []
    try:
        for _ in range(100):
            conns.append(half_way(srv.port, scheme, stage))
        wait_until(lambda: len(os.listdir(fd_dir)) >= before + 100, 20,
                   "the server to accept the 100 connections")
        srv.proc.popen.send_signal(signal.SIGTERM)
        for s, rest in conns:
            try:
                s.sendall(rest)
            except OSError:
                pass  # closed by the server already: what the fix does
    finally:
        for s, _ in conns:
            s.close()
    rc = srv.proc.popen.wait(timeout=30)
    assert rc == 0, srv.proc.log()
    assert sanitizer_report(srv.proc.log()) is None, srv.proc.log()


# ---------------------------------------------------------------------------
# 7. Option errors


@pytest.mark.parametrize("args,msg", [
    (["server", "-l", "tt://127.0.0.1:1", "-k", "x", "--cert", "{cert}", "--tls-key", "{key}"],
     r"--cert .*tls://"),
    (["server", "-l", "tcp://127.0.0.1:1", "--cert", "{cert}", "--tls-key", "{key}"], r"--cert"),
    (["server", "-l", "tls://127.0.0.1:1", "-k", "x", "--cert", "{cert}"], r"--cert and --tls-key"),
    (["server", "-l", "tls://127.0.0.1:1", "-k", "x", "--tls-key", "{key}"], r"--cert and --tls-key"),
    (["client", "-s", "tls://127.0.0.1:1", "-k", "x", "--pin", "{pin}", "--ca", "{ca}"],
     r"--ca.*--pin|--pin.*--ca"),
    (["client", "-s", "wss://127.0.0.1:1/tun", "-k", "x", "--pin", "{pin}",
      "--insecure-skip-verify"], r"--pin.*--insecure-skip-verify|--insecure-skip-verify.*--pin"),
    (["client", "-s", "tls://127.0.0.1:1", "-k", "x", "--pin", "00:11"], r"--pin"),
    (["client", "-s", "tt://127.0.0.1:1", "-k", "x", "--pin", "{pin}"], r"--pin"),
    (["server", "-l", "wss://127.0.0.1:1/tun", "-k", "x", "--www", "{dir}", "--fallback",
      "127.0.0.1:1"], r"--www.*--fallback|--fallback.*--www"),
    (["server", "-l", "127.0.0.1:1", "--key", "{key}"], r"--key is the shared key.*--tls-key"),
    (["server", "-l", "tt://127.0.0.1:1", "-k", "x", "--www", "{dir}"], r"--www"),
    (["server", "-l", "ws://127.0.0.1:1/tun"], r"-k"),
    (["server", "-l", "wss://127.0.0.1:1/tun"], r"-k"),
    (["server", "-l", "tls://127.0.0.1:1"], r"-k"),
    (["client", "-s", "ws://127.0.0.1:1/tun", "-k", "x", "--mux-max-streams", "0"],
     r"--mux-max-streams"),
    (["client", "-s", "ws://127.0.0.1:1/tun", "-k", "x", "--mux-max-streams", "17"],
     r"--mux-max-streams"),
])
def test_web_option_errors_exit_2_with_one_line(pki, www, args, msg):
    args = [a.format(cert=pki.cert, key=pki.key, ca=pki.ca,
                     pin=pki.fingerprint, dir=www.root) for a in args]
    r = run_tt(args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    # One line saying what is wrong, with the pointer to --help.
    assert len(lines) == 1 and re.match(r"tt (server|client): ", lines[0]), r.stderr
    assert re.search(msg, lines[0]), r.stderr


def test_unreadable_certificate_fails_at_start(www):
    r = run_tt(["server", "-l", "tls://127.0.0.1:%d" % free_port(("127.0.0.1",)), "-k", "x",
                "--cert", os.path.join(www.root, "index.html"), "--tls-key",
                os.path.join(www.root, "index.html")])
    assert r.returncode not in (0, None)
    assert "certificate" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# 8. The mux


def mux_pair(procs, scheme, *client_args):
    """A server for SCHEME at -v and a --mux client."""
    srv = start_server(procs, LOOPBACK + ["-v"], carrier=carrier_named(scheme))
    return srv, start_client_of(procs, srv, client_args, mux=True)


@pytest.mark.parametrize("scheme", ["tls", "tt", "tcp"])
def test_mux_many_concurrent_streams(procs, echo, scheme):
    """50 streams open at once, each echoing 256 KiB of its own random
    bytes, on ceil(50 / 16) carrier connections."""
    srv, c = mux_pair(procs, scheme, "--mux-max-streams", "16")
    n, size = 50, 256 * 1024
    barrier = threading.Barrier(n + 1, timeout=120)
    errors = []

    def one(i):
        try:
            payload = os.urandom(size)
            with socks_open(c.socks, "127.0.0.1", echo, timeout=60) as s:
                sender = threading.Thread(target=s.sendall, args=(payload,))
                sender.start()
                got = recv_exact(s, size, "stream %d's echo" % i)
                sender.join(60)
                if got != payload:
                    errors.append("stream %d: wrong bytes" % i)
                barrier.wait()  # all 50 are open at the same time here
                barrier.wait()  # the main thread has counted
        except BaseException as e:
            errors.append("stream %d: %r" % (i, e))
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
        conns = connections_to(srv.port)
        barrier.wait()
    except threading.BrokenBarrierError:
        conns = None
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert count(srv.proc, r"connected to") == n
    assert conns == 4, "%s carrier connections for %d streams at 16 a connection" % (conns, n)
    assert len(carrier_peers(srv.proc)) == 4, carrier_peers(srv.proc)


def test_mux_interactive_latency_beside_a_bulk_stream(procs, nginx, big_file, echo):
    srv, c = mux_pair(procs, "tls")
    bulk = socks_open(c.socks, "127.0.0.1", nginx.port, timeout=30)
    # Ten pipelined requests for the 100 MB file: 1 GB on one stream.
    reqs = b"".join(b"GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % big_file.name.encode()
                    for _ in range(10))
    bulk.sendall(reqs)
    received = [0]
    stop = threading.Event()

    def drain():
        try:
            while not stop.is_set():
                d = bulk.recv(1 << 20)
                if not d:
                    break
                received[0] += len(d)
        except OSError:
            pass

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        wait_until(lambda: received[0] >= (16 << 20), 60, "the bulk download to get going")
        rtts = []
        with socks_open(c.socks, "127.0.0.1", echo, timeout=30) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            before = received[0]
            for _ in range(50):
                msg = os.urandom(64)
                t0 = time.monotonic()
                echo_once(s, msg)
                rtts.append(time.monotonic() - t0)
            during = received[0] - before
        assert reader.is_alive(), "the bulk ended before the echoes did: not a test of sharing"
    finally:
        stop.set()
        bulk.shutdown(socket.SHUT_RDWR)
        bulk.close()
        reader.join(30)
    assert len(carrier_peers(srv.proc)) == 1, "bulk and echo not on one connection"
    assert during > (1 << 20), "the bulk moved only %d bytes during the echoes" % during
    med = statistics.median(rtts)
    print("echo round trips beside the bulk: median %.4fs, max %.4fs; bulk moved %d MB meanwhile"
          % (med, max(rtts), during >> 20))
    assert med < 0.2, "median echo round trip %.3fs beside a bulk stream (max %.3fs)" % (med, max(rtts))


@pytest.mark.parametrize("scheme", ["tls", "tt"])
def test_mux_dead_peer_ends_the_session(procs, echo, scheme):
    srv, c = mux_pair(procs, scheme, "--mux-keepalive", "1s")
    s = socks_open(c.socks, "127.0.0.1", echo, timeout=30)
    echo_once(s, b"alive")
    os.kill(srv.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        data, how = recv_until_eof(s, 10)
        took = time.monotonic() - t0
        s.close()
        assert data == b""
        assert how == "reset", "a stream cut by a dead peer ended with a clean EOF"
        assert took < 5, "the dead peer was noticed only after %.1fs" % took
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    # The server, awake again, finds the session gone.
    srv.proc.wait_log(r"mux session ended: ")
    # Once the server is back, a new stream gets a new connection.
    with socks_open(c.socks, "127.0.0.1", echo, timeout=30) as s2:
        echo_once(s2, b"back")
    assert len(carrier_peers(srv.proc)) == 2
    # The client said why its stream died.
    c.proc.wait_log(r"mux session ended|mux session .*(dead|timed out|no answer)", timeout=5)


def test_mux_more_streams_than_max_open_another_connection(procs, echo):
    srv, c = mux_pair(procs, "tls", "--mux-max-streams", "2")
    a = socks_open(c.socks, "127.0.0.1", echo)
    b = socks_open(c.socks, "127.0.0.1", echo)
    try:
        echo_once(a, b"a")
        echo_once(b, b"b")
        assert len(carrier_peers(srv.proc)) == 1
        assert connections_to(srv.port) == 1
        with socks_open(c.socks, "127.0.0.1", echo) as third:
            echo_once(third, b"c")
            assert len(carrier_peers(srv.proc)) == 2
            assert connections_to(srv.port) == 2
    finally:
        a.close()
        b.close()


def test_mux_idle_connection_closes(procs, echo):
    srv, c = mux_pair(procs, "tls", "--mux-idle", "1s")
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"x")
        assert connections_to(srv.port) == 1
    wait_until(lambda: connections_to(srv.port) == 0, 10,
               "the idle muxed connection to close after --mux-idle 1s")
    with socks_open(c.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"again")


# ---------------------------------------------------------------------------
# TCP Fast Open


def tcp_ext(netns):
    """The TcpExt counters of NETNS (/proc/net/netstat as seen inside it)."""
    out = subprocess.run(["ip", "netns", "exec", netns.name, "cat", "/proc/net/netstat"],
                         capture_output=True, text=True, check=True).stdout
    lines = [ln.split() for ln in out.splitlines() if ln.startswith("TcpExt:")]
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


def fast_open_netns(netns):
    subprocess.run(["ip", "netns", "exec", netns.name, "sysctl", "-qw", "net.ipv4.tcp_fastopen=3"],
                   check=True)


def fast_open_counts(before, after):
    return {k[len("TCPFastOpen"):]: after[k] - before[k] for k in after if k.startswith("TCPFastOpen")}


@pytest.mark.parametrize("scheme", ["tls", "tt", "ws"])
def test_fast_open_server_takes_data_in_the_syn(procs, netns, scheme):
    """In a namespace of the test's own with Fast Open on for both roles
    (but not forced on every listener): a Fast Open client (the kernel's,
    from Python) gets a cookie from the first SYN, and its next SYN's data
    is accepted: the listener has the option."""
    fast_open_netns(netns)
    srv = web_server(procs, scheme, "--fast-open", netns=netns)
    before = tcp_ext(netns)
    for i in range(3):
        with netns.socket() as s:
            # Blocking, so that a SYN without a cookie waits for the
            # handshake instead of failing with EINPROGRESS.
            s.settimeout(None)
            s.sendto(b"GET / HTTP/1.1\r\nHost: tunnel.test\r\n\r\n", socket.MSG_FASTOPEN,
                     ("127.0.0.1", srv.port))
    n = fast_open_counts(before, tcp_ext(netns))
    assert n["Passive"] >= 2 and n["CookieReqd"] >= 1, n


@pytest.mark.parametrize("scheme", ["tls", "tt", "wss"])
def test_fast_open_client_puts_its_first_flight_in_the_syn(procs, netns, scheme):
    """Both ends with --fast-open: the first carrier connection fetches a
    cookie, the next ones carry their first flight in the SYN."""
    fast_open_netns(netns)
    _, echo_port = procs.peer("echo", netns=netns)
    srv = web_server(procs, scheme, "--fast-open", netns=netns)
    args = ("--pin", srv.pin) if srv.pin else ()
    c = web_client(procs, srv.url, "--fast-open", *args, netns=netns)
    before = tcp_ext(netns)
    for i in range(3):
        with socks_open(c.socks, "127.0.0.1", echo_port, netns=netns) as s:
            echo_once(s, b"stream %d" % i)
    n = fast_open_counts(before, tcp_ext(netns))
    assert n["Active"] >= 2 and n["Passive"] >= 2, \
        "Fast Open counters over 3 carrier connections: %s" % n
