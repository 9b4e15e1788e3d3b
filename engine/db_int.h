/*
 * db_int.h - the db object shared by db.c (write and read paths), compact.c
 * (background flush and compaction), recover.c (open, recovery, close) and
 * checkpoint.c. Not installed.
 */
#ifndef PPDB_ENGINE_DB_INT_H
#define PPDB_ENGINE_DB_INT_H

#include <pthread.h>

#include "engine_int.h"

#define DB_PATH_MAX         4096
#define DB_DIR_MAX          3900
#define DB_NOSPACE_RETRY_US 20000 /* a full disk is retried at most this often */

/* A queued write call; lives on the caller's stack until done. */
struct writer {
    const uint8_t *rep; /* batch encoding; NULL = a flush request or barrier */
    size_t rep_len;
    bool sync;
    bool done;
    int status;
    /* A barrier: run with mu held while this writer leads (no group commit
     * in flight); its result is the writer's status. */
    int (*barrier_cb)(struct ppdb_db *db, void *arg);
    void *barrier_arg;
    pthread_cond_t cv;
    struct writer *next;
};

/* A group commit between its log append and its acknowledgement; lives on
 * its leader's stack, queued on the db's pipe (oldest first). */
#define DB_PIPE_MAX         16   /* groups in flight; a leader waits for a free slot */
#define DB_SYNC_HOLD_MAX_US 1000 /* longest wait for writers to join a sync */
struct group {
    struct writer *first, *last; /* members, linked by writer.next */
    unsigned slot;               /* db->pipe_bufs[slot] holds the record */
    uint64_t seq;                /* sequence number of its first entry */
    uint32_t count;              /* entries */
    uint64_t members;            /* write calls */
    uint64_t start_off, end_off; /* its record in the log */
    bool sync;                   /* acknowledged only once a sync covers end_off */
    bool appended;               /* the record is in the log (or failed: status) */
    bool pending;                /* counted in db->unsynced_members */
    int status;
    struct group *next;
};

/* A live snapshot: a node of the db's list, oldest first (sequence numbers
 * are taken in increasing order, so appending keeps the list sorted). */
#define DB_MAX_SNAPSHOTS (1u << 20) /* more live snapshots: PPDB_ELIMIT */
struct ppdb_snapshot {
    uint64_t seq;
    struct ppdb_snapshot *prev, *next;
};

/* The read state as one object: the memtable, the immutable memtable and
 * the current version, each referenced by it, so a get pins all three with
 * one reference (or none: see the slots). Immutable once installed; a new
 * one is installed whenever mem, imm or current changes (mu held). */
struct super_version {
    struct memtable *mem; /* ref held */
    struct memtable *imm; /* ref held, or NULL */
    struct version *v;    /* ref held */
    uint64_t number;      /* db->sv_number when it was installed */
    atomic_int refs;
};

/* Per-thread caches of the current super version, each holding one
 * reference: a thread's get swaps its slot to DB_SV_IN_USE, reads, and puts
 * the super version back. A slot per thread index (modulo DB_SV_SLOTS), 128
 * bytes each: two cache lines, as a core's prefetcher fetches lines in
 * pairs and would otherwise pull a neighbour's slot into its cache. */
#define DB_SV_SLOTS      32
#define DB_SV_SLOT_BYTES 128
#define DB_SV_IN_USE     ((struct super_version *)(uintptr_t)1)
struct sv_slot {
    _Atomic(struct super_version *) sv; /* NULL, DB_SV_IN_USE or a cached ref */
    uint8_t pad[DB_SV_SLOT_BYTES - sizeof(void *)];
};
_Static_assert(sizeof(struct sv_slot) == DB_SV_SLOT_BYTES, "slots do not share lines");

/* A ppdb_db_compact_range in progress (lives on the caller's stack). */
struct manual_compaction {
    int level;               /* level being compacted into level + 1 */
    int max_level;           /* the bottom: rewritten in place, last */
    uint64_t first_new_file; /* tables numbered from here were written by it */
    struct ppdb_buf begin, end;
    bool has_begin, has_end;
    bool done;
    int status;
};

struct ppdb_db {
    struct ppdb_fs *fs; /* borrowed */
    char *dir;          /* owned copy */
    struct ppdb_db_options opts;
    struct ppdb_logger *lg;   /* borrowed */
    struct ppdb_file *lock;   /* the LOCK file, held while open */
    struct ppdb_cache *cache; /* block cache or NULL */
    struct tcache *tc;        /* open table readers */
    struct ppdb_table_options topts;
    struct vset vs; /* manifest and file numbers (bg thread / open) */

