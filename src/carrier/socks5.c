/* The socks5:// carrier: streams leave through an upstream SOCKS5 proxy
 * (ssh -D, Tor, a corporate proxy), one proxy connection per stream, opened
 * with the proxy's own CONNECT instead of tt's stream header. There is no tt
 * server at the far end, so the carrier is client-only and takes no --mux.
 *
 * It is the tcp:// carrier's connection plus a SOCKS5 opener: the dial is
 * tcp.c's, to the proxy's address; the exchange is codec/socks5c.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/carrier.h"
#include "codec/socks5.h"
#include "codec/socks5c.h"

extern const tt_carrier_type tt_carrier_tcp;
extern const tt_carrier_type tt_carrier_socks5;
static const tt_carrier_optgroup s5_group;

/* The proxy login, as typed. */
typedef struct socks5_settings {
    const char *user;
    const char *pass;
} socks5_settings;

typedef struct socks5_carrier {
    tt_carrier base;
    tt_carrier *tcp; /* connects to the proxy */
    socks5_settings o;
    char text[TT_HOST_MAX + 20]; /* "socks5://HOST:PORT" for log lines */
} socks5_carrier;

static int s5_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                         const char **why)
{
    socks5_carrier *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    const socks5_settings *o = tt_carrier_settings(cfg, &s5_group);
    if (o)
        c->o = *o;
    int rc = tt_carrier_tcp.client_new(loop, cfg, &c->tcp, why);
    if (rc < 0) {
        free(c);
        return rc;
    }
    const tt_hostport *hp = &cfg->url.hp;
    tt_url_format("socks5", NULL, hp->host, hp->port, NULL, c->text, sizeof c->text);
    c->base.type = &tt_carrier_socks5;
    c->base.loop = loop;
    *out = &c->base;
    return 0;
}

/* The proxy needs the destination in its request, not in the dial: the
 * connection itself is the tcp carrier's. */
static int s5_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                   tt_carrier_dial **req)
{
    socks5_carrier *c = (socks5_carrier *)base;
    return c->tcp->type->dial(c->tcp, t, cb, ud, req);
}

static void s5_dial_cancel(tt_carrier_dial *req)
{
    tt_carrier_tcp.dial_cancel(req);
}

static const char *s5_describe(tt_carrier *base, char *buf, size_t len)
{
    snprintf(buf, len, "%s", ((socks5_carrier *)base)->text);
    return buf;
}

static void s5_close(tt_carrier *base)
{
    socks5_carrier *c = (socks5_carrier *)base;
    c->tcp->type->close(c->tcp);
    free(c);
}

/* The opener: the SOCKS5 exchange, one message per round trip. */

static int s5_start(void *st, const tt_target *t, const char *user, const char *pass, uint8_t *out,
                    const char **why)
{
    size_t n = tt_socks5c_start(st, t, user, pass, out);
    if (n == 0) {
        *why = "the destination cannot be sent to a SOCKS5 proxy";
        return -EINVAL;
    }
    return (int)n;
}

static int s5_begin(void *st, const tt_carrier *base, const tt_target *t, uint8_t *out,
                    const char **why)
{
    const socks5_carrier *c = (const socks5_carrier *)base;
    return s5_start(st, t, c->o.user, c->o.pass, out, why);
}

/* Without a login: the proxy is one the carrier started itself. */
static int s5_begin_anon(void *st, const tt_carrier *c, const tt_target *t, uint8_t *out,
                         const char **why)
{
    (void)c;
    return s5_start(st, t, NULL, NULL, out, why);
}

static size_t s5_input(void *st, const tt_carrier *c, const uint8_t *in, size_t n, int *rep,
                       uint8_t *out, size_t *out_len, const char **why)
{
    (void)c;
    enum tt_socks5c_result res;
    int code = TT_S5_REP_GENERAL;
    size_t used = tt_socks5c_feed(st, in, n, &res, out, out_len, &code, why);
    if (res == TT_S5C_DONE || res == TT_S5C_FAIL)
        *rep = code;
    /* The proxy's reply code goes to the application as it is (a SOCKS5
     * entry answers with it), so "connection refused" stays exact. */
    return used;
}

static const tt_carrier_opener s5_opener = {
    .state_size = sizeof(tt_socks5c),
    .early_with_request = false,
    .begin = s5_begin,
    .input = s5_input,
};

const tt_carrier_opener tt_carrier_socks5_opener = {
    .state_size = sizeof(tt_socks5c),
    .early_with_request = false,
    .begin = s5_begin_anon,
    .input = s5_input,
};

/* Its own options. */

#define O(field) offsetof(socks5_settings, field)
static const tt_opt s5_rows[] = {
    {0, "proxy-user", "NAME", TT_OPT_STRING, O(user),
     "log in to the SOCKS5 proxy with this username (RFC 1929)", 0, 0},
    {0, "proxy-pass", "PASSWORD", TT_OPT_STRING, O(pass),
     "the password for --proxy-user (also TT_PROXY_PASS in the environment)", 0, 0},
};
#undef O

static int s5_check(void *p, const tt_opt_set *set, bool server, char *why, size_t len)
{
    socks5_settings *o = p;
    (void)set, (void)server;
    if (o->pass == NULL && o->user != NULL)
        o->pass = getenv("TT_PROXY_PASS");
    if ((o->user == NULL) != (o->pass == NULL || *o->pass == '\0')) {
        snprintf(why, len, "--proxy-user and --proxy-pass (or TT_PROXY_PASS) go together");
        return -EINVAL;
    }
    if (o->user && (strlen(o->user) > 255 || strlen(o->pass) > 255)) {
        snprintf(why, len, "a SOCKS5 username and password are 255 bytes at most");
        return -EINVAL;
    }
    return 0;
}

static const tt_carrier_optgroup s5_group = {
    .sides = TT_SIDE_CLIENT,
    .opts = s5_rows,
    .n_opts = sizeof s5_rows / sizeof s5_rows[0],
    .size = sizeof(socks5_settings),
    .check = s5_check,
};

static const tt_carrier_optgroup *const s5_groups[] = {&s5_group, NULL};

const tt_carrier_type tt_carrier_socks5 = {
    .scheme = "socks5",
    .url_form = "socks5://HOST[:PORT]",
    .summary = "an upstream SOCKS5 proxy (ssh -D, Tor, a corporate proxy); client only",
    .default_port = 1080,
    .groups = s5_groups,
    .opener = &s5_opener,
    .client_new = s5_client_new,
    .server_new = NULL,
    .dial = s5_dial,
    .dial_cancel = s5_dial_cancel,
    .describe = s5_describe,
    .close = s5_close,
};
