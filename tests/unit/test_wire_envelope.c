/*
 * test_wire_envelope.c - the msgpack envelope and the message registry:
 * round trips, forward compatibility (unknown fields ignored) and every
 * rejection (wrong types, missing fields, other versions, unknown types).
 */
#include "check.h"
#include "ppdb_wire.h"

static const struct ppdb_wire_field test_fields[] = {
    {.key = 0, .kind = PPDB_WK_UINT, .required = true},
    {.key = 1, .kind = PPDB_WK_BIN, .required = true, .min_len = 4, .max_len = 8},
    {.key = 2, .kind = PPDB_WK_ARRAY, .required = false, .max_len = 3},
    {.key = 3, .kind = PPDB_WK_BOOL, .required = false},
};
static const struct ppdb_wire_schema test_schema = {0x11, "swim.test", test_fields,
                                                    PPDB_ARRAY_LEN(test_fields)};

static struct ppdb_envelope_hdr make_hdr(uint32_t type, uint64_t reqid)
{
    struct ppdb_envelope_hdr h = {.version = PPDB_WIRE_VERSION, .type = type, .request_id = reqid};
    for (int i = 0; i < PPDB_NODE_ID_LEN; i++)
        h.sender.b[i] = (uint8_t)(i * 7 + 1);
    return h;
}

/* Body {0: u, 1: bin(blen), [extra field 9]}. */
static void write_body(struct ppdb_mpw *w, uint64_t u, size_t blen, bool extra)
{
    static const uint8_t bytes[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    ppdb_mpw_map(w, extra ? 3 : 2);
    ppdb_mpw_uint(w, 0);
    ppdb_mpw_uint(w, u);
    ppdb_mpw_uint(w, 1);
    ppdb_mpw_bin(w, bytes, blen);
    if (extra) {
        ppdb_mpw_uint(w, 9);
        ppdb_mpw_cstr(w, "from a newer version");
    }
}

static int decode(const struct ppdb_wire_registry *r, const struct ppdb_buf *b,
                  struct ppdb_envelope *e)
{
    return ppdb_envelope_decode(r, b->data, b->len, e);
}

static void test_round_trip(const struct ppdb_wire_registry *r)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, &b);
    struct ppdb_envelope_hdr h = make_hdr(0x11, 0xdeadbeefcafeull);
    ppdb_envelope_begin(&w, &h);
    write_body(&w, 77, 5, true);
    CHECK_OK(ppdb_mpw_error(&w));
    struct ppdb_envelope e;
    CHECK_OK(decode(r, &b, &e));
    CHECK_EQ(e.hdr.type, 0x11);
    CHECK_EQ_U64(e.hdr.request_id, 0xdeadbeefcafeull);
    CHECK(ppdb_node_id_equal(&e.hdr.sender, &h.sender));
    CHECK(e.schema == &test_schema);
    uint64_t u;
    CHECK_OK(ppdb_mp_get_u64(e.body, 0, &u));
    CHECK_EQ(u, 77);
    ppdb_envelope_deinit(&e);
    ppdb_envelope_deinit(&e); /* idempotent */

    /* Built-in ping with an empty body through ppdb_envelope_encode. */
    ppdb_buf_reset(&b);
    h = make_hdr(PPDB_MSG_PING, 5);
    CHECK_OK(ppdb_envelope_encode(&b, &h, NULL, 0));
    CHECK_OK(decode(r, &b, &e));
    CHECK_EQ(e.hdr.type, PPDB_MSG_PING);
    CHECK_EQ(e.body->via.map.size, 0);
    ppdb_envelope_deinit(&e);
    ppdb_buf_deinit(&b);
}

/* An envelope with fields chosen by `mode`, to break one thing at a time. */
enum mode {
    M_OK,
    M_NO_TYPE,
    M_SENDER_STR,
    M_SENDER_SHORT,
    M_VERSION2,
    M_NO_BODY,
    M_BODY_ARRAY,
    M_REQID_NEG,
    M_EXTRA_TOP,
    M_NOT_MAP,
    M_COUNT
};

