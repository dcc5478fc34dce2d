#include "core/target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int tt_target_set(tt_target *t, const char *host, uint16_t port)
{
    if (t == NULL || host == NULL)
        return -EINVAL;

    /* strnlen bounds the scan, so a missing terminator past 256 bytes is never
     * read; anything longer than a SOCKS5 name is refused here rather than cut. */
    size_t len = strnlen(host, TT_TARGET_NAME_MAX + 1);
    if (len == 0 || len > TT_TARGET_NAME_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c < 0x20 || c == 0x7f)
            return -EINVAL;
    }

    /* Build into a local copy so that T is untouched on failure and never
     * carries stale bytes from an earlier use in the unused union tail. */
    tt_target tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.port = port;
    if (inet_pton(AF_INET, host, tmp.u.v4) == 1) {
        tmp.type = TT_TARGET_IPV4;
    } else if (inet_pton(AF_INET6, host, tmp.u.v6) == 1) {
        tmp.type = TT_TARGET_IPV6;
    } else {
        tmp.type = TT_TARGET_NAME;
        tmp.name_len = (uint8_t)len;
        memcpy(tmp.u.name, host, len);
        tmp.u.name[len] = '\0';
    }
    *t = tmp;
    return 0;
}

const char *tt_target_format(const tt_target *t, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return buf;
    if (t == NULL) {
        snprintf(buf, len, "(none)");
        return buf;
    }

    char ip[INET6_ADDRSTRLEN];
    switch (t->type) {
    case TT_TARGET_IPV4:
        if (inet_ntop(AF_INET, t->u.v4, ip, sizeof ip) == NULL)
            break;
        snprintf(buf, len, "%s:%u", ip, (unsigned)t->port);
        return buf;
    case TT_TARGET_IPV6:
        if (inet_ntop(AF_INET6, t->u.v6, ip, sizeof ip) == NULL)
            break;
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)t->port);
        return buf;
    case TT_TARGET_NAME: {
        /* A name may come straight off the wire (SOCKS5 or a stream header),
         * where any byte is possible. Control and non-ASCII bytes are shown as
         * '?' so that a hostile name cannot forge or split log lines; the
         * substitution keeps the length, so TT_TARGET_STRLEN still suffices. */
        char name[TT_TARGET_NAME_MAX + 1];
        size_t n = t->name_len;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)t->u.name[i];
            name[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
        }
        name[n] = '\0';
        snprintf(buf, len, "%s:%u", name, (unsigned)t->port);
        return buf;
    }
    default:
        break;
    }
    snprintf(buf, len, "(bad target type %u)", (unsigned)t->type);
    return buf;
}

void tt_target_none(tt_target *t)
{
    memset(t, 0, sizeof *t);
    t->type = TT_TARGET_IPV4;
}

bool tt_target_is_none(const tt_target *t)
{
    static const uint8_t zero[4];
    return t->type == TT_TARGET_IPV4 && t->port == 0 && memcmp(t->u.v4, zero, 4) == 0;
}
