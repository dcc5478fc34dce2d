/* The HTTP streaming carriers' tokens, heads and records (codec/hts.h). */
#include "codec/hts.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "codec/wshs.h"

static const char token_label[] = "tt-http1";
static const char mask_label[] = "tt-http1 mask";

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* MASK (24 bytes) for NONCE, and MAC over PLAIN, PAD and PATH when PLAIN
 * is given. */
static int token_macs(const uint8_t key[32], const uint8_t *nonce, const uint8_t *plain,
                      const uint8_t *pad, size_t pad_len, const char *path,
                      uint8_t mask[TT_HTS_PLAIN_LEN], uint8_t mac[TT_HTS_MAC_LEN])
{
    uint8_t full[32];
    const void *mp[] = {mask_label, nonce};
    const size_t ml[] = {sizeof mask_label - 1, TT_HTS_NONCE_LEN};
    int rc = tt_ws_hmac_parts(key, mp, ml, 2, full);
    if (rc == 0)
        memcpy(mask, full, TT_HTS_PLAIN_LEN);
    if (rc == 0 && plain != NULL) {
        uint8_t plen = (uint8_t)pad_len;
        const void *p[] = {token_label, nonce, plain, &plen, pad, path};
        const size_t l[] = {
            sizeof token_label - 1, TT_HTS_NONCE_LEN, TT_HTS_PLAIN_LEN, 1, pad_len, strlen(path)};
        rc = tt_ws_hmac_parts(key, p, l, 6, full);
        if (rc == 0)
            memcpy(mac, full, TT_HTS_MAC_LEN);
    }
    OPENSSL_cleanse(full, sizeof full);
    return rc;
}

int tt_hts_token_make(const uint8_t key[32], const tt_hts_token *t, const uint8_t *pad,
                      size_t pad_len, const char *path, char out[TT_HTS_TOKEN_MAX + 1])
{
    if (pad_len > TT_HTS_PAD_MAX)
        return -EINVAL;
    uint8_t raw[TT_HTS_RAW_MAX], plain[TT_HTS_PLAIN_LEN] = {0}, mask[TT_HTS_PLAIN_LEN];
    put_be(plain, t->time, 8);
    memcpy(plain + 8, t->id, TT_HTS_ID_LEN);
    put_be(plain + 16, t->seq, 4);
    plain[20] = t->kind;
    plain[21] = t->flags;
    memcpy(raw, t->nonce, TT_HTS_NONCE_LEN);
    if (token_macs(key, t->nonce, plain, pad, pad_len, path, mask,
                   raw + TT_HTS_NONCE_LEN + TT_HTS_PLAIN_LEN) < 0)
        return -EIO;
    for (size_t i = 0; i < TT_HTS_PLAIN_LEN; i++)
        raw[TT_HTS_NONCE_LEN + i] = plain[i] ^ mask[i];
    if (pad_len > 0)
        memcpy(raw + TT_HTS_RAW_MIN, pad, pad_len);
    return (int)tt_ws_b64url(raw, TT_HTS_RAW_MIN + pad_len, out);
}

