/*
 * test_mp.c - the strict msgpack layer: round trips, and every kind of bad
 * input (truncation at every length, forged lengths, depth and element
 * limits, wrong types, trailing bytes) rejected with a clear code.
 */
#include "check.h"
#include "ppdb_mp.h"

static void encode_sample(struct ppdb_buf *b)
{
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, b);
    ppdb_mpw_map(&w, 6);
    ppdb_mpw_uint(&w, 1);
    ppdb_mpw_uint(&w, 123456789012ull);
    ppdb_mpw_uint(&w, 2);
    ppdb_mpw_int(&w, -42);
    ppdb_mpw_uint(&w, 3);
    ppdb_mpw_cstr(&w, "hello");
    ppdb_mpw_uint(&w, 4);
    ppdb_mpw_bin(&w, "\x01\x02\x03\x04", 4);
    ppdb_mpw_uint(&w, 5);
    ppdb_mpw_array(&w, 2);
    ppdb_mpw_bool(&w, true);
    ppdb_mpw_nil(&w);
    ppdb_mpw_uint(&w, 99); /* a field newer readers know, older ones ignore */
    ppdb_mpw_double(&w, 2.5);
    CHECK_OK(ppdb_mpw_error(&w));
}

static void test_round_trip(void)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    encode_sample(&b);
    struct ppdb_mp_doc doc;
    CHECK_OK(ppdb_mp_parse(b.data, b.len, NULL, &doc, NULL));
    uint64_t u;
    int64_t i;
    const char *s;
    size_t n;
    uint8_t four[4];
    CHECK_OK(ppdb_mp_get_u64(&doc.root, 1, &u));
    CHECK_EQ_U64(u, 123456789012ull);
    CHECK_OK(ppdb_mp_get_i64(&doc.root, 2, &i));
    CHECK_EQ(i, -42);
    CHECK_ERR(ppdb_mp_get_u64(&doc.root, 2, &u), PPDB_ERANGE);
    CHECK_OK(ppdb_mp_get_str(&doc.root, 3, &s, &n));
    CHECK_EQ(n, 5);
    CHECK_MEMEQ(s, "hello", 5);
    CHECK_ERR(ppdb_mp_get_bin(&doc.root, 3, (const uint8_t **)&s, &n), PPDB_ETYPE);
    CHECK_OK(ppdb_mp_get_bin_fixed(&doc.root, 4, four, 4));
    CHECK_ERR(ppdb_mp_get_bin_fixed(&doc.root, 4, four, 3), PPDB_ERANGE);
    const msgpack_object *arr, *items;
    uint32_t count;
    CHECK_OK(ppdb_mp_map_get(&doc.root, 5, &arr));
    CHECK_OK(ppdb_mp_as_array(arr, &items, &count));
    CHECK_EQ(count, 2);
    bool flag;
    CHECK_OK(ppdb_mp_as_bool(&items[0], &flag));
    CHECK(flag);
    CHECK_ERR(ppdb_mp_as_bool(&items[1], &flag), PPDB_ETYPE);
    CHECK_ERR(ppdb_mp_get_u64(&doc.root, 7, &u), PPDB_ENOTFOUND);
    CHECK_ERR(ppdb_mp_get_u64(&items[0], 1, &u), PPDB_ETYPE);
    char small[4];
    CHECK_ERR(ppdb_mp_as_cstr(&doc.root.via.map.ptr[2].val, small, sizeof(small)), PPDB_ERANGE);
    ppdb_mp_doc_deinit(&doc);
    ppdb_buf_deinit(&b);
}

