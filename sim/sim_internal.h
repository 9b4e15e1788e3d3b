/*
 * sim_internal.h - the simulator's private structures, shared by world.c
 * (queue, nodes, crash), net.c (links, datagrams), stream.c (streams),
 * env_sim.c (the env ops table, time, timers, discovery, work).
 *
 * The queue. Every entry of sim->queue is a struct ppdb_timer. A node's own
 * timers are pushed as they are (caller memory; timer.owner = node index).
 * Everything else is a world event: a struct sim_event (allocated here, with
 * its payload after it) whose timer.cb is sim_event_fire_cb; `kind` says what
 * it is. owner is always the node on which the entry runs: the receiver of a
 * datagram or segment, the caller of a connect, the writer of a completed
 * write. Ties on due_ms are broken by the heap's insertion seq, never by a
 * pointer or hash.
 *
 * Streams. A connection is one struct sim_conn holding both ends; the
 * `struct ppdb_stream *` handed out is a pointer to one end. The conn is
 * freed when no end is held (by its user, or by a pending connect) and no
 * event refers to it (refs counts both). Each end keeps the segments it has
 * written and that are not yet delivered (wq, in write order) and the
 * segments that arrived while it was not reading (parked, in arrival
 * order). Segments of one direction are due no earlier than the previous
 * one (out_due_ms), so with equal due times the insertion seq keeps them in
 * write order: jitter never reorders a stream.
 *
 *     conn ---- ends[0] (client) ---- wq: DATA DATA FIN ->  (in queue, owner = server node)
 *          \--- ends[1] (server) <--- parked: DATA DATA    (out of queue until read_start)
 */
#ifndef PPDB_SIM_INTERNAL_H
#define PPDB_SIM_INTERNAL_H

#include "ppdb_sim.h"

/* Event kinds, also folded into the trace hash: values are stable. */
enum sim_kind {
    SIM_EV_TIMER = 0,       /* a node's own timer (not a struct sim_event) */
    SIM_EV_UDP = 1,         /* datagram arrives */
    SIM_EV_SYN = 2,         /* connect request arrives at the listener's node */
    SIM_EV_CONNECTED = 3,   /* connect finished (status) at the caller */
    SIM_EV_DATA = 4,        /* stream segment arrives */
    SIM_EV_FIN = 5,         /* orderly end of stream arrives */
    SIM_EV_RST = 6,         /* reset arrives */
    SIM_EV_WRITE_DONE = 7,  /* a write completes at the writer */
    SIM_EV_RESUME = 8,      /* read_start: deliver parked segments */
    SIM_EV_CLOSE_DONE = 9,  /* close: canceled writes, then close callback */
    SIM_EV_DISCOVERY = 10,  /* an announcement (or withdrawal) reaches a browser */
    SIM_EV_WORK = 11,       /* a work_submit job runs and completes */
    SIM_EV_RETRANSMIT = 12, /* a stream's segments held by a partition: try again */
};

struct sim_node;
struct sim_conn;

struct sim_event {
    struct ppdb_timer timer; /* cb = sim_event_fire_cb, owner = node it runs on */
    uint8_t kind;
    uint8_t pool_class;     /* free list it returns to (world.c); 0: the allocator's */
    struct sim_event *next; /* parked list; free list while pooled */
};
#define SIM_POOL_STEP 64u
#define SIM_POOL_MAX  4096u

struct sim_udp_event {
    struct sim_event ev;
    struct ppdb_addr from, to;
    uint32_t len;
    uint8_t data[];
};

/* SYN, CONNECTED, FIN, RST, RESUME, RETRANSMIT. `side` is the end it
 * concerns; status: CONNECTED's result, or the error an RST delivers
 * (0: PPDB_ECONNRESET). */
struct sim_conn_event {
    struct sim_event ev;
    struct sim_conn *conn;
    uint8_t side;
    int status;
};

/* DATA (side = receiving end), then reused as WRITE_DONE at the writer. */
struct sim_data_event {
    struct sim_event ev;
    struct sim_conn *conn;
    uint8_t side;
    bool in_wq; /* the writer still waits for its completion */
    int status;
    struct sim_data_event *wq_prev, *wq_next;
    ppdb_write_cb cb;
    void *cb_data;
    uint32_t len;
    uint8_t data[];
};

struct sim_canceled_write {
    ppdb_write_cb cb;
    void *data;
};

