/* The TLS link. OpenSSL sees one custom BIO per connection and never a
 * socket:
 * - Input: the lower link's lent buffer is exposed to the BIO while the link
 *   runs SSL_do_handshake/SSL_read over it; whatever is left when the owner
 *   has stopped reading is copied aside (at most one lower read, since the
 *   lower link is stopped too) and fed again after read_start. OpenSSL reads
 *   records exactly (no read-ahead), so plaintext it has decrypted but not
 *   returned stays inside it, in order.
 * - Output: records are gathered in one buffer (shared by all links, as
 *   tcp.c's read buffer is) and handed to the lower link in one write per
 *   batch of up to 240 KiB plaintext; the TCP link copies only what the
 *   socket does not take at once.
 * - Plaintext is decrypted into one shared 256 KiB buffer and handed on in
 *   one on_data call per lower read (on_data lends its buffer).
 * Nothing is held between events but the SSL object: with
 * SSL_MODE_RELEASE_BUFFERS (and SSL_free_buffers after each read) OpenSSL
 * frees its record buffers when they are empty, so an idle link holds no
 * data buffer. Measured: about 15 KiB of heap per idle end after the
 * handshake, 8.5 KiB of which is OpenSSL's bare SSL object (35 KiB
 * without the buffer release).
 *
 * The shared buffers assume one loop thread, as tcp.c's does. */
#include "link/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/log.h"
#include "link/scratch.h"

#define PLAIN_BUF (256 * 1024)
#define BATCH (240 * 1024) /* plaintext per lower write */
/* A batch's ciphertext: the plaintext plus at most 22 bytes per record. */
#define OUT_BUF (BATCH + 16 * 1024)
#define OUT_HEAP_MIN (16 * 1024)
#define RECORD_MAX (16 * 1024) /* TLS plaintext per record */

typedef struct tls_link {
    tt_link base;
    tt_link *lower;
    tt_tls_ctx *ctx;
    SSL *ssl;
    tt_tls_ready_cb ready_cb;
    void *ready_ud;
    /* Before the ready callback: the handshake deadline, or the deferred
     * report of an outcome reached inside the constructor. After it: the
     * delivery of stashed input after read_start. */
    uv_timer_t timer;
    /* Input lent to the BIO for the current operation. */
    const uint8_t *src;
    size_t src_len;
    /* Ciphertext read while the owner was not reading. */
    uint8_t *stash;
    size_t stash_off, stash_len;
    /* Plaintext written before the handshake completed. */
    uint8_t *q;
    size_t q_len, q_cap;
    /* Records gathered for the next lower write. */
    uint8_t *out;
    size_t out_len, out_cap;
    enum tt_tls_failure failure;
    const char *detail; /* static text completing the failure's description */
    int err;
    int ready_status;
    int outstanding;
    tt_link_close_cb close_cb;
    void *close_ud;
    bool in_api;            /* inside a constructor: outcomes are deferred */
    bool hs_done;           /* the handshake completed */
    bool ready_decided;     /* the ready status is known */
    bool ready_called;      /* the ready callback has run */
    bool drain_after_ready; /* queued plaintext went out with the handshake */
    bool failed;
    bool reading; /* the owner reads */
    bool closing;
    bool shut_pending; /* shutdown requested before the handshake completed */
    bool shut_sent;    /* close_notify sent (or being sent) */
    bool eof_rcvd;     /* close_notify received */
    bool eof_pending;  /* ... and not yet reported (the owner stopped reading) */
    bool lower_eof;    /* the lower link ended; dealt with after the stash */
    bool eof_done;
} tls_link;

TT_SCRATCH_DEFINE(g_plain, PLAIN_BUF);
TT_SCRATCH_DEFINE(g_out, OUT_BUF);

static const tt_link_ops tls_ops;

/* Output gathering. The shared buffer is taken for the span of one OpenSSL
 * call and its flush; a link stacked on another TLS link (whose flush runs
 * inside ours) gets a heap buffer instead. */

static void out_release(tls_link *t)
{
    tt_scratch_give(&g_out, t->out);
    t->out = NULL;
    t->out_len = t->out_cap = 0;
}

