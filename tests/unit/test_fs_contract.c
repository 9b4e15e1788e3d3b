/*
 * test_fs_contract.c - the behaviour every ppdb_fs implementation shares.
 *
 * Each test takes a fresh fs from the implementation's factory, works in
 * a directory of its own under the given root, destroys the fs and checks
 * that no counted allocation leaked.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "check.h"
#include "fs_internal.h"
#include "test_fs_contract.h"

char *fs_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    CHECK(n > 0 && (size_t)n < cap);
    return out;
}

void fs_put(struct ppdb_fs *fs, const char *path, const void *p, size_t n, int sync)
{
    struct ppdb_file *f;
    CHECK_OK(fs->ops->open(fs, path, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_TRUNC, &f));
    CHECK_OK(fs->ops->append(fs, f, p, n));
    if (sync)
        CHECK_OK(fs->ops->sync(fs, f));
    CHECK_OK(fs->ops->close(fs, f));
}

void fs_expect(struct ppdb_fs *fs, const char *path, const char *want)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    CHECK_OK(ppdb_fs_read_all(fs, path, &b));
    CHECK_EQ(b.len, strlen(want));
    CHECK_MEMEQ(b.data, want, b.len);
    ppdb_buf_deinit(&b);
}

uint8_t fs_log_byte(uint64_t off)
{
    return (uint8_t)(1 + (off * 131 + off / 4093) % 255);
}

void fs_log_fill(uint8_t *p, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = fs_log_byte(off + i);
}

/* Per-test setup: leak baseline, fresh fs, and the test's directory. */
struct tctx {
    struct ppdb_alloc_stats base;
    struct ppdb_fs *fs;
    char dir[512];
};

static struct ppdb_fs *begin(struct tctx *t, const struct fs_contract *c, const char *test)
{
    ppdb_alloc_stats(&t->base);
    CHECK_OK(c->make(&t->fs));
    fs_path(t->dir, sizeof(t->dir), c->root, test);
    CHECK_OK(t->fs->ops->mkdir(t->fs, t->dir));
    fprintf(stderr, "  %s/%s\n", c->name, test);
    return t->fs;
}

static void end(struct tctx *t)
{
    ppdb_fs_destroy(t->fs);
    check_no_leaks(&t->base);
}

static void t_file_basics(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "basics");
    char p[600], buf[64];
    struct ppdb_file *f;
    size_t got;
    uint64_t size;
    fs_path(p, sizeof(p), t.dir, "a");
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    CHECK_OK(fs->ops->append(fs, f, "hello ", 6));
    CHECK_OK(fs->ops->append(fs, f, "world", 5));
    CHECK_OK(fs->ops->append(fs, f, "", 0));
    CHECK_OK(fs->ops->size(fs, f, &size));
    CHECK_EQ(size, 11);
    CHECK_OK(fs->ops->pread(fs, f, buf, 5, 6, &got));
    CHECK_EQ(got, 5);
    CHECK_MEMEQ(buf, "world", 5);
    /* Short read only at end of file; nothing past it. */
    CHECK_OK(fs->ops->pread(fs, f, buf, sizeof(buf), 3, &got));
    CHECK_EQ(got, 8);
    CHECK_MEMEQ(buf, "lo world", 8);
    CHECK_OK(fs->ops->pread(fs, f, buf, 4, 11, &got));
    CHECK_EQ(got, 0);
    CHECK_OK(fs->ops->pread(fs, f, buf, 4, 1000, &got));
    CHECK_EQ(got, 0);
    CHECK_OK(fs->ops->sync(fs, f));
    CHECK_OK(fs->ops->truncate(fs, f, 5));
    CHECK_OK(fs->ops->size(fs, f, &size));
    CHECK_EQ(size, 5);
    CHECK_OK(fs->ops->append(fs, f, "!", 1)); /* appends go to the (new) end */
    CHECK_OK(fs->ops->close(fs, f));
    fs_expect(fs, p, "hello!");
    CHECK_OK(fs->ops->file_size(fs, p, &size));
    CHECK_EQ(size, 6);
    /* Reopening appends after existing data; TRUNC empties. */
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_APPEND, &f));
    CHECK_OK(fs->ops->append(fs, f, "?", 1));
    CHECK_OK(fs->ops->close(fs, f));
    fs_expect(fs, p, "hello!?");
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_TRUNC, &f));
    CHECK_OK(fs->ops->close(fs, f));
    fs_expect(fs, p, "");
    /* Growing truncate reads back zeros. */
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ | PPDB_FS_APPEND, &f));
    CHECK_OK(fs->ops->truncate(fs, f, 3));
    CHECK_OK(fs->ops->pread(fs, f, buf, 8, 0, &got));
    CHECK_EQ(got, 3);
    CHECK_MEMEQ(buf, "\0\0\0", 3);
    CHECK_OK(fs->ops->close(fs, f));
    end(&t);
}

