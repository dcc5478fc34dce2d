#include "link/trim.h"

#include <stdbool.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/log.h"

static int g_peak;  /* the most live sockets since the last trim */
static int g_live;  /* live sockets now */
static int g_from;  /* the peak the pending trim follows, for the log */
static bool g_open; /* the timer's handle is initialised and not yet closed */
static uv_timer_t g_timer;

static void on_closed(uv_handle_t *h)
{
    (void)h;
    g_open = false;
}

static void on_trim(uv_timer_t *t)
{
#if defined(__GLIBC__)
    /* The cost (a walk over the free chunks, madvise on whole free pages)
     * is paid once per halving of the connections, from the loop. */
    malloc_trim(0);
#endif
    tt_debug("memory: gave free heap back to the system (connections fell from %d to %d)", g_from,
             g_live);
    g_peak = g_live;
    uv_close((uv_handle_t *)t, on_closed);
}

void tt_trim_note(uv_loop_t *loop, int live)
{
    g_live = live;
    if (live > g_peak) {
        g_peak = live;
        return;
    }
    if (g_open || g_peak < TT_TRIM_MIN_PEAK || live > g_peak / 2)
        return;
    g_from = g_peak;
    uv_timer_init(loop, &g_timer);
    g_open = true;
    uv_timer_start(&g_timer, on_trim, TT_TRIM_DELAY_MS, 0);
}
