/*
 * test_engine_faults.c - the engine under file-system faults (in-memory fs).
 *
 * Every scenario writes a numbered history: write i is a batch of 1..3 keys
 * all set to the value "i" (or deleted). After a fault and a reopen, the
 * database must equal the model after SOME prefix of the history (the log
 * is replayed in order and batches are atomic) that is at least as long as
 * the last write acknowledged with sync. That catches lost synced writes,
 * half-applied batches, holes, and any wrong value.
 *
 *   - power cut (drop unsynced data) at random moments between flushes (a cut
 *     inside a flush is what the failing-I/O runs below end with), half the
 *     time with logs coming back in preallocated zero fill, and a log that
 *     ends in zero fill: no corruption counted, a new log after recovery;
 *   - a bit flipped in a log, a table or the MANIFEST: open fails with
 *     PPDB_ECORRUPT, or reads give a valid prefix; reads never return a
 *     wrong value (PPDB_ECORRUPT is allowed);
 *   - logs truncated at random points;
 *   - appends, syncs, torn appends and a full disk failing under the
 *     writer: the writer gets the error, and nothing it was told succeeded
 *     is lost.
 *
 * Seeded: PPDB_SEED=<n> or argv[1].
 */
#include <stdio.h>

#include "check.h"
#include "db_int.h"
#include "fs_internal.h"

#define NKEYS 64
#define MAXW  3000

struct history {
    int nwrites;
    int keys[MAXW][3];
    int nkeys[MAXW];
    bool del[MAXW];
    int last_synced; /* index of the last write acknowledged with sync, -1 */
    int last_acked;  /* index of the last write acknowledged at all, -1 */
};

static struct history H;

static void key_of(int k, char *out, size_t cap)
{
    snprintf(out, cap, "k%02d", k);
}

static struct ppdb_db_options fault_opts(struct ppdb_rng *rng)
{
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 4096 + ppdb_rng_below(rng, 8192);
    o.block_bytes = 256;
    o.block_cache_bytes = 0;
    return o;
}

/* Issues write i; returns the db's answer. */
static int do_write(struct ppdb_db *db, struct ppdb_rng *rng, int i, bool sync)
{
    struct ppdb_batch *b;
    CHECK_OK(ppdb_batch_new(&b));
    char key[16], val[16];
    snprintf(val, sizeof(val), "%d", i);
    H.nkeys[i] = 1 + (int)ppdb_rng_below(rng, 3);
    H.del[i] = ppdb_rng_below(rng, 8) == 0;
    for (int j = 0; j < H.nkeys[i]; j++) {
        H.keys[i][j] = (int)ppdb_rng_below(rng, NKEYS);
        key_of(H.keys[i][j], key, sizeof(key));
        if (H.del[i])
            CHECK_OK(ppdb_batch_delete(b, key, strlen(key)));
        else
            CHECK_OK(ppdb_batch_put(b, key, strlen(key), val, strlen(val)));
    }
    struct ppdb_write_options w = {.sync = sync};
    int rc = ppdb_db_write(db, &w, b);
    ppdb_batch_free(b);
    H.nwrites = i + 1;
    if (rc == 0) {
        H.last_acked = i;
        if (sync)
            H.last_synced = i;
    }
    return rc;
}

/* Reads every key: state[k] = value number, -1 absent, -2 read error. */
static void read_state(struct ppdb_db *db, int *state)
{
    for (int k = 0; k < NKEYS; k++) {
        char key[16];
        key_of(k, key, sizeof(key));
        struct ppdb_buf out;
        ppdb_buf_init(&out);
        int rc = ppdb_db_get(db, NULL, key, strlen(key), &out, NULL);
        if (rc == 0) {
            CHECK_LT(out.len, 15);
            char s[16] = {0};
            memcpy(s, out.data, out.len);
            state[k] = atoi(s);
        } else {
            CHECK(rc == PPDB_ENOTFOUND || rc == PPDB_ECORRUPT);
            state[k] = rc == PPDB_ENOTFOUND ? -1 : -2;
        }
        ppdb_buf_deinit(&out);
    }
}

/* The longest prefix length P >= min_len whose model equals state (keys
 * with a read error (-2) match anything), or -1. */