static void t_open_errors(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "open_errors");
    char p[600], q[600];
    struct ppdb_file *f;
    fs_path(p, sizeof(p), t.dir, "x");
    CHECK_ERR(fs->ops->open(fs, p, PPDB_FS_READ, &f), PPDB_ENOENT);
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_EXCL, &f));
    CHECK_OK(fs->ops->close(fs, f));
    CHECK_ERR(fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_EXCL, &f),
              PPDB_EEXIST);
    /* Creating in a missing directory, opening a directory. */
    fs_path(q, sizeof(q), t.dir, "nodir/x");
    CHECK_ERR(fs->ops->open(fs, q, PPDB_FS_APPEND | PPDB_FS_CREATE, &f), PPDB_ENOENT);
    CHECK_ERR(fs->ops->open(fs, t.dir, PPDB_FS_READ, &f), PPDB_EINVAL);
    /* A file used as a directory. */
    fs_path(q, sizeof(q), p, "y");
    CHECK_ERR(fs->ops->open(fs, q, PPDB_FS_APPEND | PPDB_FS_CREATE, &f), PPDB_EINVAL);
    CHECK_ERR(fs->ops->exists(fs, q), PPDB_ENOENT);
    end(&t);
}

static void t_rename(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "rename");
    char a[600], b[600], z[600], sub[600], sb[600];
    fs_path(a, sizeof(a), t.dir, "a");
    fs_path(b, sizeof(b), t.dir, "b");
    fs_path(z, sizeof(z), t.dir, "z");
    fs_put(fs, a, "AAA", 3, 1);
    fs_put(fs, b, "B", 1, 1);
    CHECK_OK(fs->ops->rename(fs, a, b)); /* replaces b */
    CHECK_ERR(fs->ops->exists(fs, a), PPDB_ENOENT);
    fs_expect(fs, b, "AAA");
    CHECK_OK(fs->ops->rename(fs, b, z)); /* to a new name */
    CHECK_ERR(fs->ops->exists(fs, b), PPDB_ENOENT);
    fs_expect(fs, z, "AAA");
    CHECK_ERR(fs->ops->rename(fs, a, b), PPDB_ENOENT);
    /* Across directories, and a directory onto a file is refused. */
    fs_path(sub, sizeof(sub), t.dir, "sub");
    fs_path(sb, sizeof(sb), sub, "moved");
    CHECK_OK(fs->ops->mkdir(fs, sub));
    CHECK_OK(fs->ops->rename(fs, z, sb));
    fs_expect(fs, sb, "AAA");
    CHECK_ERR(fs->ops->rename(fs, sub, sb), PPDB_EINVAL);
    /* An open handle keeps reading the renamed file. */
    struct ppdb_file *f;
    char buf[8];
    size_t got;
    CHECK_OK(fs->ops->open(fs, sb, PPDB_FS_READ, &f));
    CHECK_OK(fs->ops->rename(fs, sb, a));
    CHECK_OK(fs->ops->pread(fs, f, buf, sizeof(buf), 0, &got));
    CHECK_EQ(got, 3);
    CHECK_OK(fs->ops->close(fs, f));
    end(&t);
}

