/*
 * test_env_uv_tcp.c - byte streams of the libuv env on loopback.
 *
 * Echo of 1 MiB in random pieces (order of bytes and of write completions),
 * half-close, back-pressure with read_stop/read_start against the
 * max_stream_pending bound, close canceling pending writes, connect errors
 * (refused through the callback, invalid synchronously), EADDRINUSE, and
 * many concurrent connections. Every test runs under a guard timer.
 */
#include <stdlib.h>

#include "test_env_uv.h"

#define ECHO_BYTES (1u << 20)

static uint8_t g_src[ECHO_BYTES]; /* the client's bytes: borrowed by its writes */

/* ---------------------------------------------------------- 1 MiB echo */

struct echo {
    struct ppdb_env *env;
    struct ppdb_listener *l;
    struct ppdb_addr l_addr;
    struct ppdb_stream *cs, *ss; /* client, server side */
    uint64_t seed;
    int writes, writes_done, closes;
    size_t sent, received, echoed;
    int server_eof, client_eof, accepted;
};

struct echo_chunk {
    struct echo *x;
    size_t len;
    uint8_t bytes[];
};

static void srv_write_cb(void *data, struct ppdb_stream *s, int status)
{
    struct echo_chunk *c = data;
    CHECK_OK(status);
    c->x->echoed += c->len;
    ppdb_free(c);
}

static void srv_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                        int status)
{
    struct echo *x = data;
    CHECK(s == x->ss);
    if (status < 0) {
        CHECK_ERR(status, PPDB_ECLOSED); /* the client's shutdown, seen once */
        CHECK_EQ(x->server_eof, 0);
        x->server_eof = 1;
        CHECK_OK(ppdb_env_stream_shutdown(x->env, s)); /* after the echoes */
        CHECK_ERR(ppdb_env_stream_write(x->env, s, "x", 1, NULL, NULL), PPDB_ECLOSED);
        return;
    }
    CHECK_GT(len, 0);
    struct echo_chunk *c = ppdb_malloc(sizeof(*c) + len);
    CHECK(c != NULL);
    c->x = x;
    c->len = len;
    memcpy(c->bytes, buf, len);
    CHECK_OK(ppdb_env_stream_write(x->env, s, c->bytes, len, srv_write_cb, c));
}

static void echo_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct echo *x = data;
    struct ppdb_addr peer;
    CHECK(l == x->l);
    CHECK_EQ(x->accepted++, 0);
    x->ss = s;
    CHECK_OK(ppdb_env_stream_peer_addr(x->env, s, &peer));
    CHECK(ppdb_addr_is_loopback(&peer));
    CHECK_NE(peer.port, 0);
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, srv_read_cb, x));
}

static void echo_close_cb(void *data)
{
    struct echo *x = data;
    x->closes++;
}

static void cli_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                        int status)
{
    struct echo *x = data;
    if (status < 0) {
        CHECK_ERR(status, PPDB_ECLOSED);
        CHECK_EQ(x->client_eof, 0);
        x->client_eof = 1;
        CHECK_EQ(x->received, ECHO_BYTES);
        CHECK_EQ(x->writes_done, x->writes);
        CHECK_EQ(ppdb_env_stream_pending(x->env, s), 0);
        CHECK_EQ(x->echoed, ECHO_BYTES);
        /* A read_start after the end reports the end, not a hang. */
        CHECK_ERR(ppdb_env_stream_read_start(x->env, s, cli_read_cb, x), PPDB_ECLOSED);
        ppdb_env_stream_close(x->env, s, echo_close_cb, x);
        ppdb_env_stream_close(x->env, x->ss, echo_close_cb, x);
        ppdb_env_listener_close(x->env, x->l);
        return;
    }
    CHECK_LE(x->received + len, ECHO_BYTES);
    CHECK_MEMEQ(buf, g_src + x->received, len);
    x->received += len;
}

