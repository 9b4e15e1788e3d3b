/*
 * test_wire_dgram.c - sealed datagrams: every rejection case is refused
 * AND counted under its reason, and good traffic keeps passing after each
 * one. Randomized parts (which byte to flip, payload sizes) take the seed.
 */
#include "check.h"
#include "ppdb_wire.h"
#include "test_wire_env.h"

#define T0_MS 1700000000000

struct node {
    struct test_env te;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_dgram d;
    struct ppdb_node_id id;
};

static struct ppdb_rng rng;
static uint8_t cluster_key[PPDB_CLUSTER_KEY_LEN];

static void node_init(struct node *n, uint64_t seed, const uint8_t *key,
                      const struct ppdb_dgram_options *o)
{
    test_env_init(&n->te, seed, T0_MS);
    ppdb_keyring_init(&n->kr);
    if (key) {
        uint32_t id;
        CHECK_OK(ppdb_keyring_install(&n->kr, key, &id));
        CHECK_OK(ppdb_keyring_use(&n->kr, id));
    }
    ppdb_wire_registry_init(&n->reg);
    ppdb_rng_bytes(&n->te.rng, n->id.b, sizeof(n->id.b));
    CHECK_OK(ppdb_dgram_init(&n->d, &n->te.env, &n->kr, &n->reg, &n->id, o));
}

static void node_deinit(struct node *n)
{
    ppdb_dgram_deinit(&n->d);
    ppdb_keyring_deinit(&n->kr);
}

/* A ping from `from` with a payload of `size` bytes. */
static size_t make_ping(struct node *from, uint64_t reqid, size_t size, uint8_t *out)
{
    uint8_t body[PPDB_DGRAM_MAX];
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, &b);
    ppdb_mpw_map(&w, 1);
    ppdb_mpw_uint(&w, 0);
    ppdb_rng_bytes(&rng, body, size);
    ppdb_mpw_bin(&w, body, size);
    CHECK_OK(ppdb_mpw_error(&w));
    size_t len = 0;
    CHECK_OK(ppdb_dgram_seal_msg(&from->d, PPDB_MSG_PING, reqid, b.data, b.len, out, &len));
    ppdb_buf_deinit(&b);
    return len;
}

/* Good traffic still passes: a fresh datagram is accepted and decoded. */
static void expect_good(struct node *from, struct node *to)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    uint64_t reqid = ppdb_rng_next(&rng);
    size_t len = make_ping(from, reqid, 16, pkt);
    struct ppdb_dgram_msg m;
    uint64_t before = to->d.stats.opened;
    CHECK_OK(ppdb_dgram_open(&to->d, pkt, len, &m));
    CHECK_EQ(m.env.hdr.type, PPDB_MSG_PING);
    CHECK_EQ_U64(m.env.hdr.request_id, reqid);
    CHECK(ppdb_node_id_equal(&m.env.hdr.sender, &from->id));
    ppdb_dgram_msg_deinit(&m);
    CHECK_EQ(to->d.stats.opened, before + 1);
}

/* pkt is refused with `err`, the counter at `counter` grows by one, and
 * the total of rejections grows by exactly one. */
static void expect_reject(struct node *to, const uint8_t *pkt, size_t len, int err,
                          const uint64_t *counter)
{
    struct ppdb_dgram_msg m;
    uint64_t before = *counter, total = ppdb_dgram_stats_rejected(&to->d.stats);
    uint64_t opened = to->d.stats.opened;
    CHECK_ERR(ppdb_dgram_open(&to->d, pkt, len, &m), err);
    CHECK_EQ(*counter, before + 1);
    CHECK_EQ(ppdb_dgram_stats_rejected(&to->d.stats), total + 1);
    CHECK_EQ(to->d.stats.opened, opened);
}

