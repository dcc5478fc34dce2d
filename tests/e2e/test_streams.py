"""How a stream behaves over its life: a destination that speaks first, idle
timeouts, and the tunnel server vanishing. (Half-close over every carrier
is in test_every_carrier.py.)"""

import hashlib
import os
import socket
import struct
import time

import pytest

from helpers import recv_exact, recv_until_eof, socks_connect, socks_open, start_client

LOOPBACK = ["--allow", "127.0.0.0/8"]


def test_destination_speaks_first(procs, tunnel):
    # A banner (think SMTP or SSH) must reach the application although it
    # has sent nothing after its CONNECT.
    _, port = procs.peer("banner", "--banner", "220 banner from the destination")
    _, client = tunnel(server_args=LOOPBACK)
    s = socks_open(client.socks, "127.0.0.1", port)
    with s:
        want = b"220 banner from the destination\n"
        assert recv_exact(s, len(want), "banner") == want


# ---------------------------------------------------------------------------
# Idle timeout


@pytest.mark.parametrize("where", ["both", "client", "server"])
def test_idle_stream_is_closed(tunnel, echo, where):
    # Either side's --timeout alone must close an idle stream; the
    # application sees the end.
    t = ["--timeout", "1s"]
    _, client = tunnel(server_args=LOOPBACK + (t if where in ("both", "server") else []),
                       client_args=t if where in ("both", "client") else [])
    s = socks_open(client.socks, "127.0.0.1", echo)
    with s:
        s.sendall(b"ping")
        assert recv_exact(s, 4, "echo") == b"ping"
        last_activity = time.monotonic()
        rest, _ = recv_until_eof(s, 10)
        idle = time.monotonic() - last_activity
    assert rest == b""
    # Not much earlier than the timeout (timers may round a little), and not
    # much later either.
    assert idle >= 0.9, "idle stream closed after only %.2fs with --timeout 1s" % idle
    assert idle < 4, "idle stream closed only after %.2fs with --timeout 1s" % idle


def test_active_stream_outlives_idle_timeout(tunnel, echo):
    # A stream that keeps moving data is not idle, however long it lasts.
    t = ["--timeout", "1s"]
    _, client = tunnel(server_args=LOOPBACK + t, client_args=t)
    s = socks_open(client.socks, "127.0.0.1", echo)
    start = time.monotonic()
    with s:
        i = 0
        while time.monotonic() - start < 3:
            msg = b"tick %04d" % i
            s.sendall(msg)
            assert recv_exact(s, len(msg), "echo after %.1fs" % (time.monotonic() - start)) == msg
            i += 1
            # Paces the traffic (one message every 0.3s, well inside the
            # 1s timeout); no synchronisation depends on it.
            time.sleep(0.3)


# ---------------------------------------------------------------------------
# The tunnel server going away


def test_server_killed_mid_stream(tunnel, echo):
    server, client = tunnel(server_args=LOOPBACK)
    s = socks_open(client.socks, "127.0.0.1", echo)
    with s:
        s.sendall(b"before")
        assert recv_exact(s, 6, "echo") == b"before"
        server.proc.kill()
        # The application's connection must end (EOF or reset), not hang.
        _, how = recv_until_eof(s, 10)
        assert how in ("eof", "reset")
    # The client survives, and new streams now get "general failure".
    s, rep = socks_connect(client.socks, "127.0.0.1", echo)
    with s:
        assert rep[:2] == b"\x05\x01"


def test_client_killed_mid_stream(procs, tunnel, echo):
    # The other way round: the tunnel client vanishes; the destination's
    # connection must end, and the server must go on serving.
    lst = socket.create_server(("127.0.0.1", 0))
    lst.settimeout(10)
    server, client = tunnel(server_args=LOOPBACK)
    app = socks_open(client.socks, "127.0.0.1", lst.getsockname()[1])
    dest, _ = lst.accept()
    lst.close()
    with app, dest:
        app.sendall(b"hello")
        assert recv_exact(dest, 5, "data at the destination") == b"hello"
        client.proc.kill()
        _, how = recv_until_eof(dest, 10)
        assert how in ("eof", "reset")
    client2 = start_client(procs, server.url, name="tt-client-2")
    s = socks_open(client2.socks, "127.0.0.1", echo)
    with s:
        s.sendall(b"again")
        assert recv_exact(s, 5, "echo") == b"again"


# ---------------------------------------------------------------------------
# Resets and all-at-once clients


def test_destination_reset_ends_application_connection(procs, tunnel):
    _, port = procs.peer("reset")
    _, client = tunnel(server_args=LOOPBACK)
    s = socks_open(client.socks, "127.0.0.1", port)
    with s:
        s.sendall(b"one chunk")
        # The echo may or may not arrive before the reset is carried over; the
        # connection must end either way.
        got, how = recv_until_eof(s, 10)
        assert got in (b"", b"one chunk")


def test_application_reset_ends_destination_connection(tunnel):
    lst = socket.create_server(("127.0.0.1", 0))
    lst.settimeout(10)
    _, client = tunnel(server_args=LOOPBACK)
    app = socks_open(client.socks, "127.0.0.1", lst.getsockname()[1])
    dest, _ = lst.accept()
    lst.close()
    with dest:
        app.sendall(b"bye")
        assert recv_exact(dest, 3, "data at the destination") == b"bye"
        app.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        app.close()
        _, how = recv_until_eof(dest, 10)
        assert how in ("eof", "reset")


def test_request_payload_and_fin_in_one_go(procs, tunnel):
    # An application that sends the greeting, the CONNECT, its whole request
    # and its FIN before tt has answered anything must still get the full
    # answer: the FIN must not overtake the payload or be lost.
    _, port = procs.peer("halfclose", "--body-size", 100000)
    _, client = tunnel(server_args=LOOPBACK)
    payload = os.urandom(3000)
    s = socket.create_connection(client.socks, timeout=10)
    with s:
        s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", port)
                  + payload)
        s.shutdown(socket.SHUT_WR)
        assert recv_exact(s, 2, "method selection") == b"\x05\x00"
        assert recv_exact(s, 10, "CONNECT reply")[:2] == b"\x05\x00"
        answer, how = recv_until_eof(s, 10)
    head, _, body = answer.partition(b"\n")
    digest, n, body_len, body_digest = head.decode().split()
    assert (digest, int(n)) == (hashlib.sha256(payload).hexdigest(), len(payload))
    assert len(body) == int(body_len) and hashlib.sha256(body).hexdigest() == body_digest
