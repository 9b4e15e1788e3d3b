/*
 * test_swim_delta.c - delta push/pull between SWIM instances (peer/swim.c):
 * the member table's change sequence and log (log and scan paths, the
 * bound and `more`, renumbering on wrap), then two nodes over a fake
 * transport: a join by sample, the first full pull, deltas carrying only
 * what changed, truncated replies continued at once, an epoch change
 * answered with full state, pushes, the periodic push/pull gated by a
 * digest of the live view, and the bounded partner table.
 *
 * The env is driven by hand (test_swim_hand.h): a settable clock, a seeded
 * RNG, timers the test fires itself; datagrams are not delivered here.
 */
#include "test_swim_hand.h"

/* ------------------------------------------------------------ the table */

static void test_table_changes(void)
{
    struct ppdb_swim_table t;
    CHECK_OK(ppdb_swim_table_init(&t, 5000, 7));
    struct ppdb_swim_member m;
    memset(&m, 0, sizeof(m));
    uint32_t idx[4096], n, wm, at;
    bool more;
    for (uint32_t k = 0; k < 1000; k++) {
        memcpy(m.id.b, &k, sizeof(k));
        CHECK_OK(ppdb_swim_table_add(&t, &m, NULL, 0, &at));
        CHECK_EQ(PPDB_SWIM_M(&t, at).lseq, k + 1);
    }
    CHECK_EQ(t.lseq, 1000u);
    /* recent: from the log, in lseq order */
    CHECK_OK(ppdb_swim_table_changed(&t, 990, 100, idx, &n, &wm, &more));
    CHECK_EQ(n, 10u);
    CHECK_EQ(wm, 1000u);
    CHECK(!more);
    for (uint32_t k = 0; k < n; k++)
        CHECK_EQ(PPDB_SWIM_M(&t, idx[k]).lseq, 991 + k);
    /* a change supersedes the entry's earlier sequence number */
    ppdb_swim_table_touch(&t, 995);
    CHECK_OK(ppdb_swim_table_changed(&t, 990, 100, idx, &n, &wm, &more));
    CHECK_EQ(n, 10u);
    CHECK_EQ(PPDB_SWIM_M(&t, idx[n - 1]).lseq, 1001u);
    CHECK_EQ(wm, 1001u);
    /* bounded: the watermark is the last one sent, and more remain */
    CHECK_OK(ppdb_swim_table_changed(&t, 990, 4, idx, &n, &wm, &more));
    CHECK_EQ(n, 4u);
    CHECK(more);
    CHECK_EQ(wm, PPDB_SWIM_M(&t, idx[3]).lseq);
    /* older than the log: a scan, sorted when truncated */
    CHECK_OK(ppdb_swim_table_changed(&t, 0, 4096, idx, &n, &wm, &more));
    CHECK_EQ(n, 1000u);
    CHECK_EQ(wm, 1001u);
    CHECK(!more);
    CHECK_OK(ppdb_swim_table_changed(&t, 10, 100, idx, &n, &wm, &more));
    CHECK_EQ(n, 100u);
    CHECK(more);
    CHECK_EQ(wm, 110u);
    for (uint32_t k = 0; k < n; k++)
        CHECK_EQ(PPDB_SWIM_M(&t, idx[k]).lseq, 11 + k);
    /* nothing newer */
    CHECK_OK(ppdb_swim_table_changed(&t, 1001, 100, idx, &n, &wm, &more));
    CHECK_EQ(n, 0u);
    CHECK_EQ(wm, 1001u);
    /* wrap: a new epoch and numbering, the log answers nothing old */
    uint64_t epoch = t.epoch;
    t.lseq = UINT32_MAX - 1;
    ppdb_swim_table_touch(&t, 0);
    CHECK_EQ(PPDB_SWIM_M(&t, 0).lseq, UINT32_MAX);
    ppdb_swim_table_touch(&t, 1);
    CHECK(t.epoch != epoch);
    CHECK_EQ(t.lseq, 1001u);
    CHECK_EQ(PPDB_SWIM_M(&t, 1).lseq, 1001u);
    CHECK_OK(ppdb_swim_table_changed(&t, 0, 4096, idx, &n, &wm, &more));
    CHECK_EQ(n, 1000u);
    ppdb_swim_table_deinit(&t);
}

