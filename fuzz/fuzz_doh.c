/* Fuzz harness for the DNS over HTTPS codec (codec/doh.h): what a hostile
 * or broken resolver can send to the client's HTTP/2 session.
 *
 * Input: one byte of settings, then chunks, each a length byte and that
 * many bytes fed to the session as the resolver's; a chunk of length 0
 * submits one more query instead. The settings byte: its low three bits
 * are how many queries are submitted before the first chunk, bit 3 makes
 * the longest answer taken 16 bytes (else the default), bit 4 the most
 * streams 2 (else 8). The seeds (fuzz/seeds_doh.py) are real server
 * flights: SETTINGS, answers, errors, resets, GOAWAY.
 *
 * Invariants: a feed returns 0 or -EPROTO with a reason, and after
 * -EPROTO the session takes no queries and is done; a query is taken,
 * or refused with -ENOBUFS only at the bound, or -EPIPE only when the
 * session is not accepting; outstanding queries never pass the bound; each
 * query ends in at most one event, an answer of 1 to max_answer bytes or a
 * failure with a reason; output is produced whatever the input. */
#include <errno.h>
#include <string.h>

#include "codec/doh.h"

#include "fuzz_check.h"

static const uint8_t QUERY[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 16, 0, 1};

typedef struct run {
    tt_doh *d;
    unsigned max_streams;
    size_t max_answer;
    unsigned taken, events;
} run;

static void submit(run *r)
{
    bool accepting = tt_doh_accepting(r->d);
    unsigned before = tt_doh_outstanding(r->d);
    int rc = tt_doh_query(r->d, QUERY, sizeof QUERY);
    if (rc == 0) {
        CHECK(accepting && before < r->max_streams);
        r->taken++;
    } else if (rc == -ENOBUFS) {
        CHECK(before >= r->max_streams);
    } else {
        CHECK(rc == -EPIPE && !accepting);
    }
    CHECK(tt_doh_outstanding(r->d) <= r->max_streams);
}

static void drain(run *r)
{
    static uint8_t out[4096];
    for (int guard = 0; tt_doh_output(r->d, out, sizeof out) > 0; guard++)
        CHECK(guard < 10000);
    tt_doh_event ev;
    while (tt_doh_next(r->d, &ev)) {
        r->events++;
        if (ev.kind == TT_DOH_ANSWER) {
            CHECK(ev.msg != NULL && ev.len >= 1 && ev.len <= r->max_answer);
        } else {
            CHECK(ev.kind == TT_DOH_FAILED && ev.why != NULL && ev.why[0] != '\0');
        }
    }
    CHECK(r->events <= r->taken);
    CHECK(r->events + tt_doh_outstanding(r->d) == r->taken);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    cursor c = {data, size, 0};
    uint8_t s = u8(&c);
    run r = {.max_streams = (s & 0x10) ? 2 : 8, .max_answer = (s & 0x08) ? 16 : 4096};
    tt_doh_cfg cfg = {
        .authority = "dns.example", .max_streams = r.max_streams, .max_answer = r.max_answer};
    const char *why = NULL;
    CHECK(tt_doh_new(&cfg, &r.d, &why) == 0);
    for (unsigned i = 0; i < (s & 7u); i++)
        submit(&r);
    drain(&r);
    while (c.off < c.n) {
        size_t n = u8(&c);
        if (n == 0) {
            submit(&r);
            drain(&r);
            continue;
        }
        if (n > c.n - c.off)
            n = c.n - c.off;
        int rc = tt_doh_feed(r.d, c.p + c.off, n, &why);
        c.off += n;
        if (rc != 0) {
            CHECK(rc == -EPROTO && why != NULL);
            CHECK(!tt_doh_accepting(r.d));
            drain(&r);
            CHECK(tt_doh_done(r.d));
            submit(&r);
            break;
        }
        drain(&r);
    }
    tt_doh_free(r.d);
    return 0;
}
