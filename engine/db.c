/*
 * db.c - the database: write path (group commit), read path, memtable
 * switch and background flush. Opening and recovery are in recover.c.
 *
 * Writes. Every write call queues a struct writer under the mutex. The
 * writer at the head is the leader: it makes room in the memtable (maybe
 * switching it, maybe stalling until the previous one is flushed), gathers
 * the queued batches behind it into one group, gives it sequence numbers,
 * and, without the mutex, appends the group as ONE log record, syncs once if
 * any member asked for it, and inserts the entries into the memtable. Then
 * it hands the result to every member and wakes the next leader. So eight
 * threads doing synced writes share fsyncs instead of queueing for one each.
 * A failed log append or sync is sticky (bg_error): the log's tail is then
 * unknown, so no later write may be acknowledged on top of it.
 *
 * Reads take references to the memtable, the immutable memtable and the
 * current version under the mutex, then search without it: newest source
 * first, stopping when no older source can hold a higher version than the
 * best entry found (each source knows its highest version). Sequence numbers
 * above the published last_seq are invisible, so a batch is seen whole.
 *
 * Invariants (under mu): at most one immutable memtable; while imm != NULL
 * a flush task is queued or running, unless bg_error stopped it; close
 * waits for bg_tasks to reach 0 (a task counts until it returns); only the
 * leader touches db->mem's contents, db->wal and db->group; last_seq only
 * grows and every entry with seq <= last_seq is in mem, imm or a table.
 */
#include "db_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

void ppdb_db_options_default(struct ppdb_db_options *o)
{
    memset(o, 0, sizeof(*o));
    o->create_if_missing = true;
    o->memtable_bytes = 4u << 20;
    o->block_bytes = 4096;
    o->block_cache_bytes = 8u << 20;
    o->bloom_bits_per_key = 10;
    o->compression = PPDB_DB_COMPRESS_LZ4;
    o->sync_policy = PPDB_SYNC_PER_WRITE;
    o->max_batch_bytes = 64u << 20;
    o->max_group_bytes = 1u << 20;
    o->max_stall_ms = 30000;
}

int db_path(const struct ppdb_db *db, char *out, size_t cap, uint64_t number, const char *ext)
{
    int n = snprintf(out, cap, "%s/%06" PRIu64 ".%s", db->dir, number, ext);
    return n < 0 || (size_t)n >= cap ? PPDB_EINVAL : 0;
}

/* ---------------------------------------------------------------- flush */

/* Writes memtable m to a new table file `number` and opens it for reads. */
int db_write_table(struct ppdb_db *db, struct memtable *m, uint64_t number, struct vfile **f_out)
{
    char path[DB_PATH_MAX];
    struct ppdb_fs *fs = db->fs;
    struct ppdb_file *file = NULL;
    struct ppdb_table_builder *b = NULL;
    struct ppdb_table_props props;
    ppdb_table_props_init(&props);
    int rc = db_path(db, path, sizeof(path), number, "sst");
    if (!rc)
        rc = fs->ops->open(fs, path, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_TRUNC, &file);
    if (!rc)
        rc = ppdb_table_builder_new(fs, file, &db->topts, &b);
    struct mem_iter it;
    for (mem_iter_first(&it, m); !rc && mem_iter_valid(&it); mem_iter_next(&it))
        rc = ppdb_table_builder_add(b, it.node->ikey, it.node->iklen, mem_iter_value(&it),
                                    it.node->vlen);
    if (!rc)
        rc = ppdb_table_builder_finish(b, &props);
    if (b)
        ppdb_table_builder_free(b);
    if (!rc)
        rc = fs->ops->sync(fs, file);
    if (file) {
        int crc = fs->ops->close(fs, file);
        rc = rc ? rc : crc;
    }
    if (!rc) /* the new name must survive a crash before the manifest names it */
        rc = fs->ops->sync_dir(fs, db->dir);
    struct vfile *f = NULL;
    if (!rc && !(f = vfile_new(number, props.file_size, props.max_version, props.max_seq)))
        rc = PPDB_ENOMEM;
    if (!rc)
        rc = db_open_table(db, f);
    ppdb_table_props_deinit(&props);
    if (rc) {
        if (f)
            vfile_unref(f);
        (void)fs->ops->remove(fs, path);
        return rc;
    }
    *f_out = f;
    return 0;
}

