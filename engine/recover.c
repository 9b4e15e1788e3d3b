/*
 * recover.c - opening, recovering and closing a database.
 *
 * Open takes the directory's LOCK, reads CURRENT and the manifest it names
 * (live tables per level, first live log, last sequence; version.c), checks
 * that every named table is there with its recorded size, then replays
 * every live log in order into a fresh memtable (flushing to level-0 tables
 * whenever it fills). The recovered memtable is written to a table too, a
 * new log is started, a new manifest holding the whole state is written and
 * CURRENT switched to it, and older logs, manifests and unreferenced tables
 * (left by a crash in the middle of a flush or compaction) are deleted.
 * Recovery therefore never appends to a log or manifest that may end in a
 * torn record. A directory with the single-file MANIFEST of format 1 (no
 * CURRENT) is refused with PPDB_EVERSION: no such database was deployed.
 *
 * How a log ends decides what happens: a clean end or a torn last record
 * (never acknowledged as synced) is normal; corruption in the middle is
 * reported: with paranoid_checks open fails with PPDB_ECORRUPT, otherwise it
 * is logged with file and offset, counted in stats.recovery_corruptions, and
 * replay stops there (nothing after a bad record is applied, so the state is
 * a prefix of the history, never a hole in it).
 *
 * Invariants: a table file is named by the manifest only after it and its
 * directory entry were synced; a log is deleted only after a manifest edit
 * whose log_number is above it is durable (and no checkpoint is copying it).
 */
#include "db_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define DB_MAX_LOGS 4096u /* live logs replayed at open; more is corruption */

static bool parse_name(const char *name, uint64_t *number_out, const char **ext_out)
{
    const char *p = name;
    uint64_t n = 0;
    size_t plen = sizeof(PPDB_MANIFEST_PREFIX) - 1;
    bool man = strncmp(p, PPDB_MANIFEST_PREFIX, plen) == 0;
    if (man)
        p += plen;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (man ? *p != '\0' : strcmp(p, ".log") != 0 && strcmp(p, ".sst") != 0)
        return false;
    *number_out = n;
    *ext_out = man ? "manifest" : p + 1;
    return true;
}

static bool version_has(const struct version *v, uint64_t number)
{
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++)
            if (v->files[l][i]->number == number)
                return true;
    return false;
}

static bool is_dead(struct ppdb_db *db, const struct version *v, uint64_t number, const char *ext,
                    uint64_t log_number, bool all_tables, bool pinned)
{
    if (strcmp(ext, "log") == 0)
        return number < log_number && !pinned;
    if (strcmp(ext, "manifest") == 0)
        return number != atomic_load(&db->vs.manifest_number) &&
               number < atomic_load(&db->vs.next_file);
    return all_tables && !version_has(v, number);
}

