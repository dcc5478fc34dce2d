/* Table-driven command-line options: one table per subcommand drives parsing,
 * --help and the docs, so they cannot disagree. Values land in the
 * subcommand's config struct at the offsets the table names. */
#ifndef TT_CMD_OPTS_H
#define TT_CMD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tt_opt_kind {
    TT_OPT_FLAG,     /* bool; no argument */
    TT_OPT_COUNT,    /* int, +1 per use (-v -vv) */
    TT_OPT_STRING,   /* const char *; given twice is an error */
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

/* One table of options and the struct its values land in. A command parses
 * several sets at once: its own, and those of the carriers (each carrier
 * type brings its own options). */
#define TT_OPT_SET_MAX 64
typedef struct tt_opt_set {
    const char *title;  /* heading in --help; NULL: the command's own options */
    const tt_opt *opts; /* at most TT_OPT_SET_MAX rows */
    size_t n_opts;
    void *cfg;      /* where values land, at each row's offset */
    uint64_t given; /* written by tt_opts_parse: bit i set when row i was used */
} tt_opt_set;

typedef struct tt_cmd_spec {
    const char *name;  /* "client" */
    const char *usage; /* "tt client -s URL [options]" */
    const char *about; /* a paragraph for --help */
    const char *more;  /* NULL, or text printed after the options in --help */
} tt_cmd_spec;

/* Parses ARGV[1..ARGC) into the sets' structs, recording in each set which
 * rows were given. A long or short name found in two sets belongs to the
 * first. Returns 0; 1 after printing --help or --version (-V) to stdout (the
 * caller exits 0); or 2 after printing one error line to stderr (the caller
 * exits 2). Positional arguments are errors. */
int tt_opts_parse(const tt_cmd_spec *spec, int argc, char **argv, tt_opt_set *sets, size_t n_sets);

/* Prints the usage, the paragraph and every set's options. */
void tt_opts_help(const tt_cmd_spec *spec, const tt_opt_set *sets, size_t n_sets, FILE *out);

/* True when the row of SET whose long name is LONG_NAME was given. */
bool tt_opts_given(const tt_opt_set *set, const char *long_name);

/* The name of the first row of SET that was given ("--cert", "-n"), or
 * NULL when none was. BUF holds the text. */
const char *tt_opts_first_given(const tt_opt_set *set, char *buf, size_t len);

/* Prints "tt NAME: MESSAGE (see 'tt NAME --help')" as one line to stderr;
 * returns 2. */
int tt_opts_fail(const tt_cmd_spec *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a duration as TT_OPT_DURATION does. Returns 0 or -EINVAL. */
int tt_parse_duration(const char *s, unsigned *ms);

#endif
