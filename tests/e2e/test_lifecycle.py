"""Process-level behaviour: a clean SIGTERM exit with work in flight, the
client's limits on reaching its server, the server's handling of silent or
garbage carrier connections, and flow control when an application stops
reading."""

import asyncio
import random
import signal
import socket
import struct
import subprocess
import time

import pytest

from helpers import (connect, connections_to, free_port, greet, recv_exact, recv_until_eof,
                     request, socks_connect, socks_open, start_client, start_server, wait_until,
                     CMD_CONNECT)

LOOPBACK = ["--allow", "127.0.0.0/8"]


def test_sigterm_with_work_in_flight(procs, tunnel, echo, black_hole):
    # SIGTERM must end both processes promptly with status 0 and no leak or
    # other sanitizer report, whatever their connections are doing: an
    # established relay, a half-done SOCKS5 negotiation, a CONNECT the
    # server is still dialing, a failure reply lingering, and an
    # application gone while its CONNECT was pending.
    server, client = tunnel(server_args=LOOPBACK + ["--connect-timeout", "30s"])
    live = socks_open(client.socks, "127.0.0.1", echo)
    live.sendall(b"x")
    assert recv_exact(live, 1, "echo") == b"x"

    half = connect(client.socks)
    half.sendall(b"\x05\x01\x00\x05\x01")

    pending = connect(client.socks)
    assert greet(pending) == b"\x05\x00"
    pending.sendall(request(CMD_CONNECT, "127.0.0.1", black_hole))

    gone = connect(client.socks)
    assert greet(gone) == b"\x05\x00"
    gone.sendall(request(CMD_CONNECT, "127.0.0.1", black_hole))
    gone.close()

    failed, rep = socks_connect(client.socks, "127.0.0.1", free_port())
    assert rep[1] == 5  # refused; tt keeps the connection a moment to deliver this

    # Both dials to the black hole are under way on the server (two SYNs
    # waiting for an answer) before the signal.
    wait_until(lambda: connections_to(black_hole, "syn-sent") == 2, 10,
               "the server's two connects to the black hole")
    silent = connect(("127.0.0.1", server.port))  # a carrier connection with no header yet

    start = time.monotonic()
    for p in (client.proc, server.proc):
        rc = p.terminate_and_wait(timeout=15)
        assert rc == 0, "%s exited %d on SIGTERM:\n%s" % (p.name, rc, p.log())
    took = time.monotonic() - start
    assert took < 5, "shutting down took %.1fs" % took
    # The applications see their connections end.
    for s in (live, half, pending, failed, silent):
        recv_until_eof(s, 5)
        s.close()


def test_client_connect_timeout_to_server(procs, black_hole):
    # The tunnel server does not answer SYNs: after --connect-timeout the
    # application gets "general failure", not a hang.
    client = start_client(procs, "tcp://127.0.0.1:%d" % black_hole, ["--connect-timeout", "1s"])
    start = time.monotonic()
    s, rep = socks_connect(client.socks, "127.0.0.1", 80)
    took = time.monotonic() - start
    with s:
        assert rep[:2] == b"\x05\x01", rep
    assert 0.9 <= took < 5, "--connect-timeout 1s took %.2fs" % took


def test_client_open_timeout(procs):
    # The "server" accepts the carrier connection but never answers the
    # stream: --open-timeout bounds the wait for its answer.
    _, port = procs.peer("sink")
    client = start_client(procs, "tcp://127.0.0.1:%d" % port, ["--open-timeout", "1s"])
    start = time.monotonic()
    s, rep = socks_connect(client.socks, "127.0.0.1", 80)
    took = time.monotonic() - start
    with s:
        assert rep[0] == 5 and rep[1] != 0, rep
    assert 0.9 <= took < 5, "--open-timeout 1s took %.2fs" % took


