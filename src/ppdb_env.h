/*
 * ppdb_env.h - the environment seam of protocol code (DESIGN.md, seam 1).
 *
 * Everything protocol code (messaging, SWIM, DHT, ring, replication,
 * handshakes, framing) needs from the outside world comes through one
 * `struct ppdb_env`: monotonic and wall time, timers, datagrams, byte
 * streams, randomness, LAN discovery and `work_submit` (run a blocking job
 * off the loop). Two implementations exist:
 *
 *   - src/env_uv.c: libuv (one loop, one thread), the real network;
 *   - sim/: a virtual clock and one event queue shared by thousands of
 *     nodes, with a simulated network (latency, loss, partitions, ...).
 *
 * Because protocol code sees only this table, the simulator runs exactly
 * the code the daemon runs, and a seed replays a whole cluster.
 *
 * Threading: an env is single-threaded. Every call and every callback
 * happens on the thread that runs the env's loop, except the `work` half of
 * work_submit. Callbacks are never made from inside the call that arms
 * them (no re-entrancy): a send, connect or timer_arm always completes later.
 *
 * Ordering: events due at the same time run in the order they were armed
 * (timers by arm order, datagrams by send order); implementations must not
 * break ties by pointer or hash order.
 *
 * Handles (ppdb_udp, ppdb_stream, ppdb_listener) are owned by the env from
 * open to close; timers and work items are caller-owned memory that must
 * stay valid while armed/submitted.
 */
#ifndef PPDB_ENV_H
#define PPDB_ENV_H

#include "ppdb_base.h"

/* ------------------------------------------------------------- addresses */

#define PPDB_ADDR_STRLEN 64 /* "[ffff:...:ffff]:65535" and a NUL fit */

/* An IPv4 or IPv6 address and port. UDP and TCP of a node use one port. */
struct ppdb_addr {
    uint8_t family; /* 4 or 6; 0 = unset */
    uint8_t pad_;
    uint16_t port;  /* host byte order */
    uint8_t ip[16]; /* IPv4 in ip[0..3] */
};

/* "1.2.3.4:5", "[::1]:5", "localhost:5" (localhost only: no DNS). */
int ppdb_addr_parse(const char *s, struct ppdb_addr *out);
/* Writes "1.2.3.4:5" or "[::1]:5"; out has PPDB_ADDR_STRLEN bytes. Returns out. */
char *ppdb_addr_format(const struct ppdb_addr *a, char *out);
bool ppdb_addr_equal(const struct ppdb_addr *a, const struct ppdb_addr *b);
/* Total order (family, ip, port) for sorted tables. */
int ppdb_addr_cmp(const struct ppdb_addr *a, const struct ppdb_addr *b);
void ppdb_addr_ipv4(struct ppdb_addr *out, uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                    uint16_t port);
bool ppdb_addr_is_loopback(const struct ppdb_addr *a);

/* ---------------------------------------------------------------- timers */

struct ppdb_env;
struct ppdb_timer;
typedef void (*ppdb_timer_cb)(struct ppdb_timer *t);

/* Caller-owned. Initialise once with ppdb_timer_init; arm and cancel any
 * number of times. The fields after `data` belong to the env while armed. */
struct ppdb_timer {
    ppdb_timer_cb cb;
    void *data;          /* the caller's */
    uint64_t due_ms;     /* absolute mono_ms at which it fires */
    uint64_t seq;        /* arm order, breaks ties between equal due_ms */
    uint32_t heap_index; /* PPDB_TIMER_IDLE when not armed */
    uint32_t owner;      /* implementation's use (e.g. node index in the simulator) */
};
#define PPDB_TIMER_IDLE UINT32_MAX

static inline void ppdb_timer_init(struct ppdb_timer *t, ppdb_timer_cb cb, void *data)
{
    memset(t, 0, sizeof(*t));
    t->cb = cb;
    t->data = data;
    t->heap_index = PPDB_TIMER_IDLE;
}
static inline bool ppdb_timer_armed(const struct ppdb_timer *t)
{
    return t->heap_index != PPDB_TIMER_IDLE;
}

