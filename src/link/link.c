#include "link/link.h"

int tt_link_write1(tt_link *l, const void *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    return l->ops->write(l, &b, 1);
}

uint64_t tt_link_next_id(void)
{
    /* The loop is single-threaded, so a plain counter is enough. */
    static uint64_t next = 1;
    return next++;
}
