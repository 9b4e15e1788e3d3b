/*
 * fuzz_dgram.c - the datagram opener on arbitrary bytes.
 *
 * The first input byte picks a mode:
 *   0: the rest is a datagram off the wire, opened by a keyed endpoint;
 *   1: the rest is [counter u64][clock skew s8][plaintext]: the plaintext
 *      is sealed under the shared key (so the fuzzer reaches the replay
 *      table and the envelope decoder), then opened twice (the second
 *      open must be refused as a replay);
 *   2: like 0, against an endpoint in null-cipher mode with insecure on.
 * Whatever the input, open either succeeds or fails with a counted
 * reason; it never crashes, leaks or over-reads.
 */
#include "ppdb_wire.h"
#include "unit/test_wire_env.h"

#define T0_MS 1700000000000

struct endpoint {
    struct test_env te;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_dgram d;
};

static void endpoint_init(struct endpoint *e, uint64_t seed, bool null_cipher)
{
    static const uint8_t key[PPDB_CLUSTER_KEY_LEN] = "fuzzing key, fuzzing key, fuzz";
    struct ppdb_dgram_options o;
    struct ppdb_node_id id = {{1, 2, 3}};
    uint32_t key_id;
    test_env_init(&e->te, seed, T0_MS);
    ppdb_keyring_init(&e->kr);
    PPDB_ASSERT(ppdb_keyring_install(&e->kr, key, &key_id) == 0);
    PPDB_ASSERT(ppdb_keyring_use(&e->kr, key_id) == 0);
    e->kr.insecure = null_cipher;
    ppdb_wire_registry_init(&e->reg);
    ppdb_dgram_options_default(&o);
    o.replay_senders = 4;
    o.replay_marks = 8;
    o.null_cipher = null_cipher;
    PPDB_ASSERT(ppdb_dgram_init(&e->d, &e->te.env, &e->kr, &e->reg, &id, &o) == 0);
}

static void endpoint_deinit(struct endpoint *e)
{
    ppdb_dgram_deinit(&e->d);
    ppdb_keyring_deinit(&e->kr);
}

static int open_counted(struct endpoint *e, const uint8_t *p, size_t n)
{
    struct ppdb_dgram_msg m;
    uint64_t before = e->d.stats.opened + ppdb_dgram_stats_rejected(&e->d.stats);
    int rc = ppdb_dgram_open(&e->d, p, n, &m);
    PPDB_ASSERT_CMP(e->d.stats.opened + ppdb_dgram_stats_rejected(&e->d.stats), ==, before + 1);
    if (rc == 0) {
        PPDB_ASSERT(m.env.live && m.env.body && m.env.body->type == MSGPACK_OBJECT_MAP);
        ppdb_dgram_msg_deinit(&m);
    }
    return rc;
}

static void seal_and_open(struct endpoint *tx, struct endpoint *rx, const uint8_t *p, size_t n)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len;
    if (n < 9)
        return;
    tx->d.counter = ppdb_load_u64be(p) % UINT64_MAX;
    tx->te.wall_ms += (int8_t)p[8] * 1000;
    if (ppdb_dgram_seal(&tx->d, p + 9, n - 9, pkt, sizeof(pkt), &len) != 0)
        return;
    int rc = open_counted(rx, pkt, len);
    PPDB_ASSERT(rc != PPDB_EAUTH && rc != PPDB_ENOKEY);
    if (rc == 0)
        PPDB_ASSERT(open_counted(rx, pkt, len) == PPDB_EREPLAY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool started;
    if (!started) {
        PPDB_ASSERT(ppdb_wire_init() == 0);
        started = true;
    }
    if (size < 1)
        return 0;
    struct endpoint tx, rx;
    endpoint_init(&tx, 1, data[0] == 2);
    endpoint_init(&rx, 2, data[0] == 2);
    if (data[0] == 1)
        seal_and_open(&tx, &rx, data + 1, size - 1);
    else
        (void)open_counted(&rx, data + 1, size - 1);
    endpoint_deinit(&tx);
    endpoint_deinit(&rx);
    return 0;
}