/* A binary min-heap of timers ordered by (due_ms, seq): the one timer
 * queue both env implementations use. Bounded by `cap` (from config). */
struct ppdb_timer_heap {
    struct ppdb_timer **items;
    uint32_t len;
    uint32_t cap;
    uint64_t next_seq;
};
int ppdb_timer_heap_init(struct ppdb_timer_heap *h, uint32_t cap);
void ppdb_timer_heap_deinit(struct ppdb_timer_heap *h);
/* Arms t at due_ms (re-arms if armed). PPDB_ELIMIT when full. */
int ppdb_timer_heap_push(struct ppdb_timer_heap *h, struct ppdb_timer *t, uint64_t due_ms);
void ppdb_timer_heap_remove(struct ppdb_timer_heap *h, struct ppdb_timer *t);
static inline struct ppdb_timer *ppdb_timer_heap_peek(const struct ppdb_timer_heap *h)
{
    return h->len ? h->items[0] : NULL;
}
/* Removes and returns the earliest timer, or NULL. */
struct ppdb_timer *ppdb_timer_heap_pop(struct ppdb_timer_heap *h);

/* ------------------------------------------------------------- handles */

struct ppdb_udp;      /* a bound datagram socket */
struct ppdb_listener; /* a listening stream socket */
struct ppdb_stream;   /* a connected byte stream */

/* Datagram received. buf is borrowed for the call. */
typedef void (*ppdb_udp_recv_cb)(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                                 const uint8_t *buf, size_t len);

/* A new inbound stream. The callee owns s: it must call
 * ppdb_env_stream_read_start (or close it) before returning. */
typedef void (*ppdb_accept_cb)(void *data, struct ppdb_listener *l, struct ppdb_stream *s);
/* Outbound connect finished: status 0 and s, or status < 0 and s == NULL. */
typedef void (*ppdb_connect_cb)(void *data, struct ppdb_stream *s, int status);
/* Bytes arrived (status 0; buf borrowed for the call), or the stream ended:
 * status PPDB_ECLOSED for an orderly end of stream, another PPDB_E* for an
 * error (PPDB_ECONNRESET, ...). After an end, no more reads are delivered. */
typedef void (*ppdb_read_cb)(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                             int status);
/* A write finished (0) or failed/was canceled by close (< 0). */
typedef void (*ppdb_write_cb)(void *data, struct ppdb_stream *s, int status);
/* The handle is gone; no callback of it follows. */
typedef void (*ppdb_close_cb)(void *data);

/* Blocking job for work_submit: `work` runs on another thread (or, in the
 * simulator, as an event at a later virtual time) and must not touch the
 * env; `done` runs on the loop afterwards. */
typedef void (*ppdb_work_fn)(void *data);
typedef void (*ppdb_work_done_cb)(void *data, int status);

/* --------------------------------------------------------------- discovery */

#define PPDB_SVC_NAME_MAX 64
#define PPDB_SVC_TXT_MAX 8
#define PPDB_SVC_TXT_LEN 96

/* A service announced on (or found on) the LAN. txt holds "key=value". */
struct ppdb_service {
    char name[PPDB_SVC_NAME_MAX];
    struct ppdb_addr addr;
    uint32_t txt_count;
    char txt[PPDB_SVC_TXT_MAX][PPDB_SVC_TXT_LEN];
};
/* up = true: found or changed; false: withdrawn (a hint only: liveness
 * comes from membership, never from discovery). */
typedef void (*ppdb_discovery_cb)(void *data, const struct ppdb_service *svc, bool up);

/* PPDB's own service (docs/protocols/discovery.md): type, and the TXT keys
 * every node announces. The key fingerprint is the cluster key id (never
 * the key), so a browser can skip the services of other meshes. */
#define PPDB_SVC_TYPE        "_ppdb._udp"
#define PPDB_SVC_TXT_ID      "id" /* node id, 40 lowercase hex digits */
#define PPDB_SVC_TXT_VERSION "v"  /* wire protocol version, decimal */
#define PPDB_SVC_TXT_KEY     "ck" /* cluster key id, 8 lowercase hex digits */

