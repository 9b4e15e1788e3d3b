/*
 * test_engine_group.c - group commit: 8 threads doing synced writes must
 * share fsyncs (writes per sync > 1), and every write must be readable.
 *
 * Two reader threads run meanwhile, and a small memtable makes flushes
 * happen under the load. Runs on the POSIX fs in a temporary directory under the working directory
 * (the build tree, a real disk rather than a tmpfs, so an fsync costs
 * something and writers pile up behind the leader), and prints the measured
 * writes per fsync.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "ppdb_engine.h"

#define THREADS    8
#define PER_THREAD 400
#define READERS    2

static atomic_int writers_done;

/* Reads concurrently with the writers (and the flushes they cause): a key
 * is either absent or carries exactly its value. */
static void *reader_main(void *arg)
{
    struct ppdb_db *db = arg;
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, (uint64_t)(uintptr_t)&rng);
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    long reads = 0;
    while (!atomic_load(&writers_done) && reads < 10000000) {
        int t = (int)ppdb_rng_below(&rng, THREADS), i = (int)ppdb_rng_below(&rng, PER_THREAD);
        char k[32], v[32];
        snprintf(k, sizeof(k), "t%d-%d", t, i);
        snprintf(v, sizeof(v), "v%d", i * 31 + t);
        int rc = ppdb_db_get(db, NULL, k, strlen(k), &out, NULL);
        if (rc != PPDB_ENOTFOUND) {
            CHECK_OK(rc);
            CHECK_EQ(out.len, strlen(v));
            CHECK_MEMEQ(out.data, v, out.len);
        }
        reads++;
    }
    ppdb_buf_deinit(&out);
    return NULL;
}

struct worker {
    struct ppdb_db *db;
    int id;
    int rc;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ppdb_write_options wo = {.sync = true};
    for (int i = 0; i < PER_THREAD && w->rc == 0; i++) {
        char k[32], v[32];
        snprintf(k, sizeof(k), "t%d-%d", w->id, i);
        snprintf(v, sizeof(v), "v%d", i * 31 + w->id);
        w->rc = ppdb_db_put(w->db, &wo, k, strlen(k), v, strlen(v));
    }
    return NULL;
}

static void run(struct ppdb_fs *fs, const char *dir, const char *what)
{
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 32 * 1024; /* flushes and stalls during the run */
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    pthread_t th[THREADS], rth[READERS];
    atomic_store(&writers_done, 0);
    for (int i = 0; i < READERS; i++)
        CHECK_EQ(pthread_create(&rth[i], NULL, reader_main, db), 0);
    struct worker w[THREADS];
    uint64_t t0 = fs->ops->now_us(fs);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.db = db, .id = i};
        CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_OK(w[i].rc);
    }
    uint64_t us = fs->ops->now_us(fs) - t0;
    atomic_store(&writers_done, 1);
    for (int i = 0; i < READERS; i++)
        CHECK_EQ(pthread_join(rth[i], NULL), 0);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    CHECK_EQ_U64(st.synced_writes, THREADS * PER_THREAD);
    CHECK_GT(st.syncs, 0);
    double per_sync = (double)st.synced_writes / (double)st.syncs;
    printf("%s: %d threads, %llu synced writes, %llu fsyncs, %.2f writes per fsync, "
           "%.0f writes/s, %llu flushes, %llu stalls\n",
           what, THREADS, (unsigned long long)st.synced_writes, (unsigned long long)st.syncs,
           per_sync, (double)st.synced_writes * 1e6 / (double)(us ? us : 1),
           (unsigned long long)st.flushes, (unsigned long long)st.stalls);
    CHECK(per_sync > 1.0);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i += 13) {
            char k[32], v[32];
            snprintf(k, sizeof(k), "t%d-%d", t, i);
            snprintf(v, sizeof(v), "v%d", i * 31 + t);
            struct ppdb_buf out;
            ppdb_buf_init(&out);
            CHECK_OK(ppdb_db_get(db, NULL, k, strlen(k), &out, NULL));
            CHECK_EQ(out.len, strlen(v));
            CHECK_MEMEQ(out.data, v, out.len);
            ppdb_buf_deinit(&out);
        }
    CHECK_OK(ppdb_db_close(db));
}

int main(void)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    char tmpl[] = "engine-group-XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_posix_new(&fs));
    char path[128];
    snprintf(path, sizeof(path), "%s/db", dir);
    run(fs, path, "posix");
    ppdb_fs_destroy(fs);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
