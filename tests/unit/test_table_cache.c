/*
 * test_table_cache.c - the sharded LRU block cache: eviction by byte
 * budget in LRU order, pinned entries survive eviction and erase until
 * released, replacement and insert-if-absent, the budget restored by a
 * release, spares of reusable values, hit/miss counters, and two threads
 * hammering one small cache (run under ASan/TSan-style checks by the
 * sanitizer build).
 */
#include <pthread.h>

#include "check.h"
#include "table.h"

static int64_t freed_bytes; /* only touched by the main thread's tests */

static void free_cb(void *value, size_t charge)
{
    freed_bytes += (int64_t)charge;
    ppdb_free(value);
}

static void free_quiet_cb(void *value, size_t charge)
{
    ppdb_free(value);
}

static void *val(uint64_t x)
{
    uint64_t *p = ppdb_malloc(sizeof(*p));
    *p = x;
    return p;
}

static void test_budget(void)
{
    struct ppdb_cache *c;
    CHECK_OK(ppdb_cache_new(1000, 1, &c)); /* 2 shards of 500 bytes */
    struct ppdb_cache_key k = {ppdb_cache_new_id(c), 1, 0};
    for (uint64_t i = 0; i < 100; i++) {
        k.off = i;
        CHECK_OK(ppdb_cache_insert(c, &k, val(i), 100, free_cb, NULL));
    }
    struct ppdb_cache_stats st;
    ppdb_cache_stats(c, &st);
    CHECK_LE(st.usage_bytes, 1000);
    CHECK_GE(st.usage_bytes, 600);
    CHECK_EQ(st.inserts, 100);
    CHECK_EQ(st.evictions, 100 - st.entries);
    CHECK_EQ(freed_bytes, (int64_t)(100 - st.entries) * 100);
    k.off = 99; /* the newest survive, the oldest went */
    struct ppdb_cache_handle *h = ppdb_cache_lookup(c, &k);
    CHECK(h != NULL);
    CHECK_EQ(*(uint64_t *)ppdb_cache_value(h), 99);
    ppdb_cache_release(c, h);
    k.off = 0;
    CHECK(ppdb_cache_lookup(c, &k) == NULL);
    ppdb_cache_stats(c, &st);
    CHECK_EQ(st.hits, 1);
    CHECK_EQ(st.misses, 1);
    ppdb_cache_free(c);
    CHECK_EQ(freed_bytes, 100 * 100);
}

static void test_pinned(void)
{
    freed_bytes = 0;
    struct ppdb_cache *c;
    CHECK_OK(ppdb_cache_new(300, 1, &c));
    struct ppdb_cache_key k = {1, 2, 3};
    struct ppdb_cache_handle *pinned;
    CHECK_OK(ppdb_cache_insert(c, &k, val(42), 100, free_cb, &pinned));
    for (uint64_t i = 10; i < 60; i++) { /* churn past the budget */
        struct ppdb_cache_key o = {1, 2, i};
        CHECK_OK(ppdb_cache_insert(c, &o, val(i), 100, free_cb, NULL));
    }
    CHECK_EQ(*(uint64_t *)ppdb_cache_value(pinned), 42); /* not freed */
    struct ppdb_cache_handle *h = ppdb_cache_lookup(c, &k);
    CHECK(h == pinned); /* pinned entries are never evicted */
    ppdb_cache_release(c, h);
    ppdb_cache_erase(c, &k);
    CHECK(ppdb_cache_lookup(c, &k) == NULL);
    int64_t before = freed_bytes;
    CHECK_EQ(*(uint64_t *)ppdb_cache_value(pinned), 42); /* erased but alive */
    ppdb_cache_release(c, pinned);
    CHECK_EQ(freed_bytes, before + 100);
    /* Replacement: the new value is found, the old one freed once unpinned. */
    CHECK_OK(ppdb_cache_insert(c, &k, val(1), 10, free_cb, &h));
    CHECK_OK(ppdb_cache_insert(c, &k, val(2), 10, free_cb, NULL));
    CHECK_EQ(*(uint64_t *)ppdb_cache_value(h), 1);
    struct ppdb_cache_handle *h2 = ppdb_cache_lookup(c, &k);
    CHECK_EQ(*(uint64_t *)ppdb_cache_value(h2), 2);
    ppdb_cache_release(c, h);
    ppdb_cache_release(c, h2);
    ppdb_cache_free(c);
}

