/*
 * test_simtool_model.c - the extended network and node model of the
 * simulated world (sim/fault.c): lognormal and pareto tails, duplication,
 * explicit reordering, egress bandwidth queueing and its drop bound,
 * partitions (two-way, one-way, heal, connects timing out), pause/resume
 * (timers and arrivals held, in order, run at resume), restart, drift.
 */
#include "check.h"
#include "ppdb_sim.h"

#define PORT 9000

struct sink {
    struct ppdb_env *env;
    uint64_t count;
    uint64_t bytes;
    uint64_t first_ms, last_ms;
    uint64_t delays[4096];
    uint32_t seqs[4096];
    uint32_t n;
};

static void recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                    const uint8_t *buf, size_t len)
{
    (void)u;
    (void)from;
    struct sink *s = data;
    uint64_t now = ppdb_env_mono_ms(s->env);
    uint64_t sent;
    uint32_t seq;
    CHECK_GE(len, sizeof(sent) + sizeof(seq));
    memcpy(&sent, buf, sizeof(sent));
    memcpy(&seq, buf + sizeof(sent), sizeof(seq));
    if (s->count == 0)
        s->first_ms = now;
    s->last_ms = now;
    s->count++;
    s->bytes += len;
    if (s->n < 4096) {
        s->delays[s->n] = now - sent;
        s->seqs[s->n++] = seq;
    }
}

struct pair {
    struct ppdb_sim *sim;
    struct ppdb_env *a, *b;
    struct ppdb_udp *ua, *ub;
    struct sink sink;
};

static void pair_init(struct pair *p, uint64_t seed, const struct ppdb_sim_link *link)
{
    memset(p, 0, sizeof(*p));
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.seed = seed;
    o.link = *link;
    CHECK_OK(ppdb_sim_new(&o, &p->sim));
    CHECK_OK(ppdb_sim_add_node(p->sim, "a", &p->a, NULL));
    CHECK_OK(ppdb_sim_add_node(p->sim, "b", &p->b, NULL));
    struct ppdb_addr bind;
    ppdb_sim_node_addr(p->sim, 0, PORT, &bind);
    CHECK_OK(ppdb_env_udp_open(p->a, &bind, recv_cb, &p->sink, &p->ua));
    ppdb_sim_node_addr(p->sim, 1, PORT, &bind);
    p->sink.env = p->b;
    CHECK_OK(ppdb_env_udp_open(p->b, &bind, recv_cb, &p->sink, &p->ub));
}

static void send_one(struct pair *p, uint32_t seq, size_t len)
{
    uint8_t buf[2048] = {0};
    PPDB_ASSERT(len <= sizeof(buf) && len >= 12);
    uint64_t now = ppdb_env_mono_ms(p->a);
    memcpy(buf, &now, sizeof(now));
    memcpy(buf + sizeof(now), &seq, sizeof(seq));
    struct ppdb_addr to;
    ppdb_sim_node_addr(p->sim, 1, PORT, &to);
    CHECK_OK(ppdb_env_udp_send(p->a, p->ua, &to, buf, len));
}

static void pair_free(struct pair *p)
{
    ppdb_env_udp_close(p->a, p->ua);
    ppdb_env_udp_close(p->b, p->ub);
    ppdb_sim_free(p->sim);
}

static int u64_cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* A tail: most delays near the body, a few far out, none past the cap. */
static void test_tails(uint64_t seed)
{
    for (int dist = PPDB_SIM_DIST_LOGNORMAL; dist <= PPDB_SIM_DIST_PARETO; dist++) {
        struct ppdb_sim_link l = {.latency_ms = 5, .jitter_ms = 10, .dist = (uint8_t)dist};
        struct pair p;
        pair_init(&p, seed, &l);
        for (uint32_t i = 0; i < 4000; i++) {
            send_one(&p, i, 16);
            CHECK_OK(ppdb_sim_run_for(p.sim, 1));
        }
        CHECK_OK(ppdb_sim_run_for(p.sim, 70000));
        CHECK_EQ(p.sink.count, 4000);
        qsort(p.sink.delays, p.sink.n, sizeof(uint64_t), u64_cmp);
        uint64_t p50 = p.sink.delays[p.sink.n / 2], p99 = p.sink.delays[p.sink.n * 99 / 100];
        uint64_t max = p.sink.delays[p.sink.n - 1];
        fprintf(stderr, "dist=%d p50=%llu p99=%llu max=%llu\n", dist, (unsigned long long)p50,
                (unsigned long long)p99, (unsigned long long)max);
        CHECK_GE(p.sink.delays[0], 5);
        CHECK_GE(p50, 6);
        CHECK_LE(p50, 20);
        CHECK_GT(p99, 2 * p50); /* a real tail, unlike uniform[5, 15] */
        CHECK_LE(max, 5 + PPDB_SIM_TAIL_MAX_MS);
        pair_free(&p);
    }
}

