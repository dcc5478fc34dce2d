/* Tests of the WebSocket opening handshake and the tt-ws2 token: the RFC
 * 6455 example, golden request (a browser's) and answer bytes, every way an
 * upgrade can be wrong on either side, the cookies the server reads, and
 * the token's round trip against vectors computed independently (Python's
 * hmac), with every kind of tampering refused. */
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

static const char golden_request[] =
    "GET /ws?x=1 HTTP/1.1\r\n"
    "Host: example.com:8443\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://example.com:8443\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: sid=TOKEN-TEXT\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

/* Line numbers in it, for variant(). */
enum { L_CONNECTION = 2, L_UPGRADE = 6, L_VERSION = 8, L_COOKIE = 11, L_KEY = 12 };

Test(wshs, client_request_golden_and_accepted_in_every_split)
{
    char out[2048];
    size_t n = tt_ws_client_request(out, sizeof out, "example.com:8443", "https://example.com:8443",
                                    "/ws?x=1", sample_key, "sid=TOKEN-TEXT");
    cr_assert_eq(n, strlen(golden_request));
    cr_assert_eq(memcmp(out, golden_request, n), 0, "%.*s", (int)n, out);

    /* Without a cookie. */
    n = tt_ws_client_request(out, sizeof out, "h", "http://h", "/", sample_key, NULL);
    out[n] = '\0';
    cr_assert_null(strstr(out, "Cookie"));
    cr_assert_not_null(strstr(out, "\r\nOrigin: http://h\r\n"));

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
            cr_assert_eq(up.ncookies, 1);
            cr_assert_eq(up.cookies[0].len, 10);
            cr_assert_eq(memcmp(up.cookies[0].p, "TOKEN-TEXT", 10), 0);
            cr_assert(up.cookies[0].p >= (const char *)b && up.cookies[0].p < (const char *)b + k);
        }
        free(b);
    }

    /* Values that could inject a header line, or a target with a space. */
    const char *o = "http://h";
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h\r\nX: y", o, "/", sample_key, NULL), 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", "a\nb", "/", sample_key, NULL), 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", o, "/a b", sample_key, NULL), 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", o, "ws", sample_key, NULL), 0);
    cr_assert_eq(tt_ws_client_request(out, sizeof out, "h", o, "/", sample_key, "t\x01"), 0);
    cr_assert_eq(tt_ws_client_request(out, 100, "h", o, "/", sample_key, NULL), 0);
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
        {0, "HEAD /ws HTTP/1.1\r\n", -ENOENT},
        {0, "GET /ws HTTP/1.0\r\n", -EINVAL},
        {L_UPGRADE, "", -ENOENT},
        {L_UPGRADE, "Upgrade: h2c\r\n", -ENOENT},
        {L_UPGRADE, "Upgrade: WebSocket\r\n", 0},
        {L_UPGRADE, "Upgrade: foo, websocket\r\n", 0},
        {L_CONNECTION, "", -EINVAL},
        {L_CONNECTION, "Connection: keep-alive\r\n", -EINVAL},
        {L_CONNECTION, "Connection: keep-alive, upgrade\r\n", 0},
        {L_CONNECTION, "Connection: keep-alive\r\nConnection: Upgrade\r\n", 0},
        {L_KEY, "", -EINVAL},
        {L_KEY, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n", -EINVAL},
        {L_KEY, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n", -EINVAL},
        {L_KEY, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n", -EINVAL},
        {L_KEY, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==AAAA\r\n", -EINVAL},
        {L_KEY, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ$==\r\n", -EINVAL},
        {L_KEY,
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: "
         "dGhlIHNhbXBsZSBub25jZQ==\r\n",
         -EINVAL},
        {L_KEY, "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n", 0},
        {L_VERSION, "", -EINVAL},
        {L_VERSION, "Sec-WebSocket-Version: 8\r\n", -EINVAL},
        {L_VERSION, "Sec-WebSocket-Version: 13, 8\r\n", -EINVAL},
        {L_VERSION, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n", -EINVAL},
        {L_COOKIE, "", 0},
        {L_COOKIE, "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", 0},
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

Test(wshs, cookie_values)
{
    static const struct {
        const char *lines;
        const char *values; /* joined with '|' */
    } cases[] = {
        {"Cookie: sid=abc\r\n", "abc"},
        {"Cookie: theme=dark; sid=abc; lang=en\r\n", "dark|abc|en"},
        {"Cookie: a=1;b=2\r\n", "1|2"},
        {"Cookie: a=1 ; b=x=y\r\n", "1|x=y"},
        {"Cookie: flag; sid=abc\r\n", "abc"},
        {"Cookie: a=\r\n", ""},
        {"Cookie: a=1\r\ncookie: b=2\r\n", "1|2"},
        {"Cookie: \r\n", NULL},
        {"", NULL},
        {"Cookie: 1=1;2=2;3=3;4=4;5=5;6=6;7=7;8=8;9=9;10=a;11=b;12=c;13=d;14=e;15=f;16=g;17=h\r\n",
         "1|2|3|4|5|6|7|8|9|a|b|c|d|e|f|g"},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        char *req = variant(L_COOKIE, cases[i].lines);
        tt_http_head h = parse_req(req);
        tt_ws_upgrade up;
        const char *why = NULL;
        cr_assert_eq(tt_ws_server_check(&h, "/ws", &up, &why), 0, "%s", why);
        char joined[256] = "";
        for (size_t c = 0; c < up.ncookies; c++) {
            size_t o = strlen(joined);
            snprintf(joined + o, sizeof joined - o, "%s%.*s", c ? "|" : "", (int)up.cookies[c].len,
                     up.cookies[c].p);
        }
        if (cases[i].values == NULL)
            cr_assert_eq(up.ncookies, 0, "case %zu", i);
        else
            cr_assert_str_eq(joined, cases[i].values, "case %zu", i);
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

/* Computed with Python from src/codec/wshs.h's definition: key =
 * bytes(range(32)), nonce = bytes(range(0xa0, 0xb0)), t = 1700000000, path
 * "/ws", no padding and the padding bytes(range(5)). */
static const char golden_token[] = "oKGio6SlpqeoqaqrrK2ur-nEN5P9dA_6HXoQ66QAqzxPOBA-31r7GQ";
static const char golden_padded[] = "oKGio6SlpqeoqaqrrK2ur-nEN5P9dA_6NGQxCKXkWvF-RGvWwtAU9gABAgME";
static const uint8_t five[5] = {0, 1, 2, 3, 4};

/* Checks TEXT (NUL-terminated) for the test key at NOW within WINDOW. */
static int check(const char *text, const char *path, uint64_t now, uint64_t window)
{
    uint8_t nonce[TT_WS_NONCE_LEN];
    uint64_t made = 0;
    const char *why = NULL;
    return tt_ws_token_check(test_key, text, strlen(text), path, now, window, nonce, &made, &why);
}

Test(wshs, token_golden_and_round_trip, .init = token_setup)
{
    char tok[TT_WS_TOKEN_MAX + 1];
    cr_assert_eq(tt_ws_token_make(test_key, 1700000000, test_nonce, NULL, 0, "/ws", tok),
                 TT_WS_TOKEN_MIN);
    cr_assert_str_eq(tok, golden_token);
    cr_assert_eq(tt_ws_token_make(test_key, 1700000000, test_nonce, five, 5, "/ws", tok), 60);
    cr_assert_str_eq(tok, golden_padded);

    uint8_t nonce[TT_WS_NONCE_LEN] = {0};
    uint64_t made = 0;
    const char *why = NULL;
    cr_assert_eq(
        tt_ws_token_check(test_key, tok, strlen(tok), "/ws", 1700000000, 60, nonce, &made, &why), 0,
        "%s", why);
    cr_assert_arr_eq(nonce, test_nonce, sizeof nonce);
    cr_assert_eq(made, 1700000000);

    /* The window holds both ways, inclusive. */
    cr_assert_eq(check(golden_token, "/ws", 1700000060, 60), 0);
    cr_assert_eq(check(golden_token, "/ws", 1699999940, 60), 0);
    cr_assert_eq(check(golden_token, "/ws", 1700000061, 60), -ETIMEDOUT);
    cr_assert_eq(check(golden_token, "/ws", 1699999939, 60), -ETIMEDOUT);
    cr_assert_eq(check(golden_token, "/ws", 0, 60), -ETIMEDOUT);
    cr_assert_eq(check(golden_token, "/ws", UINT64_MAX, 60), -ETIMEDOUT);

    /* Extreme times and every padding length encode and check. */
    cr_assert_eq(tt_ws_token_make(test_key, UINT64_MAX, test_nonce, NULL, 0, "/", tok),
                 TT_WS_TOKEN_MIN);
    cr_assert_eq(check(tok, "/", UINT64_MAX, 0), 0);
    cr_assert_eq(check(tok, "/", 0, UINT64_MAX), 0);
    uint8_t pad[TT_WS_PAD_MAX];
    memset(pad, 0x5a, sizeof pad);
    for (size_t p = 0; p <= TT_WS_PAD_MAX; p++) {
        int n = tt_ws_token_make(test_key, 1700000000, test_nonce, pad, p, "/ws", tok);
        cr_assert_eq((size_t)n, ((TT_WS_TOKEN_RAW_MIN + p) * 4 + 2) / 3, "pad %zu", p);
        cr_assert_eq(check(tok, "/ws", 1700000000, 0), 0, "pad %zu", p);
    }
    cr_assert_eq(strlen(tok), TT_WS_TOKEN_MAX);
    cr_assert_eq(tt_ws_token_make(test_key, 1, test_nonce, pad, TT_WS_PAD_MAX + 1, "/", tok),
                 -EINVAL);
}

Test(wshs, tokens_share_no_prefix, .init = token_setup)
{
    /* Nothing fixed shows: two tokens of one second differ from the first
     * character (the nonce leads), and the masked time differs too. */
    char a[TT_WS_TOKEN_MAX + 1], b[TT_WS_TOKEN_MAX + 1];
    uint8_t other[TT_WS_NONCE_LEN];
    memcpy(other, test_nonce, sizeof other);
    other[0] ^= 0xfc;
    tt_ws_token_make(test_key, 1700000000, test_nonce, NULL, 0, "/ws", a);
    tt_ws_token_make(test_key, 1700000000, other, NULL, 0, "/ws", b);
    cr_assert_neq(a[0], b[0]);
    cr_assert_neq(memcmp(a + 22, b + 22, 10), 0, "the time is masked per nonce");
}

Test(wshs, token_refusals, .init = token_setup)
{
    char tok[TT_WS_TOKEN_MAX + 1];
    cr_assert_eq(tt_ws_token_make(test_key, 1700000000, test_nonce, NULL, 0, "/ws", tok),
                 TT_WS_TOKEN_MIN);
    uint8_t nonce[TT_WS_NONCE_LEN];
    uint64_t made;
    const char *why = NULL;

    uint8_t wrong[TT_WS_AUTH_KEY_LEN];
    memcpy(wrong, test_key, sizeof wrong);
    wrong[31] ^= 0x80;
    cr_assert_eq(
        tt_ws_token_check(wrong, tok, TT_WS_TOKEN_MIN, "/ws", 1700000000, 60, nonce, &made, &why),
        -EACCES, "another key: a wrong token, not a clock difference");
    cr_assert_eq(check(tok, "/ws2", 1700000000, 60), -EACCES);
    cr_assert_eq(check(tok, "/w", 1700000000, 60), -EACCES);

    /* Any character changed to any other character of the alphabet (or out
     * of it) is refused, in the padding too: never accepted. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. ";
    const char *toks[] = {golden_token, golden_padded};
    for (size_t g = 0; g < LEN(toks); g++) {
        size_t len = strlen(toks[g]);
        for (size_t i = 0; i < len; i++) {
            for (size_t a = 0; a < sizeof alphabet - 1; a++) {
                if (alphabet[a] == toks[g][i])
                    continue;
                char t[TT_WS_TOKEN_MAX + 1];
                memcpy(t, toks[g], len + 1);
                t[i] = alphabet[a];
                cr_assert_neq(check(t, "/ws", 1700000000, 60), 0,
                              "token %zu: position %zu changed to '%c' was accepted", g, i,
                              alphabet[a]);
            }
        }
    }

    /* Wrong lengths, padding, cut padding. */
    char longer[TT_WS_TOKEN_MAX + 4];
    snprintf(longer, sizeof longer, "%sA", golden_token);
    cr_assert_neq(check(longer, "/ws", 1700000000, 60), 0, "a byte of padding added");
    snprintf(longer, sizeof longer, "%sAAA", golden_token);
    cr_assert_eq(check(longer, "/ws", 1700000000, 60), -EINVAL, "no byte count has 57 characters");
    snprintf(longer, sizeof longer, "%.*s", TT_WS_TOKEN_MIN - 1, golden_token);
    cr_assert_eq(check(longer, "/ws", 1700000000, 60), -EINVAL);
    cr_assert_eq(check("", "/ws", 1700000000, 60), -EINVAL);
    snprintf(longer, sizeof longer, "%s==", golden_token);
    cr_assert_eq(check(longer, "/ws", 1700000000, 60), -EINVAL);
    snprintf(longer, sizeof longer, "%.*s", (int)strlen(golden_padded) - 2, golden_padded);
    cr_assert_neq(check(longer, "/ws", 1700000000, 60), 0, "a byte of padding cut");
    char huge[TT_WS_TOKEN_MAX + 8];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    cr_assert_eq(check(huge, "/ws", 1700000000, 60), -EINVAL);

    /* The last character carries unused bits: a non-zero one is another
     * spelling of the same bytes, refused. */
    char t[TT_WS_TOKEN_MAX + 1];
    memcpy(t, golden_token, sizeof golden_token);
    t[TT_WS_TOKEN_MIN - 1] = (char)(t[TT_WS_TOKEN_MIN - 1] + 1);
    cr_assert_eq(check(t, "/ws", 1700000000, 60), -EINVAL);
}

Test(wshs, cookie_name_is_fixed_by_the_key, .init = token_setup)
{
    /* Computed with Python: the list's entry HMAC-SHA256(key, "tt-ws2
     * cookie")[0] mod 8 for key = bytes(range(32)). */
    cr_assert_str_eq(tt_ws_cookie_name(test_key), "_sid");
    cr_assert_str_eq(tt_ws_cookie_name(test_key), tt_ws_cookie_name(test_key));
}
