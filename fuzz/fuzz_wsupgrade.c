/* Fuzz harness for the WebSocket upgrade exchange and the tt-ws2 token.
 *
 * Input layout: byte 0 picks what the rest is:
 *   0  a request head for the server's check (path "/ws");
 *   1  a response head for the client's check (fixed key);
 *   2  token text for the token check (fixed key, path, time);
 *   3  fields for a token made and checked here: 8 bytes of time, 8 bytes
 *      of clock offset, 16 bytes of nonce, 1 byte of window, 1 byte of
 *      padding length (modulo TT_WS_PAD_MAX + 1; the padding repeats the
 *      nonce), 2 bytes naming a character to change (0xffff: none), then
 *      the path.
 * Invariants: an accepted upgrade has a 24-character key and cookie values
 * inside the input, and the server's own answer to it passes the client's
 * check;
 * an accepted response carries exactly the accept value of the key; token
 * text from outside is never accepted (the harness's key is not in any
 * input), and a token made with the key is accepted exactly when its time
 * is inside the window and nothing was changed. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/wshs.h"

#include "fuzz_check.h"

static const uint8_t client_key[TT_WS_KEY_LEN] = "the sample nonce";
/* Known only to this harness: seeds cannot hold tokens made with it. */
static const uint8_t auth_key[TT_WS_AUTH_KEY_LEN] = {
    0x5e, 0x0c, 0x91, 0x2f, 0x77, 0x3a, 0xd4, 0x18, 0x6b, 0xe2, 0x40, 0x9d, 0x13, 0xc8, 0x55, 0xa1,
    0x0f, 0xb6, 0x2c, 0x89, 0x64, 0xfe, 0x37, 0x02, 0xdb, 0x4e, 0x90, 0x71, 0xaa, 0x1d, 0xc3, 0x68,
};

static int b64val(char c)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(a, c) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Decodes a 24-character key text the server accepted into its 16 bytes. */
static void decode_key(tt_http_str key, uint8_t out[TT_WS_KEY_LEN])
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < 22; i++) {
        int v = b64val(key.p[i]);
        CHECK(v >= 0);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    CHECK(o == TT_WS_KEY_LEN);
    CHECK(key.p[22] == '=' && key.p[23] == '=');
}

/* The checks on a request head parsed from IN (LEN bytes); H is a copy
 * that shares its fields. */
static void server_checks(tt_http_head h, const uint8_t *in, size_t len)
{
    const char *why = NULL;
    tt_ws_upgrade up;
    int rc = tt_ws_server_check(&h, "/ws", &up, &why);
    CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
    if (rc != 0) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(h.method.len == 3 && memcmp(h.method.p, "GET", 3) == 0 && h.minor == 1);
    CHECK(up.key.len == TT_WS_KEY_TEXT_LEN);
    CHECK(up.key.p >= (const char *)in && up.key.p + up.key.len <= (const char *)in + len);
    CHECK(up.ncookies <= TT_WS_COOKIES_MAX);
    for (size_t i = 0; i < up.ncookies; i++)
        CHECK(up.cookies[i].p >= (const char *)in &&
              up.cookies[i].p + up.cookies[i].len <= (const char *)in + len);

    /* The server's answer passes the client's check for that key. */
    char resp[512];
    size_t n = tt_ws_server_response(resp, sizeof resp, up.key, "nginx", 1700000000);
    CHECK(n > 0);
    tt_http_head r;
    CHECK(tt_http_parse_response((const uint8_t *)resp, n, &r, &why) == 1);
    uint8_t raw[TT_WS_KEY_LEN];
    decode_key(up.key, raw);
    CHECK(tt_ws_client_check(&r, raw, &why) == 0);

    /* A cookie is just text to the token check: never accepted. */
    uint8_t nonce[TT_WS_NONCE_LEN];
    uint64_t made;
    for (size_t i = 0; i < up.ncookies; i++)
        CHECK(tt_ws_token_check(auth_key, up.cookies[i].p, up.cookies[i].len, "/ws", 1700000000,
                                1u << 30, nonce, &made, &why) != 0);
}

static void server_side(const uint8_t *in, size_t len)
{
    tt_http_head h;
    const char *why = NULL;
    if (tt_http_parse_request(in, len, &h, &why) == 1)
        server_checks(h, in, len);
    tt_http_head_free(&h);
}

