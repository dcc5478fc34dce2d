/* The nftables ruleset of the redirect entry (tt client --redirect), as the
 * text of an nft script. Sans-I/O: it formats, the caller hands the text to
 * libnftables.
 *
 * The table is "inet tt_ID" (one per process; ID is the caller's, usually
 * the pid) with a nat chain on the output hook (connections this machine
 * makes) and, when FORWARDED, one on the prerouting hook (connections routed
 * through it). In each, in this order, a packet is left alone when it is not
 * TCP, carries tt's MARK (output only: tt's own carrier connections), is
 * addressed to this machine (loopback and every local address, which holds
 * tt's listener), goes to a CARRIER endpoint (the server: the ssh child,
 * which cannot mark its socket, and a carrier dialed before the mark was
 * set), or lies in an EXCLUDE range; otherwise, in a REDIRECT range, it is
 * redirected to PORT4 (IPv4) or PORT6 (IPv6) on this machine. A family with
 * port 0 gets no redirect rule.
 *
 * With OWNER the table carries nftables' owner flag (Linux 5.12 and later):
 * the kernel deletes it when the netlink socket that made it closes, that is
 * when the process ends for any reason. */
#ifndef TT_CODEC_NFTRULES_H
#define TT_CODEC_NFTRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

/* An endpoint never redirected: an address (a /32 or /128) and a port, 0
 * meaning every port (tt:// hopping between ports). */
typedef struct tt_nft_endpoint {
    tt_cidr addr;
    uint16_t port;
} tt_nft_endpoint;

typedef struct tt_nftrules {
    unsigned long id; /* the table is tt_ID */
    bool owner;
    bool forwarded;
    uint32_t mark; /* 0: no mark rule */
    uint16_t port4, port6;
    const tt_cidr *redirect;
    size_t n_redirect;
    const tt_cidr *exclude;
    size_t n_exclude;
    const tt_nft_endpoint *carrier;
    size_t n_carrier;
    /* tt client --dns: nameservers (each a /32 or /128) whose port 53 is
     * captured, UDP to DNS_UDPn and TCP to DNS_TCPn (n the family; a port 0
     * captures nothing of that family). These rules come first in the
     * output chain, after a mark rule, so loopback nameservers (a local
     * stub's 127.0.0.53) are captured too; none are made on prerouting. */
    const tt_cidr *dns;
    size_t n_dns;
    uint16_t dns_udp4, dns_tcp4, dns_udp6, dns_tcp6;
} tt_nftrules;

/* Writes the script that creates the table into BUF (LEN bytes, always
 * NUL-terminated when LEN > 0). Returns its length, or -ENOSPC when it does
 * not fit. Ranges must be as tt_cidr_parse makes them. */
int tt_nftrules_format(const tt_nftrules *r, char *buf, size_t len);

/* Writes the script that deletes the table, for a kernel without the owner
 * flag, with the same contract. */
int tt_nftrules_format_delete(const tt_nftrules *r, char *buf, size_t len);

/* True when every address of C is one the rules always leave alone
 * (loopback: 127.0.0.0/8, ::1), so redirecting C would do nothing. */
bool tt_nftrules_cidr_is_loopback(const tt_cidr *c);

#endif
