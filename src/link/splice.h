/* Zero-copy relaying between two kernel sockets: splice(2) moves each
 * direction's bytes socket -> pipe -> socket inside the kernel, so they are
 * never copied into the process and back. The relay (link/relay.c) hands a
 * pair of plain TCP links over to it once a stream carries bulk data; the
 * rules are the relay's own:
 *
 * - Backpressure: a direction reads its source only while its pipe is
 *   empty, so at most one pipe's worth per direction (TT_SPLICE_PIPE_SIZE,
 *   kernel memory, bounded by the user's pipe quota) is in tt's hands, and
 *   a sink that does not read stops its source through TCP's own window.
 * - Half-close: a source's EOF is passed on (shutdown of the other socket's
 *   write side) once every byte it sent has left the pipe; the other
 *   direction keeps flowing.
 * - Errors: a failed read or write is reported against the socket that
 *   failed, so the relay can reset the other one.
 *
 * The sockets stay their links' (the module polls duplicates of their
 * descriptors), so closing and resetting them remain the links' job. */
#ifndef TT_LINK_SPLICE_H
#define TT_LINK_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* The pipe behind each direction: the bytes in flight through tt. 1 MiB
 * (the default pipe-max-size) keeps as much moving as the copying relay's
 * watermark plus a read; at 256 KiB the ssh:// path ran about 14% slower
 * than copying, at 1 MiB as fast or faster (docs/BENCHMARKS.md). */
#define TT_SPLICE_PIPE_SIZE (1024 * 1024)

typedef struct tt_splice tt_splice;

/* Direction FROM is the bytes read from socket FROM and written to socket
 * 1 - FROM. No handler runs after tt_splice_close. */
typedef struct tt_splice_handler {
    /* N bytes were read from socket FROM. */
    void (*on_moved)(void *ud, int from, size_t n);
    /* Socket FROM's peer half-closed, every byte it sent has been written
     * on, and the other socket's write side is shut down. */
    void (*on_eof)(void *ud, int from);
    /* Socket SIDE failed with ERR (a negative libuv code); the owner is
     * expected to close. */
    void (*on_error)(void *ud, int side, int err);
} tt_splice_handler;

typedef void (*tt_splice_close_cb)(void *ud);

/* Starts moving bytes between the connected TCP sockets FD[0] and FD[1],
 * which must be nonblocking with nothing queued for writing in user space.
 * ENDED[i] says that socket i already reported its EOF (its direction is
 * over and the other socket already shut down). Returns 0 with *OUT set, or
 * a negative errno when the kernel or the descriptor limit does not allow
 * it; the caller then keeps relaying as before, nothing having been read. */
int tt_splice_start(uv_loop_t *loop, const int fd[2], const bool ended[2],
                    const tt_splice_handler *h, void *ud, tt_splice **out);

/* Stops and frees S: its pipes (and the bytes in them, if any) are dropped;
 * CB (if not NULL) runs later from the loop. The sockets are left open. */
void tt_splice_close(tt_splice *s, tt_splice_close_cb cb, void *ud);

/* Whether splicing is allowed: false when the environment has TT_SPLICE=0,
 * for comparisons with the copying path (bench/, tests). */
bool tt_splice_enabled(void);

#endif
