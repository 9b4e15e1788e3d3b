/*
 * test_base.c - the base layer: errors, buffers, reader, varints, CRC32C,
 * hash stability, rng determinism, counted allocation and OOM injection, hex,
 * addresses and the timer heap.
 */
#include "check.h"
#include "ppdb_env.h"

static void test_errors(void)
{
    CHECK_STREQ(ppdb_strerror(PPDB_ECORRUPT), "data corruption detected");
    CHECK_STREQ(ppdb_errname(PPDB_ENOSPC), "ENOSPC");
    CHECK_STREQ(ppdb_strerror(0), "ok");
    CHECK_STREQ(ppdb_strerror(-9999), "unknown error -9999");
    CHECK_EQ(ppdb_err_from_errno(28 /* ENOSPC */), PPDB_ENOSPC);
    CHECK_EQ(ppdb_err_from_errno(2 /* ENOENT */), PPDB_ENOENT);
}

static void test_buf_and_reader(void)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    CHECK_OK(ppdb_buf_append_u8(&b, 0xab));
    CHECK_OK(ppdb_buf_append_u16be(&b, 0x1234));
    CHECK_OK(ppdb_buf_append_u32be(&b, 0xdeadbeef));
    CHECK_OK(ppdb_buf_append_u64le(&b, 0x0102030405060708ull));
    CHECK_OK(ppdb_buf_append_varint(&b, 300));
    CHECK_OK(ppdb_buf_append_varint(&b, UINT64_MAX));
    struct ppdb_rd r;
    ppdb_rd_init(&r, b.data, b.len);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    CHECK_OK(ppdb_rd_u8(&r, &u8));
    CHECK_EQ(u8, 0xab);
    CHECK_OK(ppdb_rd_u16be(&r, &u16));
    CHECK_EQ(u16, 0x1234);
    CHECK_OK(ppdb_rd_u32be(&r, &u32));
    CHECK_EQ_U64(u32, 0xdeadbeefu);
    CHECK_OK(ppdb_rd_u64le(&r, &u64));
    CHECK_EQ_U64(u64, 0x0102030405060708ull);
    CHECK_OK(ppdb_rd_varint(&r, &u64));
    CHECK_EQ(u64, 300);
    CHECK_OK(ppdb_rd_varint(&r, &u64));
    CHECK_EQ_U64(u64, UINT64_MAX);
    CHECK_EQ(ppdb_rd_left(&r), 0);
    CHECK_ERR(ppdb_rd_u8(&r, &u8), PPDB_ETRUNC);
    /* a truncated varint leaves the reader where it was */
    uint8_t bad[3] = {0x80, 0x80, 0x80};
    ppdb_rd_init(&r, bad, sizeof(bad));
    CHECK_ERR(ppdb_rd_varint(&r, &u64), PPDB_ETRUNC);
    CHECK_EQ(ppdb_rd_left(&r), 3);
    uint8_t over[11];
    memset(over, 0xff, sizeof(over));
    ppdb_rd_init(&r, over, sizeof(over));
    CHECK_ERR(ppdb_rd_varint(&r, &u64), PPDB_ECORRUPT);
    size_t n;
    uint8_t *stolen = ppdb_buf_steal(&b, &n);
    CHECK_EQ(b.len, 0);
    CHECK_GT(n, 20);
    ppdb_free(stolen);
}

static void test_crc_and_hash(void)
{
    /* Known CRC-32C vectors (RFC 3720 B.4). */
    uint8_t zeros[32] = {0}, ones[32], incr[32];
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        incr[i] = (uint8_t)i;
    CHECK_EQ_U64(ppdb_crc32c(zeros, 32), 0x8a9136aau);
    CHECK_EQ_U64(ppdb_crc32c(ones, 32), 0x62a8ab43u);
    CHECK_EQ_U64(ppdb_crc32c(incr, 32), 0x46dd794eu);
    CHECK_EQ_U64(ppdb_crc32c("123456789", 9), 0xe3069283u);
    /* extend is associative over splits */
    uint32_t c = ppdb_crc32c_extend(ppdb_crc32c(incr, 13), incr + 13, 19);
    CHECK_EQ_U64(c, 0x46dd794eu);
    CHECK_EQ_U64(ppdb_crc32c_unmask(ppdb_crc32c_mask(c)), c);
    /* the hash is part of on-disk formats: pin a few values */
    uint64_t h1 = ppdb_hash64("", 0, 0), h2 = ppdb_hash64("hello", 5, 0);
    CHECK_NE(h1, h2);
    CHECK_NE(ppdb_hash64("hello", 5, 1), h2);
    CHECK_EQ_U64(ppdb_hash64("hello", 5, 0), h2);
    fprintf(stderr, "hash64(\"\")=%016llx hash64(\"hello\")=%016llx\n", (unsigned long long)h1,
            (unsigned long long)h2);
    /* every length 0..64 differs from its neighbours */
    uint8_t buf[64] = {0};
    for (size_t i = 1; i < sizeof(buf); i++)
        CHECK_NE(ppdb_hash64(buf, i, 7), ppdb_hash64(buf, i - 1, 7));
}

static void test_rng(void)
{
    struct ppdb_rng a, b;
    ppdb_rng_seed(&a, 42);
    ppdb_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ_U64(ppdb_rng_next(&a), ppdb_rng_next(&b));
    ppdb_rng_seed(&b, 43);
    CHECK_NE(ppdb_rng_next(&a), ppdb_rng_next(&b));
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++)
        counts[ppdb_rng_below(&a, 10)]++;
    for (int i = 0; i < 10; i++) {
        CHECK_GT(counts[i], 9400);
        CHECK_LT(counts[i], 10600);
    }
    double d = ppdb_rng_double(&a);
    CHECK(d >= 0.0 && d < 1.0);
}

