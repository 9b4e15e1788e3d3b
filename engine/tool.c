/*
 * tool.c - ppdb-engine: inspect a database directory without opening it.
 *
 *   ppdb-engine dump DIR     tables per level with their key ranges, then
 *                            every entry of every table
 *   ppdb-engine verify DIR   every checksum of every file: the manifest's
 *                            records, each table (footer, index, filter,
 *                            properties, every data block, key order and
 *                            range), each log (every fragment)
 *   ppdb-engine stats DIR    a summary: files and bytes per level, entries,
 *                            tombstones, logs, manifest
 *
 * It takes no lock and writes nothing, so it can look at a live database
 * (it then sees the state of the manifest when it read it; a table deleted
 * meanwhile by a compaction shows as missing; the log being written ends in
 * the zero fill reserved ahead of its appends, a clean end, and a reading
 * that races an append is repeated, see verify_log). Exit status: 0 when all is
 * well, 1 when something is corrupt or missing, 2 on usage or I/O errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine_int.h"

struct tool {
    struct ppdb_fs *fs;
    const char *dir;
    struct vset vs;
    struct tcache *tc;
    struct version *v;
    uint64_t last_seq;
    int bad; /* corrupt or missing things found */
};

static void print_key(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && i < 64; i++)
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    if (n > 64)
        printf("...(%zu bytes)", n);
}

static void print_ikey(const struct ppdb_buf *k)
{
    struct ppdb_ikey ik;
    if (ppdb_ikey_decode(k->data, k->len, &ik)) {
        printf("<bad key>");
        return;
    }
    print_key(ik.ukey, ik.ulen);
    printf("@v%" PRIu64 "#%" PRIu64, ik.version, ik.seq);
}

static int tool_open(struct tool *t, const char *dir)
{
    memset(t, 0, sizeof(*t));
    t->dir = dir;
    int rc = ppdb_fs_posix_new(&t->fs);
    if (rc)
        return rc;
    vset_init(&t->vs, t->fs, dir, ppdb_logger_default());
    rc = vset_recover(&t->vs, &t->v, &t->last_seq);
    if (rc) {
        fprintf(stderr, "%s: cannot read the manifest: %s\n", dir, ppdb_strerror(rc));
        return rc;
    }
    return tcache_new(t->fs, dir, NULL, ppdb_logger_default(), 16, &t->tc);
}

static void tool_close(struct tool *t)
{
    version_unref(t->v);
    vset_deinit(&t->vs);
    tcache_free(t->tc);
    if (t->fs)
        ppdb_fs_destroy(t->fs);
}

/* Walks every entry of table f (verifying every block); dump prints them. */
static int scan_table(struct tool *t, struct vfile *f, bool dump, uint64_t *entries)
{
    struct iter *it;
    int rc = iter_table_new(t->tc, f, &it);
    if (rc)
        return rc;
    struct ppdb_buf prev;
    ppdb_buf_init(&prev);
    for (it->ops->seek_first(it); !rc && it->ops->valid(it); it->ops->next(it)) {
        size_t kl, vl;
        const uint8_t *k = it->ops->key(it, &kl);
        (void)it->ops->value(it, &vl);
        struct ppdb_ikey ik;
        if (ppdb_ikey_decode(k, kl, &ik) ||
            (prev.len && ppdb_ikey_cmp(prev.data, prev.len, k, kl) >= 0) ||
            ppdb_ikey_cmp(k, kl, f->smallest.data, f->smallest.len) < 0 ||
            ppdb_ikey_cmp(k, kl, f->largest.data, f->largest.len) > 0)
            rc = PPDB_ECORRUPT; /* malformed, out of order or out of range */
        if (!rc && dump) {
            printf("    ");
            print_key(ik.ukey, ik.ulen);
            printf(" v=%" PRIu64 " seq=%" PRIu64 " %s %zu bytes\n", ik.version, ik.seq,
                   ik.type == PPDB_VT_DEL ? "DEL" : "PUT", vl);
        }
        ppdb_buf_reset(&prev);
        if (!rc)
            rc = ppdb_buf_append(&prev, k, kl);
        (*entries)++;
    }
    if (!rc)
        rc = it->ops->status(it);
    ppdb_buf_deinit(&prev);
    iter_free(it);
    return rc;
}

static int for_each_table(struct tool *t, bool dump, bool scan)
{
    for (int l = 0; l < PPDB_NUM_LEVELS; l++) {
        for (size_t i = 0; i < t->v->nfiles[l]; i++) {
            struct vfile *f = t->v->files[l][i];
            uint64_t entries = 0;
            int rc = scan ? scan_table(t, f, dump, &entries) : 0;
            if (dump || rc) {
                printf("L%d %06" PRIu64 ".sst %" PRIu64 " bytes [", l, f->number, f->size);
                print_ikey(&f->smallest);
                printf(" .. ");
                print_ikey(&f->largest);
                printf("] max_version=%" PRIu64 " max_seq=%" PRIu64 "%s%s\n", f->max_version,
                       f->max_seq, rc ? " ERROR: " : "", rc ? ppdb_strerror(rc) : "");
            }
            if (rc)
                t->bad++;
        }
    }
    return 0;
}

/* What one reading of a log found. */
struct log_pass {
    int rc; /* PPDB_ENOTFOUND at the end, PPDB_ECORRUPT, or an fs error */
    int end;
    uint64_t records;
    uint64_t file_size;
    uint64_t bad_off;
    const char *why; /* static strings */
};

