/*
 * test_swim_hand.h - SWIM instances (peer/swim.c) on a hand-driven env
 * for unit tests: a settable clock, a seeded RNG, and timers that are
 * only recorded (the test fires the one it means to). Datagrams are kept
 * (the last few per peer) for the test to deliver or drop; a sync request
 * is kept until the test delivers it.
 */
#ifndef PPDB_TESTS_SWIM_HAND_H
#define PPDB_TESTS_SWIM_HAND_H

#include <msgpack.h>

#include "../check.h"
#include "../../peer/swim.h"

/* ------------------------------------------------------- hand-driven env */

struct hand_env {
    struct ppdb_env env;
    uint64_t now_ms;
    struct ppdb_rng rng;
};

static inline uint64_t hand_mono(struct ppdb_env *e)
{
    return ((struct hand_env *)e)->now_ms;
}
static inline int64_t hand_wall(struct ppdb_env *e)
{
    return (int64_t)((struct hand_env *)e)->now_ms;
}
static inline int hand_arm(struct ppdb_env *e, struct ppdb_timer *t, uint64_t delay_ms)
{
    t->due_ms = ((struct hand_env *)e)->now_ms + delay_ms;
    t->heap_index = 0; /* "armed" */
    return 0;
}
static inline void hand_cancel(struct ppdb_env *e, struct ppdb_timer *t)
{
    (void)e;
    t->heap_index = PPDB_TIMER_IDLE;
}
static inline void hand_random(struct ppdb_env *e, void *buf, size_t len)
{
    struct hand_env *s = (struct hand_env *)e;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)ppdb_rng_next(&s->rng);
}
static const struct ppdb_env_ops hand_ops = {
    .mono_ms = hand_mono,
    .wall_ms = hand_wall,
    .timer_arm = hand_arm,
    .timer_cancel = hand_cancel,
    .random = hand_random,
};

/* ------------------------------------------------------------ transport */

struct pending {
    bool used;
    struct ppdb_addr to;
    struct ppdb_buf body;
    ppdb_swim_sync_done_cb cb;
    void *cb_data;
};

#define HAND_OUTBOX 8

struct dgram {
    struct ppdb_addr to;
    uint32_t type;
    uint64_t rid;
    uint8_t body[PPDB_SWIM_BODY_MAX];
    size_t len;
};

struct peer {
    struct hand_env env;
    struct dgram out[HAND_OUTBOX];
    uint64_t nsent; /* datagrams sent so far; the last ones are in out */
    struct ppdb_swim swim;
    struct ppdb_node_id id;
    struct ppdb_addr addr;
    struct pending req; /* one outstanding request is all these tests need */
};

/* Keeps the last HAND_OUTBOX datagrams a peer sent (older ones are
 * dropped), for a test to look at or deliver. */
static inline int io_send(void *ctx, const struct ppdb_addr *to, uint32_t type, uint64_t rid,
                          const uint8_t *body, size_t len)
{
    struct peer *p = ctx;
    struct dgram *d = &p->out[p->nsent++ % HAND_OUTBOX];
    CHECK_LE(len, sizeof(d->body));
    d->to = *to;
    d->type = type;
    d->rid = rid;
    memcpy(d->body, body, len);
    d->len = len;
    return 0;
}

static inline int io_sync(void *ctx, const struct ppdb_addr *to, const uint8_t *body, size_t len,
                          uint32_t timeout_ms, ppdb_swim_sync_done_cb cb, void *cb_data)
{
    struct peer *p = ctx;
    (void)timeout_ms;
    if (p->req.used)
        return PPDB_ELIMIT;
    p->req.used = true;
    p->req.to = *to;
    ppdb_buf_init(&p->req.body);
    CHECK_OK(ppdb_buf_append(&p->req.body, body, len));
    p->req.cb = cb;
    p->req.cb_data = cb_data;
    return 0;
}

