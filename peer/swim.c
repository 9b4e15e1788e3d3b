/*
 * swim.c - the SWIM protocol with Lifeguard (see swim.h and
 * docs/protocols/membership.md): probing, indirect probes and nacks,
 * suspicion with confirmations, refutation, gossip dissemination, full-state
 * push/pull, graceful leave, reaping and local health.
 *
 * Built as an I/O-free state machine: entry points are the env timers it
 * arms and the messages the host feeds it; it sends through the host's
 * struct ppdb_swim_io and reads time and randomness only through the env.
 *
 * Invariants: the probe in progress (at most one) ends at the next tick;
 * a member has a suspicion slot iff it is suspect and a slot was free;
 * every state change goes through set_state() (counts, slot, lseq,
 * callback); every update this node accepts about a member it already
 * knew is queued for retransmission. A member new to us is not (beyond a
 * small budget): joins travel by delta sync (each node exchanges the
 * changes since the last exchange with a sticky partner),
 * so each (node, member) pair costs about one record instead of the
 * retransmit limit times the fan-out of epidemic gossip; the joiner still
 * gossips its own alive record, and everything about known members
 * (suspect, dead, left, refutations, moves) gossips as before.
 */
#include "swim.h"

static const struct ppdb_wire_field f_ping[] = {
    {.key = PPDB_SWIM_K_TARGET,
     .kind = PPDB_WK_BIN,
     .required = true,
     .min_len = 20,
     .max_len = 20},
    {.key = PPDB_SWIM_K_UPDATES, .kind = PPDB_WK_BIN, .max_len = PPDB_DGRAM_MAX},
};
static const struct ppdb_wire_field f_ping_req[] = {
    {.key = PPDB_SWIM_K_TARGET,
     .kind = PPDB_WK_BIN,
     .required = true,
     .min_len = 20,
     .max_len = 20},
    {.key = PPDB_SWIM_K_ADDR, .kind = PPDB_WK_BIN, .required = true, .min_len = 7, .max_len = 19},
    {.key = PPDB_SWIM_K_UPDATES, .kind = PPDB_WK_BIN, .max_len = PPDB_DGRAM_MAX},
};
static const struct ppdb_wire_field f_updates[] = {
    {.key = PPDB_SWIM_K_UPDATES, .kind = PPDB_WK_BIN, .max_len = PPDB_DGRAM_MAX},
};
static const struct ppdb_wire_field f_news[] = {
    {.key = PPDB_SWIM_K_NEWS_EPOCH, .kind = PPDB_WK_UINT, .required = true},
    {.key = PPDB_SWIM_K_NEWS_LSEQ, .kind = PPDB_WK_UINT, .required = true},
};
static const struct ppdb_wire_field f_sync[] = {
    {.key = PPDB_SWIM_K_JOIN, .kind = PPDB_WK_BOOL, .required = true},
    {.key = PPDB_SWIM_K_COUNT, .kind = PPDB_WK_UINT, .required = true},
    {.key = PPDB_SWIM_K_MEMBERS, .kind = PPDB_WK_BIN, .required = true},
    {.key = PPDB_SWIM_K_EPOCH, .kind = PPDB_WK_UINT},
    {.key = PPDB_SWIM_K_WATERMARK, .kind = PPDB_WK_UINT},
    {.key = PPDB_SWIM_K_SINCE, .kind = PPDB_WK_UINT},
    {.key = PPDB_SWIM_K_SINCE_EPOCH, .kind = PPDB_WK_UINT},
    {.key = PPDB_SWIM_K_MORE, .kind = PPDB_WK_BOOL},
    {.key = PPDB_SWIM_K_DELTA, .kind = PPDB_WK_BOOL},
    {.key = PPDB_SWIM_K_SAMPLE, .kind = PPDB_WK_UINT},
    {.key = PPDB_SWIM_K_DIGEST, .kind = PPDB_WK_UINT},
};

const struct ppdb_wire_schema ppdb_swim_dgram_schemas[] = {
    {PPDB_MSG_SWIM_PING, "swim.ping", f_ping, PPDB_ARRAY_LEN(f_ping)},
    {PPDB_MSG_SWIM_ACK, "swim.ack", f_updates, PPDB_ARRAY_LEN(f_updates)},
    {PPDB_MSG_SWIM_PING_REQ, "swim.ping_req", f_ping_req, PPDB_ARRAY_LEN(f_ping_req)},
    {PPDB_MSG_SWIM_NACK, "swim.nack", f_updates, PPDB_ARRAY_LEN(f_updates)},
    {PPDB_MSG_SWIM_GOSSIP, "swim.gossip", f_updates, PPDB_ARRAY_LEN(f_updates)},
    {PPDB_MSG_SWIM_NEWS, "swim.news", f_news, PPDB_ARRAY_LEN(f_news)},
};
const uint32_t ppdb_swim_dgram_nschemas = PPDB_ARRAY_LEN(ppdb_swim_dgram_schemas);
const struct ppdb_wire_schema ppdb_swim_stream_schemas[] = {
    {PPDB_MSG_SWIM_SYNC, "swim.sync", f_sync, PPDB_ARRAY_LEN(f_sync)},
    {PPDB_MSG_SWIM_SYNC_REPLY, "swim.sync_reply", f_sync, PPDB_ARRAY_LEN(f_sync)},
};
const uint32_t ppdb_swim_stream_nschemas = PPDB_ARRAY_LEN(ppdb_swim_stream_schemas);

#define MAX_PICK 64 /* queue entries handled per message */

static void tick_cb(struct ppdb_timer *t);
static void probe_timeout_cb(struct ppdb_timer *t);
static void gossip_cb(struct ppdb_timer *t);
static void sync_tick_cb(struct ppdb_timer *t);
static void delta_tick_cb(struct ppdb_timer *t);
static void on_news(struct ppdb_swim *s, const struct ppdb_addr *from, const msgpack_object *body);
static void try_seed(struct ppdb_swim *s, uint32_t k, bool join);
static int sync_push(struct ppdb_swim *s, const struct ppdb_addr *to, const msgpack_object *reply);
static void reap_cb(struct ppdb_timer *t);
static void leave_done_cb(struct ppdb_timer *t);
static void susp_fire_cb(struct ppdb_timer *t);
static void relay_cb(struct ppdb_timer *t);
static void member_rec(const struct ppdb_swim *s, uint32_t i, struct ppdb_swim_rec *r);

static uint64_t now_ms(struct ppdb_swim *s)
{
    return ppdb_env_mono_ms(s->env);
}

static void arm(struct ppdb_swim *s, struct ppdb_timer *t, uint64_t delay_ms)
{
    int rc = ppdb_env_timer_arm(s->env, t, delay_ms);
    PPDB_ASSERT(rc == 0 || rc == PPDB_ECLOSED); /* the env's timer bound covers our few */
}

static bool is_self(const struct ppdb_swim *s, uint32_t i)
{
    return ppdb_node_id_equal(&PPDB_SWIM_M(&s->tab, i).id, &s->self_id);
}

static uint32_t self_index(const struct ppdb_swim *s)
{
    uint32_t i = ppdb_swim_table_find(&s->tab, &s->self_id);
    PPDB_ASSERT(i != UINT32_MAX);
    return i;
}

static bool probeable(const struct ppdb_swim_member *m)
{
    return m->state == PPDB_MEMBER_ALIVE || m->state == PPDB_MEMBER_SUSPECT;
}

/* ------------------------------------------------------------ gossip out */

static void gossip_arm(struct ppdb_swim *s)
{
    if (s->started && !s->left && !ppdb_timer_armed(&s->gossip_timer))
        arm(s, &s->gossip_timer, s->p.gossip_interval_ms);
}

/* Queues member i's update (state at inc, accused by `from` for suspect
 * and dead) with its record encoded now: alive records carry the address
 * and meta the table holds for i at this moment. */
static void enqueue(struct ppdb_swim *s, uint32_t i, uint8_t state, uint64_t inc,
                    const struct ppdb_node_id *from)
{
    const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    if (m->state != state || m->incarnation != inc)
        return; /* e.g. a refutation while leaving: the member is not in that state */
    struct ppdb_swim_rec r;
    memset(&r, 0, sizeof(r));
    r.state = state;
    r.id = m->id;
    r.incarnation = inc;
    r.has_from = state == PPDB_MEMBER_SUSPECT || state == PPDB_MEMBER_DEAD;
    if (r.has_from && from)
        r.from = *from;
    if (state == PPDB_MEMBER_ALIVE) {
        r.full = true;
        r.addr = m->addr;
        r.version = m->version;
        r.meta_len = m->meta_len;
        r.meta = ppdb_swim_table_meta(&s->tab, i);
    }
    uint8_t bytes[PPDB_REC_MAX];
    size_t len = ppdb_swim_rec_put(bytes, &r);
    uint64_t dropped = s->queue.dropped, nomem = s->queue.nomem;
    ppdb_swim_queue_push_rec(&s->queue, &r.id, state, inc, from, bytes, len);
    s->stats.queue_dropped += (s->queue.dropped - dropped) + (s->queue.nomem - nomem);
    gossip_arm(s);
}

/* Writes as many queued updates as fit in budget bytes into out, fewest
 * transmissions first; returns the bytes written. Reads only the queue
 * (cached record bytes). Stops after MAX_MISFITS records in a row that do
 * not fit the room left: the rest of a long queue is not worth scanning
 * for a rare smaller record. */
#define MAX_MISFITS 16
static size_t fill_updates(struct ppdb_swim *s, uint8_t *out, size_t budget)
{
    uint32_t picked[MAX_PICK], npicked = 0, misfits = 0;
    size_t len = 0;
    uint32_t i = ppdb_swim_queue_first(&s->queue);
    for (uint32_t seen = 0; i != PPDB_SWIM_NIL && npicked < MAX_PICK && seen < 4 * MAX_PICK;
         i = ppdb_swim_queue_next(&s->queue, i), seen++) {
        const struct ppdb_swim_bcast *b = &s->queue.q[i];
        size_t sz = b->rec_len;
        PPDB_ASSERT(sz > 0);
        if (len + sz > budget) {
            if (budget - len < 30 || ++misfits >= MAX_MISFITS)
                break; /* nothing useful fits any more */
            continue;
        }
        memcpy(out + len, ppdb_swim_bcast_bytes(b), sz);
        len += sz;
        misfits = 0;
        picked[npicked++] = i;
    }
    if (npicked == 0)
        return 0;
    s->stats.updates_sent += npicked;
    uint32_t limit = ppdb_swim_retransmit_limit(&s->p, ppdb_swim_n(s));
    /* in reverse, so the moved entries keep their relative order */
    for (uint32_t k = npicked; k-- > 0;)
        ppdb_swim_queue_sent(&s->queue, picked[k], limit);
    return len;
}

