/*
 * swim.h - SWIM membership with Lifeguard, as an I/O-free state machine.
 *
 * Internal to the peer module (the node, peer/node.c, is its only host; the
 * unit tests reach in). The protocol is described in
 * docs/protocols/membership.md; in short:
 *
 *   probe     every probe interval (x local health) one member, taken in a
 *             randomized round-robin order, gets a PING; no ACK within the
 *             probe timeout: k members get a PING_REQ and probe it for us
 *             (they NACK when it stays silent, Lifeguard); no ACK by the end
 *             of the period: the member is suspected.
 *   suspect   a suspicion times out between min and max (Lifeguard): it
 *             starts at max and shrinks as independent confirmations
 *             arrive; the suspect itself is told, so it can refute with a
 *             higher incarnation. A timed-out suspicion declares it dead.
 *   gossip    every update (alive, suspect, dead, left) is queued in a
 *             bounded broadcast queue and piggybacked on every message
 *             (and on GOSSIP messages to a few random members while the
 *             queue is not empty) until sent retransmit_mult*log10(N) times.
 *   sync      full-state push/pull over a reliable stream with one random
 *             member, its interval scaled with N; a join is a push/pull
 *             with one seed (the next one if it fails). Between them, delta
 *             push/pull with a sticky partner (a random member with a
 *             smaller id, kept while it answers: the partner graph is one
 *             tree): only entries changed since the watermarks of the last
 *             exchange, every second while there is news, backing off while
 *             there is none; a parent with news tells its children
 *             (swim.news). New members travel this way, not by gossip.
 *   health    Lifeguard's local health: missed ACKs and NACKs and refuted
 *             suspicions of ourselves raise a score that stretches our
 *             probe interval and timeout, so a slow node backs off.
 *
 * The host supplies two transports through struct ppdb_swim_io: datagrams
 * (sealed by the node) and a request/response exchange for push/pull. That
 * interface is all SWIM knows of the network.
 */
#ifndef PPDB_SWIM_H
#define PPDB_SWIM_H

#include "ppdb_peer.h"

/* ------------------------------------------------------------ wire types */

#define PPDB_SWIM_VERSION 1

#define PPDB_MSG_SWIM_PING       0x10 /* {0: target id, 7?: updates} */
#define PPDB_MSG_SWIM_ACK        0x11 /* {7?: updates}, request id = the ping's */
#define PPDB_MSG_SWIM_PING_REQ   0x12 /* {0: target id, 1: target addr, 7?: updates} */
#define PPDB_MSG_SWIM_NACK       0x13 /* {7?: updates}, request id = the ping-req's */
#define PPDB_MSG_SWIM_GOSSIP     0x14 /* {7: updates} */
#define PPDB_MSG_SWIM_SYNC       0x15 /* stream request {0: join, 1: count, 2: members, 3..8?} */
#define PPDB_MSG_SWIM_SYNC_REPLY 0x16 /* stream reply, same body */
#define PPDB_MSG_SWIM_NEWS       0x17 /* {0: epoch, 1: lseq}: a parent has changes for us */
/* 0x1F was the interim stream transport chunk: retired, never reuse. */

#define PPDB_SWIM_K_TARGET  0
#define PPDB_SWIM_K_ADDR    1
#define PPDB_SWIM_K_UPDATES 7
#define PPDB_SWIM_K_JOIN    0
#define PPDB_SWIM_K_COUNT   1
#define PPDB_SWIM_K_MEMBERS 2
/* Delta sync (optional; older nodes ignore them and send full state): */
#define PPDB_SWIM_K_EPOCH       3  /* the sender's table epoch */
#define PPDB_SWIM_K_WATERMARK   4  /* every change of the sender up to this lseq is in members */
#define PPDB_SWIM_K_SINCE       5  /* request: send me your changes after this lseq ... */
#define PPDB_SWIM_K_SINCE_EPOCH 6  /* ... of this epoch of yours (else full state) */
#define PPDB_SWIM_K_MORE        7  /* reply: truncated, changes after the watermark remain */
#define PPDB_SWIM_K_DELTA       8  /* members holds changes only, not the full state */
#define PPDB_SWIM_K_SAMPLE      9  /* join request: reply with this many members, not all */
#define PPDB_SWIM_K_DIGEST      10 /* request: digest of the sender's live view */
/* swim.news */
#define PPDB_SWIM_K_NEWS_EPOCH 0
#define PPDB_SWIM_K_NEWS_LSEQ  1

