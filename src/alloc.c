/*
 * alloc.c - counted allocation, and thread indexes.
 *
 * Every block carries a 16-byte header holding its size, so frees can be
 * counted in bytes and the payload keeps malloc's 16-byte alignment. The
 * counters are relaxed atomics: they are statistics, read by tests after the
 * threads that allocate have been joined.
 *
 * The counters are spread over ALLOC_SHARDS line pairs by thread index and
 * summed when read (a block freed by another thread than the one that
 * allocated it leaves one shard high and another low; the sums are exact).
 * With one set of counters, every allocation and free on every thread was
 * an atomic add on the same cache line: two threads reading a database
 * (blocks loaded into and evicted from the block cache) spent much of a
 * get waiting for that line to come back from the other core.
 *
 * Invariants: a shard is touched only with relaxed atomics; the fail
 * countdown, read by every allocation, sits on a line nothing else writes.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "ppdb_base.h"

#define HDR          16
#define ALLOC_SHARDS 16

/* 128 bytes: a core's prefetcher fetches cache lines in pairs. */
struct alloc_shard {
    _Atomic int64_t live_blocks, live_bytes, total_allocs;
    uint8_t pad[128 - 3 * sizeof(int64_t)];
};
_Static_assert(sizeof(struct alloc_shard) == 128, "shards do not share lines");

static _Alignas(128) struct alloc_shard shards[ALLOC_SHARDS];
static _Alignas(128) _Atomic int64_t fail_countdown;
static _Atomic int64_t failed_allocs;

static _Alignas(128) atomic_uint thread_count;
static _Thread_local unsigned thread_index; /* 1 + index; 0: not assigned yet */

unsigned ppdb_thread_index(void)
{
    if (PPDB_UNLIKELY(thread_index == 0))
        thread_index = 1 + atomic_fetch_add_explicit(&thread_count, 1, memory_order_relaxed);
    return thread_index - 1;
}

static inline struct alloc_shard *my_shard(void)
{
    return &shards[ppdb_thread_index() % ALLOC_SHARDS];
}

static bool should_fail(void)
{
    int64_t c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (PPDB_LIKELY(c == 0))
        return false;
    if (atomic_fetch_sub(&fail_countdown, 1) == 1) {
        atomic_fetch_add_explicit(&failed_allocs, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

static void *finish(uint8_t *raw, size_t n)
{
    if (!raw)
        return NULL;
    memcpy(raw, &n, sizeof(n));
    struct alloc_shard *sh = my_shard();
    atomic_fetch_add_explicit(&sh->live_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->live_bytes, (int64_t)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->total_allocs, 1, memory_order_relaxed);
    return raw + HDR;
}

void *ppdb_malloc(size_t n)
{
    if (should_fail() || n > SIZE_MAX - HDR)
        return NULL;
    return finish(malloc(n + HDR), n);
}

void *ppdb_calloc(size_t count, size_t size)
{
    if (size && count > (SIZE_MAX - HDR) / size)
        return NULL;
    if (should_fail())
        return NULL;
    return finish(calloc(1, count * size + HDR), count * size);
}

void *ppdb_realloc(void *p, size_t n)
{
    if (!p)
        return ppdb_malloc(n);
    if (should_fail() || n > SIZE_MAX - HDR)
        return NULL;
    uint8_t *raw = (uint8_t *)p - HDR;
    size_t old;
    memcpy(&old, raw, sizeof(old));
    uint8_t *nr = realloc(raw, n + HDR);
    if (!nr)
        return NULL;
    memcpy(nr, &n, sizeof(n));
    atomic_fetch_add_explicit(&my_shard()->live_bytes, (int64_t)n - (int64_t)old,
                              memory_order_relaxed);
    return nr + HDR;
}

void ppdb_free(void *p)
{
    if (!p)
        return;
    uint8_t *raw = (uint8_t *)p - HDR;
    size_t n;
    memcpy(&n, raw, sizeof(n));
    struct alloc_shard *sh = my_shard();
    atomic_fetch_sub_explicit(&sh->live_blocks, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&sh->live_bytes, (int64_t)n, memory_order_relaxed);
    free(raw);
}

char *ppdb_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ppdb_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void ppdb_alloc_stats(struct ppdb_alloc_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < ALLOC_SHARDS; i++) {
        out->live_blocks += atomic_load(&shards[i].live_blocks);
        out->live_bytes += atomic_load(&shards[i].live_bytes);
        out->total_allocs += atomic_load(&shards[i].total_allocs);
    }
    out->failed_allocs = atomic_load(&failed_allocs);
}

void ppdb_alloc_fail_after(int64_t n)
{
    atomic_store(&fail_countdown, n);
}
