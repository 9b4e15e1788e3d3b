/*
 * test_env_uv.c - the libuv env: timers, time, randomness, work, discovery,
 * datagrams, and two envs on two loops in two threads.
 *
 * Everything runs on loopback with port 0; every loop is guarded by a timer
 * that fails the test. Streams are in test_env_uv_tcp.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "test_env_uv.h"

/* ------------------------------------------------------------ timers */

struct tfire {
    struct ppdb_timer t;
    struct ppdb_env *env;
    uint64_t due_ms; /* captured at arm time */
    uint64_t seq;
    int fired;
    int order; /* position in the firing sequence */
};

struct tlog {
    struct ppdb_env *env;
    int next_order;
    int fired_early; /* fired before its due time */
};

static struct tlog g_tlog; /* the test's own bookkeeping, reset per test */

static void tfire_cb(struct ppdb_timer *t)
{
    struct tfire *f = t->data;
    CHECK(!ppdb_timer_armed(t));
    if (ppdb_env_mono_ms(f->env) < f->due_ms)
        g_tlog.fired_early++;
    f->fired++;
    f->order = g_tlog.next_order++;
}

static int cmp_due_seq(const void *a, const void *b)
{
    const struct tfire *x = *(struct tfire *const *)a, *y = *(struct tfire *const *)b;
    if (x->due_ms != y->due_ms)
        return x->due_ms < y->due_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* n timers at random delays in [0, max_delay_ms]: all fire once, never
 * early, in exactly (due, arm order). */
static void run_timer_order(uint64_t seed, int n, uint64_t max_delay_ms)
{
    struct harness h;
    struct ppdb_env_uv_options o;
    ppdb_env_uv_options_default(&o);
    o.max_timers = (uint32_t)n;
    harness_open(&h, "timer_order", &o, 10000);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    memset(&g_tlog, 0, sizeof(g_tlog));
    struct tfire *f = ppdb_calloc((size_t)n, sizeof(*f));
    struct tfire **sorted = ppdb_calloc((size_t)n, sizeof(*sorted));
    CHECK(f && sorted);
    for (int i = 0; i < n; i++) {
        f[i].env = h.env;
        ppdb_timer_init(&f[i].t, tfire_cb, &f[i]);
        CHECK_OK(ppdb_env_timer_arm(h.env, &f[i].t, ppdb_rng_below(&rng, max_delay_ms + 1)));
        CHECK(!f[i].fired); /* never from inside arm */
        f[i].due_ms = f[i].t.due_ms;
        f[i].seq = f[i].t.seq;
        sorted[i] = &f[i];
    }
    /* The heap is full: one more is refused (and counted, logged once). */
    struct ppdb_timer extra;
    ppdb_timer_init(&extra, tfire_cb, NULL);
    CHECK_ERR(ppdb_env_timer_arm(h.env, &extra, 1), PPDB_ELIMIT);
    CHECK(!ppdb_timer_armed(&extra));
    harness_run(&h);
    qsort(sorted, (size_t)n, sizeof(*sorted), cmp_due_seq);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(sorted[i]->fired, 1);
        CHECK_EQ(sorted[i]->order, i);
    }
    CHECK_EQ(g_tlog.next_order, n);
    CHECK_EQ(g_tlog.fired_early, 0);
    ppdb_free(f);
    ppdb_free(sorted);
    harness_close(&h, 1);
}

/* Cancel before the run, cancel twice, cancel from a callback a timer due
 * at the same time, and re-arm a canceled one from a callback. */
struct cancel_ctx {
    struct ppdb_env *env;
    struct tfire a, b, c, d;
};

static void cancel_a_cb(struct ppdb_timer *t)
{
    struct cancel_ctx *x = t->data;
    x->a.fired++;
    CHECK(ppdb_timer_armed(&x->b.t)); /* same due time, armed later: still pending */
    ppdb_env_timer_cancel(x->env, &x->b.t);
    ppdb_env_timer_cancel(x->env, &x->b.t);
    CHECK_OK(ppdb_env_timer_arm(x->env, &x->c.t, 0)); /* re-arm a canceled timer */
    CHECK_EQ(x->c.fired, 0);
}

