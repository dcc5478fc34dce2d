/* The table of carrier types, and the option groups that several of them
 * share. */
#include "carrier/carrier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "link/tcp.h"

/* Each carrier file defines one of these. */
extern const tt_carrier_type tt_carrier_tt;
extern const tt_carrier_type tt_carrier_tcp;
extern const tt_carrier_type tt_carrier_tls;
extern const tt_carrier_type tt_carrier_ws;
extern const tt_carrier_type tt_carrier_wss;
extern const tt_carrier_type tt_carrier_http;
extern const tt_carrier_type tt_carrier_https;
extern const tt_carrier_type tt_carrier_socks5;
extern const tt_carrier_type tt_carrier_ssh;
extern const tt_carrier_type tt_carrier_dns;
extern const tt_carrier_type tt_carrier_dns_tcp;
extern const tt_carrier_type tt_carrier_dns_tls;
extern const tt_carrier_type tt_carrier_dns_https;

/* The order is the order of --help. */
static const tt_carrier_type *const g_types[] = {
    &tt_carrier_tt,        &tt_carrier_tcp,  &tt_carrier_tls,     &tt_carrier_ws,
    &tt_carrier_wss,       &tt_carrier_http, &tt_carrier_https,   &tt_carrier_socks5,
    &tt_carrier_ssh,       &tt_carrier_dns,  &tt_carrier_dns_tcp, &tt_carrier_dns_tls,
    &tt_carrier_dns_https,
};

#define N_TYPES (sizeof g_types / sizeof g_types[0])

static unsigned g_closing;

void tt_carrier_closing_add(int delta)
{
    g_closing = (unsigned)((int)g_closing + delta);
}

unsigned tt_carrier_closing(void)
{
    return g_closing;
}

const tt_carrier_type *tt_carrier_find(const char *scheme)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        if (strcmp(g_types[i]->scheme, scheme) == 0)
            return g_types[i];
    }
    return NULL;
}

const tt_carrier_type *tt_carrier_type_at(size_t i)
{
    return i < N_TYPES ? g_types[i] : NULL;
}

bool tt_carrier_type_on_side(const tt_carrier_type *t, bool server)
{
    return server ? t->server_new != NULL : t->client_new != NULL;
}

const char *tt_carrier_schemes(const tt_carrier_optgroup *g, bool server, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_TYPES && n < len; i++) {
        const tt_carrier_type *t = g_types[i];
        if (tt_carrier_type_on_side(t, server) && (g == NULL || tt_carrier_type_has(t, g)))
            n += (size_t)snprintf(buf + n, len - n, "%s%s://", n ? ", " : "", t->scheme);
    }
    return buf;
}

bool tt_carrier_type_has(const tt_carrier_type *t, const tt_carrier_optgroup *g)
{
    if (g == &tt_carrier_net_opts)
        return true;
    for (size_t i = 0; t->groups && t->groups[i]; i++) {
        if (t->groups[i] == g)
            return true;
    }
    return false;
}

const void *tt_carrier_settings(const tt_carrier_cfg *cfg, const tt_carrier_optgroup *g)
{
    const tt_carrier_type *t = cfg->type;
    for (size_t i = 0; t->groups && i < TT_CARRIER_GROUPS_MAX && t->groups[i]; i++) {
        if (t->groups[i] == g)
            return g->size ? cfg->settings[i] : cfg;
    }
    return NULL;
}

void tt_carrier_listener_setup(const tt_carrier_cfg *cfg, struct tt_tcp_listener *ls)
{
    static bool warned;
    if (!cfg->fast_open)
        return;
    int rc = tt_tcp_listener_fast_open(ls, 1024);
    if (rc != 0 && !warned) {
        warned = true;
        tt_warn("--fast-open: the kernel refused TCP Fast Open on the listener (%s)",
                uv_strerror(rc));
    }
}

/* The shared groups. Their rows store into tt_carrier_cfg. */
#define O(field) offsetof(tt_carrier_cfg, field)

static const tt_opt net_rows[] = {
    {0, "resolver", "IP:PORT", TT_OPT_STRING, O(resolver_text),
     "resolve names with this DNS server instead of the system's (UDP, TCP if truncated)", 0, 0},
    {0, "fast-open", NULL, TT_OPT_FLAG, O(fast_open),
     "TCP Fast Open on the carrier's connections (data in the SYN of repeat connections)", 0, 0},
    {0, "clock-offset", "SECONDS", TT_OPT_STRING, O(clock_offset_text),
     "for tests: shift this process's clock by SECONDS (may be negative)", 0, 0},
};

static int net_check(void *s, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_carrier_cfg *cfg = s;
    (void)set, (void)server;
    if (cfg->clock_offset_text) {
        char *end;
        errno = 0;
        long v = strtol(cfg->clock_offset_text, &end, 10);
        if (errno || *end || end == cfg->clock_offset_text || v < -86400 * 365 || v > 86400 * 365) {
            snprintf(why, len, "invalid --clock-offset '%s': seconds, e.g. -90",
                     cfg->clock_offset_text);
            return -EINVAL;
        }
        cfg->clock_offset_s = v;
    }
    return 0;
}

