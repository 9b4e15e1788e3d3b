/*
 * test_env_uv_close.c - endings in the libuv env: a UDP close flushes what
 * was already sent, a reset stream reports PPDB_ECONNRESET once, freeing an
 * env with handles, a connect and timers still open closes them (and says
 * so), and IPv6 / dual-stack sockets report IPv4 peers as IPv4.
 */
#include "test_env_uv.h"

/* ------------------------------------------------------ udp close flush */

#define FLUSH_N 20

struct flush {
    struct ppdb_env *env;
    struct ppdb_udp *a, *b;
    int received;
    uint32_t next;
};

static void flush_recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                          const uint8_t *buf, size_t len)
{
    struct flush *x = data;
    CHECK(u == x->b);
    CHECK_EQ(len, 4);
    CHECK_EQ(ppdb_load_u32le(buf), x->next); /* in send order */
    x->next++;
    if (++x->received == FLUSH_N)
        ppdb_env_udp_close(x->env, u);
}

static void test_udp_close_flushes(void)
{
    struct harness h;
    harness_open(&h, "udp_close_flushes", NULL, 5000);
    static struct flush x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    struct ppdb_addr any, b_addr;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_udp_open(h.env, &any, flush_recv_cb, &x, &x.a));
    CHECK_OK(ppdb_env_udp_open(h.env, &any, flush_recv_cb, &x, &x.b));
    CHECK_OK(ppdb_env_udp_local_addr(h.env, x.b, &b_addr));
    for (uint32_t i = 0; i < FLUSH_N; i++) {
        uint8_t buf[4];
        ppdb_store_u32le(buf, i);
        CHECK_OK(ppdb_env_udp_send(h.env, x.a, &b_addr, buf, 4));
    }
    ppdb_env_udp_close(h.env, x.a); /* everything above still goes out */
    harness_run(&h);
    CHECK_EQ(x.received, FLUSH_N);
    harness_close(&h, 0);
}

/* ------------------------------------------------------ reset stream */

struct reset {
    struct ppdb_env *env;
    struct ppdb_listener *l;
    struct ppdb_stream *cs, *ss;
    struct ppdb_timer later;
    int ends, end_status, closed;
    uint8_t payload[65536];
};

static void reset_close_cb(void *data)
{
    struct reset *x = data;
    x->closed++;
}

static void reset_cli_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                              int status)
{
    struct reset *x = data;
    CHECK_LT(status, 0); /* the server never writes */
    x->ends++;
    x->end_status = status;
    ppdb_env_stream_close(x->env, s, reset_close_cb, x);
}

static void reset_srv_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                              int status)
{
    CHECK(!"the server never reads");
}

/* Closing with unread bytes in the receive buffer makes the kernel send a
 * reset instead of an orderly end. */
static void reset_later_cb(struct ppdb_timer *t)
{
    struct reset *x = t->data;
    ppdb_env_stream_close(x->env, x->ss, reset_close_cb, x);
    ppdb_env_listener_close(x->env, x->l);
}

static void reset_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct reset *x = data;
    x->ss = s;
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, reset_srv_read_cb, x));
    ppdb_env_stream_read_stop(x->env, s);
}

static void reset_write_cb(void *data, struct ppdb_stream *s, int status)
{
    struct reset *x = data;
    CHECK_OK(status);
    CHECK_OK(ppdb_env_timer_arm(x->env, &x->later, 20));
}

static void reset_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct reset *x = data;
    CHECK_OK(status);
    x->cs = s;
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, reset_cli_read_cb, x));
    CHECK_OK(ppdb_env_stream_write(x->env, s, x->payload, sizeof(x->payload), reset_write_cb, x));
    /* A zero-length write is legal and completes like any other. */
    CHECK_OK(ppdb_env_stream_write(x->env, s, x->payload, 0, NULL, NULL));
}

static void test_stream_reset(void)
{
    struct harness h;
    harness_open(&h, "stream_reset", NULL, 5000);
    static struct reset x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    ppdb_timer_init(&x.later, reset_later_cb, &x);
    struct ppdb_addr any, addr;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_listen(h.env, &any, reset_accept_cb, &x, &x.l));
    CHECK_OK(ppdb_env_listener_addr(h.env, x.l, &addr));
    CHECK_OK(ppdb_env_connect(h.env, &addr, reset_connect_cb, &x));
    harness_run(&h);
    CHECK_EQ(x.ends, 1);
    CHECK_ERR(x.end_status, PPDB_ECONNRESET);
    CHECK_EQ(x.closed, 2);
    harness_close(&h, 0);
}

