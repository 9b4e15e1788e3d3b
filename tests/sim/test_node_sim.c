/*
 * test_node_sim.c - the node object in the simulator (encryption on):
 *
 *   1. stream dispatch by type range: a module registered with
 *      ppdb_node_serve receives its types and its reply comes back; a type
 *      the node knows but no module serves is answered with msg.error and
 *      counted unrouted; a CLIENT-role peer may not push membership state
 *      (swim.sync refused, counted client_refused);
 *   2. per-member RTT: after convergence members carry a direct probe
 *      round trip within the link model's bounds;
 *   3. graceful leave: every other node sees `left` within 3 s;
 *   4. address change: a member restarted with the same identity on a new
 *      address is updated everywhere, not duplicated;
 *   5. split meshes: two meshes of 50 formed apart merge into one of 100
 *      once one node of the first learns of a node of the second
 *      (ppdb_node_add_seed), within 30 s.
 *
 * Usage: test_node_sim [seed].
 */
#include "ppdb_stream.h"
#include "test_membership_world.h"

#define T_TYPE_REQ   0x50 /* a test module in the ring range */
#define T_TYPE_REPLY 0x51
#define T_TYPE_FREE  0x58 /* a datagram type: known to the node, served by no stream module */

static const struct ppdb_wire_field t_fields[] = {
    {.key = 0, .kind = PPDB_WK_UINT, .required = false},
};
static const struct ppdb_wire_schema t_schemas[] = {
    {T_TYPE_REQ, "test.req", t_fields, 1},
    {T_TYPE_REPLY, "test.reply", t_fields, 1},
    {T_TYPE_FREE, "test.free", t_fields, 1},
};

struct served {
    struct ppdb_node *node;
    uint32_t count;
};

static void serve_cb(void *data, const struct ppdb_node_req *req, const struct ppdb_envelope *msg)
{
    struct served *sv = data;
    CHECK_EQ(msg->hdr.type, T_TYPE_REQ);
    sv->count++;
    CHECK_OK(ppdb_node_reply(sv->node, req, T_TYPE_REPLY, NULL, 0));
}

struct result {
    bool done;
    int status;
    uint32_t type;
};

static void reply_cb(void *data, int status, const struct ppdb_envelope *reply)
{
    struct result *r = data;
    r->done = true;
    r->status = status;
    r->type = status == 0 ? reply->hdr.type : 0;
}

static void msg_cb(void *data, const struct ppdb_stream_peer *peer, const struct ppdb_envelope *m)
{
    (void)data, (void)peer, (void)m;
}

/* One request from a throwaway endpoint on sim node `at` to node 0. */
static struct result ask(struct mw *w, uint32_t at, uint8_t role, uint32_t type)
{
    struct ppdb_wire_registry reg;
    ppdb_wire_registry_init(&reg);
    for (uint32_t i = 0; i < PPDB_ARRAY_LEN(t_schemas); i++)
        CHECK_OK(ppdb_wire_registry_add(&reg, &t_schemas[i]));
    for (uint32_t i = 0; i < ppdb_swim_stream_nschemas; i++)
        CHECK_OK(ppdb_wire_registry_add(&reg, &ppdb_swim_stream_schemas[i]));
    struct ppdb_stream_options o;
    ppdb_stream_options_default(&o);
    o.role = role;
    struct ppdb_stream_ep ep;
    struct mw_node *mn = &w->nodes[at];
    CHECK_OK(ppdb_stream_ep_init(&ep, mn->env, &mn->idn, &w->kr, &reg, &o, msg_cb, NULL, NULL));
    struct ppdb_addr to;
    ppdb_sim_node_addr(w->sim, 0, MW_PORT, &to);
    struct result r = {0};
    /* {} or, for swim.sync, a valid empty state {0: false, 1: 0, 2: ""} */
    static const uint8_t empty[] = {0x80};
    static const uint8_t sync[] = {0x83, 0x00, 0xc2, 0x01, 0x00, 0x02, 0xc4, 0x00};
    const uint8_t *body = type == PPDB_MSG_SWIM_SYNC ? sync : empty;
    size_t len = type == PPDB_MSG_SWIM_SYNC ? sizeof(sync) : sizeof(empty);
    CHECK_OK(ppdb_stream_request(&ep, &to, type, body, len, 3000, reply_cb, &r, NULL));
    for (int k = 0; k < 50 && !r.done; k++)
        CHECK_OK(ppdb_sim_run_for(w->sim, 100));
    CHECK(r.done);
    ppdb_stream_ep_close(&ep);
    CHECK_OK(ppdb_sim_run_for(w->sim, 100));
    CHECK(ppdb_stream_ep_idle(&ep));
    ppdb_stream_ep_deinit(&ep);
    return r;
}

