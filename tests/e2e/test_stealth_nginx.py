"""The TLS face of tls:// and wss:// against a real nginx (issue 11, items 2
and 7): nginx 1.22 as Debian configures it (ssl_protocols TLSv1 to
TLSv1.3, ssl_prefer_server_ciphers on, everything else nginx's default,
server_tokens off as tt's site says "nginx"), started here with the same
certificate, key and web root as the tt server beside it. The same probes
go to both and their outcomes are compared field by field:

- TLS handshakes by `openssl s_client`: version, suite, ALPN, the alert of
  a refusal, the server's extensions, the lengths of ServerHello,
  EncryptedExtensions and NewSessionTicket, the ticket lifetime hint, for
  TLS 1.0 to 1.3, CBC-only and RSA-only offers, ALPN h2, unknown, http/1.0,
  and SNI unknown, absent, an address; and which sessions resume;
- bytes that are not TLS on the TLS port (plain HTTP, text, binary, a
  record header with nonsense): the answer (Date aside) and the close
  (FIN or reset, at once or after the header timeout);
- the timers, shortened on both sides (client_header_timeout and
  --header-timeout 2 s, keepalive_timeout and --keepalive-timeout 3 s):
  silence before and after the handshake, a ClientHello or a request cut
  short, bytes trickling in (the deadline runs from the accept), a
  kept-alive connection, the client's own close_notify or FIN; whether
  close_notify comes and how many bytes;
- and that the options' defaults are nginx's (60 s and 75 s).
"""

import concurrent.futures
import re
import socket
import ssl
import subprocess
import time
import types

import pytest

from helpers import NGINX_PRELUDE, read_to_end, run_tt, start_nginx, tls_probe
from test_web_carriers import get, pki, web_server  # noqa: F401 (fixture)

HEADER_S = 2.0  # client_header_timeout / --header-timeout in the timing test
KEEPALIVE_S = 3.0  # keepalive_timeout / --keepalive-timeout
SLACK_S = 0.6  # how far a close may be from its expected time (ASan, a shared machine)

# Debian 12's nginx.conf sets these two in its http block; the rest is
# nginx's default. server_tokens off: tt's site signs "nginx".
NGINX_TLS_CONF = NGINX_PRELUDE + """\
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
{timeouts}    }}
}}
"""


def start_pair(procs, pki, www, tmp_path, scheme, timed, fallback=None):
    """nginx and a tt SCHEME:// server with the same certificate and site
    (tt's own, or FALLBACK's); with TIMED, both with the short timeouts."""
    timeouts = ("        client_header_timeout %gs;\n        keepalive_timeout %gs;\n"
                % (HEADER_S, KEEPALIVE_S)) if timed else ""
    args = ["--cert", pki.cert, "--tls-key", pki.key]
    args += ["--fallback", "127.0.0.1:%d" % fallback] if fallback else ["--www", www.root]
    if timed:
        args += ["--header-timeout", "%dms" % (HEADER_S * 1000),
                 "--keepalive-timeout", "%dms" % (KEEPALIVE_S * 1000)]
    srv = web_server(procs, scheme, *args)
    port = start_nginx(procs, tmp_path, "nginx-tls",
                       lambda tmp, port: NGINX_TLS_CONF.format(
                           tmp=tmp, port=port, cert=pki.cert, key=pki.key, root=www.root,
                           timeouts=timeouts),
                       lambda port: True)
    return types.SimpleNamespace(nginx=port, tt=srv.port, proc=srv.proc)


