"""The DNS datagram layers (src/link/dnsc.c, dnss.c) through a real
unbound, before a carrier uses them: tests/tools/dnstun-echo runs the
server (authoritative for DOMAIN on 127.0.0.2) and the client (asking
unbound on 127.0.0.1, whose stub zone for DOMAIN points at the server).

Also: the server's authoritative face as dig sees it, a resolver's retry
answered again with the same data, and malformed packets answered with
FORMERR or silence, never a crash (the server runs under ASan; the process
manager fails the test on a sanitizer report or a non-zero exit)."""
import base64
import json
import os
import random
import socket
import selectors
import struct
import subprocess
import threading

import pytest

import helpers
from helpers import free_port, sanitizer_env, sanitizer_report, tail, tt_bin, wait_until

DOMAIN = "t.example.com"
SERVER_HOST = "127.0.0.2"


def echo_bin():
    path = os.path.join(os.path.dirname(tt_bin()), "tests", "tools", "dnstun-echo")
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built (meson builds it beside tt)" % path)
    return path


def question(name, qtype, qid=0x4242, edns=True):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return q


def ask(addr, msg, timeout=2.0):
    """Sends MSG to ADDR over UDP; the answer, or None after TIMEOUT."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, addr)
        try:
            return s.recv(4096)
        except socket.timeout:
            return None


def tunnel_name(client, nonce, payload, domain=DOMAIN):
    """The query name the client writes (docs/DNS.md)."""
    text = base64.b32encode(struct.pack(">II", client, nonce) + payload).decode().rstrip("=")
    text = text.lower()
    labels = [text[i:i + 63] for i in range(0, len(text), 63)]
    return ".".join(labels + [domain])


def txt_data(msg):
    """The joined strings of the first TXT record of the answer MSG."""
    _, _, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    p = 12
    while msg[p]:
        p += 1 + msg[p]
    p += 5
    assert an >= 1, "no answer record: %r" % msg
    assert msg[p] & 0xC0 == 0xC0
    rtype, _, ttl, rdlen = struct.unpack(">HHIH", msg[p + 2:p + 12])
    assert rtype == 16 and ttl == 0
    rd, out, i = msg[p + 12:p + 12 + rdlen], b"", 0
    while i < len(rd):
        out += rd[i + 1:i + 1 + rd[i]]
        i += 1 + rd[i]
    return out


class Server:
    def __init__(self, procs, hold_ms=None):
        argv = [echo_bin(), "server", SERVER_HOST, "0", DOMAIN]
        if hold_ms is not None:
            argv.append(str(hold_ms))
        self.proc = procs.start(argv, name="dnstun-server", env=sanitizer_env(), is_tt=True)
        m = self.proc.wait_log(r"listening udp (\d+) tcp (\d+)")
        self.port = int(m.group(1))
        assert int(m.group(2)) == self.port
        self.addr = (SERVER_HOST, self.port)

    def stats(self):
        """Stops the server; its counters."""
        assert self.proc.terminate_and_wait() == 0, tail(self.proc.log())
        line = self.proc.log().splitlines()
        return json.loads(next(x for x in line if x.startswith("{")))


class Unbound(helpers.Unbound):
    """unbound on 127.0.0.1 with a stub zone for DOMAIN to SERVER; ready
    once it answers for DOMAIN. KW goes to helpers.Unbound (tls=,
    server_lines= ...)."""

    def __init__(self, procs, tmp, server, **kw):
        super().__init__(procs, tmp, stubs=[(DOMAIN, SERVER_HOST, server.port)], **kw)
        wait_until(lambda: ask(self.addr, question(DOMAIN, 6), 0.5) is not None, 15,
                   "unbound answering for %s" % DOMAIN)


def run_client(mode, count, size, resolvers, inflight=16, qtype="auto", timeout=90):
    argv = [echo_bin(), "client", DOMAIN, mode, str(count), str(size),
            ",".join("%s:%d" % r for r in resolvers), str(inflight), qtype]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=sanitizer_env())
    report = sanitizer_report(r.stderr)
    assert report is None, r.stderr
    assert r.returncode == 0, "dnstun-echo client exited %d: %s %s" % (r.returncode, r.stdout,
                                                                          r.stderr)
    res = json.loads(r.stdout)
    print("dnstun-echo %s -> %s" % (" ".join(argv[2:]), r.stdout.strip()))
    return res


@pytest.fixture
def server(procs):
    return Server(procs)


@pytest.fixture
def unbound(procs, tmp_path, server):
    return Unbound(procs, tmp_path, server)


def test_echo_through_unbound(server, unbound):
    res = run_client("echo", 2000, 0, [unbound.addr])
    assert res["corrupt"] == 0
    assert res["size"] == 139, "the query capacity under %s" % DOMAIN
    assert res["received"] >= 0.99 * res["count"], res
    st = server.stats()
    # Every client query reached the server as a tunnel query once, or
    # again as a resolver's retry answered from the cache.
    assert st["tunnel"] >= res["queries"] - res["timeouts"]


def test_up_and_down_through_unbound(server, unbound):
    up = run_client("up", 2000, 0, [unbound.addr])
    assert up["received"] >= 0.99 * up["count"], up
    down = run_client("down", 2000, 0, [unbound.addr])
    assert down["size"] == 932, "the answer capacity"
    assert down["received"] >= 0.99 * down["count"], down
    assert down["corrupt"] == 0 and up["corrupt"] == 0


def test_null_records_through_unbound(server, unbound):
    res = run_client("echo", 500, 0, [unbound.addr], qtype="null")
    assert res["qtype"] == 10
    assert res["received"] >= 0.99 * res["count"] and res["corrupt"] == 0, res


def test_direct_to_the_server(server):
    res = run_client("echo", 2000, 0, [server.addr])
    assert res["received"] == res["count"] and res["corrupt"] == 0, res
    down = run_client("down", 2000, 0, [server.addr])
    assert down["received"] == down["count"], down


def test_a_dead_resolver_is_backed_off(server, unbound):
    """A second resolver that never answers: the client stops using it
    after a few timeouts, so nearly everything goes through unbound."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
        dead.bind(("127.0.0.1", 0))
        res = run_client("echo", 2000, 0, [unbound.addr, dead.getsockname()])
    assert res["corrupt"] == 0
    # Without the backoff, half the queries would time out.
    assert res["timeouts"] <= 60, res
    assert res["received"] >= res["count"] - res["timeouts"] - 5, res


