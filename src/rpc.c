/*
 * rpc.c - requests and replies over stream connections, and the public
 * send functions of the endpoint.
 *
 * A request gets an id from the endpoint's counter (never reused by that
 * endpoint), a slot among max_inflight on its connection and an env timer.
 * Exactly one of three things ends it: the reply (status 0), the timer
 * (ETIMEDOUT), or the connection closing (ECONNRESET, or ECANCELED when
 * the endpoint closes, or the connect/handshake error). ppdb_stream_cancel
 * ends it silently. Replies travel with the reply bit set in their
 * message word, so both ends may issue requests on one connection.
 *
 * Invariants: a request is on exactly one connection's list while pending;
 * its callback runs at most once, after it has been unlinked and its timer
 * canceled, so the callback may issue new requests.
 */
#include "stream_int.h"

static void req_unlink(struct stream_req *r)
{
    struct ppdb_stream_conn *c = r->conn;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->reqs_tail = r->prev;
    c->inflight--;
    ppdb_env_timer_cancel(c->ep->env, &r->timer);
}

static void req_finish(struct stream_req *r, int status, const struct ppdb_envelope *reply)
{
    ppdb_stream_reply_cb cb = r->cb;
    void *data = r->data;
    req_unlink(r);
    ppdb_free(r);
    cb(data, status, reply);
}

static void req_timeout_cb(struct ppdb_timer *t)
{
    struct stream_req *r = t->data;
    r->conn->ep->stats.req_timeouts++;
    req_finish(r, PPDB_ETIMEDOUT, NULL);
}

void rpc_fail_all(struct ppdb_stream_conn *c, int status)
{
    uint32_t bound = c->inflight;
    for (uint32_t i = 0; i < bound && c->reqs_head; i++) {
        c->ep->stats.req_failed++;
        req_finish(c->reqs_head, status, NULL);
    }
    PPDB_ASSERT(c->reqs_head == NULL);
}

void rpc_drop_all(struct ppdb_stream_conn *c)
{
    uint32_t bound = c->inflight;
    for (uint32_t i = 0; i < bound && c->reqs_head; i++) {
        struct stream_req *r = c->reqs_head;
        PPDB_ASSERT(!ppdb_timer_armed(&r->timer)); /* the env is dead: nothing armed */
        c->reqs_head = r->next;
        c->inflight--;
        ppdb_free(r);
    }
    PPDB_ASSERT(c->reqs_head == NULL);
    c->reqs_tail = NULL;
}

void rpc_complete(struct ppdb_stream_conn *c, const struct ppdb_envelope *reply)
{
    for (struct stream_req *r = c->reqs_head; r; r = r->next) {
        if (r->id != reply->hdr.request_id)
            continue;
        c->ep->stats.replies++;
        req_finish(r, 0, reply);
        return;
    }
    c->ep->stats.late_replies++;
}

/* The connection to addr, opened if needed; checks the send bounds. */
static int conn_for_send(struct ppdb_stream_ep *ep, const struct ppdb_addr *addr,
                         struct ppdb_stream_conn **out)
{
    if (ep->closing)
        return PPDB_ECANCELED;
    struct ppdb_stream_conn *c = conn_find_addr(ep, addr);
    if (!c) {
        int rc = conn_open_out(ep, addr, &c);
        if (rc < 0)
            return rc;
    }
    if (conn_out_bytes(c) >= ep->opt.high_water) {
        ep->stats.send_refused++;
        c->want_writable = true;
        return PPDB_EAGAIN;
    }
    *out = c;
    return 0;
}