static void write_env(struct ppdb_buf *b, enum mode m, uint32_t type)
{
    struct ppdb_mpw w;
    uint8_t sender[PPDB_NODE_ID_LEN] = {9};
    ppdb_mpw_init(&w, b);
    if (m == M_NOT_MAP) {
        ppdb_mpw_array(&w, 1);
        ppdb_mpw_uint(&w, 1);
        return;
    }
    uint32_t n = 5 - (m == M_NO_TYPE) - (m == M_NO_BODY) + (m == M_EXTRA_TOP);
    ppdb_mpw_map(&w, n);
    if (m == M_EXTRA_TOP) {
        ppdb_mpw_uint(&w, 42);
        ppdb_mpw_array(&w, 0);
    }
    ppdb_mpw_uint(&w, PPDB_ENV_K_VERSION);
    ppdb_mpw_uint(&w, m == M_VERSION2 ? 2 : 1);
    if (m != M_NO_TYPE) {
        ppdb_mpw_uint(&w, PPDB_ENV_K_TYPE);
        ppdb_mpw_uint(&w, type);
    }
    ppdb_mpw_uint(&w, PPDB_ENV_K_SENDER);
    if (m == M_SENDER_STR)
        ppdb_mpw_str(&w, (const char *)sender, sizeof(sender));
    else
        ppdb_mpw_bin(&w, sender, m == M_SENDER_SHORT ? 19 : sizeof(sender));
    ppdb_mpw_uint(&w, PPDB_ENV_K_REQID);
    if (m == M_REQID_NEG)
        ppdb_mpw_int(&w, -1);
    else
        ppdb_mpw_uint(&w, 3);
    if (m != M_NO_BODY) {
        ppdb_mpw_uint(&w, PPDB_ENV_K_BODY);
        if (m == M_BODY_ARRAY)
            ppdb_mpw_array(&w, 0);
        else
            write_body(&w, 1, 4, false);
    }
    CHECK_OK(ppdb_mpw_error(&w));
}

static void test_rejections(const struct ppdb_wire_registry *r)
{
    static const int expect[M_COUNT] = {
        [M_OK] = 0,
        [M_NO_TYPE] = PPDB_EPROTO,
        [M_SENDER_STR] = PPDB_ETYPE,
        [M_SENDER_SHORT] = PPDB_ERANGE,
        [M_VERSION2] = PPDB_EVERSION,
        [M_NO_BODY] = PPDB_EPROTO,
        [M_BODY_ARRAY] = PPDB_ETYPE,
        [M_REQID_NEG] = PPDB_ERANGE,
        [M_EXTRA_TOP] = 0,
        [M_NOT_MAP] = PPDB_ETYPE,
    };
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    for (int m = 0; m < M_COUNT; m++) {
        struct ppdb_envelope e;
        ppdb_buf_reset(&b);
        write_env(&b, (enum mode)m, 0x11);
        int rc = decode(r, &b, &e);
        if (rc != expect[m])
            CHECK_FAIL_("mode %d: got %d (%s), expected %d", m, rc, ppdb_errname(rc), expect[m]);
        if (rc == 0)
            ppdb_envelope_deinit(&e);
    }
    /* Unknown type: reported as such, header available. */
    struct ppdb_envelope e;
    ppdb_buf_reset(&b);
    write_env(&b, M_OK, 0x12);
    CHECK_ERR(decode(r, &b, &e), PPDB_ENOTSUP);
    CHECK_EQ(e.hdr.type, 0x12);
    CHECK_EQ(e.hdr.request_id, 3);
    CHECK(!e.live);
    ppdb_buf_reset(&b);
    write_env(&b, M_OK, 1000);
    CHECK_ERR(decode(r, &b, &e), PPDB_ENOTSUP);
    /* Every truncation of a valid envelope is an error, never a crash. */
    ppdb_buf_reset(&b);
    write_env(&b, M_OK, 0x11);
    for (size_t n = 0; n < b.len; n++)
        CHECK(ppdb_envelope_decode(r, b.data, n, &e) != 0);
    ppdb_buf_deinit(&b);
}

