/* Splitting a child's output into lines, sans-I/O: the caller reads into the
 * free space the splitter offers and tells it how much arrived; each complete
 * line is handed over without its newline (and without a '\r' before it). A
 * line longer than the buffer arrives in pieces, so memory stays bounded. */
#ifndef TT_CORE_LINES_H
#define TT_CORE_LINES_H

#include <stddef.h>

#define TT_LINES_MAX 512

typedef void (*tt_lines_cb)(void *ud, const char *line);

typedef struct tt_lines {
    size_t len;             /* private: bytes of the unfinished line */
    char buf[TT_LINES_MAX]; /* private */
} tt_lines;

/* The free space to read into: *N bytes at the returned pointer (never 0). */
char *tt_lines_space(tt_lines *l, size_t *n);

/* Takes N bytes just read into the space and calls CB for each complete line
 * (and for a full buffer). */
void tt_lines_commit(tt_lines *l, size_t n, tt_lines_cb cb, void *ud);

/* At the end of the input: hands over an unfinished last line, if any. */
void tt_lines_flush(tt_lines *l, tt_lines_cb cb, void *ud);

#endif
