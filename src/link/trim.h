/* Giving memory back after a burst of connections. glibc's malloc keeps
 * freed memory in its arenas for reuse instead of returning it to the
 * system: after 10,000 connections had closed, an idle server still held
 * tens of megabytes. Nothing leaks; the allocator retains. So when the
 * number of live connections has fallen to half of its peak (a peak of at
 * least TT_TRIM_MIN_PEAK), a trim (malloc_trim) runs TT_TRIM_DELAY_MS later,
 * from a timer: at most once per halving, never per connection. */
#ifndef TT_LINK_TRIM_H
#define TT_LINK_TRIM_H

#include <uv.h>

#define TT_TRIM_MIN_PEAK 64
#define TT_TRIM_DELAY_MS 1000

/* The process now holds LIVE connection sockets (link/tcp.c calls this at
 * every change). May start a one-shot timer on LOOP; the timer's handle is
 * closed once it has run, so a loop with no trim pending has none. */
void tt_trim_note(uv_loop_t *loop, int live);

#endif
