/*
 * ppdb_engine.h - PPDB's local storage engine: an LSM tree in the manner of
 * LevelDB (write-ahead log with group commit, skiplist memtable, immutable
 * memtable flushed to sorted tables in the background).
 *
 * This is the engine's only public header; it is installed with the library.
 * Everything it touches on disk goes through a struct ppdb_fs (ppdb_fs.h), so
 * the same code runs on the POSIX file system and on the in-memory,
 * fault-injecting one used by tests and the simulator.
 *
 * Versions. Every entry may carry a 64-bit version (PPDB uses a hybrid
 * logical clock). A read returns the entry with the HIGHEST version, not the
 * latest arrival, so a replica can apply writes in any order without reading
 * first; deletes are versioned tombstones and lose to higher versions too.
 * Among entries with equal versions the later write wins. Plain unversioned
 * use is version 0 for every write: the latest write wins, as in LevelDB.
 *
 * Threads. A struct ppdb_db may be used from any number of threads at once.
 * Writes queue behind one leader that writes the whole group to the log and
 * syncs once for all of them (group commit). Reads do not block writes.
 * Calls may block on file I/O and on write stalls (when the memtable is full
 * and the previous one is still being flushed): do not call them from an
 * event-loop thread.
 *
 * Compaction. Tables are kept in levels, LevelDB-style: flushes make level-0
 * tables (key ranges may overlap); a background compaction merges them into
 * level 1 once there are l0_compaction_trigger of them, and level L into
 * L+1 once L holds more than level1_bytes * level_multiplier^(L-1). For each
 * user key a compaction keeps only the entry a read would return (highest
 * version, then latest write) and drops tombstones at the bottom (no deeper
 * level holds the key): unversioned ones (version 0) at once, versioned ones
 * once tombstone_grace_ms have passed since the time in their version.
 * Versions are read as PPDB's hybrid logical clock: version >> 16 is the
 * wall-clock time in milliseconds since the epoch, the low 16 bits a
 * counter; the engine compares that time with its fs clock (fs->wall_ms).
 * Until the grace period has passed a tombstone keeps shadowing older
 * versions that a replica may still deliver late.
 *
 * Write stalls. With l0_slowdown_trigger level-0 tables each write is
 * delayed by 1 ms; with l0_stop_trigger, or while a full memtable waits for
 * the previous one to be flushed, writes wait for the background work (at
 * most max_stall_ms each, then PPDB_ETIMEDOUT). Stats count both.
 *
 * Errors: 0 or a negative PPDB_E* code (ppdb_base.h). PPDB_ENOTFOUND from
 * get; PPDB_EBUSY when another process or handle holds the directory;
 * PPDB_ECORRUPT on a checksum mismatch or a malformed file; PPDB_EIO and
 * PPDB_ENOSPC from the file system. A full disk (a log append, flush or
 * compaction failing with PPDB_ENOSPC) makes the database read-only: writes
 * fail with PPDB_ENOSPC, reads keep working, stats.read_only is set; the
 * next write at least 20 ms later retries (the log is cut back to its last
 * good record and the failed flush or compaction runs again), so writing
 * resumes by itself once space is freed, and nothing acknowledged is lost.
 * Any other failed log write or sync is sticky: the database refuses
 * further writes with that error (the log's state is then unknown); reads
 * keep working. Close and reopen to recover.
 */
#ifndef PPDB_ENGINE_H
#define PPDB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ppdb_base.h"
#include "ppdb_fs.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ppdb_db;
struct ppdb_batch;
struct ppdb_snapshot;
struct ppdb_iter;

/* Block compression of table files. */
enum ppdb_db_compression {
    PPDB_DB_COMPRESS_NONE = 0,
    PPDB_DB_COMPRESS_LZ4 = 1,
    PPDB_DB_COMPRESS_ZSTD = 2
};