static void dgram_cb(void *data, const struct ppdb_addr *from, const struct ppdb_envelope *msg)
{
    (void)data, (void)from, (void)msg;
}

static void test_dispatch(struct mw *w, uint32_t spare)
{
    struct ppdb_node *n0 = w->nodes[0].node;
    struct served sv = {.node = n0};
    CHECK_ERR(ppdb_node_serve(n0, PPDB_MSG_SWIM_SYNC, PPDB_MSG_SWIM_SYNC, NULL, 0, serve_cb, &sv),
              PPDB_EEXIST);
    CHECK_OK(ppdb_node_serve(n0, T_TYPE_REQ, T_TYPE_REPLY, t_schemas, 2, serve_cb, &sv));
    CHECK_OK(
        ppdb_node_register_dgram(n0, T_TYPE_FREE, T_TYPE_FREE, &t_schemas[2], 1, dgram_cb, NULL));
    struct ppdb_node_stats before, after;
    ppdb_node_stats(n0, &before);

    struct result r = ask(w, spare + 0, PPDB_ROLE_NODE, T_TYPE_FREE); /* no stream module */
    CHECK_OK(r.status);
    CHECK_EQ(r.type, PPDB_MSG_ERROR);
    ppdb_node_stats(n0, &after);
    CHECK_EQ(after.unrouted, before.unrouted + 1);

    r = ask(w, spare + 1, PPDB_ROLE_CLIENT, PPDB_MSG_SWIM_SYNC);
    CHECK_OK(r.status);
    CHECK_EQ(r.type, PPDB_MSG_ERROR);
    ppdb_node_stats(n0, &after);
    CHECK_EQ(after.client_refused, before.client_refused + 1);
    CHECK_EQ(after.swim.syncs_served, before.swim.syncs_served);

    r = ask(w, spare + 2, PPDB_ROLE_CLIENT, T_TYPE_REQ); /* not admin: refused too */
    CHECK_EQ(r.type, PPDB_MSG_ERROR);
    CHECK_EQ(sv.count, 0);
    ppdb_node_stats(n0, &after);
    CHECK_EQ(after.client_refused, before.client_refused + 2);

    r = ask(w, spare + 3, PPDB_ROLE_NODE, T_TYPE_REQ);
    CHECK_OK(r.status);
    CHECK_EQ(r.type, T_TYPE_REPLY);
    CHECK_EQ(sv.count, 1);
    fprintf(stderr, "dispatch: served=%u unrouted=%llu client_refused=%llu\n", sv.count,
            (unsigned long long)after.unrouted, (unsigned long long)after.client_refused);
}

struct rtt_acc {
    uint32_t known, max_ms;
};

static void rtt_cb(void *data, const struct ppdb_member_info *m)
{
    struct rtt_acc *a = data;
    if (m->self) {
        CHECK_EQ(m->rtt_ms, 0);
        return;
    }
    if (m->rtt_ms) {
        a->known++;
        a->max_ms = PPDB_MAX(a->max_ms, m->rtt_ms);
    }
}

static void test_rtt(struct mw *w, uint32_t n)
{
    struct rtt_acc a = {0};
    for (uint32_t i = 0; i < n; i++)
        ppdb_node_members(w->nodes[i].node, rtt_cb, &a);
    fprintf(stderr, "rtt: known=%u of %u max_ms=%u\n", a.known, n * (n - 1), a.max_ms);
    CHECK_GE(a.known, n * (n - 1) / 2);  /* each probed directly within ~n s */
    CHECK_LE(a.max_ms, 2 * (1 + 2) + 1); /* two links of 1 ms + 0..2 ms, ms rounding */
}

static bool all_see(struct mw *w, uint32_t from, uint32_t to, uint32_t subject, int state,
                    const struct ppdb_addr *addr)
{
    for (uint32_t i = from; i < to; i++) {
        if (!w->nodes[i].up || i == subject)
            continue;
        struct ppdb_member_info m;
        if (ppdb_node_member(w->nodes[i].node, &w->nodes[subject].idn.id, &m) != 0 ||
            m.state != state || (addr && !ppdb_addr_equal(&m.addr, addr)))
            return false;
    }
    return true;
}

static void leave_done_cb(void *data, int status)
{
    CHECK_OK(status);
    *(bool *)data = true;
}

