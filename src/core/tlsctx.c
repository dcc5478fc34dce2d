#include "core/tlsctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/selfsigned.h"

/* The server's TLS face is a stock nginx 1.22 on Debian 12 (docs/WS.md,
 * "The TLS face"): any difference in what a ClientHello draws (the suite
 * chosen, an alert, an extension, a ticket's size or lifetime) would tell a
 * prober that this is not the web server it looks like. So the server is
 * set up as nginx sets up OpenSSL with Debian's nginx.conf and nginx's own
 * defaults:
 * - ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3 (Debian's nginx.conf); the
 *   system's OpenSSL security level then refuses TLS 1.0 and 1.1 with
 *   internal_error, for nginx and tt alike;
 * - ssl_ciphers HIGH:!aNULL:!MD5 (nginx's default), in the server's order
 *   (Debian's ssl_prefer_server_ciphers on): a client offering only CBC
 *   suites gets one, as from nginx; its tunnel never does, since tt's
 *   client and server both prefer TLS 1.3;
 * - the options nginx sets (no compression, no anti-replay, unexpected EOF
 *   ignored) and no others: OpenSSL 3.0 refuses a client's renegotiation
 *   by default, and nginx leaves it so (both send the warning
 *   no_renegotiation);
 * - ssl_session_cache none (the default): a TLS 1.2 session ID is sent but
 *   nothing is kept, so resumption is by ticket only;
 * - ssl_session_tickets on, ssl_session_timeout 5m: a lifetime hint of 300
 *   s, and a session ID context of nginx's length (a SHA-1 digest), which
 *   sits inside every ticket and so sets its size;
 * - every server name acknowledged (nginx's SNI callback accepts any name,
 *   an address or none);
 * - ALPN: http/1.1, http/1.0 and http/0.9 in that order, and fatal alert
 *   120 for a client offering none of them. */
#define NGINX_CIPHERS "HIGH:!aNULL:!MD5"
#define NGINX_ALPN "http/1.1,http/1.0,http/0.9"
#define NGINX_SESSION_TIMEOUT_S 300

#define ALPN_MAX 512 /* bytes of an ALPN list in wire format */

typedef struct cached_session {
    SSL_SESSION *sess;
    char *name;
} cached_session;

struct tt_tls_ctx {
    SSL_CTX *ssl;
    int refs;
    bool server;
    bool insecure;
    bool pinned;
    bool self_signed;
    /* Server, self-signed: where the certificate came from. */
    enum tt_selfsigned_origin origin;
    char cert_path[PATH_MAX];
    const char *save_why;
    uint8_t pin[TT_TLS_FP_LEN];
    char fingerprint[TT_TLS_FP_TEXT];
    uint8_t alpn[ALPN_MAX]; /* wire format: length-prefixed names */
    size_t alpn_len;
    /* Client: newest last; each is offered once (RFC 8446 C.4 advises
     * against reusing a ticket, which would link the connections). */
    cached_session cache[TT_TLS_SESSIONS];
    int ncache;
};

/* The name a client connection was made for, kept on the SSL object so the
 * new-session callback can file the session under it. */
static int g_name_idx = -1;

static void free_name(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static int name_index(void)
{
    if (g_name_idx < 0)
        g_name_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_name);
    return g_name_idx;
}

static int set_why(const char **why, const char *text, int rc)
{
    if (why)
        *why = text;
    return rc;
}

bool tt_tls_is_ip_literal(const char *name)
{
    char buf[64];
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
        name++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, name, n);
    buf[n] = '\0';
    uint8_t a[16];
    return inet_pton(AF_INET, buf, a) == 1 || inet_pton(AF_INET6, buf, a) == 1;
}

const char *tt_tls_bare_name(const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < len) {
        memcpy(buf, name + 1, n - 2);
        buf[n - 2] = '\0';
        return buf;
    }
    return name;
}

