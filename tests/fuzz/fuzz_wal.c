/*
 * fuzz_wal.c - the WAL reader and log recovery on arbitrary bytes.
 *
 * The input is a log file placed in an in-memory fs. First the reader walks
 * it: every record it returns must decode or be rejected as a batch, and it
 * must end with CLEAN, TORN or CORRUPT, never loop or read out of bounds.
 * Then the whole recovery runs on it (the file as a database's only log):
 * without paranoid_checks open must succeed whatever the bytes; with them it
 * succeeds or says PPDB_ECORRUPT. Memory is checked by the sanitizers and
 * the allocation counter.
 */
#include "check.h"
#include "engine_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_file(struct ppdb_fs *fs, const char *path, const uint8_t *data, size_t size)
{
    struct ppdb_file *f;
    PPDB_ASSERT(fs->ops->open(fs, path, PPDB_FS_APPEND | PPDB_FS_CREATE, &f) == 0);
    PPDB_ASSERT(fs->ops->append(fs, f, data, size) == 0);
    PPDB_ASSERT(fs->ops->sync(fs, f) == 0);
    PPDB_ASSERT(fs->ops->close(fs, f) == 0);
}

static void read_all(struct ppdb_fs *fs, const char *path)
{
    struct ppdb_file *f;
    struct wal_reader r;
    PPDB_ASSERT(fs->ops->open(fs, path, PPDB_FS_READ, &f) == 0);
    PPDB_ASSERT(wal_reader_init(&r, fs, f) == 0);
    const uint8_t *p;
    size_t n;
    int rc, records = 0;
    while ((rc = wal_reader_next(&r, &p, &n)) == 0) {
        PPDB_ASSERT_CMP(records, <, 100000);
        records++;
        (void)batch_rep_validate(p, n);
    }
    PPDB_ASSERT(rc == PPDB_ENOTFOUND || rc == PPDB_ECORRUPT);
    PPDB_ASSERT(r.end == WAL_END_CLEAN || r.end == WAL_END_TORN || r.end == WAL_END_CORRUPT);
    PPDB_ASSERT((rc == PPDB_ECORRUPT) == (r.end == WAL_END_CORRUPT));
    PPDB_ASSERT(wal_reader_next(&r, &p, &n) == rc); /* stays stopped */
    wal_reader_deinit(&r);
    PPDB_ASSERT(fs->ops->close(fs, f) == 0);
}

static void recover(struct ppdb_fs *fs, bool paranoid)
{
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.paranoid_checks = paranoid;
    o.memtable_bytes = 8192;
    o.block_cache_bytes = 0;
    struct ppdb_db *db;
    int rc = ppdb_db_open(fs, "/db", &o, &db);
    if (paranoid)
        PPDB_ASSERT(rc == 0 || rc == PPDB_ECORRUPT);
    else
        PPDB_ASSERT(rc == 0);
    if (rc == 0) {
        struct ppdb_buf out;
        ppdb_buf_init(&out);
        (void)ppdb_db_get(db, NULL, "key", 3, &out, NULL);
        ppdb_buf_deinit(&out);
        PPDB_ASSERT(ppdb_db_close(db) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ppdb_logger_default()->level = -1; /* corruption reports are the point */
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    struct ppdb_fs *fs;
    PPDB_ASSERT(ppdb_fs_mem_new(&fs) == 0);
    PPDB_ASSERT(fs->ops->mkdir(fs, "/db") == 0);
    put_file(fs, "/db/000001.log", data, size);
    read_all(fs, "/db/000001.log");
    bool paranoid = size > 0 && (data[size - 1] & 1);
    recover(fs, paranoid);
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
    return 0;
}
