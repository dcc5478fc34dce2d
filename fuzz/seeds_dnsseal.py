#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_dnsseal (fuzz/corpus/dnsseal/): scripts
in the layout fuzz/fuzz_dnsseal.c describes. Run from the repository's
root; the files are checked in, so this runs only when the layout
changes."""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "dnsseal")

HELLO = bytes([0x00, 0x04, 0x00, 0x05]) + b"hello"  # PN 0, DATA at 0, "hello"
PING = bytes([0x05, 0x01])
RESET = bytes([0x07, 0x08, 0x01])
ACK = bytes([0x01, 0x02, 0x00, 0x00, 0x00, 0x7f, 0xff, 0x00])  # nothing held yet


def sealed(ident, salt, pkt):
    return bytes([0, ident, salt, len(pkt)]) + pkt


def raw(ident, data):
    return bytes([1, ident, len(data)]) + data


def answer(slot, datagrams):
    s = bytes([2, slot, len(datagrams)])
    for kind, d in datagrams:
        s += bytes([kind, len(d)]) + d
    return s


def server_op(i, what):
    return bytes([4, i, what])


seeds = {
    "new_connection": sealed(0, 0, HELLO) + server_op(0, 0) + sealed(0, 0, ACK)
    + server_op(0, 1) + bytes([6]),
    "stale_stamp": sealed(1, 3, PING) + sealed(2, 4, HELLO) + sealed(1, 5, HELLO),
    "ended_then_again": sealed(0, 1, HELLO) + server_op(0, 3) + sealed(0, 1, PING)
    + sealed(0, 1, RESET),
    "raw": raw(0, bytes(range(40))) + raw(1, b"\x00" * 8 + b"\x01\x02") + raw(2, b""),
    "client_answers": bytes([3, 2]) + answer(0, [(1, PING), (1, ACK), (0, b"junk")])
    + answer(3, [(3, PING)]) + bytes([7]) + answer(1, [(1, RESET)]),
    "client_abort": bytes([3, 40]) + bytes([5]) + answer(0, [(1, PING)]),
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
