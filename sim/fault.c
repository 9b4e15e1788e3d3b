/*
 * fault.c - the extended network and node model of the simulated world:
 * delay distributions with tails, duplication, explicit reordering, egress
 * bandwidth, partitions (group pairs, one-way too), pause/resume and
 * restart, clock drift.
 *
 * Why here: net.c, stream.c and world.c keep the plain model; they call in
 * at three points (a datagram's draw, a segment's delay, an entry popped
 * for a paused node). Everything stays in the one queue: a paused node's
 * entries are popped when due and held in a per-node list in run order,
 * then pushed back at resume time, so the run stays one total order.
 *
 * Draws: all from the sender's net_rng. For a datagram: loss, the delay,
 * then (only on links that have them) the duplicate's delay and the
 * reorder draw, each drawn whatever the outcome, so an outcome never
 * shifts later draws. The uniform model draws exactly what it drew before
 * the extension (loss, then jitter).
 *
 * Invariants: a held node timer has heap_index == SIM_TIMER_HELD and is in
 * its node's held list exactly once; a held world event is in exactly one
 * held list and counted in events_live, not in events_queued; a node is
 * paused only while up; blocked[] has no bit set when any_blocked is false.
 */
#include <math.h>

#include "sim_internal.h"

/* ------------------------------------------------------------------ links */

uint64_t sim_tail_ms(struct ppdb_rng *rng, const struct ppdb_sim_link *l)
{
    if (l->jitter_ms == 0)
        return 0;
    if (l->dist == PPDB_SIM_DIST_UNIFORM)
        return ppdb_rng_below(rng, (uint64_t)l->jitter_ms + 1);
    double x;
    if (l->dist == PPDB_SIM_DIST_LOGNORMAL) {
        double sigma = l->shape > 0 ? l->shape : 1.0;
        double u1 = 1.0 - ppdb_rng_double(rng); /* (0, 1] */
        double u2 = ppdb_rng_double(rng);
        double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
        x = (double)l->jitter_ms / 2.0 * exp(sigma * z);
    } else {
        double alpha = l->shape > 0 ? l->shape : 1.5;
        double u = 1.0 - ppdb_rng_double(rng); /* (0, 1] */
        x = (double)l->jitter_ms * (pow(u, -1.0 / alpha) - 1.0);
    }
    if (!(x < (double)PPDB_SIM_TAIL_MAX_MS))
        return PPDB_SIM_TAIL_MAX_MS;
    return (uint64_t)x;
}

void sim_link_draw(struct ppdb_sim *sim, struct sim_node *from, uint32_t to, struct sim_draw *d)
{
    const struct ppdb_sim_link *l = sim_link_of(sim, from->index, to);
    struct ppdb_rng *rng = &from->net_rng;
    memset(d, 0, sizeof(*d));
    double u = ppdb_rng_double(rng);
    d->lost = u < l->loss;
    d->delay_ms = (uint64_t)l->latency_ms + sim_tail_ms(rng, l);
    if (l->dup > 0) {
        d->dup = ppdb_rng_double(rng) < l->dup;
        d->dup_delay_ms = (uint64_t)l->latency_ms + sim_tail_ms(rng, l);
    }
    if (l->reorder > 0) {
        uint64_t bound =
            l->reorder_ms ? l->reorder_ms : 2ull * ((uint64_t)l->latency_ms + l->jitter_ms) + 1;
        bool hit = ppdb_rng_double(rng) < l->reorder;
        uint64_t extra = 1 + ppdb_rng_below(rng, bound);
        if (hit) {
            d->delay_ms += extra;
            d->reordered = true;
        }
    }
}

static bool link_valid(const struct ppdb_sim_link *l)
{
    return l->loss >= 0.0 && l->loss <= 1.0 && l->dup >= 0.0 && l->dup <= 1.0 &&
           l->reorder >= 0.0 && l->reorder <= 1.0 && l->shape >= 0.0 &&
           l->dist <= PPDB_SIM_DIST_PARETO;
}

int ppdb_sim_set_default_link(struct ppdb_sim *sim, const struct ppdb_sim_link *link)
{
    if (!link_valid(link))
        return PPDB_EINVAL;
    sim->opts.link = *link;
    return 0;
}

/* ------------------------------------------------------------- partitions */

bool sim_blocked(const struct ppdb_sim *sim, uint32_t from, uint32_t to)
{
    if (!sim->any_blocked)
        return false;
    uint32_t gf = sim->nodes[from]->group, gt = sim->nodes[to]->group;
    return (sim->blocked[gf] >> gt) & 1u;
}

bool ppdb_sim_reachable(const struct ppdb_sim *sim, uint32_t from, uint32_t to)
{
    PPDB_ASSERT(from < sim->node_count && to < sim->node_count);
    return !sim_blocked(sim, from, to);
}

void ppdb_sim_set_group(struct ppdb_sim *sim, uint32_t index, uint32_t group)
{
    PPDB_ASSERT_CMP(group, <, PPDB_SIM_MAX_GROUPS);
    sim_node_at(sim, index)->group = (uint8_t)group;
}

uint32_t ppdb_sim_group(const struct ppdb_sim *sim, uint32_t index)
{
    return sim_node_at(sim, index)->group;
}

void ppdb_sim_block(struct ppdb_sim *sim, uint32_t from_group, uint32_t to_group, bool blocked)
{
    PPDB_ASSERT(from_group < PPDB_SIM_MAX_GROUPS && to_group < PPDB_SIM_MAX_GROUPS);
    if (blocked)
        sim->blocked[from_group] |= 1ull << to_group;
    else
        sim->blocked[from_group] &= ~(1ull << to_group);
    sim->any_blocked = false;
    for (uint32_t g = 0; g < PPDB_SIM_MAX_GROUPS; g++)
        sim->any_blocked |= sim->blocked[g] != 0;
}