/* Envelope bytes around a body: map, version, type, sender, request id. */
#define PPDB_SWIM_ENVELOPE_MAX 48
/* Largest SWIM datagram body: sealing it never exceeds PPDB_DGRAM_MAX. */
#define PPDB_SWIM_BODY_MAX (PPDB_DGRAM_MAX_PLAIN - PPDB_SWIM_ENVELOPE_MAX)

/* The SWIM schemas (datagram types, then the two stream types). */
extern const struct ppdb_wire_schema ppdb_swim_dgram_schemas[];
extern const uint32_t ppdb_swim_dgram_nschemas;
extern const struct ppdb_wire_schema ppdb_swim_stream_schemas[];
extern const uint32_t ppdb_swim_stream_nschemas;

/* --------------------------------------------------------- member records */

/* A member update as it travels (docs/protocols/membership.md, "records"):
 *   u8 kind = state | PPDB_REC_F_FROM | PPDB_REC_F_FULL
 *   20 node id, varint incarnation
 *   [F_FROM] 20 accuser id
 *   [F_FULL] u8 family (4|6), 4|16 ip, u16be port, u8 version,
 *            varint meta length, meta bytes */
#define PPDB_REC_STATE_MASK 0x03
#define PPDB_REC_F_FROM     0x10
#define PPDB_REC_F_FULL     0x20
#define PPDB_REC_MAX        (1 + 20 + 10 + 20 + 1 + 16 + 2 + 1 + 2 + PPDB_MEMBER_META_MAX)

struct ppdb_swim_rec {
    uint8_t state;
    bool has_from, full;
    struct ppdb_node_id id, from;
    uint64_t incarnation;
    struct ppdb_addr addr;
    uint8_t version;
    uint32_t meta_len;
    const uint8_t *meta; /* borrowed from the decoded bytes */
};
/* Appends one record; PPDB_ENOMEM. */
int ppdb_swim_rec_encode(struct ppdb_buf *b, const struct ppdb_swim_rec *r);
size_t ppdb_swim_rec_size(const struct ppdb_swim_rec *r);
/* Writes one record into out (room for PPDB_REC_MAX); returns its size. */
size_t ppdb_swim_rec_put(uint8_t *out, const struct ppdb_swim_rec *r);
/* Decodes one record; ETRUNC / ECORRUPT / ERANGE leave rd unspecified. */
int ppdb_swim_rec_decode(struct ppdb_rd *rd, struct ppdb_swim_rec *out);

/* ------------------------------------------------------------- the rules */

enum ppdb_swim_verdict {
    PPDB_SWIM_IGNORE = 0, /* stale or overridden: drop */
    PPDB_SWIM_ACCEPT = 1, /* apply the update */
    PPDB_SWIM_CONFIRM = 2 /* the same suspicion again: count the accuser */
};
/* What an update (state, inc) does to a known member (cur_state, cur_inc)
 * of another node. Pure; the whole incarnation rule book is here:
 * alive needs a higher incarnation (suspect -> alive only so), suspect
 * beats alive at the same incarnation, dead beats alive and suspect, left
 * is final for its incarnation, nothing beats dead or left at or below
 * their incarnation except left over dead. */
int ppdb_swim_judge(uint8_t cur_state, uint64_t cur_inc, uint8_t state, uint64_t inc);
/* Whether an update about ourselves must be refuted. */
bool ppdb_swim_must_refute(uint64_t self_inc, bool leaving, uint8_t state, uint64_t inc);

