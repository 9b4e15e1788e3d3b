/*
 * ppdb_fs.h - the file-system seam of the storage engine (DESIGN.md, seam 2).
 *
 * Shaped like LevelDB's Env: synchronous, thread-safe file operations plus
 * time, sleeping and background scheduling. The engine touches files only
 * through this table, so tests run it unchanged on:
 *
 *   - src/fs_posix.c: the real POSIX file system (fdatasync, flock,
 *     directory fsync, a background thread);
 *   - src/fs_mem.c: an in-memory file system that tracks what was synced
 *     and can drop unsynced data (a simulated power cut), flip bits, fail
 *     writes or syncs, and fill the disk.
 *
 * Paths are '/'-separated strings; the engine builds them from its
 * directory. Every function returns 0 or a negative PPDB_E* code; ENOENT,
 * EEXIST, ENOSPC, EIO and EBUSY are distinguished so the engine can act on
 * them. The wrong kind of file (a directory where a file is meant or the
 * reverse, a file used as a directory) is PPDB_EINVAL. All operations may
 * be called from any thread concurrently; one ppdb_file may be read (pread)
 * by several threads at once, but appended to by one thread at a time.
 *
 * Logs (PPDB_FS_LOG): a file that takes many small appends may be opened as
 * a log, and the implementation may then reserve space beyond the appended
 * bytes (POSIX: fallocate a chunk, then copy appends into a shared mapping
 * of it instead of one write(2) each). The handle's size() and pread see
 * only the appended bytes; another handle, file_size() and a crashed
 * process see them followed by zero fill up to the reserved end; close
 * cuts the file back to the appended bytes. Appended bytes survive a crash
 * of the process either way, and sync makes them durable as for any file.
 * An append cut short by a crash of the process leaves a prefix of its
 * bytes (as write(2) does), followed by the zero fill.
 * A reader of logs must therefore take zero fill after the last record as
 * a clean end (docs/formats/wal.md).
 */
#ifndef PPDB_FS_H
#define PPDB_FS_H

#include "ppdb_base.h"

struct ppdb_fs;
struct ppdb_file; /* opaque, per implementation */

enum ppdb_fs_open_flags {
    PPDB_FS_READ = 1 << 0,   /* pread allowed */
    PPDB_FS_APPEND = 1 << 1, /* append allowed (writes always go to the end) */
    PPDB_FS_CREATE = 1 << 2, /* create if missing */
    PPDB_FS_EXCL = 1 << 3,   /* with CREATE: fail with PPDB_EEXIST if present */
    PPDB_FS_TRUNC = 1 << 4,  /* truncate to 0 on open */
    /* With APPEND: a log, many small appends (see the top of this file). The
     * implementation may preallocate beyond the appended bytes, so after a
     * crash the file may end in zero fill; size() reports the appended bytes
     * and close cuts the file to them. Ignored without APPEND. */
    PPDB_FS_LOG = 1 << 5
};

typedef void (*ppdb_fs_task_fn)(void *arg);

struct ppdb_fs_ops {
    int (*open)(struct ppdb_fs *fs, const char *path, int flags, struct ppdb_file **f_out);
    /* Releases f even when it returns an error. */
    int (*close)(struct ppdb_fs *fs, struct ppdb_file *f);
    /* Reads up to n bytes at off; *n_out < n only at end of file. */
    int (*pread)(struct ppdb_fs *fs, struct ppdb_file *f, void *buf, size_t n, uint64_t off,
                 size_t *n_out);
    /* All n bytes or an error (a short write is reported as the error that
     * stopped it, and the file's size says how much reached it). */
    int (*append)(struct ppdb_fs *fs, struct ppdb_file *f, const void *buf, size_t n);
    /* Data (not necessarily metadata) durable: fdatasync. */
    int (*sync)(struct ppdb_fs *fs, struct ppdb_file *f);
    int (*size)(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t *size_out);
    int (*truncate)(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t size);
    /* Optional (NULL when unsupported): a read-only view of a file that is
     * no longer appended to, valid until unmap. An empty file maps to NULL
     * and 0. PPDB_ELIMIT when too many maps are live: fall back to pread.
     * (POSIX: mmap; in-memory: a private copy, unaffected by later writes.) */
    int (*map)(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t **p_out, uint64_t *len_out);
    void (*unmap)(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t *p, uint64_t len);

    /* Atomically replaces `to` if it exists. Durable after sync_dir. */
    int (*rename)(struct ppdb_fs *fs, const char *from, const char *to);
    int (*remove)(struct ppdb_fs *fs, const char *path);
    /* Hard link (checkpoints). PPDB_EEXIST if `to` exists. */
    int (*link)(struct ppdb_fs *fs, const char *from, const char *to);
    /* PPDB_EEXIST if present. */
    int (*mkdir)(struct ppdb_fs *fs, const char *path);
    /* PPDB_EEXIST if not empty. */
    int (*rmdir)(struct ppdb_fs *fs, const char *path);
    /* Names (not paths) in dir, excluding "." and "..", sorted bytewise.
     * Free with ppdb_fs_names_free. */
    int (*list)(struct ppdb_fs *fs, const char *dir, char ***names_out, size_t *count_out);
    /* 0 if the path exists, PPDB_ENOENT if not. */
    int (*exists)(struct ppdb_fs *fs, const char *path);
    int (*file_size)(struct ppdb_fs *fs, const char *path, uint64_t *size_out);
    /* Make the directory's entries (creations, renames, removals) durable. */
    int (*sync_dir)(struct ppdb_fs *fs, const char *dir);

