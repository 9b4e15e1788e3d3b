/*
 * stream.c - simulated byte streams: listen, connect, accept, read, write,
 * shutdown, close, and what a crash does to them.
 *
 * A connection is a struct sim_conn with two ends (see sim_internal.h for
 * the picture). Every write becomes one DATA segment, queued on the
 * receiver's node after the link delay, never due before the previous
 * segment of the same direction (so jitter cannot reorder a stream; equal
 * due times keep write order through the queue's seq). Streams are never
 * lost (TCP retransmits), only delayed. A write completes when its segment
 * reaches the peer (the DATA event is reused as the WRITE_DONE event of the
 * writer), so stream_pending is the amount still in flight or parked at the
 * peer: real back-pressure. A receiver that is not reading parks arriving
 * segments, in order, and read_start queues a RESUME event to hand them over.
 *
 * Close is abortive unless the end was shut down first: the peer then reads
 * PPDB_ECONNRESET after the segments already in flight; after a shutdown it
 * reads the data and PPDB_ECLOSED. Writes not yet delivered when their end
 * closes complete with PPDB_ECANCELED (their bytes still travel), then the
 * close callback runs. A segment reaching a closed or crashed end fails its
 * write with PPDB_ECONNRESET.
 *
 * Partitions: a connect across one times out; an open stream keeps its
 * segments, as TCP retransmits them. A segment arriving over a blocked
 * path (or behind one already held) is held at the receiver in arrival
 * order, and a RETRANSMIT event per end looks again every
 * stream_retransmit_ms: once the path is open the held segments go on as
 * if they had just arrived; when the oldest has waited stream_timeout_ms
 * the connection times out at both ends (reads end with PPDB_ETIMEDOUT,
 * held writes fail with it). Writes held this way are not complete, so
 * back-pressure builds as it would.
 *
 * Invariants: a conn is freed exactly when refs (held ends + events that
 * point to it) drops to 0; an end's wq holds, in write order, exactly its
 * DATA events with in_wq set; pending_bytes is the sum of their lengths; no
 * callback runs inside the call that caused it.
 */
#include "sim_internal.h"

static struct sim_end *end_of(struct ppdb_stream *s)
{
    return (struct sim_end *)(void *)s;
}

static struct ppdb_stream *stream_of(struct sim_end *e)
{
    return (struct ppdb_stream *)(void *)e;
}

static struct sim_end *peer_of(struct sim_end *e)
{
    return &e->conn->ends[1 - e->side];
}

static void conn_unref(struct sim_conn *c)
{
    PPDB_ASSERT_CMP(c->refs, >, 0);
    if (--c->refs > 0)
        return;
    PPDB_ASSERT(!c->ends[0].parked_head && !c->ends[1].parked_head);
    PPDB_ASSERT(!c->ends[0].wq_head && !c->ends[1].wq_head);
    ppdb_free(c);
}

static void end_link(struct sim_end *e)
{
    struct sim_node *n = e->node;
    e->prev = NULL;
    e->next = n->ends;
    if (n->ends)
        n->ends->prev = e;
    n->ends = e;
    e->linked = true;
}

static void end_unlink(struct sim_end *e)
{
    if (!e->linked)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        e->node->ends = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->linked = false;
}

static void end_release_hold(struct sim_end *e)
{
    PPDB_ASSERT(e->held);
    e->held = false;
    end_unlink(e);
    conn_unref(e->conn);
}

/* ------------------------------------------------------- write queue (wq) */

static void wq_append(struct sim_end *w, struct sim_data_event *d)
{
    d->wq_prev = w->wq_tail;
    d->wq_next = NULL;
    if (w->wq_tail)
        w->wq_tail->wq_next = d;
    else
        w->wq_head = d;
    w->wq_tail = d;
    d->in_wq = true;
    w->pending_bytes += d->len;
}

static void wq_unlink(struct sim_end *w, struct sim_data_event *d)
{
    PPDB_ASSERT(d->in_wq);
    if (d->wq_prev)
        d->wq_prev->wq_next = d->wq_next;
    else
        w->wq_head = d->wq_next;
    if (d->wq_next)
        d->wq_next->wq_prev = d->wq_prev;
    else
        w->wq_tail = d->wq_prev;
    d->wq_prev = d->wq_next = NULL;
    d->in_wq = false;
    PPDB_ASSERT_CMP(w->pending_bytes, >=, d->len);
    w->pending_bytes -= d->len;
}

