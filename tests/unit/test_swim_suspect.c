/*
 * test_swim_suspect.c - the suspicion checks of peer/swim.c on two
 * hand-driven SWIM instances (test_swim_hand.h): a node still suspecting
 * at 1/2 and 3/4 of the timeout tells the suspect again; the suspect
 * answers any doubt (a suspicion it refuted before, or one it refutes
 * now) with its alive record straight to the sender, which then clears
 * the suspicion. A suspect that never answers is declared dead at the
 * full timeout, as before.
 */
#include "test_swim_hand.h"

static uint32_t index_of(struct peer *p, const struct peer *of)
{
    uint32_t i = ppdb_swim_table_find(&p->swim.tab, &of->id);
    CHECK(i != UINT32_MAX);
    return i;
}

static const struct ppdb_swim_member *member(struct peer *p, const struct peer *of)
{
    return &PPDB_SWIM_M(&p->swim.tab, index_of(p, of));
}

/* p learns `of` alive at its own incarnation, as from a join. */
static void introduce(struct peer *p, const struct peer *of)
{
    struct ppdb_swim_rec r;
    memset(&r, 0, sizeof(r));
    r.state = PPDB_MEMBER_ALIVE;
    r.full = true;
    r.id = of->id;
    r.incarnation = PPDB_SWIM_M(&of->swim.tab, 0).incarnation;
    r.addr = of->addr;
    r.version = PPDB_SWIM_VERSION;
    ppdb_swim_apply(&p->swim, &r);
    CHECK_EQ(member(p, of)->state, PPDB_MEMBER_ALIVE);
}

/* p hears "subject is suspect at inc", accused by a node neither knows. */
static void hear_suspect(struct peer *p, const struct peer *subject, uint64_t inc)
{
    struct ppdb_swim_rec r;
    memset(&r, 0, sizeof(r));
    r.state = PPDB_MEMBER_SUSPECT;
    r.id = subject->id;
    r.incarnation = inc;
    r.has_from = true;
    memset(r.from.b, 0xee, sizeof(r.from.b));
    ppdb_swim_apply(&p->swim, &r);
}

static struct ppdb_swim_susp *susp(struct peer *p, const struct peer *of)
{
    uint16_t k = member(p, of)->susp;
    CHECK_GT(k, 0);
    return &p->swim.susps[k - 1];
}

/* Delivers the last datagram `from` sent (it must be to `to`). */
static void deliver_last(struct peer *from, struct peer *to, uint32_t type)
{
    CHECK_GT(from->nsent, 0);
    const struct dgram *d = &from->out[(from->nsent - 1) % HAND_OUTBOX];
    CHECK(ppdb_addr_equal(&d->to, &to->addr));
    CHECK_EQ(d->type, type);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK_EQ(msgpack_unpack_next(&u, (const char *)d->body, d->len, NULL), MSGPACK_UNPACK_SUCCESS);
    struct ppdb_envelope env;
    memset(&env, 0, sizeof(env));
    env.hdr.version = PPDB_WIRE_VERSION;
    env.hdr.type = d->type;
    env.hdr.sender = from->id;
    env.hdr.request_id = d->rid;
    env.body = &u.data;
    ppdb_swim_on_message(&to->swim, &from->addr, &env);
    msgpack_unpacked_destroy(&u);
}

static void pair(struct peer *a, struct peer *b, uint64_t seed)
{
    peer_init(a, 1, seed);
    peer_init(b, 2, seed + 1);
    introduce(a, b);
    introduce(b, a);
}

/* b refuted a suspicion a hears only afterwards: a's check at half the
 * timeout reaches b, b's alive record comes back, the suspicion ends. */