static int out_append(tls_link *t, const void *data, size_t len)
{
    if (t->out == NULL) {
        t->out = tt_scratch_take(&g_out, len, len > OUT_HEAP_MIN ? len : OUT_HEAP_MIN, &t->out_cap);
        if (t->out == NULL)
            return -1;
    }
    if (len > t->out_cap - t->out_len) {
        size_t cap = t->out_cap * 2 > t->out_len + len ? t->out_cap * 2 : t->out_len + len;
        uint8_t *n = malloc(cap);
        if (n == NULL)
            return -1;
        size_t have = t->out_len;
        memcpy(n, t->out, have);
        out_release(t);
        t->out = n;
        t->out_len = have;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, data, len);
    t->out_len += len;
    return 0;
}

/* Hands the gathered records to the lower link (which copies what it cannot
 * send at once). */
static int flush_out(tls_link *t)
{
    int rc = 0;
    if (t->out_len > 0 && !t->closing)
        rc = tt_link_write1(t->lower, t->out, t->out_len);
    out_release(t);
    return rc;
}

/* The BIO. */

static int bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
    tls_link *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (out_append(t, data, len) < 0)
        return 0;
    *written = len;
    return 1;
}

static int bio_read(BIO *b, char *buf, size_t len, size_t *readbytes)
{
    tls_link *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->src_len == 0) {
        BIO_set_retry_read(b);
        *readbytes = 0;
        return 0;
    }
    size_t n = len < t->src_len ? len : t->src_len;
    memcpy(buf, t->src, n);
    t->src += n;
    t->src_len -= n;
    *readbytes = n;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* Made once per process; it holds no connection state. */
static BIO_METHOD *g_bio_method;

static BIO_METHOD *bio_method(void)
{
    if (g_bio_method)
        return g_bio_method;
    int idx = BIO_get_new_index();
    BIO_METHOD *m = idx < 0 ? NULL : BIO_meth_new(idx | BIO_TYPE_SOURCE_SINK, "tt link");
    if (m == NULL)
        return NULL;
    BIO_meth_set_write_ex(m, bio_write);
    BIO_meth_set_read_ex(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    g_bio_method = m;
    return m;
}

/* Failures. */

/* Records what OpenSSL says went wrong (once) and empties its error queue,
 * which is shared by everything on this thread. */
static void note_ssl_failure(tls_link *t, enum tt_tls_failure kind)
{
    unsigned long e, first = 0, first_ssl = 0;
    bool verify = false;
    while ((e = ERR_get_error()) != 0) {
        if (first == 0)
            first = e;
        if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
            if (first_ssl == 0)
                first_ssl = e;
            if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
                verify = true;
        }
    }
    if (t->failure != TT_TLS_FAIL_NONE)
        return;
    if (verify) {
        long v = SSL_get_verify_result(t->ssl);
        t->failure = TT_TLS_FAIL_VERIFY;
        t->detail = v == X509_V_ERR_CERT_REJECTED && tt_tls_ctx_pinned(t->ctx)
                        ? "the certificate does not match the pinned fingerprint"
                        : X509_verify_cert_error_string(v);
        return;
    }
    t->failure = kind;
    e = first_ssl ? first_ssl : first;
    t->detail = e ? ERR_reason_error_string(e) : NULL;
}

static void call_ready(tls_link *t);

static void report_ready(tls_link *t, int status);

static void on_timer(uv_timer_t *h);

static void call_handler_error(tls_link *t, int err)
{
    if (!t->closing && t->base.handler && t->base.handler->on_error)
        t->base.handler->on_error(&t->base, t->base.ud, err);
}

/* Ends the link's work with ERR: through the ready callback while the
 * handshake runs, else through on_error. */
static void fail(tls_link *t, enum tt_tls_failure kind, const char *detail, int err)
{
    if (t->failed || t->closing)
        return;
    t->failed = true;
    t->err = err;
    if (t->failure == TT_TLS_FAIL_NONE) {
        t->failure = kind;
        t->detail = detail;
    }
    tt_link_read_stop(t->lower);
    if (!t->ready_called)
        report_ready(t, err);
    else
        call_handler_error(t, err);
}

