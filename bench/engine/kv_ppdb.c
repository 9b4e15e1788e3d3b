/*
 * kv_ppdb.c - the benchmark's adapter for PPDB's own engine, written only
 * against the public header ppdb_engine.h over the POSIX fs seam.
 *
 * APIs the engine does not offer yet are left NULL in the ops table, so the
 * driver prints "n/a (API pending)" instead of a number. CMake probes the
 * header (bench/CMakeLists.txt) and defines PPDB_BENCH_PPDB_COMPACT and
 * PPDB_BENCH_PPDB_ITER when compact-range and iterators appear, with the
 * signatures these calls use; the ops are wired in then.
 *
 * Invariant: one reader per thread; a reader owns the value buffer its gets
 * copy into, so reads never allocate after the first.
 */

#include "engine_bench.h"
#include "ppdb_engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct bench_kv {
    struct ppdb_fs *fs;
    struct ppdb_db *db;
};

struct bench_kv_reader {
    struct bench_kv *kv;
    struct ppdb_buf val;
};

static int ppdb_open(const struct bench_kv_config *cfg, struct bench_kv **kv_out)
{
    struct bench_kv *kv = ppdb_calloc(1, sizeof(*kv));
    if (!kv)
        return PPDB_ENOMEM;
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.create_if_missing = true;
    o.memtable_bytes = cfg->write_buffer_bytes;
    o.block_bytes = cfg->block_bytes;
    o.block_cache_bytes = cfg->block_cache_bytes;
    o.bloom_bits_per_key = cfg->bloom_bits_per_key;
    o.compression = cfg->compression ? PPDB_DB_COMPRESS_LZ4 : PPDB_DB_COMPRESS_NONE;
    o.sync_policy = PPDB_SYNC_PER_WRITE;
    int rc = ppdb_fs_posix_new(&kv->fs);
    if (rc == 0) {
        rc = ppdb_db_open(kv->fs, cfg->dir, &o, &kv->db);
        if (rc)
            ppdb_fs_destroy(kv->fs);
    }
    if (rc) {
        ppdb_free(kv);
        return rc;
    }
    *kv_out = kv;
    return 0;
}

/* With PPDB_BENCH_STATS set, the engine's counters go to stderr at close
 * (write stalls, compaction bytes): for diagnosis, not part of the report. */
static void dump_stats(struct ppdb_db *db)
{
    struct ppdb_db_stats s;
    ppdb_db_get_stats(db, &s);
    fprintf(stderr,
            "ppdb stats: writes=%" PRIu64 " groups=%" PRIu64 " flushes=%" PRIu64 " stalls=%" PRIu64
            " stall_us=%" PRIu64 " l0_slowdowns=%" PRIu64 " l0_slowdown_us=%" PRIu64
            " l0_stops=%" PRIu64 " l0_stop_us=%" PRIu64 " compactions=%" PRIu64 " trivial=%" PRIu64
            " flush_bytes=%" PRIu64 " compact_read=%" PRIu64 " compact_write=%" PRIu64
            " wamp=%.2f\n",
            s.writes, s.groups, s.flushes, s.stalls, s.stall_us, s.l0_slowdowns, s.l0_slowdown_us,
            s.l0_stops, s.l0_stop_us, s.compactions, s.trivial_moves, s.flush_bytes,
            s.compact_read_bytes, s.compact_write_bytes, s.write_amplification);
}

static void ppdb_close(struct bench_kv *kv)
{
    if (getenv("PPDB_BENCH_STATS"))
        dump_stats(kv->db);
    ppdb_db_close(kv->db);
    ppdb_fs_destroy(kv->fs);
    ppdb_free(kv);
}

static int write_batch(struct bench_kv *kv, const struct bench_kv_op *ops, size_t n,
                       const struct ppdb_write_options *w)
{
    struct ppdb_batch *b;
    int rc = ppdb_batch_new(&b);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ops[i].val)
            rc = ppdb_batch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
        else
            rc = ppdb_batch_delete(b, ops[i].key, ops[i].klen);
    }
    if (rc == 0)
        rc = ppdb_db_write(kv->db, w, b);
    ppdb_batch_free(b);
    return rc;
}

