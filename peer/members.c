/*
 * members.c - the data side of SWIM: member records as they travel, the
 * incarnation rule book, the compact member table, the bounded broadcast
 * queue, the Lifeguard timing math and the `lan-default` profile.
 *
 * Why this shape: every node holds a view of every other node, so the
 * per-member cost decides how far the mesh scales, and in a simulator of
 * thousands of nodes nearly every access is a cache miss. A member is one
 * 72-byte array entry plus 1.3-2.7 tagged u32 hash slots; variable
 * metadata (client addresses, tags, later ring tokens) lives in one arena,
 * compacted when half of it is garbage. Queued updates carry their encoded
 * record, so what rides on a message is chosen without touching the
 * table. Nothing here does I/O or reads a clock.
 *
 * Invariants: slots hold (tag | index + 1) of every entry exactly once
 * (linear probing, no tombstones: removal re-inserts the rest of the
 * cluster); count[] sums to len; every entry's meta lies inside the arena;
 * the queue holds at most cap entries and at most one entry per (subject,
 * accuser); a queued entry is in exactly one transmit list and one subject
 * chain; bit t of `nonempty` is set iff list t is not empty.
 */
#include <math.h>
#include <stdlib.h>

#include "swim.h"

/* ------------------------------------------------------------- profile */

int ppdb_swim_profile(const char *name, struct ppdb_swim_params *out)
{
    if (!name || strcmp(name, "lan-default") != 0)
        return PPDB_ENOTFOUND;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->probe_interval_ms = 1000;
    out->probe_timeout_ms = 400;
    out->indirect_k = 3;
    out->nack_percent = 80;
    out->suspicion_min_per_log10n_ms = 700;
    out->suspicion_max_mult = 6;
    out->suspicion_k = 3;
    out->verify_fanout = 6;
    out->retransmit_mult = 4;
    out->gossip_interval_ms = 200;
    out->gossip_nodes = 3;
    out->push_pull_interval_ms = 30000;
    out->sync_timeout_ms = 10000;
    out->reap_ms = 60000;
    out->leave_ms = 2000;
    out->max_health = 8;
    out->max_members = 1 << 20;
    out->max_broadcasts = 8192;
    out->max_suspicions = 1024;
    out->max_probes = 256;
    return 0;
}

const char *ppdb_member_state_name(int state)
{
    static const char *const names[] = {"alive", "suspect", "dead", "left"};
    return state >= 0 && state < 4 ? names[state] : "?";
}

/* ---------------------------------------------------------- timing math */

uint64_t ppdb_swim_suspicion_timeout_ms(uint64_t min_ms, uint64_t max_ms, uint32_t k, uint32_t c)
{
    if (max_ms <= min_ms || k == 0 || c >= k)
        return min_ms;
    double frac = log((double)c + 1.0) / log((double)k + 1.0);
    double t = (double)max_ms - frac * (double)(max_ms - min_ms);
    uint64_t ms = (uint64_t)floor(t);
    return ms < min_ms ? min_ms : ms;
}

uint64_t ppdb_swim_suspicion_min_ms(const struct ppdb_swim_params *p, uint32_t n)
{
    double scale = n > 10 ? log10((double)n) : 1.0;
    return (uint64_t)((double)p->suspicion_min_per_log10n_ms * scale);
}

uint32_t ppdb_swim_retransmit_limit(const struct ppdb_swim_params *p, uint32_t n)
{
    uint32_t l = p->retransmit_mult * (uint32_t)ceil(log10((double)n + 1.0));
    return l ? l : 1;
}

uint64_t ppdb_swim_push_pull_ms(const struct ppdb_swim_params *p, uint32_t n)
{
    if (n <= 32)
        return p->push_pull_interval_ms;
    double mult = ceil(log2((double)n) - log2(32.0));
    return (uint64_t)((double)p->push_pull_interval_ms * (mult < 1 ? 1 : mult));
}

/* --------------------------------------------------------------- rules */

int ppdb_swim_judge(uint8_t cur_state, uint64_t cur_inc, uint8_t state, uint64_t inc)
{
    PPDB_ASSERT(cur_state <= PPDB_MEMBER_LEFT && state <= PPDB_MEMBER_LEFT);
    if (inc < cur_inc)
        return PPDB_SWIM_IGNORE;
    if (inc > cur_inc) /* a newer incarnation: anything goes, except stale states */
        return PPDB_SWIM_ACCEPT;
    /* same incarnation: only "worse" news moves the member */
    switch (state) {
    case PPDB_MEMBER_ALIVE:
        return PPDB_SWIM_IGNORE; /* suspect -> alive needs a higher incarnation */
    case PPDB_MEMBER_SUSPECT:
        if (cur_state == PPDB_MEMBER_ALIVE)
            return PPDB_SWIM_ACCEPT;
        return cur_state == PPDB_MEMBER_SUSPECT ? PPDB_SWIM_CONFIRM : PPDB_SWIM_IGNORE;
    case PPDB_MEMBER_DEAD:
        return cur_state <= PPDB_MEMBER_SUSPECT ? PPDB_SWIM_ACCEPT : PPDB_SWIM_IGNORE;
    default: /* left: final for its incarnation, and it overrides dead */
        return cur_state == PPDB_MEMBER_LEFT ? PPDB_SWIM_IGNORE : PPDB_SWIM_ACCEPT;
    }
}

