/* The relay's rules, driven through in-memory links: data both ways,
 * backpressure by the high watermark, half-close, no close before queued
 * data is out, errors, and the idle timeout. */
#include <criterion/criterion.h>
#include <string.h>

#include "link/relay.h"
#include "memlink.h"

static uv_loop_t loop;
static memlink a, b;

static void setup(void)
{
    uv_loop_init(&loop);
    memlink_init(&a, &loop);
    memlink_init(&b, &loop);
}

static void teardown(void)
{
    /* Closes whatever the test left open, then checks nothing is left. */
    tt_relay_close_all();
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
    memlink_free(&a);
    memlink_free(&b);
}

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 10);

static void start(unsigned idle_ms, size_t high)
{
    tt_relay_opts o = {.idle_timeout_ms = idle_ms, .high_watermark = high, .label = "test"};
    cr_assert_eq(tt_relay_start(&a.base, &b.base, &o), 0);
    cr_assert(a.reading && b.reading, "the relay reads both links");
}

Test(relay, moves_data_both_ways)
{
    start(0, 0);
    cr_assert(memlink_deliver(&a, "hello", 5));
    cr_assert(memlink_deliver(&b, "world!", 6));
    cr_assert_eq(b.written_len, 5);
    cr_assert_eq(memcmp(b.written, "hello", 5), 0);
    cr_assert_eq(a.written_len, 6);
    cr_assert_eq(memcmp(a.written, "world!", 6), 0);
}

Test(relay, stops_reading_source_over_high_watermark_and_resumes_on_drain)
{
    b.hold = true;
    start(0, 100);
    static const char chunk[64] = {0};
    cr_assert(memlink_deliver(&a, chunk, 64));
    cr_assert(a.reading, "64 pending bytes are under the mark");
    cr_assert(memlink_deliver(&a, chunk, 64));
    cr_assert_not(a.reading, "128 pending bytes are over the mark of 100");
    cr_assert(b.reading, "the other direction is not affected");
    memlink_drain(&b);
    cr_assert(a.reading, "reading resumes once the sink drained");
}

Test(relay, half_close_is_forwarded_and_other_direction_continues)
{
    start(0, 0);
    memlink_eof(&a);
    cr_assert(b.shut, "EOF from A shuts down B's write side");
    cr_assert_not(a.closing || b.closing);
    cr_assert(memlink_deliver(&b, "answer", 6), "B still reads after A's EOF");
    cr_assert_eq(a.written_len, 6);
    memlink_eof(&b);
    cr_assert(a.shut);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(a.closed && b.closed, "both directions ended: both links closed");
}

/* A side that hit its EOF before the relay (an application's half-close
 * while its stream was opening) is never read: the other side is shut down
 * at once and carries the answer. */
Test(relay, a_side_ended_before_the_relay_is_not_read)
{
    tt_relay_opts o = {.label = "test", .a_eof = true};
    cr_assert_eq(tt_relay_start(&a.base, &b.base, &o), 0);
    cr_assert_not(a.reading, "A ended before: not read");
    cr_assert(b.reading);
    cr_assert(b.shut, "B's write side is shut down at once");
    cr_assert(memlink_deliver(&b, "answer", 6));
    cr_assert_eq(a.written_len, 6);
    memlink_eof(&b);
    cr_assert(a.shut);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(a.closed && b.closed);
    cr_assert_not(a.aborted || b.aborted, "a clean end");
}

Test(relay, waits_for_queued_data_before_closing)
{
    a.hold = true;
    start(0, 0);
    cr_assert(memlink_deliver(&b, "last words", 10));
    memlink_eof(&b);
    memlink_eof(&a);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_not(a.closing, "A still has queued bytes: not closed yet");
    memlink_drain(&a);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(a.closed && b.closed);
}

Test(relay, error_on_either_link_closes_both)
{
    start(0, 0);
    memlink_error(&b, UV_ECONNRESET);
    cr_assert(a.closing && b.closing);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(a.closed && b.closed);
}

Test(relay, error_is_passed_on_as_an_abort_not_an_end)
{
    start(0, 0);
    memlink_error(&b, UV_EPROTO);
    cr_assert(a.aborted, "the other side must see a failure, not a clean end");
    cr_assert_not(b.aborted, "the failed link itself is just closed");
    memlink_free(&a);
}

Test(relay, clean_end_is_not_an_abort)
{
    start(0, 0);
    memlink_eof(&a);
    memlink_eof(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(a.closed && b.closed);
    cr_assert_not(a.aborted || b.aborted);
}

Test(relay, write_failure_closes_both)
{
    start(0, 0);
    b.shut = true; /* writes to B now fail with EPIPE */
    memlink_deliver(&a, "x", 1);
    cr_assert(a.closing && b.closing);
}

Test(relay, idle_timeout_closes_an_idle_pair)
{
    start(30, 0);
    uint64_t t0 = uv_now(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(a.closed && b.closed, "the idle timer closed the pair");
    cr_assert_geq(uv_now(&loop) - t0, 30, "not before the timeout");
}

static void on_tick(uv_timer_t *t)
{
    /* Traffic every 20 ms keeps a 200 ms idle timer from firing for 400 ms.
     * The margins are wide so that a loaded machine (a loop turn late by
     * tens of milliseconds) cannot fire the idle timer between ticks. */
    int *n = t->data;
    if (a.closing) {
        uv_timer_stop(t);
        return;
    }
    memlink_deliver(&a, "k", 1);
    if (++*n == 20)
        uv_timer_stop(t);
}

Test(relay, activity_defers_the_idle_timeout)
{
    start(200, 0);
    uv_timer_t tick;
    int n = 0;
    uv_timer_init(&loop, &tick);
    tick.data = &n;
    uv_timer_start(&tick, on_tick, 20, 20);
    uint64_t t0 = uv_now(&loop);
    while (n < 20 && !a.closing)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(n, 20);
    cr_assert_not(a.closing, "closed although data moved every 20 ms");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(a.closed);
    cr_assert_geq(uv_now(&loop) - t0, 400 + 200 - 20);
    /* The timer lives on this stack frame: finish closing it here. */
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}
