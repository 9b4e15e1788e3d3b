/*
 * test_stream_reject.c - every kind of bad input on a stream is rejected
 * AND counted, and the node keeps serving others meanwhile.
 *
 * A tampering proxy sits between node A and node B and alters the bytes A
 * sends once the handshake is through (or before it): a flipped byte, a
 * replayed frame, a truncated frame, an oversized frame header, garbage
 * before the handshake, and a stall (the proxy stops forwarding: a
 * half-open connection). Then: a node with another cluster key, a silent
 * connection to B (B's handshake times out) and a listener that accepts
 * and never answers (A's handshake times out). After each case node C
 * still gets answers from B.
 */
#include <sodium.h>

#include "test_stream_harness.h"

enum pmode { P_FLIP = 0, P_REPLAY, P_TRUNCATE, P_OVERSIZE, P_GARBAGE, P_STALL };
static const char *const pmode_names[] = {"flip",     "replay",  "truncate",
                                          "oversize", "garbage", "stall"};

struct proxy {
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_listener *l;
    struct ppdb_addr addr, target;
    int mode;
    struct ppdb_stream *cs, *ss; /* client side, server side */
    struct ppdb_buf up;          /* client bytes not yet forwarded */
    uint32_t units;
    bool garbage_sent, cut, tampered; /* tampering happens once per proxy */
    int live;                         /* open streams */
};

static void p_write_cb(void *data, struct ppdb_stream *s, int status)
{
    ppdb_free(data);
}

static void p_write(struct proxy *p, struct ppdb_stream *s, const uint8_t *b, size_t n)
{
    if (!s || n == 0)
        return;
    uint8_t *copy = ppdb_malloc(n);
    CHECK(copy != NULL);
    memcpy(copy, b, n);
    if (ppdb_env_stream_write(p->env, s, copy, n, p_write_cb, copy) < 0)
        ppdb_free(copy);
}

static void p_closed_cb(void *data)
{
    struct proxy *p = data;
    p->live--;
}

static void p_close_all(struct proxy *p)
{
    if (p->cs) {
        ppdb_env_stream_close(p->env, p->cs, p_closed_cb, p);
        p->cs = NULL;
    }
    if (p->ss) {
        ppdb_env_stream_close(p->env, p->ss, p_closed_cb, p);
        p->ss = NULL;
    }
}

/* Forwards one whole unit (length-prefixed) of the client's bytes. */
static void p_unit(struct proxy *p, uint8_t *u, size_t n)
{
    uint32_t idx = p->units++;
    if (idx < 2 || p->cut || p->tampered) { /* the handshake passes untouched */
        if (!p->cut)
            p_write(p, p->ss, u, n);
        return;
    }
    p->tampered = true;
    switch (p->mode) {
    case P_FLIP:
        u[n / 2] ^= 0x20;
        p_write(p, p->ss, u, n);
        break;
    case P_REPLAY:
        p_write(p, p->ss, u, n);
        p_write(p, p->ss, u, n);
        break;
    case P_TRUNCATE:
        p_write(p, p->ss, u, n / 2);
        (void)ppdb_env_stream_shutdown(p->env, p->ss);
        p->cut = true;
        break;
    case P_OVERSIZE: {
        uint8_t big[64] = {0x7f, 0xff, 0xff, 0xff};
        p_write(p, p->ss, big, sizeof(big));
        p->cut = true;
        break;
    }
    case P_STALL:
        p->cut = true; /* nothing more reaches B */
        break;
    default:
        p_write(p, p->ss, u, n);
    }
}

static void p_pump(struct proxy *p)
{
    if (!p->ss)
        return;
    if (p->mode == P_GARBAGE && !p->garbage_sent) {
        uint8_t junk[40] = {0, 0, 0, 36};
        randombytes_buf(junk + 4, sizeof(junk) - 4);
        p_write(p, p->ss, junk, sizeof(junk));
        p->garbage_sent = true;
    }
    size_t off = 0;
    while (p->up.len - off >= 4) {
        size_t n = 4 + (size_t)ppdb_load_u32be(p->up.data + off);
        if (p->up.len - off < n)
            break;
        p_unit(p, p->up.data + off, n);
        off += n;
    }
    memmove(p->up.data, p->up.data + off, p->up.len - off);
    p->up.len -= off;
}

static void p_up_cb(void *data, struct ppdb_stream *s, const uint8_t *b, size_t n, int status)
{
    struct proxy *p = data;
    if (status < 0) {
        p_close_all(p);
        return;
    }
    CHECK_OK(ppdb_buf_append(&p->up, b, n));
    p_pump(p);
}

