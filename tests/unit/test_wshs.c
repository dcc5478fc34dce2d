/* Tests of the WebSocket opening handshake and the tt-ws1 token: the RFC
 * 6455 example, golden request and answer bytes, every way an upgrade can be
 * wrong on either side, and the token's round trip against a vector computed
 * independently (Python's hmac), with every kind of tampering refused. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/wshs.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The 16 bytes whose base64 is RFC 6455's example key. */
static const uint8_t sample_key[TT_WS_KEY_LEN] = "the sample nonce";

static tt_http_head parse_req(const char *in)
{
    tt_http_head h;
    const char *why = NULL;
    int rc = tt_http_parse_request((const uint8_t *)in, strlen(in), &h, &why);
    cr_assert_eq(rc, 1, "%s: %s", in, why ? why : "");
    return h;
}

static tt_http_head parse_resp(const char *in)
{
    tt_http_head h;
    const char *why = NULL;
    int rc = tt_http_parse_response((const uint8_t *)in, strlen(in), &h, &why);
    cr_assert_eq(rc, 1, "%s: %s", in, why ? why : "");
    return h;
}

Test(wshs, rfc6455_example)
{
    char b64[TT_WS_KEY_TEXT_LEN + 1];
    cr_assert_eq(tt_ws_base64(sample_key, sizeof sample_key, b64), TT_WS_KEY_TEXT_LEN);
    cr_assert_str_eq(b64, "dGhlIHNhbXBsZSBub25jZQ==");
    char accept[TT_WS_ACCEPT_LEN + 1];
    cr_assert_eq(tt_ws_accept(b64, strlen(b64), accept), 0);
    /* RFC 6455 section 1.3. */
    cr_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    /* Base64 padding forms (RFC 4648 section 10). */
    static const char *const vec[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < LEN(vec); i++) {
        char out[16];
        tt_ws_base64((const uint8_t *)"foobar", i, out);
        cr_assert_str_eq(out, vec[i]);
    }
}

static const char golden_request[] = "GET /ws?x=1 HTTP/1.1\r\n"
                                     "Host: example.com:8443\r\n"
                                     "User-Agent: Mozilla/5.0\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     "Sec-WebSocket-Version: 13\r\n"
                                     "Authorization: Bearer TOKEN-TEXT\r\n"
                                     "\r\n";

Test(wshs, client_request_golden_and_accepted_in_every_split)
{
    char out[1024];
    size_t n = tt_ws_client_request(out, sizeof out, "example.com:8443", "/ws?x=1", sample_key,
                                    "Mozilla/5.0", "TOKEN-TEXT");
    cr_assert_eq(n, strlen(golden_request));
    cr_assert_eq(memcmp(out, golden_request, n), 0, "%.*s", (int)n, out);

    /* Without the optional headers. */
    n = tt_ws_client_request(out, sizeof out, "h", "/", sample_key, NULL, NULL);
    out[n] = '\0';
    cr_assert_str_eq(out, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n");

    /* The server side takes it at every length, and only when whole. */
    size_t len = strlen(golden_request);
    for (size_t k = 0; k <= len; k++) {
        uint8_t *b = malloc(k ? k : 1);
        memcpy(b, golden_request, k);
        tt_http_head h;
        const char *why = NULL;
        int rc = tt_http_parse_request(b, k, &h, &why);
        cr_assert_eq(rc, k < len ? 0 : 1, "length %zu: %d", k, rc);
        if (rc == 1) {
            tt_ws_upgrade up;
            cr_assert_eq(tt_ws_server_check(&h, "/ws", &up, &why), 0, "%s", why);
            cr_assert_eq(up.key.len, TT_WS_KEY_TEXT_LEN);
            cr_assert_eq(memcmp(up.key.p, "dGhlIHNhbXBsZSBub25jZQ==", TT_WS_KEY_TEXT_LEN), 0);
            cr_assert_eq(up.token.len, 10);
            cr_assert_eq(memcmp(up.token.p, "TOKEN-TEXT", 10), 0);
            cr_assert(up.token.p >= (const char *)b && up.token.p < (const char *)b + k);
        }
        free(b);
    }

    /* Values that could inject a header line, or a target with a space. */
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h\r\nX: y", "/", sample_key, NULL, NULL),
                 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", "/a b", sample_key, NULL, NULL), 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", "ws", sample_key, NULL, NULL), 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", "/", sample_key, "a\nb", NULL), 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", "/", sample_key, NULL, "t\x01"), 0);
    cr_assert_eq(tt_ws_client_request(out, 100, "h", "/", sample_key, NULL, NULL), 0);
}

