"""Early data: a forward's application bytes, and with --early-reply a SOCKS5
application's, travel with the stream's open instead of waiting for the
server's answer. The server's resolver is a DNS server in this test that
holds its answer, so the open is provably still under way while the
application sends, half-closes, or learns that it is "connected"."""
import socket
import struct
import threading

import pytest

from helpers import (free_port, greet, read_reply, recv_until_eof, request, connect, CMD_CONNECT,
                     curl)

KEY = "early data test key"


class HeldDns:
    """A DNS server on 127.0.0.1 that answers nothing until release(): then
    every A query with 127.0.0.1 and every other query with no records."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.asked = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        held = []
        while True:
            try:
                data, addr = self.sock.recvfrom(2048)
            except OSError:
                return
            self.queries += 1
            self.asked.set()
            held.append((data, addr))
            if not self.released.is_set():
                continue
            for q, a in held:
                self.sock.sendto(self._answer(q), a)
            held = []

    def release(self):
        # The thread answers what it holds at its next query; a query to
        # ourselves wakes it.
        self.released.set()
        poke = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        poke.sendto(b"\0" * 12, ("127.0.0.1", self.port))
        poke.close()

    @staticmethod
    def _answer(q):
        if len(q) < 17:
            return q[:2] + b"\x81\x81" + b"\0" * 8  # FORMERR for the poke
        i = 12
        while q[i] != 0:
            i += 1 + q[i]
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        header = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1 if qtype == 1 else 0, 0, 0)
        answer = b""
        if qtype == 1:
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
        return header + question + answer

    def close(self):
        self.sock.close()


@pytest.fixture
def held_dns():
    d = HeldDns()
    yield d
    d.close()


def pair(procs, carrier, dns, client_args=(), forwards=()):
    port = free_port(("127.0.0.1",))
    key = ["-k", KEY] if carrier == "tt" else []
    srv = procs.tt(["server", "-l", "%s://127.0.0.1:%d" % (carrier, port), *key,
                    "--allow", "127.0.0.0/8", "--resolver", "127.0.0.1:%d" % dns.port],
                   name="tt-server")
    srv.wait_log(r"tt server listening on %s://" % carrier, timeout=60)
    argv = ["client", "-s", "%s://127.0.0.1:%d" % (carrier, port), *key, "-v",
            "-l", "127.0.0.1:0"]
    for dest in forwards:
        argv += ["-L", "127.0.0.1:0=%s" % dest]
    cli = procs.tt(argv + list(client_args), name="tt-client")
    socks = int(cli.wait_log(r"SOCKS5 proxy listening on 127\.0\.0\.1:(\d+)").group(1))
    fports = [int(cli.wait_log(r"forward listening on 127\.0\.0\.1:(\d+) -> %s" % d).group(1))
              for d in forwards]
    return srv, cli, ("127.0.0.1", socks), fports


def socks_request(socks, host, port):
    s = connect(socks)
    assert greet(s) == b"\x05\x00"
    s.sendall(request(CMD_CONNECT, host, port))
    return s


@pytest.mark.parametrize("carrier", ["tt", "tcp"])
def test_early_reply_answers_before_the_server_connects(procs, echo, held_dns, carrier):
    srv, cli, socks, _ = pair(procs, carrier, held_dns, client_args=("--early-reply",))
    s = socks_request(socks, "held.test", echo)
    # "Connected" while the server still waits for DNS: the early reply.
    assert read_reply(s)[1] == 0
    assert held_dns.asked.wait(10), "the server never asked for the name"
    # The request, then a half-close, both while the open is under way.
    s.sendall(b"hello through an open that has not finished")
    s.shutdown(socket.SHUT_WR)
    cli.wait_log(r"half-closed while the stream opens")
    held_dns.release()
    data, how = recv_until_eof(s, 15)
    assert (data, how) == (b"hello through an open that has not finished", "eof")
    s.close()


@pytest.mark.parametrize("carrier", ["tt", "tcp"])
def test_forward_sends_early_data_and_half_close(procs, echo, held_dns, carrier):
    dest = "held.test:%d" % echo
    srv, cli, _, (fport,) = pair(procs, carrier, held_dns, forwards=(dest,))
    s = connect(("127.0.0.1", fport))
    s.sendall(b"forward bytes before the open")
    s.shutdown(socket.SHUT_WR)
    cli.wait_log(r"half-closed while the stream opens")
    assert held_dns.asked.wait(10)
    held_dns.release()
    assert recv_until_eof(s, 15) == (b"forward bytes before the open", "eof")
    s.close()


def test_early_reply_unreachable_destination_is_a_reset(procs, held_dns):
    srv, cli, socks, _ = pair(procs, "tt", held_dns, client_args=("--early-reply",))
    dead = free_port(("127.0.0.1",))
    s = socks_request(socks, "127.0.0.1", dead)
    assert read_reply(s)[1] == 0
    s.sendall(b"nobody will read this")
    assert recv_until_eof(s, 15) == (b"", "reset")
    cli.wait_log(r"CONNECT 127\.0\.0\.1:%d: connection refused \(answered early: reset\)" % dead)
    s.close()


def test_without_early_reply_unreachable_is_a_socks_error(procs, held_dns):
    srv, cli, socks, _ = pair(procs, "tt", held_dns)
    dead = free_port(("127.0.0.1",))
    s = socks_request(socks, "127.0.0.1", dead)
    assert read_reply(s)[1] == 5
    s.close()


def test_forward_to_unreachable_destination_is_a_reset(procs, held_dns):
    dead = free_port(("127.0.0.1",))
    srv, cli, _, (fport,) = pair(procs, "tt", held_dns, forwards=("127.0.0.1:%d" % dead,))
    s = connect(("127.0.0.1", fport))
    s.sendall(b"hello?")
    assert recv_until_eof(s, 15) == (b"", "reset")
    s.close()


def test_early_reply_carries_curl(procs, nginx, held_dns):
    srv, cli, socks, _ = pair(procs, "tt", held_dns, client_args=("--early-reply",))
    r = curl("--socks5", "%s:%d" % socks, "http://127.0.0.1:%d/" % nginx.port, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == nginx.index
