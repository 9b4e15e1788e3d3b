/*
 * test_engine_iter.c - randomized model test of the engine's iterators.
 *
 * Random writes (puts, deletes, versioned ones with many ties and losers,
 * TTL puts), flushes, compactions and reopens on the in-memory fs, with a
 * tiny memtable so that entries of one key spread over the memtables and
 * many tables. The model keeps, per key, the winning entry (highest
 * version, on a tie the later write) and its expiry. The fs clock is moved
 * in whole hours (ppdb_fs_mem_set_wall_offset_ms) and expiries sit half an
 * hour off those steps, so the real clock's drift during the test never
 * decides an expiry.
 *
 * Every so often an iterator is created with random bounds (and sometimes
 * at a snapshot); the expected view (live keys in bounds, sorted) is copied
 * at that moment, then random seeks, seek_for_prev, next and prev are
 * checked against it while more writes and flushes go on in between (the
 * view must not change). Gets are checked against the model too.
 *
 * Seeded: PPDB_SEED=<n> or argv[1]; the seed is printed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ppdb_engine.h"

#define NKEYS   300
#define STEPS   12000
#define MAX_VAL 300
#define HOUR_MS (3600ll * 1000)

struct entry {
    bool present, deleted;
    uint64_t version;
    int64_t expire_hour; /* 0: no expiry; else alive while hour < expire_hour */
    size_t vlen;
    uint8_t val[MAX_VAL];
};

static struct entry model[NKEYS];
static char keys[NKEYS][16];
static int order[NKEYS]; /* key indexes sorted by key bytes */
static int64_t hour;     /* the fs clock is base + hour * HOUR_MS */
static int64_t base_ms;

/* The expected view of one iterator. */
static struct entry view[NKEYS];
static int view_key[NKEYS];
static int nview;