static void test_timer_cancel(void)
{
    struct harness h;
    harness_open(&h, "timer_cancel", NULL, 5000);
    memset(&g_tlog, 0, sizeof(g_tlog));
    static struct tfire many[100];
    for (int i = 0; i < 100; i++) {
        many[i] = (struct tfire){.env = h.env};
        ppdb_timer_init(&many[i].t, tfire_cb, &many[i]);
        CHECK_OK(ppdb_env_timer_arm(h.env, &many[i].t, (uint64_t)(i % 7)));
    }
    for (int i = 0; i < 100; i += 2) {
        ppdb_env_timer_cancel(h.env, &many[i].t);
        ppdb_env_timer_cancel(h.env, &many[i].t); /* idempotent */
        CHECK(!ppdb_timer_armed(&many[i].t));
    }
    struct cancel_ctx x = {.env = h.env};
    ppdb_timer_init(&x.a.t, cancel_a_cb, &x);
    x.b.env = x.c.env = x.d.env = h.env;
    ppdb_timer_init(&x.b.t, tfire_cb, &x.b);
    ppdb_timer_init(&x.c.t, tfire_cb, &x.c);
    ppdb_timer_init(&x.d.t, tfire_cb, &x.d);
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.a.t, 3));
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.b.t, 3));
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.c.t, 50));
    ppdb_env_timer_cancel(h.env, &x.c.t);
    /* A timer that is armed and canceled alone lets the loop end at once. */
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.d.t, 60000));
    ppdb_env_timer_cancel(h.env, &x.d.t);
    uint64_t t0 = ppdb_env_mono_ms(h.env);
    harness_run(&h);
    CHECK_LT(ppdb_env_mono_ms(h.env) - t0, 1000);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(many[i].fired, i % 2);
    CHECK_EQ(x.a.fired, 1);
    CHECK_EQ(x.b.fired, 0);
    CHECK_EQ(x.c.fired, 1);
    CHECK_EQ(x.d.fired, 0);
    harness_close(&h, 0);
}

/* A timer re-arming itself; a 0-delay self re-arm does not starve others. */
struct rearm_ctx {
    struct ppdb_env *env;
    struct ppdb_timer self1, spin, other;
    int self1_count, spin_count, other_at_spin;
    uint64_t last_ms;
};

static void self1_cb(struct ppdb_timer *t)
{
    struct rearm_ctx *x = t->data;
    uint64_t now = ppdb_env_mono_ms(x->env);
    CHECK_GE(now, x->last_ms + 1);
    x->last_ms = now;
    if (++x->self1_count < 20)
        CHECK_OK(ppdb_env_timer_arm(x->env, t, 1));
}

static void spin_cb(struct ppdb_timer *t)
{
    struct rearm_ctx *x = t->data;
    if (++x->spin_count < 50)
        CHECK_OK(ppdb_env_timer_arm(x->env, t, 0));
}

static void other_cb(struct ppdb_timer *t)
{
    struct rearm_ctx *x = t->data;
    x->other_at_spin = x->spin_count;
}

static void test_timer_rearm(void)
{
    struct harness h;
    harness_open(&h, "timer_rearm", NULL, 5000);
    struct rearm_ctx x = {.env = h.env};
    ppdb_timer_init(&x.self1, self1_cb, &x);
    ppdb_timer_init(&x.spin, spin_cb, &x);
    ppdb_timer_init(&x.other, other_cb, &x);
    x.last_ms = ppdb_env_mono_ms(h.env);
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.self1, 1));
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.spin, 0));
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.other, 10));
    harness_run(&h);
    CHECK_EQ(x.self1_count, 20);
    CHECK_EQ(x.spin_count, 50);
    /* The 10 ms timer ran while the 0-delay spinner was still going. */
    CHECK_GT(x.other_at_spin, 0);
    CHECK_LT(x.other_at_spin, 50);
    harness_close(&h, 0);
}

/* ------------------------------------------------- time, random, work */

static void test_time_random(void)
{
    struct harness h;
    harness_open(&h, "time_random", NULL, 5000);
    int64_t wall = ppdb_env_wall_ms(h.env);
    int64_t sys_ms = (int64_t)time(NULL) * 1000;
    CHECK_LT(llabs(wall - sys_ms), 5000);
    uint64_t m0 = ppdb_env_mono_ms(h.env);
    uint64_t m1 = ppdb_env_mono_ms(h.env);
    CHECK_LE(m0, m1);
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    ppdb_env_random(h.env, a, sizeof(a));
    ppdb_env_random(h.env, b, sizeof(b));
    CHECK(memcmp(a, zero, sizeof(a)) != 0);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    CHECK_LT(ppdb_env_random_below(h.env, 10), 10);
    /* Discovery is not wired up yet: the env says so, it does not pretend. */
    struct ppdb_service svc;
    memset(&svc, 0, sizeof(svc));
    CHECK_ERR(ppdb_env_announce(h.env, &svc), PPDB_EUNAVAIL);
    CHECK_ERR(ppdb_env_browse(h.env, "_ppdb._udp", NULL, NULL), PPDB_EUNAVAIL);
    ppdb_env_withdraw(h.env);
    harness_run(&h);
    harness_close(&h, 0);
}

