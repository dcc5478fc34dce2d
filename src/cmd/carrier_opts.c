/* From the carrier options as typed to a checked tt_carrier_cfg. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "codec/ttproto.h"
#include "core/crypto.h"
#include "core/log.h"

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

int tt_cmd_carrier_cfg(const tt_cmd_spec *spec, const char *opt, const char *url_text, bool server,
                       const tt_carrier_args *a, tt_carrier_cfg *cfg, const tt_carrier_ops **ops)
{
    const char *why = NULL;
    /* The tt carrier hops ports when none is given; other schemes need one. */
    bool is_tt = strncmp(url_text, "tt://", 5) == 0 || strstr(url_text, "://") == NULL;
    if (tt_url_parse_ex(url_text, is_tt, &cfg->url, &why) != 0)
        return tt_opts_fail(spec, "invalid %s '%s': %s", opt, url_text, why);
    if (cfg->url.scheme[0] == '\0')
        strcpy(cfg->url.scheme, "tt");
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
