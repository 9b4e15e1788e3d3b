/*
 * test_sim_determinism.c - a seed replays a whole world.
 *
 * A small protocol written for this test exercises every part of the world
 * at once: each node ticks at random intervals and either sends a datagram
 * of random bytes to a random peer (who sometimes answers) or opens a stream
 * to a random peer, writes random bytes and shuts down; the peer echoes them
 * and ends the stream. Links have latency, jitter and loss, some nodes crash
 * midway. Two runs with one seed must give the same trace hash and the same
 * counters; another seed must give a different hash.
 */
#include <time.h>

#include "check.h"
#include "ppdb_sim.h"

#define NODES    300
#define SLOTS    6
#define RUN_MS   30000
#define PORT_UDP 7000
#define PORT_TCP 7001

struct world;
struct node;

struct slot {
    struct node *node;
    struct ppdb_stream *s;
    bool used, client;
    uint32_t sent, got;
};

struct node {
    struct world *w;
    struct ppdb_env *env;
    uint32_t idx;
    struct ppdb_udp *u;
    struct ppdb_listener *l;
    struct ppdb_timer tick;
    struct slot slots[SLOTS];
};

struct counts {
    uint64_t dgrams_rx, replies_rx, connects_ok, refused, echoes_ok, resets, busy, accepted;
};

struct world {
    struct ppdb_sim *sim;
    struct node nodes[NODES];
    struct counts c;
};

static struct slot *free_slot(struct node *n)
{
    for (int i = 0; i < SLOTS; i++)
        if (!n->slots[i].used) {
            n->slots[i] = (struct slot){.node = n, .used = true};
            return &n->slots[i];
        }
    return NULL;
}

static void slot_closed_cb(void *data)
{
    ((struct slot *)data)->used = false;
}

static void slot_close(struct slot *sl)
{
    ppdb_env_stream_close(sl->node->env, sl->s, slot_closed_cb, sl);
    sl->s = NULL;
}

static void random_peer(struct node *n, uint16_t port, struct ppdb_addr *out)
{
    uint32_t to = (uint32_t)ppdb_env_random_below(n->env, NODES - 1);
    if (to >= n->idx)
        to++;
    ppdb_sim_node_addr(n->w->sim, to, port, out);
}

/* ---------------------------------------------------------------- streams */

static void read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len, int status)
{
    struct slot *sl = data;
    struct node *n = sl->node;
    if (status == 0 && !sl->client) { /* server: echo */
        sl->got += (uint32_t)len;
        int rc = ppdb_env_stream_write(n->env, s, buf, len, NULL, NULL);
        CHECK(rc == 0 || rc == PPDB_ECONNRESET);
        return;
    }
    if (status == 0) {
        sl->got += (uint32_t)len;
        return;
    }
    if (status == PPDB_ECLOSED && sl->client) {
        CHECK_EQ(sl->got, sl->sent);
        n->w->c.echoes_ok++;
    } else if (status == PPDB_ECLOSED) {
        CHECK_OK(ppdb_env_stream_shutdown(n->env, s)); /* after the echoes */
    } else {
        CHECK_EQ(status, PPDB_ECONNRESET);
        n->w->c.resets++;
    }
    slot_close(sl);
}

static void accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct node *n = data;
    struct slot *sl = free_slot(n);
    if (!sl) {
        n->w->c.busy++;
        ppdb_env_stream_close(n->env, s, NULL, NULL); /* the caller reads a reset */
        return;
    }
    n->w->c.accepted++;
    sl->s = s;
    CHECK_OK(ppdb_env_stream_read_start(n->env, s, read_cb, sl));
}