static struct sim_end *writer_of(struct sim_data_event *d)
{
    return &d->conn->ends[1 - d->side];
}

void sim_stream_release(struct ppdb_sim *sim, struct sim_event *ev)
{
    (void)sim;
    struct sim_conn *conn;
    switch (ev->kind) {
    case SIM_EV_DATA:
    case SIM_EV_WRITE_DONE: {
        struct sim_data_event *d = (struct sim_data_event *)ev;
        if (d->in_wq)
            wq_unlink(writer_of(d), d);
        conn = d->conn;
        break;
    }
    case SIM_EV_CLOSE_DONE:
        conn = ((struct sim_close_event *)ev)->conn;
        break;
    default: {
        struct sim_conn_event *c = (struct sim_conn_event *)ev;
        conn = c->conn;
        if (ev->kind == SIM_EV_RESUME)
            conn->ends[c->side].resume_armed = false;
        if (ev->kind == SIM_EV_RETRANSMIT)
            conn->ends[c->side].retransmit_armed = false;
        break;
    }
    }
    conn_unref(conn);
}

/* ------------------------------------------------------------- segments */

/* Queues a segment from end e to its peer, FIFO per direction. */
static int send_segment(struct ppdb_sim *sim, struct sim_end *e, struct sim_event *ev)
{
    uint32_t dst = peer_of(e)->node->index;
    size_t len = ev->kind == SIM_EV_DATA ? ((struct sim_data_event *)ev)->len : 0;
    uint64_t due = sim->now_ms + sim_link_delay(sim, e->node, dst, NULL) +
                   sim_egress_delay(e->node, len, false);
    if (due < e->out_due_ms)
        due = e->out_due_ms;
    e->out_due_ms = due;
    return sim_event_push(sim, ev, dst, due);
}

/* A conn event about `side` of e's connection, holding a conn ref; NULL
 * when the world is out of events (the caller counts it). */
static struct sim_conn_event *conn_event_new(struct ppdb_sim *sim, uint8_t kind, struct sim_end *e,
                                             uint8_t side, bool limited)
{
    struct sim_conn_event *ev = sim_event_new(sim, kind, sizeof(*ev), 0, limited);
    if (!ev)
        return NULL;
    ev->conn = e->conn;
    ev->side = side;
    e->conn->refs++;
    return ev;
}

static void send_control(struct ppdb_sim *sim, struct sim_end *e, uint8_t kind)
{
    struct sim_conn_event *ev = conn_event_new(sim, kind, e, (uint8_t)(1 - e->side), false);
    if (!ev) {
        sim->stats.overflow++;
        return;
    }
    (void)send_segment(sim, e, &ev->ev);
}

/* A segment reached the peer (status 0) or could not (< 0): complete the
 * write at the writer, reusing the event. */
static void data_complete(struct ppdb_sim *sim, struct sim_data_event *d, int status)
{
    if (!d->in_wq) {
        sim_event_release(sim, &d->ev);
        return;
    }
    d->status = status;
    d->ev.kind = SIM_EV_WRITE_DONE;
    (void)sim_event_push(sim, &d->ev, writer_of(d)->node->index, sim->now_ms);
}

static void inbound_discard(struct ppdb_sim *sim, struct sim_event *ev)
{
    if (ev->kind == SIM_EV_DATA)
        data_complete(sim, (struct sim_data_event *)ev, PPDB_ECONNRESET);
    else
        sim_event_release(sim, ev);
}

static struct sim_event *list_pop(struct sim_event **head, struct sim_event **tail)
{
    struct sim_event *ev = *head;
    *head = ev->next;
    if (!*head)
        *tail = NULL;
    ev->next = NULL;
    return ev;
}

static void list_append(struct sim_event **head, struct sim_event **tail, struct sim_event *ev)
{
    ev->next = NULL;
    if (*tail)
        (*tail)->next = ev;
    else
        *head = ev;
    *tail = ev;
}

/* Drops what arrived and was not read: parked and held segments. */
static void discard_parked(struct ppdb_sim *sim, struct sim_end *e)
{
    while (e->parked_head)
        inbound_discard(sim, list_pop(&e->parked_head, &e->parked_tail));
    while (e->stalled_head)
        inbound_discard(sim, list_pop(&e->stalled_head, &e->stalled_tail));
}

