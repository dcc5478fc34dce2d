/* Fuzz harness for the stream-open header and reply codec.
 *
 * Input layout:
 *   byte 0        K = byte % 8, the number of chunk sizes that follow
 *   bytes 1..1+K  chunk sizes, used in turn (byte % 64; 0 means an empty feed
 *                 followed by one byte)
 *   the rest      the bytes at the start of a stream
 * With K = 0 the stream bytes are fed in one piece.
 *
 * The header is parsed whole and in chunks; both must agree. A parsed header
 * must re-encode to exactly the bytes it was parsed from, and the raw input is
 * also tried as a reply and as a tt_target to encode. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/streamhdr.h"

#include "fuzz_check.h"

typedef struct result {
    int rc;
    size_t used; /* total bytes taken when rc is 1 */
    const char *why;
    tt_target t;
} result;

static bool same_target(const tt_target *a, const tt_target *b)
{
    if (a->type != b->type || a->port != b->port)
        return false;
    if (a->type == TT_TARGET_IPV4)
        return memcmp(a->u.v4, b->u.v4, 4) == 0;
    if (a->type == TT_TARGET_IPV6)
        return memcmp(a->u.v6, b->u.v6, 16) == 0;
    return a->name_len == b->name_len && memcmp(a->u.name, b->u.name, a->name_len) == 0;
}

/* Where the chunk sizes come from; NULL SIZES means one piece. */
typedef struct chunker {
    const uint8_t *sizes;
    size_t count;
    size_t next;
    bool empty_done; /* the pending size-0 chunk has had its empty feed */
} chunker;

/* Returns the length of the next chunk of at most LEFT bytes. */
static size_t next_chunk(chunker *c, size_t left)
{
    if (c->sizes == NULL)
        return left;
    size_t n = c->sizes[c->next] % 64;
    if (n == 0 && !c->empty_done) {
        c->empty_done = true;
        return 0;
    }
    c->empty_done = false;
    c->next = (c->next + 1) % c->count;
    if (n == 0)
        n = 1;
    return n < left ? n : left;
}

/* Parses IN fed in the chunks C gives until a result other than 0 or the end
 * of the input. */
static result parse(const uint8_t *in, size_t len, chunker *c)
{
    tt_streamhdr_parser p;
    tt_streamhdr_parser_init(&p);
    result r;
    memset(&r, 0, sizeof r);

    size_t off = 0;
    do {
        size_t n = next_chunk(c, len - off);
        size_t used = (size_t)-1;
        const char *why = NULL;
        int rc = tt_streamhdr_parse(&p, in + off, n, &used, &r.t, &why);
        if (rc == -EPROTO) {
            CHECK(why != NULL && why[0] != '\0');
            r.rc = rc;
            r.why = why;
            return r;
        }
        CHECK(rc == 0 || rc == 1);
        CHECK(used <= n);
        off += used;
        if (rc == 1) {
            r.rc = 1;
            r.used = off;
            /* A repeated call finds the same header and takes nothing. */
            tt_target again;
            CHECK(tt_streamhdr_parse(&p, in + off, len - off, &used, &again, &why) == 1);
            CHECK(used == 0 && same_target(&again, &r.t));
            return r;
        }
        CHECK(used == n);
    } while (off < len);
    r.rc = 0;
    r.used = off;
    return r;
}

/* Checks a header parsed from IN: the target is well formed and encodes back
 * to the bytes it came from. */
static void check_header(const result *r, const uint8_t *in)
{
    const tt_target *t = &r->t;
    CHECK(t->type == TT_TARGET_IPV4 || t->type == TT_TARGET_IPV6 || t->type == TT_TARGET_NAME);
    if (t->type == TT_TARGET_NAME) {
        CHECK(t->name_len >= 1);
        CHECK(strlen(t->u.name) == t->name_len);
    }
    uint8_t out[TT_STREAMHDR_MAX];
    size_t n = tt_streamhdr_encode(t, out);
    CHECK(n == r->used);
    CHECK(memcmp(out, in, n) == 0);
}

/* Treats the raw bytes as a target: whatever encode accepts must parse back
 * to the same target, and be no longer than TT_STREAMHDR_MAX. */
static void check_encode(const uint8_t *in, size_t len)
{
    tt_target t;
    memset(&t, 0, sizeof t);
    memcpy(&t, in, len < sizeof t ? len : sizeof t);

    uint8_t out[TT_STREAMHDR_MAX];
    size_t n = tt_streamhdr_encode(&t, out);
    if (n == 0)
        return;
    CHECK(n <= TT_STREAMHDR_MAX);
    chunker one = {0};
    result r = parse(out, n, &one);
    CHECK(r.rc == 1 && r.used == n);
    CHECK(same_target(&r.t, &t));
}

static void check_reply(const uint8_t *in, size_t len)
{
    if (len < TT_STREAMREPLY_LEN)
        return;
    int code = tt_streamreply_parse(in);
    if (in[0] == TT_STREAMHDR_VERSION)
        CHECK(code == in[1]);
    else
        CHECK(code == -EPROTO);

    uint8_t out[TT_STREAMREPLY_LEN];
    CHECK(tt_streamreply_encode(in[1], out) == TT_STREAMREPLY_LEN);
    CHECK(tt_streamreply_parse(out) == in[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t k = data[0] % 8;
    if (size < 1 + k)
        return 0;
    const uint8_t *in = data + 1 + k;
    size_t len = size - 1 - k;

    chunker one = {0};
    result whole = parse(in, len, &one);
    chunker parts = {.sizes = k > 0 ? data + 1 : NULL, .count = k};
    result chunked = parse(in, len, &parts);
    CHECK(whole.rc == chunked.rc);
    if (whole.rc == 1) {
        CHECK(whole.used == chunked.used);
        CHECK(same_target(&whole.t, &chunked.t));
        check_header(&whole, in);
    } else if (whole.rc == -EPROTO) {
        CHECK(strcmp(whole.why, chunked.why) == 0);
    } else {
        CHECK(whole.used == len && chunked.used == len);
    }

    check_encode(in, len);
    check_reply(in, len);
    return 0;
}
