/* Tests of the line splitter (core/lines): whole lines out of input cut at
 * every byte boundary, "\r\n" endings, an unfinished last line, and a line
 * longer than the buffer handed over in bounded pieces. */
#include <criterion/criterion.h>

#include <string.h>

#include "core/lines.h"

typedef struct got {
    char text[4096]; /* the lines joined with '|' */
    int n;
} got;

static void collect(void *ud, const char *line)
{
    got *g = ud;
    cr_assert_lt(strlen(line), (size_t)TT_LINES_MAX);
    strcat(g->text, line);
    strcat(g->text, "|");
    g->n++;
}

/* Feeds S in pieces of at most STEP bytes, then flushes. */
static void feed(tt_lines *l, const char *s, size_t step, got *g)
{
    size_t n = strlen(s);
    while (n > 0) {
        size_t room;
        char *space = tt_lines_space(l, &room);
        cr_assert_gt(room, 0);
        size_t k = n < step ? n : step;
        if (k > room)
            k = room;
        memcpy(space, s, k);
        tt_lines_commit(l, k, collect, g);
        s += k;
        n -= k;
    }
    tt_lines_flush(l, collect, g);
}

Test(lines, every_split)
{
    const char *in = "Permission denied (publickey).\r\n\ndebug1: x\nlast";
    for (size_t step = 1; step <= strlen(in); step++) {
        tt_lines l = {0};
        got g = {0};
        feed(&l, in, step, &g);
        cr_expect_str_eq(g.text, "Permission denied (publickey).||debug1: x|last|", "step %zu",
                         step);
        cr_expect_eq(g.n, 4);
    }
}

Test(lines, long_line_in_pieces)
{
    static char in[1300];
    memset(in, 'a', 1200);
    strcpy(in + 1200, "\nb\n");
    tt_lines l = {0};
    got g = {0};
    feed(&l, in, 700, &g);
    /* 511 + 511 + 178 bytes of 'a', then "b". */
    cr_expect_eq(g.n, 4);
    cr_expect_eq(strlen(g.text), 1200 + 1 + 4);
    cr_expect_str_eq(g.text + strlen(g.text) - 2, "b|");
}

Test(lines, flush_of_nothing)
{
    tt_lines l = {0};
    got g = {0};
    tt_lines_flush(&l, collect, &g);
    cr_expect_eq(g.n, 0);
}