static void t_link(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "link");
    char a[600], b[600];
    struct ppdb_file *f;
    fs_path(a, sizeof(a), t.dir, "a");
    fs_path(b, sizeof(b), t.dir, "b");
    fs_put(fs, a, "one", 3, 1);
    CHECK_OK(fs->ops->link(fs, a, b));
    CHECK_ERR(fs->ops->link(fs, a, b), PPDB_EEXIST);
    /* Shared data: an append through one name shows through the other. */
    CHECK_OK(fs->ops->open(fs, a, PPDB_FS_APPEND, &f));
    CHECK_OK(fs->ops->append(fs, f, "two", 3));
    CHECK_OK(fs->ops->close(fs, f));
    fs_expect(fs, b, "onetwo");
    CHECK_OK(fs->ops->remove(fs, a));
    fs_expect(fs, b, "onetwo");
    CHECK_ERR(fs->ops->link(fs, a, b), PPDB_ENOENT);
    end(&t);
}

static void t_list(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "list");
    const char *names[] = {"b", "a", "B", "\xc3\xa9t\xc3\xa9", "aa", "000012.sst", "~"};
    const char *sorted[] = {"000012.sst", "B", "a", "aa", "b", "sub", "~", "\xc3\xa9t\xc3\xa9"};
    char p[600], **got;
    size_t n;
    CHECK_OK(fs->ops->list(fs, t.dir, &got, &n));
    CHECK_EQ(n, 0);
    ppdb_fs_names_free(got, n);
    for (size_t i = 0; i < PPDB_ARRAY_LEN(names); i++)
        fs_put(fs, fs_path(p, sizeof(p), t.dir, names[i]), "x", 1, 0);
    CHECK_OK(fs->ops->mkdir(fs, fs_path(p, sizeof(p), t.dir, "sub")));
    fs_put(fs, fs_path(p, sizeof(p), t.dir, "sub/inner"), "x", 1, 0);
    CHECK_OK(fs->ops->list(fs, t.dir, &got, &n));
    CHECK_EQ(n, PPDB_ARRAY_LEN(sorted));
    for (size_t i = 0; i < n; i++)
        CHECK_STREQ(got[i], sorted[i]);
    ppdb_fs_names_free(got, n);
    CHECK_ERR(fs->ops->list(fs, fs_path(p, sizeof(p), t.dir, "none"), &got, &n), PPDB_ENOENT);
    end(&t);
}

static void t_namespace(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "namespace");
    char d[600], f[600], g[600];
    uint64_t size;
    fs_path(d, sizeof(d), t.dir, "d");
    fs_path(f, sizeof(f), d, "f");
    fs_path(g, sizeof(g), t.dir, "g");
    CHECK_ERR(fs->ops->exists(fs, d), PPDB_ENOENT);
    CHECK_OK(fs->ops->mkdir(fs, d));
    CHECK_OK(fs->ops->exists(fs, d));
    CHECK_ERR(fs->ops->mkdir(fs, d), PPDB_EEXIST);
    CHECK_ERR(fs->ops->mkdir(fs, fs_path(g, sizeof(g), t.dir, "no/such")), PPDB_ENOENT);
    fs_path(g, sizeof(g), t.dir, "g");
    fs_put(fs, f, "12345", 5, 1);
    CHECK_OK(fs->ops->exists(fs, f));
    CHECK_OK(fs->ops->file_size(fs, f, &size));
    CHECK_EQ(size, 5);
    CHECK_ERR(fs->ops->file_size(fs, g, &size), PPDB_ENOENT);
    CHECK_ERR(fs->ops->file_size(fs, d, &size), PPDB_EINVAL);
    CHECK_ERR(fs->ops->rmdir(fs, d), PPDB_EEXIST);  /* not empty */
    CHECK_ERR(fs->ops->remove(fs, d), PPDB_EINVAL); /* a directory */
    CHECK_ERR(fs->ops->rmdir(fs, f), PPDB_EINVAL);  /* a file */
    CHECK_ERR(fs->ops->remove(fs, g), PPDB_ENOENT);
    CHECK_ERR(fs->ops->mkdir(fs, f), PPDB_EEXIST);
    CHECK_OK(fs->ops->sync_dir(fs, d));
    CHECK_ERR(fs->ops->sync_dir(fs, g), PPDB_ENOENT);
    CHECK_OK(fs->ops->remove(fs, f));
    CHECK_ERR(fs->ops->exists(fs, f), PPDB_ENOENT);
    CHECK_OK(fs->ops->rmdir(fs, d));
    CHECK_ERR(fs->ops->exists(fs, d), PPDB_ENOENT);
    CHECK_ERR(fs->ops->rmdir(fs, d), PPDB_ENOENT);
    end(&t);
}