static int matching_prefix(const int *state, int min_len)
{
    int m[NKEYS];
    int found = -1;
    for (int k = 0; k < NKEYS; k++)
        m[k] = -1;
    for (int p = 0; p <= H.nwrites; p++) {
        if (p > 0) {
            int i = p - 1;
            for (int j = 0; j < H.nkeys[i]; j++)
                m[H.keys[i][j]] = H.del[i] ? -1 : i;
        }
        if (p < min_len)
            continue;
        bool eq = true;
        for (int k = 0; k < NKEYS && eq; k++)
            eq = state[k] == -2 || state[k] == m[k];
        if (eq)
            found = p;
    }
    return found;
}

static void check_prefix(struct ppdb_db *db, int min_len, const char *what)
{
    int state[NKEYS];
    read_state(db, state);
    int p = matching_prefix(state, min_len);
    if (p < 0) {
        fprintf(stderr, "%s: state is no prefix >= %d of %d writes\n", what, min_len, H.nwrites);
        for (int k = 0; k < NKEYS; k++)
            fprintf(stderr, " %d", state[k]);
        fprintf(stderr, "\n");
    }
    CHECK_GE(p, min_len);
}

static void reset_history(void)
{
    memset(&H, 0, sizeof(H));
    H.last_synced = -1;
    H.last_acked = -1;
}

/* ------------------------------------------------------------ power cut */

static void test_power_cut(struct ppdb_rng *rng, int round)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    if (round % 2) /* logs come back with the zero fill reserved ahead of them */
        ppdb_fs_mem_set_log_prealloc(fs, round % 4 == 1 ? PPDB_FS__LOG_CHUNK : 4096);
    reset_history();
    struct ppdb_db_options o = fault_opts(rng);
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/pc", &o, &db));
    int n = 200 + (int)ppdb_rng_below(rng, 1500), cuts = 0;
    for (int i = 0; i < n; i++) {
        CHECK_OK(do_write(db, rng, i, ppdb_rng_below(rng, 4) == 0));
        if (ppdb_rng_below(rng, 300) == 0 || i == n - 1) {
            db_wait_idle(db); /* a dead process flushes nothing after the cut */
            ppdb_fs_mem_drop_unsynced(fs);
            (void)ppdb_db_close(db); /* handles are dead: errors expected */
            CHECK_OK(ppdb_db_open(fs, "/pc", &o, &db));
            check_prefix(db, H.last_synced + 1, "power cut");
            struct ppdb_db_stats st;
            ppdb_db_get_stats(db, &st);
            CHECK_EQ(st.recovery_corruptions, 0);
            /* What survived is now the history: rebuild it as a prefix. */
            int state[NKEYS];
            read_state(db, state);
            H.nwrites = matching_prefix(state, H.last_synced + 1);
            H.last_synced = H.nwrites - 1;
            i = H.nwrites - 1;
            cuts++;
        }
    }
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
    if (round == 0)
        printf("power cut: %d cuts over %d writes\n", cuts, n);
}

/* The log's number, and that it is the only one. */
static uint64_t only_log(struct ppdb_fs *fs, const char *dir)
{
    char **names;
    size_t n, logs = 0;
    uint64_t number = 0;
    CHECK_OK(fs->ops->list(fs, dir, &names, &n));
    for (size_t i = 0; i < n; i++) {
        unsigned long long num;
        char ext[8];
        if (sscanf(names[i], "%llu.%7s", &num, ext) == 2 && strcmp(ext, "log") == 0) {
            number = num;
            logs++;
        }
    }
    ppdb_fs_names_free(names, n);
    CHECK_EQ(logs, 1);
    return number;
}

/* A log that ends in zero fill (a crashed process's preallocated log, here
 * through the in-memory fs's model of it) recovers every synced record,
 * counts no corruption, and recovery then starts a new log as always. */
