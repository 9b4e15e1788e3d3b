/*
 * test_engine_compact.c - leveled compaction, the manifest of version edits,
 * write stalls, a full disk, checkpoints, approximate sizes and the table
 * cache, on the in-memory fs.
 *
 *   - long model run: an overwrite- and delete-heavy workload against a model;
 *     the bytes on disk stay within a bound of the live bytes during the run
 *     and within 3x after a final full compact_range (figures printed);
 *   - tombstones: unversioned ones vanish at the bottom, versioned ones only
 *     after tombstone_grace_ms (HLC time in the version);
 *   - stalls: level 0 never passes l0_stop_trigger, slowdowns are counted;
 *   - full disk: writes fail read-only with PPDB_ENOSPC, reads work, freeing
 *     space lets writes resume, nothing acknowledged is lost;
 *   - checkpoint under concurrent writers: the copy opens and equals a
 *     prefix of every writer's sequence;
 *   - power cut while a compaction runs: all I/O fails from the cut on (a
 *     dead process writes nothing), unsynced data is dropped, the reopened
 *     database holds every synced write and names only files that exist.
 *
 * Seeded: PPDB_SEED=<n> or argv[1].
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "db_int.h"

#define NKEYS 4000
#define VLEN  100

static struct {
    bool live[NKEYS];
    uint32_t gen[NKEYS];
} M;

static void key_of(int k, char *out, size_t cap)
{
    snprintf(out, cap, "key%06d", k);
}

static void val_of(int k, uint32_t gen, uint8_t *v)
{
    for (int i = 0; i < VLEN; i++)
        v[i] = (uint8_t)(k * 31 + gen * 7 + i);
}

static struct ppdb_db_options small_opts(void)
{
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 64 * 1024;
    o.block_bytes = 1024;
    o.block_cache_bytes = 256 * 1024;
    o.level1_bytes = 256 * 1024;
    o.target_file_bytes = 64 * 1024;
    o.max_open_files = 8;
    o.compression = PPDB_DB_COMPRESS_NONE;
    return o;
}

static void check_model(struct ppdb_db *db)
{
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    uint8_t v[VLEN];
    for (int k = 0; k < NKEYS; k++) {
        char key[16];
        key_of(k, key, sizeof(key));
        int rc = ppdb_db_get(db, NULL, key, strlen(key), &out, NULL);
        if (!M.live[k]) {
            CHECK_ERR(rc, PPDB_ENOTFOUND);
            continue;
        }
        CHECK_OK(rc);
        val_of(k, M.gen[k], v);
        CHECK_EQ(out.len, VLEN);
        CHECK_MEMEQ(out.data, v, VLEN);
    }
    ppdb_buf_deinit(&out);
}

static uint64_t live_bytes(void)
{
    uint64_t n = 0;
    for (int k = 0; k < NKEYS; k++)
        n += M.live[k] ? VLEN + 9 : 0;
    return n;
}

/* ------------------------------------------------------------- model run */

static void test_long_model(struct ppdb_rng *rng)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    memset(&M, 0, sizeof(M));
    struct ppdb_db_options o = small_opts();
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/m", &o, &db));
    uint8_t v[VLEN];
    const int steps = 300000;
    double worst = 0;
    for (int i = 0; i < steps; i++) {
        int k = (int)ppdb_rng_below(rng, NKEYS);
        char key[16];
        key_of(k, key, sizeof(key));
        if (ppdb_rng_below(rng, 3) == 0) {
            CHECK_OK(ppdb_db_delete(db, NULL, key, strlen(key)));
            M.live[k] = false;
        } else {
            M.gen[k]++;
            val_of(k, M.gen[k], v);
            CHECK_OK(ppdb_db_put(db, NULL, key, strlen(key), v, VLEN));
            M.live[k] = true;
        }
        if (i % 20000 == 19999) {
            struct ppdb_db_stats st;
            ppdb_db_get_stats(db, &st);
            double r = (double)ppdb_fs_mem_used_bytes(fs) / (double)live_bytes();
            worst = r > worst ? r : worst;
            /* Level 0, level 1 and the memtables' logs hold at most a few
             * times the live data in this configuration. */
            CHECK(r < 12.0);
        }
        if (i % 100000 == 50000) {
            CHECK_OK(ppdb_db_close(db));
            CHECK_OK(ppdb_db_open(fs, "/m", &o, &db));
        }
    }
    check_model(db);
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    check_model(db);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    uint64_t disk = ppdb_fs_mem_used_bytes(fs);
    double ratio = (double)disk / (double)live_bytes();
    printf("model: %d ops, live %llu B, disk %llu B (tables %llu B), disk/live %.2f (worst during "
           "run %.2f); compactions %llu (%llu moves), wamp %.2f, dropped %llu, deleted tables "
           "%llu, table cache %llu/%llu hits/misses\n",
           steps, (unsigned long long)live_bytes(), (unsigned long long)disk,
           (unsigned long long)st.table_bytes, ratio, worst, (unsigned long long)st.compactions,
           (unsigned long long)st.trivial_moves, st.write_amplification,
           (unsigned long long)st.compact_dropped, (unsigned long long)st.tables_deleted,
           (unsigned long long)st.table_cache_hits, (unsigned long long)st.table_cache_misses);
    CHECK(ratio < 3.0);
    CHECK_GT(st.compactions, 0);
    CHECK_GT(st.table_cache_misses, 0);
    uint64_t approx = 0;
    CHECK_OK(ppdb_db_approximate_size(db, NULL, 0, NULL, 0, &approx));
    CHECK_EQ_U64(approx, st.table_bytes);
    CHECK_OK(ppdb_db_approximate_size(db, "key001000", 9, "key002000", 9, &approx));
    CHECK_GT(approx, 0);
    CHECK_LT(approx, st.table_bytes);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, "/m", &o, &db));
    check_model(db);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
}