    /* Exclusive lock on a lock file (created if missing), held until unlock,
     * against other processes and other opens in this process: PPDB_EBUSY. */
    int (*lock)(struct ppdb_fs *fs, const char *path, struct ppdb_file **lock_out);
    int (*unlock)(struct ppdb_fs *fs, struct ppdb_file *lock);

    /* Runs fn(arg) on a background thread, tasks in FIFO order. The engine
     * uses it for flushes and compactions. */
    int (*schedule)(struct ppdb_fs *fs, ppdb_fs_task_fn fn, void *arg);
    /* Microseconds on a monotonic clock / since the epoch; sleep. */
    uint64_t (*now_us)(struct ppdb_fs *fs);
    int64_t (*wall_ms)(struct ppdb_fs *fs);
    void (*sleep_us)(struct ppdb_fs *fs, uint64_t us);

    void (*destroy)(struct ppdb_fs *fs);
};

/* Implementations embed this as their first member. */
struct ppdb_fs {
    const struct ppdb_fs_ops *ops;
};

void ppdb_fs_names_free(char **names, size_t count);
/* Destroys any fs (waits for scheduled tasks to finish first). Every file,
 * lock and map must have been released (asserted). */
static inline void ppdb_fs_destroy(struct ppdb_fs *fs)
{
    fs->ops->destroy(fs);
}

/* Read a whole file (replacing out's contents) / write one atomically
 * (name.tmp, sync, rename, sync_dir). Helpers over the ops, for small
 * files such as CURRENT. */
int ppdb_fs_read_all(struct ppdb_fs *fs, const char *path, struct ppdb_buf *out);
int ppdb_fs_write_atomic(struct ppdb_fs *fs, const char *dir, const char *name, const void *p,
                         size_t n);

/* ------------------------------------------------------------------ POSIX */

/* The real file system. Background tasks run on one thread of its own. */
int ppdb_fs_posix_new(struct ppdb_fs **fs_out);

/* ------------------------------------------------------------- in-memory */

/* An in-memory file system for tests and the simulator. It keeps, per file,
 * the bytes written and the prefix made durable by sync; per directory, which
 * entries were made durable by sync_dir. */
int ppdb_fs_mem_new(struct ppdb_fs **fs_out);

/* Faults, armed at any time from any thread; set_faults replaces all of
 * them. Counters count down on each matching operation (appends of 0 bytes
 * do not count) and fire once; 0 = off. */
struct ppdb_fs_mem_faults {
    int64_t fail_append_after;  /* the Nth append from now fails with EIO */
    int64_t fail_sync_after;    /* the Nth sync (file or dir) from now fails with EIO */
    int64_t torn_append_after;  /* the Nth append writes only a prefix, then EIO */
    uint64_t capacity_bytes;    /* total bytes of all files; beyond: ENOSPC (0 = unlimited) */
    uint64_t seed;              /* for torn-append lengths */
};
void ppdb_fs_mem_set_faults(struct ppdb_fs *fs, const struct ppdb_fs_mem_faults *f);
/* Simulated power cut: every file loses what was not synced; entries created,
 * renamed or removed since the last sync_dir of their directory revert. Open
 * handles become invalid (further use returns PPDB_EIO; close and unlock
 * still free them) and locks are released. Scheduled tasks are untouched.
 * With log preallocation on (below), files ever opened with PPDB_FS_LOG
 * come back with zero fill after their synced bytes. */
void ppdb_fs_mem_drop_unsynced(struct ppdb_fs *fs);
/* Log preallocation as a real file system shows it after a crash: from now
 * on drop_unsynced extends every file ever opened with PPDB_FS_LOG and
 * PPDB_FS_APPEND with zero bytes up to the next multiple of chunk_bytes
 * above its synced length (a whole chunk for an empty one), the space the
 * POSIX implementation had reserved. The zero fill is not checked against
 * capacity_bytes. 0 (the default) turns it off. */
void ppdb_fs_mem_set_log_prealloc(struct ppdb_fs *fs, uint64_t chunk_bytes);
/* Flip bit `bit` (0..7) of byte `off` of a file. */
int ppdb_fs_mem_flip_bit(struct ppdb_fs *fs, const char *path, uint64_t off, int bit);
/* Total bytes held by all files. */
uint64_t ppdb_fs_mem_used_bytes(struct ppdb_fs *fs);
/* Moves this fs's wall clock (wall_ms) by offset_ms from the real one, for
 * tests of time-based behaviour such as expiry; 0 (the default) = real. */
void ppdb_fs_mem_set_wall_offset_ms(struct ppdb_fs *fs, int64_t offset_ms);

#endif /* PPDB_FS_H */
