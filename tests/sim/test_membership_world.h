/*
 * test_membership_world.h - a simulated mesh of real PPDB nodes for the
 * membership tests: N nodes (peer/ppdb_peer.h) on one simulated world,
 * encryption on (real sealed datagrams under one cluster key), every
 * member change fed to the membership checkers (sim/check_membership.h).
 * Header-only: each test is one translation unit.
 */
#ifndef TEST_MEMBERSHIP_WORLD_H
#define TEST_MEMBERSHIP_WORLD_H

#include <time.h>

#include "check.h"
#include "check_membership.h"
#include "ppdb_peer.h"
#include "ppdb_sim.h"
#include "swim.h"

#define MW_PORT 7946

struct mw;
struct mw_node {
    struct mw *w;
    uint32_t idx;
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_node *node;
    bool up;
    bool crashed; /* its env will never call back: ppdb_node_drop, not free */
};

struct mw {
    struct ppdb_sim *sim;
    struct ppdb_keyring kr;
    struct mw_node *nodes;
    uint32_t n;
    struct ppdb_memcheck *chk;
    struct ppdb_swim_params params;
    bool null_cipher; /* speed mode: datagrams and streams without AEAD */
};

static inline double mw_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void mw_change_cb(void *data, const struct ppdb_member_info *m, int old_state)
{
    struct mw_node *mn = data;
    (void)old_state;
    ppdb_memcheck_on_change(mn->w->chk, mn->idx, &m->id, m->incarnation, m->state,
                            ppdb_sim_now_ms(mn->w->sim));
}

/* Builds the world and n nodes (not started). */
static inline void mw_init(struct mw *w, uint32_t n, uint64_t seed, double loss)
{
    memset(w, 0, sizeof(*w));
    CHECK_OK(ppdb_wire_init());
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.seed = seed;
    o.link = (struct ppdb_sim_link){.latency_ms = 1, .jitter_ms = 2, .loss = loss};
    o.max_events = 1u << 22;
    o.max_timers = 1u << 22;
    CHECK_OK(ppdb_sim_new(&o, &w->sim));
    w->n = n;
    w->nodes = ppdb_calloc(n, sizeof(*w->nodes));
    CHECK(w->nodes != NULL);
    CHECK_OK(ppdb_memcheck_new(n, &w->chk));
    CHECK_OK(ppdb_swim_profile("lan-default", &w->params));
    ppdb_keyring_init(&w->kr);
    for (uint32_t i = 0; i < n; i++) {
        struct mw_node *mn = &w->nodes[i];
        mn->w = w;
        mn->idx = i;
        CHECK_OK(ppdb_sim_add_node(w->sim, NULL, &mn->env, &(uint32_t){0}));
        if (i == 0) {
            uint8_t key[PPDB_CLUSTER_KEY_LEN];
            uint32_t id;
            ppdb_cluster_key_generate(mn->env, key);
            CHECK_OK(ppdb_keyring_install(&w->kr, key, &id));
            CHECK_OK(ppdb_keyring_use(&w->kr, id));
        }
        CHECK_OK(ppdb_identity_generate(&mn->idn, mn->env));
        CHECK_OK(ppdb_memcheck_set_id(w->chk, i, &mn->idn.id));
    }
}

/* Creates and starts node i, joining through nodes seeds[0..nseeds). */
static inline void mw_start_seeds(struct mw *w, uint32_t i, const uint32_t *seeds, uint32_t nseeds)
{
    struct mw_node *mn = &w->nodes[i];
    struct ppdb_node_config cfg;
    ppdb_node_config_default(&cfg);
    ppdb_sim_node_addr(w->sim, i, MW_PORT, &cfg.listen);
    cfg.params = &w->params;
    cfg.dgram.replay_senders = w->n > 2000 ? 256 : 1024;
    cfg.dgram.replay_marks = w->n > 2000 ? 1024 : 4096;
    cfg.dgram.null_cipher = w->null_cipher;
    CHECK(nseeds <= PPDB_NODE_MAX_SEEDS);
    for (uint32_t k = 0; k < nseeds; k++)
        if (seeds[k] != i)
            ppdb_sim_node_addr(w->sim, seeds[k], MW_PORT, &cfg.seeds[cfg.nseeds++]);
    CHECK_OK(ppdb_node_new(mn->env, &mn->idn, &w->kr, &cfg, &mn->node));
    CHECK_OK(ppdb_node_on_change(mn->node, mw_change_cb, mn));
    ppdb_memcheck_started(w->chk, i);
    CHECK_OK(ppdb_node_start(mn->node));
    mn->up = true;
}

/* Creates and starts node i, joining through node `seed` (itself: no seeds). */
static inline void mw_start(struct mw *w, uint32_t i, uint32_t seed)
{
    mw_start_seeds(w, i, &seed, 1);
}

static inline void mw_crash(struct mw *w, uint32_t i)
{
    CHECK_OK(ppdb_sim_node_crash(w->sim, i));
    ppdb_memcheck_crashed(w->chk, i, ppdb_sim_now_ms(w->sim));
    w->nodes[i].up = false;
    w->nodes[i].crashed = true;
}

