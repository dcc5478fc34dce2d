/* The nginx look-alike web server over a link.
 *
 * One request is answered at a time. Input goes into one buffer: heads are
 * parsed from it, request bodies are dropped from it (or straight from the
 * link's buffer when nothing is queued), and while a file answer is in
 * progress reading stops, so the buffer holds at most a head and one
 * network read. Answers other than files are built and written at once; a
 * file answer is a chain of thread-pool calls (open, fstat, read, ...) on
 * one uv_fs_t, which is why the object counts its outstanding callbacks:
 * a connection that ends while a file call is in flight is freed by that
 * call's callback.
 *
 * Where nginx reads a body before answering (it drops what is already
 * buffered first, and answers 400 if that part is malformed), so does this.
 * Ordering of checks follows nginx's: request line and header errors, then
 * Host, then body framing (Transfer-Encoding, Content-Length, the 1 MiB
 * limit), then the path, then the method. */
#include "decoy/www.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "decoy/nginx.h"
#include "link/linger.h"
#include "link/tls.h"

#define WWW_CHUNK (64 * 1024)         /* file read size */
#define WWW_HIGH (256 * 1024)         /* stop reading the file above this much queued */
#define WWW_BODY_MAX (1024 * 1024)    /* nginx's client_max_body_size */
#define WWW_LINGER_MS 5000            /* nginx's lingering_timeout */
#define WWW_IDLE_MS 60000             /* nginx's client_body_timeout and send_timeout */
#define WWW_HEADER_MS 60000           /* nginx's client_header_timeout */
#define WWW_KEEPALIVE_MS 75000        /* nginx's keepalive_timeout */
#define WWW_KEEPALIVE_REQUESTS 1000   /* nginx's keepalive_requests */
#define WWW_KEEPALIVE_TIME_MS 3600000 /* nginx's keepalive_time */
#define WWW_IN_MAX (2 * 1024 * 1024)  /* a safety bound on buffered input */

typedef enum body_kind {
    BODY_NONE,
    BODY_LENGTH,
    BODY_CHUNKED,
} body_kind;

typedef enum stop_how {
    STOP_CLOSE,  /* close now */
    STOP_LINGER, /* the last answer is queued: half-close, drain, close */
} stop_how;

typedef struct www {
    tt_link *link; /* NULL once handed on or closed */
    uv_loop_t *loop;
    uv_timer_t timer; /* the start, then the idle timeout */
    char *dir;        /* NULL: no files */
    char *server;
    char *default_host;
    bool https;
    int port; /* shown in redirects unless 0 or the scheme's default */
    bool plain_on_https;
    unsigned idle_ms, header_ms, keepalive_ms;
    /* Loop time by which the request head being read must be whole; 0
     * while none has begun (a kept-alive connection waiting). */
    uint64_t head_deadline;
    uint64_t started;  /* loop time of the start */
    unsigned requests; /* heads answered or being answered */

    uint8_t *in; /* input not used yet; NULL when empty */
    size_t in_len, in_cap;
    /* The request head being read, from W->in: the parser keeps its place
     * between reads, so each read costs only its own bytes. */
    tt_http_head req;
    bool req_started;

    body_kind body; /* the request body being dropped */
    uint64_t body_left;
    tt_http_chunked chunked;

    /* The file answer in progress. */
    bool busy;
    bool keep_alive;
    bool head_only;
    bool post;
    bool index; /* the path ended in '/': DIR/index.html */
    bool expect_continue;
    bool has_ims; /* If-Modified-Since, parsed */
    int64_t ims;
    char *inm;      /* If-None-Match, copied; NULL when absent */
    char *range;    /* Range, copied; NULL when absent */
    char *if_range; /* If-Range, copied; NULL when absent */
    char *path;     /* the file: DIR/REL */
    char *location; /* where a directory without its slash redirects */
    const char *type;
    uv_fs_t fs;
    uv_file fd; /* -1 when none */
    uint8_t *chunk;
    size_t chunk_head; /* the head's bytes at the start of CHUNK, before the first read */
    uint64_t file_left;
    int64_t file_off;
    bool wait_drain;

    bool reading;
    bool peer_eof;
    bool close_on_drain; /* the peer is gone: close once the queue is out */
    bool draining;       /* answered for the last time: dropping the body */
    bool ending;         /* stopped: only outstanding callbacks remain */
    bool in_pump;        /* pump is on the stack: do not enter it again */
    int outstanding;     /* timer close, link close, file call in flight */
} www;

