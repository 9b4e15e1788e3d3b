/*
 * test_stream_sim.c - the stream layer on the simulated env: the same code
 * as on libuv, under a virtual clock. Three nodes exchange requests; one
 * node holding requests crashes and the requester's callbacks fail with
 * ECONNRESET; a second run from the same seed gives the same trace hash
 * and the same outcome (ephemeral keys and identities come from the env).
 * The crashed node's env never calls back, so its endpoint, requests held
 * included, is reclaimed with ppdb_stream_ep_drop; every allocation is
 * checked to be released at the end. A kept stream (ppdb_stream_ep_keep)
 * outlives its idle time and is reused without a new handshake.
 */
#include "check.h"
#include "ppdb_sim.h"
#include "ppdb_stream.h"

#define NODES 3
#define PORT  7000

struct snode {
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_stream_ep ep;
    struct ppdb_addr addr;
    bool hold;
    uint32_t held, served;
};

struct outcome {
    uint32_t ok, reset, other;
    uint64_t trace;
    uint64_t handshakes;
};

static void on_msg(void *data, const struct ppdb_stream_peer *peer, const struct ppdb_envelope *m)
{
    struct snode *n = data;
    if (m->hdr.request_id == 0)
        return;
    if (n->hold) {
        n->held++;
        return;
    }
    n->served++;
    CHECK_OK(ppdb_stream_reply(&n->ep, peer->conn_id, m->hdr.request_id, PPDB_MSG_PONG, NULL, 0));
}

static void reply_cb(void *data, int status, const struct ppdb_envelope *reply)
{
    struct outcome *o = data;
    if (status == 0)
        o->ok++;
    else if (status == PPDB_ECONNRESET)
        o->reset++;
    else
        o->other++;
}

/* A node of the world with its endpoint listening on PORT (o: NULL for
 * the defaults). */
static void snode_init(struct ppdb_sim *sim, struct snode *n, const uint8_t key[32],
                       const struct ppdb_stream_options *o)
{
    uint32_t idx, id;
    memset(n, 0, sizeof(*n));
    CHECK_OK(ppdb_sim_add_node(sim, NULL, &n->env, &idx));
    CHECK_OK(ppdb_identity_generate(&n->idn, n->env));
    ppdb_keyring_init(&n->kr);
    CHECK_OK(ppdb_keyring_install(&n->kr, key, &id));
    CHECK_OK(ppdb_keyring_use(&n->kr, id));
    ppdb_wire_registry_init(&n->reg);
    CHECK_OK(ppdb_stream_ep_init(&n->ep, n->env, &n->idn, &n->kr, &n->reg, o, on_msg, NULL, n));
    ppdb_sim_node_addr(sim, idx, PORT, &n->addr);
    CHECK_OK(ppdb_stream_ep_listen(&n->ep, &n->addr, NULL));
}

static struct outcome scenario(uint64_t seed)
{
    struct ppdb_sim_options so;
    struct ppdb_sim *sim;
    static struct snode n[NODES];
    struct outcome out = {0};
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint8_t key[32];
    memset(key, 0x77, sizeof(key));
    ppdb_sim_options_default(&so);
    so.seed = seed;
    CHECK_OK(ppdb_sim_new(&so, &sim));
    for (uint32_t i = 0; i < NODES; i++)
        snode_init(sim, &n[i], key, NULL);
    uint8_t body[] = {0x80}; /* {} */
    for (int k = 0; k < 100; k++)
        for (uint32_t i = 0; i < NODES; i++)
            for (uint32_t j = 0; j < NODES; j++)
                if (i != j)
                    CHECK_OK(ppdb_stream_request(&n[i].ep, &n[j].addr, PPDB_MSG_PING, body, 1, 0,
                                                 reply_cb, &out, NULL));
    CHECK_OK(ppdb_sim_run_for(sim, 2000));
    CHECK_EQ(out.ok, 600);
    /* Node 2 holds what it gets, then crashes with requests outstanding. */
    n[2].hold = true;
    for (int k = 0; k < 20; k++)
        CHECK_OK(ppdb_stream_request(&n[0].ep, &n[2].addr, PPDB_MSG_PING, body, 1, 0, reply_cb,
                                     &out, NULL));
    CHECK_OK(ppdb_sim_run_for(sim, 500));
    CHECK_EQ(n[2].held, 20);
    CHECK_OK(ppdb_sim_node_crash(sim, 2));
    CHECK(!ppdb_stream_ep_idle(&n[2].ep)); /* connections and held requests */
    ppdb_stream_ep_drop(&n[2].ep);
    CHECK_OK(ppdb_sim_run_for(sim, 2000));
    CHECK_EQ(out.reset, 20);
    CHECK_EQ(out.other, 0);
    /* The survivors still talk. */
    CHECK_OK(
        ppdb_stream_request(&n[1].ep, &n[0].addr, PPDB_MSG_PING, body, 1, 0, reply_cb, &out, NULL));
    CHECK_OK(ppdb_sim_run_for(sim, 1000));
    CHECK_EQ(out.ok, 601);
    out.trace = ppdb_sim_trace_hash(sim);
    out.handshakes = n[0].ep.stats.handshakes + n[1].ep.stats.handshakes;
    for (uint32_t i = 0; i < 2; i++) {
        ppdb_stream_ep_close(&n[i].ep);
        CHECK_OK(ppdb_sim_run_for(sim, 100));
        CHECK(ppdb_stream_ep_idle(&n[i].ep));
        ppdb_stream_ep_deinit(&n[i].ep);
    }
    ppdb_sim_free(sim);
    for (uint32_t i = 0; i < NODES; i++) {
        ppdb_keyring_deinit(&n[i].kr);
        ppdb_identity_wipe(&n[i].idn);
    }
    check_no_leaks(&base);
    return out;
}