/* ------------------------------------------- free with things left open */

struct leftover {
    struct ppdb_env *env;
    uv_loop_t *loop;
    struct ppdb_stream *cs, *ss;
    struct ppdb_timer retry;
    int late_status, late_calls;
};

static void noop_recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                         const uint8_t *buf, size_t len)
{
}

static void noop_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                         int status)
{
}

static void noop_timer_cb(struct ppdb_timer *t)
{
    CHECK(!"a timer of a freed env must not fire");
}

static void leftover_both_up(struct leftover *x)
{
    if (x->cs && x->ss)
        uv_stop(x->loop);
}

static void leftover_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct leftover *x = data;
    x->ss = s;
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, noop_read_cb, x));
    leftover_both_up(x);
}

static void leftover_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct leftover *x = data;
    CHECK_OK(status);
    x->cs = s;
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, noop_read_cb, x));
    leftover_both_up(x);
}

static void late_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct leftover *x = data;
    CHECK(s == NULL);
    x->late_calls++;
    x->late_status = status;
    /* What a node would do on a failed connect: retry later, or at once.
     * The env is being freed, so both are refused without a callback. */
    CHECK_ERR(ppdb_env_timer_arm(x->env, &x->retry, 100), PPDB_ECANCELED);
    struct ppdb_addr a;
    loopback(&a, 1);
    CHECK_ERR(ppdb_env_connect(x->env, &a, late_connect_cb, x), PPDB_ECANCELED);
}

static void test_free_leftovers(void)
{
    struct harness h;
    harness_open(&h, "free_leftovers", NULL, 5000);
    static struct leftover x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    x.loop = &h.loop;
    ppdb_timer_init(&x.retry, noop_timer_cb, NULL);
    struct ppdb_addr any, addr;
    loopback(&any, 0);
    struct ppdb_listener *l;
    struct ppdb_udp *u;
    CHECK_OK(ppdb_env_listen(h.env, &any, leftover_accept_cb, &x, &l));
    CHECK_OK(ppdb_env_listener_addr(h.env, l, &addr));
    CHECK_OK(ppdb_env_udp_open(h.env, &any, noop_recv_cb, &x, &u));
    CHECK_OK(ppdb_env_connect(h.env, &addr, leftover_connect_cb, &x));
    harness_run(&h); /* until both ends are up */
    CHECK(x.cs && x.ss);
    /* Left open at free: a listener, a socket, two streams, a connect in
     * flight and an armed timer. */
    CHECK_OK(ppdb_env_connect(h.env, &addr, late_connect_cb, &x));
    struct ppdb_timer t;
    ppdb_timer_init(&t, noop_timer_cb, NULL);
    CHECK_OK(ppdb_env_timer_arm(h.env, &t, 60000));
    harness_close(&h, 2); /* "open handles" and "armed timers" */
    CHECK(!ppdb_timer_armed(&t));
    CHECK_EQ(x.late_calls, 1);
    CHECK_ERR(x.late_status, PPDB_ECANCELED);
}

/* ------------------------------------------ re-listen over TIME_WAIT */

/* The server side closes first, so the connection on the listening port
 * sits in TIME_WAIT; a new listener on that port must still bind
 * (SO_REUSEADDR), as a restarted node does. */
struct relisten {
    struct ppdb_env *env;
    struct ppdb_listener *l;
    int client_end, closed;
};

static void relisten_close_cb(void *data)
{
    struct relisten *x = data;
    if (++x->closed == 2)
        ppdb_env_listener_close(x->env, x->l);
}

static void relisten_cli_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                                 int status)
{
    struct relisten *x = data;
    CHECK_ERR(status, PPDB_ECLOSED);
    x->client_end++;
    ppdb_env_stream_close(x->env, s, relisten_close_cb, x);
}

static void relisten_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct relisten *x = data;
    ppdb_env_stream_close(x->env, s, relisten_close_cb, x); /* orderly: a FIN */
}