/* When a write reaches stable storage before the call returns. */
enum ppdb_sync_policy {
    PPDB_SYNC_PER_WRITE = 0, /* as struct ppdb_write_options.sync says */
    PPDB_SYNC_ALWAYS = 1,    /* every write is synced, whatever its options */
    PPDB_SYNC_NEVER = 2      /* never fsync the log (data can be lost on power loss) */
};

struct ppdb_db_options {
    bool create_if_missing;     /* create the directory and an empty database */
    bool error_if_exists;       /* PPDB_EEXIST if a database is already there */
    bool paranoid_checks;       /* corruption in the middle of the log fails open
                                   (PPDB_ECORRUPT) instead of being logged, counted
                                   and recovery stopping at the last good record */
    size_t memtable_bytes;      /* a memtable this large is frozen and flushed */
    size_t block_bytes;         /* uncompressed size of a table data block */
    size_t block_cache_bytes;   /* bound of the shared block cache (0 = none) */
    int bloom_bits_per_key;     /* bloom filter bits per key (0 = no filter) */
    int compression;            /* enum ppdb_db_compression */
    int sync_policy;            /* enum ppdb_sync_policy */
    size_t max_batch_bytes;     /* largest single batch accepted (PPDB_ELIMIT) */
    size_t max_group_bytes;     /* bound of one group commit */
    uint32_t max_stall_ms;      /* a write that stalls longer fails with PPDB_ETIMEDOUT */
    struct ppdb_logger *logger; /* borrowed for the db's lifetime; NULL: default */
    /* Compaction and stalls (see the top of this header). */
    uint32_t max_open_files;        /* bound of the table cache (open readers), >= 4 */
    uint32_t l0_compaction_trigger; /* level-0 tables that start a compaction */
    uint32_t l0_slowdown_trigger;   /* level-0 tables that delay each write 1 ms */
    uint32_t l0_stop_trigger;       /* level-0 tables that stop writes */
    uint64_t level1_bytes;          /* target size of level 1 */
    uint32_t level_multiplier;      /* each level is this much larger than the last */
    uint64_t target_file_bytes;     /* size of a compaction output table */
    uint64_t tombstone_grace_ms;    /* age before a versioned tombstone may be dropped
                                       (UINT64_MAX: never) */
};

/* Fills *o with the defaults: create_if_missing, 4 MiB memtable, 4 KiB
 * blocks, 8 MiB block cache, 10 bloom bits per key, LZ4, per-write sync,
 * 1000 open files, level-0 triggers 4 / 8 / 12, level 1 of 10 MiB, x10 per
 * level, 2 MiB tables, tombstones kept 10 days. */
void ppdb_db_options_default(struct ppdb_db_options *o);

struct ppdb_write_options {
    bool sync; /* return only once the write is on stable storage */
};

/* verify_checksums and fill_cache are reserved: table blocks are always
 * checksummed when read and always go through the block cache for now. */
struct ppdb_read_options {
    bool verify_checksums;
    bool fill_cache;
    /* Read the state at this snapshot (ppdb_db_snapshot_new); NULL: the
     * latest state. */
    const struct ppdb_snapshot *snapshot;
};

/* Opens (or creates) the database in directory `dir`. `fs` is borrowed and
 * must outlive the db; `dir` is copied; `opts` NULL means defaults. On success
 * *db_out holds a handle freed by ppdb_db_close. Takes the directory's LOCK
 * file: PPDB_EBUSY if another handle holds it. Replays the write-ahead logs;
 * a torn last record (a crash during a write) is dropped silently, anything
 * else that is corrupt is PPDB_ECORRUPT with paranoid_checks, otherwise
 * logged, counted (stats.recovery_corruptions) and recovery stops there. */
int ppdb_db_open(struct ppdb_fs *fs, const char *dir, const struct ppdb_db_options *opts,
                 struct ppdb_db **db_out);
/* Waits for background work, syncs the log, releases the lock and frees db.
 * Returns the first error met doing so; db is freed in any case. */
int ppdb_db_close(struct ppdb_db *db);

