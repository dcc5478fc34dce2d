"""Every SOCKS5 reply code tt gives, each provoked for real and read off a
raw socket. Cases that would send packets off the machine (unroutable
addresses, DNS) run in a network namespace of the test's own. General
failure (no server), refused, not allowed and the connect timeout, over
every carrier, are in test_every_carrier.py."""

import socket
import struct
import time

import pytest

from helpers import (ATYP_UNSUPPORTED, CMD_BIND, CMD_UDP, CMD_UNSUPPORTED, GENERAL, HOST_UNREACH,
                     NET_UNREACH, NOT_ALLOWED, TTL_EXPIRED, connect, expect_reply, free_port,
                     greet, read_reply, recv_until_eof, request, socks_connect, start_client)

LOOPBACK = ["--allow", "127.0.0.0/8"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "localhost", "::1",
                                  "::ffff:127.0.0.1"])
def test_02_loopback_not_allowed_by_default(tunnel, echo, host):
    # Without --allow the server refuses its own loopback, by address, by
    # name, in IPv6 and as an IPv4-mapped IPv6 address.
    _, client = tunnel()
    expect_reply(client.socks, host, echo, NOT_ALLOWED)


# Ways to name the server's own host. In a namespace, where a name that
# slipped through could reach nothing else, and an echo server listens on
# every local address, so that a miss would show as a success.
LOCAL_SPELLINGS = [
    "127.0.0.1", "127.0.0.2", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
    "0.0.0.0", "0", "localhost", "LOCALHOST",
    "::1", "0:0:0:0:0:0:0:1", "::", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:0.0.0.0",
    "64:ff9b::7f00:1",  # NAT64 for 127.0.0.1
    "2002:7f00:1::",    # 6to4 for 127.0.0.1
]


@pytest.mark.parametrize("as_name", [False, True], ids=["address", "name"])
def test_02_local_host_in_any_spelling(procs, netns, tunnel, as_name):
    _, port = procs.peer("echo", host="any", netns=netns)
    _, client = tunnel(netns=netns)
    wrong = {}
    for host in LOCAL_SPELLINGS:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            literal = True
        except OSError:
            literal = False
        if as_name:
            # The same text as a domain name (ATYP 3), resolved by the server.
            s = connect(client.socks, netns=netns)
            assert greet(s) == b"\x05\x00"
            b = host.encode()
            s.sendall(b"\x05\x01\x00\x03" + bytes([len(b)]) + b + struct.pack(">H", port))
            reply = read_reply(s)
        elif literal:
            s, reply = socks_connect(client.socks, host, port, netns=netns)
        else:
            continue
        with s:
            if reply[:2] != bytes([5, NOT_ALLOWED]):
                wrong[host] = "0x%02x" % reply[1]
    assert not wrong, "not refused as the server's own host (reply codes): %s" % wrong


def test_02_deny_beats_allow(procs, tunnel):
    # 127.0.0.1 is both allowed (127.0.0.0/8) and denied (127.0.0.1/32): the
    # deny wins, while the rest of the allowed range stays reachable.
    _, port1 = procs.peer("echo", host="127.0.0.1")
    _, port2 = procs.peer("echo", host="127.0.0.2")
    _, client = tunnel(server_args=["--allow", "127.0.0.0/8", "--deny", "127.0.0.1/32"])
    expect_reply(client.socks, "127.0.0.1", port1, NOT_ALLOWED)
    expect_reply(client.socks, "localhost", port1, NOT_ALLOWED)
    s, reply = socks_connect(client.socks, "127.0.0.2", port2)
    with s:
        assert reply[:2] == b"\x05\x00", "127.0.0.2 is allowed and not denied: %r" % reply
        s.sendall(b"ok?")
        assert s.recv(3) == b"ok?"


def test_03_network_unreachable(netns, tunnel):
    # In the namespace only lo is up: there is no route to 198.51.100.0/24,
    # so connect() fails at once with ENETUNREACH.
    _, client = tunnel(server_args=["--allow", "198.51.100.0/24"], netns=netns)
    expect_reply(client.socks, "198.51.100.1", 80, NET_UNREACH, netns=netns)


def test_04_host_unreachable(netns, tunnel):
    # An "unreachable" route makes connect() fail with EHOSTUNREACH.
    netns.ip("route", "add", "unreachable", "203.0.113.0/24")
    _, client = tunnel(server_args=["--allow", "203.0.113.0/24"], netns=netns)
    expect_reply(client.socks, "203.0.113.1", 80, HOST_UNREACH, netns=netns)


def test_04_name_does_not_resolve(netns, tunnel):
    # The namespace's resolver is 127.0.0.1, where nothing answers.
    _, client = tunnel(netns=netns)
    expect_reply(client.socks, "no-such-host.invalid", 80, HOST_UNREACH, netns=netns)


@pytest.mark.parametrize("cmd", [CMD_BIND, CMD_UDP, 0x7F], ids=["BIND", "UDP-ASSOCIATE", "unknown"])
def test_07_command_not_supported(tunnel, echo, cmd):
    _, client = tunnel(server_args=LOOPBACK)
    s = connect(client.socks)
    with s:
        assert greet(s) == b"\x05\x00"
        s.sendall(request(cmd, "127.0.0.1", echo))
        reply = read_reply(s)
        assert reply[:3] == bytes([5, CMD_UNSUPPORTED, 0]), "reply %r" % reply
        assert recv_until_eof(s, 10)[0] == b""


def test_08_address_type_not_supported(tunnel):
    _, client = tunnel(server_args=LOOPBACK)
    s = connect(client.socks)
    with s:
        assert greet(s) == b"\x05\x00"
        # ATYP 0x05 does not exist.
        s.sendall(b"\x05\x01\x00\x05" + b"\x7f\x00\x00\x01" + struct.pack(">H", 80))
        reply = read_reply(s)
        assert reply[:3] == bytes([5, ATYP_UNSUPPORTED, 0]), "reply %r" % reply
        assert recv_until_eof(s, 10)[0] == b""


def test_06_resolution_timeout(netns, tunnel):
    # --connect-timeout also bounds name resolution. The namespace's
    # resolver, 127.0.0.1:53, receives the query and never answers (glibc
    # would wait 5s per try); the reply must come after the 1s limit.
    dns = netns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with dns:
        with netns.entered():
            dns.bind(("127.0.0.1", 53))
        _, client = tunnel(server_args=["--connect-timeout", "1s"], netns=netns)
        start = time.monotonic()
        expect_reply(client.socks, "slow.example", 80, TTL_EXPIRED, netns=netns)
        took = time.monotonic() - start
        assert 0.9 <= took < 4, "the 1s connect timeout on resolving took %.2fs" % took
        # The query did reach the silent resolver (so this was a resolution
        # timeout, not something else).
        dns.settimeout(1)
        assert b"slow" in dns.recv(512)


def test_01_tunnel_server_name_does_not_resolve(procs, netns):
    client = start_client(procs, "tcp://no-such-server.invalid:%d" % free_port(), netns=netns)
    expect_reply(client.socks, "127.0.0.1", 80, GENERAL, netns=netns)
