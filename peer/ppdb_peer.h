/*
 * ppdb_peer.h - the public header of the peer module: a PPDB node.
 *
 * A `struct ppdb_node` composes, on one env (src/ppdb_env.h):
 *
 *   - the node's identity and a keyring (both given by the caller and
 *     borrowed: the daemon loads them from its data directory, the
 *     simulator generates them from the env RNG);
 *   - the message registry (src/ppdb_wire.h) every module adds its types to;
 *   - one UDP socket on the listen address and a `struct ppdb_dgram` that
 *     seals and opens everything on it. Opened envelopes are dispatched by
 *     type range to registered modules (SWIM today; DHT and ring register
 *     the same way); PPDB_MSG_PING is answered with PPDB_MSG_PONG;
 *   - one encrypted stream endpoint (src/ppdb_stream.h, role NODE) on the
 *     same port number whose requests are dispatched by type range too
 *     (ppdb_node_serve), used by SWIM's push/pull and by the admin
 *     queries. CLIENT-role peers (the CLI) reach the admin range only;
 *     anything else they send is refused and counted (client_refused);
 *   - SWIM membership with Lifeguard (peer/swim.h, docs/protocols/membership.md).
 *
 * Everything runs on the env's loop thread; nothing here blocks or calls the
 * OS, so the simulator runs a thousand nodes in one process.
 *
 * Ownership: ppdb_node_new allocates the node; ppdb_node_free releases it
 * and every handle it opened. The env, identity and keyring are borrowed
 * and must outlive the node. Every buffer passed in is borrowed for the call;
 * every pointer handed to a callback is borrowed for that callback.
 */
#ifndef PPDB_PEER_H
#define PPDB_PEER_H

#include "ppdb_base.h"
#include "ppdb_env.h"
#include "ppdb_wire.h"

/* ------------------------------------------------------------ members */

/* Member states, in the order SWIM lets one override another at an equal
 * incarnation (alive < suspect < dead; left is final for its incarnation). */
enum ppdb_member_state {
    PPDB_MEMBER_ALIVE = 0,
    PPDB_MEMBER_SUSPECT = 1,
    PPDB_MEMBER_DEAD = 2,
    PPDB_MEMBER_LEFT = 3,
};
const char *ppdb_member_state_name(int state); /* "alive", ...; "?" otherwise */

#define PPDB_NODE_MAX_SEEDS   16
#define PPDB_NODE_MAX_TAGS    8
#define PPDB_NODE_TAG_LEN     64  /* "key=value" and a NUL */
#define PPDB_NODE_MAX_CLIENTS 4   /* client protocol addresses (RESP, memcached, ...) */
#define PPDB_MEMBER_META_MAX  512 /* encoded client addresses + tags + ring tokens */

/* A member as the layers above see it: a copy, decoded from the compact
 * table entry. `meta` holds the opaque metadata bytes (client addresses,
 * tags and, later, ring tokens) exactly as the member announced them. */
struct ppdb_member_info {
    struct ppdb_node_id id;
    struct ppdb_addr addr; /* UDP and stream port of the node */
    uint64_t incarnation;
    uint8_t state;   /* enum ppdb_member_state */
    uint8_t version; /* the member's membership protocol version */
    bool self;
    uint64_t state_ms; /* mono_ms of this node when the state last changed */
    /* Round trip of the last direct probe of this member that its target
     * acked (ms, at least 1, saturating at 65535); 0: unknown (never
     * probed directly yet, or self). */
    uint32_t rtt_ms;
    uint32_t nclients;
    struct ppdb_addr clients[PPDB_NODE_MAX_CLIENTS];
    uint32_t ntags;
    char tags[PPDB_NODE_MAX_TAGS][PPDB_NODE_TAG_LEN];
    uint32_t meta_len;
    uint8_t meta[PPDB_MEMBER_META_MAX];
};

/* -------------------------------------------------------- SWIM parameters */

/* One named parameter profile. Times in ms; "per_log10n" values are
 * multiplied by log10(number of members) (at least 1). See
 * docs/protocols/membership.md for why `lan-default` holds what it holds. */
struct ppdb_swim_params {
    char name[32];
    uint32_t probe_interval_ms;           /* one probe per interval (x local health) */
    uint32_t probe_timeout_ms;            /* direct ack wait before indirect probes */
    uint32_t indirect_k;                  /* members asked to probe on our behalf */
    uint32_t nack_percent;                /* relays nack after this % of the probe timeout */
    uint32_t suspicion_min_per_log10n_ms; /* minimum suspicion timeout */
    uint32_t suspicion_max_mult;          /* maximum = mult x minimum */
    uint32_t suspicion_k;                 /* independent confirmations that reach the minimum */
    uint32_t verify_fanout;               /* expected members re-probing a fresh suspect */
    uint32_t retransmit_mult;             /* retransmit limit = mult x ceil(log10(n + 1)) */
    uint32_t gossip_interval_ms;          /* spread pending updates this often ... */
    uint32_t gossip_nodes;                /* ... to this many random members */
    uint32_t push_pull_interval_ms;       /* base; scaled with log2(n / 32) beyond 32 members */
    uint32_t sync_timeout_ms;             /* one push/pull exchange */
    uint32_t reap_ms;                     /* dead and left members are forgotten after this */
    uint32_t leave_ms;                    /* graceful leave: time given to spread the news */
    uint32_t max_health;                  /* Lifeguard local health multiplier ceiling */
    uint32_t max_members;                 /* member table bound */
    uint32_t max_broadcasts;              /* broadcast queue bound */
    uint32_t max_suspicions;              /* concurrent suspicions bound */
    uint32_t max_probes;                  /* outstanding probes and relayed probes bound */
};
/* Fills *out with the named profile; PPDB_ENOTFOUND for an unknown name.
 * Known: "lan-default". */
