/*
 * scenario.c - parses ppdb-sim scenarios (see scenario.h and the
 * "Scenarios" section of docs/simulator.md).
 *
 * Built as one tokenizer plus one small parser per directive: a line is
 * split on blanks (a '#' starts a comment), its first word picks the
 * directive, and `at <time> <directive>` wraps a timed one. The command
 * line feeds the same function, so every directive is also a flag.
 *
 * Invariants: a failed line leaves the scenario as it was, except that a
 * scenario with a parse error is never run; the tables never exceed their
 * PPDB_SCN_MAX_* bounds.
 */
#include "scenario.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_TOKENS 40

struct toks {
    char buf[512];
    const char *t[MAX_TOKENS];
    uint32_t n;
};

static int tokenize(const char *line, struct toks *tk)
{
    size_t len = strlen(line);
    if (len >= sizeof(tk->buf))
        return PPDB_ERANGE;
    memcpy(tk->buf, line, len + 1);
    char *hash = strchr(tk->buf, '#');
    if (hash)
        *hash = '\0';
    tk->n = 0;
    for (char *p = tk->buf; *p;) {
        while (*p && isspace((unsigned char)*p))
            *p++ = '\0';
        if (!*p)
            break;
        if (tk->n == MAX_TOKENS)
            return PPDB_ELIMIT;
        tk->t[tk->n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    return 0;
}

/* ------------------------------------------------------------- numbers */

static bool parse_double(const char *tok, double *out, const char **rest)
{
    char *end;
    double v = strtod(tok, &end);
    if (end == tok || !(v == v))
        return false;
    *out = v;
    *rest = end;
    return true;
}

int ppdb_scn_parse_duration(const char *tok, uint64_t *ms_out)
{
    double v;
    const char *u;
    if (!parse_double(tok, &v, &u) || v < 0)
        return PPDB_EINVAL;
    double mult;
    if (*u == '\0' || strcmp(u, "s") == 0)
        mult = 1000;
    else if (strcmp(u, "ms") == 0)
        mult = 1;
    else if (strcmp(u, "m") == 0 || strcmp(u, "min") == 0)
        mult = 60000;
    else if (strcmp(u, "h") == 0)
        mult = 3600000;
    else
        return PPDB_EINVAL;
    double ms = v * mult;
    if (ms > 1e15)
        return PPDB_ERANGE;
    *ms_out = (uint64_t)(ms + 0.5);
    return 0;
}

int ppdb_scn_parse_fraction(const char *tok, double *out)
{
    double v;
    const char *u;
    if (!parse_double(tok, &v, &u))
        return PPDB_EINVAL;
    if (strcmp(u, "%") == 0)
        v /= 100.0;
    else if (*u != '\0')
        return PPDB_EINVAL;
    if (v < 0 || v > 1)
        return PPDB_ERANGE;
    *out = v;
    return 0;
}

int ppdb_scn_parse_rate(const char *tok, uint64_t *bytes_per_s_out)
{
    double v;
    const char *u;
    if (!parse_double(tok, &v, &u) || v < 0)
        return PPDB_EINVAL;
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"B/s", 1},      {"KB/s", 1e3},     {"MB/s", 1e6},     {"GB/s", 1e9},
                 {"kbit/s", 125}, {"Mbit/s", 125e3}, {"Gbit/s", 125e6}, {"", 1}};
    for (size_t i = 0; i < PPDB_ARRAY_LEN(units); i++) {
        if (strcmp(u, units[i].unit) == 0) {
            *bytes_per_s_out = (uint64_t)(v * units[i].mult + 0.5);
            return 0;
        }
    }
    return PPDB_EINVAL;
}

