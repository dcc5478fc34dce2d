/* Fuzz harness for the HTTP/1.1 head codec.
 *
 * Input layout:
 *   byte 0        bit 0: parse as a response (else a request);
 *                 bits 1-3: K, the number of chunk sizes that follow
 *   bytes 1..1+K  chunk sizes (byte * 37 + 1), used in turn, for the reads
 *   the rest      the bytes a peer sent
 *
 * The head is parsed from the whole input and incrementally, one head fed
 * the prefixes a reader would see after each read (each in its own copy, so
 * that the parser must not keep pointers into an earlier one): every prefix
 * gives "need more" or the same result as the whole, and the incremental
 * parse costs each byte once. A parsed head must have all its pieces inside the
 * input and well formed, parse the same from exactly its own bytes, and
 * survive a rewrite in canonical form. The field helpers (Content-Length,
 * Transfer-Encoding, dates), the decoy's ranges and path mapping
 * (decoy/nginx.h) and the chunked-body skipper (whole and split, on what
 * follows the head) must keep their contracts. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http1.h"
#include "decoy/nginx.h"

#include "fuzz_check.h"

static bool same_str(tt_http_str a, tt_http_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Whether two heads hold the same text (possibly at other addresses). */
static bool same_head(const tt_http_head *a, const tt_http_head *b, bool response)
{
    if (a->minor != b->minor || a->nheaders != b->nheaders)
        return false;
    if (response ? (a->status != b->status || !same_str(a->reason, b->reason))
                 : (!same_str(a->method, b->method) || !same_str(a->target, b->target)))
        return false;
    for (size_t i = 0; i < a->nheaders; i++) {
        if (!same_str(tt_http_header_at(a, i).name, tt_http_header_at(b, i).name) ||
            !same_str(tt_http_header_at(a, i).value, tt_http_header_at(b, i).value))
            return false;
    }
    return true;
}

static int parse(const uint8_t *in, size_t len, bool response, tt_http_head *h, const char **why)
{
    *why = NULL;
    return response ? tt_http_parse_response(in, len, h, why)
                    : tt_http_parse_request(in, len, h, why);
}

static bool inside(tt_http_str s, const uint8_t *in, size_t len)
{
    const char *b = (const char *)in;
    return s.p >= b && s.p + s.len <= b + len;
}

static bool is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Checks the pieces of a head parsed from IN (LEN bytes). */
static void check_head(const tt_http_head *h, const uint8_t *in, size_t len, bool response)
{
    CHECK(h->head_len > 0 && h->head_len <= len);
    if (response)
        CHECK(h->head_len <= TT_HTTP_RESPONSE_MAX);
    CHECK(h->minor == 0 || h->minor == 1);
    if (response) {
        CHECK(h->status >= 100 && h->status <= 599);
        if (h->reason.len > 0)
            CHECK(inside(h->reason, in, h->head_len));
    } else {
        CHECK(h->method.len > 0 && inside(h->method, in, h->head_len));
        CHECK(h->target.len > 0 && inside(h->target, in, h->head_len));
        for (size_t i = 0; i < h->method.len; i++)
            CHECK(is_tchar((uint8_t)h->method.p[i]));
        for (size_t i = 0; i < h->target.len; i++)
            CHECK(h->target.p[i] > ' ' && h->target.p[i] < 0x7f);
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        tt_http_str n = tt_http_header_at(h, i).name, v = tt_http_header_at(h, i).value;
        CHECK(n.len > 0 && inside(n, in, h->head_len));
        CHECK(v.len == 0 || inside(v, in, h->head_len));
        for (size_t k = 0; k < n.len; k++)
            CHECK(is_tchar((uint8_t)n.p[k]));
        for (size_t k = 0; k < v.len; k++) {
            uint8_t c = (uint8_t)v.p[k];
            CHECK(c == '\t' || (c >= ' ' && c != 0x7f));
        }
        if (v.len > 0) {
            CHECK(v.p[0] != ' ' && v.p[0] != '\t');
            CHECK(v.p[v.len - 1] != ' ' && v.p[v.len - 1] != '\t');
        }
        /* The helpers find what is there. */
        char name[TT_HTTP_LINE_MAX + 1];
        memcpy(name, n.p, n.len);
        name[n.len] = '\0';
        tt_http_header f;
        CHECK(tt_http_find(h, name, &f) && f.name.p <= n.p);
        CHECK(tt_http_count(h, name) >= 1);
    }
}