static void deliver(struct ppdb_sim *sim, struct sim_end *r, struct sim_event *ev)
{
    if (ev->kind == SIM_EV_DATA) {
        struct sim_data_event *d = (struct sim_data_event *)ev;
        sim->stats.stream_bytes_delivered += d->len;
        r->node->stats.bytes_received += d->len;
        r->read_cb(r->read_data, stream_of(r), d->data, d->len, 0);
        data_complete(sim, d, 0);
        return;
    }
    r->read_ended = true;
    int status = PPDB_ECLOSED;
    if (ev->kind == SIM_EV_RST) {
        int why = ((struct sim_conn_event *)ev)->status;
        status = why ? why : PPDB_ECONNRESET;
    }
    sim_event_release(sim, ev);
    r->read_cb(r->read_data, stream_of(r), NULL, 0, status);
}

/* A segment that made it across: delivered, or parked until read_start. */
static void inbound_arrive(struct ppdb_sim *sim, struct sim_event *ev, struct sim_end *r)
{
    if (r->state != SIM_END_OPEN || r->read_ended) {
        inbound_discard(sim, ev);
        return;
    }
    if (ev->kind == SIM_EV_RST) {
        r->reset = true;
        sim->stats.resets++;
    }
    if (!r->reading || r->parked_head) {
        list_append(&r->parked_head, &r->parked_tail, ev);
        return;
    }
    deliver(sim, r, ev);
}

static bool path_blocked(struct ppdb_sim *sim, struct sim_end *r)
{
    return sim->any_blocked && sim_blocked(sim, peer_of(r)->node->index, r->node->index);
}

static void retransmit_arm(struct ppdb_sim *sim, struct sim_end *r)
{
    if (r->retransmit_armed)
        return;
    struct sim_conn_event *ev = conn_event_new(sim, SIM_EV_RETRANSMIT, r, r->side, false);
    if (!ev) {
        sim->stats.overflow++;
        return;
    }
    r->retransmit_armed = true;
    (void)sim_event_push(sim, &ev->ev, r->node->index,
                         sim->now_ms + sim->opts.stream_retransmit_ms);
}

static void inbound_fire(struct ppdb_sim *sim, struct sim_event *ev, struct sim_end *r)
{
    if (r->state == SIM_END_OPEN && !r->read_ended && (r->stalled_head || path_blocked(sim, r))) {
        if (!r->stalled_head)
            r->stalled_since_ms = sim->now_ms;
        list_append(&r->stalled_head, &r->stalled_tail, ev);
        sim->stats.segments_stalled++;
        retransmit_arm(sim, r);
        return;
    }
    inbound_arrive(sim, ev, r);
}

/* The end learns its connection timed out: what it holds fails, and its
 * reader gets PPDB_ETIMEDOUT after what it has parked. */
static void end_time_out(struct ppdb_sim *sim, struct sim_end *e)
{
    while (e->stalled_head) {
        struct sim_event *h = list_pop(&e->stalled_head, &e->stalled_tail);
        if (h->kind == SIM_EV_DATA)
            data_complete(sim, (struct sim_data_event *)h, PPDB_ETIMEDOUT);
        else
            sim_event_release(sim, h);
    }
    if (e->state != SIM_END_OPEN || e->read_ended)
        return;
    struct sim_conn_event *rst = conn_event_new(sim, SIM_EV_RST, e, e->side, false);
    if (!rst) {
        sim->stats.overflow++;
        return;
    }
    rst->status = PPDB_ETIMEDOUT;
    inbound_arrive(sim, &rst->ev, e);
}

static void retransmit_fire(struct ppdb_sim *sim, struct sim_conn_event *ev)
{
    struct sim_end *r = &ev->conn->ends[ev->side];
    r->retransmit_armed = false;
    if (r->stalled_head && path_blocked(sim, r) && r->state == SIM_END_OPEN &&
        sim->now_ms - r->stalled_since_ms < sim->opts.stream_timeout_ms) {
        retransmit_arm(sim, r);
    } else if (r->stalled_head && path_blocked(sim, r) && r->state == SIM_END_OPEN) {
        sim->stats.stream_timeouts++;
        end_time_out(sim, r);
        end_time_out(sim, peer_of(r));
    } else {
        /* healed (or the end went away): on as if they arrived now */
        while (r->stalled_head)
            inbound_arrive(sim, list_pop(&r->stalled_head, &r->stalled_tail), r);
    }
    sim_event_release(sim, &ev->ev);
}