/* Marks the link failed without a callback, for errors a call returns. */
static int fail_quiet(tls_link *t, enum tt_tls_failure kind, int err)
{
    if (!t->failed) {
        t->failed = true;
        t->err = err;
        if (t->failure == TT_TLS_FAIL_NONE)
            t->failure = kind;
    }
    return err;
}

/* Writing. */

/* Encrypts LEN bytes at P, handing the records to the lower link in batches. */
static int encrypt(tls_link *t, const uint8_t *p, size_t len, bool flush)
{
    while (len > 0) {
        size_t n = len < BATCH ? len : BATCH;
        size_t w = 0;
        ERR_clear_error();
        /* The BIO never refuses bytes, so OpenSSL takes everything at once. */
        if (SSL_write_ex(t->ssl, p, n, &w) != 1 || w != n) {
            note_ssl_failure(t, TT_TLS_FAIL_RECORD);
            flush_out(t);
            return fail_quiet(t, TT_TLS_FAIL_RECORD, UV_EPROTO);
        }
        p += n;
        len -= n;
        if (t->out_len >= BATCH) {
            int rc = flush_out(t);
            if (rc < 0)
                return fail_quiet(t, TT_TLS_FAIL_LOCAL, rc);
        }
    }
    if (flush) {
        int rc = flush_out(t);
        if (rc < 0)
            return fail_quiet(t, TT_TLS_FAIL_LOCAL, rc);
    }
    return 0;
}

static int queue_add(tls_link *t, const uv_buf_t *bufs, unsigned nbufs, size_t total)
{
    if (total > t->q_cap - t->q_len) {
        size_t cap = t->q_cap ? t->q_cap : 4096;
        while (cap < t->q_len + total)
            cap *= 2;
        uint8_t *q = realloc(t->q, cap);
        if (q == NULL)
            return UV_ENOMEM;
        t->q = q;
        t->q_cap = cap;
    }
    for (unsigned i = 0; i < nbufs; i++) {
        memcpy(t->q + t->q_len, bufs[i].base, bufs[i].len);
        t->q_len += bufs[i].len;
    }
    return 0;
}

static int do_shutdown(tls_link *t)
{
    t->shut_pending = false;
    t->shut_sent = true;
    ERR_clear_error();
    /* Returns 0 once close_notify is written: the peer's may come later
     * (or never; reading goes on independently). */
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    int rc = flush_out(t);
    if (rc == 0)
        rc = tt_link_shutdown(t->lower);
    return rc;
}

/* Sends what was written (and a shutdown requested) before the handshake. */
static int flush_queue(tls_link *t)
{
    int rc = 0;
    if (t->q_len > 0) {
        rc = encrypt(t, t->q, t->q_len, true);
        free(t->q);
        t->q = NULL;
        t->q_len = t->q_cap = 0;
    }
    if (rc == 0 && t->shut_pending)
        rc = do_shutdown(t);
    return rc;
}

static int tls_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    tls_link *t = (tls_link *)l;
    if (t->closing || t->shut_sent || t->shut_pending)
        return UV_EPIPE;
    if (t->failed)
        return t->err < 0 ? t->err : UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (!t->hs_done)
        return queue_add(t, bufs, nbufs, total);
    /* OpenSSL cuts each SSL_write into records on its own, so a piece
     * shorter than a record (a mux or WebSocket header before its payload)
     * would become a record of its own: an AEAD operation and 22 bytes of
     * overhead for a few bytes, which halved a muxed transfer's speed.
     * Pieces are therefore joined into full records in STAGE; runs of whole
     * records, and a last piece, go from the caller's buffer as they are. */
    uint8_t stage[RECORD_MAX];
    size_t staged = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        const uint8_t *p = (const uint8_t *)bufs[i].base;
        size_t n = bufs[i].len;
        while (n > 0) {
            if (staged == 0 && (n >= RECORD_MAX || i + 1 == nbufs)) {
                size_t k = i + 1 == nbufs ? n : n - n % RECORD_MAX;
                int rc = encrypt(t, p, k, false);
                if (rc < 0)
                    return rc;
                p += k;
                n -= k;
                continue;
            }
            size_t k = RECORD_MAX - staged < n ? RECORD_MAX - staged : n;
            memcpy(stage + staged, p, k);
            staged += k;
            p += k;
            n -= k;
            if (staged == RECORD_MAX) {
                int rc = encrypt(t, stage, staged, false);
                if (rc < 0)
                    return rc;
                staged = 0;
            }
        }
    }
    return encrypt(t, stage, staged, true);
}

