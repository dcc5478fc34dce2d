"""The HTTP streaming carriers, http:// and https:// (docs/HTTP.md), end to
end. The common cases (bulk both ways, 200 streams, reply codes, early data,
half-close, SIGTERM) run over them in test_every_carrier.py, and
test_resume.py cuts their connections under --resume; here: the point of
the carrier, a real nginx in front that passes no WebSocket (stock
settings, and proxy_buffering off), many streams over the mux through it,
and probes without a token, which get the same web site as from the other
web carriers."""

import base64
import hashlib
import hmac
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from helpers import CARRIER_KEY, NGINX_PRELUDE, PostDropper, connect, read_halfclose_answer, \
    recv_until_eof, start_client, start_nginx, upload_random, wait_until
from test_web_carriers import (KEY, PATH, ask, comparable, fetch, fetch_big, get, pki,  # noqa: F401
                               read_response, web_client, web_server)

# nginx reverse-proxying PATH to tt's http:// listener. TUNING is what the
# location adds: nothing (nginx's defaults: HTTP/1.0 upstream, buffered
# requests and answers; tt's X-Accel-Buffering: no turns answer buffering
# off) or the settings docs/HTTP.md recommends.
NGINX_HTTP_CONF = NGINX_PRELUDE + """\
    server {{
        listen 127.0.0.1:{port}{tls};
        server_name tunnel.test;
        {certs}
        root {root};
        location {path} {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            {tuning}
        }}
        location / {{
        }}
    }}
}}
"""

TUNED = """proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 64k;
            proxy_buffers 4 64k;
            proxy_read_timeout 300s;"""


@pytest.fixture
def nginx_front(procs, pki, www, tmp_path):  # noqa: F811
    """start(upstream, tls, tuned): an nginx serving `www` (over TLS with
    the tunnel.test certificate when TLS) and proxying PATH to UPSTREAM;
    its port."""

    def start(upstream, tls, tuned):
        def conf(tmp, port):
            certs = ("ssl_certificate %s;\n        ssl_certificate_key %s;" % (pki.cert, pki.key)
                     if tls else "")
            return NGINX_HTTP_CONF.format(tmp=tmp, port=port, root=www.root, upstream=upstream,
                                          tls=" ssl" if tls else "", certs=certs, path=PATH,
                                          tuning=TUNED if tuned else "")

        def ready(port):
            try:
                return ask(port, get("/"), tls)[2] == www.index.encode()
            except (OSError, AssertionError):
                return False

        return start_nginx(procs, tmp_path, "nginx-http", conf, ready)

    return start


def echo_bulk(port, size):
    """SIZE random bytes through the forward at PORT to an echo server, read
    back whole while they are sent; returns whether the sha256 matched."""
    data = os.urandom(size)
    got = hashlib.sha256()
    n = [0]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        def reader():
            while True:
                d = s.recv(1 << 20)
                if not d:
                    return
                got.update(d)
                n[0] += len(d)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        t.join(120)
        assert not t.is_alive(), "the echo did not end"
    assert n[0] == size, "%d of %d bytes came back" % (n[0], size)
    return got.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("front", ["http-stock", "http-tuned", "https-tuned"])
def test_through_nginx_both_ways(procs, nginx, big_file, pki, nginx_front, echo, front):  # noqa: F811
    """100 MB down (sha256) and 32 MB up and back through nginx, which
    passes no WebSocket here: the carrier's whole point."""
    tls = front.startswith("https")
    srv = web_server(procs, "http", "-v", path=PATH)
    port = nginx_front(srv.port, tls, front.endswith("tuned"))
    scheme = "https" if tls else "http"
    args = ("--ca", pki.ca, "-n", pki.name) if tls else ()
    c = web_client(procs, "%s://127.0.0.1:%d%s" % (scheme, port, PATH), *args,
                   forwards=["127.0.0.1:%d" % echo])
    assert fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode() == nginx.index
    fetch_big(c.socks, nginx, big_file)
    assert echo_bulk(c.forward_ports[0], 32 << 20)
    assert "not a tt client" not in srv.proc.log()
    # The site in front is still the site.
    assert ask(port, get("/"), tls)[2] == nginx.index.encode()