/* A release that leaves a shard over budget evicts at once; an insert
 * without a handle is evictable at once. */
static void test_release_evicts(void)
{
    freed_bytes = 0;
    struct ppdb_cache *c;
    CHECK_OK(ppdb_cache_new(1000, 1, &c)); /* 2 shards of 500 bytes */
    struct ppdb_cache_handle *h[20];
    for (uint64_t i = 0; i < 20; i++) { /* pinned: nothing can go */
        struct ppdb_cache_key k = {1, 1, i};
        CHECK_OK(ppdb_cache_insert(c, &k, val(i), 100, free_cb, &h[i]));
    }
    struct ppdb_cache_stats st;
    ppdb_cache_stats(c, &st);
    CHECK_EQ(st.usage_bytes, 2000);
    for (int i = 0; i < 20; i++)
        ppdb_cache_release(c, h[i]);
    ppdb_cache_stats(c, &st);
    CHECK_LE(st.usage_bytes, 1000); /* no insert since */
    CHECK_EQ(freed_bytes, 2000 - (int64_t)st.usage_bytes);
    for (uint64_t i = 100; i < 200; i++) {
        struct ppdb_cache_key k = {1, 1, i};
        CHECK_OK(ppdb_cache_insert(c, &k, val(i), 100, free_cb, NULL));
        ppdb_cache_stats(c, &st);
        CHECK_LE(st.usage_bytes, 1000);
    }
    ppdb_cache_free(c);
    CHECK_EQ(freed_bytes, 120 * 100);
}

/* Two inserts of one key with insert_if_absent: the first stays. */
static void test_if_absent(void)
{
    freed_bytes = 0;
    struct ppdb_cache *c;
    CHECK_OK(ppdb_cache_new(1000, 1, &c));
    struct ppdb_cache_key k = {1, 7, 7};
    struct ppdb_cache_handle *h1, *h2;
    CHECK_OK(ppdb_cache_insert_if_absent(c, &k, val(1), 10, free_cb, &h1));
    CHECK_OK(ppdb_cache_insert_if_absent(c, &k, val(2), 20, free_cb, &h2));
    CHECK(h1 == h2);
    CHECK_EQ(*(uint64_t *)ppdb_cache_value(h2), 1);
    CHECK_EQ(freed_bytes, 20); /* the second value went at once */
    struct ppdb_cache_stats st;
    ppdb_cache_stats(c, &st);
    CHECK_EQ(st.entries, 1);
    CHECK_EQ(st.usage_bytes, 10);
    ppdb_cache_release(c, h1);
    ppdb_cache_release(c, h2);
    ppdb_cache_free(c);
    CHECK_EQ(freed_bytes, 30);
}

static void other_free_cb(void *value, size_t charge)
{
    freed_bytes += (int64_t)charge;
    ppdb_free(value);
}

/* Takes every spare a miss hands out (each value inserted with free_cb
 * and a charge of 100) and frees it. */
static int take_spares(struct ppdb_cache *c)
{
    int taken = 0;
    struct ppdb_cache_key miss = {1, 3, 0};
    for (uint64_t i = 0; i < 40; i++) {
        void *spare;
        size_t charge;
        miss.off = i;
        CHECK(ppdb_cache_lookup_or_spare(c, &miss, free_cb, &spare, &charge) == NULL);
        if (spare) {
            CHECK_EQ(charge, 100);
            free_cb(spare, charge);
            taken++;
        }
    }
    return taken;
}

