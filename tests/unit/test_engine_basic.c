/*
 * test_engine_basic.c - the engine's pieces and its API, one behaviour each:
 * batch encoding, WAL framing and the reader's three endings (also before
 * the zero fill a preallocated log ends in), the memtable,
 * put/get/delete, versions (highest wins, across memtable and tables),
 * batches, reopen, flush, the LOCK file, and a POSIX smoke test.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "db_int.h"

static struct ppdb_db_options small_opts(void)
{
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 64 * 1024;
    o.block_cache_bytes = 256 * 1024;
    return o;
}

static void put_s(struct ppdb_db *db, const char *k, const char *v)
{
    CHECK_OK(ppdb_db_put(db, NULL, k, strlen(k), v, strlen(v)));
}

static void expect(struct ppdb_db *db, const char *k, const char *v, uint64_t version)
{
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    uint64_t ver = 12345;
    int rc = ppdb_db_get(db, NULL, k, strlen(k), &out, &ver);
    if (!v) {
        CHECK_ERR(rc, PPDB_ENOTFOUND);
        CHECK_EQ(out.len, 0);
    } else {
        CHECK_OK(rc);
        CHECK_EQ(out.len, strlen(v));
        CHECK_MEMEQ(out.data, v, out.len);
        CHECK_EQ_U64(ver, version);
    }
    ppdb_buf_deinit(&out);
}

/* --------------------------------------------------------------- batches */

static int count_cb(void *arg, uint64_t seq, int type, uint64_t version, const uint8_t *key,
                    size_t klen, const uint8_t *val, size_t vlen)
{
    int *n = arg;
    CHECK_EQ_U64(seq, 100 + (uint64_t)*n);
    if (*n == 0) {
        CHECK_EQ(type, PPDB_VT_VALUE);
        CHECK_EQ(klen, 1);
        CHECK_EQ(vlen, 2);
        CHECK_MEMEQ(val, "vv", 2);
    } else {
        CHECK_EQ(type, PPDB_VT_DEL);
        CHECK_EQ_U64(version, 77);
        CHECK_MEMEQ(key, "kk", 2);
    }
    (*n)++;
    return 0;
}

static void test_batch(void)
{
    struct ppdb_batch *b;
    CHECK_OK(ppdb_batch_new(&b));
    CHECK_EQ(ppdb_batch_count(b), 0);
    CHECK_OK(ppdb_batch_put(b, "k", 1, "vv", 2));
    CHECK_OK(ppdb_batch_delete_versioned(b, "kk", 2, 77));
    CHECK_ERR(ppdb_batch_put(b, "", 0, "x", 1), PPDB_EINVAL);
    CHECK_EQ(ppdb_batch_count(b), 2);
    batch_set_seq(&b->rep, 100);
    int n = 0;
    CHECK_OK(batch_rep_iterate(b->rep.data, b->rep.len, count_cb, &n));
    CHECK_EQ(n, 2);
    /* Any truncation is detected before a callback runs. */
    for (size_t cut = 0; cut < b->rep.len; cut++)
        CHECK_ERR(batch_rep_validate(b->rep.data, cut), PPDB_ECORRUPT);
    ppdb_batch_clear(b);
    CHECK_EQ(ppdb_batch_count(b), 0);
    ppdb_batch_free(b);
}

/* ------------------------------------------------------------------- wal */

static void write_log(struct ppdb_fs *fs, const char *path, const size_t *sizes, int n)
{
    struct wal_writer w;
    CHECK_OK(wal_writer_open(fs, path, 1, &w));
    for (int i = 0; i < n; i++) {
        uint8_t *p = ppdb_malloc(sizes[i] + 1);
        memset(p, 'a' + i % 26, sizes[i]);
        CHECK_OK(wal_writer_add(&w, p, sizes[i]));
        ppdb_free(p);
    }
    CHECK_OK(wal_writer_sync(&w));
    CHECK_OK(wal_writer_close(&w));
}

/* Reads all records; returns how many and the end state. */
static int read_log(struct ppdb_fs *fs, const char *path, const size_t *sizes, int *end_out)
{
    struct ppdb_file *f;
    struct wal_reader r;
    CHECK_OK(fs->ops->open(fs, path, PPDB_FS_READ, &f));
    CHECK_OK(wal_reader_init(&r, fs, f));
    const uint8_t *p;
    size_t n;
    int count = 0, rc;
    while ((rc = wal_reader_next(&r, &p, &n)) == 0) {
        CHECK_EQ(n, sizes[count]);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(p[i], 'a' + count % 26);
        count++;
    }
    CHECK(rc == PPDB_ENOTFOUND || rc == PPDB_ECORRUPT);
    CHECK_EQ(rc == PPDB_ECORRUPT, r.end == WAL_END_CORRUPT);
    *end_out = r.end;
    wal_reader_deinit(&r);
    CHECK_OK(fs->ops->close(fs, f));
    return count;
}