#define WORK_N 64

struct work_ctx {
    pthread_t loop_thread;
    int ran[WORK_N];
    int off_loop[WORK_N];
    int done[WORK_N];
    int submitting;
    int done_count;
};

struct work_item {
    struct work_ctx *x;
    int i;
};

static void work_fn(void *data)
{
    struct work_item *w = data;
    w->x->ran[w->i] = 1;
    w->x->off_loop[w->i] = !pthread_equal(pthread_self(), w->x->loop_thread);
}

static void work_done_cb(void *data, int status)
{
    struct work_item *w = data;
    CHECK(!w->x->submitting);
    CHECK(pthread_equal(pthread_self(), w->x->loop_thread));
    CHECK_EQ(status, 0);
    CHECK_EQ(w->x->ran[w->i], 1);
    w->x->done[w->i]++;
    w->x->done_count++;
}

static void test_work(void)
{
    struct harness h;
    harness_open(&h, "work", NULL, 10000);
    static struct work_ctx x;
    static struct work_item items[WORK_N];
    memset(&x, 0, sizeof(x));
    x.loop_thread = pthread_self();
    x.submitting = 1;
    for (int i = 0; i < WORK_N; i++) {
        items[i] = (struct work_item){.x = &x, .i = i};
        CHECK_OK(ppdb_env_work_submit(h.env, work_fn, work_done_cb, &items[i]));
    }
    x.submitting = 0;
    harness_run(&h);
    CHECK_EQ(x.done_count, WORK_N);
    for (int i = 0; i < WORK_N; i++) {
        CHECK_EQ(x.done[i], 1);
        CHECK_EQ(x.off_loop[i], 1);
    }
    harness_close(&h, 0);
}

/* ---------------------------------------------------------------- udp */

#define ECHO_N     200
#define ECHO_BURST 20

struct udp_echo {
    struct ppdb_env *env;
    struct ppdb_udp *a, *b;
    struct ppdb_addr a_addr, b_addr;
    struct ppdb_timer tick;
    uint64_t seed;
    int sent, echoed, received, bad;
    uint8_t seen[ECHO_N];
};

static size_t echo_len(uint64_t seed, int i)
{
    return 8 + (size_t)(ppdb_mix64(seed + (uint64_t)i) % 1393); /* 8..1400 */
}

static void echo_fill(uint64_t seed, int i, uint8_t *buf, size_t len)
{
    ppdb_store_u32le(buf, (uint32_t)i);
    ppdb_store_u32le(buf + 4, (uint32_t)len);
    for (size_t k = 8; k < len; k++)
        buf[k] = pattern_byte(seed + (uint64_t)i, k);
}

static void echo_b_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                      const uint8_t *buf, size_t len)
{
    struct udp_echo *x = data;
    CHECK(u == x->b);
    CHECK(ppdb_addr_equal(from, &x->a_addr));
    x->echoed++;
    CHECK_OK(ppdb_env_udp_send(x->env, u, from, buf, len));
}

static void echo_a_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                      const uint8_t *buf, size_t len)
{
    struct udp_echo *x = data;
    uint8_t want[1400];
    CHECK(u == x->a);
    CHECK(ppdb_addr_equal(from, &x->b_addr));
    CHECK_GE(len, 8);
    uint32_t i = ppdb_load_u32le(buf);
    CHECK_LT(i, ECHO_N);
    CHECK_EQ(ppdb_load_u32le(buf + 4), len);
    CHECK_EQ(len, echo_len(x->seed, (int)i));
    echo_fill(x->seed, (int)i, want, len);
    CHECK_MEMEQ(buf, want, len);
    CHECK_EQ(x->seen[i], 0);
    x->seen[i] = 1;
    if (++x->received == ECHO_N) {
        ppdb_env_udp_close(x->env, x->a);
        ppdb_env_udp_close(x->env, x->b);
    }
}

static void echo_tick_cb(struct ppdb_timer *t)
{
    struct udp_echo *x = t->data;
    uint8_t buf[1400];
    for (int k = 0; k < ECHO_BURST && x->sent < ECHO_N; k++, x->sent++) {
        size_t len = echo_len(x->seed, x->sent);
        echo_fill(x->seed, x->sent, buf, len);
        CHECK_OK(ppdb_env_udp_send(x->env, x->a, &x->b_addr, buf, len));
    }
    if (x->sent < ECHO_N)
        CHECK_OK(ppdb_env_timer_arm(x->env, t, 2));
}

