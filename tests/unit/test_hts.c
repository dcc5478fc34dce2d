/* Tests of the HTTP streaming carriers' codec: the token against a vector
 * computed independently (Python's hmac, docs/HTTP.md), its refusals, the
 * requests and answers, the server's request check, the client's check of
 * the GET's answer, and the record reader fed every split of a body. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/hts.h"

static const char vector[] =
    "ZGVmZ2hpamtsbW5vcHFycyQV8pWVFrTyhygKAvp5S8JTaxZeKVde0yw-a85pnxmHaeJxd-ssU-6qqqqqqg";

static void vector_key(uint8_t key[32])
{
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
}

static tt_hts_token vector_token(void)
{
    tt_hts_token t = {.time = 1767225600, .seq = 7, .kind = TT_HTS_POST, .flags = TT_HTS_FIN};
    for (int i = 0; i < 16; i++)
        t.nonce[i] = (uint8_t)(100 + i);
    for (int i = 0; i < 8; i++)
        t.id[i] = (uint8_t)(i + 1);
    return t;
}

Test(hts, token_vector)
{
    uint8_t key[32], pad[5];
    vector_key(key);
    memset(pad, 0xaa, sizeof pad);
    tt_hts_token t = vector_token();
    char out[TT_HTS_TOKEN_MAX + 1];
    int n = tt_hts_token_make(key, &t, pad, sizeof pad, "/tun", out);
    cr_assert_eq(n, (int)strlen(vector));
    cr_assert_str_eq(out, vector);
    tt_hts_token got;
    const char *why = NULL;
    cr_assert_eq(tt_hts_token_check(key, out, (size_t)n, "/tun", 1767225600 + 30, 60, &got, &why),
                 0);
    cr_assert_eq(got.seq, 7);
    cr_assert_eq(got.kind, TT_HTS_POST);
    cr_assert_eq(got.flags, TT_HTS_FIN);
    cr_assert_eq(memcmp(got.id, t.id, 8), 0);
    cr_assert_eq(memcmp(got.nonce, t.nonce, 16), 0);
}

Test(hts, token_refusals)
{
    uint8_t key[32], other[32];
    vector_key(key);
    memcpy(other, key, 32);
    other[0] ^= 1;
    size_t n = strlen(vector);
    tt_hts_token got;
    const char *why = NULL;
    cr_assert_eq(tt_hts_token_check(other, vector, n, "/tun", 1767225600, 60, &got, &why), -EACCES);
    cr_assert_eq(tt_hts_token_check(key, vector, n, "/tu", 1767225600, 60, &got, &why), -EACCES);
    cr_assert_eq(tt_hts_token_check(key, vector, n, "/tun", 1767225600 + 61, 60, &got, &why),
                 -ETIMEDOUT);
    cr_assert_eq(tt_hts_token_check(key, vector, n - 1, "/tun", 1767225600, 60, &got, &why),
                 -EINVAL);
    /* Every changed character is refused. */
    for (size_t i = 0; i < n; i++) {
        char t[TT_HTS_TOKEN_MAX + 1];
        memcpy(t, vector, n + 1);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        cr_assert_neq(tt_hts_token_check(key, t, n, "/tun", 1767225600, 60, &got, &why), 0,
                      "at %zu", i);
    }
}

Test(hts, requests_and_answers)
{
    char out[2048];
    size_t n = tt_hts_get_request(out, sizeof out, "a.example", "/tun", "sid=x");
    cr_assert_gt(n, 0);
    cr_assert(strncmp(out, "GET /tun HTTP/1.1\r\nHost: a.example\r\n", 36) == 0);
    cr_assert(strstr(out, "Accept-Encoding: identity\r\n") != NULL);
    cr_assert(strstr(out, "Cookie: sid=x\r\n\r\n") != NULL);
    n = tt_hts_post_head(out, sizeof out, "a.example", "https://a.example", "/tun", "sid=y", 1234);
    cr_assert_gt(n, 0);
    cr_assert(strstr(out, "Content-Length: 1234\r\n") != NULL);
    cr_assert_eq(tt_hts_get_request(out, sizeof out, "a\r\nX: y", "/tun", NULL), 0);
    cr_assert_eq(tt_hts_get_request(out, sizeof out, "a", "/t un", NULL), 0);
    cr_assert_eq(tt_hts_get_request(out, 100, "a", "/tun", NULL), 0);

    n = tt_hts_down_head(out, sizeof out, 0, true);
    tt_http_head h;
    const char *why = NULL;
    cr_assert_eq(tt_http_parse_response((const uint8_t *)out, n, &h, &why), 1);
    bool chunked = false;
    cr_assert_eq(tt_hts_down_check(&h, &chunked, &why), 0);
    cr_assert(chunked);
    n = tt_hts_down_head(out, sizeof out, 0, false);
    cr_assert_eq(tt_http_parse_response((const uint8_t *)out, n, &h, &why), 1);
    cr_assert_eq(tt_hts_down_check(&h, &chunked, &why), 0);
    cr_assert(!chunked);
    static const char *const refused[] = {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        cr_assert_eq(
            tt_http_parse_response((const uint8_t *)refused[i], strlen(refused[i]), &h, &why), 1);
        cr_assert_eq(tt_hts_down_check(&h, &chunked, &why), -EPROTO, "%s", refused[i]);
    }
    n = tt_hts_post_answer(out, sizeof out, 0, true);
    cr_assert(strstr(out, "Content-Length: 0\r\nConnection: close\r\n\r\n") != NULL);
}

