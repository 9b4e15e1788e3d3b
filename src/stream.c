/*
 * stream.c - connections of a stream endpoint over the env seam: connect
 * and accept, the handshake on the wire, frames in and out, batching and
 * back-pressure. The request/response layer is in rpc.c.
 *
 * Wire: every handshake message and every frame starts with a u32be
 * length (docs/formats/wire.md, "Streams"). Handshake messages are bounded by
 * PPDB_NOISE_MSG_MAX, frames by opt.max_frame; either bound broken is a
 * counted, fatal error, as is any failed handshake or frame.
 *
 * Batching: messages are appended to one buffer per connection that
 * starts with room for the frame header; a 0 ms env timer (one loop turn)
 * or a full frame seals it in place and hands it to the env, which borrows
 * it until the write completes. So a burst of small messages costs one
 * AEAD call and one write. Buffers of completed writes are reused for later
 * frames while the connection is busy (bounded, dropped when idle), and a
 * batch grows at most once, to max_frame: a stream of large messages costs
 * one copy of each body plus the seal, and no allocation per frame.
 *
 * Reads: bytes are appended to rbuf and frames opened in place there; a
 * frame that arrived whole in one env read is opened straight from the
 * env's buffer into rbuf's memory instead (consume_direct).
 *
 * Back-pressure: out = batched + pending-in-the-env bytes. Sends (not
 * replies) are refused with EAGAIN at high_water; when writes drain it to
 * low_water, on_writable fires. Inbound: reads stop while the application
 * holds max_inbound unanswered requests (or paused the connection), so
 * unread bytes stay below one frame plus one env read.
 *
 * Invariants: see stream_int.h. All time and I/O goes through the env.
 */
#include <sodium.h>

#include "stream_int.h"

/* Handshake refusal notice: a record of length 0 followed by one reason
 * byte, sent in the clear by a responder that does not hold the cluster key
 * the initiator named (docs/formats/wire.md, "Streams"). */
#define HS_REJECT_LEN         (PPDB_FRAME_HDR_LEN + 1)
#define HS_REJECT_UNKNOWN_KEY 1
#define HS_REJECT_LINGER_MS   1000

#define COMP          "stream"
#define READ_LOOP_MAX 4096 /* frames consumed per process() call */

static void process(struct ppdb_stream_conn *c);
static void flush(struct ppdb_stream_conn *c);
static void read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len, int status);

/* ------------------------------------------------------------ table */

static void table_remove(struct ppdb_stream_ep *ep, struct ppdb_stream_conn *c)
{
    for (uint32_t i = 0; i < ep->nconns; i++) {
        if (ep->conns[i] != c)
            continue;
        memmove(&ep->conns[i], &ep->conns[i + 1], (ep->nconns - i - 1) * sizeof(ep->conns[0]));
        ep->nconns--;
        return;
    }
}

struct ppdb_stream_conn *conn_find_addr(struct ppdb_stream_ep *ep, const struct ppdb_addr *a)
{
    for (uint32_t i = 0; i < ep->nconns; i++)
        if (!ep->conns[i]->inbound && ppdb_addr_equal(&ep->conns[i]->addr, a))
            return ep->conns[i];
    return NULL;
}

struct ppdb_stream_conn *conn_find_id(const struct ppdb_stream_ep *ep, uint64_t id)
{
    for (uint32_t i = 0; i < ep->nconns; i++)
        if (ep->conns[i]->id == id)
            return ep->conns[i];
    return NULL;
}

size_t conn_out_bytes(const struct ppdb_stream_conn *c)
{
    return c->batch.len + c->pending;
}

/* --------------------------------------------------------- lifecycle */

static uint32_t spares_max(const struct ppdb_stream_ep *ep)
{
    size_t n = ep->opt.high_water / ep->opt.max_frame + 2;
    return (uint32_t)PPDB_MIN(n, (size_t)STREAM_SPARES_MAX);
}

static void drop_spares(struct ppdb_stream_conn *c)
{
    while (c->nspares > 0)
        ppdb_buf_deinit(&c->spares[--c->nspares]);
}

static void conn_free(struct ppdb_stream_conn *c)
{
    struct ppdb_stream_ep *ep = c->ep;
    struct ppdb_frame_stats *t = &ep->stats.frames, *f = &c->rx.stats;
    t->frames += f->frames;
    t->messages += f->messages;
    t->bytes += f->bytes;
    t->auth_failed += f->auth_failed;
    t->replayed += f->replayed;
    t->oversized += f->oversized;
    t->truncated += f->truncated;
    t->malformed += f->malformed;
    t->rekeys += f->rekeys + c->tx.rekeys;
    ppdb_buf_deinit(&c->rbuf);
    ppdb_buf_deinit(&c->batch);
    drop_spares(c);
    if (c->owned_prev)
        c->owned_prev->owned_next = c->owned_next;
    else
        ep->owned = c->owned_next;
    if (c->owned_next)
        c->owned_next->owned_prev = c->owned_prev;
    sodium_memzero(c, sizeof(*c));
    ppdb_free(c);
    PPDB_ASSERT_CMP(ep->live, >, 0);
    ep->live--;
}