def test_mux_through_nginx_many_streams(procs, nginx, big_file, nginx_front, echo):
    """Twenty streams at once, and a 100 MB download beside them, over one
    muxed tunnel through nginx."""
    srv = web_server(procs, "http", "-v", path=PATH)
    port = nginx_front(srv.port, False, True)
    c = web_client(procs, "http://127.0.0.1:%d%s" % (port, PATH), "--mux",
                   forwards=["127.0.0.1:%d" % echo])
    results = {}

    def one(i):
        try:
            results[i] = fetch(c.socks, "http://127.0.0.1:%d/" % nginx.port).decode()
        except BaseException as e:  # pytest.fail inside a thread
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    fetch_big(c.socks, nginx, big_file)
    for t in threads:
        t.join(120)
    assert all(results.get(i) == nginx.index for i in range(20)), results
    assert echo_bulk(c.forward_ports[0], 8 << 20)
    # One tunnel: one GET opened it.
    assert srv.proc.log().count("connected to") >= 21


def probes(path):
    """Requests that are not a tunnel client's: no token, a garbage one, a
    POST without one, another path."""
    garbage = "Cookie: sid=%s\r\n" % ("A" * 80)
    return {
        "GET without a token": get(path),
        "GET with a garbage token": get(path, extra=garbage),
        "POST without a token": ("POST %s HTTP/1.1\r\nHost: tunnel.test\r\nContent-Length: 5\r\n"
                                 "\r\nhello" % path).encode(),
        "GET of another path": get("/nope.html"),
        "HEAD of the path": ("HEAD %s HTTP/1.1\r\nHost: tunnel.test\r\n\r\n" % path).encode(),
    }


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_probes_get_the_same_site_as_from_ws(procs, scheme):
    """Without a token the path is a web site's: the answers are those of
    the ws carriers' built-in site, byte for byte but the Date."""
    ws = "wss" if scheme == "https" else "ws"
    ours = web_server(procs, scheme, path=PATH)
    theirs = web_server(procs, ws, path=PATH, name="tt-ws-server")
    tls = scheme == "https"
    for what, req in probes(PATH).items():
        head = req.startswith(b"HEAD")
        a = ask(ours.port, req, tls, head_request=head)
        b = ask(theirs.port, req, tls, head_request=head)
        assert comparable(a) == comparable(b), what
        assert not a[0].startswith("HTTP/1.1 200") or what == "HEAD of the path", (what, a[0])
    assert "not a tt client (no token)" in ours.proc.log()


def test_probes_go_to_the_fallback(procs, nginx):
    """With --fallback the same probes get the real web server's answers."""
    srv = web_server(procs, "http", "--fallback", "127.0.0.1:%d" % nginx.port, path=PATH)
    for what, req in probes(PATH).items():
        head = req.startswith(b"HEAD")
        got = ask(srv.port, req, False, head_request=head)
        direct = ask(nginx.port, req, False, head_request=head)
        assert comparable(got) == comparable(direct), what


def test_a_cut_stream_is_not_taken_for_a_complete_one(procs, echo):
    """The server dies in the middle of a download: the application sees a
    reset or an error, never a clean end."""
    srv = web_server(procs, "http", path=PATH)
    c = web_client(procs, srv.url, forwards=["127.0.0.1:%d" % echo])
    with socket.create_connection(("127.0.0.1", c.forward_ports[0]), timeout=30) as s:
        s.sendall(b"x" * 100000)
        got = b""
        while len(got) < 100000:
            d = s.recv(65536)
            assert d
            got += d
        srv.proc.popen.kill()
        srv.proc.popen.wait()
        try:
            rest, how = recv_until_eof(s, 20)
        except ConnectionResetError:
            how = "reset"
        assert how != "eof", "a cut stream ended like a complete one"
    procs.discard(srv.proc)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_fixed_destination_without_key(procs, echo, scheme):
    """mtt's mode over HTTP streaming: -d, no -k (the tokens are made under
    the all-zero key and still carry the tunnel's id and order)."""
    srv = web_server(procs, scheme, "-d", "127.0.0.1:%d" % echo, path=PATH, key=None)
    args = ("--pin", srv.pin) if scheme == "https" else ()
    c = web_client(procs, srv.url, *args, key=None, socks=False,
                   forwards=["127.0.0.1:%d" % echo])
    assert echo_bulk(c.forward_ports[0], 4 << 20)
    # A client with a key is not one of this server's.
    k = web_client(procs, srv.url, *args, socks=False, forwards=["127.0.0.1:%d" % echo],
                   name="tt-client-key")
    with socket.create_connection(("127.0.0.1", k.forward_ports[0]), timeout=30) as s:
        s.sendall(b"hello")
        rest, how = recv_until_eof(s, 30)
        assert rest == b"", "a client with another key got an echo"


# ---------------------------------------------------------------------------
# The wire format by hand (docs/HTTP.md)