def in_parallel(fn, cases):
    """FN(case) for every case at once (the waits overlap); their results
    in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases)) as ex:
        return list(ex.map(fn, cases))


# ---------------------------------------------------------------------------
# 1. TLS handshakes, by openssl s_client


S_CLIENT_CASES = [
    [],
    ["-tls1_3"],
    ["-tls1_2"],
    ["-tls1_1"],
    ["-tls1"],
    ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"],  # CBC only
    ["-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-SHA"],  # RSA key exchange only
    ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"],
    ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"],
    ["-alpn", "h2"],
    ["-alpn", "foo,bar"],
    ["-alpn", "http/1.0"],
    ["-alpn", "h2,http/1.1"],
    ["-tls1_2", "-alpn", "spdy/3,http/1.0,http/1.1"],
    ["-servername", "other.example"],
    ["-tls1_2", "-servername", "127.0.0.1"],
    ["-noservername"],
    ["-tls1_2", "-noservername"],
]


def s_client(port, args):
    """What a prober reads from one handshake: the fields a server chooses
    and the sizes of its messages."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tlsextdebug", "-msg",
            "-ign_eof"]
    if "-servername" not in args and "-noservername" not in args:
        argv += ["-servername", "tunnel.test"]
    # A request that ends the connection, so that s_client reads until the
    # server closes: TLS 1.3 tickets come after the handshake.
    r = subprocess.run(argv + args, input=get("/", extra="Connection: close\r\n"),
                       capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    m = re.search(r"^New, (\S+), Cipher is (\S+)", out, re.M)
    fields = {
        "version and suite": m.groups() if m else None,
        "ALPN": re.findall(r"^ALPN protocol: (\S+)", out, re.M),
        "alert received": re.findall(r"alert number (\d+)", out),
        "server extensions": sorted(re.findall(r'TLS server extension "([^"]+)"', out)),
        "ticket lifetime hints": re.findall(r"lifetime hint: (\d+)", out),
        # ECDSA signatures vary in length by a byte or two: left out.
        "server message lengths": re.findall(
            r"^<<< TLS [\d.]+, Handshake \[length (\w+)\], "
            r"(ServerHello|EncryptedExtensions|NewSessionTicket|Certificate|ServerHelloDone)$",
            out, re.M),
        "session ID sent": bool(re.search(r"Session-ID: [0-9A-F]{64}", out)),
        "answer": normalise(re.search(r"HTTP/1\.1 .*", out, re.S).group(0).encode())
        if "HTTP/1.1 " in out else None,
    }
    return fields


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_tls_handshakes_match_nginx(procs, pki, www, tmp_path, scheme):
    pair = start_pair(procs, pki, www, tmp_path, scheme, timed=False)
    got = in_parallel(lambda c: (s_client(pair.nginx, c[0]), s_client(pair.tt, c[0])),
                      [(a,) for a in S_CLIENT_CASES])
    diffs = []
    for args, (ng, tt) in zip(S_CLIENT_CASES, got):
        for k in ng:
            if ng[k] != tt[k]:
                diffs.append("%s: %s: nginx %r, tt %r" % (" ".join(args) or "(defaults)", k,
                                                          ng[k], tt[k]))
    assert not diffs, "\n".join(diffs)
    # The probes saw what they should have (the comparison alone would pass
    # two servers broken alike).
    ref = dict(zip((" ".join(a) for a in S_CLIENT_CASES), (g[0] for g in got)))
    assert ref["-tls1_1"]["alert received"] == ["80"]
    assert ref["-alpn h2"]["alert received"] == ["120"]
    assert ref["-alpn http/1.0"]["ALPN"] == ["http/1.0"]
    assert ref["-alpn h2,http/1.1"]["ALPN"] == ["http/1.1"]
    assert ref["-tls1_2"]["ticket lifetime hints"] == ["300"]
    assert "server name" in ref["-servername other.example"]["server extensions"]


def resumed(port, args, sess):
    """Whether a second handshake resumes the first one's session (SESS:
    where s_client keeps it)."""
    base = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
            "tunnel.test", "-ign_eof"] + args
    req = get("/", extra="Connection: close\r\n")
    subprocess.run(base + ["-sess_out", sess], input=req, capture_output=True, timeout=30)
    r = subprocess.run(base + ["-sess_in", sess], input=req, capture_output=True, timeout=30)
    return re.search(rb"^(New|Reused), ", r.stdout, re.M).group(1).decode()


