/*
 * test_sim_stream.c - simulated byte streams: in-order delivery under heavy
 * jitter, write completions and pending bytes, read_stop/read_start
 * buffering, refused connects, abortive close (reset) versus shutdown (end
 * of stream), canceled writes on close, a crash resetting the peer, and
 * open streams across a partition: held in order until the heal, or timed
 * out at both ends.
 */
#include "check.h"
#include "ppdb_sim.h"

#define CHUNKS 300

struct side {
    struct ppdb_env *env;
    struct ppdb_stream *s;
    int status;    /* last connect status; 1 = none yet */
    int end;       /* read end status; 1 = none yet */
    uint32_t next; /* next expected sequence number */
    uint64_t bytes;
    int writes_ok, writes_failed, writes_canceled;
    uint32_t done_order_next;
    int closed;
    bool close_in_read; /* close the stream when the end of stream arrives */
};

static struct ppdb_sim *world(uint64_t seed, uint32_t latency_ms, uint32_t jitter_ms)
{
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.seed = seed;
    o.link.latency_ms = latency_ms;
    o.link.jitter_ms = jitter_ms;
    o.link.loss = 0.5; /* datagrams only: streams must not notice */
    struct ppdb_sim *sim;
    CHECK_OK(ppdb_sim_new(&o, &sim));
    return sim;
}

static void closed_cb(void *data)
{
    ((struct side *)data)->closed++;
}

static void read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len, int status)
{
    struct side *d = data;
    CHECK(d->s == s);
    if (status) {
        CHECK_EQ(d->end, 1); /* exactly one end */
        d->end = status;
        if (d->close_in_read) {
            ppdb_env_stream_close(d->env, s, closed_cb, d);
            d->s = NULL;
        }
        return;
    }
    CHECK_EQ(d->end, 1); /* no data after the end */
    /* each chunk: 4-byte sequence number + (seq % 50) filler bytes */
    CHECK_GE(len, 4);
    uint32_t seq = ppdb_load_u32le(buf);
    CHECK_EQ(seq, d->next);
    CHECK_EQ(len, 4 + seq % 50);
    for (size_t i = 4; i < len; i++)
        CHECK_EQ(buf[i], (uint8_t)seq);
    d->next++;
    d->bytes += len;
}

static void write_cb(void *data, struct ppdb_stream *s, int status)
{
    struct side *d = data;
    (void)s;
    if (status == 0)
        d->writes_ok++;
    else if (status == PPDB_ECANCELED)
        d->writes_canceled++;
    else
        d->writes_failed++;
}

static void accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct side *d = data;
    (void)l;
    CHECK(d->s == NULL);
    d->s = s;
    CHECK_OK(ppdb_env_stream_read_start(d->env, s, read_cb, d));
}

static void connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct side *d = data;
    d->status = status;
    d->s = s;
    CHECK((status == 0) == (s != NULL));
    if (s)
        CHECK_OK(ppdb_env_stream_read_start(d->env, s, read_cb, d));
}

static void write_chunk(struct side *d, uint32_t seq)
{
    uint8_t buf[64];
    ppdb_store_u32le(buf, seq);
    memset(buf + 4, (uint8_t)seq, seq % 50);
    CHECK_OK(ppdb_env_stream_write(d->env, d->s, buf, 4 + seq % 50, write_cb, d));
}

struct pair {
    struct ppdb_sim *sim;
    struct side cli, srv;
    struct ppdb_listener *l;
};

static void pair_open(struct pair *p, uint64_t seed, uint32_t latency_ms, uint32_t jitter_ms)
{
    memset(p, 0, sizeof(*p));
    p->sim = world(seed, latency_ms, jitter_ms);
    CHECK_OK(ppdb_sim_add_node(p->sim, "cli", &p->cli.env, NULL));
    CHECK_OK(ppdb_sim_add_node(p->sim, "srv", &p->srv.env, NULL));
    p->cli.status = p->cli.end = p->srv.status = p->srv.end = 1;
    struct ppdb_addr at;
    ppdb_sim_node_addr(p->sim, 1, 6000, &at);
    CHECK_OK(ppdb_env_listen(p->srv.env, &at, accept_cb, &p->srv, &p->l));
    CHECK_OK(ppdb_env_connect(p->cli.env, &at, connect_cb, &p->cli));
    CHECK_EQ(p->cli.status, 1); /* never inside the call */
    CHECK_OK(ppdb_sim_run_for(p->sim, 1000));
    CHECK_EQ(p->cli.status, 0);
    CHECK(p->srv.s != NULL);
    struct ppdb_addr peer, cli_addr;
    CHECK_OK(ppdb_env_stream_peer_addr(p->cli.env, p->cli.s, &peer));
    CHECK(ppdb_addr_equal(&peer, &at));
    CHECK_OK(ppdb_env_stream_peer_addr(p->srv.env, p->srv.s, &cli_addr));
    CHECK_EQ(ppdb_sim_addr_node(p->sim, &cli_addr, &(uint32_t){0}), 0);
}

