/*
 * test_table_corrupt.c - every single-byte corruption of a small table
 * (footer, index, properties, filter, data blocks, block trailers) is
 * detected: the open or the read that touches the damaged block returns
 * PPDB_ECORRUPT, nothing crashes, and every entry returned before the
 * error is exactly right. Truncated files fail to open. Flips alternate
 * between the mapped and the pread read paths.
 */
#include "test_table_util.h"

#define N    300
#define VMAX 40

static uint8_t *keys[N];
static size_t lens[N];
static int64_t log_lines;

static void count_sink(void *arg, int level, const char *line, size_t len)
{
    log_lines++;
}

static void make_keys(void)
{
    for (int i = 0; i < N; i++) {
        char u[16];
        int ul = snprintf(u, sizeof(u), "key%05d", i / 2);
        keys[i] = malloc(ul + PPDB_IKEY_TRAILER);
        lens[i] = ppdb_ikey_encode(keys[i], u, (size_t)ul, 10 - (uint64_t)(i % 2), (uint64_t)i + 1,
                                   PPDB_VT_VALUE);
    }
}

static void write_bytes(struct ppdb_fs *fs, const char *path, const uint8_t *p, size_t n)
{
    struct ppdb_file *f;
    CHECK_OK(fs->ops->open(fs, path, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_TRUNC, &f));
    CHECK_OK(fs->ops->append(fs, f, p, n));
    CHECK_OK(fs->ops->close(fs, f));
}

/* Opens and reads everything; returns true when corruption was reported.
 * Any entry delivered must match the model. */
static bool probe(struct ppdb_fs *fs, struct ppdb_cache *cache, uint64_t size,
                  const struct ppdb_table_read_options *ro)
{
    struct ppdb_file *f;
    CHECK_OK(fs->ops->open(fs, "c.sst", PPDB_FS_READ, &f));
    struct ppdb_table *t;
    int rc = ppdb_table_open(fs, f, size, cache, 1, ro, &t);
    bool detected = rc != 0;
    if (rc)
        CHECK_ERR(rc, PPDB_ECORRUPT);
    if (rc == 0) {
        struct ppdb_table_iter *it;
        CHECK_OK(ppdb_table_iter_new(t, &it));
        size_t i = 0;
        for (ppdb_table_iter_seek_first(it); ppdb_table_iter_valid(it); ppdb_table_iter_next(it)) {
            size_t kn, vn;
            const uint8_t *k = ppdb_table_iter_key(it, &kn);
            const uint8_t *v = ppdb_table_iter_value(it, &vn);
            uint8_t want[VMAX];
            CHECK_LT(i, N);
            CHECK_EQ(kn, lens[i]);
            CHECK_MEMEQ(k, keys[i], kn);
            CHECK_EQ(vn, tt_value(k, kn, want, VMAX));
            CHECK_MEMEQ(v, want, vn);
            i++;
        }
        rc = ppdb_table_iter_status(it);
        if (rc)
            CHECK_ERR(rc, PPDB_ECORRUPT);
        else
            CHECK_EQ(i, N);
        detected |= rc != 0;
        ppdb_table_iter_free(it);
        struct ppdb_buf val;
        ppdb_buf_init(&val);
        for (int j = 0; j < N; j += 2) {
            struct ppdb_ikey k;
            rc = ppdb_table_get_first(t, keys[j], lens[j] - PPDB_IKEY_TRAILER, &k, &val);
            if (rc) {
                CHECK_ERR(rc, PPDB_ECORRUPT);
                detected = true;
                continue;
            }
            uint8_t want[VMAX];
            CHECK_EQ(k.version, 10);
            CHECK_EQ(val.len, tt_value(keys[j], lens[j], want, VMAX));
            CHECK_MEMEQ(val.data, want, val.len);
        }
        ppdb_buf_deinit(&val);
        ppdb_table_close(t);
    }
    CHECK_OK(fs->ops->close(fs, f));
    return detected;
}

static void run(struct ppdb_fs *fs, int compression, struct ppdb_rng *rng)
{
    struct ppdb_table_options o;
    ppdb_table_options_default(&o);
    o.block_size = 512;
    o.compression = compression;
    struct ppdb_table_props props;
    uint64_t size;
    tt_write(fs, "t.sst", &o, keys, lens, N, VMAX, &props, &size);
    ppdb_table_props_deinit(&props);
    struct ppdb_buf orig;
    ppdb_buf_init(&orig);
    CHECK_OK(ppdb_fs_read_all(fs, "t.sst", &orig));
    CHECK_EQ(orig.len, size);

    struct ppdb_logger lg;
    ppdb_logger_init(&lg, PPDB_LOG_ERROR, "test");
    lg.sink = count_sink;
    struct ppdb_table_read_options ro;
    ppdb_table_read_options_default(&ro);
    ro.logger = &lg;
    struct ppdb_cache *cache;
    CHECK_OK(ppdb_cache_new(1 << 20, 0, &cache));

    write_bytes(fs, "c.sst", orig.data, orig.len);
    CHECK(!probe(fs, cache, size, &ro)); /* the intact table reads clean */
    uint8_t *copy = malloc(orig.len);
    for (size_t off = 0; off < orig.len; off++) {
        memcpy(copy, orig.data, orig.len);
        copy[off] ^= (uint8_t)(1 + ppdb_rng_below(rng, 255));
        write_bytes(fs, "c.sst", copy, orig.len);
        int64_t lines = log_lines;
        ro.no_mmap = off & 1; /* both read paths: in place and pread */
        if (!probe(fs, cache, size, &ro))
            CHECK_FAIL_("flip at offset %zu of %zu went unnoticed", off, orig.len);
        CHECK_GT(log_lines, lines); /* and was logged */
    }
    write_bytes(fs, "c.sst", orig.data, orig.len);
    for (uint64_t cut = 0; cut < size; cut += 1 + cut / 4) /* truncations */
        CHECK(probe(fs, cache, cut, &ro));
    fprintf(stderr, "compression %d: %zu flips detected\n", compression, orig.len);
    free(copy);
    ppdb_cache_free(cache);
    ppdb_buf_deinit(&orig);
}

int main(int argc, char **argv)
{
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, check_seed(argc, argv, 11));
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    make_keys();
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    run(fs, PPDB_COMPRESS_NONE, &rng);
    run(fs, PPDB_COMPRESS_LZ4, &rng);
    ppdb_fs_destroy(fs);
    for (int i = 0; i < N; i++)
        free(keys[i]);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
