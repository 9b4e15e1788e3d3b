/*
 * main_sim.c - ppdb-sim: runs a scenario (sim/scenario.h) of N real PPDB
 * nodes (peer/ppdb_peer.h) on one simulated world and reports what the
 * membership did (sim/report.h). docs/simulator.md is the manual.
 *
 * Built as one runner per run: every node of the scenario's capacity is
 * added to the world up front with an identity drawn from its env RNG
 * (one cluster key for all), then a loop advances virtual time in 100 ms
 * ticks, applying the timed actions, churn and resumes due at each tick,
 * checking convergence, and sampling the time series every simulated
 * second. libsodium's generator is routed to the running node's env RNG
 * (ppdb_wire_sodium_set_random before sodium_init), so a seed replays
 * the whole run bit for bit: the trace hash says so.
 *
 * Deliberate global state: g_runner, the run the libsodium hook draws for
 * (libsodium's generator is process-global), and g_setup_rng for draws
 * made outside any node's entry. Wall time is read here (progress and the
 * wall_s figure) and never reaches the world.
 *
 * Exit codes: 0 every check held, 1 a check failed, 2 usage or scenario
 * error, 3 the run itself failed (out of memory, world limits).
 */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "check_membership.h"
#include "ppdb_peer.h"
#include "ppdb_sim.h"
#include "prefault.h"
#include "report.h"
#include "scenario.h"

#define SIM_PORT     7946
#define TICK_MS      100
#define MAX_ARGS_LEN 4096

struct rec {
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_node *node;
    uint64_t start_ms, resume_ms;
    bool started, up, crashed, left, paused, restarted;
};

struct runner {
    const struct ppdb_scenario *scn;
    uint64_t seed;
    struct ppdb_sim *sim;
    struct ppdb_keyring kr;
    struct ppdb_swim_params params;
    struct rec *nodes;
    uint32_t cap, next_join;
    struct ppdb_memcheck *chk;
    struct ppdb_rng rng; /* the scenario's own picks */
    struct ppdb_simrep rep;
    uint32_t next_action;
    double churn_acc[PPDB_SCN_MAX_CHURN][4];
    uint64_t last_msgs, last_bytes;
    uint64_t converged_ms;
    double wall0, last_progress;
    bool quiet;
};

static struct runner *g_runner;
static struct ppdb_rng g_setup_rng;

static double wall_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sodium_random_cb(void *arg, void *buf, size_t len)
{
    (void)arg;
    struct runner *r = g_runner;
    if (r && r->sim) {
        uint32_t cur = ppdb_sim_current_node(r->sim);
        if (cur != UINT32_MAX) {
            ppdb_env_random(ppdb_sim_node_env(r->sim, cur), buf, len);
            return;
        }
    }
    ppdb_rng_bytes(&g_setup_rng, buf, len);
}

/* ------------------------------------------------------------------ nodes */

static void change_cb(void *data, const struct ppdb_member_info *m, int old_state)
{
    struct rec *rc = data;
    (void)old_state;
    struct runner *r = g_runner;
    uint32_t idx = (uint32_t)(rc - r->nodes);
    ppdb_memcheck_on_change(r->chk, idx, &m->id, m->incarnation, m->state, ppdb_sim_now_ms(r->sim));
}

static int node_start(struct runner *r, uint32_t i)
{
    struct rec *rc = &r->nodes[i];
    struct ppdb_node_config cfg;
    ppdb_node_config_default(&cfg);
    ppdb_sim_node_addr(r->sim, i, SIM_PORT, &cfg.listen);
    cfg.params = &r->params;
    cfg.dgram.null_cipher = !r->scn->encrypt;
    cfg.dgram.replay_senders = r->cap > 2000 ? 256 : 1024;
    cfg.dgram.replay_marks = r->cap > 2000 ? 1024 : 4096;
    for (uint32_t s = 0; s < r->scn->seeds && cfg.nseeds < PPDB_NODE_MAX_SEEDS; s++)
        if (s != i && (s < i || i >= r->scn->seeds))
            ppdb_sim_node_addr(r->sim, s, SIM_PORT, &cfg.seeds[cfg.nseeds++]);
    int rc_ = ppdb_node_new(rc->env, &rc->idn, &r->kr, &cfg, &rc->node);
    if (!rc_)
        rc_ = ppdb_node_on_change(rc->node, change_cb, rc);
    if (!rc_)
        rc_ = ppdb_node_start(rc->node);
    if (rc_) {
        fprintf(stderr, "ppdb-sim: node %u: start: %s\n", i, ppdb_strerror(rc_));
        return rc_;
    }
    if (!rc->started)
        ppdb_memcheck_started(r->chk, i);
    rc->started = rc->up = true;
    return 0;
}

