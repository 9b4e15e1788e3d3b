/*
 * xfer.c - request/response over env byte streams for the node: one
 * request and one reply per connection, each message cut into chunks that
 * are sealed exactly like datagrams: [u16be length][sealed datagram], the
 * envelope of type PPDB_MSG_SWIM_CHUNK {0: message type, 1: data, 2: last}.
 *
 * Why: SWIM's push/pull needs a reliable, authenticated exchange of more
 * than a datagram holds. Sealing chunks with the cluster key reuses the
 * datagram layer's AEAD and replay window (chunks are sealed by a second
 * struct ppdb_dgram with its own boot epoch, so their counters arrive in
 * order even while UDP traffic overtakes them). It stands in for the
 * Noise stream layer (src/ppdb_stream.h); SWIM only sees node_request and
 * ppdb_node_serve, so moving onto that layer changes nothing above.
 *
 * Lifetime: a connection is heap memory freed only by its close callback
 * (or at once when the env is gone, e.g. a crashed simulated node), so
 * write and connect callbacks never see freed memory. Once the node is
 * freed, conn->node is NULL and callbacks only finish the close.
 */
#include "node_int.h"

#define CHUNK_DATA_MAX 1200

struct xfer_conn {
    struct ppdb_node *node; /* NULL once detached */
    struct ppdb_env *env;
    struct xfer_conn *next, *prev;
    struct ppdb_stream *st;
    uint64_t id;
    bool outbound, connecting, closing, done, started;
    struct ppdb_buf in, msg, outb;
    uint32_t msg_type;
    uint64_t msg_reqid;
    struct ppdb_node_id msg_sender;
    struct ppdb_addr peer_addr;
    ppdb_swim_sync_done_cb cb;
    void *cb_data;
    struct ppdb_timer timer;
};

static void conn_free(struct xfer_conn *c)
{
    ppdb_buf_deinit(&c->in);
    ppdb_buf_deinit(&c->msg);
    ppdb_buf_deinit(&c->outb);
    ppdb_free(c);
}

static void close_cb(void *data)
{
    conn_free(data);
}