static void resume_fire(struct ppdb_sim *sim, struct sim_conn_event *ev)
{
    struct sim_end *r = &ev->conn->ends[ev->side];
    r->resume_armed = false;
    /* Bounded: each turn consumes one parked event, and nothing parks
     * while reading with an empty list... except after read_stop. */
    while (r->state == SIM_END_OPEN && r->reading && r->parked_head && !r->read_ended) {
        struct sim_event *p = r->parked_head;
        r->parked_head = p->next;
        if (!r->parked_head)
            r->parked_tail = NULL;
        p->next = NULL;
        deliver(sim, r, p);
    }
    sim_event_release(sim, &ev->ev);
}

/* --------------------------------------------------------------- connect */

static void refuse(struct ppdb_sim *sim, struct sim_conn_event *ev)
{
    struct sim_end *c = &ev->conn->ends[0];
    if (c->state != SIM_END_CONNECTING) {
        sim_event_release(sim, &ev->ev);
        return;
    }
    struct sim_node *from = sim_node_at(sim, ev->ev.timer.owner);
    uint64_t delay = sim_link_delay(sim, from, c->node->index, NULL);
    ev->ev.kind = SIM_EV_CONNECTED;
    ev->side = 0;
    ev->status = PPDB_ECONNREFUSED;
    (void)sim_event_push(sim, &ev->ev, c->node->index, sim->now_ms + delay);
}

static void syn_fire(struct ppdb_sim *sim, struct sim_conn_event *ev)
{
    struct sim_conn *conn = ev->conn;
    struct sim_end *c = &conn->ends[0];
    struct sim_node *s = sim_node_at(sim, ev->ev.timer.owner);
    struct sim_listener *l = sim_listener_find(s, c->peer.port);
    if (c->state != SIM_END_CONNECTING) { /* the caller crashed meanwhile */
        sim_event_release(sim, &ev->ev);
        return;
    }
    if (!l) {
        refuse(sim, ev);
        return;
    }
    struct sim_end *a = &conn->ends[1];
    a->conn = conn;
    a->node = s;
    a->side = 1;
    a->state = SIM_END_OPEN;
    a->held = true;
    sim_node_addr_fill(s, l->port, &a->local);
    a->peer = c->local;
    conn->refs++;
    end_link(a);
    /* The SYN-ACK is the first segment server -> client: whatever the
     * accept callback writes is due no earlier. */
    uint64_t due = sim->now_ms + sim_link_delay(sim, s, c->node->index, NULL);
    a->out_due_ms = due;
    ev->ev.kind = SIM_EV_CONNECTED;
    ev->side = 0;
    ev->status = 0;
    (void)sim_event_push(sim, &ev->ev, c->node->index, due);
    sim->stats.accepts++;
    l->cb(l->data, (struct ppdb_listener *)(void *)l, stream_of(a));
}

static void connected_fire(struct ppdb_sim *sim, struct sim_conn_event *ev)
{
    struct sim_conn *conn = ev->conn;
    struct sim_end *c = &conn->ends[0];
    ppdb_connect_cb cb = conn->connect_cb;
    void *data = conn->connect_data;
    int status = ev->status;
    if (c->state != SIM_END_CONNECTING) {
        sim_event_release(sim, &ev->ev);
        return;
    }
    if (status == 0) {
        c->state = SIM_END_OPEN;
        cb(data, stream_of(c), 0);
    } else {
        c->state = SIM_END_CLOSED;
        sim->stats.connects_refused++;
        end_release_hold(c); /* ev still holds the conn */
        cb(data, NULL, status);
    }
    sim_event_release(sim, &ev->ev);
}

static uint16_t next_ephemeral(struct sim_node *n)
{
    uint16_t port = n->next_port;
    n->next_port = port == 65535 ? 49152 : (uint16_t)(port + 1);
    return port;
}

