/* The DNS over HTTPS codec (codec/doh.h) against a real HTTP/2 server: an
 * nghttp2 server session in this process, the bytes of both passed by hand
 * (no sockets), so each test sets exactly what the resolver says. Requests
 * are checked header by header; answers, refusals (status, type, length,
 * resets), the resolver's stream limit, our own bound, GOAWAY and garbage
 * are each one test. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "codec/doh.h"

#define REQ_MAX 64

/* One request as the server saw it. */
typedef struct req {
    int32_t id;
    char method[16], scheme[16], authority[64], path[64], ctype[64], accept[64], clen[16];
    uint8_t body[512];
    size_t body_len;
    bool complete; /* END_STREAM seen */
    bool closed;
    uint32_t close_code;
    /* The response, when the test sends one. */
    const uint8_t *resp;
    size_t resp_len, resp_off;
} req;

typedef struct server {
    nghttp2_session *s;
    req reqs[REQ_MAX];
    unsigned nreqs;
    unsigned open, max_open; /* streams open at once, and the most seen */
} server;

static server srv;
static tt_doh *doh;

static req *find(int32_t id)
{
    for (unsigned i = 0; i < srv.nreqs; i++)
        if (srv.reqs[i].id == id)
            return &srv.reqs[i];
    return NULL;
}

static int s_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        cr_assert_lt(srv.nreqs, REQ_MAX);
        req *r = &srv.reqs[srv.nreqs++];
        memset(r, 0, sizeof *r);
        r->id = f->hd.stream_id;
        srv.open++;
        if (srv.open > srv.max_open)
            srv.max_open = srv.open;
    }
    return 0;
}

static void copy(char *dst, size_t cap, const uint8_t *v, size_t len)
{
    snprintf(dst, cap, "%.*s", (int)len, (const char *)v);
}

static int s_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    (void)ud;
    req *r = find(f->hd.stream_id);
    if (r == NULL)
        return 0;
    struct {
        const char *n;
        char *dst;
        size_t cap;
    } map[] = {
        {":method", r->method, sizeof r->method},          {":scheme", r->scheme, sizeof r->scheme},
        {":authority", r->authority, sizeof r->authority}, {":path", r->path, sizeof r->path},
        {"content-type", r->ctype, sizeof r->ctype},       {"accept", r->accept, sizeof r->accept},
        {"content-length", r->clen, sizeof r->clen},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i].n) == nlen && memcmp(map[i].n, name, nlen) == 0)
            copy(map[i].dst, map[i].cap, value, vlen);
    return 0;
}

static int s_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                  void *ud)
{
    (void)s;
    (void)flags;
    (void)ud;
    req *r = find(id);
    cr_assert_not_null(r);
    cr_assert_leq(r->body_len + len, sizeof r->body);
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return 0;
}

static int s_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    (void)ud;
    req *r = find(f->hd.stream_id);
    if (r != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS))
        r->complete = true;
    return 0;
}

static int s_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)s;
    (void)ud;
    req *r = find(id);
    if (r != NULL) {
        r->closed = true;
        r->close_code = code;
        srv.open--;
    }
    return 0;
}

/* The server, with its SETTINGS (MAX_CONCURRENT_STREAMS = MAX_STREAMS,
 * none when 0) queued. */
static void server_start(uint32_t max_streams)
{
    memset(&srv, 0, sizeof srv);
    nghttp2_session_callbacks *cb;
    cr_assert_eq(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, s_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, s_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, s_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, s_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, s_close);
    cr_assert_eq(nghttp2_session_server_new(&srv.s, cb, NULL), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry e = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams};
    cr_assert_eq(nghttp2_submit_settings(srv.s, NGHTTP2_FLAG_NONE, &e, max_streams ? 1 : 0), 0);
}

static void client_start(const char *path, unsigned max_streams, size_t max_answer)
{
    tt_doh_cfg cfg = {.authority = "dns.example:8443",
                      .path = path,
                      .max_streams = max_streams,
                      .max_answer = max_answer};
    const char *why = NULL;
    cr_assert_eq(tt_doh_new(&cfg, &doh, &why), 0, "%s", why ? why : "");
}

static void fini(void)
{
    tt_doh_free(doh);
    doh = NULL;
    nghttp2_session_del(srv.s);
    srv.s = NULL;
}

/* Passes bytes both ways until neither side has any. Returns the
 * client's feed result (0, or -EPROTO with *WHY). */
