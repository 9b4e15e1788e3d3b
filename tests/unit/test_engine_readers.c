/*
 * test_engine_readers.c - gets on several threads while writes, flushes
 * and compactions install new read states (engine/db.c: super versions
 * cached per thread; engine/tcache.c: readers pinned by their table).
 *
 * Three key sets. Stable keys are written before the snapshot and never
 * again: every get must find them, with their value. Churn keys are
 * overwritten with rising generations: a get must return a generation at
 * least the one acknowledged before it started and at most the one whose
 * write had started when it returned. Doomed keys are deleted once each: a
 * get must miss one whose delete was acknowledged before it started, and
 * may miss it only once that delete had started. A snapshot taken after
 * the load must see the load exactly (generation 1, doomed keys present)
 * until the writer releases it half way through, while readers use it.
 *
 * A guard fs wraps the in-memory fs and tracks every table file: no read
 * may go to a deleted one, by pread or through a map (maps are copies that
 * the deletion poisons). Tiny memtables, tables, block cache and table
 * cache (max_open_files 6: 3 readers pinned by their table files, the rest
 * through the LRU) keep flushes, compactions, evictions and pins going,
 * and the peak of open tables must stay near the bound. Then 40 threads
 * read at once, more than a db has slots. At the end every counted
 * allocation is back to its baseline.
 *
 * Seeded: PPDB_SEED=<n> or argv[1]; the seed is printed (it picks the keys;
 * thread timing is not replayed).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "db_int.h"

#define READERS    3
#define NSTABLE    1500
#define NCHURN     300
#define NDOOM      300
#define WRITES     30000
#define VAL_BYTES  48
#define MAX_TABLES 4096
#define MAX_OPEN   6
/* Open tables may pass the bound by the handles in use at once: one per
 * reading thread, and a compaction's inputs. */
#define OPEN_SLACK 24

/* -------------------------------------------------------------- guard fs */

struct table_state {
    int open;     /* handles */
    bool removed; /* deleted: nothing may read it again */
};

struct ppdb_file {
    struct ppdb_file *inner;
    long table;               /* table number, or -1 */
    uint8_t *copy;            /* what map handed out: a copy of the inner map */
    const uint8_t *inner_map; /* the inner map, and its length */
    uint64_t map_len;
    struct ppdb_file *next_open; /* guard.open_list */
};

struct guard {
    struct ppdb_fs base; /* first */
    struct ppdb_fs *inner;
    struct ppdb_fs_ops ops;
    pthread_mutex_t mu;
    struct table_state tables[MAX_TABLES];
    struct ppdb_file *open_list; /* open table handles */
    int open_now, open_peak;     /* table handles */
    long removed, removed_open;  /* tables deleted; of them, with a handle still open */
};

static struct guard *to_g(struct ppdb_fs *fs)
{
    return (struct guard *)fs;
}

#define INNER(fs) (to_g(fs)->inner)

/* Table number of a ".sst" path, or -1. */
static long table_of(const char *path)
{
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 4, ".sst") != 0)
        return -1;
    const char *slash = strrchr(path, '/');
    long number = strtol(slash ? slash + 1 : path, NULL, 10);
    CHECK_LT(number, MAX_TABLES);
    return number;
}

static int g_open(struct ppdb_fs *fs, const char *path, int flags, struct ppdb_file **f_out)
{
    struct guard *g = to_g(fs);
    struct ppdb_file *f = calloc(1, sizeof(*f));
    CHECK(f != NULL);
    int rc = INNER(fs)->ops->open(INNER(fs), path, flags, &f->inner);
    if (rc) {
        free(f);
        return rc;
    }
    f->table = table_of(path);
    if (f->table >= 0) {
        pthread_mutex_lock(&g->mu);
        CHECK(!g->tables[f->table].removed);
        g->tables[f->table].open++;
        if (++g->open_now > g->open_peak)
            g->open_peak = g->open_now;
        f->next_open = g->open_list;
        g->open_list = f;
        pthread_mutex_unlock(&g->mu);
    }
    *f_out = f;
    return 0;
}

