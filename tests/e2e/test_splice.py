"""The relay's zero-copy path (splice(2), src/link/splice.c): a stream
between two plain TCP sockets that carries more than 128 KiB is handed to
the kernel. These tests run the tcp:// carrier, where both ends' relays
splice (client: application <-> carrier; server: carrier <-> destination),
and check that the spliced path keeps the relay's rules: bytes exact both
ways, half-close, backpressure with bounded memory against a reader that
never reads, and a reset passed on as a reset. Each test first proves that
its stream was spliced (the relay's debug line says so), so none can pass
on the copying path alone; TT_SPLICE=0 turns splicing off and the same
line then says nothing of it."""

import hashlib
import os
import re
import select
import socket
import struct
import threading

import pytest

from helpers import TCP, recv_exact, recv_until_eof, socks_open, start_client_of, start_server

MB = 1 << 20
DEBUG = ["--log-level", "debug"]
LOOPBACK = ["--allow", "127.0.0.0/8"]
CLOSED = re.compile(r"closed \(([^)]*)\) after [\d.]+ s, (\d+) bytes up, (\d+) bytes down(, spliced)?")


def tunnel(procs, env=None):
    server = start_server(procs, LOOPBACK + DEBUG, carrier=TCP)
    client = start_client_of(procs, server, DEBUG, env=env)
    return server, client


def relay_lines(proc, n, timeout=15):
    """The first N relay closing lines of PROC's log, once there are N."""
    proc.wait_log(r"(?s)(%s.*){%d}" % (CLOSED.pattern, n), timeout)
    return CLOSED.findall(proc.log())


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    return s


def test_bulk_both_ways_is_spliced_and_exact(procs, echo):
    """8 MiB each way through an echo server, compared by digest; both
    relays say they spliced."""
    server, client = tunnel(procs)
    data = os.urandom(8 * MB)
    with socks_open(client.socks, "127.0.0.1", echo, timeout=30) as s:
        t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        t.start()
        back, how = recv_until_eof(s, 30)
        t.join()
    assert how == "eof"
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), \
        "the echo differs from what was sent (%d of %d bytes)" % (len(back), len(data))
    for proc in (client.proc, server.proc):
        (reason, up, down, spliced), = relay_lines(proc, 1)
        assert reason == "done" and int(up) == int(down) == len(data)
        assert spliced, "%s: an 8 MiB stream between TCP sockets was not spliced" % proc.name


def test_splicing_can_be_turned_off(procs, echo):
    """TT_SPLICE=0 keeps the copying path (the A/B knob of bench/)."""
    env = dict(os.environ, TT_SPLICE="0")
    server = start_server(procs, LOOPBACK + DEBUG, carrier=TCP)
    client = start_client_of(procs, server, DEBUG, env=env)
    data = os.urandom(MB)
    with socks_open(client.socks, "127.0.0.1", echo, timeout=30) as s:
        s.sendall(data)
        assert recv_exact(s, len(data), "the echo") == data
    (_, _, _, spliced), = relay_lines(client.proc, 1)
    assert not spliced