Test(wshs, server_response_and_client_check)
{
    char out[512];
    tt_http_str key = {"dGhlIHNhbXBsZSBub25jZQ==", 24};
    size_t n = tt_ws_server_response(out, sizeof out, key, NULL, 0);
    out[n] = '\0';
    cr_assert_str_eq(out, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                          "Upgrade: websocket\r\n"
                          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    tt_http_head h = parse_resp(out);
    const char *why = NULL;
    cr_assert_eq(tt_ws_client_check(&h, sample_key, &why), 0, "%s", why);

    /* As nginx passing an upgrade on: Server and Date first. */
    n = tt_ws_server_response(out, sizeof out, key, "nginx", 784111777);
    out[n] = '\0';
    cr_assert_str_eq(out, "HTTP/1.1 101 Switching Protocols\r\nServer: nginx\r\n"
                          "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: upgrade\r\n"
                          "Upgrade: websocket\r\n"
                          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    h = parse_resp(out);
    cr_assert_eq(tt_ws_client_check(&h, sample_key, &why), 0, "%s", why);
    cr_assert_eq(tt_ws_server_response(out, 60, key, NULL, 0), 0);
    cr_assert_eq(tt_ws_server_response(out, sizeof out, key, "a\nb", 0), 0);

    /* Another key's answer is refused. */
    uint8_t other[TT_WS_KEY_LEN];
    memcpy(other, sample_key, sizeof other);
    other[15] ^= 1;
    cr_assert_eq(tt_ws_client_check(&h, other, &why), -EPROTO);
}

Test(wshs, client_check_refusals)
{
    static const char *const bad[] = {
        /* not 101 */
        "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        /* HTTP/1.0 */
        "HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        /* no Upgrade */
        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        /* Upgrade to something else */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        /* no Connection: upgrade */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        /* no accept */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        /* two accepts */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        /* wrong accept: one character changed, and a prefix */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n",
        /* an extension or subprotocol nobody asked for */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Protocol: chat\r\n\r\n",
    };
    for (size_t i = 0; i < LEN(bad); i++) {
        tt_http_head h = parse_resp(bad[i]);
        const char *why = NULL;
        cr_assert_eq(tt_ws_client_check(&h, sample_key, &why), -EPROTO, "case %zu", i);
        cr_assert(why != NULL && why[0] != '\0');
    }
    /* Header names and tokens in any case are fine. */
    tt_http_head h = parse_resp("HTTP/1.1 101 Switching Protocols\r\nUPGRADE: WebSocket\r\n"
                                "connection: Keep-Alive, UPGRADE\r\n"
                                "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    const char *why = NULL;
    cr_assert_eq(tt_ws_client_check(&h, sample_key, &why), 0, "%s", why);
}

/* The golden request with line number LINE (counting from 0 for the
 * request line) replaced by REPL ("" drops it). */
static char *variant(int line, const char *repl)
{
    char *out = malloc(sizeof golden_request + 512);
    const char *p = golden_request;
    size_t o = 0;
    for (int i = 0; *p; i++) {
        const char *e = strstr(p, "\r\n") + 2;
        if (i == line) {
            o += (size_t)sprintf(out + o, "%s", repl);
        } else {
            memcpy(out + o, p, (size_t)(e - p));
            o += (size_t)(e - p);
        }
        p = e;
    }
    out[o] = '\0';
    return out;
}

Test(wshs, server_check_outcomes)
{
    static const struct {
        int line;
        const char *repl;
        int rc;
    } cases[] = {
        {0, "GET /ws HTTP/1.1\r\n", 0},
        {0, "GET /ws? HTTP/1.1\r\n", 0},
        {0, "GET /wss HTTP/1.1\r\n", -ENOENT},
        {0, "GET /w HTTP/1.1\r\n", -ENOENT},
        {0, "GET /ws/ HTTP/1.1\r\n", -ENOENT},
        {0, "GET /WS HTTP/1.1\r\n", -ENOENT},
        {0, "GET http://example.com/ws HTTP/1.1\r\n", -ENOENT},
        {0, "POST /ws HTTP/1.1\r\n", -ENOENT},
        {0, "get /ws HTTP/1.1\r\n", -ENOENT},
        {0, "HEAD /ws HTTP/1.1\r\n", -ENOENT},
        {0, "GET /ws HTTP/1.0\r\n", -EINVAL},
        {3, "", -ENOENT},
        {3, "Upgrade: h2c\r\n", -ENOENT},
        {3, "Upgrade: WebSocket\r\n", 0},
        {3, "Upgrade: foo, websocket\r\n", 0},
        {4, "", -EINVAL},
        {4, "Connection: keep-alive\r\n", -EINVAL},
        {4, "Connection: keep-alive, upgrade\r\n", 0},
        {4, "Connection: keep-alive\r\nConnection: Upgrade\r\n", 0},
        {5, "", -EINVAL},
        {5, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n", -EINVAL},
        {5, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n", -EINVAL},
        {5, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n", -EINVAL},
        {5, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==AAAA\r\n", -EINVAL},
        {5, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ$==\r\n", -EINVAL},
        {5,
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: "
         "dGhlIHNhbXBsZSBub25jZQ==\r\n",
         -EINVAL},
        {5, "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n", 0},
        {6, "", -EINVAL},
        {6, "Sec-WebSocket-Version: 8\r\n", -EINVAL},
        {6, "Sec-WebSocket-Version: 13, 8\r\n", -EINVAL},
        {6, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n", -EINVAL},
        {7, "", 0},
        {7, "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", -EINVAL},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        char *req = variant(cases[i].line, cases[i].repl);
        tt_http_head h = parse_req(req);
        tt_ws_upgrade up;
        const char *why = NULL;
        int rc = tt_ws_server_check(&h, "/ws", &up, &why);
        cr_assert_eq(rc, cases[i].rc, "case %zu: %d (%s)\n%s", i, rc, why ? why : "", req);
        if (rc != 0)
            cr_assert(why != NULL && why[0] != '\0');
        free(req);
    }
}

Test(wshs, bearer_token_extraction)
{
    static const struct {
        const char *line;
        const char *token;
    } cases[] = {
        {"Authorization: Bearer abc\r\n", "abc"},
        {"Authorization: bearer   abc\r\n", "abc"},
        {"Authorization: BEARER abc def\r\n", "abc def"},
        {"Authorization: Basic dXNlcjpwdw==\r\n", ""},
        {"Authorization: Bearer\r\n", ""},
        {"Authorization: Bearer \r\n", ""},
        {"Authorization: Bearerabc\r\n", ""},
        {"", ""},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        char *req = variant(7, cases[i].line);
        tt_http_head h = parse_req(req);
        tt_ws_upgrade up;
        const char *why = NULL;
        cr_assert_eq(tt_ws_server_check(&h, "/ws", &up, &why), 0, "%s", why);
        cr_assert_eq(up.token.len, strlen(cases[i].token), "case %zu", i);
        cr_assert_eq(memcmp(up.token.p, cases[i].token, up.token.len), 0, "case %zu", i);
        free(req);
    }
}

static uint8_t test_key[TT_WS_AUTH_KEY_LEN];
static uint8_t test_nonce[TT_WS_NONCE_LEN];

static void token_setup(void)
{
    for (int i = 0; i < TT_WS_AUTH_KEY_LEN; i++)
        test_key[i] = (uint8_t)i;
    for (int i = 0; i < TT_WS_NONCE_LEN; i++)
        test_nonce[i] = (uint8_t)(0xa0 + i);
}

/* Computed with Python: base64url(t || nonce || HMAC-SHA256(key, b"tt-ws1"
 * || t || nonce || b"/ws")[:16]) without padding, t = 1700000000 as 8 bytes
 * big-endian, key = bytes(range(32)), nonce = bytes(range(0xa0, 0xb0)). */
static const char golden_token[] = "AAAAAGVT8QCgoaKjpKWmp6ipqqusra6vwOO0_XQDIjhylJtK8rM_Ig";

Test(wshs, token_golden_and_round_trip, .init = token_setup)
{
    char tok[TT_WS_TOKEN_LEN + 1];
    cr_assert_eq(tt_ws_token_make(test_key, 1700000000, test_nonce, "/ws", tok), 0);
    cr_assert_eq(strlen(tok), TT_WS_TOKEN_LEN);
    cr_assert_str_eq(tok, golden_token);

    uint8_t nonce[TT_WS_NONCE_LEN] = {0};
    const char *why = NULL;
    cr_assert_eq(tt_ws_token_check(test_key, tok, strlen(tok), "/ws", 1700000000, 60, nonce, &why),
                 0, "%s", why);
    cr_assert_arr_eq(nonce, test_nonce, sizeof nonce);

    /* The window holds both ways, inclusive. */
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/ws", 1700000060, 60, nonce, &why), 0);
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/ws", 1699999940, 60, nonce, &why), 0);
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/ws", 1700000061, 60, nonce, &why),
        -ETIMEDOUT);
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/ws", 1699999939, 60, nonce, &why),
        -ETIMEDOUT);
    cr_assert_eq(tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/ws", 0, 60, nonce, &why),
                 -ETIMEDOUT);
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/ws", UINT64_MAX, 60, nonce, &why),
        -ETIMEDOUT);

    /* Extreme times encode and check. */
    cr_assert_eq(tt_ws_token_make(test_key, UINT64_MAX, test_nonce, "/", tok), 0);
    cr_assert_eq(tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/", UINT64_MAX, 0, nonce, &why),
                 0);
    cr_assert_eq(tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/", 0, UINT64_MAX, nonce, &why),
                 0);
}

Test(wshs, token_refusals, .init = token_setup)
{
    char tok[TT_WS_TOKEN_LEN + 1];
    cr_assert_eq(tt_ws_token_make(test_key, 1700000000, test_nonce, "/ws", tok), 0);
    uint8_t nonce[TT_WS_NONCE_LEN];
    const char *why = NULL;

    uint8_t wrong[TT_WS_AUTH_KEY_LEN];
    memcpy(wrong, test_key, sizeof wrong);
    wrong[31] ^= 0x80;
    cr_assert_eq(tt_ws_token_check(wrong, tok, TT_WS_TOKEN_LEN, "/ws", 1700000000, 60, nonce, &why),
                 -EACCES);
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/ws2", 1700000000, 60, nonce, &why),
        -EACCES);
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN, "/w", 1700000000, 60, nonce, &why),
        -EACCES);

    /* Any character changed to any other character of the alphabet (or out
     * of it) is refused: never accepted. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. ";
    for (size_t i = 0; i < TT_WS_TOKEN_LEN; i++) {
        for (size_t a = 0; a < sizeof alphabet - 1; a++) {
            if (alphabet[a] == tok[i])
                continue;
            char t[TT_WS_TOKEN_LEN + 1];
            memcpy(t, tok, sizeof t);
            t[i] = alphabet[a];
            int rc =
                tt_ws_token_check(test_key, t, TT_WS_TOKEN_LEN, "/ws", 1700000000, 60, nonce, &why);
            cr_assert_neq(rc, 0, "position %zu changed to '%c' was accepted", i, alphabet[a]);
        }
    }

    /* Wrong lengths, padding, the standard alphabet's characters. */
    char longer[TT_WS_TOKEN_LEN + 2];
    memcpy(longer, tok, TT_WS_TOKEN_LEN);
    longer[TT_WS_TOKEN_LEN] = 'A';
    longer[TT_WS_TOKEN_LEN + 1] = '\0';
    cr_assert_eq(tt_ws_token_check(test_key, longer, TT_WS_TOKEN_LEN + 1, "/ws", 1700000000, 60,
                                   nonce, &why),
                 -EINVAL);
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, TT_WS_TOKEN_LEN - 1, "/ws", 1700000000, 60, nonce, &why),
        -EINVAL);
    cr_assert_eq(tt_ws_token_check(test_key, "", 0, "/ws", 1700000000, 60, nonce, &why), -EINVAL);
    char padded[TT_WS_TOKEN_LEN + 3];
    snprintf(padded, sizeof padded, "%s==", tok);
    cr_assert_eq(
        tt_ws_token_check(test_key, padded, strlen(padded), "/ws", 1700000000, 60, nonce, &why),
        -EINVAL);

    /* The last character carries 4 unused bits: a non-zero one is another
     * spelling of the same bytes, refused. */
    char t[TT_WS_TOKEN_LEN + 1];
    memcpy(t, tok, sizeof t);
    t[TT_WS_TOKEN_LEN - 1] = (char)(t[TT_WS_TOKEN_LEN - 1] + 1);
    cr_assert_eq(
        tt_ws_token_check(test_key, t, TT_WS_TOKEN_LEN, "/ws", 1700000000, 60, nonce, &why),
        -EINVAL);
}

Test(wshs, token_time_is_the_time_it_was_made)
{
    char tok[TT_WS_TOKEN_LEN + 1];
    cr_assert_eq(tt_ws_token_make(test_key, 1700000123, test_nonce, "/ws", tok), 0);
    uint64_t t = 0;
    cr_assert_eq(tt_ws_token_time(tok, TT_WS_TOKEN_LEN, &t), 0);
    cr_assert_eq(t, 1700000123);
    cr_assert_eq(tt_ws_token_time(golden_token, strlen(golden_token), &t), 0);
    cr_assert_eq(t, 1700000000);
    cr_assert_eq(tt_ws_token_time(tok, TT_WS_TOKEN_LEN - 1, &t), -EINVAL);
    cr_assert_eq(tt_ws_token_time("", 0, &t), -EINVAL);
}