/* msgpack, written by hand on this hot path (the same bytes the generic
 * writer produces): a positive fixint key, then a bin of n bytes. */
static size_t put_bin_head(uint8_t *p, uint8_t key, size_t n)
{
    PPDB_ASSERT(key < 0x80 && n <= UINT16_MAX);
    p[0] = key;
    if (n <= UINT8_MAX) {
        p[1] = 0xc4;
        p[2] = (uint8_t)n;
        return 3;
    }
    p[1] = 0xc5;
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    return 4;
}

static size_t put_addr_bin(uint8_t *p, uint8_t key, const struct ppdb_addr *a)
{
    size_t iplen = a->family == 6 ? 16 : 4;
    size_t n = put_bin_head(p, key, 1 + iplen + 2);
    p[n++] = a->family == 6 ? 6 : 4;
    memcpy(p + n, a->ip, iplen);
    n += iplen;
    p[n++] = (uint8_t)(a->port >> 8);
    p[n++] = (uint8_t)a->port;
    return n;
}

/* Hands one encoded body to the transport, counted. */
static int send_body(struct ppdb_swim *s, const struct ppdb_addr *to, uint32_t type,
                     uint64_t req_id, const uint8_t *body, size_t n)
{
    int rc = s->io.send_msg(s->io.ctx, to, type, req_id, body, n);
    if (rc)
        s->stats.send_errors++;
    s->stats.msgs_out++;
    s->stats.bytes_out += n;
    return rc;
}

/* Builds and sends one message with piggybacked updates: a map of the
 * target (ping, ping-req), its address (ping-req) and the updates. */
static int send_msg(struct ppdb_swim *s, const struct ppdb_addr *to, uint32_t type, uint64_t req_id,
                    const struct ppdb_node_id *target, const struct ppdb_addr *target_addr)
{
    uint8_t body[PPDB_SWIM_BODY_MAX];
    size_t n = 1;
    if (target) {
        n += put_bin_head(body + n, PPDB_SWIM_K_TARGET, PPDB_NODE_ID_LEN);
        memcpy(body + n, target->b, PPDB_NODE_ID_LEN);
        n += PPDB_NODE_ID_LEN;
    }
    if (target_addr)
        n += put_addr_bin(body + n, PPDB_SWIM_K_ADDR, target_addr);
    /* updates go after a 4-byte head, moved down when a 3-byte one fits */
    size_t head = n;
    size_t ulen = fill_updates(s, body + head + 4, sizeof(body) - head - 4);
    if (ulen) {
        size_t hn = put_bin_head(body + head, PPDB_SWIM_K_UPDATES, ulen);
        if (hn < 4)
            memmove(body + head + hn, body + head + 4, ulen);
        n = head + hn + ulen;
    }
    body[0] = (uint8_t)(0x80 | ((target ? 1 : 0) + (target_addr ? 1 : 0) + (ulen ? 1 : 0)));
    PPDB_ASSERT(n <= PPDB_SWIM_BODY_MAX);
    return send_body(s, to, type, req_id, body, n);
}

/* Sends one gossip datagram whose only update is r (not queued). */
static int send_rec(struct ppdb_swim *s, const struct ppdb_addr *to, const struct ppdb_swim_rec *r)
{
    uint8_t body[1 + 4 + PPDB_REC_MAX], rec[PPDB_REC_MAX];
    size_t len = ppdb_swim_rec_put(rec, r);
    size_t n = 1 + put_bin_head(body + 1, PPDB_SWIM_K_UPDATES, len);
    memcpy(body + n, rec, len);
    body[0] = 0x81; /* a map of the updates alone */
    return send_body(s, to, PPDB_MSG_SWIM_GOSSIP, 0, body, n + len);
}

/* A node doubted us (a suspicion or death we refuted, now or before):
 * our alive record goes straight back to it. */
static void reply_self(struct ppdb_swim *s, const struct ppdb_addr *to)
{
    struct ppdb_swim_rec r;
    member_rec(s, self_index(s), &r);
    s->stats.self_replies++;
    (void)send_rec(s, to, &r);
}

/* ------------------------------------------------------------ suspicion */

static struct ppdb_swim_susp *susp_of(struct ppdb_swim *s, uint32_t i)
{
    uint32_t k = PPDB_SWIM_M(&s->tab, i).susp;
    return k ? &s->susps[k - 1] : NULL;
}

static void susp_clear(struct ppdb_swim *s, uint32_t i)
{
    struct ppdb_swim_susp *x = susp_of(s, i);
    if (!x)
        return;
    ppdb_env_timer_cancel(s->env, &x->timer);
    x->used = false;
    PPDB_SWIM_M(&s->tab, i).susp = 0;
}

/* The timer fires at the next check (1/2, then 3/4 of the timeout) and
 * then at the timeout itself. */
static void susp_rearm(struct ppdb_swim *s, struct ppdb_swim_susp *x)
{
    uint64_t t =
        ppdb_swim_suspicion_timeout_ms(x->min_ms, x->max_ms, s->p.suspicion_k, x->nconfirm);
    if (x->checks < PPDB_SWIM_SUSP_CHECKS)
        t -= t >> (x->checks + 1);
    uint64_t elapsed = now_ms(s) - x->start_ms;
    arm(s, &x->timer, t > elapsed ? t - elapsed : 0);
}

static void susp_start(struct ppdb_swim *s, uint32_t i, const struct ppdb_node_id *accuser)
{
    PPDB_ASSERT(PPDB_SWIM_M(&s->tab, i).susp == 0);
    for (uint32_t k = 0; k < s->p.max_suspicions; k++) {
        struct ppdb_swim_susp *x = &s->susps[k];
        if (x->used)
            continue;
        if (!x->timer.cb) { /* first use of this slot */
            x->swim = s;
            ppdb_timer_init(&x->timer, susp_fire_cb, x);
        }
        x->used = true;
        x->subject = PPDB_SWIM_M(&s->tab, i).id;
        x->incarnation = PPDB_SWIM_M(&s->tab, i).incarnation;
        x->start_ms = now_ms(s);
        x->min_ms = ppdb_swim_suspicion_min_ms(&s->p, ppdb_swim_n(s));
        x->max_ms = x->min_ms * s->p.suspicion_max_mult;
        x->nconfirm = 0;
        x->checks = 0;
        x->accusers[0] = *accuser;
        x->naccusers = 1;
        PPDB_SWIM_M(&s->tab, i).susp = (uint16_t)(k + 1);
        s->stats.suspicions_started++;
        susp_rearm(s, x);
        return;
    }
    s->stats.suspicions_full++;
}

/* True when accuser is a new, independent confirmation. */
static bool susp_confirm(struct ppdb_swim *s, uint32_t i, const struct ppdb_node_id *accuser)
{
    struct ppdb_swim_susp *x = susp_of(s, i);
    if (!x)
        return false;
    for (uint32_t k = 0; k < x->naccusers; k++)
        if (ppdb_node_id_equal(&x->accusers[k], accuser))
            return false;
    if (x->naccusers < PPDB_ARRAY_LEN(x->accusers))
        x->accusers[x->naccusers++] = *accuser;
    x->nconfirm++;
    s->stats.confirmations++;
    susp_rearm(s, x);
    return true;
}

/* ------------------------------------------------------------ state */

static void notify(struct ppdb_swim *s, uint32_t i, int old_state)
{
    if (s->io.changed)
        s->io.changed(s->io.ctx, i, &PPDB_SWIM_M(&s->tab, i), ppdb_swim_table_meta(&s->tab, i),
                      old_state);
}

/* A local change: a backed-off delta timer fires within the minimum
 * interval, so news go up the partner tree without waiting. */
static void delta_soon(struct ppdb_swim *s)
{
    struct ppdb_timer *t = &s->delta_timer;
    if (ppdb_timer_armed(t) && t->due_ms > now_ms(s) + PPDB_SWIM_DELTA_MIN_MS)
        arm(s, t, PPDB_SWIM_DELTA_MIN_MS);
}

/* Member i's share of the digest (0 unless live). */
static uint64_t live_share(const struct ppdb_swim *s, uint32_t i)
{
    const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    return probeable(m) ? ppdb_swim_live_hash(&m->id, m->incarnation) : 0;
}

static void set_state(struct ppdb_swim *s, uint32_t i, uint8_t state, uint64_t inc)
{
    struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    int old = m->state;
    s->digest ^= live_share(s, i);
    if (state != PPDB_MEMBER_SUSPECT || m->incarnation != inc)
        susp_clear(s, i);
    m->incarnation = inc;
    if (old != state) {
        ppdb_swim_table_set_state(&s->tab, i, state);
        m->state_ms = now_ms(s);
    }
    s->digest ^= live_share(s, i);
    ppdb_swim_table_touch(&s->tab, i);
    notify(s, i, old);
}

static void refute(struct ppdb_swim *s, uint64_t inc)
{
    uint32_t i = self_index(s);
    s->digest ^= live_share(s, i);
    PPDB_SWIM_M(&s->tab, i).incarnation = inc + 1;
    s->digest ^= live_share(s, i);
    ppdb_swim_table_touch(&s->tab, i);
    if (s->health < s->p.max_health)
        s->health++;
    s->stats.refutes++;
    enqueue(s, i, PPDB_MEMBER_ALIVE, inc + 1, NULL);
}

static void maybe_verify(struct ppdb_swim *s, const struct ppdb_node_id *id)
{
    if (s->nverify == PPDB_ARRAY_LEN(s->verify))
        return;
    if (ppdb_env_random_below(s->env, ppdb_swim_n(s)) < s->p.verify_fanout)
        s->verify[s->nverify++] = *id;
}

/* A few new members are still gossiped, so a lone join in a quiet mesh
 * spreads in seconds as before: a budget of PPDB_SWIM_JOIN_GOSSIP_BURST,
 * one more every PPDB_SWIM_JOIN_GOSSIP_MS (GCRA on a theoretical arrival
 * time). A mass join exhausts it at once and travels by delta sync. */
static bool join_gossip_allowed(struct ppdb_swim *s)
{
    uint64_t now = now_ms(s), span = PPDB_SWIM_JOIN_GOSSIP_MS * PPDB_SWIM_JOIN_GOSSIP_BURST;
    if (s->join_gossip_tat_ms > now + span - PPDB_SWIM_JOIN_GOSSIP_MS)
        return false;
    s->join_gossip_tat_ms = PPDB_MAX(s->join_gossip_tat_ms, now) + PPDB_SWIM_JOIN_GOSSIP_MS;
    return true;
}

