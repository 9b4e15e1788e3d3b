/*
 * test_stream_sim.c - the stream layer on the simulated env: the same code
 * as on libuv, under a virtual clock. Three nodes exchange requests; one
 * node holding requests crashes and the requester's callbacks fail with
 * ECONNRESET; a second run from the same seed gives the same trace hash
 * and the same outcome (ephemeral keys and identities come from the env).
 * The crashed node's env never calls back, so its endpoint, requests held
 * included, is reclaimed with ppdb_stream_ep_drop; every allocation is
 * checked to be released at the end.
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
    for (uint32_t i = 0; i < NODES; i++) {
        uint32_t idx, id;
        memset(&n[i], 0, sizeof(n[i]));
        CHECK_OK(ppdb_sim_add_node(sim, NULL, &n[i].env, &idx));
        CHECK_OK(ppdb_identity_generate(&n[i].idn, n[i].env));
        ppdb_keyring_init(&n[i].kr);
        CHECK_OK(ppdb_keyring_install(&n[i].kr, key, &id));
        CHECK_OK(ppdb_keyring_use(&n[i].kr, id));
        ppdb_wire_registry_init(&n[i].reg);
        CHECK_OK(ppdb_stream_ep_init(&n[i].ep, n[i].env, &n[i].idn, &n[i].kr, &n[i].reg, NULL,
                                     on_msg, NULL, &n[i]));
        ppdb_sim_node_addr(sim, idx, PORT, &n[i].addr);
        CHECK_OK(ppdb_stream_ep_listen(&n[i].ep, &n[i].addr, NULL));
    }
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
    printf("test_stream_sim: ok\n");
    return 0;
}