/* Turns "a,b" into ALPN wire format. Returns 0 or -EINVAL. */
static int alpn_parse(const char *list, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t off = 0;
    *out_len = 0;
    if (list == NULL || *list == '\0')
        return 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n > 255 || off + 1 + n > cap)
            return -EINVAL;
        out[off++] = (uint8_t)n;
        memcpy(out + off, p, n);
        off += n;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *out_len = off;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tt_tls_parse_pin(const char *text, uint8_t out[TT_TLS_FP_LEN])
{
    /* Colons are accepted only between byte pairs, and either everywhere
     * or nowhere, so a mistyped value never parses as a different one. */
    size_t n = strlen(text);
    bool colons = n == TT_TLS_FP_LEN * 3 - 1;
    if (!colons && n != TT_TLS_FP_LEN * 2)
        return -EINVAL;
    const char *p = text;
    for (size_t i = 0; i < TT_TLS_FP_LEN; i++) {
        if (colons && i > 0 && *p++ != ':')
            return -EINVAL;
        int hi = hexval((unsigned char)p[0]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)p[1]);
        if (lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    return 0;
}

void tt_tls_fingerprint_text(const uint8_t fp[TT_TLS_FP_LEN], char out[TT_TLS_FP_TEXT])
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = out;
    for (size_t i = 0; i < TT_TLS_FP_LEN; i++) {
        if (i > 0)
            *o++ = ':';
        *o++ = hex[fp[i] >> 4];
        *o++ = hex[fp[i] & 15];
    }
    *o = '\0';
}

int tt_tls_cert_fingerprint(X509 *cert, uint8_t raw[TT_TLS_FP_LEN], char text[TT_TLS_FP_TEXT])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != TT_TLS_FP_LEN)
        return -EINVAL;
    if (raw)
        memcpy(raw, md, TT_TLS_FP_LEN);
    if (text)
        tt_tls_fingerprint_text(md, text);
    return 0;
}

int tt_tls_fingerprint_file(const char *path, char out[TT_TLS_FP_TEXT], const char **why)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return set_why(why, "cannot open the certificate file", -EINVAL);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (x == NULL)
        return set_why(why, "no PEM certificate in the file", -EINVAL);
    int rc = tt_tls_cert_fingerprint(x, NULL, out);
    X509_free(x);
    return rc < 0 ? set_why(why, "cannot hash the certificate", rc) : 0;
}

static tt_tls_ctx *ctx_alloc(bool server)
{
    tt_tls_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->refs = 1;
    c->server = server;
    c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c->ssl == NULL) {
        free(c);
        return NULL;
    }
    SSL_CTX_set_app_data(c->ssl, c);
    /* RELEASE_BUFFERS frees the record buffers of a connection whenever
     * they are empty, so an idle link holds none. */
    SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    if (server) {
        /* nginx's setup (see NGINX_CIPHERS above). */
        SSL_CTX_set_min_proto_version(c->ssl, TLS1_VERSION);
        SSL_CTX_set_options(c->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_ANTI_REPLAY |
                                        SSL_OP_IGNORE_UNEXPECTED_EOF |
                                        SSL_OP_CIPHER_SERVER_PREFERENCE);
        if (SSL_CTX_set_cipher_list(c->ssl, NGINX_CIPHERS) != 1) {
            SSL_CTX_free(c->ssl);
            free(c);
            return NULL;
        }
    } else {
        /* The client's hello is all an observer sees of it, so it is made
         * the one curl 7.88 sends with the same OpenSSL (Debian 12): curl's
         * options (SSL_OP_ALL, which pads the hello to 512 bytes; no TLS 1.2
         * session ticket extension; no compression), OpenSSL's default
         * suites, versions from TLS 1.0 and post-handshake authentication
         * offered. Any setting of tt's own would show in the hello (it did:
         * 284 bytes and 10 suites, like no common client). A tt server
         * still gets TLS 1.3 or a TLS 1.2 AEAD suite, since it chooses;
         * another server is only reached after its certificate is
         * verified, so the older versions and suites offered only matter
         * to a server that holds the certificate's key. */
        SSL_CTX_set_min_proto_version(c->ssl, TLS1_VERSION);
        SSL_CTX_set_options(c->ssl, SSL_OP_ALL | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                                        SSL_OP_NO_RENEGOTIATION);
        /* As curl does unless told to allow BEAST: the empty fragments
         * that protect TLS 1.0's CBC suites stay on (no effect on the
         * hello). */
        SSL_CTX_clear_options(c->ssl, SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS);
        SSL_CTX_set_post_handshake_auth(c->ssl, 1);
    }
    return c;
}