static void add_member(struct ppdb_swim *s, const struct ppdb_swim_rec *r)
{
    struct ppdb_swim_member m;
    memset(&m, 0, sizeof(m));
    m.id = r->id;
    m.state = PPDB_MEMBER_ALIVE;
    m.version = r->version;
    m.addr = r->addr;
    m.incarnation = r->incarnation;
    m.state_ms = now_ms(s);
    uint32_t i;
    int rc = ppdb_swim_table_add(&s->tab, &m, r->meta, r->meta_len, &i);
    if (rc) {
        s->stats.table_full++;
        return;
    }
    /* appended: the probe round draws its next target among the entries
     * not probed yet (next_target), so a new member gets a random place in
     * the current round without being moved now */
    s->stats.members_added++;
    s->stats.updates_applied++;
    s->digest ^= live_share(s, i);
    delta_soon(s);
    if (join_gossip_allowed(s))
        enqueue(s, i, PPDB_MEMBER_ALIVE, r->incarnation, NULL);
    notify(s, i, -1);
}

static void accept_update(struct ppdb_swim *s, uint32_t i, const struct ppdb_swim_rec *r,
                          const struct ppdb_node_id *from)
{
    struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    s->stats.updates_applied++;
    if (r->state == PPDB_MEMBER_ALIVE && r->full) {
        m->addr = r->addr; /* a moved member is updated, never duplicated */
        m->version = r->version;
        if (ppdb_swim_table_set_meta(&s->tab, i, r->meta, r->meta_len) != 0)
            s->stats.table_full++;
    }
    bool was_suspect = m->state == PPDB_MEMBER_SUSPECT && m->incarnation == r->incarnation;
    set_state(s, i, r->state, r->incarnation);
    if (r->state == PPDB_MEMBER_SUSPECT && !was_suspect) {
        susp_start(s, i, from);
        if (!ppdb_node_id_equal(from, &s->self_id))
            maybe_verify(s, &r->id);
    }
    enqueue(s, i, r->state, r->incarnation, from);
}

void ppdb_swim_apply(struct ppdb_swim *s, const struct ppdb_swim_rec *r)
{
    const struct ppdb_node_id *from = &r->from;
    if (ppdb_node_id_equal(&r->id, &s->self_id)) {
        uint64_t inc = PPDB_SWIM_M(&s->tab, self_index(s)).incarnation;
        if (ppdb_swim_must_refute(inc, s->leaving, r->state, r->incarnation))
            refute(s, r->incarnation);
        if (r->state != PPDB_MEMBER_ALIVE && !s->leaving)
            s->doubted = true;
        return;
    }
    uint32_t i = ppdb_swim_table_find(&s->tab, &r->id);
    if (i == UINT32_MAX) {
        if (r->state == PPDB_MEMBER_ALIVE && r->full)
            add_member(s, r);
        else
            s->stats.updates_ignored++;
        return;
    }
    int v = ppdb_swim_judge(PPDB_SWIM_M(&s->tab, i).state, PPDB_SWIM_M(&s->tab, i).incarnation,
                            r->state, r->incarnation);
    if (v == PPDB_SWIM_ACCEPT) {
        accept_update(s, i, r, from);
    } else if (v == PPDB_SWIM_CONFIRM && susp_confirm(s, i, from)) {
        enqueue(s, i, PPDB_MEMBER_SUSPECT, r->incarnation, from);
    } else {
        s->stats.updates_ignored++;
    }
}

/* "member i is suspect at its incarnation", accused by `from`. */
static void suspect_rec(const struct ppdb_swim *s, uint32_t i, const struct ppdb_node_id *from,
                        struct ppdb_swim_rec *r)
{
    const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    memset(r, 0, sizeof(*r));
    r->state = PPDB_MEMBER_SUSPECT;
    r->id = m->id;
    r->incarnation = m->incarnation;
    r->has_from = true;
    r->from = *from;
}

/* This node accuses member i (a failed probe), or confirms a suspicion. */
static void accuse(struct ppdb_swim *s, uint32_t i)
{
    struct ppdb_swim_rec r;
    suspect_rec(s, i, &s->self_id, &r);
    struct ppdb_addr to = PPDB_SWIM_M(&s->tab, i).addr;
    ppdb_swim_apply(s, &r);
    /* tell the suspect itself, so it can refute at once */
    (void)send_msg(s, &to, PPDB_MSG_SWIM_GOSSIP, 0, NULL, NULL);
}

/* Tells member i (suspect) that it is suspected, with one record: it
 * refutes, or answers a stale suspicion with its alive record. */
static void susp_check(struct ppdb_swim *s, uint32_t i, const struct ppdb_swim_susp *x)
{
    struct ppdb_swim_rec r;
    suspect_rec(s, i, &x->accusers[0], &r);
    s->stats.susp_checks++;
    (void)send_rec(s, &PPDB_SWIM_M(&s->tab, i).addr, &r);
}

static void susp_fire_cb(struct ppdb_timer *t)
{
    struct ppdb_swim_susp *x = t->data;
    struct ppdb_swim *s = x->swim;
    uint32_t i = ppdb_swim_table_find(&s->tab, &x->subject);
    bool live = i != UINT32_MAX && PPDB_SWIM_M(&s->tab, i).state == PPDB_MEMBER_SUSPECT &&
                PPDB_SWIM_M(&s->tab, i).incarnation == x->incarnation;
    if (live && x->checks < PPDB_SWIM_SUSP_CHECKS) {
        x->checks++;
        susp_check(s, i, x);
        susp_rearm(s, x);
        return;
    }
    x->used = false;
    if (!live)
        return;
    PPDB_SWIM_M(&s->tab, i).susp = 0;
    s->stats.deaths_declared++;
    set_state(s, i, PPDB_MEMBER_DEAD, x->incarnation);
    enqueue(s, i, PPDB_MEMBER_DEAD, x->incarnation, &s->self_id);
}

/* ------------------------------------------------------------ probing */

static uint32_t next_target(struct ppdb_swim *s)
{
    while (s->nverify > 0) {
        struct ppdb_node_id id = s->verify[--s->nverify];
        uint32_t i = ppdb_swim_table_find(&s->tab, &id);
        if (i != UINT32_MAX && probeable(&PPDB_SWIM_M(&s->tab, i)))
            return i;
    }
    /* Randomized round robin without moving entries: a round visits the
     * indices [0, span) (span: the power of two at or above the table's
     * length when the round starts) in the order k -> (a * (k ^ c) + b) mod
     * span, a bijection for odd a, with a, b and c drawn per round; a
     * table that outgrows span starts a new round at once (else members
     * beyond it would wait a whole round, and a mass join would leave
     * half the table unprobed by many nodes). Every member is probed once
     * per round, in an order no other node shares, and
     * neither a probe nor a join moves an entry (a Fisher-Yates swap per
     * probe cost two slot updates, ~10% of a 10,000-node steady state). */
    for (uint32_t n = 0; n <= 2 * s->tab.len + 1; n++) {
        if (s->probe_k >= s->probe_span || s->tab.len > s->probe_span) {
            uint32_t span = 1;
            while (span < s->tab.len)
                span <<= 1;
            s->probe_span = span;
            s->probe_a = (uint32_t)ppdb_env_random_below(s->env, span) | 1;
            s->probe_b = (uint32_t)ppdb_env_random_below(s->env, span);
            s->probe_c = (uint32_t)ppdb_env_random_below(s->env, span);
            s->probe_k = 0;
        }
        uint32_t i = (s->probe_a * (s->probe_k++ ^ s->probe_c) + s->probe_b) & (s->probe_span - 1);
        if (i < s->tab.len && !is_self(s, i) && probeable(&PPDB_SWIM_M(&s->tab, i)))
            return i;
    }
    return UINT32_MAX;
}

/* Index of the probe's target, or UINT32_MAX when it is gone. */
static uint32_t probe_target(const struct ppdb_swim *s)
{
    uint32_t i = s->probe.target_index; /* a hint: the table may have moved it */
    if (i < s->tab.len && ppdb_node_id_equal(&PPDB_SWIM_M(&s->tab, i).id, &s->probe.target))
        return i;
    return ppdb_swim_table_find(&s->tab, &s->probe.target);
}

static void finish_probe(struct ppdb_swim *s)
{
    if (!s->probe.active)
        return;
    s->probe.active = false;
    ppdb_env_timer_cancel(s->env, &s->probe_timer);
    if (s->probe.acked)
        return;
    s->stats.probe_failures++;
    /* Lifeguard: missing nacks mean the fault may be ours */
    uint32_t delta = s->probe.expected_nacks ? s->probe.expected_nacks - s->probe.nacks : 1;
    if (s->probe.expected_nacks && s->probe.nacks > s->probe.expected_nacks)
        delta = 0;
    s->health = PPDB_MIN(s->p.max_health, s->health + delta);
    uint32_t i = probe_target(s);
    if (i != UINT32_MAX && probeable(&PPDB_SWIM_M(&s->tab, i)))
        accuse(s, i);
}

static void start_probe(struct ppdb_swim *s)
{
    uint32_t i = next_target(s);
    if (i == UINT32_MAX)
        return;
    memset(&s->probe, 0, sizeof(s->probe));
    s->probe.active = true;
    s->probe.seq = ++s->next_seq;
    s->probe.target = PPDB_SWIM_M(&s->tab, i).id;
    s->probe.target_index = i;
    s->probe.target_addr = PPDB_SWIM_M(&s->tab, i).addr;
    s->probe.sent_ms = now_ms(s);
    struct ppdb_addr to = PPDB_SWIM_M(&s->tab, i).addr;
    struct ppdb_node_id target = PPDB_SWIM_M(&s->tab, i).id;
    s->stats.probes++;
    (void)send_msg(s, &to, PPDB_MSG_SWIM_PING, s->probe.seq, &target, NULL);
    arm(s, &s->probe_timer, ppdb_swim_scaled_ms(s->p.probe_timeout_ms, s->health));
}

static void tick_cb(struct ppdb_timer *t)
{
    struct ppdb_swim *s = t->data;
    finish_probe(s);
    if (s->leaving)
        return;
    start_probe(s);
    arm(s, &s->tick_timer, ppdb_swim_scaled_ms(s->p.probe_interval_ms, s->health));
}

/* Up to k distinct random probeable members other than self and `skip`. */
static uint32_t pick_random(struct ppdb_swim *s, const struct ppdb_node_id *skip, uint32_t k,
                            uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t tries = 0; tries < 4 * k + 8 && n < k && s->tab.len > 1; tries++) {
        uint32_t i = (uint32_t)ppdb_env_random_below(s->env, s->tab.len);
        if (is_self(s, i) || !probeable(&PPDB_SWIM_M(&s->tab, i)) ||
            (skip && ppdb_node_id_equal(&PPDB_SWIM_M(&s->tab, i).id, skip)))
            continue;
        bool dup = false;
        for (uint32_t k2 = 0; k2 < n; k2++)
            dup = dup || out[k2] == i;
        if (!dup)
            out[n++] = i;
    }
    return n;
}

