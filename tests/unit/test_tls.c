/* The TLS link and its contexts, over real TCP links on 127.0.0.1 in one
 * loop: a client and a server end, or one TLS end against a raw TCP peer
 * that speaks garbage or nothing. Certificates (a CA, a leaf it signed) are
 * made per test in a temporary directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/tlsctx.h"
#include "link/tcp.h"
#include "link/tls.h"
#include "memlink.h"

/* Runs the loop until COND holds. Every callback of the test calls
 * uv_stop, so a loop turn that changed something returns to check COND
 * instead of waiting in poll for an event that may not come. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
    } while (0)

enum mode { MODE_TLS, MODE_RAW, MODE_SNIFF };

typedef struct end {
    /* Configuration, set by the test before the connection. */
    enum mode mode;
    tt_tls_ctx *ctx;
    const char *name; /* client: the server name */
    unsigned timeout_ms;
    const char *garbage;  /* raw: written at once; sniff: passed as early bytes */
    bool no_read;         /* do not start reading when ready */
    bool close_in_data;   /* close inside the first on_data */
    size_t stop_every;    /* read_stop after this many bytes ... */
    bool auto_resume;     /* ... and read_start again from a zero timer */
    const char *greeting; /* written when ready */
    const uint8_t *reply; /* written (then shutdown) after the peer's half-close */
    size_t reply_len;
    /* State. */
    tt_link *link;
    tt_link *lower; /* sniff: the TCP link under the TLS link */
    uv_timer_t resume;
    int ready; /* 0 waiting, 1 ok, -1 failed */
    int status;
    bool in_ctor, ready_in_ctor;
    enum tt_tls_failure failure;
    char why[200];
    uint8_t *buf;
    size_t len, cap;
    int data_calls;
    bool eof;
    int err;
    bool stopped, violated;
    size_t since_stop;
    bool close_called, closed;
    const uint8_t *to_send;
    size_t send_len, sent;
    bool shutdown_after, shut;
    size_t max_pending;
    int drained;
} end;

static uv_loop_t loop;
static tt_tcp_listener *listener;
static int port;
static end ends[4];
static end *S = &ends[0], *C = &ends[1], *S2 = &ends[2], *C2 = &ends[3];
static end *next_server; /* the end the next accepted connection becomes */
static char dir[64], ca_path[96], cert_path[96], key_path[96];