/* Values inserted as reusable become spares of their shard when evicted
 * (a few per shard), handed out with a miss to a caller of the same
 * free_cb, and freed with the cache. Plain values never become spares. */
static void test_spares(void)
{
    freed_bytes = 0;
    struct ppdb_cache *c;
    CHECK_OK(ppdb_cache_new(1000, 1, &c)); /* 2 shards of 500 bytes */
    for (uint64_t i = 0; i < 50; i++) {
        struct ppdb_cache_key k = {1, 2, i};
        CHECK_OK(ppdb_cache_insert_reusable(c, &k, val(i), 100, free_cb, NULL));
    }
    struct ppdb_cache_stats st;
    ppdb_cache_stats(c, &st);
    CHECK_EQ(st.evictions, 50 - st.entries);
    /* Each shard evicted more than it keeps: 4 spares each, the rest freed. */
    CHECK_EQ(freed_bytes, (int64_t)(st.evictions - 8) * 100);
    void *spare;
    size_t charge;
    struct ppdb_cache_key miss = {1, 3, 0};
    CHECK(ppdb_cache_lookup_or_spare(c, &miss, other_free_cb, &spare, &charge) == NULL);
    CHECK(spare == NULL && charge == 0); /* another kind of value */
    CHECK_EQ(take_spares(c), 8);
    /* Plain values push the last reusable ones out (their shards keep 4
     * spares each again) and are freed themselves when evicted. */
    struct ppdb_cache_key plain = {1, 4, 0};
    for (uint64_t i = 0; i < 50; i++) {
        plain.off = i;
        CHECK_OK(ppdb_cache_insert(c, &plain, val(i), 100, free_cb, NULL));
    }
    CHECK_EQ(take_spares(c), 8);
    /* One more reusable value, evicted by nothing: freed with the cache. */
    CHECK_OK(ppdb_cache_insert_reusable(c, &plain, val(0), 100, free_cb, NULL));
    ppdb_cache_free(c);
    CHECK_EQ(freed_bytes, 101 * 100);
}

struct worker {
    struct ppdb_cache *c;
    uint64_t seed;
    uint64_t ops;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, w->seed);
    for (int i = 0; i < 200000; i++) {
        struct ppdb_cache_key k = {1, ppdb_rng_below(&rng, 4), ppdb_rng_below(&rng, 500)};
        uint64_t tag = k.file * 1000 + k.off;
        struct ppdb_cache_handle *h = ppdb_cache_lookup(w->c, &k);
        if (!h) {
            CHECK_OK(ppdb_cache_insert(w->c, &k, val(tag), 64 + ppdb_rng_below(&rng, 64),
                                       free_quiet_cb, &h));
        }
        CHECK_EQ(*(uint64_t *)ppdb_cache_value(h), tag);
        if (ppdb_rng_below(&rng, 50) == 0)
            ppdb_cache_erase(w->c, &k);
        ppdb_cache_release(w->c, h);
        w->ops++;
    }
    return NULL;
}

static void test_threads(uint64_t seed)
{
    struct ppdb_cache *c;
    CHECK_OK(ppdb_cache_new(16384, 0, &c));
    struct worker w[2] = {{c, seed, 0}, {c, seed + 1, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    struct ppdb_cache_stats st;
    ppdb_cache_stats(c, &st);
    CHECK_EQ(st.hits + st.misses, w[0].ops + w[1].ops);
    CHECK_GT(st.hits, 0);
    CHECK_GT(st.evictions, 0);
    CHECK_LE(st.usage_bytes, 16384 + 16 * 128);
    fprintf(stderr, "threads: hits=%llu misses=%llu evictions=%llu\n", (unsigned long long)st.hits,
            (unsigned long long)st.misses, (unsigned long long)st.evictions);
    ppdb_cache_free(c);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 5);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_budget();
    test_pinned();
    test_release_evicts();
    test_if_absent();
    test_spares();
    test_threads(seed);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