static int g_close(struct ppdb_fs *fs, struct ppdb_file *f)
{
    struct guard *g = to_g(fs);
    CHECK(f->copy == NULL); /* unmapped first */
    if (f->table >= 0) {
        pthread_mutex_lock(&g->mu);
        CHECK_GT(g->tables[f->table].open, 0);
        g->tables[f->table].open--;
        g->open_now--;
        struct ppdb_file **pp = &g->open_list;
        while (*pp != f)
            pp = &(*pp)->next_open;
        *pp = f->next_open;
        pthread_mutex_unlock(&g->mu);
    }
    int rc = INNER(fs)->ops->close(INNER(fs), f->inner);
    free(f);
    return rc;
}

/* A read of a table after its deletion is the bug this fs is here for. */
static void check_live(struct ppdb_fs *fs, const struct ppdb_file *f)
{
    struct guard *g = to_g(fs);
    if (f->table < 0)
        return;
    pthread_mutex_lock(&g->mu);
    bool removed = g->tables[f->table].removed;
    pthread_mutex_unlock(&g->mu);
    if (removed)
        CHECK_FAIL_("read of deleted table %ld", f->table);
}

static int g_pread(struct ppdb_fs *fs, struct ppdb_file *f, void *buf, size_t n, uint64_t off,
                   size_t *n_out)
{
    check_live(fs, f);
    return INNER(fs)->ops->pread(INNER(fs), f->inner, buf, n, off, n_out);
}

/* Hands out a copy, so that deleting the table can poison what a reader
 * of the map would see: a read through it after the deletion then finds
 * garbage (a checksum error or a wrong value), never the old bytes. */
static int g_map(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t **p_out, uint64_t *len_out)
{
    check_live(fs, f);
    CHECK(f->copy == NULL);
    int rc = INNER(fs)->ops->map(INNER(fs), f->inner, &f->inner_map, &f->map_len);
    if (rc)
        return rc;
    f->copy = malloc(f->map_len ? f->map_len : 1);
    CHECK(f->copy != NULL);
    memcpy(f->copy, f->inner_map, f->map_len);
    *p_out = f->copy;
    *len_out = f->map_len;
    return 0;
}

static void g_unmap(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t *p, uint64_t len)
{
    CHECK(p == f->copy && len == f->map_len);
    INNER(fs)->ops->unmap(INNER(fs), f->inner, f->inner_map, f->map_len);
    pthread_mutex_lock(&to_g(fs)->mu); /* g_remove may be poisoning it */
    free(f->copy);
    f->copy = NULL;
    pthread_mutex_unlock(&to_g(fs)->mu);
}

/* A table may be deleted while a thread that dropped its last use is still
 * closing it (an LRU eviction closes outside the cache's lock); nothing may
 * read it any more. */
static int g_remove(struct ppdb_fs *fs, const char *path)
{
    struct guard *g = to_g(fs);
    long t = table_of(path);
    if (t >= 0) {
        pthread_mutex_lock(&g->mu);
        g->tables[t].removed = true;
        g->removed++;
        g->removed_open += g->tables[t].open > 0;
        for (struct ppdb_file *f = g->open_list; f; f = f->next_open)
            if (f->table == t && f->copy)
                memset(f->copy, 0xa5, f->map_len);
        pthread_mutex_unlock(&g->mu);
    }
    return INNER(fs)->ops->remove(INNER(fs), path);
}