def dig(*args):
    r = subprocess.run(["dig", "+norec", "+time=2", "+tries=1"] + list(args),
                       capture_output=True, text=True, timeout=20)
    return r.stdout


def status(out):
    line = next((x for x in out.splitlines() if "->>HEADER<<-" in x), "")
    return line.split("status: ")[1].split(",")[0] if "status: " in line else None


def flags(out):
    line = next((x for x in out.splitlines() if x.startswith(";; flags:")), "")
    return line.split(";")[2].split(":")[1].split()


def test_authoritative_face_as_dig_sees_it(server, unbound):
    at = ["@" + SERVER_HOST, "-p", str(server.port)]
    soa = dig(*at, DOMAIN, "SOA")
    assert status(soa) == "NOERROR" and "aa" in flags(soa), soa
    assert "ns.%s. hostmaster.%s." % (DOMAIN, DOMAIN) in soa
    ns = dig(*at, DOMAIN, "NS")
    assert status(ns) == "NOERROR" and "ns.%s." % DOMAIN in ns.split("ANSWER SECTION")[1], ns
    tcp = dig(*at, "+tcp", DOMAIN, "SOA")
    assert status(tcp) == "NOERROR" and "aa" in flags(tcp), tcp
    nx = dig(*at, "www." + DOMAIN, "A")
    assert status(nx) == "NXDOMAIN" and "aa" in flags(nx), nx
    assert "SOA" in nx.split("AUTHORITY SECTION")[1]
    nodata = dig(*at, DOMAIN, "MX")
    assert status(nodata) == "NOERROR" and "ANSWER: 0" in nodata, nodata
    refused = dig(*at, "example.org", "A")
    assert status(refused) == "REFUSED" and "aa" not in flags(refused), refused
    chaos = dig(*at, "version.bind", "CH", "TXT")
    assert status(chaos) == "REFUSED", chaos
    axfr = dig(*at, "+tcp", DOMAIN, "AXFR")
    assert "Transfer failed" in axfr or "REFUSED" in axfr, axfr
    notify = dig(*at, "+opcode=notify", DOMAIN, "SOA")
    assert status(notify) == "NOTIMP", notify
    badvers = dig(*at, "+edns=1", "+noednsneg", DOMAIN, "SOA")
    assert status(badvers) == "BADVERS", badvers
    # Through unbound: the same answers, without AA.
    via = dig("@127.0.0.1", "-p", str(unbound.port), "+rec", "www." + DOMAIN, "A")
    assert status(via) == "NXDOMAIN", via
    via = dig("@127.0.0.1", "-p", str(unbound.port), "+rec", DOMAIN, "SOA")
    assert status(via) == "NOERROR" and "hostmaster" in via, via


