/*
 * db_int.h - the db object shared by db.c (write and read paths, flush) and
 * recover.c (open, recovery, close). Not installed.
 */
#ifndef PPDB_ENGINE_DB_INT_H
#define PPDB_ENGINE_DB_INT_H

#include <pthread.h>

#include "engine_int.h"

#define DB_PATH_MAX 4096
#define DB_DIR_MAX  3900

/* A queued write call; lives on the caller's stack until done. */
struct writer {
    const uint8_t *rep; /* batch encoding; NULL = a flush request */
    size_t rep_len;
    bool sync;
    bool done;
    int status;
    pthread_cond_t cv;
    struct writer *next;
};

struct ppdb_db {
    struct ppdb_fs *fs; /* borrowed */
    char *dir;          /* owned copy */
    struct ppdb_db_options opts;
    struct ppdb_logger *lg;   /* borrowed */
    struct ppdb_file *lock;   /* the LOCK file, held while open */
    struct ppdb_cache *cache; /* block cache or NULL */
    struct ppdb_table_options topts;

    pthread_mutex_t mu;
    pthread_cond_t bg_cv; /* a flush finished, or bg_error was set */
    struct writer *wq_head, *wq_tail;
    struct memtable *mem;      /* mutable memtable (always set) */
    struct memtable *imm;      /* being flushed, or NULL */
    struct version *current;   /* live tables */
    struct wal_writer wal;     /* log of mem */
    struct ppdb_buf group;     /* the leader's group record */
    uint64_t next_file;        /* next file number for logs and tables */
    _Atomic uint64_t last_seq; /* newest published sequence number */
    int bg_tasks;              /* flush tasks queued or running (a new one may be
                                  queued before the last one has returned) */
    int bg_error;              /* sticky write error */
    struct ppdb_db_stats stats;
};

int db_path(const struct ppdb_db *db, char *out, size_t cap, uint64_t number, const char *ext);
int db_write_table(struct ppdb_db *db, struct memtable *m, uint64_t number, struct vfile **f_out);
int db_open_table(struct ppdb_db *db, struct vfile *f);
int db_manifest_snapshot(struct ppdb_db *db, const struct version *v, uint64_t log_number,
                         struct ppdb_buf *out);
/* Removes logs numbered below log_number and tables not in the current
 * version. Best effort: failures are logged, never fatal. */
void db_delete_obsolete(struct ppdb_db *db, uint64_t log_number);

/* Tests: waits until no flush is queued or running. A simulated power cut
 * (ppdb_fs_mem_drop_unsynced) must not race a flush that would go on
 * writing after it, which no crashed process could do. */
void db_wait_idle(struct ppdb_db *db);

#endif /* PPDB_ENGINE_DB_INT_H */
