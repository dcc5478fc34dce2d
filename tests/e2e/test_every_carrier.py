"""The cases every carrier must pass, written once. Each test takes the
`carrier` and `mux` fixtures, so it runs over every entry of
helpers.CARRIERS, with and without --mux (conftest.py's
pytest_generate_tests makes the combinations): bulk data both ways, many
streams at once, SOCKS5 reply codes, early data, half-close, SIGTERM with
transfers in flight, and SIGTERM with carrier handshakes pending, at the
client and at the server (where they happen before any mux, so that test
takes `carrier` alone). A new carrier gets all of them by adding its entry
to CARRIERS."""

import asyncio
import hashlib
import os
import random
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers import (GENERAL, NOT_ALLOWED, REFUSED, TTL_EXPIRED, connect, connections_to,
                     expect_reply, free_port, read_reply, recv_exact, recv_until_eof,
                     sanitizer_report, socks_open, socks_request, start_client, start_client_of,
                     start_server, wait_until)

LOOPBACK = ["--allow", "127.0.0.0/8"]
MB = 1 << 20


def echo_once(sock, payload):
    sock.sendall(payload)
    assert recv_exact(sock, len(payload), "the echo") == payload


# ---------------------------------------------------------------------------
# Bulk data


def test_bulk_both_ways(tunnel, echo, carrier, mux):
    """8 MiB of random bytes to an echo server, written while the echo is
    read back: both directions busy at once, compared byte for byte, and
    the stream ends cleanly after the application's half-close."""
    _, client = tunnel(LOOPBACK, carrier=carrier, mux=mux)
    data = os.urandom(8 * MB)
    s = socks_open(client.socks, "127.0.0.1", echo, timeout=30)
    sent = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            sent.append(True)
        except OSError as e:
            sent.append(e)

    sender = threading.Thread(target=send)
    sender.start()
    with s:
        got, how = recv_until_eof(s, 60)
    sender.join(30)
    assert sent == [True], "sending failed: %r" % sent
    assert how == "eof"
    assert len(got) == len(data), "%d of %d bytes came back" % (len(got), len(data))
    assert got == data, "the echo differs from what was sent"


# ---------------------------------------------------------------------------
# Many streams at once

N_STREAMS = 200
STREAM_BYTES = 64 * 1024


async def one_stream(socks_port, echo_port, i):
    """A SOCKS5 CONNECT to the echo server, then STREAM_BYTES of this stream's
    own random data, written while the echo is read back; returns what came
    back along with what was sent."""
    data = random.Random(i).randbytes(STREAM_BYTES)
    reader, writer = await asyncio.open_connection("127.0.0.1", socks_port)
    try:
        writer.write(b"\x05\x01\x00")
        assert await reader.readexactly(2) == b"\x05\x00"
        writer.write(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + echo_port.to_bytes(2, "big"))
        reply = await reader.readexactly(10)
        assert reply[:2] == b"\x05\x00", "stream %d: reply %r" % (i, reply)

        async def send():
            for off in range(0, len(data), 8192):
                writer.write(data[off:off + 8192])
                await writer.drain()
            writer.write_eof()

        sender = asyncio.ensure_future(send())
        got = await reader.read(-1)  # to EOF: the echo half-closes after ours
        await sender
        return i, data, got
    finally:
        writer.close()


def test_many_streams(tunnel, echo, carrier, mux):
    """N_STREAMS SOCKS5 streams at once, each echoing its own bytes."""
    _, client = tunnel(LOOPBACK, carrier=carrier, mux=mux)

    async def all_streams():
        tasks = [one_stream(client.socks_port, echo, i) for i in range(N_STREAMS)]
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)

    results = asyncio.run(all_streams())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, "%d of %d streams failed, e.g. %r" % (len(failures), N_STREAMS, failures[:3])
    bad = [i for i, sent, got in results if got != sent]
    assert not bad, "streams %s came back different (first: %d bytes back)" % (
        bad[:10], len(results[bad[0]][2]))


