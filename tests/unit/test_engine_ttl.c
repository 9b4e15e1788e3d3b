/*
 * test_engine_ttl.c - per-key expiry with a controlled clock.
 *
 * The in-memory fs's wall clock is moved with ppdb_fs_mem_set_wall_offset_ms
 * (in minutes, far larger than the real time the test takes). Checks:
 * relative TTLs are converted at write time; an entry is visible before its
 * expiry and invisible (get, iterators, also at a snapshot) after it; expiry
 * survives a reopen (log replay) and a flush (tables); an expired entry
 * never uncovers an older value of its key, in the memtable, in tables or
 * after compaction; compaction drops expired entries; a later write
 * replaces an expiring one.
 */
#include <stdio.h>

#include "check.h"
#include "ppdb_engine.h"

#define MIN_MS (60ll * 1000)

static struct ppdb_fs *fs;

static void set_minutes(int64_t m)
{
    ppdb_fs_mem_set_wall_offset_ms(fs, m * MIN_MS);
}

static int get(struct ppdb_db *db, const char *key, char *val, size_t cap)
{
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    int rc = ppdb_db_get(db, NULL, key, strlen(key), &out, NULL);
    if (!rc) {
        CHECK_LT(out.len, cap);
        memcpy(val, out.data, out.len);
        val[out.len] = 0;
    }
    ppdb_buf_deinit(&out);
    return rc;
}

static void expect(struct ppdb_db *db, const char *key, const char *want)
{
    char val[64];
    int rc = get(db, key, val, sizeof(val));
    if (!want) {
        CHECK_ERR(rc, PPDB_ENOTFOUND);
        return;
    }
    CHECK_OK(rc);
    CHECK_STREQ(val, want);
}

/* Keys the iterator yields, joined with ',' into out. */
static void scan(struct ppdb_db *db, const struct ppdb_snapshot *s, char *out, size_t cap)
{
    struct ppdb_iter_options io = {.snapshot = s};
    struct ppdb_iter *it;
    CHECK_OK(ppdb_db_iter_new(db, &io, &it));
    size_t n = 0;
    out[0] = 0;
    for (ppdb_iter_seek_first(it); ppdb_iter_valid(it); ppdb_iter_next(it)) {
        size_t kl;
        const char *k = ppdb_iter_key(it, &kl);
        CHECK_LT(n + kl + 2, cap);
        if (n)
            out[n++] = ',';
        memcpy(out + n, k, kl);
        n += kl;
        out[n] = 0;
    }
    /* Backward gives the same keys. */
    size_t back = 0;
    for (ppdb_iter_seek_last(it); ppdb_iter_valid(it); ppdb_iter_prev(it))
        back++;
    size_t fwd = n ? 1 : 0;
    for (size_t i = 0; i < n; i++)
        fwd += out[i] == ',';
    CHECK_EQ(back, fwd);
    CHECK_OK(ppdb_iter_status(it));
    ppdb_iter_free(it);
}

static void put(struct ppdb_db *db, const char *k, const char *v)
{
    CHECK_OK(ppdb_db_put(db, NULL, k, strlen(k), v, strlen(v)));
}

static void put_ttl(struct ppdb_db *db, const char *k, const char *v, int64_t minutes)
{
    CHECK_OK(ppdb_db_put_ttl(db, NULL, k, strlen(k), v, strlen(v), (uint64_t)(minutes * MIN_MS)));
}

int main(void)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_fs_mem_new(&fs));
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.tombstone_grace_ms = 0;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/ttl", &o, &db));
    char keys[256];

    /* Relative TTLs, converted at write time. */
    set_minutes(0);
    put(db, "a", "old-a"); /* an older value under an expiring one */
    put_ttl(db, "a", "new-a", 10);
    put_ttl(db, "b", "b1", 20);
    put(db, "c", "c1");
    set_minutes(5);
    put_ttl(db, "d", "d1", 10); /* expires at minute 15 */
    int64_t now = fs->ops->wall_ms(fs);
    CHECK_OK(ppdb_db_put_expiring(db, NULL, "e", 1, "e1", 2, 7, (uint64_t)(now + 30 * MIN_MS)));
    struct ppdb_batch *b;
    CHECK_OK(ppdb_batch_new(&b));
    CHECK_OK(ppdb_batch_put_expiring(b, "f", 1, "f1", 2, 0, (uint64_t)(now + 2 * MIN_MS)));
    CHECK_OK(ppdb_db_write(db, NULL, b));
    ppdb_batch_free(b);
    expect(db, "a", "new-a");
    expect(db, "f", "f1");
    scan(db, NULL, keys, sizeof(keys));
    CHECK_STREQ(keys, "a,b,c,d,e,f");
    const struct ppdb_snapshot *snap;
    CHECK_OK(ppdb_db_snapshot_new(db, &snap));

    /* Minute 12: a (10) and f (7) gone, the rest alive. The old "a" stays
     * hidden. Also after a reopen (the log is replayed). */
    set_minutes(12);
    expect(db, "a", NULL);
    expect(db, "f", NULL);
    expect(db, "d", "d1");
    scan(db, NULL, keys, sizeof(keys));
    CHECK_STREQ(keys, "b,c,d,e");
    scan(db, snap, keys, sizeof(keys)); /* expiry judged now, also at a snapshot */
    CHECK_STREQ(keys, "b,c,d,e");
    ppdb_db_snapshot_release(db, snap);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, "/ttl", &o, &db));
    expect(db, "a", NULL);
    expect(db, "b", "b1");

    /* In tables: flush; minute 16: d gone too. */
    CHECK_OK(ppdb_db_flush(db));
    set_minutes(16);
    expect(db, "d", NULL);
    expect(db, "b", "b1");
    expect(db, "a", NULL);
    scan(db, NULL, keys, sizeof(keys));
    CHECK_STREQ(keys, "b,c,e");

    /* A new write replaces an expiring entry (no expiry any more). */
    put(db, "b", "b2");
    set_minutes(40);
    expect(db, "b", "b2");
    expect(db, "e", NULL);
    scan(db, NULL, keys, sizeof(keys));
    CHECK_STREQ(keys, "b,c");

    /* Compaction drops the expired entries and nothing older comes back. */
    struct ppdb_db_stats st0, st1;
    ppdb_db_get_stats(db, &st0);
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    ppdb_db_get_stats(db, &st1);
    CHECK_GT(st1.compact_dropped, st0.compact_dropped);
    expect(db, "a", NULL);
    expect(db, "d", NULL);
    expect(db, "b", "b2");
    expect(db, "c", "c1");
    scan(db, NULL, keys, sizeof(keys));
    CHECK_STREQ(keys, "b,c");

    /* An expired entry above an older value in a deeper level: the older
     * value stays hidden after the upper level is compacted alone. */
    put(db, "g", "g-old");
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0)); /* g-old at the bottom */
    put_ttl(db, "g", "g-new", 5);
    CHECK_OK(ppdb_db_flush(db)); /* g-new in level 0 */
    set_minutes(50);
    expect(db, "g", NULL);
    CHECK_OK(ppdb_db_compact_range(db, "g", 1, "g", 1));
    expect(db, "g", NULL);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, "/ttl", &o, &db));
    expect(db, "g", NULL);
    expect(db, "b", "b2");
    scan(db, NULL, keys, sizeof(keys));
    CHECK_STREQ(keys, "b,c");
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
