/*
 * test_engine_snapshot.c - reads at explicit snapshots across flushes,
 * compactions and further writes.
 *
 * Rounds of random puts, deletes and versioned writes; after each round a
 * snapshot is taken and the model's state copied. Between rounds the
 * memtable is flushed and the whole range compacted now and then, so the
 * entries a snapshot needs must survive compactions that run while it is
 * alive. At the end every live snapshot is read with get and with an
 * iterator (both ways) and compared with its copy; some snapshots are then
 * released and the rest re-checked after another full compaction. Last,
 * with every snapshot released, a full compaction must drop the overwritten
 * entries the snapshots kept (the oldest-live-snapshot hook is real).
 *
 * Seeded: PPDB_SEED=<n> or argv[1]; the seed is printed.
 */
#include <stdio.h>

#include "check.h"
#include "ppdb_engine.h"

#define NKEYS   200
#define ROUNDS  12
#define PER     150
#define MAX_VAL 64

struct entry {
    bool alive;
    uint64_t version;
    size_t vlen;
    uint8_t val[MAX_VAL];
};

static struct entry model[NKEYS];
static struct entry saved[ROUNDS][NKEYS];
static const struct ppdb_snapshot *snaps[ROUNDS];

static void key_of(int k, char *out, size_t cap)
{
    snprintf(out, cap, "key%04d", k);
}

static void random_write(struct ppdb_rng *rng, struct ppdb_db *db)
{
    int k = (int)ppdb_rng_below(rng, NKEYS);
    char key[16];
    key_of(k, key, sizeof(key));
    uint64_t version = ppdb_rng_below(rng, 2) ? 0 : ppdb_rng_below(rng, 20);
    struct entry *e = &model[k];
    bool wins = version >= e->version; /* never written: version 0 */
    if (ppdb_rng_below(rng, 5) == 0) {
        CHECK_OK(ppdb_db_delete_versioned(db, NULL, key, strlen(key), version));
        if (wins) {
            e->alive = false;
            e->version = version;
        }
        return;
    }
    uint8_t val[MAX_VAL];
    size_t vlen = 1 + ppdb_rng_below(rng, MAX_VAL - 1);
    ppdb_rng_bytes(rng, val, vlen);
    CHECK_OK(ppdb_db_put_versioned(db, NULL, key, strlen(key), val, vlen, version));
    if (wins) {
        e->alive = true;
        e->version = version;
        e->vlen = vlen;
        memcpy(e->val, val, vlen);
    }
}

static void check_gets(struct ppdb_db *db, const struct ppdb_snapshot *s, const struct entry *m)
{
    struct ppdb_read_options ro = {.snapshot = s};
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    for (int k = 0; k < NKEYS; k++) {
        char key[16];
        key_of(k, key, sizeof(key));
        uint64_t version;
        int rc = ppdb_db_get(db, &ro, key, strlen(key), &out, &version);
        if (!m[k].alive) {
            CHECK_ERR(rc, PPDB_ENOTFOUND);
            continue;
        }
        CHECK_OK(rc);
        CHECK_EQ_U64(version, m[k].version);
        CHECK_EQ(out.len, m[k].vlen);
        CHECK_MEMEQ(out.data, m[k].val, out.len);
    }
    ppdb_buf_deinit(&out);
}

static void check_entry(struct ppdb_iter *it, int k, const struct entry *m)
{
    char key[16];
    key_of(k, key, sizeof(key));
    CHECK(ppdb_iter_valid(it));
    size_t kl, vl;
    const void *kp = ppdb_iter_key(it, &kl);
    const void *vp = ppdb_iter_value(it, &vl);
    CHECK_EQ(kl, strlen(key));
    CHECK_MEMEQ(kp, key, kl);
    CHECK_EQ(vl, m[k].vlen);
    CHECK_MEMEQ(vp, m[k].val, vl);
    CHECK_EQ_U64(ppdb_iter_version(it), m[k].version);
}

