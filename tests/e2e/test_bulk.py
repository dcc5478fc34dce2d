"""Volume: 100 MB each way through a -L forward, compared byte for byte.
(A few MB both ways and 200 streams at once, over every carrier, are in
test_every_carrier.py.)"""

import hashlib
import random
import socket
import subprocess

from helpers import connect, recv_until_eof

LOOPBACK = ["--allow", "127.0.0.0/8"]
MB = 1 << 20


def test_download_100mb_through_forward(tunnel, nginx, big_file):
    dest = "127.0.0.1:%d" % nginx.port
    _, client = tunnel(server_args=LOOPBACK, socks=False, forwards=[dest])
    url = "http://127.0.0.1:%d/%s" % (client.forward_ports[0], big_file.name)
    # curl writes the body to a pipe that is hashed as it arrives.
    p = subprocess.Popen(["curl", "-sS", "--max-time", "240", url], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    h = hashlib.sha256()
    n = 0
    try:
        while True:
            chunk = p.stdout.read(MB)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0, "curl failed (%d): %s" % (rc, p.stderr.read().decode())
    assert n == big_file.size
    assert h.hexdigest() == big_file.sha256


def test_upload_100mb_through_forward(procs, tunnel):
    # The sink answers with the sha256 and length of what it read, after our
    # EOF, so the answer also proves the half-close reached it.
    _, sink_port = procs.peer("sink")
    _, client = tunnel(server_args=LOOPBACK, socks=False, forwards=["127.0.0.1:%d" % sink_port])
    rng = random.Random(2024)
    h = hashlib.sha256()
    s = connect(("127.0.0.1", client.forward_ports[0]), timeout=60)
    with s:
        for _ in range(100):
            chunk = rng.randbytes(MB)
            h.update(chunk)
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        answer, how = recv_until_eof(s, 60)
    assert how == "eof"
    assert answer.decode() == "%s %d\n" % (h.hexdigest(), 100 * MB)