/* Certificates. */

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
                       const char *san)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    const char *bc = ca ? "critical,CA:TRUE" : "CA:FALSE";
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, bc);
    cr_assert_not_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (san) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        cr_assert_not_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    cr_assert(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *a, X509 *b, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    if (a)
        PEM_write_X509(f, a);
    if (b)
        PEM_write_X509(f, b);
    if (key)
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

/* A CA, and a leaf for test.example and 127.0.0.1 that it signed; the
 * certificate file holds the leaf and then the CA (a chain). */
static void make_certs(void)
{
    snprintf(dir, sizeof dir, "/tmp/tt-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *ca = make_cert("tt test CA", ca_key, NULL, NULL, true, NULL);
    X509 *leaf = make_cert("test.example", key, ca, ca_key, false, "DNS:test.example,IP:127.0.0.1");
    write_pem(ca_path, ca, NULL, NULL);
    write_pem(cert_path, leaf, ca, NULL);
    write_pem(key_path, NULL, NULL, key);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
}

/* Contexts. */

static tt_tls_ctx *server_ctx(const char *cert, const char *key, const char *name, const char *alpn)
{
    tt_tls_server_opts o = {.cert_file = cert, .key_file = key, .name = name, .alpn = alpn};
    tt_tls_ctx *c = NULL;
    const char *why = NULL;
    int rc = tt_tls_server_ctx_new(&o, &c, &why);
    cr_assert_eq(rc, 0, "server context: %s", why ? why : "?");
    return c;
}

static tt_tls_ctx *client_ctx(const char *ca, const char *pin, bool insecure, const char *alpn)
{
    tt_tls_client_opts o = {
        .ca_file = ca, .pin = pin, .insecure_skip_verify = insecure, .alpn = alpn};
    tt_tls_ctx *c = NULL;
    const char *why = NULL;
    int rc = tt_tls_client_ctx_new(&o, &c, &why);
    cr_assert_eq(rc, 0, "client context: %s", why ? why : "?");
    return c;
}

/* The ends' handlers. */

static void on_closed(void *ud)
{
    uv_stop(&loop);
    ((end *)ud)->closed = true;
}

static void close_end(end *e)
{
    if (e->link && !e->close_called) {
        e->close_called = true;
        tt_link_close(e->link, on_closed, e);
    }
}

static void pump(end *e)
{
    while (e->sent < e->send_len && tt_link_pending(e->link) < 1024 * 1024) {
        size_t n = e->send_len - e->sent;
        if (n > 200000)
            n = 200000;
        cr_assert_eq(tt_link_write1(e->link, e->to_send + e->sent, n), 0);
        e->sent += n;
        size_t p = tt_link_pending(e->link);
        if (p > e->max_pending)
            e->max_pending = p;
    }
    if (e->sent == e->send_len && e->shutdown_after && !e->shut) {
        e->shut = true;
        cr_assert_eq(tt_link_shutdown(e->link), 0);
    }
}

static void send_all(end *e, const uint8_t *data, size_t len, bool shutdown_after)
{
    e->to_send = data;
    e->send_len = len;
    e->sent = 0;
    e->shutdown_after = shutdown_after;
    pump(e);
}

static bool in_read_start;

static void on_resume(uv_timer_t *t)
{
    uv_stop(&loop);
    end *e = t->data;
    e->stopped = false;
    if (!e->close_called) {
        /* Kept input must come from the loop, not from inside read_start. */
        in_read_start = true;
        cr_assert_eq(tt_link_read_start(e->link), 0);
        in_read_start = false;
    }
}

static void on_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    uv_stop(&loop);
    end *e = ud;
    if (e->stopped || e->close_called || in_read_start)
        e->violated = true;
    if (e->len + n > e->cap) {
        e->cap = (e->len + n) * 2;
        e->buf = realloc(e->buf, e->cap);
    }
    memcpy(e->buf + e->len, d, n);
    e->len += n;
    e->data_calls++;
    if (e->close_in_data) {
        close_end(e);
        return;
    }
    if (e->stop_every) {
        e->since_stop += n;
        if (e->since_stop >= e->stop_every) {
            e->since_stop = 0;
            tt_link_read_stop(l);
            e->stopped = true;
            if (e->auto_resume)
                uv_timer_start(&e->resume, on_resume, 0, 0);
        }
    }
}

static void on_eof(tt_link *l, void *ud)
{
    uv_stop(&loop);
    (void)l;
    end *e = ud;
    if (e->close_called || e->stopped || in_read_start)
        e->violated = true;
    e->eof = true;
    if (e->reply)
        send_all(e, e->reply, e->reply_len, true);
}

static void on_error(tt_link *l, void *ud, int err)
{
    uv_stop(&loop);
    (void)l;
    end *e = ud;
    if (e->close_called)
        e->violated = true;
    e->err = err;
}

static void on_drained(tt_link *l, void *ud)
{
    uv_stop(&loop);
    (void)l;
    end *e = ud;
    e->drained++;
    if (e->to_send)
        pump(e);
}

static const tt_link_handler handler = {on_data, on_eof, on_error, on_drained};

static void on_ready(void *ud, tt_link *l, int status)
{
    uv_stop(&loop);
    end *e = ud;
    if (e->in_ctor)
        e->ready_in_ctor = true;
    cr_assert_eq(e->ready, 0, "the ready callback ran twice");
    e->link = l;
    e->status = status;
    e->failure = tt_tls_link_failure(l);
    tt_tls_link_why(l, e->why, sizeof e->why);
    if (status < 0) {
        e->ready = -1;
        close_end(e);
        return;
    }
    e->ready = 1;
    tt_link_set_handler(l, &handler, e);
    if (!e->no_read)
        cr_assert_eq(tt_link_read_start(l), 0);
    if (e->greeting)
        cr_assert_eq(tt_link_write1(l, e->greeting, strlen(e->greeting)), 0);
}

static void start_raw(end *e, tt_link *l)
{
    e->link = l;
    tt_link_set_handler(l, &handler, e);
    cr_assert_eq(tt_link_read_start(l), 0);
    if (e->garbage)
        cr_assert_eq(tt_link_write1(l, e->garbage, strlen(e->garbage)), 0);
}

/* Sniff mode: the first bytes are read off the TCP link, then passed to the
 * TLS server as early bytes, as a protocol sniffer would. */
static void on_sniff(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    uv_stop(&loop);
    end *e = ud;
    tt_link_read_stop(l);
    e->lower = l;
    e->in_ctor = true;
    if (e->garbage)
        e->link = tt_tls_link_server(l, e->ctx, (const uint8_t *)e->garbage, strlen(e->garbage),
                                     e->timeout_ms, on_ready, e);
    else
        e->link = tt_tls_link_server(l, e->ctx, d, n, e->timeout_ms, on_ready, e);
    e->in_ctor = false;
    cr_assert_not_null(e->link);
}

static void on_sniff_eof(tt_link *l, void *ud)
{
    (void)l;
    (void)ud;
    cr_assert_fail("the client went away before sending anything");
}

static const tt_link_handler sniff_handler = {on_sniff, on_sniff_eof, on_error, NULL};

static void on_accept(void *ud, tt_link *l)
{
    uv_stop(&loop);
    (void)ud;
    end *e = next_server;
    cr_assert_not_null(e, "an unexpected connection");
    next_server = NULL;
    if (e->mode == MODE_RAW) {
        start_raw(e, l);
    } else if (e->mode == MODE_SNIFF) {
        tt_link_set_handler(l, &sniff_handler, e);
        cr_assert_eq(tt_link_read_start(l), 0);
    } else {
        e->in_ctor = true;
        e->link = tt_tls_link_server(l, e->ctx, NULL, 0, e->timeout_ms, on_ready, e);
        e->in_ctor = false;
        cr_assert_not_null(e->link);
    }
}

static void on_connected(void *ud, int status, tt_link *l)
{
    uv_stop(&loop);
    end *e = ud;
    cr_assert_eq(status, 0, "connect: %s", uv_strerror(status));
    if (e->mode == MODE_RAW) {
        start_raw(e, l);
        return;
    }
    e->in_ctor = true;
    e->link = tt_tls_link_client(l, e->ctx, e->name, e->timeout_ms, on_ready, e);
    e->in_ctor = false;
    cr_assert_not_null(e->link);
}

static void connect_to(end *client, end *server)
{
    next_server = server;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    cr_assert_eq(
        tt_tcp_connect_start(&loop, (struct sockaddr *)&sa, 5000, on_connected, client, NULL), 0);
}

/* Connects CLIENT to SERVER and runs until both have an outcome. */
static void pair(end *client, end *server)
{
    connect_to(client, server);
    RUN_UNTIL(client->ready != 0 && server->ready != 0);
    cr_assert_not(client->ready_in_ctor || server->ready_in_ctor,
                  "the ready callback ran inside the constructor");
}

static void expect_ok(end *client, end *server)
{
    pair(client, server);
    cr_assert_eq(client->ready, 1, "client: %s", client->why);
    cr_assert_eq(server->ready, 1, "server: %s", server->why);
}

static void close_and_wait(end *e)
{
    close_end(e);
    RUN_UNTIL(e->closed);
}

static uint8_t *pattern(size_t len, uint32_t seed)
{
    uint8_t *p = malloc(len);
    uint32_t x = seed | 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static tt_tls_ctx *to_free[8];
static int nto_free;

static tt_tls_ctx *keep(tt_tls_ctx *c)
{
    to_free[nto_free++] = c;
    return c;
}

static void setup(void)
{
    uv_loop_init(&loop);
    memset(ends, 0, sizeof ends);
    for (int i = 0; i < 4; i++) {
        uv_timer_init(&loop, &ends[i].resume);
        ends[i].resume.data = &ends[i];
    }
    nto_free = 0;
    cr_assert_eq(tt_tcp_listen(&loop, "127.0.0.1", 0, on_accept, NULL, &listener), 0);
    port = tt_tcp_listener_port(listener);
    make_certs();
}

static void teardown(void)
{
    for (int i = 0; i < 4; i++) {
        close_end(&ends[i]);
        uv_close((uv_handle_t *)&ends[i].resume, NULL);
    }
    tt_tcp_listener_close(listener);
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
    for (int i = 0; i < 4; i++) {
        cr_expect_not(ends[i].violated, "end %d: a callback after read_stop or close", i);
        free(ends[i].buf);
    }
    for (int i = 0; i < nto_free; i++)
        tt_tls_ctx_free(to_free[i]);
    unlink(ca_path);
    unlink(cert_path);
    unlink(key_path);
    rmdir(dir);
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 60);

/* Verification. */

Test(tls, self_signed_server_and_pinned_client)
{
    tt_tls_ctx *sctx = keep(server_ctx(NULL, NULL, "localhost", NULL));
    cr_assert(tt_tls_ctx_self_signed(sctx));
    const char *fp = tt_tls_ctx_fingerprint(sctx);
    cr_assert_eq(strlen(fp), 95);
    S->ctx = sctx;
    C->ctx = keep(client_ctx(NULL, fp, false, NULL));
    C->name = "localhost";
    cr_assert(tt_tls_ctx_pinned(C->ctx));
    expect_ok(C, S);
    char peer[TT_TLS_FP_TEXT];
    cr_assert_eq(tt_tls_link_peer_fingerprint(C->link, peer), 0);
    cr_assert_str_eq(peer, fp);
    cr_assert_str_eq(tt_tls_link_version(C->link), "TLSv1.3");
    cr_assert_str_eq(tt_tls_link_sni(S->link), "localhost");
    cr_assert_eq(tt_tls_link_failure(C->link), TT_TLS_FAIL_NONE);
    cr_assert_not(tt_tls_link_resumed(C->link));

    /* The pin also parses in lower case without colons. */
    char bare[65];
    size_t j = 0;
    for (size_t i = 0; fp[i]; i++)
        if (fp[i] != ':')
            bare[j++] = (char)(fp[i] >= 'A' && fp[i] <= 'F' ? fp[i] + 32 : fp[i]);
    bare[j] = '\0';
    S2->ctx = sctx;
    C2->ctx = keep(client_ctx(NULL, bare, false, NULL));
    expect_ok(C2, S2);
    cr_assert_null(tt_tls_link_sni(S2->link), "no name, no SNI");
}

Test(tls, pin_mismatch_fails_on_the_client_with_a_verify_reason)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    char pin[TT_TLS_FP_TEXT];
    strcpy(pin, tt_tls_ctx_fingerprint(S->ctx));
    pin[0] = pin[0] == 'A' ? 'B' : 'A';
    C->ctx = keep(client_ctx(NULL, pin, false, NULL));
    C->name = "localhost";
    pair(C, S);
    cr_assert_eq(C->ready, -1);
    cr_assert_eq(C->status, UV_EPROTO);
    cr_assert_eq(C->failure, TT_TLS_FAIL_VERIFY, "%s", C->why);
    cr_assert(strstr(C->why, "pinned") != NULL, "%s", C->why);
    cr_assert_eq(S->ready, -1, "the client's alert fails the server");
    cr_assert_eq(S->failure, TT_TLS_FAIL_HANDSHAKE, "%s", S->why);
}

Test(tls, ca_file_and_the_right_name_or_address)
{
    S->ctx = S2->ctx = keep(server_ctx(cert_path, key_path, NULL, NULL));
    cr_assert_not(tt_tls_ctx_self_signed(S->ctx));
    char fp[TT_TLS_FP_TEXT];
    const char *why = NULL;
    cr_assert_eq(tt_tls_fingerprint_file(cert_path, fp, &why), 0);
    cr_assert_str_eq(fp, tt_tls_ctx_fingerprint(S->ctx), "the file's first certificate is served");
    C->ctx = C2->ctx = keep(client_ctx(ca_path, NULL, false, NULL));
    C->name = "test.example";
    expect_ok(C, S);
    cr_assert_str_eq(tt_tls_link_sni(S->link), "test.example");
    /* An IP literal is verified as an address and never sent as SNI. */
    C2->name = "127.0.0.1";
    expect_ok(C2, S2);
    cr_assert_null(tt_tls_link_sni(S2->link));
}

Test(tls, ca_file_and_a_wrong_name_fail)
{
    S->ctx = S2->ctx = keep(server_ctx(cert_path, key_path, NULL, NULL));
    C->ctx = C2->ctx = keep(client_ctx(ca_path, NULL, false, NULL));
    C->name = "other.example";
    pair(C, S);
    cr_assert_eq(C->ready, -1);
    cr_assert_eq(C->failure, TT_TLS_FAIL_VERIFY, "%s", C->why);
    cr_assert(strstr(C->why, "hostname mismatch") != NULL, "%s", C->why);
    C2->name = "127.0.0.2";
    pair(C2, S2);
    cr_assert_eq(C2->failure, TT_TLS_FAIL_VERIFY, "%s", C2->why);
    cr_assert(strstr(C2->why, "IP address mismatch") != NULL, "%s", C2->why);
}

Test(tls, system_cas_refuse_a_self_signed_server)
{
    S->ctx = keep(server_ctx(NULL, NULL, "localhost", NULL));
    C->ctx = keep(client_ctx(NULL, NULL, false, NULL));
    C->name = "localhost";
    pair(C, S);
    cr_assert_eq(C->ready, -1);
    cr_assert_eq(C->failure, TT_TLS_FAIL_VERIFY, "%s", C->why);
}

Test(tls, insecure_skip_verify_accepts_anything)
{
    S->ctx = keep(server_ctx(NULL, NULL, "somewhere", NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    cr_assert(tt_tls_ctx_insecure(C->ctx));
    C->name = "elsewhere";
    expect_ok(C, S);
}

Test(tls, verifying_client_needs_a_name)
{
    C->ctx = keep(client_ctx(ca_path, NULL, false, NULL));
    C->mode = MODE_RAW; /* take the TCP link, then try TLS on it by hand */
    S->mode = MODE_RAW;
    connect_to(C, S);
    RUN_UNTIL(C->link != NULL && S->link != NULL);
    tt_link *lower = C->link;
    C->link = NULL;
    cr_assert_null(tt_tls_link_client(lower, C->ctx, NULL, 0, on_ready, C));
    RUN_UNTIL(S->eof || S->err);
}

/* Data. */

Test(tls, megabytes_both_ways_with_backpressure)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    C->name = "localhost";
    expect_ok(C, S);
    /* More than the kernel's socket buffers on loopback can hold. */
    size_t n = 32 * 1024 * 1024;
    uint8_t *up = pattern(n, 1), *down = pattern(n, 2);
    /* The server stops after its first half megabyte and stays stopped. */
    S->stop_every = 512 * 1024;
    C->stop_every = 300 * 1024;
    C->auto_resume = true;
    send_all(C, up, n, true);
    send_all(S, down, n, true);
    RUN_UNTIL(S->stopped);
    size_t got = S->len;
    for (int i = 0; i < 200; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(S->len, got, "data arrived after read_stop");
    cr_assert(C->sent < n || tt_link_pending(C->link) > 0,
              "a stopped reader must hold the writer back");
    /* From now on the server stops and resumes every half megabyte. */
    S->auto_resume = true;
    S->stopped = false;
    cr_assert_eq(tt_link_read_start(S->link), 0);
    RUN_UNTIL(S->eof && C->eof);
    cr_assert_eq(S->len, n);
    cr_assert_eq(C->len, n);
    cr_assert_eq(memcmp(S->buf, up, n), 0);
    cr_assert_eq(memcmp(C->buf, down, n), 0);
    cr_assert_gt(C->max_pending, 0);
    cr_assert_gt(C->drained, 0, "the writer was told its queue drained");
    cr_assert_gt(S->drained, 0);
    cr_assert_eq(tt_link_pending(C->link), 0);
    cr_assert_eq(S->err, 0);
    cr_assert_eq(C->err, 0);
    /* One delivery per network read, not one per 16 KiB record. */
    cr_assert_lt(S->data_calls, (int)(n / 16384), "%d deliveries", S->data_calls);
    free(up);
    free(down);
}

/* Records the server reads after the handshake, counted by OpenSSL's
 * message callback, which reports each record header it reads. */
static int g_records;
static bool g_count_records;

static void count_records(int write_p, int version, int content_type, const void *buf, size_t len,
                          SSL *ssl, void *arg)
{
    (void)version, (void)buf, (void)len, (void)ssl, (void)arg;
    if (!write_p && content_type == SSL3_RT_HEADER && g_count_records)
        g_records++;
}

/* A mux or WebSocket writer hands over a short header before each payload:
 * the pieces are joined into full records, never a record per header. */
Test(tls, small_pieces_are_joined_into_full_records)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    C->name = "localhost";
    SSL_CTX_set_msg_callback(tt_tls_ctx_ssl_ctx(S->ctx), count_records);
    expect_ok(C, S);
    g_count_records = true;
    enum { FRAMES = 64, HDR = 9, PAYLOAD = 16384 };
    uint8_t *data = pattern(FRAMES * (HDR + PAYLOAD), 5);
    uv_buf_t iov[2 * FRAMES];
    for (int i = 0; i < FRAMES; i++) {
        uint8_t *f = data + (size_t)i * (HDR + PAYLOAD);
        iov[2 * i] = uv_buf_init((char *)f, HDR);
        iov[2 * i + 1] = uv_buf_init((char *)f + HDR, PAYLOAD);
    }
    size_t n = FRAMES * (HDR + PAYLOAD);
    cr_assert_eq(tt_link_write(C->link, iov, 2 * FRAMES), 0);
    RUN_UNTIL(S->len == n || S->err);
    cr_assert_eq(memcmp(S->buf, data, n), 0);
    /* 65 full records' worth, plus a session ticket's round if one comes
     * late; a record per header would be 128. */
    cr_assert_leq(g_records, (int)(n / 16384) + 3, "%d records", g_records);
    g_count_records = false;
    free(data);
}

static void half_close(bool tls12, bool client_first)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    if (tls12)
        SSL_CTX_set_max_proto_version(tt_tls_ctx_ssl_ctx(C->ctx), TLS1_2_VERSION);
    expect_ok(C, S);
    cr_assert_str_eq(tt_tls_link_version(S->link), tls12 ? "TLSv1.2" : "TLSv1.3");
    size_t n = 1024 * 1024;
    uint8_t *big = pattern(n, 3);
    end *first = client_first ? C : S, *second = client_first ? S : C;
    /* FIRST sends a request and half-closes; SECOND answers after the EOF,
     * through the direction that is still open. */
    second->reply = big;
    second->reply_len = n;
    send_all(first, (const uint8_t *)"request", 7, true);
    RUN_UNTIL(first->eof || first->err || second->err);
    cr_assert_eq(second->len, 7);
    cr_assert(second->eof);
    cr_assert_eq(first->err, 0, "%s", uv_strerror(first->err));
    cr_assert_eq(first->len, n);
    cr_assert_eq(memcmp(first->buf, big, n), 0);
    cr_assert_eq(second->err, 0);
    free(big);
}

Test(tls, half_close_client_first)
{
    half_close(false, true);
}

Test(tls, half_close_server_first)
{
    half_close(false, false);
}

Test(tls, half_close_client_first_on_tls12)
{
    half_close(true, true);
}

Test(tls, half_close_server_first_on_tls12)
{
    half_close(true, false);
}

Test(tls, no_eof_while_stopped)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    expect_ok(C, S);
    /* The data and close_notify go out together and arrive in one read;
     * the server stops reading in on_data, so the EOF must wait. */
    S->stop_every = 1;
    send_all(C, (const uint8_t *)"last words", 10, true);
    RUN_UNTIL(S->stopped);
    for (int i = 0; i < 100; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(S->len, 10);
    cr_assert_not(S->eof, "on_eof after read_stop");
    cr_assert_eq(S->err, 0);
    S->stopped = false;
    S->stop_every = 0;
    in_read_start = true;
    cr_assert_eq(tt_link_read_start(S->link), 0);
    in_read_start = false;
    cr_assert_not(S->eof, "on_eof inside read_start");
    RUN_UNTIL(S->eof || S->err);
    cr_assert(S->eof);
    cr_assert_eq(S->err, 0);
}

Test(tls, writes_and_shutdown_before_the_handshake_are_queued)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    size_t n = 100000;
    uint8_t *data = pattern(n, 4);
    next_server = S;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    C->mode = MODE_RAW;
    cr_assert_eq(tt_tcp_connect_start(&loop, (struct sockaddr *)&sa, 5000, on_connected, C, NULL),
                 0);
    RUN_UNTIL(C->link != NULL);
    tt_link *lower = C->link;
    C->link = NULL;
    C->ready = 0;
    tt_link *l = tt_tls_link_client(lower, C->ctx, NULL, 0, on_ready, C);
    cr_assert_not_null(l);
    C->link = l;
    tt_link_set_handler(l, &handler, C);
    cr_assert_eq(tt_link_write1(l, data, n), 0);
    cr_assert_geq(tt_link_pending(l), n, "queued plaintext counts as pending");
    cr_assert_eq(tt_link_shutdown(l), 0);
    cr_assert_eq(tt_link_write1(l, "x", 1), UV_EPIPE, "no write after shutdown");
    RUN_UNTIL(S->eof);
    cr_assert_eq(S->len, n);
    cr_assert_eq(memcmp(S->buf, data, n), 0);
    RUN_UNTIL(C->drained > 0);
    cr_assert_eq(tt_link_pending(l), 0);
    free(data);
}