static void test_wal(void)
{
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    CHECK_OK(fs->ops->mkdir(fs, "/w"));
    /* Sizes that cover FULL, FIRST/MIDDLE/LAST, block-tail padding. */
    const size_t sizes[] = {10, 32768 - 7 - 17 - 7 - 3, 0, 100000, 5, 32768, 1, 70000, 12};
    int nrec = (int)PPDB_ARRAY_LEN(sizes), end;
    write_log(fs, "/w/1.log", sizes, nrec);
    CHECK_EQ(read_log(fs, "/w/1.log", sizes, &end), nrec);
    CHECK_EQ(end, WAL_END_CLEAN);

    uint64_t size;
    CHECK_OK(fs->ops->file_size(fs, "/w/1.log", &size));
    /* Every truncation point: a prefix of the records, torn or clean. */
    for (uint64_t cut = 0; cut < size; cut += 997) {
        struct ppdb_file *f;
        write_log(fs, "/w/2.log", sizes, nrec);
        CHECK_OK(fs->ops->open(fs, "/w/2.log", PPDB_FS_APPEND, &f));
        CHECK_OK(fs->ops->truncate(fs, f, cut));
        CHECK_OK(fs->ops->close(fs, f));
        int got = read_log(fs, "/w/2.log", sizes, &end);
        CHECK(end == WAL_END_CLEAN || end == WAL_END_TORN);
        CHECK_LE(got, nrec);
        CHECK_OK(fs->ops->remove(fs, "/w/2.log"));
    }
    /* The same cuts followed by zero fill: an append cut short by a crash in
     * space reserved ahead of the log (a prefix of its bytes, then zeros).
     * The same records come back, and it is never corruption. */
    for (uint64_t cut = 0; cut < size; cut += 997) {
        struct ppdb_file *f;
        int plain_end, zero_end;
        write_log(fs, "/w/2.log", sizes, nrec);
        CHECK_OK(fs->ops->open(fs, "/w/2.log", PPDB_FS_APPEND, &f));
        CHECK_OK(fs->ops->truncate(fs, f, cut));
        int plain = read_log(fs, "/w/2.log", sizes, &plain_end);
        CHECK_OK(fs->ops->truncate(fs, f, cut + 1 + cut % 70000));
        CHECK_OK(fs->ops->close(fs, f));
        int zero = read_log(fs, "/w/2.log", sizes, &zero_end);
        CHECK(zero_end == WAL_END_CLEAN || zero_end == WAL_END_TORN);
        CHECK_EQ(zero, plain);
        CHECK_OK(fs->ops->remove(fs, "/w/2.log"));
    }
    /* Damage to the last record stays corruption with zero fill after it,
     * when its last byte is not zero (a cut-short append's would be). */
    {
        struct ppdb_file *f;
        write_log(fs, "/w/3.log", sizes, nrec);
        CHECK_OK(fs->ops->open(fs, "/w/3.log", PPDB_FS_APPEND, &f));
        CHECK_OK(fs->ops->truncate(fs, f, size + 5000));
        CHECK_OK(fs->ops->close(fs, f));
        CHECK_OK(ppdb_fs_mem_flip_bit(fs, "/w/3.log", size - 5, 1));
        CHECK_EQ(read_log(fs, "/w/3.log", sizes, &end), nrec - 1);
        CHECK_EQ(end, WAL_END_CORRUPT);
    }
    /* A flipped bit in the middle is corruption, not an end. */
    CHECK_OK(ppdb_fs_mem_flip_bit(fs, "/w/1.log", 40000, 3));
    int got = read_log(fs, "/w/1.log", sizes, &end);
    CHECK_EQ(end, WAL_END_CORRUPT);
    CHECK_LT(got, nrec);
    ppdb_fs_destroy(fs);
}

/* -------------------------------------------------------------- memtable */

