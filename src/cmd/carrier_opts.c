/* The carrier options of every type, and from them and an endpoint URL a
 * checked tt_carrier_cfg. Nothing here knows a particular carrier: the types
 * say which option groups they take (src/carrier/carrier.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "codec/ttproto.h"
#include "core/crypto.h"
#include "core/log.h"
#include "exit/resolver.h"

static bool on_side(const tt_carrier_optgroup *g, bool server)
{
    return (g->sides & (server ? TT_SIDE_SERVER : TT_SIDE_CLIENT)) != 0;
}

static int add_group(tt_carrier_opts *o, const tt_carrier_optgroup *g)
{
    for (size_t i = 1; i < o->n_sets; i++) {
        if (o->groups[i] == g)
            return 0;
    }
    if (!on_side(g, o->server) || g->n_opts == 0)
        return 0;
    if (o->n_sets > TT_CMD_GROUPS_MAX)
        return -ENOMEM;
    size_t k = o->n_sets++;
    void *st = &o->cfg;
    if (g->size) {
        st = calloc(1, g->size);
        if (st == NULL)
            return -ENOMEM;
        o->settings[k] = st;
    }
    if (g->init)
        g->init(st);
    /* The heading: the schemes that take the group. The shared network
     * options apply to every carrier. */
    static char titles[2][TT_CMD_GROUPS_MAX + 1][160];
    char *title = titles[o->server][k];
    if (g == &tt_carrier_net_opts) {
        snprintf(title, sizeof titles[0][0], "Options of every carrier");
    } else {
        char list[120];
        tt_carrier_schemes(g, o->server, list, sizeof list);
        snprintf(title, sizeof titles[0][0], "Options of %s", list);
    }
    o->groups[k] = g;
    o->sets[k] = (tt_opt_set){.title = title, .opts = g->opts, .n_opts = g->n_opts, .cfg = st};
    return 0;
}

int tt_carrier_opts_init(tt_carrier_opts *o, bool server)
{
    memset(o, 0, sizeof *o);
    o->server = server;
    o->n_sets = 1;
    int rc = add_group(o, &tt_carrier_net_opts);
    for (size_t i = 0; rc == 0 && tt_carrier_type_at(i); i++) {
        const tt_carrier_type *t = tt_carrier_type_at(i);
        if (!tt_carrier_type_on_side(t, server))
            continue;
        for (size_t j = 0; rc == 0 && t->groups && t->groups[j]; j++)
            rc = add_group(o, t->groups[j]);
    }
    return rc;
}

void tt_carrier_opts_free(tt_carrier_opts *o)
{
    for (size_t i = 0; i < o->n_sets; i++) {
        free(o->settings[i]);
        o->settings[i] = NULL;
    }
}

const char *tt_carrier_opts_help(const tt_carrier_opts *o)
{
    static char buf[2][2048];
    char *b = buf[o->server];
    size_t n = (size_t)snprintf(b, sizeof buf[0], "Carriers (%s URL):\n", o->server ? "-l" : "-s");
    for (size_t i = 0; tt_carrier_type_at(i) && n < sizeof buf[0]; i++) {
        const tt_carrier_type *t = tt_carrier_type_at(i);
        if (tt_carrier_type_on_side(t, o->server))
            n +=
                (size_t)snprintf(b + n, sizeof buf[0] - n, "  %-30s %s\n", t->url_form, t->summary);
    }
    return b;
}

/* Reads URL_TEXT (given as OPT) into CFG's url and type. Returns 0, or 2
 * after one error line. */
static int endpoint(const tt_cmd_spec *spec, const char *opt, const char *url_text,
                    const tt_carrier_opts *o, tt_carrier_cfg *cfg)
{
    const char *why = NULL;
    if (tt_url_parse_ex(url_text, true, &cfg->url, &why) != 0)
        return tt_opts_fail(spec, "invalid %s '%s': %s", opt, url_text, why);
    if (cfg->url.scheme[0] == '\0')
        strcpy(cfg->url.scheme, "tt");
    const tt_carrier_type *t = tt_carrier_find(cfg->url.scheme);
    char known[256];
    if (t == NULL)
        return tt_opts_fail(spec, "unknown scheme '%s://' in %s (known: %s)", cfg->url.scheme, opt,
                            tt_carrier_schemes(NULL, o->server, known, sizeof known));
    /* A type whose far end is not tt (socks5://, ssh://) says so; the
     * others without a server (dns+tls://) are a client's way to a server
     * of another scheme. */
    if (!tt_carrier_type_on_side(t, o->server))
        return tt_opts_fail(spec, "%s:// has no server side (%s); %s takes %s", t->scheme,
                            t->opener ? "its far end is not tt" : "it is for the client only", opt,
                            tt_carrier_schemes(NULL, true, known, sizeof known));
    cfg->type = t;
    if (cfg->url.user[0] && !(t->flags & TT_CARRIER_USER))
        return tt_opts_fail(spec, "invalid %s '%s': %s:// takes no USER@", opt, url_text,
                            t->scheme);
    if (cfg->url.hp.port == 0 && !(t->flags & TT_CARRIER_PORT_OPTIONAL)) {
        if (t->default_port == 0)
            return tt_opts_fail(spec, "invalid %s '%s': missing port", opt, url_text);
        cfg->url.hp.port = t->default_port;
    }
    if ((t->flags & TT_CARRIER_PATH) && cfg->url.path[0] == '\0')
        strcpy(cfg->url.path, "/");
    return 0;
}