static void t_lock(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "lock");
    char p[600], q[600];
    struct ppdb_file *l1, *l2, *l3, *f;
    fs_path(p, sizeof(p), t.dir, "LOCK");
    CHECK_OK(fs->ops->lock(fs, p, &l1));
    CHECK_OK(fs->ops->exists(fs, p)); /* created */
    CHECK_ERR(fs->ops->lock(fs, p, &l2), PPDB_EBUSY);
    /* Another spelling of the same path is the same lock. */
    snprintf(q, sizeof(q), "%s//./LOCK", t.dir);
    CHECK_ERR(fs->ops->lock(fs, q, &l2), PPDB_EBUSY);
    /* Opening and closing the lock file does not release the lock. */
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ, &f));
    CHECK_OK(fs->ops->close(fs, f));
    CHECK_ERR(fs->ops->lock(fs, p, &l2), PPDB_EBUSY);
    /* A different lock file is independent. */
    CHECK_OK(fs->ops->lock(fs, fs_path(q, sizeof(q), t.dir, "LOCK2"), &l3));
    CHECK_OK(fs->ops->unlock(fs, l1));
    CHECK_OK(fs->ops->lock(fs, p, &l2));
    CHECK_OK(fs->ops->unlock(fs, l2));
    CHECK_OK(fs->ops->unlock(fs, l3));
    CHECK_ERR(fs->ops->lock(fs, fs_path(q, sizeof(q), t.dir, "no/LOCK"), &l1), PPDB_ENOENT);
    end(&t);
}

/* ---------------------------------------------------------- scheduling */

#define SCHED_TASKS 200

struct sched_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int order[SCHED_TASKS];
    int n;
    bool started, release;
};

struct sched_arg {
    struct sched_state *st;
    int id;
};

static void record_task(void *arg)
{
    struct sched_arg *a = arg;
    pthread_mutex_lock(&a->st->mu);
    a->st->order[a->st->n++] = a->id;
    pthread_mutex_unlock(&a->st->mu);
    if (a->id % 50 == 0)
        ppdb_fs__sleep_us(2000); /* a slow task: destroy must still wait */
}

static void t_schedule(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "schedule");
    static struct sched_state st;
    static struct sched_arg args[SCHED_TASKS];
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.mu, NULL);
    for (int i = 0; i < SCHED_TASKS; i++) {
        args[i] = (struct sched_arg){&st, i};
        CHECK_OK(fs->ops->schedule(fs, record_task, &args[i]));
    }
    end(&t); /* destroy waits for every task */
    CHECK_EQ(st.n, SCHED_TASKS);
    for (int i = 0; i < SCHED_TASKS; i++)
        CHECK_EQ(st.order[i], i);
    pthread_mutex_destroy(&st.mu);
}

static void blocking_task(void *arg)
{
    struct sched_state *st = arg;
    pthread_mutex_lock(&st->mu);
    st->started = true;
    pthread_cond_broadcast(&st->cv);
    while (!st->release)
        pthread_cond_wait(&st->cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
}

static void count_task(void *arg)
{
    struct sched_state *st = arg;
    pthread_mutex_lock(&st->mu);
    st->n++;
    pthread_mutex_unlock(&st->mu);
}

static void t_schedule_bound(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "schedule_bound");
    static struct sched_state st;
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    CHECK_OK(fs->ops->schedule(fs, blocking_task, &st));
    pthread_mutex_lock(&st.mu);
    while (!st.started)
        pthread_cond_wait(&st.cv, &st.mu);
    pthread_mutex_unlock(&st.mu);
    uint32_t accepted = 0;
    int rc = 0;
    while (accepted <= PPDB_FS__TASK_QUEUE_MAX &&
           (rc = fs->ops->schedule(fs, count_task, &st)) == 0)
        accepted++;
    CHECK_EQ(rc, PPDB_ELIMIT);
    CHECK_EQ(accepted, PPDB_FS__TASK_QUEUE_MAX);
    pthread_mutex_lock(&st.mu);
    st.release = true;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
    end(&t);
    CHECK_EQ(st.n, (int)PPDB_FS__TASK_QUEUE_MAX);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
}

