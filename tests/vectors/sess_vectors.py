#!/usr/bin/python3
"""An independent implementation of the session join of docs/SESSION.md
(python3-cryptography and the standard library), which prints its test
vectors: `sess_vectors.py` writes the Markdown block that docs/SESSION.md
carries, and tests/unit/test_sess.c checks the C codec against the same
values."""

import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PSK = bytes(range(32))
SID = bytes(range(0x10, 0x20))
NONCE = bytes(range(0x20, 0x30))
TIME_MS = 1700000000000


def join_key(psk):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tt-session-v1",
                info=b"join").derive(psk)


def join(key, flags, sid, nonce, time_ms, counter, offset):
    body = bytes([0xF5, 0x74, 0x73, 0x01, flags]) + sid + nonce
    body += struct.pack(">QIQ", time_ms, counter, offset)
    return body + hmac.new(key, body, "sha256").digest()[:16]


def joined(key, status, offset, join_mac):
    head = bytes([status, 0]) + struct.pack(">Q", offset)
    return head + hmac.new(key, b"tt-session joined" + join_mac + head, "sha256").digest()[:16]


def vectors():
    k = join_key(PSK)
    j_new = join(k, 0x00, SID, NONCE, TIME_MS, 0, 0)
    j_re = join(k, 0x01, SID, NONCE, TIME_MS, 3, 123456789)
    a_ok = joined(k, 0, 987654321, j_re[57:])
    a_unknown = joined(k, 1, 0, j_re[57:])
    return [("psk", PSK), ("join key", k), ("JOIN, new session", j_new),
            ("JOIN, rejoin (counter 3, offset 123456789)", j_re),
            ("JOINED to the rejoin: ok, offset 987654321", a_ok),
            ("JOINED to the rejoin: unknown session", a_unknown)]


if __name__ == "__main__":
    print("```")
    for name, v in vectors():
        print("%s:" % name)
        print("  " + v.hex())
    print("```")
