/*
 * test_membership_join.c - 1,000 nodes (lan-default, encryption on) join
 * through one seed and converge (the partner tree is one tree); then 1% of
 * them crash at once, twice, and every survivor must mark every one of them
 * dead: p50 <= 5 s, p99 <= 10 s, with no false death. Prints convergence time, crash-to-dead
 * p50/p99, traffic and the bytes each member entry costs.
 *
 * Usage: test_membership_join [seed] [nodes]. The sanitizer build
 * (PPDB_SANITIZE) runs 300 nodes by default and says so.
 */
#include "../../peer/node_int.h"
#include "test_membership_world.h"

#ifdef PPDB_SANITIZE
#define DEFAULT_NODES 300
#else
#define DEFAULT_NODES 1000
#endif

/* The partner tree: every sticky partner has a smaller id than its node
 * (so the partner graph has no cycle), and following partners from any
 * node ends at one root, the smallest id, which has none. */
static void check_partner_tree(struct mw *w)
{
    uint32_t root = UINT32_MAX;
    for (uint32_t i = 0; i < w->n; i++)
        if (w->nodes[i].up &&
            (root == UINT32_MAX ||
             memcmp(w->nodes[i].idn.id.b, w->nodes[root].idn.id.b, PPDB_NODE_ID_LEN) < 0))
            root = i;
    uint32_t max_depth = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        uint32_t at = i, depth = 0;
        while (w->nodes[at].node->swim.sticky >= 0) {
            const struct ppdb_swim *s = &w->nodes[at].node->swim;
            uint32_t next;
            CHECK_OK(ppdb_sim_addr_node(w->sim, &s->partners[s->sticky].addr, &next));
            CHECK(memcmp(w->nodes[next].idn.id.b, w->nodes[at].idn.id.b, PPDB_NODE_ID_LEN) < 0);
            at = next;
            CHECK_LE(++depth, w->n);
        }
        CHECK_EQ(at, root);
        max_depth = depth > max_depth ? depth : max_depth;
    }
    fprintf(stderr, "partner tree: one root, depth <= %u\n", max_depth);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x5eed1);
    uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_NODES;
    if (n != 1000)
        fprintf(stderr, "note: %u nodes (1,000 in the normal build)\n", n);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    double t0 = mw_wall_s();
    struct mw w;
    mw_init(&w, n, seed, 0.0);
    for (uint32_t i = 0; i < n; i++)
        mw_start(&w, i, 0);
    uint64_t conv_ms = mw_run_converge(&w, 120000, 100);
    fprintf(stderr, "join: nodes=%u converged_ms=%llu wall=%.1fs\n", n, (unsigned long long)conv_ms,
            mw_wall_s() - t0);
    mw_print_stats(&w, "join-stats:");
    CHECK(conv_ms != UINT64_MAX);
    check_partner_tree(&w);

    /* steady state traffic for 30 s */
    ppdb_memcheck_traffic_begin(w.chk, w.sim);
    CHECK_OK(ppdb_sim_run_for(w.sim, 30000));
    ppdb_memcheck_traffic_end(w.chk, w.sim);

    /* 1% crash at once, twice, 30 s apart: the percentiles are over the
     * (survivor, crashed) pairs of both waves, so they rest on 2% of the
     * nodes rather than on the timing of 10 of them */
    uint32_t ncrash = n / 100 ? n / 100 : 1;
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    for (uint32_t wave = 0; wave < 2; wave++) {
        for (uint32_t k = 0, tries = 0; k < ncrash;) {
            CHECK(tries++ < 100 * n); /* bounded: picks among the live nodes */
            uint32_t i = 1 + (uint32_t)ppdb_rng_below(&rng, n - 1);
            if (!w.nodes[i].up)
                continue;
            mw_crash(&w, i);
            k++;
        }
        CHECK_OK(ppdb_sim_run_for(w.sim, 30000));
    }
    struct ppdb_memcheck_report r;
    ppdb_memcheck_report(w.chk, &r);
    ppdb_memcheck_print(&r, "crash:", stderr);
    mw_print_stats(&w, "crash-stats:");
    fprintf(stderr,
            "figures: nodes=%u converge_ms=%llu crash_to_dead_p50_ms=%llu p99_ms=%llu "
            "bytes_per_node_s=%.1f msgs_per_node_s=%.2f wall=%.1fs\n",
            n, (unsigned long long)conv_ms, (unsigned long long)r.dead_p50_ms,
            (unsigned long long)r.dead_p99_ms, r.bytes_per_node_s, r.msgs_per_node_s,
            mw_wall_s() - t0);
    CHECK_EQ(r.missing, 0);
    CHECK_EQ(r.detections, (uint64_t)ncrash * (n - ncrash) + (uint64_t)ncrash * (n - 2 * ncrash));
    CHECK_LE(r.dead_p50_ms, 5000);
    CHECK_LE(r.dead_p99_ms, 10000);
    CHECK_EQ(r.false_deaths, 0);
    CHECK(ppdb_memcheck_converged(w.chk)); /* survivors still agree */
    mw_free(&w);
    check_no_leaks(&base);
    fprintf(stderr, "test_membership_join: ok\n");
    return 0;
}
