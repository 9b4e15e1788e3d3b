/*
 * fs_internal.h - what the two ppdb_fs implementations share (not public).
 *
 * The background task thread, the clocks, and the bounds both
 * implementations enforce live here so POSIX and in-memory behave the
 * same: the same queue bound, the same errors when a bound is hit.
 */
#ifndef PPDB_FS_INTERNAL_H
#define PPDB_FS_INTERNAL_H

#include <pthread.h>

#include "ppdb_fs.h"

#define PPDB_FS__TASK_QUEUE_MAX  1024u        /* queued background tasks per fs */
#define PPDB_FS__LIST_MAX        (1u << 20)   /* entries list() returns */
#define PPDB_FS__MAP_MAX         4096         /* live maps per fs */
#define PPDB_FS__PATH_MAX        4096         /* bytes of a path, NUL included */
#define PPDB_FS__NAME_MAX        255          /* bytes of one path component */
#define PPDB_FS__READ_ALL_MAX    (256u << 20) /* ppdb_fs_read_all's file size limit */
#define PPDB_FS__DIR_ENTRIES_MAX (1u << 20)   /* entries per in-memory directory */
#define PPDB_FS__LOG_CHUNK       (1u << 20)   /* a log's space is reserved in these steps */

struct ppdb_fs__task {
    ppdb_fs_task_fn fn;
    void *arg;
};

/* One worker thread and a bounded FIFO ring of tasks. The thread starts on
 * the first schedule; deinit runs every queued task, then joins. */
struct ppdb_fs__bg {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* signalled on push and on stop */
    struct ppdb_fs__task *ring; /* cap slots, allocated with the thread */
    uint32_t cap, head, len;    /* ring bound, first queued, queued count */
    bool started;               /* thread exists (join on deinit) */
    bool stopping;              /* deinit began: drain, then exit */
    pthread_t thread;
    uint64_t rejected; /* schedules refused because the ring was full */
};

void ppdb_fs__bg_init(struct ppdb_fs__bg *bg, uint32_t cap);
/* PPDB_ELIMIT (counted and logged) when cap tasks are queued. */
int ppdb_fs__bg_schedule(struct ppdb_fs__bg *bg, ppdb_fs_task_fn fn, void *arg);
/* Runs what is queued (including tasks queued by tasks), joins, frees. Must
 * not be called from a task. */
void ppdb_fs__bg_deinit(struct ppdb_fs__bg *bg);

uint64_t ppdb_fs__mono_us(void);
int64_t ppdb_fs__wall_ms(void);
void ppdb_fs__sleep_us(uint64_t us);

/* Sorts names bytewise (strcmp order). */
void ppdb_fs__names_sort(char **names, size_t count);

#endif /* PPDB_FS_INTERNAL_H */
