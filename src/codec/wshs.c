/* WebSocket opening handshake and the tt-ws1 token.
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
static const char token_label[] = "tt-ws1";

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

size_t tt_ws_client_request(char *out, size_t cap, const char *host, const char *path,
                            const uint8_t key[TT_WS_KEY_LEN], const char *user_agent,
                            const char *token)
{
    /* A space in the path would end the target early; in other values it
     * is harmless. */
    if (!tt_http_printable(host, 1024) || !tt_http_printable(path, 2048) || path[0] != '/' ||
        strchr(path, ' ') != NULL || (user_agent && !tt_http_printable(user_agent, 1024)) ||
        (token && !tt_http_printable(token, 1024)))
        return 0;
    char k[TT_WS_KEY_TEXT_LEN + 1];
    b64_encode(b64_std, true, key, TT_WS_KEY_LEN, k);

    size_t n = 0;
    bool ok = cap > 0;
    tt_http_put(out, cap, &n, &ok, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host);
    if (user_agent)
        tt_http_put(out, cap, &n, &ok, "User-Agent: %s\r\n", user_agent);
    tt_http_put(out, cap, &n, &ok,
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                "Sec-WebSocket-Version: 13\r\n",
                k);
    if (token)
        tt_http_put(out, cap, &n, &ok, "Authorization: Bearer %s\r\n", token);
    tt_http_put(out, cap, &n, &ok, "\r\n");
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
    const tt_http_header *acc = tt_http_find(resp, "Sec-WebSocket-Accept");
    if (acc == NULL || tt_http_count(resp, "Sec-WebSocket-Accept") != 1) {
        *why = "101 answer without exactly one Sec-WebSocket-Accept";
        return -EPROTO;
    }
    if (tt_http_find(resp, "Sec-WebSocket-Extensions") != NULL ||
        tt_http_find(resp, "Sec-WebSocket-Protocol") != NULL) {
        *why = "server chose a WebSocket extension or subprotocol that was not offered";
        return -EPROTO;
    }
    char k[TT_WS_KEY_TEXT_LEN + 1], want[TT_WS_ACCEPT_LEN + 1];
    b64_encode(b64_std, true, key, TT_WS_KEY_LEN, k);
    if (tt_ws_accept(k, TT_WS_KEY_TEXT_LEN, want) < 0) {
        *why = "SHA-1 unavailable";
        return -EPROTO;
    }
    tt_http_str got = acc->value;
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

/* Extracts the token of an Authorization value "Bearer TOKEN" (scheme in any
 * case, one or more spaces). Returns false for another scheme or no token. */
static bool bearer(tt_http_str v, tt_http_str *token)
{
    static const char scheme[] = "Bearer";
    size_t n = sizeof scheme - 1;
    if (v.len <= n || !tt_http_str_ieq((tt_http_str){v.p, n}, scheme) || v.p[n] != ' ')
        return false;
    size_t i = n;
    while (i < v.len && v.p[i] == ' ')
        i++;
    if (i == v.len)
        return false;
    *token = (tt_http_str){v.p + i, v.len - i};
    return true;
}