int ppdb_stream_request(struct ppdb_stream_ep *ep, const struct ppdb_addr *addr, uint32_t type,
                        const uint8_t *body, size_t body_len, uint32_t timeout_ms,
                        ppdb_stream_reply_cb cb, void *data, uint64_t *request_id_out)
{
    struct ppdb_stream_conn *c;
    PPDB_ASSERT(cb != NULL);
    int rc = conn_for_send(ep, addr, &c);
    if (rc < 0)
        return rc;
    if (c->inflight >= ep->opt.max_inflight) {
        ep->stats.req_limit++;
        return PPDB_ELIMIT;
    }
    struct stream_req *r = ppdb_calloc(1, sizeof(*r));
    if (!r)
        return PPDB_ENOMEM;
    r->id = ep->next_request_id++;
    r->conn = c;
    ppdb_timer_init(&r->timer, req_timeout_cb, r);
    rc = ppdb_env_timer_arm(ep->env, &r->timer,
                            timeout_ms ? timeout_ms : ep->opt.request_timeout_ms);
    struct ppdb_envelope_hdr h = {PPDB_WIRE_VERSION, type, ep->idn->id, r->id};
    if (rc == 0)
        rc = conn_append(c, false, &h, body, body_len);
    if (rc < 0) {
        ppdb_env_timer_cancel(ep->env, &r->timer);
        ppdb_free(r);
        return rc;
    }
    r->cb = cb;
    r->data = data;
    r->prev = c->reqs_tail;
    if (c->reqs_tail)
        c->reqs_tail->next = r;
    else
        c->reqs_head = r;
    c->reqs_tail = r;
    c->inflight++;
    ep->stats.requests++;
    if (request_id_out)
        *request_id_out = r->id;
    return 0;
}

int ppdb_stream_send(struct ppdb_stream_ep *ep, const struct ppdb_addr *addr, uint32_t type,
                     const uint8_t *body, size_t body_len)
{
    struct ppdb_stream_conn *c;
    int rc = conn_for_send(ep, addr, &c);
    if (rc < 0)
        return rc;
    struct ppdb_envelope_hdr h = {PPDB_WIRE_VERSION, type, ep->idn->id, 0};
    return conn_append(c, false, &h, body, body_len);
}

int ppdb_stream_cancel(struct ppdb_stream_ep *ep, uint64_t request_id)
{
    for (uint32_t i = 0; i < ep->nconns; i++) {
        for (struct stream_req *r = ep->conns[i]->reqs_head; r; r = r->next) {
            if (r->id != request_id)
                continue;
            req_unlink(r);
            ppdb_free(r);
            return 0;
        }
    }
    return PPDB_ENOTFOUND;
}

int ppdb_stream_reply(struct ppdb_stream_ep *ep, uint64_t conn_id, uint64_t request_id,
                      uint32_t type, const uint8_t *body, size_t body_len)
{
    PPDB_ASSERT(request_id != 0);
    struct ppdb_stream_conn *c = conn_find_id(ep, conn_id);
    if (!c)
        return PPDB_ECONNRESET;
    struct ppdb_envelope_hdr h = {PPDB_WIRE_VERSION, type, ep->idn->id, request_id};
    int rc = conn_append(c, true, &h, body, body_len);
    conn_inbound_done(c);
    return rc;
}

void ppdb_stream_release(struct ppdb_stream_ep *ep, uint64_t conn_id)
{
    struct ppdb_stream_conn *c = conn_find_id(ep, conn_id);
    if (c)
        conn_inbound_done(c);
}

int ppdb_stream_pause(struct ppdb_stream_ep *ep, uint64_t conn_id, bool paused)
{
    struct ppdb_stream_conn *c = conn_find_id(ep, conn_id);
    if (!c)
        return PPDB_ENOTFOUND;
    c->paused_app = paused;
    conn_update_reading(c);
    return 0;
}

static void fill_info(const struct ppdb_stream_conn *c, struct ppdb_stream_conn_info *out)
{
    out->conn_id = c->id;
    out->established = c->state == CONN_OPEN;
    out->inbound = c->inbound;
    out->paused = c->paused_app || c->paused_inbound;
    out->queued_bytes = c->batch.len;
    out->pending_bytes = c->pending;
    out->unread_bytes = c->rbuf.len;
    out->inflight = c->inflight;
    out->inbound_unanswered = c->inbound_unanswered;
}

int ppdb_stream_conn_info_by_addr(const struct ppdb_stream_ep *ep, const struct ppdb_addr *addr,
                                  struct ppdb_stream_conn_info *out)
{
    struct ppdb_stream_conn *c = conn_find_addr((struct ppdb_stream_ep *)ep, addr);
    if (!c)
        return PPDB_ENOTFOUND;
    fill_info(c, out);
    return 0;
}

int ppdb_stream_conn_info_by_id(const struct ppdb_stream_ep *ep, uint64_t conn_id,
                                struct ppdb_stream_conn_info *out)
{
    struct ppdb_stream_conn *c = conn_find_id(ep, conn_id);
    if (!c)
        return PPDB_ENOTFOUND;
    fill_info(c, out);
    return 0;
}