static void cli_write_cb(void *data, struct ppdb_stream *s, int status)
{
    struct echo *x = data;
    CHECK_OK(status);
    x->writes_done++;
}

/* Write completions come back in order: each carries its index. */
struct order_tag {
    struct echo *x;
    int i;
};

static struct order_tag g_tags[ECHO_BYTES / 1024 + 16];

static void cli_ordered_write_cb(void *data, struct ppdb_stream *s, int status)
{
    struct order_tag *t = data;
    CHECK_EQ(t->i, t->x->writes_done);
    cli_write_cb(t->x, s, status);
}

static void echo_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct echo *x = data;
    CHECK_OK(status);
    CHECK(s != NULL);
    x->cs = s;
    struct ppdb_addr peer;
    CHECK_OK(ppdb_env_stream_peer_addr(x->env, s, &peer));
    CHECK(ppdb_addr_equal(&peer, &x->l_addr));
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, cli_read_cb, x));
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, x->seed);
    while (x->sent < ECHO_BYTES) {
        size_t r = 1 + (size_t)ppdb_rng_below(&rng, 16384); /* PPDB_MIN evaluates twice */
        size_t n = PPDB_MIN(r, ECHO_BYTES - x->sent);
        CHECK_LT(x->writes, (int)PPDB_ARRAY_LEN(g_tags));
        g_tags[x->writes] = (struct order_tag){.x = x, .i = x->writes};
        CHECK_OK(ppdb_env_stream_write(x->env, s, g_src + x->sent, n, cli_ordered_write_cb,
                                       &g_tags[x->writes]));
        x->writes++;
        x->sent += n;
    }
    CHECK_EQ(x->writes_done, 0); /* no completion from inside stream_write */
    CHECK_EQ(ppdb_env_stream_pending(x->env, s), ECHO_BYTES);
    CHECK_OK(ppdb_env_stream_shutdown(x->env, s));
    CHECK_ERR(ppdb_env_stream_write(x->env, s, "x", 1, NULL, NULL), PPDB_ECLOSED);
}

static void test_echo(uint64_t seed)
{
    struct harness h;
    harness_open(&h, "tcp_echo", NULL, 20000);
    static struct echo x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    x.seed = seed;
    for (size_t i = 0; i < ECHO_BYTES; i++)
        g_src[i] = pattern_byte(seed, i);
    struct ppdb_addr any;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_listen(h.env, &any, echo_accept_cb, &x, &x.l));
    CHECK_OK(ppdb_env_listener_addr(h.env, x.l, &x.l_addr));
    CHECK_NE(x.l_addr.port, 0);
    CHECK_OK(ppdb_env_connect(h.env, &x.l_addr, echo_connect_cb, &x));
    CHECK(x.cs == NULL); /* the callback comes later, from the loop */
    harness_run(&h);
    CHECK_EQ(x.client_eof, 1);
    CHECK_EQ(x.server_eof, 1);
    CHECK_EQ(x.closes, 2);
    harness_close(&h, 0);
}

/* ------------------------------------- back-pressure and close-cancels */

#define CHUNK       (64u * 1024)
#define MAX_CHUNKS  1024 /* 64 MiB: far beyond loopback buffers plus the bound */
#define PENDING_MAX (1u << 20)

struct bp {
    struct ppdb_env *env;
    struct ppdb_listener *l;
    struct ppdb_stream *cs, *ss;
    struct ppdb_timer tick;
    int mode; /* 0: back-pressure, 1: close cancels */
    int ticks, chunks, done, ok_writes, canceled, limited;
    int phase;
    size_t written, ok_bytes, received, max_pending;
    int client_closed, server_end;
    int statuses_ordered; /* no 0 after an ECANCELED */
};

struct bp_chunk {
    struct bp *x;
    int index;
    uint8_t bytes[CHUNK];
};

static void bp_chunk_fill(struct bp_chunk *c)
{
    for (uint32_t k = 0; k < CHUNK; k++)
        c->bytes[k] = pattern_byte((uint64_t)c->index, k);
}

