/*
 * test_sim_pingpong.c - the real ping/pong protocol (peer/pingpong.h), run
 * unchanged on 1,000 simulated nodes (argv[2]: another count) for 60
 * simulated seconds with 5% loss.
 *
 * Every node pings a random peer at random intervals; pings retry on
 * timeout. Two runs with one seed must give the same trace hash and the
 * same outcome counts, another seed a different hash; the outcomes must be
 * sane: nearly every ping answered, retries caused by the loss, round trips
 * within the link model's bounds.
 */
#include <time.h>

#include "check.h"
#include "pingpong.h"
#include "ppdb_sim.h"

#define NODES_DEFAULT 1000
#define RUN_MS        60000
#define PORT          7000
#define LATENCY_MS    5
#define JITTER_MS     10
#define LOSS          0.05

struct node {
    struct ppdb_sim *sim;
    struct ppdb_env *env;
    uint32_t idx, count;
    struct ppdb_udp *u;
    struct ppdb_pingpong pp;
    struct ppdb_timer tick;
    struct tally *tally;
};

struct tally {
    uint64_t ok, timed_out, retried, rtt_min_ms, rtt_max_ms, rtt_sum_ms;
};

static void done_cb(void *data, const struct ppdb_addr *to, int status, uint64_t rtt_ms,
                    uint32_t attempts)
{
    struct node *n = data;
    struct tally *t = n->tally;
    (void)to;
    if (attempts > 1)
        t->retried++;
    if (status != 0) {
        CHECK_EQ(status, PPDB_ETIMEDOUT);
        t->timed_out++;
        return;
    }
    if (t->ok == 0 || rtt_ms < t->rtt_min_ms)
        t->rtt_min_ms = rtt_ms;
    if (rtt_ms > t->rtt_max_ms)
        t->rtt_max_ms = rtt_ms;
    t->rtt_sum_ms += rtt_ms;
    t->ok++;
}

static void udp_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from, const uint8_t *buf,
                   size_t len)
{
    struct node *n = data;
    (void)u;
    int rc = ppdb_pingpong_on_message(&n->pp, from, buf, len);
    CHECK(rc == 0 || rc == PPDB_ENOTFOUND); /* late pongs are normal */
}

static void tick_cb(struct ppdb_timer *t)
{
    struct node *n = t->data;
    uint32_t to = (uint32_t)ppdb_env_random_below(n->env, n->count - 1);
    if (to >= n->idx)
        to++;
    struct ppdb_addr a;
    ppdb_sim_node_addr(n->sim, to, PORT, &a);
    (void)ppdb_pingpong_ping(&n->pp, &a); /* ELIMIT is counted by pingpong */
    CHECK_OK(ppdb_env_timer_arm(n->env, t, 500 + ppdb_env_random_below(n->env, 1000)));
}

struct outcome {
    uint64_t trace, events;
    struct tally tally;
    struct ppdb_pingpong_stats pp; /* summed over nodes */
    struct ppdb_sim_stats st;
    double secs;
};