static bool parse_u32(const char *tok, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(tok, &end, 0);
    if (end == tok || *end || v > UINT32_MAX || tok[0] == '-')
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_per_s(const char *tok, double *out)
{
    double v;
    const char *u;
    if (!parse_double(tok, &v, &u) || v < 0 || (strcmp(u, "/s") != 0 && *u))
        return false;
    *out = v;
    return true;
}

/* "all", "5%", "12", "10-19" */
static bool parse_sel(const char *tok, struct ppdb_scn_sel *sel)
{
    memset(sel, 0, sizeof(*sel));
    if (strcmp(tok, "all") == 0)
        return true;
    const char *dash = strchr(tok, '-');
    if (dash && dash != tok) {
        char a[32];
        size_t alen = (size_t)(dash - tok);
        if (alen >= sizeof(a))
            return false;
        memcpy(a, tok, alen);
        a[alen] = '\0';
        sel->kind = PPDB_SCN_SEL_RANGE;
        return parse_u32(a, &sel->lo) && parse_u32(dash + 1, &sel->hi) && sel->lo <= sel->hi;
    }
    if (tok[0] && tok[strlen(tok) - 1] == '%') {
        sel->kind = PPDB_SCN_SEL_PERCENT;
        return ppdb_scn_parse_fraction(tok, &sel->percent) == 0;
    }
    sel->kind = PPDB_SCN_SEL_COUNT;
    return parse_u32(tok, &sel->count);
}

/* ------------------------------------------------------------ directives */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return PPDB_EINVAL;                                                                        \
    } while (0)

/* latency D [jitter D] [dist NAME] [shape X] */
static int parse_latency(struct ppdb_sim_link *l, const struct toks *tk, uint32_t i, char *err,
                         size_t errlen)
{
    uint64_t ms;
    if (i >= tk->n || ppdb_scn_parse_duration(tk->t[i], &ms) || ms > UINT32_MAX)
        FAIL("latency: want a duration (e.g. 1ms)");
    l->latency_ms = (uint32_t)ms;
    for (i++; i < tk->n; i += 2) {
        const char *k = tk->t[i], *v = i + 1 < tk->n ? tk->t[i + 1] : NULL;
        if (!v)
            FAIL("latency: %s needs a value", k);
        if (strcmp(k, "jitter") == 0) {
            if (ppdb_scn_parse_duration(v, &ms) || ms > UINT32_MAX)
                FAIL("latency: bad jitter '%s'", v);
            l->jitter_ms = (uint32_t)ms;
        } else if (strcmp(k, "dist") == 0) {
            if (strcmp(v, "uniform") == 0)
                l->dist = PPDB_SIM_DIST_UNIFORM;
            else if (strcmp(v, "lognormal") == 0)
                l->dist = PPDB_SIM_DIST_LOGNORMAL;
            else if (strcmp(v, "pareto") == 0)
                l->dist = PPDB_SIM_DIST_PARETO;
            else
                FAIL("latency: dist is uniform, lognormal or pareto");
        } else if (strcmp(k, "shape") == 0) {
            const char *rest;
            if (!parse_double(v, &l->shape, &rest) || *rest || l->shape <= 0)
                FAIL("latency: bad shape '%s'", v);
        } else {
            FAIL("latency: unknown option '%s'", k);
        }
    }
    return 0;
}

/* Link directives shared by the scenario head and `at`: latency, loss,
 * dup, reorder. 1: not a link directive. */
static int parse_link(struct ppdb_sim_link *l, const struct toks *tk, uint32_t i, char *err,
                      size_t errlen)
{
    const char *d = tk->t[i];
    if (strcmp(d, "latency") == 0)
        return parse_latency(l, tk, i + 1, err, errlen);
    double *field = strcmp(d, "loss") == 0      ? &l->loss
                    : strcmp(d, "dup") == 0     ? &l->dup
                    : strcmp(d, "reorder") == 0 ? &l->reorder
                                                : NULL;
    if (!field)
        return 1;
    if (i + 1 >= tk->n || ppdb_scn_parse_fraction(tk->t[i + 1], field))
        FAIL("%s: want a fraction (5%% or 0.05)", d);
    bool by = field == &l->reorder && i + 2 < tk->n;
    if (tk->n != i + (by ? 4 : 2))
        FAIL("%s: want '%s P%s'", d, d, field == &l->reorder ? " [by D]" : "");
    if (by) {
        uint64_t ms;
        if (strcmp(tk->t[i + 2], "by") != 0 || ppdb_scn_parse_duration(tk->t[i + 3], &ms) ||
            ms == 0 || ms > UINT32_MAX)
            FAIL("reorder: want 'reorder P [by D]'");
        l->reorder_ms = (uint32_t)ms;
    }
    return 0;
}

static int add_action(struct ppdb_scenario *s, const struct ppdb_scn_action *a, char *err,
                      size_t errlen)
{
    if (s->nactions == PPDB_SCN_MAX_ACTIONS) {
        snprintf(err, errlen, "more than %u timed actions", PPDB_SCN_MAX_ACTIONS);
        return PPDB_ELIMIT;
    }
    s->actions[s->nactions++] = *a;
    return 0;
}