static void bp_write_cb(void *data, struct ppdb_stream *s, int status)
{
    struct bp_chunk *c = data;
    struct bp *x = c->x;
    CHECK_EQ(c->index, x->done);   /* in order */
    CHECK_EQ(x->client_closed, 0); /* every write callback before close_cb */
    x->done++;
    if (status == 0) {
        CHECK_EQ(x->canceled, 0);
        x->ok_writes++;
        x->ok_bytes += CHUNK;
    } else {
        CHECK_ERR(status, PPDB_ECANCELED);
        CHECK_EQ(x->mode, 1);
        x->canceled++;
    }
    ppdb_free(c);
    if (x->mode == 0 && x->phase == 2 && x->done == x->chunks)
        CHECK_EQ(ppdb_env_stream_pending(x->env, s), 0);
}

static void bp_close_cb(void *data)
{
    struct bp *x = data;
    CHECK_EQ(x->done, x->chunks);
    x->client_closed++;
}

static void bp_server_close_cb(void *data)
{
    struct bp *x = data;
    x->server_end++;
}

static void bp_srv_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                           int status)
{
    struct bp *x = data;
    CHECK(x->phase >= 1 || len == 0); /* nothing is read while stopped */
    if (status < 0) {
        CHECK_EQ(x->mode, 1);
        CHECK(status == PPDB_ECLOSED || status == PPDB_ECONNRESET);
        CHECK_GE(x->received, x->ok_bytes);
        CHECK_LE(x->received, x->written);
        ppdb_env_stream_close(x->env, s, bp_server_close_cb, x);
        ppdb_env_listener_close(x->env, x->l);
        return;
    }
    for (size_t k = 0; k < len; k++) {
        size_t off = x->received + k;
        if (buf[k] != pattern_byte(off / CHUNK, off % CHUNK))
            CHECK_EQ(buf[k], pattern_byte(off / CHUNK, off % CHUNK));
    }
    x->received += len;
    if (x->mode == 0 && x->received == x->written) {
        ppdb_env_stream_close(x->env, s, bp_server_close_cb, x);
        ppdb_env_stream_close(x->env, x->cs, bp_close_cb, x);
        ppdb_env_listener_close(x->env, x->l);
    }
}

static void bp_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct bp *x = data;
    x->ss = s;
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, bp_srv_read_cb, x));
    ppdb_env_stream_read_stop(x->env, s); /* the peer does not read, for now */
    ppdb_env_stream_read_stop(x->env, s);
}

/* Phase 0: write until the bound refuses. Phase 1 (mode 0): pending stays
 * put while the server does not read, then the server reads everything.
 * Phase 1 (mode 1): close the client with writes pending. */
static void bp_tick_cb(struct ppdb_timer *t)
{
    struct bp *x = t->data;
    CHECK_LT(x->ticks++, 5000);
    size_t pending = ppdb_env_stream_pending(x->env, x->cs);
    if (x->phase == 1) {
        CHECK_GT(pending, 0);
        CHECK_LE(pending, PENDING_MAX);
        x->phase = 2;
        if (x->mode == 1)
            ppdb_env_stream_close(x->env, x->cs, bp_close_cb, x);
        CHECK_OK(ppdb_env_stream_read_start(x->env, x->ss, bp_srv_read_cb, x));
        return;
    }
    for (int k = 0; k < 8; k++) {
        CHECK_LT(x->chunks, MAX_CHUNKS);
        struct bp_chunk *c = ppdb_malloc(sizeof(*c));
        CHECK(c != NULL);
        c->x = x;
        c->index = x->chunks;
        bp_chunk_fill(c);
        int rc = ppdb_env_stream_write(x->env, x->cs, c->bytes, CHUNK, bp_write_cb, c);
        if (rc < 0) {
            CHECK_ERR(rc, PPDB_ELIMIT);
            ppdb_free(c);
            x->limited++;
            x->phase = 1;
            CHECK_OK(ppdb_env_timer_arm(x->env, t, 30)); /* give the loop time to drain */
            return;
        }
        x->chunks++;
        x->written += CHUNK;
        pending = ppdb_env_stream_pending(x->env, x->cs);
        CHECK_LE(pending, PENDING_MAX);
        x->max_pending = PPDB_MAX(x->max_pending, pending);
    }
    CHECK_OK(ppdb_env_timer_arm(x->env, t, 1));
}