static void test_truncation(void)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    encode_sample(&b);
    for (size_t len = 0; len < b.len; len++) {
        struct ppdb_mp_doc doc;
        int rc = ppdb_mp_parse(b.data, len, NULL, &doc, NULL);
        CHECK(rc == PPDB_ETRUNC || rc == PPDB_EPROTO);
    }
    /* trailing bytes: an error without used_out, reported with it */
    CHECK_OK(ppdb_buf_append_u8(&b, 0xc0));
    struct ppdb_mp_doc doc;
    CHECK_ERR(ppdb_mp_parse(b.data, b.len, NULL, &doc, NULL), PPDB_EPROTO);
    size_t used;
    CHECK_OK(ppdb_mp_parse(b.data, b.len, NULL, &doc, &used));
    CHECK_EQ(used, b.len - 1);
    ppdb_mp_doc_deinit(&doc);
    ppdb_buf_deinit(&b);
}

static void test_forged_and_limits(void)
{
    struct ppdb_mp_doc doc;
    /* array32 claiming 4 billion elements in 5 bytes */
    const uint8_t forged_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_ERR(ppdb_mp_parse(forged_array, sizeof(forged_array), NULL, &doc, NULL), PPDB_ETRUNC);
    const uint8_t forged_str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    CHECK_ERR(ppdb_mp_parse(forged_str, sizeof(forged_str), NULL, &doc, NULL), PPDB_ETRUNC);
    const uint8_t forged_map[] = {0xde, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04};
    CHECK_ERR(ppdb_mp_parse(forged_map, sizeof(forged_map), NULL, &doc, NULL), PPDB_ETRUNC);
    const uint8_t never_used[] = {0xc1};
    CHECK_ERR(ppdb_mp_parse(never_used, 1, NULL, &doc, NULL), PPDB_EPROTO);
    const uint8_t ext[] = {0xd4, 0x01, 0x00};
    CHECK_ERR(ppdb_mp_parse(ext, sizeof(ext), NULL, &doc, NULL), PPDB_EPROTO);
    /* nesting deeper than the limit */
    uint8_t deep[40];
    memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] */
    deep[39] = 0x01;
    CHECK_ERR(ppdb_mp_parse(deep, sizeof(deep), NULL, &doc, NULL), PPDB_ELIMIT);
    struct ppdb_mp_limits lim = {.max_depth = 40, .max_elements = 100};
    CHECK_ERR(ppdb_mp_parse(deep, sizeof(deep), &lim, &doc, NULL), PPDB_ELIMIT); /* hard cap */
    CHECK_OK(ppdb_mp_parse(deep + 40 - 25, 25, &lim, &doc, NULL));
    ppdb_mp_doc_deinit(&doc);
    /* too many elements */
    uint8_t many[3 + 200];
    many[0] = 0xdc;
    many[1] = 0;
    many[2] = 200;
    memset(many + 3, 0x00, 200);
    lim.max_elements = 100;
    CHECK_ERR(ppdb_mp_parse(many, sizeof(many), &lim, &doc, NULL), PPDB_ELIMIT);
    CHECK_OK(ppdb_mp_parse(many, sizeof(many), NULL, &doc, NULL));
    ppdb_mp_doc_deinit(&doc);
    CHECK_ERR(ppdb_mp_parse(many, 0, NULL, &doc, NULL), PPDB_ETRUNC);
}

static void test_random_garbage(uint64_t seed)
{
    struct ppdb_rng rng;
    uint8_t buf[256];
    ppdb_rng_seed(&rng, seed);
    int ok = 0;
    for (int i = 0; i < 200000; i++) {
        size_t n = ppdb_rng_below(&rng, sizeof(buf));
        ppdb_rng_bytes(&rng, buf, n);
        struct ppdb_mp_doc doc;
        size_t used;
        if (ppdb_mp_parse(buf, n, NULL, &doc, &used) == 0) {
            CHECK_LE(used, n);
            ok++;
            ppdb_mp_doc_deinit(&doc);
        }
    }
    fprintf(stderr, "garbage inputs that parsed: %d of 200000\n", ok);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 7);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_round_trip();
    test_truncation();
    test_forged_and_limits();
    test_random_garbage(seed);
    check_no_leaks(&base);
    printf("mp: all checks passed\n");
    return 0;
}
