/* tt client: entries (SOCKS5, -L forwards) on this machine, streams carried
 * to the server by the carrier named in -s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/addr.h"
#include "core/log.h"
#include "entry/entry.h"
#include "entry/forward.h"
#include "entry/socks5.h"
#include "exit/resolver.h"
#include "mux/pool.h"

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
    const char *log_level;
    int verbose;
    bool mux;
    unsigned mux_max_streams;
    unsigned mux_keepalive_ms;
    unsigned mux_idle_ms;
    bool early_reply;
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
    {'l', "listen", "ADDR", TT_OPT_STRING, O(listen),
     "SOCKS5 proxy address, HOST:PORT or PORT (default 127.0.0.1:1080; 'none' for no proxy)", 0, 0},
    {'L', "forward", "LISTEN[=DEST]", TT_OPT_LIST, O(forwards),
     "forward connections to [HOST:]PORT to DEST (HOST:PORT) through the tunnel; without =DEST, "
     "to the server's fixed destination (its -d); repeatable",
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
    {0, "log-level", "LEVEL", TT_OPT_STRING, O(log_level),
     "error, warn, info (default), debug or trace; also LOG_LEVEL in the environment", 0, 0},
    {'v', "verbose", NULL, TT_OPT_COUNT, O(verbose), "log more; repeat for more still", 0, 0},
};
#undef O

static tt_cmd_spec client_spec = {
    .name = "client",
    .usage = "tt client -s URL [-k KEY] [-l ADDR] [-L LISTEN[=DEST] ...] [options]",
    .about = "Runs a SOCKS5 proxy (and any -L forwards) on this machine and carries every\n"
             "connection through the tt server, which connects to the destination. A SERVER\n"
             "without a port follows the server's hopping ports (same -k, -r, --hop-interval).",
};

typedef struct client {
    tt_carrier *carrier;
    tt_resolver *resolver;
    tt_tcp_listener *listeners[TT_STRLIST_MAX + 1];
    unsigned n_listeners;
    tt_entry_cfg ecfg;
    tt_forward forwards[TT_STRLIST_MAX];
    tt_cred *creds;
} client;

static void client_stop(void *ud)
{
    client *c = ud;
    for (unsigned i = 0; i < c->n_listeners; i++)
        tt_tcp_listener_close(c->listeners[i]);
    c->n_listeners = 0;
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

static int setup(client *c, client_cfg *cfg, tt_carrier_opts *co, uv_loop_t *loop)
{
    const char *why = NULL;
    if (cfg->server == NULL)
        return tt_opts_fail(&client_spec, "missing -s/--server SERVER");
    if (cfg->handshake_timeout_ms == 0)
        return tt_opts_fail(&client_spec, "--handshake-timeout must be more than 0");
    int rc = tt_cmd_carrier_cfg(&client_spec, "--server", cfg->server, co);
    if (rc)
        return rc;
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
    if (!socks && cfg->forwards.n == 0)
        return tt_opts_fail(&client_spec, "nothing to do: --listen none and no -L forward");
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
    if (cfg->mux) {
        /* The pool is a carrier too: the entries and the stream layer run
         * over it unchanged, and it owns the real carrier from now on. */
        tt_mux_cfg mc;
        tt_mux_cfg_default(&mc);
        mc.ping_interval_ms = cfg->mux_keepalive_ms;
        mc.ping_timeout_ms = cfg->mux_keepalive_ms / 2;
        mc.idle_timeout_ms = cfg->mux_idle_ms;
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
    return 0;
}

static int run(void *opaque, tt_carrier_opts *co)
{
    client_cfg *cfg = opaque;
    int rc = tt_cmd_setup_log(&client_spec, cfg->log_level, cfg->verbose);
    if (rc)
        return rc;
    uv_loop_t *loop = uv_default_loop();
    client c = {0};
    rc = setup(&c, cfg, co, loop);
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
    };
    return tt_cmd_main(&client_spec, client_opts, sizeof client_opts / sizeof client_opts[0], &cfg,
                       false, argc, argv, run);
}
