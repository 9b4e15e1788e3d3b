/*
 * test_dgram_mesh.c - two and then three nodes exchange sealed datagrams
 * over real UDP sockets on 127.0.0.1 through the libuv env.
 *
 * Each node has its own identity, env and socket; all share one cluster
 * key and one uv loop. Every node pings every other node PINGS times
 * (paced by an env timer) and answers each ping with a pong echoing its
 * request id. Meanwhile an intruder with another cluster key sends pings
 * and garbage to every node, and each node replays one datagram it
 * received to itself. The run passes when every pong arrived, every
 * intruder packet and replay was refused and counted, and no node
 * answered the intruder. Bounded: a deadline timer fails the run.
 */
#include <uv.h>

#include "check.h"
#include "ppdb_wire.h"

#define PINGS       100
#define BATCH       5
#define INTRUDER_N  20
#define DEADLINE_MS 10000
#define MAX_NODES   3

struct node {
    struct ppdb_env_uv *uv;
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_dgram d;
    struct ppdb_udp *udp;
    struct ppdb_addr addr;
    struct ppdb_timer tick;
    uint64_t pings_sent, pongs_got, pings_got, send_errors;
    bool replay_sent;
    struct mesh *mesh;
};

struct mesh {
    uv_loop_t loop;
    struct node nodes[MAX_NODES + 1]; /* the last one is the intruder */
    int n;
    struct ppdb_timer deadline;
    bool timed_out;
};

static void send_msg(struct node *nd, const struct ppdb_addr *to, uint32_t type, uint64_t reqid)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len;
    CHECK_OK(ppdb_dgram_seal_msg(&nd->d, type, reqid, NULL, 0, pkt, &len));
    if (ppdb_env_udp_send(nd->env, nd->udp, to, pkt, len) != 0)
        nd->send_errors++;
}

static void recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                    const uint8_t *buf, size_t len)
{
    struct node *nd = data;
    struct ppdb_dgram_msg m;
    if (ppdb_dgram_open(&nd->d, buf, len, &m) != 0)
        return; /* counted in nd->d.stats */
    if (m.env.hdr.type == PPDB_MSG_PING) {
        nd->pings_got++;
        send_msg(nd, from, PPDB_MSG_PONG, m.env.hdr.request_id);
        if (!nd->replay_sent) { /* an attacker on the path replays it */
            nd->replay_sent = true;
            CHECK_OK(ppdb_env_udp_send(nd->env, u, &nd->addr, buf, len));
        }
    } else if (m.env.hdr.type == PPDB_MSG_PONG) {
        nd->pongs_got++;
    }
    ppdb_dgram_msg_deinit(&m);
}

static bool mesh_done(struct mesh *ms)
{
    for (int i = 0; i < ms->n; i++) {
        struct node *nd = &ms->nodes[i];
        if (nd->pongs_got < (uint64_t)PINGS * (uint64_t)(ms->n - 1) || nd->d.stats.replayed < 1 ||
            nd->d.stats.unknown_key < INTRUDER_N || nd->d.stats.bad_version < INTRUDER_N)
            return false;
    }
    return true;
}

static void tick_cb(struct ppdb_timer *t)
{
    struct node *nd = t->data;
    struct mesh *ms = nd->mesh;
    bool intruder = nd == &ms->nodes[ms->n];
    for (int i = 0; i < ms->n; i++) {
        struct node *to = &ms->nodes[i];
        if (to == nd)
            continue;
        for (int k = 0; k < BATCH && nd->pings_sent < (uint64_t)PINGS * (uint64_t)(ms->n - 1); k++)
            send_msg(nd, &to->addr, PPDB_MSG_PING, ++nd->pings_sent);
        if (intruder && nd->pings_got < INTRUDER_N * (uint64_t)ms->n) {
            uint8_t junk[64];
            ppdb_env_random(nd->env, junk, sizeof(junk));
            junk[0] = 0x00; /* not the datagram magic */
            CHECK_OK(ppdb_env_udp_send(nd->env, nd->udp, &to->addr, junk, sizeof(junk)));
            send_msg(nd, &to->addr, PPDB_MSG_PING, 1000000 + nd->pings_got);
            nd->pings_got++; /* the intruder counts what it sent here */
        }
    }
    if (mesh_done(ms)) {
        uv_stop(&ms->loop);
        return;
    }
    CHECK_OK(ppdb_env_timer_arm(nd->env, t, 1));
}

static void deadline_cb(struct ppdb_timer *t)
{
    struct mesh *ms = t->data;
    ms->timed_out = true;
    uv_stop(&ms->loop);
}

