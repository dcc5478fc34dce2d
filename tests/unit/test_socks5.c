/* Tests of the sans-I/O SOCKS5 server codec: golden bytes for every message
 * and reply, every error path, and the same input fed in every possible split
 * giving the same events. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "codec/socks5.h"

/* One event as the test driver saw it, with copies of everything the event
 * points to, so transcripts from different runs can be compared. */
typedef struct rec {
    enum tt_socks5_ev_type type;
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    size_t out_len;
    char user[256];
    char pass[256];
    uint8_t auth_reply[2];
    size_t auth_reply_len;
    const char *why;
    tt_target target;
} rec;

/* Everything one session did with one input: the events other than NEED_MORE,
 * and how many input bytes were consumed when the session stopped (at
 * REQUEST, FAIL or a refused AUTH) or ran out of input. */
typedef struct transcript {
    rec ev[8];
    size_t n;
    size_t consumed;
    bool stopped;
} transcript;

/* Feeds IN to a fresh session in chunks that end at the offsets in CUTS (in
 * ascending order; LEN is implied as the last), answering AUTH with AUTH_OK,
 * and records the transcript. */
static void run_cuts(const uint8_t *in, size_t len, bool require_auth, bool auth_ok,
                     const size_t *cuts, size_t ncuts, transcript *tr)
{
    tt_socks5 s;
    tt_socks5_init(&s, require_auth);
    memset(tr, 0, sizeof *tr);

    size_t start = 0;
    for (size_t c = 0; c <= ncuts && !tr->stopped; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        size_t off = start;
        while (!tr->stopped) {
            tt_socks5_event ev;
            size_t n = tt_socks5_feed(&s, in + off, end - off, &ev);
            cr_assert_leq(n, end - off, "feed consumed more than it was given");
            cr_assert_leq(ev.out_len, TT_SOCKS5_REPLY_MAX);
            off += n;
            if (ev.type == TT_S5_EV_NEED_MORE) {
                cr_assert_eq(off, end, "NEED_MORE without consuming everything");
                cr_assert_eq(ev.out_len, 0);
                break;
            }
            cr_assert_lt(tr->n, 8, "too many events");
            rec *r = &tr->ev[tr->n++];
            memset(r, 0, sizeof *r);
            r->type = ev.type;
            memcpy(r->out, ev.out, ev.out_len);
            r->out_len = ev.out_len;
            if (ev.type == TT_S5_EV_SEND) {
                cr_assert_gt(n, 0, "SEND without consuming a byte");
            } else if (ev.type == TT_S5_EV_AUTH) {
                cr_assert_not_null(ev.user);
                cr_assert_not_null(ev.pass);
                strcpy(r->user, ev.user);
                strcpy(r->pass, ev.pass);
                r->auth_reply_len = tt_socks5_auth_result(&s, auth_ok, r->auth_reply);
                if (!auth_ok) {
                    tr->stopped = true;
                    tr->consumed = off;
                }
            } else {
                /* REQUEST or FAIL ends the session. */
                if (ev.type == TT_S5_EV_FAIL) {
                    cr_assert_not_null(ev.why, "FAIL without a reason");
                    r->why = ev.why;
                } else {
                    r->target = ev.target;
                }
                tr->stopped = true;
                tr->consumed = off;
            }
            if (off == end)
                break;
        }
        start = end;
    }
    if (!tr->stopped)
        tr->consumed = len;
}

static void run_whole(const uint8_t *in, size_t len, bool require_auth, bool auth_ok,
                      transcript *tr)
{
    run_cuts(in, len, require_auth, auth_ok, NULL, 0, tr);
}

static void rec_assert_eq(const rec *a, const rec *b, const char *how)
{
    cr_assert_eq(a->type, b->type, "%s: event type %d vs %d", how, a->type, b->type);
    cr_assert_eq(a->out_len, b->out_len, "%s: out_len differs", how);
    cr_assert_arr_eq(a->out, b->out, a->out_len, "%s: output differs", how);
    cr_assert_str_eq(a->user, b->user, "%s: user differs", how);
    cr_assert_str_eq(a->pass, b->pass, "%s: pass differs", how);
    cr_assert_eq(a->auth_reply_len, b->auth_reply_len, "%s", how);
    cr_assert_arr_eq(a->auth_reply, b->auth_reply, a->auth_reply_len, "%s", how);
    cr_assert_eq(a->why == NULL, b->why == NULL, "%s: why differs", how);
    if (a->why != NULL)
        cr_assert_str_eq(a->why, b->why, "%s: why differs", how);
    cr_assert_arr_eq(&a->target, &b->target, sizeof a->target, "%s: target differs", how);
}

