/*
 * test_simtool_scenario.c - the ppdb-sim scenario format (sim/scenario.h):
 * units, selections, link directives, timed actions (sorted, stable),
 * partitions (two-way, one-way), churn, checks, capacity, and errors that
 * name their line. Also the report's value table (sim/report.h) that
 * checks read. Deterministic: no seed.
 */
#include "check.h"
#include "report.h"
#include "scenario.h"

static void test_units(void)
{
    uint64_t ms;
    CHECK_OK(ppdb_scn_parse_duration("30s", &ms));
    CHECK_EQ(ms, 30000);
    CHECK_OK(ppdb_scn_parse_duration("1.5m", &ms));
    CHECK_EQ(ms, 90000);
    CHECK_OK(ppdb_scn_parse_duration("500ms", &ms));
    CHECK_EQ(ms, 500);
    CHECK_OK(ppdb_scn_parse_duration("1h", &ms));
    CHECK_EQ(ms, 3600000);
    CHECK_OK(ppdb_scn_parse_duration("7", &ms));
    CHECK_EQ(ms, 7000);
    CHECK_ERR(ppdb_scn_parse_duration("5x", &ms), PPDB_EINVAL);
    CHECK_ERR(ppdb_scn_parse_duration("-1s", &ms), PPDB_EINVAL);
    double f;
    CHECK_OK(ppdb_scn_parse_fraction("5%", &f));
    CHECK(f > 0.0499 && f < 0.0501);
    CHECK_OK(ppdb_scn_parse_fraction("0.25", &f));
    CHECK(f == 0.25);
    CHECK_ERR(ppdb_scn_parse_fraction("150%", &f), PPDB_ERANGE);
    uint64_t r;
    CHECK_OK(ppdb_scn_parse_rate("1MB/s", &r));
    CHECK_EQ(r, 1000000);
    CHECK_OK(ppdb_scn_parse_rate("8Mbit/s", &r));
    CHECK_EQ(r, 1000000);
    CHECK_ERR(ppdb_scn_parse_rate("1MB", &r), PPDB_EINVAL);
}

static const char *full = "# a comment\n"
                          "nodes 1000   # trailing comment\n"
                          "seeds 3\n"
                          "seed 42\n"
                          "runs 2\n"
                          "duration 10m\n"
                          "encryption off\n"
                          "join spread 30s\n"
                          "latency 5ms jitter 10ms dist lognormal shape 0.5\n"
                          "loss 5%\n"
                          "dup 1%\n"
                          "reorder 2% by 30ms\n"
                          "bandwidth 125KB/s\n"
                          "skew 10% 2s\n"
                          "drift 5% 100ppm\n"
                          "param max_broadcasts 1024\n"
                          "\n"
                          "at 90s heal\n"
                          "at 60s partition 0-499 | 500-999\n"
                          "at 30s crash 1%\n"
                          "at 60s loss 10%\n"
                          "at 80s partition 0-99 -> 100-999\n"
                          "at 45s pause 5 for 10s\n"
                          "at 120s restart all\n"
                          "at 130s join 20\n"
                          "at 140s leave 10-19\n"
                          "churn from 200s to 300s join 1/s leave 0.5/s crash 0.5/s restart 0.2/s\n"
                          "check false_dead == 0\n"
                          "check detect_p99_s <= 10s\n"
                          "check final_convergence >= 99%\n";

