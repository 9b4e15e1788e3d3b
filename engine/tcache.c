/*
 * tcache.c - the table cache: a bounded set of open table readers.
 *
 * A database that runs for months accumulates far more tables than it may
 * keep file descriptors (and maps) for, so readers are opened on demand and
 * kept in an LRU of at most max_open_files entries. It reuses the sharded
 * cache of table.h with a charge of 1 per table (2 shards, so the bound is
 * max_open_files rounded up to even). A handle pins a reader; an evicted
 * reader closes (table, then file) once its last handle is released.
 *
 * All tables share one block-cache id (the db's), so blocks of a table that
 * was closed by the LRU are found again when it is reopened.
 *
 * Invariants: a reader is open iff its cache entry is alive; the manifest's
 * size of a table is checked against the file at every open.
 */
#include <inttypes.h>
#include <stdio.h>

#include "engine_int.h"

#define TCACHE_SHARD_BITS 1u

struct tcache {
    struct ppdb_fs *fs;
    char *dir;
    struct ppdb_cache *lru;
    struct ppdb_cache *blocks; /* borrowed; may be NULL */
    uint64_t block_cache_id;
    struct ppdb_logger *lg;
};

struct open_table {
    struct ppdb_fs *fs;
    struct ppdb_file *file;
    struct ppdb_table *table;
};

static void close_table_cb(void *value, size_t charge)
{
    struct open_table *ot = value;
    (void)charge;
    if (ot->table)
        ppdb_table_close(ot->table);
    if (ot->file)
        ot->fs->ops->close(ot->fs, ot->file);
    ppdb_free(ot);
}

int tcache_new(struct ppdb_fs *fs, const char *dir, struct ppdb_cache *block_cache,
               struct ppdb_logger *lg, size_t max_open, struct tcache **tc_out)
{
    struct tcache *tc = ppdb_calloc(1, sizeof(*tc));
    if (!tc)
        return PPDB_ENOMEM;
    tc->fs = fs;
    tc->lg = lg;
    tc->blocks = block_cache;
    tc->block_cache_id = block_cache ? ppdb_cache_new_id(block_cache) : 0;
    tc->dir = ppdb_strdup(dir);
    int rc = tc->dir ? ppdb_cache_new(max_open, TCACHE_SHARD_BITS, &tc->lru) : PPDB_ENOMEM;
    if (rc) {
        ppdb_free(tc->dir);
        ppdb_free(tc);
        return rc;
    }
    *tc_out = tc;
    return 0;
}

void tcache_free(struct tcache *tc)
{
    if (!tc)
        return;
    ppdb_cache_free(tc->lru);
    ppdb_free(tc->dir);
    ppdb_free(tc);
}

static int open_one(struct tcache *tc, const struct vfile *f, struct open_table **out)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%06" PRIu64 ".sst", tc->dir, f->number);
    struct open_table *ot = ppdb_calloc(1, sizeof(*ot));
    if (!ot)
        return PPDB_ENOMEM;
    ot->fs = tc->fs;
    uint64_t size = 0;
    int rc = tc->fs->ops->open(tc->fs, path, PPDB_FS_READ, &ot->file);
    if (rc == PPDB_ENOENT)
        rc = PPDB_ECORRUPT; /* the manifest names a table that is not there */
    if (!rc)
        rc = tc->fs->ops->size(tc->fs, ot->file, &size);
    if (!rc && size != f->size)
        rc = PPDB_ECORRUPT;
    struct ppdb_table_read_options ro;
    ppdb_table_read_options_default(&ro);
    ro.logger = tc->lg;
    ro.cache_id = tc->block_cache_id;
    if (!rc)
        rc = ppdb_table_open(tc->fs, ot->file, size, tc->blocks, f->number, &ro, &ot->table);
    if (rc) {
        PPDB_LOG(tc->lg, PPDB_LOG_ERROR, "engine", "cannot open table", "file=%s err=%s", path,
                 ppdb_errname(rc));
        close_table_cb(ot, 1);
        return rc;
    }
    *out = ot;
    return 0;
}

int tcache_get(struct tcache *tc, const struct vfile *f, struct tcache_handle **h_out)
{
    struct ppdb_cache_key k = {.id = 1, .file = f->number, .off = 0};
    struct ppdb_cache_handle *h = ppdb_cache_lookup(tc->lru, &k);
    if (h) {
        *h_out = (struct tcache_handle *)h;
        return 0;
    }
    struct open_table *ot;
    int rc = open_one(tc, f, &ot);
    if (!rc)
        rc = ppdb_cache_insert(tc->lru, &k, ot, 1, close_table_cb, &h);
    if (!rc)
        *h_out = (struct tcache_handle *)h;
    return rc;
}

struct ppdb_table *tcache_table(struct tcache_handle *h)
{
    struct open_table *ot = ppdb_cache_value((struct ppdb_cache_handle *)h);
    return ot->table;
}

void tcache_release(struct tcache *tc, struct tcache_handle *h)
{
    ppdb_cache_release(tc->lru, (struct ppdb_cache_handle *)h);
}

void tcache_evict(struct tcache *tc, uint64_t number)
{
    struct ppdb_cache_key k = {.id = 1, .file = number, .off = 0};
    ppdb_cache_erase(tc->lru, &k);
}

void tcache_stats(struct tcache *tc, uint64_t *hits, uint64_t *misses)
{
    struct ppdb_cache_stats st;
    ppdb_cache_stats(tc->lru, &st);
    *hits = st.hits;
    *misses = st.misses;
}