static void closed_cb(void *data)
{
    conn_free(data);
}

static void idle_cb(struct ppdb_timer *t);
static void hs_timeout_cb(struct ppdb_timer *t);
static void flush_cb(struct ppdb_timer *t);

static struct ppdb_stream_conn *conn_new(struct ppdb_stream_ep *ep, bool inbound)
{
    if (ep->nconns >= ep->opt.max_conns) {
        ep->stats.conn_limit++;
        return NULL;
    }
    struct ppdb_stream_conn *c = ppdb_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ep = ep;
    c->id = ++ep->next_conn_id;
    c->inbound = inbound;
    ppdb_buf_init(&c->rbuf);
    ppdb_buf_init(&c->batch);
    ppdb_timer_init(&c->hs_timer, hs_timeout_cb, c);
    ppdb_timer_init(&c->idle_timer, idle_cb, c);
    ppdb_timer_init(&c->flush_timer, flush_cb, c);
    c->last_active_ms = ppdb_env_mono_ms(ep->env);
    ep->conns[ep->nconns++] = c;
    ep->live++;
    c->owned_next = ep->owned;
    if (ep->owned)
        ep->owned->owned_prev = c;
    ep->owned = c;
    (void)ppdb_env_timer_arm(ep->env, &c->hs_timer, ep->opt.handshake_timeout_ms);
    return c;
}

void conn_close(struct ppdb_stream_conn *c, int status)
{
    struct ppdb_stream_ep *ep = c->ep;
    if (c->closing)
        return;
    c->closing = true;
    table_remove(ep, c);
    ppdb_env_timer_cancel(ep->env, &c->hs_timer);
    ppdb_env_timer_cancel(ep->env, &c->idle_timer);
    ppdb_env_timer_cancel(ep->env, &c->flush_timer);
    ppdb_stream_hs_wipe(&c->hs);
    if (c->s)
        ppdb_env_stream_close(ep->env, c->s, closed_cb, c);
    rpc_fail_all(c, status);
    if (!c->s && !c->connect_pending)
        conn_free(c);
}

/* A fatal error: count it and close. */
static void conn_fail(struct ppdb_stream_conn *c, int status, const char *why)
{
    struct ppdb_stream_ep *ep = c->ep;
    char a[PPDB_ADDR_STRLEN];
    PPDB_LOG(ep->env->log, PPDB_LOG_DEBUG, COMP, "connection failed", "peer=%s err=%s why=%s",
             ppdb_addr_format(&c->addr, a), ppdb_errname(status), why);
    conn_close(c, c->state == CONN_OPEN ? PPDB_ECONNRESET : status);
}

static void hs_failed(struct ppdb_stream_conn *c, int rc)
{
    struct ppdb_stream_stats *st = &c->ep->stats;
    st->handshake_failed++;
    if (rc == PPDB_EAUTH)
        st->hs_auth++;
    else if (rc == PPDB_ENOKEY)
        st->hs_unknown_key++;
    else if (rc == PPDB_ETIMEDOUT)
        st->hs_timeout++;
    else
        st->hs_proto++;
    conn_fail(c, rc, "handshake");
}

static void hs_timeout_cb(struct ppdb_timer *t)
{
    struct ppdb_stream_conn *c = t->data;
    if (c->rejecting)
        conn_close(c, PPDB_ENOKEY);
    else if (c->state != CONN_OPEN)
        hs_failed(c, PPDB_ETIMEDOUT);
}

static bool conn_kept(const struct ppdb_stream_conn *c)
{
    return !c->inbound && c->ep->has_keep && ppdb_addr_equal(&c->addr, &c->ep->keep);
}

/* How long c may stay quiet before it is closed (UINT64_MAX: kept). */
static uint64_t idle_limit(const struct ppdb_stream_conn *c)
{
    const struct ppdb_stream_options *o = &c->ep->opt;
    if (conn_kept(c))
        return UINT64_MAX;
    return c->inbound && o->inbound_idle_ms ? o->inbound_idle_ms : o->idle_ms;
}

/* A quiet connection left open holds no buffers (they are sized again by
 * the next message: a 10,000-member state pulled once is not kept). */
static void conn_trim(struct ppdb_stream_conn *c)
{
    ppdb_buf_deinit(&c->rbuf);
    ppdb_buf_init(&c->rbuf);
    ppdb_buf_deinit(&c->batch);
    ppdb_buf_init(&c->batch);
    drop_spares(c);
}

