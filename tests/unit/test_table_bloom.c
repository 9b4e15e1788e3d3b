/*
 * test_table_bloom.c - the cache-line-blocked bloom filter: no false
 * negatives, a measured false-positive rate below 2% at 10 bits per key
 * (about 1% expected), fewer bits give more false positives, and malformed
 * filters are rejected.
 */
#include "check.h"
#include "table.h"

static double fp_rate(struct ppdb_rng *rng, uint32_t bits_per_key, size_t n)
{
    struct ppdb_bloom_builder bb;
    ppdb_bloom_builder_init(&bb, bits_per_key);
    uint64_t salt = ppdb_rng_next(rng);
    char k[32];
    for (size_t i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof(k), "key-%llx-%zu", (unsigned long long)salt, i);
        CHECK_OK(ppdb_bloom_builder_add(&bb, k, (size_t)kl));
    }
    struct ppdb_buf out;
    ppdb_buf_init(&out);
    CHECK_OK(ppdb_bloom_builder_finish(&bb, &out));
    struct ppdb_bloom f;
    CHECK_OK(ppdb_bloom_parse(&f, out.data, out.len));
    CHECK_LE((out.len - PPDB_BLOOM_TRAILER) * 8, n * bits_per_key + 512);
    for (size_t i = 0; i < n; i++) { /* no false negatives */
        int kl = snprintf(k, sizeof(k), "key-%llx-%zu", (unsigned long long)salt, i);
        CHECK(ppdb_bloom_may_contain(&f, k, (size_t)kl));
    }
    size_t fp = 0, probes = 10 * n;
    for (size_t i = 0; i < probes; i++) {
        int kl = snprintf(k, sizeof(k), "absent-%llx-%zu", (unsigned long long)salt, i);
        fp += ppdb_bloom_may_contain(&f, k, (size_t)kl);
    }
    ppdb_buf_deinit(&out);
    ppdb_bloom_builder_deinit(&bb);
    double rate = (double)fp / (double)probes;
    fprintf(stderr, "bits/key=%u keys=%zu fp=%.4f%%\n", bits_per_key, n, rate * 100);
    return rate;
}

static void test_malformed(void)
{
    struct ppdb_bloom f;
    uint8_t b[PPDB_BLOOM_LINE + PPDB_BLOOM_TRAILER] = {0};
    CHECK_ERR(ppdb_bloom_parse(&f, b, 10), PPDB_ECORRUPT);
    CHECK_ERR(ppdb_bloom_parse(&f, b, sizeof(b)), PPDB_ECORRUPT); /* 0 lines */
    ppdb_store_u32le(b + PPDB_BLOOM_LINE, 2);                     /* wrong line count */
    b[PPDB_BLOOM_LINE + 4] = 6;
    CHECK_ERR(ppdb_bloom_parse(&f, b, sizeof(b)), PPDB_ECORRUPT);
    ppdb_store_u32le(b + PPDB_BLOOM_LINE, 1);
    CHECK_OK(ppdb_bloom_parse(&f, b, sizeof(b)));
    CHECK(!ppdb_bloom_may_contain(&f, "x", 1)); /* all-zero filter: empty */
    b[PPDB_BLOOM_LINE + 4] = 0;                 /* no probes */
    CHECK_ERR(ppdb_bloom_parse(&f, b, sizeof(b)), PPDB_ECORRUPT);
}

int main(int argc, char **argv)
{
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, check_seed(argc, argv, 3));
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    double r10 = fp_rate(&rng, 10, 100000);
    CHECK(r10 < 0.02);
    CHECK(r10 > 0.001); /* a filter this small cannot be that good: the test measures */
    double r16 = fp_rate(&rng, 16, 100000);
    double r5 = fp_rate(&rng, 5, 100000);
    CHECK(r16 < r10);
    CHECK(r5 > r10);
    fp_rate(&rng, 10, 1); /* tiny filters work */
    test_malformed();
    check_no_leaks(&base);
    printf("ok\n");
    return 0;
}