static int exchange(const char **why)
{
    for (;;) {
        bool moved = false;
        uint8_t buf[300]; /* small: output comes in several pieces */
        size_t n;
        while ((n = tt_doh_output(doh, buf, sizeof buf)) > 0) {
            cr_assert_eq(nghttp2_session_mem_recv(srv.s, buf, n), (ssize_t)n);
            moved = true;
        }
        const uint8_t *p;
        ssize_t m;
        while ((m = nghttp2_session_mem_send(srv.s, &p)) > 0) {
            int rc = tt_doh_feed(doh, p, (size_t)m, why);
            if (rc != 0)
                return rc;
            moved = true;
        }
        if (!moved)
            return 0;
    }
}

static void pass(void)
{
    const char *why = NULL;
    cr_assert_eq(exchange(&why), 0, "%s", why ? why : "");
}

static ssize_t s_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    req *r = src->ptr;
    size_t n = r->resp_len - r->resp_off;
    if (n > len)
        n = len;
    memcpy(buf, r->resp + r->resp_off, n);
    r->resp_off += n;
    if (r->resp_off == r->resp_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* nghttp2's header type takes mutable bytes that it never writes. */
static uint8_t *u8(const char *text)
{
    return (uint8_t *)(uintptr_t)text;
}

/* The server answers R with STATUS, content-type CTYPE (NULL: none) and
 * BODY. */
static void respond(req *r, const char *status, const char *ctype, const void *body, size_t len)
{
    nghttp2_nv nv[2] = {
        {(uint8_t *)":status", u8(status), 7, strlen(status), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", u8(ctype), 12, ctype ? strlen(ctype) : 0, NGHTTP2_NV_FLAG_NONE},
    };
    r->resp = body;
    r->resp_len = len;
    nghttp2_data_provider dp = {.source.ptr = r, .read_callback = s_read};
    cr_assert_eq(nghttp2_submit_response(srv.s, r->id, nv, ctype ? 2 : 1, &dp), 0);
}

/* Answers request R with its own body reversed, a stand-in for a DNS
 * answer that the test can tell from the query. */
static uint8_t rev[REQ_MAX][512];
static void respond_reversed(req *r)
{
    uint8_t *out = rev[r - srv.reqs];
    for (size_t i = 0; i < r->body_len; i++)
        out[i] = r->body[r->body_len - 1 - i];
    respond(r, "200", TT_DOH_MEDIA_TYPE, out, r->body_len);
}

static void query(const char *text)
{
    cr_assert_eq(tt_doh_query(doh, (const uint8_t *)text, strlen(text)), 0);
}

/* The next event must be of KIND; returns it. */
static tt_doh_event next(enum tt_doh_event_kind kind)
{
    tt_doh_event ev;
    cr_assert(tt_doh_next(doh, &ev), "no event");
    cr_assert_eq(ev.kind, kind, "event %d (%s)", ev.kind, ev.why ? ev.why : "");
    return ev;
}

TestSuite(doh, .fini = fini);

Test(doh, a_query_is_a_post_of_the_dns_message_and_the_200_body_its_answer)
{
    server_start(100);
    client_start(NULL, 0, 0);
    query("\x12\x34query-bytes");
    pass();
    cr_assert_eq(srv.nreqs, 1);
    req *r = &srv.reqs[0];
    cr_assert(r->complete);
    cr_assert_str_eq(r->method, "POST");
    cr_assert_str_eq(r->scheme, "https");
    cr_assert_str_eq(r->authority, "dns.example:8443");
    cr_assert_str_eq(r->path, "/dns-query");
    cr_assert_str_eq(r->ctype, "application/dns-message");
    cr_assert_str_eq(r->accept, "application/dns-message");
    cr_assert_str_eq(r->clen, "13");
    cr_assert_eq(r->body_len, 13);
    cr_assert_arr_eq(r->body, "\x12\x34query-bytes", 13);
    cr_assert_eq(tt_doh_outstanding(doh), 1);

    respond(r, "200", "application/dns-message", "\x12\x34the-answer", 12);
    pass();
    tt_doh_event ev = next(TT_DOH_ANSWER);
    cr_assert_eq(ev.len, 12);
    cr_assert_arr_eq(ev.msg, "\x12\x34the-answer", 12);
    cr_assert_not(tt_doh_next(doh, &ev));
    cr_assert_eq(tt_doh_outstanding(doh), 0);
    cr_assert(tt_doh_accepting(doh));
    cr_assert_not(tt_doh_done(doh), "an idle connection stays");
}

Test(doh, the_path_is_the_one_configured_and_the_type_may_have_parameters)
{
    server_start(100);
    client_start("/resolve?x=1", 0, 0);
    query("q");
    pass();
    cr_assert_str_eq(srv.reqs[0].path, "/resolve?x=1");
    respond(&srv.reqs[0], "200", "Application/DNS-Message; charset=x", "a", 1);
    pass();
    cr_assert_eq(next(TT_DOH_ANSWER).len, 1);
}

Test(doh, many_queries_in_flight_keep_to_the_resolvers_stream_limit)
{
    server_start(3);
    client_start(NULL, 0, 0);
    pass(); /* the server's SETTINGS reach the client first */
    char q[REQ_MAX][16];
    for (int i = 0; i < 20; i++) {
        snprintf(q[i], sizeof q[i], "query-%02d", i);
        query(q[i]);
    }
    unsigned answered = 0;
    for (int round = 0; round < 40 && answered < 20; round++) {
        pass();
        cr_assert_leq(srv.max_open, 3, "the resolver's limit was broken: %u open", srv.max_open);
        for (unsigned i = 0; i < srv.nreqs; i++)
            if (srv.reqs[i].complete && srv.reqs[i].resp == NULL)
                respond_reversed(&srv.reqs[i]);
        pass();
        tt_doh_event ev;
        while (tt_doh_next(doh, &ev)) {
            cr_assert_eq(ev.kind, TT_DOH_ANSWER);
            cr_assert_eq(ev.len, 8);
            /* "query-NN" reversed is "NN-yreuq": an answer to one of the
             * queries (streams may finish in any order). */
            cr_assert_arr_eq(ev.msg + 2, "-yreuq", 6);
            answered++;
        }
    }
    cr_assert_eq(answered, 20);
    cr_assert_eq(srv.max_open, 3, "the limit was used");
    cr_assert_eq(tt_doh_outstanding(doh), 0);
}

Test(doh, queries_past_the_bound_are_refused_not_queued)
{
    server_start(0);
    client_start(NULL, 4, 0);
    for (int i = 0; i < 4; i++)
        query("q");
    cr_assert_eq(tt_doh_query(doh, (const uint8_t *)"q", 1), -ENOBUFS);
    cr_assert_eq(tt_doh_query(doh, (const uint8_t *)"", 0), -EMSGSIZE);
    static uint8_t big[65536];
    cr_assert_eq(tt_doh_query(doh, big, sizeof big), -EMSGSIZE);
    pass();
    respond(&srv.reqs[0], "200", TT_DOH_MEDIA_TYPE, "a", 1);
    pass();
    next(TT_DOH_ANSWER);
    cr_assert_eq(tt_doh_query(doh, (const uint8_t *)"q", 1), 0, "room again");
}

Test(doh, an_error_status_fails_that_query_only)
{
    server_start(100);
    client_start(NULL, 0, 0);
    query("a");
    query("b");
    pass();
    respond(&srv.reqs[0], "404", "text/html", "<html>not here</html>", 21);
    respond(&srv.reqs[1], "200", TT_DOH_MEDIA_TYPE, "B", 1);
    pass();
    tt_doh_event ev = next(TT_DOH_FAILED);
    cr_assert_str_eq(ev.why, "the resolver answered HTTP status 404");
    ev = next(TT_DOH_ANSWER);
    cr_assert_arr_eq(ev.msg, "B", 1);
    cr_assert(tt_doh_accepting(doh));
}

Test(doh, another_content_type_or_none_or_an_empty_body_is_no_answer)
{
    server_start(100);
    client_start(NULL, 0, 0);
    query("a");
    query("b");
    query("c");
    query("d");
    pass();
    respond(&srv.reqs[0], "200", "text/plain", "x", 1);
    respond(&srv.reqs[1], "200", NULL, "x", 1);
    respond(&srv.reqs[2], "200", TT_DOH_MEDIA_TYPE, "", 0);
    respond(&srv.reqs[3], "200", "application/dns-messagex", "x", 1);
    pass();
    cr_assert_str_eq(next(TT_DOH_FAILED).why,
                     "the answer's content-type is not application/dns-message");
    cr_assert_str_eq(next(TT_DOH_FAILED).why,
                     "the answer's content-type is not application/dns-message");
    cr_assert_str_eq(next(TT_DOH_FAILED).why, "the answer is empty");
    cr_assert_str_eq(next(TT_DOH_FAILED).why,
                     "the answer's content-type is not application/dns-message");
}

Test(doh, an_answer_longer_than_the_bound_is_cut_off_with_a_reset)
{
    server_start(100);
    client_start(NULL, 0, 100);
    query("a");
    query("b");
    pass();
    static uint8_t big[101], fits[100];
    respond(&srv.reqs[0], "200", TT_DOH_MEDIA_TYPE, big, sizeof big);
    respond(&srv.reqs[1], "200", TT_DOH_MEDIA_TYPE, fits, sizeof fits);
    pass();
    /* The second closes first: the first ends when our reset is sent. */
    cr_assert_eq(next(TT_DOH_ANSWER).len, 100);
    cr_assert_str_eq(next(TT_DOH_FAILED).why, "the answer is longer than 100 bytes");
    cr_assert(tt_doh_accepting(doh), "the connection goes on");
}

Test(doh, a_stream_the_resolver_resets_is_a_failed_query)
{
    server_start(100);
    client_start(NULL, 0, 0);
    query("a");
    pass();
    cr_assert_eq(
        nghttp2_submit_rst_stream(srv.s, NGHTTP2_FLAG_NONE, srv.reqs[0].id, NGHTTP2_INTERNAL_ERROR),
        0);
    pass();
    cr_assert_str_eq(next(TT_DOH_FAILED).why, "the stream was reset (INTERNAL_ERROR)");
    cr_assert(tt_doh_accepting(doh));
}

Test(doh, goaway_ends_the_streams_it_names_lets_the_others_finish_and_refuses_new_ones)
{
    server_start(2);
    client_start(NULL, 0, 0);
    pass();
    query("a");
    query("b");
    query("c"); /* waits: the resolver takes two at a time */
    pass();
    cr_assert_eq(srv.nreqs, 2);
    /* The resolver will finish the first stream only. */
    cr_assert_eq(
        nghttp2_submit_goaway(srv.s, NGHTTP2_FLAG_NONE, srv.reqs[0].id, NGHTTP2_NO_ERROR, NULL, 0),
        0);
    pass();
    cr_assert_not(tt_doh_accepting(doh));
    cr_assert_str_eq(tt_doh_goaway(doh), "NO_ERROR");
    cr_assert_eq(tt_doh_query(doh, (const uint8_t *)"d", 1), -EPIPE);
    cr_assert_str_eq(next(TT_DOH_FAILED).why, "the stream was reset (REFUSED_STREAM)");
    cr_assert_not(tt_doh_done(doh), "the first stream is still open");
    respond(&srv.reqs[0], "200", TT_DOH_MEDIA_TYPE, "A", 1);
    pass();
    cr_assert_arr_eq(next(TT_DOH_ANSWER).msg, "A", 1);
    cr_assert_eq(srv.nreqs, 2, "the waiting query was never sent");
    cr_assert(tt_doh_done(doh));
    cr_assert_eq(tt_doh_outstanding(doh), 1, "the waiting query is the caller's to count lost");
}

Test(doh, bytes_that_are_not_http2_are_a_fatal_error_with_a_reason)
{
    client_start(NULL, 0, 0);
    query("a");
    uint8_t buf[512];
    while (tt_doh_output(doh, buf, sizeof buf) > 0)
        ;
    const char *why = NULL;
    const char *h1 = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    cr_assert_eq(tt_doh_feed(doh, (const uint8_t *)h1, strlen(h1), &why), -EPROTO);
    cr_assert_not_null(why);
    cr_assert_gt(strlen(why), 10);
    cr_assert_not(tt_doh_accepting(doh));
    cr_assert_eq(tt_doh_query(doh, (const uint8_t *)"b", 1), -EPIPE);
    cr_assert_eq(tt_doh_feed(doh, (const uint8_t *)"x", 1, &why), -EPROTO);
    cr_assert(tt_doh_done(doh));
}

Test(doh, a_bad_configuration_is_refused_with_a_reason)
{
    const char *why = NULL;
    tt_doh *d = NULL;
    tt_doh_cfg cfg = {.authority = "x", .path = "dns-query"};
    cr_assert_eq(tt_doh_new(&cfg, &d, &why), -EINVAL);
    cr_assert_str_eq(why, "a DNS over HTTPS path must begin with '/'");
    cfg = (tt_doh_cfg){.authority = ""};
    cr_assert_eq(tt_doh_new(&cfg, &d, &why), -EINVAL);
    cr_assert_null(d);
}

Test(doh, freeing_with_queries_in_every_state_leaks_nothing)
{
    server_start(1);
    client_start(NULL, 0, 0);
    pass();
    query("open");
    query("waiting");
    pass();
    respond(&srv.reqs[0], "200", TT_DOH_MEDIA_TYPE, "A", 1);
    pass();
    query("another");
    /* One finished and not taken, one open, none taken: the fini frees. */
}