/* The checks on a parsed response head (a copy that shares its fields). */
static void client_checks(tt_http_head h)
{
    const char *why = NULL;
    int rc = tt_ws_client_check(&h, client_key, &why);
    CHECK(rc == 0 || rc == -EPROTO);
    if (rc != 0) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(h.status == 101 && h.minor == 1);
    tt_http_header a;
    CHECK(tt_http_find(&h, "Sec-WebSocket-Accept", &a) &&
          tt_http_count(&h, "Sec-WebSocket-Accept") == 1);
    CHECK(a.value.len == TT_WS_ACCEPT_LEN &&
          memcmp(a.value.p, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", TT_WS_ACCEPT_LEN) == 0);
}

static void client_side(const uint8_t *in, size_t len)
{
    tt_http_head h;
    const char *why = NULL;
    if (tt_http_parse_response(in, len, &h, &why) == 1)
        client_checks(h);
    tt_http_head_free(&h);
}

static void token_text(const uint8_t *in, size_t len)
{
    uint8_t nonce[TT_WS_NONCE_LEN];
    uint64_t made;
    const char *why = NULL;
    /* The widest window: only the MAC can refuse. */
    int rc = tt_ws_token_check(auth_key, (const char *)in, len, "/ws", 1700000000, UINT64_MAX,
                               nonce, &made, &why);
    CHECK(rc == -EINVAL || rc == -EACCES);
    CHECK(why != NULL && why[0] != '\0');
    if (len < TT_WS_TOKEN_MIN || len > TT_WS_TOKEN_MAX)
        CHECK(rc == -EINVAL);
}

static void token_made(const uint8_t *in, size_t len)
{
    cursor c = {in, len, 0};
    uint64_t t = u64(&c);
    uint64_t offset = u64(&c);
    uint8_t nonce[TT_WS_NONCE_LEN];
    for (size_t i = 0; i < sizeof nonce; i++)
        nonce[i] = u8(&c);
    uint64_t window = u8(&c);
    size_t pad_len = u8(&c) % (TT_WS_PAD_MAX + 1);
    size_t change = u16(&c);
    char path[256];
    size_t plen = c.off < len ? len - c.off : 0;
    if (plen > sizeof path - 1)
        plen = sizeof path - 1;
    memcpy(path, in + (c.off < len ? c.off : len), plen);
    path[plen] = '\0';
    /* A NUL ends the path early, as it would for the C string callers pass. */
    uint8_t pad[TT_WS_PAD_MAX];
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = nonce[i % TT_WS_NONCE_LEN];

    char tok[TT_WS_TOKEN_MAX + 1];
    int n = tt_ws_token_make(auth_key, t, nonce, pad, pad_len, path, tok);
    CHECK(n >= TT_WS_TOKEN_MIN && n <= TT_WS_TOKEN_MAX && (size_t)n == strlen(tok));
    size_t tlen = (size_t)n;

    uint64_t now = t + offset;
    uint64_t diff = now >= t ? now - t : t - now;
    bool changed = change != 0xffff;
    if (changed) {
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t pos = change % tlen;
        char orig = tok[pos];
        tok[pos] = alphabet[(change >> 6) % 64];
        changed = tok[pos] != orig;
    }
    uint8_t got[TT_WS_NONCE_LEN];
    uint64_t made = 0;
    const char *why = NULL;
    int rc = tt_ws_token_check(auth_key, tok, tlen, path, now, window, got, &made, &why);
    if (rc == 0) {
        CHECK(!changed);
        CHECK(diff <= window);
        CHECK(memcmp(got, nonce, sizeof got) == 0);
        /* An accepted token tells the time it was made. */
        CHECK(made == t);
    } else {
        CHECK(changed || diff > window);
        if (!changed)
            CHECK(rc == -ETIMEDOUT);
    }
    /* Another path never passes. */
    char other[sizeof path + 1];
    snprintf(other, sizeof other, "%sx", path);
    if (!changed && diff <= window)
        CHECK(tt_ws_token_check(auth_key, tok, tlen, other, now, window, got, &made, &why) ==
              -EACCES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    switch (data[0] & 3) {
    case 0:
        server_side(in, len);
        break;
    case 1:
        client_side(in, len);
        break;
    case 2:
        token_text(in, len);
        break;
    default:
        token_made(in, len);
        break;
    }
    return 0;
}