static int ppdb_write(struct bench_kv *kv, const struct bench_kv_op *ops, size_t n, bool sync)
{
    struct ppdb_write_options w = {.sync = sync};
    if (n > 1)
        return write_batch(kv, ops, n, &w);
    if (ops[0].val)
        return ppdb_db_put(kv->db, &w, ops[0].key, ops[0].klen, ops[0].val, ops[0].vlen);
    return ppdb_db_delete(kv->db, &w, ops[0].key, ops[0].klen);
}

static int ppdb_reader_open(struct bench_kv *kv, struct bench_kv_reader **r_out)
{
    struct bench_kv_reader *r = ppdb_calloc(1, sizeof(*r));
    if (!r)
        return PPDB_ENOMEM;
    r->kv = kv;
    ppdb_buf_init(&r->val);
    *r_out = r;
    return 0;
}

static void ppdb_reader_close(struct bench_kv_reader *r)
{
    ppdb_buf_deinit(&r->val);
    ppdb_free(r);
}

static int ppdb_get_key(struct bench_kv_reader *r, const char *key, size_t klen, bool *found_out)
{
    int rc = ppdb_db_get(r->kv->db, NULL, key, klen, &r->val, NULL);
    *found_out = rc == 0;
    return rc == PPDB_ENOTFOUND ? 0 : rc;
}

static int ppdb_flush_mem(struct bench_kv *kv)
{
    return ppdb_db_flush(kv->db);
}

static int ppdb_stats(struct bench_kv *kv, struct bench_kv_stats *out)
{
    struct ppdb_db_stats s;
    ppdb_db_get_stats(kv->db, &s);
    out->writes = s.synced_writes;
    out->syncs = s.syncs;
    return 0;
}

#ifdef PPDB_BENCH_PPDB_COMPACT
static int ppdb_compact(struct bench_kv *kv)
{
    return ppdb_db_compact_range(kv->db, NULL, 0, NULL, 0);
}
#endif

#ifdef PPDB_BENCH_PPDB_ITER
static int ppdb_scan_all(struct bench_kv_reader *r, uint64_t max, uint64_t *count_out)
{
    struct ppdb_iter *it;
    int rc = ppdb_db_iter_new(r->kv->db, NULL, &it);
    if (rc)
        return rc;
    uint64_t n = 0;
    size_t klen, vlen;
    for (ppdb_iter_seek_first(it); n < max && ppdb_iter_valid(it); ppdb_iter_next(it), n++) {
        (void)ppdb_iter_key(it, &klen);
        (void)ppdb_iter_value(it, &vlen);
    }
    rc = ppdb_iter_status(it);
    ppdb_iter_free(it);
    *count_out = n;
    return rc;
}

static int ppdb_seek(struct bench_kv_reader *r, const char *key, size_t klen, int nexts,
                     uint64_t *count_out)
{
    struct ppdb_iter *it;
    int rc = ppdb_db_iter_new(r->kv->db, NULL, &it);
    if (rc)
        return rc;
    uint64_t n = 0;
    size_t kl, vl;
    for (ppdb_iter_seek(it, key, klen); (int)n < nexts && ppdb_iter_valid(it);
         ppdb_iter_next(it), n++) {
        (void)ppdb_iter_key(it, &kl);
        (void)ppdb_iter_value(it, &vl);
    }
    rc = ppdb_iter_status(it);
    ppdb_iter_free(it);
    *count_out = n;
    return rc;
}
#endif

const struct bench_kv_ops bench_kv_ppdb = {
    .name = "ppdb",
    .compression_name = "lz4",
    .open = ppdb_open,
    .close = ppdb_close,
    .write = ppdb_write,
    .reader_open = ppdb_reader_open,
    .reader_close = ppdb_reader_close,
    .get = ppdb_get_key,
#ifdef PPDB_BENCH_PPDB_ITER
    .scan_all = ppdb_scan_all,
    .seek = ppdb_seek,
#endif
#ifdef PPDB_BENCH_PPDB_COMPACT
    .compact = ppdb_compact,
#endif
    .flush = ppdb_flush_mem,
    .stats = ppdb_stats,
};
