/*
 * checkpoint.c - a consistent copy of an open database in another
 * directory, usable as a backup and openable as a database.
 *
 * The cut is taken as a barrier in the write queue (db_run_barrier): while
 * it leads no group commit is in flight, so the current log ends at a record
 * boundary and every write acknowledged so far is in it, in the immutable
 * memtable's log or in a table of the current version. Under that barrier
 * the checkpoint takes a reference to the version (its tables cannot be
 * deleted then), notes the live logs and how long the current one is, and
 * pins logs against deletion; then writes go on while it hard-links the
 * tables, copies the logs up to the noted length, and writes a fresh
 * MANIFEST and CURRENT naming exactly those tables and logs. Opening the
 * copy replays the logs on top of the tables: the state at the cut, a
 * prefix of the history.
 *
 * Invariants: nothing is copied past the cut; CURRENT is written last, so
 * a checkpoint cut short by a crash is a directory that does not open.
 */
#include <inttypes.h>
#include <stdio.h>

#include "db_int.h"

#define COPY_CHUNK (64u * 1024)

struct cut {
    struct version *v;
    uint64_t logs[2]; /* imm's log (0 = none), mem's log */
    uint64_t mem_log_bytes;
    uint64_t last_seq;
    uint64_t next_file;
};

static int take_cut_cb(struct ppdb_db *db, void *arg)
{
    struct cut *c = arg;
    c->v = db->current;
    version_ref(c->v);
    c->logs[0] = db->imm ? db->imm->log_number : 0;
    c->logs[1] = db->mem->log_number;
    c->mem_log_bytes = db->wal_good_size;
    c->last_seq = atomic_load(&db->last_seq);
    c->next_file = atomic_load(&db->vs.next_file);
    db->log_pins++;
    return 0;
}

static int copy_prefix(struct ppdb_fs *fs, const char *from, const char *to, uint64_t limit)
{
    struct ppdb_file *in = NULL, *out = NULL;
    uint8_t *buf = ppdb_malloc(COPY_CHUNK);
    int rc = buf ? fs->ops->open(fs, from, PPDB_FS_READ, &in) : PPDB_ENOMEM;
    if (!rc)
        rc = fs->ops->open(fs, to, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_EXCL, &out);
    for (uint64_t off = 0; !rc && off < limit;) {
        size_t n = 0;
        rc = fs->ops->pread(fs, in, buf, (size_t)PPDB_MIN(limit - off, COPY_CHUNK), off, &n);
        if (!rc && n == 0)
            break; /* shorter than the limit (a closed log: its whole length) */
        if (!rc)
            rc = fs->ops->append(fs, out, buf, n);
        off += n;
    }
    if (!rc)
        rc = fs->ops->sync(fs, out);
    if (in)
        fs->ops->close(fs, in);
    if (out) {
        int crc = fs->ops->close(fs, out);
        rc = rc ? rc : crc;
    }
    ppdb_free(buf);
    return rc;
}

static int copy_files(struct ppdb_db *db, const struct cut *c, const char *dir)
{
    char from[DB_PATH_MAX], to[DB_PATH_MAX];
    int rc = 0;
    for (int l = 0; !rc && l < PPDB_NUM_LEVELS; l++)
        for (size_t i = 0; !rc && i < c->v->nfiles[l]; i++) {
            uint64_t n = c->v->files[l][i]->number;
            db_path(db, from, sizeof(from), n, "sst");
            snprintf(to, sizeof(to), "%s/%06" PRIu64 ".sst", dir, n);
            rc = db->fs->ops->link(db->fs, from, to);
        }
    for (int i = 0; !rc && i < 2; i++) {
        if (!c->logs[i])
            continue;
        db_path(db, from, sizeof(from), c->logs[i], "log");
        snprintf(to, sizeof(to), "%s/%06" PRIu64 ".log", dir, c->logs[i]);
        rc = copy_prefix(db->fs, from, to, i == 1 ? c->mem_log_bytes : UINT64_MAX);
    }
    return rc;
}

static int write_manifest(struct ppdb_db *db, const struct cut *c, const char *dir)
{
    struct version_edit e;
    edit_init(&e);
    e.has_log_number = e.has_next_file = e.has_last_seq = true;
    e.log_number = c->logs[0] ? c->logs[0] : c->logs[1];
    e.next_file = c->next_file + 1; /* the manifest takes c->next_file */
    e.last_seq = c->last_seq;
    int rc = 0;
    for (int l = 0; !rc && l < PPDB_NUM_LEVELS; l++)
        for (size_t i = 0; !rc && i < c->v->nfiles[l]; i++)
            rc = edit_add_file(&e, l, c->v->files[l][i]);
    if (!rc)
        rc = vset_write_manifest(db->fs, dir, c->next_file, &e, NULL);
    edit_deinit(&e);
    return rc;
}

int ppdb_db_checkpoint(struct ppdb_db *db, const char *dir)
{
    PPDB_ASSERT(db && dir);
    if (!*dir || strlen(dir) > DB_DIR_MAX)
        return PPDB_EINVAL;
    int rc = db->fs->ops->mkdir(db->fs, dir);
    if (rc)
        return rc;
    struct cut c = {0};
    rc = db_run_barrier(db, take_cut_cb, &c);
    if (rc)
        return rc;
    rc = copy_files(db, &c, dir);
    if (!rc)
        rc = write_manifest(db, &c, dir);
    if (!rc)
        rc = db->fs->ops->sync_dir(db->fs, dir);
    pthread_mutex_lock(&db->mu);
    db->log_pins--;
    pthread_mutex_unlock(&db->mu);
    version_unref(c.v);
    if (rc)
        PPDB_LOG(db->lg, PPDB_LOG_ERROR, "engine", "checkpoint failed", "dir=%s err=%s", dir,
                 ppdb_errname(rc));
    return rc;
}
