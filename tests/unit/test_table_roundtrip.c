/*
 * test_table_roundtrip.c - tables of 100k random entries (several versions
 * per user key, some tombstones) in every compression mode: the iterator
 * yields exactly the sorted model both ways, seeks land on the first entry
 * >= the target, get returns the highest version first and every version in
 * order, absent keys are ENOTFOUND and (with a filter) almost never touch a
 * data block, and the properties match the model.
 */
#include "test_table_util.h"

#define N_ENTRIES 100000
#define VMAX      120

struct model {
    uint8_t **keys;
    size_t *lens;
    size_t n;
};

static int ptr_cmp(const void *a, const void *b)
{
    const uint8_t *x = *(uint8_t *const *)a, *y = *(uint8_t *const *)b;
    size_t xl = ppdb_load_u32le(x - 4), yl = ppdb_load_u32le(y - 4);
    return ppdb_ikey_cmp(x, xl, y, yl);
}

/* Keys are stored with their length in the 4 bytes before them. */
static uint8_t *new_key(const char *u, size_t ulen, uint64_t version, uint64_t seq, unsigned type)
{
    uint8_t *p = malloc(4 + ulen + PPDB_IKEY_TRAILER);
    size_t n = ppdb_ikey_encode(p + 4, u, ulen, version, seq, type);
    ppdb_store_u32le(p, (uint32_t)n);
    return p + 4;
}

static void make_model(struct ppdb_rng *rng, struct model *m)
{
    m->keys = malloc(sizeof(*m->keys) * N_ENTRIES);
    m->lens = malloc(sizeof(*m->lens) * N_ENTRIES);
    m->n = 0;
    uint64_t seq = 1;
    while (m->n < N_ENTRIES) {
        char u[40];
        int ul = snprintf(u, sizeof(u), "k%08llx%.*s", (unsigned long long)ppdb_rng_next(rng),
                          (int)ppdb_rng_below(rng, 12), "-suffix-tail");
        uint64_t versions = 1 + ppdb_rng_below(rng, 4), v0 = ppdb_rng_below(rng, 1000);
        for (uint64_t i = 0; i < versions && m->n < N_ENTRIES; i++) {
            unsigned type = ppdb_rng_below(rng, 10) == 0 ? PPDB_VT_DEL : PPDB_VT_VALUE;
            m->keys[m->n++] = new_key(u, (size_t)ul, v0 + i * 3, seq++, type);
        }
    }
    qsort(m->keys, m->n, sizeof(*m->keys), ptr_cmp);
    size_t w = 0; /* user keys drawn twice: keep distinct internal keys */
    for (size_t i = 0; i < m->n; i++) {
        if (w && ptr_cmp(&m->keys[w - 1], &m->keys[i]) == 0) {
            free(m->keys[i] - 4);
            continue;
        }
        m->keys[w++] = m->keys[i];
    }
    m->n = w;
    for (size_t i = 0; i < m->n; i++)
        m->lens[i] = ppdb_load_u32le(m->keys[i] - 4);
}

static void check_entry(struct ppdb_table_iter *it, const struct model *m, size_t i)
{
    CHECK(ppdb_table_iter_valid(it));
    size_t kn, vn;
    const uint8_t *k = ppdb_table_iter_key(it, &kn);
    const uint8_t *v = ppdb_table_iter_value(it, &vn);
    CHECK_EQ(kn, m->lens[i]);
    CHECK_MEMEQ(k, m->keys[i], kn);
    uint8_t want[VMAX];
    size_t wn = tt_value(k, kn, want, VMAX);
    CHECK_EQ(vn, wn);
    CHECK_MEMEQ(v, want, vn);
}

