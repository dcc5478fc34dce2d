"""The tcp:// carrier's stream protocol as docs/PROTOCOL.md specifies it,
checked from both ends: the real client against a scripted server, and the
real server against a scripted client."""

import queue
import socket
import struct
import threading
import time

import pytest

from helpers import (connect, recv_exact, recv_until_eof, socks_connect, start_client,
                     start_server)


class ScriptedServer:
    """A tcp:// server played by the test: reads one stream-open header per
    connection (as the spec frames it), records it, sends REPLY and, after a
    success reply, echoes."""

    def __init__(self, reply):
        self.reply = reply
        self.lst = socket.create_server(("127.0.0.1", 0))
        self.port = self.lst.getsockname()[1]
        self.headers = queue.Queue()
        self.threads = []
        self.conns = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.port

    def _accept(self):
        while True:
            try:
                c, _ = self.lst.accept()
            except OSError:
                return
            self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _read(c, n):
        buf = b""
        while len(buf) < n:
            d = c.recv(n - len(buf))
            if not d:
                raise EOFError
            buf += d
        return buf

    def _serve(self, c):
        c.settimeout(10)
        with c:
            try:
                head = self._read(c, 3)
                atyp = head[2]
                if atyp == 1:
                    addr = self._read(c, 4)
                elif atyp == 4:
                    addr = self._read(c, 16)
                elif atyp == 3:
                    n = self._read(c, 1)
                    addr = n + self._read(c, n[0])
                else:
                    addr = b""
                self.headers.put(head + addr + self._read(c, 2))
                if self.reply is None:
                    return  # close without answering
                c.sendall(self.reply)
                if self.reply != b"\x01\x00":
                    c.shutdown(socket.SHUT_WR)
                    while c.recv(4096):
                        pass
                    return
                while True:
                    d = c.recv(65536)
                    if not d:
                        c.shutdown(socket.SHUT_WR)
                        return
                    c.sendall(d)
            except (OSError, EOFError):
                pass

    def header(self):
        try:
            return self.headers.get(timeout=10)
        except queue.Empty:
            pytest.fail("the scripted server received no complete stream-open header")

    def close(self):
        # shutdown() wakes the threads blocked in accept() and recv(); a bare
        # close() would not.
        for c in [self.lst] + self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(10)
            assert not t.is_alive(), "a scripted-server thread did not finish"
        self.lst.close()


@pytest.fixture
def scripted():
    servers = []

    def make(reply=b"\x01\x00"):
        s = ScriptedServer(reply)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


# The test vectors of docs/PROTOCOL.md.
VECTORS = [
    ("127.0.0.1", 80, "01 00 01 7f 00 00 01 00 50"),
    ("example.com", 443, "01 00 03 0b 65 78 61 6d 70 6c 65 2e 63 6f 6d 01 bb"),
    ("::1", 8080, "01 00 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 1f 90"),
]


@pytest.mark.parametrize("host, port, wire", VECTORS, ids=[v[0] for v in VECTORS])
def test_client_sends_documented_header(procs, scripted, host, port, wire):
    # Nothing is dialled: the scripted server only records what it is asked.
    srv = scripted()
    client = start_client(procs, srv.url)
    s, reply = socks_connect(client.socks, host, port)
    with s:
        assert reply[:2] == b"\x05\x00"
        assert srv.header() == bytes.fromhex(wire)
        s.sendall(b"stream bytes")
        assert recv_exact(s, 12, "echo via the scripted server") == b"stream bytes"


@pytest.mark.parametrize("code", range(1, 9))
def test_client_forwards_server_code_unchanged(procs, scripted, code):
    srv = scripted(bytes([1, code]))
    client = start_client(procs, srv.url)
    s, reply = socks_connect(client.socks, "192.0.2.1", 80)
    with s:
        assert reply[:2] == bytes([5, code]), "server code 0x%02x became %r" % (code, reply)
        assert recv_until_eof(s, 10)[0] == b""


@pytest.mark.parametrize("reply", [b"\x02\x00", None], ids=["bad-version", "no-reply"])
def test_client_bad_or_missing_reply_is_general_failure(procs, scripted, reply):
    srv = scripted(reply)
    client = start_client(procs, srv.url)
    s, rep = socks_connect(client.socks, "192.0.2.1", 80)
    with s:
        assert rep[:2] == b"\x05\x01", rep


# ---------------------------------------------------------------------------
# The real server, driven by a scripted client (in a namespace, since a
# header names any destination).


def open_header(host, port):
    try:
        return b"\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", port)
    except OSError:
        b = host.encode()
        return b"\x01\x00\x03" + bytes([len(b)]) + b + struct.pack(">H", port)


def test_server_header_split_anywhere(procs, netns):
    _, echo_port = procs.peer("echo", netns=netns)
    server = start_server(procs, ["--allow", "127.0.0.0/8"], netns=netns)
    for host in ("127.0.0.1", "localhost"):
        data = open_header(host, echo_port) + b"early bytes"
        s = connect(("127.0.0.1", server.port), netns=netns)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with s:
            for i in range(len(data)):
                s.send(data[i:i + 1])
                time.sleep(0.002)  # pacing only, so bytes tend to arrive apart
            assert recv_exact(s, 2, "stream reply") == b"\x01\x00"
            assert recv_exact(s, 11, "early bytes echoed") == b"early bytes"


MALFORMED = [
    ("bad version", b"\x02\x00\x01\x7f\x00\x00\x01\x00\x50"),
    ("nonzero flags", b"\x01\x01\x01\x7f\x00\x00\x01\x00\x50"),
    ("unknown address type", b"\x01\x00\x05\x7f\x00\x00\x01\x00\x50"),
    ("empty name", b"\x01\x00\x03\x00\x00\x50"),
    ("NUL in name", b"\x01\x00\x03\x09local\x00hos\x00\x50"),
]


@pytest.mark.parametrize("data", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_server_malformed_header(procs, netns, data):
    server = start_server(procs, ["--allow", "127.0.0.0/8"], netns=netns)
    s = connect(("127.0.0.1", server.port), netns=netns)
    with s:
        s.sendall(data)
        got, _ = recv_until_eof(s, 10)
    assert got == b"\x01\x01", "expected reply 01 01 and a close, got %r" % got