/* `param NAME VALUE`: the SWIM parameters a scenario may override. */
static uint32_t *param_field(struct ppdb_swim_params *p, const char *name)
{
    static const struct {
        const char *name;
        size_t off;
    } f[] = {
#define PF(x) {#x, offsetof(struct ppdb_swim_params, x)}
        PF(probe_interval_ms),
        PF(probe_timeout_ms),
        PF(indirect_k),
        PF(nack_percent),
        PF(suspicion_min_per_log10n_ms),
        PF(suspicion_max_mult),
        PF(suspicion_k),
        PF(verify_fanout),
        PF(retransmit_mult),
        PF(gossip_interval_ms),
        PF(gossip_nodes),
        PF(push_pull_interval_ms),
        PF(sync_timeout_ms),
        PF(reap_ms),
        PF(leave_ms),
        PF(max_health),
        PF(max_members),
        PF(max_broadcasts),
        PF(max_suspicions),
        PF(max_probes),
#undef PF
    };
    for (size_t i = 0; i < PPDB_ARRAY_LEN(f); i++)
        if (strcmp(f[i].name, name) == 0)
            return (uint32_t *)(void *)((char *)p + f[i].off);
    return NULL;
}

static int params_apply(const struct ppdb_scenario *s, struct ppdb_swim_params *p)
{
    for (uint32_t i = 0; i < s->nparams; i++) {
        uint32_t *f = param_field(p, s->params[i].name);
        if (!f)
            return PPDB_ENOTFOUND;
        *f = s->params[i].value;
    }
    return 0;
}

static int world_new(struct runner *r)
{
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.seed = r->seed;
    o.link = r->scn->link;
    o.max_nodes = r->cap;
    /* room for every node's in-flight traffic and timers, not much more:
     * the queue's array is sized from these */
    uint64_t room = (uint64_t)r->cap * 256;
    o.max_events = (uint32_t)(room < (1u << 16)   ? (1u << 16)
                              : room > (1u << 23) ? (1u << 23)
                                                  : room);
    o.max_timers = o.max_events;
    o.egress_bytes_per_s = r->scn->bandwidth;
    int rc = ppdb_sim_new(&o, &r->sim);
    if (rc)
        return rc;
    ppdb_rng_seed(&g_setup_rng, r->seed ^ 0x50d1u);
    ppdb_rng_seed(&r->rng, ppdb_mix64(r->seed ^ 0x5ce7a410ull));
    rc = ppdb_swim_profile(r->scn->profile, &r->params);
    if (!rc)
        rc = params_apply(r->scn, &r->params);
    if (!rc)
        rc = ppdb_memcheck_new(r->cap, &r->chk);
    if (rc)
        return rc;
    ppdb_keyring_init(&r->kr);
    r->nodes = ppdb_calloc(r->cap, sizeof(*r->nodes));
    return r->nodes ? 0 : PPDB_ENOMEM;
}

/* Every node of the capacity exists in the world from the start (not
 * started: no socket); identities come from each node's env RNG. */
static int nodes_add(struct runner *r)
{
    const struct ppdb_scenario *s = r->scn;
    for (uint32_t i = 0; i < r->cap; i++) {
        struct rec *rc = &r->nodes[i];
        int e = ppdb_sim_add_node(r->sim, NULL, &rc->env, NULL);
        if (!e && i == 0) {
            uint8_t key[PPDB_CLUSTER_KEY_LEN];
            uint32_t id;
            ppdb_cluster_key_generate(rc->env, key);
            e = ppdb_keyring_install(&r->kr, key, &id);
            if (!e)
                e = ppdb_keyring_use(&r->kr, id);
        }
        if (!e)
            e = ppdb_identity_generate(&rc->idn, rc->env);
        if (!e)
            e = ppdb_memcheck_set_id(r->chk, i, &rc->idn.id);
        if (e)
            return e;
        rc->start_ms = i < s->nodes && s->nodes > 0 ? s->join_spread_ms * i / s->nodes : UINT64_MAX;
        if (s->skew_frac > 0 && ppdb_rng_double(&r->rng) < s->skew_frac)
            ppdb_sim_set_clock_skew(r->sim, i,
                                    (int64_t)ppdb_rng_below(&r->rng, 2 * s->skew_max_ms + 1) -
                                        (int64_t)s->skew_max_ms);
        if (s->drift_frac > 0 && ppdb_rng_double(&r->rng) < s->drift_frac)
            ppdb_sim_set_clock_drift(r->sim, i, (2 * ppdb_rng_double(&r->rng) - 1) * s->drift_ppm);
    }
    r->next_join = s->nodes;
    return 0;
}