/* Endings. */

Test(tls, close_inside_on_data_stops_all_callbacks)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    expect_ok(C, S);
    size_t n = 2 * 1024 * 1024;
    uint8_t *data = pattern(n, 5);
    C->close_in_data = true;
    send_all(S, data, n, true);
    RUN_UNTIL(C->closed);
    cr_assert_eq(C->data_calls, 1);
    cr_assert_not(C->violated);
    RUN_UNTIL(S->err || S->eof || S->sent == n);
    free(data);
}

Test(tls, abort_is_an_error_for_the_peer)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    expect_ok(C, S);
    C->close_called = true;
    tt_link_abort(C->link, on_closed, C);
    RUN_UNTIL(S->err || S->eof);
    cr_assert_lt(S->err, 0);
    cr_assert_not(S->eof);
    RUN_UNTIL(C->closed);
}

Test(tls, close_ends_the_stream_cleanly)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    expect_ok(C, S);
    cr_assert_eq(tt_link_write1(C->link, "bye", 3), 0);
    close_and_wait(C);
    RUN_UNTIL(S->err || S->eof);
    cr_assert(S->eof, "close sends close_notify");
    cr_assert_eq(S->err, 0);
    cr_assert_eq(S->len, 3);
}

Test(tls, a_lower_eof_without_close_notify_is_truncation)
{
    S->mode = MODE_SNIFF;
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    expect_ok(C, S);
    cr_assert_eq(tt_link_write1(S->link, "partial", 7), 0);
    /* Half-close the TCP link under the server's TLS: a FIN with no
     * close_notify before it, as a cut connection would look. */
    cr_assert_eq(tt_link_shutdown(S->lower), 0);
    RUN_UNTIL(C->err || C->eof);
    cr_assert_eq(C->len, 7);
    cr_assert_eq(C->err, UV_EPROTO);
    cr_assert_eq(tt_tls_link_failure(C->link), TT_TLS_FAIL_TRUNCATED);
    cr_assert_not(C->eof);
}