/* Server: the first of the server's protocols the client offers. A client
 * that offers none (as a plain tls:// client may) gets none; one that
 * offers only others is refused with no_application_protocol, as nginx
 * refuses it. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    tt_tls_ctx *c = arg;
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;
    if (c->alpn_len == 0 || inlen == 0)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&sel, &sel_len, c->alpn, (unsigned)c->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

/* Server: every name is acknowledged, as nginx's SNI callback does with
 * one server block (an unknown name, an address, odd characters). */
static int servername_ack(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)alert;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

/* Encrypted keys would make OpenSSL prompt on the terminal; refuse them. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static int server_cert(tt_tls_ctx *c, const tt_tls_server_opts *o, const char **why)
{
    if ((o->cert_file == NULL) != (o->key_file == NULL))
        return set_why(why, "--cert and --key must be given together", -EINVAL);
    if (o->cert_file) {
        SSL_CTX_set_default_passwd_cb(c->ssl, no_password);
        if (SSL_CTX_use_certificate_chain_file(c->ssl, o->cert_file) != 1)
            return set_why(why, "cannot read the certificate file (PEM expected)", -EINVAL);
        if (SSL_CTX_use_PrivateKey_file(c->ssl, o->key_file, SSL_FILETYPE_PEM) != 1)
            return set_why(why, "cannot read the key file (unencrypted PEM expected)", -EINVAL);
        if (SSL_CTX_check_private_key(c->ssl) != 1)
            return set_why(why, "the key does not belong to the certificate", -EINVAL);
    } else {
        const char *name = o->name && *o->name ? o->name : TT_TLS_DEFAULT_NAME;
        if (strlen(name) > 253)
            return set_why(why, "the certificate name is too long", -EINVAL);
        X509 *x = NULL;
        EVP_PKEY *k = NULL;
        if (tt_selfsigned_get(name, o->state_dir, (int64_t)time(NULL), &x, &k, &c->origin,
                              c->cert_path, sizeof c->cert_path, &c->save_why) < 0)
            return set_why(why, "cannot generate a self-signed certificate", -ENOMEM);
        int ok = SSL_CTX_use_certificate(c->ssl, x) == 1 && SSL_CTX_use_PrivateKey(c->ssl, k) == 1;
        X509_free(x);
        EVP_PKEY_free(k);
        if (!ok)
            return set_why(why, "cannot use the self-signed certificate", -ENOMEM);
        c->self_signed = true;
    }
    if (tt_tls_cert_fingerprint(SSL_CTX_get0_certificate(c->ssl), NULL, c->fingerprint) < 0)
        return set_why(why, "cannot hash the certificate", -EINVAL);
    return 0;
}

int tt_tls_server_ctx_new(const tt_tls_server_opts *o, tt_tls_ctx **out, const char **why)
{
    tt_tls_ctx *c = ctx_alloc(true);
    if (c == NULL)
        return set_why(why, "out of memory", -ENOMEM);
    int rc = server_cert(c, o, why);
    const char *alpn = o->alpn ? o->alpn : NGINX_ALPN;
    if (rc == 0 && alpn_parse(alpn, c->alpn, sizeof c->alpn, &c->alpn_len) < 0)
        rc = set_why(why, "invalid ALPN list (comma-separated names of 1 to 255 bytes)", -EINVAL);
    /* nginx's session ID context: a SHA-1 digest (of its certificates and
     * settings; here of the certificate, whose fingerprint differs per
     * server anyway). Only its length shows, inside the tickets. */
    unsigned char sid_ctx[EVP_MAX_MD_SIZE];
    unsigned sid_len = 0;
    if (rc == 0 &&
        (X509_digest(SSL_CTX_get0_certificate(c->ssl), EVP_sha1(), sid_ctx, &sid_len) != 1 ||
         SSL_CTX_set_session_id_context(c->ssl, sid_ctx, sid_len) != 1))
        rc = set_why(why, "cannot set the session ID context", -ENOMEM);
    ERR_clear_error();
    if (rc < 0) {
        tt_tls_ctx_free(c);
        return rc;
    }
    SSL_CTX_set_alpn_select_cb(c->ssl, alpn_select, c);
    SSL_CTX_set_tlsext_servername_callback(c->ssl, servername_ack);
    /* nginx's "ssl_session_cache none": TLS 1.2 handshakes carry a session
     * ID as if it could be resumed, but no session is kept; tickets (on by
     * default, keyed per context, so per process) are the only resumption,
     * valid for ssl_session_timeout. */
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR |
                                               SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_cache_size(c->ssl, 1);
    SSL_CTX_set_timeout(c->ssl, NGINX_SESSION_TIMEOUT_S);
    *out = c;
    return 0;
}