/* Writes. key/val are borrowed for the call. wopts NULL: no sync. Keys are
 * 1..PPDB_DB_MAX_KEY bytes, values up to PPDB_DB_MAX_VALUE. */
#define PPDB_DB_MAX_KEY   (64u * 1024)
#define PPDB_DB_MAX_VALUE (64u * 1024 * 1024)
int ppdb_db_put(struct ppdb_db *db, const struct ppdb_write_options *wopts, const void *key,
                size_t klen, const void *val, size_t vlen);
int ppdb_db_put_versioned(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                          const void *key, size_t klen, const void *val, size_t vlen,
                          uint64_t version);
int ppdb_db_delete(struct ppdb_db *db, const struct ppdb_write_options *wopts, const void *key,
                   size_t klen);
int ppdb_db_delete_versioned(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                             const void *key, size_t klen, uint64_t version);
/* Applies all of batch or none of it (also across a crash). batch stays the
 * caller's. */
int ppdb_db_write(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                  const struct ppdb_batch *batch);

/* Reads the entry with the highest version for key. On 0 the value is
 * copied into val_out (reset first; caller-owned, ppdb_buf_deinit frees it;
 * may be NULL) and its version into *version_out (may be NULL). Returns
 * PPDB_ENOTFOUND when there is no entry or the winner is a tombstone.
 * ropts NULL: defaults. */
int ppdb_db_get(struct ppdb_db *db, const struct ppdb_read_options *ropts, const void *key,
                size_t klen, struct ppdb_buf *val_out, uint64_t *version_out);

/* ---------------------------------------------------------------- expiry
 *
 * A put may carry an expiry: wall-clock milliseconds since the epoch, on
 * the fs clock (fs->wall_ms). From that moment on the entry reads as if it
 * had been deleted (get: PPDB_ENOTFOUND; iterators skip the key), also at
 * snapshots (expiry is judged by the clock at read time, not at the
 * snapshot's), and compaction drops it. It is an entry like any other for
 * versions: it shadows lower versions of its key while alive and after it
 * expires, so an expired entry never uncovers an older value. */
int ppdb_db_put_expiring(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                         const void *key, size_t klen, const void *val, size_t vlen,
                         uint64_t version, uint64_t expire_at_ms);
/* ttl_ms relative to now: expire_at = fs->wall_ms() + ttl_ms, taken at the
 * call. Version 0. */
int ppdb_db_put_ttl(struct ppdb_db *db, const struct ppdb_write_options *wopts, const void *key,
                    size_t klen, const void *val, size_t vlen, uint64_t ttl_ms);

/* ------------------------------------------------------------- snapshots
 *
 * A snapshot pins the current sequence number: reads and iterators given it
 * see exactly the writes acknowledged before it was taken (whole batches),
 * whatever is written, flushed or compacted later; compaction keeps the
 * entries a live snapshot can see. Release every snapshot before close;
 * a long-lived snapshot keeps overwritten data on disk. */
int ppdb_db_snapshot_new(struct ppdb_db *db, const struct ppdb_snapshot **snap_out);
void ppdb_db_snapshot_release(struct ppdb_db *db, const struct ppdb_snapshot *snap);
/* The sequence number the snapshot reads at. */
uint64_t ppdb_snapshot_sequence(const struct ppdb_snapshot *snap);

/* ------------------------------------------------------------- iterators
 *
 * An iterator walks user keys in bytewise order, both ways, over a
 * consistent view taken when it is created: the tables and memtables of
 * that moment stay pinned for its life, and it reads at its snapshot (or
 * at the last sequence number of that moment). For each user key it yields
 * only the entry a get would return (highest version, then latest write)
 * and skips keys whose winning entry is a tombstone or has expired (at the
 * iterator's creation time). Bounds restrict it to [lower_bound,
 * upper_bound); it never reads past them. An iterator is used by one thread
 * at a time; free it before closing the db. */