struct sim_close_event {
    struct sim_event ev;
    struct sim_conn *conn;
    uint8_t side;
    ppdb_close_cb cb;
    void *cb_data;
    uint32_t count;
    struct sim_canceled_write writes[];
};

/* An announcement: immutable once made, shared by the discovery events
 * that carry it. */
struct sim_announcement {
    uint32_t refs;
    uint32_t node;
    struct ppdb_service svc;
};

struct sim_browser {
    struct sim_browser *next; /* world list, in browse order */
    struct sim_node *node;
    ppdb_discovery_cb cb;
    void *data;
    bool matches; /* browsed type == the world's service type */
};

struct sim_discovery_event {
    struct sim_event ev;
    struct sim_announcement *ann;
    struct sim_browser *browser;
    bool up;
};

struct sim_work_event {
    struct sim_event ev;
    ppdb_work_fn work;
    ppdb_work_done_cb done;
    void *data;
};

/* Handles. A crashed node's handles are `dead`: unreachable from the
 * network, freed by their close call or by ppdb_sim_free. */
struct sim_udp {
    struct sim_udp *next; /* node list */
    struct sim_node *node;
    uint16_t port;
    bool dead;
    ppdb_udp_recv_cb cb;
    void *data;
};

struct sim_listener {
    struct sim_listener *next; /* node list */
    struct sim_node *node;
    uint16_t port;
    bool dead;
    ppdb_accept_cb cb;
    void *data;
};

enum sim_end_state { SIM_END_IDLE = 0, SIM_END_CONNECTING, SIM_END_OPEN, SIM_END_CLOSED };

struct sim_end {
    struct sim_conn *conn;
    struct sim_node *node;
    struct sim_end *prev, *next; /* node list of live ends (for crash) */
    uint8_t side;
    uint8_t state;
    bool held;   /* the user (or a pending connect) holds this end */
    bool linked; /* in node->ends */
    bool reading;
    bool shut_wr;    /* FIN sent */
    bool read_ended; /* end of stream or reset delivered (or parked) */
    bool reset;      /* peer reset: writes fail */
    bool resume_armed;
    bool retransmit_armed;
    ppdb_read_cb read_cb;
    void *read_data;
    struct ppdb_addr local, peer;
    uint64_t out_due_ms;  /* due time of the last segment sent: FIFO floor */
    size_t pending_bytes; /* written, not yet delivered */
    struct sim_data_event *wq_head, *wq_tail;
    struct sim_event *parked_head, *parked_tail;
    /* inbound segments held while the path from the peer is partitioned,
     * in arrival order, since stalled_since_ms (TCP retransmitting them) */
    struct sim_event *stalled_head, *stalled_tail;
    uint64_t stalled_since_ms;
};

struct sim_conn {
    uint32_t refs; /* held ends + events that point here */
    ppdb_connect_cb connect_cb;
    void *connect_data;
    struct sim_end ends[2]; /* 0: connecting side, 1: accepting side */
};

struct sim_node {
    struct ppdb_env env; /* first: a node's env pointer is the node */
    struct ppdb_logger log;
    struct ppdb_sim *sim;
    uint32_t index;
    bool crashed;
    uint16_t next_port; /* ephemeral port cursor */
    uint32_t handles;   /* udp sockets + listeners */
    uint32_t browsers;
    int64_t skew_ms;
    double drift_ppm;
    bool paused;
    uint8_t group;               /* partition group */
    uint64_t egress_bytes_per_s; /* 0: unlimited */
    uint64_t egress_busy_us;     /* virtual us at which the egress link is free */
    struct ppdb_timer **held;    /* entries due while paused, in run order */
    uint32_t held_len, held_cap;
    struct ppdb_rng rng;     /* env->random */
    struct ppdb_rng net_rng; /* this node's outbound link draws */
    struct sim_udp *udps;
    struct sim_listener *listeners;
    struct sim_end *ends;
    struct sim_announcement *ann;
    struct ppdb_sim_node_stats stats;
};

struct sim_link_override {
    uint64_t key; /* from << 32 | to */
    struct ppdb_sim_link link;
};

/* The event queue (queue.c): a timing wheel of 1 ms buckets over
 * SIM_WHEEL_MS, and a heap for entries due later. Records are indexed by
 * id (an armed timer's heap_index). */