/* Lifeguard suspicion timeout after c independent confirmations:
 * max - (max - min) * log(c + 1) / log(k + 1), never below min. */
uint64_t ppdb_swim_suspicion_timeout_ms(uint64_t min_ms, uint64_t max_ms, uint32_t k, uint32_t c);
/* min suspicion for n members: per_log10n_ms * max(1, log10(n)). */
uint64_t ppdb_swim_suspicion_min_ms(const struct ppdb_swim_params *p, uint32_t n);
/* retransmit_mult * ceil(log10(n + 1)), at least 1. */
uint32_t ppdb_swim_retransmit_limit(const struct ppdb_swim_params *p, uint32_t n);
/* push_pull_interval * max(1, ceil(log2(n) - log2(32))). */
uint64_t ppdb_swim_push_pull_ms(const struct ppdb_swim_params *p, uint32_t n);
/* Probe interval or timeout stretched by local health: base * (health + 1). */
static inline uint64_t ppdb_swim_scaled_ms(uint64_t base_ms, uint32_t health)
{
    return base_ms * (health + 1);
}

/* ------------------------------------------------------------ member table */

/* One member: 72 bytes, plus 5.3-10.7 bytes of hash slots. Metadata (client
 * addresses, tags, ring tokens) lives in one shared arena, not here. What
 * a lookup and the rule book read (id, state, incarnation) comes first:
 * 32 bytes, so it usually sits in one cache line. */
struct ppdb_swim_member {
    struct ppdb_node_id id;
    uint8_t state;
    uint8_t version;
    uint16_t meta_len;
    uint64_t incarnation;
    struct ppdb_addr addr;
    uint32_t meta_off; /* into the table's arena */
    uint64_t state_ms; /* mono_ms of the last state change */
    uint16_t susp;     /* suspicion slot + 1; 0: none (max_suspicions < 65535) */
    uint16_t rtt_ms;   /* last direct probe round trip, saturating; 0: unknown */
    uint32_t lseq;     /* the table's change sequence at this entry's last change */
};
_Static_assert(sizeof(struct ppdb_swim_member) == 72, "member entry budget");

/* A slot: 0 = empty, else (index + 1) in the low PPDB_SWIM_SLOT_INDEX_BITS
 * bits and a tag (high bits of the id's hash) above them, so probing past
 * other members' slots rarely touches their entries. */
#define PPDB_SWIM_SLOT_INDEX_BITS 22
#define PPDB_SWIM_TABLE_MAX       ((1u << PPDB_SWIM_SLOT_INDEX_BITS) - 2)

/* Members live in chunks of PPDB_SWIM_CHUNK entries: a table grows by a
 * chunk and never moves what it holds (thousands of simulated tables
 * growing by realloc spent a third of a mass join copying, remapping and
 * faulting in pages; a chunk is reused whole by the allocator). */
#define PPDB_SWIM_CHUNK_BITS 8
#define PPDB_SWIM_CHUNK      (1u << PPDB_SWIM_CHUNK_BITS)
/* Entry i of table t, as an lvalue. */
#define PPDB_SWIM_M(t, i) ((t)->chunks[(i) >> PPDB_SWIM_CHUNK_BITS][(i) & (PPDB_SWIM_CHUNK - 1)])

/* Members in one array of chunks (probe order: shuffled in place as a round
 * goes), ids hashed into an open-addressing table of tagged indices (load <=
 * 3/4). No per-member heap allocation: the array grows by a chunk, the slots
 * and the arena by doubling, up to max members (at most PPDB_SWIM_TABLE_MAX). */