/* partition A-B | C-D [| ...]   or   partition A-B -> C-D */
static int parse_partition(struct ppdb_scn_action *a, const struct toks *tk, uint32_t i, char *err,
                           size_t errlen)
{
    bool want_sep = false;
    for (; i < tk->n; i++) {
        const char *t = tk->t[i];
        if (want_sep) {
            if (strcmp(t, "->") == 0) {
                if (a->ngroups != 1)
                    FAIL("partition: '->' joins exactly two groups");
                a->oneway = true;
            } else if (strcmp(t, "|") != 0) {
                FAIL("partition: want '|' or '->' between groups, got '%s'", t);
            }
            want_sep = false;
            continue;
        }
        if (a->ngroups == PPDB_SCN_MAX_GROUPS)
            FAIL("partition: at most %u groups", PPDB_SCN_MAX_GROUPS);
        struct ppdb_scn_sel *g = &a->groups[a->ngroups++];
        if (!parse_sel(t, g) || g->kind != PPDB_SCN_SEL_RANGE)
            FAIL("partition: a group is an index range like 0-499, got '%s'", t);
        want_sep = true;
    }
    if (a->ngroups < 2 || !want_sep)
        FAIL("partition: want at least two groups ('0-499 | 500-999')");
    if (a->oneway && a->ngroups != 2)
        FAIL("partition: '->' joins exactly two groups");
    return 0;
}

static int parse_timed(struct ppdb_scenario *s, const struct toks *tk, uint32_t lineno, char *err,
                       size_t errlen)
{
    struct ppdb_scn_action a = {.line = lineno, .link = s->link};
    if (tk->n < 3 || ppdb_scn_parse_duration(tk->t[1], &a.at_ms))
        FAIL("at: want 'at <time> <action>'");
    const char *op = tk->t[2];
    bool sel_op = true;
    if (strcmp(op, "crash") == 0)
        a.op = PPDB_SCN_CRASH;
    else if (strcmp(op, "restart") == 0)
        a.op = PPDB_SCN_RESTART;
    else if (strcmp(op, "pause") == 0)
        a.op = PPDB_SCN_PAUSE;
    else if (strcmp(op, "leave") == 0)
        a.op = PPDB_SCN_LEAVE;
    else if (strcmp(op, "join") == 0)
        a.op = PPDB_SCN_JOIN;
    else
        sel_op = false;
    if (sel_op) {
        if (tk->n < 4 || !parse_sel(tk->t[3], &a.sel))
            FAIL("%s: want a selection (all, 1%%, 10, 0-99)", op);
        if (a.op == PPDB_SCN_JOIN && a.sel.kind != PPDB_SCN_SEL_COUNT)
            FAIL("join: want a count of new nodes");
        if (a.op == PPDB_SCN_PAUSE) {
            if (tk->n != 6 || strcmp(tk->t[4], "for") != 0 ||
                ppdb_scn_parse_duration(tk->t[5], &a.dur_ms))
                FAIL("pause: want 'pause <sel> for <duration>'");
        } else if (tk->n != 4) {
            FAIL("%s: unexpected '%s'", op, tk->t[4]);
        }
        return add_action(s, &a, err, errlen);
    }
    if (strcmp(op, "partition") == 0) {
        a.op = PPDB_SCN_PARTITION;
        int rc = parse_partition(&a, tk, 3, err, errlen);
        return rc ? rc : add_action(s, &a, err, errlen);
    }
    if (strcmp(op, "heal") == 0) {
        a.op = PPDB_SCN_HEAL;
        if (tk->n != 3)
            FAIL("heal takes no argument");
        return add_action(s, &a, err, errlen);
    }
    if (strcmp(op, "bandwidth") == 0) {
        uint64_t r;
        a.op = PPDB_SCN_BANDWIDTH;
        if (tk->n != 4 || ppdb_scn_parse_rate(tk->t[3], &r))
            FAIL("bandwidth: want a rate (1MB/s, 0 for unlimited)");
        a.value = (double)r;
        return add_action(s, &a, err, errlen);
    }
    /* a link change applies on top of the model as it stands at that line */
    a.op = PPDB_SCN_LINK;
    for (uint32_t k = s->nactions; k-- > 0;)
        if (s->actions[k].op == PPDB_SCN_LINK && s->actions[k].at_ms <= a.at_ms) {
            a.link = s->actions[k].link;
            break;
        }
    int rc = parse_link(&a.link, tk, 2, err, errlen);
    if (rc == 1)
        FAIL("at: unknown action '%s'", op);
    return rc ? rc : add_action(s, &a, err, errlen);
}