static void transcript_assert_eq(const transcript *a, const transcript *b, const char *how)
{
    cr_assert_eq(a->n, b->n, "%s: %zu events vs %zu", how, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        rec_assert_eq(&a->ev[i], &b->ev[i], how);
    cr_assert_eq(a->consumed, b->consumed, "%s: consumed %zu vs %zu", how, a->consumed,
                 b->consumed);
    cr_assert_eq(a->stopped, b->stopped, "%s", how);
}

/* Runs IN whole, then split in two at every offset, then one byte at a time,
 * then in chunks of 2..7 bytes, and asserts that every run gives the same
 * transcript as the whole run, which is returned in TR. */
static void run_all_splits(const uint8_t *in, size_t len, bool require_auth, bool auth_ok,
                           transcript *tr)
{
    run_whole(in, len, require_auth, auth_ok, tr);

    char how[64];
    transcript other;
    for (size_t k = 0; k <= len; k++) {
        run_cuts(in, len, require_auth, auth_ok, &k, 1, &other);
        snprintf(how, sizeof how, "split at %zu", k);
        transcript_assert_eq(tr, &other, how);
    }

    size_t cuts[600];
    cr_assert_lt(len, sizeof cuts / sizeof cuts[0]);
    for (size_t step = 1; step <= 7; step++) {
        size_t n = 0;
        for (size_t k = step; k < len; k += step)
            cuts[n++] = k;
        run_cuts(in, len, require_auth, auth_ok, cuts, n, &other);
        snprintf(how, sizeof how, "chunks of %zu", step);
        transcript_assert_eq(tr, &other, how);
    }
}

static void assert_out(const rec *r, const uint8_t *want, size_t want_len)
{
    cr_assert_eq(r->out_len, want_len, "out_len %zu, want %zu", r->out_len, want_len);
    if (want_len > 0)
        cr_assert_arr_eq(r->out, want, want_len, "output bytes differ");
}

/* Concatenates the byte strings of a flow into BUF and returns the length. */
static size_t cat(uint8_t *buf, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen > 0)
        memcpy(buf, a, alen);
    if (blen > 0)
        memcpy(buf + alen, b, blen);
    return alen + blen;
}

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t greet_noauth[] = {0x05, 0x01, 0x00};
static const uint8_t greet_auth[] = {0x05, 0x01, 0x02};
static const uint8_t sel_noauth[] = {0x05, 0x00};
static const uint8_t sel_auth[] = {0x05, 0x02};
static const uint8_t sel_none[] = {0x05, 0xFF};
static const uint8_t req_v4[] = {0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x00, 0x50};
static const uint8_t req_v6[] = {0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0,    0,
                                 0,    0,    0,    0,    0,    0,    0,    0,    1, 0x01, 0xbb};
static const uint8_t req_name[] = {0x05, 0x01, 0x00, 0x03, 11,  'e', 'x', 'a',  'm',
                                   'p',  'l',  'e',  '.',  'c', 'o', 'm', 0x1f, 0x90};
