#!/usr/bin/env python3
"""Writes the seeds of fuzz_dnstun for the dense spellings (fuzz/corpus/dnstun/):
queries under t.ex in base64 and base128 names with their check, one with
a letter's case flipped (the check fails), and a probe. Run from the
repository's root; the files are checked in, so this runs only when the
wire changes (src/codec/dnstun.h)."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "dnstun")
B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
B32 = b"abcdefghijklmnopqrstuvwxyz234567"


def char(bits, v):
    if bits == 5:
        return B32[v]
    return B64[v] if v < 64 else 0xC0 + v - 64


def spell(bits, raw):
    acc = nbits = 0
    out = bytearray()
    for b in raw:
        acc = acc << 8 | b
        nbits += 8
        while nbits >= bits:
            nbits -= bits
            out.append(char(bits, (acc >> nbits) & ((1 << bits) - 1)))
    if nbits:
        out.append(char(bits, (acc << (bits - nbits)) & ((1 << bits) - 1)))
    return bytes(out)


def check16(raw):
    a = b = 0
    for x in raw:
        a = (a + x) % 255
        b = (b + a) % 255
    return struct.pack(">H", b << 8 | a)


def labels(text):
    return b"".join(bytes([len(text[i:i + 63])]) + text[i:i + 63] for i in range(0, len(text), 63))


def query(prefix, qtype=16):
    head = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 1)
    opt = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return head + prefix + b"\x01t\x02ex\x00" + struct.pack(">HH", qtype, 1) + opt


def dense(marker, bits, payload):
    raw = struct.pack(">II", 0x01020304, 0x05060708) + payload
    return labels(marker + spell(bits, raw + check16(raw)))


def main():
    data = bytes(range(200))
    seeds = {
        "query_b64": query(dense(b"8", 6, data[:150])),
        "query_b128": query(dense(b"9", 7, data[:180]), 10),
        "query_b64_poll": query(dense(b"8", 6, b"")),
    }
    flipped = bytearray(seeds["query_b64"])
    i = flipped.index(b"A", 13)
    flipped[i] = ord("a")
    seeds["query_b64_flipped"] = bytes(flipped)
    nonce = spell(5, struct.pack(">I", 7))
    pat = bytes([62]) + B64[:62] + bytes([34]) + b"-_" + bytes(range(0xC0, 0xE0))
    pat += bytes([32]) + bytes(range(0xE0, 0x100))
    seeds["query_probe"] = query(bytes([8]) + b"0" + nonce + pat)
    for name, msg in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(msg)


if __name__ == "__main__":
    main()
