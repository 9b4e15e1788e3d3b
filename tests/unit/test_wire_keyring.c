/*
 * test_wire_keyring.c - the keyring API and a full key rotation between
 * two endpoints: install everywhere, switch primaries one node at a time
 * (old key still accepted), remove the old key (then refused).
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

static void node_init(struct node *n, uint64_t seed)
{
    test_env_init(&n->te, seed, T0_MS);
    ppdb_keyring_init(&n->kr);
    ppdb_wire_registry_init(&n->reg);
    ppdb_rng_bytes(&n->te.rng, n->id.b, sizeof(n->id.b));
    CHECK_OK(ppdb_dgram_init(&n->d, &n->te.env, &n->kr, &n->reg, &n->id, NULL));
}

static void node_deinit(struct node *n)
{
    ppdb_dgram_deinit(&n->d);
    ppdb_keyring_deinit(&n->kr);
}

/* Sends one ping from -> to; returns what open said. */
static int send_one(struct node *from, struct node *to, uint32_t *key_id_out)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len;
    int rc = ppdb_dgram_seal_msg(&from->d, PPDB_MSG_PING, 1, NULL, 0, pkt, &len);
    if (rc != 0)
        return rc;
    struct ppdb_dgram_msg m;
    rc = ppdb_dgram_open(&to->d, pkt, len, &m);
    if (rc == 0) {
        if (key_id_out)
            *key_id_out = m.key_id;
        ppdb_dgram_msg_deinit(&m);
    }
    return rc;
}

static void test_api(struct ppdb_env *env)
{
    struct ppdb_keyring kr;
    ppdb_keyring_init(&kr);
    CHECK(ppdb_keyring_primary(&kr) == NULL);
    CHECK_EQ(ppdb_keyring_count(&kr), 0);
    CHECK(!ppdb_keyring_insecure(&kr));
    uint8_t keys[PPDB_KEYRING_MAX + 1][PPDB_CLUSTER_KEY_LEN];
    uint32_t ids[PPDB_KEYRING_MAX + 1];
    for (int i = 0; i <= PPDB_KEYRING_MAX; i++)
        ppdb_cluster_key_generate(env, keys[i]);
    for (int i = 0; i < PPDB_KEYRING_MAX; i++)
        CHECK_OK(ppdb_keyring_install(&kr, keys[i], &ids[i]));
    CHECK_EQ(ppdb_keyring_count(&kr), PPDB_KEYRING_MAX);
    CHECK_ERR(ppdb_keyring_install(&kr, keys[PPDB_KEYRING_MAX], NULL), PPDB_ELIMIT);
    CHECK_OK(ppdb_keyring_install(&kr, keys[3], NULL)); /* idempotent */
    CHECK_EQ(ppdb_keyring_count(&kr), PPDB_KEYRING_MAX);
    CHECK_ERR(ppdb_keyring_use(&kr, 0x12345678), PPDB_ENOTFOUND);
    CHECK_OK(ppdb_keyring_use(&kr, ids[2]));
    CHECK_EQ(ppdb_keyring_primary(&kr)->id, ids[2]);
    CHECK_ERR(ppdb_keyring_remove(&kr, ids[2]), PPDB_EBUSY);
    CHECK_OK(ppdb_keyring_remove(&kr, ids[5]));
    CHECK_ERR(ppdb_keyring_remove(&kr, ids[5]), PPDB_ENOTFOUND);
    CHECK(ppdb_keyring_find(&kr, ids[5]) == NULL);
    CHECK(ppdb_keyring_find(&kr, ids[4]) != NULL);
    CHECK_OK(ppdb_keyring_install(&kr, keys[PPDB_KEYRING_MAX], NULL));
    /* A different key that claims an installed id cannot be installed:
     * simulate by corrupting the stored key of a slot. */
    struct ppdb_wire_key *k = &kr.keys[0];
    k->key[0] ^= 1;
    CHECK_ERR(ppdb_keyring_install(&kr, keys[0], NULL), PPDB_EEXIST);
    ppdb_keyring_deinit(&kr);
    CHECK_EQ(kr.keys[0].used, 0);
}