static void connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct slot *sl = data;
    struct node *n = sl->node;
    if (status) {
        CHECK_EQ(status, PPDB_ECONNREFUSED);
        n->w->c.refused++;
        sl->used = false;
        return;
    }
    n->w->c.connects_ok++;
    sl->s = s;
    CHECK_OK(ppdb_env_stream_read_start(n->env, s, read_cb, sl));
    uint8_t buf[256];
    size_t len = 1 + ppdb_env_random_below(n->env, sizeof(buf));
    ppdb_env_random(n->env, buf, len);
    sl->sent = (uint32_t)len;
    CHECK_OK(ppdb_env_stream_write(n->env, s, buf, len, NULL, NULL));
    CHECK_OK(ppdb_env_stream_shutdown(n->env, s));
}

/* -------------------------------------------------------------- datagrams */

static void udp_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from, const uint8_t *buf,
                   size_t len)
{
    struct node *n = data;
    if (len > 0 && buf[0] == 0xff) {
        n->w->c.replies_rx++;
        return;
    }
    n->w->c.dgrams_rx++;
    if (ppdb_env_random_below(n->env, 4) == 0) {
        uint8_t reply[3] = {0xff, (uint8_t)len, (uint8_t)n->idx};
        CHECK_OK(ppdb_env_udp_send(n->env, u, from, reply, sizeof(reply)));
    }
}

static void tick_cb(struct ppdb_timer *t)
{
    struct node *n = t->data;
    struct ppdb_addr to;
    if (ppdb_env_random_below(n->env, 10) < 8) {
        uint8_t buf[64];
        size_t len = 1 + ppdb_env_random_below(n->env, sizeof(buf));
        ppdb_env_random(n->env, buf, len);
        buf[0] &= 0x7f;
        random_peer(n, PORT_UDP, &to);
        CHECK_OK(ppdb_env_udp_send(n->env, n->u, &to, buf, len));
    } else {
        struct slot *sl = free_slot(n);
        if (sl) {
            sl->client = true;
            random_peer(n, PORT_TCP, &to);
            CHECK_OK(ppdb_env_connect(n->env, &to, connect_cb, sl));
        }
    }
    CHECK_OK(ppdb_env_timer_arm(n->env, t, 50 + ppdb_env_random_below(n->env, 250)));
}

/* ------------------------------------------------------------------ world */

static void node_start(struct world *w, uint32_t i)
{
    struct node *n = &w->nodes[i];
    n->w = w;
    n->idx = i;
    CHECK_OK(ppdb_sim_add_node(w->sim, NULL, &n->env, &(uint32_t){0}));
    struct ppdb_addr a;
    ppdb_sim_node_addr(w->sim, i, PORT_UDP, &a);
    CHECK_OK(ppdb_env_udp_open(n->env, &a, udp_cb, n, &n->u));
    a.port = PORT_TCP;
    CHECK_OK(ppdb_env_listen(n->env, &a, accept_cb, n, &n->l));
    ppdb_timer_init(&n->tick, tick_cb, n);
    CHECK_OK(ppdb_env_timer_arm(n->env, &n->tick, ppdb_env_random_below(n->env, 300)));
}

/* A crashed node's protocol state is dropped by its owner: here, closing
 * handles only frees them (no callback of a crashed node runs). */
static void node_teardown(struct node *n)
{
    ppdb_env_timer_cancel(n->env, &n->tick);
    for (int i = 0; i < SLOTS; i++) {
        if (n->slots[i].used && n->slots[i].s)
            ppdb_env_stream_close(n->env, n->slots[i].s, NULL, NULL);
        n->slots[i].used = false;
    }
    ppdb_env_udp_close(n->env, n->u);
    ppdb_env_listener_close(n->env, n->l);
}

struct outcome {
    uint64_t trace;
    struct counts c;
    struct ppdb_sim_stats st;
};