/* The head rewritten canonically (single spaces, CRLF, "name: value") must
 * parse to the same head. */
static void check_rewrite(const tt_http_head *h, bool response)
{
    size_t cap = TT_HTTP_HEAD_MAX * 2 + 16 * h->nheaders;
    char *out = malloc(cap);
    CHECK(out != NULL);
    size_t n = 0;
    if (response) {
        n += (size_t)snprintf(out, cap, "HTTP/1.%d %03d %.*s\r\n", h->minor, h->status,
                              (int)h->reason.len, h->reason.p);
    } else {
        n += (size_t)snprintf(out, cap, "%.*s %.*s HTTP/1.%d\r\n", (int)h->method.len, h->method.p,
                              (int)h->target.len, h->target.p, h->minor);
    }
    for (size_t i = 0; i < h->nheaders; i++)
        n += (size_t)snprintf(out + n, cap - n, "%.*s: %.*s\r\n",
                              (int)tt_http_header_at(h, i).name.len, tt_http_header_at(h, i).name.p,
                              (int)tt_http_header_at(h, i).value.len,
                              tt_http_header_at(h, i).value.p);
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    CHECK(n < cap);
    /* A rewrite may need other buffers than the original (its lines may
     * pack differently): compared only when the original was small. */
    if (n <= (response ? TT_HTTP_RESPONSE_MAX : TT_HTTP_FIRST_BUF)) {
        tt_http_head again;
        const char *why;
        CHECK(parse((const uint8_t *)out, n, response, &again, &why) == 1);
        CHECK(again.head_len == n);
        CHECK(same_head(h, &again, response));
        tt_http_head_free(&again);
    }
    free(out);
}

/* Runs the helpers that work on a head. */
static void check_helpers(const tt_http_head *h)
{
    uint64_t cl = 0;
    const char *why = NULL;
    int rc = tt_http_content_length(h, &cl, &why);
    CHECK(rc == 0 || rc == 1 || rc == -EINVAL);
    if (rc == 0)
        CHECK(cl == 0 && tt_http_count(h, "Content-Length") == 0);
    if (rc == 1)
        CHECK(cl <= TT_HTTP_CONTENT_LENGTH_MAX && tt_http_count(h, "Content-Length") == 1);
    if (rc < 0)
        CHECK(why != NULL);
    enum tt_http_te te = tt_http_transfer_encoding(h);
    CHECK(te == TT_HTTP_TE_NONE || te == TT_HTTP_TE_CHUNKED || te == TT_HTTP_TE_OTHER);
    CHECK((te == TT_HTTP_TE_NONE) == (tt_http_count(h, "Transfer-Encoding") == 0));
    if (tt_http_header_has(h, "Connection", "upgrade"))
        CHECK(tt_http_find(h, "connection", NULL));

    for (size_t i = 0; i < h->nheaders; i++) {
        /* Any value as a Range for a file of a size from the value's length. */
        uint64_t size = tt_http_header_at(h, i).value.len * 7919u % 100000u;
        tt_http_range r = {0, 0};
        int kind = tt_http_range_parse(tt_http_header_at(h, i).value, size, &r);
        CHECK(kind == 0 || kind == 1 || kind == 2 || kind == 416);
        if (kind == 1 || kind == 2)
            CHECK(r.first <= r.last && r.last < size);
        int64_t t;
        if (tt_http_date_parse(tt_http_header_at(h, i).value, &t) == 0) {
            char d[TT_HTTP_DATE_LEN + 1];
            tt_http_date(t, d);
            int64_t t2;
            CHECK(tt_http_date_parse((tt_http_str){d, TT_HTTP_DATE_LEN}, &t2) == 0 && t2 == t);
        }
    }

    if (h->target.len > 0) {
        char path[TT_HTTP_PATH_MAX];
        bool dir = false;
        int m = tt_http_map_path(h->target, path, &dir);
        CHECK(m == 0 || m == 400 || m == 404);
        if (m == 0) {
            size_t n = strnlen(path, sizeof path);
            CHECK(n > 0 && n < sizeof path);
            CHECK(path[0] != '/');
            CHECK(strstr(path, "//") == NULL);
            /* No ".." segment, ever. */
            const char *s = path;
            for (;;) {
                const char *e = strchr(s, '/');
                size_t sl = e ? (size_t)(e - s) : strlen(s);
                CHECK(!(sl == 2 && s[0] == '.' && s[1] == '.'));
                CHECK(!(sl == 1 && s[0] == '.'));
                if (e == NULL)
                    break;
                s = e + 1;
            }
            if (dir)
                CHECK(n >= 10 && strcmp(path + n - 10, "index.html") == 0);
            CHECK(tt_http_mime_type(path) != NULL);
        }
    }
}

