/*
 * net.c - the simulated network: addresses, the link model, port binding
 * and datagrams.
 *
 * Node i owns the virtual address 127.(i+2 as 24 bits); a socket is a port
 * in its node's short list (a node has few sockets, so a list beats a
 * world-wide table and keeps no O(N^2) state). Each directed link has a
 * model (latency + jitter of a distribution, loss, duplication, reordering;
 * fault.c draws it): the world default, or an entry of the sorted override
 * table. Partitions and egress bandwidth (fault.c) apply at send. Draws come from the SENDING
 * node's net_rng, so one node's traffic never shifts another node's draws; every send draws loss
 * and delay exactly once whatever the outcome, so a change in loss does not shift later delays.
 *
 * Invariants: a datagram's payload is copied at send; a dead (crashed)
 * socket is never found by a lookup; a port is bound at most once per kind
 * (datagram, listener) per node.
 */
#include <stdlib.h>

#include "sim_internal.h"

#define SIM_PORT_EPHEMERAL_MIN   49152u
#define SIM_PORT_EPHEMERAL_COUNT (65536u - SIM_PORT_EPHEMERAL_MIN)

uint32_t sim_addr_index(const struct ppdb_sim *sim, const struct ppdb_addr *a)
{
    if (a->family != 4 || a->ip[0] != 127)
        return UINT32_MAX;
    uint32_t host = (uint32_t)a->ip[1] << 16 | (uint32_t)a->ip[2] << 8 | a->ip[3];
    if (host < 2 || host - 2 >= sim->node_count)
        return UINT32_MAX;
    return host - 2;
}

/* ------------------------------------------------------------------ links */

static const struct sim_link_override *find_override(const struct ppdb_sim *sim, uint64_t key,
                                                     uint32_t *pos_out)
{
    uint32_t lo = 0, hi = sim->link_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sim->links[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos_out)
        *pos_out = lo;
    if (lo < sim->link_count && sim->links[lo].key == key)
        return &sim->links[lo];
    return NULL;
}