struct ppdb_swim_table {
    struct ppdb_swim_member **chunks; /* alloc / PPDB_SWIM_CHUNK of them */
    uint32_t chunks_cap;
    uint32_t len, alloc, max;
    uint32_t *slots; /* tagged index + 1; 0 = empty; a power of two >= 4/3 alloc */
    uint32_t nslots;
    struct ppdb_buf arena;
    size_t arena_garbage;
    uint32_t count[4]; /* members by state */
    uint64_t hash_seed;
    /* Local change sequence (delta sync): every change of an entry (added,
     * state, incarnation, address, meta) gives it lseq = ++lseq. `epoch`
     * names the numbering: it is drawn at start and changes when lseq
     * would wrap (all entries are then renumbered), so a watermark of
     * another epoch means "send everything". The log holds the index of
     * the entry changed at each of the last log_cap sequence numbers (at
     * lseq L: log[L % cap]; an entry that moves takes its slot along), so
     * "what changed after L" reads only those entries. */
    uint32_t lseq;
    uint32_t log_from; /* the lowest lseq the log may answer for */
    uint64_t epoch;
    uint32_t *log;    /* log_cap entry indices */
    uint32_t log_cap; /* a power of two: PPDB_SWIM_LOG_MIN..PPDB_SWIM_LOG_MAX */
};
#define PPDB_SWIM_LOG_MIN 32u
#define PPDB_SWIM_LOG_MAX 1024u

int ppdb_swim_table_init(struct ppdb_swim_table *t, uint32_t max, uint64_t hash_seed);
void ppdb_swim_table_deinit(struct ppdb_swim_table *t);
/* Index of id or UINT32_MAX. */
uint32_t ppdb_swim_table_find(const struct ppdb_swim_table *t, const struct ppdb_node_id *id);
/* A hint before find: starts loading id's slot (entry false) or, once the
 * slot is likely loaded, the entry it points to (entry true), so a batch of
 * lookups waits for memory in parallel instead of one miss at a time. */
void ppdb_swim_table_prefetch(const struct ppdb_swim_table *t, const struct ppdb_node_id *id,
                              bool entry);
/* Appends a member (its id must be new); ELIMIT at max, ENOMEM. */
int ppdb_swim_table_add(struct ppdb_swim_table *t, const struct ppdb_swim_member *m,
                        const uint8_t *meta, uint32_t meta_len, uint32_t *index_out);
/* Makes room for n entries in all (at most max) in one step, e.g. before
 * merging a full state of n members; ENOMEM. */
int ppdb_swim_table_reserve(struct ppdb_swim_table *t, uint32_t n);
/* Removes entry i; the last entry moves into i. */
void ppdb_swim_table_remove(struct ppdb_swim_table *t, uint32_t i);
void ppdb_swim_table_swap(struct ppdb_swim_table *t, uint32_t i, uint32_t j);
int ppdb_swim_table_set_meta(struct ppdb_swim_table *t, uint32_t i, const uint8_t *meta,
                             uint32_t meta_len);
static inline const uint8_t *ppdb_swim_table_meta(const struct ppdb_swim_table *t, uint32_t i)
{
    if (!t->arena.data) /* no member has meta yet: never offset a null pointer */
        return (const uint8_t *)"";
    return t->arena.data + PPDB_SWIM_M(t, i).meta_off;
}
void ppdb_swim_table_set_state(struct ppdb_swim_table *t, uint32_t i, uint8_t state);
/* Records a local change of entry i: a new lseq (and log slot). */
void ppdb_swim_table_touch(struct ppdb_swim_table *t, uint32_t i);
/* The entries changed after `since` (an lseq of this table's epoch), at
 * most max of them, in lseq order, into idx: *n_out entries; *wm_out the
 * lseq up to which every change is covered; *more_out when changes after
 * *wm_out remain. Reads the log when it reaches back to since, else scans
 * the table (and sorts only when there are more than max). ENOMEM. */
int ppdb_swim_table_changed(const struct ppdb_swim_table *t, uint32_t since, uint32_t max,
                            uint32_t *idx, uint32_t *n_out, uint32_t *wm_out, bool *more_out);
/* All memory the table holds. */
size_t ppdb_swim_table_memory(const struct ppdb_swim_table *t);

/* --------------------------------------------------------- broadcast queue */

