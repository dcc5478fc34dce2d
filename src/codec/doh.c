/* DNS over HTTPS on nghttp2 (codec/doh.h).
 *
 * Queries live in two lists: waiting (accepted, not yet handed to nghttp2)
 * and open (submitted as a request). A query moves from waiting to open
 * while fewer than the resolver's SETTINGS_MAX_CONCURRENT_STREAMS (and
 * max_streams) are open, so nghttp2 never queues requests of its own: a
 * request it held could fail to be sent after a GOAWAY without telling
 * which query it was. When a stream closes, its query moves to the list of
 * finished ones, which tt_doh_next hands out as events. */
#include "codec/doh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#define MAX_STREAMS_DEFAULT 64
#define MAX_ANSWER_DEFAULT 4096
#define MSG_MAX 65535
/* The connection's receive window: room for every stream's answer at
 * once, so that answers do not wait for WINDOW_UPDATEs. */
#define CONN_WINDOW (1 << 20)
/* Response headers beyond this are refused by the resolver's own
 * encoder; DoH answers carry a handful. */
#define HEADER_LIST_MAX 16384

typedef struct query query;

typedef struct qlist {
    query *head, *tail;
    unsigned n;
} qlist;

struct query {
    query *prev, *next;
    qlist *in; /* the list Q is in */
    int status;
    bool type_ok;
    const char *why; /* set when the query failed before its stream closed */
    char whybuf[96];
    uint8_t *ans;
    size_t alen, acap;
    size_t qoff, qlen;
    uint8_t q[]; /* the query's bytes */
};

struct tt_doh {
    nghttp2_session *s;
    char *authority, *path;
    unsigned max_streams;
    size_t max_answer;
    qlist waiting, open, finished;
    query *lent; /* the query of the last event, freed at the next call */
    bool fatal;
    bool settled; /* the peer's SETTINGS came */
    const char *goaway;
    char why[128];        /* nghttp2's word on the last error it met */
    const uint8_t *chunk; /* bytes from nghttp2_session_mem_send not yet copied out */
    size_t chunk_len;
};

static void list_push(qlist *l, query *q)
{
    q->in = l;
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
}

static void list_remove(query *q)
{
    qlist *l = q->in;
    if (q->prev)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    l->n--;
    q->in = NULL;
    q->prev = q->next = NULL;
}

static void query_free(query *q)
{
    if (q == NULL)
        return;
    free(q->ans);
    free(q);
}

static void list_free(qlist *l)
{
    while (l->head) {
        query *q = l->head;
        list_remove(q);
        query_free(q);
    }
}

static void release_lent(tt_doh *d)
{
    query_free(d->lent);
    d->lent = NULL;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)stream_id;
    (void)ud;
    query *q = src->ptr;
    size_t n = q->qlen - q->qoff;
    if (n > length)
        n = length;
    memcpy(buf, q->q + q->qoff, n);
    q->qoff += n;
    if (q->qoff == q->qlen)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, vlen)                                                                             \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE                \
    }

