#include "core/opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tt_opts_fail(const tt_cmd_spec *spec, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, as the README promises: scripts and log collectors keep the
     * first line of an error. */
    fprintf(stderr, "tt %s: %s (see 'tt %s --help')\n", spec->name, msg, spec->name);
    return 2;
}

int tt_parse_duration(const char *s, unsigned *ms)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -EINVAL;
    unsigned long long mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -EINVAL;
    /* Longer than about 49 days does not fit a libuv timer's unsigned ms. */
    if (v > UINT32_MAX / mult)
        return -EINVAL;
    *ms = (unsigned)(v * mult);
    return 0;
}

/* A row found by name, with the set it belongs to. */
typedef struct found {
    tt_opt_set *set;
    size_t row;
} found;

static bool find_long(tt_opt_set *sets, size_t n_sets, const char *name, size_t len, found *f)
{
    for (size_t s = 0; s < n_sets; s++) {
        for (size_t i = 0; i < sets[s].n_opts; i++) {
            const char *ln = sets[s].opts[i].long_name;
            if (ln && strlen(ln) == len && strncmp(ln, name, len) == 0) {
                *f = (found){&sets[s], i};
                return true;
            }
        }
    }
    return false;
}

static bool find_short(tt_opt_set *sets, size_t n_sets, char c, found *f)
{
    for (size_t s = 0; s < n_sets; s++) {
        for (size_t i = 0; i < sets[s].n_opts; i++) {
            if (sets[s].opts[i].short_name == c) {
                *f = (found){&sets[s], i};
                return true;
            }
        }
    }
    return false;
}

static const char *opt_name(const tt_opt *o, char *buf, size_t len)
{
    if (o->long_name && o->short_name)
        snprintf(buf, len, "-%c/--%s", o->short_name, o->long_name);
    else if (o->long_name)
        snprintf(buf, len, "--%s", o->long_name);
    else
        snprintf(buf, len, "-%c", o->short_name);
    return buf;
}

/* True when a row of SET that stores into the same field as row ROW (the
 * row itself, or an alias such as --psk for --key) was given before. */
static bool field_given(const tt_opt_set *set, size_t row)
{
    for (size_t i = 0; i < set->n_opts; i++) {
        if ((set->given >> i & 1) && set->opts[i].offset == set->opts[row].offset)
            return true;
    }
    return false;
}

static int store(const tt_cmd_spec *spec, found f, const char *val)
{
    const tt_opt *o = &f.set->opts[f.row];
    char *field = (char *)f.set->cfg + o->offset;
    char nb[64];
    /* A second -s or -l would silently replace the first; where several
     * values make sense the option is a list. */
    if (o->kind != TT_OPT_LIST && o->kind != TT_OPT_COUNT && field_given(f.set, f.row))
        return tt_opts_fail(spec, "%s given twice", opt_name(o, nb, sizeof nb));
    f.set->given |= (uint64_t)1 << f.row;
    switch (o->kind) {
    case TT_OPT_FLAG:
        *(bool *)field = true;
        return 0;
    case TT_OPT_COUNT:
        (*(int *)field)++;
        return 0;
    case TT_OPT_STRING:
        if (*val == '\0')
            return tt_opts_fail(spec, "%s needs a non-empty %s", opt_name(o, nb, sizeof nb),
                                o->arg);
        *(const char **)field = val;
        return 0;
    case TT_OPT_LIST: {
        tt_strlist *l = (tt_strlist *)(void *)field;
        if (*val == '\0')
            return tt_opts_fail(spec, "%s needs a non-empty %s", opt_name(o, nb, sizeof nb),
                                o->arg);
        if (l->n == TT_STRLIST_MAX)
            return tt_opts_fail(spec, "%s given more than %d times", opt_name(o, nb, sizeof nb),
                                TT_STRLIST_MAX);
        l->v[l->n++] = val;
        return 0;
    }
    case TT_OPT_UINT: {
        char *end;
        errno = 0;
        unsigned long v = (*val >= '0' && *val <= '9') ? strtoul(val, &end, 10) : 0;
        if (!(*val >= '0' && *val <= '9') || errno != 0 || *end != '\0' || v < o->min || v > o->max)
            return tt_opts_fail(spec, "invalid %s '%s': a whole number from %u to %u",
                                opt_name(o, nb, sizeof nb), val, o->min, o->max);
        *(unsigned *)(void *)field = (unsigned)v;
        return 0;
    }
    case TT_OPT_DURATION:
        if (tt_parse_duration(val, (unsigned *)(void *)field) != 0)
            return tt_opts_fail(spec, "invalid duration for %s: '%s' (e.g. 30s, 500ms, 5m)",
                                opt_name(o, nb, sizeof nb), val);
        return 0;
    }
    return 2;
}