static void bp_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct bp *x = data;
    CHECK_OK(status);
    x->cs = s;
    ppdb_timer_init(&x->tick, bp_tick_cb, x);
    CHECK_OK(ppdb_env_timer_arm(x->env, &x->tick, 1));
}

static void run_backpressure(int mode)
{
    struct harness h;
    struct ppdb_env_uv_options o;
    ppdb_env_uv_options_default(&o);
    o.max_stream_pending = PENDING_MAX;
    harness_open(&h, mode ? "tcp_close_cancels" : "tcp_backpressure", &o, 30000);
    static struct bp x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    x.mode = mode;
    struct ppdb_addr any, addr;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_listen(h.env, &any, bp_accept_cb, &x, &x.l));
    CHECK_OK(ppdb_env_listener_addr(h.env, x.l, &addr));
    CHECK_OK(ppdb_env_connect(h.env, &addr, bp_connect_cb, &x));
    harness_run(&h);
    fprintf(stderr, "mode=%d chunks=%d written=%zu max_pending=%zu ok=%d canceled=%d ticks=%d\n",
            mode, x.chunks, x.written, x.max_pending, x.ok_writes, x.canceled, x.ticks);
    CHECK_EQ(x.limited, 1);
    CHECK_EQ(x.done, x.chunks);
    CHECK_EQ(x.client_closed, 1);
    CHECK_EQ(x.server_end, 1);
    CHECK_GT(x.max_pending, 0);
    if (mode == 0) {
        CHECK_EQ(x.ok_writes, x.chunks);
        CHECK_EQ(x.received, x.written);
    } else {
        CHECK_GT(x.canceled, 0);
        CHECK_EQ(x.ok_writes + x.canceled, x.chunks);
    }
    harness_close(&h, 1); /* the bound's warning */
}

/* --------------------------------------------------- connect errors */

struct refused {
    struct ppdb_env *env;
    struct ppdb_timer later;
    struct ppdb_addr addr;
    int returned, calls, status;
};

static void refused_cb(void *data, struct ppdb_stream *s, int status)
{
    struct refused *x = data;
    CHECK_EQ(x->returned, 1); /* asynchronous, from the loop */
    CHECK(s == NULL);
    x->calls++;
    x->status = status;
}

static void never_cb(void *data, struct ppdb_stream *s, int status)
{
    CHECK(!"connect callback after a synchronous error");
}

static void refused_later_cb(struct ppdb_timer *t)
{
    struct refused *x = t->data;
    CHECK_OK(ppdb_env_connect(x->env, &x->addr, refused_cb, x));
    x->returned = 1;
}

static void unused_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    CHECK(!"no connection expected");
}

static void test_connect_errors(void)
{
    struct harness h;
    harness_open(&h, "tcp_connect_errors", NULL, 10000);
    static struct refused x;
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    struct ppdb_addr any, bad;
    loopback(&any, 0);
    struct ppdb_listener *l, *l2 = NULL;
    CHECK_OK(ppdb_env_listen(h.env, &any, unused_accept_cb, NULL, &l));
    CHECK_OK(ppdb_env_listener_addr(h.env, l, &x.addr));
    /* The port is taken: a second listener is refused synchronously. */
    CHECK_ERR(ppdb_env_listen(h.env, &x.addr, unused_accept_cb, NULL, &l2), PPDB_EADDRINUSE);
    CHECK(l2 == NULL);
    ppdb_env_listener_close(h.env, l);
    /* An address that cannot be used fails at once and never calls back. */
    memset(&bad, 0, sizeof(bad));
    CHECK_ERR(ppdb_env_connect(h.env, &bad, never_cb, NULL), PPDB_EINVAL);
    ppdb_timer_init(&x.later, refused_later_cb, &x);
    CHECK_OK(ppdb_env_timer_arm(h.env, &x.later, 5));
    harness_run(&h);
    CHECK_EQ(x.calls, 1);
    CHECK_ERR(x.status, PPDB_ECONNREFUSED);
    harness_close(&h, 0);
}