static void add_stats(struct ppdb_pingpong_stats *sum, const struct ppdb_pingpong_stats *s)
{
    sum->pings_sent += s->pings_sent;
    sum->retries += s->retries;
    sum->pongs_sent += s->pongs_sent;
    sum->successes += s->successes;
    sum->timeouts += s->timeouts;
    sum->late_pongs += s->late_pongs;
    sum->bad_packets += s->bad_packets;
    sum->send_errors += s->send_errors;
    sum->rejected += s->rejected;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void start_node(struct ppdb_sim *sim, struct node *n, uint32_t i, uint32_t count,
                       struct tally *tally)
{
    struct ppdb_pingpong_options po;
    ppdb_pingpong_options_default(&po);
    po.timeout_ms = 200;
    po.max_attempts = 3;
    n->sim = sim;
    n->idx = i;
    n->count = count;
    n->tally = tally;
    CHECK_OK(ppdb_sim_add_node(sim, NULL, &n->env, &(uint32_t){0}));
    struct ppdb_addr a;
    ppdb_sim_node_addr(sim, i, PORT, &a);
    CHECK_OK(ppdb_env_udp_open(n->env, &a, udp_cb, n, &n->u));
    CHECK_OK(ppdb_pingpong_init(&n->pp, n->env, n->u, &po, done_cb, n));
    ppdb_timer_init(&n->tick, tick_cb, n);
    CHECK_OK(ppdb_env_timer_arm(n->env, &n->tick, ppdb_env_random_below(n->env, 1000)));
}

static void run_world(uint64_t seed, uint32_t count, struct outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.seed = seed;
    o.link = (struct ppdb_sim_link){.latency_ms = LATENCY_MS, .jitter_ms = JITTER_MS, .loss = LOSS};
    struct ppdb_sim *sim;
    CHECK_OK(ppdb_sim_new(&o, &sim));
    struct node *nodes = ppdb_calloc(count, sizeof(*nodes));
    CHECK(nodes != NULL);
    double t0 = now_s();
    for (uint32_t i = 0; i < count; i++)
        start_node(sim, &nodes[i], i, count, &out->tally);
    CHECK_OK(ppdb_sim_run_until(sim, RUN_MS));
    out->secs = now_s() - t0;
    out->trace = ppdb_sim_trace_hash(sim);
    ppdb_sim_stats(sim, &out->st);
    for (uint32_t i = 0; i < count; i++) {
        add_stats(&out->pp, &nodes[i].pp.stats);
        ppdb_env_timer_cancel(nodes[i].env, &nodes[i].tick);
        ppdb_pingpong_deinit(&nodes[i].pp);
        ppdb_env_udp_close(nodes[i].env, nodes[i].u);
    }
    ppdb_sim_free(sim);
    ppdb_free(nodes);
}

static void print_outcome(const char *what, uint64_t seed, const struct outcome *r)
{
    fprintf(stderr,
            "%s seed=%llu trace=%016llx events=%llu wall=%.2fs (%.0f events/s) pings=%llu "
            "ok=%llu timeouts=%llu retries=%llu retried=%llu late=%llu rtt=%llu..%llu "
            "avg=%.1fms datagrams=%llu lost=%llu queue_max=%u\n",
            what, (unsigned long long)seed, (unsigned long long)r->trace,
            (unsigned long long)r->st.events_processed, r->secs,
            (double)r->st.events_processed / r->secs, (unsigned long long)r->pp.pings_sent,
            (unsigned long long)r->tally.ok, (unsigned long long)r->tally.timed_out,
            (unsigned long long)r->pp.retries, (unsigned long long)r->tally.retried,
            (unsigned long long)r->pp.late_pongs, (unsigned long long)r->tally.rtt_min_ms,
            (unsigned long long)r->tally.rtt_max_ms,
            r->tally.ok ? (double)r->tally.rtt_sum_ms / (double)r->tally.ok : 0.0,
            (unsigned long long)r->st.datagrams_sent, (unsigned long long)r->st.dropped_loss,
            r->st.queue_len_max);
}

static void check_sane(const struct outcome *r, uint32_t count)
{
    uint64_t finished = r->tally.ok + r->tally.timed_out;
    /* ~1 ping per node per second */
    CHECK_GT(finished, (uint64_t)count * (RUN_MS / 1000) / 2);
    CHECK_EQ(r->tally.ok, r->pp.successes);
    CHECK_EQ(r->tally.timed_out, r->pp.timeouts);
    /* an attempt fails with p = 1 - 0.95^2 ~ 9.75%: most succeed, some retry,
     * all three attempts fail for ~0.1% */
    CHECK_GT(r->tally.ok * 1000, finished * 990);
    CHECK_GT(r->pp.retries * 100, finished * 5);
    CHECK_LT(r->pp.retries * 100, finished * 15);
    CHECK_GT(r->tally.retried, 0);
    CHECK_EQ(r->pp.bad_packets, 0);
    CHECK_EQ(r->pp.send_errors, 0);
    /* round trip = two link delays, each latency + [0, jitter] */
    CHECK_GE(r->tally.rtt_min_ms, 2 * LATENCY_MS);
    CHECK_LE(r->tally.rtt_max_ms, 2 * (LATENCY_MS + JITTER_MS));
    double loss = (double)r->st.dropped_loss / (double)r->st.datagrams_sent;
    CHECK(loss > LOSS - 0.005 && loss < LOSS + 0.005);
    CHECK_EQ(r->st.overflow, 0);
    CHECK_EQ(r->st.dropped_unbound, 0);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x9199);
    uint32_t count = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : NODES_DEFAULT;
    CHECK_GE(count, 2);
    fprintf(stderr, "nodes=%u\n", count);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    struct outcome a, b, c;
    run_world(seed, count, &a);
    print_outcome("run1", seed, &a);
    run_world(seed, count, &b);
    print_outcome("run2", seed, &b);
    run_world(seed ^ 0x5a5a, count, &c);
    print_outcome("run3", seed ^ 0x5a5a, &c);
    CHECK_EQ_U64(a.trace, b.trace);
    CHECK_EQ(a.st.events_processed, b.st.events_processed);
    CHECK_MEMEQ(&a.tally, &b.tally, sizeof(a.tally));
    CHECK_MEMEQ(&a.pp, &b.pp, sizeof(a.pp));
    CHECK(a.trace != c.trace);
    check_sane(&a, count);
    check_sane(&c, count);
    check_no_leaks(&base);
    fprintf(stderr, "test_sim_pingpong: ok\n");
    return 0;
}