static void runner_free(struct runner *r)
{
    for (uint32_t i = 0; r->nodes && i < r->cap; i++) {
        if (r->nodes[i].crashed)
            ppdb_node_drop(r->nodes[i].node); /* its env will never call back */
        else
            ppdb_node_free(r->nodes[i].node);
    }
    if (r->sim) {
        for (uint32_t i = 0; r->nodes && i < r->cap; i++)
            if (r->nodes[i].paused)
                (void)ppdb_sim_node_resume(r->sim, i);
        /* stream closes finish in the world: let them. A partition still
         * in place would hold their last segments (and so the nodes'
         * memory) until the streams time out: the run is over, so heal. */
        ppdb_sim_heal(r->sim);
        (void)ppdb_sim_run_for(r->sim, 3000);
        ppdb_sim_free(r->sim);
    }
    ppdb_memcheck_free(r->chk);
    ppdb_keyring_deinit(&r->kr);
    for (uint32_t i = 0; r->nodes && i < r->cap; i++)
        ppdb_identity_wipe(&r->nodes[i].idn);
    ppdb_free(r->nodes);
    ppdb_simrep_free(&r->rep);
}

/* ---------------------------------------------------------------- actions */

static bool eligible(const struct rec *rc, uint8_t op)
{
    switch (op) {
    case PPDB_SCN_RESTART:
        return rc->crashed;
    case PPDB_SCN_PAUSE:
    case PPDB_SCN_LEAVE: /* a frozen process cannot say goodbye */
        return rc->up && !rc->paused;
    default: /* crash */
        return rc->up;
    }
}

/* Picks the nodes of a selection into out (at most cap); returns count. */
static uint32_t pick(struct runner *r, const struct ppdb_scn_sel *sel, uint8_t op, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->next_join; i++) {
        bool in = sel->kind != PPDB_SCN_SEL_RANGE || (i >= sel->lo && i <= sel->hi);
        if (in && eligible(&r->nodes[i], op))
            out[n++] = i;
    }
    uint32_t want = n;
    if (sel->kind == PPDB_SCN_SEL_PERCENT) {
        want = (uint32_t)llround(sel->percent * r->scn->nodes);
        want = want ? want : 1;
    } else if (sel->kind == PPDB_SCN_SEL_COUNT) {
        want = sel->count;
    }
    if (want >= n)
        return n;
    for (uint32_t k = 0; k < want; k++) { /* partial Fisher-Yates, then index order */
        uint32_t j = k + (uint32_t)ppdb_rng_below(&r->rng, n - k);
        uint32_t t = out[k];
        out[k] = out[j];
        out[j] = t;
    }
    return want;
}

static void leave_done_cb(void *data, int status)
{
    (void)data;
    (void)status;
}

static int act_node(struct runner *r, uint8_t op, uint32_t i, uint64_t dur_ms)
{
    struct rec *rc = &r->nodes[i];
    uint64_t now = ppdb_sim_now_ms(r->sim);
    int e = 0;
    switch (op) {
    case PPDB_SCN_CRASH:
        if (rc->paused)
            rc->paused = false;
        e = ppdb_sim_node_crash(r->sim, i);
        ppdb_memcheck_crashed(r->chk, i, now);
        rc->up = false;
        rc->crashed = e == 0; /* what decides drop or free of its node */
        break;
    case PPDB_SCN_RESTART:
        ppdb_node_drop(rc->node); /* the crashed env never calls back */
        rc->node = NULL;
        e = ppdb_sim_node_restart(r->sim, i);
        rc->crashed = false;
        rc->restarted = true;
        if (!e)
            e = node_start(r, i);
        if (!e)
            ppdb_memcheck_restarted(r->chk, i);
        break;
    case PPDB_SCN_PAUSE:
        e = ppdb_sim_node_pause(r->sim, i);
        rc->paused = true;
        rc->resume_ms = now + dur_ms;
        break;
    default: /* leave */
        e = ppdb_node_leave(rc->node, leave_done_cb, rc);
        ppdb_memcheck_left(r->chk, i, now);
        rc->up = false;
        rc->left = true;
        break;
    }
    return e;
}