/* A pending update: which member, which state at which incarnation, and for
 * suspicions the accuser, with the record's bytes encoded once when queued
 * (inline up to PPDB_SWIM_BCAST_INLINE bytes, else in one allocation), so
 * choosing what rides on a message reads only the queue, never the member
 * table. Every change of a member's state, incarnation, address or meta
 * queues a new update, which supersedes the old one, so cached bytes never
 * go stale while they are queued. 128 bytes. */
#define PPDB_SWIM_BCAST_INLINE 64
struct ppdb_swim_bcast {
    struct ppdb_node_id subject, from;
    uint64_t incarnation;
    uint32_t prev, next; /* links in the bucket of its transmit count */
    uint8_t state;
    uint8_t transmits;
    uint16_t rec_len; /* 0: no bytes (queue unit tests) */
    uint32_t hnext;   /* next entry in its subject-hash chain */
    union {
        uint8_t in[PPDB_SWIM_BCAST_INLINE];
        uint8_t *heap; /* rec_len > PPDB_SWIM_BCAST_INLINE */
    } rec;
};
static inline const uint8_t *ppdb_swim_bcast_bytes(const struct ppdb_swim_bcast *b)
{
    return b->rec_len > PPDB_SWIM_BCAST_INLINE ? b->rec.heap : b->rec.in;
}

#define PPDB_SWIM_MAX_TRANSMITS 64 /* retransmit limits are capped below this; one bit each */
#define PPDB_SWIM_NIL           UINT32_MAX

/* Entries live in a fixed pool, touched only as far as the queue has ever
 * reached (the high-water mark `used`), so an idle node's queue costs no
 * resident memory; one list per transmit count, newest first, so the next
 * update to send (fewest transmits, newest) is found in O(1) and a full
 * queue evicts the oldest of the most-sent bucket. Entries are also
 * chained by subject hash (at least one chain per entry of capacity), so
 * finding the updates a new one supersedes reads only its subject's chain. */
struct ppdb_swim_queue {
    struct ppdb_swim_bcast *q; /* alloc entries, [0, used) ever taken */
    uint32_t len, cap, used, alloc;
    uint32_t free_head;
    uint32_t head[PPDB_SWIM_MAX_TRANSMITS], tail[PPDB_SWIM_MAX_TRANSMITS];
    uint64_t nonempty; /* bit t: bucket t holds entries */
    uint32_t *chain;   /* first entry per subject hash; PPDB_SWIM_NIL: none */
    uint32_t nchains;  /* power of two */
    uint64_t dropped;  /* evicted because the queue was full */
    uint64_t nomem;    /* not queued: no memory (a large record, or the entry array) */
};

int ppdb_swim_queue_init(struct ppdb_swim_queue *q, uint32_t cap);
void ppdb_swim_queue_deinit(struct ppdb_swim_queue *q);
/* Queues an update. It supersedes queued updates about the same subject,
 * except suspicions by other accusers when it is itself a suspicion at the
 * same incarnation. When full, the oldest of the most-sent is evicted. */
void ppdb_swim_queue_push(struct ppdb_swim_queue *q, const struct ppdb_node_id *subject,
                          uint8_t state, uint64_t inc, const struct ppdb_node_id *from);
/* The same, with the update's encoded record (copied; len >= 1, at most
 * PPDB_REC_MAX). Counts `nomem` and queues nothing when a record larger
 * than the inline space cannot be allocated. */
void ppdb_swim_queue_push_rec(struct ppdb_swim_queue *q, const struct ppdb_node_id *subject,
                              uint8_t state, uint64_t inc, const struct ppdb_node_id *from,
                              const uint8_t *rec, size_t len);
/* Iteration in sending order: fewest transmits first, newest first.
 * PPDB_SWIM_NIL at the end. */