/* ------------------------------------------------------- map and helpers */

static void t_map(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "map");
    char p[600], e[600];
    uint8_t data[10000];
    struct ppdb_file *f;
    const uint8_t *m;
    uint64_t len;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    fs_put(fs, fs_path(p, sizeof(p), t.dir, "table"), data, sizeof(data), 1);
    CHECK(fs->ops->map != NULL && fs->ops->unmap != NULL);
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ, &f));
    CHECK_OK(fs->ops->map(fs, f, &m, &len));
    CHECK_EQ(len, sizeof(data));
    CHECK_MEMEQ(m, data, sizeof(data));
    fs->ops->unmap(fs, f, m, len);
    CHECK_OK(fs->ops->close(fs, f));
    fs_put(fs, fs_path(e, sizeof(e), t.dir, "empty"), "", 0, 0);
    CHECK_OK(fs->ops->open(fs, e, PPDB_FS_READ, &f));
    CHECK_OK(fs->ops->map(fs, f, &m, &len));
    CHECK_EQ(len, 0);
    CHECK(m == NULL);
    fs->ops->unmap(fs, f, m, len);
    CHECK_OK(fs->ops->close(fs, f));
    end(&t);
}

static void t_atomic(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "atomic");
    char p[600], **names;
    size_t n;
    struct ppdb_buf b;
    CHECK_OK(ppdb_fs_write_atomic(fs, t.dir, "CURRENT", "MANIFEST-000001\n", 16));
    fs_expect(fs, fs_path(p, sizeof(p), t.dir, "CURRENT"), "MANIFEST-000001\n");
    CHECK_OK(ppdb_fs_write_atomic(fs, t.dir, "CURRENT", "MANIFEST-000002\n", 16));
    fs_expect(fs, p, "MANIFEST-000002\n");
    CHECK_OK(ppdb_fs_write_atomic(fs, t.dir, "EMPTY", "", 0));
    fs_expect(fs, fs_path(p, sizeof(p), t.dir, "EMPTY"), "");
    CHECK_OK(fs->ops->list(fs, t.dir, &names, &n)); /* no .tmp left behind */
    CHECK_EQ(n, 2);
    CHECK_STREQ(names[0], "CURRENT");
    CHECK_STREQ(names[1], "EMPTY");
    ppdb_fs_names_free(names, n);
    CHECK_ERR(ppdb_fs_write_atomic(fs, fs_path(p, sizeof(p), t.dir, "nodir"), "X", "x", 1),
              PPDB_ENOENT);
    /* read_all replaces the buffer's contents and handles > 64 KiB. */
    static uint8_t big[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i >> 3);
    fs_put(fs, fs_path(p, sizeof(p), t.dir, "big"), big, sizeof(big), 0);
    ppdb_buf_init(&b);
    CHECK_OK(ppdb_buf_append(&b, "junk", 4));
    CHECK_OK(ppdb_fs_read_all(fs, p, &b));
    CHECK_EQ(b.len, sizeof(big));
    CHECK_MEMEQ(b.data, big, sizeof(big));
    CHECK_ERR(ppdb_fs_read_all(fs, fs_path(p, sizeof(p), t.dir, "none"), &b), PPDB_ENOENT);
    ppdb_buf_deinit(&b);
    end(&t);
}

/* ---------------------------------------------------------------- logs */

