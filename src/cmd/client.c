/* tt client: entries (SOCKS5, -L forwards, --redirect) on this machine, streams carried
 * to the server by the carrier named in -s. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carrier/ssh.h"
#include "cmd/cmd.h"
#include "codec/nftrules.h"
#include "codec/resolvconf.h"
#include "codec/streamhdr.h"
#include "codec/ttproto.h"
#include "core/addr.h"
#include "core/log.h"
#include "entry/entry.h"
#include "entry/forward.h"
#include "entry/dnscap.h"
#include "entry/dnsfar.h"
#include "entry/nftables.h"
#include "entry/redirect.h"
#include "entry/socks5.h"
#include "exit/nameserver.h"
#include "exit/resolver.h"
#include "mux/pool.h"
#include "session/client.h"

typedef struct client_cfg {
    const char *server;
    const char *listen;
    tt_strlist forwards;
    const char *socks_user;
    const char *socks_pass;
    const char *socks_auth_file;
    unsigned timeout_ms;
    unsigned handshake_timeout_ms;
    unsigned connect_timeout_ms;
    unsigned open_timeout_ms;
    tt_cmd_service svc;
    bool mux;
    unsigned mux_max_streams;
    unsigned mux_keepalive_ms;
    unsigned mux_idle_ms;
    bool early_reply;
    tt_strlist redirects;
    tt_strlist excludes;
    bool redirect_forwarded;
    bool dns;
    const char *dns_server;
    bool resume;
    const char *down;
    bool hop_migrate;
    unsigned reconnect_min_ms;
    unsigned reconnect_max_ms;
} client_cfg;

#define O(field) offsetof(client_cfg, field)
static const tt_opt client_opts[] = {
    {'s', "server", "URL", TT_OPT_STRING, O(server),
     "the tt server (or proxy): a carrier URL (below); HOST alone means tt:// with hopping ports",
     0, 0},
    {0, "mux", NULL, TT_OPT_FLAG, O(mux),
     "carry many streams over each connection to the server (any carrier)", 0, 0},
    {0, "mux-max-streams", "N", TT_OPT_UINT, O(mux_max_streams),
     "with --mux: streams per connection before another opens (1-16, default 4)", 1, 16},
    {0, "mux-keepalive", "DURATION", TT_OPT_DURATION, O(mux_keepalive_ms),
     "with --mux: ping a silent connection this often; no answer within half as long ends it "
     "(default 30s)",
     0, 0},
    {0, "mux-idle", "DURATION", TT_OPT_DURATION, O(mux_idle_ms),
     "with --mux: close a connection this long after its last stream ended (default 60s)", 0, 0},
    {0, "resume", NULL, TT_OPT_FLAG, O(resume),
     "resumable sessions: streams survive the loss of a carrier connection (implies --mux; needs "
     "-k on both ends; also TT_RESUME=1)",
     0, 0},
    {0, "down", "URL", TT_OPT_STRING, O(down),
     "split paths: the server's bytes come back on connections to URL (any carrier, host and "
     "port), the client's go out only on -s's; either leg may break and rejoin alone (implies "
     "--resume; also TT_DOWN)",
     0, 0},
    {0, "hop-migrate", NULL, TT_OPT_FLAG, O(hop_migrate),
     "with --resume over tt:// with hopping ports: move each session to the new port when its "
     "slot ends, so that no connection outlives its slot (also TT_HOP_MIGRATE=1)",
     0, 0},
    {0, "reconnect-min", "DURATION", TT_OPT_DURATION, O(reconnect_min_ms),
     "with --resume: the first reconnection waits up to this long, doubling per failure (default "
     "100ms; also TT_RECONNECT_MIN)",
     0, 0},
    {0, "reconnect-max", "DURATION", TT_OPT_DURATION, O(reconnect_max_ms),
     "with --resume: the longest wait between reconnections (default 30s; also "
     "TT_RECONNECT_MAX)",
     0, 0},
    {'l', "listen", "ADDR", TT_OPT_STRING, O(listen),
     "SOCKS5 proxy address, HOST:PORT or PORT (default 127.0.0.1:1080; 'none' for no proxy)", 0, 0},
    {'L', "forward", "LISTEN[=DEST]", TT_OPT_LIST, O(forwards),
     "forward connections to [HOST:]PORT to DEST (HOST:PORT) through the tunnel; without =DEST, "
     "to the server's fixed destination (its -d); repeatable",
     0, 0},
    {0, "redirect", "CIDR", TT_OPT_LIST, O(redirects),
     "transparent proxying: redirect TCP connections to CIDR (IPv4 or IPv6; 0.0.0.0/0 and ::/0 "
     "for everything) into the tunnel with nftables; needs root or CAP_NET_ADMIN; repeatable",
     0, 0},
    {0, "exclude", "CIDR", TT_OPT_LIST, O(excludes),
     "with --redirect: leave connections to CIDR alone; repeatable", 0, 0},
    {0, "redirect-forwarded", NULL, TT_OPT_FLAG, O(redirect_forwarded),
     "with --redirect: also redirect connections routed through this machine (a router's use)", 0,
     0},
    {0, "dns", NULL, TT_OPT_FLAG, O(dns),
     "transparent DNS: capture queries to the nameservers of /etc/resolv.conf (UDP and TCP port "
     "53) with nftables and answer them through the tunnel, cached; needs root or CAP_NET_ADMIN",
     0, 0},
    {0, "dns-server", "IP[:PORT]", TT_OPT_STRING, O(dns_server),
     "with --dns: the nameserver on the far side that answers, over TCP (port 53 by default); "
     "required except over ssh://, where the remote /etc/resolv.conf names it",
     0, 0},
    {0, "socks-user", "NAME", TT_OPT_STRING, O(socks_user),
     "require SOCKS5 username/password authentication with this user", 0, 0},
    {0, "socks-pass", "PASSWORD", TT_OPT_STRING, O(socks_pass), "the password for --socks-user", 0,
     0},
    {0, "socks-auth-file", "FILE", TT_OPT_STRING, O(socks_auth_file),
     "require SOCKS5 authentication; FILE has one USER:PASSWORD per line", 0, 0},
    {0, "early-reply", NULL, TT_OPT_FLAG, O(early_reply),
     "answer SOCKS5 CONNECT before the server has connected, as ss-local does: a round trip "
     "less; an unreachable destination then shows as a reset, not a SOCKS5 error",
     0, 0},
    {0, "timeout", "DURATION", TT_OPT_DURATION, O(timeout_ms),
     "close a stream idle this long in both directions (default 5m; 0 = never)", 0, 0},
    {0, "handshake-timeout", "DURATION", TT_OPT_DURATION, O(handshake_timeout_ms),
     "limit for an application's SOCKS5 negotiation (default 10s; more than 0)", 0, 0},
    {0, "connect-timeout", "DURATION", TT_OPT_DURATION, O(connect_timeout_ms),
     "limit for connecting to the server (default 10s)", 0, 0},
    {0, "open-timeout", "DURATION", TT_OPT_DURATION, O(open_timeout_ms),
     "limit for the server's answer to a new stream (default 30s)", 0, 0},
    TT_CMD_SERVICE_OPTS(client_cfg, svc),
};
#undef O

static tt_cmd_spec client_spec = {
    .name = "client",
    .usage = "tt client -s URL [-k KEY] [-l ADDR] [-L LISTEN[=DEST] ...] [--redirect CIDR ...] "
             "[--dns] [options]",
    .about = "Runs a SOCKS5 proxy (and any -L forwards) on this machine and carries every\n"
             "connection through the tt server, which connects to the destination. A SERVER\n"
             "without a port follows the server's hopping ports (same -k, -r, --hop-interval).\n"
             "With --redirect, applications need no proxy: nftables sends their TCP connections\n"
             "to those ranges into tt, which carries each to its original destination.\n"
             "With --dns, their DNS queries to the nameservers of /etc/resolv.conf are\n"
             "answered through the tunnel, by a nameserver on the far side.",
};

typedef struct client {
    tt_carrier *carrier;
    tt_carrier_cfg down_cfg; /* --down's carrier */
    tt_resolver *resolver;
    tt_tcp_listener *listeners[TT_STRLIST_MAX + 3]; /* SOCKS5, -L, --redirect (one a family) */
    unsigned n_listeners;
    tt_entry_cfg ecfg;
    tt_forward forwards[TT_STRLIST_MAX];
    tt_cred *creds;
    /* --redirect: the ranges, the endpoints of the carrier's server that the
     * rules exempt, and the rules' libnftables context. */
    tt_cidr redirect[TT_STRLIST_MAX];
    tt_cidr exclude[TT_STRLIST_MAX];
    tt_nft_endpoint carrier_ends[16];
    tt_nftrules rules;
    tt_nft *nft;
    /* --dns: the nameservers captured, the one that answers, the entry. */
    tt_cidr dns_ns[TT_RESOLVCONF_MAX_NS];
    tt_target dns_upstream;
    tt_dnscap *dnscap;
} client;

