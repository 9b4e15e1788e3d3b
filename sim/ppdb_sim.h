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

/* A directed link's model: every datagram or stream segment from one node
 * to another is delayed by latency_ms + uniform[0, jitter_ms]; a datagram is
 * lost with probability `loss` (streams are never lost: TCP retransmits). */
struct ppdb_sim_link {
    uint32_t latency_ms;
    uint32_t jitter_ms;
    double loss; /* 0.0 .. 1.0 */
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
    const char *service_type; /* the one discovery type announced (default "_ppdb._udp") */
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