/* Duplicates arrive twice; reordering inverts sends; counters agree. */
static void test_dup_reorder(uint64_t seed)
{
    struct ppdb_sim_link l = {.latency_ms = 2, .dup = 0.1, .reorder = 0.1, .reorder_ms = 50};
    struct pair p;
    pair_init(&p, seed, &l);
    for (uint32_t i = 0; i < 2000; i++) {
        send_one(&p, i, 16);
        CHECK_OK(ppdb_sim_run_for(p.sim, 1));
    }
    CHECK_OK(ppdb_sim_run_for(p.sim, 1000));
    struct ppdb_sim_stats st;
    ppdb_sim_stats(p.sim, &st);
    CHECK_EQ(p.sink.count, 2000 + st.duplicated);
    CHECK_GT(st.duplicated, 140); /* 200 expected, 5 sd ~ 67 */
    CHECK_LT(st.duplicated, 270);
    CHECK_GT(st.reordered, 140);
    CHECK_LT(st.reordered, 270);
    uint32_t inversions = 0;
    for (uint32_t i = 1; i < p.sink.n; i++)
        inversions += p.sink.seqs[i] < p.sink.seqs[i - 1];
    CHECK_GT(inversions, 50);
    pair_free(&p);
}

/* 10,000 B/s egress: 100 datagrams of 972 B (+28 header) take 10 s to
 * leave; past the 1 s queue bound the rest are dropped and counted. */
static void test_bandwidth(uint64_t seed)
{
    struct ppdb_sim_link l = {.latency_ms = 1};
    struct pair p;
    pair_init(&p, seed, &l);
    ppdb_sim_set_egress(p.sim, 0, 10000);
    for (uint32_t i = 0; i < 5; i++)
        send_one(&p, i, 972);
    CHECK_OK(ppdb_sim_run_for(p.sim, 5000));
    CHECK_EQ(p.sink.count, 5);
    CHECK_EQ(p.sink.first_ms, 101);
    CHECK_EQ(p.sink.last_ms, 501); /* serialized: 100 ms each */
    for (uint32_t i = 0; i < 100; i++)
        send_one(&p, i, 972);
    CHECK_OK(ppdb_sim_run_for(p.sim, 5000));
    struct ppdb_sim_stats st;
    ppdb_sim_stats(p.sim, &st);
    CHECK_EQ(st.dropped_queue, 100 - 11); /* waits of 0 .. 1000 ms are kept */
    CHECK_EQ(p.sink.count, 5 + 11);
    pair_free(&p);
}

static void connect_cb(void *data, struct ppdb_stream *s, int status)
{
    int *out = data;
    *out = status;
    CHECK(s == NULL);
}

static void accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    (void)data;
    (void)l;
    (void)s;
    CHECK(!"accepted across a partition");
}

static void test_partition(uint64_t seed)
{
    struct ppdb_sim_link l = {.latency_ms = 1};
    struct pair p;
    pair_init(&p, seed, &l);
    ppdb_sim_set_group(p.sim, 1, 1);
    ppdb_sim_block(p.sim, 0, 1, true); /* one way: a -> b only */
    CHECK(!ppdb_sim_reachable(p.sim, 0, 1));
    CHECK(ppdb_sim_reachable(p.sim, 1, 0));
    send_one(&p, 1, 16);
    struct ppdb_listener *lis;
    struct ppdb_addr bind;
    ppdb_sim_node_addr(p.sim, 1, PORT, &bind);
    CHECK_OK(ppdb_env_listen(p.b, &bind, accept_cb, NULL, &lis));
    int status = 1;
    CHECK_OK(ppdb_env_connect(p.a, &bind, connect_cb, &status));
    CHECK_OK(ppdb_sim_run_for(p.sim, 2999));
    CHECK_EQ(status, 1);
    CHECK_OK(ppdb_sim_run_for(p.sim, 1));
    CHECK_EQ(status, PPDB_ETIMEDOUT);
    CHECK_EQ(p.sink.count, 0);
    struct ppdb_sim_stats st;
    ppdb_sim_stats(p.sim, &st);
    CHECK_EQ(st.dropped_partition, 1);
    CHECK_EQ(st.connects_blocked, 1);
    ppdb_sim_heal(p.sim);
    CHECK(ppdb_sim_reachable(p.sim, 0, 1));
    CHECK_EQ(ppdb_sim_group(p.sim, 1), 0);
    send_one(&p, 2, 16);
    CHECK_OK(ppdb_sim_run_for(p.sim, 10));
    CHECK_EQ(p.sink.count, 1);
    ppdb_env_listener_close(p.b, lis);
    pair_free(&p);
}

