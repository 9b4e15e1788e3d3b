/*
 * test_sim_net.c - the simulated world and its datagram network: virtual
 * time and timers, latency bounds, loss rate, unbound and unknown
 * destinations, link overrides, the in-flight bound, the per-run bound,
 * work_submit, discovery, and what a crash drops.
 */
#include "check.h"
#include "ppdb_sim.h"

static struct ppdb_sim *new_world(uint64_t seed, uint32_t latency_ms, uint32_t jitter_ms,
                                  double loss)
{
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.seed = seed;
    o.link.latency_ms = latency_ms;
    o.link.jitter_ms = jitter_ms;
    o.link.loss = loss;
    struct ppdb_sim *sim;
    CHECK_OK(ppdb_sim_new(&o, &sim));
    return sim;
}

static struct ppdb_env *add(struct ppdb_sim *sim, uint32_t expect_index)
{
    struct ppdb_env *env;
    uint32_t idx;
    CHECK_OK(ppdb_sim_add_node(sim, NULL, &env, &idx));
    CHECK_EQ(idx, expect_index);
    return env;
}

/* ------------------------------------------------------------ time/timers */

struct fired {
    struct ppdb_env *env;
    uint64_t at_ms[8];
    int order[8];
    int count;
};

struct tagged_timer {
    struct ppdb_timer t;
    struct fired *f;
    int tag;
};

static void tagged_cb(struct ppdb_timer *t)
{
    struct tagged_timer *tt = t->data;
    struct fired *f = tt->f;
    CHECK_LT(f->count, 8);
    f->at_ms[f->count] = ppdb_env_mono_ms(f->env);
    f->order[f->count++] = tt->tag;
}

static void test_time_and_timers(void)
{
    struct ppdb_sim *sim = new_world(1, 1, 0, 0);
    struct ppdb_env *a = add(sim, 0);
    struct ppdb_env *b = add(sim, 1);
    struct fired f = {.env = a};
    struct tagged_timer t[4];
    for (int i = 0; i < 4; i++) {
        ppdb_timer_init(&t[i].t, tagged_cb, &t[i]);
        t[i].f = &f;
        t[i].tag = i;
    }
    CHECK_OK(ppdb_env_timer_arm(a, &t[0].t, 50));
    CHECK_OK(ppdb_env_timer_arm(b, &t[1].t, 20));
    CHECK_OK(ppdb_env_timer_arm(a, &t[2].t, 20)); /* same due as t1: arm order */
    CHECK_OK(ppdb_env_timer_arm(b, &t[3].t, 30));
    ppdb_env_timer_cancel(b, &t[3].t);
    ppdb_env_timer_cancel(b, &t[3].t); /* idempotent */
    CHECK_OK(ppdb_sim_run_until(sim, 40));
    CHECK_EQ(f.count, 2);
    CHECK_EQ(f.order[0], 1);
    CHECK_EQ(f.order[1], 2);
    CHECK_EQ(f.at_ms[0], 20);
    CHECK_EQ(ppdb_sim_now_ms(sim), 40);
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    CHECK_EQ(f.count, 3);
    CHECK_EQ(f.at_ms[2], 50);
    CHECK_EQ(ppdb_env_mono_ms(b), 140);
    ppdb_sim_set_clock_skew(sim, 1, -250);
    CHECK_EQ(ppdb_env_wall_ms(a), 1700000000000ll + 140);
    CHECK_EQ(ppdb_env_wall_ms(b), 1700000000000ll + 140 - 250);
    CHECK_ERR(ppdb_sim_step(sim), PPDB_ENOTFOUND);
    /* randomness differs per node and is reproducible */
    uint64_t ra = ppdb_env_random_u64(a), rb = ppdb_env_random_u64(b);
    CHECK(ra != rb);
    CHECK_STREQ(a->log->name, "n0");
    ppdb_sim_free(sim);
}

/* ---------------------------------------------------------------- datagrams */

struct rx {
    struct ppdb_env *env;
    uint64_t count;
    uint64_t min_delay_ms, max_delay_ms;
    uint64_t bytes;
    struct ppdb_addr last_from;
};

