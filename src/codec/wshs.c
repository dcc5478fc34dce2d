/* WebSocket opening handshake and the tt-ws2 token.
 *
 * Base64 is done here rather than with EVP_EncodeBlock/EVP_DecodeBlock:
 * decoding must be strict (canonical text only, no whitespace, no padding
 * games), so that a key or token has exactly one accepted spelling, and the
 * token uses the URL alphabet without padding, which OpenSSL's block
 * functions do not. */
#include "codec/wshs.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const char token_label[] = "tt-ws2";
static const char mask_label[] = "tt-ws2 time";
static const char name_label[] = "tt-ws2 cookie";

/* Chrome 120 on Windows 10, the most common desktop browser of its day. */
const char tt_ws_user_agent[] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                                "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/* Session cookie names common across web frameworks; none implies a format
 * for its value. */
static const char *const cookie_names[] = {
    "session", "sid", "sessionid", "_session", "session_id", "auth_session", "user_session", "_sid",
};

/* Encodes LEN bytes with ALPHABET, with '=' padding when PAD. Returns the
 * text length; OUT gets a NUL after it. */
static size_t b64_encode(const char *alphabet, bool pad, const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(const char *alphabet, char c)
{
    if (c == '\0')
        return -1;
    const char *p = strchr(alphabet, c);
    return p ? (int)(p - alphabet) : -1;
}

/* Decodes TEXT (LEN characters) into exactly OUT_LEN bytes. Accepts only
 * the canonical text: the exact length (with '=' padding when PAD), only
 * ALPHABET characters, and zero unused bits in the last character. Returns
 * 0 or -EINVAL. */
static int b64_decode_exact(const char *alphabet, bool pad, const char *text, size_t len,
                            uint8_t *out, size_t out_len)
{
    size_t full = out_len / 3, rest = out_len % 3;
    size_t chars = full * 4 + (rest ? rest + 1 : 0);
    size_t want = pad && rest ? full * 4 + 4 : chars;
    if (len != want)
        return -EINVAL;
    for (size_t k = chars; k < len; k++) {
        if (text[k] != '=')
            return -EINVAL;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t k = 0; k < chars; k++) {
        int v = b64_value(alphabet, text[k]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits (2 or 4) must be zero, or two texts would decode to the
     * same bytes. */
    if (o != out_len || acc != 0)
        return -EINVAL;
    return 0;
}

size_t tt_ws_base64(const uint8_t *in, size_t len, char *out)
{
    return b64_encode(b64_std, true, in, len, out);
}

size_t tt_ws_b64url(const uint8_t *in, size_t len, char *out)
{
    return b64_encode(b64_url, false, in, len, out);
}

int tt_ws_b64url_decode(const char *text, size_t len, uint8_t *out, size_t out_len)
{
    return b64_decode_exact(b64_url, false, text, len, out, out_len);
}

int tt_ws_accept(const char *key, size_t key_len, char out[TT_WS_ACCEPT_LEN + 1])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, key, key_len) == 1 &&
              EVP_DigestUpdate(ctx, ws_guid, sizeof ws_guid - 1) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    b64_encode(b64_std, true, md, 20, out);
    return 0;
}

size_t tt_ws_client_request(char *out, size_t cap, const char *host, const char *origin,
                            const char *path, const uint8_t key[TT_WS_KEY_LEN], const char *cookie)
{
    /* A space in the path would end the target early; in other values it
     * is harmless. */
    if (!tt_http_printable(host, 1024) || !tt_http_printable(origin, 1024) ||
        !tt_http_printable(path, 2048) || path[0] != '/' || strchr(path, ' ') != NULL ||
        (cookie && !tt_http_printable(cookie, 1024)))
        return 0;
    char k[TT_WS_KEY_TEXT_LEN + 1];
    b64_encode(b64_std, true, key, TT_WS_KEY_LEN, k);

    /* Chrome's headers, in Chrome's order. */
    size_t n = 0;
    bool ok = cap > 0;
    tt_http_put(out, cap, &n, &ok,
                "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nPragma: no-cache\r\n"
                "Cache-Control: no-cache\r\nUser-Agent: %s\r\nUpgrade: websocket\r\n"
                "Origin: %s\r\nSec-WebSocket-Version: 13\r\n"
                "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n",
                path, host, tt_ws_user_agent, origin);
    if (cookie)
        tt_http_put(out, cap, &n, &ok, "Cookie: %s\r\n", cookie);
    tt_http_put(out, cap, &n, &ok,
                "Sec-WebSocket-Key: %s\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
                k);
    return ok ? n : 0;
}

int tt_ws_client_check(const tt_http_head *resp, const uint8_t key[TT_WS_KEY_LEN], const char **why)
{
    if (resp->status != 101) {
        *why = "server refused the WebSocket upgrade";
        return -EPROTO;
    }
    if (resp->minor != 1) {
        *why = "WebSocket upgrade answered with HTTP/1.0";
        return -EPROTO;
    }
    if (!tt_http_header_has(resp, "Upgrade", "websocket")) {
        *why = "101 answer without Upgrade: websocket";
        return -EPROTO;
    }
    if (!tt_http_header_has(resp, "Connection", "upgrade")) {
        *why = "101 answer without Connection: upgrade";
        return -EPROTO;
    }
    tt_http_header acc;
    if (!tt_http_find(resp, "Sec-WebSocket-Accept", &acc) ||
        tt_http_count(resp, "Sec-WebSocket-Accept") != 1) {
        *why = "101 answer without exactly one Sec-WebSocket-Accept";
        return -EPROTO;
    }
    if (tt_http_find(resp, "Sec-WebSocket-Extensions", NULL) ||
        tt_http_find(resp, "Sec-WebSocket-Protocol", NULL)) {
        *why = "server chose a WebSocket extension or subprotocol that was not offered";
        return -EPROTO;
    }
    char k[TT_WS_KEY_TEXT_LEN + 1], want[TT_WS_ACCEPT_LEN + 1];
    b64_encode(b64_std, true, key, TT_WS_KEY_LEN, k);
    if (tt_ws_accept(k, TT_WS_KEY_TEXT_LEN, want) < 0) {
        *why = "SHA-1 unavailable";
        return -EPROTO;
    }
    tt_http_str got = acc.value;
    if (got.len != TT_WS_ACCEPT_LEN || memcmp(got.p, want, TT_WS_ACCEPT_LEN) != 0) {
        *why = "wrong Sec-WebSocket-Accept";
        return -EPROTO;
    }
    return 0;
}

/* The path part of a request target: up to the first '?'. */
static tt_http_str target_path(tt_http_str t)
{
    const char *q = memchr(t.p, '?', t.len);
    return (tt_http_str){t.p, q ? (size_t)(q - t.p) : t.len};
}

int tt_ws_server_check(const tt_http_head *req, const char *path, tt_ws_upgrade *up,
                       const char **why)
{
    memset(up, 0, sizeof *up);
    tt_http_str p = target_path(req->target);
    if (p.len != strlen(path) || memcmp(p.p, path, p.len) != 0) {
        *why = "not the WebSocket path";
        return -ENOENT;
    }
    if (req->method.len != 3 || memcmp(req->method.p, "GET", 3) != 0) {
        *why = "not a GET";
        return -ENOENT;
    }
    if (!tt_http_header_has(req, "Upgrade", "websocket")) {
        *why = "not a WebSocket upgrade";
        return -ENOENT;
    }
    if (req->minor != 1) {
        *why = "WebSocket upgrade over HTTP/1.0";
        return -EINVAL;
    }
    if (!tt_http_header_has(req, "Connection", "upgrade")) {
        *why = "upgrade without Connection: upgrade";
        return -EINVAL;
    }
    tt_http_header ver;
    if (!tt_http_find(req, "Sec-WebSocket-Version", &ver) ||
        tt_http_count(req, "Sec-WebSocket-Version") != 1 || !tt_http_str_ieq(ver.value, "13")) {
        *why = "not exactly one Sec-WebSocket-Version: 13";
        return -EINVAL;
    }
    tt_http_header kf;
    if (!tt_http_find(req, "Sec-WebSocket-Key", &kf) ||
        tt_http_count(req, "Sec-WebSocket-Key") != 1) {
        *why = "not exactly one Sec-WebSocket-Key";
        return -EINVAL;
    }
    tt_http_str key = kf.value;
    uint8_t raw[TT_WS_KEY_LEN];
    if (b64_decode_exact(b64_std, true, key.p, key.len, raw, sizeof raw) < 0) {
        *why = "Sec-WebSocket-Key is not base64 of 16 bytes";
        return -EINVAL;
    }
    up->ncookies = tt_http_cookies(req, up->cookies, TT_WS_COOKIES_MAX);
    up->key = key;
    return 0;
}

size_t tt_ws_server_response(char *out, size_t cap, tt_http_str key, const char *server,
                             int64_t now)
{
    char accept[TT_WS_ACCEPT_LEN + 1];
    if ((server && !tt_http_printable(server, 64)) || tt_ws_accept(key.p, key.len, accept) < 0)
        return 0;
    size_t n = 0;
    bool ok = cap > 0;
    tt_http_put(out, cap, &n, &ok, "HTTP/1.1 101 Switching Protocols\r\n");
    if (server) {
        char date[TT_HTTP_DATE_LEN + 1];
        tt_http_date(now, date);
        tt_http_put(out, cap, &n, &ok, "Server: %s\r\nDate: %s\r\n", server, date);
    }
    tt_http_put(out, cap, &n, &ok,
                "Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                accept);
    return ok ? n : 0;
}

/* The HMAC implementation, fetched once: OpenSSL 3 otherwise looks it up by
 * name on every use. It holds no key material. */
static EVP_MAC *hmac_impl(void)
{
    static EVP_MAC *mac;
    if (mac == NULL)
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    return mac;
}

/* HMAC-SHA256 under KEY of the N pieces P[i] (L[i] bytes) into OUT. */
int tt_ws_hmac_parts(const uint8_t key[TT_WS_AUTH_KEY_LEN], const void *const *p, const size_t *l,
                     size_t n, uint8_t out[32])
{
    static char digest[] = "SHA256";
    EVP_MAC *impl = hmac_impl();
    EVP_MAC_CTX *c = impl ? EVP_MAC_CTX_new(impl) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", digest, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t out_len = 0;
    bool ok = c != NULL && EVP_MAC_init(c, key, TT_WS_AUTH_KEY_LEN, params) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_MAC_update(c, p[i], l[i]) == 1;
    ok = ok && EVP_MAC_final(c, out, &out_len, 32) == 1 && out_len == 32;
    EVP_MAC_CTX_free(c);
    return ok ? 0 : -EIO;
}

/* MASK = HMAC-SHA256(KEY, "tt-ws2 time" || NONCE)[0..8) and, when TIME8 is
 * given, MAC = HMAC-SHA256(KEY, "tt-ws2" || NONCE || TIME8 || PAD_LEN (one
 * byte) || PAD || PATH)[0..16). */
static int token_macs(const uint8_t key[TT_WS_AUTH_KEY_LEN], const uint8_t nonce[TT_WS_NONCE_LEN],
                      const uint8_t time8[8], const uint8_t *pad, size_t pad_len, const char *path,
                      uint8_t mask[8], uint8_t mac[TT_WS_MAC_LEN])
{
    uint8_t full[32];
    const void *mp[] = {mask_label, nonce};
    const size_t ml[] = {sizeof mask_label - 1, TT_WS_NONCE_LEN};
    int rc = tt_ws_hmac_parts(key, mp, ml, 2, full);
    if (rc == 0)
        memcpy(mask, full, 8);
    if (rc == 0 && time8 != NULL) {
        uint8_t plen = (uint8_t)pad_len;
        const void *p[] = {token_label, nonce, time8, &plen, pad, path};
        const size_t l[] = {sizeof token_label - 1, TT_WS_NONCE_LEN, 8, 1, pad_len, strlen(path)};
        rc = tt_ws_hmac_parts(key, p, l, 6, full);
        if (rc == 0)
            memcpy(mac, full, TT_WS_MAC_LEN);
    }
    OPENSSL_cleanse(full, sizeof full);
    return rc;
}

const char *tt_ws_cookie_name(const uint8_t key[TT_WS_AUTH_KEY_LEN])
{
    uint8_t full[32];
    const void *p[] = {name_label};
    const size_t l[] = {sizeof name_label - 1};
    if (tt_ws_hmac_parts(key, p, l, 1, full) != 0)
        return cookie_names[0];
    return cookie_names[full[0] % (sizeof cookie_names / sizeof cookie_names[0])];
}

int tt_ws_token_make(const uint8_t key[TT_WS_AUTH_KEY_LEN], uint64_t now,
                     const uint8_t nonce[TT_WS_NONCE_LEN], const uint8_t *pad, size_t pad_len,
                     const char *path, char out[TT_WS_TOKEN_MAX + 1])
{
    if (pad_len > TT_WS_PAD_MAX)
        return -EINVAL;
    uint8_t raw[TT_WS_TOKEN_RAW_MAX], time8[8], mask[8];
    for (int i = 0; i < 8; i++)
        time8[i] = (uint8_t)(now >> (56 - 8 * i));
    memcpy(raw, nonce, TT_WS_NONCE_LEN);
    if (token_macs(key, nonce, time8, pad, pad_len, path, mask, raw + TT_WS_NONCE_LEN + 8) < 0)
        return -EIO;
    for (int i = 0; i < 8; i++)
        raw[TT_WS_NONCE_LEN + i] = time8[i] ^ mask[i];
    if (pad_len > 0)
        memcpy(raw + TT_WS_TOKEN_RAW_MIN, pad, pad_len);
    return (int)b64_encode(b64_url, false, raw, TT_WS_TOKEN_RAW_MIN + pad_len, out);
}

int tt_ws_token_check(const uint8_t key[TT_WS_AUTH_KEY_LEN], const char *text, size_t len,
                      const char *path, uint64_t now, uint64_t window_s,
                      uint8_t nonce[TT_WS_NONCE_LEN], uint64_t *made, const char **why)
{
    /* The raw length is what the text's length says (the unpadded base64url
     * of N bytes has N * 4 / 3 characters, rounded up); one length of text
     * matches no byte count and is refused by the decoder. */
    size_t raw_len = len * 3 / 4;
    uint8_t raw[TT_WS_TOKEN_RAW_MAX];
    if (len < TT_WS_TOKEN_MIN || len > TT_WS_TOKEN_MAX ||
        b64_decode_exact(b64_url, false, text, len, raw, raw_len) < 0) {
        *why = "malformed token";
        return -EINVAL;
    }
    uint8_t mask[8], time8[8], mac[TT_WS_MAC_LEN];
    if (token_macs(key, raw, NULL, NULL, 0, path, mask, NULL) < 0) {
        *why = "HMAC-SHA256 unavailable";
        return -EIO;
    }
    uint64_t t = 0;
    for (int i = 0; i < 8; i++) {
        time8[i] = raw[TT_WS_NONCE_LEN + i] ^ mask[i];
        t = t << 8 | time8[i];
    }
    /* The MAC first: with another key the time unmasks to noise, which
     * would otherwise be reported as a clock difference. */
    if (token_macs(key, raw, time8, raw + TT_WS_TOKEN_RAW_MIN, raw_len - TT_WS_TOKEN_RAW_MIN, path,
                   mask, mac) < 0) {
        *why = "HMAC-SHA256 unavailable";
        return -EIO;
    }
    if (CRYPTO_memcmp(mac, raw + TT_WS_NONCE_LEN + 8, TT_WS_MAC_LEN) != 0) {
        *why = "bad token";
        return -EACCES;
    }
    uint64_t diff = t > now ? t - now : now - t;
    if (diff > window_s) {
        *why = "token time outside the window";
        return -ETIMEDOUT;
    }
    memcpy(nonce, raw, TT_WS_NONCE_LEN);
    *made = t;
    return 0;
}
