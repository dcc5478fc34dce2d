/* tt server: accepts streams from clients over the carrier named in -l and
 * connects them to their destinations through the exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/carrier.h"
#include "cmd/cmd.h"
#include "core/addr.h"
#include "core/log.h"
#include "exit/acl.h"
#include "exit/nameserver.h"
#include "exit/resolver.h"
#include "codec/ttproto.h"
#include "session/server.h"
#include "stream/accept.h"

/* Listeners of one server, at most. */
#define LISTEN_MAX 8

typedef struct server_cfg {
    tt_strlist listen;
    const char *destination;
    tt_strlist allow;
    tt_strlist deny;
    bool insecure;
    unsigned timeout_ms;
    unsigned handshake_timeout_ms;
    unsigned connect_timeout_ms;
    unsigned session_linger_ms;
    tt_cmd_service svc;
} server_cfg;

#define O(field) offsetof(server_cfg, field)
static const tt_opt server_opts[] = {
    {'l', "listen", "URL", TT_OPT_LIST, O(listen),
     "where clients connect: a carrier URL (below); HOST alone means tt:// with hopping ports "
     "(default 0.0.0.0); repeatable: every listener feeds the same sessions and exits, so the "
     "up and down legs of a split client (--down) may arrive on different ones",
     0, 0},
    {'d', "destination", "HOST:PORT", TT_OPT_STRING, O(destination),
     "send every stream to HOST:PORT, whatever the client asked for", 0, 0},
    {0, "allow", "CIDR", TT_OPT_LIST, O(allow),
     "permit destinations in CIDR, e.g. 127.0.0.0/8 (private ranges are refused by default); "
     "repeatable",
     0, 0},
    {0, "deny", "CIDR", TT_OPT_LIST, O(deny),
     "refuse destinations in CIDR; wins over --allow; repeatable", 0, 0},
    {0, "insecure", NULL, TT_OPT_FLAG, O(insecure),
     "let an unencrypted carrier (tcp://) listen on a non-loopback address", 0, 0},
    {0, "timeout", "DURATION", TT_OPT_DURATION, O(timeout_ms),
     "close a stream idle this long in both directions (default 5m; 0 = never)", 0, 0},
    {0, "handshake-timeout", "DURATION", TT_OPT_DURATION, O(handshake_timeout_ms),
     "limit for a client's handshake and stream header (default 10s; more than 0)", 0, 0},
    {0, "connect-timeout", "DURATION", TT_OPT_DURATION, O(connect_timeout_ms),
     "limit for resolving and connecting to a destination (default 10s)", 0, 0},
    {0, "session-linger", "DURATION", TT_OPT_DURATION, O(session_linger_ms),
     "keep a resumable session (a client's --resume) this long after its connection is lost, "
     "for the client to resume it; then its streams are reset (default 60s; also "
     "TT_SESSION_LINGER)",
     0, 0},
    TT_CMD_SERVICE_OPTS(server_cfg, svc),
};
#undef O

static tt_cmd_spec server_spec = {
    .name = "server",
    .usage = "tt server -k KEY [-l URL ...] [-d HOST:PORT] [--allow CIDR ...] [options]",
    .about = "Accepts tunnel clients and connects each of their streams to its\n"
             "destination (or to the fixed -d destination). Destinations on loopback, private,\n"
             "link-local and similar ranges are refused unless opened with --allow.",
};

typedef struct server {
    tt_carrier *carriers[LISTEN_MAX];
    unsigned n_carriers;
    tt_carrier_cfg ccfgs[LISTEN_MAX]; /* one per -l */
    tt_resolver *resolver;
    tt_acl acl;
    tt_stream_server_cfg scfg;
    tt_sess_server *sessions;
} server;

static void on_stream(void *ud, tt_link *link)
{
    server *s = ud;
    tt_stream_accept(link, &s->scfg);
}

static void on_session(void *ud, tt_link *link)
{
    server *s = ud;
    tt_stream_accept_session(link, &s->scfg);
}

/* The table of resumable sessions: every server takes them (and plain
 * clients alike); without -k it refuses their joins with one clear line.
 * Returns 0 or 2 after one error line. */