/* The firewall mark of the client's own connections to the server, which
 * the --redirect rules let pass ("tt" in ASCII). */
#define CLIENT_MARK 0x7474u

static void client_stop(void *ud)
{
    client *c = ud;
    if (c->nft != NULL) {
        /* With the owner flag, closing the context's socket deletes the
         * table; without it (kernels before 5.12) tt deletes it here. */
        char del[64];
        bool explicit =
            !c->rules.owner && tt_nftrules_format_delete(&c->rules, del, sizeof del) > 0;
        tt_nft_remove(c->nft, explicit ? del : NULL);
        c->nft = NULL;
    }
    for (unsigned i = 0; i < c->n_listeners; i++)
        tt_tcp_listener_close(c->listeners[i]);
    c->n_listeners = 0;
    tt_dnscap_close(c->dnscap);
    c->dnscap = NULL;
}

/* Reads USER:PASSWORD lines ('#' comments and blank lines allowed). */
static int load_auth_file(client *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tt_opts_fail(&client_spec, "cannot read --socks-auth-file %s: %s", path,
                            strerror(errno));
    char line[1024];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            fclose(f);
            return tt_opts_fail(&client_spec, "%s:%u: line too long", path, lineno);
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || colon[1] == '\0' || colon - line > 255 ||
            strlen(colon + 1) > 255) {
            fclose(f);
            return tt_opts_fail(&client_spec, "%s:%u: expected USER:PASSWORD (each 1 to 255 bytes)",
                                path, lineno);
        }
        if (c->ecfg.n_creds == 256) {
            fclose(f);
            return tt_opts_fail(&client_spec, "%s: more than 256 users", path);
        }
        *colon = '\0';
        tt_cred *cr = &c->creds[c->ecfg.n_creds++];
        cr->user = strdup(line);
        cr->pass = strdup(colon + 1);
        if (cr->user == NULL || cr->pass == NULL) {
            fclose(f);
            return tt_opts_fail(&client_spec, "out of memory");
        }
    }
    fclose(f);
    if (c->ecfg.n_creds == 0)
        return tt_opts_fail(&client_spec, "%s has no USER:PASSWORD line", path);
    return 0;
}