/* ------------------------------------------------------------- tombstones */

static void test_tombstones(void)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    struct ppdb_db_options o = small_opts();
    o.tombstone_grace_ms = 3600 * 1000;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/t", &o, &db));
    uint64_t now = (uint64_t)fs->ops->wall_ms(fs);
    uint64_t fresh = now << 16, old = (now - 7200 * 1000) << 16;
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "fresh", 5, "x", 1, fresh - 1));
    CHECK_OK(ppdb_db_delete_versioned(db, NULL, "fresh", 5, fresh));
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "old", 3, "x", 1, old - 1));
    CHECK_OK(ppdb_db_delete_versioned(db, NULL, "old", 3, old));
    CHECK_OK(ppdb_db_put(db, NULL, "plain", 5, "x", 1));
    CHECK_OK(ppdb_db_delete(db, NULL, "plain", 5));
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    /* 6 entries: both puts shadowed, 2 tombstones dropped, "fresh" kept. */
    CHECK_EQ_U64(st.compact_dropped, 5);
    /* A late lower version of "fresh" still loses to its tombstone. */
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "fresh", 5, "late", 4, fresh - 2));
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    CHECK_ERR(ppdb_db_get(db, NULL, "fresh", 5, &out, NULL), PPDB_ENOTFOUND);
    CHECK_ERR(ppdb_db_get(db, NULL, "plain", 5, &out, NULL), PPDB_ENOTFOUND);
    ppdb_buf_deinit(&out);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
}

/* ----------------------------------------------------------------- stalls */

static void test_stalls(void)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    struct ppdb_db_options o = small_opts();
    o.memtable_bytes = 8 * 1024;
    o.l0_compaction_trigger = 2;
    o.l0_slowdown_trigger = 2;
    o.l0_stop_trigger = 3;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/s", &o, &db));
    uint8_t v[VLEN] = {0};
    uint32_t max_l0 = 0;
    for (int i = 0; i < 20000; i++) {
        char key[16];
        key_of(i % NKEYS, key, sizeof(key));
        CHECK_OK(ppdb_db_put(db, NULL, key, strlen(key), v, VLEN));
        struct ppdb_db_stats st;
        ppdb_db_get_stats(db, &st);
        max_l0 = st.l0_files > max_l0 ? st.l0_files : max_l0;
    }
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    printf("stalls: max L0 %u, slowdowns %llu (%llu us), stops %llu (%llu us), stalls %llu\n",
           max_l0, (unsigned long long)st.l0_slowdowns, (unsigned long long)st.l0_slowdown_us,
           (unsigned long long)st.l0_stops, (unsigned long long)st.l0_stop_us,
           (unsigned long long)st.stalls);
    CHECK_LE(max_l0, o.l0_stop_trigger);
    CHECK_GT(st.l0_slowdowns, 0);
    CHECK_GE(st.l0_slowdown_us, st.l0_slowdowns * 900);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
}

/* -------------------------------------------------------------- full disk */

