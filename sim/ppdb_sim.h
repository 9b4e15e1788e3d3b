/*
 * ppdb_sim.h - the simulated side of the env seam (DESIGN.md, seam 1).
 *
 * One `struct ppdb_sim` (the world) runs thousands of PPDB nodes inside one
 * process and one thread, on a virtual clock driven by ONE event queue: a
 * struct ppdb_timer_heap ordered by (due_ms, seq), where seq is the world's
 * insertion counter. Node timers, datagram deliveries, stream segments,
 * connect completions, discovery notices and work completions are all
 * entries of that queue, so the whole run is a single total order that a
 * seed reproduces exactly. docs/simulator.md describes the model.
 *
 * Each node gets its own `struct ppdb_env` (and logger, stamped with virtual
 * time): protocol code runs on it unchanged. Nodes have virtual addresses
 * 127.x.y.z derived from their index; nothing here touches a real socket.
 *
 * Ownership: the world owns nodes, their envs and loggers, every handle and
 * every in-flight event; ppdb_sim_free releases all of it. Protocol state
 * built on a node's env belongs to the caller, who must tear it down (or
 * drop it, after a crash) before ppdb_sim_free. Single-threaded: no call may
 * be made from another thread.
 */
#ifndef PPDB_SIM_H
#define PPDB_SIM_H

#include "ppdb_env.h"

/* How the variable part of a link's delay is drawn (see docs/simulator.md). */
enum ppdb_sim_dist {
    PPDB_SIM_DIST_UNIFORM = 0,   /* uniform[0, jitter_ms] */
    PPDB_SIM_DIST_LOGNORMAL = 1, /* jitter_ms/2 * exp(shape * N(0,1)), shape default 1 */
    PPDB_SIM_DIST_PARETO = 2,    /* jitter_ms * (U^(-1/shape) - 1), shape default 1.5 */
};
#define PPDB_SIM_TAIL_MAX_MS 60000u /* a tail draw never adds more than this */

/* A directed link's model: every datagram or stream segment from one node
 * to another is delayed by latency_ms + a draw of `dist` scaled by
 * jitter_ms; a datagram is lost with probability `loss` (streams are never
 * lost: TCP retransmits), delivered twice with probability `dup` (each copy
 * its own delay), and held back by an extra uniform[1, reorder_ms] with
 * probability `reorder` (reorder_ms 0: 2 x (latency + jitter) + 1). All the
 * fields added after `loss` default to 0, the plain model. */
struct ppdb_sim_link {
    uint32_t latency_ms;
    uint32_t jitter_ms;
    double loss;         /* 0.0 .. 1.0 */
    uint8_t dist;        /* enum ppdb_sim_dist */
    double shape;        /* lognormal sigma / pareto alpha; 0: the default */
    double dup;          /* 0.0 .. 1.0 */
    double reorder;      /* 0.0 .. 1.0 */
    uint32_t reorder_ms; /* extra hold-back bound */
};

struct ppdb_sim_options {
    uint64_t seed;
    struct ppdb_sim_link link;   /* default for every link (default 1 ms + 0..2 ms, no loss) */
    int64_t wall_epoch_ms;       /* wall_ms at virtual time 0 (default 1.7e12) */
    uint32_t max_nodes;          /* default 100000 (address space: 2^24 - 3) */
    uint32_t max_events;         /* in-flight world events (default 1 << 20) */
    uint32_t max_timers;         /* armed node timers, all nodes together (default 1 << 20) */
    uint32_t max_link_overrides; /* ppdb_sim_set_link entries (default 65536) */
    uint32_t max_handles;        /* sockets + listeners per node (default 256) */
    uint32_t max_browsers;       /* discovery browses per node (default 8) */
    uint32_t max_datagram;       /* bytes (default 65507) */
    size_t max_stream_pending;   /* bytes written and not yet delivered, per stream (16 MiB) */
    uint64_t max_events_per_run; /* events one run_until/run_for call may process (1e9) */
    uint32_t work_delay_ms;      /* virtual duration of a work_submit job (default 1) */
    int log_level;               /* node loggers' level (default PPDB_LOG_WARN) */
    ppdb_log_sink_cb log_sink;   /* NULL: stderr */
    void *log_sink_arg;
    const char *service_type;      /* the one discovery type announced (default "_ppdb._udp") */
    uint64_t egress_bytes_per_s;   /* per-node egress bandwidth; 0: unlimited (default) */
    uint32_t max_egress_queue_ms;  /* datagrams queued longer are dropped (default 1000) */
    uint32_t partition_connect_ms; /* a connect across a partition fails (ETIMEDOUT) after (3000) */
    /* An open stream across a partition holds its segments (TCP retransmits
     * them) and tries again every stream_retransmit_ms (1000); they flow
     * again, in order, once the partition heals, or the connection times
     * out at both ends (PPDB_ETIMEDOUT) when the oldest has waited
     * stream_timeout_ms (120000; TCP_USER_TIMEOUT-like). */
    uint32_t stream_retransmit_ms;
    uint32_t stream_timeout_ms;
};
void ppdb_sim_options_default(struct ppdb_sim_options *o);