static void probe_timeout_cb(struct ppdb_timer *t)
{
    struct ppdb_swim *s = t->data;
    if (!s->probe.active || s->probe.acked || s->probe.indirect)
        return;
    uint32_t ti = probe_target(s);
    if (ti == UINT32_MAX)
        return;
    struct ppdb_addr target_addr = PPDB_SWIM_M(&s->tab, ti).addr;
    struct ppdb_node_id target = s->probe.target;
    uint32_t pick[16], k = PPDB_MIN(s->p.indirect_k, 16u);
    uint32_t n = pick_random(s, &target, k, pick);
    struct ppdb_addr relays[16];
    for (uint32_t j = 0; j < n; j++)
        relays[j] = PPDB_SWIM_M(&s->tab, pick[j]).addr;
    s->probe.indirect = true;
    s->probe.expected_nacks = n;
    /* a second direct ping alongside the indirect ones (memberlist sends a
     * TCP ping here): one lost datagram alone no longer starts a suspicion */
    (void)send_msg(s, &target_addr, PPDB_MSG_SWIM_PING, s->probe.seq, &target, NULL);
    for (uint32_t j = 0; j < n; j++) {
        s->stats.indirect_sent++;
        (void)send_msg(s, &relays[j], PPDB_MSG_SWIM_PING_REQ, s->probe.seq, &target, &target_addr);
    }
}

/* ------------------------------------------------------------ relaying */

static void relay_free(struct ppdb_swim_relay *r)
{
    ppdb_env_timer_cancel(r->swim->env, &r->timer);
    r->used = false;
    r->swim->nrelays--;
}

static void relay_cb(struct ppdb_timer *t)
{
    struct ppdb_swim_relay *r = t->data;
    struct ppdb_swim *s = r->swim;
    if (r->nacked) {
        relay_free(r);
        return;
    }
    r->nacked = true;
    s->stats.nacks_sent++;
    struct ppdb_addr to = r->requester;
    uint64_t seq = r->req_seq;
    arm(s, &r->timer, s->p.probe_interval_ms);
    (void)send_msg(s, &to, PPDB_MSG_SWIM_NACK, seq, NULL, NULL);
}

static void on_ping_req(struct ppdb_swim *s, const struct ppdb_addr *from, uint64_t req_seq,
                        const msgpack_object *body)
{
    struct ppdb_node_id target;
    const uint8_t *ab;
    size_t alen;
    struct ppdb_addr addr;
    if (ppdb_mp_get_bin_fixed(body, PPDB_SWIM_K_TARGET, target.b, PPDB_NODE_ID_LEN) != 0 ||
        ppdb_mp_get_bin(body, PPDB_SWIM_K_ADDR, &ab, &alen) != 0) {
        s->stats.bad_msgs++;
        return;
    }
    struct ppdb_rd rd;
    ppdb_rd_init(&rd, ab, alen);
    uint8_t fam;
    const uint8_t *ip;
    memset(&addr, 0, sizeof(addr));
    if (ppdb_rd_u8(&rd, &fam) != 0 || (fam != 4 && fam != 6) ||
        ppdb_rd_bytes(&rd, fam == 6 ? 16 : 4, &ip) != 0 || ppdb_rd_u16be(&rd, &addr.port) != 0) {
        s->stats.bad_msgs++;
        return;
    }
    addr.family = fam;
    memcpy(addr.ip, ip, fam == 6 ? 16 : 4);
    for (uint32_t k = 0; k < s->p.max_probes; k++) {
        struct ppdb_swim_relay *r = &s->relays[k];
        if (r->used)
            continue;
        if (!r->timer.cb) { /* first use of this slot */
            r->swim = s;
            ppdb_timer_init(&r->timer, relay_cb, r);
        }
        r->used = true;
        s->nrelays++;
        r->nacked = false;
        r->seq = ++s->next_seq;
        r->req_seq = req_seq;
        r->requester = *from;
        s->stats.indirect_relayed++;
        arm(s, &r->timer, s->p.probe_timeout_ms * s->p.nack_percent / 100);
        (void)send_msg(s, &addr, PPDB_MSG_SWIM_PING, r->seq, &target, NULL);
        return;
    }
    s->stats.probes_full++;
}

/* The round trip of a probe acked by its target before the indirect phase
 * (a later ack may answer the second direct ping), in ms, at least 1. */
static void record_rtt(struct ppdb_swim *s, const struct ppdb_addr *from)
{
    if (s->probe.indirect || !ppdb_addr_equal(from, &s->probe.target_addr))
        return;
    uint32_t i = probe_target(s);
    if (i == UINT32_MAX)
        return;
    uint64_t rtt = now_ms(s) - s->probe.sent_ms;
    PPDB_SWIM_M(&s->tab, i).rtt_ms = (uint16_t)PPDB_MAX(1u, PPDB_MIN(rtt, (uint64_t)UINT16_MAX));
}

static void on_ack(struct ppdb_swim *s, const struct ppdb_addr *from, uint64_t seq)
{
    if (s->probe.active && seq == s->probe.seq) {
        if (!s->probe.acked) {
            record_rtt(s, from);
            s->probe.acked = true;
            s->stats.probe_acks++;
            if (s->health > 0)
                s->health--;
            ppdb_env_timer_cancel(s->env, &s->probe_timer);
        }
        return;
    }
    for (uint32_t k = 0; k < s->p.max_probes && s->nrelays > 0; k++) {
        struct ppdb_swim_relay *r = &s->relays[k];
        if (r->used && r->seq == seq) {
            struct ppdb_addr to = r->requester;
            uint64_t req = r->req_seq;
            relay_free(r);
            s->stats.acks_relayed++;
            (void)send_msg(s, &to, PPDB_MSG_SWIM_ACK, req, NULL, NULL);
            return;
        }
    }
}

/* ------------------------------------------------------------ messages in */

#define APPLY_BATCH 16

/* Decodes and applies the records in p[0..n): those of a datagram (merge
 * false: a record without an accuser takes `who`, the sender) or of a
 * remote full state (merge true: its dead is only our suspicion, accused
 * by `who`, memberlist's rule: a stale view must not kill a live member
 * outright). Records are decoded in batches and their table slots, then
 * entries, prefetched before any is applied, in order. A bad record ends
 * the walk after the ones before it: PPDB_EPROTO. */
static int apply_records(struct ppdb_swim *s, const uint8_t *p, size_t n,
                         const struct ppdb_node_id *who, bool merge)
{
    struct ppdb_rd rd;
    ppdb_rd_init(&rd, p, n);
    int rc = 0;
    while (rc == 0 && ppdb_rd_left(&rd) > 0) {
        struct ppdb_swim_rec batch[APPLY_BATCH];
        uint32_t nb = 0;
        for (; nb < APPLY_BATCH && ppdb_rd_left(&rd) > 0; nb++) {
            struct ppdb_swim_rec *r = &batch[nb];
            if (ppdb_swim_rec_decode(&rd, r) != 0) {
                rc = PPDB_EPROTO;
                break;
            }
            if (merge && r->state == PPDB_MEMBER_DEAD)
                r->state = PPDB_MEMBER_SUSPECT;
            if (merge && r->state == PPDB_MEMBER_SUSPECT) {
                r->has_from = true;
                r->from = *who;
            } else if (!merge && !r->has_from) {
                r->from = *who;
            }
            ppdb_swim_table_prefetch(&s->tab, &r->id, false);
        }
        for (uint32_t k = 0; k < nb; k++)
            ppdb_swim_table_prefetch(&s->tab, &batch[k].id, true);
        for (uint32_t k = 0; k < nb; k++)
            ppdb_swim_apply(s, &batch[k]);
    }
    return rc;
}

static void apply_updates(struct ppdb_swim *s, const msgpack_object *body,
                          const struct ppdb_node_id *sender)
{
    const uint8_t *p;
    size_t n;
    if (ppdb_mp_get_bin(body, PPDB_SWIM_K_UPDATES, &p, &n) != 0)
        return;
    if (apply_records(s, p, n, sender, false) != 0)
        s->stats.bad_msgs++;
}

void ppdb_swim_on_message(struct ppdb_swim *s, const struct ppdb_addr *from,
                          const struct ppdb_envelope *msg)
{
    const msgpack_object *body = msg->body;
    uint64_t rid = msg->hdr.request_id;
    struct ppdb_node_id target;
    s->stats.msgs_in++;
    s->doubted = false;
    apply_updates(s, body, &msg->hdr.sender);
    if (s->doubted && !s->left)
        reply_self(s, from);
    switch (msg->hdr.type) {
    case PPDB_MSG_SWIM_PING:
        if (ppdb_mp_get_bin_fixed(body, PPDB_SWIM_K_TARGET, target.b, PPDB_NODE_ID_LEN) != 0 ||
            !ppdb_node_id_equal(&target, &s->self_id)) {
            s->stats.bad_msgs++; /* e.g. another node now at an old address */
            return;
        }
        (void)send_msg(s, from, PPDB_MSG_SWIM_ACK, rid, NULL, NULL);
        return;
    case PPDB_MSG_SWIM_ACK:
        on_ack(s, from, rid);
        return;
    case PPDB_MSG_SWIM_PING_REQ:
        if (!s->left)
            on_ping_req(s, from, rid, body);
        return;
    case PPDB_MSG_SWIM_NACK:
        if (s->probe.active && rid == s->probe.seq) {
            s->probe.nacks++;
            s->stats.nacks_received++;
        }
        return;
    case PPDB_MSG_SWIM_GOSSIP:
        return;
    case PPDB_MSG_SWIM_NEWS:
        on_news(s, from, body);
        return;
    default:
        s->stats.bad_msgs++;
    }
}

/* ------------------------------------------------------------ gossip tick */

static void gossip_cb(struct ppdb_timer *t)
{
    struct ppdb_swim *s = t->data;
    if (s->queue.len == 0 || s->left)
        return;
    uint32_t pick[16];
    uint32_t n = pick_random(s, NULL, PPDB_MIN(s->p.gossip_nodes, 16u), pick);
    struct ppdb_addr to[16];
    for (uint32_t k = 0; k < n; k++)
        to[k] = PPDB_SWIM_M(&s->tab, pick[k]).addr;
    for (uint32_t k = 0; k < n && s->queue.len > 0; k++) {
        s->stats.gossip_msgs++;
        (void)send_msg(s, &to[k], PPDB_MSG_SWIM_GOSSIP, 0, NULL, NULL);
    }
    if (s->queue.len > 0 && n > 0)
        arm(s, &s->gossip_timer, s->p.gossip_interval_ms);
}

