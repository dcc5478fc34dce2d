"""Malformed and oddly split SOCKS5 input on the client's proxy. None of it
may crash or hang tt (the `procs` teardown checks for a clean exit with no
sanitizer report); well-formed input must work however it is split.

Everything runs in a network namespace: random bytes can happen to form a
CONNECT to any address or name, and there nothing can leave the machine."""

import random
import socket
import struct
import time

import pytest

from helpers import (auth, connect, greet, read_reply, recv_exact, recv_until_eof, request,
                     CMD_CONNECT)

USER, PASSWORD = "user", "pass word"


@pytest.fixture
def ns_proxy(procs, netns, tunnel):
    """An echo server and a tunnel in a namespace; returns a function that
    gives (socks address, echo port) for a client with or without auth."""
    _, echo_port = procs.peer("echo", netns=netns)
    server_args = ["--allow", "127.0.0.0/8"]

    def make(with_auth=False, client_args=()):
        args = list(client_args)
        if with_auth:
            args += ["--socks-user", USER, "--socks-pass", PASSWORD]
        _, client = tunnel(server_args=server_args, client_args=args, netns=netns)
        return client.socks, echo_port

    return make


def ns_connect(netns, addr, nodelay=False):
    s = connect(addr, netns=netns)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def check_still_works(netns, socks, echo_port, with_auth=False):
    """A well-formed CONNECT through the same proxy still works."""
    s = ns_connect(netns, socks)
    with s:
        if with_auth:
            assert greet(s, (2,)) == b"\x05\x02"
            assert auth(s, USER, PASSWORD) == b"\x01\x00"
        else:
            assert greet(s, (0,)) == b"\x05\x00"
        s.sendall(request(CMD_CONNECT, "127.0.0.1", echo_port))
        assert read_reply(s)[:2] == b"\x05\x00"
        s.sendall(b"still alive")
        assert recv_exact(s, 11, "echo") == b"still alive"


def garbage_cases(rng, n):
    """Random bytes, some behind a valid prefix so they reach the later
    parsing stages (method selection, auth, request)."""
    prefixes = [b"", b"\x05", b"\x05\x01\x00", b"\x05\x01\x02", b"\x05\x02\x00\x02",
                b"\x05\x01\x00\x05\x01\x00", b"\x05\x01\x00\x05\x01\x00\x03",
                b"\x05\x01\x02\x01\x04user\x09pass word"]
    for i in range(n):
        body = rng.randbytes(rng.choice([1, 2, 3, 7, 20, 100, 300, 700, 4000]))
        yield rng.choice(prefixes) + body, rng.random() < 0.5


@pytest.mark.parametrize("with_auth", [False, True], ids=["noauth", "auth"])
def test_random_garbage(netns, ns_proxy, with_auth):
    socks, echo_port = ns_proxy(with_auth)
    rng = random.Random(7 if with_auth else 8)
    for data, abort in garbage_cases(rng, 80):
        s = ns_connect(netns, socks)
        with s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                continue  # tt already gave up on it, fine
            if abort:
                # Leave with a reset instead of a FIN.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                continue
            s.shutdown(socket.SHUT_WR)
            # tt must end the connection, whatever it makes of the bytes.
            recv_until_eof(s, 15)
    check_still_works(netns, socks, echo_port, with_auth)


TRUNCATED = [
    b"\x05",                                   # greeting: methods count missing
    b"\x05\x03\x00",                           # greeting: 2 of 3 methods missing
    b"\x05\x01\x00\x05",                       # request: only VER
    b"\x05\x01\x00\x05\x01\x00",               # request: no ATYP
    b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00",   # request: half an IPv4 address
    b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00",  # request: half a port
    b"\x05\x01\x00\x05\x01\x00\x03\x09local",  # request: name cut short
    b"\x05\x01\x00\x05\x01\x00\x04" + b"\x00" * 9,  # request: half an IPv6 address
]