static void pump(www *w);
static void read_next(www *w);

/* --- lifetime --------------------------------------------------------- */

static void close_file(www *w)
{
    if (w->fd >= 0) {
        uv_fs_t req;
        /* Synchronous: close(2) of a regular file does not block, and the
         * fs request is then free for the next answer at once. */
        uv_fs_close(w->loop, &req, w->fd, NULL);
        uv_fs_req_cleanup(&req);
        w->fd = -1;
    }
}

/* Frees what the answer in progress holds. */
static void answer_free(www *w)
{
    close_file(w);
    free(w->chunk);
    free(w->path);
    free(w->location);
    free(w->inm);
    free(w->range);
    free(w->if_range);
    w->chunk = NULL;
    w->chunk_head = 0;
    w->path = w->location = w->inm = w->range = w->if_range = NULL;
}

static void release(www *w)
{
    if (--w->outstanding > 0)
        return;
    answer_free(w);
    tt_http_head_free(&w->req);
    free(w->in);
    free(w->dir);
    free(w->server);
    free(w->default_host);
    free(w);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(h->data);
}

static void on_link_closed(void *ud)
{
    release(ud);
}

/* Ends the connection. Memory goes when the last callback has come. */
static void stop(www *w, stop_how how)
{
    if (w->ending)
        return;
    w->ending = true;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
    tt_link *l = w->link;
    w->link = NULL;
    if (how == STOP_LINGER) {
        tt_link_linger(l, WWW_LINGER_MS);
    } else {
        w->outstanding++;
        tt_link_close(l, on_link_closed, w);
    }
    /* A file call in flight closes the file from its callback. */
    if (w->fs.data == NULL)
        close_file(w);
}

/* After the peer's EOF: close once everything queued is out. */
static void stop_when_drained(www *w)
{
    /* A TLS peer that ended with close_notify gets none back: nginx marks
     * such a connection "peer shut down cleanly" and skips its own. */
    tt_tls_link_close_quietly(w->link);
    if (tt_link_pending(w->link) == 0) {
        stop(w, STOP_CLOSE);
        return;
    }
    w->close_on_drain = true;
    if (w->reading) {
        tt_link_read_stop(w->link);
        w->reading = false;
    }
}

/* The last answer is queued: a lingering close, as nginx does, unless the
 * peer has already sent its EOF (then there is nothing to wait for). A body
 * still to come is read to its end first, as nginx does before its
 * lingering close (so the peer does not see an EOF while it sends). */
static void stop_after_answer(www *w)
{
    if (w->peer_eof)
        stop_when_drained(w);
    else if (w->body != BODY_NONE)
        w->draining = true;
    else
        stop(w, STOP_LINGER);
}

/* Whether the connection waits between requests, none begun. */
static bool between_requests(const www *w)
{
    return !w->draining && !w->busy && !w->wait_drain && w->body == BODY_NONE &&
           w->head_deadline == 0;
}

static void on_idle(uv_timer_t *t)
{
    www *w = t->data;
    /* nginx ends a connection that stalls without a word (no 408), and a
     * TLS one without close_notify unless it was idle between requests
     * (nginx marks the others timed out, which skips the shutdown). */
    if (!between_requests(w))
        tt_tls_link_close_quietly(w->link);
    stop(w, STOP_CLOSE);
}

/* Starts the timer of the current state: the head's deadline (not moved by
 * the bytes that trickle in), the keep-alive wait, or the stall timeout of
 * a body, an answer or a lingering close. */
static void arm(www *w)
{
    if (w->draining) {
        uv_timer_start(&w->timer, on_idle, WWW_LINGER_MS, 0);
        return;
    }
    if (w->busy || w->wait_drain || w->body != BODY_NONE) {
        uv_timer_start(&w->timer, on_idle, w->idle_ms, 0);
        return;
    }
    uint64_t now = uv_now(w->loop);
    if (w->head_deadline == 0 && w->in_len > 0)
        w->head_deadline = now + w->header_ms;
    if (w->head_deadline == 0)
        uv_timer_start(&w->timer, on_idle, w->keepalive_ms, 0);
    else
        uv_timer_start(&w->timer, on_idle, w->head_deadline > now ? w->head_deadline - now : 0, 0);
}

/* Writes N bytes at P; on failure the connection ends and false returns. */
static bool send_bytes(www *w, const void *p, size_t n)
{
    if (tt_link_write1(w->link, p, n) < 0) {
        stop(w, STOP_CLOSE);
        return false;
    }
    return true;
}