static void rx_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from, const uint8_t *buf,
                  size_t len)
{
    struct rx *r = data;
    CHECK_EQ(len, 8);
    uint64_t sent = ppdb_load_u64le(buf);
    uint64_t delay = ppdb_env_mono_ms(r->env) - sent;
    if (r->count == 0 || delay < r->min_delay_ms)
        r->min_delay_ms = delay;
    if (delay > r->max_delay_ms)
        r->max_delay_ms = delay;
    r->count++;
    r->bytes += len;
    r->last_from = *from;
}

static void send_stamp(struct ppdb_env *env, struct ppdb_udp *u, const struct ppdb_addr *to)
{
    uint8_t buf[8];
    ppdb_store_u64le(buf, ppdb_env_mono_ms(env));
    CHECK_OK(ppdb_env_udp_send(env, u, to, buf, sizeof(buf)));
}

static void test_latency_bounds(uint64_t seed)
{
    struct ppdb_sim *sim = new_world(seed, 10, 5, 0);
    struct ppdb_env *a = add(sim, 0), *b = add(sim, 1);
    struct rx ra = {.env = a}, rb = {.env = b};
    struct ppdb_udp *ua, *ub;
    struct ppdb_addr bind, to, local;
    ppdb_sim_node_addr(sim, 1, 7000, &bind);
    CHECK_OK(ppdb_env_udp_open(b, &bind, rx_cb, &rb, &ub));
    CHECK_ERR(ppdb_env_udp_open(b, &bind, rx_cb, &rb, &ub), PPDB_EADDRINUSE);
    CHECK_ERR(ppdb_env_udp_open(a, &bind, rx_cb, &ra, &ua), PPDB_EINVAL); /* not a's */
    CHECK_OK(ppdb_env_udp_open(a, NULL, rx_cb, &ra, &ua));                /* ephemeral */
    CHECK_OK(ppdb_env_udp_local_addr(a, ua, &local));
    CHECK_GE(local.port, 49152);
    to = bind;
    for (int i = 0; i < 2000; i++) {
        send_stamp(a, ua, &to);
        CHECK_OK(ppdb_sim_run_for(sim, 1));
    }
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    CHECK_EQ(rb.count, 2000);
    CHECK_EQ(rb.min_delay_ms, 10);
    CHECK_EQ(rb.max_delay_ms, 15);
    CHECK(ppdb_addr_equal(&rb.last_from, &local));
    struct ppdb_sim_stats st;
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.datagrams_sent, 2000);
    CHECK_EQ(st.datagrams_delivered, 2000);
    CHECK_EQ(st.overflow, 0);
    struct ppdb_sim_node_stats ns;
    ppdb_sim_node_stats(sim, 0, &ns);
    CHECK_EQ(ns.bytes_sent, 2000 * 8);
    /* a per-link override applies to that direction only */
    struct ppdb_sim_link slow = {.latency_ms = 100, .jitter_ms = 0, .loss = 0};
    CHECK_OK(ppdb_sim_set_link(sim, 0, 1, &slow));
    rb = (struct rx){.env = b};
    send_stamp(a, ua, &to);
    CHECK_OK(ppdb_sim_run_for(sim, 200));
    CHECK_EQ(rb.count, 1);
    CHECK_EQ(rb.min_delay_ms, 100);
    CHECK_OK(ppdb_sim_set_link(sim, 0, 1, NULL));
    rb = (struct rx){.env = b};
    send_stamp(a, ua, &to);
    CHECK_OK(ppdb_sim_run_for(sim, 200));
    CHECK_LE(rb.min_delay_ms, 15);
    ppdb_env_udp_close(a, ua);
    ppdb_env_udp_close(b, ub);
    ppdb_sim_free(sim);
}

