/*
 * test_engine_nospace.c - a full disk under the engine on a real file
 * system: the log's appends copy into space reserved ahead with fallocate,
 * so running out of room must come back as PPDB_ENOSPC from the append
 * (never a SIGBUS from a store into the mapping), turn the database
 * read-only with every acknowledged write readable, and resume once space
 * is freed; a reopen then finds every acknowledged write.
 *
 * The disk is a 12 MiB tmpfs mounted in a private mount namespace of a
 * child process (unshare), so nothing outside the test sees it; without the
 * privilege for that the test is skipped (exit 77).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "db_int.h"

#define VLEN 1000

static void key_of(int i, char *k, size_t cap)
{
    snprintf(k, cap, "k%06d", i);
}

static void val_of(int i, uint8_t *v)
{
    for (int j = 0; j < VLEN; j++)
        v[j] = (uint8_t)((i * 7919 + j * 31) >> 3);
}

static void expect_all(struct ppdb_db *db, int n)
{
    struct ppdb_buf out;
    uint8_t v[VLEN];
    ppdb_buf_init(&out);
    for (int i = 0; i < n; i++) {
        char k[16];
        key_of(i, k, sizeof(k));
        val_of(i, v);
        CHECK_OK(ppdb_db_get(db, NULL, k, strlen(k), &out, NULL));
        CHECK_EQ(out.len, VLEN);
        CHECK_MEMEQ(out.data, v, VLEN);
    }
    ppdb_buf_deinit(&out);
}

/* Takes most of the disk, so that the log reaches its end quickly. */
static void fill(const char *path, size_t bytes)
{
    static char buf[1 << 16];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    for (size_t done = 0; done < bytes; done += sizeof(buf))
        CHECK_EQ(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    CHECK_EQ(close(fd), 0);
}

static int put(struct ppdb_db *db, int i, bool sync)
{
    char k[16];
    uint8_t v[VLEN];
    key_of(i, k, sizeof(k));
    val_of(i, v);
    struct ppdb_write_options w = {.sync = sync};
    return ppdb_db_put(db, &w, k, strlen(k), v, VLEN);
}

static void child(const char *mnt)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=12m") != 0)
        _exit(CHECK_SKIP_CODE);
    char dir[600], filler[600];
    snprintf(dir, sizeof(dir), "%s/db", mnt);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    fill(filler, 8u << 20);
    struct ppdb_fs *fs;
    struct ppdb_db *db;
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 64u << 20; /* no flush: the log is what fills the disk */
    CHECK_OK(ppdb_fs_posix_new(&fs));
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    int acked = 0, rc = 0;
    while (acked < 100000 && (rc = put(db, acked, acked % 10 == 9)) == 0)
        acked++;
    CHECK_ERR(rc, PPDB_ENOSPC);
    CHECK_GT(acked, 1000); /* about 3 MiB of log went in first */
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    CHECK(st.read_only);
    CHECK_GE(st.nospace_errors, 1);
    CHECK_ERR(put(db, acked, true), PPDB_ENOSPC); /* stays read-only meanwhile */
    expect_all(db, acked);                        /* reads go on */
    /* Space freed: the next write after the retry delay resumes. */
    CHECK_EQ(unlink(filler), 0);
    usleep(DB_NOSPACE_RETRY_US + 5000);
    for (int i = 0; i < 100; i++, acked++)
        CHECK_OK(put(db, acked, i % 10 == 9));
    ppdb_db_get_stats(db, &st);
    CHECK(!st.read_only);
    CHECK_GE(st.nospace_resumes, 1);
    expect_all(db, acked);
    CHECK_OK(ppdb_db_close(db));
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    expect_all(db, acked);
    ppdb_db_get_stats(db, &st);
    CHECK_EQ(st.recovery_corruptions, 0);
    CHECK_OK(ppdb_db_close(db));
    ppdb_fs_destroy(fs);
    printf("full disk after %d writes: ENOSPC, read-only, resumed, all there after reopen\n",
           acked - 100);
    fflush(stdout);
    _exit(0);
}

int main(void)
{
    char tmpl[] = "engine-nospace-XXXXXX";
    char *mnt = mkdtemp(tmpl);
    CHECK(mnt != NULL);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        child(mnt);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(rmdir(mnt), 0);
    if (WIFSIGNALED(status))
        CHECK_FAIL_("the writer died of signal %d", WTERMSIG(status));
    CHECK(WIFEXITED(status));
    if (WEXITSTATUS(status) == CHECK_SKIP_CODE)
        check_skip("no private tmpfs mount (needs CAP_SYS_ADMIN)");
    CHECK_EQ(WEXITSTATUS(status), 0);
    printf("ok\n");
    return 0;
}