static int tls_shutdown(tt_link *l)
{
    tls_link *t = (tls_link *)l;
    if (t->closing || t->failed || t->shut_sent || t->shut_pending)
        return 0;
    if (!t->hs_done) {
        t->shut_pending = true;
        return 0;
    }
    int rc = do_shutdown(t);
    return rc < 0 ? fail_quiet(t, TT_TLS_FAIL_LOCAL, rc) : 0;
}

static size_t tls_pending(const tt_link *l)
{
    const tls_link *t = (const tls_link *)l;
    return t->q_len + tt_link_pending(t->lower);
}

/* Reading. */

static void deliver(tls_link *t, const uint8_t *data, size_t len)
{
    if (len > 0 && !t->closing && t->base.handler && t->base.handler->on_data)
        t->base.handler->on_data(&t->base, t->base.ud, data, len);
}

/* The peer's close_notify, once the owner reads. */
static void deliver_eof(tls_link *t)
{
    if (!t->eof_pending || !t->reading || t->closing)
        return;
    t->eof_pending = false;
    if (t->base.handler && t->base.handler->on_eof)
        t->base.handler->on_eof(&t->base, t->base.ud);
}

/* Decrypts what the BIO holds and hands it on while the owner reads. */
static void read_loop(tls_link *t)
{
    /* A TLS link over a TLS link finds the buffer busy: the outer one is
     * being delivered. */
    size_t cap;
    uint8_t *buf = tt_scratch_take(&g_plain, 0, 64 * 1024, &cap);
    if (buf == NULL) {
        fail(t, TT_TLS_FAIL_LOCAL, NULL, UV_ENOMEM);
        return;
    }
    while (!t->closing && !t->failed && t->reading && !t->eof_rcvd) {
        size_t off = 0;
        int e = SSL_ERROR_NONE;
        while (off < cap) {
            size_t n = 0;
            ERR_clear_error();
            int r = SSL_read_ex(t->ssl, buf + off, cap - off, &n);
            if (r != 1) {
                e = SSL_get_error(t->ssl, r);
                break;
            }
            off += n;
        }
        bool fatal = e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_ZERO_RETURN;
        if (fatal)
            note_ssl_failure(t, TT_TLS_FAIL_RECORD);
        else
            ERR_clear_error();
        /* Records OpenSSL wrote while reading (a key update, an alert). */
        int rc = flush_out(t);
        deliver(t, buf, off);
        if (t->closing)
            break;
        if (rc < 0) {
            fail(t, TT_TLS_FAIL_LOCAL, NULL, rc);
            break;
        }
        if (e == SSL_ERROR_NONE)
            continue; /* the buffer was full */
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify: the peer's half-close. Anything after it is
             * dropped. */
            t->eof_rcvd = true;
            t->eof_pending = true;
            t->src_len = 0;
            deliver_eof(t);
            break;
        }
        fail(t, TT_TLS_FAIL_RECORD, NULL, UV_EPROTO);
        break;
    }
    tt_scratch_give(&g_plain, buf);
}

/* OpenSSL allocates its record read buffer before it finds the BIO empty,
 * and keeps it. Released after each lower read (OpenSSL refuses while a
 * partial record is inside), an idle link holds about 17 KiB less. */
static void release_buffers(tls_link *t)
{
    if (!t->closing)
        SSL_free_buffers(t->ssl);
}

static void handshake_done(tls_link *t)
{
    t->hs_done = true;
    uv_timer_stop(&t->timer);
    bool had = t->q_len > 0;
    int rc = flush_queue(t);
    if (rc < 0) {
        t->failed = false; /* let fail() report it */
        fail(t, t->failure ? t->failure : TT_TLS_FAIL_LOCAL, NULL, rc);
        return;
    }
    t->drain_after_ready = had;
    report_ready(t, 0);
}

