/* Fuzz harness for the session codec (codec/sess.h) and core
 * (session/core.h).
 *
 * Input layout:
 *   byte 0      bits 0-2: K, the number of chunk sizes that follow;
 *               bit 3: the first 73 bytes after the sizes are a JOIN whose
 *               MAC is recomputed under the harness's key (so the checks
 *               behind the MAC are reached), else taken as they are
 *   bytes 1..K  chunk sizes for the frame reader (byte % 64; 0: empty feed)
 *   then        a JOIN (73 bytes), a JOINED (26 bytes), then frames
 *
 * The JOIN and JOINED decoders must accept or refuse without reading past
 * their input, and a JOIN they accept must encode back to the same bytes.
 * The frames are read whole and in the chunks: both readings must report
 * the same events (DATA pieces joined) and the same refusal at the same
 * byte. Their events drive a core (input, acknowledgments, rejoins), which
 * must keep its offsets ordered and free everything. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/sess.h"
#include "session/core.h"

#include "fuzz_check.h"

#define MAX_EV 2048

typedef struct rec {
    int kind;
    uint64_t offset, cum, sum;
    size_t len;
    bool fin;
    uint8_t code;
    unsigned nsack;
} rec;

typedef struct result {
    rec *recs;
    size_t n;
    int rc;
    size_t taken;
} result;

/* Reads IN in pieces of the sizes in SIZES (NSIZES of them, used in turn;
 * none: whole). DATA pieces of one frame are joined into one record. */
static void read_frames(const uint8_t *in, size_t n, const uint8_t *sizes, size_t nsizes,
                        result *res)
{
    tt_sess_reader r;
    tt_sess_reader_init(&r);
    res->n = 0;
    res->rc = 0;
    size_t at = 0, next = 0;
    bool joining = false;
    while (at < n && res->n < MAX_EV) {
        size_t piece = nsizes ? sizes[next++ % nsizes] % 64 : n - at;
        if (piece > n - at)
            piece = n - at;
        size_t off = 0;
        do {
            size_t used = 0;
            tt_sess_ev ev;
            const char *why = NULL;
            int rc = tt_sess_read(&r, in + at + off, piece - off, &used, &ev, &why);
            CHECK(used <= piece - off);
            off += used;
            if (rc < 0) {
                CHECK(why != NULL && rc == -EPROTO);
                res->rc = rc;
                res->taken = at + off;
                return;
            }
            if (rc == 0)
                break;
            if (ev.kind == TT_SESS_EV_DATA) {
                CHECK(ev.data == NULL || (ev.data >= in && ev.data + ev.len <= in + n));
                rec *x = joining ? &res->recs[res->n - 1] : &res->recs[res->n++];
                if (!joining)
                    *x = (rec){.kind = ev.kind, .offset = ev.offset};
                CHECK(x->offset + x->len == ev.offset);
                for (size_t i = 0; i < ev.len; i++)
                    x->sum = x->sum * 31 + ev.data[i];
                x->len += ev.len;
                x->fin = ev.fin;
                /* A piece that does not end its frame is followed by more. */
                joining = ev.len > 0 && tt_sess_reader_partial(&r);
            } else {
                joining = false;
                res->recs[res->n++] =
                    (rec){.kind = ev.kind, .cum = ev.cum, .code = ev.code, .nsack = ev.nsack};
            }
        } while (off < piece && res->n < MAX_EV);
        at += piece;
    }
    res->taken = at;
}