struct ppdb_iter_options {
    const struct ppdb_snapshot *snapshot; /* NULL: the latest state */
    const void *lower_bound;              /* inclusive; NULL: none (copied) */
    size_t lower_len;
    const void *upper_bound; /* exclusive; NULL: none (copied) */
    size_t upper_len;
};

/* opts NULL: no snapshot, no bounds. The iterator starts invalid. */
int ppdb_db_iter_new(struct ppdb_db *db, const struct ppdb_iter_options *opts,
                     struct ppdb_iter **it_out);
void ppdb_iter_free(struct ppdb_iter *it);
void ppdb_iter_seek_first(struct ppdb_iter *it);
void ppdb_iter_seek_last(struct ppdb_iter *it);
/* First key >= key. */
void ppdb_iter_seek(struct ppdb_iter *it, const void *key, size_t klen);
/* Last key <= key. */
void ppdb_iter_seek_for_prev(struct ppdb_iter *it, const void *key, size_t klen);
/* Valid iterator only. */
void ppdb_iter_next(struct ppdb_iter *it);
void ppdb_iter_prev(struct ppdb_iter *it);
bool ppdb_iter_valid(const struct ppdb_iter *it);
/* Key, value and version of the current entry (valid iterator); the
 * pointers stay valid until the iterator moves or is freed. */
const void *ppdb_iter_key(const struct ppdb_iter *it, size_t *len_out);
const void *ppdb_iter_value(const struct ppdb_iter *it, size_t *len_out);
uint64_t ppdb_iter_version(const struct ppdb_iter *it);
/* 0, or the error (PPDB_ECORRUPT, PPDB_EIO, ...) that made it invalid. */
int ppdb_iter_status(const struct ppdb_iter *it);

/* Freezes the current memtable (if not empty) and waits until it is in a
 * table file and its log is deleted. */
int ppdb_db_flush(struct ppdb_db *db);

#define PPDB_DB_LEVELS 7 /* levels 0..6 */

struct ppdb_db_stats {
    uint64_t writes;               /* write calls that succeeded (a batch is one) */
    uint64_t entries;              /* entries written */
    uint64_t groups;               /* group commits (log records written) */
    uint64_t syncs;                /* log fsyncs */
    uint64_t synced_writes;        /* writes acknowledged by those fsyncs */
    uint64_t flushes;              /* memtables written to table files */
    uint64_t stalls;               /* writes that waited for a flush */
    uint64_t stall_us;             /* time spent in those waits */
    uint64_t wal_bytes;            /* bytes appended to logs */
    uint64_t recovery_corruptions; /* corrupt log regions met at open */
    uint64_t recovered_entries;    /* entries replayed from logs at open */
    uint64_t last_sequence;        /* sequence number of the newest write */
    uint64_t memtable_bytes;       /* memory of the mutable memtable */
    uint32_t l0_files;             /* level-0 tables */
    int bg_error;                  /* write error, 0 if none (PPDB_ENOSPC: read_only) */
    /* Levels and compaction. */
    uint32_t level_files[PPDB_DB_LEVELS]; /* tables per level */
    uint64_t level_bytes[PPDB_DB_LEVELS]; /* bytes of tables per level */
    uint64_t table_bytes;                 /* all live tables */
    uint64_t flush_bytes;                 /* table bytes written by flushes */
    uint64_t compactions;                 /* compactions run (trivial moves included) */
    uint64_t trivial_moves;               /* compactions that moved a table down unchanged */
    uint64_t compact_read_bytes;          /* table bytes read by compactions */
    uint64_t compact_write_bytes;         /* table bytes written by compactions */
    uint64_t compact_dropped;             /* entries dropped (shadowed, tombstones, expired) */
    uint64_t tables_deleted;              /* obsolete tables removed */
    /* (flush_bytes + compact_write_bytes) / flush_bytes: table bytes written
     * per byte flushed (0 before the first flush). Add the log: (wal_bytes +
     * flush_bytes + compact_write_bytes) / wal_bytes is the disk's view. */
    double write_amplification;
    uint64_t l0_slowdowns; /* writes delayed 1 ms for level-0 tables */
    uint64_t l0_slowdown_us;
    uint64_t l0_stops;   /* writes that waited at l0_stop_trigger */
    uint64_t l0_stop_us; /* (also counted in stalls / stall_us) */
    uint64_t block_cache_hits, block_cache_misses;
    /* Lookups through the table cache's LRU; gets of a table pinned by its
     * file (most tables, see engine/tcache.c) are not counted. */
    uint64_t table_cache_hits, table_cache_misses;
    bool read_only;           /* a full disk stopped writes (retried) */
    uint64_t nospace_errors;  /* operations that failed with PPDB_ENOSPC */
    uint64_t nospace_resumes; /* times writing resumed after it */
    uint64_t manifest_number; /* MANIFEST-NNNNNN in use */
};
/* Snapshot of the counters. writes per sync = synced_writes / syncs. */
void ppdb_db_get_stats(struct ppdb_db *db, struct ppdb_db_stats *out);

