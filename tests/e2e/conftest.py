"""Fixtures for tt's end-to-end tests.

Every test that starts processes does it through `procs`, whose teardown
stops each one by pid and fails the test if a tt process did not exit 0
on SIGTERM or left a sanitizer report in its stderr.
"""

import hashlib
import os
import secrets
import socket
import sys
import types

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import helpers  # noqa: E402
from helpers import (HeldDns, NetNs, ProcessManager, free_port, start_client_of,  # noqa: E402
                     start_server, start_sshd, wait_until)

BIG_SIZE = 100 * 1024 * 1024


def pytest_sessionstart(session):
    tt = helpers.tt_bin()
    if not os.access(tt, os.X_OK):
        pytest.exit("tt binary %s not found; build it with scripts/build.sh test "
                    "or set TT_BIN" % tt, returncode=4)


@pytest.fixture
def procs(tmp_path):
    pm = ProcessManager(str(tmp_path))
    yield pm
    pm.cleanup()


@pytest.fixture
def netns(procs):
    """A fresh network namespace (only `lo`, up). Processes started in it are
    stopped (and checked) before it is deleted."""
    ns = NetNs()
    yield ns
    try:
        procs.cleanup()
    finally:
        ns.delete()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "carriers_with(*attrs): run only over the carriers whose entry in "
        "helpers.CARRIERS has every one of these attributes true")


def pytest_generate_tests(metafunc):
    """A test that takes `carrier` runs once per entry of helpers.CARRIERS
    (those its carriers_with marker asks for: a case that cannot apply to a
    carrier is not generated, rather than skipped); one that also takes `mux`
    runs over each with and without --mux (where the carrier allows it)."""
    if "carrier" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("carriers_with")
    needs = marker.args if marker else ()
    carriers = [c for c in helpers.CARRIERS if all(getattr(c, a) for a in needs)]
    if "mux" in metafunc.fixturenames:
        cases = [(c, m) for c in carriers for m in (False, True) if c.mux or not m]
        metafunc.parametrize("carrier,mux", cases,
                             ids=[c.name + ("-mux" if m else "") for c, m in cases])
    else:
        metafunc.parametrize("carrier", carriers, ids=[c.name for c in carriers])


@pytest.fixture
def tunnel(procs):
    """tunnel(server_args, client_args, ...) starts a far end for CARRIER
    (default tcp://) and a client connected to it, with --mux if MUX;
    returns (server, client)."""

    def make(server_args=(), client_args=(), socks=True, forwards=(), netns=None,
             carrier=helpers.TCP, mux=False):
        server = start_server(procs, server_args, netns=netns, carrier=carrier)
        client = start_client_of(procs, server, client_args, mux=mux, socks=socks,
                                 forwards=forwards, netns=netns)
        return server, client

    return make


@pytest.fixture
def echo(procs):
    """An echo server on 127.0.0.1; its port."""
    _, port = procs.peer("echo")
    return port


@pytest.fixture
def held_dns():
    d = HeldDns()
    yield d
    d.close()


@pytest.fixture
def black_hole():
    """A loopback port whose SYNs go unanswered: a listener with a backlog of
    0 whose single queue slot is taken by a connection it never accepts;
    Linux drops further SYNs while the accept queue is full."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=5)
    # Check that it really is a black hole before relying on it.
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        pytest.fail("the full listener still completes connections")
    except socket.timeout:
        pass
    yield port
    filler.close()
    lst.close()


# ---------------------------------------------------------------------------
# nginx


@pytest.fixture(scope="session")
def www(tmp_path_factory):
    d = tmp_path_factory.mktemp("www")
    token = "tt e2e page " + secrets.token_hex(8) + "\n"
    (d / "index.html").write_text(token)
    return types.SimpleNamespace(root=str(d), index=token)


@pytest.fixture(scope="session")
def big_file(www):
    """A 100 MB random file in the web root; its name and sha256."""
    path = os.path.join(www.root, "big.bin")
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(BIG_SIZE // (1 << 20)):
            chunk = os.urandom(1 << 20)
            h.update(chunk)
            f.write(chunk)
    return types.SimpleNamespace(name="big.bin", size=BIG_SIZE, sha256=h.hexdigest())


NGINX_CONF = helpers.NGINX_PRELUDE + """\
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {root};
    }}
}}
"""


def serves(addr, text):
    """Whether an HTTP server at ADDR answers GET / with TEXT in the body."""
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.settimeout(2)
            s.connect(addr)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        return text.encode() in data
    except OSError:
        return False


@pytest.fixture
def nginx(procs, www, tmp_path):
    """nginx serving `www` on 127.0.0.1 and [::1], same port."""
    for attempt in range(3):
        tmp = tmp_path / ("nginx%d" % attempt)
        tmp.mkdir()
        port = free_port(("127.0.0.1", "::1"))
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=www.root))
        p = procs.start(["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
                        name="nginx")

        def up():
            if p.popen.poll() is not None:
                return "exited"
            # Our own page, so that another program on the port cannot pass
            # for this nginx.
            return serves(("127.0.0.1", port), www.index) and serves(("::1", port), www.index)

        if wait_until(up, 15, "nginx to accept on 127.0.0.1:%d and [::1]:%d" % (port, port)) is True:
            return types.SimpleNamespace(port=port, index=www.index, root=www.root)
        err = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
        procs.discard(p)
        # A port taken meanwhile by another test run: try another one.
        if "Address already in use" not in err + p.log():
            pytest.fail("nginx exited with %s:\n%s\n%s" % (p.popen.returncode, p.log(), err))
    pytest.fail("could not find a free port for nginx")


# ---------------------------------------------------------------------------
# sshd


@pytest.fixture
def sshd(procs, tmp_path):
    """A private sshd on 127.0.0.1 (helpers.start_sshd)."""
    return start_sshd(procs, tmp_path / "ssh")


@pytest.fixture
def proxy_to():
    """proxy_to(PORT) starts a CuttingProxy to 127.0.0.1:PORT, closed at
    teardown."""
    made = []

    def make(port):
        p = helpers.CuttingProxy(port)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