static void test_round_trip_sizes(struct node *a, struct node *b)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    for (size_t size = 0; size < 1400; size += 1 + ppdb_rng_below(&rng, 97)) {
        size_t len;
        uint8_t body[PPDB_DGRAM_MAX];
        struct ppdb_buf buf;
        ppdb_buf_init(&buf);
        struct ppdb_mpw w;
        ppdb_mpw_init(&w, &buf);
        ppdb_mpw_map(&w, 1);
        ppdb_mpw_uint(&w, 0);
        ppdb_mpw_bin(&w, body, PPDB_MIN(size, 1280));
        int rc = ppdb_dgram_seal_msg(&a->d, PPDB_MSG_PONG, 1, buf.data, buf.len, pkt, &len);
        ppdb_buf_deinit(&buf);
        if (rc == PPDB_ELIMIT)
            continue; /* payload too large for one datagram: refused at the sender */
        CHECK_OK(rc);
        CHECK_LE(len, PPDB_DGRAM_MAX);
        struct ppdb_dgram_msg m;
        CHECK_OK(ppdb_dgram_open(&b->d, pkt, len, &m));
        const uint8_t *p;
        size_t n;
        CHECK_OK(ppdb_mp_get_bin(m.env.body, 0, &p, &n));
        CHECK_EQ(n, PPDB_MIN(size, 1280));
        ppdb_dgram_msg_deinit(&m);
    }
}

static void test_truncation_and_flips(struct node *a, struct node *b)
{
    uint8_t pkt[PPDB_DGRAM_MAX], bad[PPDB_DGRAM_MAX];
    size_t len = make_ping(a, 7, 200, pkt);
    struct ppdb_dgram_stats *st = &b->d.stats;
    for (size_t n = 0; n < len; n++) {
        const uint64_t *c = n < PPDB_DGRAM_OVERHEAD ? &st->truncated : &st->auth_failed;
        expect_reject(b, pkt, n, n < PPDB_DGRAM_OVERHEAD ? PPDB_ETRUNC : PPDB_EAUTH, c);
    }
    expect_good(a, b);
    /* One flipped bit at every byte position: refused (the reason depends
     * on the field hit), never accepted. */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, pkt, len);
        bad[i] ^= (uint8_t)(1u << ppdb_rng_below(&rng, 8));
        struct ppdb_dgram_msg m;
        uint64_t total = ppdb_dgram_stats_rejected(st);
        int rc = ppdb_dgram_open(&b->d, bad, len, &m);
        if (rc == 0)
            CHECK_FAIL_("flipped byte %zu accepted", i);
        CHECK_EQ(ppdb_dgram_stats_rejected(st), total + 1);
    }
    /* The untouched original still opens once (its counter was never
     * consumed by the forgeries), then is a replay. */
    struct ppdb_dgram_msg m;
    CHECK_OK(ppdb_dgram_open(&b->d, pkt, len, &m));
    ppdb_dgram_msg_deinit(&m);
    expect_reject(b, pkt, len, PPDB_EREPLAY, &st->replayed);
    expect_good(a, b);
}

static void test_keys(struct node *a, struct node *b, uint64_t seed)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    uint8_t other_key[PPDB_CLUSTER_KEY_LEN];
    struct test_env te;
    test_env_init(&te, seed ^ 0x5555, T0_MS);
    ppdb_cluster_key_generate(&te.env, other_key);

    /* Another mesh's key: its id is unknown here. */
    struct node c;
    node_init(&c, seed + 3, other_key, NULL);
    size_t len = make_ping(&c, 1, 10, pkt);
    expect_reject(b, pkt, len, PPDB_ENOKEY, &b->d.stats.unknown_key);
    /* Right id, wrong key (a forger who copied the id): tag mismatch. */
    ppdb_store_u32be(pkt + 2, ppdb_cluster_key_id(cluster_key));
    expect_reject(b, pkt, len, PPDB_EAUTH, &b->d.stats.auth_failed);
    node_deinit(&c);

    /* Insecure datagrams are refused unless insecure mode is on. */
    node_init(&c, seed + 4, NULL, NULL);
    CHECK_ERR(ppdb_dgram_seal_msg(&c.d, PPDB_MSG_PING, 1, NULL, 0, pkt, &len), PPDB_ENOKEY);
    CHECK_EQ(c.d.stats.seal_errors, 1);
    ppdb_keyring_set_insecure(&c.kr, true, NULL);
    CHECK_OK(ppdb_dgram_seal_msg(&c.d, PPDB_MSG_PING, 1, NULL, 0, pkt, &len));
    CHECK_EQ(pkt[1], PPDB_DGRAM_F_INSECURE);
    expect_reject(b, pkt, len, PPDB_EAUTH, &b->d.stats.mode_refused);
    ppdb_keyring_set_insecure(&b->kr, true, NULL);
    struct ppdb_dgram_msg m;
    CHECK_OK(ppdb_dgram_open(&b->d, pkt, len, &m));
    CHECK(m.insecure);
    ppdb_dgram_msg_deinit(&m);
    CHECK_EQ(b->d.stats.insecure_in, 1);
    ppdb_keyring_set_insecure(&b->kr, false, NULL);
    node_deinit(&c);
    expect_good(a, b);
}