static void handshake_step(tls_link *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
        note_ssl_failure(t, TT_TLS_FAIL_HANDSHAKE);
        flush_out(t); /* the alert tells the peer why */
        fail(t, TT_TLS_FAIL_HANDSHAKE, NULL, UV_EPROTO);
        return;
    }
    int rc = flush_out(t);
    if (rc < 0) {
        fail(t, TT_TLS_FAIL_TRANSPORT, uv_strerror(rc), rc);
        return;
    }
    if (r == 1)
        handshake_done(t);
}

static int stash_add(tls_link *t, const uint8_t *data, size_t len)
{
    size_t have = t->stash_len - t->stash_off;
    uint8_t *s = malloc(have + len);
    if (s == NULL)
        return -1;
    if (have > 0)
        memcpy(s, t->stash + t->stash_off, have);
    memcpy(s + have, data, len);
    free(t->stash);
    t->stash = s;
    t->stash_off = 0;
    t->stash_len = have + len;
    return 0;
}

static void stash_clear(tls_link *t)
{
    free(t->stash);
    t->stash = NULL;
    t->stash_off = t->stash_len = 0;
}

/* Runs the handshake and then the reader over DATA; keeps what the owner
 * is not reading yet. */
static void feed(tls_link *t, const uint8_t *data, size_t len)
{
    t->src = data;
    t->src_len = len;
    if (!t->hs_done && !t->failed)
        handshake_step(t);
    if (t->hs_done && t->ready_called && !t->failed && !t->closing)
        read_loop(t);
    size_t left = t->src_len;
    t->src = NULL;
    t->src_len = 0;
    release_buffers(t);
    if (t->closing || t->failed || t->eof_rcvd)
        return;
    if (left > 0 && stash_add(t, data + len - left, left) < 0) {
        fail(t, TT_TLS_FAIL_LOCAL, NULL, UV_ENOMEM);
        return;
    }
    /* The handshake reads whether or not the owner does; after it the
     * lower link reads only while the owner does. */
    if (t->ready_called && !t->reading)
        tt_link_read_stop(t->lower);
}

static void lower_ended(tls_link *t)
{
    if (t->eof_done)
        return;
    t->eof_done = true;
    if (!t->eof_rcvd)
        fail(t, TT_TLS_FAIL_TRUNCATED, "the connection ended without close_notify", UV_EPROTO);
}

static bool has_input(tls_link *t)
{
    return t->stash_len > t->stash_off || SSL_pending(t->ssl) > 0 || t->eof_pending;
}

/* From the loop after read_start: stashed input first, then the lower link
 * again (or its end). */
static void resume(tls_link *t)
{
    if (t->closing || t->failed || !t->reading)
        return;
    if (t->eof_pending) {
        deliver_eof(t);
        return;
    }
    if (has_input(t)) {
        uint8_t *s = t->stash;
        size_t n = t->stash_len - t->stash_off;
        t->src = s ? s + t->stash_off : NULL;
        t->src_len = n;
        read_loop(t);
        size_t used = n - t->src_len;
        t->src = NULL;
        t->src_len = 0;
        release_buffers(t);
        if (t->stash == s && s != NULL) {
            t->stash_off += used;
            if (t->stash_off == t->stash_len || t->eof_rcvd)
                stash_clear(t);
        }
        if (t->closing || t->failed || !t->reading)
            return;
    }
    if (t->lower_eof) {
        lower_ended(t);
        return;
    }
    int rc = tt_link_read_start(t->lower);
    if (rc < 0)
        fail(t, TT_TLS_FAIL_TRANSPORT, uv_strerror(rc), rc);
}

static void on_lower_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    tls_link *t = ud;
    if (t->closing || t->failed || t->eof_rcvd)
        return;
    if (t->stash_len > t->stash_off) {
        /* Input overtaking the stash: queue it behind. Not expected, since
         * the lower link is stopped while there is a stash. */
        if (stash_add(t, data, len) < 0)
            fail(t, TT_TLS_FAIL_LOCAL, NULL, UV_ENOMEM);
        else if (t->reading && t->ready_called)
            uv_timer_start(&t->timer, on_timer, 0, 0);
        return;
    }
    feed(t, data, len);
}

