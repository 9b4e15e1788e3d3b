/*
 * test_engine_pipe.c - the group-commit pipeline (engine/db.c): while one
 * group's log sync runs, the next groups append; every synced write must be
 * acknowledged only after a sync that began after its log append returned,
 * and groups must become visible in order.
 *
 * A witness fs wraps the in-memory fs: it keeps a copy of every log file's
 * appended bytes and, per file, the prefix covered by a completed sync (the
 * file's size when that sync was called); a sync sleeps a little, as a disk
 * would, so writers pile up and pipeline. Eight threads do synced puts; as
 * each put returns, its key must lie inside a covered prefix. Each thread's
 * keys must appear in the logs in the order it wrote them. A reader takes
 * snapshots: a write acknowledged before the snapshot must be in it, and a
 * thread's key i visible means its key i - 1 is too. Then a sync fails in
 * the middle of the load: every put acknowledged before survives a power
 * cut (drop_unsynced, reopen), and no put succeeds after the failure.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ppdb_engine.h"
#include "ppdb_fs.h"

#define THREADS    8
#define PER_THREAD 300
#define MAX_LOGS   256
#define SYNC_US    300 /* a sync's simulated disk latency */

/* ------------------------------------------------------- the witness fs */

struct ppdb_file {
    struct ppdb_file *inner;
    int log; /* index in witness.logs, or -1 */
};

struct wlog {
    struct ppdb_buf data;
    uint64_t covered; /* prefix made durable by a completed sync */
};

struct witness {
    struct ppdb_fs base; /* first */
    struct ppdb_fs *inner;
    struct ppdb_fs_ops ops;
    pthread_mutex_t mu;
    struct wlog logs[MAX_LOGS];
    int nlogs;
    atomic_long syncs;
};

static struct witness *to_w(struct ppdb_fs *fs)
{
    return (struct witness *)fs;
}

static int w_open(struct ppdb_fs *fs, const char *path, int flags, struct ppdb_file **f_out)
{
    struct witness *w = to_w(fs);
    struct ppdb_file *f = calloc(1, sizeof(*f));
    CHECK(f != NULL);
    int rc = w->inner->ops->open(w->inner, path, flags, &f->inner);
    if (rc) {
        free(f);
        return rc;
    }
    size_t n = strlen(path);
    f->log = -1;
    if (n > 4 && strcmp(path + n - 4, ".log") == 0 && (flags & PPDB_FS_APPEND)) {
        pthread_mutex_lock(&w->mu);
        CHECK(w->nlogs < MAX_LOGS);
        f->log = w->nlogs++;
        ppdb_buf_init(&w->logs[f->log].data);
        pthread_mutex_unlock(&w->mu);
    }
    *f_out = f;
    return 0;
}

static int w_close(struct ppdb_fs *fs, struct ppdb_file *f)
{
    int rc = to_w(fs)->inner->ops->close(to_w(fs)->inner, f->inner);
    free(f);
    return rc;
}

static int w_pread(struct ppdb_fs *fs, struct ppdb_file *f, void *buf, size_t n, uint64_t off,
                   size_t *n_out)
{
    return to_w(fs)->inner->ops->pread(to_w(fs)->inner, f->inner, buf, n, off, n_out);
}