static int g_append(struct ppdb_fs *fs, struct ppdb_file *f, const void *buf, size_t n)
{
    return INNER(fs)->ops->append(INNER(fs), f->inner, buf, n);
}
static int g_sync(struct ppdb_fs *fs, struct ppdb_file *f)
{
    return INNER(fs)->ops->sync(INNER(fs), f->inner);
}
static int g_size(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t *size_out)
{
    return INNER(fs)->ops->size(INNER(fs), f->inner, size_out);
}
static int g_truncate(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t size)
{
    return INNER(fs)->ops->truncate(INNER(fs), f->inner, size);
}
static int g_rename(struct ppdb_fs *fs, const char *a, const char *b)
{
    CHECK_LT(table_of(b), 0); /* tables are written in place, never renamed */
    return INNER(fs)->ops->rename(INNER(fs), a, b);
}
static int g_link(struct ppdb_fs *fs, const char *a, const char *b)
{
    return INNER(fs)->ops->link(INNER(fs), a, b);
}
static int g_mkdir(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->mkdir(INNER(fs), p);
}
static int g_rmdir(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->rmdir(INNER(fs), p);
}
static int g_list(struct ppdb_fs *fs, const char *dir, char ***names_out, size_t *count_out)
{
    return INNER(fs)->ops->list(INNER(fs), dir, names_out, count_out);
}
static int g_exists(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->exists(INNER(fs), p);
}
static int g_file_size(struct ppdb_fs *fs, const char *p, uint64_t *size_out)
{
    return INNER(fs)->ops->file_size(INNER(fs), p, size_out);
}
static int g_sync_dir(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->sync_dir(INNER(fs), p);
}
static int g_lock(struct ppdb_fs *fs, const char *p, struct ppdb_file **lock_out)
{
    return INNER(fs)->ops->lock(INNER(fs), p, lock_out);
}
static int g_unlock(struct ppdb_fs *fs, struct ppdb_file *lock)
{
    return INNER(fs)->ops->unlock(INNER(fs), lock);
}
static int g_schedule(struct ppdb_fs *fs, ppdb_fs_task_fn fn, void *arg)
{
    return INNER(fs)->ops->schedule(INNER(fs), fn, arg);
}
static uint64_t g_now_us(struct ppdb_fs *fs)
{
    return INNER(fs)->ops->now_us(INNER(fs));
}
static int64_t g_wall_ms(struct ppdb_fs *fs)
{
    return INNER(fs)->ops->wall_ms(INNER(fs));
}
static void g_sleep_us(struct ppdb_fs *fs, uint64_t us)
{
    INNER(fs)->ops->sleep_us(INNER(fs), us);
}

static void guard_init(struct guard *g, struct ppdb_fs *inner)
{
    memset(g, 0, sizeof(*g));
    g->inner = inner;
    g->ops = (struct ppdb_fs_ops){
        .open = g_open,
        .close = g_close,
        .pread = g_pread,
        .append = g_append,
        .sync = g_sync,
        .size = g_size,
        .truncate = g_truncate,
        .map = g_map,
        .unmap = g_unmap,
        .rename = g_rename,
        .remove = g_remove,
        .link = g_link,
        .mkdir = g_mkdir,
        .rmdir = g_rmdir,
        .list = g_list,
        .exists = g_exists,
        .file_size = g_file_size,
        .sync_dir = g_sync_dir,
        .lock = g_lock,
        .unlock = g_unlock,
        .schedule = g_schedule,
        .now_us = g_now_us,
        .wall_ms = g_wall_ms,
        .sleep_us = g_sleep_us,
    };
    g->base.ops = &g->ops;
    pthread_mutex_init(&g->mu, NULL);
}

/* ------------------------------------------------------------ the model */

struct model {
    _Atomic uint64_t churn_started[NCHURN]; /* generation whose put began */
    _Atomic uint64_t churn_acked[NCHURN];   /* generation whose put returned */
    atomic_bool doom_started[NDOOM];        /* its delete began */
    atomic_bool doom_acked[NDOOM];          /* its delete returned */
    pthread_rwlock_t snap_lock;             /* readers: read; the release: write */
    const struct ppdb_snapshot *snap;       /* the load's snapshot, until released */
    atomic_bool done;
    atomic_long gets, snap_gets;
};

static struct ppdb_db *db;
static struct model M;

static void stable_key(int i, char *out)
{
    snprintf(out, 16, "s%05d", i);
}
static void churn_key(int i, char *out)
{
    snprintf(out, 16, "c%05d", i);
}
static void doom_key(int i, char *out)
{
    snprintf(out, 16, "d%05d", i);
}