bool ppdb_swim_must_refute(uint64_t self_inc, bool leaving, uint8_t state, uint64_t inc)
{
    if (state == PPDB_MEMBER_ALIVE)
        return inc > self_inc; /* an older run of ours claims a newer incarnation */
    if (state == PPDB_MEMBER_LEFT && leaving)
        return false;
    return inc >= self_inc;
}

/* ------------------------------------------------------------- records */

static void put_addr(uint8_t *p, size_t *n, const struct ppdb_addr *a)
{
    size_t iplen = a->family == 6 ? 16 : 4;
    p[(*n)++] = a->family == 6 ? 6 : 4;
    memcpy(p + *n, a->ip, iplen);
    *n += iplen;
    p[(*n)++] = (uint8_t)(a->port >> 8);
    p[(*n)++] = (uint8_t)a->port;
}

static int get_addr(struct ppdb_rd *rd, struct ppdb_addr *a)
{
    uint8_t fam;
    const uint8_t *ip;
    int rc = ppdb_rd_u8(rd, &fam);
    if (rc)
        return rc;
    if (fam != 4 && fam != 6)
        return PPDB_ECORRUPT;
    memset(a, 0, sizeof(*a));
    a->family = fam;
    if ((rc = ppdb_rd_bytes(rd, fam == 6 ? 16 : 4, &ip)) != 0)
        return rc;
    memcpy(a->ip, ip, fam == 6 ? 16 : 4);
    return ppdb_rd_u16be(rd, &a->port);
}

size_t ppdb_swim_rec_size(const struct ppdb_swim_rec *r)
{
    size_t n = 1 + PPDB_NODE_ID_LEN + ppdb_varint_len(r->incarnation);
    if (r->has_from)
        n += PPDB_NODE_ID_LEN;
    if (r->full)
        n +=
            1 + (r->addr.family == 6 ? 16 : 4) + 2 + 1 + ppdb_varint_len(r->meta_len) + r->meta_len;
    return n;
}

size_t ppdb_swim_rec_put(uint8_t *out, const struct ppdb_swim_rec *r)
{
    PPDB_ASSERT(r->state <= PPDB_MEMBER_LEFT && r->meta_len <= PPDB_MEMBER_META_MAX);
    size_t n = 0;
    out[n++] =
        (uint8_t)(r->state | (r->has_from ? PPDB_REC_F_FROM : 0) | (r->full ? PPDB_REC_F_FULL : 0));
    memcpy(out + n, r->id.b, PPDB_NODE_ID_LEN);
    n += PPDB_NODE_ID_LEN;
    n += ppdb_varint_put(out + n, r->incarnation);
    if (r->has_from) {
        memcpy(out + n, r->from.b, PPDB_NODE_ID_LEN);
        n += PPDB_NODE_ID_LEN;
    }
    if (r->full) {
        put_addr(out, &n, &r->addr);
        out[n++] = r->version;
        n += ppdb_varint_put(out + n, r->meta_len);
        if (r->meta_len)
            memcpy(out + n, r->meta, r->meta_len);
        n += r->meta_len;
    }
    PPDB_ASSERT(n == ppdb_swim_rec_size(r) && n <= PPDB_REC_MAX);
    return n;
}

int ppdb_swim_rec_encode(struct ppdb_buf *b, const struct ppdb_swim_rec *r)
{
    uint8_t tmp[PPDB_REC_MAX];
    return ppdb_buf_append(b, tmp, ppdb_swim_rec_put(tmp, r));
}

int ppdb_swim_rec_decode(struct ppdb_rd *rd, struct ppdb_swim_rec *out)
{
    uint8_t kind;
    const uint8_t *p;
    uint64_t v;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = ppdb_rd_u8(rd, &kind)) != 0)
        return rc;
    if (kind & ~(PPDB_REC_STATE_MASK | PPDB_REC_F_FROM | PPDB_REC_F_FULL))
        return PPDB_ECORRUPT;
    out->state = kind & PPDB_REC_STATE_MASK;
    out->has_from = (kind & PPDB_REC_F_FROM) != 0;
    out->full = (kind & PPDB_REC_F_FULL) != 0;
    if ((rc = ppdb_rd_bytes(rd, PPDB_NODE_ID_LEN, &p)) != 0)
        return rc;
    memcpy(out->id.b, p, PPDB_NODE_ID_LEN);
    if ((rc = ppdb_rd_varint(rd, &out->incarnation)) != 0)
        return rc;
    if (out->has_from) {
        if ((rc = ppdb_rd_bytes(rd, PPDB_NODE_ID_LEN, &p)) != 0)
            return rc;
        memcpy(out->from.b, p, PPDB_NODE_ID_LEN);
    }
    if (!out->full)
        return 0;
    if ((rc = get_addr(rd, &out->addr)) != 0 || (rc = ppdb_rd_u8(rd, &out->version)) != 0 ||
        (rc = ppdb_rd_varint(rd, &v)) != 0)
        return rc;
    if (v > PPDB_MEMBER_META_MAX)
        return PPDB_ERANGE;
    out->meta_len = (uint32_t)v;
    return ppdb_rd_bytes(rd, out->meta_len, &out->meta);
}

