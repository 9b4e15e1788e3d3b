/*
 * world.c - the simulated world: nodes, the one event queue, the run loop,
 * the trace hash, crashes.
 *
 * Why one queue: with a single (due_ms, seq) queue (queue.c) for every node timer and
 * every world event, the run is one total order; the heap's insertion seq is
 * the only tie-break, so a seed and the same sequence of calls reproduce the
 * same run bit for bit. Nothing is ever ordered by a pointer or a hash.
 *
 * Invariants: the clock never goes back (an entry is never due before
 * now_ms); events_queued counts the world events in the queue, the rest are
 * node timers; every world event lives in exactly one place (the queue, an
 * end's parked list, or the code that is running it) and is released once;
 * no callback of a crashed node runs.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sim_internal.h"

#define SIM_MAX_INDEX ((1u << 24) - 3u) /* 127.0.0.2 .. 127.255.255.255 */

void ppdb_sim_options_default(struct ppdb_sim_options *o)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->link.latency_ms = 1;
    o->link.jitter_ms = 2;
    o->link.loss = 0.0;
    o->wall_epoch_ms = 1700000000000ll;
    o->max_nodes = 100000;
    o->max_events = 1u << 20;
    o->max_timers = 1u << 20;
    o->max_link_overrides = 65536;
    o->max_handles = 256;
    o->max_browsers = 8;
    o->max_datagram = 65507;
    o->max_stream_pending = 16u << 20;
    o->max_events_per_run = 1000000000ull;
    o->work_delay_ms = 1;
    o->log_level = PPDB_LOG_WARN;
    o->service_type = "_ppdb._udp";
    o->egress_bytes_per_s = 0;
    o->max_egress_queue_ms = 1000;
    o->partition_connect_ms = 3000;
    o->stream_retransmit_ms = 1000;
    o->stream_timeout_ms = 120000;
}

static bool options_valid(const struct ppdb_sim_options *o)
{
    return o->max_nodes > 0 && o->max_nodes <= SIM_MAX_INDEX + 1 && o->max_events > 0 &&
           o->max_timers > 0 && (uint64_t)o->max_events + o->max_timers < UINT32_MAX / 2 &&
           o->link.loss >= 0.0 && o->link.loss <= 1.0 && o->link.dup >= 0.0 && o->link.dup <= 1.0 &&
           o->link.reorder >= 0.0 && o->link.reorder <= 1.0 &&
           o->link.dist <= PPDB_SIM_DIST_PARETO && o->max_handles > 0 && o->max_datagram > 0 &&
           o->max_events_per_run > 0 && o->service_type &&
           strlen(o->service_type) < PPDB_SVC_NAME_MAX;
}

int ppdb_sim_new(const struct ppdb_sim_options *o, struct ppdb_sim **out)
{
    struct ppdb_sim_options def;
    if (!o) {
        ppdb_sim_options_default(&def);
        o = &def;
    }
    if (!options_valid(o))
        return PPDB_EINVAL;
    struct ppdb_sim *sim = ppdb_calloc(1, sizeof(*sim));
    if (!sim)
        return PPDB_ENOMEM;
    sim->opts = *o;
    /* World events a node did not start directly (replies, resets, close
     * completions) may exceed max_events by a bounded amount: room for half
     * as many again keeps them from overflowing. */
    uint32_t cap = o->max_events + o->max_events / 2 + o->max_timers;
    int rc = sim_queue_init(&sim->queue, cap);
    if (rc) {
        ppdb_free(sim);
        return rc;
    }
    sim->trace = ppdb_mix64(o->seed ^ 0x5349d0c0ffeeull);
    sim->current = UINT32_MAX;
    *out = sim;
    return 0;
}

static void pool_free_all(struct ppdb_sim *sim);

static void release_queue(struct ppdb_sim *sim)
{
    struct ppdb_timer *t;
    while ((t = sim_queue_pop(&sim->queue)) != NULL) {
        if (t->cb != sim_event_fire_cb)
            continue; /* a node timer: now disarmed, the memory is its owner's */
        sim->events_queued--;
        sim_event_release(sim, PPDB_CONTAINER_OF(t, struct sim_event, timer));
    }
}