static int key_cmp_str(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static int order_cmp(const void *a, const void *b)
{
    return key_cmp_str(keys[*(const int *)a], keys[*(const int *)b]);
}

static bool alive(const struct entry *e)
{
    return e->present && !e->deleted && (e->expire_hour == 0 || hour < e->expire_hour);
}

static void model_apply(int k, bool del, uint64_t version, int64_t expire_hour, const uint8_t *v,
                        size_t vlen)
{
    struct entry *e = &model[k];
    if (e->present && version < e->version)
        return;
    e->present = true;
    e->deleted = del;
    e->version = version;
    e->expire_hour = expire_hour;
    e->vlen = vlen;
    memcpy(e->val, v, vlen);
}

static uint64_t pick_version(struct ppdb_rng *rng)
{
    uint64_t r = ppdb_rng_below(rng, 4);
    return r == 0 ? 0 : r == 1 ? ppdb_rng_below(rng, 6) : ppdb_rng_below(rng, 500);
}

static void random_write(struct ppdb_rng *rng, struct ppdb_db *db, struct ppdb_batch *b)
{
    uint8_t val[MAX_VAL];
    int k = (int)ppdb_rng_below(rng, NKEYS);
    size_t vlen =
        ppdb_rng_below(rng, 8) == 0 ? ppdb_rng_below(rng, MAX_VAL) : 1 + ppdb_rng_below(rng, 30);
    ppdb_rng_bytes(rng, val, vlen);
    uint64_t version = pick_version(rng);
    const char *key = keys[k];
    size_t klen = strlen(key);
    uint64_t r = ppdb_rng_below(rng, 10);
    if (r < 2) {
        CHECK_OK(ppdb_batch_delete_versioned(b, key, klen, version));
        model_apply(k, true, version, 0, val, 0);
    } else if (r < 4) { /* expires 1..3 hours from now, at a half hour */
        int64_t eh = hour + 1 + (int64_t)ppdb_rng_below(rng, 3);
        uint64_t at = (uint64_t)(base_ms + eh * HOUR_MS - HOUR_MS / 2);
        if (ppdb_batch_count(b) > 0 || ppdb_rng_below(rng, 2))
            CHECK_OK(ppdb_batch_put_expiring(b, key, klen, val, vlen, version, at));
        else
            CHECK_OK(ppdb_db_put_expiring(db, NULL, key, klen, val, vlen, version, at));
        model_apply(k, false, version, eh, val, vlen);
    } else {
        CHECK_OK(ppdb_batch_put_versioned(b, key, klen, val, vlen, version));
        model_apply(k, false, version, 0, val, vlen);
    }
}

static void check_get(struct ppdb_db *db, int k)
{
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    uint64_t version = 0;
    int rc = ppdb_db_get(db, NULL, keys[k], strlen(keys[k]), &out, &version);
    const struct entry *e = &model[k];
    if (!alive(e) && rc != PPDB_ENOTFOUND)
        fprintf(stderr, "get %s: found version %llu; model: present=%d deleted=%d version=%llu "
                "expire_hour=%lld hour=%lld\n", keys[k], (unsigned long long)version, e->present,
                e->deleted, (unsigned long long)e->version, (long long)e->expire_hour,
                (long long)hour);
    if (!alive(e)) {
        CHECK_ERR(rc, PPDB_ENOTFOUND);
    } else {
        CHECK_OK(rc);
        CHECK_EQ_U64(version, e->version);
        CHECK_EQ(out.len, e->vlen);
        if (e->vlen)
            CHECK_MEMEQ(out.data, e->val, e->vlen);
    }
    ppdb_buf_deinit(&out);
}

/* A random probe key: an existing key, or one just below/above it. */
static void probe_key(struct ppdb_rng *rng, char *out, size_t cap)
{
    const char *k = keys[ppdb_rng_below(rng, NKEYS)];
    switch (ppdb_rng_below(rng, 4)) {
    case 0:
        snprintf(out, cap, "%s5", k);
        break;
    case 1:
        snprintf(out, cap, "%.*s", (int)strlen(k) - 1, k);
        break;
    default:
        snprintf(out, cap, "%s", k);
    }
}

/* Index in view of the first key >= t (nview if none). */
static int view_lower(const char *t)
{
    int i = 0;
    while (i < nview && key_cmp_str(keys[view_key[i]], t) < 0)
        i++;
    return i;
}

static void expect_at(struct ppdb_iter *it, int pos)
{
    CHECK_OK(ppdb_iter_status(it));
    if (pos < 0 || pos >= nview) {
        CHECK(!ppdb_iter_valid(it));
        return;
    }
    CHECK(ppdb_iter_valid(it));
    size_t kl, vl;
    const void *key = ppdb_iter_key(it, &kl);
    const void *val = ppdb_iter_value(it, &vl);
    const char *want = keys[view_key[pos]];
    CHECK_EQ(kl, strlen(want));
    CHECK_MEMEQ(key, want, kl);
    CHECK_EQ_U64(ppdb_iter_version(it), view[pos].version);
    CHECK_EQ(vl, view[pos].vlen);
    if (vl)
        CHECK_MEMEQ(val, view[pos].val, vl);
}

static void build_view(const char *lo, const char *hi)
{
    nview = 0;
    for (int i = 0; i < NKEYS; i++) {
        int k = order[i];
        if (lo && key_cmp_str(keys[k], lo) < 0)
            continue;
        if (hi && key_cmp_str(keys[k], hi) >= 0)
            continue;
        if (!alive(&model[k]))
            continue;
        view[nview] = model[k];
        view_key[nview++] = k;
    }
}

/* One iterator session: random moves checked against the view, with
 * writes in between that it must not see. */
static void iter_session(struct ppdb_rng *rng, struct ppdb_db *db, struct ppdb_batch *b)
{
    char lo[24], hi[24];
    bool has_lo = ppdb_rng_below(rng, 3) == 0, has_hi = ppdb_rng_below(rng, 3) == 0;
    if (has_lo)
        probe_key(rng, lo, sizeof(lo));
    if (has_hi)
        probe_key(rng, hi, sizeof(hi));
    struct ppdb_iter_options io = {0};
    if (has_lo) {
        io.lower_bound = lo;
        io.lower_len = strlen(lo);
    }
    if (has_hi) {
        io.upper_bound = hi;
        io.upper_len = strlen(hi);
    }
    build_view(has_lo ? lo : NULL, has_hi ? hi : NULL);
    struct ppdb_iter *it;
    CHECK_OK(ppdb_db_iter_new(db, &io, &it));
    int pos = -1;
    for (int op = 0; op < 60; op++) {
        char t[24];
        uint64_t r = ppdb_rng_below(rng, 100);
        if (r < 5) {
            ppdb_iter_seek_first(it);
            pos = 0;
        } else if (r < 10) {
            ppdb_iter_seek_last(it);
            pos = nview - 1;
        } else if (r < 20) {
            probe_key(rng, t, sizeof(t));
            ppdb_iter_seek(it, t, strlen(t));
            pos = view_lower(t);
        } else if (r < 30) {
            probe_key(rng, t, sizeof(t));
            ppdb_iter_seek_for_prev(it, t, strlen(t));
            pos = view_lower(t);
            if (pos >= nview || key_cmp_str(keys[view_key[pos]], t) != 0)
                pos--;
        } else if (r < 35) {
            ppdb_batch_clear(b);
            random_write(rng, db, b);
            CHECK_OK(ppdb_db_write(db, NULL, b));
        } else if (r < 36) {
            CHECK_OK(ppdb_db_flush(db));
        } else if (pos >= 0 && pos < nview) {
            if (r < 70) {
                ppdb_iter_next(it);
                pos++;
            } else {
                ppdb_iter_prev(it);
                pos--;
            }
        }
        if (pos >= nview)
            pos = nview;
        if (pos < -1)
            pos = -1;
        expect_at(it, pos);
    }
    ppdb_iter_free(it);
}

static void full_scan(struct ppdb_db *db)
{
    build_view(NULL, NULL);
    struct ppdb_iter *it;
    CHECK_OK(ppdb_db_iter_new(db, NULL, &it));
    int pos = 0;
    for (ppdb_iter_seek_first(it); ppdb_iter_valid(it); ppdb_iter_next(it))
        expect_at(it, pos++);
    CHECK_EQ(pos, nview);
    pos = nview - 1;
    for (ppdb_iter_seek_last(it); ppdb_iter_valid(it); ppdb_iter_prev(it))
        expect_at(it, pos--);
    CHECK_EQ(pos, -1);
    CHECK_OK(ppdb_iter_status(it));
    ppdb_iter_free(it);
}

static void set_hour(struct ppdb_fs *fs, int64_t h)
{
    hour = h;
    ppdb_fs_mem_set_wall_offset_ms(fs, h * HOUR_MS);
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint64_t seed = check_seed(argc, argv, 20261201);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        order[i] = i;
    }
    qsort(order, NKEYS, sizeof(order[0]), order_cmp);
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    base_ms = fs->ops->wall_ms(fs);
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 8 * 1024;
    o.block_bytes = 256;
    o.block_cache_bytes = ppdb_rng_below(&rng, 2) ? 64 * 1024 : 0;
    o.compression = (int)ppdb_rng_below(&rng, 3);
    o.tombstone_grace_ms = UINT64_MAX;
    o.l0_compaction_trigger = 2 + (uint32_t)ppdb_rng_below(&rng, 3);
    o.level1_bytes = 32 * 1024;
    o.target_file_bytes = 8 * 1024;
    struct ppdb_db *db;
    struct ppdb_batch *b;
    CHECK_OK(ppdb_batch_new(&b));
    CHECK_OK(ppdb_db_open(fs, "/iter", &o, &db));
    int sessions = 0;
    for (int step = 0; step < STEPS; step++) {
        uint64_t r = ppdb_rng_below(&rng, 1000);
        if (r < 2) {
            CHECK_OK(ppdb_db_close(db));
            CHECK_OK(ppdb_db_open(fs, "/iter", &o, &db));
        } else if (r < 6) {
            CHECK_OK(ppdb_db_flush(db));
        } else if (r < 8) {
            CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
        } else if (r < 12) {
            set_hour(fs, hour + 1);
        } else if (r < 30) {
            iter_session(&rng, db, b);
            sessions++;
        } else {
            ppdb_batch_clear(b);
            int n = 1 + (int)ppdb_rng_below(&rng, 4);
            for (int i = 0; i < n; i++)
                random_write(&rng, db, b);
            if (ppdb_batch_count(b))
                CHECK_OK(ppdb_db_write(db, NULL, b));
        }
        check_get(db, (int)ppdb_rng_below(&rng, NKEYS));
        if (step % 3000 == 0)
            full_scan(db);
    }
    full_scan(db);
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    full_scan(db);
    for (int k = 0; k < NKEYS; k++)
        check_get(db, k);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    printf("steps=%d sessions=%d hours=%lld flushes=%llu compactions=%llu dropped=%llu\n", STEPS,
           sessions, (long long)hour, (unsigned long long)st.flushes,
           (unsigned long long)st.compactions, (unsigned long long)st.compact_dropped);
    CHECK_OK(ppdb_db_close(db));
    ppdb_batch_free(b);
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
