/*
 * test_membership_scale.c - 10,000 nodes (lan-default, null cipher) join
 * through 3 seeds, all at once, and run membership for 10 simulated
 * minutes with no loss: the mesh must converge within that time, every
 * node must know every other one alive at the end and none may have been
 * declared dead. Prints the wall time of each phase,
 * peak RSS, the convergence time, traffic and the bytes each member entry
 * costs: the cost figures of docs/protocols/membership.md.
 *
 * Usage: test_membership_scale [seed] [nodes] [seconds]. Labelled slow.
 * The sanitizer build (PPDB_SANITIZE) runs 300 nodes for 60 simulated s
 * by default and says so.
 */
#include <sys/resource.h>

#include "test_membership_world.h"

#ifdef PPDB_SANITIZE
#define DEFAULT_NODES 300
#define DEFAULT_SECS  60
#else
#define DEFAULT_NODES 10000
#define DEFAULT_SECS  600
#endif
#define NSEEDS 3

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x5ca1e);
    uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_NODES;
    uint64_t secs = argc > 3 ? strtoull(argv[3], NULL, 0) : DEFAULT_SECS;
    CHECK(n > NSEEDS);
    if (n != 10000 || secs != 600)
        fprintf(stderr,
                "note: %u nodes for %llu simulated s (10,000 for 600 s in the normal build)\n", n,
                (unsigned long long)secs);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    double t0 = mw_wall_s();
    struct mw w;
    mw_init(&w, n, seed, 0.0);
    w.null_cipher = true;
    mw_start(&w, 0, 0);
    for (uint32_t i = 1; i < NSEEDS; i++)
        mw_start(&w, i, 0);
    for (uint32_t i = NSEEDS; i < n; i++)
        mw_start_seeds(&w, i, (uint32_t[]){0, 1, 2}, NSEEDS);
    double t_built = mw_wall_s();
    uint64_t conv_ms = mw_run_converge(&w, secs * 1000, 500);
    double t_conv = mw_wall_s();
    fprintf(stderr, "join: nodes=%u converged_ms=%llu wall=%.1fs (build %.1fs) rss=%.0fMB\n", n,
            (unsigned long long)conv_ms, t_conv - t0, t_built - t0, peak_rss_mb());
    mw_print_stats(&w, "join-stats:");
    if (conv_ms == UINT64_MAX) /* the figures below still say how far it got */
        fprintf(stderr, "not converged after %llu simulated s: %llu pairs missing\n",
                (unsigned long long)secs,
                (unsigned long long)ppdb_memcheck_unconverged_pairs(w.chk));
    uint64_t left_ms = conv_ms < secs * 1000 ? secs * 1000 - conv_ms : 0;
    ppdb_memcheck_traffic_begin(w.chk, w.sim);
    CHECK_OK(ppdb_sim_run_for(w.sim, left_ms));
    ppdb_memcheck_traffic_end(w.chk, w.sim);
    struct ppdb_memcheck_report r;
    ppdb_memcheck_report(w.chk, &r);
    ppdb_memcheck_print(&r, "scale:", stderr);
    mw_print_stats(&w, "scale-stats:");
    struct ppdb_node_stats sum;
    size_t bpm;
    mw_sum(&w, &sum, &bpm);
    fprintf(stderr,
            "figures: seed=%llu nodes=%u sim_s=%llu converge_ms=%llu bytes_per_member=%zu "
            "bytes_per_node_s=%.1f msgs_per_node_s=%.2f false_deaths=%llu wall=%.1fs "
            "peak_rss=%.0fMB\n",
            (unsigned long long)seed, n, (unsigned long long)secs, (unsigned long long)conv_ms, bpm,
            r.bytes_per_node_s, r.msgs_per_node_s, (unsigned long long)r.false_deaths,
            mw_wall_s() - t0, peak_rss_mb());
    CHECK(conv_ms != UINT64_MAX);
    CHECK_EQ(r.false_deaths, 0);
    CHECK(ppdb_memcheck_converged(w.chk));
    CHECK_LE(bpm, 96);
    mw_free(&w);
    check_no_leaks(&base);
    fprintf(stderr, "test_membership_scale: ok\n");
    return 0;
}