/* ---------------------------------------------------------------- meta */

/* Meta blob: sections [u8 tag][u8 len][bytes]; unknown tags are skipped so
 * later layers (ring tokens: tag 3) can add theirs. */
enum { META_CLIENT = 1, META_TAG = 2 };

int ppdb_swim_meta_encode(const struct ppdb_addr *clients, uint32_t nclients,
                          const char (*tags)[PPDB_NODE_TAG_LEN], uint32_t ntags, uint8_t *out,
                          uint32_t *len_out)
{
    size_t n = 0;
    for (uint32_t i = 0; i < nclients; i++) {
        if (n + 2 + 19 > PPDB_MEMBER_META_MAX)
            return PPDB_ERANGE;
        out[n] = META_CLIENT;
        size_t start = n + 2, w = start;
        put_addr(out, &w, &clients[i]);
        out[n + 1] = (uint8_t)(w - start);
        n = w;
    }
    for (uint32_t i = 0; i < ntags; i++) {
        size_t len = strnlen(tags[i], PPDB_NODE_TAG_LEN - 1);
        if (n + 2 + len > PPDB_MEMBER_META_MAX)
            return PPDB_ERANGE;
        out[n] = META_TAG;
        out[n + 1] = (uint8_t)len;
        memcpy(out + n + 2, tags[i], len);
        n += 2 + len;
    }
    *len_out = (uint32_t)n;
    return 0;
}

void ppdb_swim_meta_decode(const uint8_t *meta, uint32_t len, struct ppdb_member_info *out)
{
    struct ppdb_rd rd;
    ppdb_rd_init(&rd, meta, len);
    out->nclients = out->ntags = 0;
    while (ppdb_rd_left(&rd) >= 2) {
        uint8_t tag, n;
        const uint8_t *p;
        (void)ppdb_rd_u8(&rd, &tag);
        (void)ppdb_rd_u8(&rd, &n);
        if (ppdb_rd_bytes(&rd, n, &p) != 0)
            return;
        if (tag == META_CLIENT && out->nclients < PPDB_NODE_MAX_CLIENTS) {
            struct ppdb_rd sub;
            ppdb_rd_init(&sub, p, n);
            if (get_addr(&sub, &out->clients[out->nclients]) == 0)
                out->nclients++;
        } else if (tag == META_TAG && out->ntags < PPDB_NODE_MAX_TAGS && n < PPDB_NODE_TAG_LEN) {
            memcpy(out->tags[out->ntags], p, n);
            out->tags[out->ntags++][n] = '\0';
        }
    }
}

/* --------------------------------------------------------------- table */

#define SLOT_INDEX_MASK ((1u << PPDB_SWIM_SLOT_INDEX_BITS) - 1)
_Static_assert(sizeof(struct ppdb_swim_member) == 72, "member entry size");

static uint64_t id_hash(const struct ppdb_swim_table *t, const struct ppdb_node_id *id)
{
    /* ids are hashes already; the seed keeps crafted ids from clustering */
    return ppdb_mix64(ppdb_load_u64le(id->b) ^ t->hash_seed);
}

/* The tag bits of a slot value for hash h. */
static uint32_t slot_tag(uint64_t h)
{
    return (uint32_t)(h >> 32) & ~SLOT_INDEX_MASK;
}

static void slots_put(struct ppdb_swim_table *t, uint32_t index)
{
    uint64_t h = id_hash(t, &PPDB_SWIM_M(t, index).id);
    uint32_t s = (uint32_t)h & (t->nslots - 1);
    while (t->slots[s] != 0)
        s = (s + 1) & (t->nslots - 1);
    t->slots[s] = slot_tag(h) | (index + 1);
}

static uint32_t slots_find(const struct ppdb_swim_table *t, const struct ppdb_node_id *id)
{
    if (t->nslots == 0)
        return UINT32_MAX;
    uint64_t h = id_hash(t, id);
    uint32_t tag = slot_tag(h);
    uint32_t s = (uint32_t)h & (t->nslots - 1);
    for (uint32_t probes = 0; probes < t->nslots; probes++) {
        uint32_t v = t->slots[s];
        if (v == 0)
            return UINT32_MAX;
        if ((v & ~SLOT_INDEX_MASK) == tag &&
            ppdb_node_id_equal(&PPDB_SWIM_M(t, (v & SLOT_INDEX_MASK) - 1).id, id))
            return s;
        s = (s + 1) & (t->nslots - 1);
    }
    return UINT32_MAX;
}