static const uint8_t subneg[] = {0x01, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', 'e', 'c', 'r', 'e', 't'};

/* The reply to a refused request: code REP, bound address 0.0.0.0:0. */
static void assert_refusal(const rec *r, uint8_t rep)
{
    const uint8_t want[] = {0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(r->type, TT_S5_EV_FAIL);
    assert_out(r, want, sizeof want);
}

/* ------------------------------------------------------------------------ */
/* Valid flows                                                                */

Test(socks5, connect_ipv4)
{
    uint8_t in[64];
    size_t len = cat(in, greet_noauth, LEN(greet_noauth), req_v4, LEN(req_v4));
    transcript tr;
    run_all_splits(in, len, false, true, &tr);

    cr_assert_eq(tr.n, 2);
    cr_assert_eq(tr.ev[0].type, TT_S5_EV_SEND);
    assert_out(&tr.ev[0], sel_noauth, 2);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_REQUEST);
    cr_assert_eq(tr.ev[1].out_len, 0);
    const tt_target *t = &tr.ev[1].target;
    cr_assert_eq(t->type, TT_TARGET_IPV4);
    cr_assert_eq(t->port, 80);
    const uint8_t lo[4] = {127, 0, 0, 1};
    cr_assert_arr_eq(t->u.v4, lo, 4);
    cr_assert_eq(tr.consumed, len);
}

Test(socks5, connect_ipv6)
{
    uint8_t in[64];
    size_t len = cat(in, greet_noauth, LEN(greet_noauth), req_v6, LEN(req_v6));
    transcript tr;
    run_all_splits(in, len, false, true, &tr);

    cr_assert_eq(tr.n, 2);
    assert_out(&tr.ev[0], sel_noauth, 2);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_REQUEST);
    const tt_target *t = &tr.ev[1].target;
    cr_assert_eq(t->type, TT_TARGET_IPV6);
    cr_assert_eq(t->port, 443);
    uint8_t want[16];
    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", want), 1);
    cr_assert_arr_eq(t->u.v6, want, 16);
    cr_assert_eq(tr.consumed, len);
}

Test(socks5, connect_domain)
{
    uint8_t in[64];
    size_t len = cat(in, greet_noauth, LEN(greet_noauth), req_name, LEN(req_name));
    transcript tr;
    run_all_splits(in, len, false, true, &tr);

    cr_assert_eq(tr.n, 2);
    assert_out(&tr.ev[0], sel_noauth, 2);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_REQUEST);
    const tt_target *t = &tr.ev[1].target;
    cr_assert_eq(t->type, TT_TARGET_NAME);
    cr_assert_eq(t->port, 8080);
    cr_assert_eq(t->name_len, 11);
    cr_assert_str_eq(t->u.name, "example.com");
    cr_assert_eq(tr.consumed, len);
}

Test(socks5, greeting_alone_is_answered)
{
    transcript tr;
    run_all_splits(greet_noauth, LEN(greet_noauth), false, true, &tr);
    cr_assert_eq(tr.n, 1);
    cr_assert_eq(tr.ev[0].type, TT_S5_EV_SEND);
    assert_out(&tr.ev[0], sel_noauth, 2);
    cr_assert_not(tr.stopped);
    cr_assert_eq(tr.consumed, LEN(greet_noauth));
}

Test(socks5, greeting_picks_acceptable_method_among_many)
{
    /* Methods GSSAPI, user/pass and none: no-auth mode must pick 00 and
     * auth mode 02, whatever the order. */
    const uint8_t in[] = {0x05, 0x03, 0x01, 0x02, 0x00};
    transcript tr;
    run_all_splits(in, LEN(in), false, true, &tr);
    cr_assert_eq(tr.n, 1);
    assert_out(&tr.ev[0], sel_noauth, 2);

    run_all_splits(in, LEN(in), true, true, &tr);
    cr_assert_eq(tr.n, 1);
    assert_out(&tr.ev[0], sel_auth, 2);
}

Test(socks5, greeting_with_255_methods)
{
    uint8_t in[2 + 255];
    in[0] = 0x05;
    in[1] = 255;
    for (size_t i = 0; i < 255; i++)
        in[2 + i] = (uint8_t)(0x80 + i % 0x70);
    in[2 + 254] = 0x00;
    transcript tr;
    run_all_splits(in, sizeof in, false, true, &tr);
    cr_assert_eq(tr.n, 1);
    assert_out(&tr.ev[0], sel_noauth, 2);
    cr_assert_eq(tr.consumed, sizeof in);
}

