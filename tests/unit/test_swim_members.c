/*
 * test_swim_members.c - the data side of SWIM (peer/members.c): member
 * table insert/find/remove/swap with address and meta updates and memory
 * per member; the incarnation rule book (refute, suspect -> alive only with
 * a higher incarnation, dead overrides, left is final for its incarnation);
 * record encoding round trips; broadcast queue bounds, supersede rules and
 * retransmit limits; Lifeguard suspicion timeout math and scaling.
 */
#include "check.h"
#include "swim.h"

static struct ppdb_node_id mkid(uint32_t v)
{
    struct ppdb_node_id id;
    memset(&id, 0, sizeof(id));
    uint64_t h = ppdb_mix64(v + 1);
    memcpy(id.b, &h, 8);
    ppdb_store_u32le(id.b + 8, v);
    return id;
}

static void test_table(void)
{
    struct ppdb_swim_table t;
    CHECK_OK(ppdb_swim_table_init(&t, 5000, 42));
    for (uint32_t v = 0; v < 5000; v++) {
        struct ppdb_swim_member m = {.id = mkid(v), .state = PPDB_MEMBER_ALIVE, .incarnation = v};
        ppdb_addr_ipv4(&m.addr, 10, 0, (uint8_t)(v >> 8), (uint8_t)v, 7946);
        uint32_t i;
        uint8_t meta[8] = {2, 3, 'a', '=', (uint8_t)('0' + v % 10)};
        CHECK_OK(ppdb_swim_table_add(&t, &m, meta, 5, &i));
        CHECK_EQ(i, v);
    }
    struct ppdb_swim_member extra = {.id = mkid(99999)};
    uint32_t idx;
    CHECK_ERR(ppdb_swim_table_add(&t, &extra, NULL, 0, &idx), PPDB_ELIMIT);
    for (uint32_t v = 0; v < 5000; v++) {
        struct ppdb_node_id id = mkid(v);
        CHECK_EQ(ppdb_swim_table_find(&t, &id), v);
    }
    struct ppdb_node_id id7 = mkid(7);
    CHECK_EQ(ppdb_swim_table_find(&t, &id7), 7);
    CHECK_EQ(t.count[PPDB_MEMBER_ALIVE], 5000);
    /* address change: updated in place, never duplicated */
    ppdb_addr_ipv4(&PPDB_SWIM_M(&t, 7).addr, 10, 9, 9, 9, 1);
    CHECK_EQ(ppdb_swim_table_find(&t, &id7), 7);
    CHECK_EQ(t.len, 5000);
    /* meta update and arena garbage */
    CHECK_OK(ppdb_swim_table_set_meta(&t, 7, (const uint8_t *)"xyz", 3));
    CHECK_MEMEQ(ppdb_swim_table_meta(&t, 7), "xyz", 3);
    /* state counts */
    ppdb_swim_table_set_state(&t, 7, PPDB_MEMBER_DEAD);
    CHECK_EQ(t.count[PPDB_MEMBER_DEAD], 1);
    /* remove every third member; the rest stay findable (no tombstones) */
    for (uint32_t v = 0; v < 5000; v += 3) {
        struct ppdb_node_id id = mkid(v);
        uint32_t i = ppdb_swim_table_find(&t, &id);
        CHECK(i != UINT32_MAX);
        ppdb_swim_table_remove(&t, i);
        CHECK_EQ(ppdb_swim_table_find(&t, &id), UINT32_MAX);
    }
    for (uint32_t v = 0; v < 5000; v++) {
        struct ppdb_node_id id = mkid(v);
        uint32_t i = ppdb_swim_table_find(&t, &id);
        if (v % 3 == 0) {
            CHECK_EQ(i, UINT32_MAX);
        } else {
            CHECK(i != UINT32_MAX);
            CHECK(ppdb_node_id_equal(&PPDB_SWIM_M(&t, i).id, &id));
            CHECK_EQ(PPDB_SWIM_M(&t, i).incarnation, v);
        }
    }
    /* swaps keep the index consistent */
    for (uint32_t k = 0; k + 1 < t.len; k += 2)
        ppdb_swim_table_swap(&t, k, k + 1);
    for (uint32_t i = 0; i < t.len; i++)
        CHECK_EQ(ppdb_swim_table_find(&t, &PPDB_SWIM_M(&t, i).id), i);
    size_t per = ppdb_swim_table_memory(&t) / t.len;
    fprintf(stderr, "member entry %zu bytes, table memory per member %zu bytes\n",
            sizeof(struct ppdb_swim_member), per);
    CHECK_LE(sizeof(struct ppdb_swim_member), 72);
    ppdb_swim_table_deinit(&t);
}