static void node_open(struct mesh *ms, struct node *nd, const uint8_t *key)
{
    uint32_t key_id;
    nd->mesh = ms;
    CHECK_OK(ppdb_env_uv_new(&ms->loop, NULL, NULL, &nd->uv));
    nd->env = ppdb_env_uv_env(nd->uv);
    CHECK_OK(ppdb_identity_generate(&nd->idn, nd->env));
    ppdb_keyring_init(&nd->kr);
    CHECK_OK(ppdb_keyring_install(&nd->kr, key, &key_id));
    CHECK_OK(ppdb_keyring_use(&nd->kr, key_id));
    ppdb_wire_registry_init(&nd->reg);
    CHECK_OK(ppdb_dgram_init(&nd->d, nd->env, &nd->kr, &nd->reg, &nd->idn.id, NULL));
    struct ppdb_addr bind;
    ppdb_addr_ipv4(&bind, 127, 0, 0, 1, 0);
    CHECK_OK(ppdb_env_udp_open(nd->env, &bind, recv_cb, nd, &nd->udp));
    CHECK_OK(ppdb_env_udp_local_addr(nd->env, nd->udp, &nd->addr));
    CHECK(ppdb_addr_is_loopback(&nd->addr));
    ppdb_timer_init(&nd->tick, tick_cb, nd);
}

static void node_close(struct node *nd)
{
    ppdb_env_timer_cancel(nd->env, &nd->tick);
    ppdb_env_udp_close(nd->env, nd->udp);
    ppdb_dgram_deinit(&nd->d);
    ppdb_keyring_deinit(&nd->kr);
    ppdb_identity_wipe(&nd->idn);
}

static void run_mesh(int n)
{
    struct mesh *ms = ppdb_calloc(1, sizeof(*ms));
    CHECK(ms != NULL);
    CHECK_EQ(uv_loop_init(&ms->loop), 0);
    ms->n = n;
    uint8_t key[PPDB_CLUSTER_KEY_LEN], other[PPDB_CLUSTER_KEY_LEN];
    for (int i = 0; i <= n; i++) {
        if (i == 0) {
            struct ppdb_env_uv *tmp;
            CHECK_OK(ppdb_env_uv_new(&ms->loop, NULL, NULL, &tmp));
            ppdb_cluster_key_generate(ppdb_env_uv_env(tmp), key);
            ppdb_cluster_key_generate(ppdb_env_uv_env(tmp), other);
            ppdb_env_uv_free(tmp);
        }
        node_open(ms, &ms->nodes[i], i < n ? key : other);
        CHECK_OK(ppdb_env_timer_arm(ms->nodes[i].env, &ms->nodes[i].tick, 1));
    }
    ppdb_timer_init(&ms->deadline, deadline_cb, ms);
    CHECK_OK(ppdb_env_timer_arm(ms->nodes[0].env, &ms->deadline, DEADLINE_MS));
    uv_run(&ms->loop, UV_RUN_DEFAULT);
    ppdb_env_timer_cancel(ms->nodes[0].env, &ms->deadline);
    for (int i = 0; i < n; i++) {
        struct node *nd = &ms->nodes[i];
        char hex[PPDB_NODE_ID_HEXLEN];
        printf("n=%d node %d %s: pings_got=%llu pongs_got=%llu opened=%llu replayed=%llu "
               "unknown_key=%llu bad_version=%llu send_errors=%llu\n",
               n, i, ppdb_node_id_hex(&nd->idn.id, hex), (unsigned long long)nd->pings_got,
               (unsigned long long)nd->pongs_got, (unsigned long long)nd->d.stats.opened,
               (unsigned long long)nd->d.stats.replayed,
               (unsigned long long)nd->d.stats.unknown_key,
               (unsigned long long)nd->d.stats.bad_version, (unsigned long long)nd->send_errors);
    }
    CHECK(!ms->timed_out);
    struct node *intruder = &ms->nodes[n];
    CHECK_EQ(intruder->d.stats.opened, 0); /* nobody answered it */
    for (int i = 0; i < n; i++) {
        CHECK_EQ(ms->nodes[i].pongs_got, (uint64_t)PINGS * (uint64_t)(n - 1));
        CHECK_EQ(ms->nodes[i].d.stats.auth_failed, 0);
    }
    for (int i = 0; i <= n; i++)
        node_close(&ms->nodes[i]);
    for (int i = 0; i <= n; i++)
        ppdb_env_uv_free(ms->nodes[i].uv);
    CHECK_EQ(uv_loop_close(&ms->loop), 0);
    ppdb_free(ms);
}

int main(int argc, char **argv)
{
    (void)check_seed(argc, argv, 1);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_wire_init());
    run_mesh(2);
    run_mesh(3);
    check_no_leaks(&base);
    printf("test_dgram_mesh: ok\n");
    return 0;
}
