"""Volume and concurrency: 100 MB each way through a -L forward, compared
byte for byte, and 200 SOCKS5 streams at once, each checked."""

import asyncio
import hashlib
import random
import socket
import subprocess

from helpers import connect, recv_until_eof

LOOPBACK = ["--allow", "127.0.0.0/8"]
MB = 1 << 20


def test_download_100mb_through_forward(tunnel, nginx, big_file):
    dest = "127.0.0.1:%d" % nginx.port
    _, client = tunnel(server_args=LOOPBACK, socks=False, forwards=[dest])
    url = "http://127.0.0.1:%d/%s" % (client.forward_ports[0], big_file.name)
    # curl writes the body to a pipe that is hashed as it arrives.
    p = subprocess.Popen(["curl", "-sS", "--max-time", "240", url], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    h = hashlib.sha256()
    n = 0
    try:
        while True:
            chunk = p.stdout.read(MB)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0, "curl failed (%d): %s" % (rc, p.stderr.read().decode())
    assert n == big_file.size
    assert h.hexdigest() == big_file.sha256


def test_upload_100mb_through_forward(procs, tunnel):
    # The sink answers with the sha256 and length of what it read, after our
    # EOF, so the answer also proves the half-close reached it.
    _, sink_port = procs.peer("sink")
    _, client = tunnel(server_args=LOOPBACK, socks=False, forwards=["127.0.0.1:%d" % sink_port])
    rng = random.Random(2024)
    h = hashlib.sha256()
    s = connect(("127.0.0.1", client.forward_ports[0]), timeout=60)
    with s:
        for _ in range(100):
            chunk = rng.randbytes(MB)
            h.update(chunk)
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        answer, how = recv_until_eof(s, 60)
    assert how == "eof"
    assert answer.decode() == "%s %d\n" % (h.hexdigest(), 100 * MB)


# ---------------------------------------------------------------------------
# 200 concurrent streams

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


async def all_streams(socks_port, echo_port):
    tasks = [one_stream(socks_port, echo_port, i) for i in range(N_STREAMS)]
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 180)


def test_200_concurrent_socks_streams(tunnel, echo):
    _, client = tunnel(server_args=LOOPBACK)
    results = asyncio.run(all_streams(client.socks_port, echo))
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, "%d of %d streams failed, e.g. %r" % (len(failures), N_STREAMS, failures[:3])
    bad = [i for i, sent, got in results if got != sent]
    assert not bad, "streams %s came back different (first: %d bytes back)" % (
        bad[:10], len(results[bad[0]][2]))