const tt_carrier_optgroup tt_carrier_net_opts = {
    .sides = TT_SIDE_BOTH,
    .opts = net_rows,
    .n_opts = sizeof net_rows / sizeof net_rows[0],
    .check = net_check,
};

static const tt_opt key_rows[] = {
    {'k', "key", "KEY", TT_OPT_STRING, O(key),
     "shared key: a password, or a key from 'tt keygen' (also TT_KEY in the environment)", 0, 0},
    /* The name this option had before TT's own --key. */
    {0, "psk", "KEY", TT_OPT_STRING, O(key), NULL, 0, 0},
};

/* True when PATH is a readable file that starts like a PEM file: someone
 * who meant the TLS key file, which used to be --key. */
static bool looks_like_pem_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char head[11] = {0};
    size_t n = fread(head, 1, 10, f);
    fclose(f);
    return n == 10 && strcmp(head, "-----BEGIN") == 0;
}

static int key_check(void *s, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_carrier_cfg *cfg = s;
    (void)set, (void)server;
    if (cfg->key == NULL)
        cfg->key = getenv("TT_KEY");
    if (cfg->key && *cfg->key == '\0')
        cfg->key = NULL;
    if (cfg->key && looks_like_pem_file(cfg->key)) {
        snprintf(why, len,
                 "-k/--key is the shared key, but '%s' is a PEM file: a TLS private key is "
                 "--tls-key FILE",
                 cfg->key);
        return -EINVAL;
    }
    return 0;
}

const tt_carrier_optgroup tt_carrier_key_opts = {
    .sides = TT_SIDE_BOTH,
    .opts = key_rows,
    .n_opts = sizeof key_rows / sizeof key_rows[0],
    .check = key_check,
};

static const tt_opt replay_rows[] = {
    {0, "replay-window", "DURATION", TT_OPT_DURATION, O(replay_window_ms),
     "accept client clocks this far from ours (default 120s); hellos are remembered as long", 0, 0},
};

static void replay_init(void *s)
{
    ((tt_carrier_cfg *)s)->replay_window_ms = 120000;
}

static int replay_check(void *s, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_carrier_cfg *cfg = s;
    (void)set, (void)server;
    if (cfg->replay_window_ms < 1000) {
        snprintf(why, len, "--replay-window must be at least 1s");
        return -EINVAL;
    }
    cfg->replay_window_s = cfg->replay_window_ms / 1000;
    return 0;
}

const tt_carrier_optgroup tt_carrier_replay_opts = {
    .sides = TT_SIDE_SERVER,
    .opts = replay_rows,
    .n_opts = sizeof replay_rows / sizeof replay_rows[0],
    .init = replay_init,
    .check = replay_check,
};

static const tt_opt decoy_rows[] = {
    {0, "fallback", "HOST:PORT", TT_OPT_STRING, O(fallback_text),
     "hand connections that are not tt clients to this web server, with the bytes they sent", 0, 0},
};

static int decoy_check(void *s, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_carrier_cfg *cfg = s;
    (void)set, (void)server;
    const char *w = NULL;
    if (cfg->fallback_text == NULL)
        return 0;
    if (tt_hostport_parse(cfg->fallback_text, &cfg->fallback, &w) != 0) {
        snprintf(why, len, "invalid --fallback '%s': %s", cfg->fallback_text, w);
        return -EINVAL;
    }
    cfg->has_fallback = true;
    return 0;
}

const tt_carrier_optgroup tt_carrier_decoy_opts = {
    .sides = TT_SIDE_SERVER,
    .opts = decoy_rows,
    .n_opts = sizeof decoy_rows / sizeof decoy_rows[0],
    .check = decoy_check,
};

static const tt_opt www_rows[] = {
    {0, "www", "DIR", TT_OPT_STRING, O(www_dir),
     "serve this static site to whatever is not a tunnel client", 0, 0},
    {0, "header-timeout", "DURATION", TT_OPT_DURATION, O(header_timeout_ms),
     "web face: close a connection that has not sent a whole request head (TLS handshake "
     "included) this long after it opened (default " TT_WEB_HEADER_TIMEOUT_TEXT
     ", nginx's client_header_timeout)",
     0, 0},
    {0, "keepalive-timeout", "DURATION", TT_OPT_DURATION, O(keepalive_timeout_ms),
     "web face: close a kept-alive connection idle this long after an answer "
     "(default " TT_WEB_KEEPALIVE_TIMEOUT_TEXT ", nginx's keepalive_timeout)",
     0, 0},
};