Test(socks5, auth_success)
{
    uint8_t in[128];
    size_t len = cat(in, greet_auth, LEN(greet_auth), subneg, LEN(subneg));
    len += cat(in + len, req_name, LEN(req_name), NULL, 0);
    transcript tr;
    run_all_splits(in, len, true, true, &tr);

    cr_assert_eq(tr.n, 3);
    cr_assert_eq(tr.ev[0].type, TT_S5_EV_SEND);
    assert_out(&tr.ev[0], sel_auth, 2);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_AUTH);
    cr_assert_eq(tr.ev[1].out_len, 0);
    cr_assert_str_eq(tr.ev[1].user, "alice");
    cr_assert_str_eq(tr.ev[1].pass, "secret");
    const uint8_t ok[] = {0x01, 0x00};
    cr_assert_eq(tr.ev[1].auth_reply_len, 2);
    cr_assert_arr_eq(tr.ev[1].auth_reply, ok, 2);
    cr_assert_eq(tr.ev[2].type, TT_S5_EV_REQUEST);
    cr_assert_str_eq(tr.ev[2].target.u.name, "example.com");
    cr_assert_eq(tr.consumed, len);
}

Test(socks5, auth_failure)
{
    uint8_t in[128];
    size_t len = cat(in, greet_auth, LEN(greet_auth), subneg, LEN(subneg));
    len += cat(in + len, req_v4, LEN(req_v4), NULL, 0);
    transcript tr;
    run_all_splits(in, len, true, false, &tr);

    cr_assert_eq(tr.n, 2);
    assert_out(&tr.ev[0], sel_auth, 2);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_AUTH);
    const uint8_t refused[] = {0x01, 0x01};
    cr_assert_eq(tr.ev[1].auth_reply_len, 2);
    cr_assert_arr_eq(tr.ev[1].auth_reply, refused, 2);
    /* The request that follows is not consumed: the session is over. */
    cr_assert_eq(tr.consumed, LEN(greet_auth) + LEN(subneg));
}

Test(socks5, auth_failure_then_feed_fails)
{
    tt_socks5 s;
    tt_socks5_event ev;
    uint8_t r[2];
    tt_socks5_init(&s, true);
    cr_assert_eq(tt_socks5_feed(&s, greet_auth, LEN(greet_auth), &ev), LEN(greet_auth));
    cr_assert_eq(ev.type, TT_S5_EV_SEND);
    cr_assert_eq(tt_socks5_feed(&s, subneg, LEN(subneg), &ev), LEN(subneg));
    cr_assert_eq(ev.type, TT_S5_EV_AUTH);
    cr_assert_eq(tt_socks5_auth_result(&s, false, r), 2);
    cr_assert_eq(tt_socks5_feed(&s, req_v4, LEN(req_v4), &ev), 0);
    cr_assert_eq(ev.type, TT_S5_EV_FAIL);
    cr_assert_eq(ev.out_len, 0);
    cr_assert_not_null(ev.why);
}

Test(socks5, auth_max_length_credentials)
{
    uint8_t in[3 + 2 + 255 + 1 + 255 + 10];
    size_t len = cat(in, greet_auth, LEN(greet_auth), NULL, 0);
    char user[256], pass[256];
    memset(user, 'u', 255);
    user[255] = '\0';
    memset(pass, 'p', 255);
    pass[255] = '\0';
    in[len++] = 0x01;
    in[len++] = 255;
    memcpy(in + len, user, 255);
    len += 255;
    in[len++] = 255;
    memcpy(in + len, pass, 255);
    len += 255;
    len += cat(in + len, req_v4, LEN(req_v4), NULL, 0);
    cr_assert_eq(len, sizeof in);

    transcript tr;
    run_all_splits(in, len, true, true, &tr);
    cr_assert_eq(tr.n, 3);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_AUTH);
    cr_assert_str_eq(tr.ev[1].user, user);
    cr_assert_str_eq(tr.ev[1].pass, pass);
    cr_assert_eq(tr.ev[2].type, TT_S5_EV_REQUEST);
}

Test(socks5, max_length_domain)
{
    uint8_t in[3 + 4 + 1 + 255 + 2];
    size_t len = cat(in, greet_noauth, LEN(greet_noauth), NULL, 0);
    const uint8_t head[] = {0x05, 0x01, 0x00, 0x03, 255};
    len += cat(in + len, head, sizeof head, NULL, 0);
    char name[256];
    for (size_t i = 0; i < 255; i++)
        name[i] = (char)('a' + i % 26);
    name[255] = '\0';
    memcpy(in + len, name, 255);
    len += 255;
    in[len++] = 0xFF;
    in[len++] = 0xFF;
    cr_assert_eq(len, sizeof in);

    transcript tr;
    run_all_splits(in, len, false, true, &tr);
    cr_assert_eq(tr.n, 2);
    const tt_target *t = &tr.ev[1].target;
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_REQUEST);
    cr_assert_eq(t->type, TT_TARGET_NAME);
    cr_assert_eq(t->name_len, 255);
    cr_assert_str_eq(t->u.name, name);
    cr_assert_eq(t->port, 65535);
}