/* Appends "key=value" to svc->txt. PPDB_ELIMIT when PPDB_SVC_TXT_MAX
 * entries are there, PPDB_ERANGE when the entry is too long. */
int ppdb_service_txt_add(struct ppdb_service *svc, const char *key, const char *value);
/* The value of TXT entry `key` (borrowed from svc), or NULL. */
const char *ppdb_service_txt_get(const struct ppdb_service *svc, const char *key);
/* Whether svc carries the exact entry "key=value" given as `entry`. */
bool ppdb_service_txt_has(const struct ppdb_service *svc, const char *entry);

/* State of an env's LAN discovery, for status output. */
enum ppdb_discovery_state {
    PPDB_DISCOVERY_OFF = 0,         /* not enabled in this env */
    PPDB_DISCOVERY_UNAVAILABLE = 1, /* no D-Bus or no Avahi client: seeds only */
    PPDB_DISCOVERY_WAITING = 2,     /* client up, daemon absent (or restarting) */
    PPDB_DISCOVERY_RUNNING = 3,     /* daemon connected */
};
const char *ppdb_discovery_state_name(int state); /* "off", "unavailable", ... */

/* ------------------------------------------------------------------ env */

struct ppdb_env_ops {
    uint64_t (*mono_ms)(struct ppdb_env *env);
    int64_t (*wall_ms)(struct ppdb_env *env);
    /* Arm t to fire `delay_ms` from now (re-arms if armed). */
    int (*timer_arm)(struct ppdb_env *env, struct ppdb_timer *t, uint64_t delay_ms);
    /* Idempotent. After it returns, t's callback does not run. */
    void (*timer_cancel)(struct ppdb_env *env, struct ppdb_timer *t);
    void (*random)(struct ppdb_env *env, void *buf, size_t len);

    int (*udp_open)(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_udp_recv_cb cb,
                    void *data, struct ppdb_udp **u_out);
    /* Copies buf. Fire and forget: a datagram may be lost; a local failure
     * (queue full, too large, no route) returns an error and is counted. */
    int (*udp_send)(struct ppdb_env *env, struct ppdb_udp *u, const struct ppdb_addr *to,
                    const void *buf, size_t len);
    int (*udp_local_addr)(struct ppdb_env *env, struct ppdb_udp *u, struct ppdb_addr *out);
    void (*udp_close)(struct ppdb_env *env, struct ppdb_udp *u);

    int (*listen)(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_accept_cb cb,
                  void *data, struct ppdb_listener **l_out);
    int (*listener_addr)(struct ppdb_env *env, struct ppdb_listener *l, struct ppdb_addr *out);
    void (*listener_close)(struct ppdb_env *env, struct ppdb_listener *l);
    /* On error returns < 0 and never calls cb. */
    int (*connect)(struct ppdb_env *env, const struct ppdb_addr *to, ppdb_connect_cb cb,
                   void *data);
    int (*stream_read_start)(struct ppdb_env *env, struct ppdb_stream *s, ppdb_read_cb cb,
                             void *data);
    /* Stop delivering reads (back-pressure); read_start resumes. */
    void (*stream_read_stop)(struct ppdb_env *env, struct ppdb_stream *s);
    /* buf is borrowed until cb runs. Writes complete in order. */
    int (*stream_write)(struct ppdb_env *env, struct ppdb_stream *s, const void *buf, size_t len,
                        ppdb_write_cb cb, void *data);
    /* Bytes accepted by stream_write and not yet written out. */
    size_t (*stream_pending)(struct ppdb_env *env, struct ppdb_stream *s);
    /* Half-close: no more writes; the peer reads end of stream after the
     * pending writes. */
    int (*stream_shutdown)(struct ppdb_env *env, struct ppdb_stream *s);
    int (*stream_peer_addr)(struct ppdb_env *env, struct ppdb_stream *s, struct ppdb_addr *out);
    /* Pending writes complete with PPDB_ECANCELED, then cb (may be NULL). */
    void (*stream_close)(struct ppdb_env *env, struct ppdb_stream *s, ppdb_close_cb cb,
                         void *data);