static int setup_sessions(server *s, server_cfg *cfg, tt_carrier_opts *co, uv_loop_t *loop)
{
    const char *env = getenv("TT_SESSION_LINGER");
    if (env && *env && !tt_opts_given(&co->sets[0], "session-linger") &&
        tt_parse_duration(env, &cfg->session_linger_ms) != 0)
        return tt_opts_fail(&server_spec,
                            "invalid TT_SESSION_LINGER '%s': expected a duration such as 60s", env);
    if (cfg->session_linger_ms == 0)
        return tt_opts_fail(&server_spec, "--session-linger must be more than 0");
    uint8_t psk[32];
    bool is_password = false;
    bool has_key = co->cfg.key && tt_psk_derive(co->cfg.key, psk, &is_password) == 0;
    tt_sess_server_cfg sc = {
        .psk = has_key ? psk : NULL,
        .linger_ms = cfg->session_linger_ms,
        .handshake_timeout_ms = cfg->handshake_timeout_ms,
        .window_ms = co->cfg.replay_window_ms,
        .on_session = on_session,
        .ud = s,
    };
    s->sessions = tt_sess_server_new(loop, &sc);
    if (s->sessions == NULL)
        return tt_opts_fail(&server_spec, "out of memory");
    s->scfg.sessions = s->sessions;
    return 0;
}

static void server_stop(void *ud)
{
    server *s = ud;
    if (s->sessions) {
        tt_sess_server_close(s->sessions);
        s->sessions = NULL;
        s->scfg.sessions = NULL;
    }
    for (unsigned i = 0; i < s->n_carriers; i++)
        s->carriers[i]->type->close(s->carriers[i]);
    s->n_carriers = 0;
}