int ppdb_swim_table_init(struct ppdb_swim_table *t, uint32_t max, uint64_t hash_seed)
{
    PPDB_ASSERT(max >= 1 && max <= PPDB_SWIM_TABLE_MAX);
    memset(t, 0, sizeof(*t));
    t->max = max;
    t->hash_seed = hash_seed;
    t->epoch = (hash_seed * 0x9e3779b97f4a7c15ull) | 1; /* the host may draw another */
    t->log_from = 1;
    ppdb_buf_init(&t->arena);
    t->log_cap = PPDB_SWIM_LOG_MIN;
    t->log = ppdb_malloc(t->log_cap * sizeof(*t->log));
    return t->log ? 0 : PPDB_ENOMEM;
}

void ppdb_swim_table_deinit(struct ppdb_swim_table *t)
{
    ppdb_free(t->log);
    for (uint32_t c = 0; c < t->alloc / PPDB_SWIM_CHUNK; c++)
        ppdb_free(t->chunks[c]);
    ppdb_free(t->chunks);
    ppdb_free(t->slots);
    ppdb_buf_deinit(&t->arena);
    memset(t, 0, sizeof(*t));
}

uint32_t ppdb_swim_table_find(const struct ppdb_swim_table *t, const struct ppdb_node_id *id)
{
    uint32_t s = slots_find(t, id);
    return s == UINT32_MAX ? UINT32_MAX : (t->slots[s] & SLOT_INDEX_MASK) - 1;
}

void ppdb_swim_table_prefetch(const struct ppdb_swim_table *t, const struct ppdb_node_id *id,
                              bool entry)
{
    if (t->nslots == 0)
        return;
    uint64_t h = id_hash(t, id);
    uint32_t s = (uint32_t)h & (t->nslots - 1);
    if (!entry) {
        __builtin_prefetch(&t->slots[s]);
        return;
    }
    uint32_t tag = slot_tag(h);
    for (uint32_t probes = 0; probes < 4; probes++) { /* a hint: the first few slots */
        uint32_t v = t->slots[s];
        if (v == 0)
            return;
        if ((v & ~SLOT_INDEX_MASK) == tag) {
            const struct ppdb_swim_member *m = &PPDB_SWIM_M(t, (v & SLOT_INDEX_MASK) - 1);
            __builtin_prefetch(m);
            __builtin_prefetch(&m->incarnation); /* the hot part may cross a line */
            return;
        }
        s = (s + 1) & (t->nslots - 1);
    }
}

/* The slots cost 5.3-10.7 bytes per member; tags keep long probe runs
 * cheap. */
/* The log grows with the table (an eighth of its entries, a power of two
 * in PPDB_SWIM_LOG_MIN..PPDB_SWIM_LOG_MAX), so it costs half a byte per
 * member at most; a resized log starts empty (older changes: a scan). */
static int log_grow(struct ppdb_swim_table *t)
{
    uint32_t cap = t->log_cap;
    while (cap < PPDB_SWIM_LOG_MAX && cap < t->alloc / 8)
        cap <<= 1;
    if (cap == t->log_cap)
        return 0;
    uint32_t *log = ppdb_realloc(t->log, cap * sizeof(*log));
    if (!log)
        return 0; /* keep the smaller log: it only answers fewer deltas */
    t->log = log;
    t->log_cap = cap;
    t->log_from = t->lseq + 1;
    return 0;
}

/* Adds chunks until alloc entries fit (at most max); the slots grow
 * (rehashed) once the load would pass 3/4. */
static int table_grow_to(struct ppdb_swim_table *t, uint32_t alloc)
{
    if (alloc > t->max)
        alloc = t->max;
    uint32_t need = (alloc + PPDB_SWIM_CHUNK - 1) / PPDB_SWIM_CHUNK;
    if (need > t->chunks_cap) {
        uint32_t cap = PPDB_MAX(need, t->chunks_cap * 2);
        struct ppdb_swim_member **c = ppdb_realloc(t->chunks, (size_t)cap * sizeof(*c));
        if (!c)
            return PPDB_ENOMEM;
        t->chunks = c;
        t->chunks_cap = cap;
    }
    while (t->alloc < alloc) {
        struct ppdb_swim_member *c = ppdb_malloc(PPDB_SWIM_CHUNK * sizeof(*c));
        if (!c)
            return PPDB_ENOMEM;
        t->chunks[t->alloc / PPDB_SWIM_CHUNK] = c;
        t->alloc += PPDB_SWIM_CHUNK;
    }
    if ((uint64_t)t->nslots * 3 < (uint64_t)t->alloc * 4) {
        uint32_t nslots = 16;
        while ((uint64_t)nslots * 3 < (uint64_t)t->alloc * 4)
            nslots <<= 1;
        uint32_t *slots = ppdb_calloc(nslots, sizeof(*slots));
        if (!slots)
            return PPDB_ENOMEM;
        ppdb_free(t->slots);
        t->slots = slots;
        t->nslots = nslots;
        for (uint32_t i = 0; i < t->len; i++)
            slots_put(t, i);
    }
    return log_grow(t);
}

