#!/usr/bin/python3
"""Writes the raw-mode seeds of fuzz_ttframe (fuzz/corpus/ttframe/raw_*) that
hold real frames: sealed under the harness's fixed key by the independent
tt/1 implementation in tests/vectors/tt1_vectors.py, so that the reader's
paths for frames that authenticate (and for forged ones over the limits) are
in the corpus. Layout: MODE(1) MAX(2) K(1) SIZES(K) STREAM (see the harness).
Run with Debian's python3-cryptography after a change to the frame format:
/usr/bin/python3 fuzz/seeds_ttframe.py [DIR] (default fuzz/corpus/ttframe)."""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "vectors"))
from tt1_vectors import Sealer  # noqa: E402

KEY = bytes([0x74, 0x74, 0x2F, 0x31, 0x20, 0x66, 0x75, 0x7A, 0x7A, 0x20, 0x6B, 0x65, 0x79, 0x00]) + bytes(range(1, 0x13))
CHACHA, AES = 0x00, 0x02
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "ttframe")


def seed(name, mode, max_data, sizes, frames, cut=None):
    alg = "aes-256-gcm" if mode & 2 else "chacha20-poly1305"
    s = Sealer(alg, KEY)
    stream = b"".join(s.frame(t, d, p) for t, d, p in frames)
    if cut is not None:
        stream = stream[:cut]
    data = bytes([mode]) + struct.pack(">H", max_data) + bytes([len(sizes)]) + bytes(sizes) + stream
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    seed("raw_aes_chunks_trim", AES, 16384, [0x05, 0x15, 0x81, 0x03],
         [(0, b"x" * 300, 31), (0, b"", 0), (1, b"", 7)])
    seed("raw_data_fin_bytewise", CHACHA, 16384, [0x01], [(0, b"hello", 3), (1, b"", 0)])
    seed("raw_data_fin_whole", CHACHA, 16384, [], [(0, b"hello", 0), (1, b"", 0)])
    seed("raw_fin_with_data", AES, 16384, [], [(1, b"z", 0)])
    seed("raw_over_max_data", CHACHA, 4, [], [(0, b"hello", 0)])
    seed("raw_truncated", CHACHA, 16384, [], [(0, b"hello!", 0)], cut=5 + 9)
    seed("raw_type_2", CHACHA, 16384, [], [(2, b"", 0)])
    # Frames from the second keystream block of header masks.
    seed("raw_many_frames", AES, 16384, [0x07], [(0, bytes([i]) * (i % 5), i % 4) for i in range(40)] + [(1, b"", 0)])


if __name__ == "__main__":
    main()
