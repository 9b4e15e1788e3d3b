/*
 * pingpong.c - ping/pong with retries and timeouts, as an I/O-free state
 * machine (see pingpong.h).
 *
 * Outstanding pings live in a fixed array of max_inflight slots; a slot is
 * free when its `to.family` is 0. Each slot owns one env timer: on expiry the
 * ping is resent until max_attempts, then reported as timed out. A pong is
 * matched by (request id, sender address); anything else is counted and
 * dropped. Invariant: inflight == number of used slots.
 */
#include "pingpong.h"

#include "ppdb_mp.h"

enum { PP_KIND_PING = 1, PP_KIND_PONG = 2 };
enum { PP_KEY_KIND = 0, PP_KEY_ID = 1, PP_KEY_ATTEMPT = 2 };

struct ppdb_pingpong_req {
    struct ppdb_pingpong *pp;
    struct ppdb_addr to; /* family 0: slot free */
    uint64_t id;
    uint64_t sent_ms; /* of the current attempt */
    uint32_t attempt;
    struct ppdb_timer timer;
};

void ppdb_pingpong_options_default(struct ppdb_pingpong_options *o)
{
    o->timeout_ms = 500;
    o->max_attempts = 3;
    o->max_inflight = 64;
}

static int send_packet(struct ppdb_pingpong *pp, const struct ppdb_addr *to, int kind, uint64_t id,
                       uint32_t attempt)
{
    uint8_t storage[PPDB_PINGPONG_MAX_PACKET];
    struct ppdb_buf b = {.data = storage, .len = 0, .cap = sizeof(storage)};
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, &b);
    ppdb_mpw_map(&w, 3);
    ppdb_mpw_uint(&w, PP_KEY_KIND);
    ppdb_mpw_uint(&w, (uint64_t)kind);
    ppdb_mpw_uint(&w, PP_KEY_ID);
    ppdb_mpw_uint(&w, id);
    ppdb_mpw_uint(&w, PP_KEY_ATTEMPT);
    ppdb_mpw_uint(&w, attempt);
    /* 3 small keys and two u64 fit the fixed buffer: it never grows */
    PPDB_ASSERT(ppdb_mpw_error(&w) == 0 && b.data == storage);
    int rc = ppdb_env_udp_send(pp->env, pp->udp, to, b.data, b.len);
    if (rc)
        pp->stats.send_errors++;
    return rc;
}

static void send_attempt(struct ppdb_pingpong_req *r)
{
    struct ppdb_pingpong *pp = r->pp;
    r->attempt++;
    r->sent_ms = ppdb_env_mono_ms(pp->env);
    pp->stats.pings_sent++;
    (void)send_packet(pp, &r->to, PP_KIND_PING, r->id, r->attempt);
    int rc = ppdb_env_timer_arm(pp->env, &r->timer, pp->opts.timeout_ms);
    PPDB_ASSERT(rc == 0); /* one timer per slot: the env's bound covers it */
}

static void finish(struct ppdb_pingpong_req *r, int status, uint64_t rtt_ms)
{
    struct ppdb_pingpong *pp = r->pp;
    struct ppdb_addr to = r->to;
    uint32_t attempts = r->attempt;
    ppdb_env_timer_cancel(pp->env, &r->timer);
    r->to.family = 0;
    pp->inflight--;
    if (status == 0)
        pp->stats.successes++;
    else
        pp->stats.timeouts++;
    pp->done_cb(pp->done_data, &to, status, rtt_ms, attempts);
}

static void timeout_cb(struct ppdb_timer *t)
{
    struct ppdb_pingpong_req *r = t->data;
    if (r->attempt >= r->pp->opts.max_attempts) {
        finish(r, PPDB_ETIMEDOUT, 0);
        return;
    }
    r->pp->stats.retries++;
    send_attempt(r);
}

