/*
 * cache.c - a sharded LRU cache with a byte budget (the block cache).
 *
 * The key space is split over 2^shard_bits shards by key hash; each shard
 * has its own mutex, chained hash table, budget (capacity / shards) and two
 * lists: `lru` holds entries that only the cache references (candidates for
 * eviction, oldest first) and `in_use` holds entries pinned by handles.
 * Entries move between the lists when their first handle is taken or their
 * last released, so eviction never looks at a pinned entry, and a pinned
 * entry that is evicted or erased stays alive until its last release.
 *
 * An entry inserted without a handle goes straight to `lru`, and a
 * release that leaves the shard over its budget (inserts passed it while
 * entries were pinned) evicts at once, so the budget holds at rest, not
 * only after the shard's next insert.
 *
 * Spares. A value inserted as reusable (ppdb_cache_insert_reusable: the
 * table reader's decompressed blocks) is not freed when its entry is
 * evicted but kept as a spare of its shard (at most SHARD_SPARES), for the
 * next miss in that shard to decompress into (ppdb_cache_lookup_or_spare).
 * With a cache smaller than the data, nearly every get inserts one block
 * and evicts another; freeing on one thread a block that malloc had handed
 * out on another took the other thread's arena lock, and two threads
 * reading slept on it (futex waits in __lll_lock_wait_private: about 2,400
 * per thread per million gets). A spare moves no memory between threads.
 * Spares are memory held beyond the budget: SHARD_SPARES per shard, each
 * one block.
 *
 * Shard mutexes spin a little before sleeping where the C library offers
 * it (their critical sections are a few hash and list operations).
 *
 * Invariants per shard: usage = sum of charges of entries in the table;
 * an entry is in the table iff in_cache; refs counts handles plus one for
 * the table; the entry is freed exactly when refs drops to 0. Usage may
 * exceed the budget only while pinned entries alone exceed it. A spare is
 * owned by the shard alone (no entry, no handle) until taken or freed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP */
#endif
#include <pthread.h>
#include <stdatomic.h>

#include "table.h"

#define DEFAULT_SHARD_BITS 4u
#define MAX_SHARD_BITS     8u
#define MIN_BUCKETS        64u
#define SHARD_SPARES       4u

struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* lru or in_use list */
    struct ppdb_cache_key key;
    uint64_t hash;
    void *value;
    size_t charge;
    ppdb_cache_free_cb free_cb;
    uint32_t refs;
    bool in_cache;
    bool reusable; /* once evicted, the value may become a spare */
};

struct spare {
    void *value;
    size_t charge;
    ppdb_cache_free_cb free_cb;
};

struct shard {
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t n_buckets, n_entries;
    struct entry lru;    /* dummy head; lru.next is the oldest */
    struct entry in_use; /* dummy head */
    size_t usage, capacity;
    uint64_t hits, misses, inserts, evictions;
    struct spare spares[SHARD_SPARES]; /* a stack: spares[nspares - 1] is the newest */
    unsigned nspares;
    uint8_t pad[64]; /* keeps shards' hot fields off each other's cache lines
                      * (the allocator does not align to 64) */
};

struct ppdb_cache {
    unsigned shard_bits;
    size_t capacity;
    atomic_uint_fast64_t next_id;
    struct shard *shards;
};

static inline uint64_t hash_key(const struct ppdb_cache_key *k)
{
    return ppdb_mix64(k->id * 0x9e3779b97f4a7c15ull ^ ppdb_mix64(k->file ^ (k->off << 17)) ^
                      k->off);
}

static inline bool key_eq(const struct ppdb_cache_key *a, const struct ppdb_cache_key *b)
{
    return a->id == b->id && a->file == b->file && a->off == b->off;
}

static void list_remove(struct entry *e)
{
    e->next->prev = e->prev;
    e->prev->next = e->next;
}

static void list_append(struct entry *head, struct entry *e)
{
    e->next = head;
    e->prev = head->prev;
    e->prev->next = e;
    e->next->prev = e;
}