/* Frees node i: a crashed one's memory is reclaimed at once (its env never
 * calls back), a live one closes its handles. */
static inline void mw_free_node(struct mw *w, uint32_t i)
{
    if (w->nodes[i].crashed)
        ppdb_node_drop(w->nodes[i].node);
    else
        ppdb_node_free(w->nodes[i].node);
    w->nodes[i].node = NULL;
}

/* Runs until converged (checked every step_ms) or limit_ms; returns the
 * virtual time it took, or UINT64_MAX. */
static inline uint64_t mw_run_converge(struct mw *w, uint64_t limit_ms, uint64_t step_ms)
{
    uint64_t t0 = ppdb_sim_now_ms(w->sim);
    while (ppdb_sim_now_ms(w->sim) - t0 < limit_ms) {
        CHECK_OK(ppdb_sim_run_for(w->sim, step_ms));
        if (ppdb_memcheck_converged(w->chk))
            return ppdb_sim_now_ms(w->sim) - t0;
    }
    return UINT64_MAX;
}

/* Sums a few node counters over live nodes. */
static inline void mw_sum(struct mw *w, struct ppdb_node_stats *sum, size_t *max_bpm)
{
    memset(sum, 0, sizeof(*sum));
    *max_bpm = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        if (!w->nodes[i].node)
            continue;
        struct ppdb_node_stats st;
        ppdb_node_stats(w->nodes[i].node, &st);
        sum->swim.probes += st.swim.probes;
        sum->swim.probe_failures += st.swim.probe_failures;
        sum->swim.suspicions_started += st.swim.suspicions_started;
        sum->swim.refutes += st.swim.refutes;
        sum->swim.deaths_declared += st.swim.deaths_declared;
        sum->swim.syncs_ok += st.swim.syncs_ok;
        sum->swim.syncs_failed += st.swim.syncs_failed;
        sum->swim.queue_dropped += st.swim.queue_dropped;
        sum->swim.table_full += st.swim.table_full;
        sum->swim.suspicions_full += st.swim.suspicions_full;
        sum->swim.probes_full += st.swim.probes_full;
        sum->swim.send_errors += st.swim.send_errors;
        sum->swim.bad_msgs += st.swim.bad_msgs;
        sum->swim.susp_checks += st.swim.susp_checks;
        sum->swim.self_replies += st.swim.self_replies;
        sum->swim.syncs_delta += st.swim.syncs_delta;
        sum->dgram.auth_failed += st.dgram.auth_failed;
        sum->dgram.replayed += st.dgram.replayed;
        sum->dgram.stale += st.dgram.stale;
        sum->dgram.sealed += st.dgram.sealed;
        if (w->nodes[i].up && st.bytes_per_member > *max_bpm)
            *max_bpm = st.bytes_per_member;
    }
}

static inline void mw_print_stats(struct mw *w, const char *label)
{
    struct ppdb_node_stats s;
    size_t bpm;
    mw_sum(w, &s, &bpm);
    fprintf(stderr,
            "%s probes=%llu probe_failures=%llu suspicions=%llu refutes=%llu deaths=%llu "
            "syncs_ok=%llu syncs_failed=%llu queue_dropped=%llu table_full=%llu "
            "susp_full=%llu probes_full=%llu send_errors=%llu bad_msgs=%llu sealed=%llu "
            "auth_failed=%llu replayed=%llu stale=%llu susp_checks=%llu self_replies=%llu "
            "syncs_delta=%llu bytes_per_member=%zu (entry %zu + slots)\n",
            label, (unsigned long long)s.swim.probes, (unsigned long long)s.swim.probe_failures,
            (unsigned long long)s.swim.suspicions_started, (unsigned long long)s.swim.refutes,
            (unsigned long long)s.swim.deaths_declared, (unsigned long long)s.swim.syncs_ok,
            (unsigned long long)s.swim.syncs_failed, (unsigned long long)s.swim.queue_dropped,
            (unsigned long long)s.swim.table_full, (unsigned long long)s.swim.suspicions_full,
            (unsigned long long)s.swim.probes_full, (unsigned long long)s.swim.send_errors,
            (unsigned long long)s.swim.bad_msgs, (unsigned long long)s.dgram.sealed,
            (unsigned long long)s.dgram.auth_failed, (unsigned long long)s.dgram.replayed,
            (unsigned long long)s.dgram.stale, (unsigned long long)s.swim.susp_checks,
            (unsigned long long)s.swim.self_replies, (unsigned long long)s.swim.syncs_delta, bpm,
            sizeof(struct ppdb_swim_member));
}

static inline void mw_free(struct mw *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        mw_free_node(w, i);
    /* let stream closes finish: their memory is released by env callbacks */
    CHECK_OK(ppdb_sim_run_for(w->sim, 1000));
    ppdb_sim_free(w->sim);
    ppdb_memcheck_free(w->chk);
    ppdb_keyring_deinit(&w->kr);
    for (uint32_t i = 0; i < w->n; i++)
        ppdb_identity_wipe(&w->nodes[i].idn);
    ppdb_free(w->nodes);
}

#endif /* TEST_MEMBERSHIP_WORLD_H */