static int setup(server *s, server_cfg *cfg, tt_carrier_opts *co, uv_loop_t *loop)
{
    const char *why = NULL;
    /* Without a handshake limit a silent client would hold a connection (and
     * a probe would get no close) forever. */
    if (cfg->handshake_timeout_ms == 0)
        return tt_opts_fail(&server_spec, "--handshake-timeout must be more than 0");
    if (cfg->listen.n == 0)
        cfg->listen.v[cfg->listen.n++] = "0.0.0.0";
    unsigned n = cfg->listen.n;
    if (n > LISTEN_MAX)
        return tt_opts_fail(&server_spec, "-l/--listen given more than %d times", LISTEN_MAX);
    const char *opts[LISTEN_MAX];
    for (unsigned i = 0; i < n; i++)
        opts[i] = "--listen";
    tt_carrier_cfg *ccfgs = s->ccfgs;
    int rc = tt_cmd_carrier_cfgs(&server_spec, opts, cfg->listen.v, n, co, ccfgs);
    if (rc)
        return rc;
    /* The first listener's settings stand for the shared ones. */
    co->cfg = ccfgs[0];
    for (unsigned i = 0; i < n; i++) {
        tt_carrier_cfg *ccfg = &ccfgs[i];
        ccfg->insecure = cfg->insecure;
        ccfg->connect_timeout_ms = cfg->connect_timeout_ms;
        ccfg->handshake_timeout_ms = cfg->handshake_timeout_ms;
        ccfg->idle_timeout_ms = cfg->timeout_ms;
        const tt_carrier_type *type = ccfg->type;
        if ((type->flags & TT_CARRIER_KEY_GUARDS) && ccfg->key == NULL) {
            /* Only tt:// insists on a key for itself; for the web carriers the
             * key is what keeps the server from being an open proxy. */
            if (cfg->destination == NULL)
                return tt_opts_fail(&server_spec,
                                    "missing -k KEY: without it anyone who finds this %s:// "
                                    "server could use it (or give -d HOST:PORT for one fixed "
                                    "destination)",
                                    type->scheme);
            tt_warn("no -k: anyone who can reach this server (and knows its path) reaches %s",
                    cfg->destination);
        }
    }
    tt_acl_init(&s->acl);
    for (unsigned i = 0; i < cfg->allow.n; i++) {
        if (tt_acl_add(&s->acl, true, cfg->allow.v[i], &why) != 0)
            return tt_opts_fail(&server_spec, "invalid --allow '%s': %s", cfg->allow.v[i], why);
    }
    for (unsigned i = 0; i < cfg->deny.n; i++) {
        if (tt_acl_add(&s->acl, false, cfg->deny.v[i], &why) != 0)
            return tt_opts_fail(&server_spec, "invalid --deny '%s': %s", cfg->deny.v[i], why);
    }
    s->scfg.acl = &s->acl;
    s->scfg.connect_timeout_ms = cfg->connect_timeout_ms;
    s->scfg.handshake_timeout_ms = cfg->handshake_timeout_ms;
    s->scfg.idle_timeout_ms = cfg->timeout_ms;
    /* Tunneler's server takes its target from the environment; in the
     * roles tt shares with it (dns:// and the plain tcp:// proxy) so does
     * tt, when -d is not given. */
    static char tunneler_dest[300];
    const char *scheme = co->cfg.type ? co->cfg.type->scheme : "";
    const char *raddr = getenv("REMOTE_ADDRESS"), *rport = getenv("REMOTE_PORT");
    if (cfg->destination == NULL && (strcmp(scheme, "dns") == 0 || strcmp(scheme, "tcp") == 0) &&
        raddr && *raddr && rport && *rport) {
        snprintf(tunneler_dest, sizeof tunneler_dest, strchr(raddr, ':') ? "[%s]:%s" : "%s:%s",
                 raddr, rport);
        cfg->destination = tunneler_dest;
    }
    if (cfg->destination) {
        tt_hostport hp;
        if (tt_hostport_parse(cfg->destination, &hp, &why) != 0 ||
            tt_target_set(&s->scfg.fixed_dest, hp.host, hp.port) != 0)
            return tt_opts_fail(&server_spec, "invalid --destination '%s': %s", cfg->destination,
                                why ? why : "bad host");
        s->scfg.has_fixed_dest = true;
    }

    rc = setup_sessions(s, cfg, co, loop);
    if (rc)
        return rc;
    tt_carrier_cfg *ccfg = &co->cfg;
    rc = tt_cmd_resolver(&server_spec, ccfg, loop, &s->resolver);
    if (rc)
        return rc;
    ccfg->resolver = s->resolver;
    s->scfg.resolver = s->resolver;
    /* The nameserver a client's --dns reaches (exit/nameserver.h). */
    if (tt_nameserver_find(ccfg->resolver_text, "/etc/resolv.conf", &s->scfg.nameserver) == 0) {
        char tbuf[TT_TARGET_STRLEN];
        s->scfg.has_nameserver = true;
        tt_nameserver_acl(&s->acl, &s->scfg.nameserver, &s->scfg.nameserver_acl);
        tt_debug("clients' DNS (--dns) goes to %s",
                 tt_target_format(&s->scfg.nameserver, tbuf, sizeof tbuf));
    }
    for (unsigned i = 0; i < n; i++) {
        ccfgs[i].resolver = s->resolver;
        tt_carrier *car = NULL;
        rc = ccfgs[i].type->server_new(loop, &ccfgs[i], on_stream, s, &car, &why);
        if (rc < 0) {
            tt_error("cannot listen on %s: %s", cfg->listen.v[i], why);
            return 1;
        }
        s->carriers[s->n_carriers++] = car;
        char buf[300];
        tt_info("tt server listening on %s%s%s", car->type->describe(car, buf, sizeof buf),
                cfg->destination ? ", every stream to " : "",
                cfg->destination ? cfg->destination : "");
    }
    return 0;
}

static int run(void *opaque, tt_carrier_opts *co)
{
    server_cfg *cfg = opaque;
    /* Before the loop exists: --daemon forks. */
    int rc = tt_cmd_service_start(&server_spec, &cfg->svc);
    if (rc)
        return rc;
    server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return 1;
    uv_loop_t *loop = uv_default_loop();
    rc = setup(s, cfg, co, loop);
    if (rc == 0)
        rc = tt_cmd_service_ready();
    if (rc == 0)
        tt_cmd_run(loop, server_stop, s);
    server_stop(s);
    if (s->resolver)
        tt_resolver_free(s->resolver);
    free(s);
    return rc;
}

int tt_cmd_server(int argc, char **argv)
{
    server_cfg cfg = {
        .timeout_ms = 300000,
        .handshake_timeout_ms = 10000,
        .connect_timeout_ms = 10000,
        .session_linger_ms = 60000,
    };
    return tt_cmd_main(&server_spec, server_opts, sizeof server_opts / sizeof server_opts[0], &cfg,
                       true, argc, argv, run);
}
