/*
 * fuzz_sst.c - the table reader on arbitrary bytes: the input is written to
 * an in-memory fs as a table file, opened, iterated both ways and probed
 * with a few gets and seeks. Nothing may crash, over-read, leak or loop;
 * every failure must be a clean error code.
 */
#include "table.h"

static void null_sink(void *arg, int level, const char *line, size_t len)
{
}

static bool count_cb(void *arg, const struct ppdb_ikey *k, const uint8_t *v, size_t vlen)
{
    (*(size_t *)arg)++;
    return false;
}

static void exercise(struct ppdb_table *t)
{
    struct ppdb_table_iter *it;
    if (ppdb_table_iter_new(t, &it) != 0)
        return;
    size_t n = 0, kn, vn;
    uint8_t first[64];
    size_t first_len = 0;
    for (ppdb_table_iter_seek_first(it); ppdb_table_iter_valid(it) && n < 100000;
         ppdb_table_iter_next(it), n++) {
        const uint8_t *k = ppdb_table_iter_key(it, &kn);
        (void)ppdb_table_iter_value(it, &vn);
        if (n == 0 && kn <= sizeof(first)) {
            memcpy(first, k, kn);
            first_len = kn;
        }
    }
    for (ppdb_table_iter_seek_last(it); ppdb_table_iter_valid(it) && n > 0;
         ppdb_table_iter_prev(it), n--)
        ;
    if (first_len) {
        ppdb_table_iter_seek(it, first, first_len);
        size_t hits = 0;
        (void)ppdb_table_get(t, first, first_len - PPDB_IKEY_TRAILER, count_cb, &hits);
        (void)ppdb_table_approx_offset(t, first, first_len);
    }
    uint8_t probe[24];
    size_t pl = ppdb_ikey_seek_key(probe, "key0001", 7);
    ppdb_table_iter_seek(it, probe, pl);
    size_t hits = 0;
    (void)ppdb_table_get(t, "key0001", 7, count_cb, &hits);
    (void)ppdb_table_get(t, "", 0, count_cb, &hits);
    ppdb_table_iter_free(it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ppdb_fs *fs;
    struct ppdb_file *f;
    if (ppdb_fs_mem_new(&fs) != 0)
        return 0;
    if (fs->ops->open(fs, "f.sst", PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE, &f) == 0) {
        if (size == 0 || fs->ops->append(fs, f, data, size) == 0) {
            struct ppdb_logger lg;
            ppdb_logger_init(&lg, PPDB_LOG_ERROR, "fuzz");
            lg.sink = null_sink;
            struct ppdb_table_read_options ro;
            ppdb_table_read_options_default(&ro);
            ro.logger = &lg;
            struct ppdb_cache *cache;
            if (ppdb_cache_new(1 << 16, 2, &cache) == 0) {
                struct ppdb_table *t;
                if (ppdb_table_open(fs, f, size, cache, 1, &ro, &t) == 0) {
                    exercise(t);
                    ppdb_table_close(t);
                }
                ppdb_cache_free(cache);
            }
        }
        fs->ops->close(fs, f);
    }
    ppdb_fs_destroy(fs);
    return 0;
}