static void idle_cb(struct ppdb_timer *t)
{
    struct ppdb_stream_conn *c = t->data;
    struct ppdb_stream_ep *ep = c->ep;
    uint64_t now = ppdb_env_mono_ms(ep->env);
    uint64_t quiet = now - c->last_active_ms, limit = idle_limit(c);
    bool busy = c->inflight || c->inbound_unanswered || conn_out_bytes(c) || c->rbuf.len;
    if (!busy && quiet >= limit) {
        ep->stats.idle_closed++;
        conn_close(c, PPDB_ECONNRESET);
        return;
    }
    if (!busy && quiet >= ep->opt.idle_ms)
        conn_trim(c);
    /* next look: when it turns idle, then at its limit (a kept one, and
     * one whose limit is long, every idle_ms: keep may change) */
    uint64_t left = quiet < ep->opt.idle_ms ? ep->opt.idle_ms - quiet : ep->opt.idle_ms;
    if (quiet >= ep->opt.idle_ms && quiet < limit && limit - quiet < left)
        left = limit - quiet; /* > 0 */
    (void)ppdb_env_timer_arm(ep->env, &c->idle_timer, left);
}

void ppdb_stream_ep_keep(struct ppdb_stream_ep *ep, const struct ppdb_addr *addr)
{
    ep->has_keep = addr != NULL;
    if (addr)
        ep->keep = *addr;
}

/* ------------------------------------------------------------ writes */

struct write_ctx {
    struct ppdb_stream_conn *c;
    struct write_ctx *prev, *next; /* c->writes */
    struct ppdb_buf buf;           /* owned; len bytes handed to the env */
};