Test(socks5, nonzero_reserved_byte_is_accepted)
{
    uint8_t in[64];
    size_t len = cat(in, greet_noauth, LEN(greet_noauth), req_v4, LEN(req_v4));
    in[LEN(greet_noauth) + 2] = 0x7F;
    transcript tr;
    run_all_splits(in, len, false, true, &tr);
    cr_assert_eq(tr.n, 2);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_REQUEST);
}

Test(socks5, payload_after_request_is_not_consumed)
{
    const char payload[] = "GET / HTTP/1.0\r\n\r\n";
    uint8_t in[128];
    size_t len = cat(in, greet_noauth, LEN(greet_noauth), req_v6, LEN(req_v6));
    size_t req_end = len;
    len += cat(in + len, (const uint8_t *)payload, strlen(payload), NULL, 0);
    transcript tr;
    run_all_splits(in, len, false, true, &tr);
    cr_assert_eq(tr.n, 2);
    cr_assert_eq(tr.ev[1].type, TT_S5_EV_REQUEST);
    cr_assert_eq(tr.consumed, req_end, "consumed %zu, request ends at %zu", tr.consumed, req_end);
}

Test(socks5, feed_after_request_fails)
{
    tt_socks5 s;
    tt_socks5_event ev;
    uint8_t in[64];
    size_t len = cat(in, greet_noauth, LEN(greet_noauth), req_v4, LEN(req_v4));
    tt_socks5_init(&s, false);
    size_t n = tt_socks5_feed(&s, in, len, &ev);
    cr_assert_eq(ev.type, TT_S5_EV_SEND);
    n += tt_socks5_feed(&s, in + n, len - n, &ev);
    cr_assert_eq(ev.type, TT_S5_EV_REQUEST);
    cr_assert_eq(n, len);

    const uint8_t more[] = {0x05, 0x01, 0x00};
    cr_assert_eq(tt_socks5_feed(&s, more, sizeof more, &ev), 0);
    cr_assert_eq(ev.type, TT_S5_EV_FAIL);
    cr_assert_eq(ev.out_len, 0);
    cr_assert_not_null(ev.why);
    /* And it stays failed. */
    cr_assert_eq(tt_socks5_feed(&s, more, sizeof more, &ev), 0);
    cr_assert_eq(ev.type, TT_S5_EV_FAIL);
}

Test(socks5, feed_after_fail_fails)
{
    tt_socks5 s;
    tt_socks5_event ev;
    const uint8_t bad[] = {0x04, 0x01};
    tt_socks5_init(&s, false);
    cr_assert_eq(tt_socks5_feed(&s, bad, sizeof bad, &ev), 1);
    cr_assert_eq(ev.type, TT_S5_EV_FAIL);
    cr_assert_eq(tt_socks5_feed(&s, greet_noauth, LEN(greet_noauth), &ev), 0);
    cr_assert_eq(ev.type, TT_S5_EV_FAIL);
    cr_assert_eq(ev.out_len, 0);
}

Test(socks5, empty_feed_needs_more)
{
    tt_socks5 s;
    tt_socks5_event ev;
    tt_socks5_init(&s, false);
    cr_assert_eq(tt_socks5_feed(&s, NULL, 0, &ev), 0);
    cr_assert_eq(ev.type, TT_S5_EV_NEED_MORE);
    cr_assert_eq(tt_socks5_feed(&s, greet_noauth, 2, &ev), 2);
    cr_assert_eq(ev.type, TT_S5_EV_NEED_MORE);
    cr_assert_eq(tt_socks5_feed(&s, greet_noauth + 2, 1, &ev), 1);
    cr_assert_eq(ev.type, TT_S5_EV_SEND);
}