static void drive_core(const result *res)
{
    tt_sess_core tx, rx;
    tt_sess_core_init(&tx);
    tt_sess_core_init(&rx);
    tx.inflight_max = 4096;
    uint8_t junk[3000] = {0};
    uv_buf_t b = uv_buf_init((char *)junk, sizeof junk);
    for (size_t i = 0; i < res->n; i++) {
        const rec *x = &res->recs[i];
        if (x->kind == TT_SESS_EV_DATA) {
            size_t skip;
            bool eof;
            uint64_t before = rx.rcv_nxt;
            if (tt_sess_core_input(&rx, x->offset, x->len, x->fin, &skip, &eof) == 0)
                CHECK(skip <= x->len && rx.rcv_nxt >= before);
        } else if (x->kind == TT_SESS_EV_ACK) {
            if (tt_sess_core_write(&tx, &b, 1) == 0) {
                uint8_t hdr[TT_SESS_HDR_LEN];
                const uint8_t *d;
                size_t len;
                while (tt_sess_core_next(&tx, hdr, &d, &len))
                    ;
            }
            (void)tt_sess_core_ack(&tx, x->cum);
            if (x->nsack & 1)
                (void)tt_sess_core_rejoin(&tx, x->cum);
            if (x->nsack & 2)
                tt_sess_core_shutdown(&tx);
        }
        CHECK(tx.snd_una <= tx.snd_end + 1 && tx.snd_nxt <= tx.snd_end + 1);
    }
    tt_sess_core_free(&tx);
    tt_sess_core_free(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t psk[32] = {7};
    uint8_t key[TT_SESS_KEY_LEN];
    CHECK(tt_sess_join_key(psk, key) == 0);
    cursor c = {data, size, 0};
    uint8_t flags = u8(&c);
    size_t nsizes = flags & 7;
    uint8_t sizes[8] = {0};
    /* Copied rather than read byte by byte: GCC's vectoriser warns (falsely)
     * about the loop. Past the input's end the sizes stay 0. */
    size_t have = size - c.off < nsizes ? size - c.off : nsizes;
    memcpy(sizes, data + c.off, have);
    c.off += nsizes;
    bool any = false;
    for (size_t i = 0; i < nsizes; i++)
        any = any || sizes[i] % 64 != 0;
    /* Sizes that are all empty feeds would never advance. */
    if (!any)
        nsizes = 0;

    uint8_t join[TT_SESS_JOIN_LEN];
    for (size_t i = 0; i < sizeof join; i++)
        join[i] = u8(&c);
    if (flags & 8) {
        tt_sess_join j = {.flags = join[4], .time_ms = 0};
        memcpy(j.id, join + 5, 16);
        memcpy(j.nonce, join + 21, 16);
        j.counter = (uint32_t)join[45] << 24 | join[46];
        j.offset = (uint64_t)join[49] << 56 | join[50];
        tt_sess_join_encode(&j, key, join);
    }
    tt_sess_join d;
    const char *why = NULL;
    int rc = tt_sess_join_decode(join, key, &d, &why);
    CHECK(rc == 0 || ((rc == -EPROTO || rc == -EBADMSG) && why));
    if (rc == 0) {
        uint8_t again[TT_SESS_JOIN_LEN];
        tt_sess_join_encode(&d, key, again);
        CHECK(memcmp(again, join, sizeof join) == 0);
    }
    uint8_t joined[TT_SESS_JOINED_LEN];
    for (size_t i = 0; i < sizeof joined; i++)
        joined[i] = u8(&c);
    uint8_t status;
    uint64_t off;
    rc = tt_sess_joined_decode(joined, key, join + 57, &status, &off, &why);
    CHECK(rc == 0 || ((rc == -EPROTO || rc == -EBADMSG) && why));

    const uint8_t *frames = c.off < size ? data + c.off : data + size;
    size_t n = c.off < size ? size - c.off : 0;
    result whole = {calloc(MAX_EV, sizeof(rec)), 0, 0, 0};
    result parts = {calloc(MAX_EV, sizeof(rec)), 0, 0, 0};
    read_frames(frames, n, NULL, 0, &whole);
    read_frames(frames, n, sizes, nsizes, &parts);
    if (whole.n < MAX_EV && parts.n < MAX_EV) {
        CHECK(whole.rc == parts.rc);
        if (whole.rc < 0)
            CHECK(whole.taken == parts.taken);
        CHECK(whole.n == parts.n);
        for (size_t i = 0; i < whole.n; i++) {
            CHECK(whole.recs[i].kind == parts.recs[i].kind);
            CHECK(whole.recs[i].len == parts.recs[i].len);
            CHECK(whole.recs[i].sum == parts.recs[i].sum);
            CHECK(whole.recs[i].cum == parts.recs[i].cum);
        }
    }
    drive_core(&whole);
    free(whole.recs);
    free(parts.recs);
    return 0;
}