static void read_log(struct tool *t, const char *path, struct log_pass *ps)
{
    struct ppdb_file *f;
    struct wal_reader r;
    memset(ps, 0, sizeof(*ps));
    ps->rc = t->fs->ops->open(t->fs, path, PPDB_FS_READ, &f);
    if (!ps->rc && (ps->rc = wal_reader_init(&r, t->fs, f)) != 0)
        t->fs->ops->close(t->fs, f);
    if (ps->rc)
        return;
    const uint8_t *p;
    size_t n;
    while ((ps->rc = wal_reader_next(&r, &p, &n)) == 0) {
        ps->records++;
        if (batch_rep_validate(p, n)) {
            ps->rc = PPDB_ECORRUPT;
            r.why = "malformed batch";
            r.bad_off = r.good_end_off;
            break;
        }
    }
    ps->end = r.end;
    ps->file_size = r.file_size;
    ps->bad_off = r.bad_off;
    ps->why = r.why;
    wal_reader_deinit(&r);
    t->fs->ops->close(t->fs, f);
}

/* Reads reported as corrupt before a log counts as corrupt: the live log of
 * an open database is written while it is read, into zero fill reserved
 * ahead (docs/formats/wal.md), so one reading can meet a record half copied
 * or zero fill with a new record behind it. Such a false alarm moves on in
 * the next reading; real damage stays where it is. */
#define LOG_READS_MAX 8

/* Reads every record of log `name`; a torn tail is fine, corruption not
 * (found twice at the same offset). */
static void verify_log(struct tool *t, const char *name, uint64_t *bytes)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    struct log_pass ps, prev = {.rc = 0};
    int reads = 0;
    for (;;) {
        read_log(t, path, &ps);
        reads++;
        if (ps.rc != PPDB_ECORRUPT || reads == LOG_READS_MAX ||
            (prev.rc == PPDB_ECORRUPT && prev.bad_off == ps.bad_off))
            break;
        prev = ps;
    }
    *bytes += ps.file_size;
    if (ps.rc == PPDB_ENOTFOUND) {
        printf("%s: %" PRIu64 " records, %s end\n", name, ps.records,
               ps.end == WAL_END_TORN ? "torn (a write cut short)" : "clean");
    } else if (ps.rc == PPDB_ECORRUPT && prev.bad_off != ps.bad_off) {
        printf("%s: %" PRIu64 " records, still being written (its end moved in each of %d reads)\n",
               name, ps.records, reads);
    } else if (ps.rc == PPDB_ECORRUPT) {
        printf("%s: CORRUPT at offset %" PRIu64 ": %s\n", name, ps.bad_off, ps.why ? ps.why : "?");
        t->bad++;
    } else {
        printf("%s: cannot read: %s\n", name, ppdb_strerror(ps.rc));
        t->bad++;
    }
}

static void for_each_log(struct tool *t, uint64_t *count, uint64_t *bytes)
{
    char **names;
    size_t n;
    if (t->fs->ops->list(t->fs, t->dir, &names, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > 4 && strcmp(names[i] + len - 4, ".log") == 0) {
            (*count)++;
            verify_log(t, names[i], bytes);
        }
    }
    ppdb_fs_names_free(names, n);
}

static void print_stats(struct tool *t)
{
    uint64_t total = 0;
    printf("manifest MANIFEST-%06" PRIu64 ": next file %" PRIu64 ", log number %" PRIu64
           ", last sequence %" PRIu64 "\n",
           (uint64_t)atomic_load(&t->vs.manifest_number), (uint64_t)atomic_load(&t->vs.next_file),
           t->vs.log_number, t->last_seq);
    for (int l = 0; l < PPDB_NUM_LEVELS; l++) {
        uint64_t bytes = version_level_bytes(t->v, l), entries = 0, dels = 0;
        for (size_t i = 0; i < t->v->nfiles[l]; i++) {
            struct tcache_handle *h;
            if (tcache_get(t->tc, t->v->files[l][i], &h)) {
                t->bad++;
                continue;
            }
            const struct ppdb_table_props *p = ppdb_table_props(tcache_table(h));
            entries += p->entries;
            dels += p->deletions;
            tcache_release(t->tc, h);
        }
        total += bytes;
        printf("L%d: %zu tables, %" PRIu64 " bytes, %" PRIu64 " entries (%" PRIu64 " tombstones)\n",
               l, t->v->nfiles[l], bytes, entries, dels);
    }
    printf("tables: %" PRIu64 " bytes\n", total);
}

int main(int argc, char **argv)
{
    if (argc != 3 ||
        (strcmp(argv[1], "dump") && strcmp(argv[1], "verify") && strcmp(argv[1], "stats"))) {
        fprintf(stderr, "usage: %s dump|verify|stats DIR\n", argv[0]);
        return 2;
    }
    struct tool t;
    int rc = tool_open(&t, argv[2]);
    if (rc) {
        tool_close(&t);
        return rc == PPDB_ECORRUPT || rc == PPDB_EVERSION ? 1 : 2;
    }
    uint64_t logs = 0, log_bytes = 0;
    if (strcmp(argv[1], "stats") == 0) {
        print_stats(&t);
    } else {
        for_each_table(&t, strcmp(argv[1], "dump") == 0, true);
        for_each_log(&t, &logs, &log_bytes);
        printf("%s: %" PRIu64 " logs (%" PRIu64 " bytes); %d problems\n", argv[2], logs, log_bytes,
               t.bad);
    }
    int bad = t.bad;
    tool_close(&t);
    return bad ? 1 : 0;
}