static void test_zero_tail(struct ppdb_rng *rng)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    ppdb_fs_mem_set_log_prealloc(fs, PPDB_FS__LOG_CHUNK);
    reset_history();
    struct ppdb_db_options o = fault_opts(rng);
    o.memtable_bytes = 1 << 20; /* every write stays in the one log */
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/zt", &o, &db));
    uint64_t log = only_log(fs, "/zt");
    for (int i = 0; i < 500; i++)
        CHECK_OK(do_write(db, rng, i, i % 50 == 49));
    db_wait_idle(db);
    ppdb_fs_mem_drop_unsynced(fs);
    (void)ppdb_db_close(db);
    char path[64];
    uint64_t size;
    snprintf(path, sizeof(path), "/zt/%06llu.log", (unsigned long long)log);
    CHECK_OK(fs->ops->file_size(fs, path, &size));
    CHECK_EQ(size, PPDB_FS__LOG_CHUNK); /* synced records, then zeros */
    CHECK_OK(ppdb_db_open(fs, "/zt", &o, &db));
    check_prefix(db, H.last_synced + 1, "zero tail");
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    CHECK_EQ(st.recovery_corruptions, 0);
    CHECK_GT(only_log(fs, "/zt"), log); /* a new log; the old one is gone */
    CHECK_ERR(fs->ops->exists(fs, path), PPDB_ENOENT);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
}

/* ----------------------------------------------------- bit flips, truncation */

/* Writes a history, closes, returns the file names of kind ext. */
static void write_and_close(struct ppdb_fs *fs, struct ppdb_rng *rng, const char *dir,
                            bool flush_some)
{
    reset_history();
    struct ppdb_db_options o = fault_opts(rng);
    o.memtable_bytes = flush_some ? 8192 : 1 << 20;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    int n = 100 + (int)ppdb_rng_below(rng, 400);
    for (int i = 0; i < n; i++)
        CHECK_OK(do_write(db, rng, i, i == n - 1));
    CHECK_OK(ppdb_db_close(db));
}

static bool pick_file(struct ppdb_fs *fs, struct ppdb_rng *rng, const char *dir, const char *ext,
                      char *path, size_t cap, uint64_t *size_out)
{
    char **names;
    size_t count, nmatch = 0;
    CHECK_OK(fs->ops->list(fs, dir, &names, &count));
    for (size_t i = 0; i < count; i++)
        nmatch += strstr(names[i], ext) != NULL;
    bool ok = false;
    if (nmatch) {
        size_t want = ppdb_rng_below(rng, nmatch);
        for (size_t i = 0; i < count; i++) {
            if (!strstr(names[i], ext) || want--)
                continue;
            snprintf(path, cap, "%s/%s", dir, names[i]);
            CHECK_OK(fs->ops->file_size(fs, path, size_out));
            ok = *size_out > 0;
            break;
        }
    }
    ppdb_fs_names_free(names, count);
    return ok;
}

/* Opens after damage: ECORRUPT, or a state that is a valid prefix. */
static void open_damaged(struct ppdb_fs *fs, const char *dir, bool paranoid, int min_len,
                         int *corrupt_opens)
{
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.create_if_missing = false;
    o.paranoid_checks = paranoid;
    struct ppdb_db *db;
    int rc = ppdb_db_open(fs, dir, &o, &db);
    if (rc == PPDB_ECORRUPT) {
        (*corrupt_opens)++;
        return;
    }
    CHECK_OK(rc);
    check_prefix(db, min_len, "after damage");
    CHECK_OK(ppdb_db_close(db));
}

static void test_bit_flips(struct ppdb_rng *rng, int rounds)
{
    static const char *exts[] = {".log", ".sst", "MANIFEST"};
    int corrupt_opens = 0, flips = 0;
    for (int r = 0; r < rounds; r++) {
        struct ppdb_fs *fs;
        CHECK_OK(ppdb_fs_mem_new(&fs));
        const char *ext = exts[r % 3];
        write_and_close(fs, rng, "/bf", r % 3 != 0);
        char path[128];
        uint64_t size;
        if (pick_file(fs, rng, "/bf", ext, path, sizeof(path), &size)) {
            CHECK_OK(ppdb_fs_mem_flip_bit(fs, path, ppdb_rng_below(rng, size),
                                          (int)ppdb_rng_below(rng, 8)));
            flips++;
            /* A flipped log may lose its tail; a table or MANIFEST nothing. */
            int min_len = strcmp(ext, ".log") == 0 ? 0 : H.nwrites;
            open_damaged(fs, "/bf", r % 2 == 0, min_len, &corrupt_opens);
        }
        ppdb_fs_destroy(fs);
    }
    printf("bit flips: %d flips, %d opens refused with ECORRUPT\n", flips, corrupt_opens);
}