void ppdb_sim_free(struct ppdb_sim *sim)
{
    if (!sim)
        return;
    sim->freeing = true;
    release_queue(sim);
    for (uint32_t i = 0; i < sim->node_count; i++) {
        struct sim_node *n = sim->nodes[i];
        sim_drop_held(sim, n);
        sim_stream_free_all(n);
        sim_udp_free_all(n);
        sim_discovery_crash(n);
    }
    PPDB_ASSERT_CMP(sim->stats.events_live, ==, 0);
    for (uint32_t i = 0; i < sim->node_count; i++)
        ppdb_free(sim->nodes[i]);
    ppdb_free(sim->nodes);
    ppdb_free(sim->links);
    pool_free_all(sim);
    sim_queue_deinit(&sim->queue);
    ppdb_free(sim);
}

/* ------------------------------------------------------------------ nodes */

static int64_t node_clock_cb(void *arg)
{
    const struct sim_node *n = arg;
    return (int64_t)n->sim->now_ms;
}

static int grow_nodes(struct ppdb_sim *sim)
{
    if (sim->node_count < sim->node_cap)
        return 0;
    uint32_t cap = sim->node_cap ? sim->node_cap * 2 : 64;
    struct sim_node **nodes = ppdb_realloc(sim->nodes, (size_t)cap * sizeof(*nodes));
    if (!nodes)
        return PPDB_ENOMEM;
    sim->nodes = nodes;
    sim->node_cap = cap;
    return 0;
}

int ppdb_sim_add_node(struct ppdb_sim *sim, const char *name, struct ppdb_env **env_out,
                      uint32_t *index_out)
{
    if (sim->node_count >= sim->opts.max_nodes) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    int rc = grow_nodes(sim);
    if (rc)
        return rc;
    struct sim_node *n = ppdb_calloc(1, sizeof(*n));
    if (!n)
        return PPDB_ENOMEM;
    n->sim = sim;
    n->index = sim->node_count;
    n->next_port = 49152;
    n->egress_bytes_per_s = sim->opts.egress_bytes_per_s;
    /* Two independent streams per node, both functions of (seed, index):
     * what one node draws never shifts another node's draws. */
    ppdb_rng_seed(&n->rng, ppdb_mix64(sim->opts.seed) ^ ppdb_mix64(2ull * n->index + 1));
    ppdb_rng_seed(&n->net_rng, ppdb_mix64(sim->opts.seed) ^ ppdb_mix64(2ull * n->index + 2));
    char def[24];
    if (!name) {
        snprintf(def, sizeof(def), "n%u", n->index);
        name = def;
    }
    ppdb_logger_init(&n->log, sim->opts.log_level, name);
    n->log.clock = node_clock_cb;
    n->log.clock_arg = n;
    n->log.sink = sim->opts.log_sink;
    n->log.sink_arg = sim->opts.log_sink_arg;
    sim_node_env_init(n);
    sim->nodes[sim->node_count++] = n;
    if (env_out)
        *env_out = &n->env;
    if (index_out)
        *index_out = n->index;
    return 0;
}

uint32_t ppdb_sim_node_count(const struct ppdb_sim *sim)
{
    return sim->node_count;
}

struct sim_node *sim_node_at(const struct ppdb_sim *sim, uint32_t index)
{
    PPDB_ASSERT_CMP(index, <, sim->node_count);
    return sim->nodes[index];
}

struct ppdb_env *ppdb_sim_node_env(struct ppdb_sim *sim, uint32_t index)
{
    return &sim_node_at(sim, index)->env;
}

struct sim_node *sim_node_of_env(struct ppdb_env *env)
{
    PPDB_ASSERT(env->ops == &sim_env_ops);
    return (struct sim_node *)(void *)env;
}

void ppdb_sim_node_addr(const struct ppdb_sim *sim, uint32_t index, uint16_t port,
                        struct ppdb_addr *out)
{
    PPDB_ASSERT_CMP(index, <=, SIM_MAX_INDEX);
    (void)sim;
    uint32_t host = index + 2; /* 127.0.0.1 stays the ordinary loopback */
    ppdb_addr_ipv4(out, 127, (uint8_t)(host >> 16), (uint8_t)(host >> 8), (uint8_t)host, port);
}