uint32_t ppdb_swim_queue_first(const struct ppdb_swim_queue *q);
uint32_t ppdb_swim_queue_next(const struct ppdb_swim_queue *q, uint32_t i);
/* After sending entry i: counts it; frees it at `limit` transmits. */
void ppdb_swim_queue_sent(struct ppdb_swim_queue *q, uint32_t i, uint32_t limit);
void ppdb_swim_queue_remove(struct ppdb_swim_queue *q, uint32_t i);

/* ------------------------------------------------------------ the protocol */

/* reply: the reply body (a map), borrowed for the call; NULL when status != 0. */
typedef void (*ppdb_swim_sync_done_cb)(void *data, int status, const msgpack_object *reply);

/* What SWIM needs from its host. */
struct ppdb_swim_io {
    /* Seal and send one SWIM datagram. */
    int (*send_msg)(void *ctx, const struct ppdb_addr *to, uint32_t type, uint64_t request_id,
                    const uint8_t *body, size_t len);
    /* One push/pull exchange over a reliable, authenticated stream: a
     * PPDB_MSG_SWIM_SYNC request, its reply body to cb exactly once
     * (unless this returns an error). */
    int (*sync_request)(void *ctx, const struct ppdb_addr *to, const uint8_t *body, size_t len,
                        uint32_t timeout_ms, ppdb_swim_sync_done_cb cb, void *cb_data);
    /* A member changed (old_state -1: new member). */
    void (*changed)(void *ctx, uint32_t index, const struct ppdb_swim_member *m,
                    const uint8_t *meta, int old_state);
    /* Optional: keep the stream to `to` (the delta-sync parent; NULL: none)
     * open between exchanges. */
    void (*keep)(void *ctx, const struct ppdb_addr *to);
    void *ctx;
};

struct ppdb_swim_susp {
    struct ppdb_swim *swim;
    struct ppdb_node_id subject;
    uint64_t incarnation;
    uint64_t start_ms, min_ms, max_ms;
    uint32_t nconfirm; /* independent accusers beyond the first */
    struct ppdb_node_id accusers[8];
    uint32_t naccusers;
    uint32_t checks; /* times the suspect was asked (PPDB_SWIM_SUSP_CHECKS at most) */
    bool used;
    struct ppdb_timer timer;
};

/* A suspicion whose timer is at 1/2, then 3/4, of its timeout is told to
 * the suspect again, which answers with its alive record (a refutation
 * whose gossip has run out still reaches the nodes that missed it). */
#define PPDB_SWIM_SUSP_CHECKS 2

struct ppdb_swim_relay {
    struct ppdb_swim *swim;
    bool used, nacked;
    uint64_t seq;     /* our ping to the target */
    uint64_t req_seq; /* the requester's ping-req id */
    struct ppdb_addr requester;
    struct ppdb_timer timer;
};

struct ppdb_swim_sync_ctx {
    struct ppdb_swim *swim;
    bool used;
    int32_t seed;        /* index into seeds this sync contacts; -1: none */
    int32_t partner;     /* index into partners (a delta sync); -1: none */
    uint32_t push_wm;    /* our lseq up to which this request pushed our changes */
    uint64_t push_epoch; /* our table epoch push_wm belongs to */
    bool digest;         /* a periodic push/pull that sent only a digest */
    struct ppdb_addr to;
};

/* Delta sync (docs/protocols/membership.md, "delta sync"): a node keeps
 * watermarks for a few partners it syncs with, LRU; the responder keeps
 * nothing per peer. */
#define PPDB_SWIM_PARTNERS          8
#define PPDB_SWIM_DELTA_MAX         2048    /* records in one delta body */
#define PPDB_SWIM_DELTA_MIN_MS      1000    /* delta interval while replies bring news */
#define PPDB_SWIM_DELTA_MORE_MS     100     /* next delta after a truncated reply */
#define PPDB_SWIM_DELTA_QUIET_MS    10000   /* no news this long: the interval starts doubling */
#define PPDB_SWIM_DELTA_CAP_MS      300000u /* the backed-off interval never exceeds this */
#define PPDB_SWIM_PARTNER_FAILS     2 /* failed exchanges in a row that drop a sticky partner */
#define PPDB_SWIM_JOIN_GOSSIP_MS    10000u  /* new members gossiped: one per this ... */
#define PPDB_SWIM_JOIN_GOSSIP_BURST 2u      /* ... with this burst (join_gossip_allowed) */
#define PPDB_SWIM_JOIN_SAMPLE       16      /* members a join asks a seed for */
#define PPDB_SWIM_NEWS_AGE_MS       600000u /* a child silent this long is not told of news */

