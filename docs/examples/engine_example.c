/*
 * engine_example.c - PPDB's storage engine used on its own, as a library.
 *
 * Opens a database in a directory, writes a batch, reads a key back, walks
 * a key range with an iterator, reads at a snapshot while newer writes go
 * on, and closes. Build it against an installed engine:
 *
 *   cc engine_example.c $(pkg-config --cflags --libs ppdb-engine) -o engine_example
 *   ./engine_example /tmp/example-db
 *
 * Exits 0 when every step did what it should.
 */
#include <stdio.h>
#include <string.h>

#include <ppdb_engine.h>

static int fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, ppdb_strerror(rc));
    return 1;
}

/* Prints the keys in [from, to) with their values; returns how many. */
static int print_range(struct ppdb_db *db, const struct ppdb_snapshot *snap, const char *from,
                       const char *to)
{
    struct ppdb_iter_options io = {.snapshot = snap,
                                   .lower_bound = from,
                                   .lower_len = strlen(from),
                                   .upper_bound = to,
                                   .upper_len = strlen(to)};
    struct ppdb_iter *it;
    if (ppdb_db_iter_new(db, &io, &it) != 0)
        return -1;
    int n = 0;
    for (ppdb_iter_seek_first(it); ppdb_iter_valid(it); ppdb_iter_next(it), n++) {
        size_t kl, vl;
        const char *k = ppdb_iter_key(it, &kl);
        const char *v = ppdb_iter_value(it, &vl);
        printf("  %.*s = %.*s\n", (int)kl, k, (int)vl, v);
    }
    int rc = ppdb_iter_status(it);
    ppdb_iter_free(it);
    return rc ? -1 : n;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp/ppdb-engine-example";
    struct ppdb_fs *fs;
    int rc = ppdb_fs_posix_new(&fs);
    if (rc)
        return fail("fs", rc);
    struct ppdb_db_options opts;
    ppdb_db_options_default(&opts);
    struct ppdb_db *db;
    if ((rc = ppdb_db_open(fs, dir, &opts, &db)) != 0)
        return fail("open", rc);

    /* One atomic batch of five fruits. */
    struct ppdb_batch *b;
    if ((rc = ppdb_batch_new(&b)) != 0)
        return fail("batch", rc);
    const char *fruit[] = {"apple", "banana", "cherry", "date", "elderberry"};
    for (int i = 0; i < 5; i++) {
        char v[32];
        snprintf(v, sizeof(v), "%d kg", i + 1);
        ppdb_batch_put(b, fruit[i], strlen(fruit[i]), v, strlen(v));
    }
    struct ppdb_write_options sync = {.sync = true};
    rc = ppdb_db_write(db, &sync, b);
    ppdb_batch_free(b);
    if (rc)
        return fail("write", rc);

    struct ppdb_buf val;
    ppdb_buf_init(&val);
    if ((rc = ppdb_db_get(db, NULL, "cherry", 6, &val, NULL)) != 0)
        return fail("get", rc);
    printf("cherry = %.*s\n", (int)val.len, (const char *)val.data);
    ppdb_buf_deinit(&val);

    /* A snapshot, then changes it must not see. */
    const struct ppdb_snapshot *snap;
    if ((rc = ppdb_db_snapshot_new(db, &snap)) != 0)
        return fail("snapshot", rc);
    ppdb_db_delete(db, NULL, "banana", 6);
    ppdb_db_put(db, NULL, "cherry", 6, "sold out", 8);

    printf("now, [b, e):\n");
    int now = print_range(db, NULL, "b", "e");
    printf("at the snapshot, [b, e):\n");
    int then = print_range(db, snap, "b", "e");
    ppdb_db_snapshot_release(db, snap);
    if ((rc = ppdb_db_close(db)) != 0)
        return fail("close", rc);
    ppdb_fs_destroy(fs);
    if (now != 2 || then != 3) {
        fprintf(stderr, "unexpected: %d keys now, %d at the snapshot\n", now, then);
        return 1;
    }
    printf("ok\n");
    return 0;
}