#define SIM_WHEEL_MS 8192u
struct sim_qrec {
    struct ppdb_timer *t; /* NULL: free */
    uint32_t next, prev;  /* bucket list; in the far heap: next = FAR, prev = position */
};
struct sim_qfar {
    uint64_t due_ms, seq;
    uint32_t id;
};
struct sim_queue {
    uint32_t len, cap;    /* entries, and the bound on them */
    uint32_t wheel_len;   /* entries in buckets (the rest are far) */
    uint64_t base;        /* no entry is due before it */
    uint64_t next_seq;    /* push counter: ties on due_ms run in push order */
    struct sim_qrec *rec; /* records [0, used), free ones chained by next */
    uint32_t used, rec_cap, free;
    struct sim_qfar *far;
    uint32_t far_len, far_cap;
    uint64_t bits[SIM_WHEEL_MS / 64];
    uint32_t head[SIM_WHEEL_MS], tail[SIM_WHEEL_MS];
};
int sim_queue_init(struct sim_queue *q, uint32_t cap);
void sim_queue_deinit(struct sim_queue *q);
/* Arms t at due_ms (>= every due time popped so far; re-arms if armed):
 * t->due_ms, seq and heap_index are set. PPDB_ELIMIT at cap entries. */
int sim_queue_push(struct sim_queue *q, struct ppdb_timer *t, uint64_t due_ms);
void sim_queue_remove(struct sim_queue *q, struct ppdb_timer *t);
/* The earliest entry by (due_ms, seq), or NULL; pop also removes it. */
struct ppdb_timer *sim_queue_peek(const struct sim_queue *q);
struct ppdb_timer *sim_queue_pop(struct sim_queue *q);
/* Tells the queue nothing earlier than now_ms will be pushed or remains. */
void sim_queue_advance(struct sim_queue *q, uint64_t now_ms);
/* The entry of record i < q->used, or NULL (free record): for scans. */
struct ppdb_timer *sim_queue_at(const struct sim_queue *q, uint32_t i);

struct ppdb_sim {
    struct ppdb_sim_options opts;
    uint64_t now_ms;
    uint64_t trace;
    bool freeing; /* ppdb_sim_free: events are released, nothing is scheduled */
    struct sim_queue queue;
    uint32_t events_queued; /* world events in the queue (the rest are node timers) */
    struct sim_node **nodes;
    uint32_t node_count, node_cap;
    struct sim_link_override *links; /* sorted by key */
    uint32_t link_count, link_cap;
    struct sim_browser *browsers;
    struct ppdb_sim_stats stats;
    uint64_t blocked[PPDB_SIM_MAX_GROUPS]; /* bit g of blocked[f]: group f -> g dropped */
    bool any_blocked;
    uint32_t current; /* node whose entry runs now, UINT32_MAX between entries */
    struct sim_event *pool[SIM_POOL_MAX / SIM_POOL_STEP + 1]; /* free events by size class */
};

/* A node timer held by a paused node (heap_index while in node->held). */
#define SIM_TIMER_HELD (PPDB_TIMER_IDLE - 1u)

/* One draw of the link model for a datagram. */
struct sim_draw {
    uint64_t delay_ms;
    uint64_t dup_delay_ms;
    bool lost, dup, reordered;
};

/* world.c */
void sim_event_fire_cb(struct ppdb_timer *t);
/* Allocates an event of `head` zeroed bytes (the event's struct) followed
 * by `tail` bytes the caller fills (a payload). `user` events (started by
 * a node's call) are refused at max_events (NULL, counted by the caller). */
void *sim_event_new(struct ppdb_sim *sim, uint8_t kind, size_t head, size_t tail, bool user);
/* Queues ev to run on node `owner` at due_ms. On a full queue the event is
 * released (overflow counted) and PPDB_ELIMIT returned. */
int sim_event_push(struct ppdb_sim *sim, struct sim_event *ev, uint32_t owner, uint64_t due_ms);
/* Releases an event without running it (per-kind cleanup, no callbacks). */
void sim_event_release(struct ppdb_sim *sim, struct sim_event *ev);
/* Runs the per-kind consequence of an event that cannot run on its node
 * (the node is down): refuse a SYN, fail a write, count a datagram. */
void sim_event_drop(struct ppdb_sim *sim, struct sim_event *ev);
struct sim_node *sim_node_of_env(struct ppdb_env *env);
struct sim_node *sim_node_at(const struct ppdb_sim *sim, uint32_t index);
void sim_node_addr_fill(const struct sim_node *n, uint16_t port, struct ppdb_addr *out);