def test_half_close_while_spliced(procs):
    """The application sends 4 MiB and its FIN; the destination reads to
    the EOF and only then answers with 4 MiB and closes. The answer arrives
    whole, followed by an EOF, through two spliced relays."""
    server, client = tunnel(procs)
    lst = listener()
    up, down = os.urandom(4 * MB), os.urandom(4 * MB)
    result = {}

    def destination():
        c, _ = lst.accept()
        with c:
            got, how = recv_until_eof(c, 30)
            result["got"], result["how"] = got, how
            c.sendall(down)

    t = threading.Thread(target=destination)
    t.start()
    with socks_open(client.socks, "127.0.0.1", lst.getsockname()[1], timeout=30) as s:
        s.sendall(up)
        s.shutdown(socket.SHUT_WR)
        answer, how = recv_until_eof(s, 30)
    t.join()
    lst.close()
    assert result["how"] == "eof" and result["got"] == up, "the upload or its FIN was lost"
    assert how == "eof", "the answer ended with a %s, not an EOF" % how
    assert answer == down
    for proc in (client.proc, server.proc):
        assert relay_lines(proc, 1)[0][3], "%s did not splice" % proc.name


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def test_reader_that_never_reads_stops_the_writer(procs):
    """A destination that accepts and never reads: the application's
    writes stop once the sockets' and the pipes' buffers are full (a few
    MiB, not the 512 MiB it tries), and neither tt process grows."""
    server, client = tunnel(procs)
    lst = listener()
    s = socks_open(client.socks, "127.0.0.1", lst.getsockname()[1], timeout=30)
    dest, _ = lst.accept()
    before = {p.name: rss_kib(p.pid) for p in (client.proc, server.proc)}
    s.setblocking(False)
    chunk = os.urandom(256 * 1024)
    sent = 0
    while sent < 512 * MB:
        # Writable again within 3 s means the tunnel is still taking bytes;
        # a tunnel that applies backpressure leaves the socket full.
        if not select.select([], [s], [], 3)[1]:
            break
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            pass
    assert sent < 128 * MB, "the tunnel took %d MiB for a reader that never reads" % (sent >> 20)
    for p in (client.proc, server.proc):
        grown = rss_kib(p.pid) - before[p.name]
        assert grown < 16 * 1024, "%s grew by %d KiB while stalled" % (p.name, grown)
    # The stalled stream is a spliced one, and reading resumes it.
    dest.setblocking(True)
    got = 0
    s.setblocking(True)
    s.shutdown(socket.SHUT_WR)
    while True:
        d = dest.recv(1 << 20)
        if not d:
            break
        got += len(d)
    assert got == sent
    s.close()
    dest.close()
    lst.close()
    for proc in (client.proc, server.proc):
        assert relay_lines(proc, 1)[0][3], "%s did not splice" % proc.name


def abort(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("who", ["destination", "application"])
def test_reset_is_passed_on_as_a_reset(procs, who):
    """Mid-stream, after 1 MiB has crossed (spliced), one end resets its
    connection: the other end sees a reset, not an EOF that would pass for
    a complete stream."""
    server, client = tunnel(procs)
    lst = listener()
    app = socks_open(client.socks, "127.0.0.1", lst.getsockname()[1], timeout=30)
    dest, _ = lst.accept()
    data = os.urandom(MB)
    app.sendall(data)
    assert recv_exact(dest, len(data), "the upload") == data
    victim = dest if who == "application" else app
    abort(app if who == "application" else dest)
    victim.settimeout(15)
    try:
        while victim.recv(1 << 16):
            pass
        end = "eof"
    except ConnectionResetError:
        end = "reset"
    victim.close()
    lst.close()
    assert end == "reset", "a reset by the %s reached the other end as an EOF" % who
    for proc in (client.proc, server.proc):
        (reason, _, _, spliced), = relay_lines(proc, 1)
        assert spliced, "%s did not splice" % proc.name
        assert reason != "done", "%s took the reset for a clean end" % proc.name


@pytest.mark.parametrize("direction", ["up", "down"])
def test_ssh_carrier_streams_are_spliced(procs, sshd, direction):
    """Over ssh:// the client's relay joins the application's socket and
    the ssh child's SOCKS5 port, both plain TCP: a bulk stream in either
    direction is spliced (the sink, ssh or the application, is often slower
    than its source, so the relay also tries when a queue drains), and its
    bytes arrive whole."""
    from test_ssh_carrier import ssh_client, ssh_pid
    client = ssh_client(procs, sshd, DEBUG)
    ssh_pid(client)
    lst = listener()
    data = os.urandom(8 * MB)
    with socks_open(client.socks, "127.0.0.1", lst.getsockname()[1], timeout=30) as s:
        dest, _ = lst.accept()
        with dest:
            src, dst = (s, dest) if direction == "up" else (dest, s)
            t = threading.Thread(target=lambda: (src.sendall(data), src.shutdown(socket.SHUT_WR)))
            t.start()
            got, how = recv_until_eof(dst, 30)
            t.join()
            assert how == "eof" and got == data
    lst.close()
    (_, up, down, spliced), = relay_lines(client.proc, 1)
    assert spliced, "an 8 MiB stream over ssh:// was not spliced"