void sim_node_addr_fill(const struct sim_node *n, uint16_t port, struct ppdb_addr *out)
{
    ppdb_sim_node_addr(n->sim, n->index, port, out);
}

int ppdb_sim_addr_node(const struct ppdb_sim *sim, const struct ppdb_addr *a, uint32_t *index_out)
{
    uint32_t idx = sim_addr_index(sim, a);
    if (idx == UINT32_MAX)
        return PPDB_ENOTFOUND;
    *index_out = idx;
    return 0;
}

void ppdb_sim_set_clock_skew(struct ppdb_sim *sim, uint32_t index, int64_t skew_ms)
{
    sim_node_at(sim, index)->skew_ms = skew_ms;
}

bool ppdb_sim_node_alive(const struct ppdb_sim *sim, uint32_t index)
{
    return !sim_node_at(sim, index)->crashed;
}

/* ----------------------------------------------------------------- events */

void sim_event_fire_cb(struct ppdb_timer *t)
{
    (void)t;
    /* World events are dispatched by run_one, never through their cb. */
    PPDB_ASSERT(!"world event fired outside the world loop");
}

/* Events of up to SIM_POOL_MAX bytes come from per-size free lists (one
 * per SIM_POOL_STEP bytes): a run makes and releases millions of them, and
 * a recycled block is usually still in cache. Larger ones (big stream
 * writes) go to the allocator. Pooled blocks return to the system at
 * ppdb_sim_free. */
static uint8_t pool_class(size_t size)
{
    return size <= SIM_POOL_MAX ? (uint8_t)((size + SIM_POOL_STEP - 1) / SIM_POOL_STEP) : 0;
}

void *sim_event_new(struct ppdb_sim *sim, uint8_t kind, size_t head, size_t tail, bool user)
{
    PPDB_ASSERT_CMP(head, >=, sizeof(struct sim_event));
    if (user && sim->stats.events_live >= sim->opts.max_events)
        return NULL;
    size_t size = head + tail;
    uint8_t c = pool_class(size);
    struct sim_event *ev = c ? sim->pool[c] : NULL;
    if (ev) {
        sim->pool[c] = ev->next;
    } else {
        ev = ppdb_malloc(c ? (size_t)c * SIM_POOL_STEP : size);
        if (!ev)
            return NULL;
    }
    memset(ev, 0, head); /* the payload after it is the caller's to fill */
    ppdb_timer_init(&ev->timer, sim_event_fire_cb, NULL);
    ev->kind = kind;
    ev->pool_class = c;
    sim->stats.events_live++;
    return ev;
}

static void pool_free_all(struct ppdb_sim *sim)
{
    for (uint32_t c = 0; c < PPDB_ARRAY_LEN(sim->pool); c++) {
        while (sim->pool[c]) {
            struct sim_event *ev = sim->pool[c];
            sim->pool[c] = ev->next;
            ppdb_free(ev);
        }
    }
}

int sim_event_push(struct ppdb_sim *sim, struct sim_event *ev, uint32_t owner, uint64_t due_ms)
{
    PPDB_ASSERT_CMP(due_ms, >=, sim->now_ms);
    PPDB_ASSERT_CMP(owner, <, sim->node_count);
    ev->timer.owner = owner;
    int rc = sim->freeing ? PPDB_ECLOSED : sim_queue_push(&sim->queue, &ev->timer, due_ms);
    if (rc) {
        if (!sim->freeing)
            sim->stats.overflow++;
        sim_event_release(sim, ev);
        return rc;
    }
    sim->events_queued++;
    if (sim->queue.len > sim->stats.queue_len_max)
        sim->stats.queue_len_max = sim->queue.len;
    return 0;
}