static void pair_free(struct pair *p)
{
    if (p->cli.s)
        ppdb_env_stream_close(p->cli.env, p->cli.s, NULL, NULL);
    if (p->srv.s)
        ppdb_env_stream_close(p->srv.env, p->srv.s, NULL, NULL);
    ppdb_env_listener_close(p->srv.env, p->l);
    ppdb_sim_free(p->sim);
}

static void test_fifo_under_jitter(uint64_t seed)
{
    struct pair p;
    pair_open(&p, seed, 2, 40); /* jitter far larger than the write spacing */
    for (uint32_t i = 0; i < CHUNKS; i++) {
        write_chunk(&p.cli, i);
        if (i % 7 == 0)
            CHECK_OK(ppdb_sim_run_for(p.sim, 1));
    }
    CHECK_GT(ppdb_env_stream_pending(p.cli.env, p.cli.s), 0);
    CHECK_OK(ppdb_sim_run_for(p.sim, 1000));
    CHECK_EQ(p.srv.next, CHUNKS);
    CHECK_EQ(p.cli.writes_ok, CHUNKS);
    CHECK_EQ(ppdb_env_stream_pending(p.cli.env, p.cli.s), 0);
    /* and back the other way, ending with a shutdown: data, then ECLOSED */
    for (uint32_t i = 0; i < 50; i++)
        write_chunk(&p.srv, i);
    CHECK_OK(ppdb_env_stream_shutdown(p.srv.env, p.srv.s));
    CHECK_ERR(ppdb_env_stream_shutdown(p.srv.env, p.srv.s), PPDB_ECLOSED);
    uint8_t x = 0;
    CHECK_ERR(ppdb_env_stream_write(p.srv.env, p.srv.s, &x, 1, write_cb, &p.srv), PPDB_ECLOSED);
    CHECK_OK(ppdb_sim_run_for(p.sim, 1000));
    CHECK_EQ(p.cli.next, 50);
    CHECK_EQ(p.cli.end, PPDB_ECLOSED);
    CHECK_EQ(p.srv.end, 1);
    /* closing after a shutdown is orderly: the peer sees no reset */
    ppdb_env_stream_close(p.srv.env, p.srv.s, closed_cb, &p.srv);
    p.srv.s = NULL;
    CHECK_OK(ppdb_sim_run_for(p.sim, 1000));
    CHECK_EQ(p.srv.closed, 1);
    struct ppdb_sim_stats st;
    ppdb_sim_stats(p.sim, &st);
    CHECK_EQ(st.resets, 0);
    CHECK_EQ(st.stream_bytes_delivered, st.stream_bytes_sent);
    CHECK_EQ(st.overflow, 0);
    pair_free(&p);
}

static void test_read_stop_buffers(uint64_t seed)
{
    struct pair p;
    pair_open(&p, seed, 5, 5);
    ppdb_env_stream_read_stop(p.srv.env, p.srv.s);
    for (uint32_t i = 0; i < 20; i++)
        write_chunk(&p.cli, i);
    size_t pending = ppdb_env_stream_pending(p.cli.env, p.cli.s);
    CHECK_OK(ppdb_sim_run_for(p.sim, 500));
    CHECK_EQ(p.srv.next, 0);
    CHECK_EQ(p.cli.writes_ok, 0); /* buffered at the peer: still pending */
    CHECK_EQ(ppdb_env_stream_pending(p.cli.env, p.cli.s), pending);
    CHECK_OK(ppdb_env_stream_read_start(p.srv.env, p.srv.s, read_cb, &p.srv));
    CHECK_EQ(p.srv.next, 0); /* never inside the call */
    CHECK_OK(ppdb_sim_run_for(p.sim, 500));
    CHECK_EQ(p.srv.next, 20);
    CHECK_EQ(p.cli.writes_ok, 20);
    CHECK_EQ(ppdb_env_stream_pending(p.cli.env, p.cli.s), 0);
    pair_free(&p);
}

