/* The dns:// carrier: streams through a recursive resolver to a server that
 * is authoritative for a domain (docs/DNS.md, "The dns:// carrier").
 *
 * Client: every dial is a new DNS "connection": its own datagram layer
 * (link/dnsc.c) with a fresh random client id, and a sealed ARQ engine over
 * it (dnslink.c) that is the link handed back. Server: one datagram layer
 * (link/dnss.c) for all clients; the datagrams of each client id go to that
 * connection's engine, and a new connection is accepted when its first
 * packet opens under the key, carries a fresh stamp and salt, and starts
 * the stream; its link goes to the stream layer as any carrier's does.
 *
 * dns+tcp:// and dns+tls:// are the same client with its queries over TCP
 * (RFC 7766) or TLS (RFC 7858) to the resolver instead of UDP
 * (link/dnsq.h); they have no server side: the server of dns:// answers
 * the resolver whatever way the client reached the resolver.
 *
 * Tunneler's environment (docs/DNS.md has the table): READ_TIMEOUT_IN_
 * MILLISECONDS is the client's longest gap between idle polls and the
 * server's hold of a poll; IDLE_CLIENT_TIMEOUT_IN_MILLISECONDS is how long
 * the server keeps a silent connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier/carrier.h"
#include "carrier/dnslink.h"
#include "codec/ttproto.h"
#include "core/crypto.h"
#include "core/idmap.h"
#include "core/log.h"
#include "core/replay.h"
#include "core/tlsctx.h"
#include "link/dnst.h"

extern const tt_carrier_type tt_carrier_dns;
extern const tt_carrier_type tt_carrier_dns_tcp;
extern const tt_carrier_type tt_carrier_dns_tls;
extern const tt_carrier_type tt_carrier_dns_https;

/* The client pings after this long without sending, and gives a server
 * that says nothing for its idle time up. */
#define KEEPALIVE_MS 5000
#define CLIENT_IDLE_MS 30000
#define SERVER_IDLE_MS 60000
#define LINGER_MS 10000
#define CONNS_MAX 1024
/* Queries a client keeps in flight (its layer's slots): also the floor of
 * both engines' congestion windows, in packets. */
#define QUERIES_MAX 16

typedef struct dns_carrier {
    tt_carrier base;
    tt_carrier_cfg cfg;
    uint8_t psk[32];
    char domain[256];
    struct sockaddr_storage resolvers[TT_DNSC_RESOLVERS_MAX];
    unsigned nresolvers;
    tt_dnsq_cfg transport;    /* client: how queries reach the resolvers */
    unsigned read_timeout_ms; /* READ_TIMEOUT_IN_MILLISECONDS, 0: the layers' default */
    unsigned idle_ms;         /* server: a silent connection ends */
    /* The connections: the client's (so that closing the carrier ends
     * their lingers) and the server's, by client id. */
    tt_dnslink *conns[CONNS_MAX];
    unsigned nconns;
    /* Server: the same connections by client id, for the lookup that every
     * datagram needs (a connection is added once authenticated). */
    tt_idmap byid;
    /* Server. */
    tt_dgram *dnss;
    tt_carrier_accept_cb accept_cb;
    void *accept_ud;
    tt_replay replay;
} dns_carrier;

struct tt_carrier_dial {
    uv_timer_t timer;
    tt_link *link;
    tt_carrier_dial_cb cb;
    void *ud;
    bool cancelled;
};

static unsigned env_ms(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end != '\0' || n == 0 || n > 3600000) {
        tt_warn("ignoring %s='%s': expected milliseconds from 1 to 3600000", name, v);
        return dflt;
    }
    return (unsigned)n;
}

/* The wall clock in seconds, from the clock the server's start is marked
 * with (tt_replay_begin): time() reads a coarse clock that can still say
 * the last second a few milliseconds into the next, so a connection dialed
 * just after a server started answering was stamped before its start and
 * refused (with the "unknown" RESET, it failed at once). */
static uint64_t wall_s(const dns_carrier *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)((int64_t)ts.tv_sec + c->cfg.clock_offset_s);
}

static int parse_ip(const char *host, int port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return -EINVAL;
}

