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
    ("-L without =", CLIENT + ["-s", "tcp://127.0.0.1:9", "-L", "8080"], None),
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
    assert len(lines) == 2, "expected an error line and a hint, got:\n%s" % r.stderr
    assert lines[0].startswith("tt %s: " % cmd) and len(lines[0]) > len("tt %s: " % cmd) + 5, lines[0]
    assert lines[1] == "Try 'tt %s --help'." % cmd
    assert r.stdout == ""


def test_bad_auth_file_line(tmp_path):
    f = tmp_path / "users"
    f.write_text("alice:ok\nno-colon-here\n")
    r = run_tt(CLIENT + ["-s", "tcp://127.0.0.1:9", "--socks-auth-file", str(f)])
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and ":2:" in lines[0], r.stderr


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