int ppdb_swim_profile(const char *name, struct ppdb_swim_params *out);

/* SWIM counters; every drop or refusal lands in one of them. */
struct ppdb_swim_stats {
    uint64_t probes, probe_acks, probe_failures, indirect_sent, indirect_relayed;
    uint64_t nacks_sent, nacks_received, acks_relayed;
    uint64_t suspicions_started, confirmations, refutes, deaths_declared;
    uint64_t updates_applied, updates_ignored, updates_sent;
    uint64_t gossip_msgs, msgs_in, msgs_out, send_errors, bad_msgs;
    uint64_t syncs_started, syncs_ok, syncs_failed, syncs_served;
    uint64_t members_added, members_reaped;
    uint64_t table_full, queue_dropped, suspicions_full, probes_full;
    uint64_t bytes_out;    /* encoded SWIM bodies sent as datagrams */
    uint64_t sync_bytes;   /* push/pull bodies this node encoded (requests and replies) */
    uint32_t health;       /* Lifeguard local health score now (0 = healthy) */
    uint32_t queue_len;    /* broadcasts queued now */
    uint64_t syncs_delta;  /* delta push/pulls started (included in syncs_started) */
    uint64_t sync_records; /* member records received in sync requests and replies */
    uint64_t news_sent, news_received; /* swim.news told to children / that made us pull */
    uint64_t susp_checks;  /* suspicions re-told to their suspect before the timer ran out */
    uint64_t self_replies; /* our alive record sent straight back to a node that doubted us */
};

/* --------------------------------------------------------------- node */

struct ppdb_node;

struct ppdb_node_config {
    struct ppdb_addr listen;    /* UDP and stream port (port 0: any, in tests) */
    struct ppdb_addr advertise; /* address told to others; family 0: the bound one */
    uint32_t nseeds;
    struct ppdb_addr seeds[PPDB_NODE_MAX_SEEDS];
    char profile[32];                      /* default "lan-default" */
    const struct ppdb_swim_params *params; /* NULL: the profile's */
    uint32_t ntags;
    char tags[PPDB_NODE_MAX_TAGS][PPDB_NODE_TAG_LEN]; /* "key=value" */
    uint32_t nclients;
    struct ppdb_addr clients[PPDB_NODE_MAX_CLIENTS];
    /* Starting incarnation; 0: wall clock seconds, so a restarted node
     * beats the "dead" record of its previous run. */
    uint64_t incarnation;
    struct ppdb_dgram_options dgram; /* replay table bounds, null cipher */
    uint32_t max_modules;            /* registered dgram/stream handlers (16) */
    uint32_t max_stream_conns;       /* concurrent stream connections (256) */
    uint32_t max_stream_bytes;       /* one stream request or reply (4 MiB) */
};
void ppdb_node_config_default(struct ppdb_node_config *c);

/* Creates a node on env: opens the UDP socket and the stream listener on
 * cfg->listen, builds the registry, datagram endpoint and SWIM state. It
 * does not talk to anyone until ppdb_node_start. Errors: EINVAL (bad
 * config), ENOTFOUND (unknown profile), EADDRINUSE, ENOMEM, ... */
int ppdb_node_new(struct ppdb_env *env, const struct ppdb_identity *idn,
                  const struct ppdb_keyring *kr, const struct ppdb_node_config *cfg,
                  struct ppdb_node **out);
/* Starts probing and joins through the seeds (push/pull with each; a seed
 * that does not answer is retried by the periodic push/pull). */
int ppdb_node_start(struct ppdb_node *n);
/* Adds a join candidate at runtime (e.g. found by LAN discovery): kept
 * with the configured seeds, and joined through at once when this node is
 * alone. Duplicates and the node's own address are ignored (0); PPDB_ELIMIT
 * past PPDB_NODE_MAX_SEEDS. */
int ppdb_node_add_seed(struct ppdb_node *n, const struct ppdb_addr *addr);
/* Graceful leave: announces "left", gives it leave_ms to spread, stops
 * probing, then calls cb once (status 0). The node stays allocated. */
typedef void (*ppdb_node_done_cb)(void *data, int status);
int ppdb_node_leave(struct ppdb_node *n, ppdb_node_done_cb cb, void *data);
/* Closes every handle and frees the node. Safe at any time (a pending
 * leave's callback is not called). */