/* Reading through r: the log's first `size` bytes, then nothing or only
 * zeros (space reserved ahead of a live log); exactly `size` bytes when
 * `exact`. */
static void expect_log(struct ppdb_fs *fs, struct ppdb_file *r, uint64_t size, bool exact)
{
    enum { STEP = 1 << 16 };
    static uint8_t got[STEP], want[STEP];
    uint64_t off = 0;
    for (;;) {
        size_t n;
        CHECK_OK(fs->ops->pread(fs, r, got, STEP, off, &n));
        if (n == 0)
            break;
        size_t data = off >= size ? 0 : (size_t)PPDB_MIN((uint64_t)n, size - off);
        fs_log_fill(want, off, data);
        memset(want + data, 0, n - data);
        if (memcmp(got, want, n) != 0)
            CHECK_FAIL_("log bytes at %" PRIu64 "..%" PRIu64 " differ (size %" PRIu64 ")", off,
                        off + n, size);
        off += n;
    }
    CHECK_GE(off, size);
    if (exact)
        CHECK_EQ_U64(off, size);
}

/* Appends n bytes of the log's content at its end (*size). */
static void log_add(struct ppdb_fs *fs, struct ppdb_file *w, uint8_t *scratch, uint64_t *size,
                    size_t n)
{
    uint64_t got;
    fs_log_fill(scratch, *size, n);
    CHECK_OK(fs->ops->append(fs, w, scratch, n));
    *size += n;
    CHECK_OK(fs->ops->size(fs, w, &got));
    CHECK_EQ_U64(got, *size);
}

/* PPDB_FS_LOG: appends of every size (within a page, across pages and 1 MiB
 * reservation steps, several steps at once) read back exactly through a
 * second handle, with at most zero fill after them while the log is open;
 * truncation and close leave exactly the appended bytes. */
static void t_log(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "log");
    static const size_t sizes[] = {0,      1,     7,       140,    140,           4089,   4096,
                                   4097,   32768, 65539,   200000, 262143,        262144, 300000,
                                   700001, 140,   3 << 20, 140,    (1 << 20) - 3, 140,    5000};
    enum { SCRATCH = (3 << 20) + 1 };
    uint8_t *scratch = ppdb_malloc(SCRATCH);
    CHECK(scratch != NULL);
    char p[600];
    struct ppdb_file *w, *r;
    uint64_t size = 0, got;
    fs_path(p, sizeof(p), t.dir, "000007.log");
    CHECK_OK(
        fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_EXCL | PPDB_FS_LOG, &w));
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ, &r));
    expect_log(fs, r, 0, false);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        log_add(fs, w, scratch, &size, sizes[i]);
        if (i % 4 == 3)
            expect_log(fs, r, size, false);
    }
    /* Many small records across several reservation steps. */
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, 7);
    for (int i = 0; i < 3000; i++)
        log_add(fs, w, scratch, &size, 1 + (size_t)ppdb_rng_below(&rng, 2000));
    expect_log(fs, r, size, false);
    CHECK_OK(fs->ops->sync(fs, w));
    /* Truncation (the engine's rewind after a failed append), then appends
     * go on from the new end: a little way back, and a few MiB back. */
    size -= 5000;
    CHECK_OK(fs->ops->truncate(fs, w, size));
    CHECK_OK(fs->ops->size(fs, w, &got));
    CHECK_EQ_U64(got, size);
    log_add(fs, w, scratch, &size, 10000);
    expect_log(fs, r, size, false);
    size = 3 * size / 5;
    CHECK_OK(fs->ops->truncate(fs, w, size));
    expect_log(fs, r, size, false);
    log_add(fs, w, scratch, &size, 140);
    log_add(fs, w, scratch, &size, 2 << 20);
    log_add(fs, w, scratch, &size, 140);
    CHECK_OK(fs->ops->sync(fs, w));
    CHECK_OK(fs->ops->close(fs, w));
    /* Closed: exactly the appended bytes, whichever way one looks. */
    CHECK_OK(fs->ops->file_size(fs, p, &got));
    CHECK_EQ_U64(got, size);
    expect_log(fs, r, size, true);
    CHECK_OK(fs->ops->close(fs, r));
    /* Reopened as a log: appends after what is there; the log's own handle
     * reads exactly its bytes. */
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_LOG, &w));
    CHECK_OK(fs->ops->size(fs, w, &got));
    CHECK_EQ_U64(got, size);
    log_add(fs, w, scratch, &size, 333);
    expect_log(fs, w, size, true);
    CHECK_OK(fs->ops->close(fs, w));
    CHECK_OK(fs->ops->file_size(fs, p, &got));
    CHECK_EQ_U64(got, size);
    /* An empty log closes empty; a log's read-only open is a plain one. */
    fs_path(p, sizeof(p), t.dir, "000008.log");
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_LOG, &w));
    CHECK_OK(fs->ops->append(fs, w, "", 0));
    CHECK_OK(fs->ops->close(fs, w));
    CHECK_OK(fs->ops->file_size(fs, p, &got));
    CHECK_EQ(got, 0);
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ | PPDB_FS_LOG, &r));
    CHECK_OK(fs->ops->close(fs, r));
    ppdb_free(scratch);
    end(&t);
}

