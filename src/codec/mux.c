/* tt-mux frame codec.
 *
 * The reader copies only what it must decide on: the preface (compared byte
 * by byte), the 8-byte header and the payload of control frames (at most 8
 * bytes). DATA payload is handed out in place, in pieces as long as each
 * input allows, so a bulk transfer costs no copy here. Each check runs once
 * the bytes it looks at are complete, so a refusal happens at the same byte
 * whatever the split of the input. */
#include "codec/mux.h"

#include <errno.h>
#include <string.h>

const uint8_t tt_mux_preface[TT_MUX_PREFACE_LEN] = {0xF7, 0x54, 0x4D, 0x01};

int tt_mux_is_preface(const uint8_t *buf, size_t len)
{
    size_t n = len < TT_MUX_PREFACE_LEN ? len : TT_MUX_PREFACE_LEN;
    if (memcmp(buf, tt_mux_preface, n) != 0)
        return 0;
    return n == TT_MUX_PREFACE_LEN ? 1 : -1;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t tt_mux_hdr_encode(const tt_mux_hdr *h, uint8_t out[TT_MUX_HDR_LEN])
{
    out[0] = h->type;
    out[1] = h->flags;
    put16(out + 2, h->len);
    put32(out + 4, h->stream);
    return TT_MUX_HDR_LEN;
}

static size_t ctrl_encode(uint8_t type, uint8_t flags, uint32_t stream, const uint8_t *payload,
                          uint16_t len, uint8_t *out)
{
    tt_mux_hdr h = {.type = type, .flags = flags, .len = len, .stream = stream};
    tt_mux_hdr_encode(&h, out);
    memcpy(out + TT_MUX_HDR_LEN, payload, len);
    return TT_MUX_HDR_LEN + len;
}

size_t tt_mux_window_encode(uint32_t stream, uint32_t inc, uint8_t *out)
{
    uint8_t p[4];
    put32(p, inc);
    return ctrl_encode(TT_MUX_WINDOW, 0, stream, p, 4, out);
}

size_t tt_mux_reset_encode(uint32_t stream, uint32_t code, uint8_t *out)
{
    uint8_t p[4];
    put32(p, code);
    return ctrl_encode(TT_MUX_RESET, 0, stream, p, 4, out);
}

size_t tt_mux_ping_encode(bool ack, const uint8_t opaque[8], uint8_t *out)
{
    return ctrl_encode(TT_MUX_PING, ack ? TT_MUX_FLAG_ACK : 0, 0, opaque, 8, out);
}

size_t tt_mux_goaway_encode(uint32_t last, uint32_t code, uint8_t *out)
{
    uint8_t p[8];
    put32(p, last);
    put32(p + 4, code);
    return ctrl_encode(TT_MUX_GOAWAY, 0, 0, p, 8, out);
}

/* The rules of one control type: its payload length and whether it names a
 * stream. */
static int check_ctrl(const tt_mux_hdr *h, uint8_t flags_ok, uint16_t len, bool on_stream,
                      const char *bad_flags, const char *bad_len, const char *bad_stream,
                      const char **why)
{
    if (h->flags & ~flags_ok) {
        *why = bad_flags;
        return -EPROTO;
    }
    if (h->len != len) {
        *why = bad_len;
        return -EPROTO;
    }
    if ((h->stream != 0) != on_stream) {
        *why = bad_stream;
        return -EPROTO;
    }
    return 0;
}

int tt_mux_hdr_check(const tt_mux_hdr *h, const char **why)
{
    if (h->stream > TT_MUX_ID_MAX) {
        *why = "reserved bit set in a stream id";
        return -EPROTO;
    }
    switch (h->type) {
    case TT_MUX_DATA:
        if (h->flags & ~(TT_MUX_FLAG_OPEN | TT_MUX_FLAG_FIN)) {
            *why = "unknown flags on a data frame";
            return -EPROTO;
        }
        if (h->len > TT_MUX_FRAME_MAX) {
            *why = "data frame longer than 16384 bytes";
            return -EPROTO;
        }
        if (h->stream == 0) {
            *why = "data frame on stream 0";
            return -EPROTO;
        }
        if (h->len == 0 && h->flags == 0) {
            *why = "empty data frame without flags";
            return -EPROTO;
        }
        return 0;
    case TT_MUX_WINDOW:
        return check_ctrl(h, 0, 4, true, "flags on a window update",
                          "window update whose length is not 4", "window update on stream 0", why);
    case TT_MUX_RESET:
        return check_ctrl(h, 0, 4, true, "flags on a reset", "reset whose length is not 4",
                          "reset on stream 0", why);
    case TT_MUX_PING:
        return check_ctrl(h, TT_MUX_FLAG_ACK, 8, false, "unknown flags on a ping",
                          "ping whose length is not 8", "ping on a stream", why);
    case TT_MUX_GOAWAY:
        return check_ctrl(h, 0, 8, false, "flags on a go-away", "go-away whose length is not 8",
                          "go-away on a stream", why);
    default:
        *why = "unknown frame type";
        return -EPROTO;
    }
}

void tt_mux_reader_init(tt_mux_reader *r, bool preface)
{
    memset(r, 0, sizeof *r);
    r->preface = preface ? TT_MUX_PREFACE_LEN : 0;
}

bool tt_mux_reader_partial(const tt_mux_reader *r)
{
    return r->have > 0 || r->in_payload || (r->preface > 0 && r->preface < TT_MUX_PREFACE_LEN);
}

static int refuse(tt_mux_reader *r, const char *msg, const char **why)
{
    r->error = msg;
    *why = msg;
    return -EPROTO;
}

/* Decodes a complete control payload into F. */
static int finish_ctrl(tt_mux_reader *r, tt_mux_frame *f, const char **why)
{
    const uint8_t *p = r->buf;
    switch (r->hdr.type) {
    case TT_MUX_WINDOW:
        f->value = get32(p);
        if (f->value == 0 || f->value > TT_MUX_WINDOW_MAX)
            return refuse(r, "window increment out of range", why);
        break;
    case TT_MUX_RESET:
        f->value = get32(p);
        break;
    case TT_MUX_PING:
        memcpy(f->opaque, p, 8);
        break;
    default: /* TT_MUX_GOAWAY */
        f->last_stream = get32(p);
        f->value = get32(p + 4);
        if (f->last_stream > TT_MUX_ID_MAX)
            return refuse(r, "reserved bit set in a go-away stream id", why);
        break;
    }
    return 0;
}

int tt_mux_reader_feed(tt_mux_reader *r, const uint8_t *in, size_t n, size_t *used, tt_mux_frame *f,
                       const char **why)
{
    size_t off = 0;
    if (r->error) {
        *used = 0;
        *why = r->error;
        return -EPROTO;
    }
    /* The preface, one byte at a time so a mismatch is found at its byte. */
    while (r->preface > 0 && off < n) {
        if (in[off++] != tt_mux_preface[TT_MUX_PREFACE_LEN - r->preface]) {
            *used = off;
            return refuse(r, "the connection does not start with the mux preface", why);
        }
        r->preface--;
    }
    if (!r->in_payload) {
        size_t take = TT_MUX_HDR_LEN - r->have;
        if (take > n - off)
            take = n - off;
        if (take > 0)
            memcpy(r->buf + r->have, in + off, take);
        r->have += take;
        off += take;
        if (r->have < TT_MUX_HDR_LEN) {
            *used = off;
            return 0;
        }
        const uint8_t *b = r->buf;
        r->hdr.type = b[0];
        r->hdr.flags = b[1];
        r->hdr.len = (uint16_t)(b[2] << 8 | b[3]);
        r->hdr.stream = get32(b + 4);
        r->have = 0;
        if (tt_mux_hdr_check(&r->hdr, why) < 0) {
            *used = off;
            r->error = *why;
            return -EPROTO;
        }
        r->in_payload = true;
        r->first = true;
        r->left = r->hdr.len;
    }
    memset(f, 0, sizeof *f);
    f->hdr = r->hdr;
    if (r->hdr.type == TT_MUX_DATA) {
        size_t take = r->left < n - off ? r->left : n - off;
        /* An empty piece only for a frame that is empty. */
        if (take == 0 && r->left > 0) {
            *used = off;
            return 0;
        }
        f->data = take > 0 ? in + off : NULL;
        f->len = take;
        f->first = r->first;
        r->first = false;
        r->left -= take;
        off += take;
        f->last = r->left == 0;
        if (f->last)
            r->in_payload = false;
        *used = off;
        return 1;
    }
    size_t take = r->hdr.len - r->have;
    if (take > n - off)
        take = n - off;
    if (take > 0)
        memcpy(r->buf + r->have, in + off, take);
    r->have += take;
    off += take;
    *used = off;
    if (r->have < r->hdr.len)
        return 0;
    r->have = 0;
    r->in_payload = false;
    if (finish_ctrl(r, f, why) < 0)
        return -EPROTO;
    f->first = f->last = true;
    return 1;
}