struct tick {
    struct ppdb_timer t;
    struct ppdb_env *env;
    uint64_t fired_ms[4];
    int n;
};

static void tick_cb(struct ppdb_timer *t)
{
    struct tick *k = t->data;
    CHECK_LT(k->n, 4);
    k->fired_ms[k->n++] = ppdb_env_mono_ms(k->env);
}

/* A paused node's timer and arrivals wait for resume, then run in order;
 * a re-armed held timer leaves the held list; crash drops the rest. */
static void test_pause_restart(uint64_t seed)
{
    struct ppdb_sim_link l = {.latency_ms = 1};
    struct pair p;
    pair_init(&p, seed, &l);
    struct tick k = {.env = p.b};
    ppdb_timer_init(&k.t, tick_cb, &k);
    CHECK_OK(ppdb_env_timer_arm(p.b, &k.t, 100));
    CHECK_OK(ppdb_sim_node_pause(p.sim, 1));
    CHECK_ERR(ppdb_sim_node_pause(p.sim, 1), PPDB_EINVAL);
    CHECK(ppdb_sim_node_paused(p.sim, 1));
    CHECK_OK(ppdb_sim_run_for(p.sim, 150));
    send_one(&p, 7, 16);
    CHECK_OK(ppdb_sim_run_for(p.sim, 350));
    CHECK_EQ(k.n, 0);
    CHECK_EQ(p.sink.count, 0);
    CHECK_OK(ppdb_sim_node_resume(p.sim, 1));
    CHECK_OK(ppdb_sim_run_for(p.sim, 0));
    CHECK_EQ(k.n, 1);
    CHECK_EQ(k.fired_ms[0], 500);
    CHECK_EQ(p.sink.count, 1);
    CHECK_EQ(p.sink.delays[0], 350);
    /* held timer canceled while paused */
    CHECK_OK(ppdb_env_timer_arm(p.b, &k.t, 10));
    CHECK_OK(ppdb_sim_node_pause(p.sim, 1));
    CHECK_OK(ppdb_sim_run_for(p.sim, 20));
    CHECK(ppdb_timer_armed(&k.t));
    ppdb_env_timer_cancel(p.b, &k.t);
    CHECK(!ppdb_timer_armed(&k.t));
    CHECK_OK(ppdb_env_timer_arm(p.b, &k.t, 10));
    CHECK_OK(ppdb_sim_run_for(p.sim, 20));
    /* crash while paused drops the held timer; restart revives the env */
    CHECK_OK(ppdb_sim_node_crash(p.sim, 1));
    CHECK(!ppdb_timer_armed(&k.t));
    CHECK(!ppdb_sim_node_paused(p.sim, 1));
    CHECK_EQ(k.n, 1);
    CHECK_ERR(ppdb_sim_node_restart(p.sim, 0), PPDB_EINVAL);
    ppdb_env_udp_close(p.b, p.ub);
    CHECK_OK(ppdb_sim_node_restart(p.sim, 1));
    CHECK(ppdb_sim_node_alive(p.sim, 1));
    struct ppdb_addr bind;
    ppdb_sim_node_addr(p.sim, 1, PORT, &bind);
    CHECK_OK(ppdb_env_udp_open(p.b, &bind, recv_cb, &p.sink, &p.ub));
    send_one(&p, 8, 16);
    CHECK_OK(ppdb_sim_run_for(p.sim, 10));
    CHECK_EQ(p.sink.count, 2);
    /* drift: +1000 ppm is +1 ms per simulated second of wall time */
    int64_t w0 = ppdb_env_wall_ms(p.a);
    ppdb_sim_set_clock_drift(p.sim, 0, 1000.0);
    uint64_t now = ppdb_sim_now_ms(p.sim);
    CHECK_OK(ppdb_sim_run_for(p.sim, 100000));
    CHECK_EQ(ppdb_env_wall_ms(p.a) - w0, 100000 + (int64_t)((now + 100000) / 1000));
    pair_free(&p);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x30de1);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_tails(seed);
    test_dup_reorder(seed);
    test_bandwidth(seed);
    test_partition(seed);
    test_pause_restart(seed);
    check_no_leaks(&base);
    fprintf(stderr, "test_simtool_model: ok\n");
    return 0;
}