void db_delete_obsolete(struct ppdb_db *db, uint64_t log_number, bool all_tables)
{
    char **names = NULL;
    size_t count = 0;
    if (db->fs->ops->list(db->fs, db->dir, &names, &count) != 0)
        return;
    pthread_mutex_lock(&db->mu);
    struct version *v = db->current;
    version_ref(v);
    bool pinned = db->log_pins > 0;
    pthread_mutex_unlock(&db->mu);
    for (size_t i = 0; i < count; i++) {
        uint64_t number;
        const char *ext;
        if (!parse_name(names[i], &number, &ext) ||
            !is_dead(db, v, number, ext, log_number, all_tables, pinned))
            continue;
        char path[DB_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", db->dir, names[i]);
        int rc = db->fs->ops->remove(db->fs, path);
        if (rc && rc != PPDB_ENOENT)
            PPDB_LOG(db->lg, PPDB_LOG_WARN, "engine", "cannot delete obsolete file",
                     "file=%s err=%s", path, ppdb_errname(rc));
    }
    version_unref(v);
    ppdb_fs_names_free(names, count);
}

/* ------------------------------------------------------------- manifest */

static int load_manifest(struct ppdb_db *db, uint64_t *log_number)
{
    uint64_t last_seq = 0;
    int rc = vset_recover(&db->vs, &db->current, &last_seq);
    if (rc == PPDB_ENOENT) {
        char path[DB_PATH_MAX];
        snprintf(path, sizeof(path), "%s/MANIFEST", db->dir);
        if (db->fs->ops->exists(db->fs, path) == 0) {
            PPDB_LOG(db->lg, PPDB_LOG_ERROR, "engine", "MANIFEST of format 1 is not supported",
                     "dir=%s", db->dir);
            return PPDB_EVERSION;
        }
        *log_number = 0;
        db->current = version_new();
        if (!db->current)
            return PPDB_ENOMEM;
        return db->opts.create_if_missing ? 0 : PPDB_ENOENT;
    }
    if (rc == 0 && db->opts.error_if_exists)
        rc = PPDB_EEXIST;
    if (rc)
        return rc;
    *log_number = db->vs.log_number;
    atomic_store(&db->last_seq, last_seq);
    return 0;
}

/* Every named table must be there with its size (a short one is corrupt). */
static int check_tables(struct ppdb_db *db)
{
    const struct version *v = db->current;
    uint64_t last_seq = atomic_load(&db->last_seq);
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            const struct vfile *f = v->files[l][i];
            char path[DB_PATH_MAX];
            uint64_t size = 0;
            db_path(db, path, sizeof(path), f->number, "sst");
            int rc = db->fs->ops->file_size(db->fs, path, &size);
            if (rc == PPDB_ENOENT || (!rc && size != f->size))
                rc = PPDB_ECORRUPT;
            if (rc) {
                PPDB_LOG(db->lg, PPDB_LOG_ERROR, "engine", "table missing or of the wrong size",
                         "file=%s err=%s", path, ppdb_errname(rc));
                return rc;
            }
            last_seq = PPDB_MAX(last_seq, f->max_seq);
        }
    atomic_store(&db->last_seq, last_seq);
    return 0;
}

/* ------------------------------------------------------------ log replay */

/* Recovery: m to a level-0 table in the in-memory version only; the new
 * manifest written at the end of open names it. */
static int install_table(struct ppdb_db *db, struct memtable *m)
{
    struct vfile *f;
    int rc = db_write_table(db, m, &f);
    if (rc)
        return rc;
    struct version_edit e;
    edit_init(&e);
    struct version *v = NULL;
    f->owner = &db->vs;
    rc = edit_add_file(&e, 0, f);
    if (!rc)
        rc = version_apply(db->current, &e, &v);
    edit_deinit(&e);
    db->stats.flush_bytes += f->size;
    vfile_unref(f);
    if (rc)
        return rc;
    version_unref(db->current);
    db->current = v;
    db->stats.flushes++;
    return 0;
}

static int replay_cb(void *arg, uint64_t seq, int type, uint64_t version, const uint8_t *key,
                     size_t klen, const uint8_t *val, size_t vlen)
{
    struct ppdb_db *db = arg;
    db->stats.recovered_entries++;
    return mem_add(db->mem, seq, type, version, key, klen, val, vlen);
}

/* Records must carry ascending sequence numbers: a repeat would make two
 * entries with one internal key, which only a corrupt log can hold. */
static int apply_record(struct ppdb_db *db, const uint8_t *p, size_t n, uint64_t *replayed)
{
    int rc = batch_rep_validate(p, n);
    if (rc)
        return rc;
    uint32_t count = batch_rep_count(p);
    if (count == 0)
        return 0;
    if (batch_seq(p) <= *replayed)
        return PPDB_ECORRUPT;
    rc = batch_rep_iterate(p, n, replay_cb, db);
    if (rc)
        return rc;
    uint64_t last = batch_seq(p) + count - 1;
    *replayed = last;
    if (last > atomic_load(&db->last_seq))
        atomic_store(&db->last_seq, last);
    if (mem_usage(db->mem) < db->opts.memtable_bytes)
        return 0;
    rc = install_table(db, db->mem);
    mem_unref(db->mem);
    db->mem = NULL;
    return rc ? rc : mem_new(&db->mem);
}

