/*
 * test_engine_tool.c - ppdb-engine verify/stats/dump on a real database
 * directory: exit 0 on a healthy one, 1 once a table or the manifest has a
 * flipped byte. Logs: verify of an open database while a thread writes to
 * it (its log is mapped and ends in zero fill that appends are copied into)
 * finds nothing wrong, nor does it in a log ending in zero fill; zero fill
 * followed by data is corruption.
 *
 * Usage: test_engine_tool PATH-TO-ppdb-engine
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ppdb_engine.h"

static int run_tool(const char *tool, const char *cmd, const char *dir)
{
    char line[600];
    snprintf(line, sizeof(line), "'%s' %s '%s' > /dev/null 2>&1", tool, cmd, dir);
    int st = system(line);
    CHECK(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    CHECK_EQ(fseek(f, off, SEEK_SET), 0);
    int c = fgetc(f);
    CHECK(c != EOF);
    CHECK_EQ(fseek(f, off, SEEK_SET), 0);
    fputc(c ^ 0x20, f);
    fclose(f);
}

struct writer {
    struct ppdb_db *db;
    atomic_bool stop;
    int written;
};

static void *write_main(void *arg)
{
    struct writer *w = arg;
    for (; w->written < 400000 && !atomic_load(&w->stop); w->written++) {
        char k[32], v[64];
        snprintf(k, sizeof(k), "live%07d", w->written);
        snprintf(v, sizeof(v), "value-%d", w->written);
        CHECK_OK(ppdb_db_put(w->db, NULL, k, strlen(k), v, strlen(v)));
    }
    return NULL;
}

/* The one log of dir into path. */
static void log_path(struct ppdb_fs *fs, const char *dir, char *path, size_t cap)
{
    char **names;
    size_t n, found = 0;
    CHECK_OK(fs->ops->list(fs, dir, &names, &n));
    for (size_t i = 0; i < n; i++)
        if (strstr(names[i], ".log")) {
            snprintf(path, cap, "%s/%s", dir, names[i]);
            found++;
        }
    ppdb_fs_names_free(names, n);
    CHECK_EQ(found, 1);
}

static void append_bytes(const char *path, int byte, size_t n)
{
    FILE *f = fopen(path, "ab");
    CHECK(f != NULL);
    for (size_t i = 0; i < n; i++)
        CHECK(fputc(byte, f) != EOF);
    CHECK_EQ(fclose(f), 0);
}

/* verify while the log is written; then zero fill at the end of a log. */
static void test_live_log(const char *tool, struct ppdb_fs *fs, const char *tmp)
{
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/live", tmp);
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 64u << 20; /* no flush or compaction moves tables meanwhile */
    struct writer w = {.stop = false};
    CHECK_OK(ppdb_db_open(fs, dir, &o, &w.db));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, write_main, &w), 0);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(run_tool(tool, "verify", dir), 0);
    atomic_store(&w.stop, true);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_OK(ppdb_db_close(w.db));
    CHECK_EQ(run_tool(tool, "verify", dir), 0);
    /* A log ending in zero fill (as a killed process leaves it): clean. */
    log_path(fs, dir, path, sizeof(path));
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    append_bytes(path, 0, 100000);
    CHECK_EQ(run_tool(tool, "verify", dir), 0);
    /* Data after the zero fill: corrupt, however often it is read. */
    append_bytes(path, 'x', 10);
    CHECK_EQ(run_tool(tool, "verify", dir), 1);
    CHECK_EQ(truncate(path, st.st_size + 100000), 0);
    /* The database opens (even paranoid) with everything written. */
    o.paranoid_checks = true;
    struct ppdb_db *db;
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    for (int i = 0; i < w.written; i += 997) {
        char k[32], v[64];
        snprintf(k, sizeof(k), "live%07d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        CHECK_OK(ppdb_db_get(db, NULL, k, strlen(k), &out, NULL));
        CHECK_EQ(out.len, strlen(v));
        CHECK_MEMEQ(out.data, v, out.len);
    }
    ppdb_buf_deinit(&out);
    struct ppdb_db_stats dst;
    ppdb_db_get_stats(db, &dst);
    CHECK_EQ(dst.recovery_corruptions, 0);
    CHECK_OK(ppdb_db_close(db));
    printf("live log: %d writes during 8 verifies\n", w.written);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *tool = argv[1];
    char tmpl[] = "engine-tool-XXXXXX";
    char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL);
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/db", tmp);
    struct ppdb_fs *fs;
    struct ppdb_db *db;
    struct ppdb_db_options o;
    ppdb_db_options_default(&o);
    o.memtable_bytes = 16 * 1024;
    o.compression = PPDB_DB_COMPRESS_NONE;
    CHECK_OK(ppdb_fs_posix_new(&fs));
    CHECK_OK(ppdb_db_open(fs, dir, &o, &db));
    for (int i = 0; i < 3000; i++) {
        char k[32], v[64];
        snprintf(k, sizeof(k), "k%05d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        CHECK_OK(ppdb_db_put(db, NULL, k, strlen(k), v, strlen(v)));
    }
    CHECK_OK(ppdb_db_compact_range(db, NULL, 0, NULL, 0));
    CHECK_OK(ppdb_db_put(db, NULL, "tail", 4, "in the log", 10));
    struct ppdb_db_stats st;
    ppdb_db_get_stats(db, &st);
    CHECK_OK(ppdb_db_close(db));
    CHECK_EQ(run_tool(tool, "verify", dir), 0);
    CHECK_EQ(run_tool(tool, "stats", dir), 0);
    CHECK_EQ(run_tool(tool, "dump", dir), 0);
    CHECK_EQ(run_tool(tool, "verify", "/nonexistent-ppdb-dir"), 2);
    /* A flipped byte in the middle of a table's data. */
    char **names;
    size_t n;
    CHECK_OK(fs->ops->list(fs, dir, &names, &n));
    bool flipped = false;
    for (size_t i = 0; i < n && !flipped; i++)
        if (strstr(names[i], ".sst")) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            flip_byte(path, 100);
            flipped = true;
        }
    ppdb_fs_names_free(names, n);
    CHECK(flipped);
    CHECK_EQ(run_tool(tool, "verify", dir), 1);
    flip_byte(path, 100); /* restore */
    CHECK_EQ(run_tool(tool, "verify", dir), 0);
    /* And one in the manifest. */
    struct ppdb_buf cur;
    ppdb_buf_init(&cur);
    snprintf(path, sizeof(path), "%s/CURRENT", dir);
    CHECK_OK(ppdb_fs_read_all(fs, path, &cur));
    snprintf(path, sizeof(path), "%s/%.*s", dir, (int)cur.len - 1, (const char *)cur.data);
    ppdb_buf_deinit(&cur);
    flip_byte(path, 20);
    CHECK_EQ(run_tool(tool, "verify", dir), 1);
    test_live_log(tool, fs, tmp);
    ppdb_fs_destroy(fs);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    CHECK_EQ(system(cmd), 0);
    printf("ok (%u tables checked)\n", st.level_files[0] + st.level_files[1]);
    return 0;
}