@pytest.mark.parametrize("data", TRUNCATED, ids=range(len(TRUNCATED)))
def test_truncated_then_eof(netns, ns_proxy, data):
    # The application half-closes in the middle of a message: tt must close
    # too, promptly (the handshake timeout is the default 10s, so an answer
    # within 5s was not the timeout's doing).
    socks, echo_port = ns_proxy()
    s = ns_connect(netns, socks)
    with s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got, _ = recv_until_eof(s, 5)
    # At most the method selection came back: nothing was complete after it.
    assert got in (b"", b"\x05\x00"), got
    check_still_works(netns, socks, echo_port)


def test_truncated_auth_then_eof(netns, ns_proxy):
    socks, echo_port = ns_proxy(with_auth=True)
    s = ns_connect(netns, socks)
    with s:
        assert greet(s, (2,)) == b"\x05\x02"
        s.sendall(b"\x01\x04us")
        s.shutdown(socket.SHUT_WR)
        got, _ = recv_until_eof(s, 5)
    assert got == b""
    check_still_works(netns, socks, echo_port, with_auth=True)


def test_stalled_handshake_times_out(netns, ns_proxy):
    # A message cut short and then silence: --handshake-timeout ends it.
    socks, _ = ns_proxy(client_args=["--handshake-timeout", "1s"])
    s = ns_connect(netns, socks)
    with s:
        s.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f")
        assert recv_exact(s, 2, "method selection") == b"\x05\x00"
        start = time.monotonic()
        recv_until_eof(s, 10)
        took = time.monotonic() - start
    assert 0.9 <= took < 5, "--handshake-timeout 1s closed the connection after %.2fs" % took


def whole_exchange(with_auth, host, port, payload):
    msg = b"\x05\x01\x02" if with_auth else b"\x05\x01\x00"
    if with_auth:
        msg += b"\x01" + bytes([len(USER)]) + USER.encode() + bytes([len(PASSWORD)]) + PASSWORD.encode()
    return msg + request(CMD_CONNECT, host, port) + payload


def expected_answers(with_auth):
    return (b"\x05\x02\x01\x00" if with_auth else b"\x05\x00")


@pytest.mark.parametrize("with_auth", [False, True], ids=["noauth", "auth"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_one_byte_at_a_time(netns, ns_proxy, with_auth, host):
    # Each byte in its own write with Nagle off, so tt's parser meets every
    # message split at every position.
    socks, echo_port = ns_proxy(with_auth)
    payload = b"payload sent byte by byte"
    data = whole_exchange(with_auth, host, echo_port, payload)
    s = ns_connect(netns, socks, nodelay=True)
    with s:
        for i in range(len(data)):
            s.send(data[i:i + 1])
            # Paces the writes so that most bytes arrive in separate reads;
            # the outcome must not depend on it.
            time.sleep(0.002)
        head = expected_answers(with_auth)
        assert recv_exact(s, len(head), "method selection and auth status") == head
        assert read_reply(s)[:2] == b"\x05\x00"
        assert recv_exact(s, len(payload), "echo") == payload


@pytest.mark.parametrize("with_auth", [False, True], ids=["noauth", "auth"])
def test_everything_in_one_write(netns, ns_proxy, with_auth):
    # An optimistic client sends greeting, credentials, request and payload
    # without waiting for any answer; the payload must still arrive, once.
    socks, echo_port = ns_proxy(with_auth)
    payload = b"early payload"
    s = ns_connect(netns, socks)
    with s:
        s.sendall(whole_exchange(with_auth, "127.0.0.1", echo_port, payload))
        head = expected_answers(with_auth)
        assert recv_exact(s, len(head), "method selection and auth status") == head
        assert read_reply(s)[:2] == b"\x05\x00"
        assert recv_exact(s, len(payload), "echo") == payload
        s.shutdown(socket.SHUT_WR)
        rest, how = recv_until_eof(s, 10)
        assert (rest, how) == (b"", "eof")


def test_longest_name(netns, ns_proxy):
    # A 255-byte name, the most SOCKS5 can carry, is parsed and tried (and
    # fails to resolve in the namespace).
    socks, _ = ns_proxy()
    s = ns_connect(netns, socks)
    with s:
        assert greet(s) == b"\x05\x00"
        name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 63])
        assert len(name) == 255
        s.sendall(request(CMD_CONNECT, name, 80))
        reply = read_reply(s)
        assert reply[:2] == b"\x05\x04", reply
