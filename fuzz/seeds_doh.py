#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_doh (fuzz/corpus/doh/): HTTP/2 flights a
DoH resolver sends, framed for the harness as fuzz/fuzz_doh.c describes (a
settings byte, then chunks behind a length byte; a zero length submits one
more query). Frames and HPACK are written out by hand here (RFC 9113 and
RFC 7541), independently of nghttp2. Run from anywhere; the files are
checked in, so this runs only when the layout changes."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "doh")

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 1, 1, 4
CTYPE = b"application/dns-message"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream) + payload


def lit(index, value):
    """A literal header with incremental indexing and an indexed name
    (index < 63), its value not Huffman-coded (< 127 bytes)."""
    return bytes([0x40 | index, len(value)]) + value


STATUS = {200: b"\x88", 404: b"\x8d", 500: b"\x8e"}


def response(stream, status=200, ctype=CTYPE, body=b"\x12\x34answer", end=True):
    block = STATUS[status] + (lit(31, ctype) if ctype else b"")
    out = frame(HEADERS, END_HEADERS, stream, block)
    if body is not None:
        out += frame(DATA, END_STREAM if end else 0, stream, body)
    return out


PREFACE = frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0)


def chunks(data, size=255):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += bytes([len(part)]) + part
    return out


SEEDS = {
    "one_answer": bytes([1]) + chunks(PREFACE + response(1)),
    "two_answers_out_of_order": bytes([2]) + chunks(PREFACE + response(3) + response(1)),
    "byte_by_byte": bytes([1]) + chunks(PREFACE + response(1), 1),
    "status_404": bytes([1]) + chunks(PREFACE + response(1, 404, b"text/html", b"<p>no</p>")),
    "no_content_type": bytes([1]) + chunks(PREFACE + response(1, ctype=None)),
    "empty_body": bytes([1]) + chunks(PREFACE + response(1, body=b"")),
    "too_long": bytes([0x08 | 1]) + chunks(PREFACE + response(1, body=bytes(40))),
    "reset": bytes([2]) + chunks(PREFACE + frame(RST, 0, 1, struct.pack(">I", 2)) +
                                 response(3)),
    "goaway_after_first": bytes([3]) + chunks(
        PREFACE + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)) + response(1)) + b"\x00",
    "stream_limit_one": bytes([0x10 | 4]) + chunks(
        frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 1)) + frame(SETTINGS, ACK, 0) +
        response(1)) + chunks(response(3)) + b"\x00" + chunks(response(5)),
    "ping_and_window": bytes([1]) + chunks(
        PREFACE + frame(PING, 0, 0, bytes(8)) + frame(WINDOW, 0, 0, struct.pack(">I", 1000)) +
        response(1)),
    "headers_then_data_later": bytes([1]) + chunks(PREFACE + response(1, body=b"\x12", end=False))
    + chunks(frame(DATA, END_STREAM, 1, b"\x34rest")),
    "http1_answer": bytes([1]) + chunks(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
    "data_on_unknown_stream": bytes([1]) + chunks(PREFACE + frame(DATA, END_STREAM, 7, b"x")),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