static int table_grow(struct ppdb_swim_table *t)
{
    return table_grow_to(t, t->alloc + PPDB_SWIM_CHUNK);
}

int ppdb_swim_table_reserve(struct ppdb_swim_table *t, uint32_t n)
{
    if (n <= t->alloc || t->alloc >= t->max)
        return 0;
    return table_grow_to(t, n);
}

static void arena_compact(struct ppdb_swim_table *t)
{
    struct ppdb_buf fresh;
    ppdb_buf_init(&fresh);
    if (ppdb_buf_reserve(&fresh, t->arena.len - t->arena_garbage) != 0) {
        ppdb_buf_deinit(&fresh);
        return; /* keep the garbage; correctness does not depend on compaction */
    }
    for (uint32_t i = 0; i < t->len; i++) {
        uint32_t off = (uint32_t)fresh.len;
        if (PPDB_SWIM_M(t, i).meta_len)
            (void)ppdb_buf_append(&fresh, t->arena.data + PPDB_SWIM_M(t, i).meta_off,
                                  PPDB_SWIM_M(t, i).meta_len);
        PPDB_SWIM_M(t, i).meta_off = off;
    }
    ppdb_buf_deinit(&t->arena);
    t->arena = fresh;
    t->arena_garbage = 0;
}

int ppdb_swim_table_set_meta(struct ppdb_swim_table *t, uint32_t i, const uint8_t *meta,
                             uint32_t meta_len)
{
    PPDB_ASSERT(i < t->len && meta_len <= PPDB_MEMBER_META_MAX);
    struct ppdb_swim_member *m = &PPDB_SWIM_M(t, i);
    if (m->meta_len == meta_len &&
        (meta_len == 0 || memcmp(t->arena.data + m->meta_off, meta, meta_len) == 0))
        return 0;
    uint32_t off = (uint32_t)t->arena.len;
    if (meta_len && ppdb_buf_append(&t->arena, meta, meta_len) != 0)
        return PPDB_ENOMEM;
    t->arena_garbage += m->meta_len;
    m->meta_off = off;
    m->meta_len = (uint16_t)meta_len;
    if (t->arena_garbage > 4096 && t->arena_garbage * 2 > t->arena.len)
        arena_compact(t);
    return 0;
}

int ppdb_swim_table_add(struct ppdb_swim_table *t, const struct ppdb_swim_member *m,
                        const uint8_t *meta, uint32_t meta_len, uint32_t *index_out)
{
    PPDB_ASSERT(ppdb_swim_table_find(t, &m->id) == UINT32_MAX);
    PPDB_ASSERT(m->state <= PPDB_MEMBER_LEFT);
    if (t->len == t->max)
        return PPDB_ELIMIT;
    int rc;
    if (t->len == t->alloc && (rc = table_grow(t)) != 0)
        return rc;
    uint32_t i = t->len++;
    PPDB_SWIM_M(t, i) = *m;
    PPDB_SWIM_M(t, i).meta_len = 0;
    PPDB_SWIM_M(t, i).meta_off = (uint32_t)t->arena.len;
    PPDB_SWIM_M(t, i).susp = 0;
    slots_put(t, i);
    ppdb_swim_table_touch(t, i);
    t->count[m->state]++;
    if (meta_len && (rc = ppdb_swim_table_set_meta(t, i, meta, meta_len)) != 0) {
        ppdb_swim_table_remove(t, i);
        return rc;
    }
    *index_out = i;
    return 0;
}

/* Re-points the slot of the entry now at `from` to `to`. */
static void slot_move(struct ppdb_swim_table *t, uint32_t from, uint32_t to)
{
    uint32_t s = slots_find(t, &PPDB_SWIM_M(t, from).id);
    PPDB_ASSERT(s != UINT32_MAX);
    t->slots[s] = (t->slots[s] & ~SLOT_INDEX_MASK) | (to + 1);
}

/* Entry i now holds what was elsewhere: the log slot of its last change,
 * if the log still holds it, names i. */
static void log_moved(struct ppdb_swim_table *t, uint32_t i)
{
    uint32_t l = PPDB_SWIM_M(t, i).lseq;
    if (l != 0 && l >= t->log_from && t->lseq - l < t->log_cap)
        t->log[l & (t->log_cap - 1)] = i;
}

void ppdb_swim_table_swap(struct ppdb_swim_table *t, uint32_t i, uint32_t j)
{
    PPDB_ASSERT(i < t->len && j < t->len);
    if (i == j)
        return;
    slot_move(t, i, j);
    slot_move(t, j, i);
    struct ppdb_swim_member tmp = PPDB_SWIM_M(t, i);
    PPDB_SWIM_M(t, i) = PPDB_SWIM_M(t, j);
    PPDB_SWIM_M(t, j) = tmp;
    log_moved(t, i);
    log_moved(t, j);
}