    pthread_mutex_t mu;
    pthread_cond_t bg_cv; /* background work finished a step, or bg_error was set */
    struct writer *wq_head, *wq_tail;
    /* Group-commit pipeline (db.c): groups appended, waiting for a sync and
     * their memtable insert, applied strictly in order. */
    struct group *pipe_head, *pipe_tail;
    unsigned pipe_len;
    bool log_busy;       /* a leader is appending to the log */
    bool sync_busy;      /* a log sync is running */
    bool applying;       /* a thread is inserting the head group into mem */
    int pipe_error;      /* a group in the pipe failed: the ones behind it fail */
    uint64_t log_end;    /* end of the last complete append */
    uint64_t synced_end; /* prefix made durable by a sync begun after its appends */
    /* Sync batching: after a sync, the next one waits (at most
     * sync_hold_until_us) until as many synced writes are appended as there
     * were around the last one: the writers it released come back. */
    uint64_t unsynced_members; /* synced writes appended, not yet covered */
    uint64_t sync_expect;      /* covered by the last sync + still pending then */
    uint64_t sync_hold_until_us;
    struct ppdb_buf pipe_bufs[DB_PIPE_MAX];
    struct memtable *mem;       /* mutable memtable (always set) */
    struct memtable *imm;       /* being flushed, or NULL */
    _Atomic bool imm_waiting;   /* imm != NULL: a running compaction flushes it first */
    size_t l0_compacting;       /* level-0 tables that are inputs of the running compaction */
    struct version *current;    /* live tables */
    struct super_version *sv;   /* mem, imm and current as readers see them */
    _Atomic uint64_t sv_number; /* sv->number: a cached one with another is stale */
    struct sv_slot *slots;      /* DB_SV_SLOTS, aligned to their size in slots_mem */
    void *slots_mem;
    struct wal_writer wal;     /* log of mem */
    uint64_t wal_good_size;    /* end of the last record acknowledged */
    _Atomic uint64_t last_seq; /* newest published sequence number */
    int bg_tasks;              /* background tasks queued or running (0 or 1) */
    bool closing;              /* close started: no new compactions */
    struct manual_compaction *manual;
    int bg_error;                                /* write error; PPDB_ENOSPC is retried */
    uint64_t nospace_retry_us;                   /* not before this time (now_us) */
    int log_pins;                                /* checkpoints copying logs: none is deleted */
    struct ppdb_snapshot *snap_head, *snap_tail; /* live snapshots, oldest first */
    size_t nsnapshots;
    struct ppdb_db_stats stats;
};

int db_path(const struct ppdb_db *db, char *out, size_t cap, uint64_t number, const char *ext);
uint64_t db_new_file_number(struct ppdb_db *db);
/* Writes memtable m to new table `number` (synced, its directory entry
 * too); *f_out gets the file with its key range. */
int db_write_table(struct ppdb_db *db, struct memtable *m, struct vfile **f_out);
/* Deletes logs below log_number (unless a checkpoint pins them) and
 * manifests other than the current one; at open (all_tables) also tables
 * the current version does not name. Best effort: failures are logged. */
void db_delete_obsolete(struct ppdb_db *db, uint64_t log_number, bool all_tables);
/* Records an error from background or log I/O (mu held). */
void db_set_error(struct ppdb_db *db, int rc, const char *what);

/* Runs cb with mu held as the leader of the write queue: no group commit
 * is in flight, the log ends at a record boundary. */
int db_run_barrier(struct ppdb_db *db, int (*cb)(struct ppdb_db *, void *), void *arg);

/* The oldest sequence number a reader may read at: the oldest live
 * snapshot's, else the last sequence (mu held). Compaction keeps, for each
 * user key, every entry above it and the best entry at or below it. */
uint64_t db_smallest_snapshot(const struct ppdb_db *db);

/* Pins the read state: the current super version (from this thread's
 * slot, else under mu) and then the sequence to read at (snap NULL: the
 * last one). mem, imm (may be NULL) and v stay valid until db_unpin. */
struct db_pin {
    struct memtable *mem, *imm;
    struct version *v;
    uint64_t seq;
    struct super_version *sv;
    struct sv_slot *slot; /* where sv goes back; NULL: unref it */
};
void db_pin(struct ppdb_db *db, const struct ppdb_snapshot *snap, struct db_pin *p);
void db_unpin(struct db_pin *p);

/* A super version for db_install_sv; NULL when out of memory. Allocated
 * before a change of mem, imm or current, so installing cannot fail. */
struct super_version *db_sv_new(void);
void db_sv_free(struct super_version *sv); /* one never installed */
/* mu held, after mem, imm or current changed: sv (from db_sv_new) becomes
 * the read state; cached copies of the old one in the slots are released
 * (a get using one releases it itself). */
void db_install_sv(struct ppdb_db *db, struct super_version *sv);
/* At open: the slots, all empty (no super version yet). */
int db_sv_init(struct ppdb_db *db);
/* At close (no reader left): releases the slots' and the db's references. */
void db_sv_deinit(struct ppdb_db *db);

/* compact.c: background work. mu held. */
void db_maybe_schedule(struct ppdb_db *db);
bool db_needs_compaction(const struct ppdb_db *db, const struct version *v);

/* Tests: waits until no background task is queued or running. A simulated
 * power cut (ppdb_fs_mem_drop_unsynced) must not race a flush that would go
 * on writing after it, which no crashed process could do. */
void db_wait_idle(struct ppdb_db *db);

#endif /* PPDB_ENGINE_DB_INT_H */