/* The web face's timeouts start as nginx's. */
static void www_init(void *s)
{
    tt_carrier_cfg *cfg = s;
    cfg->header_timeout_ms = TT_WEB_HEADER_TIMEOUT_MS;
    cfg->keepalive_timeout_ms = TT_WEB_KEEPALIVE_TIMEOUT_MS;
}

/* Whether OPT's FILE can be read, in the words of the system's error. */
static int check_readable(const char *opt, const char *path, bool dir, char *why, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK | (dir ? X_OK : 0)) != 0) {
        snprintf(why, len, "cannot read %s %s: %s", opt, path, strerror(errno));
        return -EINVAL;
    }
    if (dir && !S_ISDIR(st.st_mode)) {
        snprintf(why, len, "%s %s is not a directory", opt, path);
        return -EINVAL;
    }
    if (!dir && S_ISDIR(st.st_mode)) {
        snprintf(why, len, "%s %s is a directory, not a file", opt, path);
        return -EINVAL;
    }
    return 0;
}

static int www_check(void *s, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_carrier_cfg *cfg = s;
    (void)set, (void)server;
    if (cfg->header_timeout_ms == 0 || cfg->keepalive_timeout_ms == 0) {
        snprintf(why, len, "--header-timeout and --keepalive-timeout must be more than 0");
        return -EINVAL;
    }
    if (cfg->www_dir == NULL)
        return 0;
    if (cfg->fallback_text) {
        snprintf(why, len, "use either --www or --fallback, not both");
        return -EINVAL;
    }
    return check_readable("--www", cfg->www_dir, true, why, len);
}

const tt_carrier_optgroup tt_carrier_www_opts = {
    .sides = TT_SIDE_SERVER,
    .opts = www_rows,
    .n_opts = sizeof www_rows / sizeof www_rows[0],
    .init = www_init,
    .check = www_check,
};

static const tt_opt tls_rows[] = {
    {'n', "name", "NAME", TT_OPT_STRING, O(tls_name),
     "the certificate's name (server) or the name sent as SNI and checked (client)", 0, 0},
};

const tt_carrier_optgroup tt_carrier_tls_opts = {
    .sides = TT_SIDE_BOTH,
    .opts = tls_rows,
    .n_opts = sizeof tls_rows / sizeof tls_rows[0],
};

static const tt_opt tls_server_rows[] = {
    {0, "cert", "FILE", TT_OPT_STRING, O(cert_file),
     "certificate chain (PEM); without --cert and --tls-key a self-signed certificate for -n "
     "NAME (default: the host name) is made once, kept in $TT_STATE_DIR (default "
     "/var/lib/tt for root, else ~/.local/state/tt) and its SHA-256 logged",
     0, 0},
    {0, "tls-key", "FILE", TT_OPT_STRING, O(key_file),
     "the certificate's private key (PEM); the shared key is -k", 0, 0},
};

static int tls_server_check(void *s, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_carrier_cfg *cfg = s;
    (void)set, (void)server;
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
        snprintf(why, len,
                 "--cert and --tls-key go together (neither: a self-signed "
                 "certificate is used)");
        return -EINVAL;
    }
    if (cfg->cert_file && check_readable("--cert", cfg->cert_file, false, why, len) != 0)
        return -EINVAL;
    if (cfg->key_file && check_readable("--tls-key", cfg->key_file, false, why, len) != 0)
        return -EINVAL;
    return 0;
}

const tt_carrier_optgroup tt_carrier_tls_server_opts = {
    .sides = TT_SIDE_SERVER,
    .opts = tls_server_rows,
    .n_opts = sizeof tls_server_rows / sizeof tls_server_rows[0],
    .check = tls_server_check,
};

static const tt_opt tls_client_rows[] = {
    {0, "ca", "FILE", TT_OPT_STRING, O(ca_file),
     "trust the CAs in FILE (PEM) instead of the system's", 0, 0},
    {0, "pin", "SHA256", TT_OPT_STRING, O(pin),
     "accept exactly the server certificate with this SHA-256 (hex), e.g. a self-signed one", 0, 0},
    {0, "insecure-skip-verify", NULL, TT_OPT_FLAG, O(skip_verify),
     "accept any server certificate (anyone on the path can read the traffic)", 0, 0},
};

static int tls_client_check(void *s, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_carrier_cfg *cfg = s;
    (void)set, (void)server;
    if ((cfg->ca_file != NULL) + (cfg->pin != NULL) + cfg->skip_verify > 1) {
        snprintf(why, len, "use one of --ca, --pin and --insecure-skip-verify");
        return -EINVAL;
    }
    if (cfg->ca_file)
        return check_readable("--ca", cfg->ca_file, false, why, len);
    return 0;
}

const tt_carrier_optgroup tt_carrier_tls_client_opts = {
    .sides = TT_SIDE_CLIENT,
    .opts = tls_client_rows,
    .n_opts = sizeof tls_client_rows / sizeof tls_client_rows[0],
    .check = tls_client_check,
};

#undef O