    /* LAN discovery. PPDB_EUNAVAIL when the environment has none (e.g. no
     * Avahi daemon); callers carry on with seeds. */
    int (*announce)(struct ppdb_env *env, const struct ppdb_service *svc);
    void (*withdraw)(struct ppdb_env *env);
    int (*browse)(struct ppdb_env *env, const char *type, ppdb_discovery_cb cb, void *data);

    int (*work_submit)(struct ppdb_env *env, ppdb_work_fn work, ppdb_work_done_cb done,
                       void *data);
};

/* Implementations embed this as their first member. */
struct ppdb_env {
    const struct ppdb_env_ops *ops;
    struct ppdb_logger *log; /* never NULL */
};

/* Thin inline wrappers so call sites read as verbs. */
static inline uint64_t ppdb_env_mono_ms(struct ppdb_env *e)
{
    return e->ops->mono_ms(e);
}
static inline int64_t ppdb_env_wall_ms(struct ppdb_env *e)
{
    return e->ops->wall_ms(e);
}
static inline int ppdb_env_timer_arm(struct ppdb_env *e, struct ppdb_timer *t, uint64_t delay_ms)
{
    return e->ops->timer_arm(e, t, delay_ms);
}
static inline void ppdb_env_timer_cancel(struct ppdb_env *e, struct ppdb_timer *t)
{
    e->ops->timer_cancel(e, t);
}
static inline void ppdb_env_random(struct ppdb_env *e, void *buf, size_t len)
{
    e->ops->random(e, buf, len);
}
static inline uint64_t ppdb_env_random_u64(struct ppdb_env *e)
{
    uint64_t v;
    e->ops->random(e, &v, sizeof(v));
    return v;
}
/* Uniform in [0, bound), bound > 0. */
uint64_t ppdb_env_random_below(struct ppdb_env *e, uint64_t bound);

static inline int ppdb_env_udp_open(struct ppdb_env *e, const struct ppdb_addr *bind,
                                    ppdb_udp_recv_cb cb, void *data, struct ppdb_udp **u_out)
{
    return e->ops->udp_open(e, bind, cb, data, u_out);
}
static inline int ppdb_env_udp_send(struct ppdb_env *e, struct ppdb_udp *u,
                                    const struct ppdb_addr *to, const void *buf, size_t len)
{
    return e->ops->udp_send(e, u, to, buf, len);
}
static inline int ppdb_env_udp_local_addr(struct ppdb_env *e, struct ppdb_udp *u,
                                          struct ppdb_addr *out)
{
    return e->ops->udp_local_addr(e, u, out);
}
static inline void ppdb_env_udp_close(struct ppdb_env *e, struct ppdb_udp *u)
{
    e->ops->udp_close(e, u);
}
static inline int ppdb_env_listen(struct ppdb_env *e, const struct ppdb_addr *bind,
                                  ppdb_accept_cb cb, void *data, struct ppdb_listener **l_out)
{
    return e->ops->listen(e, bind, cb, data, l_out);
}
static inline int ppdb_env_listener_addr(struct ppdb_env *e, struct ppdb_listener *l,
                                         struct ppdb_addr *out)
{
    return e->ops->listener_addr(e, l, out);
}
static inline void ppdb_env_listener_close(struct ppdb_env *e, struct ppdb_listener *l)
{
    e->ops->listener_close(e, l);
}
static inline int ppdb_env_connect(struct ppdb_env *e, const struct ppdb_addr *to,
                                   ppdb_connect_cb cb, void *data)
{
    return e->ops->connect(e, to, cb, data);
}
static inline int ppdb_env_stream_read_start(struct ppdb_env *e, struct ppdb_stream *s,
                                             ppdb_read_cb cb, void *data)
{
    return e->ops->stream_read_start(e, s, cb, data);
}
static inline void ppdb_env_stream_read_stop(struct ppdb_env *e, struct ppdb_stream *s)
{
    e->ops->stream_read_stop(e, s);
}
static inline int ppdb_env_stream_write(struct ppdb_env *e, struct ppdb_stream *s, const void *buf,
                                        size_t len, ppdb_write_cb cb, void *data)
{
    return e->ops->stream_write(e, s, buf, len, cb, data);
}
static inline size_t ppdb_env_stream_pending(struct ppdb_env *e, struct ppdb_stream *s)
{
    return e->ops->stream_pending(e, s);
}
static inline int ppdb_env_stream_shutdown(struct ppdb_env *e, struct ppdb_stream *s)
{
    return e->ops->stream_shutdown(e, s);
}
static inline int ppdb_env_stream_peer_addr(struct ppdb_env *e, struct ppdb_stream *s,
                                            struct ppdb_addr *out)
{
    return e->ops->stream_peer_addr(e, s, out);
}
static inline void ppdb_env_stream_close(struct ppdb_env *e, struct ppdb_stream *s,
                                         ppdb_close_cb cb, void *data)
{
    e->ops->stream_close(e, s, cb, data);
}
static inline int ppdb_env_announce(struct ppdb_env *e, const struct ppdb_service *svc)
{
    return e->ops->announce(e, svc);
}
static inline void ppdb_env_withdraw(struct ppdb_env *e)
{
    e->ops->withdraw(e);
}
static inline int ppdb_env_browse(struct ppdb_env *e, const char *type, ppdb_discovery_cb cb,
                                  void *data)
{
    return e->ops->browse(e, type, cb, data);
}
static inline int ppdb_env_work_submit(struct ppdb_env *e, ppdb_work_fn work,
                                       ppdb_work_done_cb done, void *data)
{
    return e->ops->work_submit(e, work, done, data);
}