static void on_lower_eof(tt_link *l, void *ud)
{
    (void)l;
    tls_link *t = ud;
    if (t->closing || t->failed)
        return;
    if (!t->ready_called) {
        fail(t, TT_TLS_FAIL_TRANSPORT, "the peer closed the connection", UV_EOF);
        return;
    }
    t->lower_eof = true;
    if (t->reading && !has_input(t))
        lower_ended(t);
}

static void on_lower_error(tt_link *l, void *ud, int err)
{
    (void)l;
    tls_link *t = ud;
    fail(t, TT_TLS_FAIL_TRANSPORT, uv_strerror(err), err);
}

static void on_lower_drained(tt_link *l, void *ud)
{
    (void)l;
    tls_link *t = ud;
    if (t->closing || t->failed || !t->ready_called || t->ready_status != 0 || t->q_len > 0)
        return;
    t->drain_after_ready = false;
    if (t->base.handler && t->base.handler->on_drained)
        t->base.handler->on_drained(&t->base, t->base.ud);
}

static const tt_link_handler lower_handler = {
    .on_data = on_lower_data,
    .on_eof = on_lower_eof,
    .on_error = on_lower_error,
    .on_drained = on_lower_drained,
};

/* The ready callback. */

static void call_ready(tls_link *t)
{
    t->ready_called = true;
    int status = t->ready_status;
    t->ready_cb(t->ready_ud, &t->base, status);
    if (status < 0 || t->closing || t->failed)
        return;
    /* Plaintext queued before the handshake counted as pending; if the
     * lower link took it all at once, no lower drain will follow. */
    if (t->drain_after_ready && tls_pending(&t->base) == 0) {
        t->drain_after_ready = false;
        if (t->base.handler && t->base.handler->on_drained)
            t->base.handler->on_drained(&t->base, t->base.ud);
    }
}

/* Reports STATUS through the ready callback, at once from a loop callback,
 * or from the loop when reached inside a constructor. */
static void report_ready(tls_link *t, int status)
{
    if (t->ready_decided) {
        if (!t->ready_called && status < 0)
            t->ready_status = status;
        return;
    }
    t->ready_decided = true;
    t->ready_status = status;
    uv_timer_stop(&t->timer);
    if (t->in_api)
        uv_timer_start(&t->timer, on_timer, 0, 0);
    else
        call_ready(t);
}

static void on_timer(uv_timer_t *h)
{
    tls_link *t = h->data;
    if (t->closing)
        return;
    if (t->ready_called) {
        resume(t);
        return;
    }
    if (!t->ready_decided) {
        /* The deadline passed with the handshake still running. */
        t->failed = true;
        t->err = UV_ETIMEDOUT;
        t->failure = TT_TLS_FAIL_TIMEOUT;
        t->ready_decided = true;
        t->ready_status = UV_ETIMEDOUT;
        tt_link_read_stop(t->lower);
    }
    call_ready(t);
    if (t->closing || t->failed || t->ready_status < 0)
        return;
    if (t->reading)
        resume(t);
    else
        tt_link_read_stop(t->lower);
}

static int tls_read_start(tt_link *l)
{
    tls_link *t = (tls_link *)l;
    if (t->closing)
        return UV_EINVAL;
    if (t->reading)
        return 0;
    t->reading = true;
    /* During the handshake the lower link reads anyway. */
    if (!t->ready_called || t->failed)
        return 0;
    /* Kept input is delivered from the loop, never inside this call. */
    if (has_input(t) || t->lower_eof) {
        uv_timer_start(&t->timer, on_timer, 0, 0);
        return 0;
    }
    return tt_link_read_start(t->lower);
}

static void tls_read_stop(tt_link *l)
{
    tls_link *t = (tls_link *)l;
    t->reading = false;
    if (!t->ready_called || t->closing)
        return;
    uv_timer_stop(&t->timer);
    tt_link_read_stop(t->lower);
}