static void test_loss_rate(uint64_t seed)
{
    const int n = 20000;
    const double loss = 0.2;
    struct ppdb_sim *sim = new_world(seed, 2, 3, loss);
    struct ppdb_env *a = add(sim, 0), *b = add(sim, 1);
    struct rx rb = {.env = b}, ra = {.env = a};
    struct ppdb_udp *ua, *ub;
    struct ppdb_addr to;
    ppdb_sim_node_addr(sim, 1, 9, &to);
    CHECK_OK(ppdb_env_udp_open(b, &to, rx_cb, &rb, &ub));
    CHECK_OK(ppdb_env_udp_open(a, NULL, rx_cb, &ra, &ua));
    for (int i = 0; i < n; i++)
        send_stamp(a, ua, &to);
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    /* binomial(n, 0.8): sd = sqrt(n p q) ~ 57; allow 5 sd */
    double expect = n * (1 - loss), sd = 56.6;
    fprintf(stderr, "loss: delivered %llu of %d (expect %.0f +- %.0f)\n",
            (unsigned long long)rb.count, n, expect, 5 * sd);
    CHECK_GE((double)rb.count, expect - 5 * sd);
    CHECK_LE((double)rb.count, expect + 5 * sd);
    struct ppdb_sim_stats st;
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.dropped_loss + st.datagrams_delivered, (uint64_t)n);
    ppdb_env_udp_close(a, ua);
    ppdb_env_udp_close(b, ub);
    ppdb_sim_free(sim);
}

static void test_unbound_and_limits(void)
{
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.max_events = 10;
    o.max_events_per_run = 5;
    o.max_datagram = 100;
    struct ppdb_sim *sim;
    CHECK_OK(ppdb_sim_new(&o, &sim));
    struct ppdb_env *a = add(sim, 0);
    (void)add(sim, 1);
    struct rx ra = {.env = a};
    struct ppdb_udp *ua;
    CHECK_OK(ppdb_env_udp_open(a, NULL, rx_cb, &ra, &ua));
    struct ppdb_addr nobody_port, nobody_host, outside;
    ppdb_sim_node_addr(sim, 1, 4444, &nobody_port);
    ppdb_sim_node_addr(sim, 77, 4444, &nobody_host);
    ppdb_addr_ipv4(&outside, 10, 0, 0, 1, 4444);
    uint8_t big[101] = {0};
    send_stamp(a, ua, &nobody_port);
    send_stamp(a, ua, &nobody_host);
    CHECK_ERR(ppdb_env_udp_send(a, ua, &outside, big, 8), PPDB_EINVAL);
    CHECK_ERR(ppdb_env_udp_send(a, ua, &nobody_port, big, sizeof(big)), PPDB_ERANGE);
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    struct ppdb_sim_stats st;
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.dropped_unbound, 2);
    CHECK_EQ(st.send_errors, 2);
    /* the in-flight bound: the 11th datagram is refused and counted */
    for (int i = 0; i < 10; i++)
        send_stamp(a, ua, &nobody_port);
    uint8_t b8[8] = {0};
    CHECK_ERR(ppdb_env_udp_send(a, ua, &nobody_port, b8, 8), PPDB_ELIMIT);
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.dropped_limit, 1);
    CHECK_EQ(st.events_live, 10);
    /* the per-run bound: 10 events, 5 per call */
    CHECK_ERR(ppdb_sim_run_for(sim, 100), PPDB_ELIMIT);
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.run_limit_hits, 1);
    CHECK_EQ(st.events_live, 0);
    CHECK_EQ(st.dropped_unbound, 12);
    ppdb_env_udp_close(a, ua);
    ppdb_sim_free(sim);
}

/* One node's extra traffic must not shift another node's draws: node 1's
 * delays to node 2 are the same whether or not node 0 sent first. */
static void delays_of_node1(uint64_t seed, int extra_from_node0, uint64_t *delays, int n)
{
    struct ppdb_sim *sim = new_world(seed, 1, 30, 0.3);
    struct ppdb_env *e0 = add(sim, 0), *e1 = add(sim, 1), *e2 = add(sim, 2);
    struct rx r0 = {.env = e0}, r1 = {.env = e1}, r2 = {.env = e2};
    struct ppdb_udp *u0, *u1, *u2;
    struct ppdb_addr to;
    ppdb_sim_node_addr(sim, 2, 5, &to);
    CHECK_OK(ppdb_env_udp_open(e0, NULL, rx_cb, &r0, &u0));
    CHECK_OK(ppdb_env_udp_open(e1, NULL, rx_cb, &r1, &u1));
    CHECK_OK(ppdb_env_udp_open(e2, &to, rx_cb, &r2, &u2));
    for (int i = 0; i < extra_from_node0; i++)
        send_stamp(e0, u0, &to);
    (void)ppdb_env_random_u64(e0);
    for (int i = 0; i < n; i++) {
        CHECK_OK(ppdb_sim_run_for(sim, 100)); /* node 0's datagrams are gone by now */
        r2 = (struct rx){.env = e2};
        send_stamp(e1, u1, &to);
        CHECK_OK(ppdb_sim_run_for(sim, 100));
        delays[i] = r2.count ? r2.min_delay_ms : UINT64_MAX;
    }
    ppdb_env_udp_close(e0, u0);
    ppdb_env_udp_close(e1, u1);
    ppdb_env_udp_close(e2, u2);
    ppdb_sim_free(sim);
}