static void test_refused(void)
{
    struct ppdb_sim *sim = world(7, 3, 0);
    struct side cli = {.status = 1, .end = 1};
    CHECK_OK(ppdb_sim_add_node(sim, NULL, &cli.env, NULL));
    CHECK_OK(ppdb_sim_add_node(sim, NULL, NULL, NULL));
    struct ppdb_addr no_listener, no_host;
    ppdb_sim_node_addr(sim, 1, 6000, &no_listener);
    ppdb_sim_node_addr(sim, 500, 6000, &no_host);
    CHECK_OK(ppdb_env_connect(cli.env, &no_listener, connect_cb, &cli));
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    CHECK_EQ(cli.status, PPDB_ECONNREFUSED);
    cli.status = 1;
    CHECK_OK(ppdb_env_connect(cli.env, &no_host, connect_cb, &cli));
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    CHECK_EQ(cli.status, PPDB_ECONNREFUSED);
    struct ppdb_sim_stats st;
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.connects_refused, 2);
    ppdb_sim_free(sim);
}

static void test_abortive_close(uint64_t seed)
{
    struct pair p;
    pair_open(&p, seed, 10, 0);
    for (uint32_t i = 0; i < 5; i++)
        write_chunk(&p.cli, i);
    /* close with undelivered writes: they complete ECANCELED, then close_cb;
     * the bytes already sent still arrive, then the peer reads a reset */
    ppdb_env_stream_close(p.cli.env, p.cli.s, closed_cb, &p.cli);
    p.cli.s = NULL;
    CHECK_EQ(p.cli.closed, 0);
    CHECK_OK(ppdb_sim_run_for(p.sim, 1));
    CHECK_EQ(p.cli.writes_canceled, 5);
    CHECK_EQ(p.cli.closed, 1);
    p.srv.close_in_read = true;
    CHECK_OK(ppdb_sim_run_for(p.sim, 100));
    CHECK_EQ(p.srv.next, 5);
    CHECK_EQ(p.srv.end, PPDB_ECONNRESET);
    CHECK_EQ(p.srv.closed, 1);
    pair_free(&p);
}

static void test_crash_resets_peer(uint64_t seed)
{
    struct pair p;
    pair_open(&p, seed, 4, 2);
    for (uint32_t i = 0; i < 10; i++)
        write_chunk(&p.cli, i);
    CHECK_OK(ppdb_sim_node_crash(p.sim, 1)); /* the server */
    CHECK_OK(ppdb_sim_run_for(p.sim, 100));
    CHECK_EQ(p.srv.next, 0);
    CHECK_EQ(p.cli.end, PPDB_ECONNRESET);
    CHECK_EQ(p.cli.writes_failed, 10); /* never reached a live peer */
    uint8_t x = 0;
    CHECK_ERR(ppdb_env_stream_write(p.cli.env, p.cli.s, &x, 1, write_cb, &p.cli), PPDB_ECONNRESET);
    /* connecting to the dead node is refused by its host */
    struct side c2 = {.status = 1, .end = 1, .env = p.cli.env};
    struct ppdb_addr at;
    ppdb_sim_node_addr(p.sim, 1, 6000, &at);
    CHECK_OK(ppdb_env_connect(p.cli.env, &at, connect_cb, &c2));
    CHECK_OK(ppdb_sim_run_for(p.sim, 100));
    CHECK_EQ(c2.status, PPDB_ECONNREFUSED);
    pair_free(&p);
}

static void test_crash_mid_connect(void)
{
    /* crash the caller while its SYN is in flight, and the listener while
     * another SYN is: nothing leaks, the survivor's connect is refused */
    struct ppdb_sim *sim = world(9, 20, 0);
    struct side a = {.status = 1, .end = 1}, b = {.status = 1, .end = 1};
    struct side srv = {.status = 1, .end = 1};
    CHECK_OK(ppdb_sim_add_node(sim, NULL, &a.env, NULL));
    CHECK_OK(ppdb_sim_add_node(sim, NULL, &b.env, NULL));
    CHECK_OK(ppdb_sim_add_node(sim, NULL, &srv.env, NULL));
    srv.env = ppdb_sim_node_env(sim, 2);
    struct ppdb_listener *l;
    struct ppdb_addr at;
    ppdb_sim_node_addr(sim, 2, 6000, &at);
    CHECK_OK(ppdb_env_listen(srv.env, &at, accept_cb, &srv, &l));
    CHECK_OK(ppdb_env_connect(a.env, &at, connect_cb, &a));
    CHECK_OK(ppdb_sim_run_for(sim, 5));
    CHECK_OK(ppdb_sim_node_crash(sim, 0));
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    CHECK_EQ(a.status, 1);
    CHECK(srv.s == NULL); /* the SYN of a dead caller is not accepted */
    CHECK_OK(ppdb_env_connect(b.env, &at, connect_cb, &b));
    CHECK_OK(ppdb_sim_run_for(sim, 5));
    CHECK_OK(ppdb_sim_node_crash(sim, 2));
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    CHECK_EQ(b.status, PPDB_ECONNREFUSED);
    ppdb_env_listener_close(srv.env, l);
    ppdb_sim_free(sim);
}