/* Sessions and keys. */

/* TLS12: the client stops at TLS 1.2; TICKETS: it offers the TLS 1.2
 * ticket extension (tt's client, as curl, does not). EXPECT: whether the
 * second connection resumes. */
static void resumption(bool tls12, bool tickets, bool expect)
{
    S->ctx = S2->ctx = keep(server_ctx(cert_path, key_path, NULL, NULL));
    C->ctx = C2->ctx = keep(client_ctx(ca_path, NULL, false, NULL));
    if (tls12)
        SSL_CTX_set_max_proto_version(tt_tls_ctx_ssl_ctx(C->ctx), TLS1_2_VERSION);
    if (tickets)
        SSL_CTX_clear_options(tt_tls_ctx_ssl_ctx(C->ctx), SSL_OP_NO_TICKET);
    C->name = C2->name = "test.example";
    /* TLS 1.3 tickets come after the handshake: reading the server's
     * greeting means the client has them. */
    S->greeting = "hi";
    expect_ok(C, S);
    RUN_UNTIL(C->len == 2);
    cr_assert_not(tt_tls_link_resumed(C->link));
    cr_assert_not(tt_tls_link_resumed(S->link));
    uint8_t k1[32], k2[32];
    cr_assert_eq(tt_tls_link_export(C->link, "EXPORTER-tt-test", k1, sizeof k1), 0);
    close_and_wait(C);
    close_and_wait(S);

    expect_ok(C2, S2);
    if (!expect) {
        cr_assert_not(tt_tls_link_resumed(C2->link));
        cr_assert_not(tt_tls_link_resumed(S2->link));
        return;
    }
    cr_assert(tt_tls_link_resumed(C2->link), "the client resumed");
    cr_assert(tt_tls_link_resumed(S2->link), "the server resumed");
    cr_assert_eq(tt_tls_link_export(C2->link, "EXPORTER-tt-test", k2, sizeof k2), 0);
    cr_assert_neq(memcmp(k1, k2, sizeof k1), 0, "each connection has its own keys");
    char peer[TT_TLS_FP_TEXT];
    cr_assert_eq(tt_tls_link_peer_fingerprint(C2->link, peer), 0);
    cr_assert_str_eq(peer, tt_tls_ctx_fingerprint(S->ctx));
}