static void test_draws_isolated(uint64_t seed)
{
    uint64_t a[64], b[64], c[64];
    delays_of_node1(seed, 0, a, 64);
    delays_of_node1(seed, 7, b, 64);
    delays_of_node1(seed + 1, 0, c, 64);
    CHECK_MEMEQ(a, b, sizeof(a));
    CHECK(memcmp(a, c, sizeof(a)) != 0);
}

/* ------------------------------------------------------------------- work */

struct work_state {
    struct ppdb_env *env;
    int worked, done;
    uint64_t done_at_ms;
};

static void work_fn(void *data)
{
    ((struct work_state *)data)->worked++;
}

static void work_done_cb(void *data, int status)
{
    struct work_state *w = data;
    CHECK_EQ(status, 0);
    CHECK_EQ(w->worked, 1);
    w->done++;
    w->done_at_ms = ppdb_env_mono_ms(w->env);
}

static void test_work(void)
{
    struct ppdb_sim *sim = new_world(3, 1, 0, 0);
    struct ppdb_env *a = add(sim, 0);
    struct work_state w = {.env = a};
    CHECK_OK(ppdb_sim_run_for(sim, 10));
    CHECK_OK(ppdb_env_work_submit(a, work_fn, work_done_cb, &w));
    CHECK_EQ(w.worked, 0); /* never inside the call */
    CHECK_OK(ppdb_sim_run_for(sim, 10));
    CHECK_EQ(w.done, 1);
    CHECK_EQ(w.done_at_ms, 11);
    ppdb_sim_free(sim);
}

/* -------------------------------------------------------------- discovery */

struct seen {
    int up[4], down[4];
    int total;
};

static void seen_cb(void *data, const struct ppdb_service *svc, bool up)
{
    struct seen *s = data;
    int who = svc->name[0] - '0';
    CHECK(who >= 0 && who < 4);
    if (up)
        s->up[who]++;
    else
        s->down[who]++;
    s->total++;
}

static void announce_as(struct ppdb_sim *sim, struct ppdb_env *env, uint32_t idx, char tag)
{
    struct ppdb_service svc;
    memset(&svc, 0, sizeof(svc));
    svc.name[0] = tag;
    ppdb_sim_node_addr(sim, idx, 7000, &svc.addr);
    svc.txt_count = 1;
    strcpy(svc.txt[0], "v=1");
    CHECK_OK(ppdb_env_announce(env, &svc));
}

static void test_discovery(void)
{
    struct ppdb_sim *sim = new_world(4, 5, 0, 0);
    struct ppdb_env *e[4];
    for (uint32_t i = 0; i < 4; i++)
        e[i] = add(sim, i);
    struct seen early = {0}, late = {0}, other = {0};
    CHECK_OK(ppdb_env_browse(e[0], "_ppdb._udp", seen_cb, &early));
    CHECK_OK(ppdb_env_browse(e[3], "_other._tcp", seen_cb, &other));
    announce_as(sim, e[1], 1, '1');
    announce_as(sim, e[2], 2, '2');
    CHECK_EQ(early.total, 0); /* after the link delay, never inside the call */
    CHECK_OK(ppdb_sim_run_for(sim, 4));
    CHECK_EQ(early.total, 0);
    CHECK_OK(ppdb_sim_run_for(sim, 1));
    CHECK_EQ(early.up[1], 1);
    CHECK_EQ(early.up[2], 1);
    CHECK_OK(ppdb_env_browse(e[3], "_ppdb._udp", seen_cb, &late)); /* sees current ones */
    CHECK_OK(ppdb_sim_run_for(sim, 10));
    CHECK_EQ(late.up[1], 1);
    CHECK_EQ(late.up[2], 1);
    ppdb_env_withdraw(e[1]);
    CHECK_OK(ppdb_sim_run_for(sim, 10));
    CHECK_EQ(early.down[1], 1);
    CHECK_EQ(late.down[1], 1);
    /* a crash withdraws too, and the crashed browser hears nothing more */
    CHECK_OK(ppdb_sim_node_crash(sim, 2));
    CHECK_OK(ppdb_sim_run_for(sim, 10));
    CHECK_EQ(early.down[2], 1);
    CHECK_EQ(late.down[2], 1);
    CHECK_OK(ppdb_sim_node_crash(sim, 3));
    announce_as(sim, e[1], 1, '1');
    CHECK_OK(ppdb_sim_run_for(sim, 10));
    CHECK_EQ(early.up[1], 2);
    CHECK_EQ(late.up[1], 1);
    CHECK_EQ(other.total, 0);
    CHECK_ERR(ppdb_env_browse(e[3], "_ppdb._udp", seen_cb, &late), PPDB_ECLOSED);
    ppdb_sim_free(sim);
}