static int w_append(struct ppdb_fs *fs, struct ppdb_file *f, const void *buf, size_t n)
{
    struct witness *w = to_w(fs);
    int rc = w->inner->ops->append(w->inner, f->inner, buf, n);
    if (rc == 0 && f->log >= 0) {
        pthread_mutex_lock(&w->mu);
        CHECK_OK(ppdb_buf_append(&w->logs[f->log].data, buf, n));
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

static int w_sync(struct ppdb_fs *fs, struct ppdb_file *f)
{
    struct witness *w = to_w(fs);
    uint64_t at = 0;
    if (f->log >= 0) {
        pthread_mutex_lock(&w->mu);
        at = w->logs[f->log].data.len; /* appends that returned before this sync */
        pthread_mutex_unlock(&w->mu);
        usleep(SYNC_US);
    }
    int rc = w->inner->ops->sync(w->inner, f->inner);
    if (rc == 0 && f->log >= 0) {
        pthread_mutex_lock(&w->mu);
        if (at > w->logs[f->log].covered)
            w->logs[f->log].covered = at;
        pthread_mutex_unlock(&w->mu);
        atomic_fetch_add(&w->syncs, 1);
    }
    return rc;
}

static int w_size(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t *size_out)
{
    return to_w(fs)->inner->ops->size(to_w(fs)->inner, f->inner, size_out);
}

static int w_truncate(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t size)
{
    struct witness *w = to_w(fs);
    int rc = w->inner->ops->truncate(w->inner, f->inner, size);
    if (rc == 0 && f->log >= 0) {
        pthread_mutex_lock(&w->mu);
        struct wlog *l = &w->logs[f->log];
        l->data.len = PPDB_MIN(l->data.len, size);
        l->covered = PPDB_MIN(l->covered, size);
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

/* The rest goes straight to the inner fs (lock files are its own). */
#define INNER(fs) (to_w(fs)->inner)
static int w_rename(struct ppdb_fs *fs, const char *a, const char *b)
{
    return INNER(fs)->ops->rename(INNER(fs), a, b);
}
static int w_remove(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->remove(INNER(fs), p);
}
static int w_link(struct ppdb_fs *fs, const char *a, const char *b)
{
    return INNER(fs)->ops->link(INNER(fs), a, b);
}
static int w_mkdir(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->mkdir(INNER(fs), p);
}
static int w_rmdir(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->rmdir(INNER(fs), p);
}
static int w_list(struct ppdb_fs *fs, const char *dir, char ***names_out, size_t *count_out)
{
    return INNER(fs)->ops->list(INNER(fs), dir, names_out, count_out);
}
static int w_exists(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->exists(INNER(fs), p);
}
static int w_file_size(struct ppdb_fs *fs, const char *p, uint64_t *size_out)
{
    return INNER(fs)->ops->file_size(INNER(fs), p, size_out);
}
static int w_sync_dir(struct ppdb_fs *fs, const char *p)
{
    return INNER(fs)->ops->sync_dir(INNER(fs), p);
}
static int w_lock(struct ppdb_fs *fs, const char *p, struct ppdb_file **lock_out)
{
    return INNER(fs)->ops->lock(INNER(fs), p, lock_out);
}
static int w_unlock(struct ppdb_fs *fs, struct ppdb_file *lock)
{
    return INNER(fs)->ops->unlock(INNER(fs), lock);
}
static int w_schedule(struct ppdb_fs *fs, ppdb_fs_task_fn fn, void *arg)
{
    return INNER(fs)->ops->schedule(INNER(fs), fn, arg);
}
static uint64_t w_now_us(struct ppdb_fs *fs)
{
    return INNER(fs)->ops->now_us(INNER(fs));
}
static int64_t w_wall_ms(struct ppdb_fs *fs)
{
    return INNER(fs)->ops->wall_ms(INNER(fs));
}
static void w_sleep_us(struct ppdb_fs *fs, uint64_t us)
{
    INNER(fs)->ops->sleep_us(INNER(fs), us);
}

/* Files are not mapped through the witness: tables fall back to pread. */
static void witness_init(struct witness *w, struct ppdb_fs *inner)
{
    memset(w, 0, sizeof(*w));
    w->inner = inner;
    w->ops = (struct ppdb_fs_ops){
        .rename = w_rename,
        .remove = w_remove,
        .link = w_link,
        .mkdir = w_mkdir,
        .rmdir = w_rmdir,
        .list = w_list,
        .exists = w_exists,
        .file_size = w_file_size,
        .sync_dir = w_sync_dir,
        .lock = w_lock,
        .unlock = w_unlock,
        .schedule = w_schedule,
        .now_us = w_now_us,
        .wall_ms = w_wall_ms,
        .sleep_us = w_sleep_us,
    };
    w->ops.open = w_open;
    w->ops.close = w_close;
    w->ops.pread = w_pread;
    w->ops.append = w_append;
    w->ops.sync = w_sync;
    w->ops.size = w_size;
    w->ops.truncate = w_truncate;
    w->ops.map = NULL;
    w->ops.unmap = NULL;
    w->base.ops = &w->ops;
    pthread_mutex_init(&w->mu, NULL);
}

static void witness_deinit(struct witness *w)
{
    for (int i = 0; i < w->nlogs; i++)
        ppdb_buf_deinit(&w->logs[i].data);
    pthread_mutex_destroy(&w->mu);
}

/* Where key k is in the logs: (log << 32 | offset) + 1, or 0 if absent;
 * *covered_out: whether a completed sync covers it. */
static uint64_t witness_find(struct witness *w, const char *k, bool *covered_out)
{
    size_t kn = strlen(k);
    uint64_t at = 0;
    *covered_out = false;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->nlogs && !at; i++) {
        const struct wlog *l = &w->logs[i];
        const uint8_t *p = memmem(l->data.data, l->data.len, k, kn);
        if (p) {
            uint64_t off = (uint64_t)(p - l->data.data);
            at = ((uint64_t)i << 32 | off) + 1;
            *covered_out = off + kn <= l->covered;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return at;
}

/* ----------------------------------------------------------- the load */

struct run {
    struct ppdb_db *db;
    struct witness *w;
    atomic_int acked[THREADS]; /* puts acknowledged, per thread */
    atomic_int failed;         /* puts that returned an error */
    atomic_int stop_readers;
    bool check_cover;
};

struct worker {
    struct run *r;
    int id;
};

static void key_of(char *k, size_t cap, int t, int i)
{
    snprintf(k, cap, "<k%02d-%06d>", t, i);
}

static void *writer_main(void *arg)
{
    struct worker *wk = arg;
    struct run *r = wk->r;
    struct ppdb_write_options wo = {.sync = true};
    uint64_t prev_at = 0;
    bool failed = false;
    for (int i = 0; i < PER_THREAD; i++) {
        char k[32];
        key_of(k, sizeof(k), wk->id, i);
        int rc = ppdb_db_put(r->db, &wo, k, strlen(k), "value", 5);
        if (rc) {
            atomic_fetch_add(&r->failed, 1);
            failed = true;
            continue;
        }
        CHECK(!failed); /* the error is sticky: nothing succeeds after it */
        if (r->check_cover) {
            bool covered;
            uint64_t at = witness_find(r->w, k, &covered);
            CHECK(at != 0);
            CHECK(covered);      /* a sync begun after the append returned first */
            CHECK(at > prev_at); /* this thread's records in the order written */
            prev_at = at;
        }
        atomic_store(&r->acked[wk->id], i + 1);
    }
    return NULL;
}

static bool visible(struct ppdb_db *db, const struct ppdb_snapshot *s, int t, int i)
{
    char k[32];
    key_of(k, sizeof(k), t, i);
    struct ppdb_read_options ro = {.snapshot = s};
    int rc = ppdb_db_get(db, &ro, k, strlen(k), NULL, NULL);
    if (rc != PPDB_ENOTFOUND)
        CHECK_OK(rc);
    return rc == 0;
}

static void *reader_main(void *arg)
{
    struct run *r = arg;
    for (long rounds = 0; !atomic_load(&r->stop_readers) && rounds < 100000; rounds++) {
        int acked[THREADS];
        for (int t = 0; t < THREADS; t++)
            acked[t] = atomic_load(&r->acked[t]);
        const struct ppdb_snapshot *s;
        CHECK_OK(ppdb_db_snapshot_new(r->db, &s));
        int t = (int)(rounds % THREADS);
        if (acked[t] > 0)
            CHECK(visible(r->db, s, t, acked[t] - 1)); /* acknowledged: visible */
        /* the newest visible key of t: everything before it is visible */
        int hi = acked[t];
        while (hi < PER_THREAD && visible(r->db, s, t, hi))
            hi++;
        if (hi > 0)
            for (int i = hi - 1; i >= 0 && i >= hi - 8; i--)
                CHECK(visible(r->db, s, t, i));
        ppdb_db_snapshot_release(r->db, s);
    }
    return NULL;
}

static void run_load(struct run *r)
{
    pthread_t th[THREADS], rd;
    struct worker wk[THREADS];
    atomic_store(&r->stop_readers, 0);
    CHECK_EQ(pthread_create(&rd, NULL, reader_main, r), 0);
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (struct worker){.r = r, .id = i};
        CHECK_EQ(pthread_create(&th[i], NULL, writer_main, &wk[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    atomic_store(&r->stop_readers, 1);
    CHECK_EQ(pthread_join(rd, NULL), 0);
}

static void open_db(struct ppdb_fs *fs, struct ppdb_db **db)
{
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 8 * 1024; /* memtable switches (pipe drains) under load; each
                                    log stays inside one 32 KiB block */
    CHECK_OK(ppdb_db_open(fs, "/db", &o, db));
}

/* Every synced write covered at its acknowledgement; order; sharing. */
static void test_cover(void)
{
    struct ppdb_fs *mem;
    CHECK_OK(ppdb_fs_mem_new(&mem));
    struct witness w;
    witness_init(&w, mem);
    static struct run r;
    memset(&r, 0, sizeof(r));
    r.w = &w;
    r.check_cover = true;
    open_db(&w.base, &r.db);
    run_load(&r);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(r.db, &st);
    CHECK_EQ_U64(st.synced_writes, THREADS * PER_THREAD);
    CHECK_EQ(atomic_load(&r.failed), 0);
    double per_sync = (double)st.synced_writes / (double)st.syncs;
    printf("cover: %llu synced writes, %llu log syncs, %.2f writes per sync, %llu groups\n",
           (unsigned long long)st.synced_writes, (unsigned long long)st.syncs, per_sync,
           (unsigned long long)st.groups);
    CHECK(per_sync > 2.0); /* writers pile up behind a 300 us sync */
    CHECK_OK(ppdb_db_close(r.db));
    witness_deinit(&w);
    ppdb_fs_destroy(mem);
}

/* A sync fails under load: what was acknowledged survives a power cut. */
static void test_sync_failure(int after)
{
    struct ppdb_fs *mem;
    CHECK_OK(ppdb_fs_mem_new(&mem));
    static struct run r;
    memset(&r, 0, sizeof(r));
    open_db(mem, &r.db);
    struct ppdb_fs_mem_faults f = {.fail_sync_after = after};
    ppdb_fs_mem_set_faults(mem, &f);
    run_load(&r);
    CHECK(atomic_load(&r.failed) > 0);
    ppdb_fs_mem_set_faults(mem, &(struct ppdb_fs_mem_faults){0});
    (void)ppdb_db_close(r.db); /* reports the sticky error */
    ppdb_fs_mem_drop_unsynced(mem);
    struct ppdb_db *db;
    open_db(mem, &db);
    int total = 0;
    for (int t = 0; t < THREADS; t++) {
        int n = atomic_load(&r.acked[t]);
        total += n;
        for (int i = 0; i < n; i++)
            CHECK(visible(db, NULL, t, i));
    }
    printf("sync failure after %d: %d acknowledged puts survived, %d failed\n", after, total,
           atomic_load(&r.failed));
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(mem);
}

int main(void)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_cover();
    test_sync_failure(40);
    test_sync_failure(150);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