void ppdb_swim_table_remove(struct ppdb_swim_table *t, uint32_t i)
{
    PPDB_ASSERT(i < t->len);
    uint32_t s = slots_find(t, &PPDB_SWIM_M(t, i).id);
    PPDB_ASSERT(s != UINT32_MAX);
    t->count[PPDB_SWIM_M(t, i).state]--;
    t->arena_garbage += PPDB_SWIM_M(t, i).meta_len;
    uint32_t last = t->len - 1;
    if (i != last) {
        slot_move(t, last, i);
        PPDB_SWIM_M(t, i) = PPDB_SWIM_M(t, last);
        log_moved(t, i);
    }
    t->len--;
    /* delete slot s and re-insert the rest of its cluster (no tombstones) */
    t->slots[s] = 0;
    for (uint32_t k = (s + 1) & (t->nslots - 1); t->slots[k] != 0; k = (k + 1) & (t->nslots - 1)) {
        uint32_t v = t->slots[k];
        t->slots[k] = 0;
        slots_put(t, (v & SLOT_INDEX_MASK) - 1);
    }
}

void ppdb_swim_table_set_state(struct ppdb_swim_table *t, uint32_t i, uint8_t state)
{
    PPDB_ASSERT(i < t->len && state <= PPDB_MEMBER_LEFT);
    t->count[PPDB_SWIM_M(t, i).state]--;
    PPDB_SWIM_M(t, i).state = state;
    t->count[state]++;
}

size_t ppdb_swim_table_memory(const struct ppdb_swim_table *t)
{
    return (size_t)t->alloc * sizeof(struct ppdb_swim_member) + t->chunks_cap * sizeof(*t->chunks) +
           (size_t)t->nslots * sizeof(*t->slots) + t->arena.cap + t->log_cap * sizeof(*t->log);
}

/* lseq would wrap: a new epoch, every entry renumbered in index order, an
 * empty log. Partners holding watermarks of the old epoch get full state. */
static void renumber(struct ppdb_swim_table *t)
{
    t->epoch = (t->epoch * 6364136223846793005ull + 1442695040888963407ull) | 1;
    t->lseq = 0;
    for (uint32_t i = 0; i < t->len; i++)
        PPDB_SWIM_M(t, i).lseq = ++t->lseq;
    t->log_from = t->lseq + 1;
}

void ppdb_swim_table_touch(struct ppdb_swim_table *t, uint32_t i)
{
    PPDB_ASSERT(i < t->len);
    if (t->lseq == UINT32_MAX)
        renumber(t);
    PPDB_SWIM_M(t, i).lseq = ++t->lseq;
    t->log[t->lseq & (t->log_cap - 1)] = i;
}

/* The log answers for lseq L iff log_from <= L and L is among the last
 * log_cap sequence numbers. */
static bool log_covers(const struct ppdb_swim_table *t, uint32_t since)
{
    return since + 1 >= t->log_from && t->lseq - since <= t->log_cap;
}

static int cmp_lseq_pair(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The scan: (lseq << 32 | index) of every newer entry, sorted if too many. */
static int changed_scan(const struct ppdb_swim_table *t, uint32_t since, uint32_t max,
                        uint32_t *idx, uint32_t *n_out, uint32_t *wm_out, bool *more_out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->len; i++)
        n += PPDB_SWIM_M(t, i).lseq > since;
    if (n <= max) {
        n = 0;
        for (uint32_t i = 0; i < t->len; i++)
            if (PPDB_SWIM_M(t, i).lseq > since)
                idx[n++] = i;
        *n_out = n;
        *wm_out = t->lseq;
        *more_out = false;
        return 0;
    }
    uint64_t *pairs = ppdb_malloc((size_t)n * sizeof(*pairs));
    if (!pairs)
        return PPDB_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->len; i++)
        if (PPDB_SWIM_M(t, i).lseq > since)
            pairs[k++] = (uint64_t)PPDB_SWIM_M(t, i).lseq << 32 | i;
    qsort(pairs, n, sizeof(*pairs), cmp_lseq_pair);
    for (k = 0; k < max; k++)
        idx[k] = (uint32_t)pairs[k];
    *n_out = max;
    *wm_out = (uint32_t)(pairs[max - 1] >> 32);
    *more_out = true;
    ppdb_free(pairs);
    return 0;
}

