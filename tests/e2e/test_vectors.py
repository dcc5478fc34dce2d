"""docs/tt1-vectors.md is what tests/vectors/tt1_vectors.py, an independent
Python implementation of PROTOCOL.md, prints: every value it computes must
appear in the document, and so must every golden value that
tests/unit/test_ttproto.c checks the C codec against."""

import os
import re
import subprocess
import sys

from helpers import REPO

HEX_BLOCK = re.compile(r"```\n([0-9a-f\n]+)```")


def doc_text():
    with open(os.path.join(REPO, "docs", "tt1-vectors.md")) as f:
        return f.read()


def doc_hex(doc):
    """Every hex value of the document, joined: a value is found by search."""
    return "".join(HEX_BLOCK.findall(doc)).replace("\n", "")


def test_vector_document_matches_the_independent_implementation():
    out = subprocess.run([sys.executable, os.path.join(REPO, "tests", "vectors", "tt1_vectors.py")],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    doc = doc_text()
    known = doc_hex(doc)
    values = HEX_BLOCK.findall(out)
    assert len(values) >= 20
    for v in values:
        v = v.replace("\n", "")
        assert v in known, f"{v[:32]}... is not in docs/tt1-vectors.md"
    hotp = re.search(r"HOTP\(port key, 0\) = (\d+); port of slot 0 in 1024-65535 = (\d+)", out)
    assert hotp and hotp.group(1) in doc and f"**{hotp.group(2)}**" in doc
    slots = re.search(r"60 s slots: TS is in slot (\d+), which begins at (\d+) ms \(jitter (\d+) ms\); "
                      r"its port in 1024-65535 is (\d+)", out)
    assert slots, out
    for v in slots.groups():
        assert v in doc, f"slot value {v} is not in docs/tt1-vectors.md"


def test_frame_seeds_are_current(tmp_path):
    """The fuzz corpus's raw seeds with real frames are what
    fuzz/seeds_ttframe.py makes (AEAD output is deterministic under counter
    nonces), so a change of the frame format cannot leave them stale."""
    subprocess.run([sys.executable, os.path.join(REPO, "fuzz", "seeds_ttframe.py"), str(tmp_path)],
                   check=True, timeout=60)
    made = sorted(os.listdir(tmp_path))
    assert len(made) >= 8
    for name in made:
        with open(os.path.join(REPO, "fuzz", "corpus", "ttframe", name), "rb") as f:
            assert f.read() == (tmp_path / name).read_bytes(), name


def test_unit_test_vectors_are_the_documents():
    known = doc_hex(doc_text())
    src = open(os.path.join(REPO, "tests", "unit", "test_ttproto.c")).read()
    src = src[src.index("Golden vectors"):]
    # A value is one string literal or several adjacent ones (C joins them).
    values = ["".join(re.findall(r'"([0-9a-f]+)"', m))
              for m in re.findall(r'(?:"[0-9a-f]+"\s*)+', src)]
    values = [v for v in values if len(v) >= 32]
    assert len(values) >= 16
    for v in values:
        assert v in known, f"test_ttproto.c's {v[:32]}... is not in docs/tt1-vectors.md"