def test_server_closes_silent_carrier_connection(procs):
    # A connection to the server that never sends a stream header is closed
    # after --handshake-timeout.
    server = start_server(procs, ["--handshake-timeout", "1s"])
    s = connect(("127.0.0.1", server.port))
    start = time.monotonic()
    with s:
        recv_until_eof(s, 10)
    took = time.monotonic() - start
    assert 0.9 <= took < 5, "--handshake-timeout 1s took %.2fs" % took


def test_server_survives_garbage(procs, netns, echo):
    # Random bytes on the server's port, closed cleanly or with a reset. In a
    # namespace, since they may form a header for any destination.
    server = start_server(procs, LOOPBACK, netns=netns)
    rng = random.Random(11)
    for i in range(60):
        s = connect(("127.0.0.1", server.port), netns=netns)
        with s:
            try:
                s.sendall(rng.randbytes(rng.choice([1, 2, 5, 30, 300, 3000])))
            except (BrokenPipeError, ConnectionResetError):
                continue
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                continue
            s.shutdown(socket.SHUT_WR)
            recv_until_eof(s, 15)
    # Still serving: a client in the namespace gets through it.
    _, echo_port = procs.peer("echo", netns=netns)
    client = start_client(procs, server.url, netns=netns)
    s = socks_open(client.socks, "127.0.0.1", echo_port, netns=netns)
    with s:
        s.sendall(b"after garbage")
        assert recv_exact(s, 13, "echo") == b"after garbage"


def test_backpressure_when_application_stops_reading(procs, tunnel):
    # The destination pushes data at an application that reads nothing. tt
    # must stop reading from the destination once its buffers are full
    # rather than queue without bound: the destination's writes must stall
    # long before 256 MB. Then everything arrives, in order, once read.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lst.settimeout(10)
    port = lst.getsockname()[1]
    _, client = tunnel(server_args=LOOPBACK)
    app = socks_open(client.socks, "127.0.0.1", port)
    dest, _ = lst.accept()
    lst.close()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    limit = 256
    sent = 0
    with app, dest:
        # A send that makes no progress for 2s means the pipe is full.
        dest.settimeout(2)
        try:
            while sent < limit * len(chunk):
                sent += dest.send(chunk)
        except socket.timeout:
            pass
        bound = 64 << 20
        assert sent < bound, \
            "the destination wrote %d MiB to an application that reads nothing" % (sent >> 20)
        # Now read it all back and check it.
        dest.shutdown(socket.SHUT_WR)
        app.settimeout(30)
        got = 0
        while True:
            data = app.recv(1 << 20)
            if not data:
                break
            expect = (bytes(range(256)) * ((len(data) >> 8) + 2))[got % 256:got % 256 + len(data)]
            assert data == expect, "corrupted at offset %d" % got
            got += len(data)
        assert got == sent


def test_client_out_of_file_descriptors(procs, echo):
    # The client runs out of descriptors (a low RLIMIT_NOFILE and many
    # applications at once). It must refuse what it cannot take, keep
    # serving what it has, and recover once descriptors are free again.
    server = start_server(procs, LOOPBACK)
    client = start_client(procs, server.url, prefix=["prlimit", "--nofile=40", "--"])
    first = socks_open(client.socks, "127.0.0.1", echo)
    crowd = [connect(client.socks) for _ in range(60)]
    for s in crowd:
        s.sendall(b"\x05\x01\x00")
    # Each one is either served (method selection) or turned away (closed);
    # none may be left hanging.
    served = 0
    for i, s in enumerate(crowd):
        try:
            got = s.recv(2)
        except ConnectionResetError:
            got = b""
        except socket.timeout:
            pytest.fail("application %d of the crowd neither served nor closed" % i)
        assert got in (b"\x05\x00", b""), got
        served += got == b"\x05\x00"
    assert served < len(crowd), "the descriptor limit was never reached; the test proves nothing"
    with first:
        first.sendall(b"still here")
        assert recv_exact(first, 10, "echo") == b"still here"
        for s in crowd:
            s.close()
        # Once the crowd is gone, new streams work again (each needs two
        # descriptors in the client; the crowd's may take a moment to be
        # reaped, so retry for a bounded time).
        def works():
            s, rep = socks_connect(client.socks, "127.0.0.1", echo)
            with s:
                if rep[1] != 0:
                    return False
                s.sendall(b"back")
                return recv_exact(s, 4, "echo") == b"back"
        wait_until(works, 20, "a new stream to work after the descriptor shortage")