static void test_leave(struct mw *w, uint32_t n, uint32_t who)
{
    bool done = false;
    uint64_t t0 = ppdb_sim_now_ms(w->sim);
    CHECK_OK(ppdb_node_leave(w->nodes[who].node, leave_done_cb, &done));
    while (!all_see(w, 0, n, who, PPDB_MEMBER_LEFT, NULL)) {
        CHECK_LE(ppdb_sim_now_ms(w->sim) - t0, 3000);
        CHECK_OK(ppdb_sim_run_for(w->sim, 50));
    }
    fprintf(stderr, "leave: all saw left after %llu ms\n",
            (unsigned long long)(ppdb_sim_now_ms(w->sim) - t0));
    CHECK_OK(ppdb_sim_run_for(w->sim, 3000));
    CHECK(done);
    w->nodes[who].up = false; /* left: it no longer follows the mesh */
}

/* Crashes `who` (whatever its streams hold) and starts its identity on sim node
 * `spare` (a new address) through node 0. */
static void test_readdress(struct mw *w, uint32_t n, uint32_t who, uint32_t spare)
{
    mw_crash(w, who);
    CHECK_OK(ppdb_sim_run_for(w->sim, 2000));
    mw_free_node(w, who);

    struct mw_node *sp = &w->nodes[spare];
    ppdb_identity_wipe(&sp->idn);
    sp->idn = w->nodes[who].idn;
    struct ppdb_node_config cfg;
    ppdb_node_config_default(&cfg);
    ppdb_sim_node_addr(w->sim, spare, MW_PORT, &cfg.listen);
    cfg.params = &w->params;
    cfg.nseeds = 1;
    ppdb_sim_node_addr(w->sim, 0, MW_PORT, &cfg.seeds[0]);
    CHECK_OK(ppdb_node_new(sp->env, &sp->idn, &w->kr, &cfg, &sp->node));
    CHECK_OK(ppdb_node_start(sp->node));
    sp->up = true;
    uint64_t t0 = ppdb_sim_now_ms(w->sim);
    w->nodes[who].idn = sp->idn; /* all_see looks the subject up by index */
    while (!all_see(w, 0, n, who, PPDB_MEMBER_ALIVE, &cfg.listen)) {
        CHECK_LE(ppdb_sim_now_ms(w->sim) - t0, 10000);
        CHECK_OK(ppdb_sim_run_for(w->sim, 100));
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!w->nodes[i].up)
            continue;
        struct ppdb_node_stats st;
        ppdb_node_stats(w->nodes[i].node, &st);
        uint32_t total = st.members[0] + st.members[1] + st.members[2] + st.members[3];
        CHECK_EQ(total, n); /* self and the leaver (reaped later) included, no duplicate */
    }
    fprintf(stderr, "readdress: updated everywhere after %llu ms\n",
            (unsigned long long)(ppdb_sim_now_ms(w->sim) - t0));
}

static void test_merge(uint64_t seed)
{
    struct mw w;
    const uint32_t half = 50;
    mw_init(&w, 2 * half, seed ^ 0x3e63e, 0.0);
    for (uint32_t i = 0; i < half; i++)
        mw_start(&w, i, 0);
    for (uint32_t i = half; i < 2 * half; i++)
        mw_start(&w, i, half);
    CHECK_OK(ppdb_sim_run_for(w.sim, 20000));
    for (uint32_t i = 0; i < 2 * half; i++) {
        struct ppdb_node_stats st;
        ppdb_node_stats(w.nodes[i].node, &st);
        CHECK_EQ(st.members[PPDB_MEMBER_ALIVE], half); /* two meshes apart */
    }
    struct ppdb_addr other;
    ppdb_sim_node_addr(w.sim, half + 7, MW_PORT, &other);
    CHECK_OK(ppdb_node_add_seed(w.nodes[3].node, &other));
    uint64_t ms = mw_run_converge(&w, 30000, 100);
    fprintf(stderr, "merge: two meshes of %u -> one of %u in %llu ms\n", half, 2 * half,
            (unsigned long long)ms);
    CHECK(ms != UINT64_MAX);
    mw_free(&w);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x40de);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    const uint32_t n = 20;
    struct mw w;
    mw_init(&w, n + 5, seed, 0.0); /* n .. n + 3: clients, n + 4: a new address */
    for (uint32_t i = 0; i < n; i++)
        mw_start(&w, i, 0);
    CHECK(mw_run_converge(&w, 30000, 100) != UINT64_MAX);
    CHECK_OK(ppdb_sim_run_for(w.sim, 30000)); /* every member probed */
    test_rtt(&w, n);
    test_dispatch(&w, n);
    test_leave(&w, n, 5);
    test_readdress(&w, n, 7, n + 4);
    /* the spare took node 7's identity: free it once */
    memset(&w.nodes[7].idn, 0, sizeof(w.nodes[7].idn));
    mw_free(&w);
    test_merge(seed);
    check_no_leaks(&base);
    fprintf(stderr, "test_node_sim: ok\n");
    return 0;
}