static void test_clock_and_replay(struct node *a, struct node *b)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    struct ppdb_dgram_stats *st = &b->d.stats;
    size_t len = make_ping(a, 1, 10, pkt);
    struct ppdb_dgram_msg m;
    CHECK_OK(ppdb_dgram_open(&b->d, pkt, len, &m));
    ppdb_dgram_msg_deinit(&m);
    expect_reject(b, pkt, len, PPDB_EREPLAY, &st->replayed);
    expect_reject(b, pkt, len, PPDB_EREPLAY, &st->replayed);

    /* Old timestamp: a datagram held back 31 s is stale. */
    len = make_ping(a, 2, 10, pkt);
    test_env_advance(&b->te, 31000);
    expect_reject(b, pkt, len, PPDB_EREPLAY, &st->stale);
    test_env_advance(&a->te, 31000);
    expect_good(a, b);
    /* Sender clock 11 s ahead: refused as a clock error; 9 s is tolerated. */
    test_env_advance(&a->te, 11000);
    len = make_ping(a, 3, 10, pkt);
    expect_reject(b, pkt, len, PPDB_ECLOCK, &st->future);
    test_env_advance(&a->te, -2000);
    expect_good(a, b);
    test_env_advance(&a->te, -9000);
    expect_good(a, b);

    /* Reordering inside the window is fine; each packet once. */
    uint8_t held[8][PPDB_DGRAM_MAX];
    size_t held_len[8];
    for (int i = 0; i < 8; i++)
        held_len[i] = make_ping(a, 10 + (uint64_t)i, 10, held[i]);
    for (int i = 7; i >= 0; i--) {
        CHECK_OK(ppdb_dgram_open(&b->d, held[i], held_len[i], &m));
        ppdb_dgram_msg_deinit(&m);
    }
    for (int i = 0; i < 8; i++)
        expect_reject(b, held[i], held_len[i], PPDB_EREPLAY, &st->replayed);
    /* Older than the window: refused even though never seen. */
    len = make_ping(a, 99, 10, pkt);
    for (int i = 0; i < PPDB_REPLAY_WINDOW; i++)
        expect_good(a, b);
    expect_reject(b, pkt, len, PPDB_EREPLAY, &st->replayed);
}