static void test_alloc(void)
{
    struct ppdb_alloc_stats base, now;
    ppdb_alloc_stats(&base);
    void *p = ppdb_malloc(100);
    ppdb_alloc_stats(&now);
    CHECK_EQ(now.live_blocks, base.live_blocks + 1);
    CHECK_EQ(now.live_bytes, base.live_bytes + 100);
    p = ppdb_realloc(p, 1000);
    ppdb_alloc_stats(&now);
    CHECK_EQ(now.live_bytes, base.live_bytes + 1000);
    ppdb_free(p);
    check_no_leaks(&base);
    ppdb_alloc_fail_after(2);
    void *ok = ppdb_malloc(8);
    CHECK(ok != NULL);
    CHECK(ppdb_malloc(8) == NULL);
    void *after = ppdb_malloc(8);
    CHECK(after != NULL);
    ppdb_free(ok);
    ppdb_free(after);
    /* a buffer whose growth fails keeps its contents */
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    CHECK_OK(ppdb_buf_append(&b, "abc", 3));
    ppdb_alloc_fail_after(1);
    uint8_t big[200] = {0};
    CHECK_ERR(ppdb_buf_append(&b, big, sizeof(big)), PPDB_ENOMEM);
    CHECK_EQ(b.len, 3);
    CHECK_MEMEQ(b.data, "abc", 3);
    ppdb_buf_deinit(&b);
    check_no_leaks(&base);
}

static void test_hex(void)
{
    uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff}, out[4];
    char s[9];
    CHECK_STREQ(ppdb_hex(in, 4, s), "009fa0ff");
    CHECK_OK(ppdb_unhex("009FA0ff", out, 4));
    CHECK_MEMEQ(in, out, 4);
    CHECK_ERR(ppdb_unhex("009fa0f", out, 4), PPDB_EINVAL);
    CHECK_ERR(ppdb_unhex("009fa0fg", out, 4), PPDB_EINVAL);
}

static void test_addr(void)
{
    struct ppdb_addr a, b;
    char s[PPDB_ADDR_STRLEN];
    CHECK_OK(ppdb_addr_parse("127.0.0.1:7000", &a));
    CHECK_EQ(a.family, 4);
    CHECK_EQ(a.port, 7000);
    CHECK_STREQ(ppdb_addr_format(&a, s), "127.0.0.1:7000");
    CHECK(ppdb_addr_is_loopback(&a));
    CHECK_OK(ppdb_addr_parse("[::1]:65535", &b));
    CHECK_STREQ(ppdb_addr_format(&b, s), "[::1]:65535");
    CHECK(ppdb_addr_is_loopback(&b));
    CHECK(!ppdb_addr_equal(&a, &b));
    CHECK_LT(ppdb_addr_cmp(&a, &b), 0);
    CHECK_OK(ppdb_addr_parse("localhost:1", &b));
    CHECK_STREQ(ppdb_addr_format(&b, s), "127.0.0.1:1");
    const char *bad[] = {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3:1", "[::1:5",
                         "[::1]5", "host.example:80", "1.2.3.4:-1", "1.2.3.4:1x"};
    for (size_t i = 0; i < PPDB_ARRAY_LEN(bad); i++)
        CHECK_ERR(ppdb_addr_parse(bad[i], &a), PPDB_EINVAL);
}

static int fired[64], nfired;

static void record_cb(struct ppdb_timer *t)
{
    fired[nfired++] = (int)(intptr_t)t->data;
}

static void test_timer_heap(uint64_t seed)
{
    struct ppdb_timer_heap h;
    struct ppdb_timer t[64];
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    CHECK_OK(ppdb_timer_heap_init(&h, 64));
    uint64_t due[64];
    for (int i = 0; i < 64; i++) {
        ppdb_timer_init(&t[i], record_cb, (void *)(intptr_t)i);
        due[i] = ppdb_rng_below(&rng, 8); /* many ties */
        CHECK_OK(ppdb_timer_heap_push(&h, &t[i], due[i]));
    }
    struct ppdb_timer extra;
    ppdb_timer_init(&extra, record_cb, NULL);
    CHECK_ERR(ppdb_timer_heap_push(&h, &extra, 0), PPDB_ELIMIT);
    /* cancel every 5th */
    for (int i = 0; i < 64; i += 5)
        ppdb_timer_heap_remove(&h, &t[i]);
    nfired = 0;
    struct ppdb_timer *x;
    while ((x = ppdb_timer_heap_pop(&h)) != NULL)
        x->cb(x);
    CHECK_EQ(nfired, 64 - 13);
    for (int i = 1; i < nfired; i++) {
        int a = fired[i - 1], b = fired[i];
        CHECK(due[a] < due[b] || (due[a] == due[b] && a < b)); /* ties in arm order */
        CHECK_NE(a % 5, 0);
    }
    ppdb_timer_heap_deinit(&h);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 1);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_errors();
    test_buf_and_reader();
    test_crc_and_hash();
    test_rng();
    test_alloc();
    test_hex();
    test_addr();
    test_timer_heap(seed);
    check_no_leaks(&base);
    printf("base: all checks passed\n");
    return 0;
}