int tt_hts_token_check(const uint8_t key[32], const char *text, size_t len, const char *path,
                       uint64_t now, uint64_t window_s, tt_hts_token *t, const char **why)
{
    size_t raw_len = len * 3 / 4;
    uint8_t raw[TT_HTS_RAW_MAX], plain[TT_HTS_PLAIN_LEN], mask[TT_HTS_PLAIN_LEN],
        mac[TT_HTS_MAC_LEN];
    if (len < TT_HTS_TOKEN_MIN || len > TT_HTS_TOKEN_MAX ||
        tt_ws_b64url_decode(text, len, raw, raw_len) < 0) {
        *why = "malformed token";
        return -EINVAL;
    }
    if (token_macs(key, raw, NULL, NULL, 0, path, mask, NULL) < 0) {
        *why = "HMAC-SHA256 unavailable";
        return -EIO;
    }
    for (size_t i = 0; i < TT_HTS_PLAIN_LEN; i++)
        plain[i] = raw[TT_HTS_NONCE_LEN + i] ^ mask[i];
    /* The MAC first: with another key the rest unmasks to noise. */
    if (token_macs(key, raw, plain, raw + TT_HTS_RAW_MIN, raw_len - TT_HTS_RAW_MIN, path, mask,
                   mac) < 0) {
        *why = "HMAC-SHA256 unavailable";
        return -EIO;
    }
    if (CRYPTO_memcmp(mac, raw + TT_HTS_NONCE_LEN + TT_HTS_PLAIN_LEN, TT_HTS_MAC_LEN) != 0) {
        *why = "bad token";
        return -EACCES;
    }
    uint8_t kind = plain[20], flags = plain[21];
    if ((kind != TT_HTS_GET && kind != TT_HTS_POST) || (flags & ~TT_HTS_FIN) != 0 ||
        (kind == TT_HTS_GET && flags != 0) || plain[22] != 0 || plain[23] != 0) {
        *why = "malformed token";
        return -EINVAL;
    }
    uint64_t tm = get_be(plain, 8);
    uint64_t diff = tm > now ? tm - now : now - tm;
    if (diff > window_s) {
        *why = "token time outside the window";
        return -ETIMEDOUT;
    }
    memcpy(t->nonce, raw, TT_HTS_NONCE_LEN);
    t->time = tm;
    memcpy(t->id, plain + 8, TT_HTS_ID_LEN);
    t->seq = (uint32_t)get_be(plain + 16, 4);
    t->kind = kind;
    t->flags = flags;
    return 0;
}

static bool values_ok(const char *host, const char *origin, const char *path, const char *cookie)
{
    return tt_http_printable(host, 1024) && (origin == NULL || tt_http_printable(origin, 1024)) &&
           tt_http_printable(path, 2048) && path[0] == '/' && strchr(path, ' ') == NULL &&
           (cookie == NULL || tt_http_printable(cookie, 1024));
}

size_t tt_hts_get_request(char *out, size_t cap, const char *host, const char *path,
                          const char *cookie)
{
    if (!values_ok(host, NULL, path, cookie))
        return 0;
    size_t n = 0;
    bool ok = cap > 0;
    tt_http_put(out, cap, &n, &ok,
                "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n"
                "Cache-Control: no-cache\r\nAccept: text/event-stream\r\nUser-Agent: %s\r\n"
                "Accept-Encoding: identity\r\nAccept-Language: en-US,en;q=0.9\r\n",
                path, host, tt_ws_user_agent);
    if (cookie)
        tt_http_put(out, cap, &n, &ok, "Cookie: %s\r\n", cookie);
    tt_http_put(out, cap, &n, &ok, "\r\n");
    return ok ? n : 0;
}

size_t tt_hts_post_head(char *out, size_t cap, const char *host, const char *origin,
                        const char *path, const char *cookie, uint64_t len)
{
    if (!values_ok(host, origin, path, cookie))
        return 0;
    size_t n = 0;
    bool ok = cap > 0;
    tt_http_put(out, cap, &n, &ok,
                "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n"
                "Content-Length: %llu\r\nUser-Agent: %s\r\n"
                "Content-Type: application/octet-stream\r\nAccept: */*\r\nOrigin: %s\r\n"
                "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n",
                path, host, (unsigned long long)len, tt_ws_user_agent, origin);
    if (cookie)
        tt_http_put(out, cap, &n, &ok, "Cookie: %s\r\n", cookie);
    tt_http_put(out, cap, &n, &ok, "\r\n");
    return ok ? n : 0;
}

size_t tt_hts_down_head(char *out, size_t cap, int64_t now, bool chunked)
{
    char date[TT_HTTP_DATE_LEN + 1];
    tt_http_date(now, date);
    size_t n = 0;
    bool ok = cap > 0;
    /* X-Accel-Buffering: no makes an nginx in front pass the body on as
     * it comes, even with proxy_buffering on; nginx does not forward it. */
    tt_http_put(out, cap, &n, &ok,
                "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: %s\r\n"
                "Content-Type: text/event-stream\r\n%s"
                "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n\r\n",
                date,
                chunked ? "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
                        : "Connection: close\r\n");
    return ok ? n : 0;
}

