/* The subcommands and what they share: log set-up and running the loop
 * until a signal asks to stop. */
#ifndef TT_CMD_CMD_H
#define TT_CMD_CMD_H

#include <uv.h>

#include "cmd/opts.h"

#include "carrier/carrier.h"

/* Each returns the process exit status: 0, 1 (runtime failure), 2 (usage). */
int tt_cmd_client(int argc, char **argv);
int tt_cmd_server(int argc, char **argv);
int tt_cmd_keygen(int argc, char **argv);

/* The carrier options both commands take, as typed. */
typedef struct tt_carrier_args {
    const char *key;
    const char *methods;
    const char *range;
    unsigned buffer_size;
    unsigned hop_interval_ms;
    unsigned replay_window_ms;
    const char *clock_offset;
    unsigned hello_padding;
    unsigned frame_padding;
    const char *fallback;
    /* TLS and web carriers. */
    const char *cert;
    const char *tls_key;
    const char *name;
    const char *ca;
    const char *pin;
    bool skip_verify;
    const char *www;
    bool fast_open;
    const char *resolver;
} tt_carrier_args;

/* Option rows for the carrier settings of config struct TYPE, whose
 * tt_carrier_args member is FIELD. */
#define TT_CARRIER_OPT_ROWS(TYPE, FIELD)                                                           \
    {'k',                                                                                          \
     "psk",                                                                                        \
     "KEY",                                                                                        \
     TT_OPT_STRING,                                                                                \
     offsetof(TYPE, FIELD.key),                                                                    \
     "shared key: a password, or a key from 'tt keygen' (also TT_KEY in the environment)",         \
     0,                                                                                            \
     0},                                                                                           \
        {'m',                                                                                      \
         "methods",                                                                                \
         "METHODS",                                                                                \
         TT_OPT_STRING,                                                                            \
         offsetof(TYPE, FIELD.methods),                                                            \
         "AEAD: chacha20-poly1305 (default) or aes-256-gcm; a server accepts a comma list",        \
         0,                                                                                        \
         0},                                                                                       \
        {'r',                                                                                      \
         "range",                                                                                  \
         "LO-HI",                                                                                  \
         TT_OPT_STRING,                                                                            \
         offsetof(TYPE, FIELD.range),                                                              \
         "tt:// port-hopping range (default 1024-65535)",                                          \
         0,                                                                                        \
         0},                                                                                       \
        {0,                                                                                        \
         "buffer-size",                                                                            \
         "N",                                                                                      \
         TT_OPT_UINT,                                                                              \
         offsetof(TYPE, FIELD.buffer_size),                                                        \
         "largest plaintext bytes per frame (default 4096, at most 16384)",                        \
         1,                                                                                        \
         16384},                                                                                   \
        {0,                                                                                        \
         "hop-interval",                                                                           \
         "DURATION",                                                                               \
         TT_OPT_DURATION,                                                                          \
         offsetof(TYPE, FIELD.hop_interval_ms),                                                    \
         "length of a port-hopping time slot (default 60s)",                                       \
         0,                                                                                        \
         0},                                                                                       \
        {0,                                                                                        \
         "hello-padding",                                                                          \
         "N",                                                                                      \
         TT_OPT_UINT,                                                                              \
         offsetof(TYPE, FIELD.hello_padding),                                                      \
         "random padding of the first flight: 0 to N bytes (default 1024, at most 2048)",          \
         0,                                                                                        \
         2048},                                                                                    \
        {0,                                                                                        \
         "frame-padding",                                                                          \
         "N",                                                                                      \
         TT_OPT_UINT,                                                                              \
         offsetof(TYPE, FIELD.frame_padding),                                                      \
         "random padding of each frame: 0 to N bytes (default 31, at most 1024)",                  \
         0,                                                                                        \
         1024},                                                                                    \
        {'n',                                                                                      \
         "name",                                                                                   \
         "NAME",                                                                                   \
         TT_OPT_STRING,                                                                            \
         offsetof(TYPE, FIELD.name),                                                               \
         "tls://, wss://: the certificate's name (server) or the name sent and checked (client)",  \
         0,                                                                                        \
         0},                                                                                       \
        {0,                                                                                        \
         "resolver",                                                                               \
         "IP:PORT",                                                                                \
         TT_OPT_STRING,                                                                            \
         offsetof(TYPE, FIELD.resolver),                                                           \
         "resolve names with this DNS server instead of the system's (UDP, TCP if truncated)",     \
         0,                                                                                        \
         0},                                                                                       \
        {0,                                                                                        \
         "fast-open",                                                                              \
         NULL,                                                                                     \
         TT_OPT_FLAG,                                                                              \
         offsetof(TYPE, FIELD.fast_open),                                                          \
         "TCP Fast Open on connections to the server (data in the SYN of repeat connections)",     \
         0,                                                                                        \
         0},                                                                                       \
    {                                                                                              \
        0, "clock-offset", "SECONDS", TT_OPT_STRING, offsetof(TYPE, FIELD.clock_offset),           \
            "for tests: shift this process's clock by SECONDS (may be negative)", 0, 0             \
    }

/* With --resolver given in A, makes the resolver on LOOP into *OUT (NULL
 * without one). Returns 0, or 2 after printing an error. */
struct tt_resolver;
int tt_cmd_resolver(const tt_cmd_spec *spec, const tt_carrier_args *a, uv_loop_t *loop,
                    struct tt_resolver **out);

/* Defaults of tt_carrier_args. */
void tt_carrier_args_init(tt_carrier_args *a);

/* Parses the endpoint URL_TEXT (given as option OPT; schemeless means tt://)
 * and the carrier arguments into *CFG and finds the carrier. SERVER selects
 * the server's rules. Returns 0, or 2 after printing one error line. */
int tt_cmd_carrier_cfg(const tt_cmd_spec *spec, const char *opt, const char *url_text, bool server,
                       const tt_carrier_args *a, tt_carrier_cfg *cfg, const tt_carrier_ops **ops);

/* Applies LOG_LEVEL from the environment, then --log-level, then -v counts
 * (each -v one step more verbose than the level so far). Returns 0 or 2 after
 * printing an error. */
int tt_cmd_setup_log(const tt_cmd_spec *spec, const char *level, int verbose);

/* Runs LOOP until SIGINT or SIGTERM; then calls STOP(UD) so the command can
 * close its listeners, and returns. */
void tt_cmd_run(uv_loop_t *loop, void (*stop)(void *ud), void *ud);

#endif