static void test_full_disk(struct ppdb_rng *rng)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    memset(&M, 0, sizeof(M));
    struct ppdb_db_options o = small_opts();
    o.memtable_bytes = 16 * 1024;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/f", &o, &db));
    uint8_t v[VLEN];
    struct ppdb_fs_mem_faults f = {.capacity_bytes = ppdb_fs_mem_used_bytes(fs) + 400 * 1024};
    ppdb_fs_mem_set_faults(fs, &f);
    int failed = 0, resumed = 0, acked = 0;
    for (int i = 0; i < 40000 && resumed < 3; i++) {
        int k = (int)ppdb_rng_below(rng, NKEYS);
        char key[16];
        key_of(k, key, sizeof(key));
        val_of(k, M.gen[k] + 1, v);
        int rc = ppdb_db_put(db, NULL, key, strlen(key), v, VLEN);
        if (rc == 0) {
            M.gen[k]++;
            M.live[k] = true;
            acked++;
            continue;
        }
        CHECK_ERR(rc, PPDB_ENOSPC);
        struct ppdb_db_stats st;
        ppdb_db_get_stats(db, &st);
        CHECK(st.read_only);
        check_model(db); /* reads keep working, nothing acknowledged is lost */
        failed++;
        /* Free space: more capacity, as if files elsewhere were deleted. */
        f.capacity_bytes += 300 * 1024;
        ppdb_fs_mem_set_faults(fs, &f);
        usleep(DB_NOSPACE_RETRY_US + 5000);
        int rc2 = ppdb_db_put(db, NULL, key, strlen(key), v, VLEN);
        if (rc2 == 0) {
            M.gen[k]++;
            M.live[k] = true;
            resumed++;
        }
    }
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    printf("full disk: %d acked, %d ENOSPC, %d resumes (stats: %llu errors, %llu resumes)\n", acked,
           failed, resumed, (unsigned long long)st.nospace_errors,
           (unsigned long long)st.nospace_resumes);
    CHECK_GE(failed, 1);
    CHECK_GE(resumed, 1);
    check_model(db);
    f.capacity_bytes = 0;
    ppdb_fs_mem_set_faults(fs, &f);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, "/f", &o, &db));
    check_model(db);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
}

/* ------------------------------------------------------------- checkpoint */

#define CP_WRITERS 3
#define CP_WRITES  6000

struct cp_writer {
    struct ppdb_db *db;
    int id;
    int done; /* writes acknowledged */
};

