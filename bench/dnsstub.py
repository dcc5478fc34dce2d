#!/usr/bin/python3
"""Times DNS lookups the way an application makes them: UDP queries (type A,
no EDNS0) to the first nameserver of /etc/resolv.conf, one at a time, each
timed from its send to its answer.

bench/transparent.py runs it with `ip netns exec`, so /etc/resolv.conf is
that namespace's, and whatever captures DNS there (tt's or sshuttle's --dns)
answers. Usage:

    dnsstub.py --zone ZONE --tag TAG --count N [--expect IP] [--server IP]

In order: one "first" lookup (a name never asked: it includes whatever the
first query of a run pays, e.g. opening tt's DNS stream), N "cold" lookups
(each a name never asked before, TAG keeps them unique across runs), one
lookup of a name that is then asked N times more ("cached": answered from
tt's TTL cache where there is one). Every answer must be NOERROR with the
one address EXPECT, from the address the query went to. Prints one JSON
object: {"server", "first_us", "cold_us": [...], "cached_us": [...]}.
"""

import argparse
import json
import socket
import struct
import sys
import time


def nameserver():
    with open("/etc/resolv.conf") as f:
        for line in f:
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                return words[1]
    sys.exit("dnsstub.py: no nameserver in /etc/resolv.conf")


def query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def check(msg, qid, expect, name):
    """Raises unless MSG answers query QID with NOERROR and, if EXPECT, that
    one A record. A wrong answer must not pass as a fast one. The query has
    no EDNS0, so an answer of one A record ends with its 4 address bytes."""
    rid, flags, _, an, _, ar = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid or not flags & 0x8000 or flags & 0xF:
        raise ValueError(f"{name}: id {rid:#x} flags {flags:#x} (query id {qid:#x})")
    if expect and (an, ar, msg[-4:]) != (1, 0, socket.inet_aton(expect)):
        raise ValueError(f"{name}: {an} answers, {ar} additional, last bytes {msg[-4:].hex()}; "
                         f"expected one A {expect}")


class Asker:
    def __init__(self, server, expect, timeout):
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.server, self.expect, self.qid = server, expect, 0

    def ask(self, name):
        """One lookup of NAME; returns its time in microseconds."""
        self.qid = (self.qid + 1) & 0xFFFF
        q = query(name, self.qid)
        t0 = time.perf_counter_ns()
        self.sock.sendto(q, (self.server, 53))
        while True:
            msg, src = self.sock.recvfrom(4096)
            # A late answer to an earlier query (none is expected: each one
            # waits for its answer) is skipped, not timed.
            if src[0] == self.server and msg[:2] == q[:2]:
                break
        t = (time.perf_counter_ns() - t0) / 1000
        check(msg, self.qid, self.expect, name)
        return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zone", required=True, help="names are LABEL.ZONE")
    ap.add_argument("--tag", required=True, help="makes this run's names unique")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--expect", help="the one A address every answer must hold")
    ap.add_argument("--server", help="instead of resolv.conf's first nameserver")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per lookup")
    args = ap.parse_args()
    server = args.server or nameserver()
    a = Asker(server, args.expect, args.timeout)
    zone = args.zone.strip(".")
    try:
        first = a.ask(f"first-{args.tag}.{zone}.")
        cold = [a.ask(f"c{i}-{args.tag}.{zone}.") for i in range(args.count)]
        name = f"cached-{args.tag}.{zone}."
        a.ask(name)
        cached = [a.ask(name) for _ in range(args.count)]
    except (OSError, ValueError) as e:
        sys.exit(f"dnsstub.py: lookup via {server} failed: {e}")
    json.dump({"server": server, "first_us": first, "cold_us": cold, "cached_us": cached},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