def test_a_retry_is_answered_again_with_the_same_data(server):
    """A resolver asks again with the same name (here with its letters'
    case changed, as 0x20 does): the answer carries the same datagram, and
    the server hands the datagram up only once (one echo queued, so an
    answer to a fresh poll is empty)."""
    client = 0x0BADCAFE
    payload = b"E" + struct.pack(">I", 7) + b"retry"
    name = tunnel_name(client, 1, payload)
    first = ask(server.addr, question(name, 16, qid=1))
    assert first is not None and first[3] & 0xF == 0
    mixed = "".join(c.upper() if random.random() < 0.5 else c for c in name)
    second = ask(server.addr, question(mixed, 16, qid=2))
    assert second is not None
    assert second[:2] == b"\x00\x02"
    assert mixed.split(".")[0].encode() in second, "the question echoed as asked"
    data = txt_data(first)
    assert data == struct.pack(">H", len(payload)) + payload
    assert txt_data(second) == data
    poll = ask(server.addr, question(tunnel_name(client, 2, b""), 16, qid=3), timeout=5)
    assert txt_data(poll) == b"", "the datagram was handed up twice"
    st = server.stats()
    assert st["up_bytes"] == len(payload), "the datagram was handed up twice: %s" % st
    assert st["retries"] == 1 and st["tunnel"] == 3, st