static void *cp_write_main(void *arg)
{
    struct cp_writer *w = arg;
    for (int i = 0; i < CP_WRITES; i++) {
        char key[32], val[32];
        snprintf(key, sizeof(key), "w%d-%05d", w->id, i);
        snprintf(val, sizeof(val), "v%d", i);
        CHECK_OK(ppdb_db_put(w->db, NULL, key, strlen(key), val, strlen(val)));
        __atomic_store_n(&w->done, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* Each writer's keys in the copy must be a prefix 0..n-1 of its writes,
 * n at least what was acknowledged before the checkpoint started. */
static void check_checkpoint(struct ppdb_fs *fs, const char *dir, const int *min_done)
{
    struct ppdb_db_options o = small_opts();
    o.create_if_missing = false;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    for (int w = 0; w < CP_WRITERS; w++) {
        int n = 0;
        for (int i = 0; i < CP_WRITES; i++) {
            char key[32];
            snprintf(key, sizeof(key), "w%d-%05d", w, i);
            int rc = ppdb_db_get(db, NULL, key, strlen(key), &out, NULL);
            if (rc == 0 && n == i)
                n++;
            else if (rc == 0)
                CHECK(!"a hole in a writer's sequence");
            else
                CHECK_ERR(rc, PPDB_ENOTFOUND);
        }
        CHECK_GE(n, min_done[w]);
    }
    ppdb_buf_deinit(&out);
    CHECK_OK(ppdb_db_close(db));
}

static void test_checkpoint(void)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    struct ppdb_db_options o = small_opts();
    o.memtable_bytes = 16 * 1024;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/c", &o, &db));
    struct cp_writer ws[CP_WRITERS];
    pthread_t th[CP_WRITERS];
    for (int i = 0; i < CP_WRITERS; i++) {
        ws[i] = (struct cp_writer){.db = db, .id = i};
        CHECK_EQ(pthread_create(&th[i], NULL, cp_write_main, &ws[i]), 0);
    }
    int min_done[4][CP_WRITERS];
    char dir[4][16];
    for (int c = 0; c < 4; c++) {
        usleep(3000);
        for (int i = 0; i < CP_WRITERS; i++)
            min_done[c][i] = __atomic_load_n(&ws[i].done, __ATOMIC_ACQUIRE);
        snprintf(dir[c], sizeof(dir[c]), "/cp%d", c);
        CHECK_OK(ppdb_db_checkpoint(db, dir[c]));
    }
    for (int i = 0; i < CP_WRITERS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_ERR(ppdb_db_checkpoint(db, "/cp0"), PPDB_EEXIST);
    CHECK_OK(ppdb_db_close(db));
    for (int c = 0; c < 4; c++)
        check_checkpoint(fs, dir[c], min_done[c]);
    int all[CP_WRITERS] = {CP_WRITES, CP_WRITES, CP_WRITES};
    check_checkpoint(fs, "/c", all);
    printf("checkpoint: 4 checkpoints under %d writers open as prefixes\n", CP_WRITERS);
    ppdb_fs_destroy(fs);
}

/* -------------------------------------------------- power cut in compaction */

/* Every numbered file is named by the manifest, or is a live log. */
static void check_no_stray_files(struct ppdb_fs *fs, const char *dir, struct ppdb_db *db)
{
    char **names;
    size_t n;
    CHECK_OK(fs->ops->list(fs, dir, &names, &n));
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < n; i++) {
        unsigned long long num;
        char ext[16];
        if (sscanf(names[i], "MANIFEST-%llu", &num) == 1) {
            CHECK_EQ_U64(num, db->vs.manifest_number);
            continue;
        }
        if (sscanf(names[i], "%llu.%15s", &num, ext) != 2)
            continue;
        bool ok = false;
        if (strcmp(ext, "log") == 0)
            ok = num >= db->vs.log_number;
        for (int l = 0; l < PPDB_NUM_LEVELS && !ok; l++)
            for (size_t j = 0; j < db->current->nfiles[l]; j++)
                ok |= db->current->files[l][j]->number == num;
        if (!ok)
            fprintf(stderr, "stray file %s\n", names[i]);
        CHECK(ok);
    }
    pthread_mutex_unlock(&db->mu);
    ppdb_fs_names_free(names, n);
}

static void test_power_cut_compaction(struct ppdb_rng *rng, int rounds)
{
    int cuts_busy = 0;
    for (int r = 0; r < rounds; r++) {
        struct ppdb_fs *fs;
        CHECK_OK(ppdb_fs_mem_new(&fs));
        memset(&M, 0, sizeof(M));
        struct ppdb_db_options o = small_opts();
        o.memtable_bytes = 8 * 1024;
        o.l0_compaction_trigger = 2;
        o.level1_bytes = 32 * 1024;
        o.target_file_bytes = 8 * 1024;
        struct ppdb_db *db;
        CHECK_OK(ppdb_db_open(fs, "/p", &o, &db));
        uint8_t v[VLEN];
        int n = 500 + (int)ppdb_rng_below(rng, 3000);
        static uint32_t synced_gen[NKEYS];
        memset(synced_gen, 0, sizeof(synced_gen));
        for (int i = 0; i < n; i++) {
            int k = (int)ppdb_rng_below(rng, 400);
            char key[16];
            key_of(k, key, sizeof(key));
            val_of(k, M.gen[k] + 1, v);
            struct ppdb_write_options w = {.sync = ppdb_rng_below(rng, 8) == 0};
            CHECK_OK(ppdb_db_put(db, &w, key, strlen(key), v, VLEN));
            M.gen[k]++;
            M.live[k] = true;
            if (w.sync) /* this and every earlier write are durable */
                for (int j = 0; j < 400; j++)
                    synced_gen[j] = M.gen[j];
        }
        usleep((useconds_t)ppdb_rng_below(rng, 1500)); /* let a compaction get going */
        pthread_mutex_lock(&db->mu);
        cuts_busy += db->bg_tasks > 0;
        pthread_mutex_unlock(&db->mu);
        /* The cut: from now on every write fails (a dead process writes
         * nothing), then what was not synced is gone. */
        struct ppdb_fs_mem_faults f = {.capacity_bytes = 1};
        ppdb_fs_mem_set_faults(fs, &f);
        ppdb_fs_mem_drop_unsynced(fs);
        (void)ppdb_db_close(db); /* errors expected: handles are dead */
        f.capacity_bytes = 0;
        ppdb_fs_mem_set_faults(fs, &f);
        CHECK_OK(ppdb_db_open(fs, "/p", &o, &db));
        struct ppdb_buf out;
        ppdb_buf_init(&out);
        for (int k = 0; k < 400; k++) {
            char key[16];
            key_of(k, key, sizeof(key));
            int rc = ppdb_db_get(db, NULL, key, strlen(key), &out, NULL);
            if (synced_gen[k] == 0 && rc == PPDB_ENOTFOUND)
                continue;
            CHECK_OK(rc);
            /* Some generation at or after the synced one, never garbage. */
            bool match = false;
            for (uint32_t g = synced_gen[k] ? synced_gen[k] : 1; g <= M.gen[k] && !match; g++) {
                val_of(k, g, v);
                match = out.len == VLEN && memcmp(out.data, v, VLEN) == 0;
            }
            CHECK(match);
        }
        ppdb_buf_deinit(&out);
        db_wait_idle(db); /* outputs of a running compaction are not named yet */
        check_no_stray_files(fs, "/p", db);
        CHECK_OK(ppdb_db_close(db));
        ppdb_fs_destroy(fs);
    }
    printf("power cut in compaction: %d rounds, %d cut while background work ran\n", rounds,
           cuts_busy);
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint64_t seed = check_seed(argc, argv, 4242);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    test_tombstones();
    test_stalls();
    test_full_disk(&rng);
    test_checkpoint();
    test_power_cut_compaction(&rng, 40);
    test_long_model(&rng);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