static inline void peer_init(struct peer *p, uint8_t tag, uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    p->env.env.ops = &hand_ops;
    p->env.env.log = ppdb_logger_default();
    p->env.now_ms = 1000;
    ppdb_rng_seed(&p->env.rng, seed);
    memset(p->id.b, tag, sizeof(p->id.b));
    ppdb_addr_ipv4(&p->addr, 127, 0, 0, tag, 7000);
    struct ppdb_swim_params prm;
    CHECK_OK(ppdb_swim_profile("lan-default", &prm));
    prm.max_broadcasts = 256;
    prm.max_suspicions = 16;
    prm.max_probes = 16;
    struct ppdb_swim_io io = {.send_msg = io_send, .sync_request = io_sync, .ctx = p};
    CHECK_OK(ppdb_swim_init(&p->swim, &p->env.env, &prm, &io, &p->id, &p->addr, 1, NULL, 0));
}

static inline void peer_deinit(struct peer *p)
{
    if (p->req.used)
        ppdb_buf_deinit(&p->req.body);
    ppdb_swim_deinit(&p->swim);
}

/* A member of nobody: id from k, alive at inc. */
static inline void fake_member(struct ppdb_swim *s, uint32_t k, uint64_t inc)
{
    struct ppdb_swim_rec r;
    memset(&r, 0, sizeof(r));
    r.state = PPDB_MEMBER_ALIVE;
    r.full = true;
    memcpy(r.id.b, "fake", 4);
    memcpy(r.id.b + 4, &k, sizeof(k));
    r.incarnation = inc;
    ppdb_addr_ipv4(&r.addr, 10, (uint8_t)(k >> 16), (uint8_t)(k >> 8), (uint8_t)k, 7000);
    r.version = PPDB_SWIM_VERSION;
    ppdb_swim_apply(s, &r);
}

struct reply_info {
    uint32_t count, wm;
    bool delta, more, has_wm;
};

static inline void body_info(const msgpack_object *o, struct reply_info *ri)
{
    memset(ri, 0, sizeof(*ri));
    CHECK_OK(ppdb_mp_get_u32(o, PPDB_SWIM_K_COUNT, &ri->count));
    (void)ppdb_mp_get_bool(o, PPDB_SWIM_K_DELTA, &ri->delta);
    (void)ppdb_mp_get_bool(o, PPDB_SWIM_K_MORE, &ri->more);
    ri->has_wm = ppdb_mp_get_u32(o, PPDB_SWIM_K_WATERMARK, &ri->wm) == 0;
}

/* Delivers from's outstanding request to `to` and its reply back; the
 * request's and the reply's figures into rq and rp. */
static inline void exchange(struct peer *from, struct peer *to, struct reply_info *rq,
                            struct reply_info *rp)
{
    CHECK(from->req.used);
    struct pending q = from->req;
    from->req.used = false;
    msgpack_unpacked req, rep;
    msgpack_unpacked_init(&req);
    msgpack_unpacked_init(&rep);
    CHECK_EQ(msgpack_unpack_next(&req, (const char *)q.body.data, q.body.len, NULL),
             MSGPACK_UNPACK_SUCCESS);
    body_info(&req.data, rq);
    struct ppdb_buf reply;
    ppdb_buf_init(&reply);
    CHECK_OK(ppdb_swim_on_sync(&to->swim, &from->id, &req.data, &reply));
    CHECK_EQ(msgpack_unpack_next(&rep, (const char *)reply.data, reply.len, NULL),
             MSGPACK_UNPACK_SUCCESS);
    body_info(&rep.data, rp);
    q.cb(q.cb_data, 0, &rep.data);
    msgpack_unpacked_destroy(&req);
    msgpack_unpacked_destroy(&rep);
    ppdb_buf_deinit(&reply);
    ppdb_buf_deinit(&q.body);
}

/* Fires timer t of p as the env would: the clock moves to its due time. */
static inline void fire(struct peer *p, struct ppdb_timer *t)
{
    CHECK(ppdb_timer_armed(t));
    p->env.now_ms = PPDB_MAX(p->env.now_ms, t->due_ms);
    t->heap_index = PPDB_TIMER_IDLE;
    t->cb(t);
}

static inline void fire_delta(struct peer *p)
{
    fire(p, &p->swim.delta_timer);
}

#endif
