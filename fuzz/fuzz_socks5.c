/* Fuzz harness for the SOCKS5 server codec.
 *
 * Input layout:
 *   byte 0        flags: bit 0 set means AUTH events are answered "ok"
 *   byte 1        K = byte % 8, the number of chunk sizes that follow
 *   bytes 2..2+K  chunk sizes, used in turn: size = byte % 64, where 0 means
 *                 "feed an empty chunk, then one byte"
 *   the rest      the bytes a client sends
 * With K = 0 the client bytes are fed in one piece.
 *
 * Each input runs four sessions: with and without require_auth, each fed in
 * one piece and in the chunks the input describes. Besides the invariants of
 * every event, the two runs of a mode must produce the same transcript, which
 * is the codec's promise that splits do not matter. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/socks5.h"

#include "fuzz_check.h"

/* A session's events serialized, so two runs can be compared with memcmp.
 * A session has at most three events (SEND, AUTH, REQUEST), each well under
 * 1200 bytes serialized. */
typedef struct transcript {
    uint8_t bytes[4096];
    size_t len;
} transcript;

static void put(transcript *tr, const void *p, size_t n)
{
    CHECK(tr->len + n <= sizeof tr->bytes);
    if (n > 0)
        memcpy(tr->bytes + tr->len, p, n);
    tr->len += n;
}

static void put_str(transcript *tr, const char *s)
{
    put(tr, s, strlen(s) + 1);
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

static void check_target(const tt_target *t)
{
    CHECK(t->type == TT_TARGET_IPV4 || t->type == TT_TARGET_IPV6 || t->type == TT_TARGET_NAME);
    if (t->type == TT_TARGET_NAME) {
        CHECK(t->name_len >= 1);
        CHECK(memchr(t->u.name, 0, sizeof t->u.name) != NULL);
        CHECK(strlen(t->u.name) == t->name_len);
    }
}

/* Runs one session over IN and records what it did in TR. */
static void run(const uint8_t *in, size_t len, bool require_auth, bool auth_ok, chunker *c,
                transcript *tr)
{
    tt_socks5 s;
    tt_socks5_init(&s, require_auth);
    tr->len = 0;

    size_t off = 0;
    bool over = false;
    while (!over && off < len) {
        size_t end = off + next_chunk(c, len - off);
        do {
            tt_socks5_event ev;
            size_t n = tt_socks5_feed(&s, in + off, end - off, &ev);
            CHECK(n <= end - off);
            CHECK(ev.out_len <= TT_SOCKS5_REPLY_MAX);
            off += n;

            uint8_t type = (uint8_t)ev.type;
            if (ev.type != TT_S5_EV_NEED_MORE) {
                put(tr, &type, 1);
                put(tr, &ev.out_len, sizeof ev.out_len);
                put(tr, ev.out, ev.out_len);
            }
            switch (ev.type) {
            case TT_S5_EV_NEED_MORE:
                CHECK(off == end);
                CHECK(ev.out_len == 0);
                break;
            case TT_S5_EV_SEND:
                CHECK(n > 0);
                CHECK(ev.out_len == 2 && ev.out[0] == 0x05);
                CHECK(ev.out[1] == (require_auth ? 0x02 : 0x00));
                break;
            case TT_S5_EV_AUTH: {
                CHECK(require_auth);
                CHECK(ev.out_len == 0);
                CHECK(ev.user != NULL && ev.pass != NULL);
                size_t ul = strlen(ev.user), pl = strlen(ev.pass);
                CHECK(ul >= 1 && ul <= 255 && pl >= 1 && pl <= 255);
                put_str(tr, ev.user);
                put_str(tr, ev.pass);
                uint8_t reply[2];
                CHECK(tt_socks5_auth_result(&s, auth_ok, reply) == 2);
                CHECK(reply[0] == 0x01 && reply[1] == (auth_ok ? 0x00 : 0x01));
                put(tr, reply, 2);
                over = !auth_ok;
                break;
            }
            case TT_S5_EV_REQUEST:
                CHECK(ev.out_len == 0);
                check_target(&ev.target);
                put(tr, &ev.target, sizeof ev.target);
                over = true;
                break;
            case TT_S5_EV_FAIL:
                CHECK(ev.why != NULL && ev.why[0] != '\0');
                CHECK(ev.out_len == 0 || ev.out_len == 2 || ev.out_len == 10);
                put_str(tr, ev.why);
                over = true;
                break;
            default:
                CHECK(!"unknown event type");
            }
            if (ev.type == TT_S5_EV_NEED_MORE)
                break;
        } while (!over && off < end);
    }
    put(tr, &off, sizeof off);

    /* Once over, the session stays over and takes nothing more. */
    if (over) {
        tt_socks5_event ev;
        CHECK(tt_socks5_feed(&s, in + off, len - off, &ev) == 0);
        CHECK(ev.type == TT_S5_EV_FAIL && ev.out_len == 0);
    }
}

/* Encodes replies with bound addresses taken from the input and checks the
 * bytes against the address fields. */
static void check_reply(const uint8_t *in, size_t len)
{
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    uint8_t rep = len > 0 ? in[0] : 0;
    CHECK(tt_socks5_rep_str(rep) != NULL);

    if (len >= 18) {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof sin6);
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, in, 16);
        memcpy(&sin6.sin6_port, in + 16, 2);
        CHECK(tt_socks5_reply(rep, (const struct sockaddr *)&sin6, out) == 22);
        CHECK(out[0] == 5 && out[1] == rep && out[2] == 0 && out[3] == 4);
        CHECK(memcmp(out + 4, in, 18) == 0);
    }
    if (len >= 6) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, in, 4);
        memcpy(&sin.sin_port, in + 4, 2);
        CHECK(tt_socks5_reply(rep, (const struct sockaddr *)&sin, out) == 10);
        CHECK(out[0] == 5 && out[1] == rep && out[2] == 0 && out[3] == 1);
        CHECK(memcmp(out + 4, in, 6) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool auth_ok = data[0] & 1;
    size_t k = data[1] % 8;
    if (size < 2 + k)
        return 0;
    const uint8_t *in = data + 2 + k;
    size_t len = size - 2 - k;

    static transcript whole, chunked;
    for (int mode = 0; mode < 2; mode++) {
        bool require_auth = mode == 1;
        chunker one = {0};
        run(in, len, require_auth, auth_ok, &one, &whole);
        chunker parts = {.sizes = k > 0 ? data + 2 : NULL, .count = k};
        run(in, len, require_auth, auth_ok, &parts, &chunked);
        CHECK(whole.len == chunked.len);
        CHECK(memcmp(whole.bytes, chunked.bytes, whole.len) == 0);
    }
    check_reply(in, len);
    return 0;
}