/* ------------------------------------------------------------ push/pull */

/* Member i as a full record. */
static void member_rec(const struct ppdb_swim *s, uint32_t i, struct ppdb_swim_rec *r)
{
    const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    *r = (struct ppdb_swim_rec){.state = m->state,
                                .full = true,
                                .id = m->id,
                                .incarnation = m->incarnation,
                                .addr = m->addr,
                                .version = m->version,
                                .meta_len = m->meta_len,
                                .meta = ppdb_swim_table_meta(&s->tab, i)};
}

/* What a sync body says besides its records. */
struct sync_head {
    bool join, delta, more, has_since;
    uint32_t since, wm;
    uint64_t since_epoch;
    uint32_t sample; /* join: members wanted (0: all) */
    bool has_digest;
    uint64_t digest;
};

static size_t put_bin32_head(uint8_t *p, size_t total)
{
    size_t n = 0;
    if (total <= UINT8_MAX) {
        p[n++] = 0xc4;
        p[n++] = (uint8_t)total;
    } else if (total <= UINT16_MAX) {
        p[n++] = 0xc5;
        p[n++] = (uint8_t)(total >> 8);
        p[n++] = (uint8_t)total;
    } else {
        p[n++] = 0xc6;
        for (int sh = 24; sh >= 0; sh -= 8)
            p[n++] = (uint8_t)(total >> sh);
    }
    return n;
}

/* A sync body: the head's fields, then the records of entries idx[0..n)
 * (idx NULL: every entry, our full state), sized first and written
 * straight after the bin head (no intermediate buffer). */
static int encode_body(struct ppdb_swim *s, const struct sync_head *h, const uint32_t *idx,
                       uint32_t n, struct ppdb_buf *out)
{
    size_t total = 0;
    struct ppdb_swim_rec r;
    for (uint32_t k = 0; k < n; k++) {
        member_rec(s, idx ? idx[k] : k, &r);
        total += ppdb_swim_rec_size(&r);
    }
    PPDB_ASSERT(total <= UINT32_MAX);
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, out);
    ppdb_mpw_map(&w, 5 + h->more + h->delta + 2u * h->has_since + (h->sample > 0) + h->has_digest);
    ppdb_mpw_uint(&w, PPDB_SWIM_K_JOIN);
    ppdb_mpw_bool(&w, h->join);
    ppdb_mpw_uint(&w, PPDB_SWIM_K_COUNT);
    ppdb_mpw_uint(&w, n);
    ppdb_mpw_uint(&w, PPDB_SWIM_K_EPOCH);
    ppdb_mpw_uint(&w, s->tab.epoch);
    ppdb_mpw_uint(&w, PPDB_SWIM_K_WATERMARK);
    ppdb_mpw_uint(&w, h->wm);
    if (h->more) {
        ppdb_mpw_uint(&w, PPDB_SWIM_K_MORE);
        ppdb_mpw_bool(&w, true);
    }
    if (h->delta) {
        ppdb_mpw_uint(&w, PPDB_SWIM_K_DELTA);
        ppdb_mpw_bool(&w, true);
    }
    if (h->has_digest) {
        ppdb_mpw_uint(&w, PPDB_SWIM_K_DIGEST);
        ppdb_mpw_uint(&w, h->digest);
    }
    if (h->sample) {
        ppdb_mpw_uint(&w, PPDB_SWIM_K_SAMPLE);
        ppdb_mpw_uint(&w, h->sample);
    }
    if (h->has_since) {
        ppdb_mpw_uint(&w, PPDB_SWIM_K_SINCE);
        ppdb_mpw_uint(&w, h->since);
        ppdb_mpw_uint(&w, PPDB_SWIM_K_SINCE_EPOCH);
        ppdb_mpw_uint(&w, h->since_epoch);
    }
    ppdb_mpw_uint(&w, PPDB_SWIM_K_MEMBERS);
    int rc = ppdb_mpw_error(&w);
    if (rc == 0)
        rc = ppdb_buf_reserve(out, 5 + total);
    if (rc)
        return rc;
    uint8_t *p = out->data + out->len;
    size_t len = put_bin32_head(p, total);
    for (uint32_t k = 0; k < n; k++) {
        member_rec(s, idx ? idx[k] : k, &r);
        len += ppdb_swim_rec_put(p + len, &r);
    }
    PPDB_ASSERT(len <= 5 + total);
    out->len += len;
    return 0;
}

/* Our full state: every change up to our lseq now. A join asks for a
 * sample of PPDB_SWIM_JOIN_SAMPLE members: it pulls the full state from
 * a partner it picks among them, so a seed serves little per joiner. */
static int encode_state(struct ppdb_swim *s, bool join, struct ppdb_buf *out)
{
    struct sync_head h = {
        .join = join, .wm = s->tab.lseq, .sample = join ? PPDB_SWIM_JOIN_SAMPLE : 0};
    return encode_body(s, &h, NULL, s->tab.len, out);
}

/* A join's sample: up to `want` random live members, and ourselves only
 * when we know fewer (so a seed does not become everyone's partner). */
static int encode_sample(struct ppdb_swim *s, uint32_t want, struct ppdb_buf *out)
{
    uint32_t idx[1 + 64];
    want = PPDB_MIN(want, 64u);
    uint32_t n = pick_random(s, NULL, want, idx);
    if (n < want)
        idx[n++] = self_index(s);
    struct sync_head h = {.delta = true};
    return encode_body(s, &h, idx, n, out);
}

/* Our changes after `since` (at most PPDB_SWIM_DELTA_MAX), with our own
 * record first when with_self (a partner may have met us before we
 * started counting for it), leaving out changes in (skip_from, skip_to]
 * but our own record (what merging the peer's request changed: it knows
 * those). h->wm and h->more are set here. */
static int encode_delta(struct ppdb_swim *s, struct sync_head *h, uint32_t since, bool with_self,
                        uint32_t skip_from, uint32_t skip_to, struct ppdb_buf *out)
{
    uint32_t idx[PPDB_SWIM_DELTA_MAX + 1]; /* 8 KiB */
    uint32_t n = 0, self = self_index(s);
    int rc =
        ppdb_swim_table_changed(&s->tab, since, PPDB_SWIM_DELTA_MAX, idx + 1, &n, &h->wm, &h->more);
    uint32_t *first = idx + 1, kept = 0;
    bool has = false;
    for (uint32_t k = 0; rc == 0 && k < n; k++) {
        uint32_t l = PPDB_SWIM_M(&s->tab, first[k]).lseq;
        has = has || first[k] == self;
        if (PPDB_SWIM_M(&s->tab, first[k]).state != PPDB_MEMBER_ALIVE)
            continue; /* joins, refutations, moves; suspicions and deaths gossip */
        if (first[k] == self || l <= skip_from || l > skip_to)
            first[kept++] = first[k];
    }
    n = kept;
    if (rc == 0 && with_self && !has) {
        idx[0] = self;
        first = idx;
        n++;
    }
    h->delta = true;
    if (rc == 0)
        rc = encode_body(s, h, first, n, out);
    return rc;
}

/* Merges a remote state or delta (apply_records: their dead is our
 * suspicion). */
static int merge_state(struct ppdb_swim *s, const struct ppdb_node_id *peer,
                       const msgpack_object *body)
{
    const uint8_t *p;
    size_t n;
    int rc = ppdb_mp_get_bin(body, PPDB_SWIM_K_MEMBERS, &p, &n);
    if (rc)
        return rc;
    uint32_t count = 0;
    bool delta = false;
    if (ppdb_mp_get_u32(body, PPDB_SWIM_K_COUNT, &count) == 0)
        s->stats.sync_records += count;
    (void)ppdb_mp_get_bool(body, PPDB_SWIM_K_DELTA, &delta);
    if (!delta && count > s->tab.len) /* a full state: grow the table once */
        (void)ppdb_swim_table_reserve(&s->tab, count);
    return apply_records(s, p, n, peer, true);
}

/* Our partners' `pushed` watermarks are in our numbering: after we
 * renumbered (a new epoch) they mean nothing. */
static void push_epoch_check(struct ppdb_swim *s)
{
    if (s->push_epoch == s->tab.epoch)
        return;
    for (uint32_t j = 0; j < PPDB_SWIM_PARTNERS; j++)
        s->partners[j].pushed = 0;
    s->push_epoch = s->tab.epoch;
}

static int32_t partner_get(struct ppdb_swim *s, const struct ppdb_addr *addr);

/* A peer that pulled our changes up to wm is kept in the partner table
 * with that watermark: should it become our partner (or be one), what it
 * already has is not pushed to it again. */
static void note_puller(struct ppdb_swim *s, const struct ppdb_node_id *peer, uint32_t wm)
{
    uint32_t i = ppdb_swim_table_find(&s->tab, peer);
    if (i == UINT32_MAX || is_self(s, i) || !probeable(&PPDB_SWIM_M(&s->tab, i)))
        return;
    push_epoch_check(s);
    bool known = false;
    for (int32_t k = 0; k < PPDB_SWIM_PARTNERS && !known; k++)
        known = s->partners[k].used &&
                ppdb_addr_equal(&s->partners[k].addr, &PPDB_SWIM_M(&s->tab, i).addr);
    int32_t k = partner_get(s, &PPDB_SWIM_M(&s->tab, i).addr);
    struct ppdb_swim_partner *p = &s->partners[k];
    p->id = *peer;
    p->pushed = known ? PPDB_MAX(p->pushed, wm) : wm;
    p->used_ms = now_ms(s);
    p->puller = true;
}