def test_sessions_resume_as_with_nginx(procs, pki, www, tmp_path):
    """Tickets resume on TLS 1.3 and 1.2; a TLS 1.2 session ID alone does
    not (nginx's ssl_session_cache none)."""
    pair = start_pair(procs, pki, www, tmp_path, "tls", timed=False)
    cases = [["-tls1_3"], ["-tls1_2"], ["-tls1_2", "-no_ticket"]]
    got = in_parallel(lambda c: [resumed(port, c[1], str(tmp_path / ("%s-%d" % (who, c[0]))))
                                 for who, port in (("nginx", pair.nginx), ("tt", pair.tt))],
                      list(enumerate(cases)))
    assert got == [["Reused", "Reused"], ["Reused", "Reused"], ["New", "New"]], got


# ---------------------------------------------------------------------------
# 2. Raw bytes on the TLS port


def normalise(data):
    """An answer with its Date value blanked."""
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", data)


def raw_probe(port, data, fin, wait):
    """Sends DATA (then FIN if asked) and reads to the end: (answer, how
    the connection ended: 'FIN', 'reset' or 'open', seconds until then)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    try:
        if data:
            s.sendall(data)
        if fin:
            s.shutdown(socket.SHUT_WR)
        got, how = read_to_end(s, wait)
        return normalise(got), how, time.monotonic() - t0
    finally:
        s.close()


GET = get("/")
RAW_CASES = [
    ("plain GET", GET, False),
    ("plain GET, FIN", GET, True),
    ("plain HTTP/1.0 GET of a missing page", b"GET /nope HTTP/1.0\r\n\r\n", False),
    ("plain POST with a body", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
     False),
    ("plain HEAD", b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("plain GET without Host", b"GET / HTTP/1.1\r\n\r\n", False),
    ("plain TRACE", b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("plain GET above the root", b"GET /../x HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("plain HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", False),
    ("text", b"hello world\r\n\r\n", False),
    ("lower-case text, no line end", b"hello", False),
    ("NUL bytes", b"\0" * 10, False),
    ("binary, low first byte", bytes(range(0x41, 0x41 + 64)) + bytes(range(0, 64)), False),
    ("binary, low first byte, FIN", bytes(range(0x41, 0x41 + 64)) + bytes(range(0, 64)), True),
    ("binary, high first byte", bytes(range(0x90, 0x90 + 100)), False),
    ("binary, high first byte, FIN", bytes(range(0x90, 0x90 + 100)), True),
    ("record header with a bad version", b"\x16\x41\x42\x00\x10" + bytes(16), False),
    ("record too long", b"\x16\x03\x01\xff\xff", False),
    ("handshake record with a bad hello", b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", False),
    ("alert record", b"\x15\x03\x03\x00\x02\x02\x28", False),
    ("nothing, FIN", b"", True),
    ("partial plain GET, FIN", b"GET / HT", True),
]


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_bytes_that_are_not_tls_get_nginx_answers(procs, pki, www, tmp_path, scheme):
    pair = start_pair(procs, pki, www, tmp_path, scheme, timed=False)

    def both(case):
        _, data, fin = case
        return raw_probe(pair.nginx, data, fin, 5), raw_probe(pair.tt, data, fin, 5)

    diffs = []
    for (name, _, _), (ng, tt) in zip(RAW_CASES, in_parallel(both, RAW_CASES)):
        # Each of these ends at once (well before any timeout) on nginx.
        assert ng[1] != "open" and ng[2] < 2, "%s: nginx %r" % (name, ng)
        if ng[:2] != tt[:2] or tt[2] >= 2:
            diffs.append("%s:\n  nginx %r\n  tt    %r" % (name, ng, tt))
    assert not diffs, "\n".join(diffs)
    plain = raw_probe(pair.tt, GET, False, 5)[0]
    assert plain.startswith(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n"), plain
    assert b"The plain HTTP request was sent to HTTPS port" in plain
    pair.proc.wait_log(r"not a tt client \(no TLS\)")
    assert "connected to" not in pair.proc.log()


def test_plain_http_gets_nginx_answer_with_a_fallback_too(procs, pki, www, tmp_path, nginx):
    """With --fallback (a plain HTTP server), plain HTTP on the TLS port is
    still answered as nginx's TLS port answers it, not relayed to the
    fallback (which would serve the page); inside TLS the fallback serves."""
    pair = start_pair(procs, pki, www, tmp_path, "tls", timed=False, fallback=nginx.port)
    cases = [c for c in RAW_CASES if c[0].startswith("plain") or c[0] == "text"]

    def both(case):
        _, data, fin = case
        return raw_probe(pair.nginx, data, fin, 5), raw_probe(pair.tt, data, fin, 5)

    for (name, _, _), (ng, tt) in zip(cases, in_parallel(both, cases)):
        assert ng[:2] == tt[:2], "%s:\n  nginx %r\n  tt    %r" % (name, ng, tt)
    # (The fallback, a plain nginx, would have served the page instead.)
    pair.proc.wait_log(r"not a tt client \(no TLS\)")
    r = s_client(pair.tt, [])
    assert r["answer"] is not None and nginx.index.encode() in r["answer"], r["answer"]


def test_a_connection_ends_after_1000_requests_as_nginx(procs, pki, www, tmp_path):
    """nginx's keepalive_requests: the 1000th answer on one connection says
    "Connection: close" and the connection ends; a 1001st request is not
    answered."""
    pair = start_pair(procs, pki, www, tmp_path, "tls", timed=False)
    got = in_parallel(lambda port: tls_probe(port, [GET * 1001], 10), [pair.nginx, pair.tt])
    ng, tt = [(normalise(g[0]),) + g[1:4] for g in got]
    assert ng[0].count(b"HTTP/1.1 200 OK") == 1000, ng[0][-300:]
    assert ng[0].count(b"Connection: close") == 1 and ng[1] == "FIN"
    assert ng == tt, "nginx %r\ntt %r" % (ng[1:] + (ng[0][-300:],), tt[1:] + (tt[0][-300:],))


def shaped_head(req, line=0, count=0):
    """A GET whose request line is REQ bytes (CRLF included), then Host,
    COUNT field lines of LINE bytes each (CRLF included), Connection: close
    and the empty line."""
    out = b"GET /" + b"a" * (req - 16) + b" HTTP/1.1\r\nHost: x\r\n"
    for _ in range(count):
        out += b"X-" + b"b" * (line - 6) + b": \r\n"
    return out + b"Connection: close\r\n\r\n"


# A request line of 1000 bytes, Host, four field lines of 8190 bytes.
PIPELINED = shaped_head(1000, 8190, 4).replace(b"Connection: close\r\n", b"")


# Heads that nginx 1.22 serves or refuses by its header buffers
# (client_header_buffer_size 1k, large_client_header_buffers 4 8k): a line,
# CRLF included, fits 8192 bytes; lines pack whole into the 1k buffer and
# four 8k ones; more than 1000 fields are refused. (name, head, what nginx
# answers: True for served, else the status line.)
LARGE_HEAD_CASES = [
    ("request line 1k", shaped_head(1024), True),
    ("request line 4k", shaped_head(4096), True),
    ("request line 8k", shaped_head(8192), True),
    ("request line 8k+1", shaped_head(8193), b"414"),
    ("request line 9k", shaped_head(9216), b"414"),
    ("field line 1k", shaped_head(100, 1024, 1), True),
    ("field line 7k", shaped_head(100, 7168, 1), True),
    ("field line 8k", shaped_head(100, 8192, 1), True),
    ("field line 8k+1", shaped_head(100, 8193, 1), b"400"),
    ("a 9 KiB cookie", b"GET / HTTP/1.1\r\nHost: x\r\nCookie: s=" + b"c" * 9200 +
     b"\r\nConnection: close\r\n\r\n", b"400"),
    ("a 8 KiB cookie", b"GET / HTTP/1.1\r\nHost: x\r\nCookie: s=" + b"c" * 8000 +
     b"\r\nConnection: close\r\n\r\n", True),
    ("9k in lines of 100", shaped_head(60, 100, 92), True),
    ("16k in lines of 1000", shaped_head(60, 1000, 16), True),
    ("30k in lines of 4000", shaped_head(60, 4000, 7), True),
    ("32k in lines of 100", shaped_head(60, 100, 327), True),
    ("32k in lines of 8000", shaped_head(60, 8000, 4), True),
    ("33k in lines of 100", shaped_head(60, 100, 337), b"400"),
    ("33k in lines of 1000", shaped_head(60, 1000, 33), b"400"),
    ("32k in lines of 4000, packed", shaped_head(60, 4000, 8), True),
    ("40k in lines of 4000", shaped_head(60, 4000, 10), b"400"),
    ("40k in lines of 8000", shaped_head(60, 8000, 5), b"400"),
    ("64 fields", shaped_head(40, 10, 62), True),
    ("65 fields", shaped_head(40, 10, 63), True),
    ("100 fields", shaped_head(40, 10, 98), True),
    ("1000 fields", shaped_head(40, 10, 998), True),
    ("1001 fields", shaped_head(40, 10, 999), b"400"),
    ("20000 empty lines first", b"\r\n" * 10000 + shaped_head(40), True),
    ("3 MiB of empty lines first", b"\r\n" * (3 << 19) + shaped_head(40), True),
    # Behind a request in the same read, nginx parses on in the buffer where
    # that one ended: this head fits a fresh connection's buffers, not these.
    ("pipelined behind a small request", GET + PIPELINED, True),
    ("the same, alone", PIPELINED, True),
]


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_large_heads_get_nginx_answers(procs, pki, www, tmp_path, scheme):
    """Request heads near nginx's buffer limits, inside TLS and as plain
    HTTP on the TLS port: the same answer (Date aside), the same close."""
    pair = start_pair(procs, pki, www, tmp_path, scheme, timed=False)
    jobs = [(kind, case, port) for case in LARGE_HEAD_CASES for kind in ("tls", "raw")
            for port in (pair.nginx, pair.tt)]

    def run(job):
        kind, (_, data, _), port = job
        if kind == "raw":
            got, how, _ = raw_probe(port, data, False, 5)
            return got, how
        plain, how, notify, _, _ = tls_probe(port, [data], 5)
        return normalise(plain), how, notify

    results = in_parallel(run, jobs)
    diffs = []
    for i in range(0, len(jobs), 2):
        kind, (name, _, want), _ = jobs[i]
        ng, tt = results[i], results[i + 1]
        # nginx answers as this test says it does...
        if kind == "tls":
            status = ng[0][9:12]
            assert (status in (b"200", b"404")) if want is True else status == want, (
                "%s: nginx %r" % (name, ng[0][:200]))
        # ... and tt the same way.
        if ng != tt:
            diffs.append("%s (%s):\n  nginx %r\n  tt    %r" % (name, kind, ng[0][:300] + b"...",
                                                              (tt[0][:300] + b"...",) + tt[1:]))
    assert not diffs, "\n".join(diffs)


# ---------------------------------------------------------------------------
# 3. Timers


H, K = HEADER_S, KEEPALIVE_S
PARTIAL = b"GET / HTTP/1.1\r\nHo"
# (name, steps after the handshake, when nginx closes (seconds from the
# connect)).
TLS_CASES = [
    ("silence after the handshake", [], H),
    ("a request cut short", [PARTIAL], H),
    ("a request trickling in", [b"GET", 0.5, b" / HT", 0.5, b"TP/1.1\r\n", 0.5, b"Ho"], H),
    ("a request, then silence (kept alive)", [GET], K),
    ("a request with Connection: close", [get("/", extra="Connection: close\r\n")], 0),
    ("two requests 1 s apart", [GET, 1.0, GET], 1 + K),
    ("a request, then half of one", [GET, 1.0, PARTIAL], 1 + H),
    ("junk inside TLS", [bytes(range(0x90, 0x90 + 40))], 0),
    # A client that ends first gets no close_notify back from nginx.
    ("close_notify after the handshake", ["close_notify"], 0),
    ("a request cut short, then close_notify", [PARTIAL, "close_notify"], 0),
    ("a request, then close_notify", [GET, 0.5, "close_notify"], 0.5),
    ("a request cut short, then FIN", [PARTIAL, "FIN"], 0),
    ("a request, then FIN", [GET, 0.5, "FIN"], 0.5),
]


def raw_hello_probe(port, pause):
    """PAUSE seconds of silence, then the start of a ClientHello, and
    nothing more."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="tunnel.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()[:100]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    try:
        if pause:
            time.sleep(pause)  # the prober's own pace
        s.sendall(hello)
        got, how = read_to_end(s, H + 5)
        return got, how, time.monotonic() - t0
    finally:
        s.close()