static void write_unlink(struct write_ctx *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->c->writes = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

/* Frees the writes the env still holds, which it will never complete. */
static void writes_drop(struct ppdb_stream_conn *c)
{
    while (c->writes) {
        struct write_ctx *w = c->writes;
        write_unlink(w);
        ppdb_buf_deinit(&w->buf);
        ppdb_free(w);
    }
    c->pending = 0;
}

/* A written buffer becomes a later batch's buffer while the connection
 * has more to send: a streaming connection then seals into memory that is
 * already mapped and sized (no malloc, page faults or regrowth per frame).
 * An idle connection keeps none; a busy one at most spares_max(). */
static void recycle(struct ppdb_stream_conn *c, struct ppdb_buf *b)
{
    if (!c->closing && conn_out_bytes(c) > 0 && c->nspares < spares_max(c->ep)) {
        b->len = 0;
        c->spares[c->nspares++] = *b;
        ppdb_buf_init(b);
        return;
    }
    ppdb_buf_deinit(b);
    if (conn_out_bytes(c) == 0)
        drop_spares(c);
}

static void write_done_cb(void *data, struct ppdb_stream *s, int status)
{
    struct write_ctx *w = data;
    struct ppdb_stream_conn *c = w->c;
    write_unlink(w);
    struct ppdb_stream_ep *ep = c->ep;
    c->pending -= w->buf.len;
    recycle(c, &w->buf);
    ppdb_free(w);
    if (c->closing)
        return;
    if (status < 0) {
        ep->stats.write_errors++;
        conn_fail(c, PPDB_ECONNRESET, "write");
        return;
    }
    if (c->want_writable && conn_out_bytes(c) <= ep->opt.low_water) {
        c->want_writable = false;
        if (ep->on_writable)
            ep->on_writable(ep->data, &c->addr);
    }
}

/* Hands b's bytes to the env, which borrows them until the write
 * completes; takes ownership of b (frees it on error). */
static int write_owned(struct ppdb_stream_conn *c, struct ppdb_buf *b)
{
    struct ppdb_stream_ep *ep = c->ep;
    struct write_ctx *w = ppdb_malloc(sizeof(*w));
    size_t len = b->len;
    int rc = w ? 0 : PPDB_ENOMEM;
    if (rc == 0) {
        *w = (struct write_ctx){c, NULL, c->writes, *b};
        rc = ppdb_env_stream_write(ep->env, c->s, b->data, len, write_done_cb, w);
    }
    if (rc == 0) {
        if (c->writes)
            c->writes->prev = w;
        c->writes = w;
    }
    if (rc < 0) {
        ppdb_free(w);
        ppdb_buf_deinit(b);
        ep->stats.write_errors++;
        return rc;
    }
    ppdb_buf_init(b);
    c->pending += len;
    size_t out = conn_out_bytes(c);
    if (out > ep->stats.peak_out_bytes)
        ep->stats.peak_out_bytes = out;
    c->last_active_ms = ppdb_env_mono_ms(ep->env);
    return 0;
}

/* Seals the batch into a frame and writes it. */
static void flush(struct ppdb_stream_conn *c)
{
    struct ppdb_stream_ep *ep = c->ep;
    if (c->closing || c->state != CONN_OPEN || c->batch.len == 0)
        return;
    ppdb_env_timer_cancel(ep->env, &c->flush_timer);
    if (ppdb_buf_reserve(&c->batch, PPDB_NOISE_TAG_LEN) < 0) {
        conn_fail(c, PPDB_ENOMEM, "flush");
        return;
    }
    c->batch.len = ppdb_frame_seal(&c->tx, c->batch.data, c->batch.len - PPDB_FRAME_HDR_LEN);
    ep->stats.frames_out++;
    ep->stats.bytes_out += c->batch.len;
    ep->stats.msgs_out += c->batch_msgs;
    c->batch_msgs = 0;
    if (write_owned(c, &c->batch) < 0)
        conn_fail(c, PPDB_ECONNRESET, "write");
}

/* One loop turn after a message was queued or a paused read may resume. */
static void flush_cb(struct ppdb_timer *t)
{
    struct ppdb_stream_conn *c = t->data;
    flush(c);
    if (!c->closing)
        conn_update_reading(c);
}

static size_t max_plain(const struct ppdb_stream_ep *ep)
{
    return ep->opt.max_frame - PPDB_FRAME_OVERHEAD;
}

/* Makes room for `need` more bytes in the batch, started with header room
 * if empty. A new batch is sized for what it is asked to hold (at least
 * BATCH_MIN) and doubles, up to a whole frame, when more messages join it:
 * most batches carry one small message, and a node with many quiet
 * connections should not hold (or fault in) 64 KiB for each one (the
 * seal appends its tag within max_frame: see conn_append's bound). */
#define BATCH_MIN 4096u
static int batch_room(struct ppdb_stream_conn *c, size_t need)
{
    size_t max_frame = c->ep->opt.max_frame;
    if (c->batch.data == NULL && c->nspares > 0)
        c->batch = c->spares[--c->nspares];
    if (c->batch.len == 0) {
        size_t want = PPDB_MIN(PPDB_MAX((size_t)BATCH_MIN, PPDB_FRAME_HDR_LEN + need), max_frame);
        int rc = ppdb_buf_reserve(&c->batch, want);
        if (rc < 0)
            return rc;
        c->batch.len = PPDB_FRAME_HDR_LEN; /* header room */
    }
    if (need <= c->batch.cap - c->batch.len)
        return 0;
    size_t cap = PPDB_MIN(max_frame, PPDB_MAX(2 * c->batch.cap, c->batch.len + need));
    cap = PPDB_MAX(cap, c->batch.len + need); /* more only if a flush was refused */
    uint8_t *p = ppdb_realloc(c->batch.data, cap);
    if (!p)
        return PPDB_ENOMEM;
    c->batch.data = p;
    c->batch.cap = cap;
    return 0;
}

int conn_append(struct ppdb_stream_conn *c, bool reply, const struct ppdb_envelope_hdr *h,
                const uint8_t *body, size_t body_len)
{
    struct ppdb_stream_ep *ep = c->ep;
    const size_t env_max = 64; /* envelope bytes around the body, at most */
    if (body_len + env_max + PPDB_FRAME_MSG_HDR > max_plain(ep) - PPDB_FRAME_HDR_LEN) {
        ep->stats.too_large++;
        return PPDB_ERANGE;
    }
    if (c->batch.len + PPDB_FRAME_MSG_HDR + body_len + env_max > max_plain(ep)) {
        if (c->state != CONN_OPEN) { /* one frame waits for the handshake, no more */
            ep->stats.send_refused++;
            c->want_writable = true;
            return PPDB_EAGAIN;
        }
        flush(c);
    }
    int rc = batch_room(c, PPDB_FRAME_MSG_HDR + body_len + env_max + PPDB_NOISE_TAG_LEN);
    size_t at = c->batch.len;
    if (rc == 0)
        rc = ppdb_buf_append_u32be(&c->batch, 0);
    if (rc == 0)
        rc = ppdb_envelope_encode(&c->batch, h, body, body_len);
    if (rc < 0) {
        c->batch.len = at == PPDB_FRAME_HDR_LEN ? 0 : at;
        return rc;
    }
    uint32_t len = (uint32_t)(c->batch.len - at - PPDB_FRAME_MSG_HDR);
    ppdb_store_u32be(c->batch.data + at, len | (reply ? PPDB_FRAME_REPLY_BIT : 0));
    c->batch_msgs++;
    if (c->state == CONN_OPEN && !ppdb_timer_armed(&c->flush_timer))
        (void)ppdb_env_timer_arm(ep->env, &c->flush_timer, 0);
    return 0;
}

/* -------------------------------------------------------- handshake */

static void hs_send(struct ppdb_stream_conn *c)
{
    struct ppdb_buf msg;
    size_t len = 0;
    ppdb_buf_init(&msg);
    int rc = ppdb_buf_reserve(&msg, PPDB_FRAME_HDR_LEN + PPDB_NOISE_MSG_MAX);
    if (rc == 0)
        rc = ppdb_stream_hs_write(&c->hs, msg.data + PPDB_FRAME_HDR_LEN, PPDB_NOISE_MSG_MAX, &len);
    if (rc == 0) {
        ppdb_store_u32be(msg.data, (uint32_t)len);
        msg.len = PPDB_FRAME_HDR_LEN + len;
        rc = write_owned(c, &msg); /* takes msg */
    }
    ppdb_buf_deinit(&msg);
    if (rc < 0)
        hs_failed(c, rc);
}

static void establish(struct ppdb_stream_conn *c)
{
    struct ppdb_stream_ep *ep = c->ep;
    ppdb_stream_hs_split(&c->hs, &c->tx.cs, &c->rx.cs);
    c->tx.rekey_frames = ep->opt.rekey_frames;
    c->rx.rekey_frames = ep->opt.rekey_frames;
    c->rx.max_frame = ep->opt.max_frame;
    struct ppdb_stream_peer *p = &c->peer;
    p->conn_id = c->id;
    p->role = c->hs.peer_role;
    p->id = c->hs.peer_id;
    memcpy(p->sign_pk, c->hs.peer_sign_pk, 32);
    p->addr = c->addr;
    p->inbound = c->inbound;
    p->key_id = c->hs.key_id;
    p->cipher = c->hs.cipher;
    ppdb_stream_hs_wipe(&c->hs);
    c->state = CONN_OPEN;
    ep->stats.handshakes++;
    ppdb_env_timer_cancel(ep->env, &c->hs_timer);
    (void)ppdb_env_timer_arm(ep->env, &c->idle_timer, ep->opt.idle_ms);
    flush(c); /* what was queued while connecting */
}

/* Responder: the initiator named a cluster key this node does not hold.
 * Say so in the clear before hanging up, so a client can tell "wrong key"
 * from "node down". The notice is unauthenticated: an on-path attacker could
 * forge it, but could as well reset the connection; it changes only which
 * error the initiator reports. Half-close, then close when the initiator
 * hangs up or after a short linger. */
static void hs_reject(struct ppdb_stream_conn *c)
{
    struct ppdb_stream_ep *ep = c->ep;
    struct ppdb_buf msg;
    const uint8_t rec[HS_REJECT_LEN] = {0, 0, 0, 0, HS_REJECT_UNKNOWN_KEY};
    ep->stats.handshake_failed++;
    ep->stats.hs_unknown_key++;
    ppdb_buf_init(&msg);
    if (ppdb_buf_append(&msg, rec, sizeof(rec)) == 0 && write_owned(c, &msg) == 0 &&
        ppdb_env_stream_shutdown(ep->env, c->s) == 0) {
        ppdb_buf_deinit(&msg);
        c->rejecting = true;
        (void)ppdb_env_timer_arm(ep->env, &c->hs_timer, HS_REJECT_LINGER_MS);
        return;
    }
    ppdb_buf_deinit(&msg);
    conn_fail(c, PPDB_ENOKEY, "handshake: unknown key");
}

static void hs_step(struct ppdb_stream_conn *c, uint8_t *msg, size_t len)
{
    int rc = ppdb_stream_hs_read(&c->hs, msg, len);
    if (rc == PPDB_ENOKEY && c->inbound && c->s) {
        hs_reject(c);
        return;
    }
    if (rc < 0) {
        hs_failed(c, rc);
        return;
    }
    if (ppdb_stream_hs_my_turn(&c->hs))
        hs_send(c);
    if (!c->closing && c->hs.done)
        establish(c);
}

/* ------------------------------------------------------------- reads */

static int msg_cb(void *data, const uint8_t *msg, size_t n, bool reply)
{
    struct ppdb_stream_conn *c = data;
    struct ppdb_stream_ep *ep = c->ep;
    struct ppdb_envelope e;
    int rc = ppdb_envelope_decode(ep->reg, msg, n, &e);
    if (rc < 0) {
        if (rc == PPDB_ENOTSUP)
            ep->stats.unknown_type++;
        else
            ep->stats.bad_envelope++;
        if (rc == PPDB_ENOTSUP && !reply && e.hdr.request_id != 0)
            (void)conn_append(c, true,
                              &(struct ppdb_envelope_hdr){PPDB_WIRE_VERSION, PPDB_MSG_ERROR,
                                                          ep->idn->id, e.hdr.request_id},
                              NULL, 0);
        return 0;
    }
    if (reply) {
        rpc_complete(c, &e);
    } else {
        ep->stats.msgs_in++;
        if (e.hdr.request_id != 0 && ++c->inbound_unanswered >= ep->opt.max_inbound)
            c->paused_inbound = true;
        ep->on_msg(ep->data, &c->peer, &e);
    }
    ppdb_envelope_deinit(&e);
    return c->closing ? 1 : 0;
}

/* Opens a frame and dispatches its messages: in place, or (src non-NULL)
 * from read-only src into p. */
static void dispatch(struct ppdb_stream_conn *c, const uint8_t *src, uint8_t *p, size_t len)
{
    c->in_dispatch = true;
    int rc = src ? ppdb_frame_open_from(&c->rx, src, len, p, msg_cb, c)
                 : ppdb_frame_open(&c->rx, p, len, msg_cb, c);
    c->in_dispatch = false;
    c->last_active_ms = ppdb_env_mono_ms(c->ep->env);
    if (rc < 0 && !c->closing)
        conn_fail(c, rc, "frame");
}

/* Consumes one complete unit (handshake message or frame) at rbuf+off. */
static void consume(struct ppdb_stream_conn *c, uint8_t *p, size_t len)
{
    if (c->state != CONN_OPEN && ppdb_load_u32be(p) == 0) { /* refusal notice (peek) */
        PPDB_ASSERT(!c->inbound && len == HS_REJECT_LEN);
        hs_failed(c, p[PPDB_FRAME_HDR_LEN] == HS_REJECT_UNKNOWN_KEY ? PPDB_ENOKEY : PPDB_EAUTH);
        return;
    }
    if (c->state != CONN_OPEN) {
        hs_step(c, p + PPDB_FRAME_HDR_LEN, len - PPDB_FRAME_HDR_LEN);
        return;
    }
    dispatch(c, NULL, p, len);
}

static bool paused(const struct ppdb_stream_conn *c);

/* With nothing buffered, whole frames at the start of an env read are
 * opened straight from the env's buffer into rbuf's memory (rbuf.len stays
 * 0: it is scratch), so their bytes are copied once, by the decryption,
 * instead of appended and then decrypted in place. Returns the bytes
 * consumed; the rest (a partial frame) takes the buffered path. */
static size_t consume_direct(struct ppdb_stream_conn *c, const uint8_t *buf, size_t n)
{
    size_t off = 0;
    if (c->rbuf.len != 0 || c->state != CONN_OPEN)
        return 0;
    for (int i = 0; i < READ_LOOP_MAX && !c->closing && !paused(c) && !c->in_dispatch; i++) {
        size_t len = 0;
        int rc = ppdb_frame_peek(&c->rx, buf + off, n - off, &len);
        if (rc < 0) {
            conn_fail(c, rc, "frame header");
            return n;
        }
        if (len == 0)
            break;
        if (ppdb_buf_reserve(&c->rbuf, len) < 0) {
            conn_fail(c, PPDB_ENOMEM, "read buffer");
            return n;
        }
        dispatch(c, buf + off, c->rbuf.data, len);
        off += len;
    }
    return off;
}

/* Length of the unit at p, 0 if incomplete, < 0 if refused (counted). */
static int peek(struct ppdb_stream_conn *c, const uint8_t *p, size_t n, size_t *len)
{
    if (c->state == CONN_OPEN)
        return ppdb_frame_peek(&c->rx, p, n, len);
    *len = 0;
    if (n < PPDB_FRAME_HDR_LEN)
        return 0;
    uint32_t l = ppdb_load_u32be(p);
    if (l == 0 && !c->inbound) { /* refusal notice: one reason byte follows */
        if (n >= HS_REJECT_LEN)
            *len = HS_REJECT_LEN;
        return 0;
    }
    if (l > PPDB_NOISE_MSG_MAX || l == 0)
        return PPDB_EPROTO;
    if (n >= l + PPDB_FRAME_HDR_LEN)
        *len = l + PPDB_FRAME_HDR_LEN;
    return 0;
}

static bool paused(const struct ppdb_stream_conn *c)
{
    return c->paused_app || c->paused_inbound;
}

static void process(struct ppdb_stream_conn *c)
{
    size_t off = 0;
    if (c->rejecting) /* nothing more is read from a refused initiator */
        c->rbuf.len = 0;
    if (c->rbuf.len == 0)
        return;
    for (int i = 0; i < READ_LOOP_MAX && !c->closing && !paused(c) && !c->in_dispatch; i++) {
        size_t len = 0;
        int rc = peek(c, c->rbuf.data + off, c->rbuf.len - off, &len);
        if (rc < 0) {
            if (c->state == CONN_OPEN)
                conn_fail(c, rc, "frame header");
            else
                hs_failed(c, rc);
            return;
        }
        if (len == 0)
            break;
        consume(c, c->rbuf.data + off, len);
        off += len;
    }
    if (c->closing || off == 0)
        return;
    memmove(c->rbuf.data, c->rbuf.data + off, c->rbuf.len - off);
    c->rbuf.len -= off;
}

void conn_update_reading(struct ppdb_stream_conn *c)
{
    struct ppdb_env *env = c->ep->env;
    if (!c->closing && !paused(c))
        process(c); /* frames buffered while paused */
    bool want = !c->closing && c->s && !c->read_ended && !paused(c);
    if (want == c->reading)
        return;
    c->reading = want;
    if (!want)
        ppdb_env_stream_read_stop(env, c->s);
    else if (ppdb_env_stream_read_start(env, c->s, read_cb, c) < 0)
        conn_fail(c, PPDB_ECONNRESET, "read start");
}

static void on_end(struct ppdb_stream_conn *c, int status)
{
    c->read_ended = true;
    c->reading = false;
    if (c->rejecting) {
        conn_close(c, PPDB_ENOKEY);
        return;
    }
    if (c->rbuf.len > 0)
        c->rx.stats.truncated++;
    if (c->state != CONN_OPEN) {
        hs_failed(c, PPDB_ECONNRESET);
        return;
    }
    c->ep->stats.reset++;
    conn_fail(c, PPDB_ECONNRESET, status == PPDB_ECLOSED ? "eof" : "read error");
}

static void read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len, int status)
{
    struct ppdb_stream_conn *c = data;
    struct ppdb_stream_ep *ep = c->ep;
    if (c->closing)
        return;
    if (status < 0) {
        process(c);
        if (!c->closing)
            on_end(c, status);
        return;
    }
    size_t used = consume_direct(c, buf, len);
    if (c->closing)
        return;
    if (ppdb_buf_append(&c->rbuf, buf + used, len - used) < 0) {
        conn_fail(c, PPDB_ENOMEM, "read buffer");
        return;
    }
    if (c->rbuf.len > ep->stats.peak_in_bytes)
        ep->stats.peak_in_bytes = c->rbuf.len;
    process(c);
    if (!c->closing && paused(c) && c->reading) {
        c->reading = false;
        ep->stats.read_pauses++;
        ppdb_env_stream_read_stop(ep->env, c->s);
    }
}