static void p_down_cb(void *data, struct ppdb_stream *s, const uint8_t *b, size_t n, int status)
{
    struct proxy *p = data;
    if (status < 0) {
        p_close_all(p);
        return;
    }
    p_write(p, p->cs, b, n);
}

static void p_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct proxy *p = data;
    CHECK_OK(status);
    if (!p->cs) { /* the client already left */
        ppdb_env_stream_close(p->env, s, NULL, NULL);
        return;
    }
    p->ss = s;
    p->live++;
    CHECK_OK(ppdb_env_stream_read_start(p->env, s, p_down_cb, p));
    p_pump(p);
}

static void p_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct proxy *p = data;
    CHECK(p->cs == NULL);
    p->cs = s;
    p->units = 0;
    p->cut = false;
    p->up.len = 0;
    p->live++;
    CHECK_OK(ppdb_env_stream_read_start(p->env, s, p_up_cb, p));
    CHECK_OK(ppdb_env_connect(p->env, &p->target, p_connect_cb, p));
}

static void proxy_open(struct proxy *p, const struct ppdb_addr *target, int mode)
{
    struct ppdb_addr bind;
    memset(p, 0, sizeof(*p));
    CHECK_OK(ppdb_env_uv_new(&t_loop, NULL, NULL, &p->envu));
    p->env = ppdb_env_uv_env(p->envu);
    p->target = *target;
    p->mode = mode;
    ppdb_buf_init(&p->up);
    ppdb_addr_ipv4(&bind, 127, 0, 0, 1, 0);
    CHECK_OK(ppdb_env_listen(p->env, &bind, p_accept_cb, p, &p->l));
    CHECK_OK(ppdb_env_listener_addr(p->env, p->l, &p->addr));
}

static bool p_idle(void *arg)
{
    struct proxy *p = arg;
    return p->live == 0;
}

static void proxy_close(struct proxy *p)
{
    p_close_all(p);
    ppdb_env_listener_close(p->env, p->l);
    run_until(p_idle, p, 5000, "proxy closed");
    ppdb_buf_deinit(&p->up);
    ppdb_env_uv_free(p->envu);
}

/* ------------------------------------------------------------ cases */

static uint8_t key[32];
static struct tnode a, b, c;

static void opts(struct ppdb_stream_options *o)
{
    ppdb_stream_options_default(o);
    o->handshake_timeout_ms = 500;
    o->request_timeout_ms = 800;
}

/* C still gets answers from B. */
static void check_b_serves(void)
{
    struct tcount n = {0};
    for (int i = 0; i < 5; i++)
        CHECK_OK(t_ping(&c, &b.addr, &n, 0));
    wait_done(&n, 5, 5000);
    CHECK_EQ(n.ok, 5);
}

static uint64_t counter_of(int mode, const struct ppdb_stream_stats *sb,
                           const struct ppdb_stream_stats *sa)
{
    switch (mode) {
    case P_FLIP:
        return sb->frames.auth_failed;
    case P_REPLAY:
        return sb->frames.replayed;
    case P_TRUNCATE:
        return sb->frames.truncated;
    case P_OVERSIZE:
        return sb->frames.oversized;
    case P_GARBAGE:
        return sb->handshake_failed;
    default:
        return sa->req_timeouts;
    }
}

static void test_proxy_case(int mode)
{
    struct proxy p;
    struct tcount n = {0};
    struct ppdb_stream_stats sb0 = t_stats(&b), sa0 = t_stats(&a);
    proxy_open(&p, &b.addr, mode);
    /* Two requests in two frames: the first frame after the handshake is hit. */
    CHECK_OK(t_ping(&a, &p.addr, &n, 0));
    run_for(20);
    (void)t_ping(&a, &p.addr, &n, 0);
    wait_done(&n, 2, 5000);
    run_for(50);
    struct ppdb_stream_stats sb = t_stats(&b), sa = t_stats(&a);
    fprintf(stderr, "%-8s: requests ok %u failed %u (last %s); counted %llu -> %llu\n",
            pmode_names[mode], n.ok, n.failed, ppdb_errname(n.last_status),
            (unsigned long long)counter_of(mode, &sb0, &sa0),
            (unsigned long long)counter_of(mode, &sb, &sa));
    CHECK_GE(n.failed, 1);
    /* One rejection per tampered connection; a stall times out each request. */
    uint64_t want = mode == P_STALL ? n.failed : 1;
    CHECK_EQ(counter_of(mode, &sb, &sa), counter_of(mode, &sb0, &sa0) + want);
    if (mode != P_STALL)
        CHECK_EQ(ppdb_stream_stats_rejected(&sb), ppdb_stream_stats_rejected(&sb0) + 1);
    proxy_close(&p);
    check_b_serves();
}