Test(hts, server_check)
{
    static const struct {
        const char *req;
        int kind;
        size_t cookies;
    } cases[] = {
        {"GET /tun HTTP/1.1\r\nHost: a\r\nCookie: a=1; b=2\r\nCookie: c=3\r\n\r\n", TT_HTS_GET, 3},
        {"GET /tun?_=123 HTTP/1.1\r\nHost: a\r\n\r\n", TT_HTS_GET, 0},
        {"POST /tun HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", TT_HTS_POST, 0},
        {"GET /tunnel HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0},
        {"PUT /tun HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0},
        {"HEAD /tun HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tt_http_head h;
        const char *why = NULL;
        cr_assert_eq(
            tt_http_parse_request((const uint8_t *)cases[i].req, strlen(cases[i].req), &h, &why),
            1);
        tt_http_str c[TT_HTS_COOKIES_MAX];
        size_t n = 99;
        cr_assert_eq(tt_hts_server_check(&h, "/tun", c, &n), cases[i].kind, "%s", cases[i].req);
        if (cases[i].kind)
            cr_assert_eq(n, cases[i].cookies, "%s", cases[i].req);
    }
}

/* Reads BODY split at CUT into OUT; returns the end state (2 at the end
 * record, 0 short of it, -1 on an error). */
static int read_split(const uint8_t *body, size_t n, size_t cut, char *out, size_t *out_len)
{
    tt_hts_rec r;
    tt_hts_rec_init(&r);
    *out_len = 0;
    int end = 0;
    size_t parts[2][2] = {{0, cut}, {cut, n - cut}};
    for (int k = 0; k < 2; k++) {
        size_t off = parts[k][0], stop = parts[k][0] + parts[k][1];
        while (off < stop) {
            size_t used = 0;
            tt_http_str d;
            const char *why = NULL;
            int rc = tt_hts_rec_read(&r, body + off, stop - off, &used, &d, &why);
            off += used;
            if (rc < 0)
                return -1;
            if (rc == 1) {
                memcpy(out + *out_len, d.p, d.len);
                *out_len += d.len;
            }
            if (rc == 2)
                end = 2;
        }
    }
    return end;
}

Test(hts, records_every_split)
{
    uint8_t body[64] = {0};
    size_t n = 0;
    tt_hts_rec_header(body + n, TT_HTS_REC_DATA, 5);
    n += 4;
    memcpy(body + n, "hello", 5);
    n += 5;
    tt_hts_rec_header(body + n, TT_HTS_REC_PAD, 3);
    n += 7;
    tt_hts_rec_header(body + n, TT_HTS_REC_DATA, 0);
    n += 4;
    tt_hts_rec_header(body + n, TT_HTS_REC_DATA, 6);
    n += 4;
    memcpy(body + n, " world", 6);
    n += 6;
    tt_hts_rec_header(body + n, TT_HTS_REC_END, 0);
    n += 4;
    for (size_t cut = 0; cut <= n; cut++) {
        char out[64];
        size_t len = 0;
        cr_assert_eq(read_split(body, n, cut, out, &len), 2, "cut %zu", cut);
        cr_assert_eq(len, 11);
        cr_assert_eq(memcmp(out, "hello world", 11), 0);
    }
    /* Cut short: no end; bytes after the end, an unknown type and an end
     * with a body: errors. */
    char out[64];
    size_t len;
    cr_assert_eq(read_split(body, n - 1, 0, out, &len), 0);
    body[n] = 0;
    cr_assert_eq(read_split(body, n + 1, 0, out, &len), -1);
    uint8_t bad[8];
    tt_hts_rec_header(bad, 3, 0);
    cr_assert_eq(read_split(bad, 4, 0, out, &len), -1);
    tt_hts_rec_header(bad, TT_HTS_REC_END, 1);
    cr_assert_eq(read_split(bad, 4, 2, out, &len), -1);
}
