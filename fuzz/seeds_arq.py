#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_arq (fuzz/corpus/arq/): scripts for the
harness's two engines, in the layout fuzz/fuzz_arq.c describes. Run from
the repository's root; the files are checked in, so this runs only when the
layout changes."""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "arq")


def u16(v):
    return bytes([v >> 8, v & 0xFF])


def a_poll(mx, flags):
    return bytes([1, mx, flags])


def b_poll(mx):
    return bytes([2, mx, 0])


def a_write(n):
    return bytes([3, n])


def a_read(n):
    return bytes([4]) + u16(n)


def tick(dt):
    return bytes([5]) + u16(dt)


def raw(pkt):
    return bytes([0]) + u16(len(pkt)) + pkt


def exchange(rounds, mx=255, flags=2, dt=100):
    s = b""
    for _ in range(rounds):
        s += a_poll(mx, flags) + a_poll(mx, flags) + b_poll(mx) + tick(dt) + a_read(65535)
    return s


seeds = {
    "exchange": b"\x00" + a_write(200) + bytes([7, 100]) + exchange(20)
    + a_write(255) + bytes([7, 0]) + exchange(20),
    "small_buffers_small_packets": b"\x03" + a_write(250) + bytes([7, 250])
    + exchange(40, mx=20),
    "lossy": b"\x00" + a_write(200) + b"".join(
        a_poll(200, 0) + a_poll(200, 2) + b_poll(200) + tick(300) for _ in range(30)),
    "flipped": b"\x00" + a_write(100) + exchange(10, flags=2 | 4 | (3 << 3)),
    "silence": b"\x00" + a_write(100) + a_poll(255, 0) + a_poll(255, 0)
    + b"".join(tick(0xFFFF) + a_poll(255, 0) for _ in range(12)) + exchange(10),
    "ping": b"\x00" + bytes([6]) + a_poll(10, 2) + b_poll(10) + tick(10),
    "raw": b"\x00" + raw(b"\x00\x04\x00\x05hello") + raw(b"\x01\x05\x05\x00")
    + raw(b"\x02\x02\x00\x00\x00\x40\x00\x00") + raw(b"\x03\x01\x01")
    + raw(b"\x04\x04\x80\x00\x40\x00\x01x") + a_read(100) + raw(b"\x05\x06\x01")
    + raw(b"\x06\x02\x00\x00\x00\x3f\x01\x00\x01") + a_poll(255, 1),
    "reset": b"\x00" + a_write(100) + exchange(3) + raw(b"\x09\x08\x01") + exchange(3),
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