/* net.c */
uint64_t sim_link_delay(struct ppdb_sim *sim, struct sim_node *from, uint32_t to, bool *lost);
/* fault.c: the extended model */
void sim_link_draw(struct ppdb_sim *sim, struct sim_node *from, uint32_t to, struct sim_draw *d);
uint64_t sim_tail_ms(struct ppdb_rng *rng, const struct ppdb_sim_link *l);
const struct ppdb_sim_link *sim_link_of(const struct ppdb_sim *sim, uint32_t from, uint32_t to);
bool sim_blocked(const struct ppdb_sim *sim, uint32_t from, uint32_t to);
/* Queueing delay (ms) of len bytes on the sender's egress link; UINT64_MAX
 * if a datagram would wait past max_egress_queue_ms (nothing is reserved). */
uint64_t sim_egress_delay(struct sim_node *from, size_t len, bool datagram);
/* Holds a popped entry of a paused node; false if it could not be held. */
bool sim_hold(struct sim_node *n, struct ppdb_timer *t);
/* Removes a held node timer (cancel or re-arm while paused). */
void sim_unhold_timer(struct sim_node *n, struct ppdb_timer *t);
/* Crash of a paused node: drop what it held. */
void sim_drop_held(struct ppdb_sim *sim, struct sim_node *n);
/* Node index of a virtual IPv4 address, or UINT32_MAX. */
uint32_t sim_addr_index(const struct ppdb_sim *sim, const struct ppdb_addr *a);
/* Resolves a bind address for node n: 0 with *port_out (ephemeral if 0). */
int sim_bind_port(struct sim_node *n, const struct ppdb_addr *bind, bool listener,
                  uint16_t *port_out);
struct sim_listener *sim_listener_find(struct sim_node *n, uint16_t port);
void sim_udp_fire(struct ppdb_sim *sim, struct sim_udp_event *ev);
void sim_udp_kill_all(struct sim_node *n);
void sim_udp_free_all(struct sim_node *n);
extern const struct ppdb_env_ops sim_env_ops;
int sim_udp_open(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_udp_recv_cb cb,
                 void *data, struct ppdb_udp **u_out);
int sim_udp_send(struct ppdb_env *env, struct ppdb_udp *u, const struct ppdb_addr *to,
                 const void *buf, size_t len);
int sim_udp_local_addr(struct ppdb_env *env, struct ppdb_udp *u, struct ppdb_addr *out);
void sim_udp_close(struct ppdb_env *env, struct ppdb_udp *u);

/* stream.c */
void sim_stream_fire(struct ppdb_sim *sim, struct sim_event *ev);
void sim_stream_drop(struct ppdb_sim *sim, struct sim_event *ev);
void sim_stream_release(struct ppdb_sim *sim, struct sim_event *ev);
void sim_stream_crash(struct sim_node *n);
void sim_stream_free_all(struct sim_node *n);
int sim_listen(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_accept_cb cb, void *data,
               struct ppdb_listener **l_out);
int sim_listener_addr(struct ppdb_env *env, struct ppdb_listener *l, struct ppdb_addr *out);
void sim_listener_close(struct ppdb_env *env, struct ppdb_listener *l);
int sim_connect(struct ppdb_env *env, const struct ppdb_addr *to, ppdb_connect_cb cb, void *data);
int sim_read_start(struct ppdb_env *env, struct ppdb_stream *s, ppdb_read_cb cb, void *data);
void sim_read_stop(struct ppdb_env *env, struct ppdb_stream *s);
int sim_write(struct ppdb_env *env, struct ppdb_stream *s, const void *buf, size_t len,
              ppdb_write_cb cb, void *data);
size_t sim_pending(struct ppdb_env *env, struct ppdb_stream *s);
int sim_shutdown(struct ppdb_env *env, struct ppdb_stream *s);
int sim_peer_addr(struct ppdb_env *env, struct ppdb_stream *s, struct ppdb_addr *out);
void sim_stream_close(struct ppdb_env *env, struct ppdb_stream *s, ppdb_close_cb cb, void *data);

/* env_sim.c */
void sim_node_env_init(struct sim_node *n);
void sim_discovery_fire(struct ppdb_sim *sim, struct sim_discovery_event *ev);
void sim_discovery_release(struct sim_discovery_event *ev);
void sim_discovery_crash(struct sim_node *n);
void sim_announcement_unref(struct sim_announcement *a);
void sim_work_fire(struct ppdb_sim *sim, struct sim_work_event *ev);

#endif /* PPDB_SIM_INTERNAL_H */