/* ------------------------------------------------------------ two nodes */

static void test_delta_sync(uint64_t seed)
{
    static struct peer a, b;
    peer_init(&a, 1, seed);
    peer_init(&b, 2, seed + 1);
    for (uint32_t k = 0; k < 3000; k++)
        fake_member(&a.swim, k, 1);
    CHECK_EQ(a.swim.tab.len, 3001u);
    /* new members are gossiped only within the budget */
    CHECK_EQ(a.swim.queue.len, PPDB_SWIM_JOIN_GOSSIP_BURST);
    CHECK_OK(ppdb_swim_start(&a.swim, NULL, 0));
    CHECK_OK(ppdb_swim_start(&b.swim, &a.addr, 1));
    struct reply_info rq, rp;

    /* join: a sample, then a full pull from a partner picked among it */
    exchange(&b, &a, &rq, &rp);
    CHECK(rp.delta);
    CHECK(rp.count >= 1 && rp.count <= 1 + PPDB_SWIM_JOIN_SAMPLE);
    CHECK(b.swim.sticky < 0);
    CHECK_EQ(b.swim.delta_timer.due_ms, b.env.now_ms); /* at once */
    fire_delta(&b);
    if (b.swim.sticky < 0) {
        /* the sample held no id below b's: as a root of the partner tree,
         * b exchanges with a random member (whatever b picked, a answers) */
        CHECK(b.req.used);
        exchange(&b, &a, &rq, &rp);
        CHECK(!rp.delta);
        CHECK_EQ(rp.count, 3002u); /* a merged b first */
        CHECK_EQ(b.swim.tab.len, 3002u);
        fire_delta(&b);
    }
    /* a's id is below b's: a is b's parent, and their first exchange is a
     * full one */
    CHECK(b.swim.sticky >= 0);
    CHECK(ppdb_addr_equal(&b.swim.partners[b.swim.sticky].addr, &a.addr));
    exchange(&b, &a, &rq, &rp);
    CHECK(!rp.delta);
    CHECK_EQ(rp.count, 3002u);
    CHECK_EQ(b.swim.tab.len, 3002u);
    CHECK(rq.delta && rq.count >= 1); /* b pushed itself */
    const struct ppdb_swim_partner *p = &b.swim.partners[b.swim.sticky];
    CHECK_EQ(p->epoch, a.swim.tab.epoch);
    CHECK_EQ(p->pulled, rp.wm);

    /* only what changed since */
    for (uint32_t k = 0; k < 10; k++)
        fake_member(&a.swim, k, 2);
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK(rp.delta);
    CHECK_EQ(rp.count, 10u);
    CHECK(!rp.more);
    CHECK_EQ(b.swim.delta_ms, PPDB_SWIM_DELTA_MIN_MS);
    /* nothing new: empty; the interval backs off once news are old */
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK_EQ(rp.count, 0u);
    CHECK_EQ(b.swim.delta_ms, PPDB_SWIM_DELTA_MIN_MS);
    b.env.now_ms += PPDB_SWIM_DELTA_QUIET_MS;
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK_EQ(rp.count, 0u);
    CHECK_EQ(b.swim.delta_ms, 2 * PPDB_SWIM_DELTA_MIN_MS);
    /* a local change brings a backed-off timer in */
    b.swim.delta_ms = 16 * PPDB_SWIM_DELTA_MIN_MS;
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK(b.swim.delta_timer.due_ms > b.env.now_ms + PPDB_SWIM_DELTA_MIN_MS);
    fake_member(&b.swim, 9001, 1);
    CHECK_EQ(b.swim.delta_timer.due_ms, b.env.now_ms + PPDB_SWIM_DELTA_MIN_MS);
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK_EQ(rq.count, 2u); /* b itself and the new member */

    /* many changes: bounded replies with `more`, continued soon */
    for (uint32_t k = 0; k < 3000; k++)
        fake_member(&a.swim, k, 3);
    uint32_t got = 0, rounds = 0;
    do {
        fire_delta(&b);
        exchange(&b, &a, &rq, &rp);
        got += rp.count;
        CHECK(rp.count <= PPDB_SWIM_DELTA_MAX);
        if (rp.more)
            CHECK_EQ(b.swim.delta_timer.due_ms, b.env.now_ms + PPDB_SWIM_DELTA_MORE_MS);
        CHECK(++rounds < 10);
    } while (rp.more);
    CHECK_EQ(rounds, 2u);
    CHECK_EQ(got, 3000u);
    for (uint32_t k = 0; k < 3000; k++) {
        struct ppdb_node_id id;
        memset(&id, 0, sizeof(id));
        memcpy(id.b, "fake", 4);
        memcpy(id.b + 4, &k, sizeof(k));
        uint32_t i = ppdb_swim_table_find(&b.swim.tab, &id);
        CHECK(i != UINT32_MAX);
        CHECK_EQ(PPDB_SWIM_M(&b.swim.tab, i).incarnation, 3u);
    }

    /* push: b's change reaches a in b's next request, and is not echoed */
    fake_member(&b.swim, 9000, 1);
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK_EQ(rq.count, 2u); /* b itself and the new member */
    CHECK_EQ(rp.count, 0u);
    CHECK_EQ(a.swim.tab.len, 3004u);

    /* a restarted a (new epoch): full state again */
    a.swim.tab.epoch ^= 0x100;
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK(!rp.delta);
    CHECK_EQ(rp.count, a.swim.tab.len);
    CHECK_EQ(b.swim.partners[b.swim.sticky].epoch, a.swim.tab.epoch);
    fire_delta(&b);
    exchange(&b, &a, &rq, &rp);
    CHECK(rp.delta);
    CHECK_EQ(rp.count, 0u);

    /* the periodic push/pull waits while deltas bring news ... */
    b.swim.delta_news_ms = b.env.now_ms;
    b.swim.sync_timer.cb(&b.swim.sync_timer);
    CHECK(!b.req.used);
    /* ... then, with the same view, nothing but digests travels */
    b.env.now_ms += PPDB_SWIM_DELTA_QUIET_MS;
    CHECK_EQ_U64(a.swim.digest, b.swim.digest);
    b.swim.sync_timer.cb(&b.swim.sync_timer);
    exchange(&b, &a, &rq, &rp);
    CHECK(rq.delta);
    CHECK_EQ(rq.count, 1u);
    CHECK(rp.delta);
    CHECK_EQ(rp.count, 0u);
    /* views differ: a's full state, then b pushes its own and gets a delta */
    fake_member(&a.swim, 9100, 1);
    CHECK(a.swim.digest != b.swim.digest);
    b.swim.sync_timer.cb(&b.swim.sync_timer);
    exchange(&b, &a, &rq, &rp);
    CHECK(!rp.delta);
    CHECK_EQ(rp.count, a.swim.tab.len);
    CHECK_EQ_U64(a.swim.digest, b.swim.digest);
    exchange(&b, &a, &rq, &rp); /* the push */
    CHECK(!rq.delta);
    CHECK_EQ(rq.count, b.swim.tab.len);
    CHECK(rp.delta);
    CHECK_EQ(rp.count, 0u);

    /* a partner that fails is replaced; the partner table stays bounded */
    for (uint32_t round = 0; round < 3 * PPDB_SWIM_PARTNERS; round++) {
        int32_t before = b.swim.sticky;
        for (uint32_t f = 0; f < PPDB_SWIM_PARTNER_FAILS; f++) {
            fire_delta(&b);
            CHECK(b.req.used);
            b.req.used = false;
            ppdb_buf_deinit(&b.req.body);
            b.req.cb(b.req.cb_data, PPDB_ETIMEDOUT, NULL);
        }
        /* b's one member with a smaller id failed: no parent until it
         * answers again (b exchanges as a root meanwhile) */
        CHECK(b.swim.sticky < 0 || b.swim.sticky != before);
        uint32_t used = 0;
        for (uint32_t k = 0; k < PPDB_SWIM_PARTNERS; k++)
            used += b.swim.partners[k].used;
        CHECK(used <= PPDB_SWIM_PARTNERS);
    }
    peer_deinit(&a);
    peer_deinit(&b);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0xde17a);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_table_changes();
    test_delta_sync(seed);
    check_no_leaks(&base);
    return 0;
}
