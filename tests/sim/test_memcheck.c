/*
 * test_memcheck.c - the membership checkers themselves, fed by hand:
 * convergence counting, crash-to-dead samples and missing pairs, false
 * suspicions and deaths counted once per (subject, incarnation), and a
 * restart (live again, empty own views, news of the earlier life ignored).
 */
#include "check.h"
#include "check_membership.h"
#include "ppdb_peer.h"

#define N 4

static struct ppdb_node_id ids[N];

static void feed_all_alive(struct ppdb_memcheck *c, uint64_t inc)
{
    for (uint32_t o = 0; o < N; o++)
        for (uint32_t s = 0; s < N; s++)
            if (o != s)
                ppdb_memcheck_on_change(c, o, &ids[s], inc, PPDB_MEMBER_ALIVE, 0);
}

static struct ppdb_memcheck *world(void)
{
    struct ppdb_memcheck *c;
    CHECK_OK(ppdb_memcheck_new(N, &c));
    for (uint32_t i = 0; i < N; i++) {
        memset(&ids[i], 0, sizeof(ids[i]));
        ids[i].b[0] = (uint8_t)(0x40 - i); /* not in index order */
        CHECK_OK(ppdb_memcheck_set_id(c, i, &ids[i]));
        ppdb_memcheck_started(c, i);
    }
    CHECK_ERR(ppdb_memcheck_set_id(c, 0, &ids[0]), PPDB_EINVAL);
    return c;
}

static void test_converge_and_detect(void)
{
    struct ppdb_memcheck *c = world();
    CHECK_EQ(ppdb_memcheck_unconverged_pairs(c), (uint64_t)N * (N - 1));
    feed_all_alive(c, 1);
    CHECK(ppdb_memcheck_converged(c));
    ppdb_memcheck_crashed(c, 3, 1000);
    CHECK(ppdb_memcheck_converged(c)); /* the crashed node is out of the count */
    ppdb_memcheck_on_change(c, 0, &ids[3], 1, PPDB_MEMBER_SUSPECT, 2000);
    ppdb_memcheck_on_change(c, 0, &ids[3], 1, PPDB_MEMBER_DEAD, 4000);
    ppdb_memcheck_on_change(c, 1, &ids[3], 1, PPDB_MEMBER_DEAD, 5500);
    ppdb_memcheck_on_change(c, 1, &ids[3], 1, PPDB_MEMBER_DEAD, 6000); /* again: one sample */
    /* a false suspicion of node 2, seen by two observers: one episode */
    ppdb_memcheck_on_change(c, 0, &ids[2], 1, PPDB_MEMBER_SUSPECT, 3000);
    ppdb_memcheck_on_change(c, 1, &ids[2], 1, PPDB_MEMBER_SUSPECT, 3100);
    CHECK(!ppdb_memcheck_converged(c));
    ppdb_memcheck_on_change(c, 0, &ids[2], 2, PPDB_MEMBER_ALIVE, 3200);
    ppdb_memcheck_on_change(c, 1, &ids[2], 2, PPDB_MEMBER_ALIVE, 3300);
    CHECK(ppdb_memcheck_converged(c));
    struct ppdb_memcheck_report r;
    ppdb_memcheck_report(c, &r);
    CHECK_EQ(r.live, 3);
    CHECK_EQ(r.crashed, 1);
    CHECK_EQ(r.detections, 2);
    CHECK_EQ(r.missing, 1); /* observer 2 still sees it alive */
    CHECK_EQ(r.dead_p50_ms, 3000);
    CHECK_EQ(r.dead_max_ms, 4500);
    CHECK_EQ(r.false_suspicions, 1);
    CHECK_EQ(r.false_suspect_events, 2);
    CHECK_EQ(r.false_deaths, 0);
    ppdb_memcheck_free(c);
}

static void test_restart(void)
{
    struct ppdb_memcheck *c = world();
    feed_all_alive(c, 5);
    ppdb_memcheck_crashed(c, 3, 1000);
    ppdb_memcheck_on_change(c, 0, &ids[3], 5, PPDB_MEMBER_DEAD, 3000);
    ppdb_memcheck_restarted(c, 3);
    struct ppdb_memcheck_report r;
    ppdb_memcheck_report(c, &r);
    CHECK_EQ(r.live, N);
    CHECK_EQ(r.crashed, 0);
    CHECK_EQ(r.missing, 0);
    /* node 3 knows nobody yet; 0 sees it dead; 1 and 2 still see it alive */
    CHECK_EQ(ppdb_memcheck_unconverged_pairs(c), 3 + 1);
    /* late news of the earlier life: not false */
    ppdb_memcheck_on_change(c, 1, &ids[3], 5, PPDB_MEMBER_DEAD, 3500);
    ppdb_memcheck_on_change(c, 2, &ids[3], 4, PPDB_MEMBER_SUSPECT, 3600);
    ppdb_memcheck_report(c, &r);
    CHECK_EQ(r.false_deaths, 0);
    CHECK_EQ(r.false_suspicions, 0);
    CHECK_EQ(r.detections, 1);
    /* the new life: everyone learns incarnation 6, node 3 learns everyone */
    feed_all_alive(c, 6);
    CHECK(ppdb_memcheck_converged(c));
    /* and a suspicion of the new life is false */
    ppdb_memcheck_on_change(c, 1, &ids[3], 6, PPDB_MEMBER_SUSPECT, 9000);
    ppdb_memcheck_report(c, &r);
    CHECK_EQ(r.false_suspicions, 1);
    ppdb_memcheck_free(c);
}

int main(void)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_converge_and_detect();
    test_restart();
    check_no_leaks(&base);
    fprintf(stderr, "test_memcheck: ok\n");
    return 0;
}