int ppdb_swim_table_changed(const struct ppdb_swim_table *t, uint32_t since, uint32_t max,
                            uint32_t *idx, uint32_t *n_out, uint32_t *wm_out, bool *more_out)
{
    PPDB_ASSERT(max >= 1);
    if (since > t->lseq)
        since = t->lseq; /* not of this numbering: nothing is newer */
    if (!log_covers(t, since))
        return changed_scan(t, since, max, idx, n_out, wm_out, more_out);
    uint32_t n = 0;
    for (uint32_t l = since + 1; l != 0 && l <= t->lseq; l++) {
        uint32_t i = t->log[l & (t->log_cap - 1)];
        if (i >= t->len || PPDB_SWIM_M(t, i).lseq != l)
            continue; /* reaped, or changed again later (a newer slot names it) */
        idx[n++] = i;
        if (n == max) {
            *n_out = n;
            *wm_out = l;
            *more_out = l < t->lseq;
            return 0;
        }
    }
    *n_out = n;
    *wm_out = t->lseq;
    *more_out = false;
    return 0;
}

/* --------------------------------------------------------------- queue */

static uint32_t chain_of(const struct ppdb_swim_queue *q, const struct ppdb_node_id *id)
{
    return (uint32_t)ppdb_load_u64le(id->b) & (q->nchains - 1);
}

_Static_assert(sizeof(struct ppdb_swim_bcast) == 128, "queue entries are two cache lines");
_Static_assert(PPDB_SWIM_MAX_TRANSMITS <= 64, "one bit of nonempty per bucket");

int ppdb_swim_queue_init(struct ppdb_swim_queue *q, uint32_t cap)
{
    PPDB_ASSERT(cap >= 1);
    memset(q, 0, sizeof(*q));
    q->nchains = 64;
    while (q->nchains < cap)
        q->nchains <<= 1;
    /* entries are allocated as the queue first needs them (take_entry):
     * most nodes of a quiet mesh never queue more than a few */
    q->chain = ppdb_malloc(q->nchains * sizeof(*q->chain));
    if (!q->chain) {
        ppdb_swim_queue_deinit(q);
        return PPDB_ENOMEM;
    }
    q->cap = cap;
    q->free_head = PPDB_SWIM_NIL;
    for (uint32_t c = 0; c < q->nchains; c++)
        q->chain[c] = PPDB_SWIM_NIL;
    for (uint32_t t = 0; t < PPDB_SWIM_MAX_TRANSMITS; t++)
        q->head[t] = q->tail[t] = PPDB_SWIM_NIL;
    return 0;
}

static void free_rec(struct ppdb_swim_bcast *b)
{
    if (b->rec_len > PPDB_SWIM_BCAST_INLINE)
        ppdb_free(b->rec.heap);
    b->rec_len = 0;
}

void ppdb_swim_queue_deinit(struct ppdb_swim_queue *q)
{
    for (uint32_t t = 0; q->q && t < PPDB_SWIM_MAX_TRANSMITS; t++)
        for (uint32_t i = q->head[t]; i != PPDB_SWIM_NIL; i = q->q[i].next)
            free_rec(&q->q[i]);
    ppdb_free(q->q);
    ppdb_free(q->chain);
    memset(q, 0, sizeof(*q));
}

static void chain_unlink(struct ppdb_swim_queue *q, uint32_t i)
{
    uint32_t *link = &q->chain[chain_of(q, &q->q[i].subject)];
    for (uint32_t n = 0; *link != i; link = &q->q[*link].hnext, n++)
        PPDB_ASSERT(*link != PPDB_SWIM_NIL && n < q->cap); /* i is in its chain */
    *link = q->q[i].hnext;
}

static void unlink_entry(struct ppdb_swim_queue *q, uint32_t i)
{
    struct ppdb_swim_bcast *b = &q->q[i];
    if (b->prev != PPDB_SWIM_NIL)
        q->q[b->prev].next = b->next;
    else
        q->head[b->transmits] = b->next;
    if (b->next != PPDB_SWIM_NIL)
        q->q[b->next].prev = b->prev;
    else
        q->tail[b->transmits] = b->prev;
    if (q->head[b->transmits] == PPDB_SWIM_NIL)
        q->nonempty &= ~(1ull << b->transmits);
}

static void link_head(struct ppdb_swim_queue *q, uint32_t i)
{
    struct ppdb_swim_bcast *b = &q->q[i];
    uint32_t t = b->transmits;
    b->prev = PPDB_SWIM_NIL;
    b->next = q->head[t];
    if (b->next != PPDB_SWIM_NIL)
        q->q[b->next].prev = i;
    else
        q->tail[t] = i;
    q->head[t] = i;
    q->nonempty |= 1ull << t;
}

void ppdb_swim_queue_remove(struct ppdb_swim_queue *q, uint32_t i)
{
    PPDB_ASSERT(i < q->cap && q->len > 0);
    unlink_entry(q, i);
    chain_unlink(q, i);
    free_rec(&q->q[i]);
    q->q[i].next = q->free_head;
    q->free_head = i;
    q->len--;
}

/* The head of the first non-empty bucket at or after transmit count t. */
static uint32_t first_from(const struct ppdb_swim_queue *q, uint32_t t)
{
    uint64_t rest = t < PPDB_SWIM_MAX_TRANSMITS ? q->nonempty >> t << t : 0;
    return rest ? q->head[__builtin_ctzll(rest)] : PPDB_SWIM_NIL;
}