static void check_iter(struct ppdb_db *db, const struct ppdb_snapshot *s, const struct entry *m)
{
    struct ppdb_iter_options io = {.snapshot = s};
    struct ppdb_iter *it;
    CHECK_OK(ppdb_db_iter_new(db, &io, &it));
    int k = 0;
    for (ppdb_iter_seek_first(it); ppdb_iter_valid(it); ppdb_iter_next(it)) {
        while (k < NKEYS && !m[k].alive)
            k++;
        CHECK_LT(k, NKEYS);
        check_entry(it, k++, m);
    }
    while (k < NKEYS && !m[k].alive)
        k++;
    CHECK_EQ(k, NKEYS);
    k = NKEYS - 1;
    for (ppdb_iter_seek_last(it); ppdb_iter_valid(it); ppdb_iter_prev(it)) {
        while (k >= 0 && !m[k].alive)
            k--;
        CHECK_GE(k, 0);
        check_entry(it, k--, m);
    }
    CHECK_OK(ppdb_iter_status(it));
    ppdb_iter_free(it);
}

static void check_all(struct ppdb_db *db, const bool *live)
{
    for (int r = 0; r < ROUNDS; r++)
        if (live[r]) {
            check_gets(db, snaps[r], saved[r]);
            check_iter(db, snaps[r], saved[r]);
        }
    check_gets(db, NULL, model);
    check_iter(db, NULL, model);
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint64_t seed = check_seed(argc, argv, 20261202);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 4 * 1024;
    o.block_bytes = 256;
    o.l0_compaction_trigger = 2;
    o.level1_bytes = 16 * 1024;
    o.target_file_bytes = 4 * 1024;
    o.tombstone_grace_ms = UINT64_MAX; /* a late lower version never wins (model) */
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/snap", &o, &db));
    bool live[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER; i++)
            random_write(&rng, db);
        CHECK_OK(ppdb_db_snapshot_new(db, &snaps[r]));
        memcpy(saved[r], model, sizeof(model));
        live[r] = true;
        if (ppdb_rng_below(&rng, 2))
            CHECK_OK(ppdb_db_flush(db));
        if (ppdb_rng_below(&rng, 3) == 0)
            CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
        if (r > 0)
            check_gets(db, snaps[r - 1], saved[r - 1]);
    }
    CHECK_LE(ppdb_snapshot_sequence(snaps[0]), ppdb_snapshot_sequence(snaps[ROUNDS - 1]));
    check_all(db, live);
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    check_all(db, live);
    /* Release every other snapshot, the oldest among them, and compact. */
    for (int r = 0; r < ROUNDS; r += 2) {
        ppdb_db_snapshot_release(db, snaps[r]);
        live[r] = false;
    }
    for (int i = 0; i < PER; i++)
        random_write(&rng, db);
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    check_all(db, live);
    /* All released: a full compaction keeps one entry per live key. */
    struct ppdb_db_stats before, after;
    ppdb_db_get_stats(db, &before);
    for (int r = 0; r < ROUNDS; r++)
        if (live[r])
            ppdb_db_snapshot_release(db, snaps[r]);
    memset(live, 0, sizeof(live));
    /* No write in between: the entries the snapshots kept sit in the bottom
     * level, which the full compaction rewrites in place. */
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    ppdb_db_get_stats(db, &after);
    printf("dropped with snapshots %llu, after release %llu\n",
           (unsigned long long)before.compact_dropped,
           (unsigned long long)(after.compact_dropped - before.compact_dropped));
    CHECK_GT(after.compact_dropped, before.compact_dropped);
    check_all(db, live);
    /* Nothing droppable is left: another full compaction drops nothing. */
    struct ppdb_db_stats again;
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    ppdb_db_get_stats(db, &again);
    CHECK_EQ_U64(again.compact_dropped, after.compact_dropped);
    check_all(db, live);
    /* Reads after reopen agree, and a snapshot still works afterwards. */
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, "/snap", &o, &db));
    check_all(db, live);
    const struct ppdb_snapshot *s;
    CHECK_OK(ppdb_db_snapshot_new(db, &s));
    memcpy(saved[0], model, sizeof(model));
    for (int i = 0; i < PER; i++)
        random_write(&rng, db);
    check_gets(db, s, saved[0]);
    check_iter(db, s, saved[0]);
    ppdb_db_snapshot_release(db, s);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