/* Hands Q to nghttp2 as a request. Returns 0 or an nghttp2 error. */
static int submit(tt_doh *d, query *q)
{
    char clen[8];
    int cl = snprintf(clen, sizeof clen, "%zu", q->qlen);
    const nghttp2_nv nva[] = {
        NV(":method", "POST", 4),
        NV(":scheme", "https", 5),
        NV(":authority", d->authority, strlen(d->authority)),
        NV(":path", d->path, strlen(d->path)),
        NV("accept", TT_DOH_MEDIA_TYPE, sizeof TT_DOH_MEDIA_TYPE - 1),
        NV("content-type", TT_DOH_MEDIA_TYPE, sizeof TT_DOH_MEDIA_TYPE - 1),
        NV("content-length", clen, (size_t)cl),
    };
    nghttp2_data_provider body = {.source.ptr = q, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(d->s, NULL, nva, sizeof nva / sizeof nva[0], &body, q);
    return id < 0 ? id : 0;
}

/* How many streams may be open now: the resolver's limit, and ours. */
static unsigned stream_room(tt_doh *d)
{
    uint32_t peer =
        nghttp2_session_get_remote_settings(d->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    unsigned lim = peer < d->max_streams ? (unsigned)peer : d->max_streams;
    return d->open.n < lim ? lim - d->open.n : 0;
}

/* Moves waiting queries to streams while there is room. */
static void pump(tt_doh *d)
{
    for (unsigned room = stream_room(d); room > 0 && d->waiting.head != NULL; room--) {
        if (!tt_doh_accepting(d))
            return;
        query *q = d->waiting.head;
        list_remove(q);
        int rc = submit(d, q);
        if (rc != 0) {
            /* Out of memory inside nghttp2, or stream ids spent: the query
             * ends here, as failed. */
            snprintf(q->whybuf, sizeof q->whybuf, "the request could not be made: %s",
                     nghttp2_strerror(rc));
            q->why = q->whybuf;
            list_push(&d->finished, q);
            continue;
        }
        list_push(&d->open, q);
    }
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    query *q = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (q == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0'); /* nghttp2 checked: three digits */
        q->status = st;
        /* An interim (1xx) response's headers say nothing of the answer. */
        q->type_ok = false;
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        size_t mt = sizeof TT_DOH_MEDIA_TYPE - 1;
        /* The type, then nothing, or parameters after optional spaces. */
        size_t i = mt;
        while (i < valuelen && (value[i] == ' ' || value[i] == '\t'))
            i++;
        q->type_ok = valuelen >= mt &&
                     strncasecmp((const char *)value, TT_DOH_MEDIA_TYPE, mt) == 0 &&
                     (i == valuelen || value[i] == ';');
    }
    return 0;
}

/* Q failed before its stream closed: its reason is kept and the stream is
 * reset, so that the resolver stops sending. */
static void fail_stream(tt_doh *d, int32_t stream_id, query *q)
{
    q->why = q->whybuf;
    free(q->ans);
    q->ans = NULL;
    q->alen = q->acap = 0;
    (void)nghttp2_submit_rst_stream(d->s, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *ud)
{
    (void)flags;
    tt_doh *d = ud;
    query *q = nghttp2_session_get_stream_user_data(s, stream_id);
    /* A failed response's body is not kept: its status or type decides. */
    if (q == NULL || q->why != NULL || q->status != 200 || !q->type_ok)
        return 0;
    if (len > d->max_answer - q->alen) {
        snprintf(q->whybuf, sizeof q->whybuf, "the answer is longer than %zu bytes", d->max_answer);
        fail_stream(d, stream_id, q);
        return 0;
    }
    if (q->alen + len > q->acap) {
        size_t cap = q->acap ? q->acap : 512;
        while (cap < q->alen + len)
            cap *= 2;
        if (cap > d->max_answer)
            cap = d->max_answer;
        uint8_t *p = realloc(q->ans, cap);
        if (p == NULL) {
            snprintf(q->whybuf, sizeof q->whybuf, "out of memory for the answer");
            fail_stream(d, stream_id, q);
            return 0;
        }
        q->ans = p;
        q->acap = cap;
    }
    memcpy(q->ans + q->alen, data, len);
    q->alen += len;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    tt_doh *d = ud;
    query *q = nghttp2_session_get_stream_user_data(s, stream_id);
    if (q == NULL || q->in != &d->open)
        return 0;
    list_remove(q);
    if (q->why != NULL) {
        /* Failed already (too long); the reset was ours. */
    } else if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(q->whybuf, sizeof q->whybuf, "the stream was reset (%s)",
                 nghttp2_http2_strerror(error_code));
        q->why = q->whybuf;
    } else if (q->status != 200) {
        snprintf(q->whybuf, sizeof q->whybuf, "the resolver answered HTTP status %d", q->status);
        q->why = q->whybuf;
    } else if (!q->type_ok) {
        q->why = "the answer's content-type is not " TT_DOH_MEDIA_TYPE;
    } else if (q->alen == 0) {
        q->why = "the answer is empty";
    }
    list_push(&d->finished, q);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    tt_doh *d = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        d->goaway = nghttp2_http2_strerror(frame->goaway.error_code);
    if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
        d->settled = true;
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *ud)
{
    (void)s;
    (void)code;
    tt_doh *d = ud;
    snprintf(d->why, sizeof d->why, "%.*s", (int)len, msg);
    return 0;
}

/* True when nghttp2 has ended the connection itself: the peer broke
 * HTTP/2 (a connection error), which nghttp2 answers with a GOAWAY of its
 * own instead of an error return. Stream ids left, no GOAWAY received, and
 * yet no request allowed means exactly that. */
static bool terminated(tt_doh *d)
{
    return d->goaway == NULL && !nghttp2_session_check_request_allowed(d->s) &&
           nghttp2_session_get_next_stream_id(d->s) <= INT32_MAX;
}

int tt_doh_new(const tt_doh_cfg *cfg, tt_doh **out, const char **why)
{
    const char *path = cfg->path ? cfg->path : TT_DOH_DEFAULT_PATH;
    if (path[0] != '/') {
        *why = "a DNS over HTTPS path must begin with '/'";
        return -EINVAL;
    }
    if (cfg->authority == NULL || cfg->authority[0] == '\0') {
        *why = "a DNS over HTTPS resolver needs a name or an address";
        return -EINVAL;
    }
    tt_doh *d = calloc(1, sizeof *d);
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    *why = "out of memory";
    if (d == NULL)
        return -ENOMEM;
    d->authority = strdup(cfg->authority);
    d->path = strdup(path);
    d->max_streams = cfg->max_streams ? cfg->max_streams : MAX_STREAMS_DEFAULT;
    d->max_answer = cfg->max_answer ? cfg->max_answer : MAX_ANSWER_DEFAULT;
    if (d->authority == NULL || d->path == NULL || nghttp2_session_callbacks_new(&cbs) != 0 ||
        nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    /* A resolver has no business pushing; refusing it keeps memory ours. */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    int rc = nghttp2_session_client_new2(&d->s, cbs, d, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0)
        goto fail;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEADER_LIST_MAX},
    };
    if (nghttp2_submit_settings(d->s, NGHTTP2_FLAG_NONE, settings,
                                sizeof settings / sizeof settings[0]) != 0 ||
        nghttp2_session_set_local_window_size(d->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        goto fail;
    *why = NULL;
    *out = d;
    return 0;
fail:
    tt_doh_free(d);
    return -ENOMEM;
}

void tt_doh_free(tt_doh *d)
{
    if (d == NULL)
        return;
    /* nghttp2 first: it points at the open queries' bodies. */
    nghttp2_session_del(d->s);
    list_free(&d->waiting);
    list_free(&d->open);
    list_free(&d->finished);
    release_lent(d);
    free(d->authority);
    free(d->path);
    free(d);
}

int tt_doh_query(tt_doh *d, const uint8_t *msg, size_t len)
{
    release_lent(d);
    if (len == 0 || len > MSG_MAX)
        return -EMSGSIZE;
    if (!tt_doh_accepting(d))
        return -EPIPE;
    if (tt_doh_outstanding(d) >= d->max_streams)
        return -ENOBUFS;
    query *q = calloc(1, sizeof *q + len);
    if (q == NULL)
        return -ENOMEM;
    memcpy(q->q, msg, len);
    q->qlen = len;
    list_push(&d->waiting, q);
    pump(d);
    return 0;
}

int tt_doh_feed(tt_doh *d, const uint8_t *data, size_t len, const char **why)
{
    release_lent(d);
    if (d->fatal) {
        *why = "the HTTP/2 connection has failed";
        return -EPROTO;
    }
    ssize_t n = nghttp2_session_mem_recv(d->s, data, len);
    if (n < 0 || terminated(d)) {
        d->fatal = true;
        if (d->why[0] == '\0')
            snprintf(d->why, sizeof d->why, "%s",
                     n < 0 ? nghttp2_strerror((int)n) : "the peer broke HTTP/2");
        *why = d->why;
        return -EPROTO;
    }
    pump(d);
    return 0;
}

size_t tt_doh_output(tt_doh *d, uint8_t *buf, size_t cap)
{
    release_lent(d);
    size_t out = 0;
    while (out < cap) {
        if (d->chunk_len == 0) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(d->s, &p);
            if (n < 0) {
                /* Only a lack of memory inside nghttp2 comes here: the
                 * connection cannot go on. */
                d->fatal = true;
                break;
            }
            if (n == 0)
                break;
            d->chunk = p;
            d->chunk_len = (size_t)n;
        }
        size_t take = d->chunk_len < cap - out ? d->chunk_len : cap - out;
        memcpy(buf + out, d->chunk, take);
        d->chunk += take;
        d->chunk_len -= take;
        out += take;
    }
    /* Streams that closed while sending (a reset of ours) make room. */
    pump(d);
    return out;
}

bool tt_doh_next(tt_doh *d, tt_doh_event *ev)
{
    release_lent(d);
    query *q = d->finished.head;
    if (q == NULL)
        return false;
    list_remove(q);
    d->lent = q;
    memset(ev, 0, sizeof *ev);
    if (q->why != NULL) {
        ev->kind = TT_DOH_FAILED;
        ev->why = q->why;
    } else {
        ev->kind = TT_DOH_ANSWER;
        ev->msg = q->ans;
        ev->len = q->alen;
    }
    return true;
}

bool tt_doh_accepting(tt_doh *d)
{
    return !d->fatal && d->goaway == NULL && nghttp2_session_check_request_allowed(d->s);
}

bool tt_doh_done(tt_doh *d)
{
    if (d->chunk_len > 0 || d->finished.head != NULL)
        return false;
    if (d->fatal)
        return true;
    if (tt_doh_accepting(d))
        return false;
    /* Queries still waiting will never get a stream on this connection. */
    return d->open.n == 0 ||
           (!nghttp2_session_want_read(d->s) && !nghttp2_session_want_write(d->s));
}

unsigned tt_doh_outstanding(const tt_doh *d)
{
    return d->waiting.n + d->open.n + d->finished.n;
}

int tt_doh_ping(tt_doh *d)
{
    release_lent(d);
    return nghttp2_submit_ping(d->s, NGHTTP2_FLAG_NONE, NULL) == 0 ? 0 : -ENOMEM;
}

bool tt_doh_settled(const tt_doh *d)
{
    return d->settled;
}

const char *tt_doh_goaway(const tt_doh *d)
{
    return d->goaway;
}