void conn_inbound_done(struct ppdb_stream_conn *c)
{
    PPDB_ASSERT_CMP(c->inbound_unanswered, >, 0);
    c->inbound_unanswered--;
    if (c->paused_inbound && c->inbound_unanswered <= c->ep->opt.max_inbound / 2) {
        c->paused_inbound = false; /* resumed by flush_cb, never re-entrantly */
        if (!ppdb_timer_armed(&c->flush_timer))
            (void)ppdb_env_timer_arm(c->ep->env, &c->flush_timer, 0);
    }
}

/* ------------------------------------------------------ connect/accept */

static int start(struct ppdb_stream_conn *c, bool initiator)
{
    struct ppdb_stream_ep *ep = c->ep;
    uint8_t e_sk[32];
    ppdb_env_random(ep->env, e_sk, sizeof(e_sk));
    int rc = ppdb_stream_hs_init(&c->hs, initiator, ep->opt.role, ep->idn, ep->kr, ep->opt.ciphers,
                                 e_sk);
    sodium_memzero(e_sk, sizeof(e_sk));
    c->state = CONN_HANDSHAKE;
    c->reading = true;
    if (rc == 0)
        rc = ppdb_env_stream_read_start(ep->env, c->s, read_cb, c);
    if (rc == 0 && initiator)
        hs_send(c);
    return rc;
}