int db_open_table(struct ppdb_db *db, struct vfile *f)
{
    char path[DB_PATH_MAX];
    uint64_t size = 0;
    int rc = db_path(db, path, sizeof(path), f->number, "sst");
    if (!rc)
        rc = db->fs->ops->open(db->fs, path, PPDB_FS_READ, &f->file);
    if (rc)
        return rc == PPDB_ENOENT ? PPDB_ECORRUPT : rc; /* a named table is missing */
    f->fs = db->fs;
    rc = db->fs->ops->size(db->fs, f->file, &size);
    if (!rc && size != f->size)
        rc = PPDB_ECORRUPT;
    struct ppdb_table_read_options ro = {.logger = db->lg, .fill_cache = true};
    if (!rc)
        rc = ppdb_table_open(db->fs, f->file, size, db->cache, f->number, &ro, &f->table);
    return rc;
}

/* Captures the manifest contents under mu (files of `v`). */
int db_manifest_snapshot(struct ppdb_db *db, const struct version *v, uint64_t log_number,
                         struct ppdb_buf *out)
{
    struct manifest m = {.next_file = db->next_file,
                         .log_number = log_number,
                         .last_seq = atomic_load(&db->last_seq),
                         .nfiles = v->nfiles};
    m.files = ppdb_calloc(v->nfiles ? v->nfiles : 1, sizeof(*m.files));
    if (!m.files)
        return PPDB_ENOMEM;
    for (size_t i = 0; i < v->nfiles; i++)
        m.files[i] = (struct vfile){.number = v->files[i]->number,
                                    .size = v->files[i]->size,
                                    .max_version = v->files[i]->max_version,
                                    .max_seq = v->files[i]->max_seq};
    int rc = manifest_encode(&m, out);
    ppdb_free(m.files);
    return rc;
}

/* Background: imm -> table, manifest, then drop imm and its log. */
static int flush_imm(struct ppdb_db *db)
{
    pthread_mutex_lock(&db->mu);
    struct memtable *imm = db->imm;
    uint64_t number = db->next_file++;
    pthread_mutex_unlock(&db->mu);
    struct vfile *f = NULL;
    int rc = db_write_table(db, imm, number, &f);
    struct ppdb_buf man;
    ppdb_buf_init(&man);
    pthread_mutex_lock(&db->mu);
    struct version *v = NULL;
    uint64_t log_number = db->mem->log_number; /* imm's log and older are obsolete */
    if (!rc && !(v = version_with_file(db->current, f)))
        rc = PPDB_ENOMEM;
    if (!rc)
        rc = db_manifest_snapshot(db, v, log_number, &man);
    pthread_mutex_unlock(&db->mu);
    if (!rc)
        rc = ppdb_fs_write_atomic(db->fs, db->dir, PPDB_MANIFEST_NAME, man.data, man.len);
    ppdb_buf_deinit(&man);
    pthread_mutex_lock(&db->mu);
    if (!rc) {
        version_unref(db->current);
        db->current = v;
        db->imm = NULL;
        db->stats.flushes++;
        v = NULL;
    }
    pthread_mutex_unlock(&db->mu);
    if (f)
        vfile_unref(f); /* the version holds its own reference */
    version_unref(v);
    if (!rc) {
        mem_unref(imm);
        db_delete_obsolete(db, log_number);
    }
    return rc;
}

static void flush_task_cb(void *arg)
{
    struct ppdb_db *db = arg;
    int rc = flush_imm(db);
    pthread_mutex_lock(&db->mu);
    if (rc) {
        if (!db->bg_error)
            db->bg_error = rc;
        PPDB_LOG(db->lg, PPDB_LOG_ERROR, "engine", "flush failed", "err=%s dir=%s",
                 ppdb_errname(rc), db->dir);
    }
    db->bg_tasks--;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
}

/* Called with mu held by the leader: freeze mem, start a new log. */
static int switch_memtable(struct ppdb_db *db)
{
    struct wal_writer nw;
    struct memtable *nm = NULL;
    char path[DB_PATH_MAX];
    int rc = 0;
    /* Sync the old log first so a later synced write never survives a crash
     * that loses an earlier, unsynced one (recovery replays a prefix). */
    if (db->opts.sync_policy != PPDB_SYNC_NEVER)
        rc = wal_writer_sync(&db->wal);
    uint64_t number = db->next_file;
    if (!rc)
        rc = db_path(db, path, sizeof(path), number, "log");
    if (!rc)
        rc = mem_new(&nm);
    if (!rc && (rc = wal_writer_open(db->fs, path, number, &nw)) != 0) {
        mem_unref(nm);
    } else if (!rc && (rc = db->fs->ops->sync_dir(db->fs, db->dir)) != 0) {
        wal_writer_close(&nw);
        (void)db->fs->ops->remove(db->fs, path);
        mem_unref(nm);
    }
    if (rc)
        return rc;
    db->next_file++;
    wal_writer_close(&db->wal);
    db->wal = nw;
    nm->log_number = number;
    db->imm = db->mem;
    db->mem = nm;
    db->bg_tasks++;
    rc = db->fs->ops->schedule(db->fs, flush_task_cb, db);
    if (rc)
        db->bg_tasks--; /* imm stays; bg_error stops writers */
    return rc;
}