# ---------------------------------------------------------------------------
# Reply codes


def test_reply_codes(procs, tunnel, echo, black_hole, carrier, mux):
    """The far end's failures reach the application as their exact SOCKS5
    codes, and a failed stream leaves the connection (with --mux, the
    session) usable for the next one."""
    args = LOOPBACK + ["--deny", "127.0.0.2/32", "--connect-timeout", "500ms"]
    server, client = tunnel(args if carrier.tt_far_end else LOOPBACK, carrier=carrier, mux=mux)
    # A far end that closes without a reply can only mean general failure.
    expect_reply(client.socks, "127.0.0.1", free_port(), REFUSED if carrier.reply_codes else GENERAL)
    if carrier.tt_far_end:
        expect_reply(client.socks, "127.0.0.2", echo, NOT_ALLOWED)
        start = time.monotonic()
        expect_reply(client.socks, "127.0.0.1", black_hole, TTL_EXPIRED)
        took = time.monotonic() - start
        assert 0.45 <= took < 4, "the 500ms connect timeout took %.2fs" % took
    with socks_open(client.socks, "127.0.0.1", echo) as s:
        echo_once(s, b"after the failures")
    # A client whose far end does not answer: general failure.
    absent = start_client_of(procs, server, mux=mux, url=carrier.url("127.0.0.1", free_port()),
                             name="client-of-nobody")
    expect_reply(absent.socks, "127.0.0.1", echo, GENERAL)


# ---------------------------------------------------------------------------
# Early data


@pytest.mark.carriers_with("tt_far_end")  # holding the open needs a tt server's --resolver
def test_early_data_and_half_close_during_the_open(procs, echo, held_dns, carrier, mux):
    """A SOCKS5 application answered early (--early-reply) and a forward's
    application both send their request and half-close while the server
    still waits for DNS; once it answers, each gets exactly its echo and a
    clean end."""
    server = start_server(procs, LOOPBACK + ["--resolver", "127.0.0.1:%d" % held_dns.port],
                          carrier=carrier)
    client = start_client_of(procs, server, ["-v", "--early-reply"], mux=mux,
                             forwards=["held.test:%d" % echo])
    s = socks_request(client.socks, "held.test", echo)
    # "Connected" while the server has not resolved the name: the early reply.
    assert read_reply(s)[1] == 0
    s.sendall(b"socks bytes before the open")
    s.shutdown(socket.SHUT_WR)
    f = connect(("127.0.0.1", client.forward_ports[0]))
    f.sendall(b"forward bytes before the open")
    f.shutdown(socket.SHUT_WR)
    wait_until(lambda: client.proc.log().count("half-closed while the stream opens") == 2, 10,
               "both applications' half-close while their streams open")
    assert held_dns.asked.wait(10), "the server never asked for the name"
    held_dns.release()
    with s, f:
        assert recv_until_eof(s, 15) == (b"socks bytes before the open", "eof")
        assert recv_until_eof(f, 15) == (b"forward bytes before the open", "eof")


# ---------------------------------------------------------------------------
# Half-close


@pytest.mark.carriers_with("half_close")
def test_half_close(procs, tunnel, carrier, mux):
    """Through SOCKS5 and through a forward: the application sends 1 MiB and
    its FIN, and only then does the destination answer (its digest and a
    2 MiB body), so the answer arrives only if the FIN crossed and the
    other direction stayed open."""
    body_size = 2 * MB
    _, port = procs.peer("halfclose", "--body-size", body_size)
    _, client = tunnel(LOOPBACK, forwards=["127.0.0.1:%d" % port], carrier=carrier, mux=mux)
    apps = {"socks": lambda: socks_open(client.socks, "127.0.0.1", port),
            "forward": lambda: connect(("127.0.0.1", client.forward_ports[0]))}
    for entry, open_app in apps.items():
        sent = os.urandom(MB)
        with open_app() as s:
            s.sendall(sent)
            s.shutdown(socket.SHUT_WR)
            answer, how = recv_until_eof(s, 30)
        assert how == "eof", "%s: the stream was reset instead of ending cleanly" % entry
        head, _, body = answer.partition(b"\n")
        digest, n, body_len, body_digest = head.decode().split()
        assert (digest, int(n)) == (hashlib.sha256(sent).hexdigest(), len(sent)), \
            "%s: the responder read something else than was sent" % entry
        assert int(body_len) == body_size
        assert len(body) == body_size, "%s: got %d of %d body bytes after SHUT_WR" % (
            entry, len(body), body_size)
        assert hashlib.sha256(body).hexdigest() == body_digest