static void connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct ppdb_stream_conn *c = data;
    struct ppdb_stream_ep *ep = c->ep;
    c->connect_pending = false;
    if (c->closing) {
        if (s)
            ppdb_env_stream_close(ep->env, s, closed_cb, c);
        else
            conn_free(c);
        return;
    }
    if (status < 0) {
        ep->stats.connect_failed++;
        conn_close(c, status);
        return;
    }
    c->s = s;
    ep->stats.connected++;
    int rc = start(c, true);
    if (rc < 0 && !c->closing)
        hs_failed(c, rc);
}

int conn_open_out(struct ppdb_stream_ep *ep, const struct ppdb_addr *a,
                  struct ppdb_stream_conn **out)
{
    struct ppdb_stream_conn *c = conn_new(ep, false);
    if (!c)
        return ep->nconns >= ep->opt.max_conns ? PPDB_ELIMIT : PPDB_ENOMEM;
    c->addr = *a;
    c->connect_pending = true;
    int rc = ppdb_env_connect(ep->env, a, connect_cb, c);
    if (rc < 0) {
        c->connect_pending = false;
        ep->stats.connect_failed++;
        conn_close(c, rc);
        return rc;
    }
    *out = c;
    return 0;
}

static void accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct ppdb_stream_ep *ep = data;
    struct ppdb_stream_conn *c = ep->closing ? NULL : conn_new(ep, true);
    if (!c) {
        ppdb_env_stream_close(ep->env, s, NULL, NULL);
        return;
    }
    ep->stats.accepted++;
    c->s = s;
    (void)ppdb_env_stream_peer_addr(ep->env, s, &c->addr);
    int rc = start(c, false);
    if (rc < 0)
        hs_failed(c, rc);
}