int tt_ws_server_check(const tt_http_head *req, const char *path, tt_ws_upgrade *up,
                       const char **why)
{
    memset(up, 0, sizeof *up);
    up->token.p = "";
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
    const tt_http_header *ver = tt_http_find(req, "Sec-WebSocket-Version");
    if (ver == NULL || tt_http_count(req, "Sec-WebSocket-Version") != 1 ||
        !tt_http_str_ieq(ver->value, "13")) {
        *why = "not exactly one Sec-WebSocket-Version: 13";
        return -EINVAL;
    }
    const tt_http_header *kf = tt_http_find(req, "Sec-WebSocket-Key");
    if (kf == NULL || tt_http_count(req, "Sec-WebSocket-Key") != 1) {
        *why = "not exactly one Sec-WebSocket-Key";
        return -EINVAL;
    }
    tt_http_str key = kf->value;
    uint8_t raw[TT_WS_KEY_LEN];
    if (b64_decode_exact(b64_std, true, key.p, key.len, raw, sizeof raw) < 0) {
        *why = "Sec-WebSocket-Key is not base64 of 16 bytes";
        return -EINVAL;
    }
    const tt_http_header *auth = tt_http_find(req, "Authorization");
    if (auth != NULL && tt_http_count(req, "Authorization") > 1) {
        *why = "more than one Authorization";
        return -EINVAL;
    }
    if (auth != NULL && !bearer(auth->value, &up->token))
        up->token = (tt_http_str){"", 0};
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

/* MAC = HMAC-SHA256(KEY, "tt-ws1" || TIME8 || NONCE || PATH)[0..16). */
static int token_mac(const uint8_t key[TT_WS_AUTH_KEY_LEN], const uint8_t time8[8],
                     const uint8_t nonce[TT_WS_NONCE_LEN], const char *path,
                     uint8_t mac[TT_WS_MAC_LEN])
{
    static char digest[] = "SHA256";
    EVP_MAC *impl = hmac_impl();
    EVP_MAC_CTX *c = impl ? EVP_MAC_CTX_new(impl) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", digest, 0),
        OSSL_PARAM_construct_end(),
    };
    uint8_t full[32];
    size_t out_len = 0;
    bool ok = c != NULL && EVP_MAC_init(c, key, TT_WS_AUTH_KEY_LEN, params) == 1 &&
              EVP_MAC_update(c, (const uint8_t *)token_label, sizeof token_label - 1) == 1 &&
              EVP_MAC_update(c, time8, 8) == 1 && EVP_MAC_update(c, nonce, TT_WS_NONCE_LEN) == 1 &&
              EVP_MAC_update(c, (const uint8_t *)path, strlen(path)) == 1 &&
              EVP_MAC_final(c, full, &out_len, sizeof full) == 1 && out_len == sizeof full;
    EVP_MAC_CTX_free(c);
    if (!ok)
        return -EIO;
    memcpy(mac, full, TT_WS_MAC_LEN);
    OPENSSL_cleanse(full, sizeof full);
    return 0;
}

int tt_ws_token_make(const uint8_t key[TT_WS_AUTH_KEY_LEN], uint64_t now,
                     const uint8_t nonce[TT_WS_NONCE_LEN], const char *path,
                     char out[TT_WS_TOKEN_LEN + 1])
{
    uint8_t raw[TT_WS_TOKEN_RAW_LEN];
    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)(now >> (56 - 8 * i));
    memcpy(raw + 8, nonce, TT_WS_NONCE_LEN);
    if (token_mac(key, raw, nonce, path, raw + 8 + TT_WS_NONCE_LEN) < 0)
        return -EIO;
    b64_encode(b64_url, false, raw, sizeof raw, out);
    return 0;
}

/* Decodes the token TEXT into RAW; *T is its time. */
static int token_decode(const char *text, size_t len, uint8_t raw[TT_WS_TOKEN_RAW_LEN], uint64_t *t)
{
    if (b64_decode_exact(b64_url, false, text, len, raw, TT_WS_TOKEN_RAW_LEN) < 0)
        return -EINVAL;
    *t = 0;
    for (int i = 0; i < 8; i++)
        *t = *t << 8 | raw[i];
    return 0;
}

int tt_ws_token_time(const char *text, size_t len, uint64_t *t)
{
    uint8_t raw[TT_WS_TOKEN_RAW_LEN];
    return token_decode(text, len, raw, t);
}

int tt_ws_token_check(const uint8_t key[TT_WS_AUTH_KEY_LEN], const char *text, size_t len,
                      const char *path, uint64_t now, uint64_t window_s,
                      uint8_t nonce[TT_WS_NONCE_LEN], const char **why)
{
    uint8_t raw[TT_WS_TOKEN_RAW_LEN];
    uint64_t t;
    if (token_decode(text, len, raw, &t) < 0) {
        *why = "malformed token";
        return -EINVAL;
    }
    uint64_t diff = t > now ? t - now : now - t;
    if (diff > window_s) {
        *why = "token time outside the window";
        return -ETIMEDOUT;
    }
    uint8_t mac[TT_WS_MAC_LEN];
    if (token_mac(key, raw, raw + 8, path, mac) < 0) {
        *why = "HMAC-SHA256 unavailable";
        return -EIO;
    }
    if (CRYPTO_memcmp(mac, raw + 8 + TT_WS_NONCE_LEN, TT_WS_MAC_LEN) != 0) {
        *why = "bad token";
        return -EACCES;
    }
    memcpy(nonce, raw + 8, TT_WS_NONCE_LEN);
    return 0;
}
