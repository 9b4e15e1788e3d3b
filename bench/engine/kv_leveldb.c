/*
 * kv_leveldb.c - the benchmark's adapter for LevelDB (Debian's libleveldb,
 * through its C API <leveldb/c.h>).
 *
 * Settings as in the issue: 4 MiB write buffer, 2 MiB table files (LevelDB's
 * default, set explicitly), 4 KiB blocks, 8 MiB LRU block cache, 10-bit bloom
 * filter, snappy or no compression. Single writes are leveldb_put/delete
 * (one op per write, as db_bench does); n > 1 is a write batch.
 *
 * Invariant: the options, cache and filter outlive the db (freed after it).
 */
#include <stdio.h>

#include <leveldb/c.h>

#include "engine_bench.h"
#include "ppdb_base.h"

struct bench_kv {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_writeoptions_t *w_nosync;
    leveldb_writeoptions_t *w_sync;
    leveldb_readoptions_t *ropts;
};

struct bench_kv_reader {
    struct bench_kv *kv;
};

/* Reports and frees a LevelDB error string: PPDB_EIO, or 0 without one. */
static int check_err(char *err, const char *what)
{
    if (!err)
        return 0;
    fprintf(stderr, "leveldb: %s: %s\n", what, err);
    leveldb_free(err);
    return PPDB_EIO;
}

static void free_kv(struct bench_kv *kv)
{
    if (kv->db)
        leveldb_close(kv->db);
    leveldb_options_destroy(kv->opts);
    leveldb_filterpolicy_destroy(kv->filter);
    leveldb_cache_destroy(kv->cache);
    leveldb_writeoptions_destroy(kv->w_nosync);
    leveldb_writeoptions_destroy(kv->w_sync);
    leveldb_readoptions_destroy(kv->ropts);
    ppdb_free(kv);
}

static int ldb_open(const struct bench_kv_config *cfg, struct bench_kv **kv_out)
{
    struct bench_kv *kv = ppdb_calloc(1, sizeof(*kv));
    if (!kv)
        return PPDB_ENOMEM;
    kv->opts = leveldb_options_create();
    kv->cache = leveldb_cache_create_lru(cfg->block_cache_bytes);
    kv->filter = leveldb_filterpolicy_create_bloom(cfg->bloom_bits_per_key);
    leveldb_options_set_create_if_missing(kv->opts, 1);
    leveldb_options_set_write_buffer_size(kv->opts, cfg->write_buffer_bytes);
    leveldb_options_set_max_file_size(kv->opts, cfg->table_file_bytes);
    leveldb_options_set_block_size(kv->opts, cfg->block_bytes);
    leveldb_options_set_cache(kv->opts, kv->cache);
    leveldb_options_set_filter_policy(kv->opts, kv->filter);
    leveldb_options_set_compression(kv->opts, cfg->compression ? leveldb_snappy_compression
                                                               : leveldb_no_compression);
    kv->w_nosync = leveldb_writeoptions_create();
    kv->w_sync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(kv->w_sync, 1);
    kv->ropts = leveldb_readoptions_create();
    char *err = NULL;
    kv->db = leveldb_open(kv->opts, cfg->dir, &err);
    int rc = check_err(err, "open");
    if (rc) {
        free_kv(kv);
        return rc;
    }
    *kv_out = kv;
    return 0;
}

static int ldb_write(struct bench_kv *kv, const struct bench_kv_op *ops, size_t n, bool sync)
{
    leveldb_writeoptions_t *w = sync ? kv->w_sync : kv->w_nosync;
    char *err = NULL;
    if (n == 1 && ops[0].val) {
        leveldb_put(kv->db, w, ops[0].key, ops[0].klen, ops[0].val, ops[0].vlen, &err);
    } else if (n == 1) {
        leveldb_delete(kv->db, w, ops[0].key, ops[0].klen, &err);
    } else {
        leveldb_writebatch_t *b = leveldb_writebatch_create();
        for (size_t i = 0; i < n; i++) {
            if (ops[i].val)
                leveldb_writebatch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
            else
                leveldb_writebatch_delete(b, ops[i].key, ops[i].klen);
        }
        leveldb_write(kv->db, w, b, &err);
        leveldb_writebatch_destroy(b);
    }
    return check_err(err, "write");
}

static int ldb_reader_open(struct bench_kv *kv, struct bench_kv_reader **r_out)
{
    struct bench_kv_reader *r = ppdb_calloc(1, sizeof(*r));
    if (!r)
        return PPDB_ENOMEM;
    r->kv = kv;
    *r_out = r;
    return 0;
}

static void ldb_reader_close(struct bench_kv_reader *r)
{
    ppdb_free(r);
}

static int ldb_get(struct bench_kv_reader *r, const char *key, size_t klen, bool *found_out)
{
    char *err = NULL;
    size_t vlen = 0;
    char *v = leveldb_get(r->kv->db, r->kv->ropts, key, klen, &vlen, &err);
    *found_out = v != NULL;
    leveldb_free(v);
    return check_err(err, "get");
}

static int ldb_scan_all(struct bench_kv_reader *r, uint64_t max, uint64_t *count_out)
{
    leveldb_iterator_t *it = leveldb_create_iterator(r->kv->db, r->kv->ropts);
    uint64_t n = 0;
    size_t kl, vl;
    for (leveldb_iter_seek_to_first(it); n < max && leveldb_iter_valid(it);
         leveldb_iter_next(it), n++) {
        (void)leveldb_iter_key(it, &kl);
        (void)leveldb_iter_value(it, &vl);
    }
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    *count_out = n;
    return check_err(err, "iterate");
}

static int ldb_seek(struct bench_kv_reader *r, const char *key, size_t klen, int nexts,
                    uint64_t *count_out)
{
    leveldb_iterator_t *it = leveldb_create_iterator(r->kv->db, r->kv->ropts);
    uint64_t n = 0;
    size_t kl, vl;
    for (leveldb_iter_seek(it, key, klen); (int)n < nexts && leveldb_iter_valid(it);
         leveldb_iter_next(it), n++) {
        (void)leveldb_iter_key(it, &kl);
        (void)leveldb_iter_value(it, &vl);
    }
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    *count_out = n;
    return check_err(err, "seek");
}

static int ldb_compact(struct bench_kv *kv)
{
    leveldb_compact_range(kv->db, NULL, 0, NULL, 0);
    return 0;
}

static void ldb_close(struct bench_kv *kv)
{
    free_kv(kv);
}

const struct bench_kv_ops bench_kv_leveldb = {
    .name = "leveldb",
    .compression_name = "snappy",
    .open = ldb_open,
    .close = ldb_close,
    .write = ldb_write,
    .reader_open = ldb_reader_open,
    .reader_close = ldb_reader_close,
    .get = ldb_get,
    .scan_all = ldb_scan_all,
    .seek = ldb_seek,
    .compact = ldb_compact,
};
