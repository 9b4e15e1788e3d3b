/*
 * engine_int.h - internals of the engine's write path, read path and
 * recovery (not installed; the public header is ppdb_engine.h).
 *
 * The pieces, bottom up:
 *
 *   batch     the encoding of a write batch; it is also the payload of one
 *             log record (a group commit concatenates batches into one):
 *
 *               +-----------+-----------+-------------------------------+
 *               | seq u64le | count u32le | entry * count               |
 *               +-----------+-----------+-------------------------------+
 *               entry = type u8 | version varint | klen varint | key
 *                       [ | vlen varint | value ]      (value: type VALUE)
 *
 *             Entry i of a record gets sequence number seq + i.
 *
 *   wal       the write-ahead log: records cut into fragments inside 32 KiB
 *             blocks, each fragment checksummed (docs/formats/wal.md).
 *
 *   memtable  an arena-allocated skiplist of internal keys (table.h): one
 *             writer at a time, readers without locks. Tracks the highest
 *             version it holds so reads can skip older sources.
 *
 *   version   the set of live table files per level (refcounted versions)
 *             and the MANIFEST of version edits that records it
 *             (docs/formats/manifest.md); a bounded table cache of open
 *             readers; internal merging iterators; leveled compaction.
 *
 *   db        ties them together: group commit, memtable switch and
 *             background flush, get across all sources, recovery at open.
 */
#ifndef PPDB_ENGINE_INT_H
#define PPDB_ENGINE_INT_H

#include <stdatomic.h>

#include "ppdb_engine.h"
#include "table.h"

/* ------------------------------------------------------------------ batch */

#define PPDB_BATCH_HEADER 12u /* seq u64le + count u32le */

struct ppdb_batch {
    struct ppdb_buf rep; /* header + entries; header seq filled in at write */
};

