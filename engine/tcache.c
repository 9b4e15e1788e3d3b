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
 * Pins. A get probes a table per level, so with every probe going through
 * the LRU (shard mutex, refcount, list moves) two threads reading the same
 * few tables took turns on the same two shard locks and cache lines: gets
 * on 2 threads ran slower than on one. So the first get that finds a
 * table's reader here leaves its handle in the vfile (vfile.pinned), and
 * later gets read the pointer, nothing more: the vfile lives as long as a
 * version naming it, and a reader holds its version. The pin goes back at
 * the vfile's last unref, before an obsolete table is deleted. At most
 * max_open_files / 2 readers are pinned (first come; compactions replace
 * tables, so the pinned set follows the live one); a pinned entry counts
 * against its shard like any in-use one, and no shard holds more pins than
 * its share of the bound, so open tables stay within max_open_files (plus
 * handles in use) as before, and at least half the bound is left to the
 * LRU for the rest, iterators and compactions.
 *
 * Two gets that miss on one table at once both open it, and the second to
 * insert keeps the first one's reader (ppdb_cache_insert_if_absent): a
 * table has one reader at a time, so the one a vfile pins is the one the
 * LRU counts.
 *
 * Invariants: a reader is open iff its cache entry is alive; the manifest's
 * size of a table is checked against the file at every open; npinned
 * counts the vfiles holding a handle, and never exceeds pin_max.
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
    size_t pin_max;        /* max_open / 2 */
    atomic_size_t npinned; /* handles held by vfiles */
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
    tc->pin_max = max_open / 2;
    atomic_init(&tc->npinned, 0);
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
    PPDB_ASSERT_CMP(atomic_load(&tc->npinned), ==, 0); /* every vfile released */
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
        rc = ppdb_cache_insert_if_absent(tc->lru, &k, ot, 1, close_table_cb, &h);
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

/* Takes one of the pin budget's places, if one is left. */
static bool take_pin(struct tcache *tc)
{
    if (atomic_load_explicit(&tc->npinned, memory_order_relaxed) >= tc->pin_max)
        return false;
    if (atomic_fetch_add_explicit(&tc->npinned, 1, memory_order_relaxed) < tc->pin_max)
        return true;
    atomic_fetch_sub_explicit(&tc->npinned, 1, memory_order_relaxed); /* lost a race */
    return false;
}

int tcache_find(struct tcache *tc, struct vfile *f, struct ppdb_table **t_out,
                struct tcache_handle **h_out)
{
    struct tcache_handle *h = atomic_load_explicit(&f->pinned, memory_order_acquire);
    if (PPDB_LIKELY(h != NULL)) {
        *t_out = tcache_table(h);
        *h_out = NULL;
        return 0;
    }
    int rc = tcache_get(tc, f, &h);
    if (rc)
        return rc;
    *t_out = tcache_table(h);
    *h_out = h;
    if (!f->owner || f->owner->tc != tc || !take_pin(tc))
        return 0;
    struct tcache_handle *none = NULL;
    if (atomic_compare_exchange_strong_explicit(&f->pinned, &none, h, memory_order_acq_rel,
                                                memory_order_acquire)) {
        *h_out = NULL; /* f holds it now */
        return 0;
    }
    atomic_fetch_sub_explicit(&tc->npinned, 1, memory_order_relaxed); /* another get pinned f */
    return 0;
}

void tcache_unpin(struct tcache *tc, struct vfile *f)
{
    struct tcache_handle *h = atomic_exchange_explicit(&f->pinned, NULL, memory_order_acq_rel);
    if (!h)
        return;
    tcache_release(tc, h);
    atomic_fetch_sub_explicit(&tc->npinned, 1, memory_order_relaxed);
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
