/*
 * check_membership.c - membership checkers (see check_membership.h).
 *
 * Built as a passive observer: the test feeds it every member change and
 * every world event; it keeps one byte per (observer, subject) pair (the
 * observer's view, VIEW_NONE when unknown), a per-observer count of live
 * subjects seen alive (so convergence is an O(N) check), and the samples
 * of crash-to-dead times. Ids map to indices through an open-addressing
 * table keyed by the id's first 8 bytes (ids are hashes already): one
 * lookup per member change, and there is one per (node, member) pair.
 *
 * Invariants: alive_seen[o] == number of started, live subjects s != o with
 * view[o][s] == alive; every sample is recorded once per (survivor, crashed).
 * A restart makes a node live again with empty views of its own; what
 * others still say of its earlier life (incarnation < life_inc) is news of
 * the past, never a false suspicion or death.
 */
#include "check_membership.h"

#include <stdio.h>
#include <stdlib.h>

#include "ppdb_peer.h"

#define VIEW_NONE 0xFF

struct node_rec {
    bool started, crashed, left, has_id;
    uint64_t crash_ms;
    uint64_t false_suspect_inc, false_dead_inc; /* last episode counted, + 1 */
    uint64_t max_inc;                           /* highest incarnation seen in any change */
    uint64_t life_inc; /* incarnations below this belong to an earlier life */
};

struct ppdb_memcheck {
    uint32_t n;
    uint8_t *view; /* n * n */
    uint32_t *alive_seen;
    struct node_rec *nodes;
    struct ppdb_node_id *ids; /* by node index (nodes[i].has_id) */
    uint32_t *slots;          /* index + 1, 0 = empty; nslots >= 2n, a power of two */
    uint32_t nslots;
    uint64_t *samples;
    uint64_t nsamples, cap_samples;
    uint64_t false_suspect_events, false_suspicions, false_death_events, false_deaths;
    struct ppdb_sim_node_stats *snap;
    uint64_t snap_ms;
    double window_s, msgs_per_node_s, bytes_per_node_s;
};

int ppdb_memcheck_new(uint32_t nodes, struct ppdb_memcheck **out)
{
    PPDB_ASSERT(nodes >= 1);
    struct ppdb_memcheck *c = ppdb_calloc(1, sizeof(*c));
    if (!c)
        return PPDB_ENOMEM;
    c->n = nodes;
    c->view = ppdb_malloc((size_t)nodes * nodes);
    c->alive_seen = ppdb_calloc(nodes, sizeof(*c->alive_seen));
    c->nodes = ppdb_calloc(nodes, sizeof(*c->nodes));
    c->ids = ppdb_calloc(nodes, sizeof(*c->ids));
    c->nslots = 16;
    while (c->nslots < 2 * nodes)
        c->nslots *= 2;
    c->slots = ppdb_calloc(c->nslots, sizeof(*c->slots));
    c->snap = ppdb_calloc(nodes, sizeof(*c->snap));
    if (!c->view || !c->alive_seen || !c->nodes || !c->ids || !c->slots || !c->snap) {
        ppdb_memcheck_free(c);
        return PPDB_ENOMEM;
    }
    memset(c->view, VIEW_NONE, (size_t)nodes * nodes);
    *out = c;
    return 0;
}

void ppdb_memcheck_free(struct ppdb_memcheck *c)
{
    if (!c)
        return;
    ppdb_free(c->view);
    ppdb_free(c->alive_seen);
    ppdb_free(c->nodes);
    ppdb_free(c->ids);
    ppdb_free(c->slots);
    ppdb_free(c->samples);
    ppdb_free(c->snap);
    ppdb_free(c);
}

static uint32_t slot_of(const struct ppdb_memcheck *c, const struct ppdb_node_id *id)
{
    return (uint32_t)ppdb_mix64(ppdb_load_u64le(id->b)) & (c->nslots - 1);
}

int ppdb_memcheck_set_id(struct ppdb_memcheck *c, uint32_t index, const struct ppdb_node_id *id)
{
    if (index >= c->n || c->nodes[index].has_id)
        return PPDB_EINVAL;
    c->nodes[index].has_id = true;
    c->ids[index] = *id;
    uint32_t k = slot_of(c, id);
    while (c->slots[k] != 0)
        k = (k + 1) & (c->nslots - 1);
    c->slots[k] = index + 1;
    return 0;
}

static uint32_t index_of(const struct ppdb_memcheck *c, const struct ppdb_node_id *id)
{
    for (uint32_t k = slot_of(c, id);; k = (k + 1) & (c->nslots - 1)) {
        uint32_t v = c->slots[k];
        if (v == 0)
            return UINT32_MAX;
        if (ppdb_node_id_equal(&c->ids[v - 1], id))
            return v - 1;
    }
}

static bool is_live(const struct node_rec *r)
{
    return r->started && !r->crashed && !r->left;
}