/* A kept stream stays open while idle (the peer's longer inbound idle
 * holds its end too) and is reused without a handshake; unkept, it closes
 * after idle_ms like any other. */
static void test_keep(uint64_t seed)
{
    struct ppdb_sim_options so;
    struct ppdb_sim *sim;
    static struct snode n[2];
    struct outcome out = {0};
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint8_t key[32], body[] = {0x80};
    memset(key, 0x42, sizeof(key));
    ppdb_sim_options_default(&so);
    so.seed = seed;
    CHECK_OK(ppdb_sim_new(&so, &sim));
    struct ppdb_stream_options o;
    ppdb_stream_options_default(&o);
    o.idle_ms = 1000;
    o.inbound_idle_ms = 20000;
    for (uint32_t i = 0; i < 2; i++)
        snode_init(sim, &n[i], key, &o);
    ppdb_stream_ep_keep(&n[0].ep, &n[1].addr);
    CHECK_OK(
        ppdb_stream_request(&n[0].ep, &n[1].addr, PPDB_MSG_PING, body, 1, 0, reply_cb, &out, NULL));
    CHECK_OK(ppdb_sim_run_for(sim, 10000)); /* ten idle periods */
    CHECK_EQ(out.ok, 1);
    CHECK_EQ(n[0].ep.nconns, 1);
    CHECK_EQ(n[1].ep.nconns, 1);
    CHECK_EQ_U64(n[0].ep.stats.idle_closed + n[1].ep.stats.idle_closed, 0);
    uint64_t hs = n[0].ep.stats.handshakes;
    CHECK_OK(
        ppdb_stream_request(&n[0].ep, &n[1].addr, PPDB_MSG_PING, body, 1, 0, reply_cb, &out, NULL));
    CHECK_OK(ppdb_sim_run_for(sim, 500));
    CHECK_EQ(out.ok, 2);
    CHECK_EQ_U64(n[0].ep.stats.handshakes, hs); /* the same connection */
    /* no longer kept: the initiator closes it after idle_ms */
    ppdb_stream_ep_keep(&n[0].ep, NULL);
    CHECK_OK(ppdb_sim_run_for(sim, 3000));
    CHECK_EQ_U64(n[0].ep.stats.idle_closed, 1);
    CHECK_EQ(n[0].ep.nconns, 0);
    CHECK_EQ(n[1].ep.nconns, 0);
    /* the other way round nothing is kept: node 1's connection closes too */
    CHECK_OK(
        ppdb_stream_request(&n[1].ep, &n[0].addr, PPDB_MSG_PING, body, 1, 0, reply_cb, &out, NULL));
    CHECK_OK(ppdb_sim_run_for(sim, 3000));
    CHECK_EQ(out.ok, 3);
    CHECK_EQ_U64(n[1].ep.stats.idle_closed, 1);
    CHECK_EQ(n[0].ep.nconns + n[1].ep.nconns, 0);
    for (uint32_t i = 0; i < 2; i++) {
        ppdb_stream_ep_close(&n[i].ep);
        CHECK_OK(ppdb_sim_run_for(sim, 100));
        CHECK(ppdb_stream_ep_idle(&n[i].ep));
        ppdb_stream_ep_deinit(&n[i].ep);
        ppdb_keyring_deinit(&n[i].kr);
        ppdb_identity_wipe(&n[i].idn);
    }
    ppdb_sim_free(sim);
    check_no_leaks(&base);
}

int main(int argc, char **argv)
{
    CHECK_OK(ppdb_wire_init());
    uint64_t seed = check_seed(argc, argv, 42);
    struct outcome a = scenario(seed), b = scenario(seed);
    fprintf(stderr, "ok %u reset %u handshakes %llu trace %016llx\n", a.ok, a.reset,
            (unsigned long long)a.handshakes, (unsigned long long)a.trace);
    CHECK_EQ_U64(a.trace, b.trace);
    CHECK_EQ(a.ok, b.ok);
    CHECK_EQ(a.handshakes, b.handshakes);
    test_keep(seed);
    printf("test_stream_sim: ok\n");
    return 0;
}
