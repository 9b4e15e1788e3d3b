/*
 * test_stream_rpc.c - request/response over encrypted streams between
 * nodes on loopback through the libuv env: two and three nodes, a client
 * role, a peer restarting mid-stream, a slow reader, and the inbound bound.
 */
#include <sodium.h>

#include "test_stream_harness.h"

static uint8_t key[32];

static void opts(struct ppdb_stream_options *o)
{
    ppdb_stream_options_default(o);
    o->handshake_timeout_ms = 3000;
    o->request_timeout_ms = 5000;
    o->rekey_frames = 5; /* exercise rekeying on the wire */
}

static void test_two_nodes(void)
{
    struct tnode a, b;
    struct ppdb_stream_options o;
    struct tcount c = {0};
    opts(&o);
    tnode_open(&a, "a", key, &o, true, 0);
    tnode_open(&b, "b", key, &o, true, 0);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 200; i++)
            CHECK_OK(t_ping(&a, &b.addr, &c, 0));
        wait_done(&c, (uint32_t)(round + 1) * 200, 10000);
    }
    CHECK_EQ(c.ok, 2000);
    CHECK_EQ(c.failed, 0);
    struct ppdb_stream_stats sa = t_stats(&a), sb = t_stats(&b);
    CHECK_EQ(sa.connected, 1); /* one connection, reused */
    CHECK_EQ(sb.accepted, 1);
    CHECK_EQ(sb.handshakes, 1);
    CHECK(ppdb_node_id_equal(&b.last_peer, &a.idn.id)); /* authenticated id */
    CHECK_EQ(b.last_role, PPDB_ROLE_NODE);
    CHECK_LT(sa.frames_out, 2000); /* batching: fewer frames than messages */
    CHECK_GT(sb.frames.rekeys, 0);
    CHECK_EQ(ppdb_stream_stats_rejected(&sb), 0);
    fprintf(stderr, "two nodes: 2000 requests in %llu frames, %llu rekeys\n",
            (unsigned long long)sa.frames_out, (unsigned long long)sb.frames.rekeys);
    tnode_close(&a);
    tnode_close(&b);
}