static int wait_bg(struct ppdb_db *db, uint64_t deadline_us)
{
    uint64_t now = db->fs->ops->now_us(db->fs);
    if (now >= deadline_us)
        return PPDB_ETIMEDOUT;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (deadline_us - now) * 1000;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    /* Woken, timed out or spurious: the caller re-checks state and deadline. */
    (void)pthread_cond_timedwait(&db->bg_cv, &db->mu, &ts);
    return 0;
}

/* Leader, mu held. force: switch even if not full (unless empty). */
static int make_room(struct ppdb_db *db, bool force)
{
    bool stalled = false;
    uint64_t start_us = 0, deadline_us = 0;
    int rc = 0;
    for (;;) {
        if (db->bg_error) {
            rc = db->bg_error;
            break;
        }
        if (!force && mem_usage(db->mem) < db->opts.memtable_bytes)
            break;
        if (force && mem_count(db->mem) == 0)
            break;
        if (db->imm == NULL) {
            rc = switch_memtable(db);
            if (rc && !db->bg_error)
                db->bg_error = rc;
            force = false;
            if (rc)
                break;
            continue;
        }
        if (!stalled) {
            stalled = true;
            db->stats.stalls++;
            start_us = db->fs->ops->now_us(db->fs);
            deadline_us = start_us + (uint64_t)db->opts.max_stall_ms * 1000;
        }
        if ((rc = wait_bg(db, deadline_us)) != 0)
            break;
    }
    if (stalled)
        db->stats.stall_us += db->fs->ops->now_us(db->fs) - start_us;
    return rc;
}

/* ---------------------------------------------------------------- writes */

static bool effective_sync(const struct ppdb_db *db, bool sync)
{
    if (db->opts.sync_policy == PPDB_SYNC_ALWAYS)
        return true;
    if (db->opts.sync_policy == PPDB_SYNC_NEVER)
        return false;
    return sync;
}

/* Leader, mu held: copies the batches of the writers that join the group
 * into db->group; returns the last member. */
static struct writer *build_group(struct ppdb_db *db, struct writer *leader, int *rc_out)
{
    struct writer *last = leader;
    ppdb_buf_reset(&db->group);
    int rc = ppdb_buf_append(&db->group, leader->rep, leader->rep_len);
    for (struct writer *w = leader->next; !rc && w; w = w->next) {
        if (w->rep == NULL || (w->sync && !leader->sync))
            break; /* a flush request, or a sync write behind a non-sync leader */
        if (db->group.len + w->rep_len > db->opts.max_group_bytes)
            break;
        rc = batch_rep_append(&db->group, w->rep, w->rep_len);
        if (!rc)
            last = w;
    }
    *rc_out = rc;
    return last;
}

static int insert_cb(void *arg, uint64_t seq, int type, uint64_t version, const uint8_t *key,
                     size_t klen, const uint8_t *val, size_t vlen)
{
    return mem_add(arg, seq, type, version, key, klen, val, vlen);
}

/* Leader, mu NOT held: log the group, sync, apply. */
static int commit_group(struct ppdb_db *db, bool sync)
{
    int rc = wal_writer_add(&db->wal, db->group.data, db->group.len);
    if (!rc && sync)
        rc = wal_writer_sync(&db->wal);
    if (!rc)
        rc = batch_rep_iterate(db->group.data, db->group.len, insert_cb, db->mem);
    return rc;
}

static void finish_group(struct ppdb_db *db, struct writer *leader, struct writer *last, int rc)
{
    for (;;) {
        struct writer *w = db->wq_head;
        db->wq_head = w->next;
        if (!db->wq_head)
            db->wq_tail = NULL;
        w->status = rc;
        w->done = true;
        if (w != leader)
            pthread_cond_signal(&w->cv);
        if (w == last)
            break;
    }
    if (db->wq_head)
        pthread_cond_signal(&db->wq_head->cv);
}

