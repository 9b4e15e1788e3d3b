/*
 * report.h - ppdb-sim reports: the summary of one run (human text and
 * JSON), its per-second time series (CSV) and a plot of convergence over
 * time (SVG, written here: no plotting tool needed). Columns and keys are
 * documented in docs/simulator.md ("Reports").
 */
#ifndef PPDB_SIM_REPORT_H
#define PPDB_SIM_REPORT_H

#include <stdio.h>

#include "ppdb_base.h"

/* One simulated second. */
struct ppdb_simrep_point {
    uint32_t t_s;
    uint32_t live;      /* nodes up and started (paused ones included) */
    double convergence; /* fraction of (live observer, live subject) pairs seen alive */
    uint64_t suspects;  /* suspect entries in live nodes' tables */
    uint64_t dead;      /* dead entries in live nodes' tables (until reaped) */
    uint64_t msgs;      /* datagrams sent during this second, all nodes */
    uint64_t bytes;     /* datagram + stream bytes sent during this second */
};

struct ppdb_simrep {
    uint32_t nodes; /* nodes ever started */
    uint64_t seed;
    double sim_s, wall_s;
    uint64_t trace_hash;
    double converged_s; /* first full convergence; -1 if never */
    double final_convergence;
    double detect_p50_s, detect_p99_s, detect_max_s;
    uint64_t detections, missing;
    uint64_t false_suspect, false_dead; /* episodes (subject, incarnation) */
    double msgs_per_node_s, bytes_per_node_s;
    uint64_t peak_rss_bytes;
    uint64_t bytes_per_member_entry;
    uint32_t live, crashed, left, restarted, paused;
    bool encrypt;
    uint64_t events; /* world entries run */
    uint64_t dropped_loss, dropped_partition, dropped_queue, duplicated, overflow;
    uint64_t segments_stalled, stream_timeouts; /* streams across partitions */
    uint64_t streams_opened; /* connections (each a handshake) the nodes up at the end opened */
    uint32_t checks_failed;
    struct ppdb_simrep_point *series;
    uint32_t npoints, cap_points;
};

/* Appends a point (bounded by cap_points, set by the caller; a full series
 * drops the point: PPDB_ELIMIT). */
int ppdb_simrep_add(struct ppdb_simrep *r, const struct ppdb_simrep_point *p);
void ppdb_simrep_free(struct ppdb_simrep *r);
void ppdb_simrep_text(const struct ppdb_simrep *r, FILE *f);
/* One JSON object (no trailing newline). */
void ppdb_simrep_json(const struct ppdb_simrep *r, FILE *f);
void ppdb_simrep_csv(const struct ppdb_simrep *r, FILE *f);
void ppdb_simrep_svg(const struct ppdb_simrep *r, FILE *f);
/* A report value by its JSON key (for scenario checks); false if unknown. */
bool ppdb_simrep_value(const struct ppdb_simrep *r, const char *key, double *out);

#endif /* PPDB_SIM_REPORT_H */