static void test_wrong_key(void)
{
    struct tnode w;
    struct ppdb_stream_options o;
    struct tcount n = {0};
    uint8_t other[32];
    randombytes_buf(other, sizeof(other));
    opts(&o);
    tnode_open(&w, "w", other, &o, false, 0);
    uint64_t before = t_stats(&b).hs_unknown_key;
    CHECK_OK(t_ping(&w, &b.addr, &n, 0));
    wait_done(&n, 1, 5000);
    CHECK_EQ(n.failed, 1);
    CHECK_EQ(t_stats(&b).hs_unknown_key, before + 1);
    CHECK_EQ(w.msgs + b.msgs, b.msgs); /* nothing was delivered to anyone */
    tnode_close(&w);
    check_b_serves();
}

/* A peer that connects and says nothing; a listener that never answers. */
struct raw {
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_listener *l;
    struct ppdb_stream *s;
    struct ppdb_addr addr;
    int live;
};

static void raw_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t n, int st)
{
    struct raw *r = data;
    if (st < 0 && r->s == s) {
        ppdb_env_stream_close(r->env, s, NULL, NULL);
        r->s = NULL;
        r->live--;
    }
}

static void raw_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct raw *r = data;
    CHECK_OK(status);
    r->s = s;
    r->live++;
    CHECK_OK(ppdb_env_stream_read_start(r->env, s, raw_read_cb, r));
}

static void raw_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct raw *r = data;
    if (r->s) {
        ppdb_env_stream_close(r->env, s, NULL, NULL);
        return;
    }
    r->s = s;
    r->live++;
    CHECK_OK(ppdb_env_stream_read_start(r->env, s, raw_read_cb, r));
}

static void raw_open(struct raw *r)
{
    memset(r, 0, sizeof(*r));
    CHECK_OK(ppdb_env_uv_new(&t_loop, NULL, NULL, &r->envu));
    r->env = ppdb_env_uv_env(r->envu);
}

static void raw_close(struct raw *r)
{
    if (r->s)
        ppdb_env_stream_close(r->env, r->s, NULL, NULL);
    if (r->l)
        ppdb_env_listener_close(r->env, r->l);
    ppdb_env_uv_free(r->envu);
}

static bool raw_connected(void *arg)
{
    struct raw *r = arg;
    return r->s != NULL;
}

static void test_half_open(void)
{
    struct raw r;
    struct tcount n = {0};
    /* B's side: a connection that never starts the handshake. */
    uint64_t before = t_stats(&b).hs_timeout;
    raw_open(&r);
    CHECK_OK(ppdb_env_connect(r.env, &b.addr, raw_connect_cb, &r));
    run_until(raw_connected, &r, 5000, "raw connect");
    run_for(800);
    CHECK_EQ(t_stats(&b).hs_timeout, before + 1);
    raw_close(&r);
    check_b_serves();
    /* A's side: a listener that accepts and never answers. */
    struct ppdb_addr bind;
    raw_open(&r);
    ppdb_addr_ipv4(&bind, 127, 0, 0, 1, 0);
    CHECK_OK(ppdb_env_listen(r.env, &bind, raw_accept_cb, &r, &r.l));
    CHECK_OK(ppdb_env_listener_addr(r.env, r.l, &r.addr));
    before = t_stats(&a).hs_timeout;
    CHECK_OK(t_ping(&a, &r.addr, &n, 0));
    wait_done(&n, 1, 5000);
    CHECK_EQ(n.failed, 1);
    CHECK(n.last_status == PPDB_ETIMEDOUT);
    CHECK_EQ(t_stats(&a).hs_timeout, before + 1);
    raw_close(&r);
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    struct ppdb_stream_options o;
    CHECK_OK(ppdb_wire_init());
    t_loop_init();
    ppdb_alloc_stats(&base);
    randombytes_buf(key, sizeof(key));
    opts(&o);
    tnode_open(&a, "a", key, &o, true, 0);
    tnode_open(&b, "b", key, &o, true, 0);
    tnode_open(&c, "c", key, &o, true, 0);
    check_b_serves();
    for (int mode = P_FLIP; mode <= P_STALL; mode++)
        test_proxy_case(mode);
    test_wrong_key();
    test_half_open();
    struct ppdb_stream_stats sb = t_stats(&b);
    fprintf(stderr, "b rejected %llu in all, handshakes %llu, still serving\n",
            (unsigned long long)ppdb_stream_stats_rejected(&sb), (unsigned long long)sb.handshakes);
    tnode_close(&a);
    tnode_close(&b);
    tnode_close(&c);
    t_loop_done();
    check_no_leaks(&base);
    printf("test_stream_reject: ok\n");
    return 0;
}