int ppdb_swim_on_sync(struct ppdb_swim *s, const struct ppdb_node_id *peer,
                      const msgpack_object *body, struct ppdb_buf *reply)
{
    uint32_t since, sample = 0, l0 = s->tab.lseq;
    uint64_t since_epoch, e0 = s->tab.epoch;
    bool join = false;
    /* merged first, so the reply leaves out what the request told us */
    int rc = merge_state(s, peer, body);
    if (rc)
        return rc;
    if (s->tab.epoch != e0)
        l0 = s->tab.lseq; /* renumbered meanwhile: nothing to leave out */
    (void)ppdb_mp_get_bool(body, PPDB_SWIM_K_JOIN, &join);
    (void)ppdb_mp_get_u32(body, PPDB_SWIM_K_SAMPLE, &sample);
    uint64_t digest;
    bool has_digest = ppdb_mp_get_u64(body, PPDB_SWIM_K_DIGEST, &digest) == 0, puller = false;
    uint32_t wm = s->tab.lseq;
    if (has_digest && digest == s->digest) {
        struct sync_head h = {.delta = true, .wm = s->tab.lseq}; /* same view: nothing */
        rc = encode_body(s, &h, NULL, 0, reply);
    } else if (has_digest) {
        rc = encode_state(s, false, reply);
    } else if (ppdb_mp_get_u32(body, PPDB_SWIM_K_SINCE, &since) == 0 &&
               ppdb_mp_get_u64(body, PPDB_SWIM_K_SINCE_EPOCH, &since_epoch) == 0 &&
               since_epoch == s->tab.epoch) {
        struct sync_head h = {0};
        rc = encode_delta(s, &h, since, false, l0, s->tab.lseq, reply);
        wm = h.wm;
        puller = true;
    } else if (join && sample > 0) {
        rc = encode_sample(s, sample, reply);
    } else {
        rc = encode_state(s, false, reply); /* no watermark, or of another epoch */
        puller = !join;
    }
    if (rc)
        return rc;
    if (puller)
        note_puller(s, peer, wm);
    s->stats.syncs_served++;
    s->stats.sync_bytes += reply->len;
    return 0;
}

/* ------------------------------------------------------------ partners */

/* The sticky partner becomes k (-1: none); its stream is kept open
 * between exchanges, which otherwise back off past the idle close and
 * paid a handshake each. */
static void set_sticky(struct ppdb_swim *s, int32_t k)
{
    if (k == s->sticky)
        return;
    s->sticky = k;
    if (s->io.keep)
        s->io.keep(s->io.ctx, k >= 0 ? &s->partners[k].addr : NULL);
}

/* The partner entry for addr, taken (the least recently used one that is
 * not sticky) when there is none. */
static int32_t partner_get(struct ppdb_swim *s, const struct ppdb_addr *addr)
{
    int32_t victim = -1;
    for (int32_t k = 0; k < PPDB_SWIM_PARTNERS; k++)
        if (s->partners[k].used && ppdb_addr_equal(&s->partners[k].addr, addr))
            return k;
    for (int32_t k = 0; k < PPDB_SWIM_PARTNERS; k++) {
        if (k == s->sticky)
            continue;
        if (!s->partners[k].used) {
            victim = k;
            break;
        }
        if (victim < 0 || s->partners[k].used_ms < s->partners[victim].used_ms)
            victim = k;
    }
    PPDB_ASSERT(victim >= 0);
    struct ppdb_swim_partner *p = &s->partners[victim];
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->addr = *addr;
    p->pushed = s->tab.lseq; /* it learns what we knew before from others */
    p->used_ms = now_ms(s);
    return victim;
}

static uint64_t delta_cap_ms(const struct ppdb_swim *s)
{
    uint64_t cap = ppdb_swim_push_pull_ms(&s->p, ppdb_swim_n(s));
    return PPDB_MIN(PPDB_MAX(cap, 10000u), PPDB_SWIM_DELTA_CAP_MS);
}

/* A reply from partner k: its watermark, and the next interval (soon while
 * there is news, doubling while there is none). */
static void partner_reply(struct ppdb_swim *s, int32_t k, const struct ppdb_swim_sync_ctx *c,
                          const msgpack_object *reply, uint32_t pushed, bool news)
{
    struct ppdb_swim_partner *p = &s->partners[k];
    uint64_t epoch;
    uint32_t wm;
    bool more = false;
    if (!p->used || !ppdb_addr_equal(&p->addr, &c->to))
        return; /* the entry was taken for another partner meanwhile */
    p->fails = 0;
    p->used_ms = now_ms(s);
    if (c->push_epoch == s->tab.epoch)
        p->pushed = pushed;
    if (ppdb_mp_get_u64(reply, PPDB_SWIM_K_EPOCH, &epoch) != 0 ||
        ppdb_mp_get_u32(reply, PPDB_SWIM_K_WATERMARK, &wm) != 0 || epoch == 0) {
        p->epoch = 0; /* an older node: full state every time */
        return;
    }
    (void)ppdb_mp_get_bool(reply, PPDB_SWIM_K_MORE, &more);
    p->epoch = epoch;
    p->pulled = wm;
    if (k != s->sticky)
        return;
    uint64_t now = now_ms(s);
    if (news || more) {
        s->delta_ms = PPDB_SWIM_DELTA_MIN_MS;
        s->delta_news_ms = now;
    } else if (now - s->delta_news_ms >= PPDB_SWIM_DELTA_QUIET_MS) {
        s->delta_ms = (uint32_t)PPDB_MIN((uint64_t)s->delta_ms * 2, delta_cap_ms(s));
    }
    if (more)
        arm(s, &s->delta_timer, PPDB_SWIM_DELTA_MORE_MS);
}

static void sync_done_cb(void *data, int status, const msgpack_object *reply)
{
    struct ppdb_swim_sync_ctx *c = data;
    struct ppdb_swim *s = c->swim;
    c->used = false;
    if (c->seed >= 0)
        s->seed_pending[c->seed] = false;
    if (status != 0) {
        s->stats.syncs_failed++;
        struct ppdb_swim_partner *p = c->partner >= 0 ? &s->partners[c->partner] : NULL;
        if (p && p->used && ppdb_addr_equal(&p->addr, &c->to) &&
            ++p->fails >= PPDB_SWIM_PARTNER_FAILS) {
            if (c->partner == s->sticky)
                set_sticky(s, -1);
        }
        if (c->seed >= 0 && ppdb_swim_n(s) <= 1 && !s->leaving) /* the next seed, now */
            try_seed(s, ((uint32_t)c->seed + 1) % s->nseeds, true);
        return;
    }
    /* the peer's id travels in its records; the reply's accuser for dead
     * members is unknown here, so use a zero id (never a real member) */
    struct ppdb_node_id anon;
    memset(&anon, 0, sizeof(anon));
    uint64_t before = s->stats.members_added, e0 = s->tab.epoch;
    uint32_t l0 = s->tab.lseq, self_l0 = PPDB_SWIM_M(&s->tab, self_index(s)).lseq;
    if (merge_state(s, &anon, reply) != 0) {
        s->stats.syncs_failed++;
        return;
    }
    s->stats.syncs_ok++;
    /* what the reply changed, the partner knows: unless something else
     * changed since the request (or we refuted), skip it when pushing */
    uint32_t pushed = c->push_wm;
    if (c->push_wm == l0 && e0 == s->tab.epoch &&
        self_l0 == PPDB_SWIM_M(&s->tab, self_index(s)).lseq)
        pushed = s->tab.lseq;
    bool delta = false;
    (void)ppdb_mp_get_bool(reply, PPDB_SWIM_K_DELTA, &delta);
    if (c->digest) {
        if (!delta) /* the views differ: we have theirs, now push ours */
            (void)sync_push(s, &c->to, reply);
        return;
    }
    int32_t k = c->partner;
    if (k < 0 && c->seed >= 0 && s->sticky < 0) {
        arm(s, &s->delta_timer, 0); /* a join: pick a partner among what it told us now */
        return;
    }
    if (k >= 0)
        partner_reply(s, k, c, reply, pushed, s->stats.members_added != before);
}

static struct ppdb_swim_sync_ctx *sync_ctx_take(struct ppdb_swim *s, const struct ppdb_addr *to)
{
    for (uint32_t k = 0; k < PPDB_ARRAY_LEN(s->syncs); k++) {
        struct ppdb_swim_sync_ctx *c = &s->syncs[k];
        if (!c->used) {
            *c = (struct ppdb_swim_sync_ctx){.swim = s,
                                             .seed = -1,
                                             .partner = -1,
                                             .push_wm = s->tab.lseq,
                                             .push_epoch = s->tab.epoch,
                                             .to = *to};
            return c;
        }
    }
    s->stats.syncs_failed++;
    return NULL;
}

static int sync_send(struct ppdb_swim *s, struct ppdb_swim_sync_ctx *c, struct ppdb_buf *body)
{
    s->stats.syncs_started++;
    s->stats.sync_bytes += body->len;
    int rc = s->io.sync_request(s->io.ctx, &c->to, body->data, body->len, s->p.sync_timeout_ms,
                                sync_done_cb, c);
    if (rc == 0)
        c->used = true;
    else
        s->stats.syncs_failed++;
    ppdb_buf_deinit(body);
    return rc;
}

/* Starts one full push/pull with `to`; seed: the candidate index it
 * contacts, or -1. Returns 0 when the exchange is under way. */
static int sync_with(struct ppdb_swim *s, const struct ppdb_addr *to, bool join, int32_t seed)
{
    struct ppdb_swim_sync_ctx *c = sync_ctx_take(s, to);
    if (!c)
        return PPDB_ELIMIT;
    c->seed = seed;
    struct ppdb_buf body;
    ppdb_buf_init(&body);
    int rc = encode_state(s, join, &body);
    if (rc) {
        s->stats.syncs_failed++;
        ppdb_buf_deinit(&body);
        return rc;
    }
    return sync_send(s, c, &body);
}

/* The periodic push/pull, first as a digest of our live view with our own
 * record: a peer whose view has the same digest answers with nothing; else
 * with its full state, and we push ours (sync_push). */
static int digest_with(struct ppdb_swim *s, const struct ppdb_addr *to)
{
    struct ppdb_swim_sync_ctx *c = sync_ctx_take(s, to);
    if (!c)
        return PPDB_ELIMIT;
    c->digest = true;
    uint32_t self = self_index(s);
    struct sync_head h = {.delta = true, .wm = 0, .has_digest = true, .digest = s->digest};
    struct ppdb_buf body;
    ppdb_buf_init(&body);
    int rc = encode_body(s, &h, &self, 1, &body);
    if (rc) {
        s->stats.syncs_failed++;
        ppdb_buf_deinit(&body);
        return rc;
    }
    return sync_send(s, c, &body);
}

/* Our full state to the peer whose full state `reply` was, asking only for
 * its changes after that reply's watermark. */
static int sync_push(struct ppdb_swim *s, const struct ppdb_addr *to, const msgpack_object *reply)
{
    struct sync_head h = {.wm = s->tab.lseq};
    h.has_since = ppdb_mp_get_u32(reply, PPDB_SWIM_K_WATERMARK, &h.since) == 0 &&
                  ppdb_mp_get_u64(reply, PPDB_SWIM_K_EPOCH, &h.since_epoch) == 0;
    struct ppdb_swim_sync_ctx *c = sync_ctx_take(s, to);
    if (!c)
        return PPDB_ELIMIT;
    struct ppdb_buf body;
    ppdb_buf_init(&body);
    int rc = encode_body(s, &h, NULL, s->tab.len, &body);
    if (rc) {
        s->stats.syncs_failed++;
        ppdb_buf_deinit(&body);
        return rc;
    }
    return sync_send(s, c, &body);
}