def http_auth_key(key):
    """HKDF-SHA256(IKM = PSK, salt = empty, info = "tt-http1 auth", 32)."""
    psk = base64.b64decode(key)
    prk = hmac.new(b"\0" * 32, psk, hashlib.sha256).digest()
    return hmac.new(prk, b"tt-http1 auth" + b"\x01", hashlib.sha256).digest()


def http_token(key, tid, seq, kind, fin=False, path=PATH, now=None):
    k = http_auth_key(key)
    nonce = os.urandom(16)
    pad = os.urandom(os.urandom(1)[0] % 49)
    plain = struct.pack(">Q8sIBBH", int(time.time()) if now is None else now, tid, seq, kind,
                        1 if fin else 0, 0)
    mask = hmac.new(k, b"tt-http1 mask" + nonce, hashlib.sha256).digest()[:24]
    mac = hmac.new(k, b"tt-http1" + nonce + plain + bytes([len(pad)]) + pad + path.encode(),
                   hashlib.sha256).digest()[:16]
    sealed = bytes(a ^ b for a, b in zip(plain, mask))
    return base64.urlsafe_b64encode(nonce + sealed + mac + pad).rstrip(b"=").decode()


def post(seq, tid, body, fin=False):
    return (("POST %s HTTP/1.1\r\nHost: tunnel.test\r\nContent-Length: %d\r\n"
             "Cookie: sid=%s\r\n\r\n" % (PATH, len(body), http_token(KEY, tid, seq, 2, fin)))
            .encode() + body)


def read_records(sock, head):
    """The GET's answer after its head: chunked records until the end record;
    returns the data."""
    buf, data = head, b""
    while True:
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        line, _, buf = buf.partition(b"\r\n")
        n = int(line, 16)
        while len(buf) < n + 2:
            d = sock.recv(65536)
            assert d, "the stream ended without its end record"
            buf += d
        chunk, buf = buf[:n], buf[n + 2:]
        while chunk:
            typ, ln = chunk[0], int.from_bytes(chunk[1:4], "big")
            if typ == 1:
                return data
            if typ == 0:
                data += chunk[4:4 + ln]
            chunk = chunk[4 + ln:]