# ---------------------------------------------------------------------------
# SIGTERM with transfers in flight


class Flow:
    """An application streaming random bytes to the echo server through a
    client while reading the echo back, on two threads, until the tunnel
    ends the stream."""

    def __init__(self, client, echo_port):
        self.sock = socks_open(client.socks, "127.0.0.1", echo_port, timeout=30)
        self.received = 0
        self.end = None  # how the reading side ended: "eof" or "reset"
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.reader.start()
        self.writer.start()

    def _write(self):
        chunk = os.urandom(256 * 1024)
        try:
            while True:
                self.sock.sendall(chunk)
        except OSError:
            pass  # the tunnel ended the stream

    def _read(self):
        try:
            while True:
                d = self.sock.recv(1 << 16)
                if not d:
                    self.end = "eof"
                    return
                self.received += len(d)
        except ConnectionResetError:
            self.end = "reset"
        except OSError as e:
            self.end = repr(e)

    def flowing(self, more=MB):
        """Waits until another MORE bytes came back."""
        start = self.received
        wait_until(lambda: self.received >= start + more, 20, "the stream to move %d bytes" % more)

    def ended(self, what):
        """The stream must end (EOF or reset) within seconds, never hang."""
        self.reader.join(10)
        self.writer.join(10)
        assert not self.reader.is_alive() and not self.writer.is_alive(), \
            "%s: the application's stream was still open 10s after its tunnel ended" % what
        assert self.end in ("eof", "reset"), "%s: the stream ended with %s" % (what, self.end)
        self.sock.close()


def stalled_download(client, lst):
    """A stream whose destination has filled the tunnel towards an
    application that reads nothing: bytes wait inside tt. Returns the
    application's socket and the destination's."""
    app = socks_open(client.socks, "127.0.0.1", lst.getsockname()[1], timeout=30)
    dest, _ = lst.accept()
    dest.setblocking(False)
    chunk = os.urandom(256 * 1024)
    try:
        for _ in range(64):
            dest.send(chunk)
    except BlockingIOError:
        pass
    dest.settimeout(10)
    return app, dest


def test_sigterm_with_transfers_in_flight(procs, echo, black_hole, carrier, mux):
    """Two clients of one far end, each with a stream moving data both
    ways, a download stalled on an application that does not read, and a
    CONNECT the far end is still dialing. SIGTERM the first client, then
    the far end: each exits 0 within seconds with no sanitizer report
    (checked at teardown for the second client), every application and
    destination sees its connection end (EOF or reset), and the second
    client's stream keeps flowing after the first client is gone."""
    server = start_server(procs, LOOPBACK, carrier=carrier)
    clients = [start_client_of(procs, server, mux=mux, name="tt-client-%d" % i) for i in (1, 2)]
    lst = socket.create_server(("127.0.0.1", 0))
    lst.settimeout(10)
    with lst:
        stalled = [stalled_download(c, lst) for c in clients]
    dialing = [socks_request(c.socks, "127.0.0.1", black_hole) for c in clients]
    wait_until(lambda: connections_to(black_hole, "syn-sent") == 2, 10,
               "the far end's two connects to the black hole")
    # Last, as they keep both cores busy.
    flows = [Flow(c, echo) for c in clients]
    for f in flows:
        f.flowing()

    def stop(proc):
        start = time.monotonic()
        rc = proc.terminate_and_wait(timeout=15)
        took = time.monotonic() - start
        if proc.is_tt:
            assert rc == 0, "%s exited %d on SIGTERM:\n%s" % (proc.name, rc, proc.log())
        assert took < 5, "%s took %.1fs to exit on SIGTERM" % (proc.name, took)

    def ended(i, what):
        flows[i].ended(what)
        for s in stalled[i] + (dialing[i],):
            with s:
                recv_until_eof(s, 10)

    stop(clients[0].proc)
    ended(0, "first client stopped")
    flows[1].flowing()
    stop(server.proc)
    ended(1, "far end stopped")
    assert clients[1].proc.alive(), "the second client died with its far end"