static void test_memtable(void)
{
    struct memtable *m;
    CHECK_OK(mem_new(&m));
    CHECK_OK(mem_add(m, 1, PPDB_VT_VALUE, 5, (const uint8_t *)"a", 1, (const uint8_t *)"v5", 2));
    CHECK_OK(mem_add(m, 2, PPDB_VT_VALUE, 3, (const uint8_t *)"a", 1, (const uint8_t *)"v3", 2));
    CHECK_OK(mem_add(m, 3, PPDB_VT_DEL, 9, (const uint8_t *)"ab", 2, NULL, 0));
    CHECK_OK(mem_add(m, 4, PPDB_VT_VALUE, 0, (const uint8_t *)"", 0, (const uint8_t *)"e", 1));
    CHECK_EQ_U64(mem_max_version(m), 9);
    CHECK_EQ_U64(mem_count(m), 4);
    struct ppdb_buf v;
    ppdb_buf_init(&v);
    struct lookup_hit hit = {.value = &v};
    CHECK_OK(mem_get(m, (const uint8_t *)"a", 1, 100, &hit));
    CHECK(hit.found);
    CHECK_EQ_U64(hit.version, 5);
    CHECK_MEMEQ(v.data, "v5", 2);
    struct lookup_hit hit2 = {.value = &v};
    CHECK_OK(mem_get(m, (const uint8_t *)"a", 1, 0, &hit2)); /* snapshot before all */
    CHECK(!hit2.found);
    struct lookup_hit hit3 = {.value = &v};
    CHECK_OK(mem_get(m, (const uint8_t *)"ab", 2, 100, &hit3));
    CHECK(hit3.found && hit3.type == PPDB_VT_DEL);
    /* Ordered walk: "" < "a"(v5) < "a"(v3) < "ab". */
    struct mem_iter it;
    int n = 0;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (mem_iter_first(&it, m); mem_iter_valid(&it); mem_iter_next(&it), n++) {
        if (prev)
            CHECK_LT(ppdb_ikey_cmp(prev, prev_len, it.node->ikey, it.node->iklen), 0);
        prev = it.node->ikey;
        prev_len = it.node->iklen;
    }
    CHECK_EQ(n, 4);
    ppdb_buf_deinit(&v);
    mem_unref(m);
}

/* ------------------------------------------------------------------- db */

static void test_db_basic(struct ppdb_fs *fs)
{
    struct ppdb_db_options o = small_opts();
    struct ppdb_db *db, *db2;
    CHECK_OK(ppdb_db_open(fs, "/db", &o, &db));
    CHECK_ERR(ppdb_db_open(fs, "/db", &o, &db2), PPDB_EBUSY);
    expect(db, "a", NULL, 0);
    put_s(db, "a", "1");
    put_s(db, "b", "2");
    expect(db, "a", "1", 0);
    put_s(db, "a", "3");
    expect(db, "a", "3", 0);
    CHECK_OK(ppdb_db_delete(db, NULL, "b", 1));
    expect(db, "b", NULL, 0);
    /* Versions: highest wins whatever the arrival order; ties: later wins. */
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "v", 1, "ten", 3, 10));
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "v", 1, "five", 4, 5));
    expect(db, "v", "ten", 10);
    CHECK_OK(ppdb_db_delete_versioned(db, NULL, "v", 1, 7));
    expect(db, "v", "ten", 10);
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "v", 1, "ten2", 4, 10));
    expect(db, "v", "ten2", 10);
    CHECK_OK(ppdb_db_delete_versioned(db, NULL, "v", 1, 11));
    expect(db, "v", NULL, 0);
    /* A higher version in a table beats a lower one in the memtable. */
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "t", 1, "high", 4, 1000));
    CHECK_OK(ppdb_db_flush(db));
    CHECK_OK(ppdb_db_put_versioned(db, NULL, "t", 1, "low", 3, 999));
    expect(db, "t", "high", 1000);
    expect(db, "a", "3", 0);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    CHECK_EQ(st.flushes, 1);
    CHECK_EQ(st.l0_files, 1);
    CHECK_OK(ppdb_db_close(db));

    CHECK_OK(ppdb_db_open(fs, "/db", &o, &db));
    expect(db, "a", "3", 0);
    expect(db, "b", NULL, 0);
    expect(db, "v", NULL, 0);
    expect(db, "t", "high", 1000);
    CHECK_OK(ppdb_db_close(db));
}