/* Closing. */

static void release(void *ud)
{
    tls_link *t = ud;
    if (--t->outstanding > 0)
        return;
    SSL_free(t->ssl);
    if (t->out)
        out_release(t);
    free(t->stash);
    free(t->q);
    tt_tls_ctx_free(t->ctx);
    tt_link_close_cb cb = t->close_cb;
    void *cud = t->close_ud;
    free(t);
    if (cb)
        cb(cud);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(h->data);
}

static void tls_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    tls_link *t = (tls_link *)l;
    if (t->closing)
        return;
    /* A close ends the stream cleanly, as it does on TCP: close_notify
     * goes out if the lower link can send it at once (a lower close drops
     * what it still queues, and then the peer sees a truncation, which is
     * the truth). */
    if (!abort && t->hs_done && !t->failed && !t->shut_sent) {
        t->shut_sent = true;
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
        flush_out(t);
    }
    t->closing = true;
    t->reading = false;
    t->close_cb = cb;
    t->close_ud = ud;
    t->outstanding = 2;
    if (abort)
        tt_link_abort(t->lower, release, t);
    else
        tt_link_close(t->lower, release, t);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}

static void tls_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    tls_end(l, cb, ud, false);
}

static void tls_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    tls_end(l, cb, ud, true);
}

static const char *tls_peer(tt_link *l, char *buf, size_t len)
{
    return tt_link_peer(((tls_link *)l)->lower, buf, len);
}

static const tt_link_ops tls_ops = {
    .write = tls_write,
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .pending = tls_pending,
    .abort = tls_abort,
    .peer = tls_peer,
};

/* Construction. */

static tls_link *tls_new(tt_link *lower, tt_tls_ctx *ctx, const char *name, unsigned timeout_ms,
                         tt_tls_ready_cb cb, void *ud)
{
    const char *why = "out of memory";
    BIO_METHOD *m = bio_method();
    tls_link *t = m ? calloc(1, sizeof *t) : NULL;
    SSL *ssl = t ? tt_tls_ctx_new_ssl(ctx, name, &why) : NULL;
    BIO *b = ssl ? BIO_new(m) : NULL;
    if (b == NULL) {
        tt_warn("c%llu: cannot start TLS: %s", (unsigned long long)lower->id, why);
        SSL_free(ssl);
        free(t);
        ERR_clear_error();
        tt_link_close(lower, NULL, NULL);
        return NULL;
    }
    BIO_set_data(b, t);
    SSL_set_bio(ssl, b, b);
    t->base.ops = &tls_ops;
    t->base.loop = lower->loop;
    t->base.id = lower->id;
    t->lower = lower;
    t->ctx = ctx;
    tt_tls_ctx_ref(ctx);
    t->ssl = ssl;
    t->ready_cb = cb;
    t->ready_ud = ud;
    uv_timer_init(lower->loop, &t->timer);
    t->timer.data = t;
    tt_link_set_handler(lower, &lower_handler, t);
    if (timeout_ms > 0)
        uv_timer_start(&t->timer, on_timer, timeout_ms, 0);
    t->in_api = true;
    int rc = tt_link_read_start(lower);
    if (rc < 0)
        fail(t, TT_TLS_FAIL_TRANSPORT, uv_strerror(rc), rc);
    return t;
}

tt_link *tt_tls_link_client(tt_link *lower, tt_tls_ctx *ctx, const char *name, unsigned timeout_ms,
                            tt_tls_ready_cb cb, void *ud)
{
    tls_link *t = tls_new(lower, ctx, name, timeout_ms, cb, ud);
    if (t == NULL)
        return NULL;
    /* The ClientHello goes out now. */
    if (!t->failed)
        handshake_step(t);
    t->in_api = false;
    return &t->base;
}

tt_link *tt_tls_link_server(tt_link *lower, tt_tls_ctx *ctx, const uint8_t *early, size_t early_len,
                            unsigned timeout_ms, tt_tls_ready_cb cb, void *ud)
{
    tls_link *t = tls_new(lower, ctx, NULL, timeout_ms, cb, ud);
    if (t == NULL)
        return NULL;
    if (early_len > 0 && !t->failed)
        feed(t, early, early_len);
    t->in_api = false;
    return &t->base;
}