static int add_resolver(dns_carrier *c, const char *host, int port, const char **why)
{
    if (c->nresolvers == TT_DNSC_RESOLVERS_MAX) {
        *why = "dns:// takes at most 8 resolvers";
        return -EINVAL;
    }
    if (parse_ip(host, port, &c->resolvers[c->nresolvers]) != 0) {
        *why = "a dns:// resolver must be an IP address (127.0.0.1, ::1, ...)";
        return -EINVAL;
    }
    c->nresolvers++;
    return 0;
}

/* The client's own option: more resolvers beside the URL's. */
typedef struct dns_settings {
    tt_strlist resolvers;
} dns_settings;

static const tt_opt dns_rows[] = {
    {0, "dns-resolver", "IP[:PORT]", TT_OPT_LIST, offsetof(dns_settings, resolvers),
     "with dns://, dns+tcp://, dns+tls://, dns+https://: one more resolver to spread queries "
     "over, reached the same way (the scheme's port by default); repeatable, 8 in all",
     0, 0},
};

static const tt_carrier_optgroup dns_opts = {
    .sides = TT_SIDE_CLIENT,
    .opts = dns_rows,
    .n_opts = sizeof dns_rows / sizeof dns_rows[0],
    .size = sizeof(dns_settings),
};

/* dns+https://'s own option: the URL path of the resolver's DoH service
 * (the carrier URL's path is the tunnel's domain). */
typedef struct doh_settings {
    const char *path;
} doh_settings;

static const tt_opt doh_rows[] = {
    {0, "doh-path", "PATH", TT_OPT_STRING, offsetof(doh_settings, path),
     "with dns+https://: the resolver's DNS over HTTPS path (default /dns-query)", 0, 0},
};

static const tt_carrier_optgroup doh_opts = {
    .sides = TT_SIDE_CLIENT,
    .opts = doh_rows,
    .n_opts = sizeof doh_rows / sizeof doh_rows[0],
    .size = sizeof(doh_settings),
};

/* Common to both sides: the key and the domain. */
static int common_new(dns_carrier *c, uv_loop_t *loop, const tt_carrier_cfg *cfg, const char **why)
{
    c->cfg = *cfg;
    c->base.type = cfg->type;
    c->base.loop = loop;
    bool is_password;
    if (cfg->key == NULL) {
        *why = "dns:// needs a key: -k KEY (a password, or a key from 'tt keygen')";
        return -EINVAL;
    }
    if (tt_psk_derive(cfg->key, c->psk, &is_password) != 0) {
        *why = "cannot derive keys from -k";
        return -EINVAL;
    }
    const char *d = cfg->url.path;
    while (*d == '/')
        d++;
    size_t n = strlen(d);
    while (n > 0 && (d[n - 1] == '/' || d[n - 1] == '.'))
        n--;
    if (n == 0 || n >= sizeof c->domain || memchr(d, '/', n) != NULL) {
        *why = "dns:// needs the tunnel's domain as its path: dns://ADDR[:PORT]/DOMAIN";
        return -EINVAL;
    }
    memcpy(c->domain, d, n);
    c->domain[n] = '\0';
    c->read_timeout_ms = env_ms("READ_TIMEOUT_IN_MILLISECONDS", 0);
    c->idle_ms = env_ms("IDLE_CLIENT_TIMEOUT_IN_MILLISECONDS", SERVER_IDLE_MS);
    return 0;
}

/* The client's way to its resolvers, from the scheme: dns+tls:// verifies
 * each resolver as tls:// verifies its server (--ca, --pin,
 * --insecure-skip-verify) against -n NAME, or the resolver's address. */
static int transport_new(dns_carrier *c, const tt_carrier_cfg *cfg, const char **why)
{
    if (cfg->type == &tt_carrier_dns_tcp)
        c->transport.kind = TT_DNSQ_TCP;
    bool https = cfg->type == &tt_carrier_dns_https;
    if (cfg->type != &tt_carrier_dns_tls && !https)
        return 0;
    c->transport.kind = https ? TT_DNSQ_HTTPS : TT_DNSQ_TLS;
    c->transport.name = cfg->tls_name;
    c->transport.connect_timeout_ms = cfg->connect_timeout_ms;
    if (https) {
        const doh_settings *o = tt_carrier_settings(cfg, &doh_opts);
        c->transport.path = o && o->path ? o->path : "/dns-query";
        if (c->transport.path[0] != '/') {
            *why = "--doh-path must begin with '/' (the default is /dns-query)";
            return -EINVAL;
        }
    }
    /* RFC 9461 registers "dot" for DNS over TLS; a resolver that does not
     * know ALPN ignores it. DoH needs HTTP/2 (RFC 8484 section 5.2). */
    tt_tls_client_opts o = {.ca_file = cfg->ca_file,
                            .pin = cfg->pin,
                            .insecure_skip_verify = cfg->skip_verify,
                            .alpn = https ? "h2" : "dot"};
    int rc = tt_tls_client_ctx_new(&o, &c->transport.tls, why);
    if (rc == 0 && cfg->skip_verify)
        tt_warn("--insecure-skip-verify: the resolver's certificate is NOT checked; anyone on "
                "the path can see the tunnel's queries and answer them (use --pin instead)");
    return rc;
}