/* Starts one delta push/pull with partner k: our changes since we last
 * pushed to it, and a request for its changes since we last pulled. */
static int delta_with(struct ppdb_swim *s, int32_t k)
{
    struct ppdb_swim_partner *p = &s->partners[k];
    struct ppdb_swim_sync_ctx *c = sync_ctx_take(s, &p->addr);
    if (!c)
        return PPDB_ELIMIT;
    c->partner = k;
    push_epoch_check(s);
    struct sync_head h = {.has_since = p->epoch != 0, .since = p->pulled, .since_epoch = p->epoch};
    struct ppdb_buf body;
    ppdb_buf_init(&body);
    int rc = encode_delta(s, &h, p->pushed, true, 0, 0, &body);
    if (rc) {
        s->stats.syncs_failed++;
        ppdb_buf_deinit(&body);
        return rc;
    }
    c->push_wm = h.wm;
    s->stats.syncs_delta++;
    return sync_send(s, c, &body);
}

/* The partner tree. A node's sticky partner always has a smaller node id
 * than its own, so the partner graph has no cycle: it is a forest whose
 * roots are nodes that know no smaller live member, and a root attaches as
 * soon as it learns of one (news of every joiner reaches the root of its
 * seed's tree, and a root exchanges with a random member at each delta
 * tick), so the forest becomes one tree rooted at the smallest id.
 * Without the order, a replaced partner could be one of the node's own
 * descendants, closing a cycle whose component no news from outside ever
 * reaches (seen: 3 components in a 1,000-node join). Ids are random, so
 * the parent is a random smaller member: in-degree about ln(N / rank). */
static bool id_below(const struct ppdb_node_id *a, const struct ppdb_node_id *b)
{
    return memcmp(a->b, b->b, PPDB_NODE_ID_LEN) < 0;
}

/* A partner entry that failed PPDB_SWIM_PARTNER_FAILS times in a row (and
 * has not answered since) is not taken as a parent again. */
static bool partner_failing(const struct ppdb_swim *s, const struct ppdb_addr *addr)
{
    for (uint32_t k = 0; k < PPDB_SWIM_PARTNERS; k++)
        if (s->partners[k].used && s->partners[k].fails >= PPDB_SWIM_PARTNER_FAILS &&
            ppdb_addr_equal(&s->partners[k].addr, addr))
            return true;
    return false;
}

static bool parent_ok(const struct ppdb_swim *s, uint32_t i)
{
    const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    return !is_self(s, i) && probeable(m) && id_below(&m->id, &s->self_id) &&
           !partner_failing(s, &m->addr);
}

/* A random live member with a smaller id: a few random tries, then a scan
 * (nodes with small ids have few candidates). A root remembers the lseq of
 * its last fruitless scan and scans again only after a change. */
static bool pick_parent(struct ppdb_swim *s, uint32_t *out)
{
    for (uint32_t tries = 0; tries < 8 && s->tab.len > 1; tries++) {
        uint32_t i = (uint32_t)ppdb_env_random_below(s->env, s->tab.len);
        if (parent_ok(s, i)) {
            *out = i;
            return true;
        }
    }
    if (s->root_lseq == s->tab.lseq && s->root_epoch == s->tab.epoch)
        return false;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->tab.len; i++)
        n += parent_ok(s, i);
    if (n == 0) {
        s->root_lseq = s->tab.lseq;
        s->root_epoch = s->tab.epoch;
        return false;
    }
    uint32_t r = (uint32_t)ppdb_env_random_below(s->env, n);
    for (uint32_t i = 0; i < s->tab.len; i++) {
        if (parent_ok(s, i) && r-- == 0) {
            *out = i;
            return true;
        }
    }
    PPDB_ASSERT(!"counted parent not found");
    return false;
}

/* The sticky partner: kept while it answers and is not known to be gone;
 * else a random live member with a smaller id. -1 when there is none. */
static int32_t sticky_partner(struct ppdb_swim *s)
{
    if (s->sticky >= 0) {
        const struct ppdb_swim_partner *p = &s->partners[s->sticky];
        uint32_t i = ppdb_swim_table_find(&s->tab, &p->id);
        if (i != UINT32_MAX && probeable(&PPDB_SWIM_M(&s->tab, i)))
            return s->sticky;
        set_sticky(s, -1);
    }
    uint32_t pick;
    if (!pick_parent(s, &pick))
        return -1;
    struct ppdb_addr addr = PPDB_SWIM_M(&s->tab, pick).addr;
    int32_t k = partner_get(s, &addr);
    s->partners[k].id = PPDB_SWIM_M(&s->tab, pick).id;
    set_sticky(s, k);
    return k;
}

static bool partner_busy(const struct ppdb_swim *s, int32_t k)
{
    for (uint32_t j = 0; j < PPDB_ARRAY_LEN(s->syncs); j++)
        if (s->syncs[j].used && s->syncs[j].partner == k)
            return true;
    return false;
}

static int send_news(struct ppdb_swim *s, const struct ppdb_addr *to)
{
    struct ppdb_buf b;
    struct ppdb_mpw w;
    ppdb_buf_init(&b);
    ppdb_mpw_init(&w, &b);
    ppdb_mpw_map(&w, 2);
    ppdb_mpw_uint(&w, PPDB_SWIM_K_NEWS_EPOCH);
    ppdb_mpw_uint(&w, s->tab.epoch);
    ppdb_mpw_uint(&w, PPDB_SWIM_K_NEWS_LSEQ);
    ppdb_mpw_uint(&w, s->tab.lseq);
    int rc = ppdb_mpw_error(&w);
    if (rc == 0)
        rc = s->io.send_msg(s->io.ctx, to, PPDB_MSG_SWIM_NEWS, 0, b.data, b.len);
    ppdb_buf_deinit(&b);
    return rc;
}

/* News travel up the partner tree at once (a new member brings the delta
 * timer in) but down it only at each child's next pull, which backs off
 * to minutes in a quiet mesh. So at each delta tick a node tells every
 * child that pulled from it and lacks some of its changes (its `pushed`
 * watermark is behind) with one small datagram; the child pulls now. A
 * child keeps being told, once a tick, until it has pulled. */
static void tell_children(struct ppdb_swim *s)
{
    push_epoch_check(s);
    uint64_t now = now_ms(s);
    for (uint32_t k = 0; k < PPDB_SWIM_PARTNERS; k++) {
        const struct ppdb_swim_partner *p = &s->partners[k];
        if (!p->used || !p->puller || (int32_t)k == s->sticky || p->pushed >= s->tab.lseq ||
            now - p->used_ms > PPDB_SWIM_NEWS_AGE_MS)
            continue;
        if (send_news(s, &p->addr) != 0)
            s->stats.send_errors++;
        s->stats.msgs_out++;
        s->stats.news_sent++;
    }
}

/* Our parent has changes we have not pulled: pull now. */
static void on_news(struct ppdb_swim *s, const struct ppdb_addr *from, const msgpack_object *body)
{
    uint64_t epoch, lseq;
    if (s->sticky < 0 || ppdb_mp_get_u64(body, PPDB_SWIM_K_NEWS_EPOCH, &epoch) != 0 ||
        ppdb_mp_get_u64(body, PPDB_SWIM_K_NEWS_LSEQ, &lseq) != 0)
        return;
    const struct ppdb_swim_partner *p = &s->partners[s->sticky];
    if (!ppdb_addr_equal(&p->addr, from) || (epoch == p->epoch && lseq <= p->pulled))
        return;
    s->stats.news_received++;
    if (!partner_busy(s, s->sticky))
        arm(s, &s->delta_timer, 0);
}

static void delta_tick_cb(struct ppdb_timer *t)
{
    struct ppdb_swim *s = t->data;
    if (s->leaving)
        return;
    int32_t k = ppdb_swim_n(s) > 1 ? sticky_partner(s) : -1;
    uint32_t pick;
    if (k < 0 && ppdb_swim_n(s) > 1 && pick_random(s, NULL, 1, &pick) == 1) {
        /* a root (no smaller member known) still exchanges, each time with
         * a random member: that is how it learns of a smaller one, or how
         * the smallest of all hears what its children do not tell it */
        struct ppdb_addr addr = PPDB_SWIM_M(&s->tab, pick).addr;
        k = partner_get(s, &addr);
        s->partners[k].id = PPDB_SWIM_M(&s->tab, pick).id;
    }
    if (k >= 0 && !partner_busy(s, k))
        (void)delta_with(s, k);
    tell_children(s);
    uint32_t ms = s->delta_ms;
    arm(s, &s->delta_timer, ms - ms / 4 + ppdb_env_random_below(s->env, ms / 2 + 1));
}

/* True when a live (alive or suspect) member other than us has seed k's
 * address. The member found is remembered, so a seed that is a member
 * costs one lookup per push/pull tick, not a scan of the table. */
static bool seed_is_member(struct ppdb_swim *s, uint32_t k)
{
    const struct ppdb_addr *addr = &s->seeds[k];
    if (s->seed_known[k]) {
        uint32_t i = ppdb_swim_table_find(&s->tab, &s->seed_member[k]);
        if (i != UINT32_MAX && probeable(&PPDB_SWIM_M(&s->tab, i)) &&
            ppdb_addr_equal(&PPDB_SWIM_M(&s->tab, i).addr, addr))
            return true;
        s->seed_known[k] = false;
    }
    for (uint32_t i = 0; i < s->tab.len; i++) {
        const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
        if (m->state <= PPDB_MEMBER_SUSPECT && ppdb_addr_equal(&m->addr, addr)) {
            s->seed_member[k] = m->id;
            s->seed_known[k] = true;
            return true;
        }
    }
    return false;
}

/* Contacts candidate k unless it is in our mesh, busy or tried lately. */
static void try_seed(struct ppdb_swim *s, uint32_t k, bool join)
{
    uint64_t now = now_ms(s);
    if (s->seed_pending[k] ||
        (s->seed_tried_ms[k] != 0 && now - s->seed_tried_ms[k] < PPDB_SWIM_SEED_RETRY_MS))
        return;
    if (!join && seed_is_member(s, k))
        return;
    s->seed_tried_ms[k] = now ? now : 1;
    if (sync_with(s, &s->seeds[k], join, (int32_t)k) == 0)
        s->seed_pending[k] = true;
}

