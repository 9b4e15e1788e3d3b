/*
 * env_sim.c - the env ops table of a simulated node: time, timers,
 * randomness, discovery (a fake LAN) and work_submit.
 *
 * Time: mono_ms is the world's virtual clock; wall_ms adds a fixed epoch,
 * the node's skew and its drift (ppm of virtual time). Timers are the caller's struct ppdb_timer
 * pushed straight into the world queue (owner = node index), so a node timer and a world event due
 * at the same ms run in the order they were queued.
 *
 * Discovery: every announcement is one immutable, refcounted record; a
 * browse registers a browser in the world list (browse order) and receives
 * every current announcement (in node order) and every later one, each after
 * the link delay from the announcer. Announcements have no type of their own
 * in the env seam, so all of them belong to the world's one service_type;
 * browsing another type finds nothing. Withdraw (and a crash) tells every
 * browser up=false. Cost: announcers x browsers events, fine on a LAN-sized
 * world; a 10,000-node world should not browse on every node.
 *
 * Invariants: nothing here calls back inside the call; a crashed node's
 * env refuses every call (PPDB_ECLOSED) and arms nothing.
 */
#include "sim_internal.h"

static uint64_t sim_mono_ms(struct ppdb_env *env)
{
    return sim_node_of_env(env)->sim->now_ms;
}

static int64_t sim_wall_ms(struct ppdb_env *env)
{
    struct sim_node *n = sim_node_of_env(env);
    int64_t drift_ms =
        n->drift_ppm != 0.0 ? (int64_t)((double)n->sim->now_ms * n->drift_ppm / 1e6) : 0;
    return n->sim->opts.wall_epoch_ms + (int64_t)n->sim->now_ms + n->skew_ms + drift_ms;
}

static int sim_timer_arm(struct ppdb_env *env, struct ppdb_timer *t, uint64_t delay_ms)
{
    struct sim_node *n = sim_node_of_env(env);
    struct ppdb_sim *sim = n->sim;
    PPDB_ASSERT(t->cb != NULL && t->cb != sim_event_fire_cb);
    if (n->crashed)
        return PPDB_ECLOSED;
    if (ppdb_timer_armed(t)) {
        PPDB_ASSERT_CMP(t->owner, ==, n->index);
        if (t->heap_index == SIM_TIMER_HELD)
            sim_unhold_timer(n, t);
        else
            sim_queue_remove(&sim->queue, t);
    }
    if (sim->queue.len - sim->events_queued >= sim->opts.max_timers ||
        delay_ms > UINT64_MAX - sim->now_ms) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    t->owner = n->index;
    int rc = sim_queue_push(&sim->queue, t, sim->now_ms + delay_ms);
    if (rc) {
        sim->stats.limit_errors++;
        return rc;
    }
    if (sim->queue.len > sim->stats.queue_len_max)
        sim->stats.queue_len_max = sim->queue.len;
    return 0;
}

static void sim_timer_cancel(struct ppdb_env *env, struct ppdb_timer *t)
{
    struct sim_node *n = sim_node_of_env(env);
    if (!ppdb_timer_armed(t))
        return;
    PPDB_ASSERT_CMP(t->owner, ==, n->index);
    if (t->heap_index == SIM_TIMER_HELD)
        sim_unhold_timer(n, t);
    else
        sim_queue_remove(&n->sim->queue, t);
}

static void sim_random(struct ppdb_env *env, void *buf, size_t len)
{
    ppdb_rng_bytes(&sim_node_of_env(env)->rng, buf, len);
}

/* -------------------------------------------------------------- discovery */

void sim_announcement_unref(struct sim_announcement *a)
{
    PPDB_ASSERT_CMP(a->refs, >, 0);
    if (--a->refs == 0)
        ppdb_free(a);
}

void sim_discovery_release(struct sim_discovery_event *ev)
{
    sim_announcement_unref(ev->ann);
}

static int notify(struct ppdb_sim *sim, struct sim_announcement *ann, struct sim_browser *b,
                  bool up)
{
    struct sim_discovery_event *ev = sim_event_new(sim, SIM_EV_DISCOVERY, sizeof(*ev), 0, false);
    if (!ev) {
        sim->stats.overflow++;
        return PPDB_ENOMEM;
    }
    ev->ann = ann;
    ann->refs++;
    ev->browser = b;
    ev->up = up;
    uint64_t delay = sim_link_delay(sim, sim_node_at(sim, ann->node), b->node->index, NULL);
    return sim_event_push(sim, &ev->ev, b->node->index, sim->now_ms + delay);
}

static void notify_all(struct ppdb_sim *sim, struct sim_announcement *ann, bool up)
{
    for (struct sim_browser *b = sim->browsers; b; b = b->next)
        if (b->matches && !b->node->crashed)
            (void)notify(sim, ann, b, up);
}

static uint32_t browser_count(const struct ppdb_sim *sim)
{
    uint32_t k = 0;
    for (const struct sim_browser *b = sim->browsers; b; b = b->next)
        k += b->matches;
    return k;
}