/* World-wide counters. Every drop has a reason. */
struct ppdb_sim_stats {
    uint64_t events_processed; /* queue entries run, node timers included */
    uint64_t timers_fired;
    uint64_t datagrams_sent; /* accepted by udp_send */
    uint64_t datagrams_delivered;
    uint64_t dropped_loss;    /* link loss */
    uint64_t dropped_unbound; /* no socket bound at the destination */
    uint64_t dropped_down;    /* destination node crashed */
    uint64_t dropped_limit;   /* max_events reached (udp_send returned PPDB_ELIMIT) */
    uint64_t send_errors;     /* other local failures of udp_send (too large, no route) */
    uint64_t stream_bytes_sent;
    uint64_t stream_bytes_delivered;
    uint64_t connects; /* connect calls accepted */
    uint64_t connects_refused;
    uint64_t accepts;
    uint64_t resets;         /* abortive closes and crashes seen by a peer */
    uint64_t limit_errors;   /* any other call refused with PPDB_ELIMIT */
    uint64_t overflow;       /* internal events lost to a full queue: must stay 0 */
    uint64_t run_limit_hits; /* run calls stopped by max_events_per_run */
    uint64_t crashes;
    uint64_t dropped_partition; /* datagrams across a blocked group pair */
    uint64_t dropped_queue;     /* datagrams past max_egress_queue_ms at the sender */
    uint64_t duplicated;        /* extra datagram copies sent */
    uint64_t reordered;         /* datagrams held back by the reorder draw */
    uint64_t connects_blocked;  /* connects failed by a partition */
    uint64_t segments_stalled;  /* stream segments held by a partition (each once) */
    uint64_t stream_timeouts;   /* connections timed out across a partition */
    uint64_t pauses, restarts;
    uint64_t deferred;    /* entries held while their node was paused */
    uint32_t events_live; /* world events allocated now */
    uint32_t queue_len;   /* queue entries now (events + node timers) */
    uint32_t queue_len_max;
};

struct ppdb_sim_node_stats {
    uint64_t datagrams_sent;
    uint64_t datagrams_received;
    uint64_t bytes_sent; /* datagram payloads + stream bytes */
    uint64_t bytes_received;
    uint64_t events_processed; /* queue entries run on this node */
};

struct ppdb_sim; /* opaque; see sim/sim_internal.h */

/* o may be NULL (defaults). */
int ppdb_sim_new(const struct ppdb_sim_options *o, struct ppdb_sim **out);
/* Frees the world, every node, handle and queued event, without callbacks.
 * Caller-owned timers still armed are simply disarmed. */
void ppdb_sim_free(struct ppdb_sim *sim);

/* Adds a node (name may be NULL: "n<index>"; truncated to the logger's name
 * size). *env_out lives until ppdb_sim_free. Nodes are numbered 0, 1, ... */
int ppdb_sim_add_node(struct ppdb_sim *sim, const char *name, struct ppdb_env **env_out,
                      uint32_t *index_out);
uint32_t ppdb_sim_node_count(const struct ppdb_sim *sim);
struct ppdb_env *ppdb_sim_node_env(struct ppdb_sim *sim, uint32_t index);
/* The node's virtual address 127.x.y.z with `port`. */
void ppdb_sim_node_addr(const struct ppdb_sim *sim, uint32_t index, uint16_t port,
                        struct ppdb_addr *out);
/* Index of the node owning a virtual address; PPDB_ENOTFOUND otherwise. */
int ppdb_sim_addr_node(const struct ppdb_sim *sim, const struct ppdb_addr *a, uint32_t *index_out);

/* Per-node wall clock offset (added to wall_ms only; mono_ms is shared). */
void ppdb_sim_set_clock_skew(struct ppdb_sim *sim, uint32_t index, int64_t skew_ms);
/* Overrides the model of the directed link from -> to; link NULL restores
 * the default. PPDB_ELIMIT past max_link_overrides. */
int ppdb_sim_set_link(struct ppdb_sim *sim, uint32_t from, uint32_t to,
                      const struct ppdb_sim_link *link);

/* Kills a node as a process dies: its timers, pending callbacks and queued
 * deliveries are dropped, its sockets and listeners vanish (packets to them
 * are dropped, connects are refused), each open stream's peer reads
 * PPDB_ECONNRESET, its announcement is withdrawn. Datagrams it already sent
 * still arrive. No callback of the node runs afterwards; its env refuses
 * every call with PPDB_ECLOSED, except the close calls, which only free.
 * PPDB_EINVAL if the node is already down. */