def accept_queue(port):
    """How many connections to the listener on 127.0.0.1:PORT wait to be
    accepted (ss shows a listener's accept queue as its Recv-Q)."""
    out = subprocess.run(["ss", "-Htln", "sport", "= :%d" % port], capture_output=True, text=True,
                         check=True).stdout
    lines = [ln.split() for ln in out.splitlines() if "127.0.0.1:%d" % port in ln]
    assert len(lines) == 1, "no single listener on 127.0.0.1:%d: %r" % (port, out)
    return int(lines[0][1])


@pytest.mark.carriers_with("tt_far_end")  # a proxy far end is not ours to stop
def test_sigterm_with_handshakes_pending(procs, carrier):
    """SIGTERM while 200 connections are in the carrier's handshake (half
    silent, half with 10 random bytes sent, which some carriers refuse at
    once), which then close as the server stops: the server exits 0 with no
    sanitizer report. (A tt:// server once freed its carrier while such
    handshakes kept a pointer to it, and one that saw its EOF during the
    shutdown read freed memory.)"""
    server = start_server(procs, LOOPBACK, carrier=carrier)
    conns = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(200)]
    try:
        for c in conns[::2]:
            c.sendall(os.urandom(10))
        wait_until(lambda: accept_queue(server.port) == 0, 20,
                   "the server to accept the 200 connections")
        server.proc.popen.send_signal(signal.SIGTERM)
    finally:
        for c in conns:
            c.close()
    rc = server.proc.popen.wait(timeout=30)
    assert rc == 0, server.proc.log()
    assert sanitizer_report(server.proc.log()) is None, server.proc.log()


def test_client_sigterm_with_carrier_handshakes_pending(procs, carrier, mux):
    """The client's side of the same: its far end accepts the carrier
    connections and never answers (a sink), so 8 streams wait inside the
    carrier's handshake (a TLS ClientHello, an upgrade request, a first
    flight, a stream header) when the client gets SIGTERM. It exits 0 within
    seconds with no sanitizer report, and every application's connection
    ends (a failure reply at most), never hangs."""
    _, port = procs.peer("sink")
    # Any fingerprint will do: the handshake never gets that far.
    args = carrier.client_args(pin="00" * 32) + (["--mux"] if mux else [])
    client = start_client(procs, carrier.url("127.0.0.1", port), args)
    apps = [socks_request(client.socks, "127.0.0.1", 80) for _ in range(8)]
    # A muxed client dials once for its first streams; a plain one per stream.
    wait_until(lambda: connections_to(port) >= (1 if mux else len(apps)), 10,
               "the client's carrier connections to the silent far end")
    start = time.monotonic()
    rc = client.proc.terminate_and_wait(timeout=15)
    took = time.monotonic() - start
    assert rc == 0, "the client exited %d on SIGTERM:\n%s" % (rc, client.proc.log())
    assert took < 5, "the client took %.1fs to exit on SIGTERM" % took
    for s in apps:
        with s:
            rest, _ = recv_until_eof(s, 5)
        assert rest in (b"", b"\x05\x01\x00\x01\0\0\0\0\0\0"), \
            "an application got %r when its client stopped" % rest
