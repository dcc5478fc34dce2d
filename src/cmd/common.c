#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "link/relay.h"
#include "mux/session.h"

typedef struct runner {
    uv_signal_t sigint, sigterm, sighup;
    void (*stop)(void *ud);
    void *ud;
} runner;

/* SIGHUP's default action would end the process without a word. It reopens
 * the log file, which is what logrotate expects; configuration cannot be
 * reloaded yet, so beyond that it is logged and ignored. */
static void on_sighup(uv_signal_t *s, int signum)
{
    (void)s, (void)signum;
    int rc = tt_log_reopen();
    if (rc < 0)
        tt_error("received SIGHUP: cannot reopen the log file (%s); still writing to the old one",
                 strerror(-rc));
    tt_warn("received SIGHUP: %sreloading is not supported yet; ignored (SIGTERM stops tt)",
            rc > 0 ? "reopened the log file; " : "");
}

static void on_signal(uv_signal_t *s, int signum)
{
    runner *r = s->data;
    tt_info("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_signal_stop(&r->sigint);
    uv_signal_stop(&r->sigterm);
    uv_signal_stop(&r->sighup);
    r->stop(r->ud);
    tt_relay_close_all();
    tt_mux_close_all();
    uv_stop(s->loop);
}

void tt_cmd_run(uv_loop_t *loop, void (*stop)(void *ud), void *ud)
{
    static runner r;
    r.stop = stop;
    r.ud = ud;
    /* A write to a peer that has gone must report EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &r.sigint);
    uv_signal_init(loop, &r.sigterm);
    uv_signal_init(loop, &r.sighup);
    r.sigint.data = r.sigterm.data = r.sighup.data = &r;
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);
    uv_signal_start(&r.sighup, on_sighup, SIGHUP);
    /* What arrived since tt_cmd_service_start is delivered now. */
    tt_cmd_stop_signals(SIG_UNBLOCK);
    uv_run(loop, UV_RUN_DEFAULT);
    /* Let the closes started by STOP finish, so their memory is released. */
    uv_close((uv_handle_t *)&r.sigint, NULL);
    uv_close((uv_handle_t *)&r.sigterm, NULL);
    uv_close((uv_handle_t *)&r.sighup, NULL);
    for (int i = 0; i < 8 && uv_run(loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    tt_cmd_service_stop();
}

void tt_cmd_wait_closes(uv_loop_t *loop)
{
    while (tt_carrier_closing() > 0 && uv_run(loop, UV_RUN_ONCE) != 0)
        ;
}