/* --- answers ------------------------------------------------------------ */

/* Sends nginx's page for STATUS; ends the connection when the answer says
 * so. Returns whether the connection goes on. */
static bool answer_error(www *w, int status, bool keep_alive, bool head)
{
    char out[1024];
    size_t n = tt_http_error_page(out, sizeof out, status, w->server, time(NULL), keep_alive, head);
    if (n == 0) {
        stop(w, STOP_CLOSE);
        return false;
    }
    if (!send_bytes(w, out, n))
        return false;
    if (!keep_alive || tt_http_status_closes(status)) {
        stop_after_answer(w);
        return false;
    }
    return true;
}

/* The answer in progress is complete. */
static void answer_done(www *w)
{
    answer_free(w);
    w->busy = false;
    w->wait_drain = false;
    if (!w->keep_alive) {
        stop_after_answer(w);
        return;
    }
    /* Inside pump (an answer that failed at once) the loop there goes on;
     * entering it again would use its input under it. */
    if (!w->in_pump)
        pump(w);
}

/* Ends a file answer with an error page instead. */
static void file_error(www *w, int status)
{
    if (answer_error(w, status, w->keep_alive, w->head_only))
        answer_done(w);
}

/* Whether the conditional fields say the client's copy is current, by
 * nginx's rules: every condition present must hold; If-None-Match compares
 * the entity tags weakly or matches "*"; If-Modified-Since must equal the
 * modification time exactly. */
