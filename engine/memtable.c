/*
 * memtable.c - the in-memory write buffer: a skiplist in an arena.
 *
 * Entries are internal keys (table.h) in ppdb_ikey_cmp order, copied into
 * arenas that are freed as a whole when the last reference to the memtable
 * goes (a memtable is never edited, only dropped after its flush). Nodes
 * and their keys live in one arena, values in another: a search touches
 * one node per step, a cache miss each, so nodes are kept small and dense
 * (a 16-byte key's node fits in 64 bytes), and the values, read only on a
 * hit or a flush, stay out of the way. As in LevelDB, one writer inserts at a time (the
 * group-commit leader, or recovery), while readers walk the list without a
 * lock: a node is fully built before it is published with a release store
 * into its predecessors' next pointers, and readers follow pointers with
 * acquire loads, so a reader sees either the old list or the node complete.
 *
 * Invariants: the list is strictly ascending in ppdb_ikey_cmp (sequence
 * numbers make every internal key unique); nodes and bytes are never freed
 * before mem_unref drops the last reference; max_version only grows.
 */
#include "engine_int.h"

#include <stdalign.h>
#include <stddef.h>

#define ARENA_BLOCK 4096u

struct mem_arena_block {
    struct mem_arena_block *next;
    size_t size;
    alignas(max_align_t) uint8_t data[];
};

static void *arena_new_block(struct mem_arena *a, size_t size)
{
    struct mem_arena_block *b = ppdb_malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = a->blocks;
    b->size = size;
    a->blocks = b;
    a->bytes += sizeof(*b) + size;
    return b->data;
}

/* n bytes aligned for pointers; NULL on out of memory. */
static void *arena_alloc(struct mem_arena *a, size_t n)
{
    size_t pad = (size_t)(-(uintptr_t)a->cur & (alignof(void *) - 1));
    if (a->cur && n + pad <= a->left) {
        void *p = a->cur + pad;
        a->cur += n + pad;
        a->left -= n + pad;
        return p;
    }
    if (n > ARENA_BLOCK / 4)
        return arena_new_block(a, n); /* big entries get their own block */
    uint8_t *p = arena_new_block(a, ARENA_BLOCK);
    if (!p)
        return NULL;
    a->cur = p + n;
    a->left = ARENA_BLOCK - n;
    return p;
}

static void arena_free(struct mem_arena *a)
{
    struct mem_arena_block *b = a->blocks;
    while (b) {
        struct mem_arena_block *next = b->next;
        ppdb_free(b);
        b = next;
    }
    memset(a, 0, sizeof(*a));
}

/* The memtable's memory: every block, less the unused tail of each
 * arena's current block (not counted until used, so that two arenas do not
 * make a small memtable look full before it holds anything). */
static size_t arenas_used(const struct memtable *m)
{
    return m->arena.bytes - m->arena.left + m->varena.bytes - m->varena.left;
}

static struct mem_node *node_new(struct memtable *m, int height, size_t iklen, size_t vlen)
{
    size_t head = sizeof(struct mem_node) + (size_t)height * sizeof(_Atomic(struct mem_node *));
    uint8_t *v = vlen ? arena_alloc(&m->varena, vlen) : NULL;
    uint8_t *p = vlen && !v ? NULL : arena_alloc(&m->arena, head + iklen);
    if (!p)
        return NULL;
    struct mem_node *n = (struct mem_node *)(void *)p;
    n->ikey = p + head;
    n->value = v;
    n->iklen = (uint32_t)iklen;
    n->vlen = (uint32_t)vlen;
    for (int i = 0; i < height; i++)
        atomic_init(&n->next[i], NULL);
    return n;
}

int mem_new(struct memtable **m_out)
{
    struct memtable *m = ppdb_calloc(1, sizeof(*m));
    if (!m)
        return PPDB_ENOMEM;
    m->head = node_new(m, MEM_MAX_HEIGHT, 0, 0);
    if (!m->head) {
        ppdb_free(m);
        return PPDB_ENOMEM;
    }
    atomic_init(&m->height, 1);
    atomic_init(&m->bytes, arenas_used(m));
    atomic_init(&m->max_version, 0);
    atomic_init(&m->count, 0);
    atomic_init(&m->refs, 1);
    m->rng = 0x9e3779b97f4a7c15ull ^ (uintptr_t)m;
    *m_out = m;
    return 0;
}

void mem_ref(struct memtable *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void mem_unref(struct memtable *m)
{
    if (!m)
        return;
    int old = atomic_fetch_sub(&m->refs, 1);
    PPDB_ASSERT_CMP(old, >, 0);
    if (old == 1) {
        arena_free(&m->arena);
        arena_free(&m->varena);
        ppdb_free(m);
    }
}

static int random_height(struct memtable *m)
{
    int h = 1;
    while (h < MEM_MAX_HEIGHT) {
        m->rng = ppdb_mix64(m->rng + 0x9e3779b97f4a7c15ull);
        if ((m->rng & 3) != 0) /* branching factor 4 */
            break;
        h++;
    }
    return h;
}

static int node_cmp(const struct mem_node *n, const uint8_t *key, size_t klen)
{
    return ppdb_ikey_cmp(n->ikey, n->iklen, key, klen);
}

/* Starts loading node n (its header and internal key) into the cache. */
static inline void prefetch_node(const struct mem_node *n)
{
    if (n) {
        __builtin_prefetch(n);
        __builtin_prefetch((const uint8_t *)n + 64);
    }
}

/* First node >= key; fills prev[] (if not NULL) with each level's last node < key.
 * The walk is a chain of cache misses (one per node compared); at each node
 * both candidates for the next step are fetched at once: the next node on
 * this level (compared now) and the next one a level down (compared next if
 * the search descends), so the two misses overlap. */
static struct mem_node *find_ge(struct memtable *m, const uint8_t *key, size_t klen,
                                struct mem_node **prev)
{
    struct mem_node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        struct mem_node *next = atomic_load_explicit(&x->next[level], memory_order_acquire);
        if (level > 0) {
            struct mem_node *down = atomic_load_explicit(&x->next[level - 1], memory_order_acquire);
            if (down != next)
                prefetch_node(down);
        }
        if (next && node_cmp(next, key, klen) < 0) {
            x = next;
            continue;
        }
        if (prev)
            prev[level] = x;
        if (level == 0)
            return next;
        level--;
    }
}