/* Client with --pin: the whole chain check is replaced by one comparison of
 * the leaf certificate's digest. */
static int pin_verify(X509_STORE_CTX *xs, void *arg)
{
    tt_tls_ctx *c = arg;
    uint8_t fp[TT_TLS_FP_LEN];
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    if (tt_tls_cert_fingerprint(leaf, fp, NULL) == 0 &&
        CRYPTO_memcmp(fp, c->pin, TT_TLS_FP_LEN) == 0) {
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 1;
    }
    X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
    return 0;
}

static void cache_drop(tt_tls_ctx *c, int i)
{
    SSL_SESSION_free(c->cache[i].sess);
    free(c->cache[i].name);
    memmove(&c->cache[i], &c->cache[i + 1], (size_t)(c->ncache - i - 1) * sizeof c->cache[0]);
    c->ncache--;
}

/* Client: a session (TLS 1.3 tickets arrive after the handshake) to offer to
 * the next connection to the same name. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    tt_tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *name = SSL_get_ex_data(ssl, name_index());
    if (c == NULL || name == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    char *copy = strdup(name);
    if (copy == NULL)
        return 0;
    if (c->ncache == TT_TLS_SESSIONS)
        cache_drop(c, 0);
    c->cache[c->ncache].sess = sess;
    c->cache[c->ncache].name = copy;
    c->ncache++;
    return 1; /* the reference is ours */
}

int tt_tls_client_ctx_new(const tt_tls_client_opts *o, tt_tls_ctx **out, const char **why)
{
    if (o->pin && o->insecure_skip_verify)
        return set_why(why, "--pin and --insecure-skip-verify exclude each other", -EINVAL);
    if (o->pin && o->ca_file)
        return set_why(why, "--pin replaces --ca; give one of them", -EINVAL);
    if (o->insecure_skip_verify && o->ca_file)
        return set_why(why, "--ca and --insecure-skip-verify exclude each other", -EINVAL);
    tt_tls_ctx *c = ctx_alloc(false);
    if (c == NULL)
        return set_why(why, "out of memory", -ENOMEM);
    int rc = 0;
    if (alpn_parse(o->alpn, c->alpn, sizeof c->alpn, &c->alpn_len) < 0 ||
        (c->alpn_len > 0 && SSL_CTX_set_alpn_protos(c->ssl, c->alpn, (unsigned)c->alpn_len) != 0))
        rc = set_why(why, "invalid ALPN list (comma-separated names of 1 to 255 bytes)", -EINVAL);
    if (rc == 0 && o->pin) {
        if (tt_tls_parse_pin(o->pin, c->pin) < 0)
            rc = set_why(why, "--pin takes a SHA-256 fingerprint: 64 hex digits, colons allowed",
                         -EINVAL);
        c->pinned = true;
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_cert_verify_callback(c->ssl, pin_verify, c);
    } else if (rc == 0 && o->insecure_skip_verify) {
        c->insecure = true;
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    } else if (rc == 0) {
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
        if (o->ca_file) {
            if (SSL_CTX_load_verify_locations(c->ssl, o->ca_file, NULL) != 1)
                rc = set_why(why, "cannot read the CA file (PEM certificates expected)", -EINVAL);
        } else if (SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
            rc = set_why(why, "cannot load the system's CA certificates", -EINVAL);
        }
    }
    ERR_clear_error();
    if (rc == 0 && name_index() < 0)
        rc = set_why(why, "out of memory", -ENOMEM);
    if (rc < 0) {
        tt_tls_ctx_free(c);
        return rc;
    }
    SSL_CTX_set_session_cache_mode(c->ssl,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ssl, new_session);
    *out = c;
    return 0;
}