/* churn from T to T [join R/s] [leave R/s] [crash R/s] [restart R/s] */
static int parse_churn(struct ppdb_scenario *s, const struct toks *tk, char *err, size_t errlen)
{
    struct ppdb_scn_churn c = {0};
    if (tk->n < 7 || strcmp(tk->t[1], "from") || strcmp(tk->t[3], "to") ||
        ppdb_scn_parse_duration(tk->t[2], &c.from_ms) ||
        ppdb_scn_parse_duration(tk->t[4], &c.to_ms) || c.to_ms <= c.from_ms || (tk->n - 5) % 2)
        FAIL("churn: want 'churn from <t> to <t> [join|leave|crash|restart <rate>/s]...'");
    for (uint32_t i = 5; i + 1 < tk->n; i += 2) {
        const char *k = tk->t[i];
        double *f = strcmp(k, "join") == 0      ? &c.join_per_s
                    : strcmp(k, "leave") == 0   ? &c.leave_per_s
                    : strcmp(k, "crash") == 0   ? &c.crash_per_s
                    : strcmp(k, "restart") == 0 ? &c.restart_per_s
                                                : NULL;
        if (!f || !parse_per_s(tk->t[i + 1], f))
            FAIL("churn: bad '%s %s'", k, tk->t[i + 1]);
    }
    if (s->nchurn == PPDB_SCN_MAX_CHURN)
        FAIL("more than %u churn lines", PPDB_SCN_MAX_CHURN);
    s->churn[s->nchurn++] = c;
    return 0;
}

static int parse_check(struct ppdb_scenario *s, const struct toks *tk, uint32_t lineno, char *err,
                       size_t errlen)
{
    static const char *ops[] = {"<=", "<", ">=", ">", "=="};
    struct ppdb_scn_check c = {.line = lineno};
    if (tk->n != 4 || strlen(tk->t[1]) >= sizeof(c.metric))
        FAIL("check: want 'check <metric> <op> <value>'");
    snprintf(c.metric, sizeof(c.metric), "%s", tk->t[1]);
    uint32_t k = 0;
    while (k < PPDB_ARRAY_LEN(ops) && strcmp(ops[k], tk->t[2]) != 0)
        k++;
    if (k == PPDB_ARRAY_LEN(ops))
        FAIL("check: op is one of <= < >= > ==");
    c.cmp = (uint8_t)k;
    const char *rest;
    uint64_t ms;
    if (parse_double(tk->t[3], &c.value, &rest) && *rest == '\0') {
        /* a plain number */
    } else if (ppdb_scn_parse_duration(tk->t[3], &ms) == 0) {
        c.value = (double)ms / 1000.0; /* durations compare in seconds */
    } else if (ppdb_scn_parse_fraction(tk->t[3], &c.value) != 0) {
        FAIL("check: bad value '%s'", tk->t[3]);
    }
    if (s->nchecks == PPDB_SCN_MAX_CHECKS)
        FAIL("more than %u checks", PPDB_SCN_MAX_CHECKS);
    s->checks[s->nchecks++] = c;
    return 0;
}

static int parse_word(const struct toks *tk, char *dst, size_t cap, char *err, size_t errlen)
{
    if (tk->n != 2 || strlen(tk->t[1]) >= cap)
        FAIL("%s: want one word", tk->t[0]);
    snprintf(dst, cap, "%s", tk->t[1]);
    return 0;
}

/* nodes, seeds, seed, runs: one unsigned number. */
static int parse_count(struct ppdb_scenario *s, const struct toks *tk, char *err, size_t errlen)
{
    const char *d = tk->t[0];
    char *end;
    if (tk->n != 2)
        FAIL("%s: want one number", d);
    unsigned long long v = strtoull(tk->t[1], &end, 0);
    if (*end || tk->t[1][0] == '-')
        FAIL("%s: bad number '%s'", d, tk->t[1]);
    if (strcmp(d, "seed") == 0) {
        s->seed = v;
        return 0;
    }
    if (v == 0 || v > 1000000)
        FAIL("%s: out of range", d);
    if (strcmp(d, "nodes") == 0)
        s->nodes = (uint32_t)v;
    else if (strcmp(d, "seeds") == 0)
        s->seeds = (uint32_t)v;
    else
        s->runs = (uint32_t)v;
    return 0;
}