/* Runs the group led by `leader` (mu held on entry and exit). */
static void lead(struct ppdb_db *db, struct writer *leader)
{
    int rc = make_room(db, leader->rep == NULL);
    struct writer *last = leader;
    if (rc || leader->rep == NULL) {
        finish_group(db, leader, last, rc);
        return;
    }
    last = build_group(db, leader, &rc);
    if (rc) {
        finish_group(db, leader, leader, rc);
        return;
    }
    uint64_t seq = atomic_load(&db->last_seq) + 1;
    uint32_t count = batch_rep_count(db->group.data);
    batch_set_seq(&db->group, seq);
    bool sync = leader->sync;
    uint64_t wal_before = db->wal.size;
    pthread_mutex_unlock(&db->mu);
    rc = commit_group(db, sync);
    pthread_mutex_lock(&db->mu);
    if (rc) {
        if (!db->bg_error)
            db->bg_error = rc;
        PPDB_LOG(db->lg, PPDB_LOG_ERROR, "engine", "log write failed; writes stopped",
                 "err=%s dir=%s", ppdb_errname(rc), db->dir);
    } else {
        atomic_store(&db->last_seq, seq + count - 1);
        db->stats.groups++;
        db->stats.entries += count;
        db->stats.wal_bytes += db->wal.size - wal_before;
        uint64_t members = 1;
        for (struct writer *w = leader; w != last; w = w->next)
            members++;
        db->stats.writes += members;
        if (sync) {
            db->stats.syncs++;
            db->stats.synced_writes += members;
        }
    }
    finish_group(db, leader, last, rc);
}

/* Queues a writer and waits for its turn or its group's result. */
static int run_writer(struct ppdb_db *db, const uint8_t *rep, size_t rep_len, bool sync)
{
    struct writer w = {.rep = rep, .rep_len = rep_len, .sync = sync};
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&db->mu);
    if (db->wq_tail)
        db->wq_tail->next = &w;
    else
        db->wq_head = &w;
    db->wq_tail = &w;
    while (!w.done && db->wq_head != &w)
        pthread_cond_wait(&w.cv, &db->mu);
    if (!w.done)
        lead(db, &w);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return w.status;
}

int ppdb_db_write(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                  const struct ppdb_batch *batch)
{
    PPDB_ASSERT(db && batch && batch->rep.len >= PPDB_BATCH_HEADER);
    if (batch_rep_count(batch->rep.data) == 0)
        return 0;
    if (batch->rep.len > db->opts.max_batch_bytes)
        return PPDB_ELIMIT;
    bool sync = effective_sync(db, wopts && wopts->sync);
    return run_writer(db, batch->rep.data, batch->rep.len, sync);
}

static int write_one(struct ppdb_db *db, const struct ppdb_write_options *wopts, int type,
                     const void *key, size_t klen, const void *val, size_t vlen, uint64_t version)
{
    struct ppdb_batch b;
    ppdb_buf_init(&b.rep);
    uint8_t hdr[PPDB_BATCH_HEADER] = {0};
    int rc = ppdb_buf_append(&b.rep, hdr, sizeof(hdr));
    if (!rc)
        rc = type == PPDB_VT_VALUE ? ppdb_batch_put_versioned(&b, key, klen, val, vlen, version)
                                   : ppdb_batch_delete_versioned(&b, key, klen, version);
    if (!rc)
        rc = ppdb_db_write(db, wopts, &b);
    ppdb_buf_deinit(&b.rep);
    return rc;
}

int ppdb_db_put(struct ppdb_db *db, const struct ppdb_write_options *wopts, const void *key,
                size_t klen, const void *val, size_t vlen)
{
    return write_one(db, wopts, PPDB_VT_VALUE, key, klen, val, vlen, 0);
}

int ppdb_db_put_versioned(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                          const void *key, size_t klen, const void *val, size_t vlen,
                          uint64_t version)
{
    return write_one(db, wopts, PPDB_VT_VALUE, key, klen, val, vlen, version);
}

int ppdb_db_delete(struct ppdb_db *db, const struct ppdb_write_options *wopts, const void *key,
                   size_t klen)
{
    return write_one(db, wopts, PPDB_VT_DEL, key, klen, NULL, 0, 0);
}

int ppdb_db_delete_versioned(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                             const void *key, size_t klen, uint64_t version)
{
    return write_one(db, wopts, PPDB_VT_DEL, key, klen, NULL, 0, version);
}

