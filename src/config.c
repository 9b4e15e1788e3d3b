/*
 * config.c - flags and config files from one option table (ppdb_config.h).
 *
 * Both parsers end in ppdb_config_set, so a key means the same thing on the
 * command line and in a file. Values are validated at parse time: a typo'd
 * key or an out-of-range number stops the program with the key and line
 * named, instead of silently running with a default.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "ppdb_config.h"

#define CONFIG_LINE_MAX 1024

static const struct ppdb_opt *find_opt(const struct ppdb_opt *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return PPDB_EINVAL;
}

static int parse_u64(const struct ppdb_opt *o, const char *v, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)v[0]))
        return PPDB_EINVAL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno || *end)
        return PPDB_EINVAL;
    if (x < o->min || (o->max && x > o->max))
        return PPDB_ERANGE;
    *out = x;
    return 0;
}

static int set_text(const struct ppdb_opt *o, const char *value, bool append)
{
    char *dst = o->dst;
    size_t used = append ? strlen(dst) : 0;
    size_t need = strlen(value) + (used ? 1 : 0);
    if (used + need >= o->cap)
        return PPDB_ERANGE;
    if (used)
        dst[used++] = ',';
    strcpy(dst + used, value);
    return 0;
}

int ppdb_config_set(const struct ppdb_opt *opts, size_t n, const char *name, const char *value,
                    char *err, size_t err_cap)
{
    const struct ppdb_opt *o = find_opt(opts, n, name);
    int rc;
    if (!o) {
        snprintf(err, err_cap, "unknown option '%s'", name);
        return PPDB_EINVAL;
    }
    switch (o->kind) {
    case PPDB_OPT_STR:
    case PPDB_OPT_LIST:
        rc = set_text(o, value, o->kind == PPDB_OPT_LIST);
        break;
    case PPDB_OPT_U64:
        rc = parse_u64(o, value, o->dst);
        break;
    default:
        rc = parse_bool(value, o->dst);
        break;
    }
    if (rc == PPDB_ERANGE && o->kind == PPDB_OPT_U64)
        snprintf(err, err_cap, "option '%s': %s is outside [%llu, %llu]", name, value,
                 (unsigned long long)o->min, (unsigned long long)(o->max ? o->max : UINT64_MAX));
    else if (rc == PPDB_ERANGE)
        snprintf(err, err_cap, "option '%s': value too long", name);
    else if (rc)
        snprintf(err, err_cap, "option '%s': invalid value '%s'", name, value);
    return rc;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Splits "key = value" in place; strips quotes and comments. */
static int split_line(char *line, char **key_out, char **val_out)
{
    char *hash = NULL, *eq = strchr(line, '=');
    if (!eq)
        return PPDB_EINVAL;
    *eq = '\0';
    char *val = trim(eq + 1);
    if (val[0] == '"') {
        char *close = strchr(val + 1, '"');
        if (!close)
            return PPDB_EINVAL;
        *close = '\0';
        val++;
    } else if ((hash = strchr(val, '#')) != NULL) {
        *hash = '\0';
        val = trim(val);
    }
    *key_out = trim(line);
    *val_out = val;
    return **key_out ? 0 : PPDB_EINVAL;
}

int ppdb_config_load_file(const struct ppdb_opt *opts, size_t n, const char *path, char *err,
                          size_t err_cap)
{
    char line[CONFIG_LINE_MAX], sub[PPDB_CONFIG_ERR_MAX];
    FILE *f = fopen(path, "r");
    if (!f) {
        int rc = ppdb_err_from_errno(errno);
        snprintf(err, err_cap, "cannot open config file %s: %s", path, ppdb_strerror(rc));
        return rc;
    }
    int rc = 0;
    for (unsigned lineno = 1; fgets(line, sizeof(line), f); lineno++) {
        char *s = trim(line), *key, *val;
        if (!*s || *s == '#')
            continue;
        if (split_line(s, &key, &val) != 0) {
            snprintf(err, err_cap, "%s:%u: expected 'key = value'", path, lineno);
            rc = PPDB_EINVAL;
            break;
        }
        if ((rc = ppdb_config_set(opts, n, key, val, sub, sizeof(sub))) != 0) {
            snprintf(err, err_cap, "%s:%u: %s", path, lineno, sub);
            break;
        }
    }
    fclose(f);
    return rc;
}

const char *ppdb_config_find_flag(int argc, char **argv, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, len) != 0)
            continue;
        if (a[2 + len] == '=')
            return a + 3 + len;
        if (a[2 + len] == '\0' && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

/* One "--name[=value]" flag at argv[*i]; consumes a following value word. */
static int parse_flag(const struct ppdb_opt *opts, size_t n, int argc, char **argv, int *i,
                      char *err, size_t err_cap)
{
    char name[128];
    const char *a = argv[*i] + 2, *eq = strchr(a, '='), *value;
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    if (len >= sizeof(name)) {
        snprintf(err, err_cap, "flag too long: %s", argv[*i]);
        return PPDB_EINVAL;
    }
    memcpy(name, a, len);
    name[len] = '\0';
    if (strcmp(name, "config") == 0) { /* loaded by the caller beforehand */
        value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
        return value ? 0 : PPDB_EINVAL;
    }
    const struct ppdb_opt *o = find_opt(opts, n, name);
    if (eq)
        value = eq + 1;
    else if (o && o->kind == PPDB_OPT_BOOL) {
        bool ignored; /* `--flag off` and `--flag` (= true) are both accepted */
        if (*i + 1 < argc && parse_bool(argv[*i + 1], &ignored) == 0)
            value = argv[++*i];
        else
            value = "true";
    }
    else if (*i + 1 < argc)
        value = argv[++*i];
    else {
        snprintf(err, err_cap, "flag --%s needs a value", name);
        return PPDB_EINVAL;
    }
    return ppdb_config_set(opts, n, name, value, err, err_cap);
}

int ppdb_config_parse_args(const struct ppdb_opt *opts, size_t n, int argc, char **argv,
                           const char **positional_out, size_t max_positional,
                           size_t *npositional_out, char *err, size_t err_cap)
{
    size_t np = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0 && argv[i][2]) {
            int rc = parse_flag(opts, n, argc, argv, &i, err, err_cap);
            if (rc)
                return rc;
            continue;
        }
        if (np == max_positional) {
            snprintf(err, err_cap, "unexpected argument '%s'", argv[i]);
            return PPDB_EINVAL;
        }
        positional_out[np++] = argv[i];
    }
    *npositional_out = np;
    return 0;
}

void ppdb_config_usage(const struct ppdb_opt *opts, size_t n, void *file)
{
    for (size_t i = 0; i < n; i++)
        fprintf(file, "  --%-22s %s\n", opts[i].name, opts[i].help);
}