static int act_select(struct runner *r, uint8_t op, const struct ppdb_scn_sel *sel, uint64_t dur)
{
    uint32_t *idx = ppdb_malloc((size_t)r->cap * sizeof(*idx));
    if (!idx)
        return PPDB_ENOMEM;
    uint32_t n = pick(r, sel, op, idx);
    int e = 0;
    for (uint32_t k = 0; k < n && !e; k++)
        e = act_node(r, op, idx[k], dur);
    ppdb_free(idx);
    return e;
}

static int act_join(struct runner *r, uint32_t count)
{
    for (uint32_t k = 0; k < count && r->next_join < r->cap; k++) {
        int e = node_start(r, r->next_join++);
        if (e)
            return e;
    }
    return 0;
}

static void act_partition(struct runner *r, const struct ppdb_scn_action *a)
{
    uint32_t count = ppdb_sim_node_count(r->sim);
    for (uint32_t g = 0; g < a->ngroups; g++)
        for (uint32_t i = a->groups[g].lo; i <= a->groups[g].hi && i < count; i++)
            ppdb_sim_set_group(r->sim, i, g + 1);
    for (uint32_t g = 1; g <= a->ngroups; g++)
        for (uint32_t h = 1; h <= a->ngroups; h++)
            if (g != h && (!a->oneway || (g == 1 && h == 2)))
                ppdb_sim_block(r->sim, g, h, true);
}

static int act_apply(struct runner *r, const struct ppdb_scn_action *a)
{
    switch (a->op) {
    case PPDB_SCN_JOIN:
        return act_join(r, a->sel.count);
    case PPDB_SCN_PARTITION:
        act_partition(r, a);
        return 0;
    case PPDB_SCN_HEAL:
        ppdb_sim_heal(r->sim);
        return 0;
    case PPDB_SCN_LINK:
        return ppdb_sim_set_default_link(r->sim, &a->link);
    case PPDB_SCN_BANDWIDTH:
        for (uint32_t i = 0; i < r->cap; i++)
            ppdb_sim_set_egress(r->sim, i, (uint64_t)a->value);
        return 0;
    default:
        return act_select(r, a->op, &a->sel, a->dur_ms);
    }
}