static void test_garbage_and_size(struct node *a, struct node *b)
{
    uint8_t pkt[PPDB_DGRAM_MAX + 64], junk[300];
    struct ppdb_dgram_stats *st = &b->d.stats;
    size_t len;
    /* Validly sealed, but not msgpack / not an envelope. */
    ppdb_rng_bytes(&rng, junk, sizeof(junk));
    junk[0] = 0xc1; /* never valid msgpack */
    CHECK_OK(ppdb_dgram_seal(&a->d, junk, sizeof(junk), pkt, sizeof(pkt), &len));
    expect_reject(b, pkt, len, PPDB_EPROTO, &st->bad_envelope);
    const uint8_t not_envelope[] = {0x92, 0x01, 0x02}; /* [1, 2] */
    CHECK_OK(ppdb_dgram_seal(&a->d, not_envelope, sizeof(not_envelope), pkt, sizeof(pkt), &len));
    expect_reject(b, pkt, len, PPDB_ETYPE, &st->bad_envelope);
    /* Unknown type (a SWIM type this node does not speak). */
    CHECK_OK(ppdb_dgram_seal_msg(&a->d, 0x20, 5, NULL, 0, pkt, &len));
    struct ppdb_dgram_msg m;
    CHECK_ERR(ppdb_dgram_open(&b->d, pkt, len, &m), PPDB_ENOTSUP);
    CHECK_EQ(m.env.hdr.type, 0x20);
    CHECK_EQ(st->unknown_type, 1);
    expect_good(a, b);

    /* Oversized on the wire, and refused at the sender. */
    len = make_ping(a, 1, 100, pkt);
    expect_reject(b, pkt, PPDB_DGRAM_MAX + 1, PPDB_ELIMIT, &st->oversized);
    uint8_t big[PPDB_DGRAM_MAX];
    memset(big, 0, sizeof(big));
    CHECK_ERR(ppdb_dgram_seal(&a->d, big, PPDB_DGRAM_MAX_PLAIN + 1, pkt, sizeof(pkt), &len),
              PPDB_ELIMIT);
    CHECK_OK(ppdb_dgram_seal(&a->d, big, PPDB_DGRAM_MAX_PLAIN, pkt, sizeof(pkt), &len));
    CHECK_EQ(len, PPDB_DGRAM_MAX);
    /* Wrong magic / unknown flag bits. */
    len = make_ping(a, 1, 10, pkt);
    pkt[0] = 0xD2;
    expect_reject(b, pkt, len, PPDB_EVERSION, &st->bad_version);
    pkt[0] = PPDB_DGRAM_MAGIC;
    pkt[1] = 0x80;
    expect_reject(b, pkt, len, PPDB_EPROTO, &st->bad_flags);
    pkt[1] = PPDB_DGRAM_F_NULL; /* null cipher is refused unless configured */
    expect_reject(b, pkt, len, PPDB_EAUTH, &st->mode_refused);
    expect_good(a, b);
}

static void test_null_cipher(uint64_t seed)
{
    struct ppdb_dgram_options o;
    ppdb_dgram_options_default(&o);
    o.null_cipher = true;
    struct node a, b;
    node_init(&a, seed + 10, cluster_key, &o);
    node_init(&b, seed + 11, cluster_key, &o);
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len = make_ping(&a, 1, 50, pkt);
    CHECK_EQ(pkt[1], PPDB_DGRAM_F_NULL);
    struct ppdb_dgram_msg m;
    CHECK_OK(ppdb_dgram_open(&b.d, pkt, len, &m));
    ppdb_dgram_msg_deinit(&m);
    expect_reject(&b, pkt, len, PPDB_EREPLAY, &b.d.stats.replayed); /* still replay-checked */
    len = make_ping(&a, 2, 50, pkt);
    pkt[len / 2] ^= 4;
    expect_reject(&b, pkt, len, PPDB_EAUTH, &b.d.stats.auth_failed); /* still framed */
    expect_good(&a, &b);
    node_deinit(&a);
    node_deinit(&b);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 7);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_wire_init());
    ppdb_rng_seed(&rng, seed);
    struct test_env te;
    test_env_init(&te, seed, 0);
    ppdb_cluster_key_generate(&te.env, cluster_key);

    struct node a, b;
    node_init(&a, seed + 1, cluster_key, NULL);
    node_init(&b, seed + 2, cluster_key, NULL);
    expect_good(&a, &b);
    expect_good(&b, &a);
    test_round_trip_sizes(&a, &b);
    test_truncation_and_flips(&a, &b);
    test_keys(&a, &b, seed);
    test_clock_and_replay(&a, &b);
    test_garbage_and_size(&a, &b);
    printf("b: opened=%llu rejected=%llu\n", (unsigned long long)b.d.stats.opened,
           (unsigned long long)ppdb_dgram_stats_rejected(&b.d.stats));
    node_deinit(&a);
    node_deinit(&b);
    test_null_cipher(seed);
    check_no_leaks(&base);
    printf("test_wire_dgram: ok\n");
    return 0;
}
