/*
 * test_table_block.c - blocks: build, iterate both ways, seek, prefix
 * compression across restart points, malformed restart arrays; plus the
 * internal key encoding and comparator the block order relies on.
 */
#include "check.h"
#include "table.h"

#define MAX_KEYS 2000

struct kv {
    uint8_t key[64];
    size_t klen;
    uint8_t val[32];
    size_t vlen;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    return ppdb_ikey_cmp(x->key, x->klen, y->key, y->klen);
}

static void test_ikeys(void)
{
    uint8_t a[64], b[64];
    size_t an = ppdb_ikey_encode(a, "k", 1, 5, 10, PPDB_VT_VALUE);
    size_t bn = ppdb_ikey_encode(b, "k", 1, 4, 99, PPDB_VT_VALUE);
    CHECK_LT(ppdb_ikey_cmp(a, an, b, bn), 0); /* higher version first */
    bn = ppdb_ikey_encode(b, "k", 1, 5, 9, PPDB_VT_VALUE);
    CHECK_LT(ppdb_ikey_cmp(a, an, b, bn), 0); /* then higher seq */
    bn = ppdb_ikey_encode(b, "k\x00", 2, 100, 100, PPDB_VT_VALUE);
    CHECK_LT(ppdb_ikey_cmp(a, an, b, bn), 0); /* user key is a unit */
    bn = ppdb_ikey_encode(b, "", 0, 0, 0, PPDB_VT_DEL);
    CHECK_GT(ppdb_ikey_cmp(a, an, b, bn), 0);
    struct ppdb_ikey k;
    CHECK_OK(ppdb_ikey_decode(a, an, &k));
    CHECK_EQ(k.ulen, 1);
    CHECK_EQ(k.version, 5);
    CHECK_EQ(k.seq, 10);
    CHECK_EQ(k.type, PPDB_VT_VALUE);
    CHECK_ERR(ppdb_ikey_decode(a, 15, &k), PPDB_ECORRUPT);
    uint8_t s[32];
    size_t sn = ppdb_ikey_seek_key(s, "k", 1);
    CHECK_LT(ppdb_ikey_cmp(s, sn, a, an), 0);
    an = ppdb_ikey_encode(a, "k", 1, PPDB_VERSION_MAX, PPDB_SEQ_MAX, PPDB_VT_MAX);
    CHECK_LT(ppdb_ikey_cmp(s, sn, a, an), 0);
}

/* Keys with long shared prefixes so prefix compression matters. */
static size_t make_keys(struct ppdb_rng *rng, struct kv *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char u[48];
        int ul = snprintf(u, sizeof(u), "user/%04u/%s", (unsigned)ppdb_rng_below(rng, 500),
                          ppdb_rng_below(rng, 2) ? "a" : "bb");
        kvs[i].klen = ppdb_ikey_encode(kvs[i].key, u, (size_t)ul, ppdb_rng_below(rng, 4),
                                       ppdb_rng_below(rng, 1000), PPDB_VT_VALUE);
        kvs[i].vlen = ppdb_rng_below(rng, sizeof(kvs[i].val));
        ppdb_rng_bytes(rng, kvs[i].val, kvs[i].vlen);
    }
    qsort(kvs, n, sizeof(*kvs), kv_cmp);
    size_t m = 0; /* drop duplicates */
    for (size_t i = 0; i < n; i++)
        if (m == 0 || kv_cmp(&kvs[m - 1], &kvs[i]) != 0)
            kvs[m++] = kvs[i];
    return m;
}

static void check_at(const struct ppdb_block_iter *it, const struct kv *e)
{
    CHECK(ppdb_block_iter_valid(it));
    CHECK_EQ(it->key.len, e->klen);
    CHECK_MEMEQ(it->key.data, e->key, e->klen);
    CHECK_EQ(it->vlen, e->vlen);
    CHECK_MEMEQ(it->value, e->val, e->vlen);
}

