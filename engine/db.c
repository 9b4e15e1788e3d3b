/*
 * db.c - the database: write path (group commit), read path, memtable
 * switch, write stalls, full-disk handling and stats. Background flushes
 * and compactions are in compact.c, opening and recovery in recover.c.
 *
 * Writes. Every write call queues a struct writer under the mutex. The
 * writer at the head is the leader: it gathers the queued batches behind it
 * into one group (at most max_group_bytes), gives it sequence numbers, takes
 * it off the queue into the pipe of groups in flight, and, without the
 * mutex, appends the group as ONE log record. Then the log is free: the next
 * head may lead its own group and append it while this one waits for its
 * sync. One log sync runs at a time; it covers every record whose append
 * finished before it began (fdatasync covers all writes before it), so the
 * groups that piled up during a sync share the next one, and a group is
 * never made to wait for a second sync once one has covered it. Groups are
 * applied strictly in pipe order: whichever thread finds the head group
 * ready (appended, and synced if asked) inserts it into the memtable,
 * publishes its sequence numbers and wakes its members, each on its own
 * condition variable. So eight threads doing synced writes keep the disk
 * busy with back-to-back fsyncs instead of taking turns on it.
 *
 * A failed log append, sync or memtable insert is sticky (bg_error): the
 * log's tail is then unknown, so the failing group and every group behind
 * it in the pipe fail (pipe_error), and no later write may be acknowledged
 * on top of it. Except a full disk (PPDB_ENOSPC): once the pipe is drained,
 * the log is cut back to the end of the last acknowledged record
 * (wal_good_size) before writing resumes, so nothing half-written stays in
 * it. Anything that switches the memtable or the log (make_room, flushes,
 * barriers) first waits for the pipe to drain.
 *
 * Stalls (make_room): level-0 tables at l0_slowdown_trigger delay each write
 * group by 1 ms, once, counting only the tables no running compaction has
 * taken (those are on their way out, not a backlog); a full memtable waits
 * while the previous one is still being flushed, or while level 0 (every
 * table in it) is at l0_stop_trigger. The flush of a full memtable does not
 * wait for a running compaction (compact.c), so a writer rarely waits on it.
 *
 * Reads pin a super version - the memtable, the immutable memtable and the
 * current version as one refcounted object, replaced (db_install_sv, mu
 * held) whenever one of them changes - then take the sequence to read at,
 * and search without any lock: newest source first (memtables, level-0
 * tables newest first, then one table per deeper level), skipping a source
 * that cannot hold a higher version than the best entry found (each source
 * knows its highest version). Sequence numbers above the published last_seq
 * are invisible, so a batch is seen whole. The sequence is taken after the
 * super version, so a compaction cannot have dropped what it needs.
 *
 * A get on 2 threads used to take the mutex and three references (and give
 * them back) per call, so every get moved the same cache lines between the
 * cores and the two threads together were slower than one. Now each thread
 * keeps the current super version in its slot of db->slots (one per thread
 * index, DB_SV_SLOTS of them, 128 bytes apart), with a reference of its
 * own: a get swaps the slot to DB_SV_IN_USE (an exchange on a line no other
 * thread touches), checks the number against db->sv_number, reads, and puts
 * it back with a compare-and-swap. Installing a new super version empties
 * every slot and releases what was cached there; a get that finds its slot
 * emptied when putting back releases its reference itself. A slot found in
 * use (two threads with one index modulo DB_SV_SLOTS) or empty falls back
 * to taking a reference under the mutex. Nothing a get finds in a slot is
 * older than what was current when it checked the number, and a memtable
 * switch installs its super version before any write reaches the new
 * memtable, so a get sees every write acknowledged before it began.
 *
 * Invariants (under mu): at most one immutable memtable; while imm != NULL
 * a background task is queued or running, unless bg_error stopped it; close
 * waits for bg_tasks to reach 0 (a task counts until it returns); only the
 * log_busy holder appends to db->wal, only the sync_busy holder syncs it,
 * only the applying holder (or a lone unsynced group's leader) inserts into
 * db->mem, and the memtable and log are switched only with the pipe empty;
 * groups complete in sequence order; synced_end <= log_end; last_seq only
 * grows and every entry with seq <= last_seq is in mem, imm or a table;
 * db->sv names the current mem, imm and current; a slot holds NULL,
 * DB_SV_IN_USE or a super version with one reference owned by the slot.
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
    o->max_open_files = 1000;
    o->l0_compaction_trigger = 4;
    o->l0_slowdown_trigger = 8;
    o->l0_stop_trigger = 12;
    o->level1_bytes = 10u << 20;
    o->level_multiplier = 10;
    o->target_file_bytes = 2u << 20;
    o->tombstone_grace_ms = 10ull * 24 * 3600 * 1000;
}

uint64_t db_new_file_number(struct ppdb_db *db)
{
    return atomic_fetch_add(&db->vs.next_file, 1);
}

void db_set_error(struct ppdb_db *db, int rc, const char *what)
{
    if (rc == PPDB_ENOSPC) {
        db->stats.nospace_errors++;
        db->nospace_retry_us = db->fs->ops->now_us(db->fs) + DB_NOSPACE_RETRY_US;
    }
    if (db->bg_error && db->bg_error != PPDB_ENOSPC)
        return; /* the first hard error stays */
    if (!db->bg_error || rc != PPDB_ENOSPC)
        PPDB_LOG(db->lg, rc == PPDB_ENOSPC ? PPDB_LOG_WARN : PPDB_LOG_ERROR, "engine",
                 rc == PPDB_ENOSPC ? "disk full; read-only until space is freed" : what,
                 "err=%s dir=%s", ppdb_errname(rc), db->dir);
    db->bg_error = rc;
    pthread_cond_broadcast(&db->bg_cv);
}

