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
 *   version   the set of live table files (level 0 only for now, newest
 *             first), persisted as a small checksummed MANIFEST written
 *             atomically, with the current log number and last sequence.
 *             A later leveled version set replaces it behind this interface.
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
int wal_writer_close(struct wal_writer *w);

enum wal_end {
    WAL_END_NONE = 0,
    WAL_END_CLEAN = 1, /* the file ended at a record boundary (or in zero fill) */
    WAL_END_TORN = 2,  /* the file ended inside a record: a write cut short */
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
    const uint8_t *ikey;
    uint32_t iklen;
    uint32_t vlen; /* value follows ikey in the arena */
    _Atomic(struct mem_node *) next[];
};

struct memtable {
    struct mem_arena arena;
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
void mem_iter_first(struct mem_iter *it, struct memtable *m);
static inline bool mem_iter_valid(const struct mem_iter *it)
{
    return it->node != NULL;
}
void mem_iter_next(struct mem_iter *it);
static inline const uint8_t *mem_iter_value(const struct mem_iter *it)
{
    return it->node->ikey + it->node->iklen;
}

/* --------------------------------------------------------------- version */

struct vfile {
    uint64_t number;
    uint64_t size;
    uint64_t max_version;
    uint64_t max_seq;
    struct ppdb_fs *fs;
    struct ppdb_file *file;   /* open while table is */
    struct ppdb_table *table; /* open reader (NULL in a decoded manifest) */
    atomic_int refs;
};

/* An immutable list of live tables, newest first; refcounted so readers use
 * it without the db mutex while a flush installs the next one. */
struct version {
    struct vfile **files;
    size_t nfiles;
    atomic_int refs;
};

struct manifest {
    uint64_t next_file;
    uint64_t log_number; /* logs numbered >= this are live */
    uint64_t last_seq;
    uint64_t nfiles;
    struct vfile *files; /* nfiles, newest first (plain copies, refs unused) */
};

#define PPDB_MANIFEST_NAME      "MANIFEST"
#define PPDB_MANIFEST_MAGIC     0x464d4450u /* "PDMF" little-endian */
#define PPDB_MANIFEST_FORMAT    1u
#define PPDB_MANIFEST_MAX_FILES 100000u
#define PPDB_MANIFEST_HEADER    36u /* magic, format, next_file, log_number, last_seq, nfiles */
#define PPDB_MANIFEST_FILE      32u /* number, size, max_version, max_seq */
#define PPDB_MANIFEST_TRAILER   4u  /* masked crc32c of everything before it */

int manifest_encode(const struct manifest *m, struct ppdb_buf *out);
/* On success m->files is allocated (ppdb_free). PPDB_ECORRUPT if bad. */
int manifest_decode(const uint8_t *p, size_t n, struct manifest *m);

struct version *version_new(size_t nfiles);
void version_ref(struct version *v);
void version_unref(struct version *v);
/* A new version = old with f prepended (takes a ref on every file). */
struct version *version_with_file(const struct version *old, struct vfile *f);
struct vfile *vfile_new(uint64_t number, uint64_t size, uint64_t max_version, uint64_t max_seq);
void vfile_ref(struct vfile *f);
/* The last unref closes the table and its file. */
void vfile_unref(struct vfile *f);

#endif /* PPDB_ENGINE_INT_H */