/* Compacts the tables holding user keys in [begin, end] (NULL = unbounded
 * on that side) down the levels, dropping what compaction may drop, and
 * returns once done (or with the error that stopped it). The deepest level
 * holding tables is rewritten in place too, table by table where it may
 * hold something droppable (older entries kept for snapshots since
 * released, tombstones, expiring values; any table from before the open),
 * so a full compaction after the last snapshot is released leaves one
 * entry per key. Flushes the memtable first. Blocks for as long as the
 * work takes. */
int ppdb_db_compact_range(struct ppdb_db *db, const void *begin, size_t blen, const void *end,
                          size_t elen);

/* Approximate bytes of table data holding user keys in [begin, end) (NULL =
 * unbounded), from the tables' indexes; the memtable is not counted. */
int ppdb_db_approximate_size(struct ppdb_db *db, const void *begin, size_t blen, const void *end,
                             size_t elen, uint64_t *bytes_out);

/* Writes a consistent copy of the database to the new directory `dir`
 * (PPDB_EEXIST if it exists): hard links (fs->link) to the live tables, a
 * copy of the live logs up to the last acknowledged write, and a fresh
 * MANIFEST and CURRENT. The copy holds every write acknowledged before the
 * call and is a prefix of the history (whole batches); open it like any
 * database (it is one). Writes are paused only while the cut is taken.
 * `dir` must be on the same file system (hard links). */
int ppdb_db_checkpoint(struct ppdb_db *db, const char *dir);

/* ---------------------------------------------------------------- batches */

/* A batch of puts and deletes applied atomically by ppdb_db_write. It copies
 * keys and values in; ppdb_batch_free releases it. Not thread-safe. */
int ppdb_batch_new(struct ppdb_batch **b_out);
void ppdb_batch_free(struct ppdb_batch *b);
void ppdb_batch_clear(struct ppdb_batch *b);
int ppdb_batch_put(struct ppdb_batch *b, const void *key, size_t klen, const void *val,
                   size_t vlen);
int ppdb_batch_put_versioned(struct ppdb_batch *b, const void *key, size_t klen, const void *val,
                             size_t vlen, uint64_t version);
int ppdb_batch_delete(struct ppdb_batch *b, const void *key, size_t klen);
int ppdb_batch_delete_versioned(struct ppdb_batch *b, const void *key, size_t klen,
                                uint64_t version);
/* A put that expires at expire_at_ms (wall ms since the epoch, fs clock). */
int ppdb_batch_put_expiring(struct ppdb_batch *b, const void *key, size_t klen, const void *val,
                            size_t vlen, uint64_t version, uint64_t expire_at_ms);
uint32_t ppdb_batch_count(const struct ppdb_batch *b);
/* Bytes of the batch's encoding (what it adds to the log). */
size_t ppdb_batch_bytes(const struct ppdb_batch *b);

#ifdef __cplusplus
}
#endif

#endif /* PPDB_ENGINE_H */