static int insert_override(struct ppdb_sim *sim, uint32_t pos)
{
    if (sim->link_count == sim->opts.max_link_overrides) {
        sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    if (sim->link_count == sim->link_cap) {
        uint32_t cap = sim->link_cap ? sim->link_cap * 2 : 16;
        struct sim_link_override *l = ppdb_realloc(sim->links, (size_t)cap * sizeof(*l));
        if (!l)
            return PPDB_ENOMEM;
        sim->links = l;
        sim->link_cap = cap;
    }
    memmove(&sim->links[pos + 1], &sim->links[pos],
            (size_t)(sim->link_count - pos) * sizeof(*sim->links));
    sim->link_count++;
    return 0;
}

int ppdb_sim_set_link(struct ppdb_sim *sim, uint32_t from, uint32_t to,
                      const struct ppdb_sim_link *link)
{
    PPDB_ASSERT_CMP(from, <, sim->node_count);
    PPDB_ASSERT_CMP(to, <, sim->node_count);
    if (link && !(link->loss >= 0.0 && link->loss <= 1.0))
        return PPDB_EINVAL;
    uint64_t key = (uint64_t)from << 32 | to;
    uint32_t pos;
    const struct sim_link_override *cur = find_override(sim, key, &pos);
    if (!link) {
        if (cur) {
            memmove(&sim->links[pos], &sim->links[pos + 1],
                    (size_t)(sim->link_count - pos - 1) * sizeof(*sim->links));
            sim->link_count--;
        }
        return 0;
    }
    if (!cur) {
        int rc = insert_override(sim, pos);
        if (rc)
            return rc;
    }
    sim->links[pos].key = key;
    sim->links[pos].link = *link;
    return 0;
}

const struct ppdb_sim_link *sim_link_of(const struct ppdb_sim *sim, uint32_t from, uint32_t to)
{
    if (sim->link_count) {
        const struct sim_link_override *o = find_override(sim, (uint64_t)from << 32 | to, NULL);
        if (o)
            return &o->link;
    }
    return &sim->opts.link;
}

/* Streams, connects and discovery: loss, then the delay (fault.c draws
 * the tail; the uniform model draws exactly as it always did). */
uint64_t sim_link_delay(struct ppdb_sim *sim, struct sim_node *from, uint32_t to, bool *lost)
{
    const struct ppdb_sim_link *l = sim_link_of(sim, from->index, to);
    double u = ppdb_rng_double(&from->net_rng);
    uint64_t jitter = sim_tail_ms(&from->net_rng, l);
    if (lost)
        *lost = u < l->loss;
    return (uint64_t)l->latency_ms + jitter;
}

/* ------------------------------------------------------------------ ports */

static bool port_used(struct sim_node *n, uint16_t port, bool listener)
{
    if (listener)
        return sim_listener_find(n, port) != NULL;
    for (struct sim_udp *u = n->udps; u; u = u->next)
        if (!u->dead && u->port == port)
            return true;
    return false;
}

static bool bind_addr_ok(struct sim_node *n, const struct ppdb_addr *bind)
{
    if (!bind || bind->family == 0)
        return true;
    static const uint8_t any[4];
    if (memcmp(bind->ip, any, 4) == 0)
        return true;
    return sim_addr_index(n->sim, bind) == n->index;
}

int sim_bind_port(struct sim_node *n, const struct ppdb_addr *bind, bool listener,
                  uint16_t *port_out)
{
    if (bind && bind->family == 6)
        return PPDB_ENOTSUP;
    if (!bind_addr_ok(n, bind))
        return PPDB_EINVAL;
    if (n->handles >= n->sim->opts.max_handles) {
        n->sim->stats.limit_errors++;
        return PPDB_ELIMIT;
    }
    uint16_t port = bind ? bind->port : 0;
    if (port) {
        if (port_used(n, port, listener))
            return PPDB_EADDRINUSE;
        *port_out = port;
        return 0;
    }
    for (uint32_t i = 0; i < SIM_PORT_EPHEMERAL_COUNT; i++) {
        port = n->next_port;
        n->next_port = port == 65535 ? SIM_PORT_EPHEMERAL_MIN : (uint16_t)(port + 1);
        if (!port_used(n, port, listener)) {
            *port_out = port;
            return 0;
        }
    }
    return PPDB_EADDRINUSE;
}

/* -------------------------------------------------------------- datagrams */

static struct sim_udp *udp_of(struct ppdb_udp *u)
{
    return (struct sim_udp *)(void *)u;
}

int sim_udp_open(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_udp_recv_cb cb,
                 void *data, struct ppdb_udp **u_out)
{
    struct sim_node *n = sim_node_of_env(env);
    PPDB_ASSERT(cb != NULL);
    if (n->crashed)
        return PPDB_ECLOSED;
    uint16_t port;
    int rc = sim_bind_port(n, bind, false, &port);
    if (rc)
        return rc;
    struct sim_udp *u = ppdb_calloc(1, sizeof(*u));
    if (!u)
        return PPDB_ENOMEM;
    u->node = n;
    u->port = port;
    u->cb = cb;
    u->data = data;
    u->next = n->udps;
    n->udps = u;
    n->handles++;
    *u_out = (struct ppdb_udp *)(void *)u;
    return 0;
}

static int send_check(struct sim_node *n, struct sim_udp *u, const struct ppdb_addr *to, size_t len)
{
    if (n->crashed || u->dead)
        return PPDB_ECLOSED;
    if (len > n->sim->opts.max_datagram)
        return PPDB_ERANGE;
    if (to->family != 4 || to->ip[0] != 127 || to->port == 0)
        return PPDB_EINVAL; /* no route: the simulated LAN is 127/8 */
    return 0;
}

/* A duplicate: a second event with the same bytes and its own delay. */
static void send_copy(struct ppdb_sim *sim, const struct sim_udp_event *ev, uint32_t dst,
                      uint64_t delay_ms)
{
    struct sim_udp_event *c = sim_event_new(sim, SIM_EV_UDP, sizeof(*c), ev->len, true);
    if (!c) {
        sim->stats.dropped_limit++;
        return;
    }
    c->from = ev->from;
    c->to = ev->to;
    c->len = ev->len;
    if (ev->len)
        memcpy(c->data, ev->data, ev->len);
    sim->stats.duplicated++;
    (void)sim_event_push(sim, &c->ev, dst, sim->now_ms + delay_ms);
}

int sim_udp_send(struct ppdb_env *env, struct ppdb_udp *uh, const struct ppdb_addr *to,
                 const void *buf, size_t len)
{
    struct sim_node *n = sim_node_of_env(env);
    struct ppdb_sim *sim = n->sim;
    struct sim_udp *u = udp_of(uh);
    int rc = send_check(n, u, to, len);
    if (rc) {
        sim->stats.send_errors++;
        return rc;
    }
    uint32_t dst = sim_addr_index(sim, to);
    if (dst == UINT32_MAX) { /* nobody has that address: it vanishes */
        sim->stats.datagrams_sent++;
        sim->stats.dropped_unbound++;
        return 0;
    }
    struct sim_draw d;
    sim_link_draw(sim, n, dst, &d);
    struct sim_udp_event *ev = NULL;
    if (!d.lost) {
        ev = sim_event_new(sim, SIM_EV_UDP, sizeof(*ev), len, true);
        if (!ev) {
            sim->stats.dropped_limit++;
            return PPDB_ELIMIT;
        }
    }
    sim->stats.datagrams_sent++;
    n->stats.datagrams_sent++;
    n->stats.bytes_sent += len;
    uint64_t queued = sim_egress_delay(n, len, true);
    if (d.lost || queued == UINT64_MAX || sim_blocked(sim, n->index, dst)) {
        if (d.lost)
            sim->stats.dropped_loss++;
        else if (queued == UINT64_MAX)
            sim->stats.dropped_queue++;
        else
            sim->stats.dropped_partition++;
        if (ev)
            sim_event_release(sim, &ev->ev);
        return 0;
    }
    sim_node_addr_fill(n, u->port, &ev->from);
    ev->to = *to;
    ev->len = (uint32_t)len;
    if (len)
        memcpy(ev->data, buf, len);
    sim->stats.reordered += d.reordered;
    if (d.dup)
        send_copy(sim, ev, dst, queued + d.dup_delay_ms);
    (void)sim_event_push(sim, &ev->ev, dst, sim->now_ms + queued + d.delay_ms);
    return 0;
}

static struct sim_udp *udp_find(struct sim_node *n, uint16_t port)
{
    for (struct sim_udp *u = n->udps; u; u = u->next)
        if (!u->dead && u->port == port)
            return u;
    return NULL;
}

void sim_udp_fire(struct ppdb_sim *sim, struct sim_udp_event *ev)
{
    struct sim_node *n = sim_node_at(sim, ev->ev.timer.owner);
    struct sim_udp *u = udp_find(n, ev->to.port);
    if (!u) {
        sim->stats.dropped_unbound++;
    } else {
        sim->stats.datagrams_delivered++;
        n->stats.datagrams_received++;
        n->stats.bytes_received += ev->len;
        u->cb(u->data, (struct ppdb_udp *)(void *)u, &ev->from, ev->data, ev->len);
    }
    sim_event_release(sim, &ev->ev);
}

int sim_udp_local_addr(struct ppdb_env *env, struct ppdb_udp *uh, struct ppdb_addr *out)
{
    struct sim_node *n = sim_node_of_env(env);
    struct sim_udp *u = udp_of(uh);
    if (u->dead)
        return PPDB_ECLOSED;
    sim_node_addr_fill(n, u->port, out);
    return 0;
}

void sim_udp_close(struct ppdb_env *env, struct ppdb_udp *uh)
{
    struct sim_node *n = sim_node_of_env(env);
    struct sim_udp *u = udp_of(uh);
    PPDB_ASSERT(u->node == n);
    struct sim_udp **pp = &n->udps;
    while (*pp && *pp != u)
        pp = &(*pp)->next;
    PPDB_ASSERT(*pp == u); /* not closed twice */
    *pp = u->next;
    if (!u->dead)
        n->handles--;
    ppdb_free(u);
}

/* A crash: sockets and listeners stop existing for the network; their
 * memory stays until the user's close or ppdb_sim_free. */
void sim_udp_kill_all(struct sim_node *n)
{
    for (struct sim_udp *u = n->udps; u; u = u->next)
        u->dead = true;
    for (struct sim_listener *l = n->listeners; l; l = l->next)
        l->dead = true;
    n->handles = 0;
}

void sim_udp_free_all(struct sim_node *n)
{
    while (n->udps) {
        struct sim_udp *u = n->udps;
        n->udps = u->next;
        ppdb_free(u);
    }
    while (n->listeners) {
        struct sim_listener *l = n->listeners;
        n->listeners = l->next;
        ppdb_free(l);
    }
    n->handles = 0;
}