static void test_check_after_refutation(uint64_t seed)
{
    struct peer a, b;
    pair(&a, &b, seed);
    hear_suspect(&b, &b, 1); /* b refutes: incarnation 2 */
    CHECK_EQ_U64(b.swim.stats.refutes, 1);
    CHECK_EQ_U64(member(&b, &b)->incarnation, 2);

    hear_suspect(&a, &b, 1); /* late: the refutation's gossip never came */
    struct ppdb_swim_susp *x = susp(&a, &b);
    uint64_t t = ppdb_swim_suspicion_timeout_ms(x->min_ms, x->max_ms, a.swim.p.suspicion_k, 0);
    CHECK_GT(t, 4);
    CHECK_EQ_U64(x->timer.due_ms, x->start_ms + t - t / 2);

    uint64_t sent = a.nsent;
    fire(&a, &x->timer);
    CHECK_EQ_U64(a.swim.stats.susp_checks, 1);
    CHECK_EQ_U64(a.nsent, sent + 1);
    CHECK_EQ(member(&a, &b)->state, PPDB_MEMBER_SUSPECT);
    CHECK_EQ_U64(x->timer.due_ms, x->start_ms + t - t / 4); /* the second check */

    deliver_last(&a, &b, PPDB_MSG_SWIM_GOSSIP);
    CHECK_EQ_U64(b.swim.stats.refutes, 1);      /* stale: no second refutation ... */
    CHECK_EQ_U64(b.swim.stats.self_replies, 1); /* ... but an answer */
    deliver_last(&b, &a, PPDB_MSG_SWIM_GOSSIP);
    CHECK_EQ(member(&a, &b)->state, PPDB_MEMBER_ALIVE);
    CHECK_EQ_U64(member(&a, &b)->incarnation, 2);
    CHECK_EQ(member(&a, &b)->susp, 0);
    CHECK(!ppdb_timer_armed(&x->timer));
    CHECK_EQ_U64(a.swim.stats.deaths_declared, 0);

    /* an alive record is no doubt: b does not answer it */
    uint64_t replies = b.swim.stats.self_replies;
    introduce(&b, &a);
    CHECK_EQ_U64(b.swim.stats.self_replies, replies);
    peer_deinit(&a);
    peer_deinit(&b);
}

/* b never heard it was suspected: the check makes it refute, and its
 * answer carries the new incarnation back at once. */
static void test_check_refutes_now(uint64_t seed)
{
    struct peer a, b;
    pair(&a, &b, seed);
    hear_suspect(&a, &b, 1);
    struct ppdb_swim_susp *x = susp(&a, &b);
    fire(&a, &x->timer);
    deliver_last(&a, &b, PPDB_MSG_SWIM_GOSSIP);
    CHECK_EQ_U64(b.swim.stats.refutes, 1);
    CHECK_EQ_U64(b.swim.stats.self_replies, 1);
    deliver_last(&b, &a, PPDB_MSG_SWIM_GOSSIP);
    CHECK_EQ(member(&a, &b)->state, PPDB_MEMBER_ALIVE);
    CHECK_EQ_U64(member(&a, &b)->incarnation, 2);
    peer_deinit(&a);
    peer_deinit(&b);
}

/* b is gone: two checks go unanswered, then b is dead at the full
 * timeout, not earlier. */
static void test_check_unanswered(uint64_t seed)
{
    struct peer a, b;
    pair(&a, &b, seed);
    hear_suspect(&a, &b, 1);
    struct ppdb_swim_susp *x = susp(&a, &b);
    uint64_t start = x->start_ms;
    uint64_t t = ppdb_swim_suspicion_timeout_ms(x->min_ms, x->max_ms, a.swim.p.suspicion_k, 0);
    for (uint32_t k = 0; k < PPDB_SWIM_SUSP_CHECKS; k++) {
        uint64_t sent = a.nsent;
        fire(&a, &x->timer);
        CHECK_EQ_U64(a.nsent, sent + 1);
        const struct dgram *d = &a.out[(a.nsent - 1) % HAND_OUTBOX];
        CHECK(ppdb_addr_equal(&d->to, &b.addr));
        CHECK_EQ(member(&a, &b)->state, PPDB_MEMBER_SUSPECT);
        CHECK_LT(a.env.now_ms, start + t);
    }
    CHECK_EQ_U64(a.swim.stats.susp_checks, PPDB_SWIM_SUSP_CHECKS);
    CHECK_EQ_U64(x->timer.due_ms, start + t);
    fire(&a, &x->timer);
    CHECK_EQ(member(&a, &b)->state, PPDB_MEMBER_DEAD);
    CHECK_EQ_U64(a.swim.stats.deaths_declared, 1);
    CHECK(!x->used);
    peer_deinit(&a);
    peer_deinit(&b);
}

/* A leaving node does not argue: a "left" or "suspect" about it gets no
 * answer. */
static void test_leaving_no_answer(uint64_t seed)
{
    struct peer a, b;
    pair(&a, &b, seed);
    b.swim.leaving = true;
    hear_suspect(&a, &b, 1);
    fire(&a, &susp(&a, &b)->timer);
    deliver_last(&a, &b, PPDB_MSG_SWIM_GOSSIP);
    CHECK_EQ_U64(b.swim.stats.self_replies, 0);
    b.swim.leaving = false;
    peer_deinit(&a);
    peer_deinit(&b);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x5c4ec);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_check_after_refutation(seed);
    test_check_refutes_now(seed);
    test_check_unanswered(seed);
    test_leaving_no_answer(seed);
    check_no_leaks(&base);
    return 0;
}
