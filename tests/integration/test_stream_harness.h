/*
 * test_stream_harness.h - nodes with a stream endpoint on one libuv loop
 * for the stream integration tests (loopback only, ports chosen by the OS).
 *
 * A test node answers PING with a PONG carrying the same payload, counts
 * one-way BLOB messages, and can instead hold requests (answered later) or
 * pause its connection on the first message (a slow reader). Everything
 * runs under a deadline: run_until fails the test rather than hang.
 */
#ifndef TEST_STREAM_HARNESS_H
#define TEST_STREAM_HARNESS_H

#include <uv.h>

#include "check.h"
#include "ppdb_stream.h"

#define T_MSG_BLOB 0x9F /* admin range, test only: {0: bin} one-way */
#define T_HELD_MAX 4096

enum tmode { T_ECHO = 0, T_HOLD, T_PAUSE };

struct tnode {
    const char *name;
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_stream_ep ep;
    struct ppdb_addr addr;
    bool open;
    int mode;
    uint64_t msgs, blobs, blob_bytes;
    uint64_t blob_chain; /* t_chain over every blob's bytes, in arrival order */
    uint8_t last_role;
    struct ppdb_node_id last_peer;
    uint64_t paused_conn;
    uint32_t nheld;
    uint64_t held_conn[T_HELD_MAX], held_req[T_HELD_MAX];
    uint32_t writable_calls;
};

static uv_loop_t t_loop;
static uv_timer_t t_tick; /* wakes the loop so run_until checks its deadline */

static void t_tick_cb(uv_timer_t *h)
{
}

static void t_loop_init(void)
{
    uv_loop_init(&t_loop);
    uv_timer_init(&t_loop, &t_tick);
    uv_timer_start(&t_tick, t_tick_cb, 10, 10);
}

static void t_loop_done(void)
{
    uv_close((uv_handle_t *)&t_tick, NULL);
    uv_run(&t_loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&t_loop), 0);
}

static const struct ppdb_wire_field t_blob_fields[] = {
    {.key = 0, .kind = PPDB_WK_BIN, .required = true, .max_len = 1u << 20},
};
static const struct ppdb_wire_schema t_blob_schema = {T_MSG_BLOB, "test.blob", t_blob_fields, 1};

static void t_body(struct ppdb_buf *b, const uint8_t *p, size_t n)
{
    struct ppdb_mpw w;
    ppdb_buf_reset(b);
    ppdb_mpw_init(&w, b);
    ppdb_mpw_map(&w, 1);
    ppdb_mpw_uint(&w, 0);
    ppdb_mpw_bin(&w, p, n);
    CHECK_OK(ppdb_mpw_error(&w));
}

/* An order-sensitive digest of a sequence of byte strings. */
static uint64_t t_chain(uint64_t chain, const uint8_t *p, size_t n)
{
    return ppdb_hash64(p, n, chain ^ n);
}

static void t_on_msg(void *data, const struct ppdb_stream_peer *peer, const struct ppdb_envelope *m)
{
    struct tnode *n = data;
    const uint8_t *p = NULL;
    size_t len = 0;
    n->msgs++;
    n->last_role = peer->role;
    n->last_peer = peer->id;
    (void)ppdb_mp_get_bin(m->body, 0, &p, &len);
    if (m->hdr.type == T_MSG_BLOB) {
        n->blobs++;
        n->blob_bytes += len;
        n->blob_chain = t_chain(n->blob_chain, p, len);
    }
    if (n->mode == T_PAUSE && n->paused_conn == 0) {
        n->paused_conn = peer->conn_id;
        CHECK_OK(ppdb_stream_pause(&n->ep, peer->conn_id, true));
    }
    if (m->hdr.request_id == 0)
        return;
    if (n->mode == T_HOLD && n->nheld < T_HELD_MAX) {
        n->held_conn[n->nheld] = peer->conn_id;
        n->held_req[n->nheld++] = m->hdr.request_id;
        return;
    }
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    t_body(&b, p, len);
    (void)ppdb_stream_reply(&n->ep, peer->conn_id, m->hdr.request_id, PPDB_MSG_PONG, b.data, b.len);
    ppdb_buf_deinit(&b);
}

static void t_on_writable(void *data, const struct ppdb_addr *addr)
{
    struct tnode *n = data;
    n->writable_calls++;
}