static void run_world(uint64_t seed, struct outcome *out)
{
    struct world *w = ppdb_calloc(1, sizeof(*w));
    CHECK(w != NULL);
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.seed = seed;
    o.link = (struct ppdb_sim_link){.latency_ms = 3, .jitter_ms = 12, .loss = 0.05};
    CHECK_OK(ppdb_sim_new(&o, &w->sim));
    for (uint32_t i = 0; i < NODES; i++)
        node_start(w, i);
    struct ppdb_sim_link slow = {.latency_ms = 80, .jitter_ms = 40, .loss = 0.3};
    CHECK_OK(ppdb_sim_set_link(w->sim, 1, 2, &slow));
    for (uint32_t wave = 0; wave < 3; wave++) { /* some nodes die mid-run */
        CHECK_OK(ppdb_sim_run_until(w->sim, RUN_MS / 4 * (wave + 1) + 7 * wave));
        for (uint32_t i = wave * 17; i < NODES; i += 40) {
            CHECK_OK(ppdb_sim_node_crash(w->sim, i));
            node_teardown(&w->nodes[i]);
        }
    }
    ppdb_sim_set_clock_skew(w->sim, 7, 1234);
    CHECK_OK(ppdb_sim_run_until(w->sim, RUN_MS));
    out->trace = ppdb_sim_trace_hash(w->sim);
    out->c = w->c;
    ppdb_sim_stats(w->sim, &out->st);
    for (uint32_t i = 0; i < NODES; i++)
        if (ppdb_sim_node_alive(w->sim, i))
            node_teardown(&w->nodes[i]);
    ppdb_sim_free(w->sim);
    ppdb_free(w);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_outcome(const char *what, uint64_t seed, const struct outcome *r, double secs)
{
    fprintf(stderr,
            "%s seed=%llu trace=%016llx events=%llu (%.0f/s, %.2f s) dgrams=%llu "
            "delivered=%llu lost=%llu down=%llu replies=%llu connects=%llu echoes=%llu "
            "refused=%llu resets=%llu busy=%llu queue_max=%u\n",
            what, (unsigned long long)seed, (unsigned long long)r->trace,
            (unsigned long long)r->st.events_processed, (double)r->st.events_processed / secs, secs,
            (unsigned long long)r->st.datagrams_sent, (unsigned long long)r->st.datagrams_delivered,
            (unsigned long long)r->st.dropped_loss, (unsigned long long)r->st.dropped_down,
            (unsigned long long)r->c.replies_rx, (unsigned long long)r->c.connects_ok,
            (unsigned long long)r->c.echoes_ok, (unsigned long long)r->c.refused,
            (unsigned long long)r->c.resets, (unsigned long long)r->c.busy, r->st.queue_len_max);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0xd373);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    struct outcome a, b, c;
    double t0 = now_s();
    run_world(seed, &a);
    double t1 = now_s();
    run_world(seed, &b);
    double t2 = now_s();
    run_world(seed + 1, &c);
    double t3 = now_s();
    print_outcome("run1", seed, &a, t1 - t0);
    print_outcome("run2", seed, &b, t2 - t1);
    print_outcome("run3", seed + 1, &c, t3 - t2);
    CHECK_EQ_U64(a.trace, b.trace);
    CHECK_MEMEQ(&a.c, &b.c, sizeof(a.c));
    CHECK_EQ(a.st.events_processed, b.st.events_processed);
    CHECK_EQ(a.st.datagrams_delivered, b.st.datagrams_delivered);
    CHECK(a.trace != c.trace);
    /* the world did what the protocol asked, with every kind of outcome */
    CHECK_GT(a.st.events_processed, 100000);
    CHECK_GT(a.c.echoes_ok, 1000);
    CHECK_GT(a.c.replies_rx, 1000);
    CHECK_GT(a.c.refused, 0); /* connects to crashed nodes */
    CHECK_GT(a.st.dropped_loss, 0);
    CHECK_GT(a.st.dropped_down, 0);
    double loss_rate = (double)a.st.dropped_loss / (double)a.st.datagrams_sent;
    CHECK(loss_rate > 0.04 && loss_rate < 0.06);
    CHECK_EQ(a.st.overflow, 0);
    check_no_leaks(&base);
    fprintf(stderr, "test_sim_determinism: ok\n");
    return 0;
}
