/*
 * scenario.h - ppdb-sim scenarios: a line-based file format (and the same
 * lines given as flags) describing a simulated run: the mesh, the network
 * model, timed faults, churn, and checks on the report. docs/simulator.md
 * ("Scenarios") is the reference of the format.
 *
 * A scenario is a plain value: parsing allocates nothing (every table has
 * a fixed bound, exceeding it is a parse error naming the line).
 */
#ifndef PPDB_SCENARIO_H
#define PPDB_SCENARIO_H

#include "ppdb_sim.h"

#define PPDB_SCN_MAX_ACTIONS 256
#define PPDB_SCN_MAX_CHECKS  32
#define PPDB_SCN_MAX_CHURN   8
#define PPDB_SCN_MAX_GROUPS  8
#define PPDB_SCN_MAX_PARAMS  16

/* Which nodes an action applies to. */
enum ppdb_scn_sel_kind {
    PPDB_SCN_SEL_ALL = 0,
    PPDB_SCN_SEL_PERCENT, /* of the initial node count, at least 1 */
    PPDB_SCN_SEL_COUNT,
    PPDB_SCN_SEL_RANGE, /* node indices lo..hi inclusive */
};
struct ppdb_scn_sel {
    uint8_t kind;
    double percent;
    uint32_t count;
    uint32_t lo, hi;
};

enum ppdb_scn_op {
    PPDB_SCN_CRASH = 0,
    PPDB_SCN_RESTART,   /* crashed nodes come back (same identity) */
    PPDB_SCN_PAUSE,     /* for dur_ms */
    PPDB_SCN_LEAVE,     /* graceful */
    PPDB_SCN_JOIN,      /* count new nodes */
    PPDB_SCN_PARTITION, /* groups[], oneway */
    PPDB_SCN_HEAL,
    PPDB_SCN_LINK,      /* new default link model (link) */
    PPDB_SCN_BANDWIDTH, /* value: bytes/s per node, 0 unlimited */
};

struct ppdb_scn_action {
    uint64_t at_ms;
    uint8_t op;
    struct ppdb_scn_sel sel;
    uint64_t dur_ms;
    uint32_t ngroups;
    bool oneway;
    struct ppdb_scn_sel groups[PPDB_SCN_MAX_GROUPS]; /* ranges */
    struct ppdb_sim_link link;
    double value;
    uint32_t line;
};

/* Churn: Poisson-free, deterministic rates; each rate accumulates per tick
 * and acts on whole events (random node picks from the scenario RNG). */
struct ppdb_scn_churn {
    uint64_t from_ms, to_ms;
    double join_per_s, leave_per_s, crash_per_s, restart_per_s;
};

enum ppdb_scn_cmp { PPDB_SCN_LE = 0, PPDB_SCN_LT, PPDB_SCN_GE, PPDB_SCN_GT, PPDB_SCN_EQ };
struct ppdb_scn_check {
    char metric[32]; /* a key of the JSON report */
    uint8_t cmp;
    double value;
    uint32_t line;
};

struct ppdb_scenario {
    uint32_t nodes;          /* initial nodes (default 100) */
    uint32_t seeds;          /* seed nodes every other node joins through (default 1, max 16) */
    uint64_t seed;           /* RNG seed (default 1) */
    uint32_t runs;           /* runs with seeds seed, seed+1, ... (default 1) */
    uint64_t duration_ms;    /* default 60 s */
    uint64_t join_spread_ms; /* node i starts at i * spread / nodes (default 0: all at 0) */
    bool encrypt;            /* default on */
    char profile[32];        /* SWIM profile (default lan-default) */
    char workload[32];       /* "membership" (default) or "none" */
    struct ppdb_sim_link link;
    uint64_t bandwidth;   /* bytes/s per node egress, 0 unlimited */
    double skew_frac;     /* fraction of nodes with a wall clock skew ... */
    uint64_t skew_max_ms; /* ... uniform in [-max, +max] */
    double drift_frac;
    double drift_ppm; /* ... drift uniform in [-ppm, +ppm] */
    uint32_t nparams; /* SWIM parameter overrides: `param <name> <value>` */
    struct {
        char name[40];
        uint32_t value;
    } params[PPDB_SCN_MAX_PARAMS];
    uint32_t nactions, nchurn, nchecks;
    struct ppdb_scn_action actions[PPDB_SCN_MAX_ACTIONS]; /* sorted by at_ms, stable */
    struct ppdb_scn_churn churn[PPDB_SCN_MAX_CHURN];
    struct ppdb_scn_check checks[PPDB_SCN_MAX_CHECKS];
};

void ppdb_scenario_default(struct ppdb_scenario *s);
/* Applies one line (comments and blank lines are fine). On error returns
 * PPDB_EINVAL (or PPDB_ELIMIT for a full table) and writes a message. */
int ppdb_scenario_line(struct ppdb_scenario *s, const char *line, uint32_t lineno, char *err,
                       size_t errlen);
/* Applies every line of text. */
int ppdb_scenario_parse(struct ppdb_scenario *s, const char *text, char *err, size_t errlen);
/* Sorts the actions by time (stable) and checks cross-line rules; call
 * once after the last line. */
int ppdb_scenario_finish(struct ppdb_scenario *s, char *err, size_t errlen);
/* Nodes the run may need: the initial ones plus every join. */
uint32_t ppdb_scenario_capacity(const struct ppdb_scenario *s);

/* Parsers shared with the command line: "30s", "1.5m", "500ms", "1h"
 * (a bare number is seconds); "5%" or "0.05"; "1MB/s", "250KB/s", "100B/s". */
int ppdb_scn_parse_duration(const char *tok, uint64_t *ms_out);
int ppdb_scn_parse_fraction(const char *tok, double *out);
int ppdb_scn_parse_rate(const char *tok, uint64_t *bytes_per_s_out);
/* Checks a value against a check; true when it holds. */
bool ppdb_scn_check_holds(const struct ppdb_scn_check *c, double value);
const char *ppdb_scn_cmp_name(uint8_t cmp);

#endif /* PPDB_SCENARIO_H */