void ppdb_sim_heal(struct ppdb_sim *sim)
{
    memset(sim->blocked, 0, sizeof(sim->blocked));
    sim->any_blocked = false;
    for (uint32_t i = 0; i < sim->node_count; i++)
        sim->nodes[i]->group = 0;
}

/* -------------------------------------------------------------- bandwidth */

#define SIM_UDP_HEADER_BYTES 28u /* IPv4 + UDP */
#define SIM_TCP_HEADER_BYTES 40u /* IPv4 + TCP */

uint64_t sim_egress_delay(struct sim_node *n, size_t len, bool datagram)
{
    uint64_t bps = n->egress_bytes_per_s;
    if (!bps)
        return 0;
    uint64_t now_us = n->sim->now_ms * 1000;
    uint64_t start_us = n->egress_busy_us > now_us ? n->egress_busy_us : now_us;
    if (datagram && start_us - now_us > (uint64_t)n->sim->opts.max_egress_queue_ms * 1000)
        return UINT64_MAX;
    uint64_t bytes = len + (datagram ? SIM_UDP_HEADER_BYTES : SIM_TCP_HEADER_BYTES);
    uint64_t tx_us = (bytes * 1000000 + bps - 1) / bps;
    n->egress_busy_us = start_us + tx_us;
    return (n->egress_busy_us - now_us + 999) / 1000;
}

void ppdb_sim_set_egress(struct ppdb_sim *sim, uint32_t index, uint64_t bytes_per_s)
{
    sim_node_at(sim, index)->egress_bytes_per_s = bytes_per_s;
}

void ppdb_sim_set_clock_drift(struct ppdb_sim *sim, uint32_t index, double ppm)
{
    sim_node_at(sim, index)->drift_ppm = ppm;
}

uint32_t ppdb_sim_current_node(const struct ppdb_sim *sim)
{
    return sim->current;
}

/* ---------------------------------------------------------- pause, resume */

bool sim_hold(struct sim_node *n, struct ppdb_timer *t)
{
    struct ppdb_sim *sim = n->sim;
    if (n->held_len == n->held_cap) {
        uint32_t cap = n->held_cap ? n->held_cap * 2 : 64;
        struct ppdb_timer **h = ppdb_realloc(n->held, (size_t)cap * sizeof(*h));
        if (!h)
            return false;
        n->held = h;
        n->held_cap = cap;
    }
    n->held[n->held_len++] = t;
    if (t->cb != sim_event_fire_cb)
        t->heap_index = SIM_TIMER_HELD;
    sim->stats.deferred++;
    return true;
}

void sim_unhold_timer(struct sim_node *n, struct ppdb_timer *t)
{
    for (uint32_t i = 0; i < n->held_len; i++) {
        if (n->held[i] != t)
            continue;
        memmove(&n->held[i], &n->held[i + 1], (size_t)(n->held_len - i - 1) * sizeof(*n->held));
        n->held_len--;
        t->heap_index = PPDB_TIMER_IDLE;
        return;
    }
    PPDB_ASSERT(!"held timer not in its node's list");
}

void sim_drop_held(struct ppdb_sim *sim, struct sim_node *n)
{
    for (uint32_t i = 0; i < n->held_len; i++) {
        struct ppdb_timer *t = n->held[i];
        if (t->cb != sim_event_fire_cb)
            t->heap_index = PPDB_TIMER_IDLE; /* the node's timer simply vanishes */
        else
            sim_event_drop(sim, PPDB_CONTAINER_OF(t, struct sim_event, timer));
    }
    n->held_len = 0;
    if (sim->freeing) {
        ppdb_free(n->held);
        n->held = NULL;
        n->held_cap = 0;
    }
    n->paused = false;
}

int ppdb_sim_node_pause(struct ppdb_sim *sim, uint32_t index)
{
    struct sim_node *n = sim_node_at(sim, index);
    if (n->crashed || n->paused)
        return PPDB_EINVAL;
    n->paused = true;
    sim->stats.pauses++;
    return 0;
}

/* Held entries go back into the queue due now, in the order they were
 * held, which is the order they would have run in. */
int ppdb_sim_node_resume(struct ppdb_sim *sim, uint32_t index)
{
    struct sim_node *n = sim_node_at(sim, index);
    if (n->crashed || !n->paused)
        return PPDB_EINVAL;
    n->paused = false;
    for (uint32_t i = 0; i < n->held_len; i++) {
        struct ppdb_timer *t = n->held[i];
        if (t->cb != sim_event_fire_cb) {
            t->heap_index = PPDB_TIMER_IDLE;
            if (sim_queue_push(&sim->queue, t, sim->now_ms))
                sim->stats.overflow++;
            continue;
        }
        (void)sim_event_push(sim, PPDB_CONTAINER_OF(t, struct sim_event, timer), index,
                             sim->now_ms);
    }
    n->held_len = 0;
    if (sim->queue.len > sim->stats.queue_len_max)
        sim->stats.queue_len_max = sim->queue.len;
    return 0;
}

bool ppdb_sim_node_paused(const struct ppdb_sim *sim, uint32_t index)
{
    return sim_node_at(sim, index)->paused;
}

/* ---------------------------------------------------------------- restart */

int ppdb_sim_node_restart(struct ppdb_sim *sim, uint32_t index)
{
    struct sim_node *n = sim_node_at(sim, index);
    if (!n->crashed)
        return PPDB_EINVAL;
    n->crashed = false;
    n->paused = false;
    n->egress_busy_us = 0;
    sim->stats.restarts++;
    PPDB_LOG(&n->log, PPDB_LOG_INFO, "sim", "node restarted", "index=%u", index);
    return 0;
}