void sim_event_release(struct ppdb_sim *sim, struct sim_event *ev)
{
    PPDB_ASSERT(!ppdb_timer_armed(&ev->timer));
    switch (ev->kind) {
    case SIM_EV_DISCOVERY:
        sim_discovery_release((struct sim_discovery_event *)ev);
        break;
    case SIM_EV_UDP:
    case SIM_EV_WORK:
        break;
    default:
        sim_stream_release(sim, ev);
        break;
    }
    PPDB_ASSERT_CMP(sim->stats.events_live, >, 0);
    sim->stats.events_live--;
    if (ev->pool_class) {
        ev->next = sim->pool[ev->pool_class];
        sim->pool[ev->pool_class] = ev;
    } else {
        ppdb_free(ev);
    }
}

void sim_event_drop(struct ppdb_sim *sim, struct sim_event *ev)
{
    if (ev->kind == SIM_EV_UDP && !sim->freeing)
        sim->stats.dropped_down++;
    if (ev->kind >= SIM_EV_SYN && ev->kind <= SIM_EV_CLOSE_DONE && !sim->freeing) {
        sim_stream_drop(sim, ev);
        return;
    }
    sim_event_release(sim, ev);
}

/* --------------------------------------------------------------- the loop */

static uint64_t payload_hash(const struct sim_event *ev)
{
    if (ev->kind == SIM_EV_UDP) {
        const struct sim_udp_event *u = (const struct sim_udp_event *)ev;
        return ppdb_hash64(u->data, u->len, u->to.port);
    }
    if (ev->kind == SIM_EV_DATA) {
        const struct sim_data_event *d = (const struct sim_data_event *)ev;
        return ppdb_hash64(d->data, d->len, d->side);
    }
    if (ev->kind == SIM_EV_CONNECTED)
        return (uint64_t)(int64_t)((const struct sim_conn_event *)ev)->status;
    return 0;
}

static void trace_fold(struct ppdb_sim *sim, uint32_t node, uint8_t kind, uint64_t payload)
{
    uint64_t h = sim->trace;
    h = ppdb_mix64(h ^ sim->now_ms);
    h = ppdb_mix64(h ^ ((uint64_t)node << 8 | kind));
    h = ppdb_mix64(h ^ payload);
    sim->trace = h;
}

static void dispatch(struct ppdb_sim *sim, struct sim_event *ev)
{
    switch (ev->kind) {
    case SIM_EV_UDP:
        sim_udp_fire(sim, (struct sim_udp_event *)ev);
        break;
    case SIM_EV_DISCOVERY:
        sim_discovery_fire(sim, (struct sim_discovery_event *)ev);
        break;
    case SIM_EV_WORK:
        sim_work_fire(sim, (struct sim_work_event *)ev);
        break;
    default:
        sim_stream_fire(sim, ev);
        break;
    }
}

/* A paused node's entry waits in its held list (fault.c) until resume. */
static bool hold_entry(struct ppdb_sim *sim, struct sim_node *n, struct ppdb_timer *t)
{
    if (!sim_hold(n, t)) {
        sim->stats.overflow++; /* out of memory: the entry runs now instead */
        return false;
    }
    if (t->cb == sim_event_fire_cb)
        sim->events_queued--;
    return true;
}

static void run_one(struct ppdb_sim *sim)
{
    struct ppdb_timer *t = sim_queue_pop(&sim->queue);
    PPDB_ASSERT(t != NULL);
    PPDB_ASSERT_CMP(t->due_ms, >=, sim->now_ms);
    sim->now_ms = t->due_ms;
    struct sim_node *n = sim_node_at(sim, t->owner);
    if (n->paused && hold_entry(sim, n, t))
        return;
    struct sim_event *ev = NULL;
    uint8_t kind = SIM_EV_TIMER;
    uint64_t payload = t->seq;
    if (t->cb == sim_event_fire_cb) {
        ev = PPDB_CONTAINER_OF(t, struct sim_event, timer);
        kind = ev->kind;
        payload = payload_hash(ev);
        sim->events_queued--;
    }
    trace_fold(sim, n->index, kind, payload);
    sim->stats.events_processed++;
    n->stats.events_processed++;
    sim->current = n->index;
    if (!ev) {
        PPDB_ASSERT(!n->crashed); /* a crash removes the node's timers */
        sim->stats.timers_fired++;
        t->cb(t);
    } else if (n->crashed) {
        sim_event_drop(sim, ev);
    } else {
        dispatch(sim, ev);
    }
    sim->current = UINT32_MAX;
}

