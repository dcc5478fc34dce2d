"""SOCKS5 username/password authentication (RFC 1929) on the client's
proxy, with curl for the working cases and a raw socket for the refusals."""

import pytest

from helpers import auth, connect, curl, greet, recv_until_eof

LOOPBACK = ["--allow", "127.0.0.0/8"]
ONE_USER = ["--socks-user", "alice", "--socks-pass", "correct horse"]


def curl_page(client, nginx, userinfo):
    return curl("--socks5-hostname", "%s@127.0.0.1:%d" % (userinfo, client.socks_port),
                "http://127.0.0.1:%d/" % nginx.port)


def expect_auth_refused(client, user, password):
    """The method is accepted, the credentials are not: status 0x01, then
    the proxy closes the connection."""
    s = connect(client.socks)
    with s:
        assert greet(s, (2,)) == b"\x05\x02"
        assert auth(s, user, password) == b"\x01\x01"
        rest, _ = recv_until_eof(s, 10)
        assert rest == b""


def test_right_credentials(tunnel, nginx):
    _, client = tunnel(server_args=LOOPBACK, client_args=ONE_USER)
    r = curl_page(client, nginx, "alice:correct%20horse")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == nginx.index


@pytest.mark.parametrize("user, password", [
    ("alice", "wrong"),
    ("alice", "correct horsE"),
    ("alice", "correct horse "),   # a longer password with the right prefix
    ("alice", "correct"),          # the right password's prefix
    ("mallory", "correct horse"),
])
def test_wrong_credentials(tunnel, user, password):
    _, client = tunnel(server_args=LOOPBACK, client_args=ONE_USER)
    expect_auth_refused(client, user, password)


def test_wrong_credentials_curl_gets_no_page(tunnel, nginx):
    _, client = tunnel(server_args=LOOPBACK, client_args=ONE_USER)
    r = curl_page(client, nginx, "alice:nope")
    assert r.returncode != 0
    assert nginx.index.encode() not in r.stdout


def test_no_auth_offer_refused_when_auth_required(tunnel):
    # A client offering only "no authentication" must not get in.
    _, client = tunnel(server_args=LOOPBACK, client_args=ONE_USER)
    s = connect(client.socks)
    with s:
        assert greet(s, (0,)) == b"\x05\xff"
        assert recv_until_eof(s, 10)[0] == b""


def test_userpass_offer_refused_when_no_auth_configured(tunnel):
    # The converse: without credentials configured, only method 0x00 is on
    # offer.
    _, client = tunnel(server_args=LOOPBACK)
    s = connect(client.socks)
    with s:
        assert greet(s, (2,)) == b"\x05\xff"
        assert recv_until_eof(s, 10)[0] == b""


def test_auth_file_with_two_users(tunnel, nginx, tmp_path):
    f = tmp_path / "users"
    f.write_text("# tt users\n\nalice:first-secret\nbob:second:secret\n")
    _, client = tunnel(server_args=LOOPBACK, client_args=["--socks-auth-file", str(f)])
    for userinfo in ("alice:first-secret", "bob:second%3Asecret"):
        r = curl_page(client, nginx, userinfo)
        assert r.returncode == 0, "%s: %s" % (userinfo, r.stderr.decode())
        assert r.stdout.decode() == nginx.index
    # One user's name with the other's password is not a valid pair.
    expect_auth_refused(client, "alice", "second:secret")
    expect_auth_refused(client, "bob", "first-secret")


def test_longest_credentials(tunnel):
    # RFC 1929 allows 255 bytes for each; both must be compared whole.
    user, password = "u" * 254 + "1", "p" * 254 + "2"
    _, client = tunnel(server_args=LOOPBACK,
                       client_args=["--socks-user", user, "--socks-pass", password])
    s = connect(client.socks)
    with s:
        assert greet(s, (2,)) == b"\x05\x02"
        assert auth(s, user, password) == b"\x01\x00"
    expect_auth_refused(client, user, "p" * 254 + "3")
    expect_auth_refused(client, "u" * 254 + "0", password)


def test_auth_file_with_crlf_lines(tunnel, nginx, tmp_path):
    # A file written on Windows still works.
    f = tmp_path / "users"
    f.write_bytes(b"carol:crlf-pass\r\ndave:other\r\n")
    _, client = tunnel(server_args=LOOPBACK, client_args=["--socks-auth-file", str(f)])
    r = curl_page(client, nginx, "carol:crlf-pass")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == nginx.index
