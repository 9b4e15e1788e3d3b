/*
 * replay.c - replay protection for datagrams, in bounded memory.
 *
 * Every sealed datagram carries its sender's boot epoch (16 bytes, unique
 * per boot) and a counter that increases by one per datagram of that boot.
 * This table accepts each (epoch, counter) at most once:
 *
 *   - a recent boot has an entry with a 128-counter sliding window (IPsec /
 *     WireGuard style): counters above the top slide it, counters inside
 *     it are accepted once, counters below it are refused;
 *   - entries live in an LRU of fixed capacity; an evicted boot leaves a
 *     watermark: the highest sender wall ms it had accepted, +1, folded
 *     (max) into one of `nmarks` buckets chosen by hashing the epoch. A new
 *     entry starts with floor = max(its bucket, this node's boot time), and
 *     refuses anything sent before its floor. So a replay of an evicted
 *     boot's old datagram is refused; the cost is that a boot sharing a
 *     bucket may lose datagrams sent within the clock skew of that mark.
 *
 * Keying by boot rather than by node id needs no trust in the (encrypted)
 * sender id and no ordering between boots of one node: a restarted node is
 * simply a new boot, and its old boot ages out of the LRU.
 *
 * Invariants: len <= cap; the LRU list and the hash chains hold exactly the
 * `len` used entries; entries[i] for i < len are used (slots are reused in
 * place on eviction, never freed). All memory is allocated at init.
 */
#include "ppdb_wire.h"

#define NIL       UINT32_MAX
#define HASH_SEED 0x7265706c6179ull /* "replay" */

static uint32_t next_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v && p < (1u << 30))
        p <<= 1;
    return p;
}

int ppdb_replay_init(struct ppdb_replay *r, uint32_t cap, uint32_t nmarks, int64_t boot_wall_ms)
{
    PPDB_ASSERT(cap >= 1 && nmarks >= 1);
    PPDB_ASSERT((nmarks & (nmarks - 1)) == 0);
    memset(r, 0, sizeof(*r));
    r->cap = cap;
    r->nheads = next_pow2(cap * 2);
    r->nmarks = nmarks;
    r->entries = ppdb_calloc(cap, sizeof(*r->entries));
    r->heads = ppdb_malloc(sizeof(*r->heads) * r->nheads);
    r->marks = ppdb_calloc(nmarks, sizeof(*r->marks));
    if (!r->entries || !r->heads || !r->marks) {
        ppdb_replay_deinit(r);
        return PPDB_ENOMEM;
    }
    for (uint32_t i = 0; i < r->nheads; i++)
        r->heads[i] = NIL;
    for (uint32_t i = 0; i < nmarks; i++)
        r->marks[i] = INT64_MIN;
    r->lru_head = r->lru_tail = NIL;
    r->boot_floor_ms = boot_wall_ms;
    return 0;
}

void ppdb_replay_deinit(struct ppdb_replay *r)
{
    ppdb_free(r->entries);
    ppdb_free(r->heads);
    ppdb_free(r->marks);
    memset(r, 0, sizeof(*r));
}

size_t ppdb_replay_memory(const struct ppdb_replay *r)
{
    return sizeof(*r) + (size_t)r->cap * sizeof(*r->entries) +
           (size_t)r->nheads * sizeof(*r->heads) + (size_t)r->nmarks * sizeof(*r->marks);
}

static uint64_t epoch_hash(const uint8_t *epoch)
{
    return ppdb_hash64(epoch, PPDB_REPLAY_EPOCH_LEN, HASH_SEED);
}

static uint32_t lookup(const struct ppdb_replay *r, const uint8_t *epoch, uint64_t h)
{
    for (uint32_t i = r->heads[h & (r->nheads - 1)]; i != NIL; i = r->entries[i].chain)
        if (r->entries[i].hash == (uint32_t)h &&
            memcmp(r->entries[i].epoch, epoch, PPDB_REPLAY_EPOCH_LEN) == 0)
            return i;
    return NIL;
}

static void lru_unlink(struct ppdb_replay *r, uint32_t i)
{
    struct ppdb_replay_entry *e = &r->entries[i];
    if (e->prev != NIL)
        r->entries[e->prev].next = e->next;
    else
        r->lru_head = e->next;
    if (e->next != NIL)
        r->entries[e->next].prev = e->prev;
    else
        r->lru_tail = e->prev;
}