static int sim_announce(struct ppdb_env *env, const struct ppdb_service *svc)
{
    struct sim_node *n = sim_node_of_env(env);
    struct ppdb_sim *sim = n->sim;
    if (n->crashed)
        return PPDB_ECLOSED;
    if (sim->stats.events_live + (uint64_t)browser_count(sim) * 2 > sim->opts.max_events) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    struct sim_announcement *a = ppdb_calloc(1, sizeof(*a));
    if (!a)
        return PPDB_ENOMEM;
    a->refs = 1;
    a->node = n->index;
    a->svc = *svc;
    if (n->ann) { /* a change: the old record goes, the new one comes */
        notify_all(sim, n->ann, false);
        sim_announcement_unref(n->ann);
    }
    n->ann = a;
    notify_all(sim, a, true);
    return 0;
}

static void sim_withdraw(struct ppdb_env *env)
{
    struct sim_node *n = sim_node_of_env(env);
    if (n->crashed || !n->ann)
        return;
    notify_all(n->sim, n->ann, false);
    sim_announcement_unref(n->ann);
    n->ann = NULL;
}

static int sim_browse(struct ppdb_env *env, const char *type, ppdb_discovery_cb cb, void *data)
{
    struct sim_node *n = sim_node_of_env(env);
    struct ppdb_sim *sim = n->sim;
    PPDB_ASSERT(cb != NULL && type != NULL);
    if (n->crashed)
        return PPDB_ECLOSED;
    if (n->browsers >= sim->opts.max_browsers ||
        sim->stats.events_live + sim->node_count > sim->opts.max_events) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    struct sim_browser *b = ppdb_calloc(1, sizeof(*b));
    if (!b)
        return PPDB_ENOMEM;
    b->node = n;
    b->cb = cb;
    b->data = data;
    b->matches = strcmp(type, sim->opts.service_type) == 0;
    struct sim_browser **pp = &sim->browsers;
    while (*pp)
        pp = &(*pp)->next;
    *pp = b;
    n->browsers++;
    for (uint32_t i = 0; b->matches && i < sim->node_count; i++) {
        struct sim_node *m = sim->nodes[i];
        if (m->ann && !m->crashed)
            (void)notify(sim, m->ann, b, true);
    }
    return 0;
}

void sim_discovery_fire(struct ppdb_sim *sim, struct sim_discovery_event *ev)
{
    struct sim_browser *b = ev->browser;
    b->cb(b->data, &ev->ann->svc, ev->up);
    sim_event_release(sim, &ev->ev);
}

/* Crash (or world teardown): the node's announcement is withdrawn and its
 * browsers are removed. Its discovery events were dropped already. */
void sim_discovery_crash(struct sim_node *n)
{
    struct ppdb_sim *sim = n->sim;
    if (n->ann) {
        notify_all(sim, n->ann, false);
        sim_announcement_unref(n->ann);
        n->ann = NULL;
    }
    struct sim_browser **pp = &sim->browsers;
    while (*pp) {
        struct sim_browser *b = *pp;
        if (b->node == n) {
            *pp = b->next;
            ppdb_free(b);
        } else {
            pp = &b->next;
        }
    }
    n->browsers = 0;
}

/* ------------------------------------------------------------------ work */

static int sim_work_submit(struct ppdb_env *env, ppdb_work_fn work, ppdb_work_done_cb done,
                           void *data)
{
    struct sim_node *n = sim_node_of_env(env);
    struct ppdb_sim *sim = n->sim;
    PPDB_ASSERT(work != NULL && done != NULL);
    if (n->crashed)
        return PPDB_ECLOSED;
    struct sim_work_event *ev = sim_event_new(sim, SIM_EV_WORK, sizeof(*ev), 0, true);
    if (!ev) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    ev->work = work;
    ev->done = done;
    ev->data = data;
    return sim_event_push(sim, &ev->ev, n->index, sim->now_ms + sim->opts.work_delay_ms);
}

void sim_work_fire(struct ppdb_sim *sim, struct sim_work_event *ev)
{
    ppdb_work_fn work = ev->work;
    ppdb_work_done_cb done = ev->done;
    void *data = ev->data;
    sim_event_release(sim, &ev->ev);
    work(data);
    done(data, 0);
}

/* ------------------------------------------------------------------- ops */

const struct ppdb_env_ops sim_env_ops = {
    .mono_ms = sim_mono_ms,
    .wall_ms = sim_wall_ms,
    .timer_arm = sim_timer_arm,
    .timer_cancel = sim_timer_cancel,
    .random = sim_random,
    .udp_open = sim_udp_open,
    .udp_send = sim_udp_send,
    .udp_local_addr = sim_udp_local_addr,
    .udp_close = sim_udp_close,
    .listen = sim_listen,
    .listener_addr = sim_listener_addr,
    .listener_close = sim_listener_close,
    .connect = sim_connect,
    .stream_read_start = sim_read_start,
    .stream_read_stop = sim_read_stop,
    .stream_write = sim_write,
    .stream_pending = sim_pending,
    .stream_shutdown = sim_shutdown,
    .stream_peer_addr = sim_peer_addr,
    .stream_close = sim_stream_close,
    .announce = sim_announce,
    .withdraw = sim_withdraw,
    .browse = sim_browse,
    .work_submit = sim_work_submit,
};

void sim_node_env_init(struct sim_node *n)
{
    n->env.ops = &sim_env_ops;
    n->env.log = &n->log;
}