size_t tt_hts_post_answer(char *out, size_t cap, int64_t now, bool close)
{
    char date[TT_HTTP_DATE_LEN + 1];
    tt_http_date(now, date);
    size_t n = 0;
    bool ok = cap > 0;
    tt_http_put(out, cap, &n, &ok,
                "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: %s\r\nContent-Length: 0\r\n"
                "Connection: %s\r\n\r\n",
                date, close ? "close" : "keep-alive");
    return ok ? n : 0;
}

int tt_hts_server_check(const tt_http_head *req, const char *path, tt_http_str *cookies, size_t *n)
{
    *n = 0;
    tt_http_str t = req->target;
    const char *q = memchr(t.p, '?', t.len);
    size_t plen = q ? (size_t)(q - t.p) : t.len;
    if (plen != strlen(path) || memcmp(t.p, path, plen) != 0)
        return 0;
    int kind;
    if (req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0)
        kind = TT_HTS_GET;
    else if (req->method.len == 4 && memcmp(req->method.p, "POST", 4) == 0)
        kind = TT_HTS_POST;
    else
        return 0;
    *n = tt_http_cookies(req, cookies, TT_HTS_COOKIES_MAX);
    return kind;
}

int tt_hts_down_check(const tt_http_head *resp, bool *chunked, const char **why)
{
    if (resp->status != 200) {
        *why = "the server refused the stream";
        return -EPROTO;
    }
    tt_http_header ce;
    if (tt_http_find(resp, "Content-Encoding", &ce) && !tt_http_str_ieq(ce.value, "identity")) {
        *why = "the stream arrived compressed (Content-Encoding); turn compression off for the "
               "path on the front end";
        return -EPROTO;
    }
    enum tt_http_te te = tt_http_transfer_encoding(resp);
    if (te == TT_HTTP_TE_OTHER) {
        *why = "the stream arrived with a transfer coding other than chunked";
        return -EPROTO;
    }
    if (te == TT_HTTP_TE_NONE && tt_http_find(resp, "Content-Length", NULL)) {
        *why = "the stream arrived with a Content-Length (a front end buffered it)";
        return -EPROTO;
    }
    *chunked = te == TT_HTTP_TE_CHUNKED;
    return 0;
}

void tt_hts_rec_header(uint8_t h[TT_HTS_REC_HDR], unsigned type, size_t len)
{
    h[0] = (uint8_t)type;
    put_be(h + 1, len, 3);
}

void tt_hts_rec_init(tt_hts_rec *r)
{
    memset(r, 0, sizeof *r);
}

int tt_hts_rec_read(tt_hts_rec *r, const uint8_t *p, size_t len, size_t *used, tt_http_str *data,
                    const char **why)
{
    size_t i = 0;
    while (i < len) {
        if (r->ended) {
            *why = "bytes after the end of the stream";
            *used = i;
            return -EPROTO;
        }
        if (r->in_body) {
            size_t n = len - i < r->left ? len - i : r->left;
            r->left -= n;
            if (r->left == 0)
                r->in_body = false;
            if (r->type == TT_HTS_REC_DATA) {
                *data = (tt_http_str){(const char *)p + i, n};
                *used = i + n;
                return 1;
            }
            i += n;
            continue;
        }
        r->hdr[r->have++] = p[i++];
        if (r->have < TT_HTS_REC_HDR)
            continue;
        r->have = 0;
        r->type = r->hdr[0];
        r->left = (size_t)get_be(r->hdr + 1, 3);
        if (r->type == TT_HTS_REC_END) {
            if (r->left != 0) {
                *why = "an end record with a body";
                *used = i;
                return -EPROTO;
            }
            r->ended = true;
            *used = i;
            return 2;
        }
        if (r->type != TT_HTS_REC_DATA && r->type != TT_HTS_REC_PAD) {
            *why = "a record of an unknown type";
            *used = i;
            return -EPROTO;
        }
        r->in_body = r->left > 0;
    }
    *used = i;
    return 0;
}