static void test_three_nodes_and_client(void)
{
    struct tnode n[3], cli;
    struct ppdb_stream_options o, oc;
    struct tcount c = {0};
    opts(&o);
    for (int i = 0; i < 3; i++)
        tnode_open(&n[i], "n", key, &o, true, 0);
    for (int k = 0; k < 100; k++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    CHECK_OK(t_ping(&n[i], &n[j].addr, &c, 0));
    wait_done(&c, 600, 10000);
    CHECK_EQ(c.ok, 600);
    for (int i = 0; i < 3; i++) {
        struct ppdb_stream_stats s = t_stats(&n[i]);
        CHECK_EQ(s.connected, 2);
        CHECK_EQ(s.accepted, 2);
        CHECK_EQ(n[i].ep.nconns, 4);
    }
    /* A client: throwaway key, proves the cluster key, seen as a client. */
    opts(&oc);
    oc.role = PPDB_ROLE_CLIENT;
    tnode_open(&cli, "cli", key, &oc, false, 0);
    CHECK_OK(t_ping(&cli, &n[0].addr, &c, 0));
    wait_done(&c, 601, 5000);
    CHECK_EQ(c.ok, 601);
    CHECK_EQ(n[0].last_role, PPDB_ROLE_CLIENT);
    CHECK(ppdb_node_id_equal(&n[0].last_peer, &cli.idn.id));
    tnode_close(&cli);
    for (int i = 0; i < 3; i++)
        tnode_close(&n[i]);
}

/* The responder goes away with requests outstanding, then comes back on
 * the same port: old requests fail with ECONNRESET, new ones succeed. */
static void test_restart(void)
{
    struct tnode a, b;
    struct ppdb_stream_options o;
    struct tcount c = {0}, c2 = {0};
    opts(&o);
    tnode_open(&a, "a", key, &o, true, 0);
    tnode_open(&b, "b", key, &o, true, 0);
    b.mode = T_HOLD;
    for (int i = 0; i < 50; i++)
        CHECK_OK(t_ping(&a, &b.addr, &c, 0));
    struct t_wait_done w;
    (void)w;
    while (b.nheld < 50)
        run_for(10);
    uint16_t port = b.addr.port;
    tnode_close(&b); /* the peer dies mid-stream */
    wait_done(&c, 50, 5000);
    CHECK_EQ(c.resets, 50);
    CHECK_EQ(c.ok, 0);
    tnode_open(&b, "b2", key, &o, true, port);
    CHECK_EQ(b.addr.port, port);
    for (int i = 0; i < 20; i++)
        CHECK_OK(t_ping(&a, &b.addr, &c2, 0));
    wait_done(&c2, 20, 5000);
    CHECK_EQ(c2.ok, 20);
    CHECK_EQ(t_stats(&a).connected, 2);
    tnode_close(&a);
    tnode_close(&b);
}

struct flood {
    struct tnode *a, *b;
    uint32_t sent, refused, want;
    struct ppdb_buf body;
};

static void flood_more(struct flood *f)
{
    while (f->sent < f->want) {
        int rc = ppdb_stream_send(&f->a->ep, &f->b->addr, T_MSG_BLOB, f->body.data, f->body.len);
        if (rc == PPDB_EAGAIN) {
            f->refused++;
            return;
        }
        CHECK_OK(rc);
        f->sent++;
    }
}

static bool blobs_in(void *arg)
{
    struct flood *f = arg;
    return f->b->blobs >= f->want;
}

/* A reader that stops reading: the sender is refused at the high-water mark
 * instead of buffering without bound, and resumes when told. */
static void test_slow_reader(void)
{
    struct tnode a, b;
    struct ppdb_stream_options o;
    struct flood f = {&a, &b, 0, 0, 400, {0}};
    opts(&o);
    o.high_water = (size_t)2 << 20;
    o.low_water = (size_t)512 << 10;
    tnode_open(&a, "a", key, &o, true, 0);
    tnode_open(&b, "b", key, &o, true, 0);
    b.mode = T_PAUSE;
    uint8_t chunk[64 << 10];
    memset(chunk, 0x5a, sizeof(chunk));
    ppdb_buf_init(&f.body);
    t_body(&f.body, chunk, sizeof(chunk));
    flood_more(&f);
    CHECK_GT(f.refused, 0); /* refused before anything was written */
    for (int i = 0; i < 300; i++) {
        run_for(10);
        flood_more(&f);
    }
    struct ppdb_stream_conn_info ia, ib;
    CHECK_OK(ppdb_stream_conn_info_by_addr(&a.ep, &b.addr, &ia));
    CHECK_OK(ppdb_stream_conn_info_by_id(&b.ep, b.paused_conn, &ib));
    struct ppdb_stream_stats sa = t_stats(&a), sb = t_stats(&b);
    fprintf(stderr,
            "slow reader: sent %u of %u, refused %u, sender queued+pending %zu (peak %zu), "
            "reader unread %zu (peak %zu), delivered %llu\n",
            f.sent, f.want, f.refused, ia.queued_bytes + ia.pending_bytes, sa.peak_out_bytes,
            ib.unread_bytes, sb.peak_in_bytes, (unsigned long long)b.blobs);
    CHECK(ib.paused);
    CHECK_LT(f.sent, f.want); /* the sender was held back */
    CHECK_LE(sa.peak_out_bytes, o.high_water + o.max_frame);
    CHECK_LE(sb.peak_in_bytes, (size_t)o.max_frame + (64 << 10));
    CHECK_GT(sa.send_refused, 0);
    /* The reader resumes: everything arrives, the sender was told to go on. */
    CHECK_OK(ppdb_stream_pause(&b.ep, b.paused_conn, false));
    for (int i = 0; i < 2000 && !blobs_in(&f); i++) {
        run_for(5);
        flood_more(&f);
    }
    CHECK_EQ(b.blobs, f.want);
    CHECK_EQ(b.blob_bytes, (uint64_t)f.want * sizeof(chunk));
    CHECK_GT(a.writable_calls, 0);
    ppdb_buf_deinit(&f.body);
    tnode_close(&a);
    tnode_close(&b);
}

/* Large messages of random sizes and contents, streamed with back-pressure
 * so frame buffers are reused for later frames many times over: every byte
 * arrives, in order, for each cipher (the digest chain covers contents and
 * order). */
static void test_bulk_integrity(uint32_t cipher, uint64_t seed)
{
    struct tnode a, b;
    struct ppdb_stream_options o;
    struct ppdb_rng rng;
    static uint8_t chunk[300 << 10];
    uint64_t chain = 0;
    uint32_t sent = 0, want = 120;
    size_t n = 0;
    opts(&o);
    o.ciphers = cipher;
    o.high_water = (size_t)3 << 20;
    o.low_water = (size_t)1 << 20;
    ppdb_rng_seed(&rng, seed);
    tnode_open(&a, "a", key, &o, true, 0);
    tnode_open(&b, "b", key, &o, true, 0);
    struct ppdb_buf body;
    ppdb_buf_init(&body);
    b.mode = T_PAUSE; /* the reader stops at first: writes stay pending in the env */
    for (int guard = 0; guard < 2000 && b.blobs < want; guard++) {
        if (guard == 100) {
            CHECK_NE(b.paused_conn, 0);
            CHECK_OK(ppdb_stream_pause(&b.ep, b.paused_conn, false));
        }
        while (sent < want) {
            if (body.len == 0) {
                n = 1 + (size_t)ppdb_rng_below(&rng, sizeof(chunk));
                ppdb_rng_bytes(&rng, chunk, n);
                t_body(&body, chunk, n);
            }
            int rc = ppdb_stream_send(&a.ep, &b.addr, T_MSG_BLOB, body.data, body.len);
            if (rc == PPDB_EAGAIN)
                break; /* the same body is sent when writable */
            CHECK_OK(rc);
            chain = t_chain(chain, chunk, n);
            ppdb_buf_reset(&body);
            sent++;
        }
        run_for(5);
    }
    struct ppdb_stream_stats sa = t_stats(&a);
    fprintf(stderr, "bulk (cipher %u): %u blobs, %llu bytes, %llu frames, %llu refused\n", cipher,
            want, (unsigned long long)b.blob_bytes, (unsigned long long)sa.frames_out,
            (unsigned long long)sa.send_refused);
    CHECK_EQ(b.blobs, want);
    CHECK_EQ(b.blob_chain, chain);
    CHECK_GT(sa.send_refused, 0); /* back-pressure happened: buffers were recycled */
    CHECK_EQ(t_stats(&b).frames.auth_failed, 0);
    ppdb_buf_deinit(&body);
    tnode_close(&a);
    tnode_close(&b);
}

/* The application holds requests: at max_inbound the node stops reading,
 * the sender hits max_inflight; answering resumes everything. */
static void test_inbound_bound(void)
{
    struct tnode a, b;
    struct ppdb_stream_options o;
    struct tcount c = {0};
    opts(&o);
    o.max_inbound = 16;
    o.max_inflight = 64;
    tnode_open(&a, "a", key, &o, true, 0);
    tnode_open(&b, "b", key, &o, true, 0);
    b.mode = T_HOLD;
    int limited = 0;
    for (int i = 0; i < 100; i++) {
        int rc = t_ping(&a, &b.addr, &c, 0);
        if (rc == PPDB_ELIMIT)
            limited++;
        else
            CHECK_OK(rc);
        run_for(2); /* one request per frame */
    }
    CHECK_EQ(limited, 36);
    run_for(200);
    CHECK_LE(b.nheld, 16 + 1); /* at most the rest of one frame past the bound */
    CHECK_GE(b.nheld, 16);
    CHECK_GT(t_stats(&b).read_pauses, 0);
    for (int round = 0; round < 100 && c.ok < 64; round++) {
        uint32_t held = b.nheld;
        b.nheld = 0;
        struct ppdb_buf body;
        ppdb_buf_init(&body);
        t_body(&body, (const uint8_t *)"x", 1);
        for (uint32_t i = 0; i < held; i++)
            CHECK_OK(ppdb_stream_reply(&b.ep, b.held_conn[i], b.held_req[i], PPDB_MSG_PONG,
                                       body.data, body.len));
        ppdb_buf_deinit(&body);
        run_for(20);
    }
    CHECK_EQ(c.ok, 64);
    tnode_close(&a);
    tnode_close(&b);
}

/* Idle connections close and come back; cancel is silent; closing the
 * endpoint ends pending requests with ECANCELED. */
static void test_idle_cancel_close(void)
{
    struct tnode a, b;
    struct ppdb_stream_options o;
    struct tcount c = {0}, held = {0};
    opts(&o);
    o.idle_ms = 150;
    tnode_open(&a, "a", key, &o, true, 0);
    tnode_open(&b, "b", key, &o, true, 0);
    CHECK_OK(t_ping(&a, &b.addr, &c, 0));
    wait_done(&c, 1, 5000);
    run_for(600);
    CHECK_GE(t_stats(&a).idle_closed, 1);
    CHECK_EQ(a.ep.nconns, 0);
    CHECK_OK(t_ping(&a, &b.addr, &c, 0)); /* reconnects */
    wait_done(&c, 2, 5000);
    CHECK_EQ(c.ok, 2);
    CHECK_EQ(t_stats(&a).connected, 2);
    b.mode = T_HOLD;
    uint64_t id;
    uint8_t body[] = {0x80};
    CHECK_OK(
        ppdb_stream_request(&a.ep, &b.addr, PPDB_MSG_PING, body, 1, 0, t_reply_cb, &held, &id));
    CHECK_OK(ppdb_stream_cancel(&a.ep, id));
    CHECK_ERR(ppdb_stream_cancel(&a.ep, id), PPDB_ENOTFOUND);
    for (int i = 0; i < 3; i++)
        CHECK_OK(t_ping(&a, &b.addr, &held, 0));
    run_for(100);
    CHECK_EQ(held.ok + held.failed, 0); /* the canceled one never calls back */
    tnode_close(&a);
    CHECK_EQ(held.canceled, 3);
    CHECK_EQ(held.failed, 3);
    tnode_close(&b);
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    CHECK_OK(ppdb_wire_init());
    t_loop_init();
    ppdb_alloc_stats(&base);
    uint64_t seed = check_seed(argc, argv, 5);
    randombytes_buf(key, sizeof(key));
    test_bulk_integrity(PPDB_NOISE_CHACHAPOLY, seed);
    if (ppdb_stream_ciphers_local() & PPDB_NOISE_AESGCM)
        test_bulk_integrity(PPDB_NOISE_AESGCM, seed + 1);
    test_two_nodes();
    test_three_nodes_and_client();
    test_restart();
    test_slow_reader();
    test_inbound_bound();
    test_idle_cancel_close();
    t_loop_done();
    check_no_leaks(&base);
    printf("test_stream_rpc: ok\n");
    return 0;
}
