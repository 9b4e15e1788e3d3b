/*
 * fs_util.c - helpers over the ppdb_fs ops, and what both implementations
 * share: the background task thread and the clocks.
 *
 * The helpers (read_all, write_atomic) use only the ops table, so they
 * behave the same on every implementation, faults included. The task
 * thread is a bounded FIFO ring drained by one thread started on first
 * use; its invariants: 0 <= len <= cap, tasks run in schedule order, one
 * at a time, and deinit returns only after the ring is empty and the
 * thread has exited.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fs_internal.h"

/* ------------------------------------------------------------- helpers */

void ppdb_fs_names_free(char **names, size_t count)
{
    if (!names)
        return;
    for (size_t i = 0; i < count; i++)
        ppdb_free(names[i]);
    ppdb_free(names);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ppdb_fs__names_sort(char **names, size_t count)
{
    if (count > 1)
        qsort(names, count, sizeof(*names), cmp_names);
}

static int read_fully(struct ppdb_fs *fs, struct ppdb_file *f, struct ppdb_buf *out)
{
    const size_t chunk = 64 * 1024;
    for (;;) {
        if (out->len >= PPDB_FS__READ_ALL_MAX)
            return PPDB_ELIMIT;
        int rc = ppdb_buf_reserve(out, chunk);
        if (rc)
            return rc;
        size_t got = 0;
        rc = fs->ops->pread(fs, f, out->data + out->len, chunk, out->len, &got);
        if (rc)
            return rc;
        out->len += got;
        if (got < chunk)
            return 0;
    }
}

int ppdb_fs_read_all(struct ppdb_fs *fs, const char *path, struct ppdb_buf *out)
{
    struct ppdb_file *f;
    uint64_t size;
    int rc = fs->ops->open(fs, path, PPDB_FS_READ, &f);
    if (rc)
        return rc;
    ppdb_buf_reset(out);
    rc = fs->ops->size(fs, f, &size);
    if (rc == 0 && size > PPDB_FS__READ_ALL_MAX)
        rc = PPDB_ELIMIT;
    if (rc == 0)
        rc = read_fully(fs, f, out);
    int crc = fs->ops->close(fs, f);
    if (rc == 0)
        rc = crc;
    if (rc)
        ppdb_buf_reset(out);
    return rc;
}

static int join_path(char *out, size_t cap, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(out, cap, "%s/%s%s", dir, name, suffix);
    return n < 0 || (size_t)n >= cap ? PPDB_EINVAL : 0;
}

static int write_tmp(struct ppdb_fs *fs, const char *tmp, const void *p, size_t n)
{
    struct ppdb_file *f;
    int rc = fs->ops->open(fs, tmp, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_TRUNC, &f);
    if (rc)
        return rc;
    rc = fs->ops->append(fs, f, p, n);
    if (rc == 0)
        rc = fs->ops->sync(fs, f);
    int crc = fs->ops->close(fs, f);
    return rc ? rc : crc;
}

int ppdb_fs_write_atomic(struct ppdb_fs *fs, const char *dir, const char *name, const void *p,
                         size_t n)
{
    char tmp[PPDB_FS__PATH_MAX], dst[PPDB_FS__PATH_MAX];
    PPDB_ASSERT(dir && name && (p || n == 0));
    int rc = join_path(tmp, sizeof(tmp), dir, name, ".tmp");
    if (rc == 0)
        rc = join_path(dst, sizeof(dst), dir, name, "");
    if (rc)
        return rc;
    rc = write_tmp(fs, tmp, p, n);
    if (rc == 0)
        rc = fs->ops->rename(fs, tmp, dst);
    if (rc) {
        (void)fs->ops->remove(fs, tmp); /* best effort; a stale .tmp is harmless */
        return rc;
    }
    return fs->ops->sync_dir(fs, dir);
}

/* ---------------------------------------------------------- task thread */

void ppdb_fs__bg_init(struct ppdb_fs__bg *bg, uint32_t cap)
{
    PPDB_ASSERT(cap > 0);
    memset(bg, 0, sizeof(*bg));
    bg->cap = cap;
    PPDB_ASSERT(pthread_mutex_init(&bg->mu, NULL) == 0);
    PPDB_ASSERT(pthread_cond_init(&bg->cv, NULL) == 0);
}

static void *bg_main(void *arg)
{
    struct ppdb_fs__bg *bg = arg;
    pthread_mutex_lock(&bg->mu);
    for (;;) {
        while (bg->len == 0 && !bg->stopping)
            pthread_cond_wait(&bg->cv, &bg->mu);
        if (bg->len == 0)
            break; /* stopping and drained */
        struct ppdb_fs__task t = bg->ring[bg->head];
        bg->head = (bg->head + 1) % bg->cap;
        bg->len--;
        pthread_mutex_unlock(&bg->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&bg->mu);
    }
    pthread_mutex_unlock(&bg->mu);
    return NULL;
}

/* Called with mu held. */
static int start_thread(struct ppdb_fs__bg *bg)
{
    bg->ring = ppdb_calloc(bg->cap, sizeof(*bg->ring));
    if (!bg->ring)
        return PPDB_ENOMEM;
    int e = pthread_create(&bg->thread, NULL, bg_main, bg);
    if (e) {
        ppdb_free(bg->ring);
        bg->ring = NULL;
        return e == EAGAIN ? PPDB_EAGAIN : ppdb_err_from_errno(e);
    }
    bg->started = true;
    return 0;
}

int ppdb_fs__bg_schedule(struct ppdb_fs__bg *bg, ppdb_fs_task_fn fn, void *arg)
{
    PPDB_ASSERT(fn);
    int rc = 0;
    pthread_mutex_lock(&bg->mu);
    /* While deinit drains, only the tasks themselves may add more. */
    if (bg->stopping)
        PPDB_ASSERT(bg->started && pthread_equal(bg->thread, pthread_self()));
    if (!bg->started)
        rc = start_thread(bg);
    if (rc == 0 && bg->len == bg->cap) {
        bg->rejected++;
        PPDB_LOG(ppdb_logger_default(), PPDB_LOG_WARN, "fs", "background queue full",
                 "cap=%" PRIu32 " rejected=%" PRIu64, bg->cap, bg->rejected);
        rc = PPDB_ELIMIT;
    }
    if (rc == 0) {
        bg->ring[(bg->head + bg->len) % bg->cap] = (struct ppdb_fs__task){fn, arg};
        bg->len++;
        pthread_cond_signal(&bg->cv);
    }
    pthread_mutex_unlock(&bg->mu);
    return rc;
}

void ppdb_fs__bg_deinit(struct ppdb_fs__bg *bg)
{
    pthread_mutex_lock(&bg->mu);
    bool started = bg->started;
    PPDB_ASSERT(!started || !pthread_equal(bg->thread, pthread_self()));
    bg->stopping = true;
    pthread_cond_broadcast(&bg->cv);
    pthread_mutex_unlock(&bg->mu);
    if (started)
        PPDB_ASSERT(pthread_join(bg->thread, NULL) == 0);
    PPDB_ASSERT_CMP(bg->len, ==, 0);
    ppdb_free(bg->ring);
    pthread_cond_destroy(&bg->cv);
    pthread_mutex_destroy(&bg->mu);
}

/* --------------------------------------------------------------- clocks */

uint64_t ppdb_fs__mono_us(void)
{
    struct timespec ts;
    PPDB_ASSERT(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t ppdb_fs__wall_ms(void)
{
    struct timespec ts;
    PPDB_ASSERT(clock_gettime(CLOCK_REALTIME, &ts) == 0);
    return (int64_t)ts.tv_sec * 1000 + (int64_t)ts.tv_nsec / 1000000;
}

void ppdb_fs__sleep_us(uint64_t us)
{
    struct timespec req = {.tv_sec = (time_t)(us / 1000000u),
                           .tv_nsec = (long)(us % 1000000u) * 1000};
    struct timespec rem;
    /* Bounded: each EINTR leaves strictly less time to sleep. */
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}