int ppdb_swim_add_seed(struct ppdb_swim *s, const struct ppdb_addr *addr)
{
    PPDB_ASSERT(addr != NULL && addr->family != 0);
    if (ppdb_addr_equal(addr, &PPDB_SWIM_M(&s->tab, self_index(s)).addr))
        return 0;
    for (uint32_t k = 0; k < s->nseeds; k++)
        if (ppdb_addr_equal(&s->seeds[k], addr))
            return 0;
    if (s->nseeds >= PPDB_NODE_MAX_SEEDS)
        return PPDB_ELIMIT;
    uint32_t k = s->nseeds++;
    s->seeds[k] = *addr;
    s->seed_tried_ms[k] = 0;
    s->seed_pending[k] = false;
    if (s->started && !s->leaving)
        try_seed(s, k, ppdb_swim_n(s) <= 1);
    return 0;
}

static void sync_tick_cb(struct ppdb_timer *t)
{
    struct ppdb_swim *s = t->data;
    if (s->leaving)
        return;
    uint32_t n = ppdb_swim_n(s);
    if (n <= 1 && s->nseeds > 0) { /* alone: (re)join through the seeds */
        for (uint32_t k = 0; k < s->nseeds; k++)
            if (!s->seed_pending[k] && sync_with(s, &s->seeds[k], true, (int32_t)k) == 0)
                s->seed_pending[k] = true;
        arm(s, &s->sync_timer,
            PPDB_MIN(s->p.sync_timeout_ms, 2000u) + ppdb_env_random_below(s->env, 1000));
        return;
    }
    /* in a mesh: seeds that are not members may lead to another mesh */
    for (uint32_t k = 0; k < s->nseeds; k++)
        try_seed(s, k, false);
    /* while deltas bring news the views differ anyway: a full exchange now
     * would only repeat what the partner tree is delivering */
    bool deltas_busy = s->sticky >= 0 && now_ms(s) - s->delta_news_ms < PPDB_SWIM_DELTA_QUIET_MS;
    uint32_t pick;
    if (!deltas_busy && pick_random(s, NULL, 1, &pick) == 1) {
        struct ppdb_addr to = PPDB_SWIM_M(&s->tab, pick).addr;
        (void)digest_with(s, &to);
    }
    uint64_t base = ppdb_swim_push_pull_ms(&s->p, n);
    arm(s, &s->sync_timer, base / 2 + ppdb_env_random_below(s->env, base));
}

/* ------------------------------------------------------------ reaping */

static void reap_cb(struct ppdb_timer *t)
{
    struct ppdb_swim *s = t->data;
    uint64_t now = now_ms(s);
    if (s->tab.count[PPDB_MEMBER_DEAD] + s->tab.count[PPDB_MEMBER_LEFT] > 0) {
        for (uint32_t i = s->tab.len; i-- > 0;) {
            const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
            if ((m->state == PPDB_MEMBER_DEAD || m->state == PPDB_MEMBER_LEFT) &&
                now - m->state_ms >= s->p.reap_ms && !is_self(s, i)) {
                ppdb_swim_table_remove(&s->tab, i);
                s->stats.members_reaped++;
            }
        }
    }
    arm(s, &s->reap_timer, PPDB_MAX(1000u, s->p.reap_ms / 4));
}

/* ------------------------------------------------------------ lifecycle */

int ppdb_swim_init(struct ppdb_swim *s, struct ppdb_env *env, const struct ppdb_swim_params *p,
                   const struct ppdb_swim_io *io, const struct ppdb_node_id *self_id,
                   const struct ppdb_addr *self_addr, uint64_t incarnation, const uint8_t *meta,
                   uint32_t meta_len)
{
    PPDB_ASSERT(io->send_msg && io->sync_request);
    memset(s, 0, sizeof(*s));
    if (p->max_suspicions == 0 || p->max_probes == 0 || p->max_broadcasts == 0 ||
        p->max_members < 2 || p->max_members > PPDB_SWIM_TABLE_MAX || p->probe_interval_ms == 0 ||
        p->probe_timeout_ms == 0 || p->probe_timeout_ms >= p->probe_interval_ms ||
        p->gossip_interval_ms == 0 || meta_len > PPDB_MEMBER_META_MAX ||
        p->max_suspicions >= UINT16_MAX)
        return PPDB_EINVAL;
    s->env = env;
    s->p = *p;
    s->io = *io;
    s->self_id = *self_id;
    int rc = ppdb_swim_table_init(&s->tab, p->max_members, ppdb_env_random_u64(env));
    s->tab.epoch = ppdb_env_random_u64(env) | 1; /* a restarted node numbers anew */
    s->sticky = -1;
    s->delta_ms = PPDB_SWIM_DELTA_MIN_MS;
    if (rc == 0)
        rc = ppdb_swim_queue_init(&s->queue, p->max_broadcasts);
    s->susps = ppdb_calloc(p->max_suspicions, sizeof(*s->susps));
    s->relays = ppdb_calloc(p->max_probes, sizeof(*s->relays));
    if (rc == 0 && (!s->susps || !s->relays))
        rc = PPDB_ENOMEM;
    if (rc) {
        ppdb_swim_deinit(s);
        return rc;
    }
    /* suspicion and relay slots (and their timers) are set up when first
     * taken: untouched pages of the pools cost no resident memory */
    ppdb_timer_init(&s->tick_timer, tick_cb, s);
    ppdb_timer_init(&s->probe_timer, probe_timeout_cb, s);
    ppdb_timer_init(&s->gossip_timer, gossip_cb, s);
    ppdb_timer_init(&s->sync_timer, sync_tick_cb, s);
    ppdb_timer_init(&s->reap_timer, reap_cb, s);
    ppdb_timer_init(&s->leave_timer, leave_done_cb, s);
    ppdb_timer_init(&s->delta_timer, delta_tick_cb, s);
    struct ppdb_swim_member self = {.id = *self_id,
                                    .state = PPDB_MEMBER_ALIVE,
                                    .version = PPDB_SWIM_VERSION,
                                    .addr = *self_addr,
                                    .incarnation = incarnation,
                                    .state_ms = now_ms(s)};
    uint32_t i;
    rc = ppdb_swim_table_add(&s->tab, &self, meta, meta_len, &i);
    if (rc) {
        ppdb_swim_deinit(s);
        return rc;
    }
    s->digest = live_share(s, i);
    return 0;
}

void ppdb_swim_deinit(struct ppdb_swim *s)
{
    if (!s->env)
        return;
    struct ppdb_timer *timers[] = {&s->tick_timer, &s->probe_timer, &s->gossip_timer,
                                   &s->sync_timer, &s->reap_timer,  &s->leave_timer,
                                   &s->delta_timer};
    for (size_t k = 0; k < PPDB_ARRAY_LEN(timers); k++)
        if (timers[k]->cb)
            ppdb_env_timer_cancel(s->env, timers[k]);
    for (uint32_t k = 0; s->susps && k < s->p.max_suspicions; k++)
        if (s->susps[k].timer.cb) /* set up once taken */
            ppdb_env_timer_cancel(s->env, &s->susps[k].timer);
    for (uint32_t k = 0; s->relays && k < s->p.max_probes; k++)
        if (s->relays[k].timer.cb)
            ppdb_env_timer_cancel(s->env, &s->relays[k].timer);
    ppdb_free(s->susps);
    ppdb_free(s->relays);
    ppdb_swim_queue_deinit(&s->queue);
    ppdb_swim_table_deinit(&s->tab);
    s->env = NULL;
}

int ppdb_swim_start(struct ppdb_swim *s, const struct ppdb_addr *seeds, uint32_t nseeds)
{
    if (s->started || nseeds > PPDB_NODE_MAX_SEEDS)
        return PPDB_EINVAL;
    for (uint32_t k = 0; k < nseeds; k++) /* after any added before the start */
        if (ppdb_swim_add_seed(s, &seeds[k]) != 0)
            return PPDB_EINVAL;
    s->started = true;
    uint32_t i = self_index(s);
    enqueue(s, i, PPDB_MEMBER_ALIVE, PPDB_SWIM_M(&s->tab, i).incarnation, NULL);
    arm(s, &s->tick_timer, ppdb_env_random_below(s->env, s->p.probe_interval_ms));
    arm(s, &s->reap_timer, PPDB_MAX(1000u, s->p.reap_ms / 4));
    if (s->nseeds > 0) /* one seed; the next when it fails */
        try_seed(s, (uint32_t)ppdb_env_random_below(s->env, s->nseeds), true);
    arm(s, &s->delta_timer,
        PPDB_SWIM_DELTA_MIN_MS + ppdb_env_random_below(s->env, PPDB_SWIM_DELTA_MIN_MS));
    uint64_t first =
        s->nseeds ? PPDB_MIN(s->p.sync_timeout_ms, 2000u) : ppdb_swim_push_pull_ms(&s->p, 1);
    arm(s, &s->sync_timer, first + ppdb_env_random_below(s->env, 1000));
    return 0;
}

static void leave_done_cb(struct ppdb_timer *t)
{
    struct ppdb_swim *s = t->data;
    s->left = true;
    ppdb_env_timer_cancel(s->env, &s->gossip_timer);
    ppdb_env_timer_cancel(s->env, &s->sync_timer);
    ppdb_env_timer_cancel(s->env, &s->delta_timer);
    if (s->leave_cb)
        s->leave_cb(s->leave_data, 0);
}

int ppdb_swim_leave(struct ppdb_swim *s, ppdb_node_done_cb cb, void *data)
{
    if (!s->started || s->leaving)
        return PPDB_EINVAL;
    s->leaving = true;
    s->leave_cb = cb;
    s->leave_data = data;
    ppdb_env_timer_cancel(s->env, &s->tick_timer);
    finish_probe(s);
    uint32_t i = self_index(s);
    set_state(s, i, PPDB_MEMBER_LEFT, PPDB_SWIM_M(&s->tab, i).incarnation);
    enqueue(s, i, PPDB_MEMBER_LEFT, PPDB_SWIM_M(&s->tab, i).incarnation, NULL);
    arm(s, &s->leave_timer, s->p.leave_ms);
    return 0;
}

void ppdb_swim_member_info(const struct ppdb_swim *s, uint32_t i, struct ppdb_member_info *out)
{
    PPDB_ASSERT(i < s->tab.len);
    const struct ppdb_swim_member *m = &PPDB_SWIM_M(&s->tab, i);
    out->id = m->id;
    out->addr = m->addr;
    out->incarnation = m->incarnation;
    out->state = m->state;
    out->version = m->version;
    out->self = is_self(s, i);
    out->state_ms = m->state_ms;
    out->rtt_ms = m->rtt_ms;
    out->meta_len = m->meta_len;
    memcpy(out->meta, ppdb_swim_table_meta(&s->tab, i), m->meta_len);
    ppdb_swim_meta_decode(out->meta, out->meta_len, out);
}
