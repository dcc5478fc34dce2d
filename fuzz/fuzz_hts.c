/* Fuzz harness for the HTTP streaming carriers' codec (codec/hts.h).
 *
 * Input layout: byte 0 picks what the rest is:
 *   0  a request head for the server's check (path "/tun");
 *   1  a response head for the client's check of the GET's answer;
 *   2  token text for the token check (fixed key, path, time);
 *   3  a downstream body, read through the chunked reader and the record
 *      reader, split at the byte given by the next two bytes;
 *   4  fields of a token made and checked here: 8 bytes of id, 4 of
 *      sequence number, 1 of kind and flags, 1 of padding length, 2 naming
 *      a character to change (0xffff: none).
 * Invariants: the server's check returns a kind only for the path, with
 * cookie values inside the input; token text from outside is never
 * accepted (the harness's key is in no input); a made token comes back
 * with its fields exactly when nothing was changed; records read in two
 * pieces give the same bytes and end as read in one. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/hts.h"

#include "fuzz_check.h"

static const uint8_t auth_key[32] = {
    0x1b, 0x7c, 0x22, 0x9e, 0x40, 0xd3, 0x65, 0xaa, 0x08, 0xf1, 0x3c, 0x57, 0xb9, 0x2e, 0x94, 0x6d,
    0xc0, 0x13, 0x7a, 0xe5, 0x4f, 0x88, 0x31, 0xdb, 0x06, 0xbe, 0x59, 0x72, 0xa4, 0x1f, 0xc7, 0x3e,
};
static const char path[] = "/tun";
#define NOW 1767225600u

static bool inside(const uint8_t *buf, size_t n, tt_http_str s)
{
    return s.len == 0 || ((const uint8_t *)s.p >= buf && (const uint8_t *)s.p + s.len <= buf + n);
}

static void request(const uint8_t *p, size_t n)
{
    tt_http_head h;
    const char *why = NULL;
    if (tt_http_parse_request(p, n, &h, &why) != 1)
        return;
    tt_http_str cookies[TT_HTS_COOKIES_MAX];
    size_t nc = 0;
    int kind = tt_hts_server_check(&h, path, cookies, &nc);
    CHECK(kind == 0 || kind == TT_HTS_GET || kind == TT_HTS_POST);
    CHECK(nc <= TT_HTS_COOKIES_MAX);
    for (size_t i = 0; i < nc; i++) {
        CHECK(inside(p, n, cookies[i]));
        tt_hts_token t;
        CHECK(tt_hts_token_check(auth_key, cookies[i].p, cookies[i].len, path, NOW, 1u << 30, &t,
                                 &why) != 0);
    }
}

static void response(const uint8_t *p, size_t n)
{
    tt_http_head h;
    const char *why = NULL;
    if (tt_http_parse_response(p, n, &h, &why) != 1)
        return;
    bool chunked = false;
    if (tt_hts_down_check(&h, &chunked, &why) == 0)
        CHECK(h.status == 200);
}

/* Reads BODY (chunked when CHUNKED) in two pieces split at CUT; the data
 * bytes go into OUT (*OUT_LEN). Returns 2 (the end record), 0 (more
 * needed) or -1 (an error). */