/* key NULL: no cluster key. port 0 and listen: any port. */
static void tnode_open(struct tnode *n, const char *name, const uint8_t key[32],
                       const struct ppdb_stream_options *o, bool listen, uint16_t port)
{
    memset(n, 0, sizeof(*n));
    n->name = name;
    CHECK_OK(ppdb_env_uv_new(&t_loop, NULL, NULL, &n->envu));
    n->env = ppdb_env_uv_env(n->envu);
    CHECK_OK(ppdb_identity_generate(&n->idn, n->env));
    ppdb_keyring_init(&n->kr);
    if (key) {
        uint32_t id;
        CHECK_OK(ppdb_keyring_install(&n->kr, key, &id));
        CHECK_OK(ppdb_keyring_use(&n->kr, id));
    }
    ppdb_wire_registry_init(&n->reg);
    CHECK_OK(ppdb_wire_registry_add(&n->reg, &t_blob_schema));
    CHECK_OK(ppdb_stream_ep_init(&n->ep, n->env, &n->idn, &n->kr, &n->reg, o, t_on_msg,
                                 t_on_writable, n));
    if (listen) {
        struct ppdb_addr bind;
        ppdb_addr_ipv4(&bind, 127, 0, 0, 1, port);
        CHECK_OK(ppdb_stream_ep_listen(&n->ep, &bind, &n->addr));
    }
    n->open = true;
}

typedef bool (*t_cond_fn)(void *arg);

/* Runs the loop until cond(arg) holds; fails the test after limit_ms. */
static void run_until(t_cond_fn cond, void *arg, uint64_t limit_ms, const char *what)
{
    uint64_t start = uv_now(&t_loop);
    while (!cond(arg)) {
        uv_run(&t_loop, UV_RUN_ONCE);
        uv_update_time(&t_loop);
        if (uv_now(&t_loop) - start > limit_ms) {
            fprintf(stderr, "timed out waiting for: %s\n", what);
            exit(1);
        }
    }
}

/* Runs the loop for ms milliseconds. */
static bool t_never(void *arg)
{
    uint64_t *until = arg;
    return uv_now(&t_loop) >= *until;
}
static void run_for(uint64_t ms)
{
    uv_update_time(&t_loop);
    uint64_t until = uv_now(&t_loop) + ms;
    run_until(t_never, &until, ms + 5000, "run_for");
}

static bool t_ep_idle(void *arg)
{
    return ppdb_stream_ep_idle(arg);
}

static void tnode_close(struct tnode *n)
{
    if (!n->open)
        return;
    ppdb_stream_ep_close(&n->ep);
    run_until(t_ep_idle, &n->ep, 5000, "endpoint closed");
    ppdb_stream_ep_deinit(&n->ep);
    ppdb_keyring_deinit(&n->kr);
    ppdb_env_uv_free(n->envu);
    n->open = false;
}

/* Request bookkeeping. */
struct tcount {
    uint32_t ok, failed, timeouts, resets, canceled, other;
    int last_status;
};

static void t_reply_cb(void *data, int status, const struct ppdb_envelope *reply)
{
    struct tcount *c = data;
    c->last_status = status;
    if (status == 0) {
        CHECK_EQ(reply->hdr.type, PPDB_MSG_PONG);
        c->ok++;
        return;
    }
    c->failed++;
    if (status == PPDB_ETIMEDOUT)
        c->timeouts++;
    else if (status == PPDB_ECONNRESET)
        c->resets++;
    else if (status == PPDB_ECANCELED)
        c->canceled++;
    else
        c->other++;
}

static int t_ping(struct tnode *from, const struct ppdb_addr *to, struct tcount *c,
                  uint32_t timeout_ms)
{
    uint8_t payload[32] = "ping";
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    t_body(&b, payload, sizeof(payload));
    int rc = ppdb_stream_request(&from->ep, to, PPDB_MSG_PING, b.data, b.len, timeout_ms,
                                 t_reply_cb, c, NULL);
    ppdb_buf_deinit(&b);
    return rc;
}

struct t_wait_done {
    struct tcount *c;
    uint32_t want;
};
static bool t_done(void *arg)
{
    struct t_wait_done *w = arg;
    return w->c->ok + w->c->failed >= w->want;
}
static void wait_done(struct tcount *c, uint32_t want, uint64_t limit_ms)
{
    struct t_wait_done w = {c, want};
    run_until(t_done, &w, limit_ms, "requests finished");
}

static struct ppdb_stream_stats t_stats(const struct tnode *n)
{
    struct ppdb_stream_stats s;
    ppdb_stream_ep_stats(&n->ep, &s);
    return s;
}

#endif /* TEST_STREAM_HARNESS_H */
