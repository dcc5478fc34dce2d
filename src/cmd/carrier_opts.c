/* From the carrier options as typed to a checked tt_carrier_cfg. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "codec/ttproto.h"
#include "core/crypto.h"
#include "core/log.h"
#include "exit/resolver.h"

void tt_carrier_args_init(tt_carrier_args *a)
{
    memset(a, 0, sizeof *a);
    a->buffer_size = 4096;
    a->hop_interval_ms = 60000;
    a->replay_window_ms = 120000;
    a->hello_padding = 1024;
    a->frame_padding = 31;
}

static int parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
    unsigned a, b;
    int n = 0;
    if (sscanf(s, "%5u-%5u%n", &a, &b, &n) != 2 || s[n] != '\0' || a < 1 || b > 65535 || a > b)
        return -EINVAL;
    *lo = (uint16_t)a;
    *hi = (uint16_t)b;
    return 0;
}

static int parse_methods(const char *s, tt_carrier_cfg *cfg, bool server)
{
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return -EINVAL;
    strcpy(buf, s);
    cfg->n_methods = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int m = tt_aead_parse(tok);
        if (m < 0 || cfg->n_methods == 2 || (!server && cfg->n_methods == 1))
            return -EINVAL;
        if (cfg->n_methods == 1 && cfg->methods[0] == m)
            return -EINVAL;
        cfg->methods[cfg->n_methods++] = m;
    }
    return cfg->n_methods > 0 ? 0 : -EINVAL;
}

/* The options of the TLS and web carriers: each is refused where it would
 * do nothing, so a user who typed one learns that it is not in effect. */
static int web_cfg(const tt_cmd_spec *spec, bool server, const tt_carrier_args *a,
                   tt_carrier_cfg *cfg)
{
    const char *scheme = cfg->url.scheme;
    bool tls = strcmp(scheme, "tls") == 0 || strcmp(scheme, "wss") == 0;
    bool web = tls || strcmp(scheme, "ws") == 0;
    const struct {
        const char *name;
        bool given, applies;
    } rules[] = {
        {"--cert", a->cert != NULL, tls},    {"--key", a->tls_key != NULL, tls},
        {"-n/--name", a->name != NULL, tls}, {"--ca", a->ca != NULL, tls},
        {"--pin", a->pin != NULL, tls},      {"--insecure-skip-verify", a->skip_verify, tls},
        {"--www", a->www != NULL, web},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        if (rules[i].given && !rules[i].applies) {
            if (strcmp(rules[i].name, "--key") == 0)
                return tt_opts_fail(spec, "--key FILE is a TLS private key (tls://, wss://); the "
                                          "shared key is -k");
            return tt_opts_fail(spec, "%s applies to %s only, not %s://", rules[i].name,
                                strcmp(rules[i].name, "--www") == 0 ? "tls://, ws:// and wss://"
                                                                    : "tls:// and wss://",
                                scheme);
        }
    }
    if (server && (a->cert == NULL) != (a->tls_key == NULL))
        return tt_opts_fail(spec, "--cert and --key go together (neither: a self-signed "
                                  "certificate is made at start)");
    int verify_modes = (a->ca != NULL) + (a->pin != NULL) + a->skip_verify;
    if (verify_modes > 1)
        return tt_opts_fail(spec, "use one of --ca, --pin and --insecure-skip-verify");
    if (a->www && a->fallback)
        return tt_opts_fail(spec, "use either --www or --fallback, not both");
    cfg->cert_file = a->cert;
    cfg->key_file = a->tls_key;
    cfg->tls_name = a->name;
    cfg->ca_file = a->ca;
    cfg->pin = a->pin;
    cfg->skip_verify = a->skip_verify;
    cfg->www_dir = a->www;
    cfg->fast_open = a->fast_open;
    return 0;
}