RAW_TIMED = [
    ("nothing sent", lambda p: raw_probe(p, b"", False, H + 5), H),
    ("one byte of a record", lambda p: raw_probe(p, b"\x16", False, H + 5), H),
    ("one byte of an SSLv2 hello", lambda p: raw_probe(p, b"\x80", False, H + 5), H),
    ("one letter", lambda p: raw_probe(p, b"G", False, H + 5), H),
    ("line ends only", lambda p: raw_probe(p, b"\r\n\r\n", False, H + 5), H),
    ("plain request cut short", lambda p: raw_probe(p, b"GET / HT", False, H + 5), H),
    ("half a ClientHello", lambda p: raw_hello_probe(p, 0), H),
    ("1 s of silence, then half a ClientHello", lambda p: raw_hello_probe(p, 1.0), H),
]


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_idle_and_half_open_connections_close_as_nginx(procs, pki, www, tmp_path, scheme):
    pair = start_pair(procs, pki, www, tmp_path, scheme, timed=True)
    jobs = ([("tls", c, port) for c in TLS_CASES for port in (pair.nginx, pair.tt)] +
            [("raw", c, port) for c in RAW_TIMED for port in (pair.nginx, pair.tt)])

    def run(job):
        kind, case, port = job
        if kind == "tls":
            plain, *rest = tls_probe(port, case[1], max(H, K) + 5)
            return (normalise(plain), *rest)
        return case[1](port)

    results = in_parallel(run, jobs)
    diffs = []
    for i in range(0, len(jobs), 2):
        _, (name, _, when), _ = jobs[i]
        ng, tt = results[i], results[i + 1]
        # nginx itself closes when this test says it does...
        assert abs(ng[-1] - when) < SLACK_S, "%s: nginx closed after %.2fs, not %.2fs: %r" % (
            name, ng[-1], when, ng)
        # ... and tt the same way, with the same bytes, at the same time.
        if ng[:-1] != tt[:-1] or abs(tt[-1] - when) >= SLACK_S:
            diffs.append("%s (nginx at %.2fs):\n  nginx %r\n  tt    %r" % (name, when, ng, tt))
    assert not diffs, "\n".join(diffs)


def test_web_face_timeouts_default_to_nginx():
    """--header-timeout and --keepalive-timeout start as nginx's
    client_header_timeout (60 s) and keepalive_timeout (75 s), for every web
    carrier; 0 is refused."""
    r = run_tt(["server", "--help"])
    text = r.stdout
    assert re.search(r"--header-timeout DURATION .*\(default 60s, nginx's client_header_timeout\)",
                     text), text
    assert re.search(r"--keepalive-timeout DURATION .*\(default 75s, nginx's keepalive_timeout\)",
                     text), text
    r = run_tt(["server", "-l", "tls://127.0.0.1:1", "-k", "x", "--header-timeout", "0"])
    assert r.returncode != 0
    assert "--header-timeout and --keepalive-timeout must be more than 0" in r.stderr
