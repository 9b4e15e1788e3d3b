/*
 * test_engine_crash.c - kill -9 during a million writes, then recover.
 *
 * A child process writes 1,000,000 keys to a database on the real file
 * system, every 1000th write synced; after each synced write returns it
 * reports the write's index through a pipe. The parent SIGKILLs it at a
 * random moment after a random amount of progress, reopens the database and
 * reads every key: each one up to the last acknowledged synced write must be
 * there with its value; later ones may be missing but never wrong.
 *
 * Seeded: PPDB_SEED=<n> or argv[1]; the seed picks the kill point.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ppdb_engine.h"

#define NKEYS      1000000
#define SYNC_EVERY 1000

static void key_val(int i, char *k, size_t kcap, char *v, size_t vcap)
{
    snprintf(k, kcap, "key%08d", i);
    snprintf(v, vcap, "value-%08d-%08x", i, (unsigned)(i * 2654435761u));
}

static void child(const char *dir, int fd)
{
    struct ppdb_fs *fs;
    struct ppdb_db *db;
    if (ppdb_fs_posix_new(&fs) || ppdb_db_open(fs, dir, NULL, &db))
        _exit(2);
    for (int i = 0; i < NKEYS; i++) {
        char k[32], v[48];
        key_val(i, k, sizeof(k), v, sizeof(v));
        struct ppdb_write_options w = {.sync = i % SYNC_EVERY == SYNC_EVERY - 1};
        if (ppdb_db_put(db, &w, k, strlen(k), v, strlen(v)))
            _exit(3);
        if (w.sync) {
            int32_t done = i;
            if (write(fd, &done, sizeof(done)) != (ssize_t)sizeof(done))
                _exit(4);
        }
    }
    ppdb_db_close(db);
    ppdb_fs_destroy(fs);
    _exit(0);
}

static int verify(const char *dir, int last_synced)
{
    struct ppdb_fs *fs;
    struct ppdb_db *db;
    CHECK_OK(ppdb_fs_posix_new(&fs));
    CHECK_OK(ppdb_db_open(fs, dir, NULL, &db));
    int present = 0;
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    for (int i = 0; i < NKEYS; i++) {
        char k[32], v[48];
        key_val(i, k, sizeof(k), v, sizeof(v));
        int rc = ppdb_db_get(db, NULL, k, strlen(k), &out, NULL);
        if (i <= last_synced)
            CHECK_OK(rc);
        if (rc == PPDB_ENOTFOUND)
            continue;
        CHECK_OK(rc);
        CHECK_EQ(out.len, strlen(v));
        CHECK_MEMEQ(out.data, v, out.len);
        present++;
    }
    ppdb_buf_deinit(&out);
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    CHECK_EQ(st.recovery_corruptions, 0);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
    return present;
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint64_t seed = check_seed(argc, argv, 99);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    int kill_after = 50000 + (int)ppdb_rng_below(&rng, 850000);
    char tmpl[] = "engine-crash-XXXXXX";
    char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL);
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/db", tmp);
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child(dir, fds[1]);
    }
    close(fds[1]);
    int32_t last = -1, got;
    while (last < kill_after && read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
        last = got;
    /* A random extra delay so the kill lands anywhere in a write or flush. */
    usleep((useconds_t)ppdb_rng_below(&rng, 20000));
    CHECK_EQ(kill(pid, SIGKILL), 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    while (read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
        last = got; /* acknowledged before it died */
    close(fds[0]);
    CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK_GE(last, kill_after);
    int present = verify(dir, last);
    printf("killed after synced write %d (target %d); %d keys present after recovery\n", last,
           kill_after, present);
    CHECK_GE(present, last + 1);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    CHECK_EQ(system(cmd), 0);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