void ppdb_node_free(struct ppdb_node *n);
/* Frees a node whose env died and will never call back again (a crashed
 * simulated node): memory only, no env callback awaited (stream endpoint
 * via ppdb_stream_ep_drop; pending request callbacks never run). */
void ppdb_node_drop(struct ppdb_node *n);

/* Calls cb for every member in the table (self included), in table order.
 * Returns the number of members visited. */
typedef void (*ppdb_node_member_cb)(void *data, const struct ppdb_member_info *m);
uint32_t ppdb_node_members(struct ppdb_node *n, ppdb_node_member_cb cb, void *data);
/* One member by id: 0 or PPDB_ENOTFOUND. */
int ppdb_node_member(struct ppdb_node *n, const struct ppdb_node_id *id,
                     struct ppdb_member_info *out);
void ppdb_node_self(struct ppdb_node *n, struct ppdb_member_info *out);
const struct ppdb_node_id *ppdb_node_id(const struct ppdb_node *n);
struct ppdb_env *ppdb_node_env(struct ppdb_node *n);
/* The bound address (resolves port 0). */
int ppdb_node_local_addr(struct ppdb_node *n, struct ppdb_addr *out);

struct ppdb_node_stats {
    uint32_t members[4];     /* by enum ppdb_member_state, self included */
    size_t member_bytes;     /* member table memory, all of it */
    size_t bytes_per_member; /* member_bytes / table capacity in use */
    struct ppdb_swim_stats swim;
    struct ppdb_dgram_stats dgram;
    uint64_t dgrams_in, dgrams_out, dgram_bytes_in, dgram_bytes_out;
    uint64_t pings_answered, unrouted; /* unrouted: no module for the type */
    /* Streams (src/ppdb_stream.h, one endpoint per node): connections
     * accepted and opened, rejections (failed handshakes and fatal frame
     * errors, ppdb_stream_stats_rejected),
     * requests handed to a module, requests refused because a CLIENT-role
     * peer sent a type outside the admin range, and connections holding
     * memory now (closing ones included). */
    uint64_t streams_in, streams_out, stream_errors, requests_served;
    uint64_t client_refused;
    uint32_t stream_conns;
    const char *profile;
};
/* Members by enum ppdb_member_state, self included: the first field of
 * ppdb_node_stats without the rest (cheap enough to call every tick). */
void ppdb_node_member_counts(const struct ppdb_node *n, uint32_t out[4]);
void ppdb_node_stats(struct ppdb_node *n, struct ppdb_node_stats *out);

/* Member changes for the layers above (the ring, checkers). Called after the
 * change, with the new record and the previous state (-1: a new member).
 * Up to 4 subscribers; PPDB_ELIMIT beyond. */
typedef void (*ppdb_node_change_cb)(void *data, const struct ppdb_member_info *m, int old_state);
int ppdb_node_on_change(struct ppdb_node *n, ppdb_node_change_cb cb, void *data);

/* ------------------------------------------------------------ modules */

/* A datagram handler for a type range: the envelope was opened, replay
 * checked and validated against its registered schema. */
typedef void (*ppdb_node_dgram_cb)(void *data, const struct ppdb_addr *from,
                                   const struct ppdb_envelope *msg);
/* Registers the schemas (types within [first, last]) and a handler for the
 * range: one call per module. EEXIST for an overlapping range, ELIMIT past
 * max_modules, ERANGE for a type outside the range. */
int ppdb_node_register_dgram(struct ppdb_node *n, uint32_t first, uint32_t last,
                             const struct ppdb_wire_schema *schemas, uint32_t nschemas,
                             ppdb_node_dgram_cb cb, void *data);
/* Sends one sealed datagram from this node. */
int ppdb_node_send(struct ppdb_node *n, const struct ppdb_addr *to, uint32_t type,
                   uint64_t request_id, const uint8_t *body, size_t body_len);

/* A stream request being served; answer it exactly once with
 * ppdb_node_reply (now or later) . `peer_addr` is the remote socket. */
struct ppdb_node_req {
    uint64_t conn_id;
    uint64_t request_id;
    struct ppdb_node_id peer;
    struct ppdb_addr peer_addr;
};
typedef void (*ppdb_node_request_cb)(void *data, const struct ppdb_node_req *req,
                                     const struct ppdb_envelope *msg);
/* Serves stream requests whose type is in [first, last] (schemas as for
 * datagrams). Same errors as ppdb_node_register_dgram. */
int ppdb_node_serve(struct ppdb_node *n, uint32_t first, uint32_t last,
                    const struct ppdb_wire_schema *schemas, uint32_t nschemas,
                    ppdb_node_request_cb cb, void *data);
/* Answers a served request. ECONNRESET when the requester is gone. */
int ppdb_node_reply(struct ppdb_node *n, const struct ppdb_node_req *req, uint32_t type,
                    const uint8_t *body, size_t body_len);

#endif /* PPDB_PEER_H */