int sim_connect(struct ppdb_env *env, const struct ppdb_addr *to, ppdb_connect_cb cb, void *data)
{
    struct sim_node *n = sim_node_of_env(env);
    struct ppdb_sim *sim = n->sim;
    PPDB_ASSERT(cb != NULL);
    if (n->crashed)
        return PPDB_ECLOSED;
    if (to->family != 4 || to->ip[0] != 127 || to->port == 0)
        return PPDB_EINVAL;
    struct sim_conn *conn = ppdb_calloc(1, sizeof(*conn));
    if (!conn)
        return PPDB_ENOMEM;
    struct sim_conn_event *ev = sim_event_new(sim, SIM_EV_SYN, sizeof(*ev), 0, true);
    if (!ev) {
        ppdb_free(conn);
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    conn->connect_cb = cb;
    conn->connect_data = data;
    conn->refs = 2; /* the pending connect's hold on end 0, and the SYN */
    struct sim_end *c = &conn->ends[0];
    c->conn = conn;
    c->node = n;
    c->state = SIM_END_CONNECTING;
    c->held = true;
    sim_node_addr_fill(n, next_ephemeral(n), &c->local);
    c->peer = *to;
    end_link(c);
    ev->conn = conn;
    ev->side = 1;
    sim->stats.connects++;
    uint32_t dst = sim_addr_index(sim, to);
    if (dst == UINT32_MAX) { /* nobody owns that address: refused */
        ev->ev.timer.owner = n->index;
        refuse(sim, ev);
        return 0;
    }
    uint64_t due = sim->now_ms + sim_link_delay(sim, n, dst, NULL);
    c->out_due_ms = due;
    if (sim_blocked(sim, n->index, dst) || sim_blocked(sim, dst, n->index)) {
        /* across a partition: no answer, the connect times out */
        sim->stats.connects_blocked++;
        ev->ev.kind = SIM_EV_CONNECTED;
        ev->side = 0;
        ev->status = PPDB_ETIMEDOUT;
        (void)sim_event_push(sim, &ev->ev, n->index, sim->now_ms + sim->opts.partition_connect_ms);
        return 0;
    }
    (void)sim_event_push(sim, &ev->ev, dst, due);
    return 0;
}

/* ------------------------------------------------------------- listeners */

struct sim_listener *sim_listener_find(struct sim_node *n, uint16_t port)
{
    for (struct sim_listener *l = n->listeners; l; l = l->next)
        if (!l->dead && l->port == port)
            return l;
    return NULL;
}

int sim_listen(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_accept_cb cb, void *data,
               struct ppdb_listener **l_out)
{
    struct sim_node *n = sim_node_of_env(env);
    PPDB_ASSERT(cb != NULL);
    if (n->crashed)
        return PPDB_ECLOSED;
    uint16_t port;
    int rc = sim_bind_port(n, bind, true, &port);
    if (rc)
        return rc;
    struct sim_listener *l = ppdb_calloc(1, sizeof(*l));
    if (!l)
        return PPDB_ENOMEM;
    l->node = n;
    l->port = port;
    l->cb = cb;
    l->data = data;
    l->next = n->listeners;
    n->listeners = l;
    n->handles++;
    *l_out = (struct ppdb_listener *)(void *)l;
    return 0;
}

int sim_listener_addr(struct ppdb_env *env, struct ppdb_listener *lh, struct ppdb_addr *out)
{
    struct sim_listener *l = (struct sim_listener *)(void *)lh;
    PPDB_ASSERT(l->node == sim_node_of_env(env));
    if (l->dead)
        return PPDB_ECLOSED;
    sim_node_addr_fill(l->node, l->port, out);
    return 0;
}

void sim_listener_close(struct ppdb_env *env, struct ppdb_listener *lh)
{
    struct sim_listener *l = (struct sim_listener *)(void *)lh;
    struct sim_node *n = sim_node_of_env(env);
    PPDB_ASSERT(l->node == n);
    struct sim_listener **pp = &n->listeners;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    PPDB_ASSERT(*pp == l); /* not closed twice */
    *pp = l->next;
    if (!l->dead)
        n->handles--;
    ppdb_free(l);
}

/* -------------------------------------------------------- stream calls */

static struct sim_end *checked_end(struct ppdb_env *env, struct ppdb_stream *s)
{
    struct sim_end *e = end_of(s);
    PPDB_ASSERT(e->node == sim_node_of_env(env));
    PPDB_ASSERT(e->held);
    return e;
}

int sim_read_start(struct ppdb_env *env, struct ppdb_stream *s, ppdb_read_cb cb, void *data)
{
    struct sim_end *e = checked_end(env, s);
    struct ppdb_sim *sim = e->node->sim;
    PPDB_ASSERT(cb != NULL);
    if (e->node->crashed || e->state != SIM_END_OPEN)
        return PPDB_ECLOSED;
    e->read_cb = cb;
    e->read_data = data;
    e->reading = true;
    if (!e->parked_head || e->resume_armed)
        return 0;
    struct sim_conn_event *ev = conn_event_new(sim, SIM_EV_RESUME, e, e->side, false);
    if (!ev) {
        sim->stats.overflow++;
        return PPDB_ENOMEM;
    }
    e->resume_armed = true;
    return sim_event_push(sim, &ev->ev, e->node->index, sim->now_ms);
}

void sim_read_stop(struct ppdb_env *env, struct ppdb_stream *s)
{
    checked_end(env, s)->reading = false;
}

static int write_check(struct sim_end *e, size_t len)
{
    if (e->node->crashed || e->state != SIM_END_OPEN || e->shut_wr)
        return PPDB_ECLOSED;
    if (e->reset)
        return PPDB_ECONNRESET;
    if (len > UINT32_MAX || e->pending_bytes + len > e->node->sim->opts.max_stream_pending) {
        e->node->sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    return 0;
}

int sim_write(struct ppdb_env *env, struct ppdb_stream *s, const void *buf, size_t len,
              ppdb_write_cb cb, void *data)
{
    struct sim_end *e = checked_end(env, s);
    struct ppdb_sim *sim = e->node->sim;
    int rc = write_check(e, len);
    if (rc)
        return rc;
    struct sim_data_event *d = sim_event_new(sim, SIM_EV_DATA, sizeof(*d), len, true);
    if (!d) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    d->conn = e->conn;
    d->side = (uint8_t)(1 - e->side);
    d->cb = cb;
    d->cb_data = data;
    d->len = (uint32_t)len;
    if (len)
        memcpy(d->data, buf, len);
    e->conn->refs++;
    wq_append(e, d);
    sim->stats.stream_bytes_sent += len;
    e->node->stats.bytes_sent += len;
    return send_segment(sim, e, &d->ev);
}

size_t sim_pending(struct ppdb_env *env, struct ppdb_stream *s)
{
    return checked_end(env, s)->pending_bytes;
}

int sim_shutdown(struct ppdb_env *env, struct ppdb_stream *s)
{
    struct sim_end *e = checked_end(env, s);
    struct ppdb_sim *sim = e->node->sim;
    if (e->node->crashed || e->state != SIM_END_OPEN || e->shut_wr)
        return PPDB_ECLOSED;
    struct sim_conn_event *ev = conn_event_new(sim, SIM_EV_FIN, e, (uint8_t)(1 - e->side), true);
    if (!ev) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    e->shut_wr = true;
    return send_segment(sim, e, &ev->ev);
}

int sim_peer_addr(struct ppdb_env *env, struct ppdb_stream *s, struct ppdb_addr *out)
{
    struct sim_end *e = checked_end(env, s);
    if (e->node->crashed)
        return PPDB_ECLOSED;
    *out = e->peer;
    return 0;
}

static bool peer_alive(struct sim_end *e)
{
    uint8_t st = peer_of(e)->state;
    return st == SIM_END_OPEN || st == SIM_END_CONNECTING;
}

/* Detaches the end's undelivered writes; returns how many there were and,
 * if `out` is given, their callbacks in write order. */
static uint32_t cancel_writes(struct sim_end *e, struct sim_canceled_write *out)
{
    uint32_t k = 0;
    while (e->wq_head) {
        struct sim_data_event *d = e->wq_head;
        if (out)
            out[k] = (struct sim_canceled_write){d->cb, d->cb_data};
        wq_unlink(e, d);
        k++;
    }
    return k;
}

static void queue_close_done(struct ppdb_sim *sim, struct sim_end *e, ppdb_close_cb cb, void *data)
{
    uint32_t count = 0;
    for (struct sim_data_event *d = e->wq_head; d; d = d->wq_next)
        count++;
    if (count == 0 && !cb)
        return;
    struct sim_close_event *ev = sim_event_new(sim, SIM_EV_CLOSE_DONE, sizeof(*ev),
                                               count * sizeof(struct sim_canceled_write), false);
    if (!ev) {
        sim->stats.overflow++;
        cancel_writes(e, NULL);
        return;
    }
    ev->conn = e->conn;
    ev->side = e->side;
    ev->cb = cb;
    ev->cb_data = data;
    ev->count = cancel_writes(e, ev->writes);
    e->conn->refs++;
    (void)sim_event_push(sim, &ev->ev, e->node->index, sim->now_ms);
}

void sim_stream_close(struct ppdb_env *env, struct ppdb_stream *s, ppdb_close_cb cb, void *data)
{
    struct sim_end *e = checked_end(env, s);
    struct ppdb_sim *sim = e->node->sim;
    if (!e->node->crashed) {
        if (e->state == SIM_END_OPEN && !e->shut_wr && peer_alive(e))
            send_control(sim, e, SIM_EV_RST);
        queue_close_done(sim, e, cb, data);
        discard_parked(sim, e);
    }
    e->state = SIM_END_CLOSED;
    e->reading = false;
    end_release_hold(e);
}

static void close_done_fire(struct ppdb_sim *sim, struct sim_close_event *ev)
{
    struct sim_end *e = &ev->conn->ends[ev->side];
    for (uint32_t i = 0; i < ev->count; i++)
        if (ev->writes[i].cb)
            ev->writes[i].cb(ev->writes[i].data, stream_of(e), PPDB_ECANCELED);
    if (ev->cb)
        ev->cb(ev->cb_data);
    sim_event_release(sim, &ev->ev);
}

static void write_done_fire(struct ppdb_sim *sim, struct sim_data_event *d)
{
    struct sim_end *w = writer_of(d);
    if (d->in_wq) {
        ppdb_write_cb cb = d->cb;
        wq_unlink(w, d);
        if (cb)
            cb(d->cb_data, stream_of(w), d->status);
    }
    sim_event_release(sim, &d->ev);
}

void sim_stream_fire(struct ppdb_sim *sim, struct sim_event *ev)
{
    switch (ev->kind) {
    case SIM_EV_SYN:
        syn_fire(sim, (struct sim_conn_event *)ev);
        break;
    case SIM_EV_CONNECTED:
        connected_fire(sim, (struct sim_conn_event *)ev);
        break;
    case SIM_EV_DATA: {
        struct sim_data_event *d = (struct sim_data_event *)ev;
        inbound_fire(sim, ev, &d->conn->ends[d->side]);
        break;
    }
    case SIM_EV_FIN:
    case SIM_EV_RST: {
        struct sim_conn_event *c = (struct sim_conn_event *)ev;
        inbound_fire(sim, ev, &c->conn->ends[c->side]);
        break;
    }
    case SIM_EV_WRITE_DONE:
        write_done_fire(sim, (struct sim_data_event *)ev);
        break;
    case SIM_EV_RESUME:
        resume_fire(sim, (struct sim_conn_event *)ev);
        break;
    case SIM_EV_CLOSE_DONE:
        close_done_fire(sim, (struct sim_close_event *)ev);
        break;
    case SIM_EV_RETRANSMIT:
        retransmit_fire(sim, (struct sim_conn_event *)ev);
        break;
    default:
        PPDB_ASSERT(!"not a stream event");
    }
}

/* The event's node is down: a SYN is refused by its host, a segment fails
 * its write; everything else just goes. */
void sim_stream_drop(struct ppdb_sim *sim, struct sim_event *ev)
{
    if (ev->kind == SIM_EV_SYN)
        refuse(sim, (struct sim_conn_event *)ev);
    else if (ev->kind == SIM_EV_DATA)
        data_complete(sim, (struct sim_data_event *)ev, PPDB_ECONNRESET);
    else
        sim_event_release(sim, ev);
}

/* A crash: every end of the node stops; a connected peer is reset (unless
 * this end had shut down). Open ends stay held until the user closes them. */
void sim_stream_crash(struct sim_node *n)
{
    struct ppdb_sim *sim = n->sim;
    struct sim_end *e = n->ends;
    while (e) {
        struct sim_end *next = e->next;
        bool live = e->state == SIM_END_OPEN || e->state == SIM_END_CONNECTING;
        if (live && !e->shut_wr && peer_alive(e) && peer_of(e)->node != n)
            send_control(sim, e, SIM_EV_RST);
        cancel_writes(e, NULL);
        discard_parked(sim, e);
        uint8_t was = e->state;
        e->state = SIM_END_CLOSED;
        e->reading = false;
        if (was == SIM_END_CONNECTING)
            end_release_hold(e);
        e = next;
    }
}

void sim_stream_free_all(struct sim_node *n)
{
    struct ppdb_sim *sim = n->sim;
    PPDB_ASSERT(sim->freeing);
    while (n->ends) {
        struct sim_end *e = n->ends;
        cancel_writes(e, NULL);
        discard_parked(sim, e);
        e->state = SIM_END_CLOSED;
        end_release_hold(e);
    }
}