static void test_rotation(uint64_t seed)
{
    struct node a, b;
    node_init(&a, seed + 1);
    node_init(&b, seed + 2);
    uint8_t k1[PPDB_CLUSTER_KEY_LEN], k2[PPDB_CLUSTER_KEY_LEN];
    ppdb_cluster_key_generate(&a.te.env, k1);
    ppdb_cluster_key_generate(&a.te.env, k2);
    uint32_t id1, id2, seen = 0;
    CHECK_ERR(send_one(&a, &b, NULL), PPDB_ENOKEY); /* no key, not insecure */
    CHECK_OK(ppdb_keyring_install(&a.kr, k1, &id1));
    CHECK_OK(ppdb_keyring_install(&b.kr, k1, NULL));
    CHECK_OK(ppdb_keyring_use(&a.kr, id1));
    CHECK_OK(ppdb_keyring_use(&b.kr, id1));
    CHECK_OK(send_one(&a, &b, &seen));
    CHECK_EQ(seen, id1);

    /* Step 1: install k2 everywhere (not primary yet). */
    CHECK_OK(ppdb_keyring_install(&a.kr, k2, &id2));
    CHECK_OK(ppdb_keyring_install(&b.kr, k2, NULL));
    /* Step 2: a switches first; b still seals with k1. Both directions work. */
    CHECK_OK(ppdb_keyring_use(&a.kr, id2));
    CHECK_OK(send_one(&a, &b, &seen));
    CHECK_EQ(seen, id2);
    CHECK_OK(send_one(&b, &a, &seen));
    CHECK_EQ(seen, id1);
    /* Step 3: b switches. */
    CHECK_OK(ppdb_keyring_use(&b.kr, id2));
    CHECK_OK(send_one(&b, &a, &seen));
    CHECK_EQ(seen, id2);
    /* A straggler still on k1 is accepted until k1 is removed ... */
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len;
    CHECK_OK(ppdb_keyring_use(&b.kr, id1));
    CHECK_OK(ppdb_dgram_seal_msg(&b.d, PPDB_MSG_PING, 1, NULL, 0, pkt, &len));
    CHECK_OK(ppdb_keyring_use(&b.kr, id2));
    /* Step 4: remove k1 on a: the k1 datagram is now refused and counted. */
    CHECK_OK(ppdb_keyring_remove(&a.kr, id1));
    struct ppdb_dgram_msg m;
    CHECK_ERR(ppdb_dgram_open(&a.d, pkt, len, &m), PPDB_ENOKEY);
    CHECK_EQ(a.d.stats.unknown_key, 1);
    CHECK_OK(send_one(&b, &a, &seen));
    CHECK_EQ(seen, id2);
    CHECK_OK(send_one(&a, &b, &seen));

    /* Insecure mode as a migration path: an open node and a keyed node
     * that also accepts unkeyed datagrams. */
    struct node c;
    node_init(&c, seed + 3);
    ppdb_keyring_set_insecure(&c.kr, true, NULL);
    CHECK_ERR(send_one(&c, &a, NULL), PPDB_EAUTH);
    ppdb_keyring_set_insecure(&a.kr, true, NULL);
    CHECK_OK(send_one(&c, &a, &seen));
    CHECK_EQ(seen, PPDB_KEY_ID_NONE);
    CHECK_OK(send_one(&a, &b, &seen)); /* a still seals with its primary */
    CHECK_EQ(seen, id2);
    CHECK_ERR(send_one(&a, &c, NULL), PPDB_ENOKEY); /* c has no key for it */
    node_deinit(&a);
    node_deinit(&b);
    node_deinit(&c);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 3);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_wire_init());
    struct test_env te;
    test_env_init(&te, seed, 1);
    test_api(&te.env);
    test_rotation(seed);
    check_no_leaks(&base);
    printf("test_wire_keyring: ok\n");
    return 0;
}