static int dns_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                          const char **why)
{
    dns_carrier *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    int rc = common_new(c, loop, cfg, why);
    if (rc == 0) {
        /* The URL's resolver first, then each --dns-resolver. */
        const dns_settings *o = tt_carrier_settings(cfg, &dns_opts);
        rc = add_resolver(c, cfg->url.hp.host, cfg->url.hp.port, why);
        for (unsigned i = 0; rc == 0 && o && i < o->resolvers.n; i++) {
            const char *r = o->resolvers.v[i];
            tt_hostport hp;
            const char *pwhy = NULL;
            int dport = cfg->type->default_port;
            if (parse_ip(r, dport, &(struct sockaddr_storage){0}) == 0)
                rc = add_resolver(c, r, dport, why);
            else if (tt_hostport_parse(r, &hp, &pwhy) == 0)
                rc = add_resolver(c, hp.host, hp.port, why);
            else {
                *why = "--dns-resolver takes an IP address with an optional :PORT";
                rc = -EINVAL;
            }
        }
        if (rc == 0 && c->nresolvers == 0) {
            *why = "dns:// needs a resolver address";
            rc = -EINVAL;
        }
    }
    if (rc == 0)
        rc = transport_new(c, cfg, why);
    if (rc != 0) {
        free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static void on_req_closed(uv_handle_t *h)
{
    tt_carrier_dial *req = h->data;
    tt_link *link = req->link;
    tt_carrier_dial_cb cb = req->cb;
    void *ud = req->ud;
    bool cancelled = req->cancelled;
    free(req);
    if (cancelled) {
        tt_link_close(link, NULL, NULL);
        cb(ud, UV_ECANCELED, NULL);
        return;
    }
    cb(ud, 0, link);
}

static void on_req_timer(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, on_req_closed);
}

static void forget_conn(void *owner, tt_dnslink *l);

static int dns_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                    tt_carrier_dial **out)
{
    (void)t; /* the target goes in the stream header */
    dns_carrier *c = (dns_carrier *)base;
    uint32_t id = 0;
    while (id == 0)
        tt_random(&id, sizeof id);
    tt_dnsc_cfg dc = {.domain = c->domain,
                      .resolvers = c->resolvers,
                      .nresolvers = c->nresolvers,
                      .client_id = id,
                      .max_inflight = QUERIES_MAX,
                      .idle_poll_ms = c->read_timeout_ms,
                      .transport = c->transport.kind == TT_DNSQ_UDP ? NULL : &c->transport};
    tt_dgram *dg = NULL;
    const char *why = NULL;
    int rc = tt_dnsc_open(base->loop, &dc, &dg, &why);
    if (rc != 0) {
        tt_warn("dns://: cannot open the client: %s", why ? why : uv_strerror(rc));
        return rc;
    }
    if (c->nconns == CONNS_MAX) {
        tt_dgram_close(dg, NULL, NULL);
        return UV_EMFILE;
    }
    tt_dnslink_cfg lc = {.server = false,
                         .dg = dg,
                         .client_id = id,
                         .psk = c->psk,
                         .idle_ms = CLIENT_IDLE_MS,
                         .keepalive_ms = KEEPALIVE_MS,
                         .linger_ms = LINGER_MS,
                         .window_pkts = QUERIES_MAX,
                         .on_free = forget_conn,
                         .owner = c};
    uint64_t now = wall_s(c);
    for (int i = 0; i < 4; i++)
        lc.salt[i] = (uint8_t)(now >> (24 - 8 * i));
    tt_random(lc.salt + 4, 4);
    tt_carrier_dial *req = calloc(1, sizeof *req);
    tt_dnslink *l = req ? tt_dnslink_new(base->loop, &lc) : NULL;
    if (l == NULL) {
        free(req);
        tt_dgram_close(dg, NULL, NULL);
        return -ENOMEM;
    }
    c->conns[c->nconns++] = l;
    req->link = tt_dnslink_link(l);
    req->cb = cb;
    req->ud = ud;
    rc = tt_dgram_recv_start(dg);
    if (rc != 0) {
        tt_link_close(req->link, NULL, NULL);
        free(req);
        return rc;
    }
    tt_debug("dns://: connection %08x via %s", (unsigned)id, c->cfg.url.hp.host);
    /* The callback runs from the loop, never inside dial. */
    uv_timer_init(base->loop, &req->timer);
    req->timer.data = req;
    uv_timer_start(&req->timer, on_req_timer, 0, 0);
    if (out)
        *out = req;
    return 0;
}