static bool not_modified(const www *w, const char *etag, int64_t mtime)
{
    if (!w->has_ims && w->inm == NULL)
        return false;
    if (w->has_ims && w->ims != mtime)
        return false;
    if (w->inm != NULL) {
        tt_http_str v = {w->inm, strlen(w->inm)};
        if (tt_http_list_has(v, "*"))
            return true;
        /* Each element, with a W/ prefix dropped, against the tag. */
        size_t i = 0, elen = strlen(etag);
        bool found = false;
        while (i < v.len && !found) {
            size_t s = i;
            while (i < v.len && v.p[i] != ',')
                i++;
            size_t e = i++;
            while (s < e && (v.p[s] == ' ' || v.p[s] == '\t'))
                s++;
            while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
                e--;
            if (e - s > 2 && v.p[s] == 'W' && v.p[s + 1] == '/')
                s += 2;
            found = e - s == elen && memcmp(v.p + s, etag, elen) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}

/* Whether If-Range (if any) names this version of the file: its ETag, or
 * exactly its modification time. */
static bool if_range_holds(const www *w, const char *etag, int64_t mtime)
{
    if (w->if_range == NULL)
        return true;
    if (strcmp(w->if_range, etag) == 0)
        return true;
    int64_t t;
    return tt_http_date_parse((tt_http_str){w->if_range, strlen(w->if_range)}, &t) == 0 &&
           t == mtime;
}

/* Answers 416 for a Range that nothing of the file satisfies. */
static void range_refused(www *w, uint64_t size)
{
    char out[1024];
    size_t n = tt_http_range_refused(out, sizeof out, w->server, time(NULL), size, w->keep_alive,
                                     w->head_only);
    if (n == 0) {
        file_error(w, 500);
        return;
    }
    if (send_bytes(w, out, n))
        answer_done(w);
}

static int status_for_errno(int err)
{
    switch (err) {
    case UV_ENOENT:
    case UV_ENOTDIR:
    case UV_ENAMETOOLONG:
    case UV_ELOOP:
        return 404;
    case UV_EACCES:
    case UV_EPERM:
        return 403;
    default:
        return 500;
    }
}

/* Takes the result of a finished file call. When the connection ended
 * meanwhile, W is released (and may be gone): callers read W->ending
 * before calling this. */
static ssize_t fs_done(www *w, uv_fs_t *req)
{
    ssize_t r = req->result;
    uv_fs_type type = req->fs_type;
    uv_fs_req_cleanup(req);
    req->data = NULL;
    if (w->ending) {
        if (type == UV_FS_OPEN && r >= 0)
            w->fd = (uv_file)r;
        close_file(w);
        release(w);
        return -1;
    }
    w->outstanding--; /* the connection holds its own count: never zero here */
    return r;
}

/* Marks W->fs as in flight: its callback comes even if the connection
 * ends meanwhile, and frees it then. */
static void fs_start(www *w)
{
    w->fs.data = w;
    w->outstanding++;
}

/* Undoes fs_start after a call that failed to start (no callback comes). */
static void fs_unstart(www *w)
{
    w->fs.data = NULL;
    w->outstanding--;
}

static void on_file_read(uv_fs_t *req);

static void read_next(www *w)
{
    if (tt_link_pending(w->link) > WWW_HIGH) {
        w->wait_drain = true;
        return;
    }
    size_t room = WWW_CHUNK - w->chunk_head;
    size_t n = w->file_left < room ? (size_t)w->file_left : room;
    uv_buf_t b = uv_buf_init((char *)w->chunk + w->chunk_head, (unsigned)n);
    fs_start(w);
    if (uv_fs_read(w->loop, &w->fs, w->fd, &b, 1, w->file_off, on_file_read) < 0) {
        fs_unstart(w);
        stop(w, STOP_CLOSE);
    }
}

static void on_file_read(uv_fs_t *req)
{
    www *w = req->data;
    bool ending = w->ending;
    ssize_t r = fs_done(w, req);
    if (ending)
        return;
    if (r <= 0) {
        /* The head promised more bytes than the file now has (or it cannot
         * be read): all that is left is to cut the connection. */
        stop(w, STOP_CLOSE);
        return;
    }
    size_t head = w->chunk_head;
    w->chunk_head = 0;
    if (!send_bytes(w, w->chunk, head + (size_t)r))
        return;
    arm(w);
    w->file_left -= (uint64_t)r;
    w->file_off += r;
    if (w->file_left == 0) {
        answer_done(w);
        return;
    }
    read_next(w);
}

static void on_fstat(uv_fs_t *req)
{
    www *w = req->data;
    bool ending = w->ending;
    uv_stat_t st = req->statbuf;
    ssize_t r = fs_done(w, req);
    if (ending)
        return;
    if (r < 0) {
        file_error(w, 500);
        return;
    }
    if ((st.st_mode & S_IFMT) == S_IFDIR) {
        if (w->index) {
            file_error(w, 403);
            return;
        }
        char out[TT_HTTP_LINE_MAX + 1024];
        size_t n = tt_http_redirect(out, sizeof out, w->server, time(NULL), w->location,
                                    w->keep_alive, w->head_only);
        if (n == 0) {
            file_error(w, 500);
            return;
        }
        if (send_bytes(w, out, n))
            answer_done(w);
        return;
    }
    if ((st.st_mode & S_IFMT) != S_IFREG) {
        file_error(w, 404);
        return;
    }
    if (w->post) {
        file_error(w, 405);
        return;
    }

    int64_t mtime = (int64_t)st.st_mtim.tv_sec;
    uint64_t size = st.st_size;
    char etag[TT_HTTP_ETAG_MAX];
    tt_http_etag(mtime, size, etag);
    int status = not_modified(w, etag, mtime) ? 304 : 200;
    tt_http_range range = {0, size ? size - 1 : 0};
    if (status == 200 && w->range != NULL && if_range_holds(w, etag, mtime)) {
        /* One range is sent as nginx does; several would be a multipart
         * answer, which is not done here: the whole file goes instead. */
        int kind = tt_http_range_parse((tt_http_str){w->range, strlen(w->range)}, size, &range);
        if (kind == 416) {
            range_refused(w, size);
            return;
        }
        if (kind == 1)
            status = 206;
        else
            range = (tt_http_range){0, size ? size - 1 : 0};
    }
    char head[1024];
    size_t n = tt_http_range_head(head, sizeof head, status, w->server, time(NULL), w->type, size,
                                  mtime, w->keep_alive, status == 206 ? &range : NULL);
    if (n == 0) {
        file_error(w, 500);
        return;
    }
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (w->expect_continue && !send_bytes(w, cont, sizeof cont - 1))
        return;
    if (status == 304 || w->head_only || size == 0) {
        if (send_bytes(w, head, n))
            answer_done(w);
        return;
    }
    /* The head goes out with the start of the body, in one write: nginx
     * fills its TLS records (ssl_buffer_size, 16 KiB) with whatever it has
     * queued, so its first record holds both, and the rest are full
     * records; a head written alone would be a record of its own. Each
     * write here is then a whole number of records but the last. */
    w->chunk = malloc(WWW_CHUNK);
    if (w->chunk == NULL) {
        stop(w, STOP_CLOSE);
        return;
    }
    memcpy(w->chunk, head, n);
    w->chunk_head = n;
    w->file_left = range.last - range.first + 1;
    w->file_off = (int64_t)range.first;
    read_next(w);
}

static void on_dir_stat(uv_fs_t *req)
{
    www *w = req->data;
    bool ending = w->ending;
    uv_stat_t st = req->statbuf;
    ssize_t r = fs_done(w, req);
    if (ending)
        return;
    /* A directory without index.html: nginx forbids listing it. */
    file_error(w, r == 0 && (st.st_mode & S_IFMT) == S_IFDIR ? 403 : 404);
}

static void on_open(uv_fs_t *req)
{
    www *w = req->data;
    bool ending = w->ending;
    ssize_t r = fs_done(w, req);
    if (ending)
        return;
    if (r < 0) {
        if (w->index && r == UV_ENOENT) {
            /* DIR/sub/index.html is missing: is DIR/sub a directory? */
            size_t n = strlen(w->path) - strlen("index.html");
            w->path[n] = '\0';
            fs_start(w);
            if (uv_fs_stat(w->loop, &w->fs, w->path, on_dir_stat) < 0) {
                fs_unstart(w);
                file_error(w, 404);
            }
            return;
        }
        file_error(w, status_for_errno((int)r));
        return;
    }
    w->fd = (uv_file)r;
    fs_start(w);
    if (uv_fs_fstat(w->loop, &w->fs, w->fd, on_fstat) < 0) {
        fs_unstart(w);
        file_error(w, 500);
    }
}

/* --- requests ---------------------------------------------------------------- */

/* Appends to OUT (at *N, CAP bytes) the bytes of S escaped for a URI path. */
static bool put_escaped(char *out, size_t cap, size_t *n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        uint8_t c = (uint8_t)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr("-._~!$&'()*+,;=:@/", c) != NULL;
        if (*n + 4 > cap)
            return false;
        if (plain) {
            out[(*n)++] = (char)c;
        } else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[c >> 4];
            out[(*n)++] = hex[c & 15];
        }
    }
    return true;
}