int ppdb_sim_step(struct ppdb_sim *sim)
{
    if (!sim_queue_peek(&sim->queue))
        return PPDB_ENOTFOUND;
    run_one(sim);
    return 0;
}

int ppdb_sim_run_until(struct ppdb_sim *sim, uint64_t t_ms)
{
    uint64_t ran = 0;
    for (;;) {
        struct ppdb_timer *t = sim_queue_peek(&sim->queue);
        if (!t || t->due_ms > t_ms)
            break;
        if (ran == sim->opts.max_events_per_run) {
            sim->stats.run_limit_hits++;
            PPDB_LOG(ppdb_logger_default(), PPDB_LOG_WARN, "sim", "event bound of a run reached",
                     "events=%llu now_ms=%llu", (unsigned long long)ran,
                     (unsigned long long)sim->now_ms);
            return PPDB_ELIMIT;
        }
        run_one(sim);
        ran++;
    }
    if (t_ms > sim->now_ms) {
        sim->now_ms = t_ms;
        sim_queue_advance(&sim->queue, t_ms);
    }
    return 0;
}

int ppdb_sim_run_for(struct ppdb_sim *sim, uint64_t d_ms)
{
    return ppdb_sim_run_until(sim, sim->now_ms + d_ms);
}

uint64_t ppdb_sim_now_ms(const struct ppdb_sim *sim)
{
    return sim->now_ms;
}

uint64_t ppdb_sim_trace_hash(const struct ppdb_sim *sim)
{
    return sim->trace;
}

void ppdb_sim_stats(const struct ppdb_sim *sim, struct ppdb_sim_stats *out)
{
    *out = sim->stats;
    out->queue_len = sim->queue.len;
}

void ppdb_sim_node_stats(const struct ppdb_sim *sim, uint32_t index,
                         struct ppdb_sim_node_stats *out)
{
    *out = sim_node_at(sim, index)->stats;
}

/* ----------------------------------------------------------------- crash */

static int cmp_seq(const void *a, const void *b)
{
    const struct ppdb_timer *x = *(struct ppdb_timer *const *)a;
    const struct ppdb_timer *y = *(struct ppdb_timer *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Removes every queue entry that would run on `index`, in seq order, and
 * applies each one's drop consequence (which may queue events elsewhere). */
static int drop_queued(struct ppdb_sim *sim, uint32_t index)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < sim->queue.used; i++) {
        const struct ppdb_timer *t = sim_queue_at(&sim->queue, i);
        count += t && t->owner == index;
    }
    if (count == 0)
        return 0;
    struct ppdb_timer **mine = ppdb_malloc((size_t)count * sizeof(*mine));
    if (!mine)
        return PPDB_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < sim->queue.used; i++) {
        struct ppdb_timer *t = sim_queue_at(&sim->queue, i);
        if (t && t->owner == index)
            mine[k++] = t;
    }
    qsort(mine, count, sizeof(*mine), cmp_seq);
    for (uint32_t i = 0; i < count; i++)
        sim_queue_remove(&sim->queue, mine[i]);
    for (uint32_t i = 0; i < count; i++) {
        if (mine[i]->cb != sim_event_fire_cb)
            continue; /* a node timer: removed is all */
        sim->events_queued--;
        sim_event_drop(sim, PPDB_CONTAINER_OF(mine[i], struct sim_event, timer));
    }
    ppdb_free(mine);
    return 0;
}

int ppdb_sim_node_crash(struct ppdb_sim *sim, uint32_t index)
{
    struct sim_node *n = sim_node_at(sim, index);
    if (n->crashed)
        return PPDB_EINVAL;
    n->crashed = true;
    int rc = drop_queued(sim, index);
    if (rc) {
        n->crashed = false;
        return rc;
    }
    sim_drop_held(sim, n);
    sim->stats.crashes++;
    sim_stream_crash(n);
    sim_udp_kill_all(n);
    sim_discovery_crash(n);
    PPDB_LOG(&n->log, PPDB_LOG_INFO, "sim", "node crashed", "index=%u", index);
    return 0;
}