static void add_sample(struct ppdb_memcheck *c, uint64_t ms)
{
    if (c->nsamples == c->cap_samples) {
        uint64_t cap = c->cap_samples ? c->cap_samples * 2 : 1024;
        uint64_t *p = ppdb_realloc(c->samples, cap * sizeof(*p));
        PPDB_ASSERT(p != NULL); /* a test harness: out of memory is fatal */
        c->samples = p;
        c->cap_samples = cap;
    }
    c->samples[c->nsamples++] = ms;
}

static void set_view(struct ppdb_memcheck *c, uint32_t o, uint32_t s, uint8_t v)
{
    uint8_t *cell = &c->view[(size_t)o * c->n + s];
    bool counted = is_live(&c->nodes[s]) && o != s;
    if (counted && *cell == PPDB_MEMBER_ALIVE)
        c->alive_seen[o]--;
    *cell = v;
    if (counted && v == PPDB_MEMBER_ALIVE)
        c->alive_seen[o]++;
}

static void count_false(struct ppdb_memcheck *c, struct node_rec *sr, uint64_t inc, int state)
{
    if (state == PPDB_MEMBER_SUSPECT) {
        c->false_suspect_events++;
        if (sr->false_suspect_inc != inc + 1) {
            sr->false_suspect_inc = inc + 1;
            c->false_suspicions++;
        }
    } else if (state == PPDB_MEMBER_DEAD) {
        c->false_death_events++;
        if (sr->false_dead_inc != inc + 1) {
            sr->false_dead_inc = inc + 1;
            c->false_deaths++;
        }
    }
}

void ppdb_memcheck_on_change(struct ppdb_memcheck *c, uint32_t observer,
                             const struct ppdb_node_id *subject, uint64_t inc, int new_state,
                             uint64_t now_ms)
{
    uint32_t s = index_of(c, subject);
    if (s == UINT32_MAX || observer >= c->n || s == observer)
        return;
    struct node_rec *sr = &c->nodes[s];
    uint8_t old = c->view[(size_t)observer * c->n + s];
    set_view(c, observer, s, (uint8_t)new_state);
    if (inc > sr->max_inc)
        sr->max_inc = inc;
    if (!is_live(&c->nodes[observer]))
        return;
    if (sr->crashed && new_state == PPDB_MEMBER_DEAD && old != PPDB_MEMBER_DEAD)
        add_sample(c, now_ms - sr->crash_ms);
    else if (is_live(sr) && inc >= sr->life_inc)
        count_false(c, sr, inc, new_state);
}

void ppdb_memcheck_on_forget(struct ppdb_memcheck *c, uint32_t observer,
                             const struct ppdb_node_id *subject)
{
    uint32_t s = index_of(c, subject);
    if (s != UINT32_MAX && observer < c->n)
        set_view(c, observer, s, VIEW_NONE);
}

/* A subject leaves the live set: observers stop counting it. */
static void drop_subject(struct ppdb_memcheck *c, uint32_t s)
{
    if (!is_live(&c->nodes[s]))
        return;
    for (uint32_t o = 0; o < c->n; o++)
        if (o != s && c->view[(size_t)o * c->n + s] == PPDB_MEMBER_ALIVE)
            c->alive_seen[o]--;
}

void ppdb_memcheck_crashed(struct ppdb_memcheck *c, uint32_t index, uint64_t now_ms)
{
    PPDB_ASSERT(index < c->n);
    drop_subject(c, index);
    c->nodes[index].crashed = true;
    c->nodes[index].crash_ms = now_ms;
}

void ppdb_memcheck_left(struct ppdb_memcheck *c, uint32_t index, uint64_t now_ms)
{
    PPDB_ASSERT(index < c->n);
    (void)now_ms;
    drop_subject(c, index);
    c->nodes[index].left = true;
}

void ppdb_memcheck_started(struct ppdb_memcheck *c, uint32_t index)
{
    PPDB_ASSERT(index < c->n && !c->nodes[index].started);
    c->nodes[index].started = true;
    for (uint32_t o = 0; o < c->n; o++)
        if (o != index && c->view[(size_t)o * c->n + index] == PPDB_MEMBER_ALIVE)
            c->alive_seen[o]++;
}

void ppdb_memcheck_restarted(struct ppdb_memcheck *c, uint32_t index)
{
    PPDB_ASSERT(index < c->n);
    struct node_rec *r = &c->nodes[index];
    PPDB_ASSERT(r->started && !is_live(r));
    r->crashed = r->left = false;
    r->life_inc = r->max_inc + 1;
    memset(&c->view[(size_t)index * c->n], VIEW_NONE, c->n);
    c->alive_seen[index] = 0;
    for (uint32_t o = 0; o < c->n; o++)
        if (o != index && c->view[(size_t)o * c->n + index] == PPDB_MEMBER_ALIVE)
            c->alive_seen[o]++;
}

