"""The command line: bad options are refused with status 2 and one line
saying why; help and version work; the README's demo runs."""

import os
import re
import socket
import subprocess

import pytest

from helpers import REPO, free_port, run_tt

OK_SERVER = ["-l", "tcp://127.0.0.1:%d"]
# The SOCKS port 0 keeps a client that wrongly starts off the default 1080.
CLIENT = ["client", "-l", "127.0.0.1:0"]
SERVER = ["server"]

BAD = [
    # (name, argv, env)
    ("client unknown option", CLIENT + ["-s", "tcp://127.0.0.1:9", "--bogus"], None),
    ("client unknown short option", CLIENT + ["-s", "tcp://127.0.0.1:9", "-Z"], None),
    ("server unknown option", SERVER + ["-l", "tcp://127.0.0.1:9", "--bogus"], None),
    ("client missing -s", CLIENT, None),
    ("server missing -l", SERVER, None),
    ("client -s without value", CLIENT + ["-s"], None),
    ("client URL without port", CLIENT + ["-s", "tcp://127.0.0.1"], None),
    ("client URL port out of range", CLIENT + ["-s", "tcp://127.0.0.1:70000"], None),
    ("client URL without host", CLIENT + ["-s", "tcp://:80"], None),
    ("client URL without scheme", CLIENT + ["-s", "127.0.0.1:80"], None),
    ("server bad URL", SERVER + ["-l", "tcp://127.0.0.1:port"], None),
    ("client unknown scheme", CLIENT + ["-s", "quic://127.0.0.1:9"], None),
    ("server unknown scheme", SERVER + ["-l", "udp://127.0.0.1:9"], None),
    ("-L without = over socks5", CLIENT + ["-s", "socks5://127.0.0.1:9", "-L", "8080"], None),
    ("-s given twice", CLIENT + ["-s", "tcp://127.0.0.1:9", "-s", "tcp://127.0.0.1:10"], None),
    # The server's -l is a list (split paths), of at most 8.
    ("-l given 9 times", SERVER + ["-l", "tcp://127.0.0.1:9"] * 9, None),
    ("--down given twice", CLIENT + ["-s", "tcp://127.0.0.1:9", "-k", "a", "--down",
                                     "tcp://127.0.0.1:10", "--down", "tcp://127.0.0.1:11"], None),
    ("--down of a proxy", CLIENT + ["-s", "tcp://127.0.0.1:9", "-k", "a", "--down",
                                    "socks5://127.0.0.1:10"], None),
    ("-k and its old name", CLIENT + ["-s", "127.0.0.1:9", "-k", "a", "--psk", "b"], None),
    ("-k on tcp://", CLIENT + ["-s", "tcp://127.0.0.1:9", "-k", "a"], None),
    ("socks5:// server", SERVER + ["-l", "socks5://127.0.0.1:9"], None),
    ("--mux over socks5://", CLIENT + ["-s", "socks5://127.0.0.1:9", "--mux"], None),
    ("--proxy-user without password", CLIENT + ["-s", "socks5://127.0.0.1:9", "--proxy-user",
                                                "u"], None),
    ("--proxy-user on tt://", CLIENT + ["-s", "127.0.0.1:9", "-k", "a", "--proxy-user", "u",
                                        "--proxy-pass", "p"], None),
    ("--mux-max-streams without --mux", CLIENT + ["-s", "tcp://127.0.0.1:9", "--mux-max-streams",
                                                  "4"], None),
    ("--www missing", SERVER + ["-l", "ws://127.0.0.1:9/t", "-k", "a", "--www", "/nonexistent"],
     None),
    ("--www a file", SERVER + ["-l", "ws://127.0.0.1:9/t", "-k", "a", "--www", "/etc/hostname"],
     None),
    ("--cert missing", SERVER + ["-l", "tls://127.0.0.1:9", "-k", "a", "--cert", "/nonexistent",
                                 "--tls-key", "/nonexistent"], None),
    ("-r bad range", SERVER + ["-l", "127.0.0.1", "-k", "a", "--port-range", "9-2"], None),
    ("-L destination without port", CLIENT + ["-s", "tcp://127.0.0.1:9", "-L", "8080=example.com"], None),
    ("-L bad listen port", CLIENT + ["-s", "tcp://127.0.0.1:9", "-L", "99999=127.0.0.1:80"], None),
    ("-L empty destination", CLIENT + ["-s", "tcp://127.0.0.1:9", "-L", "8080="], None),
    ("bad duration unit", CLIENT + ["-s", "tcp://127.0.0.1:9", "--timeout", "5x"], None),
    ("negative duration", SERVER + ["-l", "tcp://127.0.0.1:9", "--connect-timeout", "-1s"], None),
    ("duration too long", SERVER + ["-l", "tcp://127.0.0.1:9", "--timeout", "100000h"], None),
    ("bad --allow prefix", SERVER + ["-l", "tcp://127.0.0.1:9", "--allow", "10.0.0.0/33"], None),
    ("bad --allow address", SERVER + ["-l", "tcp://127.0.0.1:9", "--allow", "300.0.0.0/8"], None),
    ("bad --allow text", SERVER + ["-l", "tcp://127.0.0.1:9", "--allow", "everything"], None),
    ("bad --allow IPv6", SERVER + ["-l", "tcp://127.0.0.1:9", "--allow", "::1/129"], None),
    ("bad --deny", SERVER + ["-l", "tcp://127.0.0.1:9", "--deny", "10.0.0.1/8"], None),
    ("bad -d", SERVER + ["-l", "tcp://127.0.0.1:9", "-d", "nohost"], None),
    ("bad LOG_LEVEL client", CLIENT + ["-s", "tcp://127.0.0.1:9"], {"LOG_LEVEL": "loud"}),
    ("bad LOG_LEVEL server", SERVER + ["-l", "tcp://127.0.0.1:9"], {"LOG_LEVEL": "chatty"}),
    ("bad --log-level", SERVER + ["-l", "tcp://127.0.0.1:9", "--log-level", "loud"], None),
    ("--socks-user without --socks-pass", CLIENT + ["-s", "tcp://127.0.0.1:9", "--socks-user", "u"], None),
    ("missing --socks-auth-file", CLIENT + ["-s", "tcp://127.0.0.1:9", "--socks-auth-file", "/nonexistent/users"], None),
    ("nothing to do", ["client", "-s", "tcp://127.0.0.1:9", "-l", "none"], None),
    ("--socks-user too long", CLIENT + ["-s", "tcp://127.0.0.1:9", "--socks-user", "u" * 256,
                                        "--socks-pass", "p"], None),
    ("both auth kinds", CLIENT + ["-s", "tcp://127.0.0.1:9", "--socks-user", "u", "--socks-pass",
                                  "p", "--socks-auth-file", "/dev/null"], None),
    ("unexpected argument", SERVER + ["-l", "tcp://127.0.0.1:9", "extra"], None),
]