static void detach(struct xfer_conn *c)
{
    struct ppdb_node *n = c->node;
    if (!n)
        return;
    ppdb_env_timer_cancel(n->env, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nconns--;
    c->node = NULL;
}

/* Ends a connection; an unfinished request reports status. */
static void conn_close(struct xfer_conn *c, int status)
{
    if (c->closing)
        return;
    c->closing = true;
    struct ppdb_node *n = c->node;
    struct ppdb_env *env = c->env;
    if (status != 0)
        n->stats.stream_errors++;
    detach(c);
    if (c->outbound && !c->done) {
        c->done = true;
        c->cb(c->cb_data, status ? status : PPDB_ECONNRESET, NULL, 0);
    }
    if (c->st)
        ppdb_env_stream_close(env, c->st, close_cb, c);
    else if (!c->connecting)
        conn_free(c);
}

static void timeout_cb(struct ppdb_timer *t)
{
    conn_close(t->data, PPDB_ETIMEDOUT);
}

static struct xfer_conn *conn_new(struct ppdb_node *n)
{
    if (n->nconns >= n->cfg.max_stream_conns)
        return NULL;
    struct xfer_conn *c = ppdb_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->node = n;
    c->env = n->env;
    c->id = ++n->next_conn_id;
    ppdb_buf_init(&c->in);
    ppdb_buf_init(&c->msg);
    ppdb_buf_init(&c->outb);
    ppdb_timer_init(&c->timer, timeout_cb, c);
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->nconns++;
    return c;
}

/* Appends the sealed chunks of one message to c->outb. */
static int put_chunks(struct xfer_conn *c, uint32_t type, uint64_t reqid, const uint8_t *body,
                      size_t len)
{
    struct ppdb_node *n = c->node;
    size_t off = 0;
    do {
        size_t part = PPDB_MIN(len - off, (size_t)CHUNK_DATA_MAX);
        uint8_t cb[CHUNK_DATA_MAX + 32], pkt[PPDB_DGRAM_MAX];
        struct ppdb_buf b = {.data = cb, .len = 0, .cap = sizeof(cb)};
        struct ppdb_mpw w;
        ppdb_mpw_init(&w, &b);
        ppdb_mpw_map(&w, 3);
        ppdb_mpw_uint(&w, 0);
        ppdb_mpw_uint(&w, type);
        ppdb_mpw_uint(&w, 1);
        ppdb_mpw_bin(&w, body ? body + off : (const uint8_t *)"", part);
        ppdb_mpw_uint(&w, 2);
        ppdb_mpw_bool(&w, off + part == len);
        PPDB_ASSERT(ppdb_mpw_error(&w) == 0 && b.data == cb);
        size_t plen;
        int rc =
            ppdb_dgram_seal_msg(&n->sdg, PPDB_MSG_SWIM_CHUNK, reqid, b.data, b.len, pkt, &plen);
        if (rc == 0)
            rc = ppdb_buf_append_u16be(&c->outb, (uint16_t)plen);
        if (rc == 0)
            rc = ppdb_buf_append(&c->outb, pkt, plen);
        if (rc)
            return rc;
        off += part;
    } while (off < len);
    return 0;
}

static void write_cb(void *data, struct ppdb_stream *s, int status)
{
    struct xfer_conn *c = data;
    (void)s;
    if (status != 0 && c->node)
        conn_close(c, status);
}

static int flush_out(struct xfer_conn *c)
{
    return ppdb_env_stream_write(c->node->env, c->st, c->outb.data, c->outb.len, write_cb, c);
}

/* Serves one complete request. */
static void serve(struct xfer_conn *c)
{
    struct ppdb_node *n = c->node;
    const struct node_module *mod = node_module_find(n->stream_mods, n->nstream_mods, c->msg_type);
    struct ppdb_node_req req = {.conn_id = c->id,
                                .request_id = c->msg_reqid,
                                .peer = c->msg_sender,
                                .peer_addr = c->peer_addr};
    struct ppdb_buf env;
    struct ppdb_envelope e;
    struct ppdb_envelope_hdr h = {.version = PPDB_WIRE_VERSION,
                                  .type = c->msg_type,
                                  .sender = c->msg_sender,
                                  .request_id = c->msg_reqid};
    ppdb_buf_init(&env);
    if (!mod || ppdb_envelope_encode(&env, &h, c->msg.data, c->msg.len) != 0 ||
        ppdb_envelope_decode(&n->reg, env.data, env.len, &e) != 0) {
        (void)ppdb_node_reply(n, &req, PPDB_MSG_ERROR, NULL, 0);
        ppdb_buf_deinit(&env);
        return;
    }
    ((ppdb_node_request_cb)mod->cb)(mod->data, &req, &e);
    ppdb_envelope_deinit(&e);
    ppdb_buf_deinit(&env);
}

static void deliver(struct xfer_conn *c)
{
    if (!c->outbound) {
        serve(c);
        return;
    }
    c->done = true;
    if (c->msg_type == PPDB_MSG_ERROR)
        c->cb(c->cb_data, PPDB_EPROTO, NULL, 0);
    else
        c->cb(c->cb_data, 0, c->msg.data, c->msg.len);
    if (c->node)
        conn_close(c, 0);
}

/* Opens one chunk; 1 when the message is complete, 0 for more, < 0 error. */
static int take_chunk(struct xfer_conn *c, const uint8_t *p, size_t len)
{
    struct ppdb_node *n = c->node;
    struct ppdb_dgram_msg *m = &n->rx;
    int rc = ppdb_dgram_open(&n->dg, p, len, m);
    if (rc)
        return rc;
    const msgpack_object *b = m->env.body;
    uint32_t type;
    bool last;
    const uint8_t *data;
    size_t dlen;
    if (m->env.hdr.type != PPDB_MSG_SWIM_CHUNK || ppdb_mp_get_u32(b, 0, &type) != 0 ||
        ppdb_mp_get_bin(b, 1, &data, &dlen) != 0 || ppdb_mp_get_bool(b, 2, &last) != 0) {
        rc = PPDB_EPROTO;
    } else if (c->started && (type != c->msg_type || m->env.hdr.request_id != c->msg_reqid ||
                              !ppdb_node_id_equal(&m->env.hdr.sender, &c->msg_sender))) {
        rc = PPDB_EPROTO;
    } else if (c->msg.len + dlen > n->cfg.max_stream_bytes) {
        rc = PPDB_ELIMIT;
    } else {
        c->started = true;
        c->msg_type = type;
        c->msg_reqid = m->env.hdr.request_id;
        c->msg_sender = m->env.hdr.sender;
        rc = ppdb_buf_append(&c->msg, data, dlen);
        if (rc == 0)
            rc = last ? 1 : 0;
    }
    ppdb_dgram_msg_deinit(m);
    return rc;
}

static void read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len, int status)
{
    struct xfer_conn *c = data;
    (void)s;
    if (!c->node || c->closing)
        return;
    if (status != 0) {
        conn_close(c, c->outbound ? status : 0);
        return;
    }
    if (c->done || ppdb_buf_append(&c->in, buf, len) != 0) {
        conn_close(c, PPDB_EPROTO);
        return;
    }
    size_t off = 0;
    while (c->in.len - off >= 2) {
        size_t flen = (size_t)c->in.data[off] << 8 | c->in.data[off + 1];
        if (flen > PPDB_DGRAM_MAX) {
            conn_close(c, PPDB_EPROTO);
            return;
        }
        if (c->in.len - off < 2 + flen)
            break;
        int rc = take_chunk(c, c->in.data + off + 2, flen);
        off += 2 + flen;
        if (rc < 0) {
            conn_close(c, rc);
            return;
        }
        if (rc == 1) {
            deliver(c);
            return;
        }
    }
    memmove(c->in.data, c->in.data + off, c->in.len - off);
    c->in.len -= off;
}