Test(tls, the_second_connection_resumes)
{
    resumption(false, false, true);
}

Test(tls, the_second_connection_resumes_on_tls12_by_ticket)
{
    resumption(true, true, true);
}

/* As nginx with its default "ssl_session_cache none": a TLS 1.2 session ID
 * is sent, but no session is kept for it. */
Test(tls, tls12_sessions_are_not_resumed_by_id)
{
    resumption(true, false, false);
}

Test(tls, exporter_values_are_equal_on_both_ends)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    expect_ok(C, S);
    uint8_t a[32], b[32], c[32];
    cr_assert_eq(tt_tls_link_export(C->link, "EXPORTER-tt-auth", a, sizeof a), 0);
    cr_assert_eq(tt_tls_link_export(S->link, "EXPORTER-tt-auth", b, sizeof b), 0);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(tt_tls_link_export(S->link, "EXPORTER-tt-other", c, sizeof c), 0);
    cr_assert_neq(memcmp(a, c, sizeof a), 0, "the label matters");
}

Test(tls, alpn_is_selected_when_offered_and_optional)
{
    S->ctx = S2->ctx = keep(server_ctx(NULL, NULL, NULL, "http/1.1"));
    C->ctx = keep(client_ctx(NULL, NULL, true, "h2,http/1.1"));
    C2->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    expect_ok(C, S);
    char a[32], b[32];
    cr_assert_str_eq(tt_tls_link_alpn(C->link, a, sizeof a), "http/1.1");
    cr_assert_str_eq(tt_tls_link_alpn(S->link, b, sizeof b), "http/1.1");
    expect_ok(C2, S2);
    cr_assert_str_eq(tt_tls_link_alpn(C2->link, a, sizeof a), "");
}