/* A value names its key and generation, padded to VAL_BYTES. */
static size_t value_of(const char *key, uint64_t gen, char *out)
{
    int n = snprintf(out, VAL_BYTES + 1, "%s/%012llu/", key, (unsigned long long)gen);
    memset(out + n, 'a' + (char)(gen % 26), VAL_BYTES - (size_t)n);
    return VAL_BYTES;
}

static uint64_t gen_of(const char *key, const struct ppdb_buf *v)
{
    char want[VAL_BYTES + 1];
    CHECK_EQ(v->len, VAL_BYTES);
    size_t kn = strlen(key);
    CHECK_MEMEQ(v->data, key, kn);
    uint64_t gen = strtoull((const char *)v->data + kn + 1, NULL, 10);
    value_of(key, gen, want);
    CHECK_MEMEQ(v->data, want, VAL_BYTES);
    return gen;
}

static void put(const char *key, uint64_t gen)
{
    char v[VAL_BYTES + 1];
    size_t n = value_of(key, gen, v);
    CHECK_OK(ppdb_db_put(db, NULL, key, strlen(key), v, n));
}

/* ------------------------------------------------------------- readers */

static void read_stable(struct ppdb_rng *rng, const struct ppdb_read_options *ro,
                        struct ppdb_buf *v)
{
    char key[16];
    stable_key((int)ppdb_rng_below(rng, NSTABLE), key);
    CHECK_OK(ppdb_db_get(db, ro, key, strlen(key), v, NULL));
    CHECK_EQ(gen_of(key, v), 0);
}

static void read_churn(struct ppdb_rng *rng, const struct ppdb_read_options *ro, struct ppdb_buf *v)
{
    int i = (int)ppdb_rng_below(rng, NCHURN);
    char key[16];
    churn_key(i, key);
    uint64_t lo = atomic_load(&M.churn_acked[i]);
    CHECK_OK(ppdb_db_get(db, ro, key, strlen(key), v, NULL));
    uint64_t gen = gen_of(key, v);
    if (ro) {
        CHECK_EQ(gen, 1);
        return;
    }
    CHECK_GE(gen, lo);
    CHECK_LE(gen, atomic_load(&M.churn_started[i]));
}

static void read_doom(struct ppdb_rng *rng, const struct ppdb_read_options *ro, struct ppdb_buf *v)
{
    int i = (int)ppdb_rng_below(rng, NDOOM);
    char key[16];
    doom_key(i, key);
    bool gone_before = atomic_load(&M.doom_acked[i]);
    int rc = ppdb_db_get(db, ro, key, strlen(key), v, NULL);
    if (ro || rc == 0) {
        CHECK_OK(rc);
        CHECK_EQ(gen_of(key, v), 0);
        CHECK(ro || !gone_before);
        return;
    }
    CHECK_ERR(rc, PPDB_ENOTFOUND);
    CHECK(atomic_load(&M.doom_started[i]));
}

/* Stable keys through an iterator now and then: iterators pin the read
 * state the same way. */
static void scan_stable(struct ppdb_rng *rng)
{
    char key[16];
    int i = (int)ppdb_rng_below(rng, NSTABLE - 8);
    stable_key(i, key);
    struct ppdb_iter *it;
    struct ppdb_iter_options o = {.lower_bound = key, .lower_len = strlen(key)};
    CHECK_OK(ppdb_db_iter_new(db, &o, &it));
    ppdb_iter_seek_first(it);
    for (int j = 0; j < 8; j++, ppdb_iter_next(it)) {
        CHECK(ppdb_iter_valid(it));
        size_t kn, vn;
        const uint8_t *k = ppdb_iter_key(it, &kn);
        stable_key(i + j, key);
        CHECK_EQ(kn, strlen(key));
        CHECK_MEMEQ(k, key, kn);
        struct ppdb_buf v = {.data = (uint8_t *)ppdb_iter_value(it, &vn)};
        v.len = v.cap = vn;
        CHECK_EQ(gen_of(key, &v), 0);
    }
    CHECK_OK(ppdb_iter_status(it));
    ppdb_iter_free(it);
}