def test_malformed_packets_get_formerr_or_silence(server):
    rng = random.Random(1234)
    good = question(DOMAIN, 6)
    cases = [os.urandom(rng.randint(0, 600)) for _ in range(300)]
    cases += [good[:n] for n in range(len(good))]
    # A compression pointer to itself in the question and in the OPT owner.
    cases.append(struct.pack(">HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\0\x06\0\x01")
    cases.append(good[:-11] + b"\xc0" + bytes([len(good) - 11]) + good[-9:])
    # Labels longer than the name may be, and a count of 65535 records.
    cases.append(struct.pack(">HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\x3f" + b"a" * 63 * 5)
    cases.append(good[:10] + b"\xff\xff" + good[12:])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for c in cases:
            s.sendto(c, server.addr)
        # The replies, until the server has been quiet for a second.
        s.settimeout(1.0)
        replies = []
        while True:
            try:
                replies.append(s.recv(4096))
            except socket.timeout:
                break
    assert replies, "not even the truncated queries with a whole header were answered"
    for r in replies:
        assert len(r) >= 12 and r[2] & 0x80, "an answer that is not a response: %r" % r
        # FORMERR and NOTIMP for what is broken; what random bytes made
        # into a valid query gets an answer like any other.
        assert r[3] & 0xF in (0, 1, 3, 4, 5), r
    # Over TCP: a header without a question, then a frame longer than any
    # query.
    with socket.create_connection(server.addr, timeout=5) as t:
        t.sendall(struct.pack(">HHHHHHH", 12, 9, 0x0100, 0, 0, 0, 0))
        head = t.recv(2)
        n = struct.unpack(">H", head)[0]
        r = t.recv(n)
        assert r[3] & 0xF == 1, "FORMERR for a query without a question over TCP: %r" % r
        t.sendall(b"\xff\xff" + b"x" * 100)
        assert t.recv(100) == b"", "a frame over the bound closes the connection"
    # Still serving.
    a = ask(server.addr, good)
    assert a is not None and a[3] & 0xF == 0
    st = server.stats()
    assert st["clients"] <= 1, st


def ask_tcp(addr, msg, timeout=5.0):
    """MSG over TCP, the write side then shut: the answer must still come,
    even one the server holds for a while."""
    with socket.create_connection(addr, timeout=timeout) as t:
        t.sendall(struct.pack(">H", len(msg)) + msg)
        t.shutdown(socket.SHUT_WR)
        head = b""
        while len(head) < 2:
            chunk = t.recv(2 - len(head))
            assert chunk, "the server closed the connection without answering"
            head += chunk
        n = struct.unpack(">H", head)[0]
        body = b""
        while len(body) < n:
            chunk = t.recv(n - len(body))
            assert chunk, "the server closed the connection mid-answer"
            body += chunk
        return body


def test_a_long_answer_is_truncated_for_512_bytes_and_whole_over_tcp(server):
    """A datagram of 900 bytes queued for a client does not fit the 512
    bytes of a query without EDNS: the answer has TC, the datagram stays
    queued, and the same question over TCP (what a resolver does next)
    brings it."""
    client = 0x00C0FFEE
    request = b"D" + struct.pack(">IIH", 0, 1, 900)
    first = ask(server.addr, question(tunnel_name(client, 1, request), 16, qid=1))
    assert first is not None and first[3] & 0xF == 0
    # The server's refill timer queues the datagram within milliseconds;
    # a poll held until then brings it whole when EDNS allows.
    name = tunnel_name(client, 2, b"")
    small = ask(server.addr, question(name, 16, qid=2, edns=False), timeout=5)
    assert small is not None and small[2] & 0x02, "TC expected: %r" % small
    whole = ask_tcp(server.addr, question(name, 16, qid=3, edns=False))
    assert whole[2] & 0x02 == 0
    data = txt_data(whole)
    assert len(data) == 2 + 900 and data[2:3] == b"d", data[:16]
    # A poll over TCP is held like any other, and answered empty.
    held = ask_tcp(server.addr, question(tunnel_name(client, 3, b""), 16, qid=4))
    assert txt_data(held) == b""
    st = server.stats()
    assert st["truncated"] == 1, st


class TxtEater:
    """A resolver in the way that loses TXT data: it passes queries to the
    server and its answers back, but an answer to a TXT query comes back
    NOERROR with its records cut off (header and question only)."""

    def __init__(self, server_addr):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.server = server_addr
        self.client = None
        self.eaten = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(self.up, selectors.EVENT_READ)
        while not self.stop:
            for key, _ in sel.select(timeout=0.1):
                if key.fileobj is self.sock:
                    msg, self.client = self.sock.recvfrom(4096)
                    self.up.sendto(msg, self.server)
                    continue
                msg = self.up.recv(4096)
                p = 12
                while msg[p]:
                    p += 1 + msg[p]
                qtype = struct.unpack(">H", msg[p + 1:p + 3])[0]
                if qtype == 16:
                    msg = msg[:4] + b"\0\x01\0\0\0\0\0\0" + msg[12:p + 5]
                    self.eaten += 1
                self.sock.sendto(msg, self.client)
        sel.close()

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()
        self.up.close()


def test_txt_eaten_on_the_way_falls_back_to_null(server):
    eater = TxtEater(server.addr)
    try:
        res = run_client("echo", 500, 0, [eater.addr])
    finally:
        eater.close()
    assert res["qtype"] == 10, "the client did not switch to NULL: %s" % res
    # Four in a row switch it; the TXT queries already in flight (16 at
    # most) come back eaten too, and so does the answer to the client's
    # probe of the path (docs/DNS.md, "Denser names").
    assert 4 <= res["bad"] <= 4 + 16 and eater.eaten == res["bad"], (res, eater.eaten)
    assert res["corrupt"] == 0
    # What the eaten answers brought back is lost; the rest arrives.
    assert res["received"] >= res["count"] - res["bad"], res
