/*
 * test_engine_model.c - randomized model test of the engine.
 *
 * Mixes puts, deletes, versioned puts and deletes (versions drawn low and
 * high, so many must lose), batches, flushes and reopens on the in-memory
 * fs, and after every step compares reads with a model: an array with, per
 * key, the winning entry (highest version; on a tie the later write). A tiny
 * memtable makes background flushes and stalls frequent, so reads cross the
 * memtable, the immutable memtable and many tables.
 *
 * Seeded: PPDB_SEED=<n> or argv[1]; the seed is printed.
 */
#include <stdio.h>

#include "check.h"
#include "ppdb_engine.h"

#define NKEYS   300
#define STEPS   20000
#define MAX_VAL 600

struct model_entry {
    bool present; /* any write so far */
    bool deleted; /* the winner is a tombstone */
    uint64_t version;
    size_t vlen;
    uint8_t val[MAX_VAL];
};

static struct model_entry model[NKEYS];

static void key_of(int i, char *out, size_t cap)
{
    snprintf(out, cap, "key-%d", i * 7919 % 1000);
}

static void model_apply(int k, bool del, uint64_t version, const uint8_t *v, size_t vlen)
{
    struct model_entry *e = &model[k];
    if (e->present && version < e->version)
        return; /* a lower version loses */
    e->present = true;
    e->deleted = del;
    e->version = version;
    e->vlen = vlen;
    memcpy(e->val, v, vlen);
}

static void check_key(struct ppdb_db *db, int k)
{
    char key[32];
    key_of(k, key, sizeof(key));
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    uint64_t version = 0;
    int rc = ppdb_db_get(db, NULL, key, strlen(key), &out, &version);
    const struct model_entry *e = &model[k];
    if (!e->present || e->deleted) {
        if (rc != PPDB_ENOTFOUND)
            fprintf(stderr, "key %s: expected not found (present=%d version=%llu)\n", key,
                    e->present, (unsigned long long)e->version);
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

static uint64_t pick_version(struct ppdb_rng *rng)
{
    switch (ppdb_rng_below(rng, 4)) {
    case 0:
        return 0; /* unversioned */
    case 1:
        return ppdb_rng_below(rng, 8); /* dense: many ties */
    default:
        return ppdb_rng_below(rng, 1000);
    }
}

/* One random write (put or delete) into a batch, mirrored in the model. */
static void random_write(struct ppdb_rng *rng, struct ppdb_batch *b)
{
    uint8_t val[MAX_VAL];
    int k = (int)ppdb_rng_below(rng, NKEYS);
    char key[32];
    key_of(k, key, sizeof(key));
    bool del = ppdb_rng_below(rng, 5) == 0;
    uint64_t version = pick_version(rng);
    size_t vlen =
        ppdb_rng_below(rng, 8) == 0 ? ppdb_rng_below(rng, MAX_VAL) : ppdb_rng_below(rng, 40);
    ppdb_rng_bytes(rng, val, vlen);
    if (del)
        CHECK_OK(ppdb_batch_delete_versioned(b, key, strlen(key), version));
    else
        CHECK_OK(ppdb_batch_put_versioned(b, key, strlen(key), val, vlen, version));
    model_apply(k, del, version, val, del ? 0 : vlen);
}

static void single_write(struct ppdb_rng *rng, struct ppdb_db *db, struct ppdb_batch *b)
{
    /* Goes through the single-entry API so that path is covered too. */
    ppdb_batch_clear(b);
    uint8_t val[MAX_VAL];
    int k = (int)ppdb_rng_below(rng, NKEYS);
    char key[32];
    key_of(k, key, sizeof(key));
    size_t vlen = ppdb_rng_below(rng, 60);
    ppdb_rng_bytes(rng, val, vlen);
    struct ppdb_write_options w = {.sync = ppdb_rng_below(rng, 10) == 0};
    switch (ppdb_rng_below(rng, 4)) {
    case 0:
        CHECK_OK(ppdb_db_put(db, &w, key, strlen(key), val, vlen));
        model_apply(k, false, 0, val, vlen);
        break;
    case 1:
        CHECK_OK(ppdb_db_delete(db, &w, key, strlen(key)));
        model_apply(k, true, 0, val, 0);
        break;
    case 2: {
        uint64_t v = pick_version(rng);
        CHECK_OK(ppdb_db_put_versioned(db, &w, key, strlen(key), val, vlen, v));
        model_apply(k, false, v, val, vlen);
        break;
    }
    default: {
        uint64_t v = pick_version(rng);
        CHECK_OK(ppdb_db_delete_versioned(db, &w, key, strlen(key), v));
        model_apply(k, true, v, val, 0);
    }
    }
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint64_t seed = check_seed(argc, argv, 20261121);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 16 * 1024;
    o.block_bytes = 512;
    o.block_cache_bytes = ppdb_rng_below(&rng, 2) ? 64 * 1024 : 0;
    o.compression = (int)ppdb_rng_below(&rng, 3);
    o.bloom_bits_per_key = ppdb_rng_below(&rng, 2) ? 10 : 0;
    /* The model keeps every tombstone: a late lower version never wins. */
    o.tombstone_grace_ms = UINT64_MAX;
    o.l0_compaction_trigger = 2 + (uint32_t)ppdb_rng_below(&rng, 3);
    o.level1_bytes = 64 * 1024;
    o.target_file_bytes = 16 * 1024;
    struct ppdb_db *db;
    struct ppdb_batch *b;
    CHECK_OK(ppdb_batch_new(&b));
    CHECK_OK(ppdb_db_open(fs, "/model", &o, &db));
    int reopens = 0, flushes = 0;
    for (int step = 0; step < STEPS; step++) {
        uint64_t r = ppdb_rng_below(&rng, 1000);
        if (r < 3) {
            CHECK_OK(ppdb_db_close(db));
            CHECK_OK(ppdb_db_open(fs, "/model", &o, &db));
            reopens++;
        } else if (r < 8) {
            CHECK_OK(ppdb_db_flush(db));
            flushes++;
        } else if (r < 200) {
            ppdb_batch_clear(b);
            int n = 1 + (int)ppdb_rng_below(&rng, 10);
            for (int i = 0; i < n; i++)
                random_write(&rng, b);
            CHECK_OK(ppdb_db_write(db, NULL, b));
        } else if (r < 700) {
            single_write(&rng, db, b);
        }
        check_key(db, (int)ppdb_rng_below(&rng, NKEYS));
        if (step % 2000 == 0)
            for (int k = 0; k < NKEYS; k++)
                check_key(db, k);
    }
    for (int k = 0; k < NKEYS; k++)
        check_key(db, k);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    printf(
        "steps=%d reopens=%d explicit_flushes=%d flushes=%llu stalls=%llu l0=%u compactions=%llu "
        "levels=%u/%u/%u/%u\n",
        STEPS, reopens, flushes, (unsigned long long)st.flushes, (unsigned long long)st.stalls,
        st.l0_files, (unsigned long long)st.compactions, st.level_files[0], st.level_files[1],
        st.level_files[2], st.level_files[3]);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, "/model", &o, &db));
    for (int k = 0; k < NKEYS; k++)
        check_key(db, k);
    CHECK_OK(ppdb_db_close(db));
    ppdb_batch_free(b);
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