static void dns_dial_cancel(tt_carrier_dial *req)
{
    req->cancelled = true;
}

/* Server side. */

static tt_dnslink *find_conn(dns_carrier *c, uint32_t id)
{
    return tt_idmap_get(&c->byid, id);
}

static void forget_conn(void *owner, tt_dnslink *l)
{
    dns_carrier *c = owner;
    uint32_t id = tt_dnslink_client_id(l);
    if (find_conn(c, id) == l)
        (void)tt_idmap_del(&c->byid, id);
    for (unsigned i = 0; i < c->nconns; i++) {
        if (c->conns[i] == l) {
            c->conns[i] = c->conns[--c->nconns];
            return;
        }
    }
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A datagram from a client id without a connection (or with another salt):
 * a new connection if it opens, is fresh and starts the stream. One that
 * opens but that this server could never take as new (stamped outside the
 * replay window or before this process started, or a connection it had and
 * forgot) is answered with a RESET, so that its client learns at once that
 * the connection is gone (the server restarted, aborted or forgot it). */
static void new_conn(dns_carrier *c, uint32_t id, const uint8_t *data, size_t len)
{
    const uint8_t *salt = data;
    uint64_t stamp = get32(salt), now = wall_s(c);
    uint64_t diff = stamp > now ? stamp - now : now - stamp;
    uint8_t key[TT_REPLAY_KEY_LEN] = {0};
    memcpy(key, &id, 4);
    memcpy(key + 4, salt, TT_DNSLINK_SALT_LEN);
    const char *stale = NULL;
    if (diff * 1000 > c->cfg.replay_window_ms || !tt_replay_covers(&c->replay, stamp))
        stale = "stamped outside the replay window or before this server started";
    else if (tt_replay_seen(&c->replay, key))
        stale = "a connection this server ended";
    if (stale == NULL && c->nconns == CONNS_MAX) {
        tt_warn("dns://: %u connections; refusing client %08x", CONNS_MAX, (unsigned)id);
        return;
    }
    tt_dnslink_cfg lc = {.server = true,
                         .dg = c->dnss,
                         .client_id = id,
                         .psk = c->psk,
                         .idle_ms = c->idle_ms,
                         .linger_ms = LINGER_MS,
                         .window_pkts = QUERIES_MAX,
                         .on_free = forget_conn,
                         .owner = c};
    memcpy(lc.salt, salt, TT_DNSLINK_SALT_LEN);
    tt_dnslink *l = tt_dnslink_new(c->base.loop, &lc);
    if (l == NULL)
        return;
    /* Not in the table yet: forget_conn finds nothing if it is discarded. */
    int rc = tt_dnslink_input(l, data + TT_DNSLINK_SALT_LEN, len - TT_DNSLINK_SALT_LEN);
    if (stale != NULL && rc != -EBADMSG && rc != -ECONNRESET) {
        /* Authentic (it opened under the key), so the answer can be too;
         * a RESET of the client's own needs none. */
        tt_debug("dns://: client %08x: %s; answered with a reset", (unsigned)id, stale);
        tt_dnslink_refuse(l);
        tt_dnslink_discard(l);
        return;
    }
    if (stale != NULL || rc == -ECONNRESET) {
        tt_dnslink_discard(l);
        return;
    }
    if (rc != 0 || !tt_dnslink_started(l)) {
        /* Forged, or the middle of a stream this server does not know (it
         * restarted, or forgot the connection): the client gives up on
         * its own. */
        tt_debug("dns://: client %08x: %s; dropped", (unsigned)id,
                 rc == -EBADMSG ? "does not open under the key"
                 : rc != 0      ? "refused by the engine"
                                : "not the start of a stream");
        tt_dnslink_discard(l);
        return;
    }
    if (tt_replay_check(&c->replay, key, now) != 0) {
        tt_dnslink_discard(l);
        return;
    }
    tt_dnslink *old = find_conn(c, id);
    if (old) {
        /* The same id with a new salt: the client made a new connection
         * under an id it had used; the old one is over. */
        forget_conn(c, old);
        tt_dnslink_detach(old);
    }
    c->conns[c->nconns++] = l;
    /* Cannot fail: the map has room for twice CONNS_MAX. */
    (void)tt_idmap_put(&c->byid, id, l);
    tt_dnslink_release(l);
    tt_debug("dns://: new connection from client %08x", (unsigned)id);
    c->accept_cb(c->accept_ud, tt_dnslink_link(l));
}

static void on_server_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                               const struct sockaddr *from)
{
    (void)d;
    dns_carrier *c = ud;
    int64_t id = tt_dnst_addr_client(from);
    if (id < 0 || len < TT_DNSLINK_SALT_LEN + 1 + TT_AEAD_TAG_LEN)
        return;
    tt_dnslink *l = find_conn(c, (uint32_t)id);
    if (l && memcmp(tt_dnslink_salt(l), data, TT_DNSLINK_SALT_LEN) == 0) {
        (void)tt_dnslink_input(l, data + TT_DNSLINK_SALT_LEN, len - TT_DNSLINK_SALT_LEN);
        return;
    }
    new_conn(c, (uint32_t)id, data, len);
}