int ppdb_sim_node_crash(struct ppdb_sim *sim, uint32_t index);
bool ppdb_sim_node_alive(const struct ppdb_sim *sim, uint32_t index);

/* Brings a crashed node back on the same index, address and env, as a
 * process restarting on the same host: its env works again, it has no
 * handles, timers or announcement; the caller frees the old protocol state
 * (ppdb_node_free on a crashed env only frees) and starts a new one with
 * the same identity and data. PPDB_EINVAL if the node is not down. */
int ppdb_sim_node_restart(struct ppdb_sim *sim, uint32_t index);
/* Freezes a node (a GC pause, a VM freeze): every entry due on it while
 * paused - its timers, arriving datagrams and segments, completions - is
 * held, in order, and runs at resume time, in the same order. Its peers
 * see nothing but silence. PPDB_EINVAL if down or already paused / not
 * paused. Crashing a paused node drops what it held, as any crash. */
int ppdb_sim_node_pause(struct ppdb_sim *sim, uint32_t index);
int ppdb_sim_node_resume(struct ppdb_sim *sim, uint32_t index);
bool ppdb_sim_node_paused(const struct ppdb_sim *sim, uint32_t index);

/* Partitions. Every node is in a group (0 .. PPDB_SIM_MAX_GROUPS - 1,
 * default 0); a blocked (from group, to group) pair drops every datagram
 * sent that way (dropped_partition) and fails connects that way with
 * PPDB_ETIMEDOUT after partition_connect_ms. Streams already open hold
 * their segments that way, as TCP retransmits them: they flow again, in
 * order, after the heal, or the connection times out at both ends after
 * stream_timeout_ms (see the options). Blocking only one direction gives a
 * one-way partition. heal unblocks every pair and puts every node back in
 * group 0. Discovery ignores partitions. */
#define PPDB_SIM_MAX_GROUPS 64u
void ppdb_sim_set_group(struct ppdb_sim *sim, uint32_t index, uint32_t group);
uint32_t ppdb_sim_group(const struct ppdb_sim *sim, uint32_t index);
void ppdb_sim_block(struct ppdb_sim *sim, uint32_t from_group, uint32_t to_group, bool blocked);
void ppdb_sim_heal(struct ppdb_sim *sim);
bool ppdb_sim_reachable(const struct ppdb_sim *sim, uint32_t from, uint32_t to);

/* Per-node egress bandwidth in bytes/s (0: unlimited): everything the node
 * sends is serialized behind what it sent before (queueing delay); a
 * datagram that would wait more than max_egress_queue_ms is dropped. */
void ppdb_sim_set_egress(struct ppdb_sim *sim, uint32_t index, uint64_t bytes_per_s);
/* Clock drift of wall_ms only, in parts per million of virtual time
 * (wall = epoch + t + skew + t * ppm / 1e6). */
void ppdb_sim_set_clock_drift(struct ppdb_sim *sim, uint32_t index, double ppm);
/* Replaces the default link model of every link without an override. */
int ppdb_sim_set_default_link(struct ppdb_sim *sim, const struct ppdb_sim_link *link);
/* The node whose entry is running now, or UINT32_MAX between entries
 * (e.g. to route a process-global RNG to the running node's env). */
uint32_t ppdb_sim_current_node(const struct ppdb_sim *sim);

/* Running the world. Each call processes events in (due_ms, seq) order.
 * run_until processes every event due at or before t_ms, then sets the clock
 * to t_ms; it returns PPDB_ELIMIT (counted) if max_events_per_run events ran
 * first, leaving the clock at the last event run. step runs exactly one
 * event: 0, or PPDB_ENOTFOUND when the queue is empty. */
int ppdb_sim_run_until(struct ppdb_sim *sim, uint64_t t_ms);
int ppdb_sim_run_for(struct ppdb_sim *sim, uint64_t d_ms);
int ppdb_sim_step(struct ppdb_sim *sim);
uint64_t ppdb_sim_now_ms(const struct ppdb_sim *sim);

/* 64-bit digest of every event processed so far: (virtual time, node,
 * kind, payload hash). Equal seeds and inputs give equal hashes. */
uint64_t ppdb_sim_trace_hash(const struct ppdb_sim *sim);
void ppdb_sim_stats(const struct ppdb_sim *sim, struct ppdb_sim_stats *out);
void ppdb_sim_node_stats(const struct ppdb_sim *sim, uint32_t index,
                         struct ppdb_sim_node_stats *out);

#endif /* PPDB_SIM_H */