Test(socks5, feed_before_auth_result_fails)
{
    tt_socks5 s;
    tt_socks5_event ev;
    uint8_t r[2];
    tt_socks5_init(&s, true);
    tt_socks5_feed(&s, greet_auth, LEN(greet_auth), &ev);
    cr_assert_eq(ev.type, TT_S5_EV_SEND);
    tt_socks5_feed(&s, subneg, LEN(subneg), &ev);
    cr_assert_eq(ev.type, TT_S5_EV_AUTH);
    cr_assert_eq(tt_socks5_feed(&s, req_v4, LEN(req_v4), &ev), 0);
    cr_assert_eq(ev.type, TT_S5_EV_FAIL);
    /* The session is over: a late result has nothing to answer. */
    cr_assert_eq(tt_socks5_auth_result(&s, true, r), 0);
}

Test(socks5, auth_result_out_of_turn)
{
    tt_socks5 s;
    tt_socks5_event ev;
    uint8_t r[2];
    tt_socks5_init(&s, true);
    cr_assert_eq(tt_socks5_auth_result(&s, true, r), 0);
    cr_assert_eq(tt_socks5_feed(&s, greet_auth, LEN(greet_auth), &ev), 0);
    cr_assert_eq(ev.type, TT_S5_EV_FAIL);
}

