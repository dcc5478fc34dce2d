/* UDP sockets as datagram layers (link/dgram.h). */
#ifndef TT_LINK_UDP_H
#define TT_LINK_UDP_H

#include "link/dgram.h"

/* Largest datagram a UDP layer takes: what fits an IPv6 packet of 1280
 * bytes, the minimum every IPv6 path carries, so nothing is fragmented. */
#define TT_UDP_MAX_DATAGRAM 1232

/* Bytes of datagrams a UDP layer queues when the socket cannot take them at
 * once; past that, sends are refused (UV_ENOBUFS). */
#define TT_UDP_QUEUE_MAX (256 * 1024)

/* Binds a UDP socket to HOST:PORT (an IP literal; port 0: the kernel
 * chooses). With PEER not NULL the socket is connected to it and only its
 * datagrams arrive. Returns 0 with *OUT set, or a negative libuv code. */
int tt_udp_open(uv_loop_t *loop, const char *host, int port, const struct sockaddr *peer,
                tt_dgram **out);

/* The port the socket is bound to. */
int tt_udp_port(const tt_dgram *d);

#endif