int ppdb_cache_new(size_t capacity_bytes, unsigned shard_bits, struct ppdb_cache **c_out)
{
    PPDB_ASSERT(capacity_bytes > 0);
    if (shard_bits == 0)
        shard_bits = DEFAULT_SHARD_BITS;
    PPDB_ASSERT(shard_bits <= MAX_SHARD_BITS);
    size_t n = (size_t)1 << shard_bits;
    struct ppdb_cache *c = ppdb_calloc(1, sizeof(*c));
    struct shard *s = ppdb_calloc(n, sizeof(*s));
    if (!c || !s) {
        ppdb_free(c);
        ppdb_free(s);
        return PPDB_ENOMEM;
    }
    c->shard_bits = shard_bits;
    c->capacity = capacity_bytes;
    c->shards = s;
    atomic_init(&c->next_id, 1);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_init(&s[i].mu, &attr);
        s[i].lru.next = s[i].lru.prev = &s[i].lru;
        s[i].in_use.next = s[i].in_use.prev = &s[i].in_use;
        s[i].capacity = (capacity_bytes + n - 1) / n;
    }
    pthread_mutexattr_destroy(&attr);
    *c_out = c;
    return 0;
}

static void free_entry(struct entry *e)
{
    PPDB_ASSERT(e->refs == 0 && !e->in_cache);
    if (e->free_cb)
        e->free_cb(e->value, e->charge);
    ppdb_free(e);
}