/* ----------------------------------------------------------- endpoint */

void ppdb_stream_options_default(struct ppdb_stream_options *o)
{
    memset(o, 0, sizeof(*o));
    o->role = PPDB_ROLE_NODE;
    o->max_frame = PPDB_FRAME_DEFAULT_MAX;
    o->rekey_frames = 65536;
    o->handshake_timeout_ms = 5000;
    o->request_timeout_ms = 10000;
    o->max_inflight = 256;
    o->max_inbound = 256;
    o->max_conns = 1024;
    o->idle_ms = 60000;
    o->high_water = (size_t)8 << 20;
    o->low_water = (size_t)2 << 20;
}

int ppdb_stream_ep_init(struct ppdb_stream_ep *ep, struct ppdb_env *env,
                        const struct ppdb_identity *idn, const struct ppdb_keyring *kr,
                        const struct ppdb_wire_registry *reg, const struct ppdb_stream_options *o,
                        ppdb_stream_msg_cb on_msg, ppdb_stream_writable_cb on_writable, void *data)
{
    memset(ep, 0, sizeof(*ep));
    if (o)
        ep->opt = *o;
    else
        ppdb_stream_options_default(&ep->opt);
    struct ppdb_stream_options *op = &ep->opt;
    if (op->max_frame < PPDB_FRAME_MIN_MAX || op->max_conns == 0 || op->max_inflight == 0 ||
        op->max_inbound == 0 || op->low_water > op->high_water || op->idle_ms == 0)
        return PPDB_EINVAL;
    if (op->ciphers == 0)
        op->ciphers = op->null_cipher ? PPDB_NOISE_NULL : ppdb_stream_ciphers_local();
    ep->conns = ppdb_calloc(op->max_conns, sizeof(ep->conns[0]));
    if (!ep->conns)
        return PPDB_ENOMEM;
    ep->env = env;
    ep->idn = idn;
    ep->kr = kr;
    ep->reg = reg;
    ep->on_msg = on_msg;
    ep->on_writable = on_writable;
    ep->data = data;
    ep->next_request_id = 1;
    return 0;
}