static void read_once(struct ppdb_rng *rng, struct ppdb_buf *v)
{
    unsigned what = (unsigned)ppdb_rng_below(rng, 64);
    if (what == 0) {
        scan_stable(rng);
    } else if (what < 8) { /* at the snapshot, while there is one */
        pthread_rwlock_rdlock(&M.snap_lock);
        if (M.snap) {
            struct ppdb_read_options ro = {.snapshot = M.snap};
            void (*fn[])(struct ppdb_rng *, const struct ppdb_read_options *,
                         struct ppdb_buf *) = {read_stable, read_churn, read_doom};
            fn[what % 3](rng, &ro, v);
            atomic_fetch_add(&M.snap_gets, 1);
        }
        pthread_rwlock_unlock(&M.snap_lock);
    } else if (what < 24) {
        read_stable(rng, NULL, v);
    } else if (what < 48) {
        read_churn(rng, NULL, v);
    } else {
        read_doom(rng, NULL, v);
    }
    atomic_fetch_add(&M.gets, 1);
}

struct reader {
    pthread_t tid;
    uint64_t seed;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, r->seed);
    struct ppdb_buf v;
    ppdb_buf_init(&v);
    while (!atomic_load(&M.done))
        read_once(&rng, &v);
    ppdb_buf_deinit(&v);
    return NULL;
}

/* -------------------------------------------------------------- writer */

static void write_once(struct ppdb_rng *rng, int step, int *next_doom)
{
    char key[16];
    if (step % 3 == 0 && *next_doom < NDOOM) {
        int i = (*next_doom)++;
        doom_key(i, key);
        atomic_store(&M.doom_started[i], true);
        CHECK_OK(ppdb_db_delete(db, NULL, key, strlen(key)));
        atomic_store(&M.doom_acked[i], true);
        return;
    }
    int i = (int)ppdb_rng_below(rng, NCHURN);
    churn_key(i, key);
    uint64_t gen = atomic_load(&M.churn_acked[i]) + 1;
    atomic_store(&M.churn_started[i], gen);
    put(key, gen);
    atomic_store(&M.churn_acked[i], gen);
}

static void write_all(struct ppdb_rng *rng)
{
    int next_doom = 0;
    for (int step = 0; step < WRITES; step++) {
        write_once(rng, step, &next_doom);
        if (step % 500 == 499)
            CHECK_OK(ppdb_db_flush(db));
        if (step % 2000 == 1999) { /* a manual compaction of a part of the range */
            char b[16], e[16];
            churn_key((int)ppdb_rng_below(rng, NCHURN / 2), b);
            churn_key(NCHURN / 2 + (int)ppdb_rng_below(rng, NCHURN / 2), e);
            CHECK_OK(ppdb_db_compact_range(db, b, strlen(b), e, strlen(e)));
        }
        if (step == WRITES / 2) {
            CHECK_GT(atomic_load(&M.snap_gets), 0);
            pthread_rwlock_wrlock(&M.snap_lock);
            ppdb_db_snapshot_release(db, M.snap);
            M.snap = NULL;
            pthread_rwlock_unlock(&M.snap_lock);
        }
    }
}

static void load(void)
{
    char key[16];
    for (int i = 0; i < NSTABLE; i++) {
        stable_key(i, key);
        put(key, 0);
    }
    for (int i = 0; i < NCHURN; i++) {
        churn_key(i, key);
        put(key, 1);
        atomic_store(&M.churn_started[i], 1);
        atomic_store(&M.churn_acked[i], 1);
    }
    for (int i = 0; i < NDOOM; i++) {
        doom_key(i, key);
        put(key, 0);
    }
    CHECK_OK(ppdb_db_flush(db));
    CHECK_OK(ppdb_db_snapshot_new(db, &M.snap));
}