static void relisten_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct relisten *x = data;
    CHECK_OK(status);
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, relisten_cli_read_cb, x));
}

static void test_relisten(void)
{
    struct harness h;
    harness_open(&h, "relisten", NULL, 5000);
    static struct relisten x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    struct ppdb_addr any, addr;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_listen(h.env, &any, relisten_accept_cb, &x, &x.l));
    CHECK_OK(ppdb_env_listener_addr(h.env, x.l, &addr));
    CHECK_OK(ppdb_env_connect(h.env, &addr, relisten_connect_cb, &x));
    harness_run(&h);
    CHECK_EQ(x.client_end, 1);
    CHECK_EQ(x.closed, 2);
    struct ppdb_listener *again;
    CHECK_OK(ppdb_env_listen(h.env, &addr, relisten_accept_cb, &x, &again));
    ppdb_env_listener_close(h.env, again);
    harness_run(&h);
    harness_close(&h, 0);
}

/* --------------------------------------------------- IPv6, dual stack */

struct v6 {
    struct ppdb_env *env;
    struct ppdb_udp *a, *b;
    struct ppdb_addr a_addr, b_addr;
    int got_a, got_b;
};

/* b: an IPv6 socket. It sees the sender's own family and answers it. */
static void v6_b_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                    const uint8_t *buf, size_t len)
{
    struct v6 *x = data;
    CHECK(ppdb_addr_equal(from, &x->a_addr));
    x->got_b++;
    CHECK_OK(ppdb_env_udp_send(x->env, u, from, buf, len));
}

static void v6_a_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                    const uint8_t *buf, size_t len)
{
    struct v6 *x = data;
    CHECK_EQ(from->family, x->b_addr.family);
    CHECK_EQ(from->port, x->b_addr.port);
    CHECK(ppdb_addr_is_loopback(from));
    x->got_a++;
    ppdb_env_udp_close(x->env, x->a);
    ppdb_env_udp_close(x->env, x->b);
}

/* a_bind and b_bind as strings; the datagram goes to b at `to_ip`. */
static void run_v6(const char *name, const char *a_bind, const char *b_bind, const char *to_ip)
{
    struct harness h;
    harness_open(&h, name, NULL, 5000);
    static struct v6 x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    struct ppdb_addr a_any, b_any, b_local;
    CHECK_OK(ppdb_addr_parse(a_bind, &a_any));
    CHECK_OK(ppdb_addr_parse(b_bind, &b_any));
    int rc = ppdb_env_udp_open(h.env, &b_any, v6_b_cb, &x, &x.b);
    if (rc < 0) {
        fprintf(stderr, "%s: no IPv6 here (%s), part skipped\n", name, ppdb_errname(rc));
        harness_close(&h, 0);
        return;
    }
    CHECK_OK(ppdb_env_udp_open(h.env, &a_any, v6_a_cb, &x, &x.a));
    CHECK_OK(ppdb_env_udp_local_addr(h.env, x.a, &x.a_addr));
    CHECK_OK(ppdb_env_udp_local_addr(h.env, x.b, &b_local));
    CHECK_EQ(b_local.family, 6);
    char to[PPDB_ADDR_STRLEN];
    snprintf(to, sizeof(to), "%s:%u", to_ip, (unsigned)b_local.port);
    CHECK_OK(ppdb_addr_parse(to, &x.b_addr));
    CHECK_OK(ppdb_env_udp_send(h.env, x.a, &x.b_addr, "v6", 2));
    harness_run(&h);
    CHECK_EQ(x.got_b, 1);
    CHECK_EQ(x.got_a, 1);
    harness_close(&h, 0);
}

int main(int argc, char **argv)
{
    (void)check_seed(argc, argv, 1);
    test_udp_close_flushes();
    test_stream_reset();
    test_free_leftovers();
    test_relisten();
    run_v6("udp_ipv6", "[::1]:0", "[::1]:0", "[::1]");
    /* A v4 sender to a dual-stack socket: seen (and answered) as IPv4. */
    run_v6("udp_dual_stack", "127.0.0.1:0", "[::]:0", "127.0.0.1");
    fprintf(stderr, "ok\n");
    return 0;
}
