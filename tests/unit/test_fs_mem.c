/*
 * test_fs_mem.c - the in-memory ppdb_fs: the shared contract suite, then
 * its model of a power cut (ppdb_fs_mem_drop_unsynced), the zero fill it
 * leaves after logs when asked to, and every fault it injects. A randomized
 * part checks drop_unsynced against a reference model of one file; it
 * prints its seed (rerun with PPDB_SEED=n).
 */
#include <stdio.h>

#include "check.h"
#include "test_fs_contract.h"

static int make_mem(struct ppdb_fs **fs_out)
{
    return ppdb_fs_mem_new(fs_out);
}

struct tctx {
    struct ppdb_alloc_stats base;
    struct ppdb_fs *fs;
};

/* A fresh fs with a durable directory /d. */
static struct ppdb_fs *begin(struct tctx *t, const char *name)
{
    fprintf(stderr, "  mem/%s\n", name);
    ppdb_alloc_stats(&t->base);
    CHECK_OK(ppdb_fs_mem_new(&t->fs));
    CHECK_OK(t->fs->ops->mkdir(t->fs, "/d"));
    CHECK_OK(t->fs->ops->sync_dir(t->fs, "/"));
    return t->fs;
}

static void end(struct tctx *t)
{
    ppdb_fs_destroy(t->fs);
    check_no_leaks(&t->base);
}

/* A durable file: data synced and its entry dir-synced. */
static void put_durable(struct ppdb_fs *fs, const char *dir, const char *name, const char *s)
{
    char p[300];
    fs_put(fs, fs_path(p, sizeof(p), dir, name), s, strlen(s), 1);
    CHECK_OK(fs->ops->sync_dir(fs, dir));
}

static void t_drop_tail_and_handles(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "drop_tail_and_handles");
    struct ppdb_file *f, *r;
    const uint8_t *m;
    uint64_t len, size;
    char buf[16];
    size_t got;
    CHECK_OK(fs->ops->open(fs, "/d/log", PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    CHECK_OK(fs->ops->append(fs, f, "hello", 5));
    CHECK_OK(fs->ops->sync(fs, f));
    CHECK_OK(fs->ops->append(fs, f, " world", 6));
    CHECK_OK(fs->ops->open(fs, "/d/log", PPDB_FS_READ, &r));
    CHECK_OK(fs->ops->map(fs, r, &m, &len));
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 11);
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/log", "hello"); /* synced prefix kept, tail lost */
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 5);
    /* The copy handed out by map outlives the cut. */
    CHECK_EQ(len, 11);
    CHECK_MEMEQ(m, "hello world", 11);
    fs->ops->unmap(fs, r, m, len);
    /* Old handles are dead: EIO everywhere, close still frees. */
    CHECK_ERR(fs->ops->pread(fs, f, buf, sizeof(buf), 0, &got), PPDB_EIO);
    CHECK_ERR(fs->ops->append(fs, f, "x", 1), PPDB_EIO);
    CHECK_ERR(fs->ops->sync(fs, f), PPDB_EIO);
    CHECK_ERR(fs->ops->size(fs, f, &size), PPDB_EIO);
    CHECK_ERR(fs->ops->truncate(fs, f, 0), PPDB_EIO);
    CHECK_ERR(fs->ops->map(fs, r, &m, &len), PPDB_EIO);
    CHECK_OK(fs->ops->close(fs, f));
    CHECK_OK(fs->ops->close(fs, r));
    fs_expect(fs, "/d/log", "hello"); /* the dead handles did not write */
    end(&t);
}

static void t_drop_creations(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "drop_creations");
    put_durable(fs, "/d", "old", "kept");
    fs_put(fs, "/d/new", "synced data, entry not", 22, 1); /* no sync_dir */
    CHECK_OK(fs->ops->mkdir(fs, "/d/sub"));
    put_durable(fs, "/d/sub", "inner", "x"); /* /d itself not re-synced */
    CHECK_OK(fs->ops->mkdir(fs, "/e"));      /* / not re-synced */
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/old", "kept");
    CHECK_ERR(fs->ops->exists(fs, "/d/new"), PPDB_ENOENT);
    CHECK_ERR(fs->ops->exists(fs, "/d/sub"), PPDB_ENOENT);
    CHECK_ERR(fs->ops->exists(fs, "/e"), PPDB_ENOENT);
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 4);
    /* The same steps with the directories synced survive. */
    fs_put(fs, "/d/new", "now durable", 11, 1);
    CHECK_OK(fs->ops->mkdir(fs, "/d/sub"));
    put_durable(fs, "/d/sub", "inner", "x");
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/new", "now durable");
    fs_expect(fs, "/d/sub/inner", "x");
    end(&t);
}