/* ------------------------------------------- many concurrent streams */

#define CONNS 32

static uint8_t g_reply[256]; /* g_reply[i] == i: one-byte answers borrowed by writes */

struct many {
    struct ppdb_env *env;
    struct ppdb_listener *l;
    int accepted, connected, answered, closed;
};

static void many_close_cb(void *data)
{
    struct many *x = data;
    if (++x->closed == 2 * CONNS)
        ppdb_env_listener_close(x->env, x->l);
}

static void many_srv_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                             int status)
{
    struct many *x = data;
    if (status < 0) {
        CHECK_ERR(status, PPDB_ECLOSED);
        ppdb_env_stream_close(x->env, s, many_close_cb, x);
        return;
    }
    /* Answer each byte with byte + 1, from static storage (borrowed). */
    for (size_t i = 0; i < len; i++)
        CHECK_OK(ppdb_env_stream_write(x->env, s, &g_reply[(uint8_t)(buf[i] + 1)], 1, NULL, NULL));
}

static void many_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct many *x = data;
    x->accepted++;
    CHECK_OK(ppdb_env_stream_read_start(x->env, s, many_srv_read_cb, x));
}

struct many_cli {
    struct many *x;
    uint8_t id;
};

static void many_cli_read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len,
                             int status)
{
    struct many_cli *c = data;
    CHECK_OK(status);
    CHECK_EQ(len, 1);
    CHECK_EQ(buf[0], (uint8_t)(c->id + 1));
    c->x->answered++;
    ppdb_env_stream_close(c->x->env, s, many_close_cb, c->x);
}

static void many_connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct many_cli *c = data;
    CHECK_OK(status);
    c->x->connected++;
    CHECK_OK(ppdb_env_stream_read_start(c->x->env, s, many_cli_read_cb, c));
    static uint8_t ids[CONNS];
    ids[c->id] = c->id;
    CHECK_OK(ppdb_env_stream_write(c->x->env, s, &ids[c->id], 1, NULL, NULL));
}

static void test_many(void)
{
    struct harness h;
    harness_open(&h, "tcp_many", NULL, 10000);
    static struct many x;
    static struct many_cli cli[CONNS];
    memset(&x, 0, sizeof(x));
    x.env = h.env;
    struct ppdb_addr any, addr;
    loopback(&any, 0);
    CHECK_OK(ppdb_env_listen(h.env, &any, many_accept_cb, &x, &x.l));
    CHECK_OK(ppdb_env_listener_addr(h.env, x.l, &addr));
    for (int i = 0; i < CONNS; i++) {
        cli[i] = (struct many_cli){.x = &x, .id = (uint8_t)i};
        CHECK_OK(ppdb_env_connect(h.env, &addr, many_connect_cb, &cli[i]));
    }
    harness_run(&h);
    CHECK_EQ(x.accepted, CONNS);
    CHECK_EQ(x.connected, CONNS);
    CHECK_EQ(x.answered, CONNS);
    CHECK_EQ(x.closed, 2 * CONNS);
    harness_close(&h, 0);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 0x7c9);
    for (int i = 0; i < 256; i++)
        g_reply[i] = (uint8_t)i;
    test_echo(seed);
    run_backpressure(0);
    run_backpressure(1);
    test_connect_errors();
    test_many();
    fprintf(stderr, "ok\n");
    return 0;
}
