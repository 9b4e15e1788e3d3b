/*
 * kv_rocksdb.c - the benchmark's adapter for RocksDB (Debian's librocksdb,
 * through its C API <rocksdb/c.h>).
 *
 * RocksDB's defaults differ a lot from LevelDB's (64 MiB memtables and
 * files, 256 MiB L1, L0 triggers 4/20/36), so they are set equal to
 * LevelDB's: 4 MiB write buffer, 2 MiB target file size, 10 MiB level base,
 * L0 triggers 4/8/12, 4 KiB blocks, 8 MiB LRU block cache, 10-bit bloom,
 * snappy or none. Its background job count stays at its default (2).
 *
 * Invariant: the block-based table options own the filter policy (RocksDB
 * wraps it in a shared pointer); the cache is ours and freed after the db.
 */
#include <stdio.h>

#include <rocksdb/c.h>

#include "engine_bench.h"
#include "ppdb_base.h"

struct bench_kv {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *w_nosync;
    rocksdb_writeoptions_t *w_sync;
    rocksdb_readoptions_t *ropts;
};

struct bench_kv_reader {
    struct bench_kv *kv;
};

static int check_err(char *err, const char *what)
{
    if (!err)
        return 0;
    fprintf(stderr, "rocksdb: %s: %s\n", what, err);
    rocksdb_free(err);
    return PPDB_EIO;
}

static void free_kv(struct bench_kv *kv)
{
    if (kv->db)
        rocksdb_close(kv->db);
    rocksdb_options_destroy(kv->opts);
    rocksdb_block_based_options_destroy(kv->topts);
    rocksdb_cache_destroy(kv->cache);
    rocksdb_writeoptions_destroy(kv->w_nosync);
    rocksdb_writeoptions_destroy(kv->w_sync);
    rocksdb_readoptions_destroy(kv->ropts);
    ppdb_free(kv);
}

static void set_options(struct bench_kv *kv, const struct bench_kv_config *cfg)
{
    kv->topts = rocksdb_block_based_options_create();
    kv->cache = rocksdb_cache_create_lru(cfg->block_cache_bytes);
    rocksdb_block_based_options_set_block_size(kv->topts, cfg->block_bytes);
    rocksdb_block_based_options_set_block_cache(kv->topts, kv->cache);
    rocksdb_block_based_options_set_filter_policy(
        kv->topts, rocksdb_filterpolicy_create_bloom(cfg->bloom_bits_per_key));
    kv->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(kv->opts, 1);
    rocksdb_options_set_block_based_table_factory(kv->opts, kv->topts);
    rocksdb_options_set_write_buffer_size(kv->opts, cfg->write_buffer_bytes);
    rocksdb_options_set_target_file_size_base(kv->opts, cfg->table_file_bytes);
    rocksdb_options_set_max_bytes_for_level_base(kv->opts, 10u << 20);
    rocksdb_options_set_level0_file_num_compaction_trigger(kv->opts, 4);
    rocksdb_options_set_level0_slowdown_writes_trigger(kv->opts, 8);
    rocksdb_options_set_level0_stop_writes_trigger(kv->opts, 12);
    rocksdb_options_set_max_open_files(kv->opts, 1000);
    rocksdb_options_set_compression(kv->opts, cfg->compression ? rocksdb_snappy_compression
                                                               : rocksdb_no_compression);
}

static int rdb_open(const struct bench_kv_config *cfg, struct bench_kv **kv_out)
{
    struct bench_kv *kv = ppdb_calloc(1, sizeof(*kv));
    if (!kv)
        return PPDB_ENOMEM;
    set_options(kv, cfg);
    kv->w_nosync = rocksdb_writeoptions_create();
    kv->w_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(kv->w_sync, 1);
    kv->ropts = rocksdb_readoptions_create();
    char *err = NULL;
    kv->db = rocksdb_open(kv->opts, cfg->dir, &err);
    int rc = check_err(err, "open");
    if (rc) {
        free_kv(kv);
        return rc;
    }
    *kv_out = kv;
    return 0;
}

static int rdb_write(struct bench_kv *kv, const struct bench_kv_op *ops, size_t n, bool sync)
{
    rocksdb_writeoptions_t *w = sync ? kv->w_sync : kv->w_nosync;
    char *err = NULL;
    if (n == 1 && ops[0].val) {
        rocksdb_put(kv->db, w, ops[0].key, ops[0].klen, ops[0].val, ops[0].vlen, &err);
    } else if (n == 1) {
        rocksdb_delete(kv->db, w, ops[0].key, ops[0].klen, &err);
    } else {
        rocksdb_writebatch_t *b = rocksdb_writebatch_create();
        for (size_t i = 0; i < n; i++) {
            if (ops[i].val)
                rocksdb_writebatch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
            else
                rocksdb_writebatch_delete(b, ops[i].key, ops[i].klen);
        }
        rocksdb_write(kv->db, w, b, &err);
        rocksdb_writebatch_destroy(b);
    }
    return check_err(err, "write");
}

static int rdb_reader_open(struct bench_kv *kv, struct bench_kv_reader **r_out)
{
    struct bench_kv_reader *r = ppdb_calloc(1, sizeof(*r));
    if (!r)
        return PPDB_ENOMEM;
    r->kv = kv;
    *r_out = r;
    return 0;
}

static void rdb_reader_close(struct bench_kv_reader *r)
{
    ppdb_free(r);
}

static int rdb_get(struct bench_kv_reader *r, const char *key, size_t klen, bool *found_out)
{
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get(r->kv->db, r->kv->ropts, key, klen, &vlen, &err);
    *found_out = v != NULL;
    rocksdb_free(v);
    return check_err(err, "get");
}

/* Seeks to key (NULL: the first) and reads up to max entries. */
static int iterate(struct bench_kv_reader *r, const char *key, size_t klen, uint64_t max,
                   uint64_t *count_out)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(r->kv->db, r->kv->ropts);
    if (key)
        rocksdb_iter_seek(it, key, klen);
    else
        rocksdb_iter_seek_to_first(it);
    uint64_t n = 0;
    size_t kl, vl;
    for (; n < max && rocksdb_iter_valid(it); rocksdb_iter_next(it), n++) {
        (void)rocksdb_iter_key(it, &kl);
        (void)rocksdb_iter_value(it, &vl);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    *count_out = n;
    return check_err(err, "iterate");
}

static int rdb_scan_all(struct bench_kv_reader *r, uint64_t max, uint64_t *count_out)
{
    return iterate(r, NULL, 0, max, count_out);
}

static int rdb_seek(struct bench_kv_reader *r, const char *key, size_t klen, int nexts,
                    uint64_t *count_out)
{
    return iterate(r, key, klen, (uint64_t)nexts, count_out);
}

static int rdb_compact(struct bench_kv *kv)
{
    rocksdb_compact_range(kv->db, NULL, 0, NULL, 0);
    return 0;
}

static void rdb_close(struct bench_kv *kv)
{
    free_kv(kv);
}

const struct bench_kv_ops bench_kv_rocksdb = {
    .name = "rocksdb",
    .compression_name = "snappy",
    .open = rdb_open,
    .close = rdb_close,
    .write = rdb_write,
    .reader_open = rdb_reader_open,
    .reader_close = rdb_reader_close,
    .get = rdb_get,
    .scan_all = rdb_scan_all,
    .seek = rdb_seek,
    .compact = rdb_compact,
};