static void t_drop_renames(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "drop_renames");
    put_durable(fs, "/d", "a", "AAA");
    put_durable(fs, "/d", "b", "BBB");
    /* Rename over an existing file, dir-synced: survives. */
    CHECK_OK(fs->ops->rename(fs, "/d/a", "/d/b"));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    ppdb_fs_mem_drop_unsynced(fs);
    CHECK_ERR(fs->ops->exists(fs, "/d/a"), PPDB_ENOENT);
    fs_expect(fs, "/d/b", "AAA");
    /* Not dir-synced: reverts, and the replaced file comes back. */
    put_durable(fs, "/d", "c", "CCC");
    CHECK_OK(fs->ops->rename(fs, "/d/b", "/d/c"));
    fs_expect(fs, "/d/c", "AAA");
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/b", "AAA");
    fs_expect(fs, "/d/c", "CCC");
    /* Into another directory that is then synced. */
    CHECK_OK(fs->ops->mkdir(fs, "/d/x"));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    CHECK_OK(fs->ops->rename(fs, "/d/b", "/d/x/b"));
    CHECK_OK(fs->ops->sync_dir(fs, "/d/x"));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/x/b", "AAA");
    CHECK_ERR(fs->ops->exists(fs, "/d/b"), PPDB_ENOENT);
    end(&t);
}

static void t_drop_removals_links_atomic(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "drop_removals_links_atomic");
    put_durable(fs, "/d", "f", "data");
    CHECK_OK(fs->ops->remove(fs, "/d/f"));
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 0);
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/f", "data"); /* removal not dir-synced: back */
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 4);
    CHECK_OK(fs->ops->link(fs, "/d/f", "/d/g")); /* checkpoint-style link */
    CHECK_OK(fs->ops->remove(fs, "/d/f"));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    ppdb_fs_mem_drop_unsynced(fs);
    CHECK_ERR(fs->ops->exists(fs, "/d/f"), PPDB_ENOENT);
    fs_expect(fs, "/d/g", "data");
    /* CURRENT-style replacement: tmp + rename without sync_dir reverts. */
    CHECK_OK(ppdb_fs_write_atomic(fs, "/d", "CURRENT", "v1", 2));
    fs_put(fs, "/d/CURRENT.tmp", "v2", 2, 1);
    CHECK_OK(fs->ops->rename(fs, "/d/CURRENT.tmp", "/d/CURRENT"));
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/CURRENT", "v1");
    CHECK_OK(ppdb_fs_write_atomic(fs, "/d", "CURRENT", "v2", 2));
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/CURRENT", "v2");
    end(&t);
}

static void t_drop_truncate_lock_cycle(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "drop_truncate_lock_cycle");
    struct ppdb_file *f, *l1, *l2;
    put_durable(fs, "/d", "t", "abcdef");
    CHECK_OK(fs->ops->open(fs, "/d/t", PPDB_FS_APPEND, &f));
    CHECK_OK(fs->ops->truncate(fs, f, 3));
    CHECK_OK(fs->ops->append(fs, f, "XY", 2));
    CHECK_OK(fs->ops->close(fs, f));
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/t", "abc"); /* the cut bytes never come back as old data */
    /* A power cut releases locks: the process that held them is gone. */
    CHECK_OK(fs->ops->lock(fs, "/d/LOCK", &l1));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    ppdb_fs_mem_drop_unsynced(fs);
    CHECK_OK(fs->ops->lock(fs, "/d/LOCK", &l2));
    CHECK_OK(fs->ops->unlock(fs, l1)); /* dead handle: just freed */
    CHECK_ERR(fs->ops->lock(fs, "/d/LOCK", &l1), PPDB_EBUSY);
    CHECK_OK(fs->ops->unlock(fs, l2));
    /* Durable directory renames that would form a cycle after a cut. */
    CHECK_OK(fs->ops->mkdir(fs, "/a"));
    CHECK_OK(fs->ops->mkdir(fs, "/b"));
    CHECK_OK(fs->ops->sync_dir(fs, "/"));
    CHECK_OK(fs->ops->rename(fs, "/b", "/a/b"));
    CHECK_ERR(fs->ops->rename(fs, "/a", "/a/b/a"), PPDB_EINVAL); /* into itself */
    CHECK_OK(fs->ops->sync_dir(fs, "/a"));                       /* a.dur = {b} */
    CHECK_OK(fs->ops->rename(fs, "/a/b", "/b"));
    CHECK_OK(fs->ops->rename(fs, "/a", "/b/a"));
    CHECK_OK(fs->ops->sync_dir(fs, "/b")); /* b.dur = {a} */
    ppdb_fs_mem_drop_unsynced(fs);         /* / still has a and b */
    CHECK_OK(fs->ops->exists(fs, "/a"));
    CHECK_OK(fs->ops->exists(fs, "/b"));
    char **names;
    size_t n;
    CHECK_OK(fs->ops->list(fs, "/a", &names, &n)); /* b was reached first from / */
    CHECK_EQ(n, 0);
    ppdb_fs_names_free(names, n);
    end(&t);
}

