/* Tests of the sans-I/O SOCKS5 client codec: golden bytes of every message
 * it sends, every reply shape and error, and the same answers fed in every
 * split giving the same results. */
#include <criterion/criterion.h>

#include <string.h>

#include "codec/socks5.h"
#include "codec/socks5c.h"

/* What one exchange did: the messages sent after the greeting, the end, and
 * the bytes consumed. */
typedef struct trace {
    uint8_t sent[2][TT_SOCKS5C_MSG_MAX];
    size_t sent_len[2];
    int n_sent;
    enum tt_socks5c_result end; /* MORE while undecided */
    int rep;
    const char *why;
    size_t consumed;
} trace;

/* Feeds IN in pieces of at most STEP bytes (0: one piece). */
static void drive(const tt_target *t, const char *user, const char *pass, const uint8_t *in,
                  size_t n, size_t step, trace *tr)
{
    tt_socks5c s;
    uint8_t out[TT_SOCKS5C_MSG_MAX];
    memset(tr, 0, sizeof *tr);
    tr->end = TT_S5C_MORE;
    cr_assert_eq(tt_socks5c_start(&s, t, user, pass, out), 3);
    size_t off = 0;
    while (off < n) {
        size_t chunk = step && step < n - off ? step : n - off;
        enum tt_socks5c_result res;
        size_t out_len;
        int rep = -1;
        const char *why = NULL;
        size_t used = tt_socks5c_feed(&s, in + off, chunk, &res, out, &out_len, &rep, &why);
        off += used;
        if (res == TT_S5C_SEND) {
            cr_assert_lt(tr->n_sent, 2);
            memcpy(tr->sent[tr->n_sent], out, out_len);
            tr->sent_len[tr->n_sent++] = out_len;
        } else if (res == TT_S5C_DONE || res == TT_S5C_FAIL) {
            tr->end = res;
            tr->rep = rep;
            tr->why = why;
            break;
        }
    }
    tr->consumed = off;
}

/* Every split of IN gives the same trace as one piece. */
static void same_in_every_split(const tt_target *t, const char *user, const char *pass,
                                const uint8_t *in, size_t n, trace *whole)
{
    drive(t, user, pass, in, n, 0, whole);
    for (size_t step = 1; step < n; step++) {
        trace tr;
        drive(t, user, pass, in, n, step, &tr);
        cr_assert_eq(tr.end, whole->end, "step %zu", step);
        cr_assert_eq(tr.rep, whole->rep, "step %zu", step);
        cr_assert_eq(tr.consumed, whole->consumed, "step %zu", step);
        cr_assert_eq(tr.n_sent, whole->n_sent, "step %zu", step);
        for (int i = 0; i < tr.n_sent; i++)
            cr_assert_arr_eq(tr.sent[i], whole->sent[i], tr.sent_len[i]);
    }
}

Test(socks5c, greeting_offers_only_what_was_configured)
{
    tt_target t;
    tt_target_set(&t, "127.0.0.1", 80);
    tt_socks5c s;
    uint8_t out[TT_SOCKS5C_MSG_MAX];
    cr_assert_eq(tt_socks5c_start(&s, &t, NULL, NULL, out), 3);
    cr_assert_arr_eq(out, ((uint8_t[]){5, 1, 0}), 3);
    cr_assert_eq(tt_socks5c_start(&s, &t, "u", "p", out), 3);
    cr_assert_arr_eq(out, ((uint8_t[]){5, 1, 2}), 3);
}

Test(socks5c, connect_ipv4_without_login)
{
    tt_target t;
    tt_target_set(&t, "127.0.0.1", 1080);
    const uint8_t in[] = {5, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x12, 0x34, 'h', 'i'};
    trace tr;
    same_in_every_split(&t, NULL, NULL, in, sizeof in, &tr);
    cr_assert_eq(tr.n_sent, 1);
    const uint8_t req[] = {5, 1, 0, 1, 127, 0, 0, 1, 0x04, 0x38};
    cr_assert_eq(tr.sent_len[0], sizeof req);
    cr_assert_arr_eq(tr.sent[0], req, sizeof req);
    cr_assert_eq(tr.end, TT_S5C_DONE);
    cr_assert_eq(tr.rep, 0);
    /* "hi" belongs to the stream. */
    cr_assert_eq(tr.consumed, sizeof in - 2);
}