static void test_body_schema(const struct ppdb_wire_registry *r)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    struct ppdb_envelope_hdr h = make_hdr(0x11, 1);
    struct ppdb_envelope e;
    size_t lens[] = {3, 4, 8, 9};
    int want[] = {PPDB_ERANGE, 0, 0, PPDB_ERANGE};
    for (size_t i = 0; i < PPDB_ARRAY_LEN(lens); i++) {
        struct ppdb_mpw w;
        ppdb_buf_reset(&b);
        ppdb_mpw_init(&w, &b);
        ppdb_envelope_begin(&w, &h);
        write_body(&w, 1, lens[i], false);
        int rc = decode(r, &b, &e);
        CHECK_EQ(rc, want[i]);
        if (rc == 0)
            ppdb_envelope_deinit(&e);
    }
    /* Optional field of the wrong type; missing required field. */
    struct ppdb_mpw w;
    ppdb_buf_reset(&b);
    ppdb_mpw_init(&w, &b);
    ppdb_envelope_begin(&w, &h);
    ppdb_mpw_map(&w, 3);
    ppdb_mpw_uint(&w, 0);
    ppdb_mpw_uint(&w, 1);
    ppdb_mpw_uint(&w, 1);
    ppdb_mpw_bin(&w, "abcd", 4);
    ppdb_mpw_uint(&w, 3);
    ppdb_mpw_uint(&w, 1);
    CHECK_ERR(decode(r, &b, &e), PPDB_ETYPE);
    ppdb_buf_reset(&b);
    ppdb_mpw_init(&w, &b);
    ppdb_envelope_begin(&w, &h);
    ppdb_mpw_map(&w, 1);
    ppdb_mpw_uint(&w, 0);
    ppdb_mpw_uint(&w, 1);
    CHECK_ERR(decode(r, &b, &e), PPDB_EPROTO);
    ppdb_buf_deinit(&b);
}

static void test_registry(void)
{
    struct ppdb_wire_registry r;
    ppdb_wire_registry_init(&r);
    CHECK(ppdb_wire_registry_find(&r, PPDB_MSG_ERROR) != NULL);
    CHECK(ppdb_wire_registry_find(&r, 0x11) == NULL);
    CHECK(ppdb_wire_registry_find(&r, 100000) == NULL);
    CHECK_OK(ppdb_wire_registry_add(&r, &test_schema));
    CHECK_ERR(ppdb_wire_registry_add(&r, &test_schema), PPDB_EEXIST);
    struct ppdb_wire_schema bad = {0xA0, "reserved.x", NULL, 0};
    CHECK_ERR(ppdb_wire_registry_add(&r, &bad), PPDB_ERANGE);
    bad.type = 0;
    CHECK_ERR(ppdb_wire_registry_add(&r, &bad), PPDB_ERANGE);
    CHECK_EQ(ppdb_wire_module_of(0x0F), PPDB_WMOD_MESSAGING);
    CHECK_EQ(ppdb_wire_module_of(0x10), PPDB_WMOD_SWIM);
    CHECK_EQ(ppdb_wire_module_of(0x2F), PPDB_WMOD_SWIM);
    CHECK_EQ(ppdb_wire_module_of(0x30), PPDB_WMOD_DHT);
    CHECK_EQ(ppdb_wire_module_of(0x50), PPDB_WMOD_RING);
    CHECK_EQ(ppdb_wire_module_of(0x9F), PPDB_WMOD_ADMIN);
    CHECK_EQ(ppdb_wire_module_of(0xA0), PPDB_WMOD_RESERVED);
    CHECK_STREQ(ppdb_wire_module_name(PPDB_WMOD_DHT), "dht");
}

int main(int argc, char **argv)
{
    (void)check_seed(argc, argv, 1);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    struct ppdb_wire_registry r;
    ppdb_wire_registry_init(&r);
    CHECK_OK(ppdb_wire_registry_add(&r, &test_schema));
    test_registry();
    test_round_trip(&r);
    test_rejections(&r);
    test_body_schema(&r);
    check_no_leaks(&base);
    printf("test_wire_envelope: ok\n");
    return 0;
}