static void test_rules(void)
{
    enum {
        A = PPDB_MEMBER_ALIVE,
        S = PPDB_MEMBER_SUSPECT,
        D = PPDB_MEMBER_DEAD,
        L = PPDB_MEMBER_LEFT
    };
    /* suspect -> alive only with a higher incarnation */
    CHECK_EQ(ppdb_swim_judge(S, 5, A, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(S, 5, A, 6), PPDB_SWIM_ACCEPT);
    CHECK_EQ(ppdb_swim_judge(A, 5, A, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(A, 5, A, 4), PPDB_SWIM_IGNORE);
    /* suspect beats alive at the same incarnation; again = confirmation */
    CHECK_EQ(ppdb_swim_judge(A, 5, S, 5), PPDB_SWIM_ACCEPT);
    CHECK_EQ(ppdb_swim_judge(S, 5, S, 5), PPDB_SWIM_CONFIRM);
    CHECK_EQ(ppdb_swim_judge(S, 5, S, 6), PPDB_SWIM_ACCEPT);
    CHECK_EQ(ppdb_swim_judge(A, 5, S, 4), PPDB_SWIM_IGNORE);
    /* dead overrides alive and suspect; nothing but newer news beats dead */
    CHECK_EQ(ppdb_swim_judge(A, 5, D, 5), PPDB_SWIM_ACCEPT);
    CHECK_EQ(ppdb_swim_judge(S, 5, D, 5), PPDB_SWIM_ACCEPT);
    CHECK_EQ(ppdb_swim_judge(D, 5, A, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(D, 5, S, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(D, 5, A, 6), PPDB_SWIM_ACCEPT); /* restarted */
    /* left is final for its incarnation */
    CHECK_EQ(ppdb_swim_judge(L, 5, A, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(L, 5, S, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(L, 5, D, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(L, 5, L, 5), PPDB_SWIM_IGNORE);
    CHECK_EQ(ppdb_swim_judge(D, 5, L, 5), PPDB_SWIM_ACCEPT);
    CHECK_EQ(ppdb_swim_judge(A, 5, L, 5), PPDB_SWIM_ACCEPT);
    CHECK_EQ(ppdb_swim_judge(L, 5, A, 6), PPDB_SWIM_ACCEPT); /* rejoined */
    /* refutation of news about ourselves */
    CHECK(ppdb_swim_must_refute(5, false, S, 5));
    CHECK(ppdb_swim_must_refute(5, false, D, 7));
    CHECK(!ppdb_swim_must_refute(5, false, S, 4));
    CHECK(ppdb_swim_must_refute(5, false, L, 5));
    CHECK(!ppdb_swim_must_refute(5, true, L, 5));
    CHECK(ppdb_swim_must_refute(5, false, A, 6)); /* an old run of ours */
    CHECK(!ppdb_swim_must_refute(5, false, A, 5));
}

static void test_records(void)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    struct ppdb_swim_rec r = {.state = PPDB_MEMBER_ALIVE,
                              .full = true,
                              .id = mkid(1),
                              .incarnation = 1700000000,
                              .version = 1,
                              .meta_len = 4,
                              .meta = (const uint8_t *)"meta"};
    ppdb_addr_ipv4(&r.addr, 192, 168, 1, 2, 7946);
    struct ppdb_swim_rec s2 = {.state = PPDB_MEMBER_SUSPECT,
                               .has_from = true,
                               .id = mkid(2),
                               .from = mkid(3),
                               .incarnation = 9};
    CHECK_OK(ppdb_swim_rec_encode(&b, &r));
    CHECK_EQ(b.len, ppdb_swim_rec_size(&r));
    CHECK_OK(ppdb_swim_rec_encode(&b, &s2));
    struct ppdb_rd rd;
    ppdb_rd_init(&rd, b.data, b.len);
    struct ppdb_swim_rec o;
    CHECK_OK(ppdb_swim_rec_decode(&rd, &o));
    CHECK(o.full && !o.has_from && o.state == PPDB_MEMBER_ALIVE);
    CHECK(ppdb_node_id_equal(&o.id, &r.id) && ppdb_addr_equal(&o.addr, &r.addr));
    CHECK_EQ(o.incarnation, 1700000000);
    CHECK_EQ(o.meta_len, 4);
    CHECK_MEMEQ(o.meta, "meta", 4);
    CHECK_OK(ppdb_swim_rec_decode(&rd, &o));
    CHECK(o.has_from && !o.full && ppdb_node_id_equal(&o.from, &s2.from));
    CHECK_EQ(ppdb_rd_left(&rd), 0);
    /* every truncation is refused */
    for (size_t n = 0; n < ppdb_swim_rec_size(&r); n++) {
        ppdb_rd_init(&rd, b.data, n);
        CHECK(ppdb_swim_rec_decode(&rd, &o) != 0);
    }
    b.data[0] |= 0x80; /* unknown flag */
    ppdb_rd_init(&rd, b.data, b.len);
    CHECK_ERR(ppdb_swim_rec_decode(&rd, &o), PPDB_ECORRUPT);
    ppdb_buf_deinit(&b);
    /* meta: client addresses and tags */
    struct ppdb_addr cl[2];
    ppdb_addr_ipv4(&cl[0], 10, 0, 0, 1, 6379);
    ppdb_addr_ipv4(&cl[1], 10, 0, 0, 1, 11211);
    char tags[2][PPDB_NODE_TAG_LEN] = {"rack=a1", "zone=west"};
    uint8_t meta[PPDB_MEMBER_META_MAX];
    uint32_t mlen;
    CHECK_OK(ppdb_swim_meta_encode(cl, 2, (const char(*)[PPDB_NODE_TAG_LEN])tags, 2, meta, &mlen));
    struct ppdb_member_info info;
    ppdb_swim_meta_decode(meta, mlen, &info);
    CHECK_EQ(info.nclients, 2);
    CHECK(ppdb_addr_equal(&info.clients[1], &cl[1]));
    CHECK_EQ(info.ntags, 2);
    CHECK_STREQ(info.tags[1], "zone=west");
}

static uint32_t queue_count(const struct ppdb_swim_queue *q)
{
    uint32_t n = 0;
    for (uint32_t i = ppdb_swim_queue_first(q); i != PPDB_SWIM_NIL; i = ppdb_swim_queue_next(q, i))
        n++;
    return n;
}

static void test_queue(void)
{
    struct ppdb_swim_queue q;
    CHECK_OK(ppdb_swim_queue_init(&q, 8));
    struct ppdb_node_id a = mkid(1), b = mkid(2), c = mkid(3);
    ppdb_swim_queue_push(&q, &a, PPDB_MEMBER_ALIVE, 1, NULL);
    ppdb_swim_queue_push(&q, &a, PPDB_MEMBER_SUSPECT, 1, &b);
    CHECK_EQ(q.len, 1); /* supersedes the alive */
    ppdb_swim_queue_push(&q, &a, PPDB_MEMBER_SUSPECT, 1, &c);
    CHECK_EQ(q.len, 2); /* a confirmation by another accuser is kept too */
    ppdb_swim_queue_push(&q, &a, PPDB_MEMBER_SUSPECT, 1, &c);
    CHECK_EQ(q.len, 2); /* the same accuser again replaces */
    ppdb_swim_queue_push(&q, &a, PPDB_MEMBER_ALIVE, 2, NULL);
    CHECK_EQ(q.len, 1); /* a refutation supersedes every suspicion */
    /* newest first among equal transmits */
    ppdb_swim_queue_push(&q, &b, PPDB_MEMBER_ALIVE, 1, NULL);
    uint32_t first = ppdb_swim_queue_first(&q);
    CHECK(ppdb_node_id_equal(&q.q[first].subject, &b));
    /* sent entries move behind unsent ones; removed at the limit */
    ppdb_swim_queue_sent(&q, first, 3);
    first = ppdb_swim_queue_first(&q);
    CHECK(ppdb_node_id_equal(&q.q[first].subject, &a));
    for (int k = 0; k < 5; k++) /* 1 + 5 sends: 3 each */
        ppdb_swim_queue_sent(&q, ppdb_swim_queue_first(&q), 3);
    CHECK_EQ(q.len, 0); /* both reached 3 transmits */
    CHECK_EQ(queue_count(&q), 0);
    /* bound: the oldest most-sent entry is evicted and counted */
    for (uint32_t v = 0; v < 8; v++) {
        struct ppdb_node_id id = mkid(100 + v);
        ppdb_swim_queue_push(&q, &id, PPDB_MEMBER_ALIVE, 1, NULL);
    }
    CHECK_EQ(q.len, 8);
    ppdb_swim_queue_sent(&q, ppdb_swim_queue_first(&q), 10); /* mkid(107) sent once */
    ppdb_swim_queue_push(&q, &c, PPDB_MEMBER_DEAD, 4, &a);
    CHECK_EQ(q.len, 8);
    CHECK_EQ(q.dropped, 1);
    CHECK_EQ(queue_count(&q), 8);
    struct ppdb_node_id gone = mkid(107);
    for (uint32_t i = ppdb_swim_queue_first(&q); i != PPDB_SWIM_NIL;
         i = ppdb_swim_queue_next(&q, i))
        CHECK(!ppdb_node_id_equal(&q.q[i].subject, &gone));
    ppdb_swim_queue_deinit(&q);
}

static void test_timing(void)
{
    struct ppdb_swim_params p;
    CHECK_OK(ppdb_swim_profile("lan-default", &p));
    CHECK_ERR(ppdb_swim_profile("nope", &p), PPDB_ENOTFOUND);
    /* starts at max, reaches min after k confirmations, monotone between */
    CHECK_EQ(ppdb_swim_suspicion_timeout_ms(2000, 12000, 3, 0), 12000);
    CHECK_EQ(ppdb_swim_suspicion_timeout_ms(2000, 12000, 3, 1), 7000); /* log2/log4 = 1/2 */
    CHECK_EQ(ppdb_swim_suspicion_timeout_ms(2000, 12000, 3, 3), 2000);
    CHECK_EQ(ppdb_swim_suspicion_timeout_ms(2000, 12000, 3, 9), 2000);
    uint64_t prev = 1000000;
    for (uint32_t c = 0; c <= 3; c++) {
        uint64_t t = ppdb_swim_suspicion_timeout_ms(2000, 12000, 3, c);
        CHECK_LT(t, prev);
        prev = t;
    }
    CHECK_EQ(ppdb_swim_suspicion_timeout_ms(2000, 12000, 0, 0), 2000);
    /* scaling with N */
    CHECK_EQ(ppdb_swim_suspicion_min_ms(&p, 1000), 2100);
    CHECK_EQ(ppdb_swim_suspicion_min_ms(&p, 10000), 2800);
    CHECK_EQ(ppdb_swim_retransmit_limit(&p, 1000), 16);
    CHECK_EQ(ppdb_swim_retransmit_limit(&p, 10), 8);
    CHECK_EQ(ppdb_swim_push_pull_ms(&p, 10), 30000);
    CHECK_EQ(ppdb_swim_push_pull_ms(&p, 1000), 150000);
    /* local health stretches the probe period */
    CHECK_EQ(ppdb_swim_scaled_ms(p.probe_interval_ms, 0), 1000);
    CHECK_EQ(ppdb_swim_scaled_ms(p.probe_interval_ms, 8), 9000);
    CHECK_LT(PPDB_SWIM_BODY_MAX + PPDB_SWIM_ENVELOPE_MAX, PPDB_DGRAM_MAX_PLAIN + 1);
}

int main(void)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_table();
    test_rules();
    test_records();
    test_queue();
    test_timing();
    check_no_leaks(&base);
    fprintf(stderr, "test_swim_members: ok\n");
    return 0;
}
