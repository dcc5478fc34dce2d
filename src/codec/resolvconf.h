/* The nameservers of a resolv.conf (resolv.conf(5)): the text in, the
 * addresses out. Sans-I/O and bounded: the caller reads the file (at most
 * TT_RESOLVCONF_MAX bytes matter) and hands over the bytes.
 *
 * A line "nameserver ADDR" names one, ADDR an IPv4 or IPv6 literal (a zone
 * index "%eth0" is accepted and dropped, since nftables matches the address
 * alone); '#' and ';' start comments; other keywords are ignored, as are
 * lines longer than a line can be and addresses that do not parse. The
 * resolver library uses the first three only (MAXNS), but all up to
 * TT_RESOLVCONF_MAX_NS are returned, duplicates once: capturing DNS to an
 * address the library never asks costs nothing. */
#ifndef TT_CODEC_RESOLVCONF_H
#define TT_CODEC_RESOLVCONF_H

#include <stddef.h>
#include <stdint.h>

#define TT_RESOLVCONF_MAX (64 * 1024)
#define TT_RESOLVCONF_MAX_NS 8

typedef struct tt_resolvconf_ns {
    uint8_t family;   /* 4 or 6 */
    uint8_t addr[16]; /* 4 bytes used for IPv4 */
} tt_resolvconf_ns;

/* Parses the LEN bytes at TEXT (no NUL needed; at most TT_RESOLVCONF_MAX are
 * read) into OUT; returns how many nameservers it holds (0 to
 * TT_RESOLVCONF_MAX_NS). */
size_t tt_resolvconf_parse(const char *text, size_t len,
                           tt_resolvconf_ns out[TT_RESOLVCONF_MAX_NS]);

#endif