uint32_t ppdb_swim_queue_first(const struct ppdb_swim_queue *q)
{
    return first_from(q, 0);
}

uint32_t ppdb_swim_queue_next(const struct ppdb_swim_queue *q, uint32_t i)
{
    if (q->q[i].next != PPDB_SWIM_NIL)
        return q->q[i].next;
    return first_from(q, q->q[i].transmits + 1u);
}

static bool supersedes(const struct ppdb_swim_bcast *old, const struct ppdb_node_id *subject,
                       uint8_t state, uint64_t inc, const struct ppdb_node_id *from)
{
    if (!ppdb_node_id_equal(&old->subject, subject))
        return false;
    if (state == PPDB_MEMBER_SUSPECT && old->state == PPDB_MEMBER_SUSPECT &&
        old->incarnation == inc)
        return ppdb_node_id_equal(&old->from, from);
    return true;
}

static void drop_superseded(struct ppdb_swim_queue *q, const struct ppdb_node_id *subject,
                            uint8_t state, uint64_t inc, const struct ppdb_node_id *from)
{
    for (uint32_t i = q->chain[chain_of(q, subject)], n = 0; i != PPDB_SWIM_NIL; n++) {
        PPDB_ASSERT(n < q->cap);
        uint32_t next = q->q[i].hnext;
        if (supersedes(&q->q[i], subject, state, inc, from))
            ppdb_swim_queue_remove(q, i);
        i = next;
    }
}

/* A free entry: from the free list, else the next never-used one (the
 * entry array doubles up to cap); PPDB_SWIM_NIL when out of memory. */
static uint32_t take_entry(struct ppdb_swim_queue *q)
{
    uint32_t i = q->free_head;
    if (i != PPDB_SWIM_NIL) {
        q->free_head = q->q[i].next;
        return i;
    }
    PPDB_ASSERT(q->used < q->cap);
    if (q->used == q->alloc) {
        uint32_t alloc = PPDB_MIN(q->cap, PPDB_MAX(16u, 2 * q->alloc));
        struct ppdb_swim_bcast *e = ppdb_realloc(q->q, (size_t)alloc * sizeof(*e));
        if (!e)
            return PPDB_SWIM_NIL;
        q->q = e;
        q->alloc = alloc;
    }
    return q->used++;
}

void ppdb_swim_queue_push_rec(struct ppdb_swim_queue *q, const struct ppdb_node_id *subject,
                              uint8_t state, uint64_t inc, const struct ppdb_node_id *from,
                              const uint8_t *rec, size_t len)
{
    PPDB_ASSERT(len <= PPDB_REC_MAX && (len == 0 || rec != NULL));
    uint8_t *heap = NULL;
    if (len > PPDB_SWIM_BCAST_INLINE && (heap = ppdb_malloc(len)) == NULL) {
        q->nomem++;
        return;
    }
    drop_superseded(q, subject, state, inc, from);
    if (q->len == q->cap) { /* evict the oldest entry of the most-sent bucket */
        uint32_t t = PPDB_SWIM_MAX_TRANSMITS;
        while (t-- > 0 && q->tail[t] == PPDB_SWIM_NIL)
            ;
        ppdb_swim_queue_remove(q, q->tail[t]);
        q->dropped++;
    }
    uint32_t i = take_entry(q);
    if (i == PPDB_SWIM_NIL) {
        ppdb_free(heap);
        q->nomem++;
        return;
    }
    struct ppdb_swim_bcast *b = &q->q[i];
    memset(b, 0, offsetof(struct ppdb_swim_bcast, rec));
    b->subject = *subject;
    if (from)
        b->from = *from;
    b->incarnation = inc;
    b->state = state;
    b->rec_len = (uint16_t)len;
    if (heap) {
        memcpy(heap, rec, len);
        b->rec.heap = heap;
    } else if (len) {
        memcpy(b->rec.in, rec, len);
    }
    link_head(q, i);
    uint32_t c = chain_of(q, subject);
    b->hnext = q->chain[c];
    q->chain[c] = i;
    q->len++;
}

void ppdb_swim_queue_push(struct ppdb_swim_queue *q, const struct ppdb_node_id *subject,
                          uint8_t state, uint64_t inc, const struct ppdb_node_id *from)
{
    ppdb_swim_queue_push_rec(q, subject, state, inc, from, NULL, 0);
}

void ppdb_swim_queue_sent(struct ppdb_swim_queue *q, uint32_t i, uint32_t limit)
{
    PPDB_ASSERT(i < q->cap);
    if (limit >= PPDB_SWIM_MAX_TRANSMITS)
        limit = PPDB_SWIM_MAX_TRANSMITS - 1;
    if (q->q[i].transmits + 1u >= limit) {
        ppdb_swim_queue_remove(q, i);
        return;
    }
    unlink_entry(q, i);
    q->q[i].transmits++;
    link_head(q, i);
}