/* Segments written across a one-way partition wait (writes incomplete),
 * the other direction keeps flowing, and after the heal everything arrives
 * in order within a retransmit interval. */
static void test_partition_holds_then_heals(uint64_t seed)
{
    struct pair p;
    pair_open(&p, seed, 5, 3);
    ppdb_sim_set_group(p.sim, 1, 1);
    ppdb_sim_block(p.sim, 0, 1, true); /* cli -> srv only */
    for (uint32_t i = 0; i < 20; i++)
        write_chunk(&p.cli, i);
    write_chunk(&p.srv, 0);
    CHECK_OK(ppdb_sim_run_for(p.sim, 10000));
    CHECK_EQ(p.srv.next, 0);
    CHECK_EQ(p.cli.writes_ok, 0);
    CHECK_EQ(p.cli.writes_failed, 0);
    CHECK_GT(ppdb_env_stream_pending(p.cli.env, p.cli.s), 0);
    CHECK_EQ(p.cli.next, 1); /* srv -> cli is open */
    ppdb_sim_heal(p.sim);
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    CHECK_OK(ppdb_sim_run_for(p.sim, o.stream_retransmit_ms + 20));
    CHECK_EQ(p.srv.next, 20);
    CHECK_EQ(p.cli.writes_ok, 20);
    CHECK_EQ(p.srv.end, 1);
    struct ppdb_sim_stats st;
    ppdb_sim_stats(p.sim, &st);
    CHECK_EQ(st.segments_stalled, 20);
    CHECK_EQ(st.stream_timeouts, 0);
    pair_free(&p);
}

/* A partition that outlasts stream_timeout_ms breaks the connection at both
 * ends: held writes fail with PPDB_ETIMEDOUT and both readers end with it. */
static void test_partition_times_out(uint64_t seed)
{
    struct pair p;
    pair_open(&p, seed, 5, 0);
    ppdb_sim_set_group(p.sim, 1, 1);
    ppdb_sim_block(p.sim, 0, 1, true);
    ppdb_sim_block(p.sim, 1, 0, true);
    for (uint32_t i = 0; i < 5; i++)
        write_chunk(&p.cli, i);
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    CHECK_OK(ppdb_sim_run_for(p.sim, o.stream_timeout_ms - o.stream_retransmit_ms));
    CHECK_EQ(p.cli.end, 1);
    CHECK_EQ(p.cli.writes_failed, 0);
    CHECK_OK(ppdb_sim_run_for(p.sim, 2 * o.stream_retransmit_ms + 20));
    CHECK_EQ(p.cli.writes_failed, 5);
    CHECK_EQ(p.cli.end, PPDB_ETIMEDOUT);
    CHECK_EQ(p.srv.end, PPDB_ETIMEDOUT);
    CHECK_EQ(p.srv.next, 0);
    uint8_t x = 0;
    CHECK_ERR(ppdb_env_stream_write(p.cli.env, p.cli.s, &x, 1, write_cb, &p.cli), PPDB_ECONNRESET);
    ppdb_sim_heal(p.sim); /* too late: nothing more arrives */
    CHECK_OK(ppdb_sim_run_for(p.sim, 5000));
    CHECK_EQ(p.srv.next, 0);
    struct ppdb_sim_stats st;
    ppdb_sim_stats(p.sim, &st);
    CHECK_EQ(st.stream_timeouts, 1);
    pair_free(&p);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x57ea);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_fifo_under_jitter(seed);
    test_read_stop_buffers(seed);
    test_refused();
    test_abortive_close(seed);
    test_crash_resets_peer(seed);
    test_crash_mid_connect();
    test_partition_holds_then_heals(seed);
    test_partition_times_out(seed);
    check_no_leaks(&base);
    fprintf(stderr, "test_sim_stream: ok\n");
    return 0;
}