# ---------------------------------------------------------------------------
# Forwards that cannot open: closing is their only signal


def test_forward_with_server_absent(procs):
    client = start_client(procs, "tcp://127.0.0.1:%d" % free_port(), socks=False,
                          forwards=["127.0.0.1:80"])
    s = connect(("127.0.0.1", client.forward_ports[0]))
    with s:
        got, _ = recv_until_eof(s, 10)
    assert got == b""


def test_forward_to_refused_destination(procs, tunnel, echo):
    # No --allow: the server refuses loopback, and the forward's application
    # sees its connection closed; the client's log says why.
    _, client = tunnel(socks=False, forwards=["127.0.0.1:%d" % echo])
    s = connect(("127.0.0.1", client.forward_ports[0]))
    with s:
        s.sendall(b"anyone?")
        got, _ = recv_until_eof(s, 10)
    assert got == b""
    client.proc.wait_log(r"forward to 127\.0\.0\.1:%d: not allowed" % echo)


def test_sigint_exits_cleanly(tunnel, echo):
    # As SIGTERM does (test_every_carrier.py).
    sig = signal.SIGINT
    server, client = tunnel(server_args=LOOPBACK)
    s = socks_open(client.socks, "127.0.0.1", echo)
    with s:
        for p in (client.proc, server.proc):
            p.popen.send_signal(sig)
            try:
                rc = p.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pytest.fail("%s still running 15s after %s" % (p.name, sig.name))
            assert rc == 0, "%s exited %d on %s:\n%s" % (p.name, rc, sig.name, p.log())
        recv_until_eof(s, 5)


# ---------------------------------------------------------------------------
# Applications that give up at any moment


async def abandon(socks_port, dest_port, rng):
    """One application: CONNECT to DEST_PORT, then vanish at a random point
    (before, during or after the reply, with a FIN or a reset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", socks_port)
    try:
        when = rng.choice(["greeting", "request", "reply", "data"])
        writer.write(b"\x05\x01\x00")
        if when == "greeting":
            return
        await reader.readexactly(2)
        writer.write(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + dest_port.to_bytes(2, "big"))
        if when == "request":
            # Random timing, to land the close at different points of the
            # open; nothing waits on it.
            await asyncio.sleep(rng.random() * 0.02)
            return
        reply = await asyncio.wait_for(reader.readexactly(10), 20)
        if when == "data" and reply[1] == 0:
            writer.write(b"x" * rng.randint(1, 100000))
            await asyncio.sleep(rng.random() * 0.01)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if rng.random() < 0.5:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()


def test_applications_abandoning_streams(procs, tunnel, echo, black_hole):
    # Hundreds of applications closing at random points of their streams, to
    # an echo server, a refused port and a port that never answers, all at
    # once. The processes must come through with no sanitizer report
    # (checked at teardown) and keep working.
    _, client = tunnel(server_args=LOOPBACK + ["--connect-timeout", "2s"])
    refused = free_port()
    rng = random.Random(5)

    async def storm():
        jobs = [abandon(client.socks_port, rng.choice([echo, refused, black_hole]), rng)
                for _ in range(300)]
        return await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), 120)

    results = asyncio.run(storm())
    unexpected = [r for r in results if isinstance(r, BaseException)]
    assert not unexpected, unexpected[:3]
    s = socks_open(client.socks, "127.0.0.1", echo)
    with s:
        s.sendall(b"after the storm")
        assert recv_exact(s, 15, "echo") == b"after the storm"