static void test_udp_echo(uint64_t seed)
{
    struct harness h;
    harness_open(&h, "udp_echo", NULL, 10000);
    static struct udp_echo x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    x.seed = seed;
    struct ppdb_addr any;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_udp_open(h.env, &any, echo_a_cb, &x, &x.a));
    CHECK_OK(ppdb_env_udp_open(h.env, &any, echo_b_cb, &x, &x.b));
    CHECK_OK(ppdb_env_udp_local_addr(h.env, x.a, &x.a_addr));
    CHECK_OK(ppdb_env_udp_local_addr(h.env, x.b, &x.b_addr));
    CHECK_EQ(x.a_addr.family, 4);
    CHECK_NE(x.a_addr.port, 0);
    CHECK_NE(x.b_addr.port, 0);
    CHECK_NE(x.a_addr.port, x.b_addr.port);
    CHECK(ppdb_addr_is_loopback(&x.b_addr));
    /* Local failures are errors, not silent drops. */
    struct ppdb_addr v6 = {.family = 6, .port = x.b_addr.port};
    v6.ip[15] = 1;
    CHECK_ERR(ppdb_env_udp_send(h.env, x.a, &v6, "x", 1), PPDB_EINVAL);
    static uint8_t big[70000];
    CHECK_ERR(ppdb_env_udp_send(h.env, x.a, &x.b_addr, big, sizeof(big)), PPDB_ERANGE);
    /* Binding a port in use is EADDRINUSE. */
    struct ppdb_udp *dup = NULL;
    CHECK_ERR(ppdb_env_udp_open(h.env, &x.a_addr, echo_a_cb, &x, &dup), PPDB_EADDRINUSE);
    CHECK(dup == NULL);
    ppdb_timer_init(&x.tick, echo_tick_cb, &x);
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.tick, 0));
    harness_run(&h);
    CHECK_EQ(x.received, ECHO_N);
    CHECK_EQ(x.echoed, ECHO_N);
    harness_close(&h, 0);
}

/* The per-socket send queue is bounded: a burst beyond max_udp_queue in one
 * loop turn is refused with PPDB_ELIMIT, and the queue drains afterwards. */
struct udp_bound {
    struct ppdb_env *env;
    struct ppdb_udp *a, *b;
    struct ppdb_addr b_addr;
    struct ppdb_timer later;
    int received, limited, phase;
};

static void bound_recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                          const uint8_t *buf, size_t len)
{
    struct udp_bound *x = data;
    x->received++;
}

static int send_burst(struct udp_bound *x, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int rc = ppdb_env_udp_send(x->env, x->a, &x->b_addr, &i, sizeof(i));
        if (rc == 0)
            ok++;
        else
            CHECK_EQ(rc, PPDB_ELIMIT);
    }
    return ok;
}

static void bound_later_cb(struct ppdb_timer *t)
{
    struct udp_bound *x = t->data;
    if (x->phase++ == 0) {
        CHECK_EQ(send_burst(x, 8), 8); /* drained: the full bound is available again */
        CHECK_OK(ppdb_env_timer_arm(x->env, t, 50));
        return;
    }
    CHECK_EQ(x->received, 16);
    ppdb_env_udp_close(x->env, x->a);
    ppdb_env_udp_close(x->env, x->b);
}

static void test_udp_queue_bound(void)
{
    struct harness h;
    struct ppdb_env_uv_options o;
    ppdb_env_uv_options_default(&o);
    o.max_udp_queue = 8;
    harness_open(&h, "udp_queue_bound", &o, 5000);
    static struct udp_bound x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    struct ppdb_addr any;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_udp_open(h.env, &any, bound_recv_cb, &x, &x.a));
    CHECK_OK(ppdb_env_udp_open(h.env, &any, bound_recv_cb, &x, &x.b));
    CHECK_OK(ppdb_env_udp_local_addr(h.env, x.b, &x.b_addr));
    CHECK_EQ(send_burst(&x, 20), 8);
    ppdb_timer_init(&x.later, bound_later_cb, &x);
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.later, 50));
    harness_run(&h);
    CHECK_EQ(x.phase, 2);
    harness_close(&h, 1); /* one warning: the bound was hit */
}

/* After udp_close (here: from inside a receive callback), no receive
 * callback is delivered, even for datagrams already queued. */
struct udp_closer {
    struct ppdb_env *env;
    struct ppdb_udp *a, *b;
    struct ppdb_timer later;
    int b_received;
};