typedef int (*batch_entry_cb)(void *arg, uint64_t seq, int type, uint64_t version,
                              const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

void batch_set_seq(struct ppdb_buf *rep, uint64_t seq);
uint64_t batch_seq(const uint8_t *rep);
uint32_t batch_rep_count(const uint8_t *rep);
/* Appends src's entries to dst (a rep) and adds the counts. */
int batch_rep_append(struct ppdb_buf *dst, const uint8_t *src, size_t n);
/* Decodes rep and calls cb for each entry in order; PPDB_ECORRUPT if it is
 * malformed (checked completely before the first callback). */
int batch_rep_iterate(const uint8_t *rep, size_t n, batch_entry_cb cb, void *arg);
int batch_rep_validate(const uint8_t *rep, size_t n);

/* ------------------------------------------------------------------- wal */

#define PPDB_WAL_BLOCK  32768u
#define PPDB_WAL_HEADER 7u /* masked crc32c u32le | length u16le | type u8 */

enum wal_type {
    WAL_ZERO = 0, /* reserved: preallocated or zero-filled space */
    WAL_FULL = 1,
    WAL_FIRST = 2,
    WAL_MIDDLE = 3,
    WAL_LAST = 4
};
#define WAL_TYPE_MAX WAL_LAST

struct wal_writer {
    struct ppdb_fs *fs;
    struct ppdb_file *f;
    uint64_t number;
    uint64_t size;         /* bytes appended so far */
    struct ppdb_buf frame; /* scratch for one record's fragments */
};

/* Creates a new log file (it must not exist). */
int wal_writer_open(struct ppdb_fs *fs, const char *path, uint64_t number, struct wal_writer *w);
/* Appends one record with a single fs append. */
int wal_writer_add(struct wal_writer *w, const uint8_t *p, size_t n);
int wal_writer_sync(struct wal_writer *w);
/* Cuts the log back to `size` (the end of the last good record) and syncs:
 * drops whatever a failed append or sync may have left behind it. */
int wal_writer_rewind(struct wal_writer *w, uint64_t size);
int wal_writer_close(struct wal_writer *w);

enum wal_end {
    WAL_END_NONE = 0,
    WAL_END_CLEAN = 1, /* the file ended at a record boundary (or in zero fill) */
    WAL_END_TORN = 2,  /* the file ended inside a record, or in zero fill right after
                        * a damaged fragment: an append cut short */
    WAL_END_CORRUPT = 3
};

struct wal_reader {
    struct ppdb_fs *fs;
    struct ppdb_file *f;
    uint64_t file_size;
    uint8_t *block;        /* PPDB_WAL_BLOCK bytes */
    uint64_t block_off;    /* file offset of block[0] */
    uint32_t block_len;    /* bytes valid in block */
    uint32_t pos;          /* next header in block */
    struct ppdb_buf rec;   /* assembled record */
    int end;               /* enum wal_end once the reader stopped */
    uint64_t bad_off;      /* where corruption or the torn tail starts */
    const char *why;       /* reason of WAL_END_CORRUPT */
    uint64_t good_end_off; /* offset just past the last complete record */
};

/* The reader borrows f (an open log file) until deinit. */
int wal_reader_init(struct wal_reader *r, struct ppdb_fs *fs, struct ppdb_file *f);
void wal_reader_deinit(struct wal_reader *r);
/* Next record into p_out/n_out (valid until the next call): 0; or
 * PPDB_ENOTFOUND at the end (r->end says CLEAN or TORN); or PPDB_ECORRUPT
 * (r->end = CORRUPT, r->bad_off and r->why say where and why); or an fs
 * error. After a non-zero return, further calls return the same. */
int wal_reader_next(struct wal_reader *r, const uint8_t **p_out, size_t *n_out);

/* --------------------------------------------------------------- memtable */

struct mem_arena_block;
struct mem_arena {
    struct mem_arena_block *blocks;
    uint8_t *cur;
    size_t left;
    size_t bytes; /* total allocated, the memtable's memory */
};

#define MEM_MAX_HEIGHT 12

struct mem_node {
    const uint8_t *ikey;  /* follows next[] */
    const uint8_t *value; /* in the memtable's value arena */
    uint32_t iklen;
    uint32_t vlen;
    _Atomic(struct mem_node *) next[];
};

struct memtable {
    struct mem_arena arena;  /* nodes and their keys: what searches touch */
    struct mem_arena varena; /* values */
    struct mem_node *head;
    atomic_int height;
    atomic_size_t bytes;
    _Atomic uint64_t max_version;
    _Atomic uint64_t count;
    atomic_int refs;
    uint64_t rng;        /* tower heights; touched by the single writer only */
    uint64_t log_number; /* the log holding this memtable's writes */
};

/* One entry found by a lookup; pointers valid while the source is held. */
struct lookup_hit {
    bool found;
    int type;
    uint64_t version;
    uint64_t seq;
    struct ppdb_buf *value; /* receives a copy of the best hit's value */
};

int mem_new(struct memtable **m_out);
void mem_ref(struct memtable *m);
void mem_unref(struct memtable *m);
/* Single writer: callers serialize adds. */
int mem_add(struct memtable *m, uint64_t seq, int type, uint64_t version, const uint8_t *key,
            size_t klen, const uint8_t *val, size_t vlen);
/* Newest visible (seq <= snap_seq) entry of key with the highest version;
 * replaces *hit when better than it. 0, or ENOMEM copying the value. */
int mem_get(struct memtable *m, const uint8_t *key, size_t klen, uint64_t snap_seq,
            struct lookup_hit *hit);
size_t mem_usage(const struct memtable *m);
uint64_t mem_max_version(const struct memtable *m);
uint64_t mem_count(const struct memtable *m);

/* Ordered walk over all entries (for flush). */
struct mem_iter {
    struct memtable *m;
    struct mem_node *node;
};
/* Skiplist searches (lock-free, like mem_get): first node >= ikey; last
 * node < ikey (ikey NULL: the last node). NULL when there is none. */
struct mem_node *mem_find_ge(struct memtable *m, const uint8_t *ikey, size_t klen);
struct mem_node *mem_find_lt(struct memtable *m, const uint8_t *ikey, size_t klen);
void mem_iter_first(struct mem_iter *it, struct memtable *m);
static inline bool mem_iter_valid(const struct mem_iter *it)
{
    return it->node != NULL;
}
void mem_iter_next(struct mem_iter *it);
static inline const uint8_t *mem_iter_value(const struct mem_iter *it)
{
    return it->node->value;
}

/* --------------------------------------------------------------- version */

#define PPDB_NUM_LEVELS PPDB_DB_LEVELS

/* A table file as the version set knows it. The reader itself lives in the
 * table cache (tcache below), opened on demand and closed by LRU, unless a
 * get pinned it here (tcache_find). */
struct tcache_handle;
struct vfile {
    uint64_t number;
    uint64_t size;
    uint64_t max_version;
    uint64_t max_seq;
    struct ppdb_buf smallest; /* smallest internal key */
    struct ppdb_buf largest;  /* largest internal key */
    atomic_int refs;
    bool compacting; /* an input of a running compaction (under db mu) */
    /* It may hold entries a compaction could drop later: several entries of
     * one user key (kept for a snapshot), tombstones or expiring values.
     * Known for tables written since open; true for the others. */
    bool may_drop;
    /* Set once an installed edit removed the file: the last unref deletes
     * it (no live version names it any more). */
    atomic_bool obsolete;
    struct vset *owner; /* for the deletion; NULL in decoded edits */
    /* The open reader, held by this file from the first get that found it
     * while the pin budget allowed until the file's last unref (which hands
     * it back to owner->tc); NULL: through the table cache's LRU. */
    _Atomic(struct tcache_handle *) pinned;
};

/* An immutable set of live tables per level, refcounted so readers search
 * it without the db mutex while a flush or compaction installs the next.
 * Level 0: newest first (numbers descend), ranges may overlap. Levels >= 1:
 * sorted by smallest key, ranges disjoint. */
struct version {
    struct vfile **files[PPDB_NUM_LEVELS];
    size_t nfiles[PPDB_NUM_LEVELS];
    atomic_int refs;
};

/* A version edit: one MANIFEST record (docs/formats/manifest.md). */
struct edit_file {
    int level;
    struct vfile *f; /* added: referenced by the edit */
};
struct edit_del {
    int level;
    uint64_t number;
};
struct version_edit {
    bool has_log_number, has_next_file, has_last_seq;
    uint64_t log_number; /* logs numbered >= this are live */
    uint64_t next_file;
    uint64_t last_seq;
    struct edit_file *added;
    size_t nadded, cap_added;
    struct edit_del *deleted;
    size_t ndeleted, cap_deleted;
    struct ppdb_buf cpointer[PPDB_NUM_LEVELS]; /* compact pointers (len 0 = unset) */
    bool has_cpointer[PPDB_NUM_LEVELS];
};

void edit_init(struct version_edit *e);
void edit_deinit(struct version_edit *e);
/* Takes a reference on f. */
int edit_add_file(struct version_edit *e, int level, struct vfile *f);
int edit_del_file(struct version_edit *e, int level, uint64_t number);
int edit_set_cpointer(struct version_edit *e, int level, const uint8_t *k, size_t n);
int edit_encode(const struct version_edit *e, struct ppdb_buf *out);
/* PPDB_ECORRUPT when malformed. e is initialized by the call. */
int edit_decode(const uint8_t *p, size_t n, struct version_edit *e);

struct version *version_new(void);
void version_ref(struct version *v);
void version_unref(struct version *v);
/* base + edit -> *out (new version with refs on its files). PPDB_ECORRUPT
 * if the edit deletes a file that is not there or breaks level order. */
int version_apply(const struct version *base, const struct version_edit *e, struct version **out);
uint64_t version_level_bytes(const struct version *v, int level);
/* Files of `level` overlapping user-key range [b, e] (NULL = unbounded),
 * appended to *out (ppdb_realloc'ed array, *n counts). */
int version_overlaps(const struct version *v, int level, const uint8_t *b, size_t blen,
                     const uint8_t *e, size_t elen, struct vfile ***out, size_t *n);
/* Index of the first file of level >= 1 whose largest user key >= ukey. */
size_t version_find_file(const struct version *v, int level, const uint8_t *ukey, size_t ulen);

struct vfile *vfile_new(uint64_t number, uint64_t size, uint64_t max_version, uint64_t max_seq);
void vfile_ref(struct vfile *f);
void vfile_unref(struct vfile *f);
static inline const uint8_t *vfile_ukey(const struct ppdb_buf *ikey, size_t *len)
{
    *len = ppdb_ikey_ulen(ikey->len);
    return ikey->data;
}

/* ---------------------------------------------------------------- vset
 *
 * The version set: the current version, the MANIFEST it is recorded in and
 * the counters the manifest carries. Edits are applied by one thread at a
 * time (the background thread, or open/close), never concurrently.
 */

#define PPDB_CURRENT_NAME       "CURRENT"
#define PPDB_MANIFEST_PREFIX    "MANIFEST-"
#define PPDB_MANIFEST_MAX_BYTES (4u << 20) /* a larger manifest is rewritten */

struct vset {
    struct ppdb_fs *fs;
    const char *dir; /* the db's copy */
    struct ppdb_logger *lg;
    struct tcache *tc;                /* to drop a deleted table's reader */
    struct ppdb_file *man_f;          /* open manifest (NULL: none yet) */
    uint64_t man_size;                /* its length */
    bool man_broken;                  /* a failed append: start a new manifest */
    _Atomic uint64_t manifest_number; /* read by stats without the bg thread */
    uint64_t log_number;
    _Atomic uint64_t next_file; /* next number for logs, tables, manifests */
    uint64_t last_seq_logged;   /* last sequence recorded in the manifest */
    struct ppdb_buf cpointer[PPDB_NUM_LEVELS];
    atomic_uint_fast64_t deleted_files; /* tables removed by the last unref */
};

void vset_init(struct vset *vs, struct ppdb_fs *fs, const char *dir, struct ppdb_logger *lg);
void vset_deinit(struct vset *vs);
/* Reads CURRENT and the manifest it names into a fresh version (*v_out) and
 * the counters; PPDB_ENOENT when there is no CURRENT. */
int vset_recover(struct vset *vs, struct version **v_out, uint64_t *last_seq_out);
/* Makes e durable: appended to the manifest and synced (a new manifest with
 * a full snapshot of `base`+e when there is none, it is broken or too big).
 * Then *out = base + e. On error nothing changed in memory. */
int vset_log_and_apply(struct vset *vs, const struct version *base, struct version_edit *e,
                       struct version **out);
/* A full snapshot of v as one edit (files, counters, compact pointers). */
int vset_snapshot_edit(const struct vset *vs, const struct version *v, uint64_t last_seq,
                       struct version_edit *e);
/* Writes a new MANIFEST-<number> holding `snap` in directory dir, then
 * CURRENT naming it (atomically). For checkpoints and manifest rollover. */
int vset_write_manifest(struct ppdb_fs *fs, const char *dir, uint64_t number,
                        const struct version_edit *snap, struct vset *keep_open);

/* Manifest records (docs/formats/manifest.md):
 *   length u32le | ~length u32le | masked crc32c(payload) u32le | payload
 * The length is stored twice so that a flipped bit in it is corruption,
 * never mistaken for a record cut short by a crash (a torn tail). */
#define PPDB_MANIFEST_REC_HEADER 12u
#define PPDB_MANIFEST_MAX_RECORD (64u << 20)
#define PPDB_MANIFEST_MAX_FILE   (256u << 20)
typedef int (*manifest_record_cb)(void *arg, const uint8_t *p, size_t n);
/* Calls cb for each record of a whole manifest file. 0 at a clean end;
 * *torn_off_out = offset of a torn last record (or UINT64_MAX: none);
 * PPDB_ECORRUPT (*bad_off_out = where) on a bad header or checksum. */
int manifest_parse(const uint8_t *p, size_t n, manifest_record_cb cb, void *arg,
                   uint64_t *torn_off_out, uint64_t *bad_off_out);
int manifest_append(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t *p, size_t n);

/* ------------------------------------------------------------ table cache
 *
 * A bounded LRU of open table readers (max_open_files), built on the
 * sharded cache of table.h with charge 1 per table. A handle pins its
 * reader; the reader and its file close when evicted and unpinned. Up to
 * max_open_files / 2 readers are pinned by their vfile for its life, so a
 * get reaches them without the cache's lock (tcache_find).
 */
struct tcache;
int tcache_new(struct ppdb_fs *fs, const char *dir, struct ppdb_cache *block_cache,
               struct ppdb_logger *lg, size_t max_open, struct tcache **tc_out);
void tcache_free(struct tcache *tc);
/* Opens (or finds) table f; PPDB_ECORRUPT when the file is missing or its
 * size differs from the manifest's. */
int tcache_get(struct tcache *tc, const struct vfile *f, struct tcache_handle **h_out);
struct ppdb_table *tcache_table(struct tcache_handle *h);
void tcache_release(struct tcache *tc, struct tcache_handle *h);
/* The reader of f for a get: the one f pins (*h_out = NULL, nothing to
 * release), else from the LRU (*h_out to release), which f then pins if it
 * belongs to this cache's version set and fewer than max_open_files / 2
 * readers are pinned. f must stay referenced while the reader is used. */
int tcache_find(struct tcache *tc, struct vfile *f, struct ppdb_table **t_out,
                struct tcache_handle **h_out);
/* At f's last unref: hands back the reader f pins, if any. */
void tcache_unpin(struct tcache *tc, struct vfile *f);
void tcache_evict(struct tcache *tc, uint64_t number);
void tcache_stats(struct tcache *tc, uint64_t *hits, uint64_t *misses);

/* ------------------------------------------------------------- iterators
 *
 * Internal bidirectional iterators over internal keys (merge.c): one
 * interface for a memtable, a table, a level (its files in order, opened
 * lazily) and a merge of any number of them. Compaction uses them forward;
 * the user-facing iterator (iter.c) both ways.
 */
struct iter;
struct iter_ops {
    void (*seek_first)(struct iter *it);
    void (*seek_last)(struct iter *it);
    /* First entry >= ikey (ppdb_ikey_cmp). */
    void (*seek)(struct iter *it, const uint8_t *ikey, size_t klen);
    void (*next)(struct iter *it); /* valid iterator only */
    void (*prev)(struct iter *it); /* valid iterator only */
    bool (*valid)(const struct iter *it);
    const uint8_t *(*key)(const struct iter *it, size_t *len);
    const uint8_t *(*value)(const struct iter *it, size_t *len);
    int (*status)(const struct iter *it);
    void (*free)(struct iter *it);
};
struct iter {
    const struct iter_ops *ops;
};

int iter_mem_new(struct memtable *m, struct iter **out);                   /* takes a ref on m */
int iter_table_new(struct tcache *tc, struct vfile *f, struct iter **out); /* refs f */
int iter_files_new(struct tcache *tc, struct vfile **files, size_t n, struct iter **out);
int iter_level_new(struct tcache *tc, const struct version *v, int level, struct iter **out);
/* Takes ownership of children (freed with it, also on error). */
int iter_merge_new(struct iter **children, size_t n, struct iter **out);
static inline void iter_free(struct iter *it)
{
    if (it)
        it->ops->free(it);
}

#endif /* PPDB_ENGINE_INT_H */