/* skew P MAX  /  drift P PPM */
static int parse_clock(struct ppdb_scenario *s, const struct toks *tk, char *err, size_t errlen)
{
    bool skew = strcmp(tk->t[0], "skew") == 0;
    double frac;
    if (tk->n != 3 || ppdb_scn_parse_fraction(tk->t[1], &frac))
        FAIL("%s: want '%s <fraction> <%s>'", tk->t[0], tk->t[0], skew ? "max" : "ppm");
    if (skew) {
        if (ppdb_scn_parse_duration(tk->t[2], &s->skew_max_ms))
            FAIL("skew: bad duration '%s'", tk->t[2]);
        s->skew_frac = frac;
        return 0;
    }
    const char *rest;
    if (!parse_double(tk->t[2], &s->drift_ppm, &rest) || (*rest && strcmp(rest, "ppm")))
        FAIL("drift: bad ppm '%s'", tk->t[2]);
    s->drift_frac = frac;
    return 0;
}

static int parse_head(struct ppdb_scenario *s, const struct toks *tk, char *err, size_t errlen)
{
    const char *d = tk->t[0];
    if (!strcmp(d, "nodes") || !strcmp(d, "seeds") || !strcmp(d, "seed") || !strcmp(d, "runs"))
        return parse_count(s, tk, err, errlen);
    if (strcmp(d, "duration") == 0) {
        if (tk->n != 2 || ppdb_scn_parse_duration(tk->t[1], &s->duration_ms) || !s->duration_ms)
            FAIL("duration: want a duration (10m)");
        return 0;
    }
    if (strcmp(d, "encryption") == 0) {
        if (tk->n != 2 || (strcmp(tk->t[1], "on") && strcmp(tk->t[1], "off")))
            FAIL("encryption: on or off");
        s->encrypt = strcmp(tk->t[1], "on") == 0;
        return 0;
    }
    if (strcmp(d, "join") == 0) {
        if (tk->n == 2 && strcmp(tk->t[1], "all") == 0) {
            s->join_spread_ms = 0;
            return 0;
        }
        if (tk->n != 3 || strcmp(tk->t[1], "spread") ||
            ppdb_scn_parse_duration(tk->t[2], &s->join_spread_ms))
            FAIL("join: 'join all' or 'join spread <duration>'");
        return 0;
    }
    if (strcmp(d, "bandwidth") == 0) {
        if (tk->n != 2 || ppdb_scn_parse_rate(tk->t[1], &s->bandwidth))
            FAIL("bandwidth: want a rate (1MB/s, 0 for unlimited)");
        return 0;
    }
    if (strcmp(d, "skew") == 0 || strcmp(d, "drift") == 0)
        return parse_clock(s, tk, err, errlen);
    if (strcmp(d, "profile") == 0)
        return parse_word(tk, s->profile, sizeof(s->profile), err, errlen);
    if (strcmp(d, "workload") == 0) {
        int rc = parse_word(tk, s->workload, sizeof(s->workload), err, errlen);
        if (!rc && strcmp(s->workload, "membership") && strcmp(s->workload, "none"))
            FAIL("workload: membership or none");
        return rc;
    }
    if (strcmp(d, "churn") == 0)
        return parse_churn(s, tk, err, errlen);
    if (strcmp(d, "param") == 0) {
        uint32_t v;
        if (tk->n != 3 || strlen(tk->t[1]) >= sizeof(s->params[0].name) || !parse_u32(tk->t[2], &v))
            FAIL("param: want 'param <swim parameter> <number>'");
        if (s->nparams == PPDB_SCN_MAX_PARAMS)
            FAIL("more than %u params", PPDB_SCN_MAX_PARAMS);
        snprintf(s->params[s->nparams].name, sizeof(s->params[0].name), "%s", tk->t[1]);
        s->params[s->nparams++].value = v;
        return 0;
    }
    int rc = parse_link(&s->link, tk, 0, err, errlen);
    if (rc == 1)
        FAIL("unknown directive '%s'", d);
    return rc;
}