/* Log preallocation: after a cut a log has its synced bytes, then zero
 * fill to the next multiple of the step; other files and the running
 * system see no difference; off by default. */
static void t_log_prealloc(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "log_prealloc");
    struct ppdb_file *f, *e;
    uint8_t buf[300];
    size_t got;
    uint64_t size;
    int flags = PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_LOG;
    /* Off: a log is cut back like any file. */
    CHECK_OK(fs->ops->open(fs, "/d/1.log", flags, &f));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    CHECK_OK(fs->ops->append(fs, f, "abc", 3));
    CHECK_OK(fs->ops->sync(fs, f));
    ppdb_fs_mem_drop_unsynced(fs);
    CHECK_OK(fs->ops->close(fs, f));
    fs_expect(fs, "/d/1.log", "abc");
    /* On: synced bytes, then zeros; an unsynced tail is lost as before. */
    ppdb_fs_mem_set_log_prealloc(fs, 256);
    CHECK_OK(fs->ops->open(fs, "/d/2.log", flags, &f));
    CHECK_OK(fs->ops->open(fs, "/d/3.log", flags, &e));
    put_durable(fs, "/d", "plain", "xyz");
    for (int i = 0; i < 300; i++)
        buf[i] = (uint8_t)(1 + i % 200);
    CHECK_OK(fs->ops->append(fs, f, buf, 300));
    CHECK_OK(fs->ops->sync(fs, f));
    CHECK_OK(fs->ops->append(fs, f, "more", 4));
    CHECK_OK(fs->ops->size(fs, f, &size));
    CHECK_EQ(size, 304); /* no fill while running */
    ppdb_fs_mem_drop_unsynced(fs);
    CHECK_OK(fs->ops->close(fs, f));
    CHECK_OK(fs->ops->close(fs, e));
    CHECK_OK(fs->ops->file_size(fs, "/d/2.log", &size));
    CHECK_EQ(size, 512);
    CHECK_OK(fs->ops->open(fs, "/d/2.log", PPDB_FS_READ, &f));
    uint8_t back[512];
    CHECK_OK(fs->ops->pread(fs, f, back, sizeof(back), 0, &got));
    CHECK_EQ(got, 512);
    CHECK_MEMEQ(back, buf, 300);
    for (int i = 300; i < 512; i++)
        CHECK_EQ(back[i], 0);
    CHECK_OK(fs->ops->close(fs, f));
    CHECK_OK(fs->ops->file_size(fs, "/d/3.log", &size));
    CHECK_EQ(size, 256); /* an empty log: one step of zeros */
    fs_expect(fs, "/d/plain", "xyz");
    CHECK_OK(fs->ops->file_size(fs, "/d/1.log", &size));
    CHECK_EQ(size, 256); /* opened as a log before: it is one */
    end(&t);
}

/* --------------------------------------------------------------- faults */