void tt_tls_link_close_quietly(tt_link *l)
{
    if (tt_tls_link_is(l))
        ((tls_link *)l)->shut_sent = true;
}

/* Queries. */

bool tt_tls_link_is(const tt_link *l)
{
    return l != NULL && l->ops == &tls_ops;
}

enum tt_tls_failure tt_tls_link_failure(tt_link *l)
{
    return tt_tls_link_is(l) ? ((tls_link *)l)->failure : TT_TLS_FAIL_NONE;
}

const char *tt_tls_link_why(tt_link *l, char *buf, size_t len)
{
    static const char *const what[] = {
        [TT_TLS_FAIL_NONE] = "no TLS error",
        [TT_TLS_FAIL_VERIFY] = "certificate verify failed",
        [TT_TLS_FAIL_HANDSHAKE] = "TLS handshake failed",
        [TT_TLS_FAIL_TIMEOUT] = "TLS handshake timed out",
        [TT_TLS_FAIL_TRANSPORT] = "connection lost during TLS",
        [TT_TLS_FAIL_RECORD] = "TLS error",
        [TT_TLS_FAIL_TRUNCATED] = "TLS stream truncated",
        [TT_TLS_FAIL_LOCAL] = "TLS failed locally",
    };
    if (!tt_tls_link_is(l)) {
        snprintf(buf, len, "not a TLS link");
        return buf;
    }
    tls_link *t = (tls_link *)l;
    const char *detail = t->detail;
    if (detail == NULL && t->failure == TT_TLS_FAIL_LOCAL && t->err < 0)
        detail = uv_strerror(t->err);
    if (detail)
        snprintf(buf, len, "%s: %s", what[t->failure], detail);
    else
        snprintf(buf, len, "%s", what[t->failure]);
    return buf;
}

int tt_tls_link_export(tt_link *l, const char *label, uint8_t *out, size_t len)
{
    if (!tt_tls_link_is(l) || !((tls_link *)l)->hs_done)
        return UV_EINVAL;
    tls_link *t = (tls_link *)l;
    ERR_clear_error();
    int ok = SSL_export_keying_material(t->ssl, out, len, label, strlen(label), NULL, 0, 0);
    ERR_clear_error();
    return ok == 1 ? 0 : UV_EPROTO;
}

bool tt_tls_link_resumed(tt_link *l)
{
    return tt_tls_link_is(l) && ((tls_link *)l)->hs_done &&
           SSL_session_reused(((tls_link *)l)->ssl);
}

const char *tt_tls_link_alpn(tt_link *l, char *buf, size_t len)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (len == 0)
        return buf;
    if (tt_tls_link_is(l))
        SSL_get0_alpn_selected(((tls_link *)l)->ssl, &p, &n);
    if (n >= len)
        n = (unsigned)len - 1;
    if (n > 0)
        memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

const char *tt_tls_link_sni(tt_link *l)
{
    if (!tt_tls_link_is(l))
        return NULL;
    return SSL_get_servername(((tls_link *)l)->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *tt_tls_link_version(tt_link *l)
{
    if (!tt_tls_link_is(l) || !((tls_link *)l)->hs_done)
        return NULL;
    return SSL_get_version(((tls_link *)l)->ssl);
}

const char *tt_tls_link_cipher(tt_link *l)
{
    if (!tt_tls_link_is(l) || !((tls_link *)l)->hs_done)
        return NULL;
    return SSL_get_cipher_name(((tls_link *)l)->ssl);
}

int tt_tls_link_peer_fingerprint(tt_link *l, char out[TT_TLS_FP_TEXT])
{
    if (!tt_tls_link_is(l) || !((tls_link *)l)->hs_done)
        return UV_EINVAL;
    X509 *x = SSL_get0_peer_certificate(((tls_link *)l)->ssl);
    return x && tt_tls_cert_fingerprint(x, NULL, out) == 0 ? 0 : UV_EINVAL;
}