/* ------------------------------------------------------------------ crash */

static void count_cb(struct ppdb_timer *t)
{
    (*(int *)t->data)++;
}

static void test_crash(void)
{
    struct ppdb_sim *sim = new_world(5, 10, 0, 0);
    struct ppdb_env *a = add(sim, 0), *b = add(sim, 1), *c = add(sim, 2);
    struct rx ra = {.env = a}, rb = {.env = b}, rc = {.env = c};
    struct ppdb_udp *ua, *ub, *uc;
    struct ppdb_addr aa, ab, ac;
    ppdb_sim_node_addr(sim, 0, 7, &aa);
    ppdb_sim_node_addr(sim, 1, 7, &ab);
    ppdb_sim_node_addr(sim, 2, 7, &ac);
    CHECK_OK(ppdb_env_udp_open(a, &aa, rx_cb, &ra, &ua));
    CHECK_OK(ppdb_env_udp_open(b, &ab, rx_cb, &rb, &ub));
    CHECK_OK(ppdb_env_udp_open(c, &ac, rx_cb, &rc, &uc));
    int fired_b = 0, fired_a = 0;
    struct ppdb_timer tb, ta;
    ppdb_timer_init(&tb, count_cb, &fired_b);
    ppdb_timer_init(&ta, count_cb, &fired_a);
    CHECK_OK(ppdb_env_timer_arm(b, &tb, 5));
    CHECK_OK(ppdb_env_timer_arm(a, &ta, 5));
    send_stamp(a, ua, &ab); /* to b: dropped by the crash */
    send_stamp(b, ub, &ac); /* from b: still arrives */
    struct ppdb_sim_stats st;
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.queue_len, 4);
    CHECK_OK(ppdb_sim_node_crash(sim, 1));
    CHECK_ERR(ppdb_sim_node_crash(sim, 1), PPDB_EINVAL);
    CHECK(!ppdb_sim_node_alive(sim, 1));
    CHECK(!ppdb_timer_armed(&tb));
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.queue_len, 2);
    CHECK_EQ(st.dropped_down, 1);
    uint8_t b8[8] = {0};
    CHECK_ERR(ppdb_env_udp_send(b, ub, &ac, b8, 8), PPDB_ECLOSED);
    CHECK_ERR(ppdb_env_timer_arm(b, &tb, 5), PPDB_ECLOSED);
    send_stamp(a, ua, &ab); /* b's socket is gone */
    CHECK_OK(ppdb_sim_run_for(sim, 100));
    CHECK_EQ(fired_b, 0);
    CHECK_EQ(fired_a, 1);
    CHECK_EQ(rb.count, 0);
    CHECK_EQ(rc.count, 1);
    ppdb_sim_stats(sim, &st);
    CHECK_EQ(st.crashes, 1);
    CHECK_EQ(st.dropped_unbound + st.dropped_down, 2);
    ppdb_env_udp_close(b, ub); /* closing after a crash only frees */
    ppdb_env_udp_close(a, ua);
    ppdb_env_udp_close(c, uc);
    ppdb_sim_free(sim);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x5eed);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_time_and_timers();
    test_latency_bounds(seed);
    test_loss_rate(seed);
    test_unbound_and_limits();
    test_draws_isolated(seed);
    test_work();
    test_discovery();
    test_crash();
    check_no_leaks(&base);
    fprintf(stderr, "test_sim_net: ok\n");
    return 0;
}