int ppdb_scenario_line(struct ppdb_scenario *s, const char *line, uint32_t lineno, char *err,
                       size_t errlen)
{
    struct toks tk;
    int rc = tokenize(line, &tk);
    if (rc) {
        snprintf(err, errlen, "line %u: too long", lineno);
        return PPDB_EINVAL;
    }
    if (tk.n == 0)
        return 0;
    char msg[200] = "";
    if (strcmp(tk.t[0], "at") == 0)
        rc = parse_timed(s, &tk, lineno, msg, sizeof(msg));
    else if (strcmp(tk.t[0], "check") == 0)
        rc = parse_check(s, &tk, lineno, msg, sizeof(msg));
    else
        rc = parse_head(s, &tk, msg, sizeof(msg));
    if (rc)
        snprintf(err, errlen, "line %u: %s", lineno, msg);
    return rc;
}

int ppdb_scenario_parse(struct ppdb_scenario *s, const char *text, char *err, size_t errlen)
{
    uint32_t lineno = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[512];
        lineno++;
        if (len >= sizeof(line)) {
            snprintf(err, errlen, "line %u: too long", lineno);
            return PPDB_EINVAL;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        int rc = ppdb_scenario_line(s, line, lineno, err, errlen);
        if (rc)
            return rc;
        p += len + (nl ? 1 : 0);
    }
    return 0;
}

void ppdb_scenario_default(struct ppdb_scenario *s)
{
    memset(s, 0, sizeof(*s));
    s->nodes = 100;
    s->seeds = 1;
    s->seed = 1;
    s->runs = 1;
    s->duration_ms = 60000;
    s->encrypt = true;
    snprintf(s->profile, sizeof(s->profile), "lan-default");
    snprintf(s->workload, sizeof(s->workload), "membership");
    s->link = (struct ppdb_sim_link){.latency_ms = 1, .jitter_ms = 2};
}

int ppdb_scenario_finish(struct ppdb_scenario *s, char *err, size_t errlen)
{
    /* insertion sort: stable, and there are at most a few hundred */
    for (uint32_t i = 1; i < s->nactions; i++) {
        struct ppdb_scn_action a = s->actions[i];
        uint32_t j = i;
        while (j > 0 && s->actions[j - 1].at_ms > a.at_ms) {
            s->actions[j] = s->actions[j - 1];
            j--;
        }
        s->actions[j] = a;
    }
    if (s->seeds > s->nodes || s->seeds > 16) {
        snprintf(err, errlen, "seeds: at most 16 and at most the node count");
        return PPDB_EINVAL;
    }
    for (uint32_t i = 0; i < s->nactions; i++) {
        const struct ppdb_scn_action *a = &s->actions[i];
        for (uint32_t g = 0; g < a->ngroups; g++)
            if (a->groups[g].hi >= ppdb_scenario_capacity(s)) {
                snprintf(err, errlen, "line %u: node %u does not exist", a->line, a->groups[g].hi);
                return PPDB_EINVAL;
            }
    }
    return 0;
}

uint32_t ppdb_scenario_capacity(const struct ppdb_scenario *s)
{
    uint64_t cap = s->nodes;
    for (uint32_t i = 0; i < s->nactions; i++)
        if (s->actions[i].op == PPDB_SCN_JOIN)
            cap += s->actions[i].sel.count;
    for (uint32_t i = 0; i < s->nchurn; i++) {
        const struct ppdb_scn_churn *c = &s->churn[i];
        cap += (uint64_t)(c->join_per_s * (double)(c->to_ms - c->from_ms) / 1000.0) + 1;
    }
    return cap > 1000000 ? 1000000 : (uint32_t)cap;
}

bool ppdb_scn_check_holds(const struct ppdb_scn_check *c, double v)
{
    switch (c->cmp) {
    case PPDB_SCN_LE:
        return v <= c->value;
    case PPDB_SCN_LT:
        return v < c->value;
    case PPDB_SCN_GE:
        return v >= c->value;
    case PPDB_SCN_GT:
        return v > c->value;
    default:
        return v == c->value;
    }
}

const char *ppdb_scn_cmp_name(uint8_t cmp)
{
    static const char *ops[] = {"<=", "<", ">=", ">", "=="};
    return cmp < PPDB_ARRAY_LEN(ops) ? ops[cmp] : "?";
}
