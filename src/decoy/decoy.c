#include "decoy/decoy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoy/fallback.h"
#include "decoy/www.h"

/* What a stock nginx says in its Server header with server_tokens off. */
#define WEB_SERVER_NAME "nginx"

typedef struct fallback {
    tt_link *l;
    uint8_t *bytes;
    size_t len;
    unsigned idle_ms;
    char peer[64];
} fallback;

/* While the fallback is dialed the link is not read; a write error of its
 * own would be its only report, and the relay will meet it again. */
static void idle_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    (void)l, (void)ud, (void)d, (void)n;
}
static void idle_eof(tt_link *l, void *ud)
{
    (void)l, (void)ud;
}
static void idle_error(tt_link *l, void *ud, int err)
{
    (void)l, (void)ud, (void)err;
}
static const tt_link_handler idle_handler = {idle_data, idle_eof, idle_error, NULL};

static void on_fallback(void *ud, uint8_t rep, int err, tt_link *fb)
{
    fallback *f = ud;
    (void)rep;
    if (fb == NULL) {
        tt_fallback_unreachable(f->l, f->peer, err);
        tt_link_close(f->l, NULL, NULL);
    } else {
        tt_fallback_relay(f->l, fb, f->bytes, f->len, f->idle_ms, f->peer);
    }
    free(f->bytes);
    free(f);
}

/* The site's settings: nginx's timers (client_header_timeout and
 * keepalive_timeout from the options, 60 s for a stalled body or reader),
 * not the tunnel's idle timeout. */
static tt_www_opts site_opts(const tt_carrier_cfg *cfg, uint64_t deadline)
{
    return (tt_www_opts){.dir = cfg->www_dir,
                         .server_name = WEB_SERVER_NAME,
                         .idle_timeout_ms = 60000,
                         .header_timeout_ms = cfg->header_timeout_ms,
                         .keepalive_timeout_ms = cfg->keepalive_timeout_ms,
                         .first_deadline = deadline,
                         .port = cfg->url.hp.port,
                         .https = strcmp(cfg->url.scheme, "ws") != 0 &&
                                  strcmp(cfg->url.scheme, "http") != 0};
}

void tt_decoy_plain_on_tls(tt_link *l, const tt_carrier_cfg *cfg, const uint8_t *bytes, size_t len,
                           uint64_t deadline)
{
    tt_www_opts o = site_opts(cfg, deadline);
    o.https = false;
    o.plain_on_https = true;
    tt_www_serve_opts(l, &o, bytes, len);
}

void tt_decoy_answer(tt_link *l, const tt_carrier_cfg *cfg, const uint8_t *bytes, size_t len,
                     const char *peer, uint64_t deadline)
{
    if (!cfg->has_fallback) {
        tt_www_opts o = site_opts(cfg, deadline);
        tt_www_serve_opts(l, &o, bytes, len);
        return;
    }
    fallback *f = calloc(1, sizeof *f);
    uint8_t *copy = len > 0 ? malloc(len) : NULL;
    if (f == NULL || (len > 0 && copy == NULL)) {
        free(f);
        free(copy);
        tt_link_close(l, NULL, NULL);
        return;
    }
    if (len > 0)
        memcpy(copy, bytes, len);
    f->l = l;
    tt_link_set_handler(l, &idle_handler, f);
    f->bytes = copy;
    f->len = len;
    f->idle_ms = cfg->idle_timeout_ms;
    snprintf(f->peer, sizeof f->peer, "%s", peer);
    if (tt_fallback_dial(l->loop, cfg, on_fallback, f) != 0) {
        free(f->bytes);
        free(f);
        tt_link_close(l, NULL, NULL);
    }
}