static void check_iteration(struct ppdb_table *t, const struct model *m, struct ppdb_rng *rng)
{
    struct ppdb_table_iter *it;
    CHECK_OK(ppdb_table_iter_new(t, &it));
    size_t i = 0;
    for (ppdb_table_iter_seek_first(it); ppdb_table_iter_valid(it); ppdb_table_iter_next(it))
        check_entry(it, m, i++);
    CHECK_OK(ppdb_table_iter_status(it));
    CHECK_EQ(i, m->n);
    for (ppdb_table_iter_seek_last(it); ppdb_table_iter_valid(it); ppdb_table_iter_prev(it))
        check_entry(it, m, --i);
    CHECK_OK(ppdb_table_iter_status(it));
    CHECK_EQ(i, 0);
    for (int r = 0; r < 2000; r++) { /* exact seeks with a step each way */
        size_t j = ppdb_rng_below(rng, m->n);
        ppdb_table_iter_seek(it, m->keys[j], m->lens[j]);
        check_entry(it, m, j);
        ppdb_table_iter_next(it);
        if (j + 1 < m->n)
            check_entry(it, m, j + 1);
        else
            CHECK(!ppdb_table_iter_valid(it));
        ppdb_table_iter_seek(it, m->keys[j], m->lens[j]);
        ppdb_table_iter_prev(it);
        if (j > 0)
            check_entry(it, m, j - 1);
        else
            CHECK(!ppdb_table_iter_valid(it));
    }
    for (int r = 0; r < 2000; r++) { /* seeks to user keys that may be absent */
        size_t j = ppdb_rng_below(rng, m->n);
        uint8_t s[64];
        size_t ulen = ppdb_ikey_ulen(m->lens[j]);
        memcpy(s, m->keys[j], ulen);
        size_t sl = ppdb_ikey_seek_key(s, s, ulen - (r & 1)); /* odd: a prefix */
        ppdb_table_iter_seek(it, s, sl);
        size_t lo = 0, hi = m->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (ppdb_ikey_cmp(m->keys[mid], m->lens[mid], s, sl) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == m->n)
            CHECK(!ppdb_table_iter_valid(it));
        else
            check_entry(it, m, lo);
    }
    ppdb_table_iter_free(it);
}

struct collect {
    const struct model *m;
    size_t next; /* model index the next callback must match */
    size_t calls;
};

static bool collect_cb(void *arg, const struct ppdb_ikey *k, const uint8_t *value, size_t vlen)
{
    struct collect *c = arg;
    const uint8_t *want = c->m->keys[c->next];
    struct ppdb_ikey w;
    CHECK_OK(ppdb_ikey_decode(want, c->m->lens[c->next], &w));
    CHECK_EQ(k->ulen, w.ulen);
    CHECK_MEMEQ(k->ukey, w.ukey, w.ulen);
    CHECK_EQ_U64(k->version, w.version);
    CHECK_EQ_U64(k->seq, w.seq);
    CHECK_EQ(k->type, w.type);
    uint8_t v[VMAX];
    size_t vn = tt_value(want, c->m->lens[c->next], v, VMAX);
    CHECK_EQ(vlen, vn);
    CHECK_MEMEQ(value, v, vn);
    c->next++;
    c->calls++;
    return false; /* all versions */
}

static void check_gets(struct ppdb_table *t, const struct model *m)
{
    struct ppdb_buf val;
    ppdb_buf_init(&val);
    size_t i = 0;
    while (i < m->n) { /* once per user key */
        size_t ulen = ppdb_ikey_ulen(m->lens[i]), j = i;
        while (j < m->n && m->lens[j] == m->lens[i] && memcmp(m->keys[j], m->keys[i], ulen) == 0)
            j++;
        struct collect c = {m, i, 0};
        CHECK_OK(ppdb_table_get(t, m->keys[i], ulen, collect_cb, &c));
        CHECK_EQ(c.calls, j - i);
        struct ppdb_ikey k, w;
        CHECK_OK(ppdb_table_get_first(t, m->keys[i], ulen, &k, &val));
        CHECK_OK(ppdb_ikey_decode(m->keys[i], m->lens[i], &w));
        CHECK_EQ_U64(k.version, w.version); /* the highest version */
        CHECK_EQ_U64(k.seq, w.seq);
        i = j;
    }
    ppdb_buf_deinit(&val);
}

/* Absent user keys: ENOTFOUND; with a filter, few block reads. */
static void check_absent(struct ppdb_table *t, struct ppdb_cache *cache, struct ppdb_rng *rng,
                         bool filter)
{
    struct ppdb_cache_stats before, after;
    ppdb_cache_stats(cache, &before);
    struct ppdb_buf val;
    ppdb_buf_init(&val);
    struct ppdb_ikey k;
    const int probes = 20000;
    for (int r = 0; r < probes; r++) {
        char u[40];
        int ul = snprintf(u, sizeof(u), "k%08llx!", (unsigned long long)ppdb_rng_next(rng));
        CHECK_ERR(ppdb_table_get_first(t, u, (size_t)ul, &k, &val), PPDB_ENOTFOUND);
    }
    ppdb_cache_stats(cache, &after);
    uint64_t reads = (after.hits + after.misses) - (before.hits + before.misses);
    fprintf(stderr, "  absent gets: %d probes, %llu block reads\n", probes,
            (unsigned long long)reads);
    if (filter)
        CHECK_LT(reads, probes / 50);
    ppdb_buf_deinit(&val);
}

