/*
 * check_membership.h - membership checkers for simulated meshes.
 *
 * A checker watches what every node believes about every other node (fed
 * by the node's member-change callback) and what the test did to the world
 * (crashes, graceful leaves, restarts), and measures:
 *
 *   - convergence: every live node knows every other live node as alive;
 *   - crash-to-dead time at every survivor (p50, p99, max) and the pairs
 *     (survivor, crashed node) that never saw the death;
 *   - false suspicions and false deaths: a node that was neither crashed
 *     nor gone marked suspect / dead by some live node (counted as events,
 *     one per observer, and as episodes, one per subject and incarnation);
 *   - traffic: datagrams and bytes per live node per second over a window.
 *
 * Nodes are the simulator's indices 0..n-1; ids are mapped with
 * ppdb_memcheck_set_id. Memory: one byte per (observer, subject) pair.
 * Not thread-safe (the simulator is single-threaded).
 */
#ifndef PPDB_CHECK_MEMBERSHIP_H
#define PPDB_CHECK_MEMBERSHIP_H

#include "ppdb_sim.h"
#include "ppdb_wire.h"

struct ppdb_memcheck;

int ppdb_memcheck_new(uint32_t nodes, struct ppdb_memcheck **out);
void ppdb_memcheck_free(struct ppdb_memcheck *c);
/* Declares node index's id (before any change that names it). */
int ppdb_memcheck_set_id(struct ppdb_memcheck *c, uint32_t index, const struct ppdb_node_id *id);

/* Observer's view of subject changed to new_state (enum ppdb_member_state)
 * at incarnation inc. Unknown subjects are ignored. */
void ppdb_memcheck_on_change(struct ppdb_memcheck *c, uint32_t observer,
                             const struct ppdb_node_id *subject, uint64_t inc, int new_state,
                             uint64_t now_ms);
/* The observer forgot the subject (reaped). */
void ppdb_memcheck_on_forget(struct ppdb_memcheck *c, uint32_t observer,
                             const struct ppdb_node_id *subject);
/* World events: a node crashed / left gracefully / was started. */
void ppdb_memcheck_crashed(struct ppdb_memcheck *c, uint32_t index, uint64_t now_ms);
void ppdb_memcheck_left(struct ppdb_memcheck *c, uint32_t index, uint64_t now_ms);
void ppdb_memcheck_started(struct ppdb_memcheck *c, uint32_t index);
/* A crashed (or departed) node came back with the same id and a fresh
 * member table: it is live again, its own views start empty, and news of
 * its earlier life (incarnations up to the highest seen before) are not
 * counted as false suspicions or deaths. */
void ppdb_memcheck_restarted(struct ppdb_memcheck *c, uint32_t index);

/* Every started, live node sees every other started, live node alive. */
bool ppdb_memcheck_converged(const struct ppdb_memcheck *c);
/* Live pairs (observer, subject) not yet seeing each other alive. */
uint64_t ppdb_memcheck_unconverged_pairs(const struct ppdb_memcheck *c);

/* Traffic window: snapshot the simulator's per-node counters now ... */
void ppdb_memcheck_traffic_begin(struct ppdb_memcheck *c, const struct ppdb_sim *sim);
/* ... and compute the averages over live nodes since the snapshot. */
void ppdb_memcheck_traffic_end(struct ppdb_memcheck *c, const struct ppdb_sim *sim);

struct ppdb_memcheck_report {
    uint32_t nodes, live, crashed, left;
    uint64_t detections; /* (survivor, crashed) pairs that saw the death */
    uint64_t missing;    /* ... and pairs that did not (yet) */
    uint64_t dead_p50_ms, dead_p99_ms, dead_max_ms;
    uint64_t false_suspect_events, false_suspicions; /* episodes: (subject, inc) */
    uint64_t false_death_events, false_deaths;       /* episodes: (subject, inc) */
    double window_s;
    double msgs_per_node_s, bytes_per_node_s; /* sent, datagrams + streams */
};
void ppdb_memcheck_report(struct ppdb_memcheck *c, struct ppdb_memcheck_report *out);
/* One line of key=value pairs (ppdb-sim reports reuse it). */
void ppdb_memcheck_print(const struct ppdb_memcheck_report *r, const char *label, FILE *f);

#endif /* PPDB_CHECK_MEMBERSHIP_H */