static void t_fault_append_sync(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "fault_append_sync");
    struct ppdb_file *f;
    uint64_t size;
    CHECK_OK(fs->ops->open(fs, "/d/f", PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    struct ppdb_fs_mem_faults fl = {.fail_append_after = 2};
    ppdb_fs_mem_set_faults(fs, &fl);
    CHECK_OK(fs->ops->append(fs, f, "ab", 2));
    CHECK_ERR(fs->ops->append(fs, f, "cd", 2), PPDB_EIO);
    CHECK_OK(fs->ops->size(fs, f, &size));
    CHECK_EQ(size, 2);                         /* a failed append writes nothing */
    CHECK_OK(fs->ops->append(fs, f, "ef", 2)); /* one-shot */
    fl = (struct ppdb_fs_mem_faults){.fail_sync_after = 1};
    ppdb_fs_mem_set_faults(fs, &fl);
    CHECK_ERR(fs->ops->sync(fs, f), PPDB_EIO);
    CHECK_OK(fs->ops->close(fs, f));
    ppdb_fs_mem_drop_unsynced(fs);
    fs_expect(fs, "/d/f", ""); /* the failed sync made nothing durable */
    /* sync_dir counts too, and a failed one leaves the entries volatile. */
    fs_put(fs, "/d/g", "g", 1, 1);
    fl = (struct ppdb_fs_mem_faults){.fail_sync_after = 2};
    ppdb_fs_mem_set_faults(fs, &fl);
    CHECK_OK(fs->ops->open(fs, "/d/g", PPDB_FS_APPEND, &f));
    CHECK_OK(fs->ops->sync(fs, f));
    CHECK_OK(fs->ops->close(fs, f));
    CHECK_ERR(fs->ops->sync_dir(fs, "/d"), PPDB_EIO);
    ppdb_fs_mem_drop_unsynced(fs);
    CHECK_ERR(fs->ops->exists(fs, "/d/g"), PPDB_ENOENT);
    end(&t);
}

/* Torn append of 100 bytes with `seed`: returns how many bytes landed. */
static uint64_t torn_once(uint64_t seed)
{
    struct ppdb_fs *fs;
    struct ppdb_file *f;
    uint8_t data[100], back[100];
    uint64_t size;
    size_t got;
    for (int i = 0; i < 100; i++)
        data[i] = (uint8_t)(i + 1);
    CHECK_OK(ppdb_fs_mem_new(&fs));
    CHECK_OK(fs->ops->open(fs, "/f", PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    CHECK_OK(fs->ops->append(fs, f, "h", 1));
    struct ppdb_fs_mem_faults fl = {.torn_append_after = 2, .seed = seed};
    ppdb_fs_mem_set_faults(fs, &fl);
    CHECK_OK(fs->ops->append(fs, f, "i", 1));
    CHECK_ERR(fs->ops->append(fs, f, data, sizeof(data)), PPDB_EIO);
    CHECK_OK(fs->ops->size(fs, f, &size));
    CHECK_GE(size, 2);
    CHECK_LT(size, 2 + sizeof(data)); /* torn: never the whole record */
    CHECK_OK(fs->ops->pread(fs, f, back, sizeof(back), 2, &got));
    CHECK_EQ(got, size - 2);
    CHECK_MEMEQ(back, data, got);             /* what landed is a prefix */
    CHECK_OK(fs->ops->append(fs, f, "j", 1)); /* one-shot */
    CHECK_OK(fs->ops->close(fs, f));
    ppdb_fs_destroy(fs);
    return size - 2;
}

static void t_fault_torn(uint64_t seed)
{
    struct ppdb_alloc_stats base;
    fprintf(stderr, "  mem/fault_torn\n");
    ppdb_alloc_stats(&base);
    CHECK_EQ(torn_once(seed), torn_once(seed)); /* reproducible from the seed */
    uint64_t first = torn_once(seed);
    int differing = 0;
    for (uint64_t s = 1; s <= 16; s++)
        differing += torn_once(seed + s) != first;
    CHECK_GT(differing, 0); /* the prefix length really depends on the seed */
    check_no_leaks(&base);
}

static void t_fault_capacity(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "fault_capacity");
    struct ppdb_file *f, *g;
    uint8_t blk[60] = {0};
    uint64_t size;
    struct ppdb_fs_mem_faults fl = {.capacity_bytes = 100};
    ppdb_fs_mem_set_faults(fs, &fl);
    CHECK_OK(fs->ops->open(fs, "/d/f", PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    CHECK_OK(fs->ops->append(fs, f, blk, 60));
    CHECK_ERR(fs->ops->append(fs, f, blk, 50), PPDB_ENOSPC);
    CHECK_OK(fs->ops->size(fs, f, &size));
    CHECK_EQ(size, 60); /* nothing written */
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 60);
    CHECK_OK(fs->ops->append(fs, f, blk, 40)); /* exactly full */
    CHECK_ERR(fs->ops->append(fs, f, blk, 1), PPDB_ENOSPC);
    CHECK_ERR(fs->ops->truncate(fs, f, 101), PPDB_ENOSPC);
    CHECK_OK(fs->ops->open(fs, "/d/g", PPDB_FS_APPEND | PPDB_FS_CREATE, &g));
    CHECK_ERR(fs->ops->append(fs, g, blk, 1), PPDB_ENOSPC);
    /* An open file keeps its space after remove, until closed. */
    CHECK_OK(fs->ops->remove(fs, "/d/f"));
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 100);
    CHECK_ERR(fs->ops->append(fs, g, blk, 1), PPDB_ENOSPC);
    CHECK_OK(fs->ops->close(fs, f));
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 0);
    CHECK_OK(fs->ops->append(fs, g, blk, 50)); /* room again */
    CHECK_OK(fs->ops->close(fs, g));
    CHECK_EQ(ppdb_fs_mem_used_bytes(fs), 50);
    end(&t);
}

static void t_flip_bit(void)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "flip_bit");
    struct ppdb_file *f;
    uint8_t buf[3];
    size_t got;
    put_durable(fs, "/d", "f", "abc");
    CHECK_OK(fs->ops->open(fs, "/d/f", PPDB_FS_READ, &f));
    CHECK_OK(ppdb_fs_mem_flip_bit(fs, "/d/f", 1, 3));
    CHECK_OK(fs->ops->pread(fs, f, buf, 3, 0, &got));
    CHECK_EQ(got, 3);
    CHECK_EQ(buf[0], 'a');
    CHECK_EQ(buf[1], 'b' ^ 0x08);
    CHECK_EQ(buf[2], 'c');
    ppdb_fs_mem_drop_unsynced(fs); /* corruption of synced bytes is durable */
    CHECK_OK(fs->ops->close(fs, f));
    fs_expect(fs, "/d/f", "ajc");
    CHECK_OK(ppdb_fs_mem_flip_bit(fs, "/d/f", 1, 3));
    fs_expect(fs, "/d/f", "abc");
    CHECK_ERR(ppdb_fs_mem_flip_bit(fs, "/d/f", 3, 0), PPDB_ERANGE);
    CHECK_ERR(ppdb_fs_mem_flip_bit(fs, "/d/none", 0, 0), PPDB_ENOENT);
    CHECK_ERR(ppdb_fs_mem_flip_bit(fs, "/d", 0, 0), PPDB_EINVAL);
    end(&t);
}