static void free_creds(client *c)
{
    for (unsigned i = 0; i < c->ecfg.n_creds; i++) {
        free(c->creds[i].user);
        free(c->creds[i].pass);
    }
    free(c->creds);
}

/* Adds the addresses of the server HP to the endpoints the redirect rules
 * exempt (C's carrier_ends, *N of them so far). Returns 0 or 2 after one
 * error line. */
static int exempt_server(client *c, const tt_hostport *hp, size_t *n)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(hp->host, NULL, &hints, &res);
    if (gai != 0)
        return tt_opts_fail(&client_spec,
                            "--redirect would capture the carrier itself: cannot resolve the "
                            "server '%s' to exempt it: %s",
                            hp->host, gai_strerror(gai));
    const size_t max = sizeof c->carrier_ends / sizeof c->carrier_ends[0];
    for (struct addrinfo *ai = res; ai && *n < max; ai = ai->ai_next) {
        tt_nft_endpoint *e = &c->carrier_ends[*n];
        memset(e, 0, sizeof *e);
        if (ai->ai_family == AF_INET) {
            e->addr.family = 4;
            e->addr.prefix = 32;
            memcpy(e->addr.addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        } else if (ai->ai_family == AF_INET6) {
            e->addr.family = 6;
            e->addr.prefix = 128;
            memcpy(e->addr.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        e->port = hp->port;
        (*n)++;
    }
    freeaddrinfo(res);
    return 0;
}

/* Reads --redirect and --exclude into C's rules, and the addresses of the
 * server (-s, and --down's), which the rules exempt: the ssh carrier's child cannot mark
 * its connections, and a name that later resolves to another address would
 * only be missed by this list, not by the mark. Returns 0 or 2 after one
 * error line. */
static int parse_redirect(client *c, const client_cfg *cfg, const tt_carrier_cfg *ccfg)
{
    const char *why = NULL;
    tt_nftrules *r = &c->rules;
    if (cfg->redirects.n == 0) {
        if (cfg->excludes.n > 0 || cfg->redirect_forwarded)
            return tt_opts_fail(&client_spec, "--%s applies with --redirect only",
                                cfg->excludes.n > 0 ? "exclude" : "redirect-forwarded");
        return 0;
    }
    for (unsigned i = 0; i < cfg->redirects.n; i++) {
        if (tt_cidr_parse(cfg->redirects.v[i], &c->redirect[i], &why) != 0)
            return tt_opts_fail(&client_spec, "invalid --redirect '%s': %s", cfg->redirects.v[i],
                                why);
        if (tt_nftrules_cidr_is_loopback(&c->redirect[i]))
            return tt_opts_fail(&client_spec,
                                "--redirect '%s' is loopback, where tt itself listens: it is "
                                "never redirected",
                                cfg->redirects.v[i]);
    }
    for (unsigned i = 0; i < cfg->excludes.n; i++) {
        if (tt_cidr_parse(cfg->excludes.v[i], &c->exclude[i], &why) != 0)
            return tt_opts_fail(&client_spec, "invalid --exclude '%s': %s", cfg->excludes.v[i],
                                why);
    }
    size_t n = 0;
    int rc = exempt_server(c, &ccfg->url.hp, &n);
    if (rc == 0 && cfg->down)
        rc = exempt_server(c, &c->down_cfg.url.hp, &n);
    if (rc)
        return rc;
    r->id = (unsigned long)getpid();
    r->forwarded = cfg->redirect_forwarded;
    r->mark = CLIENT_MARK;
    r->redirect = c->redirect;
    r->n_redirect = cfg->redirects.n;
    r->exclude = c->exclude;
    r->n_exclude = cfg->excludes.n;
    r->carrier = c->carrier_ends;
    r->n_carrier = n;
    /* The carrier's connections carry the mark from the first one on. */
    tt_tcp_set_connect_mark(CLIENT_MARK);
    return 0;
}

/* Finds the far side's nameserver when --dns-server names none: over a
 * carrier whose far end is a tt server, the server's own (the reserved
 * destination TT_STREAM_NAMESERVER, which the server maps); over ssh://,
 * the remote /etc/resolv.conf's first. A plain SOCKS5 proxy has no way to
 * say. Returns 0, or 1 or 2 after one error line. */
static int far_nameserver(client *c, const tt_carrier_cfg *ccfg)
{
    if (ccfg->type->opener == NULL) {
        tt_target_set(&c->dns_upstream, TT_STREAM_NAMESERVER, 53);
        tt_info("--dns: the far nameserver is the tt server's own (its --resolver, else the "
                "first of its /etc/resolv.conf)");
        return 0;
    }
    if (strcmp(ccfg->type->scheme, "ssh") != 0)
        return tt_opts_fail(&client_spec,
                            "--dns needs --dns-server IP[:PORT] with %s:// (the nameserver on "
                            "the far side that answers); ssh:// and the carriers to a tt server "
                            "find one themselves",
                            ccfg->type->scheme);
    char **argv = tt_ssh_exec_argv(ccfg, TT_DNSFAR_REMOTE);
    if (argv == NULL)
        return tt_opts_fail(&client_spec, "out of memory");
    char err[256];
    unsigned limit = (ccfg->connect_timeout_ms ? ccfg->connect_timeout_ms : 10000) + 10000;
    int rc = tt_dnsfar_read(argv, limit, &c->dns_upstream, err, sizeof err);
    free(argv);
    if (rc != 0) {
        tt_error("--dns: cannot read the remote /etc/resolv.conf with ssh (give --dns-server "
                 "IP): %s",
                 err);
        return 1;
    }
    char tbuf[TT_TARGET_STRLEN];
    tt_info("--dns: the far nameserver is %s, from the remote /etc/resolv.conf",
            tt_target_format(&c->dns_upstream, tbuf, sizeof tbuf));
    return 0;
}

/* Reads --dns-server TEXT into C's upstream. Returns 0 or 2 after one
 * error line. */
static int parse_dns_server(client *c, const char *text)
{
    tt_hostport hp;
    const char *why = NULL;
    uint8_t a[16];
    /* A bare address (IPv6 ones without brackets too) means port 53. */
    if (strlen(text) < sizeof hp.host &&
        (inet_pton(AF_INET, text, a) == 1 || inet_pton(AF_INET6, text, a) == 1)) {
        snprintf(hp.host, sizeof hp.host, "%s", text);
        hp.port = 53;
    } else if (tt_hostport_parse(text, &hp, &why) != 0) {
        return tt_opts_fail(&client_spec, "invalid --dns-server '%s': expected IP or IP:PORT",
                            text);
    }
    if (inet_pton(AF_INET, hp.host, a) != 1 && inet_pton(AF_INET6, hp.host, a) != 1)
        return tt_opts_fail(&client_spec, "invalid --dns-server '%s': expected IP or IP:PORT",
                            text);
    if (tt_target_set(&c->dns_upstream, hp.host, hp.port) != 0)
        return tt_opts_fail(&client_spec, "invalid --dns-server '%s'", text);
    return 0;
}

/* Reads --dns and --dns-server, and the nameservers of /etc/resolv.conf,
 * whose port 53 the rules capture. Returns 0 or 2 after one error line. */
static int parse_dns(client *c, const client_cfg *cfg, const tt_carrier_cfg *ccfg)
{
    if (!cfg->dns) {
        if (cfg->dns_server != NULL)
            return tt_opts_fail(&client_spec, "--dns-server applies with --dns only");
        return 0;
    }
    int rc = cfg->dns_server ? parse_dns_server(c, cfg->dns_server) : far_nameserver(c, ccfg);
    if (rc)
        return rc;
    tt_resolvconf_ns ns[TT_RESOLVCONF_MAX_NS];
    int n = tt_resolvconf_read("/etc/resolv.conf", ns);
    if (n < 0)
        return tt_opts_fail(&client_spec, "--dns: cannot read /etc/resolv.conf: %s", strerror(-n));
    if (n == 0)
        return tt_opts_fail(&client_spec, "--dns: /etc/resolv.conf names no nameserver to capture");
    tt_nftrules *r = &c->rules;
    for (int i = 0; i < n; i++) {
        c->dns_ns[i].family = ns[i].family;
        c->dns_ns[i].prefix = ns[i].family == 4 ? 32 : 128;
        memcpy(c->dns_ns[i].addr, ns[i].addr, 16);
    }
    r->dns = c->dns_ns;
    r->n_dns = n;
    r->id = (unsigned long)getpid();
    r->mark = CLIENT_MARK;
    tt_tcp_set_connect_mark(CLIENT_MARK);
    return 0;
}

/* Starts the DNS entry on the families the nameservers need and sets its
 * ports in the rules. Returns 0, or 1 after one error line. */
static int start_dns(client *c, uv_loop_t *loop)
{
    tt_nftrules *r = &c->rules;
    bool fam[2] = {false, false};
    for (size_t i = 0; i < r->n_dns; i++)
        fam[r->dns[i].family == 6] = true;
    const char *why = NULL;
    if (tt_dnscap_start(loop, &c->ecfg, &c->dns_upstream, fam[0], fam[1], &c->dnscap, &why) < 0) {
        tt_error("cannot listen on loopback for --dns: %s", why);
        return 1;
    }
    tt_dnscap_ports(c->dnscap, 4, &r->dns_udp4, &r->dns_tcp4);
    tt_dnscap_ports(c->dnscap, 6, &r->dns_udp6, &r->dns_tcp6);
    return 0;
}

/* Starts the redirect listeners, one per family that a range needs, and
 * sets their ports in the rules. Returns 0, or 1 after one error line. */
static int start_redirect(client *c, const client_cfg *cfg, uv_loop_t *loop)
{
    tt_nftrules *r = &c->rules;
    bool fam[2] = {false, false};
    for (size_t i = 0; i < r->n_redirect; i++)
        fam[r->redirect[i].family == 6] = true;
    for (int f = 0; f < 2; f++) {
        if (!fam[f])
            continue;
        /* Output-hook redirects go to loopback; prerouting ones go to the
         * address of the interface the packet came in on, so forwarded
         * connections need a listener on every address. One that reaches
         * it without a redirect is refused by the entry. */
        const char *host =
            cfg->redirect_forwarded ? (f ? "::" : "0.0.0.0") : (f ? "::1" : "127.0.0.1");
        const char *why = NULL;
        tt_tcp_listener *ls;
        if (tt_redirect_entry_start(loop, host, &c->ecfg, &ls, &why) < 0) {
            tt_error("cannot listen on %s for --redirect: %s", host, why);
            return 1;
        }
        c->listeners[c->n_listeners++] = ls;
        uint16_t port = (uint16_t)tt_tcp_listener_port(ls);
        tt_info("listening on %s%s%s:%u for --redirect", f ? "[" : "", host, f ? "]" : "",
                (unsigned)port);
        if (f)
            r->port6 = port;
        else
            r->port4 = port;
    }
    return 0;
}

/* Installs the rules of --redirect and --dns. Returns 0, or 1 after one
 * error line. */
static int install_rules(client *c, const client_cfg *cfg)
{
    tt_nftrules *r = &c->rules;
    unsigned kv = tt_nft_kernel_version();
    r->owner = kv == 0 || kv >= 5012;
    if (!r->owner)
        tt_warn("this kernel has no nftables owner flag (Linux 5.12): tt deletes its table when it "
                "stops, but one left by a killed tt stays until 'nft delete table inet tt_%lu'",
                r->id);
    char *script = malloc(64 * 1024);
    if (script == NULL) {
        tt_error("out of memory");
        return 1;
    }
    if (tt_nftrules_format(r, script, 64 * 1024) < 0) {
        free(script);
        tt_error("the nftables rules do not fit in 64 KiB");
        return 1;
    }
    tt_debug("nftables script:\n%s", script);
    char err[512];
    c->nft = tt_nft_install(script, err, sizeof err);
    free(script);
    if (c->nft == NULL) {
        tt_error("cannot install the %s rules with nftables: %s",
                 r->n_redirect > 0 ? "--redirect" : "--dns", err);
        return 1;
    }
    if (r->n_redirect > 0)
        tt_info(
            "redirecting TCP to %u range%s (%u excluded) through %s; nftables table inet tt_%lu%s",
            (unsigned)r->n_redirect, r->n_redirect == 1 ? "" : "s", (unsigned)r->n_exclude,
            cfg->server, r->id, cfg->redirect_forwarded ? ", forwarded traffic too" : "");
    if (r->n_dns > 0) {
        char tbuf[TT_TARGET_STRLEN];
        tt_info("capturing DNS to %u nameserver%s of /etc/resolv.conf (UDP %u/%u, TCP %u/%u on "
                "loopback), answered by %s through %s",
                (unsigned)r->n_dns, r->n_dns == 1 ? "" : "s", (unsigned)r->dns_udp4,
                (unsigned)r->dns_udp6, (unsigned)r->dns_tcp4, (unsigned)r->dns_tcp6,
                tt_target_format(&c->dns_upstream, tbuf, sizeof tbuf), cfg->server);
    }
    return 0;
}

/* A duration from the environment variable NAME into *MS, unless OPT was
 * given on the command line (flags over environment over defaults).
 * Returns 0 or 2 after one error line. */
static int env_duration(const tt_carrier_opts *co, const char *opt, const char *name, unsigned *ms)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0' || tt_opts_given(&co->sets[0], opt))
        return 0;
    if (tt_parse_duration(v, ms) != 0)
        return tt_opts_fail(&client_spec,
                            "invalid %s '%s': expected a duration such as 500ms or 30s", name, v);
    return 0;
}

/* A flag from the environment variable NAME ("1" or "0") into *ON, unless
 * OPT was given on the command line. Returns 0 or 2 after one error line. */
static int env_flag(const tt_carrier_opts *co, const char *opt, const char *name, bool *on)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0' || tt_opts_given(&co->sets[0], opt))
        return 0;
    if (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
        *on = true;
    else if (strcmp(v, "0") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
        *on = false;
    else
        return tt_opts_fail(&client_spec, "invalid %s '%s': expected 1 or 0", name, v);
    return 0;
}

/* Reads --resume and its options (and their TT_ variables), and checks
 * what --resume needs. Returns 0 or 2 after one error line. */
static int resume_opts(client *c, client_cfg *cfg, tt_carrier_opts *co)
{
    const tt_carrier_cfg *ccfg = &co->cfg;
    int rc = env_flag(co, "resume", "TT_RESUME", &cfg->resume);
    if (cfg->down)
        cfg->resume = true;
    if (rc == 0)
        rc = env_flag(co, "hop-migrate", "TT_HOP_MIGRATE", &cfg->hop_migrate);
    if (rc == 0)
        rc = env_duration(co, "reconnect-min", "TT_RECONNECT_MIN", &cfg->reconnect_min_ms);
    if (rc == 0)
        rc = env_duration(co, "reconnect-max", "TT_RECONNECT_MAX", &cfg->reconnect_max_ms);
    if (rc)
        return rc;
    if (!cfg->resume) {
        static const char *const ropts[] = {"reconnect-min", "reconnect-max", "hop-migrate"};
        for (size_t i = 0; i < 3; i++) {
            if (tt_opts_given(&co->sets[0], ropts[i]))
                return tt_opts_fail(&client_spec, "--%s applies with --resume only", ropts[i]);
        }
        if (ccfg->key && strcmp(ccfg->type->scheme, "tcp") == 0)
            return tt_opts_fail(&client_spec,
                                "-k/--key applies to tt://, tls://, ws://, wss:// (and to tcp:// "
                                "with --resume only)");
        return 0;
    }
    if (ccfg->type->opener != NULL)
        return tt_opts_fail(&client_spec,
                            "--resume needs a tt server at the far end; %s:// ends at a proxy",
                            ccfg->type->scheme);
    if (cfg->down && c->down_cfg.type->opener != NULL)
        return tt_opts_fail(&client_spec,
                            "--down needs a tt server at the far end; %s:// ends at a proxy",
                            c->down_cfg.type->scheme);
    if (ccfg->key == NULL)
        return tt_opts_fail(&client_spec, "--resume needs -k KEY on both ends (the session join is "
                                          "authenticated with it)");
    if (cfg->hop_migrate && (strcmp(ccfg->type->scheme, "tt") != 0 || ccfg->url.hp.port != 0))
        return tt_opts_fail(&client_spec,
                            "--hop-migrate applies to tt:// with hopping ports (a server URL "
                            "without a port)");
    if (cfg->reconnect_min_ms == 0 || cfg->reconnect_max_ms < cfg->reconnect_min_ms)
        return tt_opts_fail(&client_spec,
                            "--reconnect-min must be more than 0 and at most --reconnect-max");
    cfg->mux = true;
    return 0;
}

static int setup(client *c, client_cfg *cfg, tt_carrier_opts *co, uv_loop_t *loop)
{
    const char *why = NULL;
    if (cfg->server == NULL)
        return tt_opts_fail(&client_spec, "missing -s/--server SERVER");
    if (cfg->handshake_timeout_ms == 0)
        return tt_opts_fail(&client_spec, "--handshake-timeout must be more than 0");
    const char *down = getenv("TT_DOWN");
    if (down && *down && !tt_opts_given(&co->sets[0], "down"))
        cfg->down = down;
    /* -s and --down are read together: an option either carrier takes is
     * in effect. */
    const char *const eopts[2] = {"--server", "--down"};
    const char *const urls[2] = {cfg->server, cfg->down};
    tt_carrier_cfg ends[2];
    int rc = tt_cmd_carrier_cfgs(&client_spec, eopts, urls, cfg->down ? 2 : 1, co, ends);
    if (rc)
        return rc;
    co->cfg = ends[0];
    if (cfg->down) {
        c->down_cfg = ends[1];
        c->down_cfg.connect_timeout_ms = cfg->connect_timeout_ms;
        c->down_cfg.handshake_timeout_ms = cfg->handshake_timeout_ms;
    }
    tt_carrier_cfg *ccfg = &co->cfg;
    ccfg->connect_timeout_ms = cfg->connect_timeout_ms;
    ccfg->handshake_timeout_ms = cfg->handshake_timeout_ms;
    const tt_carrier_type *type = ccfg->type;

    /* Validate every option before opening anything. */
    bool socks = cfg->listen == NULL || strcmp(cfg->listen, "none") != 0;
    tt_hostport socks_hp;
    if (socks && tt_listen_parse(cfg->listen ? cfg->listen : "127.0.0.1:1080", "127.0.0.1", true,
                                 &socks_hp, &why) != 0)
        return tt_opts_fail(&client_spec, "invalid --listen '%s': %s", cfg->listen, why);
    /* Tunneler's client listens on LOCAL_PORT and sends what arrives to
     * the server's target: in the roles tt shares with it (dns:// and the
     * plain tcp:// proxy), that is -L LOCAL_PORT when no -L is given. */
    const char *lport = getenv("LOCAL_PORT");
    if (cfg->forwards.n == 0 && lport && *lport &&
        (strcmp(type->scheme, "dns") == 0 || strcmp(type->scheme, "tcp") == 0))
        cfg->forwards.v[cfg->forwards.n++] = lport;
    tt_hostport fw_hp[TT_STRLIST_MAX];
    for (unsigned i = 0; i < cfg->forwards.n; i++) {
        const char *spec = cfg->forwards.v[i];
        const char *eq = strchr(spec, '=');
        size_t llen = eq ? (size_t)(eq - spec) : strlen(spec);
        char left[300];
        tt_hostport dhp;
        if (llen >= sizeof left)
            return tt_opts_fail(&client_spec, "invalid -L '%s': expected LISTEN[=DEST]", spec);
        memcpy(left, spec, llen);
        left[llen] = '\0';
        if (tt_listen_parse(left, "127.0.0.1", true, &fw_hp[i], &why) != 0)
            return tt_opts_fail(&client_spec, "invalid -L '%s': listen address: %s", spec, why);
        if (eq == NULL) {
            /* No destination: the server's -d decides. The stream asks for
             * none (tt_target_none), which a server without -d refuses. */
            if (type->opener != NULL)
                return tt_opts_fail(&client_spec,
                                    "invalid -L '%s': %s:// needs a destination (LISTEN=DEST)",
                                    spec, type->scheme);
            tt_target_none(&c->forwards[i].dest);
        } else if (tt_hostport_parse(eq + 1, &dhp, &why) != 0 ||
                   tt_target_set(&c->forwards[i].dest, dhp.host, dhp.port) != 0) {
            return tt_opts_fail(&client_spec, "invalid -L '%s': destination: %s", spec,
                                why ? why : "bad host");
        }
    }
    if (!socks && cfg->forwards.n == 0 && cfg->redirects.n == 0 && !cfg->dns)
        return tt_opts_fail(&client_spec,
                            "nothing to do: --listen none, no -L forward, no --redirect, no --dns");
    rc = parse_redirect(c, cfg, ccfg);
    if (rc)
        return rc;
    rc = parse_dns(c, cfg, ccfg);
    if (rc)
        return rc;
    if ((cfg->socks_user == NULL) != (cfg->socks_pass == NULL))
        return tt_opts_fail(&client_spec, "--socks-user and --socks-pass go together");
    if (cfg->socks_user && cfg->socks_auth_file)
        return tt_opts_fail(&client_spec, "use either --socks-user/--socks-pass or "
                                          "--socks-auth-file, not both");
    c->creds = calloc(256, sizeof *c->creds);
    if (c->creds == NULL)
        return tt_opts_fail(&client_spec, "out of memory");
    if (cfg->socks_user) {
        if (strlen(cfg->socks_user) > 255 || strlen(cfg->socks_pass) > 255)
            return tt_opts_fail(&client_spec, "SOCKS5 user and password are 255 bytes at most");
        c->creds[0].user = strdup(cfg->socks_user);
        c->creds[0].pass = strdup(cfg->socks_pass);
        c->ecfg.n_creds = 1;
    } else if (cfg->socks_auth_file) {
        rc = load_auth_file(c, cfg->socks_auth_file);
        if (rc)
            return rc;
    }

    rc = resume_opts(c, cfg, co);
    if (rc)
        return rc;
    static const char *const mux_opts[] = {"mux-max-streams", "mux-keepalive", "mux-idle"};
    for (size_t i = 0; i < sizeof mux_opts / sizeof mux_opts[0] && !cfg->mux; i++) {
        if (tt_opts_given(&co->sets[0], mux_opts[i]))
            return tt_opts_fail(&client_spec, "--%s applies with --mux only", mux_opts[i]);
    }
    if (cfg->mux && type->opener != NULL)
        return tt_opts_fail(&client_spec,
                            "--mux needs a tt server at the far end; %s:// ends at a proxy that "
                            "opens one connection per stream",
                            type->scheme);
    rc = tt_cmd_resolver(&client_spec, ccfg, loop, &c->resolver);
    if (rc)
        return rc;
    ccfg->resolver = c->resolver;
    rc = type->client_new(loop, ccfg, &c->carrier, &why);
    if (rc < 0)
        return tt_opts_fail(&client_spec, "--server '%s': %s", cfg->server, why);
    if (cfg->resume) {
        /* The session wrapper is a carrier over the real one, and the pool
         * runs over it: each mux session rides one resumable session. */
        uint8_t psk[32];
        bool is_password = false;
        if (tt_psk_derive(ccfg->key, psk, &is_password) != 0)
            return tt_opts_fail(&client_spec, "--resume: cannot derive the key from -k");
        tt_sess_client_cfg sc = {.psk = psk,
                                 .reconnect_min_ms = cfg->reconnect_min_ms,
                                 .reconnect_max_ms = cfg->reconnect_max_ms,
                                 .join_timeout_ms = cfg->handshake_timeout_ms,
                                 .migrate = cfg->hop_migrate};
        tt_carrier *down_car = NULL;
        if (cfg->down) {
            c->down_cfg.resolver = c->resolver;
            rc = c->down_cfg.type->client_new(loop, &c->down_cfg, &down_car, &why);
            if (rc < 0)
                return tt_opts_fail(&client_spec, "--down '%s': %s", cfg->down, why);
        }
        rc = tt_sess_client_new(loop, c->carrier, down_car, &sc, &c->carrier);
        if (rc < 0) {
            c->carrier = NULL;
            return tt_opts_fail(&client_spec, "--resume: %s", strerror(-rc));
        }
    }
    if (cfg->mux) {
        /* The pool is a carrier too: the entries and the stream layer run
         * over it unchanged, and it owns the real carrier from now on. */
        tt_mux_cfg mc;
        tt_mux_cfg_default(&mc);
        mc.ping_interval_ms = cfg->mux_keepalive_ms;
        mc.ping_timeout_ms = cfg->mux_keepalive_ms / 2;
        mc.idle_timeout_ms = cfg->mux_idle_ms;
        /* Over a resumable session an outage is not a dead peer: the pings
         * keep the connection under watch, and only a session the server
         * dropped ends the mux. */
        if (cfg->resume)
            mc.ping_timeout_ms = 600000;
        tt_mux_pool *pool = tt_mux_pool_new(loop, c->carrier, &mc, cfg->mux_max_streams);
        if (pool == NULL) {
            c->carrier = NULL;
            return tt_opts_fail(&client_spec, "out of memory");
        }
        c->carrier = tt_mux_pool_carrier(pool);
    }
    c->ecfg.carrier = c->carrier;
    c->ecfg.handshake_timeout_ms = cfg->handshake_timeout_ms;
    c->ecfg.open_timeout_ms = cfg->open_timeout_ms;
    c->ecfg.idle_timeout_ms = cfg->timeout_ms;
    c->ecfg.creds = c->creds;
    c->ecfg.early_reply = cfg->early_reply;

    if (socks) {
        tt_tcp_listener *ls;
        rc = tt_socks5_entry_start(loop, &socks_hp, &c->ecfg, &ls, &why);
        if (rc < 0) {
            tt_error("cannot listen on %s port %u for SOCKS5: %s", socks_hp.host, socks_hp.port,
                     why);
            return 1;
        }
        c->listeners[c->n_listeners++] = ls;
        tt_info("SOCKS5 proxy listening on %s%s%s:%d%s, via %s",
                strchr(socks_hp.host, ':') ? "[" : "", socks_hp.host,
                strchr(socks_hp.host, ':') ? "]" : "", tt_tcp_listener_port(ls),
                c->ecfg.n_creds ? " (username/password required)" : "", cfg->server);
    }
    for (unsigned i = 0; i < cfg->forwards.n; i++) {
        tt_tcp_listener *ls;
        c->forwards[i].cfg = &c->ecfg;
        rc = tt_forward_entry_start(loop, &fw_hp[i], &c->forwards[i], &ls, &why);
        if (rc < 0) {
            tt_error("cannot listen on %s port %u for -L %s: %s", fw_hp[i].host, fw_hp[i].port,
                     cfg->forwards.v[i], why);
            return 1;
        }
        c->listeners[c->n_listeners++] = ls;
        char tbuf[TT_TARGET_STRLEN];
        bool none = tt_target_is_none(&c->forwards[i].dest);
        tt_info("forward listening on %s%s%s:%d -> %s, via %s",
                strchr(fw_hp[i].host, ':') ? "[" : "", fw_hp[i].host,
                strchr(fw_hp[i].host, ':') ? "]" : "", tt_tcp_listener_port(ls),
                none ? "the server's fixed destination (its -d)"
                     : tt_target_format(&c->forwards[i].dest, tbuf, sizeof tbuf),
                cfg->server);
    }
    if (cfg->redirects.n > 0 && start_redirect(c, cfg, loop) != 0)
        return 1;
    if (cfg->dns && start_dns(c, loop) != 0)
        return 1;
    if (cfg->redirects.n > 0 || cfg->dns)
        return install_rules(c, cfg);
    return 0;
}

static int run(void *opaque, tt_carrier_opts *co)
{
    client_cfg *cfg = opaque;
    /* Before the loop exists: --daemon forks. */
    int rc = tt_cmd_service_start(&client_spec, &cfg->svc);
    if (rc)
        return rc;
    uv_loop_t *loop = uv_default_loop();
    client c = {0};
    rc = setup(&c, cfg, co, loop);
    if (rc == 0)
        rc = tt_cmd_service_ready();
    if (rc == 0)
        tt_cmd_run(loop, client_stop, &c);
    else
        client_stop(&c);
    if (c.carrier)
        c.carrier->type->close(c.carrier);
    tt_cmd_wait_closes(loop);
    if (c.resolver)
        tt_resolver_free(c.resolver);
    free_creds(&c);
    return rc;
}

int tt_cmd_client(int argc, char **argv)
{
    client_cfg cfg = {
        .timeout_ms = 300000,
        .handshake_timeout_ms = 10000,
        .connect_timeout_ms = 10000,
        .open_timeout_ms = 30000,
        .mux_max_streams = 4,
        .mux_keepalive_ms = 30000,
        .mux_idle_ms = 60000,
        .reconnect_min_ms = 100,
        .reconnect_max_ms = 30000,
    };
    return tt_cmd_main(&client_spec, client_opts, sizeof client_opts / sizeof client_opts[0], &cfg,
                       false, argc, argv, run);
}