int mem_add(struct memtable *m, uint64_t seq, int type, uint64_t version, const uint8_t *key,
            size_t klen, const uint8_t *val, size_t vlen)
{
    PPDB_ASSERT(klen <= UINT32_MAX - PPDB_IKEY_TRAILER && vlen <= UINT32_MAX);
    int height = random_height(m);
    struct mem_node *n = node_new(m, height, klen + PPDB_IKEY_TRAILER, vlen);
    if (!n)
        return PPDB_ENOMEM;
    uint8_t *ik = (uint8_t *)n->ikey;
    ppdb_ikey_encode(ik, key, klen, version, seq, (unsigned)type);
    if (vlen)
        memcpy((uint8_t *)n->value, val, vlen);
    struct mem_node *prev[MEM_MAX_HEIGHT];
    struct mem_node *ge = find_ge(m, ik, n->iklen, prev);
    PPDB_ASSERT(ge == NULL || node_cmp(ge, ik, n->iklen) != 0);
    int cur = atomic_load_explicit(&m->height, memory_order_relaxed);
    for (int i = cur; i < height; i++)
        prev[i] = m->head;
    if (height > cur)
        atomic_store_explicit(&m->height, height, memory_order_relaxed);
    for (int i = 0; i < height; i++) {
        struct mem_node *nx = atomic_load_explicit(&prev[i]->next[i], memory_order_relaxed);
        atomic_store_explicit(&n->next[i], nx, memory_order_relaxed);
        atomic_store_explicit(&prev[i]->next[i], n, memory_order_release);
    }
    uint64_t mv = atomic_load_explicit(&m->max_version, memory_order_relaxed);
    if (version > mv)
        atomic_store_explicit(&m->max_version, version, memory_order_release);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    atomic_store_explicit(&m->bytes, arenas_used(m), memory_order_relaxed);
    return 0;
}

static bool hit_better(const struct lookup_hit *hit, uint64_t version, uint64_t seq)
{
    return !hit->found || version > hit->version || (version == hit->version && seq > hit->seq);
}

int mem_get(struct memtable *m, const uint8_t *key, size_t klen, uint64_t snap_seq,
            struct lookup_hit *hit)
{
    uint8_t small[256];
    uint8_t *seek =
        klen + PPDB_IKEY_TRAILER <= sizeof(small) ? small : ppdb_malloc(klen + PPDB_IKEY_TRAILER);
    if (!seek)
        return PPDB_ENOMEM;
    size_t slen = ppdb_ikey_seek_key(seek, key, klen);
    struct mem_node *n = find_ge(m, seek, slen, NULL);
    if (seek != small)
        ppdb_free(seek);
    int rc = 0;
    for (; n; n = atomic_load_explicit(&n->next[0], memory_order_acquire)) {
        struct ppdb_ikey ik;
        PPDB_ASSERT(ppdb_ikey_decode(n->ikey, n->iklen, &ik) == 0);
        if (ppdb_ukey_cmp(ik.ukey, ik.ulen, key, klen) != 0)
            break;
        if (ik.seq > snap_seq)
            continue; /* written after the read started (part of a batch in flight) */
        if (hit_better(hit, ik.version, ik.seq)) {
            hit->found = true;
            hit->type = (int)ik.type;
            hit->version = ik.version;
            hit->seq = ik.seq;
            ppdb_buf_reset(hit->value);
            rc = ppdb_buf_append(hit->value, n->value, n->vlen);
        }
        break; /* the first visible entry is this source's best */
    }
    return rc;
}

size_t mem_usage(const struct memtable *m)
{
    return atomic_load_explicit(&m->bytes, memory_order_relaxed);
}

uint64_t mem_max_version(const struct memtable *m)
{
    return atomic_load_explicit(&m->max_version, memory_order_acquire);
}

uint64_t mem_count(const struct memtable *m)
{
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

struct mem_node *mem_find_ge(struct memtable *m, const uint8_t *ikey, size_t klen)
{
    return find_ge(m, ikey, klen, NULL);
}

/* Last node < ikey (ikey NULL: the last node), or NULL. */
struct mem_node *mem_find_lt(struct memtable *m, const uint8_t *ikey, size_t klen)
{
    struct mem_node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        struct mem_node *next = atomic_load_explicit(&x->next[level], memory_order_acquire);
        if (next && (!ikey || node_cmp(next, ikey, klen) < 0)) {
            x = next;
            continue;
        }
        if (level == 0)
            return x == m->head ? NULL : x;
        level--;
    }
}

void mem_iter_first(struct mem_iter *it, struct memtable *m)
{
    it->m = m;
    it->node = atomic_load_explicit(&m->head->next[0], memory_order_acquire);
}

void mem_iter_next(struct mem_iter *it)
{
    PPDB_ASSERT(it->node != NULL);
    it->node = atomic_load_explicit(&it->node->next[0], memory_order_acquire);
}