int ppdb_pingpong_init(struct ppdb_pingpong *pp, struct ppdb_env *env, struct ppdb_udp *udp,
                       const struct ppdb_pingpong_options *opts, ppdb_pingpong_done_cb cb,
                       void *data)
{
    memset(pp, 0, sizeof(*pp));
    if (opts)
        pp->opts = *opts;
    else
        ppdb_pingpong_options_default(&pp->opts);
    if (pp->opts.max_attempts == 0 || pp->opts.max_inflight == 0 || pp->opts.timeout_ms == 0)
        return PPDB_EINVAL;
    pp->reqs = ppdb_calloc(pp->opts.max_inflight, sizeof(*pp->reqs));
    if (!pp->reqs)
        return PPDB_ENOMEM;
    for (uint32_t i = 0; i < pp->opts.max_inflight; i++) {
        pp->reqs[i].pp = pp;
        ppdb_timer_init(&pp->reqs[i].timer, timeout_cb, &pp->reqs[i]);
    }
    pp->env = env;
    pp->udp = udp;
    pp->done_cb = cb;
    pp->done_data = data;
    pp->next_id = 1;
    return 0;
}

void ppdb_pingpong_deinit(struct ppdb_pingpong *pp)
{
    for (uint32_t i = 0; pp->reqs && i < pp->opts.max_inflight; i++)
        ppdb_env_timer_cancel(pp->env, &pp->reqs[i].timer);
    ppdb_free(pp->reqs);
    pp->reqs = NULL;
}

int ppdb_pingpong_ping(struct ppdb_pingpong *pp, const struct ppdb_addr *to)
{
    PPDB_ASSERT(to->family != 0);
    if (pp->inflight == pp->opts.max_inflight) {
        pp->stats.rejected++;
        return PPDB_ELIMIT;
    }
    struct ppdb_pingpong_req *r = pp->reqs;
    while (r->to.family != 0) /* a free slot exists: inflight < max */
        r++;
    r->to = *to;
    r->id = pp->next_id++;
    r->attempt = 0;
    pp->inflight++;
    send_attempt(r);
    return 0;
}

static struct ppdb_pingpong_req *find_req(struct ppdb_pingpong *pp, uint64_t id,
                                          const struct ppdb_addr *from)
{
    for (uint32_t i = 0; i < pp->opts.max_inflight; i++) {
        struct ppdb_pingpong_req *r = &pp->reqs[i];
        if (r->to.family != 0 && r->id == id && ppdb_addr_equal(&r->to, from))
            return r;
    }
    return NULL;
}

int ppdb_pingpong_on_message(struct ppdb_pingpong *pp, const struct ppdb_addr *from,
                             const uint8_t *buf, size_t len)
{
    struct ppdb_mp_doc doc;
    uint64_t kind, id;
    uint32_t attempt;
    int rc = ppdb_mp_parse(buf, len, NULL, &doc, NULL);
    if (rc) {
        pp->stats.bad_packets++;
        return rc;
    }
    if ((rc = ppdb_mp_get_u64(&doc.root, PP_KEY_KIND, &kind)) != 0 ||
        (rc = ppdb_mp_get_u64(&doc.root, PP_KEY_ID, &id)) != 0 ||
        (rc = ppdb_mp_get_u32(&doc.root, PP_KEY_ATTEMPT, &attempt)) != 0 ||
        (kind != PP_KIND_PING && kind != PP_KIND_PONG)) {
        ppdb_mp_doc_deinit(&doc);
        pp->stats.bad_packets++;
        return rc ? rc : PPDB_EPROTO;
    }
    ppdb_mp_doc_deinit(&doc);
    if (kind == PP_KIND_PING) {
        pp->stats.pongs_sent++;
        return send_packet(pp, from, PP_KIND_PONG, id, attempt);
    }
    struct ppdb_pingpong_req *r = find_req(pp, id, from);
    if (!r) {
        pp->stats.late_pongs++;
        return PPDB_ENOTFOUND;
    }
    /* a pong to an earlier attempt still proves the peer answers */
    finish(r, 0, ppdb_env_mono_ms(pp->env) - r->sent_ms);
    return 0;
}
