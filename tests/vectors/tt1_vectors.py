#!/usr/bin/python3
"""An independent implementation of tt/1 (docs/PROTOCOL.md), written from the
specification with Python's cryptography package, that prints the values of
docs/tt1-vectors.md. tests/unit/test_ttproto.c checks the C codec against
those values; this script is how they were made (run it with Debian's
python3-cryptography: /usr/bin/python3 tests/vectors/tt1_vectors.py)."""

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PSK = bytes(range(0x00, 0x20))
SALT = bytes(range(0x20, 0x40))
CPRIV = bytes(range(0x40, 0x60))
SPRIV = bytes(range(0x60, 0x80))
TS = 1700000000
EARLY = bytes.fromhex("0100017f0000010050")  # open 127.0.0.1:80
REPLY = bytes.fromhex("0100")  # connected


def hkdf(ikm, salt, info):
    return HKDF(hashes.SHA256(), 32, salt, info).derive(ikm)


def hotp31(key, counter):
    """RFC 4226's dynamically truncated 31-bit value (HMAC-SHA1)."""
    mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    off = mac[19] & 0x0F
    return int.from_bytes(mac[off:off + 4], "big") & 0x7FFFFFFF


def slot_start(port_key, slot, interval_ms):
    """Hopping slot SLOT begins at SLOT * I + HOTP(port key, SLOT ^ 2^63) mod (I / 2) ms."""
    return slot * interval_ms + hotp31(port_key, slot ^ (1 << 63)) % (interval_ms // 2)


def pub(priv):
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(*raw)


def nonce(i, keystream=False):
    n = bytearray(i.to_bytes(12, "little"))
    if keystream:
        n[11] = 0x80
    return bytes(n)


class Sealer:
    """One key, its message counter and its header masks."""

    def __init__(self, alg, key):
        self.aead = ChaCha20Poly1305(key) if alg == "chacha20-poly1305" else AESGCM(key)
        self.i = 0

    def seal(self, data, ad=None):
        out = self.aead.encrypt(nonce(self.i), data, ad)
        self.i += 1
        return out

    def mask(self):
        # Header mask of frame i: bytes 5*(i mod 32) .. +5 of keystream
        # block i div 32, the ciphertext of 160 zero bytes sealed under the
        # keystream nonce of that block (its tag dropped).
        block = self.aead.encrypt(nonce(self.i // 32, True), bytes(160), None)[:160]
        off = 5 * (self.i % 32)
        return block[off:off + 5]

    def frame(self, ftype, data, pad=0):
        hdr = struct.pack(">BHH", ftype, len(data), pad)
        masked = bytes(a ^ b for a, b in zip(hdr, self.mask()))
        return masked + self.seal(data + bytes(pad), hdr)


def hexlines(b):
    h = b.hex()
    return "\n".join(h[i:i + 64] for i in range(0, len(h), 64))


def show(name, b):
    print(f"{name} ({len(b)} bytes):\n```\n{hexlines(b)}\n```")


def main():
    cpub, spub = pub(CPRIV), pub(SPRIV)
    shared = X25519PrivateKey.from_private_bytes(CPRIV).exchange(X25519PublicKey.from_public_bytes(spub))
    hc2s = hkdf(PSK, SALT, b"tt/1 hello c2s")
    hs2c = hkdf(PSK, SALT, b"tt/1 hello s2c")
    sc2s = hkdf(shared + PSK, SALT, b"tt/1 session c2s" + cpub + spub)
    ss2c = hkdf(shared + PSK, SALT, b"tt/1 session s2c" + cpub + spub)
    port_key = hkdf(PSK, None, b"tt/1 port hopping")
    hotp = hotp31(port_key, 0)
    password = hashlib.scrypt(b"correct horse battery staple", salt=b"tt/1 password", n=2**15, r=8, p=1,
                              maxmem=64 * 1024 * 1024, dklen=32)
    for name, v in [("CPUB", cpub), ("SPUB", spub), ("shared", shared), ("hello c2s", hc2s),
                    ("hello s2c", hs2c), ("session c2s", sc2s), ("session s2c", ss2c),
                    ("port key", port_key), ("password PSK", password)]:
        show(name, v)
    print(f"HOTP(port key, 0) = {hotp}; port of slot 0 in 1024-65535 = {1024 + hotp % 64512}")
    # The slot of TS (in milliseconds) with 60 s slots, and where it begins.
    interval = 60000
    slot = TS * 1000 // interval
    if TS * 1000 < slot_start(port_key, slot, interval):
        slot -= 1
    jitter = slot_start(port_key, slot, interval) - slot * interval
    print(f"60 s slots: TS is in slot {slot}, which begins at {slot_start(port_key, slot, interval)} "
          f"ms (jitter {jitter} ms); its port in 1024-65535 is {1024 + hotp31(port_key, slot) % 64512}")

    cbody = bytes([1]) + cpub + len(EARLY).to_bytes(2, "big") + EARLY
    chead = len(cbody).to_bytes(2, "big") + TS.to_bytes(8, "big")
    sbody = bytes([1]) + spub + len(REPLY).to_bytes(2, "big") + REPLY
    show("client hello head", chead)
    show("client hello body", cbody)
    show("server hello body", sbody)
    for alg in ("chacha20-poly1305", "aes-256-gcm"):
        print(f"\n## {alg}\n")
        h = Sealer(alg, hc2s)
        show("client first flight", SALT + h.seal(chead) + h.seal(cbody))
        h = Sealer(alg, hs2c)
        show("server hello", h.seal(len(sbody).to_bytes(2, "big")) + h.seal(sbody))
        for name, key in (("c2s", sc2s), ("s2c", ss2c)):
            s = Sealer(alg, key)
            show(f"{name} frames", s.frame(0, b"hello") + s.frame(1, b""))
        s = Sealer(alg, sc2s)
        long = b"".join(s.frame(0, bytes([i]), i % 3) for i in range(40)) + s.frame(1, b"")
        print(f"c2s long stream ({len(long)} bytes), SHA-256:\n```\n{hashlib.sha256(long).hexdigest()}\n```")


if __name__ == "__main__":
    main()