static void lru_push_head(struct ppdb_replay *r, uint32_t i)
{
    struct ppdb_replay_entry *e = &r->entries[i];
    e->prev = NIL;
    e->next = r->lru_head;
    if (r->lru_head != NIL)
        r->entries[r->lru_head].prev = i;
    r->lru_head = i;
    if (r->lru_tail == NIL)
        r->lru_tail = i;
}

static void chain_unlink(struct ppdb_replay *r, uint32_t i)
{
    uint32_t *pp = &r->heads[r->entries[i].hash & (r->nheads - 1)];
    while (*pp != i) {
        PPDB_ASSERT(*pp != NIL);
        pp = &r->entries[*pp].chain;
    }
    *pp = r->entries[i].chain;
}

/* Evicts the least recently used boot, leaving its watermark; returns its slot. */
static uint32_t evict_tail(struct ppdb_replay *r)
{
    uint32_t i = r->lru_tail;
    PPDB_ASSERT(i != NIL);
    struct ppdb_replay_entry *e = &r->entries[i];
    int64_t *mark = &r->marks[e->hash & (r->nmarks - 1)];
    if (e->max_wall_ms != INT64_MIN && e->max_wall_ms + 1 > *mark)
        *mark = e->max_wall_ms + 1;
    lru_unlink(r, i);
    chain_unlink(r, i);
    r->evictions++;
    return i;
}

static uint32_t insert(struct ppdb_replay *r, const uint8_t *epoch, uint64_t h)
{
    uint32_t i = r->len < r->cap ? r->len++ : evict_tail(r);
    struct ppdb_replay_entry *e = &r->entries[i];
    memset(e, 0, sizeof(*e));
    memcpy(e->epoch, epoch, PPDB_REPLAY_EPOCH_LEN);
    e->hash = (uint32_t)h;
    e->floor_ms = PPDB_MAX(r->marks[h & (r->nmarks - 1)], r->boot_floor_ms);
    e->max_wall_ms = INT64_MIN;
    e->chain = r->heads[h & (r->nheads - 1)];
    r->heads[h & (r->nheads - 1)] = i;
    lru_push_head(r, i);
    return i;
}

/* Slides the 128-bit window up by d counters. */
static void window_shift(uint64_t bits[2], uint64_t d)
{
    if (d >= 128) {
        bits[0] = bits[1] = 0;
    } else if (d >= 64) {
        bits[1] = bits[0] << (d - 64);
        bits[0] = 0;
    } else if (d > 0) {
        bits[1] = (bits[1] << d) | (bits[0] >> (64 - d));
        bits[0] <<= d;
    }
}

/* 0 and marks the counter, or EREPLAY. */
static int window_accept(struct ppdb_replay_entry *e, uint64_t counter, bool fresh)
{
    if (fresh) {
        e->top = counter;
        e->bits[0] = 1;
        e->bits[1] = 0;
        return 0;
    }
    if (counter > e->top) {
        window_shift(e->bits, counter - e->top);
        e->top = counter;
        e->bits[0] |= 1;
        return 0;
    }
    uint64_t d = e->top - counter;
    if (d >= PPDB_REPLAY_WINDOW)
        return PPDB_EREPLAY;
    uint64_t *word = &e->bits[d / 64], bit = 1ull << (d % 64);
    if (*word & bit)
        return PPDB_EREPLAY;
    *word |= bit;
    return 0;
}

int ppdb_replay_accept(struct ppdb_replay *r, const uint8_t epoch[PPDB_REPLAY_EPOCH_LEN],
                       uint64_t counter, int64_t sent_wall_ms)
{
    uint64_t h = epoch_hash(epoch);
    uint32_t i = lookup(r, epoch, h);
    bool fresh = i == NIL;
    if (fresh) {
        /* Check the floor before inserting so a refused datagram cannot
         * evict a live entry. */
        int64_t floor = PPDB_MAX(r->marks[h & (r->nmarks - 1)], r->boot_floor_ms);
        if (sent_wall_ms < floor)
            return PPDB_EREPLAY;
        i = insert(r, epoch, h);
    } else if (sent_wall_ms < r->entries[i].floor_ms) {
        return PPDB_EREPLAY;
    }
    struct ppdb_replay_entry *e = &r->entries[i];
    int rc = window_accept(e, counter, fresh);
    if (rc != 0)
        return rc;
    if (sent_wall_ms > e->max_wall_ms)
        e->max_wall_ms = sent_wall_ms;
    if (!fresh && r->lru_head != i) {
        lru_unlink(r, i);
        lru_push_head(r, i);
    }
    return 0;
}