def test_posts_out_of_order_are_read_in_order(procs, echo):
    """A tunnel by hand: the GET, then three POSTs sent last first, each on
    its own connection. The server reads them in their order (the echo
    returns the bytes in that order), answers each once read, and ends the
    stream with the end record. A POST far beyond the window, and the GET's
    token again, get the web site."""
    srv = web_server(procs, "http", path=PATH)
    tid = os.urandom(8)
    g = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    get_req = ("GET %s HTTP/1.1\r\nHost: tunnel.test\r\nCookie: a=b; sid=%s\r\n\r\n"
               % (PATH, http_token(KEY, tid, 0, 1)))
    g.sendall(get_req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += g.recv(65536)
    head, _, rest = head.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert b"Transfer-Encoding: chunked" in head and b"X-Accel-Buffering: no" in head
    hdr = bytes([1, 0, 1, 127, 0, 0, 1]) + struct.pack(">H", echo)
    parts = [hdr + b"A" * 70000, b"B" * 50000, b"C" * 30000]
    conns = []
    for seq in (2, 1, 0):
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        c.sendall(post(seq, tid, parts[seq], fin=seq == 2))
        conns.append((seq, c))
    # Far beyond the window: the site's answer, the tunnel unharmed.
    assert ask(srv.port, post(40, tid, b"x"), False)[0].startswith("HTTP/1.1 404")
    for seq, c in conns:
        status, headers, body = read_response(c)
        assert status == "HTTP/1.1 200 OK" and body == b"", (seq, status)
        c.close()
    data = read_records(g, rest)
    assert data == b"\x01\x00" + b"A" * 70000 + b"B" * 50000 + b"C" * 30000
    g.close()
    assert ask(srv.port, get_req.encode(), False)[0].startswith("HTTP/1.1 404")
    assert "not a tt client (replayed token)" in srv.proc.log()
    assert "not a tt client (POST out of its window)" in srv.proc.log()


# ---------------------------------------------------------------------------
# Lost POSTs under --resume


@pytest.mark.parametrize("mode", ["cut", "hold"])
def test_lost_posts_are_resent(procs, mode):
    """A proxy in front of the server loses POSTs of a 16 MiB upload
    half-way through their bodies: it resets the connections of three
    ("cut"), or passes nothing more either way on one while keeping it
    open, so that its answer never comes ("hold": the session takes the
    silent connection as lost after 20 s). The bytes they carried are sent
    again (the session resends from the server's acknowledgment on a new
    tunnel): the upload arrives whole, and the download after it too."""
    size = 16
    _, sink_port = procs.peer("halfclose", "--body-size", str(size << 20))
    srv = web_server(procs, "http", path=PATH, key=CARRIER_KEY)
    victims = (2, 9, 20) if mode == "cut" else (2,)
    proxy = PostDropper(srv.port, victims=victims, mode=mode)
    try:
        client = start_client(procs, "http://127.0.0.1:%d%s" % (proxy.port, PATH),
                              ["-k", CARRIER_KEY, "--resume", "--reconnect-min", "20ms",
                               "--reconnect-max", "200ms"], socks=False,
                              forwards=["127.0.0.1:%d" % sink_port])
        s = connect(("127.0.0.1", client.forward_ports[0]), timeout=120)
        with s:
            sent = upload_random(s, size)
            assert read_halfclose_answer(s) == (sent, size << 20), "the upload arrived changed"
        assert proxy.dropped == len(victims), (proxy.dropped, proxy.posts)
        assert len(re.findall(r"resumed after \d+ ms", client.proc.log())) >= len(victims)
    finally:
        proxy.close()


def open_tunnel_by_hand(srv, tid):
    """The GET of a tunnel with id TID, sent by hand; returns its socket and
    the bytes after the answer's head (which must be the tunnel's 200)."""
    g = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    g.sendall(("GET %s HTTP/1.1\r\nHost: tunnel.test\r\nCookie: sid=%s\r\n\r\n"
               % (PATH, http_token(KEY, tid, 0, 1))).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = g.recv(65536)
        assert d, "the GET was not answered"
        head += d
    head, _, rest = head.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    return g, rest


def server_read_all(srv_port, sock):
    """Whether the server's end of SOCK (connected to SRV_PORT) has read
    everything that arrived (its receive queue is empty)."""
    me = sock.getsockname()
    out = subprocess.run(["ss", "-Htn", "state", "established", "src", "127.0.0.1:%d" % srv_port,
                          "dst", "%s:%d" % me], capture_output=True, text=True, check=True).stdout
    return out.split() != [] and out.split()[0] == "0"


def test_post_body_in_a_read_of_its_own(procs, echo):
    """A POST whose head arrives in one read and whose whole body in the
    next, as nginx with proxy_request_buffering off passes them: the body
    reaches the destination and the tunnel goes on (the server once freed
    its buffer twice here, taking the empty rest of that read for a failed
    allocation)."""
    srv = web_server(procs, "http", path=PATH)
    tid = os.urandom(8)
    g, rest = open_tunnel_by_hand(srv, tid)
    hdr = bytes([1, 0, 1, 127, 0, 0, 1]) + struct.pack(">H", echo)
    body = hdr + b"hello "
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    with g, c:
        req = post(0, tid, body)
        c.sendall(req[:-len(body)])
        wait_until(lambda: server_read_all(srv.port, c), 10, "the server to read the POST's head")
        c.sendall(body)
        status, _, answer = read_response(c)
        assert status == "HTTP/1.1 200 OK" and answer == b"", status
        c.sendall(post(1, tid, b"world", fin=True))
        assert read_response(c)[0] == "HTTP/1.1 200 OK"
        assert read_records(g, rest) == b"\x01\x00hello world"


def test_post_of_a_gibibyte_goes_to_the_site(procs, echo):
    """A POST for a live tunnel that declares 1 GiB (the server takes at
    most 1 MiB per body) is the web site's, whose answer comes without the
    server holding the body; the tunnel goes on unharmed."""
    srv = web_server(procs, "http", path=PATH)
    tid = os.urandom(8)
    g, rest = open_tunnel_by_hand(srv, tid)
    big = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    with g, c, big:
        big.sendall(("POST %s HTTP/1.1\r\nHost: tunnel.test\r\nContent-Length: %d\r\n"
                     "Cookie: sid=%s\r\n\r\n" % (PATH, 1 << 30, http_token(KEY, tid, 0, 2)))
                    .encode() + b"\0" * (1 << 20))
        status, _, _ = read_response(big)
        assert not status.startswith("HTTP/1.1 200"), status
        srv.proc.wait_log(r"not a tt client \(POST without a Content-Length in bounds\)")
        hdr = bytes([1, 0, 1, 127, 0, 0, 1]) + struct.pack(">H", echo)
        c.sendall(post(0, tid, hdr + b"still", fin=True))
        assert read_response(c)[0] == "HTTP/1.1 200 OK"
        assert read_records(g, rest) == b"\x01\x00still"
