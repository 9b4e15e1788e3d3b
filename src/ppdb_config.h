/*
 * ppdb_config.h - command-line flags and config files from one option table.
 *
 * A program declares its options once (name, kind, default, help, where to
 * store the value). The same table parses `--name value` / `--name=value`
 * flags and config files of `key = value` lines whose keys are the long
 * flags' names, so the two can never disagree. Precedence: defaults, then
 * the config file, then flags. Unknown keys, malformed values and
 * out-of-range numbers are errors naming the key and line.
 */
#ifndef PPDB_CONFIG_H
#define PPDB_CONFIG_H

#include "ppdb_base.h"

enum ppdb_opt_kind {
    PPDB_OPT_STR,  /* char buffer of opt->cap bytes */
    PPDB_OPT_U64,  /* uint64_t, checked against [min, max] */
    PPDB_OPT_BOOL, /* bool: true/false/yes/no/on/off/1/0; a bare flag means true */
    PPDB_OPT_LIST  /* char buffer; repeated flags append ",value" (e.g. --seed a --seed b) */
};

struct ppdb_opt {
    const char *name;  /* long flag name without "--", also the config key */
    enum ppdb_opt_kind kind;
    void *dst;         /* where the value is stored */
    size_t cap;        /* STR/LIST: size of the buffer at dst */
    uint64_t min, max; /* U64 bounds (max 0 = no upper bound) */
    const char *help;
};

#define PPDB_CONFIG_ERR_MAX 256

/* Parse `key = value` lines ('#' starts a comment; blank lines allowed;
 * values may be quoted with ""). err gets a message on failure. */
int ppdb_config_load_file(const struct ppdb_opt *opts, size_t n, const char *path, char *err,
                          size_t err_cap);
/* Parse flags from argv[0..argc). Non-flag words are returned in order via
 * positional_out (up to max_positional; more is an error). The special flag
 * `--config PATH` is not handled here: find it with ppdb_config_find_flag
 * first, load the file, then parse flags so that flags win. */
int ppdb_config_parse_args(const struct ppdb_opt *opts, size_t n, int argc, char **argv,
                           const char **positional_out, size_t max_positional,
                           size_t *npositional_out, char *err, size_t err_cap);
/* Value of `--name X` / `--name=X` in argv, or NULL. */
const char *ppdb_config_find_flag(int argc, char **argv, const char *name);
/* Set one option by name from text (what both parsers use). */
int ppdb_config_set(const struct ppdb_opt *opts, size_t n, const char *name, const char *value,
                    char *err, size_t err_cap);
/* Print "  --name  help" lines. */
void ppdb_config_usage(const struct ppdb_opt *opts, size_t n, void *file);

#endif /* PPDB_CONFIG_H */
