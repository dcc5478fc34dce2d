"""Early data: a forward's application bytes, and with --early-reply a SOCKS5
application's, travel with the stream's open instead of waiting for the
server's answer. The server's resolver is a DNS server that holds its
answer (HeldDns), so the open is provably still under way. Early data and a
half-close during the open, over every carrier, are in
test_every_carrier.py; here are the failures an early answer turns into
resets."""

from helpers import (carrier_named, connect, curl, free_port, read_reply, recv_until_eof,
                     socks_request, start_client_of, start_server)


def pair(procs, dns, client_args=(), forwards=()):
    """A tt:// server resolving with DNS and a client at -v."""
    srv = start_server(procs, ["--allow", "127.0.0.0/8", "--resolver", "127.0.0.1:%d" % dns.port],
                       carrier=carrier_named("tt"))
    return srv, start_client_of(procs, srv, ["-v"] + list(client_args), forwards=forwards)


def test_early_reply_unreachable_destination_is_a_reset(procs, held_dns):
    srv, cli = pair(procs, held_dns, client_args=("--early-reply",))
    dead = free_port(("127.0.0.1",))
    s = socks_request(cli.socks, "127.0.0.1", dead)
    assert read_reply(s)[1] == 0
    s.sendall(b"nobody will read this")
    assert recv_until_eof(s, 15) == (b"", "reset")
    cli.proc.wait_log(r"CONNECT 127\.0\.0\.1:%d: connection refused \(answered early: reset\)" % dead)
    s.close()


def test_without_early_reply_unreachable_is_a_socks_error(procs, held_dns):
    srv, cli = pair(procs, held_dns)
    dead = free_port(("127.0.0.1",))
    s = socks_request(cli.socks, "127.0.0.1", dead)
    assert read_reply(s)[1] == 5
    s.close()


def test_forward_to_unreachable_destination_is_a_reset(procs, held_dns):
    dead = free_port(("127.0.0.1",))
    srv, cli = pair(procs, held_dns, forwards=("127.0.0.1:%d" % dead,))
    s = connect(("127.0.0.1", cli.forward_ports[0]))
    s.sendall(b"hello?")
    assert recv_until_eof(s, 15) == (b"", "reset")
    s.close()


def test_early_reply_carries_curl(procs, nginx, held_dns):
    srv, cli = pair(procs, held_dns, client_args=("--early-reply",))
    r = curl("--socks5", "%s:%d" % cli.socks, "http://127.0.0.1:%d/" % nginx.port, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == nginx.index