int ppdb_db_flush(struct ppdb_db *db)
{
    int rc = run_writer(db, NULL, 0, false);
    if (rc)
        return rc;
    pthread_mutex_lock(&db->mu);
    uint64_t deadline_us = db->fs->ops->now_us(db->fs) + (uint64_t)db->opts.max_stall_ms * 1000;
    while (!rc && db->imm && !db->bg_error)
        rc = wait_bg(db, deadline_us);
    if (!rc)
        rc = db->bg_error;
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* ----------------------------------------------------------------- reads */

struct table_get_ctx {
    struct lookup_hit *hit;
    uint64_t snap_seq;
    int rc;
};

static bool table_get_cb(void *arg, const struct ppdb_ikey *key, const uint8_t *value, size_t vlen)
{
    struct table_get_ctx *c = arg;
    struct lookup_hit *hit = c->hit;
    if (key->seq > c->snap_seq)
        return false;
    bool better = !hit->found || key->version > hit->version ||
                  (key->version == hit->version && key->seq > hit->seq);
    if (better) {
        hit->found = true;
        hit->type = (int)key->type;
        hit->version = key->version;
        hit->seq = key->seq;
        ppdb_buf_reset(hit->value);
        c->rc = ppdb_buf_append(hit->value, value, vlen);
    }
    return true;
}

/* Searches the sources newest first; skips a source that cannot beat the
 * best entry found so far. */
static int lookup(struct memtable *mem, struct memtable *imm, const struct version *v,
                  uint64_t snap, const uint8_t *key, size_t klen, struct lookup_hit *hit)
{
    int rc = mem_get(mem, key, klen, snap, hit);
    if (!rc && imm && (!hit->found || mem_max_version(imm) > hit->version))
        rc = mem_get(imm, key, klen, snap, hit);
    for (size_t i = 0; !rc && i < v->nfiles; i++) {
        struct vfile *f = v->files[i];
        if (hit->found && f->max_version <= hit->version)
            continue;
        struct table_get_ctx c = {.hit = hit, .snap_seq = snap, .rc = 0};
        rc = ppdb_table_get(f->table, key, klen, table_get_cb, &c);
        if (rc == PPDB_ENOTFOUND)
            rc = 0;
        if (!rc)
            rc = c.rc;
    }
    return rc;
}

int ppdb_db_get(struct ppdb_db *db, const struct ppdb_read_options *ropts, const void *key,
                size_t klen, struct ppdb_buf *val_out, uint64_t *version_out)
{
    PPDB_ASSERT(db && (key || klen == 0));
    (void)ropts; /* table reads always verify block checksums */
    if (klen == 0 || klen > PPDB_DB_MAX_KEY)
        return PPDB_EINVAL;
    struct ppdb_buf scratch;
    ppdb_buf_init(&scratch);
    struct lookup_hit hit = {.value = val_out ? val_out : &scratch};
    ppdb_buf_reset(hit.value);
    pthread_mutex_lock(&db->mu);
    struct memtable *mem = db->mem, *imm = db->imm;
    struct version *v = db->current;
    mem_ref(mem);
    if (imm)
        mem_ref(imm);
    version_ref(v);
    uint64_t snap = atomic_load(&db->last_seq);
    pthread_mutex_unlock(&db->mu);
    int rc = lookup(mem, imm, v, snap, key, klen, &hit);
    mem_unref(mem);
    mem_unref(imm);
    version_unref(v);
    ppdb_buf_deinit(&scratch);
    if (!rc && (!hit.found || hit.type == PPDB_VT_DEL))
        rc = PPDB_ENOTFOUND;
    if (rc && val_out)
        ppdb_buf_reset(val_out);
    if (!rc && version_out)
        *version_out = hit.version;
    return rc;
}

void db_wait_idle(struct ppdb_db *db)
{
    pthread_mutex_lock(&db->mu);
    while (db->bg_tasks > 0)
        pthread_cond_wait(&db->bg_cv, &db->mu);
    pthread_mutex_unlock(&db->mu);
}

void ppdb_db_get_stats(struct ppdb_db *db, struct ppdb_db_stats *out)
{
    pthread_mutex_lock(&db->mu);
    *out = db->stats;
    out->last_sequence = atomic_load(&db->last_seq);
    out->memtable_bytes = mem_usage(db->mem);
    out->l0_files = (uint32_t)db->current->nfiles;
    out->bg_error = db->bg_error;
    pthread_mutex_unlock(&db->mu);
}
