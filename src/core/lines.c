#include "core/lines.h"

#include <string.h>

char *tt_lines_space(tt_lines *l, size_t *n)
{
    *n = TT_LINES_MAX - 1 - l->len;
    return l->buf + l->len;
}

static void emit(tt_lines *l, size_t n, tt_lines_cb cb, void *ud)
{
    if (n > 0 && l->buf[n - 1] == '\r')
        n--;
    l->buf[n] = '\0';
    cb(ud, l->buf);
}

void tt_lines_commit(tt_lines *l, size_t n, tt_lines_cb cb, void *ud)
{
    size_t end = l->len + n;
    size_t start = 0;
    for (size_t i = l->len; i < end; i++) {
        if (l->buf[i] != '\n')
            continue;
        memmove(l->buf, l->buf + start, i - start);
        emit(l, i - start, cb, ud);
        start = i + 1;
    }
    memmove(l->buf, l->buf + start, end - start);
    l->len = end - start;
    /* A line that fills the buffer is handed over in pieces. */
    if (l->len == TT_LINES_MAX - 1) {
        emit(l, l->len, cb, ud);
        l->len = 0;
    }
}

void tt_lines_flush(tt_lines *l, tt_lines_cb cb, void *ud)
{
    if (l->len > 0)
        emit(l, l->len, cb, ud);
    l->len = 0;
}