static void connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct xfer_conn *c = data;
    c->connecting = false;
    if (!c->node || c->closing) { /* gone meanwhile: finish the close */
        if (s)
            ppdb_env_stream_close(c->env, s, close_cb, c);
        else
            conn_free(c);
        return;
    }
    if (status != 0) {
        conn_close(c, status);
        return;
    }
    c->st = s;
    int rc = ppdb_env_stream_read_start(c->node->env, s, read_cb, c);
    if (rc == 0)
        rc = flush_out(c);
    if (rc)
        conn_close(c, rc);
}

int node_request(struct ppdb_node *n, const struct ppdb_addr *to, uint32_t type,
                 const uint8_t *body, size_t len, uint32_t timeout_ms, ppdb_swim_sync_done_cb cb,
                 void *cb_data)
{
    struct xfer_conn *c = conn_new(n);
    if (!c)
        return PPDB_ELIMIT;
    c->outbound = true;
    c->cb = cb;
    c->cb_data = cb_data;
    c->peer_addr = *to;
    int rc = put_chunks(c, type, 0, body, len);
    if (rc == 0)
        rc = ppdb_env_connect(n->env, to, connect_cb, c);
    if (rc) {
        detach(c);
        conn_free(c);
        return rc;
    }
    c->connecting = true;
    n->stats.streams_out++;
    int arc = ppdb_env_timer_arm(n->env, &c->timer, timeout_ms);
    PPDB_ASSERT(arc == 0);
    return 0;
}

void node_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct ppdb_node *n = data;
    (void)l;
    struct xfer_conn *c = conn_new(n);
    if (!c) {
        n->stats.stream_errors++;
        ppdb_env_stream_close(n->env, s, NULL, NULL);
        return;
    }
    c->st = s;
    n->stats.streams_in++;
    (void)ppdb_env_stream_peer_addr(n->env, s, &c->peer_addr);
    int rc = ppdb_env_stream_read_start(n->env, s, read_cb, c);
    if (rc == 0)
        rc = ppdb_env_timer_arm(n->env, &c->timer, n->params.sync_timeout_ms);
    if (rc)
        conn_close(c, rc);
}

int ppdb_node_reply(struct ppdb_node *n, const struct ppdb_node_req *req, uint32_t type,
                    const uint8_t *body, size_t body_len)
{
    struct xfer_conn *c = n->conns;
    while (c && c->id != req->conn_id)
        c = c->next;
    if (!c || c->outbound || c->done)
        return PPDB_ECONNRESET;
    c->done = true;
    int rc = put_chunks(c, type, req->request_id, body, body_len);
    if (rc == 0)
        rc = flush_out(c);
    if (rc == 0)
        rc = ppdb_env_stream_shutdown(n->env, c->st);
    if (rc) {
        conn_close(c, rc);
        return rc;
    }
    n->stats.requests_served++;
    return 0; /* the requester closes; our read then ends and we close */
}

static void noop_cb(struct ppdb_timer *t)
{
    (void)t;
}

/* True when the env refuses calls (a crashed simulated node): no callback
 * can come any more, so memory is released at once. */
static bool env_gone(struct ppdb_env *env)
{
    struct ppdb_timer t;
    ppdb_timer_init(&t, noop_cb, NULL);
    if (ppdb_env_timer_arm(env, &t, UINT32_MAX) != 0)
        return true;
    ppdb_env_timer_cancel(env, &t);
    return false;
}

void node_xfer_close_all(struct ppdb_node *n)
{
    if (!n->conns)
        return;
    bool gone = env_gone(n->env);
    while (n->conns) {
        struct xfer_conn *c = n->conns;
        struct ppdb_stream *st = c->st;
        bool connecting = c->connecting;
        c->closing = true;
        c->done = true; /* the node is going: no request callback runs */
        detach(c);
        if (gone)
            conn_free(c);
        else if (st)
            ppdb_env_stream_close(n->env, st, close_cb, c);
        else if (!connecting)
            conn_free(c);
    }
}