static void test_roundtrip(struct ppdb_rng *rng, uint32_t interval, struct kv *kvs)
{
    size_t n = make_keys(rng, kvs, 1 + ppdb_rng_below(rng, MAX_KEYS));
    struct ppdb_block_builder bb;
    ppdb_block_builder_init(&bb, interval);
    size_t raw = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(ppdb_block_builder_add(&bb, kvs[i].key, kvs[i].klen, kvs[i].val, kvs[i].vlen));
        raw += kvs[i].klen + kvs[i].vlen + 3; /* + one-byte varints */
    }
    size_t est = ppdb_block_builder_size(&bb);
    CHECK_OK(ppdb_block_builder_finish(&bb));
    CHECK_EQ(bb.buf.len, est);
    if (interval >= 16 && n > 100)
        CHECK_LT(bb.buf.len, raw); /* prefixes were shared */
    struct ppdb_block blk;
    CHECK_OK(ppdb_block_parse(&blk, bb.buf.data, bb.buf.len));
    CHECK_EQ(blk.n_restarts, (n + interval - 1) / interval);
    struct ppdb_block_iter it;
    ppdb_block_iter_init(&it, &blk);
    size_t i = 0;
    for (ppdb_block_iter_seek_first(&it); ppdb_block_iter_valid(&it); ppdb_block_iter_next(&it))
        check_at(&it, &kvs[i++]);
    CHECK_EQ(i, n);
    for (ppdb_block_iter_seek_last(&it); ppdb_block_iter_valid(&it); ppdb_block_iter_prev(&it))
        check_at(&it, &kvs[--i]);
    CHECK_EQ(i, 0);
    for (size_t j = 0; j < n; j++) { /* exact seeks, then one step each way */
        ppdb_block_iter_seek(&it, kvs[j].key, kvs[j].klen);
        check_at(&it, &kvs[j]);
        ppdb_block_iter_prev(&it);
        if (j == 0) {
            CHECK(!ppdb_block_iter_valid(&it));
            CHECK_EQ(it.status, 0);
        } else {
            check_at(&it, &kvs[j - 1]);
        }
    }
    for (size_t j = 0; j < 200; j++) { /* seeks between keys */
        struct kv probe;
        make_keys(rng, &probe, 1);
        ppdb_block_iter_seek(&it, probe.key, probe.klen);
        size_t k = 0;
        while (k < n && kv_cmp(&kvs[k], &probe) < 0)
            k++;
        if (k == n)
            CHECK(!ppdb_block_iter_valid(&it));
        else
            check_at(&it, &kvs[k]);
    }
    ppdb_block_iter_deinit(&it);
    ppdb_block_builder_deinit(&bb);
}

static void test_empty_and_malformed(void)
{
    struct ppdb_block_builder bb;
    ppdb_block_builder_init(&bb, 16);
    CHECK_OK(ppdb_block_builder_finish(&bb));
    struct ppdb_block blk;
    CHECK_OK(ppdb_block_parse(&blk, bb.buf.data, bb.buf.len));
    struct ppdb_block_iter it;
    ppdb_block_iter_init(&it, &blk);
    ppdb_block_iter_seek_first(&it);
    CHECK(!ppdb_block_iter_valid(&it));
    ppdb_block_iter_seek_last(&it);
    CHECK(!ppdb_block_iter_valid(&it));
    uint8_t k[20];
    ppdb_block_iter_seek(&it, k, ppdb_ikey_seek_key(k, "a", 1));
    CHECK(!ppdb_block_iter_valid(&it));
    ppdb_block_iter_deinit(&it);
    ppdb_block_builder_deinit(&bb);

    uint8_t bad[16] = {0};
    CHECK_ERR(ppdb_block_parse(&blk, bad, 4), PPDB_ECORRUPT);
    ppdb_store_u32le(bad + 12, 100); /* more restarts than fit */
    CHECK_ERR(ppdb_block_parse(&blk, bad, sizeof(bad)), PPDB_ECORRUPT);
    ppdb_store_u32le(bad + 12, 1);
    ppdb_store_u32le(bad + 8, 9); /* restart past the entries */
    CHECK_ERR(ppdb_block_parse(&blk, bad, sizeof(bad)), PPDB_ECORRUPT);
    /* Garbage entries: the iterator reports corruption, never over-reads. */
    ppdb_store_u32le(bad + 8, 0);
    memset(bad, 0xff, 8);
    CHECK_OK(ppdb_block_parse(&blk, bad, sizeof(bad)));
    ppdb_block_iter_init(&it, &blk);
    ppdb_block_iter_seek_first(&it);
    CHECK(!ppdb_block_iter_valid(&it));
    CHECK_EQ(it.status, PPDB_ECORRUPT);
    ppdb_block_iter_deinit(&it);
}

int main(int argc, char **argv)
{
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, check_seed(argc, argv, 42));
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_ikeys();
    struct kv *kvs = malloc(sizeof(*kvs) * MAX_KEYS);
    uint32_t intervals[] = {1, 2, 16, 1000};
    for (int r = 0; r < 20; r++)
        test_roundtrip(&rng, intervals[r % 4], kvs);
    free(kvs);
    test_empty_and_malformed();
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