/* The chunked skipper over BODY whole and in chunks from SIZES must agree. */
static void check_chunked(const uint8_t *body, size_t len, const uint8_t *sizes, size_t k)
{
    tt_http_chunked a, b;
    tt_http_chunked_init(&a);
    tt_http_chunked_init(&b);
    size_t used_a = 0;
    const char *why = NULL;
    int ra = tt_http_chunked_feed(&a, body, len, &used_a, &why);
    CHECK(ra == 0 || ra == 1 || ra == -EINVAL);
    CHECK(used_a <= len);
    if (ra == 0)
        CHECK(used_a == len);

    size_t off = 0, i = 0;
    int rb = 0;
    do {
        size_t n = k ? (size_t)sizes[i++ % k] * 37 + 1 : len;
        if (n > len - off)
            n = len - off;
        size_t used = 0;
        rb = tt_http_chunked_feed(&b, body + off, n, &used, &why);
        CHECK(used <= n);
        off += used;
        if (rb != 0)
            break;
        CHECK(used == n);
    } while (off < len);
    CHECK(ra == rb);
    CHECK(used_a == off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool response = data[0] & 1;
    size_t k = (data[0] >> 1) & 7;
    if (size < 1 + k)
        return 0;
    const uint8_t *sizes = data + 1;
    const uint8_t *in = data + 1 + k;
    size_t len = size - 1 - k;

    tt_http_head whole;
    const char *why_whole;
    int rc = parse(in, len, response, &whole, &why_whole);
    CHECK(rc == 1 || rc == 0 || rc == -EINVAL);
    if (rc == 0)
        CHECK(len < TT_HTTP_RESPONSE_MAX || !response);
    if (rc < 0) {
        CHECK(why_whole != NULL && why_whole[0] != '\0');
        if (!response)
            CHECK(whole.status == 400 || whole.status == 414 || whole.status == 505 ||
                  whole.status == TT_HTTP_STATUS_HEADER_TOO_LARGE);
    }

    /* The prefixes a reader sees, fed to one head: "need more" until the
     * result, which is the same as the whole's and then stays. */
    size_t cut = 0, i = 0;
    bool decided = false;
    tt_http_head inc;
    tt_http_head_init(&inc, !response);
    while (k > 0 && cut < len) {
        cut += (size_t)sizes[i++ % k] * 37 + 1;
        if (cut > len)
            cut = len;
        uint8_t *copy = malloc(cut);
        CHECK(copy != NULL);
        memcpy(copy, in, cut);
        const char *why = NULL;
        int r = tt_http_head_parse(&inc, copy, cut, &why);
        /* Each byte is examined once, however many reads brought it. */
        CHECK(inc.steps <= cut);
        if (r == 0) {
            CHECK(!decided);
        } else {
            CHECK(r == rc);
            decided = true;
            if (r == 1) {
                CHECK(inc.head_len == whole.head_len);
                CHECK(same_head(&inc, &whole, response));
            } else {
                CHECK(strcmp(why, why_whole) == 0);
                CHECK(inc.status == whole.status);
            }
        }
        free(copy);
    }
    tt_http_head_free(&inc);

    if (rc == 1) {
        check_head(&whole, in, len, response);
        /* Exactly its own bytes parse the same. */
        uint8_t *own = malloc(whole.head_len);
        CHECK(own != NULL);
        memcpy(own, in, whole.head_len);
        tt_http_head again;
        const char *why;
        CHECK(parse(own, whole.head_len, response, &again, &why) == 1);
        CHECK(again.head_len == whole.head_len && same_head(&again, &whole, response));
        tt_http_head_free(&again);
        free(own);
        check_rewrite(&whole, response);
        check_helpers(&whole);
        check_chunked(in + whole.head_len, len - whole.head_len, sizes, k);
    } else {
        check_chunked(in, len, sizes, k);
    }
    tt_http_head_free(&whole);
    return 0;
}