int ppdb_stream_ep_listen(struct ppdb_stream_ep *ep, const struct ppdb_addr *bind,
                          struct ppdb_addr *bound_out)
{
    PPDB_ASSERT(ep->listener == NULL);
    PPDB_ASSERT(ep->opt.role == PPDB_ROLE_NODE);
    int rc = ppdb_env_listen(ep->env, bind, accept_cb, ep, &ep->listener);
    if (rc == 0 && bound_out)
        rc = ppdb_env_listener_addr(ep->env, ep->listener, bound_out);
    return rc;
}

void ppdb_stream_ep_close(struct ppdb_stream_ep *ep)
{
    ep->closing = true;
    if (ep->listener) {
        ppdb_env_listener_close(ep->env, ep->listener);
        ep->listener = NULL;
    }
    while (ep->nconns > 0)
        conn_close(ep->conns[ep->nconns - 1], PPDB_ECANCELED);
}

bool ppdb_stream_ep_idle(const struct ppdb_stream_ep *ep)
{
    return ep->live == 0;
}

void ppdb_stream_ep_deinit(struct ppdb_stream_ep *ep)
{
    PPDB_ASSERT_CMP(ep->live, ==, 0);
    ppdb_free(ep->conns);
    ep->conns = NULL;
}

/* The env is dead (a crashed simulated node): reclaim memory only. Every
 * timer must already be disarmed (the simulator removes a crashed node's
 * timers from its queue), or a heap would keep pointers into freed memory. */
void ppdb_stream_ep_drop(struct ppdb_stream_ep *ep)
{
    ep->closing = true;
    ep->listener = NULL; /* the env's handle: the env reclaims it */
    ep->nconns = 0;
    uint32_t bound = ep->live;
    for (uint32_t i = 0; i < bound && ep->owned; i++) {
        struct ppdb_stream_conn *c = ep->owned;
        PPDB_ASSERT(!ppdb_timer_armed(&c->hs_timer));
        PPDB_ASSERT(!ppdb_timer_armed(&c->idle_timer));
        PPDB_ASSERT(!ppdb_timer_armed(&c->flush_timer));
        c->closing = true;
        ppdb_stream_hs_wipe(&c->hs);
        rpc_drop_all(c);
        writes_drop(c);
        conn_free(c);
    }
    PPDB_ASSERT(ep->owned == NULL);
    ppdb_stream_ep_deinit(ep);
}

void ppdb_stream_ep_stats(const struct ppdb_stream_ep *ep, struct ppdb_stream_stats *out)
{
    *out = ep->stats;
    for (uint32_t i = 0; i < ep->nconns; i++) {
        const struct ppdb_frame_stats *f = &ep->conns[i]->rx.stats;
        out->frames.frames += f->frames;
        out->frames.messages += f->messages;
        out->frames.bytes += f->bytes;
        out->frames.rekeys += f->rekeys + ep->conns[i]->tx.rekeys;
    }
}

uint64_t ppdb_stream_stats_rejected(const struct ppdb_stream_stats *s)
{
    const struct ppdb_frame_stats *f = &s->frames;
    return s->handshake_failed + f->auth_failed + f->replayed + f->oversized + f->truncated +
           f->malformed;
}