static void test_full(void)
{
    static struct ppdb_scenario s;
    char err[256] = "";
    ppdb_scenario_default(&s);
    CHECK_OK(ppdb_scenario_parse(&s, full, err, sizeof(err)));
    CHECK_OK(ppdb_scenario_finish(&s, err, sizeof(err)));
    CHECK_EQ(s.nodes, 1000);
    CHECK_EQ(s.seeds, 3);
    CHECK_EQ(s.seed, 42);
    CHECK_EQ(s.runs, 2);
    CHECK_EQ(s.duration_ms, 600000);
    CHECK(!s.encrypt);
    CHECK_EQ(s.join_spread_ms, 30000);
    CHECK_EQ(s.link.latency_ms, 5);
    CHECK_EQ(s.link.jitter_ms, 10);
    CHECK_EQ(s.link.dist, PPDB_SIM_DIST_LOGNORMAL);
    CHECK(s.link.shape == 0.5);
    CHECK(s.link.loss > 0.0499 && s.link.loss < 0.0501);
    CHECK_EQ(s.link.reorder_ms, 30);
    CHECK_EQ(s.bandwidth, 125000);
    CHECK_EQ(s.skew_max_ms, 2000);
    CHECK(s.drift_ppm == 100.0);
    CHECK_EQ(s.nparams, 1);
    CHECK_STREQ(s.params[0].name, "max_broadcasts");
    CHECK_EQ(s.params[0].value, 1024);
    CHECK_EQ(s.nactions, 9);
    /* sorted by time, stable: the two 60 s actions keep their file order */
    for (uint32_t i = 1; i < s.nactions; i++)
        CHECK_LE(s.actions[i - 1].at_ms, s.actions[i].at_ms);
    CHECK_EQ(s.actions[0].op, PPDB_SCN_CRASH);
    CHECK_EQ(s.actions[0].sel.kind, PPDB_SCN_SEL_PERCENT);
    CHECK_EQ(s.actions[1].op, PPDB_SCN_PAUSE);
    CHECK_EQ(s.actions[1].sel.count, 5);
    CHECK_EQ(s.actions[1].dur_ms, 10000);
    CHECK_EQ(s.actions[2].op, PPDB_SCN_PARTITION);
    CHECK_EQ(s.actions[2].ngroups, 2);
    CHECK(!s.actions[2].oneway);
    CHECK_EQ(s.actions[2].groups[1].lo, 500);
    CHECK_EQ(s.actions[3].op, PPDB_SCN_LINK);
    CHECK(s.actions[3].link.loss > 0.099 && s.actions[3].link.loss < 0.101);
    CHECK_EQ(s.actions[3].link.latency_ms, 5); /* the rest of the model stays */
    CHECK_EQ(s.actions[4].op, PPDB_SCN_PARTITION);
    CHECK(s.actions[4].oneway);
    CHECK_EQ(s.actions[5].op, PPDB_SCN_HEAL);
    CHECK_EQ(s.actions[8].op, PPDB_SCN_LEAVE);
    CHECK_EQ(s.actions[8].sel.kind, PPDB_SCN_SEL_RANGE);
    CHECK_EQ(s.nchurn, 1);
    CHECK(s.churn[0].restart_per_s == 0.2);
    CHECK_EQ(s.nchecks, 3);
    CHECK(s.checks[1].value == 10.0); /* durations compare in seconds */
    CHECK(s.checks[2].value == 0.99); /* fractions as fractions */
    CHECK_EQ(ppdb_scenario_capacity(&s), 1000 + 20 + 100 + 1);
    struct ppdb_scn_check c = {.cmp = PPDB_SCN_LE, .value = 10};
    CHECK(ppdb_scn_check_holds(&c, 10));
    CHECK(!ppdb_scn_check_holds(&c, 10.5));
}

static void expect_error(const char *text, const char *needle)
{
    static struct ppdb_scenario s;
    char err[256] = "";
    ppdb_scenario_default(&s);
    int rc = ppdb_scenario_parse(&s, text, err, sizeof(err));
    if (rc == 0)
        rc = ppdb_scenario_finish(&s, err, sizeof(err));
    CHECK_NE(rc, 0);
    if (!strstr(err, needle)) {
        fprintf(stderr, "error '%s' lacks '%s'\n", err, needle);
        CHECK(!"error message");
    }
}

static void test_errors(void)
{
    expect_error("nodes 10\nbogus 3\n", "line 2: unknown directive 'bogus'");
    expect_error("at 5s explode 3\n", "line 1: at: unknown action 'explode'");
    expect_error("at 5s partition 0-9\n", "at least two groups");
    expect_error("at 5s partition 0-9 -> 10-19 | 20-29\n", "exactly two groups");
    expect_error("at 5s pause 3\n", "pause <sel> for");
    expect_error("loss 5\n", "line 1: loss");
    expect_error("latency 1ms wobble 3\n", "unknown option 'wobble'");
    expect_error("check x ~ 3\n", "op is one of");
    expect_error("nodes 10\nat 1s partition 0-4 | 5-20\n", "node 20 does not exist");
    expect_error("nodes 2\nseeds 3\n", "seeds");
    expect_error("param max_broadcasts lots\n", "param:");
    static struct ppdb_scenario s;
    char err[256];
    ppdb_scenario_default(&s);
    for (uint32_t i = 0; i < PPDB_SCN_MAX_ACTIONS; i++)
        CHECK_OK(ppdb_scenario_line(&s, "at 1s heal", i + 1, err, sizeof(err)));
    CHECK_ERR(ppdb_scenario_line(&s, "at 1s heal", 999, err, sizeof(err)), PPDB_ELIMIT);
}

static void test_report_values(void)
{
    struct ppdb_simrep r = {.nodes = 7, .false_dead = 3, .detect_p99_s = 1.5};
    double v;
    CHECK(ppdb_simrep_value(&r, "nodes", &v) && v == 7);
    CHECK(ppdb_simrep_value(&r, "false_dead", &v) && v == 3);
    CHECK(ppdb_simrep_value(&r, "detect_p99_s", &v) && v == 1.5);
    CHECK(!ppdb_simrep_value(&r, "no_such_key", &v));
}

int main(void)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_units();
    test_full();
    test_errors();
    test_report_values();
    check_no_leaks(&base);
    fprintf(stderr, "test_simtool_scenario: ok\n");
    return 0;
}