static int report_corruption(struct ppdb_db *db, uint64_t number, uint64_t off, const char *why)
{
    db->stats.recovery_corruptions++;
    PPDB_LOG(db->lg, PPDB_LOG_ERROR, "engine",
             db->opts.paranoid_checks ? "corrupt log; open fails (paranoid_checks)"
                                      : "corrupt log; recovery stops at the last good record",
             "dir=%s log=%" PRIu64 " offset=%" PRIu64 " why=\"%s\"", db->dir, number, off, why);
    return db->opts.paranoid_checks ? PPDB_ECORRUPT : 0;
}

/* Replays one log; *stop_out when corruption ends recovery here. */
static int replay_log(struct ppdb_db *db, uint64_t number, uint64_t *replayed, bool *stop_out)
{
    char path[DB_PATH_MAX];
    struct ppdb_file *f;
    struct wal_reader r;
    db_path(db, path, sizeof(path), number, "log");
    int rc = db->fs->ops->open(db->fs, path, PPDB_FS_READ, &f);
    if (rc)
        return rc;
    if ((rc = wal_reader_init(&r, db->fs, f)) != 0) {
        db->fs->ops->close(db->fs, f);
        return rc;
    }
    const uint8_t *p;
    size_t n;
    while ((rc = wal_reader_next(&r, &p, &n)) == 0) {
        rc = apply_record(db, p, n, replayed);
        if (rc == PPDB_ECORRUPT) {
            *stop_out = true;
            rc = report_corruption(db, number, r.good_end_off,
                                   "malformed batch or sequence out of order");
            break;
        }
        if (rc)
            break;
    }
    if (rc == PPDB_ENOTFOUND) {
        rc = 0;
        if (r.end == WAL_END_TORN)
            PPDB_LOG(db->lg, PPDB_LOG_INFO, "engine", "dropped torn log tail",
                     "dir=%s log=%" PRIu64 " offset=%" PRIu64, db->dir, number, r.bad_off);
    } else if (rc == PPDB_ECORRUPT && r.end == WAL_END_CORRUPT) {
        *stop_out = true;
        rc = report_corruption(db, number, r.bad_off, r.why);
    }
    wal_reader_deinit(&r);
    db->fs->ops->close(db->fs, f);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Live log numbers (>= min_log), ascending; bumps next_file past every
 * numbered file in the directory. */
static int find_logs(struct ppdb_db *db, uint64_t min_log, uint64_t *logs, size_t *n_out)
{
    char **names = NULL;
    size_t count = 0, n = 0;
    int rc = db->fs->ops->list(db->fs, db->dir, &names, &count);
    for (size_t i = 0; !rc && i < count; i++) {
        uint64_t number;
        const char *ext;
        if (!parse_name(names[i], &number, &ext))
            continue;
        if (number >= atomic_load(&db->vs.next_file))
            atomic_store(&db->vs.next_file, number + 1);
        if (strcmp(ext, "log") != 0 || number < min_log)
            continue;
        if (n == DB_MAX_LOGS)
            rc = PPDB_ELIMIT;
        else
            logs[n++] = number;
    }
    ppdb_fs_names_free(names, count);
    qsort(logs, n, sizeof(*logs), cmp_u64);
    *n_out = n;
    return rc;
}

static int recover_logs(struct ppdb_db *db, uint64_t min_log)
{
    uint64_t *logs = ppdb_malloc(DB_MAX_LOGS * sizeof(*logs));
    if (!logs)
        return PPDB_ENOMEM;
    size_t n = 0;
    int rc = find_logs(db, min_log, logs, &n);
    bool stop = false;
    uint64_t replayed = 0; /* highest sequence number replayed so far */
    for (size_t i = 0; !rc && !stop && i < n; i++)
        rc = replay_log(db, logs[i], &replayed, &stop);
    ppdb_free(logs);
    return rc;
}

/* After replay: recovered data to a table, a new log, a new manifest. */
static int start_fresh(struct ppdb_db *db)
{
    char path[DB_PATH_MAX];
    int rc = 0;
    if (mem_count(db->mem) > 0) {
        rc = install_table(db, db->mem);
        mem_unref(db->mem);
        db->mem = NULL;
        if (!rc)
            rc = mem_new(&db->mem);
    }
    uint64_t number = db_new_file_number(db);
    if (!rc)
        rc = db_path(db, path, sizeof(path), number, "log");
    if (!rc)
        rc = wal_writer_open(db->fs, path, number, &db->wal);
    if (!rc)
        rc = db->fs->ops->sync_dir(db->fs, db->dir);
    if (rc)
        return rc;
    db->mem->log_number = number;
    struct version_edit e;
    edit_init(&e);
    e.has_log_number = e.has_last_seq = true;
    e.log_number = number;
    e.last_seq = atomic_load(&db->last_seq);
    struct version *v = NULL;
    rc = vset_log_and_apply(&db->vs, db->current, &e, &v); /* a new manifest */
    edit_deinit(&e);
    if (rc)
        return rc;
    version_unref(db->current);
    db->current = v;
    db_delete_obsolete(db, number, true);
    return 0;
}

/* ------------------------------------------------------------ open/close */

static int check_options(const char *dir, const struct ppdb_db_options *o)
{
    if (!dir || !*dir || strlen(dir) > DB_DIR_MAX)
        return PPDB_EINVAL;
    if (o->memtable_bytes < 4096 || o->block_bytes < 256 || o->block_bytes > (16u << 20))
        return PPDB_EINVAL;
    if (o->bloom_bits_per_key < 0 || o->bloom_bits_per_key > 64)
        return PPDB_EINVAL;
    if (o->compression < PPDB_DB_COMPRESS_NONE || o->compression > PPDB_DB_COMPRESS_ZSTD)
        return PPDB_EINVAL;
    if (o->sync_policy < PPDB_SYNC_PER_WRITE || o->sync_policy > PPDB_SYNC_NEVER)
        return PPDB_EINVAL;
    if (o->max_batch_bytes < 64 || o->max_group_bytes < 64)
        return PPDB_EINVAL;
    if (o->max_open_files < 4 || o->l0_compaction_trigger < 1 ||
        o->l0_slowdown_trigger < o->l0_compaction_trigger ||
        o->l0_stop_trigger < o->l0_slowdown_trigger || o->l0_stop_trigger > 60)
        return PPDB_EINVAL;
    if (o->level1_bytes < 4096 || o->level_multiplier < 2 || o->target_file_bytes < 1024)
        return PPDB_EINVAL;
    return 0;
}

static void db_free(struct ppdb_db *db)
{
    while (db->snap_head) { /* snapshots the caller did not release */
        struct ppdb_snapshot *s = db->snap_head;
        db->snap_head = s->next;
        ppdb_free(s);
    }
    if (db->wal.f)
        wal_writer_close(&db->wal);
    db_sv_deinit(db); /* before the tables' pins go back to the table cache */
    mem_unref(db->mem);
    mem_unref(db->imm);
    version_unref(db->current);
    vset_deinit(&db->vs);
    tcache_free(db->tc);
    if (db->cache)
        ppdb_cache_free(db->cache);
    if (db->lock)
        db->fs->ops->unlock(db->fs, db->lock);
    for (int i = 0; i < DB_PIPE_MAX; i++)
        ppdb_buf_deinit(&db->pipe_bufs[i]);
    pthread_cond_destroy(&db->bg_cv);
    pthread_mutex_destroy(&db->mu);
    ppdb_free(db->dir);
    ppdb_free(db);
}

static void setup(struct ppdb_db *db, struct ppdb_fs *fs, const struct ppdb_db_options *o)
{
    db->fs = fs;
    db->opts = *o;
    db->lg = o->logger ? o->logger : ppdb_logger_default();
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    for (int i = 0; i < DB_PIPE_MAX; i++)
        ppdb_buf_init(&db->pipe_bufs[i]);
    atomic_init(&db->last_seq, 0);
    ppdb_table_options_default(&db->topts);
    db->topts.block_size = (uint32_t)o->block_bytes;
    db->topts.bloom_bits_per_key = (uint32_t)o->bloom_bits_per_key;
    db->topts.compression = o->compression == PPDB_DB_COMPRESS_LZ4    ? PPDB_COMPRESS_LZ4
                            : o->compression == PPDB_DB_COMPRESS_ZSTD ? PPDB_COMPRESS_ZSTD
                                                                      : PPDB_COMPRESS_NONE;
    db->topts.logger = db->lg;
}

static int open_dir(struct ppdb_db *db)
{
    char path[DB_PATH_MAX];
    int rc = 0;
    if (db->opts.create_if_missing) {
        char parent[DB_PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", db->dir);
        char *slash = strrchr(parent, '/');
        if (slash)
            slash[slash == parent ? 1 : 0] = '\0';
        rc = db->fs->ops->mkdir(db->fs, db->dir);
        if (rc == 0) /* the new directory's entry must survive a crash */
            rc = db->fs->ops->sync_dir(db->fs, slash ? parent : ".");
        if (rc == PPDB_EEXIST || rc == PPDB_ENOENT)
            rc = 0; /* exists; or "." is not a syncable directory in this fs */
    }
    snprintf(path, sizeof(path), "%s/LOCK", db->dir);
    if (!rc)
        rc = db->fs->ops->lock(db->fs, path, &db->lock);
    if (!rc && db->opts.block_cache_bytes > 0)
        rc = ppdb_cache_new(db->opts.block_cache_bytes, 0, &db->cache);
    if (!rc)
        rc = tcache_new(db->fs, db->dir, db->cache, db->lg, db->opts.max_open_files, &db->tc);
    db->vs.tc = db->tc;
    return rc;
}

int ppdb_db_open(struct ppdb_fs *fs, const char *dir, const struct ppdb_db_options *opts,
                 struct ppdb_db **db_out)
{
    struct ppdb_db_options defaults;
    ppdb_db_options_default(&defaults);
    if (!opts)
        opts = &defaults;
    int rc = check_options(dir, opts);
    if (rc)
        return rc;
    struct ppdb_db *db = ppdb_calloc(1, sizeof(*db));
    if (!db)
        return PPDB_ENOMEM;
    setup(db, fs, opts);
    uint64_t log_number = 0;
    db->dir = ppdb_strdup(dir);
    vset_init(&db->vs, fs, db->dir, db->lg);
    rc = db->dir ? open_dir(db) : PPDB_ENOMEM;
    if (!rc)
        rc = db_sv_init(db);
    if (!rc)
        rc = load_manifest(db, &log_number);
    if (!rc)
        rc = check_tables(db);
    if (!rc)
        rc = mem_new(&db->mem);
    if (!rc)
        rc = recover_logs(db, log_number);
    if (!rc)
        rc = start_fresh(db);
    struct super_version *sv = rc ? NULL : db_sv_new();
    if (!rc && !sv)
        rc = PPDB_ENOMEM;
    if (!rc) {
        pthread_mutex_lock(&db->mu);
        db_install_sv(db, sv); /* the first read state */
        db_maybe_schedule(db); /* level 0 may be due for a compaction */
        pthread_mutex_unlock(&db->mu);
    }
    if (rc) {
        db_free(db);
        return rc;
    }
    *db_out = db;
    return 0;
}

int ppdb_db_close(struct ppdb_db *db)
{
    if (!db)
        return 0;
    pthread_mutex_lock(&db->mu);
    /* no write may run concurrently with close */
    PPDB_ASSERT(db->wq_head == NULL && db->pipe_len == 0);
    db->closing = true;
    while (db->bg_tasks > 0)
        pthread_cond_wait(&db->bg_cv, &db->mu);
    pthread_mutex_unlock(&db->mu);
    int rc = 0;
    /* After a full disk the log is cut back to its last acknowledged record
     * (and synced); after any other error its state is unknown: left as is. */
    if (db->wal.f && db->bg_error == PPDB_ENOSPC)
        rc = wal_writer_rewind(&db->wal, db->wal_good_size);
    else if (db->wal.f && db->opts.sync_policy != PPDB_SYNC_NEVER && !db->bg_error)
        rc = wal_writer_sync(&db->wal);
    if (db->wal.f) {
        int crc = wal_writer_close(&db->wal);
        rc = rc ? rc : crc;
    }
    db_free(db);
    return rc;
}