static int read_body(const uint8_t *body, size_t n, size_t cut, bool chunked, uint8_t *out,
                     size_t *out_len)
{
    tt_http_chunked ck;
    tt_http_chunked_init(&ck);
    tt_hts_rec rec;
    tt_hts_rec_init(&rec);
    *out_len = 0;
    int end = 0;
    size_t pieces[2][2] = {{0, cut}, {cut, n - cut}};
    for (int k = 0; k < 2; k++) {
        const uint8_t *p = body + pieces[k][0];
        size_t len = pieces[k][1], off = 0;
        while (off < len) {
            const char *why = NULL;
            size_t used = 0;
            tt_http_str d = {(const char *)p + off, len - off};
            if (chunked) {
                int rc = tt_http_chunked_read(&ck, p + off, len - off, &used, &d, &why);
                CHECK(used <= len - off);
                off += used;
                if (rc < 0)
                    return -1;
                if (rc != 2)
                    break;
            } else {
                off = len;
            }
            size_t doff = 0;
            while (doff < d.len) {
                tt_http_str out_d;
                int rr = tt_hts_rec_read(&rec, (const uint8_t *)d.p + doff, d.len - doff, &used,
                                         &out_d, &why);
                CHECK(used <= d.len - doff);
                doff += used;
                if (rr < 0)
                    return -1;
                if (rr == 1) {
                    memcpy(out + *out_len, out_d.p, out_d.len);
                    *out_len += out_d.len;
                }
                if (rr == 2)
                    end = 2;
                if (rr == 0)
                    CHECK(doff == d.len);
            }
        }
    }
    return end;
}

static void body(const uint8_t *p, size_t n)
{
    if (n < 3)
        return;
    bool chunked = p[0] & 1;
    size_t cut = ((size_t)p[1] << 8 | p[2]);
    p += 3;
    n -= 3;
    cut = n ? cut % (n + 1) : 0;
    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
    CHECK(a && b);
    size_t alen = 0, blen = 0;
    int ra = read_body(p, n, cut, chunked, a, &alen);
    int rb = read_body(p, n, 0, chunked, b, &blen);
    CHECK(ra == rb);
    if (ra >= 0)
        CHECK(alen == blen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);
}

static void made(const uint8_t *p, size_t n)
{
    cursor c = {p, n, 0};
    tt_hts_token t = {.time = NOW};
    for (int i = 0; i < TT_HTS_ID_LEN; i++)
        t.id[i] = u8(&c);
    t.seq = (uint32_t)u8(&c) << 24 | (uint32_t)u8(&c) << 16 | (uint32_t)u8(&c) << 8 | u8(&c);
    uint8_t kf = u8(&c);
    t.kind = (kf & 1) ? TT_HTS_POST : TT_HTS_GET;
    t.flags = t.kind == TT_HTS_POST ? (kf >> 1) & TT_HTS_FIN : 0;
    size_t pad_len = u8(&c) % (TT_HTS_PAD_MAX + 1);
    unsigned change = (unsigned)u8(&c) << 8 | u8(&c);
    for (int i = 0; i < TT_HTS_NONCE_LEN; i++)
        t.nonce[i] = (uint8_t)(i * 37 + kf);
    uint8_t pad[TT_HTS_PAD_MAX];
    memset(pad, 0x5a, sizeof pad);
    char text[TT_HTS_TOKEN_MAX + 1];
    int len = tt_hts_token_make(auth_key, &t, pad, pad_len, path, text);
    CHECK(len >= TT_HTS_TOKEN_MIN && len <= TT_HTS_TOKEN_MAX);
    bool changed = change != 0xffff && (size_t)(change % 256) < (size_t)len;
    if (changed) {
        size_t at = change % 256;
        text[at] = text[at] == 'A' ? 'B' : 'A';
    }
    tt_hts_token got;
    const char *why = NULL;
    int rc = tt_hts_token_check(auth_key, text, (size_t)len, path, NOW, 60, &got, &why);
    if (!changed) {
        CHECK(rc == 0);
        CHECK(memcmp(got.id, t.id, TT_HTS_ID_LEN) == 0 && got.seq == t.seq && got.kind == t.kind &&
              got.flags == t.flags && got.time == t.time);
    } else {
        CHECK(rc != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0:
        request(p, n);
        break;
    case 1:
        response(p, n);
        break;
    case 2: {
        tt_hts_token t;
        const char *why = NULL;
        CHECK(tt_hts_token_check(auth_key, (const char *)p, n, path, NOW, 1u << 30, &t, &why) != 0);
        break;
    }
    case 3:
        body(p, n);
        break;
    default:
        made(p, n);
        break;
    }
    return 0;
}