static void test_db_batch_and_flushes(struct ppdb_fs *fs)
{
    struct ppdb_db_options o = small_opts();
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/db2", &o, &db));
    struct ppdb_batch *b;
    CHECK_OK(ppdb_batch_new(&b));
    char k[32], v[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof(k), "key%05d", i);
        snprintf(v, sizeof(v), "value-%d-%0*d", i, 20, i);
        CHECK_OK(ppdb_batch_put_versioned(b, k, strlen(k), v, strlen(v), (uint64_t)i));
        if (ppdb_batch_count(b) == 50) {
            CHECK_OK(ppdb_db_write(db, NULL, b));
            ppdb_batch_clear(b);
        }
    }
    ppdb_batch_free(b);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    /* memtables filled and were flushed meanwhile (maybe compacted down) */
    CHECK_GT(st.table_bytes, 0);
    CHECK_EQ_U64(st.entries, 3000);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, "/db2", &o, &db));
    for (int i = 0; i < 3000; i += 7) {
        snprintf(k, sizeof(k), "key%05d", i);
        snprintf(v, sizeof(v), "value-%d-%0*d", i, 20, i);
        expect(db, k, v, (uint64_t)i);
    }
    ppdb_db_get_stats(db, &st);
    CHECK_EQ_U64(st.last_sequence, 3000);
    CHECK_OK(ppdb_db_close(db));
}

/* A task that occupies the fs's background thread until released, so the
 * flush queued behind it cannot run: the writer that fills the next
 * memtable must stall. */
struct blocker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool release;
};

static void blocker_cb(void *arg)
{
    struct blocker *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->release)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static void *release_later(void *arg)
{
    struct blocker *b = arg;
    usleep(30000);
    pthread_mutex_lock(&b->mu);
    b->release = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static int fill_memtables(struct ppdb_db *db, int n)
{
    char k[32], v[200];
    memset(v, 'x', sizeof(v));
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "s%06d", i);
        int rc = ppdb_db_put(db, NULL, k, strlen(k), v, sizeof(v));
        if (rc)
            return rc;
    }
    return 0;
}

static void test_stall(struct ppdb_fs *fs)
{
    struct ppdb_db_options o = small_opts();
    o.memtable_bytes = 16 * 1024;
    o.max_stall_ms = 10000;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, "/stall", &o, &db));
    struct blocker b = {.release = false};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    CHECK_OK(fs->ops->schedule(fs, blocker_cb, &b));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, release_later, &b), 0);
    CHECK_OK(fill_memtables(db, 400)); /* > 2 memtables: must wait for the flush */
    CHECK_EQ(pthread_join(th, NULL), 0);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    CHECK_GE(st.stalls, 1);
    CHECK_GT(st.stall_us, 1000);
    /* A stall longer than max_stall_ms fails the write, and only it. */
    CHECK_OK(ppdb_db_close(db));
    o.max_stall_ms = 20;
    CHECK_OK(ppdb_db_open(fs, "/stall", &o, &db));
    b.release = false;
    CHECK_OK(fs->ops->schedule(fs, blocker_cb, &b));
    CHECK_ERR(fill_memtables(db, 400), PPDB_ETIMEDOUT);
    CHECK_EQ(pthread_create(&th, NULL, release_later, &b), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_OK(ppdb_db_flush(db));
    CHECK_OK(fill_memtables(db, 10));
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    CHECK_OK(ppdb_db_get(db, NULL, "s000399", 7, &out, NULL)); /* from before the timeout */
    CHECK_EQ(out.len, 200);
    ppdb_buf_deinit(&out);
    CHECK_OK(ppdb_db_close(db));
    pthread_cond_destroy(&b.cv);
    pthread_mutex_destroy(&b.mu);
}

static void test_posix_smoke(void)
{
    char tmpl[] = "/tmp/ppdb-engine-XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/db", dir);
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_posix_new(&fs));
    struct ppdb_db_options o = small_opts();
    struct ppdb_db *db, *db2;
    struct ppdb_write_options w = {.sync = true};
    CHECK_OK(ppdb_db_open(fs, path, &o, &db));
    CHECK_ERR(ppdb_db_open(fs, path, &o, &db2), PPDB_EBUSY);
    for (int i = 0; i < 2000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "p%d", i);
        CHECK_OK(ppdb_db_put(db, i % 100 == 0 ? &w : NULL, k, strlen(k), k, strlen(k)));
    }
    CHECK_OK(ppdb_db_flush(db));
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, path, &o, &db));
    expect(db, "p1999", "p1999", 0);
    expect(db, "p0", "p0", 0);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
}

int main(void)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_batch();
    test_wal();
    test_memtable();
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    test_db_basic(fs);
    test_db_batch_and_flushes(fs);
    test_stall(fs);
    ppdb_fs_destroy(fs);
    test_posix_smoke();
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