int tt_cmd_carrier_cfg(const tt_cmd_spec *spec, const char *opt, const char *url_text, bool server,
                       const tt_carrier_args *a, tt_carrier_cfg *cfg, const tt_carrier_ops **ops)
{
    const char *why = NULL;
    /* The tt carrier hops ports when none is given; the web carriers have
     * their schemes' ports; tcp:// needs one. */
    if (tt_url_parse_ex(url_text, true, &cfg->url, &why) != 0)
        return tt_opts_fail(spec, "invalid %s '%s': %s", opt, url_text, why);
    if (cfg->url.scheme[0] == '\0')
        strcpy(cfg->url.scheme, "tt");
    const char *sch = cfg->url.scheme;
    bool web = strcmp(sch, "tls") == 0 || strcmp(sch, "ws") == 0 || strcmp(sch, "wss") == 0;
    if (cfg->url.hp.port == 0 && !web && strcmp(sch, "tt") != 0)
        return tt_opts_fail(spec, "invalid %s '%s': missing port", opt, url_text);
    if (web && cfg->url.hp.port == 0)
        cfg->url.hp.port = strcmp(cfg->url.scheme, "ws") == 0 ? 80 : 443;
    if (web && cfg->url.path[0] == '\0')
        strcpy(cfg->url.path, "/");
    *ops = tt_carrier_find(cfg->url.scheme);
    if (*ops == NULL)
        return tt_opts_fail(spec, "unknown scheme '%s://' in %s (known: %s)", cfg->url.scheme, opt,
                            tt_carrier_schemes());

    cfg->key = a->key ? a->key : getenv("TT_KEY");
    if (cfg->key && *cfg->key == '\0')
        cfg->key = NULL;
    if (strcmp(cfg->url.scheme, "tt") == 0 && cfg->key == NULL)
        return tt_opts_fail(spec, "missing -k KEY (a password, or a key from 'tt keygen')");
    if (parse_methods(a->methods ? a->methods : "chacha20-poly1305", cfg, server) != 0)
        return tt_opts_fail(spec,
                            server ? "invalid -m '%s': chacha20-poly1305 and/or aes-256-gcm, "
                                     "comma-separated"
                                   : "invalid -m '%s': chacha20-poly1305 or aes-256-gcm",
                            a->methods);
    cfg->port_lo = 1024;
    cfg->port_hi = 65535;
    if (a->range && parse_range(a->range, &cfg->port_lo, &cfg->port_hi) != 0)
        return tt_opts_fail(spec, "invalid -r '%s': expected LO-HI within 1-65535", a->range);
    if (a->hop_interval_ms < 1000)
        return tt_opts_fail(spec, "--hop-interval must be at least 1s");
    cfg->hop_interval_s = a->hop_interval_ms / 1000;
    if (a->replay_window_ms < 1000)
        return tt_opts_fail(spec, "--replay-window must be at least 1s");
    cfg->replay_window_s = a->replay_window_ms / 1000;
    cfg->buffer_size = a->buffer_size;
    if (a->buffer_size < 1400)
        tt_warn("--buffer-size %u is below 1400: small frames leave a recognisable traffic "
                "pattern",
                a->buffer_size);
    cfg->hello_pad_max = a->hello_padding;
    cfg->frame_pad_max = a->frame_padding;
    if (a->clock_offset) {
        char *end;
        errno = 0;
        long v = strtol(a->clock_offset, &end, 10);
        if (errno || *end || end == a->clock_offset || v < -86400 * 365 || v > 86400 * 365)
            return tt_opts_fail(spec, "invalid --clock-offset '%s': seconds, e.g. -90",
                                a->clock_offset);
        cfg->clock_offset_s = v;
    }
    if (a->fallback) {
        if (tt_hostport_parse(a->fallback, &cfg->fallback, &why) != 0)
            return tt_opts_fail(spec, "invalid --fallback '%s': %s", a->fallback, why);
        cfg->has_fallback = true;
    }
    return web_cfg(spec, server, a, cfg);
}

int tt_cmd_resolver(const tt_cmd_spec *spec, const tt_carrier_args *a, uv_loop_t *loop,
                    tt_resolver **out)
{
    *out = NULL;
    if (a->resolver == NULL)
        return 0;
    tt_hostport hp;
    const char *why = NULL;
    struct sockaddr_storage ss;
    if (tt_hostport_parse(a->resolver, &hp, &why) != 0)
        return tt_opts_fail(spec, "invalid --resolver '%s': %s", a->resolver, why);
    if (uv_ip4_addr(hp.host, hp.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(hp.host, hp.port, (struct sockaddr_in6 *)&ss) != 0)
        return tt_opts_fail(spec, "invalid --resolver '%s': the DNS server must be an IP address",
                            a->resolver);
    if (tt_resolver_new(loop, (struct sockaddr *)&ss, NULL, out) != 0)
        return tt_opts_fail(spec, "cannot set up --resolver '%s'", a->resolver);
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