/* Checks the Host value as nginx does, and writes into OUT (CAP bytes) the
 * host name nginx puts in redirects: lower-cased, without a final dot and
 * without the port (nginx shows its own). Returns false for a host nginx
 * refuses. */
static bool clean_host(tt_http_str v, char *out, size_t cap)
{
    if (v.len == 0 || v.len >= cap)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        uint8_t c = (uint8_t)v.p[i];
        if (c == '/' || c == ' ' || c == '\t' || c < 0x20 || c == 0x7f)
            return false;
        if (c == '.' && i > 0 && v.p[i - 1] == '.')
            return false;
        out[n++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    out[n] = '\0';
    /* The name ends at the port's colon, after the brackets of an IPv6
     * literal. */
    char *name_end = out + n;
    const char *from = out;
    if (out[0] == '[') {
        const char *close = strchr(out, ']');
        if (close == NULL)
            return false;
        from = close;
    }
    char *colon = strchr(from, ':');
    if (colon != NULL)
        name_end = colon;
    if (name_end > out && name_end[-1] == '.')
        name_end--;
    *name_end = '\0';
    return name_end > out;
}

/* Whether the method has only the characters nginx's parser takes. */
static bool nginx_method(tt_http_str m)
{
    for (size_t i = 0; i < m.len; i++) {
        char c = m.p[i];
        if (!((c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool method_is(tt_http_str m, const char *name)
{
    return m.len == strlen(name) && memcmp(m.p, name, m.len) == 0;
}

/* Drops request-body bytes from P (LEN). Returns 1 when the body is over, 0
 * when more is to come (all of LEN used), -EINVAL when it is malformed;
 * *USED is what belonged to the body. */
static int drop_body(www *w, const uint8_t *p, size_t len, size_t *used)
{
    *used = 0;
    if (w->body == BODY_LENGTH) {
        size_t n = len < w->body_left ? len : (size_t)w->body_left;
        w->body_left -= n;
        *used = n;
        if (w->body_left > 0)
            return 0;
    } else if (w->body == BODY_CHUNKED) {
        const char *why = NULL;
        int rc = tt_http_chunked_feed(&w->chunked, p, len, used, &why);
        if (rc < 0)
            w->body = BODY_NONE; /* nothing more of it is read */
        if (rc <= 0)
            return rc;
    }
    w->body = BODY_NONE;
    return 1;
}

/* Copies the value of the first field NAME of H into *OUT (NULL when there
 * is none). Returns false when out of memory. */
static bool copy_field(const tt_http_head *h, const char *name, char **out)
{
    tt_http_header f;
    bool found = tt_http_find(h, name, &f);
    *out = found ? strndup(f.value.p, f.value.len) : NULL;
    return !found || *out != NULL;
}

/* Starts the file answer for REL (a path under the directory). */
static void start_file(www *w, const tt_http_head *h, const char *rel, bool index)
{
    w->busy = true;
    w->index = index;
    w->post = method_is(h->method, "POST");
    tt_http_header f;
    w->expect_continue =
        h->minor == 1 && tt_http_find(h, "Expect", &f) && tt_http_str_ieq(f.value, "100-continue");
    w->has_ims =
        tt_http_find(h, "If-Modified-Since", &f) && tt_http_date_parse(f.value, &w->ims) == 0;
    w->type = tt_http_mime_type(rel);
    bool copied = copy_field(h, "If-None-Match", &w->inm) && copy_field(h, "Range", &w->range) &&
                  copy_field(h, "If-Range", &w->if_range);

    size_t dlen = strlen(w->dir), rlen = strlen(rel);
    w->path = malloc(dlen + 1 + rlen + 1);
    if (w->path == NULL || !copied) {
        stop(w, STOP_CLOSE);
        return;
    }
    memcpy(w->path, w->dir, dlen);
    w->path[dlen] = '/';
    memcpy(w->path + dlen + 1, rel, rlen + 1);

    if (!index) {
        /* Where a directory named without its slash redirects: the same
         * scheme and host, the path with a slash, the same query. */
        char host[512];
        tt_http_header hf;
        if (!tt_http_find(h, "Host", &hf) || !clean_host(hf.value, host, sizeof host))
            snprintf(host, sizeof host, "%s", w->default_host);
        size_t cap = TT_HTTP_PATH_MAX * 3 + sizeof host + TT_HTTP_LINE_MAX + 16;
        w->location = malloc(cap);
        if (w->location == NULL) {
            stop(w, STOP_CLOSE);
            return;
        }
        size_t n = (size_t)snprintf(w->location, cap, "%s://%s", w->https ? "https" : "http", host);
        if (w->port != 0)
            n += (size_t)snprintf(w->location + n, cap - n, ":%d", w->port);
        w->location[n++] = '/';
        put_escaped(w->location, cap, &n, rel);
        w->location[n++] = '/';
        const char *q = memchr(h->target.p, '?', h->target.len);
        if (q != NULL) {
            size_t qlen = h->target.len - (size_t)(q - h->target.p);
            const char *hash = memchr(q, '#', qlen);
            if (hash != NULL)
                qlen = (size_t)(hash - q);
            memcpy(w->location + n, q, qlen);
            n += qlen;
        }
        w->location[n] = '\0';
    }

    fs_start(w);
    if (uv_fs_open(w->loop, &w->fs, w->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0, on_open) < 0) {
        fs_unstart(w);
        file_error(w, 500);
    }
}

/* Answers the request H, whose body starts at W->in + *OFF (*OFF advances
 * past the body bytes dropped now). */
static void handle(www *w, const tt_http_head *h, size_t *off)
{
    bool head = method_is(h->method, "HEAD");
    bool keep_alive = h->minor == 1 ? !tt_http_header_has(h, "Connection", "close")
                                    : tt_http_header_has(h, "Connection", "keep-alive");
    /* nginx keeps a connection for keepalive_requests requests and
     * keepalive_time: the answer to the last says "Connection: close". */
    if (++w->requests >= WWW_KEEPALIVE_REQUESTS ||
        uv_now(w->loop) - w->started >= WWW_KEEPALIVE_TIME_MS)
        keep_alive = false;
    w->keep_alive = keep_alive;
    w->head_only = head;

    if (!nginx_method(h->method)) {
        answer_error(w, 400, false, false);
        return;
    }
    size_t hosts = tt_http_count(h, "Host");
    char host[512];
    tt_http_header hf;
    if (hosts > 1 || (hosts == 0 && h->minor == 1) ||
        (tt_http_find(h, "Host", &hf) && !clean_host(hf.value, host, sizeof host))) {
        answer_error(w, 400, false, head);
        return;
    }

    /* The body: refused, or dropped while answering. */
    enum tt_http_te te = tt_http_transfer_encoding(h);
    uint64_t clen = 0;
    const char *why = NULL;
    int cl = tt_http_content_length(h, &clen, &why);
    if (te != TT_HTTP_TE_NONE && tt_http_count(h, "Content-Length") > 0) {
        answer_error(w, 400, false, head);
        return;
    }
    if (te == TT_HTTP_TE_OTHER) {
        answer_error(w, 501, false, head);
        return;
    }
    if (cl < 0) {
        answer_error(w, 400, false, head);
        return;
    }
    if (clen > WWW_BODY_MAX) {
        w->body = BODY_LENGTH;
        w->body_left = clen;
        answer_error(w, 413, false, head);
        return;
    }
    if (te == TT_HTTP_TE_CHUNKED) {
        w->body = BODY_CHUNKED;
        tt_http_chunked_init(&w->chunked);
    } else if (clen > 0) {
        w->body = BODY_LENGTH;
        w->body_left = clen;
    }
    if (w->body != BODY_NONE) {
        size_t used = 0;
        int rc = drop_body(w, w->in + *off, w->in_len - *off, &used);
        *off += used;
        if (rc < 0) {
            answer_error(w, 400, false, head);
            return;
        }
    }

    if (method_is(h->method, "TRACE")) {
        /* nginx refuses TRACE before looking for a handler, and closes. */
        answer_error(w, 405, false, head);
        return;
    }
    char rel[TT_HTTP_PATH_MAX];
    bool index = false;
    int mapped = tt_http_map_path(h->target, rel, &index);
    if (mapped == 400) {
        answer_error(w, 400, false, head);
        return;
    }
    if (w->plain_on_https) {
        /* nginx checks this last, once the head has passed every other
         * check. */
        answer_error(w, TT_HTTP_STATUS_TO_HTTPS, false, head);
        return;
    }
    if (!head && !method_is(h->method, "GET") && !method_is(h->method, "POST")) {
        answer_error(w, 405, keep_alive, head);
        return;
    }
    if (mapped != 0 || w->dir == NULL) {
        answer_error(w, 404, keep_alive, head);
        return;
    }
    start_file(w, h, rel, index);
}

/* Uses the buffered input: drops body bytes, answers complete requests, and
 * decides whether to read more, wait, or end. */
static void pump_input(www *w);

static void pump(www *w)
{
    w->in_pump = true;
    pump_input(w);
    w->in_pump = false;
}

static void pump_input(www *w)
{
    size_t off = 0;
    while (!w->ending && !w->busy) {
        if (w->body != BODY_NONE) {
            size_t used = 0;
            int rc = drop_body(w, w->in + off, w->in_len - off, &used);
            off += used;
            if (rc < 0) {
                /* A body that turns out malformed after its answer: nginx
                 * closes the connection. */
                stop(w, STOP_CLOSE);
                return;
            }
            if (rc == 0)
                break;
            continue;
        }
        if (w->draining) {
            stop(w, STOP_LINGER);
            return;
        }
        if (off == w->in_len)
            break;
        if (!w->req_started) {
            tt_http_head_init(&w->req, true);
            w->req_started = true;
        }
        const char *why = NULL;
        int rc = tt_http_head_parse(&w->req, w->in + off, w->in_len - off, &why);
        if (rc == 0) {
            /* Empty lines before a request line are dropped (nginx takes
             * any number of them); they begin a head all the same, whose
             * deadline then runs. */
            size_t drop = tt_http_head_drop_lead(&w->req);
            if (drop > 0 && w->head_deadline == 0)
                w->head_deadline = uv_now(w->loop) + w->header_ms;
            off += drop;
            break;
        }
        if (rc < 0) {
            answer_error(w, w->req.status, false, false);
            return;
        }
        off += w->req.head_len;
        w->head_deadline = 0; /* the next head's starts with its first byte */
        size_t head_end = off;
        handle(w, &w->req, &off);
        /* The answer keeps copies of what it needs from the head. A
         * request already read behind this one (and its whole body) is
         * parsed on where nginx would parse it: in the same buffer. */
        if (w->body == BODY_NONE && off < w->in_len) {
            tt_http_head_restart(&w->req, off - head_end);
        } else {
            tt_http_head_free(&w->req);
            w->req_started = false;
        }
    }
    if (w->ending)
        return;

    if (off > 0) {
        memmove(w->in, w->in + off, w->in_len - off);
        w->in_len -= off;
    }
    if (w->in_len == 0) {
        /* An idle connection holds no buffer. */
        free(w->in);
        w->in = NULL;
        w->in_cap = 0;
    }
    if (w->busy) {
        if (w->reading) {
            tt_link_read_stop(w->link);
            w->reading = false;
        }
        return;
    }
    if (w->peer_eof) {
        stop_when_drained(w);
        return;
    }
    if (!w->reading) {
        if (tt_link_read_start(w->link) < 0) {
            stop(w, STOP_CLOSE);
            return;
        }
        w->reading = true;
    }
    arm(w);
}

/* Appends LEN bytes to the input buffer. */
static bool keep_input(www *w, const uint8_t *data, size_t len)
{
    if (len == 0)
        return true;
    if (w->in_len + len > WWW_IN_MAX)
        return false;
    if (w->in_len + len > w->in_cap) {
        size_t cap = w->in_cap ? w->in_cap : 4096;
        while (cap < w->in_len + len)
            cap *= 2;
        uint8_t *p = realloc(w->in, cap);
        if (p == NULL)
            return false;
        w->in = p;
        w->in_cap = cap;
    }
    memcpy(w->in + w->in_len, data, len);
    w->in_len += len;
    return true;
}

/* --- link handler --------------------------------------------------------- */

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    www *w = ud;
    if (w->ending)
        return;
    if (w->in_len == 0 && w->body != BODY_NONE && !w->busy) {
        /* Body bytes with nothing queued before them: drop them straight
         * from the link's buffer. */
        size_t used = 0;
        if (drop_body(w, data, len, &used) < 0) {
            stop(w, STOP_CLOSE);
            return;
        }
        data += used;
        len -= used;
    }
    if (!keep_input(w, data, len)) {
        stop(w, STOP_CLOSE);
        return;
    }
    pump(w);
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    www *w = ud;
    if (w->ending)
        return;
    w->peer_eof = true;
    w->reading = false;
    if (!w->busy)
        pump(w);
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    stop(ud, STOP_CLOSE);
}

static void on_drained(tt_link *l, void *ud)
{
    (void)l;
    www *w = ud;
    if (w->ending)
        return;
    arm(w);
    if (w->close_on_drain) {
        if (tt_link_pending(w->link) == 0)
            stop(w, STOP_CLOSE);
        return;
    }
    if (w->wait_drain) {
        w->wait_drain = false;
        read_next(w);
    }
}

static const tt_link_handler www_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drained = on_drained,
};

static void on_start(uv_timer_t *t)
{
    pump(t->data);
}

void tt_www_serve_opts(tt_link *l, const tt_www_opts *o, const uint8_t *early, size_t early_len)
{
    www *w = calloc(1, sizeof *w);
    if (w == NULL) {
        tt_link_close(l, NULL, NULL);
        return;
    }
    w->link = l;
    w->loop = l->loop;
    w->fd = -1;
    w->https = o->https;
    w->port = o->port == (o->https ? 443 : 80) ? 0 : o->port;
    w->idle_ms = o->idle_timeout_ms ? o->idle_timeout_ms : WWW_IDLE_MS;
    w->header_ms = o->header_timeout_ms ? o->header_timeout_ms : WWW_HEADER_MS;
    w->keepalive_ms = o->keepalive_timeout_ms ? o->keepalive_timeout_ms : WWW_KEEPALIVE_MS;
    w->head_deadline = o->first_deadline ? o->first_deadline : uv_now(w->loop) + w->header_ms;
    w->plain_on_https = o->plain_on_https;
    w->started = uv_now(w->loop);
    w->dir = o->dir ? strdup(o->dir) : NULL;
    w->server = strdup(o->server_name ? o->server_name : "nginx");
    w->default_host = strdup(o->default_host ? o->default_host : "localhost");
    w->outstanding = 1; /* the timer's close */
    uv_timer_init(w->loop, &w->timer);
    w->timer.data = w;
    tt_link_set_handler(l, &www_handler, w);
    tt_link_read_stop(l);
    if ((o->dir && w->dir == NULL) || w->server == NULL || w->default_host == NULL ||
        !keep_input(w, early, early_len)) {
        stop(w, STOP_CLOSE);
        return;
    }
    /* The first answer is written from the loop, never inside this call. */
    uv_timer_start(&w->timer, on_start, 0, 0);
}

void tt_www_serve(tt_link *l, const char *dir_or_null, const uint8_t *early, size_t early_len,
                  unsigned idle_timeout_ms, const char *server_name)
{
    tt_www_opts o = {
        .dir = dir_or_null,
        .server_name = server_name,
        .idle_timeout_ms = idle_timeout_ms,
        .header_timeout_ms = idle_timeout_ms,
        .keepalive_timeout_ms = idle_timeout_ms,
    };
    tt_www_serve_opts(l, &o, early, early_len);
}
