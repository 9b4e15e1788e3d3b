/*
 * kv_lmdb.c - the benchmark's adapter for LMDB (Debian's liblmdb, <lmdb.h>).
 *
 * LMDB is a copy-on-write B+tree in one memory map, with no memtable, no
 * compression and no block cache (the page cache is its cache). Settings:
 * a map large enough for the run (set by the driver from N), MDB_NOSYNC for
 * every database except the fillsync ones (so a commit of a non-synced
 * workload writes pages but never fsyncs, the counterpart of the LSM engines'
 * unsynced log appends), MDB_NORDAHEAD. Each write call is one write txn;
 * the driver decides how many puts go into one (see --lmdb-txn-ops).
 * "compact" is mdb_env_sync(force): the end of its background work.
 *
 * Invariant: a reader is one read-only txn (a snapshot) plus a cursor, used
 * by one thread for one workload; it is closed before the next write.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "engine_bench.h"
#include "ppdb_base.h"

struct bench_kv {
    MDB_env *env;
    MDB_dbi dbi;
};

struct bench_kv_reader {
    struct bench_kv *kv;
    MDB_txn *txn;
    MDB_cursor *cur;
};

static int check_rc(int rc, const char *what)
{
    if (rc == 0)
        return 0;
    fprintf(stderr, "lmdb: %s: %s\n", what, mdb_strerror(rc));
    return rc == ENOMEM ? PPDB_ENOMEM : PPDB_EIO;
}

static int open_dbi(struct bench_kv *kv)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(kv->env, NULL, 0, &txn);
    if (rc)
        return check_rc(rc, "txn_begin");
    rc = mdb_dbi_open(txn, NULL, 0, &kv->dbi);
    if (rc) {
        mdb_txn_abort(txn);
        return check_rc(rc, "dbi_open");
    }
    return check_rc(mdb_txn_commit(txn), "commit");
}

static int lmdb_open(const struct bench_kv_config *cfg, struct bench_kv **kv_out)
{
    struct bench_kv *kv = ppdb_calloc(1, sizeof(*kv));
    if (!kv)
        return PPDB_ENOMEM;
    (void)mkdir(cfg->dir, 0755);
    unsigned flags = MDB_NORDAHEAD | (cfg->sync_writes ? 0 : MDB_NOSYNC);
    int rc = check_rc(mdb_env_create(&kv->env), "env_create");
    if (rc == 0)
        rc = check_rc(mdb_env_set_mapsize(kv->env, (size_t)cfg->map_bytes), "set_mapsize");
    if (rc == 0)
        rc = check_rc(mdb_env_open(kv->env, cfg->dir, flags, 0644), "env_open");
    if (rc == 0)
        rc = open_dbi(kv);
    if (rc) {
        if (kv->env)
            mdb_env_close(kv->env);
        ppdb_free(kv);
        return rc;
    }
    *kv_out = kv;
    return 0;
}

static void lmdb_close(struct bench_kv *kv)
{
    mdb_env_close(kv->env);
    ppdb_free(kv);
}

static int lmdb_write(struct bench_kv *kv, const struct bench_kv_op *ops, size_t n, bool sync)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(kv->env, NULL, 0, &txn);
    if (rc)
        return check_rc(rc, "txn_begin");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        MDB_val k = {.mv_size = ops[i].klen, .mv_data = (void *)ops[i].key};
        if (ops[i].val) {
            MDB_val v = {.mv_size = ops[i].vlen, .mv_data = (void *)ops[i].val};
            rc = mdb_put(txn, kv->dbi, &k, &v, 0);
        } else {
            rc = mdb_del(txn, kv->dbi, &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        }
    }
    if (rc) {
        mdb_txn_abort(txn);
        return check_rc(rc, "put");
    }
    /* A synced database (no MDB_NOSYNC) fsyncs in commit; `sync` is implied. */
    (void)sync;
    return check_rc(mdb_txn_commit(txn), "commit");
}

static int lmdb_reader_open(struct bench_kv *kv, struct bench_kv_reader **r_out)
{
    struct bench_kv_reader *r = ppdb_calloc(1, sizeof(*r));
    if (!r)
        return PPDB_ENOMEM;
    r->kv = kv;
    int rc = mdb_txn_begin(kv->env, NULL, MDB_RDONLY, &r->txn);
    if (rc == 0) {
        rc = mdb_cursor_open(r->txn, kv->dbi, &r->cur);
        if (rc)
            mdb_txn_abort(r->txn);
    }
    if (rc) {
        ppdb_free(r);
        return check_rc(rc, "read txn");
    }
    *r_out = r;
    return 0;
}

static void lmdb_reader_close(struct bench_kv_reader *r)
{
    mdb_cursor_close(r->cur);
    mdb_txn_abort(r->txn);
    ppdb_free(r);
}

static int lmdb_get(struct bench_kv_reader *r, const char *key, size_t klen, bool *found_out)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    int rc = mdb_get(r->txn, r->kv->dbi, &k, &v);
    *found_out = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : check_rc(rc, "get");
}

/* Positions with op (MDB_FIRST or MDB_SET_RANGE) and reads up to max. */
static int walk(struct bench_kv_reader *r, MDB_val *k, MDB_cursor_op op, uint64_t max,
                uint64_t *count_out)
{
    MDB_val v;
    uint64_t n = 0;
    int rc = max ? mdb_cursor_get(r->cur, k, &v, op) : MDB_NOTFOUND;
    while (rc == 0) {
        n++;
        if (n >= max)
            break;
        rc = mdb_cursor_get(r->cur, k, &v, MDB_NEXT);
    }
    *count_out = n;
    return rc == MDB_NOTFOUND ? 0 : check_rc(rc, "cursor");
}

static int lmdb_scan_all(struct bench_kv_reader *r, uint64_t max, uint64_t *count_out)
{
    MDB_val k;
    return walk(r, &k, MDB_FIRST, max, count_out);
}

static int lmdb_seek(struct bench_kv_reader *r, const char *key, size_t klen, int nexts,
                     uint64_t *count_out)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    return walk(r, &k, MDB_SET_RANGE, (uint64_t)nexts, count_out);
}

static int lmdb_compact(struct bench_kv *kv)
{
    return check_rc(mdb_env_sync(kv->env, 1), "env_sync");
}

const struct bench_kv_ops bench_kv_lmdb = {
    .name = "lmdb",
    .compression_name = "none",
    .open = lmdb_open,
    .close = lmdb_close,
    .write = lmdb_write,
    .reader_open = lmdb_reader_open,
    .reader_close = lmdb_reader_close,
    .get = lmdb_get,
    .scan_all = lmdb_scan_all,
    .seek = lmdb_seek,
    .compact = lmdb_compact,
};