static bool takes_arg(const tt_opt *o)
{
    return o->kind != TT_OPT_FLAG && o->kind != TT_OPT_COUNT;
}

int tt_opts_parse(const tt_cmd_spec *spec, int argc, char **argv, tt_opt_set *sets, size_t n_sets)
{
    for (size_t s = 0; s < n_sets; s++) {
        sets[s].given = 0;
        if (sets[s].n_opts > TT_OPT_SET_MAX)
            return tt_opts_fail(spec, "internal: an option table is too long");
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            tt_opts_help(spec, sets, n_sets, stdout);
            return 1;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("tt %s\n", TT_VERSION);
            return 1;
        }
        found f;
        if (a[0] == '-' && a[1] == '-' && a[2] != '\0') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            if (!find_long(sets, n_sets, name, nlen, &f))
                return tt_opts_fail(spec, "unknown option '--%.*s'", (int)nlen, name);
            const tt_opt *o = &f.set->opts[f.row];
            const char *val = NULL;
            if (takes_arg(o)) {
                if (eq)
                    val = eq + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return tt_opts_fail(spec, "option '--%s' needs %s", o->long_name, o->arg);
            } else if (eq) {
                return tt_opts_fail(spec, "option '--%s' takes no value", o->long_name);
            }
            int rc = store(spec, f, val);
            if (rc)
                return rc;
            continue;
        }
        if (a[0] == '-' && a[1] != '\0' && a[1] != '-') {
            /* A cluster of short options: "-vv", "-s URL", "-sURL". */
            for (const char *p = a + 1; *p; p++) {
                if (!find_short(sets, n_sets, *p, &f))
                    return tt_opts_fail(spec, "unknown option '-%c'", *p);
                const tt_opt *o = &f.set->opts[f.row];
                if (!takes_arg(o)) {
                    int rc = store(spec, f, NULL);
                    if (rc)
                        return rc;
                    continue;
                }
                const char *val;
                if (p[1] != '\0')
                    val = p + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return tt_opts_fail(spec, "option '-%c' needs %s", *p, o->arg);
                int rc = store(spec, f, val);
                if (rc)
                    return rc;
                break;
            }
            continue;
        }
        return tt_opts_fail(spec, "unexpected argument '%s'", a);
    }
    return 0;
}

bool tt_opts_given(const tt_opt_set *set, const char *long_name)
{
    for (size_t i = 0; i < set->n_opts; i++) {
        const char *ln = set->opts[i].long_name;
        if (ln && strcmp(ln, long_name) == 0 && (set->given >> i & 1))
            return true;
    }
    return false;
}

const char *tt_opts_first_given(const tt_opt_set *set, char *buf, size_t len)
{
    for (size_t i = 0; i < set->n_opts; i++) {
        if (set->given >> i & 1)
            return opt_name(&set->opts[i], buf, len);
    }
    return NULL;
}

static void help_rows(const tt_opt_set *set, FILE *out)
{
    for (size_t i = 0; i < set->n_opts; i++) {
        const tt_opt *o = &set->opts[i];
        if (o->help == NULL) /* an alias kept for compatibility */
            continue;
        char left[64];
        int n = 0;
        if (o->short_name)
            n = snprintf(left, sizeof left, "-%c%s", o->short_name, o->long_name ? ", " : "");
        else
            n = snprintf(left, sizeof left, "    ");
        if (o->long_name)
            n += snprintf(left + n, sizeof left - (size_t)n, "--%s", o->long_name);
        if (o->arg)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->arg);
        fprintf(out, "  %-30s %s\n", left, o->help);
    }
}

void tt_opts_help(const tt_cmd_spec *spec, const tt_opt_set *sets, size_t n_sets, FILE *out)
{
    fprintf(out, "Usage: %s\n\n%s\n\nOptions:\n", spec->usage, spec->about);
    for (size_t s = 0; s < n_sets; s++) {
        if (sets[s].title == NULL)
            help_rows(&sets[s], out);
    }
    fprintf(out, "  %-30s %s\n", "-h, --help", "show this help and exit");
    fprintf(out, "  %-30s %s\n", "-V, --version", "print the version and exit");
    /* Sets with the same title (a carrier's client and server halves, say)
     * appear under one heading. */
    const char *last = NULL;
    for (size_t s = 0; s < n_sets; s++) {
        const char *t = sets[s].title;
        if (t == NULL || sets[s].n_opts == 0)
            continue;
        if (last == NULL || strcmp(last, t) != 0)
            fprintf(out, "\n%s:\n", t);
        last = t;
        help_rows(&sets[s], out);
    }
    if (spec->more)
        fprintf(out, "\n%s", spec->more);
}