struct ppdb_swim_partner {
    struct ppdb_addr addr;
    struct ppdb_node_id id; /* all zero: unknown (a seed address) */
    uint64_t epoch;         /* the partner's table epoch; 0: none yet (pull full state) */
    uint32_t pulled;        /* its lseq we have merged up to (in epoch) */
    uint32_t pushed;        /* our lseq up to which it has our changes */
    uint64_t used_ms;       /* LRU */
    uint32_t fails;         /* exchanges failed in a row */
    bool used;
    bool puller; /* it pulled from us (a child in the partner tree): told of our news */
};

/* A join candidate that is not (known to be) a member is contacted with a
 * push/pull at most once per this many ms, one sync at a time: two meshes
 * formed apart on one LAN merge as soon as one node of either learns of
 * the other. */
#define PPDB_SWIM_SEED_RETRY_MS 10000u

struct ppdb_swim {
    struct ppdb_env *env;
    struct ppdb_swim_params p;
    struct ppdb_swim_io io;
    struct ppdb_node_id self_id;
    struct ppdb_swim_table tab;
    struct ppdb_swim_queue queue;
    struct ppdb_swim_susp *susps;   /* max_suspicions */
    struct ppdb_swim_relay *relays; /* max_probes */
    uint32_t nrelays;               /* relays in use */
    struct ppdb_swim_sync_ctx syncs[8];
    struct ppdb_swim_partner partners[PPDB_SWIM_PARTNERS];
    int32_t sticky;              /* the partner the delta timer syncs with; -1: pick one */
    uint32_t delta_ms;           /* the delta interval now (adaptive) */
    uint64_t join_gossip_tat_ms; /* new-member gossip budget (GCRA) */
    uint64_t delta_news_ms;      /* when a delta reply last brought news */
    uint64_t push_epoch;         /* our epoch the partners' `pushed` watermarks belong to */
    uint64_t digest;             /* XOR of ppdb_swim_live_hash over alive and suspect members */
    uint32_t root_lseq;          /* pick_parent found no smaller member at this lseq ... */
    uint64_t root_epoch;         /* ... of this epoch (0: never) */
    struct ppdb_addr seeds[PPDB_NODE_MAX_SEEDS];
    uint64_t seed_tried_ms[PPDB_NODE_MAX_SEEDS];          /* last push/pull started; 0: never */
    bool seed_pending[PPDB_NODE_MAX_SEEDS];               /* one sync in flight at most */
    struct ppdb_node_id seed_member[PPDB_NODE_MAX_SEEDS]; /* the member at a seed's address ... */
    bool seed_known[PPDB_NODE_MAX_SEEDS];                 /* ... when one was found */
    uint32_t nseeds;
    /* the probe in progress */
    struct {
        bool active, acked, indirect;
        uint64_t seq;
        uint64_t sent_ms; /* the first direct ping */
        struct ppdb_node_id target;
        uint32_t target_index; /* where target was; validated by id on use */
        struct ppdb_addr target_addr;
        uint32_t expected_nacks, nacks;
    } probe;
    uint32_t probe_k, probe_span, probe_a, probe_b, probe_c; /* the probe round (next_target) */
    struct ppdb_node_id verify[8];                           /* fresh suspects to re-probe first */
    uint32_t nverify;
    uint64_t next_seq;
    uint32_t health;
    bool started, leaving, left;
    bool doubted; /* the message being applied says we are suspect or dead */
    ppdb_node_done_cb leave_cb;
    void *leave_data;
    struct ppdb_timer probe_timer, tick_timer, gossip_timer, sync_timer, reap_timer, leave_timer;
    struct ppdb_timer delta_timer;
    struct ppdb_swim_stats stats;
};