static void on_server_error(tt_dgram *d, void *ud, int err)
{
    (void)d;
    (void)ud;
    tt_error("dns:// server: %s", uv_strerror(err));
}

static const tt_dgram_handler server_handler = {
    .on_datagram = on_server_datagram,
    .on_error = on_server_error,
};

static int dns_server_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb,
                          void *ud, tt_carrier **out, const char **why)
{
    dns_carrier *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    int rc = common_new(c, loop, cfg, why);
    if (rc != 0) {
        free(c);
        return rc;
    }
    c->accept_cb = cb;
    c->accept_ud = ud;
    tt_dnss_cfg sc = {.host = cfg->url.hp.host,
                      .port = cfg->url.hp.port,
                      .domain = c->domain,
                      .hold_ms = c->read_timeout_ms,
                      .idle_ms = c->idle_ms};
    if (strcmp(sc.host, "localhost") == 0)
        sc.host = "127.0.0.1";
    if (tt_idmap_init(&c->byid, 2 * CONNS_MAX) != 0) {
        free(c);
        return -ENOMEM;
    }
    tt_replay_init(&c->replay, 4096, cfg->replay_window_s ? cfg->replay_window_s : 120);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wait_ms =
        tt_replay_begin(&c->replay, (uint64_t)(ts.tv_sec + c->cfg.clock_offset_s) * 1000 +
                                        (uint64_t)ts.tv_nsec / 1000000);
    /* A connection stamped in this second may have been seen by a server
     * that stopped earlier in it, so its stamps are refused; and since a
     * connection keeps its stamp, one opened now would never get through.
     * So nobody may reach this server before the next second: it starts
     * answering then (once, at start, less than a second). */
    if (wait_ms > 0)
        uv_sleep((unsigned)wait_ms);
    rc = tt_dnss_open(loop, &sc, &c->dnss, why);
    if (rc != 0) {
        tt_replay_free(&c->replay);
        tt_idmap_free(&c->byid);
        free(c);
        return rc;
    }
    tt_dgram_set_handler(c->dnss, &server_handler, c);
    rc = tt_dgram_recv_start(c->dnss);
    if (rc != 0) {
        tt_dgram_close(c->dnss, NULL, NULL);
        tt_replay_free(&c->replay);
        tt_idmap_free(&c->byid);
        free(c);
        *why = uv_strerror(rc);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static const char *dns_describe(tt_carrier *base, char *buf, size_t len)
{
    dns_carrier *c = (dns_carrier *)base;
    unsigned port = (unsigned)(c->dnss ? tt_dnss_udp_port(c->dnss) : c->cfg.url.hp.port);
    char path[260];
    snprintf(path, sizeof path, "/%s", c->domain);
    return tt_url_format(base->type->scheme, NULL, c->cfg.url.hp.host, port, path, buf, len);
}

static void dns_close(tt_carrier *base)
{
    dns_carrier *c = (dns_carrier *)base;
    /* A server's connections cannot outlive its nameserver: they fail (the
     * owners close them), and lingering ones go now. */
    while (c->nconns > 0) {
        tt_dnslink *l = c->conns[--c->nconns];
        if (c->dnss)
            tt_dnslink_detach(l);
        else
            tt_dnslink_orphan(l);
    }
    if (c->dnss)
        tt_dgram_close(c->dnss, NULL, NULL);
    tt_replay_free(&c->replay);
    tt_tls_ctx_free(c->transport.tls);
    tt_idmap_free(&c->byid);
    free(c);
}

static const tt_carrier_optgroup *const dns_groups[] = {&tt_carrier_key_opts,
                                                        &tt_carrier_replay_opts, &dns_opts, NULL};

const tt_carrier_type tt_carrier_dns = {
    .scheme = "dns",
    .url_form = "dns://ADDR[:PORT]/DOMAIN",
    .summary = "DNS queries through a resolver to a server authoritative for DOMAIN",
    .default_port = 53,
    .flags = TT_CARRIER_NEEDS_KEY | TT_CARRIER_PATH,
    .groups = dns_groups,
    .client_new = dns_client_new,
    .server_new = dns_server_new,
    .dial = dns_dial,
    .dial_cancel = dns_dial_cancel,
    .describe = dns_describe,
    .close = dns_close,
};

static const tt_carrier_optgroup *const dns_tcp_groups[] = {&tt_carrier_key_opts, &dns_opts, NULL};

const tt_carrier_type tt_carrier_dns_tcp = {
    .scheme = "dns+tcp",
    .url_form = "dns+tcp://IP[:53]/DOMAIN",
    .summary = "dns:// with its queries over TCP to the resolver at IP (client only)",
    .default_port = 53,
    .flags = TT_CARRIER_NEEDS_KEY | TT_CARRIER_PATH,
    .groups = dns_tcp_groups,
    .client_new = dns_client_new,
    .dial = dns_dial,
    .dial_cancel = dns_dial_cancel,
    .describe = dns_describe,
    .close = dns_close,
};

static const tt_carrier_optgroup *const dns_tls_groups[] = {
    &tt_carrier_key_opts, &tt_carrier_tls_opts, &tt_carrier_tls_client_opts, &dns_opts, NULL};

const tt_carrier_type tt_carrier_dns_tls = {
    .scheme = "dns+tls",
    .url_form = "dns+tls://IP[:853]/DOMAIN",
    .summary = "dns:// with its queries over TLS to the resolver at IP, DoT (client only)",
    .default_port = 853,
    .flags = TT_CARRIER_NEEDS_KEY | TT_CARRIER_PATH,
    .groups = dns_tls_groups,
    .client_new = dns_client_new,
    .dial = dns_dial,
    .dial_cancel = dns_dial_cancel,
    .describe = dns_describe,
    .close = dns_close,
};

static const tt_carrier_optgroup *const dns_https_groups[] = {&tt_carrier_key_opts,
                                                              &tt_carrier_tls_opts,
                                                              &tt_carrier_tls_client_opts,
                                                              &dns_opts,
                                                              &doh_opts,
                                                              NULL};

const tt_carrier_type tt_carrier_dns_https = {
    .scheme = "dns+https",
    .url_form = "dns+https://RESOLVER[:PORT]/DOMAIN",
    .summary = "dns:// with its queries over HTTPS (HTTP/2) to the resolver, DoH (client only)",
    .default_port = 443,
    .flags = TT_CARRIER_NEEDS_KEY | TT_CARRIER_PATH,
    .groups = dns_https_groups,
    .client_new = dns_client_new,
    .dial = dns_dial,
    .dial_cancel = dns_dial_cancel,
    .describe = dns_describe,
    .close = dns_close,
};
