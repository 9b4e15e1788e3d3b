/*
 * alloc.c - counted allocation.
 *
 * Every block carries a 16-byte header holding its size, so frees can be
 * counted in bytes and the payload keeps malloc's 16-byte alignment. The
 * counters are relaxed atomics: they are statistics, read by tests after the
 * threads that allocate have been joined.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "ppdb_base.h"

#define HDR 16

static _Atomic int64_t live_blocks, live_bytes, total_allocs, failed_allocs;
static _Atomic int64_t fail_countdown;

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
    atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_bytes, (int64_t)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_allocs, 1, memory_order_relaxed);
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
    atomic_fetch_add_explicit(&live_bytes, (int64_t)n - (int64_t)old, memory_order_relaxed);
    return nr + HDR;
}

void ppdb_free(void *p)
{
    if (!p)
        return;
    uint8_t *raw = (uint8_t *)p - HDR;
    size_t n;
    memcpy(&n, raw, sizeof(n));
    atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&live_bytes, (int64_t)n, memory_order_relaxed);
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
    out->live_blocks = atomic_load(&live_blocks);
    out->live_bytes = atomic_load(&live_bytes);
    out->total_allocs = atomic_load(&total_allocs);
    out->failed_allocs = atomic_load(&failed_allocs);
}

void ppdb_alloc_fail_after(int64_t n)
{
    atomic_store(&fail_countdown, n);
}
