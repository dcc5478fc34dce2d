#!/usr/bin/python3
"""Small TCP servers for tt's end-to-end tests, where no Debian program fits.

  peers.py MODE --host HOST [--port PORT] [options]

Modes:
  echo       sends back everything it reads; half-closes after the peer does.
  sink       reads to EOF, then answers "<sha256> <length>\\n" and closes.
  halfclose  reads to EOF, then answers "<sha256> <length> <n> <body-sha256>\\n"
             followed by an N-byte body (--body-size), and closes. It answers
             only after EOF, so the answer travels after the client's SHUT_WR.
  reset      reads one chunk, echoes it, then aborts the connection with a
             reset (SO_LINGER 0) instead of a FIN.
  banner     sends --banner text plus a newline as soon as a client connects,
             before reading anything, then echoes like `echo`.

HOST "any" listens on every address, IPv4 and IPv6. Logs
"listening on HOST port PORT" to stderr once it accepts connections
(PORT 0, the default, lets the kernel choose). SIGTERM ends it with status 0.
"""

import argparse
import asyncio
import hashlib
import random
import signal
import socket
import struct
import sys


async def echo(reader, writer, args):
    while True:
        data = await reader.read(1 << 16)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    await writer.drain()


async def read_all_hashed(reader):
    h = hashlib.sha256()
    n = 0
    while True:
        data = await reader.read(1 << 18)
        if not data:
            return h.hexdigest(), n
        h.update(data)
        n += len(data)


async def sink(reader, writer, args):
    digest, n = await read_all_hashed(reader)
    writer.write(("%s %d\n" % (digest, n)).encode())
    await writer.drain()


def body_bytes(size, seed=1):
    return random.Random(seed).randbytes(size)


async def halfclose(reader, writer, args):
    digest, n = await read_all_hashed(reader)
    body = body_bytes(args.body_size)
    head = "%s %d %d %s\n" % (digest, n, len(body), hashlib.sha256(body).hexdigest())
    writer.write(head.encode())
    for i in range(0, len(body), 1 << 16):
        writer.write(body[i:i + (1 << 16)])
        await writer.drain()


async def banner(reader, writer, args):
    writer.write(args.banner.encode() + b"\n")
    await writer.drain()
    await echo(reader, writer, args)


async def reset(reader, writer, args):
    data = await reader.read(1 << 16)
    writer.write(data)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


MODES = {"echo": echo, "sink": sink, "halfclose": halfclose, "banner": banner, "reset": reset}


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--body-size", type=int, default=1 << 20)
    ap.add_argument("--banner", default="HELLO")
    args = ap.parse_args()
    handler = MODES[args.mode]

    async def on_conn(reader, writer):
        try:
            await handler(reader, writer, args)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    host = None if args.host == "any" else args.host
    server = await asyncio.start_server(on_conn, host, args.port, backlog=1024,
                                        limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    print("listening on %s port %d" % (args.host, port), file=sys.stderr, flush=True)
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main())
