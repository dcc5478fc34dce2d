/* The HTTP streaming carriers, http:// and https:// (docs/HTTP.md): what
 * the client (carrier/http.c) and the server (carrier/httpsrv.c) share. A
 * tunnel is a link made of one long GET (downstream) and POSTs of bounded
 * length (upstream); codec/hts.h has the wire format. */
#ifndef TT_CARRIER_HTTP_H
#define TT_CARRIER_HTTP_H

#include <stdint.h>

#include "carrier/webbase.h"
#include "codec/hts.h"
#include "core/replay.h"

/* The largest POST body the client sends: below nginx's default
 * client_max_body_size (1m), so a stock front end passes it. */
#define TT_HTTP_POST_MAX (512 * 1024)
/* ... and the largest the server takes. */
#define TT_HTTP_POST_TAKE (1024 * 1024)
/* POSTs the client keeps in flight at once, each on its own connection. */
#define TT_HTTP_POSTS 4
/* POSTs the server takes ahead of the one it reads (bounded reordering:
 * each waits, unread, for its turn). At least TT_HTTP_POSTS. */
#define TT_HTTP_REORDER 16
#define TT_HTTP_TABLE 256 /* buckets of the server's tunnel table */

typedef struct tt_http_stun tt_http_stun;

typedef struct tt_http_carrier {
    tt_webbase w; /* first: the carrier is a tt_webbase */
    tt_replay replay;
    const char *cookie_name;
    char host_header[300]; /* client */
    char origin[310];      /* client */
    /* Server: the live tunnels by id. */
    tt_http_stun *table[TT_HTTP_TABLE];
} tt_http_carrier;

/* Server: serves CFG's listener (carrier/httpsrv.c). */
int tt_http_server_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb,
                       void *ud, tt_carrier **out, const char **why);

/* Server: detaches the live tunnels from C before it is freed. */
void tt_http_server_forget(tt_http_carrier *c);

/* The carrier's Host header and cookie name: both sides (client_new). */
const tt_carrier_type *tt_http_type_for(const tt_carrier_cfg *cfg);

#endif