static void check_props(const struct ppdb_table_props *p, const struct model *m)
{
    CHECK_EQ(p->entries, m->n);
    CHECK_EQ(p->smallest.len, m->lens[0]);
    CHECK_MEMEQ(p->smallest.data, m->keys[0], m->lens[0]);
    CHECK_EQ(p->largest.len, m->lens[m->n - 1]);
    CHECK_MEMEQ(p->largest.data, m->keys[m->n - 1], m->lens[m->n - 1]);
    uint64_t dels = 0, maxv = 0, maxs = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct ppdb_ikey k;
        CHECK_OK(ppdb_ikey_decode(m->keys[i], m->lens[i], &k));
        dels += k.type == PPDB_VT_DEL;
        maxv = PPDB_MAX(maxv, k.version);
        maxs = PPDB_MAX(maxs, k.seq);
    }
    CHECK_EQ_U64(p->deletions, dels);
    CHECK_EQ_U64(p->max_version, maxv);
    CHECK_EQ_U64(p->max_seq, maxs);
}

static uint64_t run_mode(struct ppdb_fs *fs, const struct model *m, struct ppdb_rng *rng,
                         const struct ppdb_table_options *o)
{
    struct ppdb_table_props props;
    uint64_t size;
    tt_write(fs, "t.sst", o, m->keys, m->lens, m->n, VMAX, &props, &size);
    check_props(&props, m);
    struct ppdb_cache *cache;
    CHECK_OK(ppdb_cache_new(8u << 20, 0, &cache));
    struct ppdb_file *f;
    CHECK_OK(fs->ops->open(fs, "t.sst", PPDB_FS_READ, &f));
    struct ppdb_table *t;
    CHECK_OK(ppdb_table_open(fs, f, size, cache, 7, NULL, &t));
    check_props(ppdb_table_props(t), m);
    CHECK_EQ_U64(ppdb_table_props(t)->data_bytes, props.data_bytes);
    check_iteration(t, m, rng);
    check_gets(t, m);
    check_absent(t, cache, rng, o->bloom_bits_per_key > 0);
    uint64_t prev = 0; /* approximate offsets grow with the key */
    for (size_t i = 0; i < m->n; i += 97) {
        uint64_t off = ppdb_table_approx_offset(t, m->keys[i], m->lens[i]);
        CHECK_GE(off, prev);
        CHECK_LE(off, size);
        prev = off;
    }
    ppdb_table_close(t);
    struct ppdb_cache_stats st;
    ppdb_cache_stats(cache, &st);
    CHECK_EQ(st.entries, 0); /* the table erased its blocks */
    ppdb_cache_free(cache);
    CHECK_OK(fs->ops->close(fs, f));
    fprintf(stderr, "mode comp=%d block=%u bloom=%u: file %llu bytes, data %llu, %llu blocks\n",
            o->compression, o->block_size, o->bloom_bits_per_key, (unsigned long long)size,
            (unsigned long long)props.data_bytes, (unsigned long long)props.data_blocks);
    uint64_t data = props.data_bytes;
    ppdb_table_props_deinit(&props);
    return data;
}

int main(int argc, char **argv)
{
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, check_seed(argc, argv, 1));
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    struct ppdb_fs *fs;
    CHECK_OK(ppdb_fs_mem_new(&fs));
    struct model m;
    make_model(&rng, &m);
    struct ppdb_table_options o;
    ppdb_table_options_default(&o);
    uint64_t plain = run_mode(fs, &m, &rng, &o);
    o.compression = PPDB_COMPRESS_LZ4;
    CHECK_LT(run_mode(fs, &m, &rng, &o), plain);
    o.compression = PPDB_COMPRESS_ZSTD;
    CHECK_LT(run_mode(fs, &m, &rng, &o), plain);
    /* Small blocks: user keys whose versions span blocks; no filter. */
    o.compression = PPDB_COMPRESS_NONE;
    o.block_size = 256;
    o.restart_interval = 4;
    o.bloom_bits_per_key = 0;
    run_mode(fs, &m, &rng, &o);
    for (size_t i = 0; i < m.n; i++)
        free(m.keys[i] - 4);
    free(m.keys);
    free(m.lens);
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