int db_path(const struct ppdb_db *db, char *out, size_t cap, uint64_t number, const char *ext)
{
    int n = snprintf(out, cap, "%s/%06" PRIu64 ".%s", db->dir, number, ext);
    return n < 0 || (size_t)n >= cap ? PPDB_EINVAL : 0;
}

/* ---------------------------------------------------------------- room */

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
    uint64_t number = db_new_file_number(db);
    struct super_version *sv = db_sv_new();
    if (!rc && !sv)
        rc = PPDB_ENOMEM;
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
    if (rc) {
        db_sv_free(sv);
        return rc;
    }
    wal_writer_close(&db->wal);
    db->wal = nw;
    db->wal_good_size = db->log_end = db->synced_end = 0;
    nm->log_number = number;
    db->imm = db->mem;
    db->mem = nm;
    db_install_sv(db, sv); /* before any write reaches nm */
    atomic_store_explicit(&db->imm_waiting, true, memory_order_release);
    db_maybe_schedule(db);
    return db->bg_error;
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

/* Leader, mu held, after a full disk: cut the log back to its last good
 * record and let the failed background work run again. */
static int try_resume(struct ppdb_db *db)
{
    if (db->bg_error != PPDB_ENOSPC)
        return db->bg_error;
    if (db->fs->ops->now_us(db->fs) < db->nospace_retry_us)
        return PPDB_ENOSPC;
    int rc = wal_writer_rewind(&db->wal, db->wal_good_size);
    if (rc) {
        db_set_error(db, rc == PPDB_ENOSPC ? rc : PPDB_ENOSPC, "cannot rewind the log");
        return PPDB_ENOSPC;
    }
    db->log_end = db->synced_end = db->wal_good_size;
    db->bg_error = 0;
    db->stats.nospace_resumes++;
    PPDB_LOG(db->lg, PPDB_LOG_INFO, "engine", "retrying writes after a full disk", "dir=%s",
             db->dir);
    db_maybe_schedule(db);
    return 0;
}

/* The 1 ms slowdown of LevelDB: delays this group (mu released meanwhile). */
static void slow_down(struct ppdb_db *db)
{
    uint64_t t0 = db->fs->ops->now_us(db->fs);
    pthread_mutex_unlock(&db->mu);
    db->fs->ops->sleep_us(db->fs, 1000);
    pthread_mutex_lock(&db->mu);
    db->stats.l0_slowdowns++;
    db->stats.l0_slowdown_us += db->fs->ops->now_us(db->fs) - t0;
}

struct stall {
    bool on, l0;
    uint64_t start_us, deadline_us;
};

static int stall_wait(struct ppdb_db *db, struct stall *st, bool l0)
{
    if (!st->on) {
        st->on = true;
        db->stats.stalls++;
        st->start_us = db->fs->ops->now_us(db->fs);
        st->deadline_us = st->start_us + (uint64_t)db->opts.max_stall_ms * 1000;
    }
    if (l0 && !st->l0) {
        st->l0 = true;
        db->stats.l0_stops++;
    }
    db_maybe_schedule(db);
    return wait_bg(db, st->deadline_us);
}

/* mu held: level-0 tables not yet taken by a compaction. The slowdown
 * counts these: tables a running compaction is merging away are not a
 * backlog. The stop trigger counts every level-0 table (what reads probe). */
static size_t l0_waiting(const struct ppdb_db *db)
{
    return db->current->nfiles[0] - db->l0_compacting;
}