int tt_tls_ctx_set_alpn(tt_tls_ctx *c, const char *list)
{
    if (c->server || alpn_parse(list, c->alpn, sizeof c->alpn, &c->alpn_len) < 0 ||
        SSL_CTX_set_alpn_protos(c->ssl, c->alpn, (unsigned)c->alpn_len) != 0)
        return -EINVAL;
    return 0;
}

/* Client: checks NAME (an address or a host name) and sends it as SNI. */
static int client_setup(tt_tls_ctx *c, SSL *ssl, const char *name, const char **why)
{
    bool verify = !c->pinned && !c->insecure;
    if (name == NULL)
        name = "";
    if (*name == '\0' && verify)
        return set_why(why, "a server name to verify is required", -EINVAL);
    if (strlen(name) > 255)
        return set_why(why, "the server name is too long", -EINVAL);
    /* The name also files the sessions: one made with a server is offered
     * to that server only. */
    char *copy = strdup(name);
    if (copy == NULL || SSL_set_ex_data(ssl, name_index(), copy) != 1) {
        free(copy);
        return set_why(why, "out of memory", -ENOMEM);
    }
    if (*name == '\0') {
        /* Pinned or unverified, and no name: no SNI. */
    } else if (tt_tls_is_ip_literal(name)) {
        /* RFC 6066 forbids addresses in SNI. */
        char buf[64];
        if (verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                                    tt_tls_bare_name(name, buf, sizeof buf)) != 1)
            return set_why(why, "cannot set the address to verify", -EINVAL);
    } else {
        /* The macro casts the name to void *, so it gets the mutable copy. */
        if (SSL_set_tlsext_host_name(ssl, copy) != 1)
            return set_why(why, "invalid server name for SNI", -EINVAL);
        if (verify) {
            X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl),
                                            X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(ssl, name) != 1)
                return set_why(why, "cannot set the server name to verify", -EINVAL);
        }
    }
    /* Offer the newest session made for this name, once. */
    for (int i = c->ncache - 1; i >= 0; i--) {
        if (strcmp(c->cache[i].name, name) == 0) {
            SSL_set_session(ssl, c->cache[i].sess);
            cache_drop(c, i);
            break;
        }
    }
    return 0;
}

SSL *tt_tls_ctx_new_ssl(tt_tls_ctx *c, const char *name, const char **why)
{
    SSL *ssl = SSL_new(c->ssl);
    if (ssl == NULL) {
        set_why(why, "out of memory", -ENOMEM);
        return NULL;
    }
    if (c->server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        if (client_setup(c, ssl, name, why) < 0) {
            SSL_free(ssl);
            ssl = NULL;
        }
    }
    ERR_clear_error();
    return ssl;
}

void tt_tls_ctx_ref(tt_tls_ctx *c)
{
    c->refs++;
}

void tt_tls_ctx_free(tt_tls_ctx *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    while (c->ncache > 0)
        cache_drop(c, c->ncache - 1);
    SSL_CTX_free(c->ssl);
    OPENSSL_cleanse(c->pin, sizeof c->pin);
    free(c);
}

SSL_CTX *tt_tls_ctx_ssl_ctx(tt_tls_ctx *c)
{
    return c->ssl;
}

bool tt_tls_ctx_is_server(const tt_tls_ctx *c)
{
    return c->server;
}

bool tt_tls_ctx_insecure(const tt_tls_ctx *c)
{
    return c->insecure;
}

bool tt_tls_ctx_pinned(const tt_tls_ctx *c)
{
    return c->pinned;
}

bool tt_tls_ctx_self_signed(const tt_tls_ctx *c)
{
    return c->self_signed;
}

int tt_tls_ctx_self_signed_origin(const tt_tls_ctx *c, const char **path, const char **why)
{
    *path = c->cert_path;
    *why = c->save_why;
    return c->self_signed ? (int)c->origin : 0;
}

const char *tt_tls_ctx_fingerprint(const tt_tls_ctx *c)
{
    return c->fingerprint;
}