/* As nginx's default ssl_ciphers (HIGH:!aNULL:!MD5) with an ECDSA
 * certificate: CBC suites with ECDHE are taken from a client that offers
 * nothing else, RSA key exchange is refused. */
Test(tls, tls12_cbc_is_taken_and_rsa_key_exchange_refused_as_by_nginx)
{
    S->ctx = S2->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    C2->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    SSL_CTX *c = tt_tls_ctx_ssl_ctx(C2->ctx);
    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    cr_assert_eq(SSL_CTX_set_cipher_list(c, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA"), 1);
    expect_ok(C2, S2);
    cr_assert_str_eq(tt_tls_link_cipher(S2->link), "ECDHE-ECDSA-AES128-SHA256");
    c = tt_tls_ctx_ssl_ctx(C->ctx);
    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    cr_assert_eq(SSL_CTX_set_cipher_list(c, "AES128-GCM-SHA256:AES256-SHA"), 1);
    pair(C, S);
    cr_assert_eq(S->ready, -1);
    cr_assert_eq(S->failure, TT_TLS_FAIL_HANDSHAKE, "%s", S->why);
    cr_assert(strstr(S->why, "no shared cipher") != NULL, "%s", S->why);
    cr_assert_eq(C->ready, -1);
}

/* Bad peers. */

Test(tls, a_server_fails_cleanly_on_a_client_speaking_http)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->mode = MODE_RAW;
    C->garbage = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    connect_to(C, S);
    RUN_UNTIL(S->ready != 0);
    cr_assert_eq(S->ready, -1);
    cr_assert_eq(S->status, UV_EPROTO);
    cr_assert_eq(S->failure, TT_TLS_FAIL_HANDSHAKE, "%s", S->why);
    cr_assert_not(S->ready_in_ctor);
    RUN_UNTIL(C->eof || C->err);
}

Test(tls, a_client_fails_cleanly_on_a_server_speaking_garbage)
{
    S->mode = MODE_RAW;
    S->garbage = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    connect_to(C, S);
    RUN_UNTIL(C->ready != 0);
    cr_assert_eq(C->ready, -1);
    cr_assert_eq(C->status, UV_EPROTO);
    cr_assert_eq(C->failure, TT_TLS_FAIL_HANDSHAKE, "%s", C->why);
}

Test(tls, a_silent_server_times_the_client_out)
{
    S->mode = MODE_RAW;
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    C->timeout_ms = 100;
    connect_to(C, S);
    RUN_UNTIL(C->ready != 0);
    cr_assert_eq(C->status, UV_ETIMEDOUT);
    cr_assert_eq(C->failure, TT_TLS_FAIL_TIMEOUT);
    cr_assert(strstr(C->why, "timed out") != NULL, "%s", C->why);
}

Test(tls, a_silent_client_times_the_server_out)
{
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    S->timeout_ms = 100;
    C->mode = MODE_RAW;
    connect_to(C, S);
    RUN_UNTIL(S->ready != 0);
    cr_assert_eq(S->status, UV_ETIMEDOUT);
    cr_assert_eq(S->failure, TT_TLS_FAIL_TIMEOUT);
}

Test(tls, closing_before_the_handshake_completes_cancels_the_ready_callback)
{
    S->mode = MODE_RAW;
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    C->timeout_ms = 50;
    connect_to(C, S);
    RUN_UNTIL(S->len > 0); /* the ClientHello arrived; no answer comes */
    close_and_wait(C);
    /* Past the handshake deadline: the timer must be gone with the link. */
    RUN_UNTIL(S->eof || S->err);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(C->ready, 0, "no ready callback after close");
}

Test(tls, a_peer_closing_during_the_handshake_is_reported)
{
    S->mode = MODE_RAW;
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    connect_to(C, S);
    RUN_UNTIL(S->link != NULL && S->len > 0);
    close_and_wait(S);
    RUN_UNTIL(C->ready != 0);
    cr_assert_eq(C->status, UV_EOF);
    cr_assert_eq(C->failure, TT_TLS_FAIL_TRANSPORT);
}

Test(tls, early_bytes_from_a_sniffer_start_the_handshake)
{
    S->mode = MODE_SNIFF;
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    C->greeting = "from the client";
    S->greeting = "from the server";
    expect_ok(C, S);
    RUN_UNTIL(C->len == 15 && S->len == 15);
    cr_assert_eq(memcmp(S->buf, "from the client", 15), 0);
    cr_assert_eq(memcmp(C->buf, "from the server", 15), 0);
}

Test(tls, garbage_early_bytes_fail_after_the_constructor)
{
    S->mode = MODE_SNIFF;
    S->garbage = "SSH-2.0-OpenSSH_9.2\r\n";
    S->ctx = keep(server_ctx(NULL, NULL, NULL, NULL));
    C->ctx = keep(client_ctx(NULL, NULL, true, NULL));
    pair(C, S);
    cr_assert_eq(S->ready, -1);
    cr_assert_eq(S->failure, TT_TLS_FAIL_HANDSHAKE, "%s", S->why);
    cr_assert_not(S->ready_in_ctor, "reported from the loop, not the constructor");
    cr_assert_eq(C->ready, -1);
}

/* Contexts. */

Test(tls, context_option_errors_have_reasons)
{
    tt_tls_ctx *c = NULL;
    const char *why = NULL;
    tt_tls_server_opts so = {.cert_file = cert_path};
    cr_assert_eq(tt_tls_server_ctx_new(&so, &c, &why), -EINVAL);
    cr_assert_str_eq(why, "--cert and --key must be given together");
    so = (tt_tls_server_opts){.cert_file = "/nonexistent.pem", .key_file = key_path};
    cr_assert_eq(tt_tls_server_ctx_new(&so, &c, &why), -EINVAL);
    cr_assert(strstr(why, "certificate file") != NULL, "%s", why);
    so = (tt_tls_server_opts){.cert_file = cert_path, .key_file = ca_path};
    cr_assert_eq(tt_tls_server_ctx_new(&so, &c, &why), -EINVAL);
    cr_assert(strstr(why, "key file") != NULL, "%s", why);
    so = (tt_tls_server_opts){.alpn = "http/1.1,,h2"};
    cr_assert_eq(tt_tls_server_ctx_new(&so, &c, &why), -EINVAL);
    cr_assert(strstr(why, "ALPN") != NULL, "%s", why);

    tt_tls_client_opts co = {.pin = "00:11"};
    cr_assert_eq(tt_tls_client_ctx_new(&co, &c, &why), -EINVAL);
    cr_assert(strstr(why, "--pin") != NULL, "%s", why);
    co = (tt_tls_client_opts){.pin =
                                  tt_tls_ctx_fingerprint(keep(server_ctx(NULL, NULL, NULL, NULL))),
                              .insecure_skip_verify = true};
    cr_assert_eq(tt_tls_client_ctx_new(&co, &c, &why), -EINVAL);
    co = (tt_tls_client_opts){.ca_file = "/nonexistent.pem"};
    cr_assert_eq(tt_tls_client_ctx_new(&co, &c, &why), -EINVAL);
    cr_assert(strstr(why, "CA file") != NULL, "%s", why);
    cr_assert_eq(tt_tls_fingerprint_file("/nonexistent.pem", (char[TT_TLS_FP_TEXT]){0}, &why),
                 -EINVAL);
    cr_assert_eq(tt_tls_fingerprint_file(key_path, (char[TT_TLS_FP_TEXT]){0}, &why), -EINVAL);
}

Test(tls, pins_parse_strictly)
{
    uint8_t fp[TT_TLS_FP_LEN], back[TT_TLS_FP_LEN];
    for (int i = 0; i < TT_TLS_FP_LEN; i++)
        fp[i] = (uint8_t)(i * 37 + 5);
    char text[TT_TLS_FP_TEXT];
    tt_tls_fingerprint_text(fp, text);
    cr_assert_eq(tt_tls_parse_pin(text, back), 0);
    cr_assert_eq(memcmp(fp, back, sizeof fp), 0);
    char bare[65];
    size_t j = 0;
    for (size_t i = 0; text[i]; i++)
        if (text[i] != ':')
            bare[j++] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] + 32 : text[i]);
    bare[j] = '\0';
    memset(back, 0, sizeof back);
    cr_assert_eq(tt_tls_parse_pin(bare, back), 0);
    cr_assert_eq(memcmp(fp, back, sizeof fp), 0);
    cr_assert_eq(tt_tls_parse_pin("", back), -EINVAL);
    bare[5] = 'g';
    cr_assert_eq(tt_tls_parse_pin(bare, back), -EINVAL);
    bare[63] = '\0';
    cr_assert_eq(tt_tls_parse_pin(bare, back), -EINVAL, "too short");
    text[2] = '-';
    cr_assert_eq(tt_tls_parse_pin(text, back), -EINVAL, "a separator that is not a colon");
}

