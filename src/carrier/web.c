#include "carrier/web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/www.h"
#include "core/log.h"
#include "core/target.h"
#include "exit/dial.h"
#include "link/relay.h"

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
        /* No web server to pass it to: the connection ends as if the site
         * had gone away. */
        tt_info("c%llu %s: fallback unreachable: %s", (unsigned long long)f->l->id, f->peer,
                uv_strerror(err));
        tt_link_close(f->l, NULL, NULL);
    } else if (f->len > 0 && tt_link_write1(fb, f->bytes, f->len) < 0) {
        tt_link_close(fb, NULL, NULL);
        tt_link_close(f->l, NULL, NULL);
    } else {
        char label[TT_RELAY_LABEL_MAX];
        snprintf(label, sizeof label, "c%llu %s -> fallback", (unsigned long long)f->l->id,
                 f->peer);
        tt_relay_opts ro = {.idle_timeout_ms = f->idle_ms, .label = label};
        tt_relay_start(f->l, fb, &ro);
    }
    free(f->bytes);
    free(f);
}

void tt_web_answer(tt_link *l, const tt_carrier_cfg *cfg, const uint8_t *bytes, size_t len,
                   const char *peer)
{
    if (!cfg->has_fallback) {
        /* nginx drops a client that stops sending after 60 s by default
         * (client_header_timeout): the site keeps that, not the tunnel's
         * idle timeout. */
        tt_www_opts o = {.dir = cfg->www_dir,
                         .server_name = WEB_SERVER_NAME,
                         .idle_timeout_ms = 60000,
                         .port = cfg->url.hp.port,
                         .https = strcmp(cfg->url.scheme, "ws") != 0};
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
    tt_target t;
    tt_target_set(&t, cfg->fallback.host, cfg->fallback.port);
    tt_dial_opts opts = {
        .acl = NULL, .timeout_ms = cfg->connect_timeout_ms, .resolver = cfg->resolver};
    if (tt_dial_start(l->loop, &t, &opts, on_fallback, f, NULL) != 0) {
        free(f->bytes);
        free(f);
        tt_link_close(l, NULL, NULL);
    }
}