/* ------------------------------------------------------- libuv implementation */

struct uv_loop_s;
struct ppdb_env_uv; /* opaque; see src/env_uv.c */

struct ppdb_env_uv_options {
    uint32_t max_timers;       /* bound of the timer heap (default 65536) */
    uint32_t max_udp_queue;    /* datagrams queued for send per socket (default 4096) */
    size_t max_stream_pending; /* bytes queued per stream before write fails (default 64 MiB) */
    /* LAN discovery through Avahi (mDNS/DNS-SD) on this loop. Off by
     * default: announce/browse then answer PPDB_EUNAVAIL. */
    bool discovery;
    /* Found services are delivered only if their TXT has this exact entry
     * (e.g. "ck=1a2b3c4d", the cluster key fingerprint); empty: all. */
    char discovery_match[PPDB_SVC_TXT_LEN];
    uint32_t max_discovered; /* services tracked at once (default 256) */
};
void ppdb_env_uv_options_default(struct ppdb_env_uv_options *o);

/* Creates an env on `loop` (not owned; the caller runs it with uv_run).
 * log may be NULL (the default logger). Free with ppdb_env_uv_free after
 * closing every handle; it runs the loop until its own handles are closed. */
int ppdb_env_uv_new(struct uv_loop_s *loop, const struct ppdb_env_uv_options *o,
                    struct ppdb_logger *log, struct ppdb_env_uv **out);
void ppdb_env_uv_free(struct ppdb_env_uv *e);
struct ppdb_env *ppdb_env_uv_env(struct ppdb_env_uv *e);

/* Discovery counters of a libuv env (all zero when discovery is off). */
struct ppdb_discovery_stats {
    uint64_t published;        /* announcements the daemon confirmed */
    uint64_t name_collisions;  /* service renamed after a collision */
    uint64_t found;            /* services delivered up=true */
    uint64_t removed;          /* services delivered up=false */
    uint64_t filtered;         /* resolved services dropped by discovery_match */
    uint64_t resolve_failures; /* resolver timeouts and errors */
    uint64_t table_full;       /* services ignored: max_discovered reached */
    uint64_t client_restarts;  /* Avahi client recreated (daemon or bus restart) */
};
/* enum ppdb_discovery_state of e's discovery. */
int ppdb_env_uv_discovery_state(struct ppdb_env_uv *e);
void ppdb_env_uv_discovery_stats(struct ppdb_env_uv *e, struct ppdb_discovery_stats *out);

#endif /* PPDB_ENV_H */