/* ------------------------------------------------------------- threads */

#define WORKERS       4
#define WORKER_ROUNDS 200

struct worker {
    struct ppdb_fs *fs;
    char path[600];
    struct ppdb_file *shared; /* read concurrently by every worker */
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ppdb_fs *fs = w->fs;
    struct ppdb_file *f;
    uint8_t rec[32], back[32];
    size_t got;
    if (fs->ops->open(fs, w->path, PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE, &f)) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < WORKER_ROUNDS; i++) {
        memset(rec, i, sizeof(rec));
        if (fs->ops->append(fs, f, rec, sizeof(rec)) ||
            fs->ops->pread(fs, f, back, sizeof(back), (uint64_t)i * sizeof(rec), &got) ||
            got != sizeof(rec) || memcmp(rec, back, sizeof(rec)) != 0)
            w->failures++;
        if (fs->ops->pread(fs, w->shared, back, 4, (uint64_t)(i % 60), &got) || got != 4 ||
            back[0] != (uint8_t)('A' + i % 60))
            w->failures++;
    }
    if (fs->ops->close(fs, f))
        w->failures++;
    return NULL;
}

static void t_threads(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "threads");
    struct worker w[WORKERS];
    pthread_t th[WORKERS];
    char shared[64], p[600];
    struct ppdb_file *sf;
    for (int i = 0; i < 64; i++)
        shared[i] = (char)('A' + i);
    fs_put(fs, fs_path(p, sizeof(p), t.dir, "shared"), shared, sizeof(shared), 0);
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_READ, &sf));
    for (int i = 0; i < WORKERS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        w[i] = (struct worker){.fs = fs, .shared = sf};
        fs_path(w[i].path, sizeof(w[i].path), t.dir, name);
        CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_EQ(w[i].failures, 0);
        uint64_t size;
        CHECK_OK(fs->ops->file_size(fs, w[i].path, &size));
        CHECK_EQ(size, WORKER_ROUNDS * 32);
    }
    CHECK_OK(fs->ops->close(fs, sf));
    end(&t);
}

static void t_time(const struct fs_contract *c)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, c, "time");
    uint64_t t0 = fs->ops->now_us(fs);
    fs->ops->sleep_us(fs, 3000);
    uint64_t t1 = fs->ops->now_us(fs);
    CHECK_GE(t1 - t0, 3000);
    CHECK_LT(t1 - t0, 5000000);                      /* generous: shared machines stall */
    CHECK_GT(fs->ops->wall_ms(fs), 1577836800000LL); /* after 2020-01-01 */
    end(&t);
}

void fs_contract_run(const struct fs_contract *c)
{
    t_file_basics(c);
    t_open_errors(c);
    t_rename(c);
    t_link(c);
    t_list(c);
    t_namespace(c);
    t_lock(c);
    t_schedule(c);
    t_schedule_bound(c);
    t_map(c);
    t_log(c);
    t_atomic(c);
    t_threads(c);
    t_time(c);
}