/* Self is added to the table as alive at `incarnation`. meta is copied.
 * PPDB_EINVAL for inconsistent params (max_members above
 * PPDB_SWIM_TABLE_MAX among them). */
int ppdb_swim_init(struct ppdb_swim *s, struct ppdb_env *env, const struct ppdb_swim_params *p,
                   const struct ppdb_swim_io *io, const struct ppdb_node_id *self_id,
                   const struct ppdb_addr *self_addr, uint64_t incarnation, const uint8_t *meta,
                   uint32_t meta_len);
void ppdb_swim_deinit(struct ppdb_swim *s);
/* Starts the timers and joins through the seeds. */
int ppdb_swim_start(struct ppdb_swim *s, const struct ppdb_addr *seeds, uint32_t nseeds);
int ppdb_swim_leave(struct ppdb_swim *s, ppdb_node_done_cb cb, void *data);
/* Adds a join candidate (LAN discovery, a configured seed at runtime) and,
 * once started, contacts it now unless it is a member's address already:
 * alone this is a join, in a mesh it merges the candidate's mesh into ours
 * (PPDB_SWIM_SEED_RETRY_MS, one sync in flight per candidate). Duplicates
 * are ignored (0); PPDB_ELIMIT past PPDB_NODE_MAX_SEEDS. */
int ppdb_swim_add_seed(struct ppdb_swim *s, const struct ppdb_addr *addr);
/* A SWIM datagram (type in the SWIM range) from `from`. */
void ppdb_swim_on_message(struct ppdb_swim *s, const struct ppdb_addr *from,
                          const struct ppdb_envelope *msg);
/* Serves a push/pull: merges the remote state and writes our body into reply. */
int ppdb_swim_on_sync(struct ppdb_swim *s, const struct ppdb_node_id *peer,
                      const msgpack_object *body, struct ppdb_buf *reply);
/* Applies one update as if gossiped (tests and merges). */
void ppdb_swim_apply(struct ppdb_swim *s, const struct ppdb_swim_rec *r);
/* A live (alive or suspect) member's share of the view digest: equal
 * digests mean two nodes agree on who is live at which incarnation, and
 * the periodic push/pull then exchanges nothing more. */
static inline uint64_t ppdb_swim_live_hash(const struct ppdb_node_id *id, uint64_t inc)
{
    uint8_t b[PPDB_NODE_ID_LEN + 8];
    memcpy(b, id->b, PPDB_NODE_ID_LEN);
    memcpy(b + PPDB_NODE_ID_LEN, &inc, 8);
    return ppdb_hash64(b, sizeof(b), 0x5157494d64696721ull);
}
/* Members counted for N: alive + suspect. */
static inline uint32_t ppdb_swim_n(const struct ppdb_swim *s)
{
    uint32_t n = s->tab.count[PPDB_MEMBER_ALIVE] + s->tab.count[PPDB_MEMBER_SUSPECT];
    return n ? n : 1;
}
/* Decodes member i into info (tags and client addresses from the meta). */
void ppdb_swim_member_info(const struct ppdb_swim *s, uint32_t i, struct ppdb_member_info *out);
/* Decodes a meta blob (client addresses, tags) into info. */
void ppdb_swim_meta_decode(const uint8_t *meta, uint32_t len, struct ppdb_member_info *out);
/* Encodes client addresses and tags into a meta blob. ERANGE if too long. */
int ppdb_swim_meta_encode(const struct ppdb_addr *clients, uint32_t nclients,
                          const char (*tags)[PPDB_NODE_TAG_LEN], uint32_t ntags, uint8_t *out,
                          uint32_t *len_out);

#endif /* PPDB_SWIM_H */