static void check_final(void)
{
    struct ppdb_buf v;
    ppdb_buf_init(&v);
    char key[16];
    for (int i = 0; i < NSTABLE; i++) {
        stable_key(i, key);
        CHECK_OK(ppdb_db_get(db, NULL, key, strlen(key), &v, NULL));
        CHECK_EQ(gen_of(key, &v), 0);
    }
    for (int i = 0; i < NCHURN; i++) {
        churn_key(i, key);
        CHECK_OK(ppdb_db_get(db, NULL, key, strlen(key), &v, NULL));
        CHECK_EQ(gen_of(key, &v), atomic_load(&M.churn_acked[i]));
    }
    for (int i = 0; i < NDOOM; i++) {
        doom_key(i, key);
        CHECK(atomic_load(&M.doom_acked[i]));
        CHECK_ERR(ppdb_db_get(db, NULL, key, strlen(key), &v, NULL), PPDB_ENOTFOUND);
    }
    ppdb_buf_deinit(&v);
}

/* More threads than a db has slots: threads whose indexes meet modulo
 * DB_SV_SLOTS share a slot, and one finding it busy takes the locked
 * path; every get still reads right. */
#define CROWD 40
static void *crowd_main(void *arg)
{
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, (uint64_t)(uintptr_t)arg);
    struct ppdb_buf v;
    ppdb_buf_init(&v);
    for (int i = 0; i < 300; i++)
        read_stable(&rng, NULL, &v);
    ppdb_buf_deinit(&v);
    return NULL;
}

static void read_crowd(uint64_t seed)
{
    _Static_assert(CROWD > DB_SV_SLOTS, "more threads than slots");
    pthread_t tids[CROWD];
    for (uintptr_t i = 0; i < CROWD; i++)
        CHECK_EQ(pthread_create(&tids[i], NULL, crowd_main, (void *)(uintptr_t)(seed + i)), 0);
    for (int i = 0; i < CROWD; i++)
        pthread_join(tids[i], NULL);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 17);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    struct ppdb_fs *mem;
    CHECK_OK(ppdb_fs_mem_new(&mem));
    static struct guard g;
    guard_init(&g, mem);
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 16 << 10;
    o.block_bytes = 512;
    o.block_cache_bytes = 8 << 10; /* far below the data: evictions and spares */
    o.compression = PPDB_DB_COMPRESS_LZ4;
    o.max_open_files = MAX_OPEN;
    o.l0_compaction_trigger = 2;
    o.level1_bytes = 32 << 10;
    o.level_multiplier = 4;
    o.target_file_bytes = 8 << 10;
    o.sync_policy = PPDB_SYNC_NEVER;
    CHECK_OK(ppdb_db_open(&g.base, "/db", &o, &db));
    pthread_rwlock_init(&M.snap_lock, NULL);
    load();

    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    struct reader readers[READERS];
    for (int i = 0; i < READERS; i++) {
        readers[i].seed = ppdb_rng_next(&rng);
        CHECK_EQ(pthread_create(&readers[i].tid, NULL, reader_main, &readers[i]), 0);
    }
    write_all(&rng);
    atomic_store(&M.done, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(readers[i].tid, NULL);

    /* Quiet now: every read state but the current one is gone, and every
     * key reads as the model says. Then the open tables are within the
     * bound: pinned ones and the LRU's share it, no handle is in use. */
    db_wait_idle(db);
    int peak = g.open_peak; /* of the run: CROWD threads may hold a handle each */
    check_final();
    CHECK_LE(g.open_now, MAX_OPEN);
    read_crowd(seed);
    CHECK_LE(g.open_now, MAX_OPEN);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    printf("gets %ld (%ld at the snapshot), flushes %llu, compactions %llu, tables deleted %llu "
           "(fs: %ld, %ld while being closed), open tables peak %d (bound %d)\n",
           atomic_load(&M.gets), atomic_load(&M.snap_gets), (unsigned long long)st.flushes,
           (unsigned long long)st.compactions, (unsigned long long)st.tables_deleted, g.removed,
           g.removed_open, peak, MAX_OPEN);
    CHECK_GT(st.compactions, 0);
    CHECK_GT(g.removed, 0);
    CHECK_LE(peak, MAX_OPEN + OPEN_SLACK);
    CHECK_OK(ppdb_db_close(db));
    CHECK_EQ(g.open_now, 0);
    pthread_rwlock_destroy(&M.snap_lock);
    pthread_mutex_destroy(&g.mu);
    ppdb_fs_destroy(mem);
    check_no_leaks(&base);
    return 0;
}