/* ------------------------------------------------------------ randomized */

#define MODEL_MAX 4096

/* Random appends, syncs, truncates and power cuts on one log file; after
 * every cut the file must equal the model's durable prefix. */
static void t_random_model(uint64_t seed)
{
    struct tctx t;
    struct ppdb_fs *fs = begin(&t, "random_model");
    static uint8_t model[MODEL_MAX];
    size_t len = 0, synced = 0;
    struct ppdb_rng rng;
    struct ppdb_file *f;
    struct ppdb_buf b;
    ppdb_rng_seed(&rng, seed);
    ppdb_buf_init(&b);
    CHECK_OK(fs->ops->open(fs, "/d/log", PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    CHECK_OK(fs->ops->sync_dir(fs, "/d"));
    for (int step = 0; step < 3000; step++) {
        uint64_t op = ppdb_rng_below(&rng, 100);
        if (op < 60 && len < MODEL_MAX - 64) {
            size_t n = 1 + (size_t)ppdb_rng_below(&rng, 63);
            ppdb_rng_bytes(&rng, model + len, n);
            CHECK_OK(fs->ops->append(fs, f, model + len, n));
            len += n;
        } else if (op < 80) {
            CHECK_OK(fs->ops->sync(fs, f));
            synced = len;
        } else if (op < 85) {
            len = (size_t)ppdb_rng_below(&rng, len + 1);
            synced = PPDB_MIN(synced, len);
            CHECK_OK(fs->ops->truncate(fs, f, len));
        } else if (op < 90) {
            ppdb_fs_mem_drop_unsynced(fs);
            len = synced;
            CHECK_OK(ppdb_fs_read_all(fs, "/d/log", &b));
            CHECK_EQ(b.len, len);
            CHECK_MEMEQ(b.data, model, len);
            CHECK_OK(fs->ops->close(fs, f));
            CHECK_OK(fs->ops->open(fs, "/d/log", PPDB_FS_APPEND, &f));
        }
        CHECK_EQ(ppdb_fs_mem_used_bytes(fs), len);
    }
    CHECK_OK(fs->ops->close(fs, f));
    ppdb_buf_deinit(&b);
    end(&t);
}

/* ---------------------------------------------------------- out of memory */

static void count_noop(void *arg)
{
}

/* Succeeds, or fails with ENOMEM and ends the scenario: the k-th
 * allocation is the only one that fails, so each k stops at a new point. */
#define OOM_STEP(call)                                                                             \
    do {                                                                                           \
        int oom_rc_ = (call);                                                                      \
        if (oom_rc_ != 0) {                                                                        \
            CHECK_EQ(oom_rc_, PPDB_ENOMEM);                                                        \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* A scenario touching every allocating path. */
static void oom_scenario(struct ppdb_fs *fs)
{
    struct ppdb_file *f = NULL, *l = NULL;
    char **names = NULL;
    size_t n = 0;
    const uint8_t *m = NULL;
    uint64_t len = 0;
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    OOM_STEP(fs->ops->mkdir(fs, "/o"));
    OOM_STEP(fs->ops->open(fs, "/o/f", PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    OOM_STEP(fs->ops->append(fs, f, "some bytes", 10));
    OOM_STEP(fs->ops->map(fs, f, &m, &len));
    fs->ops->unmap(fs, f, m, len);
    OOM_STEP(fs->ops->sync_dir(fs, "/o"));
    OOM_STEP(fs->ops->link(fs, "/o/f", "/o/g"));
    OOM_STEP(fs->ops->rename(fs, "/o/f", "/o/h"));
    OOM_STEP(fs->ops->list(fs, "/o", &names, &n));
    CHECK_EQ(n, 2);
    OOM_STEP(fs->ops->lock(fs, "/o/LOCK", &l));
    OOM_STEP(ppdb_fs_write_atomic(fs, "/o", "CURRENT", "x", 1));
    OOM_STEP(ppdb_fs_read_all(fs, "/o/CURRENT", &b));
    CHECK_EQ(b.len, 1);
    OOM_STEP(fs->ops->schedule(fs, count_noop, NULL));
out:
    if (f)
        CHECK_OK(fs->ops->close(fs, f));
    if (l)
        CHECK_OK(fs->ops->unlock(fs, l));
    ppdb_fs_names_free(names, n);
    ppdb_buf_deinit(&b);
}

static void t_out_of_memory(void)
{
    fprintf(stderr, "  mem/out_of_memory\n");
    for (int64_t k = 1; k < 1000; k++) {
        struct ppdb_alloc_stats base, before, after;
        struct ppdb_fs *fs;
        ppdb_alloc_stats(&base);
        CHECK_OK(ppdb_fs_mem_new(&fs));
        CHECK_OK(fs->ops->sync_dir(fs, "/"));
        ppdb_alloc_stats(&before);
        ppdb_alloc_fail_after(k);
        oom_scenario(fs);
        ppdb_alloc_fail_after(0);
        ppdb_alloc_stats(&after);
        ppdb_fs_mem_drop_unsynced(fs); /* the state left behind is consistent */
        ppdb_fs_destroy(fs);
        check_no_leaks(&base);
        if (after.failed_allocs == before.failed_allocs) {
            CHECK_GT(k, 10); /* the scenario does allocate: failures were hit */
            fprintf(stderr, "    %lld allocation failure points\n", (long long)k - 1);
            return; /* the scenario ran to the end without a failure */
        }
    }
    CHECK(!"out-of-memory scenario never completed");
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 20240601);
    struct fs_contract c = {.name = "mem", .make = make_mem, .root = ""};
    fs_contract_run(&c);
    t_drop_tail_and_handles();
    t_drop_creations();
    t_drop_renames();
    t_drop_removals_links_atomic();
    t_drop_truncate_lock_cycle();
    t_log_prealloc();
    t_fault_append_sync();
    t_fault_torn(seed);
    t_fault_capacity();
    t_flip_bit();
    t_random_model(seed);
    t_out_of_memory();
    fprintf(stderr, "ok\n");
    return 0;
}