uint64_t ppdb_memcheck_unconverged_pairs(const struct ppdb_memcheck *c)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < c->n; i++)
        live += is_live(&c->nodes[i]);
    uint64_t missing = 0;
    for (uint32_t o = 0; o < c->n; o++)
        if (is_live(&c->nodes[o]))
            missing += (uint64_t)(live - 1 - c->alive_seen[o]);
    return missing;
}

bool ppdb_memcheck_converged(const struct ppdb_memcheck *c)
{
    return ppdb_memcheck_unconverged_pairs(c) == 0;
}

void ppdb_memcheck_traffic_begin(struct ppdb_memcheck *c, const struct ppdb_sim *sim)
{
    for (uint32_t i = 0; i < c->n && i < ppdb_sim_node_count(sim); i++)
        ppdb_sim_node_stats(sim, i, &c->snap[i]);
    c->snap_ms = ppdb_sim_now_ms(sim);
}

void ppdb_memcheck_traffic_end(struct ppdb_memcheck *c, const struct ppdb_sim *sim)
{
    uint64_t msgs = 0, bytes = 0;
    uint32_t live = 0;
    for (uint32_t i = 0; i < c->n && i < ppdb_sim_node_count(sim); i++) {
        if (!is_live(&c->nodes[i]))
            continue;
        struct ppdb_sim_node_stats st;
        ppdb_sim_node_stats(sim, i, &st);
        msgs += st.datagrams_sent - c->snap[i].datagrams_sent;
        bytes += st.bytes_sent - c->snap[i].bytes_sent;
        live++;
    }
    c->window_s = (double)(ppdb_sim_now_ms(sim) - c->snap_ms) / 1000.0;
    double denom = live && c->window_s > 0 ? (double)live * c->window_s : 1.0;
    c->msgs_per_node_s = (double)msgs / denom;
    c->bytes_per_node_s = (double)bytes / denom;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static uint64_t pct(const uint64_t *v, uint64_t n, uint32_t p)
{
    if (n == 0)
        return 0;
    uint64_t k = (n * p + 99) / 100; /* nearest rank */
    return v[k ? k - 1 : 0];
}

void ppdb_memcheck_report(struct ppdb_memcheck *c, struct ppdb_memcheck_report *out)
{
    memset(out, 0, sizeof(*out));
    out->nodes = c->n;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct node_rec *r = &c->nodes[i];
        out->live += is_live(r);
        out->crashed += r->crashed;
        out->left += r->left && !r->crashed;
    }
    for (uint32_t s = 0; s < c->n; s++) {
        if (!c->nodes[s].crashed)
            continue;
        for (uint32_t o = 0; o < c->n; o++) {
            uint8_t v = c->view[(size_t)o * c->n + s];
            if (is_live(&c->nodes[o]) && v != PPDB_MEMBER_DEAD && v != VIEW_NONE)
                out->missing++;
        }
    }
    if (c->nsamples) /* samples may be NULL when there are none */
        qsort(c->samples, c->nsamples, sizeof(*c->samples), u64_cmp);
    out->detections = c->nsamples;
    out->dead_p50_ms = pct(c->samples, c->nsamples, 50);
    out->dead_p99_ms = pct(c->samples, c->nsamples, 99);
    out->dead_max_ms = c->nsamples ? c->samples[c->nsamples - 1] : 0;
    out->false_suspect_events = c->false_suspect_events;
    out->false_suspicions = c->false_suspicions;
    out->false_death_events = c->false_death_events;
    out->false_deaths = c->false_deaths;
    out->window_s = c->window_s;
    out->msgs_per_node_s = c->msgs_per_node_s;
    out->bytes_per_node_s = c->bytes_per_node_s;
}

void ppdb_memcheck_print(const struct ppdb_memcheck_report *r, const char *label, FILE *f)
{
    fprintf(f,
            "%s nodes=%u live=%u crashed=%u left=%u detections=%llu missing=%llu "
            "dead_p50_ms=%llu dead_p99_ms=%llu dead_max_ms=%llu false_suspicions=%llu "
            "false_suspect_events=%llu false_deaths=%llu false_death_events=%llu "
            "window_s=%.1f msgs_per_node_s=%.2f bytes_per_node_s=%.1f\n",
            label, r->nodes, r->live, r->crashed, r->left, (unsigned long long)r->detections,
            (unsigned long long)r->missing, (unsigned long long)r->dead_p50_ms,
            (unsigned long long)r->dead_p99_ms, (unsigned long long)r->dead_max_ms,
            (unsigned long long)r->false_suspicions, (unsigned long long)r->false_suspect_events,
            (unsigned long long)r->false_deaths, (unsigned long long)r->false_death_events,
            r->window_s, r->msgs_per_node_s, r->bytes_per_node_s);
}
