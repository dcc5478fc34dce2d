/* Table-driven command-line options: one table per subcommand drives parsing,
 * --help and the docs, so they cannot disagree. Values land in the
 * subcommand's config struct at the offsets the table names. */
#ifndef TT_CMD_OPTS_H
#define TT_CMD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum tt_opt_kind {
    TT_OPT_FLAG,     /* bool; no argument */
    TT_OPT_COUNT,    /* int, +1 per use (-v -vv) */
    TT_OPT_STRING,   /* const char *; the last use wins */
    TT_OPT_LIST,     /* tt_strlist; every use appends */
    TT_OPT_DURATION, /* unsigned milliseconds; "90", "90s", "500ms", "5m", "1h" */
    TT_OPT_UINT,     /* unsigned, decimal, within [min, max] of the row */
};

#define TT_STRLIST_MAX 64

typedef struct tt_strlist {
    const char *v[TT_STRLIST_MAX];
    unsigned n;
} tt_strlist;

typedef struct tt_opt {
    char short_name;       /* 0: none */
    const char *long_name; /* without "--" */
    const char *arg;       /* argument name for --help; NULL for FLAG/COUNT */
    enum tt_opt_kind kind;
    size_t offset;     /* into the config struct */
    const char *help;  /* one line; may mention the default */
    unsigned min, max; /* TT_OPT_UINT: accepted range */
} tt_opt;

typedef struct tt_cmd_spec {
    const char *name;  /* "client" */
    const char *usage; /* "tt client -s URL [options]" */
    const char *about; /* a paragraph for --help */
    const tt_opt *opts;
    size_t n_opts;
} tt_cmd_spec;

/* Parses ARGV[1..ARGC) into CFG. Returns 0; 1 after printing --help or
 * --version (-V) to stdout (the caller exits 0); or 2 after printing one error line and a hint to
 * stderr (the caller exits 2). Positional arguments are errors. */
int tt_opts_parse(const tt_cmd_spec *spec, int argc, char **argv, void *cfg);

/* Prints the usage, the paragraph and the option table. */
void tt_opts_help(const tt_cmd_spec *spec, FILE *out);

/* Prints "tt NAME: MESSAGE" and the --help hint to stderr; returns 2. */
int tt_opts_fail(const tt_cmd_spec *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a duration as TT_OPT_DURATION does. Returns 0 or -EINVAL. */
int tt_parse_duration(const char *s, unsigned *ms);

#endif