Test(socks5c, connect_name_and_ipv6_replies)
{
    tt_target t;
    tt_target_set(&t, "example.com", 443);
    uint8_t in[2 + 4 + 1 + 9 + 2] = {5, 0, 5, 0, 0, 3, 9};
    memcpy(in + 7, "localhost", 9);
    trace tr;
    same_in_every_split(&t, NULL, NULL, in, sizeof in, &tr);
    const uint8_t req[] = {5,   1,   0,   3,   11,  'e', 'x', 'a', 'm',
                           'p', 'l', 'e', '.', 'c', 'o', 'm', 1,   187};
    cr_assert_eq(tr.sent_len[0], sizeof req);
    cr_assert_arr_eq(tr.sent[0], req, sizeof req);
    cr_assert_eq(tr.end, TT_S5C_DONE);
    cr_assert_eq(tr.consumed, sizeof in);

    tt_target_set(&t, "::1", 22);
    uint8_t in6[2 + 4 + 16 + 2] = {5, 0, 5, 0, 0, 4};
    same_in_every_split(&t, NULL, NULL, in6, sizeof in6, &tr);
    cr_assert_eq(tr.sent_len[0], 4 + 16 + 2);
    cr_assert_eq(tr.sent[0][3], 4);
    cr_assert_eq(tr.sent[0][19], 1);
    cr_assert_eq(tr.end, TT_S5C_DONE);
    cr_assert_eq(tr.consumed, sizeof in6);
}

Test(socks5c, login_then_connect)
{
    tt_target t;
    tt_target_set(&t, "10.1.2.3", 80);
    const uint8_t in[] = {5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    trace tr;
    same_in_every_split(&t, "alice", "pw", in, sizeof in, &tr);
    cr_assert_eq(tr.n_sent, 2);
    const uint8_t login[] = {1, 5, 'a', 'l', 'i', 'c', 'e', 2, 'p', 'w'};
    cr_assert_eq(tr.sent_len[0], sizeof login);
    cr_assert_arr_eq(tr.sent[0], login, sizeof login);
    cr_assert_eq(tr.sent[1][0], 5);
    cr_assert_eq(tr.end, TT_S5C_DONE);
    cr_assert_eq(tr.rep, 0);
}

Test(socks5c, refusals_and_broken_replies)
{
    tt_target t;
    tt_target_set(&t, "10.1.2.3", 80);
    trace tr;
    static const struct {
        const char *user;
        uint8_t in[12];
        size_t n;
        enum tt_socks5c_result end;
        int rep;
    } cases[] = {
        {NULL, {5, 0xFF}, 2, TT_S5C_FAIL, TT_S5_REP_NOT_ALLOWED},
        {NULL, {5, 2}, 2, TT_S5C_FAIL, TT_S5_REP_NOT_ALLOWED}, /* a login we did not offer */
        {"u", {5, 0}, 2, TT_S5C_FAIL, TT_S5_REP_NOT_ALLOWED},  /* no login where we want one */
        {"u", {5, 2, 1, 1}, 4, TT_S5C_FAIL, TT_S5_REP_NOT_ALLOWED},
        {NULL, {4, 0}, 2, TT_S5C_FAIL, TT_S5_REP_GENERAL},
        {NULL, {'H', 'T', 'T', 'P'}, 4, TT_S5C_FAIL, TT_S5_REP_GENERAL},
        {NULL, {5, 0, 5, 0, 1, 1, 0}, 7, TT_S5C_FAIL, TT_S5_REP_GENERAL}, /* RSV not 0 */
        {NULL, {5, 0, 5, 0, 0, 2, 0}, 7, TT_S5C_FAIL, TT_S5_REP_GENERAL}, /* ATYP 2 */
        {NULL, {5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0}, 12, TT_S5C_DONE, TT_S5_REP_REFUSED},
        {NULL, {5, 0, 5, 0, 0, 1, 1}, 7, TT_S5C_MORE, 0}, /* cut short: still waiting */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        same_in_every_split(&t, cases[i].user, cases[i].user ? "p" : NULL, cases[i].in, cases[i].n,
                            &tr);
        cr_assert_eq(tr.end, cases[i].end, "case %zu", i);
        if (tr.end != TT_S5C_MORE)
            cr_assert_eq(tr.rep, cases[i].rep, "case %zu", i);
        if (tr.end == TT_S5C_FAIL)
            cr_assert_not_null(tr.why, "case %zu", i);
    }
}

Test(socks5c, nothing_after_the_end)
{
    tt_target t;
    tt_target_set(&t, "10.1.2.3", 80);
    tt_socks5c s;
    uint8_t out[TT_SOCKS5C_MSG_MAX];
    tt_socks5c_start(&s, &t, NULL, NULL, out);
    enum tt_socks5c_result res;
    size_t out_len;
    int rep;
    const char *why;
    const uint8_t bad[] = {5, 0xFF, 1, 2, 3};
    cr_assert_eq(tt_socks5c_feed(&s, bad, sizeof bad, &res, out, &out_len, &rep, &why), 2);
    cr_assert_eq(res, TT_S5C_FAIL);
    cr_assert_eq(tt_socks5c_feed(&s, bad + 2, 3, &res, out, &out_len, &rep, &why), 0);
    cr_assert_eq(res, TT_S5C_FAIL);
}

Test(socks5c, a_target_no_proxy_could_take_is_refused_at_start)
{
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = TT_TARGET_NAME; /* an empty name */
    tt_socks5c s;
    uint8_t out[TT_SOCKS5C_MSG_MAX];
    cr_assert_eq(tt_socks5c_start(&s, &t, NULL, NULL, out), 0);
}