static void test_truncation(struct ppdb_rng *rng, int rounds)
{
    int corrupt_opens = 0;
    for (int r = 0; r < rounds; r++) {
        struct ppdb_fs *fs;
        CHECK_OK(ppdb_fs_mem_new(&fs));
        bool table = r % 4 == 3;
        write_and_close(fs, rng, "/tr", table);
        char path[128];
        uint64_t size;
        if (pick_file(fs, rng, "/tr", table ? ".sst" : ".log", path, sizeof(path), &size)) {
            struct ppdb_file *f;
            CHECK_OK(fs->ops->open(fs, path, PPDB_FS_APPEND, &f));
            CHECK_OK(fs->ops->truncate(fs, f, ppdb_rng_below(rng, size)));
            CHECK_OK(fs->ops->close(fs, f));
            int before = corrupt_opens;
            open_damaged(fs, "/tr", true, table ? H.nwrites : 0, &corrupt_opens);
            if (table)
                CHECK_EQ(corrupt_opens, before + 1); /* a short table is never accepted */
            else
                CHECK_EQ(corrupt_opens, before); /* a cut log is a torn tail, not corruption */
        }
        ppdb_fs_destroy(fs);
    }
}

/* ----------------------------------------------------------- failing I/O */

static void arm(struct ppdb_fs *fs, int kind, int64_t after, uint64_t used)
{
    struct ppdb_fs_mem_faults f = {0};
    if (kind == 0)
        f.fail_append_after = after;
    else if (kind == 1)
        f.fail_sync_after = after;
    else if (kind == 2)
        f.torn_append_after = after;
    else
        f.capacity_bytes = used + (uint64_t)after * 64;
    f.seed = (uint64_t)after;
    ppdb_fs_mem_set_faults(fs, &f);
}

static void test_failing_io(struct ppdb_rng *rng, int rounds)
{
    static const int expected[] = {PPDB_EIO, PPDB_EIO, PPDB_EIO, PPDB_ENOSPC};
    int failures = 0;
    for (int r = 0; r < rounds; r++) {
        int kind = r % 4;
        struct ppdb_fs *fs;
        CHECK_OK(ppdb_fs_mem_new(&fs));
        reset_history();
        struct ppdb_db_options o = fault_opts(rng);
        struct ppdb_db *db;
        CHECK_OK(ppdb_db_open(fs, "/io", &o, &db));
        arm(fs, kind, 1 + (int64_t)ppdb_rng_below(rng, 300), ppdb_fs_mem_used_bytes(fs));
        int rc = 0, i;
        for (i = 0; i < 600 && rc == 0; i++)
            rc = do_write(db, rng, i, ppdb_rng_below(rng, 3) == 0);
        if (rc) {
            failures++;
            CHECK(rc == expected[kind] || rc == PPDB_EIO);
            /* Sticky: the db does not pretend later writes succeed. */
            CHECK_ERR(do_write(db, rng, i, true), rc);
            H.nwrites = i + 1;
        }
        db_wait_idle(db);
        struct ppdb_fs_mem_faults none = {0};
        ppdb_fs_mem_set_faults(fs, &none);
        ppdb_fs_mem_drop_unsynced(fs);
        (void)ppdb_db_close(db);
        CHECK_OK(ppdb_db_open(fs, "/io", &o, &db));
        check_prefix(db, H.last_synced + 1, "after failing I/O");
        CHECK_OK(ppdb_db_close(db));
        ppdb_fs_destroy(fs);
    }
    printf("failing I/O: %d of %d runs hit their fault\n", failures, rounds);
    CHECK_GT(failures, rounds / 2);
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint64_t seed = check_seed(argc, argv, 4242);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    struct ppdb_logger quiet;
    ppdb_logger_init(&quiet, PPDB_LOG_ERROR, "test");
    if (!getenv("PPDB_TEST_VERBOSE"))
        ppdb_logger_default()->level = -1; /* corruption reports are expected here */
    for (int r = 0; r < 30; r++)
        test_power_cut(&rng, r);
    test_zero_tail(&rng);
    test_bit_flips(&rng, 150);
    test_truncation(&rng, 60);
    test_failing_io(&rng, 80);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