Test(socks5, init_records_mode)
{
    tt_socks5 s;
    tt_socks5_init(&s, true);
    cr_assert(s.require_auth);
    cr_assert_eq(s.have, 0);
    tt_socks5_init(&s, false);
    cr_assert_not(s.require_auth);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */

/* Runs IN in every split and asserts that it ends in one FAIL (after EVENTS
 * - 1 other events) with output WANT, having consumed CONSUMED bytes. */
static void expect_fail(const uint8_t *in, size_t len, bool require_auth, size_t events,
                        const uint8_t *want, size_t want_len, size_t consumed)
{
    transcript tr;
    run_all_splits(in, len, require_auth, true, &tr);
    cr_assert_eq(tr.n, events, "%zu events, want %zu", tr.n, events);
    const rec *r = &tr.ev[events - 1];
    cr_assert_eq(r->type, TT_S5_EV_FAIL, "last event %d is not FAIL", r->type);
    cr_assert_not_null(r->why);
    cr_assert_gt(strlen(r->why), 0);
    assert_out(r, want, want_len);
    cr_assert_eq(tr.consumed, consumed, "consumed %zu, want %zu", tr.consumed, consumed);
}

Test(socks5, bad_greeting_version)
{
    const uint8_t s4[] = {0x04, 0x01, 0x00, 0x50, 127, 0, 0, 1, 0};
    expect_fail(s4, sizeof s4, false, 1, NULL, 0, 1);
    const char *http = "GET / HTTP/1.1\r\n";
    expect_fail((const uint8_t *)http, strlen(http), false, 1, NULL, 0, 1);
}

Test(socks5, greeting_with_zero_methods)
{
    const uint8_t in[] = {0x05, 0x00, 0x05, 0x01, 0x00};
    expect_fail(in, sizeof in, false, 1, sel_none, 2, 2);
    expect_fail(in, sizeof in, true, 1, sel_none, 2, 2);
}

Test(socks5, no_acceptable_method)
{
    /* A no-auth server offered only user/pass and GSSAPI. */
    const uint8_t only_auth[] = {0x05, 0x02, 0x01, 0x02};
    expect_fail(only_auth, sizeof only_auth, false, 1, sel_none, 2, 4);
    /* An auth server offered only no-auth. */
    expect_fail(greet_noauth, LEN(greet_noauth), true, 1, sel_none, 2, 3);
}

/* Greeting, then a request of which only the first REQ_LEN bytes matter. */
static size_t with_greeting(uint8_t *buf, const uint8_t *req, size_t req_len)
{
    return cat(buf, greet_noauth, LEN(greet_noauth), req, req_len);
}

/* Runs a greeting followed by REQ in every split and asserts that the
 * request is refused with code REP after its first AT bytes. */
static void expect_refusal(const uint8_t *req, size_t req_len, uint8_t rep, size_t at)
{
    uint8_t in[600];
    size_t len = with_greeting(in, req, req_len);
    const uint8_t want[] = {0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    expect_fail(in, len, false, 2, want, sizeof want, LEN(greet_noauth) + at);

    transcript tr;
    run_whole(in, len, false, true, &tr);
    assert_out(&tr.ev[0], sel_noauth, 2);
    assert_refusal(&tr.ev[1], rep);
}

Test(socks5, bind_is_refused)
{
    const uint8_t req[] = {0x05, 0x02, 0x00, 0x01, 10, 0, 0, 1, 0x00, 0x50};
    expect_refusal(req, sizeof req, TT_S5_REP_CMD_UNSUPPORTED, 2);
}

Test(socks5, udp_associate_is_refused)
{
    const uint8_t req[] = {0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00};
    expect_refusal(req, sizeof req, TT_S5_REP_CMD_UNSUPPORTED, 2);
}

Test(socks5, unknown_command_is_refused)
{
    const uint8_t zero[] = {0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x00, 0x50};
    expect_refusal(zero, sizeof zero, TT_S5_REP_CMD_UNSUPPORTED, 2);
    const uint8_t nine[] = {0x05, 0x09, 0x00, 0x01, 10, 0, 0, 1, 0x00, 0x50};
    expect_refusal(nine, sizeof nine, TT_S5_REP_CMD_UNSUPPORTED, 2);
}

Test(socks5, unknown_address_type_is_refused)
{
    /* The refusal comes right after the type byte: with an unknown type the
     * rest of the request has no known length. */
    const uint8_t two[] = {0x05, 0x01, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8};
    expect_refusal(two, sizeof two, TT_S5_REP_ATYP_UNSUPPORTED, 4);
    const uint8_t five[] = {0x05, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8};
    expect_refusal(five, sizeof five, TT_S5_REP_ATYP_UNSUPPORTED, 4);
    const uint8_t zero[] = {0x05, 0x01, 0x00, 0x00};
    expect_refusal(zero, sizeof zero, TT_S5_REP_ATYP_UNSUPPORTED, 4);
}

Test(socks5, empty_domain_is_refused)
{
    const uint8_t req[] = {0x05, 0x01, 0x00, 0x03, 0x00, 0x00, 0x50};
    expect_refusal(req, sizeof req, TT_S5_REP_GENERAL, 5);
}

Test(socks5, nul_in_domain_is_refused)
{
    const uint8_t req[] = {0x05, 0x01, 0x00, 0x03, 5, 'a', 'b', 0, 'c', 'd', 0x00, 0x50, 'x'};
    expect_refusal(req, sizeof req, TT_S5_REP_GENERAL, 12);
}

Test(socks5, bad_request_version_is_refused)
{
    const uint8_t req[] = {0x04, 0x01, 0x00, 0x01, 10, 0, 0, 1, 0x00, 0x50};
    expect_refusal(req, sizeof req, TT_S5_REP_GENERAL, 1);
}

Test(socks5, bind_with_unknown_type_reports_command)
{
    /* The command byte comes first, so it decides the code. */
    const uint8_t req[] = {0x05, 0x02, 0x00, 0x09};
    expect_refusal(req, sizeof req, TT_S5_REP_CMD_UNSUPPORTED, 2);
}

/* Runs the auth greeting followed by SUB in every split and asserts that the
 * subnegotiation fails after its first AT bytes with output WANT. */
static void expect_auth_fail(const uint8_t *sub, size_t sub_len, const uint8_t *want,
                             size_t want_len, size_t at)
{
    uint8_t in[600];
    size_t len = cat(in, greet_auth, LEN(greet_auth), sub, sub_len);
    expect_fail(in, len, true, 2, want, want_len, LEN(greet_auth) + at);
}

static const uint8_t auth_refused[] = {0x01, 0x01};

Test(socks5, auth_empty_username)
{
    const uint8_t sub[] = {0x01, 0x00, 0x04, 'p', 'a', 's', 's'};
    expect_auth_fail(sub, sizeof sub, auth_refused, 2, 2);
}

Test(socks5, auth_empty_password)
{
    const uint8_t sub[] = {0x01, 0x04, 'u', 's', 'e', 'r', 0x00, 0x05, 0x01};
    expect_auth_fail(sub, sizeof sub, auth_refused, 2, 7);
}

Test(socks5, auth_wrong_version)
{
    /* A client answering method 02 with a SOCKS5 request is lost: no reply. */
    const uint8_t sub[] = {0x05, 0x04, 'u', 's', 'e', 'r', 0x04, 'p', 'a', 's', 's'};
    expect_auth_fail(sub, sizeof sub, NULL, 0, 1);
    const uint8_t zero[] = {0x00, 0x01, 'u', 0x01, 'p'};
    expect_auth_fail(zero, sizeof zero, NULL, 0, 1);
}

Test(socks5, auth_nul_in_credentials)
{
    const uint8_t in_user[] = {0x01, 0x03, 'a', 0, 'b', 0x01, 'p'};
    expect_auth_fail(in_user, sizeof in_user, auth_refused, 2, sizeof in_user);
    const uint8_t in_pass[] = {0x01, 0x01, 'u', 0x03, 'p', 'w', 0, 0x05};
    expect_auth_fail(in_pass, sizeof in_pass, auth_refused, 2, sizeof in_pass - 1);
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                    */

Test(socks5, reply_without_bound_address)
{
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    memset(out, 0xAA, sizeof out);
    const uint8_t want[] = {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(tt_socks5_reply(TT_S5_REP_OK, NULL, out), 10);
    cr_assert_arr_eq(out, want, sizeof want);

    const uint8_t refused[] = {0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(tt_socks5_reply(TT_S5_REP_REFUSED, NULL, out), 10);
    cr_assert_arr_eq(out, refused, sizeof refused);
}

Test(socks5, reply_ipv4)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(8080);
    cr_assert_eq(inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr), 1);
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    const uint8_t want[] = {0x05, 0x00, 0x00, 0x01, 192, 0, 2, 7, 0x1f, 0x90};
    cr_assert_eq(tt_socks5_reply(TT_S5_REP_OK, (const struct sockaddr *)&sin, out), 10);
    cr_assert_arr_eq(out, want, sizeof want);
}

Test(socks5, reply_ipv6)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    const uint8_t want[] = {0x05, 0x04, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0,    0,
                            0,    0,    0,    0,    0,    0,    0,    0,    1, 0x01, 0xbb};
    cr_assert_eq(tt_socks5_reply(TT_S5_REP_HOST_UNREACH, (const struct sockaddr *)&sin6, out),
                 TT_SOCKS5_REPLY_MAX);
    cr_assert_arr_eq(out, want, sizeof want);
}

Test(socks5, reply_ipv4_mapped_stays_ipv6)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(1);
    cr_assert_eq(inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr), 1);
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    const uint8_t want[] = {0x05, 0x00, 0x00, 0x04, 0,    0,  0, 0, 0, 0, 0,
                            0,    0,    0,    0xff, 0xff, 10, 1, 2, 3, 0, 0x01};
    cr_assert_eq(tt_socks5_reply(TT_S5_REP_OK, (const struct sockaddr *)&sin6, out), 22);
    cr_assert_arr_eq(out, want, sizeof want);
}