int tt_cmd_carrier_cfgs(const tt_cmd_spec *spec, const char *const *opts,
                        const char *const *url_texts, size_t n, tt_carrier_opts *o,
                        tt_carrier_cfg *out)
{
    for (size_t k = 0; k < n; k++) {
        int rc = endpoint(spec, opts[k], url_texts[k], o, &out[k]);
        if (rc)
            return rc;
    }
    /* An option of a group that none of the carriers takes would do
     * nothing: the user who typed it learns that it is not in effect. */
    for (size_t i = 1; i < o->n_sets; i++) {
        char name[64], list[120];
        const char *given = tt_opts_first_given(&o->sets[i], name, sizeof name);
        bool taken = false;
        for (size_t k = 0; k < n && !taken; k++)
            taken = tt_carrier_type_has(out[k].type, o->groups[i]);
        if (given == NULL || taken)
            continue;
        tt_carrier_schemes(o->groups[i], o->server, list, sizeof list);
        return tt_opts_fail(spec, "%s applies to %s only, not %s://", given, list,
                            out[0].type->scheme);
    }
    for (size_t k = 0; k < n; k++) {
        const tt_carrier_type *t = out[k].type;
        /* The shared groups first, so that a type's own check can rely on them. */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 1; i < o->n_sets; i++) {
                const tt_carrier_optgroup *g = o->groups[i];
                if ((g->size != 0) != (pass == 1) || !tt_carrier_type_has(t, g) || g->check == NULL)
                    continue;
                char msg[400];
                if (g->check(o->sets[i].cfg, &o->sets[i], o->server, msg, sizeof msg) != 0)
                    return tt_opts_fail(spec, "%s", msg);
            }
        }
        /* The shared options are the same for every endpoint. */
        tt_url url = out[k].url;
        out[k] = o->cfg;
        out[k].url = url;
        out[k].type = t;
        memset(out[k].settings, 0, sizeof out[k].settings);
        /* The instance finds its groups' settings by the type's own order. */
        for (size_t j = 0; t->groups && j < TT_CARRIER_GROUPS_MAX && t->groups[j]; j++) {
            for (size_t i = 1; i < o->n_sets; i++) {
                if (o->groups[i] == t->groups[j])
                    out[k].settings[j] = o->settings[i];
            }
        }
        if ((t->flags & TT_CARRIER_NEEDS_KEY) && out[k].key == NULL)
            return tt_opts_fail(spec, "missing -k KEY (a password, or a key from 'tt keygen')");
    }
    return 0;
}

int tt_cmd_carrier_cfg(const tt_cmd_spec *spec, const char *opt, const char *url_text,
                       tt_carrier_opts *o)
{
    tt_carrier_cfg cfg = {0};
    int rc = tt_cmd_carrier_cfgs(spec, &opt, &url_text, 1, o, &cfg);
    if (rc == 0)
        o->cfg = cfg;
    return rc;
}

int tt_cmd_main(tt_cmd_spec *spec, const tt_opt *opts, size_t n_opts, void *cfg, bool server,
                int argc, char **argv, int (*run)(void *cfg, tt_carrier_opts *co))
{
    tt_carrier_opts *co = malloc(sizeof *co);
    if (co == NULL || tt_carrier_opts_init(co, server) != 0) {
        fprintf(stderr, "tt %s: out of memory\n", spec->name);
        if (co)
            tt_carrier_opts_free(co);
        free(co);
        return 1;
    }
    co->sets[0] = (tt_opt_set){.opts = opts, .n_opts = n_opts, .cfg = cfg};
    spec->more = tt_carrier_opts_help(co);
    int rc = tt_opts_parse(spec, argc, argv, co->sets, co->n_sets);
    if (rc == 1) /* --help, --version */
        rc = 0;
    else if (rc == 0)
        rc = run(cfg, co);
    tt_carrier_opts_free(co);
    free(co);
    return rc;
}

int tt_cmd_resolver(const tt_cmd_spec *spec, const tt_carrier_cfg *cfg, uv_loop_t *loop,
                    tt_resolver **out)
{
    *out = NULL;
    const char *text = cfg->resolver_text;
    if (text == NULL)
        return 0;
    tt_hostport hp;
    const char *why = NULL;
    struct sockaddr_storage ss;
    if (tt_hostport_parse(text, &hp, &why) != 0)
        return tt_opts_fail(spec, "invalid --resolver '%s': %s", text, why);
    if (uv_ip4_addr(hp.host, hp.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(hp.host, hp.port, (struct sockaddr_in6 *)&ss) != 0)
        return tt_opts_fail(spec, "invalid --resolver '%s': the DNS server must be an IP address",
                            text);
    if (tt_resolver_new(loop, (struct sockaddr *)&ss, NULL, out) != 0)
        return tt_opts_fail(spec, "cannot set up --resolver '%s'", text);
    return 0;
}

int tt_cmd_keygen(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "tt keygen: takes no arguments\nUsage: tt keygen\n");
        return 2;
    }
    char key[45];
    tt_psk_generate(key);
    printf("%s\n", key);
    return 0;
}