@pytest.mark.parametrize("argv, env", [(a, e) for _, a, e in BAD], ids=[n for n, _, _ in BAD])
def test_bad_usage_exits_2_with_one_error_line(argv, env):
    e = dict(os.environ, **env) if env else None
    r = run_tt(argv, env=e)
    cmd = argv[0]
    assert r.returncode == 2, "exit status %d; stderr:\n%s" % (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, "expected one error line, got:\n%s" % r.stderr
    assert lines[0].startswith("tt %s: " % cmd) and len(lines[0]) > len("tt %s: " % cmd) + 5, lines[0]
    assert lines[0].endswith("(see 'tt %s --help')" % cmd), lines[0]
    assert r.stdout == ""


@pytest.mark.parametrize("argv, needle", [
    (SERVER + ["-l", "tls://127.0.0.1:9", "-k", "a", "--cert", "/nonexistent", "--tls-key",
               "/nonexistent"], "cannot read --cert /nonexistent: No such file"),
    (SERVER + ["-l", "ws://127.0.0.1:9/t", "-k", "a", "--www", "/etc/hostname"],
     "not a directory"),
    (CLIENT + ["-s", "tcp://127.0.0.1:9", "--mux-idle", "5s"], "--mux-idle applies with --mux"),
    (CLIENT + ["-s", "tcp://127.0.0.1:9", "-s", "tcp://127.0.0.1:10"], "-s/--server given twice"),
    (CLIENT + ["-s", "tcp://127.0.0.1:9", "-k", "a"], "-k/--key applies to tt://"),
    (SERVER + ["-l", "socks5://127.0.0.1:9"], "socks5:// has no server side"),
    (SERVER + ["-l", "dns+tls://127.0.0.1/t.example.com", "-k", "a"],
     "dns+tls:// has no server side (it is for the client only)"),
    (CLIENT + ["-s", "dns+tls://127.0.0.1/t.example.com", "-k", "a", "--pin", "00"],
     "--pin takes a SHA-256 fingerprint"),
    (CLIENT + ["-s", "dns+tcp://127.0.0.1/t.example.com", "-k", "a", "--ca", "/etc/hostname"],
     "--ca applies to tls://"),
])
def test_bad_usage_says_what(argv, needle):
    r = run_tt(argv)
    assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_tt_long_options_work_on_both_ends():
    """TT's own spelling: -k/--key and -r/--port-range, on the server and the
    client (the server's TLS key file is --tls-key)."""
    for argv in (SERVER + ["-l", "127.0.0.1", "--key", "pw", "--port-range", "2000-2100",
                           "--hop-interval", "0"],
                 CLIENT + ["-s", "127.0.0.1", "--key", "pw", "--port-range", "2000-2100",
                           "--hop-interval", "0"]):
        r = run_tt(argv)
        # Everything up to the deliberate mistake is accepted.
        assert r.returncode == 2 and "--hop-interval must be at least 1s" in r.stderr, r.stderr


def test_help_lists_every_carrier():
    for cmd, schemes in (("client", ["tt://", "tcp://", "tls://", "ws://", "wss://", "socks5://"]),
                         ("server", ["tt://", "tcp://", "tls://", "ws://", "wss://"])):
        r = run_tt([cmd, "--help"])
        assert r.returncode == 0
        for sch in schemes:
            assert re.search(r"^  \[?%s" % re.escape(sch), r.stdout, re.M), (sch, r.stdout)
    assert "socks5://" not in run_tt(["server", "--help"]).stdout


def test_bad_auth_file_line(tmp_path):
    f = tmp_path / "users"
    f.write_text("alice:ok\nno-colon-here\n")
    r = run_tt(CLIENT + ["-s", "tcp://127.0.0.1:9", "--socks-auth-file", str(f)])
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and ":2:" in lines[0], r.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_plain_tcp_off_loopback_refused(host):
    r = run_tt(["server", "-l", "tcp://%s:%d" % (host, free_port())])
    assert r.returncode == 1, r.stderr
    assert "refusing" in r.stderr and "--insecure" in r.stderr, r.stderr
    assert "listening" not in r.stderr


def test_insecure_allows_off_loopback(procs, netns):
    # In a namespace, so the wildcard listener faces nothing but lo.
    port = free_port()
    p = procs.tt(["server", "-l", "tcp://0.0.0.0:%d" % port, "--insecure"], name="tt-server",
                 netns=netns)
    p.wait_log(r"tt server listening on tcp://0\.0\.0\.0:%d" % port)
    assert re.search(r"warn.*NOT encrypted", p.log()), p.log()


@pytest.mark.parametrize("what", ["server", "socks", "forward"])
def test_port_in_use_exits_1(what):
    # A listener that cannot be opened is a runtime failure (status 1), said
    # in one line, and nothing is left listening.
    busy = socket.create_server(("127.0.0.1", 0))
    with busy:
        port = busy.getsockname()[1]
        argv = {
            "server": ["server", "-l", "tcp://127.0.0.1:%d" % port],
            "socks": ["client", "-s", "tcp://127.0.0.1:9", "-l", "127.0.0.1:%d" % port],
            "forward": ["client", "-s", "tcp://127.0.0.1:9", "-l", "127.0.0.1:0",
                        "-L", "127.0.0.1:%d=127.0.0.1:80" % port],
        }[what]
        r = run_tt(argv)
    assert r.returncode == 1, "status %d:\n%s" % (r.returncode, r.stderr)
    errors = [l for l in r.stderr.splitlines() if " error: " in l]
    assert len(errors) == 1 and "in use" in errors[0], r.stderr


def test_version():
    r = run_tt(["version"])
    assert r.returncode == 0
    assert re.fullmatch(r"tt \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
    assert run_tt(["--version"]).stdout == r.stdout


def test_help():
    r = run_tt(["--help"])
    assert r.returncode == 0
    for cmd in ("server", "client", "version", "help"):
        assert re.search(r"^  %s\s" % cmd, r.stdout, re.M), "%s missing from tt --help" % cmd


def test_no_command():
    r = run_tt([])
    assert r.returncode == 2
    assert "Usage" in r.stderr


def options_in_source(cmd):
    """The long option names in the option table of src/cmd/CMD.c."""
    src = open(os.path.join(REPO, "src", "cmd", cmd + ".c")).read()
    table = re.search(r"static const tt_opt \w+\[\] = \{(.*?)\n\};", src, re.S).group(1)
    return re.findall(r"\{\s*(?:'.'|0)\s*,\s*\"([a-z-]+)\"", table)


@pytest.mark.parametrize("cmd, documented", [
    ("server", ["listen", "destination", "allow", "deny", "insecure", "timeout",
                "handshake-timeout", "connect-timeout", "log-level", "verbose"]),
    ("client", ["server", "listen", "forward", "socks-user", "socks-pass", "socks-auth-file",
                "timeout", "handshake-timeout", "connect-timeout", "open-timeout", "log-level",
                "verbose"]),
])
def test_command_help_lists_every_option(cmd, documented):
    r = run_tt([cmd, "--help"])
    assert r.returncode == 0 and r.stderr == ""
    listed = set(re.findall(r"^\s+(?:-\w, )?--([a-z-]+)", r.stdout, re.M))
    wanted = set(documented) | set(options_in_source(cmd)) | {"help"}
    assert wanted <= listed, "missing from tt %s --help: %s" % (cmd, sorted(wanted - listed))
    # `tt help CMD` says the same.
    assert run_tt(["help", cmd]).stdout == r.stdout


def test_demo_check():
    # The README's demo, on ports chosen here so it cannot meet a busy one.
    env = dict(os.environ,
               TT_DEMO_SOCKS_PORT=str(free_port()),
               TT_DEMO_SERVER_PORT=str(free_port()),
               TT_DEMO_WEB_PORT=str(free_port()))
    try:
        r = subprocess.run([os.path.join(REPO, "scripts", "demo.sh"), "--check"], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=480)
    except subprocess.TimeoutExpired as e:
        pytest.fail("scripts/demo.sh --check still running after 480s:\n%s" % e.stderr)
    assert r.returncode == 0, "demo.sh --check exited %d:\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    assert "ok, the page came through the tunnel" in r.stdout + r.stderr