Test(socks5, reply_from_sockaddr_storage)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(65535);
    sin.sin_addr.s_addr = htonl(0x01020304);
    memcpy(&ss, &sin, sizeof sin);
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    const uint8_t want[] = {0x05, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0xff, 0xff};
    cr_assert_eq(tt_socks5_reply(TT_S5_REP_OK, (const struct sockaddr *)&ss, out), 10);
    cr_assert_arr_eq(out, want, sizeof want);
}

Test(socks5, rep_str_names_every_code)
{
    cr_assert_str_eq(tt_socks5_rep_str(0x00), "succeeded");
    cr_assert_str_eq(tt_socks5_rep_str(0x01), "general failure");
    cr_assert_str_eq(tt_socks5_rep_str(0x02), "not allowed by ruleset");
    cr_assert_str_eq(tt_socks5_rep_str(0x03), "network unreachable");
    cr_assert_str_eq(tt_socks5_rep_str(0x04), "host unreachable");
    cr_assert_str_eq(tt_socks5_rep_str(0x05), "connection refused");
    cr_assert_str_eq(tt_socks5_rep_str(0x06), "TTL expired");
    cr_assert_str_eq(tt_socks5_rep_str(0x07), "command not supported");
    cr_assert_str_eq(tt_socks5_rep_str(0x08), "address type not supported");
    cr_assert_str_eq(tt_socks5_rep_str(0x09), "unknown");
    cr_assert_str_eq(tt_socks5_rep_str(0xFF), "unknown");
}