Test(tls, the_self_signed_certificate)
{
    tt_tls_ctx *a = keep(server_ctx(NULL, NULL, "tunnel.example", NULL));
    tt_tls_ctx *b = keep(server_ctx(NULL, NULL, "tunnel.example", NULL));
    tt_tls_ctx *ip = keep(server_ctx(NULL, NULL, "192.0.2.7", NULL));
    X509 *x = SSL_CTX_get0_certificate(tt_tls_ctx_ssl_ctx(a));
    X509 *y = SSL_CTX_get0_certificate(tt_tls_ctx_ssl_ctx(b));
    X509 *z = SSL_CTX_get0_certificate(tt_tls_ctx_ssl_ctx(ip));
    cr_assert_eq(X509_check_host(x, "tunnel.example", 0, 0, NULL), 1);
    cr_assert_neq(X509_check_host(x, "other.example", 0, 0, NULL), 1);
    cr_assert_eq(X509_check_ip_asc(z, "192.0.2.7", 0), 1);
    cr_assert_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    EVP_PKEY *k = X509_get0_pubkey(x);
    cr_assert(EVP_PKEY_is_a(k, "EC"));
    char group[32];
    size_t glen = 0;
    cr_assert(EVP_PKEY_get_group_name(k, group, sizeof group, &glen));
    cr_assert_str_eq(group, "prime256v1");
    cr_assert_neq(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)), 0,
                  "serials are random");
    /* Valid from the moment it was made (openssl req sets no margin, and a
     * round hour before the start would mark tt) for 365 days. */
    time_t now = time(NULL), before = now - 5, after = now + 1;
    cr_assert_gt(X509_cmp_time(X509_get0_notBefore(x), &before), 0);
    cr_assert_lt(X509_cmp_time(X509_get0_notBefore(x), &after), 0);
    int days = -1, secs = -1;
    cr_assert(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
    cr_assert_eq(days, 365);
    cr_assert_eq(secs, 0);
    cr_assert_eq(X509_get_ext_by_NID(x, NID_subject_key_identifier, -1), 0);
    cr_assert_eq(X509_get_ext_by_NID(x, NID_authority_key_identifier, -1), 1);
    cr_assert_eq(X509_get_ext_by_NID(x, NID_basic_constraints, -1), 2);
    cr_assert_eq(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), 3);
    cr_assert_str_neq(tt_tls_ctx_fingerprint(a), tt_tls_ctx_fingerprint(b));
}