/* Leader, mu held. force: switch even if not full (unless empty). */
static int make_room(struct ppdb_db *db, bool force)
{
    struct stall st = {0};
    bool slowed = false;
    int rc = 0;
    for (;;) {
        if (db->bg_error && (rc = try_resume(db)) != 0)
            break;
        size_t l0 = db->current->nfiles[0];
        if (!slowed && !force && l0_waiting(db) >= db->opts.l0_slowdown_trigger) {
            slowed = true;
            slow_down(db);
            continue;
        }
        if (!force && (mem_usage(db->mem) < db->opts.memtable_bytes || mem_count(db->mem) == 0))
            break;
        if (force && mem_count(db->mem) == 0)
            break;
        if (db->imm == NULL && l0 < db->opts.l0_stop_trigger) {
            rc = switch_memtable(db);
            if (rc)
                db_set_error(db, rc, "cannot start a new log");
            force = false;
            if (rc)
                break;
            continue;
        }
        if ((rc = stall_wait(db, &st, db->imm == NULL)) != 0)
            break;
    }
    if (st.on) {
        uint64_t us = db->fs->ops->now_us(db->fs) - st.start_us;
        db->stats.stall_us += us;
        if (st.l0)
            db->stats.l0_stop_us += us;
    }
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
 * into buf; returns the last member. */
static struct writer *build_group(struct ppdb_db *db, struct writer *leader, struct ppdb_buf *buf,
                                  int *rc_out)
{
    struct writer *last = leader;
    ppdb_buf_reset(buf);
    int rc = ppdb_buf_append(buf, leader->rep, leader->rep_len);
    for (struct writer *w = leader->next; !rc && w; w = w->next) {
        if (w->rep == NULL || w->barrier_cb || (w->sync && !leader->sync))
            break; /* a flush request, or a sync write behind a non-sync leader */
        if (buf->len + w->rep_len > db->opts.max_group_bytes)
            break;
        rc = batch_rep_append(buf, w->rep, w->rep_len);
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

/* mu held: takes the queued writers up to `last` off the write queue. */
static void dequeue(struct ppdb_db *db, struct writer *last)
{
    db->wq_head = last->next;
    if (!db->wq_head)
        db->wq_tail = NULL;
    last->next = NULL;
}

/* mu held: the head of the write queue may be able to lead now. */
static void wake_head(struct ppdb_db *db)
{
    if (db->wq_head)
        pthread_cond_signal(&db->wq_head->cv);
}

/* mu held: hands rc to a dequeued list of writers. Each may return (and
 * its stack go) as soon as mu is released. */
static void finish_writers(struct writer *first, int rc)
{
    for (struct writer *w = first, *next; w; w = next) {
        next = w->next;
        w->status = rc;
        w->done = true;
        pthread_cond_signal(&w->cv);
    }
}

/* A group may be applied (or failed) once its record is in the log and,
 * for a synced group, a sync begun after its append has returned. */
static bool group_ready(const struct ppdb_db *db, const struct group *g)
{
    return g->appended && (g->status || db->pipe_error || !g->sync || db->synced_end >= g->end_off);
}

/* mu held: the head group is in the memtable (rc 0) or failed: publish its
 * sequence numbers, acknowledge its members, take it off the pipe. */
static void complete_head(struct ppdb_db *db, int rc)
{
    struct group *g = db->pipe_head;
    if (rc && !db->pipe_error)
        db->pipe_error = rc;
    if (!rc) {
        db->wal_good_size = g->end_off;
        atomic_store(&db->last_seq, g->seq + g->count - 1);
        db->stats.groups++;
        db->stats.entries += g->count;
        db->stats.wal_bytes += g->end_off - g->start_off;
        db->stats.writes += g->members;
        if (g->sync)
            db->stats.synced_writes += g->members;
    }
    if (g->pending)
        db->unsynced_members -= g->members;
    db->pipe_head = g->next;
    if (!db->pipe_head)
        db->pipe_tail = NULL;
    if (--db->pipe_len == 0)
        db->pipe_error = 0; /* later groups see bg_error before they append */
    if (db->pipe_bufs[g->slot].cap > 4 * PPDB_WAL_BLOCK)
        ppdb_buf_deinit(&db->pipe_bufs[g->slot]); /* do not keep a huge group's buffer */
    finish_writers(g->first, rc);
    wake_head(db); /* a leader may wait for a slot or for the pipe to drain */
}

/* mu held: applies ready groups in pipe order, unless another thread is
 * applying (it goes on with the ones that become ready meanwhile). The run
 * of ready groups at the head is inserted in one stretch without the mutex
 * (only the applier pops groups, so the run stays put), then acknowledged
 * together. */
static void drive_pipe(struct ppdb_db *db)
{
    while (!db->applying && db->pipe_head && group_ready(db, db->pipe_head)) {
        int rc = db->pipe_head->status ? db->pipe_head->status : db->pipe_error;
        if (rc) {
            complete_head(db, rc);
            continue;
        }
        unsigned n = 0, ok = 0;
        for (struct group *g = db->pipe_head; g && group_ready(db, g) && !g->status; g = g->next)
            n++; /* at most DB_PIPE_MAX */
        struct memtable *mem = db->mem;
        db->applying = true;
        pthread_mutex_unlock(&db->mu);
        for (struct group *g = db->pipe_head; !rc && ok < n; g = g->next) {
            const struct ppdb_buf *b = &db->pipe_bufs[g->slot];
            rc = batch_rep_iterate(b->data, b->len, insert_cb, mem);
            ok += rc == 0;
        }
        pthread_mutex_lock(&db->mu);
        db->applying = false;
        while (ok-- > 0)
            complete_head(db, 0);
        if (rc) {
            db_set_error(db, rc, "memtable insert failed; writes stopped");
            complete_head(db, rc);
        }
    }
}

/* mu held, after a sync that made the log durable up to target: counts
 * the synced writes it covered, and sets how many the next sync waits for. */
static void account_sync(struct ppdb_db *db, uint64_t target, uint64_t took_us)
{
    uint64_t covered = 0;
    for (struct group *g = db->pipe_head; g; g = g->next) /* at most DB_PIPE_MAX */
        if (g->pending && g->end_off <= target) {
            g->pending = false;
            covered += g->members;
        }
    db->unsynced_members -= covered;
    db->stats.syncs++;
    if (target > db->synced_end)
        db->synced_end = target;
    db->sync_expect = covered + db->unsynced_members;
    db->sync_hold_until_us =
        db->fs->ops->now_us(db->fs) + PPDB_MIN(took_us, (uint64_t)DB_SYNC_HOLD_MAX_US);
}

/* mu held, no sync running: one log sync covering every complete append.
 * Then the oldest group still uncovered is told to start the next one. */
static void sync_log(struct ppdb_db *db)
{
    uint64_t target = db->log_end;
    db->sync_busy = true;
    pthread_mutex_unlock(&db->mu);
    uint64_t t0 = db->fs->ops->now_us(db->fs);
    int rc = wal_writer_sync(&db->wal);
    uint64_t took_us = db->fs->ops->now_us(db->fs) - t0;
    pthread_mutex_lock(&db->mu);
    db->sync_busy = false;
    if (rc) {
        db_set_error(db, rc, "log sync failed; writes stopped");
        if (!db->pipe_error)
            db->pipe_error = rc;
        return;
    }
    account_sync(db, target, took_us);
    for (struct group *g = db->pipe_head; g; g = g->next) /* at most DB_PIPE_MAX */
        if (!group_ready(db, g) && g->appended) {
            pthread_cond_signal(&g->first->cv);
            break;
        }
}

/* Leader, mu held, its group needing a sync: waits (once, bounded) while
 * fewer synced writes are appended than the last sync saw around it, so
 * the writers it released share the next sync rather than the one after. */
static bool hold_sync(struct ppdb_db *db, struct writer *leader)
{
    if (db->unsynced_members >= db->sync_expect)
        return false;
    uint64_t now = db->fs->ops->now_us(db->fs);
    if (now >= db->sync_hold_until_us)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (db->sync_hold_until_us - now) * 1000;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    (void)pthread_cond_timedwait(&leader->cv, &db->mu, &ts);
    return true;
}

/* Leader, mu held, its group appended: until the group is acknowledged,
 * syncs when it needs a sync and none is running, and applies whatever
 * groups are ready. A sync that began before the append is waited out,
 * never counted; one that began after it is enough. */
static void await_group(struct ppdb_db *db, struct group *g, struct writer *leader)
{
    bool held = false;
    for (;;) {
        drive_pipe(db);
        if (leader->done)
            return;
        if (db->sync_busy || group_ready(db, g))
            pthread_cond_wait(&leader->cv, &db->mu);
        else if (held || !(held = hold_sync(db, leader)))
            sync_log(db);
    }
}

/* Whether make_room has anything to do; if so it runs with the pipe
 * drained, since it may switch the memtable and the log. */
static bool room_needed(const struct ppdb_db *db)
{
    return db->bg_error || l0_waiting(db) >= db->opts.l0_slowdown_trigger ||
           (mem_usage(db->mem) >= db->opts.memtable_bytes && mem_count(db->mem) > 0);
}

/* Leader, mu held: queues the group behind the ones in flight. */
static void push_group(struct ppdb_db *db, struct group *g, struct writer *leader,
                       struct writer *last, unsigned slot)
{
    const struct ppdb_buf *buf = &db->pipe_bufs[slot];
    g->first = leader;
    g->last = last;
    g->slot = slot;
    g->seq =
        db->pipe_tail ? db->pipe_tail->seq + db->pipe_tail->count : atomic_load(&db->last_seq) + 1;
    g->count = batch_rep_count(buf->data);
    g->sync = leader->sync;
    g->members = 1;
    for (struct writer *w = leader; w != last; w = w->next)
        g->members++;
    g->start_off = db->log_end;
    if (db->pipe_tail)
        db->pipe_tail->next = g;
    else
        db->pipe_head = g;
    db->pipe_tail = g;
    db->pipe_len++;
    batch_set_seq(&db->pipe_bufs[slot], g->seq);
}

/* Leader, mu held: appends the group's record (mu released meanwhile; the
 * log is ours). Alone in the pipe and not synced, it is inserted into the
 * memtable in the same stretch, as no group before it can fail. */
static void append_group(struct ppdb_db *db, struct group *g)
{
    const struct ppdb_buf *buf = &db->pipe_bufs[g->slot];
    bool fast = !g->sync && db->pipe_head == g;
    struct memtable *mem = db->mem;
    db->log_busy = true;
    pthread_mutex_unlock(&db->mu);
    int rc = wal_writer_add(&db->wal, buf->data, buf->len);
    if (!rc && fast)
        rc = batch_rep_iterate(buf->data, buf->len, insert_cb, mem);
    pthread_mutex_lock(&db->mu);
    db->log_busy = false;
    g->appended = true;
    g->end_off = db->wal.size;
    if (!rc && !fast)
        db->log_end = g->end_off;
    if (!rc && g->sync) {
        g->pending = true;
        db->unsynced_members += g->members;
    }
    if (rc) {
        g->status = rc;
        db_set_error(db, rc, "log write failed; writes stopped");
    }
    wake_head(db); /* the next leader may append while this group syncs */
    if (fast) {
        db->log_end = g->end_off;
        complete_head(db, rc);
    }
}

/* Runs the group led by `leader` (mu held on entry and exit). */
static void lead(struct ppdb_db *db, struct writer *leader)
{
    int rc = 0;
    if (leader->barrier_cb || leader->rep == NULL || room_needed(db)) {
        while (db->pipe_len > 0) /* complete_head wakes the queue's head */
            pthread_cond_wait(&leader->cv, &db->mu);
        if (leader->barrier_cb)
            rc = leader->barrier_cb(db, leader->barrier_arg);
        else
            rc = make_room(db, leader->rep == NULL);
        if (rc || leader->rep == NULL) {
            dequeue(db, leader);
            finish_writers(leader, rc);
            wake_head(db);
            return;
        }
    }
    unsigned slot = db->pipe_tail ? (db->pipe_tail->slot + 1) % DB_PIPE_MAX : 0;
    struct writer *last = build_group(db, leader, &db->pipe_bufs[slot], &rc);
    if (rc) {
        dequeue(db, leader);
        finish_writers(leader, rc);
        wake_head(db);
        return;
    }
    dequeue(db, last);
    struct group g = {0};
    push_group(db, &g, leader, last, slot);
    append_group(db, &g);
    if (!leader->done)
        await_group(db, &g, leader);
}

/* Queues a writer and waits for its turn to lead or for its group's
 * result. A head leads once the log is free and the pipe has a slot. */
static int queue_writer(struct ppdb_db *db, struct writer *wp)
{
    struct writer w = *wp;
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&db->mu);
    if (db->wq_tail)
        db->wq_tail->next = &w;
    else
        db->wq_head = &w;
    db->wq_tail = &w;
    while (!w.done && (db->wq_head != &w || db->log_busy || db->pipe_len >= DB_PIPE_MAX))
        pthread_cond_wait(&w.cv, &db->mu);
    if (!w.done)
        lead(db, &w);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return w.status;
}

static int run_writer(struct ppdb_db *db, const uint8_t *rep, size_t rep_len, bool sync)
{
    struct writer w = {.rep = rep, .rep_len = rep_len, .sync = sync};
    return queue_writer(db, &w);
}

int db_run_barrier(struct ppdb_db *db, int (*cb)(struct ppdb_db *, void *), void *arg)
{
    struct writer w = {.barrier_cb = cb, .barrier_arg = arg};
    return queue_writer(db, &w);
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

/* Encodes one entry as a batch rep into p (room for cap bytes); returns
 * its length, or 0 when it does not fit. */
static size_t encode_one(uint8_t *p, size_t cap, int type, const void *key, size_t klen,
                         const void *val, size_t vlen, uint64_t version, uint64_t expire_at_ms)
{
    size_t stored = vlen + (type == PPDB_VT_TTL ? PPDB_TTL_PREFIX : 0);
    if (PPDB_BATCH_HEADER + 1 + 30 + klen + stored > cap)
        return 0;
    memset(p, 0, PPDB_BATCH_HEADER);
    ppdb_store_u32le(p + 8, 1);
    size_t n = PPDB_BATCH_HEADER;
    p[n++] = (uint8_t)type;
    n += ppdb_varint_put(p + n, version);
    n += ppdb_varint_put(p + n, klen);
    memcpy(p + n, key, klen);
    n += klen;
    if (type == PPDB_VT_DEL)
        return n;
    n += ppdb_varint_put(p + n, stored);
    if (type == PPDB_VT_TTL) {
        ppdb_store_u64le(p + n, expire_at_ms);
        n += PPDB_TTL_PREFIX;
    }
    if (vlen)
        memcpy(p + n, val, vlen);
    return n + vlen;
}

static int write_one(struct ppdb_db *db, const struct ppdb_write_options *wopts, int type,
                     const void *key, size_t klen, const void *val, size_t vlen, uint64_t version,
                     uint64_t expire_at_ms)
{
    if (klen == 0 || klen > PPDB_DB_MAX_KEY || vlen > PPDB_DB_MAX_VALUE)
        return PPDB_EINVAL;
    /* Small entries are encoded on the stack: no allocation per put. */
    uint8_t small[1024];
    size_t n = encode_one(small, sizeof(small), type, key, klen, val, vlen, version, expire_at_ms);
    if (n && n > db->opts.max_batch_bytes)
        return PPDB_ELIMIT;
    if (n)
        return run_writer(db, small, n, effective_sync(db, wopts && wopts->sync));
    struct ppdb_batch b;
    ppdb_buf_init(&b.rep);
    uint8_t hdr[PPDB_BATCH_HEADER] = {0};
    int rc = ppdb_buf_append(&b.rep, hdr, sizeof(hdr));
    if (!rc && type == PPDB_VT_TTL)
        rc = ppdb_batch_put_expiring(&b, key, klen, val, vlen, version, expire_at_ms);
    else if (!rc)
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
    return write_one(db, wopts, PPDB_VT_VALUE, key, klen, val, vlen, 0, 0);
}

int ppdb_db_put_versioned(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                          const void *key, size_t klen, const void *val, size_t vlen,
                          uint64_t version)
{
    return write_one(db, wopts, PPDB_VT_VALUE, key, klen, val, vlen, version, 0);
}

int ppdb_db_put_expiring(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                         const void *key, size_t klen, const void *val, size_t vlen,
                         uint64_t version, uint64_t expire_at_ms)
{
    return write_one(db, wopts, PPDB_VT_TTL, key, klen, val, vlen, version, expire_at_ms);
}

int ppdb_db_put_ttl(struct ppdb_db *db, const struct ppdb_write_options *wopts, const void *key,
                    size_t klen, const void *val, size_t vlen, uint64_t ttl_ms)
{
    int64_t now = db->fs->ops->wall_ms(db->fs);
    uint64_t at = (uint64_t)(now > 0 ? now : 0);
    at = ttl_ms > UINT64_MAX - at ? UINT64_MAX : at + ttl_ms;
    return write_one(db, wopts, PPDB_VT_TTL, key, klen, val, vlen, 0, at);
}

int ppdb_db_delete(struct ppdb_db *db, const struct ppdb_write_options *wopts, const void *key,
                   size_t klen)
{
    return write_one(db, wopts, PPDB_VT_DEL, key, klen, NULL, 0, 0, 0);
}

int ppdb_db_delete_versioned(struct ppdb_db *db, const struct ppdb_write_options *wopts,
                             const void *key, size_t klen, uint64_t version)
{
    return write_one(db, wopts, PPDB_VT_DEL, key, klen, NULL, 0, version, 0);
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

static int table_lookup(struct tcache *tc, struct vfile *f, uint64_t snap, const uint8_t *key,
                        size_t klen, struct lookup_hit *hit)
{
    if (hit->found && f->max_version <= hit->version)
        return 0; /* an older table with no higher version cannot win */
    struct tcache_handle *h;
    struct ppdb_table *t;
    int rc = tcache_find(tc, f, &t, &h);
    if (rc)
        return rc;
    struct table_get_ctx c = {.hit = hit, .snap_seq = snap, .rc = 0};
    rc = ppdb_table_get(t, key, klen, table_get_cb, &c);
    if (h)
        tcache_release(tc, h);
    if (rc == PPDB_ENOTFOUND)
        rc = 0;
    return rc ? rc : c.rc;
}

static bool file_covers(const struct vfile *f, const uint8_t *key, size_t klen)
{
    size_t sl, ll;
    const uint8_t *s = vfile_ukey(&f->smallest, &sl);
    const uint8_t *l = vfile_ukey(&f->largest, &ll);
    return ppdb_ukey_cmp(s, sl, key, klen) <= 0 && ppdb_ukey_cmp(key, klen, l, ll) <= 0;
}

/* Searches the sources newest first; skips a source that cannot beat the
 * best entry found so far. */
static int lookup(struct ppdb_db *db, struct memtable *mem, struct memtable *imm,
                  const struct version *v, uint64_t snap, const uint8_t *key, size_t klen,
                  struct lookup_hit *hit)
{
    int rc = mem_get(mem, key, klen, snap, hit);
    if (!rc && imm && (!hit->found || mem_max_version(imm) > hit->version))
        rc = mem_get(imm, key, klen, snap, hit);
    for (size_t i = 0; !rc && i < v->nfiles[0]; i++)
        if (file_covers(v->files[0][i], key, klen))
            rc = table_lookup(db->tc, v->files[0][i], snap, key, klen, hit);
    for (int l = 1; !rc && l < PPDB_NUM_LEVELS; l++) {
        size_t i = version_find_file(v, l, key, klen);
        if (i < v->nfiles[l] && file_covers(v->files[l][i], key, klen))
            rc = table_lookup(db->tc, v->files[l][i], snap, key, klen, hit);
    }
    return rc;
}

/* ------------------------------------------------------- super versions */

/* The slot of the calling thread: threads with distinct indexes modulo
 * DB_SV_SLOTS never share one. */
static struct sv_slot *thread_slot(struct ppdb_db *db)
{
    return &db->slots[ppdb_thread_index() % DB_SV_SLOTS];
}

struct super_version *db_sv_new(void)
{
    return ppdb_calloc(1, sizeof(struct super_version));
}

void db_sv_free(struct super_version *sv)
{
    ppdb_free(sv);
}

static void sv_unref(struct super_version *sv)
{
    int old = atomic_fetch_sub_explicit(&sv->refs, 1, memory_order_acq_rel);
    PPDB_ASSERT_CMP(old, >, 0);
    if (old != 1)
        return;
    mem_unref(sv->mem);
    mem_unref(sv->imm);
    version_unref(sv->v);
    ppdb_free(sv);
}

/* Empties every slot, releasing the references cached there. A slot in
 * use is emptied too: its get finds it so and releases its own. */
static void scrape_slots(struct ppdb_db *db)
{
    for (unsigned i = 0; i < DB_SV_SLOTS; i++) {
        struct super_version *sv =
            atomic_exchange_explicit(&db->slots[i].sv, NULL, memory_order_acq_rel);
        if (sv && sv != DB_SV_IN_USE)
            sv_unref(sv);
    }
}

void db_install_sv(struct ppdb_db *db, struct super_version *sv)
{
    PPDB_ASSERT(sv && db->mem && db->current);
    sv->mem = db->mem;
    sv->imm = db->imm;
    sv->v = db->current;
    mem_ref(sv->mem);
    if (sv->imm)
        mem_ref(sv->imm);
    version_ref(sv->v);
    atomic_init(&sv->refs, 1); /* the db's */
    struct super_version *old = db->sv;
    sv->number = (old ? old->number : 0) + 1;
    db->sv = sv;
    atomic_store_explicit(&db->sv_number, sv->number, memory_order_release);
    scrape_slots(db);
    if (old)
        sv_unref(old);
}

int db_sv_init(struct ppdb_db *db)
{
    db->slots_mem = ppdb_calloc(DB_SV_SLOTS + 1, sizeof(struct sv_slot));
    if (!db->slots_mem)
        return PPDB_ENOMEM;
    uintptr_t p =
        ((uintptr_t)db->slots_mem + DB_SV_SLOT_BYTES - 1) & ~(uintptr_t)(DB_SV_SLOT_BYTES - 1);
    db->slots = (struct sv_slot *)p;
    for (unsigned i = 0; i < DB_SV_SLOTS; i++)
        atomic_init(&db->slots[i].sv, NULL);
    return 0;
}

void db_sv_deinit(struct ppdb_db *db)
{
    if (db->slots)
        scrape_slots(db);
    if (db->sv)
        sv_unref(db->sv);
    db->sv = NULL;
    ppdb_free(db->slots_mem);
    db->slots = db->slots_mem = NULL;
}

/* The current super version with a reference of the caller's. */
static struct super_version *sv_get_locked(struct ppdb_db *db)
{
    pthread_mutex_lock(&db->mu);
    struct super_version *sv = db->sv;
    atomic_fetch_add_explicit(&sv->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&db->mu);
    return sv;
}

void db_pin(struct ppdb_db *db, const struct ppdb_snapshot *snap, struct db_pin *p)
{
    struct sv_slot *slot = thread_slot(db);
    struct super_version *sv =
        atomic_exchange_explicit(&slot->sv, DB_SV_IN_USE, memory_order_acq_rel);
    if (sv == DB_SV_IN_USE) { /* another thread with our index: the locked path */
        slot = NULL;
        sv = sv_get_locked(db);
    } else if (!sv || sv->number != atomic_load_explicit(&db->sv_number, memory_order_acquire)) {
        if (sv) /* stale: installed over, not scraped yet */
            sv_unref(sv);
        sv = sv_get_locked(db);
    }
    p->sv = sv;
    p->slot = slot;
    p->mem = sv->mem;
    p->imm = sv->imm;
    p->v = sv->v;
    /* After the super version: it holds every entry up to this sequence,
     * and nothing a compaction dropped for a reader at it (db.c top). */
    p->seq = snap ? snap->seq : atomic_load_explicit(&db->last_seq, memory_order_acquire);
}

void db_unpin(struct db_pin *p)
{
    struct super_version *expect = DB_SV_IN_USE;
    if (!p->slot || !atomic_compare_exchange_strong_explicit(
                        &p->slot->sv, &expect, p->sv, memory_order_acq_rel, memory_order_relaxed))
        sv_unref(p->sv); /* no slot, or it was scraped meanwhile */
    p->sv = NULL;
}

int ppdb_db_get(struct ppdb_db *db, const struct ppdb_read_options *ropts, const void *key,
                size_t klen, struct ppdb_buf *val_out, uint64_t *version_out)
{
    PPDB_ASSERT(db && (key || klen == 0));
    if (klen == 0 || klen > PPDB_DB_MAX_KEY)
        return PPDB_EINVAL;
    struct ppdb_buf scratch;
    ppdb_buf_init(&scratch);
    struct lookup_hit hit = {.value = val_out ? val_out : &scratch};
    ppdb_buf_reset(hit.value);
    struct db_pin pin;
    db_pin(db, ropts ? ropts->snapshot : NULL, &pin);
    int rc = lookup(db, pin.mem, pin.imm, pin.v, pin.seq, key, klen, &hit);
    db_unpin(&pin);
    if (!rc && (!hit.found || hit.type == PPDB_VT_DEL))
        rc = PPDB_ENOTFOUND;
    if (!rc && hit.type == PPDB_VT_TTL) {
        if (ppdb_entry_dead((unsigned)hit.type, hit.value->data, hit.value->len,
                            db->fs->ops->wall_ms(db->fs))) {
            rc = PPDB_ENOTFOUND;
        } else { /* drop the expiry prefix */
            memmove(hit.value->data, hit.value->data + PPDB_TTL_PREFIX,
                    hit.value->len - PPDB_TTL_PREFIX);
            hit.value->len -= PPDB_TTL_PREFIX;
        }
    }
    ppdb_buf_deinit(&scratch);
    if (rc && val_out)
        ppdb_buf_reset(val_out);
    if (!rc && version_out)
        *version_out = hit.version;
    return rc;
}

/* ------------------------------------------------------------- snapshots */

int ppdb_db_snapshot_new(struct ppdb_db *db, const struct ppdb_snapshot **snap_out)
{
    PPDB_ASSERT(db && snap_out);
    struct ppdb_snapshot *s = ppdb_calloc(1, sizeof(*s));
    if (!s)
        return PPDB_ENOMEM;
    pthread_mutex_lock(&db->mu);
    if (db->nsnapshots >= DB_MAX_SNAPSHOTS) {
        pthread_mutex_unlock(&db->mu);
        ppdb_free(s);
        return PPDB_ELIMIT;
    }
    s->seq = atomic_load(&db->last_seq);
    s->prev = db->snap_tail;
    if (db->snap_tail)
        db->snap_tail->next = s;
    else
        db->snap_head = s;
    db->snap_tail = s;
    db->nsnapshots++;
    pthread_mutex_unlock(&db->mu);
    *snap_out = s;
    return 0;
}

void ppdb_db_snapshot_release(struct ppdb_db *db, const struct ppdb_snapshot *snap)
{
    if (!snap)
        return;
    struct ppdb_snapshot *s = (struct ppdb_snapshot *)snap;
    pthread_mutex_lock(&db->mu);
    PPDB_ASSERT(db->nsnapshots > 0);
    if (s->prev)
        s->prev->next = s->next;
    else
        db->snap_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        db->snap_tail = s->prev;
    db->nsnapshots--;
    pthread_mutex_unlock(&db->mu);
    ppdb_free(s);
}

uint64_t ppdb_snapshot_sequence(const struct ppdb_snapshot *snap)
{
    return snap->seq;
}

uint64_t db_smallest_snapshot(const struct ppdb_db *db)
{
    return db->snap_head ? db->snap_head->seq : atomic_load(&db->last_seq);
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
    out->bg_error = db->bg_error;
    out->read_only = db->bg_error == PPDB_ENOSPC;
    out->manifest_number = atomic_load(&db->vs.manifest_number);
    out->table_bytes = 0;
    for (int l = 0; l < PPDB_NUM_LEVELS; l++) {
        out->level_files[l] = (uint32_t)db->current->nfiles[l];
        out->level_bytes[l] = version_level_bytes(db->current, l);
        out->table_bytes += out->level_bytes[l];
    }
    out->l0_files = out->level_files[0];
    pthread_mutex_unlock(&db->mu);
    out->tables_deleted = atomic_load(&db->vs.deleted_files);
    if (out->flush_bytes)
        out->write_amplification =
            (double)(out->flush_bytes + out->compact_write_bytes) / (double)out->flush_bytes;
    tcache_stats(db->tc, &out->table_cache_hits, &out->table_cache_misses);
    if (db->cache) {
        struct ppdb_cache_stats cs;
        ppdb_cache_stats(db->cache, &cs);
        out->block_cache_hits = cs.hits;
        out->block_cache_misses = cs.misses;
    }
}

/* Bytes of table f before user key ukey (NULL: the end). */
static int offset_in(struct ppdb_db *db, struct vfile *f, const uint8_t *ukey, size_t ulen,
                     uint64_t *off)
{
    if (!ukey) {
        *off = f->size;
        return 0;
    }
    if (ppdb_ukey_cmp(f->largest.data, ppdb_ikey_ulen(f->largest.len), ukey, ulen) < 0) {
        *off = f->size;
        return 0;
    }
    if (ppdb_ukey_cmp(f->smallest.data, ppdb_ikey_ulen(f->smallest.len), ukey, ulen) >= 0) {
        *off = 0;
        return 0;
    }
    struct ppdb_buf k;
    ppdb_buf_init(&k);
    int rc = ppdb_buf_reserve(&k, ulen + PPDB_IKEY_TRAILER);
    struct tcache_handle *h = NULL;
    if (!rc)
        rc = tcache_get(db->tc, f, &h);
    if (!rc) {
        k.len = ppdb_ikey_seek_key(k.data, ukey, ulen);
        *off = ppdb_table_approx_offset(tcache_table(h), k.data, k.len);
        tcache_release(db->tc, h);
    }
    ppdb_buf_deinit(&k);
    return rc;
}

int ppdb_db_approximate_size(struct ppdb_db *db, const void *begin, size_t blen, const void *end,
                             size_t elen, uint64_t *bytes_out)
{
    PPDB_ASSERT(db && bytes_out);
    pthread_mutex_lock(&db->mu);
    struct version *v = db->current;
    version_ref(v);
    pthread_mutex_unlock(&db->mu);
    uint64_t total = 0;
    int rc = 0;
    for (int l = 0; !rc && l < PPDB_NUM_LEVELS; l++)
        for (size_t i = 0; !rc && i < v->nfiles[l]; i++) {
            uint64_t a = 0, b = 0;
            rc = offset_in(db, v->files[l][i], begin, blen, &a);
            if (!rc && begin == NULL)
                a = 0;
            if (!rc)
                rc = offset_in(db, v->files[l][i], end, elen, &b);
            if (!rc && b > a)
                total += b - a;
        }
    version_unref(v);
    *bytes_out = total;
    return rc;
}