void ppdb_cache_free(struct ppdb_cache *c)
{
    if (!c)
        return;
    size_t n = (size_t)1 << c->shard_bits;
    for (size_t i = 0; i < n; i++) {
        struct shard *s = &c->shards[i];
        PPDB_ASSERT(s->in_use.next == &s->in_use); /* every handle released */
        while (s->lru.next != &s->lru) {
            struct entry *e = s->lru.next;
            list_remove(e);
            e->in_cache = false;
            e->refs--;
            free_entry(e);
        }
        for (unsigned j = 0; j < s->nspares; j++)
            s->spares[j].free_cb(s->spares[j].value, s->spares[j].charge);
        ppdb_free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    ppdb_free(c->shards);
    ppdb_free(c);
}

uint64_t ppdb_cache_new_id(struct ppdb_cache *c)
{
    return atomic_fetch_add(&c->next_id, 1);
}

static inline struct shard *shard_of(struct ppdb_cache *c, uint64_t h)
{
    return &c->shards[c->shard_bits ? h >> (64 - c->shard_bits) : 0];
}

static struct entry **find_slot(struct shard *s, const struct ppdb_cache_key *k, uint64_t h)
{
    struct entry **pp = &s->buckets[h & (s->n_buckets - 1)];
    while (*pp && ((*pp)->hash != h || !key_eq(&(*pp)->key, k)))
        pp = &(*pp)->hnext;
    return pp;
}

static void grow_table(struct shard *s)
{
    size_t nb = s->n_buckets ? s->n_buckets * 2 : MIN_BUCKETS;
    struct entry **b = ppdb_calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the old table: chains get longer, nothing breaks */
    for (size_t i = 0; i < s->n_buckets; i++) {
        struct entry *e = s->buckets[i];
        while (e) {
            struct entry *next = e->hnext;
            struct entry **slot = &b[e->hash & (nb - 1)];
            e->hnext = *slot;
            *slot = e;
            e = next;
        }
    }
    ppdb_free(s->buckets);
    s->buckets = b;
    s->n_buckets = nb;
}

static void ref_entry(struct shard *s, struct entry *e)
{
    if (e->refs == 1 && e->in_cache) { /* first pin: off the eviction list */
        list_remove(e);
        list_append(&s->in_use, e);
    }
    e->refs++;
}

/* Returns true when the entry must be freed (outside the lock). */
static bool unref_entry(struct shard *s, struct entry *e)
{
    PPDB_ASSERT(e->refs > 0);
    e->refs--;
    if (e->refs == 0)
        return true;
    if (e->in_cache && e->refs == 1) { /* last pin gone: evictable again */
        list_remove(e);
        list_append(&s->lru, e);
    }
    return false;
}

/* Takes e out of the table (already unlinked from its chain). */
static bool detach(struct shard *s, struct entry *e)
{
    e->in_cache = false;
    list_remove(e);
    s->usage -= e->charge;
    s->n_entries--;
    return unref_entry(s, e);
}

/* Under s->mu: the newest spare inserted with free_cb, taken. */
static void *pop_spare(struct shard *s, ppdb_cache_free_cb free_cb, size_t *charge_out)
{
    *charge_out = 0;
    if (s->nspares == 0 || s->spares[s->nspares - 1].free_cb != free_cb)
        return NULL;
    struct spare *sp = &s->spares[--s->nspares];
    *charge_out = sp->charge;
    return sp->value;
}

static struct entry *lookup(struct ppdb_cache *c, const struct ppdb_cache_key *k,
                            ppdb_cache_free_cb spare_cb, void **spare_out, size_t *charge_out)
{
    uint64_t h = hash_key(k);
    struct shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    struct entry *e = s->n_buckets ? *find_slot(s, k, h) : NULL;
    if (e) {
        ref_entry(s, e);
        s->hits++;
    } else {
        s->misses++;
        if (spare_cb)
            *spare_out = pop_spare(s, spare_cb, charge_out);
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

struct ppdb_cache_handle *ppdb_cache_lookup(struct ppdb_cache *c, const struct ppdb_cache_key *k)
{
    return (struct ppdb_cache_handle *)lookup(c, k, NULL, NULL, NULL);
}

struct ppdb_cache_handle *ppdb_cache_lookup_or_spare(struct ppdb_cache *c,
                                                     const struct ppdb_cache_key *k,
                                                     ppdb_cache_free_cb free_cb, void **spare_out,
                                                     size_t *charge_out)
{
    PPDB_ASSERT(free_cb && spare_out && charge_out);
    *spare_out = NULL;
    *charge_out = 0;
    return (struct ppdb_cache_handle *)lookup(c, k, free_cb, spare_out, charge_out);
}

void *ppdb_cache_value(const struct ppdb_cache_handle *h)
{
    return ((const struct entry *)h)->value;
}

static struct entry *evict(struct shard *s);

/* Frees a list of dead entries linked through hnext. */
static void free_list(struct entry *e)
{
    while (e) {
        struct entry *next = e->hnext;
        free_entry(e);
        e = next;
    }
}

void ppdb_cache_release(struct ppdb_cache *c, struct ppdb_cache_handle *h)
{
    struct entry *e = (struct entry *)h;
    struct shard *s = shard_of(c, e->hash);
    pthread_mutex_lock(&s->mu);
    bool dead = unref_entry(s, e);
    /* Inserts may have passed the budget while entries were pinned; one
     * back on the LRU is evicted now, not at the shard's next insert. */
    struct entry *evicted = s->usage > s->capacity ? evict(s) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (dead)
        free_entry(e);
    free_list(evicted);
}

/* A dead entry's value becomes a spare if it may and there is room; the
 * entry itself is freed by the caller (without its value then). */
static void keep_spare(struct shard *s, struct entry *e)
{
    if (!e->reusable || !e->free_cb || s->nspares == SHARD_SPARES)
        return;
    s->spares[s->nspares++] = (struct spare){e->value, e->charge, e->free_cb};
    e->free_cb = NULL;
}

/* Evicts the oldest unpinned entries while over budget; returns a list
 * (through hnext) of entries to free outside the lock. */
static struct entry *evict(struct shard *s)
{
    struct entry *dead = NULL;
    while (s->usage > s->capacity && s->lru.next != &s->lru) {
        struct entry *e = s->lru.next;
        *find_slot(s, &e->key, e->hash) = e->hnext;
        s->evictions++;
        if (detach(s, e)) {
            keep_spare(s, e);
            e->hnext = dead;
            dead = e;
        }
    }
    return dead;
}

enum insert_mode { INSERT_REPLACE, INSERT_REUSABLE, INSERT_IF_ABSENT };

static int insert(struct ppdb_cache *c, const struct ppdb_cache_key *k, void *value, size_t charge,
                  ppdb_cache_free_cb free_cb, enum insert_mode mode,
                  struct ppdb_cache_handle **h_out)
{
    struct entry *e = ppdb_calloc(1, sizeof(*e));
    if (!e) {
        if (free_cb)
            free_cb(value, charge);
        return PPDB_ENOMEM;
    }
    e->key = *k;
    e->hash = hash_key(k);
    e->value = value;
    e->charge = charge;
    e->free_cb = free_cb;
    e->refs = h_out ? 2 : 1; /* the table's and the caller's */
    e->in_cache = true;
    e->reusable = mode == INSERT_REUSABLE;
    struct shard *s = shard_of(c, e->hash);
    struct entry *dead = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->n_entries >= s->n_buckets)
        grow_table(s);
    struct entry **slot = find_slot(s, k, e->hash);
    struct entry *old = *slot;
    if (old && mode == INSERT_IF_ABSENT) { /* the one there wins; ours goes */
        ref_entry(s, old);
        s->hits++;
        pthread_mutex_unlock(&s->mu);
        e->refs = 0;
        e->in_cache = false;
        free_entry(e);
        *h_out = (struct ppdb_cache_handle *)old;
        return 0;
    }
    if (old) { /* replace */
        *slot = old->hnext;
        if (detach(s, old)) {
            old->hnext = NULL;
            dead = old;
        }
        slot = find_slot(s, k, e->hash);
    }
    e->hnext = *slot;
    *slot = e;
    list_append(h_out ? &s->in_use : &s->lru, e); /* no handle: evictable at once */
    s->usage += charge;
    s->n_entries++;
    s->inserts++;
    struct entry *evicted = evict(s);
    pthread_mutex_unlock(&s->mu);
    free_list(dead);
    free_list(evicted);
    if (h_out)
        *h_out = (struct ppdb_cache_handle *)e;
    return 0;
}

int ppdb_cache_insert(struct ppdb_cache *c, const struct ppdb_cache_key *k, void *value,
                      size_t charge, ppdb_cache_free_cb free_cb, struct ppdb_cache_handle **h_out)
{
    return insert(c, k, value, charge, free_cb, INSERT_REPLACE, h_out);
}

int ppdb_cache_insert_if_absent(struct ppdb_cache *c, const struct ppdb_cache_key *k, void *value,
                                size_t charge, ppdb_cache_free_cb free_cb,
                                struct ppdb_cache_handle **h_out)
{
    PPDB_ASSERT(h_out != NULL);
    return insert(c, k, value, charge, free_cb, INSERT_IF_ABSENT, h_out);
}

int ppdb_cache_insert_reusable(struct ppdb_cache *c, const struct ppdb_cache_key *k, void *value,
                               size_t charge, ppdb_cache_free_cb free_cb,
                               struct ppdb_cache_handle **h_out)
{
    PPDB_ASSERT(free_cb != NULL);
    return insert(c, k, value, charge, free_cb, INSERT_REUSABLE, h_out);
}

void ppdb_cache_erase(struct ppdb_cache *c, const struct ppdb_cache_key *k)
{
    uint64_t h = hash_key(k);
    struct shard *s = shard_of(c, h);
    bool dead = false;
    pthread_mutex_lock(&s->mu);
    struct entry *e = s->n_buckets ? *find_slot(s, k, h) : NULL;
    if (e) {
        *find_slot(s, k, h) = e->hnext;
        dead = detach(s, e);
    }
    pthread_mutex_unlock(&s->mu);
    if (dead)
        free_entry(e);
}

void ppdb_cache_stats(struct ppdb_cache *c, struct ppdb_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity_bytes = c->capacity;
    size_t n = (size_t)1 << c->shard_bits;
    for (size_t i = 0; i < n; i++) {
        struct shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        out->hits += s->hits;
        out->misses += s->misses;
        out->inserts += s->inserts;
        out->evictions += s->evictions;
        out->usage_bytes += s->usage;
        out->entries += s->n_entries;
        pthread_mutex_unlock(&s->mu);
    }
}
