/* Stream-open header and reply codec.
 *
 * The parser copies bytes into its buffer only up to the next point where
 * something can be decided (the version, flags and type bytes, the name
 * length, the end of the header), then validates the prefix it has. Every
 * check thus sees the same prefix whatever the split of the input, so results
 * do not depend on how the bytes arrived, and the copy never runs past the
 * header into the payload.
 *
 * The parser keeps no state beyond its buffer: a call after a complete header
 * returns 1 again with the same target and takes nothing, and a call after a
 * malformed one returns -EPROTO again. Both make a repeated call harmless. */
#include "codec/streamhdr.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Offsets of the fixed fields. */
#define HDR_VER 0
#define HDR_FLAGS 1
#define HDR_ATYP 2
#define HDR_ADDR 3

/* Checks the first HAVE bytes of a header. Returns 0 and sets *NEED to the
 * length the buffer must reach before the next decision (the whole header once
 * that is known), or -EPROTO with *WHY set. */
static int check_prefix(const uint8_t *b, size_t have, size_t *need, const char **why)
{
    if (have > HDR_VER && b[HDR_VER] != TT_STREAMHDR_VERSION) {
        *why = "bad stream header version";
        return -EPROTO;
    }
    if (have > HDR_FLAGS && b[HDR_FLAGS] != 0) {
        *why = "nonzero stream header flags";
        return -EPROTO;
    }
    if (have <= HDR_ATYP) {
        *need = HDR_ATYP + 1;
        return 0;
    }

    switch (b[HDR_ATYP]) {
    case TT_TARGET_IPV4:
        *need = HDR_ADDR + 4 + 2;
        return 0;
    case TT_TARGET_IPV6:
        *need = HDR_ADDR + 16 + 2;
        return 0;
    case TT_TARGET_NAME:
        break;
    default:
        *why = "unknown address type in stream header";
        return -EPROTO;
    }

    if (have <= HDR_ADDR) {
        *need = HDR_ADDR + 1;
        return 0;
    }
    size_t n = b[HDR_ADDR];
    if (n == 0) {
        *why = "empty name in stream header";
        return -EPROTO;
    }
    *need = HDR_ADDR + 1 + n + 2;
    /* The name is checked only once it is whole, so a NUL is reported at the
     * same point whatever the split. */
    if (have >= *need && memchr(b + HDR_ADDR + 1, 0, n) != NULL) {
        *why = "NUL byte in stream header name";
        return -EPROTO;
    }
    return 0;
}

/* Fills T from a complete, validated header of length LEN. */
static void decode(const uint8_t *b, size_t len, tt_target *t)
{
    memset(t, 0, sizeof *t);
    t->type = b[HDR_ATYP];
    t->port = (uint16_t)((unsigned)b[len - 2] << 8 | b[len - 1]);
    if (t->type == TT_TARGET_IPV4) {
        memcpy(t->u.v4, b + HDR_ADDR, 4);
    } else if (t->type == TT_TARGET_IPV6) {
        memcpy(t->u.v6, b + HDR_ADDR, 16);
    } else {
        t->name_len = b[HDR_ADDR];
        memcpy(t->u.name, b + HDR_ADDR + 1, t->name_len);
        t->u.name[t->name_len] = '\0';
    }
}

bool tt_target_is_nameserver(const tt_target *t)
{
    return t->type == TT_TARGET_NAME && t->name_len == sizeof TT_STREAM_NAMESERVER - 1 &&
           strncasecmp(t->u.name, TT_STREAM_NAMESERVER, t->name_len) == 0;
}

size_t tt_streamhdr_encode(const tt_target *t, uint8_t *out)
{
    size_t n = HDR_ADDR;

    switch (t->type) {
    case TT_TARGET_IPV4:
        memcpy(out + n, t->u.v4, 4);
        n += 4;
        break;
    case TT_TARGET_IPV6:
        memcpy(out + n, t->u.v6, 16);
        n += 16;
        break;
    case TT_TARGET_NAME:
        /* A name the parser would refuse is refused here too, so whatever is
         * encoded parses back to the same target. */
        if (t->name_len == 0 || memchr(t->u.name, 0, t->name_len) != NULL)
            return 0;
        out[n++] = t->name_len;
        memcpy(out + n, t->u.name, t->name_len);
        n += t->name_len;
        break;
    default:
        return 0;
    }
    out[HDR_VER] = TT_STREAMHDR_VERSION;
    out[HDR_FLAGS] = 0;
    out[HDR_ATYP] = t->type;
    out[n++] = (uint8_t)(t->port >> 8);
    out[n++] = (uint8_t)(t->port & 0xFF);
    return n;
}

void tt_streamhdr_parser_init(tt_streamhdr_parser *p)
{
    p->have = 0;
}

int tt_streamhdr_parse(tt_streamhdr_parser *p, const uint8_t *data, size_t len, size_t *used,
                       tt_target *t, const char **why)
{
    size_t off = 0;

    for (;;) {
        size_t need = 0;
        int rc = check_prefix(p->buf, p->have, &need, why);
        if (rc < 0) {
            *used = off;
            return rc;
        }
        if (p->have == need) {
            decode(p->buf, p->have, t);
            *used = off;
            return 1;
        }
        if (off == len) {
            *used = off;
            return 0;
        }
        size_t n = need - p->have;
        if (n > len - off)
            n = len - off;
        memcpy(p->buf + p->have, data + off, n);
        p->have += n;
        off += n;
    }
}

size_t tt_streamreply_encode(uint8_t code, uint8_t out[TT_STREAMREPLY_LEN])
{
    out[0] = TT_STREAMHDR_VERSION;
    out[1] = code;
    return TT_STREAMREPLY_LEN;
}

int tt_streamreply_parse(const uint8_t in[TT_STREAMREPLY_LEN])
{
    if (in[0] != TT_STREAMHDR_VERSION)
        return -EPROTO;
    return in[1];
}