/* Churn rates accumulate per tick; each whole unit is one event. */
static int churn_tick(struct runner *r, uint64_t now)
{
    static const uint8_t ops[4] = {PPDB_SCN_JOIN, PPDB_SCN_LEAVE, PPDB_SCN_CRASH, PPDB_SCN_RESTART};
    for (uint32_t c = 0; c < r->scn->nchurn; c++) {
        const struct ppdb_scn_churn *ch = &r->scn->churn[c];
        if (now < ch->from_ms || now >= ch->to_ms)
            continue;
        const double rates[4] = {ch->join_per_s, ch->leave_per_s, ch->crash_per_s,
                                 ch->restart_per_s};
        for (uint32_t k = 0; k < 4; k++) {
            r->churn_acc[c][k] += rates[k] * TICK_MS / 1000.0;
            uint32_t whole = (uint32_t)r->churn_acc[c][k];
            r->churn_acc[c][k] -= whole;
            if (!whole)
                continue;
            struct ppdb_scn_sel sel = {.kind = PPDB_SCN_SEL_COUNT, .count = whole};
            int e = ops[k] == PPDB_SCN_JOIN ? act_join(r, whole) : act_select(r, ops[k], &sel, 0);
            if (e)
                return e;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- the loop */

static int tick_start(struct runner *r, uint64_t now)
{
    for (uint32_t i = 0; i < r->scn->nodes; i++) {
        struct rec *rc = &r->nodes[i];
        if (!rc->started && !rc->crashed && rc->start_ms <= now) {
            int e = node_start(r, i);
            if (e)
                return e;
        }
        if (rc->paused && rc->resume_ms <= now) {
            rc->paused = false;
            int e = ppdb_sim_node_resume(r->sim, i);
            if (e)
                return e;
        }
    }
    while (r->next_action < r->scn->nactions && r->scn->actions[r->next_action].at_ms <= now) {
        int e = act_apply(r, &r->scn->actions[r->next_action++]);
        if (e)
            return e;
    }
    return churn_tick(r, now);
}

static void sample(struct runner *r, uint64_t now)
{
    struct ppdb_simrep_point p = {.t_s = (uint32_t)(now / 1000)};
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < r->next_join; i++) {
        struct ppdb_sim_node_stats ns;
        ppdb_sim_node_stats(r->sim, i, &ns);
        bytes += ns.bytes_sent;
        struct rec *rc = &r->nodes[i];
        if (!rc->up)
            continue;
        uint32_t members[4];
        ppdb_node_member_counts(rc->node, members);
        p.live++;
        p.suspects += members[PPDB_MEMBER_SUSPECT];
        p.dead += members[PPDB_MEMBER_DEAD];
    }
    struct ppdb_sim_stats ws;
    ppdb_sim_stats(r->sim, &ws);
    uint64_t pairs = p.live > 1 ? (uint64_t)p.live * (p.live - 1) : 1;
    p.convergence = 1.0 - (double)ppdb_memcheck_unconverged_pairs(r->chk) / (double)pairs;
    p.msgs = ws.datagrams_sent - r->last_msgs;
    p.bytes = bytes - r->last_bytes;
    r->last_msgs = ws.datagrams_sent;
    r->last_bytes = bytes;
    (void)ppdb_simrep_add(&r->rep, &p);
    double w = wall_now_s();
    if (!r->quiet && w - r->last_progress >= 1.0) {
        r->last_progress = w;
        fprintf(stderr,
                "ppdb-sim: seed=%llu sim %llus/%llus live=%u convergence=%.4f suspects=%llu "
                "dead=%llu events=%llu wall=%.0fs\n",
                (unsigned long long)r->seed, (unsigned long long)(now / 1000),
                (unsigned long long)(r->scn->duration_ms / 1000), p.live, p.convergence,
                (unsigned long long)p.suspects, (unsigned long long)p.dead,
                (unsigned long long)ws.events_processed, w - r->wall0);
    }
}

static int run_loop(struct runner *r)
{
    const struct ppdb_scenario *s = r->scn;
    bool traffic = false;
    uint64_t half = s->duration_ms / 2;
    for (uint64_t t = 0; t < s->duration_ms; t += TICK_MS) {
        int e = tick_start(r, t);
        if (!e)
            e = ppdb_sim_run_until(r->sim, t + TICK_MS);
        if (e)
            return e;
        uint64_t now = t + TICK_MS;
        bool all_started = now > s->join_spread_ms;
        if (r->converged_ms == UINT64_MAX && all_started && ppdb_memcheck_converged(r->chk))
            r->converged_ms = now;
        /* the traffic window: from first convergence, or from half-time */
        if (!traffic && (r->converged_ms != UINT64_MAX || (all_started && now >= half))) {
            ppdb_memcheck_traffic_begin(r->chk, r->sim);
            traffic = true;
        }
        if (now % 1000 == 0)
            sample(r, now);
    }
    if (!traffic)
        ppdb_memcheck_traffic_begin(r->chk, r->sim); /* nodes still joining: no window */
    ppdb_memcheck_traffic_end(r->chk, r->sim);
    return 0;
}

static uint64_t peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024;
}

static void fill_report(struct runner *r)
{
    struct ppdb_simrep *rep = &r->rep;
    struct ppdb_memcheck_report m;
    ppdb_memcheck_report(r->chk, &m);
    struct ppdb_sim_stats ws;
    ppdb_sim_stats(r->sim, &ws);
    rep->seed = r->seed;
    rep->encrypt = r->scn->encrypt;
    rep->sim_s = (double)ppdb_sim_now_ms(r->sim) / 1000.0;
    rep->wall_s = wall_now_s() - r->wall0;
    rep->trace_hash = ppdb_sim_trace_hash(r->sim);
    rep->converged_s = r->converged_ms == UINT64_MAX ? -1.0 : (double)r->converged_ms / 1000.0;
    rep->final_convergence = rep->npoints ? rep->series[rep->npoints - 1].convergence : 0;
    rep->detect_p50_s = (double)m.dead_p50_ms / 1000.0;
    rep->detect_p99_s = (double)m.dead_p99_ms / 1000.0;
    rep->detect_max_s = (double)m.dead_max_ms / 1000.0;
    rep->detections = m.detections;
    rep->missing = m.missing;
    rep->false_suspect = m.false_suspicions;
    rep->false_dead = m.false_deaths;
    rep->msgs_per_node_s = m.msgs_per_node_s;
    rep->bytes_per_node_s = m.bytes_per_node_s;
    rep->events = ws.events_processed;
    rep->dropped_loss = ws.dropped_loss;
    rep->dropped_partition = ws.dropped_partition;
    rep->dropped_queue = ws.dropped_queue;
    rep->duplicated = ws.duplicated;
    rep->segments_stalled = ws.segments_stalled;
    rep->stream_timeouts = ws.stream_timeouts;
    rep->overflow = ws.overflow;
    for (uint32_t i = 0; i < r->next_join; i++) {
        struct rec *rc = &r->nodes[i];
        rep->nodes += rc->started;
        rep->live += rc->up;
        rep->crashed += rc->crashed;
        rep->left += rc->left;
        rep->restarted += rc->restarted;
        rep->paused += rc->paused;
        if (rc->up) {
            struct ppdb_node_stats st;
            ppdb_node_stats(rc->node, &st);
            if (st.bytes_per_member > rep->bytes_per_member_entry)
                rep->bytes_per_member_entry = st.bytes_per_member;
            rep->streams_opened += st.streams_out;
        }
    }
    rep->peak_rss_bytes = peak_rss_bytes();
}

/* ---------------------------------------------------------------- outputs */

struct outputs {
    const char *json, *csv, *svg;
    bool quiet;
    char cmd[MAX_ARGS_LEN]; /* the command line, for replay lines */
};

static FILE *open_out(const char *path, const char *mode, uint64_t seed, uint32_t runs, bool *close)
{
    *close = false;
    if (strcmp(path, "-") == 0)
        return stdout;
    char name[1024];
    if (runs > 1)
        snprintf(name, sizeof(name), "%s.%llu", path, (unsigned long long)seed);
    else
        snprintf(name, sizeof(name), "%s", path);
    FILE *f = fopen(name, mode);
    if (!f)
        fprintf(stderr, "ppdb-sim: %s: %s\n", name, strerror(errno));
    *close = f != NULL;
    return f;
}

static void write_outputs(const struct outputs *o, const struct ppdb_simrep *rep, uint32_t run,
                          uint32_t runs)
{
    bool c;
    FILE *f;
    if (o->json && (f = open_out(o->json, run == 0 || runs == 1 ? "w" : "a", 0, 1, &c))) {
        ppdb_simrep_json(rep, f);
        fputc('\n', f);
        if (c)
            fclose(f);
    }
    if (o->csv && (f = open_out(o->csv, "w", rep->seed, runs, &c))) {
        ppdb_simrep_csv(rep, f);
        if (c)
            fclose(f);
    }
    if (o->svg && (f = open_out(o->svg, "w", rep->seed, runs, &c))) {
        ppdb_simrep_svg(rep, f);
        if (c)
            fclose(f);
    }
}

static uint32_t run_checks(const struct ppdb_scenario *s, struct ppdb_simrep *rep,
                           const struct outputs *o)
{
    uint32_t failed = 0;
    for (uint32_t i = 0; i < s->nchecks; i++) {
        const struct ppdb_scn_check *c = &s->checks[i];
        double v = 0;
        (void)ppdb_simrep_value(rep, c->metric, &v);
        if (ppdb_scn_check_holds(c, v))
            continue;
        failed++;
        fprintf(stderr,
                "ppdb-sim: CHECK FAILED (line %u): %s %s %g, got %g; seed=%llu\n"
                "  replay: %s --seed %llu --runs 1\n",
                c->line, c->metric, ppdb_scn_cmp_name(c->cmp), c->value, v,
                (unsigned long long)rep->seed, o->cmd, (unsigned long long)rep->seed);
    }
    rep->checks_failed = failed;
    return failed;
}

/* One run; returns the checks that failed, or a negative error. */
static int run_one(const struct ppdb_scenario *s, uint64_t seed, const struct outputs *o,
                   uint32_t run)
{
    struct runner r = {.scn = s, .seed = seed, .converged_ms = UINT64_MAX, .quiet = o->quiet};
    r.cap = ppdb_scenario_capacity(s);
    r.wall0 = r.last_progress = wall_now_s();
    r.rep.cap_points = (uint32_t)(s->duration_ms / 1000) + 2;
    r.rep.series = ppdb_calloc(r.rep.cap_points, sizeof(*r.rep.series));
    g_runner = &r;
    int e = r.rep.series ? world_new(&r) : PPDB_ENOMEM;
    if (!e)
        e = nodes_add(&r);
    if (!e)
        e = run_loop(&r);
    int out = e;
    if (!e) {
        fill_report(&r);
        out = (int)run_checks(s, &r.rep, o);
        if (!o->quiet)
            ppdb_simrep_text(&r.rep, stderr);
        write_outputs(o, &r.rep, run, s->runs);
    } else {
        fprintf(stderr, "ppdb-sim: run failed: %s; seed=%llu\n  replay: %s --seed %llu --runs 1\n",
                ppdb_strerror(e), (unsigned long long)seed, o->cmd, (unsigned long long)seed);
    }
#ifndef PPDB_SANITIZE
    /* the process exits after its last run and gives the memory back at
     * once, where closing and freeing 10,000 nodes one by one took ~5 s;
     * the sanitizer build tears every run down, so its leak check still
     * covers the teardown */
    if (run + 1 == s->runs) {
        g_runner = NULL;
        return out;
    }
#endif
    runner_free(&r);
    g_runner = NULL;
    return out;
}

/* ------------------------------------------------------------ arguments */

static void usage(FILE *f)
{
    fprintf(f, "usage: ppdb-sim [SCENARIO] [--DIRECTIVE ARGS...] [--json FILE] [--csv FILE]\n"
               "                [--svg FILE] [--quiet]\n"
               "Every scenario directive is also a flag: --nodes 1000 --duration 10m --seed 7\n"
               "--loss 5%% --latency 1ms jitter 2ms dist pareto --at 30s crash 1%% ...\n"
               "FILE '-' is stdout. See docs/simulator.md.\n");
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = ppdb_malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1 || cap >= (1u << 24))
            break;
        char *nb = ppdb_realloc(buf, cap * 2);
        if (!nb) {
            ppdb_free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static bool is_flag(const char *a)
{
    return a[0] == '-' && a[1] == '-' && a[2] != '\0';
}

static void build_cmd(struct outputs *o, int argc, char **argv)
{
    size_t len = 0;
    for (int i = 0; i < argc && len + 4 < sizeof(o->cmd); i++) {
        bool plain = strpbrk(argv[i], " %|<>'\"*$&;()!") == NULL && argv[i][0];
        int w = snprintf(o->cmd + len, sizeof(o->cmd) - len, plain ? "%s%s" : "%s'%s'",
                         i ? " " : "", argv[i]);
        if (w < 0 || (size_t)w >= sizeof(o->cmd) - len)
            break;
        len += (size_t)w;
    }
}

/* --json/--csv/--svg/--quiet are outputs; any other --name joins the words
 * up to the next flag into one scenario line. 0, or 2 (usage). */
static int parse_args(int argc, char **argv, struct ppdb_scenario *s, struct outputs *o)
{
    char err[256];
    int i = 1;
    if (i < argc && !is_flag(argv[i])) {
        char *text = read_file(argv[i]);
        if (!text) {
            fprintf(stderr, "ppdb-sim: %s: cannot read\n", argv[i]);
            return 2;
        }
        int rc = ppdb_scenario_parse(s, text, err, sizeof(err));
        ppdb_free(text);
        if (rc) {
            fprintf(stderr, "ppdb-sim: %s: %s\n", argv[i], err);
            return 2;
        }
        i++;
    }
    for (; i < argc; i++) {
        const char *name = argv[i] + 2;
        if (!is_flag(argv[i])) {
            fprintf(stderr, "ppdb-sim: unexpected '%s'\n", argv[i]);
            return 2;
        }
        if (strcmp(name, "help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(name, "quiet") == 0) {
            o->quiet = true;
            continue;
        }
        const char **out = strcmp(name, "json") == 0  ? &o->json
                           : strcmp(name, "csv") == 0 ? &o->csv
                           : strcmp(name, "svg") == 0 ? &o->svg
                                                      : NULL;
        if (out) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ppdb-sim: --%s needs a file\n", name);
                return 2;
            }
            *out = argv[++i];
            continue;
        }
        char line[512];
        size_t len = (size_t)snprintf(line, sizeof(line), "%s", name);
        while (i + 1 < argc && !is_flag(argv[i + 1]) && len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, " %s", argv[++i]);
        if (ppdb_scenario_line(s, line, 0, err, sizeof(err))) {
            fprintf(stderr, "ppdb-sim: --%s: %s\n", line, err);
            return 2;
        }
    }
    return 0;
}

static int validate(struct ppdb_scenario *s)
{
    char err[256];
    if (ppdb_scenario_finish(s, err, sizeof(err))) {
        fprintf(stderr, "ppdb-sim: %s\n", err);
        return 2;
    }
    struct ppdb_simrep probe = {0};
    for (uint32_t i = 0; i < s->nchecks; i++) {
        double v;
        if (!ppdb_simrep_value(&probe, s->checks[i].metric, &v)) {
            fprintf(stderr, "ppdb-sim: line %u: unknown metric '%s'\n", s->checks[i].line,
                    s->checks[i].metric);
            return 2;
        }
    }
    struct ppdb_swim_params p;
    if (ppdb_swim_profile(s->profile, &p)) {
        fprintf(stderr, "ppdb-sim: unknown profile '%s'\n", s->profile);
        return 2;
    }
    if (params_apply(s, &p)) {
        fprintf(stderr, "ppdb-sim: unknown SWIM parameter in a 'param' line\n");
        return 2;
    }
    return 0;
}

/* The member tables of N nodes hold ~N^2 entries (~8 GB at 10,000) and
 * nearly every access of a large run misses the TLB, so ppdb-sim puts its
 * heap on transparent huge pages: glibc does that with the tunable
 * glibc.malloc.hugetlb=1, which it reads only at exec, so ppdb-sim
 * re-executes itself once with the tunable added (10,000 nodes: 212 ->
 * 195 s, peak RSS 10.2 -> 11.0 GiB). PPDB_SIM_HUGE_PAGES=0, a tunable
 * already naming hugetlb, or a failed exec: it goes on as it is. Nothing
 * in a run depends on memory layout, so results are the same either way. */
static void huge_pages(char **argv)
{
#ifdef __GLIBC__
    const char *off = getenv("PPDB_SIM_HUGE_PAGES");
    const char *t = getenv("GLIBC_TUNABLES");
    if ((off && strcmp(off, "0") == 0) || (t && strstr(t, "glibc.malloc.hugetlb")))
        return;
    char old[480], v[512];
    int n = snprintf(old, sizeof(old), "%s", t ? t : "");
    if (n < 0 || (size_t)n >= sizeof(old))
        return;
    snprintf(v, sizeof(v), "%s%sglibc.malloc.hugetlb=1", old, *old ? ":" : "");
    if (setenv("GLIBC_TUNABLES", v, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    if (t) /* the exec failed: the environment as it was */
        (void)setenv("GLIBC_TUNABLES", old, 1);
    else
        (void)unsetenv("GLIBC_TUNABLES");
#else
    (void)argv;
#endif
}

int main(int argc, char **argv)
{
    static struct ppdb_scenario scn; /* large: not on the stack */
    struct outputs o = {0};
    huge_pages(argv);
    ppdb_scenario_default(&scn);
    build_cmd(&o, argc, argv);
    int rc = parse_args(argc, argv, &scn, &o);
    if (!rc)
        rc = validate(&scn);
    if (rc) {
        usage(stderr);
        return rc;
    }
    /* gigabytes of member tables from ~2,000 nodes on (N^2 entries); below
     * that the heap's steps would only add to the peak RSS reported */
    const char *pf = getenv("PPDB_SIM_PREFAULT");
    if ((!pf || strcmp(pf, "0") != 0) && ppdb_scenario_capacity(&scn) >= 2000)
        ppdb_sim_prefault_start();
    if (ppdb_wire_sodium_set_random(sodium_random_cb, NULL) || ppdb_wire_init()) {
        fprintf(stderr, "ppdb-sim: libsodium failed to start\n");
        return 3;
    }
    uint32_t failed = 0;
    for (uint32_t k = 0; k < scn.runs; k++) {
        int r = run_one(&scn, scn.seed + k, &o, k);
        if (r < 0)
            return 3;
        failed += (uint32_t)r;
    }
    ppdb_sim_prefault_stop();
    if (failed)
        fprintf(stderr, "ppdb-sim: %u check(s) failed\n", failed);
    return failed ? 1 : 0;
}