static void closer_b_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                        const uint8_t *buf, size_t len)
{
    struct udp_closer *x = data;
    x->b_received++;
    ppdb_env_udp_close(x->env, u);
}

static void closer_later_cb(struct ppdb_timer *t)
{
    struct udp_closer *x = t->data;
    ppdb_env_udp_close(x->env, x->a);
}

static void closer_a_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                        const uint8_t *buf, size_t len)
{
    CHECK(!"a receives nothing");
}

static void test_udp_close_stops_recv(void)
{
    struct harness h;
    harness_open(&h, "udp_close_stops_recv", NULL, 5000);
    static struct udp_closer x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    struct ppdb_addr any, b_addr;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_udp_open(h.env, &any, closer_a_cb, &x, &x.a));
    CHECK_OK(ppdb_env_udp_open(h.env, &any, closer_b_cb, &x, &x.b));
    CHECK_OK(ppdb_env_udp_local_addr(h.env, x.b, &b_addr));
    for (int i = 0; i < 10; i++)
        CHECK_OK(ppdb_env_udp_send(h.env, x.a, &b_addr, &i, sizeof(i)));
    ppdb_timer_init(&x.later, closer_later_cb, &x);
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.later, 50));
    harness_run(&h);
    CHECK_EQ(x.b_received, 1);
    harness_close(&h, 0);
}

/* ------------------------------------------- two envs, two loops, threads */

#define PING_N 100

struct pinger {
    struct harness h;
    struct ppdb_udp *u;
    struct ppdb_addr peer;
    struct ppdb_timer tick;
    int is_client;
    int sent, got;
};

static void ping_recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                         const uint8_t *buf, size_t len)
{
    struct pinger *p = data;
    CHECK_EQ(len, 4);
    uint32_t v = ppdb_load_u32le(buf);
    if (!p->is_client) {
        CHECK_OK(ppdb_env_udp_send(p->h.env, u, from, buf, len));
        if (++p->got == PING_N)
            ppdb_env_udp_close(p->h.env, u);
        return;
    }
    CHECK_EQ(v, (uint32_t)p->got); /* one in flight at a time: strictly in order */
    if (++p->got == PING_N) {
        ppdb_env_udp_close(p->h.env, u);
        return;
    }
    uint8_t out[4];
    ppdb_store_u32le(out, (uint32_t)p->got);
    CHECK_OK(ppdb_env_udp_send(p->h.env, u, &p->peer, out, 4));
}

static void *pinger_thread(void *arg)
{
    struct pinger *p = arg;
    harness_run(&p->h);
    return NULL;
}

static void test_two_loops(void)
{
    static struct pinger c, s;
    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    harness_open(&c.h, "two_loops_client", NULL, 10000);
    harness_open(&s.h, "two_loops_server", NULL, 10000);
    c.is_client = 1;
    struct ppdb_addr any;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_udp_open(s.h.env, &any, ping_recv_cb, &s, &s.u));
    CHECK_OK(ppdb_env_udp_open(c.h.env, &any, ping_recv_cb, &c, &c.u));
    CHECK_OK(ppdb_env_udp_local_addr(s.h.env, s.u, &c.peer));
    uint8_t out[4];
    ppdb_store_u32le(out, 0);
    CHECK_OK(ppdb_env_udp_send(c.h.env, c.u, &c.peer, out, 4));
    pthread_t tc, ts;
    CHECK_EQ(pthread_create(&ts, NULL, pinger_thread, &s), 0);
    CHECK_EQ(pthread_create(&tc, NULL, pinger_thread, &c), 0);
    CHECK_EQ(pthread_join(tc, NULL), 0);
    CHECK_EQ(pthread_join(ts, NULL), 0);
    CHECK_EQ(c.got, PING_N);
    CHECK_EQ(s.got, PING_N);
    /* check_no_leaks is process-wide: free both envs before either check,
     * against the baseline taken before the first env existed. */
    s.h.base = c.h.base;
    ppdb_env_uv_free(c.h.euv);
    ppdb_env_uv_free(s.h.euv);
    c.h.euv = s.h.euv = NULL;
    harness_close(&c.h, 0);
    harness_close(&s.h, 0);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x5eed);
    run_timer_order(seed, 200, 20);
    run_timer_order(seed + 1, 10000, 100);
    test_timer_cancel();
    test_timer_rearm();
    test_time_random();
    test_work();
    test_udp_echo(seed);
    test_udp_queue_bound();
    test_udp_close_stops_recv();
    test_two_loops();
    fprintf(stderr, "ok\n");
    return 0;
}
